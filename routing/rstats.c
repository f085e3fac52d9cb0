/*
 * rstats: requests, tokens and cost by tier, target and rule. See rstats.h.
 *
 * All memory is allocated by rstats_new: RSTATS_MAX rows in the order their keys were first
 * seen, an open-addressing index of XXH3 hashes over them, and one more row, "(other)" (tier,
 * target and rule all "(other)"), that counts every request past the cap, and any whose names
 * do not fit a row (a name of RSTATS_NAME_MAX bytes or more).
 */
#include "routing/rstats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define RSTATS_NAME_MAX 128
#define RSTATS_INDEX (RSTATS_MAX * 2) /* a power of two: at most half full */
#define RSTATS_OTHER "(other)"

struct rrow {
    char tier[RSTATS_NAME_MAX], target[RSTATS_NAME_MAX], rule[RSTATS_NAME_MAX];
    uint64_t hash;
    uint64_t requests, fallbacks;
    int64_t input, output, nusd;
};

struct rstats {
    pthread_mutex_t mu;
    int n;
    uint16_t index[RSTATS_INDEX]; /* row number + 1, 0 empty */
    struct rrow other;            /* used once a request lands in it */
    struct rrow rows[RSTATS_MAX];
};

/* Returns a new, empty table, or NULL when out of memory. */
struct rstats *rstats_new(void)
{
    struct rstats *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    strcpy(s->other.tier, RSTATS_OTHER);
    strcpy(s->other.target, RSTATS_OTHER);
    strcpy(s->other.rule, RSTATS_OTHER);
    return s;
}

/* Frees s (NULL is fine). No other thread may be using it. */
void rstats_free(struct rstats *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static uint64_t key_hash(const char *tier, size_t lt, const char *target, size_t lg,
                         const char *rule, size_t lr)
{
    XXH3_state_t st;
    static const char sep = '\0';

    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, tier, lt);
    XXH3_64bits_update(&st, &sep, 1);
    XXH3_64bits_update(&st, target, lg);
    XXH3_64bits_update(&st, &sep, 1);
    XXH3_64bits_update(&st, rule, lr);
    return XXH3_64bits_digest(&st);
}

/* The row of the key, made if there is room; the "(other)" row otherwise. Under s->mu. */
static struct rrow *row_find(struct rstats *s, const char *tier, const char *target,
                             const char *rule)
{
    size_t lt = strlen(tier), lg = strlen(target), lr = strlen(rule), i;
    uint64_t hash;

    if (lt >= RSTATS_NAME_MAX || lg >= RSTATS_NAME_MAX || lr >= RSTATS_NAME_MAX)
        return &s->other;
    hash = key_hash(tier, lt, target, lg, rule, lr);
    for (i = (size_t)hash & (RSTATS_INDEX - 1);; i = (i + 1) & (RSTATS_INDEX - 1)) {
        int k = s->index[i];
        if (k == 0)
            break;
        struct rrow *r = &s->rows[k - 1];
        if (r->hash == hash && strcmp(r->tier, tier) == 0 && strcmp(r->target, target) == 0 &&
            strcmp(r->rule, rule) == 0)
            return r;
    }
    if (s->n >= RSTATS_MAX)
        return &s->other;
    struct rrow *r = &s->rows[s->n];
    memcpy(r->tier, tier, lt + 1);
    memcpy(r->target, target, lg + 1);
    memcpy(r->rule, rule, lr + 1);
    r->hash = hash;
    s->index[i] = (uint16_t)(++s->n);
    return r;
}

/* Adds one request's end; see rstats.h. NULL names count as "". */
void rstats_add(struct rstats *s, const char *tier, const char *target, const char *rule,
                int fell_back, int64_t input, int64_t output, int64_t nusd)
{
    struct rrow *r;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    r = row_find(s, tier != NULL ? tier : "", target != NULL ? target : "",
                 rule != NULL ? rule : "");
    r->requests++;
    if (fell_back)
        r->fallbacks++;
    r->input += input > 0 ? input : 0;
    r->output += output > 0 ? output : 0;
    r->nusd += nusd > 0 ? nusd : 0;
    pthread_mutex_unlock(&s->mu);
}

void rstats_label(const char *v, char *out, size_t cap)
{
    size_t o = 0;

    for (; *v != '\0' && o + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else
            out[o++] = *v;
    }
    out[o] = '\0';
}

enum rkind { RK_REQUESTS, RK_INPUT, RK_OUTPUT, RK_COST, RK_FALLBACKS };

static void row_line(const struct rrow *r, enum rkind k, void (*out)(void *, const char *, size_t),
                     void *arg)
{
    char tier[RSTATS_NAME_MAX * 2], target[RSTATS_NAME_MAX * 2], rule[RSTATS_NAME_MAX * 2];
    char line[RSTATS_NAME_MAX * 6 + 160];
    int n = 0;

    rstats_label(r->tier, tier, sizeof(tier));
    rstats_label(r->target, target, sizeof(target));
    rstats_label(r->rule, rule, sizeof(rule));
    switch (k) {
    case RK_REQUESTS:
        n = snprintf(line, sizeof(line),
                     "tokengate_route_requests_total{tier=\"%s\",target=\"%s\",rule=\"%s\"} "
                     "%llu\n",
                     tier, target, rule, (unsigned long long)r->requests);
        break;
    case RK_INPUT:
    case RK_OUTPUT:
        n = snprintf(line, sizeof(line),
                     "tokengate_route_tokens_total{tier=\"%s\",target=\"%s\",rule=\"%s\","
                     "kind=\"%s\"} %lld\n",
                     tier, target, rule, k == RK_INPUT ? "input" : "output",
                     (long long)(k == RK_INPUT ? r->input : r->output));
        break;
    case RK_COST:
        n = snprintf(line, sizeof(line),
                     "tokengate_route_cost_usd_total{tier=\"%s\",target=\"%s\",rule=\"%s\"} "
                     "%.9f\n",
                     tier, target, rule, r->nusd / 1e9);
        break;
    case RK_FALLBACKS:
        n = snprintf(line, sizeof(line),
                     "tokengate_route_fallbacks_total{tier=\"%s\",target=\"%s\",rule=\"%s\"} "
                     "%llu\n",
                     tier, target, rule, (unsigned long long)r->fallbacks);
        break;
    }
    if (n > 0)
        out(arg, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/*
 * Appends the four families through out, one line per row each (two for tokens), rows in the
 * order first seen and "(other)" last when it counted anything; under s's mutex (out must not
 * call into s). Nothing but the headers when no request was counted.
 */
void rstats_metrics(struct rstats *s, void (*out)(void *arg, const char *line, size_t len),
                    void *arg)
{
    static const struct {
        enum rkind k;
        const char *head;
    } fam[] = {
        {RK_REQUESTS, "# HELP tokengate_route_requests_total Requests routed, by tier, target "
                      "(the one that answered) and rule.\n"
                      "# TYPE tokengate_route_requests_total counter\n"},
        {RK_INPUT, "# HELP tokengate_route_tokens_total Tokens of routed requests, by tier, "
                   "target, rule and kind.\n# TYPE tokengate_route_tokens_total counter\n"},
        {RK_COST, "# HELP tokengate_route_cost_usd_total Cost of routed requests (US dollars), "
                  "by tier, target and rule.\n# TYPE tokengate_route_cost_usd_total counter\n"},
        {RK_FALLBACKS, "# HELP tokengate_route_fallbacks_total Routed requests answered after "
                       "a fallback, by tier, target and rule.\n"
                       "# TYPE tokengate_route_fallbacks_total counter\n"},
    };

    if (s == NULL || out == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        out(arg, fam[f].head, strlen(fam[f].head));
        for (int i = 0; i < s->n; i++) {
            row_line(&s->rows[i], fam[f].k, out, arg);
            if (fam[f].k == RK_INPUT) /* input and output lines of a row together */
                row_line(&s->rows[i], RK_OUTPUT, out, arg);
        }
        if (s->other.requests > 0) {
            row_line(&s->other, fam[f].k, out, arg);
            if (fam[f].k == RK_INPUT)
                row_line(&s->other, RK_OUTPUT, out, arg);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Adds n to the member name of o (made at 0 when missing). */
static void bump(cJSON *o, const char *name, uint64_t n)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

    if (it == NULL)
        cJSON_AddNumberToObject(o, name, (double)n);
    else
        cJSON_SetNumberValue(it, it->valuedouble + (double)n);
}

/* Adds the totals to obj; see rstats.h. A member that cannot be made is left out. */
void rstats_status(struct rstats *s, cJSON *obj)
{
    cJSON *by[3];
    uint64_t req = 0, fb = 0;
    static const char *names[3] = {"requests_by_tier", "requests_by_target", "requests_by_rule"};

    if (s == NULL || obj == NULL)
        return;
    for (int k = 0; k < 3; k++)
        by[k] = cJSON_CreateObject();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i <= s->n; i++) {
        const struct rrow *r = i < s->n ? &s->rows[i] : &s->other;
        if (r->requests == 0)
            continue;
        req += r->requests;
        fb += r->fallbacks;
        if (by[0] != NULL)
            bump(by[0], r->tier, r->requests);
        if (by[1] != NULL)
            bump(by[1], r->target, r->requests);
        if (by[2] != NULL)
            bump(by[2], r->rule, r->requests);
    }
    pthread_mutex_unlock(&s->mu);
    cJSON_AddNumberToObject(obj, "requests", (double)req);
    cJSON_AddNumberToObject(obj, "fallbacks", (double)fb);
    for (int k = 0; k < 3; k++)
        if (by[k] != NULL)
            cJSON_AddItemToObject(obj, names[k], by[k]);
}
