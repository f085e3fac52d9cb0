/*
 * Unit tests for budget windows in a zone of the config (budget_window_bounds with conf.tz):
 * in zones with DST the hour, day and month that hold an instant start and end where the C
 * library puts them with TZ set to that zone (localtime_r, then mktime of the local midnight or
 * first of the month), across DST changes, year ends and past 2037, where the zone file's rule
 * takes over from its table. The gate itself never sets TZ; this test process does, to ask the
 * C library. And a book whose config names a zone rolls its day over at that zone's midnight.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "run_suite.h"

static const char *const zones[] = {"America/New_York", "Europe/Berlin", "Australia/Sydney"};

/* The window as the C library computes it in the process's TZ. */
static void libc_bounds(enum conf_window w, double now, double *start, double *end)
{
    time_t t = (time_t)floor(now);
    struct tm tm;

    localtime_r(&t, &tm);
    if (w == CONF_WIN_HOUR) {
        *start = (double)(t - tm.tm_min * 60 - tm.tm_sec);
        *end = *start + 3600;
        return;
    }
    tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
    if (w == CONF_WIN_MONTH)
        tm.tm_mday = 1;
    tm.tm_isdst = -1;
    *start = (double)mktime(&tm);
    if (w == CONF_WIN_DAY)
        tm.tm_mday++;
    else
        tm.tm_mon++;
    tm.tm_isdst = -1;
    *end = (double)mktime(&tm);
}

START_TEST(windows_match_libc)
{
    const char *zone = zones[_i];
    char path[300], err[400] = "";

    snprintf(path, sizeof(path), "%s/%s", CONF_TZ_DIR, zone);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "test_windows: no tzdata for %s, skipped\n", zone);
        return;
    }
    struct conf_tz *z = conf_tz_load(zone, err, sizeof(err));
    ck_assert_msg(z != NULL, "%s", err);
    setenv("TZ", zone, 1);
    tzset();
    /* 2000-01-01 to 2060-01-01, every 9 h 17 min 3 s */
    for (double now = 946684800; now < 2840140800.0; now += 9 * 3600 + 17 * 60 + 3) {
        static const enum conf_window ws[] = {CONF_WIN_HOUR, CONF_WIN_DAY, CONF_WIN_MONTH};
        for (size_t k = 0; k < 3; k++) {
            double s, e, ls, le;
            budget_window_bounds(z, ws[k], now, &s, &e);
            libc_bounds(ws[k], now, &ls, &le);
            ck_assert_msg(s == ls && e == le,
                          "%s %s window at %.0f: [%.0f, %.0f), the C library says [%.0f, %.0f)",
                          zone, conf_window_name(ws[k]), now, s, e, ls, le);
            ck_assert(s <= now && now < e);
        }
    }
    conf_tz_free(z);
}
END_TEST

struct day_used {
    int scope;
    int64_t used;
    double resets_at;
};

static void day_cb(void *arg, const struct budget_view *v)
{
    struct day_used *d = arg;

    if (v->scope == d->scope && v->window == CONF_WIN_DAY) {
        d->used = v->used_tokens;
        d->resets_at = v->resets_at;
    }
}

/* A book in New York: its day ends at 04:00Z in summer, 05:00Z in winter. */
START_TEST(book_day_in_new_york)
{
    static const char text[] = "providers:\n"
                               "  o:\n"
                               "    base_url: http://127.0.0.1:8000/v1\n"
                               "models:\n"
                               "  m: { provider: o }\n"
                               "ledger: { path: /nonexistent/ledger.db }\n"
                               "timezone: America/New_York\n"
                               "org: acme\n"
                               "departments:\n"
                               "  d:\n"
                               "    teams:\n"
                               "      t: { agents: [a] }\n";
    char err[400] = "";

    if (access(CONF_TZ_DIR "/America/New_York", R_OK) != 0)
        return;
    unsetenv("TZ"); /* the book must not care */
    tzset();
    struct conf *c = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    double now = 1781578800; /* 2026-06-16T03:00:00Z: 23:00 on June 15 in New York */
    struct budget_book *b = budget_book_new(c, NULL, now, err, sizeof(err));
    ck_assert_msg(b != NULL, "%s", err);
    int a = budget_find_scope(b, "agent:a");
    struct budget_ask ask = {.agent = a, .input = 0, .choices = 1, .max_output = -1,
                             .model_cap = -1};
    struct budget_resv r;
    struct budget_refusal why;
    ck_assert_int_eq(budget_reserve(b, &ask, now, &r, &why), 0);
    budget_settle(b, &r, 500, 0, now, NULL, 0);
    struct day_used d = {.scope = a, .used = -1};
    budget_each(b, now, 1, day_cb, &d);
    ck_assert_int_eq(d.used, 500);
    ck_assert(d.resets_at == 1781582400.0);
    /* 00:00 in New York: a new day, though it is June 16 in UTC since 00:00Z */
    budget_each(b, 1781582400.0, 1, day_cb, &d);
    ck_assert_int_eq(d.used, 0);
    double s, e;
    budget_window_bounds(c->tz, CONF_WIN_DAY, now, &s, &e);
    ck_assert(s == 1781496000.0 && e == 1781582400.0); /* 04:00Z to 04:00Z */
    budget_window_bounds(c->tz, CONF_WIN_DAY, 1797051600.0, &s, &e); /* 2026-12-12T05:00Z */
    ck_assert(s == 1797051600.0 && e == 1797138000.0);
    budget_book_free(b);
    conf_unref(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("windows");
    TCase *tc = tcase_create("windows");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, windows_match_libc, 0, (int)(sizeof(zones) / sizeof(zones[0])));
    tcase_add_test(tc, book_day_in_new_york);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
