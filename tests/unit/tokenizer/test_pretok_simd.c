/*
 * Unit tests for tokenizer/pretok_simd.h: the block pre-tokenizer finds exactly the scalar
 * scanner's pieces (pretok_next), piece by piece, on the benchmark corpus (TG_CORPUS, set by
 * tests/meson.build to ../shared/corpus from the source root), on generated text and on the
 * edge cases of its 64-byte windows, for every pattern (cl100k and o200k have start masks,
 * r50k goes to the scalar scanner whole). The start masks are also checked on their own at every
 * piece's start, and the classifiers at every alignment of the window to the text. Any
 * difference fails with the offset and the bytes.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok_simd.h"
#include "tokenizer/pretok_simd-int.h"
#include "tokenizer/utf8.h"
#include "run_suite.h"

static const pretok_pattern patterns[] = {PRETOK_CL100K, PRETOK_O200K, PRETOK_R50K};

/*
 * Compares the two pre-tokenizers over the n bytes at s, the block one asked for cap pieces at
 * a time. Returns -1 when they agree, else the offset where the first differing piece starts
 * (its two ends in *want and *got).
 */
static long first_difference(pretok_pattern pat, const uint8_t *s, size_t n, size_t cap,
                             size_t *want, size_t *got, pretok_simd_stats *st)
{
    size_t ends[256], i = 0;

    while (i < n) {
        size_t m = pretok_simd_pieces(pat, s, i, n, ends, cap, st);
        if (m == 0) {
            *want = pretok_next(pat, s, i, n);
            *got = i;
            return (long)i;
        }
        for (size_t k = 0; k < m; k++) {
            size_t j = pretok_next(pat, s, i, n);
            if (ends[k] != j) {
                *want = j;
                *got = ends[k];
                return (long)i;
            }
            i = j;
        }
    }
    return -1;
}

/* Up to 24 bytes of s from offset at, escaped, as a string in out. */
static const char *show(const uint8_t *s, size_t n, size_t at, char out[static 300])
{
    size_t o = 0;

    for (size_t i = at; i < n && i < at + 64; i++)
        o += (size_t)snprintf(out + o, 300 - o,
                              s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' ? "%c" : "\\x%02x", s[i]);
    out[o] = 0;
    return out;
}

/* Checks every pattern and a few batch sizes; the message names the text's label. (The hot
 * checks here and below call check only on a failure: every ck_assert marks a point through a
 * system call.) */
static void check_same(const char *label, const uint8_t *s, size_t n)
{
    static const size_t caps[] = {1, 3, 256};

    for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++)
        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
            size_t want = 0, got = 0;
            char bytes[300] = "";
            long at = first_difference(patterns[p], s, n, caps[c], &want, &got, NULL);
            if (!(at < 0))
                ck_abort_msg(
                    "%s (%zu bytes), pattern %d, cap %zu: piece at offset %ld ends at %zu, "
                    "scalar at %zu; bytes there: \"%s\"",
                    label, n, (int)patterns[p], caps[c], at, got, want,
                    at < 0 ? bytes : show(s, n, (size_t)at, bytes));
        }
}

/*
 * Checks the windows over the n bytes at s (n <= 4096): each window, at every alignment, is
 * classified by SSE2 (and, in a build for AVX2, by AVX2 where the CPU has it, which must give the
 * same masks); a window at a piece's start (of the scalar scanner) has its start mask
 * (starts_cl100k, starts_o200k) checked: it must be bit 0 and exactly the scalar starts below
 * window_limit(). The bytes each such window decided (up to its mask's highest bit) are added
 * to masked[2 * p] and the windows to masked[2 * p + 1] (p 0 for cl100k, 1 for o200k).
 */
static void check_masks(const char *label, const uint8_t *s, size_t n, size_t masked[4])
{
    static const pretok_pattern pats[] = {PRETOK_CL100K, PRETOK_O200K};
    static size_t starts[4097];

    ck_assert(n < sizeof(starts) / sizeof(starts[0]));
    for (size_t p = 0; p < 2; p++) {
        size_t np = 0, first = 0, next_hop = 0;
        /* what the windows before classified outside ASCII (window_decide_hi_memo): carried from
         * every piece start's window to the next, and along the block encoder's windows (each
         * from the last start of the one before) */
        hi_memo every = {.valid = 0}, hop = {.valid = 0};
        for (size_t i = 0; i < n; i = pretok_next(pats[p], s, i, n))
            starts[np++] = i;
        starts[np] = n;
        for (size_t base = 0; base + WIN <= n; base++) {
            win w;
            uint64_t t, want = 1;
            unsigned lim;
            char bytes[300];
            classify_sse2(s + base, &w, 1);
#ifdef __AVX2__ /* classify_avx2 exists only in code compiled for AVX2 */
            if (p == 0 && __builtin_cpu_supports("avx2")) {
                win w2;
                classify_avx2(s + base, &w2, 1);
                if (!(memcmp(&w, &w2, sizeof(w)) == 0))
                    ck_abort_msg("%s: AVX2 masks differ at %zu", label, base);
            }
#endif
            if (w.hi != 0)
                window_decide_hi(&w, s + base, pats[p] == PRETOK_O200K);
            while (starts[first] < base)
                first++;
            if (starts[first] != base)
                continue;
            /* a window at a piece's start: its start mask is the scalar starts below its limit,
             * exactly; in o200k a window with letters of both cases may stop before its limit
             * (after its last start, where a word's split depends on letters past the limit),
             * and is exact up to where it stops */
            t = pats[p] == PRETOK_O200K ? starts_o200k(&w, s + base) : starts_cl100k(&w, s + base);
            lim = window_limit(&w);
            if (pats[p] == PRETOK_O200K && w.both != 0 &&
                64 - (unsigned)__builtin_clzll(t) < lim)
                lim = 64 - (unsigned)__builtin_clzll(t);
            for (size_t q = first; q < np && starts[q] < base + lim; q++)
                want |= (uint64_t)1 << (starts[q] - base);
            for (int k = 0; k < 2; k++) {
                hi_memo *m = k == 0 ? &every : &hop;
                const char *what = k == 0 ? "every piece start" : "the block encoder's windows";
                win w3;
                if (k == 1 && base != next_hop)
                    continue;
                classify_sse2(s + base, &w3, 1);
                if (w3.hi != 0)
                    window_decide_hi_memo(&w3, s + base, pats[p] == PRETOK_O200K, m, base);
                if (memcmp(&w, &w3, sizeof(w)) != 0)
                    ck_abort_msg("%s, pattern %d, window at %zu: masks differ with what the windows before classified (%s)", label, (int)pats[p], base, what);
            }
            if (base == next_hop)
                next_hop = t > 1 ? base + 63 - (size_t)__builtin_clzll(t) : starts[first + 1];
            if (!(t == want))
                ck_abort_msg("%s, pattern %d, window at %zu (limit %u): start mask %016llx, "
                             "scalar %016llx (first difference at %zu); bytes there: \"%s\"",
                             label, (int)pats[p], base, lim, (unsigned long long)t,
                             (unsigned long long)want, base + (size_t)__builtin_ctzll(t ^ want),
                             show(s, n, base, bytes));
            masked[2 * p] += 63 - (unsigned)__builtin_clzll(t);
            masked[2 * p + 1]++;
        }
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

START_TEST(empty_and_cap_zero)
{
    size_t ends[4];
    const uint8_t *s = (const uint8_t *)"hello world";

    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 0, 0, ends, 4, NULL), 0);
    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 11, 11, ends, 4, NULL), 0);
    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 0, 11, ends, 0, NULL), 0);
    /* the two pieces, "hello" and " world" */
    ck_assert_uint_eq(pretok_simd_pieces(PRETOK_CL100K, s, 0, 11, ends, 4, NULL), 2);
    ck_assert_uint_eq(ends[0], 5);
    ck_assert_uint_eq(ends[1], 11);
}
END_TEST

/* Each ASCII byte alone, and runs of it of every length around the window's and SSE2's edges. */
START_TEST(lengths_around_block_edges)
{
    static const size_t lens[] = {1,  2,  15, 16, 17, 31, 32,  33,  47,  48,  49, 63,
                                  64, 65, 66, 95, 96, 97, 127, 128, 129, 130, 200};
    static const char *const fills[] = {" ",      "a",      "7",     "\n",   "\r\n",       ".",
                                        " a",     "ab ",    "  x",   "123 ", "'s",         "it's ",
                                        " \n ",   "\t",     "a1",    "Ab!?", "HelloWorld", "ABC ",
                                        "ABCdef", "don't ", "}\n//", "x/",   "I'LL"};
    uint8_t buf[256];

    for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++)
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            size_t fl = strlen(fills[f]);
            char label[64];
            for (size_t i = 0; i < lens[l]; i++)
                buf[i] = (uint8_t)fills[f][i % fl];
            snprintf(label, sizeof(label), "fill %zu, length %zu", f, lens[l]);
            check_same(label, buf, lens[l]);
        }
    for (int b = 0; b < 128; b++) {
        uint8_t one = (uint8_t)b;
        check_same("one byte", &one, 1);
    }
}
END_TEST

/* Contractions, and other pieces that may cross, at every offset across two windows. */
START_TEST(contractions_at_every_offset)
{
    static const char *const marks[] = {
        "'s",   "'S",         "'ll",        "'LL",        "'re",       "'ve",      "'d",
        "'m",   "'t",         "'x",         "''",         " 's",       "\xc5\xbf", "'\xc5\xbf",
        "  \n", "123456",     " \xc2\xa0x", "x\xcc\x81y", "\xc2\x85 ", "Ab'Re",    "n'T",
        "I'M",  "A'\xc5\xbf", "AB\xc3\xa9", "ab\xc3\x89", "!\n/",      "/\r\n//",  "xY",
        "Xy",   "X\xcc\x81",  "\xc2\xa0",   " !//\n\n//"};
    uint8_t buf[200];

    for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
        for (size_t at = 0; at < 140; at++)
            for (int bg = 0; bg < 6; bg++) {
                static const char bgs[] = {'x', ' ', '9', 'X', '/', '\n'};
                size_t ml = strlen(marks[m]), n = at + ml + 20;
                char label[64];
                memset(buf, bgs[bg], n);
                memcpy(buf + at, marks[m], ml);
                snprintf(label, sizeof(label), "mark %zu at %zu, background %c", m, at, bgs[bg]);
                check_same(label, buf, n);
            }
}
END_TEST

/* Random ASCII, weighted to the bytes the masks decide on; every ASCII byte occurs. */
START_TEST(random_ascii)
{
    static const char pool[] =
        "aaaaeeeettttnnnnAZzABCLMSTW      \n\n\r\t0123456789'''.,!?-_()\"/\\//";
    uint8_t buf[400];

    for (int t = 0; t < 20000; t++) {
        size_t n = next_rand() % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            uint32_t r = next_rand();
            buf[i] =
                r % 8 == 0 ? (uint8_t)(r >> 8) % 128 : (uint8_t)pool[(r >> 8) % (sizeof(pool) - 1)];
        }
        check_same("random ASCII", buf, n);
    }
}
END_TEST

/* Random UTF-8: ASCII mixed with letters, numbers, marks, spaces and punctuation beyond it. */
START_TEST(random_utf8)
{
    static const char *const chars[] = {
        "a",
        "Z",
        " ",
        " ",
        "\n",
        "'",
        "5",
        ".",
        "\t",
        "s",
        "l",
        "\xc3\xa9",         /* é */
        "\xc3\x89",         /* É */
        "\xc5\xbf",         /* ſ, an s under case folding */
        "\xc2\x85",         /* NEL, whitespace */
        "\xc2\xa0",         /* no-break space */
        "\xc2\xbd",         /* ½, a number */
        "\xcc\x81",         /* combining acute, a mark */
        "\xe2\x80\x9c",     /* left double quotation mark */
        "\xe2\x80\xa8",     /* line separator, whitespace */
        "\xe3\x80\x80",     /* ideographic space */
        "\xe4\xb8\xad",     /* 中 */
        "\xd9\xa3",         /* Arabic-Indic digit three */
        "\xf0\x9f\x98\x80", /* 😀 */
        "\xf0\x9d\x9f\x99", /* mathematical double-struck digit one */
    };
    uint8_t buf[600];

    for (int t = 0; t < 10000; t++) {
        size_t n = 0, want = next_rand() % 150;
        for (size_t c = 0; c < want; c++) {
            const char *ch = chars[next_rand() % (sizeof(chars) / sizeof(chars[0]))];
            size_t l = strlen(ch);
            memcpy(buf + n, ch, l);
            n += l;
        }
        ck_assert(utf8_valid((const char *)buf, n));
        check_same("random UTF-8", buf, n);
    }
}
END_TEST

/*
 * o200k's own rules, each case at the start of a text padded with digits (so that its pieces are
 * decided from windows, not left to the scalar scanner as the text's tail): the pieces that
 * tiktoken's o200k_base pattern gives, and which of them the masks decide (all, but for the
 * apostrophe before U+017F). Each case is then compared with the scalar scanner at every offset.
 */
START_TEST(o200k_rules)
{
    static const struct {
        const char *text, *pieces; /* the pieces separated by | */
        int fast;                  /* decided by the masks */
    } cases[] = {
        {"HelloWorld", "Hello|World", 1},
        {"ABCdef", "ABCdef", 1},
        {"ABC ", "ABC| ", 1},
        {"ABC!", "ABC|!", 1},
        {"CamelCaseXMLParser", "Camel|Case|XMLParser", 1},
        {"iPhone", "i|Phone", 1},
        {"don't", "don't", 1},
        {"DON'T", "DON'T", 1},
        {"I'm you'RE we'Ve they'll he'd it's", "I'm| you'RE| we'Ve| they'll| he'd| it's", 1},
        {"'s'S", "'s'S", 1},
        {"x'q", "x|'q", 1},
        {"abc'x", "abc|'x", 1},
        {"Ab'", "Ab|'", 1},
        {"}\n//x", "}\n//|x", 1},
        {" */\n\n", " */\n\n", 1},
        {"a/b", "a|/b", 1},
        {"123456", "123|456", 1},
        {" Hello", " Hello", 1},
        {"\tHello", "\tHello", 1},
        {"\nHello", "\n|Hello", 1},
        {"  Hello", " | Hello", 1},
        {"Hello  \n\n  World", "Hello|  \n\n| | World", 1},
        {"!!!abc", "!!!|abc", 1},
        {"abc'\xc5\xbf", "abc'\xc5\xbf", 0},
        /* outside ASCII: letters of both cases (Lo, Lm, marks) */
        {"\xe4\xb8\xad\xc3\x89\xc3\x89" "a", "\xe4\xb8\xad\xc3\x89\xc3\x89" "a", 1}, /* 中ÉÉa */
        {"\xe4\xb8\xad\xc3\x89.", "\xe4\xb8\xad|\xc3\x89|.", 1},                 /* 中|É|. */
        {"\xe4\xb8\xad\xc3\x89" "a\xe4\xb8\xad\xc3\x89",
         "\xe4\xb8\xad\xc3\x89" "a\xe4\xb8\xad|\xc3\x89", 1},                            /* 中Éa中|É */
        {"\xc3\xa9\xc3\x89\xc3\xa9", "\xc3\xa9|\xc3\x89\xc3\xa9", 1},           /* é|Éé */
        {"a\xca\xb0" "B", "a\xca\xb0|B", 1},                                         /* aʰ|B */
        {"x\xcc\x81y z", "x\xcc\x81y| z", 1},                                         /* x́y| z */
        {"\xc2\xabword\xc2\xbb", "\xc2\xabword|\xc2\xbb", 1},                       /* «word|» */
        {"\xd0\x96'S \xd0\xb6", "\xd0\x96'S| \xd0\xb6", 1},                         /* Ж'S| ж */
        {".\xcc\x81x", ".\xcc\x81x", 0},                   /* a mark after no letter: scalar */
        {"x's\xcc\x81", "x's|\xcc\x81", 0},                /* a mark after a contraction */
        {"\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0\xc2\xa0",
         "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0|\xc2\xa0", 0}, /* Москва, no-break space */
    };
    uint8_t buf[80 + 64 + 90]; /* the longest case (under 64 bytes) after 79 bytes of filler, then 90 */

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t tl = strlen(cases[c].text), n = tl + 100, ends[32], m, want = 1, i = 0;
        const char *pc = cases[c].pieces;
        pretok_simd_stats st = {0};

        memcpy(buf, cases[c].text, tl);
        memset(buf + tl, '0', n - tl);
        for (const char *q = pc; *q; q++)
            want += *q == '|';
        m = pretok_simd_pieces(PRETOK_O200K, buf, 0, n, ends, want, &st);
        ck_assert_uint_eq(m, want);
        for (size_t k = 0; k < m; k++) {
            const char *bar = strchr(pc, '|');
            size_t len = bar != NULL ? (size_t)(bar - pc) : strlen(pc);
            ck_assert_msg(ends[k] - i == len && memcmp(buf + i, pc, len) == 0,
                          "\"%s\": piece %zu is %zu bytes at %zu, want \"%.*s\"", cases[c].text, k,
                          ends[k] - i, i, (int)len, pc);
            i = ends[k];
            pc += len + 1;
        }
        ck_assert_uint_eq(i, tl);
        if (cases[c].fast)
            ck_assert_msg(st.fast == tl, "\"%s\": %llu bytes decided by the masks, want %zu",
                          cases[c].text, (unsigned long long)st.fast, tl);
        else
            ck_assert_msg(st.scalar[PRETOK_SIMD_NONASCII] > 0,
                          "\"%s\": not left to the scalar scanner", cases[c].text);
        for (size_t at = 0; at < 80; at++) {
            memset(buf, at % 2 ? 'a' : ' ', at);
            memcpy(buf + at, cases[c].text, tl);
            memset(buf + at + tl, at % 3 ? '.' : 'Z', 90);
            check_same(cases[c].text, buf, at + tl + 90);
        }
    }
}
END_TEST

/*
 * Text of other scripts, whose letters the windows now decide: letters of each case class
 * (upper only, lower only, both: Lo, Lm, marks after letters; Lt), punctuation and symbols of
 * two to four bytes, among ASCII words, apostrophes, slashes and spaces, with the characters the
 * masks leave to the scalar scanner rare. The block pre-tokenizer must give the scalar pieces,
 * and decide most of the bytes itself, else the test could pass by deciding nothing.
 */
START_TEST(letters_of_every_case)
{
    static const char *const chars[] = {
        "\xc3\x89", "\xd0\x96", "\xce\xa3",      /* É Ж Σ: upper case only */
        "\xc3\xa9", "\xd0\xb6", "\xcf\x83", "\xc3\x9f", /* é ж σ ß: lower case only */
        "\xe4\xb8\xad", "\xd8\xa7", "\xd7\x90", /* 中 ا א: other letters (Lo), both classes */
        "\xca\xb0",                       /* ʰ, a modifier letter (Lm), both classes */
        "\xc7\x85",                       /* ǅ, title case (Lt), upper class only */
        "\xe0\xa4\x95", "\xe0\xa4\xbf", /* क and ि, a Devanagari letter and vowel sign (Mc) */
        "\xcc\x81",                       /* combining acute (Mn) */
        "\xc2\xab", "\xc2\xbb", "\xe2\x80\x94", "\xe2\x80\x9c", "\xe2\x82\xac", /* « » — “ € */
        "\xf0\x9f\x98\x80",               /* 😀 */
        "\xf0\x9d\x90\x80",               /* mathematical bold A, a four-byte letter */
        "a", "Z", "q", "s", "t", "e", "l", " ", " ", " ", "'", "'", ".", "/", "\n", "-", "7",
        "\xc2\xa0",                       /* no-break space: scalar, now and then */
    };
    uint8_t buf[800];
    size_t masked[4] = {0, 0, 0, 0};
    uint64_t total = 0, fast[2] = {0, 0};

    for (int t = 0; t < 6000; t++) {
        size_t n = 0, want = 20 + next_rand() % 200, nc = sizeof(chars) / sizeof(chars[0]);
        for (size_t c = 0; c < want; c++) {
            /* the no-break space about one character in 400 */
            const char *ch = chars[next_rand() % (next_rand() % 10 == 0 ? nc : nc - 1)];
            size_t l = strlen(ch);
            memcpy(buf + n, ch, l);
            n += l;
        }
        ck_assert(utf8_valid((const char *)buf, n));
        check_same("letters of every case", buf, n);
        check_masks("letters of every case", buf, n, masked);
        for (int p = 0; p < 2; p++) {
            pretok_simd_stats st = {0};
            size_t ends[256], i = 0, m;
            while (i < n && (m = pretok_simd_pieces(p ? PRETOK_O200K : PRETOK_CL100K, buf, i, n,
                                                    ends, 256, &st)) > 0)
                i = ends[m - 1];
            fast[p] += st.fast;
        }
        total += n;
    }
    printf("letters of every case: the windows decided %.1f %% of the bytes (cl100k), %.1f %% "
           "(o200k)\n",
           100.0 * (double)fast[0] / (double)total, 100.0 * (double)fast[1] / (double)total);
    ck_assert(fast[0] * 2 > total);
    ck_assert(fast[1] * 2 > total);
}
END_TEST

/* The start masks alone, at every piece's start, and the classifiers at every alignment of the
 * window, on generated text. */
START_TEST(masks_every_alignment)
{
    static const char *const chars[] = {"a",
                                        "e",
                                        "t",
                                        "Q",
                                        "W",
                                        " ",
                                        " ",
                                        "\n",
                                        "\r",
                                        "'",
                                        "s",
                                        "l",
                                        "L",
                                        "2",
                                        ".",
                                        "/",
                                        "\t",
                                        "r",
                                        "E",
                                        "v",
                                        "m",
                                        "D",
                                        "5",
                                        "-",
                                        /* o200k: contractions after words, a tail's slashes,
                                         * case changes inside a run of letters */
                                        "'S",
                                        "'ll",
                                        "\n/",
                                        "aB",
                                        "\xc3\xa9",
                                        "\xc5\xbf",
                                        "\xc2\xa0",
                                        "\xc2\x85",
                                        "\xcc\x81",
                                        "\xe4\xb8\xad",
                                        "\xd9\xa3"};
    uint8_t buf[800];
    size_t masked[4] = {0, 0, 0, 0};

    for (int t = 0; t < 2000; t++) {
        size_t n = 64 + next_rand() % 300;
        int ascii = t % 2 == 0;
        for (size_t i = 0; i < n;) {
            const char *ch = chars[next_rand() % (ascii ? 28 : sizeof(chars) / sizeof(chars[0]))];
            size_t l = strlen(ch);
            if (i + l > n)
                break;
            memcpy(buf + i, ch, l);
            i += l;
            if (i + 4 > n)
                n = i;
        }
        check_masks(ascii ? "random ASCII" : "random UTF-8", buf, n, masked);
    }
    printf("start masks on generated text: cl100k %.1f bytes a window decided, %zu windows; "
           "o200k %.1f bytes, %zu windows\n",
           (double)masked[0] / (double)masked[1], masked[1], (double)masked[2] / (double)masked[3],
           masked[3]);
    ck_assert(masked[0] > masked[1] * 8);
    ck_assert(masked[2] > masked[3] * 8);
}
END_TEST

/* Every file of the benchmark corpus, and how much of it the masks decided. */
START_TEST(corpus_files)
{
    const char *dir = getenv("TG_CORPUS");
    DIR *d;
    struct dirent *de;
    int files = 0;

    ck_assert_msg(dir != NULL, "TG_CORPUS is not set (tests/meson.build sets it)");
    d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open the corpus directory %s", dir);
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        FILE *f;
        long n;
        uint8_t *s;
        size_t want = 0, got = 0;
        char bytes[300];
        long at;
        int ascii;

        if (strlen(de->d_name) < 5 || strcmp(de->d_name + strlen(de->d_name) - 4, ".txt") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        s = malloc((size_t)n + 1);
        ck_assert(s != NULL && fread(s, 1, (size_t)n, f) == (size_t)n);
        fclose(f);
        ck_assert_msg(utf8_valid((const char *)s, (size_t)n), "%s is not UTF-8", path);
        /* ASCII text: the masks must decide most of it, else the test could pass by handing
         * every piece to the scalar scanner */
        ascii = strncmp(de->d_name, "en_", 3) == 0 || strncmp(de->d_name, "code_", 5) == 0;
        for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
            pretok_simd_stats st = {0};
            uint64_t sum;
            at = first_difference(patterns[p], s, (size_t)n, 256, &want, &got, &st);
            ck_assert_msg(at < 0,
                          "%s, pattern %d: piece at offset %ld ends at %zu, scalar at %zu; bytes "
                          "there: \"%s\"",
                          de->d_name, (int)patterns[p], at, got, want,
                          at < 0 ? "" : show(s, (size_t)n, (size_t)at, bytes));
            sum = st.fast;
            for (int r = 0; r < PRETOK_SIMD_NREASONS; r++)
                sum += st.scalar[r];
            ck_assert_uint_eq(sum, (uint64_t)n);
            if (patterns[p] == PRETOK_R50K) {
                ck_assert_uint_eq(st.scalar[PRETOK_SIMD_PATTERN], (uint64_t)n);
                continue;
            }
            printf("%s: %ld bytes, %s decided by the masks %.1f%%, scalar: non-ASCII %.1f%%, "
                   "edge %.1f%%, tail %.1f%%\n",
                   de->d_name, n, patterns[p] == PRETOK_O200K ? "o200k" : "cl100k",
                   100.0 * (double)st.fast / (double)n,
                   100.0 * (double)st.scalar[PRETOK_SIMD_NONASCII] / (double)n,
                   100.0 * (double)st.scalar[PRETOK_SIMD_EDGE] / (double)n,
                   100.0 * (double)st.scalar[PRETOK_SIMD_TAIL] / (double)n);
            ck_assert_uint_eq(st.scalar[PRETOK_SIMD_PATTERN], 0);
            if (ascii)
                ck_assert_msg(st.fast >= (uint64_t)n * 9 / 10,
                              "%s, pattern %d: only %llu of %ld bytes decided by the masks",
                              de->d_name, (int)patterns[p], (unsigned long long)st.fast, n);
        }
        /* the start masks alone, on eight slices of 4 KB (cut at characters) */
        for (int c = 0; c < 8 && n > 8192; c++) {
            size_t from = (size_t)n / 8 * (size_t)c, to;
            while ((s[from] & 0xc0) == 0x80)
                from++;
            to = from + 4000;
            while ((s[to] & 0xc0) == 0x80)
                to--;
            size_t masked[4] = {0, 0, 0, 0};
            check_masks(de->d_name, s + from, to - from, masked);
            for (int p = 0; p < 2 && ascii; p++)
                ck_assert_msg(masked[2 * p] >= masked[2 * p + 1] * 40,
                              "%s at %zu, %s: a window at a piece's start decided %.1f bytes",
                              de->d_name, from, p == 0 ? "cl100k" : "o200k",
                              (double)masked[2 * p] / (double)masked[2 * p + 1]);
        }
        free(s);
        files++;
    }
    closedir(d);
    ck_assert_msg(files >= 4, "only %d corpus files in %s", files, dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pretok_simd");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, empty_and_cap_zero);
    tcase_add_test(tc, lengths_around_block_edges);
    tcase_add_test(tc, contractions_at_every_offset);
    tcase_add_test(tc, random_ascii);
    tcase_add_test(tc, random_utf8);
    tcase_add_test(tc, o200k_rules);
    tcase_add_test(tc, masks_every_alignment);
    tcase_add_test(tc, letters_of_every_case);
    tcase_add_test(tc, corpus_files);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
