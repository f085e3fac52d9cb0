/*
 * ledger: the synchronous calls on the admin connection (start-up reads, admin API writes,
 * the journal's recovery). See ledger.h.
 */
#include "gate/budget/ledger-int.h"
#include "gate/budget/bstate.h"
#include "gate/budget/recsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- synchronous calls on the admin connection ----------------------------------------------- */

/*
 * Takes the admin lock and prepares sql on the admin connection. Returns the statement with
 * the lock held, or NULL with the lock released after logging what failed.
 */
static sqlite3_stmt *admin_begin(struct ledger *l, const char *sql, const char *doing)
{
    sqlite3_stmt *st = NULL;

    pthread_mutex_lock(&l->amu);
    if (l->adb == NULL) {
        /* the writer lost the file and has not made it again yet */
        fprintf(stderr, "tokengate: ledger: %s: the ledger is not open\n", doing);
        pthread_mutex_unlock(&l->amu);
        return NULL;
    }
    if (sqlite3_prepare_v2(l->adb, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "tokengate: ledger: %s: %s\n", doing, sqlite3_errmsg(l->adb));
        sqlite3_finalize(st);
        pthread_mutex_unlock(&l->amu);
        return NULL;
    }
    return st;
}

/*
 * Ends what admin_begin began: rc is the last sqlite3_step's result, SQLITE_DONE for success
 * (anything else is logged). Finalizes the statement and releases the lock. Returns 0, 1 when
 * no_change_is_1 is set and the statement changed no row, or -1.
 */
static int admin_finish(struct ledger *l, sqlite3_stmt *st, int rc, const char *doing,
                        int no_change_is_1)
{
    int out = rc == SQLITE_DONE ? 0 : -1;

    if (rc != SQLITE_DONE)
        fprintf(stderr, "tokengate: ledger: %s: %s\n", doing, sqlite3_errmsg(l->adb));
    else if (no_change_is_1 && sqlite3_changes(l->adb) == 0)
        out = 1;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->amu);
    return out;
}

static int64_t column_count(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ledger_spend_since(struct ledger *l, double since,
                       void (*cb)(void *arg, const char *agent, int64_t tokens, int64_t nusd),
                       void *arg)
{
    const char *doing = "reading spend since a time";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(l,
                       "SELECT agent, SUM(tokens_charged), SUM(cost_nusd) FROM requests"
                       " WHERE ts >= ? AND agent IS NOT NULL GROUP BY agent",
                       doing);
    if (st == NULL)
        return -1;
    sqlite3_bind_double(st, 1, since);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t tokens = sqlite3_column_int64(st, 1), nusd = sqlite3_column_int64(st, 2);
        if (tokens != 0 || nusd != 0)
            cb(arg, (const char *)sqlite3_column_text(st, 0), tokens, nusd);
    }
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_savings_since(struct ledger *l, const char *column, const char *name, double since,
                         struct ledger_savings *out)
{
    const char *doing = "reading savings";
    char sql[700];
    sqlite3_stmt *st;
    int rc, version = 0;

    memset(out, 0, sizeof(*out));
    if (column != NULL && strcmp(column, "agent") != 0 && strcmp(column, "team") != 0 &&
        strcmp(column, "department") != 0)
        return -1;
    st = admin_begin(l, "PRAGMA user_version", doing);
    if (st == NULL)
        return -1;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
        rc = SQLITE_DONE;
    }
    if (admin_finish(l, st, rc, doing, 0) != 0)
        return -1;
    if (version < 4)
        return -2;
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*), COALESCE(SUM(cache = 'hit'), 0), COALESCE(SUM(cache = 'miss'), 0),"
             " COALESCE(SUM(cache = 'bypass'), 0), COALESCE(SUM(saved_tokens), 0),"
             " COALESCE(SUM(saved_nusd), 0), COALESCE(SUM(cached), 0),"
             " COALESCE(SUM(prompt_saved_nusd), 0), COALESCE(SUM(route_saved_nusd != 0), 0),"
             " COALESCE(SUM(route_saved_nusd), 0), COALESCE(SUM(cost_nusd), 0)"
             " FROM requests WHERE ts >= ?%s%s%s",
             column ? " AND " : "", column ? column : "", column ? " = ?" : "");
    st = admin_begin(l, sql, doing);
    if (st == NULL)
        return -1;
    sqlite3_bind_double(st, 1, since);
    if (column != NULL)
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t *f[] = {&out->requests,      &out->hits,          &out->misses,
                        &out->bypasses,      &out->saved_tokens,  &out->saved_nusd,
                        &out->cached_tokens, &out->prompt_saved_nusd, &out->routed,
                        &out->route_saved_nusd, &out->cost_nusd};
        for (int i = 0; i < (int)(sizeof(f) / sizeof(f[0])); i++)
            *f[i] = sqlite3_column_int64(st, i);
        rc = SQLITE_DONE;
    }
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_keys_load(struct ledger *l, void (*cb)(void *arg, const struct ledger_key *k), void *arg)
{
    const char *doing = "loading keys";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(l, "SELECT id, hash, agent, created, revoked FROM keys ORDER BY created",
                       doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct ledger_key k = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .hash_hex = (const char *)sqlite3_column_text(st, 1),
            .agent = (const char *)sqlite3_column_text(st, 2),
            .created = sqlite3_column_double(st, 3),
            .revoked = sqlite3_column_double(st, 4), /* NULL reads as 0.0 */
        };
        cb(arg, &k);
    }
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_key_insert(struct ledger *l, const struct ledger_key *k)
{
    const char *doing = "inserting a key";
    sqlite3_stmt *st;

    st = admin_begin(
        l, "INSERT INTO keys (id, hash, agent, created, revoked) VALUES (?, ?, ?, ?, ?)", doing);
    if (st == NULL)
        return -1;
    ledger_bind_text(st, 1, k->id);
    ledger_bind_text(st, 2, k->hash_hex);
    ledger_bind_text(st, 3, k->agent);
    sqlite3_bind_double(st, 4, k->created);
    if (k->revoked > 0)
        sqlite3_bind_double(st, 5, k->revoked);
    else
        sqlite3_bind_null(st, 5);
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_key_revoke(struct ledger *l, const char *id, double t)
{
    const char *doing = "revoking a key";
    sqlite3_stmt *st;

    /* revoking twice keeps the first time */
    st = admin_begin(l, "UPDATE keys SET revoked = COALESCE(revoked, ?) WHERE id = ?", doing);
    if (st == NULL)
        return -1;
    sqlite3_bind_double(st, 1, t);
    ledger_bind_text(st, 2, id);
    return admin_finish(l, st, sqlite3_step(st), doing, 1);
}

int ledger_budget_set(struct ledger *l, const char *scope, const char *window, int64_t tokens,
                      int64_t nusd)
{
    const char *doing = "setting a budget";
    sqlite3_stmt *st;

    st = admin_begin(l,
                       "INSERT INTO budgets (scope, \"window\", tokens, nusd, updated)"
                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, \"window\") DO UPDATE SET"
                       " tokens = excluded.tokens, nusd = excluded.nusd,"
                       " updated = excluded.updated",
                       doing);
    if (st == NULL)
        return -1;
    ledger_bind_text(st, 1, scope);
    ledger_bind_text(st, 2, window);
    ledger_bind_count(st, 3, tokens);
    ledger_bind_count(st, 4, nusd);
    sqlite3_bind_double(st, 5, now());
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_budgets_load(struct ledger *l,
                        void (*cb)(void *arg, const char *scope, const char *window, int64_t tokens,
                                   int64_t nusd),
                        void *arg)
{
    const char *doing = "loading budgets";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(
        l, "SELECT scope, \"window\", tokens, nusd FROM budgets ORDER BY scope, \"window\"", doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           column_count(st, 2), column_count(st, 3));
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_reset_add(struct ledger *l, const char *scope, const char *window, double t)
{
    const char *doing = "adding a reset";
    sqlite3_stmt *st;

    st = admin_begin(l, "INSERT INTO resets (scope, \"window\", t) VALUES (?, ?, ?)", doing);
    if (st == NULL)
        return -1;
    ledger_bind_text(st, 1, scope);
    ledger_bind_text(st, 2, window);
    sqlite3_bind_double(st, 3, t);
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_resets_load(struct ledger *l,
                       void (*cb)(void *arg, const char *scope, const char *window, double t),
                       void *arg)
{
    const char *doing = "loading resets";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(l, "SELECT scope, \"window\", t FROM resets ORDER BY t", doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           sqlite3_column_double(st, 2));
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_scope_add(struct ledger *l, const char *level, const char *name, const char *parent,
                     double t)
{
    const char *doing = "adding a scope";
    sqlite3_stmt *st;

    st = admin_begin(l, "INSERT INTO scopes (level, name, parent, created) VALUES (?, ?, ?, ?)",
                       doing);
    if (st == NULL)
        return -1;
    ledger_bind_text(st, 1, level);
    ledger_bind_text(st, 2, name);
    ledger_bind_text(st, 3, parent);
    sqlite3_bind_double(st, 4, t);
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_scopes_load(struct ledger *l,
                       void (*cb)(void *arg, const char *level, const char *name,
                                  const char *parent),
                       void *arg)
{
    const char *doing = "loading scopes";
    sqlite3_stmt *st;
    int rc, have = 0;

    /* a version 1 ledger opened read-only (by the CLI) has no scopes table: none were added */
    st = admin_begin(l, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scopes'",
                     doing);
    if (st == NULL)
        return -1;
    have = (rc = sqlite3_step(st)) == SQLITE_ROW;
    if (admin_finish(l, st, have ? SQLITE_DONE : rc, doing, 0) < 0)
        return -1;
    if (!have)
        return 0;
    /* departments before teams before agents, each in the order they were added */
    st = admin_begin(l,
                       "SELECT level, name, parent FROM scopes ORDER BY CASE level"
                       " WHEN 'department' THEN 0 WHEN 'team' THEN 1 ELSE 2 END, created",
                       doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_has_request(struct ledger *l, const char *id, double ts)
{
    const char *doing = "looking for a request";
    sqlite3_stmt *st;
    int rc, found;

    st = admin_begin(l, "SELECT 1 FROM requests WHERE id = ? AND ts = ? LIMIT 1", doing);
    if (st == NULL)
        return -1;
    ledger_bind_text(st, 1, id);
    sqlite3_bind_double(st, 2, ts);
    rc = sqlite3_step(st);
    found = rc == SQLITE_ROW;
    if (admin_finish(l, st, found ? SQLITE_DONE : rc, doing, 0) < 0)
        return -1;
    return found;
}

int ledger_insert_now(struct ledger *l, const struct ledger_rec *rec)
{
    const char *doing = "inserting a request";
    sqlite3_stmt *st;

    st = admin_begin(l, ledger_insert_sql, doing);
    if (st == NULL)
        return -1;
    ledger_bind_rec(st, rec);
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

/* ---- the ledger as a state store (bstate.h) ------------------------------------------------ */

static int st_scopes_load(void *ctx,
                          void (*cb)(void *arg, const char *level, const char *name,
                                     const char *parent),
                          void *arg)
{
    return ledger_scopes_load(ctx, cb, arg);
}

static int st_keys_load(void *ctx, void (*cb)(void *arg, const struct ledger_key *k), void *arg)
{
    return ledger_keys_load(ctx, cb, arg);
}

static int st_budgets_load(void *ctx,
                           void (*cb)(void *arg, const char *scope, const char *window,
                                      int64_t tokens, int64_t nusd),
                           void *arg)
{
    return ledger_budgets_load(ctx, cb, arg);
}

static int st_resets_load(void *ctx,
                          void (*cb)(void *arg, const char *scope, const char *window, double t),
                          void *arg)
{
    return ledger_resets_load(ctx, cb, arg);
}

static int st_spend_since(void *ctx, double since,
                          void (*cb)(void *arg, const char *agent, int64_t tokens, int64_t nusd),
                          void *arg)
{
    return ledger_spend_since(ctx, since, cb, arg);
}

static int st_scope_add(void *ctx, const char *level, const char *name, const char *parent,
                        double t)
{
    return ledger_scope_add(ctx, level, name, parent, t);
}

static int st_key_insert(void *ctx, const struct ledger_key *k)
{
    return ledger_key_insert(ctx, k);
}

static int st_key_revoke(void *ctx, const char *id, double t)
{
    return ledger_key_revoke(ctx, id, t);
}

static int st_budget_set(void *ctx, const char *scope, const char *window, int64_t tokens,
                         int64_t nusd)
{
    return ledger_budget_set(ctx, scope, window, tokens, nusd);
}

static int st_reset_add(void *ctx, const char *scope, const char *window, double t)
{
    return ledger_reset_add(ctx, scope, window, t);
}

static const struct budget_state_ops ledger_state_ops = {
    .scopes_load = st_scopes_load,
    .keys_load = st_keys_load,
    .budgets_load = st_budgets_load,
    .resets_load = st_resets_load,
    .spend_since = st_spend_since,
    .scope_add = st_scope_add,
    .key_insert = st_key_insert,
    .key_revoke = st_key_revoke,
    .budget_set = st_budget_set,
    .reset_add = st_reset_add,
};

void ledger_state(struct ledger *l, struct budget_state *out)
{
    out->ops = &ledger_state_ops;
    out->ctx = l;
}

/* ---- the ledger as a record sink (recsink.h) ----------------------------------------------- */

static int sink_submit(void *ctx, const struct ledger_rec *rec)
{
    return ledger_submit(ctx, rec);
}

static uint64_t sink_pending(void *ctx)
{
    return ledger_pending(ctx);
}

static int sink_failing(void *ctx)
{
    return ledger_failing(ctx);
}

static const struct rec_sink_ops ledger_sink_ops = {
    .submit = sink_submit,
    .pending = sink_pending,
    .failing = sink_failing,
};

void ledger_sink(struct ledger *l, struct rec_sink *out)
{
    out->ops = &ledger_sink_ops;
    out->ctx = l;
}
