/*
 * stage_settle: the charge and the ledger record. See stages.h.
 *
 * A response that completes is held back until the ledger has committed its record (the end
 * of a non-stream answer, or the last chunk of a stream): a client that saw its answer end has
 * its spend on disk. The request WAITs meanwhile; the ledger's commit resumes it through its
 * worker's completion queue. A request whose client is gone does not wait.
 */
#include "gate/pipeline/spend.h"
#include "gate/pipeline/stages.h"

enum stage_rc stage_settle(struct gate_req *req)
{
    if (req->conn == NULL && req->status == 0)
        req->status = 499; /* the client left before any answer (as req_finish records it) */
    return spend_settle(req, req->conn != NULL) == 1 ? STAGE_WAIT : STAGE_NEXT;
}
