/*
 * jsonmem: where cJSON's memory comes from. cJSON takes its allocator only process-wide
 * (cJSON_InitHooks), not per call, so the gate installs hooks once at start-up that allocate
 * from the calling thread's current arena when one is set, and from malloc otherwise.
 *
 * Between jsonmem_enter(arena) and jsonmem_leave() on a thread, every cJSON node, string and
 * print buffer comes from that arena, and cJSON_Delete/cJSON_free give nothing back: the arena
 * goes at once when the request ends. Such objects must not be freed or grown outside a scope
 * of the same arena; cJSON objects made outside any scope are malloc'd as usual.
 * This took malloc and free from about 15% of the gate's CPU under load to almost nothing.
 */
#ifndef TG_JSONMEM_H
#define TG_JSONMEM_H

#include <stddef.h>

struct arena;

/* Installs the hooks. Call once, before any thread uses cJSON. */
void jsonmem_init(void);

/* Makes a the calling thread's current arena. Returns the one it replaces, for jsonmem_leave. */
struct arena *jsonmem_enter(struct arena *a);

/* Ends the scope: the previous arena (or malloc, for NULL) serves cJSON again. */
void jsonmem_leave(struct arena *previous);

/* What jsonmem_enter_capped replaced, for jsonmem_leave_capped. */
struct jsonmem_saved {
    struct arena *arena;
    size_t cap, live;
};

/*
 * As jsonmem_enter(NULL) (cJSON's memory from malloc, freed one by one), with the bytes held
 * at once in the scope capped at limit (0: no cap): past it an allocation fails, and cJSON
 * fails the parse or the print. For what is parsed and freed many times over a request, such
 * as the events of a stream, which an arena would keep until the end. Saves the previous scope
 * into *save. Scopes nest; each is ended by jsonmem_leave_capped(save) on the same thread.
 */
void jsonmem_enter_capped(size_t limit, struct jsonmem_saved *save);

/* Ends a capped scope: what was saved in *save serves cJSON again. */
void jsonmem_leave_capped(const struct jsonmem_saved *save);

/*
 * How many cJSON allocations failed on the calling thread since the last call (which resets
 * the count). cJSON's builders take a NULL parent quietly, so a document built without a check
 * at each step is whole only when this is 0 once it is built.
 */
unsigned long jsonmem_failures_take(void);

#endif
