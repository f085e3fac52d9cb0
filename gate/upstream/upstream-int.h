/*
 * upstream-int: what the two halves of the upstream module share (private to gate/upstream):
 * upstream.c runs one connection and the exchange on it; pool.c keeps a provider's
 * connections, their cap and the queue of requests waiting for one.
 */
#ifndef TG_UPSTREAM_INT_H
#define TG_UPSTREAM_INT_H

#include <event2/util.h>
#include <llhttp.h>
#include <stdint.h>
#include <sys/queue.h>

#include "gate/http/httphdr.h"
#include "gate/upstream/upstream.h"

struct bufferevent;
struct event;
struct gate_worker;

enum uc_state {
    UC_CONNECTING,
    UC_BUSY,
    UC_IDLE,
    UC_WAITING, /* a request queued for a connection: no socket */
};

enum uc_timer {
    UT_CONNECT,
    UT_FIRST_BYTE,
    UT_STREAM_IDLE,
    UT_POOL_IDLE,
    UT_WAIT, /* queued for a connection */
};

struct upstream_conn {
    struct upstream_pool *pool;
    struct bufferevent *bev;
    llhttp_t parser;
    enum uc_state state;
    struct upstream_exchange *ex; /* the exchange it carries (or queues), NULL when none */
    struct event *timer;
    enum uc_timer timer_kind;
    unsigned exchanges; /* completed on this connection */
    int64_t idle_since; /* us, monotonic, while in the pool */
    size_t got;         /* response bytes of this exchange */

    struct hdr_reader hr; /* the response head, in pieces */
    const char *reject;   /* set by a parser callback */

    unsigned sent : 1; /* the whole request has left the gate */
    unsigned in_parse : 1;
    unsigned dead : 1;
    unsigned done : 1;
    TAILQ_ENTRY(upstream_conn) link;
};

TAILQ_HEAD(uc_list, upstream_conn);

struct upstream_pool {
    struct gate_worker *w;
    const struct conf_provider *prov;
    struct uc_list idle;
    struct uc_list busy;
    struct uc_list wait; /* WAITING entries, oldest first */
    int nidle;
    int max_idle; /* idle connections kept: upstream.pool_max_idle, 0 for a retired pool */
    int nconns;         /* busy (connecting included) and idle: at most max_connections */
    int nwait;          /* at most max_waiting */
    struct event *kick; /* hands freed connections to the queue, from the loop */
};

/* A new connection of the pool, connecting (counted in pool->nconns). NULL with a reason. */
struct upstream_conn *uc_new(struct upstream_pool *pool, char *err, size_t errlen);

/* Frees a connection (or a queue entry) and lets the pool's queue have its slot. */
void uc_free(struct upstream_conn *uc);

/* Starts ex on uc: sends the request, arms the timers, marks ex forwarded once on it. */
void uc_start(struct upstream_conn *uc, struct upstream_exchange *ex);

/* Whether an idle connection may be reused (a peek finds it open). */
int uc_alive(struct upstream_conn *uc);

/* Arms the connection's one timer for kind, from the request's or the worker's snapshot. */
void uc_arm(struct upstream_conn *uc, enum uc_timer kind);

/* The connection's timer fired (also a queue entry's wait): the failure its kind names. */
void uc_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Starts ex on an idle connection, a new one within the cap, or queues it (pool.c). */
void pool_dispatch(struct upstream_pool *pool, struct upstream_exchange *ex, int first);

#endif
