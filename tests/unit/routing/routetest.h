/*
 * What tests/unit/routing/test_route.c and test_route2.c share: a fake health table (these
 * binaries define route_health_usable and route_health_p90_ms, so routing/health.c is not
 * linked), a config of four models in two formats and three tiers loaded with
 * conf_load_string, and requests with their own token counts and one header.
 */
#ifndef TG_TEST_ROUTETEST_H
#define TG_TEST_ROUTETEST_H

#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "routing/health.h"
#include "routing/route-int.h"
#include "routing/route.h"

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

static inline void fake(struct route_health *h, const char *name, int usable, int retry,
                        int64_t p90, int probe)
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

static inline struct conf *load(const char *rules)
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
    int counted;    /* how many times routing asked for it */
    const char *hname, *hval;
    struct route_trace trace;
};

static inline const char *hdr(void *arg, const char *name)
{
    struct req *r = arg;
    return r->hname && strcmp(r->hname, name) == 0 ? r->hval : NULL;
}

static inline int64_t count(void *arg, const struct conf_model *m)
{
    struct req *r = arg;
    r->counted++;
    return r->tokens;
}

/* A request of body (JSON text) in format f to config c. */
static inline void req_init(struct req *r, const struct conf *c, const char *body,
                            enum conf_format f)
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

static inline void req_done(struct req *r)
{
    cJSON_Delete(r->body);
    route_trace_free(&r->trace);
}

/* Decides r; returns the rc, the first candidate's name in *first (NULL for none). */
static inline enum route_rc decide(struct req *r, struct route_decision *d, const char **first)
{
    route_trace_free(&r->trace);
    enum route_rc rc = route_decide(&r->in, d, &r->trace);
    *first = rc == ROUTE_OK ? d->cand[0].model->name : NULL;
    return rc;
}

/* The name of the rule that an "auto" request of body (OpenAI) ends with, or "-". */
static inline const char *rule_of(struct conf *c, const char *body, struct req *r)
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

#endif
