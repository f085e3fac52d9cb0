/*
 * Unit tests for gate/decode: gzip and deflate (zlib-wrapped and raw) undone piece by piece,
 * however the input is cut; corrupt data, trailing data and bombs refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gate/http/decode.h"
#include "run_suite.h"

/* Compresses src with windowBits bits (31 gzip, 15 zlib, -15 raw). Returns malloc'd bytes. */
static unsigned char *compress_with(const char *src, size_t len, int bits, size_t *out_len)
{
    z_stream z = {0};
    size_t cap = compressBound(len) + 64;
    unsigned char *out = malloc(cap);

    ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

struct sink {
    char *buf;
    size_t len, cap;
};

static int collect(void *arg, const char *data, size_t len)
{
    struct sink *s = arg;

    ck_assert_int_le(len, DECODE_PIECE);
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

/* A text of n bytes that compresses well but not trivially. */
static char *text_of(size_t n)
{
    char *t = malloc(n + 1);

    for (size_t i = 0; i < n; i++)
        t[i] = "data: {\"delta\":\"the budget\"}\n\n"[i % 31] + (char)(i / 997 % 3);
    t[n] = '\0';
    return t;
}

START_TEST(round_trips_in_any_pieces)
{
    static const struct {
        enum decode_kind kind;
        int bits;
    } kinds[] = {{DECODE_GZIP, 31}, {DECODE_DEFLATE, 15}, {DECODE_DEFLATE, -15}};
    size_t n = 300000;
    char *text = text_of(n);

    for (size_t k = 0; k < 3; k++) {
        size_t clen;
        unsigned char *c = compress_with(text, n, kinds[k].bits, &clen);
        for (size_t step = 1; step <= clen; step = step * 7 + 3) {
            struct decode *d = decode_new(kinds[k].kind);
            struct sink s = {0};
            for (size_t off = 0; off < clen; off += step) {
                size_t take = clen - off < step ? clen - off : step;
                ck_assert_msg(decode_feed(d, (const char *)c + off, take, 1 << 24, collect, &s) == 0,
                              "kind %zu step %zu: %s", k, step, decode_error(d));
            }
            ck_assert_int_eq(decode_done(d), 1);
            ck_assert_int_eq(s.len, n);
            ck_assert_int_eq(memcmp(s.buf, text, n), 0);
            free(s.buf);
            decode_free(d);
        }
        free(c);
    }
    free(text);
}
END_TEST

START_TEST(refuses_bad_input)
{
    size_t n = 100000, clen;
    char *text = text_of(n);
    unsigned char *c = compress_with(text, n, 31, &clen);
    struct sink s = {0};
    struct decode *d;

    /* corrupt */
    d = decode_new(DECODE_GZIP);
    ck_assert_int_eq(decode_feed(d, "this is not gzip at all", 23, 1 << 20, collect, &s), -1);
    ck_assert_str_eq(decode_error(d), "the compressed body is corrupt");
    decode_free(d);
    /* a bomb: more out of one call than the cap */
    d = decode_new(DECODE_GZIP);
    ck_assert_int_eq(decode_feed(d, (const char *)c, clen, 4096, collect, &s), -1);
    ck_assert_str_eq(decode_error(d), "the compressed body expands past the limit");
    decode_free(d);
    /* data after the end */
    unsigned char *more = malloc(clen + 5);
    memcpy(more, c, clen);
    memcpy(more + clen, "extra", 5);
    d = decode_new(DECODE_GZIP);
    s.len = 0;
    ck_assert_int_eq(decode_feed(d, (const char *)more, clen + 5, 1 << 20, collect, &s), -1);
    decode_free(d);
    /* cut short: no error, but not done */
    d = decode_new(DECODE_GZIP);
    s.len = 0;
    ck_assert_int_eq(decode_feed(d, (const char *)c, clen - 10, 1 << 20, collect, &s), 0);
    ck_assert_int_eq(decode_done(d), 0);
    decode_free(d);
    free(more);
    free(c);
    free(s.buf);
    free(text);
}
END_TEST

START_TEST(names_the_codings)
{
    ck_assert_int_eq(decode_kind_of("gzip", 4), DECODE_GZIP);
    ck_assert_int_eq(decode_kind_of(" GZip ", 6), DECODE_GZIP);
    ck_assert_int_eq(decode_kind_of("x-gzip", 6), DECODE_GZIP);
    ck_assert_int_eq(decode_kind_of("deflate", 7), DECODE_DEFLATE);
    ck_assert_int_eq(decode_kind_of("identity", 8), DECODE_IDENTITY);
    ck_assert_int_eq(decode_kind_of("", 0), DECODE_IDENTITY);
    ck_assert_int_eq(decode_kind_of("br", 2), DECODE_UNKNOWN);
    ck_assert_int_eq(decode_kind_of("gzip, br", 8), DECODE_UNKNOWN);
}
END_TEST

static Suite *decode_suite(void)
{
    Suite *s = suite_create("decode");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trips_in_any_pieces);
    tcase_add_test(tc, refuses_bad_input);
    tcase_add_test(tc, names_the_codings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(decode_suite());
}
