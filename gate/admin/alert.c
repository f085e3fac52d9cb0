/*
 * alert: budget alerts posted to the configured webhook. See alert.h.
 *
 * Alerts are queued under a mutex by any thread and sent from the admin thread's loop, one
 * request a connection, at most HOOKS_MAX under way at once.
 */
#include "gate/admin/alert.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/http/tls.h"

#define ALERTS_MAX 256

struct alert_item {
    struct alert_item *next;
    char json[];
};

/* webhook requests under way at once; past this an alert is dropped (and said so) */
#define HOOKS_MAX 32

struct hook {
    struct alert_sender *a;
    struct evhttp_connection *conn; /* NULL: the slot is free */
    const char *why;                /* why the request failed, from hook_error */
};

struct alert_sender {
    struct hook hooks[HOOKS_MAX]; /* the loop's thread only */
    struct event_base *base;
    SSL_CTX *tls_ctx;
    struct event *wake; /* alerts queued */

    pthread_mutex_t mu; /* guards the alert queue */
    struct alert_item *alerts, **alerts_tail;
    int nalerts;
    char *hook_host, *hook_host_header, *hook_path; /* the webhook, or all NULL */
    int hook_port, hook_tls;
};

/* The request to the webhook failed after its connection was made: called before hook_done.
 * (A connection that cannot be made, TLS handshake included, reaches hook_done alone.) */
static void hook_error(enum evhttp_request_error e, void *arg)
{
    struct hook *h = arg;

    h->why = e == EVREQ_HTTP_TIMEOUT          ? "no answer within 5 s"
             : e == EVREQ_HTTP_EOF            ? "connection closed before an answer"
             : e == EVREQ_HTTP_INVALID_HEADER ? "not an HTTP answer"
                                              : "request failed";
}

/* Frees a finished webhook connection, once libevent is done with it, and frees its slot. */
static void hook_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hook *h = arg;

    (void)fd;
    (void)what;
    evhttp_connection_free(h->conn);
    h->conn = NULL;
}

/*
 * The webhook answered or failed. The connection is the gate's on every path (libevent 2.1
 * does not free a free-on-completion connection whose connect failed, so none is marked so):
 * still valid here, it is freed from the event loop right after (or, should that fail, when
 * the gate stops). Only the webhook's host and port are printed, never its path, which often
 * holds a secret.
 */
static void hook_done(struct evhttp_request *r, void *arg)
{
    struct hook *h = arg;
    struct alert_sender *a = h->a;
    int code = r ? evhttp_request_get_response_code(r) : 0;

    if (code == 0) {
        unsigned long tls_err = 0;
        struct bufferevent *bev = h->conn ? evhttp_connection_get_bufferevent(h->conn) : NULL;
        if (a->hook_tls && bev != NULL)
            tls_err = bufferevent_get_openssl_error(bev);
        fprintf(stderr, "tokengate: alert webhook %s%s: %s%s%s, alert dropped\n",
                a->hook_tls ? "https://" : "http://", a->hook_host_header,
                h->why ? h->why : "cannot connect (refused, unreachable or timed out)",
                tls_err ? "; TLS: " : "",
                tls_err ? ERR_reason_error_string(tls_err) : "");
    } else if (code >= 300) {
        fprintf(stderr, "tokengate: alert webhook %s%s answered %d\n",
                a->hook_tls ? "https://" : "http://", a->hook_host_header, code);
    }
    if (event_base_once(a->base, -1, EV_TIMEOUT, hook_free_cb, h, &(struct timeval){0, 0}) != 0)
        fprintf(stderr, "tokengate: alert webhook: cannot schedule the connection's release\n");
}

/* A connection to the webhook, over TLS for https (checked as providers are: upstream.ca_file
 * or the system's store); NULL when it cannot be made, which is said on stderr. */
static struct evhttp_connection *hook_connect(struct alert_sender *a)
{
    struct bufferevent *bev = NULL;
    struct evhttp_connection *c;

    if (a->hook_tls && (bev = tls_bufferevent(a->tls_ctx, a->base, a->hook_host)) == NULL) {
        fprintf(stderr, "tokengate: alert webhook: cannot set up TLS, alert dropped\n");
        return NULL;
    }
    /* with bev NULL, a plain socket */
    c = evhttp_connection_base_bufferevent_new(a->base, NULL, bev, a->hook_host,
                                               (uint16_t)a->hook_port);
    if (c == NULL) {
        if (bev != NULL)
            bufferevent_free(bev);
        fprintf(stderr, "tokengate: alert webhook: cannot make a connection, alert dropped\n");
    }
    return c;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct alert_sender *a = arg;
    struct alert_item *list;

    pthread_mutex_lock(&a->mu);
    list = a->alerts;
    a->alerts = NULL;
    a->alerts_tail = &a->alerts;
    a->nalerts = 0;
    pthread_mutex_unlock(&a->mu);
    while (list != NULL) {
        struct alert_item *it = list;
        list = it->next;
        struct hook *slot = NULL;
        for (int i = 0; i < HOOKS_MAX && slot == NULL; i++)
            if (a->hooks[i].conn == NULL)
                slot = &a->hooks[i];
        if (slot == NULL)
            fprintf(stderr, "tokengate: alert webhook: %d requests under way, alert dropped\n",
                    HOOKS_MAX);
        if (a->hook_host != NULL && slot != NULL) {
            struct evhttp_connection *c = hook_connect(a);
            if (c != NULL) {
                evhttp_connection_set_timeout(c, 5);
                evhttp_connection_set_retries(c, 0);
                slot->a = a;
                slot->conn = c;
                slot->why = NULL;
                struct evhttp_request *r = evhttp_request_new(hook_done, slot);
                if (r == NULL) {
                    evhttp_connection_free(c);
                    slot->conn = NULL;
                    fprintf(stderr, "tokengate: alert webhook: out of memory, alert dropped\n");
                    free(it);
                    continue;
                }
                evhttp_request_set_error_cb(r, hook_error);
                struct evkeyvalq *h = evhttp_request_get_output_headers(r);
                /* one request a connection, freed by hook_done */
                int made = evhttp_add_header(h, "host", a->hook_host_header) == 0 &&
                           evhttp_add_header(h, "content-type", "application/json") == 0 &&
                           evhttp_add_header(h, "connection", "close") == 0 &&
                           evbuffer_add(evhttp_request_get_output_buffer(r), it->json,
                                        strlen(it->json)) == 0;
                /* -1 comes before any callback (a failed connect comes through hook_done),
                 * and leaves the request ours */
                if (!made || evhttp_make_request(c, r, EVHTTP_REQ_POST, a->hook_path) != 0) {
                    evhttp_request_free(r);
                    evhttp_connection_free(c);
                    slot->conn = NULL;
                    fprintf(stderr, "tokengate: alert webhook: cannot start the request, alert "
                                    "dropped\n");
                }
            }
        }
        free(it);
    }
}

void alert_post(struct alert_sender *a, const char *json)
{
    size_t n = strlen(json);
    struct alert_item *it;

    if (a == NULL || a->hook_host == NULL)
        return;
    it = malloc(sizeof(*it) + n + 1);
    if (it == NULL)
        return;
    memcpy(it->json, json, n + 1);
    it->next = NULL;
    pthread_mutex_lock(&a->mu);
    if (a->nalerts >= ALERTS_MAX) {
        pthread_mutex_unlock(&a->mu);
        free(it);
        return;
    }
    *a->alerts_tail = it;
    a->alerts_tail = &it->next;
    a->nalerts++;
    pthread_mutex_unlock(&a->mu);
    event_active(a->wake, EV_READ, 0);
}

struct alert_sender *alert_new(struct event_base *base, SSL_CTX *tls_ctx,
                               const struct conf_alerts *c, char *err, size_t errlen)
{
    struct alert_sender *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->alerts_tail = &a->alerts;
    a->base = base;
    a->tls_ctx = tls_ctx;
    a->wake = event_new(base, -1, 0, wake_cb, a);
    if (a->wake == NULL) {
        snprintf(err, errlen, "admin: cannot create an event");
        alert_free(a);
        return NULL;
    }
    if (c->webhook != NULL) {
        const struct conf_url *u = &c->hook;
        a->hook_tls = u->tls;
        a->hook_port = u->port;
        a->hook_host = strdup(u->host);
        a->hook_host_header = strdup(u->host_header);
        a->hook_path = strdup(u->path[0] != '\0' ? u->path : "/");
        if (a->hook_host == NULL || a->hook_host_header == NULL || a->hook_path == NULL) {
            snprintf(err, errlen, "admin: out of memory");
            alert_free(a);
            return NULL;
        }
    }
    return a;
}

void alert_free(struct alert_sender *a)
{
    if (a == NULL)
        return;
    /* webhook connections still open: a request under way (a webhook that does not answer),
     * or one finished whose release the loop had not run yet */
    for (int i = 0; i < HOOKS_MAX; i++)
        if (a->hooks[i].conn != NULL)
            evhttp_connection_free(a->hooks[i].conn);
    if (a->wake != NULL)
        event_free(a->wake);
    while (a->alerts != NULL) {
        struct alert_item *it = a->alerts;
        a->alerts = it->next;
        free(it);
    }
    free(a->hook_host);
    free(a->hook_host_header);
    free(a->hook_path);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
