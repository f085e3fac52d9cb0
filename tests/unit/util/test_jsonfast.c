/*
 * Unit tests for gate/util/jsonfast.h: the gate's JSON parse gives cJSON's tree, error position
 * and end on every kind of text, reads with simdjson what simdjson can take, and hands the rest
 * to cJSON.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/util/jsonfast.h"
#include "run_suite.h"
#include "tests/fuzz/fuzz_json.h"

/*
 * Parses the len bytes at s both ways; fails the test unless both read them into the same tree
 * with the same end, or both refuse them at the same place. Returns whether they were read, and
 * in *fell whether jsonfast handed them to cJSON.
 */
static int both(const char *s, size_t len, int *fell)
{
    const char *end_fast = NULL, *end_cjson = NULL, *err_fast;
    unsigned long before = jsonfast_fallbacks();
    cJSON *fast = jsonfast_parse(s, len, &end_fast);
    cJSON *slow;

    err_fast = fast == NULL ? cJSON_GetErrorPtr() : NULL;
    *fell = jsonfast_fallbacks() != before;
    slow = jsonfast_parse_cjson(s, len, &end_cjson);
    ck_assert_msg((fast == NULL) == (slow == NULL), "read by only one parser: %.80s", s);
    if (fast == NULL) {
        ck_assert_msg(err_fast == cJSON_GetErrorPtr(), "refused at another place: %.80s", s);
    } else {
        ck_assert_msg(same_parse(fast, slow), "another tree: %.80s", s);
        ck_assert_msg(end_fast == end_cjson, "another end (%td, %td): %.80s", end_fast - s,
                      end_cjson - s, s);
    }
    cJSON_Delete(fast);
    cJSON_Delete(slow);
    ck_assert_int_eq(json_count()->live, 0);
    return fast != NULL;
}

static int both_str(const char *s, int *fell)
{
    return both(s, strlen(s), fell);
}

START_TEST(valid_json_is_read_by_simdjson_into_cjsons_tree)
{
    static const char *const docs[] = {
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"max_tokens\":512,\"temperature\":0.7,\"stream\":true,\"stop\":null,\"n\":false}",
        "[]",
        "{}",
        "[[],{},[[]],{\"a\":{}}]",
        "  \t\r\n[1, 2 ,3]\n  ",
        "\"a string alone\"",
        "42",
        "true",
        "null",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"caf\xc3\xa9 \xe4\xb8\xad\"]",
        "[\"a\\u0000b\"]", /* cJSON's string ends at the NUL too */
        "{\"a\":1,\"a\":2,\"\":3}",
        "[0,1,-1,2147483647,2147483648,-2147483648,-2147483649,9007199254740993,"
        "-9223372036854775808,18446744073709551615,12345678901234567890]",
        "[0.5,-0.0,1e-400,4.9e-324,1.7976931348623157e308,1E+2,1e2,0.1e-2,123.456e7]",
        "[-0]", /* 0 here, -0.0 in cJSON: same_parse takes them as equal, as == does */
        "{\"k\":[true,false,null,{\"x\":[1.5,\"y\"]}]}",
    };
    int fell;

    json_count_hooks();
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        ck_assert_msg(both_str(docs[i], &fell), "not read: %s", docs[i]);
        ck_assert_msg(!fell, "handed to cJSON: %s", docs[i]);
    }
}
END_TEST

START_TEST(what_simdjson_refuses_is_read_by_cjson)
{
    /* all of them valid for cJSON, which is laxer than JSON */
    static const char *const docs[] = {
        "\xef\xbb\xbf{\"a\":1}",     /* a byte-order mark */
        "[\"tab\tand\x01 raw\"]",    /* control characters in a string */
        "[\"\xff\xfe latin-1 \xe9\"]", /* ill-formed UTF-8 */
        "[01]",                       /* a leading zero */
        "[1e400]",                    /* past double's range: infinity */
        "\v[1]\f",                    /* any byte up to a space is whitespace to cJSON */
        "[1] trailing",               /* a value, then text (the caller checks the end) */
        "{\"a\":1}{\"b\":2}",
        "[1.]",
    };
    int fell;

    json_count_hooks();
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        ck_assert_msg(both_str(docs[i], &fell), "not read: %s", docs[i]);
        ck_assert_msg(fell, "not handed to cJSON: %s", docs[i]);
    }
}
END_TEST

START_TEST(invalid_json_is_refused_where_cjson_refuses_it)
{
    static const char *const docs[] = {
        "",      " ",           "{",          "[1,]",         "{\"a\":}",    "{\"a\" 1}",
        "\"abc", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]", "[\"\\x\"]", "[nul]",
        "{1:2}", "[1 2]",        "]",          "-",            "[\"\\u12\"]", "+1",
    };
    int fell;

    json_count_hooks();
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        ck_assert_msg(!both_str(docs[i], &fell), "read: %s", docs[i]);
}
END_TEST

/* n arrays or objects nested, one inside the next (the innermost object holds a 1). */
static char *nested(int n, int objects)
{
    char *s = malloc((size_t)n * 6 + 2), *p = s;

    for (int i = 0; i < n; i++)
        p += sprintf(p, objects ? "{\"a\":" : "[");
    if (objects)
        *p++ = '1';
    for (int i = 0; i < n; i++)
        *p++ = objects ? '}' : ']';
    *p = '\0';
    return s;
}

START_TEST(nesting_is_bounded_as_in_cjson)
{
    int fell;

    json_count_hooks();
    for (int objects = 0; objects < 2; objects++) {
        char *ok = nested(CJSON_NESTING_LIMIT, objects);
        char *deep = nested(CJSON_NESTING_LIMIT + 1, objects);
        char *deeper = nested(2000, objects);
        ck_assert(both_str(ok, &fell));
        ck_assert(!fell);
        ck_assert(!both_str(deep, &fell)); /* simdjson takes it: handed to cJSON, refused */
        ck_assert(fell);
        ck_assert(!both_str(deeper, &fell));
        free(ok);
        free(deep);
        free(deeper);
    }
}
END_TEST

START_TEST(numbers_cjson_reads_in_part_go_to_cjson)
{
    /* cJSON 1.7.15 reads at most 63 characters of a number (Debian's security updates lift
     * that), simdjson all of them: a longer one goes to cJSON, whichever it is */
    char doc[256], top[256];
    int fell;

    json_count_hooks();
    snprintf(doc, sizeof(doc), "[0.%0120d1]", 0);
    (void)both_str(doc, &fell);
    ck_assert(fell);
    snprintf(top, sizeof(top), "1.%070d5", 0);
    ck_assert(both_str(top, &fell));
    ck_assert(fell);
    /* 63 characters: the same for both, and simdjson's */
    snprintf(doc, sizeof(doc), "[0.%060d1]", 0);
    ck_assert(both_str(doc, &fell));
    ck_assert(!fell);
    /* a long run of such bytes in a string only costs a parse by cJSON */
    snprintf(doc, sizeof(doc), "[\"%0100d\"]", 7);
    ck_assert(both_str(doc, &fell));
}
END_TEST

START_TEST(texts_past_the_cap_go_to_cjson)
{
    size_t n = JSONFAST_MAX + 100;
    char *doc = malloc(n + 1);
    int fell;

    json_count_hooks();
    memset(doc, 'x', n);
    doc[0] = '[';
    doc[1] = '"';
    doc[n - 2] = '"';
    doc[n - 1] = ']';
    doc[n] = '\0';
    ck_assert(both(doc, n, &fell));
    ck_assert(fell);
    /* and one under the cap, after it: the parser's buffers still work */
    doc[n - 2 - 200] = '"';
    doc[n - 1 - 200] = ']';
    ck_assert(both(doc, n - 200 - JSONFAST_MAX / 2, &fell) == 0); /* cut: no closing quote */
    free(doc);
    ck_assert(both_str("[\"after\"]", &fell));
    ck_assert(!fell);
}
END_TEST

START_TEST(every_allocation_failure_is_cjsons_and_leaks_nothing)
{
    static const char doc[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                              "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
                              "\"yes\"}]}],\"n\":1}";
    cJSON *whole;
    long base, failed = 0;

    json_count_hooks();
    whole = jsonfast_parse_cjson(doc, strlen(doc), NULL);
    ck_assert_ptr_nonnull(whole);
    base = json_count()->live; /* whole's */
    for (long k = 1; k < 200; k++) {
        cJSON *t;
        json_count()->calls = 0;
        json_count()->fail_at = k;
        t = jsonfast_parse(doc, strlen(doc), NULL);
        json_count()->fail_at = 0;
        /* every allocation from the k-th failed, jsonfast's and then cJSON's when it gave up:
         * NULL, or the whole tree when k is past what a parse takes */
        ck_assert(t == NULL || same_parse(t, whole));
        failed += t == NULL;
        cJSON_Delete(t);
        ck_assert_int_eq(json_count()->live, base); /* nothing of the failed parses is left */
    }
    /* the tree is 28 allocations (13 items, 9 names, 6 strings): a parse fails when any of
     * them does, and only then */
    ck_assert_int_eq(failed, 28);
    cJSON_Delete(whole);
    ck_assert_int_eq(json_count()->live, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsonfast");
    TCase *tc = tcase_create("jsonfast");

    tcase_add_test(tc, valid_json_is_read_by_simdjson_into_cjsons_tree);
    tcase_add_test(tc, what_simdjson_refuses_is_read_by_cjson);
    tcase_add_test(tc, invalid_json_is_refused_where_cjson_refuses_it);
    tcase_add_test(tc, nesting_is_bounded_as_in_cjson);
    tcase_add_test(tc, numbers_cjson_reads_in_part_go_to_cjson);
    tcase_add_test(tc, texts_past_the_cap_go_to_cjson);
    tcase_add_test(tc, every_allocation_failure_is_cjsons_and_leaks_nothing);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
