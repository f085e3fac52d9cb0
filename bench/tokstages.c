/*
 * tokengate-tokstages: where the tokenizer's time goes, stage by stage, on each of the encoder's
 * paths (scalar, sse2, avx2: tok.h's tok_path), one thread.
 *
 * usage: tokengate-tokstages [--encoding E] [--passes N] [--paths scalar,sse2,avx2] [--json]
 *                            FILE...
 *
 * For each file and each path, the best (shortest) of N passes (default 7) of each stage over the
 * whole file, as MB/s of the file (10^6 bytes). Time is the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID), not wall time: on a machine shared with other work the time the
 * thread spends descheduled is left out (what the other work does to the CPU's caches is not).
 * The stages of one pass run one after the other, so that a busy machine slows all of them
 * alike; the best pass is the least disturbed one.
 *   pretok        the pre-tokenizer alone: on the scalar path pretok_next piece by piece; on
 *                 sse2 pretok_simd_pieces (the block pre-tokenizer, SSE2 classifier); on avx2
 *                 the same loop compiled a second time for AVX2 with the AVX2 classifier
 *                 (bench/tokstages_avx2.c). The pieces are the same on every path (checked).
 *   + lookup      the same, and for each batch of up to BATCH pieces: every piece's key words
 *                 and hash (ahead_key), a prefetch of its piece-cache set and vocabulary slot,
 *                 then the probes (the two cache ways compared, and vocab_rank for pieces of up
 *                 to MAX_TOKEN_LEN bytes): what the block design calls "batch, then probe",
 *                 the same code on every path; the cache is left empty, as on a cold pass.
 *   count, cold   tok_count with the piece cache emptied before the pass (tok_set_path(path));
 *   encode, cold  tok_encode into an id array whose memory is kept from pass to pass, the piece
 *                 cache emptied before the pass: tokbench's figure;
 *   encode, warm  tok_encode with the cache as the previous pass left it;
 *   merge         the merges that a cold pass makes on the path, timed alone: the pieces that
 *                 are no token and miss the piece cache, found by replaying the cold pass
 *                 against a private copy of the cache filled as the path fills it, then
 *                 tok_merge_small (tok_merge_large past SMALL_PIECE bytes) on each of them in
 *                 file order. Both paths remember every piece of up to SMALL_PIECE bytes (in
 *                 the piece cache, or the long cache when it is longer than CACHE_KEY bytes or
 *                 has more than CACHE_IDS ids) and merge longer pieces every time; the scalar
 *                 path (tokpiece-int.h, piece_encode) asks the cache first and remembers tokens
 *                 too, the block path (tokblock.c, tok_piece_merge) asks the vocabulary first
 *                 and remembers only the pieces it merged, so its cache loses fewer of them.
 * From these, the shares of the cold encode's time E (best pass) on each path:
 *   pre-tokenization = pretok / E;
 *   emitting = (encode, cold - count, cold) / E (storing ids);
 *   hashing and lookup = (encode, warm - pretok) / E - emitting (a warm pass is a cold one
 *   without its merges);
 *   merging = merge / E;
 *   rest = 1 - the four: filling the piece cache, the misses' extra lookups, and (when
 *   negative) the overlap of stages that the encoder gets and the stages timed alone do not.
 * The stages are timed apart, so the shares are estimates: the merges run back to back keep
 * the merge tables hotter in the CPU's caches than the encoder does when it interleaves them
 * with the rest (so the merge share is rather a floor). "+ lookup" is the first block design's
 * batch (every piece's cache set and vocabulary slot), kept as a stage of its own for
 * comparison: the block encoder's loop is now faster than it, so it enters no share. Use them to see which stage a change moved; bench/tokenizer-bench's whole-file
 * figures stay the ones that compare with peers.
 *
 * Human-readable tables by default; with --json one line per file and path for
 * bench/tokenizer-bench. Exits 1 when a file cannot be read or the paths' pieces differ, 2 on a
 * usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/benchutil.h"
#include "tokenizer/pretok_simd.h"
#include "tokenizer/tok-int.h"
#include "tokenizer/tokpiece-int.h"
#include "tokenizer/utf8.h"

/* The block pre-tokenizer's loop compiled for AVX2 with the AVX2 classifier: the pretok stage
 * of the avx2 path (bench/tokstages_avx2.c). The same contract as pretok_simd_pieces. */
size_t tokstages_pieces_avx2(pretok_pattern pat, const uint8_t *s, size_t i, size_t n, size_t *ends,
                             size_t cap, pretok_simd_stats *st);

/* This thread's CPU time, in seconds. */
static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define NPATHS 3
#define BATCH 64 /* pieces a batch of the lookup stage */

enum { ST_PRETOK, ST_LOOKUP, ST_COUNT_COLD, ST_ENC_COLD, ST_ENC_WARM, ST_MERGE, NSTAGES };

static const char *const stage_names[NSTAGES] = {"pretok",       "+ lookup",     "count, cold",
                                                 "encode, cold", "encode, warm", "merge"};

static const char *const stage_keys[NSTAGES] = {"pretok",      "lookup",      "count_cold",
                                                "encode_cold", "encode_warm", "merge"};

/* A merge that a cold pass makes: the piece at start, len bytes. */
typedef struct merge_at {
    uint32_t start, len;
} merge_at;

/* What one file holds for the stages. */
typedef struct file_ctx {
    const tok_enc *e;
    const uint8_t *s;
    size_t n;
    tok_ids ids; /* encode's output, its memory kept from pass to pass */
    struct {
        merge_at *at; /* the cold pass's merges, in file order */
        size_t n, bytes;
    } merges[2]; /* [0]: as the scalar path fills the cache, [1]: as the block path does */
    size_t pieces;
} file_ctx;

/* Up to cap pieces from s[i] on into ends[], on path p: see the header. */
static size_t pieces_on(tok_path p, const file_ctx *f, size_t i, size_t *ends, size_t cap)
{
    size_t k = 0;

    if (p == TOK_PATH_SSE2)
        return pretok_simd_pieces(f->e->pat, f->s, i, f->n, ends, cap, NULL);
    if (p == TOK_PATH_AVX2)
        return tokstages_pieces_avx2(f->e->pat, f->s, i, f->n, ends, cap, NULL);
    while (k < cap && i < f->n)
        ends[k++] = i = pretok_next(f->e->pat, f->s, i, f->n);
    return k;
}

/* The pretok stage, or with lookup the "+ lookup" stage, on path p; returns a checksum that
 * the compiler must keep, and the number of pieces in *pieces. */
static uint64_t stage_scan(tok_path p, const file_ctx *f, int lookup, size_t *pieces)
{
    cache_ent *c = tok_piece_cache();
    size_t ends[BATCH], m = 0;
    uint64_t acc = 0;
    ahead a[BATCH];

    for (size_t i = 0; i < f->n;) {
        size_t k = pieces_on(p, f, i, ends, BATCH);
        m += k;
        if (!lookup) {
            for (size_t q = 0; q < k; q++)
                acc += ends[q];
            i = ends[k - 1];
            continue;
        }
        for (size_t q = 0, at = i; q < k; at = ends[q++]) {
            size_t len = ends[q] - at;
            a[q].start = (uint32_t)at;
            a[q].len = (uint32_t)len;
            if (len > 1 && len <= SMALL_PIECE) {
                ahead_key(&a[q], f->s + at, len);
                if (c != NULL && len <= CACHE_KEY)
                    cache_prefetch(c, a[q].h);
                if (len <= MAX_TOKEN_LEN)
                    __builtin_prefetch(vocab_slot(f->e, &a[q]));
            }
        }
        for (size_t q = 0; q < k; q++) {
            size_t len = a[q].len;
            if (len <= 1 || len > SMALL_PIECE) {
                acc += len;
                continue;
            }
            if (c != NULL && len <= CACHE_KEY)
                acc += cache_find(c, &a[q], f->e->id) != NULL;
            if (len <= MAX_TOKEN_LEN)
                acc += vocab_rank(f->e, f->s + a[q].start, &a[q]);
        }
        i = ends[k - 1];
    }
    *pieces = m;
    return acc;
}

/* Finds the merges of a cold pass (see the header) into f->merges[block]: as the scalar path
 * fills the piece cache and the long cache (block 0) or as the block path does (1), on private
 * copies of both (the thread's long cache is set aside meanwhile). Returns 0, or -1 when memory
 * runs out. */
static int find_merges(file_ctx *f, int block)
{
    cache_ent *c = calloc(1, CACHE_SIZE);
    uint8_t *thread_long = tok_long_now;
    uint32_t tok[SMALL_PIECE];
    size_t cap = 1024;
    merge_at **at = &f->merges[block].at;
    size_t *nm = &f->merges[block].n;
    int rc = -1;

    *at = malloc(cap * sizeof(merge_at));
    *nm = f->merges[block].bytes = f->pieces = 0;
    tok_long_now = calloc(1, LONG_SIZE);
    if (c == NULL || *at == NULL || tok_long_now == NULL)
        goto out;
    for (size_t i = 0; i < f->n;) {
        size_t j = pretok_next(f->e->pat, f->s, i, f->n), len = j - i, m = 0;
        const uint8_t *p = f->s + i;
        const long_kind *lk;
        cache_ent *set = NULL, *ce = NULL;
        ahead a = {0};
        uint32_t r = NO_RANK;

        f->pieces++;
        if (len > 1 && len <= SMALL_PIECE) {
            a.start = (uint32_t)i;
            a.len = (uint32_t)len;
            ahead_key(&a, p, len);
            if (len <= CACHE_KEY && (ce = cache_find(c, &a, f->e->id)) == NULL)
                set = cache_pick(c, a.h);
            if ((ce != NULL && ce->nids != CACHE_LONG) ||
                ((ce != NULL || len > CACHE_KEY) && long_find(f->e, p, &a, &lk) != NULL)) {
                i = j;
                continue;
            }
            if (ce != NULL)
                set = NULL; /* marked, but gone from the long cache */
            if (len <= MAX_TOKEN_LEN && (r = vocab_rank(f->e, p, &a)) != NO_RANK) {
                if (block) { /* a token: the block path neither asks nor fills the cache */
                    i = j;
                    continue;
                }
                m = 1;
                tok[0] = r;
            }
        }
        if (len > 1 && m == 0) {
            if (*nm == cap) {
                merge_at *g = realloc(*at, 2 * cap * sizeof(merge_at));
                if (g == NULL)
                    goto out;
                *at = g;
                cap *= 2;
            }
            (*at)[*nm].start = (uint32_t)i;
            (*at)[(*nm)++].len = (uint32_t)len;
            f->merges[block].bytes += len;
            if (len <= SMALL_PIECE)
                m = tok_merge_small(f->e, p, len, tok);
        }
        if (len > 1 && len <= SMALL_PIECE) /* remembered as piece_finish does */
            piece_remember(f->e, p, &a, set, tok, m);
        i = j;
    }
    rc = 0;
out:
    free(c);
    free(tok_long_now);
    tok_long_now = thread_long;
    return rc;
}

/* The merges of a cold pass on the path (block: 1 for sse2 and avx2), back to back; returns a
 * checksum. Not inlined, so that callgrind can count it alone (--toggle-collect=stage_merge). */
__attribute__((noinline)) static uint64_t stage_merge(const file_ctx *f, int block)
{
    uint32_t tok[SMALL_PIECE];
    uint64_t acc = 0;

    for (size_t q = 0; q < f->merges[block].n; q++) {
        const uint8_t *p = f->s + f->merges[block].at[q].start;
        size_t len = f->merges[block].at[q].len;
        if (len <= SMALL_PIECE) {
            acc += tok_merge_small(f->e, p, len, tok);
        } else {
            sink k = {NULL, 0, 0};
            if (tok_merge_large(f->e, p, len, &k) != 0)
                return 0;
            acc += k.count;
        }
    }
    return acc;
}

/* One pass of stage st on path p (already set); returns a checksum, 0 pieces on failure. */
static uint64_t stage_run(int st, tok_path p, file_ctx *f, size_t *pieces)
{
    uint64_t acc = 0;

    *pieces = 1;
    switch (st) {
    case ST_PRETOK:
    case ST_LOOKUP:
        return stage_scan(p, f, st == ST_LOOKUP, pieces);
    case ST_COUNT_COLD:
        tok_cache_clear();
        if (tok_count(f->e, (const char *)f->s, f->n, 0, &acc) != 0)
            *pieces = 0;
        return acc;
    case ST_ENC_COLD:
    case ST_ENC_WARM:
        if (st == ST_ENC_COLD)
            tok_cache_clear();
        f->ids.n = 0;
        if (tok_encode(f->e, (const char *)f->s, f->n, 0, &f->ids) != 0)
            *pieces = 0;
        return f->ids.n;
    default:
        return stage_merge(f, p != TOK_PATH_SCALAR);
    }
}

/* Reports one file and path from the best time of each stage. */
static void report(const file_ctx *f, const char *file, const char *encoding, tok_path p,
                   const double *best, int passes, int json)
{
    double e = best[ST_ENC_COLD], sh[5];
    int b = p != TOK_PATH_SCALAR;

    sh[0] = best[ST_PRETOK] / e;
    sh[2] = best[ST_MERGE] / e;
    sh[3] = (best[ST_ENC_COLD] - best[ST_COUNT_COLD]) / e;
    /* a warm pass is a cold one without its merges: the rest of it, past the pre-tokenizer and
     * the storing of ids, is the hashing and the lookups (of the tables and the piece cache) */
    sh[1] = (best[ST_ENC_WARM] - best[ST_PRETOK]) / e - sh[3];
    sh[4] = 1 - sh[0] - sh[1] - sh[2] - sh[3];
    if (json) {
        printf("{\"file\":\"%s\",\"encoding\":\"%s\",\"path\":\"%s\",\"bytes\":%zu,\"pieces\":%zu,"
               "\"merges\":%zu,\"merge_bytes\":%zu,\"passes\":%d",
               file, encoding, tok_path_name(p), f->n, f->pieces, f->merges[b].n,
               f->merges[b].bytes, passes);
        for (int k = 0; k < NSTAGES; k++)
            printf(",\"%s_ms\":%.3f", stage_keys[k], best[k] * 1e3);
        printf(",\"share_pretok\":%.4f,\"share_lookup\":%.4f,\"share_merge\":%.4f,"
               "\"share_emit\":%.4f,\"share_rest\":%.4f}\n",
               sh[0], sh[1], sh[2], sh[3], sh[4]);
        return;
    }
    printf("%s, %s, path %s: %zu bytes, %zu pieces; a cold pass merges %zu of them (%zu bytes); "
           "best of %d passes\n| stage | MB/s | ns per piece |\n|---|---:|---:|\n",
           file, encoding, tok_path_name(p), f->n, f->pieces, f->merges[b].n, f->merges[b].bytes,
           passes);
    for (int k = 0; k < NSTAGES; k++)
        printf("| %s%s | %.1f | %.1f |\n", stage_names[k],
               k == ST_MERGE ? " (its time as MB/s of the whole file)" : "",
               (double)f->n / best[k] / 1e6, best[k] * 1e9 / (double)f->pieces);
    printf("shares of the cold encode: pre-tokenization %.0f%%, hashing and lookup %.0f%%, "
           "merging %.0f%%, emitting %.0f%%, rest %.0f%%\n\n",
           100 * sh[0], 100 * sh[1], 100 * sh[2], 100 * sh[3], 100 * sh[4]);
}

/* Measures one file on every path asked for. Returns 0, or 1 after saying why. */
static int bench_file(const tok_enc *e, const char *encoding, const char *path_arg, const int *want,
                      int passes, int json)
{
    file_ctx f = {0};
    char *text = bench_slurp(path_arg, &f.n);
    const char *file = strrchr(path_arg, '/') ? strrchr(path_arg, '/') + 1 : path_arg;
    double best[NPATHS][NSTAGES];
    size_t scan_pieces[NPATHS] = {0};
    uint64_t acc = 0;
    int rc = 1;

    f.e = e;
    f.s = (const uint8_t *)text;
    if (text == NULL || f.n == 0 || f.n > UINT32_MAX || !utf8_valid(text, f.n)) {
        fprintf(stderr, "tokstages: cannot read %s as UTF-8 text\n", path_arg);
        goto out;
    }
    if (find_merges(&f, 0) != 0 || find_merges(&f, 1) != 0) {
        fprintf(stderr, "tokstages: out of memory\n");
        goto out;
    }
    for (int p = 0; p < NPATHS; p++)
        for (int k = 0; k < NSTAGES; k++)
            best[p][k] = 1e30;
    for (int r = 0; r < passes; r++) {
        for (int p = 0; p < NPATHS; p++) {
            if (!want[p])
                continue;
            tok_set_path((tok_path)(TOK_PATH_SCALAR + p));
            for (int k = 0; k < NSTAGES; k++) {
                size_t pieces;
                double t0 = cpu_now();
                acc += stage_run(k, (tok_path)(TOK_PATH_SCALAR + p), &f, &pieces);
                double el = cpu_now() - t0;
                if (pieces == 0) {
                    fprintf(stderr, "tokstages: %s failed on %s\n", stage_names[k], file);
                    goto out;
                }
                if (k == ST_PRETOK)
                    scan_pieces[p] = pieces;
                best[p][k] = el < best[p][k] ? el : best[p][k];
            }
        }
    }
    for (int p = 0; p < NPATHS; p++) {
        if (!want[p])
            continue;
        if (scan_pieces[p] != f.pieces) {
            fprintf(stderr, "tokstages: %s: %zu pieces on path %s, %zu from pretok_next\n", file,
                    scan_pieces[p], tok_path_name((tok_path)(TOK_PATH_SCALAR + p)), f.pieces);
            goto out;
        }
        report(&f, file, encoding, (tok_path)(TOK_PATH_SCALAR + p), best[p], passes, json);
    }
    if (!json)
        printf("(checksum %llu)\n\n", (unsigned long long)(acc & 0xff));
    fflush(stdout);
    rc = 0;
out:
    tok_ids_free(&f.ids);
    free(f.merges[0].at);
    free(f.merges[1].at);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    const char *encoding = "cl100k_base";
    int passes = 7, json = 0, want[NPATHS] = {1, 1, 1}, i;
    const tok_enc *e;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc)
            encoding = argv[++i];
        else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc)
            passes = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--paths") == 0 && i + 1 < argc) {
            char buf[64], *save = NULL;
            snprintf(buf, sizeof(buf), "%s", argv[++i]);
            want[0] = want[1] = want[2] = 0;
            for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
                tok_path p;
                if (tok_path_parse(t, &p) != 0 || p == TOK_PATH_AUTO) {
                    fprintf(stderr, "%s: unknown path %s\n", argv[0], t);
                    return 2;
                }
                want[p - TOK_PATH_SCALAR] = 1;
            }
        } else
            break;
    }
    if (i >= argc || passes < 1 || passes > 1000 || argv[i][0] == '-') {
        fprintf(stderr,
                "usage: %s [--encoding E] [--passes N] [--paths scalar,sse2,avx2] [--json] "
                "FILE...\n",
                argv[0]);
        return 2;
    }
    if ((e = tok_encoding(encoding)) == NULL || tok_piece_cache() == NULL) {
        fprintf(stderr, "%s: no encoding %s, or no memory for its tables\n", argv[0], encoding);
        return 2;
    }
    for (int p = 0; p < NPATHS; p++) {
        if (want[p] && tok_set_path((tok_path)(TOK_PATH_SCALAR + p)) != 0) {
            fprintf(stderr, "%s: this CPU has no %s path; skipped\n", argv[0],
                    tok_path_name((tok_path)(TOK_PATH_SCALAR + p)));
            want[p] = 0;
        }
    }
    for (; i < argc; i++)
        if (bench_file(e, encoding, argv[i], want, passes, json) != 0)
            return 1;
    return 0;
}
