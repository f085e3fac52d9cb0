/*
 * xlate_ao2: the client speaks Anthropic Messages, the provider OpenAI chat completions: the
 * answer on the way back (the request is in xlate_ao.c). See xlate.h and xlate-int.h.
 *
 * A whole answer: chat.completion -> message (id "msg_" + the request id, the client's model
 * name); the first choice's content -> a text block, its refusal -> a text block and stop_reason
 * "refusal", its tool calls -> tool_use blocks (id kept, input parsed from the arguments).
 * Arguments that are not a JSON object (a model cut off mid-call, a broken provider) become a
 * text block that says so and carries them: a tool is never run with made-up input, and
 * stop_reason is not "tool_use" when no tool call is left. finish_reason -> stop_reason by
 * xlate_stop_reason; "stop" with a matched stop string (vLLM and others report it in the
 * choice's "stop_reason"; OpenAI does not say) -> "stop_sequence". Usage: input_tokens =
 * prompt_tokens - cached_tokens, cache_read_input_tokens = cached_tokens, output_tokens =
 * completion_tokens, so that input + cache reads = prompt_tokens as both APIs count.
 *
 * A stream, event by event (nothing held but a few counters per tool call):
 *   first chunk              -> message_start (usage 0: the numbers come in message_delta)
 *   delta.content / refusal  -> a text block (started on the first non-empty piece), text_delta
 *   delta.tool_calls[k]      -> a new index k: the open text block stops, content_block_start
 *                               tool_use (id, name, input {}); each arguments piece ->
 *                               input_json_delta with that call's own block index
 *   finish_reason            -> content_block_stop of every open block, in block order
 *   usage chunk or [DONE]    -> message_delta (stop_reason, usage), message_stop
 *   {"error": ...}           -> event: error, and the stream is over
 * A tool call's block stops as soon as its arguments form a whole JSON value and a later block
 * has started (in OpenAI's order, that is when the next call starts, as Anthropic does it); a
 * call whose arguments are not whole yet stays open, so that a provider which sends a pieces of
 * an earlier call after a later one started still has them land in the right block.
 */
#include "routing/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/xlate-int.h"

/* ---- usage and stop reasons, shared by the whole answer and the stream ------------------ */

struct ao_usage {
    int have;
    double prompt, cached, completion;
};

static double count(const cJSON *obj, const char *key)
{
    const cJSON *v = XGET(obj, key);

    return cJSON_IsNumber(v) && v->valuedouble > 0 ? v->valuedouble : 0;
}

static void read_usage(const cJSON *us, struct ao_usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    u->have = 1;
    u->prompt = count(us, "prompt_tokens");
    u->completion = count(us, "completion_tokens");
    u->cached = count(XGET(us, "prompt_tokens_details"), "cached_tokens");
    if (u->cached > u->prompt)
        u->cached = u->prompt;
}

/* Anthropic's usage object; input_tokens 0 and output_tokens when nothing was reported (a
 * stream's start, or one cut short). */
static cJSON *usage_json(const struct ao_usage *u)
{
    cJSON *o = cJSON_CreateObject();

    if (xlate_add_num(o, "input_tokens", u->prompt - u->cached) < 0 ||
        (u->have && (xlate_add_num(o, "cache_creation_input_tokens", 0) < 0 ||
                     xlate_add_num(o, "cache_read_input_tokens", u->cached) < 0)) ||
        xlate_add_num(o, "output_tokens", u->have ? u->completion : 0) < 0) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* stop_reason for a choice's finish_reason; *seq the stop string when one is known. */
static const char *stop_reason(const cJSON *choice, int refusal, const char **seq)
{
    const cJSON *fr = XGET(choice, "finish_reason"), *sr = XGET(choice, "stop_reason");
    const char *r = xlate_stop_reason(cJSON_IsString(fr) ? fr->valuestring : NULL);

    *seq = NULL;
    if (strcmp(r, "end_turn") == 0 && refusal)
        return "refusal";
    if (cJSON_IsString(fr) && strcmp(fr->valuestring, "stop") == 0 && cJSON_IsString(sr)) {
        *seq = sr->valuestring;
        return "stop_sequence";
    }
    return r;
}

static int add_str_or_null(cJSON *o, const char *key, const char *s)
{
    return xlate_add(o, key, s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull());
}

/* ---- the whole answer ------------------------------------------------------------------ */

/* A tool call -> a tool_use block, or (arguments not an object) a text block saying so.
 * *used is set when it is a tool_use. */
static cJSON *tool_block(const cJSON *call, int *used)
{
    const cJSON *fn = XGET(call, "function"), *id = XGET(call, "id");
    const cJSON *name = XGET(fn, "name"), *args = XGET(fn, "arguments");
    const char *a = cJSON_IsString(args) ? args->valuestring : "";
    const char *n = cJSON_IsString(name) ? name->valuestring : "";
    cJSON *input = cJSON_Parse(*a != '\0' ? a : "{}"), *b;

    *used = 0;
    if (!cJSON_IsObject(input)) {
        size_t len = strlen(a) + strlen(n) + 128;
        char *t = malloc(len);
        cJSON_Delete(input);
        if (t == NULL)
            return NULL;
        snprintf(t, len, "[a call of tool '%s' whose arguments are not a JSON object: %s]", n, a);
        b = xlate_text_block(t);
        free(t);
        return b;
    }
    b = cJSON_CreateObject();
    if (xlate_add_str(b, "type", "tool_use") < 0 ||
        xlate_add_str(b, "id", cJSON_IsString(id) ? id->valuestring : "") < 0 ||
        xlate_add_str(b, "name", n) < 0) {
        cJSON_Delete(b);
        cJSON_Delete(input);
        return NULL;
    }
    if (xlate_add(b, "input", input) < 0) {
        cJSON_Delete(b);
        return NULL;
    }
    *used = 1;
    return b;
}

static int set_message_head(cJSON *m, const char *request_id, const char *model)
{
    char id[160];

    snprintf(id, sizeof(id), "msg_%s", request_id != NULL ? request_id : "0");
    return xlate_add_str(m, "id", id) < 0 || xlate_add_str(m, "type", "message") < 0 ||
                   xlate_add_str(m, "role", "assistant") < 0 ||
                   xlate_add_str(m, "model", model != NULL ? model : "") < 0
               ? -1
               : 0;
}

cJSON *xlate_ao_response(const struct xlate_ctx *ctx, const cJSON *doc)
{
    const cJSON *choice = cJSON_GetArrayItem(XGET(doc, "choices"), 0);
    const cJSON *msg = XGET(choice, "message"), *v, *call;
    const char *stop, *seq;
    struct ao_usage u = {0};
    cJSON *out, *content;
    int refusal = 0, tools = 0, used;

    if (!cJSON_IsObject(msg))
        return NULL;
    out = cJSON_CreateObject();
    if (out == NULL || set_message_head(out, ctx->request_id, ctx->client_model) < 0 ||
        (content = cJSON_AddArrayToObject(out, "content")) == NULL)
        goto fail;
    v = XGET(msg, "content");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0' &&
        xlate_append(content, xlate_text_block(v->valuestring)) < 0)
        goto fail;
    v = XGET(msg, "refusal");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        refusal = 1;
        if (xlate_append(content, xlate_text_block(v->valuestring)) < 0)
            goto fail;
    }
    cJSON_ArrayForEach(call, XGET(msg, "tool_calls"))
    {
        if (xlate_append(content, tool_block(call, &used)) < 0)
            goto fail;
        tools += used;
    }
    stop = stop_reason(choice, refusal, &seq);
    if (strcmp(stop, "tool_use") == 0 && tools == 0)
        stop = "end_turn"; /* no call is left to make */
    read_usage(XGET(doc, "usage"), &u);
    if (xlate_add_str(out, "stop_reason", stop) < 0 ||
        add_str_or_null(out, "stop_sequence", seq) < 0 ||
        xlate_add(out, "usage", usage_json(&u)) < 0)
        goto fail;
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* ---- errors ---------------------------------------------------------------------------- */

cJSON *xlate_ao_error(const struct xlate_ctx *ctx, int status, const cJSON *doc, int *client_status)
{
    const char *msg = xlate_error_message(doc);
    char fallback[80];

    (void)ctx;
    if (msg == NULL) {
        snprintf(fallback, sizeof(fallback), "the provider answered with status %d", status);
        msg = fallback;
    }
    *client_status = status == 503 ? 529 : status;
    return xlate_anthropic_error_doc(xlate_anthropic_error_type(status), msg);
}

/* The Anthropic error type of an OpenAI error object met in a stream (no status there). */
static const char *stream_error_type(const cJSON *e)
{
    const cJSON *t = XGET(e, "type"), *c = XGET(e, "code");
    const char *s[2] = {cJSON_IsString(t) ? t->valuestring : "",
                        cJSON_IsString(c) ? c->valuestring : ""};

    for (int i = 0; i < 2; i++) {
        if (strstr(s[i], "rate_limit") != NULL)
            return "rate_limit_error";
        if (strstr(s[i], "overloaded") != NULL || strstr(s[i], "unavailable") != NULL)
            return "overloaded_error";
    }
    if (strcmp(s[0], "invalid_request_error") == 0)
        return "invalid_request_error";
    return "api_error";
}

/* ---- the stream ------------------------------------------------------------------------ */

enum ao_phase {
    AO_NEW,      /* nothing sent yet */
    AO_BODY,     /* message_start sent */
    AO_FINISHED, /* finish_reason seen, blocks stopped: message_delta waits for the usage */
    AO_DONE,     /* message_stop or an error sent: nothing more */
};

/* One tool call of the stream, by OpenAI's index; its arguments are never held: a scanner of
 * their JSON says when they are whole. */
struct ao_tool {
    int block; /* its content block's index; -1 before it started */
    int open;
    int depth;
    unsigned char in_str, esc, began, whole;
};

struct ao_stream {
    struct xlate_stream base; /* first: xlate.c dispatches on base.dir */
    enum ao_phase phase;
    char *request_id, *model;
    int nblocks;    /* content blocks started */
    int text_block; /* the open text block's index, or -1 */
    int refusal;    /* refusal text was seen */
    const char *stop;
    char *stop_seq;
    struct ao_usage usage;
    struct ao_tool tools[XLATE_MAX_TOOLS];
    int last_tool; /* the OpenAI index of the last call started, -1 */
};

struct xlate_stream *xlate_ao_stream_new(const struct xlate_ctx *ctx)
{
    struct ao_stream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->base.dir = XLATE_ANTHROPIC_TO_OPENAI;
    s->text_block = -1;
    s->last_tool = -1;
    for (int i = 0; i < XLATE_MAX_TOOLS; i++)
        s->tools[i].block = -1;
    s->request_id = strdup(ctx->request_id != NULL ? ctx->request_id : "0");
    s->model = strdup(ctx->client_model != NULL ? ctx->client_model : "");
    if (s->request_id == NULL || s->model == NULL) {
        xlate_ao_stream_free(&s->base);
        return NULL;
    }
    return &s->base;
}

void xlate_ao_stream_free(struct xlate_stream *base)
{
    struct ao_stream *s = (struct ao_stream *)base;

    if (s == NULL)
        return;
    free(s->request_id);
    free(s->model);
    free(s->stop_seq);
    free(s);
}

/* Where the events go, with the stream. */
struct out {
    struct ao_stream *s;
    xlate_emit_fn *emit;
    void *arg;
};

/* An event's data, {"type": name} to begin with (first, as Anthropic sends it). */
static cJSON *event(const char *name)
{
    cJSON *ev = cJSON_CreateObject();

    if (xlate_add_str(ev, "type", name) < 0) {
        cJSON_Delete(ev);
        return NULL;
    }
    return ev;
}

/* {"type": name, "index": index} */
static cJSON *indexed(const char *name, int index)
{
    cJSON *ev = event(name);

    if (xlate_add_num(ev, "index", index) < 0) {
        cJSON_Delete(ev);
        return NULL;
    }
    return ev;
}

/* Emits ev (from event()) as an event of its type; ev is deleted. */
static int out_send(struct out *o, cJSON *ev)
{
    const cJSON *t = XGET(ev, "type");
    int rc = -1;

    if (cJSON_IsString(t))
        rc = xlate_emit_json(o->emit, o->arg, t->valuestring, ev);
    cJSON_Delete(ev);
    return rc;
}

static int message_start(struct out *o)
{
    cJSON *ev = event("message_start"), *m = cJSON_CreateObject();
    struct ao_usage none = {0};

    if (xlate_add(ev, "message", m) < 0 || set_message_head(m, o->s->request_id, o->s->model) < 0 ||
        xlate_add(m, "content", cJSON_CreateArray()) < 0 ||
        xlate_add(m, "stop_reason", cJSON_CreateNull()) < 0 ||
        xlate_add(m, "stop_sequence", cJSON_CreateNull()) < 0 ||
        xlate_add(m, "usage", usage_json(&none)) < 0) {
        cJSON_Delete(ev);
        return -1;
    }
    o->s->phase = AO_BODY;
    return out_send(o, ev);
}

static int block_stop(struct out *o, int index)
{
    return out_send(o, indexed("content_block_stop", index));
}

/* A delta of block index: {"type": kind, key: text}. */
static int block_delta(struct out *o, int index, const char *kind, const char *key,
                       const char *text)
{
    cJSON *ev = indexed("content_block_delta", index), *d = cJSON_CreateObject();

    if (xlate_add(ev, "delta", d) < 0 || xlate_add_str(d, "type", kind) < 0 ||
        xlate_add_str(d, key, text) < 0) {
        cJSON_Delete(ev);
        return -1;
    }
    return out_send(o, ev);
}

/* Stops the open text block, and the tool blocks whose arguments are whole (all of them when
 * all is set), in block order. */
static int stop_blocks(struct out *o, int all)
{
    struct ao_stream *s = o->s;

    for (int b = 0; b < s->nblocks; b++) {
        if (b == s->text_block) {
            s->text_block = -1;
            if (block_stop(o, b) < 0)
                return -1;
            continue;
        }
        for (int k = 0; k <= s->last_tool && k < XLATE_MAX_TOOLS; k++) {
            struct ao_tool *t = &s->tools[k];
            if (t->block == b && t->open && (all || t->whole)) {
                t->open = 0;
                if (block_stop(o, b) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static int text(struct out *o, const char *piece)
{
    struct ao_stream *s = o->s;

    if (s->text_block < 0) {
        cJSON *ev = indexed("content_block_start", s->nblocks), *cb = cJSON_CreateObject();
        if (xlate_add(ev, "content_block", cb) < 0 || xlate_add_str(cb, "type", "text") < 0 ||
            xlate_add_str(cb, "text", "") < 0 || stop_blocks(o, 0) < 0) {
            cJSON_Delete(ev);
            return -1;
        }
        s->text_block = s->nblocks++;
        if (out_send(o, ev) < 0)
            return -1;
    }
    return block_delta(o, s->text_block, "text_delta", "text", piece);
}

/* Follows an arguments piece's JSON: whole once its first value has closed. */
static void scan(struct ao_tool *t, const char *p)
{
    for (; *p != '\0' && !t->whole; p++) {
        char c = *p;
        if (t->in_str) {
            if (t->esc)
                t->esc = 0;
            else if (c == '\\')
                t->esc = 1;
            else if (c == '"')
                t->in_str = 0;
            else
                continue;
            if (!t->in_str && t->depth == 0)
                t->whole = 1; /* a bare string */
            continue;
        }
        if (c == '"') {
            t->in_str = 1;
            t->began = 1;
        } else if (c == '{' || c == '[') {
            t->depth++;
            t->began = 1;
        } else if (c == '}' || c == ']') {
            if (--t->depth <= 0 && t->began)
                t->whole = 1;
        }
    }
}

static int error_event(struct out *o, const char *type, const char *message)
{
    cJSON *doc = xlate_anthropic_error_doc(type, message);
    int rc = doc != NULL ? xlate_emit_json(o->emit, o->arg, "error", doc) : -1;

    cJSON_Delete(doc);
    o->s->phase = AO_DONE;
    return rc;
}

/* A tool call's piece: start its block when its index is new, then its arguments. */
static int tool_piece(struct out *o, const cJSON *tc)
{
    struct ao_stream *s = o->s;
    const cJSON *ix = XGET(tc, "index"), *fn = XGET(tc, "function");
    const cJSON *args = XGET(fn, "arguments");
    struct ao_tool *t;
    int k;

    if (cJSON_IsNumber(ix))
        k = ix->valuedouble >= 0 && ix->valuedouble < XLATE_MAX_TOOLS ? (int)ix->valuedouble
                                                                      : XLATE_MAX_TOOLS;
    else /* no index (some compatible providers): an id starts the next call */
        k = XGET(tc, "id") != NULL || s->last_tool < 0 ? s->last_tool + 1 : s->last_tool;
    if (k >= XLATE_MAX_TOOLS) {
        char m[120];
        snprintf(m, sizeof(m), "the provider's answer has more than %d tool calls",
                 XLATE_MAX_TOOLS);
        return error_event(o, "api_error", m);
    }
    t = &s->tools[k];
    if (t->block < 0) {
        const cJSON *id = XGET(tc, "id"), *name = XGET(fn, "name");
        cJSON *ev = indexed("content_block_start", s->nblocks), *cb = cJSON_CreateObject();
        char gen[64];
        snprintf(gen, sizeof(gen), "call_%s_%d", s->request_id, k);
        if (xlate_add(ev, "content_block", cb) < 0 || xlate_add_str(cb, "type", "tool_use") < 0 ||
            xlate_add_str(cb, "id", cJSON_IsString(id) ? id->valuestring : gen) < 0 ||
            xlate_add_str(cb, "name", cJSON_IsString(name) ? name->valuestring : "") < 0 ||
            xlate_add(cb, "input", cJSON_CreateObject()) < 0) {
            cJSON_Delete(ev);
            return -1;
        }
        if (stop_blocks(o, 0) < 0) {
            cJSON_Delete(ev);
            return -1;
        }
        t->block = s->nblocks++;
        t->open = 1;
        if (k > s->last_tool)
            s->last_tool = k;
        if (out_send(o, ev) < 0)
            return -1;
    }
    if (!cJSON_IsString(args) || args->valuestring[0] == '\0')
        return 0;
    if (!t->open) /* stopped already: its arguments were whole; more cannot be taken back */
        return 0;
    scan(t, args->valuestring);
    if (block_delta(o, t->block, "input_json_delta", "partial_json", args->valuestring) < 0)
        return -1;
    if (t->whole && t->block != s->nblocks - 1) { /* a later block is under way */
        t->open = 0;
        return block_stop(o, t->block);
    }
    return 0;
}

static void finish(struct ao_stream *s, const cJSON *choice)
{
    const char *seq;

    s->stop = stop_reason(choice, s->refusal, &seq);
    if (seq != NULL)
        s->stop_seq = strdup(seq); /* out of memory: reported as null */
    s->phase = AO_FINISHED;
}

/* message_delta and message_stop: the end of a stream that began. */
static int message_end(struct out *o)
{
    struct ao_stream *s = o->s;
    cJSON *ev = event("message_delta"), *d = cJSON_CreateObject();

    if (xlate_add(ev, "delta", d) < 0 || add_str_or_null(d, "stop_reason", s->stop) < 0 ||
        add_str_or_null(d, "stop_sequence", s->stop_seq) < 0 ||
        xlate_add(ev, "usage", usage_json(&s->usage)) < 0) {
        cJSON_Delete(ev);
        return -1;
    }
    s->phase = AO_DONE;
    if (out_send(o, ev) < 0)
        return -1;
    return out_send(o, event("message_stop"));
}

/* The upstream ended ([DONE] or the stream's end): close what is open. */
static int close_stream(struct out *o)
{
    switch (o->s->phase) {
    case AO_NEW:
        return error_event(o, "api_error", "the provider's stream ended before its answer began");
    case AO_BODY: /* cut before a finish_reason: no stop_reason to tell */
        if (stop_blocks(o, 1) < 0)
            return -1;
        /* fall through */
    case AO_FINISHED:
        return message_end(o);
    default:
        return 0;
    }
}

static int choice_delta(struct out *o, const cJSON *choice)
{
    const cJSON *d = XGET(choice, "delta"), *v, *tc;

    v = XGET(d, "content");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0' && text(o, v->valuestring) < 0)
        return -1;
    v = XGET(d, "refusal");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        o->s->refusal = 1;
        if (text(o, v->valuestring) < 0)
            return -1;
    }
    cJSON_ArrayForEach(tc, XGET(d, "tool_calls"))
    {
        if (tool_piece(o, tc) < 0)
            return -1;
        if (o->s->phase == AO_DONE)
            return 0;
    }
    if (cJSON_IsString(XGET(choice, "finish_reason"))) {
        if (stop_blocks(o, 1) < 0)
            return -1;
        finish(o->s, choice);
    }
    return 0;
}

int xlate_ao_stream_event(struct xlate_stream *base, const char *name, const cJSON *data,
                          const char *raw, size_t raw_len, xlate_emit_fn *emit, void *arg)
{
    struct ao_stream *s = (struct ao_stream *)base;
    struct out o = {s, emit, arg};
    const cJSON *e, *choice;

    (void)name;
    if (s->phase == AO_DONE)
        return 0;
    if (data == NULL) {
        while (raw_len > 0 &&
               (raw[raw_len - 1] == ' ' || raw[raw_len - 1] == '\r' || raw[raw_len - 1] == '\n'))
            raw_len--;
        if (raw_len == 6 && memcmp(raw, "[DONE]", 6) == 0)
            return close_stream(&o);
        return 0; /* not JSON and not the end: nothing a client could use */
    }
    e = XGET(data, "error");
    if (e != NULL && !cJSON_IsNull(e)) {
        const char *m = xlate_error_message(data);
        if (s->phase != AO_NEW && stop_blocks(&o, 1) < 0)
            return -1;
        return error_event(&o, stream_error_type(e),
                           m != NULL ? m : "the provider's stream failed");
    }
    if (s->phase == AO_NEW && message_start(&o) < 0)
        return -1;
    cJSON_ArrayForEach(choice, XGET(data, "choices"))
    {
        const cJSON *ix = XGET(choice, "index");
        if (cJSON_IsNumber(ix) && ix->valuedouble != 0)
            continue; /* one choice only: Anthropic has no n */
        if (s->phase == AO_BODY && choice_delta(&o, choice) < 0)
            return -1;
        if (s->phase == AO_DONE)
            return 0;
    }
    if (cJSON_IsObject(XGET(data, "usage"))) {
        read_usage(XGET(data, "usage"), &s->usage);
        if (s->phase == AO_FINISHED)
            return message_end(&o);
    }
    return 0;
}

int xlate_ao_stream_end(struct xlate_stream *base, xlate_emit_fn *emit, void *arg)
{
    struct out o = {(struct ao_stream *)base, emit, arg};

    return close_stream(&o);
}
