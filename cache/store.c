/*
 * store: a byte-capped LRU with TTLs (see store.h), in shards: a key's hash picks its shard,
 * and each shard has its own mutex, hash table, LRU list and share of the byte cap, so that
 * workers looking up different keys seldom wait on one another.
 *
 * The number of shards is fixed when the store is made: 16, or fewer when max_bytes is small
 * against max_entry_bytes (each shard must hold a few of the largest entries; a store of a
 * few entries is one shard, its LRU order exact). A reload's new caps are split over the same
 * shards. An entry larger than its shard's share is refused as too big.
 *
 * Values are refcounted: the store holds one reference, each get hands out another; the
 * value is freed when the last goes, so eviction never frees what a request still replays.
 */
#include "cache/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define STORE_MAX_SHARDS 16
#define STORE_MIN_BUCKETS 64
#define STORE_MAX_BUCKETS (1u << 24) /* per shard: chains grow longer past it */

struct cache_val {
    atomic_int refs;
    int64_t expires;
    size_t len;
    char data[];
};

struct ent {
    struct ent *hnext;       /* hash chain */
    struct ent *prev, *next; /* LRU: head is the most recently used */
    uint64_t h;
    size_t klen;
    size_t bytes; /* what the entry counts against the cap */
    struct cache_val *val;
    char key[];
};

struct shard {
    pthread_mutex_t mu;
    struct ent **buckets;
    size_t nbuckets, count;
    struct ent *head, *tail;
    size_t bytes, max_bytes;
    uint64_t hits, misses, stores, too_big, evictions, expired;
};

struct cache_store {
    unsigned nshards;
    atomic_size_t max_entry_bytes, max_bytes;
    struct shard sh[STORE_MAX_SHARDS];
};

static uint64_t key_hash(const void *k, size_t n)
{
    return XXH3_64bits(k, n);
}

static struct shard *shard_of(struct cache_store *s, uint64_t h)
{
    return &s->sh[(h >> 56) % s->nshards];
}

static void val_unref(struct cache_val *v)
{
    if (v && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
        free(v);
}

static void lru_unlink(struct shard *sh, struct ent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        sh->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        sh->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct shard *sh, struct ent *e)
{
    e->prev = NULL;
    e->next = sh->head;
    if (sh->head)
        sh->head->prev = e;
    sh->head = e;
    if (!sh->tail)
        sh->tail = e;
}

/* The slot holding e's key (the pointer to the matching entry, or the chain's NULL end). */
static struct ent **find_slot(struct shard *sh, uint64_t h, const void *key, size_t klen)
{
    struct ent **pp = &sh->buckets[h & (sh->nbuckets - 1)];

    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->h == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
    return pp;
}

/* Removes the entry in *pp from the table and the LRU and frees it (its value lives on while
 * references are held). */
static void ent_drop(struct shard *sh, struct ent **pp)
{
    struct ent *e = *pp;

    *pp = e->hnext;
    lru_unlink(sh, e);
    sh->count--;
    sh->bytes -= e->bytes;
    val_unref(e->val);
    free(e);
}

static void ent_drop_entry(struct shard *sh, struct ent *e)
{
    struct ent **pp = &sh->buckets[e->h & (sh->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    ent_drop(sh, pp);
}

/* Evicts least recently used entries until the shard holds at most limit bytes. */
static void shard_trim(struct shard *sh, size_t limit)
{
    while (sh->tail && sh->bytes > limit) {
        ent_drop_entry(sh, sh->tail);
        sh->evictions++;
    }
}

/* Doubles the table when it is fuller than one entry a bucket; stays as it is when memory is
 * short (chains just grow longer). */
static void shard_grow(struct shard *sh)
{
    size_t n = sh->nbuckets * 2;
    struct ent **nb;

    if (sh->count <= sh->nbuckets || n > STORE_MAX_BUCKETS)
        return;
    nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (size_t i = 0; i < sh->nbuckets; i++) {
        struct ent *e = sh->buckets[i], *next;

        for (; e; e = next) {
            next = e->hnext;
            e->hnext = nb[e->h & (n - 1)];
            nb[e->h & (n - 1)] = e;
        }
    }
    free(sh->buckets);
    sh->buckets = nb;
    sh->nbuckets = n;
}

static unsigned pick_shards(size_t max_bytes, size_t max_entry_bytes)
{
    size_t big = max_entry_bytes + sizeof(struct ent) + sizeof(struct cache_val);
    unsigned n = STORE_MAX_SHARDS;

    /* each shard holds at least four of the largest entries (with their overhead) */
    while (n > 1 && max_bytes / n < 4 * big)
        n /= 2;
    return n;
}

struct cache_store *cache_store_new(size_t max_bytes, size_t max_entry_bytes)
{
    struct cache_store *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->nshards = pick_shards(max_bytes, max_entry_bytes);
    for (unsigned i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->sh[i];

        sh->buckets = calloc(STORE_MIN_BUCKETS, sizeof(*sh->buckets));
        if (!sh->buckets || pthread_mutex_init(&sh->mu, NULL) != 0) {
            free(sh->buckets);
            sh->buckets = NULL;
            s->nshards = i;
            cache_store_free(s);
            return NULL;
        }
        sh->nbuckets = STORE_MIN_BUCKETS;
    }
    cache_store_set_caps(s, max_bytes, max_entry_bytes);
    return s;
}

void cache_store_free(struct cache_store *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->sh[i];

        while (sh->head)
            ent_drop_entry(sh, sh->head);
        free(sh->buckets);
        pthread_mutex_destroy(&sh->mu);
    }
    free(s);
}

void cache_store_set_caps(struct cache_store *s, size_t max_bytes, size_t max_entry_bytes)
{
    size_t share = max_bytes / s->nshards;

    atomic_store(&s->max_bytes, max_bytes);
    atomic_store(&s->max_entry_bytes, max_entry_bytes);
    for (unsigned i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->sh[i];

        pthread_mutex_lock(&sh->mu);
        /* the last shard takes the remainder, so that the shares add up to max_bytes */
        sh->max_bytes = share + (i == s->nshards - 1 ? max_bytes % s->nshards : 0);
        shard_trim(sh, sh->max_bytes);
        pthread_mutex_unlock(&sh->mu);
    }
}

int cache_store_put(struct cache_store *s, const void *key, size_t klen, const void *val,
                    size_t vlen, int64_t ttl_ms, int64_t now_ms)
{
    uint64_t h = key_hash(key, klen);
    struct shard *sh = shard_of(s, h);
    size_t maxe = atomic_load(&s->max_entry_bytes);
    size_t bytes;
    struct ent *e, **pp;
    struct cache_val *v;

    if (klen > maxe || vlen > maxe - klen) {
        pthread_mutex_lock(&sh->mu);
        sh->too_big++;
        pthread_mutex_unlock(&sh->mu);
        return 1;
    }
    bytes = sizeof(struct ent) + klen + sizeof(struct cache_val) + vlen;
    /* built outside the lock: the copy of a large value holds no other worker up */
    e = malloc(sizeof(*e) + klen);
    v = malloc(sizeof(*v) + vlen);
    if (!e || !v) {
        free(e);
        free(v);
        return -1;
    }
    atomic_init(&v->refs, 1);
    v->expires = ttl_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + ttl_ms;
    v->len = vlen;
    if (vlen)
        memcpy(v->data, val, vlen);
    memset(e, 0, sizeof(*e));
    e->h = h;
    e->klen = klen;
    e->bytes = bytes;
    e->val = v;
    if (klen)
        memcpy(e->key, key, klen);

    pthread_mutex_lock(&sh->mu);
    if (bytes > sh->max_bytes) {
        sh->too_big++;
        pthread_mutex_unlock(&sh->mu);
        free(e);
        free(v);
        return 1;
    }
    pp = find_slot(sh, h, key, klen);
    if (*pp)
        ent_drop(sh, pp); /* replaced: not an eviction */
    shard_trim(sh, sh->max_bytes - bytes);
    shard_grow(sh);
    pp = &sh->buckets[h & (sh->nbuckets - 1)];
    e->hnext = *pp;
    *pp = e;
    lru_push(sh, e);
    sh->count++;
    sh->bytes += bytes;
    sh->stores++;
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

struct cache_val *cache_store_get(struct cache_store *s, const void *key, size_t klen,
                                  int64_t now_ms)
{
    uint64_t h = key_hash(key, klen);
    struct shard *sh = shard_of(s, h);
    struct cache_val *v = NULL;
    struct ent **pp;

    pthread_mutex_lock(&sh->mu);
    pp = find_slot(sh, h, key, klen);
    if (*pp && (*pp)->val->expires <= now_ms) {
        ent_drop(sh, pp);
        sh->expired++;
    } else if (*pp) {
        struct ent *e = *pp;

        v = e->val;
        atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
        lru_unlink(sh, e);
        lru_push(sh, e);
    }
    if (v)
        sh->hits++;
    else
        sh->misses++;
    pthread_mutex_unlock(&sh->mu);
    return v;
}

int cache_store_delete(struct cache_store *s, const void *key, size_t klen)
{
    uint64_t h = key_hash(key, klen);
    struct shard *sh = shard_of(s, h);
    struct ent **pp;
    int found;

    pthread_mutex_lock(&sh->mu);
    pp = find_slot(sh, h, key, klen);
    found = *pp != NULL;
    if (found)
        ent_drop(sh, pp);
    pthread_mutex_unlock(&sh->mu);
    return found;
}

const void *cache_val_data(const struct cache_val *v, size_t *len)
{
    *len = v->len;
    return v->data;
}

int64_t cache_val_expires(const struct cache_val *v)
{
    return v->expires;
}

void cache_val_release(struct cache_val *v)
{
    val_unref(v);
}

void cache_store_stats(struct cache_store *s, struct cache_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->max_bytes = atomic_load(&s->max_bytes);
    out->max_entry_bytes = atomic_load(&s->max_entry_bytes);
    for (unsigned i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->sh[i];

        pthread_mutex_lock(&sh->mu);
        out->entries += sh->count;
        out->bytes += sh->bytes;
        out->hits += sh->hits;
        out->misses += sh->misses;
        out->stores += sh->stores;
        out->too_big += sh->too_big;
        out->evictions += sh->evictions;
        out->expired += sh->expired;
        pthread_mutex_unlock(&sh->mu);
    }
}
