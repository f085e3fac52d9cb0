/*
 * status: the gate's state as one JSON document, served as /status and /admin/v1/status.
 */
#ifndef TG_STATUS_H
#define TG_STATUS_H

struct gate_server;

/*
 * The status document: version, uptime, workers, the workers' totals (gate_stats_total),
 * memory in flight, the ledger's and journal's state, reservations under way and the token
 * count's drift. Returns a malloc'd string, or NULL when out of memory.
 */
char *gate_status_json(struct gate_server *srv);

#endif
