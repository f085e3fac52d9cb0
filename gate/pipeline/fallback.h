/*
 * fallback: the targets routing chose for a request, taken into use one after the other. The
 * route stage takes the first (route_use_next); when an attempt fails before anything reached
 * the client (connect failure, timeout, 429, 5xx, 529), fallback_start gives it up - charged as
 * it ended, recorded with why, reported to the target's health - and runs the pipeline again
 * from count on the next candidate: counted with its tokenizer, admitted at its price,
 * prepared (translated) for its API, dispatched. At most conf.routing.attempts targets per
 * request. The end of the request reports the last attempt to health and to the routing
 * counters (route_finish).
 */
#ifndef TG_FALLBACK_H
#define TG_FALLBACK_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "routing/health.h"

struct gate_req;
struct route_input;

/* The route input of req: who asks, for what, the state of their budgets and their policy. */
void route_input_of(struct gate_req *req, struct route_input *in);

/*
 * A budget refused the request at its tier's price and the agent's policy says
 * on_exhaustion: downgrade: the candidates become those of the next tier down (route_tier) and
 * the first is taken into use. Returns 1, and the caller runs the pipeline again from count;
 * 0 when there is no tier below (or the request was not routed to a tier, or the policy
 * refuses).
 */
int route_downgrade(struct gate_req *req);

/* Takes the next candidate of req's route into use (req->cm, prov, upstream_api, rt.xlate),
 * skipping those whose health says not now. Returns 0, or -1 when none is left. */
int route_use_next(struct gate_req *req);

/* Whether req may give up the attempt in use for another: it was routed, its client is there
 * and has had nothing of the answer, and a candidate and an attempt are left. */
int fallback_possible(const struct gate_req *req);

/*
 * The attempt in use failed with outcome o (why: for the record, status: the provider's or 0,
 * retry_after_ms: what it asked, 0 for none). When fallback_possible, gives it up and returns 1:
 * the request is REQ_WAITING and goes on from its worker's completion queue with the next
 * candidate. Else reports the failure to health and returns 0: the caller ends the request as
 * it would have. The exchange must be over (failed, or done, or dropped from its head).
 */
int fallback_start(struct gate_req *req, enum route_outcome o, const char *why, int status,
                   int64_t retry_after_ms);

/* The model name the target in use is asked for: its upstream_model, else its own name (the
 * name the client asked for when the entry is a wildcard). */
const char *route_served_name(const struct gate_req *req);

/*
 * The request translated for the target in use (req->rt.xdoc, in the arena): its output cap the
 * client's, else the model's maximum (Anthropic requires one). Returns 0; 1 when the body has
 * a field the target's API cannot express (msg, client-facing, names it: a 400); -1 when memory
 * ran out.
 */
int route_translate(struct gate_req *req, char *msg, size_t cap);

/* The request ends: the attempt in use is reported to health (when it was sent) and the
 * request to the routing counters. Once, from req_finish. */
void route_finish(struct gate_req *req);

/* The routing members of the ledger record (NULL for none): strings in the request's arena. */
void route_rec_fields(struct gate_req *req, const char **rule, const char **tier,
                      const char **attempts, const char **translation);

/* Adds the "route" object to the request's log record. */
void route_log(struct gate_req *req, cJSON *rec);

#endif
