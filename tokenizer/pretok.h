/*
 * pretok: tiktoken's pre-tokenizer patterns, as hand-written scanners.
 *
 * Each encoding splits text into pieces with a regular expression before byte-pair merging.
 * These functions find the same pieces as that expression does under the leftmost-first
 * (backtracking) semantics of tiktoken's regex engine, over the Unicode classes of uclass.h,
 * without a regex engine: one pass, no backtracking past a few characters, so every input is
 * scanned in linear time.
 */
#ifndef TOK_PRETOK_H
#define TOK_PRETOK_H

#include <stddef.h>
#include <stdint.h>

typedef enum pretok_pattern {
    PRETOK_R50K, /* r50k_base and p50k_base */
    PRETOK_CL100K,
    PRETOK_O200K,
} pretok_pattern;

/*
 * The end of the piece that starts at s[i], i < n. The n bytes at s must be well-formed UTF-8.
 * The result is > i and <= n.
 */
size_t pretok_next(pretok_pattern pat, const uint8_t *s, size_t i, size_t n);

#endif
