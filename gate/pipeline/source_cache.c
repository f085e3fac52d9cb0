/*
 * source_cache: a response-cache hit's answer, replayed into the request's chain (the writer
 * alone) as the upstream source would produce it. See source.h.
 *
 * A whole request gets the entry's whole answer: a 200 head, the body, the end (the writer
 * holds it until the ledger has the record, as for any answer). A streaming request gets the
 * entry's own events when the original was a stream, else the events replay_stream makes of
 * the whole answer, in the client's API; they go out without the original's delays, a batch
 * at a time from the worker's loop, and wait while the client's output is above
 * CONN_OUT_HIGH (proxy_client_drained resumes the source). A client that leaves ends the
 * request (proxy_client_gone): the source is cancelled, the hit is still recorded.
 *
 * Its state lives in the request's arena. A stored stream is written from the entry itself
 * (only where each event ends is kept); events made from a whole answer are in a malloc'd
 * buffer, freed when the source ends or is cancelled (req_finish always cancels the source).
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "cache/entry.h"
#include "cache/replay.h"
#include "cache/store.h"
#include "gate/core/worker.h"
#include "gate/http/conn.h"
#include "gate/http/sse.h"
#include "gate/pipeline/filter.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/source.h"
#include "gate/util/arena.h"

#define REPLAY_PIECE 64          /* bytes of text per replayed delta (replay_stream) */
#define REPLAY_BATCH (64 * 1024) /* bytes written per turn of the loop */
#define REPLAY_EVENT_MAX (8u * 1024 * 1024)

struct replay_src {
    struct event *ev;   /* the next batch, on the worker's loop */
    const char *base;   /* the stream's events, back to back: in the entry (its reference is
                         * held until the request is freed) or in bytes */
    char *bytes;        /* events made from a whole answer (malloc'd) */
    size_t len, cap;
    size_t *ends;       /* where each event ends in bytes (malloc'd) */
    size_t nev, evcap, next;
    int headed, done;
};

static struct replay_src *src_of(struct gate_req *req)
{
    return req->cache.replay;
}

static int add_bytes(struct replay_src *s, const char *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t want = s->cap ? s->cap : 4096;
        char *b;
        while (want < s->len + n)
            want *= 2;
        if ((b = realloc(s->bytes, want)) == NULL)
            return -1;
        s->bytes = b;
        s->cap = want;
    }
    memcpy(s->bytes + s->len, p, n);
    s->len += n;
    return 0;
}

/* Marks the end of an event at the current length. */
static int end_event(struct replay_src *s)
{
    if (s->nev == s->evcap) {
        size_t want = s->evcap ? s->evcap * 2 : 64;
        size_t *e = realloc(s->ends, want * sizeof(*e));
        if (e == NULL)
            return -1;
        s->ends = e;
        s->evcap = want;
    }
    s->ends[s->nev++] = s->len;
    return 0;
}

/* replay_stream's events, framed as SSE. */
static int emit(void *arg, const char *name, const char *data, size_t len)
{
    struct replay_src *s = arg;

    if (name != NULL && (add_bytes(s, "event: ", 7) < 0 || add_bytes(s, name, strlen(name)) < 0 ||
                         add_bytes(s, "\n", 1) < 0))
        return -1;
    if (add_bytes(s, "data: ", 6) < 0 || add_bytes(s, data, len) < 0 ||
        add_bytes(s, "\n\n", 2) < 0)
        return -1;
    return end_event(s);
}

/* A stored stream's event, as the SSE parser finds it: only where it ends is kept (its bytes
 * stay in the entry). */
static int stored_event(void *arg, const struct sse_event *ev)
{
    struct replay_src *s = arg;

    s->len += ev->raw_len;
    return end_event(s);
}

/* The stream's events into s. Returns 0 or -1. */
static int make_stream(struct gate_req *req, struct replay_src *s, const struct entry_view *v)
{
    if (v->from_stream && v->events != NULL && v->events_len > 0) {
        struct sse_parser p;
        int rc = 0;

        sse_init(&p, REPLAY_EVENT_MAX);
        /* in pieces: the parser keeps a copy of what it is given */
        for (size_t off = 0, n; off < v->events_len && rc == 0; off += n) {
            n = v->events_len - off < REPLAY_BATCH ? v->events_len - off : REPLAY_BATCH;
            rc = sse_feed(&p, v->events + off, n, stored_event, s);
        }
        sse_reset(&p);
        s->base = v->events;
        return rc == 0 && s->nev > 0 ? 0 : -1;
    }
    cJSON *whole = cJSON_ParseWithLength(v->whole, v->whole_len);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req->json, "stream_options");
    int include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    int rc = whole != NULL ? replay_stream(v->api, whole, include_usage, REPLAY_PIECE, emit, s)
                           : -1;

    cJSON_Delete(whole);
    s->base = s->bytes;
    return rc == 0 && s->nev > 0 ? 0 : -1;
}

static void release(struct gate_req *req)
{
    struct replay_src *s = src_of(req);

    if (s == NULL)
        return;
    if (s->ev != NULL)
        event_free(s->ev);
    free(s->bytes);
    free(s->ends);
    memset(s, 0, sizeof(*s));
    s->done = 1;
}

/* Fails the replay: the request ends with an error (an event when the stream began). */
static void fail(struct gate_req *req, const char *why)
{
    release(req);
    req_fail(req, APIERR_INTERNAL, why);
}

static struct http_header *head_fields(struct gate_req *req, const char *ctype)
{
    struct http_header *h = arena_alloc(req->arena, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->name = arena_strndup(req->arena, "content-type", 12);
    h->name_len = 12;
    h->value = arena_strndup(req->arena, ctype, strlen(ctype));
    h->value_len = strlen(ctype);
    return h->name != NULL && h->value != NULL ? h : NULL;
}

/* The whole answer: head, body, end; the writer holds it for the tail. */
static int whole_answer(struct gate_req *req, const struct entry_view *v)
{
    struct http_header *h = head_fields(req, "application/json");
    struct resp_body b = {.data = v->whole, .len = v->whole_len};

    if (h == NULL || (req->up_body = evbuffer_new()) == NULL ||
        evbuffer_add(req->up_body, v->whole, v->whole_len) < 0)
        return -1;
    if (filter_head(NULL, req, 200, h, 1) < 0 || filter_body(NULL, req, &b) < 0)
        return -1;
    return 0;
}

/* One turn of the loop: the head, then events until the batch is written, the client's
 * output is full, or the stream is over. */
static void pump(evutil_socket_t fd, short what, void *arg)
{
    struct gate_req *req = arg;
    struct replay_src *s = src_of(req);
    size_t written = 0;

    if (s == NULL || s->done || req->conn == NULL)
        return; /* cancelled, or the client left (proxy_client_gone ends the request) */
    if (!s->headed) {
        struct http_header *h = head_fields(req, "text/event-stream");
        s->headed = 1;
        if (h == NULL || filter_head(NULL, req, 200, h, 1) < 0) {
            fail(req, "out of memory");
            return;
        }
    }
    while (s->next < s->nev) {
        size_t from = s->next ? s->ends[s->next - 1] : 0;
        struct resp_event ev = {.name = "", .raw = s->base + from,
                                .raw_len = s->ends[s->next] - from};

        if (req->conn == NULL)
            return;
        if (evbuffer_get_length(conn_output(req->conn)) > CONN_OUT_HIGH) {
            req->upstream_paused = 1; /* proxy_client_drained resumes */
            conn_flush(req->conn);
            return;
        }
        if (written >= REPLAY_BATCH) {
            conn_flush(req->conn);
            event_active(s->ev, EV_TIMEOUT, 0); /* the others on this loop get their turn */
            return;
        }
        s->next++;
        written += ev.raw_len;
        if (filter_event(NULL, req, &ev) < 0) {
            fail(req, req->stop_why ? req->stop_why : "the replay stopped");
            return;
        }
    }
    struct resp_body b = {0};
    release(req);
    if (filter_body(NULL, req, &b) < 0 || filter_end(NULL, req) < 0) {
        req_fail(req, req->stop_kind, req->stop_why);
        return;
    }
    pipeline_resume(req, STAGE_NEXT); /* the stage after dispatch: settle */
}

/* A whole answer, from the loop (never from inside dispatch). */
static void answer_whole(evutil_socket_t fd, short what, void *arg)
{
    struct gate_req *req = arg;
    struct entry_view v;
    size_t len;
    const void *data = cache_val_data(req->cache.hit, &len);
    int rc;

    release(req);
    if (req->conn == NULL)
        return;
    rc = entry_parse(data, len, &v) == 0 && whole_answer(req, &v) == 0 ? 0 : -1;
    if (rc == 0)
        rc = filter_end(NULL, req);
    if (rc < 0) {
        req_fail(req, APIERR_INTERNAL, "the cached answer could not be replayed");
        return;
    }
    pipeline_resume(req, STAGE_NEXT);
}

static void cache_start(struct gate_req *req)
{
    struct replay_src *s = arena_alloc(req->arena, sizeof(*s));
    struct entry_view v;
    size_t len;
    const void *data;

    if (s == NULL || req->cache.hit == NULL) {
        req_fail(req, APIERR_INTERNAL, "out of memory");
        return;
    }
    memset(s, 0, sizeof(*s));
    req->cache.replay = s;
    req->phase = REQ_RELAYING;
    req->rt.client_status = 200; /* up_status stays 0: no provider answered, none is charged */
    data = cache_val_data(req->cache.hit, &len);
    if (entry_parse(data, len, &v) < 0) {
        fail(req, "the cached answer could not be read");
        return;
    }
    req->up_sse = req->stream;
    if (req->up_sse && make_stream(req, s, &v) < 0) {
        fail(req, "the cached answer could not be replayed as a stream");
        return;
    }
    s->ev = event_new(req->w->base, -1, 0, req->up_sse ? pump : answer_whole, req);
    if (s->ev == NULL) {
        fail(req, "out of memory");
        return;
    }
    event_active(s->ev, EV_TIMEOUT, 0);
}

static void cache_pause(struct gate_req *req)
{
    (void)req; /* the pump looks at the client's output before each event */
}

static void cache_resume(struct gate_req *req)
{
    struct replay_src *s = src_of(req);

    if (s != NULL && !s->done && s->ev != NULL)
        event_active(s->ev, EV_TIMEOUT, 0);
}

static void cache_cancel(struct gate_req *req)
{
    release(req);
}

const struct resp_source source_cache = {
    .name = "cache",
    .start = cache_start,
    .pause = cache_pause,
    .resume = cache_resume,
    .cancel = cache_cancel,
};
