/*
 * ledger_fill PATH: writes five known request records to the ledger at PATH through the ledger
 * module itself, for the end-to-end test of `tokengate logs` (tests/integration/logs-cli.test.mjs,
 * which holds the same values). Two are at fixed times in January 2026, three at ages from now
 * (30 s, 3 h, 2 days), for --since and --until with ages.
 *
 * ledger_fill PATH --hostile: writes instead one record whose text fields hold what a client
 * could send (terminal escapes, line breaks, C1 controls, a bidi override, bytes that are not
 * UTF-8, spreadsheet formulas), for the test that the CSV and table output escape them.
 *
 * ledger_fill PATH --schema3: the five records, then the ledger taken back to schema 3 (the
 * cache and savings columns dropped), as a gate before issue 13 left it.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gate/budget/ledger.h"

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
         .decision = "admitted",
         .rule = "chit-chat",
         .tier = "cheap",
         .attempts = "[{\"target\":\"gpt-4o-mini\",\"reason\":\"status 503\",\"status\":503}]",
         .translation = "openai.chat->anthropic.messages",
         .cache = "miss",
         .prompt_saved_nusd = 2700,
         .route_saved_nusd = 45000},
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
         .error = "upstream said \"no\", then closed",
         .rule = "code",
         .tier = "expensive",
         .cache = "bypass"},
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
         .decision = "admitted",
         .cache = "hit",
         .saved_tokens = 32,
         .saved_nusd = 777000},
    };

    struct ledger_rec hostile = {
        .ts = now - 10,
        .id = "h1",
        .agent = "-2+3",
        .team = "@SUM(A1)",
        .department = "eng",
        .endpoint = "/v1/chat/completions",
        .model = "gpt-4.1\x1b[31mred\x1b[0m\r\nfake,row\x7f",
        .served_model = "+1\xc2\x9b"
                        "2J\xe2\x80\xae"
                        "evil",
        .provider = "openai\x9b\xff",
        .status = 200,
        .in_own = 1,
        .out_own = 1,
        .in_usage = 1,
        .out_usage = 1,
        .tokens_charged = 2,
        .decision = "admitted",
        .error = "=cmd|' /C calc'!A0\x07\t\"q\"",
    };
    int n = (int)(sizeof(recs) / sizeof(recs[0]));
    int schema3 = argc == 3 && strcmp(argv[2], "--schema3") == 0;

    if (schema3) {
        /* the five records */
    } else if (argc == 3 && strcmp(argv[2], "--hostile") == 0) {
        recs[0] = hostile;
        n = 1;
    } else if (argc != 2) {
        fprintf(stderr, "usage: ledger_fill PATH [--hostile | --schema3]\n");
        return 2;
    }
    l = ledger_open(argv[1], LEDGER_SYNC_NORMAL, err, sizeof(err));
    if (l == NULL) {
        fprintf(stderr, "ledger_fill: %s\n", err);
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (ledger_submit(l, &recs[i]) != 0) {
            fprintf(stderr, "ledger_fill: submit failed\n");
            ledger_close(l);
            return 1;
        }
    ledger_close(l);
    if (schema3) {
        sqlite3 *db;
        static const char sql[] = "ALTER TABLE requests DROP COLUMN cache;"
                                  "ALTER TABLE requests DROP COLUMN saved_tokens;"
                                  "ALTER TABLE requests DROP COLUMN saved_nusd;"
                                  "ALTER TABLE requests DROP COLUMN prompt_saved_nusd;"
                                  "ALTER TABLE requests DROP COLUMN route_saved_nusd;"
                                  "ALTER TABLE requests DROP COLUMN cache_write_1h;"
                                  "PRAGMA user_version = 3;";
        if (sqlite3_open(argv[1], &db) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            fprintf(stderr, "ledger_fill: to schema 3: %s\n", sqlite3_errmsg(db));
            sqlite3_close(db);
            return 1;
        }
        sqlite3_close(db);
    }
    return 0;
}
