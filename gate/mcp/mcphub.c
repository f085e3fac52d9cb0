/*
 * mcphub: what the MCP proxy keeps across requests, shared by every worker under one lock:
 * the sessions servers issued and the key that opened each (so that no other key can use
 * one), and calls per (server, tool, agent) for /metrics. Both tables are capped. See
 * mcp-int.h.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/core/worker.h"
#include "gate/mcp/mcp-int.h"

#define MCP_BUCKETS 16384 /* session hash buckets (a power of two) */

struct session {
    char server[MCP_LABEL_MAX + 1];
    char id[MCP_SESSION_ID_MAX + 1];
    char owner[MCP_OWNER_MAX];
    uint64_t used; /* the hub's tick at its last use: the least recently used goes first */
    int next;      /* the bucket's chain, or the free list; -1 ends */
    int live;
};

struct mcp_hub {
    pthread_mutex_t mu;
    struct session *s; /* MCP_SESSIONS_MAX */
    int bucket[MCP_BUCKETS];
    int free_head;
    int nlive;
    uint64_t tick;
};

struct mcp_hub *mcp_hub_new(void)
{
    struct mcp_hub *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->s = calloc(MCP_SESSIONS_MAX, sizeof(*h->s));
    if (h->s == NULL || pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h->s);
        free(h);
        return NULL;
    }
    for (int i = 0; i < MCP_BUCKETS; i++)
        h->bucket[i] = -1;
    for (int i = 0; i < MCP_SESSIONS_MAX; i++)
        h->s[i].next = i + 1 < MCP_SESSIONS_MAX ? i + 1 : -1;
    h->free_head = 0;
    return h;
}

void mcp_hub_free(struct mcp_hub *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h->s);
    free(h);
}

/* FNV-1a over server and id */
static unsigned bucket_of(const char *server, const char *id)
{
    uint32_t x = 2166136261u;

    for (const char *p = server; *p; p++)
        x = (x ^ (unsigned char)*p) * 16777619u;
    x = (x ^ 0xff) * 16777619u;
    for (const char *p = id; *p; p++)
        x = (x ^ (unsigned char)*p) * 16777619u;
    return x & (MCP_BUCKETS - 1);
}

/* The session's slot, or -1; *prev gets the slot before it in its chain (-1: the bucket). */
static int find(struct mcp_hub *h, const char *server, const char *id, int *prev)
{
    int p = -1;

    for (int i = h->bucket[bucket_of(server, id)]; i >= 0; p = i, i = h->s[i].next)
        if (strcmp(h->s[i].id, id) == 0 && strcmp(h->s[i].server, server) == 0) {
            if (prev != NULL)
                *prev = p;
            return i;
        }
    return -1;
}

static void unlink_slot(struct mcp_hub *h, int i, int prev)
{
    struct session *s = &h->s[i];

    if (prev < 0)
        h->bucket[bucket_of(s->server, s->id)] = s->next;
    else
        h->s[prev].next = s->next;
    s->live = 0;
    s->next = h->free_head;
    h->free_head = i;
    h->nlive--;
}

enum mcp_bind mcp_session_check(struct mcp_hub *h, const char *server, const char *id,
                                const char *owner)
{
    enum mcp_bind r = MCP_BIND_UNKNOWN;

    if (strlen(id) > MCP_SESSION_ID_MAX || strlen(server) > MCP_LABEL_MAX)
        return MCP_BIND_UNKNOWN;
    pthread_mutex_lock(&h->mu);
    int i = find(h, server, id, NULL);
    if (i >= 0) {
        r = strcmp(h->s[i].owner, owner) == 0 ? MCP_BIND_MINE : MCP_BIND_OTHER;
        if (r == MCP_BIND_MINE)
            h->s[i].used = ++h->tick;
    }
    pthread_mutex_unlock(&h->mu);
    return r;
}

int mcp_session_bind(struct mcp_hub *h, const char *server, const char *id, size_t len,
                     const char *owner)
{
    char sid[MCP_SESSION_ID_MAX + 1];

    if (len == 0 || len > MCP_SESSION_ID_MAX || strlen(server) > MCP_LABEL_MAX)
        return -1;
    memcpy(sid, id, len);
    sid[len] = '\0';
    pthread_mutex_lock(&h->mu);
    if (find(h, server, sid, NULL) >= 0) {
        pthread_mutex_unlock(&h->mu); /* bound already: it stays its first owner's */
        return 0;
    }
    if (h->free_head < 0) {
        /* full: the session used least recently is forgotten (its client gets 404 and
         * initializes again, as the spec has clients do) */
        int old = -1;
        for (int i = 0; i < MCP_SESSIONS_MAX; i++)
            if (h->s[i].live && (old < 0 || h->s[i].used < h->s[old].used))
                old = i;
        int prev = -1;
        find(h, h->s[old].server, h->s[old].id, &prev);
        unlink_slot(h, old, prev);
    }
    int i = h->free_head;
    struct session *s = &h->s[i];
    h->free_head = s->next;
    snprintf(s->server, sizeof(s->server), "%s", server);
    memcpy(s->id, sid, len + 1);
    snprintf(s->owner, sizeof(s->owner), "%s", owner);
    s->used = ++h->tick;
    s->live = 1;
    unsigned b = bucket_of(server, sid);
    s->next = h->bucket[b];
    h->bucket[b] = i;
    h->nlive++;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void mcp_session_drop(struct mcp_hub *h, const char *server, const char *id)
{
    int prev = -1, i;

    if (strlen(id) > MCP_SESSION_ID_MAX)
        return;
    pthread_mutex_lock(&h->mu);
    if ((i = find(h, server, id, &prev)) >= 0)
        unlink_slot(h, i, prev);
    pthread_mutex_unlock(&h->mu);
}

const char *mcp_cache_name(enum mcp_cache c)
{
    switch (c) {
    case MCP_CACHE_HIT:
        return "hit";
    case MCP_CACHE_MISS:
        return "miss";
    case MCP_CACHE_BYPASS:
        return "bypass";
    default:
        return NULL;
    }
}
