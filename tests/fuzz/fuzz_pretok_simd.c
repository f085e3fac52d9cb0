/*
 * libFuzzer target: the block pre-tokenizer (pretok_simd) against the scalar scanner (pretok)
 * on arbitrary bytes made well-formed (each ill-formed sequence replaced by U+FFFD, as the
 * encoder does), every pattern (cl100k and o200k through their start masks, r50k through the
 * scalar scanner whole), the first byte choosing how many pieces a call may return. Then the
 * windows of the first 1 KB alone: at every alignment, the AVX2 masks (in a build for AVX2, where
 * the CPU has them) must be the SSE2 ones; at every piece's start, the start masks of cl100k and
 * o200k (after window_decide_hi) must be bit 0 and exactly the scalar scanner's starts below
 * the window's limit (o200k's may stop before it where letters of both cases are). Any
 * difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok_simd.h"
#include "tokenizer/pretok_simd-int.h"
#include "tokenizer/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The windows over the n bytes at s, n <= 1024: classifiers and start masks. */
static void check_masks(const uint8_t *s, size_t n)
{
    static const pretok_pattern pats[] = {PRETOK_CL100K, PRETOK_O200K};
    size_t starts[1025];

    for (size_t p = 0; p < 2; p++) {
        size_t np = 0, first = 0, next_hop = 0;
        /* what the windows before classified outside ASCII (window_decide_hi_memo): carried from
         * every piece start's window to the next, and along the block encoder's windows (each
         * from the last start of the one before) */
        hi_memo every = {.valid = 0}, hop = {.valid = 0};
        for (size_t i = 0; i < n; i = pretok_next(pats[p], s, i, n))
            starts[np++] = i;
        starts[np] = n;
        for (size_t base = 0; base + WIN <= n; base++) {
            win w;
            uint64_t t, want = 1;
            unsigned lim;
            classify_sse2(s + base, &w, 1);
#ifdef __AVX2__ /* classify_avx2 exists only in code compiled for AVX2 */
            if (p == 0 && __builtin_cpu_supports("avx2")) {
                win w2;
                classify_avx2(s + base, &w2, 1);
                if (memcmp(&w, &w2, sizeof(w)) != 0)
                    abort();
            }
#endif
            if (w.hi != 0)
                window_decide_hi(&w, s + base, pats[p] == PRETOK_O200K);
            while (starts[first] < base)
                first++;
            if (starts[first] != base)
                continue;
            t = pats[p] == PRETOK_O200K ? starts_o200k(&w, s + base) : starts_cl100k(&w, s + base);
            lim = window_limit(&w);
            if (pats[p] == PRETOK_O200K && w.both != 0 && /* see test_pretok_simd */
                64 - (unsigned)__builtin_clzll(t) < lim)
                lim = 64 - (unsigned)__builtin_clzll(t);
            for (size_t q = first; q < np && starts[q] < base + lim; q++)
                want |= (uint64_t)1 << (starts[q] - base);
            for (int k = 0; k < 2; k++) {
                hi_memo *m = k == 0 ? &every : &hop;
                win w3;
                if (k == 1 && base != next_hop)
                    continue;
                classify_sse2(s + base, &w3, 1);
                if (w3.hi != 0)
                    window_decide_hi_memo(&w3, s + base, pats[p] == PRETOK_O200K, m, base);
                if (memcmp(&w, &w3, sizeof(w)) != 0)
                    abort();
            }
            if (base == next_hop)
                next_hop = t > 1 ? base + 63 - (size_t)__builtin_clzll(t) : starts[first + 1];
            if (t != want)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const pretok_pattern pats[] = {PRETOK_CL100K, PRETOK_O200K, PRETOK_R50K};
    size_t ends[64], cap = size > 0 ? (size_t)(data[0] % 64) + 1 : 1;
    uint8_t *s = malloc(size * 3 + 1);
    size_t n = utf8_clean_len((const char *)data, size, (char *)s);

    for (size_t p = 0; p < sizeof(pats) / sizeof(pats[0]); p++) {
        size_t i = 0;
        while (i < n) {
            size_t m = pretok_simd_pieces(pats[p], s, i, n, ends, cap, NULL);
            if (m == 0 || m > cap)
                abort();
            for (size_t k = 0; k < m; k++) {
                size_t j = pretok_next(pats[p], s, i, n);
                if (ends[k] != j)
                    abort();
                i = j;
            }
        }
    }
    if (n > 1024) { /* cut at a character's start */
        n = 1024;
        while ((s[n] & 0xc0) == 0x80)
            n--;
    }
    check_masks(s, n);
    free(s);
    return 0;
}
