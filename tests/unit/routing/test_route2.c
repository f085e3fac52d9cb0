/*
 * Unit tests for routing/route, the candidates: the context window guard (a target
 * skipped, and none fitting with the numbers), translation and an endpoint that cannot be
 * translated, the canary split over 2,000 seeds, cost and latency order and health with a fake
 * table, tier_up and route_tier, the classifier's label.
 */
#include "routetest.h"
#include "run_suite.h"

/* ---- candidates ---------------------------------------------------------------------------- */

START_TEST(context_window_guard)
{
    struct conf *c = load("    - name: capped\n"
                          "      match: { agent: capper }\n"
                          "      route: { tier: cheap, max_output_tokens: 500 }\n");
    struct req r;
    struct route_decision d;
    const char *first;

    req_init(&r, c, "{\"model\":\"tier:cheap\",\"messages\":[]}", CONF_FMT_OPENAI);
    r.tokens = 127999; /* + 1 output token fits 128000 */
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o-mini");
    r.in.output_allowance = 4096;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-haiku-4-5");
    ck_assert_int_eq(d.ncand, 1);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "candidate gpt-4o-mini: skipped: 127999 input + 4096 "
                                              "output tokens > its context window 128000"));
    r.tokens = 200000;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_NO_FIT);
    ck_assert_str_eq(d.why, "the request has 200000 input tokens and asks for 4096 output; the "
                            "largest context window among cheap's targets (claude-haiku-4-5) is "
                            "200000");
    req_done(&r);

    /* the rule's cap is the allowance when the request sets none (or a larger one) */
    req_init(&r, c, "{\"model\":\"auto\",\"messages\":[]}", CONF_FMT_OPENAI);
    r.in.agent = "capper";
    r.in.output_allowance = 100000;
    r.tokens = 127500;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o-mini");
    ck_assert_int_eq(d.max_output_tokens, 500);
    r.tokens = 127501;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-haiku-4-5");
    req_done(&r);

    /* a bound of the input under every window: nothing is counted for the guard; a bound that
     * could pass a window: counted, and the count decides */
    req_init(&r, c, "{\"model\":\"tier:cheap\",\"messages\":[]}", CONF_FMT_OPENAI);
    r.tokens = 127999;
    r.in.output_allowance = 4096;
    r.in.input_bound = 5000;
    r.counted = 0;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o-mini"); /* the bound says it fits: the count is not asked */
    ck_assert_int_eq(r.counted, 0);
    r.in.input_bound = 124000; /* 124000 + 4096 > 128000: counted, and skipped */
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-haiku-4-5");
    ck_assert_int_gt(r.counted, 0);
    req_done(&r);

    /* a concrete model */
    req_init(&r, c, "{\"model\":\"gpt-4o\",\"messages\":[]}", CONF_FMT_OPENAI);
    r.tokens = 130512;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_NO_FIT);
    ck_assert_str_eq(d.why, "the request has 130512 input tokens and asks for 1 output; the "
                            "context window of gpt-4o is 128000");
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(translation)
{
    struct conf *c = load(NULL);
    struct req r;
    struct route_decision d;
    const char *first;

    /* an Anthropic client on cheap: gpt-4o-mini translated, haiku as it is */
    req_init(&r, c, "{\"model\":\"tier:cheap\",\"messages\":[]}", CONF_FMT_ANTHROPIC);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.ncand, 2);
    ck_assert_int_eq(d.cand[0].translate, 1);
    ck_assert_int_eq(d.cand[1].translate, 0);
    r.in.translatable = 0; /* count_tokens, say */
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.ncand, 1);
    ck_assert_str_eq(first, "claude-haiku-4-5");
    ck_assert_ptr_nonnull(strstr(r.trace.buf,
                                 "candidate gpt-4o-mini: skipped: it speaks the OpenAI "
                                 "format and this endpoint cannot be translated"));
    req_done(&r);

    req_init(&r, c, "{\"model\":\"gpt-4o\",\"messages\":[]}", CONF_FMT_ANTHROPIC);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK); /* a concrete model is translated too */
    ck_assert_int_eq(d.cand[0].translate, 1);
    r.in.translatable = 0;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_BAD);
    ck_assert_str_eq(d.why, "model 'gpt-4o' is served in the OpenAI format, and this endpoint "
                            "(Anthropic format) cannot be translated");
    req_done(&r);

    req_init(&r, c, "{\"model\":\"auto\",\"messages\":[]}", CONF_FMT_ANTHROPIC);
    r.in.translatable = 0;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_BAD);
    ck_assert_msg(strstr(d.why, "no target of tier medium speaks the Anthropic format") != NULL,
                  "%s", d.why);
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(canary_split_is_sticky_and_even)
{
    struct conf *c = load("    - name: canary\n"
                          "      match: { model: auto }\n"
                          "      route:\n"
                          "        split: [ { target: claude-sonnet-4-5, percent: 10 }, "
                          "{ tier: cheap, percent: 90 } ]\n");
    struct req r;
    struct route_decision d;
    const char *first;
    int to_sonnet = 0;

    req_init(&r, c, AUTO, CONF_FMT_OPENAI);
    for (uint64_t seed = 0; seed < 2000; seed++) {
        r.in.sticky = seed;
        ck_assert_int_eq(route_decide(&r.in, &d, NULL), ROUTE_OK);
        int s = strcmp(d.cand[0].model->name, "claude-sonnet-4-5") == 0;
        to_sonnet += s;
        if (!s)
            ck_assert_int_eq(d.tier, 0);
        for (int again = 0; again < 3; again++) {
            ck_assert_int_eq(route_decide(&r.in, &d, NULL), ROUTE_OK);
            ck_assert_int_eq(strcmp(d.cand[0].model->name, "claude-sonnet-4-5") == 0, s);
        }
    }
    /* 10% of 2000 = 200, within a few percent (of the whole: 2.5% = 50) */
    ck_assert_msg(to_sonnet > 150 && to_sonnet < 250, "%d of 2000 went to the canary", to_sonnet);
    /* agents' names as seeds too */
    to_sonnet = 0;
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "agent-%d", i);
        r.in.sticky = route_sticky(name);
        ck_assert_int_eq(route_decide(&r.in, &d, NULL), ROUTE_OK);
        to_sonnet += strcmp(d.cand[0].model->name, "claude-sonnet-4-5") == 0;
    }
    ck_assert_msg(to_sonnet > 150 && to_sonnet < 250, "%d of 2000 went to the canary", to_sonnet);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "canary split, bucket"));
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(cost_latency_and_health)
{
    struct conf *c = load(NULL);
    struct route_health h = {0};
    struct req r;
    struct route_decision d;
    const char *first;

    /* expensive: [claude-sonnet-4-5 ($3/$15), gpt-4o ($2.5/$10)] */
    req_init(&r, c, "{\"model\":\"tier:expensive\",\"messages\":[]}", CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-sonnet-4-5"); /* listed order */
    r.in.prefer_cost = 1;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o");
    ck_assert_str_eq(d.cand[1].model->name, "claude-sonnet-4-5");
    /* gpt-4o's p90 is over the limit: after the others */
    fake(&h, "gpt-4o", 1, 0, 900, 0);
    fake(&h, "claude-sonnet-4-5", 1, 0, 400, 0);
    r.in.health = &h;
    r.in.max_latency_ms = 500;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-sonnet-4-5");
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "gpt-4o: p90 total 900 ms: too slow, tried after"));
    h.p90[0] = 450;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o");
    h.p90[0] = -1; /* not known: fine */
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "gpt-4o");

    /* gpt-4o not usable: skipped; both: unavailable with the soonest retry */
    h.usable[0] = 0;
    h.retry[0] = 7;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-sonnet-4-5");
    ck_assert_int_eq(d.ncand, 1);
    h.usable[1] = 0;
    h.retry[1] = 3;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_UNAVAILABLE);
    ck_assert_int_eq(d.retry_after_s, 3);
    ck_assert_str_eq(d.why, "every target of tier expensive is unavailable (circuit open or "
                            "asked to retry later); retry in 3 s");
    /* half-open: the probe goes first */
    h.usable[1] = 1;
    h.usable[0] = 1;
    h.probe[1] = 1;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(first, "claude-sonnet-4-5");
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(tier_up_candidates_and_route_tier)
{
    struct conf *c = load("    - name: up\n"
                          "      match: { agent: climber }\n"
                          "      route: { tier: cheap, tier_up: true, max_output_tokens: 64 }\n");
    struct req r;
    struct route_decision d;
    const char *first;

    req_init(&r, c, AUTO, CONF_FMT_OPENAI);
    r.in.agent = "climber";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.tier_up, 1);
    ck_assert_int_eq(d.max_output_tokens, 64);
    /* cheap's two, then medium's gpt-4o: routing.attempts (3) is all the pipeline tries, so
     * expensive's sonnet is not considered (nor is health asked about it) */
    ck_assert_int_eq(d.ncand, 3);
    ck_assert_str_eq(d.cand[2].model->name, "gpt-4o");
    ck_assert_int_eq(d.cand[2].tier, 1);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "tier up: expensive\ncandidate claude-sonnet-4-5: "
                                              "not considered (routing.attempts: 3)"));
    /* downgrade: the tier below, rule and cap kept */
    ck_assert_int_eq(route_tier(&r.in, 0, &d, NULL), ROUTE_OK);
    ck_assert_int_eq(d.tier, 0);
    ck_assert_str_eq(d.rule_name, "up");
    ck_assert_int_eq(d.max_output_tokens, 64);
    r.in.agent = NULL; /* no rule: routing.tier_up (false) */
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.ncand, 1);
    ck_assert_int_eq(route_tier(&r.in, 7, &d, NULL), ROUTE_NOT_FOUND);
    req_done(&r);
    conf_unref(c);
}
END_TEST

START_TEST(classifier_label)
{
    struct conf *c = load("    - name: short\n"
                          "      match: { input_tokens: { max: 10 } }\n"
                          "      route: { tier: expensive }\n"
                          "    - name: simple\n"
                          "      match: { model: auto, classifier: [simple] }\n"
                          "      route: { tier: cheap }\n"
                          "    - name: hard\n"
                          "      match: { classifier: [complex, moderate] }\n"
                          "      route: { tier: expensive }\n");
    struct req r;
    struct route_decision d;
    const char *first;

    req_init(&r, c, AUTO, CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_NEED_LABEL);
    ck_assert_int_eq(d.label_rule, 1);
    r.in.label = "simple";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "simple");
    ck_assert_int_eq(d.tier, 0);
    r.in.label = "moderate";
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "hard");
    r.in.label = ""; /* the classifier failed: falls through to the alias */
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_int_eq(d.rule, -1);
    ck_assert_int_eq(d.tier, 1);
    ck_assert_ptr_nonnull(strstr(r.trace.buf, "classifier label none (no answer)"));
    /* a rule before it that matches: no label asked */
    r.in.label = NULL;
    r.tokens = 5;
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_OK);
    ck_assert_str_eq(d.rule_name, "short");
    req_done(&r);
    /* other conditions first: a rule that fails on them does not ask */
    req_init(&r, c, "{\"model\":\"tier:medium\",\"messages\":[]}", CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(&r, &d, &first), ROUTE_NEED_LABEL);
    ck_assert_int_eq(d.label_rule, 2);
    req_done(&r);
    conf_unref(c);
}
END_TEST

static Suite *route2_suite(void)
{
    Suite *s = suite_create("route2");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, context_window_guard);
    tcase_add_test(tc, translation);
    tcase_add_test(tc, canary_split_is_sticky_and_even);
    tcase_add_test(tc, cost_latency_and_health);
    tcase_add_test(tc, tier_up_candidates_and_route_tier);
    tcase_add_test(tc, classifier_label);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(route2_suite());
}
