/*
 * Unit tests of the admit stage (gate/pipeline/stage_admit.c, spend_reserve in spend.c) with a
 * budget store that answers later, as a networked one would (gate/budget/store.h: reserve
 * answers BUDGET_PENDING, and a thread of the store's decides and posts the answer back).
 *
 * What runs is the gate's own code from the socket on: a real client connection (conn.c, over
 * a socketpair) hands the request to the real stages parse, authenticate, body, route, count,
 * admit and prepare (the pipeline driver, the completion queue, spend.c's continuation and
 * timer, req.c's answers and finalize path, the request log and the crash journal). Only the
 * last stage is the test's: where the gate would dispatch to the provider, it takes the
 * journal record (spend_forward, as stage_dispatch does), keeps the upstream request as the
 * gate built it ("what the provider would receive"), and answers 200. The store is a test
 * double in front of the in-memory store (which keeps the counters, as Redis would): its
 * reserve parks the ask, and the test plays the network, deciding on a thread of its own.
 *
 * Checked: a pending admission WAITs, resumes on the worker (not the store's thread), and is
 * forwarded with the same cap the in-memory store gives at once; a refusal after pending is the
 * same 429 as the in-memory store's; a client gone while pending is finalized once the store
 * answers, the grant released whole (the book's reserved total back to 0) and its log record
 * that of a client gone before forwarding; a store that does not answer within
 * timeouts.upstream_connect gives a 503 with retry-after, and what it grants later is released
 * (also when the client left meanwhile). The in-memory store goes straight through, reusing
 * the worker's one hand-over.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <check.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
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
#include "gate/pipeline/completion.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/reqlog.h"
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"
#include "gate/util/clock.h"
#include "gate/util/jsonmem.h"
#include "run_suite.h"
#include "tmpdb.h"

#define CONFIG_FMT                                                                                 \
    "providers:\n"                                                                                 \
    "  o:\n"                                                                                       \
    "    base_url: http://127.0.0.1:9/v1\n"                                                        \
    "models:\n"                                                                                    \
    "  gpt-4o-mini:\n"                                                                             \
    "    provider: o\n"                                                                            \
    "    price: { input: 2.50, output: 10.00 }\n"                                                  \
    "org: acme\n"                                                                                  \
    "departments:\n"                                                                               \
    "  research:\n"                                                                                \
    "    teams:\n"                                                                                 \
    "      search: { agents: [crawler-1] }\n"                                                      \
    "keys:\n"                                                                                      \
    "  tg-test-alpha-0001: crawler-1\n"                                                            \
    "budgets:\n"                                                                                   \
    "  - { scope: team:search, window: day, tokens: 10000 }\n"                                     \
    "ledger: { path: /nonexistent/ledger.db }\n"                                                   \
    "timeouts: { upstream_connect: %s }\n"

/* asks for more output than the team's budget has: the gate brings max_tokens down */
#define BODY                                                                                       \
    "{\"model\":\"gpt-4o-mini\",\"max_tokens\":50000,"                                             \
    "\"messages\":[{\"role\":\"user\",\"content\":\"say hello to the crawler\"}]}"

/* ---- the store: answers later, from a thread of its own ------------------------------------ */

struct parked {
    struct budget_ask ask; /* a copy: the caller's ask is read during reserve only */
    char task[130];
    double now;
    struct budget_resv *r;
    struct budget_refusal *why;
    struct budget_cont k;
    enum budget_rc rc;
    pthread_t decided_on, delivered_on;
};

struct net_store {
    struct budget_store base;
    struct budget_store *inner; /* the counters, as the remote side would keep them */
    pthread_mutex_t mu;
    struct parked q[4];
    int nq;
};

static enum budget_rc net_reserve(struct budget_store *st, const struct budget_ask *ask, double now,
                                  struct budget_resv *r, struct budget_refusal *why,
                                  const struct budget_cont *k)
{
    struct net_store *n = (struct net_store *)st;

    if (k == NULL) /* a caller that cannot wait */
        return n->inner->ops->reserve(n->inner, ask, now, r, why, NULL);
    pthread_mutex_lock(&n->mu);
    ck_assert_int_lt(n->nq, 4);
    struct parked *p = &n->q[n->nq++];
    *p = (struct parked){.ask = *ask, .now = now, .r = r, .why = why, .k = *k};
    if (ask->task != NULL) {
        snprintf(p->task, sizeof(p->task), "%s", ask->task);
        p->ask.task = p->task;
    }
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

/* On the worker (posted): the store's answer, handed to the caller's continuation. */
static void deliver(void *arg)
{
    struct parked *p = arg;

    p->delivered_on = pthread_self();
    p->k.done(p->k.arg, p->rc);
}

static struct net_store *net;

/* The store's thread: decides on the counters and posts the answer to the caller's worker. */
static void *decide_thread(void *arg)
{
    struct parked *p = arg;

    p->decided_on = pthread_self();
    p->rc = net->inner->ops->reserve(net->inner, &p->ask, p->now, p->r, p->why, NULL);
    ck_assert_int_eq(p->k.post(p->k.worker, deliver, p), 0);
    return NULL;
}

/* The store answers parked reservation i, from its own thread; returns once it has posted. */
static void store_answers(int i)
{
    pthread_t t;

    ck_assert_int_lt(i, net->nq);
    ck_assert_int_eq(pthread_create(&t, NULL, decide_thread, &net->q[i]), 0);
    pthread_join(t, NULL);
}

/* ---- the gate's pieces: a worker, its connection handler, the stage table ------------------ */

static struct conf *conf;
static struct gate_server srv;
static struct gate_worker worker;
static struct conn_handler handler;
static char log_path[320], journal_path[320];
static int team;

/* What the last stage saw. */
static int forwarded;
static char upstream_body[4096];
static pthread_t forwarded_on;
static uint32_t forwarded_jslot;

static enum stage_rc forward(struct gate_req *req)
{
    /* as stage_dispatch: the crash journal's record first */
    if (spend_forward(req) < 0)
        return STAGE_ANSWERED;
    forwarded++;
    forwarded_on = pthread_self();
    forwarded_jslot = req->jslot;
    size_t len = evbuffer_get_length(req->ex.request);
    const char *raw = (const char *)evbuffer_pullup(req->ex.request, -1);
    const char *body = memmem(raw, len, "\r\n\r\n", 4);
    ck_assert_ptr_nonnull(body);
    body += 4;
    ck_assert_uint_lt((size_t)(raw + len - body), sizeof(upstream_body));
    memcpy(upstream_body, body, (size_t)(raw + len - body));
    upstream_body[raw + len - body] = '\0';
    char hdrs[256];
    hdrs[spend_headers(req, hdrs, sizeof(hdrs))] = '\0';
    req_respond(req, 200, "application/json", hdrs, "{}", 2);
    return STAGE_ANSWERED;
}

static const struct pipeline_stage stages[] = {
    {"parse", REQ_ADMITTING, stage_parse},     {"authenticate", REQ_ADMITTING, stage_auth},
    {"body", REQ_ADMITTING, stage_body},       {"route", REQ_ADMITTING, stage_route},
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

static void start(const char *upstream_connect)
{
    char text[2048], err[400] = "";
    int rec = 0;

    evthread_use_pthreads();
    jsonmem_init(); /* as main.c: a request's cJSON memory comes from its arena */
    snprintf(text, sizeof(text), CONFIG_FMT, upstream_connect);
    conf = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));
    ck_assert_msg(conf != NULL, "%s", err);
    tmpdb_make("admit");
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
    memset(&worker, 0, sizeof(worker));
    worker.srv = &srv;
    worker.conf = conf;
    worker.base = event_base_new();
    ck_assert_ptr_nonnull(worker.base);
    worker.cq = completion_queue_new(worker.base);
    ck_assert_ptr_nonnull(worker.cq);
    handler = req_conn_handler;
    handler.ready = on_ready;
    worker.conn_handler = &handler;
    srv.workers = &worker;
    srv.nworkers = 1;
    team = budget_find_scope(srv.book, "team:search");
    ck_assert_int_ge(team, 0);
    forwarded = 0;
    net = NULL;
}

static void stop(void)
{
    conn_close_all(&worker);
    completion_queue_free(worker.cq);
    spend_worker_free(&worker);
    event_base_loop(worker.base, EVLOOP_NONBLOCK);
    event_base_free(worker.base);
    ledger_close(srv.ledger);
    journal_close(srv.journal);
    reqlog_close(srv.reqlog);
    budget_book_free(srv.book);
    conf_unref(conf);
    unlink(log_path);
    unlink(journal_path);
    tmpdb_remove();
}

/* Commits what the ledger has queued (closing it: the test's requests are over), so that its
 * records can be read. */
static void ledger_commit(void)
{
    ledger_close(srv.ledger);
    srv.ledger = NULL;
}

/* One figure of request id's ledger record. */
static int64_t ledger_field(const char *id, const char *what)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT %s FROM requests WHERE id = '%s'", what, id);
    return tmpdb_query_int(sql);
}

static void setup(void)
{
    start("60s"); /* the store answers well within it */
}

static void setup_short(void)
{
    start("300ms"); /* the store's answer comes after it */
}

/* Where the test closes the client while the store is asked: the gate must see the close
 * before the bound, which on two loaded cores under ASan took more than 300 ms. */
static void setup_gone(void)
{
    start("2s");
}

/* Puts the network-like store in, over the book's counters. */
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

/* ---- a client ---------------------------------------------------------------------------- */

struct client {
    int fd;
    char buf[8192];
    size_t len;
};

/* Connects a client to the worker and sends a chat request with id as its x-request-id. */
static void client_send(struct client *c, const char *id)
{
    int fds[2];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char req[2048];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    conn_accept(&worker, fds[0], (struct sockaddr *)&sa, sizeof(sa));
    c->fd = fds[1];
    c->len = 0;
    ck_assert_int_eq(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: gate\r\n"
                     "Authorization: Bearer tg-test-alpha-0001\r\nx-request-id: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     id, strlen(BODY), BODY);
    ck_assert_int_eq(write(c->fd, req, (size_t)n), n);
}

/* Whether the client has a whole response (reading what has come). */
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

static const char *client_body(const struct client *c)
{
    return strstr(c->buf, "\r\n\r\n") + 4;
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Runs the worker's loop until cond(arg) holds, for at most 20 s (generous: a failure, not a
 * slow machine, is what ends it). */
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

static int store_asked(void *arg)
{
    (void)arg;
    return net->nq > 0;
}

static int nothing_reserved(void *arg)
{
    (void)arg;
    return budget_reserved_total(srv.book) == 0;
}

static int no_connection(void *arg)
{
    (void)arg;
    return atomic_load(&worker.stats.open_conns) == 0;
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

/* The request log's record of request id (the log is written by a thread of its own). */
static cJSON *log_record(const char *id)
{
    char needle[128], text[16384];

    snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);
    run_until(log_has, needle, "the request's log record");
    FILE *f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *line = strstr(text, needle);
    while (line > text && line[-1] != '\n')
        line--;
    char *nl = strchr(line, '\n');
    if (nl != NULL)
        *nl = '\0';
    cJSON *rec = cJSON_Parse(line);
    ck_assert_msg(rec != NULL, "%s", line);
    return rec;
}

static int64_t cap_of(const char *body)
{
    cJSON *doc = cJSON_Parse(body);
    ck_assert_msg(doc != NULL, "%s", body);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "max_tokens");
    ck_assert_msg(cJSON_IsNumber(m), "%s", body);
    int64_t v = (int64_t)m->valuedouble;
    cJSON_Delete(doc);
    return v;
}

/* ---- the tests --------------------------------------------------------------------------- */

/* The in-memory store answers at once: the request goes straight through, with the cap brought
 * down to what the team's budget leaves, and takes the worker's spare hand-over only (nothing
 * is allocated for it after the first request). */
START_TEST(memory_store_admits_at_once)
{
    struct client c;

    client_send(&c, "mem-1");
    run_until(has_response, &c, "the answer");
    ck_assert_int_eq(client_status(&c), 200);
    ck_assert_int_eq(forwarded, 1);
    int64_t cap = cap_of(upstream_body);
    ck_assert_int_lt(cap, 50000);
    ck_assert_int_gt(cap, 0);
    ck_assert_ptr_nonnull(strcasestr(c.buf, "x-tokengate-budget-remaining: "));
    ck_assert_uint_ne(forwarded_jslot, 0); /* the crash journal's record was made */
    const void *spare = worker.spend_spare;
    ck_assert_ptr_nonnull(spare);
    close(c.fd);
    client_send(&c, "mem-2");
    run_until(has_response, &c, "the second answer");
    ck_assert_int_eq(forwarded, 2);
    ck_assert_ptr_eq(worker.spend_spare, spare); /* the same one, taken and given back */
    ck_assert_int_eq(budget_reserved_total(srv.book), 0);
    close(c.fd);
    stop();
}
END_TEST

/* A store that answers later: the request waits (nothing forwarded, nothing answered), the
 * store decides on its own thread, and the request resumes on the worker: forwarded with the
 * cap the in-memory store gives at once, its journal record and budget headers made. */
START_TEST(pending_admission_resumes_on_the_worker)
{
    struct client c;
    char want_body[4096];

    /* what the in-memory store makes of the same request, at once */
    client_send(&c, "control");
    run_until(has_response, &c, "the control's answer");
    ck_assert_int_eq(forwarded, 1);
    snprintf(want_body, sizeof(want_body), "%s", upstream_body);
    close(c.fd);
    run_until(no_connection, NULL, "the control's connection to close");

    use_net_store();
    client_send(&c, "later-1");
    run_until(store_asked, NULL, "the store's reserve");
    for (int i = 0; i < 20; i++)
        event_base_loop(worker.base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(forwarded, 1); /* it waits */
    ck_assert(!client_has_response(&c));
    ck_assert_int_eq(budget_reserved_total(srv.book), 0);

    store_answers(0);
    ck_assert_int_gt(budget_reserved_total(srv.book), 0); /* granted by the store... */
    ck_assert_int_eq(forwarded, 1);                       /* ...nothing ran on its thread */
    run_until(has_response, &c, "the answer after the store's");
    ck_assert_int_eq(net->q[0].rc, BUDGET_ADMITTED);
    ck_assert(!pthread_equal(net->q[0].decided_on, pthread_self()));
    ck_assert(pthread_equal(net->q[0].delivered_on, pthread_self())); /* on the worker */
    ck_assert(pthread_equal(forwarded_on, pthread_self()));
    ck_assert_int_eq(client_status(&c), 200);
    ck_assert_int_eq(forwarded, 2);
    ck_assert_str_eq(upstream_body, want_body); /* the same cap, the same body */
    ck_assert_int_lt(cap_of(upstream_body), 50000);
    ck_assert_uint_ne(forwarded_jslot, 0);
    ck_assert_ptr_nonnull(strcasestr(c.buf, "x-tokengate-budget-remaining: "));
    ck_assert_ptr_nonnull(strcasestr(c.buf, "x-tokengate-tokens-in: "));
    ck_assert_int_eq(budget_reserved_total(srv.book), 0); /* settled at its end */
    cJSON *rec = log_record("later-1");
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "decision")->valuestring, "admitted");
    ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 200);
    cJSON_Delete(rec);
    ledger_commit();
    ck_assert_int_eq(ledger_field("later-1", "status"), 200);
    ck_assert_int_eq(ledger_field("later-1", "reserved_tokens"),
                     ledger_field("control", "reserved_tokens"));
    close(c.fd);
    stop();
}
END_TEST

/* The store refuses after a wait (the budget was spent meanwhile): the same 429 the in-memory
 * store gives at once, and nothing is forwarded. */
START_TEST(refusal_after_pending_is_the_budget_429)
{
    struct client c;
    char want[4096];
    struct conf_limit spent = {.tokens = 10, .nusd = -1};

    ck_assert_int_eq(budget_set_limit(srv.book, team, CONF_WIN_DAY, spent), 0);
    client_send(&c, "control-429");
    run_until(has_response, &c, "the control's answer");
    ck_assert_int_eq(client_status(&c), 429);
    snprintf(want, sizeof(want), "%s", client_body(&c));
    close(c.fd);
    run_until(no_connection, NULL, "the control's connection to close");

    struct conf_limit room = {.tokens = 10000, .nusd = -1};
    ck_assert_int_eq(budget_set_limit(srv.book, team, CONF_WIN_DAY, room), 0);
    use_net_store();
    client_send(&c, "later-429");
    run_until(store_asked, NULL, "the store's reserve");
    ck_assert_int_eq(budget_set_limit(srv.book, team, CONF_WIN_DAY, spent), 0);
    store_answers(0);
    run_until(has_response, &c, "the refusal");
    ck_assert_int_eq(net->q[0].rc, BUDGET_REFUSED);
    ck_assert_int_eq(client_status(&c), 429);
    ck_assert_str_eq(client_body(&c), want);
    ck_assert_ptr_nonnull(strstr(want, "budget_exceeded"));
    ck_assert_ptr_nonnull(strcasestr(c.buf, "\r\nx-should-retry: false\r\n"));
    ck_assert_int_eq(forwarded, 0);
    ck_assert_int_eq(budget_reserved_total(srv.book), 0);
    cJSON *rec = log_record("later-429");
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "decision")->valuestring, "rejected");
    cJSON_Delete(rec);
    close(c.fd);
    stop();
}
END_TEST

/* The client leaves while the store decides: the request is kept until the store answers (its
 * reservation is in the request's hands), then finalized without being forwarded, and what the
 * store granted goes back whole: nothing reserved, nothing charged, and the record says so as
 * for a client gone before forwarding. */
START_TEST(client_gone_while_pending_releases_the_grant)
{
    struct client c;

    use_net_store();
    client_send(&c, "gone-1");
    run_until(store_asked, NULL, "the store's reserve");
    close(c.fd);
    run_until(no_connection, NULL, "the gate to see the client go");
    store_answers(0);
    ck_assert_int_eq(net->q[0].rc, BUDGET_ADMITTED);
    ck_assert_int_gt(budget_reserved_total(srv.book), 0);
    run_until(nothing_reserved, NULL, "the grant to be released");
    ck_assert_int_eq(forwarded, 0);
    cJSON *rec = log_record("gone-1");
    ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 499);
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "decision")->valuestring, "admitted");
    ck_assert_int_eq(cJSON_GetObjectItem(rec, "tokens_charged")->valueint, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "error")->valuestring,
                     "the client closed the connection");
    cJSON_Delete(rec);
    ledger_commit();
    ck_assert_int_eq(ledger_field("gone-1", "status"), 499);
    ck_assert_int_eq(ledger_field("gone-1", "tokens_charged"), 0);
    ck_assert_int_eq(ledger_field("gone-1", "cost_nusd"), 0);
    ck_assert_int_gt(ledger_field("gone-1", "reserved_tokens"), 0); /* it was granted */
    ck_assert_int_eq(ledger_field("gone-1", "decision = 'admitted'"), 1);
    ck_assert_int_eq(tmpdb_query_int("SELECT count(*) FROM requests"), 1);
    stop();
}
END_TEST

/* The store does not answer within timeouts.upstream_connect: 503 with retry-after, nothing
 * forwarded; the grant that comes later is released whole. */
START_TEST(a_store_that_does_not_answer_times_out)
{
    struct client c;

    use_net_store();
    client_send(&c, "slow-1");
    run_until(store_asked, NULL, "the store's reserve");
    run_until(has_response, &c, "the 503");
    ck_assert_int_eq(client_status(&c), 503);
    ck_assert_ptr_nonnull(strcasestr(c.buf, "\r\nretry-after: 1\r\n"));
    ck_assert_ptr_nonnull(strstr(client_body(&c), "the budget store (net-test) did not answer "
                                                  "within 300 ms (timeouts.upstream_connect)"));
    ck_assert_int_eq(forwarded, 0);
    cJSON *rec = log_record("slow-1");
    ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 503);
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "decision")->valuestring, "unavailable");
    cJSON_Delete(rec);
    /* the store's answer comes at last: an admission, for a request that is over */
    store_answers(0);
    ck_assert_int_eq(net->q[0].rc, BUDGET_ADMITTED);
    ck_assert_int_gt(budget_reserved_total(srv.book), 0);
    run_until(nothing_reserved, NULL, "the late grant to be released");
    ck_assert_int_eq(forwarded, 0);
    ledger_commit();
    ck_assert_int_eq(ledger_field("slow-1", "status"), 503);
    ck_assert_int_eq(ledger_field("slow-1", "tokens_charged"), 0);
    ck_assert_int_eq(ledger_field("slow-1", "decision = 'unavailable'"), 1);
    ck_assert_int_eq(tmpdb_query_int("SELECT count(*) FROM requests"), 1);
    close(c.fd);
    stop();
}
END_TEST

/* The client leaves and the store does not answer in time either: the request ends at the
 * bound (a 499 for nobody), and the store's late grant is released. */
START_TEST(client_gone_and_store_late)
{
    struct client c;

    use_net_store();
    client_send(&c, "gone-slow");
    run_until(store_asked, NULL, "the store's reserve");
    close(c.fd);
    run_until(no_connection, NULL, "the gate to see the client go");
    cJSON *rec = log_record("gone-slow"); /* written at the bound, before the store answers */
    ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 499);
    ck_assert_int_eq(cJSON_GetObjectItem(rec, "tokens_charged")->valueint, 0);
    cJSON_Delete(rec);
    store_answers(0);
    ck_assert_int_eq(net->q[0].rc, BUDGET_ADMITTED);
    ck_assert_int_gt(budget_reserved_total(srv.book), 0);
    run_until(nothing_reserved, NULL, "the late grant to be released");
    ck_assert_int_eq(forwarded, 0);
    stop();
}
END_TEST

static Suite *admit_suite(void)
{
    Suite *s = suite_create("admit");
    TCase *tc = tcase_create("store");
    TCase *slow = tcase_create("timeout");
    TCase *gone = tcase_create("gone");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, memory_store_admits_at_once);
    tcase_add_test(tc, pending_admission_resumes_on_the_worker);
    tcase_add_test(tc, refusal_after_pending_is_the_budget_429);
    tcase_add_test(tc, client_gone_while_pending_releases_the_grant);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(slow, setup_short, NULL);
    tcase_set_timeout(slow, 60);
    tcase_add_test(slow, a_store_that_does_not_answer_times_out);
    suite_add_tcase(s, slow);
    tcase_add_checked_fixture(gone, setup_gone, NULL);
    tcase_set_timeout(gone, 60);
    tcase_add_test(gone, client_gone_and_store_late);
    suite_add_tcase(s, gone);
    return s;
}

int main(void)
{
    return run_suite(admit_suite());
}
