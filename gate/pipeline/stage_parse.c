/*
 * stage_parse: which endpoint, and whether it takes the method. See stages.h.
 */
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

#include "gate/pipeline/stages.h"
#include "gate/util/arena.h"

enum stage_rc stage_parse(struct gate_req *req)
{
    const struct endpoint_info *info;
    char msg[160];

    req_assign_id(req);
    req->ep = endpoint_lookup(req->msg.path, req->msg.path_len);
    info = endpoint_info(req->ep);
    req->client_api = req->upstream_api = api_dialect_for(req->ep);
    req_guess_format(req);
    if (req->ep == EP_NONE) {
        snprintf(msg, sizeof(msg), "unknown path %.100s", req->msg.path);
        return stage_fail(req, APIERR_NOT_FOUND, arena_strndup(req->arena, msg, strlen(msg)));
    }
    if (!endpoint_takes(info, llhttp_method_name((llhttp_method_t)req->msg.method))) {
        snprintf(msg, sizeof(msg), "%s takes %s only", info->path, info->method);
        req->error = arena_strndup(req->arena, msg, strlen(msg));
        char body[400], allow[48];
        size_t n = api_dialect_errors(req->client_api, req->fmt)
                       ->error_body(APIERR_METHOD, req->error, body, sizeof(body));
        snprintf(allow, sizeof(allow), "allow: %s\r\n", info->method);
        req_respond(req, 405, "application/json", allow, body, n);
        return STAGE_ANSWERED;
    }
    return STAGE_NEXT;
}
