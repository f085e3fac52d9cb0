/*
 * Unit tests for gate/journal: a slot put and left live is recovered at the next open as an
 * unsettled record charged at the reservation; one whose record is in the ledger is only
 * cleared; a cleared slot leaves nothing; a worker's range that is full says so; a second open
 * of a journal in use fails. What landed is checked with SQLite directly.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate/budget/journal.h"
#include "gate/budget/ledger.h"
#include "run_suite.h"
#include "tmpdb.h"

static char jpath[400];

static void setup(void)
{
    tmpdb_make("journal");
    snprintf(jpath, sizeof(jpath), "%s.inflight", tmpdb_path);
}

static void teardown(void)
{
    unlink(jpath);
    tmpdb_remove();
}

static struct ledger *open_ledger(void)
{
    char err[512] = "";
    struct ledger *l = ledger_open(tmpdb_path, LEDGER_SYNC_NORMAL, err, sizeof(err));

    ck_assert_msg(l != NULL, "ledger_open: %s", err);
    return l;
}

static struct journal *open_journal(struct ledger *l, int *recovered)
{
    char err[512] = "";
    struct journal *j = journal_open(jpath, 2, 0, l, recovered, err, sizeof(err));

    ck_assert_msg(j != NULL, "journal_open: %s", err);
    return j;
}

static struct journal_entry entry(const char *id, double ts)
{
    return (struct journal_entry){.ts = ts,
                                  .id = id,
                                  .agent = "crawler",
                                  .team = "search",
                                  .department = "research",
                                  .endpoint = "/v1/chat/completions",
                                  .model = "gpt-4o-mini",
                                  .served_model = "gpt-4o-mini",
                                  .provider = "openai",
                                  .stream = 1,
                                  .in_own = 40,
                                  .tokens = 1040,
                                  .nusd = 123456};
}

START_TEST(live_slots_are_recovered_once)
{
    struct ledger *l = open_ledger();
    int rec = -1;
    struct journal *j = open_journal(l, &rec);
    struct journal_entry a = entry("a", 1000.25), b = entry("b", 1001.5), c = entry("c", 1002);

    ck_assert_int_eq(rec, 0);
    ck_assert_uint_ne(journal_put(j, 0, &a), 0);
    uint32_t sb = journal_put(j, 1, &b);
    uint32_t sc = journal_put(j, 1, &c);
    ck_assert_uint_ne(sb, 0);
    ck_assert_uint_ne(sc, sb);
    ck_assert_uint_eq(journal_live(j), 3);
    journal_clear(j, sc); /* c settled and committed */
    ck_assert_uint_eq(journal_live(j), 2);
    /* b's record made it to the ledger before the crash, its slot was not cleared yet */
    struct ledger_rec r = {.ts = 1001.5,
                           .id = "b",
                           .agent = "crawler",
                           .status = 200,
                           .in_own = -1,
                           .out_own = -1,
                           .in_usage = 10,
                           .out_usage = 5,
                           .tokens_charged = 15,
                           .cost_nusd = 7,
                           .decision = "admitted"};
    ck_assert_int_eq(ledger_insert_now(l, &r), 0);
    /* the crash: the mapping is left as it is */
    journal_close(j);
    ledger_close(l);

    l = open_ledger();
    j = open_journal(l, &rec);
    ck_assert_int_eq(rec, 1);
    ck_assert_uint_eq(journal_live(j), 0);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(*) FROM requests"), 2);
    ck_assert_int_eq(tmpdb_query_int("SELECT tokens_charged FROM requests WHERE id = 'a' AND "
                               "decision = 'unsettled' AND agent = 'crawler' AND team = 'search' "
                               "AND department = 'research' AND stream = 1 AND in_own = 40 AND "
                               "key_id IS NULL AND ts = 1000.25"),
                     1040);
    ck_assert_int_eq(tmpdb_query_int("SELECT cost_nusd FROM requests WHERE id = 'a'"), 123456);
    ck_assert_int_eq(tmpdb_query_int("SELECT reserved_tokens FROM requests WHERE id = 'a'"), 1040);
    ck_assert_int_eq(tmpdb_query_int("SELECT tokens_charged FROM requests WHERE id = 'b'"), 15);
    journal_close(j);
    ledger_close(l);

    /* and a third start finds nothing left */
    l = open_ledger();
    j = open_journal(l, &rec);
    ck_assert_int_eq(rec, 0);
    ck_assert_int_eq(tmpdb_query_int("SELECT COUNT(*) FROM requests"), 2);
    journal_close(j);
    ledger_close(l);
}
END_TEST

START_TEST(a_full_range_says_so)
{
    struct ledger *l = open_ledger();
    int rec;
    struct journal *j = open_journal(l, &rec);
    struct journal_entry e = entry("x", 1);
    uint32_t first = 0;

    for (int i = 0; i < JOURNAL_SLOTS_PER_WORKER; i++) {
        uint32_t s = journal_put(j, 0, &e);
        ck_assert_uint_ne(s, 0);
        if (i == 0)
            first = s;
    }
    ck_assert_uint_eq(journal_put(j, 0, &e), 0);
    ck_assert_uint_ne(journal_put(j, 1, &e), 0); /* the other worker's range is its own */
    journal_clear(j, first);
    ck_assert_uint_eq(journal_put(j, 0, &e), first);
    journal_close(j);
    ledger_close(l);
}
END_TEST

START_TEST(a_journal_in_use_is_refused)
{
    struct ledger *l = open_ledger();
    int rec;
    struct journal *j = open_journal(l, &rec);
    char err[512] = "";

    ck_assert_ptr_null(journal_open(jpath, 2, 0, l, &rec, err, sizeof(err)));
    ck_assert_msg(strstr(err, "in use") != NULL, "%s", err);
    journal_close(j);
    ledger_close(l);
}
END_TEST

static Suite *journal_suite(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("journal");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, live_slots_are_recovered_once);
    tcase_add_test(tc, a_full_range_says_so);
    tcase_add_test(tc, a_journal_in_use_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(journal_suite());
}
