/*
 * server: start-up, worker threads and shutdown. See server.h.
 */
#include "gate/server.h"
#include "gate/core/worker.h"
#include "gate/util/jsonfast.h"
#include "tokenizer/tok.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <cjson/cJSON.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache/cstats.h"
#include "cache/store.h"
#include "cache/toolstats.h"
#include "gate/admin/admin.h"
#include "gate/admin/status.h"
#include "gate/budget/budget.h"
#include "gate/http/conn.h"
#include "gate/budget/journal.h"
#include "gate/budget/ledger.h"
#include "gate/pipeline/reqlog.h"
#include "gate/pipeline/completion.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"
#include "gate/upstream/upstream.h"
#include "gate/http/tls.h"
#include "gate/pipeline/tcount.h"
#include "gate/reload.h"
#include "gate/upstream/poolset.h"
#include "gate/util/clock.h"
#include "routing/health.h"
#include "routing/labelcache.h"
#include "cache/prefixcount.h"
#include "routing/rstats.h"
#include "gate/mcp/mcp.h"

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    conn_accept(arg, fd, sa, salen);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    /* out of descriptors and the like: say so and keep serving the open connections */
    fprintf(stderr, "tokengate: accept failed: %s\n", evutil_socket_error_to_string(err));
}

/* Opens one listening socket with SO_REUSEPORT. Returns the fd or -1 with err filled. */
static int open_listener(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    char portstr[16];
    int fd, one = 1, rc;

    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen address %s must be a numeric IP address: %s", host,
                 gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Runs in the worker: stops accepting, then polls until its connections are gone or the
 * grace period is over. */
static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gate_worker *w = arg;
    struct timeval tick = {0, 50 * 1000};

    if (!w->draining) {
        w->draining = 1;
        w->drain_deadline = gate_now_us() + (int64_t)GATE_DRAIN_MS * 1000;
        evconnlistener_disable(w->listener);
    }
    if (conn_drain(w) + w->detached == 0 || gate_now_us() >= w->drain_deadline) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    evtimer_add(w->drain_timer, &tick);
}

/*
 * An event base whose epoll changes are batched per loop turn: a request enables and disables
 * write interest on two sockets, and without the changelist each of those is an epoll_ctl call.
 * (The changelist is unsafe only with dup()ed descriptors, which the gate never has.)
 */
static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

/* Builds the tokenizer's tables for long pieces (tok_prepare_long) of the two encodings. */
static void *prepare_long_main(void *arg)
{
    (void)arg;
    tok_prepare_long(tok_encoding("o200k_base"));
    tok_prepare_long(tok_encoding("cl100k_base"));
    return NULL;
}

static void *worker_main(void *arg)
{
    struct gate_worker *w = arg;

    /* the tokenizer's per-thread piece cache, made now rather than by the first request (it
     * would cost that request about a millisecond); without it the worker still counts */
    (void)tok_thread_prepare();
    jsonfast_thread_prepare(); /* the same for the JSON parser's buffers */
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void server_free(struct gate_server *srv)
{
    /* the admin thread first (it reads the book and writes the ledger), then the ledger: its
     * last commits hand requests back to the workers, which finish them here, their loops
     * being over */
    gate_admin_stop(srv->admin);
    ledger_close(srv->ledger);
    srv->ledger = NULL;
    journal_close(srv->journal); /* after the ledger: its writer clears slots until it stops */
    srv->journal = NULL;
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].cq != NULL)
            completion_queue_run(srv->workers[i].cq);
    for (int i = 0; i < srv->nworkers; i++) {
        struct gate_worker *w = &srv->workers[i];
        if (w->drift != NULL) {
            tcount_drift_free(w->drift);
            free(w->drift);
            w->drift = NULL;
        }
        if (w->base == NULL)
            continue;
        w->stopped = 1;
        conn_close_all(w);
        poolset_free(w->pools);
        w->pools = NULL;
        if (w->reload_ev != NULL)
            event_free(w->reload_ev);
        if (w->listener != NULL)
            evconnlistener_free(w->listener);
        if (w->dns != NULL)
            evdns_base_free(w->dns, 0);
        if (w->drain_timer != NULL)
            event_free(w->drain_timer);
        completion_queue_free(w->cq); /* frees the requests finished above */
        w->cq = NULL;
        spend_worker_free(w);
        /* a bufferevent freed while a deferred callback of it was pending (requests finished
         * above, outside the loop) is only released when the loop runs that callback: one
         * last non-blocking turn lets libevent finish those frees */
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        event_base_free(w->base);
    }
    for (int i = 0; i < srv->nworkers; i++)
        conf_unref(srv->workers[i].conf);
    free(srv->workers);
    reqlog_close(srv->reqlog);
    budget_book_free(srv->book);
    conf_unref(srv->book_conf); /* after the book, which reads it */
    SSL_CTX_free(srv->upstream_ctx);
    SSL_CTX_free(srv->listen_ctx);
    conf_unref(srv->conf_live);
    pthread_mutex_destroy(&srv->conf_mu);
    pthread_cond_destroy(&srv->conf_taken);
    pthread_mutex_destroy(&srv->reload_mu);
    /* last: requests finished above may still have reported to them */
    route_health_free(srv->health);
    srv->health = NULL;
    labelcache_free(srv->labels);
    srv->labels = NULL;
    rstats_free(srv->rstats);
    srv->rstats = NULL;
    mcp_hub_free(srv->mcp);
    srv->mcp = NULL;
    cache_store_free(srv->responses); /* references requests held are gone with them */
    srv->responses = NULL;
    cache_store_free(srv->tools);
    srv->tools = NULL;
    free(srv->cstats);
    srv->cstats = NULL;
    toolstats_free(srv->toolstats);
    srv->toolstats = NULL;
    prefixcount_free(srv->prefix);
    srv->prefix = NULL;
}

/* On the ledger's writer thread: the ledger fails, or works again. Said on stderr, in the
 * request log and to the webhook, as the budget alerts are. */
static void ledger_alert(void *arg, int failing, const char *why, uint64_t pending)
{
    struct gate_server *srv = arg;
    char when[40];
    cJSON *doc = cJSON_CreateObject();
    char *line;
    struct conf *cf = gate_conf_get(srv); /* ledger.on_failure may change by a reload */
    int open = cf->ledger_fail_open;

    conf_unref(cf);

    gate_iso_utc(gate_wall_now(), when, sizeof(when));
    cJSON_AddStringToObject(doc, "time", when);
    cJSON_AddStringToObject(doc, "alert", failing ? "ledger_failing" : "ledger_recovered");
    if (failing)
        cJSON_AddStringToObject(doc, "error", why);
    cJSON_AddNumberToObject(doc, "pending", (double)pending);
    cJSON_AddStringToObject(doc, "on_failure", open ? "open" : "closed");
    line = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (failing)
        fprintf(stderr,
                "tokengate: alert: the ledger cannot commit records (%s); %s until it can\n",
                why,
                open ? "requests are still admitted (ledger.on_failure: open)"
                                            : "new requests are refused with 503");
    else
        fprintf(stderr, "tokengate: alert: the ledger works again\n");
    if (line != NULL) {
        if (srv->reqlog != NULL)
            reqlog_write(srv->reqlog, line, strlen(line));
        gate_admin_alert(srv->admin, line);
    }
    cJSON_free(line);
}

/* gate_server.alert: the data plane's alerts go to the admin's subscribers. */
static void admin_alert(struct gate_server *srv, const char *json)
{
    gate_admin_alert(srv->admin, json);
}

/*
 * SIGHUP is blocked from the start, in this thread and so in every thread it starts: it never
 * ends the gate (whose default action it would be), and the main thread's sigwait takes it to
 * reload the config (gate/reload.c).
 */
static void block_sighup(void)
{
    sigset_t hup;

    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
}

int gate_server_run(struct conf *conf, const struct gate_overrides *ov)
{
    struct gate_server srv = {0};
    char err[1024];
    sigset_t sigs;
    int started = 0, rc = -1, sig;

    block_sighup();
    pthread_mutex_init(&srv.conf_mu, NULL);
    pthread_cond_init(&srv.conf_taken, NULL);
    pthread_mutex_init(&srv.reload_mu, NULL);
    srv.conf_live = conf_ref(conf);
    srv.reload = gate_reload;
    if (ov != NULL)
        srv.ov = *ov;
    srv.mem.limit = conf->max_memory_in_flight;
    srv.status_json = gate_status_json;
    srv.alert = admin_alert;
    clock_gettime(CLOCK_MONOTONIC, &srv.started);
    if (gate_clock_init(err, sizeof(err)) < 0)
        goto fail;
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    /* a file-size limit makes a write fail (EFBIG): the ledger handles that, it must not kill */
    signal(SIGXFSZ, SIG_IGN);

    srv.upstream_ctx = tls_client_ctx(conf, err, sizeof(err));
    if (srv.upstream_ctx == NULL)
        goto fail;
    if (conf->tls_cert != NULL && (srv.listen_ctx = tls_server_ctx(conf, err, sizeof(err))) == NULL)
        goto fail;
    if (conf->request_log != NULL &&
        (srv.reqlog = reqlog_open(conf->request_log, err, sizeof(err))) == NULL)
        goto fail;

    if (conf->ledger_path != NULL &&
        (srv.ledger = ledger_open(conf->ledger_path, (enum ledger_sync)conf->ledger_sync, err,
                                  sizeof(err))) == NULL)
        goto fail;
    if (srv.ledger != NULL && conf->nscopes > 0) {
        /* before the budgets are restored: what died in flight last time is charged first */
        char jpath[4200];
        int recovered = 0;
        snprintf(jpath, sizeof(jpath), "%s.inflight", conf->ledger_path);
        srv.journal = journal_open(jpath, conf->workers, conf->ledger_sync == LEDGER_SYNC_FULL,
                                   srv.ledger, &recovered, err, sizeof(err));
        if (srv.journal == NULL)
            goto fail;
        if (recovered > 0)
            fprintf(stderr,
                    "tokengate: %d requests were in flight when the gate last stopped without "
                    "settling them: recorded as unsettled, charged at their reservation\n",
                    recovered);
        ledger_set_journal(srv.ledger, srv.journal);
    }
    if (conf->nscopes > 0) {
        srv.book = budget_book_new(conf, srv.ledger, gate_wall_now(), err, sizeof(err));
        if (srv.book == NULL)
            goto fail;
        srv.book_conf = conf_ref(conf);
    }

    /* routing's shared state, kept across reloads: the label cache keeps the size it starts
     * with (routing.classifier.max_entries at start) */
    srv.health = route_health_new();
    srv.labels = labelcache_new(conf->routing.classifier_max_entries > 0
                                    ? conf->routing.classifier_max_entries
                                    : 10000);
    srv.rstats = rstats_new();
    srv.mcp = mcp_hub_new();
    srv.mcp_pipeline = &pipeline_mcp;
    /* the caches: made even when cache.responses.enabled is false (a reload may turn it on);
     * their caps follow reloads (reload.c) */
    srv.responses = cache_store_new(conf->cache.max_bytes, conf->cache.max_entry_bytes);
    srv.tools = cache_store_new(conf->cache.tools_max_bytes, conf->cache.tools_max_entry_bytes);
    srv.cstats = calloc(1, sizeof(*srv.cstats));
    srv.toolstats = toolstats_new();
    /* the prefix-count memo: made even when cache.prefix_counts is off (its cap is then 0 and
     * a reload may turn it on), kept across reloads, which set its cap (reload.c); sharded
     * by the cap it would have on */
    srv.prefix = prefixcount_new(prefixcount_conf_cap(1, conf->cache.prefix_max_entries));
    prefixcount_set_cap(srv.prefix, prefixcount_conf_cap(conf->cache.prefix_counts,
                                                         conf->cache.prefix_max_entries));
    if (srv.health == NULL || srv.labels == NULL || srv.rstats == NULL || srv.responses == NULL ||
        srv.tools == NULL || srv.cstats == NULL || srv.toolstats == NULL || srv.mcp == NULL ||
        srv.prefix == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }

    /* build the tokenizer's tables now, not on some request (about 5 ms each) */
    int64_t t0 = gate_now_us();
    if (tok_encoding("o200k_base") == NULL || tok_encoding("cl100k_base") == NULL) {
        snprintf(err, sizeof(err), "cannot build the tokenizer's tables: out of memory");
        goto fail;
    }
    fprintf(stderr, "tokengate: tokenizer tables (o200k_base, cl100k_base) built in %.1f ms\n",
            (gate_now_us() - t0) / 1000.0);
    for (int i = 0; i < conf->nmodels; i++)
        if (conf->models[i].encoding != NULL)
            (void)tok_encoding(conf->models[i].encoding);
    {
        /* the tables for merging long pieces, built behind the gate's back rather than by the
         * first request that has such a piece; a request that needs them sooner builds or waits
         * for them itself, so a thread that cannot be made changes nothing but that wait */
        pthread_t t;
        if (pthread_create(&t, NULL, prepare_long_main, NULL) == 0)
            pthread_detach(t);
    }

    srv.nworkers = conf->workers;
    srv.workers = calloc((size_t)srv.nworkers, sizeof(*srv.workers));
    if (srv.workers == NULL) {
        srv.nworkers = 0; /* server_free walks none */
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    srv.port = conf->listen_port;
    for (int i = 0; i < srv.nworkers; i++) {
        struct gate_worker *w = &srv.workers[i];
        int fd = open_listener(conf->listen_host, srv.port, err, sizeof(err));
        if (fd < 0)
            goto fail;
        if (srv.port == 0)
            srv.port = bound_port(fd); /* the rest share the port the kernel picked */
        w->id = i;
        w->srv = &srv;
        w->conf = conf_ref(conf);
        if ((w->drift = calloc(1, sizeof(*w->drift))) == NULL || tcount_drift_init(w->drift) != 0) {
            close(fd);
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
        w->base = new_base();
        if (w->base == NULL) {
            close(fd);
            snprintf(err, sizeof(err), "cannot create an event base");
            goto fail;
        }
        w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (w->dns == NULL)
            w->dns = evdns_base_new(w->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        RAND_bytes((unsigned char *)&w->rng, sizeof(w->rng));
        if (w->dns == NULL || (w->pools = poolset_new(w, conf)) == NULL ||
            gate_reload_worker_init(w) < 0) {
            close(fd);
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
        w->listener = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (w->listener == NULL) {
            close(fd);
            snprintf(err, sizeof(err), "cannot listen");
            goto fail;
        }
        evconnlistener_set_error_cb(w->listener, accept_error_cb);
        w->drain_timer = evtimer_new(w->base, drain_cb, w);
        w->conn_handler = &req_conn_handler;
        if (w->drain_timer == NULL || (w->cq = completion_queue_new(w->base)) == NULL) {
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
    }
    if ((conf->admin.host != NULL || conf->alerts.webhook != NULL) && (srv.admin = gate_admin_start(&srv, err, sizeof(err))) == NULL)
        goto fail;
    if (srv.ledger != NULL)
        ledger_set_alert(srv.ledger, ledger_alert, &srv);
    if (srv.book == NULL)
        fprintf(stderr, "tokengate: warning: no org is configured: the gate asks callers for no "
                        "key and enforces no budget\n");

    for (int p = 0; p < conf->nproviders; p++) {
        const struct conf_provider *prov = &conf->providers[p];
        if (prov->api_key_env != NULL && prov->api_key == NULL)
            fprintf(stderr, "tokengate: warning: provider '%s': %s is not set; %s\n", prov->name,
                    prov->api_key_env,
                    srv.book != NULL
                        ? "its requests go without a provider key (agents' gate keys are never "
                          "forwarded)"
                        : "clients' own keys are passed through");
    }

    /* only the main thread takes SIGINT, SIGTERM and SIGHUP */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    for (int i = 0; i < srv.nworkers; i++) {
        if (pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]) != 0) {
            snprintf(err, sizeof(err), "cannot start worker threads");
            break;
        }
        started++;
    }
    if (started == srv.nworkers) {
        fprintf(stderr, "tokengate: listening on %s://%s%s%s:%d with %d worker%s\n",
                srv.listen_ctx ? "https" : "http", strchr(conf->listen_host, ':') ? "[" : "",
                conf->listen_host, strchr(conf->listen_host, ':') ? "]" : "", srv.port,
                srv.nworkers, srv.nworkers == 1 ? "" : "s");
        while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
            fprintf(stderr, "tokengate: SIGHUP received: reloading %s\n", conf->path);
            (void)gate_reload(&srv, err, sizeof(err)); /* it logs the outcome */
        }
        pthread_mutex_lock(&srv.reload_mu); /* a reload under way ends first */
        srv.stopping = 1;
        pthread_mutex_unlock(&srv.reload_mu);
        fprintf(stderr,
                "tokengate: %s received, finishing requests under way (at most %d ms)\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM", GATE_DRAIN_MS);
        rc = 0;
        /* event_active is safe from another thread once evthread_use_pthreads() ran */
        for (int i = 0; i < started; i++)
            event_active(srv.workers[i].drain_timer, EV_TIMEOUT, 0);
    } else {
        pthread_mutex_lock(&srv.reload_mu);
        srv.stopping = 1;
        pthread_mutex_unlock(&srv.reload_mu);
        for (int i = 0; i < started; i++)
            event_base_loopexit(srv.workers[i].base, NULL);
    }
    for (int i = 0; i < started; i++)
        pthread_join(srv.workers[i].thread, NULL);
    if (rc == 0) {
        server_free(&srv);
        return 0;
    }
fail:
    fprintf(stderr, "tokengate: %s\n", err);
    server_free(&srv);
    return -1;
}
