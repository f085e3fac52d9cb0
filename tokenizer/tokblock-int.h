/*
 * tokblock-int: the block encoder's loop, as a macro that tokblock.c instantiates with the SSE2
 * classifier and tokblock_avx2.c, compiled with -mavx2, with the AVX2 one (so that everything
 * the loop inlines is compiled for the same CPU). Not for use outside tokenizer/.
 */
#ifndef TOK_TOKBLOCK_INT_H
#define TOK_TOKBLOCK_INT_H

#include <string.h>

#include "tokenizer/pretok_simd-int.h"
#include "tokenizer/tok-int.h"
#include "tokenizer/tokpiece-int.h"

/*
 * Where the block loop writes ids: straight into the caller's list, whose room for a window's
 * worth of ids is made before the window, or, when only counting, into a scratch array that is
 * counted and reused. out_room hands the list back to emit() (for piece_slow) and takes it again.
 */
typedef struct outbuf {
    uint32_t *at, *base;
    uint32_t scratch[WIN];
} outbuf;

/* Hands what the loop wrote back to the sink, so that emit() may append (piece_slow). */
static inline void out_give(outbuf *o, sink *k)
{
    tok_ids *ids = k->ids;

    if (ids == NULL) {
        k->count += (uint64_t)(o->at - o->scratch);
        o->at = o->base = o->scratch;
        return;
    }
    if (o->base != NULL) { /* NULL: the list is the sink's already */
        ids->n = (size_t)(o->at - ids->v);
        k->count += (uint64_t)(o->at - o->base);
        o->at = o->base = NULL;
    }
}

/* Takes the list back with room for WIN more ids at o->at; -1 when memory runs out. */
int tok_out_room(outbuf *o, sink *k);

/* Encodes the piece s[i, j) the long way: its key words, the vocabulary, then the piece cache
 * or the merge. Out of line: the block loop takes the short tokens itself. */
int tok_piece_slow(const tok_enc *e, const uint8_t *s, size_t i, size_t j, cache_ent *c, sink *k);

/* The ids of a piece (1 < a->len <= SMALL_PIECE, keyed by ahead_key) that is no token: from the
 * piece cache, or merged and then remembered there. Returns 0, or -1 when memory runs out. */
int tok_piece_merge(const tok_enc *e, const uint8_t *s, const ahead *a, cache_ent *c, sink *k);

/* The block encoder on each classifier (SSE2 in tokblock.c, AVX2 in tokblock_avx2.c). */
int tok_encode_block_sse2(const tok_enc *e, const uint8_t *s, size_t n, sink *k);
int tok_encode_block_avx2(const tok_enc *e, const uint8_t *s, size_t n, sink *k);


/*
 * The block encoder, compiled once per classifier (always inlined into tok_encode_block_sse2 and
 * tok_encode_block_avx2, with the classifier inlined too). A window of WIN bytes is classified
 * from the start of the next piece; the masks decide pieces until one they cannot decide, which
 * then goes to the scalar scanner (or, when it only ran past the window, starts the next
 * window). Then, in a second pass over the window's pieces, whose vocabulary buckets were
 * prefetched as they were found: a piece of one byte, or of two to eight bytes that is a token,
 * is emitted here; any other goes to tok_piece_slow.
 */
static inline __attribute__((always_inline)) int block_run(const tok_enc *e, const uint8_t *s,
                                                           size_t n, sink *k,
                                                           void (*classify)(const uint8_t *, win *))
{
    cache_ent *c = tok_piece_cache();
    size_t i = 0;
    int cl = e->pat == PRETOK_CL100K;
    outbuf o;
    uint64_t key[WIN][3], hash[WIN];
    uint32_t rank[WIN];
    uint8_t ends[WIN + 1];
    ahead miss[WIN];

    o.at = o.base = k->ids != NULL ? NULL : o.scratch;
    if (n > UINT32_MAX || tok_out_room(&o, k) != 0)
        return -1;
    ends[0] = 0;
    while (i < n) {
        if (n - i >= WIN + WHOLE_MAX && s[i] < 0x80 && s[i + 1] < 0x80) {
            win w;
            unsigned off = 0, end, np = 0, nm = 0;
            int why = PRETOK_SIMD_EDGE;
            const uint8_t *b = s + i;
            classify(b, &w);
            /* pass 1: the pieces, their keys, and a prefetch of each one's slot: the fast table
             * for 2 to FAST_MAX bytes, the whole-piece table for WHOLE_MIN to WHOLE_MAX; up to
             * WHOLE_MAX bytes may be read at any offset (n - i >= WIN + WHOLE_MAX) */
            while (off < WIN && (end = cl ? decide_cl100k(&w, b, off, &why)
                                          : decide_o200k(&w, b, off, &why)) != 0) {
                size_t len = end - off;
                const uint8_t *p = b + off;
                uint64_t k8;
                memcpy(&k8, p, 8);
                if (len <= FAST_MAX) {
                    k8 = fast_key(k8 & (((uint64_t)1 << (len * 8)) - 1), len);
                    hash[np] = fast_index(e, k8);
                    __builtin_prefetch(&e->fast[hash[np]]);
                } else if (len <= WHOLE_MAX) {
                    load_rest(p, len, &key[np][1], &key[np][2]);
                    hash[np] = hash_words(p, len, k8, key[np][1], key[np][2]);
                    __builtin_prefetch(&e->whole[hash[np] & e->wmask]);
                }
                key[np][0] = k8;
                ends[++np] = (uint8_t)end;
                off = end;
            }
            /* pass 2: probe; a piece that is no token (or not in the fast table) is keyed for
             * the piece cache, and its set prefetched */
            for (unsigned t = 0; t < np; t++) {
                size_t len = ends[t + 1] - ends[t];
                uint32_t r = NO_RANK;
                if (len == 1)
                    r = e->byte_rank[b[ends[t]]];
                else if (len <= FAST_MAX)
                    r = fast_lookup(&e->fast[hash[t]], key[t][0]);
                else if (len <= WHOLE_MAX)
                    r = whole_lookup(e, len, key[t], hash[t]);
                rank[t] = r;
                if (r == NO_RANK) {
                    ahead *a = &miss[nm++];
                    a->start = (uint32_t)(i + ends[t]);
                    a->len = (uint32_t)len;
                    if (len <= CACHE_KEY) {
                        ahead_key(a, b + ends[t], len);
                        if (c != NULL) {
                            cache_ent *set = cache_set(c, a->h);
                            __builtin_prefetch(&set[0]);
                            __builtin_prefetch(&set[1]);
                        }
                    }
                }
            }
            /* pass 3: emit in order */
            for (unsigned t = 0, m = 0; t < np; t++) {
                const ahead *a;
                int rc;
                if (__builtin_expect(rank[t] != NO_RANK, 1)) {
                    *o.at++ = rank[t];
                    continue;
                }
                a = &miss[m++];
                out_give(&o, k);
                rc = a->len <= CACHE_KEY ? tok_piece_merge(e, s, a, c, k)
                                         : tok_piece_slow(e, s, a->start, a->start + a->len, c, k);
                if (rc != 0 || k->failed || tok_out_room(&o, k) != 0)
                    return -1;
            }
            i += off;
            if (tok_out_room(&o, k) != 0)
                return -1;
            if (off != 0)
                continue; /* the undecided piece starts the next window */
        }
        size_t j = pretok_next(e->pat, s, i, n);
        out_give(&o, k);
        if (tok_piece_slow(e, s, i, j, c, k) != 0 || tok_out_room(&o, k) != 0)
            return -1;
        i = j;
    }
    out_give(&o, k);
    return k->failed ? -1 : 0;
}

#endif
