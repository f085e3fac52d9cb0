/* Unit tests for gate/jsonedit.h: byte-preserving edits and duplicate-key detection. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gate/jsonedit.h"
#include "run_suite.h"

static char *apply1(const char *body, const char *key, const char *value)
{
    struct jsonedit_op op = {key, value};
    size_t n = 0;
    char *out = jsonedit_apply(body, strlen(body), &op, 1, &n);
    if (out != NULL)
        ck_assert_uint_eq(n, strlen(out));
    return out;
}

START_TEST(replace_keeps_every_other_byte)
{
    const char *body = "{ \"model\" : \"a\",\n \"seed\": 12345678901234567890, \"t\": 0.70 }";
    char *out = apply1(body, "model", "\"gpt-4o-mini\"");

    ck_assert_str_eq(
        out, "{ \"model\" : \"gpt-4o-mini\",\n \"seed\": 12345678901234567890, \"t\": 0.70 }");
    free(out);
}
END_TEST

START_TEST(replace_an_object_value)
{
    char *out = apply1("{\"stream_options\":{\"include_usage\":false,\"x\":[1,{\"y\":2}]},\"m\":1}",
                       "stream_options", "{\"include_usage\":true}");

    ck_assert_str_eq(out, "{\"stream_options\":{\"include_usage\":true},\"m\":1}");
    free(out);
}
END_TEST

START_TEST(append_when_absent)
{
    char *out =
        apply1("{\"model\":\"a\",\"stream\":true}  ", "stream_options", "{\"include_usage\":true}");

    ck_assert_str_eq(
        out, "{\"model\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}  ");
    free(out);
    out = apply1("{}", "k", "1");
    ck_assert_str_eq(out, "{\"k\":1}");
    free(out);
}
END_TEST

START_TEST(nested_key_of_the_same_name_is_not_top_level)
{
    /* "model" inside messages must not be taken for the top-level member */
    char *out =
        apply1("{\"messages\":[{\"model\":\"inner\"}],\"model\":\"outer\"}", "model", "\"x\"");

    ck_assert_str_eq(out, "{\"messages\":[{\"model\":\"inner\"}],\"model\":\"x\"}");
    free(out);
}
END_TEST

START_TEST(two_edits_in_one_pass)
{
    struct jsonedit_op ops[2] = {{"stream_options", "{\"include_usage\":true}"},
                                 {"model", "\"b\""}};
    size_t n;
    const char *body = "{\"model\":\"a\",\"messages\":[]}";
    char *out = jsonedit_apply(body, strlen(body), ops, 2, &n);

    ck_assert_str_eq(
        out, "{\"model\":\"b\",\"messages\":[],\"stream_options\":{\"include_usage\":true}}");
    free(out);
}
END_TEST

START_TEST(refuses_what_it_cannot_edit_safely)
{
    ck_assert_ptr_null(apply1("[1,2]", "k", "1"));               /* not an object */
    ck_assert_ptr_null(apply1("{\"k\":1,\"k\":2}", "k", "3"));   /* twice */
    ck_assert_ptr_null(apply1("{\"\\u006bey\":1}", "key", "3")); /* escaped key */
    ck_assert_ptr_null(apply1("{\"k\":", "k", "3"));             /* cut short */
}
END_TEST

START_TEST(duplicates_found_at_any_depth)
{
    cJSON *j = cJSON_Parse("{\"a\":1,\"b\":{\"c\":[{\"d\":1,\"e\":2,\"d\":3}]}}");
    ck_assert_str_eq(jsonedit_duplicate_key(j), "d");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"model\":\"x\",\"model\":\"y\"}");
    ck_assert_str_eq(jsonedit_duplicate_key(j), "model");
    cJSON_Delete(j);
    /* the same key in sibling objects, or an array of equal values, is no duplicate */
    j = cJSON_Parse("{\"m\":[{\"role\":\"user\"},{\"role\":\"assistant\"}],\"x\":[1,1]}");
    ck_assert_ptr_null(jsonedit_duplicate_key(j));
    cJSON_Delete(j);
}
END_TEST

START_TEST(a_nul_in_a_string_is_found)
{
    static const char *const nul[] = {
        "{\"model\":\"gpt-4o-mini\\u0000x\"}",
        "{\"a\":[\"x\", \"\\u0000\"]}",
        "{\"\\u0000\":1}",
        "{\"a\":\"\\u00001\"}",
    };
    static const char *const none[] = {
        "{\"a\":\"\\\\u0000\"}", /* an escaped backslash, then the letters u0000 */
        "{\"a\":\"\\u0001 u0000\"}",
        "{\"a\":\"\\\\\"}",
    };

    for (size_t i = 0; i < sizeof(nul) / sizeof(nul[0]); i++)
        ck_assert_msg(jsonedit_has_nul(nul[i], strlen(nul[i])), "%s has a NUL", nul[i]);
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        ck_assert_msg(!jsonedit_has_nul(none[i], strlen(none[i])), "%s has none", none[i]);
    /* a raw NUL byte: cJSON cuts a string at it, or skips it as white space */
    ck_assert(jsonedit_has_nul("{\"a\":\"x\0y\"}", 11));
    ck_assert(jsonedit_has_nul("{\"a\":1}\0", 8));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsonedit");
    TCase *tc = tcase_create("jsonedit");

    tcase_add_test(tc, replace_keeps_every_other_byte);
    tcase_add_test(tc, replace_an_object_value);
    tcase_add_test(tc, append_when_absent);
    tcase_add_test(tc, nested_key_of_the_same_name_is_not_top_level);
    tcase_add_test(tc, two_edits_in_one_pass);
    tcase_add_test(tc, refuses_what_it_cannot_edit_safely);
    tcase_add_test(tc, duplicates_found_at_any_depth);
    tcase_add_test(tc, a_nul_in_a_string_is_found);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
