/*
 * utf8: keeping text that came from a client valid where the gate writes it back (error
 * messages, the request log): JSON text must be UTF-8.
 */
#ifndef TG_UTF8_H
#define TG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Whether n bytes at s are well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
int utf8_valid(const char *s, size_t n);

/*
 * Copies the NUL-terminated string s into out (capacity cap > 0), replacing each ill-formed
 * sequence (its maximal subpart, as Unicode recommends and as Python and Rust decode) by one
 * U+FFFD, and cutting only at character boundaries. Returns out.
 */
char *utf8_clean(const char *s, char *out, size_t cap);

/*
 * The same replacement over n bytes at s, which need not be NUL-terminated, into out, which
 * must have room for 3 * n bytes (every byte may become a U+FFFD). Returns the bytes written;
 * nothing is NUL-terminated.
 */
size_t utf8_clean_len(const char *s, size_t n, char *out);

/* The code point of the well-formed character of len bytes (2 to 4) at p. */
static inline uint32_t utf8_decode(const uint8_t *p, size_t len)
{
    if (len == 2)
        return (uint32_t)(p[0] & 0x1f) << 6 | (uint32_t)(p[1] & 0x3f);
    if (len == 3)
        return (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
               (uint32_t)(p[2] & 0x3f);
    return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
           (uint32_t)(p[2] & 0x3f) << 6 | (uint32_t)(p[3] & 0x3f);
}

#endif
