/*
 * toolcache: tool results by (scope, server, tool, canonical arguments). See toolcache.h.
 *
 * The key is "tool\0" scope "\0" server "\0" tool "\0" and the canonical text of the
 * arguments. Scope, server and tool are C strings (no NUL inside), so the NULs make the key
 * unambiguous: "a" + "b\0c" can never spell "a\0b" + "c". The scope comes first, as the store
 * asks, so that one tenant's entry can never answer another's lookup.
 */
#include "cache/toolcache.h"

#include <string.h>

#include "cache/store.h"

static int raw_str(struct canon_buf *b, const char *s)
{
    if (s == NULL)
        s = "";
    return canon_raw(b, s, strlen(s) + 1); /* with its NUL: the separator */
}

int toolcache_key(struct canon_buf *b, const char *scope, const char *server, const char *tool,
                  const cJSON *args)
{
    if (canon_raw(b, "tool", 5) < 0 || raw_str(b, scope) < 0 || raw_str(b, server) < 0 ||
        raw_str(b, tool) < 0)
        return -1;
    if (args == NULL)
        return 0;
    return canon_append(b, args, NULL);
}

struct cache_val *toolcache_get(struct cache_store *s, const struct canon_buf *key,
                                int64_t now_ms)
{
    if (s == NULL || key == NULL || key->data == NULL)
        return NULL;
    return cache_store_get(s, key->data, key->len, now_ms);
}

int toolcache_put(struct cache_store *s, const struct canon_buf *key, const char *result,
                  size_t n, int64_t ttl_ms, int64_t now_ms)
{
    if (s == NULL || key == NULL || key->data == NULL || result == NULL || ttl_ms <= 0)
        return -1;
    return cache_store_put(s, key->data, key->len, result, n, ttl_ms, now_ms);
}
