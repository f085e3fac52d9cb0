/*
 * proxy: the request pipeline. See proxy.h.
 */
#include "gate/pipeline/proxy.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/util/arena.h"
#include "gate/http/conn.h"
#include "gate/http/decode.h"
#include "gate/http/headbuf.h"
#include "gate/util/jsonedit.h"
#include "gate/util/jsonmem.h"
#include "gate/api/outcap.h"
#include "gate/pipeline/req.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "gate/admin/status.h"
#include "gate/pipeline/spend.h"
#include "gate/upstream/poolset.h"
#include "gate/upstream/upstream.h"

/* what is read of a stream whose client is gone, at most (see proxy_client_gone) */
#define PROXY_DRAIN_MAX (4u * 1024 * 1024)
#define PROXY_DRAIN_MS 250

/* one event of a stream may not grow past this */
#define SSE_EVENT_MAX (8u * 1024 * 1024)

/* ---- local answers ------------------------------------------------------------------- */

static void respond_json(struct gate_req *req, int status, cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);

    cJSON_Delete(doc);
    if (s == NULL) {
        req_fail(req, APIERR_INTERNAL, "out of memory");
        return;
    }
    req_respond(req, status, "application/json", NULL, s, strlen(s));
    cJSON_free(s);
}

static void answer_models(struct gate_req *req)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *data;

    cJSON_AddStringToObject(doc, "object", "list");
    data = cJSON_AddArrayToObject(doc, "data");
    for (int i = 0; i < req->conf->nmodels; i++) {
        const struct conf_model *m = &req->conf->models[i];
        if (m->wildcard)
            continue;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "id", m->name);
        cJSON_AddStringToObject(item, "object", "model");
        cJSON_AddNumberToObject(item, "created", 0);
        cJSON_AddStringToObject(item, "owned_by", m->provider->name);
        cJSON_AddItemToArray(data, item);
    }
    respond_json(req, 200, doc);
}

static void answer_local(struct gate_req *req)
{
    switch (req->ep) {
    case EP_HEALTHZ:
        req_respond(req, 200, "application/json", NULL, "{\"status\":\"ok\"}", 15);
        return;
    case EP_STATUS: {
        char *s = gate_status_json(req->w->srv);
        if (s == NULL) {
            req_fail(req, APIERR_INTERNAL, "out of memory");
            return;
        }
        req_respond(req, 200, "application/json", NULL, s, strlen(s));
        cJSON_free(s);
        return;
    }
    case EP_MODELS:
        answer_models(req);
        return;
    default:
        req_fail(req, APIERR_NOT_FOUND, "unknown endpoint");
    }
}

/* ---- the upstream request ------------------------------------------------------------ */

static int hop_by_hop(const struct http_header *h, const struct conf_provider *prov,
                      int gate_keys)
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
    if (req->query != NULL) {
        headbuf_add(&hd, "?", 1);
        headbuf_str(&hd, req->query);
    }
    headbuf_str(&hd, " HTTP/1.1\r\nhost: ");
    headbuf_str(&hd, prov->host_header);
    headbuf_add(&hd, "\r\n", 2);
    for (int i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
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
    req->up_request = b;
    return 0;
}

static int only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return 0;
    return 1;
}

/* C0 controls (NUL aside: jsonedit_has_nul) and DEL, which no model name holds */
#define CONTROL_CHARS                                                                              \
    "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"                                \
    "\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"

/* Reads the body, picks the provider and rewrites what the gate must. Returns -1 after
 * answering the client itself. Runs with cJSON allocating from the request's arena. */
static int prepare_body(struct gate_req *req)
{
    const struct endpoint_info *info = endpoint_info(req->ep);
    size_t len = evbuffer_get_length(req->body);
    const char *raw = (const char *)evbuffer_pullup(req->body, -1);
    char msg[512];
    const char *end = NULL;

    if (len == 0) {
        req_fail(req, APIERR_BAD_REQUEST, "request body is empty; a JSON object is expected");
        return -1;
    }
    req->json = cJSON_ParseWithLengthOpts(raw, len, &end, 0);
    if (req->json == NULL && arena_failure(req->arena) != ARENA_OK) {
        req_fail_memory(req); /* valid or not, it needs more memory than it may have */
        return -1;
    }
    if (req->json == NULL || !only_space(end, raw + len)) {
        const char *at = req->json ? end : cJSON_GetErrorPtr();
        size_t off = at && at >= raw && at <= raw + len ? (size_t)(at - raw) : 0;
        snprintf(msg, sizeof(msg), "request body is not valid JSON (at byte %zu)", off);
        req_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
        return -1;
    }
    if (!cJSON_IsObject(req->json)) {
        req_fail(req, APIERR_BAD_REQUEST, "request body must be a JSON object");
        return -1;
    }
    if (jsonedit_has_nul(raw, len)) {
        req_fail(req, APIERR_BAD_REQUEST, "request body has a string with a NUL (U+0000)");
        return -1;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req->json, "model");
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
        req_fail(req, APIERR_BAD_REQUEST, "request body has no 'model' string");
        return -1;
    }
    if (model->valuestring[strcspn(model->valuestring, CONTROL_CHARS)] != '\0') {
        req_fail(req, APIERR_BAD_REQUEST, "'model' has a control character");
        return -1;
    }
    req->model = model->valuestring;
    const char *dup;
    int has_dup = jsonedit_duplicate_key(req->json, &dup);
    if (has_dup < 0)
        goto oom;
    if (has_dup > 0) {
        snprintf(msg, sizeof(msg), "request body has the key '%.100s' twice in one object", dup);
        req_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
        return -1;
    }
    const struct conf_model *m = conf_find_model(req->conf, req->model);
    if (m == NULL) {
        snprintf(msg, sizeof(msg), "model '%.200s' is not configured on this gate", req->model);
        req_fail(req, APIERR_MODEL_NOT_FOUND, arena_strndup(req->arena, msg, strlen(msg)));
        return -1;
    }
    req->prov = m->provider;
    if (req->prov->format != req->upstream_api->format) {
        snprintf(msg, sizeof(msg),
                 "model '%.200s' is served in the %s format, but %s speaks the %s format",
                 req->model, req->prov->format == CONF_FMT_ANTHROPIC ? "Anthropic" : "OpenAI",
                 info->path,
                 req->client_api->format == CONF_FMT_ANTHROPIC ? "Anthropic" : "OpenAI");
        req_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
        return -1;
    }
    req->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req->json, "stream"));
    tcount_input(req, m, raw, len);

    /* the members the gate rewrites: each op's value is JSON text, in the request's arena */
    struct jsonedit_op ops[OUTCAP_MEMBERS + 2];
    int nops = 0;
    int rc = spend_reserve(req, m, &ops[nops]);
    if (rc < 0)
        return -1;
    nops += rc;
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
    for (int i = 0; i < nops; i++)
        if (ops[i].value == NULL)
            goto oom;

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
        if (rc < 0)
            goto oom;
    } else if (build_upstream_request(req, raw, len) < 0) {
        goto oom;
    }
    return 0;
oom:
    req_fail_memory(req);
    return -1;
}

void proxy_handle(struct gate_req *req)
{
    const struct endpoint_info *info;
    char msg[160];

    req_assign_id(req);
    req->ep = endpoint_lookup(req->path, req->path_len);
    req->client_api = req->upstream_api = api_dialect_for(req->ep);
    info = endpoint_info(req->ep);
    req_guess_format(req);
    if (req->ep == EP_NONE) {
        snprintf(msg, sizeof(msg), "unknown path %.100s", req->path);
        req_fail(req, APIERR_NOT_FOUND, arena_strndup(req->arena, msg, strlen(msg)));
        return;
    }
    if (strcmp(llhttp_method_name((llhttp_method_t)req->method), info->method) != 0) {
        snprintf(msg, sizeof(msg), "%s takes %s only", info->path, info->method);
        req->error = arena_strndup(req->arena, msg, strlen(msg));
        char body[400], allow[32];
        size_t n = api_dialect_errors(req->client_api, req->fmt)
                       ->error_body(APIERR_METHOD, req->error, body, sizeof(body));
        snprintf(allow, sizeof(allow), "allow: %s\r\n", info->method);
        req_respond(req, 405, "application/json", allow, body, n);
        return;
    }
    /* every endpoint but /healthz needs a key when an org is configured: /status too */
    if (req->ep != EP_HEALTHZ && spend_authenticate(req) < 0)
        return;
    if (!info->proxied) {
        answer_local(req);
        return;
    }
    req_memory_bound(req);
    struct arena *prev = jsonmem_enter(req->arena);
    int rc = prepare_body(req);
    jsonmem_leave(prev); /* after a failure the arena is gone: nothing may allocate before this */
    if (rc < 0 || req_memory_unbound(req) < 0 || spend_forward(req) < 0)
        return;
    upstream_send(poolset_get(req->w->pools, req->conf, req->prov), req); /* sets req->forwarded */
}

/* ---- the response -------------------------------------------------------------------- */

static int response_hop_by_hop(const struct http_header *h)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
        "trailer",    "upgrade",    "content-length",   "x-request-id",
    };

    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strcmp(h->name, drop[i]) == 0)
            return 1;
    return 0;
}

/* Writes our status line and the provider's headers, with our framing. */
static void write_head(struct gate_req *req, int status, const struct http_header *h, int n,
                       long long content_length)
{
    struct evbuffer *out = conn_output(req->conn);
    size_t before = evbuffer_get_length(out);
    struct headbuf hd = {.out = out};

    headbuf_str(&hd, "HTTP/1.1 ");
    headbuf_num(&hd, (unsigned)status);
    headbuf_add(&hd, " ", 1);
    headbuf_str(&hd, http_reason(status));
    headbuf_add(&hd, "\r\n", 2);
    for (int i = 0; i < n; i++) {
        if (response_hop_by_hop(&h[i])) {
            if (strcmp(h[i].name, "x-request-id") == 0)
                headbuf_field(&hd, "x-upstream-request-id", 21, h[i].value, h[i].value_len);
            continue;
        }
        if (req->dec != NULL && strcmp(h[i].name, "content-encoding") == 0)
            continue; /* the client gets what the gate decoded */
        headbuf_field(&hd, h[i].name, h[i].name_len, h[i].value, h[i].value_len);
    }
    headbuf_field(&hd, "x-request-id", 12, req->id, strlen(req->id));
    {
        char extra[256];
        headbuf_add(&hd, extra, spend_headers(req, extra, sizeof(extra)));
    }
    if (content_length >= 0) {
        headbuf_str(&hd, "content-length: ");
        headbuf_num(&hd, (unsigned long long)content_length);
        headbuf_add(&hd, "\r\n", 2);
    } else if (req->http10) {
        conn_set_close(req->conn); /* HTTP/1.0 has no chunked coding: the close ends the body */
    } else {
        headbuf_str(&hd, "transfer-encoding: chunked\r\n");
    }
    headbuf_str(&hd, conn_keep_alive(req->conn) ? "connection: keep-alive\r\n\r\n"
                                             : "connection: close\r\n\r\n");
    headbuf_flush(&hd);
    req->bytes_out += evbuffer_get_length(out) - before;
    req->status = status;
    req->head_sent = 1;
    req->t_first_byte = gate_now_us();
}

/* Relaying stops: why is kept for the caller, which ends the request (the request may not
 * be ended from inside the parsers that call back). Returns -1. */
static int stop(struct gate_req *req, enum apierr kind, const char *why)
{
    if (req->stop_why == NULL) {
        req->stop_kind = kind;
        req->stop_why = why;
    }
    return -1;
}

/*
 * The provider's Content-Encoding: gzip and deflate are undone as the body arrives (the gate
 * asked for identity, but usage must be read whatever comes); a coding the gate cannot undo
 * makes the answer unreadable. Returns 0, or -1 after stop().
 */
static int take_encoding(struct gate_req *req, const struct http_header *h)
{
    enum decode_kind kind = decode_kind_of(h->value, h->value_len);
    char msg[160];

    if (kind == DECODE_IDENTITY)
        return 0;
    if (kind != DECODE_UNKNOWN && (req->dec = decode_new(kind)) != NULL)
        return 0;
    req->out_unreadable = 1;
    if (kind != DECODE_UNKNOWN)
        return stop(req, APIERR_INTERNAL, "out of memory");
    snprintf(msg, sizeof(msg),
             "the provider answered with content-encoding '%.40s', which the gate cannot read",
             h->value);
    return stop(req, APIERR_BAD_GATEWAY, arena_strndup(req->arena, msg, strlen(msg)));
}

int proxy_upstream_head(struct gate_req *req, int status, const struct http_header *headers, int n)
{
    req->up_status = status;
    for (int i = 0; i < n; i++) {
        if (strcmp(headers[i].name, "content-type") == 0 &&
            strncasecmp(headers[i].value, "text/event-stream", 17) == 0)
            req->up_sse = 1;
        if (strcmp(headers[i].name, "content-encoding") == 0 && take_encoding(req, &headers[i]) < 0) {
            req_fail(req, req->stop_kind, req->stop_why);
            return -1;
        }
    }
    if (req->up_sse) {
        if (req->conn == NULL && !req->draining) {
            req_finish(req); /* the client left: a stream is not read on for nobody */
            return -1;
        }
        if (req->conn != NULL) {
            write_head(req, status, headers, n, -1);
            conn_flush(req->conn); /* the client sees the stream start at once */
        }
        sse_init(&req->sse, SSE_EVENT_MAX);
    } else {
        /* kept for write_head once the whole body is in */
        req->up_headers = headers;
        req->n_up_headers = n;
        req->up_body = evbuffer_new();
    }
    return 0;
}

static void write_chunk(struct gate_req *req, const char *data, size_t len)
{
    struct evbuffer *out = conn_output(req->conn);
    char size[24];
    int n;

    if (req->http10) {
        evbuffer_add(out, data, len);
        req->bytes_out += len;
        return;
    }
    n = snprintf(size, sizeof(size), "%zx\r\n", len);

    evbuffer_add(out, size, (size_t)n);
    evbuffer_add(out, data, len);
    evbuffer_add(out, "\r\n", 2);
    req->bytes_out += (size_t)n + len + 2;
}

/*
 * The provider streams past the output it was told to stop at (and past the margin for
 * counts that differ): a runaway or misbehaving upstream. The event that crossed is not
 * relayed; the stream ends with an error event, the upstream connection is closed (which
 * stops generation) and the request settles at the gate's count. Returns 1 to stop the feed.
 */
static int runaway(struct gate_req *req)
{
    char msg[240];

    snprintf(msg, sizeof(msg),
             "the provider streamed more output than this request was allowed (the gate cuts a "
             "stream at %lld tokens); the stream was ended and the output relayed so far was "
             "charged",
             (long long)req->out_limit);
    stop(req, APIERR_OUTPUT_LIMIT, arena_strndup(req->arena, msg, strlen(msg)));
    return 1;
}

/* One whole event of the stream: read usage from it, then relay it (or drop the usage chunk
 * the gate asked for on the client's behalf). */
static int on_event(void *arg, const struct sse_event *ev)
{
    struct gate_req *req = arg;
    int drop = 0;
    char name[64];

    if (ev->data_len > 0 && ev->data[0] == '{') {
        size_t nl = ev->name_len < sizeof(name) - 1 ? ev->name_len : sizeof(name) - 1;
        memcpy(name, ev->name, nl);
        name[nl] = '\0';
        /* parsed with malloc, not in the arena: a long stream has many events; bounded as
         * the request's body is (an event past it is relayed unread) */
        struct jsonmem_saved prev;
        jsonmem_enter_capped(req->conf->max_request_memory, &prev);
        cJSON *data = cJSON_ParseWithLength(ev->data, ev->data_len);
        if (data != NULL) {
            drop = req->upstream_api->usage_event(name, data, &req->usage) && req->usage_injected;
            tcount_event(req, name, data);
            cJSON_Delete(data);
        }
        jsonmem_leave_capped(&prev);
        if (req->out_limit >= 0 && tcount_output_above(req, (uint64_t)req->out_limit))
            return runaway(req);
    }
    if (!drop && req->conn != NULL)
        write_chunk(req, ev->raw, ev->raw_len);
    return 0;
}

/* Takes answer bytes as the provider meant them (decoded): gathers a whole answer, or relays
 * a stream's events. Returns 0, or -1 after stop(). */
static int take_body(void *arg, const char *data, size_t len)
{
    struct gate_req *req = arg;

    if (!req->up_sse) {
        if (evbuffer_get_length(req->up_body) + len > req->conf->max_response_bytes) {
            /* the provider made (and bills) an answer the gate cannot read whole */
            req->out_unreadable = 1;
            return stop(req, APIERR_BAD_GATEWAY,
                        "the provider's response is larger than the limit");
        }
        evbuffer_add(req->up_body, data, len);
        arena_charge(req->arena, len, 0); /* counted in the memory in flight */
        return 0;
    }
    int rc = sse_feed(&req->sse, data, len, on_event, req);
    if (rc < 0)
        return stop(req, APIERR_BAD_GATEWAY,
                    "the provider sent a stream event larger than the limit");
    return rc == 0 ? 0 : -1;
}

int proxy_upstream_body(struct gate_req *req, const char *data, size_t len)
{
    int rc;

    /* a client gone from a non-stream request leaves the answer to be read for its usage; a
     * stream's is read for a moment after it left (see proxy_client_gone), then no more */
    if (req->conn == NULL && req->up_sse) {
        req->drained += len;
        if (!req->draining || req->drained > PROXY_DRAIN_MAX) {
            req_finish(req);
            return -1;
        }
    }
    if (req->dec != NULL) {
        size_t cap = req->up_sse ? SSE_EVENT_MAX : req->conf->max_response_bytes;
        rc = decode_feed(req->dec, data, len, cap, take_body, req);
        if (rc < 0 && req->stop_why == NULL) {
            char msg[200];
            snprintf(msg, sizeof(msg), "the provider's compressed response cannot be read: %s",
                     decode_error(req->dec));
            req->out_unreadable = 1;
            stop(req, APIERR_BAD_GATEWAY, arena_strndup(req->arena, msg, strlen(msg)));
        }
    } else {
        rc = take_body(req, data, len);
    }
    if (rc < 0) {
        req->upstream_failed = req->stop_kind != APIERR_OUTPUT_LIMIT;
        req_fail(req, req->stop_kind, req->stop_why);
        return -1;
    }
    if (req->conn == NULL)
        return 0;
    if (req->up_sse)
        conn_flush(req->conn);
    if (req->up_sse && evbuffer_get_length(conn_output(req->conn)) > CONN_OUT_HIGH &&
        req->uc != NULL) {
        req->upstream_paused = 1;
        upstream_pause(req->uc);
    }
    return 0;
}

/* What proxy_upstream_done holds back until the ledger has the request's record. */
enum {
    TAIL_NONE,
    TAIL_BODY,       /* a whole response: head and body */
    TAIL_STREAM_END, /* the last chunk of a stream */
};

static void write_tail(struct gate_req *req)
{
    if (req->tail == TAIL_BODY) {
        size_t len = evbuffer_get_length(req->up_body);
        write_head(req, req->up_status, req->up_headers, req->n_up_headers, (long long)len);
        evbuffer_add_buffer(conn_output(req->conn), req->up_body);
        req->bytes_out += len;
    } else if (req->tail == TAIL_STREAM_END && !req->http10) {
        evbuffer_add(conn_output(req->conn), "0\r\n\r\n", 5);
        req->bytes_out += 5;
    }
    req->tail = TAIL_NONE;
}

/* A whole answer has arrived: its usage and the gate's count of it. An answer that does not
 * parse is counted as raw text and charged no less than the reservation. */
static void read_answer(struct gate_req *req)
{
    size_t len = evbuffer_get_length(req->up_body);
    const char *body = (const char *)evbuffer_pullup(req->up_body, -1);

    if (!(req->up_status >= 200 && req->up_status < 300) || len == 0)
        return;
    struct arena *prev = jsonmem_enter(req->arena);
    /* bounded as the request's body is (but served already: read even when the gate is
     * busy); an answer past the limit is not read, so charged as unreadable */
    arena_limit(req->arena, req->conf->max_request_memory, 0);
    cJSON *doc = cJSON_ParseWithLength(body, len);
    arena_limit(req->arena, 0, 0);
    if (doc != NULL) {
        req->upstream_api->usage_body(doc, &req->usage);
        tcount_body(req, doc);
    } else {
        req->out_unreadable = 1;
        tcount_text(req, body, len);
        if (req->error == NULL)
            req->error = "the provider's answer is not valid JSON: charged no less than the "
                         "reservation";
    }
    jsonmem_leave(prev);
}

void proxy_upstream_done(struct gate_req *req)
{
    if (req->dec != NULL && !decode_done(req->dec))
        req->out_unreadable = 1;
    if (req->conn == NULL) {
        if (!req->up_sse)
            read_answer(req);
        req_finish(req);
        return;
    }
    if (req->up_sse) {
        size_t left;
        const char *rest = sse_pending(&req->sse, &left);
        if (left > 0)
            write_chunk(req, rest, left); /* a last event without its blank line */
        req->tail = TAIL_STREAM_END;
    } else {
        read_answer(req);
        req->tail = TAIL_BODY;
    }
    if (req->up_sse)
        conn_flush(req->conn); /* all but the end goes out while the ledger commits */
    if (spend_settle(req, 1) == 1)
        return; /* proxy_settled goes on once the record is on disk */
    write_tail(req);
    req_finish(req);
}

void proxy_settled(struct gate_req *req)
{
    if (req->conn != NULL && !req->finish_asked)
        write_tail(req);
    req_finish(req);
}

void proxy_upstream_failed(struct gate_req *req, enum apierr kind, const char *message)
{
    req->upstream_failed = 1;
    req->error = arena_strndup(req->arena, message, strlen(message));
    req_fail(req, kind, req->error);
}

void proxy_client_drained(struct gate_req *req)
{
    if (req->upstream_paused && req->uc != NULL) {
        req->upstream_paused = 0;
        upstream_resume(req->uc);
    }
}

/* The moment a stream is read for after its client left is over. */
static void drain_over(evutil_socket_t fd, short what, void *arg)
{
    req_finish(arg);
}

void proxy_client_gone(struct gate_req *req)
{
    struct gate_worker *w = req->w;

    req->conn = NULL;
    if (req->error == NULL)
        req->error = "the client closed the connection";
    if (req->uc == NULL || upstream_waiting(req->uc) || req->state != REQ_UPSTREAM ||
        req->settle_state != 0 || w->stopped) {
        req_finish(req);
        return;
    }
    /* A whole answer is being made and will be billed: read it to the end (within the upstream
     * timeouts and max_response_bytes) for its usage. A stream is read on for PROXY_DRAIN_MS
     * (or PROXY_DRAIN_MAX bytes, or its end), counted and not relayed, for what the provider
     * made before it sees the close; then the connection closes, which stops generation. */
    if (req->up_sse || req->stream) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = PROXY_DRAIN_MS * 1000};
        req->drain_ev = evtimer_new(w->base, drain_over, req);
        if (req->drain_ev == NULL || evtimer_add(req->drain_ev, &tv) < 0) {
            req_finish(req);
            return;
        }
        req->draining = 1;
        if (req->upstream_paused) {
            req->upstream_paused = 0;
            upstream_resume(req->uc);
        }
    }
    req->detached = 1;
    w->detached++;
}
