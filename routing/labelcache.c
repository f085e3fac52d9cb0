/*
 * labelcache: the classifier's labels by tenant and text, with a TTL and LRU eviction. See
 * labelcache.h.
 *
 * Everything is allocated by labelcache_new: max_entries entries (at most LABELCACHE_CAP), a
 * bucket array twice as large, chains and the LRU list linked by index. An entry's key is the
 * tenant, kept and compared in full, and the text's XXH3 128-bit hash and length (the text
 * itself is not kept). A tenant of LABELCACHE_TENANT_MAX bytes or more, or a label of
 * LABELCACHE_LABEL_MAX bytes or more, is not cached (a get is a miss, a put does nothing).
 * An expired entry is dropped when a get finds it. When the cache is full, a new key takes
 * the place of the least recently used entry, counted as an eviction unless it had expired.
 */
#include "routing/labelcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define LABELCACHE_CAP 1000000
#define LABELCACHE_TENANT_MAX 128
#define LABELCACHE_LABEL_MAX 32

struct lentry {
    char tenant[LABELCACHE_TENANT_MAX];
    char label[LABELCACHE_LABEL_MAX];
    XXH128_hash_t th; /* of the text */
    size_t len;       /* of the text */
    int64_t expires_us;
    uint32_t bucket;
    int32_t chain;      /* next entry in the bucket, -1 none */
    int32_t prev, next; /* LRU list (most recent first), or the free list (next) */
};

struct labelcache {
    pthread_mutex_t mu;
    int cap, n;
    uint32_t mask;  /* buckets - 1 */
    int32_t *heads; /* first entry of each bucket, -1 none */
    struct lentry *e;
    int32_t free_head; /* unused entries, through next */
    int32_t lru_head, lru_tail;
    uint64_t hits, misses, evictions;
};

/* A cache of max_entries labels (clamped to 1..LABELCACHE_CAP); NULL when out of memory. */
struct labelcache *labelcache_new(int max_entries)
{
    struct labelcache *lc = calloc(1, sizeof(*lc));
    uint32_t nb = 2;

    if (lc == NULL)
        return NULL;
    lc->cap = max_entries < 1 ? 1 : max_entries > LABELCACHE_CAP ? LABELCACHE_CAP : max_entries;
    while (nb < (uint32_t)lc->cap * 2)
        nb <<= 1;
    lc->mask = nb - 1;
    lc->heads = malloc(sizeof(*lc->heads) * nb);
    lc->e = calloc((size_t)lc->cap, sizeof(*lc->e));
    if (lc->heads == NULL || lc->e == NULL || pthread_mutex_init(&lc->mu, NULL) != 0) {
        free(lc->heads);
        free(lc->e);
        free(lc);
        return NULL;
    }
    for (uint32_t b = 0; b < nb; b++)
        lc->heads[b] = -1;
    for (int i = 0; i < lc->cap; i++)
        lc->e[i].next = i + 1 < lc->cap ? i + 1 : -1;
    lc->free_head = 0;
    lc->lru_head = lc->lru_tail = -1;
    return lc;
}

/* Frees lc (NULL is fine). No other thread may be using it. */
void labelcache_free(struct labelcache *lc)
{
    if (lc == NULL)
        return;
    pthread_mutex_destroy(&lc->mu);
    free(lc->heads);
    free(lc->e);
    free(lc);
}

static void lru_unlink(struct labelcache *lc, int32_t i)
{
    struct lentry *x = &lc->e[i];

    if (x->prev >= 0)
        lc->e[x->prev].next = x->next;
    else
        lc->lru_head = x->next;
    if (x->next >= 0)
        lc->e[x->next].prev = x->prev;
    else
        lc->lru_tail = x->prev;
    x->prev = x->next = -1;
}

static void lru_push_front(struct labelcache *lc, int32_t i)
{
    struct lentry *x = &lc->e[i];

    x->prev = -1;
    x->next = lc->lru_head;
    if (lc->lru_head >= 0)
        lc->e[lc->lru_head].prev = i;
    lc->lru_head = i;
    if (lc->lru_tail < 0)
        lc->lru_tail = i;
}

/* Takes entry i out of its bucket and the LRU list, onto the free list. */
static void entry_drop(struct labelcache *lc, int32_t i)
{
    int32_t *p = &lc->heads[lc->e[i].bucket];

    while (*p != i)
        p = &lc->e[*p].chain;
    *p = lc->e[i].chain;
    lru_unlink(lc, i);
    lc->e[i].next = lc->free_head;
    lc->free_head = i;
    lc->n--;
}

/* The bucket of (tenant, text hash). */
static uint32_t bucket_of(const struct labelcache *lc, const char *tenant, size_t tlen,
                          XXH128_hash_t th)
{
    return (uint32_t)(XXH3_64bits_withSeed(tenant, tlen, th.low64) & lc->mask);
}

/* The entry for the key, or -1. Under lc->mu. */
static int32_t entry_find(struct labelcache *lc, uint32_t b, const char *tenant, XXH128_hash_t th,
                          size_t len)
{
    for (int32_t i = lc->heads[b]; i >= 0; i = lc->e[i].chain) {
        const struct lentry *x = &lc->e[i];
        if (x->len == len && XXH128_isEqual(x->th, th) && strcmp(x->tenant, tenant) == 0)
            return i;
    }
    return -1;
}

/* Writes the label cached for (tenant, text) into out and returns 1, or 0 (a miss) when none
 * is, it expired at now_us (it is dropped), or it does not fit out. */
int labelcache_get(struct labelcache *lc, const char *tenant, const char *text, size_t len,
                   int64_t now_us, char *out, size_t cap)
{
    size_t tlen;
    XXH128_hash_t th;
    uint32_t b;
    int32_t i;
    int hit = 0;

    if (lc == NULL || tenant == NULL || (text == NULL && len > 0))
        return 0;
    tlen = strlen(tenant);
    th = XXH3_128bits(text, len);
    b = bucket_of(lc, tenant, tlen, th);
    pthread_mutex_lock(&lc->mu);
    i = tlen < LABELCACHE_TENANT_MAX ? entry_find(lc, b, tenant, th, len) : -1;
    if (i >= 0 && lc->e[i].expires_us <= now_us) {
        entry_drop(lc, i);
        i = -1;
    }
    if (i >= 0 && out != NULL && strlen(lc->e[i].label) < cap) {
        strcpy(out, lc->e[i].label);
        lru_unlink(lc, i);
        lru_push_front(lc, i);
        hit = 1;
    }
    if (hit)
        lc->hits++;
    else
        lc->misses++;
    pthread_mutex_unlock(&lc->mu);
    return hit;
}

/* Caches label for (tenant, text) until now_us + ttl_ms (replacing what was cached for it),
 * evicting the least recently used entry when full. Nothing when ttl_ms <= 0 or the tenant
 * or label is too long to keep. */
void labelcache_put(struct labelcache *lc, const char *tenant, const char *text, size_t len,
                    const char *label, int64_t now_us, int64_t ttl_ms)
{
    size_t tlen, llen;
    XXH128_hash_t th;
    uint32_t b;
    int32_t i;

    if (lc == NULL || tenant == NULL || label == NULL || (text == NULL && len > 0) || ttl_ms <= 0)
        return;
    tlen = strlen(tenant);
    llen = strlen(label);
    if (tlen >= LABELCACHE_TENANT_MAX || llen >= LABELCACHE_LABEL_MAX)
        return;
    th = XXH3_128bits(text, len);
    b = bucket_of(lc, tenant, tlen, th);
    pthread_mutex_lock(&lc->mu);
    i = entry_find(lc, b, tenant, th, len);
    if (i < 0) {
        if (lc->free_head < 0) { /* full: the least recently used goes */
            int32_t victim = lc->lru_tail;
            if (lc->e[victim].expires_us > now_us)
                lc->evictions++;
            entry_drop(lc, victim);
        }
        i = lc->free_head;
        lc->free_head = lc->e[i].next;
        memcpy(lc->e[i].tenant, tenant, tlen + 1);
        lc->e[i].th = th;
        lc->e[i].len = len;
        lc->e[i].bucket = b;
        lc->e[i].chain = lc->heads[b];
        lc->heads[b] = i;
        lc->n++;
    } else
        lru_unlink(lc, i);
    memcpy(lc->e[i].label, label, llen + 1);
    lc->e[i].expires_us = now_us + ttl_ms * 1000;
    lru_push_front(lc, i);
    pthread_mutex_unlock(&lc->mu);
}

/* out[0] entries held (expired ones not yet dropped included), out[1] hits, out[2] misses,
 * out[3] evictions. All zero for a NULL lc. */
void labelcache_stats(struct labelcache *lc, uint64_t out[4])
{
    memset(out, 0, sizeof(uint64_t) * 4);
    if (lc == NULL)
        return;
    pthread_mutex_lock(&lc->mu);
    out[0] = (uint64_t)lc->n;
    out[1] = lc->hits;
    out[2] = lc->misses;
    out[3] = lc->evictions;
    pthread_mutex_unlock(&lc->mu);
}
