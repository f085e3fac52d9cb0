/*
 * uclass: the Unicode classes tiktoken's pre-tokenizer patterns test, one byte per code point.
 *
 * UC_L letter (\p{L}), UC_N number (\p{N}), UC_M mark (\p{M}), UC_WS White_Space (\s),
 * UC_NL carriage return or line feed, and o200k's two case-aware letter classes:
 * UC_UP = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and UC_LO = [\p{Ll}\p{Lm}\p{Lo}\p{M}].
 * The table is generated at build time from utf8proc by gen-uclass.c.
 */
#ifndef TOK_UCLASS_H
#define TOK_UCLASS_H

#include <stdint.h>

enum {
    UC_L = 1,
    UC_N = 2,
    UC_M = 4,
    UC_WS = 8,
    UC_NL = 16,
    UC_UP = 32,
    UC_LO = 64,
};

#endif
