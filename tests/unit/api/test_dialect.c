/*
 * Unit tests for gate/api/dialect: each API's dialect read on answers as the providers send
 * them (whole bodies, and streams cut into events by the gate's own SSE parser): usage
 * (cached, cache-written and reasoning tokens), output text (text, refusals, thinking, tool
 * calls), the output-cap members, the stream-usage injection, keys, paths and the error
 * shape. Then a request whose client and upstream dialects differ: each side is read with its
 * own.
 *
 * The recorded JSON is written with ' for " (no apostrophe in any text), and \' for an escaped
 * quote inside a string.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/api/dialect.h"
#include "gate/api/outcap.h"
#include "gate/http/sse.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/tcount.h"
#include "run_suite.h"
#include "tokenizer/chat.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* text with ' turned into " (malloc'd) */
static char *q(const char *text)
{
    char *s = strdup(text);

    ck_assert_ptr_nonnull(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static cJSON *parse_q(const char *text)
{
    char *s = q(text);
    cJSON *j = cJSON_Parse(s);

    ck_assert_msg(j != NULL, "bad test JSON near '%.30s'", cJSON_GetErrorPtr());
    free(s);
    return j;
}

/* Output text gathered from a dialect. */
struct text {
    char buf[4096];
    size_t len;
    int pieces;
};

static void gather(void *arg, const char *s, size_t n)
{
    struct text *t = arg;

    ck_assert_uint_lt(t->len + n, sizeof(t->buf));
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
    t->pieces++;
}

/* What a whole recorded stream gives through a dialect, event by event as proxy.c reads it. */
struct stream {
    const struct api_dialect *api;
    struct usage u;
    struct text t;
    int events;   /* events with JSON data */
    int dropped;  /* events usage_event called the gate's own usage report */
    int final_at; /* the event (1-based) at which usage became final, 0 for never */
};

static int on_event(void *arg, const struct sse_event *ev)
{
    struct stream *st = arg;
    char name[64];

    if (ev->data_len == 0 || ev->data[0] != '{')
        return 0; /* [DONE], a comment */
    snprintf(name, sizeof(name), "%.*s", (int)ev->name_len, ev->name);
    cJSON *data = cJSON_ParseWithLength(ev->data, ev->data_len);
    ck_assert_ptr_nonnull(data);
    st->events++;
    st->dropped += st->api->usage_event(name, data, &st->u);
    st->api->text_event(name, data, gather, &st->t);
    if (st->u.final && st->final_at == 0)
        st->final_at = st->events;
    cJSON_Delete(data);
    return 0;
}

static void run_stream(struct stream *st, const struct api_dialect *api, const char *recorded)
{
    struct sse_parser p;
    char *s = q(recorded);

    memset(st, 0, sizeof(*st));
    st->api = api;
    sse_init(&p, 1 << 20);
    /* in two pieces, cut mid-event, as a socket hands them over */
    size_t half = strlen(s) / 2;
    ck_assert_int_eq(sse_feed(&p, s, half, on_event, st), 0);
    ck_assert_int_eq(sse_feed(&p, s + half, strlen(s) - half, on_event, st), 0);
    sse_reset(&p);
    free(s);
}

static void whole(const struct api_dialect *api, const char *recorded, struct usage *u,
                  struct text *t)
{
    cJSON *j = parse_q(recorded);

    memset(u, 0, sizeof(*u));
    memset(t, 0, sizeof(*t));
    api->usage_body(j, u);
    api->text_body(j, gather, t);
    cJSON_Delete(j);
}

static void check_usage(const struct usage *u, int64_t input, int64_t output, int64_t cached,
                        int64_t cache_write)
{
    ck_assert_int_eq(u->have, 1);
    ck_assert_int_eq(u->final, 1);
    ck_assert_ptr_null(u->bad);
    ck_assert_int_eq(u->input, input);
    ck_assert_int_eq(u->output, output);
    ck_assert_int_eq(u->cached, cached);
    ck_assert_int_eq(u->cache_write, cache_write);
}

static void check_text(const struct text *t, const char *expected_q)
{
    char *e = q(expected_q);

    ck_assert_str_eq(t->buf, e);
    free(e);
}

/* ---- recorded answers ----------------------------------------------------------------- */

/* chat: a tool call, 1024 cached prompt tokens, reasoning tokens (inside completion_tokens) */
static const char chat_body[] =
    "{'id':'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG','object':'chat.completion',"
    "'created':1741570283,'model':'o4-mini-2025-04-16','choices':[{'index':0,'message':{"
    "'role':'assistant','content':'Checking the weather.','tool_calls':[{'id':'call_abc123',"
    "'type':'function','function':{'name':'get_weather','arguments':"
    "'{\\'location\\':\\'Paris, France\\'}'}}],'refusal':null,'annotations':[]},"
    "'logprobs':null,'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':1117,"
    "'completion_tokens':246,'total_tokens':1363,'prompt_tokens_details':{'cached_tokens':1024,"
    "'audio_tokens':0},'completion_tokens_details':{'reasoning_tokens':192,'audio_tokens':0,"
    "'accepted_prediction_tokens':0,'rejected_prediction_tokens':0}},'service_tier':'default',"
    "'system_fingerprint':'fp_fc9f1d7035'}";

/* chat stream with stream_options.include_usage: text, then a tool call in pieces, the
 * finishing chunk, the usage chunk (no choices) and [DONE] */
static const char chat_stream[] =
    "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1741570283,"
    "'model':'gpt-4o-mini-2024-07-18','system_fingerprint':'fp_1','choices':[{'index':0,"
    "'delta':{'role':'assistant','content':'','refusal':null},'logprobs':null,"
    "'finish_reason':null}],'usage':null}\n\n"
    "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1741570283,"
    "'model':'gpt-4o-mini-2024-07-18','choices':[{'index':0,'delta':{'content':'Hello'},"
    "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
    "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1741570283,"
    "'model':'gpt-4o-mini-2024-07-18','choices':[{'index':0,'delta':{'tool_calls':[{"
    "'index':0,'id':'call_1','type':'function','function':{'name':'get_weather',"
    "'arguments':''}}]},'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
    "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1741570283,"
    "'model':'gpt-4o-mini-2024-07-18','choices':[{'index':0,'delta':{'tool_calls':[{"
    "'index':0,'function':{'arguments':'{\\'city\\':'}}]},'logprobs':null,"
    "'finish_reason':null}],'usage':null}\n\n"
    "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1741570283,"
    "'model':'gpt-4o-mini-2024-07-18','choices':[{'index':0,'delta':{'tool_calls':[{"
    "'index':0,'function':{'arguments':'\\'Oslo\\'}'}}]},'logprobs':null,"
    "'finish_reason':null}],'usage':null}\n\n"
    "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1741570283,"
    "'model':'gpt-4o-mini-2024-07-18','choices':[{'index':0,'delta':{},'logprobs':null,"
    "'finish_reason':'tool_calls'}],'usage':null}\n\n"
    "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1741570283,"
    "'model':'gpt-4o-mini-2024-07-18','choices':[],'usage':{'prompt_tokens':2006,"
    "'completion_tokens':300,'total_tokens':2306,'prompt_tokens_details':{"
    "'cached_tokens':1920,'audio_tokens':0},'completion_tokens_details':{"
    "'reasoning_tokens':128,'audio_tokens':0,'accepted_prediction_tokens':0,"
    "'rejected_prediction_tokens':0}}}\n\n"
    "data: [DONE]\n\n";

/* responses: reasoning, a function call and a message; cached input, reasoning output */
static const char responses_body[] =
    "{'id':'resp_67ccd2bed1ec8190b14f964abc054267','object':'response','created_at':1741476542,"
    "'status':'completed','error':null,'incomplete_details':null,'instructions':null,"
    "'max_output_tokens':null,'model':'o4-mini-2025-04-16','output':[{'id':'rs_1',"
    "'type':'reasoning','summary':[]},{'id':'fc_1','type':'function_call',"
    "'status':'completed','arguments':'{\\'location\\':\\'Boston, MA\\'}','call_id':'call_1',"
    "'name':'get_current_weather'},{'type':'message','id':'msg_1','status':'completed',"
    "'role':'assistant','content':[{'type':'output_text','text':'It is sunny in Boston.',"
    "'annotations':[]}]}],'parallel_tool_calls':true,'reasoning':{'effort':'medium',"
    "'summary':null},'store':true,'temperature':1.0,'usage':{'input_tokens':2048,"
    "'input_tokens_details':{'cached_tokens':1536},'output_tokens':300,"
    "'output_tokens_details':{'reasoning_tokens':256},'total_tokens':2348},'user':null}";

/* responses stream: deltas, a .done event that repeats the text (not to be counted twice),
 * function call argument deltas, then response.completed with the usage */
static const char responses_stream[] =
    "event: response.created\n"
    "data: {'type':'response.created','sequence_number':0,'response':{'id':'resp_1',"
    "'object':'response','created_at':1741290958,'status':'in_progress','model':'gpt-4.1',"
    "'output':[],'usage':null}}\n\n"
    "event: response.in_progress\n"
    "data: {'type':'response.in_progress','sequence_number':1,'response':{'id':'resp_1',"
    "'object':'response','status':'in_progress','output':[],'usage':null}}\n\n"
    "event: response.output_item.added\n"
    "data: {'type':'response.output_item.added','sequence_number':2,'output_index':0,"
    "'item':{'id':'msg_1','type':'message','status':'in_progress','role':'assistant',"
    "'content':[]}}\n\n"
    "event: response.output_text.delta\n"
    "data: {'type':'response.output_text.delta','sequence_number':3,'item_id':'msg_1',"
    "'output_index':0,'content_index':0,'delta':'Hi'}\n\n"
    "event: response.output_text.delta\n"
    "data: {'type':'response.output_text.delta','sequence_number':4,'item_id':'msg_1',"
    "'output_index':0,'content_index':0,'delta':' there'}\n\n"
    "event: response.output_text.done\n"
    "data: {'type':'response.output_text.done','sequence_number':5,'item_id':'msg_1',"
    "'output_index':0,'content_index':0,'text':'Hi there'}\n\n"
    "event: response.function_call_arguments.delta\n"
    "data: {'type':'response.function_call_arguments.delta','sequence_number':6,"
    "'item_id':'fc_1','output_index':1,'delta':'{\\'a\\':1}'}\n\n"
    "event: response.function_call_arguments.done\n"
    "data: {'type':'response.function_call_arguments.done','sequence_number':7,"
    "'item_id':'fc_1','output_index':1,'arguments':'{\\'a\\':1}'}\n\n"
    "event: response.completed\n"
    "data: {'type':'response.completed','sequence_number':8,'response':{'id':'resp_1',"
    "'object':'response','status':'completed','output':[{'id':'msg_1','type':'message',"
    "'content':[{'type':'output_text','text':'Hi there'}]}],'usage':{'input_tokens':37,"
    "'input_tokens_details':{'cached_tokens':0},'output_tokens':11,"
    "'output_tokens_details':{'reasoning_tokens':4},'total_tokens':48}}}\n\n";

static const char embeddings_body[] =
    "{'object':'list','data':[{'object':'embedding','index':0,'embedding':[0.0023064255,"
    "-0.009327292,-0.0028842222]}],'model':'text-embedding-3-small','usage':{"
    "'prompt_tokens':8,'total_tokens':8}}";

/* messages: thinking, text and a tool call; prompt cache read and written */
static const char messages_body[] =
    "{'id':'msg_01Aq9w938a90dw8q','type':'message','role':'assistant',"
    "'model':'claude-sonnet-4-20250514','content':[{'type':'thinking',"
    "'thinking':'The user wants the weather.','signature':'EqQBCgIYAhIM1gbcDa9GJwZA'},"
    "{'type':'text','text':'Let me check.'},{'type':'tool_use',"
    "'id':'toolu_01A09q90qw90lq917835lq9','name':'get_weather','input':{"
    "'location':'San Francisco, CA','unit':'celsius'}}],'stop_reason':'tool_use',"
    "'stop_sequence':null,'usage':{'input_tokens':472,'cache_creation_input_tokens':512,"
    "'cache_read_input_tokens':2048,'output_tokens':89,'service_tier':'standard'}}";

/* messages stream: usage in message_start (output a placeholder) and message_delta; thinking,
 * a signature (not text), a ping, text, a tool call's name and its input in pieces */
static const char messages_stream[] =
    "event: message_start\n"
    "data: {'type':'message_start','message':{'id':'msg_1','type':'message',"
    "'role':'assistant','content':[],'model':'claude-sonnet-4-20250514','stop_reason':null,"
    "'stop_sequence':null,'usage':{'input_tokens':25,'cache_creation_input_tokens':100,"
    "'cache_read_input_tokens':200,'output_tokens':1}}}\n\n"
    "event: content_block_start\n"
    "data: {'type':'content_block_start','index':0,'content_block':{'type':'thinking',"
    "'thinking':'','signature':''}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':0,'delta':{'type':'thinking_delta',"
    "'thinking':'Let me think.'}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':0,'delta':{'type':'signature_delta',"
    "'signature':'EqQBCgIYAhIM1gbcDa9GJwZA'}}\n\n"
    "event: content_block_stop\n"
    "data: {'type':'content_block_stop','index':0}\n\n"
    "event: ping\n"
    "data: {'type': 'ping'}\n\n"
    "event: content_block_start\n"
    "data: {'type':'content_block_start','index':1,'content_block':{'type':'text',"
    "'text':''}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':1,'delta':{'type':'text_delta',"
    "'text':'Hello'}}\n\n"
    "event: content_block_stop\n"
    "data: {'type':'content_block_stop','index':1}\n\n"
    "event: content_block_start\n"
    "data: {'type':'content_block_start','index':2,'content_block':{'type':'tool_use',"
    "'id':'toolu_1','name':'get_weather','input':{}}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':2,'delta':{'type':'input_json_delta',"
    "'partial_json':'{\\'location\\': '}}\n\n"
    "event: content_block_delta\n"
    "data: {'type':'content_block_delta','index':2,'delta':{'type':'input_json_delta',"
    "'partial_json':'\\'Paris\\'}'}}\n\n"
    "event: content_block_stop\n"
    "data: {'type':'content_block_stop','index':2}\n\n"
    "event: message_delta\n"
    "data: {'type':'message_delta','delta':{'stop_reason':'tool_use','stop_sequence':null},"
    "'usage':{'output_tokens':42}}\n\n"
    "event: message_stop\n"
    "data: {'type':'message_stop'}\n\n";

static const char count_body[] = "{'input_tokens':2095}";

/* ---- the table ------------------------------------------------------------------------ */

START_TEST(each_api_endpoint_has_its_dialect)
{
    const struct {
        enum endpoint ep;
        const struct api_dialect *api;
        const char *path;
        enum conf_format fmt;
        int tok;
    } want[] = {
        {EP_CHAT, &api_openai_chat, "/chat/completions", CONF_FMT_OPENAI, TOK_API_CHAT},
        {EP_RESPONSES, &api_openai_responses, "/responses", CONF_FMT_OPENAI, TOK_API_RESPONSES},
        {EP_EMBEDDINGS, &api_openai_embeddings, "/embeddings", CONF_FMT_OPENAI, TOK_API_EMBEDDINGS},
        {EP_MESSAGES, &api_anthropic_messages, "/messages", CONF_FMT_ANTHROPIC, TOK_API_MESSAGES},
        {EP_COUNT_TOKENS, &api_anthropic_count, "/messages/count_tokens", CONF_FMT_ANTHROPIC,
         TOK_API_MESSAGES},
    };

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct api_dialect *api = api_dialect_for(want[i].ep);
        ck_assert_ptr_eq(api, want[i].api);
        ck_assert_int_eq(api->ep, want[i].ep);
        ck_assert_int_eq(api->format, want[i].fmt);
        ck_assert_int_eq(api->tok_api, want[i].tok);
        ck_assert_str_eq(api->upstream_path, want[i].path);
        /* the upstream path is the client's endpoint after /v1 */
        ck_assert_str_eq(endpoint_info(want[i].ep)->path + 3, api->upstream_path);
        ck_assert_int_eq(endpoint_info(want[i].ep)->format, api->format);
        ck_assert(endpoint_info(want[i].ep)->proxied);
        /* every function is there: a consumer never checks */
        ck_assert(api->usage_body && api->usage_event && api->text_body && api->text_event &&
                  api->stream_usage && api->error_body && api->error_event && api->error_doc);
        ck_assert_ptr_nonnull(api->client_keys);
        ck_assert_ptr_nonnull(api->upstream_key);
    }
    /* the gate's own endpoints speak no provider API */
    ck_assert_ptr_null(api_dialect_for(EP_NONE));
    ck_assert_ptr_null(api_dialect_for(EP_MODELS));
    ck_assert_ptr_null(api_dialect_for(EP_HEALTHZ));
    ck_assert_ptr_null(api_dialect_for(EP_STATUS));
    ck_assert_ptr_null(api_dialect_for(EP__COUNT));
}
END_TEST

START_TEST(what_each_api_generates_and_bills)
{
    ck_assert(api_openai_chat.generates && api_openai_chat.billed);
    ck_assert(api_openai_responses.generates && api_openai_responses.billed);
    ck_assert(!api_openai_embeddings.generates && api_openai_embeddings.billed);
    ck_assert(api_anthropic_messages.generates && api_anthropic_messages.billed);
    ck_assert(!api_anthropic_count.generates && !api_anthropic_count.billed);
}
END_TEST

START_TEST(keys_and_version_headers)
{
    const struct api_dialect *all[] = {&api_openai_chat, &api_openai_responses,
                                       &api_openai_embeddings, &api_anthropic_messages,
                                       &api_anthropic_count};

    for (size_t i = 0; i < 5; i++) {
        const struct api_dialect *api = all[i];
        /* a client's key: Authorization (bearer) first, then x-api-key, on every API */
        ck_assert_str_eq(api->client_keys[0].name, "authorization");
        ck_assert_str_eq(api->client_keys[0].scheme, "Bearer ");
        ck_assert_str_eq(api->client_keys[1].name, "x-api-key");
        ck_assert_ptr_null(api->client_keys[1].scheme);
        ck_assert_ptr_null(api->client_keys[2].name);
        if (api->format == CONF_FMT_ANTHROPIC) {
            ck_assert_str_eq(api->upstream_key, "x-api-key: ");
            ck_assert_str_eq(api->version_header, "anthropic-version");
            ck_assert_str_eq(api->version_default, "2023-06-01");
        } else {
            ck_assert_str_eq(api->upstream_key, "authorization: Bearer ");
            ck_assert_ptr_null(api->version_header);
        }
    }
    /* what no request forwards when the gate holds the keys */
    ck_assert(api_is_key_header("authorization"));
    ck_assert(api_is_key_header("x-api-key"));
    ck_assert(!api_is_key_header("anthropic-version"));
    ck_assert(!api_is_key_header("content-type"));
    ck_assert(!api_is_key_header("x-api-keys"));
    /* no API (/status, /v1/models): the same headers */
    ck_assert_ptr_eq(api_client_keys(NULL), api_keys_any);
    ck_assert_ptr_eq(api_client_keys(&api_anthropic_messages), api_anthropic_messages.client_keys);
}
END_TEST

/* ---- OpenAI chat ---------------------------------------------------------------------- */

START_TEST(chat_whole_answer)
{
    struct usage u;
    struct text t;

    whole(&api_openai_chat, chat_body, &u, &t);
    /* reasoning tokens are inside completion_tokens, billed as output */
    check_usage(&u, 1117, 246, 1024, 0);
    check_text(&t, "Checking the weather.get_weather{'location':'Paris, France'}");
}
END_TEST

START_TEST(chat_streamed_answer)
{
    struct stream st;

    run_stream(&st, &api_openai_chat, chat_stream);
    ck_assert_int_eq(st.events, 7);
    check_usage(&st.u, 2006, 300, 1920, 0);
    /* only the usage chunk is the report the gate may have asked for */
    ck_assert_int_eq(st.dropped, 1);
    ck_assert_int_eq(st.final_at, 7);
    check_text(&st.t, "Helloget_weather{'city':'Oslo'}");
}
END_TEST

START_TEST(chat_stream_usage_is_asked_for)
{
    const char *bodies[][2] = {
        {"{'model':'m','stream':true}", "{'include_usage':true}"},
        {"{'model':'m','stream':true,'stream_options':null}", "{'include_usage':true}"},
        {"{'model':'m','stream':true,'stream_options':{'include_usage':false}}",
         "{'include_usage':true}"},
        {"{'model':'m','stream':true,'stream_options':{'include_obfuscation':false}}",
         "{'include_obfuscation':false,'include_usage':true}"},
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cJSON *j = parse_q(bodies[i][0]);
        struct jsonedit_op op = {0};
        char *want = q(bodies[i][1]);
        ck_assert_int_eq(api_openai_chat.stream_usage(j, &op), 1);
        ck_assert_str_eq(op.key, "stream_options");
        ck_assert_str_eq(op.value, want);
        /* the parsed body says the same as the splice */
        char *so = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "stream_options"));
        ck_assert_str_eq(so, want);
        cJSON_free(so);
        cJSON_free((void *)op.value);
        free(want);
        cJSON_Delete(j);
    }
    /* asked already: nothing to do, and the gate drops no chunk of the client's */
    cJSON *j = parse_q("{'stream':true,'stream_options':{'include_usage':true}}");
    struct jsonedit_op op = {0};
    ck_assert_int_eq(api_openai_chat.stream_usage(j, &op), 0);
    ck_assert_ptr_null(op.value);
    cJSON_Delete(j);
}
END_TEST

START_TEST(other_apis_report_stream_usage_unasked)
{
    const struct api_dialect *all[] = {&api_openai_responses, &api_openai_embeddings,
                                       &api_anthropic_messages, &api_anthropic_count};

    for (size_t i = 0; i < 4; i++) {
        cJSON *j = parse_q("{'model':'m','stream':true}");
        struct jsonedit_op op = {0};
        ck_assert_int_eq(all[i]->stream_usage(j, &op), 0);
        ck_assert_ptr_null(cJSON_GetObjectItem(j, "stream_options"));
        cJSON_Delete(j);
    }
}
END_TEST

/* ---- OpenAI responses ----------------------------------------------------------------- */

START_TEST(responses_whole_answer)
{
    struct usage u;
    struct text t;

    whole(&api_openai_responses, responses_body, &u, &t);
    check_usage(&u, 2048, 300, 1536, 0);
    check_text(&t, "{'location':'Boston, MA'}It is sunny in Boston.");
}
END_TEST

START_TEST(responses_streamed_answer)
{
    struct stream st;

    run_stream(&st, &api_openai_responses, responses_stream);
    ck_assert_int_eq(st.events, 9);
    check_usage(&st.u, 37, 11, 0, 0);
    ck_assert_int_eq(st.final_at, 9); /* only response.completed closes it */
    ck_assert_int_eq(st.dropped, 0);
    /* the .done events repeat what the deltas said: counted once */
    check_text(&st.t, "Hi there{'a':1}");
}
END_TEST

/* ---- OpenAI embeddings ---------------------------------------------------------------- */

START_TEST(embeddings_answer)
{
    struct usage u;
    struct text t;

    whole(&api_openai_embeddings, embeddings_body, &u, &t);
    check_usage(&u, 8, 0, 0, 0);
    ck_assert_int_eq(t.len, 0); /* vectors are no text */
}
END_TEST

/* ---- Anthropic messages --------------------------------------------------------------- */

START_TEST(messages_whole_answer)
{
    struct usage u;
    struct text t;

    whole(&api_anthropic_messages, messages_body, &u, &t);
    /* input_tokens leaves out the cache: the gate's input adds reads and writes back */
    check_usage(&u, 472 + 2048 + 512, 89, 2048, 512);
    check_text(&t, "The user wants the weather.Let me check.get_weather"
                   "{'location':'San Francisco, CA','unit':'celsius'}");
}
END_TEST

START_TEST(messages_streamed_answer)
{
    struct stream st;

    run_stream(&st, &api_anthropic_messages, messages_stream);
    ck_assert_int_eq(st.events, 15);
    /* message_start's output of 1 was a placeholder: message_delta's 42 is the total */
    check_usage(&st.u, 25 + 200 + 100, 42, 200, 100);
    ck_assert_int_eq(st.final_at, 14); /* message_delta */
    ck_assert_int_eq(st.dropped, 0);
    check_text(&st.t, "Let me think.Helloget_weather{'location': 'Paris'}");
}
END_TEST

START_TEST(messages_stream_cut_before_the_end)
{
    struct stream st;
    const char *end = strstr(messages_stream, "event: message_delta");
    char *cut = strndup(messages_stream, (size_t)(end - messages_stream));

    run_stream(&st, &api_anthropic_messages, cut);
    /* partial: the input is known, the output only as a placeholder, nothing final */
    ck_assert_int_eq(st.u.have, 1);
    ck_assert_int_eq(st.u.final, 0);
    ck_assert_int_eq(st.u.input, 325);
    ck_assert_int_eq(st.u.output, 1);
    free(cut);
}
END_TEST

/* ---- Anthropic count_tokens ----------------------------------------------------------- */

START_TEST(count_tokens_answer)
{
    struct usage u;
    struct text t;

    /* its input_tokens is the answer (a free count), not usage to charge */
    whole(&api_anthropic_count, count_body, &u, &t);
    ck_assert_int_eq(u.have, 0);
    ck_assert_int_eq(u.input, 0);
    ck_assert_int_eq(t.len, 0);
}
END_TEST

/* ---- output caps ---------------------------------------------------------------------- */

static void caps_of(const struct api_dialect *api, const char *body, struct outcap *oc, int rc_want,
                    char *msg)
{
    cJSON *j = parse_q(body);

    ck_assert_int_eq(outcap_read(api, j, oc, msg, 160), rc_want);
    cJSON_Delete(j);
}

START_TEST(output_cap_members)
{
    struct outcap oc;
    char msg[160] = "";

    caps_of(&api_openai_chat, "{'max_completion_tokens':500,'max_tokens':300,'n':3}", &oc, 0, msg);
    ck_assert_str_eq(oc.names[0], "max_completion_tokens");
    ck_assert_str_eq(oc.names[1], "max_tokens");
    ck_assert_int_eq(oc.value, 300);
    ck_assert_int_eq(oc.choices, 3);
    ck_assert_int_eq(oc.min, 1);

    caps_of(&api_openai_responses, "{'max_output_tokens':64,'n':3}", &oc, 0, msg);
    ck_assert_str_eq(oc.names[0], "max_output_tokens");
    ck_assert_ptr_null(oc.names[1]);
    ck_assert_int_eq(oc.value, 64);
    ck_assert_int_eq(oc.choices, 1); /* n is chat's, nothing here */
    ck_assert_int_eq(oc.min, 16);

    caps_of(&api_anthropic_messages, "{'max_tokens':1024,'max_completion_tokens':5}", &oc, 0, msg);
    ck_assert_str_eq(oc.names[0], "max_tokens");
    ck_assert_ptr_null(oc.names[1]);
    ck_assert_int_eq(oc.value, 1024); /* another API's member is not this one's cap */

    caps_of(&api_openai_embeddings, "{'max_tokens':7}", &oc, 0, msg);
    ck_assert_ptr_null(oc.names);
    ck_assert_int_eq(oc.value, -1);
    caps_of(&api_anthropic_count, "{'max_tokens':7}", &oc, 0, msg);
    ck_assert_ptr_null(oc.names);
    caps_of(NULL, "{'max_tokens':7}", &oc, 0, msg);
    ck_assert_ptr_null(oc.names);

    caps_of(&api_openai_chat, "{'n':0}", &oc, -1, msg);
    ck_assert_str_eq(msg, "'n' must be a whole number from 1 to 128");
    caps_of(&api_anthropic_messages, "{'max_tokens':'a lot'}", &oc, -1, msg);
    ck_assert_str_eq(msg, "'max_tokens' must be a whole number from 0 to 2147483647");
}
END_TEST

/* ---- error shapes --------------------------------------------------------------------- */

static const char *str_at(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    ck_assert_msg(cJSON_IsString(v), "no string '%s'", k);
    return v->valuestring;
}

START_TEST(error_shapes)
{
    const struct api_dialect *all[] = {&api_openai_chat, &api_openai_responses,
                                       &api_openai_embeddings, &api_anthropic_messages,
                                       &api_anthropic_count};
    char buf[1024], ev[1200];

    for (size_t i = 0; i < 5; i++) {
        const struct api_dialect *api = all[i];
        size_t n = api->error_body(APIERR_MODEL_NOT_FOUND, "model 'x' is not configured", buf,
                                   sizeof(buf));
        ck_assert_uint_eq(n, strlen(buf));
        cJSON *j = cJSON_Parse(buf);
        ck_assert_ptr_nonnull(j);
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        ck_assert_str_eq(str_at(e, "message"), "model 'x' is not configured");
        size_t m = api->error_event(APIERR_BAD_GATEWAY, "gone", ev, sizeof(ev));
        ck_assert_uint_eq(m, strlen(ev));
        ck_assert(m > 2 && ev[m - 1] == '\n' && ev[m - 2] == '\n');
        if (api->format == CONF_FMT_ANTHROPIC) {
            ck_assert_str_eq(str_at(j, "type"), "error");
            ck_assert_str_eq(str_at(e, "type"), "not_found_error");
            ck_assert_ptr_null(cJSON_GetObjectItem(e, "code"));
            ck_assert_int_eq(strncmp(ev, "event: error\ndata: {\"type\":\"error\"", 34), 0);
        } else {
            ck_assert_ptr_null(cJSON_GetObjectItem(j, "type"));
            ck_assert_str_eq(str_at(e, "type"), "invalid_request_error");
            ck_assert_str_eq(str_at(e, "code"), "model_not_found");
            ck_assert(cJSON_IsNull(cJSON_GetObjectItem(e, "param")));
            ck_assert_int_eq(strncmp(ev, "data: {\"error\":", 15), 0);
        }
        /* the same bytes as the family's writer, which answers requests of no API */
        char fam[1024];
        apierr_body(api->format, APIERR_MODEL_NOT_FOUND, "model 'x' is not configured", fam,
                    sizeof(fam));
        ck_assert_str_eq(buf, fam);
        cJSON_Delete(j);

        /* a document of the gate's own type, with more members (a 429 of a budget) */
        cJSON *inner = NULL;
        cJSON *doc = api->error_doc("budget_exceeded", "budget_exceeded", "no budget left", &inner);
        ck_assert_ptr_nonnull(doc);
        ck_assert_ptr_eq(inner, cJSON_GetObjectItem(doc, "error"));
        cJSON_AddStringToObject(inner, "scope", "team:ml");
        ck_assert_str_eq(str_at(inner, "type"), "budget_exceeded");
        ck_assert_str_eq(str_at(inner, "message"), "no budget left");
        ck_assert_str_eq(str_at(inner, "scope"), "team:ml");
        if (api->format == CONF_FMT_ANTHROPIC)
            ck_assert_str_eq(str_at(doc, "type"), "error");
        else
            ck_assert_str_eq(str_at(inner, "code"), "budget_exceeded");
        cJSON_Delete(doc);
    }
}
END_TEST

START_TEST(errors_of_a_request_without_api)
{
    ck_assert_ptr_eq(api_dialect_errors(&api_openai_embeddings, CONF_FMT_ANTHROPIC),
                     &api_openai_embeddings);
    ck_assert_int_eq(api_dialect_errors(NULL, CONF_FMT_ANTHROPIC)->format, CONF_FMT_ANTHROPIC);
    ck_assert_int_eq(api_dialect_errors(NULL, CONF_FMT_OPENAI)->format, CONF_FMT_OPENAI);
}
END_TEST

/* ---- client and upstream sides -------------------------------------------------------- */

/* A request as far as the count sees it: client dialect client, upstream dialect upstream,
 * the client's body text (counted for input). */
static void fake_req(struct gate_req *req, struct conf_model *m, const struct api_dialect *client,
                     const struct api_dialect *upstream, const char *body)
{
    memset(req, 0, sizeof(*req));
    memset(m, 0, sizeof(*m));
    m->encoding = "o200k_base";
    m->calibration = 1.0;
    req->client_api = client;
    req->upstream_api = upstream;
    req->ep = client->ep;
    req->json = parse_q(body);
    req->model = "gpt-4o";
}

static const char *log_output(struct gate_req *req, char *out, size_t cap)
{
    cJSON *rec = cJSON_CreateObject();

    tcount_log(req, rec);
    const cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "count"), "output");
    snprintf(out, cap, "%s", cJSON_IsNull(o) ? "null" : cJSON_IsNumber(o) ? "number" : "?");
    cJSON_Delete(rec);
    return out;
}

START_TEST(client_body_is_counted_as_the_clients_api)
{
    struct gate_req req;
    struct conf_model m;
    static const char body[] =
        "{'model':'gpt-4o','max_tokens':100,'system':'Be brief.','messages':[{'role':'user',"
        "'content':'Hello there'}]}";

    /* an Anthropic client, an OpenAI provider: the body counted is the client's */
    fake_req(&req, &m, &api_anthropic_messages, &api_openai_chat, body);
    tcount_input(&req, &m);
    ck_assert_ptr_nonnull(req.tc.enc);
    ck_assert_int_eq(req.tc.api, TOK_API_MESSAGES);
    ck_assert_int_gt(req.tc.input, 0);
    tcount_finish(&req, NULL);
    cJSON_Delete(req.json);

    /* and the other way round */
    fake_req(&req, &m, &api_openai_chat, &api_anthropic_messages,
             "{'model':'gpt-4o','messages':[{'role':'user','content':'Hello there'}]}");
    tcount_input(&req, &m);
    ck_assert_int_eq(req.tc.api, TOK_API_CHAT);
    tcount_finish(&req, NULL);
    cJSON_Delete(req.json);
}
END_TEST

START_TEST(answer_is_read_as_the_upstream_api)
{
    struct gate_req req;
    struct conf_model m;
    char out[16];
    static const char body[] = "{'model':'gpt-4o','messages':[{'role':'user','content':'Hi'}]}";

    /* an OpenAI client, an Anthropic provider: the answer's text is read as Anthropic's */
    fake_req(&req, &m, &api_openai_chat, &api_anthropic_messages, body);
    tcount_input(&req, &m);
    cJSON *ans = parse_q(messages_body);
    tcount_body(&req, ans);
    cJSON_Delete(ans);
    ck_assert_uint_gt(req.tc.pending_len, 0); /* chat's reading finds no choices here */
    ck_assert_int_eq(memcmp(req.tc.pending, "The user wants the weather.", 27), 0);

    /* a stream too: Anthropic's event names, which chat's reading ignores */
    cJSON *ev = parse_q("{'type':'content_block_delta','index':1,'delta':{'type':"
                        "'text_delta','text':' More.'}}");
    size_t before = req.tc.pending_len;
    tcount_event(&req, "content_block_delta", ev);
    cJSON_Delete(ev);
    ck_assert_uint_eq(req.tc.pending_len, before + 6);
    tcount_finish(&req, NULL);
    ck_assert_uint_gt(req.tc.output, 0);
    ck_assert_str_eq(log_output(&req, out, sizeof(out)), "number");
    cJSON_Delete(req.json);

    /* the client asked an API that generates; the provider's answers none: no output count */
    fake_req(&req, &m, &api_openai_chat, &api_openai_embeddings, body);
    tcount_input(&req, &m);
    ans = parse_q(chat_body);
    tcount_body(&req, ans);
    cJSON_Delete(ans);
    ck_assert_uint_eq(req.tc.pending_len, 0);
    tcount_finish(&req, NULL);
    ck_assert_str_eq(log_output(&req, out, sizeof(out)), "null");
    cJSON_Delete(req.json);

    /* and the reverse: the provider generates though the client's API would not */
    fake_req(&req, &m, &api_anthropic_count, &api_anthropic_messages, body);
    tcount_input(&req, &m);
    ans = parse_q(messages_body);
    tcount_body(&req, ans);
    cJSON_Delete(ans);
    tcount_finish(&req, NULL);
    ck_assert_str_eq(log_output(&req, out, sizeof(out)), "number");
    cJSON_Delete(req.json);
}
END_TEST

static Suite *dialect_suite(void)
{
    Suite *s = suite_create("dialect");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, each_api_endpoint_has_its_dialect);
    tcase_add_test(tc, what_each_api_generates_and_bills);
    tcase_add_test(tc, keys_and_version_headers);
    tcase_add_test(tc, chat_whole_answer);
    tcase_add_test(tc, chat_streamed_answer);
    tcase_add_test(tc, chat_stream_usage_is_asked_for);
    tcase_add_test(tc, other_apis_report_stream_usage_unasked);
    tcase_add_test(tc, responses_whole_answer);
    tcase_add_test(tc, responses_streamed_answer);
    tcase_add_test(tc, embeddings_answer);
    tcase_add_test(tc, messages_whole_answer);
    tcase_add_test(tc, messages_streamed_answer);
    tcase_add_test(tc, messages_stream_cut_before_the_end);
    tcase_add_test(tc, count_tokens_answer);
    tcase_add_test(tc, output_cap_members);
    tcase_add_test(tc, error_shapes);
    tcase_add_test(tc, errors_of_a_request_without_api);
    tcase_add_test(tc, client_body_is_counted_as_the_clients_api);
    tcase_add_test(tc, answer_is_read_as_the_upstream_api);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(dialect_suite());
}
