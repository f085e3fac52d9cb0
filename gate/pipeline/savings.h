/*
 * savings: what a request did not cost, by the response cache, provider prompt caching and
 * routing; figured when it is settled (spend.c), written to its ledger record (schema 4) and
 * its log record, and counted for /metrics (cache/cstats.h).
 *
 *   response cache  a hit: the provider tokens the stored answer cost and their price today
 *                   (req->cache.saved_tokens/saved_nusd, set by stage_cache)
 *   prompt caching  cached reads at the input price less their cached price, less the
 *                   premium of the writes over the input price (5-minute at cache_write,
 *                   1-hour at cache_write_1h): below 0 when the writes cost more than the
 *                   reads saved
 *   routing         the usage at the price of the model asked for (an alias: its own
 *                   destination's first target) less the cost paid; 0 when the model served
 *                   is the one asked for, or the one asked for has no price
 */
#ifndef TG_SAVINGS_H
#define TG_SAVINGS_H

#include <cjson/cJSON.h>
#include <stdint.h>

struct gate_req;
struct ledger_rec;
struct conf;
struct conf_model;
struct conf_price;
struct usage;

/* Figures req's prompt and routing savings against paid_nusd (what it was charged) into
 * req->cache, and counts them in the server's cache counters (a response-cache hit's saving
 * is counted where it is found: stage_cache). */
void savings_settle(struct gate_req *req, int64_t paid_nusd);

/* The cache and savings fields of req's ledger record. */
void savings_rec(const struct gate_req *req, struct ledger_rec *rec);

/* Adds "cache" (the response cache's outcome, when it looked, and the prompt caching the gate
 * did) and "saved" ({response_usd, prompt_usd, routing_usd}) to the log record rec. */
void savings_log(const struct gate_req *req, cJSON *rec);

/* The pure parts, for the tests: the prompt-caching saving of u at price p (nano-dollars,
 * may be below 0; cache_write_1h is the part of u->cache_write written for an hour); the
 * model whose price routing is measured against for the model asked (NULL: none). */
int64_t savings_prompt_nusd(const struct usage *u, int64_t cache_write_1h,
                            const struct conf_price *p);
const struct conf_model *savings_asked_model(const struct conf *c, const char *asked);

#endif
