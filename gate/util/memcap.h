/*
 * memcap: a count of bytes shared by threads, with a cap: the memory that requests in flight
 * hold across the gate (limits.max_memory_in_flight). Each request's arena takes from it as
 * it grows and gives everything back when it is freed (see arena_account).
 */
#ifndef TG_MEMCAP_H
#define TG_MEMCAP_H

#include <stdatomic.h>
#include <stddef.h>

struct memcap {
    atomic_size_t used;
    size_t limit; /* 0: no cap, only a count; read and set with __atomic_* (a reload) */
};

/*
 * Adds n bytes. With strict set, fails instead when the count would pass the cap: returns -1
 * and counts nothing. Without it, always counts (memory already held must be counted) and
 * returns 0. Thread-safe.
 */
int memcap_take(struct memcap *m, size_t n, int strict);

/* Gives back n bytes taken before. Thread-safe. */
void memcap_give(struct memcap *m, size_t n);

/* The bytes counted now. */
size_t memcap_used(struct memcap *m);

#endif
