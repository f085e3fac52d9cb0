/*
 * reqparse: reading one client request from bytes, with llhttp and the gate's own checks.
 *
 * llhttp 8 is lenient where a proxy must not be, so every head byte is checked after it: line
 * ends are CRLF, no obs-fold, header names are RFC 9110 tokens, the request target is visible
 * ASCII without a fragment, the only transfer coding is chunked, the only Expect is
 * 100-continue. The body is held to limits.max_body_bytes as it arrives: a Content-Length or a
 * chunk size that declares more is refused at once, and chunk extensions and trailer fields
 * (which are dropped, never read as headers, RFC 9110 6.5.1) count against the same cap.
 *
 * No sockets and no timers: conn feeds it what a connection reads, and the fuzzer feeds it
 * bytes. It pauses at the end of each head and each request so that the caller can act there.
 */
#ifndef TG_REQPARSE_H
#define TG_REQPARSE_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "gate/api/apierr.h"
#include "gate/http/httphdr.h"

struct arena;
struct conf;
struct evbuffer;

/*
 * A client's request as HTTP: what reqparse fills. Its owner (the request layer) makes it
 * zeroed, with its arena and method -1, and frees it; the strings and the header list live in
 * the arena.
 */
struct http_msg {
    struct arena *arena;
    const struct conf *conf;    /* the snapshot it is read under (its owner's), or NULL */
    int method;                 /* llhttp_method_t, -1 before the head */
    char *path;                 /* without the query */
    size_t path_len;
    char *query;                /* after '?', or NULL */
    struct http_header *headers;
    int nheaders;
    struct evbuffer *body;      /* made at the end of the head; the owner frees it */
    int expect_continue;        /* Expect: 100-continue (the owner sends the 100) */
    int http10;                 /* an HTTP/1.0 client: no chunked coding, close at the end */
    uint64_t bytes_in;          /* counted by the connection */
};

/* Finds a header by lower-case name. Returns NULL when absent. */
const struct http_header *http_msg_header(const struct http_msg *msg, const char *name);

enum reqparse_step {
    RP_MORE,  /* every byte given was read; more are needed */
    RP_HEAD,  /* the head is complete and checked (msg->headers, path, query, method): call
               * reqparse_exec again, with the bytes after it or none, to read the body */
    RP_DONE,  /* the request is complete; nothing more is read until reqparse_next */
    RP_ERROR, /* refused: reject and reject_msg say why (msg NULL: llhttp's reason) */
};

struct reqparse {
    llhttp_t parser;
    struct hdr_reader hr;    /* the request line and headers, in pieces */
    const struct conf *conf; /* the limits: set by the caller before each reqparse_exec */

    /* called when a request's first byte arrives: returns the message to fill (zeroed, with
     * its arena, method -1), or NULL when out of memory */
    struct http_msg *(*begin)(void *ctx);
    /* optional (NULL: nothing is counted): counts the first total bytes of the body in the
     * memory in flight; returns NULL, or the message of the 503 to answer */
    const char *(*hold)(void *ctx, uint64_t total);
    void *ctx;
    struct http_msg *msg; /* the request being read, NULL between requests */

    enum apierr reject;     /* set with reject_msg by the check that refused the request */
    const char *reject_msg; /* static text */

    const char *exec_start;   /* the bytes llhttp is running over, to look behind a value */
    size_t framing_bytes;     /* chunk extensions and trailers of this body */
    unsigned in_head : 1;     /* before the end of the current head */
    unsigned prev_cr : 1;     /* the last head byte scanned was CR */
    unsigned head_done : 1;   /* on_headers_complete paused the parser */
    unsigned head_paused : 1; /* paused after RP_HEAD: the next exec resumes */
    unsigned msg_done : 1;    /* on_message_complete paused the parser */
};

/* Starts a parser for a connection; begin makes each request's object. Never fails. */
void reqparse_init(struct reqparse *rp, struct http_msg *(*begin)(void *ctx), void *ctx);

/*
 * Reads data[0..len) (len may be 0, to go on after RP_HEAD with nothing more). *used gets the
 * number of bytes read; the caller drops them and gives the rest in the next call. Fills
 * rp->msg (headers, path, query, method, body) as it goes. Returns the step reached; after
 * RP_ERROR the parser is unusable and the connection must close.
 */
enum reqparse_step reqparse_exec(struct reqparse *rp, const char *data, size_t len, size_t *used);

/* After RP_DONE: whether the connection may carry another request (keep-alive, no upgrade). */
int reqparse_keep_alive(const struct reqparse *rp);

/* After RP_DONE: forgets the request (its owner frees it) and reads the next one. */
void reqparse_next(struct reqparse *rp);

/* llhttp's reason for an RP_ERROR that no check of the gate's own gave. */
const char *reqparse_reason(const struct reqparse *rp);

/* Frees what the parser holds (not the request). */
void reqparse_free(struct reqparse *rp);

#endif
