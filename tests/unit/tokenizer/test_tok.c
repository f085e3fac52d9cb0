/*
 * Unit tests for tokenizer/: encoding, decoding, the worst cases, ill-formed input, and request
 * counting against the published worked examples. Conformance with tiktoken itself, id for id
 * over the corpus and generated text, is tests/integration/tokenizer.test.mjs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/utf8.h"
#include "randtext.h"
#include "run_suite.h"
#include "tokenizer/chat.h"
#include "tokenizer/tok.h"

static const tok_enc *enc(const char *name)
{
    const tok_enc *e = tok_encoding(name);
    ck_assert_msg(e != NULL, "encoding %s", name);
    return e;
}

/* The ids of s as "1 2 3", into a static buffer. */
static const char *ids_of(const tok_enc *e, const char *s, unsigned flags)
{
    static char out[4096];
    tok_ids ids = {0};
    size_t o = 0;

    ck_assert_int_eq(tok_encode(e, s, strlen(s), flags, &ids), 0);
    out[0] = '\0';
    for (size_t i = 0; i < ids.n && o + 12 < sizeof(out); i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%u", i ? " " : "", ids.v[i]);
    tok_ids_free(&ids);
    return out;
}

/* decode(ids) into a malloc'd buffer */
static char *decode(const tok_enc *e, const tok_ids *ids, size_t *len)
{
    size_t cap = 16, n = 0;
    char *out = malloc(cap);

    for (size_t i = 0; i < ids->n; i++) {
        size_t tl;
        const char *b = tok_token_bytes(e, ids->v[i], &tl);
        ck_assert_msg(b != NULL, "id %u has no bytes", ids->v[i]);
        while (n + tl > cap)
            out = realloc(out, cap *= 2);
        memcpy(out + n, b, tl);
        n += tl;
    }
    *len = n;
    return out;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(unknown_encoding_is_null)
{
    ck_assert_ptr_null(tok_encoding("gpt2_base"));
    ck_assert_ptr_null(tok_encoding(NULL));
    ck_assert_str_eq(tok_name(enc("o200k_base")), "o200k_base");
    ck_assert_uint_eq(tok_vocab_size(enc("cl100k_base")), 100277);
    ck_assert_uint_eq(tok_vocab_size(enc("o200k_base")), 200019);
}
END_TEST

/* ids read off npm tiktoken 1.0.22 for the same strings */
START_TEST(known_ids)
{
    ck_assert_str_eq(ids_of(enc("cl100k_base"), "Hello world, it's a test. Don't   stop!\n", 0),
                     "9906 1917 11 433 596 264 1296 13 4418 956 256 3009 4999");
    ck_assert_str_eq(ids_of(enc("o200k_base"), "Hello world, it's a test. Don't   stop!\n", 0),
                     "13225 2375 11 4275 261 1746 13 19666 256 5666 4175");
    ck_assert_str_eq(ids_of(enc("p50k_base"), "a<|endoftext|>", 0), "64 27 91 437 1659 5239 91 29");
    ck_assert_str_eq(ids_of(enc("o200k_base"), "", 0), "");
}
END_TEST

START_TEST(special_tokens_only_when_allowed)
{
    const tok_enc *e = enc("cl100k_base");
    const char *plain = ids_of(e, "a<|endoftext|>b", 0);

    ck_assert_ptr_null(strstr(plain, "100257"));
    ck_assert_str_eq(ids_of(e, "a<|endoftext|>b", TOK_ALLOW_SPECIAL), "64 100257 65");
    ck_assert_str_eq(ids_of(e, "<|fim_prefix|><|endofprompt|>", TOK_ALLOW_SPECIAL),
                     "100258 100276");
    ck_assert_str_eq(ids_of(enc("o200k_base"), "x<|endofprompt|>", TOK_ALLOW_SPECIAL), "87 200018");
    /* a partial special string is text */
    ck_assert_ptr_null(strstr(ids_of(e, "<|endoftext", TOK_ALLOW_SPECIAL), "100257"));
}
END_TEST

START_TEST(decode_specials_and_unknown_ids)
{
    size_t len;
    const char *b = tok_token_bytes(enc("o200k_base"), 199999, &len);

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq((int)len, 13);
    ck_assert_int_eq(memcmp(b, "<|endoftext|>", 13), 0);
    ck_assert_ptr_null(tok_token_bytes(enc("o200k_base"), 200019, &len));
    ck_assert_ptr_null(tok_token_bytes(enc("cl100k_base"), 100256, &len)); /* a hole */
    ck_assert_ptr_null(tok_token_bytes(enc("cl100k_base"), 4000000000u, &len));
}
END_TEST

/* Random well-formed UTF-8 from a fixed seed: ASCII, Latin, Cyrillic, CJK, emoji, marks. */
static size_t random_text(unsigned *seed, char *out, size_t cap)
{
    static const char *const bits[] = {
        "a", "Z", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "42", "12345", "^", "!?", "/",
        "\xc3\xa9", "e\xcc\x81", "\xd0\x96", "\xd0\xb6", "\xe4\xb8\xad", "\xe6\x96\x87",
        "\xf0\x9f\x98\x80", "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9", "\xe3\x80\x80",
        "\xc2\xa0", "\xe0\xa4\xb9\xe0\xa4\xbf", "\xd9\xa3", "\xe2\x85\xab", "<|endoftext|>",
    };
    size_t n = 0;
    int parts = 1 + (int)(rand_r(seed) % 40);

    for (int i = 0; i < parts; i++) {
        const char *b = bits[rand_r(seed) % (sizeof(bits) / sizeof(bits[0]))];
        size_t l = strlen(b);
        if (n + l >= cap)
            break;
        memcpy(out + n, b, l);
        n += l;
    }
    out[n] = '\0';
    return n;
}

START_TEST(round_trip_random_text)
{
    const char *names[] = {"cl100k_base", "o200k_base", "p50k_base", "r50k_base"};
    unsigned seed = 12345;
    char text[1024];

    for (int k = 0; k < 4; k++) {
        const tok_enc *e = enc(names[k]);
        for (int i = 0; i < 2000; i++) {
            size_t n = random_text(&seed, text, sizeof(text)), len;
            tok_ids ids = {0};
            uint64_t count;
            char *back;
            ck_assert_int_eq(tok_encode(e, text, n, 0, &ids), 0);
            ck_assert_int_eq(tok_count(e, text, n, 0, &count), 0);
            ck_assert_uint_eq(count, ids.n);
            back = decode(e, &ids, &len);
            ck_assert_msg(len == n && memcmp(back, text, n) == 0, "%s: round trip of '%s'",
                          names[k], text);
            free(back);
            tok_ids_free(&ids);
        }
    }
}
END_TEST

/* Ill-formed UTF-8 encodes as its U+FFFD-cleaned text does; nothing crashes. */
START_TEST(ill_formed_is_replacement_characters)
{
    static const char *const bad[] = {
        "a\xff b", "\xed\xa0\x80", "x\xe4\xb8", "\xc0\xaf\xc0\xaf", "\xf4\x90\x80\x80z",
        "\x80\x80\x80", "ok \xf0\x9f\x98", "\xe0\x80\xaf'", "'s\xc3",
    };
    const tok_enc *e = enc("o200k_base");

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char clean[64];
        size_t n = strlen(bad[i]), m = utf8_clean_len(bad[i], n, clean);
        tok_ids a = {0}, b = {0};
        ck_assert_int_eq(tok_encode(e, bad[i], n, 0, &a), 0);
        ck_assert_int_eq(tok_encode(e, clean, m, 0, &b), 0);
        ck_assert_uint_eq(a.n, b.n);
        ck_assert_int_eq(memcmp(a.v, b.v, a.n * sizeof(uint32_t)), 0);
        tok_ids_free(&a);
        tok_ids_free(&b);
    }
}
END_TEST

/*
 * The worst cases: inputs that make one huge piece, or many pieces of odd shape. Each must
 * encode in well under a second; the bound here is generous (sanitizer builds are slower) but
 * a quadratic merge would take minutes.
 */
static void worst_case(const char *what, const char *unit, size_t unit_len, size_t total)
{
    const char *names[] = {"cl100k_base", "o200k_base"};
    size_t n = total / unit_len * unit_len;
    char *s = malloc(n);

    for (size_t i = 0; i < n; i += unit_len)
        memcpy(s + i, unit, unit_len);
    for (int k = 0; k < 2; k++) {
        const tok_enc *e = enc(names[k]);
        tok_ids ids = {0};
        size_t len;
        double t0 = now_s(), el;
        char *back;
        ck_assert_int_eq(tok_encode(e, s, n, 0, &ids), 0);
        el = now_s() - t0;
        fprintf(stderr, "worst case %s, %s: %zu bytes, %zu tokens, %.3f s\n", what, names[k], n,
                ids.n, el);
        ck_assert_msg(el < 5.0, "%s took %.2f s", what, el);
        back = decode(e, &ids, &len);
        ck_assert(len == n && memcmp(back, s, n) == 0);
        free(back);
        tok_ids_free(&ids);
    }
    free(s);
}

START_TEST(worst_one_letter)
{
    worst_case("1 MB of 'a'", "a", 1, 1 << 20);
}
END_TEST

START_TEST(worst_digits)
{
    worst_case("1 MB of digits", "1234567890", 10, 1 << 20);
}
END_TEST

START_TEST(worst_caret)
{
    worst_case("1 MB of '^'", "^", 1, 1 << 20);
}
END_TEST

START_TEST(worst_cjk)
{
    /* 中文字符测试: six common CJK characters, no spaces */
    worst_case("1 MB of CJK", "\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97\xe7\xac\xa6\xe6\xb5\x8b\xe8\xaf\x95",
               18, 1 << 20);
}
END_TEST

START_TEST(worst_long_words)
{
    /* one letter piece of alternating letters, and one of base64-like text, a megabyte each */
    char *s = malloc(1 << 20);
    unsigned seed = 7;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    worst_case("1 MB of 'ab'", "ab", 2, 1 << 20);
    for (size_t i = 0; i < (1 << 20); i++)
        s[i] = b64[rand_r(&seed) % 52];
    worst_case("1 MB of random letters", s, 1 << 20, 1 << 20);
    free(s);
}
END_TEST

#define NUL_ESC(S) tok_json_has_nul_escape(S, sizeof(S) - 1)

START_TEST(json_nul_escapes)
{
    ck_assert_int_eq(tok_json_has_nul_escape("\"a\\u0000b\"", 11), 1);
    ck_assert_int_eq(tok_json_has_nul_escape("\"a\\\\u0000b\"", 12), 0); /* an escaped backslash */
    ck_assert_int_eq(tok_json_has_nul_escape("\"\\u00000\"", 10), 1);
    ck_assert_int_eq(tok_json_has_nul_escape("\"\\u0001\"", 9), 0);
    ck_assert_int_eq(NUL_ESC("\"a\\\\\\u0000b\""), 1); /* three: the last escapes u */
    ck_assert_int_eq(NUL_ESC("\"\\\\\\\\u0000\""), 0); /* four: two escaped */
    ck_assert_int_eq(NUL_ESC("\\u0000"), 1); /* at the start */
    ck_assert_int_eq(NUL_ESC("u0000"), 0);
    ck_assert_int_eq(NUL_ESC("\"\\\\u0000 \\u0000\""), 1); /* the second */
}
END_TEST

/* The first reading of tok_json_has_nul_escape: every backslash in turn, skipping what it
 * escapes. */
static int nul_escape_by_backslashes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\')
            continue;
        if (n - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0)
            return 1;
        i++; /* the escaped character */
    }
    return 0;
}

START_TEST(json_nul_escapes_as_read_backslash_by_backslash)
{
    static const char alphabet[] = "\\\\u00x\"";
    char s[40];
    unsigned seed = 12345, found = 0;

    for (int t = 0; t < 200000; t++) {
        size_t n = rand_text(s, 31, alphabet, sizeof(alphabet) - 1, &seed);
        int want = nul_escape_by_backslashes(s, n);
        found += (unsigned)want;
        ck_assert_msg(tok_json_has_nul_escape(s, n) == want, "%.*s: want %d", (int)n, s, want);
    }
    ck_assert_uint_gt(found, 100); /* the alphabet makes escapes of U+0000 often enough */
}
END_TEST

START_TEST(worst_mixed_repeats)
{
    const char unit[] = "^ 0 a 's \n";
    worst_case("10,000 x '^ 0 a 's \\n'", unit, sizeof(unit) - 1, (sizeof(unit) - 1) * 10000);
}
END_TEST

static uint64_t count_request(const char *model, tok_api api, const char *json, double factor,
                              tok_count_result *r)
{
    cJSON *body = cJSON_Parse(json);
    const tok_enc *e = enc(tok_encoding_for_model(model));

    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(tok_count_request(e, api, body, model, factor, r), 0);
    cJSON_Delete(body);
    return r->tokens;
}

/* OpenAI's cookbook "How to count tokens with tiktoken": these six messages are 129 prompt
 * tokens for gpt-3.5-turbo and gpt-4 (cl100k_base) and 124 for gpt-4o (o200k_base). */
#define COOKBOOK_MESSAGES                                                                          \
    "[{\"role\":\"system\",\"content\":\"You are a helpful, pattern-following assistant that "     \
    "translates corporate jargon into plain English.\"},"                                         \
    "{\"role\":\"system\",\"name\":\"example_user\",\"content\":\"New synergies will help drive "  \
    "top-line growth.\"},"                                                                         \
    "{\"role\":\"system\",\"name\":\"example_assistant\",\"content\":\"Things working well "       \
    "together will increase revenue.\"},"                                                          \
    "{\"role\":\"system\",\"name\":\"example_user\",\"content\":\"Let's circle back when we have " \
    "more bandwidth to touch base on opportunities for increased leverage.\"},"                    \
    "{\"role\":\"system\",\"name\":\"example_assistant\",\"content\":\"Let's talk later when "     \
    "we're less busy about how to do better.\"},"                                                  \
    "{\"role\":\"user\",\"content\":\"This late pivot means we don't have time to boil the "       \
    "ocean for the client deliverable.\"}]"

START_TEST(chat_cookbook_example)
{
    tok_count_result r;

    ck_assert_uint_eq(count_request("gpt-3.5-turbo", TOK_API_CHAT,
                                    "{\"messages\":" COOKBOOK_MESSAGES "}", 1.0, &r),
                      129);
    ck_assert_uint_eq(count_request("gpt-4", TOK_API_CHAT, "{\"messages\":" COOKBOOK_MESSAGES "}",
                                    1.0, &r),
                      129);
    ck_assert_uint_eq(count_request("gpt-4o", TOK_API_CHAT, "{\"messages\":" COOKBOOK_MESSAGES "}",
                                    1.0, &r),
                      124);
    ck_assert_int_eq(r.approximate, 0);
}
END_TEST

START_TEST(chat_formula_parts)
{
    tok_count_result r;
    uint64_t content;
    const tok_enc *e = enc("o200k_base");

    ck_assert_int_eq(tok_count(e, "Hello there", 11, 0, &content), 0);
    /* 3 per message + role "user" (1) + content + 3 priming */
    ck_assert_uint_eq(count_request("gpt-4o", TOK_API_CHAT,
                                    "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}]}",
                                    1.0, &r),
                      3 + 1 + content + 3);
    /* a name costs its tokens and one more */
    ck_assert_uint_eq(count_request("gpt-4o", TOK_API_CHAT,
                                    "{\"messages\":[{\"role\":\"user\",\"name\":\"bob\","
                                    "\"content\":\"Hello there\"}]}",
                                    1.0, &r),
                      3 + 1 + 1 + 1 + content + 3);
    /* content parts: the text parts count as the string would */
    ck_assert_uint_eq(count_request("gpt-4o", TOK_API_CHAT,
                                    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                                    "\"text\",\"text\":\"Hello there\"}]}]}",
                                    1.0, &r),
                      3 + 1 + content + 3);
    /* a body without messages is no chat request */
    {
        cJSON *b = cJSON_Parse("{\"model\":\"x\"}");
        ck_assert_int_eq(tok_count_request(e, TOK_API_CHAT, b, "gpt-4o", 1.0, &r), -1);
        cJSON_Delete(b);
    }
}
END_TEST

/* The cookbook's function-definition constants, gpt-4o: 7 per function, 3 for properties, 3
 * per property, -3 + 3 per item for an enum, 12 at the end, plus the text "name:desc" and
 * "prop:type:desc" with a final period dropped. */
/* Role names are counted in each encoding as any text: "assistant" and "developer" are two
 * tokens in p50k_base and r50k_base, one in the others; counted one after another on one
 * thread, each encoding gives its own (chat.c remembers role counts per thread and encoding). */
START_TEST(chat_roles_per_encoding)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool", "developer"};
    static const char *const order[] = {"o200k_base", "p50k_base",  "cl100k_base", "r50k_base",
                                        "p50k_base",  "o200k_base", "r50k_base"};
    const char *json = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":\"Hi\"},"
                       "{\"role\":\"assistant\",\"content\":\"Hello\"},"
                       "{\"role\":\"tool\",\"content\":\"42\"},"
                       "{\"role\":\"developer\",\"content\":\"Be kind.\"}]}";
    static const char *const contents[] = {"Be brief.", "Hi", "Hello", "42", "Be kind."};
    cJSON *body = cJSON_Parse(json);

    ck_assert_ptr_nonnull(body);
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        const tok_enc *e = enc(order[k]);
        uint64_t want = 3, n; /* the reply's priming */
        tok_count_result r;
        for (int i = 0; i < 5; i++) {
            ck_assert_int_eq(tok_count(e, roles[i], strlen(roles[i]), 0, &n), 0);
            want += 3 + n;
            ck_assert_int_eq(tok_count(e, contents[i], strlen(contents[i]), 0, &n), 0);
            want += n;
        }
        ck_assert_int_eq(tok_count_request(e, TOK_API_CHAT, body, "gpt-4o", 1.0, &r), 0);
        ck_assert_uint_eq(r.tokens, want);
    }
    /* the two families do differ on these names, so the check above can tell them apart */
    {
        uint64_t a, b;
        ck_assert_int_eq(tok_count(enc("p50k_base"), "assistant", 9, 0, &a), 0);
        ck_assert_int_eq(tok_count(enc("o200k_base"), "assistant", 9, 0, &b), 0);
        ck_assert_uint_ne(a, b);
    }
    cJSON_Delete(body);
}
END_TEST

START_TEST(chat_tools_formula)
{
    const tok_enc *e = enc("o200k_base");
    tok_count_result base, with;
    uint64_t t1, t2, t3, c, f;
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char body[2048];

    tok_count(e, "get_weather:Get the weather", 27, 0, &t1);
    tok_count(e, "location:string:The city", 24, 0, &t2);
    tok_count(e, "unit:string:", 12, 0, &t3);
    tok_count(e, "celsius", 7, 0, &c);
    tok_count(e, "fahrenheit", 10, 0, &f);
    snprintf(body, sizeof(body), "{%s}", msgs);
    count_request("gpt-4o", TOK_API_CHAT, body, 1.0, &base);
    snprintf(body, sizeof(body),
             "{%s,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"description\":\"Get the weather.\",\"parameters\":{\"type\":\"object\","
             "\"properties\":{\"location\":{\"type\":\"string\",\"description\":\"The city.\"},"
             "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]}}}}}]}",
             msgs);
    count_request("gpt-4o", TOK_API_CHAT, body, 1.0, &with);
    ck_assert_uint_eq(with.tokens - base.tokens,
                      7 + t1 + 3 + 3 + t2 + 3 + (uint64_t)(-3 + 3 + 3) + c + f + t3 + 12);
}
END_TEST

/* OpenAI's vision pricing examples: 1024 x 1024 high is 765 tokens, 2048 x 4096 high is 1105,
 * low detail is 85 whatever the size. */
START_TEST(image_tiles_openai)
{
    ck_assert_uint_eq(tok_image_tokens_openai("gpt-4o", 1024, 1024, "high"), 765);
    ck_assert_uint_eq(tok_image_tokens_openai("gpt-4o", 2048, 4096, "high"), 1105);
    ck_assert_uint_eq(tok_image_tokens_openai("gpt-4o", 4096, 8192, "low"), 85);
    ck_assert_uint_eq(tok_image_tokens_openai("gpt-4o", 0, 0, "high"), 85 + 170 * 8);
}
END_TEST

/* Anthropic's vision documentation: tokens = width * height / 750; 1000 x 1000 is about 1334,
 * 200 x 200 about 54; unknown sizes are counted at the cap. */
START_TEST(image_anthropic)
{
    ck_assert_uint_eq(tok_image_tokens_anthropic(1000, 1000), 1334);
    ck_assert_uint_eq(tok_image_tokens_anthropic(200, 200), 54);
    ck_assert_uint_eq(tok_image_tokens_anthropic(0, 0), 1600);
}
END_TEST

START_TEST(image_size_from_data_url)
{
    /* the first 24 bytes of a 640 x 480 PNG and the first 10 of a 33 x 7 GIF, in base64 */
    const char *png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAoAAAAHg";
    const char *gif = "data:image/gif;base64,R0lGODlhIQAHAA==";
    int w = 0, h = 0;

    ck_assert_int_eq(tok_image_size(png, &w, &h), 0);
    ck_assert_int_eq(w, 640);
    ck_assert_int_eq(h, 480);
    ck_assert_int_eq(tok_image_size(gif, &w, &h), 0);
    ck_assert_int_eq(w, 33);
    ck_assert_int_eq(h, 7);
    ck_assert_int_eq(tok_image_size("https://example.invalid/cat.png", &w, &h), -1);
    ck_assert_int_eq(tok_image_size("data:image/png;base64,!!!!", &w, &h), -1);
}
END_TEST

START_TEST(chat_image_counted_and_marked)
{
    tok_count_result r;

    count_request("gpt-4o", TOK_API_CHAT,
                  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                  "\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAoAAAAHg\","
                  "\"detail\":\"high\"}}]}]}",
                  1.0, &r);
    /* 640 x 480: no scaling, 2 x 1 tiles */
    ck_assert_uint_eq(r.image_tokens, 85 + 170 * 2);
    ck_assert_uint_eq(r.estimated, 0);
    count_request("gpt-4o", TOK_API_CHAT,
                  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                  "\"image_url\":{\"url\":\"https://example.invalid/cat.png\"}}]}]}",
                  1.0, &r);
    ck_assert_uint_eq(r.estimated, 1);
    ck_assert_uint_eq(r.image_tokens, 85 + 170 * 8);
}
END_TEST

START_TEST(anthropic_approximation_and_calibration)
{
    tok_count_result r1, r2;
    const char *body = "{\"system\":\"Be brief.\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"Hello there, how are you today?\"}]}";

    count_request("claude-sonnet-4-5", TOK_API_MESSAGES, body, 1.0, &r1);
    count_request("claude-sonnet-4-5", TOK_API_MESSAGES, body, 1.5, &r2);
    ck_assert_int_eq(r1.approximate, 1);
    ck_assert_uint_eq(r2.tokens, (r1.tokens * 3 + 1) / 2);
}
END_TEST

START_TEST(model_families)
{
    ck_assert_str_eq(tok_encoding_for_model("gpt-4o-mini"), "o200k_base");
    ck_assert_str_eq(tok_encoding_for_model("gpt-4.1-nano"), "o200k_base");
    ck_assert_str_eq(tok_encoding_for_model("gpt-5"), "o200k_base");
    ck_assert_str_eq(tok_encoding_for_model("o3-mini"), "o200k_base");
    ck_assert_str_eq(tok_encoding_for_model("gpt-4-turbo"), "cl100k_base");
    ck_assert_str_eq(tok_encoding_for_model("gpt-3.5-turbo"), "cl100k_base");
    ck_assert_str_eq(tok_encoding_for_model("text-embedding-3-small"), "cl100k_base");
    ck_assert_str_eq(tok_encoding_for_model("claude-haiku-4-5"), "cl100k_base");
}
END_TEST

/*
 * A piece that is itself a token encodes as that token, before any merge (tiktoken's rule, and
 * the encoder's whole-piece table). Every token whose bytes are text is encoded alone: when it
 * comes out as one id, that id must be the token's own (no two tokens share their bytes), and
 * the ids must always decode back to the bytes and count as many as they are. Tokens of every
 * length are covered, so each whole-piece table answers: the buckets (2 to 8 bytes), tok_whole
 * (9 to 24) and the rank table (longer).
 */
static void tokens_encode_as_themselves(const char *name)
{
    const tok_enc *e = enc(name);
    size_t alone[4] = {0}; /* tokens encoded as one id: 1-4, 5-8, 9-24, longer */

    for (uint32_t id = 0; id < tok_vocab_size(e); id++) {
        size_t len, back_len;
        const char *b = tok_token_bytes(e, id, &len);
        tok_ids ids = {0};
        uint64_t count;
        char *back;
        if (b == NULL || !utf8_valid(b, len))
            continue; /* bytes that are no text: part of a character */
        ck_assert_int_eq(tok_encode(e, b, len, 0, &ids), 0);
        ck_assert_int_eq(tok_count(e, b, len, 0, &count), 0);
        ck_assert_uint_eq(count, ids.n);
        if (ids.n == 1) {
            ck_assert_msg(ids.v[0] == id, "%s: token %u (%zu bytes) encoded alone as %u", name, id,
                          len, ids.v[0]);
            alone[len <= 4 ? 0 : len <= 8 ? 1 : len <= 24 ? 2 : 3]++;
        }
        back = decode(e, &ids, &back_len);
        ck_assert_msg(back_len == len && memcmp(back, b, len) == 0, "%s: token %u round trip",
                      name, id);
        free(back);
        tok_ids_free(&ids);
    }
    for (int k = 0; k < 4; k++)
        ck_assert_msg(alone[k] > 0, "%s: no token of length class %d encoded alone", name, k);
}

START_TEST(every_token_encodes_as_itself)
{
    tokens_encode_as_themselves("cl100k_base");
    tokens_encode_as_themselves("o200k_base");
}
END_TEST

/*
 * The piece caches never change an encoding, whatever they hold. Text of 24,000 lines made to
 * land in the long cache: CJK runs of 8 characters (24 bytes, mostly more than 9 ids), of 9 to
 * 21 (27 to 63 bytes) and of 22 to 85 (66 to 255 bytes); ASCII words of 25 to 60 letters and of
 * 65 to 300; ASCII runs of 24 rare letter pairs. Every other line of a kind repeats one of 200
 * pieces of its own, which later sights find in the caches; the other lines are new, more of
 * each length than the caches' tables hold, so that they crowd the repeated ones out and later
 * passes also meet pieces that the long cache let go while the piece cache still marks them.
 * Each line is one piece and a line break, so the ids split at the line break's id.
 *
 * On each path, with the caches emptied first: in the first pass, the first sight of each piece
 * is merged (no cache holds it), and every repeat must have its first sight's ids; then four
 * more passes with the caches kept, the two encodings taking turns, must have the first pass's
 * ids and count; and every path's first pass must equal the scalar path's.
 */
#define CACHE_LINES 24000

static size_t cache_text(char *out, int *pool)
{
    unsigned seed = 20261207;
    size_t n = 0;

    for (int line = 0; line < CACHE_LINES; line++) {
        int kind = line % 6, len, repeat = (line / 6) % 2 == 0;
        unsigned again = (unsigned)(kind * 1000 + (line / 12) % 200), *sp = repeat ? &again : &seed;
        pool[line] = repeat ? (int)again : -1;
        if (kind == 0 || kind == 1 || kind == 4) {
            len = kind == 0   ? 8
                  : kind == 1 ? 9 + (int)(rand_r(sp) % 13)
                              : 22 + (int)(rand_r(sp) % 64);
            for (int c = 0; c < len; c++) {
                unsigned cp = 0x4e00 + rand_r(sp) % 0x5200; /* CJK unified ideographs */
                out[n++] = (char)(0xe0 | cp >> 12);
                out[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
                out[n++] = (char)(0x80 | (cp & 0x3f));
            }
        } else if (kind == 2 || kind == 5) {
            len = kind == 2 ? 25 + (int)(rand_r(sp) % 36) : 65 + (int)(rand_r(sp) % 236);
            for (int c = 0; c < len; c++)
                out[n++] = (char)('a' + rand_r(sp) % 26);
        } else {
            for (int c = 0; c < 12; c++) {
                out[n++] = "qxzjvk"[rand_r(sp) % 6];
                out[n++] = "qxzjvk"[rand_r(sp) % 6];
            }
        }
        out[n++] = '\n';
    }
    return n;
}

/* Every repeated line of the first pass ids has its first sight's ids. */
static void repeats_as_first_seen(const tok_enc *e, const tok_ids *ids, const int *pool,
                                  const char *path)
{
    static size_t at[CACHE_LINES + 1], first[6000];
    uint64_t nl;
    size_t line = 0, checked = 0;

    ck_assert_int_eq(tok_count(e, "\n", 1, 0, &nl), 0);
    ck_assert_int_eq((int)nl, 1);
    at[0] = 0;
    for (size_t i = 0; i < ids->n && line < CACHE_LINES; i++)
        if (ids->v[i] == ids->v[ids->n - 1]) /* the text ends with a line break */
            at[++line] = i + 1;
    ck_assert_uint_eq(line, CACHE_LINES);
    memset(first, 0xff, sizeof(first));
    for (size_t l = 0; l < CACHE_LINES; l++) {
        size_t f;
        if (pool[l] < 0)
            continue;
        if (first[pool[l]] == SIZE_MAX) {
            first[pool[l]] = l;
            continue;
        }
        f = first[pool[l]];
        if (at[l + 1] - at[l] != at[f + 1] - at[f] ||
            memcmp(&ids->v[at[l]], &ids->v[at[f]], (at[l + 1] - at[l]) * 4) != 0)
            ck_abort_msg("%s, path %s: line %zu has other ids than the same piece on line %zu",
                         tok_name(e), path, l, f);
        checked++;
    }
    ck_assert_uint_gt(checked, CACHE_LINES / 3);
}

START_TEST(caches_never_change_ids)
{
    static const tok_path paths[] = {TOK_PATH_SCALAR, TOK_PATH_SSE2, TOK_PATH_AVX2};
    static int pool[CACHE_LINES];
    const tok_enc *es[2] = {enc("cl100k_base"), enc("o200k_base")};
    char *text = malloc(CACHE_LINES * 300);
    size_t n;
    tok_ids scalar[2] = {{0}}, first[2] = {{0}}, again = {0};
    uint64_t count;

    ck_assert_ptr_nonnull(text);
    n = cache_text(text, pool);
    for (size_t p = 0; p < 3; p++) {
        if (tok_set_path(paths[p]) != 0)
            continue; /* avx2: not on this CPU (test_tokpath says so) */
        tok_cache_clear();
        for (int x = 0; x < 2; x++) {
            first[x].n = 0;
            ck_assert_int_eq(tok_encode(es[x], text, n, 0, &first[x]), 0);
            repeats_as_first_seen(es[x], &first[x], pool, tok_path_name(paths[p]));
            if (p == 0) {
                scalar[x].n = 0;
                ck_assert_int_eq(tok_encode(es[x], text, n, 0, &scalar[x]), 0);
            }
            ck_assert_msg(first[x].n == scalar[x].n &&
                              memcmp(first[x].v, scalar[x].v, first[x].n * 4) == 0,
                          "%s, path %s: ids differ from the scalar path's", tok_name(es[x]),
                          tok_path_name(paths[p]));
        }
        for (int pass = 0; pass < 4; pass++) {
            const tok_enc *e = es[pass % 2];
            again.n = 0;
            ck_assert_int_eq(tok_encode(e, text, n, 0, &again), 0);
            ck_assert_msg(again.n == first[pass % 2].n &&
                              memcmp(again.v, first[pass % 2].v, again.n * 4) == 0,
                          "%s, path %s, pass %d with the caches kept: ids differ", tok_name(e),
                          tok_path_name(paths[p]), pass + 2);
            ck_assert_int_eq(tok_count(e, text, n, 0, &count), 0);
            ck_assert_uint_eq(count, first[pass % 2].n);
        }
    }
    ck_assert_int_eq(tok_set_path(TOK_PATH_AUTO), 0);
    for (int x = 0; x < 2; x++) {
        tok_ids_free(&scalar[x]);
        tok_ids_free(&first[x]);
    }
    tok_ids_free(&again);
    free(text);
}
END_TEST

static Suite *tok_suite(void)
{
    Suite *s = suite_create("tok");
    TCase *t = tcase_create("core");

    tcase_set_timeout(t, 120);
    tcase_add_test(t, unknown_encoding_is_null);
    tcase_add_test(t, known_ids);
    tcase_add_test(t, special_tokens_only_when_allowed);
    tcase_add_test(t, decode_specials_and_unknown_ids);
    tcase_add_test(t, round_trip_random_text);
    tcase_add_test(t, every_token_encodes_as_itself);
    tcase_add_test(t, ill_formed_is_replacement_characters);
    tcase_add_test(t, worst_one_letter);
    tcase_add_test(t, worst_digits);
    tcase_add_test(t, worst_caret);
    tcase_add_test(t, worst_cjk);
    tcase_add_test(t, worst_mixed_repeats);
    tcase_add_test(t, worst_long_words);
    tcase_add_test(t, json_nul_escapes);
    tcase_add_test(t, json_nul_escapes_as_read_backslash_by_backslash);
    tcase_add_test(t, chat_cookbook_example);
    tcase_add_test(t, chat_formula_parts);
    tcase_add_test(t, chat_tools_formula);
    tcase_add_test(t, chat_roles_per_encoding);
    tcase_add_test(t, image_tiles_openai);
    tcase_add_test(t, image_anthropic);
    tcase_add_test(t, image_size_from_data_url);
    tcase_add_test(t, chat_image_counted_and_marked);
    tcase_add_test(t, anthropic_approximation_and_calibration);
    tcase_add_test(t, model_families);
    tcase_add_test(t, caches_never_change_ids);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return run_suite(tok_suite());
}
