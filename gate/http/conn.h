/*
 * conn: a client connection. It reads requests with reqparse (llhttp and the gate's checks),
 * one at a time and in order (pipelined requests wait in the input buffer, which is capped),
 * enforces the time limits (headers, the whole body, idle), answers Expect: 100-continue once
 * the key is checked, and hands each complete request to the request layer. It calls that
 * layer only through the worker's struct conn_handler (set up by gate/server.c), so gate/http
 * knows nothing of the pipeline.
 */
#ifndef TG_CONN_H
#define TG_CONN_H

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>

#include "gate/api/apierr.h"

struct gate_conn;
struct http_msg;
struct gate_worker;
struct evbuffer;
struct sockaddr;

/* Output is paused upstream above this many bytes waiting for the client. */
#define CONN_OUT_HIGH (256 * 1024)
#define CONN_OUT_LOW (64 * 1024)

/*
 * What a connection asks of the request layer. req is what begin returned; every call but
 * begin and hold_body may answer the request (and so call conn_request_done) before it
 * returns; none may free the connection.
 */
struct conn_handler {
    /* A request's first byte arrived on c: a new request, and in *msg what reqparse fills of
     * it (zeroed, with its arena, method -1). Returns NULL when out of memory. */
    void *(*begin)(struct gate_worker *w, struct gate_conn *c, const char *peer,
                   struct http_msg **msg);
    /* The first total bytes of the body count in the memory in flight: NULL, or the message
     * of the 503 to answer. */
    const char *(*hold_body)(void *req, uint64_t total);
    /* The head asks Expect: 100-continue: 0 to send the 100, or -1 after answering (a key
     * that will be refused). */
    int (*expect)(void *req);
    /* The whole request is in: handle it. */
    void (*ready)(void *req);
    /* The connection refuses the request (bad HTTP, a limit, a timeout): answer kind with
     * message (NULL: out of memory); the connection closes after it. */
    void (*refuse)(void *req, enum apierr kind, const char *message);
    /* The client's output drained below CONN_OUT_LOW. */
    void (*drained)(void *req);
    /* The client is gone (why, or NULL for a close): the request must forget the connection
     * now. */
    void (*gone)(void *req, const char *why);
};

/* Takes ownership of an accepted socket, for w->conn_handler. Closes it on failure. */
void conn_accept(struct gate_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen);

/*
 * Starts a worker's graceful stop: idle connections close now, busy ones after their
 * current response. Returns the number of connections still open.
 */
int conn_drain(struct gate_worker *w);

/* Closes every connection of a worker whose loop has stopped (shutdown). */
void conn_close_all(struct gate_worker *w);

/*
 * Sends what waits in the output now, as nginx does, instead of on the loop's next turn: on
 * plain TCP the socket is written at once, and libevent is asked to watch for writability only
 * when bytes remain (no epoll_ctl per response otherwise). Call it after writing a response or
 * a piece of a stream. Never frees the connection; a write error closes it from the loop.
 */
void conn_flush(struct gate_conn *c);

/* The buffer responses are written to. */
struct evbuffer *conn_output(struct gate_conn *c);

/* Whether the connection stays open after the current response. */
int conn_keep_alive(const struct gate_conn *c);

/* The connection closes once the current response has been written. */
void conn_set_close(struct gate_conn *c);

/*
 * Called by the request layer when the current request is over: the connection either reads the
 * next request or, when it must close, closes once its output is written. Never frees the
 * connection from inside this call.
 */
void conn_request_done(struct gate_conn *c);

#endif
