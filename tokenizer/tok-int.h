/*
 * tok-int: what the tokenizer's two halves share: struct tok_enc, and the hash and lookup
 * functions that the table build (tokvocab.c) and the encoder (tok.c) both run. The lookups are
 * the encoder's hot path, so they stay static inline here. Not for use outside tokenizer/.
 */
#ifndef TOK_TOK_INT_H
#define TOK_TOK_INT_H

#include <immintrin.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tokenizer/tok.h"
#include "tokenizer/pretok.h"
#include "tokenizer/utf8.h"

#define NO_RANK UINT32_MAX
#define MAX_TOKEN_LEN 128 /* the longest token of every encoding here */
#define SHORT_KEY 4       /* tokens up to this long live in the table of 8-byte slots */

/* A hash-table slot: a token's first eight bytes, its length and rank, in 16 bytes, so that a
 * lookup of a short key touches one cache line and no token bytes. */
typedef struct tok_slot {
    uint64_t k8;
    uint32_t rank;
    uint32_t len;
} tok_slot;

/* A slot of the whole-piece table (tokens of WHOLE_MIN to WHOLE_MAX bytes): the token's bytes
 * as the three key words that ahead_key makes (load_k8, then load_rest), its length and rank, so
 * that asking whether a piece is a token compares words and reads no token bytes. */
#define WHOLE_MIN 8
#define WHOLE_MAX 24
typedef struct tok_whole {
    uint64_t w[3];
    uint32_t len; /* 0: empty */
    uint32_t rank;
} tok_whole;
_Static_assert(sizeof(tok_whole) == 32, "two whole-piece slots a cache line");

/* A bucket of the short whole-piece table (tokens of 2 to 8 bytes): four tokens' first eight
 * bytes (load_k8) and, for each, len << 24 | rank (0: empty), in one cache line, compared all
 * four at once without branches. A bucket that is full sends the search on to the next one. */
#define BUCKET_WAYS 4
typedef struct tok_bucket {
    uint64_t k[BUCKET_WAYS];
    uint32_t lr[BUCKET_WAYS];
    uint64_t pad[2];
} tok_bucket;
_Static_assert(sizeof(tok_bucket) == 64, "a bucket is one cache line");

/*
 * A bucket of the fast table (tokens of 1 to FAST_MAX bytes), which the block encoder asks first:
 * four keys (fast_key: the bytes, with the length in the top byte, so one compare decides) and
 * their ranks in one cache line. Tokens go in by rank, lowest first (the merges BPE learned first,
 * the common ones); a token whose bucket is full is left out, which only sends that piece the
 * long way (the whole-piece tables, then the merge, which give the same id), so the table never
 * needs a second probe.
 */
#define FAST_MAX 7
#define FAST_WAYS 4
typedef struct tok_fast {
    uint64_t k[FAST_WAYS];
    uint32_t nr[FAST_WAYS + 1]; /* ~rank of each way; nr[FAST_WAYS], 0, is ~NO_RANK: no key */
    uint32_t full; /* 1 when a token was left out of this bucket: a miss here is then no answer */
    uint32_t pad[2];
} tok_fast;
_Static_assert(sizeof(tok_fast) == 64, "a fast bucket is one cache line");

typedef struct special {
    const char *text;
    uint32_t id;
} special;

struct tok_enc {
    const char *name;
    pretok_pattern pat;
    const uint8_t *blob;
    const uint8_t *blob_end;
    const special *specials;
    size_t nspecials;
    uint32_t vocab;

    uint8_t id; /* 1 + its index in encodings[] */
    pthread_once_t once;
    int ready;
    uint32_t nranks;
    const uint8_t *lens;  /* length of each rank's token */
    const uint8_t *bytes; /* tokens' bytes in rank order */
    uint32_t *offs;       /* offset of each rank's token in bytes */
    tok_slot *slots;      /* tokens of more than SHORT_KEY bytes: linear probing; len 0 is empty */
    size_t mask;
    uint64_t *sslots; /* tokens of at most SHORT_KEY bytes, as short_slot makes them; 0 is empty */
    size_t smask;
    uint32_t byte_rank[256];
    uint32_t *pair2; /* the rank of every two-byte string (NO_RANK for none), by b0 << 8 | b1 */
    tok_bucket *bucket; /* tokens of 2 to 8 bytes, by hash_words: linear probing by bucket */
    size_t bmask;
    tok_fast *fast; /* tokens of 1 to FAST_MAX bytes, by fast_index; see tok_fast */
    unsigned fast_shift;
    tok_whole *whole; /* tokens of WHOLE_MIN to WHOLE_MAX bytes, by hash_words: linear probing */
    size_t wmask;
    uint64_t *filter; /* a Bloom filter of the tokens, one 64-bit word per key: see may_be_token */
    size_t fmask;
    uint32_t *chr;   /* per character U+0080..U+FFFF: its token when it may start merged, see
                        chr_build; NO_RANK when it may not */
    uint64_t *split; /* a bit set of (neighbour byte, partial character) keys: see split_key */
    /* the backtracking merge's tables (tokmerge.c, tok_merge_build); bt_tree NULL: none, the
     * reference merge runs instead */
    uint64_t *bt_tree;  /* per rank: the two parts of its last merge, left | right << 32; a
                           token of one byte (or none) is its own two parts */
    uint32_t *bt_next;  /* per rank: the longest token that is a proper prefix of it, or NO_RANK */
    uint8_t *bt_max2;   /* per two bytes b0 << 8 | b1: the longest token that starts with them */
    uint64_t *bt_pfx;   /* a filter of every token's prefixes of 3 or more bytes: see bt_pfx_bit */
    size_t bt_pmask;    /* bits in bt_pfx, less one */
    int bt_state;       /* 0: not built yet (built on first need, tok_merge_ready); 1: built; 2:
                           none (no memory, or a vocabulary the method does not fit) */
};

/* The first min(n, 8) bytes at p as a little-endian number, without reading past p + n. */
static inline uint64_t load_k8(const uint8_t *p, size_t n)
{
    uint64_t k;
    uint32_t lo, hi;

    if (n >= 8) {
        memcpy(&k, p, 8);
        return k;
    }
    if (n >= 4) {
        /* two overlapping loads; where they overlap they hold the same bytes */
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return (uint64_t)lo | (uint64_t)hi << ((n - 4) * 8);
    }
    return (uint64_t)p[0] | (uint64_t)p[n / 2] << (n / 2 * 8) | (uint64_t)p[n - 1] << ((n - 1) * 8);
}

/*
 * The rest of a key of 9 to 24 bytes after its first eight, as two words: for up to 16 bytes,
 * the eight that end it (overlapping the first word) and 0; for more, bytes 8 to 15 and the
 * eight that end it. With the length, the three words are the key.
 */
static inline void load_rest(const uint8_t *p, size_t n, uint64_t *w1, uint64_t *w2)
{
    if (n <= 16) {
        memcpy(w1, p + n - 8, 8);
        *w2 = 0;
    } else {
        memcpy(w1, p + 8, 8);
        memcpy(w2, p + n - 8, 8);
    }
}

/* a when c, else b, by masks: the compiler keeps a branch out of it, where the condition is a
 * coin toss for a predictor and both sides are computed anyway. */
static inline uint64_t sel64(int c, uint64_t a, uint64_t b)
{
    uint64_t m = -(uint64_t)(c != 0);

    return (a & m) | (b & ~m);
}

/* Both halves of the 128-bit product of a and b, folded. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t m = (__uint128_t)a * b;

    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* hash_words' mix for a key of n <= 8 bytes, k8. */
static inline uint64_t hash_short(uint64_t k8, size_t n)
{
    uint64_t h = (k8 ^ (uint64_t)n << 59) * 0x9e3779b97f4a7c15ull;

    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ h >> 32;
}

/* hash_words' mix for a key of 9 to 24 bytes, its three words. */
static inline uint64_t hash_long(uint64_t k8, uint64_t w1, uint64_t w2, size_t n)
{
    return mum(mum(k8 ^ 0xa0761d6478bd642full, w1 ^ 0xe7037ed1a0b428dbull ^ n) ^ w2,
               0x8ebc6af09c88c6e3ull);
}

/* The hash of n bytes whose first eight are k8 (and, for 9 to 24 bytes, whose rest is w1 and
 * w2): a multiply-mix for keys up to 24 bytes (nearly every lookup), XXH3 for the rest. */
static inline uint64_t hash_words(const uint8_t *p, size_t n, uint64_t k8, uint64_t w1,
                                  uint64_t w2)
{
    if (n > 24)
        return XXH3_64bits(p, n);
    return n > 8 ? hash_long(k8, w1, w2, n) : hash_short(k8, n);
}

static inline uint64_t hash_key(const uint8_t *p, size_t n, uint64_t k8)
{
    uint64_t w1 = 0, w2 = 0;

    if (n > 8 && n <= 24)
        load_rest(p, n, &w1, &w2);
    return hash_words(p, n, k8, w1, w2);
}

/*
 * The filter: each token sets four bits of one 64-bit word, all chosen by its hash. Most pairs
 * a merge asks about are no token (two thirds of them in CJK text), and the filter, at about
 * ten bits a token, stays in the core's L2 cache, where the rank table (megabytes) does not;
 * so a miss costs an L2 hit instead of a trip to L3 or memory. False positives (about 1 in 70)
 * only cost the probe they would have cost anyway. The word and the bits come from hash bits
 * that neither the slot index nor the piece cache index uses alone.
 */
static inline uint64_t filter_bits(uint64_t h)
{
    return (uint64_t)1 << (h >> 38 & 63) | (uint64_t)1 << (h >> 44 & 63) |
           (uint64_t)1 << (h >> 50 & 63) | (uint64_t)1 << (h >> 56 & 63);
}

static inline const uint64_t *filter_word(const tok_enc *e, uint64_t h)
{
    return &e->filter[(h >> 20) & e->fmask];
}

/* 0 when the key whose hash is h is surely no token; 1 when it may be one. */
static inline int may_be_token(const tok_enc *e, uint64_t h)
{
    uint64_t b = filter_bits(h);

    return (*filter_word(e, h) & b) == b;
}

/*
 * A slot of the short table: the key's bytes in the low 32 bits, the rank above them, the
 * length in the top byte. Three lookups in five in a merge ask for three or four bytes (the
 * bytes of a character in CJK text), and half as wide a slot puts twice as many tokens in each
 * cache line: the tokens a text keeps asking for fit in a quarter of the lines.
 */
#define SHORT_RANK 0x00ffffff00000000ull

static inline uint64_t short_slot(uint64_t k8, size_t n, uint32_t rank)
{
    return k8 | (uint64_t)rank << 32 | (uint64_t)n << 56;
}

/* Where the probe for a key of n bytes whose hash is h starts, for a prefetch. */
static inline const void *slot_of(const tok_enc *e, size_t n, uint64_t h)
{
    if (n <= SHORT_KEY)
        return &e->sslots[h & e->smask];
    return &e->slots[h & e->mask];
}

/* The rank of the n bytes at p whose hash is h and first eight bytes k8, or NO_RANK. */
static inline uint32_t rank_lookup(const tok_enc *e, const uint8_t *p, size_t n, uint64_t h,
                                   uint64_t k8)
{
    if (n <= SHORT_KEY) {
        uint64_t want = short_slot(k8, n, 0);
        for (size_t i = h & e->smask;; i = (i + 1) & e->smask) {
            uint64_t sl = e->sslots[i];
            if (sl == 0)
                return NO_RANK;
            if ((sl & ~SHORT_RANK) == want)
                return (uint32_t)((sl & SHORT_RANK) >> 32);
        }
    }
    for (size_t i = h & e->mask;; i = (i + 1) & e->mask) {
        const tok_slot *sl = &e->slots[i];
        if (sl->len == 0)
            return NO_RANK;
        if (sl->len == n && sl->k8 == k8 &&
            (n <= 8 || memcmp(e->bytes + e->offs[sl->rank] + 8, p + 8, n - 8) == 0))
            return sl->rank;
    }
}

/* The rank of the piece of n bytes (WHOLE_MIN <= n <= WHOLE_MAX) whose key words are w and hash
 * h (as ahead_key makes them), or NO_RANK when it is no token. */
static inline uint32_t whole_lookup(const tok_enc *e, size_t n, const uint64_t w[3], uint64_t h)
{
    for (size_t i = h & e->wmask;; i = (i + 1) & e->wmask) {
        const tok_whole *sl = &e->whole[i];
        if (sl->len == 0)
            return NO_RANK;
        if (((sl->w[0] ^ w[0]) | (sl->w[1] ^ w[1]) | (sl->w[2] ^ w[2]) | (sl->len ^ n)) == 0)
            return sl->rank;
    }
}

/* The rank of the piece of n bytes (2 <= n <= 8) whose first eight bytes are k8 (load_k8) and
 * hash h, or NO_RANK when it is no token. */
static inline uint32_t bucket_lookup(const tok_enc *e, size_t n, uint64_t k8, uint64_t h)
{
    for (size_t i = h & e->bmask;; i = (i + 1) & e->bmask) {
        const tok_bucket *b = &e->bucket[i];
        uint32_t r = NO_RANK, empty = 0;
        for (int j = 0; j < BUCKET_WAYS; j++) {
            uint32_t lr = b->lr[j];
            r = b->k[j] == k8 && lr >> 24 == n ? lr & 0xffffff : r;
            empty |= lr == 0;
        }
        if (r != NO_RANK || empty)
            return r;
    }
}

/* The key of a piece of n bytes (1 <= n <= FAST_MAX) whose bytes, zero-padded, are k8: the length
 * in the top byte, which the bytes leave zero, so that no two pieces share a key. */
static inline uint64_t fast_key(uint64_t k8, size_t n)
{
    return k8 | (uint64_t)n << 56;
}

/* The bucket of a fast key: the top bits of a multiplicative hash. */
static inline size_t fast_index(const tok_enc *e, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> e->fast_shift);
}

/* The rank of the piece whose fast key is key, from its bucket b; NO_RANK when it is not there
 * (no token, or a token left out: see tok_fast). */
static inline uint32_t fast_lookup(const tok_fast *b, uint64_t key)
{
#ifdef __AVX2__
    __m256i eq = _mm256_cmpeq_epi64(_mm256_loadu_si256((const __m256i *)b->k), _mm256_set1_epi64x((long long)key));
    unsigned m = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(eq));

    return ~b->nr[__builtin_ctz(m | 1u << FAST_WAYS)]; /* no branch on a coin toss */
#else
    uint32_t r = NO_RANK;

    /* selected with masks: which way holds the key is a coin toss for a branch predictor */
    for (int j = 0; j < FAST_WAYS; j++)
        r ^= (r ^ ~b->nr[j]) & -(uint32_t)(b->k[j] == key);
    return r;
#endif
}

/* The rank of the n bytes at p, or NO_RANK when they are no token. */
static inline uint32_t rank_of(const tok_enc *e, const uint8_t *p, size_t n)
{
    uint64_t k8, h;

    if (n > MAX_TOKEN_LEN)
        return NO_RANK;
    k8 = load_k8(p, n);
    h = hash_key(p, n, k8);
    return may_be_token(e, h) ? rank_lookup(e, p, n, h, k8) : NO_RANK;
}

/* A pair that a merge asks about (3 <= n <= WHOLE_MAX bytes): its key words and hash. */
typedef struct pair_q {
    uint64_t w[3];
    uint64_t h;
} pair_q;

/* The key words and hash of the n bytes at p (3 <= n <= WHOLE_MAX), as pair_rank asks them. */
static inline void pair_key(const uint8_t *p, size_t n, pair_q *q)
{
    q->w[0] = load_k8(p, n);
    q->w[1] = q->w[2] = 0;
    if (n >= WHOLE_MIN)
        load_rest(p, n, &q->w[1], &q->w[2]); /* at 8 bytes too, as the table holds the key */
    q->h = hash_words(p, n, q->w[0], q->w[1], q->w[2]);
}

/* The rank of the pair of n bytes at p (3 <= n <= WHOLE_MAX) keyed in q, or NO_RANK. */
static inline uint32_t pair_ask(const tok_enc *e, const uint8_t *p, size_t n, const pair_q *q)
{
    uint64_t key;
    const tok_fast *b;
    uint32_t r;

    if (!may_be_token(e, q->h))
        return NO_RANK;
    if (n >= WHOLE_MIN)
        return whole_lookup(e, n, q->w, q->h);
    key = fast_key(q->w[0], n);
    b = &e->fast[fast_index(e, key)];
    r = fast_lookup(b, key);
    return r != NO_RANK || !b->full ? r : rank_lookup(e, p, n, q->h, q->w[0]);
}

/*
 * The rank of the n bytes at p (3 <= n), or NO_RANK, for the merge. The filter comes first: most
 * pairs a merge asks about are no token, and it answers those from the L2 cache. Then, up to
 * FAST_MAX bytes, the fast table, which the block encoder keeps in the cache and whose bucket
 * answers a miss for good unless it overflowed (tok_fast's full); up to WHOLE_MAX bytes, the
 * whole-piece table, which holds every token of those lengths and compares words, not token
 * bytes; longer pairs, rank_of.
 */
static inline uint32_t pair_rank(const tok_enc *e, const uint8_t *p, size_t n)
{
    pair_q q;

    if (n > WHOLE_MAX)
        return rank_of(e, p, n);
    pair_key(p, n, &q);
    return pair_ask(e, p, n, &q);
}

/*
 * Starting from characters. In text other than Latin, most of a merge's work is putting each
 * character's two or three bytes back together, the same work in every word. A character c may
 * start a piece's merge as one part, its token T, instead of as bytes, when that cannot change
 * the result:
 *   (a) merged alone, c's bytes end as the one token T; rmax is the highest rank of the merges
 *       that make it;
 *   (b) no token holds part of c together with a byte beside it: none starts with a proper
 *       suffix of c's bytes followed by the byte after c, none ends with the byte before c
 *       followed by a proper prefix of c's bytes;
 *   (c) every longer token that starts or ends with all of c ranks above rmax.
 * Why: by (b), no pair straddling c's edges is a token while c is in pieces, so c's bytes merge
 * as they would alone, into T (a), whatever happens around them. Meanwhile each merge outside c
 * ranks at most as high as c's next merge, so at most rmax, and so below any pair T could form
 * with a neighbour (c): started whole, c changes none of those choices, and once c is whole the
 * two runs are the same. Applied one character at a time, this holds for any set of them.
 * (a) and (c) depend on c alone and are decided in chr_build (tokvocab.c), into chr[]; (b)
 * depends on the neighbouring bytes and is asked of the split set, per character, in chr_part
 * (tok.c).
 */
#define CHR_N (0x10000 - 0x80) /* the characters of two and three bytes */
#define SPLIT_BITS 17          /* 16 KiB: a few hundred keys, so about 1 in 100 false */

/* The bit for a key of the split set; side 1: a byte x then a character's first k bytes at c;
 * side 2: a character's last k bytes at c then a byte x. k is 1 or 2. */
static inline uint64_t split_key(unsigned side, uint8_t x, const uint8_t *c, size_t k)
{
    uint64_t v = side | (uint64_t)k << 2 | (uint64_t)x << 8 | (uint64_t)c[0] << 16;

    if (k > 1)
        v |= (uint64_t)c[1] << 24;
    return (v * 0x9e3779b97f4a7c15ull) >> (64 - SPLIT_BITS);
}

/* 1 when a token may hold the key's bytes; 0 when none surely does. */
static inline int split_has(const tok_enc *e, uint64_t b)
{
    return (int)(e->split[b >> 6] >> (b & 63) & 1);
}

/*
 * Whether the character at p[i] (of two or three bytes, whole: pieces are well-formed) may start
 * the merge as one part: its length, with its token in *t; 1 when it must start as bytes.
 */
static inline size_t chr_part(const tok_enc *e, const uint8_t *p, size_t i, size_t n, uint32_t *t)
{
    const uint8_t *c = p + i;
    size_t len = c[0] >= 0xe0 ? 3 : 2;
    uint32_t cp, r;

    if (i + len > n || (cp = utf8_decode(c, len)) < 0x80 || (r = e->chr[cp - 0x80]) == NO_RANK)
        return 1;
    for (size_t k = 1; k < len; k++) {
        if (i > 0 && split_has(e, split_key(1, p[i - 1], c, k)))
            return 1;
        if (i + len < n && split_has(e, split_key(2, c[len], c + k, len - k)))
            return 1;
    }
    *t = r;
    return len;
}

/*
 * The start of tiktoken's merge of the n bytes at p (1 < n <= SMALL_PIECE; tokmerge.c): the
 * parts (bytes, and the characters that chr_part lets start whole), their ids in tok, their
 * links in next and prev, and in key[i], for each part's first byte i, rank << 8 | i of its pair
 * with the part after it, or UINT32_MAX (no such token, or no part starts at i).
 */
static inline void merge_init(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok,
                              uint32_t *key, uint16_t *next, uint16_t *prev)
{
    /* the parts: bytes, and characters that chr_part lets start whole; each part's pair with
     * the one before is looked up as soon as that one is known, in the same pass */
    size_t before = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        uint32_t t = e->byte_rank[p[i]], r;
        if (p[i] >= 0xc0 && p[i] < 0xf0)
            len = chr_part(e, p, i, n, &t);
        tok[i] = t;
        next[i] = (uint16_t)(i + len);
        prev[i] = i > 0 ? (uint16_t)before : UINT16_MAX; /* the first's is never read */
        for (size_t j = i + 1; j < i + len; j++)
            key[j] = UINT32_MAX;
        if (i > 0) {
            size_t pl = i + len - before;
            r = pl == 2 ? e->pair2[p[before] << 8 | p[before + 1]] : pair_rank(e, p + before, pl);
            key[before] = r == NO_RANK ? UINT32_MAX : r << 8 | (uint32_t)before;
        }
        before = i;
        i += len;
    }
    key[before] = UINT32_MAX; /* the last part: nothing to its right */
}

/*
 * Zeroed memory of size bytes for a big table that is probed at random, in huge pages where
 * the kernel grants them. Returns NULL when memory runs out; the caller frees it with free().
 */
void *tok_big_calloc(size_t size);

typedef struct sink {
    tok_ids *ids; /* NULL: count only */
    uint64_t count;
    int failed;
} sink;

static inline void emit(sink *k, uint32_t id)
{
    tok_ids *ids = k->ids;

    k->count++;
    if (ids == NULL)
        return;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        uint32_t *v = realloc(ids->v, cap * sizeof(uint32_t));
        if (v == NULL) {
            k->failed = 1;
            return;
        }
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
}


#define SMALL_PIECE 256 /* pieces up to this long merge in arrays on the stack (tokmerge.c) */

/* Merges the n bytes at p (1 < n <= SMALL_PIECE), leaving the ids in tok; returns how many. */
size_t tok_merge_small(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok);

/* Merges a piece of any length (n > 1) into k. Returns 0, or -1 when memory runs out. */
int tok_merge_large(const tok_enc *e, const uint8_t *p, size_t n, struct sink *k);

/*
 * The backtracking merge (tokmerge.c): the same ids as tiktoken's merge in time linear in n.
 * tok_merge_bt leaves the ids of the n bytes at p (n > 0) in tok (room for n) and returns how
 * many; dead is scratch of n / 64 + 1 words, zeroed by the caller. Returns 0 when e has no
 * backtracking tables (then nothing is written). tok_merge_ref_small and tok_merge_ref_large
 * are tiktoken's method (the merge of repeated lowest rank), kept as the reference for tests
 * with tok_merge_small's and tok_merge_large's contracts.
 */
size_t tok_merge_bt(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok, uint64_t *dead);
size_t tok_merge_ref_small(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok);
int tok_merge_ref_large(const tok_enc *e, const uint8_t *p, size_t n, struct sink *k);

/* Builds e's backtracking tables (e's rank tables are ready). Returns 0, or -1 when memory runs
 * out; a vocabulary that the method does not fit (a token whose bytes do not merge into it)
 * gets none, and returns 0. tok_merge_free frees them. */
int tok_merge_build(tok_enc *e);

/* Whether e's backtracking tables are there, building them the first time they are asked for
 * (once per encoding and process, under a lock: 40-160 ms on the test machine, which is why
 * the rank tables' build leaves them out; tok_prepare_long builds them ahead). */
int tok_merge_ready(const tok_enc *e);
void tok_merge_free(tok_enc *e);

/* Makes the encoder's path (tokblock.c) known; tok_encoding calls it. */
void tok_path_init(void);

/* Encodes well-formed text with no special tokens in it into k: the scalar path (tok.c), and
 * the block encoder on path p (tokblock.c). Both return 0, or -1 when memory runs out. */
int tok_encode_scalar(const tok_enc *e, const uint8_t *s, size_t n, sink *k);
int tok_encode_block(const tok_enc *e, const uint8_t *s, size_t n, tok_path p, sink *k);

#endif
