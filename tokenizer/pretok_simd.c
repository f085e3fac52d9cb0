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

#include <emmintrin.h>

#define WIN 64

typedef struct win {
    uint64_t let, dig, ws, nl, oth, hi, apos;
} win;

/* The masks of the 64 bytes at p, sixteen at a time. */
static inline void classify(const uint8_t *p, win *w)
{
    const __m128i a = _mm_set1_epi8('a'), z25 = _mm_set1_epi8(25), x20 = _mm_set1_epi8(0x20);
    const __m128i d0 = _mm_set1_epi8('0'), z9 = _mm_set1_epi8(9), tab = _mm_set1_epi8(9);
    const __m128i z4 = _mm_set1_epi8(4), sp = _mm_set1_epi8(' '), lf = _mm_set1_epi8('\n');
    const __m128i cr = _mm_set1_epi8('\r'), ap = _mm_set1_epi8('\'');

    w->let = w->dig = w->ws = w->nl = w->oth = w->hi = w->apos = 0;
    for (int q = 0; q < WIN / 16; q++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * q));
        /* x <= bound as unsigned bytes: min(x, bound) == x */
        __m128i t = _mm_sub_epi8(_mm_or_si128(v, x20), a);
        uint64_t let = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(t, z25), t));
        __m128i u = _mm_sub_epi8(v, d0);
        uint64_t dig = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(u, z9), u));
        __m128i c = _mm_sub_epi8(v, tab);
        __m128i wsv = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(c, z4), c), _mm_cmpeq_epi8(v, sp));
        uint64_t ws = (uint16_t)_mm_movemask_epi8(wsv);
        uint64_t nl = (uint16_t)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
        uint64_t hi = (uint16_t)_mm_movemask_epi8(v);
        uint64_t apos = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, ap));
        int sh = 16 * q;

        w->let |= let << sh;
        w->dig |= dig << sh;
        w->ws |= ws << sh;
        w->nl |= nl << sh;
        w->hi |= hi << sh;
        w->apos |= apos << sh;
        w->oth |= (~(let | dig | ws | hi) & 0xffff) << sh;
    }
}

/* The first offset >= k (k < 64) whose bit in m is clear; 64 when there is none. */
static inline unsigned first_clear(uint64_t m, unsigned k)
{
    uint64_t x = ~(m >> k);

    return x != 0 ? k + (unsigned)__builtin_ctzll(x) : WIN;
}

#define BIT(m, k) (((m) >> (k)) & 1)

/* \p{L}+ continued from offset k (the run has started before it): its end, or 0 and *why. */
static inline unsigned letters_from(const win *w, unsigned k, int *why)
{
    unsigned e = k < WIN ? first_clear(w->let, k) : WIN;

    if (e >= WIN) {
        *why = PRETOK_SIMD_EDGE;
        return 0;
    }
    if (BIT(w->hi, e)) {
        *why = PRETOK_SIMD_NONASCII; /* a non-ASCII letter may continue the run */
        return 0;
    }
    return e;
}

/*
 * The end of cl100k's piece at offset k of the window, or 0 with the reason in *why. The
 * alternatives in the pattern's order:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+
 */
static inline unsigned decide_cl100k(const win *w, const uint8_t *p, unsigned k, int *why)
{
    unsigned e, j;

    if (BIT(w->hi, k)) {
        *why = PRETOK_SIMD_NONASCII;
        return 0;
    }
    if (BIT(w->apos, k)) {
        /* (?i:'s|'t|'re|'ve|'m|'ll|'d), with ASCII letters after the apostrophe; when it does
         * not match, the apostrophe is an other character like any punctuation */
        uint8_t a, b;
        if (k + 2 >= WIN) { /* offsets k + 1 and k + 2 are read */
            *why = PRETOK_SIMD_EDGE;
            return 0;
        }
        if (BIT(w->hi, k + 1)) {
            *why = PRETOK_SIMD_APOS; /* U+017F is an s under case folding */
            return 0;
        }
        a = BIT(w->let, k + 1) ? p[k + 1] | 0x20 : 0;
        b = BIT(w->let, k + 2) ? p[k + 2] | 0x20 : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
            return k + 2;
        if (((a == 'r' || a == 'v') && b == 'e') || (a == 'l' && b == 'l'))
            return k + 3;
    }
    if (BIT(w->let, k))
        return letters_from(w, k + 1, why);
    if (BIT(w->dig, k)) {
        /* \p{N}{1,3}: a non-ASCII byte after a digit may be a number character */
        if (k + 2 >= WIN) { /* offsets k + 1 and k + 2 are read */
            *why = PRETOK_SIMD_EDGE;
            return 0;
        }
        e = k + 1;
        for (int d = 1; d < 3 && !BIT(w->hi, e) && BIT(w->dig, e); d++)
            e++;
        if (e - k < 3 && BIT(w->hi, e)) {
            *why = PRETOK_SIMD_NONASCII;
            return 0;
        }
        return e;
    }
    /* here the byte is other or whitespace: [^\r\n\p{L}\p{N}]?\p{L}+ unless it is a line break */
    if (k + 1 >= WIN) {
        *why = PRETOK_SIMD_EDGE;
        return 0;
    }
    if (!BIT(w->nl, k)) {
        if (BIT(w->let, k + 1))
            return letters_from(w, k + 2, why);
        if (BIT(w->hi, k + 1)) {
            *why = PRETOK_SIMD_NONASCII; /* may be a letter */
            return 0;
        }
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    j = p[k] == ' ' ? k + 1 : k;
    if (BIT(w->oth, j)) {
        e = j + 1 < WIN ? first_clear(w->oth, j + 1) : WIN;
        if (e >= WIN) {
            *why = PRETOK_SIMD_EDGE;
            return 0;
        }
        if (BIT(w->hi, e)) {
            *why = PRETOK_SIMD_NONASCII; /* may be another [^\s\p{L}\p{N}] */
            return 0;
        }
        e = first_clear(w->nl, e);
        if (e >= WIN) {
            *why = PRETOK_SIMD_EDGE;
            return 0;
        }
        return e;
    }
    /* whitespace (the only class left): \s*[\r\n]+ | \s+(?!\S) | \s+ */
    e = first_clear(w->ws, k);
    if (e >= WIN) {
        *why = PRETOK_SIMD_EDGE;
        return 0;
    }
    if (BIT(w->hi, e)) {
        *why = PRETOK_SIMD_NONASCII; /* may be more whitespace (U+0085, U+00A0, ...) */
        return 0;
    }
    {
        /* the run's line breaks: the piece ends after the last one */
        uint64_t run = (((uint64_t)1 << e) - 1) & ~(((uint64_t)1 << k) - 1); /* e < 64 */
        uint64_t brk = w->nl & run;
        if (brk != 0)
            return 64 - (unsigned)__builtin_clzll(brk);
    }
    /* no line break, a non-space follows: the run gives back its last character */
    return e - k >= 2 ? e - 1 : e;
}

size_t pretok_simd_pieces(pretok_pattern pat, const uint8_t *s, size_t i, size_t n, size_t *ends,
                          size_t cap, pretok_simd_stats *st)
{
    size_t count = 0;
    uint64_t fast = 0, slow[PRETOK_SIMD_NREASONS] = {0};
    win w;

    while (count < cap && i < n) {
        int why = PRETOK_SIMD_PATTERN;
        size_t j;

        /* a non-ASCII byte first or second: every rule below hands the piece to the scalar
         * scanner, so no window is classified for it (multilingual text) */
        if (pat == PRETOK_CL100K && n - i >= WIN && s[i] < 0x80 && s[i + 1] < 0x80) {
            /* a window from i, and its pieces while the masks decide them */
            size_t base = i;
            unsigned e;
            classify(s + base, &w);
            while ((e = decide_cl100k(&w, s + base, (unsigned)(i - base), &why)) != 0) {
                fast += base + e - i;
                i = base + e;
                ends[count++] = i;
                if (count == cap || i - base >= WIN || n - i < WIN)
                    break;
            }
            /* a piece that ran past this window, not its first: a window from its start */
            if (e != 0 || (why == PRETOK_SIMD_EDGE && base != i))
                continue;
        } else if (pat == PRETOK_CL100K) {
            why = n - i < WIN ? PRETOK_SIMD_TAIL
                  : s[i] == '\'' ? PRETOK_SIMD_APOS
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
