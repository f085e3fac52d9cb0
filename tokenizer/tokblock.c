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
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok-int.h"

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
    if (env != NULL && tok_path_parse(env, &p) == 0 && p != TOK_PATH_AUTO && path_supported(p))
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

int tok_encode_block(const tok_enc *e, const uint8_t *s, size_t n, tok_path p, sink *k)
{
    (void)p;
    return tok_encode_scalar(e, s, n, k); /* the block encoder is not written yet */
}
