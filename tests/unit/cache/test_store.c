/*
 * Unit tests for cache/store: hit, miss, expiry, LRU eviction order, the byte cap, an entry
 * too big, replacing, a reference that outlives its entry's eviction, keys compared whole, new
 * caps, and threads hammering one store under its cap.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"
#include "run_suite.h"

static int has(struct cache_store *s, const char *k, int64_t now)
{
    struct cache_val *v = cache_store_get(s, k, strlen(k), now);

    cache_val_release(v);
    return v != NULL;
}

static int put(struct cache_store *s, const char *k, const char *v, int64_t ttl, int64_t now)
{
    return cache_store_put(s, k, strlen(k), v, strlen(v), ttl, now);
}

START_TEST(hit_and_miss)
{
    struct cache_store *s = cache_store_new(1 << 20, 1 << 16);
    struct cache_store_stats st;
    struct cache_val *v;
    size_t len;

    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(cache_store_get(s, "k", 1, 0));
    ck_assert_int_eq(put(s, "k", "value", 1000, 0), 0);
    v = cache_store_get(s, "k", 1, 10);
    ck_assert_ptr_nonnull(v);
    const char *d = cache_val_data(v, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(d, "value", 5), 0);
    ck_assert_int_eq(cache_val_expires(v), 1000);
    cache_val_release(v);
    cache_val_release(NULL);
    /* keys are compared whole: a prefix, a longer key, a different byte after a NUL miss */
    ck_assert_int_eq(cache_store_put(s, "a\0b", 3, "x", 1, 1000, 0), 0);
    ck_assert_ptr_null(cache_store_get(s, "a\0c", 3, 0));
    ck_assert_ptr_null(cache_store_get(s, "a", 1, 0));
    ck_assert_ptr_null(cache_store_get(s, "a\0bc", 4, 0));
    ck_assert_int_eq(has(s, "k", 0), 1);
    cache_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.stores, 2);
    ck_assert_uint_eq(st.hits, 2);
    ck_assert_uint_eq(st.misses, 4);
    ck_assert_uint_eq(st.max_bytes, 1 << 20);
    ck_assert_uint_eq(st.max_entry_bytes, 1 << 16);
    ck_assert_uint_gt(st.bytes, 1 + 5 + 3 + 1);
    ck_assert_int_eq(cache_store_delete(s, "k", 1), 1);
    ck_assert_int_eq(cache_store_delete(s, "k", 1), 0);
    ck_assert_int_eq(has(s, "k", 0), 0);
    cache_store_free(s);
}
END_TEST

START_TEST(expiry)
{
    struct cache_store *s = cache_store_new(1 << 20, 1 << 16);
    struct cache_store_stats st;

    ck_assert_int_eq(put(s, "k", "v", 100, 1000), 0);
    ck_assert_int_eq(has(s, "k", 1099), 1);
    ck_assert_int_eq(has(s, "k", 1100), 0); /* expires at now + ttl */
    cache_store_stats(s, &st);
    ck_assert_uint_eq(st.expired, 1);
    ck_assert_uint_eq(st.entries, 0); /* an expired entry found is dropped */
    ck_assert_uint_eq(st.bytes, 0);
    /* a huge ttl does not wrap */
    ck_assert_int_eq(put(s, "k", "v", INT64_MAX, 1000), 0);
    ck_assert_int_eq(has(s, "k", INT64_MAX - 1), 1);
    cache_store_free(s);
}
END_TEST

/* the bytes one entry of a 2-byte key and a 10-byte value counts */
static size_t one_entry_bytes(void)
{
    struct cache_store *s = cache_store_new(1 << 20, 1 << 16);
    struct cache_store_stats st;

    put(s, "k0", "0123456789", 1000, 0);
    cache_store_stats(s, &st);
    cache_store_free(s);
    return st.bytes;
}

START_TEST(lru_eviction_order)
{
    size_t e = one_entry_bytes();
    struct cache_store *s = cache_store_new(3 * e, 16); /* room for three: one shard */
    struct cache_store_stats st;

    ck_assert_int_eq(put(s, "k1", "0123456789", 1000, 0), 0);
    ck_assert_int_eq(put(s, "k2", "0123456789", 1000, 0), 0);
    ck_assert_int_eq(put(s, "k3", "0123456789", 1000, 0), 0);
    ck_assert_int_eq(has(s, "k1", 1), 1); /* k1 used: k2 is now the oldest use */
    ck_assert_int_eq(put(s, "k4", "0123456789", 1000, 2), 0);
    ck_assert_int_eq(has(s, "k2", 3), 0);
    ck_assert_int_eq(has(s, "k1", 3), 1);
    ck_assert_int_eq(has(s, "k3", 3), 1);
    ck_assert_int_eq(has(s, "k4", 3), 1);
    /* order of use now: k4 k3 k1 (oldest k1), so k5 evicts k1 */
    ck_assert_int_eq(put(s, "k5", "0123456789", 1000, 4), 0);
    ck_assert_int_eq(has(s, "k1", 5), 0);
    cache_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.evictions, 2);
    ck_assert_uint_le(st.bytes, 3 * e);
    cache_store_free(s);
}
END_TEST

START_TEST(too_big)
{
    struct cache_store *s = cache_store_new(1 << 20, 16);
    struct cache_store_stats st;
    char big[17];

    memset(big, 'x', 16);
    big[16] = '\0';
    ck_assert_int_eq(put(s, "k", big, 1000, 0), 1); /* key + value: 17 > 16 */
    ck_assert_int_eq(put(s, "k", big + 1, 1000, 0), 0);
    cache_store_stats(s, &st);
    ck_assert_uint_eq(st.too_big, 1);
    ck_assert_uint_eq(st.entries, 1);
    cache_store_free(s);
    /* larger than the whole store */
    s = cache_store_new(64, 1 << 16);
    ck_assert_int_eq(put(s, "k", "v", 1000, 0), 1);
    ck_assert_int_eq(has(s, "k", 0), 0);
    cache_store_free(s);
}
END_TEST

START_TEST(replace)
{
    size_t e = one_entry_bytes();
    struct cache_store *s = cache_store_new(3 * e, 16);
    struct cache_store_stats st;
    struct cache_val *v;
    size_t len;

    ck_assert_int_eq(put(s, "k1", "0123456789", 1000, 0), 0);
    ck_assert_int_eq(put(s, "k1", "abcdefghij", 50, 0), 0);
    v = cache_store_get(s, "k1", 2, 1);
    ck_assert_int_eq(memcmp(cache_val_data(v, &len), "abcdefghij", 10), 0);
    ck_assert_int_eq(cache_val_expires(v), 50);
    cache_val_release(v);
    cache_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.bytes, e);
    ck_assert_uint_eq(st.evictions, 0);
    cache_store_free(s);
}
END_TEST

START_TEST(reference_outlives_eviction)
{
    size_t e = one_entry_bytes();
    struct cache_store *s = cache_store_new(e, 16);
    struct cache_val *v, *w;
    size_t len;

    ck_assert_int_eq(put(s, "k1", "0123456789", 1000, 0), 0);
    v = cache_store_get(s, "k1", 2, 0);
    w = cache_store_get(s, "k1", 2, 0);
    ck_assert_int_eq(put(s, "k2", "abcdefghij", 1000, 0), 0); /* evicts k1 */
    ck_assert_int_eq(has(s, "k1", 0), 0);
    ck_assert_int_eq(memcmp(cache_val_data(v, &len), "0123456789", 10), 0);
    cache_val_release(v);
    ck_assert_int_eq(memcmp(cache_val_data(w, &len), "0123456789", 10), 0);
    /* replaced, deleted, and the store freed: the reference still reads */
    v = cache_store_get(s, "k2", 2, 0);
    ck_assert_int_eq(put(s, "k2", "ABCDEFGHIJ", 1000, 0), 0);
    ck_assert_int_eq(cache_store_delete(s, "k2", 2), 1);
    cache_store_free(s);
    ck_assert_int_eq(memcmp(cache_val_data(v, &len), "abcdefghij", 10), 0);
    cache_val_release(v);
    cache_val_release(w); /* ASan: freed once, here, not before */
}
END_TEST

START_TEST(new_caps)
{
    size_t e = one_entry_bytes();
    struct cache_store *s = cache_store_new(4 * e, 16);
    struct cache_store_stats st;

    put(s, "k1", "0123456789", 1000, 0);
    put(s, "k2", "0123456789", 1000, 0);
    put(s, "k3", "0123456789", 1000, 0);
    has(s, "k1", 0);
    cache_store_set_caps(s, 2 * e, 16); /* k2 (the oldest use) goes */
    cache_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.max_bytes, 2 * e);
    ck_assert_int_eq(has(s, "k2", 0), 0);
    ck_assert_int_eq(has(s, "k1", 0), 1);
    ck_assert_int_eq(has(s, "k3", 0), 1);
    cache_store_set_caps(s, 4 * e, 4); /* smaller entries only */
    ck_assert_int_eq(put(s, "k4", "0123456789", 1000, 0), 1);
    cache_store_free(s);
}
END_TEST

#define THREADS 4
#define ROUNDS 20000
#define MAXB (64 * 1024)

static void *hammer(void *arg)
{
    struct cache_store *s = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    char key[32], val[600];
    long bad = 0;

    for (int i = 0; i < ROUNDS; i++) {
        unsigned k = (unsigned)rand_r(&seed) % 500;
        int n = snprintf(key, sizeof(key), "key-%u", k);
        size_t vlen = 50 + k;

        if (rand_r(&seed) % 3 == 0) {
            memset(val, 'a' + (int)(k % 26), vlen);
            ck_assert_int_ne(cache_store_put(s, key, (size_t)n, val, vlen, 1000000, i), -1);
        } else if (rand_r(&seed) % 50 == 0) {
            cache_store_delete(s, key, (size_t)n);
        } else {
            struct cache_val *v = cache_store_get(s, key, (size_t)n, i);
            size_t len;

            if (v) {
                const char *d = cache_val_data(v, &len);
                /* the value belongs to the key and is whole */
                if (len != vlen || d[0] != 'a' + (int)(k % 26) || d[len - 1] != d[0])
                    bad++;
                cache_val_release(v);
            }
        }
    }
    return (void *)bad;
}

START_TEST(threads_under_cap)
{
    struct cache_store *s = cache_store_new(MAXB, 1024);
    struct cache_store_stats st;
    pthread_t t[THREADS];

    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, s), 0);
    for (int i = 0; i < THREADS; i++) {
        void *bad;

        pthread_join(t[i], &bad);
        ck_assert_int_eq((long)bad, 0);
    }
    cache_store_stats(s, &st);
    ck_assert_uint_le(st.bytes, MAXB);
    ck_assert_uint_gt(st.entries, 0);
    ck_assert_uint_gt(st.evictions, 0);
    ck_assert_uint_gt(st.hits, 0);
    cache_store_free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store");
    TCase *t = tcase_create("store");

    tcase_set_timeout(t, 60);
    tcase_add_test(t, hit_and_miss);
    tcase_add_test(t, expiry);
    tcase_add_test(t, lru_eviction_order);
    tcase_add_test(t, too_big);
    tcase_add_test(t, replace);
    tcase_add_test(t, reference_outlives_eviction);
    tcase_add_test(t, new_caps);
    tcase_add_test(t, threads_under_cap);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
