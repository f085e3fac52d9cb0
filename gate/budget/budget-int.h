/*
 * budget-int: the book's insides, shared by budget.c (windows, reservations, settlement) and
 * budgetbook.c (the tree, keys, and building the book from the config and the ledger). Not for
 * use outside those two files.
 */
#ifndef TG_BUDGET_INT_H
#define TG_BUDGET_INT_H

#include <pthread.h>
#include <stdint.h>

#include "gate/budget/budget.h"

#define MAX_DEPTH 4 /* org, department, team, agent */
#define NO_LIMIT INT64_MAX

struct bscope {
    struct conf_limit lim[CONF_WIN__COUNT];
    int64_t used_t[CONF_WIN__COUNT], used_n[CONF_WIN__COUNT];
    double start[CONF_WIN__COUNT], end[CONF_WIN__COUNT]; /* end 0: not yet computed */
    int64_t res_t, res_n;
    unsigned alerted[CONF_WIN__COUNT]; /* thresholds raised in the current window, by bit */
    int64_t agent_max;                 /* the policy's max_per_agent, -1 none (agents only) */
    int64_t agent_min;                 /* the policy's min_per_agent, -1 none (agents only) */
    int *floors;                       /* agents under this scope that have a min_per_agent */
    int nfloors;
    enum conf_window agent_window;
    int64_t max_per_request;           /* the policy's, -1 none (agents only) */
    int64_t task_max_nusd, task_max_requests; /* the policy's, -1 none (agents only) */
    int max_retries, loop_detection;          /* the policy's cutoffs (agents only) */
    struct bprint *prints;                    /* recent bodies, for the cutoffs; lazily made */
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
};

/* A scope's place in the tree: the config's, then those added through the admin API. Never
 * changed once made, so a worker may read a scope it has an index of without the lock. */
struct bnode {
    const char *name;
    char *owned;            /* the name of an added scope */
    enum conf_level level;
    int parent;
    int policy;             /* conf.policies index set at this scope, -1 to inherit */
};

struct budget_book {
    const struct conf *conf;
    pthread_mutex_t mu;
    struct bnode *node;     /* cap entries, n made */
    struct bscope *s;
    int n, cap;
    struct bkey *keys; /* open addressing on the hash's first bytes */
    size_t keys_cap, nkeys;
    struct btask *tasks; /* BUDGET_TASKS_MAX * 2 slots, open addressing; made on first use */
    size_t ntasks;
};

/* Moves a scope's window on when now is past its end: spend starts again from nothing. */
void budget_roll(struct bscope *s, enum conf_window w, double now);

#endif
