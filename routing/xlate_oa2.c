/*
 * xlate_oa2: the client speaks OpenAI chat completions, the provider Anthropic Messages: the
 * answer's way back (a whole message, an error, a stream event by event). The request is in
 * xlate_oa.c.
 *
 * Usage: OpenAI's prompt_tokens counts all input, so it is Anthropic's input_tokens +
 * cache_read_input_tokens + cache_creation_input_tokens; prompt_tokens_details.cached_tokens
 * is the cache reads (what OpenAI bills as cached). Thinking blocks have no place in a chat
 * completion and are left out; so are server tool blocks and citations.
 *
 * A stream: message_start makes the first chunk (role), text deltas content deltas, a tool_use
 * block a tool call whose index counts the tool_use blocks in order of appearance (a text
 * block is no tool call), each input_json_delta an arguments delta as it comes, message_delta
 * the finish_reason chunk (and the usage chunk with no choices when the client asked for
 * stream_options.include_usage), message_stop "[DONE]". At most XLATE_MAX_TOOLS tool calls: a
 * further tool_use block ends the stream with an error chunk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/xlate-int.h"

#define OA_ID_CAP 128
#define OA_MODEL_CAP 256

static double num(const cJSON *obj, const char *key)
{
    const cJSON *v = XGET(obj, key);

    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? v->valuedouble : 0;
}

/* OpenAI's usage object for an Anthropic usage object. */
static cJSON *usage_of(const cJSON *us)
{
    double in = num(us, "input_tokens"), out = num(us, "output_tokens");
    double cr = num(us, "cache_read_input_tokens"), cw = num(us, "cache_creation_input_tokens");
    cJSON *u = cJSON_CreateObject(), *d;

    if (xlate_add_num(u, "prompt_tokens", in + cr + cw) < 0 ||
        xlate_add_num(u, "completion_tokens", out) < 0 ||
        xlate_add_num(u, "total_tokens", in + cr + cw + out) < 0)
        goto fail;
    d = cJSON_CreateObject();
    if (xlate_add(u, "prompt_tokens_details", d) < 0 || xlate_add_num(d, "cached_tokens", cr) < 0)
        goto fail;
    return u;
fail:
    cJSON_Delete(u);
    return NULL;
}

/* "chatcmpl-" and the request's id, else the message's. */
static void chat_id(char *buf, size_t cap, const struct xlate_ctx *ctx, const char *msg_id)
{
    const char *id = ctx->request_id != NULL && ctx->request_id[0] != '\0' ? ctx->request_id
                     : msg_id != NULL                                      ? msg_id
                                                                           : "0";
    snprintf(buf, cap, "chatcmpl-%s", id);
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *v = XGET(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A tool_use block as an OpenAI tool call. */
static cJSON *tool_call(const cJSON *b)
{
    cJSON *c = cJSON_CreateObject(), *fn;
    const cJSON *in = XGET(b, "input");
    char *args;
    int rc;

    if (xlate_add_str(c, "id", str(b, "id") != NULL ? str(b, "id") : "") < 0 ||
        xlate_add_str(c, "type", "function") < 0)
        goto fail;
    fn = cJSON_CreateObject();
    if (xlate_add(c, "function", fn) < 0 ||
        xlate_add_str(fn, "name", str(b, "name") != NULL ? str(b, "name") : "") < 0)
        goto fail;
    args = in != NULL ? cJSON_PrintUnformatted(in) : NULL;
    rc = xlate_add_str(fn, "arguments", args != NULL ? args : "{}");
    if (args != NULL)
        cJSON_free(args);
    if (rc < 0 || (in != NULL && args == NULL))
        goto fail;
    return c;
fail:
    cJSON_Delete(c);
    return NULL;
}

static int is_json_tool(const cJSON *b)
{
    const char *t = str(b, "type"), *n = str(b, "name");

    return t != NULL && strcmp(t, "tool_use") == 0 && n != NULL &&
           strcmp(n, XLATE_OA_JSON_TOOL) == 0;
}

/* The text of block b for the message's content: a text block's, or the JSON text of the
 * input of the tool that stands for response_format (*printed: to be freed). */
static const char *text_of(const cJSON *b, char **printed)
{
    const char *t = str(b, "type");

    *printed = NULL;
    if (t != NULL && strcmp(t, "text") == 0)
        return str(b, "text");
    if (is_json_tool(b) && XGET(b, "input") != NULL)
        return *printed = cJSON_PrintUnformatted(XGET(b, "input"));
    return NULL;
}

/* The message: the text blocks' text joined, tool_use blocks as tool_calls. *calls_out: how
 * many tool calls it has. */
static cJSON *message_of(const cJSON *content, int *calls_out)
{
    cJSON *m = cJSON_CreateObject(), *calls = NULL;
    const cJSON *b;
    size_t len = 0, total;
    char *text = NULL, *printed;
    const char *s;
    int rc;

    *calls_out = 0;
    cJSON_ArrayForEach(b, content)
    {
        if ((s = text_of(b, &printed)) != NULL)
            len += strlen(s);
        cJSON_free(printed);
    }
    total = len;
    if (len > 0 && (text = cJSON_malloc(len + 1)) == NULL)
        goto fail;
    len = 0;
    cJSON_ArrayForEach(b, content)
    {
        const char *t = str(b, "type");
        size_t n;

        if ((s = text_of(b, &printed)) != NULL) {
            n = strlen(s);
            if (len + n > total) { /* a print that differs from the first pass's */
                cJSON_free(printed);
                goto fail;
            }
            if (n > 0)
                memcpy(text + len, s, n);
            len += n;
        } else if (is_json_tool(b)) {
            goto fail; /* its input did not print: out of memory */
        } else if (t != NULL && strcmp(t, "tool_use") == 0) {
            if (calls == NULL && (calls = cJSON_CreateArray()) == NULL)
                goto fail;
            if (xlate_append(calls, tool_call(b)) < 0)
                goto fail;
            (*calls_out)++;
        }
        cJSON_free(printed);
        printed = NULL;
    }
    if (text != NULL)
        text[len] = '\0';
    rc = xlate_add_str(m, "role", "assistant") |
         xlate_add(m, "content", text != NULL ? cJSON_CreateString(text) : cJSON_CreateNull()) |
         xlate_add(m, "refusal", cJSON_CreateNull());
    if (text != NULL)
        cJSON_free(text);
    text = NULL;
    if (rc < 0)
        goto fail;
    if (calls != NULL) {
        cJSON *c = calls;
        calls = NULL;
        if (xlate_add(m, "tool_calls", c) < 0)
            goto fail;
    }
    return m;
fail:
    if (text != NULL)
        cJSON_free(text);
    cJSON_Delete(calls);
    cJSON_Delete(m);
    return NULL;
}

/* finish_reason for stop_reason: a forced response_format tool's tool_use is a plain stop. */
static const char *finish_of(const char *stop_reason, int calls, int json)
{
    if (json && calls == 0 && stop_reason != NULL && strcmp(stop_reason, "tool_use") == 0)
        return "stop";
    return xlate_finish_reason(stop_reason);
}

cJSON *xlate_oa_response(const struct xlate_ctx *ctx, const cJSON *doc)
{
    const cJSON *content = XGET(doc, "content");
    const char *type = str(doc, "type");
    cJSON *out, *choices, *ch, *msg, *us;
    const cJSON *b;
    char id[OA_ID_CAP];
    int calls = 0, json = 0;

    if (type == NULL || strcmp(type, "message") != 0 || !cJSON_IsArray(content))
        return NULL;
    chat_id(id, sizeof(id), ctx, str(doc, "id"));
    out = cJSON_CreateObject();
    if (xlate_add_str(out, "id", id) < 0 || xlate_add_str(out, "object", "chat.completion") < 0 ||
        xlate_add_num(out, "created", (double)ctx->created) < 0 ||
        xlate_add_str(out, "model",
                      ctx->client_model != NULL ? ctx->client_model : (str(doc, "model") ?: "")) <
            0)
        goto fail;
    choices = cJSON_CreateArray();
    if (xlate_add(out, "choices", choices) < 0)
        goto fail;
    ch = cJSON_CreateObject();
    if (xlate_append(choices, ch) < 0 || xlate_add_num(ch, "index", 0) < 0)
        goto fail;
    msg = message_of(content, &calls);
    cJSON_ArrayForEach(b, content) json |= is_json_tool(b);
    if (xlate_add(ch, "message", msg) < 0 || xlate_add(ch, "logprobs", cJSON_CreateNull()) < 0 ||
        xlate_add_str(ch, "finish_reason", finish_of(str(doc, "stop_reason"), calls, json)) < 0)
        goto fail;
    us = usage_of(XGET(doc, "usage"));
    if (xlate_add(out, "usage", us) < 0)
        goto fail;
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

cJSON *xlate_oa_error(const struct xlate_ctx *ctx, int status, const cJSON *doc, int *client_status)
{
    const char *msg = xlate_error_message(doc);
    const char *atype = str(XGET(doc, "error"), "type");
    char fallback[96];

    (void)ctx;
    *client_status = status == 529 ? 503 : status;
    if (msg == NULL) {
        snprintf(fallback, sizeof(fallback), "the provider answered with status %d", status);
        msg = fallback;
    }
    return xlate_openai_error_doc(msg, xlate_openai_error_type(*client_status),
                                  status == 429 ? "rate_limit_exceeded" : atype);
}

/* --- the stream --- */

struct oa_stream {
    struct xlate_stream base;
    char id[OA_ID_CAP];
    char model[OA_MODEL_CAP];
    int64_t created;
    int include_usage;
    int have_id;       /* the request's id was given: message_start's does not replace it */
    int started, done; /* the role chunk went out; [DONE] (or an error) went out */
    double input;      /* message_start's input tokens, cache reads and writes */
    double cache_read;
    double cache_write;
    int ntools;
    int json_on, json_block;       /* the response_format tool's block started; its content index */
    int block_of[XLATE_MAX_TOOLS]; /* the content index of each tool call, in order */
};

struct xlate_stream *xlate_oa_stream_new(const struct xlate_ctx *ctx)
{
    struct oa_stream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->base.dir = XLATE_OPENAI_TO_ANTHROPIC;
    s->have_id = ctx->request_id != NULL && ctx->request_id[0] != '\0';
    chat_id(s->id, sizeof(s->id), ctx, NULL);
    snprintf(s->model, sizeof(s->model), "%s", ctx->client_model != NULL ? ctx->client_model : "");
    s->created = ctx->created;
    s->include_usage = ctx->include_usage;
    return &s->base;
}

void xlate_oa_stream_free(struct xlate_stream *s)
{
    free(s);
}

/* A chunk with its one choice (NULL: no choices, for the usage chunk); *delta gets the
 * choice's delta to fill. */
static cJSON *chunk(const struct oa_stream *s, cJSON **delta, const char *finish)
{
    cJSON *c = cJSON_CreateObject(), *choices, *ch;

    if (xlate_add_str(c, "id", s->id) < 0 ||
        xlate_add_str(c, "object", "chat.completion.chunk") < 0 ||
        xlate_add_num(c, "created", (double)s->created) < 0 ||
        xlate_add_str(c, "model", s->model) < 0)
        goto fail;
    choices = cJSON_CreateArray();
    if (xlate_add(c, "choices", choices) < 0)
        goto fail;
    if (delta == NULL)
        return c;
    ch = cJSON_CreateObject();
    if (xlate_append(choices, ch) < 0 || xlate_add_num(ch, "index", 0) < 0)
        goto fail;
    *delta = cJSON_CreateObject();
    if (xlate_add(ch, "delta", *delta) < 0 || xlate_add(ch, "logprobs", cJSON_CreateNull()) < 0 ||
        xlate_add(ch, "finish_reason",
                  finish != NULL ? cJSON_CreateString(finish) : cJSON_CreateNull()) < 0)
        goto fail;
    return c;
fail:
    cJSON_Delete(c);
    if (delta != NULL)
        *delta = NULL; /* it went with c */
    return NULL;
}

/* Emits c (taken over) as a data line. */
static int send(cJSON *c, xlate_emit_fn *emit, void *arg)
{
    int rc = c != NULL ? xlate_emit_json(emit, arg, NULL, c) : -1;

    cJSON_Delete(c);
    return rc;
}

static int role_chunk(struct oa_stream *s, xlate_emit_fn *emit, void *arg)
{
    cJSON *d = NULL, *c = chunk(s, &d, NULL);

    s->started = 1;
    if (xlate_add_str(d, "role", "assistant") < 0 || xlate_add_str(d, "content", "") < 0) {
        cJSON_Delete(c);
        return -1;
    }
    return send(c, emit, arg);
}

static int content_chunk(struct oa_stream *s, const char *text, xlate_emit_fn *emit, void *arg)
{
    cJSON *d = NULL, *c;

    if (text == NULL || text[0] == '\0')
        return 0;
    c = chunk(s, &d, NULL);
    if (xlate_add_str(d, "content", text) < 0) {
        cJSON_Delete(c);
        return -1;
    }
    return send(c, emit, arg);
}

/* A tool_calls delta for call k: with id and name when it starts, else the arguments. */
static int tool_chunk(struct oa_stream *s, int k, const char *id, const char *name,
                      const char *args, xlate_emit_fn *emit, void *arg)
{
    cJSON *d = NULL, *c = chunk(s, &d, NULL), *calls = cJSON_CreateArray(), *tc, *fn;

    if (xlate_add(d, "tool_calls", calls) < 0)
        goto fail;
    tc = cJSON_CreateObject();
    if (xlate_append(calls, tc) < 0 || xlate_add_num(tc, "index", k) < 0)
        goto fail;
    if (id != NULL &&
        (xlate_add_str(tc, "id", id) < 0 || xlate_add_str(tc, "type", "function") < 0))
        goto fail;
    fn = cJSON_CreateObject();
    if (xlate_add(tc, "function", fn) < 0 ||
        (name != NULL && xlate_add_str(fn, "name", name) < 0) ||
        xlate_add_str(fn, "arguments", args) < 0)
        goto fail;
    return send(c, emit, arg);
fail:
    cJSON_Delete(c);
    return -1;
}

static int error_chunk(struct oa_stream *s, const char *msg, const char *type, const char *code,
                       xlate_emit_fn *emit, void *arg)
{
    s->done = 1;
    return send(xlate_openai_error_doc(msg, type, code), emit, arg);
}

/* An event's content block index, -1 when it has none that fits an int. */
static int index_of(const cJSON *data)
{
    const cJSON *v = XGET(data, "index");

    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9 ? (int)v->valuedouble
                                                                            : -1;
}

/* The tool call index of content block idx, -1 for none. */
static int tool_of(const struct oa_stream *s, int idx)
{
    for (int k = s->ntools - 1; k >= 0; k--)
        if (s->block_of[k] == idx)
            return k;
    return -1;
}

static int block_start(struct oa_stream *s, const cJSON *data, xlate_emit_fn *emit, void *arg)
{
    const cJSON *b = XGET(data, "content_block");
    const char *type = str(b, "type");
    int idx = index_of(data);
    const cJSON *in;
    char *args;
    int rc;

    if (type != NULL && strcmp(type, "text") == 0)
        return content_chunk(s, str(b, "text"), emit, arg);
    if (type == NULL || strcmp(type, "tool_use") != 0)
        return 0;          /* thinking, server tools: nothing in a chat completion */
    if (is_json_tool(b)) { /* its input is the content */
        s->json_on = 1;
        s->json_block = idx;
        return 0;
    }
    if (s->ntools == XLATE_MAX_TOOLS)
        return error_chunk(s, "the answer has more tool calls than the gate translates (128)",
                           "server_error", "too_many_tool_calls", emit, arg);
    s->block_of[s->ntools] = idx;
    in = XGET(b, "input");
    /* the input comes in input_json_delta events, after an empty {} here; an input given
     * whole at the start goes out whole */
    args = cJSON_IsObject(in) && in->child != NULL ? cJSON_PrintUnformatted(in) : NULL;
    if (cJSON_IsObject(in) && in->child != NULL && args == NULL)
        return -1;
    rc = tool_chunk(s, s->ntools++, str(b, "id") != NULL ? str(b, "id") : "",
                    str(b, "name") != NULL ? str(b, "name") : "", args != NULL ? args : "", emit,
                    arg);
    if (args != NULL)
        cJSON_free(args);
    return rc;
}

static int block_delta(struct oa_stream *s, const cJSON *data, xlate_emit_fn *emit, void *arg)
{
    const cJSON *d = XGET(data, "delta");
    const char *type = str(d, "type");
    const char *pj = str(d, "partial_json");
    int k;

    if (type == NULL)
        return 0;
    if (strcmp(type, "text_delta") == 0)
        return content_chunk(s, str(d, "text"), emit, arg);
    if (strcmp(type, "input_json_delta") != 0 || pj == NULL || pj[0] == '\0')
        return 0;
    if (s->json_on && index_of(data) == s->json_block && s->json_block >= 0)
        return content_chunk(s, pj, emit, arg);
    k = tool_of(s, index_of(data));
    if (k < 0 || index_of(data) < 0)
        return 0; /* a delta for no tool_use block that started */
    return tool_chunk(s, k, NULL, NULL, pj, emit, arg);
}

/* obj's key when it has a number there, else dflt. */
static double pick(const cJSON *obj, const char *key, double dflt)
{
    return cJSON_IsNumber(XGET(obj, key)) ? num(obj, key) : dflt;
}

static int message_delta(struct oa_stream *s, const cJSON *data, xlate_emit_fn *emit, void *arg)
{
    const cJSON *us = XGET(data, "usage");
    cJSON *d = NULL, *c, *u, *all;

    c = chunk(s, &d, finish_of(str(XGET(data, "delta"), "stop_reason"), s->ntools, s->json_on));
    if (send(c, emit, arg) < 0)
        return -1;
    if (!s->include_usage)
        return 0;
    /* message_delta's usage is cumulative; its input figures, when present, are the final
     * ones, else message_start's stand */
    all = cJSON_CreateObject();
    if (xlate_add_num(all, "input_tokens", pick(us, "input_tokens", s->input)) < 0 ||
        xlate_add_num(all, "cache_read_input_tokens",
                      pick(us, "cache_read_input_tokens", s->cache_read)) < 0 ||
        xlate_add_num(all, "cache_creation_input_tokens",
                      pick(us, "cache_creation_input_tokens", s->cache_write)) < 0 ||
        xlate_add_num(all, "output_tokens", num(us, "output_tokens")) < 0) {
        cJSON_Delete(all);
        return -1;
    }
    u = usage_of(all);
    cJSON_Delete(all);
    c = chunk(s, NULL, NULL);
    if (xlate_add(c, "usage", u) < 0) {
        cJSON_Delete(c);
        return -1;
    }
    return send(c, emit, arg);
}

int xlate_oa_stream_event(struct xlate_stream *base, const char *name, const cJSON *data,
                          const char *raw, size_t raw_len, xlate_emit_fn *emit, void *arg)
{
    struct oa_stream *s = (struct oa_stream *)base;

    (void)raw, (void)raw_len;
    if (s->done || !cJSON_IsObject(data))
        return 0; /* after [DONE] or an error nothing more goes out; a ping's or a comment's data */
    if (name[0] == '\0' && str(data, "type") != NULL)
        name = str(data, "type");
    if (strcmp(name, "message_start") == 0) {
        const cJSON *m = XGET(data, "message"), *us = XGET(m, "usage");
        if (!s->have_id && str(m, "id") != NULL)
            snprintf(s->id, sizeof(s->id), "chatcmpl-%s", str(m, "id"));
        s->input = num(us, "input_tokens");
        s->cache_read = num(us, "cache_read_input_tokens");
        s->cache_write = num(us, "cache_creation_input_tokens");
        return s->started ? 0 : role_chunk(s, emit, arg);
    }
    if (!s->started && strcmp(name, "ping") != 0 && strcmp(name, "error") != 0 &&
        role_chunk(s, emit, arg) < 0)
        return -1;
    if (strcmp(name, "content_block_start") == 0)
        return block_start(s, data, emit, arg);
    if (strcmp(name, "content_block_delta") == 0)
        return block_delta(s, data, emit, arg);
    if (strcmp(name, "message_delta") == 0)
        return message_delta(s, data, emit, arg);
    if (strcmp(name, "message_stop") == 0) {
        s->done = 1;
        return xlate_emit_data(emit, arg, "[DONE]");
    }
    if (strcmp(name, "error") == 0) {
        const char *t = str(XGET(data, "error"), "type");
        int status = t != NULL && strcmp(t, "rate_limit_error") == 0        ? 429
                     : t != NULL && strcmp(t, "invalid_request_error") == 0 ? 400
                                                                            : 503;
        const char *msg = xlate_error_message(data);
        return error_chunk(s, msg != NULL ? msg : "the provider's stream failed",
                           xlate_openai_error_type(status), t, emit, arg);
    }
    return 0; /* ping, content_block_stop, and what a later API version adds */
}

int xlate_oa_stream_end(struct xlate_stream *base, xlate_emit_fn *emit, void *arg)
{
    struct oa_stream *s = (struct oa_stream *)base;

    if (s->done)
        return 0;
    s->done = 1;
    return xlate_emit_data(emit, arg, "[DONE]");
}
