/*
 * tokengate-budgetbench: the cost of the budget path of one request, in process.
 *
 * usage: tokengate-budgetbench [--iterations N] [--no-ledger]
 *
 * Builds a config in memory (an org with 2 departments, 4 teams, 50 agents, a key per agent,
 * token and dollar budgets on every level and prices), the budget book from it (no ledger),
 * and times, one call at a time with clock_gettime(CLOCK_MONOTONIC), N calls (default 200,000)
 * of:
 *   authenticate      budget_authenticate: SHA-256 of the key and the lookup under the lock
 *   reserve+settle    budget_reserve then budget_settle on a 4-level path (org, department,
 *                     team, agent), with the wall-clock reads the gate makes for each
 *   budget path       the two above, one request's worth
 *   budget path, 2 threads   the same in two threads at once (each on its own agents), both
 *                     contending for the book's one mutex
 *   ledger_submit     queuing one request record for the ledger's writer thread (the caller's
 *                     side only), with a ledger in a temporary directory; the writer runs
 *                     meanwhile, as it does in the gate. Not with --no-ledger.
 * Each is warmed up untimed first. Prints a Markdown table of p50, p99, p99.9, the mean and the
 * maximum in microseconds (on a busy machine the mean and the maximum carry the calls during
 * which the thread was descheduled), with the median cost of an empty timing (two
 * clock_gettime calls back to back) subtracted from every sample, and that cost under it.
 * Exits 1 when the config, the book or the ledger cannot be made or a call fails.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "gate/budget/budget.h"
#include "gate/budget/ledger.h"

#define NAGENTS 50
#define WARMUP 20000

struct bench {
    struct conf *conf;
    struct budget_book *book;
    const struct conf_price *price;
    int agents[NAGENTS];      /* scope index of agent i */
    char keys[NAGENTS][32];   /* its secret */
    uint64_t overhead;        /* median ns of an empty timing */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The gate reads the wall clock for every reservation and settlement: so does the bench. */
static double wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sample at quantile q of a sorted array of n. */
static uint64_t quantile(const uint64_t *s, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n);
    return s[i < n ? i : n - 1];
}

/* Sorts the n samples (ns, timer overhead included) and prints the table row of name. */
static void report(const char *name, uint64_t *s, size_t n, uint64_t overhead)
{
    double sum = 0;

    for (size_t i = 0; i < n; i++) {
        s[i] = s[i] > overhead ? s[i] - overhead : 0;
        sum += (double)s[i];
    }
    qsort(s, n, sizeof(*s), cmp_u64);
    printf("| %s | %zu | %.2f | %.2f | %.2f | %.2f | %.1f |\n", name, n,
           quantile(s, n, 0.50) / 1e3, quantile(s, n, 0.99) / 1e3, quantile(s, n, 0.999) / 1e3,
           sum / (double)n / 1e3, s[n - 1] / 1e3);
    fflush(stdout);
}

/*
 * The config: org acme, departments d0 and d1, teams t0..t3 (two a department), agents a00..a49
 * spread over the teams, a key tg-bench-key-NN for each. Budgets on every level, in tokens and
 * dollars, far above what the bench spends so that none refuses; the ledger at ledger_path
 * (the config requires one with an org; the book is built without it). Returns 0 with the YAML
 * in buf, or -1 when it does not fit.
 */
static int make_yaml(char *buf, size_t cap, const char *ledger_path)
{
    size_t n = 0;
    int k;

#define PUT(...)                                                                                   \
    do {                                                                                           \
        k = snprintf(buf + n, cap - n, __VA_ARGS__);                                               \
        if (k < 0 || (size_t)k >= cap - n)                                                         \
            return -1;                                                                             \
        n += (size_t)k;                                                                            \
    } while (0)
    PUT("listen: 127.0.0.1:0\nworkers: 1\n"
        "providers:\n  mock: { base_url: \"http://127.0.0.1:9/v1\", format: openai }\n"
        "models:\n  gpt-4o-mini:\n    provider: mock\n"
        "    price: { input: 0.15, output: 0.60, cached_input: 0.075 }\n"
        "org: acme\ndepartments:\n");
    for (int d = 0; d < 2; d++) {
        PUT("  d%d:\n    teams:\n", d);
        for (int t = 2 * d; t < 2 * d + 2; t++) {
            PUT("      t%d: { agents: [", t);
            for (int a = t; a < NAGENTS; a += 4)
                PUT("%sa%02d", a == t ? "" : ", ", a);
            PUT("] }\n");
        }
    }
    PUT("keys:\n");
    for (int a = 0; a < NAGENTS; a++)
        PUT("  tg-bench-key-%02d: a%02d\n", a, a);
    PUT("budgets:\n"
        "  - { scope: org, window: month, usd: 1000000 }\n"
        "  - { scope: org, window: day, tokens: 1000000000000 }\n");
    for (int d = 0; d < 2; d++)
        PUT("  - { scope: department:d%d, window: day, usd: 100000 }\n", d);
    for (int t = 0; t < 4; t++)
        PUT("  - { scope: team:t%d, window: day, tokens: 100000000000 }\n"
            "  - { scope: team:t%d, window: hour, usd: 10000 }\n",
            t, t);
    for (int a = 0; a < NAGENTS; a++)
        PUT("  - { scope: agent:a%02d, window: minute, tokens: 10000000000 }\n", a);
    PUT("alerts:\n  thresholds: [80, 95]\nledger:\n  path: %s\n  sync: normal\n", ledger_path);
#undef PUT
    return 0;
}

/* One request's worth of reservation and settlement, as the gate makes it. */
static int reserve_settle(struct bench *b, int agent)
{
    struct budget_ask ask = {
        .agent = agent,
        .input = 1000,
        .approximate = 0,
        .generates = 1,
        .max_output = 64,
        .choices = 1,
        .model_cap = 16384,
        .price = b->price,
    };
    struct budget_resv r;
    struct budget_refusal why;
    struct budget_alert alerts[8];

    if (budget_reserve(b->book, &ask, wall_now(), &r, &why) < 0)
        return -1;
    /* 1000 in, 16 out at $0.15 / $0.60 per million */
    budget_settle(b->book, &r, 1016, 160, wall_now(), alerts, 8);
    return 0;
}

static int authenticate(struct bench *b, int i)
{
    char key_id[24];
    int agent = -1;
    const char *key = b->keys[i % NAGENTS];

    if (budget_authenticate(b->book, key, strlen(key), &agent, key_id) != BUDGET_AUTH_OK ||
        agent != b->agents[i % NAGENTS])
        return -1;
    return agent;
}

enum op { OP_AUTH, OP_RESERVE, OP_PATH };

/* Runs op n times untimed when s is NULL, else timing each call into s. Returns 0 or -1. */
static int run(struct bench *b, enum op op, int first, int step, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        int a = first + (int)(i % (NAGENTS / step)) * step, agent = 0;
        uint64_t t0 = now_ns();
        switch (op) {
        case OP_AUTH:
            agent = authenticate(b, a);
            break;
        case OP_RESERVE:
            agent = reserve_settle(b, b->agents[a]);
            break;
        case OP_PATH:
            agent = authenticate(b, a);
            if (agent >= 0)
                agent = reserve_settle(b, agent);
            break;
        }
        uint64_t t1 = now_ns();
        if (agent < 0)
            return -1;
        if (s != NULL)
            s[i] = t1 - t0;
    }
    return 0;
}

struct worker {
    struct bench *b;
    pthread_barrier_t *go;
    int first;
    size_t n;
    uint64_t *s;
    int rc;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    w->rc = run(w->b, OP_PATH, w->first, 2, WARMUP / 2, NULL);
    pthread_barrier_wait(w->go);
    if (w->rc == 0)
        w->rc = run(w->b, OP_PATH, w->first, 2, w->n, w->s);
    return NULL;
}

/* Two threads on the whole path at once, agents even and odd; their paths a second together
 * (warm-up included) in *rate. Returns 0 or -1. */
static int run_threads(struct bench *b, size_t n, uint64_t *s, double *rate)
{
    pthread_barrier_t go;
    struct worker w[2];
    pthread_t th[2];
    int rc = 0;

    pthread_barrier_init(&go, NULL, 2);
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){b, &go, i, n, s + (size_t)i * n, 0};
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "budgetbench: cannot start a thread\n");
            exit(1); /* the other one waits at the barrier forever */
        }
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        rc |= w[i].rc;
    }
    uint64_t t1 = now_ns();
    pthread_barrier_destroy(&go);
    *rate = (double)(2 * (n + WARMUP / 2)) / ((double)(t1 - t0) / 1e9);
    return rc;
}

/* Times ledger_submit of n records into a new ledger at path. Returns 0 or -1. */
static int bench_ledger(const char *path, size_t n, uint64_t *s)
{
    char err[256], id[32];
    struct ledger *l;
    int rc = 0;

    l = ledger_open(path, LEDGER_SYNC_NORMAL, err, sizeof(err));
    if (l == NULL) {
        fprintf(stderr, "budgetbench: ledger: %s\n", err);
        return -1;
    }
    struct ledger_rec rec = {
        .id = id,
        .key_id = "key_0123456789ab",
        .agent = "a07",
        .team = "t3",
        .department = "d1",
        .endpoint = "/v1/chat/completions",
        .model = "gpt-4o-mini",
        .served_model = "gpt-4o-mini",
        .provider = "mock",
        .status = 200,
        .in_own = 1000,
        .out_own = 16,
        .in_usage = 1000,
        .out_usage = 16,
        .tokens_charged = 1016,
        .cost_nusd = 160,
        .reserved_tokens = 1074,
        .latency_us = 1500,
        .decision = "admitted",
    };
    for (size_t i = 0; i < n + WARMUP && rc == 0; i++) {
        /* the gate turns requests away past 32,768 waiting: keep well under, untimed */
        while (ledger_pending(l) > 16384)
            usleep(200);
        snprintf(id, sizeof(id), "req_%012zx", i);
        rec.ts = wall_now();
        uint64_t t0 = now_ns();
        rc = ledger_submit(l, &rec);
        uint64_t t1 = now_ns();
        if (i >= WARMUP)
            s[i - WARMUP] = t1 - t0;
    }
    ledger_close(l);
    if (ledger_failed(l) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "budgetbench: ledger_submit failed\n");
    return rc;
}

/* Removes the temporary directory and the ledger's files in it. */
static void remove_dir(const char *dir)
{
    static const char *const files[] = {"ledger.db", "ledger.db-wal", "ledger.db-shm",
                                        "ledger.db-journal"};
    char path[128];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    size_t n = 200000;
    int ledger = 1;
    static char yaml[32768];
    char err[512], dir[] = "/tmp/tg-budgetbench.XXXXXX", ledger_path[64];
    struct bench b = {0};
    uint64_t *s = NULL;
    double rate = 0;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            n = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-ledger") == 0) {
            ledger = 0;
        } else {
            fprintf(stderr, "usage: tokengate-budgetbench [--iterations N] [--no-ledger]\n");
            return 2;
        }
    }
    if (n < 1000 || n > 100000000) {
        fprintf(stderr, "budgetbench: --iterations is 1000 to 100000000\n");
        return 2;
    }
    if (mkdtemp(dir) == NULL) {
        perror("budgetbench: mkdtemp");
        return 1;
    }
    snprintf(ledger_path, sizeof(ledger_path), "%s/ledger.db", dir);
    if (make_yaml(yaml, sizeof(yaml), ledger_path) < 0) {
        fprintf(stderr, "budgetbench: the config does not fit its buffer\n");
        goto out;
    }
    b.conf = conf_load_string(yaml, strlen(yaml), "budgetbench.yaml", err, sizeof(err));
    if (b.conf == NULL) {
        fprintf(stderr, "budgetbench: config: %s\n", err);
        goto out;
    }
    b.price = &conf_find_model(b.conf, "gpt-4o-mini")->price;
    for (int a = 0; a < NAGENTS; a++) {
        char name[32];
        int depth = 0;
        snprintf(name, sizeof(name), "agent:a%02d", a);
        snprintf(b.keys[a], sizeof(b.keys[a]), "tg-bench-key-%02d", a);
        b.agents[a] = conf_find_scope(b.conf, name);
        for (int sc = b.agents[a]; sc >= 0; sc = b.conf->scopes[sc].parent)
            depth++;
        if (b.agents[a] < 0 || depth != 4) { /* org, department, team, agent */
            fprintf(stderr, "budgetbench: agent a%02d is not 4 levels deep\n", a);
            goto out;
        }
    }
    b.book = budget_book_new(b.conf, NULL, wall_now(), err, sizeof(err));
    if (b.book == NULL) {
        fprintf(stderr, "budgetbench: book: %s\n", err);
        goto out;
    }
    s = malloc(2 * n * sizeof(*s));
    if (s == NULL) {
        fprintf(stderr, "budgetbench: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        s[i] = now_ns() - t0;
    }
    qsort(s, n, sizeof(*s), cmp_u64);
    b.overhead = quantile(s, n, 0.5);

    printf("| operation | calls | p50 us | p99 us | p99.9 us | mean us | max us |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    static const struct {
        const char *name;
        enum op op;
    } ops[] = {
        {"authenticate (SHA-256 + lookup)", OP_AUTH},
        {"reserve + settle (4 levels)", OP_RESERVE},
        {"budget path (authenticate + reserve + settle)", OP_PATH},
    };
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        if (run(&b, ops[k].op, 0, 1, WARMUP, NULL) < 0 || run(&b, ops[k].op, 0, 1, n, s) < 0) {
            fprintf(stderr, "budgetbench: %s failed\n", ops[k].name);
            goto out;
        }
        report(ops[k].name, s, n, b.overhead);
    }
    if (run_threads(&b, n, s, &rate) < 0) {
        fprintf(stderr, "budgetbench: the 2-thread run failed\n");
        goto out;
    }
    report("budget path, 2 threads at once", s, 2 * n, b.overhead);
    if (ledger) {
        if (bench_ledger(ledger_path, n, s) < 0)
            goto out;
        report("ledger_submit (caller's side)", s, n, b.overhead);
    }
    printf("\nTimer overhead subtracted from every sample: %.3f us (median of two "
           "clock_gettime(CLOCK_MONOTONIC) calls back to back). 2 threads together: %.0f budget "
           "paths/s. Reservations left: %lld tokens.\n",
           b.overhead / 1e3, rate, (long long)budget_reserved_total(b.book));
    rc = 0;
out:
    free(s);
    budget_book_free(b.book);
    if (b.conf != NULL)
        conf_unref(b.conf);
    remove_dir(dir);
    return rc;
}
