#include "gate/api/apierr.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "tokenizer/utf8.h"

static const struct {
    int status;
    const char *openai_type;
    const char *openai_code;
    const char *anthropic_type;
} kinds[APIERR__COUNT] = {
    [APIERR_BAD_REQUEST] = {400, "invalid_request_error", "invalid_request", "invalid_request_error"},
    [APIERR_BAD_HTTP] = {400, "invalid_request_error", "bad_http", "invalid_request_error"},
    [APIERR_UNAUTHORIZED] = {401, "authentication_error", "invalid_api_key", "authentication_error"},
    [APIERR_NOT_FOUND] = {404, "invalid_request_error", "unknown_url", "not_found_error"},
    [APIERR_MODEL_NOT_FOUND] = {404, "invalid_request_error", "model_not_found", "not_found_error"},
    [APIERR_METHOD] = {405, "invalid_request_error", "method_not_allowed", "invalid_request_error"},
    [APIERR_HEADER_TIMEOUT] = {408, "invalid_request_error", "request_timeout", "timeout_error"},
    [APIERR_TOO_LARGE] = {413, "invalid_request_error", "request_too_large", "request_too_large"},
    [APIERR_HEADERS_TOO_LARGE] = {431, "invalid_request_error", "headers_too_large",
                                  "invalid_request_error"},
    [APIERR_INTERNAL] = {500, "server_error", "internal_error", "api_error"},
    [APIERR_BAD_GATEWAY] = {502, "upstream_error", "bad_gateway", "api_error"},
    [APIERR_GATEWAY_TIMEOUT] = {504, "upstream_error", "gateway_timeout", "timeout_error"},
    [APIERR_UNAVAILABLE] = {503, "server_error", "unavailable", "overloaded_error"},
    [APIERR_OUTPUT_LIMIT] = {502, "upstream_error", "output_limit_exceeded", "api_error"},
};

int apierr_status(enum apierr kind)
{
    return kinds[kind].status;
}

cJSON *apierr_openai_doc(const char *type, const char *code, const char *message, cJSON **err)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *e = cJSON_CreateObject();

    if (doc == NULL || e == NULL || !cJSON_AddItemToObject(doc, "error", e)) {
        cJSON_Delete(doc);
        cJSON_Delete(e);
        return NULL;
    }
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "param");
    cJSON_AddStringToObject(e, "code", code);
    if (err != NULL)
        *err = e;
    return doc;
}

cJSON *apierr_anthropic_doc(const char *type, const char *code, const char *message, cJSON **err)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *e = cJSON_CreateObject();

    (void)code; /* Anthropic's errors have a type only */
    if (doc == NULL || e == NULL) {
        cJSON_Delete(doc);
        cJSON_Delete(e);
        return NULL;
    }
    cJSON_AddStringToObject(doc, "type", "error");
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "message", message);
    if (!cJSON_AddItemToObject(doc, "error", e)) {
        cJSON_Delete(doc);
        cJSON_Delete(e);
        return NULL;
    }
    if (err != NULL)
        *err = e;
    return doc;
}

/* The error shape of one API family. */
struct family {
    int anthropic;
    cJSON *(*doc)(const char *type, const char *code, const char *message, cJSON **err);
    const char *event; /* what precedes an error event's data */
};

static const struct family openai = {0, apierr_openai_doc, "data: "};
static const struct family anthropic = {1, apierr_anthropic_doc, "event: error\ndata: "};

static const char *type_of(const struct family *f, enum apierr kind)
{
    return f->anthropic ? kinds[kind].anthropic_type : kinds[kind].openai_type;
}

static size_t family_body(const struct family *f, enum apierr kind, const char *message, char *buf,
                          size_t cap)
{
    char clean[1024];
    cJSON *j;
    size_t n = 0;

    if (cap == 0)
        return 0;
    /* client text (a model name, a path) may be cut mid-character or be no UTF-8 at all */
    j = f->doc(type_of(f, kind), kinds[kind].openai_code, utf8_clean(message, clean, sizeof(clean)),
               NULL);
    if (j != NULL && cap > 5 && cJSON_PrintPreallocated(j, buf, (int)cap - 5, 0))
        n = strlen(buf);
    cJSON_Delete(j);
    if (n > 0 && n < cap)
        return n;
    /* the message did not fit: the same shape, without it */
    if (f->anthropic)
        n = (size_t)snprintf(buf, cap,
                             "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}",
                             kinds[kind].anthropic_type, http_reason(kinds[kind].status));
    else
        n = (size_t)snprintf(buf, cap,
                             "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                             "\"code\":\"%s\"}}",
                             http_reason(kinds[kind].status), kinds[kind].openai_type,
                             kinds[kind].openai_code);
    if (n >= cap) {
        buf[0] = '\0';
        return 0;
    }
    return n;
}

static size_t family_event(const struct family *f, enum apierr kind, const char *message, char *buf,
                           size_t cap)
{
    char body[1536];
    int n;

    if (cap == 0)
        return 0;
    family_body(f, kind, message, body, sizeof(body));
    n = snprintf(buf, cap, "%s%s\n\n", f->event, body);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t apierr_openai_body(enum apierr kind, const char *message, char *buf, size_t cap)
{
    return family_body(&openai, kind, message, buf, cap);
}

size_t apierr_anthropic_body(enum apierr kind, const char *message, char *buf, size_t cap)
{
    return family_body(&anthropic, kind, message, buf, cap);
}

size_t apierr_openai_event(enum apierr kind, const char *message, char *buf, size_t cap)
{
    return family_event(&openai, kind, message, buf, cap);
}

size_t apierr_anthropic_event(enum apierr kind, const char *message, char *buf, size_t cap)
{
    return family_event(&anthropic, kind, message, buf, cap);
}

size_t apierr_body(enum conf_format fmt, enum apierr kind, const char *message, char *buf,
                   size_t cap)
{
    return family_body(fmt == CONF_FMT_ANTHROPIC ? &anthropic : &openai, kind, message, buf, cap);
}

size_t apierr_stream_event(enum conf_format fmt, enum apierr kind, const char *message, char *buf,
                           size_t cap)
{
    return family_event(fmt == CONF_FMT_ANTHROPIC ? &anthropic : &openai, kind, message, buf, cap);
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}
