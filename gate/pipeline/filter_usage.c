/*
 * filter_usage: reads the provider's usage from the answer (usage.h), and drops the usage
 * chunk the gate asked for on the client's behalf (stream_options.include_usage). See filter.h.
 */
#include "gate/pipeline/filter.h"
#include "gate/pipeline/req.h"

static int usage_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    if (ev->data != NULL && req->upstream_api->usage_event(ev->name, ev->data, &req->usage) &&
        req->usage_injected)
        ev->drop = 1;
    return filter_event(f, req, ev);
}

static int usage_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    if (b->read && b->doc != NULL)
        req->upstream_api->usage_body(b->doc, &req->usage);
    return filter_body(f, req, b);
}

const struct resp_filter_type filter_usage = {
    .name = "usage",
    .event = usage_event,
    .body = usage_body,
};
