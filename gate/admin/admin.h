/*
 * admin: the admin API and metrics, on a listener of their own (loopback by default), served
 * by a thread of their own with libevent's HTTP server; every request needs the admin token.
 *
 *   GET    /admin/v1/budgets[?scope=S&window=W&all=1]  budgets, spend and reservations
 *   PUT    /admin/v1/budgets        {"scope","window","tokens","usd"}: set or raise a budget
 *   POST   /admin/v1/budgets/reset  {"scope","window"}: spend before now no longer counts
 *   GET    /admin/v1/scopes         the org tree: the config's scopes and those added
 *   POST   /admin/v1/scopes         {"level","name","parent"}: add a department, team or agent
 *   GET    /admin/v1/keys           the keys: public id, agent, revoked
 *   POST   /admin/v1/keys           {"agent"}: a new key, shown once
 *   DELETE /admin/v1/keys/ID        revoke a key
 *   GET    /metrics                 Prometheus text format
 *
 * The same thread posts budget alerts to the configured webhook (gate/admin/alert.c).
 */
#ifndef TG_ADMIN_H
#define TG_ADMIN_H

#include <stddef.h>

struct gate_server;
struct gate_admin;

/*
 * Starts the admin thread for srv: the listener when the config has an admin section (its
 * token from token_env, else from token_file, which is made with a random token when it does
 * not exist), and the webhook sender when alerts have one. Prints the listener's address to
 * stderr. Returns NULL with a reason in err.
 */
struct gate_admin *gate_admin_start(struct gate_server *srv, char *err, size_t errlen);

/* Stops the thread and frees everything. Accepts NULL. */
void gate_admin_stop(struct gate_admin *a);

/* Queues an alert (a JSON object) for the webhook. Thread-safe; drops it past a cap. */
void gate_admin_alert(struct gate_admin *a, const char *json);

#endif
