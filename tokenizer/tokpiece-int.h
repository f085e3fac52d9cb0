/*
 * tokpiece-int: what both encoders (tok.c's scalar path, tokblock.c's block path) need to know
 * about one piece of the pre-tokenizer's output: its key words and hash, the per-thread piece
 * cache, and the whole-piece vocabulary probes. Not for use outside tokenizer/.
 */
#ifndef TOK_TOKPIECE_INT_H
#define TOK_TOKPIECE_INT_H

#include "tokenizer/tok-int.h"

/*
 * The piece cache: the ids of recently seen pieces, so that a word seen before costs one
 * lookup, prefetched a few pieces ahead, instead of a merge. One per thread: 131,072 sets of two
 * 64-byte entries (16 MiB), each entry one cache line, its key compared as three words. A piece
 * may live in either of two sets, chosen by two parts of its hash: it goes into the first unless
 * that is full and the second is not, and within a set into the first way, the first way's piece
 * moving to the second. A lookup compares the first set's two keys, and the second set's only
 * when the first set is full (only then can the piece be there). Pieces with bytes outside
 * ASCII (other scripts, where sets fill) prefetch both sets, ASCII pieces only the first:
 * on en_prose (cl100k, caches kept), half the lines a piece that is not a token, and
 * alternating runs gave 374 against 352 MB/s (means of 7; every pair but one in its favour),
 * with the cache emptied 193 against 182; code_c (o200k) 362 against 344; multilingual the same.
 * Measured on the multilingual corpus, whose 104,000 distinct pieces of 2 to 24 bytes are what a
 * pass with the cache kept must find (cl100k): with one set a piece and half as many sets, a
 * pass merged 14,663 of them again (the sets that overflow lose every piece to the next, pass
 * after pass) and ran at 59-67 MB/s; with one set and these sets, 14,663 and 73-81; with two
 * sets a piece, 515 and 97-104. English and code ran the same.
 * Allocated on first use (the gate's workers do it as they start) and freed when the thread
 * ends. It only remembers results, which are a function of the piece and the encoding, so it
 * can never change an encoding; this is why it may be per-thread state rather than something
 * every caller passes in.
 */
#ifndef CACHE_BITS
#define CACHE_BITS 17 /* sets */
#endif
#define CACHE_WAYS 2
#define CACHE_KEY 24 /* longest piece cached, in bytes: the three words of the key */
#define CACHE_IDS 9  /* most ids a cached piece may have */

typedef struct cache_ent {
    uint64_t w[3]; /* the key's words: see load_rest */
    uint8_t enc;   /* which encoding (its id); 0 is empty */
    uint8_t len;
    uint8_t nids;
    uint8_t pad;
    uint32_t ids[CACHE_IDS];
} cache_ent;
_Static_assert(sizeof(cache_ent) == 64, "a cache entry is one cache line");

#define CACHE_SIZE (((size_t)CACHE_WAYS << CACHE_BITS) * sizeof(cache_ent))

/* This thread's cache, or NULL when it cannot be had (the encoder then works without). */
cache_ent *tok_piece_cache(void);

/* The first set of a piece whose hash is h: CACHE_WAYS entries, on a 128-byte boundary. */
static inline cache_ent *cache_set(cache_ent *c, uint64_t h)
{
    return &c[((h >> 40) & (((size_t)1 << CACHE_BITS) - 1)) * CACHE_WAYS];
}

/* Its second set, from other bits of the hash. */
static inline cache_ent *cache_alt(cache_ent *c, uint64_t h)
{
    return &c[((h >> 17) & (((size_t)1 << CACHE_BITS) - 1)) * CACHE_WAYS];
}

/* Starts the loads of both sets of a piece whose hash is h. */
static inline void cache_prefetch(cache_ent *c, uint64_t h)
{
    cache_ent *set = cache_set(c, h), *alt = cache_alt(c, h);

    __builtin_prefetch(&set[0]);
    __builtin_prefetch(&set[1]);
    __builtin_prefetch(&alt[0]);
    __builtin_prefetch(&alt[1]);
}

/* Starts the loads of the first set only: a piece of English or code is nearly always there. */
static inline void cache_prefetch_first(cache_ent *c, uint64_t h)
{
    cache_ent *set = cache_set(c, h);

    __builtin_prefetch(&set[0]);
    __builtin_prefetch(&set[1]);
}

/* The set a new piece whose hash is h goes into: the first, unless it is full and the second
 * is not (a set fills its first way first). */
static inline cache_ent *cache_pick(cache_ent *c, uint64_t h)
{
    cache_ent *set = cache_set(c, h), *alt = cache_alt(c, h);

    return set[1].enc == 0 || alt[1].enc != 0 ? set : alt;
}

/* A piece of the pre-tokenizer's output, with its key words and hash. */
typedef struct ahead {
    uint32_t start, len;
    uint64_t w[3];
    uint64_t h;
} ahead;

/* Fills a's key words and hash from the len bytes at p (1 < len <= SMALL_PIECE). */
static inline void ahead_key(ahead *a, const uint8_t *p, size_t len)
{
    a->w[0] = load_k8(p, len);
    a->w[1] = a->w[2] = 0;
    if (len > 8 && len <= 24)
        load_rest(p, len, &a->w[1], &a->w[2]);
    a->h = hash_words(p, len, a->w[0], a->w[1], a->w[2]);
}

/* Whether entry ce holds the piece a of encoding id. */
static inline int cache_match(const cache_ent *ce, const ahead *a, uint8_t id)
{
    return ((ce->w[0] ^ a->w[0]) | (ce->w[1] ^ a->w[1]) | (ce->w[2] ^ a->w[2]) |
            (uint64_t)(ce->len ^ a->len) | (uint64_t)(ce->enc ^ id)) == 0;
}

/*
 * The long cache: the ids of the pieces that the piece cache cannot hold, those of CACHE_KEY + 1
 * to SMALL_PIECE bytes and those of more than CACHE_IDS ids, which would otherwise be merged
 * again at every sight (on the multilingual corpus, 11,000 pieces a pass with cl100k, as many with
 * o200k). One per thread, allocated when the piece cache is (tok_thread_prepare) or else the
 * first time such a piece is merged. Two tables of sets of two entries, each entry keyed by the
 * piece's hash and compared byte for byte, a piece in either of two sets as in the piece cache:
 * 8,192 sets of 256-byte entries for pieces of up to 64 bytes and 44 ids (4 MiB), 1,024 sets of
 * 1,024-byte entries for pieces of up to 256 bytes and 188 ids (2 MiB; with half as many sets,
 * the multilingual corpus's 900-odd distinct pieces of 65 to 256 bytes for o200k overflowed it,
 * and a pass with the caches kept ran at 120 MB/s instead of 133). A piece of up to
 * CACHE_KEY bytes that lives here leaves in the piece cache an entry whose nids is CACHE_LONG,
 * so that the piece cache's hit says where to look. Like the piece cache it only remembers
 * results, so it cannot change an encoding.
 */
#define CACHE_LONG 0xff /* a piece cache entry's nids: the ids are in the long cache */

/* An entry's head; the piece's bytes follow, then its ids (uint32_t, 4-byte aligned). */
typedef struct long_ent {
    uint64_t h;    /* the piece's hash (hash_words) */
    uint8_t enc;   /* which encoding (its id); 0 is empty */
    uint8_t pad;
    uint16_t len;
    uint16_t nids;
    uint16_t pad2;
} long_ent;

/* One table of the long cache. */
typedef struct long_kind {
    size_t size;   /* bytes an entry */
    size_t key;    /* longest piece, in bytes */
    size_t ids;    /* most ids */
    unsigned bits; /* log2 of the sets */
    size_t off;    /* where the table starts in the long cache */
} long_kind;

#define LONG_KEY 256 /* longest piece remembered: SMALL_PIECE */
#define LONG_SIZE ((size_t)(6 << 20))
static const long_kind long_kinds[2] = {
    {256, 64, (256 - sizeof(long_ent) - 64) / 4, 13, 0},
    {1024, LONG_KEY, (1024 - sizeof(long_ent) - LONG_KEY) / 4, 10, (size_t)4 << 20},
};
_Static_assert(sizeof(long_ent) == 16, "an entry's head is 16 bytes");
_Static_assert(LONG_KEY == SMALL_PIECE, "every piece that is not merged as a long one fits");

/* This thread's long cache, or NULL while it has none (tok.c). */
extern __thread uint8_t *tok_long_now;

/* This thread's long cache, allocated if it has none yet; NULL when it cannot be had. */
uint8_t *tok_long_cache(void);

/* The table for a piece of len bytes (len <= LONG_KEY). */
static inline const long_kind *long_kind_of(size_t len)
{
    return &long_kinds[len > long_kinds[0].key];
}

/* The w-th set (w = 0, 1) of a piece whose hash is h, in the table k of the long cache lc: two
 * entries. */
static inline long_ent *long_set(uint8_t *lc, const long_kind *k, uint64_t h, int w)
{
    size_t set = (w ? h >> 40 : h >> 20) & (((size_t)1 << k->bits) - 1);

    return (long_ent *)(lc + k->off + set * 2 * k->size);
}

static inline const uint8_t *long_bytes(const long_ent *le)
{
    return (const uint8_t *)(le + 1);
}

static inline const uint32_t *long_ids(const long_ent *le, const long_kind *k)
{
    return (const uint32_t *)((const uint8_t *)(le + 1) + k->key);
}

/* The way w of set: the set's first entry, or the one after it. */
static inline long_ent *long_way(long_ent *set, const long_kind *k, int w)
{
    return (long_ent *)((uint8_t *)set + (size_t)w * k->size);
}

/* Starts the loads of the long cache sets of a piece of len bytes whose hash is h (each entry's
 * first line, where its key starts), if the thread has a long cache. */
static inline void long_prefetch(size_t len, uint64_t h)
{
    if (tok_long_now != NULL) {
        const long_kind *k = long_kind_of(len);
        for (int s = 0; s < 2; s++) {
            long_ent *set = long_set(tok_long_now, k, h, s);
            __builtin_prefetch(set);
            __builtin_prefetch(long_way(set, k, 1));
        }
    }
}

/* The entry of the long cache that holds the piece a at p of encoding e, or NULL; its table in
 * *kp. */
static inline const long_ent *long_find(const tok_enc *e, const uint8_t *p, const ahead *a,
                                        const long_kind **kp)
{
    const long_kind *k;

    if (tok_long_now == NULL || a->len > LONG_KEY)
        return NULL;
    k = *kp = long_kind_of(a->len);
    for (int s = 0; s < 2; s++) {
        long_ent *set = long_set(tok_long_now, k, a->h, s);
        for (int w = 0; w < 2; w++) {
            const long_ent *le = long_way(set, k, w);
            if (le->h == a->h && le->len == a->len && le->enc == e->id &&
                memcmp(long_bytes(le), p, a->len) == 0)
                return le;
        }
        if (long_way(set, k, 1)->enc == 0)
            return NULL; /* the first set is not full: the piece went nowhere else */
    }
    return NULL;
}

/* Remembers the m ids at tok of the piece a at p of encoding e in the long cache, in the set
 * that the piece cache's rule picks, the first way's piece moving to the second. Returns 0, or
 * -1 when the piece is not remembered (too long, too many ids, or no memory). */
static inline int long_put(const tok_enc *e, const uint8_t *p, const ahead *a,
                           const uint32_t *tok, size_t m)
{
    const long_kind *k;
    uint8_t *lc;
    long_ent *set, *alt, *one;

    if (a->len > LONG_KEY || (lc = tok_long_cache()) == NULL)
        return -1;
    k = long_kind_of(a->len);
    if (m > k->ids)
        return -1;
    set = long_set(lc, k, a->h, 0);
    alt = long_set(lc, k, a->h, 1);
    if (long_way(set, k, 1)->enc != 0 && long_way(alt, k, 1)->enc == 0)
        set = alt;
    one = long_way(set, k, 1);
    memcpy(one, set, k->size);
    set->h = a->h;
    set->enc = e->id;
    set->len = (uint16_t)a->len;
    set->nids = (uint16_t)m;
    memcpy((uint8_t *)(set + 1), p, a->len);
    memcpy((uint8_t *)(set + 1) + k->key, tok, m * sizeof(uint32_t));
    return 0;
}

/* Where the vocabulary probe of a piece of len bytes whose hash is h will look, for a prefetch
 * (1 < len <= MAX_TOKEN_LEN). */
static inline const void *vocab_slot_n(const tok_enc *e, size_t len, uint64_t h)
{
    if (len <= 8)
        return &e->bucket[h & e->bmask];
    if (len <= WHOLE_MAX)
        return &e->whole[h & e->wmask];
    return slot_of(e, len, h);
}

/* The same for the piece a. */
static inline const void *vocab_slot(const tok_enc *e, const ahead *a)
{
    return vocab_slot_n(e, a->len, a->h);
}

/* The rank of the piece a at p when it is itself a token (1 < a->len <= MAX_TOKEN_LEN), else
 * NO_RANK: from the whole-piece tables, which compare words and read no token bytes. */
static inline uint32_t vocab_rank(const tok_enc *e, const uint8_t *p, const ahead *a)
{
    if (a->len <= 8)
        return bucket_lookup(e, a->len, a->w[0], a->h);
    if (a->len <= WHOLE_MAX)
        return whole_lookup(e, a->len, a->w, a->h);
    return rank_lookup(e, p, a->len, a->h, a->w[0]);
}

/* The entry of the piece cache c that holds the piece a of encoding id, or NULL. The second
 * set is only read when the first is full: a piece goes there only when the first was full
 * (cache_pick), and a set never empties but all at once (tok_cache_clear). */
static inline cache_ent *cache_find(cache_ent *c, const ahead *a, uint8_t id)
{
    cache_ent *set = cache_set(c, a->h), *alt;

    if (cache_match(&set[0], a, id))
        return &set[0];
    if (cache_match(&set[1], a, id))
        return &set[1];
    if (set[1].enc == 0)
        return NULL;
    alt = cache_alt(c, a->h);
    return cache_match(&alt[0], a, id) ? &alt[0] : cache_match(&alt[1], a, id) ? &alt[1] : NULL;
}

/* Emits the ids of a cache entry. */
static inline void cache_emit(const cache_ent *ce, sink *k)
{
    if (k->ids == NULL) {
        k->count += ce->nids;
        return;
    }
    for (size_t i = 0; i < ce->nids; i++)
        emit(k, ce->ids[i]);
}

/* Takes the first way of the piece cache set set for the piece a of encoding id, with nids ids
 * (CACHE_LONG: its ids are in the long cache), the first way's piece moving to the second;
 * returns the entry, whose ids are the caller's to write. */
static inline cache_ent *cache_claim(cache_ent *set, const ahead *a, uint8_t id, uint8_t nids)
{
    set[1] = set[0];
    memcpy(set[0].w, a->w, sizeof(set[0].w));
    set[0].enc = id;
    set[0].len = (uint8_t)a->len;
    set[0].nids = nids;
    return &set[0];
}

/* Emits the ids of a long cache entry of table lk. */
static inline void long_emit(const long_ent *le, const long_kind *lk, sink *k)
{
    const uint32_t *ids = long_ids(le, lk);

    if (k->ids == NULL) {
        k->count += le->nids;
        return;
    }
    for (size_t i = 0; i < le->nids; i++)
        emit(k, ids[i]);
}

/*
 * Remembers the m ids at tok of the piece a at p of encoding e (1 < a->len <= SMALL_PIECE): in
 * the piece cache set set (NULL: not in the piece cache) when they fit there, else in the long
 * cache, set then marked.
 */
static inline void piece_remember(const tok_enc *e, const uint8_t *p, const ahead *a,
                                  cache_ent *set, const uint32_t *tok, size_t m)
{
    if (a->len <= CACHE_KEY && m <= CACHE_IDS) {
        if (set != NULL)
            memcpy(cache_claim(set, a, e->id, (uint8_t)m)->ids, tok, m * sizeof(uint32_t));
    } else if (long_put(e, p, a, tok, m) == 0 && set != NULL) {
        cache_claim(set, a, e->id, CACHE_LONG);
    }
}

/*
 * Finishes the piece a at p (1 < a->len <= SMALL_PIECE) that neither cache holds: its token r
 * when it is one, else its merge; emits the ids and remembers them (piece_remember).
 */
static inline void piece_finish(const tok_enc *e, const uint8_t *p, const ahead *a, uint32_t r,
                                cache_ent *set, sink *k)
{
    uint32_t tok[SMALL_PIECE];
    size_t m = 1;

    if (r != NO_RANK)
        tok[0] = r;
    else
        m = tok_merge_small(e, p, a->len, tok);
    for (size_t i = 0; i < m; i++)
        emit(k, tok[i]);
    piece_remember(e, p, a, set, tok, m);
}

/*
 * Encodes the piece a of s (keyed by ahead_key when 1 < a->len <= SMALL_PIECE): a single byte by
 * its rank, a piece longer than SMALL_PIECE by the long merge; else from the piece cache, or (when
 * vocab, and it is one) as its token, or merged, and then remembered in the cache. Returns 0, or
 * -1 when memory runs out.
 */
static inline int piece_encode(const tok_enc *e, const uint8_t *s, const ahead *a, cache_ent *c,
                               sink *k, int vocab)
{
    const uint8_t *p = s + a->start;
    size_t n = a->len;
    cache_ent *set = NULL, *ce;
    const long_ent *le;
    const long_kind *lk;

    if (n == 1) {
        emit(k, e->byte_rank[p[0]]);
        return 0;
    }
    if (n > SMALL_PIECE)
        return tok_merge_large(e, p, n, k);
    if (n <= CACHE_KEY && c != NULL) {
        if ((ce = cache_find(c, a, e->id)) == NULL) {
            set = cache_pick(c, a->h);
        } else if (ce->nids != CACHE_LONG) {
            cache_emit(ce, k);
            return 0;
        } else if ((le = long_find(e, p, a, &lk)) != NULL) {
            long_emit(le, lk, k);
            return 0;
        } /* else marked, but gone from the long cache: merged and put there again */
    } else if ((le = long_find(e, p, a, &lk)) != NULL) {
        long_emit(le, lk, k);
        return 0;
    }
    piece_finish(e, p, a, vocab && n <= MAX_TOKEN_LEN ? vocab_rank(e, p, a) : NO_RANK, set, k);
    return 0;
}

/* Encodes the piece a of s (a->start, a->len; keyed by ahead_key when 1 < a->len <= SMALL_PIECE)
 * as the scalar path does: the piece cache, then the vocabulary, then the merge (tok.c).
 * Returns 0, or -1 when memory runs out. */
int tok_piece_encode(const tok_enc *e, const uint8_t *s, const ahead *a, cache_ent *c, sink *k);

#endif
