/*
 * Unit tests for cache/entry: a response-cache entry made from what the client got (a whole
 * answer, or a stream's raw events) and read back; what is not a complete answer makes none.
 * Every allocation (malloc, calloc, realloc: the test is linked with --wrap; cJSON's through
 * its hooks) fails in turn, and finish gives NULL or the same value.
 *
 * JSON in this file is written with ' for " (J() swaps them back) to stay readable.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/entry.h"
#include "cache/replay.h"
#include "failalloc.h"
#include "run_suite.h"

#define GET cJSON_GetObjectItemCaseSensitive
#define OA CONF_FMT_OPENAI
#define AN CONF_FMT_ANTHROPIC

static cJSON *J(const char *s)
{
    char *t = __real_malloc(strlen(s) + 1);
    cJSON *j;

    strcpy(t, s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = cJSON_Parse(t);
    ck_assert_msg(j != NULL, "test JSON does not parse: %s", t);
    free(t);
    return j;
}

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

/* ---- streams ------------------------------------------------------------------------------ */

/* One event: its name ("" for none) and data (' for "). */
struct ev {
    const char *name;
    const char *data;
};

static const struct ev oa_stream[] = {
    {"", "{'id':'chatcmpl-9','object':'chat.completion.chunk','created':1741569952,'model':"
         "'gpt-4o-mini','system_fingerprint':'fp_1','choices':[{'index':0,'delta':{'role':"
         "'assistant','content':'','refusal':null},'logprobs':null,'finish_reason':null}],"
         "'usage':null}"},
    {"", "{'id':'chatcmpl-9','object':'chat.completion.chunk','created':1741569952,'model':"
         "'gpt-4o-mini','choices':[{'index':0,'delta':{'content':'Hel'},'logprobs':null,"
         "'finish_reason':null}],'usage':null}"},
    {"", "{'id':'chatcmpl-9','object':'chat.completion.chunk','created':1741569952,'model':"
         "'gpt-4o-mini','choices':[{'index':0,'delta':{'content':'lo'},'logprobs':null,"
         "'finish_reason':null}],'usage':null}"},
    {"", "{'id':'chatcmpl-9','object':'chat.completion.chunk','created':1741569952,'model':"
         "'gpt-4o-mini','choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':"
         "'stop'}],'usage':null}"},
    {"", "{'id':'chatcmpl-9','object':'chat.completion.chunk','created':1741569952,'model':"
         "'gpt-4o-mini','choices':[],'usage':{'prompt_tokens':9,'completion_tokens':2,"
         "'total_tokens':11}}"},
    {"", NULL}, /* [DONE] */
};

static const struct ev an_stream[] = {
    {"message_start", "{'type':'message_start','message':{'id':'msg_1','type':'message','role':"
                      "'assistant','model':'claude-haiku-4-5','content':[],'stop_reason':null,"
                      "'stop_sequence':null,'usage':{'input_tokens':25,"
                      "'cache_creation_input_tokens':0,'cache_read_input_tokens':0,"
                      "'output_tokens':1}}}"},
    {"content_block_start",
     "{'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}"},
    {"ping", "{'type':'ping'}"},
    {"content_block_delta",
     "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'Hi'}}"},
    {"content_block_stop", "{'type':'content_block_stop','index':0}"},
    {"message_delta", "{'type':'message_delta','delta':{'stop_reason':'end_turn',"
                      "'stop_sequence':null},'usage':{'output_tokens':15}}"},
    {"message_stop", "{'type':'message_stop'}"},
};

/* The raw SSE text of an event. */
static char *raw_of(const struct ev *e, size_t *len)
{
    char *d = e->data != NULL ? Q(e->data) : NULL, *r = __real_malloc(4096);

    if (e->name[0] != '\0')
        *len = (size_t)snprintf(r, 4096, "event: %s\ndata: %s\n\n", e->name, d);
    else
        *len = (size_t)snprintf(r, 4096, "data: %s\n\n", d != NULL ? d : "[DONE]");
    free(d);
    return r;
}

/* Feeds n events of evs to f. Returns the first failure (-1), or 0. */
static int feed(struct entry_fill *f, const struct ev *evs, size_t n, char *raws, size_t *rlen)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len;
        char *raw = raw_of(&evs[i], &len);
        cJSON *d = evs[i].data != NULL ? J(evs[i].data) : NULL;
        rc = entry_fill_event(f, raw, len, evs[i].name, d);
        if (raws != NULL) {
            memcpy(raws + *rlen, raw, len);
            *rlen += len;
        }
        cJSON_Delete(d);
        free(raw);
    }
    return rc;
}

static const struct entry_meta meta = {.model = "gpt-4o-mini-2024-07-18",
                                       .input = 9,
                                       .output = 2,
                                       .cached = 4,
                                       .cache_write = 1,
                                       .tokens = 11,
                                       .nusd = 12345,
                                       .created = 1741569952.5};

START_TEST(stream_entry_openai)
{
    struct entry_fill *f = entry_fill_new(OA, 1, 1 << 20);
    char raws[16384];
    size_t rlen = 0, len;
    struct entry_view v;
    char *val;
    cJSON *whole, *want;

    ck_assert_int_eq(feed(f, oa_stream, 6, raws, &rlen), 0);
    ck_assert_int_eq(entry_fill_body(f, "", 0, NULL), 0);
    val = entry_fill_finish(f, &meta, &len);
    ck_assert_ptr_nonnull(val);
    ck_assert_int_eq(entry_parse(val, len, &v), 0);
    ck_assert_int_eq(v.api, OA);
    ck_assert_int_eq(v.from_stream, 1);
    ck_assert_uint_eq(v.events_len, rlen);
    ck_assert(memcmp(v.events, raws, rlen) == 0);
    ck_assert_str_eq(v.meta.model, "gpt-4o-mini-2024-07-18");
    ck_assert(v.meta.input == 9 && v.meta.output == 2 && v.meta.cached == 4 &&
              v.meta.cache_write == 1 && v.meta.tokens == 11 && v.meta.nusd == 12345);
    ck_assert(v.meta.created == 1741569952.5);
    ck_assert_uint_eq(strlen(v.whole), v.whole_len);
    whole = cJSON_ParseWithLength(v.whole, v.whole_len);
    want = J("{'id':'chatcmpl-9','object':'chat.completion','created':1741569952,'model':"
             "'gpt-4o-mini','choices':[{'index':0,'message':{'role':'assistant','content':"
             "'Hello','refusal':null},'logprobs':null,'finish_reason':'stop'}],'usage':"
             "{'prompt_tokens':9,'completion_tokens':2,'total_tokens':11},"
             "'system_fingerprint':'fp_1'}");
    ck_assert_msg(cJSON_Compare(whole, want, 1), "whole: %s", v.whole);
    cJSON_Delete(whole);
    cJSON_Delete(want);
    free(val);
    entry_fill_free(f);
}
END_TEST

START_TEST(stream_entry_anthropic)
{
    struct entry_fill *f = entry_fill_new(AN, 1, 1 << 20);
    size_t len;
    struct entry_view v;
    char *val;
    cJSON *whole, *want;

    ck_assert_int_eq(feed(f, an_stream, 7, NULL, NULL), 0);
    val = entry_fill_finish(f, NULL, &len);
    ck_assert_ptr_nonnull(val);
    ck_assert_int_eq(entry_parse(val, len, &v), 0);
    ck_assert_int_eq(v.api, AN);
    ck_assert_int_eq(v.from_stream, 1);
    ck_assert_str_eq(v.meta.model, "");
    ck_assert(strncmp(v.events, "event: message_start\ndata: {", 28) == 0);
    whole = cJSON_ParseWithLength(v.whole, v.whole_len);
    want = J("{'id':'msg_1','type':'message','role':'assistant','model':'claude-haiku-4-5',"
             "'content':[{'type':'text','text':'Hi'}],'stop_reason':'end_turn',"
             "'stop_sequence':null,'usage':{'input_tokens':25,'cache_creation_input_tokens':0,"
             "'cache_read_input_tokens':0,'output_tokens':15}}");
    ck_assert_msg(cJSON_Compare(whole, want, 1), "whole: %s", v.whole);
    cJSON_Delete(whole);
    cJSON_Delete(want);
    free(val);
    entry_fill_free(f);
}
END_TEST

/* A stream that did not end as a complete answer makes no entry. */
START_TEST(incomplete_streams_make_none)
{
    size_t len;

    /* OpenAI: no finish_reason; a finish_reason but no [DONE] */
    for (size_t n = 0; n < 6; n++) {
        struct entry_fill *f = entry_fill_new(OA, 1, 1 << 20);
        ck_assert_int_eq(feed(f, oa_stream, n, NULL, NULL), 0);
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        ck_assert_uint_eq(len, 0);
        entry_fill_free(f);
    }
    /* Anthropic: every prefix short of message_stop */
    for (size_t n = 0; n < 7; n++) {
        struct entry_fill *f = entry_fill_new(AN, 1, 1 << 20);
        ck_assert_int_eq(feed(f, an_stream, n, NULL, NULL), 0);
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        entry_fill_free(f);
    }
    /* an error event in the middle: refused at once */
    {
        static const struct ev err[] = {
            {"error", "{'type':'error','error':{'type':'overloaded_error','message':'x'}}"}};
        struct entry_fill *f = entry_fill_new(AN, 1, 1 << 20);
        ck_assert_int_eq(feed(f, an_stream, 3, NULL, NULL), 0);
        ck_assert_int_eq(feed(f, err, 1, NULL, NULL), -1);
        /* failed for good: the rest is refused too, and no entry */
        ck_assert_int_eq(feed(f, an_stream + 3, 4, NULL, NULL), -1);
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        entry_fill_free(f);
    }
    /* a stream of the other API */
    {
        struct entry_fill *f = entry_fill_new(OA, 1, 1 << 20);
        ck_assert_int_eq(feed(f, an_stream, 1, NULL, NULL), -1);
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        entry_fill_free(f);
        f = entry_fill_new(AN, 1, 1 << 20);
        ck_assert_int_eq(feed(f, oa_stream, 1, NULL, NULL), -1);
        entry_fill_free(f);
    }
    /* a stream followed by something that is not an event */
    {
        struct entry_fill *f = entry_fill_new(AN, 1, 1 << 20);
        ck_assert_int_eq(feed(f, an_stream, 7, NULL, NULL), 0);
        ck_assert_int_eq(entry_fill_body(f, "\n", 1, NULL), 0);
        ck_assert_int_eq(entry_fill_body(f, "garbage", 7, NULL), -1);
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        entry_fill_free(f);
    }
}
END_TEST

START_TEST(max_bytes_bounds_the_value)
{
    size_t full = 0, len;
    char *val;
    struct entry_fill *f = entry_fill_new(AN, 1, 1 << 20);

    feed(f, an_stream, 7, NULL, NULL);
    val = entry_fill_finish(f, &meta, &full);
    ck_assert_ptr_nonnull(val);
    free(val);
    entry_fill_free(f);
    /* exactly the value's size fits; a byte less does not */
    f = entry_fill_new(AN, 1, full);
    ck_assert_int_eq(feed(f, an_stream, 7, NULL, NULL), 0);
    val = entry_fill_finish(f, &meta, &len);
    ck_assert_ptr_nonnull(val);
    ck_assert_uint_eq(len, full);
    free(val);
    entry_fill_free(f);
    f = entry_fill_new(AN, 1, full - 1);
    feed(f, an_stream, 7, NULL, NULL);
    ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
    entry_fill_free(f);
    /* events past the cap fail as they come */
    f = entry_fill_new(AN, 1, 300);
    ck_assert_int_eq(feed(f, an_stream, 7, NULL, NULL), -1);
    ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
    entry_fill_free(f);
}
END_TEST

/* ---- whole answers ------------------------------------------------------------------------ */

/* The entry of a whole answer body_q (' for "), or NULL; *rc: entry_fill_body's answer. */
static char *whole_entry(enum conf_format api, const char *body_q, size_t max, int *rc,
                         size_t *len)
{
    char *body = Q(body_q), *val;
    cJSON *doc = cJSON_Parse(body);
    struct entry_fill *f = entry_fill_new(api, 0, max);

    *rc = entry_fill_body(f, body, strlen(body), doc);
    val = entry_fill_finish(f, &meta, len);
    cJSON_Delete(doc);
    free(body);
    entry_fill_free(f);
    return val;
}

static const char *const oa_whole =
    "{'id':'chatcmpl-1','object':'chat.completion','created':1741569952,'model':'gpt-4o',"
    "'choices':[{'index':0,'message':{'role':'assistant','content':null,'tool_calls':[{'id':"
    "'call_a','type':'function','function':{'name':'get_weather','arguments':'{}'}}],"
    "'refusal':null},'logprobs':null,'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':"
    "20,'completion_tokens':3,'total_tokens':23}}";

static const char *const an_whole =
    "{'id':'msg_2','type':'message','role':'assistant','model':'claude-sonnet-4-5','content':"
    "[{'type':'text','text':'Sure.'},{'type':'tool_use','id':'toolu_1','name':'f','input':"
    "{'a':1}}],'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':5,"
    "'output_tokens':7}}";

START_TEST(whole_entry_keeps_the_body)
{
    for (int k = 0; k < 2; k++) {
        const char *w = k == 0 ? oa_whole : an_whole;
        int rc;
        size_t len;
        char *val = whole_entry(k == 0 ? OA : AN, w, 1 << 20, &rc, &len), *body = Q(w);
        struct entry_view v;

        ck_assert_int_eq(rc, 0);
        ck_assert_ptr_nonnull(val);
        ck_assert_int_eq(entry_parse(val, len, &v), 0);
        ck_assert_int_eq(v.api, k == 0 ? OA : AN);
        ck_assert_int_eq(v.from_stream, 0);
        ck_assert_ptr_null(v.events);
        ck_assert_uint_eq(v.events_len, 0);
        /* the bytes the client got, as they were */
        ck_assert_uint_eq(v.whole_len, strlen(body));
        ck_assert_str_eq(v.whole, body);
        ck_assert(v.meta.nusd == 12345);
        free(val);
        free(body);
    }
}
END_TEST

/* What is not a complete 2xx answer of the API makes no entry. */
START_TEST(not_answers_make_none)
{
    static const struct {
        enum conf_format api;
        const char *body;
    } cases[] = {
        {OA, "{'error':{'message':'rate limited','type':'rate_limit_error'}}"},
        {AN, "{'type':'error','error':{'type':'overloaded_error','message':'x'}}"},
        {OA, "{'id':'x','object':'chat.completion','choices':[{'index':0,'message':{'role':"
             "'assistant','content':'a'},'finish_reason':null}]}"},
        {OA, "{'object':'chat.completion','choices':[]}"},
        {OA, "{'object':'chat.completion','choices':[{'index':0,'message':{'content':'a'},"
             "'finish_reason':'stop'},{'index':1,'message':{'content':'b'},'finish_reason':"
             "'stop'}]}"},
        {OA, "{'object':'chat.completion','choices':[{'index':0,'message':{'content':null,"
             "'tool_calls':[{'id':'c','type':'function','function':{'name':'f','arguments':"
             "{}}}]},'finish_reason':'tool_calls'}]}"},
        {AN, "{'type':'message','role':'assistant','content':[{'type':'text','text':'a'}],"
             "'stop_reason':null,'usage':{'input_tokens':1,'output_tokens':1}}"},
        {AN, "{'type':'message','content':[{'type':'tool_use','id':'t','name':'f','input':"
             "'{'}],'stop_reason':'tool_use','usage':{}}"},
        {AN, "{'type':'message','content':[],'stop_reason':'end_turn'}"},
        {OA, an_whole},
        {AN, oa_whole},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        size_t len;
        char *val = whole_entry(cases[i].api, cases[i].body, 1 << 20, &rc, &len);
        ck_assert_msg(val == NULL && rc == -1, "case %zu made an entry", i);
    }
    /* not JSON at all, and a body twice */
    {
        struct entry_fill *f = entry_fill_new(OA, 0, 1 << 20);
        size_t len;
        ck_assert_int_eq(entry_fill_body(f, "<html>", 6, NULL), -1);
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        entry_fill_free(f);
        f = entry_fill_new(AN, 0, 1 << 20);
        char *b = Q(an_whole);
        cJSON *d = cJSON_Parse(b);
        ck_assert_int_eq(entry_fill_body(f, b, strlen(b), d), 0);
        ck_assert_int_eq(entry_fill_body(f, b, strlen(b), d), -1);
        /* an event in a whole answer's gatherer */
        ck_assert_int_eq(entry_fill_event(f, "data: {}\n\n", 10, "", d), -1);
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        cJSON_Delete(d);
        free(b);
        entry_fill_free(f);
    }
    /* nothing at all */
    {
        struct entry_fill *f = entry_fill_new(OA, 0, 1 << 20);
        size_t len;
        ck_assert_ptr_null(entry_fill_finish(f, &meta, &len));
        entry_fill_free(f);
    }
    /* too large */
    {
        int rc;
        size_t len;
        ck_assert_ptr_null(whole_entry(AN, an_whole, 200, &rc, &len));
        ck_assert_int_eq(rc, -1);
    }
}
END_TEST

/* entry_parse refuses what entry_fill_finish did not make: every truncation, a flipped magic,
 * lengths that do not add up. */
START_TEST(parse_refuses_other_bytes)
{
    struct entry_fill *f = entry_fill_new(OA, 1, 1 << 20);
    struct entry_view v;
    size_t len;
    char *val;

    feed(f, oa_stream, 6, NULL, NULL);
    val = entry_fill_finish(f, &meta, &len);
    entry_fill_free(f);
    ck_assert_ptr_nonnull(val);
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq(entry_parse(val, n, &v), -1);
    ck_assert_int_eq(entry_parse(NULL, len, &v), -1);
    val[0] = 'X';
    ck_assert_int_eq(entry_parse(val, len, &v), -1);
    val[0] = 'T';
    val[4] = 7; /* no such API */
    ck_assert_int_eq(entry_parse(val, len, &v), -1);
    val[4] = OA;
    val[len - 1] = 'x'; /* the events' NUL */
    ck_assert_int_eq(entry_parse(val, len, &v), -1);
    val[len - 1] = '\0';
    ck_assert_int_eq(entry_parse(val, len, &v), 0);
    {
        /* a longer buffer than the value: the lengths no longer add up */
        char *big = __real_malloc(len + 1);
        memcpy(big, val, len);
        big[len] = '\0';
        ck_assert_int_eq(entry_parse(big, len + 1, &v), -1);
        free(big);
    }
    free(val);
}
END_TEST

/* ---- memory running out --------------------------------------------------------------------- */

/* Each allocation failing in turn, in a stream's gathering and a whole answer's: the fill
 * fails (or finish gives NULL), never a crash or a leak (under ASan), and when it succeeds the
 * value is the one made with memory to spare. */
START_TEST(out_of_memory_at_each_step)
{
    size_t want_len[3];
    char *want[3];
    int done = 0;

    for (int k = 0; k < 3; k++) {
        struct entry_fill *f = entry_fill_new(k == 1 ? AN : OA, k < 2, 1 << 20);
        if (k == 0)
            feed(f, oa_stream, 6, NULL, NULL);
        else if (k == 1)
            feed(f, an_stream, 7, NULL, NULL);
        else {
            char *b = Q(oa_whole);
            cJSON *d = cJSON_Parse(b);
            entry_fill_body(f, b, strlen(b), d);
            cJSON_Delete(d);
            free(b);
        }
        want[k] = entry_fill_finish(f, &meta, &want_len[k]);
        ck_assert_ptr_nonnull(want[k]);
        entry_fill_free(f);
    }
    for (long n = 0; done != 7; n++) {
        ck_assert_int_lt(n, 100000);
        for (int k = 0; k < 3; k++) {
            struct entry_fill *f;
            size_t len;
            char *val;
            /* the events' documents are the caller's: parsed before memory runs out */
            cJSON *docs[7];
            char *raws[7], *b = Q(oa_whole);
            size_t rl[7];
            const struct ev *evs = k == 1 ? an_stream : oa_stream;
            size_t nev = k == 0 ? 6 : k == 1 ? 7 : 0;
            cJSON *d = cJSON_Parse(b);
            int rc = 0;

            for (size_t i = 0; i < nev; i++) {
                docs[i] = evs[i].data != NULL ? J(evs[i].data) : NULL;
                raws[i] = raw_of(&evs[i], &rl[i]);
            }
            failalloc_at(n);
            f = entry_fill_new(k == 1 ? AN : OA, k < 2, 1 << 20);
            for (size_t i = 0; i < nev && f != NULL && rc == 0; i++)
                rc = entry_fill_event(f, raws[i], rl[i], evs[i].name, docs[i]);
            if (k == 2 && f != NULL)
                rc = entry_fill_body(f, b, strlen(b), d);
            val = f != NULL ? entry_fill_finish(f, &meta, &len) : NULL;
            entry_fill_free(f);
            failalloc_off();
            if (n == 0)
                ck_assert_ptr_null(val); /* the wrapping is in place */
            if (val != NULL) {
                ck_assert_int_eq(rc, 0);
                ck_assert_uint_eq(len, want_len[k]);
                ck_assert(memcmp(val, want[k], len) == 0);
                done |= 1 << k;
                free(val);
            }
            for (size_t i = 0; i < nev; i++) {
                cJSON_Delete(docs[i]);
                free(raws[i]);
            }
            cJSON_Delete(d);
            free(b);
        }
    }
    for (int k = 0; k < 3; k++)
        free(want[k]);
}
END_TEST

static Suite *entry_suite(void)
{
    Suite *s = suite_create("entry");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stream_entry_openai);
    tcase_add_test(tc, stream_entry_anthropic);
    tcase_add_test(tc, incomplete_streams_make_none);
    tcase_add_test(tc, max_bytes_bounds_the_value);
    tcase_add_test(tc, whole_entry_keeps_the_body);
    tcase_add_test(tc, not_answers_make_none);
    tcase_add_test(tc, parse_refuses_other_bytes);
    tcase_add_test(tc, out_of_memory_at_each_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(entry_suite());
}
