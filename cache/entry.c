/*
 * entry: STUB until the replay branch lands. See entry.h.
 */
#include "cache/entry.h"

struct entry_fill *entry_fill_new(enum conf_format api, int stream, size_t max_bytes)
{
    (void)api, (void)stream, (void)max_bytes;
    return NULL;
}

int entry_fill_event(struct entry_fill *f, const char *raw, size_t rawlen, const char *name,
                     const cJSON *data)
{
    (void)f, (void)raw, (void)rawlen, (void)name, (void)data;
    return -1;
}

int entry_fill_body(struct entry_fill *f, const char *body, size_t len, const cJSON *doc)
{
    (void)f, (void)body, (void)len, (void)doc;
    return -1;
}

char *entry_fill_finish(struct entry_fill *f, const struct entry_meta *meta, size_t *len)
{
    (void)f, (void)meta;
    *len = 0;
    return NULL;
}

void entry_fill_free(struct entry_fill *f)
{
    (void)f;
}

int entry_parse(const void *data, size_t len, struct entry_view *out)
{
    (void)data, (void)len, (void)out;
    return -1;
}
