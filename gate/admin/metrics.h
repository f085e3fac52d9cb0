/*
 * metrics: what GET /metrics (admin listener) answers, in Prometheus' text format 0.0.4:
 * requests by status, tokens and dollars charged, rejections by reason, tokens reserved, and
 * per scope and window the limit, spend, reservations and utilization of every budget.
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

struct evbuffer;
struct gate_server;

/* Appends the metrics of srv to out. Reads counters with relaxed atomics and the budgets under
 * the book's lock; safe from any thread. */
void gate_metrics_write(struct gate_server *srv, struct evbuffer *out);

#endif
