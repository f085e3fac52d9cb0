/*
 * health: what the gate has seen of each target, shared by every worker: a circuit breaker
 * (closed, open, half-open), a retry-after the target asked for, and moving latency estimates
 * (time to first byte and total: an EWMA, and the p90 of the recent samples).
 *
 * Targets are kept by model entry name, so their state survives a reload. The table has a cap
 * (ROUTE_HEALTH_MAX targets); a target past it is always reported healthy, with no latency.
 * Every call takes one mutex for a few instructions; none allocates after route_health_new.
 */
#ifndef TG_HEALTH_H
#define TG_HEALTH_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

#define ROUTE_HEALTH_MAX 1024
#define ROUTE_HEALTH_SAMPLES 64 /* latency samples kept per target for the p90 */

struct route_health;

enum route_circuit { ROUTE_CLOSED, ROUTE_OPEN, ROUTE_HALF_OPEN };

/* How an attempt on a target ended. */
enum route_outcome {
    ROUTE_OK_ANSWER,    /* an answer that is the target's to give: 2xx, or a 4xx of the
                         * request's own making (400, 401, 404, ...) */
    ROUTE_FAIL_CONNECT, /* no connection, or reset before an answer */
    ROUTE_FAIL_TIMEOUT,
    ROUTE_FAIL_STATUS,  /* 5xx, 529 */
    ROUTE_FAIL_LIMITED, /* 429: not a failure of the circuit, but retry_after is honoured */
};

struct route_health *route_health_new(void);
void route_health_free(struct route_health *h);

/*
 * Whether target may be tried now (cfg: conf.routing). Closed: yes. Open: no until its
 * cool-down ends, then it is half-open and one request at a time is let through as the probe
 * (*probe set; its report closes or opens the circuit again). A retry-after not yet over: no.
 * When no, *retry_after_s says in how many seconds it may be (at least 1).
 */
int route_health_usable(struct route_health *h, const struct conf_routing *cfg,
                        const char *target, int64_t now_us, int *probe, int *retry_after_s);

/*
 * Reports an attempt's end: outcome, its time to first byte and total (us, -1 unknown), a
 * retry-after the target sent (ms, 0 none; capped at cfg->retry_after_max_ms).
 */
void route_health_report(struct route_health *h, const struct conf_routing *cfg,
                         const char *target, enum route_outcome o, int64_t ttfb_us,
                         int64_t total_us, int64_t retry_after_ms, int64_t now_us);

/* A probe that route_health_usable handed out and that will not be tried after all (the
 * request was refused or ended before its attempt) gives its place back, so that the next
 * request probes at once rather than after the lost-probe delay. Nothing when target has no
 * probe out. */
void route_health_unprobe(struct route_health *h, const char *target);

/* The p90 of target's recent samples (ms): first byte with first_byte set, else total. -1 when
 * fewer than 5 samples are known. */
int64_t route_health_p90_ms(struct route_health *h, const char *target, int first_byte);

/* /status: an array, one object per target seen or in one of c's tiers (state, failures in a row, error ratio, EWMA
 * and p90 latencies, open until). /metrics: Prometheus lines (tokengate_target_state,
 * tokengate_target_failures_total, tokengate_target_latency_ms) appended to out. */
void route_health_status(struct route_health *h, const struct conf *c, int64_t now_us,
                         cJSON *arr);
void route_health_metrics(struct route_health *h, const struct conf *c, int64_t now_us,
                          void (*out)(void *arg, const char *line, size_t len), void *arg);

#endif
