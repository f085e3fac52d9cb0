/*
 * ledger: the durable record of spend, in SQLite (WAL mode) in the gate's state directory.
 *
 * Request records are written by a thread of its own in batched transactions, so that no
 * event loop ever waits on the disk. When a transaction fails (a full disk, a lock held by
 * another process, the file deleted), its records are kept and written again with back-off:
 * in memory up to LEDGER_RETRY_CAP records, past that appended to a spill file beside the
 * database (PATH.spill), which is written into the database when it works again, or at the
 * next open. The writer notices the file deleted or replaced (by its inode) and makes it
 * again, copying what the deleted file held when its directory is still there. A record may carry a completion callback, called on the
 * ledger thread once the transaction holding it has committed: the gate holds back the end of
 * a response until then, so a client that saw its response complete has its spend on disk.
 *
 * Besides the request records, the ledger keeps what the admin API changes at run time:
 * virtual keys (by SHA-256 hash only), budget overrides and manual window resets. Those calls
 * are synchronous and are made from the admin thread or at start-up, never from a worker.
 *
 * Amounts of money are integers in nano-dollars (1e-9 USD).
 */
#ifndef TG_LEDGER_H
#define TG_LEDGER_H

#include <stddef.h>
#include <stdint.h>

struct ledger;

enum ledger_sync {
    LEDGER_SYNC_NORMAL = 0, /* WAL, synchronous=NORMAL: survives a crash of the process */
    LEDGER_SYNC_FULL = 1,   /* synchronous=FULL: every batch fsynced, survives power loss */
};

/* One request, as it is recorded. Strings are copied by ledger_submit; NULL stays NULL. */
struct ledger_rec {
    double ts;              /* request start, seconds since the epoch */
    const char *id;         /* request id */
    const char *key_id;     /* the virtual key's public id, or NULL (anonymous, no key) */
    const char *agent, *team, *department;
    const char *endpoint;   /* "/v1/chat/completions" */
    const char *model;      /* as asked */
    const char *served_model; /* as sent upstream */
    const char *provider;
    int status;             /* HTTP status the client got */
    int stream;
    int64_t in_own, out_own;       /* the gate's own count, -1 when not counted */
    int64_t in_usage, out_usage;   /* the provider's, -1 when it reported none */
    int64_t cached, cache_write;   /* from the provider's usage, 0 when none */
    int64_t cache_write_1h;        /* ... the part of cache_write written for an hour */
    int64_t tokens_charged;        /* what the budgets were charged */
    int64_t cost_nusd;
    int64_t reserved_tokens;       /* what was reserved before forwarding */
    int64_t latency_us;
    const char *decision;   /* "admitted", "rejected", "unauthenticated", "error" ... */
    const char *error;      /* why it failed, or NULL */
    /* routing (issue 12): the rule that matched, the tier, the targets given up before the
     * one that answered (a JSON array of {target, reason, status}), the translation applied
     * ("openai.chat->anthropic.messages"); NULL for none */
    const char *rule, *tier, *attempts, *translation;
    /* caches (issue 13): the response cache's "hit", "miss" or "bypass" (NULL: not a request
     * it looks at); what a hit saved (the provider tokens its answer cost, and their price);
     * what provider prompt caching saved (cached reads at the input price, less their price
     * and the writes' premium: may be below 0); what routing saved (the usage at the price of
     * the model asked for, less the cost paid; 0 when not routed) */
    const char *cache;
    int64_t saved_tokens, saved_nusd, prompt_saved_nusd, route_saved_nusd;

    /* called on the ledger thread after the commit that holds this record (or after the
     * attempt failed: ok is then 0); may be NULL */
    void (*done)(void *arg, int ok);
    void *arg;

    /* the request's slot in the crash journal (journal.h), 1-based, 0 for none: cleared once
     * the record is committed, or in the spill file */
    uint32_t jslot;
};

/*
 * Opens (creating it and its schema when needed) the database at path, in WAL mode with the
 * given sync level, and starts the writer thread. Returns NULL with a reason in err.
 */
struct ledger *ledger_open(const char *path, enum ledger_sync sync, char *err, size_t errlen);

/*
 * Opens an existing database read-only, without a writer thread, for the CLI (usage, logs)
 * and for start-up reads. Returns NULL with a reason in err.
 */
struct ledger *ledger_open_readonly(const char *path, char *err, size_t errlen);

/*
 * Queues a copy of rec for the writer. Thread-safe; never blocks on I/O. Returns 0, or -1
 * when the queue is full (more than 65,536 records waiting) or memory ran out: the caller
 * then treats the record as not written (its done callback is not called).
 */
int ledger_submit(struct ledger *l, const struct ledger_rec *rec);

/* Records queued and not yet committed; transactions that failed, ever; records in the
 * spill file now. */
uint64_t ledger_pending(struct ledger *l);
uint64_t ledger_failed(struct ledger *l);
uint64_t ledger_spilled(struct ledger *l);

/* 1 while the last attempt to commit failed and records wait for the next one, else 0.
 * Thread-safe; accepts NULL (0). */
int ledger_failing(struct ledger *l);

/* Why it is failing (SQLite's reason and what was being done), "" when it is not. */
void ledger_why(struct ledger *l, char *buf, size_t cap);

/*
 * Sets the function called on the writer thread when the ledger starts failing (failing 1,
 * with the reason) and when it works again (failing 0, with the records still waiting: 0
 * once all were written). It must not call the ledger.
 */
void ledger_set_alert(struct ledger *l,
                      void (*cb)(void *arg, int failing, const char *why, uint64_t pending),
                      void *arg);

struct journal;
/* Sets the journal whose slots the writer clears once their records are committed. */
void ledger_set_journal(struct ledger *l, struct journal *j);

/* Commits what is queued, stops the writer and closes the database. Accepts NULL. */
void ledger_close(struct ledger *l);

/* ---- start-up and admin reads and writes (synchronous) ------------------------------------ */

/*
 * These share one connection and its lock, so they may be called from any thread, one at a
 * time. A callback runs with that lock held: it must not call the ledger, and the strings it
 * is given last only until it returns.
 */

/*
 * Calls cb once per agent with the tokens and nano-dollars charged to it by requests that
 * started at or after since (seconds since the epoch). Agents with nothing are skipped.
 * Returns 0, or -1 on a database error.
 */
int ledger_spend_since(struct ledger *l, double since,
                       void (*cb)(void *arg, const char *agent, int64_t tokens, int64_t nusd),
                       void *arg);

/* What caches and routing saved the requests of one scope since a time (schema 4 columns). */
struct ledger_savings {
    int64_t requests;                 /* requests recorded */
    int64_t hits, misses, bypasses;   /* the response cache's outcomes */
    int64_t saved_tokens, saved_nusd; /* what its hits did not spend */
    int64_t cached_tokens;            /* input tokens read from providers' prompt caches */
    int64_t prompt_saved_nusd;        /* ... net of the writes' premium */
    int64_t routed;                   /* requests whose routing saved (or cost) something */
    int64_t route_saved_nusd;
    int64_t cost_nusd;                /* what was paid */
};

/*
 * Sums the savings of the requests that started at or after since and whose column (one of
 * "agent", "team", "department"; NULL for every request: the org) is name. Returns 0 with out
 * filled, -2 when the ledger is older than its savings columns (schema 3 or before: a gate of
 * this version adds them when it opens it), or -1 on a database error.
 */
int ledger_savings_since(struct ledger *l, const char *column, const char *name, double since,
                         struct ledger_savings *out);

/* A virtual key as stored: its public id ("key_" + 12 hex), the SHA-256 of the secret as 64
 * hex digits, its agent, when it was made and revoked (0 when not). */
struct ledger_key {
    const char *id;
    const char *hash_hex;
    const char *agent;
    double created, revoked;
};

int ledger_keys_load(struct ledger *l, void (*cb)(void *arg, const struct ledger_key *k),
                     void *arg);
int ledger_key_insert(struct ledger *l, const struct ledger_key *k);
/* Marks a key revoked at time t. Returns 0, 1 when no such key, -1 on a database error. */
int ledger_key_revoke(struct ledger *l, const char *id, double t);

/* A budget set through the admin API: scope ("team:search"), window ("day"), the limits
 * (-1 for none). A later set for the same scope and window replaces it. */
int ledger_budget_set(struct ledger *l, const char *scope, const char *window, int64_t tokens,
                      int64_t nusd);
int ledger_budgets_load(struct ledger *l,
                        void (*cb)(void *arg, const char *scope, const char *window, int64_t tokens,
                                   int64_t nusd),
                        void *arg);

/* A manual reset of a scope's window at time t: spend before t no longer counts in it. */
int ledger_reset_add(struct ledger *l, const char *scope, const char *window, double t);
int ledger_resets_load(struct ledger *l,
                       void (*cb)(void *arg, const char *scope, const char *window, double t),
                       void *arg);

/* A department, team or agent added through the admin API: its level ("agent"), name and
 * parent scope ("team:search"). Returns 0, or -1 (a database error, or it exists). */
int ledger_scope_add(struct ledger *l, const char *level, const char *name, const char *parent,
                     double t);
/* Calls cb for each added scope, parents before children. */
int ledger_scopes_load(struct ledger *l,
                       void (*cb)(void *arg, const char *level, const char *name,
                                  const char *parent),
                       void *arg);

/*
 * For the journal's recovery at start: whether a record with this id and start time exists
 * (1, 0, or -1 on a database error), and a synchronous insert of one record (0 or -1).
 */
int ledger_has_request(struct ledger *l, const char *id, double ts);
int ledger_insert_now(struct ledger *l, const struct ledger_rec *rec);

/* The ledger as a record sink (gate/budget/recsink.h): ledger_submit, ledger_pending and
 * ledger_failing over l, which must outlive their use. */
struct rec_sink;
void ledger_sink(struct ledger *l, struct rec_sink *out);

/* The ledger as the budget module's state store (gate/budget/bstate.h): fills *out with
 * functions over l, which must outlive their use. */
struct budget_state;
void ledger_state(struct ledger *l, struct budget_state *out);

#endif
