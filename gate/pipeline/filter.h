/*
 * filter: the chain an answer passes through on its way from its source to the client, as
 * h2o's ostreams: each filter sees the head, each event of a stream, the body, and the end, and
 * hands each on to the next (or drops an event). The gate's chain is usage, then count, then
 * the client writer (filter_chain_build); translation and cache fill will be filters added
 * there. A hook returns 0 to go on, or -1 to stop relaying (after recording why: req->stop_kind
 * and stop_why); a NULL hook passes on.
 */
#ifndef TG_FILTER_H
#define TG_FILTER_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct gate_req;
struct http_header;
struct resp_filter;

/* One event of a stream. */
struct resp_event {
    const char *name;  /* the event's name, "" for none */
    const cJSON *data; /* its data parsed as JSON, or NULL */
    int json;          /* its data looked like JSON (whether or not it parsed) */
    const char *raw;   /* the event as the provider sent it */
    size_t raw_len;
    const char *text;  /* its data lines joined (the text data parsed from), or NULL */
    size_t text_len;
    int drop; /* set by a filter: the client does not get it */
};

/* A body: a whole answer, or what a stream left after its last event. */
struct resp_body {
    const char *data;
    size_t len;
    const cJSON *doc; /* a whole answer parsed, or NULL (not JSON, or not read) */
    int read;         /* a whole 2xx answer with bytes: the gate reads it for usage and count */
};

struct resp_filter_type {
    const char *name;
    int (*head)(struct resp_filter *f, struct gate_req *req, int status,
                const struct http_header *h, int n);
    int (*event)(struct resp_filter *f, struct gate_req *req, struct resp_event *ev);
    int (*body)(struct resp_filter *f, struct gate_req *req, const struct resp_body *b);
    int (*end)(struct resp_filter *f, struct gate_req *req);
};

/* One filter in a request's chain, in its arena. */
struct resp_filter {
    const struct resp_filter_type *type;
    struct resp_filter *next;
    void *state; /* the filter's own, or NULL */
};

/* The filters of the gate's chain, in filter_usage.c, filter_count.c and filter_writer.c. */
extern const struct resp_filter_type filter_usage;
extern const struct resp_filter_type filter_count;
extern const struct resp_filter_type filter_writer;

/* Translation of the answer into the client's API (filter_xlate.c, routing/xlate.h): added
 * before the writer when the target speaks the other API. */
extern const struct resp_filter_type filter_xlate;

/* The model name the client asked for in an answer of its own API, for a routing rule with
 * rewrite_model (filter_model.c): added before the writer. */
extern const struct resp_filter_type filter_model;

/* A response-cache miss's answer gathered and stored when it completes (filter_cachefill.c):
 * added just before the writer when the lookup said it may be stored. */
extern const struct resp_filter_type filter_cachefill;

/* Adds a filter of type t at the end of req's chain (req->chain). Returns 0, or -1 when out of
 * memory. */
int filter_push(struct gate_req *req, const struct resp_filter_type *t, void *state);

/* Builds the gate's chain for req: usage, count, the client writer. Returns 0, or -1 when out
 * of memory. */
int filter_chain_build(struct gate_req *req);

/* Hands each piece to the filter after f, or to the first of req's chain with f NULL. Return
 * 0, or -1 when a filter stopped the relay. */
int filter_head(struct resp_filter *f, struct gate_req *req, int status,
                const struct http_header *h, int n);
int filter_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev);
int filter_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b);
int filter_end(struct resp_filter *f, struct gate_req *req);

/* The client writer: writes what it held back until the ledger had the record (a whole
 * answer's head and body, a stream's last chunk). The client must be there. */
void filter_writer_tail(struct gate_req *req);

#endif
