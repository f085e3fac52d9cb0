/*
 * journal: the requests in flight, in a file that outlives the process, so that a crash does
 * not release what was served as if it cost nothing.
 *
 * A request is written to a slot before it is forwarded, and the slot is cleared once its
 * ledger record is committed (or kept in the ledger's spill file). The file (the ledger's path
 * with ".inflight") is a fixed array of slots mapped MAP_SHARED: a write to it is a memcpy into
 * the page cache, which survives kill -9 and any crash of the process. With ledger.sync: full a
 * thread of the journal also fdatasyncs the file every 10 ms while slots are put, so that a
 * request in flight for longer than that survives a power loss too (an msync before each
 * request goes out would cost it milliseconds, in its worker's loop). Each worker
 * owns its own range of JOURNAL_SLOTS_PER_WORKER slots, so taking one needs no lock; the
 * ledger's writer thread clears them.
 *
 * At start, before serving, every live slot is recovered: when the ledger has the request's
 * record (same id and start time) the slot is only cleared; otherwise a record charged at the
 * reservation (tokens and nano-dollars) is inserted with decision "unsettled", and the budgets,
 * which are restored from the ledger afterwards, count it.
 */
#ifndef TG_JOURNAL_H
#define TG_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct journal;
struct ledger;

/* Slots per worker: requests with a reservation in flight at once on one worker. */
#define JOURNAL_SLOTS_PER_WORKER 4096

/* What a slot keeps of a request. Strings are copied, cut to the slot's fields (a scope name,
 * at most 100 bytes, always fits); NULL is kept as NULL. */
struct journal_entry {
    double ts; /* the request's start, as in its ledger record */
    const char *id, *key_id, *agent, *team, *department;
    const char *endpoint, *model, *served_model, *provider;
    int stream;
    int64_t in_own;       /* the gate's input count, -1 when none */
    int64_t tokens, nusd; /* the reservation, on every scope of the agent's path */
};

/*
 * Opens (creating it 0600) the journal at path with slots for nworkers workers, after
 * recovering into ledger what a previous run left live in it (*recovered: records inserted).
 * The file is locked: a second gate on the same state fails here. With sync_full a thread
 * writes what was put to the disk every 10 ms. Returns NULL with a reason in err.
 */
struct journal *journal_open(const char *path, int nworkers, int sync_full, struct ledger *ledger,
                             int *recovered, char *err, size_t errlen);

/*
 * Writes e into a free slot of worker's range. Returns the slot (1-based), or 0 when the
 * range is full (the request must then not be forwarded). Called on the worker's thread only.
 */
uint32_t journal_put(struct journal *j, int worker, const struct journal_entry *e);

/* Frees a slot (any thread). Accepts a NULL journal and slot 0. */
void journal_clear(struct journal *j, uint32_t slot);

/* Live slots now (requests in flight that are journaled). */
uint64_t journal_live(struct journal *j);

/* Unmaps and closes; the slots still live stay in the file for the next start. Accepts NULL. */
void journal_close(struct journal *j);

#endif
