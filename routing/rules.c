/*
 * rules: to be written (issue 12). See route.h.
 */
#include "routing/route.h"
#include <string.h>

void route_features_read(const cJSON *body, enum conf_format f, struct route_features *out)
{
    (void)body;
    (void)f;
    memset(out, 0, sizeof(*out));
}

void route_features_free(struct route_features *f)
{
    (void)f;
}
