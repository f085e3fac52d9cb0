/*
 * usage: token usage as the provider reports it, read from a response body or from the
 * events of a stream, for every API the gate proxies (each dialect reads its own fields).
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

/* no provider reports more tokens than this for one request; more is a bad report */
#define USAGE_MAX 1000000000000LL

struct usage {
    int64_t input;       /* input tokens, cached ones included */
    int64_t output;
    int64_t cached;      /* input tokens read from the provider's prompt cache */
    int64_t cache_write; /* input tokens written to it (Anthropic), both lifetimes */
    int64_t cache_write_1h; /* ... of which written for an hour (priced apart; the rest are
                             * 5-minute writes) */
    int have;            /* the provider reported some usage */
    int final;           /* ... and that report is its last word on the request */
    const char *bad;     /* the first field that was not a sane count, or NULL */
};

/*
 * Usage is read by each API's dialect (dialect.h: usage_body for a whole answer, usage_event
 * for a stream's events), with these helpers.
 */

/*
 * A token count: member key of obj as a whole number from 0 to USAGE_MAX. An absent or null
 * member is 0; anything else (negative, fractional, huge, a string) is 0 too and marks u bad,
 * naming key.
 */
int64_t usage_count(const cJSON *obj, const char *key, struct usage *u);

/*
 * Reads an OpenAI usage object us (chat, embeddings, responses: the names of its members
 * differ) into u: input, output (when out_key is not NULL) and the cached tokens of the
 * details object. Does nothing when us is not an object.
 */
void usage_read_openai(const cJSON *us, const char *in_key, const char *out_key,
                       const char *details_key, struct usage *u);

/* Marks u bad when its parts pass its whole (cached and written above the input, the 1-hour
 * writes above the writes). */
void usage_check_parts(struct usage *u);

/* Ends the reading of a whole answer: usage present is final, and checked. */
void usage_body_done(struct usage *u);

#endif
