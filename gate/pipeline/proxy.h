/*
 * proxy: the request pipeline. It routes a complete request to a local answer or to a
 * provider, rewrites what it must, and relays the provider's answer: whole for JSON bodies,
 * event by event for streams, with backpressure from a slow client back to the provider.
 *
 * Every failure of the upstream exchange goes through one next-target path (a retry when it
 * is safe, else final), and every request ends in req_finish().
 */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include <stddef.h>

struct gate_req;
struct http_header;

/* Handles a request whose headers and body have all arrived. */
void proxy_handle(struct gate_req *req);

/* The client's output has drained below the low mark: reading upstream may go on. */
void proxy_client_drained(struct gate_req *req);

/* The client went away mid-request: the upstream exchange is stopped and the request ends. */
void proxy_client_gone(struct gate_req *req);

/*
 * The request's ledger record has committed (spend.c): writes what was held back of the
 * response, if the client is still there, and finishes the request.
 */
void proxy_settled(struct gate_req *req);

#endif
