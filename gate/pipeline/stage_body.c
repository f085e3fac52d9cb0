/*
 * stage_body: the request body as JSON, and its model string. See stages.h.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/jsonedit.h"
#include "gate/util/jsonfast.h"
#include "gate/util/jsonmem.h"

static int only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return 0;
    return 1;
}

/* C0 controls (NUL aside: jsonedit_has_nul) and DEL, which no model name holds */
#define CONTROL_CHARS                                                                              \
    "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"                             \
    "\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"

static enum stage_rc body(struct gate_req *req)
{
    size_t len = evbuffer_get_length(req->msg.body);
    const char *raw = (const char *)evbuffer_pullup(req->msg.body, -1);
    char msg[512];
    const char *end = NULL;

    if (len == 0)
        return stage_fail(req, APIERR_BAD_REQUEST,
                          "request body is empty; a JSON object is expected");
    if (raw == NULL)
        return stage_fail(req, APIERR_INTERNAL, "out of memory"); /* made contiguous: no room */
    req->json = jsonfast_parse(raw, len, &end);
    if (req->json == NULL && arena_failure(req->arena) != ARENA_OK) {
        req_fail_memory(req); /* valid or not, it needs more memory than it may have */
        return STAGE_ANSWERED;
    }
    if (req->json == NULL || !only_space(end, raw + len)) {
        const char *at = req->json ? end : cJSON_GetErrorPtr();
        size_t off = at && at >= raw && at <= raw + len ? (size_t)(at - raw) : 0;
        snprintf(msg, sizeof(msg), "request body is not valid JSON (at byte %zu)", off);
        return stage_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
    }
    if (!cJSON_IsObject(req->json))
        return stage_fail(req, APIERR_BAD_REQUEST, "request body must be a JSON object");
    if (jsonedit_has_nul(raw, len))
        return stage_fail(req, APIERR_BAD_REQUEST, "request body has a string with a NUL (U+0000)");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req->json, "model");
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0')
        return stage_fail(req, APIERR_BAD_REQUEST, "request body has no 'model' string");
    if (model->valuestring[strcspn(model->valuestring, CONTROL_CHARS)] != '\0')
        return stage_fail(req, APIERR_BAD_REQUEST, "'model' has a control character");
    req->model = model->valuestring;
    const char *dup;
    int has_dup = jsonedit_duplicate_key(req->json, &dup);
    if (has_dup < 0) {
        req_fail_memory(req);
        return STAGE_ANSWERED;
    }
    if (has_dup > 0) {
        snprintf(msg, sizeof(msg), "request body has the key '%.100s' twice in one object", dup);
        return stage_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
    }
    return STAGE_NEXT;
}

enum stage_rc stage_body(struct gate_req *req)
{
    req_memory_bound(req); /* until the end of stage_prepare */
    struct arena *prev = jsonmem_enter(req->arena);
    enum stage_rc rc = body(req);
    jsonmem_leave(prev);
    return rc;
}
