/*
 * spend: authentication, reservation and settlement of one request. See spend.h.
 */
#include "gate/pipeline/spend.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gate/util/arena.h"
#include "gate/pipeline/completion.h"
#include "gate/pipeline/pipeline.h"
#include "gate/budget/budget.h"
#include "gate/budget/store.h"
#include "gate/budget/journal.h"
#include "gate/util/jsonmem.h"
#include "gate/budget/ledger.h"
#include "gate/api/outcap.h"
#include "gate/pipeline/reqlog.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/fallback.h"
#include "gate/pipeline/savings.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* past this many records waiting for the disk, new requests are turned away (503) */
#define LEDGER_BACKLOG 32768

/* the output cap of a model whose family the gate does not know (config: max_output_tokens) */
#define SPEND_DEFAULT_CAP 16384

/* ---- who calls -------------------------------------------------------------------------- */

/* The key the client presents, in the headers its API takes one from (dialect.h), or NULL. */
static const char *presented_key(const struct gate_req *req, size_t *len)
{
    for (const struct api_key_header *k = api_client_keys(req->client_api); k->name; k++) {
        const struct http_header *h = req_header(req, k->name);
        if (h == NULL)
            continue;
        const char *v = h->value;
        size_t sl = k->scheme != NULL ? strlen(k->scheme) : 0;
        if (sl > 0 && h->value_len > sl && strncasecmp(v, k->scheme, sl) == 0) {
            v += sl;
            while (*v == ' ')
                v++;
        }
        *len = h->value_len - (size_t)(v - h->value);
        return v;
    }
    return NULL;
}

int spend_authenticate(struct gate_req *req)
{
    struct budget_book *book = req->w->srv->book;
    const char *key;
    size_t len = 0;

    req->agent = -1;
    if (book == NULL)
        return 0; /* no org configured: an open gate */
    key = presented_key(req, &len);
    if (key == NULL || len == 0) {
        if (req->conf->anonymous && (req->agent = budget_anonymous(book)) >= 0)
            return 0;
        req->decision = REQ_DECISION_UNAUTHENTICATED;
        req_fail(req, APIERR_UNAUTHORIZED,
                 "no API key: send a gate key as 'Authorization: Bearer tg-...' or 'x-api-key'");
        return -1;
    }
    switch (budget_authenticate(book, key, len, &req->agent, req->key_id)) {
    case BUDGET_AUTH_OK:
        return 0;
    case BUDGET_AUTH_REVOKED:
        req->agent = -1;
        req->decision = REQ_DECISION_UNAUTHENTICATED;
        req_fail(req, APIERR_UNAUTHORIZED, "this API key has been revoked");
        return -1;
    default:
        req->agent = -1;
        req->decision = REQ_DECISION_UNAUTHENTICATED;
        req_fail(req, APIERR_UNAUTHORIZED, "this API key is not valid for this gate");
        return -1;
    }
}

const char *spend_presented_key(const struct gate_req *req, size_t *len)
{
    return presented_key(req, len);
}

/* ---- before forwarding ---------------------------------------------------------------- */

int64_t spend_output_limit(int64_t allowed, int approximate)
{
    return approximate ? allowed + allowed / 4 + 64 : allowed + allowed / 16 + 32;
}

/* ---- a reservation the store answers later ---------------------------------------------- */

/*
 * A reservation in the store's hands: what the store fills (r, why), how its answer comes back
 * to the worker (k: post puts it on the worker's completion queue through cq), and what the
 * request needs once it is decided (oc, approximate). It is kept apart from the request so
 * that a request that stopped waiting (its wait passed timeouts.upstream_connect) can be
 * answered and freed while the store still holds r and why; the store's late answer then only
 * releases what it granted. Each worker keeps one spare: the in-memory store answers at once,
 * so its requests use the spare over and over and allocate nothing after the first.
 */
struct spend_wait {
    struct completion cq; /* the store's answer, handed to the worker */
    struct gate_worker *w;
    struct gate_req *req;  /* the request waiting for it; NULL once it stopped waiting */
    struct budget_cont k;  /* given to the store: post and done take this spend_wait */
    void (*fn)(void *arg); /* what the store posted (it calls k.done) */
    void *fn_arg;
    struct event *timer;  /* the bound on the wait (timeouts.upstream_connect) */
    struct budget_resv r; /* the store's answer: filled by it, read once it is posted */
    struct budget_refusal why;
    struct outcap oc; /* the request's caps, for the work after an admission */
    int approximate;  /* its input count is an estimate (the cap's margin) */
};

static int wait_post(void *worker, void (*fn)(void *arg), void *fn_arg);
static void wait_done(void *arg, enum budget_rc rc);
static void wait_timeout(evutil_socket_t fd, short what, void *arg);

/* The worker's spare, or a new one (with its timer). NULL when out of memory. */
static struct spend_wait *wait_take(struct gate_worker *w)
{
    struct spend_wait *t = w->spend_spare;

    if (t != NULL) {
        w->spend_spare = NULL;
        return t;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    if ((t->timer = evtimer_new(w->base, wait_timeout, t)) == NULL) {
        free(t);
        return NULL;
    }
    t->w = w;
    t->k = (struct budget_cont){.post = wait_post, .worker = t, .done = wait_done, .arg = t};
    return t;
}

/* Done with t (the store answered): kept as the worker's spare, or freed. */
static void wait_give(struct spend_wait *t)
{
    struct gate_worker *w = t->w;

    t->req = NULL;
    if (w->spend_spare == NULL) {
        w->spend_spare = t;
        return;
    }
    event_free(t->timer);
    free(t);
}

void spend_worker_free(struct gate_worker *w)
{
    struct spend_wait *t = w->spend_spare;

    w->spend_spare = NULL;
    if (t != NULL) {
        event_free(t->timer);
        free(t);
    }
}

/* On the worker, from its completion queue: what the store posted. */
static void wait_run(struct completion *c)
{
    struct spend_wait *t = (struct spend_wait *)((char *)c - offsetof(struct spend_wait, cq));

    t->fn(t->fn_arg); /* calls k.done: wait_done */
}

/* The store's k.post, from any thread: fn(fn_arg) runs on the request's worker. */
static int wait_post(void *worker, void (*fn)(void *arg), void *fn_arg)
{
    struct spend_wait *t = worker;

    t->fn = fn;
    t->fn_arg = fn_arg;
    completion_post(t->w->cq, &t->cq, wait_run);
    return 0;
}

/* ---- the reservation -------------------------------------------------------------------- */

/*
 * The store decided (at once or later): a refusal is answered (429, or 400); an admission
 * brings the request's caps down to its allowance. Returns the number of edits written into
 * req->edits, or -1 after answering.
 */
static int decided(struct gate_req *req, enum budget_rc rc, const struct budget_refusal *why,
                   const struct outcap *oc, int approximate, double now)
{
    if (rc != BUDGET_ADMITTED) {
        if (why->kind == BUDGET_OVER && route_downgrade(req)) {
            /* on_exhaustion: downgrade: the next tier down, counted and admitted at its price */
            req->phase = REQ_WAITING;
            pipeline_post_at(req, pipeline_stage_index(req->pl, "count"));
            return -1;
        }
        spend_refuse(req, why, now);
        return -1;
    }
    req->decision = REQ_DECISION_ADMITTED;
    /* a provider told a cap that streams past it (and past the margin for counts that differ)
     * is cut off: see proxy.c */
    if (req->resv.allowance >= 0 && (req->resv.write_max || oc->value >= 0))
        req->out_limit = spend_output_limit(req->resv.allowance * oc->choices, approximate);
    /* every cap member above the allowance comes down to it; none: write one when the
     * provider's default could pass what was reserved */
    /* a routing rule's output cap comes down on the request as the budget's does */
    int64_t allowance = req->resv.allowance;
    int add = req->resv.write_max;
    int64_t rule_cap = req->rt.routed ? req->rt.d.max_output_tokens : -1;
    if (rule_cap >= 0 && (allowance < 0 || allowance >= rule_cap)) {
        allowance = rule_cap;
        add = 1;
    }
    int n = outcap_clamp(oc, req->json, allowance, add, req->arena, req->edits);
    if (n < 0) {
        req_fail_memory(req); /* the reservation is settled (released) as the request ends */
        return -1;
    }
    return n;
}

/* On the worker: the store's late answer. */
static void wait_done(void *arg, enum budget_rc rc)
{
    struct spend_wait *t = arg;
    struct gate_req *req = t->req;
    struct budget_refusal why;
    struct outcap oc;
    int approximate;

    if (req == NULL) {
        /* the request stopped waiting (and was answered 503): what the store granted goes
         * back whole, charged nothing, as for a request never forwarded; the store's delay is
         * the gate's failure, not the body's, so the retry cutoff's streak is left alone */
        if (rc == BUDGET_ADMITTED && t->w->srv->book != NULL) {
            t->r.fingerprint = 0;
            budget_settle(t->w->srv->book, &t->r, 0, 0, gate_wall_now(), NULL, 0);
        }
        wait_give(t);
        return;
    }
    evtimer_del(t->timer);
    req->resv = t->r;
    why = t->why;
    oc = t->oc;
    approximate = t->approximate;
    wait_give(t);
    req->phase = REQ_ADMITTING; /* out of WAITING: the stage's phase, which may answer */
    struct arena *prev = jsonmem_enter(req->arena);
    int n = decided(req, rc, &why, &oc, approximate, gate_wall_now());
    jsonmem_leave(prev);
    if (n < 0)
        return; /* answered */
    req->nedits = n;
    pipeline_resume(req, STAGE_NEXT); /* a client gone meanwhile: finalized, and released */
}

/* On the worker: the store did not answer within timeouts.upstream_connect. */
static void wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct spend_wait *t = arg;
    struct gate_req *req = t->req;
    char msg[240];

    (void)fd;
    (void)what;
    if (req == NULL)
        return;
    t->req = NULL; /* t stays with the store until it answers (wait_done releases it) */
    req->phase = REQ_ADMITTING;
    snprintf(msg, sizeof(msg),
             "the budget store (%s) did not answer within %lld ms (timeouts.upstream_connect); "
             "retry shortly",
             budget_book_store(req->w->srv->book)->ops->name,
             (long long)req->conf->upstream_connect_timeout);
    req->decision = REQ_DECISION_UNAVAILABLE;
    if (req->error == NULL)
        req->error = arena_strndup(req->arena, msg, strlen(msg));
    req_fail(req, APIERR_UNAVAILABLE, req->error != NULL ? req->error : msg);
}

int spend_reserve(struct gate_req *req, const struct conf_model *m)
{
    struct gate_server *srv = req->w->srv;
    struct budget_ask ask = {0};
    struct budget_refusal why = {0};
    struct outcap oc;
    char msg[160];
    double now = gate_wall_now();

    req->cm = m;
    if (outcap_read(req->client_api, req->json, &oc, msg, sizeof(msg)) < 0) {
        req->decision = req->agent >= 0 ? REQ_DECISION_INVALID : REQ_DECISION_NONE;
        req_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
        return -1;
    }
    int64_t rule_cap = req->rt.routed ? req->rt.d.max_output_tokens : -1;
    if (srv->book == NULL || req->agent < 0 || !req->upstream_api->billed) {
        /* no budget to clamp to: a routing rule's cap still bounds the output */
        if (rule_cap < 0 || oc.names == NULL || (oc.value >= 0 && oc.value <= rule_cap))
            return 0;
        int n = outcap_clamp(&oc, req->json, rule_cap, 1, req->arena, req->edits);
        if (n < 0) {
            req_fail_memory(req);
            return -1;
        }
        req->nedits = n;
        return 0;
    }
    if (srv->ledger != NULL && ledger_pending(srv->ledger) > LEDGER_BACKLOG) {
        req->decision = REQ_DECISION_UNAVAILABLE;
        req_fail(req, APIERR_UNAVAILABLE,
                 "the gate cannot record spend fast enough right now; retry shortly");
        return -1;
    }
    ask.max_output = rule_cap >= 0 && (oc.value < 0 || oc.value > rule_cap) ? rule_cap : oc.value;
    ask.agent = req->agent;
    /* an uncounted body is bounded by its size: no token is shorter than a byte */
    ask.input = req->tc.input >= 0 ? req->tc.input : (int64_t)evbuffer_get_length(req->msg.body);
    ask.approximate = req->tc.approximate || req->tc.estimated > 0 || req->tc.input < 0;
    ask.generates = oc.names != NULL;
    ask.choices = oc.choices;
    ask.min_output = oc.min;
    ask.model_cap = m->max_output_tokens > 0
                        ? m->max_output_tokens
                        : budget_model_cap(req->upstream_model ? req->upstream_model : req->model);
    /* a model of unknown family: a budget's whole headroom written as its cap could be more
     * than the model allows, which the provider would refuse */
    if (ask.model_cap < 0)
        ask.model_cap = SPEND_DEFAULT_CAP;
    ask.price = &m->price;
    const struct http_header *th = req_header(req, "x-tokengate-task");
    if (th != NULL) {
        int ok = th->value_len >= 1 && th->value_len <= 128;
        for (size_t i = 0; ok && i < th->value_len; i++) {
            char ch = th->value[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_' || ch == '.' || ch == ':' || ch == '/';
        }
        if (!ok) {
            req->decision = REQ_DECISION_INVALID;
            req_fail(req, APIERR_BAD_REQUEST,
                     "x-tokengate-task must be 1 to 128 of A-Z a-z 0-9 . _ : / -");
            return -1;
        }
        ask.task = th->value;
    }
    if (budget_has_cutoffs(srv->book, req->agent)) {
        /* the body was pulled up whole to be parsed: this is no copy */
        size_t blen = evbuffer_get_length(req->msg.body);
        const void *raw = evbuffer_pullup(req->msg.body, -1);
        ask.fingerprint = raw != NULL ? XXH3_64bits(raw, blen) : 0;
        if (ask.fingerprint == 0 && raw != NULL)
            ask.fingerprint = 1;
    }
    struct spend_wait *t = wait_take(req->w);
    if (t == NULL) {
        req_fail(req, APIERR_INTERNAL, "out of memory");
        return -1;
    }
    memset(&t->r, 0, sizeof(t->r));
    memset(&t->why, 0, sizeof(t->why));
    t->oc = oc;
    t->approximate = ask.approximate;
    enum budget_rc rc = budget_reserve_async(srv->book, &ask, now, &t->r, &t->why, &t->k);
    if (rc == BUDGET_PENDING) {
        /* the store answers later, through t: the request waits, at most
         * timeouts.upstream_connect */
        int64_t ms = req->conf->upstream_connect_timeout;
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        t->req = req;
        evtimer_add(t->timer, &tv);
        req->phase = REQ_WAITING;
        return 1;
    }
    req->resv = t->r;
    if (rc != BUDGET_ADMITTED)
        why = t->why;
    wait_give(t);
    int n = decided(req, rc, &why, &oc, ask.approximate, now);
    if (n >= 0)
        req->nedits = n;
    return n < 0 ? -1 : 0;
}

size_t spend_headers(const struct gate_req *req, char *buf, size_t cap)
{
    size_t n = 0;
    int k;

    if (req->tc.enc != NULL && req->tc.input >= 0) {
        k = snprintf(buf, cap, "x-tokengate-tokens-in: %lld\r\n", (long long)req->tc.input);
        n = k > 0 && (size_t)k < cap ? (size_t)k : 0;
    }
    if (req->resv.made && req->resv.remaining >= 0) {
        k = snprintf(buf + n, cap - n, "x-tokengate-budget-remaining: %lld\r\n",
                     (long long)req->resv.remaining);
        n += k > 0 && (size_t)k < cap - n ? (size_t)k : 0;
    }
    if (req->resv.made && req->resv.remaining_nusd >= 0) {
        k = snprintf(buf + n, cap - n, "x-tokengate-budget-remaining-usd: %.6f\r\n",
                     req->resv.remaining_nusd / 1e9);
        n += k > 0 && (size_t)k < cap - n ? (size_t)k : 0;
    }
    if (req->cache.state != REQ_CACHE_NONE) {
        k = snprintf(buf + n, cap - n, "x-tokengate-cache: %s\r\n",
                     req->cache.state == REQ_CACHE_HIT    ? "hit"
                     : req->cache.state == REQ_CACHE_MISS ? "miss"
                                                          : "bypass");
        n += k > 0 && (size_t)k < cap - n ? (size_t)k : 0;
    }
    return n;
}

int spend_forward(struct gate_req *req)
{
    struct gate_server *srv = req->w->srv;
    struct budget_book *book = srv->book;
    int a = req->agent;

    if (ledger_failing(srv->ledger) && !req->conf->ledger_fail_open) {
        char why[200], msg[400];
        ledger_why(srv->ledger, why, sizeof(why));
        snprintf(msg, sizeof(msg),
                 "the gate cannot record spend right now (its ledger fails: %s); requests are "
                 "refused until it can (ledger.on_failure: closed)",
                 why);
        req->decision = REQ_DECISION_UNAVAILABLE;
        req->error = arena_strndup(req->arena, msg, strlen(msg));
        req_fail(req, APIERR_UNAVAILABLE, req->error);
        return -1;
    }
    if (srv->journal == NULL || !req->resv.held)
        return 0;
    struct journal_entry e = {
        .ts = req->wall_start,
        .id = req->id,
        .key_id = req->key_id,
        .agent = a >= 0 ? budget_scope_name(book, a) : NULL,
        .team = a >= 0 ? budget_scope_at_level(book, a, CONF_LEVEL_TEAM) : NULL,
        .department = a >= 0 ? budget_scope_at_level(book, a, CONF_LEVEL_DEPARTMENT) : NULL,
        .endpoint = req->msg.path,
        .model = req->model,
        .served_model = req->upstream_model ? req->upstream_model : req->model,
        .provider = req->prov ? req->prov->name : NULL,
        .stream = req->stream,
        .in_own = req->tc.enc ? req->tc.input : -1,
        .tokens = req->resv.tokens,
        .nusd = req->resv.nusd,
    };
    req->jslot = journal_put(srv->journal, req->w->id, &e);
    if (req->jslot == 0) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "too many requests in flight on this gate to record them safely (%d per "
                 "worker); retry shortly",
                 JOURNAL_SLOTS_PER_WORKER);
        req->decision = REQ_DECISION_UNAVAILABLE;
        req->error = arena_strndup(req->arena, msg, strlen(msg));
        req_fail(req, APIERR_UNAVAILABLE, req->error);
        return -1;
    }
    return 0;
}

/* ---- after ---------------------------------------------------------------------------- */

/* On the ledger thread: hand the request back to its worker. ok is not needed: a record that
 * failed to commit is the ledger's to report (its failure mode, ledger.on_failure). */
static void on_committed(void *arg, int ok)
{
    struct gate_req *req = arg;

    (void)ok;
    pipeline_post(req, STAGE_NEXT);
}

void spend_raise_alerts(struct gate_req *req, const struct budget_alert *a, int n)
{
    struct reqlog *rl = req->w->srv->reqlog;
    char scope[300], when[40], line[700];

    gate_iso_utc(gate_wall_now(), when, sizeof(when));
    for (int i = 0; i < n; i++) {
        budget_scope_label(req->w->srv->book, a[i].scope, scope, sizeof(scope));
        int len = snprintf(line, sizeof(line),
                           "{\"time\":\"%s\",\"alert\":\"budget_threshold\",\"scope\":\"%s\","
                           "\"window\":\"%s\",\"percent\":%d,\"unit\":\"%s\",\"used\":%.9g,"
                           "\"limit\":%.9g}",
                           when, scope, conf_window_name(a[i].window), a[i].percent,
                           a[i].usd ? "usd" : "tokens",
                           a[i].usd ? a[i].used / 1e9 : (double)a[i].used,
                           a[i].usd ? a[i].limit / 1e9 : (double)a[i].limit);
        fprintf(stderr, "tokengate: alert: %s %s budget at %d%%\n", scope,
                conf_window_name(a[i].window), a[i].percent);
        if (rl != NULL && len > 0 && (size_t)len < sizeof(line))
            reqlog_write(rl, line, (size_t)len);
        req->w->srv->alert(req->w->srv, line);
    }
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/*
 * What an exchange is charged when it ends (tokens and nano-dollars), the one place that
 * decides it, for requests and the classifier's calls alike (spend.h). The provider's usage counts when it is final and sane. Otherwise, once the
 * provider had the request and did not refuse it, the charge is never below the gate's own
 * count of the input and of the output relayed, nor below any partial usage the provider
 * reported (Anthropic's message_start says 1 output token); and when the output could not be
 * read at all (a body that does not parse, or one over max_response_bytes), never below the
 * reservation. A request the provider had that got no answer in time (a timeout), or whose
 * client left before any, is charged its input. A provider error without usage, a reset
 * before any answer, or a request never sent, costs nothing.
 */
void spend_charge(const struct spend_basis *b, int64_t *tokens, int64_t *output, int64_t *nusd)
{
    const struct usage *u = b->u;

    *tokens = *output = *nusd = 0;
    if (u->have && u->final && u->bad == NULL) {
        int64_t uncached = u->input - u->cached - u->cache_write;
        *tokens = u->input + u->output;
        *output = u->output;
        *nusd = budget_cost(b->price, uncached > 0 ? uncached : 0, u->cached,
                            u->cache_write - u->cache_write_1h, u->cache_write_1h, u->output);
        return;
    }
    if (!b->answered && !b->sent_unanswered)
        return;
    int64_t in = b->in, out = b->out, cached = 0, cache_write = 0, write_1h = 0;
    if (u->have && u->bad == NULL) {
        in = max64(in, u->input);
        out = max64(out, u->output);
        cached = u->cached;
        cache_write = u->cache_write;
        write_1h = u->cache_write_1h;
    }
    if (!b->answered)
        out = 0; /* no answer (the client left, a timeout): the provider had the prompt */
    *tokens = in + out;
    *output = out;
    *nusd = budget_cost(b->price, max64(in - cached - cache_write, 0), cached,
                        cache_write - write_1h, write_1h, out);
    if (b->answered && b->unreadable && b->resv != NULL && b->resv->made) {
        *tokens = max64(*tokens, b->resv->tokens);
        *nusd = max64(*nusd, b->resv->nusd);
    }
}

/* The request's own basis for spend_charge. */
static void charge(struct gate_req *req, int64_t *tokens, int64_t *output, int64_t *nusd)
{
    struct spend_basis b = {
        .u = &req->usage,
        .price = req->cm ? &req->cm->price : NULL,
        .answered = req->up_status >= 200 && req->up_status < 300,
        /* the provider had the request and no answer came: the client left, or the gate
         * stopped waiting (a timeout): it may be making the answer, and bills the prompt */
        .sent_unanswered = req->up_status == 0 && req->ex.forwarded &&
                           (req->upstream == REQ_UP_SENT || req->up_timed_out),
        /* an uncounted body is bounded by its size: no token is shorter than a byte */
        .in = req->tc.input >= 0 ? req->tc.input
              : req->msg.body != NULL ? (int64_t)evbuffer_get_length(req->msg.body)
                                      : 0,
        .out = (int64_t)req->tc.output,
        .unreadable = req->out_unreadable,
        .resv = &req->resv,
    };

    spend_charge(&b, tokens, output, nusd);
}

/* The ledger record of req as it stands, charged tokens and nusd. Its strings are the
 * request's (ledger_submit copies them). */
static void fill_rec(struct gate_req *req, struct ledger_rec *rec, int64_t tokens, int64_t nusd)
{
    struct gate_server *srv = req->w->srv;
    const struct usage *u = &req->usage;
    int a = req->agent;

    *rec = (struct ledger_rec){
        .ts = req->wall_start,
        .id = req->id,
        .key_id = req->key_id[0] ? req->key_id : NULL,
        .agent = a >= 0 ? budget_scope_name(srv->book, a) : NULL,
        .team = a >= 0 ? budget_scope_at_level(srv->book, a, CONF_LEVEL_TEAM) : NULL,
        .department = a >= 0 ? budget_scope_at_level(srv->book, a, CONF_LEVEL_DEPARTMENT) : NULL,
        .endpoint = req->msg.path,
        .model = req->model,
        .served_model = req->upstream_model ? req->upstream_model : req->model,
        .provider = req->prov ? req->prov->name : NULL,
        /* the status the client gets: a whole answer's head is written after this record */
        .status = req->status          ? req->status
                  : req->rt.client_status ? req->rt.client_status
                  : req->up_status     ? req->up_status
                                       : 499,
        .stream = req->stream,
        .in_own = req->tc.enc ? req->tc.input : -1,
        .out_own = req->tc.enc ? (int64_t)req->tc.output : -1,
        .in_usage = u->have ? u->input : -1,
        .out_usage = u->have ? u->output : -1,
        .cached = u->cached,
        .cache_write = u->cache_write,
        .cache_write_1h = u->cache_write_1h,
        .tokens_charged = tokens,
        .cost_nusd = nusd,
        .reserved_tokens = req->resv.tokens,
        .latency_us = gate_now_us() - req->t_start,
        .decision = req->decision != REQ_DECISION_NONE ? req_decision_name(req->decision) : "error",
        .error = req->error,
        .jslot = req->jslot, /* cleared once the record is committed */
    };
    route_rec_fields(req, &rec->rule, &rec->tier, &rec->attempts, &rec->translation);
    savings_rec(req, rec);
}

int spend_settle(struct gate_req *req, int hold)
{
    struct gate_server *srv = req->w->srv;
    const struct usage *u = &req->usage;
    int64_t tokens = 0, out = 0, nusd = 0;
    struct budget_alert alerts[8];

    if (!req->tc_finished) {
        tcount_finish(req, req->w->drift);
        req->tc_finished = 1;
    }
    charge(req, &tokens, &out, &nusd);
    req->charged_tokens = tokens;
    req->charged_nusd = nusd;
    savings_settle(req, nusd);
    if (u->bad != NULL && req->error == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "the provider's usage was not trusted (%s is not a whole number from 0 to "
                 "10^12): charged the gate's own count",
                 u->bad);
        req->error = arena_strndup(req->arena, msg, strlen(msg));
    }
    {
        struct gate_stats *st = &req->w->stats;
        if (out > tokens)
            out = tokens;
        atomic_fetch_add_explicit(&st->tokens_in, (uint64_t)(tokens - out), memory_order_relaxed);
        atomic_fetch_add_explicit(&st->tokens_out, (uint64_t)out, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->cost_nusd, (uint64_t)nusd, memory_order_relaxed);
        atomic_uint_fast64_t *c = NULL;
        switch (req->decision) {
        case REQ_DECISION_REJECTED:
            c = &st->rejected_budget;
            break;
        case REQ_DECISION_REJECTED_POLICY:
        case REQ_DECISION_REJECTED_TASK:
        case REQ_DECISION_REJECTED_CUTOFF:
            c = &st->rejected_policy;
            break;
        case REQ_DECISION_UNAUTHENTICATED:
            c = &st->rejected_auth;
            break;
        case REQ_DECISION_UNAVAILABLE:
            c = &st->rejected_unavailable;
            break;
        default:
            break;
        }
        if (c != NULL)
            atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    }
    if (srv->book != NULL && req->resv.held) {
        /* for max_retries: the provider refused or failed it, or it never got an answer */
        req->resv.failed = req->up_status >= 400 || (req->up_status == 0 && !u->have);
        int na = budget_settle(srv->book, &req->resv, tokens, nusd, gate_wall_now(), alerts, 8);
        if (na > 0)
            spend_raise_alerts(req, alerts, na);
    }
    /* the ledger records what reached the API: not health checks or unknown paths */
    int record = req->decision != REQ_DECISION_NONE || req->client_api != NULL;
    if (srv->ledger == NULL || !record)
        return 0;

    struct ledger_rec rec;
    fill_rec(req, &rec, tokens, nusd);
    rec.done = hold ? on_committed : NULL;
    rec.arg = req;
    if (ledger_submit(srv->ledger, &rec) < 0) {
        fprintf(stderr, "tokengate: ledger: the record of request %s could not be queued\n",
                req->id);
        return 0;
    }
    if (!hold)
        return 0;
    req->phase = REQ_WAITING; /* on_committed resumes it */
    return 1;
}

void spend_attempt_close(struct gate_req *req, struct req_attempt *at)
{
    struct gate_server *srv = req->w->srv;
    int64_t tokens = 0, out = 0, nusd = 0;
    struct budget_alert alerts[8];

    if (!req->tc_finished)
        tcount_finish(req, NULL); /* no drift: the attempt's answer was not the request's */
    charge(req, &tokens, &out, &nusd);
    at->tokens = tokens;
    at->nusd = nusd;
    if (tokens > 0) {
        struct gate_stats *st = &req->w->stats;
        out = out > tokens ? tokens : out;
        atomic_fetch_add_explicit(&st->tokens_in, (uint64_t)(tokens - out), memory_order_relaxed);
        atomic_fetch_add_explicit(&st->tokens_out, (uint64_t)out, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->cost_nusd, (uint64_t)nusd, memory_order_relaxed);
    }
    if (srv->book != NULL && req->resv.held) {
        req->resv.failed = 1;
        int na = budget_settle(srv->book, &req->resv, tokens, nusd, gate_wall_now(), alerts, 8);
        if (na > 0)
            spend_raise_alerts(req, alerts, na);
    }
    if (tokens > 0 && srv->ledger != NULL) {
        /* the provider had the prompt: the attempt is a record of its own, which takes the
         * journal slot (cleared when it commits) */
        struct ledger_rec rec;
        char id[sizeof(req->id) + 16];
        fill_rec(req, &rec, tokens, nusd);
        snprintf(id, sizeof(id), "%s/%d", req->id, req->rt.nattempts + 1);
        rec.id = id;
        rec.status = req->up_status ? req->up_status : 502;
        rec.decision = "fallback";
        rec.error = at->reason;
        rec.attempts = NULL;
        rec.cache = NULL; /* the request's own row has its cache outcome and savings */
        rec.prompt_saved_nusd = rec.route_saved_nusd = 0;
        if (ledger_submit(srv->ledger, &rec) < 0)
            fprintf(stderr, "tokengate: ledger: the record of request %s could not be queued\n",
                    id);
    } else if (req->jslot != 0 && srv->journal != NULL) {
        journal_clear(srv->journal, req->jslot); /* nothing to charge: nothing to recover */
    }
    req->jslot = 0;
    memset(&req->resv, 0, sizeof(req->resv));
    memset(&req->usage, 0, sizeof(req->usage));
    req->tc_finished = 0;
    req->tc.output = 0;
    req->tc.out_failed = 0;
    req->tc.added = 0;
    req->tc.peek_at = 0;
    req->charged_tokens = req->charged_nusd = 0;
}
