/*
 * Unit tests for the encoder's paths (tokenizer/tok.h: tok_path, tok_set_path): the block
 * encoder (sse2, and avx2 where the CPU has it) gives the scalar path's ids and counts, id for
 * id, on the benchmark corpus (TG_CORPUS, set by tests/meson.build), on slices of it cut at
 * random offsets, on every prefix and suffix of mixed snippets (so that pieces straddle the
 * 64-byte windows and the end of the text), and on generated text aimed at each rule of the
 * patterns; for cl100k_base and o200k_base, and for p50k_base and r50k_base, which always run
 * the scalar path. Any difference fails with the first differing token, its byte offset and the
 * bytes around it. Also: the path names, the choice made by TOK_PATH_AUTO, and
 * TOKENGATE_TOK_PATH read by a fresh process (this binary run again with --print-path).
 *
 * Each batch of inputs runs on one path at a time with the piece cache emptied first, so that
 * no path is handed ids that another path computed and cached.
 */
#include <check.h>
#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tokenizer/tok.h"
#include "tokenizer/utf8.h"
#include "run_suite.h"

extern char **environ;

static const char *const encodings[] = {"cl100k_base", "o200k_base", "p50k_base", "r50k_base"};
#define NENC (sizeof(encodings) / sizeof(encodings[0]))

static const tok_enc *enc(const char *name)
{
    const tok_enc *e = tok_encoding(name);
    ck_assert_msg(e != NULL, "encoding %s", name);
    return e;
}

/* The block paths this CPU has (sse2 always; avx2 when tok_set_path takes it), into p. */
static size_t block_paths(tok_path p[2])
{
    size_t n = 0;

    p[n++] = TOK_PATH_SSE2;
    if (tok_set_path(TOK_PATH_AVX2) == 0)
        p[n++] = TOK_PATH_AVX2;
    return n;
}

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

/* ---- batches of inputs, compared path against path ---------------------------------------- */

typedef struct input {
    size_t off, n;
    unsigned flags;
} input;

typedef struct batch {
    const char *label;
    char *buf;
    size_t len, cap;
    input *in;
    size_t nin, capin;
    uint64_t inputs, bytes; /* compared so far, for the summary line */
    double cpu;             /* seconds of CPU time spent comparing them */
} batch;

static void batch_add(batch *b, const void *s, size_t n, unsigned flags)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 4096;
        b->buf = realloc(b->buf, b->cap);
        ck_assert(b->buf != NULL);
    }
    if (b->nin == b->capin) {
        b->capin = b->capin ? b->capin * 2 : 256;
        b->in = realloc(b->in, b->capin * sizeof(input));
        ck_assert(b->in != NULL);
    }
    if (n > 0)
        memcpy(b->buf + b->len, s, n);
    b->in[b->nin++] = (input){b->len, n, flags};
    b->len += n;
}

/* n bytes at s for a message: printable ASCII as it is, the rest as \xHH. */
static void show(char *out, size_t cap, const uint8_t *s, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            out[o++] = (char)s[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", s[i]);
    }
    out[o] = '\0';
}

/* ids from..to of v with each token's bytes, for a message */
static void show_ids(char *out, size_t cap, const tok_enc *e, const tok_ids *v, size_t from,
                     size_t to)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = from; i < to && i < v->n && o + 64 < cap; i++) {
        size_t len = 0;
        const char *b = tok_token_bytes(e, v->v[i], &len);
        char t[64];
        show(t, sizeof(t), (const uint8_t *)(b ? b : "?"), b ? len : 1);
        o += (size_t)snprintf(out + o, cap - o, "%s%u\"%s\"", i > from ? " " : "", v->v[i], t);
    }
}

/*
 * Fails with where the ids of path p first differ from the scalar path's (want): the token's
 * index, its byte offset in the text as encoded (ill-formed sequences already U+FFFD), the
 * bytes around it and both id lists there.
 */
static void fail_ids(const batch *b, const tok_enc *e, size_t k, tok_path p, const tok_ids *want,
                     const tok_ids *got)
{
    const input *in = &b->in[k];
    char *clean = malloc(in->n * 3 + 1), around[400], wi[1200], gi[1200];
    size_t cn = utf8_clean_len(b->buf + in->off, in->n, clean), d = 0, off = 0, from, to;

    while (d < want->n && d < got->n && want->v[d] == got->v[d]) {
        size_t len = 0;
        tok_token_bytes(e, want->v[d], &len);
        off += len;
        d++;
    }
    from = off > 40 ? off - 40 : 0;
    to = off + 40 < cn ? off + 40 : cn;
    show(around, sizeof(around), (const uint8_t *)clean + from, to - from);
    show_ids(wi, sizeof(wi), e, want, d > 3 ? d - 3 : 0, d + 4);
    show_ids(gi, sizeof(gi), e, got, d > 3 ? d - 3 : 0, d + 4);
    fprintf(stderr,
            "%s: input #%zu (%zu bytes, flags %u), %s, path %s: ids differ from scalar at token "
            "%zu (scalar %zu tokens, %s %zu), byte %zu\n  bytes %zu..%zu: \"%s\"\n"
            "  scalar: %s\n  %s: %s\n",
            b->label, k, in->n, in->flags, tok_name(e), tok_path_name(p), d, want->n,
            tok_path_name(p), got->n, off, from, to, around, wi, tok_path_name(p), gi);
    free(clean);
    ck_abort_msg("%s: input #%zu, %s, path %s: ids differ from scalar at token %zu, byte %zu, "
                 "near \"%s\"",
                 b->label, k, tok_name(e), tok_path_name(p), d, off, around);
}

/*
 * Encodes (then, with the cache emptied again, counts) every input of b on path p into
 * ids[] and counts[].
 */
static void run_path(const batch *b, const tok_enc *e, tok_path p, tok_ids *ids, uint64_t *counts)
{
    ck_assert_int_eq(tok_set_path(p), 0);
    ck_assert_int_eq(tok_get_path(), p);
    tok_cache_clear();
    for (size_t k = 0; k < b->nin; k++) {
        const input *in = &b->in[k];
        ids[k] = (tok_ids){0};
        ck_assert_int_eq(tok_encode(e, b->buf + in->off, in->n, in->flags, &ids[k]), 0);
    }
    tok_cache_clear();
    for (size_t k = 0; k < b->nin; k++) {
        const input *in = &b->in[k];
        ck_assert_int_eq(tok_count(e, b->buf + in->off, in->n, in->flags, &counts[k]), 0);
    }
}

/* Compares every input of b on every path and encoding, then empties b. */
static void batch_check(batch *b)
{
    tok_path bp[2];
    size_t nbp = block_paths(bp);
    tok_ids *want = calloc(b->nin + 1, sizeof(tok_ids)), *got = calloc(b->nin + 1, sizeof(tok_ids));
    uint64_t *wantc = calloc(b->nin + 1, 8), *gotc = calloc(b->nin + 1, 8);

    clock_t t0 = clock();

    ck_assert(want != NULL && got != NULL && wantc != NULL && gotc != NULL);
    for (size_t x = 0; x < NENC; x++) {
        const tok_enc *e = enc(encodings[x]);
        run_path(b, e, TOK_PATH_SCALAR, want, wantc);
        for (size_t k = 0; k < b->nin; k++)
            ck_assert_msg(wantc[k] == want[k].n, "%s: input #%zu, %s, scalar: count %llu, %zu ids",
                          b->label, k, encodings[x], (unsigned long long)wantc[k], want[k].n);
        for (size_t q = 0; q < nbp; q++) {
            run_path(b, e, bp[q], got, gotc);
            for (size_t k = 0; k < b->nin; k++) {
                if (got[k].n != want[k].n ||
                    (want[k].n != 0 && /* no ids: v may be NULL, which memcmp may not get */
                     memcmp(got[k].v, want[k].v, want[k].n * sizeof(uint32_t)) != 0))
                    fail_ids(b, e, k, bp[q], &want[k], &got[k]);
                ck_assert_msg(gotc[k] == wantc[k],
                              "%s: input #%zu (%zu bytes), %s, path %s: tok_count gives %llu, "
                              "scalar %llu (and encode gave the same ids on both)",
                              b->label, k, b->in[k].n, encodings[x], tok_path_name(bp[q]),
                              (unsigned long long)gotc[k], (unsigned long long)wantc[k]);
                tok_ids_free(&got[k]);
            }
        }
        for (size_t k = 0; k < b->nin; k++)
            tok_ids_free(&want[k]);
    }
    b->inputs += b->nin;
    b->bytes += b->len;
    b->cpu += (double)(clock() - t0) / CLOCKS_PER_SEC;
    b->nin = 0;
    b->len = 0;
    free(want);
    free(got);
    free(wantc);
    free(gotc);
}

/* Checks what is left in b, prints what was compared and frees b. */
static void batch_done(batch *b)
{
    tok_path bp[2];
    size_t nbp = block_paths(bp);

    batch_check(b);
    printf("%s: %llu inputs, %llu bytes, %zu encodings, scalar against %s%s (%.1f s CPU)\n",
           b->label, (unsigned long long)b->inputs, (unsigned long long)b->bytes, NENC,
           tok_path_name(bp[0]), nbp > 1 ? " and avx2" : " (no avx2 on this CPU)", b->cpu);
    fflush(stdout);
    ck_assert_uint_gt(b->inputs, 0);
    free(b->buf);
    free(b->in);
}

/* Adds s to b, and checks b once it holds enough. */
static void add(batch *b, const void *s, size_t n, unsigned flags)
{
    batch_add(b, s, n, flags);
    if (b->len > (1u << 20) || b->nin >= 4096)
        batch_check(b);
}

static uint64_t rng;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* ---- the path's names and its choice --------------------------------------------------------- */

START_TEST(path_names)
{
    static const char *const names[] = {"auto", "scalar", "sse2", "avx2"};
    /* clang-format off */
    static const char *const bad[] = {
        "", "sse", "avx", "avx512", "scalar ", " sse2", "sse2x", "neon", "2"};
    /* clang-format on */
    tok_path p;

    for (int i = 0; i < 4; i++) {
        p = (tok_path)99;
        ck_assert_int_eq(tok_path_parse(names[i], &p), 0);
        ck_assert_int_eq(p, (tok_path)i);
        ck_assert_str_eq(tok_path_name((tok_path)i), names[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(tok_path_parse(bad[i], &p) == -1, "\"%s\" parsed as a path", bad[i]);
}
END_TEST

START_TEST(set_path_and_auto)
{
    tok_path best = cpu_has_avx2() ? TOK_PATH_AVX2 : TOK_PATH_SSE2;

    printf("set_path_and_auto: this CPU %s AVX2; auto is %s\n", cpu_has_avx2() ? "has" : "lacks",
           tok_path_name(best));
    ck_assert_int_eq(tok_set_path(TOK_PATH_SCALAR), 0);
    ck_assert_int_eq(tok_get_path(), TOK_PATH_SCALAR);
    ck_assert_int_eq(tok_set_path(TOK_PATH_AUTO), 0);
    ck_assert_int_eq(tok_get_path(), best);
    ck_assert_int_eq(tok_set_path(TOK_PATH_SSE2), 0);
    ck_assert_int_eq(tok_get_path(), TOK_PATH_SSE2);
    if (cpu_has_avx2()) {
        ck_assert_int_eq(tok_set_path(TOK_PATH_AVX2), 0);
        ck_assert_int_eq(tok_get_path(), TOK_PATH_AVX2);
    } else {
        ck_assert_int_eq(tok_set_path(TOK_PATH_AVX2), -1);
        ck_assert_int_eq(tok_get_path(), TOK_PATH_SSE2); /* unchanged */
    }
    ck_assert_int_eq(tok_set_path((tok_path)99), -1);
    ck_assert_int_ne(tok_get_path(), (tok_path)99);
    ck_assert_int_eq(tok_set_path(TOK_PATH_AUTO), 0);
    ck_assert_int_eq(tok_get_path(), best);
}
END_TEST

/* A mixed snippet that --print-path counts on both main encodings. */
static const char child_text[] =
    "Don't stop: it's 12345 caf\xc3\xa9s, \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80\r\n   "
    "x\xc2\xa0y "
    "HELLO'LL'S ALL-CAPS and\tsome    words; int main(void) { return 0; }\n\n\n";

/* With --print-path (a fresh process): its path after building an encoding, and the counts
 * of child_text in cl100k_base and o200k_base. */
static int print_path(void)
{
    uint64_t c1 = 0, c2 = 0;

    if (tok_count(tok_encoding("cl100k_base"), child_text, sizeof(child_text) - 1, 0, &c1) != 0 ||
        tok_count(tok_encoding("o200k_base"), child_text, sizeof(child_text) - 1, 0, &c2) != 0)
        return 1;
    printf("%s %llu %llu\n", tok_path_name(tok_get_path()), (unsigned long long)c1,
           (unsigned long long)c2);
    return 0;
}

/* Runs this binary with --print-path and TOKENGATE_TOK_PATH=value (unset when NULL); its
 * output into out. */
static void run_child(const char *value, char *out, size_t cap)
{
    char **env, self[4096], setting[128];
    char *argv[] = {self, "--print-path", NULL};
    size_t n = 0, o = 0;
    int fd[2], status;
    ssize_t r;
    pid_t pid;
    posix_spawn_file_actions_t fa;

    r = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ck_assert(r > 0);
    self[r] = '\0';
    while (environ[n] != NULL)
        n++;
    env = calloc(n + 2, sizeof(char *));
    n = 0;
    for (char **v = environ; *v != NULL; v++)
        if (strncmp(*v, "TOKENGATE_TOK_PATH=", 19) != 0)
            env[n++] = *v;
    if (value != NULL) {
        snprintf(setting, sizeof(setting), "TOKENGATE_TOK_PATH=%s", value);
        env[n++] = setting;
    }
    env[n] = NULL;
    ck_assert_int_eq(pipe(fd), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    ck_assert_int_eq(posix_spawn(&pid, self, &fa, NULL, argv, env), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    while (o + 1 < cap && (r = read(fd[0], out + o, cap - 1 - o)) > 0)
        o += (size_t)r;
    out[o] = '\0';
    close(fd[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "--print-path child failed");
    free(env);
}

START_TEST(env_chooses_the_path)
{
    const char *best = cpu_has_avx2() ? "avx2" : "sse2";
    const struct {
        const char *value, *want;
    } cases[] = {
        {NULL, best},    {"scalar", "scalar"}, {"sse2", "sse2"}, {"avx2", best},    {"auto", best},
        {"bogus", best}, {"", best},           {"sse", best},    {"scalar ", best},
    };
    char out[256], name[32], first[256] = "";
    unsigned long long c1, c2;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_child(cases[i].value, out, sizeof(out));
        printf("env_chooses_the_path: TOKENGATE_TOK_PATH=%s%s%s -> %s",
               cases[i].value ? "\"" : "(unset)", cases[i].value ? cases[i].value : "",
               cases[i].value ? "\"" : "", out);
        ck_assert_msg(sscanf(out, "%31s %llu %llu", name, &c1, &c2) == 3, "child printed \"%s\"",
                      out);
        ck_assert_msg(strcmp(name, cases[i].want) == 0,
                      "TOKENGATE_TOK_PATH=%s: the child runs %s, want %s",
                      cases[i].value ? cases[i].value : "(unset)", name, cases[i].want);
        /* every path counts the same */
        if (first[0] == '\0')
            snprintf(first, sizeof(first), "%llu %llu", c1, c2);
        snprintf(out, sizeof(out), "%llu %llu", c1, c2);
        ck_assert_msg(strcmp(out, first) == 0, "path %s counts %s, the default %s", name, out,
                      first);
    }
}
END_TEST

/* ---- the inputs ----------------------------------------------------------------------------- */

/* Reads the corpus file name into a malloc'd buffer, its length in *n; NULL for what is not a
 * corpus file (*.txt). */
static char *corpus_file(const char *dir, const char *name, size_t *n)
{
    char path[4096];
    FILE *f;
    long len;
    char *s;

    if (strlen(name) < 5 || strcmp(name + strlen(name) - 4, ".txt") != 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc((size_t)len + 1);
    ck_assert(s != NULL && fread(s, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return s;
}

/* Every corpus file whole, and 400 slices of each at random offsets (fixed seed), which start
 * and end anywhere, inside a character too (ill-formed at the cut). */
START_TEST(corpus_whole_and_sliced)
{
    const char *dir = getenv("TG_CORPUS");
    batch whole = {.label = "corpus files whole"}, sliced = {.label = "corpus slices"};
    DIR *d;
    struct dirent *de;
    int files = 0;

    ck_assert_msg(dir != NULL, "TG_CORPUS is not set (tests/meson.build sets it)");
    d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open the corpus directory %s", dir);
    rng = 0x2545f4914f6cdd1du;
    while ((de = readdir(d)) != NULL) {
        size_t n;
        char *s = corpus_file(dir, de->d_name, &n);
        if (s == NULL)
            continue;
        whole.label = de->d_name;
        add(&whole, s, n, 0);
        batch_check(&whole);
        for (int i = 0; i < 400; i++) {
            size_t at = next_rand() % n, len = i % 4 == 0 ? next_rand() % 5000 : next_rand() % 300;
            if (len > n - at)
                len = n - at;
            add(&sliced, s + at, len, i % 8 == 7 ? TOK_ALLOW_SPECIAL : 0);
        }
        free(s);
        files++;
    }
    closedir(d);
    ck_assert_msg(files >= 4, "only %d corpus files in %s", files, dir);
    whole.label = "corpus files whole";
    batch_done(&whole);
    batch_done(&sliced);
}
END_TEST

/* Mixed snippets of more than 300 bytes: every rule of the patterns near every offset. */
static const char *const snippets[] = {
    "Hello, World! It's 2024; we've 12345678 apples & they'LL cost $3.50/lb. DON'T PANIC!!\r\n"
    "\tdef f(x):\n        return x ** 2  # square\n\n\n    if a==b: print('ok')   \n"
    "The QUICK brown fox's jumped over 1,000,000 lazy dogs'  tails...  \"quoted\" (parens) "
    "[brackets] {braces} <angle> | pipe ~ tilde ` backtick\r\n\r\n   end   ",
    "caf\xc3\xa9 na\xc3\xafve \xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91 stra\xc3\x9f"
    "e "
    "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc \xf0\x9f\x98\x80\xf0\x9f\x91\x8d"
    "\xf0\x9f\x8f\xbd x\xc2\xa0y\xe3\x80\x80z\xc2\x85w 1\xc2\xbd \xd9\xa3\xd9\xa4 it'\xc5\xbf "
    "\xc5\xbf'\xc5\xbf \xea\xb0\x80\xeb\x82\x98\xeb\x8b\xa4 \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0"
    "\xb5\xd1\x82 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 e\xcc\x81\xcc\x82 \xe2\x80\xa8\xe2\x80"
    "\xa9 \xc7\x85\xc7\x86 ABCdef\xc3\x89\xc3\xa9 \xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5"
    "\x8d\xe0\xa4\xa4\xe0\xa5\x87 \xef\xbc\x91\xef\xbc\x92\xef\xbc\x93 \xf0\x9d\x9f\x99 "
    "\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87\xe3\x80\x82\xe3\x80"
    "\x80"
    "\xe3\x80\x80\xe3\x80\x80 \xc3\x89"
    "COLE \xc3\x89"
    "cole \xc3\xa9"
    "COLE'S DON\xe2\x80\x99T 42\xc2\xb2 "
    "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 \xf0\x9f\x87\xba"
    "\xf0\x9f\x87\xb8 \xc2\xa0\xc2\xa0\xc2\xa0x \xc2\x85\xc2\x85 \xe2\x80\x83y\r\n\xe2\x80\xa8 "
    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1 end",
    "    \n\n\n   \t\t  \r\n \r\n\r\n x  y   z    \xc2\xa0\xc2\xa0 a\n \n b \t\n\t c  '  ''  "
    "'s 's's 'S'T'RE 'rE 'Ve 'lL 'D'M 1 12 123 1234 12345 123456 1234567  a1b2c3 A1B2 x.y.z ..."
    "  !!!???  ---___===  +++  ***   \"\"\"  ''' ```   ;;;  :::  ///  \\\\\\  |||  "
    "                                                                    x"
    "11111111111111111111111111111111111111111111111111111111111111111111111 end",
    "ok <|endoftext|> a<|fim_prefix|>b<|fim_middle|>c<|fim_suffix|>d<|endofprompt|>e "
    "<|endoftext <|endoftext| <<|endoftext|>> <|im_start|> \xff\xfe bad \xed\xa0\x80 surrogate "
    "\xc0\x80 overlong \xe2\x82 cut \xf0\x9f\x98 cut \x80\x80 lone \xf4\x90\x80\x80 big "
    "\xc3\x28 \xe2\x28\xa1 don\x92t caf\xe9 <|endoftext\xff|> \xef\xbb\xbf bom "
    "<|endoftext|><|endoftext|>   <|endofprompt|>\n\n<|fim_suffix|> it's\xe2\x80\x99s 'LL "
    "x<|endoftext|>'s 1<|endoftext|>23 \xc3\xa9<|endoftext|>\xcc\x81 \xe6\x9d\xb1<|fim_prefix|>"
    "\xe4\xba\xac   <|endoftext|>   \r\n<|endoftext|>\r\n\xc2\xa0<|endofprompt|>\xc2\xa0 end",
};

/* Every prefix and every suffix of 0 to 300 bytes of each snippet (cuts inside characters
 * included), special tokens allowed and not. */
START_TEST(prefixes_and_suffixes)
{
    batch b = {.label = "snippet prefixes and suffixes"};

    for (size_t k = 0; k < sizeof(snippets) / sizeof(snippets[0]); k++) {
        size_t n = strlen(snippets[k]);
        ck_assert_uint_gt(n, 300);
        for (size_t len = 0; len <= 300; len++)
            for (unsigned flags = 0; flags <= TOK_ALLOW_SPECIAL; flags++) {
                add(&b, snippets[k], len, flags);
                add(&b, snippets[k] + n - len, len, flags);
                add(&b, snippets[k] + len, n - len, flags);
            }
    }
    batch_done(&b);
}
END_TEST

/* Random ASCII: letters of both cases, digits, punctuation, whitespace, apostrophes and CRLF,
 * and now and then any ASCII byte. */
START_TEST(ascii_soup)
{
    static const char *const parts[] = {
        "a",    "e",  "t",  "n", "s", "A", "Z",  "E", "x",  " ",  " ",   " ",   "  ", "\n",
        "\r\n", "\t", "\r", "0", "1", "9", "'",  "'", "'s", "'T", "'ll", "'RE", ".",  ",",
        "!",    "?",  "-",  "_", "(", ")", "\"", "/", "\\", "<|", "|>",  "  \n"};
    batch b = {.label = "ASCII soup"};
    char buf[520];

    rng = 0x9e3779b97f4a7c15u;
    for (int t = 0; t < 4000; t++) {
        size_t n = 0, want = next_rand() % 480;
        while (n < want) {
            uint32_t r = next_rand();
            if (r % 16 == 0)
                buf[n++] = (char)((r >> 8) % 128);
            else {
                const char *p = parts[(r >> 8) % (sizeof(parts) / sizeof(parts[0]))];
                size_t l = strlen(p);
                memcpy(buf + n, p, l);
                n += l;
            }
        }
        add(&b, buf, n, 0);
    }
    batch_done(&b);
}
END_TEST

/* Every contraction in every case, after and before each kind of character, with its
 * apostrophe at each offset around the windows' edges (64 and 128). */
START_TEST(contractions)
{
    static const char *const stems[] = {"s",  "t", "re",       "ve", "m",
                                        "ll", "d", "\xc5\xbf", "x",  "st"};
    static const char *const before[] = {
        "x", "X", " ", "1", "\xc3\xa9", "\xc3\x89", "'", "\n", "\xe6\x9d\xb1", ""};
    static const char *const after[] = {"", " ", "x", "S", "'", "1", "\n"};
    static const char *const apos[] = {"'", "\xe2\x80\x99"};
    static const char *const bgs[] = {"the cat sat ", " "}; /* words, or spaces */
    batch b = {.label = "contractions"};
    char buf[256];

    for (size_t s = 0; s < sizeof(stems) / sizeof(stems[0]); s++) {
        size_t sl = strlen(stems[s]), ncase = sl == 2 && (unsigned char)stems[s][0] < 0x80 ? 4 : 2;
        for (size_t c = 0; c < ncase; c++) {
            char stem[8];
            memcpy(stem, stems[s], sl + 1);
            for (size_t i = 0; i < sl && stem[i] > 0; i++)
                if (c >> i & 1)
                    stem[i] = (char)(stem[i] - 'a' + 'A');
            for (size_t x = 0; x < sizeof(before) / sizeof(before[0]); x++)
                for (size_t y = 0; y < sizeof(after) / sizeof(after[0]); y++)
                    for (size_t a = 0; a < 2; a++)
                        for (size_t at = 60; at <= 129; at = at == 66 ? 126 : at + 1) {
                            const char *bg = bgs[(at + x + y) % 2];
                            size_t n = 0, bl = strlen(before[x]);
                            if (a == 1 && at % 2 == 0)
                                continue; /* U+2019 is no contraction: fewer offsets */
                            for (size_t i = 0; i < at; i++)
                                buf[i] = bg[i % strlen(bg)];
                            n = at >= bl ? at - bl : 0;
                            memcpy(buf + n, before[x], bl);
                            n += bl;
                            n += (size_t)sprintf(buf + n, "%s%s%s", apos[a], stem, after[y]);
                            for (size_t i = 0; i < 12; i++)
                                buf[n + i] = bg[i % strlen(bg)];
                            add(&b, buf, n + (at % 3) * 6, 0);
                        }
        }
    }
    batch_done(&b);
}
END_TEST

/* Runs of each class, of every length around the windows' sizes, after 0 to 3 other bytes and
 * before each kind of end. */
START_TEST(long_runs)
{
    /* clang-format off */
    static const char *const fills[] = {
        "a", "Z", "aB", "7", " ", "\n", "\r\n", "\t", ".", "'", "!?", " a", " 1", "  x", "123 ",
        "\xc3\xa9", "\xc3\x89", "\xe6\x9d\xb1", "\xf0\x9f\x98\x80", "\xc2\xa0", "\xe3\x80\x80",
        "\xc2\x85", "\xcc\x81", "\xd9\xa3", " \xc3\xa9", "x\xc2\xa0", "\xc5\xbf", "\xea\xb0\x80",
        "\xe2\x80\xa8", "\xef\xbf\xbd", " \n"};
    /* clang-format on */
    static const size_t lens[] = {1,  2,  3,  4,  15, 16, 17,  31,  32,  33,  47,  48,  62, 63,
                                  64, 65, 66, 95, 96, 97, 127, 128, 129, 191, 192, 193, 260};
    static const char *const ends[] = {"", "x", " ", "1", "\n", "\xc3\xa9"};
    batch b = {.label = "long runs of one class"};
    char buf[1200];

    for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++)
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
            for (size_t pre = 0; pre < 4; pre++)
                for (size_t z = 0; z < sizeof(ends) / sizeof(ends[0]); z++) {
                    size_t fl = strlen(fills[f]), n = pre;
                    memcpy(buf, "ab ", pre > 3 ? 3 : pre);
                    for (size_t i = 0; i < lens[l]; i++, n += fl)
                        memcpy(buf + n, fills[f], fl);
                    memcpy(buf + n, ends[z], strlen(ends[z]));
                    add(&b, buf, n + strlen(ends[z]), 0);
                }
    batch_done(&b);
}
END_TEST

/* Random UTF-8 beyond ASCII: letters of both cases and title case, marks, numbers, every kind
 * of whitespace, CJK, Hangul, emoji (with modifiers and joiners), U+017F after an apostrophe. */
START_TEST(unicode_soup)
{
    /* clang-format off */
    static const char *const chars[] = {
        "a", "Z", " ", " ", "\n", "'", "5", ".", "\t", "s", "l", "\r\n", "\xc3\xa9", "\xc3\x89",
        "\xc5\xbf", "'\xc5\xbf", "\xc2\x85", "\xc2\xa0", "\xc2\xbd", "\xcc\x81", "\xe2\x80\x9c",
        "\xe2\x80\x99s", "\xe2\x80\xa8", "\xe3\x80\x80", "\xe4\xb8\xad", "\xe6\x96\x87",
        "\xea\xb0\x80", "\xd9\xa3", "\xce\xa3", "\xcf\x83", "\xc7\x85", "\xd0\x96", "\xd0\xb6",
        "\xe0\xa4\xa8", "\xe0\xa5\x8d", "\xe1\x9a\x80", "\xe2\x80\x8b", "\xef\xbb\xbf",
        "\xf0\x9f\x98\x80", "\xf0\x9f\x8f\xbd", "\xe2\x80\x8d", "\xf0\x9f\x87\xba",
        "\xf0\x9d\x9f\x99", "\xf0\xa0\x80\x80", "\xef\xbc\xa1", "\xe2\x85\xa0"};
    /* clang-format on */
    batch b = {.label = "Unicode soup"};
    char buf[1200];

    rng = 0x1234567887654321u;
    for (int t = 0; t < 4000; t++) {
        size_t n = 0, want = next_rand() % 200;
        for (size_t c = 0; c < want; c++) {
            const char *ch = chars[next_rand() % (sizeof(chars) / sizeof(chars[0]))];
            size_t l = strlen(ch);
            memcpy(buf + n, ch, l);
            n += l;
        }
        ck_assert(utf8_valid(buf, n));
        add(&b, buf, n, 0);
    }
    batch_done(&b);
}
END_TEST

/* Ill-formed UTF-8: random bytes, and text with ill-formed sequences (lone continuation bytes,
 * cut sequences, overlongs, surrogates ED A0..BF, values past U+10FFFF) dropped in. */
START_TEST(ill_formed)
{
    static const char *const bad[] = {"\xff",
                                      "\x80",
                                      "\xbf\xbf",
                                      "\xc3",
                                      "\xe2\x82",
                                      "\xf0\x9f\x98",
                                      "\xc0\x80",
                                      "\xe0\x80\x80",
                                      "\xed\xa0\x80",
                                      "\xed\xbf\xbf",
                                      "\xed\xa0\xbd\xed\xb8\x80",
                                      "\xf4\x90\x80\x80",
                                      "\xf8\x88",
                                      "\x92",
                                      "\xe9",
                                      "\xc3\x28"};
    static const char *const text[] = {
        "a", " ", "it", "'s", "1", "\n", "\xc3\xa9", "  ", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "X"};
    batch b = {.label = "ill-formed UTF-8"};
    char buf[1200];

    rng = 0xdeadbeefcafef00du;
    for (int t = 0; t < 1500; t++) {
        size_t n = next_rand() % 300;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)next_rand();
        add(&b, buf, n, t % 2 ? TOK_ALLOW_SPECIAL : 0);
    }
    for (int t = 0; t < 3000; t++) {
        size_t n = 0, want = next_rand() % 150;
        for (size_t c = 0; c < want; c++) {
            uint32_t r = next_rand();
            const char *p = r % 5 == 0 ? bad[(r >> 8) % (sizeof(bad) / sizeof(bad[0]))]
                                       : text[(r >> 8) % (sizeof(text) / sizeof(text[0]))];
            memcpy(buf + n, p, strlen(p));
            n += strlen(p);
        }
        add(&b, buf, n, 0);
    }
    batch_done(&b);
}
END_TEST

/* Special tokens at every offset around the windows' edges, allowed and not, whole and cut. */
START_TEST(special_tokens)
{
    static const char *const sp[] = {"<|endoftext|>",  "<|fim_prefix|>",  "<|fim_middle|>",
                                     "<|fim_suffix|>", "<|endofprompt|>", "<|endoftext",
                                     "<|endoftext|",   "<<|endoftext|>>", "<|im_start|>"};
    static const char *const bgs[] = {"a", " ", "x ", "1", "\n", "'s "};
    batch b = {.label = "special tokens"};
    char buf[300];

    for (size_t k = 0; k < sizeof(sp) / sizeof(sp[0]); k++)
        for (size_t g = 0; g < sizeof(bgs) / sizeof(bgs[0]); g++)
            for (size_t at = 0; at < 140; at++) {
                size_t gl = strlen(bgs[g]), sl = strlen(sp[k]), n;
                for (size_t i = 0; i < at; i++)
                    buf[i] = bgs[g][i % gl];
                memcpy(buf + at, sp[k], sl);
                n = at + sl;
                for (size_t i = 0; i < (at % 5) * 7; i++)
                    buf[n++] = bgs[g][i % gl];
                add(&b, buf, n, 0);
                add(&b, buf, n, TOK_ALLOW_SPECIAL);
            }
    batch_done(&b);
}
END_TEST

static void add_input_tests(TCase *tc)
{
    tcase_add_test(tc, corpus_whole_and_sliced);
    tcase_add_test(tc, prefixes_and_suffixes);
    tcase_add_test(tc, ascii_soup);
    tcase_add_test(tc, contractions);
    tcase_add_test(tc, long_runs);
    tcase_add_test(tc, unicode_soup);
    tcase_add_test(tc, ill_formed);
    tcase_add_test(tc, special_tokens);
}

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;
    tok_path bp[2];

    if (argc == 2 && strcmp(argv[1], "--print-path") == 0)
        return print_path(); /* before the suite is made: LeakSanitizer checks this exit too */
    s = suite_create("tokpath");
    tc = tcase_create("core");
    printf("test_tokpath: paths compared: scalar against sse2%s\n",
           block_paths(bp) > 1 ? " and avx2" : " (avx2: not on this CPU)");
    fflush(stdout);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, path_names);
    tcase_add_test(tc, set_path_and_auto);
    tcase_add_test(tc, env_chooses_the_path);
    add_input_tests(tc);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
