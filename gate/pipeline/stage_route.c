/*
 * stage_route: where the request goes (routing/route.h). See stages.h.
 *
 * The rules of the config choose a tier or a target for the model asked for; the candidates
 * they give are taken one after the other (fallback.c), the first here. A rule that asks the
 * classifier parks the request (classify.c) and this stage runs again with the label.
 */
#include <stdio.h>
#include <string.h>

#include "gate/pipeline/classify.h"
#include "gate/pipeline/fallback.h"
#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"
#include "gate/util/jsonmem.h"

static enum stage_rc route(struct gate_req *req)
{
    struct route_input in;
    char msg[400];

    for (;;) {
        route_input_of(req, &in);
        enum route_rc rc = route_decide(&in, &req->rt.d, NULL);
        const char *why = req->rt.d.why;
        switch (rc) {
        case ROUTE_OK:
            req->rt.routed = 1;
            route_use_next(req);
            return STAGE_NEXT;
        case ROUTE_NEED_LABEL: {
            struct route_features f;
            route_features_read(req->json, in.format, &f);
            int k = classify_label(req, f.last_user ? f.last_user : "", f.last_user_len);
            route_features_free(&f);
            if (k == 0)
                return STAGE_WAIT; /* classify.c runs this stage again */
            if (req->rt.label == NULL)
                req->rt.label = "";
            continue; /* known now: decide again */
        }
        case ROUTE_NOT_FOUND:
            if (why[0] == '\0')
                snprintf(msg, sizeof(msg), "model '%.200s' is not configured on this gate",
                         req->model);
            return stage_fail(
                req, APIERR_MODEL_NOT_FOUND,
                arena_strndup(req->arena, why[0] ? why : msg, strlen(why[0] ? why : msg)));
        case ROUTE_UNAVAILABLE:
            return stage_fail(req, APIERR_UNAVAILABLE, arena_strndup(req->arena, why, strlen(why)));
        case ROUTE_NO_FIT:
        case ROUTE_BAD:
        default:
            return stage_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, why, strlen(why)));
        }
    }
}

enum stage_rc stage_route(struct gate_req *req)
{
    req->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req->json, "stream"));
    struct arena *prev = jsonmem_enter(req->arena);
    enum stage_rc rc = route(req);
    jsonmem_leave(prev);
    return rc;
}
