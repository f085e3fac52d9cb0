/* Unit tests for gate/http/reqparse.h: a client request read from bytes, whole or in pieces. */
#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/util/arena.h"
#include "gate/http/reqparse.h"
#include "run_suite.h"

/* The requests a parser made, to free them at the end. */
struct made {
    struct http_msg *reqs[8];
    int n;
};

static struct http_msg *begin(void *ctx)
{
    struct made *m = ctx;
    struct arena *a = arena_new();
    struct http_msg *req = a ? arena_alloc(a, sizeof(*req)) : NULL;

    ck_assert_ptr_nonnull(req);
    ck_assert_int_lt(m->n, 8);
    req->arena = a;
    req->method = -1;
    m->reqs[m->n++] = req;
    return req;
}

static void made_free(struct made *m)
{
    for (int i = 0; i < m->n; i++) {
        if (m->reqs[i]->body)
            evbuffer_free(m->reqs[i]->body);
        arena_free(m->reqs[i]->arena);
    }
}

static struct conf limits = {
    .max_header_bytes = 4096,
    .max_headers = 20,
    .max_body_bytes = 100,
};

/*
 * Feeds text to rp in pieces of step bytes (0: whole), as a connection would: the bytes a
 * call did not read are given again with the next piece. Stops at RP_DONE or RP_ERROR and
 * returns it; *heads counts RP_HEAD.
 */
static enum reqparse_step feed(struct reqparse *rp, const char *text, size_t step, int *heads,
                               size_t *consumed)
{
    size_t len = strlen(text), off = 0, avail = step ? 0 : len;

    *heads = 0;
    for (;;) {
        size_t used = 0;
        if (step && avail < len - off)
            avail = avail + step < len - off ? avail + step : len - off;
        enum reqparse_step s = reqparse_exec(rp, text + off, avail, &used);
        off += used;
        avail -= used;
        if (s == RP_HEAD) {
            (*heads)++;
            continue;
        }
        if (s == RP_DONE || s == RP_ERROR) {
            *consumed = off;
            return s;
        }
        if (off == len) {
            *consumed = off;
            return RP_MORE;
        }
    }
}

static const char *header(const struct http_msg *req, const char *name)
{
    const struct http_header *h = http_msg_header(req, name);
    return h ? h->value : NULL;
}

static const char CHUNKED_WITH_TRAILER[] = "POST /v1/chat/completions?a=%20b HTTP/1.1\r\n"
                                           "Host: x\r\n"
                                           "X-Empty:\r\n"
                                           "Transfer-Encoding: chunked\r\n"
                                           "\r\n"
                                           "5;ext=1\r\nhello\r\n"
                                           "6\r\n world\r\n"
                                           "0\r\n"
                                           "authorization: Bearer tg-trailer\r\n"
                                           "\r\n";

START_TEST(whole_or_byte_by_byte_the_same_request)
{
    for (size_t step = 0; step <= 7; step++) {
        struct made m = {0};
        struct reqparse rp;
        int heads;
        size_t used;

        reqparse_init(&rp, begin, &m);
        rp.conf = &limits;
        ck_assert_int_eq(feed(&rp, CHUNKED_WITH_TRAILER, step, &heads, &used), RP_DONE);
        ck_assert_int_eq(heads, 1);
        ck_assert_uint_eq(used, strlen(CHUNKED_WITH_TRAILER));
        ck_assert_int_eq(m.n, 1);
        struct http_msg *req = m.reqs[0];
        ck_assert_str_eq(req->path, "/v1/chat/completions");
        ck_assert_str_eq(req->query, "a=%20b");
        ck_assert_str_eq(header(req, "x-empty"), "");
        /* the trailer is not a header */
        ck_assert_int_eq(req->nheaders, 3);
        ck_assert_ptr_null(http_msg_header(req, "authorization"));
        ck_assert_uint_eq(evbuffer_get_length(req->body), 11);
        ck_assert_int_eq(memcmp(evbuffer_pullup(req->body, -1), "hello world", 11), 0);
        ck_assert_int_eq(reqparse_keep_alive(&rp), 1);
        reqparse_free(&rp);
        made_free(&m);
    }
}
END_TEST

START_TEST(pipelined_requests_one_at_a_time)
{
    const char *two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok";
    struct made m = {0};
    struct reqparse rp;
    int heads;
    size_t used;

    reqparse_init(&rp, begin, &m);
    rp.conf = &limits;
    ck_assert_int_eq(feed(&rp, two, 0, &heads, &used), RP_DONE);
    ck_assert_str_eq(m.reqs[0]->path, "/healthz");
    reqparse_next(&rp);
    ck_assert_int_eq(feed(&rp, two + used, 0, &heads, &used), RP_DONE);
    ck_assert_int_eq(m.n, 2);
    ck_assert_str_eq(m.reqs[1]->path, "/v1/x");
    ck_assert_uint_eq(evbuffer_get_length(m.reqs[1]->body), 2);
    reqparse_free(&rp);
    made_free(&m);
}
END_TEST

/* Runs text through a new parser; returns the step it ends on and the refusal. */
static enum reqparse_step one(const char *text, enum apierr *kind, const char **msg)
{
    struct made m = {0};
    struct reqparse rp;
    int heads;
    size_t used;

    reqparse_init(&rp, begin, &m);
    rp.conf = &limits;
    enum reqparse_step s = feed(&rp, text, 0, &heads, &used);
    *kind = rp.reject;
    *msg = rp.reject_msg;
    reqparse_free(&rp);
    made_free(&m);
    return s;
}

START_TEST(refusals_name_their_reason)
{
    static const struct {
        const char *text;
        enum apierr kind;
        const char *msg; /* a piece of the message; NULL for llhttp's own */
    } cases[] = {
        {"POST / HTTP/1.1\r\ncontent length: 1\r\n\r\n", APIERR_BAD_HTTP, "header name"},
        {"POST / HTTP/1.1\r\nx:\r\n folded\r\n\r\n", APIERR_BAD_HTTP, "folded"},
        {"GET / HTTP/1.1\nHost: x\r\n\r\n", APIERR_BAD_HTTP, "LF, not CRLF"},
        {"GET /a?b#c HTTP/1.1\r\n\r\n", APIERR_BAD_HTTP, "request target"},
        {"GET /a?b\tc HTTP/1.1\r\n\r\n", APIERR_BAD_HTTP, "request target"},
        {"GET /a?\xc3\xa9 HTTP/1.1\r\n\r\n", APIERR_BAD_HTTP, "request target"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", APIERR_TOO_LARGE,
         "larger than the limit"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;"
         "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
         "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
         "\r\n",
         APIERR_TOO_LARGE, "larger than the limit"},
        {"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", APIERR_TOO_LARGE, "larger than"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", APIERR_BAD_HTTP,
         "only chunked"},
        {"POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", APIERR_BAD_HTTP, "Expect"},
        {"POST / HTTP/1.1\r\nx\x01y: 1\r\n\r\n", APIERR_BAD_HTTP, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum apierr kind;
        const char *msg;
        ck_assert_msg(one(cases[i].text, &kind, &msg) == RP_ERROR, "case %zu is refused", i);
        ck_assert_msg(kind == cases[i].kind, "case %zu: kind %d", i, kind);
        if (cases[i].msg == NULL)
            ck_assert_ptr_null(msg);
        else
            ck_assert_msg(msg && strstr(msg, cases[i].msg), "case %zu: %s", i, msg);
    }
}
END_TEST

START_TEST(expect_100_continue_is_left_to_the_caller)
{
    struct made m = {0};
    struct reqparse rp;
    size_t used;
    const char *head = "POST /v1/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";

    reqparse_init(&rp, begin, &m);
    rp.conf = &limits;
    ck_assert_int_eq(reqparse_exec(&rp, head, strlen(head), &used), RP_HEAD);
    ck_assert_uint_eq(used, strlen(head));
    ck_assert_int_eq(m.reqs[0]->expect_continue, 1);
    /* nothing more has come: the body is awaited */
    ck_assert_int_eq(reqparse_exec(&rp, NULL, 0, &used), RP_MORE);
    ck_assert_int_eq(reqparse_exec(&rp, "{}", 2, &used), RP_DONE);
    reqparse_free(&rp);
    made_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reqparse");
    TCase *tc = tcase_create("reqparse");

    tcase_add_test(tc, whole_or_byte_by_byte_the_same_request);
    tcase_add_test(tc, pipelined_requests_one_at_a_time);
    tcase_add_test(tc, refusals_name_their_reason);
    tcase_add_test(tc, expect_100_continue_is_left_to_the_caller);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
