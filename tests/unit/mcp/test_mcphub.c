/*
 * Unit tests for gate/mcp/mcphub: the sessions table (bound to the key that opened a session,
 * another key refused, forgotten on DELETE, the least recently used forgotten when full, ids
 * too long never bound). The call counters are cache/toolstats (test_toolstats).
 */
#include <check.h>
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

static Suite *mcphub_suite(void)
{
    Suite *s = suite_create("mcphub");
    TCase *tc = tcase_create("hub");

    tcase_add_test(tc, sessions);
    tcase_add_test(tc, sessions_full);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(mcphub_suite());
}
