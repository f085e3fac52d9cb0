/*
 * admin: the admin API, /metrics and the alert webhook. See admin.h.
 */
#include "gate/admin/admin.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <strings.h>
#include <sys/queue.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gate/budget/budget.h"
#include "gate/api/endpoint.h"
#include "gate/budget/ledger.h"
#include "gate/admin/alert.h"
#include "gate/admin/metrics.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "gate/http/tls.h"
#include "gate/admin/status.h"
#include "gate/util/jsonmem.h"

#define ADMIN_BODY_MAX (64 * 1024)
struct gate_admin {
    struct gate_server *srv;
    struct event_base *base;
    struct evhttp *http;
    struct alert_sender *alerts; /* the webhook's sender, on this thread's loop */
    pthread_t thread;
    int started;
    char token[128];
    size_t token_len;
};

/* ---- replies -------------------------------------------------------------------------- */

/*
 * Sends doc (freed here). A document that lost a member while it was built (an allocation
 * failed: see jsonmem_failures_take, reset when the request came in), or that cannot be
 * printed or sent, is answered 500 instead, never half.
 */
static void reply_json(struct evhttp_request *r, int status, cJSON *doc)
{
    int whole = doc != NULL && jsonmem_failures_take() == 0;
    char *s = whole ? cJSON_PrintUnformatted(doc) : NULL;
    struct evbuffer *b = s != NULL ? evbuffer_new() : NULL;

    cJSON_Delete(doc);
    if (b == NULL || evbuffer_add(b, s, strlen(s)) != 0) {
        if (b != NULL)
            evbuffer_free(b);
        cJSON_free(s);
        evhttp_send_error(r, 500, "out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(r), "content-type", "application/json");
    evhttp_send_reply(r, status, NULL, b);
    evbuffer_free(b);
    cJSON_free(s);
}

static void reply_error(struct evhttp_request *r, int status, const char *type, const char *msg)
{
    cJSON *doc = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(doc, "error");

    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "message", msg);
    reply_json(r, status, doc);
}

/* The request body as parsed JSON, or NULL after answering 400. */
static cJSON *read_body(struct evhttp_request *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t n = evbuffer_get_length(in);
    cJSON *doc;

    if (n == 0 || n > ADMIN_BODY_MAX) {
        reply_error(r, 400, "invalid_request", "a JSON object body is expected");
        return NULL;
    }
    doc = cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), n);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        reply_error(r, 400, "invalid_request", "the body is not a JSON object");
        return NULL;
    }
    return doc;
}

/* ---- budgets -------------------------------------------------------------------------- */

static void add_amount(cJSON *o, const char *key, int64_t v, int usd)
{
    if (v < 0)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, usd ? (double)v / 1e9 : (double)v);
}

struct view_ctx {
    struct budget_book *book;
    cJSON *list;
    int scope;       /* -1 all */
    int window;      /* -1 all */
};

static void add_view(void *arg, const struct budget_view *v)
{
    struct view_ctx *x = arg;
    char scope[300], t[40];
    cJSON *o;

    if ((x->scope >= 0 && v->scope != x->scope) || (x->window >= 0 && (int)v->window != x->window))
        return;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", budget_scope_label(x->book, v->scope, scope, sizeof(scope)));
    cJSON_AddStringToObject(o, "window", conf_window_name(v->window));
    add_amount(o, "limit_tokens", v->limit.tokens, 0);
    add_amount(o, "limit_usd", v->limit.nusd, 1);
    add_amount(o, "used_tokens", v->used_tokens, 0);
    add_amount(o, "used_usd", v->used_nusd, 1);
    add_amount(o, "reserved_tokens", v->reserved_tokens, 0);
    add_amount(o, "reserved_usd", v->reserved_nusd, 1);
    if (v->limit.tokens >= 0) {
        int64_t rem = v->limit.tokens - v->used_tokens - v->reserved_tokens;
        add_amount(o, "remaining_tokens", rem > 0 ? rem : 0, 0);
    } else {
        cJSON_AddNullToObject(o, "remaining_tokens");
    }
    if (v->limit.nusd >= 0) {
        int64_t rem = v->limit.nusd - v->used_nusd - v->reserved_nusd;
        add_amount(o, "remaining_usd", rem > 0 ? rem : 0, 1);
    } else {
        cJSON_AddNullToObject(o, "remaining_usd");
    }
    if (v->window != CONF_WIN_TOTAL) {
        gate_iso_utc(v->start, t, sizeof(t));
        cJSON_AddStringToObject(o, "window_start", t);
        gate_iso_utc(v->resets_at, t, sizeof(t));
        cJSON_AddStringToObject(o, "resets_at", t);
    } else {
        cJSON_AddNullToObject(o, "window_start");
        cJSON_AddNullToObject(o, "resets_at");
    }
    cJSON_AddItemToArray(x->list, o);
}

/* Reads scope and window from a query or a body; answers 400 and returns -1 when bad. */
static int want_scope_window(struct evhttp_request *r, struct budget_book *b, const char *scope,
                             const char *window, int *s, int *w, int required)
{
    char msg[400];

    *s = -1;
    *w = -1;
    if (scope != NULL && (*s = budget_find_scope(b, scope)) < 0) {
        snprintf(msg, sizeof(msg),
                 "no scope '%.200s' (org, department:NAME, team:NAME, agent:NAME, anonymous)",
                 scope);
        reply_error(r, 404, "not_found", msg);
        return -1;
    }
    if (window != NULL && (*w = conf_window_parse(window)) < 0) {
        reply_error(r, 400, "invalid_request", "window is minute, hour, day, month or total");
        return -1;
    }
    if (required && (*s < 0 || *w < 0)) {
        reply_error(r, 400, "invalid_request", "'scope' and 'window' are required");
        return -1;
    }
    return 0;
}

static void get_budgets(struct gate_admin *a, struct evhttp_request *r, int all)
{
    struct evkeyvalq q;
    const char *uri = evhttp_request_get_uri(r), *qs = strchr(uri, '?');
    struct view_ctx x = {.book = a->srv->book};

    TAILQ_INIT(&q);
    if (qs != NULL)
        evhttp_parse_query_str(qs + 1, &q);
    const char *all_s = evhttp_find_header(&q, "all");
    if (all_s != NULL && strcmp(all_s, "0") != 0)
        all = 1;
    if (want_scope_window(r, a->srv->book, evhttp_find_header(&q, "scope"),
                          evhttp_find_header(&q, "window"), &x.scope, &x.window, 0) < 0) {
        evhttp_clear_headers(&q);
        return;
    }
    evhttp_clear_headers(&q);
    cJSON *doc = cJSON_CreateObject();
    x.list = cJSON_AddArrayToObject(doc, "budgets");
    budget_each(a->srv->book, gate_wall_now(), all, add_view, &x);
    reply_json(r, 200, doc);
}

/* A limit from the body: a number, null (none), or absent (keep *v). */
static int limit_member(const cJSON *body, const char *key, int usd, int64_t *v)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(body, key);

    if (j == NULL)
        return 0;
    if (cJSON_IsNull(j)) {
        *v = -1;
        return 0;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 1e15)
        return -1;
    *v = usd ? llround(j->valuedouble * 1e9) : (int64_t)j->valuedouble;
    return 0;
}

static void put_budget(struct gate_admin *a, struct evhttp_request *r)
{
    cJSON *body = read_body(r);
    int s, w;

    if (body == NULL)
        return;
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(body, "scope");
    const cJSON *jw = cJSON_GetObjectItemCaseSensitive(body, "window");
    if (want_scope_window(r, a->srv->book, cJSON_GetStringValue(js), cJSON_GetStringValue(jw), &s,
                          &w, 1) < 0)
        goto out;
    /* what the body leaves out stays as it is */
    struct conf_limit lim = budget_limit(a->srv->book, s, (enum conf_window)w);
    if (limit_member(body, "tokens", 0, &lim.tokens) < 0 ||
        limit_member(body, "usd", 1, &lim.nusd) < 0) {
        reply_error(r, 400, "invalid_request",
                    "'tokens' and 'usd' are non-negative numbers, or null for no limit");
        goto out;
    }
    if (lim.nusd >= 0) {
        struct conf *cf = gate_conf_get(a->srv); /* a reload may swap it meanwhile */
        for (int i = 0; i < cf->nmodels; i++)
            if (!cf->models[i].price.set) {
                conf_unref(cf);
                reply_error(r, 400, "invalid_request",
                            "a dollar budget needs every model's price in the config");
                goto out;
            }
        conf_unref(cf);
    }
    char label[300], err[300];
    budget_scope_label(a->srv->book, s, label, sizeof(label));
    if (budget_admin_set_limit(a->srv->book, s, (enum conf_window)w, lim, err, sizeof(err)) < 0) {
        reply_error(r, 500, "ledger_error", err);
        goto out;
    }
    fprintf(stderr, "tokengate: admin: budget %s %s set to tokens %lld, usd %.6f\n", label,
            conf_window_name((enum conf_window)w), (long long)lim.tokens,
            lim.nusd >= 0 ? lim.nusd / 1e9 : -1.0);
    cJSON *doc = cJSON_CreateObject();
    struct view_ctx x = {.book = a->srv->book, .scope = s, .window = w};
    x.list = cJSON_AddArrayToObject(doc, "budgets");
    budget_each(a->srv->book, gate_wall_now(), 1, add_view, &x);
    reply_json(r, 200, doc);
out:
    cJSON_Delete(body);
}

static void reset_budget(struct gate_admin *a, struct evhttp_request *r)
{
    cJSON *body = read_body(r);
    int s, w;
    double now = gate_wall_now();
    char label[300];

    if (body == NULL)
        return;
    if (want_scope_window(r, a->srv->book,
                          cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "scope")),
                          cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "window")),
                          &s, &w, 1) < 0)
        goto out;
    budget_scope_label(a->srv->book, s, label, sizeof(label));
    char err[300];
    if (budget_admin_reset(a->srv->book, s, (enum conf_window)w, now, err, sizeof(err)) < 0) {
        reply_error(r, 500, "ledger_error", err);
        goto out;
    }
    fprintf(stderr, "tokengate: admin: %s %s window reset\n", label,
            conf_window_name((enum conf_window)w));
    cJSON *doc = cJSON_CreateObject();
    struct view_ctx x = {.book = a->srv->book, .scope = s, .window = w};
    x.list = cJSON_AddArrayToObject(doc, "budgets");
    budget_each(a->srv->book, now, 1, add_view, &x);
    reply_json(r, 200, doc);
out:
    cJSON_Delete(body);
}

/* ---- keys ----------------------------------------------------------------------------- */

struct keys_ctx {
    struct budget_book *book;
    cJSON *list;
};

static void add_key(void *arg, const unsigned char hash[32], int agent, int revoked)
{
    struct keys_ctx *x = arg;
    char id[24];
    cJSON *o = cJSON_CreateObject();

    budget_key_id(hash, id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "agent", budget_scope_name(x->book, agent));
    cJSON_AddBoolToObject(o, "revoked", revoked);
    cJSON_AddItemToArray(x->list, o);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void create_key(struct gate_admin *a, struct evhttp_request *r)
{
    cJSON *body = read_body(r);
    unsigned char raw[24], hash[32];
    char secret[64], id[24], scope[300], err[300];
    unsigned int n = 0;

    if (body == NULL)
        return;
    const char *agent = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "agent"));
    snprintf(scope, sizeof(scope), "agent:%s", agent ? agent : "");
    int s = agent ? budget_find_scope(a->srv->book, scope) : -1;
    if (s < 0) {
        reply_error(r, 404, "not_found", "'agent' must name an agent of the config");
        goto out;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        reply_error(r, 500, "internal", "no randomness for a key");
        goto out;
    }
    memcpy(secret, "tg-", 3);
    hex(raw, sizeof(raw), secret + 3);
    EVP_Digest(secret, strlen(secret), hash, &n, EVP_sha256(), NULL);
    budget_key_id(hash, id);
    int rc = budget_admin_add_key(a->srv->book, hash, s, gate_wall_now(), err, sizeof(err));
    if (rc < 0) {
        OPENSSL_cleanse(secret, sizeof(secret));
        reply_error(r, 500, rc == BUDGET_ADMIN_STORE ? "ledger_error" : "internal", err);
        goto out;
    }
    fprintf(stderr, "tokengate: admin: key %s created for agent %s\n", id, agent);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddStringToObject(doc, "key", secret);
    cJSON_AddStringToObject(doc, "agent", agent);
    cJSON_AddStringToObject(doc, "note", "the key is shown once; the gate keeps only its hash");
    OPENSSL_cleanse(secret, sizeof(secret));
    reply_json(r, 201, doc);
out:
    cJSON_Delete(body);
}

static void revoke_key(struct gate_admin *a, struct evhttp_request *r, const char *id)
{
    char err[300];
    int rc = budget_admin_revoke_key(a->srv->book, id, gate_wall_now(), err, sizeof(err));

    if (rc < 0) {
        reply_error(r, rc == BUDGET_ADMIN_NOT_FOUND ? 404 : 500,
                    rc == BUDGET_ADMIN_NOT_FOUND ? "not_found" : "ledger_error", err);
        return;
    }
    fprintf(stderr, "tokengate: admin: key %s revoked\n", id);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddBoolToObject(doc, "revoked", 1);
    reply_json(r, 200, doc);
}

/* ---- the tree ------------------------------------------------------------------------- */

static cJSON *scope_json(struct budget_book *b, int s)
{
    char label[300];
    cJSON *o = cJSON_CreateObject();
    int p = budget_scope_parent(b, s);

    cJSON_AddStringToObject(o, "scope", budget_scope_label(b, s, label, sizeof(label)));
    cJSON_AddStringToObject(o, "level", conf_level_name(budget_scope_level(b, s)));
    cJSON_AddStringToObject(o, "name", budget_scope_name(b, s));
    if (p >= 0)
        cJSON_AddStringToObject(o, "parent", budget_scope_label(b, p, label, sizeof(label)));
    else
        cJSON_AddNullToObject(o, "parent");
    return o;
}

static void get_scopes(struct gate_admin *a, struct evhttp_request *r)
{
    struct budget_book *b = a->srv->book;
    cJSON *doc = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(doc, "scopes");
    int n = budget_nscopes(b);

    for (int i = 0; i < n; i++)
        if (!budget_scope_retired(b, i)) /* gone from the config by a reload */
            cJSON_AddItemToArray(list, scope_json(b, i));
    reply_json(r, 200, doc);
}

/* POST {"level":"agent","name":"crawler-3","parent":"team:search"} */
static void add_scope(struct gate_admin *a, struct evhttp_request *r)
{
    struct budget_book *b = a->srv->book;
    cJSON *body = read_body(r);
    char err[300], label[300];
    int lv = -1, s;

    if (body == NULL)
        return;
    const char *level = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "level"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "name"));
    const char *parent = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "parent"));
    if (level != NULL && (lv = conf_level_parse(level)) == CONF_LEVEL_ORG)
        lv = -1;
    if (lv < 0 || name == NULL || parent == NULL) {
        reply_error(r, 400, "invalid_request",
                    "'level' (department, team or agent), 'name' and 'parent' (org, "
                    "department:NAME or team:NAME) are required");
        goto out;
    }
    int p = budget_find_scope(b, parent);
    if (p < 0) {
        snprintf(err, sizeof(err), "no scope '%.200s'", parent);
        reply_error(r, 404, "not_found", err);
        goto out;
    }
    /* checked by the budget module, stored, then made */
    int rc = budget_admin_add_scope(b, (enum conf_level)lv, name, p, gate_wall_now(), &s, err,
                                    sizeof(err));
    if (rc < 0) {
        if (rc == BUDGET_ADMIN_STORE)
            reply_error(r, 500, "ledger_error", err);
        else
            reply_error(r, rc == BUDGET_ADMIN_EXISTS ? 409 : 400, "invalid_request", err);
        goto out;
    }
    budget_scope_label(b, p, label, sizeof(label));
    fprintf(stderr, "tokengate: admin: %s %s added under %s\n", level, name, label);
    reply_json(r, 201, scope_json(b, s));
out:
    cJSON_Delete(body);
}

/* ---- metrics -------------------------------------------------------------------------- */

static void get_metrics(struct gate_admin *a, struct evhttp_request *r)
{
    struct evbuffer *b = evbuffer_new();

    if (b == NULL) {
        evhttp_send_error(r, 500, "out of memory");
        return;
    }
    gate_metrics_write(a->srv, b);
    evhttp_add_header(evhttp_request_get_output_headers(r), "content-type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(r, 200, NULL, b);
    evbuffer_free(b);
}

/* The agents' port's /status document, for the operator: the same JSON. */
static void get_status(struct gate_admin *a, struct evhttp_request *r)
{
    char *s = gate_status_json(a->srv);
    struct evbuffer *b = evbuffer_new();

    if (s == NULL || b == NULL) {
        cJSON_free(s);
        if (b != NULL)
            evbuffer_free(b);
        reply_error(r, 500, "internal_error", "out of memory");
        return;
    }
    evbuffer_add(b, s, strlen(s));
    cJSON_free(s);
    evhttp_add_header(evhttp_request_get_output_headers(r), "content-type", "application/json");
    evhttp_send_reply(r, 200, NULL, b);
    evbuffer_free(b);
}

/* ---- dispatch ------------------------------------------------------------------------- */

static int authorized(struct gate_admin *a, struct evhttp_request *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r), "authorization");
    size_t n;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    n = strlen(h);
    return n == a->token_len && CRYPTO_memcmp(h, a->token, n) == 0;
}

/* POST /admin/v1/reload: the config file again, as SIGHUP (gate/reload.c); 400 with the
 * loader's "FILE:LINE: reason" when it is refused, the running one being kept. */
static void post_reload(struct gate_admin *a, struct evhttp_request *r)
{
    char err[1024];
    cJSON *doc;

    if (a->srv->reload(a->srv, err, sizeof(err)) < 0) {
        reply_error(r, 400, "invalid_config", err);
        return;
    }
    doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "reloaded", 1);
    cJSON_AddStringToObject(doc, "summary", err); /* what changed, as the log says it */
    reply_json(r, 200, doc);
}

static void on_request(struct evhttp_request *r, void *arg)
{
    struct gate_admin *a = arg;
    const char *uri = evhttp_request_get_uri(r);
    enum evhttp_cmd_type m = evhttp_request_get_command(r);
    char path[256];
    size_t plen = strcspn(uri, "?");

    (void)jsonmem_failures_take(); /* reply_json sends only what was built whole from here */
    if (!authorized(a, r)) {
        evhttp_add_header(evhttp_request_get_output_headers(r), "www-authenticate", "Bearer");
        reply_error(r, 401, "unauthorized",
                    "the admin API needs 'Authorization: Bearer <admin token>'");
        return;
    }
    if (plen >= sizeof(path)) {
        reply_error(r, 404, "not_found", "unknown path");
        return;
    }
    memcpy(path, uri, plen);
    path[plen] = '\0';
    if (strcmp(path, "/metrics") == 0 && m == EVHTTP_REQ_GET) {
        get_metrics(a, r);
        return;
    }
    if (strcmp(path, "/admin/v1/status") == 0 && m == EVHTTP_REQ_GET) {
        get_status(a, r);
        return;
    }
    if (strcmp(path, "/admin/v1/reload") == 0 && m == EVHTTP_REQ_POST) {
        post_reload(a, r);
        return;
    }
    if (a->srv->book == NULL) {
        reply_error(r, 404, "not_found", "no org is configured: there are no budgets or keys");
        return;
    }
    if (strcmp(path, "/admin/v1/budgets") == 0 && m == EVHTTP_REQ_GET)
        get_budgets(a, r, 0);
    else if (strcmp(path, "/admin/v1/usage") == 0 && m == EVHTTP_REQ_GET)
        get_budgets(a, r, 1);
    else if (strcmp(path, "/admin/v1/budgets") == 0 && (m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_POST))
        put_budget(a, r);
    else if (strcmp(path, "/admin/v1/budgets/reset") == 0 && m == EVHTTP_REQ_POST)
        reset_budget(a, r);
    else if (strcmp(path, "/admin/v1/scopes") == 0 && m == EVHTTP_REQ_GET)
        get_scopes(a, r);
    else if (strcmp(path, "/admin/v1/scopes") == 0 && m == EVHTTP_REQ_POST)
        add_scope(a, r);
    else if (strcmp(path, "/admin/v1/keys") == 0 && m == EVHTTP_REQ_GET) {
        cJSON *doc = cJSON_CreateObject();
        struct keys_ctx x = {.book = a->srv->book, .list = cJSON_AddArrayToObject(doc, "keys")};
        budget_keys_each(a->srv->book, add_key, &x);
        reply_json(r, 200, doc);
    } else if (strcmp(path, "/admin/v1/keys") == 0 && m == EVHTTP_REQ_POST)
        create_key(a, r);
    else if (strncmp(path, "/admin/v1/keys/", 15) == 0 && m == EVHTTP_REQ_DELETE)
        revoke_key(a, r, path + 15);
    else
        reply_error(r, 404, "not_found", "unknown admin path or method");
}

void gate_admin_alert(struct gate_admin *a, const char *json)
{
    if (a != NULL)
        alert_post(a->alerts, json);
}

/* ---- start and stop ------------------------------------------------------------------- */

/* Reads the admin token from the environment or its file, making the file when absent. */
static int load_token(struct gate_admin *a, const struct conf_admin *c, char *err, size_t errlen)
{
    const char *v = c->token_env ? getenv(c->token_env) : NULL;

    if (v != NULL && *v != '\0') {
        if (strlen(v) < 16 || strlen(v) >= sizeof(a->token)) {
            snprintf(err, errlen, "admin: %s must hold a token of 16 to 127 characters",
                     c->token_env);
            return -1;
        }
        snprintf(a->token, sizeof(a->token), "%s", v);
        a->token_len = strlen(a->token);
        return 0;
    }
    if (c->token_file == NULL) {
        snprintf(err, errlen, "admin: %s is not set and no token_file is configured",
                 c->token_env);
        return -1;
    }
    int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        unsigned char raw[24];
        char tok[64];
        memcpy(tok, "tga-", 4);
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            snprintf(err, errlen, "admin: no randomness for a token");
            return -1;
        }
        hex(raw, sizeof(raw), tok + 4);
        fd = open(c->token_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok) || write(fd, "\n", 1) != 1) {
            snprintf(err, errlen, "admin: cannot write the token file %s: %s", c->token_file,
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
        fprintf(stderr, "tokengate: admin: a new admin token was written to %s\n", c->token_file);
        fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, errlen, "admin: cannot read the token file %s: %s", c->token_file,
                 strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, a->token, sizeof(a->token) - 1);
    close(fd);
    while (n > 0 && (a->token[n - 1] == '\n' || a->token[n - 1] == '\r' || a->token[n - 1] == ' '))
        n--;
    if (n < 16) {
        snprintf(err, errlen, "admin: the token in %s is shorter than 16 characters",
                 c->token_file);
        return -1;
    }
    a->token[n] = '\0';
    a->token_len = (size_t)n;
    return 0;
}

static void *admin_main(void *arg)
{
    struct gate_admin *a = arg;

    event_base_loop(a->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

struct gate_admin *gate_admin_start(struct gate_server *srv, char *err, size_t errlen)
{
    const struct conf *c = srv->conf_live; /* at start-up: no reload runs yet */
    struct gate_admin *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->srv = srv;
    a->base = event_base_new();
    if (a->base == NULL) {
        snprintf(err, errlen, "admin: cannot create an event base");
        goto fail;
    }
    a->alerts = alert_new(a->base, srv->upstream_ctx, &c->alerts, err, errlen);
    if (a->alerts == NULL)
        goto fail;
    if (c->admin.host != NULL) {
        if (load_token(a, &c->admin, err, errlen) < 0)
            goto fail;
        a->http = evhttp_new(a->base);
        struct evhttp_bound_socket *bs =
            a->http ? evhttp_bind_socket_with_handle(a->http, c->admin.host,
                                                     (uint16_t)c->admin.port)
                    : NULL;
        if (bs == NULL) {
            snprintf(err, errlen, "admin: cannot listen on %s:%d", c->admin.host, c->admin.port);
            goto fail;
        }
        /* evhttp reads a whole head and body before the token is checked: both are capped
         * (413 past either), as on the agents' port */
        evhttp_set_max_headers_size(a->http, c->max_header_bytes);
        evhttp_set_max_body_size(a->http, ADMIN_BODY_MAX);
        evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                                EVHTTP_REQ_DELETE);
        evhttp_set_gencb(a->http, on_request, a);
        struct sockaddr_storage ss;
        ev_socklen_t sl = sizeof(ss);
        int port = c->admin.port;
        if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
            port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
        fprintf(stderr, "tokengate: admin API on http://%s:%d\n", c->admin.host, port);
    }
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        snprintf(err, errlen, "admin: cannot start its thread");
        goto fail;
    }
    a->started = 1;
    return a;
fail:
    gate_admin_stop(a);
    return NULL;
}

void gate_admin_stop(struct gate_admin *a)
{
    if (a == NULL)
        return;
    if (a->started) {
        event_base_loopexit(a->base, NULL);
        pthread_join(a->thread, NULL);
    }
    alert_free(a->alerts);
    if (a->http != NULL)
        evhttp_free(a->http);
    if (a->base != NULL)
        event_base_free(a->base);
    OPENSSL_cleanse(a->token, sizeof(a->token));
    free(a);
}
