/*
 * canon: the canonical text of a JSON value (see canon.h). The text is JSON itself: objects
 * with their members sorted by key bytewise (members of one key keep their order), no white
 * space, strings escaped one way (", \ and control characters only; other bytes as they are,
 * so "\u00e9" and "é" are one string), numbers in one spelling (an integral value below 2^53 as
 * an integer, any other in the shortest %g that reads back to the same double).
 */
#include "cache/canon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define CANON_MAX_DEPTH 64
#define CANON_SORT_STACK 32 /* members sorted without malloc up to this many */

static int buf_reserve(struct canon_buf *b, size_t n)
{
    size_t want, ncap;
    char *p;

    if (n > b->max || b->len > b->max - n)
        return -1;
    want = b->len + n;
    if (want <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < want)
        ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
    if (ncap > b->max)
        ncap = b->max;
    p = realloc(b->data, ncap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int canon_raw(struct canon_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int put_str(struct canon_buf *b, const char *s)
{
    return canon_raw(b, s, strlen(s));
}

static int put_string(struct canon_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    const unsigned char *run = p;
    char esc[8];

    if (canon_raw(b, "\"", 1) < 0)
        return -1;
    for (; *p; p++) {
        const char *e = NULL;

        if (*p == '"')
            e = "\\\"";
        else if (*p == '\\')
            e = "\\\\";
        else if (*p == '\n')
            e = "\\n";
        else if (*p == '\r')
            e = "\\r";
        else if (*p == '\t')
            e = "\\t";
        else if (*p == '\b')
            e = "\\b";
        else if (*p == '\f')
            e = "\\f";
        else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            e = esc;
        }
        if (!e)
            continue;
        if (canon_raw(b, run, (size_t)(p - run)) < 0 || put_str(b, e) < 0)
            return -1;
        run = p + 1;
    }
    if (canon_raw(b, run, (size_t)(p - run)) < 0)
        return -1;
    return canon_raw(b, "\"", 1);
}

static int put_number(struct canon_buf *b, double d)
{
    char num[40];

    if (isnan(d))
        return put_str(b, "null"); /* cJSON never parses one; a built document might hold one */
    if (isinf(d))
        return put_str(b, d > 0 ? "1e999" : "-1e999");
    if (d == 0)
        return put_str(b, "0"); /* -0 too */
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        snprintf(num, sizeof(num), "%lld", (long long)d);
        return put_str(b, num);
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(num, sizeof(num), "%.*g", prec, d);
        if (strtod(num, NULL) == d)
            break;
    }
    return put_str(b, num);
}

struct member {
    const cJSON *item;
    size_t order;
};

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->item->string ? x->item->string : "", y->item->string ? y->item->string : "");

    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int skipped(const char *key, const char *const *skip)
{
    if (!skip || !key)
        return 0;
    for (; *skip; skip++)
        if (strcmp(*skip, key) == 0)
            return 1;
    return 0;
}

static int put_value(struct canon_buf *b, const cJSON *v, const char *const *skip, int depth);

static int put_object(struct canon_buf *b, const cJSON *v, const char *const *skip, int depth)
{
    struct member stack[CANON_SORT_STACK], *m = stack;
    size_t n = 0, k = 0;
    int rc = -1, first = 1;
    const cJSON *c;

    for (c = v->child; c; c = c->next)
        n++;
    if (n > CANON_SORT_STACK) {
        m = malloc(n * sizeof(*m));
        if (!m)
            return -1;
    }
    for (c = v->child; c; c = c->next) {
        m[k].item = c;
        m[k].order = k;
        k++;
    }
    qsort(m, n, sizeof(*m), member_cmp);
    if (canon_raw(b, "{", 1) < 0)
        goto out;
    for (k = 0; k < n; k++) {
        if (skipped(m[k].item->string, skip))
            continue;
        if (!first && canon_raw(b, ",", 1) < 0)
            goto out;
        first = 0;
        if (put_string(b, m[k].item->string) < 0 || canon_raw(b, ":", 1) < 0 ||
            put_value(b, m[k].item, NULL, depth) < 0)
            goto out;
    }
    rc = canon_raw(b, "}", 1);
out:
    if (m != stack)
        free(m);
    return rc;
}

/* depth: how many containers enclose v */
static int put_value(struct canon_buf *b, const cJSON *v, const char *const *skip, int depth)
{
    const cJSON *c;

    switch (v->type & 0xff) {
    case cJSON_False:
        return put_str(b, "false");
    case cJSON_True:
        return put_str(b, "true");
    case cJSON_NULL:
        return put_str(b, "null");
    case cJSON_Number:
        return put_number(b, v->valuedouble);
    case cJSON_String:
        return put_string(b, v->valuestring);
    case cJSON_Raw:
        return -1; /* not a parsed value: nothing canonical to say about it */
    case cJSON_Array:
        if (depth >= CANON_MAX_DEPTH || canon_raw(b, "[", 1) < 0)
            return -1;
        for (c = v->child; c; c = c->next)
            if ((c != v->child && canon_raw(b, ",", 1) < 0) || put_value(b, c, NULL, depth + 1) < 0)
                return -1;
        return canon_raw(b, "]", 1);
    case cJSON_Object:
        if (depth >= CANON_MAX_DEPTH)
            return -1;
        return put_object(b, v, skip, depth + 1);
    default:
        return -1;
    }
}

int canon_append(struct canon_buf *b, const cJSON *v, const char *const *skip)
{
    if (!v)
        return -1;
    return put_value(b, v, skip, 0);
}

void canon_buf_free(struct canon_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void canon_hash(const void *p, size_t n, uint8_t out[16])
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, 16);
}
