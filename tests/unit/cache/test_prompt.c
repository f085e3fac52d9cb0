/*
 * Unit tests for cache/prompt: where the gate places Anthropic cache_control breakpoints (each
 * place, the minimum prefix, the cap of four, a client's own left alone, the TTL), the minimum
 * by model family, and the prompt_cache_key of a scope.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/prompt.h"
#include "run_suite.h"

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);

    ck_assert_msg(j != NULL, "bad test JSON near '%.20s'", cJSON_GetErrorPtr());
    return j;
}

/* The parts' counts: tools, system, then each message's. */
struct counts {
    tok_count_parts p;
    uint64_t m[16];
};

static const tok_count_parts *counts(struct counts *c, uint64_t tools, uint64_t system, int n,
                                     const uint64_t *msgs)
{
    memset(c, 0, sizeof(*c));
    c->p.tools = tools;
    c->p.system = system;
    c->p.messages = c->m;
    c->p.cap = 16;
    c->p.nmessages = (uint32_t)n;
    for (int i = 0; i < n; i++)
        c->m[i] = msgs[i];
    return &c->p;
}

/* The cache_control of the object at path ("tools.1", "system.0", "messages.2.content.0"),
 * printed, or "-" when it has none. */
static char *marker_at(const cJSON *body, const char *path)
{
    static char out[128];
    char buf[128];
    const cJSON *at = body;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *part = strtok(buf, "."); part != NULL && at != NULL; part = strtok(NULL, "."))
        at = cJSON_IsArray(at) ? cJSON_GetArrayItem(at, atoi(part))
                               : cJSON_GetObjectItemCaseSensitive(at, part);
    ck_assert_msg(at != NULL, "no %s", path);
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(at, "cache_control");
    if (cc == NULL)
        return strcpy(out, "-");
    char *p = cJSON_PrintUnformatted(cc);
    snprintf(out, sizeof(out), "%s", p);
    free(p);
    return out;
}

/* How many cache_control members body holds, anywhere. */
static int markers(const cJSON *j)
{
    int n = 0;
    const cJSON *c;

    if (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "cache_control") != NULL)
        n++;
    cJSON_ArrayForEach(c, j)
    {
        n += markers(c);
    }
    return n;
}

#define EPH "{\"type\":\"ephemeral\"}"
#define EPH1H "{\"type\":\"ephemeral\",\"ttl\":\"1h\"}"

/* tools (2), system (a string), then user, assistant, user */
#define CONVERSATION                                                                               \
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,"                                        \
    "\"tools\":[{\"name\":\"a\",\"input_schema\":{\"type\":\"object\"}},"                          \
    "{\"name\":\"b\",\"input_schema\":{\"type\":\"object\"}}],"                                    \
    "\"system\":\"You are terse.\","                                                               \
    "\"messages\":[{\"role\":\"user\",\"content\":\"first\"},"                                     \
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]},"                  \
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"second\"}]}]}"

START_TEST(each_place)
{
    struct counts c;
    cJSON *b = parse(CONVERSATION);
    int changed = -1;
    const uint64_t m[] = {500, 500, 500};

    /* every prefix past the minimum: the last tool, the system prompt (now a block), the
     * message before the last user turn, the final message */
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 1100, 200, 3, m), 1024, 0, &changed), 4);
    ck_assert_int_eq(changed, 7);
    ck_assert_str_eq(marker_at(b, "tools.0"), "-");
    ck_assert_str_eq(marker_at(b, "tools.1"), EPH);
    ck_assert_str_eq(marker_at(b, "system.0"), EPH);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "system"), 0),
                                         "text")
                         ->valuestring,
                     "You are terse.");
    ck_assert_str_eq(marker_at(b, "messages.1.content.0"), EPH);
    ck_assert_str_eq(marker_at(b, "messages.2.content.0"), EPH);
    ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(
                      cJSON_GetObjectItem(b, "messages"), 0), "content")),
                  "a message not marked is left as it was");
    ck_assert_int_eq(markers(b), 4);
    cJSON_Delete(b);
}
END_TEST

START_TEST(only_past_the_minimum)
{
    struct counts c;
    cJSON *b;
    int changed;
    const uint64_t m[] = {300, 300, 300};

    /* tools short, tools + system too; the conversation reaches 1024 only with the last user
     * message: one breakpoint, on it */
    b = parse(CONVERSATION);
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 100, 100, 3, m), 1024, 0, &changed), 1);
    ck_assert_int_eq(changed, 4);
    ck_assert_str_eq(marker_at(b, "tools.1"), "-");
    ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(b, "system")), "system left a string");
    ck_assert_str_eq(marker_at(b, "messages.1.content.0"), "-");
    ck_assert_str_eq(marker_at(b, "messages.2.content.0"), EPH);
    cJSON_Delete(b);

    /* exactly the minimum counts */
    b = parse(CONVERSATION);
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 1024, 0, 3, m), 1024, 0, &changed), 4);
    cJSON_Delete(b);

    /* nothing reaches it: nothing placed, nothing changed */
    b = parse(CONVERSATION);
    char *before = cJSON_PrintUnformatted(b);
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 100, 100, 3, m), 4096, 0, &changed), 0);
    ck_assert_int_eq(changed, 0);
    char *after = cJSON_PrintUnformatted(b);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
    cJSON_Delete(b);

    /* the model's minimum decides: 2048 */
    b = parse(CONVERSATION);
    const uint64_t big[] = {1000, 1000, 1000};
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 100, 100, 3, big), 2048, 0, &changed), 2);
    ck_assert_str_eq(marker_at(b, "messages.1.content.0"), EPH); /* 100+100+1000+1000 */
    ck_assert_str_eq(marker_at(b, "messages.2.content.0"), EPH);
    cJSON_Delete(b);
}
END_TEST

START_TEST(at_most_four)
{
    struct counts c;
    int changed;
    uint64_t m[16];
    char text[4096];
    int n = snprintf(text, sizeof(text),
                     "{\"tools\":[{\"name\":\"t\"}],\"system\":[{\"type\":\"text\",\"text\":\"s\"}],"
                     "\"messages\":[");

    for (int i = 0; i < 12; i++) {
        n += snprintf(text + n, sizeof(text) - (size_t)n, "%s{\"role\":\"%s\",\"content\":\"m%d\"}",
                      i ? "," : "", i % 2 ? "assistant" : "user", i);
        m[i] = 5000;
    }
    snprintf(text + n, sizeof(text) - (size_t)n, "]}");
    cJSON *b = parse(text);
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 5000, 5000, 12, m), 1024, 1, &changed),
                     PROMPT_MAX_BREAKPOINTS);
    ck_assert_int_eq(markers(b), PROMPT_MAX_BREAKPOINTS);
    /* the last user turn is message 10; the one before it 9; the final message 11 */
    ck_assert_str_eq(marker_at(b, "messages.9.content.0"), EPH1H);
    ck_assert_str_eq(marker_at(b, "messages.11.content.0"), EPH1H);
    cJSON_Delete(b);
}
END_TEST

START_TEST(client_breakpoints_left_alone)
{
    static const char *const bodies[] = {
        /* on a tool, a system block, a message block, inside a tool_result, request-wide */
        "{\"tools\":[{\"name\":\"a\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"system\":[{\"type\":\"text\",\"text\":\"s\",\"cache_control\":{\"type\":"
        "\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"x\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"y\"},{\"role\":\"user\",\"content\":\"z\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
        "\"t\",\"content\":[{\"type\":\"text\",\"text\":\"r\",\"cache_control\":{\"type\":"
        "\"ephemeral\"}}]}]}]}",
        "{\"cache_control\":{\"type\":\"ephemeral\"},\"system\":\"s\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"x\"}]}",
    };
    const uint64_t m[] = {5000, 5000, 5000};

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct counts c;
        int changed = -1;
        cJSON *b = parse(bodies[i]);
        char *before = cJSON_PrintUnformatted(b);
        ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 5000, 5000, 3, m), 1024, 0, &changed),
                         0);
        ck_assert_int_eq(changed, 0);
        char *after = cJSON_PrintUnformatted(b);
        ck_assert_msg(strcmp(before, after) == 0, "body %zu changed: %s", i, after);
        free(before);
        free(after);
        cJSON_Delete(b);
    }
}
END_TEST

START_TEST(ttl_by_policy)
{
    struct counts c;
    int changed;
    const uint64_t m[] = {2000, 10, 10};
    cJSON *b = parse(CONVERSATION);

    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 2000, 10, 3, m), 1024, 1, &changed), 4);
    ck_assert_str_eq(marker_at(b, "tools.1"), EPH1H);
    ck_assert_str_eq(marker_at(b, "system.0"), EPH1H);
    ck_assert_str_eq(marker_at(b, "messages.1.content.0"), EPH1H);
    ck_assert_str_eq(marker_at(b, "messages.2.content.0"), EPH1H);
    cJSON_Delete(b);
}
END_TEST

START_TEST(blocks_that_take_no_marker)
{
    struct counts c;
    int changed;
    const uint64_t m[] = {2000, 2000, 2000};
    /* the final message ends with a thinking block: the block before it is marked; an empty
     * system string and an empty final message have nothing to mark */
    cJSON *b = parse("{\"system\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                     "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                     "{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"s\"}]}]}");

    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 0, 0, 2, m), 1024, 0, &changed), 1);
    ck_assert_str_eq(marker_at(b, "messages.1.content.0"), EPH);
    ck_assert_str_eq(marker_at(b, "messages.1.content.1"), "-");
    ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(b, "system")), "empty system left alone");
    cJSON_Delete(b);

    b = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}");
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 0, 0, 1, m), 1024, 0, &changed), 0);
    ck_assert_int_eq(changed, 0);
    cJSON_Delete(b);
}
END_TEST

START_TEST(messages_not_counted)
{
    struct counts c;
    int changed;
    const uint64_t m[] = {5000};
    cJSON *b = parse(CONVERSATION);

    /* the parts hold message 0 only (past their cap): no breakpoint on a message uncounted */
    ck_assert_int_eq(prompt_breakpoints(b, counts(&c, 0, 0, 1, m), 1024, 0, &changed), 0);
    ck_assert_int_eq(markers(b), 0);
    cJSON_Delete(b);
}
END_TEST

START_TEST(min_tokens_by_family)
{
    ck_assert_int_eq(prompt_min_tokens("claude-sonnet-4-5"), 1024);
    ck_assert_int_eq(prompt_min_tokens("claude-sonnet-4-20250514"), 1024);
    ck_assert_int_eq(prompt_min_tokens("claude-opus-4-1-20250805"), 1024);
    ck_assert_int_eq(prompt_min_tokens("claude-opus-4-20250514"), 1024);
    ck_assert_int_eq(prompt_min_tokens("claude-3-7-sonnet-20250219"), 1024);
    ck_assert_int_eq(prompt_min_tokens("claude-3-5-haiku-20241022"), 2048);
    ck_assert_int_eq(prompt_min_tokens("claude-3-haiku-20240307"), 2048);
    ck_assert_int_eq(prompt_min_tokens("anthropic.claude-3-haiku-20240307-v1:0"), 2048);
    ck_assert_int_eq(prompt_min_tokens("claude-haiku-4-5"), 4096);
    ck_assert_int_eq(prompt_min_tokens("claude-haiku-4-5-20251001"), 4096);
    ck_assert_int_eq(prompt_min_tokens("claude-opus-4-5-20251101"), 4096);
    ck_assert_int_eq(prompt_min_tokens(NULL), 1024);
}
END_TEST

START_TEST(cache_key)
{
    char a[40], a2[40], b[40], e[40];

    prompt_cache_key("agent:crawler", a);
    prompt_cache_key("agent:crawler", a2);
    prompt_cache_key("agent:writer", b);
    prompt_cache_key("", e);
    ck_assert_str_eq(a, a2); /* stable */
    ck_assert_str_ne(a, b);  /* one per scope */
    ck_assert_str_ne(a, e);
    ck_assert_uint_eq(strlen(a), 35);
    ck_assert_int_eq(strncmp(a, "tg-", 3), 0);
    ck_assert_uint_eq(strspn(a + 3, "0123456789abcdef"), 32);
    ck_assert_ptr_null(strstr(a, "crawler")); /* the scope's name is not in it */
}
END_TEST

static Suite *prompt_suite(void)
{
    Suite *s = suite_create("prompt");
    TCase *tc = tcase_create("breakpoints");

    tcase_add_test(tc, each_place);
    tcase_add_test(tc, only_past_the_minimum);
    tcase_add_test(tc, at_most_four);
    tcase_add_test(tc, client_breakpoints_left_alone);
    tcase_add_test(tc, ttl_by_policy);
    tcase_add_test(tc, blocks_that_take_no_marker);
    tcase_add_test(tc, messages_not_counted);
    tcase_add_test(tc, min_tokens_by_family);
    tcase_add_test(tc, cache_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(prompt_suite());
}
