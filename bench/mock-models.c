/*
 * tokengate-mock: behaviour by model, for fallback and latency tests. POST
 * /_mock/models sets a rule for a model name (the body's "model" of the
 * requests it applies to): a status, a Retry-After, a fault, a delay before
 * the answer, for a number of requests or always. A request whose model has a
 * rule is served as if the rule's headers had been sent (x-mock-status,
 * x-mock-retry-after, x-mock-fault, x-mock-delay-ms), over what it sent.
 * Also the requests counted by model (/_mock/stats "by_model"), and the
 * requests held back by a delay.
 */
#include "mock.h"

/* A request waiting out x-mock-delay-ms; owned by m->delayed until it fires. */
struct delayed {
    TAILQ_ENTRY(delayed) next;
    struct mock *m;
    struct evhttp_request *req;
    struct event *ev;
    int ep, anth;
    cJSON *body; /* the parsed request body, or NULL; handed to fire */
    delay_fn *fire;
};

/*
 * A rule's members: JSON name, the header it stands for (NULL: none), and the
 * range of its integer value, or lo > hi for a string naming a fault.
 */
static const struct {
    const char *name, *header;
    long lo, hi;
} members[] = {
    {"status", "x-mock-status", 200, 599}, {"retry_after", "x-mock-retry-after", 0, 86400},
    {"fault", "x-mock-fault", 1, 0},       {"delay_ms", "x-mock-delay-ms", 0, 3600000},
    {"times", NULL, -1, 1000000000},
};

/* ---- rules ---- */

/*
 * Checks one rule r; returns NULL, or why it is refused (in why, size
 * bytes). A rule is an object with a model string and any of members.
 */
static const char *rule_bad(const cJSON *r, char *why, size_t size)
{
    const cJSON *v;
    long long n;
    size_t i;

    if (!cJSON_IsObject(r) || !cJSON_IsString(jget(r, "model")) || !*jget(r, "model")->valuestring)
        return "mock: a model rule is an object with a non-empty \"model\" string";
    cJSON_ArrayForEach(v, r)
    {
        for (i = 0; i < NELEM(members) && strcmp(v->string, members[i].name) != 0; i++)
            ;
        if (strcmp(v->string, "model") == 0)
            continue;
        if (i == NELEM(members)) {
            snprintf(why, size,
                     "mock: unknown member \"%.40s\" (model, status, retry_after, fault, "
                     "delay_ms, times)",
                     v->string);
            return why;
        }
        if (members[i].lo > members[i].hi) {
            if (!cJSON_IsString(v) || fault_lookup(v->valuestring) == F_NONE) {
                snprintf(why, size, "mock: \"fault\" must name a fault (see --help)");
                return why;
            }
        } else if (!jint(v, &n) || n < members[i].lo || n > members[i].hi) {
            snprintf(why, size, "mock: \"%s\" must be an integer in %ld..%ld", members[i].name,
                     members[i].lo, members[i].hi);
            return why;
        }
    }
    return NULL;
}

/*
 * Sets the rules of body (one rule object, or an array of them), each
 * replacing the model's rule; a rule with nothing but "model" removes it.
 * All or nothing: returns NULL, or why none was set.
 */
static const char *rules_set(struct mock *m, const cJSON *body, char *why, size_t size)
{
    const cJSON *one = cJSON_IsObject(body) ? body : NULL, *r;
    const char *bad;
    int added = 0;

    if (!one && !cJSON_IsArray(body))
        return "mock: POST /_mock/models takes a rule object or an array of them";
    for (r = one ? one : body->child; r; r = one ? NULL : r->next) {
        if ((bad = rule_bad(r, why, size)))
            return bad;
        added += !jget(m->rules, jget(r, "model")->valuestring);
    }
    if (cJSON_GetArraySize(m->rules) + added > MOCK_MAX_MODELS)
        return "mock: at most 64 models have a rule at once";
    for (r = one ? one : body->child; r; r = one ? NULL : r->next) {
        const char *model = jget(r, "model")->valuestring;
        cJSON_DeleteItemFromObjectCaseSensitive(m->rules, model);
        if (cJSON_GetArraySize(r) > 1)
            jadd(m->rules, model, cJSON_Duplicate(r, 1));
    }
    return NULL;
}

/*
 * Serves /_mock/models: GET lists the rules ({"models": {MODEL: rule}}, with
 * the times left); POST sets them (see rules_set()) and lists them, or
 * answers 400 with why.
 */
void models_hook(struct mock *m, struct evhttp_request *req, int post)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char why[160];
    const char *bad = NULL;
    cJSON *body = NULL, *r;
    size_t len;

    if (post) {
        len = evbuffer_get_length(in);
        if (evbuffer_add(in, "", 1) == 0) /* json_parse() wants a NUL after the text */
            body = cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), len);
        bad = body ? rules_set(m, body, why, sizeof(why)) : "mock: the body is not JSON";
        cJSON_Delete(body);
    }
    if (bad) {
        reply_error(req, 0, 400, bad);
        return;
    }
    r = cJSON_CreateObject();
    jadd(r, "models", cJSON_Duplicate(m->rules, 1));
    reply_json(req, 200, r);
}

/* Clears the rules and the counts by model (/_mock/reset). */
void models_reset(struct mock *m)
{
    while (m->rules->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(m->rules, m->rules->child));
    while (m->by_model->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(m->by_model, m->by_model->child));
}

/* Sets input header name to value, in place of any the request sent. */
static void header_set(struct evkeyvalq *ih, const char *name, const char *value)
{
    while (evhttp_find_header(ih, name))
        evhttp_remove_header(ih, name);
    evhttp_add_header(ih, name, value);
}

/*
 * Counts the request by its body's model (at most MOCK_MAX_PATHS models, the
 * rest as "(other)"), and when that model has a rule with times left, sets
 * the rule's headers on the request and counts one of its times.
 */
void models_apply(struct mock *m, struct evhttp_request *req, const cJSON *body)
{
    const char *model = cJSON_GetStringValue(jget(body, "model"));
    int full = cJSON_GetArraySize(m->by_model) >= MOCK_MAX_PATHS;
    cJSON *n, *rule, *times, *v;
    char num[24];
    size_t i;

    if (!model)
        return;
    n = jget(m->by_model, model);
    if (!n && full)
        n = jget(m->by_model, "(other)");
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else
        cJSON_AddNumberToObject(m->by_model, full ? "(other)" : model, 1);
    if (!(rule = jget(m->rules, model)))
        return;
    times = jget(rule, "times");
    if (times && times->valuedouble == 0)
        return;
    if (times && times->valuedouble > 0)
        cJSON_SetNumberValue(times, times->valuedouble - 1);
    for (i = 0; i < NELEM(members); i++) {
        if (!members[i].header || !(v = jget(rule, members[i].name)))
            continue;
        if (cJSON_IsString(v))
            header_set(evhttp_request_get_input_headers(req), members[i].header, v->valuestring);
        else {
            snprintf(num, sizeof(num), "%.0f", v->valuedouble);
            header_set(evhttp_request_get_input_headers(req), members[i].header, num);
        }
    }
}

/* ---- delays ---- */

static void delayed_free(struct delayed *d)
{
    TAILQ_REMOVE(&d->m->delayed, d, next);
    d->m->ndelayed--;
    if (d->ev)
        event_free(d->ev);
    free(d);
}

static void delay_fire(evutil_socket_t fd, short what, void *arg)
{
    struct delayed *d = arg;
    struct mock *m = d->m;
    struct evhttp_request *req = d->req;
    delay_fn *fire = d->fire;
    cJSON *body = d->body;
    int ep = d->ep, anth = d->anth;

    (void)fd;
    (void)what;
    delayed_free(d);
    fire(m, req, ep, anth, body);
}

/*
 * Holds req for ms milliseconds, then calls fire(m, req, ep, anth, body),
 * which owns body from then on. Nothing is read or sent meanwhile (evhttp
 * does not notice a peer that goes; the answer then fails to be written).
 * Returns 0, or -1 when MOCK_MAX_DELAYED requests wait already or out of
 * memory (body is then still the caller's).
 */
int delay_start(struct mock *m, struct evhttp_request *req, long ms, int ep, int anth, cJSON *body,
                delay_fn *fire)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct delayed *d;

    if (m->ndelayed >= MOCK_MAX_DELAYED || !(d = calloc(1, sizeof(*d))))
        return -1;
    d->m = m;
    d->req = req;
    d->ep = ep;
    d->anth = anth;
    d->body = body;
    d->fire = fire;
    TAILQ_INSERT_TAIL(&m->delayed, d, next);
    m->ndelayed++;
    if (!(d->ev = evtimer_new(m->base, delay_fire, d)) || evtimer_add(d->ev, &tv) < 0) {
        delayed_free(d);
        return -1;
    }
    return 0;
}

/*
 * Frees the requests still waiting (at exit, before the evhttp, which frees
 * the requests themselves with their connections).
 */
void delay_free_all(struct mock *m)
{
    struct delayed *d;

    while ((d = TAILQ_FIRST(&m->delayed))) {
        cJSON_Delete(d->body);
        delayed_free(d);
    }
}
