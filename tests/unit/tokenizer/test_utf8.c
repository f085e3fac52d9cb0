/*
 * Unit tests for tokenizer/utf8.h: client text made safe to write into JSON, and the validator's
 * two instances (utf8-int.h), which must agree on every input: the AVX2 one is compared with
 * the scalar one on every pair of bytes, on every long form's lead and representative tails,
 * each placed across the 32-byte blocks' edges and at the text's end, and on random text with
 * random bytes broken.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/utf8-int.h"
#include "tokenizer/utf8.h"
#include "run_suite.h"

START_TEST(valid_accepts_every_width)
{
    const char *s = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"; /* a é 中 😀 */
    ck_assert(utf8_valid(s, strlen(s)));
    ck_assert(utf8_valid("", 0));
}
END_TEST

START_TEST(valid_refuses_ill_formed)
{
    static const char *bad[] = {
        "\x80",             /* lone continuation byte */
        "\xc3",             /* cut two-byte sequence */
        "\xe4\xb8",         /* cut three-byte sequence */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xed\xa0\x80",     /* UTF-16 surrogate U+D800 */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xff",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!utf8_valid(bad[i], strlen(bad[i])), "case %zu accepted", i);
}
END_TEST

START_TEST(clean_replaces_each_bad_byte)
{
    char out[64];

    utf8_clean("model '\xe4\xb8' x", out, sizeof(out));
    /* a cut sequence is one maximal subpart: one replacement character (as Python decodes it) */
    ck_assert_str_eq(out, "model '\xef\xbf\xbd' x");
    ck_assert(utf8_valid(out, strlen(out)));
    /* a stray continuation byte and an overlong lead are replaced byte by byte */
    utf8_clean("\x80\xc0\xaf!", out, sizeof(out));
    ck_assert_str_eq(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!");
    /* a surrogate's lead ED with A0 is not a subpart: ED alone, then A0, then 80 */
    utf8_clean("\xed\xa0\x80", out, sizeof(out));
    ck_assert_str_eq(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}
END_TEST

START_TEST(clean_keeps_valid_text)
{
    char out[64];
    const char *s = "caf\xc3\xa9 \xf0\x9f\x98\x80";

    ck_assert_str_eq(utf8_clean(s, out, sizeof(out)), s);
}
END_TEST

START_TEST(clean_cuts_at_a_character_boundary)
{
    char out[6];

    /* "ab" fits, then the 4-byte emoji does not fit in the 3 bytes left with the NUL */
    utf8_clean("ab\xf0\x9f\x98\x80", out, sizeof(out));
    ck_assert_str_eq(out, "ab");
    utf8_clean("abcdefgh", out, sizeof(out));
    ck_assert_str_eq(out, "abcde");
    ck_assert(utf8_valid(out, strlen(out)));
}
END_TEST

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

static long agreed_valid, agreed_bad;

/* Both instances on the n bytes at buf (and utf8_valid, which picks one), the same answer. */
static void agree(const char *buf, size_t n, const char *what)
{
    int want = utf8_valid_scalar(buf, n);

    if (cpu_has_avx2() && utf8_valid_avx2(buf, n) != want) {
        char hex[3 * 16 + 1] = "";
        for (size_t i = 0; i < n && i < 16; i++)
            snprintf(hex + 3 * i, 4, "%02x ", (unsigned char)buf[n > 16 ? n - 16 + i : i]);
        ck_abort_msg("%s: %zu bytes ending \"%s\": scalar says %d, avx2 says %d", what, n, hex, want,
                     !want);
    }
    /* no ck_assert here: each one Check records costs a system call, and this runs millions of
     * times */
    if (utf8_valid(buf, n) != want)
        ck_abort_msg("%s: %zu bytes: utf8_valid disagrees with the scalar loop", what, n);
    if (want)
        agreed_valid++;
    else
        agreed_bad++;
}

/* seq (k bytes) after off bytes of ASCII, at the end of the text and then with ASCII after. */
static void agree_at(const unsigned char *seq, size_t k, size_t off, const char *what)
{
    char buf[160];

    memset(buf, 'x', sizeof(buf));
    memcpy(buf + off, seq, k);
    agree(buf, off + k, what);
    agree(buf, off + k + 3, what);
    agree(buf, off + k + 40, what);
}

START_TEST(avx2_agrees_on_every_pair)
{
    static const size_t offs[] = {0, 30, 31, 63, 64, 95};

    if (!cpu_has_avx2())
        printf("test_utf8: no AVX2 on this CPU: utf8_valid checked against the scalar loop only\n");
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
                unsigned char seq[2] = {(unsigned char)a, (unsigned char)b};
                agree_at(seq, 2, offs[o], "pair");
            }
}
END_TEST

START_TEST(avx2_agrees_on_long_forms)
{
    /* each class of second, third and fourth byte the rules tell apart */
    static const unsigned char reps[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                         0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xf0, 0xf4, 0xff};
    static const size_t offs[] = {0, 29, 30, 31, 61, 62};
    size_t nr = sizeof(reps);

    agreed_valid = agreed_bad = 0;
    for (unsigned lead = 0xc0; lead < 256; lead++)
        for (size_t x = 0; x < nr; x++)
            for (size_t y = 0; y < nr; y++)
                for (size_t z = 0; z < nr; z++)
                    for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
                        unsigned char seq[4] = {(unsigned char)lead, reps[x], reps[y], reps[z]};
                        agree_at(seq, 4, offs[o], "long form");
                        agree_at(seq, 3, offs[o], "long form, cut");
                    }
    /* both answers were met many times, so agreeing was not agreeing on one answer */
    ck_assert_int_gt(agreed_valid, 10000);
    ck_assert_int_gt(agreed_bad, 10000);
}
END_TEST

START_TEST(avx2_agrees_on_broken_text)
{
    static const char *const chars[] = {"a", " ", "\n", "\xc3\xa9", "\xd0\x96", "\xe4\xb8\xad",
                                        "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd",
                                        "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    unsigned seed = 7;
    char buf[400];

    for (int t = 0; t < 60000; t++) {
        size_t n = 0, want = (size_t)rand_r(&seed) % 120;
        for (size_t c = 0; c < want; c++) {
            const char *ch = chars[rand_r(&seed) % (sizeof(chars) / sizeof(chars[0]))];
            memcpy(buf + n, ch, strlen(ch));
            n += strlen(ch);
        }
        if (!utf8_valid_scalar(buf, n))
            ck_abort_msg("random text #%d: well-formed, but refused", t);
        agree(buf, n, "random text");
        for (int k = rand_r(&seed) % 3; k >= 0 && n > 0; k--)
            buf[(size_t)rand_r(&seed) % n] = (char)(rand_r(&seed) & 0xff);
        agree(buf, n, "random text, broken");
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("utf8");

    tcase_add_test(tc, valid_accepts_every_width);
    tcase_add_test(tc, valid_refuses_ill_formed);
    tcase_add_test(tc, clean_replaces_each_bad_byte);
    tcase_add_test(tc, clean_keeps_valid_text);
    tcase_add_test(tc, clean_cuts_at_a_character_boundary);
    tcase_add_test(tc, avx2_agrees_on_every_pair);
    tcase_add_test(tc, avx2_agrees_on_long_forms);
    tcase_add_test(tc, avx2_agrees_on_broken_text);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
