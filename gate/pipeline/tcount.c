#include "gate/pipeline/tcount.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cstats.h"
#include "cache/prefixcount.h"
#include "conf/conf.h"
#include "gate/pipeline/req.h"
#include "gate/core/worker.h"
#include "gate/util/clock.h"
#include "tokenizer/chat.h"

/* Output text is counted in slices at most this long, cut where a piece must end. */
#define PENDING_CAP (64 * 1024)

/* The tokenizer model entry m counts req's input with (m NULL: the model asked for's entry,
 * else o200k_base), the model name it counts for and the calibration. */
static const tok_enc *enc_of(const struct gate_req *req, const struct conf_model *m,
                             const char **model, double *factor)
{
    const char *name;

    if (m == NULL)
        m = conf_find_model(req->conf, req->model);
    if (m == NULL) {
        *model = req->model;
        *factor = 1.0;
        return tok_encoding("o200k_base");
    }
    /* a wildcard entry stands for the name asked; a named one for itself */
    *model = m->wildcard ? req->model : m->upstream_model ? m->upstream_model : m->name;
    *factor = m->calibration > 0 ? m->calibration : 1.0;
    name = m->encoding != NULL ? m->encoding : tok_encoding_for_model(*model);
    return tok_encoding(name);
}

/* The memo of a count, over srv->prefix's, noting whether any lookup found a prefix. */
struct prefix_probe {
    tok_prefix_memo inner;
    int found;
};

static int probe_get(void *arg, const uint8_t key[16], tok_prefix_val *out)
{
    struct prefix_probe *p = arg;
    int found = p->inner.get(p->inner.arg, key, out);

    p->found |= found;
    return found;
}

static void probe_put(void *arg, const uint8_t key[16], const tok_prefix_val *v)
{
    struct prefix_probe *p = arg;

    p->inner.put(p->inner.arg, key, v);
}

/* tok_count_request, through the prefix-count memo when cache.prefix_counts is on (chat and
 * Messages); a hit or a miss of it counted in srv->cstats. */
static int count_request(struct gate_req *req, const tok_enc *enc, tok_api api,
                         const cJSON *body, const char *model, double factor, tok_count_result *r)
{
    struct gate_server *srv = req->w != NULL ? req->w->srv : NULL;
    struct prefix_probe p = {0};
    tok_prefix_memo memo = {probe_get, probe_put, &p};
    tok_count_opts opts = {.memo = &memo};
    int rc;

    if (srv == NULL || srv->prefix == NULL || req->conf == NULL ||
        !req->conf->cache.prefix_counts || (api != TOK_API_CHAT && api != TOK_API_MESSAGES))
        return tok_count_request(enc, api, body, model, factor, r);
    prefixcount_memo(srv->prefix, &p.inner);
    rc = tok_count_request_ex(enc, api, body, model, factor, &opts, r);
    if (srv->cstats != NULL)
        cache_stats_add(srv->cstats, CACHE_K_PREFIX, CONF_LEVEL_ORG,
                        p.found ? CACHE_HIT : CACHE_MISS);
    return rc;
}

/* The count of req's input with tokenizer enc, model name model and calibration factor,
 * memoized in req->rt (routing asks before the count stage, for each target it weighs): the
 * index of its memo entry, or -1 when the memo is full (r then holds the count). */
static int count_memo(struct gate_req *req, const tok_enc *enc, const char *model, double factor,
                      tok_count_result *r)
{
    struct req_route *rt = &req->rt;
    int i;

    for (i = 0; i < rt->ncount; i++)
        if (rt->count_enc[i] == enc && rt->count_factor[i] == factor)
            return i;
    memset(r, 0, sizeof(*r));
    int64_t t0 = gate_now_us();
    int ok = count_request(req, enc, (tok_api)req->client_api->tok_api, req->json, model, factor,
                           r) == 0;
    int64_t took = gate_now_us() - t0;
    if (i >= (int)(sizeof(rt->count_memo) / sizeof(rt->count_memo[0]))) {
        if (!ok)
            r->tokens = UINT64_MAX;
        return -1;
    }
    rt->count_enc[i] = enc;
    rt->count_factor[i] = factor;
    rt->count_memo[i] = ok ? (int64_t)r->tokens : -1;
    rt->count_est[i] = r->estimated;
    rt->count_approx[i] = r->approximate;
    rt->count_took[i] = took;
    rt->ncount++;
    return i;
}

int64_t tcount_peek_input(struct gate_req *req, const struct conf_model *m)
{
    const char *model;
    double factor;
    tok_count_result r;
    const tok_enc *enc = enc_of(req, m, &model, &factor);

    if (enc == NULL)
        return -1;
    int i = count_memo(req, enc, model, factor, &r);
    if (i < 0)
        return r.tokens == UINT64_MAX ? -1 : (int64_t)r.tokens;
    return req->rt.count_memo[i];
}

void tcount_input(struct gate_req *req, const struct conf_model *m)
{
    struct tcount *tc = &req->tc;
    const char *model;
    tok_count_result r;
    int64_t t0 = gate_now_us();
    int counted_before = 0;

    tc->enc = enc_of(req, m, &model, &tc->factor);
    tc->input = -1;
    tc->approximate = 0;
    tc->estimated = 0;
    if (tc->enc == NULL)
        return;
    if (req->rt.xdoc != NULL) {
        /* the request as the target gets it, in its API (routing translated it) */
        tc->api = req->upstream_api->tok_api;
        if (count_request(req, tc->enc, (tok_api)tc->api, req->rt.xdoc, model, tc->factor, &r) ==
            0) {
            tc->input = (int64_t)r.tokens;
            tc->approximate = r.approximate;
            tc->estimated = r.estimated;
        }
        tc->count_us = gate_now_us() - t0;
        return;
    }
    tc->api = req->client_api->tok_api; /* req->json is the client's body */
    int n_before = req->rt.ncount;
    int i = count_memo(req, tc->enc, model, tc->factor, &r);
    counted_before = i >= 0 && i < n_before;
    if (i >= 0) {
        tc->input = req->rt.count_memo[i];
        tc->approximate = req->rt.count_approx[i];
        tc->estimated = req->rt.count_est[i];
    } else if (r.tokens != UINT64_MAX) {
        tc->input = (int64_t)r.tokens;
        tc->approximate = r.approximate;
        tc->estimated = r.estimated;
    }
    /* no count is cut short by a U+0000 in a string (cJSON ends the string there): stage_body
     * refuses such a body */
    /* the time counting took, when routing counted it before (the memo) */
    tc->count_us = counted_before ? req->rt.count_took[i] : gate_now_us() - t0;
}

/* Counts the pending text up to n bytes. */
static void count_pending(struct tcount *tc, size_t n)
{
    uint64_t k;

    if (n == 0)
        return;
    if (tok_count(tc->enc, tc->pending, n, 0, &k) != 0)
        tc->out_failed = 1;
    tc->output += k;
    memmove(tc->pending, tc->pending + n, tc->pending_len - n);
    tc->pending_len -= n;
}

/*
 * Where the pending text may be cut without changing its pieces: after a line feed followed
 * by a character that is not white space (no pattern lets a piece run on past such a line
 * feed, in any encoding here). 0 when there is none.
 */
static size_t safe_cut(const char *s, size_t n)
{
    for (size_t i = n; i-- > 1;) {
        unsigned char c = (unsigned char)s[i];
        if (s[i - 1] == '\n' && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' &&
            c != '\f' && c < 0x80)
            return i;
    }
    return 0;
}

/* Adds output text. */
static void add_text(struct tcount *tc, const char *s, size_t n)
{
    if (tc->enc == NULL || n == 0)
        return;
    while (n > 0) {
        size_t room, take;
        if (tc->pending == NULL) {
            tc->pending = malloc(PENDING_CAP);
            if (tc->pending == NULL) {
                tc->out_failed = 1;
                return;
            }
            tc->pending_cap = PENDING_CAP;
        }
        room = tc->pending_cap - tc->pending_len;
        if (room == 0) {
            size_t cut = safe_cut(tc->pending, tc->pending_len);
            /* no cut: count it all; the one piece split here may differ by a token */
            count_pending(tc, cut ? cut : tc->pending_len);
            continue;
        }
        take = n < room ? n : room;
        memcpy(tc->pending + tc->pending_len, s, take);
        tc->pending_len += take;
        tc->added += take;
        s += take;
        n -= take;
    }
}

/* The dialects' api_text_fn. */
static void take_text(void *arg, const char *s, size_t n)
{
    add_text(arg, s, n);
}

void tcount_event(struct gate_req *req, const char *name, const cJSON *data)
{
    if (req->tc.enc != NULL)
        req->upstream_api->text_event(name, data, take_text, &req->tc);
}

void tcount_body(struct gate_req *req, const cJSON *doc)
{
    if (req->tc.enc != NULL)
        req->upstream_api->text_body(doc, take_text, &req->tc);
}

void tcount_text(struct gate_req *req, const char *s, size_t n)
{
    add_text(&req->tc, s, n);
}

/* An output count as charged: approximate counts take their calibration. */
static uint64_t calibrated(const struct tcount *tc, uint64_t n)
{
    return tc->approximate && tc->factor != 1.0 ? (uint64_t)ceil((double)n * tc->factor) : n;
}

int tcount_output_above(struct gate_req *req, uint64_t limit)
{
    struct tcount *tc = &req->tc;
    uint64_t k;

    if (tc->enc == NULL || calibrated(tc, tc->output + tc->pending_len) <= limit)
        return 0;
    /* count what can be counted for good: up to the last place a piece must end */
    size_t cut = tc->pending_len ? safe_cut(tc->pending, tc->pending_len) : 0;
    if (cut > 0)
        count_pending(tc, cut);
    if (calibrated(tc, tc->output) > limit)
        return 1;
    if (tc->pending_len == 0 || tc->added < tc->peek_at)
        return 0;
    /* the rest, without consuming it: its last piece may still grow */
    if (tok_count(tc->enc, tc->pending, tc->pending_len, 0, &k) != 0)
        return 0;
    uint64_t n = calibrated(tc, tc->output + k);
    if (n > limit)
        return 1;
    /* no token is shorter than a byte: it takes limit - n more bytes to pass the limit
     * (calibrated counts grow faster than their bytes by the factor) */
    double step = (double)(limit - n) / (tc->approximate && tc->factor > 1.0 ? tc->factor : 1.0);
    tc->peek_at = tc->added + (step < 1.0 ? 1 : (uint64_t)step);
    return 0;
}

static struct tcount_drift_entry *drift_slot(struct tcount_drift *d, const char *model)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->e[i].model, model) == 0)
            return &d->e[i];
    if (d->n == TCOUNT_MAX_MODELS || strlen(model) >= sizeof(d->e[0].model))
        return NULL;
    memset(&d->e[d->n], 0, sizeof(d->e[0]));
    strcpy(d->e[d->n].model, model);
    return &d->e[d->n++];
}

void tcount_finish(struct gate_req *req, struct tcount_drift *d)
{
    struct tcount *tc = &req->tc;
    struct tcount_drift_entry *slot;

    if (tc->enc == NULL)
        return;
    if (tc->pending != NULL) {
        count_pending(tc, tc->pending_len);
        free(tc->pending);
        tc->pending = NULL;
        tc->pending_len = tc->pending_cap = 0;
    }
    tc->output = calibrated(tc, tc->output);
    if (d == NULL || d->e == NULL || !req->usage.have || !req->usage.final ||
        req->usage.bad != NULL || req->model == NULL || tc->input < 0)
        return;
    pthread_mutex_lock(&d->lock);
    slot = drift_slot(d, req->model);
    if (slot == NULL) {
        d->overflow++;
    } else {
        slot->n_in++;
        slot->sum_in_diff += req->usage.input - tc->input;
        slot->sum_in_provider += (uint64_t)req->usage.input;
        slot->sum_in_gate += (uint64_t)tc->input;
        if (req->upstream_api->generates && !tc->out_failed) {
            slot->n_out++;
            slot->sum_out_diff += req->usage.output - (int64_t)tc->output;
        }
    }
    pthread_mutex_unlock(&d->lock);
}

void tcount_log(const struct gate_req *req, cJSON *rec)
{
    const struct tcount *tc = &req->tc;
    cJSON *c;

    if (tc->enc == NULL) {
        cJSON_AddNullToObject(rec, "count");
        return;
    }
    c = cJSON_AddObjectToObject(rec, "count");
    cJSON_AddStringToObject(c, "encoding", tok_name(tc->enc));
    if (tc->input >= 0)
        cJSON_AddNumberToObject(c, "input", (double)tc->input);
    else
        cJSON_AddNullToObject(c, "input");
    if (!req->upstream_api->generates || tc->out_failed)
        cJSON_AddNullToObject(c, "output");
    else
        cJSON_AddNumberToObject(c, "output", (double)tc->output);
    if (req->usage.have && tc->input >= 0)
        cJSON_AddNumberToObject(c, "input_diff", (double)(req->usage.input - tc->input));
    if (req->usage.have && req->upstream_api->generates && !tc->out_failed)
        cJSON_AddNumberToObject(c, "output_diff",
                                (double)(req->usage.output - (int64_t)tc->output));
    cJSON_AddBoolToObject(c, "approximate", tc->approximate);
    if (tc->estimated > 0)
        cJSON_AddNumberToObject(c, "estimated_parts", tc->estimated);
    cJSON_AddNumberToObject(c, "count_us", (double)tc->count_us);
}

int tcount_drift_init(struct tcount_drift *d)
{
    d->n = 0;
    d->overflow = 0;
    d->e = calloc(TCOUNT_MAX_MODELS, sizeof(*d->e));
    if (d->e == NULL)
        return -1;
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d->e);
        d->e = NULL;
        return -1;
    }
    return 0;
}

void tcount_drift_free(struct tcount_drift *d)
{
    if (d->e == NULL)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d->e);
    d->e = NULL;
}

void tcount_drift_status(struct tcount_drift *const *ds, int n, cJSON *doc)
{
    struct tcount_drift_entry *all = calloc(TCOUNT_MAX_MODELS, sizeof(*all));
    int nall = 0;
    cJSON *out = cJSON_AddObjectToObject(doc, "token_count_drift");

    if (all == NULL || out == NULL) {
        free(all);
        return;
    }
    for (int w = 0; w < n; w++) {
        struct tcount_drift *d = ds[w];
        if (d->e == NULL)
            continue;
        pthread_mutex_lock(&d->lock);
        for (int i = 0; i < d->n; i++) {
            int k;
            for (k = 0; k < nall && strcmp(all[k].model, d->e[i].model) != 0; k++)
                ;
            if (k == nall) {
                if (nall == TCOUNT_MAX_MODELS)
                    continue;
                memcpy(all[nall].model, d->e[i].model, sizeof(all[0].model));
                nall++;
            }
            all[k].n_in += d->e[i].n_in;
            all[k].n_out += d->e[i].n_out;
            all[k].sum_in_diff += d->e[i].sum_in_diff;
            all[k].sum_out_diff += d->e[i].sum_out_diff;
            all[k].sum_in_provider += d->e[i].sum_in_provider;
            all[k].sum_in_gate += d->e[i].sum_in_gate;
        }
        pthread_mutex_unlock(&d->lock);
    }
    for (int k = 0; k < nall; k++) {
        cJSON *m = cJSON_AddObjectToObject(out, all[k].model);
        cJSON_AddNumberToObject(m, "requests", (double)all[k].n_in);
        cJSON_AddNumberToObject(m, "mean_input_diff",
                                all[k].n_in ? (double)all[k].sum_in_diff / (double)all[k].n_in : 0);
        cJSON_AddNumberToObject(m, "mean_output_diff",
                                all[k].n_out ? (double)all[k].sum_out_diff / (double)all[k].n_out
                                             : 0);
        /* provider / gate: the calibration factor that would remove the input drift */
        if (all[k].sum_in_gate > 0)
            cJSON_AddNumberToObject(m, "input_ratio",
                                    round((double)all[k].sum_in_provider /
                                          (double)all[k].sum_in_gate * 1e4) /
                                        1e4);
    }
    free(all);
}
