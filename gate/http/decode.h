/*
 * decode: the content codings a provider may answer in although the gate asked for identity
 * (gzip and deflate, with zlib), undone as the bytes arrive, so that usage and the gate's own
 * count can be read from what the provider really said.
 */
#ifndef TG_DECODE_H
#define TG_DECODE_H

#include <stddef.h>

enum decode_kind {
    DECODE_IDENTITY,
    DECODE_GZIP,
    DECODE_DEFLATE,
    DECODE_UNKNOWN, /* a coding the gate cannot undo (br, zstd, ...) */
};

/* The coding a Content-Encoding value names (one coding; case-insensitive). */
enum decode_kind decode_kind_of(const char *value, size_t len);

struct decode;

/* A decoder for kind (gzip or deflate). Returns NULL when out of memory. */
struct decode *decode_new(enum decode_kind kind);
void decode_free(struct decode *d);

/* Receives decoded bytes, at most DECODE_PIECE at a time. Returns 0 to go on, -1 to stop. */
typedef int (*decode_cb)(void *arg, const char *data, size_t len);

#define DECODE_PIECE (16 * 1024)

/*
 * Decodes len bytes and hands what they give to cb, in order. At most cap bytes may come out
 * of one call (a small input that expands past that is a bomb, not an answer). Returns 0, or
 * -1 when the data is corrupt, comes after the end of the coded stream, expands past cap,
 * memory runs out, or cb stopped; the reason is then in decode_error().
 */
int decode_feed(struct decode *d, const char *data, size_t len, size_t cap, decode_cb cb,
                void *arg);

/* Whether the coded stream ended properly (its trailer, for gzip, was read and checked). */
int decode_done(const struct decode *d);

/* Why the last decode_feed failed, for the log and the client ("" when it did not). */
const char *decode_error(const struct decode *d);

#endif
