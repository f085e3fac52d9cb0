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
 * Sends req->up_request over an idle connection of the pool, or a new one while the pool has
 * fewer than upstream.max_connections; else req waits in the pool's queue (req->uc is then a
 * waiting entry, see upstream_waiting) until a connection comes free. The outcome comes back
 * through proxy_upstream_*; req->uc is set while the exchange runs or the request waits.
 * req->forwarded is set once the request is on a connection. A full queue (upstream.max_waiting)
 * or a wait longer than timeouts.upstream_connect ends in proxy_upstream_failed with
 * APIERR_UNAVAILABLE, before anything was sent. A NULL pool (none could be made) fails the
 * request with 502 the same way.
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
