/*
 * completion: a worker's completion queue. See completion.h.
 */
#include "gate/pipeline/completion.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

struct completion_queue {
    pthread_mutex_t mu;
    struct completion *head, **tail; /* in the order posted */
    struct event *ev;                /* made active by a post; runs on the worker's loop */
};

/* Takes everything queued now. */
static struct completion *take_all(struct completion_queue *q)
{
    struct completion *list;

    pthread_mutex_lock(&q->mu);
    list = q->head;
    q->head = NULL;
    q->tail = &q->head;
    pthread_mutex_unlock(&q->mu);
    return list;
}

static void run_list(struct completion *list)
{
    while (list != NULL) {
        struct completion *c = list;
        list = c->next;
        c->next = NULL;
        c->run(c); /* may post again, or free c's owner */
    }
}

/* On the worker's loop: what was posted since the last turn. What these runs post is run on
 * the next turn (the event is made active again), so a run never nests inside another. */
static void queue_cb(evutil_socket_t fd, short what, void *arg)
{
    run_list(take_all(arg));
}

struct completion_queue *completion_queue_new(struct event_base *base)
{
    struct completion_queue *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->tail = &q->head;
    q->ev = event_new(base, -1, 0, queue_cb, q);
    if (q->ev == NULL) {
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

void completion_queue_run(struct completion_queue *q)
{
    struct completion *list;

    while ((list = take_all(q)) != NULL)
        run_list(list);
}

void completion_queue_free(struct completion_queue *q)
{
    if (q == NULL)
        return;
    completion_queue_run(q);
    event_free(q->ev);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

void completion_post(struct completion_queue *q, struct completion *c,
                     void (*run)(struct completion *c))
{
    int first;

    c->run = run;
    c->next = NULL;
    pthread_mutex_lock(&q->mu);
    first = q->head == NULL;
    *q->tail = c;
    q->tail = &c->next;
    pthread_mutex_unlock(&q->mu);
    if (first)
        event_active(q->ev, EV_READ, 0); /* libevent's own lock makes this safe from any thread */
}
