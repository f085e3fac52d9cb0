/* Unit tests for gate/util/wordscan.h: one pass gives what memmem gives for each word. */
#define _GNU_SOURCE /* memmem, the reference */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gate/util/wordscan.h"
#include "randtext.h"
#include "run_suite.h"

static const char *const media[] = {"image", "file", "audio", "document"};

static int by_memmem(const char *s, size_t n, const char *const *w, int nw)
{
    for (int i = 0; i < nw; i++)
        if (memmem(s, n, w[i], strlen(w[i])) != NULL)
            return 1;
    return 0;
}

START_TEST(words_anywhere_are_found)
{
    char buf[64];

    /* each word at every place of a 40-byte text, its end at the text's end included */
    for (int w = 0; w < 4; w++) {
        size_t len = strlen(media[w]);
        for (size_t at = 0; at + len <= 40; at++) {
            memset(buf, 'x', 40);
            memcpy(buf + at, media[w], len);
            ck_assert_msg(wordscan_any(buf, 40, media, 4), "%s at %zu", media[w], at);
            /* cut one byte short of its end: not there */
            ck_assert_msg(!wordscan_any(buf, at + len - 1, media, 4), "%s cut at %zu", media[w],
                          at);
        }
    }
    ck_assert(!wordscan_any("", 0, media, 4));
    ck_assert(!wordscan_any("fil imag audi documen do im fi au", 33, media, 4));
}
END_TEST

START_TEST(the_same_as_memmem_on_random_texts)
{
    /* texts of the words' letters, so that near misses are common */
    static const char alphabet[] = "imagefloudcnt \"";
    char s[300];
    unsigned seed = 7, found = 0;

    for (int t = 0; t < 100000; t++) {
        size_t n = rand_text(s, 255, alphabet, sizeof(alphabet) - 1, &seed);
        int want = by_memmem(s, n, media, 4);
        found += (unsigned)want;
        ck_assert_msg(wordscan_any(s, n, media, 4) == want, "%.*s: want %d", (int)n, s, want);
    }
    ck_assert_uint_gt(found, 200); /* both answers are seen (272 texts of 100,000 hold a word) */
}
END_TEST

START_TEST(more_words_than_one_pass_takes)
{
    static const char *const many[] = {"aa", "bb", "cc", "dd", "ee", "ff", "gg", "hh", "ii", "zz"};

    ck_assert(wordscan_any("xxxxxxxxxxxxxxxxxxxxzz", 22, many, 10));
    ck_assert(!wordscan_any("xyzxyzxyzxyzxyzxyzxyz", 21, many, 10));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wordscan");
    TCase *tc = tcase_create("wordscan");

    tcase_add_test(tc, words_anywhere_are_found);
    tcase_add_test(tc, the_same_as_memmem_on_random_texts);
    tcase_add_test(tc, more_words_than_one_pass_takes);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
