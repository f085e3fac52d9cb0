/*
 * promptprep: prompt caching set up on the request as sent. See promptprep.h.
 *
 * The breakpoints are placed on counts of the body's parts as the target gets it (tools,
 * system, each message), made with the count stage's encoding and calibration; a count is
 * approximate for Anthropic, and a breakpoint on a prefix the provider finds a little short of
 * its minimum is only not cached (never refused), so the count need not be exact.
 */
#include "gate/pipeline/promptprep.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cache/prompt.h"
#include "gate/core/worker.h"
#include "gate/pipeline/fallback.h"
#include "gate/pipeline/req.h"
#include "gate/server.h"
#include "gate/util/arena.h"

#define GET cJSON_GetObjectItemCaseSensitive

/* a body with more messages than this is counted whole only: no breakpoint on its messages */
#define PROMPTPREP_MAX_MESSAGES 100000

const char *const promptprep_members[PROMPTPREP_MEMBERS] = {"tools", "system", "messages",
                                                             "prompt_cache_key"};

static int anthropic_target(const struct gate_req *req)
{
    return req->upstream_api == &api_anthropic_messages;
}

static int openai_target(const struct gate_req *req)
{
    return req->upstream_api == &api_openai_chat || req->upstream_api == &api_openai_responses;
}

int promptprep_wanted(const struct gate_req *req)
{
    if (req->upstream_api == NULL)
        return 0;
    struct conf_policy_cache pc = budget_cache_policy(req->w->srv->book, req->agent);
    return (anthropic_target(req) && pc.prompt_anthropic) ||
           (openai_target(req) && pc.prompt_openai_key);
}

/*
 * The label of req's scope at level lv ("agent:crawler", "team:search", "org"), written into
 * buf. An open gate, or a request with no agent: "key:" and the first 16 hex digits of the
 * SHA-256 of the client's credential (so that two clients with two provider keys never share),
 * "key:none" without one.
 */
static const char *scope_label(const struct gate_req *req, enum conf_level lv, char *buf,
                               size_t cap)
{
    struct budget_book *b = req->w->srv->book;

    if (b != NULL && req->agent >= 0) {
        int s = req->agent;
        for (int hops = 0; s >= 0 && hops < 8 && budget_scope_level(b, s) != lv; hops++)
            s = budget_scope_parent(b, s);
        return budget_scope_label(b, s >= 0 ? s : req->agent, buf, cap);
    }
    for (const struct api_key_header *k = api_client_keys(req->client_api); k->name; k++) {
        const struct http_header *h = req_header(req, k->name);
        if (h == NULL)
            continue;
        const char *v = h->value;
        size_t sl = k->scheme != NULL ? strlen(k->scheme) : 0;
        if (sl > 0 && h->value_len > sl && strncasecmp(v, k->scheme, sl) == 0)
            for (v += sl; *v == ' ';)
                v++;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_Digest(v, h->value_len - (size_t)(v - h->value), md, &n, EVP_sha256(), NULL) != 1)
            break;
        snprintf(buf, cap, "key:%02x%02x%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3],
                 md[4], md[5], md[6], md[7]);
        return buf;
    }
    snprintf(buf, cap, "key:none");
    return buf;
}

/* Breakpoints on doc, an Anthropic Messages body. */
static int breakpoints(struct gate_req *req, cJSON *doc, int ttl_1h, int *changed)
{
    const cJSON *msgs = GET(doc, "messages");
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
    tok_count_parts parts = {0};
    tok_count_opts opts = {.parts = &parts};
    tok_count_result r;
    const char *served = route_served_name(req);

    if (req->tc.enc == NULL)
        return 0; /* not counted (no encoding): no prefix known to reach the minimum */
    if (n > PROMPTPREP_MAX_MESSAGES)
        n = PROMPTPREP_MAX_MESSAGES;
    parts.cap = (uint32_t)n;
    parts.messages = n > 0 ? arena_alloc(req->arena, (size_t)n * sizeof(uint64_t)) : NULL;
    if (n > 0 && parts.messages == NULL)
        return -1;
    memset(&r, 0, sizeof(r));
    /* TODO(prefixcount): opts.memo = the server's prefix memo, once srv->prefix lands */
    if (tok_count_request_ex(req->tc.enc, TOK_API_MESSAGES, doc, served, req->tc.factor, &opts,
                             &r) < 0)
        return 0; /* not a Messages body the count reads: left as it is */
    long min = req->cm != NULL && req->cm->cache_min_tokens > 0 ? req->cm->cache_min_tokens
                                                                : prompt_min_tokens(served);
    int placed = prompt_breakpoints(doc, &parts, min, ttl_1h, changed);
    if (placed < 0)
        return -1;
    req->cache.breakpoints = placed;
    return 0;
}

int promptprep_apply(struct gate_req *req, cJSON *doc, int *changed)
{
    *changed = 0;
    req->cache.breakpoints = 0;
    req->cache.prompt_key = 0;
    if (req->upstream_api == NULL || !cJSON_IsObject(doc))
        return 0;
    struct conf_policy_cache pc = budget_cache_policy(req->w->srv->book, req->agent);

    if (anthropic_target(req) && pc.prompt_anthropic)
        return breakpoints(req, doc, pc.prompt_ttl_1h, changed);
    if (openai_target(req) && pc.prompt_openai_key && GET(doc, "prompt_cache_key") == NULL) {
        char label[320], key[40];
        prompt_cache_key(scope_label(req, pc.prompt_scope, label, sizeof(label)), key);
        if (cJSON_AddStringToObject(doc, "prompt_cache_key", key) == NULL)
            return -1;
        req->cache.prompt_key = 1;
        *changed |= 1 << 3;
    }
    return 0;
}
