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
#include "tokenizer/tokshort-int.h"

/*
 * Where the block loop writes ids: straight into the caller's list, whose room for a window's
 * worth of ids is made before the window, or, when only counting, into a scratch array that is
 * counted and reused. out_room hands the list back to emit() (for piece_slow) and takes it again.
 */
#define BATCH (8 * WIN) /* the most pieces in a batch: eight windows' */
/* the most ids a batch writes here: a cached piece's CACHE_IDS, and a run of tokens copied
 * sixteen at a time writes up to sixteen more */
#define OUT_ROOM (BATCH * CACHE_IDS + 16)
#define LAG 32 /* pieces between a fast-table bucket's prefetch and its probe */

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
 * The fast key of the piece of len bytes at p (WHOLE_MAX bytes may be read there): its bytes and
 * length as fast_key makes them for len <= FAST_MAX. For a longer piece the top byte is its
 * eighth byte or'ed with a length >= 8, never the 1 to FAST_MAX of a key in the table, so the
 * key matches no bucket and no branch on the length is needed.
 */
static inline uint64_t window_key(const uint8_t *p, uint32_t len)
{
    uint64_t k8;

    memcpy(&k8, p, 8);
#ifdef __BMI2__
    k8 = _bzhi_u64(k8, len * 8); /* an index >= 64 keeps every bit */
#else
    k8 &= len < 8 ? ((uint64_t)1 << (len * 8)) - 1 : ~(uint64_t)0;
#endif
    return k8 | (uint64_t)len << 56;
}

/*
 * ahead_key for a piece of a window (1 < len <= CACHE_KEY; WHOLE_MAX bytes may be read at p),
 * the same words and hash with selects in place of branches on the length.
 */
static inline __attribute__((always_inline)) void window_ahead(ahead *a, const uint8_t *p,
                                                               size_t len)
{
    uint64_t w0, w1, w2, h8, h24;
    size_t tail = len > 8 ? len - 8 : 0;

    memcpy(&w0, p, 8);
    memcpy(&w1, p + (len > 16 ? 8 : tail), 8);
    memcpy(&w2, p + tail, 8);
    w0 &= ~(uint64_t)0 >> (64 - 8 * (len < 8 ? len : 8)); /* masks, not branches */
    w1 &= -(uint64_t)(len > 8);
    w2 &= -(uint64_t)(len > 16);
    h8 = hash_short(w0, len);
    h24 = hash_long(w0, w1, w2, len);
    a->w[0] = w0;
    a->w[1] = w1;
    a->w[2] = w2;
    a->h = sel64(len > 8, h24, h8);
}

/*
 * Piece t of a window at b, from offset off to end: its end noted, its fast key made and its
 * bucket prefetched.
 */
static inline __attribute__((always_inline)) void window_piece(const tok_enc *e, const uint8_t *b,
                                                               unsigned off, unsigned end,
                                                               unsigned t, uint32_t *ends,
                                                               uint64_t *fk, const tok_fast **fb)
{
    ends[t + 1] = end;
    fk[t] = window_key(b + off, end - off);
    fb[t] = &e->fast[fast_index(e, fk[t])];
    __builtin_prefetch(fb[t]);
}

/*
 * The ranks among rank[0, np) that are NO_RANK, as bits of mm (bit t % 64 of word t / 64), eight
 * compared at once; rank has room for eight more, which are cleared first.
 */
static inline __attribute__((always_inline)) void no_rank_mask(uint32_t *rank, unsigned np,
                                                               uint64_t *mm)
{
    memset(rank + np, 0, 8 * sizeof(uint32_t));
    for (unsigned q = 0; q * 64 < np; q++)
        mm[q] = 0;
    for (unsigned t = 0; t < np; t += 8) {
#ifdef __AVX2__
        __m256i v = _mm256_loadu_si256((const __m256i *)(rank + t));
        uint64_t m = (uint32_t)_mm256_movemask_ps(
            _mm256_castsi256_ps(_mm256_cmpeq_epi32(v, _mm256_set1_epi32(-1))));
#else
        __m128i v0 = _mm_loadu_si128((const __m128i *)(rank + t));
        __m128i v1 = _mm_loadu_si128((const __m128i *)(rank + t + 4));
        uint64_t m = (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v0, _mm_set1_epi32(-1)))) |
                     (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v1, _mm_set1_epi32(-1)))) << 4;
#endif
        mm[t / 64] |= m << (t % 64);
    }
}

/*
 * Whether a window may start with n bytes left: room to read it (always, in the padded copy of
 * the text's end: see block_run). Any text: window_decide_hi() classifies the characters outside
 * ASCII, and a window that decides nothing hands its first piece to the scalar scanner.
 */
static inline int window_at(size_t n, int padded)
{
    return padded ? n >= 1 : n >= WIN + WHOLE_MAX;
}

/*
 * The block encoder, compiled once per classifier and pattern: always inlined into
 * tok_encode_block_sse2 and tok_encode_block_avx2 with the classifier inlined too, and cl (1 for
 * cl100k, 0 for o200k) a constant, so that each pattern's rules fold into a loop of its own.
 * counting (the sink keeps no ids) leaves the ids unwritten; it stays a variable: a third and
 * fourth copy for it made the encoding copies 25 % slower on en_prose.txt (the cause not found). It
 * works in batches of pieces found from the start masks of up to BATCH / WIN windows, each
 * classified from the last start of the one before (its characters outside ASCII by
 * window_decide_hi_memo, from what the window before classified); where a window decides nothing (a
 * character no mask can say near its start, a piece longer than the window) the scalar scanner
 * finds one piece, encoded the long way. In a window batch each piece is keyed and its fast-table
 * bucket prefetched as it is found, and probed after the first window that ends LAG pieces or more
 * later; the longer pieces are asked of the whole-piece table, the pieces that are no token keyed
 * for the piece cache and its sets prefetched, and the ids written in order. The text's last bytes
 * are worked on in a zero-padded copy, so that windows reach its end.
 */
static inline __attribute__((always_inline)) int block_run(const tok_enc *e, const uint8_t *s,
                                                           size_t n, sink *k,
                                                           void (*classify)(const uint8_t *, win *,
                                                                            int),
                                                           int counting, int cl)
{
    cache_ent *c = tok_piece_cache();
    size_t i = 0;
    int padded = 0;
    uint8_t pad[2 * (WIN + WHOLE_MAX) + 16];
    outbuf o;
    /* fk and fb: each piece's fast key and bucket; wk and wh: the longer pieces' whole-piece keys
     * and hashes, by their place in lng */
    uint64_t fk[BATCH], wk[BATCH][3], wh[BATCH], mm[BATCH / 64];
    const tok_fast *fb[BATCH];
    uint32_t rank[BATCH + 16], ends[BATCH + 1];
    uint16_t lng[BATCH], mis[BATCH];
    ahead miss[BATCH];
    hi_memo hm = {.valid = 0}; /* the characters outside ASCII the last window classified */

    o.at = o.base = k->ids != NULL ? NULL : o.scratch;
    if (n > UINT32_MAX || tok_out_room(&o, k) != 0)
        return -1;
    ends[0] = 0;
    while (i < n) {
        const uint8_t *b;
        unsigned np = 0, nl = 0, nm = 0, probed = 0;

        if (!padded && n - i < WIN + WHOLE_MAX) {
            /* the text's end, from a piece's start: copied where windows may read past it (the
             * bytes past the end are whitespace no rule reads: window_pad) */
            memset(pad, 0, sizeof(pad));
            memcpy(pad, s + i, n - i);
            s = pad;
            n -= i;
            i = 0;
            padded = 1;
            hm.valid = 0; /* its offsets were the text's */
        }
        b = s + i;

        /* pass 1: the pieces of up to BATCH / WIN windows, each window classified from the
         * last piece's start; each piece keyed for the fast table and
         * its bucket prefetched, without a branch on its length (a longer piece's key matches
         * no bucket: see window_key); then the window's longer pieces (no other start within
         * FAST_MAX bytes of theirs), keyed for the whole-piece table, their slots prefetched */
        while (np + WIN <= BATCH && window_at(n - i - ends[np], padded)) {
            win w;
            unsigned off = ends[np], base = off, np0 = np;
            uint64_t st, t, near;
            classify(b + base, &w, !cl);
            if (w.hi != 0)
                window_decide_hi_memo(&w, b + base, !cl, &hm, i + base);
            if (n - i - base < WIN) /* padded: past the end */
                window_pad(&w, (unsigned)(n - i - base));
            st = cl ? starts_cl100k(&w, b + base) : starts_o200k(&w, b + base);
            for (t = st & ~(uint64_t)1; t != 0; t &= t - 1) {
                unsigned end = base + (unsigned)__builtin_ctzll(t);
                window_piece(e, b, off, end, np, ends, fk, fb);
                np++;
                off = end;
            }
            if (np == np0) /* a piece longer than the window */
                break;
            /* the pieces LAG and more before: their buckets were prefetched LAG pieces ago */
            for (; probed + LAG < np; probed++)
                rank[probed] = fast_lookup(fb[probed], fk[probed]);
            near = st >> 1; /* near: another start within FAST_MAX bytes after */
            near |= near >> 1;
            near |= near >> 2;
            near |= near >> 3;
            for (t = st & ~near & ~((uint64_t)1 << (63 - __builtin_clzll(st))); t != 0;
                 t &= t - 1) {
                unsigned j = (unsigned)__builtin_ctzll(t);
                unsigned u = np0 + (unsigned)__builtin_popcountll(st & (((uint64_t)1 << j) - 1));
                size_t len = ends[u + 1] - ends[u];
                if (len <= WHOLE_MAX) {
                    const uint8_t *p = b + ends[u];
                    memcpy(&wk[nl][0], p, 8);
                    load_rest(p, len, &wk[nl][1], &wk[nl][2]);
                    /* both mixes, selected: which one a piece needs is a coin toss */
                    uint64_t hs = hash_short(wk[nl][0], len);
                    uint64_t hl = hash_long(wk[nl][0], wk[nl][1], wk[nl][2], len);
                    wh[nl] = sel64(len > 8, hl, hs);
                    __builtin_prefetch(&e->whole[wh[nl] & e->wmask]);
                }
                lng[nl++] = (uint16_t)u;
            }
        }
        if (np == 0) {
            /* a piece no window decides (one that starts with whitespace or a number outside
             * ASCII, one longer than a window): the scalar scanner's, encoded the long way; then
             * the windows again */
            size_t j = pretok_next(e->pat, s, i, n);
            out_give(&o, k);
            if (tok_piece_slow(e, s, i, j, c, k) != 0 || tok_out_room(&o, k) != 0)
                return -1;
            i = j;
            continue;
        }
        /* pass 2: the pieces not yet asked of the fast table, the longer pieces of the
         * whole-piece table; mm marks the pieces that are no token (or were left out of the
         * fast table), which are listed, keyed for the piece cache, and their sets prefetched */
        for (unsigned t = probed; t < np; t++)
            rank[t] = fast_lookup(fb[t], fk[t]);
        for (unsigned l = 0; l < nl; l++) {
            unsigned t = lng[l];
            size_t len = ends[t + 1] - ends[t];
            rank[t] = len <= WHOLE_MAX ? whole_lookup(e, len, wk[l], wh[l]) : NO_RANK;
        }
        no_rank_mask(rank, np, mm);
        for (unsigned q = 0; q * 64 < np; q++)
            for (uint64_t x = mm[q]; x != 0; x &= x - 1)
                mis[nm++] = (uint16_t)(q * 64 + (unsigned)__builtin_ctzll(x));
        for (unsigned x = 0; x < nm; x++) {
            unsigned t = mis[x];
            ahead *a = &miss[x];
            size_t len = ends[t + 1] - ends[t];
            a->start = (uint32_t)(i + ends[t]);
            a->len = (uint32_t)len;
            if (len <= CACHE_KEY) {
                window_ahead(a, b + ends[t], len);
                /* English and code nearly always find theirs in the first set; other scripts,
                 * whose distinct pieces are many more, in either */
                if (c != NULL && ((a->w[0] | a->w[1] | a->w[2]) & 0x8080808080808080ull))
                    cache_prefetch(c, a->h);
                else if (c != NULL)
                    cache_prefetch_first(c, a->h);
            } else if (len <= SMALL_PIECE) {
                ahead_key(a, b + ends[t], len);
                long_prefetch(len, a->h);
            }
        }
        /* pass 3: emit in order, the runs of tokens between the others copied sixteen at a time
         * (rank has the room, and the list OUT_ROOM) */
        for (unsigned x = 0, t = 0;; x++) {
            unsigned u = x < nm ? mis[x] : np;
            const ahead *a;
            const cache_ent *ce;
            int rc;
            if (!counting) {
                memcpy(o.at, &rank[t], 16 * sizeof(uint32_t)); /* most runs: no loop to leave */
                for (unsigned q = t + 16; q < u; q += 16)
                    memcpy(o.at + (q - t), &rank[q], 16 * sizeof(uint32_t));
            }
            o.at += u - t;
            if (x == nm)
                break;
            t = u + 1;
            a = &miss[x];
            ce = NULL;
            if (a->len <= CACHE_KEY && c != NULL) {
                ce = cache_find(c, a, e->id);
                if (ce != NULL && ce->nids != CACHE_LONG) { /* all CACHE_IDS copied */
                    if (!counting)
                        memcpy(o.at, ce->ids, sizeof(ce->ids));
                    o.at += ce->nids;
                    continue;
                }
            }
            if (ce == NULL && a->len <= SHORT_MERGE_MAX &&
                ((a->w[0] | a->w[1] | a->w[2]) & 0x8080808080808080ull) == 0) {
                /* a short ASCII piece: merged here, compiled for this classifier's CPU */
                uint32_t tok[SHORT_MERGE_MAX];
                size_t m = short_merge(e, s + a->start, a->len, tok);
                if (m <= CACHE_IDS) {
                    memcpy(o.at, tok, m * sizeof(uint32_t));
                    o.at += m;
                } else {
                    out_give(&o, k);
                    for (size_t q = 0; q < m; q++)
                        emit(k, tok[q]);
                    if (k->failed || tok_out_room(&o, k) != 0)
                        return -1;
                }
                piece_remember(e, s + a->start, a, c != NULL ? cache_pick(c, a->h) : NULL, tok, m);
                continue;
            }
            out_give(&o, k);
            rc = a->len <= CACHE_KEY ? tok_piece_merge(e, s, a, c, k)
                                     : tok_piece_encode(e, s, a, c, k);
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
