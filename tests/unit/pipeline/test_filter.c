/*
 * Unit tests for gate/pipeline/filter.h: a fake response source feeds a head, stream events, a
 * body and the end through the gate's usage and count filters into a capturing writer; and
 * backpressure from the writer pauses the source, which the client's drain resumes.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/pipeline/filter.h"
#include "gate/pipeline/proxy.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/source.h"
#include "gate/util/arena.h"
#include "run_suite.h"

/* ---- a fake source --------------------------------------------------------------------- */

static int started, paused, resumed, cancelled;

static void f_start(struct gate_req *req)
{
    started++;
}
static void f_pause(struct gate_req *req)
{
    paused++;
}
static void f_resume(struct gate_req *req)
{
    resumed++;
}
static void f_cancel(struct gate_req *req)
{
    cancelled++;
}

static const struct resp_source fake_source = {
    .name = "fake",
    .start = f_start,
    .pause = f_pause,
    .resume = f_resume,
    .cancel = f_cancel,
};

/* ---- a capturing writer: the client ---------------------------------------------------- */

#define WRITER_HIGH 64 /* past this many bytes not taken, the writer asks the source to wait */

static int head_status, events, ends;
static char got[4096];
static size_t got_len, held;

static int cap_head(struct resp_filter *f, struct gate_req *req, int status,
                    const struct http_header *h, int n)
{
    head_status = status;
    return 0;
}

static int cap_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    if (ev->drop)
        return 0;
    events++;
    memcpy(got + got_len, ev->raw, ev->raw_len);
    got_len += ev->raw_len;
    held += ev->raw_len;
    if (held > WRITER_HIGH && !req->upstream_paused) {
        req->upstream_paused = 1;
        req->src->pause(req);
    }
    return 0;
}

static int cap_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    memcpy(got + got_len, b->data, b->len);
    got_len += b->len;
    return 0;
}

static int cap_end(struct resp_filter *f, struct gate_req *req)
{
    ends++;
    return 0;
}

static const struct resp_filter_type capture = {
    .name = "capture",
    .head = cap_head,
    .event = cap_event,
    .body = cap_body,
    .end = cap_end,
};

/* A filter added between count and the writer (as translation would be): it drops the
 * provider's keep-alive events; the filters before it still saw them. */
static int seen_by_ping;

static int ping_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    if (strcmp(ev->name, "ping") == 0) {
        seen_by_ping++;
        ev->drop = 1;
    }
    return filter_event(f, req, ev);
}

static const struct resp_filter_type drop_pings = {.name = "drop_pings", .event = ping_event};

/* ---- the request ----------------------------------------------------------------------- */

static struct gate_req *req;

static void setup(void)
{
    req = calloc(1, sizeof(*req));
    req->arena = arena_new();
    ck_assert_ptr_nonnull(req->arena);
    req->ep = EP_CHAT;
    req->client_api = req->upstream_api = api_dialect_for(EP_CHAT);
    req->out_limit = -1;
    req->tc.enc = tok_encoding("o200k_base");
    ck_assert_ptr_nonnull(req->tc.enc);
    req->tc.factor = 1.0;
    req->src = &fake_source;
    ck_assert_int_eq(filter_push(req, &filter_usage, NULL), 0);
    ck_assert_int_eq(filter_push(req, &filter_count, NULL), 0);
    ck_assert_int_eq(filter_push(req, &capture, NULL), 0);
    started = paused = resumed = cancelled = 0;
    head_status = events = ends = 0;
    got_len = held = 0;
}

static void teardown(void)
{
    tcount_finish(req, NULL); /* frees what it held */
    arena_free(req->arena);
    free(req);
}

/* Feeds one event as the upstream source does: its data parsed when it looks like JSON. */
static int feed(const char *name, const char *data)
{
    char raw[512];
    struct resp_event ev = {.name = name};
    cJSON *doc = NULL;

    snprintf(raw, sizeof(raw), "data: %s\n\n", data);
    ev.raw = raw;
    ev.raw_len = strlen(raw);
    ev.json = data[0] == '{';
    if (ev.json)
        ev.data = doc = cJSON_Parse(data);
    int rc = filter_event(NULL, req, &ev);
    cJSON_Delete(doc);
    return rc;
}

#define DELTA(text) "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" text "\"}}]}"
#define USAGE_CHUNK                                                                                \
    "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}" \
    "}"

START_TEST(stream_through_usage_and_count_into_the_writer)
{
    req->usage_injected = 1; /* the gate asked for the usage chunk: the client does not get it */
    ck_assert_int_eq(filter_head(NULL, req, 200, NULL, 0), 0);
    ck_assert_int_eq(feed("", DELTA("Hello there, how are you today?")), 0);
    ck_assert_int_eq(feed("", USAGE_CHUNK), 0);
    ck_assert_int_eq(feed("", "[DONE]"), 0);
    struct resp_body rest = {.data = "", .len = 0};
    ck_assert_int_eq(filter_body(NULL, req, &rest), 0);
    ck_assert_int_eq(filter_end(NULL, req), 0);

    ck_assert_int_eq(head_status, 200);
    ck_assert_int_eq(events, 2); /* the delta and [DONE]; the usage chunk was dropped */
    ck_assert_ptr_null(strstr(got, "usage"));
    ck_assert_ptr_nonnull(strstr(got, "Hello there"));
    ck_assert_int_eq(ends, 1);
    /* usage read by the usage filter, the output counted by the count filter */
    ck_assert(req->usage.have && req->usage.final);
    ck_assert_int_eq(req->usage.input, 12);
    ck_assert_int_eq(req->usage.output, 7);
    tcount_finish(req, NULL);
    ck_assert_uint_gt(req->tc.output, 0);
}
END_TEST

START_TEST(usage_chunk_is_relayed_when_the_client_asked_for_it)
{
    ck_assert_int_eq(feed("", USAGE_CHUNK), 0);
    ck_assert_int_eq(events, 1);
    ck_assert_int_eq(req->usage.output, 7);
}
END_TEST

START_TEST(count_cuts_a_runaway_stream_before_the_writer)
{
    req->out_limit = 5;
    ck_assert_int_eq(feed("", DELTA("one")), 0);
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = feed("", DELTA("and then some more words that keep coming"));
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(req->stop_kind, APIERR_OUTPUT_LIMIT);
    ck_assert_ptr_nonnull(strstr(req->stop_why, "5 tokens"));
    ck_assert_int_lt(events, 20); /* the event that crossed never reached the writer */
}
END_TEST

START_TEST(whole_body_is_read_by_usage_and_count)
{
    const char *text = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi "
                       "there\"}}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,"
                       "\"total_tokens\":12}}";
    cJSON *doc = cJSON_Parse(text);
    struct resp_body b = {.data = text, .len = strlen(text), .doc = doc, .read = 1};

    ck_assert_int_eq(filter_head(NULL, req, 200, NULL, 0), 0);
    ck_assert_int_eq(filter_body(NULL, req, &b), 0);
    ck_assert_int_eq(filter_end(NULL, req), 0);
    cJSON_Delete(doc);
    ck_assert_int_eq(req->usage.input, 9);
    ck_assert_int_eq(req->usage.output, 3);
    tcount_finish(req, NULL);
    ck_assert_uint_gt(req->tc.output, 0);
    ck_assert_uint_eq(got_len, strlen(text));
}
END_TEST

START_TEST(an_unread_body_is_not_counted)
{
    struct resp_body b = {.data = "{\"error\":{}}", .len = 12, .read = 0};

    ck_assert_int_eq(filter_body(NULL, req, &b), 0);
    ck_assert(!req->usage.have);
    tcount_finish(req, NULL);
    ck_assert_uint_eq(req->tc.output, 0);
}
END_TEST

START_TEST(backpressure_pauses_the_source_and_the_drain_resumes_it)
{
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(feed("", DELTA("a piece of the answer")), 0);
    ck_assert_int_eq(paused, 1); /* once, however much more comes while paused */
    ck_assert_int_eq(resumed, 0);
    held = 0;
    proxy_client_drained(req); /* the client took its output */
    ck_assert_int_eq(resumed, 1);
    ck_assert(!req->upstream_paused);
    proxy_client_drained(req); /* nothing paused: nothing to resume */
    ck_assert_int_eq(resumed, 1);
}
END_TEST

START_TEST(an_added_filter_sees_and_changes_what_passes)
{
    req->chain = NULL;
    ck_assert_int_eq(filter_push(req, &filter_usage, NULL), 0);
    ck_assert_int_eq(filter_push(req, &filter_count, NULL), 0);
    ck_assert_int_eq(filter_push(req, &drop_pings, NULL), 0);
    ck_assert_int_eq(filter_push(req, &capture, NULL), 0);
    seen_by_ping = 0;
    ck_assert_int_eq(feed("ping", "{}"), 0);
    ck_assert_int_eq(feed("", DELTA("hi")), 0);
    ck_assert_int_eq(seen_by_ping, 1);
    ck_assert_int_eq(events, 1);
    ck_assert_ptr_null(strstr(got, "{}"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("chain");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, stream_through_usage_and_count_into_the_writer);
    tcase_add_test(tc, usage_chunk_is_relayed_when_the_client_asked_for_it);
    tcase_add_test(tc, count_cuts_a_runaway_stream_before_the_writer);
    tcase_add_test(tc, whole_body_is_read_by_usage_and_count);
    tcase_add_test(tc, an_unread_body_is_not_counted);
    tcase_add_test(tc, backpressure_pauses_the_source_and_the_drain_resumes_it);
    tcase_add_test(tc, an_added_filter_sees_and_changes_what_passes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
