/*
 * Unit tests for gate/budget: what an operator would check of the budget gate. Reservations
 * land on every scope of an agent's path and refuse past the tightest budget, the output
 * allowance is cut to the room left, dollars are counted from the model's price, calendar
 * windows roll over at the right instants (UTC and Europe/Berlin), threads never overspend,
 * keys authenticate by their SHA-256, policies cascade down the tree, alerts fire once per
 * threshold and window, and a book rebuilt from the ledger carries spend, resets, overrides
 * and keys over a restart.
 *
 * Time is passed in, so every test picks its instants. T0 is 2026-03-31T23:59:30Z: 30 seconds
 * before a new minute, hour, day and month all begin (in UTC, the zone of a config without
 * 'timezone').
 */
#include <check.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "gate/budget/ledger.h"
#include "run_suite.h"
#include "tmpdb.h"

#define T0 1775001570.0 /* 2026-03-31T23:59:30Z */
#define T1 1775001600.0 /* 2026-04-01T00:00:00Z: T0 + 30 s */

/* Providers, a priced model, and the tree the tests share:
 *   acme -> research -> search -> crawler-1, crawler-2
 *                    -> eval   -> judge
 *        -> ops      -> infra  -> bot                          */
#define BASE                                                                                       \
    "providers:\n"                                                                                 \
    "  o:\n"                                                                                       \
    "    base_url: http://127.0.0.1:8000/v1\n"                                                     \
    "models:\n"                                                                                    \
    "  m:\n"                                                                                       \
    "    provider: o\n"                                                                            \
    "    price: { input: 2.50, output: 10.00 }\n"                                                  \
    "org: acme\n"                                                                                  \
    "departments:\n"                                                                               \
    "  research:\n"                                                                                \
    "    teams:\n"                                                                                 \
    "      search: { agents: [crawler-1, crawler-2] }\n"                                           \
    "      eval: { agents: [judge] }\n"                                                            \
    "  ops:\n"                                                                                     \
    "    teams:\n"                                                                                 \
    "      infra: { agents: [bot] }\n"                                                             \
    "keys:\n"                                                                                      \
    "  tg-test-alpha-0001: crawler-1\n"                                                            \
    "  sha256:296f4e92e98bae7c8324fcd5ad9e18ee8866ba6e3f2fac8e93b7edad02f86948: judge\n"           \
    "ledger: { path: /nonexistent/ledger.db }\n"                                                   \
    "alerts: { thresholds: [80, 95] }\n"

/* printf '%s' tg-hashed-secret-02 | sha256sum: the sha256: key above */
#define HASHED_SECRET "tg-hashed-secret-02"
/* printf '%s' tg-test-alpha-0001 | sha256sum starts 3544e59cd414 */
#define ALPHA_ID "key_3544e59cd414"

/* The zone the window tests pass to budget_window_bounds; a book takes its config's. */
static struct conf_tz *zone;

static void use_tz(const char *tz)
{
    char err[400] = "";

    conf_tz_free(zone);
    zone = conf_tz_load(tz, err, sizeof(err));
    ck_assert_msg(zone != NULL, "%s", err);
}

static double utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (double)timegm(&tm);
}

static struct conf *load(const char *text)
{
    char err[512] = "";
    struct conf *c = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));

    ck_assert_msg(c != NULL, "config did not load: %s", err);
    return c;
}

static struct budget_book *book(const struct conf *c, struct ledger *l, double now)
{
    char err[512] = "";
    struct budget_book *b = budget_book_new(c, l, now, err, sizeof(err));

    ck_assert_msg(b != NULL, "budget_book_new: %s", err);
    return b;
}

static int scope(const struct conf *c, const char *label)
{
    int s = conf_find_scope(c, label);

    ck_assert_msg(s >= 0, "no scope %s", label);
    return s;
}

/*
 * What budget_reserve holds for a counted input (gate/budget/budget.c, budget_reserve: "our count can
 * be short of the provider's: reserve a margin on it"): an exact count gets 1% plus 4 tokens
 * on top, an approximate one 12.5% plus 16.
 */
static int64_t held_input(int64_t input, int approximate)
{
    return input + (approximate ? input / 8 + 16 : input / 100 + 4);
}

/* A chat request of agent with input tokens and its own cap, no price. */
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

/* The book's view of a scope's window as of now (as the admin API shows it). */
static struct budget_view view(struct budget_book *b, int s, enum conf_window w, double now)
{
    struct view_find f = {.scope = s, .w = w};

    budget_each(b, now, 1, view_cb, &f);
    ck_assert_int_eq(f.found, 1);
    return f.v;
}

static int64_t used(struct budget_book *b, int s, enum conf_window w, double now)
{
    return view(b, s, w, now).used_tokens;
}

static int64_t reserved(struct budget_book *b, int s)
{
    return view(b, s, CONF_WIN_DAY, T0).reserved_tokens;
}

/* Reserves and asserts it was admitted. */
static struct budget_resv admit(struct budget_book *b, const struct budget_ask *a, double now)
{
    struct budget_resv r;
    struct budget_refusal why = {0};

    ck_assert_msg(budget_reserve(b, a, now, &r, &why) == 0,
                  "refused: scope %d window %d limit %lld used %lld reserved %lld needed %lld",
                  why.scope, why.window, (long long)why.limit, (long long)why.used,
                  (long long)why.reserved, (long long)why.needed);
    return r;
}

static struct budget_refusal refuse(struct budget_book *b, const struct budget_ask *a, double now)
{
    struct budget_resv r;
    struct budget_refusal why = {0};

    ck_assert_msg(budget_reserve(b, a, now, &r, &why) == -1, "admitted (allowance %lld)",
                  (long long)r.allowance);
    return why;
}

/* Reserves nothing but the input margin and charges tokens: spend as a finished request. */
static int spend(struct budget_book *b, int agent, int64_t tokens, int64_t nusd, double now,
                 struct budget_alert *alerts, int cap)
{
    struct budget_ask a = chat(agent, 0, 0);
    struct budget_resv r;

    a.generates = 0;
    r = admit(b, &a, now);
    return budget_settle(b, &r, tokens, nusd, now, alerts, cap);
}

/* ---- reservation arithmetic ---------------------------------------------------------------- */

START_TEST(reserve_on_every_scope)
{
    struct conf *c;
    struct budget_book *b;

    use_tz("UTC");
    c = load(BASE "budgets:\n"
                  "  - { scope: team:search, window: day, tokens: 10000 }\n"
                  "  - { scope: org, window: month, tokens: 1000000 }\n"
                  "  - { scope: agent:crawler-1, window: hour, tokens: 50000 }\n");
    b = book(c, NULL, T0 - 100);
    int c1 = scope(c, "agent:crawler-1"), c2 = scope(c, "agent:crawler-2");
    int team = scope(c, "team:search"), dept = scope(c, "department:research"), org = 0;
    int eval = scope(c, "team:eval"), judge = scope(c, "agent:judge");

    struct budget_ask a = chat(c1, 1000, 2000);
    struct budget_resv r1 = admit(b, &a, T0 - 100);
    int64_t t1 = held_input(1000, 0) + 2000; /* 1014 + 2000 */
    ck_assert_int_eq(r1.tokens, t1);
    ck_assert_int_eq(r1.allowance, 2000);
    ck_assert_int_eq(r1.write_max, 0);
    ck_assert_int_eq(r1.remaining, 10000); /* the team's day budget is the tightest */
    ck_assert_int_eq(r1.remaining_nusd, -1);
    ck_assert_int_eq(reserved(b, c1), t1);
    ck_assert_int_eq(reserved(b, team), t1);
    ck_assert_int_eq(reserved(b, dept), t1);
    ck_assert_int_eq(reserved(b, org), t1);
    ck_assert_int_eq(reserved(b, c2), 0);
    ck_assert_int_eq(reserved(b, eval), 0);
    ck_assert_int_eq(reserved(b, judge), 0);
    ck_assert_int_eq(budget_reserved_total(b), t1);

    /* a sibling's request that does not fit beside it: the team's budget refuses */
    struct budget_ask a2 = chat(c2, 7000, 100);
    struct budget_refusal why = refuse(b, &a2, T0 - 90);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.scope, team);
    ck_assert_int_eq(why.window, CONF_WIN_DAY);
    ck_assert_int_eq(why.usd, 0);
    ck_assert_int_eq(why.limit, 10000);
    ck_assert_int_eq(why.used, 0);
    ck_assert_int_eq(why.reserved, t1);
    ck_assert_int_eq(why.remaining, 10000 - t1);
    ck_assert_int_eq(why.needed, held_input(7000, 0) + 1); /* its input and one output token */
    ck_assert(why.resets_at == T1);                       /* midnight UTC */
    ck_assert_int_eq(reserved(b, team), t1);              /* the refusal held nothing */
    ck_assert_int_eq(reserved(b, c2), 0);

    /* one that fits exactly: input and margin leave room for its whole cap */
    int64_t room = 10000 - t1 - held_input(5000, 0);
    struct budget_ask a3 = chat(c2, 5000, room);
    struct budget_resv r3 = admit(b, &a3, T0 - 80);
    ck_assert_int_eq(r3.allowance, room);
    ck_assert_int_eq(r3.write_max, 0);
    ck_assert_int_eq(r3.remaining, 10000 - t1);
    ck_assert_int_eq(reserved(b, team), 10000);
    ck_assert_int_eq(reserved(b, c1), t1);
    /* now the team is full: even an embedding of one token is refused */
    struct budget_ask a4 = chat(c1, 1, -1);
    a4.generates = 0;
    why = refuse(b, &a4, T0 - 70);
    ck_assert_int_eq(why.scope, team);
    ck_assert_int_eq(why.remaining, 0);

    /* settle with the real usage: reservations go back, usage is charged everywhere */
    ck_assert_int_eq(budget_settle(b, &r1, 2500, 0, T0 - 60, NULL, 0), 0);
    ck_assert_int_eq(r1.held, 0);
    ck_assert_int_eq(r1.made, 1);
    ck_assert_int_eq(budget_settle(b, &r3, 6000, 0, T0 - 60, NULL, 0), 0);
    ck_assert_int_eq(budget_reserved_total(b), 0);
    ck_assert_int_eq(reserved(b, team), 0);
    ck_assert_int_eq(reserved(b, org), 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_HOUR, T0 - 50), 2500);
    ck_assert_int_eq(used(b, c2, CONF_WIN_HOUR, T0 - 50), 6000);
    ck_assert_int_eq(used(b, team, CONF_WIN_DAY, T0 - 50), 8500);
    ck_assert_int_eq(used(b, dept, CONF_WIN_DAY, T0 - 50), 8500);
    ck_assert_int_eq(used(b, org, CONF_WIN_MONTH, T0 - 50), 8500);
    ck_assert_int_eq(used(b, judge, CONF_WIN_DAY, T0 - 50), 0);
    /* settling twice changes nothing */
    ck_assert_int_eq(budget_settle(b, &r1, 2500, 0, T0 - 40, NULL, 0), 0);
    ck_assert_int_eq(used(b, team, CONF_WIN_DAY, T0 - 40), 8500);
    struct budget_view v = view(b, team, CONF_WIN_DAY, T0 - 40);
    ck_assert_int_eq(v.limit.tokens, 10000);
    ck_assert(v.start == T1 - 86400 && v.resets_at == T1);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- the output allowance ------------------------------------------------------------------ */

START_TEST(allowance_rules)
{
    struct conf *c;
    struct budget_book *b;
    struct budget_resv r;
    struct budget_ask a;

    use_tz("UTC");
    c = load(BASE "budgets:\n  - { scope: agent:crawler-1, window: day, tokens: 10000 }\n");
    b = book(c, NULL, T0);
    int c1 = scope(c, "agent:crawler-1");
    int64_t in = held_input(1000, 0), head = 10000 - in; /* the headroom for output */

    /* no cap of its own and none known for the model: the headroom, written into the body */
    a = chat(c1, 1000, -1);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, head);
    ck_assert_int_eq(r.write_max, 1);
    ck_assert_int_eq(r.tokens, 10000);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* a cap above the headroom: cut to it */
    a = chat(c1, 1000, 20000);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, head);
    ck_assert_int_eq(r.write_max, 1);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* a cap that fits: its own, nothing to write */
    a = chat(c1, 1000, 500);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 500);
    ck_assert_int_eq(r.write_max, 0);
    ck_assert_int_eq(r.tokens, in + 500);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* exactly the headroom still fits */
    a = chat(c1, 1000, head);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, head);
    ck_assert_int_eq(r.write_max, 0);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* no cap of its own, the model's known cap fits: that cap, written so the provider's
     * default cannot go past what was reserved */
    a = chat(c1, 1000, -1);
    a.model_cap = 4096;
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 4096);
    ck_assert_int_eq(r.write_max, 1);
    ck_assert_int_eq(r.tokens, in + 4096);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* n choices share the headroom; the cap applies to each */
    a = chat(c1, 1000, -1);
    a.choices = 3;
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, head / 3);
    ck_assert_int_eq(r.write_max, 1);
    ck_assert_int_eq(r.tokens, in + head / 3 * 3);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    a = chat(c1, 1000, 1000);
    a.choices = 4;
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 1000);
    ck_assert_int_eq(r.write_max, 0);
    ck_assert_int_eq(r.tokens, in + 4000);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* embeddings reserve their input only */
    a = chat(c1, 1000, -1);
    a.generates = 0;
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 0);
    ck_assert_int_eq(r.write_max, 0);
    ck_assert_int_eq(r.tokens, in);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* an approximate count holds a wider margin */
    a = chat(c1, 1000, 100);
    a.approximate = 1;
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.tokens, held_input(1000, 1) + 100);
    ck_assert_int_gt(held_input(1000, 1), held_input(1000, 0));
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* an input whose margin leaves one output token: admitted with an allowance of one */
    int64_t big = 9890; /* held_input(9890) = 9992: room for 8 */
    ck_assert_int_eq(held_input(big, 0), 9992);
    a = chat(c1, big, -1);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 10000 - held_input(big, 0));
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    /* when not even the input (and its margin) fits: refused */
    a = chat(c1, 9900, -1);
    struct budget_refusal why = refuse(b, &a, T0);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.scope, c1);
    ck_assert_int_eq(why.needed, held_input(9900, 0) + 1);
    ck_assert_int_eq(why.remaining, 10000);
    a.generates = 0;
    why = refuse(b, &a, T0);
    ck_assert_int_eq(why.needed, held_input(9900, 0));
    /* more choices than output tokens left: not even one each */
    a = chat(c1, big, -1);
    a.choices = 9;
    why = refuse(b, &a, T0);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.scope, c1);
    ck_assert_int_eq(budget_reserved_total(b), 0);

    /* an agent under no budget: the request's own cap, or none, and nothing to write */
    int bot = scope(c, "agent:bot");
    a = chat(bot, 1000000, 123);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 123);
    ck_assert_int_eq(r.write_max, 0);
    ck_assert_int_eq(r.remaining, -1);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    a = chat(bot, 10, -1);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, -1);
    ck_assert_int_eq(r.write_max, 0);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    ck_assert_int_eq(budget_reserved_total(b), 0);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- dollars ------------------------------------------------------------------------------- */

START_TEST(cost_rounding)
{
    struct conf_price p = {.input = 2.50, .output = 10.00, .cached_input = 1.25,
                           .cache_write = 3.125, .cache_write_1h = 5.00, .set = 1};
    struct conf_price tiny = {.input = 0.0001, .output = 0.0001, .cached_input = 0.0001,
                              .cache_write = 0.0001, .set = 1};
    struct conf_price unset = {.input = 1, .output = 1, .set = 0};

    /* 1000 input at $2.50/M is $0.0025, 500 output at $10/M $0.005: $0.0075 = 7,500,000 n$ */
    ck_assert_int_eq(budget_cost(&p, 1000, 0, 0, 0, 500), 7500000);
    /* a million of each kind costs its price */
    ck_assert_int_eq(budget_cost(&p, 1000000, 0, 0, 0, 0), 2500000000LL);
    ck_assert_int_eq(budget_cost(&p, 0, 1000000, 0, 0, 0), 1250000000LL);
    ck_assert_int_eq(budget_cost(&p, 0, 0, 1000000, 0, 0), 3125000000LL);
    ck_assert_int_eq(budget_cost(&p, 0, 0, 0, 1000000, 0), 5000000000LL);
    ck_assert_int_eq(budget_cost(&p, 0, 0, 0, 0, 1000000), 10000000000LL);
    /* each kind at its own price, summed: 100 in, 200 read, 300 5-minute, 400 1-hour, 50 out */
    /* n$ = tokens x USD/M x 1000: 250000 + 250000 + 937500 + 2000000 + 500000 */
    ck_assert_int_eq(budget_cost(&p, 100, 200, 300, 400, 50), 3937500);
    /* $0.0001/M is 0.1 n$ a token: rounded up to whole nano-dollars */
    ck_assert_int_eq(budget_cost(&tiny, 1, 0, 0, 0, 0), 1);
    ck_assert_int_eq(budget_cost(&tiny, 10, 0, 0, 0, 0), 1);
    ck_assert_int_eq(budget_cost(&tiny, 11, 0, 0, 0, 0), 2);
    ck_assert_int_eq(budget_cost(&tiny, 0, 0, 0, 0, 0), 0);
    /* absurd counts never wrap to a small or negative cost: held at the largest */
    ck_assert_int_eq(budget_cost(&p, 0, 0, 0, 0, 9000000000000000LL), INT64_MAX);
    ck_assert_int_eq(budget_cost(&p, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX), INT64_MAX);
    ck_assert_int_eq(budget_cost(&p, -5, 0, 0, 0, 1000000), 10000000000LL);
    /* no price: nothing */
    ck_assert_int_eq(budget_cost(NULL, 1000, 0, 0, 0, 1000), 0);
    ck_assert_int_eq(budget_cost(&unset, 1000, 0, 0, 0, 1000), 0);
}
END_TEST

START_TEST(dollar_budget)
{
    struct conf *c;
    struct budget_book *b;

    use_tz("UTC");
    /* $0.01 a day for crawler-1 */
    c = load(BASE "budgets:\n  - { scope: agent:crawler-1, window: day, usd: 0.01 }\n");
    b = book(c, NULL, T0);
    int c1 = scope(c, "agent:crawler-1");
    const struct conf_price *price = &conf_find_model(c, "m")->price;
    const int64_t limit = 10000000; /* $0.01 in nano-dollars */
    ck_assert(price->set);

    /* output at $10/M is 10,000 n$ a token */
    int64_t per_out = budget_cost(price, 0, 0, 0, 0, 1000) / 1000;
    ck_assert_int_eq(per_out, 10000);

    /* a cap that fits the dollars is kept, and held at the output price */
    struct budget_ask a2 = chat(c1, 100, 50);
    a2.price = price;
    struct budget_resv r2 = admit(b, &a2, T0);
    ck_assert_int_eq(r2.allowance, 50);
    ck_assert_int_eq(r2.write_max, 0);
    ck_assert_int_eq(r2.nusd, budget_cost(price, held_input(100, 0), 0, 0, 0, 50));
    ck_assert_int_eq(r2.tokens, held_input(100, 0) + 50);
    budget_settle(b, &r2, 0, 0, T0, NULL, 0);

    struct budget_ask a = chat(c1, 1000, -1);
    a.price = price;
    struct budget_resv r = admit(b, &a, T0);
    /* the input (with its margin) is held at the input price; what is left buys output */
    int64_t in_cost = budget_cost(price, held_input(1000, 0), 0, 0, 0, 0);
    ck_assert_int_eq(in_cost, 2535000);
    ck_assert_int_eq(r.allowance, (limit - in_cost) / per_out);
    ck_assert_int_eq(r.write_max, 1);
    ck_assert_int_eq(r.nusd, in_cost + budget_cost(price, 0, 0, 0, 0, r.allowance));
    ck_assert_int_le(r.nusd, limit);
    ck_assert_int_gt(r.nusd + per_out, limit);
    ck_assert_int_eq(r.remaining, -1); /* no token budget */
    ck_assert_int_eq(r.remaining_nusd, limit);
    ck_assert_int_eq(view(b, c1, CONF_WIN_DAY, T0).reserved_nusd, r.nusd);
    ck_assert_int_eq(view(b, 0, CONF_WIN_DAY, T0).reserved_nusd, r.nusd);

    /* settle what was really used: 1000 in, 600 out */
    int64_t real = budget_cost(price, 1000, 0, 0, 0, 600);
    budget_settle(b, &r, 1600, real, T0, NULL, 0);
    struct budget_view v = view(b, c1, CONF_WIN_DAY, T0);
    ck_assert_int_eq(v.used_nusd, real);
    ck_assert_int_eq(v.reserved_nusd, 0);
    ck_assert_int_eq(v.limit.nusd, limit);
    ck_assert_int_eq(v.limit.tokens, -1);

    /* spend up to $0.009: a request of 1000 input no longer fits its input and one token */
    spend(b, c1, 0, 9000000 - real, T0, NULL, 0);
    a.max_output = 10;
    struct budget_refusal why = refuse(b, &a, T0);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.usd, 1);
    ck_assert_int_eq(why.scope, c1);
    ck_assert_int_eq(why.window, CONF_WIN_DAY);
    ck_assert_int_eq(why.limit, limit);
    ck_assert_int_eq(why.used, 9000000);
    ck_assert_int_eq(why.remaining, 1000000);
    ck_assert_int_eq(why.needed, in_cost + per_out);
    /* a smaller one fits, its output cut to the dollars left */
    a = chat(c1, 10, -1);
    a.price = price;
    r = admit(b, &a, T0);
    int64_t in2 = budget_cost(price, held_input(10, 0), 0, 0, 0, 0);
    ck_assert_int_eq(r.allowance, (1000000 - in2) / per_out);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    /* without a price (a model the book cannot cost) the dollar budget does not bound it */
    a.price = NULL;
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.nusd, 0);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- windows -------------------------------------------------------------------------------- */

START_TEST(window_rollover_all)
{
    struct conf *c;
    struct budget_book *b;

    use_tz("UTC");
    c = load(BASE "budgets:\n"
                  "  - { scope: agent:crawler-1, window: minute, tokens: 1000000 }\n"
                  "  - { scope: agent:crawler-1, window: hour, tokens: 1000000 }\n"
                  "  - { scope: agent:crawler-1, window: day, tokens: 1000000 }\n"
                  "  - { scope: agent:crawler-1, window: month, tokens: 1000000 }\n"
                  "  - { scope: agent:crawler-1, window: total, tokens: 1000000 }\n");
    b = book(c, NULL, T0);
    int c1 = scope(c, "agent:crawler-1");

    spend(b, c1, 100, 0, T0, NULL, 0);
    for (int w = 0; w < CONF_WIN__COUNT; w++) {
        struct budget_view v = view(b, c1, (enum conf_window)w, T1 - 0.001);
        ck_assert_int_eq(v.used_tokens, 100);
        if (w == CONF_WIN_TOTAL)
            ck_assert(v.resets_at == 0);
        else
            ck_assert_msg(v.resets_at == T1, "%s resets at %.0f", conf_window_name(w),
                          v.resets_at);
    }
    /* 2026-04-01T00:00:00Z: a new minute, hour, day and month; total goes on */
    for (int w = 0; w < CONF_WIN_TOTAL; w++)
        ck_assert_int_eq(used(b, c1, (enum conf_window)w, T1), 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_TOTAL, T1), 100);

    spend(b, c1, 7, 0, T1 + 1, NULL, 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_MINUTE, T1 + 59.9), 7);
    ck_assert_int_eq(used(b, c1, CONF_WIN_MINUTE, T1 + 60), 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_HOUR, T1 + 3599), 7);
    ck_assert_int_eq(used(b, c1, CONF_WIN_HOUR, T1 + 3600), 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_DAY, T1 + 86399), 7);
    ck_assert_int_eq(used(b, c1, CONF_WIN_DAY, T1 + 86400), 0);
    double may = utc(2026, 5, 1, 0, 0, 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_MONTH, may - 1), 7);
    ck_assert(view(b, c1, CONF_WIN_MONTH, may - 1).resets_at == may);
    ck_assert_int_eq(used(b, c1, CONF_WIN_MONTH, may), 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_TOTAL, may + 365 * 86400.0), 107);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

START_TEST(window_rollover_in_flight)
{
    struct conf *c;
    struct budget_book *b;

    use_tz("UTC");
    c = load(BASE "budgets:\n  - { scope: agent:crawler-1, window: minute, tokens: 1000 }\n"
                  "  - { scope: agent:crawler-1, window: total, tokens: 100000 }\n");
    b = book(c, NULL, T0);
    int c1 = scope(c, "agent:crawler-1");

    spend(b, c1, 900, 0, T0, NULL, 0);
    /* a request under way across the minute's end */
    struct budget_ask a = chat(c1, 0, 50);
    struct budget_resv held = admit(b, &a, T0 + 1);
    int64_t ht = held_input(0, 0) + 50;
    ck_assert_int_eq(held.tokens, ht);

    /* the minute is full: refused until it ends, and the refusal says when */
    a = chat(c1, 100, 10);
    struct budget_refusal why = refuse(b, &a, T0 + 29);
    ck_assert_int_eq(why.window, CONF_WIN_MINUTE);
    ck_assert_int_eq(why.used, 900);
    ck_assert_int_eq(why.reserved, ht);
    ck_assert(why.resets_at == T1);

    /* the next minute: nothing used, but what is under way still counts */
    struct budget_view v = view(b, c1, CONF_WIN_MINUTE, T1);
    ck_assert_int_eq(v.used_tokens, 0);
    ck_assert_int_eq(v.reserved_tokens, ht);
    a = chat(c1, 0, -1);
    struct budget_resv r = admit(b, &a, T1);
    ck_assert_int_eq(r.allowance, 1000 - ht - held_input(0, 0));
    budget_settle(b, &r, 0, 0, T1, NULL, 0);

    /* settled after the rollover: charged to the new minute */
    budget_settle(b, &held, 40, 0, T1 + 1, NULL, 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_MINUTE, T1 + 1), 40);
    ck_assert_int_eq(used(b, c1, CONF_WIN_TOTAL, T1 + 1), 940);
    ck_assert_int_eq(budget_reserved_total(b), 0);

    /* total never resets: a year on, it still refuses */
    spend(b, c1, 100000 - 940 - 5, 0, T1 + 2, NULL, 0);
    a = chat(c1, 10, 10);
    why = refuse(b, &a, T1 + 400 * 86400.0);
    ck_assert_int_eq(why.window, CONF_WIN_TOTAL);
    ck_assert(why.resets_at == 0);
    ck_assert_int_eq(why.used, 100000 - 5);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

static void check_bounds(enum conf_window w, double now, double start, double end)
{
    double s = -1, e = -1;

    budget_window_bounds(zone, w, now, &s, &e);
    ck_assert_msg(s == start && e == end, "%s at %.0f: [%.0f, %.0f), expected [%.0f, %.0f)",
                  conf_window_name(w), now, s, e, start, end);
}

START_TEST(window_bounds_utc)
{
    use_tz("UTC");
    double now = utc(2026, 12, 31, 23, 30, 15);

    check_bounds(CONF_WIN_MINUTE, now, utc(2026, 12, 31, 23, 30, 0), utc(2026, 12, 31, 23, 31, 0));
    check_bounds(CONF_WIN_HOUR, now, utc(2026, 12, 31, 23, 0, 0), utc(2027, 1, 1, 0, 0, 0));
    check_bounds(CONF_WIN_DAY, now, utc(2026, 12, 31, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0));
    check_bounds(CONF_WIN_MONTH, now, utc(2026, 12, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0));
    check_bounds(CONF_WIN_TOTAL, now, 0, 0);
    /* the instant a window begins belongs to it */
    check_bounds(CONF_WIN_MONTH, utc(2027, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0),
                 utc(2027, 2, 1, 0, 0, 0));
    /* February of a leap year */
    check_bounds(CONF_WIN_MONTH, utc(2028, 2, 29, 12, 0, 0), utc(2028, 2, 1, 0, 0, 0),
                 utc(2028, 3, 1, 0, 0, 0));
    check_bounds(CONF_WIN_DAY, utc(2028, 2, 28, 12, 0, 0), utc(2028, 2, 28, 0, 0, 0),
                 utc(2028, 2, 29, 0, 0, 0));
    /* a fractional now */
    check_bounds(CONF_WIN_MINUTE, T1 - 0.5, T1 - 60, T1);
}
END_TEST

START_TEST(window_bounds_berlin)
{
    if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) != 0) {
        fprintf(stderr, "test_budget: no tzdata for Europe/Berlin, skipped\n");
        return;
    }
    use_tz("Europe/Berlin");
    /* 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; the day is 23 hours long, from
     * 00:00 CET (23:00Z the day before) to 00:00 CEST (22:00Z) */
    double noon = utc(2026, 3, 29, 10, 0, 0);
    check_bounds(CONF_WIN_DAY, noon, utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 22, 0, 0));
    double s, e;
    budget_window_bounds(zone, CONF_WIN_DAY, noon, &s, &e);
    ck_assert(e - s == 23 * 3600);
    /* the hour after the jump: 03:00 CEST is 01:00Z */
    check_bounds(CONF_WIN_HOUR, utc(2026, 3, 29, 1, 30, 0), utc(2026, 3, 29, 1, 0, 0),
                 utc(2026, 3, 29, 2, 0, 0));
    /* 2026-10-25 is 25 hours long */
    budget_window_bounds(zone, CONF_WIN_DAY, utc(2026, 10, 25, 12, 0, 0), &s, &e);
    ck_assert(s == utc(2026, 10, 24, 22, 0, 0) && e == utc(2026, 10, 25, 23, 0, 0));
    /* ... and has 02:00-03:00 twice: first in CEST (00:xxZ), then in CET (01:xxZ) */
    check_bounds(CONF_WIN_HOUR, utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 25, 0, 0, 0),
                 utc(2026, 10, 25, 1, 0, 0));
    check_bounds(CONF_WIN_HOUR, utc(2026, 10, 25, 1, 30, 0), utc(2026, 10, 25, 1, 0, 0),
                 utc(2026, 10, 25, 2, 0, 0));
    /* the month in local time: April begins at 00:00 CEST, 22:00Z on March 31 */
    check_bounds(CONF_WIN_MONTH, T0, utc(2026, 3, 31, 22, 0, 0), utc(2026, 4, 30, 22, 0, 0));
    /* January in CET */
    check_bounds(CONF_WIN_MONTH, utc(2026, 12, 31, 23, 30, 0), utc(2026, 12, 31, 23, 0, 0),
                 utc(2027, 1, 31, 23, 0, 0));
}
END_TEST

START_TEST(day_boundary_berlin)
{
    struct conf *c;
    struct budget_book *b;

    if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) != 0)
        return;
    use_tz("Europe/Berlin");
    c = load(BASE "timezone: Europe/Berlin\n"
                  "budgets:\n  - { scope: team:search, window: day, tokens: 1000 }\n");
    /* 23:00 CEST on the (23-hour) day of the spring change */
    double late = utc(2026, 3, 29, 21, 0, 0), midnight = utc(2026, 3, 29, 22, 0, 0);
    b = book(c, NULL, late);
    int c1 = scope(c, "agent:crawler-1"), team = scope(c, "team:search");

    spend(b, c1, 990, 0, late, NULL, 0);
    struct budget_ask a = chat(c1, 100, 10);
    struct budget_refusal why = refuse(b, &a, midnight - 1);
    ck_assert(why.resets_at == midnight);
    ck_assert_int_eq(used(b, team, CONF_WIN_DAY, midnight - 1), 990);
    /* local midnight, still March 29 in UTC: a new day */
    ck_assert_int_eq(used(b, team, CONF_WIN_DAY, midnight), 0);
    struct budget_resv r = admit(b, &a, midnight);
    budget_settle(b, &r, 110, 0, midnight, NULL, 0);
    ck_assert_int_eq(used(b, team, CONF_WIN_DAY, utc(2026, 3, 30, 1, 0, 0)), 110);
    /* March 30 is 24 hours long */
    ck_assert(view(b, team, CONF_WIN_DAY, midnight).resets_at == midnight + 86400);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------ */

#define NTHREADS 8
#define CONC_LIMIT 200000

struct worker {
    struct budget_book *b;
    int agent;
    int64_t admitted, charged, refusals;
    int bad_refusal;
    int64_t last_room; /* limit - used - reserved at the refusal that stopped it */
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < 1000000; i++) {
        struct budget_ask a = chat(w->agent, 100 + i % 7, i % 3 == 0 ? -1 : 200);
        a.model_cap = 300; /* without a cap of its own, the model's */
        struct budget_resv r;
        struct budget_refusal why;
        double now = T0 - 1000 + i * 0.0001;

        if (budget_reserve(w->b, &a, now, &r, &why) < 0) {
            w->refusals++;
            /* a refusal must be true: the request did not fit */
            if (why.kind != BUDGET_OVER || why.limit - why.used - why.reserved >= why.needed)
                w->bad_refusal = 1;
            w->last_room = why.limit - why.used - why.reserved;
            break;
        }
        w->admitted++;
        /* the provider used everything it was allowed */
        w->charged += r.tokens;
        budget_settle(w->b, &r, r.tokens, 0, now, NULL, 0);
    }
    return NULL;
}

START_TEST(threads_never_overspend)
{
    struct conf *c;
    struct budget_book *b;
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    int64_t admitted = 0, charged = 0;

    use_tz("UTC");
    c = load(BASE "budgets:\n  - { scope: team:search, window: day, tokens: 200000 }\n");
    b = book(c, NULL, T0 - 1000);
    int team = scope(c, "team:search");
    int agents[2] = {scope(c, "agent:crawler-1"), scope(c, "agent:crawler-2")};

    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.b = b, .agent = agents[i % 2]};
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(!w[i].bad_refusal, "thread %d was refused with room left", i);
        ck_assert_int_eq(w[i].refusals, 1);
        admitted += w[i].admitted;
        charged += w[i].charged;
    }
    int64_t u = used(b, team, CONF_WIN_DAY, T0);
    ck_assert_int_eq(budget_reserved_total(b), 0);
    ck_assert_int_eq(reserved(b, team), 0);
    ck_assert_int_eq(u, charged);
    ck_assert_int_le(u, CONC_LIMIT);
    /* every request was charged all it held, so the last refusal (which saw used and
     * reserved leave less than its input, margin and one output token) means that less
     * than the largest such need is left now */
    int64_t max_need = held_input(106, 0) + 1, max_held = held_input(106, 0) + 300;
    ck_assert_int_gt(u, CONC_LIMIT - max_need);
    /* each admitted request held between its need and input + margin + 300 */
    ck_assert_int_ge(admitted, (CONC_LIMIT - max_need) / max_held);
    ck_assert_int_le(admitted, CONC_LIMIT / (held_input(100, 0) + 1));
    /* the largest request is refused now */
    struct budget_ask a = chat(agents[0], 106, 1);
    refuse(b, &a, T0);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- keys ----------------------------------------------------------------------------------- */

START_TEST(keys_authenticate)
{
    struct conf *c;
    struct budget_book *b;
    int agent = -1;
    char id[24] = "";
    unsigned char hash[32];

    use_tz("UTC");
    c = load(BASE);
    b = book(c, NULL, T0);
    const char *alpha = "tg-test-alpha-0001";

    ck_assert_int_eq(budget_authenticate(b, alpha, strlen(alpha), &agent, id), BUDGET_AUTH_OK);
    ck_assert_int_eq(agent, scope(c, "agent:crawler-1"));
    ck_assert_str_eq(id, ALPHA_ID);
    /* the key given only as its SHA-256 works with the secret it hashes */
    ck_assert_int_eq(budget_authenticate(b, HASHED_SECRET, strlen(HASHED_SECRET), &agent, id),
                     BUDGET_AUTH_OK);
    ck_assert_int_eq(agent, scope(c, "agent:judge"));
    ck_assert_str_eq(id, "key_296f4e92e98b");

    /* wrong, shortened, longer, empty: unknown */
    const char *bad[] = {"tg-test-alpha-0002", "tg-test-alpha-000", "tg-test-alpha-00010",
                         "TG-TEST-ALPHA-0001", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(budget_authenticate(b, bad[i], strlen(bad[i]), &agent, id) ==
                          BUDGET_AUTH_UNKNOWN,
                      "'%s' authenticated", bad[i]);
    /* the hash itself is not a key */
    const char *h = "sha256:296f4e92e98bae7c8324fcd5ad9e18ee8866ba6e3f2fac8e93b7edad02f86948";
    ck_assert_int_eq(budget_authenticate(b, h, strlen(h), &agent, id), BUDGET_AUTH_UNKNOWN);
    /* the length given counts, not the NUL */
    ck_assert_int_eq(budget_authenticate(b, "tg-test-alpha-0001XYZ", strlen(alpha), &agent, id),
                     BUDGET_AUTH_OK);

    /* revoked by its public id */
    ck_assert_int_eq(budget_key_revoke(b, "key_000000000000", hash, &agent), -1);
    agent = -1;
    ck_assert_int_eq(budget_key_revoke(b, ALPHA_ID, hash, &agent), 0);
    ck_assert_int_eq(agent, scope(c, "agent:crawler-1"));
    char id2[24];
    budget_key_id(hash, id2);
    ck_assert_str_eq(id2, ALPHA_ID);
    ck_assert_int_eq(budget_authenticate(b, alpha, strlen(alpha), &agent, id),
                     BUDGET_AUTH_REVOKED);
    ck_assert_int_eq(budget_authenticate(b, HASHED_SECRET, strlen(HASHED_SECRET), &agent, id),
                     BUDGET_AUTH_OK);

    /* a key added at run time (printf '%s' tg-added-key-0005 | sha256sum) */
    unsigned char added[32];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf("b80d2100b82934986b957be4a9c2d638bfb6c406458d86d836826c85c6353599" + 2 * i, "%2x",
               &v);
        added[i] = (unsigned char)v;
    }
    ck_assert_int_eq(budget_key_add(b, added, scope(c, "agent:bot")), 0);
    ck_assert_int_eq(budget_authenticate(b, "tg-added-key-0005", 17, &agent, id), BUDGET_AUTH_OK);
    ck_assert_int_eq(agent, scope(c, "agent:bot"));
    ck_assert_str_eq(id, "key_b80d2100b829");

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- policies ------------------------------------------------------------------------------ */

#define POLICY_CONF                                                                                \
    "providers:\n"                                                                                 \
    "  o:\n"                                                                                       \
    "    base_url: http://127.0.0.1:8000/v1\n"                                                     \
    "models:\n"                                                                                    \
    "  m: o\n"                                                                                     \
    "org: acme\n"                                                                                  \
    "policies:\n"                                                                                  \
    "  small: { max_per_request: 2000 }\n"                                                         \
    "  alloc: { allocation: { max_per_agent: 5000, window: hour } }\n"                             \
    "departments:\n"                                                                               \
    "  research:\n"                                                                                \
    "    policy: small\n"                                                                          \
    "    teams:\n"                                                                                 \
    "      search:\n"                                                                              \
    "        agents:\n"                                                                            \
    "          crawler-1:\n"                                                                       \
    "          crawler-2: { policy: alloc }\n"                                                     \
    "          crawler-3: { policy: alloc }\n"                                                     \
    "      eval: { agents: [judge] }\n"                                                            \
    "  ops:\n"                                                                                     \
    "    teams:\n"                                                                                 \
    "      infra: { agents: [bot] }\n"                                                             \
    "ledger: { path: /nonexistent/ledger.db }\n"

START_TEST(policies_cascade)
{
    struct conf *c;
    struct budget_book *b;
    struct budget_resv r;
    struct budget_refusal why;
    struct budget_ask a;

    use_tz("UTC");
    c = load(POLICY_CONF);
    b = book(c, NULL, T0);
    int c1 = scope(c, "agent:crawler-1"), c2 = scope(c, "agent:crawler-2");
    int c3 = scope(c, "agent:crawler-3"), judge = scope(c, "agent:judge");
    int bot = scope(c, "agent:bot");

    /* crawler-1 inherits the department's max_per_request: 2000 input + output */
    a = chat(c1, 2000, 10);
    why = refuse(b, &a, T0);
    ck_assert_int_eq(why.kind, BUDGET_TOO_LARGE);
    ck_assert_int_eq(why.scope, c1);
    ck_assert_int_eq(why.limit, 2000);
    ck_assert_int_eq(why.needed, 2001);
    a = chat(c1, 1990, -1); /* fits: the allowance is what is left under the cap */
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 10);
    ck_assert_int_eq(r.write_max, 1);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    a = chat(c1, 1000, 5000);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 1000);
    ck_assert_int_eq(r.write_max, 1);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    a = chat(c1, 1000, 5);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 5);
    ck_assert_int_eq(r.write_max, 0);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    a = chat(c1, 1000, -1);
    a.choices = 2;
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 500);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    /* so does judge, in another team of the department */
    a = chat(judge, 2500, 10);
    why = refuse(b, &a, T0);
    ck_assert_int_eq(why.kind, BUDGET_TOO_LARGE);
    ck_assert_int_eq(why.scope, judge);
    /* an embedding too */
    a.generates = 0;
    why = refuse(b, &a, T0);
    ck_assert_int_eq(why.kind, BUDGET_TOO_LARGE);

    /* crawler-2's own policy replaces the department's: no max_per_request ... */
    a = chat(c2, 3000, 100);
    r = admit(b, &a, T0 - 600);
    budget_settle(b, &r, 3100, 0, T0 - 600, NULL, 0);
    /* ... but 5000 tokens an hour for each agent */
    ck_assert_int_eq(view(b, c2, CONF_WIN_HOUR, T0 - 600).limit.tokens, 5000);
    a = chat(c2, 1000, -1);
    r = admit(b, &a, T0 - 500);
    ck_assert_int_eq(r.allowance, 5000 - 3100 - held_input(1000, 0));
    ck_assert_int_eq(r.write_max, 1);
    budget_settle(b, &r, 1500, 0, T0 - 500, NULL, 0);
    a = chat(c2, 400, 10); /* 400 + margin > the 400 left */
    why = refuse(b, &a, T0 - 400);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.scope, c2);
    ck_assert_int_eq(why.window, CONF_WIN_HOUR);
    ck_assert_int_eq(why.limit, 5000);
    ck_assert_int_eq(why.used, 4600);
    ck_assert(why.resets_at == T1);
    /* the allocation is per agent: crawler-3 has its own 5000 */
    a = chat(c3, 3000, -1);
    r = admit(b, &a, T0 - 400);
    ck_assert_int_eq(r.allowance, 5000 - held_input(3000, 0));
    budget_settle(b, &r, 0, 0, T0 - 400, NULL, 0);
    /* and the next hour crawler-2 has it back */
    a = chat(c2, 400, 10);
    r = admit(b, &a, T1);
    budget_settle(b, &r, 0, 0, T1, NULL, 0);

    /* an agent under no policy */
    a = chat(bot, 100000, 50000);
    r = admit(b, &a, T0);
    ck_assert_int_eq(r.allowance, 50000);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* A policy at the org, overridden by a team's. */
START_TEST(policy_org_and_team)
{
    struct conf *c;
    struct budget_book *b;
    struct budget_ask a;

    use_tz("UTC");
    c = load("providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
             "models:\n  m: o\n"
             "org: acme\n"
             "policy: tight\n"
             "policies:\n"
             "  tight: { max_per_request: 100 }\n"
             "  loose: { max_per_request: 100000 }\n"
             "departments:\n"
             "  research:\n"
             "    teams:\n"
             "      search: { policy: loose, agents: [crawler-1] }\n"
             "      eval: { agents: [judge] }\n"
             "ledger: { path: /nonexistent/ledger.db }\n");
    b = book(c, NULL, T0);
    a = chat(scope(c, "agent:judge"), 200, 10);
    ck_assert_int_eq(refuse(b, &a, T0).kind, BUDGET_TOO_LARGE);
    a = chat(scope(c, "agent:crawler-1"), 200, 10);
    struct budget_resv r = admit(b, &a, T0);
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- alerts -------------------------------------------------------------------------------- */

START_TEST(alerts_once_per_window)
{
    struct conf *c;
    struct budget_book *b;
    struct budget_alert al[8];

    use_tz("UTC");
    c = load(BASE "budgets:\n  - { scope: team:search, window: day, tokens: 1000 }\n"
                  "  - { scope: org, window: month, usd: 1 }\n");
    b = book(c, NULL, T0 - 3600);
    int c1 = scope(c, "agent:crawler-1"), team = scope(c, "team:search");

    ck_assert_int_eq(spend(b, c1, 790, 0, T0 - 3600, al, 8), 0);
    ck_assert_int_eq(spend(b, c1, 20, 0, T0 - 3000, al, 8), 1);
    ck_assert_int_eq(al[0].scope, team);
    ck_assert_int_eq(al[0].window, CONF_WIN_DAY);
    ck_assert_int_eq(al[0].percent, 80);
    ck_assert_int_eq(al[0].usd, 0);
    ck_assert_int_eq(al[0].used, 810);
    ck_assert_int_eq(al[0].limit, 1000);
    ck_assert_int_eq(spend(b, c1, 10, 0, T0 - 2000, al, 8), 0);
    ck_assert_int_eq(spend(b, c1, 130, 0, T0 - 1000, al, 8), 1);
    ck_assert_int_eq(al[0].percent, 95);
    ck_assert_int_eq(al[0].used, 950);
    ck_assert_int_eq(spend(b, c1, 10, 0, T0 - 100, al, 8), 0);
    ck_assert_int_eq(spend(b, c1, 0, 0, T0, al, 8), 0);
    /* the next day: again, both at once when one request crosses both */
    ck_assert_int_eq(spend(b, c1, 500, 0, T1, al, 8), 0);
    ck_assert_int_eq(spend(b, c1, 480, 0, T1 + 1, al, 8), 2);
    ck_assert_int_eq(al[0].percent, 80);
    ck_assert_int_eq(al[1].percent, 95);
    ck_assert_int_eq(al[1].used, 980);
    /* the cap on alerts written is kept; the rest are still marked raised */

    /* a dollar budget alerts in dollars */
    ck_assert_int_eq(spend(b, c1, 0, 799999999, T1 + 2, al, 8), 0);
    ck_assert_int_eq(spend(b, c1, 0, 1, T1 + 3, al, 8), 1);
    ck_assert_int_eq(al[0].scope, 0);
    ck_assert_int_eq(al[0].window, CONF_WIN_MONTH);
    ck_assert_int_eq(al[0].usd, 1);
    ck_assert_int_eq(al[0].percent, 80);
    ck_assert_int_eq(al[0].used, 800000000);
    ck_assert_int_eq(al[0].limit, 1000000000);

    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- the ledger ----------------------------------------------------------------------------- */

static void ledger_setup(void)
{
    tmpdb_make("budget");
}

static void record(struct ledger *l, double ts, const char *agent, const char *team,
                   int64_t tokens, int64_t nusd)
{
    static int n;
    char id[32];
    struct ledger_rec rec = {
        .ts = ts, .id = id, .agent = agent, .team = team, .department = "research",
        .endpoint = "/v1/chat/completions", .model = "m", .served_model = "m",
        .provider = "o", .status = 200, .in_own = tokens, .out_own = 0, .in_usage = tokens,
        .out_usage = 0, .tokens_charged = tokens, .cost_nusd = nusd,
        .reserved_tokens = tokens, .decision = "admitted"};

    snprintf(id, sizeof(id), "req-%d", ++n);
    ck_assert_int_eq(ledger_submit(l, &rec), 0);
}

static void key_row(struct ledger *l, const char *id, const char *hex, const char *agent,
                    double revoked)
{
    struct ledger_key k = {.id = id, .hash_hex = hex, .agent = agent, .created = T0 - 5000,
                           .revoked = revoked};

    ck_assert_int_eq(ledger_key_insert(l, &k), 0);
}

/* Spend at chosen instants before T0 (2026-03-31T23:59:30Z). */
static void fill_spend(struct ledger *l)
{
    record(l, T0 - 2 * 86400, "crawler-1", "search", 1000, 1000); /* March 29: month, total */
    record(l, T0 - 3600, "crawler-1", "search", 200, 200);       /* 22:59:30: + day */
    record(l, T0 - 20, "crawler-1", "search", 30, 30);           /* 23:59:10: + hour, minute */
    record(l, T0 - 10, "crawler-2", "search", 5, 5);             /* 23:59:20 */
    record(l, utc(2026, 2, 15, 0, 0, 0), "judge", "eval", 7, 7);  /* February: total only */
    record(l, T0 - 30, "gone-agent", "search", 99999, 99999);     /* not in the config */
}

START_TEST(ledger_restores_spend)
{
    struct conf *c;
    struct budget_book *b;
    char err[512] = "";

    use_tz("UTC");
    c = load(BASE);
    struct ledger *l = ledger_open(tmpdb_path, LEDGER_SYNC_NORMAL, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    fill_spend(l);
    ledger_close(l);

    struct ledger *ro = ledger_open_readonly(tmpdb_path, err, sizeof(err));
    ck_assert_msg(ro != NULL, "%s", err);
    b = book(c, ro, T0);
    ledger_close(ro);
    int c1 = scope(c, "agent:crawler-1"), team = scope(c, "team:search");
    int judge = scope(c, "agent:judge"), org = 0;
    static const int64_t want_c1[CONF_WIN__COUNT] = {30, 30, 230, 1230, 1230};
    static const int64_t want_team[CONF_WIN__COUNT] = {35, 35, 235, 1235, 1235};
    static const int64_t want_org[CONF_WIN__COUNT] = {35, 35, 235, 1235, 1242};
    for (int w = 0; w < CONF_WIN__COUNT; w++) {
        struct budget_view v = view(b, c1, (enum conf_window)w, T0);
        ck_assert_msg(v.used_tokens == want_c1[w], "crawler-1 %s: %lld", conf_window_name(w),
                      (long long)v.used_tokens);
        ck_assert_int_eq(v.used_nusd, want_c1[w]);
        ck_assert_msg(used(b, team, w, T0) == want_team[w], "team %s: %lld",
                      conf_window_name(w), (long long)used(b, team, w, T0));
        ck_assert_msg(used(b, org, w, T0) == want_org[w], "org %s: %lld", conf_window_name(w),
                      (long long)used(b, org, w, T0));
    }
    ck_assert_int_eq(used(b, judge, CONF_WIN_MONTH, T0), 0);
    ck_assert_int_eq(used(b, judge, CONF_WIN_TOTAL, T0), 7);
    /* and the restored spend rolls over like any other */
    ck_assert_int_eq(used(b, c1, CONF_WIN_DAY, T1), 0);
    ck_assert_int_eq(used(b, c1, CONF_WIN_TOTAL, T1), 1230);
    budget_book_free(b);

    /* a writable ledger serves as well */
    l = ledger_open(tmpdb_path, LEDGER_SYNC_NORMAL, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    b = book(c, l, T0);
    ck_assert_int_eq(used(b, team, CONF_WIN_DAY, T0), 235);
    budget_book_free(b);
    ledger_close(l);
    conf_unref(c);
}
END_TEST

START_TEST(ledger_resets_overrides_keys)
{
    struct conf *c;
    struct budget_book *b;
    char err[512] = "", id[24];
    int agent = -1;

    use_tz("UTC");
    c = load(BASE "budgets:\n  - { scope: team:search, window: day, tokens: 1000 }\n"
                  "  - { scope: agent:crawler-1, window: month, tokens: 100000 }\n");
    struct ledger *l = ledger_open(tmpdb_path, LEDGER_SYNC_NORMAL, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    fill_spend(l);
    /* the team's day was reset at 23:58:10: only the 35 tokens after it count */
    ck_assert_int_eq(ledger_reset_add(l, "team:search", "day", T0 - 80), 0);
    /* an older reset of the same window is superseded by the later one */
    ck_assert_int_eq(ledger_reset_add(l, "team:search", "day", T0 - 7200), 0);
    /* a reset in a window that has since ended changes nothing now */
    ck_assert_int_eq(ledger_reset_add(l, "agent:crawler-1", "minute", T0 - 100), 0);
    /* crawler-1's total was reset before the two last requests */
    ck_assert_int_eq(ledger_reset_add(l, "agent:crawler-1", "total", T0 - 1800), 0);
    /* the admin API lowered the team's day to 300 tokens */
    ck_assert_int_eq(ledger_budget_set(l, "team:search", "day", 300, -1), 0);
    /* and gave judge a day budget the config lacks */
    ck_assert_int_eq(ledger_budget_set(l, "agent:judge", "day", 50, -1), 0);
    /* keys made through the admin API (hashes: printf '%s' SECRET | sha256sum) */
    key_row(l, "key_349ebd021dec",
            "349ebd021dece7b06c5932a3625f1e74f84d149950341b464cb240daba56a99c", "crawler-2", 0);
    key_row(l, "key_bfe4c5ed9423",
            "bfe4c5ed942372fbfe7517ee3cdbcc8e7bf9bf4bd4c1943df57676069446b8b3", "judge",
            T0 - 60);
    key_row(l, "key_b80d2100b829",
            "b80d2100b82934986b957be4a9c2d638bfb6c406458d86d836826c85c6353599", "gone-agent", 0);
    ledger_close(l);

    struct ledger *ro = ledger_open_readonly(tmpdb_path, err, sizeof(err));
    ck_assert_msg(ro != NULL, "%s", err);
    b = book(c, ro, T0);
    ledger_close(ro);
    int c1 = scope(c, "agent:crawler-1"), c2 = scope(c, "agent:crawler-2");
    int team = scope(c, "team:search"), judge = scope(c, "agent:judge");

    ck_assert_int_eq(used(b, team, CONF_WIN_DAY, T0), 35);
    ck_assert_int_eq(used(b, team, CONF_WIN_MONTH, T0), 1235); /* other windows keep theirs */
    ck_assert_int_eq(used(b, c1, CONF_WIN_DAY, T0), 230);      /* other scopes too */
    ck_assert_int_eq(used(b, c1, CONF_WIN_MINUTE, T0), 30);
    ck_assert_int_eq(used(b, c1, CONF_WIN_TOTAL, T0), 30);
    ck_assert_int_eq(used(b, team, CONF_WIN_TOTAL, T0), 1235);

    ck_assert_int_eq(view(b, team, CONF_WIN_DAY, T0).limit.tokens, 300);
    ck_assert_int_eq(view(b, judge, CONF_WIN_DAY, T0).limit.tokens, 50);
    ck_assert_int_eq(view(b, c1, CONF_WIN_MONTH, T0).limit.tokens, 100000);
    struct budget_ask a = chat(c1, 0, -1);
    struct budget_resv r = admit(b, &a, T0);
    ck_assert_int_eq(r.remaining, 300 - 35);
    ck_assert_int_eq(r.allowance, 300 - 35 - held_input(0, 0));
    budget_settle(b, &r, 0, 0, T0, NULL, 0);
    a = chat(judge, 100, 1);
    struct budget_refusal why = refuse(b, &a, T0);
    ck_assert_int_eq(why.scope, judge);
    ck_assert_int_eq(why.limit, 50);

    ck_assert_int_eq(budget_authenticate(b, "tg-ledger-key-0003", 18, &agent, id),
                     BUDGET_AUTH_OK);
    ck_assert_int_eq(agent, c2);
    ck_assert_str_eq(id, "key_349ebd021dec");
    ck_assert_int_eq(budget_authenticate(b, "tg-ledger-key-0004", 18, &agent, id),
                     BUDGET_AUTH_REVOKED);
    /* the key of an agent the config no longer has is not loaded */
    ck_assert_int_eq(budget_authenticate(b, "tg-added-key-0005", 17, &agent, id),
                     BUDGET_AUTH_UNKNOWN);
    /* the config's keys are still there */
    ck_assert_int_eq(budget_authenticate(b, "tg-test-alpha-0001", 18, &agent, id),
                     BUDGET_AUTH_OK);
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

/* ---- tasks, cutoffs and minimums -------------------------------------------------------- */

#define POLICY_TEXT(policy)                                                                        \
    BASE "policies:\n"                                                                             \
         "  p:\n" policy "policy: p\n"

START_TEST(task_limits)
{
    struct conf *c = load(POLICY_TEXT("    task: { max_requests: 3, max_usd: 0.01 }\n"));
    struct budget_book *b = book(c, NULL, T0);
    int a = scope(c, "agent:crawler-1"), other = scope(c, "agent:crawler-2");
    const struct conf_price *price = &c->models[0].price;
    struct budget_resv r[4];
    struct budget_refusal why;
    struct budget_ask ask = chat(a, 100, 10);

    ask.price = price;
    ask.task = "job-1";
    /* max_requests: the fourth request of the task is refused, whatever it costs */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[i], &why), 0);
        budget_settle(b, &r[i], 110, budget_cost(price, 100, 0, 0, 0, 10), T0, NULL, 0);
    }
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[3], &why), -1);
    ck_assert_int_eq(why.kind, BUDGET_TASK);
    ck_assert_int_eq(why.limit, 3);
    ck_assert_int_eq(why.used, 3);
    /* another task of the same agent, and the same task id of another agent, are apart */
    ask.task = "job-2";
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[3], &why), 0);
    budget_settle(b, &r[3], 0, 0, T0, NULL, 0);
    ask.agent = other;
    ask.task = "job-1";
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[3], &why), 0);
    budget_settle(b, &r[3], 0, 0, T0, NULL, 0);
    /* no task header: no task limit */
    ask.agent = a;
    ask.task = NULL;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[0], &why), 0);
        budget_settle(b, &r[0], 0, 0, T0, NULL, 0);
    }

    /* max_usd: $0.01 at $2.50/$10 per million. The task's dollars bound the output allowance
     * like a budget: a request without a cap is given what the task has left. */
    ask.task = "job-3";
    ask.max_output = -1;
    ask.model_cap = 100000;
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[0], &why), 0);
    ck_assert(r[0].write_max);
    int64_t in_cost = budget_cost(price, held_input(100, 0), 0, 0, 0, 0);
    ck_assert_int_eq(r[0].allowance, (10000000 - in_cost) * 1000 / 10000000);
    ck_assert_int_le(r[0].nusd, 10000000);
    /* while it is under way, a second request of the task has nothing left */
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[1], &why), -1);
    ck_assert_int_eq(why.kind, BUDGET_TASK);
    ck_assert(why.usd);
    /* settled at less than reserved, the rest is the task's again */
    budget_settle(b, &r[0], 600, budget_cost(price, 100, 0, 0, 0, 500), T0, NULL, 0);
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r[1], &why), 0);
    ck_assert_int_le(r[1].nusd, 10000000 - budget_cost(price, 100, 0, 0, 0, 500));
    budget_settle(b, &r[1], 0, 0, T0, NULL, 0);
    ck_assert_int_eq(budget_reserved_total(b), 0);
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

START_TEST(loop_detection)
{
    struct conf *c = load(POLICY_TEXT("    cutoffs: { loop_detection: enabled }\n"));
    struct budget_book *b = book(c, NULL, T0);
    int a = scope(c, "agent:crawler-1");
    struct budget_resv r;
    struct budget_refusal why;
    struct budget_ask ask = chat(a, 10, 10);

    ask.fingerprint = 0x1234;
    for (int i = 0; i < BUDGET_LOOP_REPEATS; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0 + i, &r, &why), 0);
        budget_settle(b, &r, 20, 0, T0 + i, NULL, 0);
    }
    ck_assert_int_eq(budget_reserve(b, &ask, T0 + 20, &r, &why), -1);
    ck_assert_int_eq(why.kind, BUDGET_LOOP);
    ck_assert_int_eq(why.used, BUDGET_LOOP_REPEATS);
    /* another body goes through; the same body does once the window has passed */
    ask.fingerprint = 0x5678;
    ck_assert_int_eq(budget_reserve(b, &ask, T0 + 20, &r, &why), 0);
    budget_settle(b, &r, 20, 0, T0 + 20, NULL, 0);
    ask.fingerprint = 0x1234;
    ck_assert_int_eq(budget_reserve(b, &ask, T0 + BUDGET_LOOP_WINDOW + 1, &r, &why), 0);
    budget_settle(b, &r, 20, 0, T0 + BUDGET_LOOP_WINDOW + 1, NULL, 0);
    /* without the policy, no limit */
    ask.agent = scope(c, "agent:crawler-2");
    budget_book_free(b);
    conf_unref(c);

    c = load(BASE);
    b = book(c, NULL, T0);
    ask.agent = scope(c, "agent:crawler-1");
    for (int i = 0; i < 3 * BUDGET_LOOP_REPEATS; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0, &r, &why), 0);
        budget_settle(b, &r, 20, 0, T0, NULL, 0);
    }
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

START_TEST(max_retries)
{
    struct conf *c = load(POLICY_TEXT("    cutoffs: { max_retries: 2 }\n"));
    struct budget_book *b = book(c, NULL, T0);
    struct budget_resv r;
    struct budget_refusal why;
    struct budget_ask ask = chat(scope(c, "agent:judge"), 10, 10);

    ask.fingerprint = 0xabc;
    /* the first try and two retries fail; the third retry is refused for the cooldown */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0 + i, &r, &why), 0);
        r.failed = 1;
        budget_settle(b, &r, 0, 0, T0 + i, NULL, 0);
    }
    ck_assert_int_eq(budget_reserve(b, &ask, T0 + 3, &r, &why), -1);
    ck_assert_int_eq(why.kind, BUDGET_RETRIES);
    ck_assert_int_eq(why.limit, 2);
    ck_assert_int_eq(why.used, 3);
    ck_assert(why.resets_at == T0 + 2 + BUDGET_RETRY_COOLDOWN);
    /* after the cooldown it may try again; a success clears the count */
    ck_assert_int_eq(budget_reserve(b, &ask, T0 + 2 + BUDGET_RETRY_COOLDOWN, &r, &why), 0);
    budget_settle(b, &r, 20, 0, T0 + 2 + BUDGET_RETRY_COOLDOWN, NULL, 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0 + 70 + i, &r, &why), 0);
        r.failed = 1;
        budget_settle(b, &r, 0, 0, T0 + 70 + i, NULL, 0);
    }
    ck_assert_int_eq(budget_reserve(b, &ask, T0 + 72, &r, &why), 0);
    budget_settle(b, &r, 0, 0, T0 + 72, NULL, 0);
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

START_TEST(min_per_agent_floor)
{
    /* team search (crawler-1, crawler-2) has 1,000 tokens a day; each agent is owed 300 */
    struct conf *c = load(BASE "policies:\n"
                               "  p:\n"
                               "    allocation: { min_per_agent: 300, window: day }\n"
                               "policy: p\n"
                               "budgets:\n"
                               "  - { scope: team:search, window: day, tokens: 1000 }\n");
    struct budget_book *b = book(c, NULL, T0);
    int c1 = scope(c, "agent:crawler-1"), c2 = scope(c, "agent:crawler-2");
    struct budget_resv r;
    struct budget_refusal why;
    struct budget_ask ask = chat(c1, 96, 0);

    /* embeddings-like requests (no output), so that each needs exactly its input:
     * crawler-1 alone can use the 700 not held for crawler-2, 100 at a time (96 + 1% + 4) */
    ask.generates = 0;
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0, &r, &why), 0);
        ck_assert_int_eq(r.tokens, 100);
        budget_settle(b, &r, 100, 0, T0, NULL, 0);
    }
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r, &why), -1);
    ck_assert_int_eq(why.kind, BUDGET_OVER);
    ck_assert_int_eq(why.scope, scope(c, "team:search"));
    ck_assert_int_eq(why.used, 700);
    ck_assert_int_eq(why.reserved, 300); /* crawler-2's floor */
    ck_assert_int_eq(why.remaining, 0);
    /* crawler-2 still gets its 300 */
    ask.agent = c2;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(budget_reserve(b, &ask, T0, &r, &why), 0);
        budget_settle(b, &r, 100, 0, T0, NULL, 0);
    }
    ck_assert_int_eq(budget_reserve(b, &ask, T0, &r, &why), -1);
    /* a new day: the floors are owed again */
    ask.agent = c1;
    ck_assert_int_eq(budget_reserve(b, &ask, T1, &r, &why), 0);
    budget_settle(b, &r, 100, 0, T1, NULL, 0);
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

static Suite *budget_suite(void)
{
    Suite *s = suite_create("budget");
    TCase *tc = tcase_create("reserve");

    tcase_add_test(tc, reserve_on_every_scope);
    tcase_add_test(tc, allowance_rules);
    tcase_add_test(tc, cost_rounding);
    tcase_add_test(tc, dollar_budget);
    suite_add_tcase(s, tc);

    tc = tcase_create("windows");
    tcase_add_test(tc, window_rollover_all);
    tcase_add_test(tc, window_rollover_in_flight);
    tcase_add_test(tc, window_bounds_utc);
    tcase_add_test(tc, window_bounds_berlin);
    tcase_add_test(tc, day_boundary_berlin);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, threads_never_overspend);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys_policies_alerts");
    tcase_add_test(tc, keys_authenticate);
    tcase_add_test(tc, policies_cascade);
    tcase_add_test(tc, policy_org_and_team);
    tcase_add_test(tc, alerts_once_per_window);
    tcase_add_test(tc, task_limits);
    tcase_add_test(tc, loop_detection);
    tcase_add_test(tc, max_retries);
    tcase_add_test(tc, min_per_agent_floor);
    suite_add_tcase(s, tc);

    tc = tcase_create("ledger");
    tcase_add_checked_fixture(tc, ledger_setup, tmpdb_remove);
    tcase_add_test(tc, ledger_restores_spend);
    tcase_add_test(tc, ledger_resets_overrides_keys);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(budget_suite());
}
