/*
 * arena: a per-request memory pool. Everything a request allocates comes from its arena and
 * goes at once when the request ends; nothing is freed one by one.
 *
 * An arena can count its bytes in a pool shared by the gate's requests (arena_account), and
 * refuse to grow past a limit of its own or past the pool's cap (arena_limit): that is how a
 * request's parse is bounded (limits.max_request_memory, limits.max_memory_in_flight).
 */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include <stddef.h>

struct arena;

/* Returns a new arena, or NULL when out of memory. */
struct arena *arena_new(void);

struct memcap;

/* Why an arena refused an allocation, the first time it did. */
enum arena_fail {
    ARENA_OK,
    ARENA_NOMEM,      /* malloc failed */
    ARENA_OVER_LIMIT, /* past the arena's own limit */
    ARENA_OVER_POOL,  /* past the cap of the pool it is counted in */
};

/*
 * Counts the arena's blocks, and what arena_charge adds, in pool from now until arena_free
 * gives them back. Call once; pool must outlive the arena.
 */
void arena_account(struct arena *a, struct memcap *pool);

/*
 * From now on a new block that would take the arena past limit bytes (its blocks; 0 for no
 * limit), or, with pool_too, its pool past the pool's cap, is refused: the allocation returns
 * NULL and arena_failure says why. The first refusal lifts the limit again, so that the
 * request can still answer and be logged from its arena; callers check arena_failure once the
 * bounded work is done. arena_limit(a, 0, 0) lifts it too.
 */
void arena_limit(struct arena *a, size_t limit, int pool_too);

/*
 * Counts n bytes the request holds outside the arena (its body, a copy sent upstream) in the
 * arena's pool, given back by arena_free. With strict set, returns -1 and counts nothing when
 * the pool's cap would be passed; otherwise returns 0. Without a pool, only records n.
 */
int arena_charge(struct arena *a, size_t n, int strict);

/* What arena_charge has counted so far. */
size_t arena_charged(const struct arena *a);

/* The bytes of the arena's blocks. */
size_t arena_bytes(const struct arena *a);

/* ARENA_OK, or why the arena first refused an allocation. */
enum arena_fail arena_failure(const struct arena *a);

/* Frees the arena and everything allocated from it, giving its bytes back to its pool.
 * Accepts NULL. */
void arena_free(struct arena *a);

/* Returns n bytes aligned for any type, or NULL when out of memory. Zeroed. */
void *arena_alloc(struct arena *a, size_t n);

/* As arena_alloc, without zeroing: for callers that fill what they get (cJSON does). */
void *arena_alloc_raw(struct arena *a, size_t n);

/* Copies n bytes and a terminating NUL into the arena. Returns NULL when out of memory. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

#endif
