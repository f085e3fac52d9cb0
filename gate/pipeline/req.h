/*
 * req: one client request, from its first byte to its log record.
 *
 * A request lives in its own arena; it holds a reference to the config snapshot it started
 * with. Its lifecycle is an explicit state machine and it ends in exactly one place,
 * req_finish(), which logs it, counts it and hands the connection back.
 */
#ifndef TG_REQ_H
#define TG_REQ_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "gate/api/apierr.h"
#include "gate/api/dialect.h"
#include "gate/budget/budget.h"
#include "gate/api/endpoint.h"
#include "gate/http/httphdr.h"
#include "gate/http/sse.h"
#include "gate/pipeline/tcount.h"
#include "gate/api/usage.h"

struct arena;
struct decode;
struct evbuffer;
struct event;
struct gate_conn;
struct gate_worker;
struct upstream_conn;

enum req_state {
    REQ_READING,    /* headers and body arriving */
    REQ_UPSTREAM,   /* sent upstream, waiting for or relaying the response */
    REQ_DONE,       /* response written; finishing */
};

struct gate_req {
    struct arena *arena;
    struct gate_conn *conn;
    struct gate_worker *w;
    struct conf *conf;
    enum req_state state;

    /* the client's request */
    int method;                     /* llhttp_method_t */
    char *path;                     /* without the query */
    size_t path_len;
    char *query;                    /* after '?', or NULL */
    struct http_header *headers;
    int nheaders, headers_cap;
    struct evbuffer *body;
    int expect_continue;
    int http10;                     /* an HTTP/1.0 client: no chunked coding, close at the end */

    enum endpoint ep;
    const struct api_dialect *client_api;   /* the API the client speaks (its key, body, our
                                             * errors), NULL for none: see dialect.h */
    const struct api_dialect *upstream_api; /* the API the provider answers in (path, key,
                                             * usage, output text); NULL for none */
    enum conf_format fmt;           /* format of errors the gate writes */
    char id[80];
    char peer[64];

    /* what the gate read from the body */
    cJSON *json;
    const char *model;              /* as the client asked */
    const char *upstream_model;     /* as sent upstream when renamed, else NULL */
    const struct conf_provider *prov;
    int stream;
    int usage_injected;

    /* the upstream exchange */
    struct upstream_conn *uc;
    struct evbuffer *up_request;    /* head and body as sent, kept for one retry */
    int up_status;
    const struct http_header *up_headers; /* the provider's, in this arena */
    int n_up_headers;
    int up_sse;                     /* the response is an event stream */
    struct evbuffer *up_body;       /* a non-stream response, gathered */
    struct sse_parser sse;
    struct decode *dec;             /* undoes the provider's gzip or deflate, or NULL */
    int64_t out_limit;              /* output tokens past which a stream is cut, -1 for none */
    enum apierr stop_kind;          /* why relaying the answer must stop (proxy.c), */
    const char *stop_why;           /* NULL while it goes on */
    int head_sent;                  /* the client has our status line */
    int upstream_paused;            /* reading upstream is off: the client is slow */
    int draining;                   /* the client is gone: the stream is read on a moment */
    struct event *drain_ev;         /* ... until this fires */
    size_t drained;                 /* bytes read since */
    int detached;                   /* going on without its client (counted in its worker) */
    int retried;

    /* identity and spend (spend.c) */
    int agent;                      /* the caller's scope in conf.scopes, -1 for none */
    char key_id[24];                /* the key's public id, "" for none */
    const struct conf_model *cm;    /* the model's entry: its price */
    struct budget_resv resv;
    const char *decision;           /* for the ledger: admitted, rejected, unauthenticated ... */
    int forwarded;                  /* the request went upstream */
    int upstream_failed;            /* the exchange failed: reset, timeout, bad response */
    int out_unreadable;             /* the provider's answer could not be read (it does not
                                     * parse, or it is over the size cap): charged no less
                                     * than the reservation when it was a 2xx (spend.c) */
    int settle_state;               /* 0 not settled, 1 waiting for the ledger's commit, 2 done */
    int finish_asked;               /* req_finish came while waiting */
    int tail;                       /* what proxy_settled still has to write (proxy.c) */
    int tc_finished;                /* tcount_finish ran */
    int ledger_ok;
    uint32_t jslot;                 /* its slot in the crash journal, 0 for none (spend.c) */
    int64_t charged_tokens, charged_nusd;
    struct gate_req *settled_next;  /* in the worker's settled queue */

    /* the record */
    struct usage usage;
    struct tcount tc;               /* the gate's own count */
    int status;
    uint64_t bytes_in, bytes_out;
    int64_t t_start, t_first_byte, t_end; /* us, monotonic */
    double wall_start;                    /* seconds since the epoch */
    const char *error;                    /* why it failed, for the log */
};

/*
 * Gives the request its id, once: the client's x-request-id when it is 1 to 64 characters of
 * [A-Za-z0-9._:-], else a new random one.
 */
void req_assign_id(struct gate_req *req);

/*
 * Sets the format of the gate's errors for this request from what is known of it: the
 * endpoint, else an Anthropic-looking path or an anthropic-version header.
 */
void req_guess_format(struct gate_req *req);

/* Finds a request header by lower-case name. Returns NULL when absent. */
const struct http_header *req_header(const struct gate_req *req, const char *name);

/*
 * Answers the request with a gate error in the request's API format and finishes it. For a
 * stream already under way, ends it with an error event instead.
 */
void req_fail(struct gate_req *req, enum apierr kind, const char *message);

/*
 * Writes a complete response: status, content type, the body; adds x-request-id, framing and
 * Connection headers. extra_headers is a CRLF-terminated block or NULL.
 */
void req_respond(struct gate_req *req, int status, const char *ctype, const char *extra_headers,
                 const char *body, size_t len);

/*
 * Counts the first total bytes of the request's body (its declared Content-Length, or what
 * has come of a chunked body) in the memory that requests in flight hold across the gate,
 * twice: the body and the copy of it sent upstream. Returns NULL, or the message of the 503 to
 * answer when that would pass limits.max_memory_in_flight (nothing more is then counted).
 */
const char *req_hold_body(struct gate_req *req, uint64_t total);

/*
 * Bounds what follows (the body's parse, checks and rewrite): the request's arena may not grow
 * past limits.max_request_memory, nor requests in flight past limits.max_memory_in_flight.
 */
void req_memory_bound(struct gate_req *req);

/*
 * Ends the bound of req_memory_bound. Returns 0, or -1 after answering (as req_fail_memory)
 * when an allocation was refused in between.
 */
int req_memory_unbound(struct gate_req *req);

/*
 * Answers a request whose memory ran out by the reason its arena gives: 413 naming
 * limits.max_request_memory, 503 with retry-after naming limits.max_memory_in_flight, else
 * 500. Finishes the request.
 */
void req_fail_memory(struct gate_req *req);

/* Ends the request: logs it, counts it, frees it and lets the connection go on. */
void req_finish(struct gate_req *req);

#endif
