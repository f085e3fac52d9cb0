/* Unit tests for gate/util/jsonedit.h: byte-preserving edits and duplicate-key detection. */
#include <check.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gate/util/jsonedit.h"
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

static const char *dup_of(const char *text)
{
    static char name[64];
    const char *dup = NULL;
    cJSON *j = cJSON_Parse(text);

    ck_assert_ptr_nonnull(j);
    ck_assert_int_ge(jsonedit_duplicate_key(j, &dup), 0);
    if (dup != NULL)
        snprintf(name, sizeof(name), "%s", dup);
    cJSON_Delete(j);
    return dup != NULL ? name : NULL;
}

START_TEST(duplicates_found_at_any_depth)
{
    ck_assert_str_eq(dup_of("{\"a\":1,\"b\":{\"c\":[{\"d\":1,\"e\":2,\"d\":3}]}}"), "d");
    ck_assert_str_eq(dup_of("{\"model\":\"x\",\"model\":\"y\"}"), "model");
    /* the same key in sibling objects, or an array of equal values, is no duplicate */
    ck_assert_ptr_null(
        dup_of("{\"m\":[{\"role\":\"user\"},{\"role\":\"assistant\"}],\"x\":[1,1]}"));
    /* keys equal once their escapes are read are the same key */
    ck_assert_str_eq(dup_of("{\"model\":\"x\",\"\\u006dodel\":\"y\"}"), "model");
    ck_assert_str_eq(dup_of("[{\"k\":{\"a\\\"b\":1,\"a\\u0022b\":2}}]"), "a\"b");
    ck_assert_ptr_null(dup_of("{\"a\\\"b\":1,\"a\\\\b\":2}"));
}
END_TEST

/* An object of n members "k0".."k<n-1>" (plus the extra text before the closing brace). */
static char *wide_object(int n, const char *extra)
{
    size_t cap = (size_t)n * 16 + strlen(extra) + 64, o = 0;
    char *s = malloc(cap);

    ck_assert_ptr_nonnull(s);
    o += (size_t)snprintf(s + o, cap - o, "{\"model\":\"m\"");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, ",\"k%d\":%d", i, i);
    snprintf(s + o, cap - o, "%s}", extra);
    return s;
}

START_TEST(duplicates_in_wide_objects)
{
    /* past the pairwise size: the hash set finds the pair wherever it is */
    for (int n = 9; n <= 2000; n = n * 3 + 1) {
        char *s = wide_object(n, ",\"k0\":0");
        ck_assert_str_eq(dup_of(s), "k0");
        free(s);
        s = wide_object(n, ",\"model\":0");
        ck_assert_str_eq(dup_of(s), "model");
        free(s);
        s = wide_object(n, "");
        ck_assert_ptr_null(dup_of(s));
        free(s);
    }
}
END_TEST

START_TEST(depth_of_a_tree)
{
    const char *cases[][2] = {{"1", "1"},
                              {"{}", "1"},
                              {"[[]]", "2"},
                              {"{\"a\":[1,{\"b\":[]}]}", "4"},
                              {"[1,[2,[3,[4]]],5]", "5"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *j = cJSON_Parse(cases[i][0]);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(jsonedit_depth(j), atoi(cases[i][1]));
        cJSON_Delete(j);
    }
    ck_assert_int_eq(jsonedit_depth(NULL), 0);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(linear_on_150000_keys)
{
    /* the pairwise check took 50 s on such a body, and jsmn without parent links seconds more;
     * 2 s is a bound a loaded 2-core machine keeps with a wide margin */
    char *s = wide_object(150000, "");
    size_t len = strlen(s), out_len = 0;
    struct jsonedit_op op = {"max_tokens", "10"};
    const char *dup = NULL;
    double t0 = now_s();
    cJSON *j = cJSON_Parse(s);

    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(jsonedit_duplicate_key(j, &dup), 0);
    ck_assert_ptr_null(dup);
    char *out = jsonedit_apply(s, len, &op, 1, &out_len);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out_len, len + strlen(",\"max_tokens\":10"));
    ck_assert(memcmp(out + len - 1, ",\"max_tokens\":10}", out_len - len + 1) == 0);
    double took = now_s() - t0;
    ck_assert_msg(took < 2.0, "150,000 keys took %.2f s", took);
    free(out);
    cJSON_Delete(j);
    free(s);
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
    tcase_add_test(tc, duplicates_in_wide_objects);
    tcase_add_test(tc, linear_on_150000_keys);
    tcase_add_test(tc, depth_of_a_tree);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
