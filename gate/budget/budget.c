/*
 * budget: the book's face to the gate: reservations, settlement and the view go to the book's
 * store (store.h, today the in-memory one of storemem.c); the rules are policy.c's. See
 * budget.h.
 */
#include "gate/budget/budget-int.h"
#include "gate/budget/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct budget_store *budget_book_store(struct budget_book *b)
{
    return b->store;
}

void budget_book_set_store(struct budget_book *b, struct budget_store *st)
{
    if (b->store != NULL && b->store != st)
        b->store->ops->free(b->store);
    b->store = st;
}

enum budget_rc budget_reserve_async(struct budget_book *b, const struct budget_ask *ask,
                                    double now, struct budget_resv *r,
                                    struct budget_refusal *why, const struct budget_cont *k)
{
    return b->store->ops->reserve(b->store, ask, now, r, why, k);
}

int budget_reserve(struct budget_book *b, const struct budget_ask *ask, double now,
                   struct budget_resv *r, struct budget_refusal *why)
{
    return b->store->ops->reserve(b->store, ask, now, r, why, NULL) == BUDGET_ADMITTED ? 0 : -1;
}

int budget_settle(struct budget_book *b, struct budget_resv *r, int64_t tokens, int64_t nusd,
                  double now, struct budget_alert *alerts, int cap)
{
    return b->store->ops->settle(b->store, r, tokens, nusd, now, alerts, cap);
}

void budget_each(struct budget_book *b, double now, int all,
                 void (*cb)(void *arg, const struct budget_view *v), void *arg)
{
    b->store->ops->peek(b->store, now, all, cb, arg);
}

static void used_most(void *arg, const struct budget_view *v)
{
    double *most = arg, f;

    if (v->limit.tokens > 0) {
        f = (double)(v->used_tokens + v->reserved_tokens) / (double)v->limit.tokens;
        *most = f > *most ? f : *most;
    } else if (v->limit.tokens == 0) {
        *most = 1e9; /* no room at all */
    }
    if (v->limit.nusd > 0) {
        f = (double)(v->used_nusd + v->reserved_nusd) / (double)v->limit.nusd;
        *most = f > *most ? f : *most;
    } else if (v->limit.nusd == 0) {
        *most = 1e9;
    }
}

void budget_routing_policy(struct budget_book *b, int agent, int *downgrade, int *prefer_cost,
                           int64_t *max_latency_ms)
{
    pthread_mutex_lock(&b->mu); /* a rebind may change the policy */
    *downgrade = b->s[agent].pol.downgrade;
    *prefer_cost = b->s[agent].pol.prefer_cost;
    *max_latency_ms = b->s[agent].pol.max_latency_ms;
    pthread_mutex_unlock(&b->mu);
}

struct conf_policy_cache budget_cache_policy(struct budget_book *b, int agent)
{
    struct conf_policy_cache pc;

    if (b == NULL || agent < 0)
        return *conf_policy_cache_defaults(); /* an open gate: one policy of defaults */
    pthread_mutex_lock(&b->mu); /* a rebind may change the policy (and move b->s) */
    pc = agent < budget_nscopes(b) ? b->s[agent].pol.cache : *conf_policy_cache_defaults();
    pthread_mutex_unlock(&b->mu);
    return pc;
}

double budget_path_used(struct budget_book *b, int agent, double now)
{
    double most = 0;
    int n = budget_nscopes(b);

    if (b->store->ops->peek_scope == NULL)
        return 0; /* a store that cannot say: no pressure seen */
    for (int s = agent, hops = 0; s >= 0 && s < n && hops < 8; s = budget_scope_parent(b, s), hops++)
        b->store->ops->peek_scope(b->store, s, now, used_most, &most);
    return most;
}

void budget_reset(struct budget_book *b, int scope, enum conf_window w, double now)
{
    b->store->ops->reset(b->store, scope, w, now);
}

struct conf_limit budget_limit(struct budget_book *b, int scope, enum conf_window w)
{
    struct conf_limit lim;

    pthread_mutex_lock(&b->mu);
    lim = b->s[scope].lim[w];
    pthread_mutex_unlock(&b->mu);
    return lim;
}

int budget_has_cutoffs(struct budget_book *b, int agent)
{
    int rc;

    pthread_mutex_lock(&b->mu); /* a rebind may change the policy */
    rc = b->s[agent].pol.loop_detection || b->s[agent].pol.max_retries >= 0;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int budget_set_limit(struct budget_book *b, int scope, enum conf_window w,
                     struct conf_limit limit)
{
    char label[160];
    int rc;

    if (scope < 0 || scope >= budget_nscopes(b) || (unsigned)w >= CONF_WIN__COUNT)
        return -1;
    budget_scope_label(b, scope, label, sizeof(label));
    pthread_mutex_lock(&b->mu);
    /* remembered by label, so that it stays in force over a rebind */
    rc = budget_over_put(b, label, w, limit);
    pthread_mutex_unlock(&b->mu);
    return rc < 0 ? -1 : b->store->ops->set_limit(b->store, scope, w, limit);
}

int64_t budget_reserved_total(struct budget_book *b)
{
    int64_t t = 0;

    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n; i++)
        if (b->node[i].level == CONF_LEVEL_AGENT)
            t += b->s[i].res_t;
    pthread_mutex_unlock(&b->mu);
    return t;
}
