/*
 * Unit tests for gate/outcap: the output-cap members of each API are read, refused when they
 * are not whole numbers in range, and clamped all together.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "gate/util/arena.h"
#include "gate/util/jsonedit.h"
#include "gate/api/dialect.h"
#include "gate/api/outcap.h"
#include "run_suite.h"

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);

    ck_assert_msg(j != NULL, "bad test JSON");
    return j;
}

/* Reads text's caps for ep; returns outcap_read's result, the message in msg. */
static int read_caps(enum endpoint ep, const char *text, struct outcap *oc, char *msg)
{
    cJSON *j = parse(text);
    int rc = outcap_read(api_dialect_for(ep), j, oc, msg, 160);

    cJSON_Delete(j);
    return rc;
}

START_TEST(reads_the_smallest_cap)
{
    struct outcap oc;
    char msg[160];

    ck_assert_int_eq(read_caps(EP_CHAT, "{\"max_completion_tokens\":900,\"max_tokens\":50}", &oc, msg), 0);
    ck_assert_int_eq(oc.value, 50);
    ck_assert_int_eq(oc.present[0], 1);
    ck_assert_int_eq(oc.present[1], 1);
    ck_assert_int_eq(oc.choices, 1);
    ck_assert_int_eq(read_caps(EP_CHAT, "{\"max_tokens\":null,\"n\":3}", &oc, msg), 0);
    ck_assert_int_eq(oc.value, -1);
    ck_assert_int_eq(oc.present[1], 1);
    ck_assert_int_eq(oc.choices, 3);
    ck_assert_int_eq(read_caps(EP_RESPONSES, "{\"max_output_tokens\":64}", &oc, msg), 0);
    ck_assert_int_eq(oc.value, 64);
    ck_assert_int_eq(oc.min, 16);
    ck_assert_int_eq(read_caps(EP_MESSAGES, "{\"max_tokens\":2147483647}", &oc, msg), 0);
    ck_assert_int_eq(oc.value, 2147483647);
    ck_assert_int_eq(read_caps(EP_EMBEDDINGS, "{\"max_tokens\":\"x\"}", &oc, msg), 0);
    ck_assert_ptr_null(oc.names);
}
END_TEST

START_TEST(refuses_what_is_not_a_whole_number)
{
    static const char *const bad[] = {
        "{\"max_tokens\":10.5}",        "{\"max_tokens\":\"10\"}",
        "{\"max_tokens\":1e30}",        "{\"max_tokens\":-1}",
        "{\"max_tokens\":2147483648}",  "{\"max_completion_tokens\":true}",
        "{\"max_completion_tokens\":[]}", "{\"n\":0}",
        "{\"n\":129}",                  "{\"n\":1.5}",
    };
    struct outcap oc;
    char msg[160];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(read_caps(EP_CHAT, bad[i], &oc, msg) == -1, "%s accepted", bad[i]);
        ck_assert_msg(strstr(msg, "must be a whole number") != NULL, "%s: %s", bad[i], msg);
    }
    read_caps(EP_CHAT, "{\"max_completion_tokens\":1e30}", &oc, msg);
    ck_assert_msg(strncmp(msg, "'max_completion_tokens'", 23) == 0, "%s", msg);
    ck_assert_int_eq(read_caps(EP_RESPONSES, "{\"max_output_tokens\":\"5\"}", &oc, msg), -1);
    ck_assert_msg(strncmp(msg, "'max_output_tokens'", 19) == 0, "%s", msg);
}
END_TEST

/* Clamps text's caps to allowance; returns the spliced body (malloc'd) and the op count. */
static char *clamp(enum endpoint ep, const char *text, int64_t allowance, int add, int *nops)
{
    struct outcap oc;
    char msg[160];
    struct jsonedit_op ops[OUTCAP_MEMBERS];
    struct arena *a = arena_new();
    cJSON *j = parse(text);
    size_t len;

    ck_assert_int_eq(outcap_read(api_dialect_for(ep), j, &oc, msg, sizeof(msg)), 0);
    *nops = outcap_clamp(&oc, j, allowance, add, a, ops);
    ck_assert_int_ge(*nops, 0);
    char *out = *nops ? jsonedit_apply(text, strlen(text), ops, *nops, &len) : strdup(text);
    ck_assert_ptr_nonnull(out);
    cJSON_Delete(j);
    arena_free(a);
    return out;
}

START_TEST(clamps_every_member)
{
    int n;
    char *out;

    /* both members over the allowance come down: the provider honours either */
    out = clamp(EP_CHAT, "{\"max_completion_tokens\":100000,\"max_tokens\":100000}", 300, 1, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(out, "{\"max_completion_tokens\":300,\"max_tokens\":300}");
    free(out);
    /* one under it stays as the client sent it */
    out = clamp(EP_CHAT, "{\"max_completion_tokens\":100000,\"max_tokens\":20}", 300, 1, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(out, "{\"max_completion_tokens\":300,\"max_tokens\":20}");
    free(out);
    /* null means the provider's default: bounded too */
    out = clamp(EP_CHAT, "{\"max_tokens\":null}", 300, 0, &n);
    ck_assert_str_eq(out, "{\"max_tokens\":300}");
    free(out);
    /* none present: the first member is added when asked */
    out = clamp(EP_CHAT, "{\"model\":\"m\"}", 300, 1, &n);
    ck_assert_str_eq(out, "{\"model\":\"m\",\"max_completion_tokens\":300}");
    free(out);
    out = clamp(EP_CHAT, "{\"model\":\"m\"}", 300, 0, &n);
    ck_assert_int_eq(n, 0);
    free(out);
    out = clamp(EP_RESPONSES, "{\"max_output_tokens\":4096}", 16, 1, &n);
    ck_assert_str_eq(out, "{\"max_output_tokens\":16}");
    free(out);
}
END_TEST

static Suite *outcap_suite(void)
{
    Suite *s = suite_create("outcap");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, reads_the_smallest_cap);
    tcase_add_test(tc, refuses_what_is_not_a_whole_number);
    tcase_add_test(tc, clamps_every_member);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(outcap_suite());
}
