/*
 * failalloc: allocations failing on demand, for a test linked with -Wl,--wrap=malloc,
 * --wrap=calloc and --wrap=realloc (see tests/meson.build): the code under test calls these in
 * place of the C library's, and so does cJSON once failalloc_on() gives it them as its hooks.
 * One count for all: failalloc_at(n) lets n more allocations through, then fails each.
 */
#ifndef TG_TEST_FAILALLOC_H
#define TG_TEST_FAILALLOC_H

#include <cjson/cJSON.h>
#include <stdlib.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

/* allocations fail once this many more have been made (-1: never) */
static long failalloc_left = -1;

static int failalloc_now(void)
{
    if (failalloc_left == 0)
        return 1;
    if (failalloc_left > 0)
        failalloc_left--;
    return 0;
}

void *__wrap_malloc(size_t n)
{
    return failalloc_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return failalloc_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return failalloc_now() ? NULL : __real_realloc(p, n);
}

/* From now, n allocations succeed, then every one fails (cJSON's too). */
static inline void failalloc_at(long n)
{
    cJSON_Hooks h = {__wrap_malloc, free};

    cJSON_InitHooks(&h);
    failalloc_left = n;
}

/* Allocations succeed again; cJSON back on malloc. */
static inline void failalloc_off(void)
{
    failalloc_left = -1;
    cJSON_InitHooks(NULL);
}

#endif
