/* Unit tests for gate/utf8.h: client text made safe to write into JSON. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("utf8");

    tcase_add_test(tc, valid_accepts_every_width);
    tcase_add_test(tc, valid_refuses_ill_formed);
    tcase_add_test(tc, clean_replaces_each_bad_byte);
    tcase_add_test(tc, clean_keeps_valid_text);
    tcase_add_test(tc, clean_cuts_at_a_character_boundary);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
