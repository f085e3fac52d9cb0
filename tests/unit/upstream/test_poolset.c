/*
 * Unit tests for gate/upstream/poolset: a worker's pools across reloads are kept by provider
 * name and endpoint, made for new providers, retired (and freed, with their snapshot's
 * reference) for removed or moved ones, and found for requests of an older snapshot.
 */
#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/core/worker.h"
#include "gate/upstream/poolset.h"
#include "run_suite.h"

static struct conf *load(const char *providers)
{
    char text[2048], err[512];
    struct conf *c;

    snprintf(text, sizeof(text), "listen: 127.0.0.1:0\nproviders:\n%smodels:\n  m: a\n", providers);
    c = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

static const struct conf_provider *prov(const struct conf *c, const char *name)
{
    for (int i = 0; i < c->nproviders; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    ck_abort_msg("no provider %s", name);
    return NULL;
}

static int refs(const struct conf *c)
{
    return __atomic_load_n(&c->refs, __ATOMIC_RELAXED);
}

START_TEST(test_rebind_keeps_adds_retires)
{
    struct gate_worker w = {0};
    struct conf *c1 = load("  a: { base_url: http://127.0.0.1:9001/v1 }\n"
                           "  b: { base_url: http://127.0.0.1:9002/v1 }\n"
                           "  c: { base_url: http://127.0.0.1:9003/v1 }\n");
    /* a kept, b moved to another port, c removed, d new */
    struct conf *c2 = load("  d: { base_url: http://127.0.0.1:9004/v1 }\n"
                           "  b: { base_url: http://127.0.0.1:9012/v1 }\n"
                           "  a: { base_url: http://127.0.0.1:9001/v1 }\n");
    struct poolset_changes ch;

    w.base = event_base_new();
    ck_assert_ptr_nonnull(w.base);
    struct poolset *ps = poolset_new(&w, c1);
    ck_assert_ptr_nonnull(ps);
    struct upstream_pool *a1 = poolset_get(ps, c1, prov(c1, "a"));
    struct upstream_pool *b1 = poolset_get(ps, c1, prov(c1, "b"));
    struct upstream_pool *cc1 = poolset_get(ps, c1, prov(c1, "c"));
    ck_assert_ptr_nonnull(a1);
    ck_assert_ptr_ne(a1, b1);
    ck_assert_int_eq(refs(c1), 1 + 1 + 3); /* ours, the set's, one per pool */

    ck_assert_int_eq(poolset_rebind(ps, c2, &ch), 0);
    ck_assert_int_eq(ch.kept, 1);
    ck_assert_int_eq(ch.added, 2);
    ck_assert_int_eq(ch.retired, 2);
    /* the kept pool serves both snapshots' requests */
    ck_assert_ptr_eq(poolset_get(ps, c2, prov(c2, "a")), a1);
    ck_assert_ptr_eq(poolset_get(ps, c1, prov(c1, "a")), a1);
    /* a moved provider: a new pool for the new snapshot; an old request finds no pool to its
     * old address any more (the retired one, unused, went at the rebind's sweep), so one is
     * made for it, apart from the new one */
    struct upstream_pool *b2 = poolset_get(ps, c2, prov(c2, "b"));
    ck_assert_ptr_nonnull(b2);
    struct upstream_pool *b1again = poolset_get(ps, c1, prov(c1, "b"));
    ck_assert_ptr_nonnull(b1again);
    ck_assert_ptr_ne(b1again, b2);
    ck_assert_ptr_eq(poolset_get(ps, c1, prov(c1, "b")), b1again); /* found again by name */
    ck_assert_ptr_nonnull(poolset_get(ps, c2, prov(c2, "d")));
    ck_assert_ptr_ne(poolset_get(ps, c1, prov(c1, "c")), NULL);
    (void)cc1;
    /* unused retired pools go at the next sweep, with their hold on c1 */
    ck_assert_int_eq(poolset_sweep(ps), 0);
    ck_assert_int_eq(refs(c1), 1);
    ck_assert_int_eq(refs(c2), 1 + 1 + 3);

    poolset_free(ps);
    ck_assert_int_eq(refs(c2), 1);
    conf_unref(c1);
    conf_unref(c2);
    event_base_free(w.base);
}
END_TEST

START_TEST(test_rebind_same_file)
{
    struct gate_worker w = {0};
    const char *p = "  a: { base_url: http://127.0.0.1:9001/v1 }\n";
    struct conf *c1 = load(p), *c2 = load(p);
    struct poolset_changes ch;

    w.base = event_base_new();
    struct poolset *ps = poolset_new(&w, c1);
    struct upstream_pool *a = poolset_get(ps, c1, prov(c1, "a"));
    ck_assert_int_eq(poolset_rebind(ps, c2, &ch), 0);
    ck_assert_int_eq(ch.kept, 1);
    ck_assert_int_eq(ch.added + ch.retired, 0);
    ck_assert_ptr_eq(poolset_get(ps, c2, prov(c2, "a")), a);
    ck_assert_int_eq(refs(c1), 1); /* nothing holds the old snapshot */
    poolset_free(ps);
    conf_unref(c1);
    conf_unref(c2);
    event_base_free(w.base);
}
END_TEST

START_TEST(test_provider_in_no_table)
{
    struct gate_worker w = {0};
    char text[512], err[512];
    const char *y = "listen: 127.0.0.1:0\nproviders:\n  a: { base_url: http://127.0.0.1:9001/v1 }\n"
                    "models:\n  m: a\nmcp:\n  servers:\n    docs: { url: 'http://127.0.0.1:9005/mcp' }\n"
                    "    wiki: { url: 'http://127.0.0.1:9006/mcp' }\n";
    struct conf *c1, *c2;
    struct poolset_changes ch;

    snprintf(text, sizeof(text), "%s", y);
    c1 = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));
    c2 = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));
    ck_assert_msg(c1 != NULL && c2 != NULL, "%s", err);
    w.base = event_base_new();
    struct poolset *ps = poolset_new(&w, c1);
    const struct conf_provider *docs = &conf_find_mcp(c1, "docs", 4)->prov;
    const struct conf_provider *wiki = &conf_find_mcp(c1, "wiki", 4)->prov;
    ck_assert_int_eq(docs->index, -1);
    struct upstream_pool *d = poolset_get(ps, c1, docs);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_eq(poolset_get(ps, c1, docs), d); /* kept within the snapshot */
    ck_assert_ptr_ne(poolset_get(ps, c1, wiki), d);
    ck_assert_ptr_ne(poolset_get(ps, c1, prov(c1, "a")), d);
    ck_assert_int_eq(refs(c1), 1 + 1 + 1 + 2); /* ours, the set's, a's pool, two extra */
    /* a rebind retires them: the new snapshot's requests make their own, the old ones go once
     * unused, with their hold on c1 */
    ck_assert_int_eq(poolset_rebind(ps, c2, &ch), 0);
    ck_assert_int_eq(poolset_sweep(ps), 0);
    ck_assert_int_eq(refs(c1), 1);
    struct upstream_pool *d2 = poolset_get(ps, c2, &conf_find_mcp(c2, "docs", 4)->prov);
    ck_assert_ptr_nonnull(d2);
    ck_assert_ptr_eq(poolset_get(ps, c2, &conf_find_mcp(c2, "docs", 4)->prov), d2);
    poolset_free(ps);
    ck_assert_int_eq(refs(c2), 1);
    conf_unref(c1);
    conf_unref(c2);
    event_base_free(w.base);
}
END_TEST

static Suite *poolset_suite(void)
{
    Suite *s = suite_create("poolset");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_rebind_keeps_adds_retires);
    tcase_add_test(tc, test_provider_in_no_table);
    tcase_add_test(tc, test_rebind_same_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(poolset_suite());
}
