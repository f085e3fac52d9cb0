/* tokengate-mock: the Anthropic API: messages and count_tokens. */
#include "mock.h"

/* ---- Anthropic messages ---- */

static const char *msg_stop(const struct plan *pl)
{
    return pl->tool       ? "tool_use"
           : pl->cut      ? "max_tokens"
           : pl->stop_seq ? "stop_sequence"
                          : "end_turn";
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
 * Returns parallel call i's tool_use block: its input once done (parsed from
 * its arguments), else {} as content_block_start has it.
 */
static cJSON *msg_call_block(const struct plan *pl, int i, int done)
{
    cJSON *b = jtyped("tool_use");
    char id[64], args[MOCK_CALL_ARGS];

    call_id(pl, i, id, sizeof(id));
    cJSON_AddStringToObject(b, "id", id);
    cJSON_AddStringToObject(b, "name", pl->calls[i]);
    if (done && call_args(pl, i, args) > 0)
        jadd(b, "input", cJSON_Parse(args));
    else
        cJSON_AddObjectToObject(b, "input");
    return b;
}

/* Appends the content of a plan with parallel calls: a text block (when text_tok), the calls. */
static void msg_calls_content(cJSON *content, const struct plan *pl)
{
    char *text = pl->text_tok ? mock_text(pl->text_tok) : NULL;
    cJSON *b;
    int i;

    if (text) {
        b = jadd(content, NULL, jtyped("text"));
        cJSON_AddStringToObject(b, "text", text);
        free(text);
    }
    for (i = 0; i < pl->ncalls; i++)
        jadd(content, NULL, msg_call_block(pl, i, 1));
}

/* Adds Anthropic's split of the cache writes by lifetime to usage object u. */
static void msg_cache_creation(cJSON *u, const struct plan *pl)
{
    cJSON *cc = cJSON_AddObjectToObject(u, "cache_creation");

    cJSON_AddNumberToObject(cc, "ephemeral_5m_input_tokens",
                            (double)(pl->cache_write - pl->cache_write_1h));
    cJSON_AddNumberToObject(cc, "ephemeral_1h_input_tokens", (double)pl->cache_write_1h);
}

/*
 * Returns the message, with content when text is set (else [], for
 * message_start, whose usage holds the input and output_tokens 1, as
 * Anthropic's does). Anthropic's input_tokens leave out the cache reads and
 * writes.
 */
static cJSON *msg_object(const struct plan *pl, const char *text)
{
    cJSON *r = cJSON_CreateObject(), *content, *u;

    cJSON_AddStringToObject(r, "id", pl->id);
    cJSON_AddStringToObject(r, "type", "message");
    cJSON_AddStringToObject(r, "role", "assistant");
    cJSON_AddStringToObject(r, "model", pl->model);
    content = cJSON_AddArrayToObject(r, "content");
    if (text && pl->ncalls)
        msg_calls_content(content, pl);
    else if (text)
        jadd(content, NULL, msg_block(pl, text, 1));
    jstr(r, "stop_reason", text ? msg_stop(pl) : NULL);
    jstr(r, "stop_sequence", text ? pl->stop_seq : NULL);
    if (pl->usage) {
        u = cJSON_AddObjectToObject(r, "usage");
        usage_val(u, "input_tokens", pl, pl->prompt - pl->cached - pl->cache_write);
        cJSON_AddNumberToObject(u, "cache_creation_input_tokens", (double)pl->cache_write);
        cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)pl->cached);
        msg_cache_creation(u, pl);
        if (text)
            usage_val(u, "output_tokens", pl, plan_output(pl));
        else
            cJSON_AddNumberToObject(u, "output_tokens", 1);
    }
    return r;
}

/* Returns a content_block_delta event of block index: text, or a piece of a call's input. */
static cJSON *msg_delta_at(int index, int json, const char *piece)
{
    cJSON *e = sse_data("content_block_delta", -1), *d;

    cJSON_AddNumberToObject(e, "index", index);
    d = jadd(e, "delta", jtyped(json ? "input_json_delta" : "text_delta"));
    cJSON_AddStringToObject(d, json ? "partial_json" : "text", piece);
    return e;
}

/* Returns a content_block_delta event: text, or a piece of the tool call's input. */
static cJSON *msg_delta(const struct plan *pl, const char *piece)
{
    return msg_delta_at(0, pl->tool && !pl->ncalls, piece);
}

/* Returns a content_block_start or _stop event (named by type) for block index. */
static cJSON *msg_block_event(const char *type, int index, cJSON *block)
{
    cJSON *e = sse_data(type, -1);

    cJSON_AddNumberToObject(e, "index", index);
    if (block)
        jadd(e, "content_block", block);
    return e;
}

/*
 * The calls' step s of a plan with parallel calls: a call's head closes the
 * block before it and opens its own; then the pieces of its input.
 */
static void msg_call_step(const struct plan *pl, struct pieces *p, int s)
{
    char piece[MOCK_CALL_ARGS];
    int i, pos, index;

    if (call_at(pl, s, &i, &pos) < 0)
        return;
    index = i + (pl->text_tok > 0);
    if (pos > 0) {
        call_piece(pl, i, pos - 1, piece);
        piece_event(p, msg_delta_at(index, 1, piece), PIECE_DELTA);
        return;
    }
    if (index > 0)
        piece_event(p, msg_block_event("content_block_stop", index - 1, NULL), 0);
    piece_event(p, msg_block_event("content_block_start", index, msg_call_block(pl, i, 0)), 0);
}

static void msg_step(const struct plan *pl, struct pieces *p, int k)
{
    char a[MOCK_WORD_MAX + 1], b[MOCK_WORD_MAX + 1];
    cJSON *e, *d;

    if (k == 0) {
        e = sse_data("message_start", -1);
        jadd(e, "message", msg_object(pl, NULL));
        piece_event(p, e, 0);
        if (!pl->ncalls) {
            piece_event(p, msg_block_event("content_block_start", 0, msg_block(pl, "", 0)), 0);
        } else if (pl->text_tok) { /* the text; each parallel call opens its own block later */
            e = jtyped("text");
            cJSON_AddStringToObject(e, "text", "");
            piece_event(p, msg_block_event("content_block_start", 0, e), 0);
        }
        piece_event(p, sse_data("ping", -1), 0);
    } else if (k <= pl->steps && pl->ncalls && k > pl->text_tok) {
        msg_call_step(pl, p, k - 1 - pl->text_tok);
    } else if (k <= pl->steps && pl->tool && !pl->ncalls) {
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
        piece_event(p, msg_block_event("content_block_stop",
                                       pl->ncalls ? pl->ncalls - 1 + (pl->text_tok > 0) : 0, NULL),
                    0);
        e = sse_data("message_delta", -1);
        d = cJSON_AddObjectToObject(e, "delta");
        cJSON_AddStringToObject(d, "stop_reason", msg_stop(pl));
        jstr(d, "stop_sequence", pl->stop_seq);
        if (pl->usage) {
            cJSON *u = cJSON_AddObjectToObject(e, "usage");
            if (pl->delta_input) { /* the input counts again, cumulative, as Anthropic's now */
                usage_val(u, "input_tokens", pl, pl->prompt - pl->cached - pl->cache_write);
                cJSON_AddNumberToObject(u, "cache_creation_input_tokens", (double)pl->cache_write);
                cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)pl->cached);
                msg_cache_creation(u, pl);
            }
            usage_val(u, "output_tokens", pl, plan_output(pl));
        }
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
    if (cap_check(req, body, "max_tokens", 1, 1) || images_check(req, body, 1) ||
        plan_failed(req, body, f, 1))
        return;
    plan_init(&pl, m, API_MESSAGES, body, ntok, max, plan_tool_name(body, 1), f);
    plan_calls(&pl, m, body, 1);
    plan_stop(&pl, body, 1, f);
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
