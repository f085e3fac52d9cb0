/*
 * filter_cachefill: a response-cache miss's answer gathered as the client gets it (it sits
 * just before the writer, after translation and the model name) and stored when it ends
 * complete. See filter.h.
 *
 * Stored only when: the answer is 2xx and read whole (a stream with its end, a body that is a
 * complete answer: entry.h); nothing stopped the relay (req->stop_why unset: no runaway cut,
 * no error); and it did not stop for its length under an output cap the gate lowered or
 * added (the client's own request would have got more). The key is the one the lookup made,
 * with the target that answered in place of the first candidate (a fallback changes it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/entry.h"
#include "cache/store.h"
#include "gate/core/worker.h"
#include "gate/http/sse.h"
#include "gate/pipeline/filter.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"

#define FILL_EVENT_MAX (8u * 1024 * 1024)

struct fill_state {
    int failed;
    int length_stop; /* the answer stopped for its output cap */
};

static struct fill_state *state_of(struct resp_filter *f, struct gate_req *req)
{
    if (f->state == NULL && (f->state = arena_alloc(req->arena, sizeof(struct fill_state))) != NULL)
        memset(f->state, 0, sizeof(struct fill_state));
    return f->state;
}

static void give_up(struct fill_state *st, struct gate_req *req)
{
    if (st != NULL)
        st->failed = 1;
    entry_fill_free(req->cache.fill);
    req->cache.fill = NULL;
}

static int is_str(const cJSON *v, const char *s)
{
    return cJSON_IsString(v) && strcmp(v->valuestring, s) == 0;
}

/* Whether doc (a whole answer, an OpenAI chunk, an Anthropic message_delta) says the output
 * stopped at its cap. */
static int stopped_at_cap(const cJSON *doc)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(doc, "choices"), *c;
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(doc, "delta");

    cJSON_ArrayForEach(c, choices) if (is_str(cJSON_GetObjectItemCaseSensitive(c, "finish_reason"),
                                              "length")) return 1;
    return is_str(cJSON_GetObjectItemCaseSensitive(doc, "stop_reason"), "max_tokens") ||
           is_str(cJSON_GetObjectItemCaseSensitive(delta, "stop_reason"), "max_tokens");
}

/* The gate wrote an output cap into the request (admit: a budget's allowance, a rule's cap). */
static int gate_capped(const struct gate_req *req)
{
    const char *const *m = req->client_api->cap_members;

    for (int i = 0; m != NULL && i < req->nedits; i++)
        for (const char *const *k = m; *k; k++)
            if (strcmp(req->edits[i].key, *k) == 0)
                return 1;
    return 0;
}

static int fill_head(struct resp_filter *f, struct gate_req *req, int status,
                     const struct http_header *h, int n)
{
    struct fill_state *st = state_of(f, req);
    size_t max = req->conf->cache.max_entry_bytes;

    entry_fill_free(req->cache.fill); /* an earlier attempt's, if any */
    req->cache.fill = NULL;
    if (st == NULL || status < 200 || status >= 300 || req->cache.klen >= max)
        give_up(st, req);
    else if ((req->cache.fill = entry_fill_new(req->client_api->format, req->up_sse,
                                               max - req->cache.klen)) == NULL)
        give_up(st, req);
    return filter_head(f, req, status, h, n);
}

struct one_event {
    struct entry_fill *ef;
    const char *raw;
    size_t raw_len;
    int rc;
    int length_stop;
};

/* An event the chain made itself (translation): its fields read from its SSE bytes. */
static int parsed_event(void *arg, const struct sse_event *sev)
{
    struct one_event *o = arg;
    char name[64];
    size_t nl = sev->name_len < sizeof(name) - 1 ? sev->name_len : sizeof(name) - 1;
    cJSON *data = cJSON_ParseWithLength(sev->data, sev->data_len);

    memcpy(name, sev->name, nl);
    name[nl] = '\0';
    o->length_stop |= data != NULL && stopped_at_cap(data);
    o->rc = entry_fill_event(o->ef, o->raw, o->raw_len, name, data);
    cJSON_Delete(data);
    return 1; /* one event per piece */
}

static int fill_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    struct fill_state *st = f->state;

    if (req->cache.fill == NULL || ev->drop)
        return filter_event(f, req, ev);
    if (ev->data != NULL || !ev->json) {
        st->length_stop |= ev->data != NULL && stopped_at_cap(ev->data);
        if (entry_fill_event(req->cache.fill, ev->raw, ev->raw_len, ev->name, ev->data) < 0)
            give_up(st, req);
    } else {
        struct sse_parser p;
        struct one_event o = {.ef = req->cache.fill, .raw = ev->raw, .raw_len = ev->raw_len,
                              .rc = -1};

        sse_init(&p, FILL_EVENT_MAX);
        if (sse_feed(&p, ev->raw, ev->raw_len, parsed_event, &o) != 1 || o.rc < 0)
            give_up(st, req);
        st->length_stop |= o.length_stop;
        sse_reset(&p);
    }
    return filter_event(f, req, ev);
}

static int fill_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    struct fill_state *st = f->state;

    if (req->cache.fill != NULL) {
        if (!req->up_sse && b->doc != NULL)
            st->length_stop |= stopped_at_cap(b->doc);
        if (entry_fill_body(req->cache.fill, b->data, b->len, b->doc) < 0)
            give_up(st, req);
    }
    return filter_body(f, req, b);
}

/* Puts what was gathered in the store. */
static void fill_store(struct gate_req *req, struct fill_state *st)
{
    struct gate_server *srv = req->w->srv;
    struct entry_meta meta;
    struct spend_basis basis = {
        .u = &req->usage,
        .price = req->cm ? &req->cm->price : NULL,
        .answered = 1,
        .in = req->tc.input >= 0 ? req->tc.input : 0,
        .out = (int64_t)req->tc.output,
    };
    int64_t out = 0;
    char *key = req->cache.key, *val;
    size_t klen = req->cache.klen, vlen;

    memset(&meta, 0, sizeof(meta));
    snprintf(meta.model, sizeof(meta.model), "%s", req->cm ? req->cm->name : "");
    if (req->usage.have) {
        meta.input = req->usage.input;
        meta.output = req->usage.output;
        meta.cached = req->usage.cached;
        meta.cache_write = req->usage.cache_write;
    }
    spend_charge(&basis, &meta.tokens, &out, &meta.nusd);
    meta.created = gate_wall_now();
    if ((val = entry_fill_finish(req->cache.fill, &meta, &vlen)) == NULL)
        return;
    /* the target that answered: a fallback may have moved on from the first candidate */
    if (req->cm != NULL && stage_cache_rekey(req, req->cm->name, &key, &klen) < 0)
        key = NULL;
    if (key != NULL)
        (void)cache_store_put(srv->responses, key, klen, val, vlen, req->cache.ttl_ms,
                              gate_now_us() / 1000); /* too big: just not stored */
    free(val);
}

static int fill_end(struct resp_filter *f, struct gate_req *req)
{
    struct fill_state *st = f->state;

    if (req->cache.fill != NULL && !st->failed && req->stop_why == NULL &&
        !(st->length_stop && gate_capped(req)))
        fill_store(req, st);
    entry_fill_free(req->cache.fill);
    req->cache.fill = NULL;
    return filter_end(f, req);
}

const struct resp_filter_type filter_cachefill = {
    .name = "cachefill",
    .head = fill_head,
    .event = fill_event,
    .body = fill_body,
    .end = fill_end,
};
