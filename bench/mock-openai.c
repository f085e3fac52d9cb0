/* tokengate-mock: the OpenAI API: chat completions, responses, embeddings and models. */
#include "mock.h"

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

/*
 * Adds to obj the parallel calls' entry for position pos of call i (see
 * call_at()): in a stream (pos >= 0) with its index, and id, type and name
 * with arguments "" at pos 0, else argument piece pos - 1 alone; in a whole
 * reply (pos < 0) all of it. Returns obj.
 */
static cJSON *chat_calls_entry(cJSON *obj, const struct plan *pl, int i, int pos)
{
    cJSON *arr = jget(obj, "tool_calls"), *c, *fn;
    char id[64], args[MOCK_CALL_ARGS];

    if (!arr)
        arr = cJSON_AddArrayToObject(obj, "tool_calls");
    c = jadd(arr, NULL, cJSON_CreateObject());
    if (pos >= 0)
        cJSON_AddNumberToObject(c, "index", i);
    if (pos <= 0) {
        call_id(pl, i, id, sizeof(id));
        cJSON_AddStringToObject(c, "id", id);
        cJSON_AddStringToObject(c, "type", "function");
    }
    fn = cJSON_AddObjectToObject(c, "function");
    if (pos <= 0)
        cJSON_AddStringToObject(fn, "name", pl->calls[i]);
    if (pos < 0)
        call_args(pl, i, args);
    else if (pos == 0)
        args[0] = '\0';
    else
        call_piece(pl, i, pos - 1, args);
    cJSON_AddStringToObject(fn, "arguments", args);
    return obj;
}

/*
 * Returns the reply: pl->n choices, each with text as its message unless the
 * plan calls a tool (parallel calls: with the text before them, if any).
 */
static cJSON *chat_reply(const struct plan *pl, const char *text)
{
    cJSON *r = chat_head(pl, "chat.completion");
    cJSON *choices = cJSON_AddArrayToObject(r, "choices"), *ch, *msg;
    char *before = pl->ncalls && pl->text_tok ? mock_text(pl->text_tok) : NULL;
    int i, c;

    for (i = 0; i < pl->n; i++) {
        ch = jadd(choices, NULL, cJSON_CreateObject());
        cJSON_AddNumberToObject(ch, "index", i);
        msg = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        jstr(msg, "content", before ? before : text); /* null with a tool call */
        for (c = 0; c < pl->ncalls; c++)
            chat_calls_entry(msg, pl, c, -1);
        if (pl->tool && !pl->ncalls)
            chat_call(msg, pl, -1, 1, MOCK_TOOL_ARGS);
        cJSON_AddStringToObject(ch, "finish_reason", chat_finish(pl));
    }
    free(before);
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
    int i, parts, c, pos;

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
        } else if (!pl->tool || k <= pl->text_tok) {
            parts = token_parts(pl, k - 1, a, b);
            chat_chunk(pl, p, i, chat_text(a), NULL, PIECE_DELTA | PIECE_TOKEN);
            if (parts == 2)
                chat_chunk(pl, p, i, chat_text(b), NULL, PIECE_DELTA);
        } else if (pl->ncalls && call_at(pl, k - 1 - pl->text_tok, &c, &pos) == 0) {
            chat_chunk(pl, p, i, chat_calls_entry(cJSON_CreateObject(), pl, c, pos), NULL,
                       PIECE_DELTA);
        } else if (!pl->ncalls) { /* a tool call: its name first, then its arguments */
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
    if (images_check(req, body, 0))
        return;
    if (plan_failed(req, body, f, 0))
        return;
    plan_init(&pl, m, API_CHAT, body, ntok, limit ? limit : jget(body, "max_tokens"),
              plan_tool_name(body, 0), f);
    plan_calls(&pl, m, body, 0);
    plan_stop(&pl, body, 0, f);
    pl.n = (int)nv;
    plan_prompt(&pl, m, body, TOK_API_CHAT);
    const char *cls = classify_reply(m, &pl, body); /* a classification: one word */
    pl.stream_usage = pl.usage && cJSON_IsTrue(jget(jget(body, "stream_options"), "include_usage"));
    usage_note(m, &pl, cJSON_IsTrue(jget(body, "stream")) ? pl.stream_usage : pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, chat_step, f);
        return;
    }
    text = cls ? strdup(cls) : pl.tool ? NULL : mock_text(pl.ntok);
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

/* ---- OpenAI embeddings and models ---- */

/* Returns 8 numbers derived from an FNV-1a hash of in (a string or an array of token ids). */
static cJSON *emb_vector(const cJSON *in)
{
    const unsigned char *s = (const unsigned char *)cJSON_GetStringValue(in);
    size_t i, len = s ? strlen((const char *)s) : 0;
    uint64_t h = 1469598103934665603ULL;
    const cJSON *e;
    double v[8];
    long long id;

    for (i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    cJSON_ArrayForEach(e, jarr(in)) h = (h ^ (uint64_t)(jint(e, &id) ? id : 0)) * 1099511628211ULL;
    for (i = 0; i < NELEM(v); i++) /* multiples of 1/128 print exactly */
        v[i] = ((double)((h >> (8 * i)) & 0xff) - 128.0) / 128.0;
    return cJSON_CreateDoubleArray(v, (int)NELEM(v));
}

void ep_embeddings(struct mock *m, struct evhttp_request *req, const cJSON *body,
                          enum fault f)
{
    const cJSON *in = jget(body, "input"), *e;
    const char *model = cJSON_GetStringValue(jget(body, "model"));
    long long id, prompt = m->st.skew; /* a string counts its tokens, a token array its length */
    const tok_enc *enc = tok_encoding(tok_encoding_for_model(model));
    int single = cJSON_IsString(in) || (jarr(in) && jint(in->child, &id));
    size_t i, n = single ? 1 : (size_t)cJSON_GetArraySize(jarr(in));
    cJSON *r = cJSON_CreateObject(), *data, *item, *u;

    cJSON_AddStringToObject(r, "object", "list");
    data = cJSON_AddArrayToObject(r, "data");
    e = single ? in : jarr(in) ? in->child : NULL;
    for (i = 0; i < n; i++, e = e->next) {
        if (!cJSON_IsString(e) && !cJSON_IsArray(e))
            break;
        if (cJSON_IsString(e)) {
            uint64_t k = 0;
            if (enc != NULL)
                tok_count(enc, e->valuestring, strlen(e->valuestring), 0, &k);
            prompt += (long long)k;
        } else
            prompt += (long long)cJSON_GetArraySize(e);
        item = jadd(data, NULL, cJSON_CreateObject());
        cJSON_AddStringToObject(item, "object", "embedding");
        cJSON_AddNumberToObject(item, "index", (double)i);
        jadd(item, "embedding", emb_vector(e));
    }
    if (n == 0 || i < n) {
        cJSON_Delete(r);
        reply_error(req, 0, 400, "input must be a string or an array of strings or tokens");
        return;
    }
    cJSON_AddStringToObject(r, "model", model ? model : "text-embedding-3-small");
    if (f != F_NO_USAGE) {
        u = cJSON_AddObjectToObject(r, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
        cJSON_AddNumberToObject(u, "total_tokens", prompt);
    }
    deliver_json(m, req, r, f);
}

static cJSON *models_reply(void)
{
    static const char *const ids[] = {"mock-model", "gpt-4o-mini", "text-embedding-3-small",
                                      "claude-3-5-haiku-latest"};
    cJSON *r = cJSON_CreateObject(), *data, *mo;
    size_t i;

    cJSON_AddStringToObject(r, "object", "list");
    data = cJSON_AddArrayToObject(r, "data");
    for (i = 0; i < NELEM(ids); i++) {
        mo = jadd(data, NULL, cJSON_CreateObject());
        cJSON_AddStringToObject(mo, "id", ids[i]);
        cJSON_AddStringToObject(mo, "object", "model");
        cJSON_AddNumberToObject(mo, "created", 1700000000);
        cJSON_AddStringToObject(mo, "owned_by", "tokengate-mock");
    }
    return r;
}

/* Serves GET /v1/models: the mock's model list, under fault f. */
void ep_models(struct mock *m, struct evhttp_request *req, enum fault f)
{
    deliver_json(m, req, models_reply(), f);
}
