/*
 * ledger: the writer thread, and what it does when the database fails. See ledger.h.
 *
 * A failed transaction loses nothing: its records go to the retry list, the responses that
 * waited for them are let go at once (done with ok 0), the ledger says it is failing (stderr,
 * the alert function) and the writer tries again after 100 ms, doubling up to 2 s. Past
 * LEDGER_RETRY_CAP waiting records, the oldest are appended to the spill file. A record's
 * journal slot is cleared only once the record is committed or in the spill file, so that a
 * crash meanwhile still charges the request at its reservation on the next start.
 */
#include "gate/budget/ledger-int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gate/budget/journal.h"

/* the shortest time between the starts of two transactions of the writer */
#define LEDGER_GATHER_NS 200000
/* a line of the spill file longer than this is not one of ours */
#define SPILL_LINE_MAX 65536

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps on the queue's condition until the monotonic time due (ns), or a signal. */
static void wait_until(struct ledger *l, int64_t due)
{
    struct timespec until;
    int64_t ns;

    clock_gettime(CLOCK_REALTIME, &until);
    ns = until.tv_nsec + (due - mono_ns());
    if (ns < until.tv_nsec)
        return;
    until.tv_sec += ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&l->cv, &l->mu, &until);
}

/* Records the state and, on a change, says so on stderr and to the alert function. */
static void set_failing(struct ledger *l, int failing, const char *why)
{
    void (*cb)(void *, int, const char *, uint64_t);
    void *arg;
    int was = atomic_exchange_explicit(&l->failing, failing, memory_order_relaxed);
    uint64_t pending = atomic_load_explicit(&l->pending, memory_order_relaxed);

    pthread_mutex_lock(&l->mu);
    snprintf(l->why, sizeof(l->why), "%s", failing ? why : "");
    cb = l->alert;
    arg = l->alert_arg;
    pthread_mutex_unlock(&l->mu);
    if (was == failing)
        return;
    if (failing)
        fprintf(stderr,
                "tokengate: ledger: records cannot be committed (%s); %llu wait, kept to be "
                "written when the ledger works again\n",
                why, (unsigned long long)pending);
    else
        fprintf(stderr, "tokengate: ledger: working again; every record that waited is written\n");
    if (cb != NULL)
        cb(arg, failing, failing ? why : "", pending);
}

/* ---- writing -------------------------------------------------------------------------------- */

static int insert_one(struct ledger *l, const struct ledger_rec *r)
{
    int rc;

    ledger_bind_rec(l->insert, r);
    rc = sqlite3_step(l->insert);
    sqlite3_reset(l->insert);
    sqlite3_clear_bindings(l->insert);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Writes a list in one transaction. Returns 0 once it is committed, or -1 after a rollback
 * with the reason in why. */
static int write_list(struct ledger *l, struct qrec *list, char *why, size_t cap)
{
    const char *doing = "starting a transaction";

    if (l->wdb == NULL) {
        snprintf(why, cap, "the ledger file is not open");
        return -1;
    }
    if (sqlite3_exec(l->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    doing = "inserting a request";
    for (struct qrec *q = list; q != NULL; q = q->next)
        if (insert_one(l, &q->rec) != 0)
            goto fail;
    doing = "committing";
    if (sqlite3_exec(l->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    snprintf(why, cap, "%s: %s", doing, sqlite3_errmsg(l->wdb));
    if (!sqlite3_get_autocommit(l->wdb))
        sqlite3_exec(l->wdb, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Lets go the responses that wait for these records: they are kept, not yet written. */
static void release_waiters(struct qrec *list)
{
    for (struct qrec *q = list; q != NULL; q = q->next) {
        if (q->rec.done != NULL)
            q->rec.done(q->rec.arg, 0);
        q->rec.done = NULL;
        q->rec.arg = NULL;
    }
}

/* Frees a list whose records are committed or spilled, clearing their journal slots. */
static void drop_list(struct ledger *l, struct qrec *list, int ok)
{
    size_t n = 0;

    while (list != NULL) {
        struct qrec *next = list->next;
        if (list->rec.done != NULL)
            list->rec.done(list->rec.arg, ok);
        if (list->rec.jslot != 0)
            journal_clear(l->journal, list->rec.jslot);
        free(list);
        list = next;
        n++;
    }
    atomic_fetch_sub_explicit(&l->pending, n, memory_order_relaxed);
}

/* ---- the file deleted or replaced ----------------------------------------------------------- */

/* 1 when the path no longer names the file the connections have open. */
static int file_changed(const struct ledger *l)
{
    struct stat sb;

    if (stat(l->path, &sb) != 0)
        return errno == ENOENT || errno == ENOTDIR;
    return sb.st_dev != l->dev || sb.st_ino != l->ino;
}

/*
 * Opens the ledger again at its path. When the file was deleted and the old connection is
 * still open, what it held is first copied to the path (VACUUM INTO, into a new 0600 file), so
 * no committed record is lost. Returns 0, or -1 with the reason in why (the old connections
 * are then kept, to copy from at the next try).
 */
static int reopen(struct ledger *l, char *why, size_t cap)
{
    struct stat sb;
    int gone = stat(l->path, &sb) != 0;
    char err[300];

    pthread_mutex_lock(&l->amu);
    if (gone && l->wdb != NULL) {
        sqlite3_stmt *st = NULL;
        FILE *f = fopen(l->path, "wx");
        int rc;
        if (f == NULL) {
            snprintf(why, cap, "the ledger file was deleted and cannot be made again: %s",
                     strerror(errno));
            pthread_mutex_unlock(&l->amu);
            return -1;
        }
        fchmod(fileno(f), 0600);
        fclose(f);
        rc = sqlite3_prepare_v2(l->wdb, "VACUUM INTO ?", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, l->path, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
        }
        if (rc != SQLITE_DONE) {
            snprintf(why, cap, "the ledger file was deleted; copying it to a new one: %s",
                     sqlite3_errmsg(l->wdb));
            sqlite3_finalize(st);
            unlink(l->path);
            pthread_mutex_unlock(&l->amu);
            return -1;
        }
        sqlite3_finalize(st);
    }
    ledger_db_close(l);
    if (ledger_db_open(l, err, sizeof(err)) != 0) {
        snprintf(why, cap, "the ledger file was %s and cannot be opened again: %.200s",
                 gone ? "deleted" : "replaced", err);
        pthread_mutex_unlock(&l->amu);
        return -1;
    }
    pthread_mutex_unlock(&l->amu);
    fprintf(stderr, "tokengate: ledger: %s was %s while the gate ran; %s\n", l->path,
            gone ? "deleted" : "replaced",
            gone
                ? "made again with every record it held"
                : "the new file is used from now on (records committed before are in the old one)");
    return 0;
}

/* ---- the spill file ------------------------------------------------------------------------- */

static void add_str(cJSON *o, const char *k, const char *v)
{
    if (v != NULL)
        cJSON_AddStringToObject(o, k, v);
}

/* Appends one record as a line of JSON. Returns 0 or -1. */
static int spill_one(FILE *f, const struct ledger_rec *r)
{
    cJSON *o = cJSON_CreateObject();
    char *line;
    int rc = -1;

    if (o == NULL)
        return -1;
    cJSON_AddNumberToObject(o, "ts", r->ts);
    add_str(o, "id", r->id);
    add_str(o, "key_id", r->key_id);
    add_str(o, "agent", r->agent);
    add_str(o, "team", r->team);
    add_str(o, "department", r->department);
    add_str(o, "endpoint", r->endpoint);
    add_str(o, "model", r->model);
    add_str(o, "served_model", r->served_model);
    add_str(o, "provider", r->provider);
    add_str(o, "decision", r->decision);
    add_str(o, "error", r->error);
    add_str(o, "rule", r->rule);
    add_str(o, "tier", r->tier);
    add_str(o, "attempts", r->attempts);
    add_str(o, "translation", r->translation);
    add_str(o, "cache", r->cache);
    const int64_t v[] = {r->status,         r->stream,    r->in_own,          r->out_own,
                         r->in_usage,       r->out_usage, r->cached,          r->cache_write,
                         r->tokens_charged, r->cost_nusd, r->reserved_tokens, r->latency_us,
                         r->saved_tokens,   r->saved_nusd, r->prompt_saved_nusd,
                         r->route_saved_nusd, r->cache_write_1h};
    static const char *const k[] = {"status",   "stream",    "in_own",   "out_own",
                                    "in_usage", "out_usage", "cached",   "cache_write",
                                    "tokens",   "nusd",      "reserved", "latency_us",
                                    "saved_tokens", "saved_nusd", "prompt_saved_nusd",
                                    "route_saved_nusd", "cache_write_1h"};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        cJSON_AddNumberToObject(o, k[i], (double)v[i]); /* all well below 2^53 */
    line = cJSON_PrintUnformatted(o);
    if (line != NULL && fprintf(f, "%s\n", line) > 0)
        rc = 0;
    free(line);
    cJSON_Delete(o);
    return rc;
}

static void spill_path(const struct ledger *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.spill", l->path);
}

/*
 * Moves the oldest waiting records past keep to the spill file (all of them with keep 0). On
 * success their journal slots are cleared; when the file cannot be written they are dropped
 * with their slots left live (the next start charges those requests at their reservation).
 */
static void spill(struct ledger *l, size_t keep)
{
    char path[4200];
    struct qrec *list = l->retry, **cut = &l->retry;
    size_t n = 0, over = l->nretry > keep ? l->nretry - keep : 0;
    FILE *f;
    int ok = 1;

    if (over == 0)
        return;
    while (n < over) {
        cut = &(*cut)->next;
        n++;
    }
    l->retry = *cut;
    *cut = NULL;
    if (l->retry == NULL)
        l->retry_tail = &l->retry;
    l->nretry -= n;
    spill_path(l, path, sizeof(path));
    f = fopen(path, "a");
    for (struct qrec *q = list; ok && f != NULL && q != NULL; q = q->next)
        ok = spill_one(f, &q->rec) == 0;
    if (f != NULL && fflush(f) != 0)
        ok = 0;
    if (f != NULL && ok && l->sync == LEDGER_SYNC_FULL && fsync(fileno(f)) != 0)
        ok = 0;
    if (f != NULL)
        fclose(f);
    if (f == NULL || !ok) {
        fprintf(stderr,
                "tokengate: ledger: %zu records could not be kept in %s either (%s): dropped; the "
                "requests among them that were forwarded are charged at their reservation at "
                "the next start\n",
                n, path, strerror(errno));
        for (struct qrec *q = list; q != NULL; q = q->next)
            q->rec.jslot = 0;
    } else {
        atomic_fetch_add_explicit(&l->spilled, n, memory_order_relaxed);
    }
    drop_list(l, list, 0);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* As jnum, 0 when absent. */
static int64_t jnum0(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

int ledger_spill_replay(struct ledger *l)
{
    char path[4200], *line = NULL, why[300];
    size_t cap = 0;
    ssize_t len;
    FILE *f;
    sqlite3_stmt *has = NULL;
    int n = 0, bad = 0, rc = -1;

    spill_path(l, path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    /* a record already written (a crash came between the commit and the unlink) is skipped */
    if (sqlite3_prepare_v2(l->wdb, "SELECT 1 FROM requests WHERE ts = ? AND id IS ?", -1, &has,
                           NULL) != SQLITE_OK ||
        sqlite3_exec(l->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    while ((len = getline(&line, &cap, f)) > 0) {
        cJSON *o = len < SPILL_LINE_MAX ? cJSON_ParseWithLength(line, (size_t)len) : NULL;
        if (o == NULL) {
            bad++;
            continue;
        }
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
        struct ledger_rec r = {
            .ts = cJSON_IsNumber(ts) ? ts->valuedouble : 0,
            .id = jstr(o, "id"),
            .key_id = jstr(o, "key_id"),
            .agent = jstr(o, "agent"),
            .team = jstr(o, "team"),
            .department = jstr(o, "department"),
            .endpoint = jstr(o, "endpoint"),
            .model = jstr(o, "model"),
            .served_model = jstr(o, "served_model"),
            .provider = jstr(o, "provider"),
            .decision = jstr(o, "decision"),
            .error = jstr(o, "error"),
            .rule = jstr(o, "rule"),
            .tier = jstr(o, "tier"),
            .attempts = jstr(o, "attempts"),
            .translation = jstr(o, "translation"),
            .status = (int)jnum(o, "status"),
            .stream = (int)jnum(o, "stream"),
            .in_own = jnum(o, "in_own"),
            .out_own = jnum(o, "out_own"),
            .in_usage = jnum(o, "in_usage"),
            .out_usage = jnum(o, "out_usage"),
            .cached = jnum(o, "cached"),
            .cache_write = jnum(o, "cache_write"),
            .tokens_charged = jnum(o, "tokens"),
            .cost_nusd = jnum(o, "nusd"),
            .reserved_tokens = jnum(o, "reserved"),
            .latency_us = jnum(o, "latency_us"),
            /* absent from the lines of an older gate: 0 */
            .cache = jstr(o, "cache"),
            .saved_tokens = jnum0(o, "saved_tokens"),
            .saved_nusd = jnum0(o, "saved_nusd"),
            .prompt_saved_nusd = jnum0(o, "prompt_saved_nusd"),
            .route_saved_nusd = jnum0(o, "route_saved_nusd"),
            .cache_write_1h = jnum0(o, "cache_write_1h"),
        };
        sqlite3_bind_double(has, 1, r.ts);
        ledger_bind_text(has, 2, r.id);
        int step = sqlite3_step(has);
        sqlite3_reset(has);
        int ok = step == SQLITE_ROW || (step == SQLITE_DONE && insert_one(l, &r) == 0);
        cJSON_Delete(o);
        if (!ok)
            goto out;
        n++;
    }
    if (sqlite3_exec(l->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    fclose(f);
    f = NULL;
    unlink(path);
    atomic_store_explicit(&l->spilled, 0, memory_order_relaxed);
    if (n > 0 || bad > 0)
        fprintf(stderr, "tokengate: ledger: %d records written from %s%s\n", n, path,
                bad > 0 ? " (some lines were not records and are skipped)" : "");
    rc = n;
out:
    if (rc < 0) {
        snprintf(why, sizeof(why), "%s", sqlite3_errmsg(l->wdb));
        if (!sqlite3_get_autocommit(l->wdb))
            sqlite3_exec(l->wdb, "ROLLBACK", NULL, NULL, NULL);
        fprintf(stderr, "tokengate: ledger: writing the records of %s: %s\n", path, why);
    }
    sqlite3_finalize(has);
    free(line);
    if (f != NULL)
        fclose(f);
    return rc;
}

/* ---- the thread ----------------------------------------------------------------------------- */

/*
 * One attempt at what waits: looks at the file (making it again when it is gone), writes the
 * retry list in one transaction and the spill file after it. Returns 0 or -1 (failing, with
 * the reason set).
 */
static int attempt(struct ledger *l)
{
    char why[300];

    if (file_changed(l) && reopen(l, why, sizeof(why)) != 0)
        goto fail;
    if (l->retry != NULL && write_list(l, l->retry, why, sizeof(why)) != 0)
        goto fail;
    drop_list(l, l->retry, 1);
    l->retry = NULL;
    l->retry_tail = &l->retry;
    l->nretry = 0;
    if (atomic_load_explicit(&l->spilled, memory_order_relaxed) > 0 && ledger_spill_replay(l) < 0) {
        snprintf(why, sizeof(why), "writing the records of the spill file: %s",
                 sqlite3_errmsg(l->wdb));
        goto fail;
    }
    if (atomic_load_explicit(&l->failing, memory_order_relaxed))
        set_failing(l, 0, NULL);
    return 0;
fail:
    atomic_fetch_add_explicit(&l->failed, 1, memory_order_relaxed);
    release_waiters(l->retry);
    set_failing(l, 1, why);
    spill(l, LEDGER_RETRY_CAP);
    return -1;
}

void *ledger_writer(void *arg)
{
    struct ledger *l = arg;
    int64_t last = 0, next_try = 0, backoff = 0,
            next_check = mono_ns() + LEDGER_CHECK_MS * 1000000LL;

    pthread_mutex_lock(&l->mu);
    for (;;) {
        int64_t t = mono_ns();
        int waiting = l->retry != NULL || atomic_load_explicit(&l->failing, memory_order_relaxed);
        if (l->head == NULL && !l->stop) {
            /* idle: wake for a retry that is due, or to look at the file now and then */
            int64_t due = waiting ? next_try : next_check;
            if (t < due) {
                wait_until(l, due);
                continue;
            }
        }
        if (l->head == NULL && l->stop && !waiting)
            break;
        /*
         * Group commit under load: at most one transaction every LEDGER_GATHER_NS. When the
         * last one began longer ago than that (a quiet gate) the batch goes at once; when not,
         * the writer sleeps until then while records gather, so a busy gate pays one commit for
         * many records (on one core, a commit per record took a fifth of it at 10k requests/s) and
         * a response's end waits at most that much longer.
         */
        if (!waiting && l->head != NULL) {
            while (t < last + LEDGER_GATHER_NS && !l->stop) {
                wait_until(l, last + LEDGER_GATHER_NS);
                t = mono_ns();
            }
            last = t;
        }
        struct qrec *batch = l->head, *batch_tail = l->tail;
        size_t n = l->nqueued;
        int stop = l->stop;
        l->head = l->tail = NULL;
        l->nqueued = 0;
        pthread_mutex_unlock(&l->mu);

        if (batch != NULL) {
            *l->retry_tail = batch;
            l->retry_tail = &batch_tail->next;
            l->nretry += n;
        }
        if (waiting && t < next_try && !stop) {
            /* failing, and not yet time to try again: these responses need not wait */
            release_waiters(batch);
            spill(l, LEDGER_RETRY_CAP);
        } else if (attempt(l) == 0) {
            backoff = 0;
            next_check = mono_ns() + LEDGER_CHECK_MS * 1000000LL;
        } else {
            backoff = backoff == 0 ? LEDGER_RETRY_FIRST_MS : backoff * 2;
            if (backoff > LEDGER_RETRY_MAX_MS)
                backoff = LEDGER_RETRY_MAX_MS;
            next_try = mono_ns() + backoff * 1000000LL;
            if (stop) {
                /* the gate is stopping and the ledger still fails: keep all in the spill file */
                spill(l, 0);
                pthread_mutex_lock(&l->mu);
                if (l->head == NULL)
                    break;
                continue;
            }
        }
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}
