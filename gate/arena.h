/*
 * arena: a per-request memory pool. Everything a request allocates comes from its arena and
 * goes at once when the request ends; nothing is freed one by one.
 */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include <stddef.h>

struct arena;

/* Returns a new arena, or NULL when out of memory. */
struct arena *arena_new(void);

/* Frees the arena and everything allocated from it. Accepts NULL. */
void arena_free(struct arena *a);

/* Returns n bytes aligned for any type, or NULL when out of memory. Zeroed. */
void *arena_alloc(struct arena *a, size_t n);

/* As arena_alloc, without zeroing: for callers that fill what they get (cJSON does). */
void *arena_alloc_raw(struct arena *a, size_t n);

/* Copies n bytes and a terminating NUL into the arena. Returns NULL when out of memory. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

#endif
