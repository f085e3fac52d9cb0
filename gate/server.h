/*
 * server: starts the workers, each with its own event base, SO_REUSEPORT listener and upstream
 * pools, and owns what they share (struct gate_server, gate/core/worker.h): the config
 * snapshot, TLS contexts, the book, the ledger, the request log. The top of the data plane:
 * nothing below it includes this header.
 */
#ifndef TG_SERVER_H
#define TG_SERVER_H

#include "conf/conf.h"

struct gate_overrides;

/*
 * Starts the workers on conf and serves until SIGINT or SIGTERM; SIGHUP loads conf's file
 * again (gate/reload.h), applying the command line's overrides ov (NULL for none) to it as
 * they were to conf. Prints the address it listens on to stderr once bound. Returns 0 after a
 * clean stop, -1 (with a message on stderr) when it could not start. Takes a reference on
 * conf; ov must outlive the call.
 */
int gate_server_run(struct conf *conf, const struct gate_overrides *ov);

#endif
