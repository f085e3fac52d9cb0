/*
 * clock: monotonic and wall time, and ISO 8601 timestamps (see clock.h).
 */
#include "gate/util/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int64_t gate_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* TOKENGATE_TEST_CLOCK_OFFSET_S, read once by gate_clock_init before any thread starts; 0 when
 * unset. A test hook: it moves every window and record time, so tests need not wait for a
 * boundary. Read-only once the workers run. */
static double wall_offset_s;

double gate_wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9 + wall_offset_s;
}

int gate_clock_init(char *err, size_t errlen)
{
    const char *v = getenv("TOKENGATE_TEST_CLOCK_OFFSET_S");
    char *end;
    double d;

    if (v == NULL || *v == '\0')
        return 0;
    d = strtod(v, &end);
    if (*end != '\0' || !(d >= -31536000.0 && d <= 31536000.0)) {
        snprintf(err, errlen, "TOKENGATE_TEST_CLOCK_OFFSET_S=%s: not a number of seconds", v);
        return -1;
    }
    wall_offset_s = d;
    fprintf(stderr,
            "tokengate: test clock: wall time moved by %.3f s "
            "(TOKENGATE_TEST_CLOCK_OFFSET_S)\n",
            d);
    return 0;
}

void gate_iso_time(double t, int ms, char *buf, size_t cap)
{
    double whole = floor(t);
    time_t secs = (time_t)whole;
    struct tm tm;
    size_t n;

    if (cap == 0)
        return;
    if (!isfinite(t) || gmtime_r(&secs, &tm) == NULL ||
        (n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm)) == 0 || n + 6 > cap) {
        snprintf(buf, cap, "?");
        return;
    }
    if (ms) {
        int milli = (int)((t - whole) * 1000);
        milli = milli > 999 ? 999 : milli < 0 ? 0 : milli;
        snprintf(buf + n, cap - n, ".%03dZ", milli);
    } else {
        snprintf(buf + n, cap - n, "Z");
    }
}
