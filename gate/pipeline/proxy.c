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
#include "gate/http/respwrite.h"
#include "gate/util/jsonmem.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/req.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "gate/pipeline/spend.h"
#include "gate/upstream/upstream.h"

/* what is read of a stream whose client is gone, at most (see proxy_client_gone) */
#define PROXY_DRAIN_MAX (4u * 1024 * 1024)
#define PROXY_DRAIN_MS 250

/* one event of a stream may not grow past this */
#define SSE_EVENT_MAX (8u * 1024 * 1024)

/* ---- the response -------------------------------------------------------------------- */

/* Writes our status line and the provider's headers, with our framing. */
static void write_head(struct gate_req *req, int status, const struct http_header *h, int n,
                       long long content_length)
{
    char extra[256];

    if (content_length < 0 && req->msg.http10)
        conn_set_close(req->conn); /* HTTP/1.0 has no chunked coding: the close ends the body */
    struct respwrite_head head = {
        .status = status,
        .fields = h,
        .nfields = n,
        .drop_encoding = req->dec != NULL, /* the client gets what the gate decoded */
        .request_id = req->id,
        .extra = extra,
        .extra_len = spend_headers(req, extra, sizeof(extra)),
        .content_length = content_length,
        .http10 = req->msg.http10,
        .keep_alive = conn_keep_alive(req->conn),
    };
    req->bytes_out += respwrite_head(conn_output(req->conn), &head);
    req->status = status;
    req->head_sent = 1;
    req->t_first_byte = gate_now_us();
}

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

/* From upstream: the response head. Returns -1 to drop the exchange. */
static int on_up_head(void *arg, int status, const struct http_header *headers, int n)
{
    struct gate_req *req = arg;

    req->phase = REQ_RELAYING;
    req->up_status = status;
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
        if (req->conn != NULL) {
            write_head(req, status, headers, n, -1);
            conn_flush(req->conn); /* the client sees the stream start at once */
        }
        sse_init(&req->sse, SSE_EVENT_MAX);
    } else {
        /* kept for write_head once the whole body is in */
        req->up_headers = headers;
        req->n_up_headers = n;
        req->up_body = evbuffer_new();
    }
    return 0;
}

static void write_chunk(struct gate_req *req, const char *data, size_t len)
{
    req->bytes_out += respwrite_chunk(conn_output(req->conn), data, len, req->msg.http10);
}

/*
 * The provider streams past the output it was told to stop at (and past the margin for
 * counts that differ): a runaway or misbehaving upstream. The event that crossed is not
 * relayed; the stream ends with an error event, the upstream connection is closed (which
 * stops generation) and the request settles at the gate's count. Returns 1 to stop the feed.
 */
static int runaway(struct gate_req *req)
{
    char msg[240];

    snprintf(msg, sizeof(msg),
             "the provider streamed more output than this request was allowed (the gate cuts a "
             "stream at %lld tokens); the stream was ended and the output relayed so far was "
             "charged",
             (long long)req->out_limit);
    stop(req, APIERR_OUTPUT_LIMIT, arena_strndup(req->arena, msg, strlen(msg)));
    return 1;
}

/* One whole event of the stream: read usage from it, then relay it (or drop the usage chunk
 * the gate asked for on the client's behalf). */
static int on_event(void *arg, const struct sse_event *ev)
{
    struct gate_req *req = arg;
    int drop = 0;
    char name[64];

    if (ev->data_len > 0 && ev->data[0] == '{') {
        size_t nl = ev->name_len < sizeof(name) - 1 ? ev->name_len : sizeof(name) - 1;
        memcpy(name, ev->name, nl);
        name[nl] = '\0';
        /* parsed with malloc, not in the arena: a long stream has many events; bounded as
         * the request's body is (an event past it is relayed unread) */
        struct jsonmem_saved prev;
        jsonmem_enter_capped(req->conf->max_request_memory, &prev);
        cJSON *data = cJSON_ParseWithLength(ev->data, ev->data_len);
        if (data != NULL) {
            drop = usage_from_event(req->ep, name, data, &req->usage) && req->usage_injected;
            tcount_event(req, name, data);
            cJSON_Delete(data);
        }
        jsonmem_leave_capped(&prev);
        if (req->out_limit >= 0 && tcount_output_above(req, (uint64_t)req->out_limit))
            return runaway(req);
    }
    if (!drop && req->conn != NULL)
        write_chunk(req, ev->raw, ev->raw_len);
    return 0;
}

/* Takes answer bytes as the provider meant them (decoded): gathers a whole answer, or relays
 * a stream's events. Returns 0, or -1 after stop(). */
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
        evbuffer_add(req->up_body, data, len);
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

    /* a client gone from a non-stream request leaves the answer to be read for its usage; a
     * stream's is read for a moment after it left (see proxy_client_gone), then no more */
    if (req->conn == NULL && req->up_sse) {
        req->drained += len;
        if (!req->draining || req->drained > PROXY_DRAIN_MAX) {
            req_finish(req);
            return -1;
        }
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
    if (req->conn == NULL)
        return 0;
    if (req->up_sse)
        conn_flush(req->conn);
    if (req->up_sse && evbuffer_get_length(conn_output(req->conn)) > CONN_OUT_HIGH &&
        req->ex.uc != NULL) {
        req->upstream_paused = 1;
        upstream_pause(&req->ex);
    }
    return 0;
}

/* What on_up_done holds back until the ledger has the request's record: a whole
 * response (head and body), or the last chunk of a stream. */
void proxy_write_tail(struct gate_req *req)
{
    if (!req->up_sse) {
        size_t len = evbuffer_get_length(req->up_body);
        write_head(req, req->up_status, req->up_headers, req->n_up_headers, (long long)len);
        evbuffer_add_buffer(conn_output(req->conn), req->up_body);
        req->bytes_out += len;
    } else {
        req->bytes_out += respwrite_last_chunk(conn_output(req->conn), req->msg.http10);
    }
}

/* A whole answer has arrived: its usage and the gate's count of it. An answer that does not
 * parse is counted as raw text and charged no less than the reservation. */
static void read_answer(struct gate_req *req)
{
    size_t len = evbuffer_get_length(req->up_body);
    const char *body = (const char *)evbuffer_pullup(req->up_body, -1);

    if (!(req->up_status >= 200 && req->up_status < 300) || len == 0)
        return;
    struct arena *prev = jsonmem_enter(req->arena);
    /* bounded as the request's body is (but served already: read even when the gate is
     * busy); an answer past the limit is not read, so charged as unreadable */
    arena_limit(req->arena, req->conf->max_request_memory, 0);
    cJSON *doc = cJSON_ParseWithLength(body, len);
    arena_limit(req->arena, 0, 0);
    if (doc != NULL) {
        usage_from_body(req->ep, doc, &req->usage);
        tcount_body(req, doc);
    } else {
        req->out_unreadable = 1;
        tcount_text(req, body, len);
        if (req->error == NULL)
            req->error = "the provider's answer is not valid JSON: charged no less than the "
                         "reservation";
    }
    jsonmem_leave(prev);
}

/* From upstream: the response is complete; the connection is already back in its pool. */
static void on_up_done(void *arg)
{
    struct gate_req *req = arg;

    if (req->dec != NULL && !decode_done(req->dec))
        req->out_unreadable = 1;
    if (!req->up_sse) {
        read_answer(req);
    } else if (req->conn != NULL) {
        size_t left;
        const char *rest = sse_pending(&req->sse, &left);
        if (left > 0)
            write_chunk(req, rest, left); /* a last event without its blank line */
        conn_flush(req->conn); /* all but the end goes out while the ledger commits */
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
        upstream_send_fresh(req->w->pools[req->prov->index], &req->ex);
        return;
    }
    req->upstream = REQ_UP_FAILED;
    req->error = arena_strndup(req->arena, message, strlen(message));
    req_fail(req, kind, req->error);
}

static const struct upstream_handler up_handler = {
    .head = on_up_head,
    .body = on_up_body,
    .done = on_up_done,
    .failed = on_up_failed,
};

void proxy_dispatch(struct gate_req *req)
{
    req->upstream = REQ_UP_SENT;
    req->tries++;
    req->ex.h = &up_handler;
    req->ex.arg = req;
    req->ex.arena = req->arena;
    upstream_send(req->w->pools[req->prov->index], &req->ex);
}

void proxy_client_drained(struct gate_req *req)
{
    if (req->upstream_paused && req->ex.uc != NULL) {
        req->upstream_paused = 0;
        upstream_resume(&req->ex);
    }
}

/* The moment a stream is read for after its client left is over. */
static void drain_over(evutil_socket_t fd, short what, void *arg)
{
    req_finish(arg);
}

void proxy_client_gone(struct gate_req *req)
{
    struct gate_worker *w = req->w;

    req->conn = NULL;
    if (req->error == NULL)
        req->error = "the client closed the connection";
    if (req->ex.uc == NULL || !(req->phase == REQ_DISPATCHED || req->phase == REQ_RELAYING) ||
        w->stopped) {
        req_finish(req);
        return;
    }
    /* A whole answer is being made and will be billed: read it to the end (within the upstream
     * timeouts and max_response_bytes) for its usage. A stream is read on for PROXY_DRAIN_MS
     * (or PROXY_DRAIN_MAX bytes, or its end), counted and not relayed, for what the provider
     * made before it sees the close; then the connection closes, which stops generation. */
    if (req->up_sse || req->stream) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = PROXY_DRAIN_MS * 1000};
        req->drain_ev = evtimer_new(w->base, drain_over, req);
        if (req->drain_ev == NULL || evtimer_add(req->drain_ev, &tv) < 0) {
            req_finish(req);
            return;
        }
        req->draining = 1;
        if (req->upstream_paused) {
            req->upstream_paused = 0;
            upstream_resume(&req->ex);
        }
    }
    req->detached = 1;
    w->detached++;
}
