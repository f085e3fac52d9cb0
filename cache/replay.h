/*
 * replay: a cached answer turned into the form the client asked for, in the client's own API
 * (OpenAI chat completions, Anthropic messages): a stream assembled into a whole answer, and
 * a whole answer made into a stream. A cached stream that answers a streaming request is sent
 * as its events were, without their delays; these two cover the other cases. Tool calls with
 * their ids, names and arguments, several of them, text, stop or finish reasons and usage go
 * across whole.
 */
#ifndef TG_CACHE_REPLAY_H
#define TG_CACHE_REPLAY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "conf/conf.h"

/* Gathers a stream's events, in the client's API, into the whole answer they make. */
struct replay_asm;

/* A gatherer's caps: the bytes it holds (texts, arguments, usage), and the tool calls or
 * content blocks of one answer. Past either, its event fails (the answer is not gathered). */
#define REPLAY_MAX_BYTES (64u << 20)
#define REPLAY_MAX_PARTS 256

/* A gatherer for api's events; NULL when out of memory. */
struct replay_asm *replay_asm_new(enum conf_format api);

/*
 * Takes one event: its name ("" for none) and its data parsed (NULL for data that is not
 * JSON, such as OpenAI's [DONE]). Returns 0, or -1 when the event does not belong in a
 * stream of api, or memory runs out (the gatherer is then failed: finish gives NULL).
 */
int replay_asm_event(struct replay_asm *a, const char *name, const cJSON *data);

/*
 * The whole answer, as api writes a non-streaming one (chat.completion, or an Anthropic
 * message), or NULL when the stream did not end as a complete answer (no finish reason, no
 * message_stop) or the gatherer failed. The caller frees it (cJSON_Delete).
 */
cJSON *replay_asm_finish(struct replay_asm *a);

void replay_asm_free(struct replay_asm *a);

/* One event to send: its name (NULL for none: OpenAI) and its data (JSON text, or "[DONE]"). */
typedef int replay_emit_fn(void *arg, const char *name, const char *data, size_t len);

/*
 * Makes the stream of a whole answer in api and emits its events in order: for OpenAI, the
 * chunks of the text in pieces of about piece bytes, the tool calls (each call's arguments in
 * pieces too), the finish reason, a usage chunk when include_usage, then [DONE]; for
 * Anthropic, message_start, each content block's start, deltas and stop, message_delta with
 * the stop reason and usage, message_stop. Returns 0, -1 when whole is not an answer of api,
 * or emit's non-zero return (which stops it).
 */
int replay_stream(enum conf_format api, const cJSON *whole, int include_usage, size_t piece,
                  replay_emit_fn *emit, void *arg);

/*
 * 1 when whole is a complete answer of api as its non-streaming endpoint writes it: OpenAI, a
 * chat.completion with one choice, its message (content a string or null, tool calls with an
 * id, a name and arguments as a string) and a finish_reason; Anthropic, a message with its
 * content blocks (text, tool_use with an object as input, thinking...), a stop_reason and a
 * usage object. Else 0 (an error, a cut answer, another API's).
 */
int replay_whole_ok(enum conf_format api, const cJSON *whole);

#endif
