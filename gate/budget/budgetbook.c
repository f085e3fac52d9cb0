/*
 * budgetbook: the book's tree (the config's scopes, then those added at run time), the keys,
 * and building the book from the config and the ledger. See budget.h.
 */
#include "gate/budget/budget-int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/budget/ledger.h"
#include "gate/budget/store.h"

/* ---- keys ----------------------------------------------------------------------------- */

void budget_key_id(const unsigned char hash[32], char key_id[24])
{
    static const char hex[] = "0123456789abcdef";

    memcpy(key_id, "key_", 4);
    for (int i = 0; i < 6; i++) {
        key_id[4 + 2 * i] = hex[hash[i] >> 4];
        key_id[5 + 2 * i] = hex[hash[i] & 15];
    }
    key_id[16] = '\0';
}

static size_t key_slot(const struct budget_book *b, const unsigned char hash[32])
{
    uint64_t h;
    size_t i;

    memcpy(&h, hash + 8, sizeof(h));
    for (i = h & (b->keys_cap - 1);; i = (i + 1) & (b->keys_cap - 1))
        if (b->keys[i].agent < 0 || memcmp(b->keys[i].hash, hash, 32) == 0)
            return i;
}

/* Grows the table to hold one more key. Called with the lock held (or before sharing). */
static int keys_reserve(struct budget_book *b)
{
    if ((b->nkeys + 1) * 2 <= b->keys_cap)
        return 0;
    size_t cap = b->keys_cap ? b->keys_cap * 2 : 64;
    struct bkey *old = b->keys;
    size_t old_cap = b->keys_cap;
    struct bkey *nk = malloc(cap * sizeof(*nk));
    if (nk == NULL)
        return -1;
    for (size_t i = 0; i < cap; i++)
        nk[i].agent = -1;
    b->keys = nk;
    b->keys_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].agent >= 0)
            b->keys[key_slot(b, old[i].hash)] = old[i];
    free(old);
    return 0;
}

int budget_key_put(struct budget_book *b, const unsigned char hash[32], int agent, int revoked,
                   int from)
{
    if (keys_reserve(b) < 0)
        return -1;
    struct bkey *k = &b->keys[key_slot(b, hash)];
    if (k->agent < 0) {
        b->nkeys++;
        k->from_conf = k->from_admin = 0;
    }
    memcpy(k->hash, hash, 32);
    k->agent = agent;
    k->revoked = revoked;
    k->from_conf |= (from & BKEY_CONF) != 0;
    k->from_admin |= (from & BKEY_ADMIN) != 0;
    return 0;
}

enum budget_auth budget_authenticate(struct budget_book *b, const char *secret, size_t len,
                                     int *agent, char key_id[24])
{
    unsigned char hash[32];
    unsigned int n = 0;
    enum budget_auth r = BUDGET_AUTH_UNKNOWN;

    if (len == 0 || len > 512 || EVP_Digest(secret, len, hash, &n, EVP_sha256(), NULL) != 1)
        return BUDGET_AUTH_UNKNOWN;
    pthread_mutex_lock(&b->mu);
    if (b->keys_cap > 0) {
        const struct bkey *k = &b->keys[key_slot(b, hash)];
        /* a key of an agent gone from the config is as good as unknown */
        if (k->agent >= 0 && !b->node[k->agent].retired) {
            r = k->revoked ? BUDGET_AUTH_REVOKED : BUDGET_AUTH_OK;
            *agent = k->agent;
        }
    }
    pthread_mutex_unlock(&b->mu);
    if (r == BUDGET_AUTH_OK)
        budget_key_id(hash, key_id);
    return r;
}

int budget_key_add(struct budget_book *b, const unsigned char hash[32], int agent)
{
    int rc;

    pthread_mutex_lock(&b->mu);
    rc = budget_key_put(b, hash, agent, 0, BKEY_ADMIN);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int budget_key_revoke(struct budget_book *b, const char *key_id, unsigned char hash[32],
                      int *agent)
{
    char id[24];
    int rc = -1;

    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->keys_cap; i++) {
        if (b->keys[i].agent < 0)
            continue;
        budget_key_id(b->keys[i].hash, id);
        if (strcmp(id, key_id) == 0) {
            b->keys[i].revoked = 1;
            b->keys[i].from_admin = 1;
            memcpy(hash, b->keys[i].hash, 32);
            *agent = b->keys[i].agent;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void budget_keys_each(struct budget_book *b,
                      void (*cb)(void *arg, const unsigned char hash[32], int agent, int revoked),
                      void *arg)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->keys_cap; i++)
        if (b->keys[i].agent >= 0 && !b->node[b->keys[i].agent].retired)
            cb(arg, b->keys[i].hash, b->keys[i].agent, b->keys[i].revoked);
    pthread_mutex_unlock(&b->mu);
}

/* ---- the book ------------------------------------------------------------------------- */

int budget_find_at(const struct budget_book *b, enum conf_level level, const char *name)
{
    for (int i = 0; i < b->n; i++)
        if (b->node[i].level == level && strcmp(b->node[i].name, name) == 0)
            return i;
    return -1;
}

/* A live scope of that level and name, or -1. With the lock held. */
static int find_at(const struct budget_book *b, enum conf_level level, const char *name)
{
    int i = budget_find_at(b, level, name);

    return i >= 0 && !b->node[i].retired ? i : -1;
}

static int agent_by_name(const struct budget_book *b, const char *name)
{
    return find_at(b, CONF_LEVEL_AGENT, name);
}

int budget_over_put(struct budget_book *b, const char *label, enum conf_window w,
                    struct conf_limit lim)
{
    for (size_t i = 0; i < b->nover; i++)
        if (b->over[i].w == w && strcmp(b->over[i].label, label) == 0) {
            b->over[i].lim = lim;
            return 0;
        }
    if (b->nover >= BUDGET_OVERRIDES_MAX)
        return -1;
    if (b->nover == b->over_cap) {
        size_t cap = b->over_cap ? b->over_cap * 2 : 16;
        struct bover *no = realloc(b->over, cap * sizeof(*no));
        if (no == NULL)
            return -1;
        b->over = no;
        b->over_cap = cap;
    }
    char *l = strdup(label);
    if (l == NULL)
        return -1;
    b->over[b->nover++] = (struct bover){.label = l, .w = w, .lim = lim};
    return 0;
}

int budget_nscopes(struct budget_book *b)
{
    return __atomic_load_n(&b->n, __ATOMIC_ACQUIRE);
}

const char *budget_scope_name(struct budget_book *b, int s)
{
    return __atomic_load_n(&budget_nodes(b)[s].name, __ATOMIC_ACQUIRE);
}

enum conf_level budget_scope_level(struct budget_book *b, int s)
{
    return budget_nodes(b)[s].level;
}

int budget_scope_parent(struct budget_book *b, int s)
{
    return __atomic_load_n(&budget_nodes(b)[s].parent, __ATOMIC_ACQUIRE);
}

int budget_scope_retired(struct budget_book *b, int s)
{
    int rc;

    pthread_mutex_lock(&b->mu);
    rc = b->node[s].retired;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

const char *budget_scope_at_level(struct budget_book *b, int s, enum conf_level lv)
{
    const struct bnode *node = budget_nodes(b);

    for (; s >= 0; s = __atomic_load_n(&node[s].parent, __ATOMIC_ACQUIRE))
        if (node[s].level == lv)
            return __atomic_load_n(&node[s].name, __ATOMIC_ACQUIRE);
    return NULL;
}

const char *budget_scope_label(struct budget_book *b, int s, char *buf, size_t cap)
{
    const struct bnode *nd = &budget_nodes(b)[s];

    if (nd->level == CONF_LEVEL_ORG)
        snprintf(buf, cap, "org");
    else
        snprintf(buf, cap, "%s:%s", conf_level_name(nd->level),
                 __atomic_load_n(&nd->name, __ATOMIC_ACQUIRE));
    return buf;
}

int budget_anonymous(struct budget_book *b)
{
    int rc;

    pthread_mutex_lock(&b->mu);
    rc = b->conf->anonymous_scope >= 0 ? find_at(b, CONF_LEVEL_AGENT, "anonymous") : -1;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int budget_find_scope(struct budget_book *b, const char *label)
{
    const char *colon = strchr(label, ':');
    int rc = -1;

    pthread_mutex_lock(&b->mu);
    if (colon == NULL) {
        if (strcmp(label, "org") == 0 || (b->n > 0 && strcmp(label, b->node[0].name) == 0))
            rc = 0;
        else if (strcmp(label, "anonymous") == 0 && b->conf->anonymous_scope >= 0)
            rc = find_at(b, CONF_LEVEL_AGENT, "anonymous");
    } else {
        char level[16];
        int lv = -1;
        if ((size_t)(colon - label) < sizeof(level)) {
            memcpy(level, label, (size_t)(colon - label));
            level[colon - label] = '\0';
            lv = conf_level_parse(level);
        }
        if (lv > CONF_LEVEL_ORG)
            rc = find_at(b, (enum conf_level)lv, colon + 1);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* Sets a scope's policy fields (agents) and puts an agent's floor on every scope above it. */
static int init_scope(struct budget_book *b, int i, double now)
{
    struct bscope *s = &b->s[i];
    const struct bnode *nd = b->node;
    int parent[MAX_DEPTH + 1], policy[MAX_DEPTH + 1], chain[MAX_DEPTH + 1], n = 0;

    /* the path up to the org, renumbered 0..n-1 for budget_pol_of */
    for (int a = i; a >= 0 && n <= MAX_DEPTH; a = nd[a].parent)
        chain[n++] = a;
    for (int k = 0; k < n; k++) {
        parent[k] = k + 1 < n ? k + 1 : -1;
        policy[k] = nd[chain[k]].policy;
    }
    budget_pol_of(b->conf, nd[i].level, parent, policy, 0, &s->pol);
    for (int w = 0; w < CONF_WIN__COUNT; w++)
        budget_roll(b, s, (enum conf_window)w, now);
    /* every scope above an agent with a floor keeps that floor free for it */
    if (s->pol.agent_min > 0) {
        for (int a = b->node[i].parent; a >= 0; a = b->node[a].parent) {
            int *nf = realloc(b->s[a].floors, (size_t)(b->s[a].nfloors + 1) * sizeof(int));
            if (nf == NULL)
                return -1;
            b->s[a].floors = nf;
            b->s[a].floors[b->s[a].nfloors++] = i;
        }
    }
    return 0;
}

int budget_scope_check(const struct budget_book *b, enum conf_level level, const char *name,
                       int parent, char *err, size_t errlen)
{
    if (level < CONF_LEVEL_DEPARTMENT || level > CONF_LEVEL_AGENT) {
        snprintf(err, errlen, "level is department, team or agent");
        return -1;
    }
    if (*name == '\0' || strlen(name) > 100) {
        snprintf(err, errlen, "a name is 1 to 100 characters");
        return -1;
    }
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.')) {
            snprintf(err, errlen, "names may hold letters, digits, '-', '_' and '.'");
            return -1;
        }
    if (parent < 0 || parent >= b->n || b->node[parent].level != level - 1) {
        snprintf(err, errlen, "a %s's parent must be %s", conf_level_name(level),
                 level == CONF_LEVEL_DEPARTMENT ? "the org"
                 : level == CONF_LEVEL_TEAM     ? "a department"
                                                : "a team");
        return -1;
    }
    if (find_at(b, level, name) >= 0) {
        snprintf(err, errlen, "%s '%s' exists already", conf_level_name(level), name);
        return -2;
    }
    if (b->n >= b->cap) {
        snprintf(err, errlen, "at most %d scopes may be added", BUDGET_SCOPES_ADDED_MAX);
        return -1;
    }
    return 0;
}

/* Adds a scope with the lock held (or before the book is shared). */
static int add_scope(struct budget_book *b, enum conf_level level, const char *name, int parent,
                     double now, char *err, size_t errlen)
{
    if (budget_scope_check(b, level, name, parent, err, errlen) < 0)
        return -1;
    int i = b->n;
    struct bnode *nd = &b->node[i];
    char *owned = strdup(name);
    if (owned == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *nd = (struct bnode){.name = owned, .level = level, .parent = parent, .policy = -1,
                         .added = 1};
    memset(&b->s[i], 0, sizeof(b->s[i]));
    for (int w = 0; w < CONF_WIN__COUNT; w++)
        b->s[i].lim[w] = (struct conf_limit){-1, -1};
    if (init_scope(b, i, now) < 0) {
        free(owned);
        nd->name = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    __atomic_store_n(&b->n, i + 1, __ATOMIC_RELEASE);
    return i;
}

int budget_add_scope(struct budget_book *b, enum conf_level level, const char *name, int parent,
                     double now, char *err, size_t errlen)
{
    int rc;

    pthread_mutex_lock(&b->mu);
    rc = add_scope(b, level, name, parent, now, err, errlen);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

struct load_ctx {
    struct budget_book *b;
    int skipped;
    double now;
};

static void load_scope(void *arg, const char *level, const char *name, const char *parent)
{
    struct load_ctx *x = arg;
    char err[200];
    int lv = -1, p = budget_find_scope(x->b, parent);

    lv = conf_level_parse(level);
    if (lv == CONF_LEVEL_ORG)
        lv = -1;
    /* a scope the config now declares itself is that one */
    if (lv < 0 || (find_at(x->b, (enum conf_level)lv, name) < 0 &&
                   add_scope(x->b, (enum conf_level)lv, name, p, x->now, err, sizeof(err)) < 0))
        x->skipped++;
}

static void load_key(void *arg, const struct ledger_key *k)
{
    struct load_ctx *x = arg;
    unsigned char hash[32];
    int a = agent_by_name(x->b, k->agent);

    if (a < 0 || strlen(k->hash_hex) != 64) {
        x->skipped++;
        return;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(k->hash_hex + 2 * i, "%2x", &v) != 1) {
            x->skipped++;
            return;
        }
        hash[i] = (unsigned char)v;
    }
    budget_key_put(x->b, hash, a, k->revoked > 0, BKEY_ADMIN);
}

static void load_override(void *arg, const char *scope, const char *window, int64_t tokens,
                          int64_t nusd)
{
    struct load_ctx *x = arg;
    int s = budget_find_scope(x->b, scope), w = conf_window_parse(window);

    /* kept by label even for a scope the config lacks: a rebind may bring it back */
    if (w >= 0)
        budget_over_put(x->b, scope, (enum conf_window)w, (struct conf_limit){tokens, nusd});
    if (s < 0 || w < 0) {
        x->skipped++;
        return;
    }
    x->b->s[s].lim[w] = (struct conf_limit){tokens, nusd};
}

/* The tree, keys and budgets the admin API changed, then the store's counters. */
static int load_state(struct budget_book *b, double now, char *err, size_t errlen)
{
    const struct budget_state *st = &b->state;
    struct load_ctx x = {.b = b, .now = now};

    if (st->ops->scopes_load(st->ctx, load_scope, &x) < 0 ||
        st->ops->keys_load(st->ctx, load_key, &x) < 0 ||
        st->ops->budgets_load(st->ctx, load_override, &x) < 0) {
        snprintf(err, errlen, "cannot read the ledger's keys, budgets and spend");
        return -1;
    }
    if (b->store->ops->load(b->store, st, now, err, errlen) < 0)
        return -1;
    if (x.skipped > 0)
        fprintf(stderr,
                "tokengate: ledger: %d stored keys or budgets name an agent or scope the config "
                "no longer has; they are ignored\n",
                x.skipped);
    return 0;
}

struct budget_book *budget_book_new(const struct conf *conf, struct ledger *ledger, double now,
                                    char *err, size_t errlen)
{
    struct budget_state st = {0};

    if (ledger != NULL)
        ledger_state(ledger, &st);
    return budget_book_open(conf, &st, now, err, errlen);
}

struct budget_book *budget_book_open(const struct conf *conf, const struct budget_state *state,
                                     double now, char *err, size_t errlen)
{
    struct budget_book *b = calloc(1, sizeof(*b));

    if (b == NULL)
        goto oom;
    b->conf = conf;
    b->n = conf->nscopes;
    b->cap = conf->nscopes + BUDGET_SCOPES_ADDED_MAX;
    pthread_mutex_init(&b->mu, NULL);
    b->s = calloc((size_t)b->cap, sizeof(*b->s));
    b->node = calloc((size_t)b->cap, sizeof(*b->node));
    if (b->s == NULL || b->node == NULL)
        goto oom;
    for (int i = 0; i < b->n; i++) {
        b->node[i] = (struct bnode){.name = strdup(conf->scopes[i].name),
                                    .level = conf->scopes[i].level,
                                    .parent = conf->scopes[i].parent,
                                    .policy = conf->scopes[i].policy,
                                    .in_conf = 1};
        if (b->node[i].name == NULL)
            goto oom;
        memcpy(b->s[i].lim, conf->scopes[i].limits, sizeof(b->s[i].lim));
    }
    for (int i = 0; i < b->n; i++)
        if (init_scope(b, i, now) < 0)
            goto oom;
    for (int i = 0; i < conf->nkeys; i++)
        if (budget_key_put(b, conf->keys[i].hash, conf->keys[i].agent, 0, BKEY_CONF) < 0)
            goto oom;
    if ((b->store = budget_store_mem_new(b)) == NULL)
        goto oom;
    b->state = *state;
    if (b->state.ops != NULL && load_state(b, now, err, errlen) < 0) {
        budget_book_free(b);
        return NULL;
    }
    return b;
oom:
    snprintf(err, errlen, "out of memory");
    budget_book_free(b);
    return NULL;
}

void budget_book_free(struct budget_book *b)
{
    if (b == NULL)
        return;
    if (b->keys != NULL)
        memset(b->keys, 0, b->keys_cap * sizeof(*b->keys));
    free(b->keys);
    for (int i = 0; b->s != NULL && b->node != NULL && i < b->n; i++) {
        free(b->s[i].prints);
        free(b->s[i].floors);
        free((char *)b->node[i].name);
    }
    for (size_t i = 0; i < b->nover; i++)
        free(b->over[i].label);
    free(b->over);
    while (b->grave != NULL) {
        struct bgrave *g = b->grave;
        b->grave = g->next;
        free(g->p);
        free(g);
    }
    if (b->store != NULL)
        b->store->ops->free(b->store);
    free(b->tasks);
    free(b->s);
    free(b->node);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
