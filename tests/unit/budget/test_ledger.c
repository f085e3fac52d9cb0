/*
 * Unit tests for gate/ledger: records from many threads all land, done callbacks run after
 * the commit, spend per agent, keys, budgets and resets, and the database file itself (mode,
 * WAL, what a missing file or directory says). Each test works in a fresh temporary directory;
 * what landed is checked with SQLite directly, as an operator would.
 */
#include <check.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gate/budget/ledger.h"
#include "run_suite.h"
#include "tmpdb.h"

static void setup(void)
{
    tmpdb_make("ledger");
}

static struct ledger *open_rw(void)
{
    char err[512] = "";
    struct ledger *l = ledger_open(tmpdb_path, LEDGER_SYNC_NORMAL, err, sizeof(err));

    ck_assert_msg(l != NULL, "ledger_open: %s", err);
    return l;
}

static struct ledger_rec rec_for(const char *agent, double ts, int64_t tokens, int64_t nusd)
{
    return (struct ledger_rec){.ts = ts,
                               .id = "req",
                               .agent = agent,
                               .team = "t",
                               .endpoint = "/v1/chat/completions",
                               .model = "m",
                               .status = 200,
                               .in_own = -1,
                               .out_own = -1,
                               .in_usage = 1,
                               .out_usage = 2,
                               .tokens_charged = tokens,
                               .cost_nusd = nusd,
                               .decision = "admitted"};
}

/* ---- the writer --------------------------------------------------------------------------------
 */

#define NTHREADS 8
#define PER_THREAD 2000

struct submitter {
    struct ledger *l;
    int n;
    int refused;
};

static void *submit_many(void *arg)
{
    struct submitter *s = arg;
    char id[32], agent[16];

    snprintf(agent, sizeof(agent), "agent%d", s->n);
    for (int i = 0; i < PER_THREAD; i++) {
        struct ledger_rec r = rec_for(agent, 1000 + i, 3, 5);
        snprintf(id, sizeof(id), "t%d-%d", s->n, i);
        r.id = id; /* copied by ledger_submit: reused at once */
        if (ledger_submit(s->l, &r) != 0)
            s->refused++;
    }
    return NULL;
}

START_TEST(concurrent_submits_all_land)
{
    struct ledger *l = open_rw();
    pthread_t th[NTHREADS];
    struct submitter s[NTHREADS];

    for (int i = 0; i < NTHREADS; i++) {
        s[i] = (struct submitter){.l = l, .n = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, submit_many, &s[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(s[i].refused, 0);
    }
    ledger_close(l);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(*) FROM requests"), NTHREADS * PER_THREAD);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(DISTINCT id) FROM requests"), NTHREADS * PER_THREAD);
    ck_assert_int_eq(tmpdb_query_int("SELECT SUM(tokens_charged) FROM requests"),
                     3 * NTHREADS * PER_THREAD);
    ck_assert_int_eq(tmpdb_query_int("SELECT SUM(cost_nusd) FROM requests"), 5 * NTHREADS * PER_THREAD);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(DISTINCT agent) FROM requests"), NTHREADS);
}
END_TEST

/* What a done callback saw: the row already visible to another, read-only connection. */
struct seen {
    pthread_mutex_t mu;
    int calls, ok, visible;
};

static void count_visible(void *arg, const char *agent, int64_t tokens, int64_t nusd)
{
    *(int64_t *)arg += tokens;
}

static void done_check(void *arg, int ok)
{
    struct seen *s = arg;
    char err[512];
    struct ledger *ro = ledger_open_readonly(tmpdb_path, err, sizeof(err));
    int64_t tokens = 0;

    if (ro != NULL)
        ledger_spend_since(ro, 0, count_visible, &tokens);
    ledger_close(ro);
    pthread_mutex_lock(&s->mu);
    s->calls++;
    s->ok += ok;
    s->visible += tokens >= 7; /* this record's 7 tokens are in what the reader sums */
    pthread_mutex_unlock(&s->mu);
}

START_TEST(done_runs_after_commit)
{
    struct ledger *l = open_rw();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct ledger_rec r = rec_for("ann", 50, 7, 1);

    r.done = done_check;
    r.arg = &s;
    ck_assert_int_eq(ledger_submit(l, &r), 0);
    for (int i = 0; i < 500 && ledger_pending(l) > 0; i++)
        usleep(10000);
    ck_assert_uint_eq(ledger_pending(l), 0);
    pthread_mutex_lock(&s.mu);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.ok, 1);
    ck_assert_int_eq(s.visible, 1);
    pthread_mutex_unlock(&s.mu);
    ck_assert_uint_eq(ledger_failed(l), 0);
    ledger_close(l);
}
END_TEST

static void count_done(void *arg, int ok)
{
    /* called on the one writer thread only */
    *(int *)arg += ok;
}

START_TEST(close_drains_the_queue)
{
    struct ledger *l = open_rw();
    int done_ok = 0;

    for (int i = 0; i < 5000; i++) {
        struct ledger_rec r = rec_for("q", i, 1, 1);
        r.done = count_done;
        r.arg = &done_ok;
        ck_assert_int_eq(ledger_submit(l, &r), 0);
    }
    ledger_close(l);
    ck_assert_int_eq(done_ok, 5000);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(*) FROM requests"), 5000);
}
END_TEST

/* ---- the ledger failing ------------------------------------------------------------------ */

/* A connection of the test's own holding the write lock, as another process would. */
static sqlite3 *lock_it(void)
{
    sqlite3 *db;

    ck_assert_int_eq(sqlite3_open(tmpdb_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void wait_failing(struct ledger *l, int want)
{
    for (int i = 0; i < 1000 && ledger_failing(l) != want; i++)
        usleep(10000);
    ck_assert_int_eq(ledger_failing(l), want);
}

struct alerts {
    pthread_mutex_t mu;
    int failing, recovered;
    char why[200];
};

static void on_alert(void *arg, int failing, const char *why, uint64_t pending)
{
    struct alerts *a = arg;

    pthread_mutex_lock(&a->mu);
    if (failing) {
        a->failing++;
        snprintf(a->why, sizeof(a->why), "%s", why);
    } else {
        a->recovered++;
    }
    pthread_mutex_unlock(&a->mu);
}

/* Locked: the records are kept (past the memory cap, in the spill file), the waiters let go
 * at once, the alert said twice; released: every record lands once, the spill file is gone. */
START_TEST(locked_keeps_every_record_and_spills_past_the_cap)
{
    const int n = 20000; /* past LEDGER_RETRY_CAP (16,384) */
    struct ledger *l = open_rw();
    struct alerts a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    char spill[400], why[200];
    int done_calls = 0;
    sqlite3 *holder;

    ledger_set_alert(l, on_alert, &a);
    holder = lock_it();
    struct ledger_rec first = rec_for("z", 1, 1, 1);
    first.done = count_done; /* counts ok: 0 when let go without the commit */
    first.arg = &done_calls;
    ck_assert_int_eq(ledger_submit(l, &first), 0);
    wait_failing(l, 1);
    ledger_why(l, why, sizeof(why));
    ck_assert_msg(strstr(why, "database is locked") != NULL, "%s", why);
    ck_assert_uint_eq(ledger_pending(l), 1);
    for (int i = 1; i < n; i++) {
        struct ledger_rec r = rec_for("z", 1 + i, 1, 1);
        char id[32];
        snprintf(id, sizeof(id), "s%d", i);
        r.id = id;
        ck_assert_int_eq(ledger_submit(l, &r), 0);
    }
    snprintf(spill, sizeof(spill), "%s.spill", tmpdb_path);
    /* the writer takes what was queued and spills all but the newest 16,384 */
    /* the two counters move one after the other: wait for both */
    for (int i = 0; i < 1000 && (ledger_spilled(l) + 16384 < (uint64_t)n ||
                                 ledger_pending(l) != 16384); i++)
        usleep(10000);
    ck_assert_uint_eq(ledger_spilled(l), n - 16384);
    ck_assert_uint_eq(ledger_pending(l), 16384);
    ck_assert_int_eq(access(spill, F_OK), 0);
    ck_assert_int_eq(done_calls, 0);

    ck_assert_int_eq(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    wait_failing(l, 0);
    for (int i = 0; i < 1000 && (ledger_pending(l) > 0 || ledger_spilled(l) > 0); i++)
        usleep(10000);
    ck_assert_uint_eq(ledger_pending(l), 0);
    ck_assert_uint_eq(ledger_spilled(l), 0);
    ck_assert_int_eq(access(spill, F_OK), -1);
    pthread_mutex_lock(&a.mu);
    ck_assert_int_eq(a.failing, 1);
    ck_assert_int_eq(a.recovered, 1);
    ck_assert_msg(strstr(a.why, "database is locked") != NULL, "%s", a.why);
    pthread_mutex_unlock(&a.mu);
    ledger_close(l);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(*) FROM requests"), n);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(DISTINCT ts) FROM requests"), n);
    ck_assert_int_eq(tmpdb_query_int("SELECT SUM(tokens_charged) FROM requests"), n);
}
END_TEST

START_TEST(null_strings_and_none_round_trip)
{
    struct ledger *l = open_rw();
    struct ledger_rec r = {
        .ts = 12.5, .status = 401, .in_own = -1, .out_own = -1, .in_usage = -1, .out_usage = -1};
    sqlite3 *db;
    sqlite3_stmt *st;

    ck_assert_int_eq(ledger_submit(l, &r), 0);
    ledger_close(l);
    ck_assert_int_eq(sqlite3_open_v2(tmpdb_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT ts, id, key_id, agent, team, department,"
                                        " endpoint, model, served_model, provider, decision,"
                                        " error, in_own, out_own, in_usage, out_usage, status,"
                                        " cost_nusd FROM requests",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_double_eq(sqlite3_column_double(st, 0), 12.5);
    for (int c = 1; c <= 15; c++)
        ck_assert_msg(sqlite3_column_type(st, c) == SQLITE_NULL, "column %s is not NULL",
                      sqlite3_column_name(st, c));
    ck_assert_int_eq(sqlite3_column_int(st, 16), 401);
    ck_assert_int_eq(sqlite3_column_int(st, 17), 0);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}
END_TEST

/* ---- spend -------------------------------------------------------------------------------------
 */

struct spend {
    int n;
    char agent[4][16];
    int64_t tokens[4], nusd[4];
};

static void collect_spend(void *arg, const char *agent, int64_t tokens, int64_t nusd)
{
    struct spend *s = arg;

    ck_assert_int_lt(s->n, 4);
    snprintf(s->agent[s->n], sizeof(s->agent[0]), "%s", agent);
    s->tokens[s->n] = tokens;
    s->nusd[s->n] = nusd;
    s->n++;
}

static int find_agent(const struct spend *s, const char *agent)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->agent[i], agent) == 0)
            return i;
    return -1;
}

START_TEST(spend_since_sums_per_agent)
{
    struct ledger *l = open_rw();
    struct ledger_rec recs[] = {
        rec_for("a", 100, 10, 1000), rec_for("a", 200, 20, 2000),
        rec_for("b", 200, 5, 50),    rec_for("b", 99, 1000, 1000), /* before since */
        rec_for(NULL, 300, 77, 77),                                /* no agent */
        rec_for("c", 300, 0, 0),                                   /* nothing charged */
    };
    struct spend s = {0};
    int i;

    for (size_t k = 0; k < sizeof(recs) / sizeof(recs[0]); k++)
        ck_assert_int_eq(ledger_submit(l, &recs[k]), 0);
    while (ledger_pending(l) > 0)
        usleep(1000);
    ck_assert_int_eq(ledger_spend_since(l, 100, collect_spend, &s), 0);
    ck_assert_int_eq(s.n, 2);
    i = find_agent(&s, "a");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(s.tokens[i], 30);
    ck_assert_int_eq(s.nusd[i], 3000);
    i = find_agent(&s, "b");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(s.tokens[i], 5);
    ck_assert_int_eq(s.nusd[i], 50);

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(ledger_spend_since(l, 201, collect_spend, &s), 0);
    ck_assert_int_eq(s.n, 0);
    ledger_close(l);
}
END_TEST

/* ---- keys, budgets, resets ---------------------------------------------------------------------
 */

struct keys_seen {
    int n;
    char id[4][32], hash[4][80], agent[4][16];
    double created[4], revoked[4];
};

static void collect_key(void *arg, const struct ledger_key *k)
{
    struct keys_seen *s = arg;

    ck_assert_int_lt(s->n, 4);
    snprintf(s->id[s->n], sizeof(s->id[0]), "%s", k->id);
    snprintf(s->hash[s->n], sizeof(s->hash[0]), "%s", k->hash_hex);
    snprintf(s->agent[s->n], sizeof(s->agent[0]), "%s", k->agent);
    s->created[s->n] = k->created;
    s->revoked[s->n] = k->revoked;
    s->n++;
}

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

START_TEST(keys_insert_load_revoke)
{
    struct ledger *l = open_rw();
    struct ledger_key a = {
        .id = "key_000000000001", .hash_hex = HASH_A, .agent = "alice", .created = 1000};
    struct ledger_key b = {
        .id = "key_000000000002", .hash_hex = HASH_B, .agent = "bob", .created = 2000};
    struct ledger_key dup = {
        .id = "key_000000000003", .hash_hex = HASH_A, .agent = "eve", .created = 3000};
    struct keys_seen s = {0};

    ck_assert_int_eq(ledger_key_insert(l, &a), 0);
    ck_assert_int_eq(ledger_key_insert(l, &b), 0);
    ck_assert_int_eq(ledger_key_insert(l, &dup), -1); /* the same secret twice */
    ck_assert_int_eq(ledger_key_revoke(l, "key_000000000002", 2500), 0);
    ck_assert_int_eq(ledger_key_revoke(l, "key_nosuchkey000", 2500), 1);
    ledger_close(l);

    /* a restart sees them */
    l = open_rw();
    ck_assert_int_eq(ledger_keys_load(l, collect_key, &s), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.id[0], "key_000000000001");
    ck_assert_str_eq(s.hash[0], HASH_A);
    ck_assert_str_eq(s.agent[0], "alice");
    ck_assert_double_eq(s.created[0], 1000);
    ck_assert_double_eq(s.revoked[0], 0);
    ck_assert_str_eq(s.id[1], "key_000000000002");
    ck_assert_double_eq(s.revoked[1], 2500);
    ledger_close(l);
}
END_TEST

struct budgets_seen {
    int n;
    char scope[4][32], window[4][16];
    int64_t tokens[4], nusd[4];
};

static void collect_budget(void *arg, const char *scope, const char *window, int64_t tokens,
                           int64_t nusd)
{
    struct budgets_seen *s = arg;

    ck_assert_int_lt(s->n, 4);
    snprintf(s->scope[s->n], sizeof(s->scope[0]), "%s", scope);
    snprintf(s->window[s->n], sizeof(s->window[0]), "%s", window);
    s->tokens[s->n] = tokens;
    s->nusd[s->n] = nusd;
    s->n++;
}

START_TEST(budget_set_twice_keeps_the_last)
{
    struct ledger *l = open_rw();
    struct budgets_seen s = {0};

    ck_assert_int_eq(ledger_budget_set(l, "team:search", "day", 1000, 5000000), 0);
    ck_assert_int_eq(ledger_budget_set(l, "team:search", "month", 9, 9), 0);
    ck_assert_int_eq(ledger_budget_set(l, "team:search", "day", 2000, -1), 0);
    ck_assert_int_eq(ledger_budgets_load(l, collect_budget, &s), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.scope[0], "team:search");
    ck_assert_str_eq(s.window[0], "day");
    ck_assert_int_eq(s.tokens[0], 2000);
    ck_assert_int_eq(s.nusd[0], -1); /* none */
    ck_assert_str_eq(s.window[1], "month");
    ck_assert_int_eq(s.tokens[1], 9);
    ledger_close(l);
}
END_TEST

struct resets_seen {
    int n;
    char scope[4][32], window[4][16];
    double t[4];
};

static void collect_reset(void *arg, const char *scope, const char *window, double t)
{
    struct resets_seen *s = arg;

    ck_assert_int_lt(s->n, 4);
    snprintf(s->scope[s->n], sizeof(s->scope[0]), "%s", scope);
    snprintf(s->window[s->n], sizeof(s->window[0]), "%s", window);
    s->t[s->n] = t;
    s->n++;
}

START_TEST(resets_load)
{
    struct ledger *l = open_rw();
    struct resets_seen s = {0};
    char err[512];

    ck_assert_int_eq(ledger_reset_add(l, "agent:a", "day", 1700000000.5), 0);
    ck_assert_int_eq(ledger_reset_add(l, "team:x", "week", 1700000100), 0);
    ledger_close(l);
    l = ledger_open_readonly(tmpdb_path, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    ck_assert_int_eq(ledger_resets_load(l, collect_reset, &s), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.scope[0], "agent:a");
    ck_assert_str_eq(s.window[0], "day");
    ck_assert_double_eq(s.t[0], 1700000000.5);
    ck_assert_str_eq(s.scope[1], "team:x");
    ck_assert_str_eq(s.window[1], "week");
    ledger_close(l);
}
END_TEST

/* ---- the file ----------------------------------------------------------------------------------
 */

START_TEST(file_is_private_and_wal)
{
    struct ledger *l = open_rw();
    struct ledger_rec r = rec_for("a", 1, 1, 1);
    struct stat sb;
    char wal[320];

    ck_assert_int_eq(ledger_submit(l, &r), 0);
    while (ledger_pending(l) > 0)
        usleep(1000);
    ck_assert_int_eq(stat(tmpdb_path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", tmpdb_path);
    ck_assert_int_eq(stat(wal, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ledger_close(l);

    sqlite3 *db;
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_open_v2(tmpdb_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    ck_assert_int_eq(tmpdb_query_int("PRAGMA user_version"), 4);
}
END_TEST

START_TEST(missing_directory_is_a_clear_error)
{
    char err[512] = "", path[400];

    snprintf(path, sizeof(path), "%s/nope/ledger.db", tmpdb_dir);
    ck_assert_ptr_null(ledger_open(path, LEDGER_SYNC_FULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, path) != NULL, "err names the path: %s", err);
    ck_assert_msg(strstr(err, "No such file or directory") != NULL, "err says why: %s", err);
}
END_TEST

START_TEST(readonly_missing_file_fails)
{
    char err[512] = "";

    ck_assert_ptr_null(ledger_open_readonly(tmpdb_path, err, sizeof(err)));
    ck_assert_msg(strstr(err, tmpdb_path) != NULL, "err names the path: %s", err);
    ck_assert_msg(strstr(err, "No such file or directory") != NULL, "err says why: %s", err);
    ck_assert_int_eq(access(tmpdb_path, F_OK), -1); /* and did not create it */
}
END_TEST

START_TEST(readonly_refuses_submit)
{
    struct ledger *l = open_rw();
    struct ledger_rec r = rec_for("a", 1, 1, 1);
    char err[512];

    ledger_close(l);
    l = ledger_open_readonly(tmpdb_path, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    ck_assert_int_eq(ledger_submit(l, &r), -1);
    ledger_close(l);
}
END_TEST

START_TEST(readonly_refuses_a_file_that_is_not_a_ledger)
{
    char err[512] = "";
    FILE *f = fopen(tmpdb_path, "w");

    ck_assert_ptr_nonnull(f);
    fputs("not a database, just text that is long enough to look at\n", f);
    fclose(f);
    ck_assert_ptr_null(ledger_open_readonly(tmpdb_path, err, sizeof(err)));
    ck_assert_msg(strstr(err, "not a tokengate ledger") != NULL, "%s", err);
}
END_TEST

/* ---- schema 4: the caches and savings ------------------------------------------------------
 */

/* A ledger as a gate of schema 3 left it: its tables, one request, user_version 3. */
static void make_schema3(void)
{
    sqlite3 *db;
    static const char sql[] =
        "CREATE TABLE requests ("
        " ts REAL NOT NULL, id TEXT, key_id TEXT, agent TEXT, team TEXT, department TEXT,"
        " endpoint TEXT, model TEXT, served_model TEXT, provider TEXT,"
        " status INTEGER NOT NULL, stream INTEGER NOT NULL,"
        " in_own INTEGER, out_own INTEGER, in_usage INTEGER, out_usage INTEGER,"
        " cached INTEGER NOT NULL, cache_write INTEGER NOT NULL,"
        " tokens_charged INTEGER NOT NULL, cost_nusd INTEGER NOT NULL,"
        " reserved_tokens INTEGER NOT NULL, latency_us INTEGER NOT NULL,"
        " decision TEXT, error TEXT, rule TEXT, tier TEXT, attempts TEXT, translation TEXT);"
        "CREATE TABLE keys (id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, agent TEXT,"
        " created REAL NOT NULL, revoked REAL);"
        "CREATE TABLE budgets (scope TEXT NOT NULL, \"window\" TEXT NOT NULL, tokens INTEGER,"
        " nusd INTEGER, updated REAL NOT NULL, PRIMARY KEY(scope, \"window\"));"
        "CREATE TABLE resets (scope TEXT NOT NULL, \"window\" TEXT NOT NULL, t REAL NOT NULL);"
        "CREATE TABLE scopes (level TEXT NOT NULL, name TEXT NOT NULL, parent TEXT NOT NULL,"
        " created REAL NOT NULL, PRIMARY KEY(level, name));"
        "INSERT INTO requests VALUES (7, 'old', NULL, 'a', 't', NULL, '/v1/chat/completions',"
        " 'm', 'm', 'p', 200, 0, 10, 5, 10, 5, 0, 0, 15, 300, 20, 1000, 'admitted', NULL,"
        " 'r', 'low', NULL, NULL);"
        "PRAGMA user_version = 3;";

    ck_assert_int_eq(sqlite3_open(tmpdb_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static struct ledger_rec rec_saving(void)
{
    struct ledger_rec r = rec_for("a", 9, 0, 0);

    r.id = "hit";
    r.cache = "hit";
    r.saved_tokens = 1234;
    r.saved_nusd = 5678;
    r.prompt_saved_nusd = -42; /* a write's premium over the reads it saved */
    r.route_saved_nusd = 999;
    r.cache_write_1h = 77;
    return r;
}

/* The savings columns of the request with id, as "cache,saved_tokens,..." */
static void check_savings(const char *id, const char *want)
{
    char sql[400];

    snprintf(sql, sizeof(sql),
             "SELECT (CASE WHEN cache IS NULL THEN 'NULL' ELSE cache END) || ',' || saved_tokens"
             " || ',' || saved_nusd || ',' || prompt_saved_nusd || ',' || route_saved_nusd || ','"
             " || cache_write_1h = '%s' FROM requests WHERE id = '%s'",
             want, id);
    ck_assert_msg(tmpdb_query_int(sql) == 1, "request %s: not %s", id, want);
}

START_TEST(schema3_gains_the_savings_columns)
{
    char err[512];
    struct ledger *l;

    make_schema3();
    /* read-only, as the CLI opens it: an older ledger is still read */
    l = ledger_open_readonly(tmpdb_path, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    ledger_close(l);
    ck_assert_int_eq(tmpdb_query_int("PRAGMA user_version"), 3);

    l = open_rw();
    struct ledger_rec r = rec_saving();
    ck_assert_int_eq(ledger_submit(l, &r), 0);
    ledger_close(l);
    ck_assert_int_eq(tmpdb_query_int("PRAGMA user_version"), 4);
    /* the old row keeps its figures and has no savings; the new one has its own */
    ck_assert_int_eq(tmpdb_query_int("SELECT cost_nusd FROM requests WHERE id = 'old'"), 300);
    check_savings("old", "NULL,0,0,0,0,0");
    check_savings("hit", "hit,1234,5678,-42,999,77");
    /* opened again: nothing to add, nothing lost */
    l = open_rw();
    ledger_close(l);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(*) FROM requests"), 2);
}
END_TEST

START_TEST(savings_cross_the_spill_file)
{
    struct ledger *l = open_rw();
    sqlite3 *holder = lock_it();
    struct ledger_rec r = rec_saving();
    char spill[400];

    ck_assert_int_eq(ledger_submit(l, &r), 0);
    wait_failing(l, 1);
    ledger_close(l); /* still locked: kept in the spill file */
    snprintf(spill, sizeof(spill), "%s.spill", tmpdb_path);
    ck_assert_int_eq(access(spill, F_OK), 0);
    ck_assert_int_eq(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    l = open_rw(); /* writes the spill file into the database */
    ledger_close(l);
    ck_assert_int_eq(access(spill, F_OK), -1);
    check_savings("hit", "hit,1234,5678,-42,999,77");
}
END_TEST

static Suite *ledger_suite(void)
{
    Suite *s = suite_create("ledger");
    TCase *tc = tcase_create("ledger");

    tcase_add_checked_fixture(tc, setup, tmpdb_remove);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, concurrent_submits_all_land);
    tcase_add_test(tc, done_runs_after_commit);
    tcase_add_test(tc, close_drains_the_queue);
    tcase_add_test(tc, locked_keeps_every_record_and_spills_past_the_cap);
    tcase_add_test(tc, null_strings_and_none_round_trip);
    tcase_add_test(tc, spend_since_sums_per_agent);
    tcase_add_test(tc, keys_insert_load_revoke);
    tcase_add_test(tc, budget_set_twice_keeps_the_last);
    tcase_add_test(tc, resets_load);
    tcase_add_test(tc, file_is_private_and_wal);
    tcase_add_test(tc, missing_directory_is_a_clear_error);
    tcase_add_test(tc, readonly_missing_file_fails);
    tcase_add_test(tc, readonly_refuses_submit);
    tcase_add_test(tc, readonly_refuses_a_file_that_is_not_a_ledger);
    tcase_add_test(tc, schema3_gains_the_savings_columns);
    tcase_add_test(tc, savings_cross_the_spill_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(ledger_suite());
}
