/*
 * stage_prepare: the body rewritten and the upstream request built. See stages.h.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/core/worker.h"
#include "gate/pipeline/fallback.h"
#include "gate/pipeline/promptprep.h"
#include "gate/http/headbuf.h"
#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/jsonedit.h"
#include "gate/util/jsonmem.h"

static int hop_by_hop(const struct http_header *h, const struct conf_provider *prov, int gate_keys,
                      int translated)
{
    if (hdr_not_forwarded(h->name))
        return 1;
    /* with a key of its own, or keys of its own for agents, the gate never forwards the
     * agent's credentials */
    if ((prov->api_key != NULL || gate_keys) && api_is_key_header(h->name))
        return 1;
    /* to a provider of the other API family: never the client's key (it is the other
     * provider's), nor the other family's own headers */
    if (translated && (api_is_key_header(h->name) || strncmp(h->name, "anthropic-", 10) == 0 ||
                       strncmp(h->name, "openai-", 7) == 0))
        return 1;
    return 0;
}

/* Whether the client's Connection header names h (it is then hop-by-hop too). */
static int named_by_connection(const struct gate_req *req, const struct http_header *h)
{
    const struct http_header *c = req_header(req, "connection");
    const char *s;

    if (c == NULL)
        return 0;
    s = c->value;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\t')
            s++;
        const char *e = s;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - s) == h->name_len && strncasecmp(s, h->name, h->name_len) == 0)
            return 1;
        s = e;
    }
    return 0;
}

static int build_upstream_request(struct gate_req *req, const char *body, size_t len)
{
    const struct conf_provider *prov = req->prov;
    struct evbuffer *b = evbuffer_new();
    /* the endpoint's own path after "/v1": a trailing slash the client added is not sent on */
    const char *rest = req->upstream_api->upstream_path;

    if (b == NULL)
        return -1;
    struct headbuf hd = {.out = b};
    headbuf_str(&hd, "POST ");
    headbuf_str(&hd, prov->path_prefix);
    headbuf_str(&hd, rest);
    if (req->msg.query != NULL) {
        headbuf_add(&hd, "?", 1);
        headbuf_str(&hd, req->msg.query);
    }
    headbuf_str(&hd, " HTTP/1.1\r\nhost: ");
    headbuf_str(&hd, prov->host_header);
    headbuf_add(&hd, "\r\n", 2);
    for (int i = 0; i < req->msg.nheaders; i++) {
        const struct http_header *h = &req->msg.headers[i];
        if (hop_by_hop(h, prov, req->w->srv->book != NULL, req->rt.xlate != XLATE_NONE) ||
            named_by_connection(req, h))
            continue;
        headbuf_field(&hd, h->name, h->name_len, h->value, h->value_len);
    }
    if (prov->api_key != NULL) {
        headbuf_str(&hd, req->upstream_api->upstream_key);
        headbuf_str(&hd, prov->api_key);
        headbuf_add(&hd, "\r\n", 2);
    }
    if (req->upstream_api->version_header != NULL &&
        (req->rt.xlate != XLATE_NONE || req_header(req, req->upstream_api->version_header) == NULL)) {
        headbuf_str(&hd, req->upstream_api->version_header);
        headbuf_str(&hd, ": ");
        headbuf_str(&hd, req->upstream_api->version_default);
        headbuf_add(&hd, "\r\n", 2);
    }
    headbuf_str(&hd, "x-request-id: ");
    headbuf_str(&hd, req->id);
    headbuf_str(&hd, "\r\naccept-encoding: identity\r\ncontent-length: ");
    headbuf_num(&hd, len);
    headbuf_str(&hd, "\r\nconnection: keep-alive\r\n\r\n");
    headbuf_flush(&hd);
    evbuffer_add(b, body, len);
    req->ex.request = b;
    return 0;
}

/* The request translated for the target (stage_count made it), with the output cap admit
 * decided: the client's cap members, as admit left them, bound the translated body's. */
static int prepare_translated(struct gate_req *req)
{
    cJSON *doc = req->rt.xdoc;
    struct outcap oc, uoc;
    struct jsonedit_op ops[OUTCAP_MEMBERS];
    char msg[160];

    if (doc == NULL)
        return -1;
    if (outcap_read(req->client_api, req->json, &oc, msg, sizeof(msg)) == 0 && oc.value >= 0 &&
        outcap_read(req->upstream_api, doc, &uoc, msg, sizeof(msg)) == 0 &&
        outcap_clamp(&uoc, doc, oc.value, 1, req->arena, ops) < 0)
        return -1;
    req->upstream_model = route_served_name(req);
    int changed;
    if (promptprep_apply(req, doc, &changed) < 0) /* prompt caching, on the body as sent */
        return -1;
    /* a stream to an OpenAI provider asks for usage; its usage-only chunk is the gate's */
    req->usage_injected = req->stream && req->upstream_api->format == CONF_FMT_OPENAI;
    const char *text = cJSON_PrintUnformatted(doc); /* in the arena */
    if (text == NULL)
        return -1;
    return build_upstream_request(req, text, strlen(text));
}

/* The members the gate rewrites, into req->edits after admit's: each op's value is JSON
 * text, in the request's arena. Returns -1 when memory ran out. */
static int prepare(struct gate_req *req)
{
    size_t len = evbuffer_get_length(req->msg.body);
    const char *raw = (const char *)evbuffer_pullup(req->msg.body, -1);
    const char *served = route_served_name(req);
    struct jsonedit_op *ops = req->edits;
    int nops = req->nedits, rc;
    const cJSON *now = cJSON_GetObjectItemCaseSensitive(req->json, "model");

    if (cJSON_IsString(now) && strcmp(now->valuestring, served) != 0) {
        cJSON *name = cJSON_CreateString(served);
        ops[nops].key = "model";
        ops[nops++].value = cJSON_PrintUnformatted(name); /* in the arena */
        if (req->model == now->valuestring)
            req->model = arena_strndup(req->arena, req->model, strlen(req->model));
        cJSON_ReplaceItemInObjectCaseSensitive(req->json, "model", name);
    }
    if (strcmp(served, req->model) != 0)
        req->upstream_model = arena_strndup(req->arena, served, strlen(served));
    if (req->stream && req->upstream_api->stream_usage(req->json, &ops[nops]) > 0) {
        nops++; /* its value is in the arena */
        req->usage_injected = 1;
    }
    /* prompt caching works on a copy (a fallback's next target starts from the client's body
     * again); the members it changed go out as edits */
    cJSON *sent = NULL;
    if (promptprep_wanted(req)) {
        int changed = 0;
        sent = cJSON_Duplicate(req->json, 1); /* in the arena */
        if (sent == NULL || promptprep_apply(req, sent, &changed) < 0)
            return -1;
        for (int i = 0; i < PROMPTPREP_MEMBERS; i++)
            if (changed & (1 << i)) {
                ops[nops].key = promptprep_members[i];
                ops[nops++].value = cJSON_PrintUnformatted(
                    cJSON_GetObjectItemCaseSensitive(sent, promptprep_members[i]));
            }
    } else {
        req->cache.breakpoints = req->cache.prompt_key = 0; /* an earlier attempt's, if any */
    }
    req->nedits = nops;
    for (int i = 0; i < nops; i++)
        if (ops[i].value == NULL)
            return -1;

    /* after a fallback req->json holds every edit of the attempts before (caps, the model):
     * it is sent whole, never the raw body with this attempt's edits alone */
    if (nops > 0 || req->rt.nattempts > 0) {
        size_t out_len;
        char *out = req->rt.nattempts == 0 && jsonedit_depth(req->json) <= JSONEDIT_MAX_DEPTH
                        ? jsonedit_apply(raw, len, ops, nops, &out_len)
                        : NULL;
        if (out != NULL) {
            rc = build_upstream_request(req, out, out_len);
            free(out);
        } else {
            /* a key with escapes, nesting too deep to splice in linear time, or a fallback:
             * print the edited document (numbers become doubles) */
            const char *doc = cJSON_PrintUnformatted(sent ? sent : req->json); /* arena */
            rc = doc ? build_upstream_request(req, doc, strlen(doc)) : -1;
        }
        return rc;
    }
    return build_upstream_request(req, raw, len);
}

enum stage_rc stage_prepare(struct gate_req *req)
{
    struct arena *prev = jsonmem_enter(req->arena);
    int rc = req->rt.xlate != XLATE_NONE ? prepare_translated(req) : prepare(req);

    jsonmem_leave(prev);
    if (rc < 0) {
        req_fail_memory(req);
        return STAGE_ANSWERED;
    }
    return req_memory_unbound(req) < 0 ? STAGE_ANSWERED : STAGE_NEXT;
}
