/*
 * respwrite: the one writer of the gate's HTTP/1.1 response heads and of chunked framing.
 * Every response the gate sends, its own answers and the providers' relayed, has its head
 * written by respwrite_head and its chunks by respwrite_chunk/respwrite_last_chunk.
 */
#ifndef TG_RESPWRITE_H
#define TG_RESPWRITE_H

#include <stddef.h>

struct evbuffer;
struct http_header;

/* What a response head says. */
struct respwrite_head {
    int status;
    const struct http_header *fields; /* a provider's header fields, or NULL: hop-by-hop ones
                                       * are dropped, its x-request-id is renamed
                                       * x-upstream-request-id */
    int nfields;
    int drop_encoding;        /* content-encoding is dropped too (the body was decoded) */
    const char *content_type; /* or NULL */
    const char *request_id;   /* the gate's x-request-id */
    const char *extra;        /* CRLF-terminated lines, or NULL */
    size_t extra_len;
    long long content_length; /* -1: chunked, or for HTTP/1.0 ended by the close */
    int http10;               /* the client speaks HTTP/1.0: no chunked coding */
    int keep_alive;           /* connection: keep-alive, else close */
};

/* Writes the head to out. Returns the bytes written. */
size_t respwrite_head(struct evbuffer *out, const struct respwrite_head *h);

/* Writes data as one chunk (for an HTTP/1.0 client, as it is). Returns the bytes written. */
size_t respwrite_chunk(struct evbuffer *out, const char *data, size_t len, int http10);

/* Writes the last chunk that ends a chunked body (nothing for HTTP/1.0). Returns the bytes. */
size_t respwrite_last_chunk(struct evbuffer *out, int http10);

#endif
