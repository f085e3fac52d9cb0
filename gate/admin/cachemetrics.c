/*
 * cachemetrics: the caches in /metrics and /status. See cachemetrics.h.
 */
#include "gate/admin/cachemetrics.h"

#include <event2/buffer.h>
#include <stdint.h>

#include "cache/cstats.h"
#include "cache/prefixcount.h"
#include "cache/store.h"
#include "conf/conf.h"
#include "gate/core/worker.h"

/* A store of the server's, by its name in the metrics ("responses", "tools"). */
struct named_store {
    const char *name;
    struct cache_store *s;
};

static uint64_t lookups(const struct cache_stats *cs, int k, int lv, int o)
{
    return atomic_load_explicit(&cs->n[k][lv][o], memory_order_relaxed);
}

static const char *const outcome_names[CACHE_O__COUNT] = {"hit", "miss", "bypass"};

/* nano-dollars as dollars, exactly */
static void put_usd(struct evbuffer *b, int64_t n)
{
    uint64_t m = n < 0 ? (uint64_t)(-(n + 1)) + 1 : (uint64_t)n;

    evbuffer_add_printf(b, "%s%llu.%09llu\n", n < 0 ? "-" : "", (unsigned long long)(m / 1000000000),
                        (unsigned long long)(m % 1000000000));
}

void cache_metrics_write(struct gate_server *srv, struct evbuffer *b)
{
    const struct cache_stats *cs = srv->cstats;
    const struct named_store stores[] = {{"responses", srv->responses}, {"tools", srv->tools}};

    if (cs != NULL) {
        evbuffer_add_printf(b, "# HELP tokengate_cache_lookups_total Cache lookups, by cache, "
                               "scope level and outcome.\n"
                               "# TYPE tokengate_cache_lookups_total counter\n");
        for (int k = 0; k < CACHE_K__COUNT; k++)
            for (int lv = 0; lv < CACHE_LEVELS; lv++)
                for (int o = 0; o < CACHE_O__COUNT; o++) {
                    uint64_t n = lookups(cs, k, lv, o);
                    if (n > 0)
                        evbuffer_add_printf(
                            b, "tokengate_cache_lookups_total{cache=\"%s\",scope=\"%s\","
                               "outcome=\"%s\"} %llu\n",
                            cache_kind_name((enum cache_kind)k),
                            conf_level_name((enum conf_level)lv), outcome_names[o],
                            (unsigned long long)n);
                }
        evbuffer_add_printf(b, "# HELP tokengate_cache_hit_ratio Hits over hits and misses "
                               "(bypasses aside), by cache and scope level.\n"
                               "# TYPE tokengate_cache_hit_ratio gauge\n");
        for (int k = 0; k < CACHE_K__COUNT; k++)
            for (int lv = 0; lv < CACHE_LEVELS; lv++) {
                uint64_t h = lookups(cs, k, lv, CACHE_HIT), m = lookups(cs, k, lv, CACHE_MISS);
                if (h + m > 0)
                    evbuffer_add_printf(b, "tokengate_cache_hit_ratio{cache=\"%s\",scope=\"%s\"} "
                                           "%.6f\n",
                                        cache_kind_name((enum cache_kind)k),
                                        conf_level_name((enum conf_level)lv),
                                        (double)h / (double)(h + m));
            }
        evbuffer_add_printf(b, "# HELP tokengate_saved_usd_total What caches and routing "
                               "saved, in US dollars, net (a prompt-cache write's premium or a "
                               "fallback to a dearer target counts against, so it may go "
                               "down: a gauge).\n"
                               "# TYPE tokengate_saved_usd_total gauge\n"
                               "tokengate_saved_usd_total{source=\"response_cache\"} ");
        put_usd(b, (int64_t)atomic_load_explicit(&cs->saved_nusd[CACHE_K_RESPONSE],
                                                 memory_order_relaxed));
        evbuffer_add_printf(b, "tokengate_saved_usd_total{source=\"prompt_cache\"} ");
        put_usd(b, atomic_load_explicit(&cs->prompt_saved_nusd, memory_order_relaxed));
        evbuffer_add_printf(b, "tokengate_saved_usd_total{source=\"routing\"} ");
        put_usd(b, atomic_load_explicit(&cs->route_saved_nusd, memory_order_relaxed));
        evbuffer_add_printf(
            b,
            "# HELP tokengate_saved_tokens_total Provider tokens response-cache hits did not "
            "spend.\n# TYPE tokengate_saved_tokens_total counter\n"
            "tokengate_saved_tokens_total{source=\"response_cache\"} %llu\n",
            (unsigned long long)atomic_load_explicit(&cs->saved_tokens[CACHE_K_RESPONSE],
                                                     memory_order_relaxed));
    }
    evbuffer_add_printf(b, "# HELP tokengate_cache_entries Entries held, by store.\n"
                           "# TYPE tokengate_cache_entries gauge\n"
                           "# TYPE tokengate_cache_bytes gauge\n"
                           "# TYPE tokengate_cache_max_bytes gauge\n"
                           "# TYPE tokengate_cache_evictions_total counter\n");
    for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
        struct cache_store_stats st;
        if (stores[i].s == NULL)
            continue;
        cache_store_stats(stores[i].s, &st);
        evbuffer_add_printf(b,
                            "tokengate_cache_entries{store=\"%s\"} %llu\n"
                            "tokengate_cache_bytes{store=\"%s\"} %llu\n"
                            "tokengate_cache_max_bytes{store=\"%s\"} %llu\n"
                            "tokengate_cache_evictions_total{store=\"%s\"} %llu\n",
                            stores[i].name, (unsigned long long)st.entries, stores[i].name,
                            (unsigned long long)st.bytes, stores[i].name,
                            (unsigned long long)st.max_bytes, stores[i].name,
                            (unsigned long long)st.evictions);
    }
    if (srv->prefix != NULL) {
        struct prefixcount_stats ps;
        prefixcount_stats(srv->prefix, &ps);
        evbuffer_add_printf(b,
                            "tokengate_cache_entries{store=\"prefix_counts\"} %llu\n"
                            "# TYPE tokengate_cache_max_entries gauge\n"
                            "tokengate_cache_max_entries{store=\"prefix_counts\"} %llu\n"
                            "tokengate_cache_evictions_total{store=\"prefix_counts\"} %llu\n",
                            (unsigned long long)ps.entries, (unsigned long long)ps.max_entries,
                            (unsigned long long)ps.evictions);
    }
}

static void store_status(cJSON *caches, const char *name, struct cache_store *s)
{
    struct cache_store_stats st;

    if (s == NULL)
        return;
    cache_store_stats(s, &st);
    cJSON *o = cJSON_AddObjectToObject(caches, name);
    const struct {
        const char *k;
        uint64_t v;
    } f[] = {{"entries", st.entries},     {"bytes", st.bytes},   {"max_bytes", st.max_bytes},
             {"max_entry_bytes", st.max_entry_bytes}, {"hits", st.hits}, {"misses", st.misses},
             {"stores", st.stores},       {"too_big", st.too_big}, {"evictions", st.evictions},
             {"expired", st.expired}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        cJSON_AddNumberToObject(o, f[i].k, (double)f[i].v);
}

void cache_status_add(struct gate_server *srv, cJSON *doc)
{
    const struct cache_stats *cs = srv->cstats;
    cJSON *caches = cJSON_AddObjectToObject(doc, "caches");

    store_status(caches, "responses", srv->responses);
    store_status(caches, "tools", srv->tools);
    if (srv->prefix != NULL) {
        struct prefixcount_stats ps;
        prefixcount_stats(srv->prefix, &ps);
        cJSON *o = cJSON_AddObjectToObject(caches, "prefix_counts");
        cJSON_AddNumberToObject(o, "entries", (double)ps.entries);
        cJSON_AddNumberToObject(o, "max_entries", (double)ps.max_entries);
        cJSON_AddNumberToObject(o, "hits", (double)ps.hits);
        cJSON_AddNumberToObject(o, "misses", (double)ps.misses);
        cJSON_AddNumberToObject(o, "evictions", (double)ps.evictions);
    }
    if (cs == NULL)
        return;
    /* lookups: {"response": {"agent": {"hit": N, "miss": N, "bypass": N}}}, scopes seen only */
    cJSON *lk = cJSON_AddObjectToObject(caches, "lookups");
    for (int k = 0; k < CACHE_K__COUNT; k++) {
        cJSON *ko = NULL;
        for (int lv = 0; lv < CACHE_LEVELS; lv++) {
            uint64_t n[CACHE_O__COUNT], sum = 0;
            for (int o = 0; o < CACHE_O__COUNT; o++)
                sum += n[o] = lookups(cs, k, lv, o);
            if (sum == 0)
                continue;
            if (ko == NULL)
                ko = cJSON_AddObjectToObject(lk, cache_kind_name((enum cache_kind)k));
            cJSON *lo = cJSON_AddObjectToObject(ko, conf_level_name((enum conf_level)lv));
            for (int o = 0; o < CACHE_O__COUNT; o++)
                cJSON_AddNumberToObject(lo, outcome_names[o], (double)n[o]);
        }
    }
    cJSON *sv = cJSON_AddObjectToObject(caches, "saved");
    cJSON_AddNumberToObject(sv, "response_tokens",
                            (double)atomic_load_explicit(&cs->saved_tokens[CACHE_K_RESPONSE],
                                                         memory_order_relaxed));
    cJSON_AddNumberToObject(sv, "response_usd",
                            (double)atomic_load_explicit(&cs->saved_nusd[CACHE_K_RESPONSE],
                                                         memory_order_relaxed) / 1e9);
    cJSON_AddNumberToObject(sv, "prompt_usd",
                            (double)atomic_load_explicit(&cs->prompt_saved_nusd,
                                                         memory_order_relaxed) / 1e9);
    cJSON_AddNumberToObject(sv, "routing_usd",
                            (double)atomic_load_explicit(&cs->route_saved_nusd,
                                                         memory_order_relaxed) / 1e9);
}
