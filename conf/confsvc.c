/*
 * confsvc: the config sections of the gate's own services: the ledger, the admin listener and
 * alerts (split from confid.c, which calls these for the top-level keys).
 *
 *   ledger: { path: state/ledger.db, sync: normal, on_failure: closed }
 *   admin: { listen: 127.0.0.1:8081, token_env: TG_ADMIN_TOKEN }
 *   alerts: { thresholds: [80, 95], webhook: https://hooks.example/... }
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

int confsvc_ledger(struct loader *l, const yaml_node_t *v)
{
    struct conf *c = l->c;

    if (conf_want_mapping(l, v, "ledger") < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn), *s = NULL;
        if (k != NULL && strcmp(k, "path") == 0) {
            if (conf_want_string(l, pv, k, &c->ledger_path) < 0)
                return -1;
        } else if (k != NULL && strcmp(k, "sync") == 0) {
            if (conf_want_scalar(l, pv, k, &s) < 0)
                return -1;
            if (strcmp(s, "normal") != 0 && strcmp(s, "full") != 0)
                return conf_fail(l, pv, "ledger: sync is normal or full, not '%s'", s);
            c->ledger_sync = strcmp(s, "full") == 0;
        } else if (k != NULL && strcmp(k, "on_failure") == 0) {
            if (conf_want_scalar(l, pv, k, &s) < 0)
                return -1;
            if (strcmp(s, "closed") != 0 && strcmp(s, "open") != 0)
                return conf_fail(l, pv, "ledger: on_failure is closed or open, not '%s'", s);
            c->ledger_fail_open = strcmp(s, "open") == 0;
        } else {
            return conf_fail(l, kn, "ledger: unknown key '%s' (path, sync, on_failure)",
                             k ? k : "?");
        }
    }
    if (c->ledger_path == NULL)
        return conf_fail(l, v, "ledger: 'path' is required, such as state/ledger.db");
    return 0;
}

int confsvc_admin(struct loader *l, const yaml_node_t *v)
{
    struct conf_admin *a = &l->c->admin;

    if (conf_want_mapping(l, v, "admin") < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn), *s = NULL;
        int r;
        if (k != NULL && strcmp(k, "listen") == 0) {
            if (conf_want_scalar(l, pv, k, &s) < 0)
                return -1;
            free(a->host);
            a->host = NULL;
            if (conf_split_host_port(s, &a->host, &a->port) < 0)
                return conf_fail(l, pv, "admin: 'listen' must be HOST:PORT with a numeric "
                                        "address, such as 127.0.0.1:8081 (names are not "
                                        "resolved)");
            continue;
        } else if (k != NULL && strcmp(k, "token_env") == 0)
            r = conf_want_string(l, pv, k, &a->token_env);
        else if (k != NULL && strcmp(k, "token_file") == 0)
            r = conf_want_string(l, pv, k, &a->token_file);
        else
            return conf_fail(l, kn, "admin: unknown key '%s' (listen, token_env, token_file)",
                             k ? k : "?");
        if (r < 0)
            return -1;
    }
    if (a->host == NULL) {
        a->host = strdup("127.0.0.1");
        a->port = 8081;
        if (a->host == NULL)
            return conf_fail(l, v, "admin: out of memory");
    }
    if (a->token_env == NULL && a->token_file == NULL &&
        (a->token_file = strdup("state/admin.token")) == NULL)
        return conf_fail(l, v, "admin: out of memory");
    return 0;
}

int confsvc_alerts(struct loader *l, const yaml_node_t *v)
{
    struct conf_alerts *al = &l->c->alerts;
    const char *why;

    if (conf_want_mapping(l, v, "alerts") < 0)
        return -1;
    FOR_PAIRS(l, v, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key), *pv = conf_node(l, pair->value);
        const char *k = conf_scalar(kn);
        if (k != NULL && strcmp(k, "thresholds") == 0) {
            if (pv->type != YAML_SEQUENCE_NODE)
                return conf_fail(l, pv, "alerts: thresholds is a list of percents, like [80, 95]");
            al->nthresholds = 0;
            FOR_ITEMS(l, pv, item) {
                long iv;
                if (al->nthresholds == 8)
                    return conf_fail(l, pv, "alerts: at most 8 thresholds");
                if (conf_want_int(l, conf_node(l, *item), "thresholds", 1, 100, &iv) < 0)
                    return -1;
                if (al->nthresholds > 0 && iv <= al->thresholds[al->nthresholds - 1])
                    return conf_fail(l, pv, "alerts: thresholds must go up");
                al->thresholds[al->nthresholds++] = (int)iv;
            }
        } else if (k != NULL && strcmp(k, "webhook") == 0) {
            if (conf_want_string(l, pv, k, &al->webhook) < 0)
                return -1;
            conf_url_free(&al->hook); /* a second webhook key replaces the first */
            if ((why = conf_parse_url(al->webhook, &al->hook)) != NULL)
                return conf_fail(l, pv, "alerts: webhook %s", why);
        } else {
            return conf_fail(l, kn, "alerts: unknown key '%s' (thresholds, webhook)", k ? k : "?");
        }
    }
    return 0;
}

void confsvc_free(struct conf *c)
{
    free(c->ledger_path);
    free(c->admin.host);
    free(c->admin.token_env);
    free(c->admin.token_file);
    free(c->alerts.webhook);
    conf_url_free(&c->alerts.hook);
}
