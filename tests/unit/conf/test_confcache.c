/*
 * Unit tests for conf/confcache: the cache section and a policy's cache key read back key by
 * key; every default; every refusal with its exact "t.yaml:LINE: reason"; and
 * budget_cache_policy: the policy in force at an agent (its own, a team's, the org's), the
 * defaults with no policy and with no book. Each config is freed by conf_unref: the ASan
 * build shows any leak.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "run_suite.h"

#define NAME "t.yaml"

/* lines 1-2 */
#define BASE                                                                                       \
    "providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"                                    \
    "models: { m: { provider: o } }\n"

/* lines 1-4: policies are read under an org (which needs a ledger) */
#define BASEO BASE "org: acme\nledger: { path: x.db }\n"

static char err[512];

static struct conf *load(const char *text)
{
    err[0] = '\0';
    return conf_load_string(text, strlen(text), NAME, err, sizeof(err));
}

static void refused(const char *text, const char *want)
{
    struct conf *c = load(text);
    int loaded = c != NULL;

    conf_unref(c);
    ck_assert_msg(!loaded, "loaded a bad config:\n%s", text);
    ck_assert_str_eq(err, want);
}

#define MIB ((size_t)1024 * 1024)

START_TEST(defaults)
{
    struct conf *c = load(BASE);
    const struct conf_policy_cache *d = conf_policy_cache_defaults();

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->cache.responses, 1);
    ck_assert_uint_eq(c->cache.max_bytes, 256 * MIB);
    ck_assert_uint_eq(c->cache.max_entry_bytes, 4 * MIB);
    ck_assert_int_eq(c->cache.max_ttl_ms, 24LL * 3600 * 1000);
    ck_assert_int_eq(c->cache.prefix_counts, 1);
    ck_assert_int_eq(c->cache.prefix_max_entries, 1000000);
    ck_assert_uint_eq(c->cache.tools_max_bytes, 64 * MIB);
    ck_assert_uint_eq(c->cache.tools_max_entry_bytes, 1 * MIB);
    ck_assert_int_eq(c->cache.ntools, 0);
    ck_assert_ptr_null(c->cache.tools);
    conf_unref(c);

    ck_assert_int_eq(d->responses, CONF_CACHE_AUTO);
    ck_assert_int_eq(d->scope, CONF_LEVEL_AGENT);
    ck_assert_int_eq(d->ttl_ms, 600000);
    ck_assert_int_eq(d->prompt_anthropic, 0);
    ck_assert_int_eq(d->prompt_ttl_1h, 0);
    ck_assert_int_eq(d->prompt_openai_key, 0);
    ck_assert_int_eq(d->prompt_scope, CONF_LEVEL_AGENT);

    /* a policy that does not say keeps every default; one that says part keeps the rest */
    c = load(BASEO "policies: { a: { max_per_request: 10 }, b: { cache: { ttl: 1m } } }\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(memcmp(&c->policies[0].cache, d, sizeof(*d)), 0);
    ck_assert_int_eq(c->policies[1].cache.ttl_ms, 60000);
    ck_assert_int_eq(c->policies[1].cache.scope, CONF_LEVEL_AGENT);
    ck_assert_int_eq(c->policies[1].cache.responses, CONF_CACHE_AUTO);
    conf_unref(c);
}
END_TEST

START_TEST(every_key)
{
    struct conf *c = load(BASE "cache:\n"
                               "  responses:\n"
                               "    enabled: false\n"
                               "    max_bytes: 8MiB\n"
                               "    max_entry_bytes: 64KiB\n"
                               "    max_ttl: 2h\n"
                               "  prefix_counts: { enabled: false, max_entries: 5000 }\n"
                               "  tools:\n"
                               "    max_bytes: 2MiB\n"
                               "    max_entry_bytes: 16KiB\n"
                               "    ttl: { get_weather: 10m, search: 30s }\n"
                               "org: acme\n"
                               "ledger: { path: x.db }\n"
                               "policies:\n"
                               "  p:\n"
                               "    cache:\n"
                               "      responses: on\n"
                               "      scope: team\n"
                               "      ttl: 90s\n"
                               "      prompt: { anthropic: true, ttl: 1h, openai_key: true, "
                               "scope: department }\n"
                               "  q: { cache: { responses: off, scope: org } }\n"
                               "  r: { cache: { responses: auto, prompt: { ttl: 5m } } }\n");

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->cache.responses, 0);
    ck_assert_uint_eq(c->cache.max_bytes, 8 * MIB);
    ck_assert_uint_eq(c->cache.max_entry_bytes, 64 * 1024);
    ck_assert_int_eq(c->cache.max_ttl_ms, 2LL * 3600 * 1000);
    ck_assert_int_eq(c->cache.prefix_counts, 0);
    ck_assert_int_eq(c->cache.prefix_max_entries, 5000);
    ck_assert_uint_eq(c->cache.tools_max_bytes, 2 * MIB);
    ck_assert_uint_eq(c->cache.tools_max_entry_bytes, 16 * 1024);
    ck_assert_int_eq(c->cache.ntools, 2);
    ck_assert_str_eq(c->cache.tools[0], "get_weather");
    ck_assert_int_eq(c->cache.tools_ttl_ms[0], 600000);
    ck_assert_str_eq(c->cache.tools[1], "search");
    ck_assert_int_eq(c->cache.tools_ttl_ms[1], 30000);

    const struct conf_policy_cache *p = &c->policies[0].cache;
    ck_assert_int_eq(p->responses, CONF_CACHE_ON);
    ck_assert_int_eq(p->scope, CONF_LEVEL_TEAM);
    ck_assert_int_eq(p->ttl_ms, 90000);
    ck_assert_int_eq(p->prompt_anthropic, 1);
    ck_assert_int_eq(p->prompt_ttl_1h, 1);
    ck_assert_int_eq(p->prompt_openai_key, 1);
    ck_assert_int_eq(p->prompt_scope, CONF_LEVEL_DEPARTMENT);
    p = &c->policies[1].cache;
    ck_assert_int_eq(p->responses, CONF_CACHE_OFF);
    ck_assert_int_eq(p->scope, CONF_LEVEL_ORG);
    p = &c->policies[2].cache;
    ck_assert_int_eq(p->responses, CONF_CACHE_AUTO);
    ck_assert_int_eq(p->prompt_ttl_1h, 0);
    conf_unref(c);

    /* an empty allowlist is none */
    c = load(BASE "cache: { tools: { ttl: {} } }\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->cache.ntools, 0);
    conf_unref(c);
}
END_TEST

START_TEST(refusals_section)
{
    refused(BASE "cache: 5\n", NAME ":3: 'cache' must be a mapping of keys to values");
    refused(BASE "cache: { reponses: {} }\n",
            NAME ":3: cache has no 'reponses' (responses, prefix_counts, tools)");
    refused(BASE "cache:\n  responses: on\n",
            NAME ":4: 'responses' must be a mapping of keys to values");
    refused(BASE "cache:\n  responses:\n    enabled: yes\n",
            NAME ":5: cache: responses.enabled must be true or false, not 'yes'");
    refused(BASE "cache:\n  responses:\n    max_bytes: lots\n",
            NAME ":5: 'max_bytes' must be a positive size such as 64KiB or 32MiB, not 'lots'");
    refused(BASE "cache:\n  responses:\n    max_entry_bytes: 0\n",
            NAME ":5: 'max_entry_bytes' must be a positive size such as 64KiB or 32MiB, not '0'");
    refused(BASE "cache:\n  responses:\n    max_ttl: forever\n",
            NAME ":5: 'max_ttl' must be a positive duration such as 10s, 500ms or 2m, not "
                 "'forever'");
    refused(BASE "cache:\n  responses:\n    ttl: 1m\n",
            NAME ":5: cache: responses has no 'ttl' (enabled, max_bytes, max_entry_bytes, "
                 "max_ttl)");
    refused(BASE "cache:\n  responses: { max_bytes: 1MiB, max_entry_bytes: 2MiB }\n",
            NAME ":4: cache: responses.max_entry_bytes (2097152 bytes) is larger than max_bytes "
                 "(1048576 bytes)");
    refused(BASE "cache:\n  prefix_counts: { enabled: 1 }\n",
            NAME ":4: cache: prefix_counts.enabled must be true or false, not '1'");
    refused(BASE "cache:\n  prefix_counts: { max_entries: 0 }\n",
            NAME ":4: 'max_entries' must be a whole number from 1 to 100000000, not '0'");
    refused(BASE "cache:\n  prefix_counts: { size: 3 }\n",
            NAME ":4: cache: prefix_counts has no 'size' (enabled, max_entries)");
    refused(BASE "cache:\n  tools: { max_bytes: -1 }\n",
            NAME ":4: 'max_bytes' must be a positive size such as 64KiB or 32MiB, not '-1'");
    refused(BASE "cache:\n  tools: { max_bytes: 1KiB }\n",
            NAME ":4: cache: tools.max_entry_bytes (1048576 bytes) is larger than max_bytes "
                 "(1024 bytes)");
    refused(BASE "cache:\n  tools:\n    ttl: [a, b]\n",
            NAME ":5: 'ttl' must be a mapping of keys to values");
    refused(BASE "cache:\n  tools:\n    ttl:\n      get_weather: never\n",
            NAME ":6: 'tools.ttl.get_weather' must be a positive duration such as 10s, 500ms or "
                 "2m, not 'never'");
    refused(BASE "cache:\n  tools:\n    allow: []\n",
            NAME ":5: cache: tools has no 'allow' (max_bytes, max_entry_bytes, ttl)");
    refused(BASE "cache:\n  tools: { ttl: { a: 1m, a: 2m } }\n",
            NAME ":4: 'a' is given twice in one mapping (first on line 4): YAML keys must be unique");
}
END_TEST

START_TEST(refusals_policy)
{
    refused(BASEO "policies: { p: { cache: on } }\n",
            NAME ":5: 'cache' must be a mapping of keys to values");
    refused(BASEO "policies: { p: { cache: { responses: always } } }\n",
            NAME ":5: policy 'p': cache.responses is auto, on or off, not 'always'");
    refused(BASEO "policies: { p: { cache: { responses: [on] } } }\n",
            NAME ":5: policy 'p': cache.responses is auto, on or off, not 'a list'");
    refused(BASEO "policies: { p: { cache: { scope: tenant } } }\n",
            NAME ":5: policy 'p': cache.scope is agent, team, department or org, not 'tenant'");
    refused(BASEO "policies: { p: { cache: { ttl: 0 } } }\n",
            NAME ":5: 'ttl' must be a positive duration such as 10s, 500ms or 2m, not '0'");
    refused(BASEO "policies: { p: { cache: { store: true } } }\n",
            NAME ":5: policy 'p': cache has no 'store' (responses, scope, ttl, prompt)");
    refused(BASEO "policies: { p: { cache: { prompt: true } } }\n",
            NAME ":5: 'prompt' must be a mapping of keys to values");
    refused(BASEO "policies: { p: { cache: { prompt: { anthropic: maybe } } } }\n",
            NAME ":5: policy 'p': cache.prompt.anthropic must be true or false, not 'maybe'");
    refused(BASEO "policies: { p: { cache: { prompt: { openai_key: 1 } } } }\n",
            NAME ":5: policy 'p': cache.prompt.openai_key must be true or false, not '1'");
    refused(BASEO "policies: { p: { cache: { prompt: { ttl: 10m } } } }\n",
            NAME ":5: policy 'p': cache.prompt.ttl is 5m or 1h, not '10m'");
    refused(BASEO "policies: { p: { cache: { prompt: { scope: key } } } }\n",
            NAME ":5: policy 'p': cache.prompt.scope is agent, team, department or org, not "
                 "'key'");
    refused(BASEO "policies: { p: { cache: { prompt: { breakpoints: 4 } } } }\n",
            NAME ":5: policy 'p': cache.prompt has no 'breakpoints' (anthropic, ttl, "
                 "openai_key, scope)");
}
END_TEST

START_TEST(policy_in_force)
{
    struct conf *c = load(BASEO
                               "policy: orgp\n"
                               "departments:\n"
                               "  d:\n"
                               "    teams:\n"
                               "      t1: { policy: teamp, agents: [a1, a2] }\n"
                               "      t2: { agents: { b1: , b2: { policy: agentp } } }\n"
                               "policies:\n"
                               "  orgp: { cache: { scope: org, ttl: 1h } }\n"
                               "  teamp: { cache: { responses: on, scope: team } }\n"
                               "  agentp: { max_per_request: 100 }\n");
    char berr[256];
    struct budget_book *b;
    struct conf_policy_cache pc;

    ck_assert_msg(c != NULL, "%s", err);
    b = budget_book_new(c, NULL, 0, berr, sizeof(berr));
    ck_assert_msg(b != NULL, "%s", berr);

    pc = budget_cache_policy(b, budget_find_scope(b, "agent:a1"));
    ck_assert_int_eq(pc.responses, CONF_CACHE_ON);
    ck_assert_int_eq(pc.scope, CONF_LEVEL_TEAM);
    ck_assert_int_eq(pc.ttl_ms, 600000); /* teamp leaves ttl at its default */
    pc = budget_cache_policy(b, budget_find_scope(b, "agent:b1"));
    ck_assert_int_eq(pc.scope, CONF_LEVEL_ORG); /* inherited from the org */
    ck_assert_int_eq(pc.ttl_ms, 3600000);
    ck_assert_int_eq(pc.responses, CONF_CACHE_AUTO);
    pc = budget_cache_policy(b, budget_find_scope(b, "agent:b2"));
    ck_assert_int_eq(memcmp(&pc, conf_policy_cache_defaults(), sizeof(pc)), 0);
    pc = budget_cache_policy(b, -1);
    ck_assert_int_eq(memcmp(&pc, conf_policy_cache_defaults(), sizeof(pc)), 0);
    pc = budget_cache_policy(NULL, 3);
    ck_assert_int_eq(memcmp(&pc, conf_policy_cache_defaults(), sizeof(pc)), 0);
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("confcache");
    TCase *t = tcase_create("confcache");

    tcase_add_test(t, defaults);
    tcase_add_test(t, every_key);
    tcase_add_test(t, refusals_section);
    tcase_add_test(t, refusals_policy);
    tcase_add_test(t, policy_in_force);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
