/*
 * conn: client connections. See conn.h.
 *
 * States: IDLE (between requests) -> READING (a request is arriving) -> BUSY (handed to the
 * request layer; more input waits) -> IDLE again, or CLOSING (output drains, then the
 * connection is freed). A connection is freed only from its own event callbacks or its
 * deferred "kick" event, never from inside the parser or the request layer, which it calls
 * through the worker's struct conn_handler only (it knows nothing of the pipeline).
 */
#include "gate/http/conn.h"

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

#include "gate/util/arena.h"
#include "gate/http/bevio.h"
#include "gate/http/reqparse.h"
#include "gate/core/worker.h"

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
    struct reqparse rp; /* llhttp and the gate's checks of what the client sends */
    enum conn_state state;
    const struct conn_handler *h; /* the request layer */
    void *req;                    /* its request, NULL between requests */
    struct http_msg *msg;         /* ... and what reqparse fills of it */
    const char *gone_why;         /* why the client is gone, for the request's log, or NULL */

    struct event *timer;
    enum conn_timer timer_kind;
    struct event *kick;
    char peer[64];
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
    const struct conf *cf = c->msg != NULL && c->msg->conf != NULL ? c->msg->conf : c->w->conf;
    int64_t ms = kind == TIMER_HEADERS ? cf->client_header_timeout
                 : kind == TIMER_BODY  ? cf->client_body_timeout
                                       : cf->client_idle_timeout;
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

/* A new request of the request layer; sets c->req and c->msg. Returns -1 when out of memory. */
static int conn_new_req(struct gate_conn *c)
{
    c->req = c->h->begin(c->w, c, c->peer, &c->msg);
    if (c->req == NULL) {
        c->msg = NULL;
        return -1;
    }
    return 0;
}

/* The parser's begin hook: a request's first byte has arrived. */
static struct http_msg *conn_begin(void *arg)
{
    struct gate_conn *c = arg;

    if (conn_new_req(c) < 0)
        return NULL;
    c->state = CONN_READING;
    arm_timer(c, TIMER_HEADERS);
    return c->msg;
}

/* The parser's hold hook: the body's bytes in the memory in flight. */
static const char *conn_hold(void *arg, uint64_t total)
{
    struct gate_conn *c = arg;

    return c->h->hold_body(c->req, total);
}

/* ---- reading ------------------------------------------------------------------------- */

/* Answers a request the parser refused, then closes: after bad framing nothing that
 * follows on the connection can be trusted. */
static void conn_refuse(struct gate_conn *c, enum apierr kind, const char *msg)
{
    char buf[256];

    if (c->req == NULL && conn_new_req(c) < 0) {
        conn_free(c);
        return;
    }
    c->close_after = 1;
    c->state = CONN_BUSY;
    arm_timer(c, TIMER_NONE);
    if (c->msg->method < 0)
        c->msg->method = c->rp.parser.method; /* for HEAD, no body */
    if (kind == APIERR_BAD_HTTP && msg == NULL) {
        snprintf(buf, sizeof(buf), "malformed HTTP request: %s", reqparse_reason(&c->rp));
        msg = arena_strndup(c->msg->arena, buf, strlen(buf));
    }
    c->h->refuse(c->req, kind, msg);
}

/*
 * A client that sent Expect: 100-continue waits for the 100 before it sends its body; one that
 * will be refused 401 must get the 401 instead, without the 100: the request layer checks the
 * key (handler->expect). Returns 0 to go on, or -1 after it answered (the connection then
 * closes: the client may send its body anyway).
 */
static int conn_expect_key(struct gate_conn *c)
{
    unsigned keep = c->close_after;

    c->close_after = 1; /* in case it answers */
    c->state = CONN_BUSY;
    arm_timer(c, TIMER_NONE);
    if (c->h->expect(c->req) < 0)
        return -1;
    c->close_after = keep;
    c->state = CONN_READING;
    return 0;
}

/* The head is complete and checked: answer Expect, then the whole body has its deadline
 * (timeouts.client_body), however slowly it comes. Returns -1 after answering. */
static int conn_head_read(struct gate_conn *c)
{
    if (c->msg->expect_continue) {
        if (conn_expect_key(c) < 0)
            return -1;
        bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        conn_flush(c);
    }
    arm_timer(c, TIMER_BODY);
    return 0;
}

static void conn_parse(struct gate_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int complete = 0;

    while (c->state == CONN_IDLE || c->state == CONN_READING) {
        struct evbuffer_iovec v = {0};
        size_t used = 0;
        if ((evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) && !c->rp.head_paused)
            break;
        c->rp.conf = c->msg != NULL && c->msg->conf != NULL ? c->msg->conf : c->w->conf;
        enum reqparse_step step = reqparse_exec(&c->rp, v.iov_base, v.iov_len, &used);
        if (c->msg != NULL)
            c->msg->bytes_in += used;
        evbuffer_drain(in, used);
        if (step == RP_ERROR) {
            conn_refuse(c, c->rp.reject, c->rp.reject_msg);
            return;
        }
        if (step == RP_HEAD && conn_head_read(c) < 0)
            return;
        if (step == RP_DONE) {
            c->state = CONN_BUSY;
            arm_timer(c, TIMER_NONE);
            if (!reqparse_keep_alive(&c->rp))
                c->close_after = 1; /* no protocol switch: answer, then close */
            complete = 1;
        }
    }
    if (complete && c->req != NULL)
        c->h->ready(c->req);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct gate_conn *c = arg;

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
    if (c->req != NULL && pending <= CONN_OUT_LOW)
        c->h->drained(c->req);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct gate_conn *c = arg;

    if (what & BEV_EVENT_TIMEOUT)
        c->gone_why = "the client took nothing of its answer within timeouts.client_write";
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
    if (c == NULL) {
        bufferevent_free(bev); /* closes the socket */
        return;
    }
    c->w = w;
    c->h = w->conn_handler;
    c->bev = bev;
    c->timer = evtimer_new(w->base, conn_timer_cb, c);
    c->kick = event_new(w->base, -1, 0, conn_kick_cb, c);
    if (c->timer == NULL || c->kick == NULL) {
        if (c->timer != NULL)
            event_free(c->timer);
        if (c->kick != NULL)
            event_free(c->kick);
        bufferevent_free(bev);
        free(c);
        return;
    }
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
    reqparse_init(&c->rp, conn_begin, c);
    c->rp.hold = conn_hold;
    bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(bev, EV_READ, 0, CONN_IN_HIGH);
    bufferevent_setwatermark(bev, EV_WRITE, CONN_OUT_LOW, 0);
    {
        /* a client that takes none of its answer for this long is gone (BEV_EVENT_TIMEOUT):
         * libevent times writing only while output waits, and each byte taken restarts it;
         * the request then ends as for a client that left, its upstream stopped */
        int64_t ms = w->conf->client_write_timeout;
        struct timeval wt = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        bufferevent_set_timeouts(bev, NULL, &wt);
    }
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
        void *req = c->req;
        c->req = NULL;
        c->msg = NULL;
        c->h->gone(req, c->gone_why);
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
    reqparse_free(&c->rp);
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
    c->msg = NULL;
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
    reqparse_next(&c->rp);
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
