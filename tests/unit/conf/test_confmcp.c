/*
 * Unit tests for conf/confmcp: the mcp section read back key by key, its defaults, the
 * server's credential read from the environment at load, and every refusal with its exact
 * "t.yaml:LINE: reason". Each config, loaded or refused, is freed by conf_unref: the ASan
 * build of this test shows any leak.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "run_suite.h"

#define NAME "t.yaml"

/* lines 1-8: a provider, a model, an org with two teams */
#define BASE                                                                                       \
    "providers:\n"                                                                                 \
    "  o: { base_url: 'http://127.0.0.1:9/v1' }\n"                                                 \
    "models:\n"                                                                                    \
    "  mini: o\n"                                                                                  \
    "org: acme\n"                                                                                  \
    "departments:\n"                                                                               \
    "  research: { teams: { search: { agents: [crawler] }, support: { agents: [helper] } } }\n"          \
    "ledger: { path: x.db }\n"

static char err[512];

static struct conf *load(const char *text)
{
    err[0] = '\0';
    return conf_load_string(text, strlen(text), NAME, err, sizeof(err));
}

static void refused(const char *text, const char *want)
{
    struct conf *c = load(text);
    int loaded = c != NULL;

    conf_unref(c);
    ck_assert_msg(!loaded, "loaded a bad config:\n%s", text);
    ck_assert_str_eq(err, want);
}

START_TEST(full_config)
{
    setenv("TG_TEST_MCP_KEY", "sekrit-mcp", 1);
    struct conf *c = load(BASE "mcp:\n"                                             /* 9 */
                               "  servers:\n"
                               "    docs:\n"                                        /* 11 */
                               "      url: http://127.0.0.1:9000/mcp\n"
                               "      api_key_env: TG_TEST_MCP_KEY\n"
                               "      list_ttl: 30s\n"
                               "      tools: { search_docs: 10m, fetch: 2s }\n"
                               "      teams: { support: [search_docs], search: [] }\n" /* 16 */
                               "    plain:\n"
                               "      url: https://mcp.example.test:8443\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->nmcp, 2);
    const struct conf_mcp_server *s = conf_find_mcp(c, "docs", 4);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->url, "http://127.0.0.1:9000/mcp");
    ck_assert_str_eq(s->u.host, "127.0.0.1");
    ck_assert_int_eq(s->u.port, 9000);
    ck_assert_int_eq(s->u.tls, 0);
    ck_assert_str_eq(s->u.path, "/mcp");
    ck_assert_str_eq(s->api_key, "sekrit-mcp");
    ck_assert_int_eq(s->list_ttl_ms, 30000);
    ck_assert_int_eq(s->ntools, 2);
    ck_assert_str_eq(s->tools[0].name, "search_docs");
    ck_assert_int_eq(s->tools[0].ttl_ms, 600000);
    ck_assert_str_eq(s->tools[1].name, "fetch");
    ck_assert_int_eq(s->tools[1].ttl_ms, 2000);
    ck_assert_int_eq(s->nteams, 2);
    ck_assert_str_eq(s->teams[0].team, "support");
    ck_assert_int_eq(s->teams[0].ntools, 1);
    ck_assert_str_eq(s->teams[0].tools[0], "search_docs");
    ck_assert_str_eq(s->teams[1].team, "search");
    ck_assert_int_eq(s->teams[1].ntools, 0);
    ck_assert_str_eq(s->prov.name, "mcp:docs");
    ck_assert_int_eq(s->prov.index, -1);
    ck_assert_str_eq(s->prov.host, "127.0.0.1");

    /* defaults: no key, lists for 5 minutes, no tool cached, no team limited; a URL without
     * a path asks for "/" */
    const struct conf_mcp_server *p = conf_find_mcp(c, "plain", 5);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(p->api_key);
    ck_assert_int_eq(p->list_ttl_ms, 300000);
    ck_assert_int_eq(p->ntools, 0);
    ck_assert_int_eq(p->nteams, 0);
    ck_assert_int_eq(p->u.tls, 1);
    ck_assert_int_eq(p->u.port, 8443);
    ck_assert_str_eq(p->u.path, "/");
    ck_assert_int_eq(p->timeout_ms, c->upstream_first_byte_timeout);
    ck_assert_ptr_null(conf_find_mcp(c, "doc", 3));
    ck_assert_ptr_null(conf_find_mcp(c, "docsx", 5));
    conf_unref(c);

    /* none configured */
    c = load(BASE);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->nmcp, 0);
    ck_assert_ptr_null(conf_find_mcp(c, "docs", 4));
    conf_unref(c);
    unsetenv("TG_TEST_MCP_KEY");
}
END_TEST

START_TEST(errors)
{
    unsetenv("TG_TEST_MCP_UNSET");
    refused(BASE "mcp: [a]\n", "t.yaml:9: 'mcp' must be a mapping of keys to values");
    refused(BASE "mcp:\n  servrs: {}\n", "t.yaml:10: mcp: unknown key 'servrs' (servers)");
    refused(BASE "mcp:\n  servers:\n    docs: { url: 'http://127.0.0.1:1/m', colour: red }\n",
            "t.yaml:11: mcp server 'docs': unknown key 'colour' (url, api_key_env, list_ttl, "
            "tools, teams)");
    refused(BASE "mcp:\n  servers:\n    docs: { list_ttl: 1m }\n",
            "t.yaml:11: mcp server 'docs' has no url");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'ftp://127.0.0.1/m'\n",
            "t.yaml:12: mcp server 'docs': url must start with http:// or https://");
    refused(BASE "mcp:\n  servers:\n    'a/b': { url: 'http://127.0.0.1:1/m' }\n",
            "t.yaml:11: mcp: a server needs a name of 1 to 64 letters, digits, '-', '_' or '.' "
            "(it is a path segment of /mcp/{name})");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      api_key_env: TG_TEST_MCP_UNSET\n",
            "t.yaml:12: mcp server 'docs': api_key_env names TG_TEST_MCP_UNSET, which is not set");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      list_ttl: soon\n",
            "t.yaml:13: 'list_ttl' must be a positive duration such as 10s, 500ms or 2m, not "
            "'soon'");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      tools: { search: 0 }\n",
            "t.yaml:13: 'search' must be a positive duration such as 10s, 500ms or 2m, not '0'");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      tools: [search]\n",
            "t.yaml:13: 'tools' must be a mapping of keys to values");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      teams: { sales: [search] }\n",
            "t.yaml:13: mcp server 'docs': teams: no team named 'sales' in the org");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      teams: { crawler: [search] }\n",
            "t.yaml:13: mcp server 'docs': teams: no team named 'crawler' in the org");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      teams: { support: search }\n",
            "t.yaml:13: mcp server 'docs': teams: 'support' must be a list of tool names");
    refused(BASE "mcp:\n  servers:\n    docs:\n      url: 'http://127.0.0.1:1/m'\n"
                 "      teams:\n        support: [[a]]\n",
            "t.yaml:14: mcp server 'docs': teams: 'support': a tool needs a plain name");
}
END_TEST

static Suite *confmcp_suite(void)
{
    Suite *s = suite_create("confmcp");
    TCase *tc = tcase_create("mcp");

    tcase_add_test(tc, full_config);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(confmcp_suite());
}
