/*
 * libFuzzer target: arbitrary bytes through every encoding, special tokens allowed and not, on
 * every path of the encoder this CPU has (scalar, sse2, avx2: tok_set_path). Checks what must
 * hold for any input: no crash or sanitizer report, count equals the number of ids, every id
 * decodes, decoding gives back the input (valid UTF-8) or the input with each ill-formed
 * sequence replaced by U+FFFD, and the block paths give the scalar path's ids and counts
 * exactly (any difference aborts, after a line on stderr saying where); and the UTF-8
 * validator's AVX2 instance gives its scalar one's answer.
 *
 * Each path runs with the piece cache emptied first, and counts after emptying it again, so
 * that no path (and no count) is handed ids that another run computed and cached.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"
#include "tokenizer/utf8-int.h"
#include "tokenizer/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXENC 8 /* room for the encodings of tok_encoding_names */
#define MAXPATH 3

static tok_path paths[MAXPATH];
static size_t npaths;
static int nenc;

/* scalar first, then the block paths this CPU has */
static void find_paths(void)
{
    if (npaths > 0)
        return;
    while (tok_encoding_names[nenc] != NULL)
        nenc++;
    if (nenc > MAXENC)
        abort();
    paths[npaths++] = TOK_PATH_SCALAR;
    if (tok_set_path(TOK_PATH_SSE2) == 0)
        paths[npaths++] = TOK_PATH_SSE2;
    if (tok_set_path(TOK_PATH_AVX2) == 0)
        paths[npaths++] = TOK_PATH_AVX2;
    fprintf(stderr, "fuzz_tok: paths compared: scalar%s%s\n", npaths > 1 ? ", sse2" : "",
            npaths > 2 ? ", avx2" : "");
}

/* The ids and counts of the input on one path, by encoding and flags. */
typedef struct run {
    tok_ids ids[MAXENC][2];
    uint64_t count[MAXENC][2];
} run;

static void run_path(tok_path p, const char *s, size_t size, run *r)
{
    if (tok_set_path(p) != 0)
        abort();
    tok_cache_clear();
    for (int k = 0; k < nenc; k++)
        for (unsigned flags = 0; flags <= TOK_ALLOW_SPECIAL; flags++) {
            r->ids[k][flags] = (tok_ids){0};
            if (tok_encode(tok_encoding(tok_encoding_names[k]), s, size, flags,
                           &r->ids[k][flags]) != 0)
                abort();
        }
    tok_cache_clear();
    for (int k = 0; k < nenc; k++)
        for (unsigned flags = 0; flags <= TOK_ALLOW_SPECIAL; flags++)
            if (tok_count(tok_encoding(tok_encoding_names[k]), s, size, flags,
                          &r->count[k][flags]) != 0)
                abort();
}

/* Aborts when run got (path p) differs from the scalar run want in any id or count. */
static void same_as_scalar(tok_path p, const run *want, const run *got)
{
    for (int k = 0; k < nenc; k++)
        for (unsigned flags = 0; flags <= TOK_ALLOW_SPECIAL; flags++) {
            const tok_ids *w = &want->ids[k][flags], *g = &got->ids[k][flags];
            size_t d = 0;
            while (d < w->n && d < g->n && w->v[d] == g->v[d])
                d++;
            if (d < w->n || d < g->n) {
                fprintf(stderr,
                        "fuzz_tok: %s, flags %u, path %s: ids differ from scalar at token %zu "
                        "(scalar %zu ids, %s %zu)\n",
                        tok_encoding_names[k], flags, tok_path_name(p), d, w->n, tok_path_name(p),
                        g->n);
                abort();
            }
            if (got->count[k][flags] != want->count[k][flags]) {
                fprintf(stderr, "fuzz_tok: %s, flags %u, path %s: count %llu, scalar %llu\n",
                        tok_encoding_names[k], flags, tok_path_name(p),
                        (unsigned long long)got->count[k][flags],
                        (unsigned long long)want->count[k][flags]);
                abort();
            }
        }
}

static void free_run(run *r)
{
    for (int k = 0; k < nenc; k++)
        for (unsigned flags = 0; flags <= TOK_ALLOW_SPECIAL; flags++)
            tok_ids_free(&r->ids[k][flags]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char *want = malloc(size * 3 + 1), *got = malloc(size * 3 + 64);
    size_t want_len = utf8_clean_len(s, size, want);
    static run scalar, other;

    find_paths();
    /* the validator's instances agree, and with whether cleaning changed anything */
    if (utf8_valid_scalar(s, size) != (want_len == size && memcmp(want, s, size) == 0) ||
        (npaths > 2 && utf8_valid_avx2(s, size) != utf8_valid_scalar(s, size))) {
        fprintf(stderr, "fuzz_tok: the UTF-8 validators disagree on %zu bytes\n", size);
        abort();
    }
    run_path(TOK_PATH_SCALAR, s, size, &scalar);
    for (int k = 0; k < nenc; k++) {
        const tok_enc *e = tok_encoding(tok_encoding_names[k]);
        for (unsigned flags = 0; flags <= TOK_ALLOW_SPECIAL; flags++) {
            const tok_ids *ids = &scalar.ids[k][flags];
            size_t n = 0;
            if (scalar.count[k][flags] != ids->n)
                abort();
            for (size_t i = 0; i < ids->n; i++) {
                size_t len;
                const char *b = tok_token_bytes(e, ids->v[i], &len);
                if (b == NULL || n + len > size * 3 + 63)
                    abort();
                memcpy(got + n, b, len);
                n += len;
            }
            if (n != want_len || memcmp(got, want, n) != 0)
                abort();
        }
    }
    for (size_t q = 1; q < npaths; q++) {
        run_path(paths[q], s, size, &other);
        same_as_scalar(paths[q], &scalar, &other);
        free_run(&other);
    }
    free_run(&scalar);
    free(want);
    free(got);
    return 0;
}
