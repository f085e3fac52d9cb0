/*
 * prefixcount: STUB until the prefixcount branch lands. See prefixcount.h.
 */
#include "cache/prefixcount.h"

#include <string.h>

struct prefixcount *prefixcount_new(int64_t max_entries)
{
    (void)max_entries;
    return NULL;
}

void prefixcount_free(struct prefixcount *p)
{
    (void)p;
}

void prefixcount_set_cap(struct prefixcount *p, int64_t max_entries)
{
    (void)p, (void)max_entries;
}

void prefixcount_memo(struct prefixcount *p, tok_prefix_memo *out)
{
    (void)p;
    memset(out, 0, sizeof(*out));
}

void prefixcount_stats(struct prefixcount *p, struct prefixcount_stats *out)
{
    (void)p;
    memset(out, 0, sizeof(*out));
}
