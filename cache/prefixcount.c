/*
 * prefixcount: the memo of message-prefix token counts (see prefixcount.h), a hash table with an
 * LRU list, split in shards by the key's bits so that workers counting at once rarely wait on
 * one another. Each shard holds at most its share of the cap; a put past it reuses the shard's
 * least recently used entry. Keys are already uniform 128-bit hashes: their bytes pick the shard
 * and the bucket, and a whole key is compared on lookup.
 */
#include "cache/prefixcount.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A table this small is one shard, so that its LRU order is exact (tests, tiny configs). */
#define SHARDS 16
#define SHARD_MIN_CAP 4096
#define BUCKETS_MIN 64

struct pc_node {
    uint8_t key[16];
    tok_prefix_val v;
    struct pc_node *hnext;       /* the bucket's chain */
    struct pc_node *prev, *next; /* the LRU list: after the head, the most recent first */
};

struct pc_shard {
    pthread_mutex_t mu;
    struct pc_node **buckets;
    size_t nbuckets;    /* a power of two */
    struct pc_node lru; /* the list's head: lru.next the newest, lru.prev the oldest */
    int64_t n, cap;
    uint64_t hits, misses, evictions;
} __attribute__((aligned(64)));

struct prefixcount {
    int nshards;
    int64_t max;
    struct pc_shard shard[SHARDS];
};

static uint64_t key64(const uint8_t key[16], int at)
{
    uint64_t v;

    memcpy(&v, key + at, sizeof(v));
    return v;
}

static struct pc_shard *shard_of(struct prefixcount *p, const uint8_t key[16])
{
    return &p->shard[key64(key, 8) % (uint64_t)p->nshards];
}

static struct pc_node **bucket_of(struct pc_shard *s, const uint8_t key[16])
{
    return &s->buckets[key64(key, 0) & (s->nbuckets - 1)];
}

static void lru_unlink(struct pc_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static void lru_push(struct pc_shard *s, struct pc_node *n)
{
    n->next = s->lru.next;
    n->prev = &s->lru;
    s->lru.next->prev = n;
    s->lru.next = n;
}

static struct pc_node *find(struct pc_shard *s, const uint8_t key[16])
{
    struct pc_node *n;

    for (n = *bucket_of(s, key); n != NULL; n = n->hnext)
        if (memcmp(n->key, key, 16) == 0)
            return n;
    return NULL;
}

/* Takes n out of its bucket and the LRU list (the shard's count too). */
static void unlink_node(struct pc_shard *s, struct pc_node *n)
{
    struct pc_node **pp = bucket_of(s, n->key);

    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    lru_unlink(n);
    s->n--;
}

/* Doubles the buckets when the entries outnumber them; out of memory: longer chains. */
static void grow(struct pc_shard *s)
{
    size_t nb = s->nbuckets * 2;
    struct pc_node **b, *n, *next;

    if ((size_t)s->n <= s->nbuckets || (b = calloc(nb, sizeof(*b))) == NULL)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (n = s->buckets[i]; n != NULL; n = next) {
            next = n->hnext;
            n->hnext = b[key64(n->key, 0) & (nb - 1)];
            b[key64(n->key, 0) & (nb - 1)] = n;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

/* Drops the oldest entries until the shard holds at most keep. */
static void trim(struct pc_shard *s, int64_t keep)
{
    while (s->n > keep && s->lru.prev != &s->lru) {
        struct pc_node *old = s->lru.prev;
        unlink_node(s, old);
        free(old);
        s->evictions++;
    }
}

static int64_t share(int64_t max, int nshards, int i)
{
    return max / nshards + (i < max % nshards ? 1 : 0);
}

struct prefixcount *prefixcount_new(int64_t max_entries)
{
    struct prefixcount *p;

    if (max_entries < 0)
        max_entries = 0;
    if ((p = aligned_alloc(64, sizeof(*p))) == NULL)
        return NULL;
    memset(p, 0, sizeof(*p));
    p->nshards = max_entries >= (int64_t)SHARDS * SHARD_MIN_CAP ? SHARDS : 1;
    p->max = max_entries;
    for (int i = 0; i < p->nshards; i++) {
        struct pc_shard *s = &p->shard[i];
        s->nbuckets = BUCKETS_MIN;
        s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
        s->lru.next = s->lru.prev = &s->lru;
        s->cap = share(max_entries, p->nshards, i);
        if (s->buckets == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            s->buckets = NULL;
            p->nshards = i;
            prefixcount_free(p);
            return NULL;
        }
    }
    return p;
}

void prefixcount_free(struct prefixcount *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->nshards; i++) {
        struct pc_shard *s = &p->shard[i];
        trim(s, 0);
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(p);
}

void prefixcount_set_cap(struct prefixcount *p, int64_t max_entries)
{
    if (p == NULL)
        return;
    if (max_entries < 0)
        max_entries = 0;
    for (int i = 0; i < p->nshards; i++) {
        struct pc_shard *s = &p->shard[i];
        pthread_mutex_lock(&s->mu);
        s->cap = share(max_entries, p->nshards, i);
        trim(s, s->cap);
        pthread_mutex_unlock(&s->mu);
    }
    __atomic_store_n(&p->max, max_entries, __ATOMIC_RELAXED);
}

static int pc_get(void *arg, const uint8_t key[16], tok_prefix_val *out)
{
    struct pc_shard *s = shard_of(arg, key);
    struct pc_node *n;

    pthread_mutex_lock(&s->mu);
    if ((n = find(s, key)) != NULL) {
        *out = n->v;
        lru_unlink(n);
        lru_push(s, n);
        s->hits++;
    } else
        s->misses++;
    pthread_mutex_unlock(&s->mu);
    return n != NULL;
}

static void pc_put(void *arg, const uint8_t key[16], const tok_prefix_val *v)
{
    struct pc_shard *s = shard_of(arg, key);
    struct pc_node *n;

    pthread_mutex_lock(&s->mu);
    if ((n = find(s, key)) != NULL) {
        n->v = *v;
        lru_unlink(n);
        lru_push(s, n);
        goto out;
    }
    if (s->cap <= 0)
        goto out;
    if (s->n >= s->cap) { /* full: the oldest entry's memory takes the new one */
        n = s->lru.prev;
        unlink_node(s, n);
        s->evictions++;
    } else if ((n = malloc(sizeof(*n))) == NULL)
        goto out; /* out of memory: not remembered */
    memcpy(n->key, key, 16);
    n->v = *v;
    n->hnext = *bucket_of(s, key);
    *bucket_of(s, key) = n;
    lru_push(s, n);
    s->n++;
    grow(s);
out:
    pthread_mutex_unlock(&s->mu);
}

void prefixcount_memo(struct prefixcount *p, tok_prefix_memo *out)
{
    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return;
    out->get = pc_get;
    out->put = pc_put;
    out->arg = p;
}

void prefixcount_stats(struct prefixcount *p, struct prefixcount_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return;
    out->max_entries = (uint64_t)__atomic_load_n(&p->max, __ATOMIC_RELAXED);
    for (int i = 0; i < p->nshards; i++) {
        struct pc_shard *s = &p->shard[i];
        pthread_mutex_lock(&s->mu);
        out->entries += (uint64_t)s->n;
        out->hits += s->hits;
        out->misses += s->misses;
        out->evictions += s->evictions;
        pthread_mutex_unlock(&s->mu);
    }
}
