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

struct arena;

/* Installs the hooks. Call once, before any thread uses cJSON. */
void jsonmem_init(void);

/* Makes a the calling thread's current arena. Returns the one it replaces, for jsonmem_leave. */
struct arena *jsonmem_enter(struct arena *a);

/* Ends the scope: the previous arena (or malloc, for NULL) serves cJSON again. */
void jsonmem_leave(struct arena *previous);

#endif
