/*
 * apierr: errors the gate itself answers with, written in the API's own format so that the
 * official SDKs raise their usual exceptions.
 *   OpenAI:    {"error":{"message":..,"type":..,"code":..}}
 *   Anthropic: {"type":"error","error":{"type":..,"message":..}}
 */
#ifndef TG_APIERR_H
#define TG_APIERR_H

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
 */
size_t apierr_body(enum conf_format fmt, enum apierr kind, const char *message, char *buf,
                   size_t cap);

/*
 * Writes the server-sent event that ends a stream cut short, in format fmt. Returns the
 * length written into buf.
 */
size_t apierr_stream_event(enum conf_format fmt, enum apierr kind, const char *message, char *buf,
                           size_t cap);

/* The reason phrase for an HTTP status. */
const char *http_reason(int status);

#endif
