/*
 * stage_cache: the response cache's lookup. See stages.h.
 *
 * Which requests: chat completions and Anthropic messages (stream or not), one choice. The
 * policy in force at the caller (budget_cache_policy) says auto, on or off; under auto a
 * request is looked up when its body says temperature 0 or its header says
 * `x-tokengate-cache: on`. `x-tokengate-cache: off` bypasses (no lookup, no store);
 * `x-tokengate-cache: no-store` and `Cache-Control: no-store` look up but never store;
 * `Cache-Control: no-cache` does not look up but may store; any other value of the header is
 * a 400 (nothing is forwarded).
 *
 * The key, compared byte for byte by the store: "resp\0" scope label "\0" client API "\0"
 * model as asked "\0" target model entry "\0" the canonical text of the client's body (canon.h)
 * without stream and stream_options. The body is taken before admit, which may lower the
 * output cap in it. The scope label names the scope entries are shared within (the policy's
 * cache.scope: "agent:NAME", "team:NAME", "department:NAME", "org"); an open gate shares them
 * per client credential ("key:" and 16 hex digits of its SHA-256).
 *
 * A hit answers from the cache: no reservation (admit and prepare are skipped), the chain is
 * the writer alone, the cache source replays the entry (source_cache.c), and settle charges
 * nothing. A miss that may store gets the fill filter (filter_cachefill.c) before the writer.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cache/canon.h"
#include "cache/cstats.h"
#include "cache/entry.h"
#include "cache/store.h"
#include "gate/core/worker.h"
#include "gate/pipeline/source.h"
#include "gate/pipeline/spend.h"
#include "gate/pipeline/cachescope.h"
#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"

static const char *const key_skip[] = {"stream", "stream_options", NULL};

int stage_cache_key(struct gate_req *req, const char *target, char **key, size_t *klen)
{
    struct canon_buf b = {.max = req->conf->cache.max_entry_bytes};
    const char *parts[] = {"resp", req->cache.scope, req->client_api->name, req->model, target};
    int rc = -1;

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (canon_raw(&b, parts[i], strlen(parts[i]) + 1) < 0) /* with its NUL */
            goto out;
    if (canon_append(&b, req->json, key_skip) < 0)
        goto out;
    if ((*key = arena_alloc_raw(req->arena, b.len)) == NULL)
        goto out;
    memcpy(*key, b.data, b.len);
    *klen = b.len;
    rc = 0;
out:
    canon_buf_free(&b);
    return rc;
}

int stage_cache_rekey(struct gate_req *req, const char *target, char **key, size_t *klen)
{
    const char *k = req->cache.key, *end = k + req->cache.klen, *t = k, *rest;
    size_t tl = strlen(target), head;

    for (int i = 0; i < 4; i++) { /* "resp", scope, API, model: each ends with its NUL */
        const char *z = memchr(t, '\0', (size_t)(end - t));
        if (z == NULL)
            return -1;
        t = z + 1;
    }
    if ((rest = memchr(t, '\0', (size_t)(end - t))) == NULL)
        return -1;
    head = (size_t)(t - k);
    if ((size_t)(rest - t) == tl && memcmp(t, target, tl) == 0) {
        *key = req->cache.key; /* the same target */
        *klen = req->cache.klen;
        return 0;
    }
    *klen = head + tl + (size_t)(end - rest);
    if ((*key = arena_alloc_raw(req->arena, *klen)) == NULL)
        return -1;
    memcpy(*key, k, head);
    memcpy(*key + head, target, tl);
    memcpy(*key + head + tl, rest, (size_t)(end - rest));
    return 0;
}

/* The directive d in a Cache-Control header (a comma-separated list), case-insensitive. */
static int cache_control_has(const struct gate_req *req, const char *d)
{
    const struct http_header *h = req_header(req, "cache-control");
    size_t dl = strlen(d);

    if (h == NULL)
        return 0;
    for (const char *p = h->value; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != '=' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - p) == dl && strncasecmp(p, d, dl) == 0)
            return 1;
        while (*e && *e != ',')
            e++;
        p = e;
    }
    return 0;
}

static enum stage_rc bypass(struct gate_req *req, const char *why)
{
    req->cache.state = REQ_CACHE_BYPASS;
    req->cache.why = why;
    cache_stats_add(req->w->srv->cstats, CACHE_K_RESPONSE, req->cache.level, CACHE_BYPASS);
    return STAGE_NEXT;
}

/* What a hit saves: the original's usage at the target's price today. */
static void hit_saving(struct gate_req *req, const struct entry_meta *m)
{
    int64_t uncached = m->input - m->cached - m->cache_write;

    req->cache.saved_tokens = m->tokens > 0 ? m->tokens : m->input + m->output;
    req->cache.saved_nusd =
        req->cm != NULL && req->cm->price.set
            ? budget_cost(&req->cm->price, uncached > 0 ? uncached : 0, m->cached,
                          m->cache_write, 0, m->output) /* writes at the 5-minute price */
            : m->nusd;
}

/* Answers req from entry v (a reference it takes). Returns 0, or -1 when v is not an entry
 * of the client's API (released: the request goes on as a miss). */
static int hit(struct gate_req *req, struct cache_val *v)
{
    struct gate_server *srv = req->w->srv;
    struct entry_view view;
    size_t len;
    const void *data = cache_val_data(v, &len);
    int dispatch = pipeline_stage_index(req->pl, "dispatch");

    if (dispatch < 0 || entry_parse(data, len, &view) < 0 ||
        view.api != req->client_api->format) {
        cache_val_release(v);
        return -1;
    }
    req->cache.state = REQ_CACHE_HIT;
    req->cache.hit = v; /* released when the request is freed */
    req->cache.store = 0;
    hit_saving(req, &view.meta);
    /* answered: nothing is reserved, nothing is forwarded, nothing is charged */
    req->decision = REQ_DECISION_ADMITTED;
    cache_stats_add(srv->cstats, CACHE_K_RESPONSE, req->cache.level, CACHE_HIT);
    cache_stats_saved(srv->cstats, CACHE_K_RESPONSE, req->cache.saved_tokens,
                      req->cache.saved_nusd);
    req->phase = REQ_WAITING; /* dispatch resumes it, admit and prepare skipped */
    pipeline_post_at(req, dispatch);
    return 0;
}

enum stage_rc stage_cache(struct gate_req *req)
{
    struct gate_server *srv = req->w->srv;
    const struct http_header *h;
    struct conf_policy_cache pc;
    int no_store = 0, no_lookup = 0, opted_in = 0;
    const cJSON *n, *t;

    /* run again after a fallback: the lookup is made once, with the first target */
    if (req->cache.state != REQ_CACHE_NONE)
        return STAGE_NEXT;
    if ((req->ep != EP_CHAT && req->ep != EP_MESSAGES) || req->client_api == NULL ||
        req->json == NULL || req->cm == NULL)
        return STAGE_NEXT;

    if ((h = req_header(req, "x-tokengate-cache")) != NULL) {
        if (strcasecmp(h->value, "on") == 0)
            opted_in = 1;
        else if (strcasecmp(h->value, "no-store") == 0)
            no_store = 1;
        else if (strcasecmp(h->value, "off") != 0) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "x-tokengate-cache must be on, off or no-store, not '%.60s'", h->value);
            req->decision = REQ_DECISION_INVALID;
            return stage_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
        }
    }
    pc = budget_cache_policy(srv->book, req->agent);
    req->cache.level = pc.scope;
    if (srv->book == NULL || req->agent < 0)
        req->cache.level = CONF_LEVEL_AGENT; /* an open gate: per client key */
    if (h != NULL && strcasecmp(h->value, "off") == 0)
        return bypass(req, "x-tokengate-cache: off");
    if (srv->responses == NULL || !req->conf->cache.responses)
        return bypass(req, "cache.responses.enabled is false");
    if (pc.responses == CONF_CACHE_OFF)
        return bypass(req, "the policy's cache.responses is off");
    n = cJSON_GetObjectItemCaseSensitive(req->json, "n");
    if (cJSON_IsNumber(n) && n->valuedouble != 1)
        return bypass(req, "n is not 1");
    if (pc.responses == CONF_CACHE_AUTO && !opted_in) {
        t = cJSON_GetObjectItemCaseSensitive(req->json, "temperature");
        if (!cJSON_IsNumber(t) || t->valuedouble != 0)
            return bypass(req, "temperature is not 0");
    }
    no_store |= cache_control_has(req, "no-store");
    no_lookup = cache_control_has(req, "no-cache");

    {
        char label[320];
        enum conf_level lv;
        const char *sc = cache_scope_label(req, (enum conf_level)req->cache.level, &lv, label,
                                           sizeof(label));
        if (sc == NULL)
            return bypass(req, "no credential or scope to keep its entries apart by");
        req->cache.level = (int)lv;
        if ((req->cache.scope = arena_strndup(req->arena, sc, strlen(sc))) == NULL)
            return bypass(req, "out of memory");
    }
    if (stage_cache_key(req, req->cm->name, &req->cache.key, &req->cache.klen) < 0)
        return bypass(req, "the request is too large or too deep to cache");
    req->cache.ttl_ms = pc.ttl_ms < req->conf->cache.max_ttl_ms ? pc.ttl_ms
                                                                 : req->conf->cache.max_ttl_ms;
    if (!no_lookup) {
        struct cache_val *v = cache_store_get(srv->responses, req->cache.key, req->cache.klen,
                                              gate_now_us() / 1000);
        if (v != NULL && hit(req, v) == 0)
            return STAGE_WAIT;
    }
    req->cache.state = REQ_CACHE_MISS;
    req->cache.why = no_store ? "no-store" : no_lookup ? "no-cache" : NULL;
    req->cache.store = !no_store;
    cache_stats_add(srv->cstats, CACHE_K_RESPONSE, req->cache.level, CACHE_MISS);
    return STAGE_NEXT;
}
