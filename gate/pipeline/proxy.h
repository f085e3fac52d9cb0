/*
 * proxy: the request pipeline. It routes a complete request to a local answer or to a
 * provider, rewrites what it must, and relays the provider's answer: whole for JSON bodies,
 * event by event for streams, with backpressure from a slow client back to the provider.
 *
 * Every failure of the upstream exchange ends in proxy_upstream_failed(), and every request
 * in req_finish().
 */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include <stddef.h>

#include "gate/api/apierr.h"

struct gate_req;
struct http_header;

/* Handles a request whose headers and body have all arrived. */
void proxy_handle(struct gate_req *req);

/* The client's output has drained below the low mark: reading upstream may go on. */
void proxy_client_drained(struct gate_req *req);

/* The client went away mid-request: the upstream exchange is stopped and the request ends. */
void proxy_client_gone(struct gate_req *req);

/* From upstream: the response head. Returns -1 to drop the exchange. */
int proxy_upstream_head(struct gate_req *req, int status, const struct http_header *headers,
                        int n);

/* From upstream: a piece of the (de-chunked) response body. Returns -1 to drop the exchange. */
int proxy_upstream_body(struct gate_req *req, const char *data, size_t len);

/* From upstream: the response is complete; the connection is already back in its pool. */
void proxy_upstream_done(struct gate_req *req);

/* From upstream: the exchange failed; the connection is already closed. */
void proxy_upstream_failed(struct gate_req *req, enum apierr kind, const char *message);

/*
 * The request's ledger record has committed (spend.c): writes what was held back of the
 * response, if the client is still there, and finishes the request.
 */
void proxy_settled(struct gate_req *req);

#endif
