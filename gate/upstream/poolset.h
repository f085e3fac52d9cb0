/*
 * poolset: a worker's upstream pools, kept by provider name across config reloads.
 *
 * The set holds one pool per provider of the worker's snapshot, by index, for the common case
 * (a request of that snapshot), and the pools a reload retired: a provider gone from the new
 * file, or whose host, port or TLS changed. A retired pool keeps no idle connection; it is
 * freed once no exchange uses it. A request of an older snapshot finds its provider's pool by
 * name and endpoint: the kept pool, a retired one, or one made for it (retired from the start).
 * One worker's thread only.
 */
#ifndef TG_POOLSET_H
#define TG_POOLSET_H

struct conf;
struct conf_provider;
struct gate_worker;
struct poolset;
struct upstream_pool;

/* Counts of a rebind, for the reload's log line. */
struct poolset_changes {
    int kept, added, retired;
};

/* Pools for every provider of c, which the set references (conf_ref). Returns NULL when out of
 * memory. */
struct poolset *poolset_new(struct gate_worker *w, struct conf *c);

/*
 * Moves the set onto the snapshot c (a reload): a provider of the same name, host, port and
 * TLS keeps its pool (and its idle connections, up to c's pool_max_idle); a new or changed
 * one gets a new pool; the rest are retired. Fills ch when not NULL. Returns 0, or -1 when out
 * of memory, with the set as it was.
 */
int poolset_rebind(struct poolset *ps, struct conf *c, struct poolset_changes *ch);

/*
 * The pool for provider p of snapshot c (the request's). A provider in none of c's tables
 * (index -1: an MCP server, conf_mcp_server.prov) gets a pool of its own on first use, kept
 * with its idle connections until the next rebind retires it. Returns NULL only when a pool
 * had to be made and memory ran out.
 */
struct upstream_pool *poolset_get(struct poolset *ps, const struct conf *c,
                                  const struct conf_provider *p);

/* Frees the retired pools that no exchange uses any more. Returns how many remain. */
int poolset_sweep(struct poolset *ps);

/* Frees every pool (exchanges still on them fail, as upstream_pool_free says) and the set. */
void poolset_free(struct poolset *ps);

#endif
