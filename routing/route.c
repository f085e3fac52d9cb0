/*
 * route: to be written (issue 12). See route.h.
 */
#include "routing/route.h"
#include <stdlib.h>
#include <string.h>

/* placeholder until the rule engine lands: a concrete model entry, as before routing */
enum route_rc route_decide(const struct route_input *in, struct route_decision *d,
                           struct route_trace *trace)
{
    const struct conf_model *m = conf_find_model(in->conf, in->model);

    (void)trace;
    memset(d, 0, sizeof(*d));
    d->rule = -1;
    d->tier = -1;
    d->max_output_tokens = -1;
    if (m == NULL)
        return ROUTE_NOT_FOUND;
    d->cand[0].model = m;
    d->cand[0].tier = -1;
    d->cand[0].translate = m->provider->format != in->format;
    d->ncand = 1;
    d->via = "model";
    return ROUTE_OK;
}

enum route_rc route_tier(const struct route_input *in, int tier, struct route_decision *d,
                         struct route_trace *trace)
{
    (void)in;
    (void)tier;
    (void)d;
    (void)trace;
    return ROUTE_NO_FIT;
}

void route_note(struct route_trace *t, const char *fmt, ...)
{
    (void)t;
    (void)fmt;
}

void route_trace_free(struct route_trace *t)
{
    free(t->buf);
}
