/*
 * headbuf: an HTTP message head written into a stack buffer and handed to an evbuffer in one
 * piece: one evbuffer_add instead of four per header, and no printf. Spills into the evbuffer
 * when the buffer fills. Inline: it runs for every request and response the gate writes.
 */
#ifndef TG_HEADBUF_H
#define TG_HEADBUF_H

#include <event2/buffer.h>
#include <stddef.h>
#include <string.h>

struct headbuf {
    struct evbuffer *out; /* where the head goes; set by the caller */
    size_t len;
    char buf[8192];
};

/* Hands what the buffer holds to the evbuffer. Call it once the head is written. */
static inline void headbuf_flush(struct headbuf *h)
{
    evbuffer_add(h->out, h->buf, h->len);
    h->len = 0;
}

static inline void headbuf_add(struct headbuf *h, const char *s, size_t n)
{
    if (h->len + n > sizeof(h->buf)) {
        headbuf_flush(h);
        if (n > sizeof(h->buf)) {
            evbuffer_add(h->out, s, n);
            return;
        }
    }
    memcpy(h->buf + h->len, s, n);
    h->len += n;
}

static inline void headbuf_str(struct headbuf *h, const char *s)
{
    headbuf_add(h, s, strlen(s));
}

/* A number in decimal. */
static inline void headbuf_num(struct headbuf *h, unsigned long long v)
{
    char d[24];
    int i = sizeof(d);

    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    headbuf_add(h, d + i, sizeof(d) - (size_t)i);
}

/* One "name: value" line. */
static inline void headbuf_field(struct headbuf *h, const char *name, size_t nlen,
                                 const char *value, size_t vlen)
{
    headbuf_add(h, name, nlen);
    headbuf_add(h, ": ", 2);
    headbuf_add(h, value, vlen);
    headbuf_add(h, "\r\n", 2);
}

#endif
