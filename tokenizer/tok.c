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
#include "tokenizer/tok.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok-int.h"
#include "tokenizer/utf8.h"

#define SMALL_PIECE 256 /* pieces up to this long merge in arrays on the stack */

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
    tls_cache = tok_big_calloc(CACHE_SIZE);
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

/* Where a piece's vocabulary probe will look, for a prefetch (1 < a->len <= MAX_TOKEN_LEN). */
static inline const void *vocab_slot(const tok_enc *e, const ahead *a)
{
    if (a->len <= 8)
        return &e->bucket[a->h & e->bmask];
    if (a->len <= WHOLE_MAX)
        return &e->whole[a->h & e->wmask];
    return slot_of(e, a->len, a->h);
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
    if (n <= MAX_TOKEN_LEN && (r = vocab_rank(e, p, a)) != NO_RANK) {
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
                if (len <= MAX_TOKEN_LEN)
                    __builtin_prefetch(vocab_slot(e, a));
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
