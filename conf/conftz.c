/*
 * conftz: time zones read from the tz database's TZif files. See conftz.h.
 *
 * The file format is RFC 8536. A version 2+ file holds the data twice, with 32-bit then with
 * 64-bit times, and ends with a footer: a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") that
 * rules the times after the last transition. Debian ships "fat" files (transitions to 2037);
 * "slim" ones stop where the rule becomes regular. Either way the footer is expanded here into
 * explicit transitions up to CONF_TZ_LAST_YEAR, so that a lookup is one binary search.
 */
#include "conf/conftz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conf_tz {
    char *name;
    int32_t off0;   /* before the first transition */
    size_t n, cap;
    int64_t *at;    /* transition instants, strictly ascending */
    int32_t *off;   /* the offset from at[i] on */
};

#define OFF_MIN (-25 * 3600 + 1) /* RFC 8536: utoff in -89999..93599 */
#define OFF_MAX (26 * 3600 - 1)

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int push(struct conf_tz *z, int64_t at, int32_t off)
{
    if (z->n > 0 && at <= z->at[z->n - 1])
        return 0; /* the table already rules that instant */
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 64;
        if (cap > CONF_TZ_TRANSITIONS_MAX)
            return -1;
        int64_t *na = realloc(z->at, cap * sizeof(*na));
        if (na == NULL)
            return -1;
        z->at = na;
        int32_t *no = realloc(z->off, cap * sizeof(*no));
        if (no == NULL)
            return -1;
        z->off = no;
        z->cap = cap;
    }
    z->at[z->n] = at;
    z->off[z->n++] = off;
    return 0;
}

/* ---- civil dates (proleptic Gregorian, no time zone) ------------------------------------- */

/* Days from 1970-01-01 to y-m-d (m 1-12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The year of instant t (UTC). */
static int64_t year_of(int64_t t)
{
    int64_t days = floor_div(t, 86400);
    int64_t y = 1970 + floor_div(days * 400, 146097);

    while (days_from_civil(y, 1, 1) > days)
        y--;
    while (days_from_civil(y + 1, 1, 1) <= days)
        y++;
    return y;
}

/* ---- the POSIX TZ string of the footer --------------------------------------------------- */

struct rule_date {
    char kind; /* 'J' (1-365, no Feb 29), 'D' (0-365), 'M' (month.week.day) */
    int n, m, w, d;
    int32_t time; /* seconds after local midnight, may be negative or past a day */
};

struct posix_tz {
    int32_t std, dst; /* UTC offsets, east positive */
    int has_dst;
    struct rule_date start, end;
};

static const char *p_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e != NULL && e > s + 1 ? e + 1 : NULL;
    }
    const char *p = s;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

static const char *p_num(const char *s, int lo, int hi, int *out)
{
    int v = 0, digits = 0;

    while (*s >= '0' && *s <= '9' && digits < 4) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 0 || v < lo || v > hi)
        return NULL;
    *out = v;
    return s;
}

/* [+-]hh[:mm[:ss]] with hh up to maxh; into seconds. */
static const char *p_time(const char *s, int maxh, int32_t *out)
{
    int sign = 1, h, m = 0, sec = 0;

    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if ((s = p_num(s, 0, maxh, &h)) == NULL)
        return NULL;
    if (*s == ':' && ((s = p_num(s + 1, 0, 59, &m)) == NULL ||
                      (*s == ':' && (s = p_num(s + 1, 0, 59, &sec)) == NULL)))
        return NULL;
    *out = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *p_date(const char *s, struct rule_date *r)
{
    r->time = 2 * 3600;
    if (*s == 'J') {
        r->kind = 'J';
        s = p_num(s + 1, 1, 365, &r->n);
    } else if (*s == 'M') {
        r->kind = 'M';
        if ((s = p_num(s + 1, 1, 12, &r->m)) == NULL || *s != '.' ||
            (s = p_num(s + 1, 1, 5, &r->w)) == NULL || *s != '.')
            return NULL;
        s = p_num(s + 1, 0, 6, &r->d);
    } else {
        r->kind = 'D';
        s = p_num(s, 0, 365, &r->n);
    }
    if (s != NULL && *s == '/')
        s = p_time(s + 1, 167, &r->time); /* RFC 8536 allows hours up to 167 here */
    return s;
}

/* A TZ string with DST and no rule: glibc's default, the US rule since 2007. */
static int p_posix_rule_default(struct posix_tz *tz)
{
    tz->start = (struct rule_date){.kind = 'M', .m = 3, .w = 2, .d = 0, .time = 2 * 3600};
    tz->end = (struct rule_date){.kind = 'M', .m = 11, .w = 1, .d = 0, .time = 2 * 3600};
    return 0;
}

/* Parses the footer's TZ string (without its newlines). 0, or -1 when malformed. */
static int p_posix(const char *s, struct posix_tz *tz)
{
    int32_t off;

    memset(tz, 0, sizeof(*tz));
    if ((s = p_name(s)) == NULL || (s = p_time(s, 24, &off)) == NULL)
        return -1;
    tz->std = -off; /* POSIX offsets are west positive */
    if (*s == '\0')
        return 0;
    if ((s = p_name(s)) == NULL)
        return -1;
    tz->has_dst = 1;
    tz->dst = tz->std + 3600;
    if (*s != ',' && *s != '\0') {
        if ((s = p_time(s, 24, &off)) == NULL)
            return -1;
        tz->dst = -off;
    }
    if (*s == '\0') /* no rule: POSIX leaves it to the system; the US rule, as glibc does */
        return p_posix_rule_default(tz);
    if (*s != ',' || (s = p_date(s + 1, &tz->start)) == NULL || *s != ',' ||
        (s = p_date(s + 1, &tz->end)) == NULL || *s != '\0')
        return -1;
    return 0;
}

/* The local wall time (seconds since the epoch, as if UTC) at which a rule date falls in y. */
static int64_t rule_wall(const struct rule_date *r, int64_t y)
{
    int64_t day;

    if (r->kind == 'J') /* 1-365, February 29 never counted */
        day = days_from_civil(y, 1, 1) + r->n - 1 + (leap(y) && r->n >= 60);
    else if (r->kind == 'D')
        day = days_from_civil(y, 1, 1) + r->n;
    else {
        int64_t first = days_from_civil(y, r->m, 1);
        int wday = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
        int mday = 1 + (r->d - wday + 7) % 7 + (r->w - 1) * 7;
        while (mday > month_days(y, r->m))
            mday -= 7;
        day = first + mday - 1;
    }
    return day * 86400 + r->time;
}

/* Appends the rule's transitions after the table's last, year by year. */
static int expand(struct conf_tz *z, const struct posix_tz *tz)
{
    int64_t from = z->n > 0 ? year_of(z->at[z->n - 1]) : 1970;

    if (!tz->has_dst) {
        int32_t last = z->n > 0 ? z->off[z->n - 1] : z->off0;
        if (z->n == 0)
            z->off0 = tz->std;
        else if (last != tz->std && push(z, z->at[z->n - 1] + 1, tz->std) < 0)
            return -1;
        return 0;
    }
    for (int64_t y = from; y <= CONF_TZ_LAST_YEAR; y++) {
        /* the start is read on the standard clock, the end on the daylight one */
        int64_t on = rule_wall(&tz->start, y) - tz->std;
        int64_t off = rule_wall(&tz->end, y) - tz->dst;
        int64_t t1 = on < off ? on : off, t2 = on < off ? off : on;
        int32_t o1 = on < off ? tz->dst : tz->std, o2 = on < off ? tz->std : tz->dst;
        if (push(z, t1, o1) < 0 || push(z, t2, o2) < 0)
            return -1;
    }
    return 0;
}

/* ---- TZif ----------------------------------------------------------------------------- */

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chr;
};

static int counts(const unsigned char *p, size_t len, size_t at, struct tzif_counts *c)
{
    if (len < at + 44 || memcmp(p + at, "TZif", 4) != 0)
        return -1;
    const unsigned char *h = p + at + 20;
    *c = (struct tzif_counts){be32(h), be32(h + 4), be32(h + 8), be32(h + 12), be32(h + 16),
                              be32(h + 20)};
    /* RFC 8536 3.1: typecnt nonzero; isut and isstd are 0 or typecnt; 256 types at most */
    if (c->type == 0 || c->type > 256 || (c->isut != 0 && c->isut != c->type) ||
        (c->isstd != 0 && c->isstd != c->type) || c->time > CONF_TZ_TRANSITIONS_MAX ||
        c->chr > 65536 || c->leap > 65536)
        return -1;
    return 0;
}

static size_t block_len(const struct tzif_counts *c, size_t tsize)
{
    return (size_t)c->time * (tsize + 1) + (size_t)c->type * 6 + c->chr +
           (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* Reads the data block at p (of times of tsize bytes) into z. 0, or -1 with why. */
static int read_block(struct conf_tz *z, const unsigned char *p, const struct tzif_counts *c,
                      size_t tsize, const char **why)
{
    const unsigned char *times = p, *idx = p + (size_t)c->time * tsize;
    const unsigned char *types = idx + c->time;
    int32_t off[256];

    if (c->leap != 0) {
        *why = "has leap seconds (a right/ zone): use the zone without them";
        return -1;
    }
    for (uint32_t i = 0; i < c->type; i++) {
        int32_t o = (int32_t)be32(types + 6 * i);
        if (o < OFF_MIN || o > OFF_MAX || types[6 * i + 4] > 1) {
            *why = "has a malformed local time type";
            return -1;
        }
        off[i] = o;
    }
    z->off0 = off[0];
    for (uint32_t i = 0; i < c->time; i++) {
        int64_t t = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        if (idx[i] >= c->type || (z->n > 0 && t <= z->at[z->n - 1])) {
            *why = "has malformed transitions";
            return -1;
        }
        if (push(z, t, off[idx[i]]) < 0) {
            *why = "is too large";
            return -1;
        }
    }
    return 0;
}

static int parse(struct conf_tz *z, const unsigned char *p, size_t len, const char **why)
{
    struct tzif_counts c;
    size_t at = 0, tsize = 4;

    *why = "is not a TZif file";
    if (counts(p, len, 0, &c) < 0)
        return -1;
    if (p[4] >= '2') {
        at = 44 + block_len(&c, 4);
        if (counts(p, len, at, &c) < 0)
            return -1;
        tsize = 8;
    }
    size_t bl = block_len(&c, tsize);
    if (len < at + 44 + bl) {
        *why = "is cut short";
        return -1;
    }
    if (read_block(z, p + at + 44, &c, tsize, why) < 0)
        return -1;
    if (tsize == 4)
        return 0; /* version 1: no footer, the last offset holds on */
    /* the footer: "\n" TZ "\n", the TZ string possibly empty */
    const unsigned char *f = p + at + 44 + bl, *end = p + len;
    char tzs[256];
    size_t n = 0;
    if (f >= end || *f != '\n') {
        *why = "has no footer";
        return -1;
    }
    for (f++; f < end && *f != '\n' && n + 1 < sizeof(tzs); f++)
        tzs[n++] = (char)*f;
    tzs[n] = '\0';
    if (f >= end || *f != '\n') {
        *why = "has a malformed footer";
        return -1;
    }
    if (n == 0)
        return 0;
    struct posix_tz ptz;
    if (p_posix(tzs, &ptz) < 0) {
        *why = "has a footer rule that cannot be read";
        return -1;
    }
    if (expand(z, &ptz) < 0) {
        *why = "is too large";
        return -1;
    }
    return 0;
}

struct conf_tz *conf_tz_load(const char *name, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    FILE *f = NULL;
    const char *why = "cannot be read";
    char path[512], what[300];
    struct conf_tz *z = NULL;

    if (name == NULL || strcmp(name, "UTC") == 0) {
        /* no transitions: offset 0 */
        if ((z = calloc(1, sizeof(*z))) == NULL || (z->name = strdup("UTC")) == NULL) {
            snprintf(err, errlen, "out of memory");
            conf_tz_free(z);
            return NULL;
        }
        return z;
    }
    if (*name == '\0' || name[0] == '/' || strstr(name, "..") != NULL || strlen(name) > 200) {
        snprintf(err, errlen, "not a zone name");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/%s", CONF_TZ_DIR, name);
    if ((f = fopen(path, "rb")) != NULL && (buf = malloc(CONF_TZ_FILE_MAX)) != NULL) {
        size_t len = fread(buf, 1, CONF_TZ_FILE_MAX, f);
        if (len == CONF_TZ_FILE_MAX)
            why = "is too large";
        else if (!ferror(f) && (z = conf_tz_from_data(name, buf, len, what, sizeof(what))) == NULL)
            why = what;
    }
    if (z == NULL)
        snprintf(err, errlen, "%s %s", path, why);
    if (f != NULL)
        fclose(f);
    free(buf);
    return z;
}

struct conf_tz *conf_tz_from_data(const char *name, const void *data, size_t len, char *err,
                                  size_t errlen)
{
    struct conf_tz *z = calloc(1, sizeof(*z));
    const char *why = "";

    if (z == NULL || (z->name = strdup(name)) == NULL) {
        snprintf(err, errlen, "out of memory");
        conf_tz_free(z);
        return NULL;
    }
    if (parse(z, data, len, &why) < 0) {
        snprintf(err, errlen, "%s", why);
        conf_tz_free(z);
        return NULL;
    }
    return z;
}

void conf_tz_free(struct conf_tz *z)
{
    if (z == NULL)
        return;
    free(z->name);
    free(z->at);
    free(z->off);
    free(z);
}

const char *conf_tz_name(const struct conf_tz *z)
{
    return z != NULL ? z->name : "UTC";
}

/* The index of the last transition at or before t, or -1. */
static ptrdiff_t find(const struct conf_tz *z, int64_t t)
{
    size_t lo = 0, hi = z->n; /* answer in [lo - 1, hi - 1] */

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

int32_t conf_tz_offset(const struct conf_tz *z, int64_t t)
{
    if (z == NULL)
        return 0;
    ptrdiff_t i = find(z, t);
    return i < 0 ? z->off0 : z->off[i];
}

void conf_tz_local(const struct conf_tz *z, int64_t t, struct tm *out)
{
    time_t local = (time_t)(t + conf_tz_offset(z, t));

    gmtime_r(&local, out);
    out->tm_isdst = 0;
}

int64_t conf_tz_first_at(const struct conf_tz *z, int y, int mon, int mday, int hour)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mon, .tm_mday = mday, .tm_hour = hour};
    int64_t wall = (int64_t)timegm(&tm); /* normalizes the 32nd of a month, month 12... */

    if (z == NULL)
        return wall;
    /* walk the intervals from one surely before: each holds the wall times
     * [at[k] + off[k], at[k + 1] + off[k]); the first that reaches wall has the answer */
    ptrdiff_t k = find(z, wall - 2 * 86400);
    for (;; k++) {
        int32_t off = k < 0 ? z->off0 : z->off[k];
        if (k >= 0 && wall < z->at[k] + off)
            return z->at[k]; /* skipped by the clocks: the instant they jumped */
        if ((size_t)(k + 1) >= z->n || wall < z->at[k + 1] + off)
            return wall - off;
    }
}
