/*
 * stage_local: the endpoints the gate answers itself. See stages.h.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "gate/core/worker.h"
#include "gate/pipeline/stages.h"
#include "gate/pipeline/toolcache_ep.h"

static void respond_json(struct gate_req *req, int status, cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);

    cJSON_Delete(doc);
    if (s == NULL) {
        req_fail(req, APIERR_INTERNAL, "out of memory");
        return;
    }
    req_respond(req, status, "application/json", NULL, s, strlen(s));
    cJSON_free(s);
}

static void answer_models(struct gate_req *req)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *data;

    cJSON_AddStringToObject(doc, "object", "list");
    data = cJSON_AddArrayToObject(doc, "data");
    for (int i = 0; i < req->conf->nmodels; i++) {
        const struct conf_model *m = &req->conf->models[i];
        if (m->wildcard)
            continue;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "id", m->name);
        cJSON_AddStringToObject(item, "object", "model");
        cJSON_AddNumberToObject(item, "created", 0);
        cJSON_AddStringToObject(item, "owned_by", m->provider->name);
        cJSON_AddItemToArray(data, item);
    }
    respond_json(req, 200, doc);
}

enum stage_rc stage_local(struct gate_req *req)
{
    if (endpoint_info(req->ep)->proxied)
        return STAGE_NEXT;
    switch (req->ep) {
    case EP_HEALTHZ:
        req_respond(req, 200, "application/json", NULL, "{\"status\":\"ok\"}", 15);
        return STAGE_ANSWERED;
    case EP_STATUS: {
        char *s = req->w->srv->status_json(req->w->srv);
        if (s == NULL)
            return stage_fail(req, APIERR_INTERNAL, "out of memory");
        req_respond(req, 200, "application/json", NULL, s, strlen(s));
        cJSON_free(s);
        return STAGE_ANSWERED;
    }
    case EP_MODELS:
        answer_models(req);
        return STAGE_ANSWERED;
    case EP_TOOL_CACHE:
        return toolcache_ep_run(req);
    default:
        return stage_fail(req, APIERR_NOT_FOUND, "unknown endpoint");
    }
}
