/*
 * respwrite: response heads and chunked framing. See respwrite.h.
 */
#include "gate/http/respwrite.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "gate/api/apierr.h"
#include "gate/http/headbuf.h"
#include "gate/http/httphdr.h"

/* Fields of a provider's answer that describe its connection or framing, not the answer. */
static int hop_by_hop(const struct http_header *h)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
        "trailer",    "upgrade",    "content-length",   "x-request-id",
    };

    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strcmp(h->name, drop[i]) == 0)
            return 1;
    return 0;
}

size_t respwrite_head(struct evbuffer *out, const struct respwrite_head *h)
{
    size_t before = evbuffer_get_length(out);
    struct headbuf hd = {.out = out};
    const struct http_header *f = h->fields;

    headbuf_str(&hd, "HTTP/1.1 ");
    headbuf_num(&hd, (unsigned)h->status);
    headbuf_add(&hd, " ", 1);
    headbuf_str(&hd, http_reason(h->status));
    headbuf_add(&hd, "\r\n", 2);
    for (int i = 0; i < h->nfields; i++) {
        if (hop_by_hop(&f[i])) {
            if (strcmp(f[i].name, "x-request-id") == 0)
                headbuf_field(&hd, "x-upstream-request-id", 21, f[i].value, f[i].value_len);
            continue;
        }
        if (h->drop_encoding && strcmp(f[i].name, "content-encoding") == 0)
            continue;
        headbuf_field(&hd, f[i].name, f[i].name_len, f[i].value, f[i].value_len);
    }
    if (h->content_type != NULL)
        headbuf_field(&hd, "content-type", 12, h->content_type, strlen(h->content_type));
    headbuf_field(&hd, "x-request-id", 12, h->request_id, strlen(h->request_id));
    if (h->extra != NULL)
        headbuf_add(&hd, h->extra, h->extra_len);
    if (h->content_length >= 0) {
        headbuf_str(&hd, "content-length: ");
        headbuf_num(&hd, (unsigned long long)h->content_length);
        headbuf_add(&hd, "\r\n", 2);
    } else if (!h->http10) {
        headbuf_str(&hd, "transfer-encoding: chunked\r\n");
    }
    headbuf_str(&hd,
                h->keep_alive ? "connection: keep-alive\r\n\r\n" : "connection: close\r\n\r\n");
    headbuf_flush(&hd);
    return evbuffer_get_length(out) - before;
}

size_t respwrite_chunk(struct evbuffer *out, const char *data, size_t len, int http10)
{
    char size[24];
    int n;

    if (http10) {
        evbuffer_add(out, data, len);
        return len;
    }
    n = snprintf(size, sizeof(size), "%zx\r\n", len);
    evbuffer_add(out, size, (size_t)n);
    evbuffer_add(out, data, len);
    evbuffer_add(out, "\r\n", 2);
    return (size_t)n + len + 2;
}

size_t respwrite_last_chunk(struct evbuffer *out, int http10)
{
    if (http10)
        return 0;
    evbuffer_add(out, "0\r\n\r\n", 5);
    return 5;
}
