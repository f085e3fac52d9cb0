/*
 * pipeline: the stage table and its driver. See pipeline.h.
 */
#include "gate/pipeline/pipeline.h"

#include <stddef.h>
#include <string.h>

#include "gate/core/worker.h"
#include "gate/pipeline/completion.h"
#include "gate/pipeline/stages.h"

/*
 * A request's life, in order. Each stage's module is gate/pipeline/stage_NAME.c.
 * Relaying is not a stage of its own: dispatch starts the response source, whose answer
 * passes through the response filters to the client (proxy.c) while the request waits in
 * dispatch; the source's end resumes the table at settle.
 */
static const struct pipeline_stage gate_stages[] = {
    {"parse", REQ_ADMITTING, stage_parse},       /* endpoint and method: 404, 405 */
    {"authenticate", REQ_ADMITTING, stage_auth}, /* the caller's key: 401 */
    {"local", REQ_ADMITTING, stage_local},       /* /healthz, /status, /v1/models: answered here */
    {"body", REQ_ADMITTING, stage_body},         /* the JSON body and its model string: 400 */
    {"route", REQ_ADMITTING, stage_route},       /* the model table: model -> provider */
    {"count", REQ_ADMITTING, stage_count},       /* the gate's count of the input tokens */
    {"cache", REQ_ADMITTING, stage_cache},       /* the response cache: a hit goes to dispatch */
    {"admit", REQ_ADMITTING, stage_admit},       /* output caps, budgets: reserve, or 400/429/503 */
    {"prepare", REQ_ADMITTING, stage_prepare},   /* the body rewritten, the upstream request */
    {"dispatch", REQ_DISPATCHED, stage_dispatch}, /* the crash journal, then the source starts */
    {"settle", REQ_SETTLING, stage_settle},       /* charge; the ledger record (WAIT: commit) */
    {"record", REQ_SETTLING, stage_record},       /* the held-back end is written; the log */
};

const struct pipeline pipeline_gate = {
    .stages = gate_stages,
    .n = (int)(sizeof(gate_stages) / sizeof(gate_stages[0])),
    .fail = req_fail,
};

enum stage_rc stage_fail(struct gate_req *req, enum apierr kind, const char *message)
{
    req->fail_kind = kind;
    req->fail_msg = message;
    return STAGE_FAIL;
}

/* Runs the stages from index i on. */
static void drive(const struct pipeline *p, struct gate_req *req, int i)
{
    for (; i < p->n; i++) {
        const struct pipeline_stage *s = &p->stages[i];
        req->stage = i;
        req->phase = s->phase;
        switch (s->run(req)) {
        case STAGE_NEXT:
            continue;
        case STAGE_FAIL:
            p->fail(req, req->fail_kind, req->fail_msg);
            return;
        case STAGE_ANSWERED:
        case STAGE_WAIT:
            return;
        }
    }
}

void pipeline_start(const struct pipeline *p, struct gate_req *req)
{
    req->pl = p;
    drive(p, req, 0);
}

void pipeline_resume(struct gate_req *req, enum stage_rc rc)
{
    const struct pipeline *p = req->pl;
    int next = req->stage + 1;

    if (rc == STAGE_FAIL) {
        if (req->phase == REQ_WAITING)
            req->phase = p->stages[req->stage].phase;
        p->fail(req, req->fail_kind, req->fail_msg);
        return;
    }
    if (rc != STAGE_NEXT)
        return;
    if (req->conn == NULL && next < p->n && p->stages[next].phase <= REQ_DISPATCHED) {
        /* the client left while it waited: nothing more is done for nobody */
        req->phase = p->stages[req->stage].phase;
        p->fail(req, APIERR_INTERNAL, "the client closed the connection");
        return;
    }
    drive(p, req, next);
}

static void resume_run(struct completion *c)
{
    struct gate_req *req = (struct gate_req *)((char *)c - offsetof(struct gate_req, cq));

    pipeline_resume(req, req->resume_rc);
}

void pipeline_post(struct gate_req *req, enum stage_rc rc)
{
    req->resume_rc = rc;
    completion_post(req->w->cq, &req->cq, resume_run);
}

void pipeline_post_at(struct gate_req *req, int stage)
{
    req->stage = stage - 1; /* resumed as NEXT from the stage before it */
    pipeline_post(req, STAGE_NEXT);
}

int pipeline_stage_index(const struct pipeline *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->stages[i].name, name) == 0)
            return i;
    return -1;
}
