/*
 * completion: a worker's completion queue. A request that WAITs (a pipeline stage parked it:
 * the ledger has its record, a store answers later) is handed back to its worker through this
 * queue: any thread may post, and the worker runs what was posted on its own loop, at a safe
 * point (the queue's event callback, never inside another callback). The same queue frees
 * finished requests (redis's rule: a request is never freed inside its own callback).
 *
 * An item is embedded in what it hands back (struct gate_req has one): posting never
 * allocates and never fails. An item is in at most one queue at a time.
 */
#ifndef TG_COMPLETION_H
#define TG_COMPLETION_H

struct event_base;
struct completion_queue;

struct completion {
    struct completion *next;
    void (*run)(struct completion *c); /* called on the worker's thread */
};

/* A queue drained on base's loop. Returns NULL when out of memory. */
struct completion_queue *completion_queue_new(struct event_base *base);

/*
 * Runs what is still queued (the worker's loop is over: shutdown), then frees the queue.
 * q may be NULL.
 */
void completion_queue_free(struct completion_queue *q);

/*
 * Queues c to run(c) on the queue's worker, soon. Safe from any thread; never fails. The item
 * must stay valid until run is called.
 */
void completion_post(struct completion_queue *q, struct completion *c,
                     void (*run)(struct completion *c));

/*
 * Runs everything queued now, including what those runs post, until the queue is empty. For
 * shutdown, after the worker's loop stopped; the loop itself drains the queue on its own.
 */
void completion_queue_run(struct completion_queue *q);

#endif
