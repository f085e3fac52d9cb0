/*
 * replaytest: what tests/unit/cache/test_replay*.c share: JSON written with ' for " (Q, J),
 * comparing documents (same), a stream as replay_stream emits it (struct cap, capture) and
 * gathered back (gather), a round trip (whole -> stream -> whole). Include once per test.
 */
#ifndef TG_TEST_REPLAYTEST_H
#define TG_TEST_REPLAYTEST_H

#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/replay.h"
#include "failalloc.h"

#define GET cJSON_GetObjectItemCaseSensitive
#define OA CONF_FMT_OPENAI
#define AN CONF_FMT_ANTHROPIC

/* s with ' swapped for " (malloc'd). */
static inline char *Q(const char *s)
{
    char *t = __real_malloc(strlen(s) + 1);

    strcpy(t, s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

static inline cJSON *J(const char *s)
{
    char *t = Q(s);
    cJSON *j = cJSON_Parse(t);

    ck_assert_msg(j != NULL, "test JSON does not parse: %s", t);
    free(t);
    return j;
}

static inline void same(const cJSON *got, const cJSON *want)
{
    char *g = cJSON_PrintUnformatted(got), *w = cJSON_PrintUnformatted(want);

    ck_assert_msg(cJSON_Compare(got, want, 1), "\n got %s\nwant %s", g, w);
    free(g);
    free(w);
}

/* ---- a stream as emitted ------------------------------------------------------------------ */

#define MAX_EVENTS 512

struct cap {
    int n;
    char *name[MAX_EVENTS]; /* NULL for none */
    char *data[MAX_EVENTS];
    int fail_at; /* emit answers 7 at this event (1 = the first); 0: never */
    int bad;     /* an event too many, or its length wrong */
};

static inline int capture(void *arg, const char *name, const char *data, size_t len)
{
    struct cap *c = arg;

    /* no ck_assert here: check allocates, and allocations may be failing now */
    if (c->n >= MAX_EVENTS || strlen(data) != len) {
        c->bad = 1;
        return -1;
    }
    c->name[c->n] = name != NULL ? strcpy(__real_malloc(strlen(name) + 1), name) : NULL;
    c->data[c->n] = strcpy(__real_malloc(len + 1), data);
    c->n++;
    return c->fail_at == c->n ? 7 : 0;
}

static inline void cap_free(struct cap *c)
{
    ck_assert(!c->bad);
    for (int i = 0; i < c->n; i++) {
        free(c->name[i]);
        free(c->data[i]);
    }
    c->n = 0;
}

/* The whole answer of c's events gathered; NULL when asm refuses one or finish gives none. */
static inline cJSON *gather(enum conf_format api, const struct cap *c)
{
    struct replay_asm *a = replay_asm_new(api);
    cJSON *out = NULL;
    int rc = 0;

    ck_assert_ptr_nonnull(a);
    for (int i = 0; i < c->n && rc == 0; i++) {
        cJSON *d = strcmp(c->data[i], "[DONE]") == 0 ? NULL : cJSON_Parse(c->data[i]);
        rc = replay_asm_event(a, c->name[i] != NULL ? c->name[i] : "", d);
        cJSON_Delete(d);
    }
    if (rc == 0)
        out = replay_asm_finish(a);
    replay_asm_free(a);
    return out;
}

/* whole -> stream -> whole: the same answer. Returns the events (to be cap_free'd). */
static inline void round_trip(enum conf_format api, const char *whole_q, size_t piece,
                              struct cap *c)
{
    cJSON *w = J(whole_q), *back;

    ck_assert(replay_whole_ok(api, w));
    ck_assert_int_eq(replay_stream(api, w, 1, piece, capture, c), 0);
    back = gather(api, c);
    ck_assert_ptr_nonnull(back);
    same(back, w);
    cJSON_Delete(back);
    cJSON_Delete(w);
}

#endif
