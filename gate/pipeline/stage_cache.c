/*
 * stage_cache: where a cache lookup goes. See stages.h.
 *
 * A hit will answer from a replay source (a response source like the upstream exchange,
 * feeding the same filters) and return STAGE_WAIT; a miss may add a cache-fill filter. There
 * is no cache yet: every request misses.
 */
#include "gate/pipeline/stages.h"

enum stage_rc stage_cache(struct gate_req *req)
{
    (void)req;
    return STAGE_NEXT;
}
