/*
 * libFuzzer target: arbitrary bytes as what a client sends on a connection, through the gate's
 * request parser (gate/reqparse: llhttp and the gate's own checks of the head and the body),
 * in pieces as a socket would hand them over. The first byte picks the piece size. Every
 * request read must hold what the gate promises the proxy: header names that are tokens,
 * values without line breaks, a clean request target, headers and body within the limits;
 * and no crash, leak or sanitizer report on any input.
 */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/util/arena.h"
#include "gate/http/reqparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* small limits, so that the fuzzer reaches them */
static struct conf limits = {
    .max_header_bytes = 2048,
    .max_headers = 16,
    .max_body_bytes = 1024,
};

struct made {
    struct http_msg *req; /* the request being read, or NULL */
};

static struct http_msg *begin(void *ctx)
{
    struct made *m = ctx;
    struct arena *a;
    struct http_msg *req;

    if (m->req != NULL)
        abort(); /* a request begins before the last one was handed over */
    a = arena_new();
    req = a ? arena_alloc(a, sizeof(*req)) : NULL;
    if (req == NULL) {
        arena_free(a);
        return NULL;
    }
    req->arena = a;
    req->method = -1;
    m->req = req;
    return req;
}

static void drop(struct made *m)
{
    if (m->req == NULL)
        return;
    if (m->req->body != NULL)
        evbuffer_free(m->req->body);
    arena_free(m->req->arena);
    m->req = NULL;
}

/* What the proxy relies on once a head is read. */
static void check_head(const struct http_msg *req)
{
    if (req->path == NULL || !hdr_target_ok(req->path, req->path_len))
        abort();
    if (req->query != NULL && !hdr_target_ok(req->query, strlen(req->query)))
        abort();
    if (req->nheaders > limits.max_headers)
        abort();
    for (int i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!hdr_name_ok(h->name, h->name_len) || strlen(h->value) != h->value_len)
            abort();
        if (memchr(h->value, '\r', h->value_len) || memchr(h->value, '\n', h->value_len))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct made m = {0};
    struct reqparse rp;
    size_t step, off = 0, avail = 0;

    if (size == 0)
        return 0;
    step = data[0] % 17; /* 0: all at once */
    data++;
    size--;
    reqparse_init(&rp, begin, &m);
    rp.conf = &limits;
    for (;;) {
        size_t used = 0;
        /* a connection reads more when the parser has taken what it had */
        if (avail == 0 || step == 0)
            avail = step == 0 || size - off < step ? size - off : step;
        enum reqparse_step s = reqparse_exec(&rp, (const char *)data + off, avail, &used);
        if (used > avail)
            abort();
        off += used;
        avail -= used;
        if (s == RP_ERROR) {
            /* a refusal the gate made itself says why */
            if (rp.reject != APIERR_BAD_HTTP && rp.reject_msg == NULL)
                abort();
            break;
        }
        if (s == RP_HEAD) {
            if (m.req == NULL || m.req->body == NULL)
                abort();
            check_head(m.req);
            continue;
        }
        if (s == RP_DONE) {
            if (m.req == NULL || evbuffer_get_length(m.req->body) > limits.max_body_bytes)
                abort();
            check_head(m.req);
            drop(&m);
            if (!reqparse_keep_alive(&rp))
                break;
            reqparse_next(&rp);
            continue;
        }
        if (avail != 0)
            abort(); /* RP_MORE reads all it is given */
        if (off == size)
            break; /* nothing left: the client stops here */
    }
    drop(&m);
    reqparse_free(&rp);
    return 0;
}
