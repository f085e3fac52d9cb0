/*
 * A ledger database in a directory of its own under /tmp, for the unit tests that open one:
 * tmpdb_make as a checked fixture's setup, tmpdb_remove as its teardown.
 */
#ifndef TG_TEST_TMPDB_H
#define TG_TEST_TMPDB_H

#include <check.h>
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

#endif
