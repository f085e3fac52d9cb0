/*
 * canon: the canonical form of a JSON value, so that equal requests and equal tool arguments
 * give equal keys whatever their key order or white space: objects' members sorted by key
 * (bytewise), no white space, strings in one escaping, numbers in one spelling (1, 1.0 and 1e0
 * are one number). Arrays keep their order.
 */
#ifndef TG_CACHE_CANON_H
#define TG_CACHE_CANON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer with a cap; the canonical text is appended to it. */
struct canon_buf {
    char *data; /* malloc'd */
    size_t len, cap;
    size_t max; /* the most it may hold: past it canon_* fail */
};

/*
 * Appends the canonical text of v to b, leaving out the top-level members of an object v named
 * in skip (a NULL-terminated list, or NULL). Returns 0, or -1 when b would pass b->max, when
 * memory runs out, or when v is nested deeper than 64 (b then holds a partial text).
 */
int canon_append(struct canon_buf *b, const cJSON *v, const char *const *skip);

/* Appends n raw bytes to b (a key's prefix: its scope, its kind). Returns 0 or -1 as above. */
int canon_raw(struct canon_buf *b, const void *p, size_t n);

void canon_buf_free(struct canon_buf *b);

/* A 128-bit hash of n bytes (XXH3): the store's bucket, never its proof of equality. */
void canon_hash(const void *p, size_t n, uint8_t out[16]);

#endif
