/*
 * tokvocab: the encodings and their tables: the rank files linked in by data.S, the hash
 * tables, filter, byte and pair tables and the character tables that the encoder (tok.c) reads,
 * built once per encoding the first time it is asked for, and the verbs that name an encoding.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tokenizer/tok-int.h"

#define HUGE_PAGE ((size_t)2 << 20)

/* the rank files, linked in by data.S */
extern const uint8_t tok_data_cl100k[], tok_data_cl100k_end[];
extern const uint8_t tok_data_o200k[], tok_data_o200k_end[];
extern const uint8_t tok_data_p50k[], tok_data_p50k_end[];
extern const uint8_t tok_data_r50k[], tok_data_r50k_end[];

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

/* How many bytes a UTF-8 sequence whose first byte is b has: 2 to 4, or 0 for another byte. */
static inline size_t lead_len(uint8_t b)
{
    return b >= 0xc0 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf8 ? 4 : 0;
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
            uint32_t cp = utf8_decode(t, cl);
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
            uint32_t cp = utf8_decode(t + len - cl, cl);
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
 * Zeroed memory for a big table that is probed at random: in 2 MiB huge pages where the kernel
 * grants them, since with 4 KiB pages nearly every probe of a table of megabytes also misses
 * the TLB. Freed with free().
 */
void *tok_big_calloc(size_t size)
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
/*
 * The fast table (see tok_fast): one bucket of four ways for every four tokens of 1 to FAST_MAX
 * bytes (2 MiB for cl100k_base, 4 MiB for o200k_base), filled in rank order, so that a token left
 * out of a full bucket is a rare one: 3,413 of 70,478 in cl100k_base, 5,376 of 132,360 in
 * o200k_base, against 426 and 655 with twice the buckets, which measured 2-8 % slower (more of
 * the table out of the cache). A bucket that a token is left out of is marked full, so that the
 * merge (pair_rank) takes a miss in any other bucket as the answer. Returns 0, or -1 when memory
 * runs out.
 */
static int fast_build(tok_enc *e)
{
    size_t count = 0, nb = 2;
    unsigned bits = 1;

    for (uint32_t r = 0; r < e->nranks; r++)
        count += e->lens[r] >= 1 && e->lens[r] <= FAST_MAX;
    while (nb * 4 < count) {
        nb <<= 1;
        bits++;
    }
    if ((e->fast = tok_big_calloc(nb * sizeof(tok_fast))) == NULL)
        return -1;
    e->fast_shift = 64 - bits;
    for (uint32_t r = 0; r < e->nranks; r++) {
        size_t n = e->lens[r];
        uint64_t key;
        tok_fast *b;
        int j;
        if (n < 1 || n > FAST_MAX)
            continue;
        key = fast_key(load_k8(e->bytes + e->offs[r], n), n);
        b = &e->fast[fast_index(e, key)];
        /* a key is never 0: its top byte is the length */
        for (j = 0; j < FAST_WAYS && b->k[j] != 0; j++)
            ;
        if (j == FAST_WAYS) {
            b->full = 1; /* a miss in b is no longer an answer: see pair_rank */
            continue;
        }
        b->k[j] = key;
        b->nr[j] = ~r;
    }
    return 0;
}

static void build(tok_enc *e)
{
    const uint8_t *b = e->blob;
    size_t size = (size_t)(e->blob_end - e->blob), nslots = 1, nshort = 1, nwords = 1, total = 0;
    size_t short_tokens = 0, whole_tokens = 0, nwhole = 1, bucket_tokens = 0, nbuckets = 1;
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
    for (uint32_t r = 0; r < n; r++) {
        short_tokens += e->lens[r] <= SHORT_KEY;
        whole_tokens += e->lens[r] >= WHOLE_MIN && e->lens[r] <= WHOLE_MAX;
        bucket_tokens += e->lens[r] >= 2 && e->lens[r] <= 8;
    }
    while (nslots < (size_t)n * 2 + n / 2) /* load factor at most 0.4 */
        nslots <<= 1;
    while (nshort < short_tokens + short_tokens / 2) /* at most 2/3 */
        nshort <<= 1;
    while (nwhole * 3 < whole_tokens * 10) /* at most 0.3 */
        nwhole <<= 1;
    while (nbuckets * BUCKET_WAYS < bucket_tokens * 2) /* at most 1/2 */
        nbuckets <<= 1;
    while (nwords * 8 < (size_t)n) /* six to twelve tokens a word: about 1 in 70 false */
        nwords <<= 1;
    e->offs = malloc(sizeof(uint32_t) * n);
    e->slots = tok_big_calloc(nslots * sizeof(tok_slot));
    e->sslots = tok_big_calloc(nshort * sizeof(uint64_t));
    e->whole = tok_big_calloc(nwhole * sizeof(tok_whole));
    e->bucket = tok_big_calloc(nbuckets * sizeof(tok_bucket));
    e->filter = calloc(nwords, sizeof(uint64_t));
    if (e->offs == NULL || e->slots == NULL || e->sslots == NULL || e->filter == NULL ||
        e->whole == NULL || e->bucket == NULL)
        goto fail;
    e->bmask = nbuckets - 1;
    e->wmask = nwhole - 1;
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
        if (e->lens[r] >= WHOLE_MIN && e->lens[r] <= WHOLE_MAX) {
            tok_whole *w;
            for (i = h & e->wmask; e->whole[i].len != 0; i = (i + 1) & e->wmask)
                ;
            w = &e->whole[i];
            w->w[0] = k8;
            load_rest(p, e->lens[r], &w->w[1], &w->w[2]);
            w->len = e->lens[r];
            w->rank = r;
        }
        if (e->lens[r] >= 2 && e->lens[r] <= 8) {
            int j = BUCKET_WAYS;
            for (i = h & e->bmask;; i = (i + 1) & e->bmask) {
                for (j = 0; j < BUCKET_WAYS && e->bucket[i].lr[j] != 0; j++)
                    ;
                if (j < BUCKET_WAYS)
                    break;
            }
            e->bucket[i].k[j] = k8;
            e->bucket[i].lr[j] = (uint32_t)e->lens[r] << 24 | r;
        }
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
    if (fast_build(e) != 0)
        goto fail;
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
        goto fail; /* the backtracking merge's tables are built on first need: tok_merge_ready */
    e->ready = 1;
    return;
fail:
    free(e->offs);
    free(e->slots);
    free(e->sslots);
    free(e->pair2);
    free(e->filter);
    free(e->whole);
    free(e->bucket);
    free(e->fast);
    e->fast = NULL;
    free(e->chr);
    free(e->split);
    tok_merge_free(e);
    e->chr = NULL;
    e->split = NULL;
    e->pair2 = NULL;
    e->filter = NULL;
    e->whole = NULL;
    e->bucket = NULL;
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
        tok_path_init();
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
