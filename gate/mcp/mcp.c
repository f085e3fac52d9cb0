/*
 * mcp: the MCP proxy's stage table and its stages. See mcp.h.
 *
 *   parse        /mcp/{server}, and the method: POST, GET or DELETE (405)
 *   authenticate the gate key, as for models (spend_authenticate): 401, no ledger row
 *   server       the server named in the path: 404; who calls (owner, scope, team)
 *   session      an Mcp-Session-Id must be one the server issued to this caller's key: 404
 *   body         POST: the JSON-RPC message or batch: 400 with error -32700 / -32600
 *   policy       a team's hidden tools refused; tools/call and tools/list from the cache
 *   prepare      the upstream request, with the server's credential and not the client's
 *   dispatch     the upstream source starts: the answer passes the MCP filter and the writer
 *   finish       the result stored, the held-back answer written, the request logged
 *
 * Nothing is reserved, charged or recorded in the ledger.
 */
#include "gate/mcp/mcp.h"

#include <event2/buffer.h>
#include <llhttp.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/canon.h"
#include "cache/cstats.h"
#include "cache/store.h"
#include "cache/toolcache.h"
#include "cache/toolstats.h"
#include "gate/core/worker.h"
#include "gate/http/headbuf.h"
#include "gate/mcp/mcp-int.h"
#include "gate/pipeline/cachescope.h"
#include "gate/pipeline/filter.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/source.h"
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"
#include "gate/util/jsonmem.h"

#define MCP_PREFIX_LEN 5

/* JSON-RPC error codes */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_INVALID_PARAMS -32602

static const char *arena_str(struct gate_req *req, const char *s)
{
    return arena_strndup(req->arena, s, strlen(s));
}

/* Whether the client takes JSON answers (else only an event stream). */
static int takes_json(const struct gate_req *req)
{
    const struct http_header *h = req_header(req, "accept");

    return h == NULL || strstr(h->value, "application/json") != NULL ||
           strstr(h->value, "*/*") != NULL || strstr(h->value, "text/event-stream") == NULL;
}

/* Answers one JSON-RPC message (the gate's own: an error, or a result from the cache) as JSON,
 * or as one event when the client takes only an event stream. Finishes the request. */
static void answer(struct gate_req *req, int status, const char *json, size_t n, const char *cache)
{
    char extra[64] = "";

    if (cache != NULL)
        snprintf(extra, sizeof(extra), "x-tokengate-cache: %s\r\n", cache);
    if (status == 200 && !takes_json(req)) {
        size_t cap = n + 32;
        char *ev = arena_alloc(req->arena, cap);
        if (ev != NULL) {
            int k = snprintf(ev, cap, "event: message\ndata: %.*s\n\n", (int)n, json);
            req_respond(req, 200, "text/event-stream", extra[0] ? extra : NULL, ev, (size_t)k);
            return;
        }
    }
    req_respond(req, status, "application/json", extra[0] ? extra : NULL, json, n);
}

/* Answers a JSON-RPC error for the message of id (NULL: null) with HTTP status. */
static enum stage_rc rpc_error(struct gate_req *req, int status, const cJSON *id, int code,
                               const char *message)
{
    struct arena *prev = jsonmem_enter(req->arena);
    cJSON *doc = cJSON_CreateObject(), *err;
    const char *text = NULL;

    cJSON_AddStringToObject(doc, "jsonrpc", "2.0");
    cJSON_AddItemToObject(doc, "id", id != NULL ? cJSON_Duplicate(id, 1) : cJSON_CreateNull());
    err = cJSON_AddObjectToObject(doc, "error");
    cJSON_AddNumberToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", message);
    if (jsonmem_failures_take() == 0)
        text = cJSON_PrintUnformatted(doc);
    jsonmem_leave(prev);
    if (req->error == NULL)
        req->error = message;
    if (text == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    answer(req, status, text, strlen(text), NULL);
    return STAGE_ANSWERED;
}

/* ---- parse ------------------------------------------------------------------------------ */

static enum stage_rc mcp_parse(struct gate_req *req)
{
    const char *method = llhttp_method_name((llhttp_method_t)req->msg.method);

    req_assign_id(req);
    req->ep = EP_MCP;
    req->client_api = req->upstream_api = NULL; /* no provider API: nothing is billed */
    req->fmt = CONF_FMT_OPENAI;
    req->mcp = arena_alloc(req->arena, sizeof(*req->mcp));
    if (req->mcp == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    req->log_more = mcp_log;
    if (strcmp(method, "POST") != 0 && strcmp(method, "GET") != 0 &&
        strcmp(method, "DELETE") != 0) {
        char body[400];
        req->error = "/mcp/{server} takes POST, GET and DELETE";
        size_t n = api_dialect_errors(NULL, req->fmt)
                       ->error_body(APIERR_METHOD, req->error, body, sizeof(body));
        req_respond(req, 405, "application/json", "allow: GET, POST, DELETE\r\n", body, n);
        return STAGE_ANSWERED;
    }
    return STAGE_NEXT;
}

/* ---- authenticate ------------------------------------------------------------------------ */

/* The gate key, as for models (spend_authenticate: 401). A refused key is answered and counted
 * as there, but leaves no ledger row: the MCP proxy bills nothing, and req_finish settles
 * nothing for a request past REQ_SETTLING. An open gate (no org) has no keys of its own, but
 * the MCP proxy still wants a credential: its hash is what sessions and cached results are
 * scoped by (the gate's credential for the server is never a client's). */
static enum stage_rc mcp_auth(struct gate_req *req)
{
    size_t len = 0;
    const char *c = spend_presented_key(req, &len);

    req->phase = REQ_SETTLING;
    if (spend_authenticate(req) < 0) {
        atomic_fetch_add_explicit(&req->w->stats.rejected_auth, 1, memory_order_relaxed);
        return STAGE_ANSWERED;
    }
    if (req->w->srv->book == NULL && (c == NULL || len == 0)) {
        atomic_fetch_add_explicit(&req->w->stats.rejected_auth, 1, memory_order_relaxed);
        req_fail(req, APIERR_UNAUTHORIZED,
                 "no API key: the MCP proxy needs a credential ('Authorization: Bearer ...' or "
                 "'x-api-key'), which scopes its sessions and cached results");
        return STAGE_ANSWERED;
    }
    req->phase = REQ_ADMITTING;
    return STAGE_NEXT;
}

/* ---- server: which, and who calls ---------------------------------------------------------- */

/* "key:" and the first 16 hex digits of the SHA-256 of the client's credential ("key:none"
 * without one): an open gate's scope, as the response cache's. */
static void key_label(const struct gate_req *req, char *out, size_t cap)
{
    size_t len = 0;
    const char *c = spend_presented_key(req, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (c == NULL || len == 0 || !EVP_Digest(c, len, md, &mdlen, EVP_sha256(), NULL)) {
        snprintf(out, cap, "key:none");
        return;
    }
    snprintf(out, cap, "key:%02x%02x%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4],
             md[5], md[6], md[7]);
}

static enum stage_rc mcp_server(struct gate_req *req)
{
    struct mcp_req *m = req->mcp;
    struct budget_book *book = req->w->srv->book;
    const char *name = req->msg.path + MCP_PREFIX_LEN;
    size_t len = req->msg.path_len - MCP_PREFIX_LEN;
    char msg[200], label[40], scope[600];

    if (len > 0 && name[len - 1] == '/')
        len--;
    if (memchr(name, '/', len) != NULL || (m->srv = conf_find_mcp(req->conf, name, len)) == NULL) {
        snprintf(msg, sizeof(msg), "no MCP server named '%.*s' is configured",
                 (int)(len < 80 ? len : 80), name);
        return stage_fail(req, APIERR_NOT_FOUND, arena_str(req, msg));
    }
    req->prov = &m->srv->prov; /* the log's provider: mcp:NAME, answered from the cache too */
    key_label(req, label, sizeof(label));
    m->level = CONF_LEVEL_AGENT;
    m->agent = "-";
    {
        /* results are shared within the policy's cache scope (agent unless it says), one rule
         * for every cache (cachescope.h); no scope to keep them apart by: not cached ("") */
        enum conf_level lv = budget_cache_policy(book, req->agent).scope;
        const char *sc = cache_scope_label(req, lv, &lv, scope, sizeof(scope));
        m->level = lv;
        m->scope = sc != NULL ? arena_str(req, sc) : "";
    }
    if (req->agent >= 0 && book != NULL) {
        m->agent = budget_scope_name(book, req->agent);
        const char *team = budget_scope_at_level(book, req->agent, CONF_LEVEL_TEAM);
        for (int i = 0; team != NULL && i < m->srv->nteams; i++)
            if (strcmp(m->srv->teams[i].team, team) == 0)
                m->team = &m->srv->teams[i];
    }
    /* sessions belong to the key that opened them */
    snprintf(m->owner, sizeof(m->owner), "%s", req->key_id[0] ? req->key_id : label);
    if (m->scope == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    return STAGE_NEXT;
}

/* ---- session ------------------------------------------------------------------------------ */

static enum stage_rc mcp_session(struct gate_req *req)
{
    struct mcp_req *m = req->mcp;
    const struct http_header *h = req_header(req, "mcp-session-id");
    struct mcp_hub *hub = req->w->srv->mcp;

    if (h == NULL)
        return STAGE_NEXT;
    /* one id, checked and forwarded: a second could name another key's session to a server
     * that reads the last one */
    for (int i = 0, n = 0; i < req->msg.nheaders; i++)
        if (strcmp(req->msg.headers[i].name, "mcp-session-id") == 0 && ++n > 1)
            return stage_fail(req, APIERR_BAD_REQUEST, "more than one Mcp-Session-Id header");
    m->session = h->value;
    if (hub != NULL && mcp_session_check(hub, m->srv->name, h->value, m->owner) == MCP_BIND_MINE)
        return STAGE_NEXT;
    /* one another key opened, or one the gate never saw issued: the client starts a new
     * session, as a server's 404 tells it to */
    return stage_fail(req, APIERR_NOT_FOUND,
                      "unknown MCP session: this key did not open it (send initialize for a "
                      "new session)");
}

/* ---- body ---------------------------------------------------------------------------------- */

static void read_message(struct mcp_req *m, const cJSON *msg)
{
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");

    if (cJSON_IsString(method))
        m->method = method->valuestring;
    if (id != NULL && (cJSON_IsString(id) || cJSON_IsNumber(id)))
        m->id = id;
    if (m->method != NULL && strcmp(m->method, "tools/call") == 0) {
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
        if (cJSON_IsString(name))
            m->tool = name->valuestring;
    }
}

static enum stage_rc mcp_body(struct gate_req *req)
{
    struct mcp_req *m = req->mcp;
    size_t len;
    const char *raw;
    cJSON *doc;

    if (req->msg.method != HTTP_POST)
        return STAGE_NEXT;
    len = req->msg.body != NULL ? evbuffer_get_length(req->msg.body) : 0;
    raw = len > 0 ? (const char *)evbuffer_pullup(req->msg.body, -1) : "";
    req_memory_bound(req);
    struct arena *prev = jsonmem_enter(req->arena);
    doc = cJSON_ParseWithLength(raw, len);
    jsonmem_leave(prev);
    if (req_memory_unbound(req) < 0)
        return STAGE_ANSWERED;
    if (doc == NULL)
        return rpc_error(req, 400, NULL, RPC_PARSE_ERROR,
                         "Parse error: the body is not valid JSON");
    m->body = doc;
    if (cJSON_IsArray(doc)) {
        const cJSON *it;
        if (cJSON_GetArraySize(doc) == 0)
            return rpc_error(req, 400, NULL, RPC_INVALID_REQUEST,
                             "Invalid Request: an empty batch");
        for (it = doc->child; it != NULL; it = it->next)
            if (!cJSON_IsObject(it))
                return rpc_error(req, 400, NULL, RPC_INVALID_REQUEST,
                                 "Invalid Request: each message of a batch is a JSON object");
        m->batch = 1;
        m->method = "batch";
        return STAGE_NEXT;
    }
    if (!cJSON_IsObject(doc))
        return rpc_error(req, 400, NULL, RPC_INVALID_REQUEST,
                         "Invalid Request: a JSON-RPC message is an object, or a batch (array) "
                         "of them");
    read_message(m, doc);
    return STAGE_NEXT;
}

/* ---- policy: hidden tools, the cache ---------------------------------------------------- */

int mcp_tool_visible(const struct conf_mcp_team *team, const char *tool)
{
    if (team == NULL)
        return 1;
    for (int i = 0; i < team->ntools; i++)
        if (strcmp(team->tools[i], tool) == 0)
            return 1;
    return 0;
}

/* A batch: its hidden tools refused, a team's tools/list refused (it could not be cut to the
 * team's tools); forwarded whole, never cached. */
static enum stage_rc batch_policy(struct gate_req *req)
{
    struct mcp_req *m = req->mcp;
    const cJSON *it;
    char msg[200];

    for (it = m->body->child; it != NULL; it = it->next) {
        struct mcp_req one = {0};
        read_message(&one, it);
        if (one.method == NULL || m->team == NULL)
            continue;
        if (strcmp(one.method, "tools/list") == 0)
            return rpc_error(req, 400, NULL, RPC_INVALID_REQUEST,
                             "Invalid Request: send tools/list alone, not in a batch");
        if (strcmp(one.method, "tools/call") == 0 && one.tool != NULL &&
            !mcp_tool_visible(m->team, one.tool)) {
            snprintf(msg, sizeof(msg), "unknown tool: %.100s", one.tool);
            return rpc_error(req, 200, one.id, RPC_INVALID_PARAMS, arena_str(req, msg));
        }
    }
    return STAGE_NEXT;
}

/* The store's key into m (in the arena). Returns 0, or -1 when it cannot be made. */
static int make_key(struct gate_req *req, const char *scope, const char *tool, const cJSON *args)
{
    struct mcp_req *m = req->mcp;
    struct canon_buf b = {.max = MCP_KEY_MAX};
    int rc = toolcache_key(&b, scope, m->srv->name, tool, args);

    if (rc == 0 && (m->key = arena_alloc(req->arena, b.len + 1)) != NULL) {
        memcpy(m->key, b.data, b.len);
        m->klen = b.len;
    } else {
        rc = -1;
    }
    canon_buf_free(&b);
    return rc;
}

/* The entry of m's key, or NULL. */
static struct cache_val *lookup(struct gate_req *req)
{
    struct mcp_req *m = req->mcp;
    struct canon_buf k = {.data = m->key, .len = m->klen, .cap = m->klen, .max = m->klen};

    return toolcache_get(req->w->srv->tools, &k, gate_now_us() / 1000);
}

/* Answers from the entry v (a result's JSON text): the client's id, the result cut to the
 * team's tools for a list. */
static enum stage_rc answer_hit(struct gate_req *req, struct cache_val *v)
{
    struct mcp_req *m = req->mcp;
    size_t n = 0;
    const char *data = cache_val_data(v, &n);
    struct arena *prev = jsonmem_enter(req->arena);
    cJSON *doc = cJSON_CreateObject();
    cJSON *res = cJSON_ParseWithLength(data, n);
    const char *text = NULL;

    cache_val_release(v);
    if (res != NULL && m->filter_list)
        res = mcp_filter_list(res, m->team);
    cJSON_AddStringToObject(doc, "jsonrpc", "2.0");
    cJSON_AddItemToObject(doc, "id", cJSON_Duplicate(m->id, 1));
    cJSON_AddItemToObject(doc, "result", res);
    if (res != NULL && jsonmem_failures_take() == 0)
        text = cJSON_PrintUnformatted(doc);
    jsonmem_leave(prev);
    if (text == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    answer(req, 200, text, strlen(text), "hit");
    return STAGE_ANSWERED;
}

/* A cacheable request: looked up (a hit answers), else marked to be stored. */
static enum stage_rc cached(struct gate_req *req, const char *scope, const char *tool,
                            const cJSON *args, int64_t ttl_ms)
{
    struct mcp_req *m = req->mcp;
    struct gate_server *srv = req->w->srv;
    struct cache_val *v;

    m->cache = MCP_CACHE_BYPASS;
    if (srv->tools == NULL || m->id == NULL || ttl_ms <= 0 || scope[0] == '\0' ||
        make_key(req, scope, tool, args) < 0)
        return STAGE_NEXT;
    m->ttl_ms = ttl_ms;
    if ((v = lookup(req)) != NULL) {
        m->cache = MCP_CACHE_HIT;
        m->hit = v; /* answered by mcp_policy, after the counters */
        return STAGE_NEXT;
    }
    m->cache = MCP_CACHE_MISS;
    return STAGE_NEXT;
}

static enum stage_rc mcp_policy(struct gate_req *req)
{
    struct mcp_req *m = req->mcp;
    struct gate_server *srv = req->w->srv;
    const cJSON *params;
    char msg[200];
    int64_t ttl = 0;

    if (req->msg.method != HTTP_POST)
        return STAGE_NEXT;
    if (m->batch)
        return batch_policy(req);
    if (m->method == NULL)
        return STAGE_NEXT;
    params = cJSON_GetObjectItemCaseSensitive(m->body, "params");
    if (strcmp(m->method, "tools/call") == 0 && m->tool != NULL) {
        if (!mcp_tool_visible(m->team, m->tool)) {
            snprintf(msg, sizeof(msg), "unknown tool: %.100s", m->tool);
            return rpc_error(req, 200, m->id, RPC_INVALID_PARAMS, arena_str(req, msg));
        }
        for (int i = 0; i < m->srv->ntools; i++)
            if (strcmp(m->srv->tools[i].name, m->tool) == 0)
                ttl = m->srv->tools[i].ttl_ms;
        m->kind = CACHE_K_TOOL;
        m->cache = MCP_CACHE_BYPASS;
        if (ttl > 0) {
            /* no arguments and {} are one call */
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
            struct arena *prev = jsonmem_enter(req->arena);
            if (args == NULL || cJSON_IsNull(args))
                args = cJSON_CreateObject();
            jsonmem_leave(prev);
            cached(req, m->scope, m->tool, args, ttl);
        }
        if (m->cache != MCP_CACHE_NONE)
            toolstats_count(srv->toolstats, m->srv->name, m->tool, m->agent,
                            m->cache == MCP_CACHE_HIT    ? CACHE_HIT
                            : m->cache == MCP_CACHE_MISS ? CACHE_MISS
                                                         : CACHE_BYPASS);
    } else if (strcmp(m->method, "tools/list") == 0) {
        /* one list per server (the server sees the gate's credential, whoever asks), cut to
         * the team's tools when it is answered */
        m->kind = CACHE_K_MCP_LIST;
        m->filter_list = m->team != NULL;
        cached(req, "mcp:list", "tools/list", cJSON_GetObjectItemCaseSensitive(params, "cursor"),
               m->srv->list_ttl_ms);
    } else {
        return STAGE_NEXT;
    }
    cache_stats_add(srv->cstats, m->kind, m->kind == CACHE_K_MCP_LIST ? CONF_LEVEL_ORG : m->level,
                    m->cache == MCP_CACHE_HIT    ? CACHE_HIT
                    : m->cache == MCP_CACHE_MISS ? CACHE_MISS
                                                 : CACHE_BYPASS);
    if (m->cache == MCP_CACHE_HIT) {
        struct cache_val *v = m->hit;
        m->hit = NULL;
        return answer_hit(req, v);
    }
    return STAGE_NEXT;
}

/* ---- prepare, dispatch, finish ---------------------------------------------------------- */

/* Client headers never forwarded: framing and the connection's, the client's credentials
 * (the server gets the gate's), the gate's own. */
static int dropped(const struct http_header *h)
{
    return hdr_not_forwarded(h->name) || strcmp(h->name, "cookie") == 0 ||
           api_is_key_header(h->name);
}

static enum stage_rc mcp_prepare(struct gate_req *req)
{
    const struct conf_mcp_server *s = req->mcp->srv;
    struct evbuffer *b = evbuffer_new();
    size_t len = req->msg.body != NULL ? evbuffer_get_length(req->msg.body) : 0;

    if (b == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    struct headbuf hd = {.out = b};
    headbuf_str(&hd, llhttp_method_name((llhttp_method_t)req->msg.method));
    headbuf_str(&hd, " ");
    headbuf_str(&hd, s->u.path);
    if (req->msg.query != NULL) {
        headbuf_add(&hd, "?", 1);
        headbuf_str(&hd, req->msg.query);
    }
    headbuf_str(&hd, " HTTP/1.1\r\nhost: ");
    headbuf_str(&hd, s->u.host_header);
    headbuf_add(&hd, "\r\n", 2);
    for (int i = 0; i < req->msg.nheaders; i++) {
        const struct http_header *h = &req->msg.headers[i];
        if (!dropped(h))
            headbuf_field(&hd, h->name, h->name_len, h->value, h->value_len);
    }
    if (s->api_key != NULL) {
        headbuf_str(&hd, "authorization: Bearer ");
        headbuf_str(&hd, s->api_key);
        headbuf_add(&hd, "\r\n", 2);
    }
    headbuf_str(&hd, "x-request-id: ");
    headbuf_str(&hd, req->id);
    headbuf_str(&hd, "\r\naccept-encoding: identity\r\n");
    if (req->msg.method != HTTP_GET) {
        headbuf_str(&hd, "content-length: ");
        headbuf_num(&hd, len);
        headbuf_add(&hd, "\r\n", 2);
    }
    headbuf_str(&hd, "connection: keep-alive\r\n\r\n");
    headbuf_flush(&hd);
    if (len > 0)
        evbuffer_add(b, evbuffer_pullup(req->msg.body, -1), len);
    req->ex.request = b;
    return STAGE_NEXT;
}

static enum stage_rc mcp_dispatch(struct gate_req *req)
{
    req->chain = NULL;
    if (filter_push(req, &mcp_filter, req->mcp) < 0 || filter_push(req, &filter_writer, NULL) < 0)
        return stage_fail(req, APIERR_INTERNAL, "out of memory");
    req->src = &source_upstream;
    req->src->start(req); /* may fail at once: the request then ends in req_fail */
    return STAGE_WAIT;
}

static enum stage_rc mcp_finish(struct gate_req *req)
{
    mcp_fill(req);
    if (req->conn != NULL)
        filter_writer_tail(req);
    req_finish(req);
    return STAGE_ANSWERED;
}

static const struct pipeline_stage mcp_stages[] = {
    {"parse", REQ_ADMITTING, mcp_parse},
    {"authenticate", REQ_ADMITTING, mcp_auth},
    {"server", REQ_ADMITTING, mcp_server},
    {"session", REQ_ADMITTING, mcp_session},
    {"body", REQ_ADMITTING, mcp_body},
    {"policy", REQ_ADMITTING, mcp_policy},
    {"prepare", REQ_ADMITTING, mcp_prepare},
    {"dispatch", REQ_DISPATCHED, mcp_dispatch},
    /* settling: nothing to charge; req_finish settles nothing once past it */
    {"finish", REQ_SETTLING, mcp_finish},
};

const struct pipeline pipeline_mcp = {
    .stages = mcp_stages,
    .n = (int)(sizeof(mcp_stages) / sizeof(mcp_stages[0])),
    .fail = req_fail,
};

void mcp_log(const struct gate_req *req, cJSON *rec)
{
    const struct mcp_req *m = req->mcp;
    cJSON *o;

    if (m == NULL || m->srv == NULL)
        return;
    o = cJSON_AddObjectToObject(rec, "mcp");
    cJSON_AddStringToObject(o, "server", m->srv->name);
    if (m->method != NULL)
        cJSON_AddStringToObject(o, "method", m->method);
    if (m->tool != NULL)
        cJSON_AddStringToObject(o, "tool", m->tool);
    if (m->cache != MCP_CACHE_NONE)
        cJSON_AddStringToObject(o, "cache", mcp_cache_name(m->cache));
}
