/*
 * xlate: the public functions of xlate.h, dispatching on the direction to xlate_oa.c and
 * xlate_ao.c, and the helpers both share (xlate-int.h).
 */
#include "routing/xlate.h"

#include <stdio.h>
#include <string.h>

#include "routing/xlate-int.h"

const char *xlate_name(enum xlate_dir d)
{
    switch (d) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return "openai.chat->anthropic.messages";
    case XLATE_ANTHROPIC_TO_OPENAI:
        return "anthropic.messages->openai.chat";
    default:
        return NULL;
    }
}

cJSON *xlate_request(enum xlate_dir d, const cJSON *body, const char *upstream_model,
                     int64_t max_tokens, int stream, char *err, size_t errlen)
{
    if (!cJSON_IsObject(body)) {
        xlate_seterr(err, errlen, "the request body is not a JSON object");
        return NULL;
    }
    switch (d) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return xlate_oa_request(body, upstream_model, max_tokens, stream, err, errlen);
    case XLATE_ANTHROPIC_TO_OPENAI:
        return xlate_ao_request(body, upstream_model, max_tokens, stream, err, errlen);
    default:
        xlate_seterr(err, errlen, "no translation");
        return NULL;
    }
}

const char *xlate_check(enum xlate_dir d, const cJSON *body, char *buf, size_t cap)
{
    if (!cJSON_IsObject(body))
        return NULL; /* not a request at all: the API's own checks refuse it */
    switch (d) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return xlate_oa_check(body, buf, cap);
    case XLATE_ANTHROPIC_TO_OPENAI:
        return xlate_ao_check(body, buf, cap);
    default:
        return NULL;
    }
}

cJSON *xlate_response(const struct xlate_ctx *ctx, const cJSON *doc)
{
    if (ctx == NULL || !cJSON_IsObject(doc))
        return NULL;
    switch (ctx->dir) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return xlate_oa_response(ctx, doc);
    case XLATE_ANTHROPIC_TO_OPENAI:
        return xlate_ao_response(ctx, doc);
    default:
        return NULL;
    }
}

cJSON *xlate_error(const struct xlate_ctx *ctx, int status, const cJSON *doc, int *client_status)
{
    int dummy;

    if (client_status == NULL)
        client_status = &dummy;
    *client_status = status;
    if (ctx == NULL)
        return NULL;
    switch (ctx->dir) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return xlate_oa_error(ctx, status, doc, client_status);
    case XLATE_ANTHROPIC_TO_OPENAI:
        return xlate_ao_error(ctx, status, doc, client_status);
    default:
        return NULL;
    }
}

struct xlate_stream *xlate_stream_new(const struct xlate_ctx *ctx)
{
    if (ctx == NULL)
        return NULL;
    switch (ctx->dir) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return xlate_oa_stream_new(ctx);
    case XLATE_ANTHROPIC_TO_OPENAI:
        return xlate_ao_stream_new(ctx);
    default:
        return NULL;
    }
}

void xlate_stream_free(struct xlate_stream *s)
{
    if (s == NULL)
        return;
    switch (s->dir) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        xlate_oa_stream_free(s);
        break;
    case XLATE_ANTHROPIC_TO_OPENAI:
        xlate_ao_stream_free(s);
        break;
    default:
        break;
    }
}

int xlate_stream_event(struct xlate_stream *s, const char *name, const cJSON *data, const char *raw,
                       size_t raw_len, xlate_emit_fn *emit, void *arg)
{
    if (s == NULL || emit == NULL)
        return -1;
    if (name == NULL)
        name = "";
    if (raw == NULL) {
        raw = "";
        raw_len = 0;
    }
    switch (s->dir) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return xlate_oa_stream_event(s, name, data, raw, raw_len, emit, arg);
    case XLATE_ANTHROPIC_TO_OPENAI:
        return xlate_ao_stream_event(s, name, data, raw, raw_len, emit, arg);
    default:
        return -1;
    }
}

int xlate_stream_end(struct xlate_stream *s, xlate_emit_fn *emit, void *arg)
{
    if (s == NULL || emit == NULL)
        return -1;
    switch (s->dir) {
    case XLATE_OPENAI_TO_ANTHROPIC:
        return xlate_oa_stream_end(s, emit, arg);
    case XLATE_ANTHROPIC_TO_OPENAI:
        return xlate_ao_stream_end(s, emit, arg);
    default:
        return -1;
    }
}

/* --- shared helpers --- */

/* An event's text is printed into a stack buffer when it fits (most events are a few hundred
 * bytes), else into cJSON's allocation. */
#define XLATE_EVENT_STACK 4096

static int emit_text(xlate_emit_fn *emit, void *arg, const char *name, const char *json)
{
    char head[160];
    char stackbuf[XLATE_EVENT_STACK + 256];
    size_t hl, jl = strlen(json), len;
    char *buf = stackbuf;
    int n, rc;

    if (name != NULL)
        n = snprintf(head, sizeof(head), "event: %s\ndata: ", name);
    else
        n = snprintf(head, sizeof(head), "data: ");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    hl = (size_t)n;
    len = hl + jl + 2;
    if (len + 1 > sizeof(stackbuf)) {
        buf = cJSON_malloc(len + 1);
        if (buf == NULL)
            return -1;
    }
    memcpy(buf, head, hl);
    memcpy(buf + hl, json, jl);
    memcpy(buf + hl + jl, "\n\n", 3);
    rc = emit(arg, name != NULL ? name : "", buf, len);
    if (buf != stackbuf)
        cJSON_free(buf);
    return rc;
}

int xlate_emit_json(xlate_emit_fn *emit, void *arg, const char *name, const cJSON *data)
{
    char pre[XLATE_EVENT_STACK];
    char *p;
    int rc;

    if (data == NULL || emit == NULL)
        return -1;
    /* cJSON_PrintPreallocated wants 5 bytes of slack past what it may write */
    if (cJSON_PrintPreallocated((cJSON *)data, pre, (int)sizeof(pre) - 5, 0))
        return emit_text(emit, arg, name, pre);
    p = cJSON_PrintUnformatted(data);
    if (p == NULL)
        return -1;
    rc = emit_text(emit, arg, name, p);
    cJSON_free(p);
    return rc;
}

int xlate_emit_data(xlate_emit_fn *emit, void *arg, const char *text)
{
    return emit_text(emit, arg, NULL, text);
}

const char *xlate_finish_reason(const char *stop_reason)
{
    if (stop_reason == NULL)
        return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    if (strcmp(stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

const char *xlate_stop_reason(const char *finish_reason)
{
    if (finish_reason == NULL)
        return "end_turn";
    if (strcmp(finish_reason, "length") == 0)
        return "max_tokens";
    if (strcmp(finish_reason, "tool_calls") == 0 || strcmp(finish_reason, "function_call") == 0)
        return "tool_use";
    if (strcmp(finish_reason, "content_filter") == 0)
        return "refusal";
    return "end_turn";
}

const char *xlate_error_message(const cJSON *doc)
{
    const cJSON *e = XGET(doc, "error");
    const cJSON *m;

    if (cJSON_IsString(e))
        return e->valuestring;
    m = XGET(e, "message");
    if (cJSON_IsString(m))
        return m->valuestring;
    m = XGET(doc, "message");
    if (cJSON_IsString(m))
        return m->valuestring;
    return NULL;
}

const char *xlate_openai_error_type(int status)
{
    switch (status) {
    case 400:
    case 404:
    case 413:
    case 422:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "server_error";
    }
}

const char *xlate_anthropic_error_type(int status)
{
    switch (status) {
    case 400:
    case 422:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

cJSON *xlate_openai_error_doc(const char *message, const char *type, const char *code)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *e = cJSON_CreateObject();

    if (xlate_add(doc, "error", e) < 0 || xlate_add_str(e, "message", message) < 0 ||
        xlate_add_str(e, "type", type) < 0 || xlate_add(e, "param", cJSON_CreateNull()) < 0 ||
        xlate_add(e, "code", code != NULL ? cJSON_CreateString(code) : cJSON_CreateNull()) < 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

cJSON *xlate_anthropic_error_doc(const char *type, const char *message)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *e = NULL;

    if (xlate_add_str(doc, "type", "error") < 0 ||
        xlate_add(doc, "error", e = cJSON_CreateObject()) < 0 ||
        xlate_add_str(e, "type", type) < 0 || xlate_add_str(e, "message", message) < 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

void xlate_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err, errlen, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
}

int xlate_add(cJSON *obj, const char *key, cJSON *item)
{
    if (obj == NULL || item == NULL || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

int xlate_add_str(cJSON *obj, const char *key, const char *s)
{
    return xlate_add(obj, key, s != NULL ? cJSON_CreateString(s) : NULL);
}

int xlate_add_num(cJSON *obj, const char *key, double v)
{
    return xlate_add(obj, key, cJSON_CreateNumber(v));
}

int xlate_append(cJSON *arr, cJSON *item)
{
    if (arr == NULL || item == NULL || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

cJSON *xlate_dup(const cJSON *v)
{
    return v != NULL ? cJSON_Duplicate(v, 1) : NULL;
}

cJSON *xlate_text_block(const char *text)
{
    cJSON *b = cJSON_CreateObject();

    if (xlate_add_str(b, "type", "text") < 0 || xlate_add_str(b, "text", text) < 0) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}
