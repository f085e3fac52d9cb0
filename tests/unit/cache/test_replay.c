/*
 * Unit tests for cache/replay, whole answers made into streams (replay_out.c): OpenAI chat
 * completions and Anthropic messages round trips (whole -> stream -> gathered == whole) with
 * text, refusals, thinking, several tool calls, stop sequences and usage; the events' order,
 * shapes and pieces; emit stopping; every allocation failing in turn. test_replay_asm.c has
 * streams gathered (replay.c).
 *
 * JSON in this file is written with ' for " (J() swaps them back) to stay readable.
 */
#include "replaytest.h"
#include "run_suite.h"

static const char *const oa_tools =
    "{'id':'chatcmpl-7','object':'chat.completion','created':1741569952,'model':'gpt-4o',"
    "'choices':[{'index':0,'message':{'role':'assistant','content':'Checking the three "
    "cities \\u00e9t\\u00e9 \\u2603.','refusal':null,'tool_calls':[{'id':'call_a','type':"
    "'function','function':{'name':'get_weather','arguments':'{\\'city\\':\\'Paris\\'}'}},"
    "{'id':'call_b','type':'function','function':{'name':'get_weather','arguments':"
    "'{\\'city\\':\\'K\\u00f8benhavn\\'}'}},{'id':'call_c','type':'function','function':{'name':"
    "'get_time','arguments':'{}'}}]},'logprobs':null,'finish_reason':'tool_calls'}],"
    "'usage':{'prompt_tokens':120,'completion_tokens':60,'total_tokens':180,"
    "'prompt_tokens_details':{'cached_tokens':64}},'system_fingerprint':'fp_9'}";

static const char *const an_tools =
    "{'id':'msg_01','type':'message','role':'assistant','model':'claude-sonnet-4-5',"
    "'content':[{'type':'thinking','thinking':'Three lookups.','signature':'sig=='},"
    "{'type':'text','text':'Checking \\u00e9t\\u00e9 \\u2603 now.'},"
    "{'type':'tool_use','id':'toolu_a','name':'get_weather','input':{'city':'Paris'}},"
    "{'type':'tool_use','id':'toolu_b','name':'get_weather','input':{'city':'Oslo',"
    "'units':['c',1,null,true]}},{'type':'tool_use','id':'toolu_c','name':'get_time','input':"
    "{}}],'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':50,"
    "'cache_creation_input_tokens':10,'cache_read_input_tokens':2000,'output_tokens':90}}";

START_TEST(round_trip_openai_tools)
{
    for (size_t piece = 1; piece <= 64; piece *= 2) {
        struct cap c = {0};
        round_trip(OA, oa_tools, piece, &c);
        /* role first, [DONE] last, the usage chunk just before it */
        ck_assert_ptr_null(c.name[0]);
        ck_assert(strstr(c.data[0], "\"role\":\"assistant\"") != NULL);
        ck_assert_str_eq(c.data[c.n - 1], "[DONE]");
        ck_assert(strstr(c.data[c.n - 2], "\"choices\":[],\"usage\":{\"prompt_tokens\"") != NULL);
        cap_free(&c);
    }
}
END_TEST

START_TEST(round_trip_anthropic_tools)
{
    for (size_t piece = 1; piece <= 64; piece *= 2) {
        struct cap c = {0};
        round_trip(AN, an_tools, piece, &c);
        ck_assert_str_eq(c.name[0], "message_start");
        ck_assert_str_eq(c.name[c.n - 1], "message_stop");
        ck_assert_str_eq(c.name[c.n - 2], "message_delta");
        cap_free(&c);
    }
}
END_TEST

/* ---- more round trips ---------------------------------------------------------------------- */

START_TEST(round_trip_text_stop_and_usage)
{
    static const char *const wholes[][2] = {
        {"o", "{'id':'chatcmpl-1','object':'chat.completion','created':1,'model':'gpt-4o-mini',"
              "'choices':[{'index':0,'message':{'role':'assistant','content':'Roses are red, "
              "violets','refusal':null},'logprobs':null,'finish_reason':'stop'}],'usage':"
              "{'prompt_tokens':10,'completion_tokens':5,'total_tokens':15},'service_tier':"
              "'default'}"},
        {"o", "{'id':'chatcmpl-2','object':'chat.completion','created':2,'model':'gpt-4o-mini',"
              "'choices':[{'index':0,'message':{'role':'assistant','content':null,'refusal':"
              "'I cannot help with that.'},'logprobs':null,'finish_reason':'stop'}]}"},
        {"o", "{'id':'chatcmpl-3','object':'chat.completion','created':3,'model':'m',"
              "'choices':[{'index':0,'message':{'role':'assistant','content':'cut sho',"
              "'refusal':null},'logprobs':null,'finish_reason':'length'}],'usage':"
              "{'prompt_tokens':1,'completion_tokens':2,'total_tokens':3}}"},
        {"a", "{'id':'msg_1','type':'message','role':'assistant','model':'claude-haiku-4-5',"
              "'content':[{'type':'text','text':'one two '}],'stop_reason':'stop_sequence',"
              "'stop_sequence':'three','usage':{'input_tokens':12,'cache_creation_input_tokens':"
              "0,'cache_read_input_tokens':0,'output_tokens':3}}"},
        {"a", "{'id':'msg_2','type':'message','role':'assistant','model':'claude-haiku-4-5',"
              "'content':[{'type':'text','text':'long answer cut'}],'stop_reason':'max_tokens',"
              "'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':3,"
              "'cache_creation':{'ephemeral_5m_input_tokens':0,'ephemeral_1h_input_tokens':0},"
              "'service_tier':'standard'},'container':null}"},
        {"a", "{'id':'msg_3','type':'message','role':'assistant','model':'claude-opus-4-1',"
              "'content':[{'type':'redacted_thinking','data':'EuoBCoYBGAIi'},{'type':'text',"
              "'text':'ok'}],'stop_reason':'end_turn','stop_sequence':null,'usage':"
              "{'input_tokens':1,'output_tokens':1}}"},
        {"a", "{'id':'msg_4','type':'message','role':'assistant','model':'claude-opus-4-1',"
              "'content':[],'stop_reason':'end_turn','stop_sequence':null,'usage':"
              "{'input_tokens':1,'output_tokens':0}}"},
    };

    for (size_t i = 0; i < sizeof(wholes) / sizeof(wholes[0]); i++)
        for (size_t piece = 1; piece < 40; piece += 13) {
            struct cap c = {0};
            round_trip(wholes[i][0][0] == 'o' ? OA : AN, wholes[i][1], piece, &c);
            cap_free(&c);
        }
}
END_TEST

/* Without include_usage an OpenAI stream has no usage chunk (and its chunks no usage). */
START_TEST(openai_without_include_usage)
{
    cJSON *w = J(oa_tools), *back;
    struct cap c = {0};

    ck_assert_int_eq(replay_stream(OA, w, 0, 16, capture, &c), 0);
    for (int i = 0; i < c.n; i++)
        ck_assert_msg(strstr(c.data[i], "usage") == NULL, "usage in %s", c.data[i]);
    back = gather(OA, &c);
    ck_assert_ptr_nonnull(back);
    ck_assert_ptr_null(GET(back, "usage"));
    cJSON_DeleteItemFromObjectCaseSensitive(w, "usage");
    same(back, w);
    cJSON_Delete(back);
    cJSON_Delete(w);
    cap_free(&c);
}
END_TEST

/* 1 when s is valid UTF-8 that does not start or end inside a character. */
static int whole_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        int n = *p < 0x80             ? 1
                : (*p & 0xE0) == 0xC0 ? 2
                : (*p & 0xF0) == 0xE0 ? 3
                : (*p & 0xF8) == 0xF0 ? 4
                                      : 0;
        if (n == 0)
            return 0;
        for (int k = 1; k < n; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

/* Text and arguments go in pieces of about piece bytes, never inside a character. */
START_TEST(pieces_end_at_character_boundaries)
{
    for (int api = 0; api < 2; api++)
        for (size_t piece = 1; piece <= 5; piece++) {
            cJSON *w = J(api == 0 ? oa_tools : an_tools);
            struct cap c = {0};
            int text_pieces = 0;

            ck_assert_int_eq(replay_stream(api == 0 ? OA : AN, w, 1, piece, capture, &c), 0);
            for (int i = 0; i < c.n; i++) {
                cJSON *d = strcmp(c.data[i], "[DONE]") == 0 ? NULL : cJSON_Parse(c.data[i]);
                const cJSON *delta = api == 0
                                         ? GET(cJSON_GetArrayItem(GET(d, "choices"), 0), "delta")
                                         : GET(d, "delta");
                const cJSON *t = GET(delta, api == 0 ? "content" : "text");
                const cJSON *args =
                    api == 0 ? GET(GET(cJSON_GetArrayItem(GET(delta, "tool_calls"), 0), "function"),
                                   "arguments")
                             : GET(delta, "partial_json");
                const cJSON *v[2] = {t, args};
                for (int k = 0; k < 2; k++) {
                    size_t len;
                    if (!cJSON_IsString(v[k]) || (len = strlen(v[k]->valuestring)) == 0)
                        continue;
                    ck_assert_msg(whole_utf8(v[k]->valuestring), "piece '%s'", v[k]->valuestring);
                    /* at most piece bytes, or one character longer than that */
                    ck_assert_msg(len <= (piece > 3 ? piece : 4), "piece of %zu bytes", len);
                    text_pieces += k == 0;
                }
                cJSON_Delete(d);
            }
            /* "Checking ... \u2603." in pieces: several of them */
            ck_assert_int_gt(text_pieces, 10 / (int)piece);
            cJSON_Delete(w);
            cap_free(&c);
        }
}
END_TEST

/* The Anthropic events: names, indexes in order, each block started, filled and stopped. */
START_TEST(anthropic_event_order)
{
    cJSON *w = J(an_tools);
    struct cap c = {0};
    int open = -1, next = 0, seen_delta = 0;

    ck_assert_int_eq(replay_stream(AN, w, 1, 8, capture, &c), 0);
    for (int i = 0; i < c.n; i++) {
        cJSON *d = cJSON_Parse(c.data[i]);
        const char *type = GET(d, "type")->valuestring;
        const cJSON *index = GET(d, "index");

        ck_assert_str_eq(c.name[i], type);
        if (strcmp(type, "content_block_start") == 0) {
            ck_assert_int_eq(open, -1);
            ck_assert_int_eq(index->valueint, next);
            open = next++;
            /* a tool's input comes in its deltas */
            if (strcmp(GET(GET(d, "content_block"), "type")->valuestring, "tool_use") == 0)
                ck_assert_ptr_null(GET(GET(d, "content_block"), "input")->child);
        } else if (strcmp(type, "content_block_delta") == 0) {
            ck_assert_int_eq(index->valueint, open);
        } else if (strcmp(type, "content_block_stop") == 0) {
            ck_assert_int_eq(index->valueint, open);
            open = -1;
        } else if (strcmp(type, "message_delta") == 0) {
            ck_assert_int_eq(open, -1);
            ck_assert_int_eq(next, 5);
            ck_assert_int_eq((int)GET(GET(d, "usage"), "output_tokens")->valuedouble, 90);
            seen_delta = 1;
        } else if (strcmp(type, "message_start") == 0) {
            ck_assert_int_eq(i, 0);
            ck_assert_int_eq(
                (int)GET(GET(GET(d, "message"), "usage"), "cache_read_input_tokens")->valuedouble,
                2000);
        } else {
            ck_assert_str_eq(type, "message_stop");
            ck_assert_int_eq(i, c.n - 1);
        }
        cJSON_Delete(d);
    }
    ck_assert(seen_delta);
    cJSON_Delete(w);
    cap_free(&c);
}
END_TEST

/* piece 0 is taken as 1; a character longer than a piece goes whole. */
START_TEST(piece_zero_and_long_characters)
{
    cJSON *w = J("{'type':'message','role':'assistant','content':[{'type':'text','text':"
                 "'a\u2603b'}],'stop_reason':'end_turn','usage':{'input_tokens':1}}");
    struct cap c = {0};
    static const char *const want[] = {"a", "\xe2\x98\x83", "b"}; /* U+2603 */

    ck_assert_int_eq(replay_stream(AN, w, 1, 0, capture, &c), 0);
    /* message_start, block start, 3 deltas, stop, message_delta, message_stop */
    ck_assert_int_eq(c.n, 8);
    for (int i = 0; i < 3; i++) {
        cJSON *d = cJSON_Parse(c.data[2 + i]);
        ck_assert_str_eq(GET(GET(d, "delta"), "text")->valuestring, want[i]);
        cJSON_Delete(d);
    }
    cap_free(&c);
    cJSON_Delete(w);
}
END_TEST

START_TEST(emit_stops_the_stream)
{
    for (int api = 0; api < 2; api++) {
        cJSON *w = J(api == 0 ? oa_tools : an_tools);
        struct cap c = {.fail_at = 3};
        ck_assert_int_eq(replay_stream(api == 0 ? OA : AN, w, 1, 8, capture, &c), 7);
        ck_assert_int_eq(c.n, 3);
        cap_free(&c);
        cJSON_Delete(w);
    }
}
END_TEST

/* ---- memory running out --------------------------------------------------------------------- */

/* Each allocation failing in turn: replay_stream fails (-1) with the events so far a prefix of
 * the whole stream, the gatherer fails or gives the whole answer, never a crash or a leak
 * (under ASan). */
START_TEST(out_of_memory_at_each_step)
{
    for (int api = 0; api < 2; api++) {
        cJSON *w = J(api == 0 ? oa_tools : an_tools);
        struct cap full = {0};
        int done = 0;

        ck_assert_int_eq(replay_stream(api == 0 ? OA : AN, w, 1, 7, capture, &full), 0);
        for (long n = 0; done != 3; n++) {
            struct cap c = {0};
            struct replay_asm *a;
            cJSON *docs[MAX_EVENTS], *back = NULL;
            int rc;

            ck_assert_int_lt(n, 1000000);
            failalloc_at(n);
            rc = replay_stream(api == 0 ? OA : AN, w, 1, 7, capture, &c);
            failalloc_off();
            ck_assert(rc == 0 || rc == -1);
            if (n == 0)
                ck_assert_int_eq(rc, -1);
            ck_assert_int_le(c.n, full.n);
            for (int i = 0; i < c.n; i++)
                ck_assert_str_eq(c.data[i], full.data[i]);
            if (rc == 0) {
                ck_assert_int_eq(c.n, full.n);
                done |= 1;
            }
            cap_free(&c);

            for (int i = 0; i < full.n; i++)
                docs[i] = strcmp(full.data[i], "[DONE]") == 0 ? NULL : cJSON_Parse(full.data[i]);
            failalloc_at(n);
            a = replay_asm_new(api == 0 ? OA : AN);
            rc = a == NULL ? -1 : 0;
            for (int i = 0; i < full.n && rc == 0; i++)
                rc = replay_asm_event(a, full.name[i] != NULL ? full.name[i] : "", docs[i]);
            if (rc == 0)
                back = replay_asm_finish(a);
            replay_asm_free(a);
            failalloc_off();
            if (back != NULL) {
                same(back, w);
                done |= 2;
            }
            cJSON_Delete(back);
            for (int i = 0; i < full.n; i++)
                cJSON_Delete(docs[i]);
        }
        cap_free(&full);
        cJSON_Delete(w);
    }
}
END_TEST

static Suite *replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip_openai_tools);
    tcase_add_test(tc, round_trip_anthropic_tools);
    tcase_add_test(tc, round_trip_text_stop_and_usage);
    tcase_add_test(tc, openai_without_include_usage);
    tcase_add_test(tc, pieces_end_at_character_boundaries);
    tcase_add_test(tc, anthropic_event_order);
    tcase_add_test(tc, piece_zero_and_long_characters);
    tcase_add_test(tc, emit_stops_the_stream);
    tcase_add_test(tc, out_of_memory_at_each_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(replay_suite());
}
