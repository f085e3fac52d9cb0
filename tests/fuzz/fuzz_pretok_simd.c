/*
 * libFuzzer target: the block pre-tokenizer (pretok_simd) against the scalar scanner (pretok)
 * on arbitrary bytes made well-formed (each ill-formed sequence replaced by U+FFFD, as the
 * encoder does), every pattern, the first byte choosing how many pieces a call may return.
 * Any piece that ends elsewhere than the scalar scanner's aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok_simd.h"
#include "tokenizer/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const pretok_pattern pats[] = {PRETOK_CL100K, PRETOK_O200K, PRETOK_R50K};
    size_t ends[64], cap = size > 0 ? (size_t)(data[0] % 64) + 1 : 1;
    uint8_t *s = malloc(size * 3 + 1);
    size_t n = utf8_clean_len((const char *)data, size, (char *)s);

    for (size_t p = 0; p < sizeof(pats) / sizeof(pats[0]); p++) {
        size_t i = 0;
        while (i < n) {
            size_t m = pretok_simd_pieces(pats[p], s, i, n, ends, cap, NULL);
            if (m == 0 || m > cap)
                abort();
            for (size_t k = 0; k < m; k++) {
                size_t j = pretok_next(pats[p], s, i, n);
                if (ends[k] != j)
                    abort();
                i = j;
            }
        }
    }
    free(s);
    return 0;
}
