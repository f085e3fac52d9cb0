/*
 * Unit tests for cache/toolstats: tool calls counted per server, tool and agent and cache
 * outcome; past the cap under "_other", never a new label set; label values escaped; several
 * threads counting at once lose nothing.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/toolstats.h"
#include "run_suite.h"

struct text {
    char *s;
    size_t n;
};

static void gather(void *arg, const char *s, size_t n)
{
    struct text *t = arg;
    t->s = realloc(t->s, t->n + n + 1);
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = '\0';
}

static char *metrics(struct toolstats *ts)
{
    struct text t = {NULL, 0};
    toolstats_write(ts, gather, &t);
    return t.s;
}

START_TEST(counters)
{
    struct toolstats *ts = toolstats_new();
    char tool[32], *m;

    toolstats_count(ts, "docs", "search", "crawler", CACHE_MISS);
    toolstats_count(ts, "docs", "search", "crawler", CACHE_HIT);
    toolstats_count(ts, "docs", "search", "crawler", CACHE_HIT);
    toolstats_count(ts, "docs", "search", "indexer", CACHE_BYPASS);
    toolstats_count(ts, "", "get_weather", "crawler", CACHE_HIT); /* /v1/tool-cache */
    toolstats_count(ts, "docs", "we\"ird\\\n", "-", CACHE_BYPASS);
    m = metrics(ts);
    ck_assert_ptr_nonnull(strstr(m, "# TYPE tokengate_tool_calls_total counter\n"));
    ck_assert_ptr_nonnull(strstr(m, "tokengate_tool_calls_total{server=\"docs\",tool=\"search\","
                                    "agent=\"crawler\",cache=\"hit\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(m, "tokengate_tool_calls_total{server=\"docs\",tool=\"search\","
                                    "agent=\"crawler\",cache=\"miss\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(m, "tokengate_tool_calls_total{server=\"\",tool=\"get_weather\","
                                    "agent=\"crawler\",cache=\"hit\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(m, "agent=\"indexer\",cache=\"bypass\"} 1\n"));
    ck_assert_ptr_null(strstr(m, "agent=\"indexer\",cache=\"hit\""));
    ck_assert_ptr_nonnull(strstr(m, "tool=\"we\\\"ird\\\\\\n\""));
    free(m);

    /* past the cap: counted under _other, never a new label set (4 rows are taken) */
    for (int i = 0; i < TOOLSTATS_MAX + 10; i++) {
        snprintf(tool, sizeof(tool), "t%d", i);
        toolstats_count(ts, "docs", tool, "crawler", CACHE_MISS);
    }
    m = metrics(ts);
    ck_assert_ptr_nonnull(strstr(m, "tokengate_tool_calls_total{server=\"_other\",tool=\"_other\","
                                    "agent=\"_other\",cache=\"miss\"} 14\n"));
    ck_assert_ptr_null(strstr(m, "tool=\"t1030\""));
    ck_assert_ptr_nonnull(strstr(m, "tool=\"t1019\""));
    /* a row made before the table filled still counts under its own labels */
    toolstats_count(ts, "docs", "search", "crawler", CACHE_HIT);
    free(m);
    m = metrics(ts);
    ck_assert_ptr_nonnull(strstr(m, "agent=\"crawler\",cache=\"hit\"} 3\n"));
    free(m);
    toolstats_free(ts);
    toolstats_count(NULL, "a", "b", "c", CACHE_HIT); /* no table: nothing */
}
END_TEST

static struct toolstats *shared;

static void *hammer(void *arg)
{
    char tool[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(tool, sizeof(tool), "t%d", i % 50);
        toolstats_count(shared, "s", tool, arg, (enum cache_outcome)(i % 3));
    }
    return NULL;
}

START_TEST(threads)
{
    pthread_t th[4];
    char *agents[4] = {"a", "b", "c", "d"};

    shared = toolstats_new();
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, agents[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    char *m = metrics(shared);
    unsigned long long sum = 0;
    for (const char *p = m; (p = strstr(p, "} ")) != NULL; p += 2)
        sum += strtoull(p + 2, NULL, 10);
    ck_assert_uint_eq(sum, 4 * 20000);
    free(m);
    toolstats_free(shared);
}
END_TEST

static Suite *toolstats_suite(void)
{
    Suite *s = suite_create("toolstats");
    TCase *tc = tcase_create("toolstats");

    tcase_add_test(tc, counters);
    tcase_add_test(tc, threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(toolstats_suite());
}
