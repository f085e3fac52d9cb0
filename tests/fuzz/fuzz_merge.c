/*
 * libFuzzer target: the backtracking merge (tok_merge_bt) and, on pieces of up to
 * SHORT_MERGE_MAX bytes, the short merge (tokshort-int.h) against tiktoken's merge
 * (tok_merge_ref_small, tok_merge_ref_large) on arbitrary bytes made well-formed (each ill-formed
 * sequence replaced by U+FFFD, as the encoder does), in every encoding: the whole
 * input as one piece, and each piece that the pre-tokenizer finds in it. Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok-int.h"
#include "tokenizer/tokshort-int.h"
#include "tokenizer/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Both merges of the n bytes at p (n > 1); aborts when they differ. */
static void check(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *got, uint32_t *want,
                  uint64_t *dead)
{
    size_t m, mr;

    memset(dead, 0, (n / 64 + 1) * sizeof(uint64_t));
    m = tok_merge_bt(e, p, n, got, dead);
    if (n <= SMALL_PIECE) {
        int ascii = 1;
        mr = tok_merge_ref_small(e, p, n, want);
        if (m != mr || memcmp(got, want, m * sizeof(uint32_t)) != 0)
            abort();
        for (size_t i = 0; ascii && i < n; i++)
            ascii = p[i] < 0x80;
        if (n <= SHORT_MERGE_MAX &&
            ((ascii ? short_merge(e, p, n, got) : short_merge_any(e, p, n, got, 0)) != mr ||
             memcmp(got, want, mr * sizeof(uint32_t)) != 0))
            abort();
    } else {
        tok_ids ids = {0};
        sink k = {&ids, 0, 0};
        if (tok_merge_ref_large(e, p, n, &k) != 0)
            return;
        if (m != ids.n || memcmp(got, ids.v, m * sizeof(uint32_t)) != 0)
            abort();
        tok_ids_free(&ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"cl100k_base", "o200k_base", "p50k_base", "r50k_base"};
    uint8_t *s = malloc(size * 3 + 1);
    uint32_t *got = malloc((size * 3 + SMALL_PIECE) * sizeof(uint32_t));
    uint32_t *want = malloc((size * 3 + SMALL_PIECE) * sizeof(uint32_t));
    uint64_t *dead = malloc((size * 3 / 64 + 1) * sizeof(uint64_t));
    size_t n;

    if (s == NULL || got == NULL || want == NULL || dead == NULL)
        abort();
    n = utf8_clean_len((const char *)data, size, (char *)s);
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const tok_enc *e = tok_encoding(names[k]);
        if (e == NULL)
            abort();
        tok_prepare_long(e); /* the backtracking tables are built on first need */
        if (e->bt_tree == NULL)
            abort();
        if (n > 1)
            check(e, s, n, got, want, dead);
        for (size_t i = 0; i < n;) {
            size_t j = pretok_next(e->pat, s, i, n);
            if (j - i > 1)
                check(e, s + i, j - i, got, want, dead);
            i = j;
        }
    }
    free(s);
    free(got);
    free(want);
    free(dead);
    return 0;
}
