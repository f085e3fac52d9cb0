/*
 * Unit tests for routing/xlate (XLATE_ANTHROPIC_TO_OPENAI) on the way out, xlate_ao.c: an
 * Anthropic Messages client's requests, as its SDK sends them, into OpenAI chat completions
 * requests; what cannot be sent is refused with a reason that names the member. The answers and
 * streams on the way back are in test_xlate_ao2.c; here too, all three with memory running out
 * at each allocation in turn.
 *
 * JSON in this file is written with ' for " (J() swaps them back) to stay readable.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/xlate.h"
#include "run_suite.h"

#define GET cJSON_GetObjectItemCaseSensitive
#define AO XLATE_ANTHROPIC_TO_OPENAI

/* J("{'a':1}") -> {"a":1}, parsed; fails the test when it is not JSON. */
static cJSON *J(const char *s)
{
    char *t = strdup(s);
    cJSON *j;

    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = cJSON_Parse(t);
    ck_assert_msg(j != NULL, "test JSON does not parse: %s", t);
    free(t);
    return j;
}

/* got must equal the expected JSON exactly (members in any order). */
static void same(const cJSON *got, const char *want)
{
    cJSON *w = J(want);
    char *g = cJSON_PrintUnformatted(got), *ws = cJSON_PrintUnformatted(w);

    ck_assert_msg(cJSON_Compare(got, w, 1), "\n got %s\nwant %s", g, ws);
    free(g);
    free(ws);
    cJSON_Delete(w);
}

static cJSON *request(const char *body, int64_t max_tokens, int stream)
{
    char err[256] = "";
    cJSON *b = J(body),
          *out = xlate_request(AO, b, "gpt-4o-mini", max_tokens, stream, err, sizeof(err));

    ck_assert_msg(out != NULL, "refused: %s", err);
    cJSON_Delete(b);
    return out;
}

/* The body is refused, with a reason that contains what. */
static void refused(const char *body, const char *what)
{
    char err[256] = "", buf[256];
    cJSON *b = J(body), *out = xlate_request(AO, b, "gpt-4o-mini", 1024, 0, err, sizeof(err));
    const char *why = xlate_check(AO, b, buf, sizeof(buf));

    ck_assert_msg(out == NULL, "not refused: %s", body);
    ck_assert_msg(strstr(err, what) != NULL, "reason '%s' does not name %s", err, what);
    ck_assert_msg(strstr(err, "cannot be sent to an OpenAI model") != NULL, "reason: %s", err);
    ck_assert_msg(why != NULL && strcmp(why, err) == 0, "xlate_check says '%s', request '%s'",
                  why ? why : "(null)", err);
    cJSON_Delete(b);
}

/* ---- requests ------------------------------------------------------------------------- */

START_TEST(text_request)
{
    cJSON *out = request("{'model':'auto','max_tokens':300,'system':'You are terse.',"
                         "'messages':[{'role':'user','content':'Hello'},"
                         "{'role':'assistant','content':'Hi.'},{'role':'user','content':'Bye'}],"
                         "'temperature':0.5,'top_p':0.9,'stop_sequences':['END','##'],"
                         "'metadata':{'user_id':'u-42'},'stream':false}",
                         4096, 0);

    same(out, "{'model':'gpt-4o-mini','messages':[{'role':'system','content':'You are terse.'},"
              "{'role':'user','content':'Hello'},{'role':'assistant','content':'Hi.'},"
              "{'role':'user','content':'Bye'}],'max_completion_tokens':300,"
              "'temperature':0.5,'top_p':0.9,'stop':['END','##'],'user':'u-42'}");
    cJSON_Delete(out);
}
END_TEST

START_TEST(stream_asks_for_usage)
{
    cJSON *out = request("{'model':'auto','max_tokens':10,'stream':true,"
                         "'messages':[{'role':'user','content':'Hi'}]}",
                         -1, 1);

    same(out, "{'model':'gpt-4o-mini','messages':[{'role':'user','content':'Hi'}],"
              "'max_completion_tokens':10,'stream':true,'stream_options':{'include_usage':true}}");
    cJSON_Delete(out);
}
END_TEST

START_TEST(max_tokens_filled_when_absent)
{
    cJSON *out = request("{'model':'auto','messages':[{'role':'user','content':'Hi'}]}", 2048, 0);

    ck_assert_double_eq(GET(out, "max_completion_tokens")->valuedouble, 2048);
    ck_assert_ptr_null(GET(out, "max_tokens"));
    cJSON_Delete(out);
    out = request("{'model':'auto','messages':[{'role':'user','content':'Hi'}]}", -1, 0);
    ck_assert_ptr_null(GET(out, "max_completion_tokens"));
    cJSON_Delete(out);
}
END_TEST

START_TEST(system_blocks)
{
    cJSON *one = request("{'model':'m','max_tokens':5,'system':[{'type':'text','text':'Rules.',"
                         "'cache_control':{'type':'ephemeral'}}],"
                         "'messages':[{'role':'user','content':[{'type':'text','text':'Q',"
                         "'cache_control':{'type':'ephemeral','ttl':'1h'}}]}]}",
                         -1, 0);
    cJSON *two = request("{'model':'m','max_tokens':5,'system':[{'type':'text','text':'A'},"
                         "{'type':'text','text':'B','cache_control':{'type':'ephemeral'}}],"
                         "'messages':[{'role':'user','content':'Q'}]}",
                         -1, 0);

    /* cache_control is dropped: OpenAI caches prompts by itself */
    same(GET(one, "messages"),
         "[{'role':'system','content':'Rules.'},{'role':'user','content':'Q'}]");
    same(GET(two, "messages"), "[{'role':'system','content':[{'type':'text','text':'A'},"
                               "{'type':'text','text':'B'}]},{'role':'user','content':'Q'}]");
    cJSON_Delete(one);
    cJSON_Delete(two);
}
END_TEST

START_TEST(images)
{
    cJSON *out =
        request("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':["
                "{'type':'image','source':{'type':'base64','media_type':'image/"
                "png','data':'iVBORw0KGgo='}},"
                "{'type':'image','source':{'type':'url','url':'https://example.com/cat.jpg'}},"
                "{'type':'text','text':'What differs?'}]}]}",
                -1, 0);

    same(GET(out, "messages"),
         "[{'role':'user','content':["
         "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0KGgo='}},"
         "{'type':'image_url','image_url':{'url':'https://example.com/cat.jpg'}},"
         "{'type':'text','text':'What differs?'}]}]");
    cJSON_Delete(out);
}
END_TEST

static const char *const tools_json =
    "'tools':[{'name':'get_weather','description':'Weather now','input_schema':{'type':'object',"
    "'properties':{'city':{'type':'string'}},'required':['city']},'cache_control':{'type':"
    "'ephemeral'}},{'type':'custom','name':'noop','input_schema':{'type':'object'}}]";

static cJSON *with_choice(const char *choice)
{
    char body[1024];

    snprintf(body, sizeof(body),
             "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],%s%s%s}",
             tools_json, choice[0] ? "," : "", choice);
    return request(body, -1, 0);
}

START_TEST(tools_and_choice)
{
    cJSON *out = with_choice("");

    same(GET(out, "tools"),
         "[{'type':'function','function':{'name':'get_weather','description':'Weather now',"
         "'parameters':{'type':'object','properties':{'city':{'type':'string'}},"
         "'required':['city']}}},{'type':'function','function':{'name':'noop','parameters':"
         "{'type':'object'}}}]");
    ck_assert_ptr_null(GET(out, "tool_choice"));
    ck_assert_ptr_null(GET(out, "parallel_tool_calls"));
    cJSON_Delete(out);

    out = with_choice("'tool_choice':{'type':'auto'}");
    same(GET(out, "tool_choice"), "'auto'");
    cJSON_Delete(out);
    out = with_choice("'tool_choice':{'type':'any'}");
    same(GET(out, "tool_choice"), "'required'");
    cJSON_Delete(out);
    out = with_choice("'tool_choice':{'type':'none'}");
    same(GET(out, "tool_choice"), "'none'");
    cJSON_Delete(out);
    out = with_choice("'tool_choice':{'type':'tool','name':'get_weather',"
                      "'disable_parallel_tool_use':true}");
    same(GET(out, "tool_choice"), "{'type':'function','function':{'name':'get_weather'}}");
    same(GET(out, "parallel_tool_calls"), "false");
    cJSON_Delete(out);
    out = with_choice("'tool_choice':{'type':'auto','disable_parallel_tool_use':false}");
    ck_assert_ptr_null(GET(out, "parallel_tool_calls"));
    cJSON_Delete(out);

    /* without tools, OpenAI refuses tool_choice: it is not sent */
    out = request("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'x'}],"
                  "'tool_choice':{'type':'none'}}",
                  -1, 0);
    ck_assert_ptr_null(GET(out, "tool_choice"));
    cJSON_Delete(out);
}
END_TEST

START_TEST(tool_use_and_results)
{
    cJSON *out = request(
        "{'model':'m','max_tokens':500,'messages':["
        "{'role':'user','content':'Weather in Paris, Oslo and Rome?'},"
        "{'role':'assistant','content':[{'type':'thinking','thinking':'hm','signature':'s'},"
        "{'type':'text','text':'Checking '},{'type':'text','text':'all three.'},"
        "{'type':'tool_use','id':'toolu_01','name':'get_weather','input':{'city':'Paris'}},"
        "{'type':'tool_use','id':'toolu_02','name':'get_weather','input':{'city':'Oslo'}},"
        "{'type':'tool_use','id':'toolu_03','name':'get_weather','input':{'city':'Rome',"
        "'units':{'t':'C'}}}]},"
        "{'role':'user','content':["
        "{'type':'tool_result','tool_use_id':'toolu_01','content':'18C sunny'},"
        "{'type':'tool_result','tool_use_id':'toolu_02','is_error':true,"
        "'content':[{'type':'text','text':'timeout'},{'type':'text','text':'retry later'}]},"
        "{'type':'tool_result','tool_use_id':'toolu_03'},"
        "{'type':'tool_result','tool_use_id':'toolu_01','content':'wind 10 km/h'},"
        "{'type':'text','text':'Summarise.'}]},"
        "{'role':'assistant','content':[{'type':'tool_use','id':'toolu_04','name':'noop',"
        "'input':{}}]},"
        "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_04',"
        "'content':'ok'}]}]}",
        -1, 0);

    same(GET(out, "messages"),
         "[{'role':'user','content':'Weather in Paris, Oslo and Rome?'},"
         "{'role':'assistant','content':'Checking all three.','tool_calls':["
         "{'id':'toolu_01','type':'function','function':{'name':'get_weather',"
         "'arguments':'{\\'city\\':\\'Paris\\'}'}},"
         "{'id':'toolu_02','type':'function','function':{'name':'get_weather',"
         "'arguments':'{\\'city\\':\\'Oslo\\'}'}},"
         "{'id':'toolu_03','type':'function','function':{'name':'get_weather',"
         "'arguments':'{\\'city\\':\\'Rome\\',\\'units\\':{\\'t\\':\\'C\\'}}'}}]},"
         "{'role':'tool','tool_call_id':'toolu_01','content':'18C sunny\\nwind 10 km/h'},"
         "{'role':'tool','tool_call_id':'toolu_02','content':'Error: timeout\\nretry later'},"
         "{'role':'tool','tool_call_id':'toolu_03','content':''},"
         "{'role':'user','content':'Summarise.'},"
         "{'role':'assistant','content':null,'tool_calls':[{'id':'toolu_04','type':'function',"
         "'function':{'name':'noop','arguments':'{}'}}]},"
         "{'role':'tool','tool_call_id':'toolu_04','content':'ok'}]");
    cJSON_Delete(out);
}
END_TEST

START_TEST(refused_fields)
{
    const char *m = "'messages':[{'role':'user','content':'x'}]";
    char b[1024];

#define R(extra, what)                                                                             \
    do {                                                                                           \
        snprintf(b, sizeof(b), "{'model':'m','max_tokens':5,%s,%s}", m, extra);                    \
        refused(b, what);                                                                          \
    } while (0)
    R("'top_k':40", "'top_k'");
    R("'thinking':{'type':'enabled','budget_tokens':2000}", "'thinking'");
    R("'container':'c_1'", "'container'");
    R("'mcp_servers':[{'type':'url','url':'https://mcp.example.com','name':'x'}]", "'mcp_servers'");
    R("'context_management':{'edits':[]}", "'context_management'");
    R("'some_new_feature':true", "'some_new_feature'");
    R("'stop_sequences':['a','b','c','d','e']", "'stop_sequences'");
    R("'tools':[{'type':'web_search_20250305','name':'web_search','max_uses':5}]",
      "'tools[0]' of type 'web_search_20250305'");
    R("'tools':[{'name':'a','input_schema':{}},{'type':'bash_20250124','name':'bash'}]",
      "'tools[1]'");
    R("'output_format':{'type':'text'}", "'output_format'");
#undef R
    refused("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':["
            "{'type':'document','source':{'type':'base64','media_type':'application/pdf',"
            "'data':'JVBERi0='}},{'type':'text','text':'Summarise'}]}]}",
            "'messages[0].content[0]' of type 'document'");
    refused("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'q'},"
            "{'role':'assistant','content':[{'type':'text','text':'Paris.','citations':"
            "[{'type':'char_location','cited_text':'P','document_index':0,"
            "'start_char_index':0,'end_char_index':1}]}]},{'role':'user','content':'ok'}]}",
            "'messages[1].content[0].citations'");
    refused("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':["
            "{'type':'image','source':{'type':'file','file_id':'file_01'}}]}]}",
            "'messages[0].content[0].source' of type 'file'");
    refused("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'q'},"
            "{'role':'assistant','content':[{'type':'tool_use','id':'t1','name':'shot',"
            "'input':{}}]},{'role':'user','content':[{'type':'tool_result','tool_use_id':'t1',"
            "'content':[{'type':'image','source':{'type':'base64','media_type':'image/png',"
            "'data':'AA=='}}]}]}]}",
            "'messages[2].content[0].content[0]' of type 'image'");
    refused("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'q'},"
            "{'role':'assistant','content':[{'type':'server_tool_use','id':'s1',"
            "'name':'web_search','input':{}}]},{'role':'user','content':'go on'}]}",
            "'messages[1].content[0]' of type 'server_tool_use'");
    refused("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'Say hi'},"
            "{'role':'assistant','content':'Hi, I am'}]}",
            "'messages[1]'");
}
END_TEST

START_TEST(dropped_not_refused)
{
    cJSON *out = request("{'model':'m','max_tokens':5,'thinking':{'type':'disabled'},"
                         "'service_tier':'auto','top_k':null,"
                         "'messages':[{'role':'user','content':'x'}]}",
                         -1, 0);

    same(out, "{'model':'gpt-4o-mini','messages':[{'role':'user','content':'x'}],"
              "'max_completion_tokens':5}");
    cJSON_Delete(out);
}
END_TEST

START_TEST(malformed_named)
{
    char err[256];
    cJSON *b = J("{'model':'m','max_tokens':5,'messages':[{'role':'user','content':["
                 "{'type':'tool_result','content':'x'}]}]}");

    ck_assert_ptr_null(xlate_request(AO, b, "gpt-4o-mini", -1, 0, err, sizeof(err)));
    ck_assert_str_eq(err, "'messages[0].content[0].tool_use_id' must be a string");
    cJSON_Delete(b);
    b = J("{'model':'m','max_tokens':5,'messages':[{'role':'system','content':'x'}]}");
    ck_assert_ptr_null(xlate_request(AO, b, "gpt-4o-mini", -1, 0, err, sizeof(err)));
    ck_assert_str_eq(err, "'messages[0].role' must be \"user\" or \"assistant\"");
    cJSON_Delete(b);
}
END_TEST

/* ---- memory running out ---------------------------------------------------------------- */

/* cJSON's allocations fail once this many more have been made (-1: never). */
static long fail_after = -1;

static void *failing_malloc(size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    return malloc(n);
}

static int sink(void *arg, const char *name, const char *text, size_t len)
{
    (void)name;
    ck_assert(len > 0 && text[len - 1] == '\n');
    (*(int *)arg)++;
    return 0;
}

static const char *const rich_request =
    "{'model':'auto','max_tokens':300,'stream':true,'system':[{'type':'text','text':'A'},"
    "{'type':'text','text':'B'}],'messages':[{'role':'user','content':[{'type':'text','text':"
    "'look'},{'type':'image','source':{'type':'base64','media_type':'image/png','data':'AA=='}},"
    "{'type':'image','source':{'type':'url','url':'https://example.com/a.png'}}]},"
    "{'role':'assistant','content':[{'type':'text','text':'ok'},{'type':'tool_use','id':'t1',"
    "'name':'f','input':{'a':[1,2]}},{'type':'tool_use','id':'t2','name':'f','input':{}}]},"
    "{'role':'user','content':[{'type':'tool_result','tool_use_id':'t1','content':'r1'},"
    "{'type':'tool_result','tool_use_id':'t1','is_error':true,'content':[{'type':'text',"
    "'text':'x'}]},{'type':'tool_result','tool_use_id':'t2','content':''},{'type':'text',"
    "'text':'go'}]}],'tools':[{'name':'f','description':'d','input_schema':{'type':'object'}}],"
    "'tool_choice':{'type':'tool','name':'f','disable_parallel_tool_use':true},"
    "'stop_sequences':['x'],'temperature':0.2,'top_p':0.5,'metadata':{'user_id':'u'},"
    "'output_format':{'type':'json_schema','schema':{'type':'object'}}}";

static const char *const rich_answer =
    "{'id':'c','object':'chat.completion','choices':[{'index':0,'message':{'role':'assistant',"
    "'content':'hi','refusal':'no','tool_calls':[{'id':'a','type':'function','function':{"
    "'name':'f','arguments':'{\\'x\\':1}'}},{'id':'b','type':'function','function':{'name':'g',"
    "'arguments':'{bad'}}]},'finish_reason':'tool_calls','stop_reason':'END'}],"
    "'usage':{'prompt_tokens':10,'completion_tokens':5,'prompt_tokens_details':"
    "{'cached_tokens':4}}}";

static const char *const rich_stream[] = {
    "{'choices':[{'index':0,'delta':{'role':'assistant','content':'He'},'finish_reason':null}]}",
    "{'choices':[{'index':0,'delta':{'refusal':'no'},'finish_reason':null}]}",
    "{'choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'id':'a','type':'function',"
    "'function':{'name':'f','arguments':'{\\'x\\''}}]},'finish_reason':null}]}",
    "{'choices':[{'index':0,'delta':{'tool_calls':[{'index':1,'id':'b','type':'function',"
    "'function':{'name':'g','arguments':'{}'}}]},'finish_reason':null}]}",
    "{'choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'function':{'arguments':':1}'}}]},"
    "'finish_reason':null}]}",
    "{'choices':[{'index':0,'delta':{},'finish_reason':'stop','stop_reason':'END'}]}",
    "{'choices':[],'usage':{'prompt_tokens':10,'completion_tokens':5}}",
};

/* Each translation with cJSON's allocations failing at each step in turn: NULL (a request: with
 * a reason) or -1, never a crash, a leak (under ASan) or half a document. */
START_TEST(out_of_memory_at_each_step)
{
    cJSON_Hooks hooks = {failing_malloc, free}, plain = {malloc, free};
    cJSON *body = J(rich_request), *answer_doc = J(rich_answer), *chunks[7];
    const struct xlate_ctx c = {.dir = AO, .client_model = "m", .request_id = "r"};
    int done = 0, all_events = 0;

    for (int i = 0; i < 7; i++)
        chunks[i] = J(rich_stream[i]);
    {
        /* the whole stream with memory to spare: message_start, text (start, 2 deltas, stop),
         * call a (start, 2 deltas, stop), call b (start, delta, stop), message_delta, _stop */
        struct xlate_stream *s = xlate_stream_new(&c);
        for (int i = 0; i < 7; i++)
            ck_assert_int_eq(xlate_stream_event(s, "", chunks[i], "x", 1, sink, &all_events), 0);
        ck_assert_int_eq(xlate_stream_end(s, sink, &all_events), 0);
        ck_assert_int_eq(all_events, 14);
        xlate_stream_free(s);
    }
    cJSON_InitHooks(&hooks);
    for (long n = 0; done != 7; n++) {
        char err[256] = "";
        cJSON *out;
        struct xlate_stream *s;
        int events = 0, rc = 0, st;

        ck_assert_int_lt(n, 100000);
        fail_after = n;
        out = xlate_request(AO, body, "gpt-4o-mini", 100, 1, err, sizeof(err));
        fail_after = -1;
        if (out != NULL)
            done |= 1;
        else
            ck_assert_str_eq(err, "out of memory");
        cJSON_Delete(out);

        fail_after = n;
        out = xlate_response(&c, answer_doc);
        fail_after = -1;
        if (out != NULL)
            done |= 2;
        cJSON_Delete(out);

        fail_after = n;
        out = xlate_error(&c, 503, answer_doc, &st);
        fail_after = -1;
        cJSON_Delete(out);

        s = xlate_stream_new(&c);
        ck_assert_ptr_nonnull(s);
        fail_after = n;
        for (int i = 0; i < 7 && rc == 0; i++) {
            char *raw = "x";
            rc = xlate_stream_event(s, "", chunks[i], raw, 1, sink, &events);
        }
        if (rc == 0)
            rc = xlate_stream_end(s, sink, &events);
        fail_after = -1;
        if (rc == 0) {
            ck_assert_int_eq(events, all_events);
            done |= 4;
        }
        xlate_stream_free(s);
    }
    cJSON_InitHooks(&plain);
    for (int i = 0; i < 7; i++)
        cJSON_Delete(chunks[i]);
    cJSON_Delete(body);
    cJSON_Delete(answer_doc);
}
END_TEST

static Suite *xlate_ao_suite(void)
{
    Suite *s = suite_create("xlate_ao");
    TCase *tc = tcase_create("xlate_ao");

    tcase_add_test(tc, text_request);
    tcase_add_test(tc, stream_asks_for_usage);
    tcase_add_test(tc, max_tokens_filled_when_absent);
    tcase_add_test(tc, system_blocks);
    tcase_add_test(tc, images);
    tcase_add_test(tc, tools_and_choice);
    tcase_add_test(tc, tool_use_and_results);
    tcase_add_test(tc, refused_fields);
    tcase_add_test(tc, dropped_not_refused);
    tcase_add_test(tc, malformed_named);
    tcase_add_test(tc, out_of_memory_at_each_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(xlate_ao_suite());
}
