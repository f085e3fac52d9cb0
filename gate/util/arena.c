#include "gate/util/arena.h"

#include "gate/util/memcap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 4096

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct arena {
    struct arena_block *head;
    struct memcap *pool;  /* where its bytes are counted, or NULL */
    size_t bytes;         /* held in blocks */
    size_t charged;       /* held elsewhere for the request (arena_charge) */
    size_t limit;         /* 0: none (arena_limit) */
    int pool_strict;      /* the pool's cap refuses too, while limit is set */
    enum arena_fail fail; /* the first refusal */
};

struct arena *arena_new(void)
{
    return calloc(1, sizeof(struct arena));
}

void arena_free(struct arena *a)
{
    if (a == NULL)
        return;
    if (a->pool != NULL)
        memcap_give(a->pool, a->bytes + a->charged);
    for (struct arena_block *b = a->head, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

/* Records the first refusal and lifts the limit: the request must still be able to answer
 * and be logged, from this arena, once its parse has failed. */
static void refuse(struct arena *a, enum arena_fail why)
{
    if (a->fail == ARENA_OK)
        a->fail = why;
    a->limit = 0;
}

/* Counts a new block of n bytes against the limit and the pool. Returns 0 or -1 (refused). */
static int take(struct arena *a, size_t n)
{
    int strict = a->limit > 0;

    if (strict && (a->bytes + n > a->limit || a->bytes + n < a->bytes)) {
        refuse(a, ARENA_OVER_LIMIT);
        return -1;
    }
    if (a->pool != NULL && memcap_take(a->pool, n, strict && a->pool_strict) < 0) {
        refuse(a, ARENA_OVER_POOL);
        return -1;
    }
    a->bytes += n;
    return 0;
}

static void give(struct arena *a, size_t n)
{
    a->bytes -= n;
    if (a->pool != NULL)
        memcap_give(a->pool, n);
}

void arena_account(struct arena *a, struct memcap *pool)
{
    if (a->pool == NULL && pool != NULL) {
        a->pool = pool;
        memcap_take(pool, a->bytes + a->charged, 0);
    }
}

void arena_limit(struct arena *a, size_t limit, int pool_too)
{
    a->limit = limit;
    a->pool_strict = pool_too;
}

int arena_charge(struct arena *a, size_t n, int strict)
{
    if (a->pool != NULL && memcap_take(a->pool, n, strict) < 0)
        return -1;
    a->charged += n;
    return 0;
}

size_t arena_charged(const struct arena *a)
{
    return a->charged;
}

size_t arena_bytes(const struct arena *a)
{
    return a->bytes;
}

enum arena_fail arena_failure(const struct arena *a)
{
    return a->fail;
}

void *arena_alloc(struct arena *a, size_t n)
{
    void *p = arena_alloc_raw(a, n);

    if (p != NULL)
        memset(p, 0, n);
    return p;
}

void *arena_alloc_raw(struct arena *a, size_t n)
{
    struct arena_block *b = a->head;

    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK / 2 ? n : ARENA_BLOCK - sizeof(*b);
        if (take(a, sizeof(struct arena_block) + cap) < 0)
            return NULL;
        struct arena_block *nb = malloc(sizeof(*nb) + cap);
        if (nb == NULL) {
            give(a, sizeof(struct arena_block) + cap);
            refuse(a, ARENA_NOMEM);
            return NULL;
        }
        nb->used = 0;
        nb->cap = cap;
        if (b != NULL && cap != n) {
            nb->next = b;
            a->head = nb;
        } else if (b != NULL) {
            /* an oversized block goes behind the current one, which still has room */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = NULL;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
