/*
 * tokblock_avx2: the block encoder with the AVX2 classifier. This file alone is compiled with
 * -mavx2 -mbmi -mbmi2 (tokenizer/meson.build), and is only called where the CPU has AVX2
 * (tok_path, tokblock.c).
 */
#include "tokenizer/tokblock-int.h"

int tok_encode_block_avx2(const tok_enc *e, const uint8_t *s, size_t n, sink *k)
{
    int cl = e->pat == PRETOK_CL100K;

    return cl ? block_run(e, s, n, k, classify_avx2, k->ids == NULL, 1)
              : block_run(e, s, n, k, classify_avx2, k->ids == NULL, 0);
}
