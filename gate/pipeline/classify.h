/*
 * classify: asks the classifier target (conf.routing.classifier) for a label of a request's
 * last user message, for a routing rule that matches on labels: simple, moderate or complex.
 * Labels are cached by tenant and a hash of the text (routing/labelcache.h). The classifier's
 * call is a request of its own on the agent's budgets: reserved before it is sent, settled to
 * its usage, recorded in the ledger as the classifier's (endpoint "classifier", the
 * classifier's model, the request's id with "/classify"), and shown in the request's log
 * record ("classifier"). A classifier that does not answer within
 * conf.routing.classifier_timeout_ms, fails, or cannot be afforded gives no label: the rule
 * does not match and routing falls through to the next one.
 */
#ifndef TG_CLASSIFY_H
#define TG_CLASSIFY_H

#include <stddef.h>

struct gate_req;
struct cJSON;

/*
 * Finds or asks the label of text (len bytes) for req, which is in its route stage. Returns:
 *   1  known at once (cached, or it cannot be asked: no room in the budget, out of memory):
 *      req->rt.label is set ("" for no label), go on;
 *   0  asked: req is REQ_WAITING; once the classifier answers, fails or times out,
 *      req->rt.label is set and the route stage runs again (pipeline_post_at).
 */
int classify_label(struct gate_req *req, const char *text, size_t len);

/* Adds the "classifier" object to the request's log record, when one was asked. */
void classify_log(const struct gate_req *req, struct cJSON *rec);

#endif
