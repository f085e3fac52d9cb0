/*
 * reqparse: reading one client request from bytes. See reqparse.h.
 */
#include "gate/http/reqparse.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "gate/util/arena.h"

static struct reqparse *rpof(llhttp_t *p)
{
    return p->data;
}

static int reject(struct reqparse *rp, enum apierr kind, const char *msg)
{
    rp->reject = kind;
    rp->reject_msg = msg;
    return -1;
}

/* Asks the owner to count total bytes of body in the memory in flight (reqparse.h: hold). */
static const char *hold(struct reqparse *rp, uint64_t total)
{
    return rp->hold != NULL ? rp->hold(rp->ctx, total) : NULL;
}

/* Maps a head reader's failure to the answer the client gets. */
static int head_fail(struct reqparse *rp, enum hdr_err e)
{
    if (e == HDR_TOO_LARGE)
        return reject(rp, APIERR_HEADERS_TOO_LARGE, "request headers are larger than the limit");
    if (e == HDR_TOO_MANY)
        return reject(rp, APIERR_HEADERS_TOO_LARGE, "request has more headers than the limit");
    return reject(rp, APIERR_INTERNAL, "out of memory");
}

static int piece_add(struct reqparse *rp, const char *at, size_t len)
{
    enum hdr_err e = hdr_piece(&rp->hr, at, len, rp->conf->max_header_bytes);
    return e == HDR_OK ? 0 : head_fail(rp, e);
}

static int body_over(const struct reqparse *rp, size_t more)
{
    size_t have = evbuffer_get_length(rp->msg->body) + rp->framing_bytes;
    return more > rp->conf->max_body_bytes || have + more > rp->conf->max_body_bytes;
}

/* Chunk extensions and trailer fields: read by llhttp, kept nowhere, counted against the body
 * cap (else a client could send them without end). */
static int framing_add(struct reqparse *rp, size_t len)
{
    if (body_over(rp, len))
        return reject(rp, APIERR_TOO_LARGE, "request body is larger than the limit");
    rp->framing_bytes += len;
    return 0;
}

/* Trailer fields follow the last chunk. They never become header fields (RFC 9110 6.5.1): an
 * authorization sent there must not authenticate, and nothing of them is forwarded. */
static int trailing(const llhttp_t *p)
{
    return (p->flags & F_TRAILING) != 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct reqparse *rp = rpof(p);

    rp->msg = rp->begin(rp->ctx);
    if (rp->msg == NULL)
        return reject(rp, APIERR_INTERNAL, "out of memory");
    hdr_start(&rp->hr);
    rp->framing_bytes = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    return piece_add(rpof(p), at, len);
}

static int on_url_complete(llhttp_t *p)
{
    struct reqparse *rp = rpof(p);
    struct http_msg *req = rp->msg;
    const char *url = rp->hr.piece;
    size_t len = rp->hr.piece_len;

    /* llhttp lets white space, bytes over 0x7F and a fragment through; the query goes into the
     * provider's request line as it is */
    if (!hdr_target_ok(url, len))
        return reject(rp, APIERR_BAD_HTTP,
                      "malformed HTTP request: the request target has a byte that must be "
                      "percent-encoded (a control byte, white space or a byte over 0x7F) or a "
                      "fragment ('#')");
    const char *q = memchr(url, '?', len);
    size_t plen = q ? (size_t)(q - url) : len;

    req->path = arena_strndup(req->arena, url, plen);
    req->path_len = plen;
    if (q != NULL)
        req->query = arena_strndup(req->arena, q + 1, len - plen - 1);
    hdr_piece_reset(&rp->hr);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct reqparse *rp = rpof(p);

    return trailing(p) ? framing_add(rp, len) : piece_add(rp, at, len);
}

static int on_header_field_complete(llhttp_t *p)
{
    struct reqparse *rp = rpof(p);
    const struct hdr_reader *hr = &rp->hr;
    enum hdr_err e;

    if (trailing(p))
        return 0;
    if (hr->piece_len == 0 || hr->piece[hr->piece_len - 1] == ' ' ||
        hr->piece[hr->piece_len - 1] == '\t')
        return reject(rp, APIERR_BAD_HTTP, "malformed HTTP request: white space before a colon");
    /* llhttp 8 takes "content length" as one name: a peer may read it otherwise */
    if (!hdr_name_ok(hr->piece, hr->piece_len))
        return reject(rp, APIERR_BAD_HTTP,
                      "malformed HTTP request: a header name has a character that is not "
                      "allowed (RFC 9110 token characters only)");
    e = hdr_name_done(&rp->hr, rp->msg->arena, rp->conf->max_headers);
    return e == HDR_OK ? 0 : head_fail(rp, e);
}

/*
 * llhttp 8 accepts obs-fold (a header line continued on the next line after white space)
 * without telling; RFC 9112 5.2 lets a server refuse it, and a proxy must not pass it on.
 * A fold shows as a value piece preceded, past any white space, by a line feed, or as a
 * continuation piece that does not start where the bytes llhttp was given start. An empty
 * value ("x-empty:" then CRLF) is a zero-length piece at the start of the next line: valid
 * (RFC 9110 5.5), and no fold, since nothing is continued.
 */
static int folded(const struct reqparse *rp, const char *at, size_t len)
{
    const char *q = at;

    if (len == 0 || at == rp->exec_start)
        return 0;
    while (q > rp->exec_start && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    if (q == rp->exec_start)
        return rp->hr.piece_len > 0;
    return q[-1] == '\n';
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct reqparse *rp = rpof(p);

    if (trailing(p))
        return framing_add(rp, len);
    if (folded(rp, at, len))
        return reject(rp, APIERR_BAD_HTTP, "malformed HTTP request: folded header line");
    return piece_add(rp, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct reqparse *rp = rpof(p);
    struct http_msg *req = rp->msg;
    const struct hdr_reader *hr = &rp->hr;
    enum hdr_err e;

    if (trailing(p))
        return 0;
    /* llhttp leaves obs-fold and bare line breaks inside a value: refuse them (RFC 9112 5.2) */
    if (hr->piece_len > 0 &&
        (memchr(hr->piece, '\r', hr->piece_len) || memchr(hr->piece, '\n', hr->piece_len)))
        return reject(rp, APIERR_BAD_HTTP, "malformed HTTP request: folded header line");
    e = hdr_value_done(&rp->hr, req->arena);
    if (e != HDR_OK)
        return head_fail(rp, e);
    req->headers = rp->hr.list;
    req->nheaders = rp->hr.n;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct reqparse *rp = rpof(p);
    struct http_msg *req = rp->msg;
    const struct http_header *h;

    req->method = p->method;
    req->http10 = p->http_major == 1 && p->http_minor == 0;
    rp->head_done = 1;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > rp->conf->max_body_bytes)
        return reject(rp, APIERR_TOO_LARGE, "request body is larger than the limit");
    /* before any 100 Continue: a client refused for memory need not send the body */
    const char *busy = (p->flags & F_CONTENT_LENGTH) ? hold(rp, p->content_length) : NULL;
    if (busy != NULL)
        return reject(rp, APIERR_UNAVAILABLE, busy);
    h = http_msg_header(req, "transfer-encoding");
    if (h != NULL && strcasecmp(h->value, "chunked") != 0)
        return reject(rp, APIERR_BAD_HTTP,
                      "malformed HTTP request: only chunked transfer coding "
                      "is accepted");
    h = http_msg_header(req, "expect");
    if (h != NULL) {
        if (strcasecmp(h->value, "100-continue") != 0)
            return reject(rp, APIERR_BAD_HTTP, "unsupported Expect header");
        req->expect_continue = 1; /* the caller sends 100 when it has checked the key */
    }
    req->body = evbuffer_new();
    if (req->body == NULL)
        return reject(rp, APIERR_INTERNAL, "out of memory");
    return HPE_PAUSED; /* reqparse_exec checks the head's line endings, then RP_HEAD */
}

/* A chunk's declared size is known before its data: refused at once when it cannot fit. */
static int on_chunk_header(llhttp_t *p)
{
    struct reqparse *rp = rpof(p);

    if (body_over(rp, (size_t)(p->content_length > SIZE_MAX ? SIZE_MAX : p->content_length)))
        return reject(rp, APIERR_TOO_LARGE, "request body is larger than the limit");
    return 0;
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return framing_add(rpof(p), len);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct reqparse *rp = rpof(p);

    if (body_over(rp, len))
        return reject(rp, APIERR_TOO_LARGE, "request body is larger than the limit");
    const char *busy = hold(rp, evbuffer_get_length(rp->msg->body) + len);
    if (busy != NULL)
        return reject(rp, APIERR_UNAVAILABLE, busy);
    if (evbuffer_add(rp->msg->body, at, len) < 0)
        return reject(rp, APIERR_INTERNAL, "out of memory");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    rpof(p)->msg_done = 1;
    return HPE_PAUSED;
}

/* shared by every connection: read-only */
static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_chunk_header = on_chunk_header,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void reqparse_init(struct reqparse *rp, struct http_msg *(*begin)(void *ctx), void *ctx)
{
    memset(rp, 0, sizeof(*rp));
    llhttp_init(&rp->parser, HTTP_REQUEST, &parser_settings);
    rp->parser.data = rp;
    rp->begin = begin;
    rp->ctx = ctx;
    rp->in_head = 1;
}

/*
 * llhttp 8 accepts a bare LF ending the request line or the header block (llhttp 9 refuses
 * it unless told to be lenient). RFC 9112 2.2 lets a server refuse it, and a proxy that passes
 * on what its peers may frame differently invites smuggling: every head byte is checked here,
 * after llhttp has read it. Returns 0, or -1 on a LF without its CR.
 */
static int head_line_endings(struct reqparse *rp, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && !rp->prev_cr)
            return -1;
        rp->prev_cr = p[i] == '\r';
    }
    return 0;
}

enum reqparse_step reqparse_exec(struct reqparse *rp, const char *data, size_t len, size_t *used)
{
    static const char none[1];
    llhttp_errno_t err;

    if (data == NULL || len == 0)
        data = none, len = 0;
    if (rp->head_paused) {
        rp->head_paused = 0;
        llhttp_resume(&rp->parser);
    }
    rp->exec_start = data;
    rp->head_done = 0;
    err = llhttp_execute(&rp->parser, data, len);
    *used = len;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
        *used = (size_t)(llhttp_get_error_pos(&rp->parser) - data);
    if (rp->in_head && (err == HPE_OK || rp->head_done) && head_line_endings(rp, data, *used) < 0) {
        reject(rp, APIERR_BAD_HTTP, "malformed HTTP request: line ends with LF, not CRLF");
        return RP_ERROR;
    }
    if (err == HPE_OK)
        return RP_MORE;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        if (rp->head_done) {
            rp->in_head = 0;
            rp->head_paused = 1;
            return RP_HEAD;
        }
        return rp->msg_done ? RP_DONE : RP_MORE;
    }
    if (rp->reject_msg == NULL)
        rp->reject = APIERR_BAD_HTTP;
    return RP_ERROR;
}

int reqparse_keep_alive(const struct reqparse *rp)
{
    return llhttp_should_keep_alive(&rp->parser) && !rp->parser.upgrade;
}

void reqparse_next(struct reqparse *rp)
{
    rp->msg = NULL;
    rp->reject_msg = NULL;
    rp->msg_done = 0;
    rp->in_head = 1;
    rp->prev_cr = 0;
    llhttp_resume(&rp->parser);
}

const char *reqparse_reason(const struct reqparse *rp)
{
    return llhttp_get_error_reason(&rp->parser);
}

void reqparse_free(struct reqparse *rp)
{
    hdr_free(&rp->hr);
}

const struct http_header *http_msg_header(const struct http_msg *msg, const char *name)
{
    size_t n = strlen(name);

    for (int i = 0; i < msg->nheaders; i++)
        if (msg->headers[i].name_len == n && memcmp(msg->headers[i].name, name, n) == 0)
            return &msg->headers[i];
    return NULL;
}
