/*
 * promptprep: provider prompt caching on a request as it is sent (cache/prompt.h does the
 * placing), in the policy in force at the request's agent (its `cache: prompt:` settings):
 *   - an Anthropic Messages target with prompt.anthropic on: cache_control breakpoints where the
 *     counted prefix reaches the model's minimum, unless the client placed any;
 *   - an OpenAI chat or Responses target with prompt.openai_key on: prompt_cache_key naming the
 *     scope at prompt.scope, unless the client set one.
 * The request's record says what was done (req->cache.breakpoints, req->cache.prompt_key).
 */
#ifndef TG_PROMPTPREP_H
#define TG_PROMPTPREP_H

#include <cjson/cJSON.h>

struct gate_req;

/* The top-level members promptprep_apply may change, by bit (see *changed). */
#define PROMPTPREP_MEMBERS 4
extern const char *const promptprep_members[PROMPTPREP_MEMBERS]; /* tools, system, messages,
                                                                    * prompt_cache_key */

/* Whether the policy and the target ask for anything: when 0, promptprep_apply does nothing
 * (the caller need not copy the body). */
int promptprep_wanted(const struct gate_req *req);

/*
 * Applies prompt caching to doc, the body the target gets in its own API (changed in place;
 * its nodes in cJSON's current allocator), and sets req->cache.breakpoints and
 * req->cache.prompt_key. *changed gets a bit (1 << i) for each promptprep_members[i] it
 * changed. Returns 0, or -1 when memory ran out (doc may hold part of the change: the caller
 * fails the request).
 */
int promptprep_apply(struct gate_req *req, cJSON *doc, int *changed);

#endif
