/*
 * bevio: writing a bufferevent's output to its socket now, as nginx does, instead of on the
 * loop's next turn through a write event (which costs an epoll_ctl to add and one to remove).
 * Plain TCP only: an OpenSSL bufferevent must do its own writing.
 */
#ifndef TG_BEVIO_H
#define TG_BEVIO_H

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

/*
 * Writes as much of bev's output as the socket takes. Returns 0 (what remains, if anything,
 * waits for writability), or -1 with errno set when the socket failed for good.
 */
static inline int bevio_write_now(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    int n, err;

    /* a bufferevent keeps the front of its output frozen; its own writer thaws it likewise */
    evbuffer_unfreeze(out, 1);
    errno = 0;
    n = evbuffer_write(out, bufferevent_getfd(bev));
    err = errno;
    evbuffer_freeze(out, 1);
    if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        errno = err;
        return -1;
    }
    return 0;
}

#endif
