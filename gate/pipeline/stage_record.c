/*
 * stage_record: the end of the answer, and the request's record. See stages.h.
 */
#include "gate/pipeline/filter.h"
#include "gate/pipeline/stages.h"

enum stage_rc stage_record(struct gate_req *req)
{
    if (req->conn != NULL) /* else the client left while the ledger committed */
        filter_writer_tail(req);
    req_finish(req);
    return STAGE_ANSWERED;
}
