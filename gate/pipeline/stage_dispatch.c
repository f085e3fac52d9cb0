/*
 * stage_dispatch: the last step before forwarding, then the response source starts. See
 * stages.h.
 */
#include "gate/pipeline/filter.h"
#include "gate/pipeline/source.h"
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"

enum stage_rc stage_dispatch(struct gate_req *req)
{
    if (spend_forward(req) < 0)
        return STAGE_ANSWERED;
    if (filter_chain_build(req) < 0) {
        req_fail_memory(req);
        return STAGE_ANSWERED;
    }
    req->src = req->cache.state == REQ_CACHE_HIT ? &source_cache : &source_upstream;
    req->src->start(req); /* may fail at once: the request then ends in req_fail */
    return STAGE_WAIT;
}
