/*
 * usagecli: `tokengate usage`, spend by level, scope and window as a table, JSON or CSV.
 */
#ifndef TG_USAGECLI_H
#define TG_USAGECLI_H

/* Runs the command with its arguments (after "usage"). Returns the exit status. */
int gate_cmd_usage(int argc, char **argv);

#endif
