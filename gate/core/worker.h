/*
 * worker: the types every part of the data plane shares: the server (what all workers share:
 * the config snapshot, TLS contexts, the book, the ledger), its workers (one event base each)
 * and their counters. Types only, and the one function that totals the counters; the server
 * module (gate/server.c) builds and runs them.
 */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "gate/util/memcap.h"

struct event;
struct event_base;
struct evconnlistener;
struct evdns_base;
struct poolset;
struct reqlog;
struct gate_conn;
struct gate_req;
struct budget_book;
struct ledger;
struct journal;
struct gate_admin;
struct tcount_drift;
struct route_health;
struct labelcache;
struct rstats;
struct completion_queue;
struct conn_handler;
struct spend_wait;
struct cache_store;
struct prefixcount;
struct cache_stats;
struct toolstats;
struct mcp_hub;
struct pipeline;

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
    struct conf *conf;            /* the snapshot new requests pin: this thread only (a reload
                                   * posts reload_ev, and the worker takes the new one) */
    struct event *reload_ev;
    uint64_t conf_gen;            /* the generation of conf: the reload waits for it */
    struct poolset *pools;        /* upstream pools by provider name (gate/upstream/poolset.h) */
    struct gate_stats stats;
    struct tcount_drift *drift;   /* our token count against the provider's, by model */
    struct gate_conn *conns;      /* every open client connection, for shutdown */
    uint64_t rng;                 /* request ids; this thread only */
    int draining;                 /* stopping: no new connections or requests */
    int stopped;                  /* the loop is over: requests can no longer wait on it */
    int detached;                 /* requests going on without their client (proxy.c) */
    int64_t drain_deadline;       /* us, monotonic */
    struct event *drain_timer;
    const struct conn_handler *conn_handler; /* how connections call the request layer */
    struct completion_queue *cq;  /* requests handed back to this worker, and freed here
                                   * (gate/pipeline/completion.h) */
    struct spend_wait *spend_spare; /* a reservation's hand-over, reused (spend.c) */
    pthread_t thread;
};

/* The command line's overrides of the file, applied again on each reload. */
struct gate_overrides {
    const char *listen_host; /* NULL: the file's listen */
    int listen_port;
    int workers;             /* 0: the file's */
};

struct gate_server {
    /* The snapshot in force, swapped by a reload: read it through gate_conf_get (a reference,
     * under conf_mu), never directly. Requests read their own (req->conf), workers w->conf. */
    struct conf *conf_live;
    uint64_t conf_gen;            /* bumped at each swap, under conf_mu */
    pthread_mutex_t conf_mu;      /* conf_live, conf_gen, and the workers' taking it */
    pthread_cond_t conf_taken;    /* a worker took a new snapshot */
    struct conf *book_conf;       /* the snapshot the book reads (a reference) */
    /* Loads the config file again and swaps it in (gate_reload, gate/reload.h): for the admin
     * API, which does not include the top of the data plane. Returns 0 with a summary in msg,
     * or -1 with "FILE:LINE: reason". */
    int (*reload)(struct gate_server *srv, char *msg, size_t msglen);
    pthread_mutex_t reload_mu;    /* one reload at a time; stopping */
    int stopping;                 /* SIGINT/SIGTERM came: no more reloads */
    struct gate_overrides ov;
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
    /* what the data plane asks of the admin side, set up by gate/server.c (so gate/pipeline
     * does not include gate/admin): /status's document (cJSON_free it; NULL when out of
     * memory), and an alert (a JSON object) for the admin's subscribers */
    char *(*status_json)(struct gate_server *srv);
    /* routing's shared state (routing/health.h, labelcache.h, rstats.h): made at start,
     * kept across reloads (targets by model name) */
    struct route_health *health;
    struct labelcache *labels;
    struct rstats *rstats;
    void (*alert)(struct gate_server *srv, const char *json);
    /* the caches (cache/): made at start, kept across reloads (a reload sets their caps);
     * NULL when off */
    struct cache_store *responses; /* exact responses (cache/store.h) */
    struct cache_store *tools;     /* tool results and MCP tools/list (cache/toolcache.h) */
    struct prefixcount *prefix;    /* prefix token counts (cache/prefixcount.h) */
    struct cache_stats *cstats;    /* their counters (cache/cstats.h); never NULL once started */
    struct toolstats *toolstats;   /* tool calls by server, tool and agent (cache/toolstats.h) */
    struct mcp_hub *mcp;           /* the MCP proxy's sessions and counters (gate/mcp/mcp.h) */
    const struct pipeline *mcp_pipeline; /* its stage table, for /mcp/ paths (req.c) */
};

/* How long a stopping gate lets requests under way finish. */
#define GATE_DRAIN_MS 10000

/* The workers' counters summed: what /status and /metrics show. */
struct gate_totals {
    uint64_t requests;
    uint64_t by_status[600];
    int64_t open_conns;
    uint64_t upstream_conns_opened;
    uint64_t tokens_in, tokens_out, cost_nusd;
    uint64_t rejected_budget, rejected_policy, rejected_auth, rejected_unavailable;
};

/* The snapshot in force, with a reference the caller drops (conf_unref). Any thread. */
struct conf *gate_conf_get(struct gate_server *srv);

/* Sums every worker's counters into t (relaxed reads: each is exact, their sum a moment's). */
void gate_stats_total(const struct gate_server *srv, struct gate_totals *t);

#endif
