/*
 * rstats: requests, tokens and cost by tier, target and rule, for /metrics, shared by every
 * worker (one mutex, taken once as a request ends). The table has a cap (RSTATS_MAX rows); a
 * row past it is counted under the target "(other)".
 */
#ifndef TG_RSTATS_H
#define TG_RSTATS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define RSTATS_MAX 4096

struct rstats;

struct rstats *rstats_new(void);
void rstats_free(struct rstats *s);

/* Adds one request's end: tier, target and rule names ("" for none), whether it fell back,
 * its tokens (input, output) and cost (nano-dollars). */
void rstats_add(struct rstats *s, const char *tier, const char *target, const char *rule,
                int fell_back, int64_t input, int64_t output, int64_t nusd);

/* Prometheus lines: tokengate_route_requests_total{tier,target,rule},
 * tokengate_route_tokens_total{...,kind="input|output"}, tokengate_route_cost_usd_total,
 * tokengate_route_fallbacks_total, appended through out. */
void rstats_metrics(struct rstats *s, void (*out)(void *arg, const char *line, size_t len),
                    void *arg);

/* /status: adds to obj "requests", "fallbacks" and "requests_by_tier", "requests_by_target",
 * "requests_by_rule" (objects: name -> requests; "" for none). */
void rstats_status(struct rstats *s, cJSON *obj);

/* Writes v as a Prometheus label value (\\, \" and \n escaped) into out (cap bytes, at
 * least 4), cut short when it does not fit: for health.c's metrics too. */
void rstats_label(const char *v, char *out, size_t cap);

#endif
