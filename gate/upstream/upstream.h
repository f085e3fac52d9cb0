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
struct evbuffer;
struct http_header;
struct gate_worker;
struct upstream_conn;
struct upstream_pool;
struct conf_provider;

/* A pool for one provider on one worker. Returns NULL when out of memory. */
struct upstream_pool *upstream_pool_new(struct gate_worker *w, const struct conf_provider *p);

/* Closes every connection of the pool and frees it. */
void upstream_pool_free(struct upstream_pool *pool);

/*
 * How an exchange reports to its owner (arg). head and body may return -1 to drop the
 * exchange (the owner has then answered its client itself); neither may cancel it. done comes
 * once the connection is back in its pool; failed once it is closed, with retry_safe set when
 * the request provably never reached the provider whole (the owner may send it again, once,
 * with upstream_send_fresh).
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
    struct arena *arena;       /* the response head's strings go here (the owner's) */
    struct evbuffer *request;  /* head and body as sent (kept for a retry); the owner's */
    struct upstream_conn *uc;  /* set while the exchange runs */
};

/*
 * Sends ex->request over an idle connection of the pool, or a new one. The outcome comes back
 * through ex->h (failed may be called before this returns).
 */
void upstream_send(struct upstream_pool *pool, struct upstream_exchange *ex);

/* As upstream_send, always on a new connection: the retry of an exchange whose reused
 * connection failed. */
void upstream_send_fresh(struct upstream_pool *pool, struct upstream_exchange *ex);

/* The owner gives up the exchange: its connection is closed and forgets it. Nothing is called
 * back. Does nothing when the exchange is not running. */
void upstream_cancel(struct upstream_exchange *ex);

/* Stops and restarts reading the response (backpressure from a slow client). Do nothing when
 * the exchange is not running. */
void upstream_pause(struct upstream_exchange *ex);
void upstream_resume(struct upstream_exchange *ex);

#endif
