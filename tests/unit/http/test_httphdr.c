/* Unit tests for gate/http/httphdr.h: a head handed over in pieces. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/util/arena.h"
#include "gate/http/httphdr.h"
#include "run_suite.h"

START_TEST(pieces_join_and_names_are_lower_cased)
{
    struct arena *a = arena_new();
    struct hdr_reader r = {0};

    hdr_start(&r);
    ck_assert_int_eq(hdr_piece(&r, "Conten", 6, 1000), HDR_OK);
    ck_assert_int_eq(hdr_piece(&r, "t-Type", 6, 1000), HDR_OK);
    ck_assert_int_eq(hdr_name_done(&r, a, 10), HDR_OK);
    ck_assert_int_eq(hdr_piece(&r, "application/", 12, 1000), HDR_OK);
    ck_assert_int_eq(hdr_piece(&r, "json \t", 6, 1000), HDR_OK);
    ck_assert_int_eq(hdr_value_done(&r, a), HDR_OK);
    ck_assert_int_eq(r.n, 1);
    ck_assert_str_eq(r.list[0].name, "content-type");
    ck_assert_str_eq(r.list[0].value, "application/json"); /* trailing white space goes */
    ck_assert_uint_eq(r.list[0].value_len, 16);
    hdr_free(&r);
    arena_free(a);
}
END_TEST

START_TEST(many_headers_stay_in_order)
{
    struct arena *a = arena_new();
    struct hdr_reader r = {0};
    char name[16], value[16];

    hdr_start(&r);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof(name), "X-H%d", i);
        hdr_piece(&r, name, (size_t)n, 1 << 20);
        ck_assert_int_eq(hdr_name_done(&r, a, 100), HDR_OK);
        n = snprintf(value, sizeof(value), "v%d", i);
        hdr_piece(&r, value, (size_t)n, 1 << 20);
        ck_assert_int_eq(hdr_value_done(&r, a), HDR_OK);
    }
    ck_assert_int_eq(r.n, 100);
    ck_assert_str_eq(r.list[0].name, "x-h0");
    ck_assert_str_eq(r.list[99].value, "v99");
    /* the 101st name is one too many */
    hdr_piece(&r, "x", 1, 1 << 20);
    ck_assert_int_eq(hdr_name_done(&r, a, 100), HDR_TOO_MANY);
    hdr_free(&r);
    arena_free(a);
}
END_TEST

START_TEST(the_byte_cap_counts_the_whole_head)
{
    struct hdr_reader r = {0};

    hdr_start(&r);
    ck_assert_int_eq(hdr_piece(&r, "0123456789", 10, 15), HDR_OK);
    hdr_piece_reset(&r);
    ck_assert_int_eq(hdr_piece(&r, "012345", 6, 15), HDR_TOO_LARGE);
    /* a new head starts counting again */
    hdr_start(&r);
    ck_assert_int_eq(hdr_piece(&r, "0123456789", 10, 15), HDR_OK);
    hdr_free(&r);
}
END_TEST

START_TEST(an_empty_value_is_kept)
{
    struct arena *a = arena_new();
    struct hdr_reader r = {0};

    hdr_start(&r);
    hdr_piece(&r, "X-Empty", 7, 100);
    hdr_name_done(&r, a, 10);
    ck_assert_int_eq(hdr_value_done(&r, a), HDR_OK);
    ck_assert_str_eq(r.list[0].value, "");
    ck_assert_uint_eq(r.list[0].value_len, 0);
    hdr_free(&r);
    arena_free(a);
}
END_TEST

START_TEST(names_are_tokens)
{
    static const char *const good[] = {"content-type", "X-Custom_1", "a!#$%&'*+-.^_`|~z", "0"};
    static const char *const bad[] = {"content length", "x\ty", "x:y", "x\"y",
                                      "x(y)",           "x/y",  "x@y", "x\x7fy",
                                      "x\xc3\xa9",      "x{",   ""};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(hdr_name_ok(good[i], strlen(good[i])), "%s is a token", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!hdr_name_ok(bad[i], strlen(bad[i])), "%s is no token", bad[i]);
    /* a NUL inside the name */
    ck_assert(!hdr_name_ok("a\0b", 3));
}
END_TEST

START_TEST(targets_are_visible_ascii_without_a_fragment)
{
    static const char *const good[] = {"/v1/chat/completions", "/v1/x?a=%C3%A9&b=%09",
                                       "/?q=!$'()*,;=:@/?", ""};
    static const char *const bad[] = {"/v1/x?a=1#f",      "/v1/x#f",      "/v1/x?a=1\tb",
                                      "/v1/x?a b",        "/v1/x?a=\x01", "/v1/x?a=\x7f",
                                      "/v1/x?a=\xc3\xa9", "/\r\n"};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(hdr_target_ok(good[i], strlen(good[i])), "%s passes", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!hdr_target_ok(bad[i], strlen(bad[i])), "%s is refused", bad[i]);
    ck_assert(!hdr_target_ok("/a\0b", 4));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("httphdr");
    TCase *tc = tcase_create("httphdr");

    tcase_add_test(tc, pieces_join_and_names_are_lower_cased);
    tcase_add_test(tc, many_headers_stay_in_order);
    tcase_add_test(tc, the_byte_cap_counts_the_whole_head);
    tcase_add_test(tc, an_empty_value_is_kept);
    tcase_add_test(tc, names_are_tokens);
    tcase_add_test(tc, targets_are_visible_ascii_without_a_fragment);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
