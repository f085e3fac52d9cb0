/*
 * routecli: `tokengate route --explain REQUEST.json`, the routing decision for a request body
 * without sending anything: each rule tried and why it matched or not, each target taken or
 * skipped, the tier, the target, and the estimated cost there against the model asked for.
 */
#ifndef TG_ROUTECLI_H
#define TG_ROUTECLI_H

/* Runs the command with its arguments (after "route"). Returns the exit status: 0 a target
 * was chosen, 1 the gate would refuse the request (the reason is printed) or the config is
 * invalid, 2 bad usage or a request file that cannot be read, parsed or routed (no model). */
int gate_cmd_route(int argc, char **argv);

#endif
