/*
 * Unit tests for cache/prefixcount.c: the cap, LRU order, a reload's new cap, many threads at
 * once, and the table as the memo of tok_count_request_ex.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/prefixcount.h"
#include "run_suite.h"
#include "tokenizer/chat.h"

/* Key i: its bytes spread over the whole key (the table takes shard and bucket from them). */
static void key_of(uint64_t i, uint8_t key[16])
{
    uint64_t a = i * 0x9E3779B97F4A7C15ull + 1, b = (i ^ 0xabcdef) * 0xC2B2AE3D27D4EB4Full;

    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
}

static void put(const tok_prefix_memo *m, uint64_t i)
{
    uint8_t k[16];
    tok_prefix_val v = {.tokens = i * 3 + 1,
                        .image_tokens = i,
                        .images = (uint32_t)i % 7,
                        .estimated = (uint32_t)i % 3};

    key_of(i, k);
    m->put(m->arg, k, &v);
}

/* 1 and checks the value when key i is in the table, else 0. */
static int has(const tok_prefix_memo *m, uint64_t i)
{
    uint8_t k[16];
    tok_prefix_val v;

    key_of(i, k);
    if (!m->get(m->arg, k, &v))
        return 0;
    ck_assert_uint_eq(v.tokens, i * 3 + 1);
    ck_assert_uint_eq(v.image_tokens, i);
    ck_assert_uint_eq(v.images, (uint32_t)i % 7);
    ck_assert_uint_eq(v.estimated, (uint32_t)i % 3);
    return 1;
}

START_TEST(cap_drops_the_oldest)
{
    struct prefixcount *p = prefixcount_new(100);
    struct prefixcount_stats st;
    tok_prefix_memo m;

    ck_assert_ptr_nonnull(p);
    prefixcount_memo(p, &m);
    for (uint64_t i = 0; i < 150; i++)
        put(&m, i);
    prefixcount_stats(p, &st);
    ck_assert_uint_eq(st.entries, 100);
    ck_assert_uint_eq(st.max_entries, 100);
    ck_assert_uint_eq(st.evictions, 50);
    for (uint64_t i = 0; i < 50; i++)
        ck_assert_int_eq(has(&m, i), 0);
    for (uint64_t i = 50; i < 150; i++)
        ck_assert_int_eq(has(&m, i), 1);
    prefixcount_stats(p, &st);
    ck_assert_uint_eq(st.hits, 100);
    ck_assert_uint_eq(st.misses, 50);
    prefixcount_free(p);
}
END_TEST

START_TEST(lru_keeps_what_was_read)
{
    struct prefixcount *p = prefixcount_new(3);
    struct prefixcount_stats st;
    tok_prefix_memo m;

    prefixcount_memo(p, &m);
    put(&m, 1);
    put(&m, 2);
    put(&m, 3);
    ck_assert_int_eq(has(&m, 1), 1); /* 1 is now the newest: 2 goes next */
    put(&m, 4);
    ck_assert_int_eq(has(&m, 2), 0);
    ck_assert_int_eq(has(&m, 1), 1);
    ck_assert_int_eq(has(&m, 3), 1);
    ck_assert_int_eq(has(&m, 4), 1);
    put(&m, 4); /* a put of a key there updates it in place */
    prefixcount_stats(p, &st);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.evictions, 1);
    prefixcount_free(p);
}
END_TEST

START_TEST(reload_cap)
{
    struct prefixcount *p = prefixcount_new(10);
    struct prefixcount_stats st;
    tok_prefix_memo m;

    prefixcount_memo(p, &m);
    for (uint64_t i = 0; i < 10; i++)
        put(&m, i);
    prefixcount_set_cap(p, 4); /* the four newest stay */
    prefixcount_stats(p, &st);
    ck_assert_uint_eq(st.entries, 4);
    ck_assert_uint_eq(st.max_entries, 4);
    for (uint64_t i = 0; i < 6; i++)
        ck_assert_int_eq(has(&m, i), 0);
    for (uint64_t i = 6; i < 10; i++)
        ck_assert_int_eq(has(&m, i), 1);
    prefixcount_set_cap(p, 8);
    for (uint64_t i = 20; i < 30; i++)
        put(&m, i);
    prefixcount_stats(p, &st);
    ck_assert_uint_eq(st.entries, 8);
    prefixcount_set_cap(p, 0); /* nothing kept, nothing stored */
    put(&m, 99);
    prefixcount_stats(p, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_int_eq(has(&m, 99), 0);
    prefixcount_free(p);
}
END_TEST

START_TEST(null_table_is_no_memo)
{
    tok_prefix_memo m;
    struct prefixcount_stats st;

    prefixcount_memo(NULL, &m);
    ck_assert_ptr_null(m.get);
    ck_assert_ptr_null(m.put);
    prefixcount_stats(NULL, &st);
    ck_assert_uint_eq(st.entries + st.max_entries, 0);
    prefixcount_set_cap(NULL, 5);
    prefixcount_free(NULL);
}
END_TEST

#define THREADS 8
#define PER_THREAD 20000

struct worker {
    tok_prefix_memo m;
    int id, found;
};

/* Puts its own keys and reads them back, and reads the other threads' keys. */
static void *work(void *arg)
{
    struct worker *w = arg;

    for (uint64_t i = 0; i < PER_THREAD; i++) {
        uint64_t k = (uint64_t)w->id * PER_THREAD + i;
        put(&w->m, k);
        w->found += has(&w->m, k);
        (void)has(&w->m, ((uint64_t)(w->id + 1) % THREADS) * PER_THREAD + i);
    }
    return NULL;
}

static void run_threads(int64_t cap)
{
    struct prefixcount *p = prefixcount_new(cap);
    struct prefixcount_stats st;
    struct worker w[THREADS];
    pthread_t th[THREADS];

    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < THREADS; i++) {
        prefixcount_memo(p, &w[i].m);
        w[i].id = i;
        w[i].found = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    prefixcount_stats(p, &st);
    ck_assert_uint_le(st.entries, (uint64_t)cap);
    ck_assert_uint_eq(st.hits + st.misses, (uint64_t)THREADS * PER_THREAD * 2);
    if (cap >= (int64_t)THREADS * PER_THREAD) {
        /* room for all: every key is there, and each read its own put */
        ck_assert_uint_eq(st.entries, (uint64_t)THREADS * PER_THREAD);
        ck_assert_uint_eq(st.evictions, 0);
        for (int i = 0; i < THREADS; i++)
            ck_assert_int_eq(w[i].found, PER_THREAD);
        for (uint64_t k = 0; k < (uint64_t)THREADS * PER_THREAD; k++)
            ck_assert_int_eq(has(&w[0].m, k), 1);
    } else {
        ck_assert_uint_eq(st.entries, (uint64_t)cap); /* full, the rest evicted */
        ck_assert_uint_eq(st.evictions, (uint64_t)THREADS * PER_THREAD - (uint64_t)cap);
    }
    prefixcount_free(p);
}

START_TEST(threads_with_room)
{
    run_threads(1000000);
}
END_TEST

START_TEST(threads_evicting)
{
    run_threads(70000); /* sharded, and full most of the time */
}
END_TEST

/* The table as the memo of a count: a growing conversation counted with it gives the plain
 * count at every turn, and each turn reads the previous turn's prefix. */
START_TEST(memo_of_a_count)
{
    struct prefixcount *p = prefixcount_new(1000);
    struct prefixcount_stats st;
    const tok_enc *e = tok_encoding("o200k_base");
    tok_prefix_memo m;
    tok_count_opts o = {.memo = &m};
    cJSON *body = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(body, "messages");
    char text[128];

    ck_assert_ptr_nonnull(e);
    prefixcount_memo(p, &m);
    for (int t = 0; t < 20; t++) {
        tok_count_result r1, r2;
        cJSON *msg = cJSON_CreateObject();
        snprintf(text, sizeof(text), "turn %d: the %s of the day is %d", t,
                 t % 2 ? "question" : "answer", t * 37);
        cJSON_AddStringToObject(msg, "role", t % 2 ? "assistant" : "user");
        cJSON_AddStringToObject(msg, "content", text);
        cJSON_AddItemToArray(msgs, msg);
        ck_assert_int_eq(tok_count_request(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &r1), 0);
        ck_assert_int_eq(tok_count_request_ex(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &o, &r2), 0);
        ck_assert_uint_eq(r1.tokens, r2.tokens);
    }
    prefixcount_stats(p, &st);
    ck_assert_uint_eq(st.entries, 20);
    ck_assert_uint_eq(st.hits, 19); /* turns 2 to 20 each found the turn before */
    cJSON_Delete(body);
    prefixcount_free(p);
}
END_TEST

static Suite *prefixcount_suite(void)
{
    Suite *s = suite_create("prefixcount");
    TCase *t = tcase_create("core");

    tcase_set_timeout(t, 120);
    tcase_add_test(t, cap_drops_the_oldest);
    tcase_add_test(t, lru_keeps_what_was_read);
    tcase_add_test(t, reload_cap);
    tcase_add_test(t, null_table_is_no_memo);
    tcase_add_test(t, threads_with_room);
    tcase_add_test(t, threads_evicting);
    tcase_add_test(t, memo_of_a_count);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return run_suite(prefixcount_suite());
}
