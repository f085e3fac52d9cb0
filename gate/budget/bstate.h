/*
 * bstate: where the budget module keeps what must outlive a restart, as one interface: the
 * changes made through the admin API (scopes, keys, budgets, resets) and the spend per agent
 * since an instant. The SQLite ledger implements it (ledger_state in gate/budget/ledger.h);
 * so could a shared database. The ledger's other face, the record sink that requests are
 * written to, is ledger_submit.
 *
 * Every function returns 0, or -1 when the store cannot be read or written (key_revoke: 1 when
 * it has no such key). The loads call cb for each item, in the order they were stored.
 */
#ifndef TG_BUDGET_BSTATE_H
#define TG_BUDGET_BSTATE_H

#include <stdint.h>

struct ledger_key; /* gate/budget/ledger.h: id, hash_hex, agent, created, revoked */

struct budget_state_ops {
    int (*scopes_load)(void *ctx,
                       void (*cb)(void *arg, const char *level, const char *name,
                                  const char *parent),
                       void *arg);
    int (*keys_load)(void *ctx, void (*cb)(void *arg, const struct ledger_key *k), void *arg);
    int (*budgets_load)(void *ctx,
                        void (*cb)(void *arg, const char *scope, const char *window,
                                   int64_t tokens, int64_t nusd),
                        void *arg);
    int (*resets_load)(void *ctx,
                       void (*cb)(void *arg, const char *scope, const char *window, double t),
                       void *arg);
    int (*spend_since)(void *ctx, double since,
                       void (*cb)(void *arg, const char *agent, int64_t tokens, int64_t nusd),
                       void *arg);
    int (*scope_add)(void *ctx, const char *level, const char *name, const char *parent,
                     double t);
    int (*key_insert)(void *ctx, const struct ledger_key *k);
    int (*key_revoke)(void *ctx, const char *id, double t);
    int (*budget_set)(void *ctx, const char *scope, const char *window, int64_t tokens,
                      int64_t nusd);
    int (*reset_add)(void *ctx, const char *scope, const char *window, double t);
};

/* A state store: its functions and their first argument. A zeroed one (ops NULL) is none. */
struct budget_state {
    const struct budget_state_ops *ops;
    void *ctx;
};

#endif
