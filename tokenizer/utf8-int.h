/*
 * utf8-int: the validator's instances, for utf8.c and the tests that compare them. Not for use
 * outside tokenizer/ and its tests.
 */
#ifndef TG_UTF8_INT_H
#define TG_UTF8_INT_H

#include <stddef.h>

/* utf8_valid 32 bytes at a time, for a CPU with AVX2 only (utf8_avx2.c). */
int utf8_valid_avx2(const char *s, size_t n);

/* utf8_valid a character at a time, on any CPU (utf8.c). */
int utf8_valid_scalar(const char *s, size_t n);

#endif
