/*
 * budgetrebind: moves a live book onto a new config snapshot (a reload). See budget.h.
 *
 * Scope indices never change and are never reused: a request holds its agent's index, and its
 * reservation the indices of the scopes it reserved on, across any number of rebinds. So a
 * rebind maps the new config's scopes onto the book's by label, appends the ones the book does
 * not have, and retires (keeps, but admits nothing more on) those the config dropped. Everything
 * that can fail (memory) is done first, into side tables; the book is changed only after, by
 * steps that cannot fail, under the book's lock, so workers see the old book or the new one.
 */
#include "gate/budget/budget-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The scopes a rebind may bring the book to, added ones included; past it a rebind fails. */
#define REBIND_SCOPES_MAX (1 << 20)

/* What a rebind computes before it touches the book. */
struct plan {
    int n, total;                 /* scopes now, scopes after */
    int *map;                     /* conf index -> book index */
    int *parent, *policy;         /* by book index, after */
    enum conf_level *level;
    unsigned char *in_conf, *retired;
    struct bpol *pol;
    struct conf_limit (*lim)[CONF_WIN__COUNT];
    int **floors, *nfloors;
    char **names;                 /* names of the scopes appended (total - n) */
    struct bnode *node;           /* grown arrays, or NULL when the book has room */
    struct bscope *s;
    int cap;
    struct bgrave *grave_node;    /* for the outgrown node array */
    char *org_name;               /* the org's new name, or NULL when unchanged */
    struct bgrave *grave_org;
    struct bkey *keys;
    size_t keys_cap, nkeys;
};

static void plan_free(struct plan *p)
{
    if (p->floors != NULL)
        for (int i = 0; i < p->total; i++)
            free(p->floors[i]);
    if (p->names != NULL)
        for (int i = 0; i < p->total - p->n; i++)
            free(p->names[i]);
    free(p->map);
    free(p->parent);
    free(p->policy);
    free(p->level);
    free(p->in_conf);
    free(p->retired);
    free(p->pol);
    free(p->lim);
    free(p->floors);
    free(p->nfloors);
    free(p->names);
    free(p->node);
    free(p->s);
    free(p->grave_node);
    free(p->org_name);
    free(p->grave_org);
    free(p->keys);
}

/* The book's scope of that label: a live one first, else the latest retired one. */
static int match(const struct budget_book *b, enum conf_level lv, const char *name)
{
    int retired = -1;

    for (int i = 0; i < b->n; i++)
        if (b->node[i].level == lv && strcmp(b->node[i].name, name) == 0) {
            if (!b->node[i].retired)
                return i;
            retired = i;
        }
    return retired;
}

static const char *name_at(const struct budget_book *b, const struct plan *p, int j)
{
    return j < p->n ? b->node[j].name : p->names[j - p->n];
}

/* The scope of a label after the rebind, live ones only, or -1. */
static int find_label(const struct budget_book *b, const struct plan *p, const char *label)
{
    const char *colon = strchr(label, ':');
    char level[16];
    int lv;

    if (colon == NULL)
        return strcmp(label, "org") == 0 ? 0 : -1;
    if ((size_t)(colon - label) >= sizeof(level))
        return -1;
    memcpy(level, label, (size_t)(colon - label));
    level[colon - label] = '\0';
    if ((lv = conf_level_parse(level)) <= CONF_LEVEL_ORG)
        return -1;
    for (int j = 1; j < p->total; j++)
        if (!p->retired[j] && p->level[j] == (enum conf_level)lv &&
            strcmp(name_at(b, p, j), colon + 1) == 0)
            return j;
    return -1;
}

static size_t slot_in(const struct bkey *keys, size_t cap, const unsigned char hash[32])
{
    uint64_t h;
    size_t i;

    memcpy(&h, hash + 8, sizeof(h));
    for (i = h & (cap - 1);; i = (i + 1) & (cap - 1))
        if (keys[i].agent < 0 || memcmp(keys[i].hash, hash, 32) == 0)
            return i;
}

/* The key table after the rebind: the new config's keys, then over them what the admin API
 * added or revoked (as at start, where the ledger's keys are loaded after the config's). */
static int plan_keys(const struct budget_book *b, const struct conf *c, struct plan *p)
{
    size_t want = (size_t)c->nkeys + b->nkeys + 1, cap = 64;

    while (cap < want * 2)
        cap *= 2;
    if ((p->keys = malloc(cap * sizeof(*p->keys))) == NULL)
        return -1;
    p->keys_cap = cap;
    for (size_t i = 0; i < cap; i++)
        p->keys[i].agent = -1;
    for (int i = 0; i < c->nkeys; i++) {
        struct bkey *k = &p->keys[slot_in(p->keys, cap, c->keys[i].hash)];
        if (k->agent < 0)
            p->nkeys++;
        *k = (struct bkey){.agent = p->map[c->keys[i].agent], .from_conf = 1};
        memcpy(k->hash, c->keys[i].hash, 32);
    }
    for (size_t i = 0; i < b->keys_cap; i++) {
        const struct bkey *o = &b->keys[i];
        if (o->agent < 0 || !o->from_admin)
            continue;
        struct bkey *k = &p->keys[slot_in(p->keys, cap, o->hash)];
        if (k->agent < 0) {
            p->nkeys++;
            *k = (struct bkey){.from_conf = 0};
            memcpy(k->hash, o->hash, 32);
        }
        k->agent = o->agent;
        k->revoked = o->revoked;
        k->from_admin = 1;
    }
    return 0;
}

/* The floors: every scope above an agent with a min_per_agent keeps it free for that agent. */
static int plan_floors(struct plan *p)
{
    if ((p->floors = calloc((size_t)p->total, sizeof(*p->floors))) == NULL ||
        (p->nfloors = calloc((size_t)p->total, sizeof(*p->nfloors))) == NULL)
        return -1;
    for (int j = 0; j < p->total; j++)
        if (!p->retired[j] && p->pol[j].agent_min > 0)
            for (int a = p->parent[j]; a >= 0; a = p->parent[a])
                p->nfloors[a]++;
    for (int a = 0; a < p->total; a++) {
        if (p->nfloors[a] == 0)
            continue;
        if ((p->floors[a] = malloc((size_t)p->nfloors[a] * sizeof(int))) == NULL)
            return -1;
        p->nfloors[a] = 0;
    }
    for (int j = 0; j < p->total; j++)
        if (!p->retired[j] && p->pol[j].agent_min > 0)
            for (int a = p->parent[j]; a >= 0; a = p->parent[a])
                p->floors[a][p->nfloors[a]++] = j;
    return 0;
}

/* Everything a rebind needs, computed with the book's lock held and the book untouched.
 * Returns 0, or -1 with a reason in err. */
static int plan_make(const struct budget_book *b, const struct conf *c, struct plan *p,
                     char *err, size_t errlen)
{
    int n = b->n, nnew = 0;

    p->n = n;
    if (c->nscopes == 0 || c->scopes[0].level != CONF_LEVEL_ORG) {
        snprintf(err, errlen, "the new config declares no org: its budgets cannot take over "
                              "the running ones");
        return -1;
    }
    if ((p->map = malloc((size_t)c->nscopes * sizeof(int))) == NULL)
        goto oom;
    for (int i = 0; i < c->nscopes; i++) {
        int j = i == 0 ? 0 : match(b, c->scopes[i].level, c->scopes[i].name);
        p->map[i] = j >= 0 ? j : n + nnew++;
    }
    p->total = n + nnew;
    if (p->total > REBIND_SCOPES_MAX) {
        snprintf(err, errlen, "the book would hold more than %d scopes", REBIND_SCOPES_MAX);
        return -1;
    }
    size_t t = (size_t)p->total;
    p->parent = malloc(t * sizeof(int));
    p->policy = malloc(t * sizeof(int));
    p->level = malloc(t * sizeof(*p->level));
    p->in_conf = calloc(t, 1);
    p->retired = calloc(t, 1);
    p->pol = calloc(t, sizeof(*p->pol));
    p->lim = malloc(t * sizeof(*p->lim));
    p->names = calloc((size_t)nnew + 1, sizeof(char *));
    if (!p->parent || !p->policy || !p->level || !p->in_conf || !p->retired || !p->pol || !p->lim ||
        !p->names)
        goto oom;
    for (int j = 0; j < n; j++) {
        p->parent[j] = b->node[j].parent;
        p->policy[j] = -1;
        p->level[j] = b->node[j].level;
        for (int w = 0; w < CONF_WIN__COUNT; w++)
            p->lim[j][w] = b->node[j].retired ? b->s[j].lim[w] : (struct conf_limit){-1, -1};
    }
    for (int i = 0; i < c->nscopes; i++) {
        int j = p->map[i];
        if (p->in_conf[j]) {
            snprintf(err, errlen, "the new config declares %s '%s' twice",
                     conf_level_name(c->scopes[i].level), c->scopes[i].name);
            return -1;
        }
        p->in_conf[j] = 1;
        p->parent[j] = c->scopes[i].parent >= 0 ? p->map[c->scopes[i].parent] : -1;
        p->policy[j] = c->scopes[i].policy;
        p->level[j] = c->scopes[i].level;
        memcpy(p->lim[j], c->scopes[i].limits, sizeof(p->lim[j]));
        if (j >= n && (p->names[j - n] = strdup(c->scopes[i].name)) == NULL)
            goto oom;
    }
    for (int j = 0; j < p->total; j++)
        p->retired[j] = !p->in_conf[j] && !(j < n && b->node[j].added);
    /* the admin API's budgets stay in force, as they do over a restart */
    for (size_t k = 0; k < b->nover; k++) {
        int j = find_label(b, p, b->over[k].label);
        if (j >= 0)
            p->lim[j][b->over[k].w] = b->over[k].lim;
    }
    for (int j = 0; j < p->total; j++)
        if (!p->retired[j])
            budget_pol_of(c, p->level[j], p->parent, p->policy, j, &p->pol[j]);
    if (plan_floors(p) < 0 || plan_keys(b, c, p) < 0)
        goto oom;
    if (p->total > b->cap) {
        p->cap = p->total + BUDGET_SCOPES_ADDED_MAX;
        p->node = calloc((size_t)p->cap, sizeof(*p->node));
        p->s = calloc((size_t)p->cap, sizeof(*p->s));
        p->grave_node = malloc(sizeof(*p->grave_node));
        if (!p->node || !p->s || !p->grave_node)
            goto oom;
    }
    if (strcmp(b->node[0].name, c->scopes[0].name) != 0) {
        p->org_name = strdup(c->scopes[0].name);
        p->grave_org = malloc(sizeof(*p->grave_org));
        if (!p->org_name || !p->grave_org)
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Applies a plan: nothing here can fail. With the book's lock held. */
static void plan_apply(struct budget_book *b, const struct conf *c, struct plan *p, double now)
{
    if (p->node != NULL) {
        memcpy(p->node, b->node, (size_t)p->n * sizeof(*p->node));
        memcpy(p->s, b->s, (size_t)p->n * sizeof(*p->s));
        /* workers may be reading names through the old array: it is kept until the end */
        p->grave_node->p = b->node;
        p->grave_node->next = b->grave;
        b->grave = p->grave_node;
        p->grave_node = NULL;
        free(b->s);
        b->s = p->s;
        p->s = NULL;
        __atomic_store_n(&b->node, p->node, __ATOMIC_RELEASE);
        p->node = NULL;
        b->cap = p->cap;
    }
    for (int j = p->n; j < p->total; j++) {
        b->node[j] = (struct bnode){.name = p->names[j - p->n], .level = p->level[j],
                                    .parent = p->parent[j], .policy = p->policy[j]};
        p->names[j - p->n] = NULL;
        memset(&b->s[j], 0, sizeof(b->s[j]));
        for (int w = 0; w < CONF_WIN__COUNT; w++)
            b->s[j].lim[w] = (struct conf_limit){-1, -1};
    }
    for (int j = 0; j < p->total; j++) {
        struct bnode *nd = &b->node[j];
        struct bscope *s = &b->s[j];
        __atomic_store_n(&nd->parent, p->parent[j], __ATOMIC_RELEASE);
        nd->policy = p->policy[j];
        nd->in_conf = p->in_conf[j];
        nd->retired = p->retired[j];
        s->pol = p->pol[j];
        free(s->floors);
        s->floors = p->floors[j];
        s->nfloors = p->nfloors[j];
        p->floors[j] = NULL;
        for (int w = 0; w < CONF_WIN__COUNT; w++) {
            if (s->lim[w].tokens != p->lim[j][w].tokens || s->lim[w].nusd != p->lim[j][w].nusd)
                s->alerted[w] = 0; /* a new budget: its thresholds are crossed anew */
            s->lim[w] = p->lim[j][w];
        }
    }
    if (p->org_name != NULL) {
        p->grave_org->p = (char *)b->node[0].name;
        p->grave_org->next = b->grave;
        b->grave = p->grave_org;
        p->grave_org = NULL;
        __atomic_store_n(&b->node[0].name, p->org_name, __ATOMIC_RELEASE);
        p->org_name = NULL;
    }
    free(b->keys);
    b->keys = p->keys;
    b->keys_cap = p->keys_cap;
    b->nkeys = p->nkeys;
    p->keys = NULL;
    b->conf = c;
    for (int j = p->n; j < p->total; j++)
        for (int w = 0; w < CONF_WIN__COUNT; w++)
            budget_roll(b, &b->s[j], (enum conf_window)w, now);
    __atomic_store_n(&b->n, p->total, __ATOMIC_RELEASE);
}

int budget_book_rebind(struct budget_book *b, const struct conf *c, double now, char *err,
                       size_t errlen)
{
    struct plan p = {0};
    int rc = -1;

    pthread_mutex_lock(&b->mu);
    if (plan_make(b, c, &p, err, errlen) == 0) {
        plan_apply(b, c, &p, now);
        rc = 0;
    }
    pthread_mutex_unlock(&b->mu);
    plan_free(&p);
    return rc;
}
