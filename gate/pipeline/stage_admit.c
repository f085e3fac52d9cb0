/*
 * stage_admit: output caps and the reservation on the caller's budgets. See stages.h.
 */
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"
#include "gate/util/jsonmem.h"

enum stage_rc stage_admit(struct gate_req *req)
{
    struct arena *prev = jsonmem_enter(req->arena);
    int rc = spend_reserve(req, req->cm);

    jsonmem_leave(prev);
    return rc < 0 ? STAGE_ANSWERED : rc > 0 ? STAGE_WAIT : STAGE_NEXT;
}
