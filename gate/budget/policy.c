/*
 * policy: the budget rules as plain code. See policy.h.
 */
#include "gate/budget/policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- windows -------------------------------------------------------------------------- */

void budget_window_bounds(const struct conf_tz *z, enum conf_window w, double now,
                          double *start, double *end)
{
    int64_t t = (int64_t)floor(now);
    struct tm tm;

    switch (w) {
    case CONF_WIN_MINUTE:
        *start = (double)(t - (t % 60 + 60) % 60);
        *end = *start + 60;
        return;
    case CONF_WIN_TOTAL:
        *start = 0;
        *end = 0;
        return;
    default:
        break;
    }
    conf_tz_local(z, t, &tm);
    if (w == CONF_WIN_HOUR) {
        /* counted back from now: when clocks go back, 02:00-03:00 comes twice, and each is
         * an hour of its own */
        *start = (double)(t - tm.tm_min * 60 - tm.tm_sec);
        *end = *start + 3600;
        return;
    }
    int y = tm.tm_year + 1900;
    if (w == CONF_WIN_DAY) {
        *start = (double)conf_tz_first_at(z, y, tm.tm_mon, tm.tm_mday, 0);
        *end = (double)conf_tz_first_at(z, y, tm.tm_mon, tm.tm_mday + 1, 0);
    } else {
        *start = (double)conf_tz_first_at(z, y, tm.tm_mon, 1, 0);
        *end = (double)conf_tz_first_at(z, y, tm.tm_mon + 1, 1, 0);
    }
}

/* ---- prices and caps ------------------------------------------------------------------ */

int64_t budget_policy_pico(double usd_per_million)
{
    return llround(usd_per_million * 1e6);
}

/* a request's cap times n times a price can pass 64 bits: held at INT64_MAX */
int64_t budget_policy_nusd(int64_t tokens, int64_t pico_each)
{
    if (tokens <= 0 || pico_each <= 0)
        return 0;
    __int128 ps = ((__int128)tokens * pico_each + 999) / 1000;
    return ps > INT64_MAX ? INT64_MAX : (int64_t)ps;
}

int64_t budget_cost(const struct conf_price *p, int64_t input_uncached, int64_t cached,
                    int64_t write_5m, int64_t write_1h, int64_t output)
{
    if (p == NULL || !p->set)
        return 0;
    /* in 128 bits: a provider may report absurd counts, and a price times 9e15 tokens does
     * not fit in 64; a cost past INT64_MAX nano-dollars is held there, never wrapped */
    const int64_t n[5] = {input_uncached, cached, write_5m, write_1h, output};
    const double price[5] = {p->input, p->cached_input, p->cache_write, p->cache_write_1h,
                             p->output};
    __int128 ps = 0;
    for (int i = 0; i < 5; i++)
        if (n[i] > 0)
            ps += (__int128)n[i] * budget_policy_pico(price[i]);
    ps = (ps + 999) / 1000;
    return ps > INT64_MAX ? INT64_MAX : (int64_t)ps;
}

int64_t budget_model_cap(const char *m)
{
    /* the providers' documented output caps; the longest prefix that matches wins */
    static const struct {
        const char *prefix;
        int64_t cap;
    } caps[] = {
        {"gpt-3.5", 4096},          {"gpt-4-turbo", 4096},     {"gpt-4-", 8192},
        {"gpt-4", 8192},            {"gpt-4o", 16384},         {"chatgpt-4o", 16384},
        {"gpt-4.1", 32768},         {"gpt-4.5", 16384},        {"gpt-5", 128000},
        {"o1", 100000},             {"o1-mini", 65536},        {"o3", 100000},
        {"o4-mini", 100000},        {"claude-3-haiku", 4096},  {"claude-3-opus", 4096},
        {"claude-3-5", 8192},       {"claude-3-7", 64000},     {"claude-sonnet-4", 64000},
        {"claude-opus-4", 32000},   {"claude-haiku-4", 64000}, {"claude-opus-4-5", 64000},
    };
    size_t best = 0;
    int64_t cap = -1;

    if (m == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        size_t n = strlen(caps[i].prefix);
        if (n > best && strncmp(m, caps[i].prefix, n) == 0) {
            best = n;
            cap = caps[i].cap;
        }
    }
    return cap;
}

/* ---- the tree: paths and the policy in force ---------------------------------------------- */

int budget_policy_path(const struct bnode *node, int agent, int path[MAX_DEPTH])
{
    int n = 0;

    for (int s = agent; s >= 0 && n < MAX_DEPTH; s = node[s].parent)
        path[n++] = s;
    return n;
}

void budget_pol_of(const struct conf *c, enum conf_level lv, const int *parent,
                   const int *policy, int i, struct bpol *out)
{
    const struct conf_policy *p = NULL;

    /* the policy in force at a scope: its own, else its nearest ancestor's */
    for (int s = i; s >= 0 && p == NULL; s = parent[s])
        if (policy[s] >= 0)
            p = &c->policies[policy[s]];
    *out = (struct bpol){.agent_max = -1, .agent_min = -1, .max_per_request = -1,
                         .task_max_nusd = -1, .task_max_requests = -1, .max_retries = -1,
                         .max_latency_ms = -1, .cache = *conf_policy_cache_defaults()};
    if (lv != CONF_LEVEL_AGENT || p == NULL)
        return;
    out->agent_max = p->max_per_agent;
    out->agent_min = p->max_per_agent >= 0 && p->min_per_agent > p->max_per_agent
                         ? p->max_per_agent
                         : p->min_per_agent;
    out->agent_window = p->window;
    out->max_per_request = p->max_per_request;
    out->task_max_nusd = p->task_max_nusd;
    out->task_max_requests = p->task_max_requests;
    out->max_retries = p->max_retries;
    out->loop_detection = p->loop_detection;
    out->downgrade = p->downgrade;
    out->prefer_cost = p->prefer_cost;
    out->max_latency_ms = p->max_latency_ms;
    out->cache = p->cache;
}

/* ---- a request's holds and allowance ------------------------------------------------------ */

void budget_policy_prices(const struct budget_ask *ask, int64_t *p_in, int64_t *p_out)
{
    const struct conf_price *price = ask->price && ask->price->set ? ask->price : NULL;

    *p_in = *p_out = 0;
    if (price == NULL)
        return;
    *p_in = budget_policy_pico(price->input > price->cache_write ? price->input
                                                                 : price->cache_write);
    *p_out = budget_policy_pico(price->output);
}

int64_t budget_policy_input_hold(const struct budget_ask *ask)
{
    return ask->input + (ask->approximate ? ask->input / 8 + 16 : ask->input / 100 + 4);
}

int64_t budget_policy_min_output(const struct budget_ask *ask)
{
    return !ask->generates ? 0 : ask->min_output > 1 ? ask->min_output : 1;
}

int64_t budget_policy_agent_limit(const struct bpol *pol, enum conf_window w, int64_t lt)
{
    if (pol->agent_max >= 0 && pol->agent_window == w && (lt < 0 || pol->agent_max < lt))
        return pol->agent_max;
    return lt;
}

int budget_policy_allowance(const struct budget_ask *ask, int64_t room_t, int64_t room_n,
                            int64_t p_out, int64_t *allowance, int *write_max)
{
    /* what the request asks, cut to the room the budgets leave */
    int64_t allow = room_t;
    if (room_n != NO_LIMIT && p_out > 0) {
        __int128 by_usd = (__int128)room_n * 1000 / p_out;
        if (by_usd < allow)
            allow = (int64_t)by_usd;
    }
    int64_t choices = ask->choices > 1 ? ask->choices : 1;
    if (allow != NO_LIMIT)
        allow /= choices;
    int64_t want = ask->max_output >= 0 ? ask->max_output : ask->model_cap;
    *write_max = 0;
    if (!ask->generates) {
        *allowance = 0;
    } else if (allow == NO_LIMIT) {
        *allowance = want; /* no budget bounds it: the request's own cap, or none (-1) */
    } else if (want >= 0 && want <= allow) {
        *allowance = want;
        *write_max = ask->max_output < 0; /* bound the provider even if it defaults higher */
    } else {
        *allowance = allow;
        *write_max = 1;
        if (allow < budget_policy_min_output(ask))
            return -1;
    }
    return 0;
}

/* ---- tasks and cutoffs -------------------------------------------------------------------- */

void budget_policy_refuse_other(struct budget_refusal *why, enum budget_refusal_kind kind,
                                int scope, int usd, int64_t limit, int64_t used, int64_t needed,
                                double resets)
{
    memset(why, 0, sizeof(*why));
    why->kind = kind;
    why->scope = scope;
    why->usd = usd;
    why->limit = limit;
    why->used = used;
    why->remaining = limit > used ? limit - used : 0;
    why->needed = needed;
    why->resets_at = resets;
}

int budget_policy_cutoff(const struct bpol *pol, int agent, struct bprint *pr, double now,
                         struct budget_refusal *why)
{
    if (now - pr->first > BUDGET_LOOP_WINDOW) {
        pr->first = now;
        pr->count = 0;
    }
    if (pol->max_retries >= 0 && pr->fails > (uint32_t)pol->max_retries &&
        now - pr->last < BUDGET_RETRY_COOLDOWN) {
        budget_policy_refuse_other(why, BUDGET_RETRIES, agent, 0, pol->max_retries, pr->fails, 0,
                                   pr->last + BUDGET_RETRY_COOLDOWN);
        return BUDGET_RETRIES;
    }
    if (pol->loop_detection && pr->count >= BUDGET_LOOP_REPEATS) {
        budget_policy_refuse_other(why, BUDGET_LOOP, agent, 0, BUDGET_LOOP_REPEATS, pr->count, 0,
                                   pr->first + BUDGET_LOOP_WINDOW);
        return BUDGET_LOOP;
    }
    return 0;
}

uint64_t budget_policy_task_key(int agent, const char *task)
{
    uint64_t k = XXH3_64bits_withSeed(task, strlen(task), (uint64_t)agent + 1);

    return k != 0 ? k : 1;
}
