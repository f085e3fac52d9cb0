/*
 * confdup: the check that no mapping of a config file holds one key twice. libyaml takes
 * duplicate keys, and the loader then reads one of them and drops the other without a word (a
 * second `budgets:` replaced the first, and the org's budget was gone): such a file is refused,
 * naming both lines. Sorting the keys of each mapping keeps the check O(n log n) for the
 * largest mapping a file may hold (keys:, with one entry per agent key).
 */
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

static int same_text(const yaml_node_t *a, const yaml_node_t *b)
{
    return a->data.scalar.length == b->data.scalar.length &&
           memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) == 0;
}

/* Orders scalar nodes by their text (bytes, NUL included), then by where they are. */
static int cmp_key(const void *pa, const void *pb)
{
    const yaml_node_t *a = *(const yaml_node_t *const *)pa, *b = *(const yaml_node_t *const *)pb;
    size_t la = a->data.scalar.length, lb = b->data.scalar.length;
    int c = memcmp(a->data.scalar.value, b->data.scalar.value, la < lb ? la : lb);

    if (c != 0)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->start_mark.index < b->start_mark.index ? -1
                                                     : a->start_mark.index > b->start_mark.index;
}

/* Gate keys ("tg-...", "sha256:...") are secrets: an error never shows them. */
static int secret_like(const yaml_node_t *k)
{
    const char *s = (const char *)k->data.scalar.value;
    return strncmp(s, "tg-", 3) == 0 || strncmp(s, "sha256:", 7) == 0;
}

int conf_unique_keys(struct loader *l)
{
    for (yaml_node_t *n = l->doc.nodes.start; n < l->doc.nodes.top; n++) {
        size_t np, nk = 0;
        const yaml_node_t **keys;
        int rc = 0;

        if (n->type != YAML_MAPPING_NODE)
            continue;
        np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (np < 2)
            continue;
        keys = malloc(np * sizeof(*keys));
        if (keys == NULL)
            return conf_fail(l, n, "out of memory");
        FOR_PAIRS(l, n, pair) {
            const yaml_node_t *k = conf_node(l, pair->key);
            if (k != NULL && k->type == YAML_SCALAR_NODE)
                keys[nk++] = k;
        }
        qsort(keys, nk, sizeof(*keys), cmp_key);
        for (size_t i = 1; i < nk && rc == 0; i++) {
            const yaml_node_t *first = keys[i - 1], *again = keys[i];
            if (!same_text(first, again))
                continue;
            if (secret_like(again))
                rc = conf_fail(l, again,
                               "a key is given twice in one mapping (first on line %zu): "
                               "YAML keys must be unique",
                               first->start_mark.line + 1);
            else
                rc = conf_fail(l, again,
                               "'%.100s' is given twice in one mapping (first on line "
                               "%zu): YAML keys must be unique",
                               (const char *)again->data.scalar.value, first->start_mark.line + 1);
        }
        free(keys);
        if (rc < 0)
            return -1;
    }
    return 0;
}
