/*
 * Unit tests for budget_book_rebind (gate/budget/budgetrebind.c): what an operator who reloads
 * the config expects of the budgets. Spend settled before the reload is kept; a budget the new
 * config sets is enforced on the next request; a request that reserved before the reload settles
 * on the counters it reserved on, even when its agent moved or left; a scope and a key the new
 * config adds work at once, and a key it drops stops; the admin API's budgets and keys stay; a
 * rebind that fails leaves the book as it was; and workers reserving and settling while the
 * config flips back and forth never lose or double a token.
 *
 * Times are passed in: NOW is 2026-06-15T12:00:00Z, far from the start or end of any day.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "run_suite.h"

#define NOW 1781524800.0

/* acme -> research -> search -> crawler-1, crawler-2
 *                  -> eval   -> judge                 */
#define HEAD                                                                                       \
    "providers:\n"                                                                                 \
    "  o:\n"                                                                                       \
    "    base_url: http://127.0.0.1:8000/v1\n"                                                     \
    "models:\n"                                                                                    \
    "  m: { provider: o }\n"                                                                       \
    "ledger: { path: /nonexistent/ledger.db }\n"                                                   \
    "org: acme\n"

#define TREE                                                                                       \
    "departments:\n"                                                                               \
    "  research:\n"                                                                                \
    "    teams:\n"                                                                                 \
    "      search: { agents: [crawler-1, crawler-2] }\n"                                           \
    "      eval: { agents: [judge] }\n"

#define KEYS                                                                                       \
    "keys:\n"                                                                                      \
    "  tg-test-alpha-0001: crawler-1\n"                                                            \
    "  tg-test-judge-0002: judge\n"

static struct conf *load(const char *text)
{
    char err[512] = "";
    struct conf *c = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));

    ck_assert_msg(c != NULL, "config did not load: %s", err);
    return c;
}

static struct budget_book *book(const struct conf *c)
{
    char err[512] = "";
    struct budget_book *b = budget_book_new(c, NULL, NOW, err, sizeof(err));

    ck_assert_msg(b != NULL, "budget_book_new: %s", err);
    return b;
}

static void rebind(struct budget_book *b, const struct conf *c, double now)
{
    char err[512] = "";

    ck_assert_msg(budget_book_rebind(b, c, now, err, sizeof(err)) == 0, "rebind: %s", err);
}

static int scope(struct budget_book *b, const char *label)
{
    int s = budget_find_scope(b, label);

    ck_assert_msg(s >= 0, "no scope %s", label);
    return s;
}

static struct budget_ask chat(int agent, int64_t input, int64_t max_output)
{
    return (struct budget_ask){.agent = agent, .input = input, .generates = 1,
                               .max_output = max_output, .choices = 1, .model_cap = -1};
}

struct view_find {
    int scope;
    enum conf_window w;
    struct budget_view v;
    int found;
};

static void view_cb(void *arg, const struct budget_view *v)
{
    struct view_find *f = arg;

    if (v->scope == f->scope && v->window == f->w) {
        f->v = *v;
        f->found++;
    }
}

/* The book's view of a scope's window, as the admin API lists it; found is 0 when not listed. */
static struct view_find view(struct budget_book *b, int s, enum conf_window w)
{
    struct view_find f = {.scope = s, .w = w};

    budget_each(b, NOW, 1, view_cb, &f);
    return f;
}

static int64_t used(struct budget_book *b, int s)
{
    struct view_find f = view(b, s, CONF_WIN_DAY);

    ck_assert_int_eq(f.found, 1);
    return f.v.used_tokens;
}

static int64_t reserved(struct budget_book *b, int s)
{
    struct view_find f = view(b, s, CONF_WIN_DAY);

    ck_assert_int_eq(f.found, 1);
    return f.v.reserved_tokens;
}

static struct budget_resv admit(struct budget_book *b, const struct budget_ask *a)
{
    struct budget_resv r;
    struct budget_refusal why = {0};

    ck_assert_msg(budget_reserve(b, a, NOW, &r, &why) == 0,
                  "refused: scope %d window %d limit %lld used %lld reserved %lld needed %lld",
                  why.scope, why.window, (long long)why.limit, (long long)why.used,
                  (long long)why.reserved, (long long)why.needed);
    return r;
}

static struct budget_refusal refuse(struct budget_book *b, const struct budget_ask *a)
{
    struct budget_resv r;
    struct budget_refusal why = {0};

    ck_assert_msg(budget_reserve(b, a, NOW, &r, &why) == -1, "admitted (allowance %lld)",
                  (long long)r.allowance);
    return why;
}

/* A finished request of agent that used tokens. */
static void spend(struct budget_book *b, int agent, int64_t tokens)
{
    struct budget_ask a = chat(agent, 0, 0);
    struct budget_resv r;

    a.generates = 0;
    r = admit(b, &a);
    budget_settle(b, &r, tokens, 0, NOW, NULL, 0);
}

static enum budget_auth auth(struct budget_book *b, const char *secret, int *agent)
{
    char id[24];
    int a = -1;
    enum budget_auth rc = budget_authenticate(b, secret, strlen(secret), &a, id);

    if (agent != NULL)
        *agent = a;
    return rc;
}

START_TEST(spend_kept)
{
    struct conf *c1 = load(HEAD TREE KEYS "budgets:\n"
                                          "  - { scope: team:search, window: day, tokens: 10000 }\n");
    /* the same tree written in another order, a new department first: indices shift */
    struct conf *c2 = load(HEAD "departments:\n"
                                "  ops:\n"
                                "    teams:\n"
                                "      infra: { agents: [bot] }\n"
                                "  research:\n"
                                "    teams:\n"
                                "      eval: { agents: [judge] }\n"
                                "      search: { agents: [crawler-2, crawler-1] }\n" KEYS
                                "budgets:\n"
                                "  - { scope: team:search, window: day, tokens: 20000 }\n");
    struct budget_book *b = book(c1);
    int c1a = scope(b, "agent:crawler-1"), team = scope(b, "team:search");
    int judge = scope(b, "agent:judge"), org = scope(b, "org");

    spend(b, c1a, 700);
    spend(b, judge, 50);
    rebind(b, c2, NOW);
    ck_assert_int_eq(scope(b, "agent:crawler-1"), c1a);
    ck_assert_int_eq(used(b, c1a), 700);
    ck_assert_int_eq(used(b, team), 700);
    ck_assert_int_eq(used(b, judge), 50);
    ck_assert_int_eq(used(b, org), 750);
    ck_assert_int_eq(view(b, team, CONF_WIN_DAY).v.limit.tokens, 20000);
    ck_assert_int_eq(used(b, scope(b, "team:infra")), 0);
    ck_assert_int_eq(budget_reserved_total(b), 0);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

START_TEST(new_budget_enforced)
{
    struct conf *c1 = load(HEAD TREE KEYS);
    struct conf *c2 = load(HEAD TREE KEYS "budgets:\n"
                                          "  - { scope: team:search, window: day, tokens: 1000 }\n");
    struct budget_book *b = book(c1);
    int c1a = scope(b, "agent:crawler-1"), c2a = scope(b, "agent:crawler-2");

    spend(b, c1a, 900);
    struct budget_ask a = chat(c2a, 100, 50);
    struct budget_resv r = admit(b, &a); /* no budget yet */
    budget_settle(b, &r, 0, 0, NOW, NULL, 0);
    rebind(b, c2, NOW);
    /* 900 used of 1,000: a request for 100 in and 50 out no longer fits */
    struct budget_refusal why = refuse(b, &a);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.scope, scope(b, "team:search"));
    ck_assert_int_eq(why.limit, 1000);
    ck_assert_int_eq(why.used, 900);
    /* and back: the old config lifts it again */
    rebind(b, c1, NOW);
    r = admit(b, &a);
    budget_settle(b, &r, 0, 0, NOW, NULL, 0);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

START_TEST(reservation_settles_on_its_scopes)
{
    struct conf *c1 = load(HEAD TREE KEYS);
    /* crawler-1 moves to eval; crawler-2 is gone */
    struct conf *c2 = load(HEAD "departments:\n"
                                "  research:\n"
                                "    teams:\n"
                                "      search: { agents: [bot] }\n"
                                "      eval: { agents: [judge, crawler-1] }\n"
                                "keys:\n"
                                "  tg-test-alpha-0001: crawler-1\n");
    struct budget_book *b = book(c1);
    int c1a = scope(b, "agent:crawler-1"), c2a = scope(b, "agent:crawler-2");
    int search = scope(b, "team:search"), eval = scope(b, "team:eval");
    struct budget_ask a1 = chat(c1a, 1000, 500), a2 = chat(c2a, 2000, 500);

    struct budget_resv r1 = admit(b, &a1), r2 = admit(b, &a2);
    ck_assert_int_eq(reserved(b, search), r1.tokens + r2.tokens);
    rebind(b, c2, NOW);
    /* reservations under way are still held where they were made */
    ck_assert_int_eq(reserved(b, search), r1.tokens + r2.tokens);
    ck_assert_int_eq(reserved(b, eval), 0);
    ck_assert_int_eq(budget_scope_parent(b, c1a), eval);
    /* crawler-2 is gone: not found, not admitted, its reservation still settles */
    ck_assert_int_eq(budget_find_scope(b, "agent:crawler-2"), -1);
    ck_assert_int_eq(budget_scope_retired(b, c2a), 1);
    ck_assert_int_eq(budget_scope_retired(b, c1a), 0);
    ck_assert_int_eq(view(b, c2a, CONF_WIN_DAY).found, 0); /* no longer listed */
    struct budget_refusal why = refuse(b, &a2);
    ck_assert_int_eq(why.scope, c2a);
    budget_settle(b, &r1, 1200, 0, NOW, NULL, 0);
    budget_settle(b, &r2, 2100, 0, NOW, NULL, 0);
    ck_assert_int_eq(reserved(b, search), 0);
    ck_assert_int_eq(reserved(b, eval), 0);
    ck_assert_int_eq(budget_reserved_total(b), 0);
    /* charged where they reserved: search has both, eval neither */
    ck_assert_int_eq(used(b, search), 3300);
    ck_assert_int_eq(used(b, eval), 0);
    ck_assert_int_eq(used(b, c1a), 1200);
    ck_assert_int_eq(used(b, scope(b, "org")), 3300);
    /* crawler-1's next request lands on eval */
    struct budget_resv r3 = admit(b, &a1);
    budget_settle(b, &r3, 10, 0, NOW, NULL, 0);
    ck_assert_int_eq(used(b, eval), 10);
    ck_assert_int_eq(used(b, search), 3300);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

START_TEST(new_scope_and_key)
{
    struct conf *c1 = load(HEAD TREE KEYS);
    struct conf *c2 = load(HEAD TREE "      infra: { agents: [bot] }\n"
                                     "keys:\n"
                                     "  tg-test-judge-0002: judge\n"
                                     "  tg-test-bot-0003: bot\n"
                                     "budgets:\n"
                                     "  - { scope: team:infra, window: day, tokens: 5000 }\n");
    struct budget_book *b = book(c1);
    int agent = -1;

    ck_assert_int_eq(auth(b, "tg-test-bot-0003", NULL), BUDGET_AUTH_UNKNOWN);
    ck_assert_int_eq(auth(b, "tg-test-alpha-0001", NULL), BUDGET_AUTH_OK);
    ck_assert_int_eq(budget_find_scope(b, "agent:bot"), -1);
    rebind(b, c2, NOW);
    ck_assert_int_eq(auth(b, "tg-test-bot-0003", &agent), BUDGET_AUTH_OK);
    ck_assert_int_eq(agent, scope(b, "agent:bot"));
    ck_assert_int_eq(budget_scope_parent(b, agent), scope(b, "team:infra"));
    /* the key c2 dropped stops working; the one it kept still works */
    ck_assert_int_eq(auth(b, "tg-test-alpha-0001", NULL), BUDGET_AUTH_UNKNOWN);
    ck_assert_int_eq(auth(b, "tg-test-judge-0002", NULL), BUDGET_AUTH_OK);
    /* the new team's budget holds */
    struct budget_ask a = chat(agent, 6000, 100);
    struct budget_refusal why = refuse(b, &a);
    ck_assert_int_eq(why.scope, scope(b, "team:infra"));
    ck_assert_int_eq(why.limit, 5000);
    a.input = 4000;
    a.max_output = 500;
    struct budget_resv r = admit(b, &a);
    budget_settle(b, &r, 4300, 0, NOW, NULL, 0);
    ck_assert_int_eq(used(b, scope(b, "team:infra")), 4300);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

START_TEST(admin_changes_stay)
{
    struct conf *c1 = load(HEAD TREE KEYS "budgets:\n"
                                          "  - { scope: team:eval, window: day, tokens: 100 }\n");
    struct conf *c2 = load(HEAD TREE "budgets:\n"
                                     "  - { scope: team:eval, window: day, tokens: 300 }\n"
                                     "  - { scope: team:search, window: day, tokens: 400 }\n");
    struct budget_book *b = book(c1);
    unsigned char hash[32];
    char err[200];
    int judge = scope(b, "agent:judge"), search = scope(b, "team:search");

    /* the admin API: eval's budget raised, a key for judge, a new agent under search */
    ck_assert_int_eq(budget_set_limit(b, scope(b, "team:eval"), CONF_WIN_DAY,
                                      (struct conf_limit){2000, -1}),
                     0);
    memset(hash, 0x5a, sizeof(hash));
    ck_assert_int_eq(budget_key_add(b, hash, judge), 0);
    int extra = budget_add_scope(b, CONF_LEVEL_AGENT, "extra", search, NOW, err, sizeof(err));
    ck_assert_msg(extra >= 0, "%s", err);
    rebind(b, c2, NOW);
    /* the override wins over the new config, as it does over a restart */
    ck_assert_int_eq(budget_limit(b, scope(b, "team:eval"), CONF_WIN_DAY).tokens, 2000);
    ck_assert_int_eq(budget_limit(b, search, CONF_WIN_DAY).tokens, 400);
    ck_assert_int_eq(scope(b, "agent:extra"), extra);
    struct budget_ask a = chat(extra, 10, 10);
    struct budget_resv r = admit(b, &a);
    budget_settle(b, &r, 20, 0, NOW, NULL, 0);
    /* the admin key is kept although no config lists it */
    char id[24];
    int agent = -1;
    budget_key_id(hash, id);
    ck_assert_int_eq(budget_key_revoke(b, id, hash, &agent), 0);
    ck_assert_int_eq(agent, judge);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

START_TEST(failed_rebind_changes_nothing)
{
    struct conf *c1 = load(HEAD TREE KEYS "budgets:\n"
                                          "  - { scope: team:search, window: day, tokens: 1000 }\n");
    /* an open gate: no org, so no budgets to carry over */
    struct conf *c2 = load("providers:\n"
                           "  o:\n"
                           "    base_url: http://127.0.0.1:8000/v1\n"
                           "models:\n"
                           "  m: { provider: o }\n");
    struct budget_book *b = book(c1);
    int c1a = scope(b, "agent:crawler-1"), team = scope(b, "team:search");
    char err[300] = "";

    spend(b, c1a, 600);
    struct budget_ask a = chat(c1a, 100, 50);
    struct budget_resv r = admit(b, &a);
    int n = budget_nscopes(b);
    ck_assert_int_eq(budget_book_rebind(b, c2, NOW, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "org") != NULL, "err: %s", err);
    ck_assert_int_eq(budget_nscopes(b), n);
    ck_assert_int_eq(used(b, team), 600);
    ck_assert_int_eq(reserved(b, team), r.tokens);
    ck_assert_int_eq(budget_limit(b, team, CONF_WIN_DAY).tokens, 1000);
    ck_assert_int_eq(auth(b, "tg-test-alpha-0001", NULL), BUDGET_AUTH_OK);
    budget_settle(b, &r, 100, 0, NOW, NULL, 0);
    ck_assert_int_eq(used(b, team), 700);
    ck_assert_int_eq(budget_reserved_total(b), 0);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

/* A config with many more scopes than the book has room for: the book grows its tables, and the
 * scopes it had keep their indices, names and spend. */
START_TEST(rebind_grows_the_book)
{
    enum { MANY = BUDGET_SCOPES_ADDED_MAX + 500 };
    struct conf *c1 = load(HEAD TREE KEYS);
    size_t cap = (size_t)MANY * 16 + 1024, len = 0;
    char *text = malloc(cap);

    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, cap - len, "%s%s%s", HEAD, TREE,
                            "      big:\n        agents: [");
    for (int i = 0; i < MANY; i++)
        len += (size_t)snprintf(text + len, cap - len, "%sbot-%d", i ? ", " : "", i);
    len += (size_t)snprintf(text + len, cap - len, "]\n%s", KEYS);
    ck_assert(len < cap);
    struct conf *c2 = load(text);
    free(text);
    struct budget_book *b = book(c1);
    int c1a = scope(b, "agent:crawler-1");
    const char *name_before = budget_scope_name(b, c1a);

    spend(b, c1a, 77);
    rebind(b, c2, NOW);
    ck_assert_int_ge(budget_nscopes(b), MANY);
    ck_assert_int_eq(scope(b, "agent:crawler-1"), c1a);
    ck_assert_str_eq(budget_scope_name(b, c1a), "crawler-1");
    ck_assert_str_eq(name_before, "crawler-1"); /* a name read before stays readable */
    ck_assert_int_eq(used(b, c1a), 77);
    int last = scope(b, "agent:bot-4595");
    ck_assert_int_eq(budget_scope_parent(b, last), scope(b, "team:big"));
    spend(b, last, 5);
    ck_assert_int_eq(used(b, scope(b, "org")), 82);
    /* back and forth: the bots retire, then come back with what they had */
    rebind(b, c1, NOW);
    ck_assert_int_eq(budget_find_scope(b, "agent:bot-4595"), -1);
    rebind(b, c2, NOW);
    ck_assert_int_eq(scope(b, "agent:bot-4595"), last);
    ck_assert_int_eq(used(b, last), 5);
    ck_assert_int_eq(auth(b, "tg-test-alpha-0001", NULL), BUDGET_AUTH_OK);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

/* ---- workers reserving and settling while the config flips ------------------------------- */

#define NTHREADS 4
#define ROUNDS 20000

struct worker {
    struct budget_book *b;
    int agent;
    int64_t charged;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < ROUNDS; i++) {
        struct budget_ask a = chat(w->agent, 10 + i % 5, 20);
        struct budget_resv r;
        struct budget_refusal why;

        if (budget_reserve(w->b, &a, NOW, &r, &why) < 0)
            continue;
        w->charged += 7;
        budget_settle(w->b, &r, 7, 0, NOW, NULL, 0);
    }
    return NULL;
}

START_TEST(rebind_under_load)
{
    struct conf *c1 = load(HEAD TREE KEYS "budgets:\n"
                                          "  - { scope: org, window: day, tokens: 100000000 }\n");
    /* crawler-2 and judge change teams, and a team appears */
    struct conf *c2 = load(HEAD "departments:\n"
                                "  research:\n"
                                "    teams:\n"
                                "      search: { agents: [crawler-1, judge] }\n"
                                "      eval: { agents: [crawler-2] }\n"
                                "      more: { agents: [bot] }\n" KEYS
                                "budgets:\n"
                                "  - { scope: org, window: day, tokens: 200000000 }\n");
    struct budget_book *b = book(c1);
    const char *names[NTHREADS] = {"agent:crawler-1", "agent:crawler-2", "agent:judge",
                                   "agent:crawler-1"};
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    int64_t charged = 0;

    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.b = b, .agent = scope(b, names[i])};
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int k = 0; k < 200; k++)
        rebind(b, k % 2 ? c1 : c2, NOW);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        charged += w[i].charged;
    }
    ck_assert_int_eq(budget_reserved_total(b), 0);
    ck_assert_int_eq(reserved(b, scope(b, "org")), 0);
    ck_assert_int_eq(used(b, scope(b, "org")), charged);
    ck_assert_int_eq(used(b, scope(b, "team:search")) + used(b, scope(b, "team:eval")), charged);
    ck_assert_int_eq(charged, (int64_t)NTHREADS * ROUNDS * 7);

    budget_book_free(b);
    conf_unref(c1);
    conf_unref(c2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rebind");
    TCase *tc = tcase_create("rebind");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spend_kept);
    tcase_add_test(tc, new_budget_enforced);
    tcase_add_test(tc, reservation_settles_on_its_scopes);
    tcase_add_test(tc, new_scope_and_key);
    tcase_add_test(tc, admin_changes_stay);
    tcase_add_test(tc, failed_rebind_changes_nothing);
    tcase_add_test(tc, rebind_grows_the_book);
    tcase_add_test(tc, rebind_under_load);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
