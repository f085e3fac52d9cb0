/*
 * proxy: the request pipeline. See proxy.h.
 */
#include "gate/pipeline/proxy.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/util/arena.h"
#include "gate/http/conn.h"
#include "gate/http/decode.h"
#include "gate/util/jsonfast.h"
#include "gate/util/jsonmem.h"
#include "gate/pipeline/fallback.h"
#include "gate/pipeline/filter.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/source.h"
#include "gate/pipeline/req.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "gate/pipeline/spend.h"
#include "gate/upstream/poolset.h"
#include "gate/upstream/upstream.h"

/* what is read of a stream whose client is gone (see proxy_client_gone): for PROXY_DRAIN_MS,
 * then on while the provider's bytes wait unread (looked at every PROXY_DRAIN_CHECK_MS), at most
 * PROXY_DRAIN_MAX bytes and PROXY_DRAIN_LAST_MS */
#define PROXY_DRAIN_MAX (4u * 1024 * 1024)
#define PROXY_DRAIN_MS 250
#define PROXY_DRAIN_CHECK_MS 10
#define PROXY_DRAIN_LAST_MS 10000
/* bytes waiting when the moment ends from which the provider may have more sent behind them:
 * a receive queue this full can be a closed TCP window, with the rest in the provider's send
 * queue, out of the gate's sight; below it, TCP has nothing held back */
#define PROXY_DRAIN_WINDOW (64u * 1024)

/* one event of a stream may not grow past this */
#define SSE_EVENT_MAX (8u * 1024 * 1024)

/* ---- the upstream source: the exchange's answer, through the filter chain ------------ */

/* Relaying stops: why is kept for the caller, which ends the request (the request may not
 * be ended from inside the parsers that call back). Returns -1. */
static int stop(struct gate_req *req, enum apierr kind, const char *why)
{
    if (req->stop_why == NULL) {
        req->stop_kind = kind;
        req->stop_why = why;
    }
    return -1;
}

/*
 * The provider's Content-Encoding: gzip and deflate are undone as the body arrives (the gate
 * asked for identity, but usage must be read whatever comes); a coding the gate cannot undo
 * makes the answer unreadable. Returns 0, or -1 after stop().
 */
static int take_encoding(struct gate_req *req, const struct http_header *h)
{
    enum decode_kind kind = decode_kind_of(h->value, h->value_len);
    char msg[160];

    if (kind == DECODE_IDENTITY)
        return 0;
    if (kind != DECODE_UNKNOWN && (req->dec = decode_new(kind)) != NULL)
        return 0;
    req->out_unreadable = 1;
    if (kind != DECODE_UNKNOWN)
        return stop(req, APIERR_INTERNAL, "out of memory");
    snprintf(msg, sizeof(msg),
             "the provider answered with content-encoding '%.40s', which the gate cannot read",
             h->value);
    return stop(req, APIERR_BAD_GATEWAY, arena_strndup(req->arena, msg, strlen(msg)));
}

/* What a provider's answer asks before it is tried again: retry-after-ms, else retry-after in
 * whole seconds (a date is not read), in milliseconds; 0 for none. */
static int64_t retry_after_ms(const struct http_header *headers, int n)
{
    for (int i = 0; i < n; i++) {
        char *end;
        if (strcmp(headers[i].name, "retry-after-ms") == 0) {
            double v = strtod(headers[i].value, &end);
            if (end != headers[i].value && v >= 0 && v < 1e9)
                return (int64_t)v;
        }
    }
    for (int i = 0; i < n; i++) {
        char *end;
        if (strcmp(headers[i].name, "retry-after") == 0) {
            long v = strtol(headers[i].value, &end, 10);
            if (end != headers[i].value && *end == '\0' && v >= 0 && v < 1000000)
                return (int64_t)v * 1000;
        }
    }
    return 0;
}

/* A provider's answer that another target may do better: rate limited, overloaded, failing. */
static int fallback_status(int status)
{
    return status == 429 || status >= 500;
}

/* From upstream: the response head. Returns -1 to drop the exchange. */
static int on_up_head(void *arg, int status, const struct http_header *headers, int n)
{
    struct gate_req *req = arg;

    req->phase = REQ_RELAYING;
    req->up_status = status;
    req->rt.t_head = gate_now_us();
    if (fallback_status(status) && fallback_possible(req)) {
        /* another target will answer: this one's body is read and dropped (the connection
         * stays good), then on_up_done gives it up */
        req->rt.fb_status = status;
        req->rt.fb_retry_ms = retry_after_ms(headers, n);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(headers[i].name, "content-type") == 0 &&
            strncasecmp(headers[i].value, "text/event-stream", 17) == 0)
            req->up_sse = 1;
        if (strcmp(headers[i].name, "content-encoding") == 0 && take_encoding(req, &headers[i]) < 0) {
            req_fail(req, req->stop_kind, req->stop_why);
            return -1;
        }
    }
    if (req->up_sse) {
        if (req->conn == NULL && !req->draining) {
            req_finish(req); /* the client left: a stream is not read on for nobody */
            return -1;
        }
        sse_init(&req->sse, SSE_EVENT_MAX);
    } else if ((req->up_body = evbuffer_new()) == NULL) {
        req_fail(req, APIERR_INTERNAL, "out of memory");
        return -1;
    }
    if (filter_head(NULL, req, status, headers, n) < 0) {
        req_fail(req, req->stop_kind, req->stop_why);
        return -1;
    }
    return 0;
}

/* One whole event of the stream, through the filter chain. Returns 1 to stop the feed. */
static int on_event(void *arg, const struct sse_event *sev)
{
    struct gate_req *req = arg;
    char name[64];
    struct resp_event ev = {.name = name, .raw = sev->raw, .raw_len = sev->raw_len,
                            .text = sev->data, .text_len = sev->data_len};
    struct jsonmem_saved prev;
    cJSON *data = NULL;
    int rc;

    name[0] = '\0';
    ev.json = sev->data_len > 0 && sev->data[0] == '{';
    if (ev.json) {
        size_t nl = sev->name_len < sizeof(name) - 1 ? sev->name_len : sizeof(name) - 1;
        memcpy(name, sev->name, nl);
        name[nl] = '\0';
        /* parsed with malloc, not in the arena: a long stream has many events; bounded as
         * the request's body is (an event past it is relayed unread) */
        jsonmem_enter_capped(req->conf->max_request_memory, &prev);
        ev.data = data = cJSON_ParseWithLength(sev->data, sev->data_len);
    }
    rc = filter_event(NULL, req, &ev);
    if (ev.json) {
        cJSON_Delete(data);
        jsonmem_leave_capped(&prev);
    }
    return rc < 0 ? 1 : 0;
}

/* Takes answer bytes as the provider meant them (decoded): gathers a whole answer, or feeds
 * a stream's events to the chain. Returns 0, or -1 after stop(). */
static int take_body(void *arg, const char *data, size_t len)
{
    struct gate_req *req = arg;

    if (!req->up_sse) {
        if (evbuffer_get_length(req->up_body) + len > req->conf->max_response_bytes) {
            /* the provider made (and bills) an answer the gate cannot read whole */
            req->out_unreadable = 1;
            return stop(req, APIERR_BAD_GATEWAY,
                        "the provider's response is larger than the limit");
        }
        if (evbuffer_add(req->up_body, data, len) < 0)
            return stop(req, APIERR_INTERNAL, "out of memory");
        arena_charge(req->arena, len, 0); /* counted in the memory in flight */
        return 0;
    }
    int rc = sse_feed(&req->sse, data, len, on_event, req);
    if (rc < 0)
        return stop(req, APIERR_BAD_GATEWAY,
                    "the provider sent a stream event larger than the limit");
    return rc == 0 ? 0 : -1;
}

/* From upstream: a piece of the (de-chunked) response body. Returns -1 to drop the exchange. */
static int on_up_body(void *arg, const char *data, size_t len)
{
    struct gate_req *req = arg;
    int rc;

    if (req->rt.fb_status)
        return 0; /* an answer given up for the next target (on_up_head) */
    /* a client gone from a non-stream request leaves the answer to be read for its usage; a
     * stream's is read for a moment after it left (see proxy_client_gone), then no more */
    if (req->conn == NULL && req->up_sse) {
        if (!req->draining) {
            req_finish(req);
            return -1;
        }
        req->drained += len; /* counted below even when it crosses the cap: it is read */
    }
    if (req->dec != NULL) {
        size_t cap = req->up_sse ? SSE_EVENT_MAX : req->conf->max_response_bytes;
        rc = decode_feed(req->dec, data, len, cap, take_body, req);
        if (rc < 0 && req->stop_why == NULL) {
            char msg[200];
            snprintf(msg, sizeof(msg), "the provider's compressed response cannot be read: %s",
                     decode_error(req->dec));
            req->out_unreadable = 1;
            stop(req, APIERR_BAD_GATEWAY, arena_strndup(req->arena, msg, strlen(msg)));
        }
    } else {
        rc = take_body(req, data, len);
    }
    if (rc < 0) {
        if (req->stop_kind != APIERR_OUTPUT_LIMIT)
            req->upstream = REQ_UP_FAILED;
        req_fail(req, req->stop_kind, req->stop_why);
        return -1;
    }
    if (req->conn == NULL) {
        if (req->up_sse && req->drained > PROXY_DRAIN_MAX) {
            req_finish(req);
            return -1;
        }
        return 0;
    }
    if (req->up_sse)
        conn_flush(req->conn);
    /* backpressure: the client is slow, the source waits (proxy_client_drained resumes it) */
    if (req->up_sse && evbuffer_get_length(conn_output(req->conn)) > CONN_OUT_HIGH) {
        req->upstream_paused = 1;
        req->src->pause(req);
    }
    return 0;
}

/* A whole answer has arrived: parsed once for the chain (usage, count). An answer that does
 * not parse is counted as raw text and charged no less than the reservation. */
static int end_answer(struct gate_req *req)
{
    size_t len = evbuffer_get_length(req->up_body);
    struct resp_body b = {.data = (const char *)evbuffer_pullup(req->up_body, -1), .len = len};
    int rc;

    b.read = req->up_status >= 200 && req->up_status < 300 && len > 0;
    struct arena *prev = jsonmem_enter(req->arena);
    if (b.read) {
        /* bounded as the request's body is (but served already: read even when the gate is
         * busy); an answer past the limit is not read, so charged as unreadable */
        arena_limit(req->arena, req->conf->max_request_memory, 0);
        b.doc = jsonfast_parse(b.data, len, NULL);
        arena_limit(req->arena, 0, 0);
        if (b.doc == NULL) {
            req->out_unreadable = 1;
            if (req->error == NULL)
                req->error = "the provider's answer is not valid JSON: charged no less than "
                             "the reservation";
        }
    }
    rc = filter_body(NULL, req, &b);
    jsonmem_leave(prev);
    return rc;
}

/* From upstream: the response is complete; the connection is already back in its pool. */
static void on_up_done(void *arg)
{
    struct gate_req *req = arg;
    int rc;

    if (req->rt.fb_status) {
        int st = req->rt.fb_status;
        char why[80];
        snprintf(why, sizeof(why), "status %d", st);
        if (fallback_start(req, st == 429 ? ROUTE_FAIL_LIMITED : ROUTE_FAIL_STATUS, why, st,
                           req->rt.fb_retry_ms))
            return;
        /* no other target now (its client left meanwhile): the answer was not kept */
        snprintf(why, sizeof(why), "the provider answered %d", st);
        req_fail(req, st == 429 || st == 503 || st == 529 ? APIERR_UNAVAILABLE : APIERR_BAD_GATEWAY,
                 arena_strndup(req->arena, why, strlen(why)));
        return;
    }
    if (req->dec != NULL && !decode_done(req->dec))
        req->out_unreadable = 1;
    if (!req->up_sse) {
        rc = end_answer(req);
    } else {
        struct resp_body b = {0};
        b.data = sse_pending(&req->sse, &b.len); /* a last event without its blank line */
        rc = filter_body(NULL, req, &b);
    }
    if (rc == 0)
        rc = filter_end(NULL, req);
    if (rc < 0) {
        req_fail(req, req->stop_kind, req->stop_why);
        return;
    }
    pipeline_resume(req, STAGE_NEXT); /* the stage after dispatch: settle */
}

/*
 * From upstream: the exchange failed; its connection is already closed. The next-target path
 * (nginx's ngx_http_upstream_next): a request that provably never reached the provider whole
 * is sent once more on a fresh connection; anything else is final, and the request ends in
 * the one finalize path.
 */
static void on_up_failed(void *arg, enum apierr kind, const char *message, int retry_safe)
{
    struct gate_req *req = arg;

    if (retry_safe && req->tries == 1 && req->phase == REQ_DISPATCHED) {
        req->tries++;
        upstream_retry(poolset_get(req->w->pools, req->conf, req->prov), &req->ex);
        return;
    }
    req->upstream = REQ_UP_FAILED;
    req->up_timed_out = kind == APIERR_GATEWAY_TIMEOUT;
    enum route_outcome o = req->rt.fb_status == 429        ? ROUTE_FAIL_LIMITED
                           : req->rt.fb_status != 0           ? ROUTE_FAIL_STATUS
                           : kind == APIERR_GATEWAY_TIMEOUT ? ROUTE_FAIL_TIMEOUT
                                                            : ROUTE_FAIL_CONNECT;
    if (fallback_start(req, o, message, req->up_status, req->rt.fb_retry_ms))
        return;
    req->error = arena_strndup(req->arena, message, strlen(message));
    req_fail(req, kind, req->error);
}

static const struct upstream_handler up_handler = {
    .head = on_up_head,
    .body = on_up_body,
    .done = on_up_done,
    .failed = on_up_failed,
};

static void up_start(struct gate_req *req)
{
    req->upstream = REQ_UP_SENT;
    req->tries++;
    req->rt.t_sent = gate_now_us();
    req->ex.h = &up_handler;
    req->ex.arg = req;
    req->ex.arena = req->arena;
    req->ex.conf = req->conf;
    upstream_send(poolset_get(req->w->pools, req->conf, req->prov), &req->ex);
}

static void up_pause(struct gate_req *req)
{
    upstream_pause(&req->ex);
}

static void up_resume(struct gate_req *req)
{
    upstream_resume(&req->ex);
}

static void up_cancel(struct gate_req *req)
{
    upstream_cancel(&req->ex);
}

const struct resp_source source_upstream = {
    .name = "upstream",
    .start = up_start,
    .pause = up_pause,
    .resume = up_resume,
    .cancel = up_cancel,
};

/* ---- the client's side ----------------------------------------------------------------- */

void proxy_client_drained(struct gate_req *req)
{
    if (req->upstream_paused && req->src != NULL) {
        req->upstream_paused = 0;
        req->src->resume(req);
    }
}

/*
 * The moment a stream is read for after its client left is over. What the provider has sent
 * by then and the gate has not read yet (in the kernel's queue or the connection's buffer) was
 * made before the gate stops reading, and is billed: it is read and counted too, however long
 * the gate takes to get to it (a loaded machine, a sanitizer build). So the bytes waiting at
 * this moment are owed, and the drain ends once they are read: what a provider still
 * producing sends later is not waited for (the close stops it). When that many wait that the
 * TCP window may be closed (PROXY_DRAIN_WINDOW), the provider may have sent more than the gate
 * can see, so it reads on while anything waits. Always within PROXY_DRAIN_MAX bytes and
 * PROXY_DRAIN_LAST_MS. Waiting bytes are counted as they sit in the socket (with chunk framing
 * or TLS records), at least what they decode to, so the owed part is read whole.
 */
static void drain_over(evutil_socket_t fd, short what, void *arg)
{
    struct gate_req *req = arg;
    struct timeval tv = {.tv_sec = 0, .tv_usec = PROXY_DRAIN_CHECK_MS * 1000};
    size_t unread = upstream_unread(&req->ex);

    if (!req->drain_marked) {
        req->drain_marked = 1;
        req->drain_owed = unread >= PROXY_DRAIN_WINDOW ? SIZE_MAX : req->drained + unread;
    }
    if (unread > 0 && req->drained < req->drain_owed && gate_now_us() < req->drain_end_us &&
        evtimer_add(req->drain_ev, &tv) == 0)
        return; /* the loop reads what waits first; look again after */
    req_finish(req);
}

void proxy_client_gone(struct gate_req *req)
{
    struct gate_worker *w = req->w;

    req->conn = NULL;
    if (req->error == NULL)
        req->error = "the client closed the connection";
    if (req->src == NULL || req->src != &source_upstream || /* a replay: nothing is owed */ upstream_waiting(&req->ex) ||
        !(req->phase == REQ_DISPATCHED || req->phase == REQ_RELAYING) || w->stopped) {
        req_finish(req);
        return;
    }
    /* A whole answer is being made and will be billed: read it to the end (within the upstream
     * timeouts and max_response_bytes) for its usage. A stream is read on for PROXY_DRAIN_MS
     * and then while the provider's bytes wait unread (or to PROXY_DRAIN_MAX bytes, or its
     * end), counted and not relayed, for what the provider made before it sees the close; then
     * the connection closes, which stops generation. */
    if (req->up_sse || req->stream) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = PROXY_DRAIN_MS * 1000};
        req->drain_ev = evtimer_new(w->base, drain_over, req);
        if (req->drain_ev == NULL || evtimer_add(req->drain_ev, &tv) < 0) {
            req_finish(req);
            return;
        }
        req->draining = 1;
        req->drain_end_us = gate_now_us() + (int64_t)PROXY_DRAIN_LAST_MS * 1000;
        if (req->upstream_paused) {
            req->upstream_paused = 0;
            req->src->resume(req);
        }
    }
    req->detached = 1;
    w->detached++;
}
