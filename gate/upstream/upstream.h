/*
 * upstream: connections to providers. Each worker keeps, per provider, a pool of idle
 * keep-alive connections (plain TCP or TLS with certificate and host-name verification);
 * responses are read with llhttp and handed to the proxy piece by piece.
 */
#ifndef TG_UPSTREAM_H
#define TG_UPSTREAM_H

#include <stddef.h>

struct gate_req;
struct gate_worker;
struct upstream_conn;
struct upstream_pool;
struct conf_provider;

/* A pool for one provider on one worker. Returns NULL when out of memory. */
struct upstream_pool *upstream_pool_new(struct gate_worker *w, const struct conf_provider *p);

/* Closes every connection of the pool and frees it. */
void upstream_pool_free(struct upstream_pool *pool);

/*
 * Sends req->up_request over an idle connection of the pool, or a new one. The outcome comes
 * back through proxy_upstream_*; req->uc is set while the exchange runs.
 */
void upstream_send(struct upstream_pool *pool, struct gate_req *req);

/* The request gives up the exchange: the connection is closed and forgets the request. */
void upstream_detach(struct upstream_conn *uc);

/* Stops and restarts reading the response (backpressure from a slow client). */
void upstream_pause(struct upstream_conn *uc);
void upstream_resume(struct upstream_conn *uc);

#endif
