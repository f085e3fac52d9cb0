/*
 * route: which model a request goes to. The rules of the config (conf.routing.rules) are tried
 * in order, first match wins; the winner's action (or the alias asked for, or the concrete model
 * asked for) gives a tier or a target, and the tier gives an ordered list of candidates: the
 * targets that fit (context window, the client's API, health), cheapest first when the policy
 * prefers cost, then the next tier up when fallback may go there.
 *
 * The decision is a pure function of its input: the pipeline (gate/pipeline/stage_route.c),
 * `tokengate route --explain` and the route benchmark call the same code. Nothing here reads a
 * clock, a socket or shared state except through the input (health, counts, the label).
 */
#ifndef TG_ROUTE_H
#define TG_ROUTE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct route_health;

#define ROUTE_MAX_CANDIDATES 16

/* What the request is, as the rules read it. */
struct route_input {
    const struct conf *conf;
    const char *model;             /* as asked */
    const char *agent, *team, *department; /* names, NULL when not known (an open gate) */
    const cJSON *body;             /* the request body */
    enum conf_format format;       /* the client's API family */
    int translatable;              /* the endpoint can be translated (chat completions, messages) */
    /* a request header by lower-case name (its value, NUL-terminated), or NULL */
    const char *(*header)(void *arg, const char *name);
    void *header_arg;
    /* the input tokens as model m counts them (m NULL: the count the rules read, with the model
     * asked for's tokenizer when it is a model entry, else o200k_base); memoized by the caller;
     * -1 when the body cannot be counted */
    int64_t (*input_tokens)(void *arg, const struct conf_model *m);
    void *count_arg;
    int64_t output_allowance;      /* the request's own output cap, -1 when it sets none */
    int64_t input_bound;           /* more than any model counts the input at calibration 1
                                    * (the body's bytes and a margin: no token is shorter than
                                    * a byte, when there are no images or files), so a context
                                    * window above it needs no count; 0 when not known */
    double budget_used;            /* of the tightest budget on the path, 0..1 (and above);
                                    * -1 when unknown */
    const char *label;             /* the classifier's label: NULL not asked yet, "" failed */
    int prefer_cost;               /* the agent's policy knobs */
    int64_t max_latency_ms;        /* -1 none */
    uint64_t sticky;               /* canary bucket seed: a hash of the agent, or a random
                                    * number per request when there is no agent */
    struct route_health *health;   /* NULL: every target is healthy, no latency known */
    int64_t now_us;                /* for health (gate_now_us) */
};

/* One target to try, in order. */
struct route_cand {
    const struct conf_model *model;
    int tier;      /* index in conf.routing.tiers, -1 for a concrete model outside tiers */
    int translate; /* its provider speaks the other API family */
};

enum route_rc {
    ROUTE_OK,         /* candidates are in the decision */
    ROUTE_NEED_LABEL, /* a classifier rule is next: ask, set input.label, call again */
    ROUTE_NOT_FOUND,  /* the model asked for is no model, alias or tier: 404 (why) */
    ROUTE_NO_FIT,     /* no candidate's context window takes the request: 400 (why has the
                       * numbers) */
    ROUTE_UNAVAILABLE,/* every candidate's circuit is open: 503 (why; retry_after_s) */
    ROUTE_BAD,        /* no candidate speaks a format this endpoint can use: 400 (why) */
};

struct route_decision {
    int rule;                   /* index in conf.routing.rules, -1 none matched */
    const char *rule_name;      /* NULL for none */
    const char *via;            /* "rule", "alias", "model": what chose the destination */
    int tier;                   /* the tier chosen, -1 for a concrete model */
    struct route_cand cand[ROUTE_MAX_CANDIDATES];
    int ncand;
    int next;                   /* the next candidate to try (the pipeline advances it) */
    int64_t max_output_tokens;  /* the rule's output cap, -1 none */
    int rewrite_model;
    int tier_up;
    int label_rule;             /* ROUTE_NEED_LABEL: the rule that asks */
    int retry_after_s;          /* ROUTE_UNAVAILABLE: when a target may be tried again */
    char why[320];              /* for the error answers, client-facing */
};

/* Lines explaining the decision (route --explain): each rule tried and why it matched or not,
 * each target taken or skipped and why. NULL in the pipeline: nothing is written. */
struct route_trace {
    char *buf; /* malloc'd, NUL-terminated */
    size_t len, cap;
};

/*
 * Decides where in goes. Returns a route_rc; on ROUTE_OK d has one candidate at least, and
 * d->next is 0. trace may be NULL.
 */
enum route_rc route_decide(const struct route_input *in, struct route_decision *d,
                           struct route_trace *trace);

/*
 * The candidates of tier (for a downgrade under budget pressure: the next tier down), in the
 * order route_decide would give them, into d (rule and label left as they are). Returns
 * ROUTE_OK, ROUTE_NO_FIT or ROUTE_UNAVAILABLE as route_decide.
 */
enum route_rc route_tier(const struct route_input *in, int tier, struct route_decision *d,
                         struct route_trace *trace);

/* The canary seed for an agent's name (XXH3_64bits of it, 0 for NULL): what route_input.sticky
 * holds for a known agent, in the pipeline and in `tokengate route --explain` alike. */
uint64_t route_sticky(const char *name);

/* Appends a line to a trace (printf format). Does nothing for a NULL trace. */
void route_note(struct route_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void route_trace_free(struct route_trace *t);

/* Features of a request body the rules read, also for the classifier: the text of the last
 * user message and of the system prompt (OpenAI chat and Anthropic messages shapes; string
 * and block forms), as pointers into the body or NULL, and lengths. */
struct route_features {
    const char *last_user;
    size_t last_user_len;
    const char *system;
    size_t system_len;
    int messages;
    int tools, images, json_output;
    char *owned[2]; /* joined text of block forms, malloc'd; route_features_free frees */
};
void route_features_read(const cJSON *body, enum conf_format f, struct route_features *out);
void route_features_free(struct route_features *f);

#endif
