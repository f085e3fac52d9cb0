/*
 * stages: the stages of the gate's pipeline, one module each (stage_NAME.c), in the order of
 * the table in pipeline.c. Each returns an enum stage_rc (pipeline.h).
 */
#ifndef TG_STAGES_H
#define TG_STAGES_H

#include "gate/pipeline/pipeline.h"

/* The endpoint from the path and its method: 404 for an unknown path, 405 for a method it
 * does not take. */
enum stage_rc stage_parse(struct gate_req *req);

/* The caller's key, for every endpoint but /healthz: 401 (spend_authenticate). */
enum stage_rc stage_auth(struct gate_req *req);

/* The endpoints the gate answers itself (/healthz, /status, /v1/models): ANSWERED; NEXT for
 * an endpoint that goes to a provider. */
enum stage_rc stage_local(struct gate_req *req);

/* The body as JSON: an object, no NUL, no duplicate key, a 'model' string (400). Bounds the
 * request's memory from here to prepare (limits.max_request_memory). */
enum stage_rc stage_body(struct gate_req *req);

/* The model table: the model's entry (req->cm) and provider (req->prov), which must speak the
 * endpoint's format (404 model_not_found, 400). */
enum stage_rc stage_route(struct gate_req *req);

/* The gate's own count of the input tokens (tcount_input). */
enum stage_rc stage_count(struct gate_req *req);

/* The response cache (stage_cache.c): BYPASS, MISS (NEXT; a fill filter stores the answer),
 * or a HIT answered from the cache: the request goes to dispatch with the cache source (WAIT),
 * admit and prepare skipped (nothing reserved). 400 for a bad x-tokengate-cache value. */
enum stage_rc stage_cache(struct gate_req *req);

/* The response-cache key of req for target (a model entry's name) into *key (in the arena),
 * *klen bytes: see stage_cache.c. Returns 0, or -1 when the body is too large or too deep for
 * the key, or memory runs out. stage_cache_rekey makes it from the key the lookup made
 * (req->cache.key) with another target, the body as it was then. */
int stage_cache_key(struct gate_req *req, const char *target, char **key, size_t *klen);
int stage_cache_rekey(struct gate_req *req, const char *target, char **key, size_t *klen);

/* The output caps and the reservation on the caller's budgets (spend_reserve): the members to
 * rewrite go into req->edits; 400, 429 or 503 when refused. WAIT (REQ_WAITING) when the budget
 * store answers later: its answer resumes the request on its worker, or a wait past
 * timeouts.upstream_connect answers 503. */
enum stage_rc stage_admit(struct gate_req *req);

/* The body rewritten (caps, a renamed model, stream usage asked for) and the upstream request
 * built (req->ex.request). Ends the memory bound of stage_body. */
enum stage_rc stage_prepare(struct gate_req *req);

/* The crash journal (spend_forward: 503 when it cannot), then the response source starts:
 * WAIT until its answer has been relayed (the source resumes the table), or it failed. */
enum stage_rc stage_dispatch(struct gate_req *req);

/* Charges the request and submits its ledger record (spend_settle): WAIT for the commit when a
 * client waits for the end of its answer. */
enum stage_rc stage_settle(struct gate_req *req);

/* Writes the end of the answer held back until the record committed, and finishes the request
 * (req_finish): ANSWERED. */
enum stage_rc stage_record(struct gate_req *req);

#endif
