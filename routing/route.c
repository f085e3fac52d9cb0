/*
 * route: the decision (which rule, which destination) and the candidates of a destination
 * (context window, the client's API, health, cost and latency order, tiers up). See route.h.
 *
 * Nothing here allocates unless a rule reads text spread over several blocks, a regex runs
 * (one match block per call), or a trace is written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "routing/health.h"
#include "routing/route-int.h"

void route_note(struct route_trace *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t == NULL || t->cap == (size_t)-1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (t->len + (size_t)n + 2 > ROUTE_TRACE_MAX) {
        static const char cut[] = "(the trace is cut here: it reached its cap)\n";
        char *b = realloc(t->buf, t->len + sizeof(cut));
        if (b != NULL) {
            memcpy(b + t->len, cut, sizeof(cut));
            t->buf = b;
            t->len += sizeof(cut) - 1;
        }
        t->cap = (size_t)-1; /* full: no more lines */
        return;
    }
    if (t->len + (size_t)n + 2 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + (size_t)n + 2)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (b == NULL)
            return;
        t->buf = b;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
    t->buf[t->len++] = '\n';
    t->buf[t->len] = '\0';
}

void route_trace_free(struct route_trace *t)
{
    if (t == NULL)
        return;
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
}

uint64_t route_sticky(const char *name)
{
    return name != NULL ? XXH3_64bits(name, strlen(name)) : 0;
}

/* A rule name's hash for the split (FNV-1a: short names, no state) */
static uint64_t name_hash(const char *name)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* splitmix64's finalizer: spreads a seed's bits, so that close seeds land in far buckets */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *tier_name(const struct conf *c, int t)
{
    return t >= 0 && t < c->routing.ntiers ? c->routing.tiers[t].name : "?";
}

/* The output allowance the context guard reads: the request's cap, clamped by the rule's;
 * 1 when neither sets one. */
static int64_t guard_allowance(const struct route_input *in, const struct route_decision *d)
{
    int64_t a = in->output_allowance;
    if (d->max_output_tokens >= 0 && (a < 0 || d->max_output_tokens < a))
        a = d->max_output_tokens;
    return a >= 0 ? a : 1;
}

static int64_t tokens_for(const struct route_input *in, const struct conf_model *m)
{
    return in->input_tokens ? in->input_tokens(in->count_arg, m) : -1;
}

/* Estimated cost of a target in nano-dollars (input at its input price, the allowance or 256
 * output tokens at its output price); -1 when it has no price. */
static double est_cost(const struct route_input *in, const struct route_decision *d,
                       const struct conf_model *m)
{
    int64_t k = tokens_for(in, m), out = in->output_allowance;
    if (d->max_output_tokens >= 0 && (out < 0 || d->max_output_tokens < out))
        out = d->max_output_tokens;
    if (!m->price.set || m->price.input < 0 || m->price.output < 0)
        return -1;
    return ((double)(k > 0 ? k : 0) * m->price.input +
            (double)(out >= 0 ? out : 256) * m->price.output) /
           1e3; /* USD per million tokens -> nano-dollars per token */
}

/* Orders the targets of one tier (n model indices at idx) as the policy wants: by cost when
 * prefer_cost, then those whose p90 is over max_latency_ms after the others. */
static void order_tier(const struct route_input *in, const struct route_decision *d, int *idx,
                       int n, struct route_trace *trace)
{
    const struct conf *c = in->conf;
    double cost[ROUTE_MAX_CANDIDATES];
    int slow[ROUTE_MAX_CANDIDATES];

    if (n > ROUTE_MAX_CANDIDATES)
        n = ROUTE_MAX_CANDIDATES;
    for (int i = 0; i < n; i++) {
        const struct conf_model *m = &c->models[idx[i]];
        cost[i] = in->prefer_cost ? est_cost(in, d, m) : 0;
        slow[i] = 0;
        if (in->max_latency_ms >= 0 && in->health != NULL) {
            int stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in->body, "stream"));
            int64_t p90 = route_health_p90_ms(in->health, m->name, stream);
            slow[i] = p90 > in->max_latency_ms;
            if (trace)
                route_note(trace, "  %s: p90 %s %lld ms%s (limit %lld ms)", m->name,
                           stream ? "first byte" : "total", (long long)p90,
                           p90 < 0   ? " (not known: fine)"
                           : slow[i] ? ": too slow, tried after"
                                     : "",
                           (long long)in->max_latency_ms);
        }
        if (in->prefer_cost && trace) {
            if (cost[i] < 0)
                route_note(trace, "  %s: no price, tried after the priced targets", m->name);
            else
                route_note(trace, "  %s: estimated cost $%.6f", m->name, cost[i] / 1e9);
        }
    }
    /* insertion sort: stable, n is small; slow after fast, then cheap first (no price last) */
    for (int i = 1; i < n; i++) {
        int k = idx[i], s = slow[i];
        double cc = cost[i];
        int j = i - 1;
        while (j >= 0) {
            int after = slow[j] > s ||
                        (slow[j] == s && in->prefer_cost &&
                         ((cost[j] < 0 && cc >= 0) || (cost[j] >= 0 && cc >= 0 && cost[j] > cc)));
            if (!after)
                break;
            idx[j + 1] = idx[j];
            slow[j + 1] = slow[j];
            cost[j + 1] = cost[j];
            j--;
        }
        idx[j + 1] = k;
        slow[j + 1] = s;
        cost[j + 1] = cc;
    }
}

/* What became of the candidates: for the answer when none is left. */
struct cand_tally {
    int fit, format, health;         /* passed the context guard, the format, health */
    int64_t best_window, best_input; /* the largest window seen and the input it had to take */
    const char *best_name;
    int retry_after_s;
};

/* Considers model m (from tier t, -1 for a target) as the next candidate. */
static void consider(const struct route_input *in, struct route_decision *d, int mi, int t,
                     struct cand_tally *ty, struct route_trace *trace)
{
    const struct conf *c = in->conf;
    const struct conf_model *m = &c->models[mi];
    int probe = 0, retry = 0;

    for (int i = 0; i < d->ncand; i++)
        if (d->cand[i].model == m)
            return; /* already listed (a model in two tiers) */
    if (d->ncand == ROUTE_MAX_CANDIDATES) {
        if (trace)
            route_note(trace, "candidate %s: not listed (%d candidates at most)", m->name,
                       ROUTE_MAX_CANDIDATES);
        return;
    }
    double f = m->calibration > 1 ? m->calibration : 1;
    if (m->context_window > 0 && in->input_bound > 0 &&
        (double)in->input_bound * f + (double)guard_allowance(in, d) <= (double)m->context_window) {
        /* fits whatever the count: not counted here */
    } else if (m->context_window > 0) {
        int64_t k = tokens_for(in, m), a = guard_allowance(in, d);
        if (m->context_window > ty->best_window) {
            ty->best_window = m->context_window;
            ty->best_input = k;
            ty->best_name = m->name;
        }
        if (k >= 0 && k + a > m->context_window) {
            if (trace)
                route_note(trace,
                           "candidate %s: skipped: %lld input + %lld output tokens > its context "
                           "window %ld",
                           m->name, (long long)k, (long long)a, m->context_window);
            return;
        }
    }
    ty->fit++;
    int translate = m->provider->format != in->format;
    if (translate && !in->translatable) {
        if (trace)
            route_note(trace,
                       "candidate %s: skipped: it speaks the %s format and this endpoint cannot "
                       "be translated",
                       m->name, m->provider->format == CONF_FMT_ANTHROPIC ? "Anthropic" : "OpenAI");
        return;
    }
    ty->format++;
    /* a target outside tiers has no other to fall back to: it is tried whatever its health
     * (asked all the same, so that its probe after the cool-down closes its circuit), and
     * the provider's answer is the client's */
    if (in->health != NULL &&
        !route_health_usable(in->health, &c->routing, m->name, in->now_us, &probe, &retry) &&
        t >= 0) {
        if (trace)
            route_note(trace,
                       "candidate %s: skipped: not usable now (circuit open or "
                       "retry-after: %d s)",
                       m->name, retry);
        if (retry > 0 && (ty->retry_after_s == 0 || retry < ty->retry_after_s))
            ty->retry_after_s = retry;
        return;
    }
    ty->health++;
    struct route_cand cd = {.model = m, .tier = t, .translate = translate};
    if (probe) {
        /* the half-open target's probe goes first, so that it is tried */
        memmove(&d->cand[1], &d->cand[0], (size_t)d->ncand * sizeof(d->cand[0]));
        d->cand[0] = cd;
    } else {
        d->cand[d->ncand] = cd;
    }
    d->ncand++;
    if (trace)
        route_note(trace, "candidate %s (%s%s): taken%s%s", m->name, t >= 0 ? "tier " : "target",
                   t >= 0 ? tier_name(c, t) : "", translate ? ", translated" : "",
                   probe ? ", as the half-open probe (first)" : "");
}

/* Lists the candidates of tier t (and the tiers up when d->tier_up), or of target (t < 0). */
static enum route_rc candidates(const struct route_input *in, int t, int target,
                                struct route_decision *d, struct route_trace *trace)
{
    const struct conf *c = in->conf;
    struct cand_tally ty = {0};
    int idx[ROUTE_MAX_CANDIDATES];
    /* no more than the pipeline will try: health is asked only of those (asking a half-open
     * target makes this request its probe, which must then be tried) */
    int lim = c->routing.attempts > 0 && c->routing.attempts < ROUTE_MAX_CANDIDATES
                  ? c->routing.attempts
                  : ROUTE_MAX_CANDIDATES;

    d->ncand = 0;
    d->next = 0;
    d->retry_after_s = 0;
    if (t < 0) {
        consider(in, d, target, -1, &ty, trace);
    } else {
        for (int u = t; u < c->routing.ntiers; u++) {
            const struct conf_tier *ti = &c->routing.tiers[u];
            int n = ti->ntargets < ROUTE_MAX_CANDIDATES ? ti->ntargets : ROUTE_MAX_CANDIDATES;
            if (u > t) {
                if (!d->tier_up)
                    break;
                if (trace)
                    route_note(trace, "tier up: %s", ti->name);
            }
            memcpy(idx, ti->targets, (size_t)n * sizeof(int));
            if (d->ncand < lim &&
                (in->prefer_cost || (in->max_latency_ms >= 0 && in->health != NULL)))
                order_tier(in, d, idx, n, trace);
            for (int i = 0; i < n; i++) {
                if (d->ncand == lim) {
                    if (trace == NULL)
                        break;
                    route_note(trace, "candidate %s: not considered (routing.attempts: %d)",
                               c->models[idx[i]].name, lim);
                    continue;
                }
                consider(in, d, idx[i], u, &ty, trace);
            }
        }
    }
    if (d->ncand > 0)
        return ROUTE_OK;
    int64_t a = guard_allowance(in, d);
    if (ty.fit == 0) {
        if (t < 0)
            snprintf(d->why, sizeof(d->why),
                     "the request has %lld input tokens and asks for %lld output; the context "
                     "window of %s is %lld",
                     (long long)ty.best_input, (long long)a, c->models[target].name,
                     (long long)ty.best_window);
        else
            snprintf(d->why, sizeof(d->why),
                     "the request has %lld input tokens and asks for %lld output; the largest "
                     "context window among %s's targets (%s) is %lld",
                     (long long)ty.best_input, (long long)a, tier_name(c, t),
                     ty.best_name ? ty.best_name : "none", (long long)ty.best_window);
        return ROUTE_NO_FIT;
    }
    if (ty.format == 0) {
        const char *fmt = in->format == CONF_FMT_ANTHROPIC ? "Anthropic" : "OpenAI";
        if (t >= 0)
            snprintf(d->why, sizeof(d->why),
                     "no target of tier %s speaks the %s format, and this endpoint cannot be "
                     "translated",
                     tier_name(c, t), fmt);
        else
            snprintf(d->why, sizeof(d->why),
                     "model '%s' is served in the %s format, and this endpoint (%s format) "
                     "cannot be translated",
                     c->models[target].name, fmt[0] == 'A' ? "OpenAI" : "Anthropic", fmt);
        return ROUTE_BAD;
    }
    d->retry_after_s = ty.retry_after_s > 0 ? ty.retry_after_s : 1;
    snprintf(d->why, sizeof(d->why),
             "%s%s%s unavailable (circuit open or asked to retry later); retry in %d s",
             t >= 0 ? "every target of tier " : "model '",
             t >= 0 ? tier_name(c, t) : c->models[target].name, t >= 0 ? " is" : "' is",
             d->retry_after_s);
    return ROUTE_UNAVAILABLE;
}

static void note_rc(struct route_trace *trace, const struct route_decision *d, enum route_rc rc)
{
    if (trace == NULL)
        return;
    if (rc == ROUTE_OK)
        route_note(trace, "choice: %s (%d candidate%s)", d->cand[0].model->name, d->ncand,
                   d->ncand == 1 ? "" : "s");
    else
        route_note(trace, "no choice: %s", d->why);
}

enum route_rc route_tier(const struct route_input *in, int tier, struct route_decision *d,
                         struct route_trace *trace)
{
    enum route_rc rc;

    if (tier < 0 || tier >= in->conf->routing.ntiers) {
        snprintf(d->why, sizeof(d->why), "no such tier");
        return ROUTE_NOT_FOUND;
    }
    d->tier = tier;
    if (trace)
        route_note(trace, "tier %s", tier_name(in->conf, tier));
    rc = candidates(in, tier, -1, d, trace);
    note_rc(trace, d, rc);
    return rc;
}

/* The share of a split that bucket (0..99) falls in. */
static const struct conf_dest *split_pick(const struct conf_rule *r, uint64_t sticky, int *bucket)
{
    uint64_t h = name_hash(r->name);
    int b = (int)(mix64(sticky ^ h) % 100), at = 0;

    *bucket = b;
    for (int i = 0; i < r->nsplit; i++) {
        at += r->split[i].percent;
        if (b < at)
            return &r->split[i].dest;
    }
    return r->nsplit ? &r->split[r->nsplit - 1].dest : &r->dest;
}

static const char *dest_text(const struct conf *c, const struct conf_dest *dd, char *buf,
                             size_t cap)
{
    if (dd->target >= 0)
        snprintf(buf, cap, "target %s", c->models[dd->target].name);
    else if (dd->tier >= 0)
        snprintf(buf, cap, "tier %s", tier_name(c, dd->tier));
    else
        snprintf(buf, cap, "tier down");
    return buf;
}

enum route_rc route_decide(const struct route_input *in, struct route_decision *d,
                           struct route_trace *trace)
{
    const struct conf *c = in->conf;
    struct route_ctx x = {.in = in, .trace = trace, .tokens = -2};
    struct conf_dest dest;
    const struct conf_model *asked = NULL;
    int down = -1; /* the tier: down rule that matched, if any */
    char why[400], buf[160];
    enum route_rc rc;

    memset(d, 0, offsetof(struct route_decision, why));
    d->why[0] = '\0';
    d->rule = -1;
    d->tier = -1;
    d->max_output_tokens = -1;
    d->label_rule = -1;
    d->tier_up = c->routing.tier_up;

    const struct conf_dest *ad = in->model ? conf_find_alias(c, in->model, &dest) : NULL;
    if (ad != NULL) {
        dest = *ad;
        d->via = "alias";
        if (trace)
            route_note(trace, "model asked for: %s, an alias of %s", in->model,
                       dest_text(c, &dest, buf, sizeof(buf)));
    } else if (in->model != NULL && (asked = conf_find_model(c, in->model)) != NULL) {
        d->via = "model";
        dest = (struct conf_dest){.tier = -1, .target = asked->index, .down = 0};
        if (trace)
            route_note(trace, "model asked for: %s, a model entry (%s)", in->model, asked->name);
    } else {
        snprintf(d->why, sizeof(d->why),
                 "model '%.200s' is not configured on this gate (no model, alias or tier)",
                 in->model ? in->model : "");
        if (trace)
            route_note(trace, "no choice: %s", d->why);
        return ROUTE_NOT_FOUND;
    }

    for (int i = 0; i < c->routing.nrules; i++) {
        const struct conf_rule *r = &c->routing.rules[i];
        enum rule_result res = route_rule_eval(&x, r, why, sizeof(why));
        if (res == RULE_ASK) {
            d->label_rule = i;
            if (trace)
                route_note(trace, "rule %d %s: asks the classifier for a label", i + 1, r->name);
            route_ctx_done(&x);
            return ROUTE_NEED_LABEL;
        }
        if (res == RULE_NO) {
            if (trace)
                route_note(trace, "rule %d %s: no: %s", i + 1, r->name, why);
            continue;
        }
        if (r->nsplit == 0 && r->dest.down) {
            if (trace)
                route_note(trace, "rule %d %s: matched (%s): one tier down, the next rules go on",
                           i + 1, r->name, why);
            if (down < 0)
                down = i;
            continue;
        }
        d->rule = i;
        d->rule_name = r->name;
        d->via = "rule";
        if (r->nsplit > 0) {
            int bucket;
            dest = *split_pick(r, in->sticky, &bucket);
            if (trace)
                route_note(trace, "rule %d %s: matched (%s): canary split, bucket %d of 100 -> %s",
                           i + 1, r->name, why, bucket, dest_text(c, &dest, buf, sizeof(buf)));
        } else {
            dest = r->dest;
            if (trace)
                route_note(trace, "rule %d %s: matched (%s) -> %s", i + 1, r->name, why,
                           dest_text(c, &dest, buf, sizeof(buf)));
        }
        d->max_output_tokens = r->max_output_tokens;
        d->rewrite_model = r->rewrite_model;
        if (r->tier_up >= 0)
            d->tier_up = r->tier_up;
        break;
    }
    route_ctx_done(&x);
    if (d->rule < 0 && trace)
        route_note(trace, "no rule gives a destination: the %s's", d->via);

    if (down >= 0) {
        const struct conf_rule *r = &c->routing.rules[down];
        if (d->rule < 0) {
            d->rule = down; /* the record names the rule that moved it */
            d->rule_name = r->name;
        }
        if (d->max_output_tokens < 0)
            d->max_output_tokens = r->max_output_tokens;
        if (dest.target >= 0) {
            if (trace)
                route_note(trace, "tier down (rule %s): not applied, the destination is a target",
                           r->name);
        } else if (dest.tier > 0) {
            if (trace)
                route_note(trace, "tier down (rule %s): %s -> %s", r->name, tier_name(c, dest.tier),
                           tier_name(c, dest.tier - 1));
            dest.tier--;
        } else if (trace) {
            route_note(trace, "tier down (rule %s): %s is the lowest tier already", r->name,
                       tier_name(c, dest.tier));
        }
    }

    if (dest.target >= 0) {
        d->tier = -1;
        if (trace)
            route_note(trace, "destination: target %s", c->models[dest.target].name);
        rc = candidates(in, -1, dest.target, d, trace);
    } else {
        d->tier = dest.tier;
        if (trace)
            route_note(trace, "destination: tier %s%s", tier_name(c, dest.tier),
                       d->tier_up ? " (then the tiers up)" : "");
        rc = candidates(in, dest.tier, -1, d, trace);
    }
    note_rc(trace, d, rc);
    return rc;
}
