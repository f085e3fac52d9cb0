/*
 * apierr: errors the gate itself answers with, written in the API's own format so that the
 * official SDKs raise their usual exceptions.
 *   OpenAI:    {"error":{"message":..,"type":..,"code":..}}
 *   Anthropic: {"type":"error","error":{"type":..,"message":..}}
 */
#ifndef TG_APIERR_H
#define TG_APIERR_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "conf/conf.h"

enum apierr {
    APIERR_BAD_REQUEST,       /* 400 */
    APIERR_BAD_HTTP,          /* 400, the connection closes */
    APIERR_UNAUTHORIZED,      /* 401 */
    APIERR_NOT_FOUND,         /* 404 */
    APIERR_MODEL_NOT_FOUND,   /* 404 */
    APIERR_METHOD,            /* 405 */
    APIERR_HEADER_TIMEOUT,    /* 408 */
    APIERR_TOO_LARGE,         /* 413 */
    APIERR_HEADERS_TOO_LARGE, /* 431 */
    APIERR_INTERNAL,          /* 500 */
    APIERR_BAD_GATEWAY,       /* 502 */
    APIERR_GATEWAY_TIMEOUT,   /* 504 */
    APIERR_UNAVAILABLE,       /* 503: the gate cannot record spend right now */
    APIERR_OUTPUT_LIMIT,      /* 502: the provider went past the output the request was allowed */
    APIERR__COUNT
};

/* The HTTP status for an error kind. */
int apierr_status(enum apierr kind);

/*
 * Writes the JSON error body for kind in format fmt into buf (NUL-terminated, truncated to
 * fit). message must not contain secrets: it is shown to the client. Returns the length.
 * For a request of a known API, its client dialect's error_body (dialect.h) is the one to
 * call; this is for requests of none (an unknown path, a local endpoint, a bad head).
 */
size_t apierr_body(enum conf_format fmt, enum apierr kind, const char *message, char *buf,
                   size_t cap);

/*
 * Writes the server-sent event that ends a stream cut short, in format fmt. Returns the
 * length written into buf.
 */
size_t apierr_stream_event(enum conf_format fmt, enum apierr kind, const char *message, char *buf,
                           size_t cap);

/* The two families' shapes, as the dialects use them: apierr_body and apierr_stream_event of
 * one format; and an error document of a given type and code (the code is dropped where the
 * shape has none), *err set to its inner error object, NULL when memory ran out. */
size_t apierr_openai_body(enum apierr kind, const char *message, char *buf, size_t cap);
size_t apierr_openai_event(enum apierr kind, const char *message, char *buf, size_t cap);
size_t apierr_anthropic_body(enum apierr kind, const char *message, char *buf, size_t cap);
size_t apierr_anthropic_event(enum apierr kind, const char *message, char *buf, size_t cap);
cJSON *apierr_openai_doc(const char *type, const char *code, const char *message,
                         cJSON **err);
cJSON *apierr_anthropic_doc(const char *type, const char *code, const char *message,
                            cJSON **err);

/* The reason phrase for an HTTP status. */
const char *http_reason(int status);

#endif
