/*
 * tok: byte-pair merging, the piece cache, and the encode/count/decode verbs. The encodings and
 * their tables are built in tokvocab.c; what both files share is in tok-int.h.
 *
 * Merging follows tiktoken exactly: start from single bytes, and repeatedly merge the adjacent
 * pair whose concatenation has the lowest rank, the leftmost one on a tie, until no adjacent
 * pair is a token. (Some characters start whole instead of as bytes, where that provably
 * changes nothing: see tok-int.h.) Short pieces (nearly all of them) use tiktoken's array
 * method, which is quadratic in the piece length but touches only a few cache lines; long
 * pieces use a heap ordered by (rank, position), which makes the same choices in O(n log n),
 * so a megabyte of one letter or of CJK without spaces encodes in well under a second.
 */
#define _GNU_SOURCE /* memmem */
#include "tokenizer/tok.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok-int.h"
#include "tokenizer/tokpiece-int.h"
#include "tokenizer/utf8.h"

/* This thread's piece cache and long cache (tokpiece-int.h), each freed by its key's
 * destructor when the thread ends. */
static __thread cache_ent *tls_cache;
__thread uint8_t *tok_long_now;
static pthread_key_t cache_key, long_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static int keys_ok;

static void cache_free(void *p)
{
    free(p);
}

static void keys_init(void)
{
    keys_ok = pthread_key_create(&cache_key, cache_free) == 0 &&
              pthread_key_create(&long_key, cache_free) == 0;
}

/* A zeroed table of size bytes for this thread, freed when it ends; NULL when it cannot be had. */
static void *thread_table(pthread_key_t *key, size_t size)
{
    void *p;

    pthread_once(&keys_once, keys_init);
    if (!keys_ok || (p = tok_big_calloc(size)) == NULL)
        return NULL;
    if (pthread_setspecific(*key, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

cache_ent *tok_piece_cache(void)
{
    if (tls_cache == NULL)
        tls_cache = thread_table(&cache_key, CACHE_SIZE);
    return tls_cache;
}

uint8_t *tok_long_cache(void)
{
    if (tok_long_now == NULL)
        tok_long_now = thread_table(&long_key, LONG_SIZE);
    return tok_long_now;
}

int tok_thread_prepare(void)
{
    return tok_piece_cache() != NULL && tok_long_cache() != NULL ? 0 : -1;
}

void tok_cache_clear(void)
{
    if (tls_cache != NULL)
        memset(tls_cache, 0, CACHE_SIZE);
    if (tok_long_now != NULL)
        memset(tok_long_now, 0, LONG_SIZE);
}

/*
 * Encodes well-formed text with no special tokens in it. The pre-tokenizer runs a few pieces
 * ahead of the merging, so that each piece's cache set and rank-table slot are already on
 * their way from memory when its turn comes: the lookups, not the arithmetic, are what cost.
 */
#ifndef AHEAD
#define AHEAD 16 /* pieces in flight; a power of two (16 measured 5% faster than 8 or 32) */
#endif

static int encode_ordinary(const tok_enc *e, const uint8_t *s, size_t n, sink *k)
{
    ahead q[AHEAD];
    size_t i = 0, head = 0, tail = 0;
    cache_ent *c = tok_piece_cache();

    if (n > UINT32_MAX)
        return -1;
    for (;;) {
        while (tail - head < AHEAD && i < n) {
            size_t j = pretok_next(e->pat, s, i, n), len = j - i;
            ahead *a = &q[tail++ & (AHEAD - 1)];
            a->start = (uint32_t)i;
            a->len = (uint32_t)len;
            if (len > 1 && len <= SMALL_PIECE) {
                ahead_key(a, s + i, len);
                if (c != NULL && len <= CACHE_KEY) {
                    cache_prefetch(c, a->h);
                }
                if (len <= MAX_TOKEN_LEN)
                    __builtin_prefetch(vocab_slot(e, a));
            }
            i = j;
        }
        if (head == tail)
            break;
        if (piece_encode(e, s, &q[head++ & (AHEAD - 1)], c, k, 1) != 0)
            return -1;
    }
    return k->failed ? -1 : 0;
}

int tok_piece_encode(const tok_enc *e, const uint8_t *s, const ahead *a, cache_ent *c, sink *k)
{
    return piece_encode(e, s, a, c, k, 1);
}

int tok_encode_scalar(const tok_enc *e, const uint8_t *s, size_t n, sink *k)
{
    return encode_ordinary(e, s, n, k);
}

/* Encodes well-formed text with no special tokens in it, on the path in use. */
static int encode_plain(const tok_enc *e, const uint8_t *s, size_t n, sink *k)
{
    tok_path p = tok_get_path();

    if (p != TOK_PATH_SCALAR && (e->pat == PRETOK_CL100K || e->pat == PRETOK_O200K))
        return tok_encode_block(e, s, n, p, k);
    return encode_ordinary(e, s, n, k);
}

/* The first special token at or after s[i], its start in *at; NULL when there is none. */
static const special *find_special(const tok_enc *e, const uint8_t *s, size_t n, size_t i,
                                   size_t *at)
{
    while (i + 1 < n) {
        const uint8_t *lt = memchr(s + i, '<', n - i - 1);
        if (lt == NULL)
            return NULL;
        i = (size_t)(lt - s);
        if (s[i + 1] == '|') {
            for (size_t q = 0; q < e->nspecials; q++) {
                size_t len = strlen(e->specials[q].text);
                if (len <= n - i && memcmp(s + i, e->specials[q].text, len) == 0) {
                    *at = i;
                    return &e->specials[q];
                }
            }
        }
        i++;
    }
    return NULL;
}

/* Encodes well-formed text, splitting out special tokens when they are allowed. */
static int encode_text(const tok_enc *e, const uint8_t *s, size_t n, unsigned flags, sink *k)
{
    size_t i = 0, at;
    const special *sp;

    if (!(flags & TOK_ALLOW_SPECIAL))
        return encode_plain(e, s, n, k);
    while ((sp = find_special(e, s, n, i, &at)) != NULL) {
        if (encode_plain(e, s + i, at - i, k) != 0)
            return -1;
        emit(k, sp->id);
        i = at + strlen(sp->text);
    }
    return encode_plain(e, s + i, n - i, k);
}

/* Encodes any bytes: ill-formed UTF-8 is first replaced by U+FFFD. */
static int encode_any(const tok_enc *e, const char *s, size_t n, unsigned flags, sink *k)
{
    char *clean;
    size_t m;
    int rc;

    if (utf8_valid(s, n))
        return encode_text(e, (const uint8_t *)s, n, flags, k);
    if (n > SIZE_MAX / 3 || (clean = malloc(n * 3)) == NULL)
        return -1;
    m = utf8_clean_len(s, n, clean);
    rc = encode_text(e, (const uint8_t *)clean, m, flags, k);
    free(clean);
    return rc;
}

int tok_encode(const tok_enc *e, const char *s, size_t n, unsigned flags, tok_ids *out)
{
    sink k = {out, 0, 0};

    return encode_any(e, s, n, flags, &k);
}

int tok_count(const tok_enc *e, const char *s, size_t n, unsigned flags, uint64_t *count)
{
    sink k = {NULL, 0, 0};
    int rc = encode_any(e, s, n, flags, &k);

    *count = k.count;
    return rc;
}

const char *tok_token_bytes(const tok_enc *e, uint32_t id, size_t *len)
{
    if (id < e->nranks && e->lens[id] != 0) {
        *len = e->lens[id];
        return (const char *)e->bytes + e->offs[id];
    }
    for (size_t q = 0; q < e->nspecials; q++) {
        if (e->specials[q].id == id) {
            *len = strlen(e->specials[q].text);
            return e->specials[q].text;
        }
    }
    return NULL;
}

/*
 * In JSON text a backslash is in a string and starts an escape, so "u0000" is the escape when
 * an odd run of backslashes ends right before it. One memmem for "u0000", which is rare, rather
 * than a memchr for every backslash, which are not: 4 KB of chat text with 315 escapes (line
 * breaks and tabs) took 1.43 us that way and takes 0.67.
 */
int tok_json_has_nul_escape(const char *s, size_t n)
{
    const char *p = s, *end = s + n, *u;

    while (end - p >= 6 && (u = memmem(p + 1, (size_t)(end - p - 1), "u0000", 5)) != NULL) {
        size_t k = 0;
        while (k < (size_t)(u - s) && u[-1 - (ptrdiff_t)k] == '\\')
            k++;
        if (k % 2 == 1)
            return 1;
        p = u;
    }
    return 0;
}

void tok_ids_free(tok_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}
