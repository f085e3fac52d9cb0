/*
 * tokengate-prefixbench: the cost of counting the input tokens of turn 1 against turn T (50) of
 * a growing conversation, with the prefix-count memo (cache/prefixcount.c) on and off, for
 * cl100k_base and o200k_base, OpenAI chat and Anthropic Messages.
 *
 * usage: tokengate-prefixbench [--rounds N] [--turns T] [--corpus DIR] [--cold] [--idle]
 *                              [--memo-only]
 *
 * The conversation: a system prompt, then turns of a user message (300 to 900 bytes) and an
 * answer (600 to 2,400 bytes), each whole lines of the corpus's four files in turn (prose,
 * Python, C, translated strings), every message different. Turn t's request holds the system
 * prompt, the t - 1 turns before it and turn t's user message. Memo off: tok_count_request of
 * turn t's body. Memo on: a fresh table, into which turn t - 1's body is counted (untimed: the
 * request before), then turn t's body is counted through it (timed): the cost a gate pays when a
 * client sends its next turn. The body counted is parsed from its text right before each count
 * (untimed), as the gate parses a request and then counts it. Each figure is over N rounds (default
 * 300) after 5 untimed ones; the piece cache of the tokenizer stays warm (the same text every
 * round: tokenizing at its fastest, so what the memo adds shows most), or with --cold is emptied
 * before each timed count. Prints a Markdown table: median and p99 microseconds per count, and turn
 * T over turn 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench/benchutil.h"
#include "cache/prefixcount.h"
#include "tokenizer/chat.h"
#include "tokenizer/tok.h"

static const char *const files[] = {"en_prose.txt", "code_py.txt", "code_c.txt",
                                    "multilingual.txt"};
#define NFILES 4

struct corpus {
    char *text[NFILES];
    size_t len[NFILES], at[NFILES];
};

/* The next whole lines of file f, at least min bytes, at most max (a line longer is cut at a
 * UTF-8 boundary); malloc'd. Wraps around at the end. */
static char *take(struct corpus *c, int f, size_t min, size_t max)
{
    char *out = malloc(max + 1);
    size_t n = 0;

    if (out == NULL)
        exit(1);
    while (n < min) {
        const char *s = c->text[f] + c->at[f];
        const char *nl = memchr(s, '\n', c->len[f] - c->at[f]);
        size_t l = nl != NULL ? (size_t)(nl - s) + 1 : c->len[f] - c->at[f];
        if (n + l > max) {
            l = max - n;
            while (l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
                l--;
        }
        memcpy(out + n, s, l);
        n += l;
        c->at[f] += nl != NULL ? (size_t)(nl - s) + 1 : c->len[f] - c->at[f];
        if (c->at[f] >= c->len[f])
            c->at[f] = 0;
        if (l == 0)
            break;
    }
    out[n] = '\0';
    return out;
}

struct conv {
    char *system;
    char **user, **answer; /* turns */
    int turns;
};

static void make_conv(struct corpus *c, struct conv *v, int turns)
{
    unsigned x = 12345;

    v->turns = turns;
    v->system = take(c, 0, 1200, 1600);
    v->user = calloc((size_t)turns, sizeof(char *));
    v->answer = calloc((size_t)turns, sizeof(char *));
    for (int t = 0; t < turns; t++) {
        x = x * 1103515245u + 12345;
        v->user[t] = take(c, t % NFILES, 300 + (x >> 8) % 600, 1000);
        x = x * 1103515245u + 12345;
        v->answer[t] = take(c, (t + 1) % NFILES, 600 + (x >> 8) % 1800, 2600);
    }
}

/* The body of turn t (1-based) for api. */
static cJSON *body_of(const struct conv *v, tok_api api, const char *model, int t)
{
    cJSON *b = cJSON_CreateObject(), *msgs, *m;

    cJSON_AddStringToObject(b, "model", model);
    if (api == TOK_API_MESSAGES)
        cJSON_AddStringToObject(b, "system", v->system);
    msgs = cJSON_AddArrayToObject(b, "messages");
    if (api == TOK_API_CHAT) {
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", v->system);
        cJSON_AddItemToArray(msgs, m);
    }
    for (int k = 0; k < t; k++) {
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", v->user[k]);
        cJSON_AddItemToArray(msgs, m);
        if (k == t - 1)
            break;
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "assistant");
        if (api == TOK_API_MESSAGES) { /* Anthropic answers are blocks */
            cJSON *blocks = cJSON_AddArrayToObject(m, "content"), *bl = cJSON_CreateObject();
            cJSON_AddStringToObject(bl, "type", "text");
            cJSON_AddStringToObject(bl, "text", v->answer[k]);
            cJSON_AddItemToArray(blocks, bl);
        } else
            cJSON_AddStringToObject(m, "content", v->answer[k]);
        cJSON_AddItemToArray(msgs, m);
    }
    return b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct figure {
    double median, p99;
    uint64_t tokens;
};

/*
 * Times counting turn t, memo off (0) or on (1; 2: after the same request), over rounds
 * rounds. Before each timed count, the same untimed work in every case: a count of turn
 * busy_turn's body (memo on: turn t - 1, or t itself for 2, into the fresh memo; else with no
 * memo), as a worker counts other requests between a client's turns (busy_turn 0: none).
 */
static struct figure measure(const struct conv *v, const tok_enc *e, tok_api api, const char *model,
                             int t, int memo_on, int rounds, int cold, int busy_turn)
{
    cJSON *body = body_of(v, api, model, t);
    char *text = cJSON_PrintUnformatted(body);
    cJSON *prev = memo_on == 2 ? body_of(v, api, model, t) /* the same request again */
                  : t > 1      ? body_of(v, api, model, t - 1)
                               : NULL;
    cJSON *busy = busy_turn > 0 ? body_of(v, api, model, busy_turn) : NULL;
    double *us = malloc(sizeof(double) * (size_t)rounds);
    struct figure f = {0};
    tok_count_result r;

    for (int i = -5; i < rounds; i++) {
        struct prefixcount *pc = NULL;
        tok_prefix_memo memo;
        tok_count_opts o = {.memo = &memo};
        double t0;
        int rc;
        if (memo_on) {
            pc = prefixcount_new(PREFIXCOUNT_DEFAULT_MAX);
            prefixcount_memo(pc, &memo);
            if (prev != NULL && tok_count_request_ex(e, api, prev, model, 1.0, &o, &r) != 0)
                exit(1);
        }
        if ((!memo_on || prev == NULL) && busy != NULL &&
            tok_count_request(e, api, busy, model, 1.0, &r) != 0)
            exit(1);
        if (cold)
            tok_cache_clear();
        /* parsed right before it is counted, as the gate does: its text is in the CPU's cache */
        cJSON_Delete(body);
        if ((body = cJSON_Parse(text)) == NULL)
            exit(1);
        t0 = bench_now();
        rc = memo_on ? tok_count_request_ex(e, api, body, model, 1.0, &o, &r)
                     : tok_count_request(e, api, body, model, 1.0, &r);
        if (i >= 0)
            us[i] = (bench_now() - t0) * 1e6;
        if (rc != 0) {
            fprintf(stderr, "prefixbench: the count failed\n");
            exit(1);
        }
        f.tokens = r.tokens;
        prefixcount_free(pc);
    }
    qsort(us, (size_t)rounds, sizeof(double), cmp_double);
    f.median = us[rounds / 2];
    f.p99 = us[(size_t)((double)(rounds - 1) * 0.99)];
    free(us);
    free(text);
    cJSON_Delete(body);
    cJSON_Delete(prev);
    cJSON_Delete(busy);
    return f;
}

int main(int argc, char **argv)
{
    const char *dir = "../shared/corpus";
    int rounds = 300, turns = 50, cold = 0, only_on = 0, busy = 1;
    struct corpus c = {0};
    struct conv v;
    static const struct {
        tok_api api;
        const char *name, *encoding, *model;
    } cases[] = {
        {TOK_API_CHAT, "OpenAI chat", "cl100k_base", "gpt-4"},
        {TOK_API_CHAT, "OpenAI chat", "o200k_base", "gpt-4o"},
        {TOK_API_MESSAGES, "Anthropic Messages", "cl100k_base", "claude-sonnet-4-5"},
        {TOK_API_MESSAGES, "Anthropic Messages", "o200k_base", "claude-sonnet-4-5"},
    };

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--turns") == 0 && i + 1 < argc)
            turns = atoi(argv[++i]);
        else if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--cold") == 0)
            cold = 1;
        else if (strcmp(argv[i], "--idle") == 0)
            busy = 0;
        else if (strcmp(argv[i], "--memo-only") == 0)
            only_on = 1; /* for profiling */
        else {
            fprintf(stderr, "usage: tokengate-prefixbench [--rounds N] [--turns T] "
                            "[--corpus DIR] [--cold] [--idle] [--memo-only]\n");
            return 2;
        }
    }
    if (rounds < 1 || turns < 2) {
        fprintf(stderr, "prefixbench: --rounds at least 1, --turns at least 2\n");
        return 2;
    }
    for (int f = 0; f < NFILES; f++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
        if ((c.text[f] = bench_slurp(path, &c.len[f])) == NULL || c.len[f] == 0)
            return 1;
    }
    make_conv(&c, &v, turns);
    {
        /* what turn T adds to turn T - 1, in tokens (o200k_base, chat) */
        const tok_enc *e = tok_encoding("o200k_base");
        cJSON *b1 = body_of(&v, TOK_API_CHAT, "gpt-4o", turns - 1);
        cJSON *b2 = body_of(&v, TOK_API_CHAT, "gpt-4o", turns);
        tok_count_result r1, r2;
        if (e == NULL || tok_count_request(e, TOK_API_CHAT, b1, "gpt-4o", 1.0, &r1) != 0 ||
            tok_count_request(e, TOK_API_CHAT, b2, "gpt-4o", 1.0, &r2) != 0)
            return 1;
        printf("rounds %d per figure, piece cache %s, %s; memo on: turn t counted after turn "
               "t - 1 filled a fresh memo; text of turn 1: %zu bytes, added by turn %d: %zu bytes "
               "(o200k_base: %llu tokens more than turn %d)\n\n",
               rounds, cold ? "emptied before each count" : "warm",
               busy ? "each count after an untimed count of another request (turn T - 1)"
                    : "nothing counted between the timed counts but the memo's fill",
               strlen(v.system) + strlen(v.user[0]), turns,
               strlen(v.answer[turns - 2]) + strlen(v.user[turns - 1]),
               (unsigned long long)(r2.tokens - r1.tokens), turns - 1);
        cJSON_Delete(b1);
        cJSON_Delete(b2);
    }
    printf(
        "| API | encoding | memo | turn 1 tokens | turn 1 median / p99 us | turn %d tokens | "
        "turn %d median / p99 us | turn %d / turn 1 (median) | turn %d again, median / p99 us |\n",
        turns, turns, turns, turns);
    printf("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const tok_enc *e = tok_encoding(cases[k].encoding);
        if (e == NULL)
            return 1;
        for (int memo_on = only_on; memo_on <= 1; memo_on++) {
            int bt = busy ? turns - 1 : 0;
            struct figure a =
                measure(&v, e, cases[k].api, cases[k].model, 1, memo_on, rounds, cold, bt);
            struct figure b =
                measure(&v, e, cases[k].api, cases[k].model, turns, memo_on, rounds, cold, bt);
            printf("| %s | %s | %s | %llu | %.1f / %.1f | %llu | %.1f / %.1f | %.2fx |",
                   cases[k].name, cases[k].encoding, memo_on ? "on" : "off",
                   (unsigned long long)a.tokens, a.median, a.p99, (unsigned long long)b.tokens,
                   b.median, b.p99, b.median / a.median);
            if (memo_on) { /* turn T sent again whole: the keys' hashing and one lookup */
                struct figure r =
                    measure(&v, e, cases[k].api, cases[k].model, turns, 2, rounds, cold, bt);
                printf(" %.1f / %.1f |\n", r.median, r.p99);
            } else
                printf(" - |\n");
            fflush(stdout);
        }
    }
    return 0;
}
