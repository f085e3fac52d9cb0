/*
 * conn: client connections. See conn.h.
 *
 * States: IDLE (between requests) -> READING (a request is arriving) -> BUSY (handed to the
 * proxy; more input waits) -> IDLE again, or CLOSING (output drains, then the connection is
 * freed). A connection is freed only from its own event callbacks or its deferred "kick"
 * event, never from inside the parser or the proxy.
 */
#include "gate/conn.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate/arena.h"
#include "gate/bevio.h"
#include "gate/proxy.h"
#include "gate/req.h"
#include "gate/server.h"

/* pipelined input waiting behind a busy request is capped here; reading stops past it */
#define CONN_IN_HIGH (256 * 1024)

enum conn_state {
    CONN_IDLE,
    CONN_READING,
    CONN_BUSY,
    CONN_CLOSING,
};

enum conn_timer {
    TIMER_NONE,
    TIMER_IDLE,
    TIMER_HEADERS,
    TIMER_BODY,
};

struct gate_conn {
    struct gate_worker *w;
    struct bufferevent *bev;
    llhttp_t parser;
    enum conn_state state;
    struct gate_req *req;

    struct hdr_reader hr; /* the request line and headers, in pieces */

    /* set by a parser callback that rejects the request */
    enum apierr reject;
    const char *reject_msg;

    struct event *timer;
    enum conn_timer timer_kind;
    struct event *kick;
    char peer[64];
    const char *exec_start; /* the bytes llhttp is running over, to look behind a value */
    unsigned in_head : 1;   /* between requests or before the end of the headers */
    unsigned prev_cr : 1;   /* the last head byte scanned was CR */
    unsigned head_done : 1; /* on_headers_complete paused the parser */
    unsigned close_after : 1;
    unsigned tls : 1;              /* libevent owns the writing (OpenSSL bufferevent) */
    unsigned writing : 1;          /* EV_WRITE is on: libevent sends what remains */
    unsigned broken : 1;           /* a direct write failed: close from the kick */
    struct gate_conn *prev, *next; /* the worker's list */
};

static void conn_free(struct gate_conn *c);
static void conn_parse(struct gate_conn *c);

static void arm_timer(struct gate_conn *c, enum conn_timer kind)
{
    const struct conf *cf = c->w->srv->conf;
    int64_t ms = kind == TIMER_HEADERS ? cf->client_header_timeout : cf->client_idle_timeout;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    c->timer_kind = kind;
    if (kind == TIMER_NONE)
        event_del(c->timer);
    else
        event_add(c->timer, &tv);
}

static void schedule_kick(struct gate_conn *c)
{
    event_active(c->kick, EV_TIMEOUT, 0);
}

static struct gate_req *conn_new_req(struct gate_conn *c)
{
    struct arena *a = arena_new();
    struct gate_req *req;

    if (a == NULL || (req = arena_alloc(a, sizeof(*req))) == NULL) {
        arena_free(a);
        return NULL;
    }
    arena_account(a, &c->w->srv->mem); /* what requests hold, across the gate */
    req->arena = a;
    req->conn = c;
    req->w = c->w;
    req->conf = conf_ref(c->w->srv->conf);
    req->state = REQ_READING;
    req->method = -1;
    req->agent = -1;
    req->t_start = gate_now_us();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    req->wall_start = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    snprintf(req->peer, sizeof(req->peer), "%s", c->peer);
    return req;
}

/* ---- parser callbacks ---------------------------------------------------------------- */

static struct gate_conn *pconn(llhttp_t *p)
{
    return p->data;
}

static int reject(struct gate_conn *c, enum apierr kind, const char *msg)
{
    c->reject = kind;
    c->reject_msg = msg;
    return -1;
}

/* Maps a head reader's failure to the answer the client gets. */
static int head_fail(struct gate_conn *c, enum hdr_err e)
{
    if (e == HDR_TOO_LARGE)
        return reject(c, APIERR_HEADERS_TOO_LARGE, "request headers are larger than the limit");
    if (e == HDR_TOO_MANY)
        return reject(c, APIERR_HEADERS_TOO_LARGE, "request has more headers than the limit");
    return reject(c, APIERR_INTERNAL, "out of memory");
}

static int piece_add(struct gate_conn *c, const char *at, size_t len)
{
    enum hdr_err e = hdr_piece(&c->hr, at, len, c->w->srv->conf->max_header_bytes);
    return e == HDR_OK ? 0 : head_fail(c, e);
}

static int on_message_begin(llhttp_t *p)
{
    struct gate_conn *c = pconn(p);

    c->req = conn_new_req(c);
    if (c->req == NULL)
        return reject(c, APIERR_INTERNAL, "out of memory");
    c->state = CONN_READING;
    hdr_start(&c->hr);
    arm_timer(c, TIMER_HEADERS);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    return piece_add(pconn(p), at, len);
}

static int on_url_complete(llhttp_t *p)
{
    struct gate_conn *c = pconn(p);
    struct gate_req *req = c->req;
    const char *url = c->hr.piece;
    size_t len = c->hr.piece_len;
    const char *q = memchr(url, '?', len);
    size_t plen = q ? (size_t)(q - url) : len;

    req->path = arena_strndup(req->arena, url, plen);
    req->path_len = plen;
    if (q != NULL)
        req->query = arena_strndup(req->arena, q + 1, len - plen - 1);
    hdr_piece_reset(&c->hr);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    return piece_add(pconn(p), at, len);
}

static int on_header_field_complete(llhttp_t *p)
{
    struct gate_conn *c = pconn(p);
    const struct hdr_reader *hr = &c->hr;
    enum hdr_err e;

    if (hr->piece_len == 0 || hr->piece[hr->piece_len - 1] == ' ' ||
        hr->piece[hr->piece_len - 1] == '\t')
        return reject(c, APIERR_BAD_HTTP, "malformed HTTP request: white space before a colon");
    e = hdr_name_done(&c->hr, c->req->arena, c->w->srv->conf->max_headers);
    return e == HDR_OK ? 0 : head_fail(c, e);
}

/*
 * llhttp 8 accepts obs-fold (a header line continued on the next line after white space)
 * without telling; RFC 9112 5.2 lets a server refuse it, and a proxy must not pass it on.
 * A fold shows as a value piece preceded, past any white space, by a line feed, or as a
 * continuation piece that does not start where the bytes llhttp was given start.
 */
static int folded(const struct gate_conn *c, const char *at)
{
    const char *q = at;

    if (at == c->exec_start)
        return 0;
    while (q > c->exec_start && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    if (q == c->exec_start)
        return c->hr.piece_len > 0;
    return q[-1] == '\n';
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct gate_conn *c = pconn(p);

    if (folded(c, at))
        return reject(c, APIERR_BAD_HTTP, "malformed HTTP request: folded header line");
    return piece_add(c, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct gate_conn *c = pconn(p);
    struct gate_req *req = c->req;
    const struct hdr_reader *hr = &c->hr;
    enum hdr_err e;

    /* llhttp leaves obs-fold and bare line breaks inside a value: refuse them (RFC 9112 5.2) */
    if (hr->piece_len > 0 &&
        (memchr(hr->piece, '\r', hr->piece_len) || memchr(hr->piece, '\n', hr->piece_len)))
        return reject(c, APIERR_BAD_HTTP, "malformed HTTP request: folded header line");
    e = hdr_value_done(&c->hr, req->arena);
    if (e != HDR_OK)
        return head_fail(c, e);
    req->headers = c->hr.list;
    req->nheaders = c->hr.n;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct gate_conn *c = pconn(p);
    struct gate_req *req = c->req;
    const struct conf *cf = c->w->srv->conf;
    const struct http_header *h;

    req->method = p->method;
    req->http10 = p->http_major == 1 && p->http_minor == 0;
    c->head_done = 1;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > cf->max_body_bytes)
        return reject(c, APIERR_TOO_LARGE, "request body is larger than the limit");
    const char *busy = (p->flags & F_CONTENT_LENGTH) ? req_hold_body(req, p->content_length) : NULL;
    if (busy != NULL) /* before a 100 Continue: the client need not send the body */
        return reject(c, APIERR_UNAVAILABLE, busy);
    h = req_header(req, "transfer-encoding");
    if (h != NULL && strcasecmp(h->value, "chunked") != 0)
        return reject(c, APIERR_BAD_HTTP,
                      "malformed HTTP request: only chunked transfer coding "
                      "is accepted");
    h = req_header(req, "expect");
    if (h != NULL) {
        if (strcasecmp(h->value, "100-continue") != 0)
            return reject(c, APIERR_BAD_HTTP, "unsupported Expect header");
        req->expect_continue = 1;
        /* the client waits for this before it sends the body */
        bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        conn_flush(c);
    }
    req->body = evbuffer_new();
    arm_timer(c, TIMER_BODY);
    return HPE_PAUSED; /* conn_parse checks the head's line endings, then resumes */
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct gate_conn *c = pconn(p);
    struct gate_req *req = c->req;

    if (evbuffer_get_length(req->body) + len > c->w->srv->conf->max_body_bytes)
        return reject(c, APIERR_TOO_LARGE, "request body is larger than the limit");
    const char *busy = req_hold_body(req, evbuffer_get_length(req->body) + len);
    if (busy != NULL)
        return reject(c, APIERR_UNAVAILABLE, busy);
    evbuffer_add(req->body, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct gate_conn *c = pconn(p);

    c->state = CONN_BUSY;
    arm_timer(c, TIMER_NONE);
    if (!llhttp_should_keep_alive(p) || p->upgrade)
        c->close_after = 1; /* no protocol switch: answer, then close */
    return HPE_PAUSED;
}

/* shared by every worker: read-only */
static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- reading ------------------------------------------------------------------------- */

/* Answers a request the parser refused, then closes: after bad framing nothing that
 * follows on the connection can be trusted. */
static void conn_refuse(struct gate_conn *c, enum apierr kind, const char *msg)
{
    char buf[256];

    if (c->req == NULL)
        c->req = conn_new_req(c);
    if (c->req == NULL) {
        conn_free(c);
        return;
    }
    c->close_after = 1;
    c->state = CONN_BUSY;
    arm_timer(c, TIMER_NONE);
    if (c->req->method < 0)
        c->req->method = c->parser.method; /* for HEAD, no body */
    req_guess_format(c->req);
    if (kind == APIERR_BAD_HTTP && msg == NULL) {
        snprintf(buf, sizeof(buf), "malformed HTTP request: %s",
                 llhttp_get_error_reason(&c->parser));
        msg = arena_strndup(c->req->arena, buf, strlen(buf));
    }
    req_fail(c->req, kind, msg);
}

/*
 * llhttp 8 accepts a bare LF ending the request line or the header block (llhttp 9 refuses
 * it unless told to be lenient). RFC 9112 2.2 lets a server refuse it, and a proxy that passes
 * on what its peers may frame differently invites smuggling: every head byte is checked here,
 * after llhttp has read it. Returns 0, or -1 on a LF without its CR.
 */
static int head_line_endings(struct gate_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && !c->prev_cr)
            return -1;
        c->prev_cr = p[i] == '\r';
    }
    return 0;
}

static void conn_parse(struct gate_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    while (c->state == CONN_IDLE || c->state == CONN_READING) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        if (c->state == CONN_IDLE && !c->in_head) {
            c->in_head = 1;
            c->prev_cr = 0;
        }
        c->exec_start = v.iov_base;
        c->head_done = 0;
        llhttp_errno_t err = llhttp_execute(&c->parser, v.iov_base, v.iov_len);
        size_t used = v.iov_len;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
            used = (size_t)(llhttp_get_error_pos(&c->parser) - (const char *)v.iov_base);
        if (c->in_head && (err == HPE_OK || c->head_done) &&
            head_line_endings(c, v.iov_base, used) < 0) {
            conn_refuse(c, APIERR_BAD_HTTP, "malformed HTTP request: line ends with LF, not CRLF");
            return;
        }
        if (c->head_done) {
            c->in_head = 0;
            c->head_done = 0;
            if (err == HPE_PAUSED && c->state == CONN_READING) {
                /* go on with the body; a message without one completes with no more input */
                llhttp_resume(&c->parser);
                err = llhttp_execute(&c->parser, (const char *)v.iov_base + used, 0);
                if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
                    err = HPE_PAUSED;
                else if (err != HPE_OK) {
                    conn_refuse(c, c->reject_msg ? c->reject : APIERR_BAD_HTTP, c->reject_msg);
                    return;
                }
            }
        }
        if (c->req != NULL)
            c->req->bytes_in += used;
        evbuffer_drain(in, used);
        if (err == HPE_OK)
            continue;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
            break;
        if (c->reject_msg != NULL)
            conn_refuse(c, c->reject, c->reject_msg);
        else
            conn_refuse(c, APIERR_BAD_HTTP, NULL);
        return;
    }
    if (c->state == CONN_BUSY && c->req != NULL && c->req->state == REQ_READING) {
        c->req->state = REQ_UPSTREAM;
        proxy_handle(c->req);
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct gate_conn *c = arg;

    if (c->state == CONN_READING && c->timer_kind == TIMER_BODY)
        arm_timer(c, TIMER_BODY);
    conn_parse(c);
}

void conn_flush(struct gate_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (c->tls || c->writing || c->broken || evbuffer_get_length(out) == 0)
        return;
    if (bevio_write_now(c->bev) < 0) {
        c->broken = 1;
        schedule_kick(c);
        return;
    }
    if (evbuffer_get_length(out) > 0) {
        c->writing = 1;
        bufferevent_enable(c->bev, EV_WRITE);
    }
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct gate_conn *c = arg;
    size_t pending = evbuffer_get_length(bufferevent_get_output(bev));

    if (!c->tls && pending == 0 && c->writing) {
        c->writing = 0; /* all sent: back to writing directly */
        bufferevent_disable(bev, EV_WRITE);
    }
    if (c->state == CONN_CLOSING) {
        if (pending == 0)
            conn_free(c);
        return;
    }
    if (c->req != NULL && c->req->upstream_paused && pending <= CONN_OUT_LOW)
        proxy_client_drained(c->req);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct gate_conn *c = arg;

    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_free(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gate_conn *c = arg;

    switch (c->timer_kind) {
    case TIMER_IDLE:
        conn_free(c);
        break;
    case TIMER_HEADERS:
        conn_refuse(c, APIERR_HEADER_TIMEOUT, "request headers did not arrive in time");
        break;
    case TIMER_BODY:
        conn_refuse(c, APIERR_HEADER_TIMEOUT, "request body did not arrive in time");
        break;
    case TIMER_NONE:
        break;
    }
}

static void conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gate_conn *c = arg;

    if (c->broken) {
        conn_free(c);
        return;
    }
    if (c->state == CONN_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
    } else if (c->state == CONN_IDLE) {
        conn_parse(c);
    }
}

/* ---- lifecycle ----------------------------------------------------------------------- */

void conn_accept(struct gate_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    struct gate_conn *c;
    struct bufferevent *bev;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (w->srv->listen_ctx != NULL) {
        SSL *ssl = SSL_new(w->srv->listen_ctx);
        bev = ssl ? bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                   BEV_OPT_CLOSE_ON_FREE)
                  : NULL;
        if (bev == NULL && ssl != NULL)
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    c->w = w;
    c->bev = bev;
    c->timer = evtimer_new(w->base, conn_timer_cb, c);
    c->kick = event_new(w->base, -1, 0, conn_kick_cb, c);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "%s:%d", a, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%d", a, ntohs(s6->sin6_port));
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(bev, EV_READ, 0, CONN_IN_HIGH);
    bufferevent_setwatermark(bev, EV_WRITE, CONN_OUT_LOW, 0);
    c->tls = w->srv->listen_ctx != NULL;
    bufferevent_enable(bev, c->tls ? EV_READ | EV_WRITE : EV_READ);
    atomic_fetch_add_explicit(&w->stats.open_conns, 1, memory_order_relaxed);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    arm_timer(c, TIMER_IDLE);
}

static void conn_free(struct gate_conn *c)
{
    if (c->req != NULL) {
        struct gate_req *req = c->req;
        c->req = NULL;
        proxy_client_gone(req);
    }
    atomic_fetch_sub_explicit(&c->w->stats.open_conns, 1, memory_order_relaxed);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    event_free(c->timer);
    event_free(c->kick);
    hdr_free(&c->hr);
    free(c);
}

struct evbuffer *conn_output(struct gate_conn *c)
{
    return bufferevent_get_output(c->bev);
}

int conn_keep_alive(const struct gate_conn *c)
{
    return !c->close_after;
}

void conn_set_close(struct gate_conn *c)
{
    c->close_after = 1;
}

void conn_request_done(struct gate_conn *c)
{
    conn_flush(c);
    c->req = NULL;
    c->reject_msg = NULL;
    if (c->w->draining)
        c->close_after = 1;
    if (c->close_after) {
        c->state = CONN_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        schedule_kick(c);
        return;
    }
    c->state = CONN_IDLE;
    llhttp_resume(&c->parser);
    arm_timer(c, TIMER_IDLE);
    schedule_kick(c);
}

int conn_drain(struct gate_worker *w)
{
    int open = 0;

    for (struct gate_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            conn_free(c);
            continue;
        }
        if (c->state != CONN_BUSY)
            c->close_after = 1;
        open++;
    }
    return open;
}

void conn_close_all(struct gate_worker *w)
{
    while (w->conns != NULL)
        conn_free(w->conns);
}
