/*
 * pipeline: a request's life as a table of stages, and the driver that runs it.
 *
 * The gate's table is in pipeline.c, in the order a request meets it; each stage lives in the
 * module named after it (stage_parse.c, stage_auth.c ... stage_record.c). A stage returns:
 *   STAGE_NEXT      go on with the next stage;
 *   STAGE_ANSWERED  the request has its answer (the stage wrote it, and the request is
 *                   finishing or finished): the driver stops;
 *   STAGE_WAIT      the stage handed the request to what will resume it: a response source
 *                   (the phase stays REQ_DISPATCHED) or a completion (the stage set
 *                   REQ_WAITING; the completion calls pipeline_post from any thread, or
 *                   pipeline_resume on the worker): the driver stops;
 *   STAGE_FAIL      the stage set req->fail_kind and req->fail_msg: the driver ends the
 *                   request in the table's one finalize path (fail), which answers that error.
 * A request never runs two stages at once, and a stage never frees it (req_finish defers that).
 */
#ifndef TG_PIPELINE_H
#define TG_PIPELINE_H

#include "gate/api/apierr.h"
#include "gate/pipeline/req.h"

enum stage_rc {
    STAGE_NEXT,
    STAGE_ANSWERED,
    STAGE_WAIT,
    STAGE_FAIL,
};

struct pipeline_stage {
    const char *name;     /* for the reader, the log and the tests */
    enum req_phase phase; /* the request's phase while it runs */
    enum stage_rc (*run)(struct gate_req *req);
};

struct pipeline {
    const struct pipeline_stage *stages;
    int n;
    /* the one finalize path for STAGE_FAIL, and for a request whose client left while it
     * waited: answers kind and message (NULL: out of memory) and finishes the request */
    void (*fail)(struct gate_req *req, enum apierr kind, const char *message);
};

/* The gate's table (pipeline.c). */
extern const struct pipeline pipeline_gate;

/* Records why a stage fails, for the driver's finalize path. Returns STAGE_FAIL. */
enum stage_rc stage_fail(struct gate_req *req, enum apierr kind, const char *message);

/* Runs req through p from its first stage, until a stage does not answer STAGE_NEXT. */
void pipeline_start(const struct pipeline *p, struct gate_req *req);

/*
 * Goes on with a request whose stage answered STAGE_WAIT, as if that stage had returned rc
 * (NEXT: the stage after it; FAIL: the finalize path; ANSWERED: nothing). A request whose
 * client left meanwhile is finalized instead of going on to a stage that needs its client
 * (any up to REQ_DISPATCHED). On the request's worker only.
 */
void pipeline_resume(struct gate_req *req, enum stage_rc rc);

/*
 * pipeline_resume(req, rc) on the request's worker, through its completion queue: safe from
 * any thread (a ledger or store thread). Never fails.
 */
void pipeline_post(struct gate_req *req, enum stage_rc rc);

/*
 * Runs the table again from stage index `stage` (pipeline_stage_index), on the request's
 * worker through its completion queue, as pipeline_resume does with NEXT from the stage
 * before it: a classifier's answer runs the route stage again, a fallback to the next target
 * runs count, admit, prepare and dispatch again. Never fails.
 */
void pipeline_post_at(struct gate_req *req, int stage);

/* The index of the stage named name in p's table, or -1. */
int pipeline_stage_index(const struct pipeline *p, const char *name);

#endif
