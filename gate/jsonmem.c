#include "gate/jsonmem.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "gate/arena.h"

/* the arena of the request this thread is working on, or NULL: per thread, never shared */
static _Thread_local struct arena *current;

static void *jm_malloc(size_t n)
{
    return current != NULL ? arena_alloc_raw(current, n) : malloc(n);
}

static void jm_free(void *p)
{
    if (current == NULL)
        free(p);
}

void jsonmem_init(void)
{
    cJSON_Hooks hooks = {.malloc_fn = jm_malloc, .free_fn = jm_free};
    cJSON_InitHooks(&hooks);
}

struct arena *jsonmem_enter(struct arena *a)
{
    struct arena *prev = current;
    current = a;
    return prev;
}

void jsonmem_leave(struct arena *previous)
{
    current = previous;
}
