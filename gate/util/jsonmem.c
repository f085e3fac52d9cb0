#include "gate/util/jsonmem.h"

#include <cjson/cJSON.h>
#include <malloc.h>
#include <stdlib.h>

#include "gate/util/arena.h"

/* the arena of the request this thread is working on, or NULL: per thread, never shared */
static _Thread_local struct arena *current;
/* without an arena, in a capped scope: the cap (0: none) and the bytes malloc'd and not freed */
static _Thread_local size_t cap, live;
/* allocations refused on this thread since jsonmem_failures_take() last ran */
static _Thread_local unsigned long failures;

static void *jm_malloc(size_t n)
{
    void *p;

    if (current != NULL) {
        p = arena_alloc_raw(current, n);
    } else if (cap > 0 && (n > cap || live > cap - n)) {
        p = NULL; /* cJSON fails the parse or the print */
    } else {
        p = malloc(n);
        if (p != NULL && cap > 0)
            live += malloc_usable_size(p);
    }
    if (p == NULL)
        failures++;
    return p;
}

static void jm_free(void *p)
{
    if (current != NULL || p == NULL)
        return;
    if (cap > 0) {
        size_t u = malloc_usable_size(p);
        live = u < live ? live - u : 0;
    }
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

void jsonmem_enter_capped(size_t limit, struct jsonmem_saved *save)
{
    save->arena = current;
    save->cap = cap;
    save->live = live;
    current = NULL;
    cap = limit;
    live = 0;
}

unsigned long jsonmem_failures_take(void)
{
    unsigned long n = failures;

    failures = 0;
    return n;
}

void jsonmem_leave_capped(const struct jsonmem_saved *save)
{
    current = save->arena;
    cap = save->cap;
    live = save->live;
}
