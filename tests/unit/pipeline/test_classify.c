/*
 * Unit tests of the classifier (gate/pipeline/classify.c): classify_label asks the configured
 * classifier target for a label of a request's last user message, on its own upstream
 * exchange, charged to the agent and recorded in the ledger as the classifier's.
 *
 * What runs is the gate's own code from the socket on, as in test_admit.c: a client connection
 * over a socketpair, the real stages parse, authenticate, body, route, count, admit and
 * prepare, the completion queue, the upstream pools, the budgets, the ledger and the crash
 * journal. Before the route stage the test's stage asks classify_label for the label of the
 * last user message (as stage_route does for a classifier rule) and keeps what it got; the
 * last stage is the test's: it answers 200 with the label and classify_log's object. The
 * classifier is a small HTTP responder of the test's own (libevent's evhttp on a loopback
 * ephemeral port, on the worker's loop), which answers a word, answers late, or fails.
 *
 * Checked: an answered label, the classifier request as the provider receives it (the prompt,
 * the user text, the output cap, the provider's key and not the client's), its ledger row and
 * its charge on the agent's budgets; a second identical request from the same agent is
 * answered from the cache (the responder sees one request); two agents never share a label; a
 * slow classifier gives no label at the timeout, before the responder answers, charged its
 * input; a client that leaves meanwhile is finalized once the timer fires; a failing
 * classifier (500) gives no label; an agent whose budget has no room for the classifier gets
 * no label and the responder sees nothing. With a budget store that answers later (as in
 * test_admit.c), the classifier is sent once the store admits it, and a store slower than the
 * classifier's timeout gives no label, nothing sent, its late grant released.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "gate/budget/journal.h"
#include "gate/budget/ledger.h"
#include "gate/budget/store.h"
#include "gate/core/worker.h"
#include "gate/http/conn.h"
#include "gate/pipeline/classify.h"
#include "gate/pipeline/completion.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/reqlog.h"
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"
#include "gate/upstream/poolset.h"
#include "gate/util/clock.h"
#include "gate/util/jsonmem.h"
#include "routing/labelcache.h"
#include "run_suite.h"
#include "tmpdb.h"

#define PROVIDER_KEY "sk-classifier-provider-key"
#define CLIENT_KEY_A "tg-test-alpha-0001"
#define CLIENT_KEY_B "tg-test-beta-0002"

#define CONFIG_FMT                                                                                 \
    "providers:\n"                                                                                 \
    "  o:\n"                                                                                       \
    "    base_url: http://127.0.0.1:9/v1\n"                                                        \
    "  c:\n"                                                                                       \
    "    base_url: http://127.0.0.1:%d/v1\n"                                                       \
    "    api_key_env: TG_TEST_CLASSIFIER_KEY\n"                                                    \
    "  ca:\n"                                                                                      \
    "    base_url: http://127.0.0.1:%d/v1\n"                                                       \
    "    format: anthropic\n"                                                                      \
    "    api_key_env: TG_TEST_CLASSIFIER_KEY\n"                                                    \
    "models:\n"                                                                                    \
    "  gpt-4o:\n"                                                                                  \
    "    provider: o\n"                                                                            \
    "    price: { input: 2.50, output: 10.00 }\n"                                                  \
    "  cls-mini:\n"                                                                                \
    "    provider: c\n"                                                                            \
    "    price: { input: 1.00, output: 4.00 }\n"                                                   \
    "  cls-haiku:\n"                                                                               \
    "    provider: ca\n"                                                                           \
    "    price: { input: 1.00, output: 5.00 }\n"                                                   \
    "org: acme\n"                                                                                  \
    "departments:\n"                                                                               \
    "  research:\n"                                                                                \
    "    teams:\n"                                                                                 \
    "      search: { agents: [crawler-1, crawler-2] }\n"                                           \
    "keys:\n"                                                                                      \
    "  " CLIENT_KEY_A ": crawler-1\n"                                                              \
    "  " CLIENT_KEY_B ": crawler-2\n"                                                              \
    "budgets:\n"                                                                                   \
    "  - { scope: team:search, window: day, tokens: 100000 }\n"                                    \
    "  - { scope: agent:crawler-2, window: day, tokens: %d }\n"                                    \
    "ledger: { path: /nonexistent/ledger.db }\n"

/* the classifier's timeout where it is meant to pass (slow fixture), and where it must not
 * (a loaded machine, valgrind) */
#define TIMEOUT_MS 300
#define TIMEOUT_GENEROUS_MS 30000
/* where the test closes the client while the classifier is asked: the gate must see the close
 * before this timer fires, which on two loaded cores under ASan took more than 300 ms */
#define TIMEOUT_GONE_MS 2000

/* ---- the classifier: an HTTP responder on the worker's loop ------------------------------ */

enum rmode { R_ANSWER, R_SLOW, R_FAIL };

static struct {
    struct evhttp *http;
    int port;
    enum rmode mode;
    const char *word; /* what it answers */
    int requests;     /* requests it received */
    int answered;     /* replies it sent */
    char body[16384]; /* the last request's body */
    char auth[256];   /* its authorization header, "" for none */
    char xkey[256];   /* its x-api-key header, "" for none */
    char version[64]; /* its anthropic-version header, "" for none */
    char path[128];
    char rid[128];                  /* its x-request-id */
    struct evhttp_request *pending; /* a slow reply, until sent or its connection closes */
    struct event *later;
    int64_t slow_ms; /* how late a slow reply comes: well after the gate's timeout */
} rsp;

#define ANSWER_IN 57 /* the usage it reports */
#define ANSWER_OUT 1

static void reply(struct evhttp_request *r)
{
    char json[1024];
    struct evbuffer *b = evbuffer_new();

    if (strcmp(rsp.path, "/v1/messages") == 0) /* Anthropic's */
        snprintf(json, sizeof(json),
                 "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
                 "\"model\":\"cls-haiku\",\"content\":[{\"type\":\"text\",\"text\":\"%s\"}],"
                 "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":%d,"
                 "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
                 "\"output_tokens\":%d}}",
                 rsp.word, ANSWER_IN, ANSWER_OUT);
    else
        snprintf(
            json, sizeof(json),
            "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"cls-mini\","
            "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},"
            "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%d,"
            "\"completion_tokens\":%d,\"total_tokens\":%d}}",
            rsp.word, ANSWER_IN, ANSWER_OUT, ANSWER_IN + ANSWER_OUT);
    evbuffer_add(b, json, strlen(json));
    evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "application/json");
    evhttp_send_reply(r, 200, "OK", b);
    evbuffer_free(b);
    rsp.answered++;
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (rsp.pending != NULL)
        reply(rsp.pending);
    rsp.pending = NULL;
}

static void on_conn_close(struct evhttp_connection *c, void *arg)
{
    (void)c;
    (void)arg;
    rsp.pending = NULL; /* the gate gave up: nothing to answer */
}

static void on_request(struct evhttp_request *r, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    struct evkeyvalq *h = evhttp_request_get_input_headers(r);
    size_t n = evbuffer_get_length(in);
    const char *v;

    (void)arg;
    rsp.requests++;
    if (n >= sizeof(rsp.body))
        n = sizeof(rsp.body) - 1;
    evbuffer_copyout(in, rsp.body, n);
    rsp.body[n] = '\0';
    v = evhttp_find_header(h, "authorization");
    snprintf(rsp.auth, sizeof(rsp.auth), "%s", v ? v : "");
    v = evhttp_find_header(h, "x-api-key");
    snprintf(rsp.xkey, sizeof(rsp.xkey), "%s", v ? v : "");
    v = evhttp_find_header(h, "anthropic-version");
    snprintf(rsp.version, sizeof(rsp.version), "%s", v ? v : "");
    snprintf(rsp.path, sizeof(rsp.path), "%s", evhttp_request_get_uri(r));
    v = evhttp_find_header(h, "x-request-id");
    snprintf(rsp.rid, sizeof(rsp.rid), "%s", v ? v : "");
    if (rsp.mode == R_FAIL) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}");
        evhttp_send_reply(r, 500, "Internal Server Error", b);
        evbuffer_free(b);
        return;
    }
    if (rsp.mode == R_SLOW) {
        /* answers well after the gate's timeout */
        struct timeval tv = {.tv_sec = (time_t)(rsp.slow_ms / 1000),
                             .tv_usec = (suseconds_t)(rsp.slow_ms % 1000) * 1000};
        rsp.pending = r;
        evhttp_connection_set_closecb(evhttp_request_get_connection(r), on_conn_close, NULL);
        evtimer_add(rsp.later, &tv);
        return;
    }
    reply(r);
}

/* ---- the gate's pieces --------------------------------------------------------------------- */

static struct conf *conf;
static struct gate_server srv;
static struct gate_worker worker;
static struct conn_handler handler;
static char log_path[320], journal_path[320];

/* What the test's stages saw. */
static char seen_label[64];
static int classified; /* the route stage went on with a label */
static char cls_log[1024];
static int forwarded;

/* The last user message's text of the request's body (a string content). */
static const char *last_user(struct gate_req *req, size_t *len)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req->json, "messages"), *m, *last = NULL;

    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0)
            last = m;
    }
    const cJSON *c = last ? cJSON_GetObjectItemCaseSensitive(last, "content") : NULL;
    ck_assert(cJSON_IsString(c));
    *len = strlen(c->valuestring);
    return c->valuestring;
}

/* Asks the label first, as stage_route does for a classifier rule, then routes. */
static enum stage_rc route(struct gate_req *req)
{
    if (req->rt.label == NULL) {
        size_t len;
        const char *text = last_user(req, &len);
        if (classify_label(req, text, len) == 0) {
            ck_assert_int_eq(req->phase, REQ_WAITING);
            return STAGE_WAIT;
        }
        ck_assert_ptr_nonnull(req->rt.label);
    }
    snprintf(seen_label, sizeof(seen_label), "%s", req->rt.label);
    classified++;
    return stage_route(req);
}

static enum stage_rc forward(struct gate_req *req)
{
    if (spend_forward(req) < 0)
        return STAGE_ANSWERED;
    forwarded++;
    cJSON *o = cJSON_CreateObject();
    classify_log(req, o);
    ck_assert(cJSON_PrintPreallocated(o, cls_log, sizeof(cls_log), 0));
    cJSON_Delete(o);
    req_respond(req, 200, "application/json", NULL, "{}", 2);
    return STAGE_ANSWERED;
}

static const struct pipeline_stage stages[] = {
    {"parse", REQ_ADMITTING, stage_parse},     {"authenticate", REQ_ADMITTING, stage_auth},
    {"body", REQ_ADMITTING, stage_body},       {"route", REQ_ADMITTING, route},
    {"count", REQ_ADMITTING, stage_count},     {"admit", REQ_ADMITTING, stage_admit},
    {"prepare", REQ_ADMITTING, stage_prepare}, {"forward", REQ_DISPATCHED, forward},
};
static const struct pipeline table = {
    .stages = stages, .n = (int)(sizeof(stages) / sizeof(stages[0])), .fail = req_fail};

static void on_ready(void *arg)
{
    struct gate_req *req = arg;

    if (req->phase == REQ_READING)
        pipeline_start(&table, req);
}

static void start_with(int b_tokens, int64_t timeout_ms)
{
    char text[4096], err[400] = "";
    int rec = 0;

    evthread_use_pthreads();
    jsonmem_init();
    setenv("TG_TEST_CLASSIFIER_KEY", PROVIDER_KEY, 1);
    memset(&worker, 0, sizeof(worker));
    worker.base = event_base_new();
    ck_assert_ptr_nonnull(worker.base);

    memset(&rsp, 0, sizeof(rsp));
    rsp.word = "simple";
    rsp.http = evhttp_new(worker.base);
    ck_assert_ptr_nonnull(rsp.http);
    evhttp_set_gencb(rsp.http, on_request, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(rsp.http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl), 0);
    rsp.port = ntohs(sa.sin_port);
    rsp.later = evtimer_new(worker.base, on_later, NULL);

    snprintf(text, sizeof(text), CONFIG_FMT, rsp.port, rsp.port, b_tokens);
    conf = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));
    ck_assert_msg(conf != NULL, "%s", err);
    /* the classifier, as routing.classifier sets it */
    const struct conf_model *cm = conf_find_model(conf, "cls-mini");
    ck_assert_ptr_nonnull(cm);
    conf->routing.classifier = (int)(cm - conf->models); /* (index: set by the conf branch) */
    conf->routing.classifier_timeout_ms = timeout_ms;
    rsp.slow_ms = 4 * timeout_ms;
    conf->routing.classifier_ttl_ms = 600000;
    conf->routing.classifier_max_entries = 100;

    tmpdb_make("classify");
    snprintf(log_path, sizeof(log_path), "%s/requests.log", tmpdb_dir);
    snprintf(journal_path, sizeof(journal_path), "%s/journal", tmpdb_dir);
    memset(&srv, 0, sizeof(srv));
    srv.ledger = ledger_open(tmpdb_path, LEDGER_SYNC_NORMAL, err, sizeof(err));
    ck_assert_msg(srv.ledger != NULL, "%s", err);
    srv.book = budget_book_new(conf, NULL, gate_wall_now(), err, sizeof(err));
    ck_assert_msg(srv.book != NULL, "%s", err);
    srv.reqlog = reqlog_open(log_path, err, sizeof(err));
    ck_assert_msg(srv.reqlog != NULL, "%s", err);
    srv.journal = journal_open(journal_path, 1, 0, srv.ledger, &rec, err, sizeof(err));
    ck_assert_msg(srv.journal != NULL, "%s", err);
    ledger_set_journal(srv.ledger, srv.journal);
    srv.labels = labelcache_new(100);
    ck_assert_ptr_nonnull(srv.labels);
    worker.srv = &srv;
    worker.conf = conf;
    worker.cq = completion_queue_new(worker.base);
    ck_assert_ptr_nonnull(worker.cq);
    worker.pools = poolset_new(&worker, conf);
    ck_assert_ptr_nonnull(worker.pools);
    handler = req_conn_handler;
    handler.ready = on_ready;
    worker.conn_handler = &handler;
    srv.workers = &worker;
    srv.nworkers = 1;
    classified = forwarded = 0;
    seen_label[0] = cls_log[0] = '\0';
}

static void setup(void)
{
    start_with(100000, TIMEOUT_GENEROUS_MS);
}

static void setup_slow(void)
{
    start_with(100000, TIMEOUT_MS);
}

static void setup_poor(void)
{
    /* crawler-2: room for a short request, not for the classifier's prompt */
    start_with(60, TIMEOUT_GENEROUS_MS);
}

static void stop(void)
{
    conn_close_all(&worker);
    completion_queue_free(worker.cq);
    spend_worker_free(&worker);
    poolset_free(worker.pools);
    event_free(rsp.later);
    evhttp_free(rsp.http);
    event_base_loop(worker.base, EVLOOP_NONBLOCK);
    event_base_free(worker.base);
    if (srv.ledger != NULL)
        ledger_close(srv.ledger);
    journal_close(srv.journal);
    reqlog_close(srv.reqlog);
    budget_book_free(srv.book);
    labelcache_free(srv.labels);
    conf_unref(conf);
    unlink(log_path);
    unlink(journal_path);
    tmpdb_remove();
}

static void ledger_commit(void)
{
    ledger_close(srv.ledger);
    srv.ledger = NULL;
}

static int64_t ledger_field(const char *id, const char *what)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT %s FROM requests WHERE id = '%s'", what, id);
    return tmpdb_query_int(sql);
}

/* ---- a client ---------------------------------------------------------------------------- */

struct client {
    int fd;
    char buf[8192];
    size_t len;
};

static void client_send(struct client *c, const char *key, const char *id, const char *user)
{
    int fds[2];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char body[24576], req[26624];

    ck_assert_uint_lt(strlen(user), sizeof(body) - 200);
    snprintf(body, sizeof(body),
             "{\"model\":\"gpt-4o\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}",
             user);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    conn_accept(&worker, fds[0], (struct sockaddr *)&sa, sizeof(sa));
    c->fd = fds[1];
    c->len = 0;
    ck_assert_int_eq(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: gate\r\n"
                     "Authorization: Bearer %s\r\nx-request-id: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     key, id, strlen(body), body);
    ck_assert_int_eq(write(c->fd, req, (size_t)n), n);
}

static int client_has_response(struct client *c)
{
    ssize_t n;

    while (c->len < sizeof(c->buf) - 1 &&
           (n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len)) > 0)
        c->len += (size_t)n;
    c->buf[c->len] = '\0';
    const char *end = strstr(c->buf, "\r\n\r\n");
    const char *cl = strcasestr(c->buf, "\r\ncontent-length:");
    if (end == NULL || cl == NULL || cl > end)
        return 0;
    return c->len >= (size_t)(end + 4 - c->buf) + strtoul(cl + 17, NULL, 10);
}

static int client_status(const struct client *c)
{
    ck_assert_msg(strncmp(c->buf, "HTTP/1.1 ", 9) == 0, "%s", c->buf);
    return atoi(c->buf + 9);
}

/* ---- a store that answers later (as a networked one would; see test_admit.c) ----------- */

struct parked {
    struct budget_ask ask;
    double now;
    struct budget_resv *r;
    struct budget_refusal *why;
    struct budget_cont k;
    enum budget_rc rc;
};

struct net_store {
    struct budget_store base;
    struct budget_store *inner;
    pthread_mutex_t mu;
    struct parked q[4];
    int nq;
};

static struct net_store *net;

static enum budget_rc net_reserve(struct budget_store *st, const struct budget_ask *ask, double now,
                                  struct budget_resv *r, struct budget_refusal *why,
                                  const struct budget_cont *k)
{
    struct net_store *n = (struct net_store *)st;

    if (k == NULL)
        return n->inner->ops->reserve(n->inner, ask, now, r, why, NULL);
    pthread_mutex_lock(&n->mu);
    ck_assert_int_lt(n->nq, 4);
    ck_assert_ptr_null(ask->task);
    n->q[n->nq++] = (struct parked){.ask = *ask, .now = now, .r = r, .why = why, .k = *k};
    pthread_mutex_unlock(&n->mu);
    return BUDGET_PENDING;
}

static int net_settle(struct budget_store *st, struct budget_resv *r, int64_t tokens, int64_t nusd,
                      double now, struct budget_alert *alerts, int cap)
{
    struct budget_store *in = ((struct net_store *)st)->inner;
    return in->ops->settle(in, r, tokens, nusd, now, alerts, cap);
}

static void net_peek(struct budget_store *st, double now, int all,
                     void (*cb)(void *arg, const struct budget_view *v), void *arg)
{
    struct budget_store *in = ((struct net_store *)st)->inner;
    in->ops->peek(in, now, all, cb, arg);
}

static int net_set_limit(struct budget_store *st, int scope, enum conf_window w,
                         struct conf_limit limit)
{
    struct budget_store *in = ((struct net_store *)st)->inner;
    return in->ops->set_limit(in, scope, w, limit);
}

static int net_reset(struct budget_store *st, int scope, enum conf_window w, double now)
{
    struct budget_store *in = ((struct net_store *)st)->inner;
    return in->ops->reset(in, scope, w, now);
}

static int net_load(struct budget_store *st, const struct budget_state *state, double now,
                    char *err, size_t errlen)
{
    struct budget_store *in = ((struct net_store *)st)->inner;
    return in->ops->load(in, state, now, err, errlen);
}

static void net_free(struct budget_store *st)
{
    struct net_store *n = (struct net_store *)st;

    n->inner->ops->free(n->inner);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

static const struct budget_store_ops net_ops = {
    .name = "net-test",
    .reserve = net_reserve,
    .settle = net_settle,
    .peek = net_peek,
    .set_limit = net_set_limit,
    .reset = net_reset,
    .load = net_load,
    .free = net_free,
};

static void deliver(void *arg)
{
    struct parked *p = arg;

    p->k.done(p->k.arg, p->rc);
}

static void *decide_thread(void *arg)
{
    struct parked *p = arg;

    p->rc = net->inner->ops->reserve(net->inner, &p->ask, p->now, p->r, p->why, NULL);
    ck_assert_int_eq(p->k.post(p->k.worker, deliver, p), 0);
    return NULL;
}

/* The store answers parked reservation i from a thread of its own. */
static void store_answers(int i)
{
    pthread_t t;

    ck_assert_int_lt(i, net->nq);
    ck_assert_int_eq(pthread_create(&t, NULL, decide_thread, &net->q[i]), 0);
    pthread_join(t, NULL);
}

static void use_net_store(void)
{
    net = calloc(1, sizeof(*net));
    ck_assert_ptr_nonnull(net);
    net->base.ops = &net_ops;
    net->inner = budget_store_mem_new(srv.book);
    ck_assert_ptr_nonnull(net->inner);
    pthread_mutex_init(&net->mu, NULL);
    budget_book_set_store(srv.book, &net->base);
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void run_until(int (*cond)(void *arg), void *arg, const char *what)
{
    for (int i = 0; i < 20000 && !cond(arg); i++) {
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
        if (!cond(arg))
            usleep(1000);
    }
    ck_assert_msg(cond(arg), "never came: %s", what);
}

static int has_response(void *arg)
{
    return client_has_response(arg);
}

static int nothing_reserved(void *arg)
{
    (void)arg;
    return budget_reserved_total(srv.book) == 0;
}

static int log_has(void *arg)
{
    const char *needle = arg;
    char text[16384];
    FILE *f = fopen(log_path, "r");
    size_t n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;

    if (f != NULL)
        fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

/* One request from agent key with user text; returns its status, the label in seen_label and
 * classify_log's object in cls_log. */
static int ask(const char *key, const char *id, const char *user)
{
    struct client c;

    client_send(&c, key, id, user);
    run_until(has_response, &c, "the answer");
    int status = client_status(&c);
    close(c.fd);
    return status;
}

/* classify_log's object: a member of it. */
static cJSON *logged(void)
{
    cJSON *o = cJSON_Parse(cls_log);
    ck_assert_msg(o != NULL, "%s", cls_log);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "classifier");
    ck_assert_msg(c != NULL, "%s", cls_log);
    cJSON *copy = cJSON_Duplicate(c, 1);
    cJSON_Delete(o);
    return copy;
}

static const char *lstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsString(v), "%s", k);
    return v->valuestring;
}

static double lnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsNumber(v), "%s", k);
    return v->valuedouble;
}

/* What the agent's team has used today, as the book counts it. */
static int64_t team_used;
static void each_view(void *arg, const struct budget_view *v)
{
    int team = *(int *)arg;
    if (v->scope == team && v->window == CONF_WIN_DAY)
        team_used = v->used_tokens;
}

static int64_t used_by_team(void)
{
    int team = budget_find_scope(srv.book, "team:search");
    ck_assert_int_ge(team, 0);
    team_used = -1;
    budget_each(srv.book, gate_wall_now(), 0, each_view, &team);
    return team_used;
}

/* ---- the tests --------------------------------------------------------------------------- */

/* The classifier answers: its first word, lowercased, is the label; the request it received is
 * the gate's own (the prompt, the user text, a 5-token cap, temperature 0, not streamed, the
 * provider's key); its usage is charged to the agent and recorded as its own ledger row. */
START_TEST(answered_label_is_charged_and_recorded)
{
    rsp.word = "Moderate.";
    ck_assert_int_eq(ask(CLIENT_KEY_A, "ans-1", "explain how a hash map works"), 200);
    ck_assert_msg(rsp.requests == 1, "%s", cls_log);
    ck_assert_str_eq(seen_label, "moderate");
    ck_assert_int_eq(forwarded, 1);

    cJSON *sent = cJSON_Parse(rsp.body);
    ck_assert_msg(sent != NULL, "%s", rsp.body);
    ck_assert_str_eq(cJSON_GetObjectItem(sent, "model")->valuestring, "cls-mini");
    const cJSON *msgs = cJSON_GetObjectItem(sent, "messages");
    ck_assert_int_eq(cJSON_GetArraySize(msgs), 2);
    const cJSON *sys = cJSON_GetArrayItem(msgs, 0), *user = cJSON_GetArrayItem(msgs, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(sys, "role")->valuestring, "system");
    const char *prompt = cJSON_GetObjectItem(sys, "content")->valuestring;
    ck_assert_msg(strncmp(prompt, "Classify the complexity of the user's request.", 46) == 0, "%s",
                  prompt);
    ck_assert_ptr_nonnull(strstr(prompt, "simple"));
    ck_assert_ptr_nonnull(strstr(prompt, "moderate"));
    ck_assert_ptr_nonnull(strstr(prompt, "complex"));
    ck_assert_str_eq(cJSON_GetObjectItem(user, "role")->valuestring, "user");
    ck_assert_str_eq(cJSON_GetObjectItem(user, "content")->valuestring,
                     "explain how a hash map works");
    ck_assert_int_eq(cJSON_GetObjectItem(sent, "max_completion_tokens")->valueint, 5);
    ck_assert_int_eq(cJSON_GetObjectItem(sent, "temperature")->valueint, 0);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(sent, "stream")));
    cJSON_Delete(sent);
    ck_assert_str_eq(rsp.auth, "Bearer " PROVIDER_KEY); /* never the client's */
    ck_assert_str_eq(rsp.rid, "ans-1/classify");

    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "model"), "cls-mini");
    ck_assert_str_eq(lstr(lg, "label"), "moderate");
    ck_assert_str_eq(lstr(lg, "outcome"), "answered");
    ck_assert_int_eq((int)lnum(lg, "input_tokens"), ANSWER_IN);
    ck_assert_int_eq((int)lnum(lg, "output_tokens"), ANSWER_OUT);
    int64_t want_nusd =
        budget_cost(&conf_find_model(conf, "cls-mini")->price, ANSWER_IN, 0, 0, 0, ANSWER_OUT);
    ck_assert_int_eq((int64_t)(lnum(lg, "cost_usd") * 1e9 + 0.5), want_nusd);
    ck_assert(lnum(lg, "ms") >= 0);
    cJSON_Delete(lg);

    run_until(nothing_reserved, NULL, "everything settled");
    int64_t used = used_by_team();
    ledger_commit();
    ck_assert_int_eq(ledger_field("ans-1/classify", "count(*)"), 1);
    ck_assert_int_eq(ledger_field("ans-1/classify", "endpoint = 'classifier'"), 1);
    ck_assert_int_eq(ledger_field("ans-1/classify", "model = 'cls-mini'"), 1);
    ck_assert_int_eq(ledger_field("ans-1/classify", "agent = 'crawler-1'"), 1);
    ck_assert_int_eq(ledger_field("ans-1/classify", "team = 'search'"), 1);
    ck_assert_int_eq(ledger_field("ans-1/classify", "decision = 'admitted'"), 1);
    ck_assert_int_eq(ledger_field("ans-1/classify", "status"), 200);
    ck_assert_int_eq(ledger_field("ans-1/classify", "tokens_charged"), ANSWER_IN + ANSWER_OUT);
    ck_assert_int_eq(ledger_field("ans-1/classify", "cost_nusd"), want_nusd);
    ck_assert_int_gt(ledger_field("ans-1/classify", "reserved_tokens"), 5);
    ck_assert_int_eq(ledger_field("ans-1/classify", "key_id = (SELECT key_id FROM requests "
                                                    "WHERE id = 'ans-1')"),
                     1);
    /* the agent's budgets hold both: the request's and the classifier's */
    ck_assert_int_eq(used, tmpdb_query_int("SELECT sum(tokens_charged) FROM requests"));
    ck_assert_int_eq(tmpdb_query_int("SELECT count(*) FROM requests"), 2);
    stop();
}
END_TEST

/* The same text from the same agent again: the label comes from the cache, the classifier is
 * not asked again and nothing more is charged for it. */
START_TEST(second_time_is_cached)
{
    ck_assert_int_eq(ask(CLIENT_KEY_A, "c-1", "hello there"), 200);
    ck_assert_str_eq(seen_label, "simple");
    ck_assert_int_eq(rsp.requests, 1);
    rsp.word = "complex"; /* would it be asked again, the label would change */
    ck_assert_int_eq(ask(CLIENT_KEY_A, "c-2", "hello there"), 200);
    ck_assert_str_eq(seen_label, "simple");
    ck_assert_int_eq(rsp.requests, 1);
    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "outcome"), "cached");
    ck_assert_str_eq(lstr(lg, "label"), "simple");
    ck_assert_int_eq((int)lnum(lg, "input_tokens"), 0);
    cJSON_Delete(lg);
    /* another text is asked */
    ck_assert_int_eq(ask(CLIENT_KEY_A, "c-3", "hello there!"), 200);
    ck_assert_int_eq(rsp.requests, 2);
    ck_assert_str_eq(seen_label, "complex");
    run_until(nothing_reserved, NULL, "everything settled");
    ledger_commit();
    ck_assert_int_eq(ledger_field("c-1/classify", "count(*)"), 1);
    ck_assert_int_eq(ledger_field("c-2/classify", "count(*)"), 0);
    ck_assert_int_eq(ledger_field("c-3/classify", "count(*)"), 1);
    stop();
}
END_TEST

/* Two agents with the same text: each has its own label, asked of the classifier for each. */
START_TEST(two_tenants_never_share_a_label)
{
    rsp.word = "simple";
    ck_assert_int_eq(ask(CLIENT_KEY_A, "t-a1", "write me a sorting function"), 200);
    ck_assert_str_eq(seen_label, "simple");
    rsp.word = "complex";
    ck_assert_int_eq(ask(CLIENT_KEY_B, "t-b1", "write me a sorting function"), 200);
    ck_assert_int_eq(rsp.requests, 2);
    ck_assert_str_eq(seen_label, "complex");
    /* each agent's own is cached */
    ck_assert_int_eq(ask(CLIENT_KEY_A, "t-a2", "write me a sorting function"), 200);
    ck_assert_str_eq(seen_label, "simple");
    ck_assert_int_eq(ask(CLIENT_KEY_B, "t-b2", "write me a sorting function"), 200);
    ck_assert_str_eq(seen_label, "complex");
    ck_assert_int_eq(rsp.requests, 2);
    run_until(nothing_reserved, NULL, "everything settled");
    ledger_commit();
    ck_assert_int_eq(ledger_field("t-b1/classify", "agent = 'crawler-2'"), 1);
    stop();
}
END_TEST

/* A classifier slower than timeout_ms: no label, at the timeout (the responder had not
 * answered yet), the request goes on; the classifier is charged its input (the provider had
 * the prompt) and recorded as timed out. */
START_TEST(slow_classifier_gives_no_label_at_the_timeout)
{
    rsp.mode = R_SLOW;
    int64_t t0 = gate_now_us();
    ck_assert_int_eq(ask(CLIENT_KEY_A, "slow-1", "hello there"), 200);
    int64_t took_ms = (gate_now_us() - t0) / 1000;
    ck_assert_int_eq(rsp.requests, 1);
    ck_assert_int_eq(rsp.answered, 0); /* it gave up before the answer */
    ck_assert_str_eq(seen_label, "");
    /* the loop's timers count from its cached time, which may be a moment behind the clock */
    ck_assert_int_ge(took_ms, TIMEOUT_MS - 10);
    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "outcome"), "timeout");
    ck_assert_str_eq(lstr(lg, "label"), "");
    ck_assert_int_ge((int)lnum(lg, "ms"), TIMEOUT_MS - 10);
    int64_t in = (int64_t)lnum(lg, "input_tokens");
    ck_assert_int_gt(in, 10); /* the prompt, as the gate counted it */
    ck_assert_int_eq((int)lnum(lg, "output_tokens"), 0);
    cJSON_Delete(lg);
    /* the label is not cached: the next one asks again */
    rsp.mode = R_ANSWER;
    conf->routing.classifier_timeout_ms = TIMEOUT_GENEROUS_MS;
    ck_assert_int_eq(ask(CLIENT_KEY_A, "slow-2", "hello there"), 200);
    ck_assert_int_eq(rsp.requests, 2);
    ck_assert_str_eq(seen_label, "simple");
    run_until(nothing_reserved, NULL, "everything settled");
    ledger_commit();
    ck_assert_int_eq(ledger_field("slow-1/classify", "status"), 504);
    ck_assert_int_eq(ledger_field("slow-1/classify", "tokens_charged"), in);
    ck_assert_int_eq(ledger_field("slow-1/classify", "in_own"), in);
    ck_assert_int_eq(ledger_field("slow-1/classify", "error LIKE '%did not answer within 300 ms'"),
                     1);
    stop();
}
END_TEST

static int log_has_gone(void *arg)
{
    (void)arg;
    return log_has("\"id\":\"gone-1\"");
}

/* The client leaves while the classifier is asked: the request waits for the timer, then ends
 * (a 499), nothing is forwarded, and nothing stays reserved. */
START_TEST(client_gone_while_classifying)
{
    struct client c;

    rsp.mode = R_SLOW;
    conf->routing.classifier_timeout_ms = TIMEOUT_GONE_MS;
    rsp.slow_ms = 4 * TIMEOUT_GONE_MS;
    client_send(&c, CLIENT_KEY_A, "gone-1", "hello there");
    for (int i = 0; i < 2000 && rsp.requests == 0; i++) {
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    ck_assert_int_eq(rsp.requests, 1);
    close(c.fd);
    run_until(log_has_gone, NULL, "the request's log record");
    run_until(nothing_reserved, NULL, "everything released");
    ck_assert_int_eq(forwarded, 0);
    ck_assert_int_eq(classified, 0);
    ledger_commit();
    ck_assert_int_eq(ledger_field("gone-1", "status"), 499);
    ck_assert_int_eq(ledger_field("gone-1/classify", "status"), 504);
    stop();
}
END_TEST

/* A classifier that fails (500): no label, nothing charged (an error without usage), and the
 * request goes on. */
START_TEST(failing_classifier_gives_no_label)
{
    rsp.mode = R_FAIL;
    ck_assert_int_eq(ask(CLIENT_KEY_A, "fail-1", "hello there"), 200);
    ck_assert_int_eq(rsp.requests, 1);
    ck_assert_str_eq(seen_label, "");
    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "outcome"), "failed");
    ck_assert_str_eq(lstr(lg, "error"), "the classifier answered status 500");
    ck_assert_int_eq((int)lnum(lg, "input_tokens"), 0);
    cJSON_Delete(lg);
    run_until(nothing_reserved, NULL, "everything settled");
    ledger_commit();
    ck_assert_int_eq(ledger_field("fail-1/classify", "status"), 500);
    ck_assert_int_eq(ledger_field("fail-1/classify", "tokens_charged"), 0);
    stop();
}
END_TEST

/* An answer that is no label: "" (not cached: asked again next time). */
START_TEST(an_answer_that_is_no_label)
{
    rsp.word = "I think this is hard";
    ck_assert_int_eq(ask(CLIENT_KEY_A, "odd-1", "hello there"), 200);
    ck_assert_str_eq(seen_label, "");
    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "outcome"), "answered");
    ck_assert_int_eq((int)lnum(lg, "input_tokens"), ANSWER_IN);
    cJSON_Delete(lg);
    ck_assert_int_eq(ask(CLIENT_KEY_A, "odd-2", "hello there"), 200);
    ck_assert_int_eq(rsp.requests, 2);
    stop();
}
END_TEST

/* An agent whose budget has no room for the classifier's prompt: no label, the classifier
 * never sees the request, nothing is charged or recorded for it; the request itself still
 * fits and goes on. */
START_TEST(budget_refusal_gives_no_label_without_sending)
{
    ck_assert_int_eq(ask(CLIENT_KEY_B, "poor-1", "hi"), 200);
    ck_assert_int_eq(rsp.requests, 0);
    ck_assert_str_eq(seen_label, "");
    ck_assert_int_eq(forwarded, 1);
    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "outcome"), "refused");
    ck_assert_int_eq((int)lnum(lg, "input_tokens"), 0);
    cJSON_Delete(lg);
    run_until(nothing_reserved, NULL, "everything settled");
    ledger_commit();
    ck_assert_int_eq(ledger_field("poor-1/classify", "count(*)"), 0);
    ck_assert_int_eq(ledger_field("poor-1", "status"), 200);
    stop();
}
END_TEST

/* A classifier in the Anthropic format is asked in its own: the system prompt as "system",
 * max_tokens, the provider's key as x-api-key with anthropic-version, and its answer read. */
START_TEST(anthropic_classifier)
{
    conf->routing.classifier = (int)(conf_find_model(conf, "cls-haiku") - conf->models);
    rsp.word = "complex";
    ck_assert_int_eq(ask(CLIENT_KEY_A, "anth-1", "design a database"), 200);
    ck_assert_int_eq(rsp.requests, 1);
    ck_assert_str_eq(rsp.path, "/v1/messages");
    ck_assert_str_eq(seen_label, "complex");
    ck_assert_str_eq(rsp.xkey, PROVIDER_KEY);
    ck_assert_str_eq(rsp.auth, "");
    ck_assert_str_ne(rsp.version, "");
    cJSON *sent = cJSON_Parse(rsp.body);
    ck_assert_msg(sent != NULL, "%s", rsp.body);
    ck_assert_str_eq(cJSON_GetObjectItem(sent, "model")->valuestring, "cls-haiku");
    const char *sys = cJSON_GetObjectItem(sent, "system")->valuestring;
    ck_assert(strncmp(sys, "Classify the complexity of the user's request.", 46) == 0);
    const cJSON *msgs = cJSON_GetObjectItem(sent, "messages");
    ck_assert_int_eq(cJSON_GetArraySize(msgs), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring,
                     "design a database");
    ck_assert_int_eq(cJSON_GetObjectItem(sent, "max_tokens")->valueint, 5);
    ck_assert_ptr_null(cJSON_GetObjectItem(sent, "max_completion_tokens"));
    cJSON_Delete(sent);
    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "model"), "cls-haiku");
    ck_assert_int_eq((int)lnum(lg, "input_tokens"), ANSWER_IN);
    cJSON_Delete(lg);
    stop();
}
END_TEST

/* A user text over 8 KiB is cut to 8 KiB or less, at the start of a character: what the
 * classifier gets is a prefix of the text, valid UTF-8. */
START_TEST(long_text_is_cut_at_a_character)
{
    static char text[12001];
    size_t n = 0;

    text[n++] = 'a'; /* so that byte 8192 is the second byte of a character */
    while (n + 2 < sizeof(text)) {
        memcpy(text + n, "\xc3\xa9", 2); /* é */
        n += 2;
    }
    text[n] = '\0';
    ck_assert_int_eq(ask(CLIENT_KEY_A, "long-1", text), 200);
    ck_assert_int_eq(rsp.requests, 1);
    cJSON *sent = cJSON_Parse(rsp.body);
    ck_assert_msg(sent != NULL, "%.200s", rsp.body);
    const cJSON *user = cJSON_GetArrayItem(cJSON_GetObjectItem(sent, "messages"), 1);
    const char *got = cJSON_GetObjectItem(user, "content")->valuestring;
    ck_assert_uint_eq(strlen(got), 8191);
    ck_assert(strncmp(got, text, 8191) == 0);
    cJSON_Delete(sent);
    /* the cache's key is the whole text: a text that differs past the cut is asked anew */
    text[n - 1] = 'x';
    text[n - 2] = 'x';
    ck_assert_int_eq(ask(CLIENT_KEY_A, "long-2", text), 200);
    ck_assert_int_eq(rsp.requests, 2);
    stop();
}
END_TEST

static int asked(void *arg)
{
    return net->nq >= *(int *)arg;
}

static int label_seen(void *arg)
{
    (void)arg;
    return classified > 0;
}

/* A store that answers later: the classification waits for it, is sent once it admits, and
 * the request goes on with the label. */
START_TEST(pending_reservation_then_sent)
{
    struct client c;
    int one = 1, two = 2;

    use_net_store();
    client_send(&c, CLIENT_KEY_A, "net-1", "hello there");
    run_until(asked, &one, "the classifier's reservation");
    for (int i = 0; i < 20; i++)
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(rsp.requests, 0); /* not before the store admits it */
    ck_assert_int_eq(net->q[0].ask.max_output, 5);
    store_answers(0);
    run_until(asked, &two, "the request's own reservation");
    ck_assert_int_eq(rsp.requests, 1);
    ck_assert_str_eq(seen_label, "simple");
    store_answers(1);
    run_until(has_response, &c, "the answer");
    ck_assert_int_eq(client_status(&c), 200);
    close(c.fd);
    run_until(nothing_reserved, NULL, "everything settled");
    ledger_commit();
    ck_assert_int_eq(ledger_field("net-1/classify", "tokens_charged"), ANSWER_IN + ANSWER_OUT);
    stop();
}
END_TEST

/* The store does not answer within the classifier's timeout: no label, nothing sent, and the
 * grant that comes later is released whole. */
START_TEST(pending_reservation_past_the_timeout)
{
    struct client c;
    int two = 2;

    use_net_store();
    client_send(&c, CLIENT_KEY_A, "net-2", "hello there");
    run_until(label_seen, NULL, "the label, at the timeout");
    ck_assert_str_eq(seen_label, "");
    run_until(asked, &two, "the request's own reservation");
    store_answers(1);
    run_until(has_response, &c, "the answer");
    ck_assert_int_eq(client_status(&c), 200);
    close(c.fd);
    cJSON *lg = logged();
    ck_assert_str_eq(lstr(lg, "outcome"), "timeout");
    ck_assert_int_eq((int)lnum(lg, "input_tokens"), 0);
    cJSON_Delete(lg);
    run_until(nothing_reserved, NULL, "the request settled");
    store_answers(0); /* the classifier's grant, late */
    ck_assert_int_eq(net->q[0].rc, BUDGET_ADMITTED);
    ck_assert_int_gt(budget_reserved_total(srv.book), 0);
    run_until(nothing_reserved, NULL, "the late grant released");
    ck_assert_int_eq(rsp.requests, 0);
    ledger_commit();
    ck_assert_int_eq(ledger_field("net-2/classify", "count(*)"), 0);
    stop();
}
END_TEST

static Suite *classify_suite(void)
{
    Suite *s = suite_create("classify");
    TCase *tc = tcase_create("classifier");
    TCase *poor = tcase_create("budget");
    TCase *slow = tcase_create("timeout");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, answered_label_is_charged_and_recorded);
    tcase_add_test(tc, second_time_is_cached);
    tcase_add_test(tc, two_tenants_never_share_a_label);
    tcase_add_test(tc, failing_classifier_gives_no_label);
    tcase_add_test(tc, an_answer_that_is_no_label);
    tcase_add_test(tc, anthropic_classifier);
    tcase_add_test(tc, long_text_is_cut_at_a_character);
    tcase_add_test(tc, pending_reservation_then_sent);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(slow, setup_slow, NULL);
    tcase_set_timeout(slow, 60);
    tcase_add_test(slow, slow_classifier_gives_no_label_at_the_timeout);
    tcase_add_test(slow, client_gone_while_classifying);
    tcase_add_test(slow, pending_reservation_past_the_timeout);
    suite_add_tcase(s, slow);
    tcase_add_checked_fixture(poor, setup_poor, NULL);
    tcase_set_timeout(poor, 60);
    tcase_add_test(poor, budget_refusal_gives_no_label_without_sending);
    suite_add_tcase(s, poor);
    return s;
}

int main(void)
{
    return run_suite(classify_suite());
}
