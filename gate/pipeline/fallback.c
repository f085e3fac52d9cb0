/*
 * fallback: the targets of a request's route, one after the other. See fallback.h.
 */
#include "gate/pipeline/fallback.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "gate/budget/budget.h"
#include "gate/core/worker.h"
#include "gate/pipeline/completion.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"
#include "gate/util/wordscan.h"
#include "gate/util/jsonmem.h"
#include "routing/rstats.h"

static const char *header_of(void *arg, const char *name)
{
    const struct http_header *h = req_header(arg, name);
    return h != NULL ? h->value : NULL;
}

static int64_t input_tokens(void *arg, const struct conf_model *m)
{
    return tcount_peek_input(arg, m);
}

void route_input_of(struct gate_req *req, struct route_input *in)
{
    struct gate_server *srv = req->w->srv;
    struct budget_book *book = srv->book;
    struct outcap oc;
    char msg[160];

    memset(in, 0, sizeof(*in));
    in->conf = req->conf;
    in->model = req->model;
    in->body = req->json;
    in->format = req->client_api->format;
    in->translatable =
        req->client_api == &api_openai_chat || req->client_api == &api_anthropic_messages;
    in->header = header_of;
    in->header_arg = req;
    in->input_tokens = input_tokens;
    in->count_arg = req;
    in->output_allowance = outcap_read(req->client_api, req->json, &oc, msg, sizeof(msg)) == 0
                               ? oc.value
                               : -1; /* a bad cap is refused by admit */
    in->budget_used = -1;
    /* a bound of the input for the context guard: its bytes, with a margin for the overheads
     * of messages, unless something counts more than its bytes (images, files, audio) */
    size_t blen = evbuffer_get_length(req->msg.body);
    const char *raw = (const char *)evbuffer_pullup(req->msg.body, -1); /* pulled up: no copy */
    static const char *const media_words[] = {"image", "file", "audio", "document"};
    const int nmedia = (int)(sizeof(media_words) / sizeof(media_words[0]));
    int media = raw == NULL || wordscan_any(raw, blen, media_words, nmedia);
    in->input_bound = media ? 0 : (int64_t)blen + 256;
    in->max_latency_ms = -1;
    in->label = req->rt.label;
    in->health = srv->health;
    in->now_us = gate_now_us();
    if (book != NULL && req->agent >= 0) {
        int downgrade;
        in->agent = budget_scope_name(book, req->agent);
        in->team = budget_scope_at_level(book, req->agent, CONF_LEVEL_TEAM);
        in->department = budget_scope_at_level(book, req->agent, CONF_LEVEL_DEPARTMENT);
        budget_routing_policy(book, req->agent, &downgrade, &in->prefer_cost, &in->max_latency_ms);
        if (req->conf->routing.needs_budget)
            in->budget_used = budget_path_used(book, req->agent, gate_wall_now());
    }
    in->sticky = in->agent != NULL ? route_sticky(in->agent) /* as route --explain */
                                   : XXH3_64bits(req->id, strlen(req->id));
}

/* Whether candidate c can take req's body: one of the other format only when the translation
 * can express it (xlate_check: not when it has a field without an equivalent, such as
 * logprobs). */
static int can_take(const struct gate_req *req, const struct route_cand *c)
{
    char why[200];

    if (!c->translate)
        return 1;
    enum xlate_dir dir =
        req->client_api == &api_openai_chat ? XLATE_OPENAI_TO_ANTHROPIC : XLATE_ANTHROPIC_TO_OPENAI;
    return xlate_check(dir, req->json, why, sizeof(why)) == NULL;
}

/* The index of the first candidate from the next on that can take req's body, or -1. */
static int next_able(const struct gate_req *req)
{
    const struct route_decision *d = &req->rt.d;

    for (int i = d->next; i < d->ncand; i++)
        if (can_take(req, &d->cand[i]))
            return i;
    return -1;
}

int route_use_next(struct gate_req *req)
{
    struct route_decision *d = &req->rt.d;

    if (d->next >= d->ncand)
        return -1;
    int i = next_able(req);
    if (i < 0)
        i = d->next; /* none can: the next, whose translation says why (a 400 naming the field) */
    for (; d->next < i; d->next++) /* passed over: a probe it took goes back */
        route_health_unprobe(req->w->srv->health, d->cand[d->next].model->name);
    const struct route_cand *c = &d->cand[d->next++];
    req->cm = c->model;
    req->prov = c->model->provider;
    if (!c->translate) {
        req->upstream_api = req->client_api;
        req->rt.xlate = XLATE_NONE;
    } else if (req->client_api == &api_openai_chat) {
        req->upstream_api = &api_anthropic_messages;
        req->rt.xlate = XLATE_OPENAI_TO_ANTHROPIC;
    } else {
        req->upstream_api = &api_openai_chat;
        req->rt.xlate = XLATE_ANTHROPIC_TO_OPENAI;
    }
    return 0;
}

int fallback_possible(const struct gate_req *req)
{
    int cap = req->conf->routing.attempts;

    if (cap > REQ_MAX_ATTEMPTS)
        cap = REQ_MAX_ATTEMPTS;
    return req->rt.routed && req->conn != NULL && !req->head_sent && !req->draining &&
           req->rt.nattempts + 2 <= cap && next_able(req) >= 0;
}

/* Tells health how the attempt in use ended, once. */
static void report(struct gate_req *req, enum route_outcome o, int64_t retry_after_ms)
{
    struct route_health *h = req->w->srv->health;
    int64_t now = gate_now_us();

    if (h == NULL || req->cm == NULL || req->rt.reported || req->rt.t_sent == 0)
        return;
    req->rt.reported = 1;
    route_health_report(h, &req->conf->routing, req->cm->name, o,
                        req->rt.t_head ? req->rt.t_head - req->rt.t_sent : -1, now - req->rt.t_sent,
                        retry_after_ms, now);
}

/* On the worker's completion queue: the attempt given up is charged and recorded, and the
 * table runs again from count on the next candidate. */
static void fallback_run(struct completion *c)
{
    struct gate_req *req = (struct gate_req *)((char *)c - offsetof(struct gate_req, cq));
    struct req_attempt *at = &req->rt.attempts[req->rt.nattempts];
    int count = pipeline_stage_index(req->pl, "count");

    req->phase = REQ_DISPATCHED;
    spend_attempt_close(req, at);
    req->rt.nattempts++;
    req_reset_exchange(req);
    if (route_use_next(req) < 0 || count < 0) {
        req_fail(req, APIERR_BAD_GATEWAY, at->reason); /* fallback_possible said there was one */
        return;
    }
    req_memory_bound(req); /* as stage_body set it, until prepare */
    req->stage = count - 1;
    pipeline_resume(req, STAGE_NEXT);
}

int fallback_start(struct gate_req *req, enum route_outcome o, const char *why, int status,
                   int64_t retry_after_ms)
{
    report(req, o, retry_after_ms);
    if (!fallback_possible(req))
        return 0;
    struct req_attempt *at = &req->rt.attempts[req->rt.nattempts];
    at->target = req->cm->name;
    at->reason = arena_strndup(req->arena, why, strlen(why));
    at->status = status;
    if (at->reason == NULL)
        at->reason = "failed";
    req->phase = REQ_WAITING; /* fallback_run owns it now: a client that leaves only clears conn */
    completion_post(req->w->cq, &req->cq, fallback_run);
    return 1;
}

/* The candidates of req's route from index i on will not be tried: each gives back the probe
 * that listing it may have taken (route.c lists a half-open target only with its probe, at the
 * front), so that the next request probes it rather than after the lost-probe delay. */
static void unprobe_from(struct gate_req *req, int i)
{
    struct route_health *h = req->w->srv->health;
    const struct route_decision *d = &req->rt.d;

    if (h == NULL || !req->rt.routed)
        return;
    for (; i >= 0 && i < d->ncand; i++)
        route_health_unprobe(h, d->cand[i].model->name);
}

/* The name of the tier of the target in use, or NULL for a target outside tiers. */
static const char *tier_in_use(const struct gate_req *req)
{
    const struct route_decision *d = &req->rt.d;
    int t = d->next > 0 ? d->cand[d->next - 1].tier : -1;

    return t >= 0 ? req->conf->routing.tiers[t].name : NULL;
}

void route_finish(struct gate_req *req)
{
    struct gate_server *srv = req->w->srv;
    const struct route_decision *d = &req->rt.d;

    if (srv->health != NULL && req->cm != NULL && req->rt.t_sent == 0)
        route_health_unprobe(srv->health, req->cm->name); /* a probe it held goes back */
    unprobe_from(req, d->next); /* and those of the candidates never taken */
    if (req->up_status != 0) {
        enum route_outcome o = req->up_status == 429                            ? ROUTE_FAIL_LIMITED
                               : req->up_status >= 500 || req->up_status == 529 ? ROUTE_FAIL_STATUS
                                                                                : ROUTE_OK_ANSWER;
        report(req, o, 0);
    }
    if (srv->rstats == NULL || !req->rt.routed || req->cm == NULL)
        return;
    const char *tier = tier_in_use(req);
    int64_t in = req->usage.have ? req->usage.input : req->tc.input > 0 ? req->tc.input : 0;
    int64_t out = req->usage.have ? req->usage.output : (int64_t)req->tc.output;
    int64_t nusd = req->charged_nusd;
    for (int i = 0; i < req->rt.nattempts; i++)
        nusd += req->rt.attempts[i].nusd;
    rstats_add(srv->rstats, tier ? tier : "", req->cm->name, d->rule_name ? d->rule_name : "",
               req->rt.nattempts > 0, in, out, nusd);
}

/* Adds the attempts given up to array a (NULL: nothing): target, reason, status, what each
 * was charged. */
static void add_attempts(const struct gate_req *req, cJSON *a)
{
    for (int i = 0; a != NULL && i < req->rt.nattempts; i++) {
        const struct req_attempt *at = &req->rt.attempts[i];
        cJSON *o = cJSON_CreateObject();
        char cost[48];
        int64_t n = at->nusd > 0 ? at->nusd : 0;
        cJSON_AddStringToObject(o, "target", at->target);
        cJSON_AddStringToObject(o, "reason", at->reason);
        cJSON_AddNumberToObject(o, "status", at->status);
        cJSON_AddNumberToObject(o, "tokens_charged", (double)at->tokens);
        /* dollars from whole nano-dollars, in digits, as the record's own cost_usd */
        snprintf(cost, sizeof(cost), "%lld.%09lld", (long long)(n / 1000000000),
                 (long long)(n % 1000000000));
        cJSON_AddRawToObject(o, "cost_usd", cost);
        cJSON_AddItemToArray(a, o);
    }
}

void route_rec_fields(struct gate_req *req, const char **rule, const char **tier,
                      const char **attempts, const char **translation)
{
    const struct route_decision *d = &req->rt.d;

    *rule = *tier = *attempts = *translation = NULL;
    if (!req->rt.routed)
        return;
    *rule = d->rule_name;
    *tier = tier_in_use(req);
    *translation = xlate_name(req->rt.xlate);
    if (req->rt.nattempts == 0)
        return;
    struct arena *prev = jsonmem_enter(req->arena);
    cJSON *a = cJSON_CreateArray();
    add_attempts(req, a);
    *attempts = a != NULL ? cJSON_PrintUnformatted(a) : NULL; /* in the arena */
    jsonmem_leave(prev);
}

void route_log(struct gate_req *req, cJSON *rec)
{
    const struct route_decision *d = &req->rt.d;

    if (!req->rt.routed)
        return;
    cJSON *r = cJSON_AddObjectToObject(rec, "route");
    if (r == NULL)
        return;
    cJSON_AddStringToObject(r, "asked", req->model ? req->model : "");
    cJSON_AddStringToObject(r, "via", d->via ? d->via : "model");
    if (d->rule_name != NULL)
        cJSON_AddStringToObject(r, "rule", d->rule_name);
    if (tier_in_use(req) != NULL)
        cJSON_AddStringToObject(r, "tier", tier_in_use(req));
    if (req->cm != NULL)
        cJSON_AddStringToObject(r, "target", req->cm->name);
    if (req->rt.label != NULL)
        cJSON_AddStringToObject(r, "label", req->rt.label);
    if (req->rt.downgrades > 0)
        cJSON_AddNumberToObject(r, "downgrades", req->rt.downgrades);
    if (req->rt.xlate != XLATE_NONE)
        cJSON_AddStringToObject(r, "translation", xlate_name(req->rt.xlate));
    add_attempts(req, cJSON_AddArrayToObject(r, "attempts"));
}

int route_downgrade(struct gate_req *req)
{
    struct budget_book *book = req->w->srv->book;
    struct route_decision *d = &req->rt.d;
    struct route_input in;
    int downgrade = 0, prefer_cost;
    int64_t max_latency_ms;

    if (!req->rt.routed || book == NULL || req->agent < 0 || d->next == 0)
        return 0;
    int tier = d->cand[d->next - 1].tier;
    if (tier <= 0)
        return 0; /* a concrete model, or the cheapest tier already */
    budget_routing_policy(book, req->agent, &downgrade, &prefer_cost, &max_latency_ms);
    if (!downgrade)
        return 0;
    route_input_of(req, &in);
    unprobe_from(req, d->next - 1); /* the target refused here (never sent) and the rest */
    d->tier_up = 0; /* not back up to the tier whose price did not fit */
    struct arena *prev = jsonmem_enter(req->arena);
    enum route_rc rc = route_tier(&in, tier - 1, d, NULL);
    jsonmem_leave(prev);
    if (rc != ROUTE_OK || route_use_next(req) < 0)
        return 0;
    req->rt.downgrades++;
    req->nedits = 0;
    memset(&req->resv, 0, sizeof(req->resv));
    return 1;
}

const char *route_served_name(const struct gate_req *req)
{
    const struct conf_model *m = req->cm;

    return m->upstream_model != NULL ? m->upstream_model : m->wildcard ? req->model : m->name;
}

int route_translate(struct gate_req *req, char *msg, size_t cap)
{
    const char *served = route_served_name(req);
    int64_t max_tokens = req->cm->max_output_tokens > 0 ? req->cm->max_output_tokens
                                                        : budget_model_cap(served);

    if (max_tokens <= 0)
        max_tokens = 4096; /* a model of unknown family: its provider's usual floor */
    req->rt.xdoc = xlate_request(req->rt.xlate, req->json, served, max_tokens, req->stream, msg,
                                 cap);
    if (req->rt.xdoc != NULL)
        return 0;
    return strcmp(msg, "out of memory") == 0 ? -1 : 1;
}
