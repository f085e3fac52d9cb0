/*
 * Unit tests for conf/confroute and conf/confrule: tiers, aliases, the routing settings and
 * the rules, read back key by key; the defaults; regexes compiled at load and matching; and
 * every refusal with its exact "t.yaml:LINE: reason". Each config, loaded or refused, is freed
 * by conf_unref: the ASan build of this test shows any leak (regexes included).
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <check.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "run_suite.h"

#define NAME "t.yaml"

/* lines 1-16: providers, models (one wildcard), three tiers, an org with one agent */
#define BASE                                                                                       \
    "providers:\n"                                                                                 \
    "  o: { base_url: 'http://127.0.0.1:9/v1' }\n"                                                 \
    "  a: { base_url: 'http://127.0.0.1:9/v1', format: anthropic }\n"                              \
    "models:\n"                                                                                    \
    "  mini: { provider: o, context_window: 128000, max_output_tokens: 16384 }\n"                  \
    "  big: { provider: a, context_window: 200000 }\n"                                             \
    "  mid: { provider: o }\n"                                                                     \
    "  wild-*: o\n"                                                                                \
    "tiers:\n"                                                                                     \
    "  cheap: [mini]\n"                                                                            \
    "  medium: [mid, big]\n"                                                                       \
    "  expensive: [big, mid]\n"                                                                    \
    "org: acme\n"                                                                                  \
    "departments:\n"                                                                               \
    "  research: { teams: { search: { agents: [crawler] } } }\n"                                   \
    "ledger: { path: x.db }\n"

/* line 17 on: a rules list whose first rule is named x, at lines 18-19 */
#define RULE_X "routing:\n  rules:\n    - name: x\n"

static char err[512];

static struct conf *load(const char *text)
{
    err[0] = '\0';
    return conf_load_string(text, strlen(text), NAME, err, sizeof(err));
}

/* Asserts that text is refused with exactly the message want. */
static void refused(const char *text, const char *want)
{
    struct conf *c = load(text);
    int loaded = c != NULL;

    conf_unref(c);
    ck_assert_msg(!loaded, "loaded a bad config:\n%s", text);
    ck_assert_str_eq(err, want);
}

/* Whether the compiled regex code matches subject. */
static int regex_matches(void *code, const char *subject)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);

    pcre2_match_data_free(md);
    ck_assert_msg(rc >= 0 || rc == PCRE2_ERROR_NOMATCH, "pcre2_match failed: %d", rc);
    return rc >= 0;
}

START_TEST(full_config)
{
    struct conf *c = load(
        BASE "routing:\n"                                                                  /* 17 */
             "  aliases: { auto: medium, fast: mini, top: 'tier:expensive' }\n"
             "  attempts: 4\n"
             "  tier_up: true\n"                                                           /* 20 */
             "  retry_after_max: 30s\n"
             "  breaker: { failures: 3, error_ratio: 40, min_requests: 10, window: 20s, "
             "cooldown: 5s }\n"
             "  classifier: { target: mini, timeout_ms: 250, ttl: 5m, max_entries: 500 }\n"
             "  rules:\n"
             "    - name: r1\n"                                                            /* 25 */
             "      match:\n"
             "        model: [auto, wild-one, 'tier:cheap', mid]\n"
             "        agent: crawler\n"
             "        team: [search]\n"
             "        department: research\n"                                              /* 30 */
             "        header: { x-tokengate-priority: high, X-Tier: { regex: '^(a|b)$' } }\n"
             "        input_tokens: { min: 10, max: 300 }\n"
             "        messages: { max: 4 }\n"
             "        tools: true\n"
             "        images: false\n"                                                     /* 35 */
             "        json_output: true\n"
             "        last_user: { regex: '(?i)\\bhello\\b', keywords: [Translate, extract] }\n"
             "        system: { keywords: classifier }\n"
             "        budget_above: 80\n"
             "        classifier: [simple, moderate]\n"                                    /* 40 */
             "      route: { tier: cheap, max_output_tokens: 500, rewrite_model: true, "
             "tier_up: false }\n"
             "    - name: r2\n"
             "      match: { budget_above: 90 }\n"
             "      route: { tier: down }\n"
             "    - name: r3\n"                                                            /* 45 */
             "      route: { target: big }\n"
             "    - name: canary\n"
             "      match: { model: auto, messages: { min: 2 } }\n"
             "      route: { split: [ { target: mini, percent: 10 }, { tier: medium, percent: 90 } ] }\n"
             "policies:\n"                                                                 /* 50 */
             "  frugal: { on_exhaustion: downgrade, routing: { prefer_cost: true, "
             "max_latency_ms: 500 } }\n"
             "  plain: { max_per_request: 100 }\n"
             "policy: frugal\n");
    ck_assert_msg(c != NULL, "%s", err);
    const struct conf_routing *r = &c->routing;

    /* models */
    ck_assert_int_eq(c->nmodels, 4);
    for (int i = 0; i < c->nmodels; i++)
        ck_assert_int_eq(c->models[i].index, i);
    ck_assert_int_eq(c->models[0].context_window, 128000);
    ck_assert_int_eq(c->models[0].max_output_tokens, 16384);
    ck_assert_int_eq(c->models[1].context_window, 200000);
    ck_assert_int_eq(c->models[2].context_window, 0);
    /* tiers, in the file's order, with their targets in order */
    ck_assert_int_eq(r->ntiers, 3);
    ck_assert_str_eq(r->tiers[0].name, "cheap");
    ck_assert_int_eq(r->tiers[0].ntargets, 1);
    ck_assert_int_eq(r->tiers[0].targets[0], 0);
    ck_assert_int_eq(r->tiers[0].line, 10);
    ck_assert_str_eq(r->tiers[1].name, "medium");
    ck_assert_int_eq(r->tiers[1].ntargets, 2);
    ck_assert_int_eq(r->tiers[1].targets[0], 2);
    ck_assert_int_eq(r->tiers[1].targets[1], 1);
    ck_assert_str_eq(r->tiers[2].name, "expensive");
    ck_assert_int_eq(r->tiers[2].targets[0], 1);
    ck_assert_int_eq(r->tiers[2].targets[1], 2);
    ck_assert_int_eq(conf_find_tier(c, "medium"), 1);
    ck_assert_int_eq(conf_find_tier(c, "huge"), -1);
    /* aliases */
    ck_assert_int_eq(r->naliases, 3);
    struct conf_dest tmp = {-9, -9, -9};
    const struct conf_dest *d = conf_find_alias(c, "auto", &tmp);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->tier, 1);
    ck_assert_int_eq(d->target, -1);
    ck_assert_int_eq(d->down, 0);
    d = conf_find_alias(c, "fast", &tmp);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->tier, -1);
    ck_assert_int_eq(d->target, 0);
    d = conf_find_alias(c, "top", &tmp);
    ck_assert_int_eq(d->tier, 2);
    d = conf_find_alias(c, "tier:cheap", &tmp);
    ck_assert_ptr_eq(d, &tmp);
    ck_assert_int_eq(tmp.tier, 0);
    ck_assert_int_eq(tmp.target, -1);
    ck_assert_int_eq(tmp.down, 0);
    ck_assert_ptr_null(conf_find_alias(c, "tier:huge", &tmp));
    ck_assert_ptr_null(conf_find_alias(c, "tier:", &tmp));
    ck_assert_ptr_null(conf_find_alias(c, "mini", &tmp));
    ck_assert_ptr_null(conf_find_alias(c, "cheap", &tmp));
    /* settings */
    ck_assert_int_eq(r->attempts, 4);
    ck_assert_int_eq(r->tier_up, 1);
    ck_assert_int_eq(r->retry_after_max_ms, 30000);
    ck_assert_int_eq(r->breaker_failures, 3);
    ck_assert_int_eq(r->breaker_error_pct, 40);
    ck_assert_int_eq(r->breaker_min_requests, 10);
    ck_assert_int_eq(r->breaker_window_ms, 20000);
    ck_assert_int_eq(r->breaker_cooldown_ms, 5000);
    ck_assert_int_eq(r->classifier, 0);
    ck_assert_int_eq(r->classifier_timeout_ms, 250);
    ck_assert_int_eq(r->classifier_ttl_ms, 300000);
    ck_assert_int_eq(r->classifier_max_entries, 500);
    ck_assert_int_eq(r->needs_budget, 1);
    ck_assert_int_eq(r->needs_count, 1);
    /* rule 1: every condition */
    ck_assert_int_eq(r->nrules, 4);
    const struct conf_rule *r1 = &r->rules[0];
    ck_assert_str_eq(r1->name, "r1");
    ck_assert_int_eq(r1->line, 25);
    ck_assert_int_eq(r1->nmodels, 4);
    ck_assert_str_eq(r1->models[0], "auto");
    ck_assert_str_eq(r1->models[1], "wild-one");
    ck_assert_str_eq(r1->models[2], "tier:cheap");
    ck_assert_str_eq(r1->models[3], "mid");
    ck_assert_int_eq(r1->nagents, 1);
    ck_assert_str_eq(r1->agents[0], "crawler");
    ck_assert_int_eq(r1->nteams, 1);
    ck_assert_str_eq(r1->teams[0], "search");
    ck_assert_int_eq(r1->ndepartments, 1);
    ck_assert_str_eq(r1->departments[0], "research");
    ck_assert_int_eq(r1->nheaders, 2);
    ck_assert_str_eq(r1->headers[0].name, "x-tokengate-priority");
    ck_assert_str_eq(r1->headers[0].value, "high");
    ck_assert_ptr_null(r1->headers[0].regex);
    ck_assert_ptr_null(r1->headers[0].code);
    ck_assert_str_eq(r1->headers[1].name, "x-tier"); /* lower case */
    ck_assert_ptr_null(r1->headers[1].value);
    ck_assert_str_eq(r1->headers[1].regex, "^(a|b)$");
    ck_assert(regex_matches(r1->headers[1].code, "b"));
    ck_assert(!regex_matches(r1->headers[1].code, "ab"));
    ck_assert_int_eq(r1->input_min, 10);
    ck_assert_int_eq(r1->input_max, 300);
    ck_assert_int_eq(r1->messages_min, -1);
    ck_assert_int_eq(r1->messages_max, 4);
    ck_assert_int_eq(r1->tools, CONF_YES);
    ck_assert_int_eq(r1->images, CONF_NO);
    ck_assert_int_eq(r1->json_output, CONF_YES);
    ck_assert_str_eq(r1->last_user.regex, "(?i)\\bhello\\b");
    ck_assert(regex_matches(r1->last_user.code, "well, HELLO there"));
    ck_assert(!regex_matches(r1->last_user.code, "othello"));
    ck_assert_int_eq(r1->last_user.nkeywords, 2);
    ck_assert_str_eq(r1->last_user.keywords[0], "translate"); /* lower case */
    ck_assert_str_eq(r1->last_user.keywords[1], "extract");
    ck_assert_ptr_null(r1->system.regex);
    ck_assert_ptr_null(r1->system.code);
    ck_assert_int_eq(r1->system.nkeywords, 1);
    ck_assert_str_eq(r1->system.keywords[0], "classifier");
    ck_assert_int_eq(r1->budget_above, 80);
    ck_assert_int_eq(r1->nlabels, 2);
    ck_assert_str_eq(r1->labels[0], "simple");
    ck_assert_str_eq(r1->labels[1], "moderate");
    ck_assert_int_eq(r1->dest.tier, 0);
    ck_assert_int_eq(r1->dest.target, -1);
    ck_assert_int_eq(r1->dest.down, 0);
    ck_assert_int_eq(r1->nsplit, 0);
    ck_assert_int_eq(r1->max_output_tokens, 500);
    ck_assert_int_eq(r1->rewrite_model, 1);
    ck_assert_int_eq(r1->tier_up, 0);
    /* rule 2: tier down */
    const struct conf_rule *r2 = &r->rules[1];
    ck_assert_int_eq(r2->budget_above, 90);
    ck_assert_int_eq(r2->dest.tier, -1);
    ck_assert_int_eq(r2->dest.target, -1);
    ck_assert_int_eq(r2->dest.down, 1);
    /* rule 3: no match (always), a target, the defaults of every condition */
    const struct conf_rule *r3 = &r->rules[2];
    ck_assert_str_eq(r3->name, "r3");
    ck_assert_int_eq(r3->dest.tier, -1);
    ck_assert_int_eq(r3->dest.target, 1);
    ck_assert_int_eq(r3->nmodels + r3->nagents + r3->nteams + r3->ndepartments + r3->nheaders +
                         r3->nlabels + r3->nsplit,
                     0);
    ck_assert_int_eq(r3->input_min, -1);
    ck_assert_int_eq(r3->input_max, -1);
    ck_assert_int_eq(r3->messages_min, -1);
    ck_assert_int_eq(r3->messages_max, -1);
    ck_assert_int_eq(r3->tools, CONF_ANY);
    ck_assert_int_eq(r3->images, CONF_ANY);
    ck_assert_int_eq(r3->json_output, CONF_ANY);
    ck_assert_ptr_null(r3->last_user.code);
    ck_assert_int_eq(r3->last_user.nkeywords, 0);
    ck_assert_int_eq(r3->budget_above, -1);
    ck_assert_int_eq(r3->max_output_tokens, -1);
    ck_assert_int_eq(r3->rewrite_model, 0);
    ck_assert_int_eq(r3->tier_up, -1);
    /* rule 4: a canary split */
    const struct conf_rule *r4 = &r->rules[3];
    ck_assert_int_eq(r4->messages_min, 2);
    ck_assert_int_eq(r4->messages_max, -1);
    ck_assert_int_eq(r4->dest.tier, -1);
    ck_assert_int_eq(r4->dest.target, -1);
    ck_assert_int_eq(r4->nsplit, 2);
    ck_assert_int_eq(r4->split[0].dest.target, 0);
    ck_assert_int_eq(r4->split[0].dest.tier, -1);
    ck_assert_int_eq(r4->split[0].percent, 10);
    ck_assert_int_eq(r4->split[1].dest.tier, 1);
    ck_assert_int_eq(r4->split[1].dest.target, -1);
    ck_assert_int_eq(r4->split[1].percent, 90);
    /* policies */
    ck_assert_int_eq(c->npolicies, 2);
    ck_assert_int_eq(c->policies[0].prefer_cost, 1);
    ck_assert_int_eq(c->policies[0].max_latency_ms, 500);
    ck_assert_int_eq(c->policies[0].downgrade, 1);
    ck_assert_int_eq(c->policies[1].prefer_cost, 0);
    ck_assert_int_eq(c->policies[1].max_latency_ms, -1);
    conf_unref(c);
}
END_TEST

START_TEST(defaults)
{
    /* no tiers, no routing */
    struct conf *c = load("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
                          "models: { m: o, n: { provider: o } }\n");
    ck_assert_msg(c != NULL, "%s", err);
    const struct conf_routing *r = &c->routing;
    ck_assert_int_eq(r->ntiers, 0);
    ck_assert_int_eq(r->naliases, 0);
    ck_assert_int_eq(r->nrules, 0);
    ck_assert_int_eq(r->attempts, 3);
    ck_assert_int_eq(r->tier_up, 0);
    ck_assert_int_eq(r->retry_after_max_ms, 60000);
    ck_assert_int_eq(r->breaker_failures, 5);
    ck_assert_int_eq(r->breaker_error_pct, 50);
    ck_assert_int_eq(r->breaker_min_requests, 20);
    ck_assert_int_eq(r->breaker_window_ms, 30000);
    ck_assert_int_eq(r->breaker_cooldown_ms, 15000);
    ck_assert_int_eq(r->classifier, -1);
    ck_assert_int_eq(r->classifier_timeout_ms, 300);
    ck_assert_int_eq(r->classifier_ttl_ms, 600000);
    ck_assert_int_eq(r->classifier_max_entries, 10000);
    ck_assert_int_eq(r->needs_budget, 0);
    ck_assert_int_eq(r->needs_count, 0);
    ck_assert_int_eq(c->models[0].context_window, 0);
    ck_assert_int_eq(c->models[1].index, 1);
    struct conf_dest tmp;
    ck_assert_ptr_null(conf_find_alias(c, "tier:cheap", &tmp));
    ck_assert_ptr_null(conf_find_alias(c, "auto", &tmp));
    ck_assert_int_eq(conf_find_tier(c, "cheap"), -1);
    conf_unref(c);

    /* tiers alone: tier:NAME works with no routing section; a tier may be one name */
    c = load("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
             "models: { m: o }\n"
             "tiers: { solo: m }\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->routing.ntiers, 1);
    ck_assert_int_eq(c->routing.tiers[0].ntargets, 1);
    ck_assert_ptr_nonnull(conf_find_alias(c, "tier:solo", &tmp));
    ck_assert_int_eq(c->routing.attempts, 3);
    conf_unref(c);

    /* a policy without routing: prefer_cost 0, max_latency_ms -1; the rule's settings */
    c = load(BASE "policies: { p: { max_per_request: 5 } }\n"
                  "routing: { rules: [ { name: a, route: { tier: cheap } } ] }\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->policies[0].prefer_cost, 0);
    ck_assert_int_eq(c->policies[0].max_latency_ms, -1);
    ck_assert_int_eq(c->routing.rules[0].tier_up, -1);
    ck_assert_int_eq(c->routing.rules[0].max_output_tokens, -1);
    ck_assert_int_eq(c->routing.rules[0].rewrite_model, 0);
    conf_unref(c);
}
END_TEST

START_TEST(regexes)
{
    /* UTF mode with Unicode properties: \w takes letters beyond ASCII; the header regex too */
    struct conf *c = load(BASE RULE_X "      match:\n"
                                      "        last_user: { regex: '^\\w+$' }\n"
                                      "        system: { regex: '(?i)\\bKlassifiziere\\b' }\n"
                                      "      route: { tier: cheap }\n");
    ck_assert_msg(c != NULL, "%s", err);
    const struct conf_rule *x = &c->routing.rules[0];
    ck_assert_ptr_nonnull(x->last_user.code);
    ck_assert(regex_matches(x->last_user.code, "Grüße"));
    ck_assert(regex_matches(x->last_user.code, "日本語"));
    ck_assert(!regex_matches(x->last_user.code, "two words"));
    ck_assert(regex_matches(x->system.code, "Bitte KLASSIFIZIERE das"));
    ck_assert(!regex_matches(x->system.code, "Klassifizierer"));
    ck_assert_int_eq(x->last_user.nkeywords, 0);
    conf_unref(c);
}
END_TEST

START_TEST(err_unknown_tier)
{
    refused(BASE "routing:\n  aliases: { auto: huge }\n",
            NAME ":18: alias 'auto': 'huge' is neither a tier (cheap, medium, expensive) nor a "
                 "model entry");
    refused(BASE "routing:\n  aliases: { auto: 'tier:huge' }\n",
            NAME ":18: alias 'auto': no tier named 'huge' is declared under 'tiers' (cheap, "
                 "medium, expensive)");
    refused(BASE RULE_X "      route: { tier: huge }\n",
            NAME ":20: rule 'x': route.tier: no tier named 'huge' is declared under 'tiers' "
                 "(cheap, medium, expensive)");
    refused(BASE RULE_X "      route:\n"
                        "        split:\n"
                        "          - { tier: cheap, percent: 50 }\n"
                        "          - { tier: huge, percent: 50 }\n",
            NAME ":23: rule 'x': split.tier: no tier named 'huge' is declared under 'tiers' "
                 "(cheap, medium, expensive)");
    /* down is a rule's word only */
    refused(BASE RULE_X "      route: { split: [ { tier: down, percent: 50 }, { tier: cheap, "
                        "percent: 50 } ] }\n",
            NAME ":20: rule 'x': split.tier: no tier named 'down' is declared under 'tiers' "
                 "(cheap, medium, expensive)");
    refused("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
            "models: { m: o }\n"
            "routing: { rules: [ { name: a, route: { tier: cheap } } ] }\n",
            NAME ":3: rule 'a': route.tier: no tier named 'cheap' is declared under 'tiers' "
                 "(none is declared)");
}
END_TEST

START_TEST(err_targets)
{
    refused(BASE RULE_X "      route: { target: nope }\n",
            NAME ":20: rule 'x': route.target: no model entry named 'nope' is configured under "
                 "'models'");
    refused(BASE RULE_X "      route: { target: wild-one }\n",
            NAME ":20: rule 'x': route.target: 'wild-one' matches only the wildcard entry "
                 "'wild-*'; a target must be a model entry of its own (wildcards are refused)");
    refused(BASE RULE_X "      route: { split: [ { target: mini, percent: 50 }, { target: nope, "
                        "percent: 50 } ] }\n",
            NAME ":20: rule 'x': split.target: no model entry named 'nope' is configured under "
                 "'models'");
    refused(BASE "routing:\n  classifier: { target: wild-x }\n",
            NAME ":18: routing.classifier.target: 'wild-x' matches only the wildcard entry "
                 "'wild-*'; a target must be a model entry of its own (wildcards are refused)");
    refused(BASE "routing:\n  classifier: { timeout_ms: 100 }\n",
            NAME ":18: routing.classifier needs a 'target' (a model entry)");
    refused(BASE "routing:\n  aliases: { auto: wild-x }\n",
            NAME ":18: alias 'auto': 'wild-x' matches only the wildcard entry 'wild-*'; a target "
                 "must be a model entry of its own (wildcards are refused)");
    /* in a tier */
    refused("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
            "models: { m: o, 'w*': o }\n"
            "tiers:\n"
            "  cheap: [m, nope]\n",
            NAME ":4: tier 'cheap': no model entry named 'nope' is configured under 'models'");
    refused("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
            "models: { m: o, 'w*': o }\n"
            "tiers:\n"
            "  cheap:\n"
            "    - m\n"
            "    - wx\n",
            NAME ":6: tier 'cheap': 'wx' matches only the wildcard entry 'w*'; a target must be "
                 "a model entry of its own (wildcards are refused)");
    refused("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
            "models: { m: o }\n"
            "tiers: { cheap: [m, m] }\n",
            NAME ":3: tier 'cheap' lists 'm' twice");
}
END_TEST

START_TEST(err_tiers)
{
#define P "providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\nmodels: { m: o }\n"
    refused(P "tiers:\n  cheap: []\n", NAME ":4: tier 'cheap' has no targets");
    refused(P "tiers:\n  cheap:\n", NAME ":4: tier 'cheap' has no targets");
    refused(P "tiers: {}\n", NAME ":3: tiers: no tier is declared");
    refused(P "tiers: [m]\n", NAME ":3: 'tiers' must be a mapping of keys to values");
    refused(P "tiers: { cheap: { m: 1 } }\n",
            NAME ":3: tier 'cheap' must be a list of model entries");
    refused(P "tiers: { down: [m] }\n",
            NAME ":3: tiers: 'down' is not a tier name (a rule's 'tier: down' means one tier "
                 "below)");
    refused(P "tiers: { m: [m] }\n",
            NAME ":3: tier 'm' has the name of a model entry; name it otherwise");
    refused(P "tiers: { 'a b': [m] }\n",
            NAME ":3: tier 'a b': names may hold letters, digits, '-', '_' and '.'");
    refused(P "tiers: { cheap: [m, [x]] }\n",
            NAME ":3: tier 'cheap' must name a model entry");
#undef P
}
END_TEST

START_TEST(err_regex)
{
    refused(BASE RULE_X "      match: { last_user: { regex: 'a(b' } }\n"
                        "      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.last_user.regex: bad regex 'a(b': missing closing "
                 "parenthesis at offset 3");
    refused(BASE RULE_X "      match:\n"
                        "        system:\n"
                        "          regex: '[z-a]'\n"
                        "      route: { tier: cheap }\n",
            NAME ":22: rule 'x': match.system.regex: bad regex '[z-a]': range out of order in "
                 "character class at offset 3");
    refused(BASE RULE_X "      match: { header: { x-p: { regex: '*x' } } }\n"
                        "      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.header.x-p.regex: bad regex '*x': quantifier does not "
                 "follow a repeatable item at offset 0");
    refused(BASE RULE_X "      match: { last_user: { regex: '' } }\n"
                        "      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.last_user.regex must be a regular expression (a "
                 "non-empty string)");
    /* a regex that compiled is freed when a later key fails (ASan: no leak) */
    refused(BASE RULE_X "      match: { last_user: { regex: 'ok' }, system: { regex: '(' } }\n"
                        "      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.system.regex: bad regex '(': missing closing parenthesis "
                 "at offset 1");
}
END_TEST

START_TEST(err_rules)
{
    refused(BASE "routing:\n"
                 "  rules:\n"
                 "    - { name: same, route: { tier: cheap } }\n"
                 "    - { name: other, route: { tier: cheap } }\n"
                 "    - { name: same, route: { tier: medium } }\n",
            NAME ":21: rule 'same' is declared twice (first on line 19)");
    refused(BASE "routing:\n  rules:\n    - { route: { tier: cheap } }\n",
            NAME ":19: routing.rules: a rule needs a 'name'");
    refused(BASE "routing:\n  rules:\n    - { name: 'a b', route: { tier: cheap } }\n",
            NAME ":19: routing.rules: a rule's name is 1 to 64 letters, digits, '-', '_' and "
                 "'.'");
    refused(BASE RULE_X "      match: { model: auto }\n",
            NAME ":19: rule 'x' has no 'route'");
    refused(BASE RULE_X "      route: { tier: cheap, target: mini }\n",
            NAME ":20: rule 'x': route has exactly one of tier, target, split");
    refused(BASE RULE_X "      route: { max_output_tokens: 5 }\n",
            NAME ":20: rule 'x': route needs one of tier, target, split");
    refused(BASE RULE_X "      route: { tier: cheap, max_output_tokens: 0 }\n",
            NAME ":20: 'max_output_tokens' must be a whole number from 1 to 10000000, not '0'");
    refused(BASE RULE_X "      route: { tier: cheap, rewrite_model: maybe }\n",
            NAME ":20: rule 'x': route.rewrite_model must be true or false, not 'maybe'");
    refused(BASE "routing:\n  rules: []\n", NAME ":18: routing.rules is an empty list");
    refused(BASE "routing:\n  rules: { a: 1 }\n",
            NAME ":18: routing.rules must be a list of { name, match, route }");
    refused(BASE RULE_X "      match: [model]\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match must be a mapping of conditions");
}
END_TEST

START_TEST(err_split)
{
    refused(BASE RULE_X "      route:\n"
                        "        split:\n"
                        "          - { target: mini, percent: 10 }\n"
                        "          - { tier: medium, percent: 80 }\n",
            NAME ":22: rule 'x': the split's percents sum to 90, not 100");
    refused(BASE RULE_X "      route:\n"
                        "        split:\n"
                        "          - { target: mini, percent: 100 }\n"
                        "          - { tier: medium, percent: 0 }\n",
            NAME ":22: 'percent' must be a whole number from 1 to 99, not '100'");
    refused(BASE RULE_X "      route: { split: [ { target: mini, percent: 100 } ] }\n",
            NAME ":20: rule 'x': a split has 2 to 16 shares, not 1");
    refused(BASE RULE_X "      route: { split: [ { target: mini, percent: 50 }, { percent: 50 } ] }\n",
            NAME ":20: rule 'x': a share needs a target or a tier, and a percent");
    refused(BASE RULE_X "      route: { split: [ { target: mini, tier: cheap, percent: 50 }, "
                        "{ tier: medium, percent: 50 } ] }\n",
            NAME ":20: rule 'x': a share has one target or one tier");
}
END_TEST

START_TEST(err_aliases)
{
    refused(BASE "routing:\n  aliases: { mini: cheap }\n",
            NAME ":18: alias 'mini' has the name of a model entry, which it would shadow");
    refused(BASE "routing:\n  aliases: { 'tier:x': cheap }\n",
            NAME ":18: alias 'tier:x': names that start with 'tier:' are the tiers' own "
                 "(tier:NAME needs no alias)");
    refused(BASE "routing:\n  aliases: { auto: '' }\n",
            NAME ":18: alias 'auto' must name a tier or a model entry");
    refused(BASE "routing:\n  aliases: {}\n", NAME ":18: routing.aliases is empty");
    /* an alias may take a name that only a wildcard entry would match */
    struct conf *c = load(BASE "routing:\n  aliases: { wild-auto: cheap }\n");
    ck_assert_msg(c != NULL, "%s", err);
    conf_unref(c);
}
END_TEST

START_TEST(err_classifier)
{
    refused(BASE RULE_X "      match: { classifier: [simple] }\n"
                        "      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.classifier: a classifier rule needs routing.classifier "
                 "(its target: a model entry)");
    refused(BASE "routing:\n"
                 "  classifier: { target: mini }\n"
                 "  rules:\n"
                 "    - name: x\n"
                 "      match: { classifier: [simple, hard] }\n"
                 "      route: { tier: cheap }\n",
            NAME ":21: rule 'x': match.classifier: 'hard' is no label (simple, moderate, "
                 "complex)");
    /* routing.classifier may come after the rules */
    struct conf *c = load(BASE "routing:\n"
                               "  rules:\n"
                               "    - { name: x, match: { classifier: complex }, route: { tier: "
                               "expensive } }\n"
                               "  classifier: { target: mini }\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->routing.rules[0].nlabels, 1);
    ck_assert_int_eq(c->routing.classifier, 0);
    conf_unref(c);
}
END_TEST

START_TEST(err_unknown_keys)
{
    refused(BASE "routing:\n  fallback: 3\n",
            NAME ":18: routing: unknown key 'fallback' (aliases, attempts, tier_up, "
                 "retry_after_max, breaker, classifier, rules)");
    refused(BASE "routing:\n  breaker: { open_after: 3 }\n",
            NAME ":18: routing.breaker: unknown key 'open_after' (failures, error_ratio, "
                 "min_requests, window, cooldown)");
    refused(BASE "routing:\n  classifier: { target: mini, model: mini }\n",
            NAME ":18: routing.classifier: unknown key 'model' (target, timeout_ms, ttl, "
                 "max_entries)");
    refused(BASE RULE_X "      when: { model: auto }\n",
            NAME ":20: routing.rules: a rule has no 'when' (name, match, route)");
    refused(BASE RULE_X "      match: { user: x }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match has no 'user' (model, agent, team, department, header, "
                 "input_tokens, messages, tools, images, json_output, last_user, system, "
                 "budget_above, classifier)");
    refused(BASE RULE_X "      route: { tier: cheap, cap: 5 }\n",
            NAME ":20: rule 'x': route has no 'cap' (tier, target, split, max_output_tokens, "
                 "rewrite_model, tier_up)");
    refused(BASE RULE_X "      match: { input_tokens: { above: 5 } }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.input_tokens: unknown key 'above' (min, max)");
    refused(BASE RULE_X "      match: { last_user: { words: [a] } }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.last_user: unknown key 'words' (regex, keywords)");
    refused(BASE RULE_X "      route: { split: [ { target: mini, share: 50 } ] }\n",
            NAME ":20: rule 'x': a split has 2 to 16 shares, not 1");
    refused(BASE RULE_X "      route: { split: [ { target: mini, share: 50 }, { tier: cheap, "
                        "percent: 50 } ] }\n",
            NAME ":20: rule 'x': a share has no 'share' (target, tier, percent)");
    refused(BASE "policies: { p: { routing: { cheapest: true } } }\n",
            NAME ":17: policy 'p': routing has no 'cheapest' (prefer_cost, max_latency_ms)");
    refused(BASE "policies: { p: { route: {} } }\n",
            NAME ":17: policy 'p': unknown key 'route' (allocation, max_per_request, "
                 "on_exhaustion, cutoffs, task, routing, cache)");
    refused("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
            "models: { m: { provider: o, context: 5 } }\n",
            NAME ":2: model 'm': unknown key 'context' (provider, upstream_model, encoding, "
                 "token_calibration, price, max_output_tokens, context_window, "
                 "cache_min_tokens)");
}
END_TEST

START_TEST(err_values)
{
    refused(BASE "routing: { attempts: 9 }\n",
            NAME ":17: 'attempts' must be a whole number from 1 to 8, not '9'");
    refused(BASE "routing: { tier_up: yes }\n",
            NAME ":17: routing.tier_up must be true or false, not 'yes'");
    refused(BASE "routing: { retry_after_max: soon }\n",
            NAME ":17: 'retry_after_max' must be a positive duration such as 10s, 500ms or 2m, "
                 "not 'soon'");
    refused(BASE "routing: { breaker: { error_ratio: 101 } }\n",
            NAME ":17: 'error_ratio' must be a whole number from 1 to 100, not '101'");
    refused(BASE RULE_X "      match: { budget_above: 101 }\n      route: { tier: cheap }\n",
            NAME ":20: 'budget_above' must be a whole number from 0 to 100, not '101'");
    refused(BASE RULE_X "      match: { input_tokens: { min: 10, max: 5 } }\n"
                        "      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.input_tokens: min (10) is above max (5)");
    refused(BASE RULE_X "      match: { messages: {} }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.messages needs min, max or both");
    refused(BASE RULE_X "      match: { tools: 1 }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.tools must be true or false, not '1'");
    refused(BASE RULE_X "      match: { header: { 'x y': a } }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.header: 'x y' is not a header name");
    refused(BASE RULE_X "      match: { header: { x-a: { regex: a, value: b } } }\n"
                        "      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.header.x-a: unknown key 'value' (regex)");
    refused(BASE RULE_X "      match: { model: nope }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.model: 'nope' is no alias, tier:NAME or model entry, so "
                 "no request could match");
    refused(BASE RULE_X "      match: { agent: [crawler, ghost] }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.agent: no agent named 'ghost' is declared");
    refused(BASE RULE_X "      match: { team: research }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.team: no team named 'research' is declared");
    refused("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
            "models: { m: o }\n"
            "routing: { rules: [ { name: a, match: { agent: x }, route: { target: m } } ] }\n",
            NAME ":3: rule 'a': match.agent: no org is configured, so no request has a agent");
    refused("providers: { o: { base_url: 'http://127.0.0.1:9/v1' } }\n"
            "models: { m: { provider: o, context_window: 0 } }\n",
            NAME ":2: 'context_window' must be a whole number from 1 to 100000000, not '0'");
    refused(BASE "policies: { p: { routing: { max_latency_ms: 500 } } }\n",
            NAME ":17: policy 'p': routing.max_latency_ms needs prefer_cost: true");
    refused(BASE "policies: { p: { routing: { prefer_cost: true, max_latency_ms: 0 } } }\n",
            NAME ":17: 'max_latency_ms' must be a whole number from 1 to 600000, not '0'");
}
END_TEST

START_TEST(err_empty_lists)
{
    refused(BASE RULE_X "      match: { model: [] }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.model is an empty list");
    refused(BASE RULE_X "      match: { last_user: { keywords: [] } }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.last_user.keywords is an empty list");
    refused(BASE RULE_X "      match: { last_user: {} }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.last_user needs a regex, keywords or both");
    refused(BASE RULE_X "      match: { header: {} }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.header is empty");
    refused(BASE RULE_X "      match: { department: [research, ''] }\n      route: { tier: cheap }\n",
            NAME ":20: rule 'x': match.department holds an empty name");
    refused(BASE "routing: { classifier: { target: mini }, rules: [ { name: x, match: { "
                 "classifier: [] }, route: { tier: cheap } } ] }\n",
            NAME ":17: rule 'x': match.classifier is an empty list");
}
END_TEST

/* Loads and frees a config with every kind of allocation many times over, as reloads do. */
START_TEST(reload_cycles)
{
    static const char text[] =
        BASE "routing:\n"
             "  aliases: { auto: medium }\n"
             "  classifier: { target: mini }\n"
             "  rules:\n"
             "    - name: a\n"
             "      match: { model: auto, header: { x-p: { regex: '^h' } }, last_user: { regex: "
             "'\\bdef ', keywords: [x, y] }, system: { regex: s }, classifier: complex, agent: "
             "crawler, team: search, department: research }\n"
             "      route: { split: [ { target: mini, percent: 40 }, { tier: expensive, percent: "
             "60 } ] }\n";

    for (int i = 0; i < 50; i++) {
        struct conf *c = load(text);
        ck_assert_msg(c != NULL, "%s", err);
        conf_ref(c);
        conf_unref(c);
        ck_assert_ptr_nonnull(c->routing.rules[0].headers[0].code);
        conf_unref(c);
    }
}
END_TEST

static Suite *confroute_suite(void)
{
    Suite *s = suite_create("confroute");
    TCase *tc = tcase_create("routing");

    tcase_add_test(tc, full_config);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, regexes);
    tcase_add_test(tc, err_unknown_tier);
    tcase_add_test(tc, err_targets);
    tcase_add_test(tc, err_tiers);
    tcase_add_test(tc, err_regex);
    tcase_add_test(tc, err_rules);
    tcase_add_test(tc, err_split);
    tcase_add_test(tc, err_aliases);
    tcase_add_test(tc, err_classifier);
    tcase_add_test(tc, err_unknown_keys);
    tcase_add_test(tc, err_values);
    tcase_add_test(tc, err_empty_lists);
    tcase_add_test(tc, reload_cycles);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(confroute_suite());
}
