/*
 * proxy: the upstream exchange as a response source (source_upstream, source.h): its answer
 * goes through the request's filter chain (filter.h) to the client, whole for JSON bodies,
 * event by event for streams, with backpressure from a slow client back to the source; and
 * what happens when the client goes (a whole answer is read on for its usage, a stream for a
 * moment). The stages before it are in pipeline.c.
 *
 * Every failure of the upstream exchange goes through one next-target path (a retry when it
 * is safe, else final), and every request ends in req_finish().
 */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include <stddef.h>

struct gate_req;
struct http_header;

/* The client's output has drained below the low mark: reading upstream may go on. */
void proxy_client_drained(struct gate_req *req);

/* The client went away mid-request: the upstream exchange is stopped and the request ends. */
void proxy_client_gone(struct gate_req *req);

#endif
