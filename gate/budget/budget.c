/*
 * budget: windows, prices, reservations and settlement. See budget.h.
 *
 * One mutex guards the whole book. The work under it is a few dozen integer operations per
 * request (at most four scopes of five windows), so it is held for well under a microsecond
 * and a single lock is both the simplest and, on the core counts a gate runs on, fast enough;
 * it is also what makes a reservation on four scopes atomic.
 */
#include "gate/budget/budget-int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

void budget_roll(const struct budget_book *b, struct bscope *s, enum conf_window w, double now)
{
    if (w == CONF_WIN_TOTAL)
        return;
    if (s->end[w] != 0 && now < s->end[w] && now >= s->start[w])
        return;
    double start, end;
    budget_window_bounds(b->conf->tz, w, now, &start, &end);
    if (start != s->start[w]) {
        s->used_t[w] = 0;
        s->used_n[w] = 0;
        s->alerted[w] = 0;
    }
    s->start[w] = start;
    s->end[w] = end;
}

/* ---- prices and caps ------------------------------------------------------------------ */

/* pico-dollars per token from dollars per million tokens */
static int64_t pico(double usd_per_million)
{
    return llround(usd_per_million * 1e6);
}

/* Nano-dollars for tokens at pico-dollars each, rounded up; held at INT64_MAX, never
 * wrapped (a request's cap times n times a price can pass 64 bits). */
static int64_t nusd_of(int64_t tokens, int64_t pico_each)
{
    if (tokens <= 0 || pico_each <= 0)
        return 0;
    __int128 ps = ((__int128)tokens * pico_each + 999) / 1000;
    return ps > INT64_MAX ? INT64_MAX : (int64_t)ps;
}

int64_t budget_cost(const struct conf_price *p, int64_t input_uncached, int64_t cached,
                    int64_t cache_write, int64_t output)
{
    if (p == NULL || !p->set)
        return 0;
    /* in 128 bits: a provider may report absurd counts, and a price times 9e15 tokens does
     * not fit in 64; a cost past INT64_MAX nano-dollars is held there, never wrapped */
    const int64_t n[4] = {input_uncached, cached, cache_write, output};
    const double price[4] = {p->input, p->cached_input, p->cache_write, p->output};
    __int128 ps = 0;
    for (int i = 0; i < 4; i++)
        if (n[i] > 0)
            ps += (__int128)n[i] * pico(price[i]);
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

static int path_of(const struct budget_book *b, int agent, int path[MAX_DEPTH])
{
    int n = 0;

    for (int s = agent; s >= 0 && n < MAX_DEPTH; s = b->node[s].parent)
        path[n++] = s;
    return n;
}

/* ---- reserve and settle --------------------------------------------------------------- */

static void refuse(struct budget_refusal *why, int scope, const struct bscope *s,
                   enum conf_window w, int usd, int64_t limit, int64_t needed)
{
    why->kind = BUDGET_OVER;
    why->scope = scope;
    why->window = w;
    why->usd = usd;
    why->limit = limit;
    why->used = usd ? s->used_n[w] : s->used_t[w];
    why->reserved = usd ? s->res_n : s->res_t;
    why->remaining = limit - why->used - why->reserved;
    if (why->remaining < 0)
        why->remaining = 0;
    why->needed = needed;
    why->resets_at = w == CONF_WIN_TOTAL ? 0 : s->end[w];
}

/*
 * What the other agents under s are still owed of their min_per_agent in window w (their
 * policy's window): the part of a floor they have not used or reserved. A scope's budget of
 * that window keeps it free for them. The cost is one pass over those agents.
 */
static int64_t floors_owed(struct budget_book *b, const struct bscope *s, int agent,
                           int w, double now)
{
    int64_t owed = 0;

    for (int k = 0; k < s->nfloors; k++) {
        struct bscope *a = &b->s[s->floors[k]];
        if (s->floors[k] == agent || (int)a->pol.agent_window != w)
            continue;
        budget_roll(b, a, (enum conf_window)w, now);
        int64_t left = a->pol.agent_min - a->used_t[w] - a->res_t;
        if (left > 0)
            owed += left;
    }
    return owed;
}

/* ---- tasks and cutoffs ------------------------------------------------------------------ */

#define TASK_SLOTS ((size_t)BUDGET_TASKS_MAX * 2)
#define TASK_IDLE 3600

static uint64_t task_key(int agent, const char *task)
{
    uint64_t k = XXH3_64bits_withSeed(task, strlen(task), (uint64_t)agent + 1);

    return k != 0 ? k : 1;
}

/* Drops tasks idle for an hour with nothing under way, rebuilding the table. */
static void tasks_sweep(struct budget_book *b, double now)
{
    struct btask *old = b->tasks, *nt = calloc(TASK_SLOTS, sizeof(*nt));

    if (nt == NULL)
        return;
    b->tasks = nt;
    b->ntasks = 0;
    for (size_t i = 0; i < TASK_SLOTS; i++) {
        const struct btask *t = &old[i];
        if (t->key == 0 || (t->inflight == 0 && now - t->last > TASK_IDLE))
            continue;
        size_t j = t->key & (TASK_SLOTS - 1);
        while (nt[j].key != 0)
            j = (j + 1) & (TASK_SLOTS - 1);
        nt[j] = *t;
        b->ntasks++;
    }
    free(old);
}

/* A task's entry, made when make is set and it is absent. NULL when absent (or, making, when
 * BUDGET_TASKS_MAX tasks are all live, or memory ran out). */
static struct btask *task_find(struct budget_book *b, uint64_t key, double now, int make)
{
    size_t i;

    if (b->tasks == NULL) {
        if (!make || (b->tasks = calloc(TASK_SLOTS, sizeof(*b->tasks))) == NULL)
            return NULL;
    }
    for (i = key & (TASK_SLOTS - 1); b->tasks[i].key != 0; i = (i + 1) & (TASK_SLOTS - 1))
        if (b->tasks[i].key == key)
            return &b->tasks[i];
    if (!make)
        return NULL;
    if (b->ntasks >= BUDGET_TASKS_MAX) {
        tasks_sweep(b, now);
        if (b->ntasks >= BUDGET_TASKS_MAX)
            return NULL;
        return task_find(b, key, now, make);
    }
    b->tasks[i] = (struct btask){.key = key, .last = now};
    b->ntasks++;
    return &b->tasks[i];
}

/* The agent's record of a body, made (replacing the least recent) when absent. */
static struct bprint *print_find(struct bscope *s, uint64_t fp, double now, int make)
{
    struct bprint *oldest;

    if (s->prints == NULL) {
        if (!make || (s->prints = calloc(PRINTS, sizeof(*s->prints))) == NULL)
            return NULL;
    }
    oldest = &s->prints[0];
    for (int i = 0; i < PRINTS; i++) {
        if (s->prints[i].fp == fp)
            return &s->prints[i];
        if (s->prints[i].last < oldest->last)
            oldest = &s->prints[i];
    }
    if (!make)
        return NULL;
    *oldest = (struct bprint){.fp = fp, .first = now, .last = now};
    return oldest;
}

static void refuse_other(struct budget_refusal *why, enum budget_refusal_kind kind, int scope,
                         int usd, int64_t limit, int64_t used, int64_t needed, double resets)
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

int budget_reserve(struct budget_book *b, const struct budget_ask *ask, double now,
                   struct budget_resv *r, struct budget_refusal *why)
{
    int path[MAX_DEPTH], n;
    const struct conf_price *price = ask->price && ask->price->set ? ask->price : NULL;
    /* our count can be short of the provider's: reserve a margin on it */
    int64_t in = ask->input + (ask->approximate ? ask->input / 8 + 16 : ask->input / 100 + 4);
    int64_t p_in = 0, p_out = 0;
    if (price != NULL) {
        p_in = pico(price->input > price->cache_write ? price->input : price->cache_write);
        p_out = pico(price->output);
    }
    int64_t in_cost = nusd_of(in, p_in);
    /* the least output a request can be given: one token, or the smallest cap the API takes */
    int64_t need_out = !ask->generates ? 0 : ask->min_output > 1 ? ask->min_output : 1;
    int64_t room_t = NO_LIMIT, room_n = NO_LIMIT;
    int tight_scope = -1, tight_usd = 0;
    enum conf_window tight_w = CONF_WIN_DAY;
    int64_t tight_limit = 0;

    memset(r, 0, sizeof(*r));
    pthread_mutex_lock(&b->mu);
    n = path_of(b, ask->agent, path);
    /* a scope gone from the config (a rebind) admits nothing more */
    for (int i = 0; i < n; i++)
        if (b->node[path[i]].retired) {
            refuse_other(why, BUDGET_OVER, path[i], 0, 0, 0, in + need_out, 0);
            why->window = CONF_WIN_TOTAL;
            goto refused;
        }
    struct bscope *as = &b->s[ask->agent];
    struct bprint *pr = NULL;
    if (ask->fingerprint != 0 && (as->pol.loop_detection || as->pol.max_retries >= 0) &&
        (pr = print_find(as, ask->fingerprint, now, 1)) != NULL) {
        if (now - pr->first > BUDGET_LOOP_WINDOW) {
            pr->first = now;
            pr->count = 0;
        }
        if (as->pol.max_retries >= 0 && pr->fails > (uint32_t)as->pol.max_retries &&
            now - pr->last < BUDGET_RETRY_COOLDOWN) {
            refuse_other(why, BUDGET_RETRIES, ask->agent, 0, as->pol.max_retries, pr->fails, 0,
                         pr->last + BUDGET_RETRY_COOLDOWN);
            goto refused;
        }
        if (as->pol.loop_detection && pr->count >= BUDGET_LOOP_REPEATS) {
            refuse_other(why, BUDGET_LOOP, ask->agent, 0, BUDGET_LOOP_REPEATS, pr->count, 0,
                         pr->first + BUDGET_LOOP_WINDOW);
            goto refused;
        }
    }
    for (int i = 0; i < n; i++) {
        struct bscope *s = &b->s[path[i]];
        for (int w = 0; w < CONF_WIN__COUNT; w++) {
            int64_t lt = s->lim[w].tokens, ln = s->lim[w].nusd;
            if (i == 0 && s->pol.agent_max >= 0 && (int)s->pol.agent_window == w &&
                (lt < 0 || s->pol.agent_max < lt))
                lt = s->pol.agent_max;
            if (lt < 0 && ln < 0)
                continue;
            budget_roll(b, s, (enum conf_window)w, now);
            if (lt >= 0) {
                int64_t owed = i > 0 ? floors_owed(b, s, ask->agent, w, now) : 0;
                int64_t avail = lt - s->used_t[w] - s->res_t - owed;
                if (avail < in + need_out) {
                    refuse(why, path[i], s, (enum conf_window)w, 0, lt, in + need_out);
                    /* other agents' minimums count as reserved: they are held for them */
                    why->reserved += owed;
                    why->remaining = avail > 0 ? avail : 0;
                    goto refused;
                }
                if (avail - in < room_t) {
                    room_t = avail - in;
                    tight_scope = path[i], tight_w = (enum conf_window)w, tight_usd = 0;
                    tight_limit = lt;
                }
            }
            if (ln >= 0) {
                int64_t avail = ln - s->used_n[w] - s->res_n;
                int64_t need = in_cost + nusd_of(need_out, p_out);
                if (avail < need) {
                    refuse(why, path[i], s, (enum conf_window)w, 1, ln, need);
                    goto refused;
                }
                if (avail - in_cost < room_n)
                    room_n = avail - in_cost;
            }
        }
    }
    /* a task's dollars bound the request like one more budget */
    struct btask *t = NULL;
    if (ask->task != NULL && (as->pol.task_max_requests >= 0 || as->pol.task_max_nusd >= 0)) {
        t = task_find(b, task_key(ask->agent, ask->task), now, 1);
        if (t == NULL) {
            refuse_other(why, BUDGET_TASK, ask->agent, 0, BUDGET_TASKS_MAX, BUDGET_TASKS_MAX, 1,
                         0);
            goto refused;
        }
        if (as->pol.task_max_requests >= 0 && t->requests >= as->pol.task_max_requests) {
            refuse_other(why, BUDGET_TASK, ask->agent, 0, as->pol.task_max_requests, t->requests, 1,
                         0);
            goto refused;
        }
        if (as->pol.task_max_nusd >= 0) {
            int64_t avail = as->pol.task_max_nusd - t->nusd - t->res_nusd;
            int64_t need = in_cost + nusd_of(need_out, p_out);
            if (avail < need) {
                refuse_other(why, BUDGET_TASK, ask->agent, 1, as->pol.task_max_nusd,
                             t->nusd + t->res_nusd, need, 0);
                goto refused;
            }
            if (avail - in_cost < room_n)
                room_n = avail - in_cost;
        }
    }
    if (b->s[ask->agent].pol.max_per_request >= 0) {
        int64_t mpr = b->s[ask->agent].pol.max_per_request;
        if (ask->input + need_out > mpr) {
            memset(why, 0, sizeof(*why));
            why->kind = BUDGET_TOO_LARGE;
            why->scope = ask->agent;
            why->limit = mpr;
            why->needed = ask->input + need_out;
            goto refused;
        }
        if (mpr - ask->input < room_t)
            room_t = mpr - ask->input, tight_scope = -1;
    }

    /* the output allowance: what the request asks, cut to the room the budgets leave */
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
    if (!ask->generates) {
        r->allowance = 0;
    } else if (allow == NO_LIMIT) {
        r->allowance = want; /* no budget bounds it: the request's own cap, or none (-1) */
    } else if (want >= 0 && want <= allow) {
        r->allowance = want;
        r->write_max = ask->max_output < 0; /* bound the provider even if it defaults higher */
    } else {
        r->allowance = allow;
        r->write_max = 1;
        if (allow < need_out) {
            /* the room left per choice is below the least the API takes, or only the dollar
             * room is this short: name the budget that has the least */
            if (tight_scope >= 0)
                refuse(why, tight_scope, &b->s[tight_scope], tight_w, tight_usd, tight_limit,
                       in + need_out * choices);
            else
                refuse(why, ask->agent, &b->s[ask->agent], CONF_WIN_DAY, 1, 0,
                       in + need_out * choices);
            goto refused;
        }
    }
    int64_t out = r->allowance > 0 ? r->allowance * choices : 0;
    r->tokens = in + out;
    r->nusd = in_cost + nusd_of(out, p_out);
    if (t != NULL) {
        t->requests++;
        t->inflight++;
        t->res_nusd += r->nusd;
        t->last = now;
        r->task = t->key;
    }
    if (pr != NULL) {
        pr->count++;
        pr->last = now;
        r->fingerprint = ask->fingerprint;
    }
    r->agent = ask->agent;
    r->held = 1;
    r->made = 1;
    r->npath = n;
    memcpy(r->path, path, sizeof(path));
    for (int i = 0; i < n; i++) {
        b->s[path[i]].res_t += r->tokens;
        b->s[path[i]].res_n += r->nusd;
    }
    /* what the tightest budget had left for this request: not counting its own reservation */
    r->remaining = room_t == NO_LIMIT ? -1 : room_t + in;
    r->remaining_nusd = room_n == NO_LIMIT ? -1 : room_n + in_cost;
    pthread_mutex_unlock(&b->mu);
    return 0;
refused:
    pthread_mutex_unlock(&b->mu);
    return -1;
}

int budget_settle(struct budget_book *b, struct budget_resv *r, int64_t tokens, int64_t nusd,
                  double now, struct budget_alert *alerts, int cap)
{
    int na = 0;

    if (!r->held)
        return 0;
    pthread_mutex_lock(&b->mu);
    const struct conf_alerts *ac = &b->conf->alerts;
    if (r->task != 0) {
        struct btask *t = task_find(b, r->task, now, 0);
        if (t != NULL) {
            t->res_nusd -= r->nusd;
            t->nusd += nusd;
            t->inflight--;
            t->last = now;
        }
    }
    if (r->fingerprint != 0) {
        struct bprint *pr = print_find(&b->s[r->agent], r->fingerprint, now, 0);
        if (pr != NULL)
            pr->fails = r->failed ? pr->fails + 1 : 0;
    }
    /* the scopes it reserved on, even if a rebind has moved the agent since */
    for (int i = 0; i < r->npath; i++) {
        struct bscope *s = &b->s[r->path[i]];
        s->res_t -= r->tokens;
        s->res_n -= r->nusd;
        for (int w = 0; w < CONF_WIN__COUNT; w++) {
            budget_roll(b, s, (enum conf_window)w, now);
            s->used_t[w] += tokens;
            s->used_n[w] += nusd;
            for (int k = 0; k < ac->nthresholds; k++) {
                int usd = s->lim[w].tokens < 0;
                int64_t lim = usd ? s->lim[w].nusd : s->lim[w].tokens;
                int64_t used = usd ? s->used_n[w] : s->used_t[w];
                if (lim <= 0 || (s->alerted[w] & (1u << k)) ||
                    used * 100 < (int64_t)ac->thresholds[k] * lim)
                    continue;
                s->alerted[w] |= 1u << k;
                if (na < cap)
                    alerts[na++] = (struct budget_alert){r->path[i], (enum conf_window)w,
                                                         ac->thresholds[k], usd, used, lim};
            }
        }
    }
    pthread_mutex_unlock(&b->mu);
    r->held = 0;
    return na;
}

/* ---- admin ---------------------------------------------------------------------------- */

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
    if (rc == 0) {
        b->s[scope].lim[w] = limit;
        b->s[scope].alerted[w] = 0;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void budget_reset(struct budget_book *b, int scope, enum conf_window w, double now)
{
    if (scope < 0 || scope >= budget_nscopes(b) || (unsigned)w >= CONF_WIN__COUNT)
        return;
    pthread_mutex_lock(&b->mu);
    budget_roll(b, &b->s[scope], w, now);
    b->s[scope].used_t[w] = 0;
    b->s[scope].used_n[w] = 0;
    b->s[scope].alerted[w] = 0;
    pthread_mutex_unlock(&b->mu);
}

void budget_each(struct budget_book *b, double now, int all,
                 void (*cb)(void *arg, const struct budget_view *v), void *arg)
{
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n; i++) {
        struct bscope *s = &b->s[i];
        if (b->node[i].retired)
            continue;
        for (int w = 0; w < CONF_WIN__COUNT; w++) {
            struct conf_limit lim = s->lim[w];
            if (s->pol.agent_max >= 0 && (int)s->pol.agent_window == w &&
                (lim.tokens < 0 || s->pol.agent_max < lim.tokens))
                lim.tokens = s->pol.agent_max;
            if (!all && lim.tokens < 0 && lim.nusd < 0)
                continue;
            budget_roll(b, s, (enum conf_window)w, now);
            struct budget_view v = {
                .scope = i,
                .window = (enum conf_window)w,
                .limit = lim,
                .used_tokens = s->used_t[w],
                .used_nusd = s->used_n[w],
                .reserved_tokens = s->res_t,
                .reserved_nusd = s->res_n,
                .start = s->start[w],
                .resets_at = w == CONF_WIN_TOTAL ? 0 : s->end[w],
            };
            cb(arg, &v);
        }
    }
    pthread_mutex_unlock(&b->mu);
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
