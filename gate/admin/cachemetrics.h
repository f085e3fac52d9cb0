/*
 * cachemetrics: the caches in /metrics and /status: lookups per cache, scope level and
 * outcome (cache/cstats.h), hit ratios, each store's entries, bytes, caps and evictions
 * (cache/store.h, cache/prefixcount.h), and what caches and routing saved.
 */
#ifndef TG_CACHEMETRICS_H
#define TG_CACHEMETRICS_H

#include <cjson/cJSON.h>

struct evbuffer;
struct gate_server;

/* Appends the caches' metrics, in Prometheus' text format, to out. */
void cache_metrics_write(struct gate_server *srv, struct evbuffer *out);

/* Adds the "caches" object to the /status document doc. */
void cache_status_add(struct gate_server *srv, cJSON *doc);

#endif
