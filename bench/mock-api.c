/*
 * tokengate-mock: the plan every reply of the two API emulators (mock-openai.c,
 * mock-anthropic.c) is built from, and the checks and pieces they share.
 */
#include "mock.h"

/* A streamed tool call's arguments, in pieces that concatenate to MOCK_TOOL_ARGS. */
const char *const tool_args[MOCK_TOOL_PIECES] = {"{\"query\"", ":\"mo", "ck\"}"};

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

/*
 * Sets the plan's prompt tokens (see prompt_tokens()), the part of them read
 * from a cache, and the part written to it (at most what is left), and of
 * that the part written for an hour (at most the writes).
 */
void plan_prompt(struct plan *pl, const struct mock *m, const cJSON *body, tok_api api)
{
    pl->prompt = prompt_tokens(m, body, api);
    pl->cached = m->st.cached < pl->prompt ? m->st.cached : pl->prompt > 0 ? pl->prompt : 0;
    pl->cache_write = m->st.cache_write < pl->prompt - pl->cached ? m->st.cache_write
                      : pl->prompt > pl->cached                   ? pl->prompt - pl->cached
                                                                  : 0;
    pl->cache_write_1h = m->st.cache_write_1h < 0              ? 0
                         : m->st.cache_write_1h < pl->cache_write ? m->st.cache_write_1h
                                                                  : pl->cache_write;
    pl->delta_input = m->st.cache_write_1h >= 0;
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
int cap_check(struct evhttp_request *req, const cJSON *body, const char *key, long long lo,
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
int plan_failed(struct evhttp_request *req, const cJSON *body, enum fault f, int anth)
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
int token_parts(const struct plan *pl, int i, char *a, char *b)
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
void usage_val(cJSON *u, const char *key, const struct plan *pl, long long v)
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

/*
 * Ends the text before the first of the request's stop sequences that it
 * holds (OpenAI "stop": a string or an array; Anthropic "stop_sequences"):
 * the words before the one where the sequence starts go out, and the plan
 * notes the sequence. A tool call or a runaway is left alone.
 */
void plan_stop(struct plan *pl, const cJSON *body, int anth, enum fault f)
{
    const cJSON *stop = jget(body, anth ? "stop_sequences" : "stop"), *s;
    const char *seq = NULL, *v, *at;
    size_t best = (size_t)-1, off = 0;
    char *text;
    int k = 0;

    if (pl->tool || f == F_RUNAWAY || !stop || !(text = mock_text(pl->ntok)))
        return;
    for (s = cJSON_IsString(stop) ? stop : jarr(stop) ? stop->child : NULL; s;
         s = cJSON_IsString(stop) ? NULL : s->next)
        if ((v = cJSON_GetStringValue(s)) && *v && (at = strstr(text, v)) &&
            (size_t)(at - text) < best) {
            best = (size_t)(at - text);
            seq = v;
        }
    free(text);
    if (!seq)
        return;
    while (k < pl->ntok && off + strlen(word(k)) <= best)
        off += strlen(word(k++));
    pl->ntok = pl->steps = k;
    pl->cut = 0;
    pl->stop_seq = seq;
}

/* ---- images ---- */

/* Returns 1 when s is all base64 (letters, digits, +, /, = padding) and not empty. */
static int is_base64(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

    return n > 0 && strspn(s + n, "=") <= 2 && s[n + strspn(s + n, "=")] == '\0';
}

/* Returns 1 when url is http(s), or a data: URL of an image in base64. */
static int image_url_ok(const char *url)
{
    const char *b64;

    if (!url)
        return 0;
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        return url[url[4] == 's' ? 8 : 7] != '\0';
    return strncmp(url, "data:image/", 11) == 0 && (b64 = strstr(url, ";base64,")) &&
           is_base64(b64 + 8);
}

/*
 * Checks an Anthropic image block's source; returns NULL, or what is wrong
 * (the member's path after the block's, and why) as Anthropic words it.
 */
static const char *anth_image_bad(const cJSON *block)
{
    static const char *const types[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
    const cJSON *src = jget(block, "source");
    const char *type = cJSON_GetStringValue(jget(src, "type"));
    const char *mt = cJSON_GetStringValue(jget(src, "media_type"));
    const char *data = cJSON_GetStringValue(jget(src, "data"));
    size_t i;

    if (type && strcmp(type, "url") == 0) {
        const char *url = cJSON_GetStringValue(jget(src, "url"));
        return url && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
                   ? NULL
                   : "source.url: must be an http(s) URL";
    }
    if (!type || strcmp(type, "base64") != 0)
        return "source.type: Input should be 'base64' or 'url'";
    for (i = 0; mt && i < NELEM(types); i++)
        if (strcmp(mt, types[i]) == 0)
            break;
    if (!mt || i == NELEM(types))
        return "source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
               "'image/gif' or 'image/webp'";
    return data && is_base64(data) ? NULL
                                   : "source.base64.data: The image data is not valid base64";
}

/*
 * Checks the images of a messages body: OpenAI image_url parts (an http(s) or
 * base64 data: URL), Anthropic image blocks (a base64 source with a known
 * media type, or a url source), in tool results too. Returns 0, or -1 after
 * replying 400 naming the first bad one, in the API's words.
 */
int images_check(struct evhttp_request *req, const cJSON *body, int anth)
{
    const cJSON *msg, *part, *sub;
    char msgbuf[256], param[96];
    const char *type, *bad;
    int i = 0, j, k;

    cJSON_ArrayForEach(msg, jarr(jget(body, "messages")))
    {
        j = 0;
        cJSON_ArrayForEach(part, jarr(jget(msg, "content")))
        {
            type = cJSON_GetStringValue(jget(part, "type"));
            if (!anth && type && strcmp(type, "image_url") == 0 &&
                !image_url_ok(cJSON_GetStringValue(jget(jget(part, "image_url"), "url")))) {
                snprintf(param, sizeof(param), "messages[%d].content[%d].image_url.url", i, j);
                snprintf(msgbuf, sizeof(msgbuf),
                         "Invalid '%s': expected an http(s) URL or a base64 data URL of an "
                         "image.",
                         param);
                reply_error_param(req, 0, 400, msgbuf, param);
                return -1;
            }
            k = -1;
            bad = NULL;
            if (anth && type && strcmp(type, "image") == 0)
                bad = anth_image_bad(part);
            else if (anth && type && strcmp(type, "tool_result") == 0)
                cJSON_ArrayForEach(sub, jarr(jget(part, "content")))
                {
                    k++;
                    type = cJSON_GetStringValue(jget(sub, "type"));
                    if (type && strcmp(type, "image") == 0 && (bad = anth_image_bad(sub)))
                        break;
                }
            if (bad) {
                if (k >= 0)
                    snprintf(msgbuf, sizeof(msgbuf), "messages.%d.content.%d.content.%d.image.%s",
                             i, j, k, bad);
                else
                    snprintf(msgbuf, sizeof(msgbuf), "messages.%d.content.%d.image.%s", i, j, bad);
                reply_error(req, 1, 400, msgbuf);
                return -1;
            }
            j++;
        }
        i++;
    }
    return 0;
}
