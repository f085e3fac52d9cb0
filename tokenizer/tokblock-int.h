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
#define OUT_ROOM (WIN * CACHE_IDS) /* the most ids a batch writes here: cache hits are up to 9 */

typedef struct outbuf {
    uint32_t *at, *base;
    uint32_t scratch[OUT_ROOM];
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

/* Takes the list back with room for OUT_ROOM more ids at o->at; -1 when memory runs out. */
int tok_out_room(outbuf *o, sink *k);

/* Encodes the piece s[i, j) the long way: its key words, the vocabulary, then the piece cache
 * or the merge. Out of line: the block loop takes the short tokens itself. */
int tok_piece_slow(const tok_enc *e, const uint8_t *s, size_t i, size_t j, cache_ent *c, sink *k);

/* The ids of a piece (a->len <= SMALL_PIECE, keyed by ahead_key) that is no token: from the
 * piece cache, or merged and then remembered there. Returns 0, or -1 when memory runs out. */
int tok_piece_merge(const tok_enc *e, const uint8_t *s, const ahead *a, cache_ent *c, sink *k);

/* The block encoder on each classifier (SSE2 in tokblock.c, AVX2 in tokblock_avx2.c). */
int tok_encode_block_sse2(const tok_enc *e, const uint8_t *s, size_t n, sink *k);
int tok_encode_block_avx2(const tok_enc *e, const uint8_t *s, size_t n, sink *k);


/*
 * Keys piece t of a batch, the len bytes at p, and prefetches its table line: the fast table for
 * up to FAST_MAX bytes, the whole-piece table for WHOLE_MIN to WHOLE_MAX, nothing for longer
 * pieces (they go the long way). wide: WHOLE_MAX bytes may be read at p.
 */
static inline __attribute__((always_inline)) void batch_key(const tok_enc *e, const uint8_t *p,
                                                            size_t len, int wide, uint64_t *key,
                                                            uint64_t *hash)
{
    uint64_t k8;

    if (wide)
        memcpy(&k8, p, 8);
    else
        k8 = load_k8(p, len < 8 ? len : 8);
    if (len <= FAST_MAX) {
        k8 = fast_key(k8 & (((uint64_t)1 << (len * 8)) - 1), len);
        *hash = fast_index(e, k8);
        __builtin_prefetch(&e->fast[*hash]);
    } else if (len <= WHOLE_MAX) {
        load_rest(p, len, &key[1], &key[2]);
        *hash = hash_words(p, len, k8, key[1], key[2]);
        __builtin_prefetch(&e->whole[*hash & e->wmask]);
    }
    key[0] = k8;
}

/*
 * Whether a window may start at p, with n bytes left: room for it, and the next 16 bytes ASCII.
 * Text with non-ASCII bytes every few characters (most of the world's) would only pay for a
 * window that decides a piece or two.
 */
static inline int ascii_ahead(const uint8_t *p, size_t n)
{
    return n >= WIN + WHOLE_MAX && _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)p)) == 0;
}

/*
 * The block encoder, compiled once per classifier (always inlined into tok_encode_block_sse2 and
 * tok_encode_block_avx2, with the classifier inlined too). It works in batches of at most WIN
 * pieces, found one of two ways: from the masks of a window of WIN bytes classified from the
 * next piece's start, until a piece they cannot decide; or, where the window decides nothing (a
 * non-ASCII byte at the start, a piece longer than the window), by the scalar scanner, until the
 * text is ASCII again. Each piece is keyed and its table line prefetched as it is found. Then
 * the batch is probed (pieces that are no token are keyed for the piece cache, and its set
 * prefetched), and emitted in order.
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
    uint32_t rank[WIN], ends[WIN + 1];
    ahead miss[WIN];

    o.at = o.base = k->ids != NULL ? NULL : o.scratch;
    if (n > UINT32_MAX || tok_out_room(&o, k) != 0)
        return -1;
    ends[0] = 0;
    while (i < n) {
        const uint8_t *b = s + i;
        unsigned np = 0, nm = 0;

        /* pass 1: the pieces, keyed, their table lines prefetched; in a window, WHOLE_MAX bytes
         * may be read at any offset (n - i >= WIN + WHOLE_MAX) */
        if (ascii_ahead(b, n - i)) {
            win w;
            unsigned off = 0, end;
            int why = PRETOK_SIMD_EDGE;
            classify(b, &w);
            if (cl) {
                /* the window's piece starts, all at once */
                uint64_t t = starts_cl100k(&w, b) & ~(uint64_t)1;
                while (t != 0) {
                    end = (unsigned)__builtin_ctzll(t);
                    t &= t - 1;
                    batch_key(e, b + off, end - off, 1, key[np], &hash[np]);
                    ends[++np] = end;
                    off = end;
                }
            } else {
                while (off < WIN && (end = decide_o200k(&w, b, off, &why)) != 0) {
                    batch_key(e, b + off, end - off, 1, key[np], &hash[np]);
                    ends[++np] = end;
                    off = end;
                }
            }
        }
        if (np == 0) {
            /* text the masks do not decide (non-ASCII above all, where most pieces are no
             * token): the scalar path's order, piece cache first, its sets and the vocabulary
             * slots prefetched for the batch */
            size_t at = 0;
            do {
                ahead *a = &miss[np++];
                size_t j = pretok_next(e->pat, s, i + at, n) - i, len = j - at;
                a->start = (uint32_t)(i + at);
                a->len = (uint32_t)len;
                if (len > 1 && len <= SMALL_PIECE) {
                    ahead_key(a, b + at, len);
                    if (len <= CACHE_KEY && c != NULL) {
                        cache_ent *set = cache_set(c, a->h);
                        __builtin_prefetch(&set[0]);
                        __builtin_prefetch(&set[1]);
                    }
                    if (len <= MAX_TOKEN_LEN)
                        __builtin_prefetch(vocab_slot(e, a));
                }
                at = j;
            } while (np < WIN && i + at < n && !ascii_ahead(b + at, n - (i + at)));
            for (unsigned t = 0; t < np; t++) {
                const ahead *a = &miss[t];
                const cache_ent *ce = NULL;
                if (a->len == 1) {
                    *o.at++ = e->byte_rank[s[a->start]];
                    continue;
                }
                if (a->len <= CACHE_KEY && c != NULL)
                    ce = cache_find(c, a, e->id);
                if (ce != NULL) { /* at most CACHE_IDS ids a piece: within OUT_ROOM */
                    memcpy(o.at, ce->ids, ce->nids * sizeof(uint32_t));
                    o.at += ce->nids;
                    continue;
                }
                out_give(&o, k);
                if (tok_piece_encode(e, s, a, c, k) != 0 || k->failed || tok_out_room(&o, k) != 0)
                    return -1;
            }
            i += at;
            if (tok_out_room(&o, k) != 0)
                return -1;
            continue;
        }
        /* pass 2: probe; a piece that is no token (or not in the fast table) is keyed for the
         * piece cache, and its set prefetched */
        for (unsigned t = 0; t < np; t++) {
            size_t len = ends[t + 1] - ends[t];
            uint32_t r = NO_RANK;
            if (len <= FAST_MAX) /* single bytes are in the fast table too */
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
        i += ends[np];
        if (tok_out_room(&o, k) != 0)
            return -1;
    }
    out_give(&o, k);
    return k->failed ? -1 : 0;
}

#endif
