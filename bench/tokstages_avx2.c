/*
 * tokstages_avx2: the pretok stage of tokengate-tokstages on the avx2 path. It is the block
 * pre-tokenizer's own loop (tokenizer/pretok_simd.c, pretok_simd_pieces) compiled a second time,
 * with -mavx2 -mbmi -mbmi2 (meson.build) as the block encoder's AVX2 instance is, with the AVX2
 * window classifier in place of the SSE2 one and under another name. Nothing else is changed,
 * so a change to pretok_simd.c shows here too. Only called where the CPU has AVX2.
 */
#define pretok_simd_pieces tokstages_pieces_avx2
#include "tokenizer/pretok_simd.h"
#include "tokenizer/pretok_simd-int.h"

#define classify_sse2 classify_avx2
#include "tokenizer/pretok_simd.c"
