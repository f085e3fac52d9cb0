/*
 * The block pre-tokenizer. A window of 64 bytes is classified into one 64-bit mask per class;
 * the piece that starts at offset k of the window is then decided by finding the first byte at
 * or after some offset that leaves a class, one count-trailing-zeros each. A decision returns
 * the piece's end (an offset in the window, > k) or 0 and the reason it cannot decide.
 *
 * Byte classes (ASCII only; every byte >= 0x80 is in hi and in no other mask):
 *   let  A-Z a-z (exactly the ASCII \p{L})     dig  0-9 (the ASCII \p{N})
 *   ws   \t \n \v \f \r and space (\s)          nl   \r \n
 *   oth  every other ASCII byte ([^\s\p{L}\p{N}]), the apostrophe among them
 */
#include "tokenizer/pretok_simd.h"

#include "tokenizer/pretok_simd-int.h"

/* The piece at offset k of the window, of the pattern pat (cl100k or o200k, a constant where
 * this is inlined). */
static inline __attribute__((always_inline)) unsigned decide(pretok_pattern pat, const win *w,
                                                             const uint8_t *p, unsigned k, int *why)
{
    return pat == PRETOK_O200K ? decide_o200k(w, p, k, why) : decide_cl100k(w, p, k, why);
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
        int why = PRETOK_SIMD_PATTERN;
        size_t j;

        /* a non-ASCII byte first or second: every rule of both deciders hands the piece to the
         * scalar scanner, so no window is classified for it (multilingual text) */
        if (n - i >= WIN && s[i] < 0x80 && s[i + 1] < 0x80) {
            /* a window from i, and its pieces while the masks decide them */
            size_t base = i;
            unsigned e;
            classify_sse2(s + base, &w);
            while ((e = decide(pat, &w, s + base, (unsigned)(i - base), &why)) != 0) {
                fast += base + e - i;
                i = base + e;
                ends[count++] = i;
                if (count == cap || i - base >= WIN || n - i < WIN)
                    break;
            }
            /* a piece that ran past this window, not its first: a window from its start */
            if (e != 0 || (why == PRETOK_SIMD_EDGE && base != i))
                continue;
        } else {
            /* o200k has no contraction of its own: an apostrophe there is a prefix like any */
            why = n - i < WIN                            ? PRETOK_SIMD_TAIL
                  : s[i] == '\'' && pat == PRETOK_CL100K ? PRETOK_SIMD_APOS
                                                         : PRETOK_SIMD_NONASCII;
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
