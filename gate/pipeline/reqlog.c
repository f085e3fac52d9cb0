#include "gate/pipeline/reqlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQLOG_CAP (16u * 1024 * 1024)
/*
 * The writer wakes every REQLOG_TICK_MS, or at once when REQLOG_KICK bytes wait: waking it
 * for every line would cost a context switch per request on the event loop's core.
 */
#define REQLOG_TICK_MS 20
#define REQLOG_KICK (256u * 1024)

struct reqlog {
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *pending;       /* lines waiting, guarded by mu */
    size_t len, cap;
    int stop;
    atomic_uint_fast64_t dropped;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "tokengate: request log write failed: %s\n", strerror(errno));
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* The writer: swaps the pending buffer out under the lock, then writes it without the lock. */
static void *writer(void *arg)
{
    struct reqlog *rl = arg;
    char *out = NULL;
    size_t out_cap = 0;

    pthread_mutex_lock(&rl->mu);
    for (;;) {
        while (rl->len < REQLOG_KICK && !rl->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += REQLOG_TICK_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&rl->cv, &rl->mu, &until);
            if (rl->len > 0)
                break;
        }
        if (rl->len == 0 && rl->stop)
            break;
        char *buf = rl->pending;
        size_t buf_cap = rl->cap, n = rl->len;
        rl->pending = out;
        rl->cap = out_cap;
        rl->len = 0;
        out = buf;
        out_cap = buf_cap;
        pthread_mutex_unlock(&rl->mu);
        write_all(rl->fd, out, n);
        pthread_mutex_lock(&rl->mu);
    }
    pthread_mutex_unlock(&rl->mu);
    free(out);
    return NULL;
}

struct reqlog *reqlog_open(const char *path, char *err, size_t errlen)
{
    struct reqlog *rl;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0) {
        snprintf(err, errlen, "cannot open request log %s: %s", path, strerror(errno));
        return NULL;
    }
    rl = calloc(1, sizeof(*rl));
    rl->fd = fd;
    pthread_mutex_init(&rl->mu, NULL);
    pthread_cond_init(&rl->cv, NULL);
    if (pthread_create(&rl->thread, NULL, writer, rl) != 0) {
        snprintf(err, errlen, "cannot start the request log thread");
        close(fd);
        free(rl);
        return NULL;
    }
    return rl;
}

void reqlog_write(struct reqlog *rl, const char *line, size_t n)
{
    pthread_mutex_lock(&rl->mu);
    if (rl->len + n + 1 > REQLOG_CAP) {
        pthread_mutex_unlock(&rl->mu);
        atomic_fetch_add_explicit(&rl->dropped, 1, memory_order_relaxed);
        return;
    }
    if (rl->len + n + 1 > rl->cap) {
        size_t ncap = rl->cap ? rl->cap : 64 * 1024;
        while (ncap < rl->len + n + 1)
            ncap *= 2;
        char *nb = realloc(rl->pending, ncap);
        if (nb == NULL) {
            pthread_mutex_unlock(&rl->mu);
            atomic_fetch_add_explicit(&rl->dropped, 1, memory_order_relaxed);
            return;
        }
        rl->pending = nb;
        rl->cap = ncap;
    }
    memcpy(rl->pending + rl->len, line, n);
    rl->pending[rl->len + n] = '\n';
    int kick = rl->len < REQLOG_KICK && rl->len + n + 1 >= REQLOG_KICK;
    rl->len += n + 1;
    pthread_mutex_unlock(&rl->mu);
    if (kick)
        pthread_cond_signal(&rl->cv);
}

uint64_t reqlog_dropped(struct reqlog *rl)
{
    return rl ? atomic_load_explicit(&rl->dropped, memory_order_relaxed) : 0;
}

void reqlog_close(struct reqlog *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_lock(&rl->mu);
    rl->stop = 1;
    pthread_cond_signal(&rl->cv);
    pthread_mutex_unlock(&rl->mu);
    pthread_join(rl->thread, NULL);
    close(rl->fd);
    free(rl->pending);
    pthread_mutex_destroy(&rl->mu);
    pthread_cond_destroy(&rl->cv);
    free(rl);
}
