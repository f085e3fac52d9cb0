/*
 * libFuzzer target: the SSE parser (gate/http/sse.c) fed a byte stream whole and again cut into
 * pieces, the cap and the cuts decided by the input. What must hold for any input:
 *  - the same events come out, in the same order, with the same result, however the stream is
 *    cut (one event over the cap fails both ways after the same events);
 *  - each event's raw bytes are the next bytes of the stream, with only line ends between
 *    events, and what is left pending is the stream's tail;
 *  - each event's name and data are what its raw lines say (checked by a reading of its own);
 *  - nothing held grows past the cap: after each piece the parser holds at most max bytes, and
 *    its buffers are no larger than the cap plus the largest piece fed, twice (doubling).
 *
 * Input: byte 0 picks the cap (16 << (b % 11), 16 B to 16 KiB); byte 1 the number of piece
 * lengths k (1..16); the next k bytes are the lengths (0 feeds an empty piece), used in turn
 * until the stream ends; the rest is the stream. Seeds: tests/fuzz/seeds-sse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/http/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SSE_EVENTS 4096 /* events recorded per run; more stop the run (not a failure) */

struct ev_copy {
    size_t raw_off; /* offset of the raw bytes in the stream, found when recording */
    size_t raw_len;
    char *name;
    size_t name_len;
    char *data;
    size_t data_len;
};

struct run {
    const char *stream;
    size_t len;
    size_t at; /* where in the stream the next event's raw bytes may start */
    struct ev_copy ev[FUZZ_SSE_EVENTS];
    int n;
};

static char *copy(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p == NULL)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int only_line_ends(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Reads an event's raw lines as the SSE spec says; aborts when the parser said otherwise. */
static void check_fields(const struct sse_event *ev)
{
    const char *s = ev->raw, *end = ev->raw + ev->raw_len;
    char *want = malloc(ev->raw_len + 1);
    size_t want_len = 0;
    int has_data = 0;
    const char *name = "";
    size_t name_len = 0;

    if (want == NULL)
        abort();
    while (s < end) {
        const char *e = s;
        while (e < end && *e != '\r' && *e != '\n')
            e++;
        size_t n = (size_t)(e - s);
        const char *colon = memchr(s, ':', n);
        size_t klen = colon ? (size_t)(colon - s) : n;
        const char *v = colon ? colon + 1 : e;
        if (v < e && *v == ' ')
            v++;
        if (klen == 4 && memcmp(s, "data", 4) == 0) {
            if (has_data)
                want[want_len++] = '\n';
            memcpy(want + want_len, v, (size_t)(e - v));
            want_len += (size_t)(e - v);
            has_data = 1;
        } else if (klen == 5 && memcmp(s, "event", 5) == 0) {
            name = v;
            name_len = (size_t)(e - v);
        }
        /* one line end: CRLF, CR or LF */
        if (e < end && *e == '\r' && e + 1 < end && e[1] == '\n')
            e++;
        s = e + 1;
    }
    if (ev->data_len != want_len || memcmp(ev->data, want, want_len) != 0 ||
        ev->data[ev->data_len] != '\0')
        abort();
    if (ev->name_len != name_len || memcmp(ev->name, name, name_len) != 0)
        abort();
    free(want);
}

static int record(void *arg, const struct sse_event *ev)
{
    struct run *r = arg;
    struct ev_copy *c;

    if (r->n == FUZZ_SSE_EVENTS)
        return 1;
    /* the event ends with a blank line: its raw bytes end with two line ends */
    if (ev->raw_len < 2 || ev->raw_len > r->len - r->at)
        abort();
    /* its raw bytes are the next ones in the stream after blank lines */
    const char *hit = NULL;
    for (size_t off = r->at; off + ev->raw_len <= r->len; off++) {
        if (memcmp(r->stream + off, ev->raw, ev->raw_len) == 0) {
            hit = r->stream + off;
            break;
        }
        if (r->stream[off] != '\r' && r->stream[off] != '\n')
            break;
    }
    if (hit == NULL || !only_line_ends(r->stream + r->at, (size_t)(hit - (r->stream + r->at))))
        abort();
    check_fields(ev);
    c = &r->ev[r->n++];
    c->raw_off = (size_t)(hit - r->stream);
    c->raw_len = ev->raw_len;
    c->name = copy(ev->name, ev->name_len);
    c->name_len = ev->name_len;
    c->data = copy(ev->data, ev->data_len);
    c->data_len = ev->data_len;
    r->at = c->raw_off + c->raw_len;
    return 0;
}

static void run_free(struct run *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->ev[i].name);
        free(r->ev[i].data);
    }
}

/* What a parser may hold after a feed of at most piece_max bytes returned 0. */
static void check_held(const struct sse_parser *p, size_t piece_max)
{
    size_t pend_len;
    size_t bound = 2 * (p->max + piece_max + 2);

    (void)sse_pending(p, &pend_len);
    if (pend_len > p->max || p->len > p->max)
        abort();
    if (p->cap > (bound > 1024 ? bound : 1024) || p->data_cap > (bound > 1024 ? bound : 1024))
        abort();
}

/* Feeds the stream in pieces of the given lengths (in turn); returns the last result. */
static int feed(struct run *r, struct sse_parser *p, const uint8_t *lens, size_t nlens, size_t *fed)
{
    size_t at = 0, k = 0, piece_max = 0;
    int rc = 0;

    while (at < r->len) {
        size_t n = lens ? lens[k++ % nlens] : r->len;
        if (n > r->len - at)
            n = r->len - at;
        if (n > piece_max)
            piece_max = n;
        rc = sse_feed(p, r->stream + at, n, record, r);
        at += n;
        if (rc != 0)
            break;
        check_held(p, piece_max); /* some length is not zero: the loop ends */
    }
    *fed = at;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, cut;
    struct sse_parser pw, pc;
    size_t fed_w, fed_c, k;
    int rc_w, rc_c;

    if (size < 3)
        return 0;
    size_t max = (size_t)16 << (data[0] % 11);
    k = (size_t)(data[1] % 16) + 1;
    if (size < 2 + k)
        return 0;
    const uint8_t *lens = data + 2;
    int any = 0;
    for (size_t i = 0; i < k; i++)
        any |= lens[i] != 0;
    if (!any)
        return 0;

    memset(&whole, 0, sizeof(whole));
    memset(&cut, 0, sizeof(cut));
    whole.stream = cut.stream = (const char *)data + 2 + k;
    whole.len = cut.len = size - 2 - k;

    sse_init(&pw, max);
    sse_init(&pc, max);
    rc_w = feed(&whole, &pw, NULL, 0, &fed_w);
    rc_c = feed(&cut, &pc, lens, k, &fed_c);

    /* a run stopped by too many events proves nothing about the rest */
    if (whole.n == FUZZ_SSE_EVENTS || cut.n == FUZZ_SSE_EVENTS)
        goto out;
    if (rc_w != rc_c || whole.n != cut.n)
        abort();
    for (int i = 0; i < whole.n; i++) {
        const struct ev_copy *a = &whole.ev[i], *b = &cut.ev[i];
        if (a->raw_off != b->raw_off || a->raw_len != b->raw_len || a->name_len != b->name_len ||
            memcmp(a->name, b->name, a->name_len) != 0 || a->data_len != b->data_len ||
            memcmp(a->data, b->data, a->data_len) != 0)
            abort();
    }
    if (rc_w == 0) {
        /* what is pending is the tail of the stream after the last event and blank lines */
        size_t lw, lc;
        const char *tw = sse_pending(&pw, &lw), *tc = sse_pending(&pc, &lc);
        if (lw != lc || memcmp(tw, tc, lw) != 0 || lw > whole.len - whole.at)
            abort();
        if (memcmp(tw, whole.stream + whole.len - lw, lw) != 0 ||
            !only_line_ends(whole.stream + whole.at, whole.len - whole.at - lw))
            abort();
    } else {
        /* only an event over the cap fails: the stream left holds more than max bytes */
        if (rc_w != -1 || whole.len - whole.at <= max)
            abort();
    }
out:
    run_free(&whole);
    run_free(&cut);
    sse_reset(&pw);
    sse_reset(&pc);
    return 0;
}
