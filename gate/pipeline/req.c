/*
 * req: request lifecycle, responses written by the gate, and the per-request log record.
 */
#include "gate/pipeline/req.h"

#include "cache/entry.h"
#include "cache/store.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate/util/arena.h"
#include "gate/http/conn.h"
#include "gate/http/decode.h"
#include "gate/http/respwrite.h"
#include "gate/util/jsonmem.h"
#include "gate/pipeline/reqlog.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/proxy.h"
#include "gate/pipeline/source.h"
#include "gate/pipeline/classify.h"
#include "gate/pipeline/fallback.h"
#include "gate/pipeline/spend.h"
#include "gate/pipeline/toolcache_ep.h"
#include "gate/pipeline/savings.h"
#include "gate/upstream/upstream.h"
#include "tokenizer/utf8.h"

const struct http_header *req_header(const struct gate_req *req, const char *name)
{
    return http_msg_header(&req->msg, name);
}

/* ---- request ids --------------------------------------------------------------------- */

static int valid_request_id(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return 0;
    }
    return 1;
}

static uint64_t next_rand(uint64_t *s)
{
    /* splitmix64: ids need to be unique, not secret */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void req_assign_id(struct gate_req *req)
{
    const struct http_header *h = req_header(req, "x-request-id");

    if (req->id[0] != '\0')
        return;
    if (h != NULL && valid_request_id(h->value, h->value_len)) {
        memcpy(req->id, h->value, h->value_len + 1);
        return;
    }
    snprintf(req->id, sizeof(req->id), "req_%016llx%08llx",
             (unsigned long long)next_rand(&req->w->rng),
             (unsigned long long)(next_rand(&req->w->rng) & 0xffffffffu));
}

void req_guess_format(struct gate_req *req)
{
    enum endpoint ep = req->msg.path ? endpoint_lookup(req->msg.path, req->msg.path_len) : EP_NONE;

    if (ep != EP_NONE)
        req->fmt = endpoint_info(ep)->format;
    else if ((req->msg.path_len >= 12 && memcmp(req->msg.path, "/v1/messages", 12) == 0) ||
             req_header(req, "anthropic-version") != NULL)
        req->fmt = CONF_FMT_ANTHROPIC;
    else
        req->fmt = CONF_FMT_OPENAI;
}

void req_respond(struct gate_req *req, int status, const char *ctype, const char *extra_headers,
                 const char *body, size_t len)
{
    struct evbuffer *out;

    req_assign_id(req);
    if (req->conn == NULL) {
        req_finish(req);
        return;
    }
    out = conn_output(req->conn);
    struct respwrite_head h = {
        .status = status,
        .content_type = ctype,
        .request_id = req->id,
        .extra = extra_headers,
        .extra_len = extra_headers ? strlen(extra_headers) : 0,
        .content_length = (long long)len,
        .keep_alive = conn_keep_alive(req->conn),
    };
    req->bytes_out += respwrite_head(out, &h);
    if (req->msg.method != HTTP_HEAD) {
        evbuffer_add(out, body, len); /* HEAD: the headers a GET would have, no body */
        req->bytes_out += len;
    }
    req->status = status;
    req->head_sent = 1;
    if (req->t_first_byte == 0)
        req->t_first_byte = gate_now_us();
    req_finish(req);
}

void req_fail(struct gate_req *req, enum apierr kind, const char *message)
{
    char body[1024];
    size_t n;

    if (message == NULL)
        message = "out of memory"; /* the message itself could not be made */
    if (req->error == NULL)
        req->error = message;
    if (req->head_sent) {
        /* a stream is under way: end it with an error event the SDKs understand */
        char ev[1200];
        n = api_dialect_errors(req->client_api, req->fmt)
                ->error_event(kind, message, ev, sizeof(ev));
        if (req->conn != NULL) {
            /* for HTTP/1.0, the close that follows ends the body */
            struct evbuffer *out = conn_output(req->conn);
            req->bytes_out += respwrite_chunk(out, ev, n, req->msg.http10);
            req->bytes_out += respwrite_last_chunk(out, req->msg.http10);
        }
        req_finish(req);
        return;
    }
    if (kind == APIERR_BAD_HTTP || kind == APIERR_HEADERS_TOO_LARGE || kind == APIERR_TOO_LARGE ||
        kind == APIERR_HEADER_TIMEOUT) {
        if (req->conn != NULL)
            conn_set_close(req->conn);
    }
    n = api_dialect_errors(req->client_api, req->fmt)
            ->error_body(kind, message, body, sizeof(body));
    /* 503 is for now: say when to come back (when every target routing had waits for its
     * retry-after or cool-down, that) */
    char ra[40];
    snprintf(ra, sizeof(ra), "retry-after: %d\r\n",
             req->rt.d.retry_after_s > 1 ? req->rt.d.retry_after_s : 1);
    req_respond(req, apierr_status(kind), "application/json",
                kind == APIERR_UNAVAILABLE ? ra : NULL, body, n);
}

/* ---- memory ------------------------------------------------------------------------- */

static const char *in_flight_message(struct gate_req *req)
{
    char msg[200];
    const char *s;

    snprintf(msg, sizeof(msg),
             "the gate holds as much memory for requests in flight as "
             "limits.max_memory_in_flight allows (%zu bytes); retry shortly",
             req->conf->max_memory_in_flight);
    s = arena_strndup(req->arena, msg, strlen(msg));
    return s != NULL ? s
                     : "the gate holds as much memory for requests in flight as "
                       "limits.max_memory_in_flight allows; retry shortly";
}

const char *req_hold_body(struct gate_req *req, uint64_t total)
{
    size_t held = arena_charged(req->arena);

    /* twice: the body, and the copy of it that goes upstream (kept for one retry) */
    if (total > SIZE_MAX / 4 || 2 * total <= held)
        return total > SIZE_MAX / 4 ? in_flight_message(req) : NULL;
    if (arena_charge(req->arena, (size_t)(2 * total) - held, 1) < 0)
        return in_flight_message(req);
    return NULL;
}

void req_memory_bound(struct gate_req *req)
{
    arena_limit(req->arena, req->conf->max_request_memory, 1);
}

int req_memory_unbound(struct gate_req *req)
{
    arena_limit(req->arena, 0, 0);
    if (arena_failure(req->arena) == ARENA_OK)
        return 0;
    req_fail_memory(req);
    return -1;
}

void req_fail_memory(struct gate_req *req)
{
    char msg[200];
    const char *s;

    arena_limit(req->arena, 0, 0); /* room to answer and log */
    switch (arena_failure(req->arena)) {
    case ARENA_OVER_LIMIT:
        snprintf(msg, sizeof(msg),
                 "request body needs more memory to parse and check than "
                 "limits.max_request_memory allows (%zu bytes)",
                 req->conf->max_request_memory);
        s = arena_strndup(req->arena, msg, strlen(msg));
        req_fail(req, APIERR_TOO_LARGE,
                 s != NULL ? s : "request body needs more memory than limits.max_request_memory");
        return;
    case ARENA_OVER_POOL:
        req_fail(req, APIERR_UNAVAILABLE, in_flight_message(req));
        return;
    default:
        req_fail(req, APIERR_INTERNAL, "out of memory");
    }
}

/* Adds client-supplied text, made valid UTF-8, or null. */
static void add_string_or_null(cJSON *obj, const char *key, const char *v)
{
    char clean[1024];

    if (v != NULL)
        cJSON_AddStringToObject(obj, key, utf8_clean(v, clean, sizeof(clean)));
    else
        cJSON_AddNullToObject(obj, key);
}

static void write_log(struct gate_req *req)
{
    struct reqlog *rl = req->w->srv->reqlog;
    char when[40];
    cJSON *rec;
    char line[4096];

    if (rl == NULL)
        return;
    gate_iso_time(req->wall_start, 1, when, sizeof(when));
    struct arena *prev = jsonmem_enter(req->arena);
    rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "time", when);
    cJSON_AddStringToObject(rec, "id", req->id);
    cJSON_AddStringToObject(rec, "client", req->peer);
    add_string_or_null(rec, "method",
                       req->msg.method >= 0 ? llhttp_method_name((llhttp_method_t)req->msg.method) : NULL);
    add_string_or_null(rec, "endpoint", req->msg.path);
    add_string_or_null(rec, "model", req->model);
    if (req->upstream_model != NULL)
        add_string_or_null(rec, "upstream_model", req->upstream_model);
    add_string_or_null(rec, "provider", req->prov ? req->prov->name : NULL);
    cJSON_AddNumberToObject(rec, "status", req->status);
    cJSON_AddBoolToObject(rec, "stream", req->stream);
    cJSON_AddNumberToObject(rec, "bytes_in", (double)req->msg.bytes_in);
    cJSON_AddNumberToObject(rec, "bytes_out", (double)req->bytes_out);
    /* whole microseconds: cJSON prints integers directly, reals with a printf-scanf round trip */
    cJSON_AddNumberToObject(rec, "latency_us", (double)(req->t_end - req->t_start));
    cJSON_AddNumberToObject(rec, "ttfb_us",
                            req->t_first_byte ? (double)(req->t_first_byte - req->t_start) : -1);
    if (req->usage.have) {
        cJSON *u = cJSON_AddObjectToObject(rec, "usage");
        cJSON_AddNumberToObject(u, "input", (double)req->usage.input);
        cJSON_AddNumberToObject(u, "output", (double)req->usage.output);
        cJSON_AddNumberToObject(u, "cached", (double)req->usage.cached);
        cJSON_AddNumberToObject(u, "cache_write", (double)req->usage.cache_write);
        if (req->usage.cache_write_1h > 0) /* of cache_write; absent: all 5-minute writes */
            cJSON_AddNumberToObject(u, "cache_write_1h", (double)req->usage.cache_write_1h);
    } else {
        cJSON_AddNullToObject(rec, "usage");
    }
    if (req->agent >= 0) {
        struct budget_book *b = req->w->srv->book;
        cJSON_AddStringToObject(rec, "agent", budget_scope_name(b, req->agent));
        const char *team = budget_scope_at_level(b, req->agent, CONF_LEVEL_TEAM);
        const char *dept = budget_scope_at_level(b, req->agent, CONF_LEVEL_DEPARTMENT);
        if (team != NULL)
            cJSON_AddStringToObject(rec, "team", team);
        if (dept != NULL)
            cJSON_AddStringToObject(rec, "department", dept);
        if (req->key_id[0])
            cJSON_AddStringToObject(rec, "key_id", req->key_id);
    }
    if (req->decision != REQ_DECISION_NONE) {
        cJSON_AddStringToObject(rec, "decision", req_decision_name(req->decision));
        cJSON_AddNumberToObject(rec, "tokens_charged", (double)req->charged_tokens);
        /* dollars from whole nano-dollars, in digits: exact, and without cJSON's printf and
         * scanf round trip for a double */
        char cost[48];
        int64_t nusd = req->charged_nusd > 0 ? req->charged_nusd : 0;
        snprintf(cost, sizeof(cost), "%lld.%09lld", (long long)(nusd / 1000000000),
                 (long long)(nusd % 1000000000));
        cJSON_AddRawToObject(rec, "cost_usd", cost);
        if (req->resv.tokens > 0)
            cJSON_AddNumberToObject(rec, "reserved_tokens", (double)req->resv.tokens);
    }
    if (req->cache.breakpoints > 0 || req->cache.prompt_key) { /* prompt caching (promptprep) */
        cJSON *pc = cJSON_AddObjectToObject(rec, "prompt_cache");
        cJSON_AddNumberToObject(pc, "breakpoints", req->cache.breakpoints);
        cJSON_AddBoolToObject(pc, "key", req->cache.prompt_key);
    }
    tcount_log(req, rec);
    route_log(req, rec);
    classify_log(req, rec);
    if (req->log_more != NULL)
        req->log_more(req, rec);
    toolcache_ep_log(req, rec);
    savings_log(req, rec);
    if (req->up_status)
        cJSON_AddNumberToObject(rec, "upstream_status", req->up_status);
    if (req->error)
        add_string_or_null(rec, "error", req->error);
    if (cJSON_PrintPreallocated(rec, line, (int)sizeof(line) - 5, 0)) {
        reqlog_write(rl, line, strlen(line));
    } else {
        const char *big = cJSON_PrintUnformatted(rec); /* in the arena */
        if (big != NULL)
            reqlog_write(rl, big, strlen(big));
    }
    jsonmem_leave(prev); /* the record's nodes go with the arena */
}

const char *req_decision_name(enum req_decision d)
{
    static const char *const names[] = {
        [REQ_DECISION_NONE] = NULL,
        [REQ_DECISION_ADMITTED] = "admitted",
        [REQ_DECISION_REJECTED] = "rejected",
        [REQ_DECISION_REJECTED_POLICY] = "rejected_policy",
        [REQ_DECISION_REJECTED_TASK] = "rejected_task",
        [REQ_DECISION_REJECTED_CUTOFF] = "rejected_cutoff",
        [REQ_DECISION_UNAUTHENTICATED] = "unauthenticated",
        [REQ_DECISION_UNAVAILABLE] = "unavailable",
        [REQ_DECISION_INVALID] = "invalid",
    };

    return (unsigned)d < sizeof(names) / sizeof(names[0]) ? names[d] : NULL;
}

/* From the worker's completion queue, at a safe point of its loop: nothing of the request is
 * on any stack now. */
static void req_free(struct completion *c)
{
    struct gate_req *req = (struct gate_req *)((char *)c - offsetof(struct gate_req, cq));

    /* req->json lives in the arena (see jsonmem) */
    if (req->msg.body)
        evbuffer_free(req->msg.body);
    if (req->ex.request)
        evbuffer_free(req->ex.request);
    if (req->up_body)
        evbuffer_free(req->up_body);
    sse_reset(&req->sse);
    decode_free(req->dec);
    xlate_stream_free(req->rt.xs);
    entry_fill_free(req->cache.fill);
    cache_val_release(req->cache.hit); /* the entry it replayed may go now */
    conf_unref(req->conf);
    arena_free(req->arena);
}

void req_reset_exchange(struct gate_req *req)
{
    if (req->ex.request)
        evbuffer_free(req->ex.request);
    memset(&req->ex, 0, sizeof(req->ex));
    if (req->up_body)
        evbuffer_free(req->up_body);
    req->up_body = NULL;
    sse_reset(&req->sse);
    decode_free(req->dec);
    req->dec = NULL;
    xlate_stream_free(req->rt.xs);
    req->rt.xs = NULL;
    req->rt.xdoc = NULL; /* in the arena */
    req->src = NULL;
    req->chain = NULL;
    req->up_status = 0;
    req->up_headers = NULL;
    req->n_up_headers = 0;
    req->up_sse = 0;
    req->out_limit = -1;
    req->stop_why = NULL;
    req->upstream_paused = 0;
    req->tries = 0;
    req->upstream = REQ_UP_NONE;
    req->up_timed_out = 0;
    req->out_unreadable = 0;
    req->nedits = 0;
    req->usage_injected = 0;
    req->upstream_model = NULL;
    req->error = NULL;
    req->rt.fb_status = 0;
    req->rt.fb_retry_ms = 0;
    req->rt.t_sent = req->rt.t_head = 0;
    req->rt.reported = 0;
}

void req_finish(struct gate_req *req)
{
    struct gate_worker *w = req->w;
    struct gate_conn *conn = req->conn;

    if (req->phase >= REQ_LOGGING || req->phase == REQ_WAITING)
        return; /* over, or owned by what will resume it */
    arena_limit(req->arena, 0, 0); /* its record is always written */
    if (req->src != NULL)
        req->src->cancel(req);
    req->t_end = gate_now_us();
    req_assign_id(req);
    if (req->status == 0)
        req->status = 499; /* the client left before any answer */
    if (req->phase < REQ_SETTLING) {
        req->phase = REQ_SETTLING; /* it never reached the settle stage */
        spend_settle(req, 0);
    }
    req->phase = REQ_LOGGING;
    if (!req->tc_finished)
        tcount_finish(req, w->drift);
    route_finish(req);
    write_log(req);
    atomic_fetch_add_explicit(&w->stats.requests, 1, memory_order_relaxed);
    if (req->status > 0 && req->status < 600)
        atomic_fetch_add_explicit(&w->stats.by_status[req->status], 1, memory_order_relaxed);
    if (req->drain_ev != NULL) {
        event_free(req->drain_ev);
        req->drain_ev = NULL;
    }
    if (req->detached)
        w->detached--;
    req->detached = 0;
    req->conn = NULL;
    req->phase = REQ_DONE;
    completion_post(w->cq, &req->cq, req_free);
    if (conn != NULL)
        conn_request_done(conn);
}

/* ---- the connection's calls (struct conn_handler) --------------------------------------- */

static void *on_begin(struct gate_worker *w, struct gate_conn *c, const char *peer,
                      struct http_msg **msg)
{
    struct arena *a = arena_new();
    struct gate_req *req;

    if (a == NULL || (req = arena_alloc(a, sizeof(*req))) == NULL) {
        arena_free(a);
        return NULL;
    }
    arena_account(a, &w->srv->mem); /* what requests hold, across the gate */
    req->arena = a;
    req->msg.arena = a;
    req->msg.method = -1;
    req->conn = c;
    req->w = w;
    req->conf = conf_ref(w->conf); /* pinned for the request's life */
    req->msg.conf = req->conf;       /* the connection reads it under the same limits */
    req->phase = REQ_READING;
    req->agent = -1;
    req->out_limit = -1;
    req->t_start = gate_now_us();
    req->wall_start = gate_wall_now();
    snprintf(req->peer, sizeof(req->peer), "%s", peer);
    *msg = &req->msg;
    return req;
}

static const char *on_hold_body(void *arg, uint64_t total)
{
    return req_hold_body(arg, total);
}

/* Expect: 100-continue: the key is checked now, as the pipeline checks it, for the endpoints
 * that need one; the rest are answered after the body. */
static int on_expect(void *arg)
{
    struct gate_req *req = arg;
    enum endpoint ep = endpoint_lookup(req->msg.path, req->msg.path_len);
    const struct endpoint_info *info = endpoint_info(ep);

    if (ep == EP_NONE || !(info->proxied || ep == EP_MODELS || ep == EP_MCP))
        return 0;
    req_assign_id(req);
    req->ep = ep;
    req->client_api = req->upstream_api = api_dialect_for(ep);
    req_guess_format(req);
    if (ep == EP_MCP)
        req->phase = REQ_SETTLING; /* the MCP proxy bills nothing: a refused key, no ledger row */
    if (spend_authenticate(req) < 0)
        return -1;
    req->phase = REQ_READING;
    return 0;
}

static void on_ready(void *arg)
{
    struct gate_req *req = arg;

    if (req->phase != REQ_READING)
        return;
    /* /mcp/{server} runs the MCP proxy's own table (gate/mcp/, set by gate/server.c) */
    const struct pipeline *mcp = req->w->srv->mcp_pipeline;
    pipeline_start(mcp != NULL && req->msg.path != NULL &&
                           endpoint_lookup(req->msg.path, req->msg.path_len) == EP_MCP
                       ? mcp
                       : &pipeline_gate,
                   req);
}

static void on_refuse(void *arg, enum apierr kind, const char *message)
{
    struct gate_req *req = arg;

    req_guess_format(req);
    req_fail(req, kind, message);
}

static void on_drained(void *arg)
{
    proxy_client_drained(arg);
}

static void on_gone(void *arg, const char *why)
{
    struct gate_req *req = arg;

    if (why != NULL && req->error == NULL)
        req->error = why;
    proxy_client_gone(req);
}

const struct conn_handler req_conn_handler = {
    .begin = on_begin,
    .hold_body = on_hold_body,
    .expect = on_expect,
    .ready = on_ready,
    .refuse = on_refuse,
    .drained = on_drained,
    .gone = on_gone,
};
