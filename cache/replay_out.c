/*
 * replay_out: a whole answer made into the stream its provider would have sent (replay_stream),
 * and what a whole answer must be (replay_whole_ok). See replay.h; replay.c gathers streams.
 *
 * Every event is built from fixed members first, then the answer's own extra members in their
 * order (first of a duplicated name only), so that gathering a replayed stream and replaying
 * it again gives the same events.
 */
#include "cache/replay.h"
#include "cache/replay-int.h"

#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive

static int is_str(const cJSON *v, const char *s)
{
    return cJSON_IsString(v) && strcmp(v->valuestring, s) == 0;
}

/* v absent, null, or a string. */
static int opt_str(const cJSON *v)
{
    return v == NULL || cJSON_IsNull(v) || cJSON_IsString(v);
}

/* 1 when every member of o not named in known (NULL-ended) is null or empty ({}, []): what a
 * stream of the answer would not carry (logprobs, audio, a provider's own fields) must be
 * absent, else the answer is not replayed, rather than replayed without it. */
int replay_rest_empty(const cJSON *o, const char *const *known)
{
    const cJSON *m;

    cJSON_ArrayForEach(m, o)
    {
        int k = 0;
        while (known[k] != NULL && strcmp(known[k], m->string) != 0)
            k++;
        if (known[k] == NULL && !cJSON_IsNull(m) &&
            !((cJSON_IsArray(m) || cJSON_IsObject(m)) && m->child == NULL))
            return 0;
    }
    return 1;
}

static int oa_call_ok(const cJSON *c)
{
    const cJSON *fn = GET(c, "function");

    return cJSON_IsObject(c) && cJSON_IsString(GET(c, "id")) && GET(c, "id")->valuestring[0] &&
           (GET(c, "type") == NULL || is_str(GET(c, "type"), "function")) && cJSON_IsObject(fn) &&
           cJSON_IsString(GET(fn, "name")) && GET(fn, "name")->valuestring[0] &&
           cJSON_IsString(GET(fn, "arguments"));
}

static int oa_whole_ok(const cJSON *w)
{
    const cJSON *choices = GET(w, "choices"), *ch = cJSON_GetArrayItem(choices, 0);
    const cJSON *msg = GET(ch, "message"), *v, *c;

    if (!cJSON_IsObject(w) || !is_str(GET(w, "object"), "chat.completion") ||
        !opt_str(GET(w, "id")) || !opt_str(GET(w, "model")) ||
        ((v = GET(w, "created")) != NULL && !cJSON_IsNumber(v) && !cJSON_IsNull(v)) ||
        !opt_str(GET(w, "system_fingerprint")) || !opt_str(GET(w, "service_tier")) ||
        ((v = GET(w, "usage")) != NULL && !cJSON_IsObject(v) && !cJSON_IsNull(v)))
        return 0;
    if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) != 1 || !cJSON_IsObject(msg) ||
        !cJSON_IsString(GET(ch, "finish_reason")) ||
        ((v = GET(ch, "index")) != NULL && (!cJSON_IsNumber(v) || v->valuedouble != 0)))
        return 0;
    static const char *const choice_keys[] = {"index", "message", "finish_reason", NULL};
    static const char *const msg_keys[] = {"role", "content", "refusal", "tool_calls", NULL};
    if (!replay_rest_empty(ch, choice_keys) || !replay_rest_empty(msg, msg_keys))
        return 0;
    if ((v = GET(msg, "role")) != NULL && !is_str(v, "assistant"))
        return 0;
    if (((v = GET(msg, "content")) != NULL && !cJSON_IsString(v) && !cJSON_IsNull(v)) ||
        ((v = GET(msg, "refusal")) != NULL && !cJSON_IsString(v) && !cJSON_IsNull(v)))
        return 0;
    v = GET(msg, "tool_calls");
    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > REPLAY_MAX_PARTS)
            return 0;
        cJSON_ArrayForEach(c, v) if (!oa_call_ok(c)) return 0;
    }
    return 1;
}

static int an_block_ok(const cJSON *b)
{
    const cJSON *type = GET(b, "type");
    const char *t;

    if (!cJSON_IsObject(b) || !cJSON_IsString(type))
        return 0;
    t = type->valuestring;
    if (strcmp(t, "text") == 0)
        return cJSON_IsString(GET(b, "text"));
    if (strcmp(t, "thinking") == 0)
        return cJSON_IsString(GET(b, "thinking")) && opt_str(GET(b, "signature"));
    if (strcmp(t, "tool_use") == 0 || strcmp(t, "server_tool_use") == 0 ||
        strcmp(t, "mcp_tool_use") == 0)
        return cJSON_IsString(GET(b, "id")) && cJSON_IsString(GET(b, "name")) &&
               cJSON_IsObject(GET(b, "input"));
    return 1; /* redacted_thinking, tool results...: sent whole in their start */
}

static int an_whole_ok(const cJSON *w)
{
    const cJSON *content = GET(w, "content"), *v, *b;

    if (!cJSON_IsObject(w) || !is_str(GET(w, "type"), "message") || !opt_str(GET(w, "id")) ||
        !opt_str(GET(w, "model")) || ((v = GET(w, "role")) != NULL && !is_str(v, "assistant")) ||
        !cJSON_IsString(GET(w, "stop_reason")) || !cJSON_IsObject(GET(w, "usage")) ||
        ((v = GET(w, "stop_sequence")) != NULL && !cJSON_IsString(v) && !cJSON_IsNull(v)) ||
        !cJSON_IsArray(content) || cJSON_GetArraySize(content) > REPLAY_MAX_PARTS)
        return 0;
    cJSON_ArrayForEach(b, content) if (!an_block_ok(b)) return 0;
    return 1;
}

int replay_whole_ok(enum conf_format api, const cJSON *whole)
{
    if (whole == NULL)
        return 0;
    if (api == CONF_FMT_OPENAI)
        return oa_whole_ok(whole);
    if (api == CONF_FMT_ANTHROPIC)
        return an_whole_ok(whole);
    return 0;
}

/* ---- building events ---------------------------------------------------------------------- */

struct out {
    replay_emit_fn *emit;
    void *arg;
    size_t piece;
    int rc; /* the first failure: -1 (memory), or emit's answer */
};

/* Adds item under key (taking it). Returns 0, or -1 with item deleted. */
static int add(cJSON *o, const char *key, cJSON *item)
{
    if (o == NULL || item == NULL || !cJSON_AddItemToObject(o, key, item))
        return (cJSON_Delete(item), -1);
    return 0;
}

static int addv(cJSON *o, const char *key, const cJSON *v)
{
    return add(o, key, cJSON_Duplicate(v, 1));
}

static int append(cJSON *arr, cJSON *item)
{
    if (arr == NULL || item == NULL || !cJSON_AddItemToArray(arr, item))
        return (cJSON_Delete(item), -1);
    return 0;
}

/* Copies src's members into dst, but those named in skip (NULL-ended) and later ones of a
 * name seen before. */
static int add_extras(cJSON *dst, const cJSON *src, const char *const *skip)
{
    const cJSON *m;

    cJSON_ArrayForEach(m, src)
    {
        int skipped = GET(src, m->string) != m;
        for (const char *const *s = skip; *s != NULL && !skipped; s++)
            skipped = strcmp(*s, m->string) == 0;
        if (!skipped && addv(dst, m->string, m) < 0)
            return -1;
    }
    return 0;
}

/* A copy of an object without its later duplicated names (NULL when out of memory). */
static cJSON *dedup(const cJSON *o)
{
    static const char *const none[] = {NULL};
    cJSON *d = cJSON_CreateObject();

    if (d != NULL && add_extras(d, o, none) < 0) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

/* Emits ev (taking it) with name; records the first failure in o->rc. */
static int send(struct out *o, const char *name, cJSON *ev)
{
    char *t;

    if (o->rc != 0 || ev == NULL) {
        cJSON_Delete(ev);
        if (o->rc == 0)
            o->rc = -1;
        return o->rc;
    }
    t = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (t == NULL)
        return o->rc = -1;
    o->rc = o->emit(o->arg, name, t, strlen(t));
    cJSON_free(t);
    return o->rc;
}

/* The length of s's next piece: about want bytes, ending at a UTF-8 character's boundary
 * (never 0 for a non-empty s). */
static size_t piece_len(const char *s, size_t left, size_t want)
{
    size_t n;

    if (want == 0)
        want = 1;
    if (left <= want)
        return left;
    n = want;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* s[n] continues a character: end before the character */
    if (n == 0) {
        n = want; /* a character longer than a piece: all of it */
        while (n < left && ((unsigned char)s[n] & 0xC0) == 0x80)
            n++;
    }
    return n;
}

/* A JSON string of s's first n bytes (NULL when out of memory). */
static cJSON *str_n(const char *s, size_t n)
{
    char *buf = cJSON_malloc(n + 1);
    cJSON *v;

    if (buf == NULL)
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    v = cJSON_CreateString(buf);
    cJSON_free(buf);
    return v;
}

/* Calls make(o, arg, piece) with each piece of s as a JSON string (taken), in order, until
 * one fails. Returns o->rc. */
static int pieces(struct out *o, const char *s, int (*make)(struct out *, void *, cJSON *),
                  void *arg)
{
    size_t left = strlen(s);

    while (left > 0 && o->rc == 0) {
        size_t n = piece_len(s, left, o->piece);
        make(o, arg, str_n(s, n));
        left -= n;
        s += n;
    }
    return o->rc;
}

/* ---- OpenAI ------------------------------------------------------------------------------- */

struct oa {
    struct out *o;
    const cJSON *w;
    int include_usage;
};

/* A choice {index 0, delta (taken), logprobs null, finish_reason (NULL: null)}, or NULL. */
static cJSON *oa_choice(cJSON *delta, const cJSON *finish)
{
    cJSON *ch = cJSON_CreateObject();

    if (ch == NULL || add(ch, "index", cJSON_CreateNumber(0)) < 0) {
        cJSON_Delete(ch);
        cJSON_Delete(delta);
        return NULL;
    }
    if (add(ch, "delta", delta) < 0 || add(ch, "logprobs", cJSON_CreateNull()) < 0 ||
        add(ch, "finish_reason", finish != NULL ? cJSON_Duplicate(finish, 1) : cJSON_CreateNull()) <
            0) {
        cJSON_Delete(ch);
        return NULL;
    }
    return ch;
}

/* A chunk with the answer's id, created, model... and choices [choice] (taken; none for the
 * usage chunk: choice NULL, usage its usage, taken), or NULL. */
static cJSON *oa_chunk(const struct oa *s, cJSON *choice, cJSON *usage)
{
    static const char *const keys[] = {
        "id",           "object",  "created", "model", "system_fingerprint",
        "service_tier", "choices", "usage"};
    cJSON *c = cJSON_CreateObject(), *choices = cJSON_CreateArray();
    int ok = c != NULL && choices != NULL;

    if (ok && choice != NULL)
        ok = append(choices, choice) == 0;
    else
        cJSON_Delete(choice);
    for (size_t i = 0; ok && i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *k = keys[i];
        const cJSON *v = GET(s->w, k);
        if (strcmp(k, "object") == 0)
            ok = add(c, k, cJSON_CreateString("chat.completion.chunk")) == 0;
        else if (strcmp(k, "choices") == 0)
            ok = add(c, k, choices) == 0, choices = NULL; /* taken, or deleted */
        else if (strcmp(k, "usage") == 0 && usage != NULL)
            ok = add(c, k, usage) == 0, usage = NULL;
        else if (strcmp(k, "usage") == 0)
            ok = !s->include_usage || add(c, k, cJSON_CreateNull()) == 0; /* null until its own */
        else if (v != NULL && !cJSON_IsNull(v))
            ok = addv(c, k, v) == 0; /* a null one is left out, as the gatherer leaves it */
    }
    cJSON_Delete(choices);
    cJSON_Delete(usage);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* Sends a chunk of delta (taken; NULL: out of memory) and finish. */
static int oa_send(struct oa *s, cJSON *delta, const cJSON *finish)
{
    cJSON *ch = delta != NULL ? oa_choice(delta, finish) : NULL;

    return send(s->o, NULL, ch != NULL ? oa_chunk(s, ch, NULL) : NULL);
}

/* {key: v} (v taken), or NULL. */
static cJSON *obj1(const char *key, cJSON *v)
{
    cJSON *o = cJSON_CreateObject();

    if (add(o, key, v) < 0) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

struct oa_text {
    struct oa *s;
    const char *key; /* content, refusal */
};

static int oa_text_piece(struct out *o, void *arg, cJSON *piece)
{
    struct oa_text *t = arg;

    (void)o;
    return oa_send(t->s, obj1(t->key, piece), NULL);
}

/* [{index, [id, type,] function: fn (taken)}] */
static cJSON *oa_call_delta(int index, const cJSON *id, cJSON *fn)
{
    cJSON *c = cJSON_CreateObject(), *calls;

    if (add(c, "index", cJSON_CreateNumber(index)) < 0 ||
        (id != NULL &&
         (addv(c, "id", id) < 0 || add(c, "type", cJSON_CreateString("function")) < 0))) {
        cJSON_Delete(c);
        cJSON_Delete(fn);
        return NULL;
    }
    if (add(c, "function", fn) < 0 || (calls = cJSON_CreateArray()) == NULL) {
        cJSON_Delete(c);
        return NULL;
    }
    if (append(calls, c) < 0) {
        cJSON_Delete(calls);
        return NULL;
    }
    return obj1("tool_calls", calls);
}

struct oa_args {
    struct oa *s;
    int index;
};

static int oa_args_piece(struct out *o, void *arg, cJSON *piece)
{
    struct oa_args *a = arg;

    (void)o;
    return oa_send(a->s, oa_call_delta(a->index, NULL, obj1("arguments", piece)), NULL);
}

/* A call: its start (index, id, type, name, no arguments yet), then its arguments in pieces. */
static int oa_call(struct oa *s, const cJSON *call, int index)
{
    const cJSON *fn = GET(call, "function");
    cJSON *f = cJSON_CreateObject();
    struct oa_args a = {.s = s, .index = index};

    if (addv(f, "name", GET(fn, "name")) < 0 || add(f, "arguments", cJSON_CreateString("")) < 0) {
        cJSON_Delete(f);
        return send(s->o, NULL, NULL);
    }
    if (oa_send(s, oa_call_delta(index, GET(call, "id"), f), NULL) != 0)
        return s->o->rc;
    return pieces(s->o, GET(fn, "arguments")->valuestring, oa_args_piece, &a);
}

static int oa_stream(struct out *o, const cJSON *w, int include_usage)
{
    struct oa s = {.o = o, .w = w, .include_usage = include_usage};
    const cJSON *ch = cJSON_GetArrayItem(GET(w, "choices"), 0), *msg = GET(ch, "message");
    const cJSON *calls = GET(msg, "tool_calls"), *c, *usage = GET(w, "usage");
    cJSON *d = obj1("role", cJSON_CreateString("assistant"));
    int i = 0;

    /* the role first, as OpenAI sends it */
    if (d != NULL && add(d, "content", cJSON_CreateString("")) < 0) {
        cJSON_Delete(d);
        d = NULL;
    }
    oa_send(&s, d, NULL);
    for (int k = 0; k < 2 && o->rc == 0; k++) {
        struct oa_text t = {.s = &s, .key = k == 0 ? "content" : "refusal"};
        const cJSON *v = GET(msg, t.key);
        if (cJSON_IsString(v))
            pieces(o, v->valuestring, oa_text_piece, &t);
    }
    if (cJSON_IsArray(calls))
        cJSON_ArrayForEach(c, calls) if (o->rc == 0) oa_call(&s, c, i++);
    if (o->rc == 0)
        oa_send(&s, cJSON_CreateObject(), GET(ch, "finish_reason"));
    if (o->rc == 0 && include_usage && cJSON_IsObject(usage)) {
        cJSON *copy = dedup(usage);
        send(o, NULL, copy != NULL ? oa_chunk(&s, NULL, copy) : NULL);
    }
    if (o->rc == 0)
        o->rc = o->emit(o->arg, NULL, "[DONE]", 6);
    return o->rc;
}

/* ---- Anthropic ---------------------------------------------------------------------------- */

/* {"type": type} (NULL when out of memory). */
static cJSON *typed(const char *type)
{
    return obj1("type", cJSON_CreateString(type));
}

/* Sends the event {"type": type[, "index": index][, key: v (taken)]}, named type. */
static int an_send(struct out *o, const char *type, int index, const char *key, cJSON *v)
{
    cJSON *e = typed(type);

    if (e == NULL || (index >= 0 && add(e, "index", cJSON_CreateNumber(index)) < 0)) {
        cJSON_Delete(e);
        cJSON_Delete(v);
        return send(o, NULL, NULL);
    }
    if (key != NULL && add(e, key, v) < 0) {
        cJSON_Delete(e);
        return send(o, NULL, NULL);
    }
    return send(o, type, e);
}

struct an_text {
    int index;
    const char *dtype; /* text_delta, thinking_delta, input_json_delta */
    const char *key;   /* text, thinking, partial_json */
};

static int an_text_piece(struct out *o, void *arg, cJSON *piece)
{
    struct an_text *t = arg;
    cJSON *d = typed(t->dtype);

    if (add(d, t->key, piece) < 0) {
        cJSON_Delete(d);
        return send(o, NULL, NULL);
    }
    return an_send(o, "content_block_delta", t->index, "delta", d);
}

/* The start of block b: what its deltas fill is empty; *text: what they carry (into *json
 * when printed here, to be freed). NULL when out of memory. */
static cJSON *an_block_start(const cJSON *b, struct an_text *t, const char **text, char **json)
{
    static const char *const text_keys[] = {"type", "text", NULL};
    static const char *const think_keys[] = {"type", "thinking", "signature", NULL};
    static const char *const tool_keys[] = {"type", "id", "name", "input", NULL};
    const char *type = GET(b, "type")->valuestring;
    cJSON *start = typed(type), *input;
    int ok = start != NULL;

    *text = NULL;
    *json = NULL;
    if (strcmp(type, "text") == 0) {
        ok = ok && add(start, "text", cJSON_CreateString("")) == 0 &&
             add_extras(start, b, text_keys) == 0;
        t->dtype = "text_delta", t->key = "text", *text = GET(b, "text")->valuestring;
    } else if (strcmp(type, "thinking") == 0) {
        ok = ok && add(start, "thinking", cJSON_CreateString("")) == 0 &&
             add(start, "signature", cJSON_CreateString("")) == 0 &&
             add_extras(start, b, think_keys) == 0;
        t->dtype = "thinking_delta", t->key = "thinking", *text = GET(b, "thinking")->valuestring;
    } else if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0 ||
               strcmp(type, "mcp_tool_use") == 0) {
        ok = ok && addv(start, "id", GET(b, "id")) == 0 &&
             addv(start, "name", GET(b, "name")) == 0 &&
             add(start, "input", cJSON_CreateObject()) == 0 && add_extras(start, b, tool_keys) == 0;
        /* the input's text as the deltas carry it; an empty input has none */
        if (ok && GET(b, "input")->child != NULL) {
            input = dedup(GET(b, "input"));
            ok = input != NULL && (*json = cJSON_PrintUnformatted(input)) != NULL;
            cJSON_Delete(input);
        }
        t->dtype = "input_json_delta", t->key = "partial_json", *text = *json;
    } else {
        cJSON_Delete(start);
        start = dedup(b); /* whole in its start: redacted_thinking, tool results */
        ok = start != NULL;
    }
    if (!ok) {
        cJSON_Delete(start);
        cJSON_free(*json);
        *json = NULL;
        return NULL;
    }
    return start;
}

/* A block: its start, its deltas, its stop. */
static int an_block(struct out *o, const cJSON *b, int index)
{
    struct an_text t = {.index = index};
    const cJSON *sig = GET(b, "signature");
    const char *text;
    char *json;
    cJSON *start = an_block_start(b, &t, &text, &json);

    if (start == NULL)
        return send(o, NULL, NULL);
    an_send(o, "content_block_start", index, "content_block", start);
    if (text != NULL)
        pieces(o, text, an_text_piece, &t);
    cJSON_free(json);
    if (o->rc == 0 && strcmp(GET(b, "type")->valuestring, "thinking") == 0 && cJSON_IsString(sig) &&
        sig->valuestring[0] != '\0') {
        cJSON *d = typed("signature_delta");
        if (add(d, "signature", cJSON_CreateString(sig->valuestring)) < 0) {
            cJSON_Delete(d);
            return send(o, NULL, NULL);
        }
        an_send(o, "content_block_delta", index, "delta", d);
    }
    if (o->rc == 0)
        an_send(o, "content_block_stop", index, NULL, NULL);
    return o->rc;
}

/* message_start's message: the answer's with no content and no stop yet, and its usage with
 * at most 1 output token (the count comes in message_delta, whose usage replaces it). */
static cJSON *an_message(const cJSON *w, const cJSON *usage)
{
    static const char *const msg_keys[] = {
        "id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage", NULL};
    cJSON *m = cJSON_CreateObject(), *mu = NULL;
    const cJSON *v;
    int ok = m != NULL;

    ok = ok && ((v = GET(w, "id")) == NULL || addv(m, "id", v) == 0);
    ok = ok && add(m, "type", cJSON_CreateString("message")) == 0 &&
         add(m, "role", cJSON_CreateString("assistant")) == 0;
    ok = ok && ((v = GET(w, "model")) == NULL || addv(m, "model", v) == 0);
    ok = ok && add(m, "content", cJSON_CreateArray()) == 0 &&
         add(m, "stop_reason", cJSON_CreateNull()) == 0 &&
         add(m, "stop_sequence", cJSON_CreateNull()) == 0;
    ok = ok && add(m, "usage", mu = cJSON_Duplicate(usage, 1)) == 0;
    if (ok && cJSON_IsNumber(v = GET(mu, "output_tokens")) && v->valuedouble > 1)
        cJSON_SetNumberValue(GET(mu, "output_tokens"), 1);
    ok = ok && add_extras(m, w, msg_keys) == 0;
    if (!ok) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

static int an_stream(struct out *o, const cJSON *w)
{
    const cJSON *b, *seq = GET(w, "stop_sequence");
    cJSON *u = dedup(GET(w, "usage")), *d, *e;
    int i = 0;

    if (u == NULL)
        return send(o, NULL, NULL);
    an_send(o, "message_start", -1, "message", an_message(w, u));
    cJSON_ArrayForEach(b, GET(w, "content")) if (o->rc == 0) an_block(o, b, i++);
    if (o->rc != 0) {
        cJSON_Delete(u);
        return o->rc;
    }
    /* message_delta: the stop and the usage */
    d = obj1("stop_reason", cJSON_Duplicate(GET(w, "stop_reason"), 1));
    if (d != NULL &&
        add(d, "stop_sequence", seq != NULL ? cJSON_Duplicate(seq, 1) : cJSON_CreateNull()) < 0) {
        cJSON_Delete(d);
        d = NULL;
    }
    e = typed("message_delta");
    if (d == NULL || e == NULL) {
        cJSON_Delete(d);
        cJSON_Delete(u);
        cJSON_Delete(e);
        return send(o, NULL, NULL);
    }
    if (add(e, "delta", d) < 0 || add(e, "usage", u) < 0) {
        if (GET(e, "delta") != NULL)
            u = NULL; /* add deleted it */
        cJSON_Delete(e);
        cJSON_Delete(u);
        return send(o, NULL, NULL);
    }
    send(o, "message_delta", e);
    if (o->rc == 0)
        an_send(o, "message_stop", -1, NULL, NULL);
    return o->rc;
}

int replay_stream(enum conf_format api, const cJSON *whole, int include_usage, size_t piece,
                  replay_emit_fn *emit, void *arg)
{
    struct out o = {.emit = emit, .arg = arg, .piece = piece};

    if (!replay_whole_ok(api, whole))
        return -1;
    return api == CONF_FMT_OPENAI ? oa_stream(&o, whole, include_usage) : an_stream(&o, whole);
}
