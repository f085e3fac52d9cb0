/*
 * Unit tests for routing/xlate (XLATE_ANTHROPIC_TO_OPENAI) on the way back, xlate_ao2.c: OpenAI
 * chat completions answers, errors and streams into what an Anthropic Messages client reads.
 * Answers and chunks are in the shapes OpenAI sends (id, object, created, model,
 * system_fingerprint, choices[].delta, logprobs, finish_reason, usage null until the usage
 * chunk). Every translated stream is checked against the rules of an Anthropic stream
 * (message_start first; each event's text "event: NAME\ndata: JSON\n\n" with type NAME; every
 * delta inside its block, started and not yet stopped; blocks started in index order; every
 * block stopped before message_delta; message_stop last) before its content is.
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

static void same(const cJSON *got, const char *want)
{
    cJSON *w = J(want);
    char *g = cJSON_PrintUnformatted(got), *ws = cJSON_PrintUnformatted(w);

    ck_assert_msg(cJSON_Compare(got, w, 1), "\n got %s\nwant %s", g, ws);
    free(g);
    free(ws);
    cJSON_Delete(w);
}

static const struct xlate_ctx ctx = {
    .dir = AO, .client_model = "claude-haiku-4-5", .request_id = "req7", .created = 1700000000};

/* ---- whole answers -------------------------------------------------------------------- */

static cJSON *answer(const char *doc)
{
    cJSON *d = J(doc), *out = xlate_response(&ctx, d);

    ck_assert_msg(out != NULL, "no translation for %s", doc);
    cJSON_Delete(d);
    return out;
}

START_TEST(text_answer)
{
    cJSON *out = answer(
        "{'id':'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT','object':'chat.completion',"
        "'created':1741569952,'model':'gpt-4o-mini-2024-07-18','choices':[{'index':0,"
        "'message':{'role':'assistant','content':'Hello! How can I help?','refusal':null,"
        "'annotations':[]},'logprobs':null,'finish_reason':'stop'}],'usage':{'prompt_tokens':19,"
        "'completion_tokens':10,'total_tokens':29,'prompt_tokens_details':{'cached_tokens':0,"
        "'audio_tokens':0},'completion_tokens_details':{'reasoning_tokens':0}},"
        "'service_tier':'default','system_fingerprint':'fp_06737a9306'}");

    same(out, "{'id':'msg_req7','type':'message','role':'assistant','model':'claude-haiku-4-5',"
              "'content':[{'type':'text','text':'Hello! How can I help?'}],"
              "'stop_reason':'end_turn','stop_sequence':null,'usage':{'input_tokens':19,"
              "'cache_creation_input_tokens':0,'cache_read_input_tokens':0,'output_tokens':10}}");
    cJSON_Delete(out);
}
END_TEST

START_TEST(tool_calls_answer_with_cached_usage)
{
    cJSON *out = answer(
        "{'id':'chatcmpl-1','object':'chat.completion','created':1741569952,'model':'gpt-4o',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':'Let me check.',"
        "'tool_calls':[{'id':'call_a','type':'function','function':{'name':'get_weather',"
        "'arguments':'{\\'city\\': \\'Paris\\'}'}},{'id':'call_b','type':'function',"
        "'function':{'name':'get_time','arguments':'{}'}}],'refusal':null},'logprobs':null,"
        "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':2006,'completion_tokens':300,"
        "'total_tokens':2306,'prompt_tokens_details':{'cached_tokens':1920}}}");

    same(out, "{'id':'msg_req7','type':'message','role':'assistant','model':'claude-haiku-4-5',"
              "'content':[{'type':'text','text':'Let me check.'},{'type':'tool_use','id':'call_a',"
              "'name':'get_weather','input':{'city':'Paris'}},{'type':'tool_use','id':'call_b',"
              "'name':'get_time','input':{}}],'stop_reason':'tool_use','stop_sequence':null,"
              "'usage':{'input_tokens':86,'cache_creation_input_tokens':0,"
              "'cache_read_input_tokens':1920,'output_tokens':300}}");
    cJSON_Delete(out);
}
END_TEST

START_TEST(unparsable_arguments_become_text)
{
    /* cut off mid-call: the tool must not run with made-up input */
    cJSON *out = answer(
        "{'id':'chatcmpl-2','object':'chat.completion','model':'gpt-4o','choices':[{'index':0,"
        "'message':{'role':'assistant','content':null,'tool_calls':[{'id':'call_c',"
        "'type':'function','function':{'name':'search','arguments':'{\\'q\\': \\'par'}}]},"
        "'finish_reason':'length'}],'usage':{'prompt_tokens':5,'completion_tokens':8}}");

    ck_assert_str_eq(GET(cJSON_GetArrayItem(GET(out, "content"), 0), "text")->valuestring,
                     "[a call of tool 'search' whose arguments are not a JSON object: "
                     "{\"q\": \"par]");
    ck_assert_int_eq(cJSON_GetArraySize(GET(out, "content")), 1);
    same(GET(out, "stop_reason"), "'max_tokens'");
    same(GET(out, "usage"), "{'input_tokens':5,'cache_creation_input_tokens':0,"
                            "'cache_read_input_tokens':0,'output_tokens':8}");
    cJSON_Delete(out);
    out = answer("{'choices':[{'index':0,'message':{'role':'assistant','content':null,"
                 "'tool_calls':[{'id':'c','type':'function','function':{'name':'f',"
                 "'arguments':'[1,2]'}}]},'finish_reason':'tool_calls'}]}");
    /* no call is left: not tool_use */
    same(GET(out, "stop_reason"), "'end_turn'");
    ck_assert_str_eq(GET(cJSON_GetArrayItem(GET(out, "content"), 0), "type")->valuestring, "text");
    same(GET(out, "usage"), "{'input_tokens':0,'output_tokens':0}");
    cJSON_Delete(out);
}
END_TEST

START_TEST(stop_reasons)
{
    static const char *const map[][2] = {
        {"stop", "end_turn"},          {"length", "max_tokens"},      {"tool_calls", "end_turn"},
        {"content_filter", "refusal"}, {"function_call", "end_turn"},
    };
    char doc[512];

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        cJSON *out;
        snprintf(doc, sizeof(doc),
                 "{'choices':[{'index':0,'message':{'role':'assistant','content':'x'},"
                 "'finish_reason':'%s'}]}",
                 map[i][0]);
        out = answer(doc);
        /* tool_calls with no tool call in the message: nothing to call, end_turn */
        same(GET(out, "stop_reason"), strcmp(map[i][1], "end_turn") == 0     ? "'end_turn'"
                                      : strcmp(map[i][1], "max_tokens") == 0 ? "'max_tokens'"
                                                                             : "'refusal'");
        cJSON_Delete(out);
    }
    /* a refusal */
    {
        cJSON *out = answer("{'choices':[{'index':0,'message':{'role':'assistant','content':null,"
                            "'refusal':'I cannot help with that.'},'finish_reason':'stop'}]}");
        same(GET(out, "content"), "[{'type':'text','text':'I cannot help with that.'}]");
        same(GET(out, "stop_reason"), "'refusal'");
        cJSON_Delete(out);
    }
    /* a provider that says which stop string matched (vLLM) */
    {
        cJSON *out = answer("{'choices':[{'index':0,'message':{'role':'assistant','content':'a'},"
                            "'finish_reason':'stop','stop_reason':'END'}]}");
        same(GET(out, "stop_reason"), "'stop_sequence'");
        same(GET(out, "stop_sequence"), "'END'");
        cJSON_Delete(out);
    }
    /* not an answer */
    {
        cJSON *d = J("{'error':{'message':'x'}}");
        ck_assert_ptr_null(xlate_response(&ctx, d));
        cJSON_Delete(d);
    }
}
END_TEST

/* ---- errors --------------------------------------------------------------------------- */

static void error_case(int status, const char *body, int want_status, const char *want)
{
    cJSON *d = body != NULL ? J(body) : NULL;
    int cs = 0;
    cJSON *out = xlate_error(&ctx, status, d, &cs);

    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(cs, want_status);
    same(out, want);
    cJSON_Delete(out);
    cJSON_Delete(d);
}

START_TEST(errors)
{
    error_case(400,
               "{'error':{'message':'This model maximum context length is 128000 tokens.',"
               "'type':'invalid_request_error','param':'messages','code':"
               "'context_length_exceeded'}}",
               400,
               "{'type':'error','error':{'type':'invalid_request_error','message':"
               "'This model maximum context length is 128000 tokens.'}}");
    error_case(429,
               "{'error':{'message':'Rate limit reached for gpt-4o-mini on tokens per min.',"
               "'type':'tokens','param':null,'code':'rate_limit_exceeded'}}",
               429,
               "{'type':'error','error':{'type':'rate_limit_error','message':"
               "'Rate limit reached for gpt-4o-mini on tokens per min.'}}");
    error_case(503,
               "{'error':{'message':'The engine is currently overloaded, please try again later',"
               "'type':'server_error','param':null,'code':null}}",
               529,
               "{'type':'error','error':{'type':'overloaded_error','message':"
               "'The engine is currently overloaded, please try again later'}}");
    error_case(401,
               "{'error':{'message':'Incorrect API key provided.','type':"
               "'invalid_request_error','code':'invalid_api_key'}}",
               401,
               "{'type':'error','error':{'type':'authentication_error','message':"
               "'Incorrect API key provided.'}}");
    error_case(403, "{'error':{'message':'no access'}}", 403,
               "{'type':'error','error':{'type':'permission_error','message':'no access'}}");
    error_case(404, "{'error':{'message':'The model gpt-9 does not exist'}}", 404,
               "{'type':'error','error':{'type':'not_found_error','message':"
               "'The model gpt-9 does not exist'}}");
    error_case(500, NULL, 500,
               "{'type':'error','error':{'type':'api_error','message':"
               "'the provider answered with status 500'}}");
}
END_TEST

/* ---- streams --------------------------------------------------------------------------- */

#define MAXEV 4096

/* What the client got: each event parsed, after its text was checked. */
struct cap {
    int n;
    char name[MAXEV][32];
    cJSON *data[MAXEV];
    int fail_at; /* emit answers -1 for this event (1 = the first); 0: never */
};

static int capture(void *arg, const char *name, const char *text, size_t len)
{
    struct cap *c = arg;
    char head[64];
    int hl = snprintf(head, sizeof(head), "event: %s\ndata: ", name);
    cJSON *d;

    ck_assert_int_lt(c->n, MAXEV);
    ck_assert_msg(len > (size_t)hl + 2 && memcmp(text, head, (size_t)hl) == 0 &&
                      memcmp(text + len - 2, "\n\n", 2) == 0,
                  "not an SSE event named %s: %.*s", name, (int)len, text);
    ck_assert_msg(memchr(text + hl, '\n', len - (size_t)hl - 2) == NULL, "a raw newline: %.*s",
                  (int)len, text);
    d = cJSON_ParseWithLength(text + hl, len - (size_t)hl - 2);
    ck_assert_msg(d != NULL, "data is not JSON: %.*s", (int)len, text);
    ck_assert_msg(cJSON_IsString(GET(d, "type")) && strcmp(GET(d, "type")->valuestring, name) == 0,
                  "data's type is not %s: %.*s", name, (int)len, text);
    ck_assert_msg(strcmp(d->child->string, "type") == 0,
                  "type is not first, as Anthropic has it: %.*s", (int)len, text);
    snprintf(c->name[c->n], sizeof(c->name[0]), "%s", name);
    c->data[c->n++] = d;
    return c->fail_at == c->n ? -1 : 0;
}

static void cap_free(struct cap *c)
{
    for (int i = 0; i < c->n; i++)
        cJSON_Delete(c->data[i]);
    free(c);
}

static struct cap *cap_new(void)
{
    struct cap *c = calloc(1, sizeof(*c));

    ck_assert_ptr_nonnull(c);
    return c;
}

static int feed_doc(struct xlate_stream *s, struct cap *c, const cJSON *chunk)
{
    char *raw = cJSON_PrintUnformatted(chunk);
    int rc = xlate_stream_event(s, "", chunk, raw, strlen(raw), capture, c);

    free(raw);
    return rc;
}

/* Feeds a recorded stream: events "data: ...\n\n", written with ' for ". */
static void feed(struct xlate_stream *s, struct cap *c, const char *sse)
{
    const char *p = sse;

    while ((p = strstr(p, "data: ")) != NULL) {
        const char *end = strstr(p, "\n\n");
        size_t n;
        char *t;
        ck_assert_ptr_nonnull(end);
        p += 6;
        n = (size_t)(end - p);
        t = strndup(p, n);
        if (strcmp(t, "[DONE]") == 0) {
            ck_assert_int_eq(xlate_stream_event(s, "", NULL, t, n, capture, c), 0);
        } else {
            cJSON *d = J(t);
            ck_assert_int_eq(feed_doc(s, c, d), 0);
            cJSON_Delete(d);
        }
        free(t);
        p = end;
    }
}

/* The rules of an Anthropic stream; ended: it ends with message_stop (else with an error
 * event, or not yet). */
static void check_stream(const struct cap *c, int ended)
{
    int state[512] = {0}; /* per block: 0 not started, 1 open, 2 stopped */
    char type[512][16] = {{0}};
    int blocks = 0, deltas_done = 0;

    ck_assert_int_gt(c->n, 0);
    if (strcmp(c->name[0], "error") == 0) {
        ck_assert_int_eq(c->n, 1);
        return;
    }
    ck_assert_str_eq(c->name[0], "message_start");
    same(GET(c->data[0], "message"),
         "{'id':'msg_req7','type':'message','role':'assistant','model':'claude-haiku-4-5',"
         "'content':[],'stop_reason':null,'stop_sequence':null,"
         "'usage':{'input_tokens':0,'output_tokens':0}}");
    for (int i = 1; i < c->n; i++) {
        const char *n = c->name[i];
        const cJSON *d = c->data[i];
        int ix = cJSON_IsNumber(GET(d, "index")) ? GET(d, "index")->valueint : -1;
        ck_assert_msg(!deltas_done || strcmp(n, "message_stop") == 0,
                      "event %d (%s) after message_delta", i, n);
        if (strcmp(n, "content_block_start") == 0) {
            ck_assert_int_eq(ix, blocks);
            ck_assert_int_lt(ix, 512);
            state[blocks++] = 1;
            snprintf(type[ix], sizeof(type[0]), "%s",
                     GET(GET(d, "content_block"), "type")->valuestring);
        } else if (strcmp(n, "content_block_delta") == 0) {
            const char *dt = GET(GET(d, "delta"), "type")->valuestring;
            ck_assert_msg(ix >= 0 && ix < blocks && state[ix] == 1,
                          "event %d: a delta for block %d, not open", i, ix);
            ck_assert_str_eq(dt, strcmp(type[ix], "text") == 0 ? "text_delta" : "input_json_delta");
        } else if (strcmp(n, "content_block_stop") == 0) {
            ck_assert_msg(ix >= 0 && ix < blocks && state[ix] == 1,
                          "event %d: a stop for block %d, not open", i, ix);
            state[ix] = 2;
        } else if (strcmp(n, "message_delta") == 0) {
            for (int b = 0; b < blocks; b++)
                ck_assert_msg(state[b] == 2, "message_delta with block %d open", b);
            ck_assert_ptr_nonnull(GET(d, "usage"));
            ck_assert_ptr_nonnull(GET(GET(d, "delta"), "stop_reason"));
            deltas_done = 1;
        } else if (strcmp(n, "message_stop") == 0) {
            ck_assert_int_eq(i, c->n - 1);
            ck_assert(deltas_done);
        } else if (strcmp(n, "error") == 0) {
            ck_assert_int_eq(i, c->n - 1);
            ck_assert(!ended);
        } else {
            ck_abort_msg("unknown event %s", n);
        }
    }
    if (ended)
        ck_assert_str_eq(c->name[c->n - 1], "message_stop");
}

/* The text (key "text" or "partial_json") of block b's deltas, joined; *count of them. */
static char *joined(const struct cap *c, int b, int *count)
{
    size_t len = 0;
    char *out = calloc(1, 1 << 16);

    *count = 0;
    for (int i = 0; i < c->n; i++) {
        const cJSON *d = GET(c->data[i], "delta");
        const cJSON *t;
        if (strcmp(c->name[i], "content_block_delta") != 0 ||
            GET(c->data[i], "index")->valueint != b)
            continue;
        t = GET(d, "text") != NULL ? GET(d, "text") : GET(d, "partial_json");
        ck_assert(len + strlen(t->valuestring) < (1 << 16));
        memcpy(out + len, t->valuestring, strlen(t->valuestring));
        len += strlen(t->valuestring);
        (*count)++;
    }
    return out;
}

static int find(const struct cap *c, const char *name, int from)
{
    for (int i = from; i < c->n; i++)
        if (strcmp(c->name[i], name) == 0)
            return i;
    return -1;
}

#define CHUNK(delta, finish)                                                                       \
    "data: {'id':'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG','object':'chat.completion.chunk',"       \
    "'created':1741570283,'model':'gpt-4o-mini-2024-07-18','service_tier':'default',"              \
    "'system_fingerprint':'fp_06737a9306','choices':[{'index':0,'delta':" delta ","                \
    "'logprobs':null,'finish_reason':" finish "}],'usage':null}\n\n"
#define USAGE(p, cached, out)                                                                      \
    "data: {'id':'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG','object':'chat.completion.chunk',"       \
    "'created':1741570283,'model':'gpt-4o-mini-2024-07-18','choices':[],'usage':{"                 \
    "'prompt_tokens':" #p ",'completion_tokens':" #out ",'total_tokens':0,"                        \
    "'prompt_tokens_details':{'cached_tokens':" #cached ",'audio_tokens':0},"                      \
    "'completion_tokens_details':{'reasoning_tokens':0}}}\n\n"

START_TEST(stream_text)
{
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap *c = cap_new();

    feed(s, c,
         CHUNK("{'role':'assistant','content':'','refusal':null}", "null")
             CHUNK("{'content':'Hello'}", "null") CHUNK("{'content':'! How can I help?'}", "null")
                 CHUNK("{}", "'stop'"));
    /* the finish stops the block; message_delta waits for the usage */
    ck_assert_int_eq(c->n, 5);
    ck_assert_str_eq(c->name[4], "content_block_stop");
    feed(s, c, USAGE(19, 0, 10) "data: [DONE]\n\n");
    check_stream(c, 1);
    ck_assert_int_eq(c->n, 7);
    same(c->data[1], "{'type':'content_block_start','index':0,'content_block':{'type':'text',"
                     "'text':''}}");
    same(c->data[2], "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta',"
                     "'text':'Hello'}}");
    same(c->data[5], "{'type':'message_delta','delta':{'stop_reason':'end_turn',"
                     "'stop_sequence':null},'usage':{'input_tokens':19,"
                     "'cache_creation_input_tokens':0,'cache_read_input_tokens':0,"
                     "'output_tokens':10}}");
    same(c->data[6], "{'type':'message_stop'}");
    /* what comes after the end is nothing */
    ck_assert_int_eq(xlate_stream_end(s, capture, c), 0);
    ck_assert_int_eq(c->n, 7);
    xlate_stream_free(s);
    cap_free(c);
}
END_TEST

/* One chunk of a streamed tool call: index k; id and name on its first piece only. */
static cJSON *tool_chunk(int k, const char *id, const char *name, const char *args)
{
    cJSON *ch = J("{'id':'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG','object':"
                  "'chat.completion.chunk','created':1741570283,'model':'gpt-4o-mini',"
                  "'system_fingerprint':'fp_06737a9306','choices':[{'index':0,'delta':"
                  "{'tool_calls':[{}]},'logprobs':null,'finish_reason':null}],'usage':null}");
    cJSON *tc = GET(GET(cJSON_GetArrayItem(GET(ch, "choices"), 0), "delta"), "tool_calls")->child;
    cJSON *fn = cJSON_AddObjectToObject(tc, "function");

    cJSON_AddNumberToObject(tc, "index", k);
    if (id != NULL) {
        cJSON_AddStringToObject(tc, "id", id);
        cJSON_AddStringToObject(tc, "type", "function");
        cJSON_AddStringToObject(fn, "name", name);
    }
    cJSON_AddStringToObject(fn, "arguments", args);
    return ch;
}

/* Feeds args[k]'s bytes from *off on, in pieces of at most 3 bytes (never inside a UTF-8
 * character, as a model's tokens), at most max pieces. Returns the pieces fed. */
static int feed_args(struct xlate_stream *s, struct cap *c, int k, const char *args, size_t *off,
                     int max)
{
    int pieces = 0;
    size_t len = strlen(args);

    while (*off < len && pieces < max) {
        size_t n = len - *off < 3 ? len - *off : 3;
        char piece[8];
        cJSON *ch;
        while (*off + n < len && ((unsigned char)args[*off + n] & 0xc0) == 0x80)
            n++;
        memcpy(piece, args + *off, n);
        piece[n] = '\0';
        ch = tool_chunk(k, NULL, NULL, piece);
        ck_assert_int_eq(feed_doc(s, c, ch), 0);
        cJSON_Delete(ch);
        *off += n;
        pieces++;
    }
    return pieces;
}

static const char *const args3[3] = {
    "{\"city\": \"Z\xc3\xbcrich\", \"units\": \"celsius\", \"note\": \"say \\\"hi\\\"\\n twice\"}",
    "{\"city\": \"S\xc3\xa3o Paulo\", \"days\": [1, 2, 3], \"detail\": {\"wind\": true}}",
    "{\"city\": \"\xe6\x9d\xb1\xe4\xba\xac\", \"query\": \"rain {or} [snow]\", \"n\": -1.5e3}",
};
static const char *const ids3[3] = {"call_9pw1qnYScqvGrCH58HWCvFH6",
                                    "call_Yp1bXSrTyYg0Vh0sNdm5qLc0",
                                    "call_2h0Ac7uBEOGLQLyfgfpxlDiU"};

START_TEST(stream_parallel_tool_calls)
{
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap *c = cap_new();

    feed(s, c,
         CHUNK("{'role':'assistant','content':null,'refusal':null}", "null")
             CHUNK("{'content':'Checking three cities.'}", "null"));
    for (int k = 0; k < 3; k++) {
        size_t off = 0;
        cJSON *ch = tool_chunk(k, ids3[k], "get_weather", "");
        ck_assert_int_eq(feed_doc(s, c, ch), 0);
        cJSON_Delete(ch);
        ck_assert_int_ge(feed_args(s, c, k, args3[k], &off, 1000), 20);
    }
    feed(s, c, CHUNK("{}", "'tool_calls'") USAGE(1200, 1024, 95) "data: [DONE]\n\n");
    check_stream(c, 1);
    for (int k = 0; k < 3; k++) {
        int start = find(c, "content_block_start", 0), count;
        char *got;
        for (int j = 0; j <= k; j++)
            start = find(c, "content_block_start", start + 1);
        same(GET(c->data[start], "content_block"), k == 0   ? "{'type':'tool_use','id':"
                                                              "'call_9pw1qnYScqvGrCH58HWCvFH6',"
                                                              "'name':'get_weather','input':{}}"
                                                   : k == 1 ? "{'type':'tool_use','id':"
                                                              "'call_Yp1bXSrTyYg0Vh0sNdm5qLc0',"
                                                              "'name':'get_weather','input':{}}"
                                                            : "{'type':'tool_use','id':"
                                                              "'call_2h0Ac7uBEOGLQLyfgfpxlDiU',"
                                                              "'name':'get_weather','input':{}}");
        ck_assert_int_eq(GET(c->data[start], "index")->valueint, k + 1);
        /* Anthropic's order: the previous block stopped just before this one started */
        ck_assert_str_eq(c->name[start - 1], "content_block_stop");
        ck_assert_int_eq(GET(c->data[start - 1], "index")->valueint, k);
        got = joined(c, k + 1, &count);
        ck_assert_str_eq(got, args3[k]);
        ck_assert_int_ge(count, 20);
        free(got);
    }
    {
        int count;
        char *t = joined(c, 0, &count);
        ck_assert_str_eq(t, "Checking three cities.");
        free(t);
    }
    same(c->data[c->n - 2], "{'type':'message_delta','delta':{'stop_reason':'tool_use',"
                            "'stop_sequence':null},'usage':{'input_tokens':176,"
                            "'cache_creation_input_tokens':0,'cache_read_input_tokens':1024,"
                            "'output_tokens':95}}");
    xlate_stream_free(s);
    cap_free(c);
}
END_TEST

START_TEST(stream_interleaved_tool_calls)
{
    /* a provider that goes back to an earlier call after a later one started */
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap *c = cap_new();
    size_t off[3] = {0};
    cJSON *ch;

    feed(s, c, CHUNK("{'role':'assistant','content':null}", "null"));
    for (int k = 0; k < 3; k++) {
        ch = tool_chunk(k, ids3[k], "get_weather", "");
        ck_assert_int_eq(feed_doc(s, c, ch), 0);
        cJSON_Delete(ch);
        feed_args(s, c, k, args3[k], &off[k], 5);
    }
    for (int round = 0; round < 40; round++)
        for (int k = 2; k >= 0; k--)
            feed_args(s, c, k, args3[k], &off[k], 1);
    for (int k = 0; k < 3; k++)
        ck_assert_uint_eq(off[k], strlen(args3[k]));
    feed(s, c, CHUNK("{}", "'tool_calls'") USAGE(50, 0, 60) "data: [DONE]\n\n");
    check_stream(c, 1);
    for (int k = 0; k < 3; k++) {
        int count;
        char *got = joined(c, k, &count);
        ck_assert_str_eq(got, args3[k]);
        free(got);
    }
    ck_assert_str_eq(GET(GET(c->data[c->n - 2], "delta"), "stop_reason")->valuestring, "tool_use");
    xlate_stream_free(s);
    cap_free(c);
}
END_TEST

START_TEST(stream_cut_closed_by_end)
{
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap *c = cap_new();
    cJSON *ch = tool_chunk(0, ids3[0], "get_weather", "{\"city\": ");

    /* cut mid-call: no finish_reason, no usage, no [DONE] */
    feed(s, c, CHUNK("{'role':'assistant','content':'Sure.'}", "null"));
    ck_assert_int_eq(feed_doc(s, c, ch), 0);
    cJSON_Delete(ch);
    ck_assert_int_eq(xlate_stream_end(s, capture, c), 0);
    check_stream(c, 1);
    same(c->data[c->n - 2], "{'type':'message_delta','delta':{'stop_reason':null,"
                            "'stop_sequence':null},'usage':{'input_tokens':0,'output_tokens':0}}");
    xlate_stream_free(s);
    cap_free(c);

    /* finished, usage never came, no [DONE] */
    s = xlate_stream_new(&ctx);
    c = cap_new();
    feed(s, c, CHUNK("{'role':'assistant','content':'Hi'}", "null") CHUNK("{}", "'length'"));
    ck_assert_int_eq(xlate_stream_event(s, "", NULL, "[DON", 4, capture, c), 0);
    ck_assert_str_eq(c->name[c->n - 1], "content_block_stop"); /* not the end */
    ck_assert_int_eq(xlate_stream_end(s, capture, c), 0);
    check_stream(c, 1);
    ck_assert_str_eq(GET(GET(c->data[c->n - 2], "delta"), "stop_reason")->valuestring,
                     "max_tokens");
    xlate_stream_free(s);
    cap_free(c);

    /* finished, no usage chunk (a provider that ignores include_usage), then [DONE] */
    s = xlate_stream_new(&ctx);
    c = cap_new();
    feed(s, c, CHUNK("{'role':'assistant','content':'Hi'}", "null") CHUNK("{}", "'stop'"));
    ck_assert_int_eq(xlate_stream_event(s, "", NULL, "[DONE]\r\n", 8, capture, c), 0);
    check_stream(c, 1);
    same(c->data[c->n - 2], "{'type':'message_delta','delta':{'stop_reason':'end_turn',"
                            "'stop_sequence':null},'usage':{'input_tokens':0,'output_tokens':0}}");
    ck_assert_int_eq(xlate_stream_end(s, capture, c), 0);
    ck_assert_str_eq(c->name[c->n - 1], "message_stop");
    xlate_stream_free(s);
    cap_free(c);

    /* nothing at all: an error, not an empty answer */
    s = xlate_stream_new(&ctx);
    c = cap_new();
    ck_assert_int_eq(xlate_stream_end(s, capture, c), 0);
    ck_assert_int_eq(c->n, 1);
    ck_assert_str_eq(GET(GET(c->data[0], "error"), "type")->valuestring, "api_error");
    ck_assert_str_eq(GET(GET(c->data[0], "error"), "message")->valuestring,
                     "the provider's stream ended before its answer began");
    xlate_stream_free(s);
    cap_free(c);
}
END_TEST

START_TEST(stream_usage_in_finish_chunk)
{
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap *c = cap_new();

    feed(s, c,
         CHUNK("{'role':'assistant','content':'ok'}",
               "null") "data: {'choices':[{'index':0,'delta':{},'finish_reason':'stop'}],"
                       "'usage':{'prompt_tokens':7,'completion_tokens':1}}\n\n");
    check_stream(c, 1);
    feed(s, c, "data: [DONE]\n\n");
    ck_assert_int_eq(xlate_stream_end(s, capture, c), 0);
    check_stream(c, 1);
    ck_assert_int_eq(c->n, 6);
    xlate_stream_free(s);
    cap_free(c);
}
END_TEST

START_TEST(stream_error_chunk)
{
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap *c = cap_new();

    feed(s, c,
         CHUNK("{'role':'assistant','content':'Par'}",
               "null") "data: {'error':{'message':'Rate limit reached for requests',"
                       "'type':'requests','param':null,'code':'rate_limit_exceeded'}}\n\n" CHUNK(
                           "{'content':'is'}", "null"));
    check_stream(c, 0);
    ck_assert_str_eq(c->name[c->n - 1], "error");
    ck_assert_str_eq(c->name[c->n - 2], "content_block_stop");
    same(c->data[c->n - 1], "{'type':'error','error':{'type':'rate_limit_error','message':"
                            "'Rate limit reached for requests'}}");
    ck_assert_int_eq(xlate_stream_end(s, capture, c), 0);
    ck_assert_str_eq(c->name[c->n - 1], "error");
    xlate_stream_free(s);
    cap_free(c);

    s = xlate_stream_new(&ctx);
    c = cap_new();
    feed(s, c,
         "data: {'error':{'message':'The server had an error while processing your "
         "request.','type':'server_error','param':null,'code':null}}\n\n");
    check_stream(c, 0);
    same(c->data[0], "{'type':'error','error':{'type':'api_error','message':'The server had an "
                     "error while processing your request.'}}");
    xlate_stream_free(s);
    cap_free(c);
}
END_TEST

START_TEST(stream_limits)
{
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap *c = cap_new();
    cJSON *ch = tool_chunk(XLATE_MAX_TOOLS, "call_x", "f", "{}");

    feed(s, c, CHUNK("{'role':'assistant','content':null}", "null"));
    ck_assert_int_eq(feed_doc(s, c, ch), 0);
    cJSON_Delete(ch);
    check_stream(c, 0);
    ck_assert_str_eq(c->name[c->n - 1], "error");
    xlate_stream_free(s);
    cap_free(c);

    /* the client writer fails: the translation says stop */
    s = xlate_stream_new(&ctx);
    c = cap_new();
    c->fail_at = 2;
    {
        cJSON *d = J("{'choices':[{'index':0,'delta':{'content':'x'},'finish_reason':null}]}");
        ck_assert_int_eq(feed_doc(s, c, d), -1);
        cJSON_Delete(d);
    }
    xlate_stream_free(s);
    cap_free(c);
}
END_TEST

static Suite *xlate_ao2_suite(void)
{
    Suite *s = suite_create("xlate_ao2");
    TCase *tc = tcase_create("xlate_ao2");

    tcase_add_test(tc, text_answer);
    tcase_add_test(tc, tool_calls_answer_with_cached_usage);
    tcase_add_test(tc, unparsable_arguments_become_text);
    tcase_add_test(tc, stop_reasons);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, stream_text);
    tcase_add_test(tc, stream_parallel_tool_calls);
    tcase_add_test(tc, stream_interleaved_tool_calls);
    tcase_add_test(tc, stream_cut_closed_by_end);
    tcase_add_test(tc, stream_usage_in_finish_chunk);
    tcase_add_test(tc, stream_error_chunk);
    tcase_add_test(tc, stream_limits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(xlate_ao2_suite());
}
