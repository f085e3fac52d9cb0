/*
 * clock: the gate's two clocks and its one way of writing a time.
 *
 * Monotonic microseconds for durations and timers; wall-clock seconds for budget windows and
 * records, which a test may move with TOKENGATE_TEST_CLOCK_OFFSET_S.
 */
#ifndef TG_CLOCK_H
#define TG_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Microseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
int64_t gate_now_us(void);

/* Wall-clock seconds since the epoch (CLOCK_REALTIME, moved by TOKENGATE_TEST_CLOCK_OFFSET_S
 * when a test set it), for windows and records. */
double gate_wall_now(void);

/*
 * Reads TOKENGATE_TEST_CLOCK_OFFSET_S, once, before any thread starts (the offset is read-only
 * after). Returns 0, or -1 with a message in err when it is set but not a number of seconds
 * within a year.
 */
int gate_clock_init(char *err, size_t errlen);

/*
 * Writes t (seconds since the epoch) as ISO 8601 UTC into buf: "2026-11-23T16:18:59Z", or with
 * ms set "2026-11-23T16:18:59.042Z". Writes "?" when t cannot be written or buf is too small
 * (25 bytes always suffice).
 */
void gate_iso_time(double t, int ms, char *buf, size_t cap);

/* gate_iso_time without milliseconds. */
static inline void gate_iso_utc(double t, char *buf, size_t cap)
{
    gate_iso_time(t, 0, buf, cap);
}

#endif
