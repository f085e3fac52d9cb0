/*
 * filter_writer: the last filter, the client writer. A stream's head and events are written
 * as they come (each event one chunk); a whole answer is held, and written with its head once
 * the ledger has the request's record (filter_writer_tail), as is a stream's last chunk. The
 * one place the relayed answer's head and chunks are framed (respwrite.h). See filter.h.
 */
#include <event2/buffer.h>

#include "gate/http/conn.h"
#include "gate/http/respwrite.h"
#include "gate/pipeline/filter.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"
#include "gate/util/clock.h"

/* Writes our status line and the provider's headers, with our framing. */
static void write_head(struct gate_req *req, int status, const struct http_header *h, int n,
                       long long content_length)
{
    char extra[256];

    if (content_length < 0 && req->msg.http10)
        conn_set_close(req->conn); /* HTTP/1.0 has no chunked coding: the close ends the body */
    struct respwrite_head head = {
        .status = status,
        .fields = h,
        .nfields = n,
        .drop_encoding = req->dec != NULL, /* the client gets what the gate decoded */
        .request_id = req->id,
        .extra = extra,
        .extra_len = spend_headers(req, extra, sizeof(extra)),
        .content_length = content_length,
        .http10 = req->msg.http10,
        .keep_alive = conn_keep_alive(req->conn),
    };
    req->bytes_out += respwrite_head(conn_output(req->conn), &head);
    req->status = status;
    req->head_sent = 1;
    req->t_first_byte = gate_now_us();
}

static void write_chunk(struct gate_req *req, const char *data, size_t len)
{
    req->bytes_out += respwrite_chunk(conn_output(req->conn), data, len, req->msg.http10);
}

static int writer_head(struct resp_filter *f, struct gate_req *req, int status,
                       const struct http_header *h, int n)
{
    if (!req->up_sse) {
        /* kept for the tail, once the whole body is in */
        req->up_headers = h;
        req->n_up_headers = n;
    } else if (req->conn != NULL) {
        write_head(req, status, h, n, -1);
        conn_flush(req->conn); /* the client sees the stream start at once */
    }
    return 0;
}

static int writer_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    if (!ev->drop && req->conn != NULL)
        write_chunk(req, ev->raw, ev->raw_len);
    return 0;
}

static int writer_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    /* a whole answer waits for the tail; what a stream left is written now */
    if (req->up_sse && req->conn != NULL && b->len > 0)
        write_chunk(req, b->data, b->len);
    return 0;
}

static int writer_end(struct resp_filter *f, struct gate_req *req)
{
    if (req->up_sse && req->conn != NULL)
        conn_flush(req->conn); /* all but the end goes out while the ledger commits */
    return 0;
}

void filter_writer_tail(struct gate_req *req)
{
    if (!req->up_sse) {
        size_t len = evbuffer_get_length(req->up_body);
        write_head(req, req->rt.client_status ? req->rt.client_status : req->up_status,
                   req->up_headers, req->n_up_headers, (long long)len);
        evbuffer_add_buffer(conn_output(req->conn), req->up_body);
        req->bytes_out += len;
    } else {
        req->bytes_out += respwrite_last_chunk(conn_output(req->conn), req->msg.http10);
    }
}

const struct resp_filter_type filter_writer = {
    .name = "writer",
    .head = writer_head,
    .event = writer_event,
    .body = writer_body,
    .end = writer_end,
};
