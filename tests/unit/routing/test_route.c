/*
 * Unit tests for routing/route and rules: the model asked for (aliases, tier:NAME, concrete
 * models), every kind of rule condition matching and not, first match, tier down, the
 * features of both formats and keywords. The candidates (context guard, translation, canary,
 * cost, latency, health, tier_up) and the classifier are in test_route2.c. Configs are loaded from
 * YAML with conf_load_string, as the gate loads them.
 */
#include "routetest.h"
#include "run_suite.h"

/* ---- the model asked for ------------------------------------------------------------------ */

START_TEST(aliases_tiers_and_models)
{
    struct conf *c = load(NULL);
    struct req r;
    struct route_decision d;
    const char *first;

    req_init(&r, c, AUTO, CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o");
    ck_assert_str_eq(d.via, "alias");
    ck_assert_int_eq(d.tier, 1);
    ck_assert_int_eq(d.rule, -1);
    ck_assert_int_eq(d.next, 0);
    req_done(&r);

    req_init(&r, c, "{\"model\":\"tier:cheap\",\"messages\":[]}", CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.tier, 0);
    ck_assert_int_eq(d.ncand, 2);
    ck_assert_str_eq(d.cand[0].model->name, "gpt-4o-mini");
    ck_assert_int_eq(d.cand[0].translate, 0);
    ck_assert_str_eq(d.cand[1].model->name, "claude-haiku-4-5");
    ck_assert_int_eq(d.cand[1].translate, 1);
    ck_assert_int_eq(d.cand[1].tier, 0);
    req_done(&r);

    /* an alias of a model entry */
    req_init(&r, c, "{\"model\":\"fast\",\"messages\":[]}", CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o-mini");
    ck_assert_int_eq(d.tier, -1);
    ck_assert_int_eq(d.ncand, 1);
    req_done(&r);

    /* a concrete model: that model alone, no tier */
    req_init(&r, c, "{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}", CONF_FMT_ANTHROPIC);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-sonnet-4-5");
    ck_assert_str_eq(d.via, "model");
    ck_assert_int_eq(d.tier, -1);
    ck_assert_int_eq(d.ncand, 1);
    ck_assert_int_eq(d.cand[0].tier, -1);
    req_done(&r);

    /* a wildcard entry */
    req_init(&r, c, "{\"model\":\"other-7\",\"messages\":[]}", CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "other-"); /* a wildcard entry's name is its prefix */
    req_done(&r);

    const char *bad[] = {"{\"model\":\"tier:huge\"}", "{\"model\":\"gpt-5\"}", "{}"};
    for (int i = 0; i < 3; i++) {
        req_init(&r, c, bad[i], CONF_FMT_OPENAI);
        ck_assert_int_eq(decide(&r, &d, &first), ROUTE_NOT_FOUND);
        ck_assert_msg(strstr(d.why, "not configured") != NULL, "%s", d.why);
        req_done(&r);
    }
    conf_unref(c);
}
END_TEST

START_TEST(concrete_model_moved_only_by_a_rule_that_matches_it)
{
    struct conf *c = load("    - name: eval-gpt4o\n"
                          "      match: { model: gpt-4o, team: eval }\n"
                          "      route: { tier: cheap, rewrite_model: true }\n");
    struct req r;
    struct route_decision d;
    const char *first;

    req_init(&r, c, "{\"model\":\"gpt-4o\",\"messages\":[]}", CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o");
    ck_assert_int_eq(d.rule, -1);
    ck_assert_int_eq(d.rewrite_model, 0);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "no: team is not known"));
    r.in.team = "search";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o");
    r.in.team = "eval";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o-mini");
    ck_assert_str_eq(d.via, "rule");
    ck_assert_str_eq(d.rule_name, "eval-gpt4o");
    ck_assert_int_eq(d.rewrite_model, 1);
    ck_assert_int_eq(d.tier, 0);
    req_done(&r);
    conf_unref(c);
}
END_TEST

/* ---- each kind of condition ---------------------------------------------------------------- */

START_TEST(names_and_headers)
{
    struct conf *c =
        load("    - name: by-agent\n"
             "      match: { agent: [a1, a2] }\n"
             "      route: { tier: cheap }\n"
             "    - name: by-dept\n"
             "      match: { department: research }\n"
             "      route: { tier: cheap }\n"
             "    - name: prio-exact\n"
             "      match: { header: { x-tokengate-priority: high } }\n"
             "      route: { tier: expensive }\n"
             "    - name: prio-regex\n"
             "      match: { header: { x-tokengate-priority: { regex: '^(urgent|p0)$' } } }\n"
             "      route: { tier: expensive }\n");
    struct req r;

    ck_assert_str_eq(rule_of(c, AUTO, &r), "-");
    req_done(&r);
    req_init(&r, c, AUTO, CONF_FMT_OPENAI);
    struct route_decision d;
    const char *first;
    r.in.agent = "a2";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "by-agent");
    r.in.agent = "a3";
    r.in.department = "research";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "by-dept");
    ck_assert_ptr_nonnull(
        strstr(r.trace.buf, "rule 1 by-agent: no: agent is 'a3', the rule wants a1, a2"));
    r.in.department = "sales";
    r.hname = "x-tokengate-priority";
    r.hval = "high";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "prio-exact");
    r.hval = "p0";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "prio-regex");
    r.hval = "p01";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.rule, -1);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "header x-tokengate-priority is 'p01'"));
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(counts_and_flags)
{
    struct conf *c = load("    - name: small\n"
                          "      match: { input_tokens: { max: 300 }, messages: { min: 2 } }\n"
                          "      route: { tier: cheap }\n"
                          "    - name: big\n"
                          "      match: { input_tokens: { min: 2000 } }\n"
                          "      route: { tier: expensive }\n"
                          "    - name: tools\n"
                          "      match: { tools: true }\n"
                          "      route: { tier: expensive }\n"
                          "    - name: images\n"
                          "      match: { images: true }\n"
                          "      route: { tier: expensive }\n"
                          "    - name: json\n"
                          "      match: { json_output: true }\n"
                          "      route: { tier: cheap }\n"
                          "    - name: no-tools-budget\n"
                          "      match: { tools: false, budget_above: 90 }\n"
                          "      route: { tier: cheap }\n");
    struct req r;
    struct route_decision d;
    const char *first;

    req_init(&r, c,
             "{\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
             "{\"role\":\"user\",\"content\":\"x\"}]}",
             CONF_FMT_OPENAI);
    r.tokens = 300;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "small");
    r.tokens = 301;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.rule, -1);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "input tokens 301 > max 300"));
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "input tokens 301 < min 2000"));
    r.tokens = 2000;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "big");
    ck_assert_str_eq(first, "claude-sonnet-4-5");
    r.tokens = -1; /* uncountable: no token rule holds */
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.rule, -1);
    /* the body's bound settles a range without counting: a bound under 300 makes "small" hold
     * (whatever the count would say), a bound under 2000 makes "big" fail; a bound over the
     * max asks for the count */
    r.in.input_bound = 250;
    r.tokens = 5000; /* not asked */
    r.counted = 0;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "small");
    ck_assert_int_eq(r.counted, 0);
    r.in.input_bound = 1500;
    r.tokens = 100;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "small");
    ck_assert_int_gt(r.counted, 0);
    r.tokens = 400;
    r.counted = 0;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.rule, -1); /* "big" failed on the bound (1500 < 2000) */
    ck_assert_int_eq(r.counted, 1); /* only "small" counted */
    r.in.input_bound = 0;
    /* budget */
    r.tokens = 100;
    r.in.budget_used = 0.95;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "small");
    req_done(&r);

    /* one message: not small */
    req_init(&r, c, AUTO, CONF_FMT_OPENAI);
    r.in.budget_used = 0.89;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.rule, -1);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "messages 1 < min 2"));
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "budget 89.0% used < 90%"));
    r.in.budget_used = 0.9;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "no-tools-budget");
    req_done(&r);

    static const struct {
        const char *body;
        enum conf_format f;
        const char *rule;
    } cases[] = {
        {"{\"model\":\"auto\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
         "\"messages\":[]}",
         CONF_FMT_OPENAI, "tools"},
        {"{\"model\":\"auto\",\"tools\":[],\"messages\":[]}", CONF_FMT_OPENAI, "-"},
        {"{\"model\":\"auto\",\"tools\":[{\"name\":\"f\",\"input_schema\":{}}],\"messages\":[]}",
         CONF_FMT_ANTHROPIC, "tools"},
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"what\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/"
         "a.png\"}}]}]}",
         CONF_FMT_OPENAI, "images"},
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
         "\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"image\",\"source\":{}}]}]}"
         "]}",
         CONF_FMT_ANTHROPIC, "images"},
        {"{\"model\":\"auto\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}},"
         "\"messages\":[]}",
         CONF_FMT_OPENAI, "json"},
        {"{\"model\":\"auto\",\"response_format\":{\"type\":\"text\"},\"messages\":[]}",
         CONF_FMT_OPENAI, "-"},
        {"{\"model\":\"auto\",\"output_format\":{\"type\":\"json_schema\"},\"messages\":[]}",
         CONF_FMT_ANTHROPIC, "json"},
        {"{\"model\":\"auto\",\"tool_choice\":{\"type\":\"tool\",\"name\":\"emit_JSON\"},"
         "\"messages\":[]}",
         CONF_FMT_ANTHROPIC, "json"},
        {"{\"model\":\"auto\",\"tool_choice\":{\"type\":\"tool\",\"name\":\"search\"},"
         "\"messages\":[]}",
         CONF_FMT_ANTHROPIC, "-"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_init(&r, c, cases[i].body, cases[i].f);
        ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
        ck_assert_msg(strcmp(d.rule_name ? d.rule_name : "-", cases[i].rule) == 0,
                      "case %zu: %s, not %s\n%s", i, d.rule_name ? d.rule_name : "-", cases[i].rule,
                      r.trace.buf);
        req_done(&r);
    }
    conf_unref(c);
}
END_TEST

START_TEST(text_regexes_and_keywords)
{
    struct conf *c =
        load("    - name: code\n"
             "      match: { last_user: { regex: '```|\\bdef \\w' } }\n"
             "      route: { tier: expensive }\n"
             "    - name: chit-chat\n"
             "      match: { last_user: { keywords: [hi, thanks, 'step by step'] } }\n"
             "      route: { tier: cheap }\n"
             "    - name: classifier-prompt\n"
             "      match: { system: { keywords: [classifier], regex: '(?i)^you sort' } }\n"
             "      route: { tier: cheap }\n");
    static const struct {
        const char *body;
        enum conf_format f;
        const char *rule;
    } cases[] = {
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi!\"}]}",
         CONF_FMT_OPENAI, "chit-chat"},
        /* whole words only: "this" and "thanksgiving" hold no keyword */
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"this "
         "thanksgiving\"}]}",
         CONF_FMT_OPENAI, "-"},
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"go Step By Step.\"}]}",
         CONF_FMT_OPENAI, "chit-chat"},
        /* the last user message counts, not an earlier one */
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
         "{\"role\":\"assistant\",\"content\":\"yes\"},{\"role\":\"user\",\"content\":\"why\"}]}",
         CONF_FMT_OPENAI, "-"},
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"look:\"},{\"type\":\"text\",\"text\":\"def f(): pass\"}]}]}",
         CONF_FMT_OPENAI, "code"},
        /* Anthropic: a turn of tool results only is not the user's message */
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"thanks\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
         "\"id\":\"t\",\"name\":\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":"
         "\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"def x\"}]}]}",
         CONF_FMT_ANTHROPIC, "chit-chat"},
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"developer\",\"content\":\"a classifier\"},"
         "{\"role\":\"user\",\"content\":\"x\"}]}",
         CONF_FMT_OPENAI, "classifier-prompt"},
        {"{\"model\":\"auto\",\"system\":[{\"type\":\"text\",\"text\":\"intro\"},{\"type\":"
         "\"text\","
         "\"text\":\"You SORT things\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         CONF_FMT_ANTHROPIC, "-"}, /* joined: "intro\nYou SORT": ^ is the text's start only */
        {"{\"model\":\"auto\",\"system\":\"You sort things\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"x\"}]}",
         CONF_FMT_ANTHROPIC, "classifier-prompt"},
        /* not valid UTF-8: the regex gives up, the keywords still read it */
        {"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff def x hi\"}]}",
         CONF_FMT_OPENAI, "chit-chat"},
    };
    struct req r;
    struct route_decision d;
    const char *first;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_init(&r, c, cases[i].body, cases[i].f);
        ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
        ck_assert_msg(strcmp(d.rule_name ? d.rule_name : "-", cases[i].rule) == 0,
                      "case %zu: %s, not %s\n%s", i, d.rule_name ? d.rule_name : "-", cases[i].rule,
                      r.trace.buf);
        req_done(&r);
    }
    conf_unref(c);
}
END_TEST

START_TEST(features_of_both_formats)
{
    struct route_features f;
    cJSON *b = cJSON_Parse(
        "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\","
        "\"content\":\"first\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\","
        "\"content\":\"second\"}],\"tools\":[{}]}");

    route_features_read(b, CONF_FMT_OPENAI, &f);
    ck_assert_int_eq(f.messages, 4);
    ck_assert_int_eq((int)f.last_user_len, 6);
    ck_assert_int_eq(memcmp(f.last_user, "second", 6), 0);
    ck_assert_int_eq(memcmp(f.system, "be brief", 8), 0);
    ck_assert_int_eq(f.tools, 1);
    ck_assert_int_eq(f.images, 0);
    ck_assert_ptr_null(f.owned[0]); /* one string: a pointer into the body */
    ck_assert_ptr_null(f.owned[1]);
    route_features_free(&f);
    cJSON_Delete(b);

    b = cJSON_Parse("{\"system\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\","
                    "\"text\":\"b\"}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"text\",\"text\":\"x\"},{\"type\":\"image\",\"source\":{}},{\"type\":"
                    "\"text\",\"text\":\"y\"}]}]}");
    route_features_read(b, CONF_FMT_ANTHROPIC, &f);
    ck_assert_int_eq(f.messages, 1);
    ck_assert_int_eq(f.images, 1);
    ck_assert_int_eq((int)f.system_len, 3);
    ck_assert_int_eq(memcmp(f.system, "a\nb", 3), 0);
    ck_assert_int_eq((int)f.last_user_len, 3);
    ck_assert_int_eq(memcmp(f.last_user, "x\ny", 3), 0);
    route_features_free(&f);
    ck_assert_ptr_null(f.owned[0]);
    cJSON_Delete(b);
}
END_TEST

START_TEST(first_match_wins)
{
    struct conf *c = load("    - name: one\n"
                          "      match: { last_user: { keywords: [hello] } }\n"
                          "      route: { tier: expensive }\n"
                          "    - name: two\n"
                          "      match: { last_user: { keywords: [hello] } }\n"
                          "      route: { tier: cheap }\n"
                          "    - name: always\n"
                          "      route: { target: gpt-4o-mini }\n");
    struct req r;

    ck_assert_str_eq(rule_of(c, AUTO, &r), "one");
    ck_assert_ptr_null(strstr(r.trace.buf, "rule 2")); /* not tried after the match */
    req_done(&r);
    ck_assert_str_eq(
        rule_of(c, "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"bye\"}]}",
                &r),
        "always");
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(tier_down)
{
    struct conf *c = load("    - name: pressure\n"
                          "      match: { budget_above: 80 }\n"
                          "      route: { tier: down }\n"
                          "    - name: big\n"
                          "      match: { input_tokens: { min: 1000 } }\n"
                          "      route: { tier: expensive }\n"
                          "    - name: pinned\n"
                          "      match: { last_user: { keywords: [pin] } }\n"
                          "      route: { target: claude-sonnet-4-5 }\n");
    struct req r;
    struct route_decision d;
    const char *first;

    req_init(&r, c, AUTO, CONF_FMT_OPENAI);
    r.in.budget_used = 0.5;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.tier, 1); /* auto: medium */
    r.in.budget_used = 0.85;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.tier, 0); /* one down from medium */
    ck_assert_str_eq(d.rule_name, "pressure");
    ck_assert_str_eq(first, "gpt-4o-mini");
    r.tokens = 5000;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.tier, 1); /* expensive, one down */
    ck_assert_str_eq(d.rule_name, "big");
    req_done(&r);

    req_init(&r, c, "{\"model\":\"tier:cheap\",\"messages\":[]}", CONF_FMT_OPENAI);
    r.in.budget_used = 1.2;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.tier, 0); /* not below the first tier */
    req_done(&r);

    req_init(&r, c, "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"pin\"}]}",
             CONF_FMT_OPENAI);
    r.in.budget_used = 0.9;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-sonnet-4-5"); /* a target is not shifted */
    ck_assert_int_eq(d.tier, -1);
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(keyword_words)
{
    ck_assert_int_eq(route_keyword_in("Hello, world", 12, "hello"), 1);
    ck_assert_int_eq(route_keyword_in("othello", 7, "hello"), 0);
    ck_assert_int_eq(route_keyword_in("hello_x", 7, "hello"), 0);
    ck_assert_int_eq(route_keyword_in("x hello", 7, "hello"), 1);
    ck_assert_int_eq(route_keyword_in("caf\xc3\xa9 hi", 8, "hi"), 1);
    ck_assert_int_eq(route_keyword_in("hi", 1, "hi"), 0); /* n bounds the text */
    ck_assert_int_eq(route_keyword_in("c++ code", 8, "c++"), 1);
    /* the search starts from the keyword's rarest byte ('x' here): at either end of the text */
    ck_assert_int_eq(route_keyword_in("EXTRACT", 7, "extract"), 1);
    ck_assert_int_eq(route_keyword_in("xx Extract", 10, "extract"), 1);
    ck_assert_int_eq(route_keyword_in("extrac", 6, "extract"), 0);
    ck_assert_int_eq(route_keyword_in("text extracts extract", 21, "extract"), 1);
    ck_assert_int_eq(route_keyword_in("text extracts extractor", 23, "extract"), 0);
    ck_assert_int_eq(route_keyword_in("say good  morning", 17, "good morning"), 0);
    ck_assert_int_eq(route_keyword_in("say GOOD MORNING!", 17, "good morning"), 1);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, aliases_tiers_and_models);
    tcase_add_test(tc, concrete_model_moved_only_by_a_rule_that_matches_it);
    tcase_add_test(tc, names_and_headers);
    tcase_add_test(tc, counts_and_flags);
    tcase_add_test(tc, text_regexes_and_keywords);
    tcase_add_test(tc, features_of_both_formats);
    tcase_add_test(tc, first_match_wins);
    tcase_add_test(tc, tier_down);
    tcase_add_test(tc, keyword_words);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(route_suite());
}
