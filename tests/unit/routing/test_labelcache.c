/*
 * Unit tests for routing/labelcache: hit, miss, expiry, LRU eviction, and tenants kept apart
 * (the same text under two tenants, a tenant whose name is a prefix of another's).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/labelcache.h"
#include "run_suite.h"

#define S 1000000LL
#define T0 (500 * S)

static const char *get(struct labelcache *lc, const char *tenant, const char *text, int64_t now,
                       char *out)
{
    if (!labelcache_get(lc, tenant, text, strlen(text), now, out, 32))
        return NULL;
    return out;
}

static void put(struct labelcache *lc, const char *tenant, const char *text, const char *label,
                int64_t now, int64_t ttl_ms)
{
    labelcache_put(lc, tenant, text, strlen(text), label, now, ttl_ms);
}

START_TEST(hit_miss_expiry)
{
    struct labelcache *lc = labelcache_new(100);
    char out[32];
    uint64_t st[4];

    ck_assert_ptr_nonnull(lc);
    ck_assert_ptr_null(get(lc, "acme", "hello there", T0, out));
    put(lc, "acme", "hello there", "simple", T0, 60000);
    ck_assert_str_eq(get(lc, "acme", "hello there", T0 + 1, out), "simple");
    /* another text, the same text with one byte more, a shorter prefix of it: misses */
    ck_assert_ptr_null(get(lc, "acme", "hello therE", T0 + 1, out));
    ck_assert_ptr_null(get(lc, "acme", "hello there!", T0 + 1, out));
    ck_assert_int_eq(labelcache_get(lc, "acme", "hello there", 5, T0 + 1, out, sizeof(out)), 0);
    /* the length is part of the key: the same bytes with an embedded NUL differ */
    ck_assert_int_eq(labelcache_get(lc, "acme", "hello there\0x", 13, T0 + 1, out, sizeof(out)), 0);
    /* replaced: the new label and a new TTL */
    put(lc, "acme", "hello there", "moderate", T0 + 2, 1000);
    ck_assert_str_eq(get(lc, "acme", "hello there", T0 + S + 1, out), "moderate");
    /* expired at exactly its time, and dropped */
    ck_assert_ptr_null(get(lc, "acme", "hello there", T0 + S + 2, out));
    labelcache_stats(lc, st);
    ck_assert_uint_eq(st[0], 0);
    ck_assert_uint_eq(st[1], 2);
    ck_assert_uint_eq(st[2], 6);
    ck_assert_uint_eq(st[3], 0);
    /* a label that does not fit the caller's buffer is a miss, not a cut label */
    put(lc, "acme", "x", "complex", T0, 60000);
    ck_assert_int_eq(labelcache_get(lc, "acme", "x", 1, T0, out, 4), 0);
    ck_assert_int_eq(labelcache_get(lc, "acme", "x", 1, T0, out, 8), 1);
    ck_assert_str_eq(out, "complex");
    /* no TTL: not cached */
    put(lc, "acme", "y", "simple", T0, 0);
    ck_assert_ptr_null(get(lc, "acme", "y", T0, out));
    labelcache_free(lc);
}
END_TEST

START_TEST(lru_eviction)
{
    struct labelcache *lc = labelcache_new(3);
    char out[32];
    uint64_t st[4];

    put(lc, "t", "a", "la", T0, 60000);
    put(lc, "t", "b", "lb", T0 + 1, 60000);
    put(lc, "t", "c", "lc", T0 + 2, 60000);
    ck_assert_str_eq(get(lc, "t", "a", T0 + 3, out), "la"); /* a is now the most recent */
    put(lc, "t", "d", "ld", T0 + 4, 60000);                 /* b goes */
    ck_assert_ptr_null(get(lc, "t", "b", T0 + 5, out));
    ck_assert_str_eq(get(lc, "t", "a", T0 + 5, out), "la");
    ck_assert_str_eq(get(lc, "t", "c", T0 + 5, out), "lc");
    ck_assert_str_eq(get(lc, "t", "d", T0 + 5, out), "ld");
    labelcache_stats(lc, st);
    ck_assert_uint_eq(st[0], 3);
    ck_assert_uint_eq(st[3], 1);
    /* the reads left a the least recent; updating it makes it the most recent, so e evicts
     * c, the oldest then */
    put(lc, "t", "a", "la2", T0 + 6, 60000);
    put(lc, "t", "e", "le", T0 + 7, 60000);
    ck_assert_ptr_null(get(lc, "t", "c", T0 + 8, out));
    ck_assert_str_eq(get(lc, "t", "a", T0 + 8, out), "la2");
    /* an expired entry pushed out is not an eviction */
    put(lc, "t", "f", "lf", T0 + 100 * S, 60000); /* everything older expired */
    labelcache_stats(lc, st);
    ck_assert_uint_eq(st[3], 2);
    ck_assert_uint_eq(st[0], 3);
    labelcache_free(lc);

    /* many keys through a small cache: never more than its size, and the last ones kept */
    lc = labelcache_new(50);
    for (int i = 0; i < 5000; i++) {
        char text[32], label[32];
        snprintf(text, sizeof(text), "text %d", i);
        snprintf(label, sizeof(label), "l%d", i);
        put(lc, i % 2 ? "t1" : "t2", text, label, T0 + i, 60000);
    }
    labelcache_stats(lc, st);
    ck_assert_uint_eq(st[0], 50);
    ck_assert_uint_eq(st[3], 4950);
    ck_assert_str_eq(get(lc, "t1", "text 4999", T0 + 5000, out), "l4999");
    ck_assert_str_eq(get(lc, "t2", "text 4950", T0 + 5000, out), "l4950");
    ck_assert_ptr_null(get(lc, "t1", "text 4949", T0 + 5000, out));
    labelcache_free(lc);
}
END_TEST

START_TEST(tenants_kept_apart)
{
    struct labelcache *lc = labelcache_new(100);
    char out[32], long_tenant[200];

    put(lc, "acme", "summarise this", "simple", T0, 60000);
    ck_assert_ptr_null(get(lc, "globex", "summarise this", T0, out));
    put(lc, "globex", "summarise this", "complex", T0, 60000);
    ck_assert_str_eq(get(lc, "acme", "summarise this", T0, out), "simple");
    ck_assert_str_eq(get(lc, "globex", "summarise this", T0, out), "complex");
    /* a tenant that is a prefix of another, and the other way round */
    ck_assert_ptr_null(get(lc, "acm", "summarise this", T0, out));
    ck_assert_ptr_null(get(lc, "acme-eval", "summarise this", T0, out));
    put(lc, "acme-eval", "summarise this", "moderate", T0, 60000);
    ck_assert_str_eq(get(lc, "acme", "summarise this", T0, out), "simple");
    ck_assert_str_eq(get(lc, "acme-eval", "summarise this", T0, out), "moderate");
    /* tenant + text concatenations that read alike stay apart */
    put(lc, "ab", "c", "one", T0, 60000);
    ck_assert_ptr_null(get(lc, "a", "bc", T0, out));
    /* a tenant too long to keep is never cached */
    memset(long_tenant, 't', sizeof(long_tenant) - 1);
    long_tenant[sizeof(long_tenant) - 1] = '\0';
    put(lc, long_tenant, "summarise this", "simple", T0, 60000);
    ck_assert_ptr_null(get(lc, long_tenant, "summarise this", T0, out));
    long_tenant[127] = '\0'; /* its first 127 bytes: never matched by the longer one */
    ck_assert_ptr_null(get(lc, long_tenant, "summarise this", T0, out));
    labelcache_free(lc);
}
END_TEST

static Suite *labelcache_suite(void)
{
    Suite *s = suite_create("labelcache");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, hit_miss_expiry);
    tcase_add_test(tc, lru_eviction);
    tcase_add_test(tc, tenants_kept_apart);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(labelcache_suite());
}
