/*
 * store: where a budget book keeps its counters (spend per scope and window, reservations
 * under way, tasks, the cutoffs' records) and the limits they are checked against, behind one
 * interface. The rules that say what to check (gate/budget/policy.h) are plain code; a store
 * applies them to its counters atomically. One implementation today, in memory (with the
 * ledger behind, through the book's state store: budget_store_mem_new); a networked store
 * (Redis, a shared database) would be another.
 *
 * A reservation may take time with a networked store: reserve answers BUDGET_ADMITTED or
 * BUDGET_REFUSED at once, or BUDGET_PENDING, and then later runs k->done on the caller's
 * worker (through k->post, the worker's completion queue). The in-memory store always answers
 * at once. Everything else answers at once. How a networked store plugs in, and what the gate
 * does with a late answer (a bound of timeouts.upstream_connect, then 503; a late grant is
 * released): gate/budget/README.md.
 */
#ifndef TG_BUDGET_STORE_H
#define TG_BUDGET_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "gate/budget/budget.h"
#include "gate/budget/bstate.h"

enum budget_rc {
    BUDGET_ADMITTED = 0, /* the reservation is made: r is filled */
    BUDGET_REFUSED = -1, /* nothing is reserved: why is filled */
    BUDGET_PENDING = 1,  /* decided later: k->done will say which */
};

/* How a store hands a late answer back to the worker that asked. */
struct budget_cont {
    /* Runs fn(fn_arg) on the caller's worker loop; callable from any thread; returns 0, or -1
     * when it cannot (the worker is stopping: the store then calls nothing and frees its part) */
    int (*post)(void *worker, void (*fn)(void *fn_arg), void *fn_arg);
    void *worker;
    /* Called on the caller's worker once a pending reservation is decided: rc is
     * BUDGET_ADMITTED (r filled) or BUDGET_REFUSED (why filled). r and why are the caller's
     * and must stay valid until then. */
    void (*done)(void *arg, enum budget_rc rc);
    void *arg;
};

struct budget_store;

struct budget_store_ops {
    const char *name;
    /* Reserves for ask on every counter of the agent's path, as the policy says. k NULL: the
     * caller cannot wait, and the store must answer at once (refusing if it cannot decide).
     * ask is read during the call only (a store that answers later copies what it needs); a
     * pending reservation is answered once, through k->post, late or not. */
    enum budget_rc (*reserve)(struct budget_store *st, const struct budget_ask *ask, double now,
                              struct budget_resv *r, struct budget_refusal *why,
                              const struct budget_cont *k);
    /* Gives a held reservation back and charges the real usage (see budget_settle); returns
     * how many alerts it wrote. */
    int (*settle)(struct budget_store *st, struct budget_resv *r, int64_t tokens, int64_t nusd,
                  double now, struct budget_alert *alerts, int cap);
    /* Calls cb for every scope and window as of now (those with a limit unless all). */
    void (*peek)(struct budget_store *st, double now, int all,
                 void (*cb)(void *arg, const struct budget_view *v), void *arg);
    /* The same for one scope's windows with a limit (an unknown scope: no call). */
    void (*peek_scope)(struct budget_store *st, int scope, double now,
                       void (*cb)(void *arg, const struct budget_view *v), void *arg);
    /* A scope's limit for a window; -1 for an unknown scope or window. */
    int (*set_limit)(struct budget_store *st, int scope, enum conf_window w,
                     struct conf_limit limit);
    /* Starts a scope's window again from nothing; -1 for an unknown scope or window. */
    int (*reset)(struct budget_store *st, int scope, enum conf_window w, double now);
    /* Fills the counters from a state store: the spend of every window current at now, counted
     * from the latest reset of each. 0, or -1 with a reason in err. */
    int (*load)(struct budget_store *st, const struct budget_state *state, double now, char *err,
                size_t errlen);
    void (*free)(struct budget_store *st);
};

/* A store: its operations. An implementation embeds it as its first member. */
struct budget_store {
    const struct budget_store_ops *ops;
};

/* budget_book_new with any state store (a zeroed one for none): the book keeps a copy of
 * *state (whose ctx must outlive it), loads the tree's additions, keys, budgets and spend from
 * it, and keeps admin changes in it. */
struct budget_book *budget_book_open(const struct conf *conf, const struct budget_state *state,
                                     double now, char *err, size_t errlen);

/* The in-memory store over the book's tree (counters and limits in the book's tables, under
 * its lock). NULL when out of memory. */
struct budget_store *budget_store_mem_new(struct budget_book *b);

/* The store of a book (not to be freed: the book frees it). */
struct budget_store *budget_book_store(struct budget_book *b);

/* Gives the book another store (which it then owns, freeing the one it had): how a networked
 * store, or a test's, is put in. Before the book is shared with workers. */
void budget_book_set_store(struct budget_book *b, struct budget_store *st);

/*
 * Reserves through the book's store, for a caller that can wait: BUDGET_ADMITTED or
 * BUDGET_REFUSED now, or BUDGET_PENDING and later k->done on the caller's worker.
 * budget_reserve is this with k NULL.
 */
enum budget_rc budget_reserve_async(struct budget_book *b, const struct budget_ask *ask,
                                    double now, struct budget_resv *r,
                                    struct budget_refusal *why, const struct budget_cont *k);



#endif
