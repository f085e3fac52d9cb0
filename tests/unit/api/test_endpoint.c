/*
 * Unit tests for gate/endpoint: path lookup and what each endpoint is.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gate/api/endpoint.h"
#include "run_suite.h"

static enum endpoint lookup(const char *path)
{
    return endpoint_lookup(path, strlen(path));
}

static const struct {
    const char *path;
    enum endpoint ep;
    const char *method;
    enum conf_format format;
    int proxied;
} known[] = {
    {"/v1/chat/completions", EP_CHAT, "POST", CONF_FMT_OPENAI, 1},
    {"/v1/responses", EP_RESPONSES, "POST", CONF_FMT_OPENAI, 1},
    {"/v1/embeddings", EP_EMBEDDINGS, "POST", CONF_FMT_OPENAI, 1},
    {"/v1/models", EP_MODELS, "GET", CONF_FMT_OPENAI, 0},
    {"/v1/messages", EP_MESSAGES, "POST", CONF_FMT_ANTHROPIC, 1},
    {"/v1/messages/count_tokens", EP_COUNT_TOKENS, "POST", CONF_FMT_ANTHROPIC, 1},
    {"/healthz", EP_HEALTHZ, "GET", CONF_FMT_OPENAI, 0},
    {"/status", EP_STATUS, "GET", CONF_FMT_OPENAI, 0},
};

#define NKNOWN ((int)(sizeof(known) / sizeof(known[0])))

START_TEST(every_path)
{
    ck_assert_int_eq(NKNOWN, EP__COUNT - 3); /* and EP_TOOL_CACHE, EP_MCP: prefixes (prefix_paths, mcp_paths) */
    for (int i = 0; i < NKNOWN; i++) {
        const struct endpoint_info *info;

        ck_assert_msg(lookup(known[i].path) == known[i].ep, "%s: %d, not %d", known[i].path,
                      lookup(known[i].path), known[i].ep);
        info = endpoint_info(known[i].ep);
        ck_assert_ptr_nonnull(info);
        ck_assert_str_eq(info->path, known[i].path);
        ck_assert_str_eq(info->method, known[i].method);
        ck_assert_int_eq(info->format, known[i].format);
        ck_assert_int_eq(info->proxied, known[i].proxied);
    }
}
END_TEST

START_TEST(trailing_slash)
{
    char path[64];

    for (int i = 0; i < NKNOWN; i++) {
        strcpy(path, known[i].path);
        strcat(path, "/");
        ck_assert_msg(lookup(path) == known[i].ep, "%s: %d", path, lookup(path));
    }
    /* one slash is the same resource; two are not */
    ck_assert_int_eq(lookup("/v1/chat/completions//"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/models//"), EP_NONE);
}
END_TEST

START_TEST(unknown_paths)
{
    static const char *const paths[] = {
        "",
        "/",
        "//",
        "/v1",
        "/v1/",
        "/v1/chat",
        "/v1/chat/",
        "/v1/completions",
        "/v2/chat/completions",
        "v1/chat/completions",
        "//v1/chat/completions",
        "/v1//chat/completions",
        "/V1/CHAT/COMPLETIONS",
        "/v1/Messages",
        "/v1/models/gpt-4o",
        "/v1/messages/batches",
        "/healthz/x",
        "/statusz",
        "/v1/chat/completions?stream=true",
        "/v1/chat/completions ",
        "/api/v1/chat/completions",
    };

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        ck_assert_msg(lookup(paths[i]) == EP_NONE, "'%s' found as %d", paths[i], lookup(paths[i]));
}
END_TEST

START_TEST(prefix_lookalikes)
{
    ck_assert_int_eq(lookup("/v1/chat/completionsX"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/chat/completion"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/message"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/messagesX"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/messages/count_token"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/messages/count_tokensX"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/response"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/responsesX"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/embedding"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/model"), EP_NONE);
    ck_assert_int_eq(lookup("/healthzz"), EP_NONE);
    ck_assert_int_eq(lookup("/health"), EP_NONE);
    ck_assert_int_eq(lookup("/statu"), EP_NONE);
}
END_TEST

START_TEST(length_bounds_the_path)
{
    /* the path is (ptr, len), not a C string: bytes past len do not count */
    static const char buf[] = "/v1/models/gpt-4o";
    char raw[13];

    ck_assert_int_eq(endpoint_lookup(buf, 10), EP_MODELS);
    ck_assert_int_eq(endpoint_lookup(buf, 11), EP_MODELS); /* "/v1/models/" */
    ck_assert_int_eq(endpoint_lookup(buf, 9), EP_NONE);
    ck_assert_int_eq(endpoint_lookup(buf, 0), EP_NONE);
    ck_assert_int_eq(endpoint_lookup("/v1/messages/count_tokens", 12), EP_MESSAGES);

    /* no terminating NUL at all */
    memcpy(raw, "/v1/messages", 12);
    raw[12] = 'X';
    ck_assert_int_eq(endpoint_lookup(raw, 12), EP_MESSAGES);
}
END_TEST

START_TEST(mcp_paths)
{
    ck_assert_int_eq(lookup("/mcp/docs"), EP_MCP);
    ck_assert_int_eq(lookup("/mcp/docs/"), EP_MCP);
    ck_assert_int_eq(lookup("/mcp/a/b"), EP_MCP); /* gate/mcp/ says 404 */
    /* the prefix alone, or without its slash, is no endpoint */
    ck_assert_int_eq(lookup("/mcp/"), EP_NONE);
    ck_assert_int_eq(lookup("/mcp"), EP_NONE);
    ck_assert_int_eq(lookup("/mcpx/docs"), EP_NONE);
    ck_assert_int_eq(lookup("/MCP/docs"), EP_NONE);
    ck_assert_int_eq(endpoint_info(EP_MCP)->proxied, 0);
}
END_TEST

START_TEST(prefix_paths)
{
    const struct endpoint_info *info = endpoint_info(EP_TOOL_CACHE);

    ck_assert_int_eq(lookup("/v1/tool-cache/get_weather"), EP_TOOL_CACHE);
    ck_assert_int_eq(lookup("/v1/tool-cache/get_weather/lookup"), EP_TOOL_CACHE);
    ck_assert_int_eq(lookup("/v1/tool-cache/x/"), EP_TOOL_CACHE);
    /* the prefix alone, or without its slash, is no endpoint */
    ck_assert_int_eq(lookup("/v1/tool-cache/"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/tool-cache"), EP_NONE);
    ck_assert_int_eq(lookup("/v1/tool-cache//"), EP_TOOL_CACHE); /* its module says 400 */
    ck_assert_int_eq(lookup("/v1/tool-cachex/a"), EP_NONE);
    ck_assert_int_eq(endpoint_lookup("/v1/tool-cache/a", 15), EP_NONE);
    ck_assert_int_eq(info->proxied, 0);
    ck_assert(endpoint_takes(info, "GET") && endpoint_takes(info, "PUT") &&
              endpoint_takes(info, "POST") && endpoint_takes(info, "DELETE"));
    ck_assert(!endpoint_takes(info, "PATCH") && !endpoint_takes(info, "GE") &&
              !endpoint_takes(info, ""));
    ck_assert(endpoint_takes(endpoint_info(EP_CHAT), "POST"));
    ck_assert(!endpoint_takes(endpoint_info(EP_CHAT), "GET"));
}
END_TEST

START_TEST(info_of_none)
{
    const struct endpoint_info *info = endpoint_info(EP_NONE);

    ck_assert_ptr_nonnull(info);
    ck_assert_int_eq(info->proxied, 0);
}
END_TEST

static Suite *endpoint_suite(void)
{
    Suite *s = suite_create("endpoint");
    TCase *tc = tcase_create("endpoint");

    tcase_add_test(tc, every_path);
    tcase_add_test(tc, trailing_slash);
    tcase_add_test(tc, unknown_paths);
    tcase_add_test(tc, prefix_lookalikes);
    tcase_add_test(tc, length_bounds_the_path);
    tcase_add_test(tc, mcp_paths);
    tcase_add_test(tc, prefix_paths);
    tcase_add_test(tc, info_of_none);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(endpoint_suite());
}
