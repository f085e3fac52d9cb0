/*
 * xlate: to be written (issue 12). See xlate.h.
 */
#include "routing/xlate.h"

#include <stdio.h>

const char *xlate_name(enum xlate_dir d)
{
    return d == XLATE_OPENAI_TO_ANTHROPIC   ? "openai.chat->anthropic.messages"
           : d == XLATE_ANTHROPIC_TO_OPENAI ? "anthropic.messages->openai.chat"
                                            : NULL;
}

cJSON *xlate_request(enum xlate_dir d, const cJSON *body, const char *upstream_model,
                     int64_t max_tokens, int stream, char *err, size_t errlen)
{
    (void)d, (void)body, (void)upstream_model, (void)max_tokens, (void)stream;
    snprintf(err, errlen, "translation between API formats is not built yet");
    return NULL;
}

cJSON *xlate_response(const struct xlate_ctx *ctx, const cJSON *doc)
{
    (void)ctx, (void)doc;
    return NULL;
}

cJSON *xlate_error(const struct xlate_ctx *ctx, int status, const cJSON *doc, int *client_status)
{
    (void)ctx, (void)doc;
    *client_status = status;
    return cJSON_CreateObject();
}

struct xlate_stream *xlate_stream_new(const struct xlate_ctx *ctx)
{
    (void)ctx;
    return NULL;
}

void xlate_stream_free(struct xlate_stream *s)
{
    (void)s;
}

int xlate_stream_event(struct xlate_stream *s, const char *name, const cJSON *data,
                       const char *raw, size_t raw_len, xlate_emit_fn *emit, void *arg)
{
    (void)s, (void)name, (void)data, (void)raw, (void)raw_len, (void)emit, (void)arg;
    return -1;
}

int xlate_stream_end(struct xlate_stream *s, xlate_emit_fn *emit, void *arg)
{
    (void)s, (void)emit, (void)arg;
    return 0;
}
