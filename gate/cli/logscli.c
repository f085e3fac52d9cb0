#include "gate/cli/logscli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "gate/cli/clitext.h"
#include "gate/util/clock.h"
#include "gate/budget/ledger.h"

#define LOGS_DEFAULT_DB "state/ledger.db"
#define LOGS_DEFAULT_LIMIT 50
#define LOGS_MAX_LIMIT 1000000000L

enum logs_format { FMT_TABLE, FMT_JSON, FMT_CSV };

struct logs_opts {
    const char *db;
    const char *config;       /* the ledger is the one this config names, unless --db says */
    int db_given;
    const char *agent, *team, *department, *model, *tier, *rule;
    const char *cache;        /* the response cache's outcome: hit, miss or bypass */
    int schema3;              /* the ledger predates the cache columns: read as none */
    int status_lo, status_hi; /* 0: any */
    int has_since, has_until;
    double since, until;
    long limit;
    enum logs_format format;
};

/*
 * The columns read, in this order, and how each is shown in JSON and CSV. The ledger's schema
 * comment (gate/budget/ledger.c) says which values are NULL: a COUNT column is NULL when there was none.
 */
enum col_kind { K_TS, K_TEXT, K_INT, K_COUNT, K_BOOL };
static const struct {
    const char *name;
    enum col_kind kind;
} cols[] = {
    {"ts", K_TS},
    {"id", K_TEXT},
    {"key_id", K_TEXT},
    {"agent", K_TEXT},
    {"team", K_TEXT},
    {"department", K_TEXT},
    {"endpoint", K_TEXT},
    {"model", K_TEXT},
    {"served_model", K_TEXT},
    {"provider", K_TEXT},
    {"status", K_INT},
    {"stream", K_BOOL},
    {"in_own", K_COUNT},
    {"out_own", K_COUNT},
    {"in_usage", K_COUNT},
    {"out_usage", K_COUNT},
    {"cached", K_INT},
    {"cache_write", K_INT},
    {"tokens_charged", K_INT},
    {"cost_nusd", K_INT},
    {"reserved_tokens", K_INT},
    {"latency_us", K_INT},
    {"decision", K_TEXT},
    {"error", K_TEXT},
    {"rule", K_TEXT},
    {"tier", K_TEXT},
    {"attempts", K_TEXT},
    {"translation", K_TEXT},
    /* schema 4 (a ledger of schema 3 gives NULL and 0 for them) */
    {"cache", K_TEXT},
    {"saved_tokens", K_INT},
    {"saved_nusd", K_INT},
    {"prompt_saved_nusd", K_INT},
    {"route_saved_nusd", K_INT},
    {"cache_write_1h", K_INT},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))
enum {
    C_TS,
    C_ID,
    C_KEY_ID,
    C_AGENT,
    C_TEAM,
    C_DEPARTMENT,
    C_ENDPOINT,
    C_MODEL,
    C_SERVED,
    C_PROVIDER,
    C_STATUS,
    C_STREAM,
    C_IN_OWN,
    C_OUT_OWN,
    C_IN_USAGE,
    C_OUT_USAGE,
    C_CACHED,
    C_CACHE_WRITE,
    C_CHARGED,
    C_COST,
    C_RESERVED,
    C_LATENCY,
    C_DECISION,
    C_ERROR,
    C_RULE,
    C_TIER,
    C_ATTEMPTS,
    C_TRANSLATION,
    C_CACHE,
};

static const char time_forms[] =
    "ISO 8601 UTC (2026-11-23T10:00:00Z or 2026-11-23) or an age (30s, 15m, 2h, 7d)";

static void logs_usage(FILE *f)
{
    fprintf(f,
            "usage: tokengate logs [--db PATH | --config FILE] [--agent A] [--team T]\n"
            "                      [--department D]\n"
            "                      [--model M] [--tier T] [--rule R] [--cache hit|miss|bypass]\n"
            "                      [--status CODE|2xx|4xx|5xx] [--since T]\n"
            "                      [--until T] [--limit N] [--format table|json|csv]\n"
            "  --db      the ledger (default: the config's ledger path, else " LOGS_DEFAULT_DB ")\n"
            "  --tier, --rule  the tier and the routing rule that chose the target\n"
            "  --cache   the response cache's outcome (CACHE: hit, miss, bypass; - not looked at)\n"
            "  T         %s\n"
            "  --limit   the newest N records (default %d)\n",
            time_forms, LOGS_DEFAULT_LIMIT);
}

/* ---- option values ----------------------------------------------------------------------------
 */

/* Reads exactly n digits at s into *v. */
static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* An ISO 8601 UTC time: YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS[.fff]Z. Returns 0 or -1. */
static int parse_iso(const char *s, double *out)
{
    struct tm tm = {0}, check;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    double frac = 0;
    time_t t;

    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    s += 10;
    if (*s == 'T') {
        if (digits(s + 1, 2, &h) || s[3] != ':' || digits(s + 4, 2, &mi) || s[6] != ':' ||
            digits(s + 7, 2, &sec))
            return -1;
        s += 9;
        if (*s == '.') {
            double scale = 0.1;
            if (s[1] < '0' || s[1] > '9')
                return -1;
            for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
                frac += (*s - '0') * scale;
        }
        if (*s++ != 'Z')
            return -1;
    }
    if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    /* timegm rolls 2026-02-30 over to March: a date that does not come back is not a date */
    if (t == (time_t)-1 || gmtime_r(&t, &check) == NULL || check.tm_mday != d ||
        check.tm_mon != mo - 1)
        return -1;
    *out = (double)t + frac;
    return 0;
}

/* A time: ISO 8601 UTC, or an age (digits and s, m, h or d) before now. Returns 0 or -1. */
static int parse_time(const char *s, double now, double *out)
{
    size_t n = strlen(s);
    char *end;

    if (n >= 2 && s[0] >= '0' && s[0] <= '9' && strchr("smhd", s[n - 1]) != NULL) {
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == 0 && end == s + n - 1 && v >= 0 && v <= 100LL * 365 * 86400) {
            static const struct {
                char unit;
                double seconds;
            } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
            for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (units[i].unit == s[n - 1]) {
                    *out = now - (double)v * units[i].seconds;
                    return 0;
                }
        }
        return -1;
    }
    return parse_iso(s, out);
}

static int parse_status(const char *s, struct logs_opts *o)
{
    if (s[0] >= '1' && s[0] <= '5' && strcmp(s + 1, "xx") == 0) {
        o->status_lo = (s[0] - '0') * 100;
        o->status_hi = o->status_lo + 99;
        return 0;
    }
    int v;
    if (strlen(s) == 3 && digits(s, 3, &v) == 0 && v >= 100 && v <= 599) {
        o->status_lo = o->status_hi = v;
        return 0;
    }
    return -1;
}

static int known_option(const char *opt)
{
    static const char *const known[] = {"--db",     "--config", "--agent", "--team",
                                        "--department", "--model", "--tier",   "--rule",
                                        "--cache",
                                        "--status", "--since",
                                        "--until",  "--limit",  "--format"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(opt, known[i]) == 0)
            return 1;
    return 0;
}

/* Fills o from the arguments. Returns 0, or 2 after saying what is wrong. */
static int parse_args(int argc, char **argv, struct logs_opts *o)
{
    struct timespec ts;
    double now;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    *o = (struct logs_opts){.db = LOGS_DEFAULT_DB, .limit = LOGS_DEFAULT_LIMIT};
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i], *v;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            logs_usage(stdout);
            exit(0);
        }
        if (!known_option(opt)) {
            fprintf(stderr, "tokengate logs: unknown option '%s'\n", opt);
            logs_usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tokengate logs: %s needs a value\n", opt);
            return 2;
        }
        v = argv[++i];
        if (strcmp(opt, "--db") == 0) {
            o->db = v;
            o->db_given = 1;
        } else if (strcmp(opt, "--config") == 0) {
            o->config = v;
        } else if (strcmp(opt, "--agent") == 0) {
            o->agent = v;
        } else if (strcmp(opt, "--team") == 0) {
            o->team = v;
        } else if (strcmp(opt, "--department") == 0) {
            o->department = v;
        } else if (strcmp(opt, "--model") == 0) {
            o->model = v;
        } else if (strcmp(opt, "--tier") == 0) {
            o->tier = v;
        } else if (strcmp(opt, "--rule") == 0) {
            o->rule = v;
        } else if (strcmp(opt, "--cache") == 0) {
            if (strcmp(v, "hit") != 0 && strcmp(v, "miss") != 0 && strcmp(v, "bypass") != 0) {
                fprintf(stderr, "tokengate logs: --cache '%s': expected hit, miss or bypass\n", v);
                return 2;
            }
            o->cache = v;
        } else if (strcmp(opt, "--status") == 0) {
            if (parse_status(v, o) != 0) {
                fprintf(stderr,
                        "tokengate logs: --status '%s': expected a code (100 to 599) or a class "
                        "(1xx, 2xx, 3xx, 4xx, 5xx)\n",
                        v);
                return 2;
            }
        } else if (strcmp(opt, "--since") == 0 || strcmp(opt, "--until") == 0) {
            int since = opt[2] == 's';
            if (parse_time(v, now, since ? &o->since : &o->until) != 0) {
                fprintf(stderr, "tokengate logs: %s '%s': expected %s\n", opt, v, time_forms);
                return 2;
            }
            *(since ? &o->has_since : &o->has_until) = 1;
        } else if (strcmp(opt, "--limit") == 0) {
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || n < 1 || n > LOGS_MAX_LIMIT) {
                fprintf(stderr,
                        "tokengate logs: --limit '%s': expected a whole number from 1 to %ld\n", v,
                        LOGS_MAX_LIMIT);
                return 2;
            }
            o->limit = n;
        } else { /* --format */
            if (strcmp(v, "table") == 0)
                o->format = FMT_TABLE;
            else if (strcmp(v, "json") == 0)
                o->format = FMT_JSON;
            else if (strcmp(v, "csv") == 0)
                o->format = FMT_CSV;
            else {
                fprintf(stderr, "tokengate logs: --format '%s': expected table, json or csv\n", v);
                return 2;
            }
        }
    }
    return 0;
}

/* ---- the query --------------------------------------------------------------------------------
 */

/*
 * Prepares the query for o: fixed SQL fragments, every value bound. Returns NULL after saying
 * why.
 */
static sqlite3_stmt *prepare_query(sqlite3 *db, const struct logs_opts *o)
{
    char sql[2048];
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    int i = 1;

    n += (size_t)snprintf(sql + n, sizeof(sql) - n, "SELECT ");
    for (size_t c = 0; c < NCOLS; c++) {
        if (o->schema3 && c >= C_CACHE)
            n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s%s AS %s", c ? ", " : "",
                                  cols[c].kind == K_TEXT ? "NULL" : "0", cols[c].name);
        else
            n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s%s", c ? ", " : "", cols[c].name);
    }
    n += (size_t)snprintf(sql + n, sizeof(sql) - n, " FROM requests WHERE 1");
    if (o->agent)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND agent = ?");
    if (o->team)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND team = ?");
    if (o->department)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND department = ?");
    if (o->model)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND model = ?");
    if (o->tier)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND tier = ?");
    if (o->rule)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND rule = ?");
    if (o->cache)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, o->schema3 ? " AND 0" : " AND cache = ?");
    if (o->status_lo)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND status BETWEEN ? AND ?");
    if (o->has_since)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND ts >= ?");
    if (o->has_until)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND ts < ?");
    snprintf(sql + n, sizeof(sql) - n, " ORDER BY ts DESC, rowid DESC LIMIT ?");

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "tokengate logs: cannot query the ledger: %s\n", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return NULL;
    }
    if (o->agent)
        sqlite3_bind_text(st, i++, o->agent, -1, SQLITE_STATIC);
    if (o->team)
        sqlite3_bind_text(st, i++, o->team, -1, SQLITE_STATIC);
    if (o->department)
        sqlite3_bind_text(st, i++, o->department, -1, SQLITE_STATIC);
    if (o->model)
        sqlite3_bind_text(st, i++, o->model, -1, SQLITE_STATIC);
    if (o->tier)
        sqlite3_bind_text(st, i++, o->tier, -1, SQLITE_STATIC);
    if (o->rule)
        sqlite3_bind_text(st, i++, o->rule, -1, SQLITE_STATIC);
    if (o->cache && !o->schema3)
        sqlite3_bind_text(st, i++, o->cache, -1, SQLITE_STATIC);
    if (o->status_lo) {
        sqlite3_bind_int(st, i++, o->status_lo);
        sqlite3_bind_int(st, i++, o->status_hi);
    }
    if (o->has_since)
        sqlite3_bind_double(st, i++, o->since);
    if (o->has_until)
        sqlite3_bind_double(st, i++, o->until);
    sqlite3_bind_int64(st, i, o->limit);
    return st;
}

/* ---- output ------------------------------------------------------------------------------------
 */

static const char *text_or(sqlite3_stmt *st, int c, const char *none)
{
    const unsigned char *s = sqlite3_column_text(st, c);
    return s ? (const char *)s : none;
}

/* A token count for the table: the provider's, else the gate's own marked "~", else "-". */
static void format_tokens(sqlite3_stmt *st, int usage, int own, char *buf, size_t len)
{
    if (sqlite3_column_type(st, usage) != SQLITE_NULL)
        snprintf(buf, len, "%lld", (long long)sqlite3_column_int64(st, usage));
    else if (sqlite3_column_type(st, own) != SQLITE_NULL)
        snprintf(buf, len, "~%lld", (long long)sqlite3_column_int64(st, own));
    else
        snprintf(buf, len, "-");
}

/* Nano-dollars as dollars to the micro-dollar: 123000 is "$0.000123". */
static void format_cost(int64_t nusd, char *buf, size_t len)
{
    const char *sign = nusd < 0 ? "-" : "";
    uint64_t mag = nusd < 0 ? (uint64_t)0 - (uint64_t)nusd : (uint64_t)nusd;
    uint64_t micro = (mag + 500) / 1000;

    snprintf(buf, len, "%s$%" PRIu64 ".%06" PRIu64, sign, micro / 1000000, micro % 1000000);
}

enum {
    T_TIME,
    T_ID,
    T_AGENT,
    T_TEAM,
    T_MODEL,
    T_SERVED,
    T_TIER,
    T_STATUS,
    T_IN,
    T_OUT,
    T_COST,
    T_LATENCY,
    T_DECISION,
    T_CACHE,
    T_NCOLS
};
static const char *const table_head[T_NCOLS] = {
    "TIME", "ID", "AGENT", "TEAM", "MODEL", "SERVED", "TIER", "STATUS", "IN", "OUT", "COST",
    "LATENCY_MS", "DECISION", "CACHE"};
static const int table_right[T_NCOLS] = {
    [T_STATUS] = 1, [T_IN] = 1, [T_OUT] = 1, [T_COST] = 1, [T_LATENCY] = 1};

/* One row's table cells; the text ones point into the statement's row. */
struct table_row {
    const char *cell[T_NCOLS];
    char time[32], status[16], in[32], out[32], cost[48], latency[32];
};

static void table_cells(sqlite3_stmt *st, struct table_row *r)
{
    gate_iso_time(sqlite3_column_double(st, C_TS), 0, r->time, sizeof(r->time));
    snprintf(r->status, sizeof(r->status), "%d", sqlite3_column_int(st, C_STATUS));
    format_tokens(st, C_IN_USAGE, C_IN_OWN, r->in, sizeof(r->in));
    format_tokens(st, C_OUT_USAGE, C_OUT_OWN, r->out, sizeof(r->out));
    format_cost(sqlite3_column_int64(st, C_COST), r->cost, sizeof(r->cost));
    snprintf(r->latency, sizeof(r->latency), "%lld",
             (long long)((sqlite3_column_int64(st, C_LATENCY) + 500) / 1000));
    r->cell[T_TIME] = r->time;
    r->cell[T_ID] = text_or(st, C_ID, "-");
    r->cell[T_AGENT] = text_or(st, C_AGENT, "-");
    r->cell[T_TEAM] = text_or(st, C_TEAM, "-");
    r->cell[T_MODEL] = text_or(st, C_MODEL, "-");
    r->cell[T_SERVED] = text_or(st, C_SERVED, "-");
    r->cell[T_TIER] = text_or(st, C_TIER, "-");
    r->cell[T_STATUS] = r->status;
    r->cell[T_IN] = r->in;
    r->cell[T_OUT] = r->out;
    r->cell[T_COST] = r->cost;
    r->cell[T_LATENCY] = r->latency;
    r->cell[T_DECISION] = text_or(st, C_DECISION, "-");
    r->cell[T_CACHE] = text_or(st, C_CACHE, "-");
}

/* Display width of a cell as clitext_put writes it: code points, close enough for names and
 * ids. */
static size_t width(const char *s)
{
    return clitext_put(NULL, s);
}

static void put_cell(const char *s, size_t w, int right, int last)
{
    size_t pad = w - width(s);

    if (right)
        printf("%*s", (int)pad, "");
    /* a control character would break the row, or the terminal: escaped */
    clitext_put(stdout, s);
    if (!right && !last)
        printf("%*s", (int)pad, "");
    if (!last)
        fputs("  ", stdout);
}

/* The table: a first pass over the rows for the column widths, a second to print them. */
static int print_table(sqlite3_stmt *st)
{
    size_t w[T_NCOLS];
    struct table_row r;
    int rc;

    for (int c = 0; c < T_NCOLS; c++)
        w[c] = strlen(table_head[c]);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        table_cells(st, &r);
        for (int c = 0; c < T_NCOLS; c++)
            if (width(r.cell[c]) > w[c])
                w[c] = width(r.cell[c]);
    }
    if (rc != SQLITE_DONE)
        return -1;
    sqlite3_reset(st);
    for (int c = 0; c < T_NCOLS; c++)
        put_cell(table_head[c], w[c], table_right[c], c == T_NCOLS - 1);
    putchar('\n');
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        table_cells(st, &r);
        for (int c = 0; c < T_NCOLS; c++)
            put_cell(r.cell[c], w[c], table_right[c], c == T_NCOLS - 1);
        putchar('\n');
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

static int print_json(sqlite3_stmt *st)
{
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        char num[48];
        char *line;

        if (o == NULL)
            return -1;
        for (size_t c = 0; c < NCOLS; c++) {
            int null = sqlite3_column_type(st, (int)c) == SQLITE_NULL;
            switch (cols[c].kind) {
            case K_TS:
                gate_iso_time(sqlite3_column_double(st, (int)c), 1, num, sizeof(num));
                cJSON_AddStringToObject(o, "time", num);
                snprintf(num, sizeof(num), "%.6f", sqlite3_column_double(st, (int)c));
                cJSON_AddRawToObject(o, cols[c].name, num);
                break;
            case K_TEXT:
                if (null)
                    cJSON_AddNullToObject(o, cols[c].name);
                else
                    cJSON_AddStringToObject(o, cols[c].name, text_or(st, (int)c, ""));
                break;
            case K_BOOL:
                cJSON_AddBoolToObject(o, cols[c].name, sqlite3_column_int(st, (int)c) != 0);
                break;
            case K_INT:
            case K_COUNT:
                if (null) {
                    cJSON_AddNullToObject(o, cols[c].name);
                } else {
                    /* raw, so that a 64-bit count is not rounded through a double */
                    snprintf(num, sizeof(num), "%lld", (long long)sqlite3_column_int64(st, (int)c));
                    cJSON_AddRawToObject(o, cols[c].name, num);
                }
                break;
            }
        }
        line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (line == NULL)
            return -1;
        puts(line);
        cJSON_free(line);
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

static int print_csv(sqlite3_stmt *st)
{
    char num[48];
    int rc;

    fputs("time", stdout);
    for (size_t c = 0; c < NCOLS; c++)
        printf(",%s", cols[c].name);
    putchar('\n');
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gate_iso_time(sqlite3_column_double(st, C_TS), 1, num, sizeof(num));
        fputs(num, stdout);
        for (size_t c = 0; c < NCOLS; c++) {
            putchar(',');
            if (sqlite3_column_type(st, (int)c) == SQLITE_NULL)
                continue; /* none: an empty field */
            if (cols[c].kind == K_TS)
                printf("%.6f", sqlite3_column_double(st, (int)c));
            else if (cols[c].kind == K_BOOL)
                fputs(sqlite3_column_int(st, (int)c) ? "true" : "false", stdout);
            else if (cols[c].kind == K_TEXT)
                clitext_csv(stdout, text_or(st, (int)c, "")); /* client text: escaped */
            else
                printf("%lld", (long long)sqlite3_column_int64(st, (int)c));
        }
        putchar('\n');
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

int gate_cmd_logs(int argc, char **argv)
{
    struct logs_opts o;
    char err[1024];
    struct ledger *l;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, status = 1;

    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    struct conf *c = NULL;
    if (o.config != NULL) {
        c = conf_load(o.config, err, sizeof(err));
        if (c == NULL) {
            fprintf(stderr, "tokengate logs: invalid config: %s\n", err);
            return 1;
        }
        if (!o.db_given && c->ledger_path == NULL) {
            fprintf(stderr, "tokengate logs: %s configures no ledger\n", o.config);
            conf_unref(c);
            return 1;
        }
        if (!o.db_given)
            o.db = c->ledger_path;
    }
    /* the ledger module checks that the file is a ledger of a schema this build reads */
    l = ledger_open_readonly(o.db, err, sizeof(err));
    if (l == NULL) {
        fprintf(stderr, "tokengate logs: %s\n", err);
        conf_unref(c);
        return 1;
    }
    ledger_close(l);
    if (sqlite3_open_v2(o.db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "tokengate logs: cannot open ledger database %s: %s\n", o.db,
                db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    {
        sqlite3_stmt *v = NULL;
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &v, NULL) == SQLITE_OK &&
            sqlite3_step(v) == SQLITE_ROW)
            o.schema3 = sqlite3_column_int(v, 0) < 4;
        sqlite3_finalize(v);
    }
    st = prepare_query(db, &o);
    if (st == NULL)
        goto out;
    /* one read transaction: the table's two passes see the same rows */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto dberr;
    if (o.format == FMT_TABLE)
        rc = print_table(st);
    else if (o.format == FMT_JSON)
        rc = print_json(st);
    else
        rc = print_csv(st);
    if (rc != 0)
        goto dberr;
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    if (status != 0)
        fprintf(stderr, "tokengate logs: writing the output failed: %s\n", strerror(errno));
    goto out;
dberr:
    fprintf(stderr, "tokengate logs: reading the ledger %s: %s\n", o.db, sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    conf_unref(c);
    return status;
}
