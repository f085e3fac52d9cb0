/*
 * pretok_simd: a block pre-tokenizer. From a piece's start it classifies the next 64 bytes (four
 * SSE2 blocks of 16) into bit masks of ASCII letters, digits, whitespace, line breaks, other
 * ASCII and non-ASCII bytes, and computes from them, for all 64 offsets at once, where cl100k's
 * or o200k's pieces start in the window. What a window cannot decide (the piece at a non-ASCII
 * byte or next to one, a piece that runs past the 64 bytes, the last 63 bytes of the text) goes
 * to the exact scalar scanner (pretok.h), so the pieces are the scalar pre-tokenizer's, always.
 * r50k's pattern goes to the scalar scanner whole. The block encoder (tokblock-int.h) uses the
 * same start masks; this API is the pre-tokenizer alone, for tests and benchmarks.
 */
#ifndef TOK_PRETOK_SIMD_H
#define TOK_PRETOK_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/pretok.h"

/* Why bytes went to the scalar scanner (the index into pretok_simd_stats.scalar). */
enum {
    PRETOK_SIMD_NONASCII, /* a byte >= 0x80 in the window that kept it from deciding */
    PRETOK_SIMD_EDGE,     /* an ASCII window that decides nothing: a piece that reaches its end */
    PRETOK_SIMD_TAIL,     /* the last 63 bytes of the text */
    PRETOK_SIMD_PATTERN,  /* a pattern with no block scanner (r50k) */
    PRETOK_SIMD_NREASONS,
};

/* Bytes of pieces decided by the masks, and by the scalar scanner per reason. */
typedef struct pretok_simd_stats {
    uint64_t fast;
    uint64_t scalar[PRETOK_SIMD_NREASONS];
} pretok_simd_stats;

/*
 * Finds up to cap consecutive pieces of pattern pat from s[i] on (i < n) and writes the end of
 * each to ends[] (so the first piece is s[i..ends[0]), the next s[ends[0]..ends[1]), ...). The n
 * bytes at s must be well-formed UTF-8. Returns the number of pieces written: 0 only when i >= n
 * or cap == 0. Every end is exactly what pretok_next would return from the previous end. When st
 * is not NULL, adds the bytes of the pieces found to its counters.
 */
size_t pretok_simd_pieces(pretok_pattern pat, const uint8_t *s, size_t i, size_t n, size_t *ends,
                          size_t cap, pretok_simd_stats *st);

#endif
