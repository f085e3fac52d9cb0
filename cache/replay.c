/*
 * replay: STUB until the replay branch lands. See replay.h.
 */
#include "cache/replay.h"

struct replay_asm *replay_asm_new(enum conf_format api)
{
    (void)api;
    return NULL;
}

int replay_asm_event(struct replay_asm *a, const char *name, const cJSON *data)
{
    (void)a, (void)name, (void)data;
    return -1;
}

cJSON *replay_asm_finish(struct replay_asm *a)
{
    (void)a;
    return NULL;
}

void replay_asm_free(struct replay_asm *a)
{
    (void)a;
}

int replay_stream(enum conf_format api, const cJSON *whole, int include_usage, size_t piece,
                  replay_emit_fn *emit, void *arg)
{
    (void)api, (void)whole, (void)include_usage, (void)piece, (void)emit, (void)arg;
    return -1;
}
