/*
 * libFuzzer target: arbitrary bytes through every encoding, special tokens allowed and not.
 * Checks what must hold for any input: no crash or sanitizer report, count equals the number
 * of ids, every id decodes, and decoding gives back the input (valid UTF-8) or the input with
 * each ill-formed sequence replaced by U+FFFD.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/utf8.h"
#include "tokenizer/tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char *want = malloc(size * 3 + 1), *got = malloc(size * 3 + 64);
    size_t want_len = utf8_clean_len(s, size, want);

    for (int k = 0; tok_encoding_names[k] != NULL; k++) {
        const tok_enc *e = tok_encoding(tok_encoding_names[k]);
        for (unsigned flags = 0; flags <= TOK_ALLOW_SPECIAL; flags++) {
            tok_ids ids = {0};
            uint64_t count;
            size_t n = 0;
            if (tok_encode(e, s, size, flags, &ids) != 0 || tok_count(e, s, size, flags, &count) != 0)
                abort();
            if (count != ids.n)
                abort();
            for (size_t i = 0; i < ids.n; i++) {
                size_t len;
                const char *b = tok_token_bytes(e, ids.v[i], &len);
                if (b == NULL || n + len > size * 3 + 63)
                    abort();
                memcpy(got + n, b, len);
                n += len;
            }
            if (n != want_len || memcmp(got, want, n) != 0)
                abort();
            tok_ids_free(&ids);
        }
    }
    free(want);
    free(got);
    return 0;
}
