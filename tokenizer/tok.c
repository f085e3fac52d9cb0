/*
 * tok: rank tables, byte-pair merging, and the encode/count/decode verbs.
 *
 * Merging follows tiktoken exactly: start from single bytes, and repeatedly merge the adjacent
 * pair whose concatenation has the lowest rank, the leftmost one on a tie, until no adjacent
 * pair is a token. (Some characters start whole instead of as bytes, where that provably
 * changes nothing: see chr_build.) Short pieces (nearly all of them) use tiktoken's array
 * method, which is quadratic in the piece length but touches only a few cache lines; long
 * pieces use a heap ordered by (rank, position), which makes the same choices in O(n log n),
 * so a megabyte of one letter or of CJK without spaces encodes in well under a second.
 */
#include "tokenizer/tok.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tokenizer/utf8.h"
#include "tokenizer/pretok.h"

#define NO_RANK UINT32_MAX
#define MAX_TOKEN_LEN 128 /* the longest token of every encoding here */
#define SMALL_PIECE 256   /* pieces up to this long merge in arrays on the stack */
#define SHORT_KEY 4       /* tokens up to this long live in the table of 8-byte slots */
#define HUGE_PAGE ((size_t)2 << 20)

/* the rank files, linked in by data.S */
extern const uint8_t tok_data_cl100k[], tok_data_cl100k_end[];
extern const uint8_t tok_data_o200k[], tok_data_o200k_end[];
extern const uint8_t tok_data_p50k[], tok_data_p50k_end[];
extern const uint8_t tok_data_r50k[], tok_data_r50k_end[];

/* A hash-table slot: a token's first eight bytes, its length and rank, in 16 bytes, so that a
 * lookup of a short key touches one cache line and no token bytes. */
typedef struct tok_slot {
    uint64_t k8;
    uint32_t rank;
    uint32_t len;
} tok_slot;

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
    uint64_t *filter; /* a Bloom filter of the tokens, one 64-bit word per key: see may_be_token */
    size_t fmask;
    uint32_t *chr;   /* per character U+0080..U+FFFF: its token when it may start merged, see
                        chr_build; NO_RANK when it may not */
    uint64_t *split; /* a bit set of (neighbour byte, partial character) keys: see split_key */
};

static const special sp_cl100k[] = {
    {"<|endoftext|>", 100257},  {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259},
    {"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276},
};
static const special sp_o200k[] = {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}};
static const special sp_gpt2[] = {{"<|endoftext|>", 50256}};

#define NSP(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The encodings. Their tables are filled once, under pthread_once, and only read afterwards:
 * immutable data that every thread shares, not mutable state.
 */
#define ENCODING(nm, pt, data, sp, nv, ident)                                                      \
    {                                                                                              \
        .name = nm, .pat = pt, .blob = data, .blob_end = data##_end, .specials = sp,               \
        .nspecials = NSP(sp), .vocab = nv, .id = ident, .once = PTHREAD_ONCE_INIT                  \
    }
static struct tok_enc encodings[] = {
    ENCODING("cl100k_base", PRETOK_CL100K, tok_data_cl100k, sp_cl100k, 100277, 1),
    ENCODING("o200k_base", PRETOK_O200K, tok_data_o200k, sp_o200k, 200019, 2),
    ENCODING("p50k_base", PRETOK_R50K, tok_data_p50k, sp_gpt2, 50281, 3),
    ENCODING("r50k_base", PRETOK_R50K, tok_data_r50k, sp_gpt2, 50257, 4),
};
#define NENC (sizeof(encodings) / sizeof(encodings[0]))

const char *const tok_encoding_names[] = {"cl100k_base", "o200k_base", "p50k_base", "r50k_base",
                                          NULL};

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

/* Both halves of the 128-bit product of a and b, folded. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t m = (__uint128_t)a * b;

    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* The hash of n bytes whose first eight are k8 (and, for 9 to 24 bytes, whose rest is w1 and
 * w2): a multiply-mix for keys up to 24 bytes (nearly every lookup), XXH3 for the rest. */
static inline uint64_t hash_words(const uint8_t *p, size_t n, uint64_t k8, uint64_t w1,
                                  uint64_t w2)
{
    uint64_t h;

    if (n > 24)
        return XXH3_64bits(p, n);
    if (n > 8)
        return mum(mum(k8 ^ 0xa0761d6478bd642full, w1 ^ 0xe7037ed1a0b428dbull ^ n) ^ w2,
                   0x8ebc6af09c88c6e3ull);
    h = (k8 ^ (uint64_t)n << 59) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ h >> 32;
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
 * (a) and (c) depend on c alone and are decided in chr_build, into chr[]; (b) depends on the
 * neighbouring bytes and is asked of the split set, per character, in chr_part.
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

/* How many bytes a UTF-8 sequence whose first byte is b has: 2 to 4, or 0 for another byte. */
static inline size_t lead_len(uint8_t b)
{
    return b >= 0xc0 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf8 ? 4 : 0;
}

/* The code point of the character of len (2 or 3) bytes at c. */
static inline uint32_t chr_decode(const uint8_t *c, size_t len)
{
    if (len == 2)
        return (uint32_t)(c[0] & 0x1f) << 6 | (uint32_t)(c[1] & 0x3f);
    return (uint32_t)(c[0] & 0x0f) << 12 | (uint32_t)(c[1] & 0x3f) << 6 | (uint32_t)(c[2] & 0x3f);
}

/* Whether the len bytes at t, whose first is a lead byte of len bytes, are one character. */
static inline int chr_whole(const uint8_t *t, size_t len)
{
    for (size_t i = 1; i < len; i++)
        if ((t[i] & 0xc0) != 0x80)
            return 0;
    return 1;
}

/*
 * Fills e->chr (conditions (a) and (c) above) and e->split (the keys of (b)) from e's tokens.
 * Returns 0, or -1 when memory runs out.
 */
static int chr_build(tok_enc *e)
{
    uint32_t *minr = malloc(CHR_N * sizeof(uint32_t)); /* lowest rank of a longer token that
                                                           starts or ends with the character */

    e->chr = malloc(CHR_N * sizeof(uint32_t));
    e->split = calloc(((size_t)1 << SPLIT_BITS) / 64, sizeof(uint64_t));
    if (minr == NULL || e->chr == NULL || e->split == NULL) {
        free(minr);
        return -1;
    }
    memset(minr, 0xff, CHR_N * sizeof(uint32_t));
    for (uint32_t r = 0; r < e->nranks; r++) {
        const uint8_t *t = e->bytes + e->offs[r];
        size_t len = e->lens[r], j = 0, m = 0, cl;
        uint64_t b;
        if (len < 2)
            continue;
        while (j < len && (t[j] & 0xc0) == 0x80)
            j++;
        if (j > 0 && j < len && j <= 2) { /* the end of a character, then a byte */
            b = split_key(2, t[j], t, j);
            e->split[b >> 6] |= (uint64_t)1 << (b & 63);
        }
        cl = lead_len(t[0]);
        if ((cl == 2 || cl == 3) && len > cl && chr_whole(t, cl)) {
            uint32_t cp = chr_decode(t, cl);
            if (cp >= 0x80 && r < minr[cp - 0x80])
                minr[cp - 0x80] = r;
        }
        while (m < len && (t[len - 1 - m] & 0xc0) == 0x80)
            m++;
        if (m == len)
            continue;
        cl = lead_len(t[len - 1 - m]);
        if (cl > m + 1 && len > m + 1 && m + 1 <= 2) { /* a byte, then a character's start */
            b = split_key(1, t[len - 2 - m], t + len - 1 - m, m + 1);
            e->split[b >> 6] |= (uint64_t)1 << (b & 63);
        }
        if ((cl == 2 || cl == 3) && cl == m + 1 && len > cl) {
            uint32_t cp = chr_decode(t + len - cl, cl);
            if (cp >= 0x80 && r < minr[cp - 0x80])
                minr[cp - 0x80] = r;
        }
    }
    for (uint32_t cp = 0x80; cp < 0x10000; cp++) {
        uint8_t c[3];
        uint32_t tok = NO_RANK, rmax = 0;
        if (cp < 0x800) {
            c[0] = (uint8_t)(0xc0 | cp >> 6);
            c[1] = (uint8_t)(0x80 | (cp & 0x3f));
            tok = rmax = e->pair2[c[0] << 8 | c[1]];
        } else if (cp < 0xd800 || cp > 0xdfff) {
            uint32_t r01, r12;
            c[0] = (uint8_t)(0xe0 | cp >> 12);
            c[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
            c[2] = (uint8_t)(0x80 | (cp & 0x3f));
            r01 = e->pair2[c[0] << 8 | c[1]];
            r12 = e->pair2[c[1] << 8 | c[2]];
            if (r01 != NO_RANK || r12 != NO_RANK) {
                tok = rank_of(e, c, 3); /* whichever pair merges first, the rest is all three */
                rmax = r01 < r12 ? r01 : r12;
                rmax = tok != NO_RANK && tok > rmax ? tok : rmax;
            }
        }
        e->chr[cp - 0x80] = tok != NO_RANK && minr[cp - 0x80] > rmax ? tok : NO_RANK;
    }
    free(minr);
    return 0;
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

    if (i + len > n || (cp = chr_decode(c, len)) < 0x80 || (r = e->chr[cp - 0x80]) == NO_RANK)
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
 * Zeroed memory for a big table that is probed at random: in 2 MiB huge pages where the kernel
 * grants them, since with 4 KiB pages nearly every probe of a table of megabytes also misses
 * the TLB. Freed with free().
 */
static void *big_calloc(size_t size)
{
    void *p = NULL;

    if (size >= HUGE_PAGE) {
        size = (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
        if (posix_memalign(&p, HUGE_PAGE, size) != 0)
            return NULL;
        (void)madvise(p, size, MADV_HUGEPAGE); /* advice: without it the table still works */
        memset(p, 0, size);
        return p;
    }
    return calloc(1, size);
}

/* Builds the hash table of e from its rank file; on failure e stays not ready. */
static void build(tok_enc *e)
{
    const uint8_t *b = e->blob;
    size_t size = (size_t)(e->blob_end - e->blob), nslots = 1, nshort = 1, nwords = 1, total = 0;
    size_t short_tokens = 0;
    uint32_t n;

    if (size < 8 || memcmp(b, "TKR1", 4) != 0)
        return;
    memcpy(&n, b + 4, 4);
    /* merge_small and the short table keep a rank in 24 bits */
    if (n == 0 || n >= (uint32_t)1 << 24 || 8 + (size_t)n > size)
        return;
    e->nranks = n;
    e->lens = b + 8;
    e->bytes = b + 8 + n;
    for (uint32_t r = 0; r < n; r++)
        short_tokens += e->lens[r] <= SHORT_KEY;
    while (nslots < (size_t)n * 2 + n / 2) /* load factor at most 0.4 */
        nslots <<= 1;
    while (nshort < short_tokens + short_tokens / 2) /* at most 2/3 */
        nshort <<= 1;
    while (nwords * 8 < (size_t)n) /* six to twelve tokens a word: about 1 in 70 false */
        nwords <<= 1;
    e->offs = malloc(sizeof(uint32_t) * n);
    e->slots = big_calloc(nslots * sizeof(tok_slot));
    e->sslots = big_calloc(nshort * sizeof(uint64_t));
    e->filter = calloc(nwords, sizeof(uint64_t));
    if (e->offs == NULL || e->slots == NULL || e->sslots == NULL || e->filter == NULL)
        goto fail;
    e->mask = nslots - 1;
    e->smask = nshort - 1;
    e->fmask = nwords - 1;
    for (uint32_t r = 0; r < n; r++) {
        e->offs[r] = (uint32_t)total;
        total += e->lens[r];
    }
    if (8 + (size_t)n + total != size)
        goto fail;
    for (uint32_t r = 0; r < n; r++) {
        const uint8_t *p = e->bytes + e->offs[r];
        uint64_t k8;
        if (e->lens[r] == 0)
            continue; /* a rank without a token (p50k_base's <|endoftext|>) */
        k8 = load_k8(p, e->lens[r]);
        uint64_t h = hash_key(p, e->lens[r], k8);
        size_t i;
        e->filter[(h >> 20) & e->fmask] |= filter_bits(h);
        if (e->lens[r] <= SHORT_KEY) {
            for (i = h & e->smask; e->sslots[i] != 0; i = (i + 1) & e->smask)
                ;
            e->sslots[i] = short_slot(k8, e->lens[r], r);
            continue;
        }
        for (i = h & e->mask; e->slots[i].len != 0; i = (i + 1) & e->mask)
            ;
        e->slots[i].k8 = k8;
        e->slots[i].rank = r;
        e->slots[i].len = e->lens[r];
    }
    for (int c = 0; c < 256; c++) {
        uint8_t byte = (uint8_t)c;
        e->byte_rank[c] = rank_of(e, &byte, 1);
        if (e->byte_rank[c] == NO_RANK)
            goto fail;
    }
    /* every merge starts from byte pairs: a direct table answers those without hashing */
    if ((e->pair2 = malloc(65536 * sizeof(uint32_t))) == NULL)
        goto fail;
    for (unsigned k = 0; k < 65536; k++) {
        uint8_t two[2] = {(uint8_t)(k >> 8), (uint8_t)k};
        e->pair2[k] = rank_of(e, two, 2);
    }
    if (chr_build(e) != 0)
        goto fail;
    e->ready = 1;
    return;
fail:
    free(e->offs);
    free(e->slots);
    free(e->sslots);
    free(e->pair2);
    free(e->filter);
    free(e->chr);
    free(e->split);
    e->chr = NULL;
    e->split = NULL;
    e->pair2 = NULL;
    e->filter = NULL;
    e->offs = NULL;
    e->slots = NULL;
    e->sslots = NULL;
}

static void build_cl100k(void) { build(&encodings[0]); }
static void build_o200k(void) { build(&encodings[1]); }
static void build_p50k(void) { build(&encodings[2]); }
static void build_r50k(void) { build(&encodings[3]); }
static void (*const builders[NENC])(void) = {build_cl100k, build_o200k, build_p50k, build_r50k};

const tok_enc *tok_encoding(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t k = 0; k < NENC; k++) {
        if (strcmp(encodings[k].name, name) != 0)
            continue;
        pthread_once(&encodings[k].once, builders[k]);
        return encodings[k].ready ? &encodings[k] : NULL;
    }
    return NULL;
}

const char *tok_name(const tok_enc *e)
{
    return e->name;
}

uint32_t tok_vocab_size(const tok_enc *e)
{
    return e->vocab;
}

/* Where ids go: appended to a list, or only counted. */
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

/*
 * tiktoken's merge, for n <= SMALL_PIECE: leaves the ids in tok and returns how many there are.
 * Parts are named by their first byte and linked both ways, so a merge moves nothing; the
 * next merge is the minimum of key[], one entry per byte position, where a position that no
 * longer starts a part, or starts one with no token to its right, holds UINT32_MAX. A key is
 * rank << 8 | position (ranks are below 2^24), so the minimum is the leftmost of the lowest
 * rank, and a scan over contiguous words with a conditional move finds it without branching.
 */
static size_t merge_small(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok)
{
    uint32_t key[SMALL_PIECE];
    uint16_t next[SMALL_PIECE], prev[SMALL_PIECE];
    size_t m = 0;

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
            r = pl == 2 ? e->pair2[p[before] << 8 | p[before + 1]] : rank_of(e, p + before, pl);
            key[before] = r == NO_RANK ? UINT32_MAX : r << 8 | (uint32_t)before;
        }
        before = i;
        i += len;
    }
    key[before] = UINT32_MAX; /* the last part: nothing to its right */
    for (;;) {
        uint32_t best = UINT32_MAX;
        for (size_t i = 0; i + 1 < n; i++)
            best = key[i] < best ? key[i] : best;
        if (best == UINT32_MAX)
            break;
        size_t at = best & 0xff, right = next[at], after = next[right];
        tok[at] = best >> 8;
        key[right] = UINT32_MAX;
        next[at] = (uint16_t)after;
        if (after < n)
            prev[after] = (uint16_t)at;
        /* the two new pairs' probes are independent: start both loads, then wait */
        {
            size_t left = at > 0 ? prev[at] : 0;
            const uint8_t *pr = p + at, *pl = p + left;
            size_t nr = after < n ? next[after] - at : 0;
            size_t nl = at > 0 ? after - left : 0;
            uint64_t kr = 0, kl = 0, hr = 0, hl = 0;
            uint32_t rr = NO_RANK, rl = NO_RANK;
            int qr = 0, ql = 0; /* whether the filter lets the key through to the table */
            uint64_t wr = 0, wl = 0; /* the filter words: both loads start before either test */
            if (nr != 0 && nr <= MAX_TOKEN_LEN) {
                kr = load_k8(pr, nr);
                hr = hash_key(pr, nr, kr);
                wr = ~*filter_word(e, hr) & filter_bits(hr);
            }
            if (nl != 0 && nl <= MAX_TOKEN_LEN) {
                kl = load_k8(pl, nl);
                hl = hash_key(pl, nl, kl);
                wl = ~*filter_word(e, hl) & filter_bits(hl);
            }
            if ((qr = nr != 0 && nr <= MAX_TOKEN_LEN && wr == 0))
                __builtin_prefetch(slot_of(e, nr, hr));
            if ((ql = nl != 0 && nl <= MAX_TOKEN_LEN && wl == 0))
                __builtin_prefetch(slot_of(e, nl, hl));
            if (qr)
                rr = rank_lookup(e, pr, nr, hr, kr);
            if (ql)
                rl = rank_lookup(e, pl, nl, hl, kl);
            key[at] = rr == NO_RANK ? UINT32_MAX : rr << 8 | (uint32_t)at;
            if (at > 0)
                key[left] = rl == NO_RANK ? UINT32_MAX : rl << 8 | (uint32_t)left;
        }
    }
    for (size_t i = 0; i < n; i = next[i])
        tok[m++] = tok[i]; /* m <= i: the ids move only towards the front */
    return m;
}

/* A binary min-heap of (rank << 32 | start): lowest rank first, then leftmost. */
static void heap_push(uint64_t *h, size_t *n, uint64_t x)
{
    size_t i = (*n)++;

    while (i > 0 && h[(i - 1) / 2] > x) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], x = h[--(*n)];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= x)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    return top;
}

/*
 * The same merge for long pieces: parts are a linked list over byte positions (a part is named
 * by its first byte), candidate pairs wait in the heap, and an entry whose part has since
 * changed is skipped when it comes up. Returns -1 when memory runs out. Kept out of line: it
 * is rare, and inlined it would only crowd the encode loop.
 */
__attribute__((noinline)) static int merge_large(const tok_enc *e, const uint8_t *p, size_t n,
                                                 sink *k)
{
    uint32_t *next = malloc(n * sizeof(uint32_t) * 3);
    /* the heap starts with fewer than n entries and each merge pops one and pushes at most
     * two, over fewer than n merges: it never holds 2n */
    uint64_t *heap = malloc(2 * n * sizeof(uint64_t));
    uint32_t *tok, *pair;
    size_t nh = 0;

    if (next == NULL || heap == NULL || n > UINT32_MAX - 1) {
        free(next);
        free(heap);
        return -1;
    }
    tok = next + n;
    pair = tok + n;
    /* the parts, as in merge_small; a position inside a part has no token */
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        uint32_t t = e->byte_rank[p[i]];
        if (p[i] >= 0xc0 && p[i] < 0xf0)
            len = chr_part(e, p, i, n, &t);
        tok[i] = t;
        next[i] = (uint32_t)(i + len);
        for (size_t j = i + 1; j < i + len; j++) {
            tok[j] = NO_RANK;
            pair[j] = NO_RANK;
            next[j] = (uint32_t)(i + len);
        }
        i += len;
    }
    for (size_t i = 0; i < n; i = next[i]) {
        size_t right = next[i], len;
        pair[i] = NO_RANK;
        if (right < n) {
            len = next[right] - i;
            pair[i] = len == 2 ? e->pair2[p[i] << 8 | p[i + 1]] : rank_of(e, p + i, len);
        }
        if (pair[i] != NO_RANK)
            heap_push(heap, &nh, (uint64_t)pair[i] << 32 | i);
    }
    while (nh > 0) {
        uint64_t top = heap_pop(heap, &nh);
        uint32_t r = (uint32_t)(top >> 32), at = (uint32_t)top, right, after;
        if (pair[at] != r || tok[at] == NO_RANK)
            continue; /* stale: the part merged since, or was merged away */
        right = next[at];
        after = next[right];
        tok[at] = r;
        tok[right] = NO_RANK;
        pair[right] = NO_RANK;
        next[at] = after;
        pair[at] = after < n ? rank_of(e, p + at, next[after] - at) : NO_RANK;
        if (pair[at] != NO_RANK)
            heap_push(heap, &nh, (uint64_t)pair[at] << 32 | at);
        if (at > 0) {
            /* the part before at: walk back over merged-away positions */
            uint32_t prev = at - 1;
            while (tok[prev] == NO_RANK)
                prev--;
            pair[prev] = rank_of(e, p + prev, after - prev);
            if (pair[prev] != NO_RANK)
                heap_push(heap, &nh, (uint64_t)pair[prev] << 32 | prev);
        }
    }
    for (uint32_t i = 0; i < n; i = next[i])
        emit(k, tok[i]);
    free(next);
    free(heap);
    return 0;
}

/*
 * The piece cache: the ids of recently seen pieces, so that a word seen before costs one
 * lookup, prefetched a few pieces ahead, instead of a merge. One per thread, two-way set
 * associative: 65,536 sets of two 64-byte entries (8 MiB), each entry one cache line, its key
 * compared as three words. A new piece goes into the first way and moves the first way's
 * piece to the second, so that two pieces whose hashes collide are both remembered (with one
 * way, collisions cost a fifth of the merges on the multilingual corpus; two ways save about
 * two in five of those). Allocated on
 * first use and freed when the thread ends. It only remembers results, which are a function of
 * the piece and the encoding, so it can never change an encoding; this is why it may be
 * per-thread state rather than something every caller passes in.
 */
#ifndef CACHE_BITS
#define CACHE_BITS 16 /* sets: 2^16 measured 5-10% faster on the multilingual corpus than 2^15 */
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

static __thread cache_ent *tls_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_key_ok;

static void cache_free(void *p)
{
    free(p);
}

static void cache_key_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

/* This thread's cache, or NULL when it cannot be had (the encoder then works without). */
static cache_ent *cache_get(void)
{
    if (tls_cache != NULL)
        return tls_cache;
    pthread_once(&cache_once, cache_key_init);
    if (!cache_key_ok)
        return NULL;
    tls_cache = big_calloc(CACHE_SIZE);
    if (tls_cache != NULL && pthread_setspecific(cache_key, tls_cache) != 0) {
        free(tls_cache);
        tls_cache = NULL;
    }
    return tls_cache;
}

void tok_cache_clear(void)
{
    if (tls_cache != NULL)
        memset(tls_cache, 0, CACHE_SIZE);
}

/* The set of a piece whose hash is h: CACHE_WAYS entries, the first on a 128-byte boundary. */
static inline cache_ent *cache_set(cache_ent *c, uint64_t h)
{
    return &c[((h >> 40) & (((size_t)1 << CACHE_BITS) - 1)) * CACHE_WAYS];
}

#ifdef TOK_STATS
uint64_t tok_stat_merge, tok_stat_merge_bytes, tok_stat_uncacheable, tok_stat_hit;
#endif

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

/* Encodes one piece of the pre-tokenizer's output. */
static inline int encode_piece(const tok_enc *e, const uint8_t *s, const ahead *a, cache_ent *c,
                               sink *k)
{
    const uint8_t *p = s + a->start;
    size_t n = a->len, m;
    uint32_t r, tok[SMALL_PIECE];
    cache_ent *set = NULL, *ce;

    if (n == 1) {
        emit(k, e->byte_rank[p[0]]);
        return 0;
    }
    if (n > SMALL_PIECE)
        return merge_large(e, p, n, k);
    if (n <= CACHE_KEY && c != NULL) {
        set = cache_set(c, a->h);
        ce = cache_match(&set[0], a, e->id) ? &set[0]
             : cache_match(&set[1], a, e->id) ? &set[1]
                                               : NULL;
        if (ce != NULL) {
#ifdef TOK_STATS
            tok_stat_hit++;
#endif
            if (k->ids == NULL) {
                k->count += ce->nids;
                return 0;
            }
            for (size_t i = 0; i < ce->nids; i++)
                emit(k, ce->ids[i]);
            return 0;
        }
    }
    if (n <= MAX_TOKEN_LEN && (r = rank_lookup(e, p, n, a->h, a->w[0])) != NO_RANK) {
        tok[0] = r;
        m = 1;
    } else {
#ifdef TOK_STATS
        tok_stat_merge++;
        tok_stat_merge_bytes += n;
        if (set == NULL)
            tok_stat_uncacheable++;
#endif
        m = merge_small(e, p, n, tok);
    }
    for (size_t i = 0; i < m; i++)
        emit(k, tok[i]);
    if (set != NULL && m <= CACHE_IDS) {
        set[1] = set[0];
        ce = &set[0];
        memcpy(ce->w, a->w, sizeof(ce->w));
        ce->enc = e->id;
        ce->len = (uint8_t)n;
        ce->nids = (uint8_t)m;
        memcpy(ce->ids, tok, m * sizeof(uint32_t));
    }
    return 0;
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
    cache_ent *c = cache_get();

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
                    cache_ent *set = cache_set(c, a->h);
                    __builtin_prefetch(&set[0]);
                    __builtin_prefetch(&set[1]);
                }
                __builtin_prefetch(slot_of(e, len, a->h));
            }
            i = j;
        }
        if (head == tail)
            break;
        if (encode_piece(e, s, &q[head++ & (AHEAD - 1)], c, k) != 0)
            return -1;
    }
    return k->failed ? -1 : 0;
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
        return encode_ordinary(e, s, n, k);
    while ((sp = find_special(e, s, n, i, &at)) != NULL) {
        if (encode_ordinary(e, s + i, at - i, k) != 0)
            return -1;
        emit(k, sp->id);
        i = at + strlen(sp->text);
    }
    return encode_ordinary(e, s + i, n - i, k);
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

int tok_json_has_nul_escape(const char *s, size_t n)
{
    const char *p = s, *end = s + n;

    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p >= 6 && p[1] == 'u' && memcmp(p + 2, "0000", 4) == 0)
            return 1;
        p += 2; /* an escape is two characters at least: skip the escaped one */
        if (p >= end)
            break;
    }
    return 0;
}

void tok_ids_free(tok_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}
