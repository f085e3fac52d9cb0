/*
 * Unit tests for routing/health: the circuit breaker (failures in a row, error ratio over a
 * window, cool-down and one probe at a time, threads included), retry-after, the latency
 * estimates, the cap, and what /status and /metrics show. Times are passed in: no sleeps.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/health.h"
#include "run_suite.h"

#define S 1000000LL /* one second in us */
#define T0 (1000 * S)

static struct conf_routing cfg_default(void)
{
    struct conf_routing c;

    memset(&c, 0, sizeof(c));
    c.attempts = 3;
    c.retry_after_max_ms = 60000;
    c.breaker_failures = 5;
    c.breaker_error_pct = 50;
    c.breaker_min_requests = 20;
    c.breaker_window_ms = 30000;
    c.breaker_cooldown_ms = 15000;
    return c;
}

static void report(struct route_health *h, const struct conf_routing *c, const char *t,
                   enum route_outcome o, int64_t now)
{
    route_health_report(h, c, t, o, o == ROUTE_OK_ANSWER ? 1000 : -1,
                        o == ROUTE_OK_ANSWER ? 2000 : -1, 0, now);
}

static int usable(struct route_health *h, const struct conf_routing *c, const char *t, int64_t now,
                  int *probe, int *wait)
{
    int p, w;
    int ok = route_health_usable(h, c, t, now, &p, &w);

    if (probe != NULL)
        *probe = p;
    if (wait != NULL)
        *wait = w;
    return ok;
}

/* The /status object of target t, or NULL; *arr_out is the array to cJSON_Delete. */
static cJSON *status_of(struct route_health *h, const struct conf *c, const char *t, int64_t now,
                        cJSON **arr_out)
{
    cJSON *arr = cJSON_CreateArray(), *o;

    route_health_status(h, c, now, arr);
    *arr_out = arr;
    cJSON_ArrayForEach(o, arr)
    {
        cJSON *n = cJSON_GetObjectItem(o, "target");
        if (cJSON_IsString(n) && strcmp(n->valuestring, t) == 0)
            return o;
    }
    return NULL;
}

static const char *state_of(struct route_health *h, const char *t, int64_t now, char *buf)
{
    cJSON *arr, *o = status_of(h, NULL, t, now, &arr);

    snprintf(buf, 32, "%s", o != NULL ? cJSON_GetObjectItem(o, "state")->valuestring : "(absent)");
    cJSON_Delete(arr);
    return buf;
}

START_TEST(opens_after_failures_in_row)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    int probe, wait;
    char b[32];

    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(usable(h, &c, "m", T0, &probe, &wait), 1); /* never seen: usable */
    ck_assert_int_eq(probe, 0);
    /* 4 failures, an answer, 4 failures: the answer resets the count, still closed */
    for (int i = 0; i < 4; i++)
        report(h, &c, "m", ROUTE_FAIL_CONNECT, T0 + i);
    report(h, &c, "m", ROUTE_OK_ANSWER, T0 + 10);
    for (int i = 0; i < 4; i++)
        report(h, &c, "m", i % 2 ? ROUTE_FAIL_TIMEOUT : ROUTE_FAIL_STATUS, T0 + 20 + i);
    ck_assert_str_eq(state_of(h, "m", T0 + 30, b), "closed");
    ck_assert_int_eq(usable(h, &c, "m", T0 + 30, NULL, NULL), 1);
    /* the fifth in a row opens it for the cool-down */
    report(h, &c, "m", ROUTE_FAIL_CONNECT, T0 + 40);
    ck_assert_str_eq(state_of(h, "m", T0 + 41, b), "open");
    ck_assert_int_eq(usable(h, &c, "m", T0 + 41, &probe, &wait), 0);
    ck_assert_int_eq(probe, 0);
    ck_assert_int_eq(wait, 15);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 40 + 10 * S, NULL, &wait), 0);
    ck_assert_int_eq(wait, 5);
    /* another target is not affected */
    ck_assert_int_eq(usable(h, &c, "other", T0 + 41, NULL, NULL), 1);
    route_health_free(h);
}
END_TEST

START_TEST(opens_by_error_ratio)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    char b[32];

    c.breaker_failures = 1000;
    c.breaker_min_requests = 10;
    c.breaker_window_ms = 10000;
    /* ok, fail, ok, fail ...: half of them fail; 9 requests are under the minimum */
    for (int i = 0; i < 9; i++)
        report(h, &c, "m", i % 2 ? ROUTE_FAIL_STATUS : ROUTE_OK_ANSWER, T0 + i * 100000);
    ck_assert_str_eq(state_of(h, "m", T0 + S, b), "closed");
    ck_assert_int_eq(usable(h, &c, "m", T0 + S, NULL, NULL), 1);
    report(h, &c, "m", ROUTE_FAIL_STATUS, T0 + S); /* the tenth: 5 of 10 failed */
    ck_assert_str_eq(state_of(h, "m", T0 + S, b), "open");
    ck_assert_int_eq(usable(h, &c, "m", T0 + S, NULL, NULL), 0);

    /* 4 of 10 (40%) stays closed */
    for (int i = 0; i < 10; i++)
        report(h, &c, "n", i % 5 == 1 || i % 5 == 3 ? ROUTE_FAIL_TIMEOUT : ROUTE_OK_ANSWER,
               T0 + i * 1000);
    ck_assert_str_eq(state_of(h, "n", T0 + S, b), "closed");
    {
        cJSON *arr, *o = status_of(h, NULL, "n", T0 + S, &arr);
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "requests_in_window")->valueint, 10);
        ck_assert(cJSON_GetObjectItem(o, "error_ratio")->valuedouble > 0.399 &&
                  cJSON_GetObjectItem(o, "error_ratio")->valuedouble < 0.401);
        cJSON_Delete(arr);
    }
    route_health_free(h);
}
END_TEST

START_TEST(ratio_needs_min_requests_in_window)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    char b[32];

    c.breaker_failures = 1000;
    c.breaker_min_requests = 10;
    c.breaker_window_ms = 10000;
    /* 9 failures out of 9: below the minimum */
    for (int i = 0; i < 9; i++)
        report(h, &c, "m", ROUTE_FAIL_CONNECT, T0 + i);
    ck_assert_str_eq(state_of(h, "m", T0 + 10, b), "closed");
    /* a window later they no longer count: 9 more failures, still closed */
    for (int i = 0; i < 9; i++)
        report(h, &c, "m", ROUTE_FAIL_CONNECT, T0 + 11 * S + i);
    ck_assert_str_eq(state_of(h, "m", T0 + 11 * S + 10, b), "closed");
    ck_assert_int_eq(usable(h, &c, "m", T0 + 11 * S + 10, NULL, NULL), 1);
    {
        cJSON *arr, *o = status_of(h, NULL, "m", T0 + 11 * S + 10, &arr);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "requests_in_window")->valueint, 9);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "failures_in_row")->valueint, 18);
        cJSON_Delete(arr);
    }
    /* the tenth within the window opens it */
    report(h, &c, "m", ROUTE_FAIL_CONNECT, T0 + 11 * S + 20);
    ck_assert_str_eq(state_of(h, "m", T0 + 11 * S + 20, b), "open");
    route_health_free(h);
}
END_TEST

/* Opens "m" at t (5 failures in a row with the defaults). */
static void open_at(struct route_health *h, const struct conf_routing *c, int64_t t)
{
    for (int i = 0; i < 5; i++)
        report(h, c, "m", ROUTE_FAIL_CONNECT, t);
}

START_TEST(cooldown_then_one_probe)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    int probe, wait;
    int64_t t = T0 + 15 * S;
    char b[32];

    open_at(h, &c, T0);
    ck_assert_int_eq(usable(h, &c, "m", t - 1, &probe, NULL), 0);
    ck_assert_int_eq(usable(h, &c, "m", t, &probe, NULL), 1);
    ck_assert_int_eq(probe, 1);
    ck_assert_str_eq(state_of(h, "m", t, b), "half_open");
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(usable(h, &c, "m", t + i, &probe, &wait), 0);
        ck_assert_int_eq(probe, 0);
        ck_assert_int_ge(wait, 1);
    }
    /* the probe succeeds: closed, and everyone may go */
    report(h, &c, "m", ROUTE_OK_ANSWER, t + 10);
    ck_assert_str_eq(state_of(h, "m", t + 10, b), "closed");
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(usable(h, &c, "m", t + 20, &probe, NULL), 1);
        ck_assert_int_eq(probe, 0);
    }
    /* and one failure after closing does not reopen it (the row and window start again) */
    report(h, &c, "m", ROUTE_FAIL_CONNECT, t + 30);
    ck_assert_str_eq(state_of(h, "m", t + 30, b), "closed");
    route_health_free(h);
}
END_TEST

START_TEST(probe_failure_reopens)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    int probe, wait;
    int64_t t = T0 + 15 * S;
    char b[32];

    open_at(h, &c, T0);
    ck_assert_int_eq(usable(h, &c, "m", t, &probe, NULL), 1);
    ck_assert_int_eq(probe, 1);
    report(h, &c, "m", ROUTE_FAIL_TIMEOUT, t + 2 * S);
    ck_assert_str_eq(state_of(h, "m", t + 2 * S, b), "open");
    /* another full cool-down from the probe's failure */
    ck_assert_int_eq(usable(h, &c, "m", t + 16 * S, &probe, &wait), 0);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(usable(h, &c, "m", t + 17 * S, &probe, NULL), 1);
    ck_assert_int_eq(probe, 1);
    ck_assert_int_eq(usable(h, &c, "m", t + 17 * S, &probe, NULL), 0);
    route_health_free(h);
}
END_TEST

START_TEST(lost_probe_is_replaced)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    int probe;
    int64_t t = T0 + 15 * S;

    open_at(h, &c, T0);
    ck_assert_int_eq(usable(h, &c, "m", t, &probe, NULL), 1);
    ck_assert_int_eq(usable(h, &c, "m", t + 59 * S, &probe, NULL), 0);
    /* no report within 60 s (more than the cool-down): the next caller probes */
    ck_assert_int_eq(usable(h, &c, "m", t + 60 * S, &probe, NULL), 1);
    ck_assert_int_eq(probe, 1);
    /* a probe given back (never tried): the next caller probes at once */
    route_health_unprobe(h, "m");
    ck_assert_int_eq(usable(h, &c, "m", t + 60 * S + 1, &probe, NULL), 1);
    ck_assert_int_eq(probe, 1);
    ck_assert_int_eq(usable(h, &c, "m", t + 60 * S + 2, &probe, NULL), 0);
    route_health_unprobe(h, "never-seen"); /* nothing */
    route_health_free(h);
}
END_TEST

#define NTHREADS 8
#define ROUNDS 100

struct race {
    struct route_health *h;
    struct conf_routing *c;
    pthread_barrier_t *bar;
    int64_t now;
    int got, probes;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    int probe, wait;

    pthread_barrier_wait(r->bar);
    for (int i = 0; i < 50; i++) {
        if (route_health_usable(r->h, r->c, "m", r->now, &probe, &wait)) {
            r->got++;
            r->probes += probe;
        }
    }
    return NULL;
}

START_TEST(one_probe_among_threads)
{
    struct conf_routing c = cfg_default();
    pthread_barrier_t bar;

    pthread_barrier_init(&bar, NULL, NTHREADS);
    for (int round = 0; round < ROUNDS; round++) {
        struct route_health *h = route_health_new();
        struct race r[NTHREADS];
        pthread_t th[NTHREADS];
        int got = 0, probes = 0;

        open_at(h, &c, T0);
        for (int i = 0; i < NTHREADS; i++) {
            r[i] = (struct race){.h = h, .c = &c, .bar = &bar, .now = T0 + 15 * S + round};
            ck_assert_int_eq(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
        }
        for (int i = 0; i < NTHREADS; i++) {
            pthread_join(th[i], NULL);
            got += r[i].got;
            probes += r[i].probes;
        }
        ck_assert_int_eq(got, 1);
        ck_assert_int_eq(probes, 1);
        route_health_free(h);
    }
    pthread_barrier_destroy(&bar);
}
END_TEST

START_TEST(retry_after_honoured_and_capped)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    int wait;
    char b[32];

    c.retry_after_max_ms = 20000;
    /* 5 s asked: held back until then, and told how long */
    route_health_report(h, &c, "m", ROUTE_FAIL_LIMITED, -1, -1, 5000, T0);
    ck_assert_int_eq(usable(h, &c, "m", T0, NULL, &wait), 0);
    ck_assert_int_eq(wait, 5);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 4 * S + 999999, NULL, &wait), 0);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 5 * S, NULL, NULL), 1);
    /* 10 minutes asked: capped at retry_after_max (20 s) */
    route_health_report(h, &c, "m", ROUTE_FAIL_LIMITED, -1, -1, 600000, T0 + 10 * S);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 10 * S, NULL, &wait), 0);
    ck_assert_int_eq(wait, 20);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 30 * S, NULL, NULL), 1);
    /* none given: 1 s */
    route_health_report(h, &c, "m", ROUTE_FAIL_LIMITED, -1, -1, 0, T0 + 40 * S);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 40 * S + S / 2, NULL, &wait), 0);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 41 * S, NULL, NULL), 1);
    /* a 503 with a retry-after: a failure, and held back */
    route_health_report(h, &c, "m", ROUTE_FAIL_STATUS, -1, -1, 3000, T0 + 50 * S);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 52 * S, NULL, &wait), 0);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(usable(h, &c, "m", T0 + 53 * S, NULL, NULL), 1);
    route_health_free(h);

    /* 429s never open the circuit, and do not end a row of failures */
    h = route_health_new();
    for (int i = 0; i < 50; i++)
        route_health_report(h, &c, "m", ROUTE_FAIL_LIMITED, -1, -1, 1, T0 + i);
    ck_assert_str_eq(state_of(h, "m", T0 + 100, b), "closed");
    for (int i = 0; i < 4; i++) {
        report(h, &c, "m", ROUTE_FAIL_CONNECT, T0 + 200 + i);
        route_health_report(h, &c, "m", ROUTE_FAIL_LIMITED, -1, -1, 1, T0 + 300 + i);
    }
    ck_assert_str_eq(state_of(h, "m", T0 + 400, b), "closed");
    report(h, &c, "m", ROUTE_FAIL_CONNECT, T0 + 500);
    ck_assert_str_eq(state_of(h, "m", T0 + 500, b), "open");
    {
        cJSON *arr, *o = status_of(h, NULL, "m", T0 + 500, &arr);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "requests_in_window")->valueint, 5);
        ck_assert_int_eq(cJSON_GetObjectItem(o, "failures_in_row")->valueint, 5);
        cJSON_Delete(arr);
    }
    route_health_free(h);
}
END_TEST

static double num(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItem(o, k);

    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", k);
    return v->valuedouble;
}

START_TEST(latency_p90_and_ewma)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    cJSON *arr, *o;

    /* under 5 samples: unknown */
    for (int i = 1; i <= 4; i++)
        route_health_report(h, &c, "m", ROUTE_OK_ANSWER, i * 10000, i * 100000, 0, T0 + i);
    ck_assert_int_eq(route_health_p90_ms(h, "m", 1), -1);
    ck_assert_int_eq(route_health_p90_ms(h, "m", 0), -1);
    ck_assert_int_eq(route_health_p90_ms(h, "never", 0), -1);
    /* ten: 10..100 ms first byte, 100..1000 ms total, p90 = the 9th */
    for (int i = 5; i <= 10; i++)
        route_health_report(h, &c, "m", ROUTE_OK_ANSWER, i * 10000, i * 100000, 0, T0 + i);
    ck_assert_int_eq(route_health_p90_ms(h, "m", 1), 90);
    ck_assert_int_eq(route_health_p90_ms(h, "m", 0), 900);
    /* failures add no samples */
    route_health_report(h, &c, "m", ROUTE_FAIL_TIMEOUT, 5000000, 9000000, 0, T0 + 20);
    ck_assert_int_eq(route_health_p90_ms(h, "m", 1), 90);
    /* EWMA with alpha 0.2, first sample as the start */
    {
        double e = 10, t = 100;
        for (int i = 2; i <= 10; i++) {
            e = 0.2 * (i * 10) + 0.8 * e;
            t = 0.2 * (i * 100) + 0.8 * t;
        }
        o = status_of(h, NULL, "m", T0 + 30, &arr);
        ck_assert(num(o, "ttfb_ms_ewma") > e - 0.1 && num(o, "ttfb_ms_ewma") < e + 0.1);
        ck_assert(num(o, "total_ms_ewma") > t - 0.1 && num(o, "total_ms_ewma") < t + 0.1);
        ck_assert(num(o, "ttfb_ms_p90") == 90);
        ck_assert(num(o, "total_ms_p90") == 900);
        cJSON_Delete(arr);
    }
    /* ten slow answers more: 20 samples, the p90 (the 18th) is now a slow one */
    for (int i = 0; i < 10; i++)
        route_health_report(h, &c, "m", ROUTE_OK_ANSWER, 1000000, 2000000, 0, T0 + 40 + i);
    ck_assert_int_eq(route_health_p90_ms(h, "m", 1), 1000);
    ck_assert_int_eq(route_health_p90_ms(h, "m", 0), 2000);
    /* the ring keeps the last 64: after 1..100 ms, they are 37..100 and the p90 is 94 */
    for (int i = 1; i <= 100; i++)
        route_health_report(h, &c, "r", ROUTE_OK_ANSWER, i * 1000, -1, 0, T0 + i);
    ck_assert_int_eq(route_health_p90_ms(h, "r", 1), 94);
    ck_assert_int_eq(route_health_p90_ms(h, "r", 0), -1); /* total never known */
    o = status_of(h, NULL, "r", T0 + 200, &arr);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "total_ms_ewma")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "total_ms_p90")));
    cJSON_Delete(arr);
    route_health_free(h);
}
END_TEST

START_TEST(cap_past_it_always_usable)
{
    struct route_health *h = route_health_new();
    struct conf_routing c = cfg_default();
    char name[32];
    cJSON *arr = cJSON_CreateArray();
    char big[300];

    for (int i = 0; i < ROUTE_HEALTH_MAX; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        report(h, &c, name, ROUTE_OK_ANSWER, T0);
    }
    /* the one past the cap fails forever and stays usable, and is shown nowhere */
    for (int i = 0; i < 100; i++)
        report(h, &c, "late", ROUTE_FAIL_CONNECT, T0 + i);
    ck_assert_int_eq(usable(h, &c, "late", T0 + 200, NULL, NULL), 1);
    ck_assert_int_eq(route_health_p90_ms(h, "late", 0), -1);
    /* targets inside the cap still work */
    for (int i = 0; i < 5; i++)
        report(h, &c, "t1023", ROUTE_FAIL_CONNECT, T0 + i);
    ck_assert_int_eq(usable(h, &c, "t1023", T0 + 10, NULL, NULL), 0);
    /* so does a name too long to keep */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 10; i++)
        report(h, &c, big, ROUTE_FAIL_CONNECT, T0 + i);
    ck_assert_int_eq(usable(h, &c, big, T0 + 10, NULL, NULL), 1);
    route_health_status(h, NULL, T0, arr);
    ck_assert_int_eq(cJSON_GetArraySize(arr), ROUTE_HEALTH_MAX);
    cJSON_Delete(arr);
    route_health_free(h);
}
END_TEST

struct buf {
    char s[65536];
    size_t n;
};

static void buf_out(void *arg, const char *line, size_t len)
{
    struct buf *b = arg;

    ck_assert(b->n + len < sizeof(b->s));
    memcpy(b->s + b->n, line, len);
    b->n += len;
    b->s[b->n] = '\0';
}

START_TEST(status_lists_tier_targets_and_metrics)
{
    struct route_health *h = route_health_new();
    struct conf_routing cr = cfg_default();
    struct conf c;
    struct conf_model models[3];
    int t0[2] = {0, 1}, t1[2] = {1, 2};
    struct conf_tier tiers[2] = {{.name = "cheap", .targets = t0, .ntargets = 2},
                                 {.name = "medium", .targets = t1, .ntargets = 2}};
    cJSON *arr, *o;
    struct buf *b = calloc(1, sizeof(*b));

    memset(&c, 0, sizeof(c));
    memset(models, 0, sizeof(models));
    models[0].name = "gpt-4o-mini";
    models[1].name = "we\"ird\\name";
    models[2].name = "gpt-4o";
    c.models = models;
    c.nmodels = 3;
    c.routing.tiers = tiers;
    c.routing.ntiers = 2;
    for (int i = 0; i < 5; i++)
        route_health_report(h, &cr, "we\"ird\\name", ROUTE_FAIL_STATUS, -1, -1, 0, T0);
    for (int i = 1; i <= 5; i++)
        route_health_report(h, &cr, "gpt-4o", ROUTE_OK_ANSWER, i * 1000, i * 2000, 0, T0);

    /* every tier target once: the two reported first, then the one never seen */
    o = status_of(h, &c, "gpt-4o-mini", T0 + S, &arr);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 3);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "state")->valuestring, "closed");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "ttfb_ms_p90")));
    o = cJSON_GetArrayItem(arr, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "target")->valuestring, "we\"ird\\name");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "state")->valuestring, "open");
    ck_assert_int_eq((int)num(o, "open_for_s"), 14);
    ck_assert_int_eq((int)num(o, "failures_in_row"), 5);
    ck_assert(num(o, "error_ratio") == 1);
    ck_assert_int_eq((int)num(o, "retry_after_s"), 0);
    cJSON_Delete(arr);

    route_health_metrics(h, &c, T0 + S, buf_out, b);
    ck_assert_ptr_nonnull(strstr(b->s, "# TYPE tokengate_target_state gauge\n"));
    /* a tier target never tried shows too: closed, no failures */
    ck_assert_ptr_nonnull(strstr(b->s, "tokengate_target_state{target=\"gpt-4o-mini\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(b->s, "tokengate_target_failures_total{target=\"gpt-4o-mini\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(b->s, "tokengate_target_state{target=\"we\\\"ird\\\\name\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(b->s, "tokengate_target_state{target=\"gpt-4o\"} 0\n"));
    ck_assert_ptr_nonnull(
        strstr(b->s, "tokengate_target_failures_total{target=\"we\\\"ird\\\\name\"} 5\n"));
    ck_assert_ptr_nonnull(
        strstr(b->s, "tokengate_target_latency_ms{target=\"gpt-4o\",kind=\"ttfb\",stat=\"p90\"} "
                     "5.000\n"));
    ck_assert_ptr_nonnull(
        strstr(b->s, "tokengate_target_latency_ms{target=\"gpt-4o\",kind=\"total\",stat=\"p90\"} "
                     "10.000\n"));
    ck_assert_ptr_nonnull(
        strstr(b->s, "tokengate_target_latency_ms{target=\"gpt-4o\",kind=\"ttfb\",stat=\"ewma\"}"));
    /* no latency lines for a target with no answer */
    ck_assert_ptr_null(strstr(b->s, "tokengate_target_latency_ms{target=\"we"));
    /* after the cool-down: half-open, 2 */
    b->n = 0;
    route_health_metrics(h, &c, T0 + 15 * S, buf_out, b);
    ck_assert_ptr_nonnull(strstr(b->s, "tokengate_target_state{target=\"we\\\"ird\\\\name\"} 2\n"));
    free(b);
    route_health_free(h);
}
END_TEST

static Suite *health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, opens_after_failures_in_row);
    tcase_add_test(tc, opens_by_error_ratio);
    tcase_add_test(tc, ratio_needs_min_requests_in_window);
    tcase_add_test(tc, cooldown_then_one_probe);
    tcase_add_test(tc, probe_failure_reopens);
    tcase_add_test(tc, lost_probe_is_replaced);
    tcase_add_test(tc, one_probe_among_threads);
    tcase_add_test(tc, retry_after_honoured_and_capped);
    tcase_add_test(tc, latency_p90_and_ewma);
    tcase_add_test(tc, cap_past_it_always_usable);
    tcase_add_test(tc, status_lists_tier_targets_and_metrics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(health_suite());
}
