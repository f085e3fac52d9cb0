/* tokengate-mock: the replies of chat completions, responses and messages. */
#include "mock.h"

/* A streamed tool call's arguments, in pieces that concatenate to MOCK_TOOL_ARGS. */
static const char *const tool_args[] = {"{\"query\"", ":\"mo", "ck\"}"};

/* ---- plans ---- */

/*
 * Fills what every reply needs: model, ids (prefix + sequence number), the
 * reply length (ntok, cut to limit when limit >= 0), usage and malformed
 * under fault f, and a call to tool instead of text when tool is set.
 */
void plan_init(struct plan *pl, struct mock *m, enum api api, const cJSON *body, int ntok,
               const cJSON *limit, const char *tool, enum fault f)
{
    static const char *const pfx[][2] = {
        [API_CHAT] = {"chatcmpl-mock-", "call_mock_"},
        [API_RESPONSES] = {"resp_mock_", "msg_mock_"},
        [API_MESSAGES] = {"msg_mock_", "toolu_mock_"},
    };
    long long max = -1;

    jint(limit, &max);
    memset(pl, 0, sizeof(*pl));
    pl->api = api;
    pl->model = cJSON_GetStringValue(jget(body, "model"));
    if (!pl->model)
        pl->model = "mock-model";
    m->seq++;
    snprintf(pl->id, sizeof(pl->id), "%s%lu", pfx[api][0], m->seq);
    snprintf(pl->id2, sizeof(pl->id2), "%s%lu", pfx[api][1], m->seq);
    pl->created = (long long)time(NULL);
    pl->cut = max >= 0 && max < ntok;
    pl->ntok = pl->cut ? (int)max : ntok;
    pl->steps = pl->ntok;
    if (tool) { /* OpenAI streams the call's name as a step of its own */
        pl->tool = tool;
        pl->ntok = MOCK_TOOL_TOKENS;
        pl->cut = 0;
        pl->steps = (int)NELEM(tool_args) + (api == API_CHAT);
    }
    pl->usage = f != F_NO_USAGE;
    pl->malformed = f == F_MALFORMED;
}

/* Returns the tool to call, or NULL: tools non-empty, choice not "none", no tool result last. */
const char *plan_tool_name(const cJSON *body, int anth)
{
    const cJSON *tools = jarr(jget(body, "tools")), *msgs = jarr(jget(body, "messages"));
    const cJSON *choice = jget(body, "tool_choice"), *last = NULL, *block;
    const char *s, *name;

    cJSON_ArrayForEach(block, msgs) last = block;
    s = cJSON_GetStringValue(anth ? jget(choice, "type") : choice);
    if (!tools || !tools->child || (s && strcmp(s, "none") == 0))
        return NULL;
    s = cJSON_GetStringValue(jget(last, "role")); /* OpenAI: answering a tool? */
    if (!anth && s && strcmp(s, "tool") == 0)
        return NULL;
    cJSON_ArrayForEach(block, jarr(jget(last, "content")))
    {
        s = cJSON_GetStringValue(jget(block, "type")); /* Anthropic: answering? */
        if (anth && s && strcmp(s, "tool_result") == 0)
            return NULL;
    }
    block = tools->child;
    name = cJSON_GetStringValue(jget(anth ? block : jget(block, "function"), "name"));
    return name ? name : "mock_tool";
}

/* ---- OpenAI chat completions ---- */

static cJSON *chat_usage(const struct plan *pl)
{
    cJSON *u = cJSON_CreateObject();

    cJSON_AddNumberToObject(u, "prompt_tokens", pl->prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", pl->ntok);
    cJSON_AddNumberToObject(u, "total_tokens", pl->prompt + pl->ntok);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens",
                            0);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "completion_tokens_details"),
                            "reasoning_tokens", 0);
    return u;
}

static const char *chat_finish(const struct plan *pl)
{
    return pl->tool ? "tool_calls" : pl->cut ? "length" : "stop";
}

/* Returns the members every reply and chunk opens with, object naming which it is. */
static cJSON *chat_head(const struct plan *pl, const char *object)
{
    cJSON *r = cJSON_CreateObject();

    cJSON_AddStringToObject(r, "id", pl->id);
    cJSON_AddStringToObject(r, "object", object);
    cJSON_AddNumberToObject(r, "created", pl->created);
    cJSON_AddStringToObject(r, "model", pl->model);
    return r;
}

/*
 * Adds {"tool_calls":[call to pl->tool with args]} to obj and returns obj. In
 * a stream (index >= 0) the call has an index, and after its first piece
 * (named 0) neither id, type nor name.
 */
static cJSON *chat_call(cJSON *obj, const struct plan *pl, int index, int named, const char *args)
{
    cJSON *c = jadd(cJSON_AddArrayToObject(obj, "tool_calls"), NULL, cJSON_CreateObject()), *fn;

    if (index >= 0)
        cJSON_AddNumberToObject(c, "index", index);
    if (named) {
        cJSON_AddStringToObject(c, "id", pl->id2);
        cJSON_AddStringToObject(c, "type", "function");
    }
    fn = cJSON_AddObjectToObject(c, "function");
    if (named)
        cJSON_AddStringToObject(fn, "name", pl->tool);
    cJSON_AddStringToObject(fn, "arguments", args);
    return obj;
}

/* Returns the reply, with text as the message unless the plan calls a tool. */
static cJSON *chat_reply(const struct plan *pl, const char *text)
{
    cJSON *r = chat_head(pl, "chat.completion");
    cJSON *ch = jadd(cJSON_AddArrayToObject(r, "choices"), NULL, cJSON_CreateObject());
    cJSON *msg;

    cJSON_AddNumberToObject(ch, "index", 0);
    msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    jstr(msg, "content", text); /* null with a tool call */
    if (pl->tool)
        chat_call(msg, pl, -1, 1, MOCK_TOOL_ARGS);
    cJSON_AddStringToObject(ch, "finish_reason", chat_finish(pl));
    if (pl->usage)
        jadd(r, "usage", chat_usage(pl));
    return r;
}

/* Appends a chunk with delta (freed here); a NULL delta makes the usage chunk, without choices. */
static void chat_chunk(const struct plan *pl, struct pieces *p, cJSON *delta, const char *finish,
                       int paced)
{
    cJSON *c = chat_head(pl, "chat.completion.chunk"),
          *choices = cJSON_AddArrayToObject(c, "choices");
    cJSON *ch;

    if (delta) {
        ch = jadd(choices, NULL, cJSON_CreateObject());
        cJSON_AddNumberToObject(ch, "index", 0);
        jadd(ch, "delta", delta);
        jstr(ch, "finish_reason", finish);
    }
    if (pl->stream_usage)
        jadd(c, "usage", delta ? cJSON_CreateNull() : chat_usage(pl));
    piece_add(p, NULL, c, NULL, paced);
}

static void chat_step(const struct plan *pl, struct pieces *p, int k)
{
    cJSON *d = cJSON_CreateObject();

    if (!d)
        return;
    if (k == 0) {
        cJSON_AddStringToObject(d, "role", "assistant");
        cJSON_AddStringToObject(d, "content", "");
        chat_chunk(pl, p, d, NULL, 0);
    } else if (k > pl->steps) {
        chat_chunk(pl, p, d, chat_finish(pl), 0);
        if (pl->stream_usage)
            chat_chunk(pl, p, NULL, NULL, 0);
        piece_add(p, NULL, NULL, "data: [DONE]\n\n", 0);
    } else if (!pl->tool) {
        cJSON_AddStringToObject(d, "content", word(k - 1));
        chat_chunk(pl, p, d, NULL, 1);
    } else { /* a tool call: its name first, then its arguments */
        chat_chunk(pl, p, chat_call(d, pl, 0, k == 1, k == 1 ? "" : tool_args[k - 2]), NULL, 1);
    }
}

void ep_chat(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok, enum fault f)
{
    const cJSON *limit = jget(body, "max_completion_tokens");
    struct plan pl;
    char *text;

    plan_init(&pl, m, API_CHAT, body, ntok, limit ? limit : jget(body, "max_tokens"),
              plan_tool_name(body, 0), f);
    pl.prompt = prompt_tokens(m, body, TOK_API_CHAT);
    pl.stream_usage = pl.usage && cJSON_IsTrue(jget(jget(body, "stream_options"), "include_usage"));
    usage_note(m, &pl, cJSON_IsTrue(jget(body, "stream")) ? pl.stream_usage : pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, chat_step, f);
        return;
    }
    text = pl.tool ? NULL : mock_text(pl.ntok);
    deliver_json(m, req, pl.tool || text ? chat_reply(&pl, text) : NULL, f);
    free(text);
}

/* ---- OpenAI responses ---- */

/*
 * Returns the response object: in progress without output, or done with the
 * text. A reply cut by max_output_tokens is "incomplete", as OpenAI does.
 */
static cJSON *resp_object(const struct plan *pl, const char *text, int done)
{
    cJSON *r = cJSON_CreateObject(), *output, *item, *part, *u;

    cJSON_AddStringToObject(r, "id", pl->id);
    cJSON_AddStringToObject(r, "object", "response");
    cJSON_AddNumberToObject(r, "created_at", pl->created);
    cJSON_AddStringToObject(r, "model", pl->model);
    cJSON_AddStringToObject(r, "status",
                            !done     ? "in_progress"
                            : pl->cut ? "incomplete"
                                      : "completed");
    cJSON_AddNullToObject(r, "error");
    if (done && pl->cut)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "incomplete_details"), "reason",
                                "max_output_tokens");
    else
        cJSON_AddNullToObject(r, "incomplete_details");
    output = cJSON_AddArrayToObject(r, "output");
    if (done) {
        item = jadd(output, NULL, jtyped("message"));
        cJSON_AddStringToObject(item, "id", pl->id2);
        cJSON_AddStringToObject(item, "status", "completed");
        cJSON_AddStringToObject(item, "role", "assistant");
        part = jadd(cJSON_AddArrayToObject(item, "content"), NULL, jtyped("output_text"));
        cJSON_AddStringToObject(part, "text", text);
        cJSON_AddArrayToObject(part, "annotations");
    }
    if (pl->usage && !done) {
        cJSON_AddNullToObject(r, "usage");
    } else if (pl->usage) {
        u = cJSON_AddObjectToObject(r, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", pl->prompt);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens",
                                0);
        cJSON_AddNumberToObject(u, "output_tokens", pl->ntok);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"),
                                "reasoning_tokens", 0);
        cJSON_AddNumberToObject(u, "total_tokens", pl->prompt + pl->ntok);
    }
    return r;
}

/* Returns a text event of the output item: delta (a token) or done (with all of the text). */
static cJSON *resp_text_event(const struct plan *pl, const char *type, int seq, const char *key,
                              const char *text)
{
    cJSON *e = sse_data(type, seq);

    cJSON_AddStringToObject(e, "item_id", pl->id2);
    cJSON_AddNumberToObject(e, "output_index", 0);
    cJSON_AddNumberToObject(e, "content_index", 0);
    cJSON_AddStringToObject(e, key, text);
    return e;
}

/* Events carry sequence numbers: created 0, token k k, then steps + 1 and steps + 2. */
static void resp_step(const struct plan *pl, struct pieces *p, int k)
{
    cJSON *e;
    char *text;

    if (k == 0) {
        e = sse_data("response.created", 0);
        jadd(e, "response", resp_object(pl, "", 0));
        piece_event(p, e, 0);
    } else if (k <= pl->steps) {
        piece_event(p, resp_text_event(pl, "response.output_text.delta", k, "delta", word(k - 1)),
                    1);
    } else if ((text = mock_text(pl->ntok))) {
        piece_event(p, resp_text_event(pl, "response.output_text.done", k, "text", text), 0);
        e = sse_data(pl->cut ? "response.incomplete" : "response.completed", k + 1);
        jadd(e, "response", resp_object(pl, text, 1));
        piece_event(p, e, 0);
        free(text);
    }
}

void ep_responses(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                  enum fault f)
{
    struct plan pl;
    char *text;

    plan_init(&pl, m, API_RESPONSES, body, ntok, jget(body, "max_output_tokens"), NULL, f);
    pl.prompt = prompt_tokens(m, body, TOK_API_RESPONSES);
    usage_note(m, &pl, pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, resp_step, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? resp_object(&pl, text, 1) : NULL, f);
    free(text);
}

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

/* Returns the message, with content when text is set (else [], for message_start). */
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
        cJSON_AddNumberToObject(u, "input_tokens", pl->prompt);
        cJSON_AddNumberToObject(u, "cache_creation_input_tokens", 0);
        cJSON_AddNumberToObject(u, "cache_read_input_tokens", 0);
        cJSON_AddNumberToObject(u, "output_tokens", text ? pl->ntok : 1);
    }
    return r;
}

static void msg_step(const struct plan *pl, struct pieces *p, int k)
{
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
    } else if (k <= pl->steps) {
        e = sse_data("content_block_delta", -1);
        cJSON_AddNumberToObject(e, "index", 0);
        d = jadd(e, "delta", jtyped(pl->tool ? "input_json_delta" : "text_delta"));
        cJSON_AddStringToObject(d, pl->tool ? "partial_json" : "text",
                                pl->tool ? tool_args[k - 1] : word(k - 1));
        piece_event(p, e, 1);
    } else {
        e = sse_data("content_block_stop", -1);
        cJSON_AddNumberToObject(e, "index", 0);
        piece_event(p, e, 0);
        e = sse_data("message_delta", -1);
        d = cJSON_AddObjectToObject(e, "delta");
        cJSON_AddStringToObject(d, "stop_reason", msg_stop(pl));
        cJSON_AddNullToObject(d, "stop_sequence");
        if (pl->usage)
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(e, "usage"), "output_tokens", pl->ntok);
        piece_event(p, e, 0);
        piece_event(p, sse_data("message_stop", -1), 0);
    }
}

void ep_messages(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                 enum fault f)
{
    const cJSON *max = jget(body, "max_tokens");
    long long v;
    struct plan pl;
    char *text;

    if (!jint(max, &v) || v < 0) {
        reply_error(req, 1, 400, "max_tokens: Field required");
        return;
    }
    plan_init(&pl, m, API_MESSAGES, body, ntok, max, plan_tool_name(body, 1), f);
    pl.prompt = prompt_tokens(m, body, TOK_API_MESSAGES);
    usage_note(m, &pl, pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, msg_step, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? msg_object(&pl, text) : NULL, f);
    free(text);
}
