/*
 * confcache: the cache section of the config, and a policy's cache key.
 *
 *   cache:
 *     responses: { enabled: true, max_bytes: 256MiB, max_entry_bytes: 4MiB, max_ttl: 24h }
 *     prefix_counts: { enabled: true, max_entries: 1000000 }
 *     tools: { max_bytes: 64MiB, max_entry_bytes: 1MiB, ttl: { get_weather: 10m } }
 *   policies:
 *     default:
 *       cache:
 *         responses: auto          # auto | on | off
 *         scope: agent             # agent | team | department | org
 *         ttl: 10m
 *         prompt: { anthropic: true, ttl: 5m, openai_key: true, scope: agent }
 *
 * Every key is checked at load, refused with FILE:LINE: reason; a key left out keeps its
 * default (conf.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

#define CONFCACHE_MAX_TOOLS 256
#define CONFCACHE_MAX_ENTRIES 100000000L

static const struct conf_policy_cache policy_defaults = {
    .responses = CONF_CACHE_AUTO,
    .scope = CONF_LEVEL_AGENT,
    .ttl_ms = 10 * 60 * 1000,
    .prompt_anthropic = 0,
    .prompt_ttl_1h = 0,
    .prompt_openai_key = 0,
    .prompt_scope = CONF_LEVEL_AGENT,
};

const struct conf_policy_cache *conf_policy_cache_defaults(void)
{
    return &policy_defaults;
}

void confcache_defaults(struct conf *c)
{
    c->cache.responses = 1;
    c->cache.max_bytes = (size_t)256 * 1024 * 1024;
    c->cache.max_entry_bytes = (size_t)4 * 1024 * 1024;
    c->cache.max_ttl_ms = (int64_t)24 * 3600 * 1000;
    c->cache.prefix_counts = 1;
    c->cache.prefix_max_entries = 1000000;
    c->cache.tools_max_bytes = (size_t)64 * 1024 * 1024;
    c->cache.tools_max_entry_bytes = (size_t)1024 * 1024;
}

void confcache_free(struct conf *c)
{
    for (int i = 0; i < c->cache.ntools; i++)
        free(c->cache.tools[i]);
    free(c->cache.tools);
    free(c->cache.tools_ttl_ms);
    c->cache.tools = NULL;
    c->cache.tools_ttl_ms = NULL;
    c->cache.ntools = 0;
}

/* The sub-mapping v of cache.SUB, each of its keys handed to one(l, key node, key, value). */
typedef int sub_key_fn(struct loader *l, const yaml_node_t *kn, const char *k,
                       const yaml_node_t *v);

static int each_key(struct loader *l, const char *what, const yaml_node_t *v, sub_key_fn *one)
{
    if (conf_want_mapping(l, v, what) < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);

        if (k == NULL)
            return conf_fail(l, kn, "%s: keys must be plain names", what);
        if (one(l, kn, k, pv) < 0)
            return -1;
    }
    return 0;
}

static int responses_key(struct loader *l, const yaml_node_t *kn, const char *k,
                         const yaml_node_t *v)
{
    struct conf_cache *cc = &l->c->cache;

    if (strcmp(k, "enabled") == 0)
        return confroute_bool(l, v, "cache: responses.enabled", &cc->responses);
    if (strcmp(k, "max_bytes") == 0)
        return conf_want_size(l, v, "max_bytes", &cc->max_bytes);
    if (strcmp(k, "max_entry_bytes") == 0)
        return conf_want_size(l, v, "max_entry_bytes", &cc->max_entry_bytes);
    if (strcmp(k, "max_ttl") == 0)
        return conf_want_duration(l, v, "max_ttl", &cc->max_ttl_ms);
    return conf_fail(l, kn,
                     "cache: responses has no '%s' (enabled, max_bytes, max_entry_bytes, "
                     "max_ttl)",
                     k);
}

static int prefix_key(struct loader *l, const yaml_node_t *kn, const char *k,
                      const yaml_node_t *v)
{
    struct conf_cache *cc = &l->c->cache;
    long n;

    if (strcmp(k, "enabled") == 0)
        return confroute_bool(l, v, "cache: prefix_counts.enabled", &cc->prefix_counts);
    if (strcmp(k, "max_entries") == 0) {
        if (conf_want_int(l, v, "max_entries", 1, CONFCACHE_MAX_ENTRIES, &n) < 0)
            return -1;
        cc->prefix_max_entries = n;
        return 0;
    }
    return conf_fail(l, kn, "cache: prefix_counts has no '%s' (enabled, max_entries)", k);
}

/* cache.tools.ttl: tool -> TTL, the allowlist of /v1/tool-cache */
static int tools_ttl(struct loader *l, const yaml_node_t *v)
{
    struct conf_cache *cc = &l->c->cache;
    size_t n;

    if (conf_want_mapping(l, v, "ttl") < 0)
        return -1;
    n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n > CONFCACHE_MAX_TOOLS)
        return conf_fail(l, v, "cache: tools.ttl lists %zu tools; at most %d", n,
                         CONFCACHE_MAX_TOOLS);
    confcache_free(l->c);
    if (n == 0)
        return 0;
    cc->tools = calloc(n, sizeof(*cc->tools));
    cc->tools_ttl_ms = calloc(n, sizeof(*cc->tools_ttl_ms));
    if (cc->tools == NULL || cc->tools_ttl_ms == NULL)
        return conf_fail(l, v, "cache: tools.ttl: out of memory");
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        char what[160];

        if (k == NULL || *k == '\0')
            return conf_fail(l, kn, "cache: tools.ttl: keys must be tool names");
        snprintf(what, sizeof(what), "tools.ttl.%s", k);
        if (conf_want_duration(l, pv, what, &cc->tools_ttl_ms[cc->ntools]) < 0)
            return -1;
        if ((cc->tools[cc->ntools] = strdup(k)) == NULL)
            return conf_fail(l, kn, "cache: tools.ttl: out of memory");
        cc->ntools++;
    }
    return 0;
}

static int tools_key(struct loader *l, const yaml_node_t *kn, const char *k, const yaml_node_t *v)
{
    struct conf_cache *cc = &l->c->cache;

    if (strcmp(k, "max_bytes") == 0)
        return conf_want_size(l, v, "max_bytes", &cc->tools_max_bytes);
    if (strcmp(k, "max_entry_bytes") == 0)
        return conf_want_size(l, v, "max_entry_bytes", &cc->tools_max_entry_bytes);
    if (strcmp(k, "ttl") == 0)
        return tools_ttl(l, v);
    return conf_fail(l, kn, "cache: tools has no '%s' (max_bytes, max_entry_bytes, ttl)", k);
}

static int cache_key(struct loader *l, const yaml_node_t *kn, const char *k, const yaml_node_t *v)
{
    if (strcmp(k, "responses") == 0)
        return each_key(l, "responses", v, responses_key);
    if (strcmp(k, "prefix_counts") == 0)
        return each_key(l, "prefix_counts", v, prefix_key);
    if (strcmp(k, "tools") == 0)
        return each_key(l, "tools", v, tools_key);
    return conf_fail(l, kn, "cache has no '%s' (responses, prefix_counts, tools)", k);
}

int confcache_load(struct loader *l, const yaml_node_t *v)
{
    struct conf_cache *cc = &l->c->cache;

    if (each_key(l, "cache", v, cache_key) < 0)
        return -1;
    if (cc->max_entry_bytes > cc->max_bytes)
        return conf_fail(l, v,
                         "cache: responses.max_entry_bytes (%zu bytes) is larger than max_bytes "
                         "(%zu bytes)",
                         cc->max_entry_bytes, cc->max_bytes);
    if (cc->tools_max_entry_bytes > cc->tools_max_bytes)
        return conf_fail(l, v,
                         "cache: tools.max_entry_bytes (%zu bytes) is larger than max_bytes "
                         "(%zu bytes)",
                         cc->tools_max_entry_bytes, cc->tools_max_bytes);
    return 0;
}

/* ---- a policy's cache key ----------------------------------------------------------------- */

static int want_level(struct loader *l, const yaml_node_t *v, const char *policy,
                      const char *what, enum conf_level *out)
{
    const char *s = conf_scalar(v);
    int lv = s ? conf_level_parse(s) : -1;

    if (lv < 0)
        return conf_fail(l, v, "policy '%s': %s is agent, team, department or org, not '%s'",
                         policy, what, s ? s : "a list");
    *out = (enum conf_level)lv;
    return 0;
}

static int want_pbool(struct loader *l, const yaml_node_t *v, const char *policy,
                      const char *what, int *out)
{
    char full[200];

    snprintf(full, sizeof(full), "policy '%s': %s", policy, what);
    return confroute_bool(l, v, full, out);
}

static int policy_prompt(struct loader *l, const char *name, const yaml_node_t *v,
                         struct conf_policy_cache *pc)
{
    if (conf_want_mapping(l, v, "prompt") < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        int r;

        if (k == NULL)
            return conf_fail(l, kn, "policy '%s': keys must be plain", name);
        if (strcmp(k, "anthropic") == 0)
            r = want_pbool(l, pv, name, "cache.prompt.anthropic", &pc->prompt_anthropic);
        else if (strcmp(k, "openai_key") == 0)
            r = want_pbool(l, pv, name, "cache.prompt.openai_key", &pc->prompt_openai_key);
        else if (strcmp(k, "scope") == 0)
            r = want_level(l, pv, name, "cache.prompt.scope", &pc->prompt_scope);
        else if (strcmp(k, "ttl") == 0) {
            const char *s = conf_scalar(pv);

            if (s != NULL && strcmp(s, "5m") == 0)
                pc->prompt_ttl_1h = 0;
            else if (s != NULL && strcmp(s, "1h") == 0)
                pc->prompt_ttl_1h = 1;
            else
                return conf_fail(l, pv, "policy '%s': cache.prompt.ttl is 5m or 1h, not '%s'",
                                 name, s ? s : "a list");
            r = 0;
        } else
            return conf_fail(l, kn,
                             "policy '%s': cache.prompt has no '%s' (anthropic, ttl, "
                             "openai_key, scope)",
                             name, k);
        if (r < 0)
            return -1;
    }
    return 0;
}

int confcache_policy(struct loader *l, const char *name, const yaml_node_t *v,
                     struct conf_policy_cache *pc)
{
    if (conf_want_mapping(l, v, "cache") < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        int r = 0;

        if (k == NULL)
            return conf_fail(l, kn, "policy '%s': keys must be plain", name);
        if (strcmp(k, "responses") == 0) {
            const char *s = conf_scalar(pv);

            if (s != NULL && strcmp(s, "auto") == 0)
                pc->responses = CONF_CACHE_AUTO;
            else if (s != NULL && strcmp(s, "on") == 0)
                pc->responses = CONF_CACHE_ON;
            else if (s != NULL && strcmp(s, "off") == 0)
                pc->responses = CONF_CACHE_OFF;
            else
                return conf_fail(l, pv,
                                 "policy '%s': cache.responses is auto, on or off, not '%s'",
                                 name, s ? s : "a list");
        } else if (strcmp(k, "scope") == 0) {
            r = want_level(l, pv, name, "cache.scope", &pc->scope);
        } else if (strcmp(k, "ttl") == 0) {
            r = conf_want_duration(l, pv, "ttl", &pc->ttl_ms);
        } else if (strcmp(k, "prompt") == 0) {
            r = policy_prompt(l, name, pv, pc);
        } else {
            return conf_fail(l, kn,
                             "policy '%s': cache has no '%s' (responses, scope, ttl, prompt)",
                             name, k);
        }
        if (r < 0)
            return -1;
    }
    return 0;
}
