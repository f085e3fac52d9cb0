/*
 * ledger: what its three files share (ledger.c opens and queues, ledgerw.c is the writer
 * thread and its failure handling, ledgeradmin.c the synchronous calls). Not for other modules.
 */
#ifndef TG_LEDGER_INT_H
#define TG_LEDGER_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "gate/budget/ledger.h"

/* Records waiting for the writer beyond this are refused: the disk has fallen far behind. */
#define LEDGER_QUEUE_CAP 65536
/* Records that failed to commit, kept in memory for the next try; past this, in the spill file. */
#define LEDGER_RETRY_CAP 16384
/* The admin connection (start-up reads, admin writes) waits this long for a lock. */
#define LEDGER_BUSY_MS 5000
/* The writer waits only this long: a held lock must not hold responses back for seconds. */
#define LEDGER_WRITER_BUSY_MS 200
/* Retries of a failing ledger: the first after this, doubling up to the most. */
#define LEDGER_RETRY_FIRST_MS 100
#define LEDGER_RETRY_MAX_MS 2000
/* An idle writer looks whether its file is still there this often. */
#define LEDGER_CHECK_MS 500

/* A queued record: one allocation, the struct followed by copies of its strings. */
struct qrec {
    struct qrec *next;
    struct ledger_rec rec;
    char strings[];
};

struct ledger {
    char *path;
    enum ledger_sync sync;
    dev_t dev; /* the file the connections have open, to notice it deleted or */
    ino_t ino; /* replaced */

    sqlite3 *wdb;         /* the writer thread's connection; NULL when read-only or lost */
    sqlite3_stmt *insert; /* prepared on wdb */
    sqlite3 *adb;         /* start-up and admin calls, guarded by amu; NULL while reopening */
    pthread_mutex_t amu;
    int writable; /* opened by ledger_open (a writer thread runs) */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct qrec *head, *tail; /* guarded by mu */
    size_t nqueued;           /* guarded by mu */
    int stop;                 /* guarded by mu */
    char why[200];            /* guarded by mu: why it is failing */

    /* the writer thread's own */
    struct qrec *retry, **retry_tail; /* records whose transaction failed, oldest first */
    size_t nretry;

    atomic_uint_fast64_t pending; /* submitted, not yet committed */
    atomic_uint_fast64_t failed;  /* transactions that failed */
    atomic_uint_fast64_t spilled; /* records in the spill file, not yet in the database */
    atomic_int failing;

    void (*alert)(void *arg, int failing, const char *why, uint64_t pending);
    void *alert_arg;
    struct journal *journal;
};

/* Opens the two connections to l->path (creating the file and schema when needed) and notes
 * the file's identity. Returns 0, or -1 with a reason in err and nothing open. */
int ledger_db_open(struct ledger *l, char *err, size_t errlen);

/* Closes what ledger_db_open opened (the caller holds amu, or no other thread runs). */
void ledger_db_close(struct ledger *l);

/* Binds a record to a statement of insert_sql. */
void ledger_bind_rec(sqlite3_stmt *st, const struct ledger_rec *r);

extern const char ledger_insert_sql[];

/* The writer thread (ledgerw.c). */
void *ledger_writer(void *arg);

/* Writes the records of the spill file into the database and empties it (writer thread, or
 * at open). Returns how many were written, or -1. */
int ledger_spill_replay(struct ledger *l);

static inline void ledger_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* A count where -1 means "none": stored as NULL. */
static inline void ledger_bind_count(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

#endif
