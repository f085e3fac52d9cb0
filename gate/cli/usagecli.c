/*
 * usagecli: `tokengate usage`, spend by level, scope and window, read from the config and
 * its ledger the way the gate reads them at start-up (budget_book_new), so the figures are
 * the gate's own. Reservations of requests under way live only in a running gate: its admin
 * API shows them (GET /admin/v1/budgets).
 */
#include "gate/cli/usagecli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "gate/cli/clitext.h"
#include "gate/util/clock.h"
#include "gate/budget/ledger.h"

enum fmt { FMT_TABLE, FMT_JSON, FMT_CSV };

struct row {
    char level[12];
    char scope[160];
    const char *window;
    char limit[40], used[40], remaining[40], pct[12], resets[24];
};

/* --savings: one scope and window's savings */
struct srow {
    int scope;
    enum conf_window window;
    double since;
};

struct usage_ctx {
    struct budget_book *b;
    int level;     /* -1 any */
    int scope;     /* -1 any */
    int window;    /* -1 any */
    struct row *rows;
    int n, cap;
    int savings;   /* --savings: srows, not rows */
    struct srow *srows;
    int ns, scap;
};

static void fmt_amount(char *buf, size_t cap, int64_t v, int usd)
{
    if (v < 0)
        snprintf(buf, cap, "-");
    else if (usd)
        snprintf(buf, cap, "$%.6f", v / 1e9);
    else
        snprintf(buf, cap, "%lld", (long long)v);
}

static void add_row(struct usage_ctx *x, const struct budget_view *v, int usd)
{
    struct row *r;
    int64_t lim = usd ? v->limit.nusd : v->limit.tokens;
    int64_t used = usd ? v->used_nusd : v->used_tokens;

    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 64;
        x->rows = realloc(x->rows, (size_t)x->cap * sizeof(*x->rows));
    }
    r = &x->rows[x->n++];
    snprintf(r->level, sizeof(r->level), "%s", conf_level_name(budget_scope_level(x->b, v->scope)));
    budget_scope_label(x->b, v->scope, r->scope, sizeof(r->scope));
    r->window = conf_window_name(v->window);
    fmt_amount(r->limit, sizeof(r->limit), lim, usd);
    fmt_amount(r->used, sizeof(r->used), used, usd);
    if (lim >= 0) {
        fmt_amount(r->remaining, sizeof(r->remaining), lim > used ? lim - used : 0, usd);
        snprintf(r->pct, sizeof(r->pct), "%.1f%%", lim > 0 ? 100.0 * (double)used / lim : 100.0);
    } else {
        snprintf(r->remaining, sizeof(r->remaining), "-");
        snprintf(r->pct, sizeof(r->pct), "-");
    }
    if (v->window == CONF_WIN_TOTAL) {
        snprintf(r->resets, sizeof(r->resets), "never");
    } else {
        gate_iso_utc(v->resets_at, r->resets, sizeof(r->resets));
    }
}

static void on_view(void *arg, const struct budget_view *v)
{
    struct usage_ctx *x = arg;

    if ((x->level >= 0 && (int)budget_scope_level(x->b, v->scope) != x->level) ||
        (x->scope >= 0 && v->scope != x->scope) || (x->window >= 0 && (int)v->window != x->window))
        return;
    if (x->savings) {
        if (x->ns == x->scap) {
            struct srow *g = realloc(x->srows, (size_t)(x->scap ? x->scap * 2 : 64) * sizeof(*g));
            if (g == NULL)
                return; /* out of memory: the rows so far */
            x->srows = g;
            x->scap = x->scap ? x->scap * 2 : 64;
        }
        x->srows[x->ns++] = (struct srow){
            .scope = v->scope, .window = v->window,
            .since = v->window == CONF_WIN_TOTAL ? 0 : v->start};
        return;
    }
    /* a budget in dollars shows as a dollar row; spend without a budget shows in tokens */
    if (v->limit.tokens >= 0 || v->limit.nusd < 0)
        add_row(x, v, 0);
    if (v->limit.nusd >= 0)
        add_row(x, v, 1);
}

static void usage_usage(FILE *f)
{
    fprintf(f, "usage: tokengate usage [--config FILE] [--db PATH] [--level L] [--scope S] "
               "[--window W] [--all] [--savings] [--format table|json|csv]\n"
               "  --savings: per scope, what the response cache, provider prompt caching and "
               "routing saved\n"
               "             (in the window given, else since the ledger began)\n");
}

static void usd(char *buf, size_t cap, int64_t n)
{
    uint64_t m = n < 0 ? (uint64_t)(-(n + 1)) + 1 : (uint64_t)n;

    snprintf(buf, cap, "%s$%llu.%06llu", n < 0 ? "-" : "", (unsigned long long)(m / 1000000000),
             (unsigned long long)(m % 1000000000 / 1000));
}

/* Writes s as a JSON string to stdout. */
static void json_string(const char *s)
{
    cJSON *v = cJSON_CreateString(s);
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;

    fputs(t ? t : "null", stdout);
    cJSON_free(t);
    cJSON_Delete(v);
}

/* `usage --savings`: one line per scope and window of x->srows, read from l. */
static int print_savings(struct usage_ctx *x, struct ledger *l, enum fmt f)
{
    enum { NCOL = 14 };
    static const char *const head[NCOL] = {
        "LEVEL", "SCOPE", "WINDOW", "REQUESTS", "HITS", "MISSES", "SAVED_TOKENS",
        "RESPONSE_USD", "CACHED_TOKENS", "PROMPT_USD", "ROUTED", "ROUTING_USD", "SAVED_USD",
        "PAID_USD"};
    static const char *const keys[NCOL] = {
        "level", "scope", "window", "requests", "hits", "misses", "saved_tokens",
        "response_usd", "cached_tokens", "prompt_usd", "routed", "routing_usd", "saved_usd",
        "paid_usd"};
    char (*cells)[NCOL][48] = calloc((size_t)(x->ns ? x->ns : 1), sizeof(*cells));
    int w[NCOL];

    if (cells == NULL) {
        fprintf(stderr, "tokengate usage: out of memory\n");
        return 1;
    }
    for (int k = 0; k < NCOL; k++)
        w[k] = (int)strlen(head[k]);
    for (int i = 0; i < x->ns; i++) {
        const struct srow *r = &x->srows[i];
        enum conf_level lv = budget_scope_level(x->b, r->scope);
        static const char *const column[] = {
            [CONF_LEVEL_ORG] = NULL, [CONF_LEVEL_DEPARTMENT] = "department",
            [CONF_LEVEL_TEAM] = "team", [CONF_LEVEL_AGENT] = "agent"};
        struct ledger_savings sv;
        int rc = ledger_savings_since(l, column[lv], budget_scope_name(x->b, r->scope), r->since,
                                      &sv);
        if (rc == -2) {
            fprintf(stderr, "tokengate usage: the ledger is older than its savings columns "
                            "(schema 4): a gate of this version adds them when it opens it\n");
            free(cells);
            return 1;
        }
        if (rc != 0) {
            free(cells);
            return 1; /* the ledger said why on stderr */
        }
        char(*c)[48] = cells[i];
        snprintf(c[0], 48, "%s", conf_level_name(lv));
        budget_scope_label(x->b, r->scope, c[1], 48);
        snprintf(c[2], 48, "%s", conf_window_name(r->window));
        snprintf(c[3], 48, "%lld", (long long)sv.requests);
        snprintf(c[4], 48, "%lld", (long long)sv.hits);
        snprintf(c[5], 48, "%lld", (long long)sv.misses);
        snprintf(c[6], 48, "%lld", (long long)sv.saved_tokens);
        usd(c[7], 48, sv.saved_nusd);
        snprintf(c[8], 48, "%lld", (long long)sv.cached_tokens);
        usd(c[9], 48, sv.prompt_saved_nusd);
        snprintf(c[10], 48, "%lld", (long long)sv.routed);
        usd(c[11], 48, sv.route_saved_nusd);
        usd(c[12], 48, sv.saved_nusd + sv.prompt_saved_nusd + sv.route_saved_nusd);
        usd(c[13], 48, sv.cost_nusd);
        for (int k = 0; k < NCOL; k++)
            if ((int)strlen(c[k]) > w[k])
                w[k] = (int)strlen(c[k]);
    }
    if (f == FMT_TABLE) {
        for (int k = 0; k < NCOL; k++)
            printf(k < 3 ? "%-*s%s" : "%*s%s", w[k], head[k], k == NCOL - 1 ? "\n" : "  ");
        for (int i = 0; i < x->ns; i++)
            for (int k = 0; k < NCOL; k++)
                printf(k < 3 ? "%-*s%s" : "%*s%s", w[k], cells[i][k], k == NCOL - 1 ? "\n" : "  ");
        if (x->ns == 0)
            printf("(no scope matches)\n");
    } else if (f == FMT_CSV) {
        for (int k = 0; k < NCOL; k++)
            printf("%s%c", keys[k], k == NCOL - 1 ? '\n' : ',');
        for (int i = 0; i < x->ns; i++)
            for (int k = 0; k < NCOL; k++) {
                if (k < 3)
                    clitext_csv(stdout, cells[i][k]);
                else
                    fputs(cells[i][k], stdout);
                putchar(k == NCOL - 1 ? '\n' : ',');
            }
    } else {
        for (int i = 0; i < x->ns; i++) {
            putchar('{');
            for (int k = 0; k < NCOL; k++) {
                /* counts as numbers; names and dollar figures ("$0.001200") as strings */
                int num = k >= 3 && cells[i][k][0] != '$' && cells[i][k][0] != '-';
                printf("\"%s\":", keys[k]);
                if (num)
                    fputs(cells[i][k], stdout);
                else
                    json_string(cells[i][k]);
                putchar(k == NCOL - 1 ? '}' : ',');
            }
            putchar('\n');
        }
    }
    free(cells);
    return 0;
}

static int usage_fail(const char *msg)
{
    fprintf(stderr, "tokengate usage: %s\n", msg);
    usage_usage(stderr);
    return 2;
}

int gate_cmd_usage(int argc, char **argv)
{
    const char *config = "conf/tokengate.yaml", *db = NULL, *level = NULL, *scope = NULL,
               *window = NULL, *format = "table";
    int all = 0;
    char err[1024];
    struct usage_ctx x = {.level = -1, .scope = -1, .window = -1};

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = strcmp(a, "--config") == 0   ? &config
                            : strcmp(a, "--db") == 0     ? &db
                            : strcmp(a, "--level") == 0  ? &level
                            : strcmp(a, "--scope") == 0  ? &scope
                            : strcmp(a, "--window") == 0 ? &window
                            : strcmp(a, "--format") == 0 ? &format
                                                         : NULL;
        if (strcmp(a, "--all") == 0) {
            all = 1;
            continue;
        }
        if (strcmp(a, "--savings") == 0) {
            x.savings = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage_usage(stdout);
            return 0;
        }
        if (slot == NULL || i + 1 >= argc) {
            char msg[300];
            snprintf(msg, sizeof(msg), "unknown or incomplete option '%s'", a);
            return usage_fail(msg);
        }
        *slot = argv[++i];
    }
    enum fmt f = strcmp(format, "table") == 0  ? FMT_TABLE
                 : strcmp(format, "json") == 0 ? FMT_JSON
                 : strcmp(format, "csv") == 0  ? FMT_CSV
                                               : (enum fmt) - 1;
    if ((int)f < 0)
        return usage_fail("--format is table, json or csv");
    struct conf *c = conf_load(config, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "tokengate usage: invalid config: %s\n", err);
        return 1;
    }
    int rc = 1;
    struct ledger *l = NULL;
    struct budget_book *b = NULL;
    if (c->nscopes == 0) {
        fprintf(stderr, "tokengate usage: %s declares no org: there are no budgets to show\n",
                config);
        goto out;
    }
    if (level != NULL) {
        x.level = conf_level_parse(level);
        if (x.level < 0) {
            rc = usage_fail("--level is org, department, team or agent");
            goto out;
        }
    }
    if (window != NULL && (x.window = conf_window_parse(window)) < 0) {
        rc = usage_fail("--window is minute, hour, day, month or total");
        goto out;
    }
    if (db == NULL)
        db = c->ledger_path;
    l = db ? ledger_open_readonly(db, err, sizeof(err)) : NULL;
    if (l == NULL) {
        fprintf(stderr, "tokengate usage: %s\n", db ? err : "no ledger is configured");
        goto out;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    b = budget_book_new(c, l, (double)ts.tv_sec + ts.tv_nsec / 1e9, err, sizeof(err));
    if (b == NULL) {
        fprintf(stderr, "tokengate usage: %s\n", err);
        goto out;
    }
    x.b = b;
    if (scope != NULL && (x.scope = budget_find_scope(b, scope)) < 0) {
        fprintf(stderr,
                "tokengate usage: no scope '%s' in %s or its ledger (org, department:NAME, "
                "team:NAME, agent:NAME)\n",
                scope, config);
        goto out;
    }
    if (x.savings && x.window < 0)
        x.window = CONF_WIN_TOTAL; /* since the ledger began, unless a window is asked for */
    budget_each(b, (double)ts.tv_sec + ts.tv_nsec / 1e9, all || x.savings, on_view, &x);
    if (x.savings) {
        rc = print_savings(&x, l, f);
        goto out;
    }

    if (f == FMT_TABLE) {
        const char *head[] = {"LEVEL", "SCOPE", "WINDOW", "LIMIT", "USED", "REMAINING", "USED%",
                              "RESETS"};
        int w[8];
        for (int k = 0; k < 8; k++)
            w[k] = (int)strlen(head[k]);
        for (int i = 0; i < x.n; i++) {
            const char *v[8] = {x.rows[i].level,     x.rows[i].scope, x.rows[i].window,
                                x.rows[i].limit,     x.rows[i].used,  x.rows[i].remaining,
                                x.rows[i].pct,       x.rows[i].resets};
            for (int k = 0; k < 8; k++)
                if ((int)strlen(v[k]) > w[k])
                    w[k] = (int)strlen(v[k]);
        }
        printf("%-*s  %-*s  %-*s  %*s  %*s  %*s  %*s  %s\n", w[0], head[0], w[1], head[1], w[2],
               head[2], w[3], head[3], w[4], head[4], w[5], head[5], w[6], head[6], head[7]);
        for (int i = 0; i < x.n; i++) {
            const struct row *r = &x.rows[i];
            printf("%-*s  %-*s  %-*s  %*s  %*s  %*s  %*s  %s\n", w[0], r->level, w[1], r->scope,
                   w[2], r->window, w[3], r->limit, w[4], r->used, w[5], r->remaining, w[6],
                   r->pct, r->resets);
        }
        if (x.n == 0)
            printf("(no budgets%s; --all shows spend in every window)\n",
                   x.level >= 0 || x.scope >= 0 || x.window >= 0 ? " match" : "");
    } else if (f == FMT_CSV) {
        printf("level,scope,window,limit,used,remaining,used_pct,resets\n");
        for (int i = 0; i < x.n; i++) {
            const struct row *r = &x.rows[i];
            const char *v[8] = {r->level, r->scope, r->window, r->limit,
                                r->used,  r->remaining, r->pct, r->resets};
            for (int k = 0; k < 8; k++) {
                if (k < 3)
                    clitext_csv(stdout, v[k]); /* names: escaped */
                else
                    fputs(v[k], stdout); /* figures the tool wrote ("-" for none) */
                putchar(k == 7 ? '\n' : ',');
            }
        }
    } else {
        for (int i = 0; i < x.n; i++) {
            const struct row *r = &x.rows[i];
            printf("{\"level\":\"%s\",\"scope\":\"%s\",\"window\":\"%s\",\"limit\":\"%s\","
                   "\"used\":\"%s\",\"remaining\":\"%s\",\"used_pct\":\"%s\",\"resets\":\"%s\"}\n",
                   r->level, r->scope, r->window, r->limit, r->used, r->remaining, r->pct,
                   r->resets);
        }
    }
    rc = 0;
out:
    budget_book_free(b);
    ledger_close(l);
    free(x.rows);
    free(x.srows);
    conf_unref(c);
    return rc;
}
