/*
 * stage_route: the model table. See stages.h.
 *
 * Today a model names one provider, which must speak the endpoint's format. Routing (several
 * providers for a model, translation between formats) replaces this stage and adds a
 * translation filter to the response chain.
 */
#include <stdio.h>
#include <string.h>

#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"

enum stage_rc stage_route(struct gate_req *req)
{
    const struct endpoint_info *info = endpoint_info(req->ep);
    char msg[512];

    const struct conf_model *m = conf_find_model(req->conf, req->model);
    if (m == NULL) {
        snprintf(msg, sizeof(msg), "model '%.200s' is not configured on this gate", req->model);
        return stage_fail(req, APIERR_MODEL_NOT_FOUND, arena_strndup(req->arena, msg, strlen(msg)));
    }
    req->cm = m;
    req->prov = m->provider;
    if (req->prov->format != req->upstream_api->format) {
        snprintf(msg, sizeof(msg),
                 "model '%.200s' is served in the %s format, but %s speaks the %s format",
                 req->model, req->prov->format == CONF_FMT_ANTHROPIC ? "Anthropic" : "OpenAI",
                 info->path,
                 req->client_api->format == CONF_FMT_ANTHROPIC ? "Anthropic" : "OpenAI");
        return stage_fail(req, APIERR_BAD_REQUEST, arena_strndup(req->arena, msg, strlen(msg)));
    }
    req->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req->json, "stream"));
    return STAGE_NEXT;
}
