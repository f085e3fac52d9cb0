/*
 * Unit tests for tokenizer/pretok_simd.h: the block pre-tokenizer finds exactly the scalar
 * scanner's pieces (pretok_next), piece by piece, on the benchmark corpus (TG_CORPUS, set by
 * tests/meson.build to ../shared/corpus from the source root), on generated text and on the
 * edge cases of its 64-byte windows. Any difference fails with the first differing offset.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok_simd.h"
#include "tokenizer/utf8.h"
#include "run_suite.h"

static const pretok_pattern patterns[] = {PRETOK_CL100K, PRETOK_O200K, PRETOK_R50K};

/*
 * Compares the two pre-tokenizers over the n bytes at s, the block one asked for cap pieces at
 * a time. Returns -1 when they agree, else the offset where the first differing piece starts
 * (its two ends in *want and *got).
 */
static long first_difference(pretok_pattern pat, const uint8_t *s, size_t n, size_t cap,
                             size_t *want, size_t *got, pretok_simd_stats *st)
{
    size_t ends[256], i = 0;

    while (i < n) {
        size_t m = pretok_simd_pieces(pat, s, i, n, ends, cap, st);
        if (m == 0) {
            *want = pretok_next(pat, s, i, n);
            *got = i;
            return (long)i;
        }
        for (size_t k = 0; k < m; k++) {
            size_t j = pretok_next(pat, s, i, n);
            if (ends[k] != j) {
                *want = j;
                *got = ends[k];
                return (long)i;
            }
            i = j;
        }
    }
    return -1;
}

/* Checks every pattern and a few batch sizes; the message names the text's label. */
static void check_same(const char *label, const uint8_t *s, size_t n)
{
    static const size_t caps[] = {1, 3, 256};

    for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++)
        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
            size_t want = 0, got = 0;
            long at = first_difference(patterns[p], s, n, caps[c], &want, &got, NULL);
            ck_assert_msg(at < 0,
                          "%s (%zu bytes), pattern %d, cap %zu: piece at offset %ld ends at %zu, "
                          "scalar at %zu",
                          label, n, (int)patterns[p], caps[c], at, got, want);
        }
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

START_TEST(empty_and_cap_zero)
{
    size_t ends[4];
    const uint8_t *s = (const uint8_t *)"hello world";

    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 0, 0, ends, 4, NULL), 0);
    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 11, 11, ends, 4, NULL), 0);
    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 0, 11, ends, 0, NULL), 0);
    /* the two pieces, "hello" and " world" */
    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 0, 11, ends, 4, NULL), 2);
    ck_assert_uint_eq(ends[0], 5);
    ck_assert_uint_eq(ends[1], 11);
}
END_TEST

/* Each ASCII byte alone, and runs of it of every length around the window's and SSE2's edges. */
START_TEST(lengths_around_block_edges)
{
    static const size_t lens[] = {1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 66,
                                  95, 96, 97, 127, 128, 129, 130, 200};
    static const char *const fills[] = {" ", "a", "7", "\n", "\r\n", ".", " a", "ab ", "  x",
                                        "123 ", "'s", "it's ", " \n ", "\t", "a1", "Ab!?"};
    uint8_t buf[256];

    for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++)
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            size_t fl = strlen(fills[f]);
            char label[64];
            for (size_t i = 0; i < lens[l]; i++)
                buf[i] = (uint8_t)fills[f][i % fl];
            snprintf(label, sizeof(label), "fill %zu, length %zu", f, lens[l]);
            check_same(label, buf, lens[l]);
        }
    for (int b = 0; b < 128; b++) {
        uint8_t one = (uint8_t)b;
        check_same("one byte", &one, 1);
    }
}
END_TEST

/* Contractions, and other pieces that may cross, at every offset across two windows. */
START_TEST(contractions_at_every_offset)
{
    static const char *const marks[] = {"'s",  "'S", "'ll", "'LL", "'re", "'ve", "'d", "'m",
                                        "'t",  "'x", "''", " 's", "\xc5\xbf", "'\xc5\xbf",
                                        "  \n", "123456", " \xc2\xa0x", "x\xcc\x81y", "\xc2\x85 "};
    uint8_t buf[200];

    for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
        for (size_t at = 0; at < 140; at++)
            for (int bg = 0; bg < 3; bg++) {
                static const char bgs[] = {'x', ' ', '9'};
                size_t ml = strlen(marks[m]), n = at + ml + 20;
                char label[64];
                memset(buf, bgs[bg], n);
                memcpy(buf + at, marks[m], ml);
                snprintf(label, sizeof(label), "mark %zu at %zu, background %c", m, at, bgs[bg]);
                check_same(label, buf, n);
            }
}
END_TEST

/* Random ASCII, weighted to the bytes the masks decide on; every ASCII byte occurs. */
START_TEST(random_ascii)
{
    static const char pool[] = "aaaaeeeettttnnnnAZz      \n\n\r\t0123456789'''.,!?-_()\"/\\";
    uint8_t buf[400];

    for (int t = 0; t < 20000; t++) {
        size_t n = next_rand() % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            uint32_t r = next_rand();
            buf[i] = r % 8 == 0 ? (uint8_t)(r >> 8) % 128 : (uint8_t)pool[(r >> 8) % (sizeof(pool) - 1)];
        }
        check_same("random ASCII", buf, n);
    }
}
END_TEST

/* Random UTF-8: ASCII mixed with letters, numbers, marks, spaces and punctuation beyond it. */
START_TEST(random_utf8)
{
    static const char *const chars[] = {
        "a", "Z", " ", " ", "\n", "'", "5", ".", "\t", "s", "l",
        "\xc3\xa9",         /* é */
        "\xc3\x89",         /* É */
        "\xc5\xbf",         /* ſ, an s under case folding */
        "\xc2\x85",         /* NEL, whitespace */
        "\xc2\xa0",         /* no-break space */
        "\xc2\xbd",         /* ½, a number */
        "\xcc\x81",         /* combining acute, a mark */
        "\xe2\x80\x9c",     /* left double quotation mark */
        "\xe2\x80\xa8",     /* line separator, whitespace */
        "\xe3\x80\x80",     /* ideographic space */
        "\xe4\xb8\xad",     /* 中 */
        "\xd9\xa3",         /* Arabic-Indic digit three */
        "\xf0\x9f\x98\x80", /* 😀 */
        "\xf0\x9d\x9f\x99", /* mathematical double-struck digit one */
    };
    uint8_t buf[600];

    for (int t = 0; t < 10000; t++) {
        size_t n = 0, want = next_rand() % 150;
        for (size_t c = 0; c < want; c++) {
            const char *ch = chars[next_rand() % (sizeof(chars) / sizeof(chars[0]))];
            size_t l = strlen(ch);
            memcpy(buf + n, ch, l);
            n += l;
        }
        ck_assert(utf8_valid((const char *)buf, n));
        check_same("random UTF-8", buf, n);
    }
}
END_TEST

/* Every file of the benchmark corpus, and how much of it the masks decided. */
START_TEST(corpus_files)
{
    const char *dir = getenv("TG_CORPUS");
    DIR *d;
    struct dirent *de;
    int files = 0;

    ck_assert_msg(dir != NULL, "TG_CORPUS is not set (tests/meson.build sets it)");
    d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open the corpus directory %s", dir);
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        FILE *f;
        long n;
        uint8_t *s;
        pretok_simd_stats st = {0};
        size_t want = 0, got = 0;
        long at;

        if (strlen(de->d_name) < 5 || strcmp(de->d_name + strlen(de->d_name) - 4, ".txt") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        s = malloc((size_t)n + 1);
        ck_assert(s != NULL && fread(s, 1, (size_t)n, f) == (size_t)n);
        fclose(f);
        ck_assert_msg(utf8_valid((const char *)s, (size_t)n), "%s is not UTF-8", path);
        for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
            at = first_difference(patterns[p], s, (size_t)n, 256, &want, &got,
                                  patterns[p] == PRETOK_CL100K ? &st : NULL);
            ck_assert_msg(at < 0, "%s, pattern %d: piece at offset %ld ends at %zu, scalar at %zu",
                          de->d_name, (int)patterns[p], at, got, want);
        }
        printf("%s: %ld bytes, cl100k decided by the masks %.1f%%, scalar: non-ASCII %.1f%%, "
               "apostrophe %.1f%%, edge %.1f%%, tail %.1f%%\n",
               de->d_name, n, 100.0 * (double)st.fast / (double)n,
               100.0 * (double)st.scalar[PRETOK_SIMD_NONASCII] / (double)n,
               100.0 * (double)st.scalar[PRETOK_SIMD_APOS] / (double)n,
               100.0 * (double)st.scalar[PRETOK_SIMD_EDGE] / (double)n,
               100.0 * (double)st.scalar[PRETOK_SIMD_TAIL] / (double)n);
        ck_assert_uint_eq(st.fast + st.scalar[PRETOK_SIMD_NONASCII] + st.scalar[PRETOK_SIMD_APOS] +
                              st.scalar[PRETOK_SIMD_EDGE] + st.scalar[PRETOK_SIMD_TAIL],
                          (uint64_t)n);
        free(s);
        files++;
    }
    closedir(d);
    ck_assert_msg(files >= 4, "only %d corpus files in %s", files, dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pretok_simd");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, empty_and_cap_zero);
    tcase_add_test(tc, lengths_around_block_edges);
    tcase_add_test(tc, contractions_at_every_offset);
    tcase_add_test(tc, random_ascii);
    tcase_add_test(tc, random_utf8);
    tcase_add_test(tc, corpus_files);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
