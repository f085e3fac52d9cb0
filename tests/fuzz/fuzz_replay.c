/*
 * libFuzzer target: arbitrary bytes as JSON through cache/replay and cache/entry, both APIs
 * (OpenAI chat completions, Anthropic messages). An array is a stream: each element one
 * event's data (the string "[DONE]" is OpenAI's end), named by its "type" for Anthropic; an
 * object is a whole answer. Checks:
 *   - what replay_asm gathers is a whole answer (replay_whole_ok);
 *   - every event replay_stream emits is JSON (or [DONE]), named by its type for Anthropic;
 *   - gathering a replayed stream gives an answer, and replaying that gives the same events
 *     (stream(asm(stream(x))) == stream(x));
 *   - an entry made of the same events or body reads back (entry_parse) with the same bytes.
 * No crash, leak or sanitizer report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cache/entry.h"
#include "cache/replay.h"
#include "fuzz_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 4096

/* A stream as emitted: each event "NAME\nDATA" (NAME empty for none), in one list. */
struct events {
    int n;
    char *ev[MAX_EVENTS];
    int over;
};

static void events_free(struct events *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->ev[i]);
    e->n = 0;
}

static int take(void *arg, const char *name, const char *text, size_t len)
{
    struct events *e = arg;
    size_t nlen = name != NULL ? strlen(name) : 0;
    cJSON *j = NULL;

    if (strlen(text) != len)
        abort(); /* the length is the text's */
    if (len == 6 && memcmp(text, "[DONE]", 6) == 0) {
        if (name != NULL)
            abort();
    } else {
        j = cJSON_ParseWithLength(text, len);
        if (!cJSON_IsObject(j))
            abort(); /* not JSON */
        if (name != NULL) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
            if (!cJSON_IsString(t) || strcmp(t->valuestring, name) != 0)
                abort(); /* an Anthropic event is named by its type */
        }
        cJSON_Delete(j);
    }
    if (e->n >= MAX_EVENTS) {
        e->over = 1;
        return 1;
    }
    e->ev[e->n] = malloc(nlen + 1 + len + 1);
    if (e->ev[e->n] == NULL)
        abort();
    memcpy(e->ev[e->n], name != NULL ? name : "", nlen);
    e->ev[e->n][nlen] = '\n';
    memcpy(e->ev[e->n] + nlen + 1, text, len);
    e->ev[e->n][nlen + 1 + len] = '\0';
    e->n++;
    return 0;
}

/* The whole answer of the events in e, gathered (NULL when refused). */
static cJSON *gather_events(enum conf_format api, const struct events *e)
{
    struct replay_asm *a = replay_asm_new(api);
    cJSON *out = NULL;
    int rc = 0;

    if (a == NULL)
        abort();
    for (int i = 0; i < e->n && rc == 0; i++) {
        const char *nl = strchr(e->ev[i], '\n');
        char name[64];
        cJSON *d = strcmp(nl + 1, "[DONE]") == 0 ? NULL : cJSON_Parse(nl + 1);
        snprintf(name, sizeof(name), "%.*s", (int)(nl - e->ev[i]), e->ev[i]);
        rc = replay_asm_event(a, name, d);
        cJSON_Delete(d);
    }
    if (rc == 0)
        out = replay_asm_finish(a);
    replay_asm_free(a);
    return out;
}

/* x a whole answer: its stream, gathered, replayed again: the same events. */
static void stable(enum conf_format api, const cJSON *x, int include_usage, size_t piece)
{
    struct events e1 = {0}, e2 = {0};
    cJSON *x2;
    int rc = replay_stream(api, x, include_usage, piece, take, &e1);

    if (e1.over || rc != 0) {
        if (!e1.over && (rc != -1 || replay_whole_ok(api, x)))
            abort(); /* refused only what is not an answer (or a stream too long here) */
        events_free(&e1);
        return;
    }
    x2 = gather_events(api, &e1);
    if (x2 == NULL || !replay_whole_ok(api, x2))
        abort(); /* a replayed stream is an answer */
    if (replay_stream(api, x2, include_usage, piece, take, &e2) != 0 || e2.n != e1.n)
        abort();
    for (int i = 0; i < e1.n; i++)
        if (strcmp(e1.ev[i], e2.ev[i]) != 0)
            abort(); /* stream(asm(stream(x))) == stream(x) */
    cJSON_Delete(x2);
    events_free(&e1);
    events_free(&e2);
}

/* The events of doc (an array) through a gatherer and an entry. */
static void as_stream(enum conf_format api, const cJSON *doc, size_t piece)
{
    struct replay_asm *a = replay_asm_new(api);
    struct entry_fill *f = entry_fill_new(api, 1, 1 << 20);
    struct entry_meta meta = {.model = "fuzz", .tokens = 3};
    const cJSON *ev;
    char *raws = NULL;
    size_t rlen = 0;
    int rc = 0, frc = 0;
    cJSON *whole = NULL;

    if (a == NULL || f == NULL)
        abort();
    cJSON_ArrayForEach(ev, doc)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
        const char *name =
            api == CONF_FMT_ANTHROPIC && cJSON_IsString(type) ? type->valuestring : "";
        int done = cJSON_IsString(ev) && strcmp(ev->valuestring, "[DONE]") == 0;
        char *text = done ? NULL : cJSON_PrintUnformatted(ev);
        size_t n = (name[0] ? strlen(name) + 8 : 0) + 8 + (text != NULL ? strlen(text) : 6);
        char *raw = malloc(n + 1), *grown;
        int len;

        if (raw == NULL || (!done && text == NULL))
            abort();
        len = name[0] ? snprintf(raw, n + 1, "event: %s\ndata: %s\n\n", name, text)
                      : snprintf(raw, n + 1, "data: %s\n\n", done ? "[DONE]" : text);
        if (rc == 0)
            rc = replay_asm_event(a, name, done ? NULL : ev);
        if (frc == 0)
            frc = entry_fill_event(f, raw, (size_t)len, name, done ? NULL : ev);
        if (frc == 0) {
            grown = realloc(raws, rlen + (size_t)len);
            if (grown == NULL)
                abort();
            raws = grown;
            memcpy(raws + rlen, raw, (size_t)len);
            rlen += (size_t)len;
        }
        free(raw);
        cJSON_free(text);
    }
    if (rc == 0)
        whole = replay_asm_finish(a);
    if (rc != 0 && frc == 0)
        abort(); /* the entry takes what the gatherer takes */
    if (whole != NULL) {
        size_t len;
        char *val = entry_fill_finish(f, &meta, &len);
        struct entry_view v;
        cJSON *back;
        if (!replay_whole_ok(api, whole))
            abort();
        if (2 * rlen + 8192 < (1 << 20) && val == NULL)
            abort(); /* a complete answer well within the cap makes an entry */
        if (val != NULL) {
            if (entry_parse(val, len, &v) != 0 || v.api != api || !v.from_stream ||
                v.events_len != rlen || memcmp(v.events, raws, rlen) != 0 ||
                strcmp(v.meta.model, "fuzz") != 0 || v.meta.tokens != 3)
                abort();
            back = cJSON_ParseWithLength(v.whole, v.whole_len);
            if (back == NULL || !same_tree(back, whole))
                abort(); /* the entry's whole answer is the gatherer's */
            cJSON_Delete(back);
            free(val);
        }
        stable(api, whole, 1, piece);
        stable(api, whole, 0, piece);
        cJSON_Delete(whole);
    }
    free(raws);
    entry_fill_free(f);
    replay_asm_free(a);
}

/* doc (an object) as a whole answer: its stream, and its entry. */
static void as_whole(enum conf_format api, const cJSON *doc, const char *text, size_t len,
                     size_t piece)
{
    struct entry_fill *f = entry_fill_new(api, 0, 1 << 20);
    size_t vlen;
    char *val;
    struct entry_view v;
    int ok = replay_whole_ok(api, doc);

    if (f == NULL)
        abort();
    if ((entry_fill_body(f, text, len, doc) == 0) != ok)
        abort();
    val = entry_fill_finish(f, NULL, &vlen);
    if (ok && len + 8192 < (1 << 20) && val == NULL)
        abort();
    if (val != NULL && (entry_parse(val, vlen, &v) != 0 || v.from_stream || v.whole_len != len ||
                        memcmp(v.whole, text, len) != 0))
        abort();
    free(val);
    entry_fill_free(f);
    stable(api, doc, 1, piece);
    stable(api, doc, 0, piece);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    size_t piece = 1 + size % 17;

    if (doc == NULL) {
        /* not JSON: entry_parse must still refuse it (or read it, if it happens to be one) */
        struct entry_view v;
        (void)entry_parse(data, size, &v);
        return 0;
    }
    for (int api = 0; api < 2; api++) {
        if (cJSON_IsArray(doc))
            as_stream(api == 0 ? CONF_FMT_OPENAI : CONF_FMT_ANTHROPIC, doc, piece);
        else
            as_whole(api == 0 ? CONF_FMT_OPENAI : CONF_FMT_ANTHROPIC, doc, (const char *)data, size,
                     piece);
    }
    cJSON_Delete(doc);
    return 0;
}
