/*
 * recsink: where the records of requests go, as one interface: submit a record (its done
 * callback says once it is durable), and say how far behind or failing the sink is. The SQLite
 * ledger implements it (ledger_sink in gate/budget/ledger.h; a writer thread commits in
 * batches); a shared or remote sink would be another. The budget module's other store, the
 * state store of admin changes and past spend, is bstate.h.
 */
#ifndef TG_BUDGET_RECSINK_H
#define TG_BUDGET_RECSINK_H

#include <stdint.h>

struct ledger_rec; /* gate/budget/ledger.h: one request's record */

struct rec_sink_ops {
    /* Queues a copy of rec. Thread-safe, never blocks on I/O. 0, or -1 when it cannot (a full
     * queue, no memory): the record is then not written and rec->done is not called. */
    int (*submit)(void *ctx, const struct ledger_rec *rec);
    /* Records queued and not yet durable. */
    uint64_t (*pending)(void *ctx);
    /* 1 while the sink fails to make records durable, else 0. */
    int (*failing)(void *ctx);
};

/* A record sink: its functions and their first argument. A zeroed one (ops NULL) is none. */
struct rec_sink {
    const struct rec_sink_ops *ops;
    void *ctx;
};

#endif
