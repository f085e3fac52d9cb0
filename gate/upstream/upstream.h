/*
 * upstream: connections to providers. Each worker keeps, per provider, a pool of idle
 * keep-alive connections (plain TCP or TLS with certificate and host-name verification);
 * responses are read with llhttp and handed piece by piece to the exchange's owner through its
 * struct upstream_handler (gate/upstream knows nothing of the pipeline).
 */
#ifndef TG_UPSTREAM_H
#define TG_UPSTREAM_H

#include <stddef.h>

#include "gate/api/apierr.h"

struct arena;
struct conf;
struct evbuffer;
struct http_header;
struct gate_worker;
struct upstream_conn;
struct upstream_pool;
struct conf_provider;

/*
 * How an exchange reports to its owner (arg). head and body may return -1 to drop the
 * exchange (the owner has then answered its client itself); neither may cancel it. done comes
 * once the connection is back in its pool; failed once it is closed (or the exchange left the
 * queue), with retry_safe set when the request provably never reached the provider whole (the
 * owner may send it again, once, with upstream_retry).
 */
struct upstream_handler {
    int (*head)(void *arg, int status, const struct http_header *headers, int n);
    int (*body)(void *arg, const char *data, size_t len); /* de-chunked */
    void (*done)(void *arg);
    void (*failed)(void *arg, enum apierr kind, const char *message, int retry_safe);
};

/* One request to a provider and its answer. The owner keeps it until done or failed. */
struct upstream_exchange {
    const struct upstream_handler *h;
    void *arg;
    const struct conf *conf;   /* the owner's snapshot: its timeouts and limits */
    struct arena *arena;       /* the response head's strings go here (the owner's) */
    struct evbuffer *request;  /* head and body as sent (kept for a retry); the owner's */
    struct upstream_conn *uc;  /* set while the exchange runs or waits in the queue */
    int forwarded;             /* set once it is on a connection: the provider may have it */
};

/* A pool for one provider on one worker, keeping up to max_idle idle connections. p must
 * outlive the pool (or the next upstream_pool_update). Returns NULL when out of memory. */
struct upstream_pool *upstream_pool_new(struct gate_worker *w, const struct conf_provider *p,
                                       int max_idle);

/*
 * A reload: the pool now serves p (a provider of the same name, host, port and TLS in a new
 * snapshot, which must outlive the pool or the next update) and keeps up to max_idle idle
 * connections (0 retires it: its connections close once their exchange ends); idle ones past
 * the cap are closed now. Connections under way go on.
 */
void upstream_pool_update(struct upstream_pool *pool, const struct conf_provider *p, int max_idle);

/* 1 while a connection of the pool is connecting or carries an exchange, or a request waits
 * in its queue, else 0. */
int upstream_pool_in_use(const struct upstream_pool *pool);

/* Closes every connection of the pool and frees it. */
void upstream_pool_free(struct upstream_pool *pool);

/*
 * Sends ex->request over an idle connection of the pool, or a new one while the pool has
 * fewer than upstream.max_connections; else ex waits in the pool's queue (see
 * upstream_waiting) until a connection comes free. The outcome comes back through ex->h
 * (failed may be called before this returns). A full queue (upstream.max_waiting) or a wait
 * longer than timeouts.upstream_connect ends in failed with APIERR_UNAVAILABLE, before
 * anything was sent. A NULL pool (none could be made) fails with 502 the same way.
 */
void upstream_send(struct upstream_pool *pool, struct upstream_exchange *ex);

/* As upstream_send, first in the queue: the one retry of an exchange that failed with
 * retry_safe. */
void upstream_retry(struct upstream_pool *pool, struct upstream_exchange *ex);

/* Whether ex waits in its pool's queue (no connection yet). */
int upstream_waiting(const struct upstream_exchange *ex);

/* The bytes the provider has sent on ex's connection that have not been parsed yet: in the
 * connection's input buffer and in the kernel's receive queue (on TLS, still encrypted). 0 when
 * ex has no connection or the kernel cannot say. */
size_t upstream_unread(const struct upstream_exchange *ex);

/* The owner gives up the exchange: its connection is closed (a waiting exchange leaves the
 * queue). Nothing is called back. Does nothing when the exchange is not running. */
void upstream_cancel(struct upstream_exchange *ex);

/* Stops and restarts reading the response (backpressure from a slow client). Do nothing when
 * the exchange is not running or still waits. */
void upstream_pause(struct upstream_exchange *ex);
void upstream_resume(struct upstream_exchange *ex);

#endif
