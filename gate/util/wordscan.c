/*
 * wordscan: see wordscan.h.
 */
#include "gate/util/wordscan.h"

#include <emmintrin.h>
#include <string.h>

#define MAX_WORDS 8

/* Whether a word of the list starts at p, with left bytes readable there. */
static int word_at(const char *p, size_t left, const char *const *words, const size_t *len,
                   int nw)
{
    for (int w = 0; w < nw; w++)
        if (len[w] <= left && memcmp(p, words[w], len[w]) == 0)
            return 1;
    return 0;
}

int wordscan_any(const char *s, size_t n, const char *const *words, int nw)
{
    size_t len[MAX_WORDS], i = 0;
    __m128i first[MAX_WORDS], second[MAX_WORDS];

    if (nw > MAX_WORDS) { /* more than the pass takes: one at a time */
        for (int w = 0; w < nw; w++)
            if (wordscan_any(s, n, &words[w], 1))
                return 1;
        return 0;
    }
    for (int w = 0; w < nw; w++) {
        len[w] = strlen(words[w]);
        first[w] = _mm_set1_epi8(words[w][0]);
        second[w] = _mm_set1_epi8(words[w][1]);
    }
    /* 16 places at a time, while the 17 bytes they and the next byte need are in the text */
    for (; i + 17 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 1));
        __m128i m = _mm_setzero_si128();
        for (int w = 0; w < nw; w++)
            m = _mm_or_si128(m, _mm_and_si128(_mm_cmpeq_epi8(a, first[w]),
                                              _mm_cmpeq_epi8(b, second[w])));
        for (unsigned bits = (unsigned)_mm_movemask_epi8(m); bits != 0; bits &= bits - 1) {
            size_t at = i + (size_t)__builtin_ctz(bits);
            if (word_at(s + at, n - at, words, len, nw))
                return 1;
        }
    }
    for (; i < n; i++)
        if (word_at(s + i, n - i, words, len, nw))
            return 1;
    return 0;
}
