/*
 * filter_count: the gate's own count of the output (tcount.h), and the cut of a runaway
 * stream. See filter.h.
 */
#include <stdio.h>
#include <string.h>

#include "gate/pipeline/filter.h"
#include "gate/pipeline/req.h"
#include "gate/util/arena.h"

/*
 * The provider streams past the output it was told to stop at (and past the margin for
 * counts that differ): a runaway or misbehaving upstream. The event that crossed is not
 * relayed; the stream ends with an error event, the upstream connection is closed (which
 * stops generation) and the request settles at the gate's count. Returns -1 to stop.
 */
static int runaway(struct gate_req *req)
{
    char msg[240];

    snprintf(msg, sizeof(msg),
             "the provider streamed more output than this request was allowed (the gate cuts a "
             "stream at %lld tokens); the stream was ended and the output relayed so far was "
             "charged",
             (long long)req->out_limit);
    if (req->stop_why == NULL) {
        req->stop_kind = APIERR_OUTPUT_LIMIT;
        req->stop_why = arena_strndup(req->arena, msg, strlen(msg));
    }
    return -1;
}

static int count_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    if (ev->data != NULL)
        tcount_event(req, ev->name, ev->data);
    if (ev->json && req->out_limit >= 0 && tcount_output_above(req, (uint64_t)req->out_limit))
        return runaway(req);
    return filter_event(f, req, ev);
}

static int count_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    if (b->read) {
        if (b->doc != NULL)
            tcount_body(req, b->doc);
        else
            tcount_text(req, b->data, b->len); /* unreadable: counted as raw text */
    }
    return filter_body(f, req, b);
}

const struct resp_filter_type filter_count = {
    .name = "count",
    .event = count_event,
    .body = count_body,
};
