/*
 * logscli: `tokengate logs`, the per-request records of the ledger, newest first, filtered and
 * printed as an aligned table, JSON lines or CSV.
 */
#ifndef TG_LOGSCLI_H
#define TG_LOGSCLI_H

/*
 * Runs the command on the arguments after its name. Returns the process exit status: 0 (also
 * when nothing matches), 1 when the ledger cannot be read, 2 for bad usage (the message names
 * the option and the forms it takes).
 */
int gate_cmd_logs(int argc, char **argv);

#endif
