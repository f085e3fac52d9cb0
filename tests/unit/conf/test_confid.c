/*
 * Unit tests for conf/confid: the org tree, keys, budgets, policies, prices, ledger and
 * timezone parts of the config. Each bad input must fail with "t.yaml:LINE: " and a reason
 * that names what is wrong; a key's secret never appears in an error.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "run_suite.h"

#define NAME "t.yaml"

/* lines 1-5: a provider and a priced model */
#define HEAD                                                                                       \
    "providers:\n"                                                                                 \
    "  o:\n"                                                                                       \
    "    base_url: http://127.0.0.1:8000/v1\n"                                                     \
    "models:\n"                                                                                    \
    "  m: { provider: o, price: { input: 1, output: 2 } }\n"

/* lines 6-11: the tree and the ledger */
#define TREE                                                                                       \
    "org: acme\n"                                                                                  \
    "departments:\n"                                                                               \
    "  research:\n"                                                                                \
    "    teams:\n"                                                                                 \
    "      search: { agents: [crawler-1, crawler-2] }\n"                                           \
    "ledger: { path: state/ledger.db }\n"

static char err[512];

static struct conf *load(const char *text)
{
    err[0] = '\0';
    return conf_load_string(text, strlen(text), NAME, err, sizeof(err));
}

/* Asserts that text fails with "t.yaml:LINE: " and a message holding every word. */
static void expect_error(const char *text, int line, const char *const *words)
{
    struct conf *c = load(text);
    int loaded = c != NULL, got = -1, used = 0;

    conf_unref(c);
    ck_assert_msg(!loaded, "loaded a bad config:\n%s", text);
    ck_assert_msg(sscanf(err, NAME ":%d: %n", &got, &used) == 1 && used > 0,
                  "error does not start with '" NAME ":LINE: ': '%s'", err);
    ck_assert_msg(got == line, "error names line %d, not %d: '%s'", got, line, err);
    for (; words != NULL && *words != NULL; words++)
        ck_assert_msg(strstr(err, *words) != NULL, "error does not mention '%s': '%s'", *words,
                      err);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

START_TEST(valid_tree)
{
    struct conf *c = load(HEAD TREE "keys:\n  tg-good-key-0001: crawler-1\n"
                                    "budgets:\n  - { scope: team:search, window: day, tokens: 5 }\n"
                                    "  - { scope: org, window: month, usd: 2.5 }\n"
                                    "timezone: Europe/Berlin\n");

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->nscopes, 5);
    ck_assert_int_eq(c->nkeys, 1);
    int team = conf_find_scope(c, "team:search");
    ck_assert_int_eq(c->scopes[team].limits[CONF_WIN_DAY].tokens, 5);
    ck_assert_int_eq(c->scopes[team].limits[CONF_WIN_DAY].nusd, -1);
    ck_assert_int_eq(c->scopes[0].limits[CONF_WIN_MONTH].nusd, 2500000000LL);
    ck_assert_str_eq(c->timezone, "Europe/Berlin");
    conf_unref(c);
}
END_TEST

START_TEST(err_key_unknown_agent)
{
    expect_error(HEAD TREE "keys:\n  tg-good-key-0001: crawler-9\n", 13,
                 WORDS("keys", "crawler-9"));
    ck_assert_ptr_null(strstr(err, "tg-good-key-0001"));
}
END_TEST

START_TEST(err_duplicate_names)
{
    expect_error(HEAD "org: acme\n"
                      "departments:\n"
                      "  research:\n"
                      "    teams:\n"
                      "      search: { agents: [crawler-1, crawler-1] }\n"
                      "ledger: { path: x.db }\n",
                 10, WORDS("crawler-1", "twice"));
    /* the same team name in two departments */
    expect_error(HEAD "org: acme\n"
                      "departments:\n"
                      "  research:\n"
                      "    teams:\n"
                      "      search: { agents: [a] }\n"
                      "  ops:\n"
                      "    teams:\n"
                      "      search: { agents: [b] }\n"
                      "ledger: { path: x.db }\n",
                 13, WORDS("team", "search", "twice"));
    /* an agent and a team may share a name: unique per level */
    struct conf *c = load(HEAD "org: acme\n"
                               "departments:\n"
                               "  research:\n"
                               "    teams:\n"
                               "      search: { agents: [search] }\n"
                               "ledger: { path: x.db }\n");
    ck_assert_msg(c != NULL, "%s", err);
    conf_unref(c);
}
END_TEST

START_TEST(err_key_not_tg)
{
    expect_error(HEAD TREE "keys:\n  sk-live-very-secret-0001: crawler-1\n", 13,
                 WORDS("keys", "tg-"));
    ck_assert_msg(strstr(err, "very-secret") == NULL, "the secret is in the error: %s", err);
    /* too short */
    expect_error(HEAD TREE "keys:\n  tg-abc: crawler-1\n", 13, WORDS("tg-", "12"));
    ck_assert_msg(strstr(err, "tg-abc") == NULL, "the secret is in the error: %s", err);
    /* the same key twice: names the line of the first, not the key */
    expect_error(HEAD TREE "keys:\n  tg-good-key-0001: crawler-1\n"
                           "  tg-good-key-0001: crawler-2\n",
                 14, WORDS("line 13"));
    ck_assert_msg(strstr(err, "good-key") == NULL, "the secret is in the error: %s", err);
}
END_TEST

START_TEST(err_key_bad_sha256)
{
    /* 63 hex digits */
    expect_error(HEAD TREE "keys:\n"
                           "  sha256:296f4e92e98bae7c8324fcd5ad9e18ee8866ba6e3f2fac8e93b7edad02f8694:"
                           " crawler-1\n",
                 13, WORDS("sha256", "64 hex"));
    /* 64 characters, one not hex */
    expect_error(HEAD TREE "keys:\n"
                           "  sha256:296f4e92e98bae7c8324fcd5ad9e18ee8866ba6e3f2fac8e93b7edad02f8694g:"
                           " crawler-1\n",
                 13, WORDS("sha256", "64 hex"));
}
END_TEST

START_TEST(err_budget_scope_window)
{
    expect_error(HEAD TREE "budgets:\n  - { scope: team:nowhere, window: day, tokens: 5 }\n", 13,
                 WORDS("team:nowhere"));
    expect_error(HEAD TREE "budgets:\n  - { scope: crawler-1, window: day, tokens: 5 }\n", 13,
                 WORDS("crawler-1", "agent:NAME"));
    expect_error(HEAD TREE "budgets:\n  - { scope: org, window: week, tokens: 5 }\n", 13,
                 WORDS("window", "week"));
    expect_error(HEAD TREE "budgets:\n  - { scope: org, tokens: 5 }\n", 13,
                 WORDS("scope", "window"));
}
END_TEST

START_TEST(err_budget_amounts)
{
    expect_error(HEAD TREE "budgets:\n  - { scope: org, window: day }\n", 13,
                 WORDS("tokens", "usd"));
    expect_error(HEAD TREE "budgets:\n  - { scope: org, window: day, tokens: -5 }\n", 13,
                 WORDS("tokens", "-5"));
    expect_error(HEAD TREE "budgets:\n  - { scope: org, window: day, usd: 'ten' }\n", 13,
                 WORDS("usd", "ten"));
    expect_error(HEAD TREE "budgets:\n"
                           "  - { scope: team:search, window: day, tokens: 5 }\n"
                           "  - { scope: team:search, window: day, usd: 5 }\n",
                 14, WORDS("team:search", "two budgets", "day"));
}
END_TEST

START_TEST(err_dollars_without_price)
{
    /* the message names the model without a price, on its line */
    const char *text = "providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
                       "models:\n  m: { provider: o, price: { input: 1, output: 2 } }\n"
                       "  free: o\n" TREE
                       "budgets:\n  - { scope: org, window: month, usd: 5 }\n";
    struct conf *c = load(text);
    int line = -1;

    ck_assert_ptr_null(c);
    ck_assert_msg(sscanf(err, NAME ":%d: ", &line) == 1 && line == 6, "not line 6: %s", err);
    ck_assert_msg(strstr(err, "'free'") != NULL && strstr(err, "price") != NULL, "%s", err);
    /* a token budget needs no price */
    text = "providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
           "models:\n  free: o\n" TREE
           "budgets:\n  - { scope: org, window: month, tokens: 5 }\n";
    c = load(text);
    ck_assert_msg(c != NULL, "%s", err);
    conf_unref(c);
}
END_TEST

START_TEST(err_anonymous_without_budget)
{
    expect_error(HEAD TREE "anonymous: true\n", 12, WORDS("anonymous", "budget"));
    struct conf *c = load(HEAD TREE "anonymous: true\n"
                                    "budgets:\n  - { scope: anonymous, window: day, tokens: 10 }\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_ge(c->anonymous_scope, 0);
    conf_unref(c);
    /* a budget of the org does not count as its own */
    expect_error(HEAD TREE "anonymous: { allowed: true }\n"
                           "budgets:\n  - { scope: org, window: day, tokens: 10 }\n",
                 12, WORDS("anonymous", "budget"));
}
END_TEST

START_TEST(err_org_without_ledger)
{
    expect_error(HEAD "org: acme\n"
                      "departments:\n"
                      "  research:\n"
                      "    teams:\n"
                      "      search: { agents: [crawler-1] }\n",
                 6, WORDS("ledger"));
    expect_error(HEAD "org: acme\n"
                      "departments:\n"
                      "  research:\n"
                      "    teams:\n"
                      "      search: { agents: [crawler-1] }\n"
                      "ledger: { sync: full }\n",
                 11, WORDS("ledger", "path"));
}
END_TEST

START_TEST(ledger_on_failure)
{
    static const char *const base = HEAD "org: acme\n"
                                         "departments:\n"
                                         "  research:\n"
                                         "    teams:\n"
                                         "      search: { agents: [crawler-1] }\n";
    char text[1024];
    struct conf *c;

    snprintf(text, sizeof(text), "%sledger: { path: x.db }\n", base);
    c = load(text);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->ledger_fail_open, 0); /* closed by default */
    conf_unref(c);
    snprintf(text, sizeof(text), "%sledger: { path: x.db, on_failure: open }\n", base);
    c = load(text);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->ledger_fail_open, 1);
    conf_unref(c);
    snprintf(text, sizeof(text), "%sledger: { path: x.db, on_failure: closed }\n", base);
    c = load(text);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->ledger_fail_open, 0);
    conf_unref(c);
    snprintf(text, sizeof(text), "%sledger: { path: x.db, on_failure: ignore }\n", base);
    expect_error(text, 11, WORDS("on_failure", "closed or open", "ignore"));
}
END_TEST

START_TEST(err_keys_without_org)
{
    expect_error(HEAD "keys:\n  tg-good-key-0001: crawler-1\n", 7, WORDS("org"));
    ck_assert_ptr_null(strstr(err, "good-key"));
    expect_error(HEAD "budgets:\n  - { scope: org, window: day, tokens: 5 }\n", 7,
                 WORDS("org"));
}
END_TEST

START_TEST(err_policies)
{
    expect_error(HEAD "org: acme\n"
                      "departments:\n"
                      "  research:\n"
                      "    policy: nosuch\n"
                      "    teams:\n"
                      "      search: { agents: [crawler-1] }\n"
                      "ledger: { path: x.db }\n",
                 9, WORDS("nosuch", "policies"));
    expect_error(HEAD "org: acme\n"
                      "policies:\n"
                      "  p:\n"
                      "    allocation: { min_per_agent: 500, max_per_agent: 100 }\n"
                      "departments:\n"
                      "  research:\n"
                      "    teams:\n"
                      "      search: { agents: [crawler-1] }\n"
                      "ledger: { path: x.db }\n",
                 9, WORDS("'p'", "min_per_agent", "max_per_agent"));
    expect_error(HEAD "org: acme\n"
                      "policies:\n"
                      "  p: { allocation: { max_per_agent: 100, window: fortnight } }\n"
                      "departments:\n"
                      "  research:\n"
                      "    teams:\n"
                      "      search: { agents: [crawler-1] }\n"
                      "ledger: { path: x.db }\n",
                 8, WORDS("window", "fortnight"));
}
END_TEST

START_TEST(err_timezone)
{
    expect_error(HEAD TREE "timezone: Mars/Olympus\n", 12, WORDS("Mars/Olympus"));
    expect_error(HEAD TREE "timezone: ../../etc/passwd\n", 12, WORDS("timezone"));
    expect_error(HEAD TREE "timezone: /etc/localtime\n", 12, WORDS("timezone"));
}
END_TEST

START_TEST(err_price)
{
    expect_error("providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
                 "models:\n"
                 "  m:\n"
                 "    provider: o\n"
                 "    price: { input: 1 }\n",
                 7, WORDS("'m'", "input", "output"));
    expect_error("providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
                 "models:\n"
                 "  m:\n"
                 "    provider: o\n"
                 "    price: { output: 1 }\n",
                 7, WORDS("'m'", "input", "output"));
    expect_error("providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
                 "models:\n"
                 "  m:\n"
                 "    provider: o\n"
                 "    price: { input: 1, output: cheap }\n",
                 7, WORDS("output", "cheap"));
    expect_error("providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
                 "models:\n"
                 "  m:\n"
                 "    provider: o\n"
                 "    price: { input: 1, output: 2, reasoning: 3 }\n",
                 7, WORDS("reasoning"));
}
END_TEST

START_TEST(cache_min_tokens)
{
    struct conf *c = load("providers:\n  a:\n    base_url: http://127.0.0.1:8000/v1\n"
                          "    format: anthropic\n"
                          "models:\n"
                          "  set: { provider: a, cache_min_tokens: 2048 }\n"
                          "  zero: { provider: a, cache_min_tokens: 0 }\n"
                          "  unset: { provider: a }\n");

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(conf_find_model(c, "set")->cache_min_tokens, 2048);
    ck_assert_int_eq(conf_find_model(c, "zero")->cache_min_tokens, 0);
    ck_assert_int_eq(conf_find_model(c, "unset")->cache_min_tokens, 0); /* by family */
    conf_unref(c);
    expect_error("providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
                 "models:\n"
                 "  m: { provider: o, cache_min_tokens: -1 }\n",
                 5, WORDS("cache_min_tokens"));
    expect_error("providers:\n  o:\n    base_url: http://127.0.0.1:8000/v1\n"
                 "models:\n"
                 "  m: { provider: o, cache_min_tokens: lots }\n",
                 5, WORDS("cache_min_tokens", "lots"));
}
END_TEST

START_TEST(webhook_url)
{
    static const struct {
        const char *url, *host, *host_header, *path;
        int tls, port;
    } good[] = {
        {"http://127.0.0.1:9000/tokengate/alerts", "127.0.0.1", "127.0.0.1:9000",
         "/tokengate/alerts", 0, 9000},
        {"https://hooks.example.com/services/T0/B0/secret", "hooks.example.com",
         "hooks.example.com", "/services/T0/B0/secret", 1, 443},
        {"https://hooks.example.com:8443", "hooks.example.com", "hooks.example.com:8443", "", 1,
         8443},
        {"http://[::1]:8080/a/", "::1", "[::1]:8080", "/a/", 0, 8080},
    };
    char text[512];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), HEAD "alerts: { thresholds: [80], webhook: '%s' }\n",
                 good[i].url);
        struct conf *c = load(text);
        ck_assert_msg(c != NULL, "%s: %s", good[i].url, err);
        ck_assert_str_eq(c->alerts.webhook, good[i].url);
        ck_assert_int_eq(c->alerts.hook.tls, good[i].tls);
        ck_assert_str_eq(c->alerts.hook.host, good[i].host);
        ck_assert_int_eq(c->alerts.hook.port, good[i].port);
        ck_assert_str_eq(c->alerts.hook.host_header, good[i].host_header);
        /* the path is kept as written: a webhook's trailing slash is part of its address */
        ck_assert_str_eq(c->alerts.hook.path, good[i].path);
        conf_unref(c);
    }
}
END_TEST

START_TEST(err_webhook_url)
{
    expect_error(HEAD "alerts: { webhook: 'ftp://hooks.example.com/x' }\n", 6,
                 WORDS("webhook", "http://", "https://"));
    expect_error(HEAD "alerts: { webhook: 'https://hooks.example.com:99999/x' }\n", 6,
                 WORDS("webhook", "port"));
    expect_error(HEAD "alerts: { webhook: 'http://:8080/x' }\n", 6, WORDS("webhook", "host"));
    expect_error(HEAD "alerts: { webhook: 'https://user:pw@hooks.example.com/x' }\n", 6,
                 WORDS("webhook", "credentials"));
    expect_error(HEAD "alerts: { webhook: 'http://[::1/x' }\n", 6, WORDS("webhook", "IPv6"));
    /* a second webhook replaces the first; a bad second one still fails */
    expect_error(HEAD "alerts:\n  webhook: 'http://127.0.0.1:9/a'\n  webhook: 'gopher://x'\n", 8,
                 WORDS("webhook"));
}
END_TEST

static Suite *confid_suite(void)
{
    Suite *s = suite_create("confid");
    TCase *tc = tcase_create("errors");

    tcase_add_test(tc, valid_tree);
    tcase_add_test(tc, err_key_unknown_agent);
    tcase_add_test(tc, err_duplicate_names);
    tcase_add_test(tc, err_key_not_tg);
    tcase_add_test(tc, err_key_bad_sha256);
    tcase_add_test(tc, err_budget_scope_window);
    tcase_add_test(tc, err_budget_amounts);
    tcase_add_test(tc, err_dollars_without_price);
    tcase_add_test(tc, err_anonymous_without_budget);
    tcase_add_test(tc, err_org_without_ledger);
    tcase_add_test(tc, ledger_on_failure);
    tcase_add_test(tc, err_keys_without_org);
    tcase_add_test(tc, err_policies);
    tcase_add_test(tc, err_timezone);
    tcase_add_test(tc, err_price);
    tcase_add_test(tc, cache_min_tokens);
    tcase_add_test(tc, webhook_url);
    tcase_add_test(tc, err_webhook_url);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(confid_suite());
}
