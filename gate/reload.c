/*
 * reload: the config file loaded again while the gate serves. See reload.h.
 *
 * The swap: srv->conf_live changes under srv->conf_mu (gate_conf_get takes a reference under
 * it, so a snapshot is never freed between being read and being referenced). Workers do not
 * read it per request: each keeps w->conf, its own reference, which only its thread reads and
 * replaces (on w->reload_ev), together with its upstream pools. The reload waits until every
 * worker has taken the new snapshot, so that whoever asked for it can count on the next
 * request seeing it.
 */
#include "gate/reload.h"

#include "cache/store.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/prefixcount.h"
#include "gate/budget/budget.h"
#include "gate/upstream/poolset.h"
#include "gate/util/clock.h"
#include "tokenizer/tok.h"

/* How long a reload waits for the workers to take the new snapshot (each does between two
 * events of its loop: far less, unless the machine is stalled). */
#define RELOAD_WAIT_MS 10000

int gate_overrides_apply(struct conf *c, const struct gate_overrides *ov)
{
    if (ov->listen_host != NULL) {
        char *h = strdup(ov->listen_host);
        if (h == NULL)
            return -1;
        free(c->listen_host);
        c->listen_host = h;
        c->listen_port = ov->listen_port;
    }
    if (ov->workers > 0)
        c->workers = ov->workers;
    return 0;
}

static int same_str(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/*
 * What a reload cannot change, because it was set up once at start: the listeners and their
 * TLS, the workers, the upstream CA, the request log, the ledger, the admin listener and the
 * webhook, and whether there is an org at all. Returns 0, or -1 naming the first in err.
 */
static int fixed_changed(const struct conf *o, const struct conf *n, char *err, size_t errlen)
{
    const char *what = NULL;

    if (!same_str(o->listen_host, n->listen_host) || o->listen_port != n->listen_port)
        what = "listen";
    else if (o->workers != n->workers)
        what = "workers";
    else if (!same_str(o->tls_cert, n->tls_cert) || !same_str(o->tls_key, n->tls_key))
        what = "tls (cert, key)";
    else if (!same_str(o->ca_file, n->ca_file))
        what = "upstream.ca_file";
    else if (!same_str(o->request_log, n->request_log))
        what = "request_log";
    else if (!same_str(o->ledger_path, n->ledger_path) || o->ledger_sync != n->ledger_sync)
        what = "ledger (path, sync)";
    else if (!same_str(o->admin.host, n->admin.host) || o->admin.port != n->admin.port ||
             !same_str(o->admin.token_env, n->admin.token_env) ||
             !same_str(o->admin.token_file, n->admin.token_file))
        what = "admin (listen, token_env, token_file)";
    else if (!same_str(o->alerts.webhook, n->alerts.webhook))
        what = "alerts.webhook";
    else if (o->nscopes == 0 && n->nscopes > 0)
        what = "org (the gate started without one)";
    else if (o->nscopes > 0 && n->nscopes == 0)
        what = "org (removing it)";
    if (what == NULL)
        return 0;
    snprintf(err, errlen,
             "%s: %s cannot change by reload: restart the gate to change it (nothing of this "
             "file was applied)",
             n->path, what);
    return -1;
}

/* ---- the summary line ------------------------------------------------------------------ */

struct sbuf {
    char *p;
    size_t cap, n;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (b->n + 1 >= b->cap)
        return;
    va_start(ap, fmt);
    k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n = b->n + (size_t)k < b->cap ? b->n + (size_t)k : b->cap - 1;
}

static int has_model(const struct conf *c, const char *name)
{
    for (int i = 0; i < c->nmodels; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return 1;
    return 0;
}

static const struct conf_provider *find_provider(const struct conf *c, const char *name)
{
    for (int i = 0; i < c->nproviders; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

/* " (+a, +b, -c)": the names in one snapshot and not the other, the first few of them. */
static void name_diff(struct sbuf *b, const struct conf *o, const struct conf *n, int models)
{
    int shown = 0, more = 0;

    for (int pass = 0; pass < 2; pass++) {
        const struct conf *from = pass == 0 ? n : o, *other = pass == 0 ? o : n;
        int count = models ? from->nmodels : from->nproviders;
        for (int i = 0; i < count; i++) {
            const char *name = models ? from->models[i].name : from->providers[i].name;
            int there = models ? has_model(other, name) : find_provider(other, name) != NULL;
            if (there)
                continue;
            if (shown < 4)
                sb_add(b, "%s%c%s", shown == 0 ? " (" : ", ", pass == 0 ? '+' : '-', name);
            else
                more++;
            shown++;
        }
    }
    if (more > 0)
        sb_add(b, ", %d more", more);
    if (shown > 0)
        sb_add(b, ")");
}

static void summarize(struct sbuf *b, const struct conf *o, const struct conf *n)
{
    int moved = 0;

    for (int i = 0; i < n->nproviders; i++) {
        const struct conf_provider *p = &n->providers[i], *q = find_provider(o, p->name);
        if (q != NULL && (strcmp(p->host, q->host) != 0 || p->port != q->port || p->tls != q->tls))
            moved++;
    }
    sb_add(b, "%d models (were %d)", n->nmodels, o->nmodels);
    name_diff(b, o, n, 1);
    sb_add(b, ", %d providers (were %d)", n->nproviders, o->nproviders);
    name_diff(b, o, n, 0);
    if (moved > 0)
        sb_add(b, ", %d with a new address (new connection pools)", moved);
    sb_add(b, ", %d keys (were %d), %d scopes (were %d), %d policies (were %d)", n->nkeys,
           o->nkeys, n->nscopes, o->nscopes, n->npolicies, o->npolicies);
    sb_add(b, ", %d tiers (were %d), %d routing rules (were %d)", n->routing.ntiers,
           o->routing.ntiers, n->routing.nrules, o->routing.nrules);
}

/* ---- the workers' side ------------------------------------------------------------------ */

/* On the worker's loop: take the snapshot in force, move the pools onto it. */
static void take_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gate_worker *w = arg;
    struct gate_server *srv = w->srv;
    struct conf *c;
    uint64_t gen;

    pthread_mutex_lock(&srv->conf_mu);
    c = conf_ref(srv->conf_live);
    gen = srv->conf_gen;
    pthread_mutex_unlock(&srv->conf_mu);
    if (c != w->conf && poolset_rebind(w->pools, c, NULL) < 0) {
        /* the pools could not follow: this worker stays on the old snapshot */
        fprintf(stderr,
                "tokengate: worker %d: out of memory taking the new configuration: it serves "
                "on the previous one\n",
                w->id);
        conf_unref(c);
    } else {
        conf_unref(w->conf);
        w->conf = c;
    }
    pthread_mutex_lock(&srv->conf_mu);
    w->conf_gen = gen;
    pthread_cond_broadcast(&srv->conf_taken);
    pthread_mutex_unlock(&srv->conf_mu);
}

int gate_reload_worker_init(struct gate_worker *w)
{
    w->reload_ev = event_new(w->base, -1, 0, take_cb, w);
    return w->reload_ev != NULL ? 0 : -1;
}

/* Posts the new generation to every worker and waits (bounded) until each has taken it.
 * Returns how many had not when the wait ended. */
static int hand_to_workers(struct gate_server *srv, uint64_t gen)
{
    struct timespec until;
    int late = 0;

    for (int i = 0; i < srv->nworkers; i++)
        event_active(srv->workers[i].reload_ev, EV_TIMEOUT, 0);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += RELOAD_WAIT_MS / 1000;
    pthread_mutex_lock(&srv->conf_mu);
    for (int i = 0; i < srv->nworkers; i++)
        while (srv->workers[i].conf_gen < gen)
            if (pthread_cond_timedwait(&srv->conf_taken, &srv->conf_mu, &until) == ETIMEDOUT)
                break;
    for (int i = 0; i < srv->nworkers; i++)
        late += srv->workers[i].conf_gen < gen;
    pthread_mutex_unlock(&srv->conf_mu);
    return late;
}

/* ---- the reload ------------------------------------------------------------------------- */

/* Everything up to the swap; on failure msg says why and nothing has changed. */
static struct conf *prepare(struct gate_server *srv, const struct conf *cur, char *msg,
                            size_t msglen)
{
    struct conf *c = conf_load(cur->path, msg, msglen);

    if (c == NULL)
        return NULL;
    if (gate_overrides_apply(c, &srv->ov) < 0) {
        snprintf(msg, msglen, "%s: out of memory", cur->path);
        goto fail;
    }
    if (fixed_changed(cur, c, msg, msglen) < 0)
        goto fail;
    for (int i = 0; i < c->nmodels; i++)
        if (c->models[i].encoding != NULL && tok_encoding(c->models[i].encoding) == NULL) {
            snprintf(msg, msglen, "%s: cannot build the tokenizer's tables for %s: out of memory",
                     cur->path, c->models[i].encoding);
            goto fail;
        }
    /* the last step that may fail, and the first that changes what requests see: the book's
     * counters, reservations and keys move onto c by scope name */
    if (srv->book != NULL) {
        char why[512];
        if (budget_book_rebind(srv->book, c, gate_wall_now(), why, sizeof(why)) < 0) {
            snprintf(msg, msglen, "%s: %s", cur->path, why);
            goto fail;
        }
        conf_unref(srv->book_conf); /* the book reads c from here on */
        srv->book_conf = conf_ref(c);
    }
    return c;

fail:
    conf_unref(c);
    return NULL;
}

int gate_reload(struct gate_server *srv, char *msg, size_t msglen)
{
    struct conf *cur, *c;
    struct sbuf b = {.p = msg, .cap = msglen};
    uint64_t gen;
    int late;

    pthread_mutex_lock(&srv->reload_mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->reload_mu);
        snprintf(msg, msglen, "the gate is stopping: no reload");
        return -1;
    }
    cur = gate_conf_get(srv);
    c = prepare(srv, cur, msg, msglen);
    if (c == NULL) {
        fprintf(stderr, "tokengate: reload refused, the configuration in force is kept: %s\n",
                msg);
        conf_unref(cur);
        pthread_mutex_unlock(&srv->reload_mu);
        return -1;
    }
    __atomic_store_n(&srv->mem.limit, c->max_memory_in_flight, __ATOMIC_RELAXED);
    /* the caches' new caps: entries past them go now, oldest use first */
    cache_store_set_caps(srv->responses, c->cache.max_bytes, c->cache.max_entry_bytes);
    cache_store_set_caps(srv->tools, c->cache.tools_max_bytes, c->cache.tools_max_entry_bytes);
    /* the prefix-count memo's new cap (0 when it is turned off: its entries go) */
    prefixcount_set_cap(srv->prefix,
                        prefixcount_conf_cap(c->cache.prefix_counts, c->cache.prefix_max_entries));
    pthread_mutex_lock(&srv->conf_mu);
    srv->conf_live = c; /* its reference moves here; cur's stays with us until the end */
    gen = ++srv->conf_gen;
    pthread_mutex_unlock(&srv->conf_mu);
    conf_unref(cur); /* the reference conf_live held: cur itself is still ours */
    late = hand_to_workers(srv, gen);

    for (int i = 0; i < c->nproviders; i++)
        if (c->providers[i].api_key_env != NULL && c->providers[i].api_key == NULL)
            fprintf(stderr, "tokengate: warning: provider '%s': %s is not set\n",
                    c->providers[i].name, c->providers[i].api_key_env);
    sb_add(&b, "%s: ", c->path);
    summarize(&b, cur, c);
    if (late > 0)
        sb_add(&b, "; %d workers had not taken it after %d ms", late, RELOAD_WAIT_MS);
    fprintf(stderr, "tokengate: configuration reloaded: %s\n", msg);
    conf_unref(cur);
    pthread_mutex_unlock(&srv->reload_mu);
    return 0;
}
