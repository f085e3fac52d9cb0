/*
 * xlate: translation between the OpenAI chat completions and the Anthropic Messages formats,
 * for a request routed to a provider of the other family: the request on the way out, and the
 * answer on the way back (a whole body, a stream event by event, an error), so that the client
 * always receives its own API's format.
 *
 *   xlate_oa.c  the client speaks OpenAI chat, the provider Anthropic Messages
 *   xlate_ao.c  the client speaks Anthropic Messages, the provider OpenAI chat
 *
 * All cJSON allocation goes where jsonmem says (the request's arena in the pipeline), except
 * the stream state, which is malloc'd (a stream outlives the arena's bound). Nothing is
 * buffered to the end of a stream: each upstream event yields the client events it makes now.
 */
#ifndef TG_XLATE_H
#define TG_XLATE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

enum xlate_dir {
    XLATE_NONE = 0,
    XLATE_OPENAI_TO_ANTHROPIC, /* client: OpenAI chat; provider: Anthropic Messages */
    XLATE_ANTHROPIC_TO_OPENAI, /* client: Anthropic Messages; provider: OpenAI chat */
};

/* What the answer's translation needs to know of the request. */
struct xlate_ctx {
    enum xlate_dir dir;
    const char *client_model;  /* the name the client's answer carries in "model" */
    const char *request_id;    /* for ids the other format requires (chatcmpl-..., msg_...) */
    int64_t created;           /* seconds since the epoch, for OpenAI's "created" */
    int include_usage;         /* OpenAI client asked stream_options.include_usage */
};

/* "openai.chat->anthropic.messages" and back: the log's name of a direction, NULL for none. */
const char *xlate_name(enum xlate_dir d);

/*
 * The upstream request body for the client's body (an object), for the target model
 * upstream_model. max_tokens is the output cap to send when the client set none (Anthropic
 * requires one: the budget's clamp or the model's maximum), -1 for none. stream as the client
 * asked; for an OpenAI provider a stream asks for usage (stream_options.include_usage). Returns
 * the new document, or NULL with a client-facing reason in err naming the field the other API
 * cannot express ("'n' greater than 1 cannot be sent to an Anthropic model"), or "out of
 * memory".
 */
cJSON *xlate_request(enum xlate_dir d, const cJSON *body, const char *upstream_model,
                     int64_t max_tokens, int stream, char *err, size_t errlen);

/* The client's whole answer for the provider's whole 2xx answer doc. NULL when doc is not an
 * answer of the provider's format (the caller then passes the error on) or memory ran out. */
cJSON *xlate_response(const struct xlate_ctx *ctx, const cJSON *doc);

/*
 * The client's error for the provider's error answer: status (529 from Anthropic becomes 503
 * for an OpenAI client, 503 from OpenAI 529 overloaded_error for an Anthropic client; 429,
 * 400, 401, 403, 404, 413, 500 keep theirs) into *client_status, and the body in the client's
 * error shape, with the provider's message (doc may be NULL: a body that is not JSON).
 */
cJSON *xlate_error(const struct xlate_ctx *ctx, int status, const cJSON *doc,
                   int *client_status);

/* Where a stream's translation hands each client event it makes: the whole SSE event text
 * ("event: NAME\ndata: {...}\n\n", or "data: ...\n\n" for OpenAI), len bytes. Returns 0, or
 * -1 to stop (the client writer failed). */
typedef int xlate_emit_fn(void *arg, const char *name, const char *text, size_t len);

struct xlate_stream;

/* A stream's translation state (malloc'd, capped: at most XLATE_MAX_TOOLS tool calls, a
 * tool call's pending arguments are never held: each delta goes out as it comes). NULL when
 * out of memory. */
#define XLATE_MAX_TOOLS 128
struct xlate_stream *xlate_stream_new(const struct xlate_ctx *ctx);
void xlate_stream_free(struct xlate_stream *s);

/*
 * One upstream event: its event name ("" for none), its data parsed (NULL when not JSON: an
 * OpenAI "[DONE]" is data NULL with raw "[DONE]"), raw data text. Emits the client events it
 * makes, in order. Returns 0, or -1 when emit asked to stop or memory ran out.
 */
int xlate_stream_event(struct xlate_stream *s, const char *name, const cJSON *data,
                       const char *raw, size_t raw_len, xlate_emit_fn *emit, void *arg);

/* The upstream stream ended: emits what the client's format needs to end it, if the upstream's
 * end did not already (message_stop, [DONE]). Returns as xlate_stream_event. */
int xlate_stream_end(struct xlate_stream *s, xlate_emit_fn *emit, void *arg);

/* Client-facing reason why body cannot go to the other API family (a field that has no
 * equivalent), or NULL when it can. Used by route --explain and before routing. */
const char *xlate_check(enum xlate_dir d, const cJSON *body, char *buf, size_t cap);

#endif
