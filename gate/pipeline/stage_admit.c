/*
 * stage_admit: output caps and the reservation on the caller's budgets. See stages.h.
 */
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"
#include "gate/util/jsonmem.h"

enum stage_rc stage_admit(struct gate_req *req)
{
    struct arena *prev = jsonmem_enter(req->arena);
    int rc = spend_reserve(req, req->cm, req->edits);

    jsonmem_leave(prev);
    if (rc < 0)
        return STAGE_ANSWERED;
    req->nedits = rc;
    return STAGE_NEXT;
}
