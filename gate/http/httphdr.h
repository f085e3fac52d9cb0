/*
 * httphdr: gathering a message head that llhttp hands over in pieces. llhttp calls back with
 * spans of its input, and a URL, a header name or a value may be cut across two reads; the
 * reader joins the pieces, enforces the head's caps and keeps the finished headers in the
 * request's arena. Used for client requests (conn) and provider responses (upstream).
 */
#ifndef TG_HTTPHDR_H
#define TG_HTTPHDR_H

#include <stddef.h>

struct arena;

struct http_header {
    char *name; /* lower-cased */
    size_t name_len;
    char *value; /* trailing white space trimmed */
    size_t value_len;
};

enum hdr_err {
    HDR_OK = 0,
    HDR_TOO_LARGE = -1, /* the head is over its byte cap */
    HDR_TOO_MANY = -2,  /* more headers than the cap */
    HDR_NOMEM = -3,
};

struct hdr_reader {
    char *piece; /* the URL, name or value being read; NUL-terminated */
    size_t piece_len, piece_cap;
    size_t bytes; /* head bytes so far */
    char *name;   /* the finished name waiting for its value, in the arena */
    size_t name_len;
    struct http_header *list; /* in the arena */
    int n, cap;
};

/* Starts a new head; the list of the previous one is forgotten (its arena owns it). */
void hdr_start(struct hdr_reader *r);

/* Adds a piece of the current URL, name or value. Fails past max_bytes for the whole head. */
enum hdr_err hdr_piece(struct hdr_reader *r, const char *at, size_t len, size_t max_bytes);

/* Empties the current piece (after the caller has used a finished URL). */
void hdr_piece_reset(struct hdr_reader *r);

/* The current piece ends a header name: lower-cased into the arena. Fails past max_headers. */
enum hdr_err hdr_name_done(struct hdr_reader *r, struct arena *a, int max_headers);

/* The current piece ends the value of the last name: the header joins the list. */
enum hdr_err hdr_value_done(struct hdr_reader *r, struct arena *a);

/*
 * Whether name[0..len) is a field name as RFC 9110 5.1 defines it: one or more token
 * characters (letters, digits and !#$%&'*+-.^_`|~). Returns 1 or 0; a space, a control byte or
 * a byte over 0x7F makes it 0.
 */
int hdr_name_ok(const char *name, size_t len);

/*
 * Whether a request target (path and query, as the client sent it) may be passed on: 1 when
 * every byte is visible ASCII (0x21 to 0x7E) other than '#' (a fragment is never sent in a
 * request, RFC 9110 7.1), else 0. Control bytes, white space and bytes over 0x7F must be
 * percent-encoded by the client.
 */
int hdr_target_ok(const char *target, size_t len);

/*
 * Whether a client's header (its lower-case name) is never passed on to an upstream: hop-by-hop
 * ones (RFC 9110 7.6.1), the framing the gate writes itself (host, content-length,
 * accept-encoding, expect), the request id it sets, proxy credentials, and the gate's own
 * x-tokengate-* headers. Returns 1 or 0. A header the client's Connection names is hop-by-hop
 * too: the caller checks that.
 */
int hdr_not_forwarded(const char *name);

/* Frees the piece buffer; the reader may be started again. */
void hdr_free(struct hdr_reader *r);

#endif
