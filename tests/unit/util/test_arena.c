/*
 * Unit tests for gate/arena: allocations are distinct, aligned, zeroed and survive until the
 * arena goes.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/util/arena.h"
#include "gate/util/memcap.h"
#include "run_suite.h"

#define NALLOC 3000

struct piece {
    unsigned char *p;
    size_t n;
};

/* Makes malloc hand out dirty memory next, so that a missing memset shows. */
static void dirty_heap(void)
{
    void *junk[64];

    for (int i = 0; i < 64; i++) {
        size_t n = 512u << (i % 6);
        junk[i] = malloc(n);
        ck_assert_ptr_nonnull(junk[i]);
        memset(junk[i], 0xa5, n);
    }
    for (int i = 0; i < 64; i++)
        free(junk[i]);
}

/* Index of the first byte of p[0..n) that is not c, or n when all are. */
static size_t first_not(const unsigned char *p, size_t n, int c)
{
    size_t j = 0;

    while (j < n && p[j] == (unsigned char)c)
        j++;
    return j;
}

/* Size of allocation i: mostly small, every 37th larger than a 4 KiB block. */
static size_t size_of(int i)
{
    if (i % 37 == 5)
        return 4097 + (size_t)(i % 5) * 3001;
    return 1 + (size_t)(i * 7919 % 211);
}

static void check_pieces(struct arena *a, int nalloc)
{
    struct piece *pc = calloc((size_t)nalloc, sizeof(*pc));

    ck_assert_ptr_nonnull(pc);
    for (int i = 0; i < nalloc; i++) {
        pc[i].n = size_of(i);
        pc[i].p = arena_alloc(a, pc[i].n);
        ck_assert_ptr_nonnull(pc[i].p);
        ck_assert_msg((uintptr_t)pc[i].p % 16 == 0, "alloc %d of %zu bytes at %p", i, pc[i].n,
                      (void *)pc[i].p);
        size_t j = first_not(pc[i].p, pc[i].n, 0);
        ck_assert_msg(j == pc[i].n, "alloc %d byte %zu is 0x%02x", i, j, pc[i].p[j]);
        /* fill it all: an overlap with an earlier piece shows below, an overrun under ASan */
        memset(pc[i].p, (i % 251) + 1, pc[i].n);
    }
    for (int i = 0; i < nalloc; i++) {
        size_t j = first_not(pc[i].p, pc[i].n, (i % 251) + 1);
        ck_assert_msg(j == pc[i].n, "alloc %d byte %zu was overwritten", i, j);
    }
    free(pc);
}

START_TEST(small_and_large)
{
    struct arena *a;

    dirty_heap();
    a = arena_new();
    ck_assert_ptr_nonnull(a);
    check_pieces(a, NALLOC);
    arena_free(a);
}
END_TEST

START_TEST(large_first)
{
    struct arena *a = arena_new();
    unsigned char *big, *small, *big2;

    ck_assert_ptr_nonnull(a);
    big = arena_alloc(a, 100000);
    small = arena_alloc(a, 10);
    big2 = arena_alloc(a, 8192);
    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_nonnull(big2);
    memset(big, 1, 100000);
    memset(small, 2, 10);
    memset(big2, 3, 8192);
    ck_assert_uint_eq(first_not(big, 100000, 1), 100000);
    ck_assert_uint_eq(first_not(small, 10, 2), 10);
    ck_assert_uint_eq(first_not(big2, 8192, 3), 8192);
    arena_free(a);
}
END_TEST

START_TEST(block_edges)
{
    /* sizes around a block's capacity and half of it */
    static const size_t sizes[] = {2047, 2048, 2049, 4000, 4064, 4080, 4095, 4096, 4097, 1, 16, 17};
    struct arena *a = arena_new();
    unsigned char *p[sizeof(sizes) / sizeof(sizes[0])];

    ck_assert_ptr_nonnull(a);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        p[i] = arena_alloc(a, sizes[i]);
        ck_assert_ptr_nonnull(p[i]);
        ck_assert_uint_eq((uintptr_t)p[i] % 16, 0);
        memset(p[i], (int)i + 1, sizes[i]);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        ck_assert_uint_eq(first_not(p[i], sizes[i], (int)i + 1), sizes[i]);
    arena_free(a);
}
END_TEST

START_TEST(zero_size)
{
    struct arena *a = arena_new();
    unsigned char *x, *y;

    ck_assert_ptr_nonnull(a);
    arena_alloc(a, 0); /* what it returns is not specified; what follows must still work */
    x = arena_alloc(a, 1);
    y = arena_alloc(a, 1);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_ne(x, y);
    arena_free(a);
}
END_TEST

/*
 * Regression test for a fixed bug: gate/util/arena.c arena_alloc rounds n up with (n + 15) & ~15, which
 * wraps for n near SIZE_MAX: arena_alloc(a, SIZE_MAX) returns a non-NULL pointer to 0 usable bytes
 * where NULL is expected ("Returns n bytes ... or NULL when out of memory"). For n = SIZE_MAX - 31
 * the header size added to the block size wraps too, so a tiny block is malloc'd and then memset
 * with n bytes. Callers pass lengths from the request (arena_strndup(a, s, n) allocates n + 1).
 */
START_TEST(huge_size_fails)
{
    struct arena *a = arena_new();
    void *p, *q;

    ck_assert_ptr_nonnull(a);
    p = arena_alloc(a, SIZE_MAX);
    q = arena_alloc(a, SIZE_MAX - 7);
    arena_free(a);
    ck_assert_ptr_null(p);
    ck_assert_ptr_null(q);
}
END_TEST

START_TEST(strndup_copies)
{
    struct arena *a = arena_new();
    static const char src[] = "hello, world";
    char raw[5] = {'a', 'b', 'c', 'd', 'e'}; /* no NUL */
    char *s;

    ck_assert_ptr_nonnull(a);
    s = arena_strndup(a, src, 5);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "hello");
    ck_assert_ptr_ne(s, src);

    s = arena_strndup(a, src, strlen(src));
    ck_assert_str_eq(s, "hello, world");

    s = arena_strndup(a, raw, 5);
    ck_assert_str_eq(s, "abcde");
    raw[0] = 'z';
    ck_assert_str_eq(s, "abcde"); /* a copy, not a view */

    s = arena_strndup(a, src, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");

    /* embedded NULs are copied too: n bytes, then a terminator */
    s = arena_strndup(a, "a\0b", 3);
    ck_assert_int_eq(memcmp(s, "a\0b\0", 4), 0);
    arena_free(a);
}
END_TEST

START_TEST(strndup_many)
{
    struct arena *a = arena_new();
    char *s[500];
    char want[64];

    ck_assert_ptr_nonnull(a);
    for (int i = 0; i < 500; i++) {
        int n = snprintf(want, sizeof(want), "header-%d: value %d", i, i * i);
        s[i] = arena_strndup(a, want, (size_t)n);
        ck_assert_ptr_nonnull(s[i]);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(want, sizeof(want), "header-%d: value %d", i, i * i);
        ck_assert_str_eq(s[i], want);
    }
    arena_free(a);
}
END_TEST

START_TEST(free_null_and_empty)
{
    arena_free(NULL);
    arena_free(arena_new());
}
END_TEST

START_TEST(many_arenas)
{
    /* arenas are independent: freeing one leaves the others' memory alone */
    struct arena *a[8];
    char *s[8];
    char want[32];

    for (int i = 0; i < 8; i++) {
        a[i] = arena_new();
        ck_assert_ptr_nonnull(a[i]);
        snprintf(want, sizeof(want), "arena %d", i);
        s[i] = arena_strndup(a[i], want, strlen(want));
        ck_assert_ptr_nonnull(arena_alloc(a[i], 5000));
    }
    for (int i = 0; i < 8; i += 2)
        arena_free(a[i]);
    for (int i = 1; i < 8; i += 2) {
        snprintf(want, sizeof(want), "arena %d", i);
        ck_assert_str_eq(s[i], want);
        arena_free(a[i]);
    }
}
END_TEST

START_TEST(limit_refuses_then_lifts)
{
    struct memcap pool = {.limit = 0};
    struct arena *a = arena_new();

    arena_account(a, &pool);
    ck_assert_ptr_nonnull(arena_alloc(a, 100));
    size_t base = arena_bytes(a);
    ck_assert_uint_eq(memcap_used(&pool), base);
    arena_limit(a, base + 64 * 1024, 1);
    int n = 0;
    while (arena_alloc(a, 1000) != NULL)
        ck_assert_int_lt(++n, 1000);
    ck_assert_int_eq(arena_failure(a), ARENA_OVER_LIMIT);
    ck_assert_uint_le(arena_bytes(a), base + 64 * 1024);
    /* the refusal lifted the limit: the request can still answer from its arena */
    ck_assert_ptr_nonnull(arena_alloc(a, 100000));
    ck_assert_int_eq(arena_failure(a), ARENA_OVER_LIMIT); /* the first reason stays */
    ck_assert_uint_eq(memcap_used(&pool), arena_bytes(a));
    arena_free(a);
    ck_assert_uint_eq(memcap_used(&pool), 0);
}
END_TEST

START_TEST(pool_cap_refuses_only_under_a_limit)
{
    struct memcap pool = {.limit = 100 * 1024};
    struct arena *a = arena_new(), *b = arena_new();

    arena_account(a, &pool);
    arena_account(b, &pool);
    /* charges: strict ones fail past the cap and count nothing; others always count */
    ck_assert_int_eq(arena_charge(a, 60 * 1024, 1), 0);
    ck_assert_int_eq(arena_charge(b, 60 * 1024, 1), -1);
    ck_assert_uint_eq(arena_charged(b), 0);
    ck_assert_int_eq(arena_charge(b, 10 * 1024, 0), 0);
    size_t used = memcap_used(&pool);
    ck_assert_uint_eq(used, arena_bytes(a) + arena_bytes(b) + 70 * 1024);
    /* without a limit of its own an arena grows past the pool's cap (memory already needed) */
    ck_assert_ptr_nonnull(arena_alloc(b, 40 * 1024));
    ck_assert_int_eq(arena_failure(b), ARENA_OK);
    /* under a limit of its own only, it still grows past the pool's cap */
    arena_limit(b, SIZE_MAX / 2, 0);
    ck_assert_ptr_nonnull(arena_alloc(b, 8 * 1024));
    ck_assert_int_eq(arena_failure(b), ARENA_OK);
    /* with pool_too, the pool's cap refuses */
    arena_limit(b, SIZE_MAX / 2, 1);
    ck_assert_ptr_null(arena_alloc(b, 8 * 1024));
    ck_assert_int_eq(arena_failure(b), ARENA_OVER_POOL);
    arena_free(a);
    arena_free(b);
    ck_assert_uint_eq(memcap_used(&pool), 0);
}
END_TEST

static Suite *arena_suite(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("arena");

    tcase_add_test(tc, small_and_large);
    tcase_add_test(tc, large_first);
    tcase_add_test(tc, block_edges);
    tcase_add_test(tc, zero_size);
    tcase_add_test(tc, huge_size_fails);
    tcase_add_test(tc, strndup_copies);
    tcase_add_test(tc, strndup_many);
    tcase_add_test(tc, free_null_and_empty);
    tcase_add_test(tc, many_arenas);
    tcase_add_test(tc, limit_refuses_then_lifts);
    tcase_add_test(tc, pool_cap_refuses_only_under_a_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(arena_suite());
}
