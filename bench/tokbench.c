/*
 * tokengate-tokbench: tokengate's tokenizer speed, one thread, for bench/tokenizer-bench.
 *
 * usage: tokengate-tokbench [--encoding E] [--seconds S] [--count] [--warm] [--cpu] FILE...
 *
 * For each file: reads it, encodes it once to warm the caches, then encodes it whole (or only
 * counts it, with --count) as many times as fit in S seconds (default 2, at least 3 times), and
 * prints one JSON line: {"file","encoding","path","mode","bytes","tokens","ids_hash","runs",
 * "seconds","mb_per_s","first_mb_per_s","tables_ms","long_ms","cache_ms"}. "path" is the encoder's path that
 * ran (tok_get_path: scalar, sse2 or avx2; the environment variable TOKENGATE_TOK_PATH chooses it,
 * see tok.h), "ids_hash" an FNV-1a hash of the first encode's ids (the same on every path, or
 * a path is wrong), "tables_ms" the time tok_encoding took to build the encoding's tables, and
 * "long_ms" the time tok_prepare_long took to build the long pieces' merge tables, which the
 * gate builds as it starts (gate/server.c) and an encode otherwise builds on its first long piece.
 * MB is 10^6 bytes, as the corpus README's figures are. The tokenizer's piece cache is emptied
 * before every run, so repeats of a word within the file hit it but the file as a whole is new;
 * with --warm it is left as the previous run left it. "first_mb_per_s" is the first encode of
 * the file, untimed by the others: on the first file of a process, the cold first call (the
 * tables built, long ones too, but little of them in the CPU's caches, and the piece cache empty). Before it,
 * a count of one byte makes this thread's piece cache (8 MiB zeroed, once per thread), timed
 * apart as "cache_ms", so that the first call is the text's own cost. With --cpu,
 * time is the thread's CPU time instead of wall time: steadier on a machine shared with other
 * work, since time the thread spends descheduled is not counted (cache pollution still is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/benchutil.h"
#include "tokenizer/tok.h"

static int use_cpu_time;

/* FNV-1a over the ids' four bytes each: two paths that agree on it agree on the ids. */
static uint64_t ids_hash(const tok_ids *ids)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < ids->n; i++)
        for (int b = 0; b < 4; b++)
            h = (h ^ (ids->v[i] >> (8 * b) & 0xff)) * 0x100000001b3ull;
    return h;
}

/* Now, in seconds: wall time, or this thread's CPU time with --cpu. */
static double now(void)
{
    struct timespec ts;

    if (!use_cpu_time)
        return bench_now();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *encoding = "cl100k_base";
    double seconds = 2;
    int count_only = 0, warm = 0, i;
    const tok_enc *e;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc)
            encoding = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--count") == 0)
            count_only = 1;
        else if (strcmp(argv[i], "--warm") == 0)
            warm = 1;
        else if (strcmp(argv[i], "--cpu") == 0)
            use_cpu_time = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--encoding E] [--seconds S] [--count] [--warm] [--cpu] FILE...\n",
                    argv[0]);
            return 2;
        }
    }
    double t0 = bench_now(), tables_ms, long_ms, cache_ms;
    uint64_t one;
    if ((e = tok_encoding(encoding)) == NULL) {
        fprintf(stderr, "%s: unknown encoding %s\n", argv[0], encoding);
        return 2;
    }
    tables_ms = (bench_now() - t0) * 1e3;
    fprintf(stderr, "tokbench: %s tables built in %.2f ms\n", encoding, tables_ms);
    t0 = bench_now();
    tok_prepare_long(e);
    long_ms = (bench_now() - t0) * 1e3;
    t0 = bench_now();
    if (tok_count(e, "x", 1, 0, &one) != 0)
        return 1;
    cache_ms = (bench_now() - t0) * 1e3;
    for (; i < argc; i++) {
        size_t len;
        char *text = bench_slurp(argv[i], &len);
        tok_ids ids = {0};
        uint64_t tokens = 0, hash;
        int runs = 0;
        double start, el, first;

        if (text == NULL)
            return 1;
        start = now();
        if (tok_encode(e, text, len, 0, &ids) != 0)
            return 1;
        first = now() - start;
        hash = ids_hash(&ids);
        el = 0;
        do {
            if (!warm)
                tok_cache_clear(); /* every run sees the text for the first time, as the peers do;
                                    * the clearing is not timed: it is no part of an encode */
            start = now();
            if (count_only) {
                if (tok_count(e, text, len, 0, &tokens) != 0)
                    return 1;
            } else {
                ids.n = 0;
                if (tok_encode(e, text, len, 0, &ids) != 0)
                    return 1;
                tokens = ids.n;
            }
            runs++;
            el += now() - start;
        } while (el < seconds || runs < 3);
        printf("{\"file\":\"%s\",\"encoding\":\"%s\",\"path\":\"%s\",\"mode\":\"%s\","
               "\"bytes\":%zu,\"tokens\":%llu,\"ids_hash\":\"%016llx\",\"runs\":%d,"
               "\"seconds\":%.4f,\"mb_per_s\":%.2f,\"first_mb_per_s\":%.2f,\"tables_ms\":%.2f,"
               "\"long_ms\":%.2f,\"cache_ms\":%.2f}\n",
               strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i], encoding,
               tok_path_name(tok_get_path()),
               count_only ? "count"
               : warm     ? "encode, warm"
                          : "encode",
               len, (unsigned long long)tokens, (unsigned long long)hash, runs, el,
               (double)len * runs / el / 1e6, (double)len / first / 1e6, tables_ms, long_ms, cache_ms);
        fflush(stdout);
        tok_ids_free(&ids);
        free(text);
    }
    return 0;
}
