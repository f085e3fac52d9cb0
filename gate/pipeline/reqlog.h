/*
 * reqlog: the per-request log, one JSON object per line, written by a thread of its own so
 * that no event loop ever waits on the disk.
 */
#ifndef TG_REQLOG_H
#define TG_REQLOG_H

#include <stddef.h>
#include <stdint.h>

struct reqlog;

/*
 * Opens (appending, creating it 0640) the log at path and starts its writer thread. Returns
 * NULL with a reason in err when the file cannot be opened.
 */
struct reqlog *reqlog_open(const char *path, char *err, size_t errlen);

/*
 * Queues one line (a newline is added). Thread-safe; never blocks on I/O. When more than the
 * cap (16 MiB) is waiting, the line is dropped and counted: the writer has fallen behind.
 */
void reqlog_write(struct reqlog *rl, const char *line, size_t len);

/* Lines dropped so far because the queue was full. */
uint64_t reqlog_dropped(struct reqlog *rl);

/* Writes out what is queued, stops the thread and closes the file. Accepts NULL. */
void reqlog_close(struct reqlog *rl);

#endif
