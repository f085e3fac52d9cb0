/*
 * Unit tests for routing/route: the model asked for (aliases, tier:NAME, concrete models),
 * every kind of rule condition matching and not, first match, tier: down, the context guard,
 * translation, the canary split, cost and latency order, health, and the classifier's label.
 * Configs are loaded from YAML with conf_load_string, as the gate loads them.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "routing/health.h"
#include "routing/route-int.h"
#include "routing/route.h"
#include "run_suite.h"

/* ---- a fake health table: which targets are usable, their p90 -------------------------- */

struct route_health {
    const char *name[8];
    int usable[8], retry[8], probe[8];
    int64_t p90[8];
    int n;
};

int route_health_usable(struct route_health *h, const struct conf_routing *cfg, const char *target,
                        int64_t now_us, int *probe, int *retry_after_s)
{
    *probe = 0;
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->name[i], target) == 0) {
            *probe = h->probe[i];
            *retry_after_s = h->retry[i];
            return h->usable[i];
        }
    return 1;
}

int64_t route_health_p90_ms(struct route_health *h, const char *target, int first_byte)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->name[i], target) == 0)
            return h->p90[i];
    return -1;
}

static void fake(struct route_health *h, const char *name, int usable, int retry, int64_t p90,
                 int probe)
{
    h->name[h->n] = name;
    h->usable[h->n] = usable;
    h->retry[h->n] = retry;
    h->p90[h->n] = p90;
    h->probe[h->n] = probe;
    h->n++;
}

/* ---- configs ------------------------------------------------------------------------------ */

static const char base[] =
    "providers:\n"
    "  oa: { base_url: 'http://127.0.0.1:9/v1', format: openai }\n"
    "  an: { base_url: 'http://127.0.0.1:9/v1', format: anthropic }\n"
    "models:\n"
    "  gpt-4o-mini: { provider: oa, price: { input: 0.15, output: 0.60 }, context_window: 128000 "
    "}\n"
    "  gpt-4o: { provider: oa, price: { input: 2.50, output: 10.00 }, context_window: 128000 }\n"
    "  claude-haiku-4-5: { provider: an, price: { input: 1.00, output: 5.00 }, "
    "context_window: 200000 }\n"
    "  claude-sonnet-4-5: { provider: an, price: { input: 3.00, output: 15.00 }, "
    "context_window: 200000 }\n"
    "  other-*: { provider: oa }\n"
    "tiers:\n"
    "  cheap: [gpt-4o-mini, claude-haiku-4-5]\n"
    "  medium: [gpt-4o]\n"
    "  expensive: [claude-sonnet-4-5, gpt-4o]\n"
    "routing:\n"
    "  aliases: { auto: medium, fast: gpt-4o-mini }\n"
    "  classifier: { target: gpt-4o-mini }\n"
    "org: acme\n"
    "departments:\n"
    "  research:\n"
    "    teams:\n"
    "      search: { agents: [a1, a2, a3] }\n"
    "      eval: { agents: [capper, climber] }\n"
    "  sales:\n"
    "    teams:\n"
    "      deals: { agents: [seller] }\n"
    "ledger: { path: /nonexistent/never-opened.db }\n";

static struct conf *load(const char *rules)
{
    char text[8192], err[512];
    struct conf *c;

    /* the rules go under routing:, before the org */
    const char *org = strstr(base, "org:");
    snprintf(text, sizeof(text), "%.*s%s%s%s", (int)(org - base), base, rules ? "  rules:\n" : "",
             rules ? rules : "", org);
    c = conf_load_string(text, strlen(text), "test.yaml", err, sizeof(err));
    ck_assert_msg(c != NULL, "config refused: %s", err);
    return c;
}

/* ---- requests ----------------------------------------------------------------------------- */

struct req {
    struct route_input in;
    cJSON *body;
    int64_t tokens; /* what every tokenizer counts */
    const char *hname, *hval;
    struct route_trace trace;
};

static const char *hdr(void *arg, const char *name)
{
    struct req *r = arg;
    return r->hname && strcmp(r->hname, name) == 0 ? r->hval : NULL;
}

static int64_t count(void *arg, const struct conf_model *m)
{
    struct req *r = arg;
    return r->tokens;
}

/* A request of body (JSON text) in format f to config c. */
static void req_init(struct req *r, const struct conf *c, const char *body, enum conf_format f)
{
    memset(r, 0, sizeof(*r));
    r->body = cJSON_Parse(body);
    ck_assert_msg(r->body != NULL, "bad test JSON: %s", body);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(r->body, "model");
    r->tokens = 100;
    r->in = (struct route_input){
        .conf = c,
        .model = cJSON_IsString(m) ? m->valuestring : NULL,
        .body = r->body,
        .format = f,
        .translatable = 1,
        .header = hdr,
        .header_arg = r,
        .input_tokens = count,
        .count_arg = r,
        .output_allowance = -1,
        .budget_used = -1,
        .max_latency_ms = -1,
    };
}

static void req_done(struct req *r)
{
    cJSON_Delete(r->body);
    route_trace_free(&r->trace);
}

/* Decides r; returns the rc, the first candidate's name in *first (NULL for none). */
static enum route_rc decide(struct req *r, struct route_decision *d, const char **first)
{
    route_trace_free(&r->trace);
    enum route_rc rc = route_decide(&r->in, d, &r->trace);
    *first = rc == ROUTE_OK ? d->cand[0].model->name : NULL;
    return rc;
}

/* The name of the rule that an "auto" request of body (OpenAI) ends with, or "-". */
static const char *rule_of(struct conf *c, const char *body, struct req *r)
{
    static char name[64];
    struct route_decision d;
    const char *first;

    req_init(r, c, body, CONF_FMT_OPENAI);
    ck_assert_int_eq(decide(r, &d, &first), ROUTE_OK);
    snprintf(name, sizeof(name), "%s", d.rule_name ? d.rule_name : "-");
    return name;
}

#define AUTO "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"

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
    tcase_add_test(tc, context_window_guard);
    tcase_add_test(tc, translation);
    tcase_add_test(tc, canary_split_is_sticky_and_even);
    tcase_add_test(tc, cost_latency_and_health);
    tcase_add_test(tc, tier_up_candidates_and_route_tier);
    tcase_add_test(tc, classifier_label);
    tcase_add_test(tc, keyword_words);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(route_suite());
}
