/*
 * usage: token usage as the provider reports it, read from a response body or from the
 * events of a stream, for every endpoint the gate proxies.
 */
#ifndef TG_USAGE_H
#define TG_USAGE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "gate/endpoint.h"

struct usage {
    int64_t input;       /* input tokens, cached ones included */
    int64_t output;
    int64_t cached;      /* input tokens read from the provider's prompt cache */
    int64_t cache_write; /* input tokens written to it (Anthropic) */
    int have;            /* the provider reported usage */
};

/* Reads usage from a whole (non-stream) response body. Leaves u alone when it has none. */
void usage_from_body(enum endpoint ep, const cJSON *body, struct usage *u);

/*
 * Reads usage from one stream event (its "event:" name and parsed data). Returns 1 when the
 * event is OpenAI's extra chat usage chunk (no choices, only usage), which the gate drops when
 * it asked for usage itself; 0 otherwise.
 */
int usage_from_event(enum endpoint ep, const char *name, const cJSON *data, struct usage *u);

#endif
