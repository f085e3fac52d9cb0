/* tokengate-mock: reply text, JSON in and out, error replies, prompt counts. */
#include "mock.h"

/* Each word is one token in OpenAI's tokenizers, so C words are C tokens. */
static const char *const mock_words[] = {
    " the", " of",  " and",  " to",  " in",   " is",   " that", " it",   " was",  " for",  " on",
    " are", " as",  " with", " his", " they", " at",   " be",   " this", " have", " from", " or",
    " one", " had", " by",   " but", " not",  " what", " all",  " were", " we",   " when",
};

/* ---- text ---- */

/* Returns the text of token i of every reply (a static string): the words in turn. */
const char *word(int i)
{
    return mock_words[(size_t)i % NELEM(mock_words)];
}

/* Returns the reply text of ntok words, for the caller to free(), or NULL when out of memory. */
char *mock_text(int ntok)
{
    char *s = malloc((size_t)ntok * MOCK_WORD_MAX + 1), *w = s;
    int i;

    for (i = 0; s && i < ntok; i++)
        w = stpcpy(w, word(i));
    if (s)
        *w = '\0';
    return s;
}

/* Parses all of s as a decimal in [lo, hi]. Returns 0, or -1 leaving *out alone. */
int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : lo - 1;

    if (v < lo || v > hi || *end)
        return -1;
    *out = v;
    return 0;
}

/* ---- JSON in ---- */

/*
 * Returns the object that the len bytes at text hold, for the caller to
 * cJSON_Delete(), or NULL when they hold something else (another value, not
 * JSON, bytes after the value but whitespace) or out of memory. text[len]
 * must be a NUL.
 */
cJSON *json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);

    if (cJSON_IsObject(j) && end + strspn(end, " \t\n\r") == text + len)
        return j;
    cJSON_Delete(j);
    return NULL;
}

/*
 * Returns obj's member key, or NULL (also when obj is not an object). Of a
 * key given twice the first counts (the gate refuses such bodies).
 */
cJSON *jget(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/*
 * Returns 1 and sets *out when j is a number with an integral value (2.0
 * too: cJSON keeps only the value), else 0. Values past a long long's range
 * are clamped to it.
 */
int jint(const cJSON *j, long long *out)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : 0.5;

    if (d >= 0x1p63 || d < -0x1p63)
        *out = d > 0 ? LLONG_MAX : LLONG_MIN;
    else if (d == (double)(long long)d)
        *out = (long long)d;
    else
        return 0; /* a fraction, or NaN */
    return 1;
}

/* Returns j when it is an array, else NULL: cJSON would walk an object's members as elements. */
const cJSON *jarr(const cJSON *j)
{
    return cJSON_IsArray(j) ? j : NULL;
}

/* ---- JSON out ---- */

#define JSON_STACK (16 << 10) /* replies up to this size print without a malloc */

/*
 * Adds item to parent: as member key when key is set, else as its last
 * element. Returns item, or NULL after freeing item when parent or item is
 * NULL or out of memory, so calls nest without checks.
 */
cJSON *jadd(cJSON *parent, const char *key, cJSON *item)
{
    if (parent && item &&
        (key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item)))
        return item;
    cJSON_Delete(item);
    return NULL;
}

/* Adds member key to obj (may be NULL): the string s, or null when s is NULL. */
void jstr(cJSON *obj, const char *key, const char *s)
{
    jadd(obj, key, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

/* Returns a new object {"type": type}, or NULL. */
cJSON *jtyped(const char *type)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "type", type);
    return o;
}

/* Appends j as compact JSON to out. Returns 0, or -1 when j is NULL or out of memory. */
int json_print(struct evbuffer *out, cJSON *j)
{
    char buf[JSON_STACK], *big;
    int rc;

    if (!j)
        return -1;
    if (cJSON_PrintPreallocated(j, buf, sizeof(buf), 0))
        return evbuffer_add(out, buf, strlen(buf));
    if (!(big = cJSON_PrintUnformatted(j)))
        return -1;
    rc = evbuffer_add(out, big, strlen(big));
    cJSON_free(big);
    return rc;
}

/*
 * Sends what the output buffer holds as a JSON reply with status code, or,
 * when made is 0 (making the body failed), a 500 in its place.
 */
void reply_send(struct evhttp_request *req, int code, int made)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    const char *phrase = code == 429 ? "Too Many Requests" : code == 529 ? "Overloaded" : NULL;

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (!made) {
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_add_printf(out, "{\"error\":{\"message\":\"mock out of memory\"}}");
        code = 500;
    }
    evhttp_send_reply(req, code, phrase, NULL); /* NULL: evhttp's phrase for the code */
}

/* Sends body (freed here) as a JSON reply with status code. A NULL body means out of memory. */
void reply_json(struct evhttp_request *req, int code, cJSON *body)
{
    reply_send(req, code, json_print(evhttp_request_get_output_buffer(req), body) == 0);
    cJSON_Delete(body);
}

/* Sends an error reply: Anthropic's shape when anth is set, else OpenAI's. */
void reply_error(struct evhttp_request *req, int anth, int code, const char *msg)
{
    reply_error_param(req, anth, code, msg, NULL);
}

/*
 * Sends an error reply as reply_error() does; OpenAI's names the request
 * member at fault in "param" when param is set (else null).
 */
void reply_error_param(struct evhttp_request *req, int anth, int code, const char *msg,
                       const char *param)
{
    static const struct {
        int code;
        const char *type;
    } anth_types[] = {{401, "authentication_error"}, {403, "permission_error"},
                      {404, "not_found_error"},      {413, "request_too_large"},
                      {429, "rate_limit_error"},     {529, "overloaded_error"}};
    const char *otype = code >= 500 ? "server_error" : "invalid_request_error";
    const char *atype = code >= 500 ? "api_error" : "invalid_request_error";
    cJSON *r = anth ? jtyped("error") : cJSON_CreateObject(),
          *e = cJSON_AddObjectToObject(r, "error");
    size_t i;

    for (i = 0; i < NELEM(anth_types); i++)
        if (anth_types[i].code == code)
            atype = anth_types[i].type;
    if (code == 429) {
        otype = "requests";
        if (!evhttp_find_header(evhttp_request_get_output_headers(req), "retry-after"))
            evhttp_add_header(evhttp_request_get_output_headers(req), "retry-after", "2");
    }
    if (anth) {
        cJSON_AddStringToObject(e, "type", atype);
        cJSON_AddStringToObject(e, "message", msg);
    } else {
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "type", otype);
        jstr(e, "param", param);
        jstr(e, "code", code == 429 ? "rate_limit_exceeded" : NULL);
    }
    reply_json(req, code, r);
}

/* ---- token accounting ---- */

/*
 * Prompt tokens as the provider counts them: the gate's own tokenizer and OpenAI's chat
 * formula (tokenizer/chat.c), the encoding chosen by model family, so the mock agrees with
 * the gate as a real provider should, but MOCK_IMAGE_TOKENS (85) for each image, whatever its
 * size; x-mock-usage-skew (m->st.skew) adds a known drift.
 */
long long prompt_tokens(const struct mock *m, const cJSON *body, tok_api api)
{
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "model"));
    const tok_enc *e = tok_encoding(tok_encoding_for_model(model));
    tok_count_result r;

    if (e == NULL || tok_count_request(e, api, body, model, 1.0, &r) != 0)
        r.tokens = r.image_tokens = r.images = 0;
    /* images at a fixed price: a test knows what each costs, whatever its size */
    return (long long)(r.tokens - r.image_tokens) + (long long)r.images * MOCK_IMAGE_TOKENS +
           m->st.skew;
}
