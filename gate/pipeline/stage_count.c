/*
 * stage_count: the gate's own count of the input tokens. See stages.h.
 */
#include <event2/buffer.h>
#include <string.h>

#include "gate/pipeline/fallback.h"
#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/jsonmem.h"

enum stage_rc stage_count(struct gate_req *req)
{
    struct arena *prev = jsonmem_enter(req->arena);
    char msg[400] = "";
    int rc = 0;

    /* a target of the other API is sent the request translated: that is what it bills, so
     * that is what is counted (with its tokenizer) and reserved for */
    if (req->rt.xlate != XLATE_NONE)
        rc = route_translate(req, msg, sizeof(msg));
    if (rc == 0)
        tcount_input(req, req->cm);
    jsonmem_leave(prev);
    if (rc < 0) {
        req_fail_memory(req);
        return STAGE_ANSWERED;
    }
    if (rc > 0)
        return stage_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
    return STAGE_NEXT;
}
