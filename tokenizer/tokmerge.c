/*
 * tokmerge: byte-pair merging of one piece, as tiktoken does it: start from single bytes, and
 * repeatedly merge the adjacent pair whose concatenation has the lowest rank, the leftmost one on
 * a tie, until no adjacent pair is a token. (Some characters start whole instead of as bytes,
 * where that provably changes nothing: see tok-int.h.) Pieces up to BT_MIN bytes (ASCII ones up
 * to BT_MIN_ASCII) use tiktoken's array method, quadratic in the piece length but touching only
 * a few cache lines: the short merge (tokshort-int.h) up to SHORT_MERGE_MAX bytes, the array
 * merge here above; longer ones the backtracking merge (below), linear, which gives the same
 * ids. The heap merge, ordered by (rank, position), O(n log n), stays as the reference for long
 * pieces in tests.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok-int.h"
#include "tokenizer/tokshort-int.h"

/*
 * tiktoken's merge, for n <= SMALL_PIECE: leaves the ids in tok and returns how many there are.
 * Parts are named by their first byte and linked both ways, so a merge moves nothing; the
 * next merge is the minimum of key[], one entry per byte position, where a position that no
 * longer starts a part, or starts one with no token to its right, holds UINT32_MAX. A key is
 * rank << 8 | position (ranks are below 2^24), so the minimum is the leftmost of the lowest
 * rank, and a scan over contiguous words with a conditional move finds it without branching.
 */
size_t tok_merge_ref_small(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok)
{
    uint32_t key[SMALL_PIECE];
    uint16_t next[SMALL_PIECE], prev[SMALL_PIECE];
    size_t m = 0;

    merge_init(e, p, n, tok, key, next, prev);
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
        /* the two new pairs, each of three bytes or more */
        {
            size_t left = at > 0 ? prev[at] : 0;
            uint32_t rr = after < n ? pair_rank(e, p + at, next[after] - at) : NO_RANK;
            key[at] = rr == NO_RANK ? UINT32_MAX : rr << 8 | (uint32_t)at;
            if (at > 0) {
                uint32_t rl = pair_rank(e, p + left, after - left);
                key[left] = rl == NO_RANK ? UINT32_MAX : rl << 8 | (uint32_t)left;
            }
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
__attribute__((noinline)) int tok_merge_ref_large(const tok_enc *e, const uint8_t *p, size_t n,
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
 * The backtracking merge. For vocabularies in which every token's own bytes merge into that
 * token (tok_merge_build checks it), a sequence of tokens that covers a piece is tiktoken's
 * result for it exactly when every two neighbours in it are compatible: merged alone, their
 * bytes give those two tokens again. So the result can be built left to right: take the longest
 * token that starts where the last one ends; if it is not compatible with the last one, the
 * next shorter token that starts there, and so on; when none is, drop the last token, mark the
 * position where nothing fitted as dead (no result can pass through it, since the result of
 * every prefix is unique), and try the dropped token's shorter prefixes. A position dies at
 * most once, so the work is linear in the piece, times the depth of the compatibility walks.
 */

#define BT_SEED 0x243f6a8885a308d3ull

/* The filter's rolling hash of a prefix: h, that of the bytes before it, then its last byte. */
static inline uint64_t bt_roll(uint64_t h, uint8_t b)
{
    return (h ^ b) * 0x9e3779b97f4a7c15ull;
}

static inline uint64_t bt_pfx_bit(const tok_enc *e, uint64_t h)
{
    return (h >> 35) & e->bt_pmask;
}

/* The rank of the longest token that the n bytes at p (n > 0) start with. The prefix filter
 * says how far the bytes may still be the start of a token; from there down, the first length
 * that is a token is the longest. */
static inline uint32_t bt_longest(const tok_enc *e, const uint8_t *p, size_t n)
{
    size_t max, len = 2;
    uint64_t h, b;
    uint32_t r;

    if (n == 1)
        return e->byte_rank[p[0]];
    max = e->bt_max2[p[0] << 8 | p[1]];
    max = max < n ? max : n;
    h = bt_roll(bt_roll(BT_SEED, p[0]), p[1]);
    for (; len < max; len++) {
        h = bt_roll(h, p[len]);
        b = bt_pfx_bit(e, h);
        if (!(e->bt_pfx[b >> 6] >> (b & 63) & 1))
            break;
    }
    for (; len > 2; len--)
        if ((r = rank_of(e, p, len)) != NO_RANK)
            return r;
    if (max >= 2 && (r = e->pair2[p[0] << 8 | p[1]]) != NO_RANK)
        return r;
    return e->byte_rank[p[0]];
}

/* The rank of the la bytes before q and the lb bytes from q together, or NO_RANK. */
static inline uint32_t bt_join(const tok_enc *e, const uint8_t *q, size_t la, size_t lb)
{
    if (la + lb == 2)
        return e->pair2[q[-1] << 8 | q[0]];
    return rank_of(e, q - la, la + lb);
}

/*
 * Whether token a, ending at q, and token b, starting at q, are compatible, where merges of rank
 * limit and above do not count (NO_RANK: all count). The walk goes down both merge trees along
 * the boundary, undoing at each step the part made later (the higher rank; on a tie the right
 * one, since tiktoken merges the leftmost first), and asks whether the two parts then beside
 * the boundary join into a token that would have been merged before the merge just undone. If
 * one does, merging both tokens' bytes together crosses the boundary: not compatible.
 */
static int bt_compat(const tok_enc *e, const uint8_t *q, uint32_t a, uint32_t b, uint32_t limit)
{
    for (;;) {
        size_t la = e->lens[a], lb = e->lens[b];
        if (bt_join(e, q, la, lb) < limit)
            return 0;
        if (la == 1 && lb == 1)
            return 1; /* both are bytes: nothing more to undo */
        if (lb == 1 || (a > b && la > 1)) {
            limit = a;
            a = (uint32_t)(e->bt_tree[a] >> 32);
        } else {
            limit = b + 1;
            b = (uint32_t)e->bt_tree[b];
        }
    }
}

size_t tok_merge_bt(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok, uint64_t *dead)
{
    size_t m = 0, pos = 0;
    uint32_t t;

    if (!tok_merge_ready(e))
        return 0;
    t = bt_longest(e, p, n);
    for (;;) {
        size_t end = pos + e->lens[t];
        if (!(dead[end >> 6] >> (end & 63) & 1) &&
            (m == 0 || bt_compat(e, p + pos, tok[m - 1], t, NO_RANK))) {
            tok[m++] = t;
            pos = end;
            if (pos == n)
                return m;
            t = bt_longest(e, p + pos, n - pos);
        } else if (e->lens[t] > 1) {
            t = e->bt_next[t];
        } else {
            /* nothing fits after the last token: pos is dead; try that token's prefixes */
            dead[pos >> 6] |= (uint64_t)1 << (pos & 63);
            if (m == 0)
                return 0; /* cannot happen for a vocabulary that tok_merge_build accepted */
            t = tok[--m];
            pos -= e->lens[t];
        }
    }
}

/*
 * Pieces longer than BT_MIN bytes, and ASCII pieces longer than BT_MIN_ASCII, merge by
 * backtracking; ASCII pieces up to BT_MIN_ASCII bytes and the others up to SHORT_MERGE_MAX by
 * the short merge (tokshort-int.h: tiktoken's method, fewer instructions and branches; taking
 * ASCII pieces of 17 to 24 bytes too measured 1-6 % more instructions than backtracking them);
 * the rest by the reference method. Measured on the corpus's distinct merged
 * pieces (release build, cl100k and o200k): below 17 bytes backtracking costs 1.1 to 2 times as
 * much; from 17 to 64 bytes it costs 1.6 to 3.6 times less on English and code, but 1.05 to 1.35
 * times more on the multilingual file (where characters start whole in the reference); above 64
 * bytes it costs 1.05 to 6.7 times less on every file.
 */
#define BT_MIN 64
#define BT_MIN_ASCII 16

/* Whether the n bytes at p are all ASCII. */
static inline int all_ascii(const uint8_t *p, size_t n)
{
    uint64_t acc = 0, w;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & 0x8080808080808080ull) == 0;
}

size_t tok_merge_small(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok)
{
    uint64_t dead[SMALL_PIECE / 64 + 1] = {0};
    int ascii = n <= BT_MIN && all_ascii(p, n);
    size_t m;

    if (ascii && n <= BT_MIN_ASCII)
        return short_merge(e, p, n, tok);
    if (!ascii && n <= SHORT_MERGE_MAX)
        return short_merge_any(e, p, n, tok, 0);
    if ((n > BT_MIN || ascii) && tok_merge_ready(e) && (m = tok_merge_bt(e, p, n, tok, dead)) != 0)
        return m;
    return tok_merge_ref_small(e, p, n, tok);
}

int tok_merge_large(const tok_enc *e, const uint8_t *p, size_t n, sink *k)
{
    uint32_t *tok;
    uint64_t *dead;
    size_t m = 0;

    if (!tok_merge_ready(e))
        return tok_merge_ref_large(e, p, n, k);
    if (n > SIZE_MAX / 8 || (tok = malloc(n * sizeof(uint32_t))) == NULL)
        return -1;
    if ((dead = calloc(n / 64 + 1, sizeof(uint64_t))) == NULL) {
        free(tok);
        return -1;
    }
    m = tok_merge_bt(e, p, n, tok, dead);
    for (size_t i = 0; i < m; i++)
        emit(k, tok[i]);
    free(tok);
    free(dead);
    return m != 0 ? 0 : tok_merge_ref_large(e, p, n, k);
}

static pthread_mutex_t bt_lock = PTHREAD_MUTEX_INITIALIZER;

int tok_merge_ready(const tok_enc *e)
{
    int state = __atomic_load_n(&e->bt_state, __ATOMIC_ACQUIRE);

    if (state == 0) {
        /* the tables are a cache of the vocabulary, filled once: the one write to a tok_enc
         * after it is built, under the lock, published by the release store */
        tok_enc *w = (tok_enc *)e;
        pthread_mutex_lock(&bt_lock);
        if ((state = w->bt_state) == 0) {
            state = tok_merge_build(w) == 0 && w->bt_tree != NULL ? 1 : 2;
            __atomic_store_n(&w->bt_state, state, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&bt_lock);
    }
    return state == 1;
}

void tok_prepare_long(const tok_enc *e)
{
    (void)tok_merge_ready(e);
}

void tok_merge_free(tok_enc *e)
{
    free(e->bt_tree);
    free(e->bt_next);
    free(e->bt_max2);
    free(e->bt_pfx);
    e->bt_tree = NULL;
    e->bt_next = NULL;
    e->bt_max2 = NULL;
    e->bt_pfx = NULL;
}

/* The rank of the len bytes at t (len > 0), through the byte and pair tables where they answer. */
static uint32_t bt_rank(const tok_enc *e, const uint8_t *t, size_t len)
{
    if (len == 1)
        return e->byte_rank[t[0]];
    if (len == 2)
        return e->pair2[t[0] << 8 | t[1]];
    return rank_of(e, t, len);
}

int tok_merge_build(tok_enc *e)
{
    uint32_t n = e->nranks;
    size_t npfx = 0, bits = 64;

    for (uint32_t r = 0; r < n; r++)
        npfx += e->lens[r] > 2 ? e->lens[r] - 2u : 0;
    while (bits < npfx * 8) /* eight bits a prefix: about 1 in 9 false, which costs a probe */
        bits <<= 1;
    e->bt_tree = malloc(n * sizeof(uint64_t));
    e->bt_next = malloc(n * sizeof(uint32_t));
    e->bt_max2 = calloc(65536, 1);
    e->bt_pfx = tok_big_calloc(bits / 8);
    e->bt_pmask = bits - 1;
    if (e->bt_tree == NULL || e->bt_next == NULL || e->bt_max2 == NULL || e->bt_pfx == NULL) {
        tok_merge_free(e);
        return -1;
    }
    /* the prefix tables, each token's longest proper prefix, and the bytes' trees */
    for (uint32_t r = 0; r < n; r++) {
        const uint8_t *t = e->bytes + e->offs[r];
        size_t len = e->lens[r];
        uint64_t h;
        e->bt_tree[r] = r | (uint64_t)r << 32;
        e->bt_next[r] = NO_RANK;
        if (len < 2)
            continue;
        if (e->bt_max2[t[0] << 8 | t[1]] < len)
            e->bt_max2[t[0] << 8 | t[1]] = (uint8_t)len;
        h = bt_roll(bt_roll(BT_SEED, t[0]), t[1]);
        for (size_t i = 2; i < len; i++) {
            uint64_t b;
            h = bt_roll(h, t[i]);
            b = bt_pfx_bit(e, h);
            e->bt_pfx[b >> 6] |= (uint64_t)1 << (b & 63);
        }
        for (size_t i = len - 1; i > 0 && e->bt_next[r] == NO_RANK; i--)
            e->bt_next[r] = bt_rank(e, t, i);
    }
    /* the trees, in rank order, so that a token's parts have theirs when it is reached: its
     * last merge is the split into a prefix and a rest, both tokens of lower rank, that are
     * compatible when merges from its own rank up do not count (at most one split is: the
     * merge of its bytes without those merges is unique) */
    for (uint32_t r = 0; r < n; r++) {
        const uint8_t *t = e->bytes + e->offs[r];
        size_t len = e->lens[r];
        uint32_t l, rest;
        if (len < 2)
            continue;
        for (l = e->bt_next[r]; l != NO_RANK; l = e->bt_next[l]) {
            rest = bt_rank(e, t + e->lens[l], len - e->lens[l]);
            if (rest != NO_RANK && l < r && rest < r && bt_compat(e, t + e->lens[l], l, rest, r))
                break;
        }
        if (l == NO_RANK) { /* r's bytes do not merge into r: the method does not apply */
            tok_merge_free(e);
            return 0;
        }
        e->bt_tree[r] = l | (uint64_t)rest << 32;
    }
    return 0;
}
