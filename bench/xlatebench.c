/*
 * tokengate-xlatebench: the cost of translating between the OpenAI chat and the Anthropic
 * Messages formats (routing/xlate.h), in process, per request and per stream event.
 *
 * usage: tokengate-xlatebench [--bodies N] [--rounds N]
 *
 *   ninja -C build && build/tokengate-xlatebench     # a few seconds
 *
 * Makes N distinct request bodies in each format (default 3,000; 1 to 4 user turns of varied text,
 * 3 to 4 KB on average, a system prompt, a third with two tools and a turn that called them and
 * got their results), parsed once as the gate parses a body before it is routed. Then, for each
 * direction, times on its own (clock_gettime(CLOCK_MONOTONIC)):
 *   request  xlate_request and printing the result (what stage_prepare sends);
 *   answer   xlate_response of a whole answer with text and two tool calls, and printing it;
 *   event    xlate_stream_event of each event of a realistic stream (a text delta, or a piece of
 *            a tool call's arguments), the client's event printed by the emit callback;
 * one warm-up pass untimed, then --rounds passes (default 5). Prints p50, p99 and the mean in
 * microseconds, the median cost of an empty timing subtracted. Exits 1 when a translation
 * fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "routing/xlate.h"

static const char *const words[] = {
    "the",      "gate",   "counts",  "tokens",  "before",   "forwarding", "every",  "request",
    "budget",   "agent",  "team",    "window",  "provider", "answer",     "stream", "model",
    "cheap",    "tier",   "route",   "rule",    "cache",    "prefix",     "tool",   "call",
    "argument", "result", "weather", "Paris",   "London",   "invoice",    "refund", "order",
    "customer", "please", "explain", "briefly", "why",      "how",        "which",  "numbers",
    "2026",     "42",     "3.14",    "résumé",  "naïve",    "東京",       "über",   "—",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Appends about n bytes of words to buf (cap), returns the new length. */
static size_t text(char *buf, size_t len, size_t cap, size_t n)
{
    size_t end = len + n < cap - 32 ? len + n : cap - 32;

    while (len < end) {
        const char *w = words[next() % NWORDS];
        size_t k = strlen(w);
        if (len + k + 1 >= cap)
            break;
        memcpy(buf + len, w, k);
        len += k;
        buf[len++] = next() % 11 == 0 ? '\n' : ' ';
    }
    buf[len] = '\0';
    return len;
}

static cJSON *str_of(size_t n)
{
    char buf[16384];

    text(buf, 0, sizeof(buf), n);
    return cJSON_CreateString(buf);
}

static cJSON *tool_schema(const char *name, int anthropic)
{
    cJSON *params =
        cJSON_Parse("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
                    "\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}");
    cJSON *t = cJSON_CreateObject();

    if (anthropic) {
        cJSON_AddStringToObject(t, "name", name);
        cJSON_AddStringToObject(t, "description", "Looks the thing up.");
        cJSON_AddItemToObject(t, "input_schema", params);
        return t;
    }
    cJSON *f = cJSON_AddObjectToObject(t, "function");
    cJSON_AddStringToObject(t, "type", "function");
    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddStringToObject(f, "description", "Looks the thing up.");
    cJSON_AddItemToObject(f, "parameters", params);
    return t;
}

/* One OpenAI chat request body. */
static cJSON *openai_body(int i)
{
    cJSON *b = cJSON_CreateObject(), *msgs;
    int turns = 1 + (int)(next() % 4), tools = i % 3 == 0;

    cJSON_AddStringToObject(b, "model", "auto");
    cJSON_AddNumberToObject(b, "temperature", 0.2);
    cJSON_AddNumberToObject(b, "max_completion_tokens", 512);
    msgs = cJSON_AddArrayToObject(b, "messages");
    cJSON *sys = cJSON_CreateObject();
    cJSON_AddStringToObject(sys, "role", "system");
    cJSON_AddItemToObject(sys, "content", str_of(200 + next() % 400));
    cJSON_AddItemToArray(msgs, sys);
    for (int t = 0; t < turns; t++) {
        cJSON *u = cJSON_CreateObject(), *a = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "role", "user");
        cJSON_AddItemToObject(u, "content", str_of(300 + next() % 900));
        cJSON_AddItemToArray(msgs, u);
        if (t == turns - 1)
            break;
        cJSON_AddStringToObject(a, "role", "assistant");
        cJSON_AddItemToObject(a, "content", str_of(200 + next() % 500));
        cJSON_AddItemToArray(msgs, a);
    }
    if (tools) {
        cJSON *arr = cJSON_AddArrayToObject(b, "tools");
        cJSON_AddItemToArray(arr, tool_schema("get_weather", 0));
        cJSON_AddItemToArray(arr, tool_schema("get_time", 0));
        cJSON *a = cJSON_Parse("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                               "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                               "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
                               "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":"
                               "\"get_time\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]}");
        cJSON_AddItemToArray(msgs, a);
        for (int k = 1; k <= 2; k++) {
            cJSON *r = cJSON_CreateObject();
            char id[16];
            snprintf(id, sizeof(id), "call_%d", k);
            cJSON_AddStringToObject(r, "role", "tool");
            cJSON_AddStringToObject(r, "tool_call_id", id);
            cJSON_AddItemToObject(r, "content", str_of(60 + next() % 100));
            cJSON_AddItemToArray(msgs, r);
        }
    }
    return b;
}

/* One Anthropic messages request body. */
static cJSON *anthropic_body(int i)
{
    cJSON *b = cJSON_CreateObject(), *msgs;
    int turns = 1 + (int)(next() % 4), tools = i % 3 == 0;

    cJSON_AddStringToObject(b, "model", "auto");
    cJSON_AddNumberToObject(b, "max_tokens", 512);
    cJSON_AddNumberToObject(b, "temperature", 0.2);
    cJSON_AddItemToObject(b, "system", str_of(200 + next() % 400));
    msgs = cJSON_AddArrayToObject(b, "messages");
    for (int t = 0; t < turns; t++) {
        cJSON *u = cJSON_CreateObject(), *a = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "role", "user");
        cJSON_AddItemToObject(u, "content", str_of(300 + next() % 900));
        cJSON_AddItemToArray(msgs, u);
        if (t == turns - 1 && !tools)
            break;
        cJSON_AddStringToObject(a, "role", "assistant");
        cJSON_AddItemToObject(a, "content", str_of(200 + next() % 500));
        cJSON_AddItemToArray(msgs, a);
        if (t == turns - 1)
            break;
    }
    if (tools) {
        cJSON *arr = cJSON_AddArrayToObject(b, "tools");
        cJSON_AddItemToArray(arr, tool_schema("get_weather", 1));
        cJSON_AddItemToArray(arr, tool_schema("get_time", 1));
        /* the last assistant turn called both; the user answers with both results */
        cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
        cJSON_DeleteItemFromObject(last, "content");
        cJSON_AddItemToObject(
            last, "content",
            cJSON_Parse("[{\"type\":\"text\",\"text\":\"Looking it up.\"},{\"type\":\"tool_use\","
                        "\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":"
                        "\"Paris\"}},{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":"
                        "\"get_time\",\"input\":{\"city\":\"Paris\"}}]"));
        cJSON *u = cJSON_Parse("{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                               "\"tool_use_id\":\"toolu_1\",\"content\":\"18 C, clear\"},"
                               "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\","
                               "\"content\":\"14:02\"}]}");
        cJSON_AddItemToArray(msgs, u);
    }
    return b;
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, size_t n, double empty)
{
    double sum = 0;

    for (size_t i = 0; i < n; i++) {
        t[i] -= empty;
        sum += t[i];
    }
    qsort(t, n, sizeof(*t), cmp);
    printf("%-44s p50 %7.2f us  p99 %7.2f us  mean %7.2f us  (%zu timed)\n", what, t[n / 2],
           t[n * 99 / 100], sum / (double)n, n);
}

static size_t emitted;

static int emit(void *arg, const char *name, const char *s, size_t len)
{
    (void)arg;
    (void)name;
    (void)s;
    emitted += len;
    return 0;
}

/* The events of a stream in the provider's format dir says: text deltas, then two tool calls
 * whose arguments come in pieces of about 3 bytes, then the end. Parsed, as the gate parses
 * them before the filters. */
struct ev {
    char name[32];
    cJSON *data;
    char *raw;
};

static int stream_events(enum xlate_dir dir, struct ev *evs, int cap)
{
    int n = 0;
    char buf[512];
    static const char args[] = "{\"city\":\"Paris\",\"days\":3,\"units\":\"metric\"}";

#define ADD(nm, ...)                                                                               \
    do {                                                                                           \
        snprintf(buf, sizeof(buf), __VA_ARGS__);                                                   \
        snprintf(evs[n].name, sizeof(evs[n].name), "%s", nm);                                      \
        evs[n].raw = strdup(buf);                                                                  \
        evs[n].data = cJSON_Parse(buf);                                                            \
        n++;                                                                                       \
    } while (0)
    if (dir == XLATE_OPENAI_TO_ANTHROPIC) { /* the provider speaks Anthropic */
        ADD("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
                             "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
                             "\"content\":[],\"usage\":{\"input_tokens\":1200,"
                             "\"output_tokens\":1}}}");
        ADD("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
                                   "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
        for (int i = 0; i < 40 && n < cap - 40; i++)
            ADD("content_block_delta",
                "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                "{\"type\":\"text_delta\",\"text\":\" %s\"}}",
                words[i % 24]);
        ADD("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}");
        for (int t = 1; t <= 2; t++) {
            ADD("content_block_start",
                "{\"type\":\"content_block_start\",\"index\":%d,"
                "\"content_block\":{\"type\":\"tool_use\",\"id\":"
                "\"toolu_%d\",\"name\":\"get_weather\",\"input\":{}}}",
                t, t);
            for (size_t k = 0; k < sizeof(args) - 1 && n < cap - 8; k += 3) {
                char piece[8];
                cJSON *s = cJSON_CreateString("");
                snprintf(piece, sizeof(piece), "%.3s", args + k);
                cJSON_SetValuestring(s, piece);
                char *q = cJSON_PrintUnformatted(s);
                ADD("content_block_delta",
                    "{\"type\":\"content_block_delta\",\"index\":%d,"
                    "\"delta\":{\"type\":\"input_json_delta\","
                    "\"partial_json\":%s}}",
                    t, q);
                free(q);
                cJSON_Delete(s);
            }
            ADD("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":%d}", t);
        }
        ADD("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                             "\"tool_use\"},\"usage\":{\"output_tokens\":80}}");
        ADD("message_stop", "{\"type\":\"message_stop\"}");
        return n;
    }
    /* the provider speaks OpenAI chat */
    const char *head = "\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                       "\"model\":\"gpt-4o\"";
    ADD("",
        "{%s,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]}",
        head);
    for (int i = 0; i < 40 && n < cap - 40; i++)
        ADD("",
            "{%s,\"choices\":[{\"index\":0,\"delta\":{\"content\":\" %s\"},"
            "\"finish_reason\":null}]}",
            head, words[i % 24]);
    for (int t = 0; t < 2; t++) {
        ADD("",
            "{%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":"
            "\"call_%d\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
            "\"arguments\":\"\"}}]},\"finish_reason\":null}]}",
            head, t, t);
        for (size_t k = 0; k < sizeof(args) - 1 && n < cap - 8; k += 3) {
            char piece[8];
            cJSON *s = cJSON_CreateString("");
            snprintf(piece, sizeof(piece), "%.3s", args + k);
            cJSON_SetValuestring(s, piece);
            char *q = cJSON_PrintUnformatted(s);
            ADD("",
                "{%s,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,"
                "\"function\":{\"arguments\":%s}}]},\"finish_reason\":null}]}",
                head, t, q);
            free(q);
            cJSON_Delete(s);
        }
    }
    ADD("", "{%s,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}", head);
    ADD("",
        "{%s,\"choices\":[],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":80,"
        "\"total_tokens\":1280}}",
        head);
    snprintf(evs[n].name, sizeof(evs[n].name), "%s", "");
    evs[n].raw = strdup("[DONE]");
    evs[n].data = NULL;
    return n + 1;
#undef ADD
}

static const char *const answer_anthropic =
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
    "\"content\":[{\"type\":\"text\",\"text\":\"Let me check the weather and the time in Paris "
    "for you, and then I will summarise both.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\","
    "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\",\"days\":3}},{\"type\":\"tool_use\","
    "\"id\":\"toolu_2\",\"name\":\"get_time\",\"input\":{\"city\":\"Paris\"}}],\"stop_reason\":"
    "\"tool_use\",\"usage\":{\"input_tokens\":1200,\"output_tokens\":80,"
    "\"cache_read_input_tokens\":512,\"cache_creation_input_tokens\":0}}";
static const char *const answer_openai =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Let me check the "
    "weather and the time in Paris for you, and then I will summarise both.\",\"tool_calls\":["
    "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":3}\"}},{\"id\":\"call_2\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{"
    "\"prompt_tokens\":1200,\"completion_tokens\":80,\"total_tokens\":1280,"
    "\"prompt_tokens_details\":{\"cached_tokens\":512}}}";

int main(int argc, char **argv)
{
    int nbodies = 3000, rounds = 5;
    char err[400];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bodies") == 0)
            nbodies = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
    }
    if (nbodies < 10 || rounds < 1) {
        fprintf(stderr, "usage: tokengate-xlatebench [--bodies N>=10] [--rounds N>=1]\n");
        return 2;
    }
    /* the cost of an empty timing */
    double e[1000];
    for (int i = 0; i < 1000; i++) {
        double t0 = now_us();
        e[i] = now_us() - t0;
    }
    qsort(e, 1000, sizeof(e[0]), cmp);
    double empty = e[500];
    printf("empty timing: %.3f us (subtracted)\n", empty);

    static const enum xlate_dir dirs[] = {XLATE_OPENAI_TO_ANTHROPIC, XLATE_ANTHROPIC_TO_OPENAI};
    for (int di = 0; di < 2; di++) {
        enum xlate_dir d = dirs[di];
        cJSON **bodies = malloc(sizeof(*bodies) * (size_t)nbodies);
        size_t bytes = 0;
        for (int i = 0; i < nbodies; i++) {
            bodies[i] = d == XLATE_OPENAI_TO_ANTHROPIC ? openai_body(i) : anthropic_body(i);
            char *s = cJSON_PrintUnformatted(bodies[i]);
            bytes += strlen(s);
            free(s);
        }
        printf("\n%s: %d bodies, %.1f KB on average\n", xlate_name(d), nbodies,
               (double)bytes / nbodies / 1024);
        double *t = malloc(sizeof(*t) * (size_t)nbodies * (size_t)rounds);
        size_t nt = 0;
        for (int r = -1; r < rounds; r++) {
            for (int i = 0; i < nbodies; i++) {
                double t0 = now_us();
                cJSON *out = xlate_request(d, bodies[i], "target-model", 1024, 0, err, sizeof(err));
                char *s = out ? cJSON_PrintUnformatted(out) : NULL;
                double t1 = now_us();
                if (s == NULL) {
                    fprintf(stderr, "request %d: %s\n", i, out ? "print failed" : err);
                    return 1;
                }
                free(s);
                cJSON_Delete(out);
                if (r >= 0)
                    t[nt++] = t1 - t0;
            }
        }
        report("request (translate + print)", t, nt, empty);

        struct xlate_ctx ctx = {.dir = d,
                                .client_model = "auto",
                                .request_id = "req_bench",
                                .created = 1,
                                .include_usage = 1};
        cJSON *ans = cJSON_Parse(d == XLATE_OPENAI_TO_ANTHROPIC ? answer_anthropic : answer_openai);
        nt = 0;
        for (int r = -1; r < rounds; r++) {
            for (int i = 0; i < nbodies; i++) {
                double t0 = now_us();
                cJSON *out = xlate_response(&ctx, ans);
                char *s = out ? cJSON_PrintUnformatted(out) : NULL;
                double t1 = now_us();
                if (s == NULL) {
                    fprintf(stderr, "answer: translation failed\n");
                    return 1;
                }
                free(s);
                cJSON_Delete(out);
                if (r >= 0)
                    t[nt++] = t1 - t0;
            }
        }
        report("whole answer, text + 2 tool calls", t, nt, empty);

        struct ev evs[256];
        int nev = stream_events(d, evs, 256);
        size_t cap = (size_t)nev * (size_t)nbodies / 10 * (size_t)rounds;
        double *te = malloc(sizeof(*te) * cap);
        nt = 0;
        for (int r = -1; r < rounds; r++) {
            for (int k = 0; k < nbodies / 10; k++) {
                struct xlate_stream *xs = xlate_stream_new(&ctx);
                for (int i = 0; i < nev; i++) {
                    double t0 = now_us();
                    int rc = xlate_stream_event(xs, evs[i].name, evs[i].data, evs[i].raw,
                                                strlen(evs[i].raw), emit, NULL);
                    double t1 = now_us();
                    if (rc < 0) {
                        fprintf(stderr, "stream event %d failed\n", i);
                        return 1;
                    }
                    if (r >= 0 && nt < cap)
                        te[nt++] = t1 - t0;
                }
                xlate_stream_end(xs, emit, NULL);
                xlate_stream_free(xs);
            }
        }
        char what[80];
        snprintf(what, sizeof(what), "stream event (%d a stream: text, 2 tools)", nev);
        report(what, te, nt, empty);
        free(te);
        free(t);
        for (int i = 0; i < nev; i++) {
            cJSON_Delete(evs[i].data);
            free(evs[i].raw);
        }
        cJSON_Delete(ans);
        for (int i = 0; i < nbodies; i++)
            cJSON_Delete(bodies[i]);
        free(bodies);
    }
    printf("\n(%zu bytes of client events emitted)\n", emitted);
    return 0;
}
