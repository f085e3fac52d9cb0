/*
 * tokengate-tokstages: where the tokenizer's time goes, stage by stage, one thread.
 *
 * usage: tokengate-tokstages [--encoding E] [--passes N] FILE...
 *
 * For each file, the best of N passes (default 7) of each stage over the whole file, as MB/s of
 * the file (10^6 bytes) and nanoseconds per piece of the pre-tokenizer's output:
 *   pretok        the pre-tokenizer alone (pretok_next over the file);
 *   + hash        and each piece's key words and hash, as encode_ordinary makes them;
 *   + probe       and one load of each piece's cache set (not prefetched);
 *   count, cold   tok_count with the piece cache emptied before each pass (tokbench's figure);
 *   count, warm   tok_count with the cache left as the previous pass left it;
 * and then the merge alone (tok_merge_small) over the file's distinct pieces that are no token,
 * as nanoseconds per piece and MB/s of those pieces' bytes: the work that no cache can save the
 * first time a text is seen. The stages run the tokenizer's own static functions: this file
 * compiles tokenizer/tok.c into itself, so it links the tokenizer's other sources, not libtok.
 */
#include "tokenizer/tok.c"

#include <stdio.h>

#include "bench/benchutil.h"

#define NSTAGES 5

static const char *const stage_names[NSTAGES] = {"pretok", "+ hash", "+ probe", "count, cold",
                                                 "count, warm"};

/* One pass of stage k over the n bytes at s; returns something the compiler must keep. */
static uint64_t stage(int k, const tok_enc *e, const uint8_t *s, size_t n)
{
    cache_ent *c = tok_piece_cache();
    uint64_t acc = 0;

    if (k >= 3) {
        if (k == 3)
            tok_cache_clear();
        tok_count(e, (const char *)s, n, 0, &acc);
        return acc;
    }
    for (size_t i = 0; i < n;) {
        size_t j = pretok_next(e->pat, s, i, n), len = j - i;
        if (k >= 1 && len > 1 && len <= SMALL_PIECE) {
            ahead a;
            ahead_key(&a, s + i, len);
            acc += a.h;
            if (k == 2 && c != NULL && len <= CACHE_KEY)
                acc += cache_set(c, a.h)->w[0] == a.w[0];
        }
        acc += j;
        i = j;
    }
    return acc;
}

int main(int argc, char **argv)
{
    const char *encoding = "cl100k_base";
    int passes = 7, i;
    const tok_enc *e;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc)
            encoding = argv[++i];
        else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
            passes = atoi(argv[++i]);
        else
            break;
    }
    if (i >= argc || passes < 1 || argv[i][0] == '-') {
        fprintf(stderr, "usage: %s [--encoding E] [--passes N] FILE...\n", argv[0]);
        return 2;
    }
    if ((e = tok_encoding(encoding)) == NULL || tok_piece_cache() == NULL) {
        fprintf(stderr, "%s: no encoding %s, or no memory for its tables\n", argv[0], encoding);
        return 2;
    }
    for (; i < argc; i++) {
        size_t n, pieces = 0, single = 0, distinct = 0, dbytes = 0, hmask = ((size_t)1 << 22) - 1;
        char *text = bench_slurp(argv[i], &n);
        const uint8_t *s = (const uint8_t *)text;
        uint64_t *seen = calloc(hmask + 1, sizeof(uint64_t)), acc = 0;
        uint32_t *start = malloc(sizeof(uint32_t) * (n + 1)), *len = malloc(sizeof(uint32_t) * (n + 1));
        uint32_t tok[SMALL_PIECE];
        double best[NSTAGES + 1];

        if (text == NULL || seen == NULL || start == NULL || len == NULL || !utf8_valid(text, n)) {
            fprintf(stderr, "%s: cannot read %s as UTF-8 text\n", argv[0], argv[i]);
            return 1;
        }
        /* the distinct pieces that are no token, found by their XXH3 (a collision only drops
         * a piece from the sample) */
        for (size_t p = 0; p < n;) {
            size_t q = pretok_next(e->pat, s, p, n), l = q - p;
            pieces++;
            if (l == 1 || (l <= MAX_TOKEN_LEN && rank_of(e, s + p, l) != NO_RANK))
                single++;
            else if (l <= SMALL_PIECE) {
                uint64_t h = XXH3_64bits(s + p, l) | 1;
                size_t x = h & hmask;
                while (seen[x] != 0 && seen[x] != h)
                    x = (x + 1) & hmask;
                if (seen[x] == 0) {
                    seen[x] = h;
                    start[distinct] = (uint32_t)p;
                    len[distinct++] = (uint32_t)l;
                    dbytes += l;
                }
            }
            p = q;
        }
        for (int k = 0; k <= NSTAGES; k++)
            best[k] = 1e30;
        for (int r = 0; r < passes; r++) {
            for (int k = 0; k < NSTAGES; k++) {
                double t0 = bench_now();
                acc += stage(k, e, s, n);
                double el = bench_now() - t0;
                best[k] = el < best[k] ? el : best[k];
            }
            double t0 = bench_now();
            for (size_t d = 0; d < distinct; d++)
                acc += tok_merge_small(e, s + start[d], len[d], tok);
            double el = bench_now() - t0;
            best[NSTAGES] = el < best[NSTAGES] ? el : best[NSTAGES];
        }
        printf("%s, %s: %zu bytes, %zu pieces (%zu of one token), %zu distinct other pieces "
               "(%zu bytes); best of %d passes\n",
               strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i], encoding, n, pieces,
               single, distinct, dbytes, passes);
        printf("| stage | MB/s | ns per piece |\n|---|---:|---:|\n");
        for (int k = 0; k < NSTAGES; k++)
            printf("| %s | %.1f | %.1f |\n", stage_names[k], n / best[k] / 1e6,
                   best[k] * 1e9 / (double)pieces);
        printf("| merge alone, distinct other pieces | %.1f of their bytes | %.1f per such piece |\n",
               dbytes / best[NSTAGES] / 1e6, best[NSTAGES] * 1e9 / (double)(distinct ? distinct : 1));
        printf("(checksum %llu)\n\n", (unsigned long long)(acc & 0xff));
        free(seen);
        free(start);
        free(len);
        free(text);
    }
    return 0;
}
