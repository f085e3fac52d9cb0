/*
 * decode: gzip and deflate answers undone with zlib. See decode.h.
 */
#include "gate/http/decode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

struct decode {
    z_stream z;
    enum decode_kind kind;
    int started;  /* deflate: whether it is zlib-wrapped or raw has been decided */
    unsigned char head[2]; /* deflate: its first bytes, until that is decided */
    int nhead;
    int done;
    const char *error;
};

enum decode_kind decode_kind_of(const char *value, size_t len)
{
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    while (len > 0 && (*value == ' ' || *value == '\t'))
        value++, len--;
    if (len == 0 || (len == 8 && strncasecmp(value, "identity", 8) == 0))
        return DECODE_IDENTITY;
    if ((len == 4 && strncasecmp(value, "gzip", 4) == 0) ||
        (len == 6 && strncasecmp(value, "x-gzip", 6) == 0))
        return DECODE_GZIP;
    if (len == 7 && strncasecmp(value, "deflate", 7) == 0)
        return DECODE_DEFLATE;
    return DECODE_UNKNOWN;
}

/* gzip: a gzip header and trailer; deflate: RFC 9110 says zlib-wrapped, some servers send it
 * raw (tried when the zlib header is wrong) */
static int start(struct decode *d, int raw)
{
    int bits = d->kind == DECODE_GZIP ? 15 + 16 : raw ? -15 : 15;

    memset(&d->z, 0, sizeof(d->z));
    return inflateInit2(&d->z, bits) == Z_OK ? 0 : -1;
}

struct decode *decode_new(enum decode_kind kind)
{
    struct decode *d;

    if (kind != DECODE_GZIP && kind != DECODE_DEFLATE)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->kind = kind;
    d->error = "";
    if (start(d, 0) < 0) {
        free(d);
        return NULL;
    }
    return d;
}

void decode_free(struct decode *d)
{
    if (d == NULL)
        return;
    inflateEnd(&d->z);
    free(d);
}

static int fail(struct decode *d, const char *why)
{
    d->error = why;
    return -1;
}

/* Inflates len bytes; total counts what came out of this decode_feed call. */
static int inflate_some(struct decode *d, const char *data, size_t len, size_t cap,
                        size_t *total, decode_cb cb, void *arg)
{
    char out[DECODE_PIECE];

    d->z.next_in = (Bytef *)(uintptr_t)data;
    d->z.avail_in = (uInt)len;
    d->z.avail_out = 0;
    /* until the input is used up and zlib has nothing more to give (a full out buffer may
     * mean more is waiting) */
    while (!d->done && (d->z.avail_in > 0 || d->z.avail_out == 0)) {
        d->z.next_out = (Bytef *)out;
        d->z.avail_out = sizeof(out);
        int rc = inflate(&d->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END)
            d->done = 1;
        else if (rc == Z_MEM_ERROR)
            return fail(d, "out of memory");
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return fail(d, "the compressed body is corrupt");
        size_t n = sizeof(out) - d->z.avail_out;
        if (n == 0 && rc == Z_BUF_ERROR)
            break; /* needs more input */
        *total += n;
        if (*total > cap)
            return fail(d, "the compressed body expands past the limit");
        if (n > 0 && cb(arg, out, n) < 0)
            return fail(d, "");
    }
    if (d->done && d->z.avail_in > 0)
        return fail(d, "data after the end of the compressed body");
    return 0;
}

int decode_feed(struct decode *d, const char *data, size_t len, size_t cap, decode_cb cb,
                void *arg)
{
    size_t total = 0;

    if (len == 0)
        return 0;
    if (d->done)
        return fail(d, "data after the end of the compressed body");
    if (d->kind == DECODE_DEFLATE && !d->started) {
        /* zlib-wrapped or raw: the first two bytes tell (RFC 1950's header check) */
        while (d->nhead < 2 && len > 0) {
            d->head[d->nhead++] = (unsigned char)*data++;
            len--;
        }
        if (d->nhead < 2)
            return 0;
        d->started = 1;
        int zlib = (d->head[0] & 0x0f) == 8 && ((d->head[0] << 8) | d->head[1]) % 31 == 0;
        if (!zlib) {
            inflateEnd(&d->z);
            if (start(d, 1) < 0)
                return fail(d, "out of memory");
        }
        if (inflate_some(d, (const char *)d->head, 2, cap, &total, cb, arg) < 0)
            return -1;
        if (len == 0)
            return 0;
    }
    return inflate_some(d, data, len, cap, &total, cb, arg);
}

int decode_done(const struct decode *d)
{
    return d->done;
}

const char *decode_error(const struct decode *d)
{
    return d->error;
}
