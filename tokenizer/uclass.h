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

#include "tokenizer/utf8.h"

enum {
    UC_L = 1,
    UC_N = 2,
    UC_M = 4,
    UC_WS = 8,
    UC_NL = 16,
    UC_UP = 32,
    UC_LO = 64,
};

/* The table (uclass_table.h, built into pretok.c): the class of code point cp is
 * uc_stage2[uc_stage1[cp >> 8]][cp & 0xff], for cp < 0x110000; below 0x800 (one and two bytes
 * of UTF-8: Latin, Greek, Cyrillic, Hebrew, Arabic, ...) it is also uc_two[cp], one load. Hidden,
 * so that code in a shared object reads them without going through its global offset table. */
extern const uint8_t uc_stage1[0x110000 >> 8] __attribute__((visibility("hidden")));
extern const uint8_t uc_stage2[][256] __attribute__((visibility("hidden")));
extern const uint8_t uc_two[0x800] __attribute__((visibility("hidden")));

/* The class of the well-formed UTF-8 character of len bytes (2 to 4) at p, and its code point
 * in *cp. */
static inline uint8_t uc_class_mb(const uint8_t *p, unsigned len, uint32_t *cp)
{
    uint32_t c = utf8_decode(p, len);

    *cp = c;
    return len == 2 ? uc_two[c] : uc_stage2[uc_stage1[c >> 8]][c & 0xff];
}

#endif
