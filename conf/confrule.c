/*
 * confrule: routing.rules, the ordered routing rules, each a name, the conditions it matches
 * on and a route:
 *
 *   - name: code
 *     match: { model: auto, last_user: { regex: '```|\bdef ', keywords: [refactor] } }
 *     route: { tier: expensive, max_output_tokens: 4000 }
 *
 * Regexes are compiled here, once, with PCRE2 (UTF and Unicode properties; JIT where the
 * platform has it) and freed with the config. Names of models, agents, teams, departments,
 * tiers and targets are checked against what the config declares, so that a rule that could
 * never match or never route is refused at load with FILE:LINE: reason.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

#define MAX_RULES 1000
#define MAX_HEADERS 16     /* header conditions per rule */
#define MAX_SPLIT 16       /* shares of a canary split */
#define MAX_REGEX 4096     /* bytes of one pattern */

/* ---- regexes ------------------------------------------------------------------------------- */

/* Compiles the pattern of node v into *src and *code. */
static int want_regex(struct loader *l, const yaml_node_t *v, const char *what, char **src,
                      void **code)
{
    const char *s = conf_scalar(v);
    PCRE2_SIZE off = 0;
    int ec = 0;
    pcre2_code *re;

    if (s == NULL || *s == '\0')
        return conf_fail(l, v, "%s must be a regular expression (a non-empty string)", what);
    if (v->data.scalar.length > MAX_REGEX)
        return conf_fail(l, v, "%s is %zu bytes long; at most %d", what, v->data.scalar.length,
                         MAX_REGEX);
    if (*src != NULL)
        return conf_fail(l, v, "%s is given twice", what);
    if ((*src = strdup(s)) == NULL)
        return conf_fail(l, v, "%s: out of memory", what);
    /* as kept: up to a NUL that a YAML escape may have put in */
    re = pcre2_compile((PCRE2_SPTR)s, strlen(s), PCRE2_UTF | PCRE2_UCP, &ec, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        return conf_fail(l, v, "%s: bad regex '%s': %s at offset %zu", what, s, (char *)msg,
                         (size_t)off);
    }
    *code = re;
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT, it is interpreted */
    return 0;
}

static void free_regex(char **src, void **code)
{
    free(*src);
    *src = NULL;
    pcre2_code_free((pcre2_code *)*code);
    *code = NULL;
}

/* ---- match ---------------------------------------------------------------------------------- */

/* Each name of a list of agents, teams or departments is declared at that level. */
static int want_scopes(struct loader *l, const yaml_node_t *v, const char *what, const char *level,
                       char ***out, int *n)
{
    if (l->c->nscopes == 0)
        return conf_fail(l, v, "%s: no org is configured, so no request has a %s", what, level);
    if (confroute_names(l, v, what, out, n) < 0)
        return -1;
    for (int i = 0; i < *n; i++) {
        char scope[300];
        snprintf(scope, sizeof(scope), "%s:%s", level, (*out)[i]);
        int s = conf_find_scope(l->c, scope);
        if (s < 0 || strcmp(conf_level_name(l->c->scopes[s].level), level) != 0)
            return conf_fail(l, v, "%s: no %s named '%s' is declared", what, level, (*out)[i]);
    }
    return 0;
}

static int want_models(struct loader *l, const yaml_node_t *v, const char *what,
                       struct conf_rule *r)
{
    if (confroute_names(l, v, what, &r->models, &r->nmodels) < 0)
        return -1;
    for (int i = 0; i < r->nmodels; i++) {
        struct conf_dest tmp;
        if (conf_find_alias(l->c, r->models[i], &tmp) == NULL &&
            conf_find_model(l->c, r->models[i]) == NULL)
            return conf_fail(l, v,
                             "%s: '%s' is no alias, tier:NAME or model entry, so no request "
                             "could match",
                             what, r->models[i]);
    }
    return 0;
}

/* { min: N, max: N }, either bound optional, into lo and hi (-1 when absent). */
static int want_range(struct loader *l, const yaml_node_t *v, const char *what, long cap,
                      int64_t *lo, int64_t *hi)
{
    if (v->type != YAML_MAPPING_NODE)
        return conf_fail(l, v, "%s must be { min: N, max: N } (either may be left out)", what);
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *bv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        long iv;
        if (k == NULL || (strcmp(k, "min") != 0 && strcmp(k, "max") != 0))
            return conf_fail(l, kn, "%s: unknown key '%s' (min, max)", what, k ? k : "?");
        if (conf_want_int(l, bv, k, 0, cap, &iv) < 0)
            return -1;
        *(strcmp(k, "min") == 0 ? lo : hi) = iv;
    }
    if (*lo < 0 && *hi < 0)
        return conf_fail(l, v, "%s needs min, max or both", what);
    if (*lo >= 0 && *hi >= 0 && *lo > *hi)
        return conf_fail(l, v, "%s: min (%lld) is above max (%lld)", what, (long long)*lo,
                         (long long)*hi);
    return 0;
}

static int want_tristate(struct loader *l, const yaml_node_t *v, const char *what,
                         enum conf_tristate *out)
{
    int b = 0;

    if (confroute_bool(l, v, what, &b) < 0)
        return -1;
    *out = b ? CONF_YES : CONF_NO;
    return 0;
}

/* { regex: '...', keywords: [...] }: keywords are kept in lower case. */
static int want_text(struct loader *l, const yaml_node_t *v, const char *what,
                     struct conf_text_match *t)
{
    char sub[160];

    if (v->type != YAML_MAPPING_NODE)
        return conf_fail(l, v, "%s must be { regex: '...', keywords: [...] }", what);
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *tv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        snprintf(sub, sizeof(sub), "%s.%s", what, k ? k : "?");
        if (k != NULL && strcmp(k, "regex") == 0) {
            if (want_regex(l, tv, sub, &t->regex, &t->code) < 0)
                return -1;
        } else if (k != NULL && strcmp(k, "keywords") == 0) {
            if (confroute_names(l, tv, sub, &t->keywords, &t->nkeywords) < 0)
                return -1;
            for (int i = 0; i < t->nkeywords; i++)
                for (char *p = t->keywords[i]; *p; p++)
                    *p = (char)tolower((unsigned char)*p);
        } else {
            return conf_fail(l, kn, "%s: unknown key '%s' (regex, keywords)", what, k ? k : "?");
        }
    }
    if (t->regex == NULL && t->nkeywords == 0)
        return conf_fail(l, v, "%s needs a regex, keywords or both", what);
    return 0;
}

static int want_headers(struct loader *l, const yaml_node_t *v, const char *what,
                        struct conf_rule *r)
{
    int count;

    if (v->type != YAML_MAPPING_NODE)
        return conf_fail(l, v, "%s must be a mapping of header names to a value or { regex }",
                         what);
    count = (int)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (count == 0)
        return conf_fail(l, v, "%s is empty", what);
    if (count > MAX_HEADERS)
        return conf_fail(l, v, "%s: %d headers; at most %d", what, count, MAX_HEADERS);
    if ((r->headers = calloc((size_t)count, sizeof(*r->headers))) == NULL)
        return conf_fail(l, v, "%s: out of memory", what);
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *hv = conf_node(l, pair->value);
        const char *name = conf_scalar(kn);
        struct conf_header_match *h = &r->headers[r->nheaders++];
        char sub[200];
        if (name == NULL || *name == '\0' ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         "!#$%&'*+-.^_`|~") != strlen(name))
            return conf_fail(l, kn, "%s: '%s' is not a header name", what, name ? name : "?");
        if ((h->name = strdup(name)) == NULL)
            return conf_fail(l, kn, "%s: out of memory", what);
        for (char *p = h->name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        for (int j = 0; j < r->nheaders - 1; j++)
            if (strcmp(r->headers[j].name, h->name) == 0)
                return conf_fail(l, kn, "%s: '%s' is given twice", what, h->name);
        snprintf(sub, sizeof(sub), "%s.%s", what, h->name);
        if (hv->type == YAML_SCALAR_NODE) {
            if (*conf_scalar(hv) == '\0')
                return conf_fail(l, hv, "%s must be a value or { regex: '...' }", sub);
            if ((h->value = strdup(conf_scalar(hv))) == NULL)
                return conf_fail(l, hv, "%s: out of memory", sub);
            continue;
        }
        if (hv->type != YAML_MAPPING_NODE)
            return conf_fail(l, hv, "%s must be a value or { regex: '...' }", sub);
        FOR_PAIRS(l, hv, p2) {
            const yaml_node_t *rk = conf_node(l, p2->key);
            const char *k = conf_scalar(rk);
            char re[220];
            if (k == NULL || strcmp(k, "regex") != 0)
                return conf_fail(l, rk, "%s: unknown key '%s' (regex)", sub, k ? k : "?");
            snprintf(re, sizeof(re), "%s.regex", sub);
            if (want_regex(l, conf_node(l, p2->value), re, &h->regex, &h->code) < 0)
                return -1;
        }
        if (h->regex == NULL)
            return conf_fail(l, hv, "%s must be a value or { regex: '...' }", sub);
    }
    return 0;
}

static int want_labels(struct loader *l, const yaml_node_t *v, const char *what,
                       struct conf_rule *r)
{
    if (l->c->routing.classifier < 0)
        return conf_fail(l, v,
                         "%s: a classifier rule needs routing.classifier (its target: a model "
                         "entry)",
                         what);
    if (confroute_names(l, v, what, &r->labels, &r->nlabels) < 0)
        return -1;
    for (int i = 0; i < r->nlabels; i++)
        if (strcmp(r->labels[i], "simple") != 0 && strcmp(r->labels[i], "moderate") != 0 &&
            strcmp(r->labels[i], "complex") != 0)
            return conf_fail(l, v, "%s: '%s' is no label (simple, moderate, complex)", what,
                             r->labels[i]);
    return 0;
}

static int load_match(struct loader *l, const yaml_node_t *map, struct conf_rule *r)
{
    char what[160];

    if (map->type != YAML_MAPPING_NODE)
        return conf_fail(l, map, "rule '%s': match must be a mapping of conditions", r->name);
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        long iv;
        int rc;
        snprintf(what, sizeof(what), "rule '%s': match.%s", r->name, k ? k : "?");
        if (k == NULL)
            rc = 1;
        else if (strcmp(k, "model") == 0)
            rc = want_models(l, v, what, r);
        else if (strcmp(k, "agent") == 0)
            rc = want_scopes(l, v, what, "agent", &r->agents, &r->nagents);
        else if (strcmp(k, "team") == 0)
            rc = want_scopes(l, v, what, "team", &r->teams, &r->nteams);
        else if (strcmp(k, "department") == 0)
            rc = want_scopes(l, v, what, "department", &r->departments, &r->ndepartments);
        else if (strcmp(k, "header") == 0)
            rc = want_headers(l, v, what, r);
        else if (strcmp(k, "input_tokens") == 0)
            rc = want_range(l, v, what, 1000000000, &r->input_min, &r->input_max);
        else if (strcmp(k, "messages") == 0)
            rc = want_range(l, v, what, 1000000, &r->messages_min, &r->messages_max);
        else if (strcmp(k, "tools") == 0)
            rc = want_tristate(l, v, what, &r->tools);
        else if (strcmp(k, "images") == 0)
            rc = want_tristate(l, v, what, &r->images);
        else if (strcmp(k, "json_output") == 0)
            rc = want_tristate(l, v, what, &r->json_output);
        else if (strcmp(k, "last_user") == 0)
            rc = want_text(l, v, what, &r->last_user);
        else if (strcmp(k, "system") == 0)
            rc = want_text(l, v, what, &r->system);
        else if (strcmp(k, "budget_above") == 0) {
            rc = conf_want_int(l, v, "budget_above", 0, 100, &iv);
            r->budget_above = (int)iv;
        } else if (strcmp(k, "classifier") == 0)
            rc = want_labels(l, v, what, r);
        else
            rc = 1;
        if (rc > 0)
            return conf_fail(l, kn,
                             "rule '%s': match has no '%s' (model, agent, team, department, "
                             "header, input_tokens, messages, tools, images, json_output, "
                             "last_user, system, budget_above, classifier)",
                             r->name, k ? k : "?");
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- route ---------------------------------------------------------------------------------- */

static int load_split(struct loader *l, const yaml_node_t *seq, struct conf_rule *r)
{
    char what[160];
    int count, sum = 0;

    if (seq->type != YAML_SEQUENCE_NODE)
        return conf_fail(l, seq, "rule '%s': split must be a list of { target or tier, percent }",
                         r->name);
    count = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (count < 2 || count > MAX_SPLIT)
        return conf_fail(l, seq, "rule '%s': a split has 2 to %d shares, not %d", r->name,
                         MAX_SPLIT, count);
    if ((r->split = calloc((size_t)count, sizeof(*r->split))) == NULL)
        return conf_fail(l, seq, "rule '%s': out of memory", r->name);
    FOR_ITEMS(l, seq, item) {
        const yaml_node_t *sh = conf_node(l, *item);
        struct conf_split *s = &r->split[r->nsplit++];
        int dests = 0, have_percent = 0;
        if (sh->type != YAML_MAPPING_NODE)
            return conf_fail(l, sh, "rule '%s': a share of a split is { target or tier, percent }",
                             r->name);
        s->dest = (struct conf_dest){-1, -1, 0};
        FOR_PAIRS(l, sh, pair) {
            const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
            const char *k = conf_scalar(kn);
            long iv;
            int rc;
            snprintf(what, sizeof(what), "rule '%s': split.%s", r->name, k ? k : "?");
            if (k != NULL && (strcmp(k, "tier") == 0 || strcmp(k, "target") == 0)) {
                if (dests++ > 0)
                    return conf_fail(l, kn, "rule '%s': a share has one target or one tier",
                                     r->name);
                rc = strcmp(k, "tier") == 0 ? confroute_tier(l, v, what, 0, &s->dest)
                                 : confroute_target(l, v, what, &s->dest.target);
            } else if (k != NULL && strcmp(k, "percent") == 0) {
                rc = conf_want_int(l, v, "percent", 1, 99, &iv);
                s->percent = (int)iv;
                have_percent = 1;
            } else {
                return conf_fail(l, kn, "rule '%s': a share has no '%s' (target, tier, percent)",
                                 r->name, k ? k : "?");
            }
            if (rc < 0)
                return -1;
        }
        if (dests == 0 || !have_percent)
            return conf_fail(l, sh, "rule '%s': a share needs a target or a tier, and a percent",
                             r->name);
        sum += s->percent;
    }
    if (sum != 100)
        return conf_fail(l, seq, "rule '%s': the split's percents sum to %d, not 100", r->name,
                         sum);
    return 0;
}

static int load_route(struct loader *l, const yaml_node_t *map, struct conf_rule *r)
{
    char what[160];
    int dests = 0;

    if (map->type != YAML_MAPPING_NODE)
        return conf_fail(l, map, "rule '%s': route must be a mapping (tier, target or split)",
                         r->name);
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        long iv;
        int rc;
        snprintf(what, sizeof(what), "rule '%s': route.%s", r->name, k ? k : "?");
        if (k != NULL &&
            (strcmp(k, "tier") == 0 || strcmp(k, "target") == 0 || strcmp(k, "split") == 0)) {
            if (dests++ > 0)
                return conf_fail(l, kn, "rule '%s': route has exactly one of tier, target, split",
                                 r->name);
            if (strcmp(k, "tier") == 0)
                rc = confroute_tier(l, v, what, 1, &r->dest);
            else if (strcmp(k, "target") == 0)
                rc = confroute_target(l, v, what, &r->dest.target);
            else
                rc = load_split(l, v, r);
        } else if (k != NULL && strcmp(k, "max_output_tokens") == 0) {
            rc = conf_want_int(l, v, k, 1, 10000000, &iv);
            r->max_output_tokens = iv;
        } else if (k != NULL && strcmp(k, "rewrite_model") == 0) {
            rc = confroute_bool(l, v, what, &r->rewrite_model);
        } else if (k != NULL && strcmp(k, "tier_up") == 0) {
            rc = confroute_bool(l, v, what, &r->tier_up);
        } else {
            return conf_fail(l, kn,
                             "rule '%s': route has no '%s' (tier, target, split, "
                             "max_output_tokens, rewrite_model, tier_up)",
                             r->name, k ? k : "?");
        }
        if (rc < 0)
            return -1;
    }
    if (dests == 0)
        return conf_fail(l, map, "rule '%s': route needs one of tier, target, split", r->name);
    return 0;
}

/* ---- rules ---------------------------------------------------------------------------------- */

static int load_rule(struct loader *l, const yaml_node_t *map, struct conf_rule *r, int index)
{
    const struct conf_routing *rt = &l->c->routing;
    const yaml_node_t *match = NULL, *route = NULL, *name = NULL;

    if (map->type != YAML_MAPPING_NODE)
        return conf_fail(l, map, "routing.rules: a rule is a mapping { name, match, route }");
    r->line = (int)map->start_mark.line + 1;
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key);
        const char *k = conf_scalar(kn);
        if (k != NULL && strcmp(k, "name") == 0)
            name = conf_node(l, pair->value);
        else if (k != NULL && strcmp(k, "match") == 0)
            match = conf_node(l, pair->value);
        else if (k != NULL && strcmp(k, "route") == 0)
            route = conf_node(l, pair->value);
        else
            return conf_fail(l, kn, "routing.rules: a rule has no '%s' (name, match, route)",
                             k ? k : "?");
    }
    if (name == NULL)
        return conf_fail(l, map, "routing.rules: a rule needs a 'name'");
    const char *s = conf_scalar(name);
    if (s == NULL || *s == '\0' || strlen(s) > 64 ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
            strlen(s))
        return conf_fail(l, name,
                         "routing.rules: a rule's name is 1 to 64 letters, digits, '-', '_' "
                         "and '.'");
    for (int j = 0; j < index; j++)
        if (strcmp(rt->rules[j].name, s) == 0)
            return conf_fail(l, name, "rule '%s' is declared twice (first on line %d)", s,
                             rt->rules[j].line);
    if ((r->name = strdup(s)) == NULL)
        return conf_fail(l, name, "rule '%s': out of memory", s);
    if (route == NULL)
        return conf_fail(l, map, "rule '%s' has no 'route'", s);
    if (match != NULL && load_match(l, match, r) < 0)
        return -1;
    return load_route(l, route, r);
}

int confrule_load(struct loader *l, const yaml_node_t *seq)
{
    struct conf_routing *rt = &l->c->routing;
    int count;

    if (seq->type != YAML_SEQUENCE_NODE)
        return conf_fail(l, seq, "routing.rules must be a list of { name, match, route }");
    count = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (count == 0)
        return conf_fail(l, seq, "routing.rules is an empty list");
    if (count > MAX_RULES)
        return conf_fail(l, seq, "routing.rules: %d rules; at most %d", count, MAX_RULES);
    if ((rt->rules = calloc((size_t)count, sizeof(*rt->rules))) == NULL)
        return conf_fail(l, seq, "routing.rules: out of memory");
    FOR_ITEMS(l, seq, item) {
        struct conf_rule *r = &rt->rules[rt->nrules];
        r->input_min = r->input_max = r->messages_min = r->messages_max = -1;
        r->tools = r->images = r->json_output = CONF_ANY;
        r->budget_above = -1;
        r->dest = (struct conf_dest){-1, -1, 0};
        r->max_output_tokens = -1;
        r->tier_up = -1;
        rt->nrules++; /* freed however far it got */
        if (load_rule(l, conf_node(l, *item), r, rt->nrules - 1) < 0)
            return -1;
        rt->needs_budget |= r->budget_above >= 0;
        rt->needs_count |= r->input_min >= 0 || r->input_max >= 0;
    }
    return 0;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_text(struct conf_text_match *t)
{
    free_regex(&t->regex, &t->code);
    free_list(t->keywords, t->nkeywords);
}

void confrule_free(struct conf_rule *r)
{
    free(r->name);
    free_list(r->models, r->nmodels);
    free_list(r->agents, r->nagents);
    free_list(r->teams, r->nteams);
    free_list(r->departments, r->ndepartments);
    for (int i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
        free_regex(&r->headers[i].regex, &r->headers[i].code);
    }
    free(r->headers);
    free_text(&r->last_user);
    free_text(&r->system);
    free_list(r->labels, r->nlabels);
    free(r->split);
    memset(r, 0, sizeof(*r));
}
