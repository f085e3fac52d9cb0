/*
 * usage: token usage as the provider reports it, read from a response body or from the
 * events of a stream, for every endpoint the gate proxies.
 *
 * Usage is trusted only when it is final and sane. A stream reports usage piecemeal:
 * Anthropic's message_start carries the input and a placeholder output of 1, and only its
 * message_delta has the output; a stream cut before the final report has partial usage,
 * which settles at no less than the gate's own count (spend.c). A count that is not a
 * whole number from 0 to USAGE_MAX marks the report as bad: it is kept for the log, never
 * charged.
 */
#ifndef TG_USAGE_H
#define TG_USAGE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "gate/api/endpoint.h"

/* no provider reports more tokens than this for one request; more is a bad report */
#define USAGE_MAX 1000000000000LL

struct usage {
    int64_t input;       /* input tokens, cached ones included */
    int64_t output;
    int64_t cached;      /* input tokens read from the provider's prompt cache */
    int64_t cache_write; /* input tokens written to it (Anthropic) */
    int have;            /* the provider reported some usage */
    int final;           /* ... and that report is its last word on the request */
    const char *bad;     /* the first field that was not a sane count, or NULL */
};

/* Reads usage from a whole (non-stream) response body: final when present. Leaves u alone
 * when the body has none. */
void usage_from_body(enum endpoint ep, const cJSON *body, struct usage *u);

/*
 * Reads usage from one stream event (its "event:" name and parsed data); sets u->final on
 * the event that closes the accounting (chat's usage chunk, responses' response.completed,
 * .incomplete or .failed, messages' message_delta). Returns 1 when the event is OpenAI's
 * extra chat usage chunk (no choices, only usage), which the gate drops when it asked for
 * usage itself; 0 otherwise.
 */
int usage_from_event(enum endpoint ep, const char *name, const cJSON *data, struct usage *u);

#endif
