/*
 * budgetadmin: the changes the admin API makes to the budgets, made by the budget module:
 * each is checked, kept in the book's state store (the ledger), and only then applied, so
 * that what a restart restores is what the gate ran with. See budget.h.
 */
#include "gate/budget/budget-int.h"
#include "gate/budget/ledger.h"
#include "gate/budget/store.h"

#include <stdio.h>
#include <string.h>

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return rc;
}

static int valid_scope(struct budget_book *b, int scope, enum conf_window w)
{
    return scope >= 0 && scope < budget_nscopes(b) && (unsigned)w < CONF_WIN__COUNT;
}

int budget_admin_set_limit(struct budget_book *b, int scope, enum conf_window w,
                           struct conf_limit lim, char *err, size_t errlen)
{
    const struct budget_state *st = &b->state;
    char label[300];

    if (!valid_scope(b, scope, w))
        return fail(err, errlen, BUDGET_ADMIN_INVALID, "no such scope or window");
    budget_scope_label(b, scope, label, sizeof(label));
    if (st->ops != NULL &&
        st->ops->budget_set(st->ctx, label, conf_window_name(w), lim.tokens, lim.nusd) < 0)
        return fail(err, errlen, BUDGET_ADMIN_STORE, "the ledger could not store the budget");
    if (budget_set_limit(b, scope, w, lim) < 0)
        return fail(err, errlen, BUDGET_ADMIN_MEMORY,
                    "the budget is stored, but the gate could not apply it (too many budgets "
                    "set); it applies from the next start");
    return BUDGET_ADMIN_OK;
}

int budget_admin_reset(struct budget_book *b, int scope, enum conf_window w, double now,
                       char *err, size_t errlen)
{
    const struct budget_state *st = &b->state;
    char label[300];

    if (!valid_scope(b, scope, w))
        return fail(err, errlen, BUDGET_ADMIN_INVALID, "no such scope or window");
    budget_scope_label(b, scope, label, sizeof(label));
    if (st->ops != NULL && st->ops->reset_add(st->ctx, label, conf_window_name(w), now) < 0)
        return fail(err, errlen, BUDGET_ADMIN_STORE, "the ledger could not store the reset");
    budget_reset(b, scope, w, now);
    return BUDGET_ADMIN_OK;
}

int budget_admin_add_scope(struct budget_book *b, enum conf_level level, const char *name,
                           int parent, double now, int *scope, char *err, size_t errlen)
{
    const struct budget_state *st = &b->state;
    char label[300];
    int rc;

    pthread_mutex_lock(&b->mu);
    rc = budget_scope_check(b, level, name, parent, err, errlen);
    pthread_mutex_unlock(&b->mu);
    if (rc < 0)
        return rc == -2 ? BUDGET_ADMIN_EXISTS : BUDGET_ADMIN_INVALID;
    budget_scope_label(b, parent, label, sizeof(label));
    if (st->ops != NULL &&
        st->ops->scope_add(st->ctx, conf_level_name(level), name, label, now) < 0)
        return fail(err, errlen, BUDGET_ADMIN_STORE, "the ledger could not store the scope");
    /* checked again under the lock: a rebind may have come in between */
    *scope = budget_add_scope(b, level, name, parent, now, err, errlen);
    return *scope >= 0 ? BUDGET_ADMIN_OK : BUDGET_ADMIN_INVALID;
}

int budget_admin_add_key(struct budget_book *b, const unsigned char hash[32], int agent,
                         double now, char *err, size_t errlen)
{
    const struct budget_state *st = &b->state;
    char hash_hex[65], id[24];

    if (agent < 0 || agent >= budget_nscopes(b) ||
        budget_scope_level(b, agent) != CONF_LEVEL_AGENT)
        return fail(err, errlen, BUDGET_ADMIN_NOT_FOUND, "no such agent");
    hex(hash, 32, hash_hex);
    budget_key_id(hash, id);
    struct ledger_key k = {.id = id, .hash_hex = hash_hex,
                           .agent = budget_scope_name(b, agent), .created = now};
    /* a key that a restart would forget is not made */
    if (st->ops == NULL || st->ops->key_insert(st->ctx, &k) < 0)
        return fail(err, errlen, BUDGET_ADMIN_STORE, "the ledger could not store the key");
    if (budget_key_add(b, hash, agent) < 0)
        return fail(err, errlen, BUDGET_ADMIN_MEMORY, "out of memory");
    return BUDGET_ADMIN_OK;
}

/* Finds a key by its public id: 0 with its hash and agent, or -1. */
static int key_by_id(struct budget_book *b, const char *key_id, unsigned char hash[32],
                     int *agent)
{
    char id[24];
    int rc = -1;

    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->keys_cap && rc < 0; i++) {
        if (b->keys[i].agent < 0 || b->node[b->keys[i].agent].retired)
            continue;
        budget_key_id(b->keys[i].hash, id);
        if (strcmp(id, key_id) == 0) {
            memcpy(hash, b->keys[i].hash, 32);
            *agent = b->keys[i].agent;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int budget_admin_revoke_key(struct budget_book *b, const char *key_id, double now, char *err,
                            size_t errlen)
{
    const struct budget_state *st = &b->state;
    unsigned char hash[32];
    char hash_hex[65];
    int agent;

    if (key_by_id(b, key_id, hash, &agent) < 0)
        return fail(err, errlen, BUDGET_ADMIN_NOT_FOUND, "no key has that id");
    if (st->ops != NULL) {
        int rc = st->ops->key_revoke(st->ctx, key_id, now);
        if (rc == 1) {
            /* a key from the config has no row yet: the revocation needs one */
            hex(hash, 32, hash_hex);
            struct ledger_key k = {.id = key_id, .hash_hex = hash_hex,
                                   .agent = budget_scope_name(b, agent), .created = now,
                                   .revoked = now};
            rc = st->ops->key_insert(st->ctx, &k);
        }
        if (rc < 0)
            return fail(err, errlen, BUDGET_ADMIN_STORE,
                        "the ledger could not store the revocation: the key still works");
    }
    if (budget_key_revoke(b, key_id, hash, &agent) < 0)
        return fail(err, errlen, BUDGET_ADMIN_NOT_FOUND, "no key has that id");
    return BUDGET_ADMIN_OK;
}
