/*
 * tokengate-chatbench: the cost of counting the input tokens of one chat request, in process,
 * for bench/tokenizer-bench (process start-up would swamp a `tokengate count --chat` timing),
 * cold (the first call on a fresh process) and warm, split into its stages.
 *
 * usage: tokengate-chatbench [--seconds S] [--runs N] [--only STAGE] [--encoding E] FILE...
 *
 * Each FILE is an OpenAI /v1/chat/completions request body. Prints one JSON line per file:
 *   file, bytes, model, encoding, tokens
 *   warm, mean microseconds per call; the stages below run in turn in one loop (each call timed
 *   on its own, so that a change in the machine's load hits them alike) for S seconds of calls
 *   (default 1), or exactly N times with --runs (for valgrind --tool=callgrind: instruction
 *   counts that repeat; callgrind_annotate --inclusive=yes then splits them by function;
 *   parse_runs and count_runs repeat runs, for bench/tokenizer-bench):
 *     parse_us        cJSON_ParseWithLength + cJSON_Delete, cJSON allocating with malloc
 *     parse_arena_us  cJSON_ParseWithLength allocating from a bump arena, as the gate parses a
 *                     request into its arena (gate/util/jsonmem.c), and no cJSON_Delete: the
 *                     arena is dropped whole
 *     parse_fast_us   the gate's parse (gate/util/jsonfast.cpp: simdjson, the tree built with
 *                     cJSON's allocator) into the arena, as stage_body parses a request body
 *     count_us        tok_count_request on the parsed body
 *     encode_us       tok_count on the strings count_us hands the encoder, alone (null when the
 *                     body holds more than role, name and text strings, e.g. tools): the encoder's
 *                     share of count_us; walk_us = count_us - encode_us is the rest (the JSON
 *                     walking, the per-message accounting, the calls)
 *     memo_us         tok_count_request_ex through a prefix-count memo (cache/prefixcount.c, as the
 *                     gate counts by default) that holds none of the body's prefixes: a new
 *                     conversation; memo_us - count_us is the hashing and the memo's lookups and
 *                     stores. memo_hit_us: the same body again, its whole prefix in the memo
 *     total_us        parse_us + count_us; total_arena_us: parse_arena_us + count_us;
 *                     total_fast_us: parse_fast_us + count_us, what the gate spends
 *   cold, each from a fresh process (this program run again), microseconds of one call each,
 *   the median of cold_runs processes:
 *     cold_parse_us   the first cJSON parse (malloc)
 *     build_us        then tok_encoding: the encoding's tables (the gate builds them at start-up)
 *     cold_count_us   the first tok_count_request (the thread's piece cache is allocated in it)
 *     cold_total_us   cold_parse_us + cold_count_us; second_count_us: the call after it
 *     prewarm_count_us the first tok_count_request in another fresh process whose thread first
 *                     made its piece cache (tok_thread_prepare, as each gate worker does when it
 *                     starts), as the gate's first request on a worker
 * --only STAGE (parse, parse_arena, parse_fast, count, encode, memo, memo_hit; memo_hit runs memo too) runs
 * that warm stage alone, and no cold child, and prints {file,bytes,encoding,tokens,runs,stage,us}:
 * with --runs, under callgrind, the difference of two run counts is the stage's instructions per
 * call (for memo, less the emptying of the memo between calls, which the clock leaves out).
 * The encoding is the model's (tok_encoding_for_model) unless --encoding names one.
 * Exits 1 when a file cannot be read, parsed or counted, 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench/benchutil.h"
#include "cache/prefixcount.h"
#include "gate/util/jsonfast.h"
#include "tokenizer/chat.h"
#include "tokenizer/tok.h"

#define MIN_RUNS 10
#define ARENA_SIZE (4u << 20) /* per parse; a bigger body's parse fails (reported) */
#define MAX_STRINGS 4096      /* strings kept for encode_us; past it encode_us is null */
/* The prefix memo's cap: one shard (cache/prefixcount.c splits 65,536 or more into 16), so that
 * emptying it between calls takes one lock; a lookup or a store costs what it costs with 16. */
#define MEMO_MAX 65535
#define COLD_RUNS 5 /* fresh processes per cold figure (each builds the tables) */

/* cJSON's allocator: malloc, or a bump arena reset before each arena parse. */
static struct {
    int on;
    char *base;
    size_t used;
} arena;

static void *arena_malloc(size_t n)
{
    void *p;

    if (!arena.on)
        return malloc(n);
    n = (n + 15) & ~(size_t)15;
    if (n > ARENA_SIZE - arena.used)
        return NULL;
    p = arena.base + arena.used;
    arena.used += n;
    return p;
}

static void arena_free(void *p)
{
    if (!arena.on)
        free(p);
}

typedef struct loop {
    double seconds; /* or, with runs > 0, exactly runs calls */
    int runs;
    int only; /* -1, or the one stage to run (--only): no cold figures then */
} loop;

/* The strings body's count hands the encoder, and the tokens of the rest, when the body holds
 * only messages of role, name and text strings (content strings or text parts): then the
 * encoder's tokens plus *overhead equal the count. Returns the number of strings, or -1. */
static int strings_of(const cJSON *body, const char **s, uint64_t *overhead)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages"), *m, *kv, *part;
    int n = 0;

    *overhead = 3; /* the reply's priming */
    if (!cJSON_IsArray(msgs) || cJSON_GetObjectItem(body, "tools") != NULL ||
        cJSON_GetObjectItem(body, "functions") != NULL)
        return -1;
    cJSON_ArrayForEach(m, msgs)
    {
        *overhead += 3;
        cJSON_ArrayForEach(kv, m)
        {
            if (n + 1 >= MAX_STRINGS || kv->string == NULL)
                return -1;
            if (cJSON_IsString(kv)) {
                s[n++] = kv->valuestring;
                *overhead += strcmp(kv->string, "name") == 0;
            } else if (strcmp(kv->string, "content") == 0 && cJSON_IsArray(kv)) {
                cJSON_ArrayForEach(part, kv)
                {
                    const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
                    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
                    if (!cJSON_IsString(t) || !cJSON_IsString(ty) ||
                        strcmp(ty->valuestring, "text") != 0 || n + 1 >= MAX_STRINGS)
                        return -1;
                    s[n++] = t->valuestring;
                }
            } else if (!cJSON_IsNull(kv))
                return -1;
        }
    }
    return n;
}

/* The model named in body (NULL when none) and the encoding to count with. */
static const tok_enc *enc_for(const cJSON *body, const char *encoding, const char **model)
{
    const cJSON *mv = cJSON_GetObjectItemCaseSensitive(body, "model");

    *model = cJSON_IsString(mv) ? mv->valuestring : NULL;
    return tok_encoding(encoding != NULL ? encoding : tok_encoding_for_model(*model));
}

/* What one fresh process measures, in microseconds (prewarm: only count is set). */
typedef struct cold {
    double parse, build, count, second;
} cold;

/*
 * The cold run itself, in a process of its own (`chatbench --cold-child P E FILE`, exec'd by
 * cold_child): the first parse, then the tables built, then the first two counts; with
 * prewarm, the thread first makes its piece cache (tok_thread_prepare), so that count is that of a
 * gate worker's first request. Writes a cold to fd. Returns 0, or 1.
 */
static int cold_run(const char *path, const char *encoding, int prewarm, int fd)
{
    size_t len = 0;
    char *text = bench_slurp(path, &len);
    const char *model;
    tok_count_result res;
    double t0, t1, t2, t3, t4, t5;
    const tok_enc *e;
    cJSON *body;
    cold c;

    if (text == NULL)
        return 1;
    if (prewarm)
        jsonfast_thread_prepare(); /* as a gate worker does when it starts */
    t0 = bench_now();
    body = prewarm ? jsonfast_parse(text, len, NULL) : cJSON_ParseWithLength(text, len);
    t1 = bench_now();
    e = body != NULL ? enc_for(body, encoding, &model) : NULL; /* builds the tables */
    t2 = bench_now();
    if (e == NULL || (prewarm && tok_thread_prepare() != 0))
        return 1;
    t3 = bench_now();
    if (tok_count_request(e, TOK_API_CHAT, body, model, 1.0, &res) != 0)
        return 1;
    t4 = bench_now();
    if (tok_count_request(e, TOK_API_CHAT, body, model, 1.0, &res) != 0)
        return 1;
    t5 = bench_now();
    c.parse = (t1 - t0) * 1e6;
    c.build = (t2 - t1) * 1e6;
    c.count = (t4 - t3) * 1e6;
    c.second = (t5 - t4) * 1e6;
    return write(fd, &c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1;
}

/*
 * Runs cold_run on the file at path in a fresh process: this program exec'd again (a forked
 * child would share the parent's pages, and its first writes would fault on copying them).
 * Its figures into *out. Returns 0, or 1 after saying why on stderr.
 */
static int cold_child(const char *self, const char *path, const char *encoding, int prewarm,
                      cold *out)
{
    int fd[2], status;
    pid_t pid;
    ssize_t got = 0, r;

    if (pipe(fd) != 0) {
        perror("chatbench: pipe");
        return 1;
    }
    if ((pid = fork()) < 0) {
        perror("chatbench: fork");
        close(fd[0]);
        close(fd[1]);
        return 1;
    }
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], STDOUT_FILENO) < 0)
            _exit(1);
        execl(self, self, "--cold-child", prewarm ? "1" : "0", encoding ? encoding : "-", path,
              (char *)NULL);
        perror("chatbench: exec");
        _exit(1);
    }
    close(fd[1]);
    while (got < (ssize_t)sizeof(*out) &&
           (r = read(fd[0], (char *)out + got, sizeof(*out) - (size_t)got)) > 0)
        got += r;
    close(fd[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != (ssize_t)sizeof(*out)) {
        fprintf(stderr, "chatbench: the cold run failed\n");
        return 1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The median of the n values at stride doubles apart from v (n <= COLD_RUNS). */
static double median(const double *v, size_t stride, int n)
{
    double s[COLD_RUNS];

    for (int i = 0; i < n; i++)
        s[i] = v[i * stride];
    qsort(s, (size_t)n, sizeof(s[0]), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The cold figures of f as a JSON fragment in out, each the median of COLD_RUNS fresh
 * children (and as many prewarmed ones): first calls vary a lot from one process to the next. */
static int cold_figures(const char *self, const char *path, const char *encoding, char *out,
                        size_t cap)
{
    cold c[COLD_RUNS], pre[COLD_RUNS];
    const size_t k = sizeof(cold) / sizeof(double);
    double count, parse;

    for (int i = 0; i < COLD_RUNS; i++)
        if (cold_child(self, path, encoding, 0, &c[i]) != 0 ||
            cold_child(self, path, encoding, 1, &pre[i]) != 0)
            return 1;
    parse = median(&c[0].parse, k, COLD_RUNS);
    count = median(&c[0].count, k, COLD_RUNS);
    snprintf(out, cap,
             ",\"cold_runs\":%d,\"cold_parse_us\":%.1f,\"build_us\":%.0f,\"cold_count_us\":%.1f,"
             "\"cold_total_us\":%.1f,\"second_count_us\":%.1f,\"prewarm_count_us\":%.1f,"
             "\"prewarm_parse_us\":%.1f",
             COLD_RUNS, parse, median(&c[0].build, k, COLD_RUNS), count, parse + count,
             median(&c[0].second, k, COLD_RUNS), median(&pre[0].count, k, COLD_RUNS),
             median(&pre[0].parse, k, COLD_RUNS));
    return 0;
}

/* A file's text and its cold figures, gathered before anything is built in this process. */
typedef struct file {
    const char *path;
    char *text;
    size_t len;
    char cold[512];
} file;

/* The stages timed warm, each call on its own clock, in turn in one loop, so that drift in the
 * machine's load hits every stage alike. */
enum { PARSE, PARSE_ARENA, PARSE_FAST, COUNT, ENCODE, MEMO, MEMO_HIT, NSTAGES };
static const char *const stage_name[NSTAGES] = {"parse", "parse_arena", "parse_fast", "count",
                                                "encode", "memo", "memo_hit"};

/* The body and what the stages share. */
typedef struct warm {
    const file *f;
    const tok_enc *e;
    const char *model;
    const cJSON *body;
    const char **strs; /* the strings the count encodes, or NULL: no ENCODE stage */
    int nstr;
    struct prefixcount *pc; /* or NULL: no MEMO stages */
    tok_prefix_memo memo;
} warm;

/* Runs stage st once; returns 0 or -1. */
static int stage(warm *w, int st)
{
    tok_count_opts o = {.memo = &w->memo};
    tok_count_result r;
    uint64_t n;
    cJSON *b;

    switch (st) {
    case PARSE: /* malloc'd, then freed */
        b = cJSON_ParseWithLength(w->f->text, w->f->len);
        cJSON_Delete(b);
        return b != NULL ? 0 : -1;
    case PARSE_ARENA:
    case PARSE_FAST: /* into the arena, dropped whole with it (the gate deletes no tree) */
        arena.on = 1;
        arena.used = 0;
        b = st == PARSE_FAST ? jsonfast_parse(w->f->text, w->f->len, NULL)
                             : cJSON_ParseWithLength(w->f->text, w->f->len);
        arena.on = 0;
        return b != NULL ? 0 : -1;
    case COUNT:
        return tok_count_request(w->e, TOK_API_CHAT, w->body, w->model, 1.0, &r);
    case ENCODE:
        for (int i = 0; i < w->nstr; i++)
            if (tok_count(w->e, w->strs[i], strlen(w->strs[i]), 0, &n) != 0)
                return -1;
        return 0;
    default: /* MEMO: the memo emptied before (untimed); MEMO_HIT: right after MEMO */
        return tok_count_request_ex(w->e, TOK_API_CHAT, w->body, w->model, 1.0, &o, &r);
    }
}

/* Measures one request file warm and prints its line. Returns 0, or 1 after saying why. */
static int bench_file(const file *f, const char *encoding, const loop *l)
{
    warm w = {.f = f};
    cJSON *body = NULL;
    char *model_json = NULL; /* the model name as a JSON string, quotes and escapes included */
    char encode[64] = "null", memo[96] = "";
    tok_count_result r;
    int runs = 0, rc = 1;
    uint64_t overhead;
    double spent[NSTAGES] = {0}, total = 0, us[NSTAGES];

    if ((body = cJSON_ParseWithLength(f->text, f->len)) == NULL) {
        fprintf(stderr, "chatbench: %s is not valid JSON\n", f->path);
        goto out;
    }
    w.body = body;
    if ((w.e = enc_for(body, encoding, &w.model)) == NULL) {
        fprintf(stderr, "chatbench: unknown encoding %s\n", encoding ? encoding : "(model's)");
        goto out;
    }
    if (w.model != NULL)
        model_json = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(body, "model"));
    if (tok_count_request(w.e, TOK_API_CHAT, body, w.model, 1.0, &r) != 0) {
        fprintf(stderr, "chatbench: %s is not a chat request\n", f->path);
        goto out;
    }
    /* the encoder alone, on the same strings, when the body's count is only those */
    if ((w.strs = malloc(MAX_STRINGS * sizeof(*w.strs))) != NULL &&
        (w.nstr = strings_of(body, w.strs, &overhead)) >= 0) {
        uint64_t sum = 0, n;
        for (int i = 0; i < w.nstr; i++) {
            if (tok_count(w.e, w.strs[i], strlen(w.strs[i]), 0, &n) != 0)
                goto out;
            sum += n;
        }
        if (sum + overhead != r.tokens)
            w.nstr = -1;
    }
    if (w.nstr < 0) {
        free(w.strs);
        w.strs = NULL;
    }
    if ((w.pc = prefixcount_new(MEMO_MAX)) != NULL)
        prefixcount_memo(w.pc, &w.memo);

    do {
        for (int k = 0; k < NSTAGES; k++) {
            /* count and encode swap places every other run: neither always runs first */
            int st = runs % 2 == 1 && k == COUNT    ? ENCODE
                     : runs % 2 == 1 && k == ENCODE ? COUNT
                                                    : k;
            double t0;
            if ((st == ENCODE && w.strs == NULL) || (st >= MEMO && w.pc == NULL) ||
                (l->only >= 0 && st != l->only && !(l->only == MEMO_HIT && st == MEMO)))
                continue;
            if (st == MEMO) { /* a new conversation: the memo holds none of its prefixes */
                prefixcount_set_cap(w.pc, 0);
                prefixcount_set_cap(w.pc, MEMO_MAX);
            }
            t0 = bench_now();
            if (stage(&w, st) != 0) {
                fprintf(stderr, "chatbench: %s of %s failed\n", stage_name[st], f->path);
                goto out;
            }
            spent[st] += bench_now() - t0;
            total += bench_now() - t0;
        }
        runs++;
    } while (l->runs > 0 ? runs < l->runs : total < l->seconds || runs < MIN_RUNS);
    for (int st = 0; st < NSTAGES; st++)
        us[st] = spent[st] / runs * 1e6;
    if (l->only >= 0) { /* the one stage (with --only memo_hit, memo ran too) */
        printf("{\"file\":\"%s\",\"bytes\":%zu,\"encoding\":\"%s\",\"tokens\":%llu,\"runs\":%d,"
               "\"stage\":\"%s\",\"us\":%.2f}\n",
               f->path, f->len, tok_name(w.e), (unsigned long long)r.tokens, runs,
               stage_name[l->only], us[l->only]);
        rc = 0;
        goto out;
    }
    if (w.strs != NULL)
        snprintf(encode, sizeof(encode), "%.2f,\"walk_us\":%.2f", us[ENCODE],
                 us[COUNT] - us[ENCODE]);
    if (w.pc != NULL)
        snprintf(memo, sizeof(memo), ",\"memo_us\":%.2f,\"memo_hit_us\":%.2f", us[MEMO],
                 us[MEMO_HIT]);

    printf("{\"file\":\"%s\",\"bytes\":%zu,\"model\":%s,\"encoding\":\"%s\",\"tokens\":%llu,"
           "\"runs\":%d,\"parse_runs\":%d,\"parse_us\":%.2f,\"parse_arena_us\":%.2f,"
           "\"parse_fast_us\":%.2f,\"count_runs\":%d,\"count_us\":%.2f,\"encode_us\":%s%s,"
           "\"total_us\":%.2f,\"total_arena_us\":%.2f,\"total_fast_us\":%.2f%s}\n",
           strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path, f->len,
           model_json ? model_json : "null", tok_name(w.e), (unsigned long long)r.tokens, runs,
           runs, us[PARSE], us[PARSE_ARENA], us[PARSE_FAST], runs, us[COUNT], encode, memo,
           us[PARSE] + us[COUNT], us[PARSE_ARENA] + us[COUNT], us[PARSE_FAST] + us[COUNT], f->cold);
    fflush(stdout);
    rc = 0;
out:
    prefixcount_free(w.pc);
    free(w.strs);
    cJSON_free(model_json);
    cJSON_Delete(body);
    return rc;
}

int main(int argc, char **argv)
{
    const char *encoding = NULL;
    loop l = {1, 0, -1};
    cJSON_Hooks hooks = {.malloc_fn = arena_malloc, .free_fn = arena_free};
    file *files;
    int i, nfiles, rc = 0;

    if (argc == 5 && strcmp(argv[1], "--cold-child") == 0) /* see cold_child */
        return cold_run(argv[4], strcmp(argv[3], "-") == 0 ? NULL : argv[3],
                        strcmp(argv[2], "1") == 0, STDOUT_FILENO);
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            l.seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            l.runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc)
            encoding = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            for (l.only = 0; l.only < NSTAGES && strcmp(argv[i + 1], stage_name[l.only]) != 0;)
                l.only++;
            if (l.only == NSTAGES)
                break;
            i++;
        } else
            break;
    }
    if (i == argc || argv[i][0] == '-' || l.runs < 0 || !(l.seconds > 0)) {
        fprintf(stderr,
                "usage: %s [--seconds S] [--runs N] [--only STAGE] [--encoding E] FILE...\n"
                "STAGE: parse, parse_arena, parse_fast, count, encode, memo, memo_hit\n",
                argv[0]);
        return 2;
    }
    nfiles = argc - i;
    if ((files = calloc((size_t)nfiles, sizeof(*files))) == NULL ||
        (arena.base = malloc(ARENA_SIZE)) == NULL) {
        fprintf(stderr, "chatbench: out of memory\n");
        return 1;
    }
    cJSON_InitHooks(&hooks);
    /* every cold figure first, each from a child of this still unwarmed process */
    for (int j = 0; j < nfiles && rc == 0; j++) {
        file *f = &files[j];
        f->path = argv[i + j];
        if ((f->text = bench_slurp(f->path, &f->len)) == NULL) {
            rc = 1;
            break;
        }
        if (l.only >= 0)
            continue;
        if (cold_figures("/proc/self/exe", f->path, encoding, f->cold, sizeof(f->cold)) != 0) {
            fprintf(stderr, "chatbench: %s: the cold run failed\n", f->path);
            rc = 1;
            break;
        }
    }
    for (int j = 0; j < nfiles && rc == 0; j++)
        rc = bench_file(&files[j], encoding, &l);
    for (int j = 0; j < nfiles; j++)
        free(files[j].text);
    free(files);
    free(arena.base);
    return rc;
}
