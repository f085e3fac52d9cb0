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

    if (f != F_RUNAWAY) /* a runaway ignores every cap */
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
    pl->n = 1;
    pl->reasoning = m->st.reasoning;
    pl->oskew = m->st.oskew;
    pl->absurd = m->st.absurd;
    pl->split = m->st.split;
    pl->cut_after = (int)m->st.cut_after;
    pl->enc = f == F_GZIP || f == F_DEFLATE ? f : F_NONE;
    pl->error_event = f == F_ERROR_EVENT;
    if (pl->error_event && !tool && pl->steps > MOCK_ERROR_AFTER) /* generated before failing */
        pl->ntok = pl->steps = MOCK_ERROR_AFTER;
}

/* Sets the plan's prompt tokens (see prompt_tokens()) and the cached part of them. */
static void plan_prompt(struct plan *pl, const struct mock *m, const cJSON *body, tok_api api)
{
    pl->prompt = prompt_tokens(m, body, api);
    pl->cached = m->st.cached < pl->prompt ? m->st.cached : pl->prompt > 0 ? pl->prompt : 0;
}

/* Returns the output tokens pl bills (see mock.h); never below 0. */
long long plan_output(const struct plan *pl)
{
    long long out = (long long)pl->ntok * pl->n + pl->reasoning + pl->oskew;

    return out > 0 ? out : 0;
}

/*
 * Checks body's member key, an output cap: absent, null or an integer in
 * [lo, MOCK_CAP_MAX] passes (returns 0). Otherwise replies 400 naming the
 * member, in the API's words, and returns -1.
 */
static int cap_check(struct evhttp_request *req, const cJSON *body, const char *key, long long lo,
                     int anth)
{
    const cJSON *j = jget(body, key);
    long long v = 0;
    char msg[160];

    if (!j || cJSON_IsNull(j))
        return 0;
    if (!jint(j, &v) || v > MOCK_CAP_MAX)
        snprintf(msg, sizeof(msg),
                 anth ? "%s: Input should be a valid integer"
                      : "Invalid type for '%s': expected an integer",
                 key);
    else if (v < lo)
        snprintf(msg, sizeof(msg),
                 anth ? "%s: Input should be greater than or equal to %lld"
                      : "Invalid '%s': integer below minimum value. Expected a value >= %lld, "
                        "but got %lld instead.",
                 key, lo, v);
    else
        return 0;
    reply_error_param(req, anth, 400, msg, key);
    return -1;
}

/*
 * A non-stream request under the error-event fault: replies 500 in the API's
 * shape and returns 1; else returns 0.
 */
static int plan_failed(struct evhttp_request *req, const cJSON *body, enum fault f, int anth)
{
    if (f != F_ERROR_EVENT || cJSON_IsTrue(jget(body, "stream")))
        return 0;
    reply_error(req, anth, 500, "mock: the model failed");
    return 1;
}

/*
 * Returns how many deltas the text of token i goes out in: 2 for every third
 * word when the plan splits words (its halves in a and b), else 1 (the word in
 * a). a and b hold MOCK_WORD_MAX + 1 bytes.
 */
static int token_parts(const struct plan *pl, int i, char *a, char *b)
{
    const char *w = word(i);

    snprintf(a, MOCK_WORD_MAX + 1, "%s", w);
    if (!pl->split || i % 3 != 1 || strlen(w) < 2)
        return 1;
    snprintf(a, MOCK_WORD_MAX + 1, "%.2s", w);
    snprintf(b, MOCK_WORD_MAX + 1, "%s", w + 2);
    return 2;
}

/* Adds member key to a usage object u: v, or what x-mock-usage makes the report say instead. */
static void usage_val(cJSON *u, const char *key, const struct plan *pl, long long v)
{
    switch (pl->absurd) {
    case AB_NEGATIVE:
        cJSON_AddNumberToObject(u, key, -5);
        break;
    case AB_HUGE:
        cJSON_AddNumberToObject(u, key, 1e13);
        break;
    case AB_FRACTION:
        cJSON_AddNumberToObject(u, key, 10.5);
        break;
    case AB_STRING:
        cJSON_AddStringToObject(u, key, "10");
        break;
    default:
        cJSON_AddNumberToObject(u, key, (double)v);
    }
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

    usage_val(u, "prompt_tokens", pl, pl->prompt);
    usage_val(u, "completion_tokens", pl, plan_output(pl));
    usage_val(u, "total_tokens", pl, pl->prompt + plan_output(pl));
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens",
                            (double)pl->cached);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "completion_tokens_details"),
                            "reasoning_tokens", (double)pl->reasoning);
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

/* Returns the reply: pl->n choices, each with text as its message unless the plan calls a tool. */
static cJSON *chat_reply(const struct plan *pl, const char *text)
{
    cJSON *r = chat_head(pl, "chat.completion");
    cJSON *choices = cJSON_AddArrayToObject(r, "choices"), *ch, *msg;
    int i;

    for (i = 0; i < pl->n; i++) {
        ch = jadd(choices, NULL, cJSON_CreateObject());
        cJSON_AddNumberToObject(ch, "index", i);
        msg = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        jstr(msg, "content", text); /* null with a tool call */
        if (pl->tool)
            chat_call(msg, pl, -1, 1, MOCK_TOOL_ARGS);
        cJSON_AddStringToObject(ch, "finish_reason", chat_finish(pl));
    }
    if (pl->usage)
        jadd(r, "usage", chat_usage(pl));
    return r;
}

/*
 * Appends a chunk with delta (freed here) for choice i; a NULL delta makes
 * the usage chunk, without choices. paced: PIECE_ flags.
 */
static void chat_chunk(const struct plan *pl, struct pieces *p, int i, cJSON *delta,
                       const char *finish, int paced)
{
    cJSON *c = chat_head(pl, "chat.completion.chunk"),
          *choices = cJSON_AddArrayToObject(c, "choices");
    cJSON *ch;

    if (delta) {
        ch = jadd(choices, NULL, cJSON_CreateObject());
        cJSON_AddNumberToObject(ch, "index", i);
        jadd(ch, "delta", delta);
        jstr(ch, "finish_reason", finish);
    }
    if (pl->stream_usage)
        jadd(c, "usage", delta ? cJSON_CreateNull() : chat_usage(pl));
    piece_add(p, NULL, c, NULL, paced);
}

/* Returns a new delta object {"content": text}. */
static cJSON *chat_text(const char *text)
{
    cJSON *d = cJSON_CreateObject();

    cJSON_AddStringToObject(d, "content", text);
    return d;
}

/* Each step makes a chunk per choice; the stream ends as OpenAI's does, or with an error. */
static void chat_step(const struct plan *pl, struct pieces *p, int k)
{
    char a[MOCK_WORD_MAX + 1], b[MOCK_WORD_MAX + 1];
    cJSON *d;
    int i, parts;

    for (i = 0; i < pl->n; i++) {
        if (k == 0) {
            d = cJSON_CreateObject(); /* role first, as OpenAI's */
            cJSON_AddStringToObject(d, "role", "assistant");
            cJSON_AddStringToObject(d, "content", "");
            chat_chunk(pl, p, i, d, NULL, 0);
        } else if (k > pl->steps && pl->error_event) {
            if (i == 0)
                piece_add(p, NULL, NULL,
                          "data: {\"error\":{\"message\":\"mock: the model failed mid-stream\","
                          "\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
                          0);
        } else if (k > pl->steps) {
            chat_chunk(pl, p, i, cJSON_CreateObject(), chat_finish(pl), 0);
        } else if (!pl->tool) {
            parts = token_parts(pl, k - 1, a, b);
            chat_chunk(pl, p, i, chat_text(a), NULL, PIECE_DELTA | PIECE_TOKEN);
            if (parts == 2)
                chat_chunk(pl, p, i, chat_text(b), NULL, PIECE_DELTA);
        } else { /* a tool call: its name first, then its arguments */
            chat_chunk(
                pl, p, i,
                chat_call(cJSON_CreateObject(), pl, 0, k == 1, k == 1 ? "" : tool_args[k - 2]),
                NULL, PIECE_DELTA);
        }
    }
    if (k > pl->steps && !pl->error_event) {
        if (pl->stream_usage)
            chat_chunk(pl, p, 0, NULL, NULL, 0);
        piece_add(p, NULL, NULL, "data: [DONE]\n\n", 0);
    }
}

/*
 * Serves /v1/chat/completions for body (the caller's; read, not kept): a reply of ntok tokens
 * per choice under fault f and what m->st asks, or a 400 for a cap or n the API refuses.
 */
void ep_chat(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok, enum fault f)
{
    const cJSON *limit = jget(body, "max_completion_tokens"), *n = jget(body, "n");
    long long nv = 1;
    struct plan pl;
    char *text;

    if (cap_check(req, body, "max_tokens", 0, 0) ||
        cap_check(req, body, "max_completion_tokens", 0, 0))
        return;
    if (n && !cJSON_IsNull(n) && (!jint(n, &nv) || nv < 1 || nv > MOCK_MAX_N)) {
        reply_error_param(req, 0, 400, "Invalid 'n': expected an integer from 1 to 128", "n");
        return;
    }
    if (plan_failed(req, body, f, 0))
        return;
    plan_init(&pl, m, API_CHAT, body, ntok, limit ? limit : jget(body, "max_tokens"),
              plan_tool_name(body, 0), f);
    pl.n = (int)nv;
    plan_prompt(&pl, m, body, TOK_API_CHAT);
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
        usage_val(u, "input_tokens", pl, pl->prompt);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens",
                                (double)pl->cached);
        usage_val(u, "output_tokens", pl, plan_output(pl));
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"),
                                "reasoning_tokens", (double)pl->reasoning);
        usage_val(u, "total_tokens", pl, pl->prompt + plan_output(pl));
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

/*
 * Events carry sequence numbers: created 0, then one more for each event.
 * Before token k - 1 come k events and the extra deltas of the split words
 * before it (token_parts() splits tokens 1, 4, 7, ...).
 */
static void resp_step(const struct plan *pl, struct pieces *p, int k)
{
    int seq = k + (pl->split ? k / 3 : 0), parts;
    char a[MOCK_WORD_MAX + 1], b[MOCK_WORD_MAX + 1];
    cJSON *e, *r;
    char *text;

    if (k == 0) {
        e = sse_data("response.created", 0);
        jadd(e, "response", resp_object(pl, "", 0));
        piece_event(p, e, 0);
    } else if (k <= pl->steps) {
        parts = token_parts(pl, k - 1, a, b);
        piece_event(p, resp_text_event(pl, "response.output_text.delta", seq, "delta", a),
                    PIECE_DELTA | PIECE_TOKEN);
        if (parts == 2)
            piece_event(p, resp_text_event(pl, "response.output_text.delta", seq + 1, "delta", b),
                        PIECE_DELTA);
    } else if (pl->error_event) { /* failed, as OpenAI reports it: the response, with its error */
        e = sse_data("response.failed", seq);
        r = jadd(e, "response", resp_object(pl, "", 0));
        cJSON_ReplaceItemInObjectCaseSensitive(r, "status", cJSON_CreateString("failed"));
        cJSON_ReplaceItemInObjectCaseSensitive(r, "error", cJSON_CreateObject());
        cJSON_AddStringToObject(jget(r, "error"), "code", "server_error");
        cJSON_AddStringToObject(jget(r, "error"), "message", "mock: the model failed mid-stream");
        piece_event(p, e, 0);
    } else if ((text = mock_text(pl->ntok))) {
        piece_event(p, resp_text_event(pl, "response.output_text.done", seq, "text", text), 0);
        e = sse_data(pl->cut ? "response.incomplete" : "response.completed", seq + 1);
        jadd(e, "response", resp_object(pl, text, 1));
        piece_event(p, e, 0);
        free(text);
    }
}

/* Serves /v1/responses as ep_chat() serves chat; max_output_tokens below 16 gets 400. */
void ep_responses(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                  enum fault f)
{
    struct plan pl;
    char *text;

    if (cap_check(req, body, "max_output_tokens", MOCK_RESP_MIN_OUTPUT, 0) ||
        plan_failed(req, body, f, 0))
        return;
    plan_init(&pl, m, API_RESPONSES, body, ntok, jget(body, "max_output_tokens"), NULL, f);
    plan_prompt(&pl, m, body, TOK_API_RESPONSES);
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
    usage_note(m, &pl, pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, msg_step, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? msg_object(&pl, text) : NULL, f);
    free(text);
}
