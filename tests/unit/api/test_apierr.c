/*
 * Unit tests for gate/apierr: statuses, and error bodies and stream events that the OpenAI and
 * Anthropic SDKs can read. Bodies are checked as bytes (UTF-8, no raw control characters) and
 * then parsed.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/api/apierr.h"
#include "run_suite.h"

/* A strict UTF-8 check (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* JSON text as a client receives it: valid UTF-8, no raw control characters, one object. */
static cJSON *parse_json(const char *s, size_t n)
{
    const char *end = NULL;
    cJSON *j;

    ck_assert_msg(valid_utf8((const unsigned char *)s, n), "not valid UTF-8: %.*s", (int)n, s);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg((unsigned char)s[i] >= 0x20, "raw control byte 0x%02x at %zu: %.*s",
                      (unsigned char)s[i], i, (int)n, s);
    j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    ck_assert_msg(j != NULL, "not JSON: %.*s", (int)n, s);
    ck_assert_msg(end == s + n, "bytes after the JSON value: %.*s", (int)n, s);
    ck_assert_msg(cJSON_IsObject(j), "not an object: %.*s", (int)n, s);
    return j;
}

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    ck_assert_msg(cJSON_IsString(v), "'%s' is not a string", key);
    return v->valuestring;
}

/* OpenAI: {"error":{"message":..,"type":..,"code":..}}; returns the error object. */
static const cJSON *openai_error(const cJSON *root)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");

    ck_assert_int_eq(cJSON_GetArraySize(root), 1);
    ck_assert_msg(cJSON_IsObject(e), "no error object");
    str_at(e, "message");
    ck_assert_str_ne(str_at(e, "type"), "");
    ck_assert_str_ne(str_at(e, "code"), "");
    return e;
}

/* Anthropic: {"type":"error","error":{"type":..,"message":..}}; returns the error object. */
static const cJSON *anthropic_error(const cJSON *root)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");

    ck_assert_str_eq(str_at(root, "type"), "error");
    ck_assert_msg(cJSON_IsObject(e), "no error object");
    ck_assert_str_ne(str_at(e, "type"), "");
    str_at(e, "message");
    return e;
}

static const cJSON *error_of(enum conf_format fmt, const cJSON *root)
{
    return fmt == CONF_FMT_ANTHROPIC ? anthropic_error(root) : openai_error(root);
}

static const struct {
    enum apierr kind;
    int status;
} statuses[] = {
    {APIERR_BAD_REQUEST, 400},    {APIERR_BAD_HTTP, 400},        {APIERR_UNAUTHORIZED, 401},
    {APIERR_NOT_FOUND, 404},      {APIERR_MODEL_NOT_FOUND, 404}, {APIERR_METHOD, 405},
    {APIERR_HEADER_TIMEOUT, 408}, {APIERR_TOO_LARGE, 413},       {APIERR_HEADERS_TOO_LARGE, 431},
    {APIERR_INTERNAL, 500},       {APIERR_BAD_GATEWAY, 502},     {APIERR_GATEWAY_TIMEOUT, 504},
    {APIERR_UNAVAILABLE, 503},    {APIERR_OUTPUT_LIMIT, 502},
};

#define NKINDS ((int)(sizeof(statuses) / sizeof(statuses[0])))

START_TEST(every_status)
{
    ck_assert_int_eq(NKINDS, APIERR__COUNT);
    for (int i = 0; i < NKINDS; i++)
        ck_assert_msg(apierr_status(statuses[i].kind) == statuses[i].status,
                      "kind %d: status %d, not %d", statuses[i].kind,
                      apierr_status(statuses[i].kind), statuses[i].status);
}
END_TEST

START_TEST(reason_phrases)
{
    ck_assert_str_eq(http_reason(200), "OK");
    ck_assert_str_eq(http_reason(400), "Bad Request");
    ck_assert_str_eq(http_reason(401), "Unauthorized");
    ck_assert_str_eq(http_reason(404), "Not Found");
    ck_assert_str_eq(http_reason(405), "Method Not Allowed");
    ck_assert_str_eq(http_reason(408), "Request Timeout");
    ck_assert_msg(strcmp(http_reason(413), "Payload Too Large") == 0 ||
                      strcmp(http_reason(413), "Content Too Large") == 0,
                  "413: %s", http_reason(413));
    ck_assert_str_eq(http_reason(429), "Too Many Requests");
    ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_reason(500), "Internal Server Error");
    ck_assert_str_eq(http_reason(502), "Bad Gateway");
    ck_assert_str_eq(http_reason(503), "Service Unavailable");
    ck_assert_str_eq(http_reason(504), "Gateway Timeout");
    /* statuses without a phrase of their own still get one */
    ck_assert_ptr_nonnull(http_reason(418));
    ck_assert_str_ne(http_reason(418), "");
    ck_assert_ptr_nonnull(http_reason(599));
    ck_assert_str_ne(http_reason(599), "");
}
END_TEST

START_TEST(openai_bodies)
{
    char buf[1024];

    for (int i = 0; i < NKINDS; i++) {
        enum apierr k = statuses[i].kind;
        size_t n = apierr_body(CONF_FMT_OPENAI, k, "Something went wrong.", buf, sizeof(buf));
        ck_assert_uint_eq(n, strlen(buf));
        cJSON *root = parse_json(buf, n);
        const cJSON *e = openai_error(root);
        ck_assert_str_eq(str_at(e, "message"), "Something went wrong.");
        /* the codes OpenAI itself sends for these, which clients match on */
        if (k == APIERR_UNAUTHORIZED)
            ck_assert_str_eq(str_at(e, "code"), "invalid_api_key");
        if (k == APIERR_MODEL_NOT_FOUND)
            ck_assert_str_eq(str_at(e, "code"), "model_not_found");
        if (statuses[i].status == 400)
            ck_assert_str_eq(str_at(e, "type"), "invalid_request_error");
        cJSON_Delete(root);
    }
}
END_TEST

/* Anthropic's documented error type for a status, or NULL where it documents none. */
static const char *anthropic_type_for(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 500:
        return "api_error";
    default:
        return NULL;
    }
}

START_TEST(anthropic_bodies)
{
    char buf[1024];

    for (int i = 0; i < NKINDS; i++) {
        enum apierr k = statuses[i].kind;
        size_t n = apierr_body(CONF_FMT_ANTHROPIC, k, "Something went wrong.", buf, sizeof(buf));
        ck_assert_uint_eq(n, strlen(buf));
        cJSON *root = parse_json(buf, n);
        const cJSON *e = anthropic_error(root);
        const char *want = anthropic_type_for(statuses[i].status);
        ck_assert_str_eq(str_at(e, "message"), "Something went wrong.");
        if (want != NULL)
            ck_assert_str_eq(str_at(e, "type"), want);
        cJSON_Delete(root);
    }
}
END_TEST

START_TEST(message_escaped)
{
    static const char *const msgs[] = {
        "say \"hi\" \\ now",
        "line one\nline two\r\n\ttabbed",
        "control \x01\x02\x1f and DEL \x7f",
        "unicode: caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
        "</script><b>&amp;</b> 'single'",
        "",
    };
    char buf[1024];

    for (int f = 0; f < 2; f++) {
        enum conf_format fmt = f ? CONF_FMT_ANTHROPIC : CONF_FMT_OPENAI;
        for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
            size_t n = apierr_body(fmt, APIERR_BAD_REQUEST, msgs[i], buf, sizeof(buf));
            ck_assert_uint_eq(n, strlen(buf));
            cJSON *root = parse_json(buf, n);
            ck_assert_str_eq(str_at(error_of(fmt, root), "message"), msgs[i]);
            cJSON_Delete(root);
        }
    }
}
END_TEST

/*
 * Regression test for a fixed bug: gate/api/apierr.c apierr_body copies the message's bytes as they are
 * (cJSON does not check UTF-8), so a message holding invalid UTF-8 gives a body that is not valid
 * JSON text (RFC 8259 requires UTF-8). Such messages occur: proxy.c cuts the client's model name
 * with '%.200s', which can split a multi-byte character, and the path of an unknown URL comes from
 * the client. Input: apierr_body(CONF_FMT_OPENAI, APIERR_MODEL_NOT_FOUND, "model '\xe4\xb8' is not
 * configured", buf, 1024). Expected: valid UTF-8 JSON (bad bytes replaced or escaped, or the
 * message dropped); got the raw bytes 0xe4 0xb8 inside the string.
 */
START_TEST(message_invalid_utf8)
{
    static const char *const msgs[] = {
        "model '\xe4\xb8' is not configured",
        "unknown path /v1/\xff\xfe",
        "overlong \xc0\xaf and surrogate \xed\xa0\x80",
    };
    char buf[1024];
    int ok[2][3];

    for (int f = 0; f < 2; f++) {
        enum conf_format fmt = f ? CONF_FMT_ANTHROPIC : CONF_FMT_OPENAI;
        for (int i = 0; i < 3; i++) {
            size_t n = apierr_body(fmt, APIERR_MODEL_NOT_FOUND, msgs[i], buf, sizeof(buf));
            ok[f][i] = n == strlen(buf) && valid_utf8((const unsigned char *)buf, n);
        }
    }
    for (int f = 0; f < 2; f++)
        for (int i = 0; i < 3; i++)
            ck_assert_msg(ok[f][i], "%s body for message %d is not valid UTF-8",
                          f ? "Anthropic" : "OpenAI", i);
}
END_TEST

/*
 * Every buffer size from small to ample: the body is NUL-terminated, its length is returned and
 * it is still JSON with an error message. Heap buffers of the exact size let ASan see overruns.
 */
START_TEST(any_buffer_size)
{
    char msg[301];
    char big[2048];
    size_t full;

    memset(msg, 'm', 300);
    msg[300] = '\0';
    for (int f = 0; f < 2; f++) {
        enum conf_format fmt = f ? CONF_FMT_ANTHROPIC : CONF_FMT_OPENAI;
        full = apierr_body(fmt, APIERR_BAD_GATEWAY, msg, big, sizeof(big));
        ck_assert_uint_gt(full, 300);
        for (size_t cap = 128; cap <= full + 16; cap++) {
            char *buf = malloc(cap);
            ck_assert_ptr_nonnull(buf);
            size_t n = apierr_body(fmt, APIERR_BAD_GATEWAY, msg, buf, cap);
            ck_assert_uint_lt(n, cap);
            ck_assert_uint_eq(n, strlen(buf));
            cJSON *root = parse_json(buf, n);
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
            ck_assert_msg(cJSON_IsObject(e), "cap %zu: no error object: %s", cap, buf);
            str_at(e, "message");
            str_at(e, "type");
            cJSON_Delete(root);
            free(buf);
        }
        /* with ample room the message is kept whole */
        char *buf = malloc(2 * full);
        ck_assert_ptr_nonnull(buf);
        apierr_body(fmt, APIERR_BAD_GATEWAY, msg, buf, 2 * full);
        cJSON *root = parse_json(buf, strlen(buf));
        ck_assert_str_eq(str_at(error_of(fmt, root), "message"), msg);
        cJSON_Delete(root);
        free(buf);
    }
}
END_TEST

START_TEST(too_long_openai)
{
    char *msg = malloc(5001);
    char buf[512];
    size_t n;

    ck_assert_ptr_nonnull(msg);
    memset(msg, 'x', 5000);
    msg[5000] = '\0';
    n = apierr_body(CONF_FMT_OPENAI, APIERR_BAD_REQUEST, msg, buf, sizeof(buf));
    free(msg);
    ck_assert_uint_lt(n, sizeof(buf));
    ck_assert_uint_eq(n, strlen(buf));
    cJSON *root = parse_json(buf, n);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    ck_assert_msg(cJSON_IsObject(e), "no error object: %s", buf);
    str_at(e, "message");
    ck_assert_str_eq(str_at(e, "type"), "invalid_request_error");
    cJSON_Delete(root);
}
END_TEST

/*
 * Regression test for a fixed bug: gate/api/apierr.c apierr_body, when the message does not fit, writes
 * the OpenAI-shaped fallback {"error":{"message":"error","type":"<openai type>"}} whatever the
 * format. Input: apierr_body(CONF_FMT_ANTHROPIC, APIERR_BAD_REQUEST, 5000 x "x", buf, 512), and
 * likewise apierr_stream_event with a 2000-byte message (its body buffer is 1 KiB). Expected
 * {"type":"error","error":{"type":"invalid_request_error","message":...}}; got no top-level
 * "type", so the Anthropic SDKs do not see an error of their format.
 */
START_TEST(too_long_anthropic)
{
    char *msg = malloc(5001);
    char buf[512];
    char ev[4096];
    size_t n, evn;
    cJSON *root, *evroot;
    const cJSON *rt, *et;
    int body_ok, event_ok;

    ck_assert_ptr_nonnull(msg);
    memset(msg, 'x', 5000);
    msg[5000] = '\0';
    n = apierr_body(CONF_FMT_ANTHROPIC, APIERR_BAD_REQUEST, msg, buf, sizeof(buf));
    msg[2000] = '\0';
    evn = apierr_stream_event(CONF_FMT_ANTHROPIC, APIERR_BAD_REQUEST, msg, ev, sizeof(ev));
    free(msg);
    ck_assert_uint_lt(n, sizeof(buf));
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_uint_eq(evn, strlen(ev));
    ck_assert_int_eq(strncmp(ev, "event: error\ndata: ", 19), 0);
    ck_assert_uint_gt(evn, 21);

    root = parse_json(buf, n);
    evroot = parse_json(ev + 19, evn - 19 - 2);
    rt = cJSON_GetObjectItemCaseSensitive(root, "type");
    et = cJSON_GetObjectItemCaseSensitive(evroot, "type");
    body_ok = cJSON_IsString(rt) && strcmp(rt->valuestring, "error") == 0;
    event_ok = cJSON_IsString(et) && strcmp(et->valuestring, "error") == 0;
    cJSON_Delete(root);
    cJSON_Delete(evroot);
    ck_assert_msg(body_ok, "too-long Anthropic body is not in Anthropic's shape: %s", buf);
    ck_assert_msg(event_ok, "too-long Anthropic event is not in Anthropic's shape: %s", ev);
}
END_TEST

START_TEST(stream_event_openai)
{
    char ev[1200];

    for (int i = 0; i < NKINDS; i++) {
        enum apierr k = statuses[i].kind;
        size_t n = apierr_stream_event(CONF_FMT_OPENAI, k, "upstream went away\nmid-stream", ev,
                                       sizeof(ev));
        ck_assert_uint_eq(n, strlen(ev));
        ck_assert_int_eq(strncmp(ev, "data: ", 6), 0);
        ck_assert_uint_gt(n, 8);
        ck_assert_int_eq(strcmp(ev + n - 2, "\n\n"), 0);
        /* one event: the only line ends are the two at the end */
        ck_assert_ptr_eq(strchr(ev, '\n'), ev + n - 2);
        cJSON *root = parse_json(ev + 6, n - 6 - 2);
        ck_assert_str_eq(str_at(openai_error(root), "message"), "upstream went away\nmid-stream");
        cJSON_Delete(root);
    }
}
END_TEST

START_TEST(stream_event_anthropic)
{
    static const char prefix[] = "event: error\ndata: ";
    const size_t plen = sizeof(prefix) - 1;
    char ev[1200];

    for (int i = 0; i < NKINDS; i++) {
        enum apierr k = statuses[i].kind;
        size_t n = apierr_stream_event(CONF_FMT_ANTHROPIC, k, "upstream went away\nmid-stream", ev,
                                       sizeof(ev));
        ck_assert_uint_eq(n, strlen(ev));
        ck_assert_int_eq(strncmp(ev, prefix, plen), 0);
        ck_assert_uint_gt(n, plen + 2);
        ck_assert_int_eq(strcmp(ev + n - 2, "\n\n"), 0);
        ck_assert_ptr_eq(strchr(ev + plen, '\n'), ev + n - 2);
        cJSON *root = parse_json(ev + plen, n - plen - 2);
        const cJSON *e = anthropic_error(root);
        const char *want = anthropic_type_for(statuses[i].status);
        ck_assert_str_eq(str_at(e, "message"), "upstream went away\nmid-stream");
        if (want != NULL)
            ck_assert_str_eq(str_at(e, "type"), want);
        cJSON_Delete(root);
    }
}
END_TEST

START_TEST(stream_event_small_buffer)
{
    for (size_t cap = 1; cap < 64; cap++) {
        char *ev = malloc(cap);
        ck_assert_ptr_nonnull(ev);
        size_t n = apierr_stream_event(CONF_FMT_ANTHROPIC, APIERR_BAD_GATEWAY, "x", ev, cap);
        ck_assert_uint_lt(n, cap);
        ck_assert_uint_eq(n, strlen(ev));
        n = apierr_stream_event(CONF_FMT_OPENAI, APIERR_BAD_GATEWAY, "x", ev, cap);
        ck_assert_uint_lt(n, cap);
        ck_assert_uint_eq(n, strlen(ev));
        free(ev);
    }
}
END_TEST

static Suite *apierr_suite(void)
{
    Suite *s = suite_create("apierr");
    TCase *tc = tcase_create("apierr");

    tcase_add_test(tc, every_status);
    tcase_add_test(tc, reason_phrases);
    tcase_add_test(tc, openai_bodies);
    tcase_add_test(tc, anthropic_bodies);
    tcase_add_test(tc, message_escaped);
    tcase_add_test(tc, message_invalid_utf8);
    tcase_add_test(tc, any_buffer_size);
    tcase_add_test(tc, too_long_openai);
    tcase_add_test(tc, too_long_anthropic);
    tcase_add_test(tc, stream_event_openai);
    tcase_add_test(tc, stream_event_anthropic);
    tcase_add_test(tc, stream_event_small_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(apierr_suite());
}
