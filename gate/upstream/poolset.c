/*
 * poolset: a worker's upstream pools across reloads. See poolset.h.
 *
 * Every entry holds a reference on the snapshot its provider lives in, so that the pool's
 * provider pointer stays valid however long an exchange of an old snapshot lasts.
 */
#include "gate/upstream/poolset.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/core/worker.h"
#include "gate/upstream/upstream.h"

/* How often retired pools are looked at while some remain. */
#define POOLSET_SWEEP_MS 1000

struct pentry {
    struct upstream_pool *pool;
    struct conf *conf;                 /* a reference: prov lives in it */
    const struct conf_provider *prov;
    struct pentry *next;               /* the retired list */
};

struct poolset {
    struct gate_worker *w;
    struct conf *conf;                 /* a reference: the snapshot cur follows */
    struct pentry **cur;               /* by conf_provider.index of conf */
    int ncur;
    struct pentry *retired;
    struct pentry *extra;              /* pools of conf's providers that are in no table (MCP
                                        * servers, index -1), keeping idle connections as cur's
                                        * do; retired at the next rebind */
    struct event *sweep_ev;
};

/* Whether two providers reach the same place: a pool's connections serve both. */
static int same_endpoint(const struct conf_provider *a, const struct conf_provider *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->host, b->host) == 0 &&
           a->port == b->port && a->tls == b->tls;
}

static struct pentry *entry_new(struct gate_worker *w, struct conf *c,
                                const struct conf_provider *p, int max_idle)
{
    struct pentry *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->pool = upstream_pool_new(w, p, max_idle);
    if (e->pool == NULL) {
        free(e);
        return NULL;
    }
    e->conf = conf_ref(c);
    e->prov = p;
    return e;
}

static void entry_free(struct pentry *e)
{
    if (e == NULL)
        return;
    upstream_pool_free(e->pool);
    conf_unref(e->conf);
    free(e);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)poolset_sweep(arg);
}

static void arm_sweep(struct poolset *ps)
{
    struct timeval tv = {.tv_sec = POOLSET_SWEEP_MS / 1000,
                         .tv_usec = (POOLSET_SWEEP_MS % 1000) * 1000};

    if (ps->retired != NULL && !evtimer_pending(ps->sweep_ev, NULL))
        evtimer_add(ps->sweep_ev, &tv);
}

static void retire(struct poolset *ps, struct pentry *e)
{
    upstream_pool_update(e->pool, e->prov, 0);
    e->next = ps->retired;
    ps->retired = e;
}

struct poolset *poolset_new(struct gate_worker *w, struct conf *c)
{
    struct poolset *ps = calloc(1, sizeof(*ps));

    if (ps == NULL)
        return NULL;
    ps->w = w;
    ps->sweep_ev = evtimer_new(w->base, sweep_cb, ps);
    ps->cur = calloc((size_t)c->nproviders + 1, sizeof(*ps->cur));
    if (ps->sweep_ev == NULL || ps->cur == NULL)
        goto fail;
    ps->conf = conf_ref(c);
    for (int i = 0; i < c->nproviders; i++, ps->ncur++)
        if ((ps->cur[i] = entry_new(w, c, &c->providers[i], c->pool_max_idle)) == NULL)
            goto fail;
    return ps;

fail:
    poolset_free(ps);
    return NULL;
}

int poolset_rebind(struct poolset *ps, struct conf *c, struct poolset_changes *ch)
{
    struct pentry **next = calloc((size_t)c->nproviders + 1, sizeof(*next));
    char *taken = calloc((size_t)ps->ncur + 1, 1);
    struct poolset_changes n = {0};

    if (next == NULL || taken == NULL)
        goto fail;
    /* first what can fail: a pool for each provider that has none, nothing else touched */
    for (int i = 0; i < c->nproviders; i++) {
        const struct conf_provider *p = &c->providers[i];
        for (int j = 0; j < ps->ncur && next[i] == NULL; j++)
            if (!taken[j] && same_endpoint(ps->cur[j]->prov, p)) {
                taken[j] = 1;
                next[i] = ps->cur[j];
            }
        if (next[i] != NULL)
            continue;
        if ((next[i] = entry_new(ps->w, c, p, c->pool_max_idle)) == NULL)
            goto fail;
        n.added++; /* a new entry is told apart below by its snapshot, c */
    }
    /* then the kept pools follow c, the others retire */
    for (int i = 0; i < c->nproviders; i++) {
        struct pentry *e = next[i];
        if (e->conf == c)
            continue;
        upstream_pool_update(e->pool, &c->providers[i], c->pool_max_idle);
        conf_unref(e->conf);
        e->conf = conf_ref(c);
        e->prov = &c->providers[i];
        n.kept++;
    }
    for (int j = 0; j < ps->ncur; j++)
        if (!taken[j]) {
            retire(ps, ps->cur[j]);
            n.retired++;
        }
    while (ps->extra != NULL) {
        struct pentry *e = ps->extra;
        ps->extra = e->next;
        retire(ps, e); /* the new snapshot's requests make their own */
    }
    free(ps->cur);
    free(taken);
    ps->cur = next;
    ps->ncur = c->nproviders;
    conf_unref(ps->conf);
    ps->conf = conf_ref(c);
    (void)poolset_sweep(ps);
    if (ch != NULL)
        *ch = n;
    return 0;

fail:
    /* the entries made for c go; those taken from the set are still in it */
    for (int i = 0; next != NULL && i < c->nproviders; i++)
        if (next[i] != NULL && next[i]->conf == c)
            entry_free(next[i]);
    free(next);
    free(taken);
    return -1;
}

struct upstream_pool *poolset_get(struct poolset *ps, const struct conf *c,
                                  const struct conf_provider *p)
{
    struct pentry *e;

    if (c == ps->conf && p->index >= 0)
        return ps->cur[p->index]->pool;
    if (c == ps->conf) {
        /* a provider in no table (an MCP server): its own pool, made on first use */
        for (e = ps->extra; e != NULL; e = e->next)
            if (same_endpoint(e->prov, p))
                return e->pool;
        if ((e = entry_new(ps->w, (struct conf *)c, p, c->pool_max_idle)) == NULL)
            return NULL;
        e->next = ps->extra;
        ps->extra = e;
        return e->pool;
    }
    /* a request of another snapshot: its provider by name and endpoint */
    for (int i = 0; i < ps->ncur; i++)
        if (same_endpoint(ps->cur[i]->prov, p))
            return ps->cur[i]->pool;
    for (e = ps->retired; e != NULL; e = e->next)
        if (same_endpoint(e->prov, p))
            return e->pool;
    /* the reference is taken on the request's snapshot, which it holds now */
    e = entry_new(ps->w, (struct conf *)c, p, 0);
    if (e == NULL)
        return NULL;
    e->next = ps->retired;
    ps->retired = e;
    arm_sweep(ps);
    return e->pool;
}

int poolset_sweep(struct poolset *ps)
{
    struct pentry **pp = &ps->retired;
    int left = 0;

    while (*pp != NULL) {
        struct pentry *e = *pp;
        if (upstream_pool_in_use(e->pool)) {
            pp = &e->next;
            left++;
            continue;
        }
        *pp = e->next;
        entry_free(e);
    }
    arm_sweep(ps);
    return left;
}

void poolset_free(struct poolset *ps)
{
    if (ps == NULL)
        return;
    for (int i = 0; ps->cur != NULL && i < ps->ncur; i++)
        entry_free(ps->cur[i]);
    while (ps->retired != NULL) {
        struct pentry *e = ps->retired;
        ps->retired = e->next;
        entry_free(e);
    }
    while (ps->extra != NULL) {
        struct pentry *e = ps->extra;
        ps->extra = e->next;
        entry_free(e);
    }
    if (ps->sweep_ev != NULL)
        event_free(ps->sweep_ev);
    free(ps->cur);
    conf_unref(ps->conf);
    free(ps);
}
