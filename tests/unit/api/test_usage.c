/*
 * Unit tests for gate/usage: token counts read from real-shaped provider bodies and stream
 * events of the OpenAI chat, embeddings and Responses APIs and of Anthropic's Messages API.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/api/dialect.h"
#include "gate/api/usage.h"
#include "run_suite.h"

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);

    ck_assert_msg(j != NULL, "bad test JSON near '%.20s'", cJSON_GetErrorPtr());
    return j;
}

static void from_body(enum endpoint ep, const char *text, struct usage *u)
{
    cJSON *j = parse(text);

    if (api_dialect_for(ep) != NULL) /* no API (EP_MODELS): no usage */
        api_dialect_for(ep)->usage_body(j, u);
    cJSON_Delete(j);
}

static int from_event(enum endpoint ep, const char *name, const char *text, struct usage *u)
{
    cJSON *j = parse(text);
    int r = api_dialect_for(ep) ? api_dialect_for(ep)->usage_event(name, j, u) : 0;

    cJSON_Delete(j);
    return r;
}

static void check_usage(const struct usage *u, int64_t input, int64_t output, int64_t cached,
                        int64_t cache_write)
{
    ck_assert_int_eq(u->have, 1);
    ck_assert_int_eq(u->input, input);
    ck_assert_int_eq(u->output, output);
    ck_assert_int_eq(u->cached, cached);
    ck_assert_int_eq(u->cache_write, cache_write);
}

/* A usage that a call which finds nothing must leave exactly as it was. */
static const struct usage sentinel = {.input = 11, .output = 22, .cached = 33, .cache_write = 44};

static void check_untouched(const struct usage *u)
{
    ck_assert_int_eq(u->have, 0);
    ck_assert_int_eq(u->input, sentinel.input);
    ck_assert_int_eq(u->output, sentinel.output);
    ck_assert_int_eq(u->cached, sentinel.cached);
    ck_assert_int_eq(u->cache_write, sentinel.cache_write);
}

START_TEST(openai_chat_body)
{
    struct usage u = {0};

    from_body(EP_CHAT,
              "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion\",\"created\":1741569952,"
              "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
              "\"assistant\",\"content\":\"Hello!\",\"refusal\":null},\"finish_reason\":\"stop\"}],"
              "\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":300,\"total_tokens\":1500,"
              "\"prompt_tokens_details\":{\"cached_tokens\":1024,\"audio_tokens\":0},"
              "\"completion_tokens_details\":{\"reasoning_tokens\":128,\"audio_tokens\":0}},"
              "\"service_tier\":\"default\"}",
              &u);
    check_usage(&u, 1200, 300, 1024, 0);
}
END_TEST

START_TEST(openai_chat_body_without_details)
{
    struct usage u = {0};

    /* older models and compatible servers send no prompt_tokens_details */
    from_body(EP_CHAT,
              "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,"
              "\"total_tokens\":21}}",
              &u);
    check_usage(&u, 9, 12, 0, 0);
}
END_TEST

START_TEST(embeddings_body)
{
    struct usage u = {0};

    from_body(EP_EMBEDDINGS,
              "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
              "\"embedding\":[0.0023,-0.0093]}],\"model\":\"text-embedding-3-small\","
              "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}",
              &u);
    check_usage(&u, 8, 0, 0, 0);
}
END_TEST

START_TEST(responses_body)
{
    struct usage u = {0};

    from_body(EP_RESPONSES,
              "{\"id\":\"resp_67ccd3a9\",\"object\":\"response\",\"status\":\"completed\","
              "\"model\":\"gpt-4.1\",\"output\":[{\"type\":\"message\",\"role\":\"assistant\","
              "\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\",\"annotations\":[]}]}],"
              "\"usage\":{\"input_tokens\":328,\"input_tokens_details\":{\"cached_tokens\":256},"
              "\"output_tokens\":52,\"output_tokens_details\":{\"reasoning_tokens\":0},"
              "\"total_tokens\":380}}",
              &u);
    check_usage(&u, 328, 52, 256, 0);
}
END_TEST

START_TEST(anthropic_body)
{
    struct usage u = {0};

    /* Anthropic's input_tokens leaves out cache reads and writes: the total adds them */
    from_body(EP_MESSAGES,
              "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":"
              "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hello!\"}],\"model\":"
              "\"claude-sonnet-4-20250514\",\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
              "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":1000,"
              "\"cache_read_input_tokens\":3000,\"output_tokens\":150}}",
              &u);
    check_usage(&u, 25 + 3000 + 1000, 150, 3000, 1000);
}
END_TEST

START_TEST(anthropic_body_without_cache)
{
    struct usage u = {0};

    from_body(EP_MESSAGES,
              "{\"type\":\"message\",\"usage\":{\"input_tokens\":12,\"output_tokens\":6}}", &u);
    check_usage(&u, 12, 6, 0, 0);
}
END_TEST

START_TEST(anthropic_writes_by_lifetime)
{
    struct usage u = {0};

    /* cache_creation splits the writes: 1-hour ones priced apart, the rest 5-minute */
    from_body(EP_MESSAGES,
              "{\"type\":\"message\",\"usage\":{\"input_tokens\":20,"
              "\"cache_creation_input_tokens\":1500,\"cache_read_input_tokens\":400,"
              "\"cache_creation\":{\"ephemeral_5m_input_tokens\":500,"
              "\"ephemeral_1h_input_tokens\":1000},\"output_tokens\":9}}",
              &u);
    check_usage(&u, 20 + 400 + 1500, 9, 400, 1500);
    ck_assert_int_eq(u.cache_write_1h, 1000);
    ck_assert_ptr_null(u.bad);

    /* the object alone stands for the total */
    struct usage o = {0};
    from_body(EP_MESSAGES,
              "{\"usage\":{\"input_tokens\":5,\"cache_creation\":{\"ephemeral_5m_input_tokens\":"
              "30,\"ephemeral_1h_input_tokens\":70},\"output_tokens\":1}}",
              &o);
    check_usage(&o, 105, 1, 0, 100);
    ck_assert_int_eq(o.cache_write_1h, 70);

    /* parts past the whole, or a bad part: not trusted */
    static const char *const bad[] = {
        "\"cache_creation_input_tokens\":100,\"cache_creation\":{\"ephemeral_5m_input_tokens\":60,"
        "\"ephemeral_1h_input_tokens\":50}",
        "\"cache_creation_input_tokens\":100,\"cache_creation\":{\"ephemeral_1h_input_tokens\":-1}",
        "\"cache_creation_input_tokens\":100,\"cache_creation\":{\"ephemeral_1h_input_tokens\":"
        "\"50\"}",
        "\"cache_creation_input_tokens\":10,\"cache_creation\":{\"ephemeral_1h_input_tokens\":11}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[400];
        struct usage b = {0};
        snprintf(text, sizeof(text), "{\"usage\":{\"input_tokens\":5,%s,\"output_tokens\":1}}",
                 bad[i]);
        from_body(EP_MESSAGES, text, &b);
        ck_assert_msg(b.bad != NULL, "%s was trusted", bad[i]);
    }

    /* a stream: message_start has the split; a message_delta repeating the total keeps it */
    struct usage s = {0};
    from_event(EP_MESSAGES, "message_start",
               "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,"
               "\"cache_creation_input_tokens\":2048,\"cache_read_input_tokens\":0,"
               "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,"
               "\"ephemeral_1h_input_tokens\":2048},\"output_tokens\":1}}}",
               &s);
    check_usage(&s, 2051, 1, 0, 2048);
    ck_assert_int_eq(s.cache_write_1h, 2048);
    from_event(EP_MESSAGES, "message_delta",
               "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
               "{\"input_tokens\":3,\"cache_creation_input_tokens\":2048,"
               "\"cache_read_input_tokens\":0,\"output_tokens\":12}}",
               &s);
    check_usage(&s, 2051, 12, 0, 2048);
    ck_assert_int_eq(s.cache_write_1h, 2048);
    ck_assert_int_eq(s.final, 1);
    ck_assert_ptr_null(s.bad);
    /* ... and one with a new split replaces it */
    from_event(EP_MESSAGES, "message_delta",
               "{\"type\":\"message_delta\",\"usage\":{\"input_tokens\":3,"
               "\"cache_creation_input_tokens\":2048,\"cache_creation\":"
               "{\"ephemeral_5m_input_tokens\":2000,\"ephemeral_1h_input_tokens\":48},"
               "\"output_tokens\":12}}",
               &s);
    ck_assert_int_eq(s.cache_write_1h, 48);
    ck_assert_ptr_null(s.bad);
}
END_TEST

START_TEST(counts_past_32_bits)
{
    struct usage u = {0};

    /* a long-lived batch total must not wrap at 2^31 */
    from_body(EP_MESSAGES,
              "{\"usage\":{\"input_tokens\":3000000000,\"cache_read_input_tokens\":"
              "5000000000,\"cache_creation_input_tokens\":0,\"output_tokens\":4294967297}}",
              &u);
    check_usage(&u, 8000000000LL, 4294967297LL, 5000000000LL, 0);
}
END_TEST

START_TEST(body_without_usage)
{
    struct usage u = sentinel;

    from_body(EP_CHAT, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[]}", &u);
    check_untouched(&u);
    from_body(EP_CHAT, "{\"choices\":[],\"usage\":null}", &u);
    check_untouched(&u);
    from_body(EP_EMBEDDINGS, "{\"object\":\"list\",\"data\":[]}", &u);
    check_untouched(&u);
    from_body(EP_RESPONSES, "{\"id\":\"resp_1\",\"status\":\"in_progress\",\"usage\":null}", &u);
    check_untouched(&u);
    from_body(EP_MESSAGES, "{\"type\":\"message\",\"content\":[]}", &u);
    check_untouched(&u);
    /* an error body from the provider */
    from_body(EP_MESSAGES,
              "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
              "\"Overloaded\"}}",
              &u);
    check_untouched(&u);
    /* the models list (answered by the gate) has no usage to read */
    from_body(EP_MODELS, "{\"object\":\"list\",\"data\":[],\"usage\":{\"prompt_tokens\":5}}", &u);
    check_untouched(&u);
    /* a body that is not an object at all */
    from_body(EP_CHAT, "[1,2,3]", &u);
    check_untouched(&u);
}
END_TEST

START_TEST(openai_stream)
{
    struct usage u = sentinel;

    /* an ordinary chunk, with usage null because stream_options asked for it */
    ck_assert_int_eq(
        from_event(EP_CHAT, "",
                   "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                   "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                   "\"Hi\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
                   &u),
        0);
    check_untouched(&u);
    /* the last choice chunk, still without usage */
    ck_assert_int_eq(from_event(EP_CHAT, "",
                                "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                                "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                                "\"stop\"}]}",
                                &u),
                     0);
    check_untouched(&u);

    /* the extra usage chunk: no choices, only usage */
    memset(&u, 0, sizeof(u));
    ck_assert_int_eq(
        from_event(EP_CHAT, "",
                   "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                   "\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                   "\"completion_tokens\":34,\"total_tokens\":46,\"prompt_tokens_details\":"
                   "{\"cached_tokens\":8}}}",
                   &u),
        1);
    check_usage(&u, 12, 34, 8, 0);
}
END_TEST

START_TEST(openai_stream_usage_with_choices)
{
    struct usage u = {0};

    /* some compatible servers put usage on the last choice chunk: it is read, not dropped */
    ck_assert_int_eq(from_event(EP_CHAT, "",
                                "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                                "\"stop\"}],\"usage\":{\"prompt_tokens\":5,"
                                "\"completion_tokens\":7,\"total_tokens\":12}}",
                                &u),
                     0);
    check_usage(&u, 5, 7, 0, 0);
}
END_TEST

START_TEST(anthropic_stream)
{
    struct usage u = {0};

    ck_assert_int_eq(
        from_event(EP_MESSAGES, "message_start",
                   "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
                   "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\","
                   "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,"
                   "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,"
                   "\"output_tokens\":1}}}",
                   &u),
        0);
    check_usage(&u, 2125, 1, 2000, 100);

    /* events that carry no usage change nothing */
    ck_assert_int_eq(from_event(EP_MESSAGES, "content_block_start",
                                "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                                "{\"type\":\"text\",\"text\":\"\"}}",
                                &u),
                     0);
    ck_assert_int_eq(from_event(EP_MESSAGES, "content_block_delta",
                                "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                                "\"text_delta\",\"text\":\"Hello\"}}",
                                &u),
                     0);
    ck_assert_int_eq(from_event(EP_MESSAGES, "ping", "{\"type\":\"ping\"}", &u), 0);
    check_usage(&u, 2125, 1, 2000, 100);

    /* output_tokens in message_delta is the running total, not an increment */
    ck_assert_int_eq(from_event(EP_MESSAGES, "message_delta",
                                "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},"
                                "\"usage\":{\"output_tokens\":10}}",
                                &u),
                     0);
    check_usage(&u, 2125, 10, 2000, 100);
    ck_assert_int_eq(from_event(EP_MESSAGES, "message_delta",
                                "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                "\"end_turn\",\"stop_sequence\":null},\"usage\":"
                                "{\"output_tokens\":15}}",
                                &u),
                     0);
    check_usage(&u, 2125, 15, 2000, 100);
    ck_assert_int_eq(from_event(EP_MESSAGES, "message_stop", "{\"type\":\"message_stop\"}", &u), 0);
    check_usage(&u, 2125, 15, 2000, 100);
}
END_TEST

START_TEST(anthropic_stream_delta_with_input)
{
    struct usage u = {0};

    /* message_delta may repeat the input counts (cumulative, as with server tools) */
    from_event(EP_MESSAGES, "message_start",
               "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
               "\"output_tokens\":1}}}",
               &u);
    check_usage(&u, 10, 1, 0, 0);
    from_event(EP_MESSAGES, "message_delta",
               "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
               "{\"input_tokens\":30,\"cache_creation_input_tokens\":5,"
               "\"cache_read_input_tokens\":7,\"output_tokens\":90}}",
               &u);
    check_usage(&u, 42, 90, 7, 5);
}
END_TEST

START_TEST(responses_stream)
{
    struct usage u = sentinel;

    ck_assert_int_eq(from_event(EP_RESPONSES, "response.created",
                                "{\"type\":\"response.created\",\"sequence_number\":0,"
                                "\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\","
                                "\"usage\":null}}",
                                &u),
                     0);
    ck_assert_int_eq(from_event(EP_RESPONSES, "response.output_text.delta",
                                "{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\","
                                "\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}",
                                &u),
                     0);
    check_untouched(&u);

    memset(&u, 0, sizeof(u));
    ck_assert_int_eq(
        from_event(EP_RESPONSES, "response.completed",
                   "{\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":"
                   "\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"usage\":"
                   "{\"input_tokens\":50,\"input_tokens_details\":{\"cached_tokens\":20},"
                   "\"output_tokens\":70,\"output_tokens_details\":{\"reasoning_tokens\":30},"
                   "\"total_tokens\":120}}}",
                   &u),
        0);
    check_usage(&u, 50, 70, 20, 0);
}
END_TEST

START_TEST(event_for_other_endpoint)
{
    struct usage u = sentinel;

    /* an Anthropic event name means nothing on the chat endpoint, and the reverse */
    ck_assert_int_eq(from_event(EP_MESSAGES, "",
                                "{\"choices\":[],\"usage\":{\"prompt_tokens\":1,"
                                "\"completion_tokens\":2}}",
                                &u),
                     0);
    check_untouched(&u);
    ck_assert_int_eq(from_event(EP_EMBEDDINGS, "message_start",
                                "{\"message\":{\"usage\":{\"input_tokens\":3}}}", &u),
                     0);
    check_untouched(&u);
}
END_TEST


START_TEST(final_only_when_last)
{
    struct usage u = {0};

    /* message_start's output_tokens is a placeholder: not final */
    from_event(EP_MESSAGES, "message_start",
               "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
               "\"output_tokens\":1}}}",
               &u);
    ck_assert_int_eq(u.have, 1);
    ck_assert_int_eq(u.final, 0);
    from_event(EP_MESSAGES, "message_delta",
               "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}", &u);
    ck_assert_int_eq(u.final, 1);
    check_usage(&u, 10, 42, 0, 0);

    /* chat: a running usage in a chunk that does not finish is not final; the usage chunk is */
    struct usage c = {0};
    from_event(EP_CHAT, "",
               "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":"
               "null}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}",
               &c);
    ck_assert_int_eq(c.have, 1);
    ck_assert_int_eq(c.final, 0);
    ck_assert_int_eq(from_event(EP_CHAT, "",
                                "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
                                "\"completion_tokens\":9}}",
                                &c),
                     1);
    ck_assert_int_eq(c.final, 1);

    /* responses: only the closing events carry final usage */
    struct usage r = {0};
    from_event(EP_RESPONSES, "response.created",
               "{\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}", &r);
    ck_assert_int_eq(r.have, 0);
    from_event(EP_RESPONSES, "response.failed",
               "{\"response\":{\"status\":\"failed\",\"usage\":{\"input_tokens\":3,"
               "\"output_tokens\":4}}}",
               &r);
    ck_assert_int_eq(r.final, 1);
    check_usage(&r, 3, 4, 0, 0);

    /* a whole body's usage is final */
    struct usage b = {0};
    from_body(EP_CHAT, "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", &b);
    ck_assert_int_eq(b.final, 1);
    ck_assert_ptr_null(b.bad);
}
END_TEST

START_TEST(absurd_counts_are_bad)
{
    static const char *const values[] = {"-5", "10000000000000", "10.5", "\"10\"", "true",
                                         "1e300", "{}"};

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char text[200];
        struct usage u = {0};
        snprintf(text, sizeof(text),
                 "{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":%s}}", values[i]);
        from_body(EP_CHAT, text, &u);
        ck_assert_msg(u.bad != NULL && strcmp(u.bad, "completion_tokens") == 0,
                      "%s was trusted", values[i]);
        ck_assert_int_eq(u.output, 0);
        ck_assert_int_eq(u.input, 7);
    }
    /* null and absent are no report of that field, not a bad one */
    struct usage n = {0};
    from_body(EP_CHAT, "{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":null}}", &n);
    ck_assert_ptr_null(n.bad);
    /* parts larger than the whole */
    struct usage p = {0};
    from_body(EP_CHAT,
              "{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1,"
              "\"prompt_tokens_details\":{\"cached_tokens\":9}}}",
              &p);
    ck_assert_str_eq(p.bad, "cached_tokens");
    /* up to 10^12 is a count */
    struct usage big = {0};
    from_body(EP_RESPONSES,
              "{\"usage\":{\"input_tokens\":1000000000000,\"output_tokens\":1}}", &big);
    ck_assert_ptr_null(big.bad);
    ck_assert_int_eq(big.input, 1000000000000LL);
}
END_TEST

static Suite *usage_suite(void)
{
    Suite *s = suite_create("usage");
    TCase *tc = tcase_create("body");

    tcase_add_test(tc, openai_chat_body);
    tcase_add_test(tc, openai_chat_body_without_details);
    tcase_add_test(tc, embeddings_body);
    tcase_add_test(tc, responses_body);
    tcase_add_test(tc, anthropic_body);
    tcase_add_test(tc, anthropic_body_without_cache);
    tcase_add_test(tc, anthropic_writes_by_lifetime);
    tcase_add_test(tc, counts_past_32_bits);
    tcase_add_test(tc, body_without_usage);
    suite_add_tcase(s, tc);

    tc = tcase_create("stream");
    tcase_add_test(tc, openai_stream);
    tcase_add_test(tc, openai_stream_usage_with_choices);
    tcase_add_test(tc, anthropic_stream);
    tcase_add_test(tc, anthropic_stream_delta_with_input);
    tcase_add_test(tc, responses_stream);
    tcase_add_test(tc, event_for_other_endpoint);
    tcase_add_test(tc, final_only_when_last);
    tcase_add_test(tc, absurd_counts_are_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(usage_suite());
}
