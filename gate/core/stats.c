/*
 * stats: the workers' counters, totalled in the one place /status and /metrics read them.
 */
#include "gate/core/worker.h"

#include <string.h>

/* A relaxed read of one counter. */
static uint64_t get(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void gate_stats_total(const struct gate_server *srv, struct gate_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < srv->nworkers; i++) {
        const struct gate_stats *s = &srv->workers[i].stats;

        t->requests += get(&s->requests);
        for (int code = 100; code < 600; code++)
            t->by_status[code] += get(&s->by_status[code]);
        t->open_conns += atomic_load_explicit(&s->open_conns, memory_order_relaxed);
        t->upstream_conns_opened += get(&s->upstream_conns_opened);
        t->tokens_in += get(&s->tokens_in);
        t->tokens_out += get(&s->tokens_out);
        t->cost_nusd += get(&s->cost_nusd);
        t->rejected_budget += get(&s->rejected_budget);
        t->rejected_policy += get(&s->rejected_policy);
        t->rejected_auth += get(&s->rejected_auth);
        t->rejected_unavailable += get(&s->rejected_unavailable);
    }
}
