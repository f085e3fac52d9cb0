/* Random texts for tests that compare a function with a plainer reading of the same thing. */
#ifndef TG_TEST_RANDTEXT_H
#define TG_TEST_RANDTEXT_H

#include <stddef.h>

/*
 * Fills s with a text of fewer than mask + 1 bytes (mask: a power of two less one) drawn from
 * alphabet, from the generator state *seed (the same seed, the same texts); returns its length.
 */
static inline size_t rand_text(char *s, size_t mask, const char *alphabet, size_t nalpha,
                               unsigned *seed)
{
    size_t n = (*seed = *seed * 1103515245u + 12345u) >> 16 & mask;

    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        s[i] = alphabet[(*seed >> 16) % nalpha];
    }
    return n;
}

#endif
