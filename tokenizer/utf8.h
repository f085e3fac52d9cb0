/*
 * utf8: keeping text that came from a client valid where the gate writes it back (error
 * messages, the request log): JSON text must be UTF-8.
 */
#ifndef TG_UTF8_H
#define TG_UTF8_H

#include <stddef.h>

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

#endif
