/*
 * Unit tests for cache/replay: a whole answer made into its stream (replay_stream) and a
 * stream gathered into its whole answer (replay_asm), OpenAI chat completions and Anthropic
 * messages: round trips, the events' order and shapes, streams in the shapes providers (and
 * the mock) send, events refused, and every allocation failing in turn.
 *
 * JSON in this file is written with ' for " (J() swaps them back) to stay readable.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/replay.h"
#include "failalloc.h"
#include "run_suite.h"

#define GET cJSON_GetObjectItemCaseSensitive
#define OA CONF_FMT_OPENAI
#define AN CONF_FMT_ANTHROPIC

/* s with ' swapped for " (malloc'd). */
static char *Q(const char *s)
{
    char *t = __real_malloc(strlen(s) + 1);

    strcpy(t, s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

static cJSON *J(const char *s)
{
    char *t = Q(s);
    cJSON *j = cJSON_Parse(t);

    ck_assert_msg(j != NULL, "test JSON does not parse: %s", t);
    free(t);
    return j;
}

static void same(const cJSON *got, const cJSON *want)
{
    char *g = cJSON_PrintUnformatted(got), *w = cJSON_PrintUnformatted(want);

    ck_assert_msg(cJSON_Compare(got, want, 1), "\n got %s\nwant %s", g, w);
    free(g);
    free(w);
}

/* ---- a stream as emitted ------------------------------------------------------------------ */

#define MAX_EVENTS 512

struct cap {
    int n;
    char *name[MAX_EVENTS]; /* NULL for none */
    char *data[MAX_EVENTS];
    int fail_at; /* emit answers 7 at this event (1 = the first); 0: never */
};

static int capture(void *arg, const char *name, const char *data, size_t len)
{
    struct cap *c = arg;

    ck_assert_int_lt(c->n, MAX_EVENTS);
    ck_assert_uint_eq(strlen(data), len);
    c->name[c->n] = name != NULL ? strcpy(__real_malloc(strlen(name) + 1), name) : NULL;
    c->data[c->n] = strcpy(__real_malloc(len + 1), data);
    c->n++;
    return c->fail_at == c->n ? 7 : 0;
}

static void cap_free(struct cap *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->name[i]);
        free(c->data[i]);
    }
    c->n = 0;
}

/* The whole answer of c's events gathered; NULL when asm refuses one or finish gives none. */
static cJSON *gather(enum conf_format api, const struct cap *c)
{
    struct replay_asm *a = replay_asm_new(api);
    cJSON *out = NULL;
    int rc = 0;

    ck_assert_ptr_nonnull(a);
    for (int i = 0; i < c->n && rc == 0; i++) {
        cJSON *d = strcmp(c->data[i], "[DONE]") == 0 ? NULL : cJSON_Parse(c->data[i]);
        rc = replay_asm_event(a, c->name[i] != NULL ? c->name[i] : "", d);
        cJSON_Delete(d);
    }
    if (rc == 0)
        out = replay_asm_finish(a);
    replay_asm_free(a);
    return out;
}

/* whole -> stream -> whole: the same answer. Returns the events (to be cap_free'd). */
static void round_trip(enum conf_format api, const char *whole_q, size_t piece, struct cap *c)
{
    cJSON *w = J(whole_q), *back;

    ck_assert(replay_whole_ok(api, w));
    ck_assert_int_eq(replay_stream(api, w, 1, piece, capture, c), 0);
    back = gather(api, c);
    ck_assert_ptr_nonnull(back);
    same(back, w);
    cJSON_Delete(back);
    cJSON_Delete(w);
}

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

static Suite *replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip_openai_tools);
    tcase_add_test(tc, round_trip_anthropic_tools);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(replay_suite());
}
