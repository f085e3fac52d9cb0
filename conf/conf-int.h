/*
 * conf-int: what the parts of the config loader share (conf.c, confid.c, confsvc.c, confdup.c, confval.c). Not for use
 * outside conf/.
 */
#ifndef TG_CONF_INT_H
#define TG_CONF_INT_H

#include <yaml.h>

#include "conf/conf.h"

struct loader {
    yaml_document_t doc;
    const char *name;
    char *err;
    size_t errlen;
    struct conf *c;
    /* confid.c's top-level nodes, read once every key is seen (they may come in any order) */
    const yaml_node_t *org, *departments, *keys, *budgets, *policies, *policy, *anonymous;
    /* confroute.c's top-level nodes, read once the models and the org tree are */
    const yaml_node_t *tiers, *routing;
    /* confmcp.c's top-level node, read once the org tree is (team allowlists name teams) */
    const yaml_node_t *mcp;
};

#define FOR_PAIRS(l, map, pair)                                                                    \
    for (yaml_node_pair_t *pair = (map)->data.mapping.pairs.start;                                 \
         pair < (map)->data.mapping.pairs.top; pair++)

#define FOR_ITEMS(l, seq, item)                                                                    \
    for (yaml_node_item_t *item = (seq)->data.sequence.items.start;                                \
         item < (seq)->data.sequence.items.top; item++)

/* Writes "name:line: message" (or "name: message" when n is NULL) into the loader's error
 * buffer. Returns -1, so that callers can return conf_fail(...). */
int conf_fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

yaml_node_t *conf_node(struct loader *l, int id);
/* The text of a scalar node, or NULL for a mapping or a sequence. */
const char *conf_scalar(const yaml_node_t *n);

/* Each reads one value of the kind it names into out, or fails naming key. */
int conf_want_scalar(struct loader *l, const yaml_node_t *n, const char *key, const char **out);
int conf_want_string(struct loader *l, const yaml_node_t *n, const char *key, char **out);
int conf_want_int(struct loader *l, const yaml_node_t *n, const char *key, long lo, long hi,
             long *out);
int conf_want_duration(struct loader *l, const yaml_node_t *n, const char *key, int64_t *out);
int conf_want_size(struct loader *l, const yaml_node_t *n, const char *key, size_t *out);
int conf_want_mapping(struct loader *l, const yaml_node_t *n, const char *key);

/* confid.c: the org tree, keys, budgets, policies, the ledger and the admin listener. Called
 * for each of its top-level keys; returns 1 when the key is not one of its own. */
int confid_load_key(struct loader *l, const char *k, const yaml_node_t *v);
/* Checks what spans sections, once everything is read (prices for dollar budgets...). */
int confid_finish(struct loader *l, const yaml_node_t *root);
void confid_free(struct conf *c);

/* confdup.c: refuses a file in which one mapping holds a key twice (libyaml takes that, and
 * the loader would read one and drop the other). Returns 0 or -1 (with the loader's error). */
int conf_unique_keys(struct loader *l);

/* confsvc.c: the ledger, admin and alerts sections (0, or -1 with l's error set), and what
 * they hold, freed (the strings; the conf itself stays). */
int confsvc_ledger(struct loader *l, const yaml_node_t *v);
int confsvc_admin(struct loader *l, const yaml_node_t *v);
int confsvc_alerts(struct loader *l, const yaml_node_t *v);
void confsvc_free(struct conf *c);

/* confroute.c: the tiers and routing sections. confroute_load_key keeps the node of its
 * top-level keys and returns 1 for any other key; confroute_finish reads them (after the
 * models and the org tree) into conf.routing, 0 or -1 with l's error set; confroute_free frees
 * what conf.routing holds (partly loaded too). */
int confroute_load_key(struct loader *l, const char *k, const yaml_node_t *v);
int confroute_finish(struct loader *l);
void confroute_free(struct conf *c);

/* Shared by confroute.c and confrule.c (what names the setting in errors: "rule 'x': tier"):
 * a name or a list of names, strdup'd into *out (1..CONF_ROUTE_MAX_LIST, none empty); true or
 * false; an exact model entry's index (wildcard entries refused); a tier by name into dest
 * ("down" too when allow_down). Each returns 0, or -1 with l's error set. */
#define CONF_ROUTE_MAX_LIST 256
int confroute_names(struct loader *l, const yaml_node_t *v, const char *what, char ***out,
                    int *n);
int confroute_bool(struct loader *l, const yaml_node_t *v, const char *what, int *out);
int confroute_target(struct loader *l, const yaml_node_t *v, const char *what, int *out);
int confroute_tier(struct loader *l, const yaml_node_t *v, const char *what, int allow_down,
                   struct conf_dest *dest);

/* confmcp.c: the mcp section. confmcp_load_key keeps its node and returns 1 for any other
 * key; confmcp_finish reads it into conf.mcp (0, or -1 with l's error set); confmcp_free frees
 * what conf.mcp holds (partly loaded too). */
int confmcp_load_key(struct loader *l, const char *k, const yaml_node_t *v);
int confmcp_finish(struct loader *l);
void confmcp_free(struct conf *c);

/* confrule.c: routing.rules, a list (0, or -1 with l's error set); one rule's contents freed. */
int confrule_load(struct loader *l, const yaml_node_t *seq);
void confrule_free(struct conf_rule *r);

/* confcache.c: the cache section (0, or -1 with l's error set); its defaults set on a new conf;
 * what it holds freed; a policy's cache key read into pc (which holds its defaults first). */
int confcache_load(struct loader *l, const yaml_node_t *v);
void confcache_defaults(struct conf *c);
void confcache_free(struct conf *c);
int confcache_policy(struct loader *l, const char *name, const yaml_node_t *v,
                     struct conf_policy_cache *pc);

/* model keys of confid.c: price, max_output_tokens, context_window. Returns 1 when k is not one of them. */
int confid_model_key(struct loader *l, const char *name, const char *k, const yaml_node_t *v,
                     struct conf_model *m);

#endif
