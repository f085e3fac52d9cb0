#include "gate/util/memcap.h"

int memcap_take(struct memcap *m, size_t n, int strict)
{
    size_t before = atomic_fetch_add_explicit(&m->used, n, memory_order_relaxed);
    size_t limit = __atomic_load_n(&m->limit, __ATOMIC_RELAXED); /* a reload may change it */

    if (strict && limit > 0 && (before + n > limit || before + n < before)) {
        atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
        return -1;
    }
    return 0;
}

void memcap_give(struct memcap *m, size_t n)
{
    atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
}

size_t memcap_used(struct memcap *m)
{
    return atomic_load_explicit(&m->used, memory_order_relaxed);
}
