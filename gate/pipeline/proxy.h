/*
 * proxy: the upstream exchange as the request's response source, and the relay of its answer
 * to the client: whole for JSON bodies, event by event for streams, with backpressure from a
 * slow client back to the provider. The stages before it are in pipeline.c.
 *
 * Every failure of the upstream exchange goes through one next-target path (a retry when it
 * is safe, else final), and every request ends in req_finish().
 */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include <stddef.h>

struct gate_req;
struct http_header;

/* Starts the upstream exchange of a prepared request (req->ex.request): the answer is relayed
 * as it comes, and its end resumes the request's pipeline after dispatch; a failure ends the
 * request (req_fail), possibly before this returns. */
void proxy_dispatch(struct gate_req *req);

/* The client's output has drained below the low mark: reading upstream may go on. */
void proxy_client_drained(struct gate_req *req);

/* The client went away mid-request: the upstream exchange is stopped and the request ends. */
void proxy_client_gone(struct gate_req *req);

/* Writes the end of the answer held back while the ledger committed the record: a whole
 * answer's head and body, or a stream's last chunk. The client must be there. */
void proxy_write_tail(struct gate_req *req);

#endif
