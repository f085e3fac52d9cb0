/*
 * stage_auth: the caller's key. See stages.h.
 */
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"

enum stage_rc stage_auth(struct gate_req *req)
{
    /* every endpoint but /healthz needs a key when an org is configured: /status too */
    if (req->ep != EP_HEALTHZ && spend_authenticate(req) < 0)
        return STAGE_ANSWERED;
    return STAGE_NEXT;
}
