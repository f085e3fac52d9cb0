/*
 * The scanners. Each alternative of a pattern is a function that returns the end of its match
 * at i, or 0 when it does not match (a match is never empty, and never ends at 0). Comments
 * quote the part of the pattern a function stands for.
 */
#include "tokenizer/pretok.h"

#include <emmintrin.h>

#include "tokenizer/uclass.h"
#include "uclass_table.h"

#define UC_END 0x80 /* past the end of the text: no class matches */

/* The class of the character at s[i] and its length in bytes; UC_END when i == n. */
static inline uint8_t cls_at(const uint8_t *s, size_t i, size_t n, size_t *len)
{
    uint32_t c, cp;

    if (i >= n) {
        *len = 0;
        return UC_END;
    }
    c = s[i];
    if (c < 0x80) {
        *len = 1;
        return uc_stage2[0][c];
    }
    *len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    return uc_class_mb(s + i, (unsigned)*len, &cp);
}

/*
 * The end of the run of ASCII letters from i (only lower-case ones when lower_only), sixteen
 * bytes at a time: words are most of what the scanners read, and a byte-by-byte loop pays a
 * branch per letter.
 */
static inline size_t ascii_letters(const uint8_t *s, size_t i, size_t n, int lower_only)
{
    const __m128i a = _mm_set1_epi8('a'), span = _mm_set1_epi8(25);
    const __m128i fold = _mm_set1_epi8(lower_only ? 0 : 0x20);

    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i t = _mm_sub_epi8(_mm_or_si128(v, fold), a);
        /* t <= 25 as an unsigned byte: a letter */
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(t, span), t));
        if (m != 0xffff)
            return i + (size_t)__builtin_ctz(~m);
        i += 16;
    }
    while (i < n && (uint8_t)((s[i] | (lower_only ? 0 : 0x20)) - 'a') <= 25)
        i++;
    return i;
}

/* The end of the run of characters from i whose class has a bit of want (and none of avoid). */
static inline size_t scan(const uint8_t *s, size_t i, size_t n, uint8_t want, uint8_t avoid)
{
    size_t len;

    /* ASCII letters are all \p{L}; the lower-case ones all [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
    if (want == UC_L && avoid == 0)
        i = ascii_letters(s, i, n, 0);
    else if (want == UC_LO && avoid == 0)
        i = ascii_letters(s, i, n, 1);
    if (i < n && s[i] < 0x80 && !(uc_stage2[0][s[i]] & want))
        return i; /* the usual end of a word: an ASCII non-letter */
    for (;;) {
        uint8_t c = cls_at(s, i, n, &len);
        if (!(c & want) || (c & avoid))
            return i;
        i += len;
    }
}

/* The end of the run from i of characters that are none of \s, \p{L}, \p{N}. */
static inline size_t scan_other(const uint8_t *s, size_t i, size_t n)
{
    size_t len;

    for (;;) {
        uint8_t c = cls_at(s, i, n, &len);
        if (c & (UC_WS | UC_L | UC_N | UC_END))
            return i;
        i += len;
    }
}

/*
 * (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, where s[i] is an apostrophe: its length, or 0. The
 * case-insensitive match uses Unicode simple case folding, under which U+017F LATIN SMALL
 * LETTER LONG S is also an s. With fold == 0 the match is case-sensitive (r50k's pattern).
 */
static inline size_t contraction(const uint8_t *s, size_t i, size_t n, int fold)
{
    uint8_t a, b;

    if (i + 1 >= n)
        return 0;
    a = s[i + 1];
    if (fold && a >= 'A' && a <= 'Z')
        a |= 0x20;
    switch (a) {
    case 's':
    case 't':
    case 'm':
    case 'd':
        return 2;
    case 'r':
    case 'v':
    case 'l':
        if (i + 2 >= n)
            return 0;
        b = s[i + 2];
        if (fold && b >= 'A' && b <= 'Z')
            b |= 0x20;
        return b == (a == 'l' ? 'l' : 'e') ? 3 : 0;
    case 0xc5:
        return fold && i + 2 < n && s[i + 2] == 0xbf ? 3 : 0;
    default:
        return 0;
    }
}

/*
 * The whitespace alternatives shared by cl100k and o200k, at i where s[i] is whitespace:
 * \s*[\r\n]+  |  \s+(?!\S)  |  \s+
 * The first ends after the run's last line break; the second, when the run is followed by a
 * non-space, gives back the run's last character (which then prefixes the next piece).
 */
static size_t whitespace(const uint8_t *s, size_t i, size_t n, int newline_alt)
{
    size_t j = i, last = i, nl_end = 0, len;

    for (;;) {
        uint8_t c = cls_at(s, j, n, &len);
        if (!(c & UC_WS))
            break;
        if (c & UC_NL)
            nl_end = j + len;
        last = j;
        j += len;
    }
    if (newline_alt && nl_end != 0)
        return nl_end;
    if (j == n)
        return j;
    return last > i ? last : j;
}

/* \p{N}{1,3} from i, where a number character of l0 bytes starts. */
static inline size_t digits3(const uint8_t *s, size_t i, size_t l0, size_t n)
{
    size_t j = i + l0, l1;

    for (int d = 1; d < 3 && (cls_at(s, j, n, &l1) & UC_N); d++)
        j += l1;
    return j;
}

/* ` ?[^\s\p{L}\p{N}]+` from i and the run of line breaks after it (cl100k's [\r\n]*, or with
 * slash set o200k's [\r\n/]*). Returns where it ends, or 0 when it does not match at i. */
static inline size_t punct_run(const uint8_t *s, size_t i, size_t n, int slash)
{
    size_t j = s[i] == ' ' ? i + 1 : i, l1;

    if (cls_at(s, j, n, &l1) & (UC_WS | UC_L | UC_N | UC_END))
        return 0;
    j = scan_other(s, j, n);
    while (j < n && (s[j] == '\r' || s[j] == '\n' || (slash && s[j] == '/')))
        j++;
    return j;
}

/* cl100k_base:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t next_cl100k(const uint8_t *s, size_t i, size_t n)
{
    size_t l0, l1, j, k;
    uint8_t c0 = cls_at(s, i, n, &l0), c1;

    if (s[i] == '\'' && (k = contraction(s, i, n, 1)) != 0)
        return i + k;
    if (c0 & UC_L)
        return scan(s, i + l0, n, UC_L, 0);
    if (!(c0 & (UC_NL | UC_N))) {
        c1 = cls_at(s, i + l0, n, &l1);
        if (c1 & UC_L)
            return scan(s, i + l0 + l1, n, UC_L, 0);
    }
    if (c0 & UC_N)
        return digits3(s, i, l0, n);
    if ((j = punct_run(s, i, n, 0)) != 0)
        return j;
    return whitespace(s, i, n, 1);
}

/* o200k's (?i:'s|'t|'re|'ve|'m|'ll|'d)? after a run of letters ending at j. */
static inline size_t opt_contraction(const uint8_t *s, size_t j, size_t n)
{
    return j < n && s[j] == '\'' ? j + contraction(s, j, n, 1) : j;
}

/*
 * [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ from p. The upper run is greedy
 * and gives back characters until the lower run can start: the lower run starts at the first
 * character past the upper run if that is lower-case, else at the upper run's last character
 * that belongs to both classes (and then ends right after it, since what follows it in the
 * run is upper-case only).
 */
static size_t o200k_upper_lower(const uint8_t *s, size_t p, size_t n)
{
    size_t j = p, len, both = 0, both_len = 0;
    uint8_t c;

    for (;;) {
        c = cls_at(s, j, n, &len);
        if (!(c & UC_UP))
            break;
        if (c & UC_LO) {
            both = j;
            both_len = len;
        }
        j += len;
    }
    if (c & UC_LO)
        return scan(s, j + len, n, UC_LO, 0);
    return both_len ? both + both_len : 0;
}

/* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* from p. */
static size_t o200k_upper_only(const uint8_t *s, size_t p, size_t n)
{
    size_t j = scan(s, p, n, UC_UP, 0);

    return j == p ? 0 : scan(s, j, n, UC_LO, 0);
}

/* o200k_base:
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?|
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?|
 * \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t next_o200k(const uint8_t *s, size_t i, size_t n)
{
    size_t l0, j;
    uint8_t c0 = cls_at(s, i, n, &l0);
    int prefix = !(c0 & (UC_NL | UC_L | UC_N)); /* may be [^\r\n\p{L}\p{N}] */
    int letter = (c0 & (UC_UP | UC_LO)) != 0;

    if (prefix || letter) {
        /* each alternative tries the optional prefix taken first, then not taken */
        if (prefix && (j = o200k_upper_lower(s, i + l0, n)) != 0)
            return opt_contraction(s, j, n);
        if (letter && (j = o200k_upper_lower(s, i, n)) != 0)
            return opt_contraction(s, j, n);
        if (prefix && (j = o200k_upper_only(s, i + l0, n)) != 0)
            return opt_contraction(s, j, n);
        if (letter && (j = o200k_upper_only(s, i, n)) != 0)
            return opt_contraction(s, j, n);
    }
    if (c0 & UC_N)
        return digits3(s, i, l0, n);
    if ((j = punct_run(s, i, n, 1)) != 0)
        return j;
    return whitespace(s, i, n, 1);
}

/* r50k_base and p50k_base:
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_r50k(const uint8_t *s, size_t i, size_t n)
{
    size_t l1, j, k;
    uint8_t c;

    if (s[i] == '\'' && (k = contraction(s, i, n, 0)) != 0)
        return i + k;
    j = s[i] == ' ' ? i + 1 : i;
    c = cls_at(s, j, n, &l1);
    if (c & UC_L)
        return scan(s, j + l1, n, UC_L, 0);
    if (c & UC_N)
        return scan(s, j + l1, n, UC_N, 0);
    if (!(c & (UC_WS | UC_END)))
        return scan_other(s, j + l1, n);
    return whitespace(s, i, n, 0);
}

size_t pretok_next(pretok_pattern pat, const uint8_t *s, size_t i, size_t n)
{
    switch (pat) {
    case PRETOK_CL100K:
        return next_cl100k(s, i, n);
    case PRETOK_O200K:
        return next_o200k(s, i, n);
    case PRETOK_R50K:
    default:
        return next_r50k(s, i, n);
    }
}
