/* tokengate-mock: the Anthropic API: messages and count_tokens. */
#include "mock.h"

/* ---- Anthropic messages ---- */

static const char *msg_stop(const struct plan *pl)
{
    return pl->tool ? "tool_use" : pl->cut ? "max_tokens" : "end_turn";
}

/* Returns the content block: the text, or the call to pl->tool, with its input once done. */
static cJSON *msg_block(const struct plan *pl, const char *text, int done)
{
    cJSON *b = jtyped(pl->tool ? "tool_use" : "text");

    if (!pl->tool) {
        cJSON_AddStringToObject(b, "text", text);
        return b;
    }
    cJSON_AddStringToObject(b, "id", pl->id2);
    cJSON_AddStringToObject(b, "name", pl->tool);
    if (done)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(b, "input"), "query", "mock");
    else
        cJSON_AddObjectToObject(b, "input");
    return b;
}

/*
 * Returns the message, with content when text is set (else [], for
 * message_start, whose usage holds the input and output_tokens 1, as
 * Anthropic's does). Anthropic's input_tokens leave out the cache reads.
 */
static cJSON *msg_object(const struct plan *pl, const char *text)
{
    cJSON *r = cJSON_CreateObject(), *content, *u;

    cJSON_AddStringToObject(r, "id", pl->id);
    cJSON_AddStringToObject(r, "type", "message");
    cJSON_AddStringToObject(r, "role", "assistant");
    cJSON_AddStringToObject(r, "model", pl->model);
    content = cJSON_AddArrayToObject(r, "content");
    if (text)
        jadd(content, NULL, msg_block(pl, text, 1));
    jstr(r, "stop_reason", text ? msg_stop(pl) : NULL);
    cJSON_AddNullToObject(r, "stop_sequence");
    if (pl->usage) {
        u = cJSON_AddObjectToObject(r, "usage");
        usage_val(u, "input_tokens", pl, pl->prompt - pl->cached);
        cJSON_AddNumberToObject(u, "cache_creation_input_tokens", 0);
        cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)pl->cached);
        if (text)
            usage_val(u, "output_tokens", pl, plan_output(pl));
        else
            cJSON_AddNumberToObject(u, "output_tokens", 1);
    }
    return r;
}

/* Returns a content_block_delta event: text, or a piece of the tool call's input. */
static cJSON *msg_delta(const struct plan *pl, const char *piece)
{
    cJSON *e = sse_data("content_block_delta", -1), *d;

    cJSON_AddNumberToObject(e, "index", 0);
    d = jadd(e, "delta", jtyped(pl->tool ? "input_json_delta" : "text_delta"));
    cJSON_AddStringToObject(d, pl->tool ? "partial_json" : "text", piece);
    return e;
}

static void msg_step(const struct plan *pl, struct pieces *p, int k)
{
    char a[MOCK_WORD_MAX + 1], b[MOCK_WORD_MAX + 1];
    cJSON *e, *d;

    if (k == 0) {
        e = sse_data("message_start", -1);
        jadd(e, "message", msg_object(pl, NULL));
        piece_event(p, e, 0);
        e = sse_data("content_block_start", -1);
        cJSON_AddNumberToObject(e, "index", 0);
        jadd(e, "content_block", msg_block(pl, "", 0));
        piece_event(p, e, 0);
        piece_event(p, sse_data("ping", -1), 0);
    } else if (k <= pl->steps && pl->tool) {
        piece_event(p, msg_delta(pl, tool_args[k - 1]), PIECE_DELTA);
    } else if (k <= pl->steps) {
        if (token_parts(pl, k - 1, a, b) == 2) {
            piece_event(p, msg_delta(pl, a), PIECE_DELTA | PIECE_TOKEN);
            piece_event(p, msg_delta(pl, b), PIECE_DELTA);
        } else {
            piece_event(p, msg_delta(pl, a), PIECE_DELTA | PIECE_TOKEN);
        }
    } else if (pl->error_event) {
        e = sse_data("error", -1);
        d = jadd(e, "error", jtyped("overloaded_error"));
        cJSON_AddStringToObject(d, "message", "Overloaded");
        piece_event(p, e, 0);
    } else {
        e = sse_data("content_block_stop", -1);
        cJSON_AddNumberToObject(e, "index", 0);
        piece_event(p, e, 0);
        e = sse_data("message_delta", -1);
        d = cJSON_AddObjectToObject(e, "delta");
        cJSON_AddStringToObject(d, "stop_reason", msg_stop(pl));
        cJSON_AddNullToObject(d, "stop_sequence");
        if (pl->usage)
            usage_val(cJSON_AddObjectToObject(e, "usage"), "output_tokens", pl, plan_output(pl));
        piece_event(p, e, 0);
        piece_event(p, sse_data("message_stop", -1), 0);
    }
}

/* Serves /v1/messages as ep_chat() serves chat; max_tokens is required, at least 1. */
void ep_messages(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                 enum fault f)
{
    const cJSON *max = jget(body, "max_tokens");
    struct plan pl;
    char *text;

    if (!max || cJSON_IsNull(max)) {
        reply_error(req, 1, 400, "max_tokens: Field required");
        return;
    }
    if (cap_check(req, body, "max_tokens", 1, 1) || plan_failed(req, body, f, 1))
        return;
    plan_init(&pl, m, API_MESSAGES, body, ntok, max, plan_tool_name(body, 1), f);
    plan_prompt(&pl, m, body, TOK_API_MESSAGES);
    const char *cls = classify_reply(m, &pl, body); /* a classification: one word */
    usage_note(m, &pl, pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, msg_step, f);
        return;
    }
    text = cls ? strdup(cls) : mock_text(pl.ntok);
    deliver_json(m, req, text ? msg_object(&pl, text) : NULL, f);
    free(text);
}

/* Serves /v1/messages/count_tokens: the prompt's tokens, as messages counts them. */
void ep_count_tokens(struct mock *m, struct evhttp_request *req, const cJSON *body, enum fault f)
{
    cJSON *r = cJSON_CreateObject();

    cJSON_AddNumberToObject(r, "input_tokens", (double)prompt_tokens(m, body, TOK_API_MESSAGES));
    deliver_json(m, req, r, f);
}
