/*
 * Unit tests for gate/sse: the same events must come out of a stream however it is cut into
 * pieces, with LF, CRLF or CR line endings.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/http/sse.h"
#include "run_suite.h"

#define MAX_EVENTS 64

/* What one event looked like, copied out of the callback (its pointers die on return). */
struct rec_event {
    char *raw;
    size_t raw_len;
    char *name;
    char *data;
    size_t data_len;
};

struct recorder {
    struct rec_event ev[MAX_EVENTS];
    int n;
    int stop_at; /* return stop_rc for this event (1-based); 0 never */
    int stop_rc;
};

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    ck_assert_ptr_nonnull(p);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int record(void *arg, const struct sse_event *ev)
{
    struct recorder *r = arg;
    struct rec_event *e;

    ck_assert_int_lt(r->n, MAX_EVENTS);
    ck_assert_ptr_nonnull(ev->raw);
    ck_assert_ptr_nonnull(ev->name);
    ck_assert_ptr_nonnull(ev->data);
    /* data is NUL-terminated, so it can be handed to a string parser as is */
    ck_assert_int_eq(ev->data[ev->data_len], '\0');
    e = &r->ev[r->n++];
    e->raw = dup_bytes(ev->raw, ev->raw_len);
    e->raw_len = ev->raw_len;
    e->name = dup_bytes(ev->name, ev->name_len);
    e->data = dup_bytes(ev->data, ev->data_len);
    e->data_len = ev->data_len;
    return r->n == r->stop_at ? r->stop_rc : 0;
}

static void recorder_clear(struct recorder *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->ev[i].raw);
        free(r->ev[i].name);
        free(r->ev[i].data);
    }
    memset(r, 0, sizeof(*r));
}

struct want {
    const char *raw;
    const char *name;
    const char *data;
};

static void check_events(const struct recorder *r, const struct want *w, int nw, const char *how)
{
    ck_assert_msg(r->n == nw, "%s: %d events, not %d", how, r->n, nw);
    for (int i = 0; i < nw; i++) {
        ck_assert_msg(r->ev[i].raw_len == strlen(w[i].raw) && strcmp(r->ev[i].raw, w[i].raw) == 0,
                      "%s: event %d raw differs", how, i);
        ck_assert_msg(strcmp(r->ev[i].name, w[i].name) == 0, "%s: event %d name '%s', not '%s'",
                      how, i, r->ev[i].name, w[i].name);
        ck_assert_msg(r->ev[i].data_len == strlen(w[i].data) &&
                          strcmp(r->ev[i].data, w[i].data) == 0,
                      "%s: event %d data '%s', not '%s'", how, i, r->ev[i].data, w[i].data);
    }
}

/* Replaces every LF in s with eol; the result is malloc'd. */
static char *with_eol(const char *s, const char *eol)
{
    size_t el = strlen(eol), n = 0;
    char *out, *o;

    for (const char *p = s; *p; p++)
        n += *p == '\n' ? el : 1;
    o = out = malloc(n + 1);
    ck_assert_ptr_nonnull(out);
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            memcpy(o, eol, el);
            o += el;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* A stream of four events and an unfinished tail, written with LF endings. */
static const char stream_lf[] = "event: message_start\n"
                                "data: {\"a\":1}\n"
                                "\n"
                                "\n"
                                ":ping\n"
                                "\n"
                                "data:no-space\n"
                                "data:  two-spaces\n"
                                "data\n"
                                "id: 7\n"
                                "retry: 100\n"
                                "\n"
                                "event: done\n"
                                ": a comment inside\n"
                                "data: [DONE]\n"
                                "\n"
                                "data: tail without its blank line\n";

static const struct want events_lf[] = {
    {"event: message_start\ndata: {\"a\":1}\n\n", "message_start", "{\"a\":1}"},
    /* a comment-only block still comes out, so that keep-alives are relayed */
    {":ping\n\n", "", ""},
    /* one space after the colon goes, a second stays; "data" alone adds an empty line */
    {"data:no-space\ndata:  two-spaces\ndata\nid: 7\nretry: 100\n\n", "",
     "no-space\n two-spaces\n"},
    {"event: done\n: a comment inside\ndata: [DONE]\n\n", "done", "[DONE]"},
};
static const char tail_lf[] = "data: tail without its blank line\n";

#define NEVENTS ((int)(sizeof(events_lf) / sizeof(events_lf[0])))

/*
 * Feeds stream to a fresh parser in pieces: cut[0..ncut) are the offsets where a new piece
 * starts. Checks the events and the pending tail against the wanted ones.
 */
static void run_cut(const char *stream, const size_t *cut, int ncut, const struct want *w,
                    const char *tail, const char *how)
{
    struct sse_parser p;
    struct recorder r = {0};
    size_t len = strlen(stream), start = 0, plen;
    const char *pend;

    sse_init(&p, 4096);
    for (int i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cut[i] : len;
        int rc = sse_feed(&p, stream + start, end - start, record, &r);
        ck_assert_msg(rc == 0, "%s: sse_feed returned %d", how, rc);
        start = end;
    }
    check_events(&r, w, NEVENTS, how);
    pend = sse_pending(&p, &plen);
    ck_assert_msg(plen == strlen(tail) && memcmp(pend, tail, plen) == 0,
                  "%s: pending '%.*s', not '%s'", how, (int)plen, pend, tail);
    recorder_clear(&r);
    sse_reset(&p);
}

/* Every way of cutting the stream once, byte by byte, and in pieces of 2..7 bytes. */
static void run_all_cuts(const char *eol)
{
    char *stream = with_eol(stream_lf, eol);
    char *tail = with_eol(tail_lf, eol);
    struct want w[NEVENTS];
    char *raws[NEVENTS];
    size_t len = strlen(stream);
    size_t *cut = malloc((len + 1) * sizeof(*cut));
    char how[64];

    ck_assert_ptr_nonnull(cut);
    for (int i = 0; i < NEVENTS; i++) {
        raws[i] = with_eol(events_lf[i].raw, eol);
        w[i] = events_lf[i];
        w[i].raw = raws[i];
    }

    run_cut(stream, NULL, 0, w, tail, "whole");
    for (size_t at = 0; at <= len; at++) {
        snprintf(how, sizeof(how), "cut at %zu", at);
        run_cut(stream, &at, 1, w, tail, how);
    }
    for (size_t step = 1; step <= 7; step++) {
        int n = 0;
        for (size_t at = step; at < len; at += step)
            cut[n++] = at;
        snprintf(how, sizeof(how), "pieces of %zu", step);
        run_cut(stream, cut, n, w, tail, how);
    }

    for (int i = 0; i < NEVENTS; i++)
        free(raws[i]);
    free(cut);
    free(tail);
    free(stream);
}

START_TEST(splits_lf)
{
    run_all_cuts("\n");
}
END_TEST

START_TEST(splits_crlf)
{
    run_all_cuts("\r\n");
}
END_TEST

START_TEST(splits_cr)
{
    run_all_cuts("\r");
}
END_TEST

START_TEST(crlf_split_between_cr_and_lf)
{
    struct sse_parser p;
    struct recorder r = {0};
    static const struct want w[] = {
        {"data: x\r\n\r\n", "", "x"},
        {"event: e\r\ndata: y\r\n\r\n", "e", "y"},
    };
    size_t plen;

    sse_init(&p, 1024);
    ck_assert_int_eq(sse_feed(&p, "data: x\r", 8, record, &r), 0);
    ck_assert_int_eq(sse_feed(&p, "\n\r", 2, record, &r), 0);
    ck_assert_int_eq(sse_feed(&p, "\nevent: e\r", 10, record, &r), 0);
    ck_assert_int_eq(sse_feed(&p, "\ndata: y\r\n\r", 11, record, &r), 0);
    ck_assert_int_eq(sse_feed(&p, "\n", 1, record, &r), 0);
    /* the LF after a CR does not count as a second, empty line */
    check_events(&r, w, 2, "crlf split");
    sse_pending(&p, &plen);
    ck_assert_uint_eq(plen, 0);
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

START_TEST(mixed_line_endings)
{
    struct sse_parser p;
    struct recorder r = {0};
    static const char in[] = "data: a\r\ndata: b\rdata: c\n\r\nevent: x\rdata: d\n\n";
    static const struct want w[] = {
        {"data: a\r\ndata: b\rdata: c\n\r\n", "", "a\nb\nc"},
        {"event: x\rdata: d\n\n", "x", "d"},
    };

    sse_init(&p, 1024);
    ck_assert_int_eq(sse_feed(&p, in, sizeof(in) - 1, record, &r), 0);
    check_events(&r, w, 2, "mixed");
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

START_TEST(field_forms)
{
    struct sse_parser p;
    struct recorder r = {0};
    static const char in[] = "event:nospace\n"
                             "data\n"
                             "data\n"
                             "\n"
                             "event\n"
                             "data:\n"
                             "data: x:y: z\n"
                             "unknown: field\n"
                             "\n";
    static const struct want w[] = {
        /* two "data" lines without a colon: two empty lines joined */
        {"event:nospace\ndata\ndata\n\n", "nospace", "\n"},
        /* "event" without a colon names nothing; a colon in the value is kept */
        {"event\ndata:\ndata: x:y: z\nunknown: field\n\n", "", "\nx:y: z"},
    };

    sse_init(&p, 1024);
    ck_assert_int_eq(sse_feed(&p, in, sizeof(in) - 1, record, &r), 0);
    check_events(&r, w, 2, "fields");
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

START_TEST(blank_lines_between_events)
{
    struct sse_parser p;
    struct recorder r = {0};
    static const char in[] = "\n\n\ndata: a\n\n\n\n\r\n\rdata: b\n\n\n";
    static const struct want w[] = {
        {"data: a\n\n", "", "a"},
        {"data: b\n\n", "", "b"},
    };
    size_t plen;

    sse_init(&p, 1024);
    ck_assert_int_eq(sse_feed(&p, in, sizeof(in) - 1, record, &r), 0);
    check_events(&r, w, 2, "blank lines");
    sse_pending(&p, &plen);
    ck_assert_uint_eq(plen, 0);
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

START_TEST(large_event_across_feeds)
{
    struct sse_parser p;
    struct recorder r = {0};
    size_t n = 20000;
    char *payload = malloc(n + 1);
    char *in = malloc(n + 16);
    size_t len;

    ck_assert_ptr_nonnull(payload);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < n; i++)
        payload[i] = (char)('a' + i % 26);
    payload[n] = '\0';
    len = (size_t)snprintf(in, n + 16, "data: %s\n\n", payload);

    sse_init(&p, 64 * 1024);
    for (size_t off = 0; off < len; off += 333) {
        size_t k = len - off < 333 ? len - off : 333;
        ck_assert_int_eq(sse_feed(&p, in + off, k, record, &r), 0);
    }
    ck_assert_int_eq(r.n, 1);
    ck_assert_uint_eq(r.ev[0].data_len, n);
    ck_assert_str_eq(r.ev[0].data, payload);
    ck_assert_uint_eq(r.ev[0].raw_len, len);
    ck_assert_int_eq(memcmp(r.ev[0].raw, in, len), 0);
    recorder_clear(&r);
    sse_reset(&p);
    free(in);
    free(payload);
}
END_TEST

START_TEST(cap_exceeded_across_feeds)
{
    struct sse_parser p;
    struct recorder r = {0};
    int rc = 0;
    size_t fed = 0;

    sse_init(&p, 100);
    rc = sse_feed(&p, "data: ", 6, record, &r);
    ck_assert_int_eq(rc, 0);
    for (fed = 6; fed < 1000 && rc == 0; fed++)
        rc = sse_feed(&p, "x", 1, record, &r);
    ck_assert_int_eq(rc, -1);
    /* it fails once the event is past the cap, not long after */
    ck_assert_uint_le(fed, 102);
    ck_assert_int_eq(r.n, 0);
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

/*
 * Regression test for a fixed bug: gate/http/sse.c sse_feed checks the cap only on the unfinished tail
 * left after the loop, so an event larger than the cap that arrives whole in one feed is delivered
 * and 0 is returned. Input: sse_init(&p, 64), then one feed of "data: " + 200 x "x" + "\n\n".
 * Expected -1 and no callback (as when the same bytes come in smaller pieces); got 0 and one
 * 208-byte event.
 */
START_TEST(cap_exceeded_in_one_feed)
{
    struct sse_parser p;
    struct recorder r = {0};
    char in[256];
    int rc, n;

    memcpy(in, "data: ", 6);
    memset(in + 6, 'x', 200);
    memcpy(in + 206, "\n\n", 2);
    sse_init(&p, 64);
    rc = sse_feed(&p, in, 208, record, &r);
    n = r.n;
    recorder_clear(&r);
    sse_reset(&p);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(cap_is_per_event)
{
    struct sse_parser p;
    struct recorder r = {0};
    char in[100 * 16];
    size_t len = 0;

    /* 60 events of 11 bytes each, 660 bytes in one feed, under a cap of 64 per event */
    for (int i = 0; i < 60; i++)
        len += (size_t)snprintf(in + len, sizeof(in) - len, "data: %03d\n\n", i);
    sse_init(&p, 64);
    ck_assert_int_eq(sse_feed(&p, in, len, record, &r), 0);
    ck_assert_int_eq(r.n, 60);
    ck_assert_str_eq(r.ev[59].data, "059");
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

START_TEST(callback_stops)
{
    struct sse_parser p;
    struct recorder r = {0};
    static const char in[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";

    r.stop_at = 2;
    r.stop_rc = 7;
    sse_init(&p, 1024);
    ck_assert_int_eq(sse_feed(&p, in, sizeof(in) - 1, record, &r), 7);
    ck_assert_int_eq(r.n, 2);
    ck_assert_str_eq(r.ev[1].data, "2");
    recorder_clear(&r);
    sse_reset(&p);

    /* a negative value comes back as it is too */
    r.stop_at = 1;
    r.stop_rc = -5;
    sse_init(&p, 1024);
    ck_assert_int_eq(sse_feed(&p, in, sizeof(in) - 1, record, &r), -5);
    ck_assert_int_eq(r.n, 1);
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

START_TEST(pending_tail)
{
    struct sse_parser p;
    struct recorder r = {0};
    const char *pend;
    size_t plen = 99;

    sse_init(&p, 1024);
    pend = sse_pending(&p, &plen);
    ck_assert_ptr_nonnull(pend);
    ck_assert_uint_eq(plen, 0);

    ck_assert_int_eq(sse_feed(&p, "data: a\n\nevent: x\ndata: par", 27, record, &r), 0);
    ck_assert_int_eq(r.n, 1);
    pend = sse_pending(&p, &plen);
    ck_assert_uint_eq(plen, 18);
    ck_assert_int_eq(memcmp(pend, "event: x\ndata: par", 18), 0);

    ck_assert_int_eq(sse_feed(&p, "tial\n", 5, record, &r), 0);
    pend = sse_pending(&p, &plen);
    ck_assert_uint_eq(plen, 23);
    ck_assert_int_eq(memcmp(pend, "event: x\ndata: partial\n", 23), 0);

    ck_assert_int_eq(sse_feed(&p, "\n", 1, record, &r), 0);
    ck_assert_int_eq(r.n, 2);
    ck_assert_str_eq(r.ev[1].name, "x");
    ck_assert_str_eq(r.ev[1].data, "partial");
    sse_pending(&p, &plen);
    ck_assert_uint_eq(plen, 0);
    recorder_clear(&r);
    sse_reset(&p);
}
END_TEST

START_TEST(reset_and_reuse)
{
    struct sse_parser p;
    struct recorder r = {0};
    static const struct want w[] = {{"data: new\n\n", "", "new"}};
    size_t plen = 99;

    sse_init(&p, 1024);
    ck_assert_int_eq(sse_feed(&p, "event: old\ndata: half", 21, record, &r), 0);
    ck_assert_int_eq(r.n, 0);
    sse_reset(&p);
    sse_pending(&p, &plen);
    ck_assert_uint_eq(plen, 0);

    /* nothing of the old event (its name, its data) leaks into the next one */
    ck_assert_int_eq(sse_feed(&p, "data: new\n\n", 11, record, &r), 0);
    check_events(&r, w, 1, "after reset");
    recorder_clear(&r);
    sse_reset(&p);
    /* reset twice in a row, and on a parser that was never fed */
    sse_reset(&p);
    sse_init(&p, 16);
    sse_reset(&p);
}
END_TEST

static Suite *sse_suite(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = tcase_create("sse");

    tcase_add_test(tc, splits_lf);
    tcase_add_test(tc, splits_crlf);
    tcase_add_test(tc, splits_cr);
    tcase_add_test(tc, crlf_split_between_cr_and_lf);
    tcase_add_test(tc, mixed_line_endings);
    tcase_add_test(tc, field_forms);
    tcase_add_test(tc, blank_lines_between_events);
    tcase_add_test(tc, large_event_across_feeds);
    tcase_add_test(tc, cap_exceeded_across_feeds);
    tcase_add_test(tc, cap_exceeded_in_one_feed);
    tcase_add_test(tc, cap_is_per_event);
    tcase_add_test(tc, callback_stops);
    tcase_add_test(tc, pending_tail);
    tcase_add_test(tc, reset_and_reuse);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(sse_suite());
}
