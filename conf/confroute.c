/*
 * confroute: the tiers and routing sections of the config (the rules themselves are
 * confrule.c's).
 *
 *   tiers:                                  # ranked as listed, cheapest first
 *     cheap: [gpt-4o-mini, claude-haiku-4-5]
 *     expensive: [claude-sonnet-4-5, gpt-4o]
 *   routing:
 *     aliases: { auto: cheap }              # a tier or a model entry
 *     attempts: 3
 *     tier_up: false
 *     retry_after_max: 60s
 *     breaker: { failures: 5, error_ratio: 50, min_requests: 20, window: 30s, cooldown: 15s }
 *     classifier: { target: gpt-4o-mini, timeout_ms: 300, ttl: 10m, max_entries: 10000 }
 *     rules: [...]
 *
 * Everything is checked at load: a tier or a target that does not exist, a wildcard entry
 * used as a target, an alias that is a model's name, is refused with FILE:LINE: reason.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

#define MAX_TIERS 32
#define MAX_TIER_TARGETS 16 /* as many as a route decision holds candidates */
#define MAX_ALIASES 256

int confroute_load_key(struct loader *l, const char *k, const yaml_node_t *v)
{
    if (strcmp(k, "tiers") == 0)
        l->tiers = v;
    else if (strcmp(k, "routing") == 0)
        l->routing = v;
    else
        return 1;
    return 0;
}

/* ---- shared readers ---------------------------------------------------------------------- */

int confroute_names(struct loader *l, const yaml_node_t *v, const char *what, char ***out,
                    int *n)
{
    const yaml_node_t *one = v;
    int count = 1;

    if (v->type == YAML_SEQUENCE_NODE) {
        count = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (count == 0)
            return conf_fail(l, v, "%s is an empty list", what);
        if (count > CONF_ROUTE_MAX_LIST)
            return conf_fail(l, v, "%s lists %d names; at most %d", what, count,
                             CONF_ROUTE_MAX_LIST);
    } else if (v->type != YAML_SCALAR_NODE) {
        return conf_fail(l, v, "%s must be a name or a list of names", what);
    }
    *out = calloc((size_t)count, sizeof(**out));
    if (*out == NULL)
        return conf_fail(l, v, "%s: out of memory", what);
    for (int i = 0; i < count; i++) {
        if (v->type == YAML_SEQUENCE_NODE)
            one = conf_node(l, v->data.sequence.items.start[i]);
        const char *s = conf_scalar(one);
        if (s == NULL)
            return conf_fail(l, one, "%s must list plain names", what);
        if (*s == '\0')
            return conf_fail(l, one, "%s holds an empty name", what);
        if (((*out)[i] = strdup(s)) == NULL)
            return conf_fail(l, one, "%s: out of memory", what);
        *n = i + 1;
    }
    return 0;
}

int confroute_bool(struct loader *l, const yaml_node_t *v, const char *what, int *out)
{
    const char *s = conf_scalar(v);

    if (s != NULL && strcmp(s, "true") == 0)
        *out = 1;
    else if (s != NULL && strcmp(s, "false") == 0)
        *out = 0;
    else
        return conf_fail(l, v, "%s must be true or false, not '%s'", what, s ? s : "a list");
    return 0;
}

int confroute_target(struct loader *l, const yaml_node_t *v, const char *what, int *out)
{
    const struct conf *c = l->c;
    const char *s = conf_scalar(v);

    if (s == NULL || *s == '\0')
        return conf_fail(l, v, "%s must name a model entry", what);
    for (int i = 0; i < c->nmodels; i++)
        if (!c->models[i].wildcard && strcmp(c->models[i].name, s) == 0) {
            *out = i;
            return 0;
        }
    const struct conf_model *m = conf_find_model(c, s);
    if (m != NULL)
        return conf_fail(l, v,
                         "%s: '%s' matches only the wildcard entry '%s*'; a target must be a "
                         "model entry of its own (wildcards are refused)",
                         what, s, m->name);
    return conf_fail(l, v, "%s: no model entry named '%s' is configured under 'models'", what, s);
}

/* The tiers' names, "cheap, medium, expensive", for errors (cut short past cap). */
static const char *tier_names(const struct conf_routing *r, char *buf, size_t cap)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 0; i < r->ntiers && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", r->tiers[i].name);
    if (r->ntiers == 0)
        snprintf(buf, cap, "none is declared");
    return buf;
}

int confroute_tier(struct loader *l, const yaml_node_t *v, const char *what, int allow_down,
                   struct conf_dest *dest)
{
    const char *s = conf_scalar(v);
    char names[200];

    if (s == NULL || *s == '\0')
        return conf_fail(l, v, "%s must name a tier", what);
    *dest = (struct conf_dest){-1, -1, 0};
    if (allow_down && strcmp(s, "down") == 0) {
        dest->down = 1;
        return 0;
    }
    if (strncmp(s, "tier:", 5) == 0)
        s += 5;
    dest->tier = conf_find_tier(l->c, s);
    if (dest->tier < 0)
        return conf_fail(l, v, "%s: no tier named '%s' is declared under 'tiers' (%s)", what, s,
                         tier_names(&l->c->routing, names, sizeof(names)));
    return 0;
}

/* ---- tiers --------------------------------------------------------------------------------- */

/* A tier's, an alias's or a rule's name: letters, digits, '-', '_', '.'; 1 to 64 of them. */
static int want_name(struct loader *l, const yaml_node_t *n, const char *what, const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 64)
        return conf_fail(l, n, "%s names are 1 to 64 characters long", what);
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
            return conf_fail(l, n, "%s '%s': names may hold letters, digits, '-', '_' and '.'",
                             what, s);
    return 0;
}

static int exact_model(const struct conf *c, const char *name)
{
    for (int i = 0; i < c->nmodels; i++)
        if (!c->models[i].wildcard && strcmp(c->models[i].name, name) == 0)
            return i;
    return -1;
}

static int load_tier(struct loader *l, const yaml_node_t *kn, const yaml_node_t *v,
                     struct conf_tier *t)
{
    const char *name = conf_scalar(kn);
    char what[100];
    int count;

    if (name == NULL)
        return conf_fail(l, kn, "tiers: a tier needs a plain name");
    if (want_name(l, kn, "tier", name) < 0)
        return -1;
    if (strcmp(name, "down") == 0)
        return conf_fail(l, kn, "tiers: 'down' is not a tier name (a rule's 'tier: down' means "
                                "one tier below)");
    if (exact_model(l->c, name) >= 0)
        return conf_fail(l, kn, "tier '%s' has the name of a model entry; name it otherwise",
                         name);
    if ((t->name = strdup(name)) == NULL)
        return conf_fail(l, kn, "tier '%s': out of memory", name);
    t->line = (int)kn->start_mark.line + 1;
    snprintf(what, sizeof(what), "tier '%s'", name);
    if (v->type == YAML_SCALAR_NODE && *conf_scalar(v) == '\0')
        return conf_fail(l, v, "tier '%s' has no targets", name);
    if (v->type == YAML_SCALAR_NODE)
        count = 1;
    else if (v->type == YAML_SEQUENCE_NODE)
        count = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    else
        return conf_fail(l, v, "tier '%s' must be a list of model entries", name);
    if (count == 0)
        return conf_fail(l, v, "tier '%s' has no targets", name);
    if (count > MAX_TIER_TARGETS)
        return conf_fail(l, v, "tier '%s' lists %d targets; at most %d", name, count,
                         MAX_TIER_TARGETS);
    if ((t->targets = calloc((size_t)count, sizeof(*t->targets))) == NULL)
        return conf_fail(l, v, "tier '%s': out of memory", name);
    for (int i = 0; i < count; i++) {
        const yaml_node_t *item =
            v->type == YAML_SCALAR_NODE ? v : conf_node(l, v->data.sequence.items.start[i]);
        int m;
        if (confroute_target(l, item, what, &m) < 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (t->targets[j] == m)
                return conf_fail(l, item, "tier '%s' lists '%s' twice", name,
                                 l->c->models[m].name);
        t->targets[i] = m;
        t->ntargets = i + 1;
    }
    return 0;
}

static int load_tiers(struct loader *l, const yaml_node_t *map)
{
    struct conf_routing *r = &l->c->routing;
    int count;

    if (conf_want_mapping(l, map, "tiers") < 0)
        return -1;
    count = (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (count == 0)
        return conf_fail(l, map, "tiers: no tier is declared");
    if (count > MAX_TIERS)
        return conf_fail(l, map, "tiers: %d are declared; at most %d", count, MAX_TIERS);
    if ((r->tiers = calloc((size_t)count, sizeof(*r->tiers))) == NULL)
        return conf_fail(l, map, "tiers: out of memory");
    FOR_PAIRS(l, map, pair) {
        r->ntiers++; /* zeroed: freed as it is however far it got */
        if (load_tier(l, conf_node(l, pair->key), conf_node(l, pair->value),
                      &r->tiers[r->ntiers - 1]) < 0)
            return -1;
    }
    return 0;
}

/* ---- routing ------------------------------------------------------------------------------ */

static int load_aliases(struct loader *l, const yaml_node_t *map)
{
    struct conf_routing *r = &l->c->routing;
    int count;

    if (conf_want_mapping(l, map, "routing.aliases") < 0)
        return -1;
    count = (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (count == 0)
        return conf_fail(l, map, "routing.aliases is empty");
    if (count > MAX_ALIASES)
        return conf_fail(l, map, "routing.aliases: %d are declared; at most %d", count,
                         MAX_ALIASES);
    if ((r->aliases = calloc((size_t)count, sizeof(*r->aliases))) == NULL)
        return conf_fail(l, map, "routing.aliases: out of memory");
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *name = conf_scalar(kn), *to = conf_scalar(v);
        struct conf_alias *a = &r->aliases[r->naliases];
        char what[100];
        if (name == NULL || *name == '\0')
            return conf_fail(l, kn, "routing.aliases: an alias needs a plain name");
        if (strncmp(name, "tier:", 5) == 0)
            return conf_fail(l, kn,
                             "alias '%s': names that start with 'tier:' are the tiers' own "
                             "(tier:NAME needs no alias)",
                             name);
        if (exact_model(l->c, name) >= 0)
            return conf_fail(l, kn,
                             "alias '%s' has the name of a model entry, which it would shadow",
                             name);
        if ((a->name = strdup(name)) == NULL)
            return conf_fail(l, kn, "alias '%s': out of memory", name);
        r->naliases++;
        snprintf(what, sizeof(what), "alias '%s'", name);
        if (to == NULL || *to == '\0')
            return conf_fail(l, v, "alias '%s' must name a tier or a model entry", name);
        if (strncmp(to, "tier:", 5) == 0 || conf_find_tier(l->c, to) >= 0) {
            if (confroute_tier(l, v, what, 0, &a->dest) < 0)
                return -1;
        } else {
            char names[200];
            a->dest = (struct conf_dest){-1, -1, 0};
            if (exact_model(l->c, to) < 0 && conf_find_model(l->c, to) == NULL)
                return conf_fail(l, v,
                                 "alias '%s': '%s' is neither a tier (%s) nor a model entry",
                                 name, to, tier_names(r, names, sizeof(names)));
            if (confroute_target(l, v, what, &a->dest.target) < 0)
                return -1;
        }
    }
    return 0;
}

static int want_count(struct loader *l, const yaml_node_t *v, const char *key, long lo, long hi,
                      int *out)
{
    long iv;

    if (conf_want_int(l, v, key, lo, hi, &iv) < 0)
        return -1;
    *out = (int)iv;
    return 0;
}

static int load_breaker(struct loader *l, const yaml_node_t *map)
{
    struct conf_routing *r = &l->c->routing;

    if (conf_want_mapping(l, map, "routing.breaker") < 0)
        return -1;
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        int rc;
        if (k != NULL && strcmp(k, "failures") == 0)
            rc = want_count(l, v, k, 1, 1000, &r->breaker_failures);
        else if (k != NULL && strcmp(k, "error_ratio") == 0)
            rc = want_count(l, v, k, 1, 100, &r->breaker_error_pct);
        else if (k != NULL && strcmp(k, "min_requests") == 0)
            rc = want_count(l, v, k, 1, 100000, &r->breaker_min_requests);
        else if (k != NULL && strcmp(k, "window") == 0)
            rc = conf_want_duration(l, v, k, &r->breaker_window_ms);
        else if (k != NULL && strcmp(k, "cooldown") == 0)
            rc = conf_want_duration(l, v, k, &r->breaker_cooldown_ms);
        else
            return conf_fail(l, kn,
                             "routing.breaker: unknown key '%s' (failures, error_ratio, "
                             "min_requests, window, cooldown)",
                             k ? k : "?");
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int load_classifier(struct loader *l, const yaml_node_t *map)
{
    struct conf_routing *r = &l->c->routing;
    const yaml_node_t *target = NULL;

    if (conf_want_mapping(l, map, "routing.classifier") < 0)
        return -1;
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        int rc;
        long iv;
        if (k != NULL && strcmp(k, "target") == 0) {
            target = v;
            rc = confroute_target(l, v, "routing.classifier.target", &r->classifier);
        } else if (k != NULL && strcmp(k, "timeout_ms") == 0) {
            rc = conf_want_int(l, v, k, 1, 600000, &iv);
            r->classifier_timeout_ms = iv;
        } else if (k != NULL && strcmp(k, "ttl") == 0) {
            rc = conf_want_duration(l, v, k, &r->classifier_ttl_ms);
        } else if (k != NULL && strcmp(k, "max_entries") == 0) {
            rc = want_count(l, v, k, 1, 10000000, &r->classifier_max_entries);
        } else {
            return conf_fail(l, kn,
                             "routing.classifier: unknown key '%s' (target, timeout_ms, ttl, "
                             "max_entries)",
                             k ? k : "?");
        }
        if (rc < 0)
            return -1;
    }
    if (target == NULL)
        return conf_fail(l, map, "routing.classifier needs a 'target' (a model entry)");
    return 0;
}

static int load_routing(struct loader *l, const yaml_node_t *map)
{
    struct conf_routing *r = &l->c->routing;
    const yaml_node_t *aliases = NULL, *rules = NULL;

    if (conf_want_mapping(l, map, "routing") < 0)
        return -1;
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        int rc = 0;
        if (k != NULL && strcmp(k, "aliases") == 0)
            aliases = v;
        else if (k != NULL && strcmp(k, "rules") == 0)
            rules = v;
        else if (k != NULL && strcmp(k, "attempts") == 0)
            rc = want_count(l, v, k, 1, 8, &r->attempts);
        else if (k != NULL && strcmp(k, "tier_up") == 0)
            rc = confroute_bool(l, v, "routing.tier_up", &r->tier_up);
        else if (k != NULL && strcmp(k, "retry_after_max") == 0)
            rc = conf_want_duration(l, v, k, &r->retry_after_max_ms);
        else if (k != NULL && strcmp(k, "breaker") == 0)
            rc = load_breaker(l, v);
        else if (k != NULL && strcmp(k, "classifier") == 0)
            rc = load_classifier(l, v);
        else
            return conf_fail(l, kn,
                             "routing: unknown key '%s' (aliases, attempts, tier_up, "
                             "retry_after_max, breaker, classifier, rules)",
                             k ? k : "?");
        if (rc < 0)
            return -1;
    }
    if (aliases != NULL && load_aliases(l, aliases) < 0)
        return -1;
    if (rules != NULL && confrule_load(l, rules) < 0)
        return -1;
    return 0;
}

int confroute_finish(struct loader *l)
{
    struct conf_routing *r = &l->c->routing;

    r->attempts = 3;
    r->tier_up = 0;
    r->retry_after_max_ms = 60 * 1000;
    r->breaker_failures = 5;
    r->breaker_error_pct = 50;
    r->breaker_min_requests = 20;
    r->breaker_window_ms = 30 * 1000;
    r->breaker_cooldown_ms = 15 * 1000;
    r->classifier = -1;
    r->classifier_timeout_ms = 300;
    r->classifier_ttl_ms = 10 * 60 * 1000;
    r->classifier_max_entries = 10000;
    if (l->tiers != NULL && load_tiers(l, l->tiers) < 0)
        return -1;
    if (l->routing != NULL && load_routing(l, l->routing) < 0)
        return -1;
    return 0;
}

void confroute_free(struct conf *c)
{
    struct conf_routing *r = &c->routing;

    for (int i = 0; i < r->ntiers; i++) {
        free(r->tiers[i].name);
        free(r->tiers[i].targets);
    }
    free(r->tiers);
    for (int i = 0; i < r->naliases; i++)
        free(r->aliases[i].name);
    free(r->aliases);
    for (int i = 0; i < r->nrules; i++)
        confrule_free(&r->rules[i]);
    free(r->rules);
    memset(r, 0, sizeof(*r));
}

/* ---- lookups ------------------------------------------------------------------------------ */

int conf_find_tier(const struct conf *c, const char *name)
{
    for (int i = 0; i < c->routing.ntiers; i++)
        if (strcmp(c->routing.tiers[i].name, name) == 0)
            return i;
    return -1;
}

const struct conf_dest *conf_find_alias(const struct conf *c, const char *name,
                                        struct conf_dest *tmp)
{
    if (strncmp(name, "tier:", 5) == 0) {
        int t = conf_find_tier(c, name + 5);
        if (t < 0)
            return NULL;
        *tmp = (struct conf_dest){t, -1, 0};
        return tmp;
    }
    for (int i = 0; i < c->routing.naliases; i++)
        if (strcmp(c->routing.aliases[i].name, name) == 0)
            return &c->routing.aliases[i].dest;
    return NULL;
}
