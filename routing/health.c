/*
 * health: to be written (issue 12). See health.h.
 */
#include "routing/health.h"

struct route_health *route_health_new(void)
{
    return NULL;
}

void route_health_free(struct route_health *h)
{
    (void)h;
}

int route_health_usable(struct route_health *h, const struct conf_routing *cfg,
                        const char *target, int64_t now_us, int *probe, int *retry_after_s)
{
    (void)h, (void)cfg, (void)target, (void)now_us, (void)probe, (void)retry_after_s;
    return 1;
}

void route_health_report(struct route_health *h, const struct conf_routing *cfg,
                         const char *target, enum route_outcome o, int64_t ttfb_us,
                         int64_t total_us, int64_t retry_after_ms, int64_t now_us)
{
    (void)h, (void)cfg, (void)target, (void)o, (void)ttfb_us, (void)total_us;
    (void)retry_after_ms, (void)now_us;
}

int64_t route_health_p90_ms(struct route_health *h, const char *target, int first_byte)
{
    (void)h, (void)target, (void)first_byte;
    return -1;
}
