/*
 * stage_count: the gate's own count of the input tokens. See stages.h.
 */
#include <event2/buffer.h>

#include "gate/pipeline/stages.h"
#include "gate/util/jsonmem.h"

enum stage_rc stage_count(struct gate_req *req)
{
    size_t len = evbuffer_get_length(req->msg.body);
    const char *raw = (const char *)evbuffer_pullup(req->msg.body, -1); /* no copy: pulled up */
    struct arena *prev = jsonmem_enter(req->arena);

    tcount_input(req, req->cm, raw, len);
    jsonmem_leave(prev);
    return STAGE_NEXT;
}
