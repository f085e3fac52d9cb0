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
#include "gate/http/sse.h"
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
    int bad;     /* an event too many, or its length wrong */
};

static int capture(void *arg, const char *name, const char *data, size_t len)
{
    struct cap *c = arg;

    /* no ck_assert here: check allocates, and allocations may be failing now */
    if (c->n >= MAX_EVENTS || strlen(data) != len) {
        c->bad = 1;
        return -1;
    }
    c->name[c->n] = name != NULL ? strcpy(__real_malloc(strlen(name) + 1), name) : NULL;
    c->data[c->n] = strcpy(__real_malloc(len + 1), data);
    c->n++;
    return c->fail_at == c->n ? 7 : 0;
}

static void cap_free(struct cap *c)
{
    ck_assert(!c->bad);
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
        int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                                : (*p & 0xF8) == 0xF0 ? 4 : 0;
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
                    ? GET(cJSON_GetArrayItem(GET(d, "choices"), 0), "delta") : GET(d, "delta");
                const cJSON *t = GET(delta, api == 0 ? "content" : "text");
                const cJSON *args = api == 0
                    ? GET(GET(cJSON_GetArrayItem(GET(delta, "tool_calls"), 0), "function"),
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

/* ---- streams gathered ----------------------------------------------------------------------- */

/* events written as ' for ", one string each: "NAME|DATA" (NAME may be empty; DATA [DONE]) */
static cJSON *gather_q(enum conf_format api, const char *const *evs, size_t n, int *rc)
{
    struct replay_asm *a = replay_asm_new(api);
    cJSON *out = NULL;

    *rc = 0;
    for (size_t i = 0; i < n && *rc == 0; i++) {
        const char *bar = strchr(evs[i], '|');
        char name[64];
        cJSON *d = strcmp(bar + 1, "[DONE]") == 0 ? NULL : J(bar + 1);
        snprintf(name, sizeof(name), "%.*s", (int)(bar - evs[i]), evs[i]);
        *rc = replay_asm_event(a, name, d);
        cJSON_Delete(d);
    }
    out = replay_asm_finish(a);
    replay_asm_free(a);
    return out;
}

#define NEV(a) (sizeof(a) / sizeof(a[0]))
#define CH(delta, finish)                                                                      \
    "|{'id':'c1','object':'chat.completion.chunk','created':5,'model':'gpt-4o','choices':"    \
    "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}"

/* Calls whose deltas come round-robin, the id and name in the first of each, arguments in
 * pieces, as some providers send them. */
START_TEST(openai_interleaved_calls)
{
    static const char *const evs[] = {
        CH("{'role':'assistant','content':null}", "null"),
        CH("{'tool_calls':[{'index':0,'id':'call_0','type':'function','function':{'name':'a',"
           "'arguments':''}}]}", "null"),
        CH("{'tool_calls':[{'index':1,'id':'call_1','type':'function','function':{'name':'b',"
           "'arguments':'{\\'y'}}]}", "null"),
        CH("{'tool_calls':[{'index':0,'function':{'arguments':'{\\'x\\':'}}]}", "null"),
        CH("{'tool_calls':[{'index':2,'id':'call_2','type':'function','function':{'name':'c',"
           "'arguments':'{}'}}]}", "null"),
        CH("{'tool_calls':[{'index':1,'function':{'arguments':'\\':2}'}},{'index':0,"
           "'function':{'arguments':'1}'}}]}", "null"),
        CH("{}", "'tool_calls'"),
        "|[DONE]",
    };
    int rc;
    cJSON *out = gather_q(OA, evs, NEV(evs), &rc), *want;

    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(out);
    want = J("{'id':'c1','object':'chat.completion','created':5,'model':'gpt-4o','choices':"
             "[{'index':0,'message':{'role':'assistant','content':null,'refusal':null,"
             "'tool_calls':[{'id':'call_0','type':'function','function':{'name':'a','arguments':"
             "'{\\'x\\':1}'}},{'id':'call_1','type':'function','function':{'name':'b',"
             "'arguments':'{\\'y\\':2}'}},{'id':'call_2','type':'function','function':{'name':"
             "'c','arguments':'{}'}}]},'logprobs':null,'finish_reason':'tool_calls'}]}");
    same(out, want);
    cJSON_Delete(out);
    cJSON_Delete(want);
}
END_TEST

#define AE(name, data) name "|" data

/* Anthropic usage: message_start's, with each member message_delta gives over it. */
START_TEST(anthropic_usage_merged)
{
    static const char *const evs[] = {
        AE("message_start", "{'type':'message_start','message':{'id':'m','type':'message',"
                            "'role':'assistant','model':'claude','content':[],'stop_reason':null,"
                            "'stop_sequence':null,'usage':{'input_tokens':25,"
                            "'cache_creation_input_tokens':7,'cache_read_input_tokens':100,"
                            "'cache_creation':{'ephemeral_5m_input_tokens':7,"
                            "'ephemeral_1h_input_tokens':0},'output_tokens':1}}}"),
        AE("content_block_start", "{'type':'content_block_start','index':0,'content_block':"
                                  "{'type':'thinking','thinking':'','signature':''}}"),
        AE("content_block_delta", "{'type':'content_block_delta','index':0,'delta':{'type':"
                                  "'thinking_delta','thinking':'hmm'}}"),
        AE("content_block_delta", "{'type':'content_block_delta','index':0,'delta':{'type':"
                                  "'signature_delta','signature':'SIG'}}"),
        AE("content_block_stop", "{'type':'content_block_stop','index':0}"),
        AE("content_block_start", "{'type':'content_block_start','index':1,'content_block':"
                                  "{'type':'tool_use','id':'t1','name':'f','input':{}}}"),
        AE("content_block_delta", "{'type':'content_block_delta','index':1,'delta':{'type':"
                                  "'input_json_delta','partial_json':''}}"),
        AE("content_block_delta", "{'type':'content_block_delta','index':1,'delta':{'type':"
                                  "'input_json_delta','partial_json':'{\\'q\\': \\'x'}}"),
        AE("content_block_delta", "{'type':'content_block_delta','index':1,'delta':{'type':"
                                  "'input_json_delta','partial_json':'y\\'}'}}"),
        AE("content_block_stop", "{'type':'content_block_stop','index':1}"),
        AE("message_delta", "{'type':'message_delta','delta':{'stop_reason':'tool_use',"
                            "'stop_sequence':null},'usage':{'input_tokens':25,"
                            "'cache_creation_input_tokens':null,'output_tokens':42}}"),
        AE("message_stop", "{'type':'message_stop'}"),
    };
    int rc;
    cJSON *out = gather_q(AN, evs, NEV(evs), &rc), *want;

    ck_assert_int_eq(rc, 0);
    want = J("{'id':'m','type':'message','role':'assistant','model':'claude','content':["
             "{'type':'thinking','thinking':'hmm','signature':'SIG'},{'type':'tool_use','id':"
             "'t1','name':'f','input':{'q':'xy'}}],'stop_reason':'tool_use','stop_sequence':null,"
             "'usage':{'input_tokens':25,'cache_creation_input_tokens':7,"
             "'cache_read_input_tokens':100,'cache_creation':{'ephemeral_5m_input_tokens':7,"
             "'ephemeral_1h_input_tokens':0},'output_tokens':42}}");
    same(out, want);
    cJSON_Delete(out);
    cJSON_Delete(want);
}
END_TEST

/* Streams that are not whole, well-ordered answers: the event is refused (-1, and the
 * gatherer is failed), or finish gives NULL. */
START_TEST(bad_streams_refused)
{
    static const char *const ms = AE("message_start",
        "{'type':'message_start','message':{'id':'m','type':'message','role':'assistant',"
        "'model':'c','content':[],'stop_reason':null,'stop_sequence':null,'usage':"
        "{'input_tokens':1,'output_tokens':1}}}");
    static const char *const bs = AE("content_block_start",
        "{'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}");
    static const char *const bd = AE("content_block_delta",
        "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'a'}}");
    static const char *const bstop = AE("content_block_stop",
        "{'type':'content_block_stop','index':0}");
    static const char *const md = AE("message_delta",
        "{'type':'message_delta','delta':{'stop_reason':'end_turn','stop_sequence':null},"
        "'usage':{'output_tokens':1}}");
    static const char *const mstop = AE("message_stop", "{'type':'message_stop'}");
    static const char *const tool = AE("content_block_start",
        "{'type':'content_block_start','index':0,'content_block':{'type':'tool_use','id':'t',"
        "'name':'f','input':{}}}");
    static const char *const partial = AE("content_block_delta",
        "{'type':'content_block_delta','index':0,'delta':{'type':'input_json_delta',"
        "'partial_json':'{\\'a\\': 1'}}");
    static const struct {
        const char *why;
        int refused_at; /* the event refused (from 1), or 0: all taken, finish gives NULL */
        const char *evs[8];
    } an[] = {
        {"a delta before its block", 2, {ms, bd, bstop, md, mstop}},
        {"a block before message_start", 1, {bs, bd, bstop, md, mstop}},
        {"two message_start", 2, {ms, ms}},
        {"a delta after its block stopped", 4, {ms, bs, bstop, bd}},
        {"message_delta with a block open", 3, {ms, bs, md}},
        {"message_stop before message_delta", 4, {ms, bs, bstop, mstop}},
        {"an event after message_stop", 4, {ms, md, mstop, mstop, NULL}},
        {"a block index skipped", 2,
         {ms, AE("content_block_start", "{'type':'content_block_start','index':1,"
                                        "'content_block':{'type':'text','text':''}}")}},
        {"an event named other than its type", 2,
         {ms, AE("content_block_delta", "{'type':'content_block_start','index':0,"
                                        "'content_block':{'type':'text','text':''}}")}},
        {"a text delta into a tool's block", 3, {ms, tool, bd}},
        {"a tool's input cut short", 0, {ms, tool, partial, bstop, md, mstop}},
        {"an error event", 2,
         {ms, AE("error", "{'type':'error','error':{'type':'overloaded_error','message':'o'}}")}},
        {"no message_stop", 0, {ms, bs, bd, bstop, md}},
        {"an OpenAI chunk", 1, {CH("{'content':'a'}", "null")}},
    };
    static const struct {
        const char *why;
        int refused_at;
        const char *evs[8];
    } oa[] = {
        {"content after the finish reason", 3,
         {CH("{'content':'a'}", "null"), CH("{}", "'stop'"), CH("{'content':'b'}", "null")}},
        {"[DONE] before the finish reason", 2, {CH("{'content':'a'}", "null"), "|[DONE]"}},
        {"no [DONE]", 0, {CH("{'content':'a'}", "null"), CH("{}", "'stop'")}},
        {"no finish reason", 0, {CH("{'content':'a'}", "null")}},
        {"a second choice", 1,
         {"|{'object':'chat.completion.chunk','choices':[{'index':1,'delta':{'content':'a'}}]}"}},
        {"an error chunk", 2,
         {CH("{'content':'a'}", "null"), "|{'error':{'message':'boom','type':'server_error'}}"}},
        {"a named event", 1, {"message|{'object':'chat.completion.chunk','choices':[]}"}},
        {"a whole answer", 1,
         {"|{'object':'chat.completion','choices':[{'index':0,'message':{'content':'a'},"
          "'finish_reason':'stop'}]}"}},
        {"a call with no id", 0,
         {CH("{'tool_calls':[{'index':0,'function':{'name':'f','arguments':'{}'}}]}", "null"),
          CH("{}", "'tool_calls'"), "|[DONE]"}},
        {"a call index out of range", 1,
         {CH("{'tool_calls':[{'index':-1,'id':'c','function':{'name':'f'}}]}", "null")}},
        {"content that is not text", 1, {CH("{'content':[1]}", "null")}},
        {"an event after [DONE]", 4,
         {CH("{'content':'a'}", "null"), CH("{}", "'stop'"), "|[DONE]", "|[DONE]"}},
    };

    for (size_t k = 0; k < 2; k++) {
        size_t n = k == 0 ? NEV(an) : NEV(oa);
        for (size_t i = 0; i < n; i++) {
            const char *const *evs = k == 0 ? an[i].evs : oa[i].evs;
            int at = k == 0 ? an[i].refused_at : oa[i].refused_at;
            const char *why = k == 0 ? an[i].why : oa[i].why;
            struct replay_asm *a = replay_asm_new(k == 0 ? AN : OA);
            int got = 0;

            for (int e = 0; e < 8 && evs[e] != NULL; e++) {
                const char *bar = strchr(evs[e], '|');
                char name[64];
                cJSON *d = strcmp(bar + 1, "[DONE]") == 0 ? NULL : J(bar + 1);
                snprintf(name, sizeof(name), "%.*s", (int)(bar - evs[e]), evs[e]);
                if (replay_asm_event(a, name, d) < 0 && got == 0)
                    got = e + 1;
                cJSON_Delete(d);
            }
            ck_assert_msg(got == at, "%s: refused at %d, not %d", why, got, at);
            ck_assert_msg(replay_asm_finish(a) == NULL, "%s: an answer", why);
            replay_asm_free(a);
        }
    }
}
END_TEST

/* Whole answers replay_stream refuses. */
START_TEST(bad_wholes_refused)
{
    static const char *const oa_bad[] = {
        "{'object':'chat.completion','choices':[{'index':0,'message':{'content':'a'},"
        "'finish_reason':null}]}",
        "{'error':{'message':'x'}}",
        "{'object':'chat.completion','choices':[{'index':0,'message':{'content':'a','tool_calls':"
        "[{'id':'','type':'function','function':{'name':'f','arguments':'{}'}}]},"
        "'finish_reason':'tool_calls'}]}",
        "{'object':'chat.completion.chunk','choices':[]}",
        "[1,2]",
    };
    static const char *const an_bad[] = {
        "{'type':'message','content':[{'type':'text'}],'stop_reason':'end_turn','usage':{}}",
        "{'type':'message','content':[{'type':'tool_use','id':'t','name':'f','input':[]}],"
        "'stop_reason':'tool_use','usage':{}}",
        "{'type':'message','content':[],'stop_reason':'end_turn'}",
        "{'type':'error','error':{'type':'api_error','message':'x'}}",
        "{'type':'message','content':'hi','stop_reason':'end_turn','usage':{}}",
    };
    struct cap c = {0};

    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < 5; i++) {
            cJSON *w = J(k == 0 ? oa_bad[i] : an_bad[i]);
            ck_assert_int_eq(replay_stream(k == 0 ? OA : AN, w, 1, 8, capture, &c), -1);
            ck_assert_int_eq(c.n, 0);
            cJSON_Delete(w);
        }
    ck_assert_int_eq(replay_stream(OA, NULL, 1, 8, capture, &c), -1);
    ck_assert_ptr_null(replay_asm_new((enum conf_format)9));
}
END_TEST

/* emit's non-zero answer stops the stream at once and is returned. */
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

/* ---- the mock's streams (tokengate-mock's own output, in data/) ----------------------------- */

static const char *data_dir = "tests/unit/cache/data";

/* The file's bytes (malloc'd, NUL-terminated). */
static char *slurp(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *buf = __real_malloc(1 << 20);

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int on_sse(void *arg, const struct sse_event *ev)
{
    struct cap *c = arg;
    char name[64];

    snprintf(name, sizeof(name), "%.*s", (int)ev->name_len, ev->name);
    ck_assert_int_lt(c->n, MAX_EVENTS);
    c->name[c->n] = name[0] ? strcpy(__real_malloc(strlen(name) + 1), name) : NULL;
    c->data[c->n] = strcpy(__real_malloc(ev->data_len + 1), ev->data);
    c->n++;
    return 0;
}

/* The events of a .sse file. */
static void load_sse(const char *name, struct cap *c)
{
    struct sse_parser p;
    size_t len;
    char *buf = slurp(name, &len);

    sse_init(&p, 1 << 20);
    ck_assert_int_eq(sse_feed(&p, buf, len, on_sse, c), 0);
    sse_reset(&p);
    free(buf);
    ck_assert_int_gt(c->n, 3);
}

/* A mock stream gathered: its whole answer as the mock's non-stream answer to the same
 * request has it (but the ids), and replayed then gathered again, the same. */
static cJSON *mock_stream(enum conf_format api, const char *sse)
{
    struct cap c = {0}, again = {0};
    cJSON *w, *back;

    load_sse(sse, &c);
    w = gather(api, &c);
    ck_assert_msg(w != NULL, "%s not gathered", sse);
    ck_assert(replay_whole_ok(api, w));
    ck_assert_int_eq(replay_stream(api, w, 1, 5, capture, &again), 0);
    back = gather(api, &again);
    same(back, w);
    cJSON_Delete(back);
    cap_free(&c);
    cap_free(&again);
    return w;
}

START_TEST(mock_openai_streams)
{
    size_t len;
    char *text = slurp("openai-tools-interleaved.json", &len);
    cJSON *w = mock_stream(OA, "openai-tools-interleaved.sse"), *whole = cJSON_Parse(text);
    const cJSON *gm = GET(cJSON_GetArrayItem(GET(w, "choices"), 0), "message");
    const cJSON *wm = GET(cJSON_GetArrayItem(GET(whole, "choices"), 0), "message");
    const cJSON *gc, *wc = GET(wm, "tool_calls")->child;

    same(GET(gm, "content"), GET(wm, "content"));
    ck_assert_int_eq(cJSON_GetArraySize(GET(gm, "tool_calls")), 3);
    cJSON_ArrayForEach(gc, GET(gm, "tool_calls")) {
        same(GET(gc, "function"), GET(wc, "function"));
        ck_assert(strncmp(GET(gc, "id")->valuestring, "call_mock_", 10) == 0);
        wc = wc->next;
    }
    same(GET(cJSON_GetArrayItem(GET(w, "choices"), 0), "finish_reason"),
         GET(cJSON_GetArrayItem(GET(whole, "choices"), 0), "finish_reason"));
    same(GET(w, "usage"), GET(whole, "usage"));
    cJSON_Delete(whole);
    cJSON_Delete(w);
    free(text);
    w = mock_stream(OA, "openai-text-stop.sse");
    ck_assert_str_eq(GET(GET(cJSON_GetArrayItem(GET(w, "choices"), 0), "message"),
                         "content")->valuestring, " the of");
    cJSON_Delete(w);
}
END_TEST

START_TEST(mock_anthropic_streams)
{
    size_t len;
    char *text = slurp("anthropic-tools.json", &len);
    cJSON *w = mock_stream(AN, "anthropic-tools.sse"), *whole = cJSON_Parse(text);

    /* the ids differ (one request each): the rest is the same */
    for (cJSON *b = GET(w, "content")->child, *c = GET(whole, "content")->child; b || c;
         b = b->next, c = c->next) {
        ck_assert(b != NULL && c != NULL);
        ck_assert_int_eq(cJSON_IsString(GET(b, "id")), cJSON_IsString(GET(c, "id")));
        cJSON_DeleteItemFromObjectCaseSensitive(b, "id");
        cJSON_DeleteItemFromObjectCaseSensitive(c, "id");
        same(b, c);
    }
    same(GET(w, "stop_reason"), GET(whole, "stop_reason"));
    same(GET(w, "usage"), GET(whole, "usage"));
    cJSON_Delete(whole);
    cJSON_Delete(w);
    free(text);
    w = mock_stream(AN, "anthropic-text-stop.sse");
    ck_assert_str_eq(GET(w, "stop_reason")->valuestring, "stop_sequence");
    ck_assert_str_eq(GET(w, "stop_sequence")->valuestring, "and");
    cJSON_Delete(w);
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
    tcase_add_test(tc, openai_interleaved_calls);
    tcase_add_test(tc, anthropic_usage_merged);
    tcase_add_test(tc, bad_streams_refused);
    tcase_add_test(tc, bad_wholes_refused);
    tcase_add_test(tc, emit_stops_the_stream);
    tcase_add_test(tc, mock_openai_streams);
    tcase_add_test(tc, mock_anthropic_streams);
    tcase_add_test(tc, out_of_memory_at_each_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        data_dir = argv[1];
    return run_suite(replay_suite());
}
