#include "tokenizer/utf8.h"

#include <stdint.h>
#include <string.h>

#include <emmintrin.h>

#include "tokenizer/utf8-int.h"

/* Length of the well-formed sequence at s (at most n bytes), or 0 when it is ill-formed. */
static inline size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
            return 0; /* overlong, or a surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
            return 0; /* overlong, or past U+10FFFF */
        return 4;
    }
    return 0;
}

/*
 * Length of the ill-formed bytes at s to replace by one U+FFFD: the maximal subpart of a
 * well-formed sequence (Unicode 15, 3.9, "U+FFFD Substitution of Maximal Subparts"), at least 1.
 */
static size_t bad_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need = c >= 0xc2 && c <= 0xdf   ? 2
                  : c >= 0xe0 && c <= 0xef ? 3
                  : c >= 0xf0 && c <= 0xf4 ? 4
                                           : 1;
    size_t i = 1;

    while (i < need && i < n) {
        unsigned char lo = 0x80, hi = 0xbf;
        if (i == 1) {
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
            else if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        }
        if (s[i] < lo || s[i] > hi)
            break;
        i++;
    }
    return i;
}

/*
 * Runs of ASCII are skipped sixteen bytes at a time; a run of other characters is checked in
 * one loop that does not go back to the ASCII test after each character (text in Cyrillic,
 * Arabic or CJK has few ASCII bytes between its characters). seq_len is inlined into both.
 */
int utf8_valid_scalar(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;

    while (p < end) {
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            unsigned m = (unsigned)_mm_movemask_epi8(v); /* the bytes >= 0x80 */
            if (m != 0) {
                p += __builtin_ctz(m);
                break;
            }
            p += 16;
        }
        while (p < end && *p < 0x80)
            p++;
        while (p < end && *p >= 0x80) {
            size_t k = seq_len(p, (size_t)(end - p));
            if (k == 0)
                return 0;
            p += k;
        }
    }
    return 1;
}

/*
 * Text of 64 bytes or more on a CPU with AVX2 takes the vector validator: on the multilingual
 * corpus the scalar loop ran about 6.7 instructions a byte and 8-9 % of a tokenizer pass.
 * (__builtin_cpu_supports reads what libgcc's constructor found; nothing here runs before it.)
 */
int utf8_valid(const char *s, size_t n)
{
    if (n >= 64 && __builtin_cpu_supports("avx2"))
        return utf8_valid_avx2(s, n);
    return utf8_valid_scalar(s, n);
}

size_t utf8_clean_len(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;

    while (n > 0) {
        size_t k = seq_len(p, n);
        if (k == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            k = bad_len(p, n);
        } else {
            memcpy(out + o, p, k);
            o += k;
        }
        p += k;
        n -= k;
    }
    return o;
}

char *utf8_clean(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), o = 0;

    while (n > 0) {
        size_t k = seq_len(p, n);
        const char *src = (const char *)p;
        size_t w = k;
        if (k == 0) {
            src = "\xef\xbf\xbd";
            w = 3;
            k = bad_len(p, n);
        }
        if (o + w + 1 > cap)
            break;
        memcpy(out + o, src, w);
        o += w;
        p += k;
        n -= k;
    }
    out[o] = '\0';
    return out;
}
