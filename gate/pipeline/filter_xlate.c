/*
 * filter_xlate: the answer of a provider of the other API family, translated into the
 * client's (routing/xlate.h): each event of a stream as it comes (the events it makes go on to
 * the writer in its place), a whole answer or an error once it is in. It sits after usage and
 * count, which read the provider's own format. See filter.h.
 */
#include <event2/buffer.h>
#include <string.h>

#include "gate/pipeline/filter.h"
#include "gate/pipeline/req.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"

struct xlate_state {
    struct xlate_ctx ctx;
};

/* The filter's context, made on first use, in the request's arena. */
static struct xlate_state *state_of(struct resp_filter *f, struct gate_req *req)
{
    struct xlate_state *st = f->state;

    if (st != NULL)
        return st;
    st = arena_alloc(req->arena, sizeof(*st));
    if (st == NULL)
        return NULL;
    memset(st, 0, sizeof(*st));
    st->ctx.dir = req->rt.xlate;
    st->ctx.client_model = req->rt.d.rewrite_model || req->cm == NULL ? req->model
                           : req->upstream_model != NULL              ? req->upstream_model
                                                                      : req->cm->name;
    st->ctx.request_id = req->id;
    st->ctx.created = (int64_t)req->wall_start;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req->json, "stream_options");
    st->ctx.include_usage =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage")) && !req->usage_injected;
    f->state = st;
    return st;
}

static int stop(struct gate_req *req, enum apierr kind, const char *why)
{
    if (req->stop_why == NULL) {
        req->stop_kind = kind;
        req->stop_why = why;
    }
    return -1;
}

struct emit_arg {
    struct resp_filter *f;
    struct gate_req *req;
};

/* A client event the translation made: on to the writer. */
static int emit(void *arg, const char *name, const char *text, size_t len)
{
    struct emit_arg *a = arg;
    struct resp_event ev = {.name = name ? name : "", .json = 1, .raw = text, .raw_len = len};

    return filter_event(a->f, a->req, &ev);
}

static int xl_head(struct resp_filter *f, struct gate_req *req, int status,
                   const struct http_header *h, int n)
{
    struct xlate_state *st = state_of(f, req);

    if (st == NULL)
        return stop(req, APIERR_INTERNAL, "out of memory");
    if (req->up_sse && status >= 200 && status < 300) {
        req->rt.xs = xlate_stream_new(&st->ctx);
        if (req->rt.xs == NULL)
            return stop(req, APIERR_INTERNAL, "out of memory");
    }
    return filter_head(f, req, status, h, n);
}

static int xl_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    struct emit_arg a = {f, req};

    if (req->rt.xs == NULL)
        return 0; /* not an answer the translation reads: nothing of it reaches the client */
    if (xlate_stream_event(req->rt.xs, ev->name, ev->data, ev->text, ev->text_len, emit, &a) < 0)
        return req->stop_why != NULL
                   ? -1
                   : stop(req, APIERR_BAD_GATEWAY, "the provider's stream could not be translated");
    return 0;
}

/* Replaces the gathered answer with doc printed (in the arena). Returns 0 or -1. */
static int replace_body(struct gate_req *req, const cJSON *doc, struct resp_body *nb)
{
    char *text = cJSON_PrintUnformatted(doc);

    if (text == NULL)
        return -1;
    evbuffer_drain(req->up_body, evbuffer_get_length(req->up_body));
    if (evbuffer_add(req->up_body, text, strlen(text)) < 0)
        return -1;
    nb->data = text;
    nb->len = strlen(text);
    nb->doc = doc;
    return 0;
}

static int xl_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    struct xlate_state *st = state_of(f, req);
    struct resp_body nb = *b;
    cJSON *out = NULL;
    int status = req->up_status;

    if (st == NULL)
        return stop(req, APIERR_INTERNAL, "out of memory");
    if (req->up_sse)
        return 0; /* what a stream left after its last event is no event: not translated */
    if (status >= 200 && status < 300) {
        out = b->doc != NULL ? xlate_response(&st->ctx, b->doc) : NULL;
        if (out == NULL) {
            /* usage and count have read it (it is charged as served); the client cannot: an
             * error in its format */
            out = xlate_error(&st->ctx, 502, NULL, &status);
            status = 502;
            req->out_unreadable = 1;
            if (req->error == NULL)
                req->error = "the provider's answer could not be translated into the client's "
                             "API";
        }
    } else {
        cJSON *doc = b->len > 0 ? cJSON_ParseWithLength(b->data, b->len) : NULL;
        out = xlate_error(&st->ctx, status, doc, &status);
    }
    if (out == NULL || replace_body(req, out, &nb) < 0)
        return stop(req, APIERR_INTERNAL, "out of memory");
    if (status != req->up_status)
        req->rt.client_status = status; /* what was charged still reads the provider's */
    return filter_body(f, req, &nb);
}

static int xl_end(struct resp_filter *f, struct gate_req *req)
{
    struct emit_arg a = {f, req};

    if (req->rt.xs != NULL && xlate_stream_end(req->rt.xs, emit, &a) < 0)
        return stop(req, APIERR_INTERNAL, "out of memory");
    return filter_end(f, req);
}

const struct resp_filter_type filter_xlate = {
    .name = "xlate",
    .head = xl_head,
    .event = xl_event,
    .body = xl_body,
    .end = xl_end,
};
