/*
 * stage_prepare: the body rewritten and the upstream request built. See stages.h.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/core/worker.h"
#include "gate/http/headbuf.h"
#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/jsonedit.h"
#include "gate/util/jsonmem.h"

static int hop_by_hop(const struct http_header *h, const struct conf_provider *prov, int gate_keys)
{
    static const char *const drop[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "expect",
        "x-request-id",
        "proxy-authorization",
    };

    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strcmp(h->name, drop[i]) == 0)
            return 1;
    if (strncmp(h->name, "x-tokengate-", 12) == 0)
        return 1; /* the gate's own (x-tokengate-task): not the provider's business */
    /* with a key of its own, or keys of its own for agents, the gate never forwards the
     * agent's credentials */
    if ((prov->api_key != NULL || gate_keys) && api_is_key_header(h->name))
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
        if (hop_by_hop(h, prov, req->w->srv->book != NULL) || named_by_connection(req, h))
            continue;
        headbuf_field(&hd, h->name, h->name_len, h->value, h->value_len);
    }
    if (prov->api_key != NULL) {
        headbuf_str(&hd, req->upstream_api->upstream_key);
        headbuf_str(&hd, prov->api_key);
        headbuf_add(&hd, "\r\n", 2);
    }
    if (req->upstream_api->version_header != NULL &&
        req_header(req, req->upstream_api->version_header) == NULL) {
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

/* The members the gate rewrites, into req->edits after admit's: each op's value is JSON
 * text, in the request's arena. Returns -1 when memory ran out. */
static int prepare(struct gate_req *req)
{
    size_t len = evbuffer_get_length(req->msg.body);
    const char *raw = (const char *)evbuffer_pullup(req->msg.body, -1);
    const struct conf_model *m = req->cm;
    struct jsonedit_op *ops = req->edits;
    int nops = req->nedits, rc;

    if (m->upstream_model != NULL) {
        cJSON *name = cJSON_CreateString(m->upstream_model);
        ops[nops].key = "model";
        ops[nops++].value = cJSON_PrintUnformatted(name); /* in the arena */
        req->model = arena_strndup(req->arena, req->model, strlen(req->model));
        cJSON_ReplaceItemInObjectCaseSensitive(req->json, "model", name);
        req->upstream_model = name->valuestring;
    }
    if (req->stream && req->upstream_api->stream_usage(req->json, &ops[nops]) > 0) {
        nops++; /* its value is in the arena */
        req->usage_injected = 1;
    }
    req->nedits = nops;
    for (int i = 0; i < nops; i++)
        if (ops[i].value == NULL)
            return -1;

    if (nops > 0) {
        size_t out_len;
        char *out = jsonedit_depth(req->json) <= JSONEDIT_MAX_DEPTH
                        ? jsonedit_apply(raw, len, ops, nops, &out_len)
                        : NULL;
        if (out != NULL) {
            rc = build_upstream_request(req, out, out_len);
            free(out);
        } else {
            /* a key with escapes, or nesting too deep to splice in linear time: print the
             * edited document (numbers become doubles) */
            const char *doc = cJSON_PrintUnformatted(req->json); /* in the arena */
            rc = doc ? build_upstream_request(req, doc, strlen(doc)) : -1;
        }
        return rc;
    }
    return build_upstream_request(req, raw, len);
}

enum stage_rc stage_prepare(struct gate_req *req)
{
    struct arena *prev = jsonmem_enter(req->arena);
    int rc = prepare(req);

    jsonmem_leave(prev);
    if (rc < 0) {
        req_fail_memory(req);
        return STAGE_ANSWERED;
    }
    return req_memory_unbound(req) < 0 ? STAGE_ANSWERED : STAGE_NEXT;
}
