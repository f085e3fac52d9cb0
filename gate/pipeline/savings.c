/*
 * savings: what caches and routing saved a request. See savings.h.
 */
#include "gate/pipeline/savings.h"

#include <stdio.h>
#include <string.h>

#include "cache/cstats.h"
#include "gate/budget/ledger.h"
#include "gate/budget/policy.h"
#include "gate/core/worker.h"
#include "gate/pipeline/req.h"

int64_t savings_prompt_nusd(const struct usage *u, int64_t cache_write_1h,
                            const struct conf_price *p)
{
    if (u == NULL || p == NULL || !p->set || !u->have || u->bad != NULL)
        return 0;
    int64_t w1h = cache_write_1h > 0 ? cache_write_1h : 0;
    int64_t w5 = u->cache_write > w1h ? u->cache_write - w1h : 0;
    int64_t in = budget_policy_pico(p->input);
    /* pico-dollars, in 128 bits (a provider may report absurd counts), rounded once */
    __int128 ps = (__int128)(u->cached > 0 ? u->cached : 0) *
                      (in - budget_policy_pico(p->cached_input)) -
                  (__int128)w5 * (budget_policy_pico(p->cache_write) - in) -
                  (__int128)w1h * (budget_policy_pico(p->cache_write_1h) - in);
    ps /= 1000;
    return ps > INT64_MAX ? INT64_MAX : ps < -INT64_MAX ? -INT64_MAX : (int64_t)ps;
}

const struct conf_model *savings_asked_model(const struct conf *c, const char *asked)
{
    struct conf_dest tmp;
    const struct conf_dest *ad;

    if (c == NULL || asked == NULL)
        return NULL;
    ad = conf_find_alias(c, asked, &tmp);
    if (ad == NULL)
        return conf_find_model(c, asked);
    /* an alias: without the rules it would go to its own destination's first target (as
     * `tokengate route explain` measures it) */
    if (ad->down)
        return NULL;
    if (ad->target >= 0)
        return &c->models[ad->target];
    if (ad->tier >= 0 && c->routing.tiers[ad->tier].ntargets > 0)
        return &c->models[c->routing.tiers[ad->tier].targets[0]];
    return NULL;
}

/* What routing saved: the usage at the asked model's price, less paid. */
static int64_t route_nusd(const struct gate_req *req, int64_t paid)
{
    const struct usage *u = &req->usage;
    const struct conf_model *am;

    if (req->cm == NULL || !u->have || !u->final || u->bad != NULL)
        return 0;
    am = savings_asked_model(req->conf, req->model);
    if (am == NULL || am == req->cm || !am->price.set)
        return 0;
    int64_t uncached = u->input - u->cached - u->cache_write;
    int64_t at_asked = budget_cost(&am->price, uncached > 0 ? uncached : 0, u->cached,
                                   u->cache_write - u->cache_write_1h, u->cache_write_1h,
                                   u->output);
    return at_asked - paid;
}

void savings_settle(struct gate_req *req, int64_t paid_nusd)
{
    struct cache_stats *cs = req->w->srv->cstats;
    const struct usage *u = &req->usage;

    req->cache.prompt_saved_nusd =
        u->final ? savings_prompt_nusd(u, u->cache_write_1h, req->cm ? &req->cm->price : NULL) : 0;
    req->cache.route_saved_nusd = route_nusd(req, paid_nusd);
    if (cs == NULL)
        return;
    /* a response-cache hit's saving is counted by stage_cache (cache_stats_saved) */
    atomic_fetch_add_explicit(&cs->prompt_saved_nusd, req->cache.prompt_saved_nusd,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&cs->route_saved_nusd, req->cache.route_saved_nusd,
                              memory_order_relaxed);
}

static const char *state_name(enum req_cache_state s)
{
    switch (s) {
    case REQ_CACHE_HIT:
        return "hit";
    case REQ_CACHE_MISS:
        return "miss";
    case REQ_CACHE_BYPASS:
        return "bypass";
    default:
        return NULL;
    }
}

void savings_rec(const struct gate_req *req, struct ledger_rec *rec)
{
    rec->cache = state_name(req->cache.state);
    if (req->cache.state == REQ_CACHE_HIT) {
        rec->saved_tokens = req->cache.saved_tokens;
        rec->saved_nusd = req->cache.saved_nusd;
    }
    rec->prompt_saved_nusd = req->cache.prompt_saved_nusd;
    rec->route_saved_nusd = req->cache.route_saved_nusd;
    /* rec->cache_write_1h is fill_rec's (spend.c) */
}

/* Adds nano-dollars n as dollars, in digits (exact, as the record's cost_usd). */
static void add_usd(cJSON *o, const char *key, int64_t n)
{
    char s[48];
    const char *sign = n < 0 ? "-" : "";
    uint64_t m = n < 0 ? (uint64_t)(-(n + 1)) + 1 : (uint64_t)n;

    snprintf(s, sizeof(s), "%s%llu.%09llu", sign, (unsigned long long)(m / 1000000000),
             (unsigned long long)(m % 1000000000));
    cJSON_AddRawToObject(o, key, s);
}

void savings_log(const struct gate_req *req, cJSON *rec)
{
    const struct req_cache *c = &req->cache;
    const char *state = state_name(c->state);

    if (state != NULL || c->breakpoints > 0 || c->prompt_key) {
        cJSON *o = cJSON_AddObjectToObject(rec, "cache");
        if (state != NULL)
            cJSON_AddStringToObject(o, "response", state);
        if (c->why != NULL)
            cJSON_AddStringToObject(o, "why", c->why);
        if (state != NULL && c->level >= 0 && c->level <= CONF_LEVEL_AGENT)
            cJSON_AddStringToObject(o, "scope", conf_level_name((enum conf_level)c->level));
        if (c->state == REQ_CACHE_HIT) {
            cJSON_AddNumberToObject(o, "saved_tokens", (double)c->saved_tokens);
            add_usd(o, "saved_usd", c->saved_nusd);
        }
        if (c->breakpoints > 0)
            cJSON_AddNumberToObject(o, "breakpoints", c->breakpoints);
        if (c->prompt_key)
            cJSON_AddBoolToObject(o, "prompt_cache_key", 1);
    }
    if (req->decision != REQ_DECISION_ADMITTED && c->state != REQ_CACHE_HIT)
        return; /* not a request that was answered: nothing it could have saved */
    cJSON *s = cJSON_AddObjectToObject(rec, "saved");
    add_usd(s, "response_usd", c->state == REQ_CACHE_HIT ? c->saved_nusd : 0);
    add_usd(s, "prompt_usd", c->prompt_saved_nusd);
    add_usd(s, "routing_usd", c->route_saved_nusd);
}
