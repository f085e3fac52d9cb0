/*
 * xlate-int: what routing/xlate*.c share, and nothing else includes. xlate.c holds the public
 * functions of xlate.h, which dispatch on the direction to the functions below, and the shared
 * helpers; xlate_oa.c (client OpenAI chat, provider Anthropic Messages) defines xlate_oa_*,
 * xlate_ao.c (client Anthropic Messages, provider OpenAI chat) defines xlate_ao_*.
 *
 * Each direction's functions have the contract of the public function of the same verb in
 * xlate.h (the direction is implied). Streams: each direction's state embeds struct
 * xlate_stream as its first member (dir set by its stream_new), so that xlate.c dispatches on
 * s->dir; stream_new copies from ctx what it keeps (ctx's strings need not outlive the call).
 */
#ifndef TG_XLATE_INT_H
#define TG_XLATE_INT_H

#include <stdarg.h>

#include "routing/xlate.h"

#define XGET cJSON_GetObjectItemCaseSensitive

/* The base of each direction's stream state. */
struct xlate_stream {
    enum xlate_dir dir;
};

/* --- client OpenAI chat, provider Anthropic Messages (xlate_oa.c, xlate_oa2.c) --- */

/* The tool an OpenAI response_format json_object/json_schema becomes (forced with tool_choice):
 * its call comes back as the message's content, not as a tool call. */
#define XLATE_OA_JSON_TOOL "tokengate_json_output"

cJSON *xlate_oa_request(const cJSON *body, const char *upstream_model, int64_t max_tokens,
                        int stream, char *err, size_t errlen);
const char *xlate_oa_check(const cJSON *body, char *buf, size_t cap);
cJSON *xlate_oa_response(const struct xlate_ctx *ctx, const cJSON *doc);
cJSON *xlate_oa_error(const struct xlate_ctx *ctx, int status, const cJSON *doc,
                      int *client_status);
struct xlate_stream *xlate_oa_stream_new(const struct xlate_ctx *ctx);
int xlate_oa_stream_event(struct xlate_stream *s, const char *name, const cJSON *data,
                          const char *raw, size_t raw_len, xlate_emit_fn *emit, void *arg);
int xlate_oa_stream_end(struct xlate_stream *s, xlate_emit_fn *emit, void *arg);
void xlate_oa_stream_free(struct xlate_stream *s);

/* --- client Anthropic Messages, provider OpenAI chat (xlate_ao.c) --- */
cJSON *xlate_ao_request(const cJSON *body, const char *upstream_model, int64_t max_tokens,
                        int stream, char *err, size_t errlen);
const char *xlate_ao_check(const cJSON *body, char *buf, size_t cap);
cJSON *xlate_ao_response(const struct xlate_ctx *ctx, const cJSON *doc);
cJSON *xlate_ao_error(const struct xlate_ctx *ctx, int status, const cJSON *doc,
                      int *client_status);
struct xlate_stream *xlate_ao_stream_new(const struct xlate_ctx *ctx);
int xlate_ao_stream_event(struct xlate_stream *s, const char *name, const cJSON *data,
                          const char *raw, size_t raw_len, xlate_emit_fn *emit, void *arg);
int xlate_ao_stream_end(struct xlate_stream *s, xlate_emit_fn *emit, void *arg);
void xlate_ao_stream_free(struct xlate_stream *s);

/* --- shared helpers (xlate.c) --- */

/* Emits data as one SSE event: "event: NAME\ndata: JSON\n\n", or "data: JSON\n\n" when name
 * is NULL (OpenAI). Returns emit's answer, or -1 when data is NULL or printing ran out of
 * memory. data stays the caller's. */
int xlate_emit_json(xlate_emit_fn *emit, void *arg, const char *name, const cJSON *data);

/* Emits "data: TEXT\n\n" (OpenAI's "[DONE]"). Returns emit's answer. */
int xlate_emit_data(xlate_emit_fn *emit, void *arg, const char *text);

/* OpenAI finish_reason for an Anthropic stop_reason: end_turn/stop_sequence/pause_turn ->
 * "stop", max_tokens -> "length", tool_use -> "tool_calls", refusal -> "content_filter";
 * NULL or unknown -> "stop". */
const char *xlate_finish_reason(const char *stop_reason);

/* Anthropic stop_reason for an OpenAI finish_reason: stop -> "end_turn", length ->
 * "max_tokens", tool_calls/function_call -> "tool_use", content_filter -> "refusal"; NULL or
 * unknown -> "end_turn". (A stop on a stop sequence cannot be told from "stop" in OpenAI's
 * answer: xlate_ao decides with the request's stop list if it keeps one.) */
const char *xlate_stop_reason(const char *finish_reason);

/* The provider's error message in doc (either family's shape: {"error":{"message":...}},
 * {"error":"..."}, {"message":...}), or NULL. Points into doc. */
const char *xlate_error_message(const cJSON *doc);

/* OpenAI's error type for an HTTP status (400 invalid_request_error, 401 authentication_error,
 * 403 permission_error, 404 not_found_error, 429 rate_limit_error, else server_error...). */
const char *xlate_openai_error_type(int status);

/* Anthropic's error type for an HTTP status (400 invalid_request_error, 401
 * authentication_error, 403 permission_error, 404 not_found_error, 413 request_too_large, 429
 * rate_limit_error, 529 and 503 overloaded_error, else api_error). */
const char *xlate_anthropic_error_type(int status);

/* {"error":{"message","type","code"}} (code NULL -> null). NULL when out of memory. */
cJSON *xlate_openai_error_doc(const char *message, const char *type, const char *code);

/* {"type":"error","error":{"type","message"}}. NULL when out of memory. */
cJSON *xlate_anthropic_error_doc(const char *type, const char *message);

/* Writes the reason into err (cap errlen, NUL-terminated, truncated to fit). */
void xlate_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Checked builders: cJSON's builders take a NULL parent or value quietly, so each of these
 * returns -1 when anything is NULL or memory ran out (item is deleted then), else 0.
 * xlate_add takes item over.
 */
int xlate_add(cJSON *obj, const char *key, cJSON *item);
int xlate_add_str(cJSON *obj, const char *key, const char *s);
int xlate_add_num(cJSON *obj, const char *key, double v);
int xlate_append(cJSON *arr, cJSON *item);

/* An Anthropic text content block {"type":"text","text":text} (NULL when out of memory). */
cJSON *xlate_text_block(const char *text);

/* A deep copy of v (NULL when v is NULL or out of memory). */
cJSON *xlate_dup(const cJSON *v);

#endif
