/*
 * Unit tests for the backtracking merge (tokenizer/tokmerge.c, tok_merge_bt) against tiktoken's
 * merge: the tokenizer's reference merges (tok_merge_ref_small, tok_merge_ref_large) and a plain
 * byte-level merge written here (from single bytes, the lowest-ranked pair, the leftmost on a
 * tie), in every encoding, on every piece of the benchmark corpus (TG_CORPUS, set by
 * tests/meson.build), on every token's own bytes, and on generated worst cases a megabyte
 * long; and the short pieces' merge (tokshort-int.h: short_merge on ASCII, short_merge_any on the
 * rest) on every piece of up to SHORT_MERGE_MAX bytes of those. Any difference fails, printing
 * the piece.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tok-int.h"
#include "tokenizer/tokshort-int.h"
#include "tokenizer/utf8.h"
#include "run_suite.h"

/* every encoding: p50k_base's and r50k_base's tables pass tok_merge_build's check as well, so
 * their long pieces backtrack too */
static const char *const fast_encodings[] = {"cl100k_base", "o200k_base", "p50k_base",
                                             "r50k_base"};
#define NFAST (sizeof(fast_encodings) / sizeof(fast_encodings[0]))

/* tiktoken's merge from single bytes, on the n bytes at p (n <= SMALL_PIECE): the pair of lowest
 * rank merges, the leftmost on a tie, until no pair is a token. */
static size_t plain_merge(const tok_enc *e, const uint8_t *p, size_t n, uint32_t *tok)
{
    size_t start[SMALL_PIECE + 1], m = n;
    uint32_t pair[SMALL_PIECE]; /* the rank of parts i and i + 1 together */

    for (size_t i = 0; i <= n; i++)
        start[i] = i;
    for (size_t i = 0; i + 1 < n; i++)
        pair[i] = rank_of(e, p + i, 2);
    for (;;) {
        uint32_t best = NO_RANK;
        size_t at = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (pair[i] < best) {
                best = pair[i];
                at = i;
            }
        if (best == NO_RANK)
            break;
        memmove(&start[at + 1], &start[at + 2], (m - at - 1) * sizeof(size_t));
        if (at + 2 < m)
            memmove(&pair[at + 1], &pair[at + 2], (m - at - 2) * sizeof(uint32_t));
        m--;
        if (at + 1 < m)
            pair[at] = rank_of(e, p + start[at], start[at + 2] - start[at]);
        if (at > 0)
            pair[at - 1] = rank_of(e, p + start[at - 1], start[at + 1] - start[at - 1]);
    }
    for (size_t i = 0; i < m; i++)
        tok[i] = rank_of(e, p + start[i], start[i + 1] - start[i]);
    return m;
}

/* The piece, escaped, for a failure message. */
static const char *show(const uint8_t *p, size_t n)
{
    static char buf[4 * 300 + 16];
    size_t o = 0;

    for (size_t i = 0; i < n && i < 300; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o,
                              p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' ? "%c" : "\\x%02x", p[i]);
    if (n > 300)
        snprintf(buf + o, sizeof(buf) - o, "...");
    return buf;
}

/* The backtracking merge's ids of the n bytes at p, in a new array; its count in *m. */
static uint32_t *bt_ids(const tok_enc *e, const uint8_t *p, size_t n, size_t *m)
{
    uint32_t *tok = malloc(n * sizeof(uint32_t));
    uint64_t *dead = calloc(n / 64 + 1, sizeof(uint64_t));

    ck_assert(tok != NULL && dead != NULL);
    *m = tok_merge_bt(e, p, n, tok, dead);
    free(dead);
    return tok;
}

static size_t short_merges; /* pieces the short merge was checked on */

static int ascii(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return 0;
    return 1;
}

/* Checks one piece (n > 1) of encoding e against both references (one for a long piece), and a
 * piece of up to SHORT_MERGE_MAX bytes the short merge's ids too. */
static void check_piece(const tok_enc *e, const uint8_t *p, size_t n)
{
    size_t m, mr;
    uint32_t *got = bt_ids(e, p, n, &m), want[SMALL_PIECE], plain[SMALL_PIECE];

    if (n <= SMALL_PIECE) {
        mr = tok_merge_ref_small(e, p, n, want);
        ck_assert_msg(m == mr && memcmp(got, want, m * sizeof(uint32_t)) == 0,
                      "%s: %zu ids, the reference %zu (first %u, %u), piece \"%s\"", tok_name(e),
                      m, mr, m ? got[0] : 0, want[0], show(p, n));
        if (n <= SHORT_MERGE_MAX) {
            size_t ms = ascii(p, n) ? short_merge(e, p, n, plain) : short_merge_any(e, p, n, plain, 0);
            ck_assert_msg(ms == mr && memcmp(plain, want, mr * sizeof(uint32_t)) == 0,
                          "%s: short merge %zu ids, the reference %zu (first %u, %u), piece "
                          "\"%s\"", tok_name(e), ms, mr, plain[0], want[0], show(p, n));
            short_merges++;
        }
        mr = plain_merge(e, p, n, plain);
        ck_assert_msg(m == mr && memcmp(got, plain, m * sizeof(uint32_t)) == 0,
                      "%s: %zu ids, the byte-level merge %zu, piece \"%s\"", tok_name(e), m, mr,
                      show(p, n));
    } else {
        tok_ids ids = {0};
        sink k = {&ids, 0, 0};
        ck_assert_int_eq(tok_merge_ref_large(e, p, n, &k), 0);
        ck_assert_msg(m == ids.n && memcmp(got, ids.v, m * sizeof(uint32_t)) == 0,
                      "%s: %zu ids, the reference %zu, piece of %zu bytes \"%s\"", tok_name(e), m,
                      ids.n, n, show(p, n));
        tok_ids_free(&ids);
    }
    free(got);
}

START_TEST(tables_built)
{
    for (size_t k = 0; k < NFAST; k++) {
        const tok_enc *e = tok_encoding(fast_encodings[k]);
        ck_assert_ptr_nonnull(e);
        /* built on first need, not with the rank tables */
        ck_assert_int_eq(__atomic_load_n(&e->bt_state, __ATOMIC_ACQUIRE), 0);
        ck_assert_ptr_null(e->bt_tree);
        tok_prepare_long(e);
        ck_assert_msg(e->bt_tree != NULL && e->bt_state == 1, "%s has no backtracking tables",
                      fast_encodings[k]);
        tok_prepare_long(e); /* again: nothing changes */
        ck_assert_int_eq(e->bt_state, 1);
    }
}
END_TEST

/* Every token's bytes give that token alone, and the reference agrees. */
START_TEST(every_token_merges_into_itself)
{
    for (size_t k = 0; k < NFAST; k++) {
        const tok_enc *e = tok_encoding(fast_encodings[k]);
        for (uint32_t r = 0; r < e->nranks; r++) {
            const uint8_t *t = e->bytes + e->offs[r];
            size_t m, len = e->lens[r];
            uint32_t *got;
            if (len < 2)
                continue;
            got = bt_ids(e, t, len, &m);
            ck_assert_msg(m == 1 && got[0] == r, "%s: token %u \"%s\" gives %zu ids", tok_name(e),
                          r, show(t, len), m);
            free(got);
            check_piece(e, t, len);
        }
    }
}
END_TEST

/* Every piece of every corpus file, through the pre-tokenizer, for both encodings. */
START_TEST(corpus_pieces)
{
    const char *dir = getenv("TG_CORPUS");
    struct dirent *de;
    size_t files = 0, pieces[NFAST] = {0};
    DIR *d;

    ck_assert_msg(dir != NULL, "TG_CORPUS is not set (tests/meson.build sets it)");
    d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open the corpus %s", dir);
    while ((de = readdir(d)) != NULL) {
        char path[1024];
        size_t len = strlen(de->d_name), n;
        uint8_t *s;
        FILE *f;
        long size;
        if (len < 5 || strcmp(de->d_name + len - 4, ".txt") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        rewind(f);
        s = malloc((size_t)size + 1);
        ck_assert_ptr_nonnull(s);
        n = fread(s, 1, (size_t)size, f);
        fclose(f);
        ck_assert_msg(utf8_valid((const char *)s, n), "%s is not well-formed UTF-8", path);
        for (size_t k = 0; k < NFAST; k++) {
            const tok_enc *e = tok_encoding(fast_encodings[k]);
            for (size_t i = 0; i < n;) {
                size_t j = pretok_next(e->pat, s, i, n);
                if (j - i > 1) {
                    check_piece(e, s + i, j - i);
                    pieces[k]++;
                }
                i = j;
            }
        }
        files++;
        free(s);
    }
    closedir(d);
    ck_assert_msg(files >= 4, "only %zu corpus files in %s", files, dir);
    for (size_t k = 0; k < NFAST; k++)
        printf("test_merge: %s: %zu pieces of %zu corpus files identical\n", fast_encodings[k],
               pieces[k], files);
    printf("test_merge: the short merge identical so far on %zu pieces\n", short_merges);
    ck_assert_uint_gt(short_merges, 1000000);
}
END_TEST

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* A megabyte made by fill(i), checked as one piece against the reference, in both encodings;
 * the backtracking merge must take well under the generous bound of 20 s. */
static void check_worst(const char *label, const uint8_t *s, size_t n)
{
    for (size_t k = 0; k < NFAST; k++) {
        const tok_enc *e = tok_encoding(fast_encodings[k]);
        struct timespec t0, t1;
        size_t m;
        uint32_t *got;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        got = bt_ids(e, s, n, &m);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        free(got);
        ck_assert_msg(m > 0, "%s, %s: no result", label, fast_encodings[k]);
        check_piece(e, s, n);
        printf("test_merge: %s, %s: %zu bytes in %.1f ms\n", label, fast_encodings[k], n,
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        ck_assert_msg(t1.tv_sec - t0.tv_sec < 20, "%s: %s took over 20 s", label,
                      fast_encodings[k]);
    }
}

#define WORST (1u << 20)

START_TEST(worst_cases)
{
    uint8_t *s = malloc(WORST * 3), *raw = malloc(WORST);
    size_t n;

    ck_assert(s != NULL && raw != NULL);
    memset(s, 'a', WORST);
    check_worst("one letter", s, WORST);
    for (size_t i = 0; i < WORST; i++)
        s[i] = (uint8_t)('0' + i % 7 % 10);
    check_worst("digits", s, WORST);
    for (n = 0; n + 3 <= WORST;) { /* CJK without spaces: U+4E00..U+9FFF */
        uint32_t cp = 0x4e00 + next_rand() % 0x5200;
        s[n++] = (uint8_t)(0xe0 | cp >> 12);
        s[n++] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        s[n++] = (uint8_t)(0x80 | (cp & 0x3f));
    }
    check_worst("CJK", s, n);
    for (size_t i = 0; i < WORST; i++)
        raw[i] = (uint8_t)next_rand();
    n = utf8_clean_len((const char *)raw, WORST, (char *)s);
    check_worst("random bytes made well-formed", s, n);
    for (size_t i = 0; i < WORST; i++)
        s[i] = "ab "[next_rand() % 3 == 0 ? 2 : i % 2];
    check_worst("ab and spaces", s, WORST);
    free(s);
    free(raw);
}
END_TEST

/* Short random pieces over a small alphabet, where ties and overlapping merges are frequent. */
START_TEST(random_small_pieces)
{
    static const char *const alpha[] = {"a", "b", " ", "e", "\xc3\xa9", "\xe4\xb8\x80", "1",
                                        "\n", "=", "\xf0\x9f\x98\x80", "\xd0\xb8", "'"};
    uint8_t s[SMALL_PIECE];

    for (int round = 0; round < 200000; round++) {
        size_t n = 0, want = 2 + next_rand() % 40;
        while (n < want) {
            const char *a = alpha[next_rand() % (sizeof(alpha) / sizeof(alpha[0]))];
            size_t l = strlen(a);
            if (n + l > want)
                break;
            memcpy(s + n, a, l);
            n += l;
        }
        if (n > 1)
            for (size_t k = 0; k < NFAST; k++)
                check_piece(tok_encoding(fast_encodings[k]), s, n);
    }
}
END_TEST

static Suite *merge_suite(void)
{
    Suite *s = suite_create("merge");
    TCase *t = tcase_create("core");

    tcase_set_timeout(t, 600);
    tcase_add_test(t, tables_built);
    tcase_add_test(t, every_token_merges_into_itself);
    tcase_add_test(t, random_small_pieces);
    tcase_add_test(t, worst_cases);
    tcase_add_test(t, corpus_pieces);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return run_suite(merge_suite());
}
