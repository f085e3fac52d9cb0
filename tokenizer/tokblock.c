/*
 * tokblock: the block encoder (issue 14), and the choice of the encoder's path.
 *
 * The block encoder classifies the text 64 bytes at a time (pretok_simd-int.h), decides the
 * pieces of a window from the masks, hashes them and starts their table loads as a batch, and
 * only then probes and emits, so that the loads of a window's pieces overlap. What the masks
 * cannot decide goes to the scalar scanner, piece by piece, so the pieces are always
 * pretok_next's.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokblock-int.h"

static tok_path path_now = TOK_PATH_SCALAR;
static pthread_once_t path_once = PTHREAD_ONCE_INIT;

static int path_supported(tok_path p)
{
    switch (p) {
    case TOK_PATH_SCALAR:
    case TOK_PATH_SSE2:
        return 1; /* SSE2 is part of x86-64 */
    case TOK_PATH_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
    default:
        return 0;
    }
}

static tok_path path_best(void)
{
    return path_supported(TOK_PATH_AVX2) ? TOK_PATH_AVX2 : TOK_PATH_SSE2;
}

static void path_init(void)
{
    const char *env = getenv("TOKENGATE_TOK_PATH");
    tok_path p;

    path_now = path_best();
    if (env == NULL || *env == '\0')
        return;
    if (tok_path_parse(env, &p) != 0 || !path_supported(p)) {
        /* said once, where an operator reads it, so that a forced path is never silently not */
        fprintf(stderr,
                "tokengate: TOKENGATE_TOK_PATH=%.32s is not a tokenizer path this CPU has "
                "(auto, scalar, sse2, avx2); using %s\n",
                env, tok_path_name(path_now));
        return;
    }
    if (p != TOK_PATH_AUTO)
        path_now = p;
}

void tok_path_init(void)
{
    pthread_once(&path_once, path_init);
}

int tok_set_path(tok_path p)
{
    tok_path_init();
    if (p == TOK_PATH_AUTO)
        p = path_best();
    if (!path_supported(p))
        return -1;
    path_now = p;
    return 0;
}

tok_path tok_get_path(void)
{
    tok_path_init();
    return path_now;
}

const char *tok_path_name(tok_path p)
{
    switch (p) {
    case TOK_PATH_SCALAR:
        return "scalar";
    case TOK_PATH_SSE2:
        return "sse2";
    case TOK_PATH_AVX2:
        return "avx2";
    default:
        return "auto";
    }
}

int tok_path_parse(const char *name, tok_path *p)
{
    static const char *const names[] = {"auto", "scalar", "sse2", "avx2"};

    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            *p = (tok_path)i;
            return 0;
        }
    }
    return -1;
}

int tok_piece_merge(const tok_enc *e, const uint8_t *s, const ahead *a, cache_ent *c, sink *k)
{
    return piece_encode(e, s, a, c, k, 0); /* the block loop asked the vocabulary already */
}

__attribute__((noinline)) int tok_piece_slow(const tok_enc *e, const uint8_t *s, size_t i, size_t j,
                                             cache_ent *c, sink *k)
{
    ahead a;
    size_t len = j - i;
    uint32_t r;

    if (len == 1) {
        emit(k, e->byte_rank[s[i]]);
        return k->failed ? -1 : 0;
    }
    a.start = (uint32_t)i;
    a.len = (uint32_t)len;
    if (len <= SMALL_PIECE)
        ahead_key(&a, s + i, len);
    if (len <= MAX_TOKEN_LEN && (r = vocab_rank(e, s + i, &a)) != NO_RANK)
        emit(k, r);
    else if (tok_piece_merge(e, s, &a, c, k) != 0)
        return -1;
    return k->failed ? -1 : 0;
}

int tok_out_room(outbuf *o, sink *k)
{
    tok_ids *ids = k->ids;

    out_give(o, k);
    if (ids == NULL)
        return 0;
    if (ids->cap - ids->n < OUT_ROOM) {
        size_t cap = ids->cap ? ids->cap * 2 : 1024;
        uint32_t *v;
        while (cap - ids->n < OUT_ROOM)
            cap *= 2;
        if ((v = realloc(ids->v, cap * sizeof(uint32_t))) == NULL)
            return -1;
        ids->v = v;
        ids->cap = cap;
    }
    o->at = o->base = ids->v + ids->n;
    return 0;
}

int tok_encode_block_sse2(const tok_enc *e, const uint8_t *s, size_t n, sink *k)
{
    int cl = e->pat == PRETOK_CL100K;

    return cl ? block_run(e, s, n, k, classify_sse2, k->ids == NULL, 1)
              : block_run(e, s, n, k, classify_sse2, k->ids == NULL, 0);
}

int tok_encode_block(const tok_enc *e, const uint8_t *s, size_t n, tok_path p, sink *k)
{
    if (p == TOK_PATH_AVX2)
        return tok_encode_block_avx2(e, s, n, k);
    return tok_encode_block_sse2(e, s, n, k);
}
