/*
 * replay: a stream's events gathered into the whole answer they make (replay_asm_*). See
 * replay.h; replay_out.c makes a stream of a whole answer.
 *
 * The gatherer keeps no cJSON across events (the events' documents are the caller's, freed
 * after each event, and may live in a scope that frees them): what it keeps is text in its own
 * malloc'd buffers, capped at REPLAY_MAX_BYTES together, and at most REPLAY_MAX_PARTS tool
 * calls or content blocks. The whole answer is built once, at replay_asm_finish.
 */
#include "cache/replay.h"
#include "cache/replay-int.h"

#include <stdlib.h>
#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive

/* A growable byte string; its bytes count in the gatherer's cap. */
struct rbuf {
    char *p;
    size_t len, cap;
    int set; /* something was put (possibly "") */
};

/* Anthropic content block kinds, by what their deltas fill. */
enum rkind { K_OTHER = 0, K_TEXT, K_JSON, K_THINKING };

/* A tool call (OpenAI) or a content block (Anthropic). */
struct rpart {
    int index;        /* OpenAI: the call's index in its deltas; Anthropic: the block's */
    enum rkind kind;  /* Anthropic */
    int open;         /* Anthropic: started and not stopped */
    struct rbuf head; /* OpenAI: the call's id; Anthropic: content_block of its start (JSON) */
    struct rbuf name; /* OpenAI: the function's name; Anthropic: a thinking's signature */
    struct rbuf text; /* OpenAI: arguments; Anthropic: text, thinking or input's JSON text */
};

enum rstate {
    RS_START = 0, /* nothing yet */
    RS_BODY,      /* message_start / the first chunk seen */
    RS_DELTA,     /* Anthropic: message_delta seen; OpenAI: finish_reason seen */
    RS_END,       /* message_stop / [DONE] */
    RS_FAILED,
};

struct replay_asm {
    enum conf_format api;
    enum rstate state;
    size_t held;         /* bytes of all buffers, at most REPLAY_MAX_BYTES */
    struct rbuf meta;    /* OpenAI: {id, created, model, ...} of the first chunk; Anthropic:
                            message_start's message (JSON text) */
    struct rbuf text;    /* OpenAI: the content */
    struct rbuf refusal; /* OpenAI: the refusal */
    struct rbuf finish;  /* OpenAI: finish_reason; Anthropic: message_delta's delta (JSON) */
    struct rbuf usage;   /* the usage so far (JSON text) */
    struct rpart *parts;
    int nparts;
};

static void rbuf_free(struct rbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->set = 0;
}

/* Appends n bytes (kept NUL-terminated). Returns 0, or -1 past the cap or out of memory. */
static int rbuf_add(struct replay_asm *a, struct rbuf *b, const char *s, size_t n)
{
    if (n > REPLAY_MAX_BYTES - a->held)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t want = b->cap < 64 ? 64 : b->cap;
        char *p;
        while (want < b->len + n + 1)
            want *= 2;
        p = realloc(b->p, want);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = want;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    a->held += n;
    b->set = 1;
    return 0;
}

static int rbuf_str(struct replay_asm *a, struct rbuf *b, const char *s)
{
    return rbuf_add(a, b, s, strlen(s));
}

/* Replaces b's bytes with s. */
static int rbuf_put(struct replay_asm *a, struct rbuf *b, const char *s)
{
    a->held -= b->len;
    b->len = 0;
    return rbuf_str(a, b, s);
}

/* Replaces b's bytes with v printed (unformatted). */
static int rbuf_json(struct replay_asm *a, struct rbuf *b, const cJSON *v)
{
    char *t = cJSON_PrintUnformatted(v);
    int rc;

    if (t == NULL)
        return -1;
    rc = rbuf_put(a, b, t);
    cJSON_free(t);
    return rc;
}

/* b's text parsed, or NULL. */
static cJSON *rbuf_parse(const struct rbuf *b)
{
    return b->set ? cJSON_ParseWithLength(b->p, b->len) : NULL;
}

struct replay_asm *replay_asm_new(enum conf_format api)
{
    struct replay_asm *a;

    if (api != CONF_FMT_OPENAI && api != CONF_FMT_ANTHROPIC)
        return NULL;
    a = calloc(1, sizeof(*a));
    if (a != NULL)
        a->api = api;
    return a;
}

void replay_asm_free(struct replay_asm *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < a->nparts; i++) {
        rbuf_free(&a->parts[i].head);
        rbuf_free(&a->parts[i].name);
        rbuf_free(&a->parts[i].text);
    }
    free(a->parts);
    rbuf_free(&a->meta);
    rbuf_free(&a->text);
    rbuf_free(&a->refusal);
    rbuf_free(&a->finish);
    rbuf_free(&a->usage);
    free(a);
}

/* A new part at the end (zeroed, index set), or NULL past REPLAY_MAX_PARTS / out of memory. */
static struct rpart *part_add(struct replay_asm *a, int index)
{
    struct rpart *p;

    if (a->nparts >= REPLAY_MAX_PARTS)
        return NULL;
    p = realloc(a->parts, (size_t)(a->nparts + 1) * sizeof(*p));
    if (p == NULL)
        return NULL;
    a->parts = p;
    p = &a->parts[a->nparts++];
    memset(p, 0, sizeof(*p));
    p->index = index;
    return p;
}

/* An integer in [0, REPLAY_MAX_PARTS) from v, or -1. */
static int small_index(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= REPLAY_MAX_PARTS ||
        v->valuedouble != (double)(int)v->valuedouble)
        return -1;
    return (int)v->valuedouble;
}

/* ---- OpenAI chat.completion.chunk --------------------------------------------------------- */

/* Copies the first chunk's id, created, model, system_fingerprint, service_tier. */
static int oa_meta(struct replay_asm *a, const cJSON *chunk)
{
    static const char *const keys[] = {"id", "created", "model", "system_fingerprint",
                                       "service_tier"};
    cJSON *m = cJSON_CreateObject();
    int rc = m != NULL ? 0 : -1;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && rc == 0; i++) {
        const cJSON *v = GET(chunk, keys[i]);
        cJSON *c;
        if (v == NULL || cJSON_IsNull(v))
            continue;
        if (i == 1 ? !cJSON_IsNumber(v) : !cJSON_IsString(v))
            rc = -1; /* not a chunk's member */
        else if ((c = cJSON_Duplicate(v, 1)) == NULL || !cJSON_AddItemToObject(m, keys[i], c))
            rc = (cJSON_Delete(c), -1);
    }
    if (rc == 0)
        rc = rbuf_json(a, &a->meta, m);
    cJSON_Delete(m);
    return rc;
}

/* One delta of tool_calls: [{index, id?, type?, function: {name?, arguments?}}]. */
static int oa_tool_delta(struct replay_asm *a, const cJSON *calls)
{
    const cJSON *c;

    if (!cJSON_IsArray(calls))
        return -1;
    cJSON_ArrayForEach(c, calls)
    {
        int index = small_index(GET(c, "index"));
        const cJSON *id = GET(c, "id"), *fn = GET(c, "function"), *type = GET(c, "type");
        const cJSON *name = GET(fn, "name"), *args = GET(fn, "arguments");
        struct rpart *p = NULL;

        if (index < 0 || (fn != NULL && !cJSON_IsObject(fn) && !cJSON_IsNull(fn)) ||
            (type != NULL && !cJSON_IsNull(type) &&
             (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)))
            return -1;
        for (int i = 0; i < a->nparts && p == NULL; i++)
            if (a->parts[i].index == index)
                p = &a->parts[i];
        if (p == NULL && (p = part_add(a, index)) == NULL)
            return -1;
        /* as the SDKs gather: a given id or name is the call's, arguments add up */
        if (cJSON_IsString(id) && rbuf_put(a, &p->head, id->valuestring) < 0)
            return -1;
        if (cJSON_IsString(name) && rbuf_put(a, &p->name, name->valuestring) < 0)
            return -1;
        if (cJSON_IsString(args) && rbuf_str(a, &p->text, args->valuestring) < 0)
            return -1;
        if ((id != NULL && !cJSON_IsString(id) && !cJSON_IsNull(id)) ||
            (name != NULL && !cJSON_IsString(name) && !cJSON_IsNull(name)) ||
            (args != NULL && !cJSON_IsString(args) && !cJSON_IsNull(args)))
            return -1;
    }
    return 0;
}

static int oa_event(struct replay_asm *a, const char *name, const cJSON *d)
{
    const cJSON *object = GET(d, "object"), *choices = GET(d, "choices"), *usage;
    const cJSON *ch;

    if (name[0] != '\0' || a->state == RS_END)
        return -1;
    if (d == NULL) { /* [DONE] */
        if (a->state != RS_DELTA)
            return -1;
        a->state = RS_END;
        return 0;
    }
    if (!cJSON_IsObject(d) || GET(d, "error") != NULL || !cJSON_IsArray(choices) ||
        (object != NULL &&
         (!cJSON_IsString(object) || strcmp(object->valuestring, "chat.completion.chunk") != 0)))
        return -1;
    if (a->state == RS_START) {
        if (oa_meta(a, d) < 0)
            return -1;
        a->state = RS_BODY;
    }
    usage = GET(d, "usage");
    if (cJSON_IsObject(usage)) {
        if (rbuf_json(a, &a->usage, usage) < 0)
            return -1;
    } else if (usage != NULL && !cJSON_IsNull(usage)) {
        return -1;
    }
    cJSON_ArrayForEach(ch, choices)
    {
        const cJSON *delta = GET(ch, "delta"), *fr = GET(ch, "finish_reason"), *v;

        if (small_index(GET(ch, "index")) != 0 && GET(ch, "index") != NULL)
            return -1; /* one choice only (n > 1 is not gathered) */
        static const char *const choice_keys[] = {"index", "delta", "finish_reason", NULL};
        static const char *const delta_keys[] = {"role", "content", "refusal", "tool_calls", NULL};
        if ((delta != NULL && !cJSON_IsObject(delta)) || !replay_rest_empty(ch, choice_keys) ||
            !replay_rest_empty(delta, delta_keys))
            return -1; /* logprobs, audio...: a whole answer would lose them */
        if (delta != NULL && delta->child != NULL && a->state != RS_BODY)
            return -1; /* content after the finish reason */
        if ((v = GET(delta, "content")) != NULL && !cJSON_IsNull(v) &&
            (!cJSON_IsString(v) || rbuf_str(a, &a->text, v->valuestring) < 0))
            return -1;
        if ((v = GET(delta, "refusal")) != NULL && !cJSON_IsNull(v) &&
            (!cJSON_IsString(v) || rbuf_str(a, &a->refusal, v->valuestring) < 0))
            return -1;
        if ((v = GET(delta, "tool_calls")) != NULL && !cJSON_IsNull(v) && oa_tool_delta(a, v) < 0)
            return -1;
        if (fr != NULL && !cJSON_IsNull(fr)) {
            if (!cJSON_IsString(fr) || a->state != RS_BODY ||
                rbuf_put(a, &a->finish, fr->valuestring) < 0)
                return -1;
            a->state = RS_DELTA;
        }
    }
    return 0;
}

/* Adds key: a string value, or null for an unset buffer. */
static int add_text(cJSON *o, const char *key, const struct rbuf *b)
{
    cJSON *v = b->set && b->len > 0 ? cJSON_CreateString(b->p) : cJSON_CreateNull();

    if (v == NULL || !cJSON_AddItemToObject(o, key, v))
        return (cJSON_Delete(v), -1);
    return 0;
}

/* Adds item to o under key (taking it), or fails with it deleted. */
static int add(cJSON *o, const char *key, cJSON *item)
{
    if (item == NULL || !cJSON_AddItemToObject(o, key, item))
        return (cJSON_Delete(item), -1);
    return 0;
}

static int append(cJSON *arr, cJSON *item)
{
    if (item == NULL || !cJSON_AddItemToArray(arr, item))
        return (cJSON_Delete(item), -1);
    return 0;
}

/* Sets key of o to v (taking it, or deleting it on failure), in place when o has it. Not
 * cJSON_ReplaceItemInObject: it copies the name, and some cJSON versions leave the member
 * nameless when that copy fails; here the old member's name goes to v, nothing allocated. */
static int set(cJSON *o, const char *key, cJSON *v)
{
    cJSON *old = GET(o, key);

    if (v == NULL)
        return -1;
    if (old == NULL) {
        if (cJSON_AddItemToObject(o, key, v))
            return 0;
        cJSON_Delete(v);
        return -1;
    }
    if (!(v->type & cJSON_StringIsConst))
        cJSON_free(v->string);
    v->string = old->string;
    v->type = (v->type & ~cJSON_StringIsConst) | (old->type & cJSON_StringIsConst);
    old->string = NULL;
    old->type |= cJSON_StringIsConst;       /* its name is v's now */
    cJSON_ReplaceItemViaPointer(o, old, v); /* frees old; cannot fail with both in o's list */
    return 0;
}

static int cmp_index(const void *x, const void *y)
{
    const struct rpart *p = x, *q = y;
    return (p->index > q->index) - (p->index < q->index);
}

/* One call {id, type, function: {name, arguments}}, or NULL: a call with no id or no name
 * cannot be answered, so the stream is not a complete answer. */
static cJSON *oa_tool_call(const struct rpart *p)
{
    cJSON *c, *fn;

    if (p->head.len == 0 || p->name.len == 0)
        return NULL;
    c = cJSON_CreateObject();
    if (c == NULL || add(c, "id", cJSON_CreateString(p->head.p)) < 0 ||
        add(c, "type", cJSON_CreateString("function")) < 0 ||
        add(c, "function", fn = cJSON_CreateObject()) < 0 ||
        add(fn, "name", cJSON_CreateString(p->name.p)) < 0 ||
        add(fn, "arguments", cJSON_CreateString(p->text.set ? p->text.p : "")) < 0) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* The calls in the order of their indexes. */
static cJSON *oa_tool_calls(struct replay_asm *a)
{
    cJSON *calls = cJSON_CreateArray();

    qsort(a->parts, (size_t)a->nparts, sizeof(*a->parts), cmp_index);
    for (int i = 0; i < a->nparts && calls != NULL; i++)
        if (append(calls, oa_tool_call(&a->parts[i])) < 0) {
            cJSON_Delete(calls);
            calls = NULL;
        }
    return calls;
}

/* The message: role, content, refusal, tool_calls. */
static cJSON *oa_message(struct replay_asm *a)
{
    cJSON *msg = cJSON_CreateObject();

    if (msg == NULL || add(msg, "role", cJSON_CreateString("assistant")) < 0 ||
        add_text(msg, "content", &a->text) < 0 || add_text(msg, "refusal", &a->refusal) < 0 ||
        (a->nparts > 0 && add(msg, "tool_calls", oa_tool_calls(a)) < 0)) {
        cJSON_Delete(msg);
        return NULL;
    }
    return msg;
}

static cJSON *oa_finish(struct replay_asm *a)
{
    static const char *const keys[] = {
        "id",          "object", "created", "model", "choices", "usage", "system_fingerprint",
        "service_tier"};
    cJSON *meta = rbuf_parse(&a->meta), *out = cJSON_CreateObject(), *choice, *choices, *v;
    int ok = meta != NULL && out != NULL;

    for (size_t i = 0; ok && i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *k = keys[i];
        if (strcmp(k, "object") == 0) {
            ok = add(out, k, cJSON_CreateString("chat.completion")) == 0;
        } else if (strcmp(k, "choices") == 0) {
            ok = add(out, k, choices = cJSON_CreateArray()) == 0 &&
                 append(choices, choice = cJSON_CreateObject()) == 0 &&
                 add(choice, "index", cJSON_CreateNumber(0)) == 0 &&
                 add(choice, "message", oa_message(a)) == 0 &&
                 add(choice, "logprobs", cJSON_CreateNull()) == 0 &&
                 add(choice, "finish_reason", cJSON_CreateString(a->finish.p)) == 0;
        } else if (strcmp(k, "usage") == 0) {
            if (a->usage.set)
                ok = add(out, k, rbuf_parse(&a->usage)) == 0;
        } else if ((v = GET(meta, k)) != NULL) {
            ok = add(out, k, cJSON_Duplicate(v, 1)) == 0;
        }
    }
    cJSON_Delete(meta);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* ---- Anthropic message events -------------------------------------------------------------- */

static enum rkind an_kind(const char *type)
{
    if (strcmp(type, "text") == 0)
        return K_TEXT;
    if (strcmp(type, "thinking") == 0)
        return K_THINKING;
    if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0 ||
        strcmp(type, "mcp_tool_use") == 0)
        return K_JSON;
    return K_OTHER;
}

static int an_block_start(struct replay_asm *a, const cJSON *d)
{
    const cJSON *cb = GET(d, "content_block"), *type = GET(cb, "type"), *v;
    int index = small_index(GET(d, "index"));
    struct rpart *p;

    if (a->state != RS_BODY || index != a->nparts || !cJSON_IsObject(cb) || !cJSON_IsString(type))
        return -1; /* blocks start in order, one after another's start */
    if ((p = part_add(a, index)) == NULL)
        return -1;
    p->kind = an_kind(type->valuestring);
    p->open = 1;
    if (rbuf_json(a, &p->head, cb) < 0)
        return -1;
    /* what the start holds already is the beginning of what the deltas add to */
    if (p->kind == K_TEXT || p->kind == K_THINKING) {
        v = GET(cb, p->kind == K_TEXT ? "text" : "thinking");
        if (!cJSON_IsString(v) || rbuf_str(a, &p->text, v->valuestring) < 0)
            return -1;
    }
    if (p->kind == K_THINKING && cJSON_IsString(v = GET(cb, "signature")) &&
        rbuf_str(a, &p->name, v->valuestring) < 0)
        return -1;
    if (p->kind == K_JSON && (!cJSON_IsString(GET(cb, "id")) || !cJSON_IsString(GET(cb, "name"))))
        return -1;
    return 0;
}

static int an_block_delta(struct replay_asm *a, const cJSON *d)
{
    const cJSON *delta = GET(d, "delta"), *type = GET(delta, "type"), *v = NULL;
    int index = small_index(GET(d, "index"));
    struct rpart *p;
    struct rbuf *into;
    const char *t;

    if (a->state != RS_BODY || index < 0 || index >= a->nparts || !a->parts[index].open ||
        !cJSON_IsString(type))
        return -1;
    p = &a->parts[index];
    t = type->valuestring;
    if (strcmp(t, "text_delta") == 0 && p->kind == K_TEXT)
        v = GET(delta, "text"), into = &p->text;
    else if (strcmp(t, "input_json_delta") == 0 && p->kind == K_JSON)
        v = GET(delta, "partial_json"), into = &p->text;
    else if (strcmp(t, "thinking_delta") == 0 && p->kind == K_THINKING)
        v = GET(delta, "thinking"), into = &p->text;
    else if (strcmp(t, "signature_delta") == 0 && p->kind == K_THINKING)
        v = GET(delta, "signature"), into = &p->name;
    else
        return -1; /* a delta of another block's kind, or one not gathered (citations) */
    if (!cJSON_IsString(v))
        return -1;
    return rbuf_str(a, into, v->valuestring);
}

/* message_delta: its delta (stop_reason, stop_sequence) kept; its usage over the usage so far
 * (each member it gives replaces the one of message_start, as the SDKs do). */
static int an_message_delta(struct replay_asm *a, const cJSON *d)
{
    const cJSON *delta = GET(d, "delta"), *usage = GET(d, "usage"), *u;
    cJSON *base;
    int rc = 0;

    if (a->state != RS_BODY && a->state != RS_DELTA)
        return -1;
    for (int i = 0; i < a->nparts; i++)
        if (a->parts[i].open)
            return -1;
    if (!cJSON_IsObject(delta) || !cJSON_IsString(GET(delta, "stop_reason")) ||
        (usage != NULL && !cJSON_IsObject(usage) && !cJSON_IsNull(usage)))
        return -1;
    if (rbuf_json(a, &a->finish, delta) < 0)
        return -1;
    a->state = RS_DELTA;
    if (!cJSON_IsObject(usage))
        return 0;
    base = rbuf_parse(&a->usage);
    if (base == NULL)
        base = cJSON_CreateObject();
    if (base == NULL)
        return -1;
    cJSON_ArrayForEach(u, usage)
    {
        if (!cJSON_IsNull(u) && set(base, u->string, cJSON_Duplicate(u, 1)) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        rc = rbuf_json(a, &a->usage, base);
    cJSON_Delete(base);
    return rc;
}

static int an_event(struct replay_asm *a, const char *name, const cJSON *d)
{
    const cJSON *type = GET(d, "type"), *msg, *v;
    const char *t;
    int index;

    if (!cJSON_IsObject(d) || !cJSON_IsString(type) || a->state == RS_END)
        return -1;
    t = type->valuestring;
    if (name[0] != '\0' && strcmp(name, t) != 0)
        return -1; /* the event's name is its type */
    if (strcmp(t, "ping") == 0)
        return a->state == RS_START ? -1 : 0;
    if (strcmp(t, "message_start") == 0) {
        msg = GET(d, "message");
        if (a->state != RS_START || !cJSON_IsObject(msg) || !cJSON_IsString(GET(msg, "type")) ||
            strcmp(GET(msg, "type")->valuestring, "message") != 0 ||
            ((v = GET(msg, "content")) != NULL && cJSON_GetArraySize(v) != 0) ||
            ((v = GET(msg, "usage")) != NULL && !cJSON_IsObject(v) && !cJSON_IsNull(v)))
            return -1;
        if (rbuf_json(a, &a->meta, msg) < 0 ||
            (cJSON_IsObject(GET(msg, "usage")) && rbuf_json(a, &a->usage, GET(msg, "usage")) < 0))
            return -1;
        a->state = RS_BODY;
        return 0;
    }
    if (strcmp(t, "content_block_start") == 0)
        return an_block_start(a, d);
    if (strcmp(t, "content_block_delta") == 0)
        return an_block_delta(a, d);
    if (strcmp(t, "content_block_stop") == 0) {
        index = small_index(GET(d, "index"));
        if (a->state != RS_BODY || index < 0 || index >= a->nparts || !a->parts[index].open)
            return -1;
        a->parts[index].open = 0;
        return 0;
    }
    if (strcmp(t, "message_delta") == 0)
        return an_message_delta(a, d);
    if (strcmp(t, "message_stop") == 0) {
        if (a->state != RS_DELTA)
            return -1;
        a->state = RS_END;
        return 0;
    }
    return -1; /* error, or an event not of a message stream */
}

/* A block as the whole answer has it: its start with what its deltas added. */
static cJSON *an_block(const struct rpart *p)
{
    cJSON *b = rbuf_parse(&p->head);
    int ok = b != NULL;

    if (ok && p->kind == K_TEXT)
        ok = set(b, "text", cJSON_CreateString(p->text.p)) == 0;
    if (ok && p->kind == K_THINKING) {
        ok = set(b, "thinking", cJSON_CreateString(p->text.p)) == 0;
        if (ok && p->name.set)
            ok = set(b, "signature", cJSON_CreateString(p->name.p)) == 0;
    }
    if (ok && p->kind == K_JSON && (p->text.len > 0 || !cJSON_IsObject(GET(b, "input")))) {
        /* the input's JSON, whole: a call cut short does not parse, nor is it an answer */
        cJSON *in =
            p->text.len > 0 ? cJSON_ParseWithLength(p->text.p, p->text.len) : cJSON_CreateObject();
        ok = cJSON_IsObject(in) ? set(b, "input", in) == 0 : (cJSON_Delete(in), 0);
    }
    if (!ok) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

static cJSON *an_finish(struct replay_asm *a)
{
    cJSON *out = rbuf_parse(&a->meta), *delta = rbuf_parse(&a->finish), *content = NULL;
    int ok = out != NULL && delta != NULL && (content = cJSON_CreateArray()) != NULL;

    for (int i = 0; ok && i < a->nparts; i++)
        ok = append(content, an_block(&a->parts[i])) == 0;
    if (ok)
        ok = set(out, "content", content) == 0;
    else if (out != NULL && delta != NULL)
        cJSON_Delete(content);
    ok = ok && set(out, "stop_reason", cJSON_Duplicate(GET(delta, "stop_reason"), 1)) == 0;
    ok = ok &&
         set(out, "stop_sequence",
             GET(delta, "stop_sequence") != NULL ? cJSON_Duplicate(GET(delta, "stop_sequence"), 1)
                                                 : cJSON_CreateNull()) == 0;
    if (ok && a->usage.set)
        ok = set(out, "usage", rbuf_parse(&a->usage)) == 0;
    cJSON_Delete(delta);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* ---- the verbs ---------------------------------------------------------------------------- */

int replay_asm_event(struct replay_asm *a, const char *name, const cJSON *data)
{
    int rc;

    if (a == NULL || a->state == RS_FAILED)
        return -1;
    if (name == NULL)
        name = "";
    rc = a->api == CONF_FMT_OPENAI ? oa_event(a, name, data) : an_event(a, name, data);
    if (rc < 0)
        a->state = RS_FAILED;
    return rc;
}

cJSON *replay_asm_finish(struct replay_asm *a)
{
    cJSON *w;

    if (a == NULL || a->state != RS_END)
        return NULL;
    w = a->api == CONF_FMT_OPENAI ? oa_finish(a) : an_finish(a);
    /* what the events carried whole (message_start's message, a block's start) is checked
     * here, once, as a whole answer is: what is gathered is always one */
    if (w != NULL && !replay_whole_ok(a->api, w)) {
        cJSON_Delete(w);
        w = NULL;
    }
    return w;
}
