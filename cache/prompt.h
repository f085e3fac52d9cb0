/*
 * prompt: provider prompt caching, set up on the request as sent. For an Anthropic target
 * whose request has no cache_control anywhere, breakpoints on the longest stable prefixes
 * (the tools, the system prompt, the earlier turns), at most 4, each only where the prefix
 * reaches the model's minimum cacheable length. For an OpenAI target, a prompt_cache_key
 * naming the tenant's scope (hashed: the provider never learns the org's names), unless the
 * client set one.
 */
#ifndef TG_CACHE_PROMPT_H
#define TG_CACHE_PROMPT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "tokenizer/chat.h"

#define PROMPT_MAX_BREAKPOINTS 4 /* Anthropic takes at most four */

/* The shortest prefix an Anthropic model caches, by family (1024, 2048 or 4096 tokens), for a
 * model entry whose cache_min_tokens is 0. */
long prompt_min_tokens(const char *model);

/*
 * Places breakpoints ({"type":"ephemeral"}, with "ttl":"1h" when ttl_1h) in body, an Anthropic
 * Messages request, whose parts' token counts are parts (tokenizer/chat.h); min_tokens is the
 * model's minimum. Leaves a body with any cache_control untouched. Returns the number placed
 * (0 to 4), or -1 when memory runs out (body may then hold some of them). *changed says which
 * top-level members it changed: bit 0 tools, bit 1 system, bit 2 messages.
 */
int prompt_breakpoints(cJSON *body, const tok_count_parts *parts, long min_tokens, int ttl_1h,
                       int *changed);

/* Writes the prompt_cache_key of a scope ("tg-" and 32 hex digits of a keyed hash of its
 * label) into out (at least 40 bytes). */
void prompt_cache_key(const char *scope_label, char out[40]);

#endif
