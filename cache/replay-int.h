/*
 * replay-int: what replay.c (gathering) and replay_out.c (replaying, the whole-answer check)
 * share. Not for other modules.
 */
#ifndef TG_CACHE_REPLAY_INT_H
#define TG_CACHE_REPLAY_INT_H

#include <cjson/cJSON.h>

/* 1 when every member of o not named in known (NULL-ended) is null or empty ({}, []): what a
 * stream of the answer would not carry (logprobs, audio, a provider's own fields) must be
 * absent, else the answer is not replayed, rather than replayed without it. */
int replay_rest_empty(const cJSON *o, const char *const *known);

#endif
