/*
 * Unit tests for routing/xlate (direction XLATE_OPENAI_TO_ANTHROPIC: the client speaks OpenAI
 * chat completions, the provider Anthropic Messages): the request each field at a time, the
 * refused fields, the whole answer, errors, and streams event by event as the real APIs send
 * them, reassembled on the client side the way the OpenAI SDK does.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/xlate.h"
#include "run_suite.h"

#define OA XLATE_OPENAI_TO_ANTHROPIC
#define GET cJSON_GetObjectItemCaseSensitive

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);

    ck_assert_msg(j != NULL, "test JSON does not parse: %s", text);
    return j;
}

/* Translates body (JSON text); NULL with err set when refused. */
static cJSON *req(const char *body, int64_t max_tokens, int stream, char *err, size_t errlen)
{
    cJSON *b = parse(body);
    cJSON *out;

    err[0] = '\0';
    out = xlate_request(OA, b, "claude-haiku-4-5", max_tokens, stream, err, errlen);
    cJSON_Delete(b);
    return out;
}

/* a is the JSON text want, member for member. */
static void ck_json(const cJSON *a, const char *want)
{
    cJSON *w = parse(want);
    char *got = cJSON_PrintUnformatted(a);

    ck_assert_msg(cJSON_Compare(a, w, 1), "got  %s\nwant %s", got, want);
    free(got);
    cJSON_Delete(w);
}

static void ck_req(const char *body, const char *want)
{
    char err[256];
    cJSON *out = req(body, 1024, 0, err, sizeof(err));

    ck_assert_msg(out != NULL, "refused: %s", err);
    ck_json(out, want);
    cJSON_Delete(out);
}

/* The body is refused, and the reason names field (quoted) and says why. */
static void ck_refused(const char *body, const char *field)
{
    char err[256], quoted[128], buf[256];
    cJSON *b;
    const char *why;
    cJSON *out = req(body, 1024, 0, err, sizeof(err));

    ck_assert_msg(out == NULL, "not refused: %s", body);
    snprintf(quoted, sizeof(quoted), "'%s'", field);
    ck_assert_msg(strstr(err, quoted) != NULL, "reason %s does not name %s", err, quoted);
    /* xlate_check says the same for what has no equivalent at all */
    b = parse(body);
    why = xlate_check(OA, b, buf, sizeof(buf));
    if (why != NULL)
        ck_assert_str_eq(why, err);
    cJSON_Delete(b);
}

START_TEST(direction_names)
{
    ck_assert_str_eq(xlate_name(XLATE_OPENAI_TO_ANTHROPIC), "openai.chat->anthropic.messages");
    ck_assert_str_eq(xlate_name(XLATE_ANTHROPIC_TO_OPENAI), "anthropic.messages->openai.chat");
    ck_assert_ptr_null(xlate_name(XLATE_NONE));
}
END_TEST

START_TEST(text_request)
{
    ck_req("{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}]}",
           "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":"
           "[{\"type\":\"text\",\"text\":\"Hello there\"}]}],\"max_tokens\":1024}");
    /* the caller has no cap either: a default, Anthropic requires one */
    {
        char err[128];
        cJSON *out =
            req("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", -1, 1, err, sizeof(err));
        ck_assert_ptr_nonnull(out);
        ck_assert_int_eq(GET(out, "max_tokens")->valueint, 4096);
        ck_assert(cJSON_IsTrue(GET(out, "stream")));
        cJSON_Delete(out);
    }
}
END_TEST

START_TEST(sampling_and_caps)
{
    ck_req("{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
           "\"temperature\":0.5,\"top_p\":0.9,\"max_completion_tokens\":300,\"max_tokens\":50,"
           "\"stop\":\"END\",\"user\":\"agent-7\",\"seed\":42,\"store\":true,"
           "\"stream_options\":{\"include_usage\":true},\"n\":1,\"presence_penalty\":0,"
           "\"logprobs\":false,\"response_format\":{\"type\":\"text\"},\"logit_bias\":{}}",
           "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":"
           "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_tokens\":300,\"stop_sequences\":"
           "[\"END\"],\"temperature\":0.5,\"top_p\":0.9,\"metadata\":{\"user_id\":\"agent-7\"}}");
    ck_req("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":50,"
           "\"stop\":[\"a\",\"b\"],\"temperature\":1}",
           "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":"
           "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_tokens\":50,\"stop_sequences\":"
           "[\"a\",\"b\"],\"temperature\":1}");
}
END_TEST

START_TEST(system_forms)
{
    /* one system string stays a string */
    ck_req("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
           "{\"role\":\"user\",\"content\":\"hi\"}]}",
           "{\"model\":\"claude-haiku-4-5\",\"system\":\"Be brief.\",\"messages\":[{\"role\":"
           "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_tokens\":1024}");
    /* parts, a developer message, and a system message later on: text blocks in order */
    ck_req("{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},"
           "{\"type\":\"text\",\"text\":\"B\"}]},{\"role\":\"user\",\"content\":\"hi\"},"
           "{\"role\":\"developer\",\"content\":\"C\"}]}",
           "{\"model\":\"claude-haiku-4-5\",\"system\":[{\"type\":\"text\",\"text\":\"A\"},"
           "{\"type\":\"text\",\"text\":\"B\"},{\"type\":\"text\",\"text\":\"C\"}],"
           "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
           "\"max_tokens\":1024}");
}
END_TEST

START_TEST(images)
{
    ck_req("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What "
           "is this?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
           "\"https://example.invalid/cat.png\",\"detail\":\"high\"}},{\"type\":\"image_url\","
           "\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},{\"type\":"
           "\"image_url\",\"image_url\":\"data:image/jpeg;base64,/9j/\"}]}]}",
           "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":["
           "{\"type\":\"text\",\"text\":\"What is this?\"},"
           "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":"
           "\"https://example.invalid/cat.png\"}},"
           "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
           "\"data\":\"iVBORw0KGgo=\"}},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
           "\"media_type\":\"image/jpeg\",\"data\":\"/9j/\"}}]}],\"max_tokens\":1024}");
    ck_refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
               "\"image_url\":{\"url\":\"data:image/png,rawbytes\"}}]}]}",
               "messages[0].content[0]");
    ck_refused(
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/bmp;base64,Qk0=\"}}]}]}",
        "messages[0].content[1]");
}
END_TEST

static const char *const tool_defs =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather for a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
    "{\"type\":\"string\"}},\"required\":[\"city\"]},\"strict\":true}},{\"type\":\"function\","
    "\"function\":{\"name\":\"now\"}}]";

static const char *const tool_out =
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather for a city\","
    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"required\":[\"city\"]}},{\"name\":\"now\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{}}}]";

static void ck_tool_choice(const char *choice, const char *want_choice)
{
    char body[2048], want[2048];

    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],%s%s%s}",
             tool_defs, choice[0] ? "," : "", choice);
    snprintf(want, sizeof(want),
             "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":"
             "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"max_tokens\":1024,%s%s%s}",
             tool_out, want_choice[0] ? "," : "", want_choice);
    ck_req(body, want);
}

START_TEST(tools_and_choice)
{
    ck_tool_choice("", "");
    ck_tool_choice("\"tool_choice\":\"auto\"", "\"tool_choice\":{\"type\":\"auto\"}");
    ck_tool_choice("\"tool_choice\":\"none\"", "\"tool_choice\":{\"type\":\"none\"}");
    ck_tool_choice("\"tool_choice\":\"required\"", "\"tool_choice\":{\"type\":\"any\"}");
    ck_tool_choice("\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"now\"}}",
                   "\"tool_choice\":{\"type\":\"tool\",\"name\":\"now\"}");
    ck_tool_choice("\"parallel_tool_calls\":false",
                   "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
    ck_tool_choice("\"tool_choice\":\"required\",\"parallel_tool_calls\":false",
                   "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true}");
    ck_tool_choice("\"tool_choice\":\"none\",\"parallel_tool_calls\":false",
                   "\"tool_choice\":{\"type\":\"none\"}");
    ck_tool_choice("\"parallel_tool_calls\":true", "");
    ck_refused("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
               "\"custom\",\"custom\":{\"name\":\"x\"}}]}",
               "tools[0].type");
}
END_TEST

/* An assistant turn with three parallel calls, their results (merged into one user turn with
 * the next user text after them), and consecutive same-role messages merged. */
START_TEST(tool_calls_and_results)
{
    ck_req("{\"messages\":["
           "{\"role\":\"user\",\"content\":\"Weather in Paris, Oslo?\"},"
           "{\"role\":\"user\",\"content\":\"And the time.\"},"
           "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
           "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
           "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
           "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
           "\"arguments\":\"{\\\"city\\\": \\\"Oslo\\\"}\"}},"
           "{\"id\":\"call_3\",\"type\":\"function\",\"function\":{\"name\":\"now\","
           "\"arguments\":\"\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\","
           "\"text\":\"4C\"}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_3\",\"content\":\"12:00\"},"
           "{\"role\":\"user\",\"content\":\"Thanks\"},"
           "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_4\","
           "\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_4\",\"content\":\"12:01\"}]}",
           "{\"model\":\"claude-haiku-4-5\",\"messages\":["
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris, "
           "Oslo?\"},{\"type\":\"text\",\"text\":\"And the time.\"}]},"
           "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
           "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"get_weather\",\"input\":"
           "{\"city\":\"Paris\"}},"
           "{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"get_weather\",\"input\":"
           "{\"city\":\"Oslo\"}},"
           "{\"type\":\"tool_use\",\"id\":\"call_3\",\"name\":\"now\",\"input\":{}}]},"
           "{\"role\":\"user\",\"content\":["
           "{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"18C\"},"
           "{\"type\":\"tool_result\",\"tool_use_id\":\"call_2\",\"content\":[{\"type\":"
           "\"text\",\"text\":\"4C\"}]},"
           "{\"type\":\"tool_result\",\"tool_use_id\":\"call_3\",\"content\":\"12:00\"},"
           "{\"type\":\"text\",\"text\":\"Thanks\"}]},"
           "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"call_4\","
           "\"name\":\"now\",\"input\":{}}]},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
           "\"call_4\",\"content\":\"12:01\"}]}],\"max_tokens\":1024}");
    /* arguments that are no JSON object */
    ck_refused("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
               "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
               "\"arguments\":\"{\\\"a\\\":\"}}]}]}",
               "messages[1].tool_calls[0].function.arguments");
    ck_refused("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
               "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
               "\"arguments\":\"[1,2]\"}}]}]}",
               "messages[1].tool_calls[0].function.arguments");
    ck_refused("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
               "messages[0].tool_call_id");
    ck_refused("{\"messages\":[{\"role\":\"critic\",\"content\":\"x\"}]}", "messages[0].role");
    ck_refused("{\"messages\":[]}", "messages");
}
END_TEST

/* Each field with no Anthropic equivalent is refused with its name, by xlate_check too. */
START_TEST(refused_fields)
{
    static const struct {
        const char *member, *field;
    } cases[] = {
        {"\"n\":2", "n"},
        {"\"logprobs\":true", "logprobs"},
        {"\"top_logprobs\":3", "top_logprobs"},
        {"\"logit_bias\":{\"50256\":-100}", "logit_bias"},
        {"\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}", "audio"},
        {"\"modalities\":[\"text\",\"audio\"]", "modalities"},
        {"\"prediction\":{\"type\":\"content\",\"content\":\"x\"}", "prediction"},
        {"\"presence_penalty\":0.5", "presence_penalty"},
        {"\"frequency_penalty\":-1", "frequency_penalty"},
        {"\"temperature\":1.5", "temperature"},
        {"\"temperature\":\"hot\"", "temperature"},
        {"\"response_format\":{\"type\":\"yaml\"}", "response_format"},
        {"\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}",
         "response_format.json_schema.schema"},
        {"\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
         "\"schema\":{\"type\":\"array\"}}}",
         "response_format.json_schema.schema"},
        {"\"response_format\":{\"type\":\"json_object\"},\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\"}}]",
         "response_format"},
        {"\"functions\":[{\"name\":\"f\"}]", "functions"},
        {"\"function_call\":\"auto\"", "function_call"},
        {"\"web_search_options\":{}", "web_search_options"},
        {"\"reasoning_effort\":\"low\"", "reasoning_effort"},
        {"\"top_p\":2", "top_p"},
        {"\"max_tokens\":0", "max_tokens"},
        {"\"max_completion_tokens\":\"many\"", "max_completion_tokens"},
        {"\"stop\":[1]", "stop"},
        {"\"tool_choice\":\"sometimes\",\"tools\":[{\"type\":\"function\",\"function\":"
         "{\"name\":\"f\"}}]",
         "tool_choice"},
    };
    char body[512], buf[256];
    cJSON *b;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],%s}",
                 cases[i].member);
        ck_refused(body, cases[i].field);
    }
    /* content parts and messages with no equivalent */
    ck_refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
               "\"input_audio\":{\"data\":\"AA==\",\"format\":\"wav\"}}]}]}",
               "messages[0].content[0].type");
    ck_refused("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\","
               "\"content\":[{\"type\":\"file\",\"file\":{\"file_id\":\"f\"}}]}]}",
               "messages[1].content[0].type");
    ck_refused("{\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}",
               "messages[0].role");
    ck_refused("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\","
               "\"audio\":{\"id\":\"audio_1\"}}]}",
               "messages[1].audio");
    /* the message says what cannot go, and where */
    b = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":3}");
    ck_assert_str_eq(xlate_check(OA, b, buf, sizeof(buf)),
                     "'n' greater than 1 cannot be sent to an Anthropic model");
    cJSON_Delete(b);
    b = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":1,\"seed\":7}");
    ck_assert_ptr_null(xlate_check(OA, b, buf, sizeof(buf)));
    cJSON_Delete(b);
}
END_TEST

/* --- the answer --- */

static cJSON *resp(const char *doc, const struct xlate_ctx *ctx)
{
    cJSON *d = parse(doc);
    cJSON *out = xlate_response(ctx, d);

    cJSON_Delete(d);
    return out;
}

static const struct xlate_ctx ctx0 = {OA, "auto", "req42", 1765000000, 0};

START_TEST(answer_text_and_usage)
{
    cJSON *out = resp("{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                      "\"claude-haiku-4-5\",\"content\":[{\"type\":\"thinking\",\"thinking\":"
                      "\"hmm\",\"signature\":\"s\"},{\"type\":\"text\",\"text\":\"Hello\"},"
                      "{\"type\":\"text\",\"text\":\", world\"}],\"stop_reason\":\"end_turn\","
                      "\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,"
                      "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":1000,"
                      "\"output_tokens\":7}}",
                      &ctx0);

    ck_assert_ptr_nonnull(out);
    ck_json(out, "{\"id\":\"chatcmpl-req42\",\"object\":\"chat.completion\",\"created\":"
                 "1765000000,\"model\":\"auto\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                 "\"assistant\",\"content\":\"Hello, world\",\"refusal\":null},\"logprobs\":null,"
                 "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1120,"
                 "\"completion_tokens\":7,\"total_tokens\":1127,\"prompt_tokens_details\":"
                 "{\"cached_tokens\":1000}}}");
    cJSON_Delete(out);
    /* not a message: the caller passes the error on */
    ck_assert_ptr_null(resp("{\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}", &ctx0));
}
END_TEST

START_TEST(answer_tool_calls)
{
    cJSON *out = resp(
        "{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
        "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"get_weather\","
        "\"input\":{\"city\":\"Paris\",\"units\":{\"t\":\"C\"}}},{\"type\":\"tool_use\",\"id\":"
        "\"toolu_B\",\"name\":\"now\",\"input\":{}}],\"stop_reason\":\"tool_use\",\"usage\":"
        "{\"input_tokens\":5,\"output_tokens\":9}}",
        &ctx0);

    ck_assert_ptr_nonnull(out);
    ck_json(out, "{\"id\":\"chatcmpl-req42\",\"object\":\"chat.completion\",\"created\":"
                 "1765000000,\"model\":\"auto\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                 "\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":["
                 "{\"id\":\"toolu_A\",\"type\":\"function\",\"function\":{\"name\":"
                 "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"units\\\":"
                 "{\\\"t\\\":\\\"C\\\"}}\"}},"
                 "{\"id\":\"toolu_B\",\"type\":\"function\",\"function\":{\"name\":\"now\","
                 "\"arguments\":\"{}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
                 "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9,\"total_tokens\":14,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":0}}}");
    cJSON_Delete(out);
}
END_TEST

START_TEST(stop_reasons)
{
    static const char *const map[][2] = {
        {"end_turn", "stop"},      {"max_tokens", "length"},      {"tool_use", "tool_calls"},
        {"stop_sequence", "stop"}, {"refusal", "content_filter"}, {"pause_turn", "stop"},
    };
    char doc[512];

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        cJSON *out;
        snprintf(doc, sizeof(doc),
                 "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}],"
                 "\"stop_reason\":\"%s\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
                 map[i][0]);
        out = resp(doc, &ctx0);
        ck_assert_ptr_nonnull(out);
        ck_assert_str_eq(
            GET(cJSON_GetArrayItem(GET(out, "choices"), 0), "finish_reason")->valuestring,
            map[i][1]);
        cJSON_Delete(out);
    }
}
END_TEST

static void ck_error(int status, const char *doc, int want_status, const char *want)
{
    cJSON *d = doc != NULL ? parse(doc) : NULL;
    int cs = 0;
    cJSON *out = xlate_error(&ctx0, status, d, &cs);

    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(cs, want_status);
    ck_json(out, want);
    cJSON_Delete(out);
    cJSON_Delete(d);
}

START_TEST(errors)
{
    ck_error(400,
             "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
             "\"messages: roles must alternate\"}}",
             400,
             "{\"error\":{\"message\":\"messages: roles must alternate\",\"type\":"
             "\"invalid_request_error\",\"param\":null,\"code\":\"invalid_request_error\"}}");
    ck_error(429,
             "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
             "\"Number of request tokens has exceeded your per-minute rate limit\"}}",
             429,
             "{\"error\":{\"message\":\"Number of request tokens has exceeded your per-minute "
             "rate limit\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":"
             "\"rate_limit_exceeded\"}}");
    ck_error(529,
             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
             "\"Overloaded\"}}",
             503,
             "{\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"param\":null,"
             "\"code\":\"overloaded_error\"}}");
    ck_error(502, NULL, 502,
             "{\"error\":{\"message\":\"the provider answered with status 502\",\"type\":"
             "\"server_error\",\"param\":null,\"code\":null}}");
}
END_TEST

/* --- streams --- */

struct sink {
    char buf[1 << 17];
    size_t len;
    int events;
    int stop_at; /* answer -1 at this event (0: never) */
};

static int sink_emit(void *arg, const char *name, const char *text, size_t len)
{
    struct sink *k = arg;

    ck_assert_str_eq(name, ""); /* an OpenAI client's events have no name */
    ck_assert_msg(len >= 8 && memcmp(text, "data: ", 6) == 0 &&
                      memcmp(text + len - 2, "\n\n", 2) == 0,
                  "not an SSE data event: %.*s", (int)len, text);
    ck_assert_msg(memchr(text, '\n', len - 2) == NULL, "a newline inside the data line");
    ck_assert_uint_lt(k->len + len, sizeof(k->buf));
    memcpy(k->buf + k->len, text, len);
    k->len += len;
    k->buf[k->len] = '\0';
    k->events++;
    return k->stop_at != 0 && k->events == k->stop_at ? -1 : 0;
}

/* Feeds one upstream event (data as JSON text) the way the gate's filter does. */
static int feed(struct xlate_stream *s, const char *name, const char *data, struct sink *k)
{
    cJSON *d = cJSON_Parse(data);
    int rc = xlate_stream_event(s, name, d, data, strlen(data), sink_emit, k);

    cJSON_Delete(d);
    return rc;
}

/* What an OpenAI SDK makes of the client's stream. */
struct client_view {
    char role[32];
    char content[4096];
    int ncalls;
    struct {
        char id[64], name[64], args[4096];
    } calls[8];
    char finish[32];
    int usage_chunks, done, after_done, errors;
    cJSON *usage;
    char error_code[64];
};

static void reassemble(const struct sink *k, struct client_view *v)
{
    const char *p = k->buf;

    memset(v, 0, sizeof(*v));
    while (*p != '\0') {
        const char *end = strstr(p, "\n\n");
        char line[16384];
        cJSON *c, *ch, *d, *tc;
        size_t n;

        ck_assert_ptr_nonnull(end);
        n = (size_t)(end - p) - 6;
        ck_assert_uint_lt(n, sizeof(line));
        memcpy(line, p + 6, n);
        line[n] = '\0';
        p = end + 2;
        if (v->done)
            v->after_done++;
        if (strcmp(line, "[DONE]") == 0) {
            v->done++;
            continue;
        }
        c = parse(line);
        if (GET(c, "error") != NULL) {
            const cJSON *code = GET(GET(c, "error"), "code");
            v->errors++;
            if (cJSON_IsString(code))
                snprintf(v->error_code, sizeof(v->error_code), "%s", code->valuestring);
            cJSON_Delete(c);
            continue;
        }
        ck_assert_str_eq(GET(c, "object")->valuestring, "chat.completion.chunk");
        ck_assert_str_eq(GET(c, "id")->valuestring, "chatcmpl-req42");
        ck_assert_str_eq(GET(c, "model")->valuestring, "auto");
        if (cJSON_IsObject(GET(c, "usage"))) {
            ck_assert_int_eq(cJSON_GetArraySize(GET(c, "choices")), 0);
            v->usage_chunks++;
            cJSON_Delete(v->usage);
            v->usage = cJSON_Duplicate(GET(c, "usage"), 1);
        }
        ch = cJSON_GetArrayItem(GET(c, "choices"), 0);
        d = GET(ch, "delta");
        if (cJSON_IsString(GET(d, "role")))
            snprintf(v->role, sizeof(v->role), "%s", GET(d, "role")->valuestring);
        if (cJSON_IsString(GET(d, "content")))
            strcat(v->content, GET(d, "content")->valuestring);
        cJSON_ArrayForEach(tc, GET(d, "tool_calls"))
        {
            int i = GET(tc, "index")->valueint;
            const cJSON *fn = GET(tc, "function");
            ck_assert_int_ge(i, 0);
            ck_assert_int_lt(i, 8);
            if (cJSON_IsString(GET(tc, "id"))) {
                ck_assert_int_eq(i, v->ncalls); /* a new call takes the next index */
                v->ncalls++;
                snprintf(v->calls[i].id, sizeof(v->calls[i].id), "%s", GET(tc, "id")->valuestring);
                snprintf(v->calls[i].name, sizeof(v->calls[i].name), "%s",
                         GET(fn, "name")->valuestring);
            }
            ck_assert_int_lt(i, v->ncalls); /* arguments for a call that started */
            if (cJSON_IsString(GET(fn, "arguments")))
                strcat(v->calls[i].args, GET(fn, "arguments")->valuestring);
        }
        if (cJSON_IsString(GET(ch, "finish_reason")))
            snprintf(v->finish, sizeof(v->finish), "%s", GET(ch, "finish_reason")->valuestring);
        cJSON_Delete(c);
    }
}

static const struct xlate_ctx ctx_usage = {OA, "auto", "req42", 1765000000, 1};

START_TEST(stream_text)
{
    static struct sink k;
    struct client_view v;
    struct xlate_stream *s = xlate_stream_new(&ctx_usage);
    static const char *const ev[][2] = {
        {"message_start",
         "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
         "\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,"
         "\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":"
         "10,\"cache_read_input_tokens\":300,\"output_tokens\":1}}}"},
        {"content_block_start",
         "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
         "\"text\":\"\"}}"},
        {"ping", "{\"type\": \"ping\"}"},
        {"content_block_delta",
         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
         "\"text\":\"Hello\"}}"},
        {"content_block_delta",
         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
         "\"text\":\", w\\u00f6rld \\\"x\\\"\\n\"}}"},
        {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"},
        {"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\","
                          "\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}"},
        {"message_stop", "{\"type\":\"message_stop\"}"},
    };

    ck_assert_ptr_nonnull(s);
    memset(&k, 0, sizeof(k));
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
        int before = k.events;
        ck_assert_int_eq(feed(s, ev[i][0], ev[i][1], &k), 0);
        /* each event's chunks go out as it comes: the first text at its own delta */
        if (i == 3)
            ck_assert_int_eq(k.events, before + 1);
        if (i == 2 || i == 5)
            ck_assert_int_eq(k.events, before);
    }
    ck_assert_int_eq(xlate_stream_end(s, sink_emit, &k), 0); /* nothing more: [DONE] came */
    xlate_stream_free(s);
    reassemble(&k, &v);
    ck_assert_str_eq(v.role, "assistant");
    ck_assert_str_eq(v.content, "Hello, w\xc3\xb6rld \"x\"\n");
    ck_assert_str_eq(v.finish, "length");
    ck_assert_int_eq(v.done, 1);
    ck_assert_int_eq(v.after_done, 0);
    ck_assert_int_eq(v.usage_chunks, 1);
    ck_json(v.usage, "{\"prompt_tokens\":335,\"completion_tokens\":12,\"total_tokens\":347,"
                     "\"prompt_tokens_details\":{\"cached_tokens\":300}}");
    cJSON_Delete(v.usage);
}
END_TEST

/* Splits s into pieces of about 3 bytes, never inside a UTF-8 character. */
static int pieces(const char *s, char out[][8], int max)
{
    int n = 0;
    size_t i = 0, len = strlen(s);

    while (i < len) {
        size_t j = i + 3 < len ? i + 3 : len;
        while (j < len && ((unsigned char)s[j] & 0xc0) == 0x80)
            j++;
        ck_assert_int_lt(n, max);
        ck_assert_uint_lt(j - i, 8);
        memcpy(out[n], s + i, j - i);
        out[n][j - i] = '\0';
        n++;
        i = j;
    }
    return n;
}

/* Three parallel tool calls after a text block, their arguments in 20+ deltas each,
 * interleaved between the calls, reassembled byte-exact with the right indices. */
START_TEST(stream_parallel_tools)
{
    static struct sink k;
    static char parts[3][128][8];
    static const char *const args[3] = {
        ("{\"city\": \"Paris\", \"units\": \"celsius\", \"days\": [1, 2, 3], \"note\": "
         "\"caf\xc3\xa9 \\\"quoted\\\"\"}"),
        "{\"city\":\"Oslo\",\"units\":\"fahrenheit\",\"detail\":{\"hourly\":true,\"wind\":false}}",
        "{\"query\": \"SELECT * FROM t WHERE a = 'x\\\\n'\", \"limit\": 100, \"x\": null}",
    };
    static const char *const ids[3] = {"toolu_01A", "toolu_01B", "toolu_01C"};
    static const char *const names[3] = {"get_weather", "get_weather", "run_sql"};
    struct xlate_stream *s = xlate_stream_new(&ctx0);
    struct client_view v;
    char data[1024];
    int n[3], left;

    ck_assert_ptr_nonnull(s);
    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(feed(s, "message_start",
                          "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":"
                          "\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\","
                          "\"usage\":{\"input_tokens\":50,\"output_tokens\":1}}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_start",
                          "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                          "{\"type\":\"text\",\"text\":\"\"}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                          "\"text_delta\",\"text\":\"Let me check.\"}}",
                          &k),
                     0);
    ck_assert_int_eq(
        feed(s, "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}", &k), 0);
    for (int t = 0; t < 3; t++) {
        n[t] = pieces(args[t], parts[t], 128);
        ck_assert_int_ge(n[t], 20);
        snprintf(data, sizeof(data),
                 "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":"
                 "\"tool_use\",\"id\":\"%s\",\"name\":\"%s\",\"input\":{}}}",
                 t + 1, ids[t], names[t]);
        ck_assert_int_eq(feed(s, "content_block_start", data, &k), 0);
        /* Anthropic's first input delta is often empty */
        snprintf(data, sizeof(data),
                 "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                 "\"input_json_delta\",\"partial_json\":\"\"}}",
                 t + 1);
        ck_assert_int_eq(feed(s, "content_block_delta", data, &k), 0);
    }
    /* the deltas round-robin across the three blocks */
    left = n[0] + n[1] + n[2];
    for (int i = 0; left > 0; i++) {
        for (int t = 0; t < 3; t++) {
            cJSON *d, *delta;
            char *text;
            if (i >= n[t])
                continue;
            d = parse("{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
                      "\"input_json_delta\"}}");
            cJSON_AddNumberToObject(d, "index", t + 1);
            delta = GET(d, "delta");
            cJSON_AddStringToObject(delta, "partial_json", parts[t][i]);
            text = cJSON_PrintUnformatted(d);
            {
                int before = k.events;
                ck_assert_int_eq(feed(s, "content_block_delta", text, &k), 0);
                ck_assert_int_eq(k.events, before + 1); /* each delta out as it came */
            }
            free(text);
            cJSON_Delete(d);
            left--;
            if (i == 7 && t == 1)
                ck_assert_int_eq(feed(s, "ping", "{\"type\":\"ping\"}", &k), 0);
        }
    }
    for (int t = 0; t < 3; t++) {
        snprintf(data, sizeof(data), "{\"type\":\"content_block_stop\",\"index\":%d}", t + 1);
        ck_assert_int_eq(feed(s, "content_block_stop", data, &k), 0);
    }
    ck_assert_int_eq(feed(s, "message_delta",
                          "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
                          "\"stop_sequence\":null},\"usage\":{\"output_tokens\":180}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "message_stop", "{\"type\":\"message_stop\"}", &k), 0);
    xlate_stream_free(s);
    reassemble(&k, &v);
    ck_assert_str_eq(v.content, "Let me check.");
    ck_assert_int_eq(v.ncalls, 3);
    for (int t = 0; t < 3; t++) {
        ck_assert_str_eq(v.calls[t].id, ids[t]);
        ck_assert_str_eq(v.calls[t].name, names[t]);
        ck_assert_str_eq(v.calls[t].args, args[t]);
    }
    ck_assert_str_eq(v.finish, "tool_calls");
    ck_assert_int_eq(v.usage_chunks, 0); /* the client did not ask for usage */
    ck_assert_int_eq(v.done, 1);
}
END_TEST

/* A stream cut before message_stop gets [DONE] from stream_end, once. */
START_TEST(stream_cut)
{
    static struct sink k;
    struct client_view v;
    struct xlate_stream *s = xlate_stream_new(&ctx_usage);

    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(feed(s, "message_start",
                          "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_3\",\"usage\":"
                          "{\"input_tokens\":3,\"output_tokens\":1}}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                          "\"text_delta\",\"text\":\"partial\"}}",
                          &k),
                     0);
    ck_assert_int_eq(xlate_stream_end(s, sink_emit, &k), 0);
    ck_assert_int_eq(xlate_stream_end(s, sink_emit, &k), 0);
    xlate_stream_free(s);
    reassemble(&k, &v);
    ck_assert_str_eq(v.content, "partial");
    ck_assert_int_eq(v.done, 1);
    ck_assert_int_eq(v.after_done, 0);
    ck_assert_str_eq(v.finish, "");
}
END_TEST

/* An error event mid-stream becomes an OpenAI error chunk; nothing follows it. */
START_TEST(stream_error)
{
    static struct sink k;
    struct client_view v;
    struct xlate_stream *s = xlate_stream_new(&ctx0);

    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(feed(s, "message_start",
                          "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_4\",\"usage\":"
                          "{\"input_tokens\":3,\"output_tokens\":1}}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "error",
                          "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                          "\"message\":\"Overloaded\"}}",
                          &k),
                     0);
    ck_assert_int_eq(xlate_stream_end(s, sink_emit, &k), 0);
    xlate_stream_free(s);
    reassemble(&k, &v);
    ck_assert_int_eq(v.errors, 1);
    ck_assert_str_eq(v.error_code, "overloaded_error");
    ck_assert_int_eq(v.done, 0);
    ck_assert_ptr_nonnull(strstr(k.buf, "\"message\":\"Overloaded\""));
}
END_TEST

/* emit's -1 (the client went) stops the translation with -1. */
START_TEST(stream_emit_stops)
{
    static struct sink k;
    struct xlate_stream *s = xlate_stream_new(&ctx0);

    memset(&k, 0, sizeof(k));
    k.stop_at = 2;
    ck_assert_int_eq(feed(s, "message_start", "{\"type\":\"message_start\",\"message\":{}}", &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                          "\"text_delta\",\"text\":\"x\"}}",
                          &k),
                     -1);
    xlate_stream_free(s);
    /* no request id: the message's id names the chunks */
    {
        struct xlate_ctx c = {OA, "auto", NULL, 1, 0};
        s = xlate_stream_new(&c);
        memset(&k, 0, sizeof(k));
        ck_assert_int_eq(feed(s, "message_start",
                              "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_9\"}}", &k),
                         0);
        ck_assert_ptr_nonnull(strstr(k.buf, "\"id\":\"chatcmpl-msg_9\""));
        xlate_stream_free(s);
    }
}
END_TEST

/* More tool_use blocks than XLATE_MAX_TOOLS: an error chunk, then nothing. */
START_TEST(stream_tool_cap)
{
    static struct sink k;
    struct client_view v;
    struct xlate_stream *s = xlate_stream_new(&ctx0);
    char data[256];

    memset(&k, 0, sizeof(k));
    for (int i = 0; i <= XLATE_MAX_TOOLS; i++) {
        snprintf(data, sizeof(data),
                 "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":"
                 "\"tool_use\",\"id\":\"t%d\",\"name\":\"f\",\"input\":{}}}",
                 i, i);
        ck_assert_int_eq(feed(s, "content_block_start", data, &k), 0);
    }
    ck_assert_int_eq(feed(s, "message_stop", "{\"type\":\"message_stop\"}", &k), 0);
    ck_assert_int_eq(xlate_stream_end(s, sink_emit, &k), 0);
    xlate_stream_free(s);
    /* role chunk, 128 calls, one error */
    ck_assert_int_eq(k.events, 1 + XLATE_MAX_TOOLS + 1);
    ck_assert_ptr_nonnull(strstr(k.buf, "too_many_tool_calls"));
    (void)v;
}
END_TEST

/* A tool_use block whose input comes whole at its start (not in deltas) keeps it. */
START_TEST(stream_tool_input_at_start)
{
    static struct sink k;
    struct client_view v;
    struct xlate_stream *s = xlate_stream_new(&ctx0);

    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(feed(s, "content_block_start",
                          "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                          "{\"type\":\"tool_use\",\"id\":\"toolu_Z\",\"name\":\"f\",\"input\":"
                          "{\"a\":[1,\"b\"]}}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":7,\"delta\":{\"type\":"
                          "\"input_json_delta\",\"partial_json\":\"{}\"}}",
                          &k),
                     0); /* a delta for a block that never started: nothing */
    ck_assert_int_eq(xlate_stream_end(s, sink_emit, &k), 0);
    xlate_stream_free(s);
    reassemble(&k, &v);
    ck_assert_int_eq(v.ncalls, 1);
    ck_assert_str_eq(v.calls[0].id, "toolu_Z");
    ck_assert_str_eq(v.calls[0].args, "{\"a\":[1,\"b\"]}");
    ck_assert_int_eq(v.done, 1);
}
END_TEST

/* response_format json: a forced tool out, its call back as the content (whole and streamed). */
START_TEST(json_mode)
{
    static struct sink k;
    struct client_view v;
    struct xlate_stream *s;
    cJSON *out;

    ck_req("{\"messages\":[{\"role\":\"user\",\"content\":\"Extract as JSON: Ann, 31\"}],"
           "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
           "\"person\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":"
           "{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}}}}}}",
           "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":"
           "[{\"type\":\"text\",\"text\":\"Extract as JSON: Ann, 31\"}]}],\"max_tokens\":1024,"
           "\"tools\":[{\"name\":\"tokengate_json_output\",\"description\":\"Give the answer "
           "as this tool's input, a JSON object.\",\"input_schema\":{\"type\":\"object\","
           "\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}}}}],"
           "\"tool_choice\":{\"type\":\"tool\",\"name\":\"tokengate_json_output\"}}");
    ck_req("{\"messages\":[{\"role\":\"user\",\"content\":\"JSON please\"}],"
           "\"response_format\":{\"type\":\"json_object\"}}",
           "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":"
           "[{\"type\":\"text\",\"text\":\"JSON please\"}]}],\"max_tokens\":1024,"
           "\"tools\":[{\"name\":\"tokengate_json_output\",\"description\":\"Give the answer "
           "as this tool's input, a JSON object.\",\"input_schema\":{\"type\":\"object\"}}],"
           "\"tool_choice\":{\"type\":\"tool\",\"name\":\"tokengate_json_output\"}}");
    out = resp("{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_J\","
               "\"name\":\"tokengate_json_output\",\"input\":{\"name\":\"Ann\",\"age\":31}}],"
               "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":9,\"output_tokens\":8}}",
               &ctx0);
    ck_assert_ptr_nonnull(out);
    ck_json(GET(out, "choices"), "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                                 "\"{\\\"name\\\":\\\"Ann\\\",\\\"age\\\":31}\",\"refusal\":null},"
                                 "\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    cJSON_Delete(out);
    /* streamed: the input deltas are content deltas */
    s = xlate_stream_new(&ctx0);
    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(feed(s, "message_start",
                          "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"
                          "{\"input_tokens\":9,\"output_tokens\":1}}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_start",
                          "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                          "{\"type\":\"tool_use\",\"id\":\"toolu_J\",\"name\":"
                          "\"tokengate_json_output\",\"input\":{}}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                          "\"input_json_delta\",\"partial_json\":\"{\\\"name\\\": \\\"A\"}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                          "\"input_json_delta\",\"partial_json\":\"nn\\\"}\"}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "message_delta",
                          "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
                          "\"usage\":{\"output_tokens\":8}}",
                          &k),
                     0);
    ck_assert_int_eq(feed(s, "message_stop", "{\"type\":\"message_stop\"}", &k), 0);
    xlate_stream_free(s);
    reassemble(&k, &v);
    ck_assert_int_eq(v.ncalls, 0);
    ck_assert_str_eq(v.content, "{\"name\": \"Ann\"}");
    ck_assert_str_eq(v.finish, "stop");
}
END_TEST

/* The public functions refuse what is no translation at all, without a crash. */
START_TEST(dispatch_edges)
{
    char err[128];
    cJSON *b = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cJSON *arr = parse("[1]");
    struct xlate_ctx none = {XLATE_NONE, "m", "r", 1, 0};
    int cs = 0;

    err[0] = '\0';
    ck_assert_ptr_null(xlate_request(XLATE_NONE, b, "m", 10, 0, err, sizeof(err)));
    ck_assert_str_eq(err, "no translation");
    ck_assert_ptr_null(xlate_request(OA, arr, "m", 10, 0, err, sizeof(err)));
    ck_assert_str_eq(err, "the request body is not a JSON object");
    ck_assert_ptr_null(xlate_check(XLATE_NONE, b, err, sizeof(err)));
    ck_assert_ptr_null(xlate_response(&none, b));
    ck_assert_ptr_null(xlate_response(NULL, b));
    ck_assert_ptr_null(xlate_error(&none, 500, b, &cs));
    ck_assert_int_eq(cs, 500);
    ck_assert_ptr_null(xlate_stream_new(&none));
    xlate_stream_free(NULL);
    ck_assert_int_eq(xlate_stream_event(NULL, "x", b, "", 0, sink_emit, NULL), -1);
    ck_assert_int_eq(xlate_stream_end(NULL, sink_emit, NULL), -1);
    cJSON_Delete(arr);
    cJSON_Delete(b);
}
END_TEST

/* --- out of memory at each step --- */

static long fail_after = -1; /* the allocation that fails (-1: none) */
static long allocs, failures;

static void *failing_malloc(size_t n)
{
    if (fail_after >= 0 && allocs++ == fail_after) { /* that one only: later ones go through */
        failures++;
        return NULL;
    }
    return malloc(n);
}

static void fail_from(long n)
{
    allocs = 0;
    failures = 0;
    fail_after = n;
}

/* Printed without failures, to be freed. */
static char *print(const cJSON *j)
{
    long saved = fail_after;
    char *p;

    fail_after = -1;
    p = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
    fail_after = saved;
    return p;
}

/* Each function, with its n-th allocation failing for every n until one goes through: a
 * failure is reported (NULL, -1, "out of memory"), or what comes out is whole (the same as
 * without failures); nothing leaks (run under ASan with CK_FORK=no). */
START_TEST(out_of_memory_at_each_step)
{
    static const char *const bodies[] = {
        "{\"model\":\"auto\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"D\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},{\"type\":"
        "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},{\"type\":"
        "\"image_url\",\"image_url\":{\"url\":\"https://x.invalid/a.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"ok\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":[1,2]}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"r\"}]},{\"role\":\"user\",\"content\":\"more\"}],\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"description\":\"d\",\"parameters\":{\"type\":"
        "\"object\"}}},{\"type\":\"function\",\"function\":{\"name\":\"g\"}}],\"tool_choice\":"
        "{\"type\":\"function\",\"function\":{\"name\":\"f\"}},\"parallel_tool_calls\":false,"
        "\"stop\":[\"x\",\"y\"],\"temperature\":0.2,\"top_p\":0.5,\"user\":\"u\","
        "\"max_tokens\":9}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"j\"}],\"response_format\":{\"type\":"
        "\"json_schema\",\"json_schema\":{\"name\":\"n\",\"schema\":{\"type\":\"object\"}}}}",
    };
    static const char *const answers[] = {
        "{\"id\":\"msg_1\",\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"a\"},{\"type\":\"text\",\"text\":\"b\"},{\"type\":\"tool_use\",\"id\":\"t1\","
        "\"name\":\"f\",\"input\":{\"k\":[1,{\"z\":null}]}},{\"type\":\"tool_use\",\"id\":"
        "\"t2\",\"name\":\"g\",\"input\":{}}],\"stop_reason\":\"tool_use\",\"usage\":"
        "{\"input_tokens\":1,\"cache_read_input_tokens\":2,\"output_tokens\":3}}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
        "\"tokengate_json_output\",\"input\":{\"a\":1}}],\"stop_reason\":\"tool_use\"}",
    };
    static const char *const events[][2] = {
        {"message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"
                          "{\"input_tokens\":4,\"cache_creation_input_tokens\":1}}}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
                                "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                "{\"type\":\"text_delta\",\"text\":\"hi\"}}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":1,"
                                "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
                                "\"f\",\"input\":{\"pre\":1}}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                                "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\"}}"},
        {"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                          "\"tool_use\"},\"usage\":{\"output_tokens\":5}}"},
        {"error", "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                  "\"boom\"}}"},
    };
    cJSON_Hooks hooks = {failing_malloc, free};
    cJSON *docs[2], *ans[2], *evs[7];
    char *ref_req[2], *ref_ans[2], *ref_err;
    static struct sink ref_stream, k;
    char err[256];
    int cs;

    cJSON_InitHooks(&hooks);
    for (int i = 0; i < 2; i++) {
        cJSON *o;
        docs[i] = parse(bodies[i]);
        ans[i] = parse(answers[i]);
        o = xlate_request(OA, docs[i], "m", 100, 1, err, sizeof(err));
        ck_assert_msg(o != NULL, "%s", err);
        ref_req[i] = print(o);
        cJSON_Delete(o);
        o = xlate_response(&ctx_usage, ans[i]);
        ck_assert_ptr_nonnull(o);
        ref_ans[i] = print(o);
        cJSON_Delete(o);
    }
    {
        cJSON *o = xlate_error(&ctx0, 529, evs[0] = parse(events[6][1]), &cs);
        ref_err = print(o);
        cJSON_Delete(o);
        cJSON_Delete(evs[0]);
    }
    for (int i = 0; i < 7; i++)
        evs[i] = parse(events[i][1]);
    {
        struct xlate_stream *s = xlate_stream_new(&ctx_usage);
        memset(&ref_stream, 0, sizeof(ref_stream));
        for (int i = 0; i < 7; i++)
            ck_assert_int_eq(
                xlate_stream_event(s, events[i][0], evs[i], "", 0, sink_emit, &ref_stream), 0);
        ck_assert_int_eq(xlate_stream_end(s, sink_emit, &ref_stream), 0);
        xlate_stream_free(s);
    }
    for (long n = 0;; n++) {
        int whole = 1, rc = 0;
        struct xlate_stream *s;

        ck_assert_int_lt(n, 100000);
        for (int i = 0; i < 2; i++) {
            cJSON *o;
            char *p;

            err[0] = '\0';
            fail_from(n);
            o = xlate_request(OA, docs[i], "m", 100, 1, err, sizeof(err));
            fail_after = -1;
            if (o == NULL) {
                ck_assert_msg(failures > 0, "refused without a failure: %s", err);
                ck_assert_str_ne(err, "");
                whole = 0;
            } else {
                ck_assert_str_eq(p = print(o), ref_req[i]);
                free(p);
            }
            cJSON_Delete(o);
            fail_from(n);
            o = xlate_response(&ctx_usage, ans[i]);
            fail_after = -1;
            if (o == NULL) {
                ck_assert_int_gt(failures, 0);
                whole = 0;
            } else {
                ck_assert_str_eq(p = print(o), ref_ans[i]);
                free(p);
            }
            cJSON_Delete(o);
        }
        {
            cJSON *o;
            char *p;
            fail_from(n);
            o = xlate_error(&ctx0, 529, evs[6], &cs);
            fail_after = -1;
            if (o == NULL) {
                whole = 0;
            } else {
                ck_assert_str_eq(p = print(o), ref_err);
                free(p);
            }
            cJSON_Delete(o);
        }
        s = xlate_stream_new(&ctx_usage);
        ck_assert_ptr_nonnull(s);
        memset(&k, 0, sizeof(k));
        fail_from(n);
        for (int i = 0; i < 7 && rc == 0; i++)
            rc = xlate_stream_event(s, events[i][0], evs[i], "", 0, sink_emit, &k);
        if (rc == 0)
            rc = xlate_stream_end(s, sink_emit, &k);
        fail_after = -1;
        xlate_stream_free(s);
        if (rc == 0)
            ck_assert_str_eq(k.buf, ref_stream.buf);
        else
            whole = 0;
        if (whole)
            break;
    }
    for (int i = 0; i < 2; i++) {
        cJSON_Delete(docs[i]);
        cJSON_Delete(ans[i]);
        free(ref_req[i]);
        free(ref_ans[i]);
    }
    for (int i = 0; i < 7; i++)
        cJSON_Delete(evs[i]);
    free(ref_err);
    cJSON_InitHooks(NULL);
}
END_TEST

static Suite *xlate_oa_suite(void)
{
    Suite *s = suite_create("xlate_oa");
    TCase *tc = tcase_create("xlate_oa");

    tcase_add_test(tc, direction_names);
    tcase_add_test(tc, text_request);
    tcase_add_test(tc, sampling_and_caps);
    tcase_add_test(tc, system_forms);
    tcase_add_test(tc, images);
    tcase_add_test(tc, tools_and_choice);
    tcase_add_test(tc, tool_calls_and_results);
    tcase_add_test(tc, refused_fields);
    tcase_add_test(tc, answer_text_and_usage);
    tcase_add_test(tc, answer_tool_calls);
    tcase_add_test(tc, stop_reasons);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, stream_text);
    tcase_add_test(tc, stream_parallel_tools);
    tcase_add_test(tc, stream_cut);
    tcase_add_test(tc, stream_error);
    tcase_add_test(tc, stream_emit_stops);
    tcase_add_test(tc, stream_tool_cap);
    tcase_add_test(tc, stream_tool_input_at_start);
    tcase_add_test(tc, json_mode);
    tcase_add_test(tc, dispatch_edges);
    tcase_add_test(tc, out_of_memory_at_each_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(xlate_oa_suite());
}
