/*
 * tokengate-pretokbench: the pre-tokenizer alone (no hashing, no merging), the scalar scanner
 * (pretok_next, piece by piece) against the block one (pretok_simd_pieces, 256 pieces a call),
 * one thread.
 *
 * usage: tokengate-pretokbench [--encoding cl100k_base|o200k_base|r50k_base] [--passes N] FILE...
 *
 * For each file, the median of N passes (default 9) of each, as MB/s of the file (10^6 bytes),
 * the pieces found (which must be the same number), and the share of the file's bytes that the
 * block scanner decided from its masks rather than by the scalar scanner, per reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchutil.h"
#include "tokenizer/pretok_simd.h"

static volatile uint64_t sink;

static uint64_t run_scalar(pretok_pattern pat, const uint8_t *s, size_t n, size_t *pieces)
{
    uint64_t acc = 0;
    size_t m = 0;

    for (size_t i = 0; i < n; m++) {
        size_t j = pretok_next(pat, s, i, n);
        acc += j;
        i = j;
    }
    *pieces = m;
    return acc;
}

static uint64_t run_simd(pretok_pattern pat, const uint8_t *s, size_t n, size_t *pieces,
                         pretok_simd_stats *st)
{
    size_t ends[256], m = 0;
    uint64_t acc = 0;

    for (size_t i = 0; i < n;) {
        size_t k = pretok_simd_pieces(pat, s, i, n, ends, 256, st);
        for (size_t q = 0; q < k; q++)
            acc += ends[q];
        m += k;
        i = ends[k - 1];
    }
    *pieces = m;
    return acc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    pretok_pattern pat = PRETOK_CL100K;
    int passes = 9, i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc) {
            const char *e = argv[++i];
            pat = strcmp(e, "o200k_base") == 0 ? PRETOK_O200K
                  : strcmp(e, "cl100k_base") == 0 ? PRETOK_CL100K
                                                  : PRETOK_R50K;
        } else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
            passes = atoi(argv[++i]);
        else
            break;
    }
    if (i >= argc || passes < 1 || passes > 101 || argv[i][0] == '-') {
        fprintf(stderr, "usage: %s [--encoding E] [--passes N (1-101)] FILE...\n", argv[0]);
        return 2;
    }
    printf("| file | MB | scalar MB/s | block MB/s | ratio | pieces | by masks | non-ASCII | "
           "edge | tail |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (; i < argc; i++) {
        size_t n, p1 = 0, p2 = 0;
        char *text = bench_slurp(argv[i], &n);
        double ts[101], tv[101];
        pretok_simd_stats st = {0};
        const char *name = strrchr(argv[i], '/');

        if (text == NULL)
            return 1;
        name = name != NULL ? name + 1 : argv[i];
        run_simd(pat, (const uint8_t *)text, n, &p2, &st); /* warm, and the byte shares */
        for (int k = 0; k < passes; k++) {
            double t0 = bench_now();
            sink += run_scalar(pat, (const uint8_t *)text, n, &p1);
            double t1 = bench_now();
            sink += run_simd(pat, (const uint8_t *)text, n, &p2, NULL);
            double t2 = bench_now();
            ts[k] = t1 - t0;
            tv[k] = t2 - t1;
        }
        qsort(ts, (size_t)passes, sizeof(double), cmp_double);
        qsort(tv, (size_t)passes, sizeof(double), cmp_double);
        if (p1 != p2) {
            fprintf(stderr, "%s: %zu pieces from the scalar scanner, %zu from the block one\n",
                    name, p1, p2);
            return 1;
        }
        printf("| %s | %.2f | %.0f | %.0f | %.2f | %zu | %.1f%% | %.1f%% | %.1f%% | %.1f%% |\n",
               name, (double)n / 1e6, (double)n / 1e6 / ts[passes / 2],
               (double)n / 1e6 / tv[passes / 2], ts[passes / 2] / tv[passes / 2], p1,
               100.0 * (double)st.fast / (double)n,
               100.0 * (double)st.scalar[PRETOK_SIMD_NONASCII] / (double)n,
               100.0 * (double)st.scalar[PRETOK_SIMD_EDGE] / (double)n,
               100.0 * (double)st.scalar[PRETOK_SIMD_TAIL] / (double)n);
        free(text);
    }
    return 0;
}
