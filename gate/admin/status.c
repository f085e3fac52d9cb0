/*
 * status: the /status document (see status.h).
 */
#include "gate/admin/status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gate/admin/cachemetrics.h"
#include "gate/budget/budget.h"
#include "gate/budget/journal.h"
#include "gate/budget/ledger.h"
#include "gate/core/worker.h"
#include "gate/pipeline/reqlog.h"
#include "gate/pipeline/tcount.h"
#include "gate/util/clock.h"
#include "gate/util/jsonmem.h"
#include "routing/health.h"
#include "routing/labelcache.h"
#include "routing/rstats.h"

char *gate_status_json(struct gate_server *srv)
{
    struct timespec now;
    struct gate_totals *t = malloc(sizeof(*t)); /* 4.9 KB: not on a worker's stack */
    cJSON *doc = cJSON_CreateObject();
    cJSON *by_status;
    char code[8];

    /* doc is checked; from here on, a member that fails to be added fails the document */
    (void)jsonmem_failures_take();
    if (t == NULL || doc == NULL) {
        free(t);
        cJSON_Delete(doc);
        return NULL;
    }
    gate_stats_total(srv, t);
    clock_gettime(CLOCK_MONOTONIC, &now);
    cJSON_AddStringToObject(doc, "version", TG_VERSION);
    cJSON_AddNumberToObject(doc, "uptime_s", (double)(now.tv_sec - srv->started.tv_sec));
    cJSON_AddNumberToObject(doc, "workers", srv->nworkers);
    by_status = cJSON_CreateObject();
    for (int s = 100; s < 600; s++) {
        uint64_t n = t->by_status[s];
        if (n > 0) {
            snprintf(code, sizeof(code), "%d", s);
            cJSON_AddNumberToObject(by_status, code, (double)n);
        }
    }
    cJSON_AddNumberToObject(doc, "connections_open", (double)t->open_conns);
    cJSON_AddNumberToObject(doc, "requests_served", (double)t->requests);
    cJSON_AddItemToObject(doc, "requests_by_status", by_status);
    cJSON_AddNumberToObject(doc, "upstream_connections_opened", (double)t->upstream_conns_opened);
    cJSON_AddNumberToObject(doc, "request_log_dropped", (double)reqlog_dropped(srv->reqlog));
    cJSON_AddNumberToObject(doc, "memory_in_flight", (double)memcap_used(&srv->mem));
    if (srv->ledger != NULL) {
        cJSON_AddNumberToObject(doc, "ledger_pending", (double)ledger_pending(srv->ledger));
        cJSON_AddNumberToObject(doc, "ledger_failed", (double)ledger_failed(srv->ledger));
        char why[200];
        ledger_why(srv->ledger, why, sizeof(why));
        cJSON_AddStringToObject(doc, "ledger_state", ledger_failing(srv->ledger) ? "failing" : "ok");
        if (why[0])
            cJSON_AddStringToObject(doc, "ledger_error", why);
        cJSON_AddNumberToObject(doc, "ledger_spilled", (double)ledger_spilled(srv->ledger));
    }
    if (srv->journal != NULL)
        cJSON_AddNumberToObject(doc, "journal_in_flight", (double)journal_live(srv->journal));
    if (srv->book != NULL)
        cJSON_AddNumberToObject(doc, "reserved_tokens", (double)budget_reserved_total(srv->book));
    {
        struct tcount_drift *ds[256];
        int n = srv->nworkers < 256 ? srv->nworkers : 256;
        for (int i = 0; i < n; i++)
            ds[i] = srv->workers[i].drift;
        tcount_drift_status(ds, n, doc);
    }
    if (srv->health != NULL) { /* routing: targets' health, requests by tier, label cache */
        struct conf *cf = gate_conf_get(srv);
        cJSON *targets = cJSON_AddArrayToObject(doc, "targets");
        cJSON *routing = cJSON_AddObjectToObject(doc, "routing");
        cJSON *cc = cJSON_AddObjectToObject(doc, "classifier_cache");
        uint64_t ls[4];
        route_health_status(srv->health, cf, gate_now_us(), targets);
        conf_unref(cf);
        rstats_status(srv->rstats, routing);
        labelcache_stats(srv->labels, ls);
        cJSON_AddNumberToObject(cc, "entries", (double)ls[0]);
        cJSON_AddNumberToObject(cc, "hits", (double)ls[1]);
        cJSON_AddNumberToObject(cc, "misses", (double)ls[2]);
        cJSON_AddNumberToObject(cc, "evictions", (double)ls[3]);
    }
    cache_status_add(srv, doc);
    char *s = jsonmem_failures_take() == 0 ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    free(t);
    return s;
}
