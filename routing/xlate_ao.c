/*
 * xlate_ao: the client speaks Anthropic Messages, the provider OpenAI chat completions: the
 * request on the way out (this file) and the answer on the way back (xlate_ao2.c). See xlate.h
 * and xlate-int.h.
 *
 * The request, member by member:
 *   system (string or text blocks)     -> a first "system" message (blocks: text parts)
 *   messages: user string / blocks     -> "user" messages; text -> text part, image -> image_url
 *                                         part (base64 source -> data: URL, url source -> URL)
 *   user tool_result blocks            -> one "tool" message per tool_use_id, before the user's
 *                                         other blocks of that turn; content -> one string (text
 *                                         blocks joined by "\n"), is_error -> "Error: " first
 *   assistant text + tool_use blocks   -> one "assistant" message: content, tool_calls (id kept,
 *                                         arguments = input printed as JSON)
 *   assistant thinking blocks          -> dropped (OpenAI takes no reasoning back)
 *   tools (custom)                     -> function tools (input_schema -> parameters)
 *   tool_choice auto/any/tool/none     -> "auto"/"required"/named function/"none" (sent only
 *                                         with tools, as OpenAI refuses it without them)
 *   disable_parallel_tool_use          -> parallel_tool_calls: false (idem)
 *   stop_sequences -> stop, temperature, top_p, metadata.user_id -> user
 *   max_tokens -> max_completion_tokens: OpenAI's current name, the only one its reasoning
 *     models take; max_tokens is deprecated there (the gate's outcap clamps either name)
 *   output_format json_schema -> response_format json_schema (name "output", strict)
 *   stream -> stream, with stream_options.include_usage (the translated stream's message_delta
 *     needs the usage)
 *   cache_control anywhere, service_tier, thinking disabled -> dropped: OpenAI caches prompts
 *     by itself, so dropping the marks keeps what a user expects.
 * Refused with a 400 that names the member: top_k, thinking enabled, document blocks (PDF,
 * text), search results, citations, server tools (a tool with a type other than "custom"),
 * container, mcp_servers, context_management, images from the Files API, images inside tool
 * results, a last assistant message (a prefill: OpenAI would answer anew, not continue it), more
 * than 4 stop sequences, and any top-level member not listed above (an Anthropic feature this
 * translation does not know is not silently lost).
 */
#include "routing/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/xlate-int.h"

#define TO " cannot be sent to an OpenAI model"
#define OPENAI_MAX_STOP 4

/* ---- what cannot be sent (xlate_ao_check) ---------------------------------------------- */

/* Top-level members: translated, dropped, or (any other) refused. */
static const char *const known[] = {
    "model",         "messages",     "system",   "max_tokens", "stop_sequences", "stream",
    "temperature",   "top_p",        "metadata", "tools",      "tool_choice",    "output_format",
    "cache_control", "service_tier", "thinking", NULL,
};

static int is_known(const char *key)
{
    for (int i = 0; known[i] != NULL; i++)
        if (strcmp(known[i], key) == 0)
            return 1;
    return 0;
}

static const char *type_of(const cJSON *block)
{
    const cJSON *t = XGET(block, "type");

    return cJSON_IsString(t) ? t->valuestring : "";
}

static const char *refuse(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *refuse(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || cap == 0)
        return "the request cannot be sent to an OpenAI model";
    va_start(ap, fmt);
    if (vsnprintf(buf, cap, fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
    return buf;
}

/* A text block's citations: none (absent, null, []) can be sent. */
static int has_citations(const cJSON *block)
{
    const cJSON *c = XGET(block, "citations");

    return c != NULL && !cJSON_IsNull(c) && !(cJSON_IsArray(c) && cJSON_GetArraySize(c) == 0);
}

/* One block of messages[i].content[j] (path names it). */
static const char *check_block(const cJSON *b, int assistant, const char *path, char *buf,
                               size_t cap)
{
    const char *t = type_of(b);

    if (strcmp(t, "text") == 0) {
        if (has_citations(b))
            return refuse(buf, cap, "'%s.citations'" TO, path);
        return NULL;
    }
    if (assistant) {
        if (strcmp(t, "tool_use") == 0 || strcmp(t, "thinking") == 0 ||
            strcmp(t, "redacted_thinking") == 0)
            return NULL;
    } else if (strcmp(t, "image") == 0) {
        const char *st = type_of(XGET(b, "source"));
        if (strcmp(st, "base64") != 0 && strcmp(st, "url") != 0)
            return refuse(buf, cap, "'%s.source' of type '%s'" TO " (only base64 and url images)",
                          path, st);
        return NULL;
    } else if (strcmp(t, "tool_result") == 0) {
        const cJSON *c = XGET(b, "content"), *x;
        int k = 0;
        cJSON_ArrayForEach(x, (cJSON_IsArray(c) ? c : NULL))
        {
            if (strcmp(type_of(x), "text") != 0)
                return refuse(buf, cap,
                              "'%s.content[%d]' of type '%s'" TO
                              " (an OpenAI tool result carries text only)",
                              path, k, type_of(x));
            if (has_citations(x))
                return refuse(buf, cap, "'%s.content[%d].citations'" TO, path, k);
            k++;
        }
        return NULL;
    } else if (strcmp(t, "document") == 0) {
        return refuse(buf, cap, "'%s' of type 'document' (a PDF or text document)" TO, path);
    }
    return refuse(buf, cap, "'%s' of type '%s'" TO, path, t);
}

const char *xlate_ao_check(const cJSON *body, char *buf, size_t cap)
{
    const cJSON *v, *m;
    char path[64];
    int i = 0, last_assistant = 0;

    cJSON_ArrayForEach(v, body)
    {
        if (cJSON_IsNull(v))
            continue;
        if (strcmp(v->string, "thinking") == 0) {
            if (strcmp(type_of(v), "disabled") != 0)
                return refuse(buf, cap, "'thinking' (extended thinking)" TO);
        } else if (!is_known(v->string)) {
            return refuse(buf, cap, "'%s'" TO, v->string);
        }
    }
    v = XGET(body, "stop_sequences");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > OPENAI_MAX_STOP)
        return refuse(buf, cap, "'stop_sequences' with more than %d entries" TO, OPENAI_MAX_STOP);
    v = XGET(body, "output_format");
    if (v != NULL && !cJSON_IsNull(v) && strcmp(type_of(v), "json_schema") != 0)
        return refuse(buf, cap, "'output_format' of type '%s'" TO, type_of(v));
    cJSON_ArrayForEach(v, XGET(body, "tools"))
    {
        const char *t = type_of(v);
        if (XGET(v, "type") != NULL && strcmp(t, "custom") != 0)
            return refuse(buf, cap, "'tools[%d]' of type '%s' (a server tool)" TO, i, t);
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(m, XGET(body, "messages"))
    {
        const cJSON *b;
        int j = 0;

        last_assistant = cJSON_IsString(XGET(m, "role")) &&
                         strcmp(XGET(m, "role")->valuestring, "assistant") == 0;
        cJSON_ArrayForEach(b, (cJSON_IsArray(XGET(m, "content")) ? XGET(m, "content") : NULL))
        {
            const char *why;
            snprintf(path, sizeof(path), "messages[%d].content[%d]", i, j++);
            why = check_block(b, last_assistant, path, buf, cap);
            if (why != NULL)
                return why;
        }
        i++;
    }
    if (last_assistant)
        return refuse(buf, cap, "'messages[%d]': a last assistant message (a prefill)" TO, i - 1);
    return NULL;
}

/* ---- the request (xlate_ao_request) ---------------------------------------------------- */

/* The translation's state: where a failure's reason goes. */
struct bld {
    char *err;
    size_t errlen;
};

static int bad(struct bld *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct bld *b, const char *fmt, ...)
{
    va_list ap;

    if (b->err == NULL || b->errlen == 0)
        return -1;
    va_start(ap, fmt);
    if (vsnprintf(b->err, b->errlen, fmt, ap) < 0)
        b->err[0] = '\0';
    va_end(ap);
    return -1;
}

/* A growable string, malloc'd; never longer than the request it comes from (its parts are
 * strings of the request, joined). */
struct sbuf {
    char *p;
    size_t len, cap;
};

static int sb_add(struct sbuf *s, const char *t, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t c = s->cap ? s->cap : 256;
        char *p;
        while (c < s->len + n + 1)
            c *= 2;
        p = realloc(s->p, c);
        if (p == NULL)
            return -1;
        s->p = p;
        s->cap = c;
    }
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
    return 0;
}

static int sb_str(struct sbuf *s, const char *t)
{
    return sb_add(s, t, strlen(t));
}

/* A string member that must be there. */
static const char *need_str(struct bld *b, const cJSON *obj, const char *key, const char *path)
{
    const cJSON *v = XGET(obj, key);

    if (!cJSON_IsString(v)) {
        bad(b, "'%s.%s' must be a string", path, key);
        return NULL;
    }
    return v->valuestring;
}

static cJSON *message(const char *role)
{
    cJSON *m = cJSON_CreateObject();

    if (xlate_add_str(m, "role", role) < 0) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* Appends {"role": role, "content": text} to msgs. */
static int append_text_msg(cJSON *msgs, const char *role, const char *text)
{
    cJSON *m = message(role);

    if (m == NULL)
        return -1;
    if (xlate_add_str(m, "content", text) < 0) {
        cJSON_Delete(m);
        return -1;
    }
    return xlate_append(msgs, m);
}

static cJSON *text_part(const char *text)
{
    cJSON *p = cJSON_CreateObject();

    if (xlate_add_str(p, "type", "text") < 0 || xlate_add_str(p, "text", text) < 0) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* system: a string, or text blocks -> the first message. */
static int add_system(struct bld *b, const cJSON *sys, cJSON *msgs)
{
    cJSON *m, *parts;
    const cJSON *blk;
    int n = 0;

    if (sys == NULL || cJSON_IsNull(sys))
        return 0;
    if (cJSON_IsString(sys)) {
        if (sys->valuestring[0] == '\0')
            return 0;
        return append_text_msg(msgs, "system", sys->valuestring);
    }
    if (!cJSON_IsArray(sys))
        return bad(b, "'system' must be a string or an array of text blocks");
    cJSON_ArrayForEach(blk, sys)
    {
        if (strcmp(type_of(blk), "text") != 0 || !cJSON_IsString(XGET(blk, "text")))
            return bad(b, "'system[%d]' must be a text block", n);
        n++;
    }
    if (n == 0)
        return 0;
    if (n == 1) /* the common case, as a string: every OpenAI-compatible provider takes it */
        return append_text_msg(msgs, "system", XGET(sys->child, "text")->valuestring);
    m = message("system");
    parts = cJSON_CreateArray();
    if (xlate_add(m, "content", parts) < 0) {
        cJSON_Delete(m);
        return -1;
    }
    cJSON_ArrayForEach(blk, sys)
    {
        if (xlate_append(parts, text_part(XGET(blk, "text")->valuestring)) < 0) {
            cJSON_Delete(m);
            return -1;
        }
    }
    return xlate_append(msgs, m);
}

/* An image block -> an image_url part. */
static cJSON *image_part(struct bld *b, const cJSON *blk, const char *path)
{
    const cJSON *src = XGET(blk, "source");
    cJSON *p, *iu;
    const char *url;
    char *data = NULL;

    if (strcmp(type_of(src), "url") == 0) {
        url = need_str(b, src, "url", path);
    } else {
        const char *mt = need_str(b, src, "media_type", path);
        const char *d = mt != NULL ? need_str(b, src, "data", path) : NULL;
        size_t n;
        if (d == NULL)
            return NULL;
        n = strlen(mt) + strlen(d) + 16;
        data = malloc(n);
        if (data == NULL)
            return NULL;
        snprintf(data, n, "data:%s;base64,%s", mt, d);
        url = data;
    }
    if (url == NULL)
        return NULL;
    /* each child is made attached (cJSON_Add*ToObject), so a failure leaves nothing loose */
    p = cJSON_CreateObject();
    if (xlate_add_str(p, "type", "image_url") < 0 ||
        (iu = cJSON_AddObjectToObject(p, "image_url")) == NULL ||
        xlate_add_str(iu, "url", url) < 0) {
        cJSON_Delete(p);
        p = NULL;
    }
    free(data);
    return p;
}

/* A tool_result's content (string or text blocks) into s, "Error: " first when is_error. */
static int result_text(const cJSON *blk, struct sbuf *s)
{
    const cJSON *c = XGET(blk, "content"), *x;
    int first = 1;

    if (cJSON_IsTrue(XGET(blk, "is_error")) && sb_str(s, "Error: ") < 0)
        return -1;
    if (cJSON_IsString(c))
        return sb_str(s, c->valuestring);
    cJSON_ArrayForEach(x, (cJSON_IsArray(c) ? c : NULL))
    {
        const cJSON *t = XGET(x, "text");
        if (!cJSON_IsString(t))
            continue;
        if ((!first && sb_str(s, "\n") < 0) || sb_str(s, t->valuestring) < 0)
            return -1;
        first = 0;
    }
    if (s->len == 0 && sb_add(s, "", 0) < 0) /* an empty result is "" */
        return -1;
    return 0;
}

/* The tool message for id among those of this turn (from index first of msgs), or NULL. */
static cJSON *tool_message(cJSON *msgs, int first, const char *id)
{
    cJSON *m;
    int i = 0;

    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *tid = XGET(m, "tool_call_id");
        if (i++ >= first && cJSON_IsString(tid) && strcmp(tid->valuestring, id) == 0)
            return m;
    }
    return NULL;
}

/* A tool_result -> a tool message; a second result for the same id joins the first's. */
static int add_tool_result(struct bld *b, const cJSON *blk, cJSON *msgs, int first,
                           const char *path)
{
    const char *id = need_str(b, blk, "tool_use_id", path);
    struct sbuf s = {0};
    cJSON *m;
    int rc = -1;

    if (id == NULL)
        return -1;
    m = tool_message(msgs, first, id);
    if (m != NULL) {
        const cJSON *old = XGET(m, "content");
        if (sb_str(&s, old->valuestring) < 0 || sb_str(&s, "\n") < 0 || result_text(blk, &s) < 0)
            goto out;
        if (cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateString(s.p)))
            rc = 0;
        goto out;
    }
    if (result_text(blk, &s) < 0)
        goto out;
    m = message("tool");
    if (m == NULL || xlate_add_str(m, "tool_call_id", id) < 0 ||
        xlate_add_str(m, "content", s.p) < 0) {
        cJSON_Delete(m);
        goto out;
    }
    rc = xlate_append(msgs, m);
out:
    free(s.p);
    return rc;
}

/* A user turn: its tool results as tool messages, then its other blocks as one message. */
static int add_user(struct bld *b, const cJSON *content, cJSON *msgs, int i)
{
    const cJSON *blk;
    cJSON *parts, *m;
    char path[64];
    int j = 0, first = cJSON_GetArraySize(msgs);

    parts = cJSON_CreateArray();
    if (parts == NULL)
        return -1;
    cJSON_ArrayForEach(blk, content)
    {
        const char *t = type_of(blk);
        cJSON *p = NULL;
        snprintf(path, sizeof(path), "messages[%d].content[%d]", i, j++);
        if (strcmp(t, "tool_result") == 0) {
            if (add_tool_result(b, blk, msgs, first, path) < 0)
                goto fail;
            continue;
        }
        if (strcmp(t, "text") == 0) {
            const char *text = need_str(b, blk, "text", path);
            p = text != NULL ? text_part(text) : NULL;
        } else { /* image: xlate_ao_check let nothing else through */
            p = image_part(b, blk, path);
        }
        if (xlate_append(parts, p) < 0)
            goto fail;
    }
    if (cJSON_GetArraySize(parts) == 0) {
        cJSON_Delete(parts);
        return 0;
    }
    if (cJSON_GetArraySize(parts) == 1 && strcmp(type_of(parts->child), "text") == 0) {
        /* one text: a plain string, as most clients send it */
        int rc = append_text_msg(msgs, "user", XGET(parts->child, "text")->valuestring);
        cJSON_Delete(parts);
        return rc;
    }
    m = message("user");
    if (m == NULL) {
        cJSON_Delete(parts);
        return -1;
    }
    if (xlate_add(m, "content", parts) < 0) {
        cJSON_Delete(m);
        return -1;
    }
    return xlate_append(msgs, m);
fail:
    cJSON_Delete(parts);
    return -1;
}

/* A tool_use block -> a tool call (arguments: the input printed as JSON). */
static cJSON *tool_call(struct bld *b, const cJSON *blk, const char *path)
{
    const char *id = need_str(b, blk, "id", path);
    const char *name = id != NULL ? need_str(b, blk, "name", path) : NULL;
    const cJSON *input = XGET(blk, "input");
    cJSON *c, *fn;
    char *args;

    if (name == NULL)
        return NULL;
    if (!cJSON_IsObject(input)) {
        bad(b, "'%s.input' must be an object", path);
        return NULL;
    }
    args = cJSON_PrintUnformatted(input);
    if (args == NULL)
        return NULL;
    c = cJSON_CreateObject();
    if (xlate_add_str(c, "id", id) < 0 || xlate_add_str(c, "type", "function") < 0 ||
        (fn = cJSON_AddObjectToObject(c, "function")) == NULL ||
        xlate_add_str(fn, "name", name) < 0 ||
        xlate_add_str(fn, "arguments", args) < 0) {
        cJSON_Delete(c);
        c = NULL;
    }
    cJSON_free(args);
    return c;
}

/* An assistant turn: its texts joined as content, its tool_use blocks as tool_calls. */
static int add_assistant(struct bld *b, const cJSON *content, cJSON *msgs, int i)
{
    cJSON *m = message("assistant"), *calls = cJSON_CreateArray();
    struct sbuf s = {0};
    const cJSON *blk;
    char path[64];
    int j = 0, texts = 0, rc = -1;

    if (m == NULL || calls == NULL)
        goto out;
    cJSON_ArrayForEach(blk, content)
    {
        const char *t = type_of(blk);
        snprintf(path, sizeof(path), "messages[%d].content[%d]", i, j++);
        if (strcmp(t, "text") == 0) {
            const char *text = need_str(b, blk, "text", path);
            /* Anthropic's text blocks are pieces of one text: joined as they are */
            if (text == NULL || sb_str(&s, text) < 0)
                goto out;
            texts++;
        } else if (strcmp(t, "tool_use") == 0) {
            if (xlate_append(calls, tool_call(b, blk, path)) < 0)
                goto out;
        } /* thinking, redacted_thinking: OpenAI takes no reasoning back */
    }
    if (texts > 0 ? xlate_add_str(m, "content", s.p != NULL ? s.p : "") < 0
                  : xlate_add(m, "content",
                              cJSON_GetArraySize(calls) > 0 ? cJSON_CreateNull()
                                                            : cJSON_CreateString("")) < 0)
        goto out;
    if (cJSON_GetArraySize(calls) > 0) {
        rc = xlate_add(m, "tool_calls", calls);
        calls = NULL;
        if (rc < 0)
            goto out;
    }
    rc = xlate_append(msgs, m);
    m = NULL;
out:
    cJSON_Delete(m);
    cJSON_Delete(calls);
    free(s.p);
    return rc;
}

static int add_messages(struct bld *b, const cJSON *list, cJSON *msgs)
{
    const cJSON *m;
    int i = 0;

    if (!cJSON_IsArray(list))
        return bad(b, "'messages' must be an array");
    cJSON_ArrayForEach(m, list)
    {
        const cJSON *role = XGET(m, "role"), *content = XGET(m, "content");
        int assistant, rc;

        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "assistant") != 0))
            return bad(b, "'messages[%d].role' must be \"user\" or \"assistant\"", i);
        assistant = role->valuestring[0] == 'a';
        if (cJSON_IsString(content)) {
            if (append_text_msg(msgs, role->valuestring, content->valuestring) < 0)
                return -1;
        } else if (cJSON_IsArray(content)) {
            rc = assistant ? add_assistant(b, content, msgs, i) : add_user(b, content, msgs, i);
            if (rc < 0)
                return -1;
        } else {
            return bad(b, "'messages[%d].content' must be a string or an array of blocks", i);
        }
        i++;
    }
    return 0;
}

static int add_tools(struct bld *b, const cJSON *body, cJSON *out)
{
    const cJSON *tools = XGET(body, "tools"), *t, *tc = XGET(body, "tool_choice");
    cJSON *arr;
    char path[32];
    int i = 0;

    if (tools == NULL || cJSON_IsNull(tools))
        return 0;
    if (!cJSON_IsArray(tools))
        return bad(b, "'tools' must be an array");
    if (cJSON_GetArraySize(tools) == 0)
        return 0; /* OpenAI refuses an empty list, and tool_choice without tools */
    arr = cJSON_CreateArray();
    if (xlate_add(out, "tools", arr) < 0)
        return -1;
    cJSON_ArrayForEach(t, tools)
    {
        cJSON *ft = cJSON_CreateObject(), *fn;
        const cJSON *schema = XGET(t, "input_schema"), *desc = XGET(t, "description");
        const char *name;
        snprintf(path, sizeof(path), "tools[%d]", i++);
        name = need_str(b, t, "name", path);
        if (xlate_add_str(ft, "type", "function") < 0 ||
            (fn = cJSON_AddObjectToObject(ft, "function")) == NULL ||
            xlate_add_str(fn, "name", name) < 0 ||
            (cJSON_IsString(desc) && xlate_add_str(fn, "description", desc->valuestring) < 0) ||
            xlate_add(fn, "parameters",
                      cJSON_IsObject(schema) ? xlate_dup(schema)
                                             : cJSON_Parse("{\"type\":\"object\"}")) < 0) {
            cJSON_Delete(ft);
            return -1;
        }
        if (xlate_append(arr, ft) < 0)
            return -1;
    }
    if (tc == NULL || cJSON_IsNull(tc))
        return 0;
    if (!cJSON_IsObject(tc))
        return bad(b, "'tool_choice' must be an object");
    {
        const char *k = type_of(tc);
        cJSON *choice;
        if (strcmp(k, "auto") == 0 || strcmp(k, "none") == 0) {
            choice = cJSON_CreateString(k);
        } else if (strcmp(k, "any") == 0) {
            choice = cJSON_CreateString("required");
        } else if (strcmp(k, "tool") == 0) {
            const char *name = need_str(b, tc, "name", "tool_choice");
            cJSON *fn;
            if (name == NULL)
                return -1;
            choice = cJSON_CreateObject();
            if (xlate_add_str(choice, "type", "function") < 0 ||
                (fn = cJSON_AddObjectToObject(choice, "function")) == NULL ||
                xlate_add_str(fn, "name", name) < 0) {
                cJSON_Delete(choice);
                return -1;
            }
        } else {
            return bad(b, "'tool_choice.type' must be auto, any, tool or none");
        }
        if (xlate_add(out, "tool_choice", choice) < 0)
            return -1;
    }
    if (cJSON_IsTrue(XGET(tc, "disable_parallel_tool_use")) &&
        xlate_add(out, "parallel_tool_calls", cJSON_CreateFalse()) < 0)
        return -1;
    return 0;
}

/* A number member copied as it is (null or absent: nothing). */
static int copy_num(struct bld *b, const cJSON *body, const char *from, cJSON *out, const char *to)
{
    const cJSON *v = XGET(body, from);

    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return bad(b, "'%s' must be a number", from);
    return xlate_add_num(out, to, v->valuedouble);
}

/* The members other than messages and tools. */
static int add_params(struct bld *b, const cJSON *body, int64_t max_tokens, int stream, cJSON *out)
{
    const cJSON *v;

    if (XGET(body, "max_tokens") != NULL && !cJSON_IsNull(XGET(body, "max_tokens"))) {
        if (copy_num(b, body, "max_tokens", out, "max_completion_tokens") < 0)
            return -1;
    } else if (max_tokens >= 0 &&
               xlate_add_num(out, "max_completion_tokens", (double)max_tokens) < 0) {
        return -1;
    }
    if (copy_num(b, body, "temperature", out, "temperature") < 0 ||
        copy_num(b, body, "top_p", out, "top_p") < 0)
        return -1;
    v = XGET(body, "stop_sequences");
    if (v != NULL && !cJSON_IsNull(v)) {
        const cJSON *x;
        if (!cJSON_IsArray(v))
            return bad(b, "'stop_sequences' must be an array of strings");
        cJSON_ArrayForEach(x, v)
        {
            if (!cJSON_IsString(x))
                return bad(b, "'stop_sequences' must be an array of strings");
        }
        if (cJSON_GetArraySize(v) > 0 && xlate_add(out, "stop", xlate_dup(v)) < 0)
            return -1;
    }
    v = XGET(XGET(body, "metadata"), "user_id");
    if (cJSON_IsString(v) && xlate_add_str(out, "user", v->valuestring) < 0)
        return -1;
    v = XGET(body, "output_format");
    if (v != NULL && !cJSON_IsNull(v)) {
        cJSON *rf, *js;
        if (!cJSON_IsObject(XGET(v, "schema")))
            return bad(b, "'output_format.schema' must be an object");
        if ((rf = cJSON_AddObjectToObject(out, "response_format")) == NULL ||
            xlate_add_str(rf, "type", "json_schema") < 0 ||
            (js = cJSON_AddObjectToObject(rf, "json_schema")) == NULL ||
            xlate_add_str(js, "name", "output") < 0 ||
            xlate_add(js, "schema", xlate_dup(XGET(v, "schema"))) < 0 ||
            xlate_add(js, "strict", cJSON_CreateTrue()) < 0)
            return -1;
    }
    if (stream) {
        cJSON *so;
        if (xlate_add(out, "stream", cJSON_CreateTrue()) < 0 ||
            (so = cJSON_AddObjectToObject(out, "stream_options")) == NULL ||
            xlate_add(so, "include_usage", cJSON_CreateTrue()) < 0)
            return -1;
    }
    return 0;
}

cJSON *xlate_ao_request(const cJSON *body, const char *upstream_model, int64_t max_tokens,
                        int stream, char *err, size_t errlen)
{
    struct bld b = {err, errlen};
    const char *why;
    cJSON *out, *msgs;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    why = xlate_ao_check(body, err, errlen);
    if (why != NULL) {
        if (why != err)
            xlate_seterr(err, errlen, "%s", why);
        return NULL;
    }
    out = cJSON_CreateObject();
    if (xlate_add_str(out, "model", upstream_model) < 0 ||
        (msgs = cJSON_AddArrayToObject(out, "messages")) == NULL ||
        add_system(&b, XGET(body, "system"), msgs) < 0 ||
        add_messages(&b, XGET(body, "messages"), msgs) < 0 || add_tools(&b, body, out) < 0 ||
        add_params(&b, body, max_tokens, stream, out) < 0) {
        cJSON_Delete(out);
        if (err != NULL && errlen > 0 && err[0] == '\0')
            xlate_seterr(err, errlen, "out of memory");
        return NULL;
    }
    return out;
}
