/*
 * conftz: a time zone of the system's tz database, read once into a table of UTC offsets, so
 * that local time is a function of the config snapshot and not of the process's TZ.
 *
 * A zone is immutable once loaded: any number of threads may use it at once. Nothing here
 * reads or changes TZ, and nothing calls localtime or mktime.
 */
#ifndef TG_CONFTZ_H
#define TG_CONFTZ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct conf_tz;

/* Where zones are read from: DIR/NAME, as in /usr/share/zoneinfo/Europe/Berlin. */
#define CONF_TZ_DIR "/usr/share/zoneinfo"
#define CONF_TZ_FILE_MAX (1 << 20) /* a larger file is refused */
#define CONF_TZ_TRANSITIONS_MAX 100000
#define CONF_TZ_LAST_YEAR 2400     /* rules are expanded up to here; the last offset holds on */

/*
 * Loads the zone named name (an IANA name such as "Europe/Berlin"; "UTC" and NULL are UTC
 * without reading anything). The file is read as RFC 8536 (TZif, versions 1 to 4): its
 * transitions, then the POSIX TZ rule of its footer expanded year by year. Returns the zone,
 * or NULL with a reason in err, which does not repeat the name ("/usr/share/zoneinfo/X cannot
 * be read": a name with "..", or starting with '/', a missing or malformed file, a zone with
 * leap seconds, out of memory).
 */
struct conf_tz *conf_tz_load(const char *name, char *err, size_t errlen);
void conf_tz_free(struct conf_tz *z);

/* The same from the bytes of a TZif file (for tests and fuzzing): the zone, or NULL with why it
 * is malformed in err ("is cut short"). */
struct conf_tz *conf_tz_from_data(const char *name, const void *data, size_t len, char *err,
                                  size_t errlen);

/* The zone's name ("UTC" for UTC). */
const char *conf_tz_name(const struct conf_tz *z);

/* Seconds east of UTC in force at instant t (seconds since the epoch). z NULL is UTC. */
int32_t conf_tz_offset(const struct conf_tz *z, int64_t t);

/* The local date and time at instant t, as localtime_r would give it with TZ set to the zone
 * (tm_isdst is not set: it is 0). z NULL is UTC. */
void conf_tz_local(const struct conf_tz *z, int64_t t, struct tm *out);

/*
 * The first instant whose local time is at or after the wall time y-mon-mday hour:00:00
 * (mon 0-11; mon and mday may run past their range and are normalized, as mktime does). For a
 * wall time that the clocks skip, that is the instant they jump; for one that comes twice,
 * the first. z NULL is UTC.
 */
int64_t conf_tz_first_at(const struct conf_tz *z, int y, int mon, int mday, int hour);

#endif
