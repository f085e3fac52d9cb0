/*
 * confid: the parts of the config about who calls and what they may spend: the org tree
 * (org -> departments -> teams -> agents), virtual keys, budgets, policies and prices; the
 * ledger, admin listener and alerts sections are read by confsvc.c.
 *
 *   org: acme
 *   departments:
 *     research: { teams: { search: { agents: [crawler-1] }, eval: { agents: [judge] } } }
 *   keys:
 *     tg-demo-alpha: crawler-1            # a secret, hashed at load and then forgotten
 *     sha256:9f86d081...: judge           # or only its SHA-256
 *   budgets:
 *     - { scope: team:eval, window: day, tokens: 2000 }
 *     - { scope: org, window: month, usd: 500 }
 */
#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf-int.h"

static const char *const window_names[CONF_WIN__COUNT] = {"minute", "hour", "day", "month",
                                                          "total"};

const char *conf_window_name(enum conf_window w)
{
    return (unsigned)w < CONF_WIN__COUNT ? window_names[w] : "?";
}

int conf_window_parse(const char *s)
{
    for (int i = 0; i < CONF_WIN__COUNT; i++)
        if (strcmp(s, window_names[i]) == 0)
            return i;
    return -1;
}

static const char *const level_names[] = {"org", "department", "team", "agent"};

const char *conf_level_name(enum conf_level lv)
{
    return (unsigned)lv <= CONF_LEVEL_AGENT ? level_names[lv] : "?";
}

int conf_level_parse(const char *s)
{
    for (int i = CONF_LEVEL_ORG; i <= CONF_LEVEL_AGENT; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int conf_find_scope(const struct conf *c, const char *scope)
{
    const char *colon = strchr(scope, ':');

    if (c->nscopes == 0)
        return -1;
    if (colon == NULL) {
        if (strcmp(scope, "org") == 0 || strcmp(scope, c->scopes[0].name) == 0)
            return 0;
        if (strcmp(scope, "anonymous") == 0)
            return c->anonymous_scope;
        return -1;
    }
    size_t ll = (size_t)(colon - scope);
    for (int lv = CONF_LEVEL_ORG; lv <= CONF_LEVEL_AGENT; lv++) {
        if (strlen(level_names[lv]) != ll || strncmp(scope, level_names[lv], ll) != 0)
            continue;
        for (int i = 0; i < c->nscopes; i++)
            if ((int)c->scopes[i].level == lv && strcmp(c->scopes[i].name, colon + 1) == 0)
                return i;
    }
    return -1;
}

const char *conf_scope_label(const struct conf *c, int scope, char *buf, size_t cap)
{
    const struct conf_scope *s = &c->scopes[scope];

    if (s->level == CONF_LEVEL_ORG)
        snprintf(buf, cap, "org");
    else
        snprintf(buf, cap, "%s:%s", level_names[s->level], s->name);
    return buf;
}

/* ---- small readers -------------------------------------------------------------------- */

/* A non-negative whole number of tokens. */
static int want_tokens(struct loader *l, const yaml_node_t *n, const char *key, int64_t *out)
{
    const char *s = NULL;
    char *end;
    long long v;

    if (conf_want_scalar(l, n, key, &s) < 0)
        return -1;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || v < 0 || v > (1LL << 53))
        return conf_fail(l, n, "'%s' must be a whole number of tokens, not '%s'", key, s);
    *out = v;
    return 0;
}

/* A number of dollars from 0 to max; what names the unit in the error ("an amount of US
 * dollars", "US dollars per million tokens"). */
static int want_dollars(struct loader *l, const yaml_node_t *n, const char *key, double max,
                        const char *what, double *out)
{
    const char *s = NULL;
    char *end;
    double v;

    if (conf_want_scalar(l, n, key, &s) < 0)
        return -1;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0 && v <= max))
        return conf_fail(l, n, "'%s' must be %s, such as 2.50, not '%s'", key, what, s);
    *out = v;
    return 0;
}

/* A non-negative amount of dollars, kept in nano-dollars. */
static int want_usd(struct loader *l, const yaml_node_t *n, const char *key, int64_t *out)
{
    double v = 0;

    if (want_dollars(l, n, key, 1e9, "an amount of US dollars", &v) < 0)
        return -1;
    *out = llround(v * 1e9);
    return 0;
}

static int want_price(struct loader *l, const yaml_node_t *n, const char *key, double *out)
{
    return want_dollars(l, n, key, 100000, "US dollars per million tokens", out);
}

static int want_bool(struct loader *l, const yaml_node_t *n, const char *key, int *out)
{
    const char *s = NULL;

    if (conf_want_scalar(l, n, key, &s) < 0)
        return -1;
    if (strcmp(s, "true") == 0 || strcmp(s, "enabled") == 0 || strcmp(s, "yes") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "disabled") == 0 || strcmp(s, "no") == 0)
        *out = 0;
    else
        return conf_fail(l, n, "'%s' must be true or false (enabled or disabled), not '%s'", key,
                         s);
    return 0;
}

/* ---- models: price and output cap --------------------------------------------------- */

int confid_model_key(struct loader *l, const char *name, const char *k, const yaml_node_t *v,
                     struct conf_model *m)
{
    if (strcmp(k, "max_output_tokens") == 0) {
        long iv;
        if (conf_want_int(l, v, k, 1, 10000000, &iv) < 0)
            return -1;
        m->max_output_tokens = iv;
        return 0;
    }
    if (strcmp(k, "context_window") == 0) {
        long iv;
        if (conf_want_int(l, v, k, 1, 100000000, &iv) < 0)
            return -1;
        m->context_window = iv;
        return 0;
    }
    if (strcmp(k, "cache_min_tokens") == 0) { /* 0: Anthropic's minimum by family */
        long iv;
        if (conf_want_int(l, v, k, 0, 1000000, &iv) < 0)
            return -1;
        m->cache_min_tokens = iv;
        return 0;
    }
    if (strcmp(k, "price") != 0)
        return 1;
    if (conf_want_mapping(l, v, "price") < 0)
        return -1;
    m->price = (struct conf_price){-1, -1, -1, -1, -1, 1};
    FOR_PAIRS(l, v, pair) {
        const char *pk = conf_scalar(conf_node(l, pair->key));
        const yaml_node_t *pv = conf_node(l, pair->value);
        double *slot = NULL;
        if (pk == NULL)
            return conf_fail(l, pv, "model '%s': price keys must be plain names", name);
        if (strcmp(pk, "input") == 0)
            slot = &m->price.input;
        else if (strcmp(pk, "output") == 0)
            slot = &m->price.output;
        else if (strcmp(pk, "cached_input") == 0)
            slot = &m->price.cached_input;
        else if (strcmp(pk, "cache_write") == 0)
            slot = &m->price.cache_write;
        else if (strcmp(pk, "cache_write_1h") == 0)
            slot = &m->price.cache_write_1h;
        else
            return conf_fail(l, conf_node(l, pair->key),
                             "model '%s': price has no '%s' (input, output, cached_input, "
                             "cache_write, cache_write_1h: USD per million tokens)",
                             name, pk);
        if (want_price(l, pv, pk, slot) < 0)
            return -1;
    }
    if (m->price.input < 0 || m->price.output < 0)
        return conf_fail(l, v, "model '%s': price needs at least 'input' and 'output'", name);
    if (m->price.cached_input < 0)
        m->price.cached_input = m->price.input;
    if (m->price.cache_write < 0)
        m->price.cache_write = m->price.input;
    if (m->price.cache_write_1h < 0)
        m->price.cache_write_1h = 2 * m->price.input; /* Anthropic's 1-hour write: 2 x input */
    return 0;
}

/* ---- the org tree ----------------------------------------------------------------------- */

static int find_policy(const struct conf *c, const char *name)
{
    for (int i = 0; i < c->npolicies; i++)
        if (strcmp(c->policies[i].name, name) == 0)
            return i;
    return -1;
}

static int add_scope(struct loader *l, const yaml_node_t *at, const char *name,
                     enum conf_level level, int parent)
{
    struct conf *c = l->c;

    if (*name == '\0')
        return conf_fail(l, at, "a %s needs a name", level_names[level]);
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
            return conf_fail(l, at, "%s '%s': names may hold letters, digits, '-', '_' and '.'",
                             level_names[level], name);
    for (int i = 0; i < c->nscopes; i++)
        if (c->scopes[i].level == level && strcmp(c->scopes[i].name, name) == 0)
            return conf_fail(l, at, "%s '%s' is declared twice (names are unique per level)",
                             level_names[level], name);
    if (c->nscopes % 16 == 0) {
        struct conf_scope *grown =
            realloc(c->scopes, (size_t)(c->nscopes + 16) * sizeof(*c->scopes));
        if (grown == NULL)
            return conf_fail(l, at, "%s '%s': out of memory", level_names[level], name);
        c->scopes = grown;
    }
    struct conf_scope *s = &c->scopes[c->nscopes];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if (s->name == NULL)
        return conf_fail(l, at, "%s '%s': out of memory", level_names[level], name);
    s->level = level;
    s->parent = parent;
    s->policy = -1;
    for (int w = 0; w < CONF_WIN__COUNT; w++)
        s->limits[w] = (struct conf_limit){-1, -1};
    return c->nscopes++;
}

/* A node's own settings besides its children: policy. */
static int scope_setting(struct loader *l, int scope, const char *k, const yaml_node_t *v)
{
    const char *s = NULL;

    if (strcmp(k, "policy") != 0)
        return 1;
    if (conf_want_scalar(l, v, k, &s) < 0)
        return -1;
    l->c->scopes[scope].policy = find_policy(l->c, s);
    if (l->c->scopes[scope].policy < 0)
        return conf_fail(l, v, "no policy named '%s' is declared under 'policies'", s);
    return 0;
}

static int load_agents(struct loader *l, const yaml_node_t *v, int team)
{
    if (v->type == YAML_SEQUENCE_NODE) {
        FOR_ITEMS(l, v, item) {
            const yaml_node_t *a = conf_node(l, *item);
            const char *name = conf_scalar(a);
            if (name == NULL)
                return conf_fail(l, a, "'agents' must list agent names");
            if (add_scope(l, a, name, CONF_LEVEL_AGENT, team) < 0)
                return -1;
        }
        return 0;
    }
    if (v->type != YAML_MAPPING_NODE)
        return conf_fail(l, v, "'agents' must be a list of names or a mapping of name to settings");
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *av = conf_node(l, pair->value);
        const char *name = conf_scalar(kn);
        int a;
        if (name == NULL || (a = add_scope(l, kn, name, CONF_LEVEL_AGENT, team)) < 0)
            return name == NULL ? conf_fail(l, kn, "agent names must be plain") : -1;
        if (av->type == YAML_SCALAR_NODE && *conf_scalar(av) == '\0')
            continue; /* "crawler-1:" with nothing after it */
        if (conf_want_mapping(l, av, name) < 0)
            return -1;
        FOR_PAIRS(l, av, p2) {
            const char *k = conf_scalar(conf_node(l, p2->key));
            int r = k ? scope_setting(l, a, k, conf_node(l, p2->value)) : 1;
            if (r < 0)
                return -1;
            if (r > 0)
                return conf_fail(l, conf_node(l, p2->key), "agent '%s': unknown key '%s'", name,
                                 k ? k : "?");
        }
    }
    return 0;
}

/* A department's teams, or a team's agents: children of parent at level. */
static int load_children(struct loader *l, const yaml_node_t *map, enum conf_level level,
                         int parent)
{
    const char *what = level == CONF_LEVEL_DEPARTMENT ? "departments" : "teams";

    if (conf_want_mapping(l, map, what) < 0)
        return -1;
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *name = conf_scalar(kn);
        int s, seen_children = 0;
        if (name == NULL)
            return conf_fail(l, kn, "%s names must be plain", level_names[level]);
        if ((s = add_scope(l, kn, name, level, parent)) < 0)
            return -1;
        if (conf_want_mapping(l, v, name) < 0)
            return -1;
        FOR_PAIRS(l, v, p2) {
            const char *k = conf_scalar(conf_node(l, p2->key));
            const yaml_node_t *cv = conf_node(l, p2->value);
            int r;
            if (k == NULL)
                return conf_fail(l, cv, "%s '%s': keys must be plain", level_names[level], name);
            if (level == CONF_LEVEL_DEPARTMENT && strcmp(k, "teams") == 0)
                r = load_children(l, cv, CONF_LEVEL_TEAM, s);
            else if (level == CONF_LEVEL_TEAM && strcmp(k, "agents") == 0)
                r = load_agents(l, cv, s);
            else if ((r = scope_setting(l, s, k, cv)) > 0)
                return conf_fail(l, conf_node(l, p2->key), "%s '%s': unknown key '%s' (%s)",
                                 level_names[level], name, k,
                                 level == CONF_LEVEL_DEPARTMENT ? "teams, policy"
                                                                : "agents, policy");
            if (r < 0)
                return -1;
            if (strcmp(k, "teams") == 0 || strcmp(k, "agents") == 0)
                seen_children = 1;
        }
        if (!seen_children)
            return conf_fail(l, v, "%s '%s' has no %s", level_names[level], name,
                             level == CONF_LEVEL_DEPARTMENT ? "teams" : "agents");
    }
    return 0;
}

/* ---- policies ----------------------------------------------------------------------------- */

/* routing: { prefer_cost: true, max_latency_ms: 500 } */
static int load_policy_routing(struct loader *l, const char *name, const yaml_node_t *v,
                               struct conf_policy *p)
{
    if (conf_want_mapping(l, v, "routing") < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        long iv;
        if (k != NULL && strcmp(k, "prefer_cost") == 0) {
            if (want_bool(l, pv, k, &p->prefer_cost) < 0)
                return -1;
        } else if (k != NULL && strcmp(k, "max_latency_ms") == 0) {
            if (conf_want_int(l, pv, k, 1, 600000, &iv) < 0)
                return -1;
            p->max_latency_ms = iv;
        } else {
            return conf_fail(l, kn, "policy '%s': routing has no '%s' (prefer_cost, "
                                    "max_latency_ms)",
                             name, k ? k : "?");
        }
    }
    if (p->max_latency_ms >= 0 && !p->prefer_cost)
        return conf_fail(l, v, "policy '%s': routing.max_latency_ms needs prefer_cost: true",
                         name);
    return 0;
}

static int load_policy(struct loader *l, const char *name, const yaml_node_t *v,
                       struct conf_policy *p)
{
    p->name = strdup(name);
    if (p->name == NULL)
        return conf_fail(l, v, "policy '%s': out of memory", name);
    p->min_per_agent = p->max_per_agent = p->max_per_request = -1;
    p->task_max_nusd = p->task_max_requests = -1;
    p->max_retries = -1;
    p->max_latency_ms = -1;
    p->window = CONF_WIN_DAY;
    p->cache = *conf_policy_cache_defaults();
    if (conf_want_mapping(l, v, name) < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        int r = 0;
        if (k == NULL)
            return conf_fail(l, kn, "policy '%s': keys must be plain", name);
        if (strcmp(k, "max_per_request") == 0) {
            r = want_tokens(l, pv, k, &p->max_per_request);
        } else if (strcmp(k, "on_exhaustion") == 0) {
            const char *s = NULL;
            if (conf_want_scalar(l, pv, k, &s) < 0)
                return -1;
            if (strcmp(s, "reject") != 0 && strcmp(s, "downgrade") != 0)
                return conf_fail(l, pv, "policy '%s': on_exhaustion is reject or downgrade", name);
            p->downgrade = strcmp(s, "downgrade") == 0;
        } else if (strcmp(k, "allocation") == 0 || strcmp(k, "cutoffs") == 0 ||
                   strcmp(k, "task") == 0) {
            if (conf_want_mapping(l, pv, k) < 0)
                return -1;
            FOR_PAIRS(l, pv, p2) {
                const yaml_node_t *sk = conf_node(l, p2->key), *sv = conf_node(l, p2->value);
                const char *s = conf_scalar(sk);
                long iv;
                if (s == NULL)
                    return conf_fail(l, sk, "policy '%s': keys must be plain", name);
                if (strcmp(k, "allocation") == 0 && strcmp(s, "min_per_agent") == 0)
                    r = want_tokens(l, sv, s, &p->min_per_agent);
                else if (strcmp(k, "allocation") == 0 && strcmp(s, "max_per_agent") == 0)
                    r = want_tokens(l, sv, s, &p->max_per_agent);
                else if (strcmp(k, "allocation") == 0 && strcmp(s, "window") == 0) {
                    const char *wn = NULL;
                    if (conf_want_scalar(l, sv, s, &wn) < 0)
                        return -1;
                    int w = conf_window_parse(wn);
                    if (w < 0)
                        return conf_fail(l, sv,
                                         "policy '%s': window is minute, hour, day, month or "
                                         "total, not '%s'",
                                         name, wn);
                    p->window = (enum conf_window)w;
                } else if (strcmp(k, "cutoffs") == 0 && strcmp(s, "max_retries") == 0) {
                    r = conf_want_int(l, sv, s, 0, 100, &iv);
                    p->max_retries = (int)iv;
                } else if (strcmp(k, "cutoffs") == 0 && strcmp(s, "loop_detection") == 0)
                    r = want_bool(l, sv, s, &p->loop_detection);
                else if (strcmp(k, "task") == 0 && strcmp(s, "max_usd") == 0)
                    r = want_usd(l, sv, s, &p->task_max_nusd);
                else if (strcmp(k, "task") == 0 && strcmp(s, "max_requests") == 0)
                    r = want_tokens(l, sv, s, &p->task_max_requests);
                else
                    return conf_fail(l, sk, "policy '%s': %s has no '%s'", name, k, s);
                if (r < 0)
                    return -1;
            }
        } else if (strcmp(k, "routing") == 0) {
            if (load_policy_routing(l, name, pv, p) < 0)
                return -1;
        } else if (strcmp(k, "cache") == 0) {
            if (confcache_policy(l, name, pv, &p->cache) < 0)
                return -1;
        } else {
            return conf_fail(l, kn,
                             "policy '%s': unknown key '%s' (allocation, max_per_request, "
                             "on_exhaustion, cutoffs, task, routing, cache)",
                             name, k);
        }
        if (r < 0)
            return -1;
    }
    if (p->min_per_agent >= 0 && p->max_per_agent >= 0 && p->min_per_agent > p->max_per_agent)
        return conf_fail(l, v, "policy '%s': min_per_agent is above max_per_agent", name);
    return 0;
}

/* ---- keys and budgets --------------------------------------------------------------------- */

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int load_keys(struct loader *l, const yaml_node_t *map)
{
    struct conf *c = l->c;

    if (conf_want_mapping(l, map, "keys") < 0)
        return -1;
    c->keys = calloc((size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start) + 1,
                     sizeof(*c->keys));
    if (c->keys == NULL)
        return conf_fail(l, map, "keys: out of memory");
    FOR_PAIRS(l, map, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *secret = conf_scalar(kn), *agent = NULL;
        struct conf_key *k = &c->keys[c->nkeys];
        char scope[300];
        if (secret == NULL)
            return conf_fail(l, kn, "keys: each key must be a plain string");
        if (conf_want_scalar(l, v, "keys", &agent) < 0)
            return -1;
        snprintf(scope, sizeof(scope), "agent:%s", agent);
        k->agent = conf_find_scope(c, scope);
        if (k->agent < 0 || c->scopes[k->agent].level != CONF_LEVEL_AGENT)
            return conf_fail(l, v, "keys: no agent named '%s' is declared", agent);
        k->line = (int)kn->start_mark.line + 1;
        if (strncmp(secret, "sha256:", 7) == 0) {
            const char *h = secret + 7;
            if (strlen(h) != 64)
                return conf_fail(l, kn, "keys: a sha256: key needs 64 hex digits");
            for (int i = 0; i < 32; i++) {
                int hi = hex_nibble(h[2 * i]), lo = hex_nibble(h[2 * i + 1]);
                if (hi < 0 || lo < 0)
                    return conf_fail(l, kn, "keys: a sha256: key needs 64 hex digits");
                k->hash[i] = (unsigned char)(hi << 4 | lo);
            }
        } else {
            /* the line number only: the secret itself is never written into an error */
            if (strncmp(secret, "tg-", 3) != 0 || strlen(secret) < 12)
                return conf_fail(l, kn,
                                 "keys: a key must start with 'tg-' and be at least 12 characters "
                                 "long, or be 'sha256:' and the key's SHA-256 in hex");
            unsigned int n = 0;
            EVP_Digest(secret, strlen(secret), k->hash, &n, EVP_sha256(), NULL);
        }
        for (int j = 0; j < c->nkeys; j++)
            if (memcmp(c->keys[j].hash, k->hash, 32) == 0)
                return conf_fail(l, kn, "keys: the key on this line repeats the one on line %d",
                                 c->keys[j].line);
        c->nkeys++;
    }
    return 0;
}

static int load_budgets(struct loader *l, const yaml_node_t *seq)
{
    struct conf *c = l->c;

    if (seq->type != YAML_SEQUENCE_NODE)
        return conf_fail(l, seq,
                         "'budgets' must be a list of { scope, window, tokens and/or usd }");
    FOR_ITEMS(l, seq, item) {
        const yaml_node_t *b = conf_node(l, *item);
        const char *scope = NULL, *window = NULL;
        const yaml_node_t *scope_node = b;
        int64_t tokens = -1, nusd = -1;
        if (conf_want_mapping(l, b, "budgets") < 0)
            return -1;
        FOR_PAIRS(l, b, pair) {
            const yaml_node_t *kn = conf_node(l, pair->key), *v = conf_node(l, pair->value);
            const char *k = conf_scalar(kn);
            int r;
            if (k == NULL)
                return conf_fail(l, kn, "budgets: keys must be plain");
            if (strcmp(k, "scope") == 0) {
                r = conf_want_scalar(l, v, k, &scope);
                scope_node = v;
            } else if (strcmp(k, "window") == 0)
                r = conf_want_scalar(l, v, k, &window);
            else if (strcmp(k, "tokens") == 0)
                r = want_tokens(l, v, k, &tokens);
            else if (strcmp(k, "usd") == 0)
                r = want_usd(l, v, k, &nusd);
            else
                return conf_fail(l, kn, "budgets: unknown key '%s' (scope, window, tokens, usd)",
                                 k);
            if (r < 0)
                return -1;
        }
        if (scope == NULL || window == NULL)
            return conf_fail(l, b, "a budget needs a 'scope' and a 'window'");
        int s = conf_find_scope(c, scope);
        if (s < 0)
            return conf_fail(l, scope_node,
                             "budgets: no scope '%s' (org, department:NAME, team:NAME, "
                             "agent:NAME, anonymous)",
                             scope);
        int w = conf_window_parse(window);
        if (w < 0)
            return conf_fail(l, b, "budgets: window is minute, hour, day, month or total, not '%s'",
                             window);
        if (tokens < 0 && nusd < 0)
            return conf_fail(l, b, "a budget needs 'tokens', 'usd' or both");
        struct conf_limit *lim = &c->scopes[s].limits[w];
        if (lim->tokens >= 0 || lim->nusd >= 0)
            return conf_fail(l, b, "budgets: %s has two budgets for the %s window", scope, window);
        lim->tokens = tokens;
        lim->nusd = nusd;
    }
    return 0;
}

int confid_load_key(struct loader *l, const char *k, const yaml_node_t *v)
{
    struct conf *c = l->c;

    if (strcmp(k, "org") == 0)
        l->org = v;
    else if (strcmp(k, "departments") == 0)
        l->departments = v;
    else if (strcmp(k, "keys") == 0)
        l->keys = v;
    else if (strcmp(k, "budgets") == 0)
        l->budgets = v;
    else if (strcmp(k, "policies") == 0)
        l->policies = v;
    else if (strcmp(k, "policy") == 0)
        l->policy = v;
    else if (strcmp(k, "anonymous") == 0)
        l->anonymous = v;
    else if (strcmp(k, "ledger") == 0)
        return confsvc_ledger(l, v);
    else if (strcmp(k, "admin") == 0)
        return confsvc_admin(l, v);
    else if (strcmp(k, "alerts") == 0)
        return confsvc_alerts(l, v);
    else if (strcmp(k, "timezone") == 0) {
        if (conf_want_string(l, v, k, &c->timezone) < 0)
            return -1;
        char err[400];
        if ((c->tz = conf_tz_load(c->timezone, err, sizeof(err))) == NULL)
            return conf_fail(l, v,
                             "timezone '%s' is not known (an IANA name such as UTC or "
                             "Europe/Berlin, from the system's tzdata): %s",
                             c->timezone, err);
    } else
        return 1;
    return 0;
}

/* The name of the i-th model under 'models' (conf.models is in their order), for errors
 * about it; root when it cannot be found. */
static const yaml_node_t *model_node(struct loader *l, const yaml_node_t *root, int i)
{
    FOR_PAIRS(l, root, pair) {
        const yaml_node_t *k = conf_node(l, pair->key), *v = conf_node(l, pair->value);
        const char *name = conf_scalar(k);
        if (name == NULL || strcmp(name, "models") != 0 || v->type != YAML_MAPPING_NODE)
            continue;
        if (i < v->data.mapping.pairs.top - v->data.mapping.pairs.start)
            return conf_node(l, v->data.mapping.pairs.start[i].key);
    }
    return root;
}

int confid_finish(struct loader *l, const yaml_node_t *root)
{
    struct conf *c = l->c;
    const yaml_node_t *any = l->departments ? l->departments
                           : l->keys        ? l->keys
                           : l->budgets     ? l->budgets
                           : l->anonymous;

    c->anonymous_scope = -1;
    if (l->org == NULL) {
        if (any != NULL)
            return conf_fail(l, any, "departments, keys, budgets and anonymous need an 'org'");
        return 0;
    }
    if (l->policies != NULL) {
        if (conf_want_mapping(l, l->policies, "policies") < 0)
            return -1;
        c->policies = calloc((size_t)(l->policies->data.mapping.pairs.top -
                                      l->policies->data.mapping.pairs.start) + 1,
                             sizeof(*c->policies));
        if (c->policies == NULL)
            return conf_fail(l, l->policies, "policies: out of memory");
        FOR_PAIRS(l, l->policies, pair) {
            const char *name = conf_scalar(conf_node(l, pair->key));
            if (name == NULL || find_policy(c, name) >= 0)
                return conf_fail(l, conf_node(l, pair->key),
                                 name ? "policy '%s' is declared twice" : "a policy needs a name%s",
                                 name ? name : "");
            if (load_policy(l, name, conf_node(l, pair->value), &c->policies[c->npolicies++]) < 0)
                return -1;
        }
    }
    const char *org = conf_scalar(l->org);
    if (org == NULL)
        return conf_fail(l, l->org, "'org' is the organization's name");
    if (add_scope(l, l->org, org, CONF_LEVEL_ORG, -1) < 0)
        return -1;
    if (l->policy != NULL && scope_setting(l, 0, "policy", l->policy) < 0)
        return -1;
    if (l->departments != NULL && load_children(l, l->departments, CONF_LEVEL_DEPARTMENT, 0) < 0)
        return -1;
    if (l->anonymous != NULL) {
        const yaml_node_t *allow = l->anonymous;
        if (l->anonymous->type == YAML_MAPPING_NODE) {
            allow = NULL;
            FOR_PAIRS(l, l->anonymous, pair) {
                const char *k = conf_scalar(conf_node(l, pair->key));
                if (k != NULL && strcmp(k, "allowed") == 0)
                    allow = conf_node(l, pair->value);
                else if (k == NULL || strcmp(k, "policy") != 0)
                    return conf_fail(l, conf_node(l, pair->key),
                                     "anonymous: unknown key '%s' (allowed, policy)", k ? k : "?");
            }
            if (allow == NULL)
                return conf_fail(l, l->anonymous, "anonymous: 'allowed' is required");
        }
        if (want_bool(l, allow, "anonymous", &c->anonymous) < 0)
            return -1;
        if (c->anonymous) {
            int a = add_scope(l, l->anonymous, "anonymous", CONF_LEVEL_AGENT, 0);
            if (a < 0)
                return -1;
            c->anonymous_scope = a;
            if (l->anonymous->type == YAML_MAPPING_NODE) {
                FOR_PAIRS(l, l->anonymous, pair) {
                    const char *k = conf_scalar(conf_node(l, pair->key));
                    if (strcmp(k, "policy") == 0 &&
                        scope_setting(l, a, k, conf_node(l, pair->value)) < 0)
                        return -1;
                }
            }
        }
    }
    if (l->keys != NULL && load_keys(l, l->keys) < 0)
        return -1;
    if (l->budgets != NULL && load_budgets(l, l->budgets) < 0)
        return -1;

    if (c->anonymous) {
        int limited = 0;
        for (int w = 0; w < CONF_WIN__COUNT; w++)
            limited |= c->scopes[c->anonymous_scope].limits[w].tokens >= 0 ||
                       c->scopes[c->anonymous_scope].limits[w].nusd >= 0;
        if (!limited)
            return conf_fail(l, l->anonymous,
                             "anonymous use needs a budget of its own (scope: anonymous)");
    }
    if (c->ledger_path == NULL)
        return conf_fail(l, l->org,
                         "an org needs a 'ledger' (path: state/ledger.db): spend must outlive a "
                         "restart");
    /* a dollar budget anywhere needs every model's price */
    int dollars = 0;
    for (int i = 0; i < c->nscopes; i++)
        for (int w = 0; w < CONF_WIN__COUNT; w++)
            dollars |= c->scopes[i].limits[w].nusd >= 0;
    for (int i = 0; i < c->npolicies; i++)
        dollars |= c->policies[i].task_max_nusd >= 0;
    for (int i = 0; dollars && i < c->nmodels; i++)
        if (!c->models[i].price.set)
            return conf_fail(l, model_node(l, root, i),
                             "model '%s%s' has no price, but a budget is in dollars (add price: "
                             "{ input: .., output: .. } in USD per million tokens)",
                             c->models[i].name, c->models[i].wildcard ? "*" : "");
    return 0;
}

void confid_free(struct conf *c)
{
    for (int i = 0; i < c->nscopes; i++)
        free(c->scopes[i].name);
    free(c->scopes);
    for (int i = 0; i < c->npolicies; i++)
        free(c->policies[i].name);
    free(c->policies);
    free(c->keys);
    free(c->timezone);
    conf_tz_free(c->tz);
    confsvc_free(c);
}
