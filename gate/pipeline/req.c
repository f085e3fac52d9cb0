/*
 * req: request lifecycle, responses written by the gate, and the per-request log record.
 */
#include "gate/pipeline/req.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate/util/arena.h"
#include "gate/http/conn.h"
#include "gate/http/decode.h"
#include "gate/util/jsonmem.h"
#include "gate/pipeline/reqlog.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "gate/pipeline/spend.h"
#include "gate/upstream/upstream.h"
#include "tokenizer/utf8.h"

const struct http_header *req_header(const struct gate_req *req, const char *name)
{
    size_t n = strlen(name);

    for (int i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == n && memcmp(req->headers[i].name, name, n) == 0)
            return &req->headers[i];
    return NULL;
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
    enum endpoint ep = req->path ? endpoint_lookup(req->path, req->path_len) : EP_NONE;

    if (ep != EP_NONE)
        req->fmt = endpoint_info(ep)->format;
    else if ((req->path_len >= 12 && memcmp(req->path, "/v1/messages", 12) == 0) ||
             req_header(req, "anthropic-version") != NULL)
        req->fmt = CONF_FMT_ANTHROPIC;
    else
        req->fmt = CONF_FMT_OPENAI;
}

void req_respond(struct gate_req *req, int status, const char *ctype, const char *extra_headers,
                 const char *body, size_t len)
{
    struct evbuffer *out;
    size_t before;

    req_assign_id(req);
    if (req->conn == NULL) {
        req_finish(req);
        return;
    }
    out = conn_output(req->conn);
    before = evbuffer_get_length(out);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "content-type: %s\r\n"
                        "content-length: %zu\r\n"
                        "x-request-id: %s\r\n"
                        "%s"
                        "connection: %s\r\n\r\n",
                        status, http_reason(status), ctype, len, req->id,
                        extra_headers ? extra_headers : "",
                        conn_keep_alive(req->conn) ? "keep-alive" : "close");
    if (req->method != HTTP_HEAD)
        evbuffer_add(out, body, len); /* HEAD: the headers a GET would have, no body */
    req->bytes_out += evbuffer_get_length(out) - before;
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
            struct evbuffer *out = conn_output(req->conn);
            if (req->http10) {
                evbuffer_add(out, ev, n); /* the close that follows ends the body */
                req->bytes_out += n;
            } else {
                evbuffer_add_printf(out, "%zx\r\n", n);
                evbuffer_add(out, ev, n);
                evbuffer_add(out, "\r\n0\r\n\r\n", 7);
                req->bytes_out += n + 12;
            }
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
    /* 503 is for now: say when to come back */
    req_respond(req, apierr_status(kind), "application/json",
                kind == APIERR_UNAVAILABLE ? "retry-after: 1\r\n" : NULL, body, n);
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
                       req->method >= 0 ? llhttp_method_name((llhttp_method_t)req->method) : NULL);
    add_string_or_null(rec, "endpoint", req->path);
    add_string_or_null(rec, "model", req->model);
    if (req->upstream_model != NULL)
        add_string_or_null(rec, "upstream_model", req->upstream_model);
    add_string_or_null(rec, "provider", req->prov ? req->prov->name : NULL);
    cJSON_AddNumberToObject(rec, "status", req->status);
    cJSON_AddBoolToObject(rec, "stream", req->stream);
    cJSON_AddNumberToObject(rec, "bytes_in", (double)req->bytes_in);
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
    if (req->decision != NULL) {
        cJSON_AddStringToObject(rec, "decision", req->decision);
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
    tcount_log(req, rec);
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

void req_finish(struct gate_req *req)
{
    struct gate_worker *w = req->w;
    struct gate_conn *conn = req->conn;

    if (req->state == REQ_DONE)
        return;
    if (req->settle_state == 1) {
        req->finish_asked = 1; /* the ledger thread has it: proxy_settled finishes it */
        return;
    }
    req->state = REQ_DONE;
    arena_limit(req->arena, 0, 0); /* its record is always written */
    if (req->uc != NULL)
        upstream_detach(req->uc);
    req->t_end = gate_now_us();
    req_assign_id(req);
    if (req->status == 0)
        req->status = 499; /* the client left before any answer */
    spend_settle(req, 0);
    if (!req->tc_finished)
        tcount_finish(req, w->drift);
    write_log(req);
    atomic_fetch_add_explicit(&w->stats.requests, 1, memory_order_relaxed);
    if (req->status > 0 && req->status < 600)
        atomic_fetch_add_explicit(&w->stats.by_status[req->status], 1, memory_order_relaxed);

    /* req->json lives in the arena (see jsonmem) */
    if (req->body)
        evbuffer_free(req->body);
    if (req->up_request)
        evbuffer_free(req->up_request);
    if (req->up_body)
        evbuffer_free(req->up_body);
    sse_reset(&req->sse);
    decode_free(req->dec);
    if (req->drain_ev != NULL)
        event_free(req->drain_ev);
    if (req->detached)
        w->detached--;
    conf_unref(req->conf);
    arena_free(req->arena);
    if (conn != NULL)
        conn_request_done(conn);
}
