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

#include "cache/prefixcount.h"
#include "cache/prompt.h"
#include "gate/core/worker.h"
#include "gate/pipeline/fallback.h"
#include "gate/pipeline/cachescope.h"
#include "gate/pipeline/req.h"
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
    /* through the prefix-count memo: the count stage has just counted the same messages */
    tok_prefix_memo memo;
    struct gate_server *srv = req->w->srv;
    if (srv->prefix != NULL && req->conf != NULL && req->conf->cache.prefix_counts) {
        prefixcount_memo(srv->prefix, &memo);
        opts.memo = &memo;
    }
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
        enum conf_level lv;
        const char *sc = cache_scope_label(req, pc.prompt_scope, &lv, label, sizeof(label));
        if (sc == NULL)
            return 0; /* nothing to name the tenant by: no key rather than a shared one */
        prompt_cache_key(sc, key);
        if (cJSON_AddStringToObject(doc, "prompt_cache_key", key) == NULL)
            return -1;
        req->cache.prompt_key = 1;
        *changed |= 1 << 3;
    }
    return 0;
}
