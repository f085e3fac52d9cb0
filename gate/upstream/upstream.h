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
 * Sends req->up_request over an idle connection of the pool, or a new one while the pool has
 * fewer than upstream.max_connections; else req waits in the pool's queue (req->uc is then a
 * waiting entry, see upstream_waiting) until a connection comes free. The outcome comes back
 * through proxy_upstream_*; req->uc is set while the exchange runs or the request waits.
 * req->forwarded is set once the request is on a connection. A full queue (upstream.max_waiting)
 * or a wait longer than timeouts.upstream_connect ends in proxy_upstream_failed with
 * APIERR_UNAVAILABLE, before anything was sent.
 */
void upstream_send(struct upstream_pool *pool, struct gate_req *req);

/* Whether uc is a request's place in its pool's queue (no connection yet). NULL: 0. */
int upstream_waiting(const struct upstream_conn *uc);

/*
 * The request gives up the exchange: the connection is closed and forgets the request (a
 * waiting request leaves the queue).
 */
void upstream_detach(struct upstream_conn *uc);

/* Stops and restarts reading the response (backpressure from a slow client). */
void upstream_pause(struct upstream_conn *uc);
void upstream_resume(struct upstream_conn *uc);

#endif
