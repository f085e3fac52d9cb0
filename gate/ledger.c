#include "gate/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Records waiting for the writer beyond this are refused: the disk has fallen far behind. */
#define LEDGER_QUEUE_CAP 65536
/* Other connections (the admin thread's, a CLI reader's) may hold the lock for a moment. */
#define LEDGER_BUSY_MS 5000

/*
 * The schema, version 1. A value that the API calls "none" (-1 for a count or limit, 0 for a
 * revocation time, NULL for a string) is stored as SQL NULL, and read back as the API's "none":
 *   requests.in_own, out_own, in_usage, out_usage   -1 <-> NULL
 *   budgets.tokens, nusd                             -1 <-> NULL
 *   keys.revoked                                      0 <-> NULL
 * Every other number is stored as given. "window" is quoted: SQLite knows it as a keyword.
 */
#define LEDGER_SCHEMA_VERSION 2

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

static const char insert_sql[] =
    "INSERT INTO requests (ts, id, key_id, agent, team, department, endpoint, model,"
    " served_model, provider, status, stream, in_own, out_own, in_usage, out_usage, cached,"
    " cache_write, tokens_charged, cost_nusd, reserved_tokens, latency_us, decision, error)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

/* A queued record: one allocation, the struct followed by copies of its strings. */
struct qrec {
    struct qrec *next;
    struct ledger_rec rec;
    char strings[];
};

struct ledger {
    sqlite3 *wdb;         /* the writer thread's connection; NULL when read-only */
    sqlite3_stmt *insert; /* prepared on wdb */
    sqlite3 *adb;         /* start-up and admin calls, guarded by amu */
    pthread_mutex_t amu;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct qrec *head, *tail; /* guarded by mu */
    size_t nqueued;           /* guarded by mu */
    int stop;                 /* guarded by mu */

    atomic_uint_fast64_t pending; /* submitted, not yet committed or failed */
    atomic_uint_fast64_t failed;
};

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
 * Opens one connection to path with flags, with the busy timeout set. Returns NULL with a
 * reason in err.
 */
static sqlite3 *db_connect(const char *path, int flags, char *err, size_t errlen)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open ledger database %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, LEDGER_BUSY_MS);
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

static void *writer(void *arg);

static struct ledger *ledger_alloc(void)
{
    struct ledger *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    pthread_mutex_init(&l->amu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    return l;
}

/* Frees what ledger_alloc and the open functions made; the writer thread must not be running. */
static void ledger_free(struct ledger *l)
{
    sqlite3_finalize(l->insert);
    sqlite3_close(l->wdb);
    sqlite3_close(l->adb);
    pthread_mutex_destroy(&l->amu);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

struct ledger *ledger_open(const char *path, enum ledger_sync sync, char *err, size_t errlen)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    struct ledger *l;

    if (create_private(path, err, errlen) != 0)
        return NULL;
    l = ledger_alloc();
    if (l == NULL) {
        snprintf(err, errlen, "ledger: out of memory");
        return NULL;
    }
    l->wdb = db_connect(path, flags, err, errlen);
    if (l->wdb == NULL || set_pragmas(l->wdb, sync, err, errlen) != 0 ||
        migrate(l->wdb, path, err, errlen) != 0)
        goto fail;
    if (sqlite3_prepare_v3(l->wdb, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &l->insert, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "ledger: preparing the insert: %s", sqlite3_errmsg(l->wdb));
        goto fail;
    }
    l->adb = db_connect(path, flags, err, errlen);
    if (l->adb == NULL || set_pragmas(l->adb, sync, err, errlen) != 0)
        goto fail;
    if (pthread_create(&l->thread, NULL, writer, l) != 0) {
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
    l = ledger_alloc();
    if (l == NULL) {
        snprintf(err, errlen, "ledger: out of memory");
        return NULL;
    }
    l->adb = db_connect(path, SQLITE_OPEN_READONLY, err, errlen);
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

/* ---- the writer ------------------------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* A count where -1 means "none": stored as NULL. */
static void bind_count(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

static int insert_one(struct ledger *l, const struct ledger_rec *r)
{
    sqlite3_stmt *st = l->insert;
    int i = 1, rc;

    sqlite3_bind_double(st, i++, r->ts);
    bind_text(st, i++, r->id);
    bind_text(st, i++, r->key_id);
    bind_text(st, i++, r->agent);
    bind_text(st, i++, r->team);
    bind_text(st, i++, r->department);
    bind_text(st, i++, r->endpoint);
    bind_text(st, i++, r->model);
    bind_text(st, i++, r->served_model);
    bind_text(st, i++, r->provider);
    sqlite3_bind_int(st, i++, r->status);
    sqlite3_bind_int(st, i++, r->stream);
    bind_count(st, i++, r->in_own);
    bind_count(st, i++, r->out_own);
    bind_count(st, i++, r->in_usage);
    bind_count(st, i++, r->out_usage);
    sqlite3_bind_int64(st, i++, r->cached);
    sqlite3_bind_int64(st, i++, r->cache_write);
    sqlite3_bind_int64(st, i++, r->tokens_charged);
    sqlite3_bind_int64(st, i++, r->cost_nusd);
    sqlite3_bind_int64(st, i++, r->reserved_tokens);
    sqlite3_bind_int64(st, i++, r->latency_us);
    bind_text(st, i++, r->decision);
    bind_text(st, i++, r->error);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Writes a batch in one transaction. Returns 0 once it is committed, -1 after a rollback. */
static int write_batch(struct ledger *l, struct qrec *batch, size_t n)
{
    const char *doing = "starting a transaction";

    if (sqlite3_exec(l->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    doing = "inserting a request";
    for (struct qrec *q = batch; q != NULL; q = q->next)
        if (insert_one(l, &q->rec) != 0)
            goto rollback;
    doing = "committing";
    if (sqlite3_exec(l->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto rollback;
    return 0;
rollback:
    fprintf(stderr, "tokengate: ledger: %s failed, %zu records lost: %s\n", doing, n,
            sqlite3_errmsg(l->wdb));
    sqlite3_exec(l->wdb, "ROLLBACK", NULL, NULL, NULL);
    return -1;
fail:
    fprintf(stderr, "tokengate: ledger: %s failed, %zu records lost: %s\n", doing, n,
            sqlite3_errmsg(l->wdb));
    return -1;
}

/*
 * The writer: takes every queued record under the lock, writes them in one transaction without
 * it, then reports each record's fate. Records that arrive during a commit make the next batch.
 */
static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *writer(void *arg)
{
    struct ledger *l = arg;
    int64_t last = 0;

    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->head == NULL && !l->stop)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->head == NULL)
            break; /* stopping, and nothing is left */
        /*
         * Group commit under load: at most one transaction every LEDGER_GATHER_NS. When the
         * last one began longer ago than that (a quiet gate) the batch goes at once; when not,
         * the writer sleeps until then while records gather, so a busy gate pays one commit for
         * many records (on one core, a commit per record took a fifth of it at 10k requests/s) and a
         * response's end waits at most that much longer.
         */
        int64_t due = last + LEDGER_GATHER_NS, t = mono_ns();
        while (t < due && !l->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ns = until.tv_nsec + (due - t);
            until.tv_sec += ns / 1000000000;
            until.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&l->cv, &l->mu, &until);
            t = mono_ns();
        }
        last = t;
        struct qrec *batch = l->head;
        size_t n = l->nqueued;
        l->head = l->tail = NULL;
        l->nqueued = 0;
        pthread_mutex_unlock(&l->mu);

        int ok = write_batch(l, batch, n) == 0;
        if (!ok)
            atomic_fetch_add_explicit(&l->failed, n, memory_order_relaxed);
        while (batch != NULL) {
            struct qrec *next = batch->next;
            if (batch->rec.done != NULL)
                batch->rec.done(batch->rec.arg, ok);
            free(batch);
            batch = next;
        }
        atomic_fetch_sub_explicit(&l->pending, n, memory_order_relaxed);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
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
                 str_size(r->error);
    struct qrec *q;
    char *p;
    int was_empty;

    if (l->wdb == NULL)
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

void ledger_close(struct ledger *l)
{
    if (l == NULL)
        return;
    if (l->wdb != NULL) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        /* the admin connection is closed first so that the checkpoint has no other reader */
        sqlite3_close(l->adb);
        l->adb = NULL;
        if (sqlite3_exec(l->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
            fprintf(stderr, "tokengate: ledger: final checkpoint failed: %s\n",
                    sqlite3_errmsg(l->wdb));
    }
    ledger_free(l);
}

/* ---- synchronous calls on the admin connection ----------------------------------------------- */

/*
 * Takes the admin lock and prepares sql on the admin connection. Returns the statement with
 * the lock held, or NULL with the lock released after logging what failed.
 */
static sqlite3_stmt *admin_begin(struct ledger *l, const char *sql, const char *doing)
{
    sqlite3_stmt *st = NULL;

    pthread_mutex_lock(&l->amu);
    if (sqlite3_prepare_v2(l->adb, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "tokengate: ledger: %s: %s\n", doing, sqlite3_errmsg(l->adb));
        sqlite3_finalize(st);
        pthread_mutex_unlock(&l->amu);
        return NULL;
    }
    return st;
}

/*
 * Ends what admin_begin began: rc is the last sqlite3_step's result, SQLITE_DONE for success
 * (anything else is logged). Finalizes the statement and releases the lock. Returns 0, 1 when
 * no_change_is_1 is set and the statement changed no row, or -1.
 */
static int admin_finish(struct ledger *l, sqlite3_stmt *st, int rc, const char *doing,
                        int no_change_is_1)
{
    int out = rc == SQLITE_DONE ? 0 : -1;

    if (rc != SQLITE_DONE)
        fprintf(stderr, "tokengate: ledger: %s: %s\n", doing, sqlite3_errmsg(l->adb));
    else if (no_change_is_1 && sqlite3_changes(l->adb) == 0)
        out = 1;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->amu);
    return out;
}

static int64_t column_count(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ledger_spend_since(struct ledger *l, double since,
                       void (*cb)(void *arg, const char *agent, int64_t tokens, int64_t nusd),
                       void *arg)
{
    const char *doing = "reading spend since a time";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(l,
                       "SELECT agent, SUM(tokens_charged), SUM(cost_nusd) FROM requests"
                       " WHERE ts >= ? AND agent IS NOT NULL GROUP BY agent",
                       doing);
    if (st == NULL)
        return -1;
    sqlite3_bind_double(st, 1, since);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t tokens = sqlite3_column_int64(st, 1), nusd = sqlite3_column_int64(st, 2);
        if (tokens != 0 || nusd != 0)
            cb(arg, (const char *)sqlite3_column_text(st, 0), tokens, nusd);
    }
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_keys_load(struct ledger *l, void (*cb)(void *arg, const struct ledger_key *k), void *arg)
{
    const char *doing = "loading keys";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(l, "SELECT id, hash, agent, created, revoked FROM keys ORDER BY created",
                       doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct ledger_key k = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .hash_hex = (const char *)sqlite3_column_text(st, 1),
            .agent = (const char *)sqlite3_column_text(st, 2),
            .created = sqlite3_column_double(st, 3),
            .revoked = sqlite3_column_double(st, 4), /* NULL reads as 0.0 */
        };
        cb(arg, &k);
    }
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_key_insert(struct ledger *l, const struct ledger_key *k)
{
    const char *doing = "inserting a key";
    sqlite3_stmt *st;

    st = admin_begin(
        l, "INSERT INTO keys (id, hash, agent, created, revoked) VALUES (?, ?, ?, ?, ?)", doing);
    if (st == NULL)
        return -1;
    bind_text(st, 1, k->id);
    bind_text(st, 2, k->hash_hex);
    bind_text(st, 3, k->agent);
    sqlite3_bind_double(st, 4, k->created);
    if (k->revoked > 0)
        sqlite3_bind_double(st, 5, k->revoked);
    else
        sqlite3_bind_null(st, 5);
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_key_revoke(struct ledger *l, const char *id, double t)
{
    const char *doing = "revoking a key";
    sqlite3_stmt *st;

    /* revoking twice keeps the first time */
    st = admin_begin(l, "UPDATE keys SET revoked = COALESCE(revoked, ?) WHERE id = ?", doing);
    if (st == NULL)
        return -1;
    sqlite3_bind_double(st, 1, t);
    bind_text(st, 2, id);
    return admin_finish(l, st, sqlite3_step(st), doing, 1);
}

int ledger_budget_set(struct ledger *l, const char *scope, const char *window, int64_t tokens,
                      int64_t nusd)
{
    const char *doing = "setting a budget";
    sqlite3_stmt *st;

    st = admin_begin(l,
                       "INSERT INTO budgets (scope, \"window\", tokens, nusd, updated)"
                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, \"window\") DO UPDATE SET"
                       " tokens = excluded.tokens, nusd = excluded.nusd,"
                       " updated = excluded.updated",
                       doing);
    if (st == NULL)
        return -1;
    bind_text(st, 1, scope);
    bind_text(st, 2, window);
    bind_count(st, 3, tokens);
    bind_count(st, 4, nusd);
    sqlite3_bind_double(st, 5, now());
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_budgets_load(struct ledger *l,
                        void (*cb)(void *arg, const char *scope, const char *window, int64_t tokens,
                                   int64_t nusd),
                        void *arg)
{
    const char *doing = "loading budgets";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(
        l, "SELECT scope, \"window\", tokens, nusd FROM budgets ORDER BY scope, \"window\"", doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           column_count(st, 2), column_count(st, 3));
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_reset_add(struct ledger *l, const char *scope, const char *window, double t)
{
    const char *doing = "adding a reset";
    sqlite3_stmt *st;

    st = admin_begin(l, "INSERT INTO resets (scope, \"window\", t) VALUES (?, ?, ?)", doing);
    if (st == NULL)
        return -1;
    bind_text(st, 1, scope);
    bind_text(st, 2, window);
    sqlite3_bind_double(st, 3, t);
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_resets_load(struct ledger *l,
                       void (*cb)(void *arg, const char *scope, const char *window, double t),
                       void *arg)
{
    const char *doing = "loading resets";
    sqlite3_stmt *st;
    int rc;

    st = admin_begin(l, "SELECT scope, \"window\", t FROM resets ORDER BY t", doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           sqlite3_column_double(st, 2));
    return admin_finish(l, st, rc, doing, 0);
}

int ledger_scope_add(struct ledger *l, const char *level, const char *name, const char *parent,
                     double t)
{
    const char *doing = "adding a scope";
    sqlite3_stmt *st;

    st = admin_begin(l, "INSERT INTO scopes (level, name, parent, created) VALUES (?, ?, ?, ?)",
                       doing);
    if (st == NULL)
        return -1;
    bind_text(st, 1, level);
    bind_text(st, 2, name);
    bind_text(st, 3, parent);
    sqlite3_bind_double(st, 4, t);
    return admin_finish(l, st, sqlite3_step(st), doing, 0);
}

int ledger_scopes_load(struct ledger *l,
                       void (*cb)(void *arg, const char *level, const char *name,
                                  const char *parent),
                       void *arg)
{
    const char *doing = "loading scopes";
    sqlite3_stmt *st;
    int rc, have = 0;

    /* a version 1 ledger opened read-only (by the CLI) has no scopes table: none were added */
    st = admin_begin(l, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scopes'",
                     doing);
    if (st == NULL)
        return -1;
    have = (rc = sqlite3_step(st)) == SQLITE_ROW;
    if (admin_finish(l, st, have ? SQLITE_DONE : rc, doing, 0) < 0)
        return -1;
    if (!have)
        return 0;
    /* departments before teams before agents, each in the order they were added */
    st = admin_begin(l,
                       "SELECT level, name, parent FROM scopes ORDER BY CASE level"
                       " WHEN 'department' THEN 0 WHEN 'team' THEN 1 ELSE 2 END, created",
                       doing);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    return admin_finish(l, st, rc, doing, 0);
}
