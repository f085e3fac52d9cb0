/*
 * fuzz_json: what the fuzz targets share about cJSON trees. Header-only, for tests/fuzz.
 */
#ifndef TG_FUZZ_JSON_H
#define TG_FUZZ_JSON_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Whether two trees are the same: members compared in order, names included, so that input
 * with a name twice compares as it reads (cJSON_Compare looks each name up, and finds the first
 * one for both); and two infinities (1e999) are the same, which cJSON_Compare says they are not. */
static inline int same_tree(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xff) != (b->type & 0xff))
        return 0;
    if (a->string != NULL && (b->string == NULL || strcmp(a->string, b->string) != 0))
        return 0;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble ||
               (a->valuedouble != a->valuedouble && b->valuedouble != b->valuedouble);
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    const cJSON *x = a->child, *y = b->child;
    for (; x != NULL && y != NULL; x = x->next, y = y->next)
        if (!same_tree(x, y))
            return 0;
    return x == NULL && y == NULL;
}

/* cJSON's allocations through its hooks, counted: json_count()->live is how many are not freed
 * yet; from the json_count()->fail_at-th on (0: none) they fail, calls counting them. */
typedef struct json_counts {
    long live, calls, fail_at;
} json_counts;

static inline json_counts *json_count(void)
{
    static json_counts c;
    return &c;
}

static inline void *json_count_malloc(size_t n)
{
    json_counts *c = json_count();
    void *p;

    if (c->fail_at != 0 && ++c->calls >= c->fail_at)
        return NULL;
    if ((p = malloc(n)) != NULL)
        c->live++;
    return p;
}

static inline void json_count_free(void *p)
{
    if (p != NULL)
        json_count()->live--;
    free(p);
}

/* Routes cJSON's allocations through the counters above, zeroed. */
static inline void json_count_hooks(void)
{
    cJSON_Hooks h = {.malloc_fn = json_count_malloc, .free_fn = json_count_free};

    cJSON_InitHooks(&h);
    *json_count() = (json_counts){0, 0, 0};
}

/* Whether two parses of one text are the same tree, by everything cJSON's parser sets: each
 * item's type, valueint and valuedouble (two infinities, and 0 and -0, compare equal), name
 * and string, its items in order, and each list's first item's prev pointing at its last. */
static inline int same_parse(const cJSON *a, const cJSON *b)
{
    const cJSON *x, *y, *xl = NULL, *yl = NULL;

    if (a->type != b->type || a->valueint != b->valueint ||
        !(a->valuedouble == b->valuedouble || (isnan(a->valuedouble) && isnan(b->valuedouble))))
        return 0;
    if ((a->string == NULL) != (b->string == NULL) ||
        (a->string != NULL && strcmp(a->string, b->string) != 0))
        return 0;
    if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
        (a->valuestring != NULL && strcmp(a->valuestring, b->valuestring) != 0))
        return 0;
    for (x = a->child, y = b->child; x != NULL && y != NULL; x = x->next, y = y->next) {
        if (!same_parse(x, y))
            return 0;
        xl = x;
        yl = y;
    }
    if (x != NULL || y != NULL)
        return 0;
    return a->child == NULL || (a->child->prev == xl && b->child->prev == yl);
}

#endif
