/*
 * libFuzzer target: arbitrary bytes as JSON through the translation between the OpenAI chat and
 * Anthropic Messages formats, both directions: as a request (xlate_check, xlate_request), as a
 * provider's answer (xlate_response, xlate_error), and as a stream (an array: each element one
 * event's data, named by its "type"; anything else: one event under each name the providers
 * send). Every event the translation emits must be a whole SSE event whose data is JSON (or
 * OpenAI's [DONE]); no crash, leak or sanitizer report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "routing/xlate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_event(void *arg, const char *name, const char *text, size_t len)
{
    const char *p = text, *end = text + len - 2, *nl;
    size_t nlen = name != NULL ? strlen(name) : 0;
    cJSON *j;

    (void)arg;
    if (name == NULL || len < 8 || memcmp(end, "\n\n", 2) != 0)
        abort();
    if (len > 7 && memcmp(p, "event: ", 7) == 0) {
        nl = memchr(p, '\n', len);
        if (nl == NULL || (size_t)(nl - p - 7) != nlen || memcmp(p + 7, name, nlen) != 0)
            abort();
        p = nl + 1;
    }
    if ((size_t)(end - p) < 6 || memcmp(p, "data: ", 6) != 0)
        abort();
    p += 6;
    if (memchr(p, '\n', (size_t)(end - p)) != NULL)
        abort(); /* one data line */
    if ((size_t)(end - p) == 6 && memcmp(p, "[DONE]", 6) == 0)
        return 0;
    j = cJSON_ParseWithLength(p, (size_t)(end - p));
    if (j == NULL)
        abort();
    cJSON_Delete(j);
    return 0;
}

static void stream(enum xlate_dir d, const cJSON *doc)
{
    static const char *const names[] = {"message_start",
                                        "content_block_start",
                                        "content_block_delta",
                                        "content_block_stop",
                                        "message_delta",
                                        "message_stop",
                                        "error",
                                        "ping",
                                        ""};
    struct xlate_ctx ctx = {d, "auto", "fuzz", 1, 1};
    struct xlate_stream *s = xlate_stream_new(&ctx);
    const cJSON *ev;

    if (s == NULL)
        return;
    if (cJSON_IsArray(doc)) {
        cJSON_ArrayForEach(ev, doc)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
            const char *name = d == XLATE_ANTHROPIC_TO_OPENAI ? ""
                               : cJSON_IsString(t)            ? t->valuestring
                                                              : "";
            if (xlate_stream_event(s, name, ev, "x", 1, check_event, NULL) < 0)
                break;
        }
    } else {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (xlate_stream_event(s, names[i], doc, "x", 1, check_event, NULL) < 0)
                break;
    }
    (void)xlate_stream_end(s, check_event, NULL);
    xlate_stream_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    char err[256], buf[256];

    if (doc == NULL)
        return 0;
    for (int d = XLATE_OPENAI_TO_ANTHROPIC; d <= XLATE_ANTHROPIC_TO_OPENAI; d++) {
        struct xlate_ctx ctx = {(enum xlate_dir)d, "auto", "fuzz", 1, 0};
        cJSON *out;
        int status = 0;

        (void)xlate_check((enum xlate_dir)d, doc, buf, sizeof(buf));
        err[0] = '\0';
        out = xlate_request((enum xlate_dir)d, doc, "target", 100, 1, err, sizeof(err));
        if (out == NULL && strlen(err) == 0)
            abort(); /* a refusal always says why */
        cJSON_Delete(out);
        cJSON_Delete(xlate_response(&ctx, doc));
        cJSON_Delete(xlate_error(&ctx, 529, doc, &status));
        stream((enum xlate_dir)d, doc);
    }
    cJSON_Delete(doc);
    return 0;
}
