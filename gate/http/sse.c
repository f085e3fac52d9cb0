#include "gate/http/sse.h"

#include <stdlib.h>
#include <string.h>

void sse_init(struct sse_parser *p, size_t max)
{
    memset(p, 0, sizeof(*p));
    p->max = max;
}

void sse_reset(struct sse_parser *p)
{
    free(p->buf);
    free(p->data);
    sse_init(p, p->max);
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (nb == NULL)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int add_data(struct sse_parser *p, const char *v, size_t n)
{
    size_t need = p->data_len + n + 2;

    if (grow(&p->data, &p->data_cap, need) < 0)
        return -1;
    if (p->has_data)
        p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, v, n);
    p->data_len += n;
    p->data[p->data_len] = '\0';
    p->has_data = 1;
    return 0;
}

/* Reads one field line [s, s+n) of the current event. */
static int field(struct sse_parser *p, size_t off, size_t n)
{
    const char *s = p->buf + off;
    const char *colon = memchr(s, ':', n);
    size_t klen = colon ? (size_t)(colon - s) : n;
    size_t voff = colon ? klen + 1 : n;

    if (klen == 0)
        return 0; /* a comment */
    if (voff < n && s[voff] == ' ')
        voff++;
    if (klen == 4 && memcmp(s, "data", 4) == 0)
        return add_data(p, s + voff, n - voff);
    if (klen == 5 && memcmp(s, "event", 5) == 0) {
        p->name_off = off + voff;
        p->name_len = n - voff;
    }
    return 0;
}

int sse_feed(struct sse_parser *p, const char *in, size_t len, sse_event_cb cb, void *arg)
{
    int rc = 0;

    if (grow(&p->buf, &p->cap, p->len + len + 1) < 0)
        return -1;
    memcpy(p->buf + p->len, in, len);
    p->len += len;

    while (p->pos < p->len) {
        char *s = p->buf + p->pos;
        size_t avail = p->len - p->pos;
        char *nl = memchr(s, '\n', avail);
        char *cr = memchr(s, '\r', nl ? (size_t)(nl - s) : avail);
        size_t line_len, eol_len;

        if (cr != NULL) {
            line_len = (size_t)(cr - s);
            if (cr + 1 == p->buf + p->len)
                break; /* a CR at the end: wait to see whether LF follows */
            eol_len = cr[1] == '\n' ? 2 : 1;
        } else if (nl != NULL) {
            line_len = (size_t)(nl - s);
            eol_len = 1;
        } else {
            break;
        }
        size_t line_off = p->pos;
        p->pos += line_len + eol_len;

        if (p->pos - p->ev_start > p->max)
            return -1; /* one event larger than the cap, whatever the pieces it came in */
        if (line_len > 0) {
            if (field(p, line_off, line_len) < 0)
                return -1;
            continue;
        }
        if (line_off == p->ev_start) {
            p->ev_start = p->pos; /* blank lines between events */
            continue;
        }
        struct sse_event ev = {
            .raw = p->buf + p->ev_start,
            .raw_len = p->pos - p->ev_start,
            .name = p->name_len ? p->buf + p->name_off : "",
            .name_len = p->name_len,
            .data = p->has_data ? p->data : "",
            .data_len = p->data_len,
        };
        rc = cb(arg, &ev);
        p->ev_start = p->pos;
        p->data_len = 0;
        p->has_data = 0;
        p->name_len = 0;
        if (rc != 0)
            break;
    }

    /* keep only the event in progress, at the front of the buffer */
    if (p->ev_start > 0) {
        size_t keep = p->len - p->ev_start;
        memmove(p->buf, p->buf + p->ev_start, keep);
        p->pos -= p->ev_start;
        if (p->name_len)
            p->name_off -= p->ev_start;
        p->len = keep;
        p->ev_start = 0;
    }
    if (rc == 0 && p->len > p->max)
        return -1;
    return rc;
}

const char *sse_pending(const struct sse_parser *p, size_t *len)
{
    *len = p->len - p->ev_start;
    return p->buf ? p->buf + p->ev_start : "";
}
