/*
 * Unit tests for cache/replay, streams gathered into whole answers (replay.c): OpenAI calls
 * whose deltas interleave, Anthropic usage merged from message_start and message_delta,
 * thinking and tool input from their deltas, malformed and out-of-order events refused, whole
 * answers refused, and the streams tokengate-mock sends (tests/unit/cache/data, captured from
 * it with curl: each gathered as the mock's non-stream answer to the same request has it).
 *
 * JSON in this file is written with ' for " (J() swaps them back) to stay readable.
 */
#include "gate/http/sse.h"
#include "routing/xlate.h"
#include "replaytest.h"
#include "run_suite.h"

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
#define CH(delta, finish)                                                                          \
    "|{'id':'c1','object':'chat.completion.chunk','created':5,'model':'gpt-4o','choices':"         \
    "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}"

/* Calls whose deltas come round-robin, the id and name in the first of each, arguments in
 * pieces, as some providers send them. */
START_TEST(openai_interleaved_calls)
{
    static const char *const evs[] = {
        CH("{'role':'assistant','content':null}", "null"),
        CH("{'tool_calls':[{'index':0,'id':'call_0','type':'function','function':{'name':'a',"
           "'arguments':''}}]}",
           "null"),
        CH("{'tool_calls':[{'index':1,'id':'call_1','type':'function','function':{'name':'b',"
           "'arguments':'{\\'y'}}]}",
           "null"),
        CH("{'tool_calls':[{'index':0,'function':{'arguments':'{\\'x\\':'}}]}", "null"),
        CH("{'tool_calls':[{'index':2,'id':'call_2','type':'function','function':{'name':'c',"
           "'arguments':'{}'}}]}",
           "null"),
        CH("{'tool_calls':[{'index':1,'function':{'arguments':'\\':2}'}},{'index':0,"
           "'function':{'arguments':'1}'}}]}",
           "null"),
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

/* Usage in the chunk with the finish reason (as some providers send it), no role chunk,
 * null and empty members: gathered. */
START_TEST(openai_usage_with_finish)
{
    static const char *const evs[] = {
        CH("{'content':'Hi','audio':null,'tool_calls':[]}", "null"),
        "|{'id':'c1','object':'chat.completion.chunk','created':5,'model':'gpt-4o','choices':"
        "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'length'}],'usage':"
        "{'prompt_tokens':3,'completion_tokens':1,'total_tokens':4}}",
        "|[DONE]",
    };
    int rc;
    cJSON *out = gather_q(OA, evs, NEV(evs), &rc), *want;

    ck_assert_int_eq(rc, 0);
    want = J("{'id':'c1','object':'chat.completion','created':5,'model':'gpt-4o','choices':"
             "[{'index':0,'message':{'role':'assistant','content':'Hi','refusal':null},"
             "'logprobs':null,'finish_reason':'length'}],'usage':{'prompt_tokens':3,"
             "'completion_tokens':1,'total_tokens':4}}");
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
    static const char *const ms =
        AE("message_start",
           "{'type':'message_start','message':{'id':'m','type':'message','role':'assistant',"
           "'model':'c','content':[],'stop_reason':null,'stop_sequence':null,'usage':"
           "{'input_tokens':1,'output_tokens':1}}}");
    static const char *const bs =
        AE("content_block_start",
           "{'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}");
    static const char *const bd =
        AE("content_block_delta",
           "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'a'}}");
    static const char *const bstop =
        AE("content_block_stop", "{'type':'content_block_stop','index':0}");
    static const char *const md =
        AE("message_delta",
           "{'type':'message_delta','delta':{'stop_reason':'end_turn','stop_sequence':null},"
           "'usage':{'output_tokens':1}}");
    static const char *const mstop = AE("message_stop", "{'type':'message_stop'}");
    static const char *const tool =
        AE("content_block_start",
           "{'type':'content_block_start','index':0,'content_block':{'type':'tool_use','id':'t',"
           "'name':'f','input':{}}}");
    static const char *const partial =
        AE("content_block_delta",
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
        {"a block index skipped",
         2,
         {ms, AE("content_block_start", "{'type':'content_block_start','index':1,"
                                        "'content_block':{'type':'text','text':''}}")}},
        {"an event named other than its type",
         2,
         {ms, AE("content_block_delta", "{'type':'content_block_start','index':0,"
                                        "'content_block':{'type':'text','text':''}}")}},
        {"a text delta into a tool's block", 3, {ms, tool, bd}},
        {"a tool's input cut short", 0, {ms, tool, partial, bstop, md, mstop}},
        {"an error event",
         2,
         {ms, AE("error", "{'type':'error','error':{'type':'overloaded_error','message':'o'}}")}},
        {"no message_stop", 0, {ms, bs, bd, bstop, md}},
        {"an OpenAI chunk", 1, {CH("{'content':'a'}", "null")}},
        {"a citations delta (not gathered)",
         3,
         {ms, bs,
          AE("content_block_delta", "{'type':'content_block_delta','index':0,'delta':{'type':"
                                    "'citations_delta','citation':{'type':'char_location'}}}")}},
        {"a message not the assistant's",
         0,
         {AE("message_start", "{'type':'message_start','message':{'id':'m','type':'message',"
                              "'role':'user','content':[],'usage':{'input_tokens':1}}}"),
          md, mstop}},
    };
    static const struct {
        const char *why;
        int refused_at;
        const char *evs[8];
    } oa[] = {
        {"content after the finish reason",
         3,
         {CH("{'content':'a'}", "null"), CH("{}", "'stop'"), CH("{'content':'b'}", "null")}},
        {"[DONE] before the finish reason", 2, {CH("{'content':'a'}", "null"), "|[DONE]"}},
        {"no [DONE]", 0, {CH("{'content':'a'}", "null"), CH("{}", "'stop'")}},
        {"no finish reason", 0, {CH("{'content':'a'}", "null")}},
        {"a second choice",
         1,
         {"|{'object':'chat.completion.chunk','choices':[{'index':1,'delta':{'content':'a'}}]}"}},
        {"an error chunk",
         2,
         {CH("{'content':'a'}", "null"), "|{'error':{'message':'boom','type':'server_error'}}"}},
        {"a named event", 1, {"message|{'object':'chat.completion.chunk','choices':[]}"}},
        {"a whole answer",
         1,
         {"|{'object':'chat.completion','choices':[{'index':0,'message':{'content':'a'},"
          "'finish_reason':'stop'}]}"}},
        {"a call with no id",
         0,
         {CH("{'tool_calls':[{'index':0,'function':{'name':'f','arguments':'{}'}}]}", "null"),
          CH("{}", "'tool_calls'"), "|[DONE]"}},
        {"a call index out of range",
         1,
         {CH("{'tool_calls':[{'index':-1,'id':'c','function':{'name':'f'}}]}", "null")}},
        {"content that is not text", 1, {CH("{'content':[1]}", "null")}},
        {"logprobs a whole answer would lose",
         1,
         {"|{'object':'chat.completion.chunk','choices':[{'index':0,'delta':{'content':'a'},"
          "'logprobs':{'content':[{'token':'a','logprob':-0.1}]},'finish_reason':null}]}"}},
        {"a provider's own delta member",
         1,
         {CH("{'content':'','reasoning_content':'first, think'}", "null")}},
        {"an event after [DONE]",
         4,
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
    static const char *const oa_bad2[] = {
        "{'object':'chat.completion','choices':[{'index':0,'message':{'content':'a'},"
        "'logprobs':{'content':[]},'finish_reason':'stop'}]}",
        "{'object':'chat.completion','choices':[{'index':0,'message':{'content':'a',"
        "'audio':{'id':'audio_1','data':'AAAA'}},'finish_reason':'stop'}]}",
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
    for (size_t i = 0; i < 2; i++) {
        cJSON *w = J(oa_bad2[i]);
        ck_assert(!replay_whole_ok(OA, w));
        ck_assert_int_eq(replay_stream(OA, w, 1, 8, capture, &c), -1);
        cJSON_Delete(w);
    }
    ck_assert_int_eq(replay_stream(OA, NULL, 1, 8, capture, &c), -1);
    ck_assert_ptr_null(replay_asm_new((enum conf_format)9));
}
END_TEST

/* emit's non-zero answer stops the stream at once and is returned. */
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

    ck_assert(replay_whole_ok(OA, whole)); /* the mock's whole answer is one too */

    same(GET(gm, "content"), GET(wm, "content"));
    ck_assert_int_eq(cJSON_GetArraySize(GET(gm, "tool_calls")), 3);
    cJSON_ArrayForEach(gc, GET(gm, "tool_calls"))
    {
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
    ck_assert_str_eq(
        GET(GET(cJSON_GetArrayItem(GET(w, "choices"), 0), "message"), "content")->valuestring,
        " the of");
    cJSON_Delete(w);
}
END_TEST

START_TEST(mock_anthropic_streams)
{
    size_t len;
    char *text = slurp("anthropic-tools.json", &len);
    cJSON *w = mock_stream(AN, "anthropic-tools.sse"), *whole = cJSON_Parse(text);

    ck_assert(replay_whole_ok(AN, whole));

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

/* ---- streams the gate translated (routing/xlate) ------------------------------------------ */

/* xlate's emit: the client's SSE event text, parsed back into events in c. */
static int xlated(void *arg, const char *name, const char *text, size_t len)
{
    struct sse_parser p;
    int rc;

    (void)name;
    sse_init(&p, 1 << 20);
    rc = sse_feed(&p, text, len, on_sse, arg);
    sse_reset(&p);
    return rc;
}

/* A mock stream of one API translated for a client of the other, as the gate relays it: the
 * client's events gather into an answer with every call, whole. */
static cJSON *translated(enum xlate_dir dir, const char *sse)
{
    struct xlate_ctx ctx = {.dir = dir,
                            .client_model = "client-model",
                            .request_id = "r1",
                            .created = 1700000000,
                            .include_usage = 1};
    struct xlate_stream *s = xlate_stream_new(&ctx);
    struct cap up = {0}, client = {0};
    cJSON *w;

    ck_assert_ptr_nonnull(s);
    load_sse(sse, &up);
    for (int i = 0; i < up.n; i++) {
        int done = strcmp(up.data[i], "[DONE]") == 0;
        cJSON *d = done ? NULL : cJSON_Parse(up.data[i]);
        ck_assert_int_eq(xlate_stream_event(s, up.name[i] != NULL ? up.name[i] : "", d, up.data[i],
                                            strlen(up.data[i]), xlated, &client),
                         0);
        cJSON_Delete(d);
    }
    ck_assert_int_eq(xlate_stream_end(s, xlated, &client), 0);
    xlate_stream_free(s);
    w = gather(dir == XLATE_OPENAI_TO_ANTHROPIC ? OA : AN, &client);
    ck_assert_msg(w != NULL, "the translated %s is not gathered", sse);
    ck_assert(replay_whole_ok(dir == XLATE_OPENAI_TO_ANTHROPIC ? OA : AN, w));
    cap_free(&up);
    cap_free(&client);
    return w;
}

START_TEST(translated_streams)
{
    cJSON *w = translated(XLATE_OPENAI_TO_ANTHROPIC, "anthropic-tools.sse");
    const cJSON *ch = cJSON_GetArrayItem(GET(w, "choices"), 0), *calls, *c;
    int n = 0;

    ck_assert_str_eq(GET(GET(ch, "message"), "content")->valuestring, " the of and to");
    ck_assert_str_eq(GET(ch, "finish_reason")->valuestring, "tool_calls");
    calls = GET(GET(ch, "message"), "tool_calls");
    cJSON_ArrayForEach(c, calls)
    {
        cJSON *args = cJSON_Parse(GET(GET(c, "function"), "arguments")->valuestring);
        ck_assert_ptr_nonnull(args);
        ck_assert_int_eq((int)GET(args, "n")->valuedouble, n++);
        cJSON_Delete(args);
    }
    ck_assert_int_eq(n, 3);
    ck_assert_ptr_nonnull(GET(w, "usage"));
    cJSON_Delete(w);

    w = translated(XLATE_ANTHROPIC_TO_OPENAI, "openai-tools-interleaved.sse");
    ck_assert_str_eq(GET(w, "stop_reason")->valuestring, "tool_use");
    n = 0;
    cJSON_ArrayForEach(c, GET(w, "content"))
    {
        if (strcmp(GET(c, "type")->valuestring, "tool_use") == 0) {
            ck_assert_int_eq((int)GET(GET(c, "input"), "n")->valuedouble, n++);
        } else {
            ck_assert_str_eq(GET(c, "type")->valuestring, "text");
        }
    }
    ck_assert_int_eq(n, 3);
    cJSON_Delete(w);

    /* and the whole answers the gate translates are answers of the client's API */
    for (int k = 0; k < 2; k++) {
        struct xlate_ctx ctx = {.dir =
                                    k == 0 ? XLATE_OPENAI_TO_ANTHROPIC : XLATE_ANTHROPIC_TO_OPENAI,
                                .client_model = "m",
                                .request_id = "r",
                                .created = 1};
        size_t len;
        char *text = slurp(k == 0 ? "anthropic-tools.json" : "openai-tools-interleaved.json", &len);
        cJSON *up = cJSON_Parse(text), *out = xlate_response(&ctx, up);
        ck_assert_ptr_nonnull(out);
        ck_assert(replay_whole_ok(k == 0 ? OA : AN, out));
        cJSON_Delete(out);
        cJSON_Delete(up);
        free(text);
    }
}
END_TEST

static Suite *replay_asm_suite(void)
{
    Suite *s = suite_create("replay_asm");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, openai_interleaved_calls);
    tcase_add_test(tc, anthropic_usage_merged);
    tcase_add_test(tc, openai_usage_with_finish);
    tcase_add_test(tc, bad_streams_refused);
    tcase_add_test(tc, bad_wholes_refused);
    tcase_add_test(tc, mock_openai_streams);
    tcase_add_test(tc, mock_anthropic_streams);
    tcase_add_test(tc, translated_streams);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        data_dir = argv[1];
    return run_suite(replay_asm_suite());
}
