/*
 * benchutil: what the in-process benchmarks share: a monotonic clock and reading a whole file.
 */
#ifndef TG_BENCHUTIL_H
#define TG_BENCHUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC. */
static inline double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The file at path in a malloc'd buffer and its length in *len; NULL (reported) on failure. */
static inline char *bench_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        free(buf);
        buf = NULL;
    } else
        *len = (size_t)n;
    if (f != NULL)
        fclose(f);
    return buf;
}

#endif
