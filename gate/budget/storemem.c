/*
 * storemem: the in-memory budget store (see store.h). Its counters and limits sit in the
 * book's tables (budget-int.h), under the book's one mutex. The work under it is a few dozen
 * integer operations per request (at most four scopes of five windows), so it is held for well
 * under a microsecond and a single lock is both the simplest and, on the core counts a gate
 * runs on, fast enough; it is also what makes a reservation on four scopes atomic. It always
 * answers at once: it never returns BUDGET_PENDING. What to check comes from policy.c.
 */
#include "gate/budget/policy.h"
#include "gate/budget/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mem_store {
    struct budget_store base;
    struct budget_book *b;
};

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

static enum budget_rc mem_reserve(struct budget_store *st, const struct budget_ask *ask,
                                  double now, struct budget_resv *r, struct budget_refusal *why,
                                  const struct budget_cont *k)
{
    struct budget_book *b = ((struct mem_store *)st)->b;
    int path[MAX_DEPTH], n;
    int64_t in = budget_policy_input_hold(ask);
    int64_t p_in, p_out;
    budget_policy_prices(ask, &p_in, &p_out);
    int64_t in_cost = budget_policy_nusd(in, p_in);
    int64_t need_out = budget_policy_min_output(ask);
    int64_t room_t = NO_LIMIT, room_n = NO_LIMIT;
    int tight_scope = -1, tight_usd = 0;
    enum conf_window tight_w = CONF_WIN_DAY;
    int64_t tight_limit = 0;

    memset(r, 0, sizeof(*r));
    pthread_mutex_lock(&b->mu);
    n = budget_policy_path(b->node, ask->agent, path);
    /* a scope gone from the config (a rebind) admits nothing more */
    for (int i = 0; i < n; i++)
        if (b->node[path[i]].retired) {
            budget_policy_refuse_other(why, BUDGET_OVER, path[i], 0, 0, 0, in + need_out, 0);
            why->window = CONF_WIN_TOTAL;
            goto refused;
        }
    struct bscope *as = &b->s[ask->agent];
    struct bprint *pr = NULL;
    if (ask->fingerprint != 0 && (as->pol.loop_detection || as->pol.max_retries >= 0) &&
        (pr = print_find(as, ask->fingerprint, now, 1)) != NULL &&
        budget_policy_cutoff(&as->pol, ask->agent, pr, now, why) != 0)
        goto refused;
    for (int i = 0; i < n; i++) {
        struct bscope *s = &b->s[path[i]];
        for (int w = 0; w < CONF_WIN__COUNT; w++) {
            int64_t lt = s->lim[w].tokens, ln = s->lim[w].nusd;
            if (i == 0)
                lt = budget_policy_agent_limit(&s->pol, (enum conf_window)w, lt);
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
                int64_t need = in_cost + budget_policy_nusd(need_out, p_out);
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
        t = task_find(b, budget_policy_task_key(ask->agent, ask->task), now, 1);
        if (t == NULL) {
            budget_policy_refuse_other(why, BUDGET_TASK, ask->agent, 0, BUDGET_TASKS_MAX, BUDGET_TASKS_MAX, 1,
                         0);
            goto refused;
        }
        if (as->pol.task_max_requests >= 0 && t->requests >= as->pol.task_max_requests) {
            budget_policy_refuse_other(why, BUDGET_TASK, ask->agent, 0, as->pol.task_max_requests, t->requests, 1,
                         0);
            goto refused;
        }
        if (as->pol.task_max_nusd >= 0) {
            int64_t avail = as->pol.task_max_nusd - t->nusd - t->res_nusd;
            int64_t need = in_cost + budget_policy_nusd(need_out, p_out);
            if (avail < need) {
                budget_policy_refuse_other(why, BUDGET_TASK, ask->agent, 1, as->pol.task_max_nusd,
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
    int64_t choices = ask->choices > 1 ? ask->choices : 1;
    if (budget_policy_allowance(ask, room_t, room_n, p_out, &r->allowance, &r->write_max) < 0) {
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
    int64_t out = r->allowance > 0 ? r->allowance * choices : 0;
    r->tokens = in + out;
    r->nusd = in_cost + budget_policy_nusd(out, p_out);
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
    return BUDGET_ADMITTED;
refused:
    pthread_mutex_unlock(&b->mu);
    return BUDGET_REFUSED;
}

static int mem_settle(struct budget_store *st, struct budget_resv *r, int64_t tokens,
                      int64_t nusd, double now, struct budget_alert *alerts, int cap)
{
    struct budget_book *b = ((struct mem_store *)st)->b;
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

/* ---- limits, resets and the view ------------------------------------------------------ */

static int mem_set_limit(struct budget_store *st, int scope, enum conf_window w,
                         struct conf_limit limit)
{
    struct budget_book *b = ((struct mem_store *)st)->b;

    if (scope < 0 || scope >= budget_nscopes(b) || (unsigned)w >= CONF_WIN__COUNT)
        return -1;
    pthread_mutex_lock(&b->mu);
    b->s[scope].lim[w] = limit;
    b->s[scope].alerted[w] = 0;
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static int mem_reset(struct budget_store *st, int scope, enum conf_window w, double now)
{
    struct budget_book *b = ((struct mem_store *)st)->b;

    if (scope < 0 || scope >= budget_nscopes(b) || (unsigned)w >= CONF_WIN__COUNT)
        return -1;
    pthread_mutex_lock(&b->mu);
    budget_roll(b, &b->s[scope], w, now);
    b->s[scope].used_t[w] = 0;
    b->s[scope].used_n[w] = 0;
    b->s[scope].alerted[w] = 0;
    pthread_mutex_unlock(&b->mu);
    return 0;
}

/* Calls cb for scope i's windows (those with a limit unless all). Under b->mu. */
static void peek_one(struct budget_book *b, int i, double now, int all,
                     void (*cb)(void *arg, const struct budget_view *v), void *arg)
{
    struct bscope *s = &b->s[i];

    for (int w = 0; w < CONF_WIN__COUNT; w++) {
        struct conf_limit lim = s->lim[w];
        lim.tokens = budget_policy_agent_limit(&s->pol, (enum conf_window)w, lim.tokens);
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

static void mem_peek(struct budget_store *st, double now, int all,
                     void (*cb)(void *arg, const struct budget_view *v), void *arg)
{
    struct budget_book *b = ((struct mem_store *)st)->b;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n; i++)
        if (!b->node[i].retired)
            peek_one(b, i, now, all, cb, arg);
    pthread_mutex_unlock(&b->mu);
}

static void mem_peek_scope(struct budget_store *st, int scope, double now,
                           void (*cb)(void *arg, const struct budget_view *v), void *arg)
{
    struct budget_book *b = ((struct mem_store *)st)->b;
    pthread_mutex_lock(&b->mu);
    if (scope >= 0 && scope < b->n)
        peek_one(b, scope, now, 0, cb, arg);
    pthread_mutex_unlock(&b->mu);
}

/* ---- loading the spend from the state store --------------------------------------------- */

struct load_ctx {
    struct budget_book *b;
    enum conf_window w;
    int only_scope; /* >= 0: a reset scope, whose window is summed again */
};

static void load_spend(void *arg, const char *agent, int64_t tokens, int64_t nusd)
{
    struct load_ctx *x = arg;
    int a = budget_find_at(x->b, CONF_LEVEL_AGENT, agent);

    if (a < 0 || x->b->node[a].retired)
        return; /* an agent no longer in the config */
    for (int s = a; s >= 0; s = x->b->node[s].parent) {
        if (x->only_scope >= 0 && s != x->only_scope)
            continue;
        x->b->s[s].used_t[x->w] += tokens;
        x->b->s[s].used_n[x->w] += nusd;
    }
}

struct reset_ctx {
    struct budget_book *b;
    double *latest; /* by scope * CONF_WIN__COUNT + window */
};

static void load_reset(void *arg, const char *scope, const char *window, double t)
{
    struct reset_ctx *x = arg;
    int s = budget_find_scope(x->b, scope), w = conf_window_parse(window);

    if (s >= 0 && w >= 0 && t > x->latest[s * CONF_WIN__COUNT + w])
        x->latest[s * CONF_WIN__COUNT + w] = t;
}

static int mem_load(struct budget_store *st, const struct budget_state *state, double now,
                    char *err, size_t errlen)
{
    struct budget_book *b = ((struct mem_store *)st)->b;
    struct load_ctx x = {.b = b, .only_scope = -1};
    int n = budget_nscopes(b);
    double *latest = calloc((size_t)n * CONF_WIN__COUNT + 1, sizeof(double));
    struct reset_ctx rx = {.b = b, .latest = latest};

    if (latest == NULL || state->ops->resets_load(state->ctx, load_reset, &rx) < 0)
        goto fail;
    for (int w = 0; w < CONF_WIN__COUNT; w++) {
        double start, end;
        budget_window_bounds(b->conf->tz, (enum conf_window)w, now, &start, &end);
        x.w = (enum conf_window)w;
        if (state->ops->spend_since(state->ctx, start, load_spend, &x) < 0)
            goto fail;
        for (int s = 0; s < n; s++) {
            double t = latest[s * CONF_WIN__COUNT + w];
            if (t <= start)
                continue;
            /* reset within this window: only what came after the reset counts */
            b->s[s].used_t[w] = b->s[s].used_n[w] = 0;
            x.only_scope = s;
            if (state->ops->spend_since(state->ctx, t, load_spend, &x) < 0)
                goto fail;
            x.only_scope = -1;
        }
    }
    free(latest);
    return 0;
fail:
    free(latest);
    snprintf(err, errlen, "cannot read the ledger's spend");
    return -1;
}

static void mem_free(struct budget_store *st)
{
    free(st);
}

static const struct budget_store_ops mem_ops = {
    .name = "memory",
    .reserve = mem_reserve,
    .settle = mem_settle,
    .peek = mem_peek,
    .peek_scope = mem_peek_scope,
    .set_limit = mem_set_limit,
    .reset = mem_reset,
    .load = mem_load,
    .free = mem_free,
};

struct budget_store *budget_store_mem_new(struct budget_book *b)
{
    struct mem_store *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->base.ops = &mem_ops;
    m->b = b;
    return &m->base;
}
