/*
 * utf8_avx2: UTF-8 validation 32 bytes at a time, compiled with -mavx2 and run only where the
 * CPU has AVX2 (utf8.c asks). The method is Keiser and Lemire's ("Validating UTF-8 in less than
 * one instruction per byte", 2021): every rule of well-formed UTF-8 but one is a rule about two
 * adjacent bytes, and which rules a pair may break is a function of three nibbles (the high and
 * low nibbles of the first byte, the high nibble of the second). Three 16-entry tables, looked up
 * with a byte shuffle, give for each nibble the set of rules it is compatible with breaking; the
 * pair breaks a rule when all three say so. The remaining rule, that the third and fourth bytes
 * of a long sequence are continuations, is checked from the bytes two and three places back.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "tokenizer/utf8-int.h"

/* The rules a pair of bytes (the one before, this one) may break, one bit each. */
#define R_SHORT 0x01      /* a lead byte not followed by a continuation */
#define R_LONG 0x02       /* a continuation after an ASCII byte */
#define R_OVER3 0x04      /* E0 followed by 80..9F: an overlong three-byte form */
#define R_BIG 0x08        /* F4 followed by 90..BF, or F5..FF followed by 90..BF: past U+10FFFF */
#define R_SURR 0x10       /* ED followed by A0..BF: a surrogate */
#define R_OVER2 0x20      /* C0 or C1: an overlong two-byte form */
#define R_BIG80 0x40      /* F0 followed by 80..8F (overlong), or F5..FF followed by 80..8F */
#define R_TWOCONT 0x80    /* a continuation after a continuation (right only in a long form) */
#define R_ANY (R_SHORT | R_LONG | R_TWOCONT) /* rules decided by the first byte's high nibble */

/* clang-format off */
static const int8_t first_hi[16] = {
    R_LONG, R_LONG, R_LONG, R_LONG, R_LONG, R_LONG, R_LONG, R_LONG, /* 0x00..0x7F: ASCII */
    (int8_t)R_TWOCONT, (int8_t)R_TWOCONT, (int8_t)R_TWOCONT, (int8_t)R_TWOCONT, /* 0x80..0xBF */
    R_SHORT | R_OVER2,                /* 0xC0..0xCF */
    R_SHORT,                          /* 0xD0..0xDF */
    R_SHORT | R_OVER3 | R_SURR,       /* 0xE0..0xEF */
    R_SHORT | R_BIG | R_BIG80,        /* 0xF0..0xFF */
};
static const int8_t first_lo[16] = {
    (int8_t)(R_ANY | R_OVER3 | R_OVER2 | R_BIG80), /* x0: C0, E0, F0 */
    (int8_t)(R_ANY | R_OVER2),                     /* x1: C1 */
    (int8_t)R_ANY, (int8_t)R_ANY,
    (int8_t)(R_ANY | R_BIG),                       /* x4: F4 */
    (int8_t)(R_ANY | R_BIG | R_BIG80), (int8_t)(R_ANY | R_BIG | R_BIG80),
    (int8_t)(R_ANY | R_BIG | R_BIG80), (int8_t)(R_ANY | R_BIG | R_BIG80),
    (int8_t)(R_ANY | R_BIG | R_BIG80), (int8_t)(R_ANY | R_BIG | R_BIG80),
    (int8_t)(R_ANY | R_BIG | R_BIG80), (int8_t)(R_ANY | R_BIG | R_BIG80),
    (int8_t)(R_ANY | R_BIG | R_BIG80 | R_SURR),    /* xD: ED */
    (int8_t)(R_ANY | R_BIG | R_BIG80), (int8_t)(R_ANY | R_BIG | R_BIG80),
};
static const int8_t second_hi[16] = {
    R_SHORT, R_SHORT, R_SHORT, R_SHORT, R_SHORT, R_SHORT, R_SHORT, R_SHORT, /* ASCII */
    (int8_t)(R_LONG | R_OVER2 | R_TWOCONT | R_OVER3 | R_BIG80),              /* 0x80..0x8F */
    (int8_t)(R_LONG | R_OVER2 | R_TWOCONT | R_OVER3 | R_BIG),                /* 0x90..0x9F */
    (int8_t)(R_LONG | R_OVER2 | R_TWOCONT | R_SURR | R_BIG),                 /* 0xA0..0xBF */
    (int8_t)(R_LONG | R_OVER2 | R_TWOCONT | R_SURR | R_BIG),
    R_SHORT, R_SHORT, R_SHORT, R_SHORT,                                      /* leads */
};
/* clang-format on */

typedef struct vstate {
    __m256i t1, t2, t3, nib; /* the tables, each in both lanes, and 0x0F in every byte */
    __m256i prev;            /* the 32 bytes before the current ones */
    __m256i err;             /* the bits of every rule broken so far */
} vstate;

/* The bytes n places before each byte of in (n = 1..3), the first ones from prev. */
#define BEFORE(in, prev, n)                                                                        \
    _mm256_alignr_epi8((in), _mm256_permute2x128_si256((prev), (in), 0x21), 16 - (n))

static inline __m256i table(const int8_t t[16])
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t));
}

static inline void check32(vstate *v, __m256i in)
{
    __m256i p1 = BEFORE(in, v->prev, 1), p2 = BEFORE(in, v->prev, 2), p3 = BEFORE(in, v->prev, 3);
    __m256i a = _mm256_shuffle_epi8(v->t1, _mm256_and_si256(_mm256_srli_epi16(p1, 4), v->nib));
    __m256i b = _mm256_shuffle_epi8(v->t2, _mm256_and_si256(p1, v->nib));
    __m256i c = _mm256_shuffle_epi8(v->t3, _mm256_and_si256(_mm256_srli_epi16(in, 4), v->nib));
    __m256i pair = _mm256_and_si256(_mm256_and_si256(a, b), c);
    /* a third or fourth byte must be a continuation: the byte two before is E0 or above, or the
     * one three before F0 or above; then the pair's R_TWOCONT is right, and its absence wrong */
    __m256i third = _mm256_subs_epu8(p2, _mm256_set1_epi8((char)(0xe0 - 0x80)));
    __m256i fourth = _mm256_subs_epu8(p3, _mm256_set1_epi8((char)(0xf0 - 0x80)));
    __m256i must = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    v->err = _mm256_or_si256(v->err, _mm256_xor_si256(must, pair));
    v->prev = in;
}

int utf8_valid_avx2(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    uint8_t tail[32];
    vstate v;
    size_t i = 0;
    /* a block of ASCII after one whose last bytes start no sequence cannot break a rule */
    const __m256i open = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          -1, (char)0xef, (char)0xdf, (char)0xbf);

    v.t1 = table(first_hi);
    v.t2 = table(first_lo);
    v.t3 = table(second_hi);
    v.nib = _mm256_set1_epi8(0x0f);
    v.prev = _mm256_setzero_si256();
    v.err = _mm256_setzero_si256();
    for (; i + 32 <= n; i += 32) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(p + i));
        if (_mm256_movemask_epi8(in) == 0) {
            /* a sequence left open by the block before is cut here */
            v.err = _mm256_or_si256(v.err, _mm256_subs_epu8(v.prev, open));
            v.prev = in;
            continue;
        }
        check32(&v, in);
    }
    /* the last bytes, padded with zeros, and then 32 zeros: a sequence still open at the end
     * of the text meets a zero where it needed a continuation */
    memset(tail, 0, sizeof(tail));
    memcpy(tail, p + i, n - i);
    check32(&v, _mm256_loadu_si256((const __m256i *)tail));
    check32(&v, _mm256_setzero_si256());
    return _mm256_testz_si256(v.err, v.err);
}
