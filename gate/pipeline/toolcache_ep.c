/*
 * toolcache_ep: the /v1/tool-cache endpoint. See toolcache_ep.h.
 *
 * An entry's value is the time it was stored (8 bytes, little-endian milliseconds on the
 * store's clock) then the result's JSON text: the age a hit reports.
 */
#include "gate/pipeline/toolcache_ep.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <llhttp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "cache/cstats.h"
#include "cache/store.h"
#include "cache/toolcache.h"
#include "cache/toolstats.h"
#include "gate/core/worker.h"
#include "gate/pipeline/cachescope.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"
#include "gate/util/jsonedit.h"
#include "gate/util/jsonfast.h"
#include "gate/util/jsonmem.h"

#define PREFIX "/v1/tool-cache/"
#define TOOL_NAME_MAX 128
#define KEY_MAX (64 * 1024) /* scope, tool and canonical arguments: past it 413 */
#define STAMP 8             /* the stored-at time before the result */

enum op { OP_PUT, OP_GET, OP_LOOKUP, OP_DELETE };
static const char *const op_names[] = {"put", "get", "lookup", "delete"};

/* An answer of status with an OpenAI-shaped error body (type, code, message) and headers
 * (CRLF-terminated, or NULL). */
static enum stage_rc answer_error(struct gate_req *req, int status, const char *type,
                                  const char *code, const char *message, const char *headers)
{
    cJSON *err;
    cJSON *doc = apierr_openai_doc(type, code, message, &err);
    char *s = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;

    if (req->error == NULL)
        req->error = message;
    if (s == NULL) {
        cJSON_Delete(doc);
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    }
    req_respond(req, status, "application/json", headers, s, strlen(s));
    cJSON_free(s);
    cJSON_Delete(doc);
    return STAGE_ANSWERED;
}

static enum stage_rc bad_request(struct gate_req *req, const char *message)
{
    return answer_error(req, 400, "invalid_request_error", "invalid_request", message, NULL);
}

/* The tool's index in cache.tools.ttl, or -1. */
static int allowed(const struct conf_cache *cc, const char *tool)
{
    for (int i = 0; i < cc->ntools; i++)
        if (strcmp(cc->tools[i], tool) == 0)
            return i;
    return -1;
}

/* "a, b, c" of the allowlist, cut to fit buf. */
static const char *allowlist(const struct conf_cache *cc, char *buf, size_t cap)
{
    size_t n = 0;

    buf[0] = '\0';
    if (cc->ntools == 0)
        return "none: it is empty";
    for (int i = 0; i < cc->ntools && n + 8 < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", cc->tools[i]);
        if (w < 0 || (size_t)w >= cap - n) {
            snprintf(buf + (n < cap - 5 ? n : cap - 5), 5, " ...");
            break;
        }
        n += (size_t)w;
    }
    return buf;
}

/* The operation from the method and the path's tail; the tool's name into req->cache.tool.
 * Returns the op, or -1 after answering. */
static int parse_op(struct gate_req *req, enum stage_rc *rc)
{
    const char *rest = req->msg.path + strlen(PREFIX);
    size_t n = req->msg.path_len - strlen(PREFIX);
    const char *method = llhttp_method_name((llhttp_method_t)req->msg.method);
    int lookup = 0;

    if (n >= 7 && memcmp(rest + n - 7, "/lookup", 7) == 0) {
        lookup = 1;
        n -= 7;
    } else if (n > 0 && rest[n - 1] == '/') {
        n--; /* a trailing slash names the same tool */
    }
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:";
    size_t good = 0;
    while (good < n && strchr(ok, rest[good]) != NULL && rest[good] != '\0')
        good++;
    if (n == 0 || n > TOOL_NAME_MAX || good != n) {
        *rc = bad_request(req, "the path names no tool: /v1/tool-cache/{tool}, where a tool's "
                               "name is 1 to 128 of A-Z a-z 0-9 _ - . :");
        return -1;
    }
    req->cache.tool = arena_strndup(req->arena, rest, n);
    if (req->cache.tool == NULL) {
        *rc = stage_fail(req, APIERR_INTERNAL, "out of memory");
        return -1;
    }
    if (lookup && strcmp(method, "POST") == 0)
        return OP_LOOKUP;
    if (!lookup && strcmp(method, "PUT") == 0)
        return OP_PUT;
    if (!lookup && strcmp(method, "GET") == 0)
        return OP_GET;
    if (!lookup && strcmp(method, "DELETE") == 0)
        return OP_DELETE;
    const char *msg = lookup ? "/v1/tool-cache/{tool}/lookup takes POST only"
                             : "/v1/tool-cache/{tool} takes GET, PUT and DELETE (POST to "
                               "/v1/tool-cache/{tool}/lookup)";
    *rc = answer_error(req, 405, "invalid_request_error", "method_not_allowed", msg,
                       lookup ? "allow: POST\r\n" : "allow: GET, PUT, DELETE\r\n");
    return -1;
}

/* The request's JSON body as an object (in the arena), or NULL after answering. */
static cJSON *parse_body(struct gate_req *req, enum stage_rc *rc)
{
    size_t len = req->msg.body != NULL ? evbuffer_get_length(req->msg.body) : 0;
    const char *raw = len ? (const char *)evbuffer_pullup(req->msg.body, -1) : NULL;
    const char *end = NULL;
    cJSON *doc;

    if (len == 0) {
        *rc = bad_request(req, "request body is empty; a JSON object with 'arguments' is expected");
        return NULL;
    }
    if (raw == NULL) {
        *rc = stage_fail(req, APIERR_INTERNAL, "out of memory");
        return NULL;
    }
    doc = jsonfast_parse(raw, len, &end);
    if (doc == NULL && arena_failure(req->arena) != ARENA_OK) {
        req_fail_memory(req);
        *rc = STAGE_ANSWERED;
        return NULL;
    }
    if (doc != NULL)
        for (; end < raw + len && strchr(" \t\r\n", *end) != NULL && *end != '\0'; end++)
            ;
    if (doc == NULL || end != raw + len) {
        const char *at = doc ? end : cJSON_GetErrorPtr();
        size_t off = at && at >= raw && at <= raw + len ? (size_t)(at - raw) : 0;
        char msg[120];
        snprintf(msg, sizeof(msg), "request body is not valid JSON (at byte %zu)", off);
        *rc = bad_request(req, arena_strndup(req->arena, msg, strlen(msg)));
        return NULL;
    }
    if (!cJSON_IsObject(doc)) {
        *rc = bad_request(req, "request body must be a JSON object");
        return NULL;
    }
    if (jsonedit_has_nul(raw, len)) {
        *rc = bad_request(req, "request body has a string with a NUL (U+0000)");
        return NULL;
    }
    return doc;
}

/* The arguments of a GET or DELETE from the query (?arguments=<URL-encoded JSON>), in the
 * arena; NULL after answering. */
static cJSON *query_arguments(struct gate_req *req, enum stage_rc *rc)
{
    struct evkeyvalq q;
    const char *v = NULL;
    cJSON *args = NULL;

    /* evhttp_parse_query_str sets q up (and clears it when it fails) */
    if (req->msg.query == NULL || evhttp_parse_query_str(req->msg.query, &q) != 0 ||
        (v = evhttp_find_header(&q, "arguments")) == NULL) {
        if (req->msg.query != NULL && v == NULL)
            evhttp_clear_headers(&q);
        *rc = bad_request(req, "no arguments: add ?arguments=<the tool's arguments as "
                               "URL-encoded JSON>");
        return NULL;
    }
    args = cJSON_Parse(v);
    if (args == NULL || strlen(v) == 0)
        *rc = bad_request(req, "'arguments' in the query is not valid JSON (URL-encode the "
                               "JSON object)");
    else if (!cJSON_IsObject(args))
        *rc = bad_request(req, "'arguments' must be a JSON object");
    evhttp_clear_headers(&q);
    return args != NULL && cJSON_IsObject(args) ? args : NULL;
}

/* body's "arguments": an object; NULL after answering. */
static cJSON *body_arguments(struct gate_req *req, cJSON *body, enum stage_rc *rc)
{
    cJSON *args = cJSON_GetObjectItemCaseSensitive(body, "arguments");

    if (args == NULL) {
        *rc = bad_request(req, "request body has no 'arguments': the tool's arguments, a JSON "
                               "object ({} for none)");
        return NULL;
    }
    if (!cJSON_IsObject(args)) {
        *rc = bad_request(req, "'arguments' must be a JSON object");
        return NULL;
    }
    return args;
}

static int64_t now_ms(void)
{
    return gate_now_us() / 1000;
}

static enum stage_rc respond_doc(struct gate_req *req, int status, cJSON *doc, const char *headers)
{
    char *s = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;

    if (s == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    req_respond(req, status, "application/json", headers, s, strlen(s));
    return STAGE_ANSWERED;
}

/* PUT: the result stored for the tool's ttl, or less when the body asks. */
static enum stage_rc put(struct gate_req *req, const struct canon_buf *key, cJSON *body,
                         int64_t tool_ttl)
{
    const struct conf_cache *cc = &req->conf->cache;
    cJSON *result = cJSON_GetObjectItemCaseSensitive(body, "result");
    cJSON *ttl = cJSON_GetObjectItemCaseSensitive(body, "ttl");
    int64_t ttl_ms = tool_ttl;
    char msg[300];

    if (result == NULL)
        return bad_request(req, "request body has no 'result': the tool's result, any JSON value");
    if (tool_ttl <= 0)
        return answer_error(req, 403, "permission_error", "tool_not_cacheable",
                            "cache.tools.ttl gives this tool a TTL of 0: nothing is stored", NULL);
    if (ttl != NULL) {
        ttl_ms = cJSON_IsString(ttl) ? conf_parse_duration_ms(ttl->valuestring)
                 : cJSON_IsNumber(ttl) && ttl->valuedouble >= 0 && ttl->valuedouble < 1e9
                     ? (int64_t)(ttl->valuedouble * 1000)
                     : -1;
        if (ttl_ms <= 0)
            return bad_request(req, "'ttl' must be a duration (\"90s\", \"10m\", \"1h\") or a "
                                    "number of seconds, above 0");
        if (ttl_ms > tool_ttl)
            ttl_ms = tool_ttl; /* at most the tool's, as the config says */
    }
    char *text = cJSON_PrintUnformatted(result);
    size_t n = text ? strlen(text) : 0;
    if (text == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    if (n > cc->tools_max_entry_bytes) {
        snprintf(msg, sizeof(msg),
                 "the result is %zu bytes: cache.tools.max_entry_bytes allows %zu", n,
                 cc->tools_max_entry_bytes);
        return answer_error(req, 413, "invalid_request_error", "result_too_large",
                            arena_strndup(req->arena, msg, strlen(msg)), NULL);
    }
    char *val = arena_alloc(req->arena, STAMP + n);
    if (val == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    uint64_t t = (uint64_t)now_ms();
    for (int i = 0; i < STAMP; i++)
        val[i] = (char)(t >> (8 * i));
    memcpy(val + STAMP, text, n);
    int rc = toolcache_put(req->w->srv->tools, key, val, STAMP + n, ttl_ms, (int64_t)t);
    if (rc == 1) {
        snprintf(msg, sizeof(msg),
                 "the entry (result %zu bytes, its key and arguments %zu) is larger than "
                 "cache.tools.max_entry_bytes allows (%zu)",
                 n, key->len, cc->tools_max_entry_bytes);
        return answer_error(req, 413, "invalid_request_error", "result_too_large",
                            arena_strndup(req->arena, msg, strlen(msg)), NULL);
    }
    if (rc < 0)
        return answer_error(req, 503, "server_error", "unavailable",
                            "the tool cache is out of memory", "retry-after: 1\r\n");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "stored", 1);
    cJSON_AddStringToObject(doc, "tool", req->cache.tool);
    cJSON_AddNumberToObject(doc, "ttl_s", (double)(ttl_ms / 1000));
    return respond_doc(req, 200, doc, NULL);
}

/* Counts a lookup: by scope level (cstats) and by tool and agent (toolstats, server ""). */
static void count_lookup(struct gate_req *req, enum conf_level lv, enum cache_outcome o)
{
    struct gate_server *srv = req->w->srv;
    const char *agent =
        srv->book != NULL && req->agent >= 0 ? budget_scope_name(srv->book, req->agent) : "-";

    cache_stats_add(srv->cstats, CACHE_K_TOOL, (int)lv, o);
    toolstats_count(srv->toolstats, "", req->cache.tool, agent, o);
}

/* GET and lookup: the result, or a miss. */
static enum stage_rc get(struct gate_req *req, const struct canon_buf *key, enum conf_level lv)
{
    struct gate_server *srv = req->w->srv;
    int64_t now = now_ms();
    struct cache_val *v = toolcache_get(srv->tools, key, now);
    size_t len = 0;
    const char *data = v != NULL ? cache_val_data(v, &len) : NULL;

    if (data == NULL || len < STAMP) {
        cache_val_release(v);
        req->cache.tool_state = REQ_CACHE_MISS;
        count_lookup(req, lv, CACHE_MISS);
        return answer_error(req, 404, "not_found_error", "cache_miss",
                            "no cached result for this tool and these arguments",
                            "x-tokengate-cache: miss\r\n");
    }
    uint64_t t = 0;
    for (int i = 0; i < STAMP; i++)
        t |= (uint64_t)(unsigned char)data[i] << (8 * i);
    int64_t age = now - (int64_t)t;
    req->cache.tool_state = REQ_CACHE_HIT;
    count_lookup(req, lv, CACHE_HIT);
    /* {"result":<text>,"age_s":N}: the stored text as it is, without a parse */
    char head[] = "{\"result\":";
    char tail[48];
    int tl =
        snprintf(tail, sizeof(tail), ",\"age_s\":%lld}", (long long)(age > 0 ? age / 1000 : 0));
    size_t n = sizeof(head) - 1 + (len - STAMP) + (size_t)tl;
    char *body = arena_alloc(req->arena, n);
    if (body == NULL) {
        cache_val_release(v);
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    }
    memcpy(body, head, sizeof(head) - 1);
    memcpy(body + sizeof(head) - 1, data + STAMP, len - STAMP);
    memcpy(body + sizeof(head) - 1 + (len - STAMP), tail, (size_t)tl);
    cache_val_release(v);
    req_respond(req, 200, "application/json", "x-tokengate-cache: hit\r\n", body, n);
    return STAGE_ANSWERED;
}

static enum stage_rc run(struct gate_req *req)
{
    struct gate_server *srv = req->w->srv;
    const struct conf_cache *cc = &req->conf->cache;
    enum stage_rc rc = STAGE_ANSWERED;
    enum conf_level lv;
    char list[512];
    int op = parse_op(req, &rc);

    if (op < 0)
        return rc;
    req->cache.tool_op = op_names[op];
    if (srv->tools == NULL)
        return answer_error(req, 503, "server_error", "tool_cache_off", "the tool cache is off",
                            NULL);
    int i = allowed(cc, req->cache.tool);
    if (i < 0) {
        char msg[700];
        snprintf(msg, sizeof(msg),
                 "tool '%s' is not on the tool cache's allowlist (cache.tools.ttl: %s)",
                 req->cache.tool, allowlist(cc, list, sizeof(list)));
        return answer_error(req, 403, "permission_error", "tool_not_cacheable",
                            arena_strndup(req->arena, msg, strlen(msg)), NULL);
    }
    char label[320];
    const char *scope = cache_scope_label(
        req, budget_cache_policy(req->w->srv->book, req->agent).scope, &lv, label, sizeof(label));
    if (scope != NULL)
        scope = arena_strndup(req->arena, scope, strlen(scope));
    if (scope == NULL) {
        req->decision = REQ_DECISION_UNAUTHENTICATED;
        return answer_error(req, 401, "authentication_error", "invalid_api_key",
                            "the tool cache needs a key: send 'Authorization: Bearer ...' or "
                            "'x-api-key'; results are kept apart per key",
                            NULL);
    }
    req->cache.scope = scope;
    req->cache.level = (int)lv;

    cJSON *body = NULL, *args;
    if (op == OP_PUT || op == OP_LOOKUP ||
        (op == OP_DELETE && req->msg.body && evbuffer_get_length(req->msg.body) > 0)) {
        if ((body = parse_body(req, &rc)) == NULL)
            return rc;
        args = body_arguments(req, body, &rc);
    } else {
        args = query_arguments(req, &rc);
    }
    if (args == NULL)
        return rc;

    struct canon_buf key = {.max = KEY_MAX};
    if (toolcache_key(&key, scope, "", req->cache.tool, args) < 0) {
        canon_buf_free(&key);
        return answer_error(req, 413, "invalid_request_error", "arguments_too_large",
                            "the arguments are too large or too deeply nested for a key "
                            "(64 KiB, depth 64)",
                            NULL);
    }
    switch (op) {
    case OP_PUT:
        rc = put(req, &key, body, cc->tools_ttl_ms[i]);
        break;
    case OP_GET:
    case OP_LOOKUP:
        rc = get(req, &key, lv);
        break;
    default: {
        int had = cache_store_delete(srv->tools, key.data, key.len);
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddBoolToObject(doc, "deleted", had);
        rc = respond_doc(req, 200, doc, NULL);
        break;
    }
    }
    canon_buf_free(&key);
    return rc;
}

enum stage_rc toolcache_ep_run(struct gate_req *req)
{
    /* the body's parse is bounded as any request's (limits.max_request_memory) */
    req_memory_bound(req);
    struct arena *prev = jsonmem_enter(req->arena);
    enum stage_rc rc = run(req);
    jsonmem_leave(prev);
    arena_limit(req->arena, 0, 0);
    return rc;
}

void toolcache_ep_log(const struct gate_req *req, cJSON *rec)
{
    if (req->cache.tool == NULL)
        return;
    cJSON *o = cJSON_AddObjectToObject(rec, "tool_cache");
    cJSON_AddStringToObject(o, "tool", req->cache.tool);
    if (req->cache.tool_op != NULL)
        cJSON_AddStringToObject(o, "op", req->cache.tool_op);
    if (req->cache.tool_state == REQ_CACHE_HIT || req->cache.tool_state == REQ_CACHE_MISS)
        cJSON_AddStringToObject(o, "cache",
                                req->cache.tool_state == REQ_CACHE_HIT ? "hit" : "miss");
    if (req->cache.scope != NULL)
        cJSON_AddStringToObject(o, "scope", conf_level_name((enum conf_level)req->cache.level));
}
