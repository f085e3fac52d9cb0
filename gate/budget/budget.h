/*
 * budget: who calls (virtual keys naming agents of the org tree) and what they may spend.
 *
 * The book holds, for every scope of the tree (org, departments, teams, agents) and every
 * window (minute, hour, day, month, total), the spend settled in the current window, and for
 * every scope the amount reserved by requests under way. A request reserves its counted input
 * and an output allowance on every scope of its path at once, under one lock, and only when
 * all of them have room; when it ends it settles to its real usage and the rest goes back.
 * So no mix of concurrent requests can push settled spend past a budget: the most it can be
 * past is what a provider reports beyond what it was allowed (our input count's drift).
 *
 * Money is in nano-dollars (1e-9 USD), prices in pico-dollars per token, all integers.
 * Times are wall-clock seconds since the epoch, passed in, so tests choose the time.
 */
#ifndef TG_BUDGET_H
#define TG_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct budget_book;
struct ledger;

/* What a request asks for. */
struct budget_ask {
    int agent;               /* scope index of the agent (conf.scopes) */
    int64_t input;           /* the gate's count of the input tokens */
    int approximate;         /* that count is an estimate: a margin is reserved on it */
    int generates;           /* 0 for embeddings and the like: no output */
    int64_t max_output;      /* the request's own output cap (per choice), -1 when it sets none */
    int choices;             /* completions asked for at once ("n"); the cap applies to each */
    int64_t min_output;      /* the smallest output cap the API accepts (Responses: 16); with
                              * less room than that per choice the request is refused (429),
                              * never given a cap the provider would refuse */
    int64_t model_cap;       /* the model's output cap, -1 when unknown */
    const struct conf_price *price; /* NULL: the model has none (no dollar budget applies) */
    const char *task;        /* the x-tokengate-task id, or NULL */
    uint64_t fingerprint;    /* a hash of the request body for the cutoffs, 0 for none */
};

/* A reservation, held by the request from reserve to settle. A zeroed one holds nothing. */
struct budget_resv {
    int held;                /* reserved and not yet settled */
    int made;                /* a reservation was made (stays set after settling) */
    int agent;
    int64_t tokens, nusd;    /* reserved on every scope of the path */
    int64_t allowance;       /* output tokens each choice may produce, -1 for no limit */
    int write_max;           /* the gate must write allowance into the request */
    int64_t remaining;       /* what the tightest token budget had left for the request (before
                              * its own reservation), -1 without token budgets */
    int64_t remaining_nusd;  /* the same in dollars, -1 without dollar budgets */
    uint64_t task;           /* the task's key in the book, 0 for none */
    uint64_t fingerprint;    /* the body's, for the cutoffs, 0 for none */
    int failed;              /* set by the caller before settling: the request failed */
    int path[4], npath;      /* the scopes reserved on, agent first: settled on the same ones
                              * even when a rebind has moved the agent since */
};

enum budget_refusal_kind {
    BUDGET_OVER = 1,         /* a budget has no room: 429 budget_exceeded */
    BUDGET_TOO_LARGE,        /* the input alone is over the policy's max_per_request: 400 */
    BUDGET_TASK,             /* the task is over its policy's max_requests or max_usd: 429 */
    BUDGET_LOOP,             /* the same body again and again (loop_detection): 429 */
    BUDGET_RETRIES,          /* the same failing body past max_retries: 429 */
};

/* The cutoffs: a body sent LOOP_REPEATS times within LOOP_WINDOW seconds is a loop; a body
 * that failed more than max_retries times running is refused for RETRY_COOLDOWN seconds. */
#define BUDGET_LOOP_REPEATS 10
#define BUDGET_LOOP_WINDOW 300
#define BUDGET_RETRY_COOLDOWN 60
#define BUDGET_TASKS_MAX 16384 /* tasks tracked at once; idle ones go after an hour */

/* Why a reservation was refused: the tightest budget that did not fit. */
struct budget_refusal {
    enum budget_refusal_kind kind;
    int scope;
    enum conf_window window;
    int usd;                 /* the budget that refused is in dollars (amounts in nano-dollars) */
    int64_t limit, used, reserved, remaining, needed;
    double resets_at;        /* 0 for the total window: it never resets */
};

/* One budget as the admin API and the CLI show it. */
struct budget_view {
    int scope;
    enum conf_window window;
    struct conf_limit limit; /* -1 for none */
    int64_t used_tokens, used_nusd;
    int64_t reserved_tokens, reserved_nusd; /* of the scope: reservations span its windows */
    double start, resets_at; /* resets_at 0 for total */
};

/* An alert: a budget crossed one of the configured thresholds in its current window. */
struct budget_alert {
    int scope;
    enum conf_window window;
    int percent;
    int usd;
    int64_t used, limit;
};

/*
 * Builds the book for conf (which must outlive it): the tree, the keys of the config, and
 * when ledger is not NULL the keys, budget overrides, resets and spend recorded in it (spend
 * of every window current at now). Returns NULL with a reason in err.
 */
struct budget_book *budget_book_new(const struct conf *conf, struct ledger *ledger, double now,
                                    char *err, size_t errlen);
void budget_book_free(struct budget_book *b);

/*
 * Moves a live book onto a new config snapshot c (a reload), while workers reserve and settle.
 * Scopes are matched by label (org, department:NAME, team:NAME, agent:NAME): a matched scope
 * keeps its settled spend, its reservations under way, its tasks and cutoff records, and its
 * keys (those the admin API added too); its parent, policy and budgets come from c, over which
 * the admin API's budgets (set at run time or read from the ledger at start) stay in force. A
 * scope new in c starts with no spend. A scope gone from c (and not added through the admin
 * API) admits nothing more (budget_reserve refuses, its keys authenticate as unknown, and it
 * is no longer listed or found by label), but the reservations made on it settle on the same
 * counters as before: a reservation records the scopes it was made on. c's keys are added; a
 * key only the old config listed stops working. Windows in progress keep their bounds; the
 * next ones follow c's time zone. c must outlive the book, or the next rebind: once this
 * returns 0 the book no longer reads the old snapshot. Scope indices stay valid across rebinds
 * (one that a request holds names the same scope after). Returns 0, or -1 with a reason in
 * err and the book as it was (no org in c, out of memory).
 */
int budget_book_rebind(struct budget_book *b, const struct conf *c, double now, char *err,
                       size_t errlen);

/* The scope of the agent "anonymous" when the book's config allows requests without a key,
 * else -1. */
int budget_anonymous(struct budget_book *b);

enum budget_auth { BUDGET_AUTH_OK, BUDGET_AUTH_UNKNOWN, BUDGET_AUTH_REVOKED };

/*
 * Finds the agent of a virtual key (the secret as the client sent it). On BUDGET_AUTH_OK sets
 * *agent and writes the key's public id ("key_" and 12 hex digits) into key_id[24].
 */
enum budget_auth budget_authenticate(struct budget_book *b, const char *secret, size_t len,
                                     int *agent, char key_id[24]);

/* The public id of a key from its SHA-256. */
void budget_key_id(const unsigned char hash[32], char key_id[24]);

/* Adds a key (from the admin API), or marks one revoked (giving back its hash and agent).
 * Return 0, or -1 (out of memory, unknown id). */
int budget_key_add(struct budget_book *b, const unsigned char hash[32], int agent);
int budget_key_revoke(struct budget_book *b, const char *key_id, unsigned char hash[32],
                      int *agent);

/* Calls cb for every key: its hash, agent and whether it is revoked. Under the lock. */
void budget_keys_each(struct budget_book *b,
                      void (*cb)(void *arg, const unsigned char hash[32], int agent, int revoked),
                      void *arg);

/*
 * Reserves for a request on every budget of the agent's path. Returns 0 with r filled, or -1
 * with why filled and nothing reserved.
 */
int budget_reserve(struct budget_book *b, const struct budget_ask *ask, double now,
                   struct budget_resv *r, struct budget_refusal *why);

/*
 * Settles a reservation: gives it back and charges what the request really used, in the
 * windows current at now. A reservation not held is left alone. Alerts that this crossed are
 * written into alerts (up to cap); returns how many.
 */
int budget_settle(struct budget_book *b, struct budget_resv *r, int64_t tokens, int64_t nusd,
                  double now, struct budget_alert *alerts, int cap);

/* The cost of usage at a price, rounded up to a whole nano-dollar: input neither read from nor
 * written to the prompt cache at input, cache reads at cached_input, 5-minute cache writes at
 * cache_write, 1-hour ones at cache_write_1h, output at output. Negative counts are 0. */
int64_t budget_cost(const struct conf_price *p, int64_t input_uncached, int64_t cached,
                    int64_t write_5m, int64_t write_1h, int64_t output);

/* The output tokens of a model, when the config does not say: by family, or -1. */
int64_t budget_model_cap(const char *model);

/* ---- the tree: the config's scopes, then those added at run time ---------------------------- */

#define BUDGET_SCOPES_ADDED_MAX 4096

/* How many scopes there are; indices below it are valid for the functions that follow, which
 * need no lock (a scope's name and level never change once made; its parent may, by a rebind). */
int budget_nscopes(struct budget_book *b);
const char *budget_scope_name(struct budget_book *b, int s);
enum conf_level budget_scope_level(struct budget_book *b, int s);
int budget_scope_parent(struct budget_book *b, int s);
/* 1 when a rebind retired scope s (gone from the config: it admits nothing more), else 0. */
int budget_scope_retired(struct budget_book *b, int s);
/* The name of the scope of level lv on the path from s up to the org, or NULL. */
const char *budget_scope_at_level(struct budget_book *b, int s, enum conf_level lv);
/* "org", "department:NAME", "team:NAME", "agent:NAME", written into buf. */
const char *budget_scope_label(struct budget_book *b, int s, char *buf, size_t cap);
/* The scope a label names (also the org's own name and "anonymous"), or -1. */
int budget_find_scope(struct budget_book *b, const char *label);

/*
 * Adds a department (under the org), team (under a department) or agent (under a team),
 * with no budgets of its own and its parent's policy. Returns its index, or -1 with a reason
 * in err (a bad name, the wrong parent, a name taken at that level, the cap reached).
 */
int budget_add_scope(struct budget_book *b, enum conf_level level, const char *name, int parent,
                     double now, char *err, size_t errlen);

/* A scope's own limit for window w, as the config or the admin API set it (without a policy's
 * max_per_agent). */
struct conf_limit budget_limit(struct budget_book *b, int scope, enum conf_window w);

/* Whether the agent's policy has cutoffs, so that its requests need a body fingerprint. */
int budget_has_cutoffs(struct budget_book *b, int agent);

/* Admin overrides: a new limit for a scope's window (-1 for none), and a manual reset. */
int budget_set_limit(struct budget_book *b, int scope, enum conf_window w,
                     struct conf_limit limit);
void budget_reset(struct budget_book *b, int scope, enum conf_window w, double now);

/* ---- admin changes: checked, kept in the ledger (the book's state store), then applied ---- */

enum budget_admin_rc {
    BUDGET_ADMIN_OK = 0,
    BUDGET_ADMIN_INVALID = -1,   /* a bad scope, window, level, name or parent (400) */
    BUDGET_ADMIN_NOT_FOUND = -2, /* no such agent or key (404) */
    BUDGET_ADMIN_EXISTS = -3,    /* the name is taken at that level (409) */
    BUDGET_ADMIN_STORE = -4,     /* the ledger could not keep it: nothing changed (500) */
    BUDGET_ADMIN_MEMORY = -5,    /* kept, but not applied (500) */
};

/*
 * Each returns BUDGET_ADMIN_OK, or a failure with a message for the client in err. The change
 * is kept in the ledger first (when the book has one; a key needs one) and applied after, so a
 * failure to keep it changes nothing. set_limit: a scope's own budget for a window (-1 none);
 * reset: the window starts again from nothing at now; add_scope: as budget_add_scope, its index
 * in *scope; add_key: a key (its SHA-256) for an agent; revoke_key: by its public id.
 */
int budget_admin_set_limit(struct budget_book *b, int scope, enum conf_window w,
                           struct conf_limit lim, char *err, size_t errlen);
int budget_admin_reset(struct budget_book *b, int scope, enum conf_window w, double now,
                       char *err, size_t errlen);
int budget_admin_add_scope(struct budget_book *b, enum conf_level level, const char *name,
                           int parent, double now, int *scope, char *err, size_t errlen);
int budget_admin_add_key(struct budget_book *b, const unsigned char hash[32], int agent,
                         double now, char *err, size_t errlen);
int budget_admin_revoke_key(struct budget_book *b, const char *key_id, double now, char *err,
                            size_t errlen);

/*
 * Calls cb for every scope and window (all of them when all is set, else only those with a
 * limit), as of now, under the book's lock: cb must not call back into the book.
 */
void budget_each(struct budget_book *b, double now, int all,
                 void (*cb)(void *arg, const struct budget_view *v), void *arg);

/* How full the tightest budget on agent's path is (agent, team, department, org; every window
 * with a limit, tokens and dollars; settled spend and reservations under way), as a fraction:
 * 0 with no limit, 1 at the limit, above 1 past it. */
double budget_path_used(struct budget_book *b, int agent, double now);

/* What the policy in force at agent says of routing: on_exhaustion downgrade, and routing's
 * prefer_cost and max_latency_ms (-1 none). */
void budget_routing_policy(struct budget_book *b, int agent, int *downgrade, int *prefer_cost,
                           int64_t *max_latency_ms);

/* What the policy in force at agent says of caching, copied out (a rebind may change it while
 * the caller uses it): its `cache:` key, each setting at its default when the policy leaves it
 * out; every default with no policy, with no book (an open gate) or agent < 0. */
struct conf_policy_cache budget_cache_policy(struct budget_book *b, int agent);

/* Reservations under way, summed over scopes of level agent (0 when all settled). */
int64_t budget_reserved_total(struct budget_book *b);

/* The start and end of the window holding now (end is 0 for total), in the zone z (the config
 * snapshot's, conf.tz; NULL for UTC): a day or a month starts at the first instant of its local
 * date, an hour at the local hour's start. Reads no process state (TZ): any thread may call it. */
void budget_window_bounds(const struct conf_tz *z, enum conf_window w, double now, double *start,
                          double *end);

#endif
