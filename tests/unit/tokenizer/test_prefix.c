/*
 * Unit tests for tok_count_request_ex (tokenizer/chat.c): the parts of a request (tools, system,
 * each message) and the prefix memo. With a memo, a conversation counted turn by turn must give
 * the plain count at every turn, to the token, for both encodings and both APIs, with images,
 * tool calls, names and tool results; and only the new messages may be counted.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "run_suite.h"
#include "tokenizer/chat.h"
#include "tokenizer/tok.h"

/* A memo for the tests: a fixed table, first in first out, with counts of its calls. */
#define TMEMO_CAP 4096
struct tmemo {
    uint8_t key[TMEMO_CAP][16];
    tok_prefix_val val[TMEMO_CAP];
    int n, next, cap;
    int gets, hits, puts;
    int forget_all_but_last; /* keeps only the last put: the boundaries in between are lost */
    int blind;               /* counts the calls, keeps nothing */
};

static int tmemo_get(void *arg, const uint8_t key[16], tok_prefix_val *out)
{
    struct tmemo *t = arg;

    t->gets++;
    if (t->blind)
        return 0;
    for (int i = 0; i < t->n; i++)
        if (memcmp(t->key[i], key, 16) == 0) {
            *out = t->val[i];
            t->hits++;
            return 1;
        }
    return 0;
}

static void tmemo_put(void *arg, const uint8_t key[16], const tok_prefix_val *v)
{
    struct tmemo *t = arg;
    int i;

    t->puts++;
    if (t->blind)
        return;
    if (t->forget_all_but_last)
        t->n = t->next = 0;
    for (i = 0; i < t->n; i++)
        if (memcmp(t->key[i], key, 16) == 0)
            break;
    if (i == t->n) {
        i = t->next;
        t->next = (t->next + 1) % TMEMO_CAP;
        if (t->n < TMEMO_CAP)
            t->n++;
    }
    memcpy(t->key[i], key, 16);
    t->val[i] = *v;
}

static struct tmemo *tmemo_new(tok_prefix_memo *m)
{
    struct tmemo *t = calloc(1, sizeof(*t));

    ck_assert_ptr_nonnull(t);
    m->get = tmemo_get;
    m->put = tmemo_put;
    m->arg = t;
    return t;
}

static const tok_enc *enc(const char *name)
{
    const tok_enc *e = tok_encoding(name);
    ck_assert_msg(e != NULL, "encoding %s", name);
    return e;
}

static uint64_t plain(const tok_enc *e, tok_api api, const char *json, const char *model,
                      double factor)
{
    cJSON *body = cJSON_Parse(json);
    tok_count_result r;

    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(tok_count_request(e, api, body, model, factor, &r), 0);
    cJSON_Delete(body);
    return r.tokens;
}

static uint64_t up(uint64_t n, double f)
{
    return f != 1.0 ? (uint64_t)ceil((double)n * f) : n;
}

#define CHAT_MSG0 "{\"role\":\"system\",\"content\":\"You answer in short sentences.\"}"
#define CHAT_MSG1                                                                                  \
    "{\"role\":\"user\",\"name\":\"ada\",\"content\":\"What is the weather in Paris?\"}"
#define CHAT_MSG2                                                                                  \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"            \
    "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"           \
    "\\\"Paris\\\"}\"}}]}"
#define CHAT_MSG3 "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"18 C, light rain\"}"
#define CHAT_TOOLS                                                                                 \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"The "        \
    "weather of a city.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":" \
    "\"string\",\"description\":\"The city\"}}}}}]"

START_TEST(parts_chat)
{
    const char *msgs[] = {CHAT_MSG0, CHAT_MSG1, CHAT_MSG2, CHAT_MSG3};
    const tok_enc *e = enc("o200k_base");
    cJSON *body =
        cJSON_Parse("{\"model\":\"gpt-4o\",\"tools\":" CHAT_TOOLS ",\"messages\":[" CHAT_MSG0
                    "," CHAT_MSG1 "," CHAT_MSG2 "," CHAT_MSG3 "]}");
    uint64_t arr[8], sum = 0;
    tok_count_parts parts = {.messages = arr, .cap = 8};
    tok_count_opts opts = {.parts = &parts};
    tok_count_result r, r0;
    char one[1024];

    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &opts, &r), 0);
    ck_assert_int_eq(tok_count_request(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &r0), 0);
    ck_assert_uint_eq(r.tokens, r0.tokens);
    ck_assert_uint_eq(parts.nmessages, 4);
    ck_assert_uint_eq(parts.system, 0); /* system prompts are messages */
    for (int i = 0; i < 4; i++) {
        /* a message alone is its part plus the 3 tokens priming the reply */
        snprintf(one, sizeof(one), "{\"messages\":[%s]}", msgs[i]);
        ck_assert_uint_eq(parts.messages[i] + 3, plain(e, TOK_API_CHAT, one, "gpt-4o", 1.0));
        sum += parts.messages[i];
    }
    ck_assert_uint_gt(parts.messages[1], 3 + 1); /* its name's extra token is in it */
    ck_assert_uint_eq(parts.tools, r.tokens - plain(e, TOK_API_CHAT,
                                                    "{\"messages\":[" CHAT_MSG0 "," CHAT_MSG1
                                                    "," CHAT_MSG2 "," CHAT_MSG3 "]}",
                                                    "gpt-4o", 1.0));
    ck_assert_uint_gt(parts.tools, 0);
    /* OpenAI chat: the parts and the reply's priming make the total exactly */
    ck_assert_uint_eq(sum + parts.tools + 3, r.tokens);
    cJSON_Delete(body);
}
END_TEST

#define ANT_SYSTEM "[{\"type\":\"text\",\"text\":\"You are a careful travel assistant.\"}]"
#define ANT_MSG0 "{\"role\":\"user\",\"content\":\"Book me a train from Lyon to Paris.\"}"
#define ANT_MSG1                                                                                   \
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Searching.\"},{\"type\":"  \
    "\"tool_use\",\"id\":\"t1\",\"name\":\"find_trains\",\"input\":{\"from\":\"Lyon\",\"to\":"     \
    "\"Paris\"}}]}"
#define ANT_MSG2                                                                                   \
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","            \
    "\"content\":\"TGV 6604 at 10:04\"}]}"
#define ANT_TOOLS                                                                                  \
    "[{\"name\":\"find_trains\",\"description\":\"Trains between two cities\",\"input_schema\":"   \
    "{\"type\":\"object\",\"properties\":{\"from\":{\"type\":\"string\"}}}}]"

START_TEST(parts_messages_with_factor)
{
    const char *msgs[] = {ANT_MSG0, ANT_MSG1, ANT_MSG2};
    const double f = 1.15;
    const tok_enc *e = enc("cl100k_base");
    cJSON *body = cJSON_Parse("{\"system\":" ANT_SYSTEM ",\"tools\":" ANT_TOOLS
                              ",\"messages\":[" ANT_MSG0 "," ANT_MSG1 "," ANT_MSG2 "]}");
    uint64_t arr[2];
    tok_count_parts parts = {.messages = arr, .cap = 2}; /* one message past the cap */
    tok_count_opts opts = {.parts = &parts};
    tok_count_result r, r0;
    char one[1024];
    uint64_t no_tools;

    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_MESSAGES, body, "claude", f, &opts, &r), 0);
    ck_assert_int_eq(tok_count_request(e, TOK_API_MESSAGES, body, "claude", f, &r0), 0);
    ck_assert_uint_eq(r.tokens, r0.tokens);
    ck_assert_int_eq(r.approximate, 1);
    ck_assert_uint_eq(parts.nmessages, 2);
    /* each part is its own count times the factor, rounded up */
    ck_assert_uint_eq(parts.system,
                      up(plain(e, TOK_API_MESSAGES, "{\"system\":" ANT_SYSTEM ",\"messages\":[]}",
                               "claude", 1.0) -
                             3,
                         f));
    for (int i = 0; i < 2; i++) {
        snprintf(one, sizeof(one), "{\"messages\":[%s]}", msgs[i]);
        ck_assert_uint_eq(parts.messages[i],
                          up(plain(e, TOK_API_MESSAGES, one, "claude", 1.0) - 3, f));
    }
    no_tools =
        plain(e, TOK_API_MESSAGES,
              "{\"system\":" ANT_SYSTEM ",\"messages\":[" ANT_MSG0 "," ANT_MSG1 "," ANT_MSG2 "]}",
              "claude", 1.0);
    ck_assert_uint_eq(parts.tools,
                      up(plain(e, TOK_API_MESSAGES,
                               "{\"system\":" ANT_SYSTEM ",\"tools\":" ANT_TOOLS
                               ",\"messages\":[" ANT_MSG0 "," ANT_MSG1 "," ANT_MSG2 "]}",
                               "claude", 1.0) -
                             no_tools,
                         f));
    ck_assert_uint_gt(parts.tools, 346); /* the tool-use system prompt is in it */
    cJSON_Delete(body);
}
END_TEST

START_TEST(parts_other_apis_are_zero)
{
    const tok_enc *e = enc("o200k_base");
    cJSON *body = cJSON_Parse("{\"input\":\"hello\"}");
    uint64_t arr[2] = {7, 7};
    tok_count_parts parts = {.tools = 9, .system = 9, .messages = arr, .cap = 2, .nmessages = 9};
    tok_count_opts opts = {.parts = &parts};
    tok_count_result r;

    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_RESPONSES, body, "gpt-4o", 1.0, &opts, &r), 0);
    ck_assert_uint_gt(r.tokens, 0);
    ck_assert_uint_eq(parts.tools + parts.system + parts.nmessages, 0);
    /* no messages array: refused, the parts empty */
    parts.nmessages = 5;
    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &opts, &r), -1);
    ck_assert_uint_eq(parts.nmessages, 0);
    cJSON_Delete(body);
}
END_TEST

/* ---- a 50-turn conversation ---- */

#define TURNS 50

static const char *const words[] = {
    "the",     "budget",   "request", "model",    "cache",   "token",    "agent",  "review",
    "Paris",   "fifteen",  "quickly", "careful",  "résumé",  "naïve",    "東京",   "données",
    "schema",  "function", "error",   "retry",    "latency", "window",   "p99",    "2026-12-06",
    "{json}",  "a\tb",     "line\n",  "émigré",   "straße",  "über",     "café",   "42",
    "because", "however",  "meeting", "contract", "deploy",  "rollback", "Москва", "😀",
};

/* A sentence of n words, different for each seed. */
static char *sentence(unsigned seed, int n)
{
    static char buf[4096];
    size_t o = 0;
    unsigned x = seed * 2654435761u + 12345;

    for (int i = 0; i < n && o + 64 < sizeof(buf); i++) {
        x = x * 1103515245u + 12345;
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "",
                              words[(x >> 8) % (sizeof(words) / sizeof(words[0]))]);
    }
    return buf;
}

/* A data: URL of a PNG header of w x h pixels (all the counter reads of it). */
static char *png_url(int w, int h)
{
    static char url[128];
    unsigned char png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                             0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    unsigned char b64[64];

    png[16] = (unsigned char)(w >> 24), png[17] = (unsigned char)(w >> 16);
    png[18] = (unsigned char)(w >> 8), png[19] = (unsigned char)w;
    png[20] = (unsigned char)(h >> 24), png[21] = (unsigned char)(h >> 16);
    png[22] = (unsigned char)(h >> 8), png[23] = (unsigned char)h;
    png[24] = 8, png[25] = 6;
    EVP_EncodeBlock(b64, png, sizeof(png));
    snprintf(url, sizeof(url), "data:image/png;base64,%s", b64);
    return url;
}

/* Appends turn t's user message (chat: the system prompt first at turn 0). */
static void chat_user(cJSON *msgs, int t)
{
    cJSON *m = cJSON_CreateObject();

    if (t == 0) {
        cJSON *sys = cJSON_CreateObject();
        cJSON_AddStringToObject(sys, "role", "system");
        cJSON_AddStringToObject(sys, "content", sentence(9999, 40));
        cJSON_AddItemToArray(msgs, sys);
    }
    cJSON_AddStringToObject(m, "role", "user");
    if (t % 7 == 3)
        cJSON_AddStringToObject(m, "name", "bob");
    if (t % 5 == 2) {
        cJSON *parts = cJSON_AddArrayToObject(m, "content"), *p = cJSON_CreateObject(), *img;
        cJSON_AddStringToObject(p, "type", "text");
        cJSON_AddStringToObject(p, "text", sentence((unsigned)t, 30));
        cJSON_AddItemToArray(parts, p);
        p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "type", "image_url");
        img = cJSON_AddObjectToObject(p, "image_url");
        cJSON_AddStringToObject(
            img, "url", t % 10 == 2 ? png_url(300 + t, 900 - t) : "https://example.invalid/a.png");
        cJSON_AddStringToObject(img, "detail", t % 4 == 0 ? "low" : "high");
        cJSON_AddItemToArray(parts, p);
    } else
        cJSON_AddStringToObject(m, "content", sentence((unsigned)t, 20 + t % 60));
    cJSON_AddItemToArray(msgs, m);
}

/* Appends turn t's answer: text, or tool calls and their results. */
static void chat_answer(cJSON *msgs, int t)
{
    cJSON *m = cJSON_CreateObject();

    cJSON_AddStringToObject(m, "role", "assistant");
    if (t % 3 == 1) {
        cJSON *calls = cJSON_AddArrayToObject(m, "tool_calls");
        cJSON_AddNullToObject(m, "content");
        for (int k = 0; k < 1 + t % 2; k++) {
            cJSON *c = cJSON_CreateObject(), *fn;
            char id[32], args[4200];
            snprintf(id, sizeof(id), "call_%d_%d", t, k);
            snprintf(args, sizeof(args), "{\"query\":\"%s\",\"n\":%d}",
                     sentence((unsigned)t + 77, 4), t);
            cJSON_AddStringToObject(c, "id", id);
            cJSON_AddStringToObject(c, "type", "function");
            fn = cJSON_AddObjectToObject(c, "function");
            cJSON_AddStringToObject(fn, "name", "search");
            cJSON_AddStringToObject(fn, "arguments", args);
            cJSON_AddItemToArray(calls, c);
        }
        cJSON_AddItemToArray(msgs, m);
        for (int k = 0; k < 1 + t % 2; k++) {
            char id[32];
            cJSON *r = cJSON_CreateObject();
            snprintf(id, sizeof(id), "call_%d_%d", t, k);
            cJSON_AddStringToObject(r, "role", "tool");
            cJSON_AddStringToObject(r, "tool_call_id", id);
            cJSON_AddStringToObject(r, "content", sentence((unsigned)(t * 31 + k), 50));
            cJSON_AddItemToArray(msgs, r);
        }
        return;
    }
    cJSON_AddStringToObject(m, "content", sentence((unsigned)t + 500, 30 + t % 90));
    cJSON_AddItemToArray(msgs, m);
}

static void ant_user(cJSON *msgs, int t)
{
    cJSON *m = cJSON_CreateObject(), *blocks, *b;
    int tool_result = t > 0 && (t - 1) % 3 == 1;

    cJSON_AddStringToObject(m, "role", "user");
    if (!tool_result && t % 5 != 2) {
        cJSON_AddStringToObject(m, "content", sentence((unsigned)t, 20 + t % 60));
        cJSON_AddItemToArray(msgs, m);
        return;
    }
    blocks = cJSON_AddArrayToObject(m, "content");
    if (tool_result) {
        char id[32];
        b = cJSON_CreateObject();
        snprintf(id, sizeof(id), "tu_%d", t - 1);
        cJSON_AddStringToObject(b, "type", "tool_result");
        cJSON_AddStringToObject(b, "tool_use_id", id);
        if (t % 2) {
            cJSON *inner = cJSON_AddArrayToObject(b, "content"), *tb = cJSON_CreateObject();
            cJSON_AddStringToObject(tb, "type", "text");
            cJSON_AddStringToObject(tb, "text", sentence((unsigned)t * 13, 40));
            cJSON_AddItemToArray(inner, tb);
        } else
            cJSON_AddStringToObject(b, "content", sentence((unsigned)t * 17, 40));
        cJSON_AddItemToArray(blocks, b);
    }
    if (t % 5 == 2) {
        cJSON *src;
        b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "image");
        src = cJSON_AddObjectToObject(b, "source");
        cJSON_AddStringToObject(src, "type", "base64");
        cJSON_AddStringToObject(src, "media_type", "image/png");
        cJSON_AddStringToObject(src, "data",
                                strstr(png_url(640 + t, 480 + t), "base64,") + strlen("base64,"));
        cJSON_AddItemToArray(blocks, b);
    }
    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "text");
    cJSON_AddStringToObject(b, "text", sentence((unsigned)t, 25));
    cJSON_AddItemToArray(blocks, b);
    cJSON_AddItemToArray(msgs, m);
}

static void ant_answer(cJSON *msgs, int t)
{
    cJSON *m = cJSON_CreateObject(), *blocks = cJSON_AddArrayToObject(m, "content"), *b;

    cJSON_AddStringToObject(m, "role", "assistant");
    if (t % 4 == 0) {
        b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "thinking");
        cJSON_AddStringToObject(b, "thinking", sentence((unsigned)t + 900, 40));
        cJSON_AddStringToObject(b, "signature", "c2ln");
        cJSON_AddItemToArray(blocks, b);
    }
    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "text");
    cJSON_AddStringToObject(b, "text", sentence((unsigned)t + 500, 30 + t % 90));
    cJSON_AddItemToArray(blocks, b);
    if (t % 3 == 1) {
        char id[32];
        cJSON *in;
        b = cJSON_CreateObject();
        snprintf(id, sizeof(id), "tu_%d", t);
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", id);
        cJSON_AddStringToObject(b, "name", "search");
        in = cJSON_AddObjectToObject(b, "input");
        cJSON_AddStringToObject(in, "query", sentence((unsigned)t + 77, 4));
        cJSON_AddNumberToObject(in, "n", t + 0.5);
        cJSON_AddBoolToObject(in, "exact", t % 2);
        cJSON_AddItemToArray(blocks, b);
    }
    cJSON_AddItemToArray(msgs, m);
}

/* The request of a turn: the messages so far, with the API's system prompt and tools. */
static cJSON *request(tok_api api, const char *model, const cJSON *msgs, const char *system)
{
    cJSON *body = cJSON_CreateObject();

    cJSON_AddStringToObject(body, "model", model);
    if (api == TOK_API_MESSAGES) {
        if (system != NULL)
            cJSON_AddStringToObject(body, "system", system);
        cJSON_AddItemToObject(body, "tools", cJSON_Parse(ANT_TOOLS));
    } else
        cJSON_AddItemToObject(body, "tools", cJSON_Parse(CHAT_TOOLS));
    cJSON_AddItemToObject(body, "messages", cJSON_Duplicate(msgs, 1));
    return body;
}

#define PCAP 256

/* Counts body with and without memo: the same result and the same parts. */
static void same_count(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                       double f, const tok_prefix_memo *memo)
{
    static uint64_t a1[PCAP], a2[PCAP];
    tok_count_parts p1 = {.messages = a1, .cap = PCAP}, p2 = {.messages = a2, .cap = PCAP};
    tok_count_opts o1 = {.parts = &p1}, o2 = {.memo = memo, .parts = &p2};
    tok_count_result r1, r2;

    ck_assert_int_eq(tok_count_request_ex(e, api, body, model, f, &o1, &r1), 0);
    ck_assert_int_eq(tok_count_request_ex(e, api, body, model, f, &o2, &r2), 0);
    ck_assert_uint_eq(r1.tokens, r2.tokens);
    ck_assert_uint_eq(r1.image_tokens, r2.image_tokens);
    ck_assert_uint_eq(r1.images, r2.images);
    ck_assert_uint_eq(r1.estimated, r2.estimated);
    ck_assert_int_eq(r1.approximate, r2.approximate);
    ck_assert_uint_eq(p1.tools, p2.tools);
    ck_assert_uint_eq(p1.system, p2.system);
    ck_assert_uint_eq(p1.nmessages, p2.nmessages);
    for (uint32_t i = 0; i < p1.nmessages; i++)
        ck_assert_msg(a1[i] == a2[i], "part %u: %llu != %llu", i, (unsigned long long)a1[i],
                      (unsigned long long)a2[i]);
    /* and the plain count, which is tok_count_request */
    ck_assert_int_eq(tok_count_request(e, api, body, model, f, &r1), 0);
    ck_assert_uint_eq(r1.tokens, r2.tokens);
}

struct conv_case {
    tok_api api;
    const char *encoding, *model;
    double factor;
};

static const struct conv_case conv_cases[] = {
    {TOK_API_CHAT, "cl100k_base", "gpt-4", 1.0},
    {TOK_API_CHAT, "o200k_base", "gpt-4o-mini", 1.0},
    {TOK_API_MESSAGES, "cl100k_base", "claude-sonnet-4-5", 1.15},
    {TOK_API_MESSAGES, "o200k_base", "claude-sonnet-4-5", 1.0},
};

/* Runs the conversation of case c to its end, checking every turn; returns its messages. */
static cJSON *run_conversation(const struct conv_case *c, const tok_prefix_memo *memo,
                               struct tmemo *t)
{
    const tok_enc *e = enc(c->encoding);
    cJSON *msgs = cJSON_CreateArray();
    const char *system = c->api == TOK_API_MESSAGES ? sentence(4242, 50) : NULL;
    char *sys = system ? strdup(system) : NULL;
    int before = 0, images = 0;

    for (int turn = 0; turn < TURNS; turn++) {
        if (c->api == TOK_API_CHAT)
            chat_user(msgs, turn);
        else
            ant_user(msgs, turn);
        int n = cJSON_GetArraySize(msgs);
        cJSON *body = request(c->api, c->model, msgs, sys);
        t->puts = t->hits = 0;
        same_count(e, c->api, body, c->model, c->factor, memo);
        /* only the messages new since the last turn were counted and stored (and, at turn 0,
         * Anthropic's system prompt) */
        ck_assert_int_eq(t->puts, n - before + (turn == 0 && sys != NULL));
        if (turn > 0)
            ck_assert_int_ge(t->hits, 1);
        before = n;
        cJSON_Delete(body);
        if (c->api == TOK_API_CHAT)
            chat_answer(msgs, turn);
        else
            ant_answer(msgs, turn);
        images += turn % 5 == 2;
    }
    ck_assert_int_gt(images, 5);
    free(sys);
    return msgs;
}

START_TEST(conversation_turn_by_turn)
{
    const struct conv_case *c = &conv_cases[_i];
    tok_prefix_memo memo;
    struct tmemo *t = tmemo_new(&memo);
    cJSON *msgs = run_conversation(c, &memo, t);
    const tok_enc *e = enc(c->encoding);
    char *sys = c->api == TOK_API_MESSAGES ? strdup(sentence(4242, 50)) : NULL;
    int n = cJSON_GetArraySize(msgs);
    cJSON *body, *m5;

    ck_assert_int_ge(n, 2 * TURNS);
    /* an earlier message changed: found up to it, counted from it on */
    body = request(c->api, c->model, msgs, sys);
    m5 = cJSON_GetArrayItem(cJSON_GetObjectItem(body, "messages"), 5);
    cJSON_ReplaceItemInObject(m5, "content", cJSON_CreateString("changed"));
    t->puts = t->hits = 0;
    same_count(e, c->api, body, c->model, c->factor, &memo);
    ck_assert_int_eq(t->puts, n - 5);
    cJSON_Delete(body);
    /* Anthropic: another system prompt changes every key */
    if (sys != NULL) {
        body = request(c->api, c->model, msgs, "another system prompt");
        t->puts = t->hits = t->gets = 0;
        same_count(e, c->api, body, c->model, c->factor, &memo);
        ck_assert_int_eq(t->hits, 0);
        ck_assert_int_eq(t->puts, n + 1);
        cJSON_Delete(body);
        /* as does none at all */
        body = request(c->api, c->model, msgs, NULL);
        t->puts = t->hits = 0;
        same_count(e, c->api, body, c->model, c->factor, &memo);
        ck_assert_int_eq(t->hits, 0);
        cJSON_Delete(body);
    }
    /* the other encoding shares no key */
    {
        const char *other = strcmp(c->encoding, "o200k_base") == 0 ? "cl100k_base" : "o200k_base";
        tok_count_result r;
        tok_count_opts o = {.memo = &memo};
        body = request(c->api, c->model, msgs, sys);
        t->hits = 0;
        ck_assert_int_eq(
            tok_count_request_ex(enc(other), c->api, body, c->model, c->factor, &o, &r), 0);
        ck_assert_int_eq(t->hits, 0);
        cJSON_Delete(body);
    }
    cJSON_Delete(msgs);
    free(sys);
    free(t);
}
END_TEST

/* A memo that lost the boundaries in between: the parts of the messages it no longer has are
 * counted again, alone, and come out the same. */
START_TEST(conversation_memo_with_gaps)
{
    const struct conv_case *c = &conv_cases[_i];
    tok_prefix_memo memo;
    struct tmemo *t = tmemo_new(&memo);
    const tok_enc *e = enc(c->encoding);
    cJSON *msgs = cJSON_CreateArray();

    t->forget_all_but_last = 1;
    for (int turn = 0; turn < 12; turn++) {
        if (c->api == TOK_API_CHAT)
            chat_user(msgs, turn);
        else
            ant_user(msgs, turn);
        cJSON *body = request(c->api, c->model, msgs, c->api == TOK_API_MESSAGES ? "sys" : NULL);
        same_count(e, c->api, body, c->model, c->factor, &memo);
        cJSON_Delete(body);
        if (c->api == TOK_API_CHAT)
            chat_answer(msgs, turn);
        else
            ant_answer(msgs, turn);
    }
    cJSON_Delete(msgs);
    free(t);
}
END_TEST

/* Different shapes never share a key, though their texts run together alike. */
START_TEST(shapes_do_not_collide)
{
    static const char *const pairs[][2] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"xy\"}]}",
         "{\"messages\":[{\"role\":\"userx\",\"content\":\"y\"}]}"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"},{\"role\":\"user\",\"content\":"
         "\"c\"}]}",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":"
         "\"bc\"}]}"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\",\"x\":\"1\"}]}]}",
         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\",\"x\":1}]}]}"},
        {"{\"messages\":[{\"role\":\"user\",\"name\":\"x\",\"content\":\"y\"}]}",
         "{\"messages\":[{\"role\":\"user\",\"nam\":\"x\",\"content\":\"y\"}]}"},
    };
    const tok_enc *e = enc("o200k_base");

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        tok_prefix_memo memo;
        struct tmemo *t = tmemo_new(&memo);
        tok_count_opts o = {.memo = &memo};
        tok_count_result r;
        cJSON *a = cJSON_Parse(pairs[i][0]), *b = cJSON_Parse(pairs[i][1]);
        ck_assert_int_eq(tok_count_request_ex(e, TOK_API_CHAT, a, "gpt-4o", 1.0, &o, &r), 0);
        t->hits = 0;
        same_count(e, TOK_API_CHAT, b, "gpt-4o", 1.0, &memo);
        ck_assert_msg(t->hits == 0, "pair %zu shares a key", i);
        cJSON_Delete(a);
        cJSON_Delete(b);
        free(t);
    }
}
END_TEST

/* The same text in another shape that counts the same may share: a string content and one text
 * block are one step of the count. And OpenAI image prices depend on the model: no sharing. */
START_TEST(shapes_that_count_alike_share)
{
    const tok_enc *e = enc("cl100k_base");
    tok_prefix_memo memo;
    struct tmemo *t = tmemo_new(&memo);
    tok_count_opts o = {.memo = &memo};
    tok_count_result r;
    cJSON *a = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}");
    cJSON *b = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"hello there\"}]}]}");
    cJSON *i1 = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                            "\"image_url\",\"image_url\":{\"url\":\"https://x.invalid/i\"}}]}]}");

    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_MESSAGES, a, "claude", 1.0, &o, &r), 0);
    t->hits = 0;
    same_count(e, TOK_API_MESSAGES, b, "claude", 1.0, &memo);
    ck_assert_int_eq(t->hits, 1);
    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_CHAT, i1, "gpt-4", 1.0, &o, &r), 0);
    t->hits = 0;
    same_count(e, TOK_API_CHAT, i1, "gpt-4o-mini", 1.0, &memo);
    ck_assert_int_eq(t->hits, 0);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(i1);
    free(t);
}
END_TEST

/* Past TOK_PREFIX_MAX_MESSAGES messages the memo is left alone: the same count, no lookup. */
START_TEST(long_conversation_without_memo)
{
    const tok_enc *e = enc("o200k_base");
    tok_prefix_memo memo;
    struct tmemo *t = tmemo_new(&memo);
    cJSON *body = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(body, "messages");
    tok_count_opts o = {.memo = &memo};
    tok_count_result r1, r2;

    t->blind = 1;
    for (int i = 0; i <= TOK_PREFIX_MAX_MESSAGES; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", "x");
        cJSON_AddItemToArray(msgs, m);
    }
    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &o, &r1), 0);
    ck_assert_int_eq(t->gets + t->puts, 0);
    ck_assert_int_eq(tok_count_request(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &r2), 0);
    ck_assert_uint_eq(r1.tokens, r2.tokens);
    /* one message fewer: the memo is used */
    cJSON_DeleteItemFromArray(msgs, 0);
    ck_assert_int_eq(tok_count_request_ex(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &o, &r1), 0);
    ck_assert_int_eq(t->puts, TOK_PREFIX_MAX_MESSAGES);
    cJSON_Delete(body);
    free(t);
}
END_TEST

static void add_conv_tests(TCase *t)
{
    int n = (int)(sizeof(conv_cases) / sizeof(conv_cases[0]));

    tcase_add_loop_test(t, conversation_turn_by_turn, 0, n);
    tcase_add_loop_test(t, conversation_memo_with_gaps, 0, n);
    tcase_add_test(t, shapes_do_not_collide);
    tcase_add_test(t, shapes_that_count_alike_share);
    tcase_add_test(t, long_conversation_without_memo);
}

static Suite *prefix_suite(void)
{
    Suite *s = suite_create("prefix");
    TCase *t = tcase_create("core");

    tcase_set_timeout(t, 120);
    tcase_add_test(t, parts_chat);
    tcase_add_test(t, parts_messages_with_factor);
    tcase_add_test(t, parts_other_apis_are_zero);
    add_conv_tests(t);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return run_suite(prefix_suite());
}
