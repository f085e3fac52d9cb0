/*
 * conn: a client connection. It reads requests with reqparse (llhttp and the gate's checks),
 * one at a time and in order (pipelined requests wait in the input buffer, which is capped),
 * enforces the time limits (headers, the whole body, idle), answers Expect: 100-continue once
 * the key is checked, and hands each complete request to the proxy.
 */
#ifndef TG_CONN_H
#define TG_CONN_H

#include <event2/util.h>
#include <stddef.h>

struct gate_conn;
struct gate_worker;
struct evbuffer;
struct sockaddr;

/* Output is paused upstream above this many bytes waiting for the client. */
#define CONN_OUT_HIGH (256 * 1024)
#define CONN_OUT_LOW (64 * 1024)

/* Takes ownership of an accepted socket. Closes it on failure. */
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
 * Called by req_finish when the current request is over: the connection either reads the
 * next request or, when it must close, closes once its output is written. Never frees the
 * connection from inside this call.
 */
void conn_request_done(struct gate_conn *c);

#endif
