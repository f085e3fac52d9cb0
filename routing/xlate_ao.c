/*
 * xlate_ao: to be written (issue 12, helper xao). See xlate.h and xlate-int.h.
 * Link stubs so that xlate.c's dispatch builds until xao's file replaces this one entirely.
 */
#include "routing/xlate.h"

#include "routing/xlate-int.h"

cJSON *xlate_ao_request(const cJSON *body, const char *upstream_model, int64_t max_tokens,
                        int stream, char *err, size_t errlen)
{
    (void)body, (void)upstream_model, (void)max_tokens, (void)stream;
    xlate_seterr(err, errlen, "translation to OpenAI chat is not available");
    return NULL;
}

const char *xlate_ao_check(const cJSON *body, char *buf, size_t cap)
{
    (void)body, (void)buf, (void)cap;
    return NULL;
}

cJSON *xlate_ao_response(const struct xlate_ctx *ctx, const cJSON *doc)
{
    (void)ctx, (void)doc;
    return NULL;
}

cJSON *xlate_ao_error(const struct xlate_ctx *ctx, int status, const cJSON *doc,
                      int *client_status)
{
    (void)ctx, (void)status, (void)doc, (void)client_status;
    return NULL;
}

struct xlate_stream *xlate_ao_stream_new(const struct xlate_ctx *ctx)
{
    (void)ctx;
    return NULL;
}

int xlate_ao_stream_event(struct xlate_stream *s, const char *name, const cJSON *data,
                          const char *raw, size_t raw_len, xlate_emit_fn *emit, void *arg)
{
    (void)s, (void)name, (void)data, (void)raw, (void)raw_len, (void)emit, (void)arg;
    return -1;
}

int xlate_ao_stream_end(struct xlate_stream *s, xlate_emit_fn *emit, void *arg)
{
    (void)s, (void)emit, (void)arg;
    return -1;
}

void xlate_ao_stream_free(struct xlate_stream *s)
{
    (void)s;
}
