/*
 * The block pre-tokenizer. From a piece's start with at least 64 bytes left, the 64 bytes there
 * are classified into one 64-bit mask per class and the pattern's start mask is computed from
 * them (pretok_simd-int.h): the pieces between its bits are written out at once, and the next
 * window begins at its highest bit. A window that decides nothing (a character the masks cannot
 * say near its start, a piece longer than the window), and the text's last 63 bytes, give one
 * piece to the scalar scanner (pretok_next), after which the block scanner tries again.
 */
#include "tokenizer/pretok_simd.h"

#include <string.h>

#include "tokenizer/pretok_simd-int.h"

/* The start mask of the window w at p, of the pattern pat (cl100k or o200k, a constant where
 * this is inlined). */
static inline __attribute__((always_inline)) uint64_t starts(pretok_pattern pat, const win *w,
                                                             const uint8_t *p)
{
    return pat == PRETOK_O200K ? starts_o200k(w, p) : starts_cl100k(w, p);
}

/* pretok_simd_pieces for cl100k or o200k, pat a constant where this is inlined. */
static inline __attribute__((always_inline)) size_t block_pieces(pretok_pattern pat,
                                                                 const uint8_t *s, size_t i,
                                                                 size_t n, size_t *ends, size_t cap,
                                                                 pretok_simd_stats *st)
{
    size_t count = 0;
    uint64_t fast = 0, slow[PRETOK_SIMD_NREASONS] = {0};
    win w;

    while (count < cap && i < n) {
        int why = PRETOK_SIMD_TAIL;
        size_t j;

        if (n - i >= WIN) {
            size_t base = i;
            uint64_t t;
            classify_sse2(s + base, &w, pat == PRETOK_O200K);
            if (w.hi != 0)
                window_decide_hi(&w, s + base, pat == PRETOK_O200K);
            t = starts(pat, &w, s + base) & ~(uint64_t)1;
            if (t != 0) {
                /* the pieces between the mask's bits, up to cap; the next window from the last
                 * end */
                do {
                    i = base + (size_t)__builtin_ctzll(t);
                    ends[count++] = i;
                    t &= t - 1;
                } while (t != 0 && count < cap);
                fast += i - base;
                continue;
            }
            /* nothing decided: a character the masks cannot say (whitespace or a number
             * outside ASCII, ...) lowered the window's limit, or the piece runs past the window */
            why = w.hi != 0 ? PRETOK_SIMD_NONASCII : PRETOK_SIMD_EDGE;
        }
        j = pretok_next(pat, s, i, n);
        slow[why] += j - i;
        ends[count++] = j;
        i = j;
    }
    if (st != NULL) {
        st->fast += fast;
        for (int r = 0; r < PRETOK_SIMD_NREASONS; r++)
            st->scalar[r] += slow[r];
    }
    return count;
}

size_t pretok_simd_pieces(pretok_pattern pat, const uint8_t *s, size_t i, size_t n, size_t *ends,
                          size_t cap, pretok_simd_stats *st)
{
    size_t count = 0, j0 = i;

    if (pat == PRETOK_CL100K)
        return block_pieces(PRETOK_CL100K, s, i, n, ends, cap, st);
    if (pat == PRETOK_O200K)
        return block_pieces(PRETOK_O200K, s, i, n, ends, cap, st);
    /* patterns with no block scanner: the scalar one, piece by piece */
    while (count < cap && i < n) {
        i = pretok_next(pat, s, i, n);
        ends[count++] = i;
    }
    if (st != NULL)
        st->scalar[PRETOK_SIMD_PATTERN] += i - j0;
    return count;
}
