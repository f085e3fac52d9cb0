/* Unit tests for gate/http/respwrite.h: response heads and chunked framing, written once. */
#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "gate/http/httphdr.h"
#include "gate/http/respwrite.h"
#include "run_suite.h"

static char text[4096];

/* What out holds, as a string; drains it. */
static const char *take(struct evbuffer *out)
{
    size_t n = evbuffer_get_length(out);
    ck_assert_uint_lt(n, sizeof(text));
    evbuffer_remove(out, text, n);
    text[n] = '\0';
    return text;
}

#define FIELD(n, v)                                                                                \
    {                                                                                              \
        .name = n, .name_len = sizeof(n) - 1, .value = v, .value_len = sizeof(v) - 1               \
    }

START_TEST(relayed_head_drops_hop_by_hop_and_frames_chunked)
{
    struct evbuffer *out = evbuffer_new();
    struct http_header f[] = {
        FIELD("content-type", "text/event-stream"), FIELD("connection", "close"),
        FIELD("transfer-encoding", "chunked"),      FIELD("x-request-id", "up-1"),
        FIELD("content-encoding", "gzip"),          FIELD("openai-model", "m"),
    };
    struct respwrite_head h = {
        .status = 200,
        .fields = f,
        .nfields = 6,
        .drop_encoding = 1,
        .request_id = "req_1",
        .extra = "x-tokengate-tokens-in: 5\r\n",
        .extra_len = 26,
        .content_length = -1,
        .keep_alive = 1,
    };
    size_t n = respwrite_head(out, &h);
    ck_assert_uint_eq(n, evbuffer_get_length(out));
    ck_assert_str_eq(take(out), "HTTP/1.1 200 OK\r\n"
                                "content-type: text/event-stream\r\n"
                                "x-upstream-request-id: up-1\r\n"
                                "openai-model: m\r\n"
                                "x-request-id: req_1\r\n"
                                "x-tokengate-tokens-in: 5\r\n"
                                "transfer-encoding: chunked\r\n"
                                "connection: keep-alive\r\n\r\n");
    evbuffer_free(out);
}
END_TEST

START_TEST(gate_answer_has_its_length_and_type)
{
    struct evbuffer *out = evbuffer_new();
    struct respwrite_head h = {
        .status = 429,
        .content_type = "application/json",
        .request_id = "r",
        .extra = "retry-after: 3\r\n",
        .extra_len = 16,
        .content_length = 2,
        .keep_alive = 0,
    };
    respwrite_head(out, &h);
    const char *s = take(out);
    ck_assert_ptr_nonnull(strstr(s, "HTTP/1.1 429 "));
    ck_assert_ptr_nonnull(strstr(s, "\r\ncontent-type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\ncontent-length: 2\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nretry-after: 3\r\n"));
    ck_assert_ptr_null(strstr(s, "transfer-encoding"));
    ck_assert_ptr_nonnull(strstr(s, "connection: close\r\n\r\n"));
    evbuffer_free(out);
}
END_TEST

START_TEST(http10_has_no_chunked_coding)
{
    struct evbuffer *out = evbuffer_new();
    struct respwrite_head h = {.status = 200, .request_id = "r", .content_length = -1, .http10 = 1};
    respwrite_head(out, &h);
    ck_assert_ptr_null(strstr(take(out), "transfer-encoding"));
    ck_assert_uint_eq(respwrite_chunk(out, "data: x\n\n", 9, 1), 9);
    ck_assert_uint_eq(respwrite_last_chunk(out, 1), 0);
    ck_assert_str_eq(take(out), "data: x\n\n");
    evbuffer_free(out);
}
END_TEST

START_TEST(chunks_are_framed_with_their_hex_size)
{
    struct evbuffer *out = evbuffer_new();
    char big[300];
    memset(big, 'a', sizeof(big));
    ck_assert_uint_eq(respwrite_chunk(out, "hello", 5, 0), 10);
    ck_assert_uint_eq(respwrite_last_chunk(out, 0), 5);
    ck_assert_str_eq(take(out), "5\r\nhello\r\n0\r\n\r\n");
    ck_assert_uint_eq(respwrite_chunk(out, big, sizeof(big), 0), 3 + 2 + 300 + 2);
    ck_assert_int_eq(memcmp(take(out), "12c\r\naaa", 8), 0);
    evbuffer_free(out);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("respwrite");
    TCase *tc = tcase_create("respwrite");

    tcase_add_test(tc, relayed_head_drops_hop_by_hop_and_frames_chunked);
    tcase_add_test(tc, gate_answer_has_its_length_and_type);
    tcase_add_test(tc, http10_has_no_chunked_coding);
    tcase_add_test(tc, chunks_are_framed_with_their_hex_size);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
