/*
 * rstats: to be written (issue 12). See rstats.h.
 */
#include "routing/rstats.h"

void rstats_add(struct rstats *s, const char *tier, const char *target, const char *rule,
                int fell_back, int64_t input, int64_t output, int64_t nusd)
{
    (void)s, (void)tier, (void)target, (void)rule, (void)fell_back, (void)input, (void)output;
    (void)nusd;
}
