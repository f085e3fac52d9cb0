/*
 * tokmerge: byte-pair merging of one piece, as tiktoken does it: start from single bytes, and
 * repeatedly merge the adjacent pair whose concatenation has the lowest rank, the leftmost one on
 * a tie, until no adjacent pair is a token. (Some characters start whole instead of as bytes,
 * where that provably changes nothing: see tok-int.h.) Short pieces use tiktoken's array method,
 * quadratic in the piece length but touching only a few cache lines; long pieces use a heap
 * ordered by (rank, position), which makes the same choices in O(n log n).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok-int.h"

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

/*
 * tiktoken's merge, for n <= SMALL_PIECE: leaves the ids in tok and returns how many there are.
 * Parts are named by their first byte and linked both ways, so a merge moves nothing; the
 * next merge is the minimum of key[], one entry per byte position, where a position that no
 * longer starts a part, or starts one with no token to its right, holds UINT32_MAX. A key is
 * rank << 8 | position (ranks are below 2^24), so the minimum is the leftmost of the lowest
 * rank, and a scan over contiguous words with a conditional move finds it without branching.
 */
size_t tok_merge_small(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok)
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
__attribute__((noinline)) int tok_merge_large(const tok_enc *e, const uint8_t *p, size_t n, sink *k)
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

