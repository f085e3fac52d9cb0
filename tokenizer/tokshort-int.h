/*
 * tokshort-int: tiktoken's merge for a short piece (2 to SHORT_MERGE_MAX bytes), above all the
 * ASCII pieces that are no token in English and code: eight or nine bytes on average, about
 * 23,000 of them in a pass over en_prose. tok_merge_ref_small spends most of such a merge on
 * branches that a predictor cannot learn (where the scan for the lowest key stops, the length
 * classes of each pair's key) and on loads that must not read past the piece. Here the piece is
 * copied into a zero-padded buffer first, so every pair's key words are whole 8-byte loads,
 * masked; the scan for the lowest key runs over a fixed width; and the pair's hash is both
 * mixes, selected. A piece that is not ASCII starts as tok_merge_ref_small's does (merge_init:
 * some characters whole). The keys, the order of merges and so the ids are tok_merge_ref_small's.
 *
 * Static inline, so that the block encoder's AVX2 instance (tokblock_avx2.c) compiles it for
 * AVX2 as well. Not for use outside tokenizer/.
 */
#ifndef TOK_TOKSHORT_INT_H
#define TOK_TOKSHORT_INT_H

#include <string.h>

#include "tokenizer/tok-int.h"

#define SHORT_MERGE_MAX 24 /* the longest piece short_merge takes (the piece cache's key) */

/* 8 bytes at p, little-endian (p may be unaligned). */
static inline uint64_t short_ld(const uint8_t *p)
{
    uint64_t w;

    memcpy(&w, p, 8);
    return w;
}

/*
 * The rank of the pair of n bytes at q (3 <= n <= SHORT_MERGE_MAX; the 8 bytes after the pair
 * are readable) or NO_RANK: pair_rank's answer, with its key words (load_k8, load_rest) made from
 * whole loads and its hash computed both ways and selected. window_ahead (tokblock-int.h) makes
 * a piece's words the same way but with masks: one helper for both measured 11-23 % more
 * instructions in the merges, whose pair lengths a predictor learns.
 */
static inline __attribute__((always_inline)) uint32_t short_pair(const tok_enc *e,
                                                                 const uint8_t *q, size_t n)
{
    pair_q k;
    uint64_t w0 = short_ld(q), w1 = short_ld(q + (n > 16 ? 8 : n >= 8 ? n - 8 : 0)),
             w2 = short_ld(q + (n > 16 ? n - 8 : 0));

    k.w[0] = n < 8 ? w0 & (((uint64_t)1 << (n * 8)) - 1) : w0;
    k.w[1] = n >= 8 ? w1 : 0; /* at 8 bytes too, as the whole-piece table holds the key */
    k.w[2] = n > 16 ? w2 : 0;
    {
        uint64_t hs = hash_short(k.w[0], n), hl = hash_long(k.w[0], k.w[1], k.w[2], n);
        k.h = n > 8 ? hl : hs;
    }
    return pair_ask(e, q, n, &k);
}

/* The lowest of the first W keys. */
#define SHORT_MIN(W)                                                                               \
    static inline __attribute__((always_inline)) uint32_t short_min##W(const uint32_t *key)       \
    {                                                                                              \
        uint32_t best = UINT32_MAX;                                                                \
        for (size_t i = 0; i < (W); i++)                                                           \
            best = key[i] < best ? key[i] : best;                                                  \
        return best;                                                                               \
    }
SHORT_MIN(8)
SHORT_MIN(16)
SHORT_MIN(24)
#undef SHORT_MIN

/*
 * tiktoken's merge of the n ASCII bytes at p (1 < n <= SHORT_MERGE_MAX), its ids left in tok
 * (room for n); returns how many. width is 8, 16 or 24, at least n: the keys scanned.
 */
static inline __attribute__((always_inline)) size_t short_merge_w(const tok_enc *e,
                                                                  const uint8_t *p, size_t n,
                                                                  uint32_t *tok, size_t width,
                                                                  int ascii)
{
    uint8_t buf[SHORT_MERGE_MAX + 16] = {0};
    uint32_t key[SHORT_MERGE_MAX];
    uint16_t next[SHORT_MERGE_MAX + 1], prev[SHORT_MERGE_MAX + 1];
    size_t m = 0;

    memcpy(buf, p, n);
    for (size_t i = 0; i < SHORT_MERGE_MAX; i++)
        key[i] = UINT32_MAX;
    if (ascii) {
        for (size_t i = 0; i < n; i++) {
            uint32_t r = e->pair2[buf[i] << 8 | buf[i + 1]];
            tok[i] = e->byte_rank[buf[i]];
            next[i] = (uint16_t)(i + 1);
            prev[i] = (uint16_t)(i - 1); /* the first's is never read */
            key[i] = r == NO_RANK ? UINT32_MAX : r << 8 | (uint32_t)i;
        }
        key[n - 1] = UINT32_MAX; /* the last part: nothing to its right (pair2 of x, 0 may be one) */
    } else {
        merge_init(e, buf, n, tok, key, next, prev); /* characters that may start whole do */
    }
    next[n] = (uint16_t)n;
    for (;;) {
        uint32_t best = width == 8 ? short_min8(key) : width == 16 ? short_min16(key)
                                                                   : short_min24(key);
        if (best == UINT32_MAX)
            break;
        size_t at = best & 0xff, right = next[at], after = next[right];
        tok[at] = best >> 8;
        key[right] = UINT32_MAX;
        next[at] = (uint16_t)after;
        prev[after] = (uint16_t)at;
        if (after < n) {
            uint32_t r = short_pair(e, buf + at, next[after] - at);
            key[at] = r == NO_RANK ? UINT32_MAX : r << 8 | (uint32_t)at;
        } else {
            key[at] = UINT32_MAX;
        }
        if (at > 0) {
            size_t left = prev[at];
            uint32_t r = short_pair(e, buf + left, after - left);
            key[left] = r == NO_RANK ? UINT32_MAX : r << 8 | (uint32_t)left;
        }
    }
    for (size_t i = 0; i < n; i = next[i])
        tok[m++] = tok[i]; /* m <= i: the ids move only towards the front */
    return m;
}

/*
 * short_merge_w at the narrowest width that holds n: one branch a piece, none a merge. ascii: the
 * piece is all ASCII (its parts are its bytes); else it starts as tok_merge_ref_small's does,
 * some characters whole (merge_init).
 */
static inline __attribute__((always_inline)) size_t short_merge_any(const tok_enc *e,
                                                                    const uint8_t *p, size_t n,
                                                                    uint32_t *tok, int ascii)
{
    if (n <= 8)
        return short_merge_w(e, p, n, tok, 8, ascii);
    if (n <= 16)
        return short_merge_w(e, p, n, tok, 16, ascii);
    return short_merge_w(e, p, n, tok, 24, ascii);
}

/* short_merge_any on an ASCII piece. */
static inline __attribute__((always_inline)) size_t short_merge(const tok_enc *e,
                                                                const uint8_t *p, size_t n,
                                                                uint32_t *tok)
{
    return short_merge_any(e, p, n, tok, 1);
}

#endif
