/*
 * tokengate-mock: answers a classification request as a cheap model asked for the complexity
 * of a request would, deterministically: a request whose system prompt starts with
 * "Classify the complexity" gets one word, `complex` when its user text has 60 words or more
 * or a code fence, `moderate` with 20 or more, else `simple`, billed as one output token (its
 * prompt counted as any other's). Each one is counted in /_mock/stats's by_path as
 * "(classify)" (besides its endpoint's path), for tests of the gate's label cache.
 */
#include "mock.h"

#define CLASSIFY_PREFIX "Classify the complexity"
#define CLASSIFY_COMPLEX_WORDS 60
#define CLASSIFY_MODERATE_WORDS 20

/* The text of a message's content: a string, or the text parts of an array. Calls add for
 * each piece. */
static void content_text(const cJSON *content, void (*add)(void *arg, const char *s), void *arg)
{
    const cJSON *part;

    if (cJSON_IsString(content)) {
        add(arg, content->valuestring);
        return;
    }
    cJSON_ArrayForEach(part, jarr(content))
    {
        const char *s = cJSON_GetStringValue(jget(part, "text"));
        if (s)
            add(arg, s);
    }
}

/* Whether s starts with the classification prompt. */
static void starts(void *arg, const char *s)
{
    int *yes = arg;

    if (!*yes && strncmp(s, CLASSIFY_PREFIX, strlen(CLASSIFY_PREFIX)) == 0)
        *yes = 1;
}

struct tally {
    long words;
    int fence;
};

static void count_words(void *arg, const char *s)
{
    struct tally *t = arg;
    int in = 0;

    if (strstr(s, "```"))
        t->fence = 1;
    for (; *s; s++) {
        int space = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v';
        if (!space && !in)
            t->words++;
        in = !space;
    }
}

/* The system prompt of an OpenAI chat body (system or developer messages) or an Anthropic
 * one ("system"), through add. */
static void system_text(const cJSON *body, int anth, void (*add)(void *arg, const char *s),
                        void *arg)
{
    const cJSON *msg;

    if (anth) {
        content_text(jget(body, "system"), add, arg);
        return;
    }
    cJSON_ArrayForEach(msg, jarr(jget(body, "messages")))
    {
        const char *role = cJSON_GetStringValue(jget(msg, "role"));
        if (role && (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0))
            content_text(jget(msg, "content"), add, arg);
    }
}

const char *classify_reply(struct mock *m, struct plan *pl, const cJSON *body)
{
    const cJSON *msg, *last = NULL;
    struct tally t = {0, 0};
    int yes = 0;
    cJSON *n;

    system_text(body, pl->api == API_MESSAGES, starts, &yes);
    if (!yes)
        return NULL;
    cJSON_ArrayForEach(msg, jarr(jget(body, "messages")))
    {
        const char *role = cJSON_GetStringValue(jget(msg, "role"));
        if (role && strcmp(role, "user") == 0)
            last = msg;
    }
    if (last)
        content_text(jget(last, "content"), count_words, &t);
    n = jget(m->by_path, "(classify)");
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else
        cJSON_AddNumberToObject(m->by_path, "(classify)", 1);
    pl->tool = NULL;
    pl->cut = 0;
    pl->ntok = 1;
    pl->steps = 1;
    if (t.fence || t.words >= CLASSIFY_COMPLEX_WORDS)
        return "complex";
    return t.words >= CLASSIFY_MODERATE_WORDS ? "moderate" : "simple";
}
