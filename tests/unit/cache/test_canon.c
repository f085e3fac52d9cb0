/*
 * Unit tests for cache/canon: equal JSON values give equal canonical text whatever their key
 * order, white space, number spelling or string escaping; different values give different
 * text; the skip list; the depth cap; the buffer cap; the hash.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/canon.h"
#include "run_suite.h"

/* The canonical text of json (parsed by cJSON) into one of 4 static buffers used in turn (so
 * that an assertion can compare two), "<FAIL>" on failure. */
static const char *canon_of(const char *json, const char *const *skip, size_t max)
{
    static char outs[4][8192];
    static int turn;
    char *out = outs[turn++ % 4];
    struct canon_buf b = {.max = max};
    cJSON *v = cJSON_Parse(json);
    int rc;

    ck_assert_msg(v != NULL, "bad test JSON: %s", json);
    rc = canon_append(&b, v, skip);
    cJSON_Delete(v);
    if (rc < 0)
        snprintf(out, sizeof(outs[0]), "<FAIL>");
    else
        snprintf(out, sizeof(outs[0]), "%.*s", (int)b.len, b.data ? b.data : "");
    canon_buf_free(&b);
    return out;
}

#define C(j) canon_of((j), NULL, 1 << 20)

START_TEST(key_order_and_space)
{
    char a[512];

    snprintf(a, sizeof(a), "%s", C("{\"b\":1,\"a\":{\"y\":[1,2],\"x\":null}}"));
    ck_assert_str_eq(a, "{\"a\":{\"x\":null,\"y\":[1,2]},\"b\":1}");
    ck_assert_str_eq(C("  {\n \"a\" : { \"x\" :null , \"y\":[ 1 ,2 ]} ,\t\"b\": 1 }"), a);
    /* arrays keep their order */
    ck_assert_str_ne(C("[2,1]"), C("[1,2]"));
    /* keys sort bytewise: upper case before lower, "a" before "ab", UTF-8 after ASCII */
    ck_assert_str_eq(C("{\"ab\":1,\"é\":2,\"a\":3,\"B\":4}"),
                     "{\"B\":4,\"a\":3,\"ab\":1,\"é\":2}");
    ck_assert_str_eq(C("{}"), "{}");
    ck_assert_str_eq(C("[]"), "[]");
}
END_TEST

START_TEST(numbers_one_spelling)
{
    ck_assert_str_eq(C("[1, 1.0, 1e0, 10E-1, 0.1e1]"), "[1,1,1,1,1]");
    ck_assert_str_eq(C("[0, -0, 0.0, 0e5]"), "[0,0,0,0]");
    ck_assert_str_eq(C("[0.5, 5e-1, 50e-2]"), "[0.5,0.5,0.5]");
    ck_assert_str_eq(C("[-3, -3.00]"), "[-3,-3]");
    ck_assert_str_eq(C("[1e20]"), "[1e+20]");
    ck_assert_str_eq(C("[0.1]"), "[0.1]");
    ck_assert_str_eq(C("[9007199254740991]"), "[9007199254740991]");
    /* distinct numbers stay distinct */
    ck_assert_str_ne(C("[0.1]"), C("[0.10000000000000002]"));
    ck_assert_str_ne(C("[1]"), C("[\"1\"]"));
    ck_assert_str_ne(C("[0]"), C("[false]"));
    ck_assert_str_ne(C("[null]"), C("[0]"));
}
END_TEST

START_TEST(strings_one_escaping)
{
    ck_assert_str_eq(C("[\"\\u00e9\"]"), C("[\"é\"]"));
    ck_assert_str_eq(C("[\"\\/\"]"), "[\"/\"]");
    ck_assert_str_eq(C("[\"a\\u0022b\"]"), "[\"a\\\"b\"]");
    ck_assert_str_eq(C("[\"\\u000a\\t\\u0001\\\\\"]"), "[\"\\n\\t\\u0001\\\\\"]");
    ck_assert_str_eq(C("{\"\\u0061\":1}"), "{\"a\":1}");
    ck_assert_str_ne(C("[\"a\"]"), C("[\"a \"]"));
    /* the text is JSON itself: it parses back to an equal value */
    {
        const char *t = C("{\"k\":[\"x\\\"y\\n\",{\"z\":1.5}],\"a\":true}");
        cJSON *v = cJSON_Parse(t);

        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "k"), 0)->valuestring,
                         "x\"y\n");
        cJSON_Delete(v);
    }
}
END_TEST

START_TEST(skip_top_level_only)
{
    static const char *const skip[] = {"stream", "stream_options", NULL};

    ck_assert_str_eq(canon_of("{\"stream\":true,\"m\":1,\"stream_options\":{},\"x\":{\"stream\":1}}",
                              skip, 1 << 20),
                     "{\"m\":1,\"x\":{\"stream\":1}}");
    ck_assert_str_eq(canon_of("{\"m\":1,\"stream\":false}", skip, 1 << 20),
                     canon_of("{\"m\":1}", skip, 1 << 20));
    /* a skip list on a non-object is nothing */
    ck_assert_str_eq(canon_of("[1]", skip, 1 << 20), "[1]");
}
END_TEST

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 6 + 8);
    size_t n = 0;

    for (int i = 0; i < depth; i++) {
        if (open == '{') {
            memcpy(s + n, "{\"a\":", 5);
            n += 5;
        } else
            s[n++] = open;
    }
    s[n++] = '1';
    for (int i = 0; i < depth; i++)
        s[n++] = close;
    s[n] = '\0';
    return s;
}

START_TEST(depth_cap)
{
    char *ok = nested(64, '[', ']'), *bad = nested(65, '[', ']');
    char *oko = nested(64, '{', '}'), *bado = nested(65, '{', '}');

    ck_assert_str_ne(C(ok), "<FAIL>");
    ck_assert_str_eq(C(bad), "<FAIL>");
    ck_assert_str_ne(C(oko), "<FAIL>");
    ck_assert_str_eq(C(bado), "<FAIL>");
    free(ok);
    free(bad);
    free(oko);
    free(bado);
}
END_TEST

START_TEST(buffer_cap)
{
    const char *j = "{\"b\":\"0123456789\",\"a\":[1,2,3]}";
    size_t need = strlen(C(j));

    ck_assert_str_ne(canon_of(j, NULL, need), "<FAIL>");
    ck_assert_str_eq(canon_of(j, NULL, need - 1), "<FAIL>");
    ck_assert_str_eq(canon_of(j, NULL, 0), "<FAIL>");

    /* canon_raw honours the cap too, and appends */
    struct canon_buf b = {.max = 8};

    ck_assert_int_eq(canon_raw(&b, "resp\0", 5), 0);
    ck_assert_int_eq(canon_raw(&b, "abc", 3), 0);
    ck_assert_int_eq(canon_raw(&b, "x", 1), -1);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_int_eq(memcmp(b.data, "resp\0abc", 8), 0);
    canon_buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(large_object_sorted)
{
    /* more members than the sort's stack array */
    char json[4096], want[4096];
    size_t n = 0, w = 0;

    n += (size_t)snprintf(json + n, sizeof(json) - n, "{");
    w += (size_t)snprintf(want + w, sizeof(want) - w, "{");
    for (int i = 99; i >= 0; i--)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"k%02d\":%d", i == 99 ? "" : ",", i, i);
    for (int i = 0; i < 100; i++)
        w += (size_t)snprintf(want + w, sizeof(want) - w, "%s\"k%02d\":%d", i ? "," : "", i, i);
    snprintf(json + n, sizeof(json) - n, "}");
    snprintf(want + w, sizeof(want) - w, "}");
    ck_assert_str_eq(C(json), want);
}
END_TEST

START_TEST(hash)
{
    uint8_t a[16], b[16], c[16];

    canon_hash("abc", 3, a);
    canon_hash("abc", 3, b);
    canon_hash("abd", 3, c);
    ck_assert_int_eq(memcmp(a, b, 16), 0);
    ck_assert_int_ne(memcmp(a, c, 16), 0);
    /* not the stub's zeroes */
    int nz = 0;
    for (int i = 0; i < 16; i++)
        nz |= a[i];
    ck_assert_int_ne(nz, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("canon");
    TCase *t = tcase_create("canon");

    tcase_add_test(t, key_order_and_space);
    tcase_add_test(t, numbers_one_spelling);
    tcase_add_test(t, strings_one_escaping);
    tcase_add_test(t, skip_top_level_only);
    tcase_add_test(t, depth_cap);
    tcase_add_test(t, buffer_cap);
    tcase_add_test(t, large_object_sorted);
    tcase_add_test(t, hash);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
