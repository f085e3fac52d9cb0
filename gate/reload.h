/*
 * reload: the config file loaded again while the gate serves (SIGHUP, POST /admin/v1/reload).
 *
 * The new snapshot is checked, the book is moved onto it (counters carry over by scope name),
 * then it is swapped in: each worker takes it on its own loop, moves its upstream pools onto it
 * (kept by provider name) and pins it on the requests it starts from then on. Requests under
 * way finish on the snapshot they started with. Listeners, TLS, the ledger, the request log and
 * the admin listener stay as they are: a file that changes them is refused as a whole.
 */
#ifndef TG_RELOAD_H
#define TG_RELOAD_H

#include <stddef.h>

#include "gate/core/worker.h"

/* Applies the command line's --listen and --workers to c (a fresh snapshot, not shared yet).
 * Returns 0, or -1 when out of memory. */
int gate_overrides_apply(struct conf *c, const struct gate_overrides *ov);

/*
 * Loads the file of the snapshot in force again (with the command line's overrides) and
 * swaps it in, waiting until every worker has taken it: a request that starts after this
 * returns sees it. Safe from any thread but a worker's; one reload runs at a time. Returns 0
 * with a one-line summary of what changed in msg, or -1 with why in msg ("FILE:LINE: reason"
 * from the loader, "FILE: listen cannot change by reload..."), the snapshot in force kept.
 * Either way the outcome is also logged on stderr.
 */
int gate_reload(struct gate_server *srv, char *msg, size_t msglen);

/* Sets up the worker's side (w->reload_ev on w->base). Returns 0, or -1 when out of memory. */
int gate_reload_worker_init(struct gate_worker *w);

#endif
