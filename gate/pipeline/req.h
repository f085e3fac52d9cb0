/*
 * req: one client request, from its first byte to its log record.
 *
 * A request lives in its own arena; it holds a reference to the config snapshot it started
 * with. Its lifecycle is one explicit state machine (enum req_phase) and it ends in exactly one
 * place, req_finish(), which settles, logs and counts it and hands the connection back. It is
 * never freed there: req_finish marks it done and its worker frees it at a safe point of its
 * loop (the completion queue), so code may touch req after any call that might have answered;
 * it checks req->phase to know whether the request is still going on.
 */
#ifndef TG_REQ_H
#define TG_REQ_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "gate/api/apierr.h"
#include "gate/api/dialect.h"
#include "gate/budget/budget.h"
#include "gate/api/endpoint.h"
#include "gate/http/httphdr.h"
#include "gate/http/reqparse.h"
#include "gate/http/sse.h"
#include "gate/pipeline/tcount.h"
#include "gate/api/outcap.h"
#include "gate/api/usage.h"
#include "gate/util/jsonedit.h"
#include "gate/upstream/upstream.h"
#include "gate/pipeline/completion.h"
#include "routing/route.h"
#include "routing/xlate.h"

struct arena;
struct decode;
struct evbuffer;
struct event;
struct gate_conn;
struct conn_handler;
struct gate_worker;
struct pipeline;
struct resp_filter;
struct resp_source;
struct classify_state;
struct mcp_req;

/* The life of a request, in order. */
enum req_phase {
    REQ_READING,    /* headers and body arriving (conn) */
    REQ_ADMITTING,  /* the pipeline's stages run: parse, authenticate ... dispatch */
    REQ_WAITING,    /* parked by a stage that answered WAIT: it resumes through the worker's
                     * completion queue, and whoever resumes it owns it meanwhile (a client
                     * that leaves only clears req->conn) */
    REQ_DISPATCHED, /* sent upstream, no answer yet */
    REQ_RELAYING,   /* the answer is coming and going to the client */
    REQ_SETTLING,   /* charged; its record submitted (a held-back end is written after) */
    REQ_LOGGING,    /* req_finish runs: the log record, the counters */
    REQ_DONE,       /* over; freed at the worker's next safe point */
};

/* What the budgets made of the request, for the ledger and the log (req_decision_name). */
enum req_decision {
    REQ_DECISION_NONE,            /* no budget decision: logged as none, recorded as "error" */
    REQ_DECISION_ADMITTED,
    REQ_DECISION_REJECTED,        /* a budget */
    REQ_DECISION_REJECTED_POLICY, /* max_per_request */
    REQ_DECISION_REJECTED_TASK,
    REQ_DECISION_REJECTED_CUTOFF,
    REQ_DECISION_UNAUTHENTICATED,
    REQ_DECISION_UNAVAILABLE,     /* the ledger is behind or failing, the journal is full */
    REQ_DECISION_INVALID,         /* a cap or a task header that is not valid */
};

/* One target tried and given up (fallback), for the record. */
struct req_attempt {
    const char *target;  /* the model entry's name */
    const char *reason;  /* "status 503", "connect failed", "timeout", "retry-after 2 s" ... */
    int status;          /* the provider's status, 0 for none */
    int64_t tokens, nusd; /* what the attempt was charged (spend.c) */
};
#define REQ_MAX_ATTEMPTS 8

/* What routing made of the request (stage_route.c, fallback.c). */
struct req_route {
    struct route_decision d;     /* the candidates; d.next - 1 is the one in use */
    int routed;                  /* route_decide answered ROUTE_OK */
    const char *label;           /* the classifier's label: NULL not asked, "" none */
    struct classify_state *cls;  /* classify.c's, NULL when no classifier was asked */
    enum xlate_dir xlate;        /* the translation the target in use needs */
    cJSON *xdoc;                 /* the request translated for it (count), capped and sent
                                  * (prepare); in the arena */
    struct xlate_stream *xs;     /* its stream state (malloc'd; freed when the request is) */
    struct req_attempt attempts[REQ_MAX_ATTEMPTS]; /* targets given up, in order */
    int nattempts;
    int64_t count_memo[4];       /* input tokens by tokenizer (route_input.input_tokens) */
    const void *count_enc[4];
    double count_factor[4];
    uint32_t count_est[4];       /* ... parts estimated, and approximate (tok_count_result) */
    int count_approx[4];
    int64_t count_took[4];       /* ... and how long counting took (us) */
    int ncount;
    int64_t t_sent, t_head;      /* the attempt in use: dispatched, its head came (us) */
    int reported;                /* the attempt in use was reported to health */
    int fb_status;               /* its head said fall back (429, 5xx, 529): its body is
                                  * read and dropped, then fallback_start */
    int64_t fb_retry_ms;         /* ... and the retry-after it sent */
    int downgrades;              /* tiers gone down under budget pressure */
    int client_status;           /* the status the client gets when the translation changed it
                                  * (529 -> 503, an answer it could not read -> 502), else 0 */
};

/* What the caches made of the request (stage_cache.c, stage_prepare.c; cache/). */
enum req_cache_state {
    REQ_CACHE_NONE = 0, /* not a request the response cache looks at (no header written) */
    REQ_CACHE_BYPASS,   /* could be, but not this one (why: cache.why) */
    REQ_CACHE_MISS,     /* looked up, not found: its answer may be stored (cache.store) */
    REQ_CACHE_HIT,      /* answered from the cache: no provider, no usage */
};

struct cache_val;
struct entry_fill;
struct replay_src;
struct req_cache {
    enum req_cache_state state;
    const char *why;          /* a bypass's reason ("temperature 1", "x-tokengate-cache: off") */
    int store;                /* a miss whose answer is stored when it completes */
    int level;                /* enum conf_level: the scope entries are shared within */
    const char *scope;        /* ... its label ("team:search"), in the arena */
    char *key;                /* the entry's key (in the arena), klen bytes */
    size_t klen;
    int64_t ttl_ms;
    struct cache_val *hit;    /* the entry answering (a reference, released when the request
                               * is freed) */
    int64_t saved_tokens;     /* a hit: the provider tokens the entry's answer cost */
    int64_t saved_nusd;       /* ... at the model's price today */
    struct entry_fill *fill;  /* a miss's answer gathered (filter_cachefill.c), malloc'd:
                               * freed at its end or with the request */
    struct replay_src *replay; /* a hit's replay (source_cache.c), in the arena */
    int breakpoints;          /* prompt caching: cache_control breakpoints the gate placed */
    int prompt_key;           /* ... prompt_cache_key set by the gate */
    /* savings (spend.c's settle): against what the request would have cost */
    int64_t prompt_saved_nusd; /* provider prompt caching: reads at the input price, less
                                * what was paid for them and the writes' premium */
    int64_t route_saved_nusd;  /* routing: the model asked for's price, less the one paid */
    /* /v1/tool-cache (toolcache_ep.c), for the log: NULL tool for other requests */
    const char *tool;
    const char *tool_op;       /* "put", "get", "lookup", "delete" */
    enum req_cache_state tool_state; /* a lookup's HIT or MISS, else NONE */
};

/* What became of the upstream exchange, for charging (spend.c). */
enum req_upstream {
    REQ_UP_NONE,   /* never sent */
    REQ_UP_SENT,   /* handed to its source (on a connection once req->ex.forwarded) */
    REQ_UP_FAILED, /* reset, timeout, an answer that cannot be read */
};

struct gate_req {
    struct arena *arena;
    struct gate_conn *conn;
    struct gate_worker *w;
    struct conf *conf;
    enum req_phase phase;
    struct completion cq;           /* its item in the worker's completion queue */
    const struct pipeline *pl;      /* the stage table it runs (pipeline.h) */
    int stage;                      /* the index of the stage running, or that WAITs */
    int resume_rc;                  /* enum stage_rc: what pipeline_post resumes it with */
    enum apierr fail_kind;          /* why a stage answered STAGE_FAIL (stage_fail) */
    const char *fail_msg;

    struct http_msg msg;            /* the client's request, as reqparse read it */

    enum endpoint ep;
    const struct api_dialect *client_api;   /* the API the client speaks (its key, body, our
                                             * errors), NULL for none: see dialect.h */
    const struct api_dialect *upstream_api; /* the API the provider answers in (path, key,
                                             * usage, output text); NULL for none */
    enum conf_format fmt;           /* format of errors the gate writes */
    char id[80];
    char peer[64];

    /* what the gate read from the body */
    cJSON *json;
    const char *model;              /* as the client asked */
    const char *upstream_model;     /* as sent upstream when renamed, else NULL */
    const struct conf_provider *prov;
    int stream;
    int usage_injected;
    struct jsonedit_op edits[OUTCAP_MEMBERS + 5]; /* the members admit and prepare rewrite
                                                   * (values: JSON text in the arena): caps,
                                                   * model, stream_options, and prompt
                                                   * caching's (promptprep.h: at most 3) */
    int nedits;

    /* the upstream exchange: ex.request is the head and body as sent, kept for one retry;
     * ex.uc is set while it runs */
    struct upstream_exchange ex;
    const struct resp_source *src; /* where the answer comes from (source.h), once dispatched */
    struct resp_filter *chain;     /* what it passes through to the client (filter.h) */
    int up_status;
    const struct http_header *up_headers; /* the provider's, in this arena */
    int n_up_headers;
    int up_sse;                     /* the response is an event stream */
    struct evbuffer *up_body;       /* a non-stream response, gathered */
    struct sse_parser sse;
    struct decode *dec;             /* undoes the provider's gzip or deflate, or NULL */
    int64_t out_limit;              /* output tokens past which a stream is cut, -1 for none */
    enum apierr stop_kind;          /* why relaying the answer must stop (proxy.c), */
    const char *stop_why;           /* NULL while it goes on */
    int head_sent;                  /* the client has our status line */
    int upstream_paused;            /* reading upstream is off: the client is slow */
    int draining;                   /* the client is gone: the stream is read on a moment */
    struct event *drain_ev;         /* ... until this fires and nothing waits unread */
    int64_t drain_end_us;           /* when reading on stops, whatever waits (gate_now_us) */
    size_t drained;                 /* bytes read since */
    size_t drain_owed;              /* ... of which owed when the moment ended: read */
    int drain_marked;               /* drain_owed is set */
    int detached;                   /* going on without its client (counted in its worker) */
    int tries;                      /* exchanges started: a second only on the retry path */
    struct req_route rt;            /* routing: the decision, the attempts, the translation */
    struct req_cache cache;         /* caches: the response cache's lookup, prompt caching */
    struct mcp_req *mcp;            /* the MCP proxy's part (gate/mcp/), NULL for others */
    /* adds what a table of its own knows to the request's log record (the MCP proxy's "mcp"
     * object), or NULL; rec's nodes are allocated where jsonmem says */
    void (*log_more)(const struct gate_req *req, cJSON *rec);

    /* identity and spend (spend.c) */
    int agent;                      /* the caller's scope in conf.scopes, -1 for none */
    char key_id[24];                /* the key's public id, "" for none */
    const struct conf_model *cm;    /* the model's entry: its price */
    struct budget_resv resv;
    enum req_decision decision;     /* for the ledger and the log */
    enum req_upstream upstream;     /* what became of the exchange */
    int up_timed_out;               /* ... it failed waiting for the provider (504): the
                                     * provider had the request and may be making it */
    int out_unreadable;             /* the provider's answer could not be read (it does not
                                     * parse, or it is over the size cap): charged no less
                                     * than the reservation when it was a 2xx (spend.c) */
    int tc_finished;                /* tcount_finish ran */
    uint32_t jslot;                 /* its slot in the crash journal, 0 for none (spend.c) */
    int64_t charged_tokens, charged_nusd;

    /* the record */
    struct usage usage;
    struct tcount tc;               /* the gate's own count */
    int status;
    uint64_t bytes_out;             /* bytes in: msg.bytes_in */
    int64_t t_start, t_first_byte, t_end; /* us, monotonic */
    double wall_start;                    /* seconds since the epoch */
    const char *error;                    /* why it failed, for the log */
};

/*
 * Gives the request its id, once: the client's x-request-id when it is 1 to 64 characters of
 * [A-Za-z0-9._:-], else a new random one.
 */
void req_assign_id(struct gate_req *req);

/*
 * Sets the format of the gate's errors for this request from what is known of it: the
 * endpoint, else an Anthropic-looking path or an anthropic-version header.
 */
void req_guess_format(struct gate_req *req);

/* Finds a request header by lower-case name. Returns NULL when absent. */
const struct http_header *req_header(const struct gate_req *req, const char *name);

/*
 * Answers the request with a gate error in the request's API format and finishes it. For a
 * stream already under way, ends it with an error event instead.
 */
void req_fail(struct gate_req *req, enum apierr kind, const char *message);

/*
 * Writes a complete response: status, content type, the body; adds x-request-id, framing and
 * Connection headers. extra_headers is a CRLF-terminated block or NULL.
 */
void req_respond(struct gate_req *req, int status, const char *ctype, const char *extra_headers,
                 const char *body, size_t len);

/*
 * Counts the first total bytes of the request's body (its declared Content-Length, or what
 * has come of a chunked body) in the memory that requests in flight hold across the gate,
 * twice: the body and the copy of it sent upstream. Returns NULL, or the message of the 503 to
 * answer when that would pass limits.max_memory_in_flight (nothing more is then counted).
 */
const char *req_hold_body(struct gate_req *req, uint64_t total);

/*
 * Bounds what follows (the body's parse, checks and rewrite): the request's arena may not grow
 * past limits.max_request_memory, nor requests in flight past limits.max_memory_in_flight.
 */
void req_memory_bound(struct gate_req *req);

/*
 * Ends the bound of req_memory_bound. Returns 0, or -1 after answering (as req_fail_memory)
 * when an allocation was refused in between.
 */
int req_memory_unbound(struct gate_req *req);

/*
 * Answers a request whose memory ran out by the reason its arena gives: 413 naming
 * limits.max_request_memory, 503 with retry-after naming limits.max_memory_in_flight, else
 * 500. Finishes the request.
 */
void req_fail_memory(struct gate_req *req);

/* Lets go of the exchange of the attempt in use and what its answer left in the request (the
 * source, the filter chain, the parsed head, the decoder, the edits), so that the pipeline can
 * run again from count on another target (fallback.c). */
void req_reset_exchange(struct gate_req *req);

/* The name of a decision for the ledger and the log; NULL for REQ_DECISION_NONE. */
const char *req_decision_name(enum req_decision d);

/*
 * The one finalize path: settles the request (if nothing did), logs it, counts it, lets the
 * connection go on, and hands the request to its worker's completion queue to be freed there.
 * Does nothing for a request that is over, or that is WAITING (what resumes it finishes it).
 * req stays valid until the worker's loop next runs its completion queue.
 */
void req_finish(struct gate_req *req);

/* How connections call the request layer (gate/http/conn.h): set up by gate/server.c. */
extern const struct conn_handler req_conn_handler;

#endif
