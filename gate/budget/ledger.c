/*
 * ledger: opening the database, queueing records for the writer, closing. See ledger.h; the
 * writer thread is in ledgerw.c, the synchronous calls in ledgeradmin.c.
 */
#include "gate/budget/ledger-int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * The schema, version 1. A value that the API calls "none" (-1 for a count or limit, 0 for a
 * revocation time, NULL for a string) is stored as SQL NULL, and read back as the API's "none":
 *   requests.in_own, out_own, in_usage, out_usage   -1 <-> NULL
 *   budgets.tokens, nusd                             -1 <-> NULL
 *   keys.revoked                                      0 <-> NULL
 * Every other number is stored as given. "window" is quoted: SQLite knows it as a keyword.
 */
#define LEDGER_SCHEMA_VERSION 4

/* the shortest time between the starts of two transactions of the writer */
#define LEDGER_GATHER_NS 200000
static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS requests ("
    " ts REAL NOT NULL, id TEXT, key_id TEXT, agent TEXT, team TEXT, department TEXT,"
    " endpoint TEXT, model TEXT, served_model TEXT, provider TEXT,"
    " status INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " in_own INTEGER, out_own INTEGER, in_usage INTEGER, out_usage INTEGER,"
    " cached INTEGER NOT NULL, cache_write INTEGER NOT NULL,"
    " tokens_charged INTEGER NOT NULL, cost_nusd INTEGER NOT NULL,"
    " reserved_tokens INTEGER NOT NULL, latency_us INTEGER NOT NULL,"
    " decision TEXT, error TEXT);"
    "CREATE INDEX IF NOT EXISTS requests_ts ON requests(ts);"
    "CREATE INDEX IF NOT EXISTS requests_agent_ts ON requests(agent, ts);"
    "CREATE TABLE IF NOT EXISTS keys ("
    " id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, agent TEXT, created REAL NOT NULL,"
    " revoked REAL);"
    "CREATE TABLE IF NOT EXISTS budgets ("
    " scope TEXT NOT NULL, \"window\" TEXT NOT NULL, tokens INTEGER, nusd INTEGER,"
    " updated REAL NOT NULL, PRIMARY KEY(scope, \"window\"));"
    "CREATE TABLE IF NOT EXISTS resets ("
    " scope TEXT NOT NULL, \"window\" TEXT NOT NULL, t REAL NOT NULL);";

/* Version 2: scopes added through the admin API (level, name, parent as "team:search"). */
static const char schema_v2[] =
    "CREATE TABLE IF NOT EXISTS scopes ("
    " level TEXT NOT NULL, name TEXT NOT NULL, parent TEXT NOT NULL, created REAL NOT NULL,"
    " PRIMARY KEY(level, name));";

/* Version 3: routing, on each request (the rule, the tier, the attempts given up, the
 * translation). */
static const char schema_v3[] =
    "ALTER TABLE requests ADD COLUMN rule TEXT;"
    "ALTER TABLE requests ADD COLUMN tier TEXT;"
    "ALTER TABLE requests ADD COLUMN attempts TEXT;"
    "ALTER TABLE requests ADD COLUMN translation TEXT;";

/* Version 4: caches and savings, on each request (see struct ledger_rec). */
static const char schema_v4[] =
    "ALTER TABLE requests ADD COLUMN cache TEXT;"
    "ALTER TABLE requests ADD COLUMN saved_tokens INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE requests ADD COLUMN saved_nusd INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE requests ADD COLUMN prompt_saved_nusd INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE requests ADD COLUMN route_saved_nusd INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE requests ADD COLUMN cache_write_1h INTEGER NOT NULL DEFAULT 0;";

const char ledger_insert_sql[] =
    "INSERT INTO requests (ts, id, key_id, agent, team, department, endpoint, model,"
    " served_model, provider, status, stream, in_own, out_own, in_usage, out_usage, cached,"
    " cache_write, tokens_charged, cost_nusd, reserved_tokens, latency_us, decision, error,"
    " rule, tier, attempts, translation, cache, saved_tokens, saved_nusd, prompt_saved_nusd,"
    " route_saved_nusd, cache_write_1h)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

/* ---- opening --------------------------------------------------------------------------------- */

/* Runs sql on db; on failure puts what was being done and SQLite's reason in err. */
static int exec(sqlite3 *db, const char *sql, const char *doing, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s: %s", doing, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Opens one connection to path with flags, with a busy timeout of busy_ms. Returns NULL with a
 * reason in err.
 */
static sqlite3 *db_connect(const char *path, int flags, int busy_ms, char *err,
                           size_t errlen)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open ledger database %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_ms);
    return db;
}

/*
 * Brings the schema of a writable connection to LEDGER_SCHEMA_VERSION. The IMMEDIATE
 * transaction keeps two processes opening a fresh file at once from both creating it.
 */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int v;

    if (exec(db, "BEGIN IMMEDIATE", "ledger: starting the schema check", err, errlen) != 0)
        return -1;
    if (user_version(db, &v) != 0) {
        snprintf(err, errlen, "ledger: cannot read the schema version of %s: %s", path,
                 sqlite3_errmsg(db));
        goto fail;
    }
    if (v > LEDGER_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "ledger %s has schema version %d, newer than this tokengate knows (%d)", path, v,
                 LEDGER_SCHEMA_VERSION);
        goto fail;
    }
    if (v < 1) {
        if (exec(db, schema_v1, "ledger: creating the schema", err, errlen) != 0)
            goto fail;
    }
    if (v < 2) {
        if (exec(db, schema_v2, "ledger: adding the scopes table", err, errlen) != 0)
            goto fail;
    }
    if (v < 3) {
        if (exec(db, schema_v3, "ledger: adding the routing columns", err, errlen) != 0)
            goto fail;
    }
    if (v < 4) {
        if (exec(db, schema_v4, "ledger: adding the cache and savings columns", err, errlen) != 0)
            goto fail;
    }
    if (v != LEDGER_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LEDGER_SCHEMA_VERSION);
        if (exec(db, sql, "ledger: setting the schema version", err, errlen) != 0)
            goto fail;
    }
    return exec(db, "COMMIT", "ledger: committing the schema", err, errlen);
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int set_pragmas(sqlite3 *db, enum ledger_sync sync, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int wal = 0;

    /* journal_mode answers with the mode in force: a file system without shared memory may
     * refuse WAL, and the ledger then must not pretend to have it */
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
    }
    sqlite3_finalize(st);
    if (!wal) {
        snprintf(err, errlen, "ledger: cannot switch to WAL mode: %s", sqlite3_errmsg(db));
        return -1;
    }
    return exec(
        db, sync == LEDGER_SYNC_FULL ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
        "ledger: setting synchronous", err, errlen);
}

/* Creates the file 0600 when it does not exist, so that SQLite (and its -wal and -shm files,
 * which take the database file's mode) never make it readable to others. */
static int create_private(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        snprintf(err, errlen, "cannot create ledger database %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static struct ledger *ledger_alloc(const char *path)
{
    struct ledger *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->path = strdup(path);
    if (l->path == NULL) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->amu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->retry_tail = &l->retry;
    return l;
}

void ledger_db_close(struct ledger *l)
{
    sqlite3_finalize(l->insert);
    l->insert = NULL;
    sqlite3_close(l->wdb);
    l->wdb = NULL;
    sqlite3_close(l->adb);
    l->adb = NULL;
}

/* Frees what ledger_alloc and the open functions made; the writer thread must not be running. */
static void ledger_free(struct ledger *l)
{
    ledger_db_close(l);
    while (l->retry != NULL) {
        struct qrec *next = l->retry->next;
        free(l->retry);
        l->retry = next;
    }
    pthread_mutex_destroy(&l->amu);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->path);
    free(l);
}

int ledger_db_open(struct ledger *l, char *err, size_t errlen)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    struct stat sb;

    if (create_private(l->path, err, errlen) != 0)
        return -1;
    /* the schema is made where a lock may be waited for; the writer then waits little */
    l->wdb = db_connect(l->path, flags, LEDGER_BUSY_MS, err, errlen);
    if (l->wdb == NULL || set_pragmas(l->wdb, l->sync, err, errlen) != 0 ||
        migrate(l->wdb, l->path, err, errlen) != 0)
        goto fail;
    sqlite3_busy_timeout(l->wdb, LEDGER_WRITER_BUSY_MS);
    if (sqlite3_prepare_v3(l->wdb, ledger_insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &l->insert,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "ledger: preparing the insert: %s", sqlite3_errmsg(l->wdb));
        goto fail;
    }
    l->adb = db_connect(l->path, flags, LEDGER_BUSY_MS, err, errlen);
    if (l->adb == NULL || set_pragmas(l->adb, l->sync, err, errlen) != 0)
        goto fail;
    if (stat(l->path, &sb) != 0) {
        snprintf(err, errlen, "ledger: %s: %s", l->path, strerror(errno));
        goto fail;
    }
    l->dev = sb.st_dev;
    l->ino = sb.st_ino;
    return 0;
fail:
    ledger_db_close(l);
    return -1;
}

struct ledger *ledger_open(const char *path, enum ledger_sync sync, char *err, size_t errlen)
{
    struct ledger *l = ledger_alloc(path);

    if (l == NULL) {
        snprintf(err, errlen, "ledger: out of memory");
        return NULL;
    }
    l->sync = sync;
    l->writable = 1;
    if (ledger_db_open(l, err, errlen) != 0)
        goto fail;
    /* the records a failing ledger kept in its spill file when the last gate stopped */
    if (ledger_spill_replay(l) < 0) {
        snprintf(err, errlen, "ledger: cannot write the records of its spill file %s.spill",
                 path);
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, ledger_writer, l) != 0) {
        snprintf(err, errlen, "ledger: cannot start the writer thread");
        goto fail;
    }
    return l;
fail:
    ledger_free(l);
    return NULL;
}

struct ledger *ledger_open_readonly(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    struct ledger *l;
    int v;

    /* SQLite would only say "unable to open database file" */
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "cannot open ledger database %s: %s", path, strerror(errno));
        return NULL;
    }
    l = ledger_alloc(path);
    if (l == NULL) {
        snprintf(err, errlen, "ledger: out of memory");
        return NULL;
    }
    l->adb = db_connect(path, SQLITE_OPEN_READONLY, LEDGER_BUSY_MS, err, errlen);
    if (l->adb == NULL)
        goto fail;
    if (user_version(l->adb, &v) != 0) {
        snprintf(err, errlen, "%s is not a tokengate ledger: %s", path, sqlite3_errmsg(l->adb));
        goto fail;
    }
    if (v < 1) {
        snprintf(err, errlen, "%s is not a tokengate ledger (no schema)", path);
        goto fail;
    }
    if (v > LEDGER_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "ledger %s has schema version %d, newer than this tokengate knows (%d)", path, v,
                 LEDGER_SCHEMA_VERSION);
        goto fail;
    }
    return l;
fail:
    ledger_free(l);
    return NULL;
}

/* ---- records ------------------------------------------------------------------------------- */

/* Binds a record to a statement of ledger_insert_sql. */
void ledger_bind_rec(sqlite3_stmt *st, const struct ledger_rec *r)
{
    int i = 1;

    sqlite3_bind_double(st, i++, r->ts);
    ledger_bind_text(st, i++, r->id);
    ledger_bind_text(st, i++, r->key_id);
    ledger_bind_text(st, i++, r->agent);
    ledger_bind_text(st, i++, r->team);
    ledger_bind_text(st, i++, r->department);
    ledger_bind_text(st, i++, r->endpoint);
    ledger_bind_text(st, i++, r->model);
    ledger_bind_text(st, i++, r->served_model);
    ledger_bind_text(st, i++, r->provider);
    sqlite3_bind_int(st, i++, r->status);
    sqlite3_bind_int(st, i++, r->stream);
    ledger_bind_count(st, i++, r->in_own);
    ledger_bind_count(st, i++, r->out_own);
    ledger_bind_count(st, i++, r->in_usage);
    ledger_bind_count(st, i++, r->out_usage);
    sqlite3_bind_int64(st, i++, r->cached);
    sqlite3_bind_int64(st, i++, r->cache_write);
    sqlite3_bind_int64(st, i++, r->tokens_charged);
    sqlite3_bind_int64(st, i++, r->cost_nusd);
    sqlite3_bind_int64(st, i++, r->reserved_tokens);
    sqlite3_bind_int64(st, i++, r->latency_us);
    ledger_bind_text(st, i++, r->decision);
    ledger_bind_text(st, i++, r->error);
    ledger_bind_text(st, i++, r->rule);
    ledger_bind_text(st, i++, r->tier);
    ledger_bind_text(st, i++, r->attempts);
    ledger_bind_text(st, i++, r->translation);
    ledger_bind_text(st, i++, r->cache);
    sqlite3_bind_int64(st, i++, r->saved_tokens);
    sqlite3_bind_int64(st, i++, r->saved_nusd);
    sqlite3_bind_int64(st, i++, r->prompt_saved_nusd);
    sqlite3_bind_int64(st, i++, r->route_saved_nusd);
    sqlite3_bind_int64(st, i++, r->cache_write_1h);
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copies s to *p and moves *p past it; NULL stays NULL. */
static const char *str_pack(char **p, const char *s)
{
    size_t n;
    char *d = *p;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    memcpy(d, s, n);
    *p += n;
    return d;
}

int ledger_submit(struct ledger *l, const struct ledger_rec *rec)
{
    const struct ledger_rec *r = rec;
    size_t len = str_size(r->id) + str_size(r->key_id) + str_size(r->agent) + str_size(r->team) +
                 str_size(r->department) + str_size(r->endpoint) + str_size(r->model) +
                 str_size(r->served_model) + str_size(r->provider) + str_size(r->decision) +
                 str_size(r->error) + str_size(r->rule) + str_size(r->tier) +
                 str_size(r->attempts) + str_size(r->translation) + str_size(r->cache);
    struct qrec *q;
    char *p;
    int was_empty;

    if (!l->writable)
        return -1; /* read-only */
    q = malloc(sizeof(*q) + len);
    if (q == NULL)
        return -1;
    q->next = NULL;
    q->rec = *r;
    p = q->strings;
    q->rec.id = str_pack(&p, r->id);
    q->rec.key_id = str_pack(&p, r->key_id);
    q->rec.agent = str_pack(&p, r->agent);
    q->rec.team = str_pack(&p, r->team);
    q->rec.department = str_pack(&p, r->department);
    q->rec.endpoint = str_pack(&p, r->endpoint);
    q->rec.model = str_pack(&p, r->model);
    q->rec.served_model = str_pack(&p, r->served_model);
    q->rec.provider = str_pack(&p, r->provider);
    q->rec.decision = str_pack(&p, r->decision);
    q->rec.error = str_pack(&p, r->error);
    q->rec.rule = str_pack(&p, r->rule);
    q->rec.tier = str_pack(&p, r->tier);
    q->rec.attempts = str_pack(&p, r->attempts);
    q->rec.translation = str_pack(&p, r->translation);
    q->rec.cache = str_pack(&p, r->cache);

    pthread_mutex_lock(&l->mu);
    if (l->nqueued >= LEDGER_QUEUE_CAP || l->stop) {
        pthread_mutex_unlock(&l->mu);
        free(q);
        return -1;
    }
    was_empty = l->head == NULL;
    if (l->tail != NULL)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->nqueued++;
    atomic_fetch_add_explicit(&l->pending, 1, memory_order_relaxed);
    pthread_mutex_unlock(&l->mu);
    /* the writer sleeps only on an empty queue: a push onto a non-empty one needs no wake-up */
    if (was_empty)
        pthread_cond_signal(&l->cv);
    return 0;
}

uint64_t ledger_pending(struct ledger *l)
{
    return l ? atomic_load_explicit(&l->pending, memory_order_relaxed) : 0;
}

uint64_t ledger_failed(struct ledger *l)
{
    return l ? atomic_load_explicit(&l->failed, memory_order_relaxed) : 0;
}

int ledger_failing(struct ledger *l)
{
    return l ? atomic_load_explicit(&l->failing, memory_order_relaxed) : 0;
}

uint64_t ledger_spilled(struct ledger *l)
{
    return l ? atomic_load_explicit(&l->spilled, memory_order_relaxed) : 0;
}

void ledger_why(struct ledger *l, char *buf, size_t cap)
{
    pthread_mutex_lock(&l->mu);
    snprintf(buf, cap, "%s", l->why);
    pthread_mutex_unlock(&l->mu);
}

void ledger_set_alert(struct ledger *l,
                      void (*cb)(void *arg, int failing, const char *why, uint64_t pending),
                      void *arg)
{
    pthread_mutex_lock(&l->mu);
    l->alert = cb;
    l->alert_arg = arg;
    pthread_mutex_unlock(&l->mu);
}

void ledger_set_journal(struct ledger *l, struct journal *j)
{
    pthread_mutex_lock(&l->mu);
    l->journal = j;
    pthread_mutex_unlock(&l->mu);
}

void ledger_close(struct ledger *l)
{
    if (l == NULL)
        return;
    if (l->writable) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        /* the admin connection is closed first so that the checkpoint has no other reader */
        sqlite3_close(l->adb);
        l->adb = NULL;
        if (l->wdb != NULL &&
            sqlite3_exec(l->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
            fprintf(stderr, "tokengate: ledger: final checkpoint failed: %s\n",
                    sqlite3_errmsg(l->wdb));
    }
    ledger_free(l);
}
