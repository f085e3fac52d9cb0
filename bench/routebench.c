/*
 * tokengate-routebench: the cost of the routing decision (route_decide) per request, in process.
 *
 * usage: tokengate-routebench [--rounds N] [--bodies N]
 *
 *   ninja -C build && build/tokengate-routebench     # a few seconds
 *
 * Loads a realistic config from YAML (4 tiers of real model names, an alias, 20 rules of every
 * kind: names, a header, counts, flags, budget pressure, keywords, 6 PCRE2 regexes over the last
 * user message, the system prompt and a header, a canary split), and makes N distinct request
 * bodies (default 5,000; OpenAI chat and Anthropic messages; 3 to ~3,000 words of varied text,
 * some with code, a stack trace, tools, images, JSON output, a system prompt, several turns),
 * parsed once as the gate parses a body before routing. Each body's input tokens are counted
 * once beforehand (o200k_base): the gate counts in stage_count and routing reads the memo, so
 * the tokenizer's cost is not routing's. Then each decision is timed on its own with
 * clock_gettime(CLOCK_MONOTONIC): one warm-up pass over the bodies untimed, then --rounds passes
 * (default 10), without a trace, as the pipeline calls it. Prints p50, p99, p99.9, the mean and
 * the maximum in microseconds (the median cost of an empty timing subtracted, and shown), and
 * how many requests each rule took. Exits 1 when the config cannot be loaded or a decision fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "conf/conf.h"
#include "routing/route.h"
#include "tokenizer/chat.h"

static const char config[] =
    "providers:\n"
    "  oa: { base_url: 'http://127.0.0.1:9/v1', format: openai }\n"
    "  an: { base_url: 'http://127.0.0.1:9/v1', format: anthropic }\n"
    "models:\n"
    "  gpt-4o-mini: { provider: oa, price: { input: 0.15, output: 0.60 }, context_window: 128000 "
    "}\n"
    "  gpt-4.1-mini: { provider: oa, price: { input: 0.40, output: 1.60 }, context_window: 1000000 "
    "}\n"
    "  gpt-4o: { provider: oa, price: { input: 2.50, output: 10.00 }, context_window: 128000 }\n"
    "  gpt-4.1: { provider: oa, price: { input: 2.00, output: 8.00 }, context_window: 1000000 }\n"
    "  claude-haiku-4-5: { provider: an, price: { input: 1.00, output: 5.00 }, "
    "context_window: 200000 }\n"
    "  claude-sonnet-4-5: { provider: an, price: { input: 3.00, output: 15.00 }, "
    "context_window: 200000 }\n"
    "  claude-opus-4-1: { provider: an, price: { input: 15.00, output: 75.00 }, "
    "context_window: 200000 }\n"
    "tiers:\n"
    "  cheap: [gpt-4o-mini, claude-haiku-4-5, gpt-4.1-mini]\n"
    "  medium: [gpt-4.1, gpt-4o]\n"
    "  expensive: [claude-sonnet-4-5, gpt-4.1]\n"
    "  frontier: [claude-opus-4-1]\n"
    "routing:\n"
    "  aliases: { auto: medium }\n"
    "  tier_up: true\n"
    "  rules:\n"
    "    - name: pressure\n"
    "      match: { budget_above: 90 }\n"
    "      route: { tier: down }\n"
    "    - name: priority\n"
    "      match: { header: { x-tokengate-priority: { regex: '^(high|urgent|p0)$' } } }\n"
    "      route: { tier: frontier }\n"
    "    - name: eval-gpt4o\n"
    "      match: { model: gpt-4o, team: eval }\n"
    "      route: { tier: medium }\n"
    "    - name: long-context\n"
    "      match: { model: auto, input_tokens: { min: 8000 } }\n"
    "      route: { tier: expensive }\n"
    "    - name: code\n"
    "      match:\n"
    "        model: auto\n"
    "        last_user:\n"
    "          regex: '```|\\b(def|class|fn|func) \\w|#include\\b|=>\\s*\\{'\n"
    "          keywords: [refactor, debug, compile, segfault]\n"
    "      route: { tier: expensive }\n"
    "    - name: stack-trace\n"
    "      match: { model: auto, last_user: { regex: '(?i)traceback|stack ?trace|panic:|"
    "exception in thread' } }\n"
    "      route: { tier: expensive }\n"
    "    - name: math\n"
    "      match: { model: auto, last_user: { regex: '(?i)\\b(prove|derive|integral|theorem|"
    "lemma)\\b' } }\n"
    "      route: { tier: frontier }\n"
    "    - name: multi-step\n"
    "      match: { model: auto, last_user: { regex: '(?i)step[- ]by[- ]step|first,.{0,200}then'"
    " } }\n"
    "      route: { tier: expensive }\n"
    "    - name: images\n"
    "      match: { model: auto, images: true }\n"
    "      route: { tier: expensive }\n"
    "    - name: agent-loop\n"
    "      match: { model: auto, tools: true, messages: { min: 10 } }\n"
    "      route: { tier: medium }\n"
    "    - name: structured\n"
    "      match: { model: auto, json_output: true, input_tokens: { max: 2000 } }\n"
    "      route: { tier: cheap }\n"
    "    - name: chit-chat\n"
    "      match:\n"
    "        model: auto\n"
    "        input_tokens: { max: 300 }\n"
    "        last_user: { keywords: [hi, hello, hey, thanks, thx, bye, 'good morning'] }\n"
    "      route: { tier: cheap, max_output_tokens: 300 }\n"
    "    - name: extraction\n"
    "      match: { model: auto, last_user: { keywords: [extract, classify, categorize, label, "
    "tag, parse] } }\n"
    "      route: { tier: cheap }\n"
    "    - name: translation\n"
    "      match: { model: auto, last_user: { keywords: [translate, translation] } }\n"
    "      route: { tier: cheap }\n"
    "    - name: summaries\n"
    "      match: { model: auto, last_user: { keywords: [summarize, summary, tldr] } }\n"
    "      route: { tier: medium, max_output_tokens: 800 }\n"
    "    - name: classifier-prompts\n"
    "      match: { model: auto, system: { keywords: [classifier, router, 'one word'] } }\n"
    "      route: { tier: cheap }\n"
    "    - name: expert-persona\n"
    "      match: { model: auto, system: { regex: '(?i)you are an? (expert|senior|principal)' } }\n"
    "      route: { tier: expensive }\n"
    "    - name: research\n"
    "      match: { model: auto, department: research }\n"
    "      route: { tier: expensive }\n"
    "    - name: short\n"
    "      match: { model: auto, messages: { max: 2 }, input_tokens: { max: 1000 } }\n"
    "      route: { tier: cheap }\n"
    "    - name: canary\n"
    "      match: { model: auto, agent: [agent-3, agent-7, agent-11] }\n"
    "      route: { split: [ { target: gpt-4.1, percent: 20 }, { tier: medium, percent: 80 } ] }\n"
    "org: acme\n"
    "departments:\n"
    "  eng:\n"
    "    teams:\n"
    "      search: { agents: [agent-0, agent-1, agent-2, agent-3, agent-4] }\n"
    "      eval: { agents: [agent-5, agent-6, agent-7, agent-8, agent-9] }\n"
    "  research:\n"
    "    teams:\n"
    "      lab: { agents: [agent-10, agent-11, agent-12, agent-13, agent-14] }\n"
    "  sales:\n"
    "    teams:\n"
    "      deals: { agents: [agent-15, agent-16, agent-17, agent-18, agent-19] }\n"
    "ledger: { path: /nonexistent/routebench.db }\n";

#define NAGENTS 20

static const char *const words[] = {
    "the",      "report",   "customer", "quarter", "please",  "review",  "numbers", "service",
    "latency",  "database", "deploy",   "weekly",  "meeting", "notes",   "account", "invoice",
    "shipping", "delay",    "policy",   "update",  "team",    "project", "budget",  "forecast",
    "question", "answer",   "email",    "draft",   "could",   "you",     "help",    "with",
    "this",     "that",     "about",    "during",  "before",  "after",   "because", "market",
    "growth",   "risk",     "user",     "request", "feature", "release", "plan",    "issue",
    "résumé",   "naïve",    "données",  "日本語",  "привет",  "and",     "or",      "not",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char *const extras[] = {
    "hello",
    "thanks!",
    "```python\ndef f(x):\n    return x\n```",
    "Traceback (most "
    "recent call last):",
    "prove that the integral converges",
    "step by step",
    "extract the dates",
    "translate this into French",
    "summarize the thread",
    "refactor this",
    "first, read it; then "
    "answer",
    "good morning",
    "classify the ticket",
};
#define NEXTRAS (sizeof(extras) / sizeof(extras[0]))

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Text of about n words, with an extra phrase now and then. */
static char *text(int n)
{
    size_t cap = (size_t)n * 16 + 256, at = 0;
    char *s = malloc(cap);

    for (int i = 0; i < n; i++) {
        const char *w = words[next() % NWORDS];
        if (next() % 97 == 0)
            w = extras[next() % NEXTRAS];
        size_t k = strlen(w);
        if (at + k + 2 >= cap)
            break;
        if (at)
            s[at++] = ' ';
        memcpy(s + at, w, k);
        at += k;
    }
    if (next() % 3 == 0) { /* the phrase that decides is often at the end */
        const char *w = extras[next() % NEXTRAS];
        size_t k = strlen(w);
        if (at + k + 2 < cap) {
            s[at++] = ' ';
            memcpy(s + at, w, k);
            at += k;
        }
    }
    s[at] = '\0';
    return s;
}

struct body {
    cJSON *json;
    enum conf_format f;
    const char *model;
    int agent;
    const char *priority;
    int64_t tokens;
    double budget;
};

static const char *hdr(void *arg, const char *name)
{
    const struct body *b = arg;
    return strcmp(name, "x-tokengate-priority") == 0 ? b->priority : NULL;
}

static int64_t count(void *arg, const struct conf_model *m)
{
    const struct body *b = arg;
    return b->tokens;
}

/* A request: mostly auto, some concrete models; OpenAI or Anthropic; text of varied length. */
static void make_body(struct body *b)
{
    int anth = next() % 4 == 0, turns = 1 + (int)(next() % 3 ? next() % 3 : next() % 14);
    int lens[] = {3, 12, 40, 150, 600, 3000};
    cJSON *j = cJSON_CreateObject(), *msgs = cJSON_CreateArray();
    uint64_t r = next() % 100;

    b->model = r < 80 ? "auto" : r < 90 ? "gpt-4o" : r < 95 ? "tier:cheap" : "claude-sonnet-4-5";
    cJSON_AddStringToObject(j, "model", b->model);
    b->f = anth ? CONF_FMT_ANTHROPIC : CONF_FMT_OPENAI;
    if (anth)
        cJSON_AddNumberToObject(j, "max_tokens", 1024);
    if (next() % 2) {
        char *sys = text(5 + (int)(next() % 60));
        if (next() % 5 == 0) {
            static const char *const personas[] = {"You are an expert tax lawyer.",
                                                   "You are a classifier: answer one word."};
            free(sys);
            sys = strdup(personas[next() % 2]);
        }
        if (anth) {
            cJSON_AddStringToObject(j, "system", sys);
        } else {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "system");
            cJSON_AddStringToObject(m, "content", sys);
            cJSON_AddItemToArray(msgs, m);
        }
        free(sys);
    }
    for (int t = 0; t < turns; t++) {
        int user = t % 2 == 0 || t == turns - 1;
        cJSON *m = cJSON_CreateObject();
        char *s = text(lens[next() % 6] / (turns > 4 ? 4 : 1) + (int)(next() % 20));
        cJSON_AddStringToObject(m, "role", user ? "user" : "assistant");
        if (user && t == turns - 1 && next() % 12 == 0) { /* an image with the question */
            cJSON *parts = cJSON_AddArrayToObject(m, "content"), *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "text");
            cJSON_AddStringToObject(p, "text", s);
            cJSON_AddItemToArray(parts, p);
            p = cJSON_CreateObject();
            if (anth) {
                cJSON_AddStringToObject(p, "type", "image");
                cJSON *src = cJSON_AddObjectToObject(p, "source");
                cJSON_AddStringToObject(src, "type", "url");
                cJSON_AddStringToObject(src, "url", "https://example.invalid/a.png");
            } else {
                cJSON_AddStringToObject(p, "type", "image_url");
                cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "image_url"), "url",
                                        "https://example.invalid/a.png");
            }
            cJSON_AddItemToArray(parts, p);
        } else {
            cJSON_AddStringToObject(m, "content", s);
        }
        free(s);
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON_AddItemToObject(j, "messages", msgs);
    if (next() % 5 == 0) {
        cJSON *tools = cJSON_AddArrayToObject(j, "tools"), *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, anth ? "name" : "type", anth ? "search" : "function");
        cJSON_AddItemToArray(tools, t);
    }
    if (!anth && next() % 8 == 0)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(j, "response_format"), "type",
                                "json_object");
    b->json = j;
    b->agent = (int)(next() % NAGENTS);
    r = next() % 20;
    b->priority = r == 0 ? "high" : r == 1 ? "low" : NULL;
    b->budget = (double)(next() % 100) / 100.0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int rounds = 10, nbodies = 5000;
    char err[512];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--bodies") == 0 && i + 1 < argc)
            nbodies = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: tokengate-routebench [--rounds N] [--bodies N]\n");
            return 2;
        }
    }
    if (rounds < 1 || nbodies < 1) {
        fprintf(stderr, "tokengate-routebench: --rounds and --bodies are at least 1\n");
        return 2;
    }
    struct conf *c = conf_load_string(config, strlen(config), "routebench.yaml", err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "tokengate-routebench: %s\n", err);
        return 1;
    }
    const tok_enc *enc = tok_encoding("o200k_base");
    struct body *bodies = calloc((size_t)nbodies, sizeof(*bodies));
    char agents[NAGENTS][16];
    uint64_t sticky[NAGENTS];
    size_t bytes = 0;
    for (int a = 0; a < NAGENTS; a++) {
        snprintf(agents[a], sizeof(agents[a]), "agent-%d", a);
        sticky[a] = route_sticky(agents[a]);
    }
    for (int i = 0; i < nbodies; i++) {
        struct body *b = &bodies[i];
        tok_count_result r;
        make_body(b);
        char *s = cJSON_PrintUnformatted(b->json);
        bytes += strlen(s);
        free(s);
        b->tokens =
            tok_count_request(enc, b->f == CONF_FMT_ANTHROPIC ? TOK_API_MESSAGES : TOK_API_CHAT,
                              b->json, "gpt-4o", 1.0, &r) == 0
                ? (int64_t)r.tokens
                : -1;
    }

    size_t n = (size_t)rounds * (size_t)nbodies;
    uint64_t *ns = malloc(n * sizeof(uint64_t)), empty[1001];
    int *by_rule = calloc((size_t)c->routing.nrules + 1, sizeof(int));
    int failed = 0;
    for (int k = 0; k < 1001; k++) {
        uint64_t t0 = now_ns();
        empty[k] = now_ns() - t0;
    }
    qsort(empty, 1001, sizeof(uint64_t), cmp_u64);
    uint64_t overhead = empty[500];

    struct timespec c0, c1;
    for (int pass = -1; pass < rounds; pass++) {
        if (pass == 0)
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        for (int i = 0; i < nbodies; i++) {
            struct body *b = &bodies[i];
            int a = b->agent;
            const char *team = a < 5 ? "search" : a < 10 ? "eval" : a < 15 ? "lab" : "deals";
            const char *dept = a < 10 ? "eng" : a < 15 ? "research" : "sales";
            struct route_input in = {
                .conf = c,
                .model = b->model,
                .agent = agents[a],
                .team = team,
                .department = dept,
                .body = b->json,
                .format = b->f,
                .translatable = 1,
                .header = hdr,
                .header_arg = b,
                .input_tokens = count,
                .count_arg = b,
                .output_allowance = b->f == CONF_FMT_ANTHROPIC ? 1024 : -1,
                .budget_used = b->budget,
                .prefer_cost = a % 4 == 0,
                .max_latency_ms = a % 4 == 0 ? 500 : -1,
                .sticky = sticky[a],
            };
            struct route_decision d;
            uint64_t t0 = now_ns();
            enum route_rc rc = route_decide(&in, &d, NULL);
            uint64_t dt = now_ns() - t0;
            if (rc != ROUTE_OK) {
                failed++;
                continue;
            }
            if (pass < 0) {
                by_rule[d.rule + 1]++;
                continue;
            }
            ns[(size_t)pass * (size_t)nbodies + (size_t)i] = dt > overhead ? dt - overhead : 0;
        }
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    double cpu_us = ((double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec)) /
                    1e3 / (double)((size_t)rounds * (size_t)nbodies);
    if (failed) {
        fprintf(stderr, "tokengate-routebench: %d decisions failed\n", failed);
        return 1;
    }
    qsort(ns, n, sizeof(uint64_t), cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)ns[i];
    printf("route_decide: %d distinct bodies (%.1f KiB on average), %d rules, %d rounds, "
           "%zu decisions\n\n",
           nbodies, (double)bytes / nbodies / 1024.0, c->routing.nrules, rounds, n);
    printf("| | p50 | p99 | p99.9 | mean | max |\n|---|---|---|---|---|---|\n");
    printf("| route_decide (us) | %.2f | %.2f | %.2f | %.2f | %.1f |\n\n", ns[n / 2] / 1e3,
           ns[n * 99 / 100] / 1e3, ns[n * 999 / 1000] / 1e3, sum / (double)n / 1e3,
           ns[n - 1] / 1e3);
    printf("(an empty timing, %.3f us, is subtracted from each sample; on a busy machine the "
           "mean, p99.9 and max carry the calls during which the thread lost its core)\n"
           "CPU time of the timed passes per decision (this thread, the timing included): "
           "%.2f us\n\nrequests by rule:",
           overhead / 1e3, cpu_us);
    for (int r = -1; r < c->routing.nrules; r++)
        printf(" %s %d%s", r < 0 ? "(none)" : c->routing.rules[r].name, by_rule[r + 1],
               r + 1 < c->routing.nrules ? "," : "\n");
    for (int i = 0; i < nbodies; i++)
        cJSON_Delete(bodies[i].json);
    free(bodies);
    free(ns);
    free(by_rule);
    conf_unref(c);
    return 0;
}
