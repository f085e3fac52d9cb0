/*
 * pool: a provider's connections on one worker, their cap (upstream.max_connections) and the
 * queue of requests waiting for one (upstream.max_waiting). See upstream.h and the comment at
 * the top of upstream.c.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "gate/core/worker.h"
#include "gate/upstream/upstream-int.h"

/*
 * Queues ex for a connection: first in line with first (a retry), else last. A full queue
 * (or no memory for the entry) ends it in a 503 naming the provider and the limits.
 */
static void pool_wait(struct upstream_pool *pool, struct upstream_exchange *ex, int first)
{
    const struct conf *cf = pool->w->conf;
    struct upstream_conn *wt = NULL;
    char msg[320];

    if (pool->nwait < cf->upstream_max_waiting && (wt = calloc(1, sizeof(*wt))) != NULL &&
        (wt->timer = evtimer_new(pool->w->base, uc_timer_cb, wt)) == NULL) {
        free(wt);
        wt = NULL;
    }
    if (wt == NULL) {
        if (pool->nwait < cf->upstream_max_waiting)
            snprintf(msg, sizeof(msg), "out of memory queueing for provider '%s'; retry shortly",
                     pool->prov->name);
        else
            snprintf(msg, sizeof(msg),
                     "provider '%s' has all %d connections the gate allows in use "
                     "(upstream.max_connections) and %d requests waiting for one "
                     "(upstream.max_waiting); retry shortly",
                     pool->prov->name, cf->upstream_max_connections, pool->nwait);
        ex->h->failed(ex->arg, APIERR_UNAVAILABLE, msg, 0);
        return;
    }
    wt->pool = pool;
    wt->state = UC_WAITING;
    wt->ex = ex;
    ex->uc = wt;
    if (first)
        TAILQ_INSERT_HEAD(&pool->wait, wt, link);
    else
        TAILQ_INSERT_TAIL(&pool->wait, wt, link);
    pool->nwait++;
    uc_arm(wt, UT_WAIT);
}

/*
 * Starts ex on an idle connection, a new one within upstream.max_connections, or queues it.
 * A request that is not first (a new one) queues behind those already waiting.
 */
void pool_dispatch(struct upstream_pool *pool, struct upstream_exchange *ex, int first)
{
    struct upstream_conn *uc;
    char err[256];

    if (pool == NULL) { /* none could be made for the request's provider */
        ex->h->failed(ex->arg, APIERR_BAD_GATEWAY, "out of memory", 0);
        return;
    }
    if (!first && pool->nwait > 0) {
        pool_wait(pool, ex, 0);
        return;
    }
    while ((uc = TAILQ_FIRST(&pool->idle)) != NULL && !uc_alive(uc))
        uc_free(uc);
    if (uc == NULL) {
        if (pool->nconns >= pool->w->conf->upstream_max_connections) {
            pool_wait(pool, ex, first);
            return;
        }
        uc = uc_new(pool, err, sizeof(err));
        if (uc == NULL) {
            ex->h->failed(ex->arg, APIERR_BAD_GATEWAY, err, 0);
            return;
        }
    }
    uc_start(uc, ex);
}

/* The loop's turn after a connection came free: the queue takes what is free, in order. */
static void pool_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_pool *pool = arg;
    struct upstream_conn *wt;

    /* each pass takes one entry out of the queue or leaves the loop */
    while ((wt = TAILQ_FIRST(&pool->wait)) != NULL) {
        struct upstream_exchange *ex = wt->ex;
        struct upstream_conn *uc;

        while ((uc = TAILQ_FIRST(&pool->idle)) != NULL && !uc_alive(uc))
            uc_free(uc);
        if (uc == NULL && pool->nconns >= pool->w->conf->upstream_max_connections)
            return;
        wt->ex = NULL;
        ex->uc = NULL;
        uc_free(wt);
        pool_dispatch(pool, ex, 1);
    }
}

void upstream_send(struct upstream_pool *pool, struct upstream_exchange *ex)
{
    pool_dispatch(pool, ex, 0);
}

void upstream_retry(struct upstream_pool *pool, struct upstream_exchange *ex)
{
    pool_dispatch(pool, ex, 1); /* the slot just freed, or first in the queue */
}

struct upstream_pool *upstream_pool_new(struct gate_worker *w, const struct conf_provider *p,
                                       int max_idle)
{
    struct upstream_pool *pool = calloc(1, sizeof(*pool));

    if (pool == NULL)
        return NULL;
    pool->w = w;
    pool->prov = p;
    pool->max_idle = max_idle;
    TAILQ_INIT(&pool->idle);
    TAILQ_INIT(&pool->busy);
    TAILQ_INIT(&pool->wait);
    pool->kick = event_new(w->base, -1, 0, pool_kick_cb, pool);
    if (pool->kick == NULL) {
        free(pool);
        return NULL;
    }
    return pool;
}

void upstream_pool_update(struct upstream_pool *pool, const struct conf_provider *p, int max_idle)
{
    struct upstream_conn *uc;

    pool->prov = p;
    pool->max_idle = max_idle;
    /* the oldest go first: the list is newest first */
    while (pool->nidle > max_idle && (uc = TAILQ_LAST(&pool->idle, uc_list)) != NULL)
        uc_free(uc);
}

int upstream_pool_in_use(const struct upstream_pool *pool)
{
    return !TAILQ_EMPTY(&pool->busy) || !TAILQ_EMPTY(&pool->wait);
}

void upstream_pool_free(struct upstream_pool *pool)
{
    struct upstream_conn *uc;

    if (pool == NULL)
        return;
    while ((uc = TAILQ_FIRST(&pool->wait)) != NULL) {
        struct upstream_exchange *ex = uc->ex;
        uc_free(uc);
        if (ex != NULL)
            ex->h->failed(ex->arg, APIERR_BAD_GATEWAY, "the gate stopped", 0);
    }
    while ((uc = TAILQ_FIRST(&pool->idle)) != NULL)
        uc_free(uc);
    while ((uc = TAILQ_FIRST(&pool->busy)) != NULL) {
        /* a request still on it (one going on without its client when the gate stopped)
         * ends here, as an exchange that failed */
        struct upstream_exchange *ex = uc->ex;
        uc_free(uc);
        if (ex != NULL)
            ex->h->failed(ex->arg, APIERR_BAD_GATEWAY, "the gate stopped", 0);
    }
    event_free(pool->kick);
    free(pool);
}
