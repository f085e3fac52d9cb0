/*
 * A ledger database in a directory of its own under /tmp, for the unit tests that open one:
 * tmpdb_make as a checked fixture's setup, tmpdb_remove as its teardown.
 */
#ifndef TG_TEST_TMPDB_H
#define TG_TEST_TMPDB_H

#include <check.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdb_dir[256];  /* the directory */
static char tmpdb_path[300]; /* the database in it */

/* Makes a new directory named /tmp/tg-<what>-XXXXXX and names the database in it. */
static inline void tmpdb_make(const char *what)
{
    snprintf(tmpdb_dir, sizeof(tmpdb_dir), "/tmp/tg-%s-XXXXXX", what);
    ck_assert_ptr_nonnull(mkdtemp(tmpdb_dir));
    snprintf(tmpdb_path, sizeof(tmpdb_path), "%s/ledger.db", tmpdb_dir);
}

/* Removes the database and what SQLite keeps beside it, then the directory. */
static inline void tmpdb_remove(void)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[320];

    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", tmpdb_path, suffix[i]);
        unlink(p);
    }
    rmdir(tmpdb_dir);
}

/* One integer from a query on a read-only connection of the test's own. */
static inline int64_t tmpdb_query_int(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v;

    ck_assert_int_eq(sqlite3_open_v2(tmpdb_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
