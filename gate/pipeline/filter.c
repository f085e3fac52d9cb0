/*
 * filter: the response filter chain. See filter.h.
 */
#include "gate/pipeline/filter.h"

#include "gate/pipeline/req.h"
#include "gate/util/arena.h"

int filter_push(struct gate_req *req, const struct resp_filter_type *t, void *state)
{
    struct resp_filter *f = arena_alloc(req->arena, sizeof(*f));
    struct resp_filter **at = &req->chain;

    if (f == NULL)
        return -1;
    f->type = t;
    f->next = NULL;
    f->state = state;
    while (*at != NULL)
        at = &(*at)->next;
    *at = f;
    return 0;
}

int filter_chain_build(struct gate_req *req)
{
    req->chain = NULL;
    if (req->cache.state == REQ_CACHE_HIT)
        return filter_push(req, &filter_writer, NULL); /* no provider: no usage, no count */
    if (filter_push(req, &filter_usage, NULL) < 0 || filter_push(req, &filter_count, NULL) < 0)
        return -1;
    if (req->rt.xlate != XLATE_NONE && filter_push(req, &filter_xlate, NULL) < 0)
        return -1;
    if (req->rt.xlate == XLATE_NONE && req->rt.routed && req->rt.d.rewrite_model &&
        filter_push(req, &filter_model, NULL) < 0)
        return -1;
    /* the cache fill sees what the client gets: after translation and the model name */
    if (req->cache.state == REQ_CACHE_MISS && req->cache.store &&
        filter_push(req, &filter_cachefill, NULL) < 0)
        return -1;
    return filter_push(req, &filter_writer, NULL);
}

/* The filter after f (the chain's first with f NULL) that has hook h, or NULL. */
#define NEXT_WITH(f, req, h)                                                                       \
    struct resp_filter *g = (f) != NULL ? (f)->next : (req)->chain;                                \
    while (g != NULL && g->type->h == NULL)                                                        \
    g = g->next

int filter_head(struct resp_filter *f, struct gate_req *req, int status,
                const struct http_header *h, int n)
{
    NEXT_WITH(f, req, head);
    return g != NULL ? g->type->head(g, req, status, h, n) : 0;
}

int filter_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    NEXT_WITH(f, req, event);
    return g != NULL ? g->type->event(g, req, ev) : 0;
}

int filter_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    NEXT_WITH(f, req, body);
    return g != NULL ? g->type->body(g, req, b) : 0;
}

int filter_end(struct resp_filter *f, struct gate_req *req)
{
    NEXT_WITH(f, req, end);
    return g != NULL ? g->type->end(g, req) : 0;
}
