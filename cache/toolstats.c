/*
 * toolstats: tool calls by server, tool and agent. See toolstats.h.
 *
 * Rows live in one array; an open-addressed index of twice as many slots, keyed by a hash of
 * the three labels, finds a row without a scan. The last row is "_other".
 */
#include "cache/toolstats.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "routing/rstats.h"

#define NSLOTS (2 * TOOLSTATS_MAX) /* a power of two */

struct row {
    char server[TOOLSTATS_LABEL_MAX + 1], tool[TOOLSTATS_LABEL_MAX + 1];
    char agent[TOOLSTATS_LABEL_MAX + 1];
    uint64_t n[CACHE_O__COUNT];
};

struct toolstats {
    pthread_mutex_t mu;
    struct row rows[TOOLSTATS_MAX + 1]; /* the last: "_other" */
    int nrows;
    int16_t slot[NSLOTS]; /* row index, -1 empty */
};

struct toolstats *toolstats_new(void)
{
    struct toolstats *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return NULL;
    }
    for (int i = 0; i < NSLOTS; i++)
        t->slot[i] = -1;
    struct row *o = &t->rows[TOOLSTATS_MAX];
    snprintf(o->server, sizeof(o->server), "_other");
    snprintf(o->tool, sizeof(o->tool), "_other");
    snprintf(o->agent, sizeof(o->agent), "_other");
    return t;
}

void toolstats_free(struct toolstats *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* The three labels, each cut to TOOLSTATS_LABEL_MAX, as one key. */
static size_t labels_key(char *k, const char *server, const char *tool, const char *agent)
{
    return (size_t)snprintf(k, 3 * (TOOLSTATS_LABEL_MAX + 1), "%.*s%c%.*s%c%.*s",
                            TOOLSTATS_LABEL_MAX, server, 0, TOOLSTATS_LABEL_MAX, tool, 0,
                            TOOLSTATS_LABEL_MAX, agent);
}

static int same(const struct row *r, const char *server, const char *tool, const char *agent)
{
    return strncmp(r->server, server, TOOLSTATS_LABEL_MAX) == 0 &&
           strncmp(r->tool, tool, TOOLSTATS_LABEL_MAX) == 0 &&
           strncmp(r->agent, agent, TOOLSTATS_LABEL_MAX) == 0;
}

void toolstats_count(struct toolstats *t, const char *server, const char *tool,
                     const char *agent, enum cache_outcome o)
{
    char k[3 * (TOOLSTATS_LABEL_MAX + 1)];
    struct row *r = NULL;

    if (t == NULL || (unsigned)o >= CACHE_O__COUNT)
        return;
    server = server ? server : "";
    tool = tool ? tool : "";
    agent = agent ? agent : "-";
    size_t n = labels_key(k, server, tool, agent);
    size_t at = (size_t)XXH3_64bits(k, n) & (NSLOTS - 1);

    pthread_mutex_lock(&t->mu);
    for (;; at = (at + 1) & (NSLOTS - 1)) {
        int i = t->slot[at];
        if (i < 0) {
            if (t->nrows < TOOLSTATS_MAX) {
                t->slot[at] = (int16_t)t->nrows;
                r = &t->rows[t->nrows++];
                snprintf(r->server, sizeof(r->server), "%s", server);
                snprintf(r->tool, sizeof(r->tool), "%s", tool);
                snprintf(r->agent, sizeof(r->agent), "%s", agent);
            } else {
                r = &t->rows[TOOLSTATS_MAX]; /* full: counted, not labelled */
            }
            break;
        }
        if (same(&t->rows[i], server, tool, agent)) {
            r = &t->rows[i];
            break;
        }
    }
    r->n[o]++;
    pthread_mutex_unlock(&t->mu);
}

void toolstats_write(struct toolstats *t, toolstats_emit_fn *emit, void *arg)
{
    static const char head[] = "# HELP tokengate_tool_calls_total Tool calls (MCP tools/call, "
                               "/v1/tool-cache lookups) by server, tool, agent and cache "
                               "outcome.\n# TYPE tokengate_tool_calls_total counter\n";
    static const char *const oname[CACHE_O__COUNT] = {"hit", "miss", "bypass"};
    char line[1024], s[4 * TOOLSTATS_LABEL_MAX + 4], tl[sizeof(s)], a[sizeof(s)];

    if (t == NULL)
        return;
    emit(arg, head, sizeof(head) - 1);
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i <= TOOLSTATS_MAX; i++) {
        const struct row *r = &t->rows[i];
        if (i >= t->nrows && i < TOOLSTATS_MAX)
            continue;
        rstats_label(r->server, s, sizeof(s));
        rstats_label(r->tool, tl, sizeof(tl));
        rstats_label(r->agent, a, sizeof(a));
        for (int o = 0; o < CACHE_O__COUNT; o++) {
            if (r->n[o] == 0)
                continue;
            int n = snprintf(line, sizeof(line),
                             "tokengate_tool_calls_total{server=\"%s\",tool=\"%s\",agent=\"%s\","
                             "cache=\"%s\"} %llu\n",
                             s, tl, a, oname[o], (unsigned long long)r->n[o]);
            emit(arg, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        }
    }
    pthread_mutex_unlock(&t->mu);
}
