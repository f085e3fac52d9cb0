/*
 * xlate_oa: the client speaks OpenAI chat completions, the provider Anthropic Messages. This
 * file: the request (xlate_oa_check, xlate_oa_request). The answer's way back (whole body,
 * error, stream) is in xlate_oa2.c.
 *
 * What has no Anthropic equivalent is refused with the field's name (n > 1, logprobs,
 * top_logprobs, logit_bias, audio, modalities with audio, prediction, non-zero presence or
 * frequency penalties, temperature outside 0..1, response_format json together with tools
 * or with a schema that is not an object's, the
 * deprecated functions/function_call, web_search_options, reasoning_effort, tools that are not
 * functions, audio and file content parts). Dropped as meaningless to Anthropic: seed (OpenAI's
 * determinism is best-effort, Anthropic has none), store, metadata, service_tier,
 * stream_options (Anthropic streams always carry usage), messages' name, tools' strict,
 * image detail, and any member this file does not know.
 *
 * response_format json_object or json_schema becomes one tool, XLATE_OA_JSON_TOOL, whose input
 * schema is the schema ({"type":"object"} for json_object), forced with tool_choice: Anthropic
 * has no JSON mode, and a forced tool's input is JSON of the schema. xlate_oa2.c turns its call
 * back into the message's content.
 */
#include <stdio.h>
#include <string.h>

#include "routing/xlate-int.h"

/* Sent as max_tokens when neither the client nor the caller gave a cap (Anthropic requires
 * one; the pipeline normally passes the budget's clamp or the model's maximum). */
#define OA_DEFAULT_MAX_TOKENS 4096

/* A member is set when present and not null. */
static int is_set(const cJSON *v)
{
    return v != NULL && !cJSON_IsNull(v);
}

static const char *refuse(char *buf, size_t cap, const char *field, const char *why)
{
    xlate_seterr(buf, cap, "'%s' %s cannot be sent to an Anthropic model", field, why);
    return buf != NULL && cap > 0 ? buf : "a field cannot be sent to an Anthropic model";
}

/* The content parts of message i that have no Anthropic equivalent. */
static const char *check_parts(const cJSON *content, int i, const char *role, char *buf, size_t cap)
{
    const cJSON *p;
    char field[96];
    int j = 0;

    if (!cJSON_IsArray(content))
        return NULL;
    cJSON_ArrayForEach(p, content)
    {
        const cJSON *t = XGET(p, "type");
        const char *type = cJSON_IsString(t) ? t->valuestring : "";
        int ok = strcmp(type, "text") == 0 ||
                 (strcmp(type, "image_url") == 0 && strcmp(role, "user") == 0) ||
                 (strcmp(type, "refusal") == 0 && strcmp(role, "assistant") == 0);
        if (!ok) {
            char why[96];
            snprintf(field, sizeof(field), "messages[%d].content[%d].type", i, j);
            snprintf(why, sizeof(why), "'%.40s' in a %s message", type, role);
            return refuse(buf, cap, field, why);
        }
        j++;
    }
    return NULL;
}

static const char *check_messages(const cJSON *msgs, char *buf, size_t cap)
{
    const cJSON *m;
    char field[96];
    int i = 0;

    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *r = XGET(m, "role");
        const char *role = cJSON_IsString(r) ? r->valuestring : "";
        const char *why;

        if (strcmp(role, "function") == 0) {
            snprintf(field, sizeof(field), "messages[%d].role", i);
            return refuse(buf, cap, field, "'function' (deprecated; use tool)");
        }
        if (strcmp(role, "assistant") == 0 && is_set(XGET(m, "audio"))) {
            snprintf(field, sizeof(field), "messages[%d].audio", i);
            return refuse(buf, cap, field, "(audio output)");
        }
        if (strcmp(role, "assistant") == 0 && is_set(XGET(m, "function_call"))) {
            snprintf(field, sizeof(field), "messages[%d].function_call", i);
            return refuse(buf, cap, field, "(deprecated; use tool_calls)");
        }
        why = check_parts(XGET(m, "content"), i, role, buf, cap);
        if (why != NULL)
            return why;
        i++;
    }
    return NULL;
}

static const char *check_tools(const cJSON *tools, char *buf, size_t cap)
{
    const cJSON *t;
    char field[64];
    int i = 0;

    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *type = XGET(t, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0) {
            snprintf(field, sizeof(field), "tools[%d].type", i);
            return refuse(buf, cap, field, "other than function");
        }
        i++;
    }
    return NULL;
}

/* The schema response_format asks for (json_schema), {"type":"object"} for json_object (no
 * schema, *none set), NULL for text or none. */
static const cJSON *format_schema(const cJSON *rf, int *none)
{
    const cJSON *t = XGET(rf, "type");

    *none = 0;
    if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") == 0)
        return NULL;
    if (strcmp(t->valuestring, "json_object") == 0) {
        *none = 1;
        return rf;
    }
    return XGET(XGET(rf, "json_schema"), "schema");
}

static const char *check_format(const cJSON *rf, const cJSON *tools, char *buf, size_t cap)
{
    const cJSON *t = XGET(rf, "type"), *schema, *st;
    int none;

    if (!is_set(rf))
        return NULL;
    if (!cJSON_IsString(t) ||
        (strcmp(t->valuestring, "text") != 0 && strcmp(t->valuestring, "json_object") != 0 &&
         strcmp(t->valuestring, "json_schema") != 0))
        return refuse(buf, cap, "response_format", "other than text, json_object or json_schema");
    if (strcmp(t->valuestring, "text") == 0)
        return NULL;
    schema = format_schema(rf, &none);
    if (cJSON_GetArraySize(tools) > 0)
        return refuse(buf, cap, "response_format", "json together with tools");
    st = XGET(schema, "type");
    if (!none &&
        !(cJSON_IsObject(schema) && cJSON_IsString(st) && strcmp(st->valuestring, "object") == 0))
        return refuse(buf, cap, "response_format.json_schema.schema",
                      "other than an object's schema");
    return NULL;
}

const char *xlate_oa_check(const cJSON *body, char *buf, size_t cap)
{
    static const char *const unsupported[] = {"top_logprobs",     "audio",
                                              "prediction",       "functions",
                                              "function_call",    "web_search_options",
                                              "reasoning_effort", NULL};
    const cJSON *v, *m;
    const char *why;

    v = XGET(body, "n");
    if (cJSON_IsNumber(v) && v->valuedouble > 1)
        return refuse(buf, cap, "n", "greater than 1");
    if (cJSON_IsTrue(XGET(body, "logprobs")))
        return refuse(buf, cap, "logprobs", "(true)");
    for (int i = 0; unsupported[i] != NULL; i++)
        if (is_set(XGET(body, unsupported[i])))
            return refuse(buf, cap, unsupported[i], "(no Anthropic equivalent)");
    v = XGET(body, "logit_bias");
    if (is_set(v) && !(cJSON_IsObject(v) && v->child == NULL))
        return refuse(buf, cap, "logit_bias", "(no Anthropic equivalent)");
    cJSON_ArrayForEach(m, XGET(body, "modalities"))
    {
        if (cJSON_IsString(m) && strcmp(m->valuestring, "audio") == 0)
            return refuse(buf, cap, "modalities", "with audio");
    }
    v = XGET(body, "presence_penalty");
    if (is_set(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
        return refuse(buf, cap, "presence_penalty", "other than 0");
    v = XGET(body, "frequency_penalty");
    if (is_set(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
        return refuse(buf, cap, "frequency_penalty", "other than 0");
    v = XGET(body, "temperature");
    if (is_set(v) && !(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1))
        return refuse(buf, cap, "temperature", "outside 0..1 (Anthropic's range)");
    why = check_format(XGET(body, "response_format"), XGET(body, "tools"), buf, cap);
    if (why != NULL)
        return why;
    why = check_tools(XGET(body, "tools"), buf, cap);
    if (why != NULL)
        return why;
    return check_messages(XGET(body, "messages"), buf, cap);
}

/* --- the request --- */

struct oa_req {
    char *err;
    size_t errlen;
    cJSON *msgs;            /* Anthropic messages */
    cJSON *sys;             /* system text blocks */
    int sys_count;          /* system/developer messages seen */
    const char *sys_string; /* the only one's string content, when it was a string */
};

static int fail(struct oa_req *q, const char *field, const char *why)
{
    xlate_seterr(q->err, q->errlen, "'%s' %s", field, why);
    return -1;
}

static int oom(struct oa_req *q)
{
    xlate_seterr(q->err, q->errlen, "out of memory");
    return -1;
}

/* Appends the text of content (a string, or parts of type text or refusal) to blocks, one
 * block a part, empty ones left out. Parts of other types are the caller's (skipped here). */
static int add_texts(struct oa_req *q, cJSON *blocks, const cJSON *content, const char *field)
{
    const cJSON *p;

    if (cJSON_IsString(content)) {
        if (content->valuestring[0] == '\0')
            return 0;
        return xlate_append(blocks, xlate_text_block(content->valuestring)) < 0 ? oom(q) : 0;
    }
    if (!is_set(content))
        return 0;
    if (!cJSON_IsArray(content))
        return fail(q, field, "is neither a string nor an array of content parts");
    cJSON_ArrayForEach(p, content)
    {
        const cJSON *t = XGET(p, "type");
        const cJSON *s = NULL;

        if (cJSON_IsString(t) && strcmp(t->valuestring, "text") == 0)
            s = XGET(p, "text");
        else if (cJSON_IsString(t) && strcmp(t->valuestring, "refusal") == 0)
            s = XGET(p, "refusal");
        else
            continue;
        if (!cJSON_IsString(s))
            return fail(q, field, "has a text part without a string");
        if (s->valuestring[0] != '\0' && xlate_append(blocks, xlate_text_block(s->valuestring)) < 0)
            return oom(q);
    }
    return 0;
}

/* The content array of the turn that a message of role goes into: the last turn when it has
 * that role (Anthropic wants the roles to alternate), else a new one. */
static cJSON *turn(struct oa_req *q, const char *role)
{
    cJSON *last = cJSON_GetArrayItem(q->msgs, cJSON_GetArraySize(q->msgs) - 1);
    const cJSON *r = XGET(last, "role");
    cJSON *t, *c;

    if (cJSON_IsString(r) && strcmp(r->valuestring, role) == 0)
        return XGET(last, "content");
    t = cJSON_CreateObject();
    if (xlate_append(q->msgs, t) < 0 || xlate_add_str(t, "role", role) < 0)
        return NULL;
    c = cJSON_CreateArray();
    return xlate_add(t, "content", c) < 0 ? NULL : c;
}

/* An image_url part as an image block: a data URL's base64 data, else the URL. */
static int add_image(struct oa_req *q, cJSON *blocks, const cJSON *part, const char *field)
{
    const cJSON *iu = XGET(part, "image_url");
    const cJSON *u = cJSON_IsString(iu) ? iu : XGET(iu, "url"); /* the short form, a string */
    cJSON *b = cJSON_CreateObject(), *src;
    const char *url;
    int rc;

    if (xlate_append(blocks, b) < 0 || xlate_add_str(b, "type", "image") < 0)
        return oom(q);
    src = cJSON_CreateObject();
    if (xlate_add(b, "source", src) < 0)
        return oom(q);
    if (!cJSON_IsString(u))
        return fail(q, field, "has no image_url.url string");
    url = u->valuestring;
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strchr(url + 5, ';');
        const char *comma = strchr(url + 5, ',');
        char media[64];
        size_t ml;

        if (semi == NULL || comma == NULL || semi > comma || strncmp(semi, ";base64,", 8) != 0)
            return fail(q, field, "is a data URL that is not base64 (data:MEDIA;base64,DATA)");
        ml = (size_t)(semi - (url + 5));
        if (ml == 0 || ml >= sizeof(media))
            return fail(q, field, "is a data URL without a media type");
        memcpy(media, url + 5, ml);
        media[ml] = '\0';
        if (strcmp(media, "image/jpeg") != 0 && strcmp(media, "image/png") != 0 &&
            strcmp(media, "image/gif") != 0 && strcmp(media, "image/webp") != 0)
            return fail(q, field,
                        "has a media type an Anthropic model does not take (jpeg, png, gif, webp)");
        rc = xlate_add_str(src, "type", "base64") | xlate_add_str(src, "media_type", media) |
             xlate_add_str(src, "data", comma + 1);
    } else {
        rc = xlate_add_str(src, "type", "url") | xlate_add_str(src, "url", url);
    }
    return rc < 0 ? oom(q) : 0;
}

static int user_message(struct oa_req *q, const cJSON *m, int i)
{
    const cJSON *content = XGET(m, "content");
    cJSON *blocks = turn(q, "user");
    const cJSON *p;
    char field[80];
    int j = 0;

    if (blocks == NULL)
        return oom(q);
    snprintf(field, sizeof(field), "messages[%d].content", i);
    if (!cJSON_IsArray(content))
        return add_texts(q, blocks, content, field);
    cJSON_ArrayForEach(p, content)
    {
        const cJSON *t = XGET(p, "type");
        char pf[96];

        snprintf(pf, sizeof(pf), "messages[%d].content[%d]", i, j++);
        if (cJSON_IsString(t) && strcmp(t->valuestring, "image_url") == 0) {
            if (add_image(q, blocks, p, pf) < 0)
                return -1;
        } else if (cJSON_IsString(t) && strcmp(t->valuestring, "text") == 0) {
            const cJSON *s = XGET(p, "text");
            if (!cJSON_IsString(s))
                return fail(q, pf, "is a text part without a string");
            if (s->valuestring[0] != '\0' && xlate_append(blocks, xlate_text_block(s->valuestring)) < 0)
                return oom(q);
        } else {
            return fail(q, pf, "is a content part an Anthropic model does not take");
        }
    }
    return 0;
}

/* A tool call's arguments (a JSON text) as a tool_use block's input (an object). */
static int tool_input(struct oa_req *q, cJSON *block, const cJSON *args, const char *field)
{
    const char *s = cJSON_IsString(args) ? args->valuestring : NULL;
    cJSON *in;

    if (s != NULL && s[strspn(s, " \t\r\n")] == '\0')
        s = "{}"; /* a call without arguments */
    if (s == NULL)
        return fail(q, field, "is not a string of JSON");
    in = cJSON_ParseWithOpts(s, NULL, 1);
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return fail(q, field, "is not a JSON object (an Anthropic tool call's input must be one)");
    }
    return xlate_add(block, "input", in) < 0 ? oom(q) : 0;
}

static int assistant_message(struct oa_req *q, const cJSON *m, int i)
{
    cJSON *blocks = cJSON_CreateArray(), *to;
    const cJSON *c;
    char field[96];
    int j = 0;

    if (blocks == NULL)
        return oom(q);
    snprintf(field, sizeof(field), "messages[%d].content", i);
    if (add_texts(q, blocks, XGET(m, "content"), field) < 0)
        goto fail;
    cJSON_ArrayForEach(c, XGET(m, "tool_calls"))
    {
        const cJSON *id = XGET(c, "id"), *t = XGET(c, "type"), *fn = XGET(c, "function");
        const cJSON *name = XGET(fn, "name");
        cJSON *b;

        snprintf(field, sizeof(field), "messages[%d].tool_calls[%d]", i, j);
        if (is_set(t) && !(cJSON_IsString(t) && strcmp(t->valuestring, "function") == 0)) {
            fail(q, field, "is not a function call (an Anthropic model takes only those)");
            goto fail;
        }
        if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
            fail(q, field, "has no id or function.name");
            goto fail;
        }
        b = cJSON_CreateObject();
        if (xlate_append(blocks, b) < 0 || xlate_add_str(b, "type", "tool_use") < 0 ||
            xlate_add_str(b, "id", id->valuestring) < 0 ||
            xlate_add_str(b, "name", name->valuestring) < 0) {
            oom(q);
            goto fail;
        }
        snprintf(field, sizeof(field), "messages[%d].tool_calls[%d].function.arguments", i, j);
        if (tool_input(q, b, XGET(fn, "arguments"), field) < 0)
            goto fail;
        j++;
    }
    /* an empty assistant message (no text, no calls) says nothing: Anthropic refuses empty
     * content, so it is left out */
    if (blocks->child == NULL) {
        cJSON_Delete(blocks);
        return 0;
    }
    to = turn(q, "assistant");
    if (to == NULL) {
        oom(q);
        goto fail;
    }
    while (blocks->child != NULL)
        cJSON_AddItemToArray(to, cJSON_DetachItemViaPointer(blocks, blocks->child));
    cJSON_Delete(blocks);
    return 0;
fail:
    cJSON_Delete(blocks);
    return -1;
}

/* A tool message as a tool_result block of a user turn, placed after the turn's other tool
 * results and before its text (Anthropic wants the results first). */
static int tool_message(struct oa_req *q, const cJSON *m, int i)
{
    const cJSON *id = XGET(m, "tool_call_id"), *content = XGET(m, "content");
    cJSON *blocks = turn(q, "user");
    cJSON *b = cJSON_CreateObject(), *c;
    char field[80];
    int at = 0;

    if (blocks == NULL || b == NULL) {
        cJSON_Delete(b);
        return oom(q);
    }
    for (c = blocks->child; c != NULL; c = c->next, at++) {
        const cJSON *t = XGET(c, "type");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "tool_result") != 0)
            break;
    }
    if (!cJSON_InsertItemInArray(blocks, at, b)) {
        cJSON_Delete(b);
        return oom(q);
    }
    snprintf(field, sizeof(field), "messages[%d].tool_call_id", i);
    if (!cJSON_IsString(id))
        return fail(q, field, "is missing (a tool message answers one tool call)");
    if (xlate_add_str(b, "type", "tool_result") < 0 ||
        xlate_add_str(b, "tool_use_id", id->valuestring) < 0)
        return oom(q);
    snprintf(field, sizeof(field), "messages[%d].content", i);
    if (cJSON_IsString(content))
        return xlate_add_str(b, "content", content->valuestring) < 0 ? oom(q) : 0;
    c = cJSON_CreateArray();
    if (xlate_add(b, "content", c) < 0)
        return oom(q);
    return add_texts(q, c, content, field);
}

static int system_message(struct oa_req *q, const cJSON *m, int i)
{
    const cJSON *content = XGET(m, "content");
    char field[80];

    snprintf(field, sizeof(field), "messages[%d].content", i);
    q->sys_count++;
    q->sys_string = cJSON_IsString(content) ? content->valuestring : NULL;
    return add_texts(q, q->sys, content, field);
}

static int messages(struct oa_req *q, const cJSON *msgs)
{
    const cJSON *m;
    int i = 0;

    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return fail(q, "messages", "must be a non-empty array");
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *r = XGET(m, "role");
        const char *role = cJSON_IsString(r) ? r->valuestring : "";
        char field[48];
        int rc;

        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
            rc = system_message(q, m, i);
        else if (strcmp(role, "user") == 0)
            rc = user_message(q, m, i);
        else if (strcmp(role, "assistant") == 0)
            rc = assistant_message(q, m, i);
        else if (strcmp(role, "tool") == 0)
            rc = tool_message(q, m, i);
        else {
            snprintf(field, sizeof(field), "messages[%d].role", i);
            rc = fail(q, field, "is not system, developer, user, assistant or tool");
        }
        if (rc < 0)
            return -1;
        i++;
    }
    return 0;
}

/* response_format json as a forced tool (xlate_oa_check made sure there are no other tools). */
static int json_tool(struct oa_req *q, cJSON *out, const cJSON *rf)
{
    const cJSON *desc = XGET(XGET(rf, "json_schema"), "description");
    const cJSON *schema;
    cJSON *arr, *t, *choice, *s;
    int none;

    schema = format_schema(rf, &none);
    if (schema == NULL)
        return 0;
    arr = cJSON_CreateArray();
    if (xlate_add(out, "tools", arr) < 0)
        return oom(q);
    t = cJSON_CreateObject();
    if (xlate_append(arr, t) < 0 || xlate_add_str(t, "name", XLATE_OA_JSON_TOOL) < 0 ||
        xlate_add_str(t, "description",
                      cJSON_IsString(desc) ? desc->valuestring
                                           : "Give the answer as this tool's input, a JSON "
                                             "object.") < 0)
        return oom(q);
    if (none) {
        s = cJSON_CreateObject();
        if (xlate_add(t, "input_schema", s) < 0 || xlate_add_str(s, "type", "object") < 0)
            return oom(q);
    } else if (xlate_add(t, "input_schema", xlate_dup(schema)) < 0) {
        return oom(q);
    }
    choice = cJSON_CreateObject();
    if (xlate_add(out, "tool_choice", choice) < 0 || xlate_add_str(choice, "type", "tool") < 0 ||
        xlate_add_str(choice, "name", XLATE_OA_JSON_TOOL) < 0)
        return oom(q);
    return 0;
}

static int tools(struct oa_req *q, cJSON *out, const cJSON *body)
{
    const cJSON *list = XGET(body, "tools"), *t, *tc = XGET(body, "tool_choice");
    cJSON *arr, *choice = NULL;
    int i = 0;

    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return json_tool(q, out, XGET(body, "response_format")); /* tool_choice alone: nothing */
    arr = cJSON_CreateArray();
    if (xlate_add(out, "tools", arr) < 0)
        return oom(q);
    cJSON_ArrayForEach(t, list)
    {
        const cJSON *fn = XGET(t, "function");
        const cJSON *name = XGET(fn, "name"), *desc = XGET(fn, "description");
        const cJSON *params = XGET(fn, "parameters");
        cJSON *a = cJSON_CreateObject();
        char field[48];

        snprintf(field, sizeof(field), "tools[%d].function.name", i++);
        if (xlate_append(arr, a) < 0)
            return oom(q);
        if (!cJSON_IsString(name))
            return fail(q, field, "is missing");
        if (xlate_add_str(a, "name", name->valuestring) < 0 ||
            (cJSON_IsString(desc) && xlate_add_str(a, "description", desc->valuestring) < 0))
            return oom(q);
        if (cJSON_IsObject(params)) {
            if (xlate_add(a, "input_schema", xlate_dup(params)) < 0)
                return oom(q);
        } else {
            cJSON *s = cJSON_CreateObject();
            if (xlate_add(a, "input_schema", s) < 0 || xlate_add_str(s, "type", "object") < 0 ||
                xlate_add(s, "properties", cJSON_CreateObject()) < 0)
                return oom(q);
        }
    }
    if (cJSON_IsString(tc)) {
        const char *k = tc->valuestring;
        const char *type = strcmp(k, "auto") == 0       ? "auto"
                           : strcmp(k, "none") == 0     ? "none"
                           : strcmp(k, "required") == 0 ? "any"
                                                        : NULL;
        if (type == NULL)
            return fail(q, "tool_choice", "is not auto, none, required or a named function");
        choice = cJSON_CreateObject();
        if (xlate_add(out, "tool_choice", choice) < 0 || xlate_add_str(choice, "type", type) < 0)
            return oom(q);
    } else if (is_set(tc)) {
        const cJSON *name = XGET(XGET(tc, "function"), "name");
        if (!cJSON_IsObject(tc) || !cJSON_IsString(name))
            return fail(q, "tool_choice", "is not auto, none, required or a named function");
        choice = cJSON_CreateObject();
        if (xlate_add(out, "tool_choice", choice) < 0 ||
            xlate_add_str(choice, "type", "tool") < 0 ||
            xlate_add_str(choice, "name", name->valuestring) < 0)
            return oom(q);
    }
    if (cJSON_IsFalse(XGET(body, "parallel_tool_calls"))) {
        const cJSON *type = XGET(choice, "type");
        if (choice == NULL) {
            choice = cJSON_CreateObject();
            if (xlate_add(out, "tool_choice", choice) < 0 ||
                xlate_add_str(choice, "type", "auto") < 0)
                return oom(q);
        } else if (cJSON_IsString(type) && strcmp(type->valuestring, "none") == 0) {
            return 0; /* no calls at all: nothing to keep apart */
        }
        if (xlate_add(choice, "disable_parallel_tool_use", cJSON_CreateTrue()) < 0)
            return oom(q);
    }
    return 0;
}

/* stop (a string or a list of strings) as stop_sequences. */
static int stops(struct oa_req *q, cJSON *out, const cJSON *stop)
{
    cJSON *arr;
    const cJSON *s;

    if (!is_set(stop))
        return 0;
    arr = cJSON_CreateArray();
    if (xlate_add(out, "stop_sequences", arr) < 0)
        return oom(q);
    if (cJSON_IsString(stop))
        return xlate_append(arr, cJSON_CreateString(stop->valuestring)) < 0 ? oom(q) : 0;
    if (!cJSON_IsArray(stop))
        return fail(q, "stop", "is neither a string nor a list of strings");
    cJSON_ArrayForEach(s, stop)
    {
        if (!cJSON_IsString(s))
            return fail(q, "stop", "is neither a string nor a list of strings");
        if (xlate_append(arr, cJSON_CreateString(s->valuestring)) < 0)
            return oom(q);
    }
    return 0;
}

/* The output cap: max_completion_tokens, else max_tokens, else the caller's, else the
 * default. */
static int cap(struct oa_req *q, cJSON *out, const cJSON *body, int64_t max_tokens)
{
    static const char *const keys[] = {"max_completion_tokens", "max_tokens"};
    double v = max_tokens > 0 ? (double)max_tokens : OA_DEFAULT_MAX_TOKENS;

    for (int i = 0; i < 2; i++) {
        const cJSON *c = XGET(body, keys[i]);
        if (!is_set(c))
            continue;
        if (!cJSON_IsNumber(c) || c->valuedouble < 1 || c->valuedouble > 1e9 ||
            c->valuedouble != (double)(int64_t)c->valuedouble)
            return fail(q, keys[i], "is not a positive integer");
        v = c->valuedouble;
        break;
    }
    return xlate_add_num(out, "max_tokens", v) < 0 ? oom(q) : 0;
}

/* temperature, top_p, stream, user. */
static int sampling(struct oa_req *q, cJSON *out, const cJSON *body, int stream)
{
    const cJSON *t = XGET(body, "temperature"), *p = XGET(body, "top_p");
    const cJSON *u = XGET(body, "user");

    if (cJSON_IsNumber(t) && xlate_add_num(out, "temperature", t->valuedouble) < 0)
        return oom(q);
    if (is_set(p)) {
        if (!cJSON_IsNumber(p) || p->valuedouble < 0 || p->valuedouble > 1)
            return fail(q, "top_p", "is not a number from 0 to 1");
        if (xlate_add_num(out, "top_p", p->valuedouble) < 0)
            return oom(q);
    }
    if (stream && xlate_add(out, "stream", cJSON_CreateTrue()) < 0)
        return oom(q);
    if (cJSON_IsString(u) && u->valuestring[0] != '\0') {
        cJSON *md = cJSON_CreateObject();
        if (xlate_add(out, "metadata", md) < 0 || xlate_add_str(md, "user_id", u->valuestring) < 0)
            return oom(q);
    }
    return 0;
}

cJSON *xlate_oa_request(const cJSON *body, const char *upstream_model, int64_t max_tokens,
                        int stream, char *err, size_t errlen)
{
    struct oa_req q = {.err = err, .errlen = errlen};
    cJSON *out;

    if (xlate_oa_check(body, err, errlen) != NULL)
        return NULL;
    out = cJSON_CreateObject();
    q.msgs = cJSON_CreateArray();
    q.sys = cJSON_CreateArray();
    if (out == NULL || q.msgs == NULL || q.sys == NULL ||
        xlate_add_str(out, "model", upstream_model) < 0) {
        oom(&q);
        goto fail;
    }
    if (messages(&q, XGET(body, "messages")) < 0)
        goto fail;
    if (q.sys_count == 1 && q.sys_string != NULL && q.sys_string[0] != '\0') {
        if (xlate_add_str(out, "system", q.sys_string) < 0)
            goto oom;
    } else if (cJSON_GetArraySize(q.sys) > 0) {
        if (xlate_add(out, "system", q.sys) < 0) {
            q.sys = NULL;
            goto oom;
        }
        q.sys = NULL;
    }
    if (xlate_add(out, "messages", q.msgs) < 0) {
        q.msgs = NULL;
        goto oom;
    }
    q.msgs = NULL;
    if (cap(&q, out, body, max_tokens) < 0 || stops(&q, out, XGET(body, "stop")) < 0 ||
        sampling(&q, out, body, stream) < 0 || tools(&q, out, body) < 0)
        goto fail;
    cJSON_Delete(q.sys);
    return out;
oom:
    oom(&q);
fail:
    cJSON_Delete(q.msgs);
    cJSON_Delete(q.sys);
    cJSON_Delete(out);
    return NULL;
}
