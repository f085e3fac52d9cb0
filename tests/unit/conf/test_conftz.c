/*
 * Unit tests for conf/conftz: a zone read from the system's TZif file gives, at every instant,
 * the offset and local time the C library gives with TZ set to that zone (this test process
 * sets TZ; the gate never does), across the zone's transitions, past the file's last
 * transition (where the footer's rule takes over) and for zones of every kind: DST north and
 * south, half-hour and 45-minute offsets, none at all. A bad name or a damaged file is refused
 * with a reason; a damaged file never crashes the reader.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conftz.h"
#include "run_suite.h"

static const char *const zones[] = {
    "America/New_York", "Europe/Berlin",    "Australia/Sydney", "Asia/Kolkata",
    "Pacific/Chatham",  "America/St_Johns", "Europe/London",    "Asia/Tokyo",
    "America/Santiago", "Africa/Casablanca", "Etc/GMT+5",
};

static int have(const char *zone)
{
    char path[300];

    snprintf(path, sizeof(path), "%s/%s", CONF_TZ_DIR, zone);
    if (access(path, R_OK) == 0)
        return 1;
    fprintf(stderr, "test_conftz: no tzdata for %s, skipped\n", zone);
    return 0;
}

static struct conf_tz *load(const char *zone)
{
    char err[400] = "";
    struct conf_tz *z = conf_tz_load(zone, err, sizeof(err));

    ck_assert_msg(z != NULL, "%s: %s", zone, err);
    return z;
}

static void use_libc_tz(const char *zone)
{
    setenv("TZ", zone, 1);
    tzset();
}

/* The offset and local time at t agree with localtime_r's. */
static void check_instant(const struct conf_tz *z, const char *zone, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm want, got;

    ck_assert_ptr_nonnull(localtime_r(&tt, &want));
    conf_tz_local(z, t, &got);
    ck_assert_msg(conf_tz_offset(z, t) == want.tm_gmtoff,
                  "%s at %lld: offset %d, the C library says %ld", zone, (long long)t,
                  conf_tz_offset(z, t), want.tm_gmtoff);
    ck_assert_msg(got.tm_year == want.tm_year && got.tm_mon == want.tm_mon &&
                      got.tm_mday == want.tm_mday && got.tm_hour == want.tm_hour &&
                      got.tm_min == want.tm_min && got.tm_sec == want.tm_sec,
                  "%s at %lld: local time differs", zone, (long long)t);
}

START_TEST(offsets_match_libc)
{
    const char *zone = zones[_i];

    if (!have(zone))
        return;
    struct conf_tz *z = load(zone);
    use_libc_tz(zone);
    /* 1900 to 2150, every 31 h 13 min: every DST period is hit many times over */
    for (int64_t t = -2208988800LL; t < 5680281600LL; t += 31 * 3600 + 13 * 60)
        check_instant(z, zone, t);
    /* both sides of every change of offset from 1970 to 2100, found by bisection */
    for (int64_t t = 0; t < 4102444800LL; t += 6 * 3600) {
        int64_t a = t, b = t + 6 * 3600;
        if (conf_tz_offset(z, a) == conf_tz_offset(z, b))
            continue;
        while (b - a > 1) {
            int64_t m = a + (b - a) / 2;
            if (conf_tz_offset(z, m) == conf_tz_offset(z, a))
                a = m;
            else
                b = m;
        }
        check_instant(z, zone, a);
        check_instant(z, zone, b);
    }
    conf_tz_free(z);
}
END_TEST

/* The first instant of a local day, as mktime finds midnight (where midnight is not skipped). */
START_TEST(first_at_matches_mktime)
{
    static const char *const dst_zones[] = {"America/New_York", "Europe/Berlin",
                                            "Australia/Sydney", "Pacific/Chatham"};

    for (size_t k = 0; k < sizeof(dst_zones) / sizeof(dst_zones[0]); k++) {
        const char *zone = dst_zones[k];
        if (!have(zone))
            continue;
        struct conf_tz *z = load(zone);
        use_libc_tz(zone);
        for (int y = 1980; y <= 2100; y += (y < 2045 ? 1 : 7)) {
            for (int m = 0; m < 12; m++) {
                for (int d = 1; d <= 31; d += 3) {
                    for (int h = 0; h < 24; h += 11) {
                        struct tm tm = {.tm_year = y - 1900, .tm_mon = m, .tm_mday = d,
                                        .tm_hour = h, .tm_isdst = -1};
                        int64_t want = (int64_t)mktime(&tm);
                        ck_assert_msg(conf_tz_first_at(z, y, m, d, h) == want,
                                      "%s %d-%02d-%02d %02d:00: %lld, mktime says %lld", zone, y,
                                      m + 1, d, h, (long long)conf_tz_first_at(z, y, m, d, h),
                                      (long long)want);
                    }
                }
            }
        }
        conf_tz_free(z);
    }
}
END_TEST

START_TEST(skipped_and_repeated_hours)
{
    if (!have("Europe/Berlin"))
        return;
    struct conf_tz *z = load("Europe/Berlin");
    /* 2026-03-29 02:30 does not exist: the clocks jump at 01:00Z */
    ck_assert_int_eq(conf_tz_first_at(z, 2026, 2, 29, 2), 1774746000LL);
    /* 2026-10-25 02:00 comes twice: the first is 00:00Z */
    ck_assert_int_eq(conf_tz_first_at(z, 2026, 9, 25, 2), 1792886400LL);
    /* the 32nd of December is the 1st of January */
    ck_assert_int_eq(conf_tz_first_at(z, 2026, 11, 32, 0), conf_tz_first_at(z, 2027, 0, 1, 0));
    conf_tz_free(z);
}
END_TEST

START_TEST(utc_and_null)
{
    struct conf_tz *z = load("UTC");

    ck_assert_str_eq(conf_tz_name(z), "UTC");
    ck_assert_int_eq(conf_tz_offset(z, 1775001570), 0);
    ck_assert_int_eq(conf_tz_offset(NULL, 1775001570), 0);
    ck_assert_int_eq(conf_tz_first_at(NULL, 2026, 3, 1, 0), 1775001600LL);
    conf_tz_free(z);
    z = load(NULL);
    ck_assert_str_eq(conf_tz_name(z), "UTC");
    conf_tz_free(z);
}
END_TEST

START_TEST(bad_names)
{
    static const char *const bad[] = {"Mars/Olympus", "../../etc/passwd", "/etc/localtime",
                                      "", "America", "Europe/../Europe/Berlin"};
    char err[400];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(conf_tz_load(bad[i], err, sizeof(err)) == NULL, "%s loaded", bad[i]);
        ck_assert_msg(err[0] != '\0', "%s: no reason", bad[i]);
    }
}
END_TEST

/* Every prefix of a real file, and the file with each byte flipped, is read or refused: never
 * a crash (run under ASan, never an overread). */
START_TEST(damaged_files)
{
    char path[300], err[400];
    unsigned char buf[1 << 16];

    if (!have("Europe/Berlin"))
        return;
    snprintf(path, sizeof(path), "%s/Europe/Berlin", CONF_TZ_DIR);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ck_assert(len > 44 && len < sizeof(buf));
    struct conf_tz *whole = conf_tz_from_data("x", buf, len, err, sizeof(err));
    ck_assert_msg(whole != NULL, "%s", err);
    conf_tz_free(whole);
    for (size_t n = 0; n < len - 1; n++) {
        unsigned char *copy = malloc(n + 1);
        memcpy(copy, buf, n);
        struct conf_tz *z = conf_tz_from_data("x", copy, n, err, sizeof(err));
        ck_assert_msg(z == NULL, "a file cut at %zu bytes was read", n);
        free(copy);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char saved = buf[i];
        buf[i] ^= 0xa5;
        conf_tz_free(conf_tz_from_data("x", buf, len, err, sizeof(err)));
        buf[i] = saved;
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conftz");
    TCase *tc = tcase_create("conftz");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, offsets_match_libc, 0, (int)(sizeof(zones) / sizeof(zones[0])));
    tcase_add_test(tc, first_at_matches_mktime);
    tcase_add_test(tc, skipped_and_repeated_hours);
    tcase_add_test(tc, utc_and_null);
    tcase_add_test(tc, bad_names);
    tcase_add_test(tc, damaged_files);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
