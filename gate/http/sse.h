/*
 * sse: an incremental parser for server-sent events (text/event-stream).
 *
 * Bytes go in as they arrive from upstream, in pieces of any size; every complete event comes
 * out once, with its raw bytes (to relay them unchanged) and its parsed "event" and "data"
 * fields (to read usage from them). Line endings may be LF, CRLF or CR, as the spec allows.
 */
#ifndef TG_SSE_H
#define TG_SSE_H

#include <stddef.h>

struct sse_event {
    const char *raw;     /* the event's bytes, blank line included */
    size_t raw_len;
    const char *name;    /* "event:" field, "" when absent */
    size_t name_len;
    const char *data;    /* "data:" lines joined by "\n", "" when absent; NUL-terminated */
    size_t data_len;
};

/* Returns 0 to go on; non-zero stops sse_feed, which returns that value. */
typedef int (*sse_event_cb)(void *arg, const struct sse_event *ev);

struct sse_parser {
    char *buf;
    size_t len, cap;
    size_t pos;          /* start of the first line not yet read */
    size_t ev_start;     /* start of the event being read */
    char *data;          /* the current event's data, joined */
    size_t data_len, data_cap;
    size_t name_off, name_len;
    int has_data;
    size_t max;          /* cap on one event's size */
};

/* Prepares p; max caps one event's size (bytes). */
void sse_init(struct sse_parser *p, size_t max);

/* Releases what p holds; p may be initialised again. */
void sse_reset(struct sse_parser *p);

/*
 * Feeds len bytes and calls cb for every event they complete. Returns 0, the callback's
 * non-zero value, or -1 when an event grows past the cap or memory runs out.
 */
int sse_feed(struct sse_parser *p, const char *data, size_t len, sse_event_cb cb, void *arg);

/* Bytes held that do not yet form a whole event (to relay them when a stream ends early). */
const char *sse_pending(const struct sse_parser *p, size_t *len);

#endif
