/*
 * spend: a request's part in the budgets. It authenticates the agent, reserves before the
 * request is forwarded (writing the output allowance into the body when it must), and
 * settles when the request ends, writing the ledger record. The reservation goes through the
 * book's store (gate/budget/store.h), which may answer later: the request WAITs meanwhile, and
 * the store's answer comes back through the worker's completion queue.
 *
 * A response that completes is held back until the ledger has committed its record: the end
 * of a non-stream response, or the last chunk of a stream, is written only once the record is
 * on disk, so a client that saw a response end has its spend in the ledger even if the gate is
 * killed a moment later. The ledger thread hands the request back to its worker through the
 * worker's completion queue (completion.h): the request WAITs meanwhile.
 */
#ifndef TG_SPEND_H
#define TG_SPEND_H

#include <stddef.h>
#include <stdint.h>


struct gate_req;
struct gate_worker;
struct conf_model;
struct budget_alert;

/*
 * Finds the agent of the request from its key (Authorization: Bearer, or x-api-key). Returns
 * 0 to go on (the gate is open, or the key is good, or anonymous use is allowed), or -1 after
 * answering 401.
 */
int spend_authenticate(struct gate_req *req);

/* The credential the client presents (a gate key, or on an open gate the provider key it
 * brings), in the headers its API takes one from, *len bytes; NULL for none. */
const char *spend_presented_key(const struct gate_req *req, size_t *len);

/*
 * Checks the request's output caps (outcap.h) and reserves for it on its agent's budgets, once
 * its input is counted (m is its model entry), through the book's store (store.h). Returns:
 *   0  admitted, or nothing to reserve: the cap members to rewrite are in req->edits
 *      (req->nedits, values in the request's arena), out_limit is set;
 *  -1  after answering 400 (a cap or n that is not a whole number in range, a policy's
 *      max_per_request), 429 (budget) or 503 (ledger behind);
 *   1  the store answers later (BUDGET_PENDING): the request is REQ_WAITING. On its worker,
 *      once the store answers, an admission does what 0 says and resumes the pipeline
 *      (pipeline_resume, STAGE_NEXT; a client gone meanwhile is finalized and its reservation
 *      released whole); a refusal is answered as -1 says. An answer that does not come within
 *      timeouts.upstream_connect is a 503 (retry-after), and what the store grants after that
 *      is released whole. The request is never freed while the store holds its reservation.
 * The in-memory store always answers at once (0 or -1), with no allocation.
 */
int spend_reserve(struct gate_req *req, const struct conf_model *m);

/* Frees what spend keeps per worker (a reservation's spare, see spend.c). After the worker's
 * loop and completion queue are over, before its event base is freed. */
void spend_worker_free(struct gate_worker *w);

/*
 * The output tokens past which a stream is cut off when the provider was told to stop at
 * allowed: a margin over it, since the gate's count of the text and the provider's may differ
 * (allowed + 1/16 + 32; for approximate counts, such as Anthropic's, allowed + 1/4 + 64).
 */
int64_t spend_output_limit(int64_t allowed, int approximate);

/*
 * The last step before forwarding. With a failing ledger and ledger.on_failure: closed,
 * answers 503 (spend could not be recorded). With a reservation, writes the request into the
 * crash journal (so a crash before its record is committed still charges it), answering 503
 * when the journal is full. Returns 0 to forward, or -1 after answering.
 */
int spend_forward(struct gate_req *req);

/*
 * Writes the x-tokengate-* response headers into buf (CRLF-terminated lines). Returns the
 * length, 0 when there are none.
 */
size_t spend_headers(const struct gate_req *req, char *buf, size_t cap);

/*
 * Settles the request's reservation to what it used and submits its ledger record. With hold
 * set, and a ledger to write to, returns 1: the request is REQ_WAITING for the commit, and is
 * resumed on its worker afterwards (pipeline_post, STAGE_NEXT). Else returns 0 (the record is
 * queued, or there is no ledger). Its callers run it once: the settle stage, or req_finish
 * for a request that never reached it (phase before REQ_SETTLING).
 */
int spend_settle(struct gate_req *req, int hold);

/*
 * What one exchange with a provider is charged (tokens, of which output, nano-dollars): the
 * single rule, for requests (spend.c) and the classifier's calls (classify.c). The provider's
 * usage counts when it is final and sane. Otherwise, once the provider had the request and did
 * not refuse it (answered: a 2xx; sent_unanswered: no answer came), never below the gate's own
 * counts in and out (out only when answered) nor below partial usage; an answer that could not
 * be read, never below the reservation. A provider error without usage, or a request never
 * sent, costs nothing.
 */
struct usage;
struct conf_price;
struct budget_resv;
struct spend_basis {
    const struct usage *u;
    const struct conf_price *price;
    int answered, sent_unanswered;
    int64_t in, out;
    int unreadable;
    const struct budget_resv *resv; /* or NULL */
};
void spend_charge(const struct spend_basis *b, int64_t *tokens, int64_t *output, int64_t *nusd);

/* Answers a reservation the budgets refused (why, at wall time now): 429 naming the scope,
 * the window, what was used, reserved and needed, when it resets (budget_exceeded, a task's
 * limit, a cutoff), or 400 for a request larger than its policy allows (spend_refuse.c). */
struct budget_refusal;
void spend_refuse(struct gate_req *req, const struct budget_refusal *why, double now);

/* Writes the alerts a settlement crossed (budget_settle's) to stderr, the request log and the
 * admin's subscribers: for a charge settled apart from the request's own (the classifier's). */
void spend_raise_alerts(struct gate_req *req, const struct budget_alert *a, int n);

/*
 * The attempt in use is given up (fallback.c): it is charged as a request that ended so would
 * be (charge(): nothing for a provider's error or a request never sent, the input at least when
 * the provider had it), its reservation settled to that, and when it cost something its own
 * ledger record is written (the request's id with "/N", decision "fallback", at->reason), which
 * takes over its journal slot; else the slot is cleared. The charge goes into at. The request's
 * reservation, usage and output count are reset for the next attempt.
 */
struct req_attempt;
void spend_attempt_close(struct gate_req *req, struct req_attempt *at);

#endif
