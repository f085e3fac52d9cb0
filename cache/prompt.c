/*
 * prompt: STUB until the prompt branch lands. See prompt.h.
 */
#include "cache/prompt.h"

#include <string.h>

long prompt_min_tokens(const char *model)
{
    (void)model;
    return 1024;
}

int prompt_breakpoints(cJSON *body, const tok_count_parts *parts, long min_tokens, int ttl_1h,
                       int *changed)
{
    (void)body, (void)parts, (void)min_tokens, (void)ttl_1h;
    *changed = 0;
    return 0;
}

void prompt_cache_key(const char *scope_label, char out[40])
{
    (void)scope_label;
    strcpy(out, "tg-");
}
