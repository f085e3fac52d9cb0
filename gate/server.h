/*
 * server: worker threads, each with its own event base, SO_REUSEPORT listener and upstream
 * pools; the server owns the config snapshot, TLS contexts and the request log they share.
 */
#ifndef TG_SERVER_H
#define TG_SERVER_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "gate/util/memcap.h"
#include "gate/pipeline/tcount.h"

struct event_base;
struct evconnlistener;
struct evdns_base;
struct upstream_pool;
struct reqlog;
struct gate_conn;
struct gate_req;
struct budget_book;
struct ledger;
struct journal;
struct gate_admin;

/* Counters a worker updates and /status reads from another thread: relaxed atomics. */
struct gate_stats {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t by_status[600];
    atomic_int_fast64_t open_conns;
    atomic_uint_fast64_t upstream_conns_opened;
    atomic_uint_fast64_t tokens_in, tokens_out, cost_nusd; /* charged to budgets */
    atomic_uint_fast64_t rejected_budget, rejected_policy, rejected_auth, rejected_unavailable;
};

struct gate_worker {
    int id;
    struct gate_server *srv;
    struct event_base *base;
    struct evconnlistener *listener;
    struct evdns_base *dns;
    struct upstream_pool **pools; /* one per provider, by conf_provider.index */
    struct gate_stats stats;
    struct tcount_drift drift;    /* our token count against the provider's, by model */
    struct gate_conn *conns;      /* every open client connection, for shutdown */
    uint64_t rng;                 /* request ids; this thread only */
    int draining;                 /* stopping: no new connections or requests */
    int stopped;                  /* the loop is over: requests can no longer wait on it */
    int detached;                 /* requests going on without their client (proxy.c) */
    int64_t drain_deadline;       /* us, monotonic */
    struct event *drain_timer;
    pthread_mutex_t settled_mu;   /* requests whose ledger record committed (spend.c) */
    struct gate_req *settled, **settled_tail;
    struct event *settled_ev;
    pthread_t thread;
};

struct gate_server {
    struct conf *conf;
    SSL_CTX *upstream_ctx;        /* client side of TLS to providers */
    SSL_CTX *listen_ctx;          /* server side, NULL without listener TLS */
    struct reqlog *reqlog;        /* NULL without a request log */
    struct ledger *ledger;        /* NULL without a ledger */
    struct journal *journal;      /* requests in flight, for a crash; NULL without an org */
    struct budget_book *book;     /* NULL when no org is configured: an open gate */
    struct gate_admin *admin;     /* NULL without an admin listener */
    struct gate_worker *workers;
    int nworkers;
    int port;                     /* the port bound, which may have been 0 in the config */
    struct timespec started;      /* CLOCK_MONOTONIC */
    struct memcap mem;            /* held by requests in flight: limits.max_memory_in_flight */
};

/*
 * Starts the workers on conf and serves until SIGINT or SIGTERM (SIGHUP is logged and
 * ignored: no reload yet). Prints the address it
 * listens on to stderr once bound. Returns 0 after a clean stop, -1 (with a message on
 * stderr) when it could not start. Takes a reference on conf.
 */
int gate_server_run(struct conf *conf);

/* How long a stopping gate lets requests under way finish. */
#define GATE_DRAIN_MS 10000

/* Writes the /status JSON document into a malloc'd string. */
char *gate_server_status_json(struct gate_server *srv);

struct bufferevent;
struct event_base;

/* A bufferevent on base for a TLS connection, not yet made, to host (a name or an address
 * literal), from the providers' TLS context: SNI set for a name, the certificate checked
 * against the name or the address, a peer's close without close_notify taken as the end.
 * Used for providers and the alert webhook. NULL when it cannot be made. */
struct bufferevent *gate_tls_bufferevent(const struct gate_server *srv, struct event_base *base,
                                         const char *host);

/* Sends a budget alert (a JSON object) to the configured webhook, if any. Thread-safe. */
void gate_server_alert(struct gate_server *srv, const char *json);

/* Wall-clock seconds since the epoch (CLOCK_REALTIME, moved by TOKENGATE_TEST_CLOCK_OFFSET_S
 * when a test set it), for windows and records. */
double gate_wall_now(void);

/* Writes t (seconds since the epoch) as "2026-11-23T16:18:59Z" into buf. */
void gate_iso_utc(double t, char *buf, size_t cap);

/* Microseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
int64_t gate_now_us(void);

#endif
