/*
 * metrics: the gate's counters and budgets in Prometheus' text format. See metrics.h.
 */
#include "gate/admin/metrics.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cache/toolstats.h"
#include "gate/admin/cachemetrics.h"
#include "gate/budget/budget.h"
#include "gate/budget/ledger.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "routing/health.h"
#include "routing/labelcache.h"
#include "routing/rstats.h"

struct metrics_ctx {
    struct budget_book *book;
    struct evbuffer *out;
};

/* routing's metrics (health.h, rstats.h) and the tool calls' are written through this */
static void metric_line(void *arg, const char *line, size_t len)
{
    evbuffer_add(arg, line, len);
}

static void metric_view(void *arg, const struct budget_view *v)
{
    struct metrics_ctx *x = arg;
    char scope[300];

    budget_scope_label(x->book, v->scope, scope, sizeof(scope));
    const char *w = conf_window_name(v->window);
    if (v->limit.tokens >= 0) {
        evbuffer_add_printf(x->out,
                            "tokengate_budget_limit{scope=\"%s\",window=\"%s\",unit=\"tokens\"} "
                            "%lld\n"
                            "tokengate_budget_used{scope=\"%s\",window=\"%s\",unit=\"tokens\"} "
                            "%lld\n"
                            "tokengate_budget_reserved{scope=\"%s\",window=\"%s\",unit=\"tokens\"} "
                            "%lld\n"
                            "tokengate_budget_utilization{scope=\"%s\",window=\"%s\",unit="
                            "\"tokens\"} %.6f\n",
                            scope, w, (long long)v->limit.tokens, scope, w,
                            (long long)v->used_tokens, scope, w, (long long)v->reserved_tokens,
                            scope, w,
                            v->limit.tokens > 0 ? (double)v->used_tokens / v->limit.tokens : 1.0);
    }
    if (v->limit.nusd >= 0) {
        evbuffer_add_printf(x->out,
                            "tokengate_budget_limit{scope=\"%s\",window=\"%s\",unit=\"usd\"} %.9f\n"
                            "tokengate_budget_used{scope=\"%s\",window=\"%s\",unit=\"usd\"} %.9f\n"
                            "tokengate_budget_reserved{scope=\"%s\",window=\"%s\",unit=\"usd\"} "
                            "%.9f\n"
                            "tokengate_budget_utilization{scope=\"%s\",window=\"%s\",unit=\"usd\"}"
                            " %.6f\n",
                            scope, w, v->limit.nusd / 1e9, scope, w, v->used_nusd / 1e9, scope, w,
                            v->reserved_nusd / 1e9, scope, w,
                            v->limit.nusd > 0 ? (double)v->used_nusd / v->limit.nusd : 1.0);
    }
}

void gate_metrics_write(struct gate_server *srv, struct evbuffer *b)
{
    struct metrics_ctx x = {.book = srv->book, .out = b};
    struct gate_totals *t = malloc(sizeof(*t)); /* 4.9 KB: not on a worker's stack */

    if (t == NULL) {
        evbuffer_add_printf(b, "# tokengate: out of memory\n");
        return;
    }
    gate_stats_total(srv, t);

    evbuffer_add_printf(b, "# HELP tokengate_requests_total Requests answered, by status.\n"
                           "# TYPE tokengate_requests_total counter\n");
    for (int s = 100; s < 600; s++) {
        uint64_t n = t->by_status[s];
        if (n > 0)
            evbuffer_add_printf(b, "tokengate_requests_total{status=\"%d\"} %llu\n", s,
                                (unsigned long long)n);
    }
    evbuffer_add_printf(
        b,
        "# HELP tokengate_tokens_total Tokens charged to budgets, by direction.\n"
        "# TYPE tokengate_tokens_total counter\n"
        "tokengate_tokens_total{direction=\"in\"} %llu\n"
        "tokengate_tokens_total{direction=\"out\"} %llu\n"
        "# HELP tokengate_cost_usd_total Cost charged, in US dollars.\n"
        "# TYPE tokengate_cost_usd_total counter\n"
        "tokengate_cost_usd_total %.9f\n"
        "# HELP tokengate_rejections_total Requests refused before forwarding, by reason.\n"
        "# TYPE tokengate_rejections_total counter\n"
        "tokengate_rejections_total{reason=\"budget\"} %llu\n"
        "tokengate_rejections_total{reason=\"policy\"} %llu\n"
        "tokengate_rejections_total{reason=\"auth\"} %llu\n"
        "tokengate_rejections_total{reason=\"unavailable\"} %llu\n",
        (unsigned long long)t->tokens_in,
        (unsigned long long)t->tokens_out,
        t->cost_nusd / 1e9,
        (unsigned long long)t->rejected_budget,
        (unsigned long long)t->rejected_policy,
        (unsigned long long)t->rejected_auth,
        (unsigned long long)t->rejected_unavailable);
    if (srv->book != NULL) {
        evbuffer_add_printf(b, "# HELP tokengate_reserved_tokens Tokens reserved by requests "
                               "under way.\n# TYPE tokengate_reserved_tokens gauge\n"
                               "tokengate_reserved_tokens %lld\n",
                            (long long)budget_reserved_total(srv->book));
        evbuffer_add_printf(b, "# HELP tokengate_budget_utilization Settled spend over the "
                               "limit, per scope and window.\n"
                               "# TYPE tokengate_budget_utilization gauge\n"
                               "# TYPE tokengate_budget_limit gauge\n"
                               "# TYPE tokengate_budget_used gauge\n"
                               "# TYPE tokengate_budget_reserved gauge\n");
        budget_each(srv->book, gate_wall_now(), 0, metric_view, &x);
    }
    if (srv->ledger != NULL)
        evbuffer_add_printf(b, "# TYPE tokengate_ledger_pending gauge\ntokengate_ledger_pending "
                               "%llu\n# TYPE tokengate_ledger_failed_total counter\n"
                               "tokengate_ledger_failed_total %llu\n",
                            (unsigned long long)ledger_pending(srv->ledger),
                            (unsigned long long)ledger_failed(srv->ledger));
    if (srv->ledger != NULL)
        evbuffer_add_printf(b, "# TYPE tokengate_ledger_failing gauge\ntokengate_ledger_failing "
                               "%d\n# TYPE tokengate_ledger_spilled gauge\n"
                               "tokengate_ledger_spilled %llu\n",
                            ledger_failing(srv->ledger),
                            (unsigned long long)ledger_spilled(srv->ledger));
    if (srv->health != NULL) {
        uint64_t ls[4];
        struct conf *cf = gate_conf_get(srv);
        route_health_metrics(srv->health, cf, gate_now_us(), metric_line, b);
        conf_unref(cf);
        rstats_metrics(srv->rstats, metric_line, b);
        labelcache_stats(srv->labels, ls);
        evbuffer_add_printf(b,
                            "# TYPE tokengate_classifier_cache_entries gauge\n"
                            "tokengate_classifier_cache_entries %llu\n"
                            "# TYPE tokengate_classifier_cache_hits_total counter\n"
                            "tokengate_classifier_cache_hits_total %llu\n"
                            "# TYPE tokengate_classifier_cache_misses_total counter\n"
                            "tokengate_classifier_cache_misses_total %llu\n"
                            "# TYPE tokengate_classifier_cache_evictions_total counter\n"
                            "tokengate_classifier_cache_evictions_total %llu\n",
                            (unsigned long long)ls[0], (unsigned long long)ls[1],
                            (unsigned long long)ls[2], (unsigned long long)ls[3]);
    }
    toolstats_write(srv->toolstats, metric_line, b);
    cache_metrics_write(srv, b);
    free(t);
}
