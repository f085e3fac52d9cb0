/*
 * entry: a response-cache entry's value, as the store keeps it (one flat byte string), made
 * from the answer the client got and read back to answer another request of the same key.
 *
 * An entry holds the answer in the client's API after every filter (translation, the model
 * name): the whole answer (for a stream, assembled from its events: replay.h), and for a
 * stream also its events as they went out (raw SSE bytes), so that a streaming request is
 * answered with the same events, without their delays. Only complete 2xx answers are made
 * into entries: a stream cut short, an error, an answer cut by the gate's output limit, are
 * not.
 */
#ifndef TG_CACHE_ENTRY_H
#define TG_CACHE_ENTRY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

/* What the original exchange was and cost: a hit's saving, and its log record. */
struct entry_meta {
    char model[96];       /* the model that answered (the target) */
    int64_t input, output, cached, cache_write; /* the provider's usage of the original */
    int64_t tokens, nusd; /* what the original was charged */
    double created;       /* wall seconds since the epoch */
};

/* Gathers an answer as the client gets it, to make an entry. */
struct entry_fill;

/*
 * A gatherer for an answer in api, a stream or not, holding at most max_bytes (past it the
 * answer is not cacheable: finish gives NULL). NULL when out of memory.
 */
struct entry_fill *entry_fill_new(enum conf_format api, int stream, size_t max_bytes);

/* Takes one event of a stream as it went to the client: raw (its SSE bytes, the blank line
 * included), its name ("" for none) and its data parsed (NULL when not JSON). Returns 0, or -1
 * when the answer stops being cacheable (too large, not a stream of api). */
int entry_fill_event(struct entry_fill *f, const char *raw, size_t rawlen, const char *name,
                     const cJSON *data);

/* Takes a whole answer's body as it went to the client, parsed (doc). Returns 0 or -1. */
int entry_fill_body(struct entry_fill *f, const char *body, size_t len, const cJSON *doc);

/*
 * The entry's value (malloc'd, *len bytes) with meta, or NULL when what was gathered is not a
 * complete answer (a stream with no end, a failed gatherer) or memory runs out.
 */
char *entry_fill_finish(struct entry_fill *f, const struct entry_meta *meta, size_t *len);

void entry_fill_free(struct entry_fill *f);

/* An entry read back: pointers into the stored value, valid while its reference is held. */
struct entry_view {
    enum conf_format api;
    int from_stream;      /* the original was a stream: events holds its raw events */
    const char *whole;    /* the whole answer's JSON text */
    size_t whole_len;
    const char *events;   /* the raw SSE bytes of its events, back to back, or NULL */
    size_t events_len;
    struct entry_meta meta;
};

/* Reads a value made by entry_fill_finish. Returns 0, or -1 when it is not one. */
int entry_parse(const void *data, size_t len, struct entry_view *out);

#endif
