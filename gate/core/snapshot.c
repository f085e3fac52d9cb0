/*
 * snapshot: the config snapshot in force, as any thread takes it. See gate_conf_get in
 * gate/core/worker.h; gate/reload.c swaps it.
 */
#include "gate/core/worker.h"

struct conf *gate_conf_get(struct gate_server *srv)
{
    struct conf *c;

    /* a lock, not an atomic pointer: between loading the pointer and taking the reference,
     * a reload could drop the last one */
    pthread_mutex_lock(&srv->conf_mu);
    c = conf_ref(srv->conf_live);
    pthread_mutex_unlock(&srv->conf_mu);
    return c;
}
