/*
 * budget-int: the book's insides, shared by budget.c (windows, reservations, settlement) and
 * budgetbook.c (the tree, keys, and building the book from the config and the ledger). Not for
 * use outside those two files.
 */
#ifndef TG_BUDGET_INT_H
#define TG_BUDGET_INT_H

#include <pthread.h>
#include <stdint.h>

#include "gate/budget/bstate.h"
#include "gate/budget/budget.h"

#define MAX_DEPTH 4 /* org, department, team, agent */
#define NO_LIMIT INT64_MAX

/* What the policy in force at an agent asks of it (all -1 / 0 for other scopes). */
struct bpol {
    int64_t agent_max;                 /* the policy's max_per_agent, -1 none */
    int64_t agent_min;                 /* the policy's min_per_agent, -1 none */
    enum conf_window agent_window;
    int64_t max_per_request;           /* -1 none */
    int64_t task_max_nusd, task_max_requests; /* -1 none */
    int max_retries, loop_detection;          /* the cutoffs */
    int downgrade;                     /* on_exhaustion: downgrade */
    int prefer_cost;                   /* routing: prefer_cost */
    int64_t max_latency_ms;            /* routing: max_latency_ms, -1 none */
    struct conf_policy_cache cache;    /* cache: (its defaults when no policy says) */
};

struct bscope {
    struct conf_limit lim[CONF_WIN__COUNT];
    int64_t used_t[CONF_WIN__COUNT], used_n[CONF_WIN__COUNT];
    double start[CONF_WIN__COUNT], end[CONF_WIN__COUNT]; /* end 0: not yet computed */
    int64_t res_t, res_n;
    unsigned alerted[CONF_WIN__COUNT]; /* thresholds raised in the current window, by bit */
    struct bpol pol;
    int *floors;                       /* agents under this scope that have a min_per_agent */
    int nfloors;
    struct bprint *prints;             /* recent bodies, for the cutoffs; lazily made */
};

/* A body an agent sent recently. */
#define PRINTS 16
struct bprint {
    uint64_t fp;
    uint32_t count, fails;
    double first, last;
};

/* A task: requests and dollars of one x-tokengate-task id of one agent. key 0 is empty. */
struct btask {
    uint64_t key;
    int64_t requests, nusd, res_nusd;
    int64_t inflight;
    double last;
};

struct bkey {
    unsigned char hash[32];
    int agent;   /* -1: empty slot */
    int revoked;
    int from_conf;  /* the config in force lists it */
    int from_admin; /* the admin API added or revoked it (the ledger has it) */
};

/* A scope's place in the tree: the config's, then those added through the admin API or by a
 * rebind. An index is never reused and a node never goes away, so a worker may read the name
 * and level of a scope it has an index of without the lock; parent may change on a rebind
 * (read it with __atomic_load_n), the rest is read under the lock. */
struct bnode {
    const char *name;       /* owned by the book */
    enum conf_level level;
    int parent;
    int policy;             /* conf.policies index set at this scope, -1 to inherit */
    int in_conf;            /* the config in force declares it */
    int added;              /* added through the admin API (the ledger has it) */
    int retired;            /* neither: admits nothing more; reservations made settle */
};

/* A budget set through the admin API (or read from the ledger at start), by label: it stays
 * in force over a rebind, as over a restart. */
struct bover {
    char *label;
    enum conf_window w;
    struct conf_limit lim;
};
#define BUDGET_OVERRIDES_MAX 65536

/* Memory the book stops using while workers may still read it (a node array outgrown, an
 * org name replaced): freed with the book. */
struct bgrave {
    struct bgrave *next;
    void *p;
};

struct budget_book {
    const struct conf *conf; /* read under the lock: a rebind replaces it */
    pthread_mutex_t mu;
    struct bnode *node;     /* cap entries, n made; read with __atomic_load_n outside the lock */
    struct bscope *s;
    int n, cap;
    struct bkey *keys; /* open addressing on the hash's first bytes */
    size_t keys_cap, nkeys;
    struct btask *tasks; /* BUDGET_TASKS_MAX * 2 slots, open addressing; made on first use */
    size_t ntasks;
    struct bover *over;  /* admin overrides, by label */
    size_t nover, over_cap;
    struct bgrave *grave;
    struct budget_store *store; /* the counters (store.h) */
    struct budget_state state;  /* what admin changes are kept in (bstate.h); ops NULL: none */
};

/* Moves a scope's window on when now is past its end: spend starts again from nothing. */
void budget_roll(const struct budget_book *b, struct bscope *s, enum conf_window w, double now);

/* budgetbook.c, with the lock held (or before the book is shared) */
#define BKEY_CONF 1  /* from: the config */
#define BKEY_ADMIN 2 /* from: the admin API or the ledger */
int budget_key_put(struct budget_book *b, const unsigned char hash[32], int agent, int revoked,
                   int from);
int budget_find_at(const struct budget_book *b, enum conf_level level, const char *name);
/* The node array, for reading outside the lock. */
static inline struct bnode *budget_nodes(const struct budget_book *b)
{
    return __atomic_load_n(&b->node, __ATOMIC_ACQUIRE);
}
/* policy.c: the policy fields of scope i of level lv, given the tree's parents and the policies
 * set per scope (conf.policies indices, -1 to inherit), both by scope index. */
void budget_pol_of(const struct conf *c, enum conf_level lv, const int *parent,
                   const int *policy, int i, struct bpol *out);
/* Records an admin override (replacing one of the same label and window). 0 or -1 (full, out of
 * memory). */
int budget_over_put(struct budget_book *b, const char *label, enum conf_window w,
                    struct conf_limit lim);
/* Whether a scope may be added (budget_add_scope's rules): 0, or -1 with a reason in err, -2
 * when the name is taken at that level. With the lock held. */
int budget_scope_check(const struct budget_book *b, enum conf_level level, const char *name,
                       int parent, char *err, size_t errlen);

#endif
