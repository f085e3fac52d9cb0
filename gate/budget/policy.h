/*
 * policy: the budget rules as plain code over a config snapshot, with no counters and no lock:
 * calendar windows, prices and costs, the margin held on a counted input, the output allowance
 * a request gets from the room its budgets leave, the policy in force at a scope (per-agent
 * allocations, max_per_request, tasks, cutoffs), and the cutoffs' verdict on a repeated body.
 * A store (gate/budget/store.h) keeps the counters and applies these rules to them; a networked
 * store applies the same ones. Internal to gate/budget.
 */
#ifndef TG_BUDGET_POLICY_H
#define TG_BUDGET_POLICY_H

#include <stdint.h>

#include "gate/budget/budget-int.h"

/* The scopes from an agent up to the org (agent first); how many. With the lock held, or over
 * a tree that does not change. */
int budget_policy_path(const struct bnode *node, int agent, int path[MAX_DEPTH]);

/* Pico-dollars per token from dollars per million tokens. */
int64_t budget_policy_pico(double usd_per_million);

/* Nano-dollars for tokens at pico-dollars each, rounded up; held at INT64_MAX, never wrapped. */
int64_t budget_policy_nusd(int64_t tokens, int64_t pico_each);

/* What a request's prices come to, in pico-dollars per token: input (the dearer of input and
 * cache writes: a reservation cannot know which it will be) and output; 0 without a price. */
void budget_policy_prices(const struct budget_ask *ask, int64_t *p_in, int64_t *p_out);

/* The tokens held for a counted input: our count can be short of the provider's, so a margin
 * is reserved on it (1% + 4 on an exact count, 12.5% + 16 on an approximate one). */
int64_t budget_policy_input_hold(const struct budget_ask *ask);

/* The least output a request can be given: 0 when it generates none, else one token, or the
 * smallest cap its API takes. */
int64_t budget_policy_min_output(const struct budget_ask *ask);

/* The token limit of an agent's own window w: its scope's (lt, -1 none), cut to its policy's
 * max_per_agent in the policy's window. */
int64_t budget_policy_agent_limit(const struct bpol *pol, enum conf_window w, int64_t lt);

/* The output allowance of a request from the room its budgets leave after its input (tokens
 * and dollars, NO_LIMIT for none). Sets allowance (per choice; -1 for no limit) and write_max;
 * returns 0, or -1 when the room per choice is below the least output the API takes. */
int budget_policy_allowance(const struct budget_ask *ask, int64_t room_t, int64_t room_n,
                            int64_t p_out, int64_t *allowance, int *write_max);

/* The cutoffs' verdict on a body the agent sent again (its record pr, already rolled on to
 * now): 0 to go on, else BUDGET_RETRIES or BUDGET_LOOP with why filled. */
int budget_policy_cutoff(const struct bpol *pol, int agent, struct bprint *pr, double now,
                         struct budget_refusal *why);

/* The key of an agent's task in a store's task table (never 0). */
uint64_t budget_policy_task_key(int agent, const char *task);

/* Fills why for a refusal other than a budget's (a task, a cutoff). */
void budget_policy_refuse_other(struct budget_refusal *why, enum budget_refusal_kind kind,
                                int scope, int usd, int64_t limit, int64_t used, int64_t needed,
                                double resets);

#endif
