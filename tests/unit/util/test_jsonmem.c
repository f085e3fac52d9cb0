/* Unit tests for gate/util/jsonmem.h: cJSON's memory from an arena, or from malloc under a cap. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gate/util/arena.h"
#include "gate/util/jsonmem.h"
#include "run_suite.h"

/* "[1,1,...,1]" of about n bytes: a node (about 64 bytes) for every 2 bytes of text. */
static char *ones(size_t n)
{
    char *s = malloc(n + 2);
    size_t i = 0;

    ck_assert_ptr_nonnull(s);
    s[i++] = '[';
    while (i + 2 < n) {
        s[i++] = '1';
        s[i++] = ',';
    }
    s[i++] = '1';
    s[i++] = ']';
    s[i] = '\0';
    return s;
}

START_TEST(capped_scope_fails_a_parse_past_its_cap)
{
    struct jsonmem_saved saved;
    char *big = ones(256 * 1024); /* about 8 MiB of nodes */
    cJSON *j;

    jsonmem_enter_capped(1024 * 1024, &saved);
    ck_assert_ptr_null(cJSON_Parse(big));
    /* what the failed parse held was given back: a small one fits, again and again */
    for (int i = 0; i < 1000; i++) {
        j = cJSON_Parse("{\"a\":[1,2,3],\"b\":\"text\"}");
        ck_assert_ptr_nonnull(j);
        cJSON_Delete(j);
    }
    jsonmem_leave_capped(&saved);
    /* outside the scope, no cap */
    j = cJSON_Parse(big);
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j);
    free(big);
}
END_TEST

START_TEST(capped_scope_inside_an_arena_scope)
{
    struct arena *a = arena_new();
    struct arena *prev = jsonmem_enter(a);
    struct jsonmem_saved saved;
    cJSON *in_arena = cJSON_Parse("{\"k\":1}");

    jsonmem_enter_capped(64 * 1024, &saved);
    cJSON *j = cJSON_Parse("[true,false,null]");
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j); /* malloc'd: freed one by one */
    jsonmem_leave_capped(&saved);
    /* the arena serves again */
    ck_assert_ptr_nonnull(in_arena);
    ck_assert_ptr_nonnull(cJSON_Parse("[1]"));
    size_t before = arena_bytes(a);
    char *big = ones(64 * 1024);
    ck_assert_ptr_nonnull(cJSON_Parse(big));
    ck_assert_uint_gt(arena_bytes(a), before);
    jsonmem_leave(prev);
    arena_free(a);
    free(big);
}
END_TEST

START_TEST(failures_are_counted_per_take)
{
    struct jsonmem_saved saved;
    cJSON *doc;

    (void)jsonmem_failures_take();
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "a", "b");
    ck_assert_uint_eq(jsonmem_failures_take(), 0);
    cJSON_Delete(doc);
    /* a builder that cannot allocate leaves the document without the member, quietly: the
     * count is what tells */
    doc = cJSON_CreateObject();
    jsonmem_enter_capped(16, &saved);
    ck_assert_ptr_null(cJSON_AddStringToObject(doc, "a member too large for the cap", "value"));
    jsonmem_leave_capped(&saved);
    ck_assert_ptr_null(cJSON_GetObjectItem(doc, "a member too large for the cap"));
    ck_assert_uint_gt(jsonmem_failures_take(), 0);
    ck_assert_uint_eq(jsonmem_failures_take(), 0); /* taken: counted again from 0 */
    cJSON_Delete(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsonmem");
    TCase *tc = tcase_create("jsonmem");

    jsonmem_init();
    tcase_add_test(tc, capped_scope_fails_a_parse_past_its_cap);
    tcase_add_test(tc, capped_scope_inside_an_arena_scope);
    tcase_add_test(tc, failures_are_counted_per_take);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
