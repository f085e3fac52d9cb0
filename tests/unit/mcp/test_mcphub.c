/*
 * Unit tests for gate/mcp/mcphub: the sessions table (bound to the key that opened a session,
 * another key refused, forgotten on DELETE, the least recently used forgotten when full, ids
 * too long never bound) and the call counters (per server, tool and agent, past the cap under
 * "_other", label values escaped in /metrics).
 */
#include <check.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/core/worker.h"
#include "gate/mcp/mcp-int.h"
#include "run_suite.h"

START_TEST(sessions)
{
    struct mcp_hub *h = mcp_hub_new();

    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s1", "key_a"), MCP_BIND_UNKNOWN);
    ck_assert_int_eq(mcp_session_bind(h, "docs", "s1", 2, "key_a"), 0);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s1", "key_a"), MCP_BIND_MINE);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s1", "key_b"), MCP_BIND_OTHER);
    /* another server's session of the same id is another session */
    ck_assert_int_eq(mcp_session_check(h, "wiki", "s1", "key_a"), MCP_BIND_UNKNOWN);
    /* bound once: a second bind does not move it */
    ck_assert_int_eq(mcp_session_bind(h, "docs", "s1", 2, "key_b"), 0);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s1", "key_a"), MCP_BIND_MINE);
    /* the bind takes len bytes, not the string */
    ck_assert_int_eq(mcp_session_bind(h, "docs", "s2-and-more", 2, "key_b"), 0);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s2", "key_b"), MCP_BIND_MINE);
    mcp_session_drop(h, "docs", "s1");
    ck_assert_int_eq(mcp_session_check(h, "docs", "s1", "key_a"), MCP_BIND_UNKNOWN);
    mcp_session_drop(h, "docs", "never");

    /* too long to remember: not bound, never usable */
    char id[MCP_SESSION_ID_MAX + 2];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    ck_assert_int_eq(mcp_session_bind(h, "docs", id, strlen(id), "key_a"), -1);
    ck_assert_int_eq(mcp_session_check(h, "docs", id, "key_a"), MCP_BIND_UNKNOWN);
    ck_assert_int_eq(mcp_session_bind(h, "docs", id, MCP_SESSION_ID_MAX, "key_a"), 0);
    mcp_hub_free(h);
}
END_TEST

START_TEST(sessions_full)
{
    struct mcp_hub *h = mcp_hub_new();
    char id[32];

    for (int i = 0; i < MCP_SESSIONS_MAX; i++) {
        int n = snprintf(id, sizeof(id), "s%d", i);
        ck_assert_int_eq(mcp_session_bind(h, "docs", id, (size_t)n, "key_a"), 0);
    }
    /* s0 used now: s1 is the least recently used */
    ck_assert_int_eq(mcp_session_check(h, "docs", "s0", "key_a"), MCP_BIND_MINE);
    ck_assert_int_eq(mcp_session_bind(h, "docs", "new", 3, "key_b"), 0);
    ck_assert_int_eq(mcp_session_check(h, "docs", "new", "key_b"), MCP_BIND_MINE);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s1", "key_a"), MCP_BIND_UNKNOWN);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s0", "key_a"), MCP_BIND_MINE);
    ck_assert_int_eq(mcp_session_check(h, "docs", "s2", "key_a"), MCP_BIND_MINE);
    snprintf(id, sizeof(id), "s%d", MCP_SESSIONS_MAX - 1);
    ck_assert_int_eq(mcp_session_check(h, "docs", id, "key_a"), MCP_BIND_MINE);
    mcp_hub_free(h);
}
END_TEST

static char *metrics(struct mcp_hub *h)
{
    struct gate_server *srv = calloc(1, sizeof(*srv));
    struct evbuffer *b = evbuffer_new();

    srv->mcp = h;
    mcp_metrics_write(srv, b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    free(srv);
    return s;
}

START_TEST(counters)
{
    struct mcp_hub *h = mcp_hub_new();
    char tool[32], *m;

    mcp_count(h, "docs", "search", "crawler", MCP_CACHE_MISS);
    mcp_count(h, "docs", "search", "crawler", MCP_CACHE_HIT);
    mcp_count(h, "docs", "search", "crawler", MCP_CACHE_HIT);
    mcp_count(h, "docs", "search", "indexer", MCP_CACHE_BYPASS);
    mcp_count(h, "docs", "we\"ird\\\n", "-", MCP_CACHE_BYPASS);
    m = metrics(h);
    ck_assert_ptr_nonnull(strstr(m, "# TYPE tokengate_tool_calls_total counter\n"));
    ck_assert_ptr_nonnull(strstr(m, "tokengate_tool_calls_total{server=\"docs\",tool=\"search\","
                                    "agent=\"crawler\",cache=\"hit\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(m, "tokengate_tool_calls_total{server=\"docs\",tool=\"search\","
                                    "agent=\"crawler\",cache=\"miss\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(m, "agent=\"indexer\",cache=\"bypass\"} 1\n"));
    ck_assert_ptr_null(strstr(m, "agent=\"indexer\",cache=\"hit\""));
    ck_assert_ptr_nonnull(strstr(m, "tool=\"we\\\"ird\\\\\\n\""));
    free(m);

    /* past the cap: counted under _other, never a new label set */
    for (int i = 0; i < MCP_STATS_MAX + 10; i++) {
        snprintf(tool, sizeof(tool), "t%d", i);
        mcp_count(h, "docs", tool, "crawler", MCP_CACHE_MISS);
    }
    m = metrics(h);
    ck_assert_ptr_nonnull(strstr(m, "tokengate_tool_calls_total{server=\"_other\",tool=\"_other\","
                                    "agent=\"_other\",cache=\"miss\"} 13\n"));
    ck_assert_ptr_null(strstr(m, "tool=\"t1030\""));
    free(m);
    mcp_hub_free(h);
}
END_TEST

static Suite *mcphub_suite(void)
{
    Suite *s = suite_create("mcphub");
    TCase *tc = tcase_create("hub");

    tcase_add_test(tc, sessions);
    tcase_add_test(tc, sessions_full);
    tcase_add_test(tc, counters);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(mcphub_suite());
}
