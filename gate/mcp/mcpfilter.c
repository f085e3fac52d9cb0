/*
 * mcpfilter: the MCP answer's filter, before the client writer, and the cache fill after it.
 * It binds the session id a server issues to the key that asked, forgets one the client ended,
 * adds x-tokengate-cache to the answers the cache looked at, cuts a tools/list answer to the
 * team's tools (nothing hidden reaches the client: an event it cannot read is dropped), and
 * keeps the result of the request's answer (a JSON body, or the stream's event that answers
 * the request's id) for mcp_fill. See mcp-int.h.
 */
#include <event2/buffer.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

#include "cache/canon.h"
#include "cache/toolcache.h"
#include "gate/core/worker.h"
#include "gate/mcp/mcp-int.h"
#include "gate/pipeline/filter.h"
#include "gate/pipeline/req.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"
#include "gate/util/jsonmem.h"

cJSON *mcp_filter_list(const cJSON *result, const struct conf_mcp_team *team)
{
    cJSON *out = cJSON_Duplicate(result, 1);
    cJSON *tools = cJSON_GetObjectItemCaseSensitive(out, "tools");
    cJSON *t, *next;

    if (out == NULL || team == NULL)
        return out;
    if (!cJSON_IsArray(tools)) {
        cJSON_DeleteItemFromObjectCaseSensitive(out, "tools");
        return out;
    }
    for (t = tools->child; t != NULL; t = next) {
        next = t->next;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (!cJSON_IsString(name) || !mcp_tool_visible(team, name->valuestring))
            cJSON_Delete(cJSON_DetachItemViaPointer(tools, t));
    }
    return out;
}

/* Whether msg answers the request (its id). */
static int answers(const struct mcp_req *m, const cJSON *msg)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");

    return m->id != NULL && cJSON_IsObject(msg) && id != NULL && cJSON_Compare(id, m->id, 1) &&
           (cJSON_GetObjectItemCaseSensitive(msg, "result") != NULL ||
            cJSON_GetObjectItemCaseSensitive(msg, "error") != NULL);
}

/* Keeps msg's result as JSON text in the arena; for a team's list, returns the message cut
 * to its tools as text (in the arena), else NULL. */
static const char *take(struct gate_req *req, struct mcp_req *m, const cJSON *msg)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(msg, "result");
    const char *cut = NULL;
    struct arena *prev = jsonmem_enter(req->arena);

    if (res == NULL) {
        m->result_error = 1;
    } else {
        const cJSON *is_error = cJSON_GetObjectItemCaseSensitive(res, "isError");
        if (cJSON_IsTrue(is_error))
            m->result_error = 1; /* a tool's failure is not kept */
        char *text = cJSON_PrintUnformatted(res);
        if (text != NULL) {
            m->result = text;
            m->result_len = strlen(text);
        }
        if (m->filter_list) {
            cJSON *doc = cJSON_CreateObject();
            cJSON_AddStringToObject(doc, "jsonrpc", "2.0");
            cJSON_AddItemToObject(doc, "id", cJSON_Duplicate(m->id, 1));
            cJSON_AddItemToObject(doc, "result", mcp_filter_list(res, m->team));
            if (jsonmem_failures_take() == 0)
                cut = cJSON_PrintUnformatted(doc);
        }
    }
    jsonmem_leave(prev);
    return cut;
}

static int mf_head(struct resp_filter *f, struct gate_req *req, int status,
                   const struct http_header *h, int n)
{
    struct mcp_req *m = f->state;
    struct mcp_hub *hub = req->w->srv->mcp;

    if (status == 401 || status == 403) {
        /* the server refused the gate's own credential: not the agent's business to fix (and
         * a 401 would send an MCP client into its authorization flow against the gate) */
        char msg[320];
        snprintf(msg, sizeof(msg),
                 "the MCP server '%.64s' refused the gate's credential for it (status %d): see "
                 "mcp.servers.%.64s.api_key_env",
                 m->srv->name, status, m->srv->name);
        req->stop_kind = APIERR_BAD_GATEWAY;
        req->stop_why = arena_strndup(req->arena, msg, strlen(msg));
        if (req->stop_why == NULL)
            req->stop_why = "the MCP server refused the gate's credential";
        return -1;
    }
    if (status >= 200 && status < 300 && hub != NULL) {
        for (int i = 0; i < n; i++)
            if (strcmp(h[i].name, "mcp-session-id") == 0 && m->session == NULL)
                mcp_session_bind(hub, m->srv->name, h[i].value, h[i].value_len, m->owner);
        if (req->msg.method == HTTP_DELETE && m->session != NULL)
            mcp_session_drop(hub, m->srv->name, m->session);
    }
    if (m->cache != MCP_CACHE_NONE) {
        struct http_header *h2 = arena_alloc(req->arena, (size_t)(n + 1) * sizeof(*h2));
        if (h2 != NULL) {
            const char *v = mcp_cache_name(m->cache);
            memcpy(h2, h, (size_t)n * sizeof(*h2));
            h2[n].name = (char *)"x-tokengate-cache";
            h2[n].name_len = strlen(h2[n].name);
            h2[n].value = (char *)v;
            h2[n].value_len = strlen(v);
            return filter_head(f, req, status, h2, n + 1);
        }
    }
    return filter_head(f, req, status, h, n);
}

static int mf_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    struct mcp_req *m = f->state;

    if (ev->data != NULL && answers(m, ev->data)) {
        const char *cut = take(req, m, ev->data);
        if (m->filter_list) {
            size_t cap = cut != NULL ? strlen(cut) + 96 : 0;
            char *raw = cap ? arena_alloc(req->arena, cap) : NULL;
            if (raw == NULL) {
                ev->drop = 1;
            } else {
                int k = ev->name[0]
                            ? snprintf(raw, cap, "event: %.60s\ndata: %s\n\n", ev->name, cut)
                            : snprintf(raw, cap, "data: %s\n\n", cut);
                ev->raw = raw;
                ev->raw_len = (size_t)k < cap ? (size_t)k : cap - 1;
            }
        }
    } else if (m->filter_list && ev->data == NULL && ev->text_len > 0) {
        ev->drop = 1; /* an event the gate cannot read might list hidden tools */
    }
    return filter_event(f, req, ev);
}

static int mf_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    struct mcp_req *m = f->state;

    if (!req->up_sse && b->doc != NULL && answers(m, b->doc)) {
        const char *cut = take(req, m, b->doc);
        if (m->filter_list) {
            if (cut == NULL) {
                req->stop_kind = APIERR_INTERNAL;
                req->stop_why = "out of memory";
                return -1;
            }
            evbuffer_drain(req->up_body, evbuffer_get_length(req->up_body));
            evbuffer_add(req->up_body, cut, strlen(cut));
        }
    } else if (!req->up_sse && m->filter_list && req->up_status >= 200 && req->up_status < 300 &&
               b->len > 0) {
        /* a list the gate cannot read cannot be cut to the team's tools: not relayed */
        req->stop_kind = APIERR_BAD_GATEWAY;
        req->stop_why = "the MCP server's tools/list answer cannot be read";
        return -1;
    }
    return filter_body(f, req, b);
}

const struct resp_filter_type mcp_filter = {
    .name = "mcp",
    .head = mf_head,
    .event = mf_event,
    .body = mf_body,
};

void mcp_fill(struct gate_req *req)
{
    struct mcp_req *m = req->mcp;
    struct cache_store *s = req->w->srv->tools;

    if (m == NULL || s == NULL || m->cache != MCP_CACHE_MISS || m->result == NULL ||
        m->result_error || req->up_status < 200 || req->up_status >= 300 || req->stop_why != NULL)
        return;
    struct canon_buf k = {.data = m->key, .len = m->klen, .cap = m->klen, .max = m->klen};
    (void)toolcache_put(s, &k, m->result, m->result_len, m->ttl_ms, gate_now_us() / 1000);
}
