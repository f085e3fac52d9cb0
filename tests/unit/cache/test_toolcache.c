/*
 * Unit tests for cache/toolcache: the key of a tool result (scope, server, tool, canonical
 * arguments) and a result stored and found under it.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"
#include "cache/toolcache.h"
#include "run_suite.h"

/* The key of (scope, server, tool, args as JSON text, or NULL), in a buffer the caller frees. */
static struct canon_buf key_of(const char *scope, const char *server, const char *tool,
                               const char *args_json)
{
    struct canon_buf b = {.max = 1 << 20};
    cJSON *args = NULL;

    if (args_json != NULL) {
        args = cJSON_Parse(args_json);
        ck_assert_msg(args != NULL, "bad test JSON %s", args_json);
    }
    ck_assert_int_eq(toolcache_key(&b, scope, server, tool, args), 0);
    cJSON_Delete(args);
    return b;
}

static int same(const struct canon_buf *a, const struct canon_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

START_TEST(key_order_does_not_matter)
{
    struct canon_buf a = key_of("agent:a", "", "get_weather",
                                "{\"city\":\"Paris\",\"units\":\"metric\",\"n\":{\"x\":1,\"y\":[1,2]}}");
    struct canon_buf b = key_of("agent:a", "", "get_weather",
                                " { \"n\" : {\"y\":[1, 2],\"x\":1.0}, \"units\":\"metric\",\n"
                                "\"city\":\"Paris\" }");
    ck_assert(same(&a, &b));
    canon_buf_free(&a);
    canon_buf_free(&b);
}
END_TEST

START_TEST(keys_differ)
{
    /* each one differs from the first in one part only */
    static const char *const parts[][4] = {
        {"agent:a", "", "get_weather", "{\"city\":\"Paris\"}"},
        {"agent:b", "", "get_weather", "{\"city\":\"Paris\"}"},   /* scope */
        {"team:a", "", "get_weather", "{\"city\":\"Paris\"}"},    /* scope level */
        {"agent:a", "docs", "get_weather", "{\"city\":\"Paris\"}"}, /* server */
        {"agent:a", "", "get_forecast", "{\"city\":\"Paris\"}"},  /* tool */
        {"agent:a", "", "get_weather", "{\"city\":\"Rome\"}"},    /* an argument's value */
        {"agent:a", "", "get_weather", "{\"town\":\"Paris\"}"},   /* an argument's name */
        {"agent:a", "", "get_weather", "{\"city\":\"Paris\",\"days\":1}"}, /* one more */
        {"agent:a", "", "get_weather", "{}"},
        {"agent:a", "", "get_weather", NULL},                    /* no arguments */
        {"agent:a", "", "get_weather", "[\"Paris\"]"},
        /* the parts' boundaries move: separators keep them apart */
        {"agent:", "a", "get_weather", "{\"city\":\"Paris\"}"},
        {"agent:a", "get_", "weather", "{\"city\":\"Paris\"}"},
    };
    enum { N = sizeof(parts) / sizeof(parts[0]) };
    struct canon_buf k[N];

    for (int i = 0; i < N; i++)
        k[i] = key_of(parts[i][0], parts[i][1], parts[i][2], parts[i][3]);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            ck_assert_msg(!same(&k[i], &k[j]), "keys %d and %d are equal", i, j);
    for (int i = 0; i < N; i++)
        canon_buf_free(&k[i]);
}
END_TEST

START_TEST(key_starts_with_scope)
{
    /* the store wants the scope first: a key is never shared across scopes by a prefix */
    struct canon_buf a = key_of("team:search", "", "t", "{}");

    ck_assert_uint_ge(a.len, 5 + strlen("team:search") + 1);
    ck_assert_int_eq(memcmp(a.data, "tool\0team:search\0", 17), 0);
    canon_buf_free(&a);
}
END_TEST

START_TEST(key_past_cap_fails)
{
    struct canon_buf b = {.max = 24};
    cJSON *args = cJSON_Parse("{\"q\":\"a long argument that passes the cap\"}");

    ck_assert_int_eq(toolcache_key(&b, "agent:a", "", "search", args), -1);
    cJSON_Delete(args);
    canon_buf_free(&b);
}
END_TEST

START_TEST(put_get_expire)
{
    struct cache_store *s = cache_store_new(1 << 20, 1 << 10);
    struct canon_buf a = key_of("agent:a", "", "get_weather", "{\"city\":\"Paris\"}");
    struct canon_buf a2 = key_of("agent:a", "", "get_weather", "{ \"city\" : \"Paris\" }");
    struct canon_buf b = key_of("agent:b", "", "get_weather", "{\"city\":\"Paris\"}");
    const char *result = "{\"temp\":21}";
    struct cache_val *v;
    const void *data;
    size_t len;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(toolcache_put(s, &a, result, strlen(result), 1000, 5000), 0);
    v = toolcache_get(s, &a2, 5500);
    ck_assert_ptr_nonnull(v);
    data = cache_val_data(v, &len);
    ck_assert_uint_eq(len, strlen(result));
    ck_assert_int_eq(memcmp(data, result, len), 0);
    ck_assert_int_eq(cache_val_expires(v), 6000);
    cache_val_release(v);

    /* another agent: a miss */
    ck_assert_ptr_null(toolcache_get(s, &b, 5500));
    /* past its ttl: a miss */
    ck_assert_ptr_null(toolcache_get(s, &a, 6001));

    /* larger than the entry cap: not stored (1) */
    char *big = malloc(2048);
    memset(big, 'x', 2047);
    big[2047] = '\0';
    ck_assert_int_eq(toolcache_put(s, &a, big, 2047, 1000, 7000), 1);
    ck_assert_ptr_null(toolcache_get(s, &a, 7001));
    free(big);

    /* no store (the cache is off), a zero ttl: refused, nothing crashes */
    ck_assert_ptr_null(toolcache_get(NULL, &a, 0));
    ck_assert_int_eq(toolcache_put(NULL, &a, result, strlen(result), 1000, 0), -1);
    ck_assert_int_eq(toolcache_put(s, &a, result, strlen(result), 0, 0), -1);

    canon_buf_free(&a);
    canon_buf_free(&a2);
    canon_buf_free(&b);
    cache_store_free(s);
}
END_TEST

static Suite *toolcache_suite(void)
{
    Suite *s = suite_create("toolcache");
    TCase *tc = tcase_create("toolcache");

    tcase_add_test(tc, key_order_does_not_matter);
    tcase_add_test(tc, keys_differ);
    tcase_add_test(tc, key_starts_with_scope);
    tcase_add_test(tc, key_past_cap_fails);
    tcase_add_test(tc, put_get_expire);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(toolcache_suite());
}
