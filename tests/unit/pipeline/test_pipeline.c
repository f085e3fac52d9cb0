/*
 * Unit tests for gate/pipeline/pipeline.h (the stage driver, with fake stages) and
 * gate/pipeline/completion.h (the worker's completion queue, posted to from other threads).
 */
#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gate/core/worker.h"
#include "gate/pipeline/completion.h"
#include "gate/pipeline/pipeline.h"
#include "run_suite.h"

#define NSTAGES 6

/* What the fake stages return, and what they saw. */
static enum stage_rc script[NSTAGES];
static int ran[NSTAGES], nran;
static enum req_phase phase_seen[NSTAGES];
static int fails;
static enum apierr fail_kind;
static const char *fail_msg;

static enum stage_rc run_stage(struct gate_req *req, int i)
{
    ran[nran++] = i;
    phase_seen[i] = req->phase;
    if (script[i] == STAGE_FAIL)
        return stage_fail(req, APIERR_BAD_REQUEST, "stage failed");
    if (script[i] == STAGE_WAIT)
        req->phase = REQ_WAITING; /* parked for a completion */
    return script[i];
}

static enum stage_rc s0(struct gate_req *r)
{
    return run_stage(r, 0);
}
static enum stage_rc s1(struct gate_req *r)
{
    return run_stage(r, 1);
}
static enum stage_rc s2(struct gate_req *r)
{
    return run_stage(r, 2);
}
static enum stage_rc s3(struct gate_req *r)
{
    return run_stage(r, 3);
}
static enum stage_rc s4(struct gate_req *r)
{
    return run_stage(r, 4);
}
static enum stage_rc s5(struct gate_req *r)
{
    return run_stage(r, 5);
}

static void fake_fail(struct gate_req *req, enum apierr kind, const char *message)
{
    fails++;
    fail_kind = kind;
    fail_msg = message;
}

static const struct pipeline_stage stages[NSTAGES] = {
    {"parse", REQ_ADMITTING, s0}, {"admit", REQ_ADMITTING, s1}, {"dispatch", REQ_DISPATCHED, s2},
    {"settle", REQ_SETTLING, s3}, {"after", REQ_SETTLING, s4},  {"record", REQ_SETTLING, s5},
};
static const struct pipeline fake = {.stages = stages, .n = NSTAGES, .fail = fake_fail};

static struct event_base *base;
static struct gate_worker worker;
static struct gate_req *req;
static char client; /* stands for a connection: only compared with NULL */

static void setup(void)
{
    evthread_use_pthreads();
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    memset(&worker, 0, sizeof(worker));
    worker.base = base;
    worker.cq = completion_queue_new(base);
    ck_assert_ptr_nonnull(worker.cq);
    req = calloc(1, sizeof(*req));
    req->w = &worker;
    req->conn = (struct gate_conn *)&client;
    for (int i = 0; i < NSTAGES; i++)
        script[i] = STAGE_NEXT;
    nran = fails = 0;
    fail_msg = NULL;
}

static void teardown(void)
{
    completion_queue_free(worker.cq);
    event_base_free(base);
    free(req);
}

START_TEST(next_runs_every_stage_in_order)
{
    pipeline_start(&fake, req);
    ck_assert_int_eq(nran, NSTAGES);
    for (int i = 0; i < NSTAGES; i++) {
        ck_assert_int_eq(ran[i], i);
        ck_assert_int_eq(phase_seen[i], stages[i].phase); /* the table's phase, while it runs */
    }
    ck_assert_int_eq(fails, 0);
}
END_TEST

START_TEST(answered_stops_the_driver)
{
    script[1] = STAGE_ANSWERED;
    pipeline_start(&fake, req);
    ck_assert_int_eq(nran, 2);
    ck_assert_int_eq(fails, 0);
}
END_TEST

/* FAIL from each position ends in the one finalize path, once, with the stage's reason. */
START_TEST(fail_from_each_stage_ends_in_the_finalize_path)
{
    for (int k = 0; k < NSTAGES; k++) {
        for (int i = 0; i < NSTAGES; i++)
            script[i] = i == k ? STAGE_FAIL : STAGE_NEXT;
        nran = fails = 0;
        memset(req, 0, sizeof(*req));
        req->w = &worker;
        req->conn = (struct gate_conn *)&client;
        pipeline_start(&fake, req);
        ck_assert_int_eq(nran, k + 1);
        ck_assert_int_eq(fails, 1);
        ck_assert_int_eq(fail_kind, APIERR_BAD_REQUEST);
        ck_assert_str_eq(fail_msg, "stage failed");
    }
}
END_TEST

struct poster {
    struct gate_req *req;
    enum stage_rc rc;
};

static void *post_later(void *arg)
{
    struct poster *p = arg;
    pipeline_post(p->req, p->rc);
    return NULL;
}

/* Runs the loop until the completion queue has run what was posted. */
static void loop_once(void)
{
    ck_assert_int_eq(event_base_loop(base, EVLOOP_ONCE), 0);
}

START_TEST(wait_parks_and_a_post_from_another_thread_resumes)
{
    pthread_t t;
    struct poster p = {req, STAGE_NEXT};

    script[3] = STAGE_WAIT;
    pipeline_start(&fake, req);
    ck_assert_int_eq(nran, 4); /* parked in settle */
    ck_assert_int_eq(req->phase, REQ_WAITING);
    ck_assert_int_eq(pthread_create(&t, NULL, post_later, &p), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(nran, 4); /* nothing runs on the poster's thread */
    loop_once();
    ck_assert_int_eq(nran, NSTAGES); /* resumed after the stage that waited */
    ck_assert_int_eq(ran[4], 4);
    ck_assert_int_eq(fails, 0);
}
END_TEST

START_TEST(resume_with_fail_ends_in_the_finalize_path)
{
    script[1] = STAGE_WAIT;
    pipeline_start(&fake, req);
    stage_fail(req, APIERR_UNAVAILABLE, "the store is down");
    pipeline_post(req, STAGE_FAIL);
    loop_once();
    ck_assert_int_eq(nran, 2);
    ck_assert_int_eq(fails, 1);
    ck_assert_int_eq(fail_kind, APIERR_UNAVAILABLE);
    ck_assert_int_eq(req->phase, REQ_ADMITTING); /* out of WAITING for the finalize path */
}
END_TEST

/* A client that left while its request waited in admission: nothing more is done for it. */
START_TEST(client_gone_while_waiting_is_finalized_not_dispatched)
{
    script[1] = STAGE_WAIT;
    pipeline_start(&fake, req);
    req->conn = NULL;
    pipeline_post(req, STAGE_NEXT);
    loop_once();
    ck_assert_int_eq(nran, 2); /* dispatch never ran */
    ck_assert_int_eq(fails, 1);
}
END_TEST

/* ... but one that waits for its record (past dispatch) goes on to be recorded. */
START_TEST(client_gone_while_settling_goes_on)
{
    script[3] = STAGE_WAIT;
    pipeline_start(&fake, req);
    req->conn = NULL;
    pipeline_resume(req, STAGE_NEXT);
    ck_assert_int_eq(nran, NSTAGES);
    ck_assert_int_eq(fails, 0);
}
END_TEST

/* ---- the completion queue ------------------------------------------------------------ */

#define NTHREADS 4
#define PER_THREAD 500

struct item {
    struct completion c;
    int thread, seq;
};

static int runs, last_seq[NTHREADS], out_of_order;

static void item_run(struct completion *c)
{
    struct item *it = (struct item *)c;
    runs++;
    if (it->seq != last_seq[it->thread] + 1)
        out_of_order++;
    last_seq[it->thread] = it->seq;
}

struct producer {
    struct item items[PER_THREAD];
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < PER_THREAD; i++)
        completion_post(worker.cq, &p->items[i].c, item_run);
    return NULL;
}

START_TEST(queue_runs_each_post_once_in_order_per_poster)
{
    static struct producer prod[NTHREADS];
    pthread_t t[NTHREADS];

    runs = out_of_order = 0;
    for (int k = 0; k < NTHREADS; k++) {
        last_seq[k] = -1;
        for (int i = 0; i < PER_THREAD; i++)
            prod[k].items[i] = (struct item){.thread = k, .seq = i};
        ck_assert_int_eq(pthread_create(&t[k], NULL, produce, &prod[k]), 0);
    }
    for (int k = 0; k < NTHREADS; k++)
        pthread_join(t[k], NULL);
    loop_once();
    ck_assert_int_eq(runs, NTHREADS * PER_THREAD);
    ck_assert_int_eq(out_of_order, 0);
}
END_TEST

static struct completion again;
static int again_runs, depth, max_depth;

static void post_again(struct completion *c)
{
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    if (++again_runs < 3)
        completion_post(worker.cq, c, post_again); /* runs after this one, never inside it */
    depth--;
}

START_TEST(a_run_that_posts_is_not_nested_and_free_runs_what_is_left)
{
    again_runs = depth = max_depth = 0;
    completion_post(worker.cq, &again, post_again);
    for (int i = 0; i < 10 && again_runs < 3; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(again_runs, 3);
    ck_assert_int_eq(max_depth, 1);
    again_runs = 2;
    completion_post(worker.cq, &again, post_again);
    completion_queue_free(worker.cq); /* shutdown: runs what is left, then frees */
    worker.cq = NULL;
    ck_assert_int_eq(again_runs, 3);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("driver");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, next_runs_every_stage_in_order);
    tcase_add_test(tc, answered_stops_the_driver);
    tcase_add_test(tc, fail_from_each_stage_ends_in_the_finalize_path);
    tcase_add_test(tc, wait_parks_and_a_post_from_another_thread_resumes);
    tcase_add_test(tc, resume_with_fail_ends_in_the_finalize_path);
    tcase_add_test(tc, client_gone_while_waiting_is_finalized_not_dispatched);
    tcase_add_test(tc, client_gone_while_settling_goes_on);
    suite_add_tcase(s, tc);
    tc = tcase_create("completion");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, queue_runs_each_post_once_in_order_per_poster);
    tcase_add_test(tc, a_run_that_posts_is_not_nested_and_free_runs_what_is_left);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
