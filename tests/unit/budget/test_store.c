/*
 * Unit tests of the budget store through its interface (gate/budget/store.h), as a second store
 * (a networked one) would be held to it: the in-memory store answers at once, holds and gives
 * back on every scope of the path, refuses past a limit it was given, resets a window, shows
 * what it holds, and loads its spend from a state store (here a test double of the ledger,
 * gate/budget/bstate.h). A store that answers later (BUDGET_PENDING) hands its answer to the
 * caller's worker through the continuation, and budget_reserve_async passes it on. The admin
 * changes made through the budget module are kept in the state store first and applied only
 * then: when the state store fails, nothing changes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "gate/budget/ledger.h"
#include "gate/budget/recsink.h"
#include "gate/budget/store.h"
#include "run_suite.h"
#include "tmpdb.h"

#define NOW 1781524800.0 /* 2026-06-15T12:00:00Z */

#define CONFIG                                                                                     \
    "providers:\n"                                                                                 \
    "  o:\n"                                                                                       \
    "    base_url: http://127.0.0.1:8000/v1\n"                                                     \
    "models:\n"                                                                                    \
    "  m: { provider: o }\n"                                                                       \
    "ledger: { path: /nonexistent/ledger.db }\n"                                                   \
    "org: acme\n"                                                                                  \
    "departments:\n"                                                                               \
    "  research:\n"                                                                                \
    "    teams:\n"                                                                                 \
    "      search: { agents: [crawler-1, crawler-2] }\n"                                           \
    "budgets:\n"                                                                                   \
    "  - { scope: team:search, window: day, tokens: 10000 }\n"

static struct conf *conf;
static struct budget_book *book;
static int c1, c2, team, org;

static void setup(void)
{
    char err[400] = "";

    conf = conf_load_string(CONFIG, strlen(CONFIG), "t.yaml", err, sizeof(err));
    ck_assert_msg(conf != NULL, "%s", err);
    book = budget_book_new(conf, NULL, NOW, err, sizeof(err));
    ck_assert_msg(book != NULL, "%s", err);
    c1 = budget_find_scope(book, "agent:crawler-1");
    c2 = budget_find_scope(book, "agent:crawler-2");
    team = budget_find_scope(book, "team:search");
    org = budget_find_scope(book, "org");
    ck_assert(c1 >= 0 && c2 >= 0 && team >= 0 && org == 0);
}

static void teardown(void)
{
    budget_book_free(book);
    conf_unref(conf);
}

static struct budget_ask chat(int agent, int64_t input, int64_t max_output)
{
    return (struct budget_ask){.agent = agent, .input = input, .generates = 1,
                               .max_output = max_output, .choices = 1, .model_cap = -1};
}

struct peek_one {
    int scope;
    enum conf_window w;
    struct budget_view v;
    int found;
};

static void peek_cb(void *arg, const struct budget_view *v)
{
    struct peek_one *p = arg;

    if (v->scope == p->scope && v->window == p->w) {
        p->v = *v;
        p->found++;
    }
}

static struct budget_view peek(struct budget_store *st, int scope, enum conf_window w)
{
    struct peek_one p = {.scope = scope, .w = w};

    st->ops->peek(st, NOW, 1, peek_cb, &p);
    ck_assert_int_eq(p.found, 1);
    return p.v;
}

START_TEST(memory_store_answers_at_once)
{
    struct budget_store *st = budget_book_store(book);
    struct budget_ask a = chat(c1, 1000, 500);
    struct budget_resv r;
    struct budget_refusal why;

    ck_assert_str_eq(st->ops->name, "memory");
    ck_assert_int_eq(st->ops->reserve(st, &a, NOW, &r, &why, NULL), BUDGET_ADMITTED);
    ck_assert(r.held && r.tokens >= 1500);
    /* held on every scope of the path, and on nothing else */
    ck_assert_int_eq(peek(st, c1, CONF_WIN_DAY).reserved_tokens, r.tokens);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).reserved_tokens, r.tokens);
    ck_assert_int_eq(peek(st, org, CONF_WIN_DAY).reserved_tokens, r.tokens);
    ck_assert_int_eq(peek(st, c2, CONF_WIN_DAY).reserved_tokens, 0);
    ck_assert_int_eq(st->ops->settle(st, &r, 1234, 0, NOW, NULL, 0), 0);
    ck_assert(!r.held);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).reserved_tokens, 0);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).used_tokens, 1234);
    ck_assert_int_eq(peek(st, c2, CONF_WIN_DAY).used_tokens, 0);
    /* a settled reservation settles no more */
    st->ops->settle(st, &r, 1234, 0, NOW, NULL, 0);
    ck_assert_int_eq(peek(st, org, CONF_WIN_DAY).used_tokens, 1234);
    /* the async face answers at once too, continuation or not */
    struct budget_cont k = {0};
    ck_assert_int_eq(budget_reserve_async(book, &a, NOW, &r, &why, &k), BUDGET_ADMITTED);
    st->ops->settle(st, &r, 0, 0, NOW, NULL, 0);
}
END_TEST

START_TEST(limits_and_resets)
{
    struct budget_store *st = budget_book_store(book);
    struct budget_ask a = chat(c2, 3000, 100);
    struct budget_resv r;
    struct budget_refusal why;

    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).limit.tokens, 10000);
    ck_assert_int_eq(st->ops->set_limit(st, team, CONF_WIN_DAY, (struct conf_limit){2000, -1}), 0);
    ck_assert_int_eq(st->ops->reserve(st, &a, NOW, &r, &why, NULL), BUDGET_REFUSED);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.scope, team);
    ck_assert_int_eq(why.limit, 2000);
    ck_assert(!r.held);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).reserved_tokens, 0);
    ck_assert_int_eq(st->ops->set_limit(st, team, CONF_WIN_DAY, (struct conf_limit){-1, -1}), 0);
    ck_assert_int_eq(st->ops->reserve(st, &a, NOW, &r, &why, NULL), BUDGET_ADMITTED);
    st->ops->settle(st, &r, 3100, 0, NOW, NULL, 0);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).used_tokens, 3100);
    ck_assert_int_eq(st->ops->reset(st, team, CONF_WIN_DAY, NOW), 0);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).used_tokens, 0);
    /* only the scope reset: the agent and the org keep theirs */
    ck_assert_int_eq(peek(st, c2, CONF_WIN_DAY).used_tokens, 3100);
    ck_assert_int_eq(peek(st, org, CONF_WIN_DAY).used_tokens, 3100);
    /* unknown scopes and windows are refused */
    ck_assert_int_eq(st->ops->reset(st, 999, CONF_WIN_DAY, NOW), -1);
    ck_assert_int_eq(st->ops->set_limit(st, team, CONF_WIN__COUNT, (struct conf_limit){1, 1}), -1);
}
END_TEST

/* ---- a state store double: what the ledger would hold ----------------------------------- */

struct fake_state {
    int fail;            /* every write fails */
    int budget_sets, resets, scopes, keys, revokes;
    char last_scope[100], last_window[20];
    int64_t last_tokens;
};

static int f_scopes_load(void *ctx, void (*cb)(void *, const char *, const char *, const char *),
                         void *arg)
{
    return 0;
}

static int f_keys_load(void *ctx, void (*cb)(void *, const struct ledger_key *), void *arg)
{
    return 0;
}

static int f_budgets_load(void *ctx, void (*cb)(void *, const char *, const char *, int64_t, int64_t),
                          void *arg)
{
    return 0;
}

static int f_resets_load(void *ctx, void (*cb)(void *, const char *, const char *, double),
                         void *arg)
{
    /* team:search's day was reset an hour ago */
    cb(arg, "team:search", "day", NOW - 3600);
    return 0;
}

static int f_spend_since(void *ctx, double since,
                         void (*cb)(void *, const char *, int64_t, int64_t), void *arg)
{
    /* crawler-1 spent 100 tokens two hours ago and 40 half an hour ago */
    if (since <= NOW - 7200)
        cb(arg, "crawler-1", 100, 0);
    if (since <= NOW - 1800)
        cb(arg, "crawler-1", 40, 0);
    cb(arg, "gone-agent", 5000, 0); /* an agent the config no longer has */
    return 0;
}

static int f_scope_add(void *ctx, const char *level, const char *name, const char *parent,
                       double t)
{
    struct fake_state *f = ctx;

    f->scopes++;
    return f->fail ? -1 : 0;
}

static int f_key_insert(void *ctx, const struct ledger_key *k)
{
    struct fake_state *f = ctx;

    f->keys++;
    return f->fail ? -1 : 0;
}

static int f_key_revoke(void *ctx, const char *id, double t)
{
    struct fake_state *f = ctx;

    f->revokes++;
    return f->fail ? -1 : 1; /* no row: a key of the config */
}

static int f_budget_set(void *ctx, const char *scope, const char *window, int64_t tokens,
                        int64_t nusd)
{
    struct fake_state *f = ctx;

    f->budget_sets++;
    snprintf(f->last_scope, sizeof(f->last_scope), "%s", scope);
    snprintf(f->last_window, sizeof(f->last_window), "%s", window);
    f->last_tokens = tokens;
    return f->fail ? -1 : 0;
}

static int f_reset_add(void *ctx, const char *scope, const char *window, double t)
{
    struct fake_state *f = ctx;

    f->resets++;
    return f->fail ? -1 : 0;
}

static const struct budget_state_ops fake_ops = {
    .scopes_load = f_scopes_load,
    .keys_load = f_keys_load,
    .budgets_load = f_budgets_load,
    .resets_load = f_resets_load,
    .spend_since = f_spend_since,
    .scope_add = f_scope_add,
    .key_insert = f_key_insert,
    .key_revoke = f_key_revoke,
    .budget_set = f_budget_set,
    .reset_add = f_reset_add,
};

START_TEST(load_from_state)
{
    struct fake_state f = {0};
    struct budget_state state = {.ops = &fake_ops, .ctx = &f};
    struct budget_store *st = budget_book_store(book);
    char err[300] = "";

    ck_assert_msg(st->ops->load(st, &state, NOW, err, sizeof(err)) == 0, "%s", err);
    /* the day holds both spends; the team's day only what came after its reset */
    ck_assert_int_eq(peek(st, c1, CONF_WIN_DAY).used_tokens, 140);
    ck_assert_int_eq(peek(st, org, CONF_WIN_DAY).used_tokens, 140);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).used_tokens, 40);
    /* the hour began at NOW (12:00): neither; the month: both */
    ck_assert_int_eq(peek(st, c1, CONF_WIN_HOUR).used_tokens, 0);
    ck_assert_int_eq(peek(st, c1, CONF_WIN_MONTH).used_tokens, 140);
}
END_TEST

/* ---- a store that answers later ----------------------------------------------------------- */

struct parked {
    const struct budget_ask *ask;
    double now;
    struct budget_resv *r;
    struct budget_refusal *why;
    struct budget_cont k;
};

struct later_store {
    struct budget_store base;
    struct budget_store *inner; /* the decisions: the memory store's */
    struct parked q[8];
    int nq;
};

static enum budget_rc later_reserve(struct budget_store *st, const struct budget_ask *ask,
                                    double now, struct budget_resv *r, struct budget_refusal *why,
                                    const struct budget_cont *k)
{
    struct later_store *l = (struct later_store *)st;

    if (k == NULL || k->post == NULL || l->nq == 8) {
        /* a caller that cannot wait: answer now */
        return l->inner->ops->reserve(l->inner, ask, now, r, why, NULL);
    }
    l->q[l->nq++] = (struct parked){ask, now, r, why, *k};
    return BUDGET_PENDING;
}

static int later_settle(struct budget_store *st, struct budget_resv *r, int64_t t, int64_t n,
                        double now, struct budget_alert *a, int cap)
{
    struct budget_store *in = ((struct later_store *)st)->inner;
    return in->ops->settle(in, r, t, n, now, a, cap);
}

static void later_peek(struct budget_store *st, double now, int all,
                       void (*cb)(void *, const struct budget_view *), void *arg)
{
    struct budget_store *in = ((struct later_store *)st)->inner;
    in->ops->peek(in, now, all, cb, arg);
}

static int later_set_limit(struct budget_store *st, int s, enum conf_window w,
                           struct conf_limit lim)
{
    struct budget_store *in = ((struct later_store *)st)->inner;
    return in->ops->set_limit(in, s, w, lim);
}

static int later_reset(struct budget_store *st, int s, enum conf_window w, double now)
{
    struct budget_store *in = ((struct later_store *)st)->inner;
    return in->ops->reset(in, s, w, now);
}

static int later_load(struct budget_store *st, const struct budget_state *state, double now,
                      char *err, size_t errlen)
{
    struct budget_store *in = ((struct later_store *)st)->inner;
    return in->ops->load(in, state, now, err, errlen);
}

static void later_free(struct budget_store *st)
{
    struct later_store *l = (struct later_store *)st;

    l->inner->ops->free(l->inner);
    free(l);
}

static const struct budget_store_ops later_ops = {
    .name = "later", .reserve = later_reserve, .settle = later_settle, .peek = later_peek,
    .set_limit = later_set_limit, .reset = later_reset, .load = later_load, .free = later_free,
};

/* The "network" answers: each parked reservation is decided and its answer posted. */
struct answer {
    struct parked p;
    enum budget_rc rc;
};

/* A worker's completion queue, drained by its loop. */
struct worker_q {
    void (*fn[8])(void *);
    void *arg[8];
    int n;
    int posts;
};

static int post(void *worker, void (*fn)(void *), void *arg)
{
    struct worker_q *w = worker;

    if (w->n == 8)
        return -1;
    w->fn[w->n] = fn;
    w->arg[w->n++] = arg;
    w->posts++;
    return 0;
}

static void deliver(void *arg)
{
    struct answer *a = arg;

    a->p.k.done(a->p.k.arg, a->rc);
}

struct req {
    int decided;
    enum budget_rc rc;
    struct budget_resv r;
    struct budget_refusal why;
};

static void on_decided(void *arg, enum budget_rc rc)
{
    struct req *q = arg;

    q->decided++;
    q->rc = rc;
}

START_TEST(pending_answer_comes_to_the_worker)
{
    struct later_store *l = calloc(1, sizeof(*l));
    struct worker_q w = {0};
    struct answer ans[2];
    struct req q1 = {0}, q2 = {0};

    l->base.ops = &later_ops;
    l->inner = budget_store_mem_new(book);
    ck_assert_ptr_nonnull(l->inner);
    budget_book_set_store(book, &l->base);
    ck_assert_ptr_eq(budget_book_store(book), &l->base);

    struct budget_ask a1 = chat(c1, 1000, 100), a2 = chat(c2, 50000, 100);
    struct budget_cont k1 = {.post = post, .worker = &w, .done = on_decided, .arg = &q1};
    struct budget_cont k2 = {.post = post, .worker = &w, .done = on_decided, .arg = &q2};
    ck_assert_int_eq(budget_reserve_async(book, &a1, NOW, &q1.r, &q1.why, &k1), BUDGET_PENDING);
    ck_assert_int_eq(budget_reserve_async(book, &a2, NOW, &q2.r, &q2.why, &k2), BUDGET_PENDING);
    ck_assert_int_eq(q1.decided + q2.decided, 0);
    /* the store decides (on its own thread, in a real one) and posts to the worker */
    for (int i = 0; i < l->nq; i++) {
        struct parked *p = &l->q[i];
        ans[i].p = *p;
        ans[i].rc = l->inner->ops->reserve(l->inner, p->ask, p->now, p->r, p->why, NULL);
        ck_assert_int_eq(p->k.post(p->k.worker, deliver, &ans[i]), 0);
    }
    ck_assert_int_eq(q1.decided + q2.decided, 0); /* nothing runs until the worker's loop does */
    for (int i = 0; i < w.n; i++)
        w.fn[i](w.arg[i]);
    ck_assert_int_eq(w.posts, 2);
    ck_assert_int_eq(q1.decided, 1);
    ck_assert_int_eq(q1.rc, BUDGET_ADMITTED);
    ck_assert(q1.r.held);
    ck_assert_int_eq(q2.decided, 1);
    ck_assert_int_eq(q2.rc, BUDGET_REFUSED);
    ck_assert_int_eq(q2.why.scope, team);
    /* and budget_reserve, which cannot wait, still gets an answer at once */
    struct budget_resv r;
    struct budget_refusal why;
    ck_assert_int_eq(budget_reserve(book, &a1, NOW, &r, &why), 0);
    budget_settle(book, &r, 10, 0, NOW, NULL, 0);
    budget_settle(book, &q1.r, 1000, 0, NOW, NULL, 0);
    ck_assert_int_eq(budget_reserved_total(book), 0);
    ck_assert_int_eq(peek(&l->base, team, CONF_WIN_DAY).used_tokens, 1010);
}
END_TEST

/* ---- admin changes: kept, then applied --------------------------------------------------- */

struct key_find {
    const unsigned char *hash;
    int found, agent, revoked;
};

static void key_cb(void *arg, const unsigned char hash[32], int agent, int revoked)
{
    struct key_find *k = arg;

    if (memcmp(hash, k->hash, 32) == 0) {
        k->found++;
        k->agent = agent;
        k->revoked = revoked;
    }
}

START_TEST(admin_keeps_then_applies)
{
    char err[300];
    int scope = -1;
    unsigned char hash[32];

    /* no ledger: budgets and resets apply, keys are refused (a restart would forget them) */
    ck_assert_int_eq(budget_admin_set_limit(book, team, CONF_WIN_DAY,
                                            (struct conf_limit){500, -1}, err, sizeof(err)),
                     BUDGET_ADMIN_OK);
    ck_assert_int_eq(budget_limit(book, team, CONF_WIN_DAY).tokens, 500);
    memset(hash, 7, sizeof(hash));
    ck_assert_int_eq(budget_admin_add_key(book, hash, c1, NOW, err, sizeof(err)),
                     BUDGET_ADMIN_STORE);
    ck_assert_msg(strstr(err, "ledger") != NULL, "%s", err);
    budget_book_free(book);

    /* a state store that fails: nothing changes */
    struct fake_state f = {.fail = 1};
    char e2[400] = "";
    book = budget_book_open(conf, &(struct budget_state){&fake_ops, &f}, NOW, e2, sizeof(e2));
    ck_assert_msg(book != NULL, "%s", e2);
    /* opened from it: its spend is loaded (crawler-1: 140 today, the team 40 since its reset) */
    ck_assert_int_eq(peek(budget_book_store(book), team, CONF_WIN_DAY).used_tokens, 40);
    ck_assert_int_eq(budget_admin_set_limit(book, team, CONF_WIN_DAY,
                                            (struct conf_limit){500, -1}, err, sizeof(err)),
                     BUDGET_ADMIN_STORE);
    ck_assert_int_eq(budget_limit(book, team, CONF_WIN_DAY).tokens, 10000);
    ck_assert_int_eq(budget_admin_add_scope(book, CONF_LEVEL_AGENT, "crawler-3", team, NOW,
                                            &scope, err, sizeof(err)),
                     BUDGET_ADMIN_STORE);
    ck_assert_int_eq(budget_find_scope(book, "agent:crawler-3"), -1);
    ck_assert_int_eq(budget_admin_add_key(book, hash, c1, NOW, err, sizeof(err)),
                     BUDGET_ADMIN_STORE);
    ck_assert_int_eq(f.budget_sets + f.scopes + f.keys, 3);

    /* and one that works: kept, then applied */
    f.fail = 0;
    ck_assert_int_eq(budget_admin_set_limit(book, team, CONF_WIN_DAY,
                                            (struct conf_limit){500, -1}, err, sizeof(err)),
                     BUDGET_ADMIN_OK);
    ck_assert_str_eq(f.last_scope, "team:search");
    ck_assert_str_eq(f.last_window, "day");
    ck_assert_int_eq(f.last_tokens, 500);
    ck_assert_int_eq(budget_limit(book, team, CONF_WIN_DAY).tokens, 500);
    ck_assert_int_eq(budget_admin_add_scope(book, CONF_LEVEL_AGENT, "crawler-3", team, NOW,
                                            &scope, err, sizeof(err)),
                     BUDGET_ADMIN_OK);
    ck_assert_int_eq(budget_find_scope(book, "agent:crawler-3"), scope);
    ck_assert_int_eq(budget_admin_add_scope(book, CONF_LEVEL_AGENT, "crawler-3", team, NOW,
                                            &scope, err, sizeof(err)),
                     BUDGET_ADMIN_EXISTS);
    ck_assert_int_eq(budget_admin_add_key(book, hash, scope, NOW, err, sizeof(err)),
                     BUDGET_ADMIN_OK);
    char key_id[24];
    budget_key_id(hash, key_id);
    struct key_find kf = {.hash = hash};
    budget_keys_each(book, key_cb, &kf);
    ck_assert_int_eq(kf.found, 1);
    ck_assert_int_eq(kf.agent, scope);
    ck_assert_int_eq(kf.revoked, 0);
    ck_assert_int_eq(budget_admin_revoke_key(book, "key_000000000000", NOW, err, sizeof(err)),
                     BUDGET_ADMIN_NOT_FOUND);
    f.fail = 1;
    ck_assert_int_eq(budget_admin_revoke_key(book, key_id, NOW, err, sizeof(err)),
                     BUDGET_ADMIN_STORE);
    kf.found = 0;
    budget_keys_each(book, key_cb, &kf);
    ck_assert_int_eq(kf.revoked, 0); /* not kept: still works */
    f.fail = 0;
    ck_assert_int_eq(budget_admin_revoke_key(book, key_id, NOW, err, sizeof(err)),
                     BUDGET_ADMIN_OK);
    kf.found = 0;
    budget_keys_each(book, key_cb, &kf);
    ck_assert_int_eq(kf.revoked, 1);
    /* a key with no row (one of the config) gets one, revoked */
    ck_assert_int_eq(f.revokes, 2);
    ck_assert_int_eq(f.keys, 3);
    ck_assert_int_eq(budget_admin_reset(book, team, CONF_WIN_DAY, NOW, err, sizeof(err)),
                     BUDGET_ADMIN_OK);
    ck_assert_int_eq(f.resets, 1);
}
END_TEST

/* ---- the ledger's two faces: records in through the sink, spend out through the state ---- */

static void on_durable(void *arg, int ok)
{
    int *n = arg;

    __atomic_add_fetch(n, ok ? 1 : 1000, __ATOMIC_SEQ_CST);
}

static void sum_spend(void *arg, const char *agent, int64_t tokens, int64_t nusd)
{
    int64_t *sum = arg;

    if (strcmp(agent, "crawler-1") == 0)
        *sum += tokens;
}

START_TEST(ledger_sink_then_state)
{
    char err[400] = "";
    struct rec_sink sink;
    struct budget_state state;
    int durable = 0;

    tmpdb_make("store");
    struct ledger *l = ledger_open(tmpdb_path, LEDGER_SYNC_NORMAL, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    ledger_sink(l, &sink);
    ledger_state(l, &state);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "req-%d", i);
        struct ledger_rec rec = {
            .ts = NOW - 600 + i, .id = id, .agent = "crawler-1", .team = "search",
            .department = "research", .endpoint = "/v1/chat/completions", .model = "m",
            .served_model = "m", .provider = "o", .status = 200, .in_own = 10, .out_own = 0,
            .in_usage = 10, .out_usage = 0, .tokens_charged = 100 + i, .cost_nusd = 0,
            .reserved_tokens = 200, .decision = "admitted", .done = on_durable, .arg = &durable};
        ck_assert_int_eq(sink.ops->submit(sink.ctx, &rec), 0);
    }
    /* the writer commits in the background: wait for it (bounded) */
    for (int i = 0; i < 1000 && (sink.ops->pending(sink.ctx) > 0 ||
                                 __atomic_load_n(&durable, __ATOMIC_SEQ_CST) < 3); i++)
        usleep(10000);
    ck_assert_int_eq(__atomic_load_n(&durable, __ATOMIC_SEQ_CST), 3);
    ck_assert_int_eq(sink.ops->failing(sink.ctx), 0);
    int64_t sum = 0;
    ck_assert_int_eq(state.ops->spend_since(state.ctx, NOW - 3600, sum_spend, &sum), 0);
    ck_assert_int_eq(sum, 303);
    /* a book's store loads the same through the state store */
    struct budget_store *st = budget_book_store(book);
    ck_assert_msg(st->ops->load(st, &state, NOW, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(peek(st, team, CONF_WIN_DAY).used_tokens, 303);
    ledger_close(l);
    tmpdb_remove();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, memory_store_answers_at_once);
    tcase_add_test(tc, limits_and_resets);
    tcase_add_test(tc, load_from_state);
    tcase_add_test(tc, pending_answer_comes_to_the_worker);
    tcase_add_test(tc, admin_keeps_then_applies);
    tcase_add_test(tc, ledger_sink_then_state);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
