#include "gate/http/httphdr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gate/util/arena.h"

void hdr_start(struct hdr_reader *r)
{
    r->piece_len = 0;
    r->bytes = 0;
    r->name = NULL;
    r->name_len = 0;
    r->list = NULL;
    r->n = r->cap = 0;
}

enum hdr_err hdr_piece(struct hdr_reader *r, const char *at, size_t len, size_t max_bytes)
{
    r->bytes += len;
    if (r->bytes > max_bytes)
        return HDR_TOO_LARGE;
    if (r->piece_len + len + 1 > r->piece_cap) {
        size_t cap = r->piece_cap ? r->piece_cap : 256;
        while (cap < r->piece_len + len + 1)
            cap *= 2;
        char *np = realloc(r->piece, cap);
        if (np == NULL)
            return HDR_NOMEM;
        r->piece = np;
        r->piece_cap = cap;
    }
    memcpy(r->piece + r->piece_len, at, len);
    r->piece_len += len;
    r->piece[r->piece_len] = '\0';
    return HDR_OK;
}

void hdr_piece_reset(struct hdr_reader *r)
{
    r->piece_len = 0;
}

enum hdr_err hdr_name_done(struct hdr_reader *r, struct arena *a, int max_headers)
{
    if (r->n >= max_headers)
        return HDR_TOO_MANY;
    for (size_t i = 0; i < r->piece_len; i++)
        r->piece[i] = (char)tolower((unsigned char)r->piece[i]);
    r->name = arena_strndup(a, r->piece ? r->piece : "", r->piece_len);
    r->name_len = r->piece_len;
    r->piece_len = 0;
    return r->name != NULL ? HDR_OK : HDR_NOMEM;
}

enum hdr_err hdr_value_done(struct hdr_reader *r, struct arena *a)
{
    size_t vlen = r->piece_len;

    while (vlen > 0 && (r->piece[vlen - 1] == ' ' || r->piece[vlen - 1] == '\t'))
        vlen--;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        struct http_header *nl = arena_alloc(a, (size_t)cap * sizeof(*nl));
        if (nl == NULL)
            return HDR_NOMEM;
        if (r->n)
            memcpy(nl, r->list, (size_t)r->n * sizeof(*nl));
        r->list = nl;
        r->cap = cap;
    }
    struct http_header *h = &r->list[r->n];
    h->name = r->name;
    h->name_len = r->name_len;
    h->value = arena_strndup(a, r->piece ? r->piece : "", vlen);
    h->value_len = vlen;
    r->piece_len = 0;
    if (h->value == NULL)
        return HDR_NOMEM;
    r->n++;
    return HDR_OK;
}

int hdr_name_ok(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        /* strchr finds the terminating NUL too: a NUL byte is refused first */
        if (ch == 0 || ch > 0x7f || (!isalnum(ch) && strchr("!#$%&'*+-.^_`|~", ch) == NULL))
            return 0;
    }
    return 1;
}

int hdr_target_ok(const char *target, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)target[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '#')
            return 0;
    }
    return 1;
}

void hdr_free(struct hdr_reader *r)
{
    free(r->piece);
    r->piece = NULL;
    r->piece_len = r->piece_cap = 0;
}

int hdr_not_forwarded(const char *name)
{
    static const char *const drop[] = {
        "connection",     "keep-alive", "proxy-connection", "transfer-encoding",
        "te",             "trailer",    "upgrade",          "host",
        "content-length", "accept-encoding", "expect",      "x-request-id",
        "proxy-authorization",
    };

    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strcmp(name, drop[i]) == 0)
            return 1;
    return strncmp(name, "x-tokengate-", 12) == 0; /* the gate's own (x-tokengate-task) */
}
