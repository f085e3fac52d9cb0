/*
 * upstream: provider connections and their pools. See upstream.h.
 *
 * A connection is CONNECTING, BUSY (one exchange) or IDLE (in its pool). Every failure of an
 * exchange goes through uc_fail(), which either retries once on a fresh connection or tells
 * the proxy. A request is sent again only when it provably never reached the provider whole:
 * a reused connection failed before the request had left the gate. An idle connection is
 * checked (a non-blocking peek) before it is reused, so a provider that closed it is found
 * out before anything is sent; a request fully sent is never repeated, since the provider
 * may be working on it and a repeat would be paid twice.
 * A connection is never freed while llhttp is running on it: it is marked dead and freed
 * when the parser returns.
 *
 * A pool holds at most upstream.max_connections connections (busy and idle). A request that
 * finds none free waits in the pool's queue (at most upstream.max_waiting, first come first
 * served) as a WAITING entry: an upstream_conn without a socket, which ex->uc points to, so
 * that a client that leaves takes it out of the queue through upstream_cancel(). When a
 * connection is freed or goes back to the pool, the pool's kick event (run from the loop, never
 * inside the callback that freed the slot) hands it to the first in the queue. A full queue, or
 * a wait past timeouts.upstream_connect, ends the request in a 503 before anything was sent.
 */
#include "gate/upstream/upstream-int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "gate/util/arena.h"
#include "gate/http/bevio.h"
#include "gate/http/httphdr.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "gate/http/tls.h"

#define POOL_IDLE_MS 30000
/* a connection idle for less than this is reused without a liveness peek: providers close
 * idle keep-alive connections after many seconds, not within one */
#define POOL_FRESH_US 1000000


/* The request's snapshot while there is one, else the worker's (a reload may differ). */
static const struct conf *uc_conf(const struct upstream_conn *uc)
{
    return uc->ex != NULL ? uc->ex->conf : uc->pool->w->conf;
}

void uc_arm(struct upstream_conn *uc, enum uc_timer kind)
{
    const struct conf *cf = uc_conf(uc);
    int64_t ms;

    switch (kind) {
    case UT_CONNECT:
        ms = cf->upstream_connect_timeout;
        break;
    case UT_FIRST_BYTE:
        ms = cf->upstream_first_byte_timeout;
        break;
    case UT_STREAM_IDLE:
        ms = cf->stream_idle_timeout;
        break;
    case UT_WAIT:
        ms = cf->upstream_connect_timeout;
        break;
    default:
        ms = POOL_IDLE_MS;
        break;
    }
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    uc->timer_kind = kind;
    event_add(uc->timer, &tv);
}

/* Takes the connection out of whichever list holds it. */
static void uc_unlink(struct upstream_conn *uc)
{
    if (uc->state == UC_IDLE) {
        TAILQ_REMOVE(&uc->pool->idle, uc, link);
        uc->pool->nidle--;
    } else if (uc->state == UC_WAITING) {
        TAILQ_REMOVE(&uc->pool->wait, uc, link);
        uc->pool->nwait--;
    } else {
        TAILQ_REMOVE(&uc->pool->busy, uc, link);
    }
}

static void uc_close(struct upstream_conn *uc)
{
    if (uc->in_parse) {
        uc->dead = 1;
        return;
    }
    uc_free(uc);
}

/* Ends the exchange in failure and tells its owner, saying whether sending it again is safe:
 * a reused connection failed before anything of the request had left or come back (the owner
 * may then call upstream_retry). */
static void uc_fail(struct upstream_conn *uc, enum apierr kind, const char *msg)
{
    struct upstream_exchange *ex = uc->ex;
    int safe = uc->exchanges > 0 && !uc->sent && uc->got == 0 && kind == APIERR_BAD_GATEWAY;

    uc->ex = NULL;
    uc_close(uc); /* uc may be gone from here on */
    if (ex == NULL)
        return;
    ex->uc = NULL;
    ex->h->failed(ex->arg, kind, msg, safe);
}

/* ---- response parser ----------------------------------------------------------------- */

static int head_fail(struct upstream_conn *uc, enum hdr_err e)
{
    uc->reject = e == HDR_TOO_LARGE  ? "the provider's response headers are larger than the limit"
                 : e == HDR_TOO_MANY ? "the provider's response has too many headers"
                                     : "out of memory";
    return -1;
}

static int r_piece(llhttp_t *p, const char *at, size_t len)
{
    struct upstream_conn *uc = p->data;
    enum hdr_err e = hdr_piece(&uc->hr, at, len, uc->ex->conf->max_header_bytes);
    return e == HDR_OK ? 0 : head_fail(uc, e);
}

static int r_field_complete(llhttp_t *p)
{
    struct upstream_conn *uc = p->data;
    enum hdr_err e =
        hdr_name_done(&uc->hr, uc->ex->arena, 2 * uc->ex->conf->max_headers);
    return e == HDR_OK ? 0 : head_fail(uc, e);
}

static int r_value_complete(llhttp_t *p)
{
    struct upstream_conn *uc = p->data;
    enum hdr_err e = hdr_value_done(&uc->hr, uc->ex->arena);
    return e == HDR_OK ? 0 : head_fail(uc, e);
}

static int r_headers_complete(llhttp_t *p)
{
    struct upstream_conn *uc = p->data;

    if (p->status_code >= 100 && p->status_code < 200) {
        hdr_start(&uc->hr); /* an interim answer: the real one follows */
        return 0;
    }
    if (uc->ex->h->head(uc->ex->arg, p->status_code, uc->hr.list, uc->hr.n) < 0) {
        uc->reject = "";
        return -1;
    }
    return 0;
}

static int r_body(llhttp_t *p, const char *at, size_t len)
{
    struct upstream_conn *uc = p->data;

    if (uc->ex->h->body(uc->ex->arg, at, len) < 0) {
        uc->reject = "";
        return -1;
    }
    return 0;
}

static int r_message_complete(llhttp_t *p)
{
    struct upstream_conn *uc = p->data;

    if (p->status_code >= 100 && p->status_code < 200)
        return 0;
    uc->done = 1;
    return HPE_PAUSED;
}

/* shared by every worker: read-only */
static const llhttp_settings_t resp_settings = {
    .on_header_field = r_piece,
    .on_header_field_complete = r_field_complete,
    .on_header_value = r_piece,
    .on_header_value_complete = r_value_complete,
    .on_headers_complete = r_headers_complete,
    .on_body = r_body,
    .on_message_complete = r_message_complete,
};

/* The exchange ended well: the connection goes back to its pool, the proxy finishes. */
static void uc_complete(struct upstream_conn *uc)
{
    struct upstream_exchange *ex = uc->ex;
    int keep = llhttp_should_keep_alive(&uc->parser) && !uc->dead;
    struct upstream_pool *pool = uc->pool;

    uc->ex = NULL;
    uc->done = 0;
    uc->exchanges++;
    ex->uc = NULL;
    if (keep && pool->nidle < pool->max_idle &&
        evbuffer_get_length(bufferevent_get_input(uc->bev)) == 0) {
        TAILQ_REMOVE(&pool->busy, uc, link);
        uc->state = UC_IDLE;
        uc->idle_since = gate_now_us();
        TAILQ_INSERT_HEAD(&pool->idle, uc, link);
        pool->nidle++;
        bufferevent_enable(uc->bev, EV_READ);
        uc_arm(uc, UT_POOL_IDLE);
        if (pool->nwait > 0)
            event_active(pool->kick, EV_TIMEOUT, 1);
    } else {
        uc_free(uc);
    }
    ex->h->done(ex->arg);
}

static void uc_read_cb(struct bufferevent *bev, void *arg)
{
    struct upstream_conn *uc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (uc->state != UC_BUSY || uc->ex == NULL) {
        uc_free(uc); /* nothing may arrive on an idle connection */
        return;
    }
    uc_arm(uc, UT_STREAM_IDLE);
    uc->in_parse = 1;
    while (!uc->dead && !uc->done && uc->ex != NULL) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        uc->got += v.iov_len;
        llhttp_errno_t err = llhttp_execute(&uc->parser, v.iov_base, v.iov_len);
        size_t used = v.iov_len;
        if (err == HPE_PAUSED)
            used = (size_t)(llhttp_get_error_pos(&uc->parser) - (const char *)v.iov_base);
        evbuffer_drain(in, used);
        if (err == HPE_OK || err == HPE_PAUSED)
            continue;
        uc->in_parse = 0;
        if (uc->reject != NULL && *uc->reject == '\0') {
            /* the proxy refused the response and has already answered the client */
            struct upstream_exchange *ex = uc->ex;
            uc->ex = NULL;
            if (ex != NULL)
                ex->uc = NULL;
            uc_free(uc);
            return;
        }
        char msg[256];
        snprintf(msg, sizeof(msg), "provider '%s' sent a malformed response: %s",
                 uc->pool->prov->name,
                 uc->reject ? uc->reject : llhttp_get_error_reason(&uc->parser));
        uc->reject = NULL;
        uc->got = 1; /* an answer came, so no retry */
        uc_fail(uc, APIERR_BAD_GATEWAY, msg);
        return;
    }
    uc->in_parse = 0;
    if (uc->dead) {
        uc_free(uc);
        return;
    }
    if (uc->done)
        uc_complete(uc);
}

static void uc_write_cb(struct bufferevent *bev, void *arg)
{
    struct upstream_conn *uc = arg;

    if (uc->state == UC_BUSY && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        if (uc->ex != NULL)
            uc->sent = 1;
        if (!uc->pool->prov->tls)
            bufferevent_disable(bev, EV_WRITE); /* the next request is written directly */
    }
}

/*
 * Writes a request on an open plain-TCP connection at once, as nginx does, and asks libevent
 * to watch for writability only when bytes remain: no epoll_ctl per request otherwise.
 */
static void uc_write_now(struct upstream_conn *uc)
{
    struct evbuffer *out = bufferevent_get_output(uc->bev);

    bevio_write_now(uc->bev); /* a failure shows through libevent once EV_WRITE is on */
    if (evbuffer_get_length(out) == 0)
        uc->sent = 1;
    else
        bufferevent_enable(uc->bev, EV_WRITE); /* the rest, or the error, comes through libevent */
}

/* Whether an idle connection is still open and quiet: the provider may have closed it. */
int uc_alive(struct upstream_conn *uc)
{
    evutil_socket_t fd = bufferevent_getfd(uc->bev);
    char b;

    if (fd < 0)
        return 0;
    if (evbuffer_get_length(bufferevent_get_input(uc->bev)) > 0)
        return 0;
    if (gate_now_us() - uc->idle_since < POOL_FRESH_US)
        return 1;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Describes why a connection failed, for the client's error message and the log. */
static void describe_error(struct upstream_conn *uc, short what, char *buf, size_t cap)
{
    const char *name = uc->pool->prov->name;
    unsigned long ssl_err = uc->pool->prov->tls ? bufferevent_get_openssl_error(uc->bev) : 0;
    int dns_err = bufferevent_socket_get_dns_error(uc->bev);

    if (dns_err != 0) {
        snprintf(buf, cap, "cannot resolve provider '%s' host %s: %s", name, uc->pool->prov->host,
                 evutil_gai_strerror(dns_err));
    } else if (ssl_err != 0) {
        char e[200];
        ERR_error_string_n(ssl_err, e, sizeof(e));
        const char *reason = ERR_reason_error_string(ssl_err);
        snprintf(buf, cap, "TLS with provider '%s' failed: %s", name, reason ? reason : e);
    } else if (uc->state == UC_CONNECTING) {
        int err = EVUTIL_SOCKET_ERROR();
        snprintf(buf, cap, "cannot connect to provider '%s' at %s:%d: %s", name,
                 uc->pool->prov->host, uc->pool->prov->port,
                 err ? evutil_socket_error_to_string(err) : "connection failed");
    } else if (what & BEV_EVENT_EOF) {
        snprintf(buf, cap, "provider '%s' closed the connection before the response ended", name);
    } else {
        int err = EVUTIL_SOCKET_ERROR();
        snprintf(buf, cap, "connection to provider '%s' failed: %s", name,
                 err ? evutil_socket_error_to_string(err) : "reset");
    }
}

static void uc_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct upstream_conn *uc = arg;
    char msg[320];

    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        evutil_socket_t fd = bufferevent_getfd(bev);
        if (fd >= 0)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        uc->state = UC_BUSY;
        atomic_fetch_add_explicit(&uc->pool->w->stats.upstream_conns_opened, 1,
                                  memory_order_relaxed);
        uc_arm(uc, UT_FIRST_BYTE);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (uc->state == UC_IDLE || uc->ex == NULL) {
        uc_free(uc);
        return;
    }
    if ((what & BEV_EVENT_EOF) && uc->got > 0) {
        /* a body that ends with the connection */
        uc->in_parse = 1;
        llhttp_errno_t err = llhttp_finish(&uc->parser);
        uc->in_parse = 0;
        if (uc->dead) {
            uc_free(uc);
            return;
        }
        if ((err == HPE_OK || err == HPE_PAUSED) && uc->done) {
            uc_complete(uc);
            return;
        }
    }
    describe_error(uc, what, msg, sizeof(msg));
    uc_fail(uc, APIERR_BAD_GATEWAY, msg);
}

void uc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_conn *uc = arg;
    const struct conf *cf = uc_conf(uc);
    const char *name = uc->pool->prov->name;
    char msg[256];

    switch (uc->timer_kind) {
    case UT_POOL_IDLE:
        uc_free(uc);
        return;
    case UT_CONNECT:
        snprintf(msg, sizeof(msg), "connecting to provider '%s' timed out after %lld ms", name,
                 (long long)cf->upstream_connect_timeout);
        break;
    case UT_FIRST_BYTE:
        snprintf(msg, sizeof(msg), "provider '%s' sent no response within %lld ms", name,
                 (long long)cf->upstream_first_byte_timeout);
        break;
    case UT_STREAM_IDLE:
        snprintf(msg, sizeof(msg), "provider '%s' sent nothing for %lld ms", name,
                 (long long)cf->stream_idle_timeout);
        break;
    case UT_WAIT:
        snprintf(msg, sizeof(msg),
                 "no connection to provider '%s' came free within %lld ms "
                 "(timeouts.upstream_connect): all %d allowed (upstream.max_connections) are "
                 "busy; retry shortly",
                 name, (long long)cf->upstream_connect_timeout, cf->upstream_max_connections);
        uc_fail(uc, APIERR_UNAVAILABLE, msg); /* nothing was sent: no charge, no retry */
        return;
    }
    uc->got = 1; /* a timeout is never retried: the provider may be working on it */
    uc_fail(uc, APIERR_GATEWAY_TIMEOUT, msg);
}

/* ---- connections and pools ----------------------------------------------------------- */

struct upstream_conn *uc_new(struct upstream_pool *pool, char *err, size_t errlen)
{
    struct gate_worker *w = pool->w;
    const struct conf_provider *prov = pool->prov;
    struct upstream_conn *uc = calloc(1, sizeof(*uc));
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

    if (uc == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uc->pool = pool;
    if (prov->tls) {
        if ((uc->bev = tls_bufferevent(w->srv->upstream_ctx, w->base, prov->host)) == NULL)
            goto tls_fail;
    } else {
        uc->bev = bufferevent_socket_new(w->base, -1, opts);
    }
    if (uc->bev == NULL) {
        free(uc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uc->timer = evtimer_new(w->base, uc_timer_cb, uc);
    if (uc->timer == NULL) {
        bufferevent_free(uc->bev);
        free(uc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uc->state = UC_CONNECTING;
    TAILQ_INSERT_TAIL(&pool->busy, uc, link);
    pool->nconns++;
    bufferevent_setcb(uc->bev, uc_read_cb, uc_write_cb, uc_event_cb, uc);
    if (bufferevent_socket_connect_hostname(uc->bev, w->dns, AF_UNSPEC, prov->host, prov->port) <
        0) {
        snprintf(err, errlen, "cannot connect to provider '%s' at %s:%d", prov->name, prov->host,
                 prov->port);
        uc_free(uc);
        return NULL;
    }
    return uc; /* uc_start arms the connect timer, with the request's timeout */

tls_fail:
    free(uc);
    snprintf(err, errlen, "cannot set up TLS for provider '%s'", prov->name);
    return NULL;
}

void uc_free(struct upstream_conn *uc)
{
    struct upstream_pool *pool = uc->pool;

    if (uc->ex != NULL)
        uc->ex->uc = NULL;
    uc_unlink(uc);
    if (uc->state != UC_WAITING) {
        pool->nconns--;
        if (pool->nwait > 0) /* a slot is free: the first in the queue takes it */
            event_active(pool->kick, EV_TIMEOUT, 1);
    }
    if (uc->bev != NULL)
        bufferevent_free(uc->bev);
    event_free(uc->timer);
    hdr_free(&uc->hr);
    free(uc);
}

/* Starts an exchange on a connection that is connecting or was idle. */
void uc_start(struct upstream_conn *uc, struct upstream_exchange *ex)
{
    int reused = uc->state == UC_IDLE;

    if (reused) {
        uc_unlink(uc);
        uc->state = UC_BUSY;
        TAILQ_INSERT_TAIL(&uc->pool->busy, uc, link);
    }
    uc->ex = ex;
    ex->uc = uc;
    uc_arm(uc, reused ? UT_FIRST_BYTE : UT_CONNECT); /* with the request's timeouts */
    uc->got = 0;
    uc->sent = 0;
    uc->done = 0;
    hdr_start(&uc->hr);
    uc->reject = NULL;
    ex->forwarded = 1; /* on a connection: from here the provider may get it */
    llhttp_init(&uc->parser, HTTP_RESPONSE, &resp_settings);
    uc->parser.data = uc;
    if (reused && !uc->pool->prov->tls)
        bufferevent_disable(uc->bev, EV_WRITE); /* no write event for what is written now */
    if (evbuffer_add_buffer_reference(bufferevent_get_output(uc->bev), ex->request) != 0) {
        uc->got = 1; /* no retry: the next try would fail alike */
        uc_fail(uc, APIERR_BAD_GATEWAY, "out of memory sending the request upstream");
        return;
    }
    if (reused && !uc->pool->prov->tls) {
        uc_write_now(uc);
        return;
    }
    bufferevent_enable(uc->bev, EV_READ | EV_WRITE);
}

int upstream_waiting(const struct upstream_exchange *ex)
{
    return ex->uc != NULL && ex->uc->state == UC_WAITING;
}

size_t upstream_unread(const struct upstream_exchange *ex)
{
    struct upstream_conn *uc = ex->uc;
    evutil_socket_t fd;
    int queued = 0;

    if (uc == NULL || uc->bev == NULL)
        return 0;
    fd = bufferevent_getfd(uc->bev);
    if (fd >= 0 && ioctl(fd, FIONREAD, &queued) < 0)
        queued = 0;
    return evbuffer_get_length(bufferevent_get_input(uc->bev)) + (queued > 0 ? (size_t)queued : 0);
}

void upstream_cancel(struct upstream_exchange *ex)
{
    struct upstream_conn *uc = ex->uc;

    if (uc == NULL)
        return;
    ex->uc = NULL;
    uc->ex = NULL;
    uc_close(uc);
}

void upstream_pause(struct upstream_exchange *ex)
{
    struct upstream_conn *uc = ex->uc;

    if (uc == NULL || uc->bev == NULL)
        return; /* not running, or still queued: nothing is read yet */
    bufferevent_disable(uc->bev, EV_READ);
    event_del(uc->timer);
}

void upstream_resume(struct upstream_exchange *ex)
{
    struct upstream_conn *uc = ex->uc;

    if (uc == NULL || uc->bev == NULL)
        return;
    bufferevent_enable(uc->bev, EV_READ);
    uc_arm(uc, UT_STREAM_IDLE);
}
