/*
 * Unit tests for gate/pipeline/savings: the prompt-caching saving (reads at the input price less
 * their cached price, less the 5-minute and 1-hour writes' premium) and the model routing is
 * measured against (the model asked for; for an alias, its own destination's first target).
 */
#include <check.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/api/usage.h"
#include "gate/pipeline/savings.h"
#include "run_suite.h"

START_TEST(prompt_saving)
{
    /* $ per million tokens: input 3, cached 0.3, 5-minute write 3.75, 1-hour write 6 */
    struct conf_price p = {.input = 3, .output = 15, .cached_input = 0.3, .cache_write = 3.75,
                           .cache_write_1h = 6, .set = 1};
    struct usage u = {.input = 10000, .output = 10, .cached = 1000, .have = 1, .final = 1};

    /* 1000 reads: 1000 x (3 - 0.3) = 2700 $/M = 2,700,000 nano-dollars */
    ck_assert_int_eq(savings_prompt_nusd(&u, 0, &p), 2700000);
    /* 400 writes, 100 of them for an hour: 300 x 0.75 + 100 x 3 = 525 $/M less */
    u.cache_write = 400;
    ck_assert_int_eq(savings_prompt_nusd(&u, 100, &p), 2700000 - 225000 - 300000);
    /* writes only: a cost, below 0 */
    u.cached = 0;
    ck_assert_int_eq(savings_prompt_nusd(&u, 400, &p), -1200000);
    /* no price, no usage, usage not trusted: nothing */
    p.set = 0;
    ck_assert_int_eq(savings_prompt_nusd(&u, 0, &p), 0);
    p.set = 1;
    u.have = 0;
    ck_assert_int_eq(savings_prompt_nusd(&u, 0, &p), 0);
    u.have = 1;
    u.bad = "input_tokens";
    ck_assert_int_eq(savings_prompt_nusd(&u, 0, &p), 0);
    ck_assert_int_eq(savings_prompt_nusd(NULL, 0, &p), 0);
}
END_TEST

START_TEST(asked_model)
{
    static const char text[] =
        "listen: 127.0.0.1:0\n"
        "providers: { oa: { base_url: 'http://127.0.0.1:9/v1', format: openai } }\n"
        "models:\n"
        "  big: { provider: oa, price: { input: 10, output: 40 } }\n"
        "  small: { provider: oa, price: { input: 1, output: 4 } }\n"
        "  mid: { provider: oa, price: { input: 5, output: 20 } }\n"
        "tiers:\n"
        "  cheap: [small]\n"
        "  premium: [big, mid]\n"
        "routing:\n"
        "  aliases: { smart: premium, tiny: small }\n";
    char err[512];
    struct conf *c = conf_load_string(text, strlen(text), "t.yaml", err, sizeof(err));

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(savings_asked_model(c, "small")->name, "small");
    ck_assert_str_eq(savings_asked_model(c, "smart")->name, "big"); /* its tier's first */
    ck_assert_str_eq(savings_asked_model(c, "tiny")->name, "small");
    ck_assert_ptr_null(savings_asked_model(c, "unknown"));
    ck_assert_ptr_null(savings_asked_model(c, NULL));
    conf_unref(c);
}
END_TEST

static Suite *savings_suite(void)
{
    Suite *s = suite_create("savings");
    TCase *tc = tcase_create("savings");

    tcase_add_test(tc, prompt_saving);
    tcase_add_test(tc, asked_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(savings_suite());
}
