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

/* Sets the plan's prompt tokens (see prompt_tokens()) and the cached part of them. */
void plan_prompt(struct plan *pl, const struct mock *m, const cJSON *body, tok_api api)
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
