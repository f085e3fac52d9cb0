/*
 * Unit tests for routing/rstats: sums by (tier, target, rule), the "(other)" row past the cap,
 * and the Prometheus text read back line by line and summed against what was added.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/rstats.h"
#include "run_suite.h"

struct buf {
    char *s;
    size_t n, cap;
};

static void buf_out(void *arg, const char *line, size_t len)
{
    struct buf *b = arg;

    if (b->n + len + 1 > b->cap) {
        b->cap = (b->n + len + 1) * 2;
        b->s = realloc(b->s, b->cap);
        ck_assert_ptr_nonnull(b->s);
    }
    memcpy(b->s + b->n, line, len);
    b->n += len;
    b->s[b->n] = '\0';
}

/* One sample line read back: family, label values (unescaped) and value. */
struct sample {
    char name[64];
    char tier[160], target[160], rule[160], kind[16];
    double v;
};

/* Reads one label value starting after its opening quote; returns the end (after the closing
 * quote) or NULL. */
static const char *read_value(const char *p, char *out, size_t cap)
{
    size_t o = 0;

    while (*p != '"') {
        if (*p == '\0' || *p == '\n')
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'n')
                out[o++] = '\n';
            else if (*p == '\\' || *p == '"')
                out[o++] = *p;
            else
                return NULL;
        } else
            out[o++] = *p;
        p++;
        if (o + 1 >= cap)
            return NULL;
    }
    out[o] = '\0';
    return p + 1;
}

/* Parses a sample line (no '#'); 0 on success. */
static int parse_line(const char *line, struct sample *s)
{
    const char *p = strchr(line, '{');
    char key[32];

    s->name[0] = s->tier[0] = s->target[0] = s->rule[0] = s->kind[0] = '\0';
    if (p == NULL || (size_t)(p - line) >= sizeof(s->name))
        return -1;
    memcpy(s->name, line, (size_t)(p - line));
    s->name[p - line] = '\0';
    p++;
    while (*p != '}') {
        const char *eq = strchr(p, '=');
        char *dst;
        size_t cap;
        if (eq == NULL || eq[1] != '"' || (size_t)(eq - p) >= sizeof(key))
            return -1;
        memcpy(key, p, (size_t)(eq - p));
        key[eq - p] = '\0';
        if (strcmp(key, "tier") == 0)
            dst = s->tier, cap = sizeof(s->tier);
        else if (strcmp(key, "target") == 0)
            dst = s->target, cap = sizeof(s->target);
        else if (strcmp(key, "rule") == 0)
            dst = s->rule, cap = sizeof(s->rule);
        else if (strcmp(key, "kind") == 0)
            dst = s->kind, cap = sizeof(s->kind);
        else
            return -1;
        p = read_value(eq + 2, dst, cap);
        if (p == NULL)
            return -1;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
    if (p[1] != ' ')
        return -1;
    s->v = strtod(p + 2, NULL);
    return 0;
}

/* The sample lines of a metrics text, parsed once. */
struct samples {
    struct sample *v;
    int n;
};

static void samples_read(const char *text, struct samples *out)
{
    const char *p = text;
    char line[2048];
    int cap = 1;

    for (const char *q = text; *q != '\0'; q++)
        cap += *q == '\n';
    out->v = malloc(sizeof(*out->v) * (size_t)cap);
    out->n = 0;
    ck_assert_ptr_nonnull(out->v);
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        ck_assert_uint_lt(len, sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl != NULL);
        if (line[0] == '#' || line[0] == '\0')
            continue;
        ck_assert_msg(parse_line(line, &out->v[out->n]) == 0, "bad line: %s", line);
        out->n++;
    }
}

/* The sum of every sample of family name (and kind, when set) whose labels equal the ones
 * given (NULL: any). Counts the lines matched in *lines. */
static double sum_of(const struct samples *ss, const char *name, const char *kind, const char *tier,
                     const char *target, const char *rule, int *lines)
{
    double total = 0;

    *lines = 0;
    for (int i = 0; i < ss->n; i++) {
        const struct sample *s = &ss->v[i];
        if (strcmp(s->name, name) != 0 || (kind != NULL && strcmp(s->kind, kind) != 0) ||
            (tier != NULL && strcmp(s->tier, tier) != 0) ||
            (target != NULL && strcmp(s->target, target) != 0) ||
            (rule != NULL && strcmp(s->rule, rule) != 0))
            continue;
        total += s->v;
        (*lines)++;
    }
    return total;
}

START_TEST(sums_by_key)
{
    struct rstats *st = rstats_new();
    struct buf b = {0};
    struct samples ss;
    int n;
    cJSON *obj = cJSON_CreateObject();

    ck_assert_ptr_nonnull(st);
    rstats_add(st, "cheap", "gpt-4o-mini", "chit-chat", 0, 100, 20, 27000);
    rstats_add(st, "cheap", "gpt-4o-mini", "chit-chat", 1, 50, 10, 13500);
    rstats_add(st, "cheap", "claude-haiku-4-5", "chit-chat", 1, 70, 5, 90000);
    rstats_add(st, "expensive", "gpt-4o", "code", 0, 1000, 400, 6500000);
    rstats_add(st, "", "gpt-4o", "", 0, 10, 1, 35000); /* not routed: no tier, no rule */
    rstats_add(st, "we\"ird\\tier\n", "gpt-4o", "code", 0, 1, 1, 1);
    rstats_metrics(st, buf_out, &b);
    samples_read(b.s, &ss);

    ck_assert_double_eq(sum_of(&ss, "tokengate_route_requests_total", NULL, "cheap", "gpt-4o-mini",
                               "chit-chat", &n),
                        2);
    ck_assert_int_eq(n, 1);
    ck_assert_double_eq(
        sum_of(&ss, "tokengate_route_fallbacks_total", NULL, "cheap", NULL, NULL, &n), 2);
    ck_assert_int_eq(n, 2);
    ck_assert_double_eq(sum_of(&ss, "tokengate_route_tokens_total", "input", "cheap", "gpt-4o-mini",
                               "chit-chat", &n),
                        150);
    ck_assert_double_eq(sum_of(&ss, "tokengate_route_tokens_total", "output", "cheap",
                               "gpt-4o-mini", "chit-chat", &n),
                        30);
    ck_assert_double_eq_tol(
        sum_of(&ss, "tokengate_route_cost_usd_total", NULL, NULL, "gpt-4o", NULL, &n), 0.006535001,
        1e-12);
    ck_assert_int_eq(n, 3);
    ck_assert_double_eq(sum_of(&ss, "tokengate_route_requests_total", NULL, "", "gpt-4o", "", &n),
                        1);
    ck_assert_double_eq(
        sum_of(&ss, "tokengate_route_requests_total", NULL, "we\"ird\\tier\n", NULL, NULL, &n), 1);
    ck_assert_int_eq(n, 1);
    ck_assert_double_eq(sum_of(&ss, "tokengate_route_requests_total", NULL, NULL, NULL, NULL, &n),
                        6);
    ck_assert_int_eq(n, 5); /* one line per key */
    ck_assert_double_eq(sum_of(&ss, "tokengate_route_tokens_total", NULL, NULL, NULL, NULL, &n),
                        100 + 20 + 50 + 10 + 70 + 5 + 1000 + 400 + 10 + 1 + 1 + 1);
    ck_assert_int_eq(n, 10);
    ck_assert_ptr_null(strstr(b.s, "(other)"));
    /* each family's samples follow its TYPE line */
    ck_assert_ptr_nonnull(strstr(b.s, "# TYPE tokengate_route_requests_total counter\n"
                                      "tokengate_route_requests_total{"));
    ck_assert_ptr_nonnull(strstr(b.s, "# TYPE tokengate_route_tokens_total counter\n"
                                      "tokengate_route_tokens_total{tier=\"cheap\",target="
                                      "\"gpt-4o-mini\",rule=\"chit-chat\",kind=\"input\"} 150\n"
                                      "tokengate_route_tokens_total{tier=\"cheap\",target="
                                      "\"gpt-4o-mini\",rule=\"chit-chat\",kind=\"output\"} 30\n"));

    rstats_status(st, obj);
    ck_assert_int_eq(cJSON_GetObjectItem(obj, "requests")->valueint, 6);
    ck_assert_int_eq(cJSON_GetObjectItem(obj, "fallbacks")->valueint, 2);
    ck_assert_int_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "requests_by_tier"), "cheap")->valueint, 3);
    ck_assert_int_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "requests_by_target"), "gpt-4o")->valueint, 3);
    ck_assert_int_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "requests_by_rule"), "code")->valueint, 2);
    cJSON_Delete(obj);
    free(ss.v);
    free(b.s);
    rstats_free(st);
}
END_TEST

START_TEST(cap_goes_to_other)
{
    struct rstats *st = rstats_new();
    struct buf b = {0};
    struct samples ss;
    char rule[32], big[200];
    int n;

    for (int i = 0; i < RSTATS_MAX; i++) {
        snprintf(rule, sizeof(rule), "r%d", i);
        rstats_add(st, "cheap", "m", rule, 0, 1, 1, 1000);
    }
    /* 10 new keys past the cap, and one name too long to keep: all in "(other)" */
    for (int i = 0; i < 10; i++) {
        snprintf(rule, sizeof(rule), "late%d", i);
        rstats_add(st, "cheap", "m", rule, i == 0, 2, 3, 1000);
    }
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rstats_add(st, "cheap", big, "r0", 0, 2, 3, 1000);
    /* a key inside the cap still has its own row */
    rstats_add(st, "cheap", "m", "r7", 0, 5, 5, 1000);
    rstats_metrics(st, buf_out, &b);
    samples_read(b.s, &ss);
    ck_assert_double_eq(
        sum_of(&ss, "tokengate_route_requests_total", NULL, "(other)", "(other)", "(other)", &n),
        11);
    ck_assert_int_eq(n, 1);
    ck_assert_double_eq(
        sum_of(&ss, "tokengate_route_tokens_total", "output", NULL, "(other)", NULL, &n), 33);
    ck_assert_double_eq(
        sum_of(&ss, "tokengate_route_fallbacks_total", NULL, NULL, "(other)", NULL, &n), 1);
    ck_assert_double_eq(sum_of(&ss, "tokengate_route_requests_total", NULL, "cheap", "m", "r7", &n),
                        2);
    ck_assert_double_eq(sum_of(&ss, "tokengate_route_requests_total", NULL, NULL, NULL, NULL, &n),
                        RSTATS_MAX + 12);
    ck_assert_int_eq(n, RSTATS_MAX + 1);
    ck_assert_ptr_null(strstr(b.s, "late"));
    ck_assert_double_eq_tol(
        sum_of(&ss, "tokengate_route_cost_usd_total", NULL, NULL, NULL, NULL, &n),
        (RSTATS_MAX + 12) * 1e-6, 1e-9);
    free(ss.v);
    free(b.s);
    rstats_free(st);
}
END_TEST

static Suite *rstats_suite(void)
{
    Suite *s = suite_create("rstats");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, sums_by_key);
    tcase_add_test(tc, cap_goes_to_other);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(rstats_suite());
}
