/*
 * spend_refuse: the answer to a reservation the budgets refused. See spend.h.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gate/budget/budget.h"
#include "gate/core/worker.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"
#include "gate/util/jsonmem.h"

static void add_money(cJSON *o, const char *key, int64_t nusd)
{
    cJSON_AddNumberToObject(o, key, (double)nusd / 1e9);
}

/*
 * Answers 429 with an error of type and msg in the request's API format, naming scope; for
 * budget_exceeded (budget not NULL) with the budget's figures and the x-tokengate-* headers.
 * Retry-After when the refusal ends at a known time, and x-should-retry: false always: the
 * SDKs retry a 429 unless told not to, and a budget does not come back in seconds.
 */
static void answer_429(struct gate_req *req, const char *type, const char *msg, const char *scope,
                       const struct budget_refusal *budget, double resets_at, double now)
{
    char when[40] = "", extra[512], hdrs[256] = "";

    req->error = arena_strndup(req->arena, msg, strlen(msg));
    struct arena *prev = jsonmem_enter(req->arena);
    cJSON *e, *doc = api_dialect_errors(req->client_api, req->fmt)->error_doc(type, type, msg, &e);
    if (doc != NULL)
        cJSON_AddStringToObject(e, "scope", scope);
    if (doc != NULL && budget != NULL) {
        const char *const names[] = {"limit", "used", "reserved", "remaining", "needed"};
        const int64_t v[] = {budget->limit, budget->used, budget->reserved, budget->remaining,
                             budget->needed};
        cJSON_AddStringToObject(e, "window", conf_window_name(budget->window));
        cJSON_AddStringToObject(e, "unit", budget->usd ? "usd" : "tokens");
        for (int i = 0; i < 5; i++) {
            if (budget->usd)
                add_money(e, names[i], v[i]);
            else
                cJSON_AddNumberToObject(e, names[i], (double)v[i]);
        }
        if (resets_at > 0) {
            gate_iso_utc(resets_at, when, sizeof(when));
            cJSON_AddStringToObject(e, "resets_at", when);
        } else {
            cJSON_AddNullToObject(e, "resets_at");
        }
        hdrs[spend_headers(req, hdrs, sizeof(hdrs))] = '\0';
    }
    const char *body = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL; /* in the arena */
    jsonmem_leave(prev);
    if (resets_at > now)
        snprintf(extra, sizeof(extra), "retry-after: %lld\r\nx-should-retry: false\r\n%s",
                 (long long)ceil(resets_at - now), hdrs);
    else
        snprintf(extra, sizeof(extra), "x-should-retry: false\r\n%s", hdrs);
    if (body == NULL)
        req_fail(req, APIERR_INTERNAL, "out of memory");
    else
        req_respond(req, 429, "application/json", extra, body, strlen(body));
}

void spend_refuse(struct gate_req *req, const struct budget_refusal *why, double now)
{
    char scope[300], msg[700], when[40] = "";

    budget_scope_label(req->w->srv->book, why->scope, scope, sizeof(scope));
    switch (why->kind) {
    case BUDGET_TOO_LARGE:
        snprintf(msg, sizeof(msg),
                 "this request needs at least %lld tokens, over the %lld tokens a request may use "
                 "under the policy of %s (max_per_request)",
                 (long long)why->needed, (long long)why->limit, scope);
        req->decision = REQ_DECISION_REJECTED_POLICY;
        req->error = arena_strndup(req->arena, msg, strlen(msg));
        req_fail(req, APIERR_BAD_REQUEST, req->error);
        return;
    case BUDGET_TASK:
        if (why->usd)
            snprintf(msg, sizeof(msg),
                     "task limit exceeded: this task of %s has spent $%.6f of the $%.6f its policy "
                     "allows a task (task.max_usd); this request could cost up to $%.6f",
                     scope, why->used / 1e9, why->limit / 1e9, why->needed / 1e9);
        else
            snprintf(msg, sizeof(msg),
                     "task limit exceeded: this task of %s has made %lld of the %lld requests its "
                     "policy allows a task (task.max_requests)",
                     scope, (long long)why->used, (long long)why->limit);
        req->decision = REQ_DECISION_REJECTED_TASK;
        answer_429(req, "task_limit_exceeded", msg, scope, NULL, why->resets_at, now);
        return;
    case BUDGET_LOOP:
        snprintf(msg, sizeof(msg),
                 "loop detected: %s sent this same request %lld times within %d s "
                 "(cutoffs.loop_detection)",
                 scope, (long long)why->used, BUDGET_LOOP_WINDOW);
        req->decision = REQ_DECISION_REJECTED_CUTOFF;
        answer_429(req, "loop_detected", msg, scope, NULL, why->resets_at, now);
        return;
    case BUDGET_RETRIES:
        snprintf(msg, sizeof(msg),
                 "retry limit exceeded: this same request from %s failed %lld times running, "
                 "more than the %lld retries its policy allows (cutoffs.max_retries)",
                 scope, (long long)why->used, (long long)why->limit);
        req->decision = REQ_DECISION_REJECTED_CUTOFF;
        answer_429(req, "retry_limit_exceeded", msg, scope, NULL, why->resets_at, now);
        return;
    case BUDGET_OVER:
        break;
    }
    if (why->resets_at > 0)
        gate_iso_utc(why->resets_at, when, sizeof(when));
    if (why->usd)
        snprintf(msg, sizeof(msg),
                 "budget exceeded: %s has $%.6f of its $%.6f %s budget left (used $%.6f, reserved "
                 "$%.6f); this request needs at least $%.6f%s%s",
                 scope, why->remaining / 1e9, why->limit / 1e9, conf_window_name(why->window),
                 why->used / 1e9, why->reserved / 1e9, why->needed / 1e9,
                 when[0] ? "; the window resets at " : "; this budget never resets", when);
    else
        snprintf(msg, sizeof(msg),
                 "budget exceeded: %s has %lld of its %lld tokens (%s) left (used %lld, reserved "
                 "%lld); this request needs at least %lld%s%s",
                 scope, (long long)why->remaining, (long long)why->limit,
                 conf_window_name(why->window), (long long)why->used, (long long)why->reserved,
                 (long long)why->needed,
                 when[0] ? "; the window resets at " : "; this budget never resets", when);
    req->decision = REQ_DECISION_REJECTED;
    answer_429(req, "budget_exceeded", msg, scope, why, why->resets_at, now);
}
