#include "gate/util/memcap.h"

int memcap_take(struct memcap *m, size_t n, int strict)
{
    size_t before = atomic_fetch_add_explicit(&m->used, n, memory_order_relaxed);

    if (strict && m->limit > 0 && (before + n > m->limit || before + n < before)) {
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
