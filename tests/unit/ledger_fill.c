/*
 * ledger_fill PATH: writes five known request records to the ledger at PATH through the ledger
 * module itself, for the end-to-end test of `tokengate logs` (tests/integration/logs-cli.test.mjs,
 * which holds the same values). Two are at fixed times in January 2026, three at ages from now
 * (30 s, 3 h, 2 days), for --since and --until with ages.
 */
#include <stdio.h>
#include <time.h>

#include "gate/ledger.h"

int main(int argc, char **argv)
{
    char err[512];
    struct ledger *l;
    double now = (double)time(NULL);
    struct ledger_rec recs[] = {
        {.ts = 1768032000.25, /* 2026-01-10T08:00:00.250Z */
         .id = "r1",
         .key_id = "key_0123456789ab",
         .agent = "alice",
         .team = "search",
         .department = "eng",
         .endpoint = "/v1/chat/completions",
         .model = "gpt-4.1",
         .served_model = "gpt-4.1-2025-04-14",
         .provider = "openai",
         .status = 200,
         .in_own = 1190,
         .out_own = 298,
         .in_usage = 1200,
         .out_usage = 300,
         .cached = 1024,
         .tokens_charged = 1500,
         .cost_nusd = 123000,
         .reserved_tokens = 2000,
         .latency_us = 250400,
         .decision = "admitted"},
        {.ts = 1768123800, /* 2026-01-11T09:30:00Z */
         .id = "r2",
         .agent = "bob",
         .team = "ads",
         .department = "sales",
         .endpoint = "/v1/messages",
         .model = "claude-haiku-4-5",
         .provider = "anthropic",
         .status = 429,
         .in_own = 50,
         .out_own = -1,
         .in_usage = -1,
         .out_usage = -1,
         .decision = "rejected",
         .error = "budget exceeded"},
        {.ts = now - 30,
         .id = "r3",
         .agent = "alice",
         .team = "search",
         .department = "eng",
         .endpoint = "/v1/chat/completions",
         .model = "gpt-4.1-mini",
         .served_model = "gpt-4.1-mini",
         .provider = "openai",
         .status = 502,
         .stream = 1,
         .in_own = 42,
         .out_own = 7,
         .in_usage = -1,
         .out_usage = -1,
         .tokens_charged = 49,
         .latency_us = 1999,
         .decision = "error",
         .error = "upstream said \"no\", then closed"},
        {.ts = now - 3 * 3600,
         .id = "r4",
         .status = 401,
         .in_own = -1,
         .out_own = -1,
         .in_usage = -1,
         .out_usage = -1,
         .decision = "unauthenticated"},
        {.ts = now - 2 * 86400,
         .id = "r5",
         .agent = "carol",
         .team = "search",
         .department = "eng",
         .endpoint = "/v1/chat/completions",
         .model = "gpt-4.1",
         .served_model = "gpt-4.1-2025-04-14",
         .provider = "openai",
         .status = 200,
         .in_own = 10,
         .out_own = 20,
         .in_usage = 11,
         .out_usage = 21,
         .tokens_charged = 32,
         .cost_nusd = 1500000000,
         .latency_us = 1000000,
         .decision = "admitted"},
    };

    if (argc != 2) {
        fprintf(stderr, "usage: ledger_fill PATH\n");
        return 2;
    }
    l = ledger_open(argv[1], LEDGER_SYNC_NORMAL, err, sizeof(err));
    if (l == NULL) {
        fprintf(stderr, "ledger_fill: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        if (ledger_submit(l, &recs[i]) != 0) {
            fprintf(stderr, "ledger_fill: submit failed\n");
            ledger_close(l);
            return 1;
        }
    ledger_close(l);
    return 0;
}
