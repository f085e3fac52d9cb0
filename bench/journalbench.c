/*
 * journalbench: what the crash journal (gate/budget/journal.c) costs a request. Times journal_put (on
 * the request's path, before it is forwarded) and journal_clear (on the ledger's thread, after
 * the commit) one call at a time, with a realistic entry, and prints p50, p99 and p99.9 in
 * nanoseconds: with ledger.sync: normal (a copy into the shared mapping) and with
 * ledger.sync: full (the slot's page msync'ed too). The journal and its ledger go in DIR (the
 * disk that would hold the state directory), default /tmp.
 *
 *   tokengate-journalbench [DIR] [ITERATIONS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "gate/budget/journal.h"
#include "gate/budget/ledger.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n)
{
    qsort(t, (size_t)n, sizeof(*t), cmp);
    printf("| %s | %d | %.0f | %.0f | %.0f |\n", what, n, t[n / 2] * 1e9, t[n * 99 / 100] * 1e9,
           t[n * 999 / 1000] * 1e9);
}

static int run(const char *dir, int sync_full, int n, int inflight)
{
    char db[4096], jp[4200], err[512];
    struct ledger *l;
    struct journal *j;
    double *put = malloc(sizeof(double) * (size_t)n), *clr = malloc(sizeof(double) * (size_t)n);
    uint32_t *slots = calloc((size_t)inflight, sizeof(uint32_t));
    int recovered;

    snprintf(db, sizeof(db), "%s/journalbench-%d.db", dir, (int)getpid());
    snprintf(jp, sizeof(jp), "%s.inflight", db);
    l = ledger_open(db, sync_full ? LEDGER_SYNC_FULL : LEDGER_SYNC_NORMAL, err, sizeof(err));
    if (l == NULL || put == NULL || clr == NULL || slots == NULL) {
        fprintf(stderr, "journalbench: %s\n", l == NULL ? err : "out of memory");
        return -1;
    }
    j = journal_open(jp, 1, sync_full, l, &recovered, err, sizeof(err));
    if (j == NULL) {
        fprintf(stderr, "journalbench: %s\n", err);
        return -1;
    }
    struct journal_entry e = {
        .id = "req_0f1e2d3c4b5a69788796a5b4",
        .key_id = "key_0123456789ab",
        .agent = "crawler",
        .team = "search",
        .department = "research",
        .endpoint = "/v1/chat/completions",
        .model = "gpt-4o-mini",
        .served_model = "gpt-4o-mini",
        .provider = "openai",
        .stream = 1,
        .in_own = 1234,
        .tokens = 5330,
        .nusd = 2385000,
    };
    /* a steady state of `inflight` requests under way: each put replaces the oldest */
    for (int i = 0; i < n; i++) {
        int k = i % inflight;
        double t0, t1, t2;
        e.ts = 1.7e9 + i;
        t0 = bench_now();
        if (slots[k] != 0)
            journal_clear(j, slots[k]);
        t1 = bench_now();
        slots[k] = journal_put(j, 0, &e);
        t2 = bench_now();
        if (slots[k] == 0) {
            fprintf(stderr, "journalbench: the journal is full\n");
            return -1;
        }
        clr[i] = t1 - t0;
        put[i] = t2 - t1;
    }
    char what[96];
    snprintf(what, sizeof(what), "journal_put, sync: %s, %d in flight",
             sync_full ? "full" : "normal", inflight);
    report(what, put, n);
    snprintf(what, sizeof(what), "journal_clear, sync: %s", sync_full ? "full" : "normal");
    report(what, clr, n);
    journal_close(j);
    ledger_close(l);
    unlink(jp);
    unlink(db);
    free(put);
    free(clr);
    free(slots);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int n = argc > 2 ? atoi(argv[2]) : 1000000;

    if (n < 1000)
        n = 1000;
    printf("| operation | calls | p50 ns | p99 ns | p99.9 ns |\n|---|---:|---:|---:|---:|\n");
    if (run(dir, 0, n, 64) < 0 || run(dir, 0, n, 2048) < 0 || run(dir, 1, n / 100, 64) < 0)
        return 1;
    return 0;
}
