/*
 * classify: the classifier's label of a request's last user message. See classify.h.
 *
 * A label not in the cache is asked of conf.routing.classifier with a request of the gate's
 * own, in the classifier provider's format, sent through the worker's pool for that provider
 * on an exchange of its own (struct classify_state, in the request's arena). The request
 * WAITs meanwhile; one path ends every outcome (cls_end): the timer and the exchange are gone,
 * the reservation settled, the ledger record submitted, the label set, and the route stage
 * posted again. The timer (conf.routing.classifier_timeout_ms) bounds the wait, so that end
 * always comes, also for a request whose client left (pipeline_resume finalizes it).
 */
#include "gate/pipeline/classify.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/api/dialect.h"
#include "gate/budget/journal.h"
#include "gate/budget/ledger.h"
#include "gate/budget/store.h"
#include "gate/core/worker.h"
#include "gate/http/headbuf.h"
#include "gate/pipeline/completion.h"
#include "gate/pipeline/pipeline.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"
#include "gate/upstream/poolset.h"
#include "gate/util/arena.h"
#include "gate/util/clock.h"
#include "gate/util/jsonmem.h"
#include "routing/labelcache.h"
#include "tokenizer/chat.h"

/* the user text sent to the classifier is cut to this many bytes (at a character's start) */
#define CLASSIFY_TEXT_MAX (8 * 1024)
/* the classifier answers one word: this many output tokens are asked for and reserved */
#define CLASSIFY_MAX_OUTPUT 5
/* an answer longer than this is not read (a classifier's answer is a few dozen bytes) */
#define CLASSIFY_ANSWER_MAX (64 * 1024)
/* the answer's text kept, at most: its first word is the label */
#define CLASSIFY_WORD_MAX 64

static const char CLASSIFY_PROMPT[] =
    "Classify the complexity of the user's request. Answer with exactly one word: simple "
    "(a greeting, small talk, a short factual question, a lookup), moderate (an explanation, a "
    "summary, a short piece of writing or code), or complex (multi-step reasoning, design, "
    "debugging, long or code-heavy input). Answer with the word only.";

enum cls_outcome {
    CLS_PENDING,  /* asked, no answer yet */
    CLS_ANSWERED, /* the classifier answered (with a label or not) */
    CLS_CACHED,
    CLS_TIMEOUT,
    CLS_FAILED,  /* an error status, a connection that failed, an answer that cannot be read */
    CLS_REFUSED, /* the budgets have no room for it, the ledger or journal cannot take it */
};

static const char *const outcome_names[] = {
    [CLS_PENDING] = "pending", [CLS_ANSWERED] = "answered", [CLS_CACHED] = "cached",
    [CLS_TIMEOUT] = "timeout", [CLS_FAILED] = "failed",     [CLS_REFUSED] = "refused",
};

struct cls_wait;

/* One request's classification, in its arena (req->rt.cls). */
struct classify_state {
    struct gate_req *req;
    struct upstream_exchange ex;
    struct event *timer;           /* the bound on the wait; NULL once over */
    struct cls_wait *wait;         /* a reservation the store answers later, or NULL */
    const struct conf_model *cm;   /* the classifier */
    const struct api_dialect *api; /* its provider's */
    const char *tenant;            /* the agent's name, "" for an open gate */
    const char *text;              /* what is classified (the cache's key), in the arena */
    size_t len;
    char id[96];      /* the request's id and "/classify" */
    const char *body; /* the classifier request's JSON, in the arena */
    size_t body_len;
    int64_t input; /* its input tokens, as the gate counts them */
    int approximate;
    struct budget_resv resv;
    uint32_t jslot;
    int tries;
    int status; /* the provider's, 0 before any */
    struct evbuffer *answer;
    int answer_over; /* the answer passed CLASSIFY_ANSWER_MAX */
    struct usage usage;
    const char *error; /* why it gave no label, for the record */
    double wall_start;
    int64_t t0;
    enum cls_outcome outcome;
    const char *label;
    int64_t ms, tokens_in, tokens_out, nusd; /* what it took and was charged */
};

/* A reservation in the store's hands (as spend.c's spend_wait): malloc'd, so that a
 * classification that stopped waiting can end while the store still holds r and why. */
struct cls_wait {
    struct completion cq;
    struct gate_worker *w;
    struct classify_state *st; /* NULL once it stopped waiting */
    struct budget_cont k;
    void (*fn)(void *arg);
    void *fn_arg;
    struct budget_resv r;
    struct budget_refusal why;
};

static void cls_send(struct classify_state *st);

/* ---- the end of every outcome ---------------------------------------------------------- */

/* What the classification is charged (tokens in, out, nano-dollars), by the rule requests are
 * charged by (spend_charge): a 2xx without usage is charged its counted input and the output
 * it may hold, and no less than its reservation (it was not read). */
static void cls_charge(struct classify_state *st)
{
    int64_t tokens, output;
    struct spend_basis b = {
        .u = &st->usage,
        .price = &st->cm->price,
        .answered = st->status >= 200 && st->status < 300,
        .sent_unanswered = st->status == 0 && st->ex.forwarded,
        .in = st->input,
        .out = CLASSIFY_MAX_OUTPUT,
        .unreadable = 1,
        .resv = &st->resv,
    };

    spend_charge(&b, &tokens, &output, &st->nusd);
    st->tokens_in = tokens - output;
    st->tokens_out = output;
}

/* Settles the reservation, counts the spend on the worker and, for a classification that was
 * sent, submits its ledger record. */
static void cls_settle(struct classify_state *st)
{
    struct gate_req *req = st->req;
    struct gate_server *srv = req->w->srv;
    const struct usage *u = &st->usage;
    struct budget_alert alerts[8];

    cls_charge(st);
    if (srv->book != NULL && st->resv.held) {
        st->resv.failed = st->outcome != CLS_ANSWERED;
        int na = budget_settle(srv->book, &st->resv, st->tokens_in + st->tokens_out, st->nusd,
                               gate_wall_now(), alerts, 8);
        if (na > 0)
            spend_raise_alerts(req, alerts, na);
    }
    struct gate_stats *gs = &req->w->stats;
    atomic_fetch_add_explicit(&gs->tokens_in, (uint64_t)st->tokens_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&gs->tokens_out, (uint64_t)st->tokens_out, memory_order_relaxed);
    atomic_fetch_add_explicit(&gs->cost_nusd, (uint64_t)st->nusd, memory_order_relaxed);
    if (srv->ledger == NULL || st->ex.request == NULL) {
        journal_clear(srv->journal, st->jslot);
        st->jslot = 0;
        return;
    }
    int a = req->agent;
    int ok = st->outcome == CLS_ANSWERED;
    struct ledger_rec rec = {
        .ts = st->wall_start,
        .id = st->id,
        .key_id = req->key_id[0] ? req->key_id : NULL,
        .agent = a >= 0 && srv->book ? budget_scope_name(srv->book, a) : NULL,
        .team = a >= 0 && srv->book ? budget_scope_at_level(srv->book, a, CONF_LEVEL_TEAM) : NULL,
        .department =
            a >= 0 && srv->book ? budget_scope_at_level(srv->book, a, CONF_LEVEL_DEPARTMENT) : NULL,
        .endpoint = "classifier",
        .model = st->cm->name,
        .served_model = st->cm->upstream_model ? st->cm->upstream_model : st->cm->name,
        .provider = st->cm->provider->name,
        .status = st->status                   ? st->status
                  : st->outcome == CLS_TIMEOUT ? 504
                                               : 502,
        .stream = 0,
        .in_own = st->input,
        .out_own = -1,
        .in_usage = u->have ? u->input : -1,
        .out_usage = u->have ? u->output : -1,
        .cached = u->cached,
        .cache_write = u->cache_write,
        .cache_write_1h = u->cache_write_1h,
        .tokens_charged = st->tokens_in + st->tokens_out,
        .cost_nusd = st->nusd,
        .reserved_tokens = st->resv.tokens,
        .latency_us = gate_now_us() - st->t0,
        .decision = "admitted",
        .error = ok ? NULL : st->error,
        .jslot = st->jslot,
    };
    if (ledger_submit(srv->ledger, &rec) < 0)
        fprintf(stderr, "tokengate: ledger: the record of request %s could not be queued\n",
                st->id);
}

/* The one end of a classification that was asked (or could not be): nothing of it stays live
 * (the timer, the exchange, its buffers), what it cost is settled and recorded, the label is
 * set, and the route stage runs again. */
static void cls_end(struct classify_state *st, enum cls_outcome outcome, const char *label)
{
    struct gate_req *req = st->req;

    if (st->outcome != CLS_PENDING)
        return;
    st->outcome = outcome;
    if (st->timer != NULL) {
        event_free(st->timer);
        st->timer = NULL;
    }
    upstream_cancel(&st->ex); /* nothing when it is over */
    if (st->wait != NULL) {
        st->wait->st = NULL; /* the store's late answer releases what it grants */
        st->wait = NULL;
    }
    st->ms = (gate_now_us() - st->t0) / 1000;
    if (st->ex.request != NULL || st->resv.held)
        cls_settle(st); /* sent, or reserved: charged and recorded */
    if (st->ex.request != NULL) {
        evbuffer_free(st->ex.request);
        st->ex.request = NULL;
    }
    if (st->answer != NULL) {
        evbuffer_free(st->answer);
        st->answer = NULL;
    }
    st->label = label;
    req->rt.label = label;
    pipeline_post_at(req, req->stage); /* the route stage again (a gone client: finalized) */
}

/* ---- the answer ------------------------------------------------------------------------ */

struct words {
    char buf[CLASSIFY_WORD_MAX];
    size_t n;
};

static void take_text(void *arg, const char *s, size_t n)
{
    struct words *w = arg;
    size_t room = sizeof(w->buf) - 1 - w->n;

    if (n > room)
        n = room;
    memcpy(w->buf + w->n, s, n);
    w->n += n;
    w->buf[w->n] = '\0';
}

/* The label the answer's first word names ("simple", "moderate", "complex"), else "". */
static const char *label_of(const char *text)
{
    static const char *const labels[] = {"simple", "moderate", "complex"};
    char word[16];
    size_t n = 0;

    while (*text && !((*text >= 'a' && *text <= 'z') || (*text >= 'A' && *text <= 'Z')))
        text++;
    while (((*text >= 'a' && *text <= 'z') || (*text >= 'A' && *text <= 'Z')) &&
           n < sizeof(word) - 1)
        word[n++] = (char)(*text++ | 0x20);
    word[n] = '\0';
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strcmp(word, labels[i]) == 0)
            return labels[i];
    return "";
}

static int on_head(void *arg, int status, const struct http_header *headers, int n)
{
    struct classify_state *st = arg;

    (void)headers;
    (void)n;
    st->status = status;
    return 0;
}

static int on_body(void *arg, const char *data, size_t len)
{
    struct classify_state *st = arg;

    if (st->answer_over)
        return 0;
    if (evbuffer_get_length(st->answer) + len > CLASSIFY_ANSWER_MAX) {
        st->answer_over = 1; /* read to its end (the connection stays good), not kept */
        return 0;
    }
    evbuffer_add(st->answer, data, len);
    return 0;
}

/* The exchange is over (the connection is back in its pool): the label, if the answer has
 * one. */
static void on_done(void *arg)
{
    struct classify_state *st = arg;
    struct gate_req *req = st->req;
    struct words text = {.n = 0};
    size_t len = evbuffer_get_length(st->answer);
    char msg[160];

    if (st->status < 200 || st->status >= 300) {
        snprintf(msg, sizeof(msg), "the classifier answered status %d", st->status);
        st->error = arena_strndup(req->arena, msg, strlen(msg));
        struct arena *prev = jsonmem_enter(req->arena);
        cJSON *doc = len > 0 && !st->answer_over
                         ? cJSON_ParseWithLength((const char *)evbuffer_pullup(st->answer, -1), len)
                         : NULL;
        if (doc != NULL)
            st->api->usage_body(doc, &st->usage); /* an error the provider billed */
        jsonmem_leave(prev);
        cls_end(st, CLS_FAILED, "");
        return;
    }
    struct arena *prev = jsonmem_enter(req->arena);
    cJSON *doc = st->answer_over
                     ? NULL
                     : cJSON_ParseWithLength((const char *)evbuffer_pullup(st->answer, -1), len);
    if (doc != NULL) {
        st->api->usage_body(doc, &st->usage);
        text.buf[0] = '\0';
        st->api->text_body(doc, take_text, &text);
    }
    jsonmem_leave(prev);
    if (doc == NULL) {
        st->error = "the classifier's answer cannot be read";
        cls_end(st, CLS_FAILED, "");
        return;
    }
    const char *label = label_of(text.buf);
    struct labelcache *lc = req->w->srv->labels;
    if (label[0] != '\0' && lc != NULL)
        labelcache_put(lc, st->tenant, st->text, st->len, label, gate_now_us(),
                       req->conf->routing.classifier_ttl_ms);
    if (label[0] == '\0') {
        snprintf(msg, sizeof(msg), "the classifier's answer is no label: '%.40s'", text.buf);
        st->error = arena_strndup(req->arena, msg, strlen(msg));
    }
    cls_end(st, CLS_ANSWERED, label);
}

static void on_failed(void *arg, enum apierr kind, const char *message, int retry_safe)
{
    struct classify_state *st = arg;
    struct gate_req *req = st->req;

    (void)kind;
    if (retry_safe && st->tries == 1) {
        st->tries++;
        upstream_retry(poolset_get(req->w->pools, req->conf, st->cm->provider), &st->ex);
        return;
    }
    st->error = arena_strndup(req->arena, message, strlen(message));
    cls_end(st, CLS_FAILED, "");
}

static const struct upstream_handler cls_handler = {
    .head = on_head,
    .body = on_body,
    .done = on_done,
    .failed = on_failed,
};

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct classify_state *st = arg;
    char msg[120];

    (void)fd;
    (void)what;
    snprintf(msg, sizeof(msg), "the classifier did not answer within %lld ms",
             (long long)st->req->conf->routing.classifier_timeout_ms);
    st->error = arena_strndup(st->req->arena, msg, strlen(msg));
    cls_end(st, CLS_TIMEOUT, "");
}

/* ---- the request --------------------------------------------------------------------- */

/* The first n bytes of s, or fewer, so as not to cut a UTF-8 character. */
static size_t utf8_cut(const char *s, size_t len, size_t n)
{
    if (len <= n)
        return len;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* The classifier request's body, in the provider's own format, and its input tokens. Returns
 * 0, or -1 when memory ran out. */
static int cls_body(struct classify_state *st)
{
    struct gate_req *req = st->req;
    const struct conf_model *cm = st->cm;
    const char *model = cm->upstream_model ? cm->upstream_model : cm->name;
    int anth = cm->provider->format == CONF_FMT_ANTHROPIC;
    size_t n = utf8_cut(st->text, st->len, CLASSIFY_TEXT_MAX);
    char *user = arena_strndup(req->arena, st->text, n);
    int rc = -1;

    if (user == NULL)
        return -1;
    struct arena *prev = jsonmem_enter(req->arena);
    cJSON *doc = cJSON_CreateObject(), *msgs, *m;
    if (doc == NULL || cJSON_AddStringToObject(doc, "model", model) == NULL)
        goto out;
    if (anth && cJSON_AddStringToObject(doc, "system", CLASSIFY_PROMPT) == NULL)
        goto out;
    if ((msgs = cJSON_AddArrayToObject(doc, "messages")) == NULL)
        goto out;
    if (!anth) {
        if ((m = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(msgs, m) ||
            cJSON_AddStringToObject(m, "role", "system") == NULL ||
            cJSON_AddStringToObject(m, "content", CLASSIFY_PROMPT) == NULL)
            goto out;
    }
    if ((m = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(msgs, m) ||
        cJSON_AddStringToObject(m, "role", "user") == NULL ||
        cJSON_AddStringToObject(m, "content", user) == NULL)
        goto out;
    if (cJSON_AddNumberToObject(doc, anth ? "max_tokens" : "max_completion_tokens",
                                CLASSIFY_MAX_OUTPUT) == NULL ||
        cJSON_AddNumberToObject(doc, "temperature", 0) == NULL ||
        cJSON_AddFalseToObject(doc, "stream") == NULL)
        goto out;
    char *text = cJSON_PrintUnformatted(doc); /* in the arena */
    if (text == NULL)
        goto out;
    st->body = text;
    st->body_len = strlen(text);
    /* counted as the main request is: the model's encoding, its calibration */
    const tok_enc *enc = tok_encoding(cm->encoding ? cm->encoding : tok_encoding_for_model(model));
    tok_count_result r;
    if (enc != NULL && tok_count_request(enc, st->api->tok_api, doc, model,
                                         cm->calibration > 0 ? cm->calibration : 1.0, &r) == 0) {
        st->input = (int64_t)r.tokens;
        st->approximate = r.approximate;
    } else {
        st->input = (int64_t)st->body_len; /* no token is shorter than a byte */
        st->approximate = 1;
    }
    rc = 0;
out:
    jsonmem_leave(prev);
    return rc;
}

/* The head and body to send: the provider's key from the config, never the client's. Returns
 * 0, or -1 when memory ran out. */
static int cls_request(struct classify_state *st)
{
    const struct conf_provider *prov = st->cm->provider;
    const struct api_dialect *api = st->api;
    struct evbuffer *b = evbuffer_new();

    if (b == NULL)
        return -1;
    struct headbuf hd = {.out = b};
    headbuf_str(&hd, "POST ");
    headbuf_str(&hd, prov->path_prefix);
    headbuf_str(&hd, api->upstream_path);
    headbuf_str(&hd, " HTTP/1.1\r\nhost: ");
    headbuf_str(&hd, prov->host_header);
    headbuf_str(&hd, "\r\ncontent-type: application/json\r\n");
    if (prov->api_key != NULL) {
        headbuf_str(&hd, api->upstream_key);
        headbuf_str(&hd, prov->api_key);
        headbuf_add(&hd, "\r\n", 2);
    }
    if (api->version_header != NULL) {
        headbuf_str(&hd, api->version_header);
        headbuf_str(&hd, ": ");
        headbuf_str(&hd, api->version_default);
        headbuf_add(&hd, "\r\n", 2);
    }
    headbuf_str(&hd, "x-request-id: ");
    headbuf_str(&hd, st->id);
    headbuf_str(&hd, "\r\naccept-encoding: identity\r\ncontent-length: ");
    headbuf_num(&hd, st->body_len);
    headbuf_str(&hd, "\r\nconnection: keep-alive\r\n\r\n");
    headbuf_flush(&hd);
    if (evbuffer_add(b, st->body, st->body_len) < 0) {
        evbuffer_free(b);
        return -1;
    }
    st->ex.request = b;
    return 0;
}

/* ---- the reservation ------------------------------------------------------------------- */

static void wait_run(struct completion *c)
{
    struct cls_wait *t = (struct cls_wait *)((char *)c - offsetof(struct cls_wait, cq));

    t->fn(t->fn_arg); /* calls k.done: wait_done */
}

static int wait_post(void *worker, void (*fn)(void *arg), void *fn_arg)
{
    struct cls_wait *t = worker;

    t->fn = fn;
    t->fn_arg = fn_arg;
    completion_post(t->w->cq, &t->cq, wait_run);
    return 0;
}

/* On the worker: the store decided a pending reservation. */
static void wait_done(void *arg, enum budget_rc rc)
{
    struct cls_wait *t = arg;
    struct classify_state *st = t->st;

    if (st == NULL) {
        /* the classification stopped waiting: what the store granted goes back whole */
        if (rc == BUDGET_ADMITTED && t->w->srv->book != NULL)
            budget_settle(t->w->srv->book, &t->r, 0, 0, gate_wall_now(), NULL, 0);
        free(t);
        return;
    }
    st->wait = NULL;
    if (rc == BUDGET_ADMITTED)
        st->resv = t->r;
    free(t);
    if (rc != BUDGET_ADMITTED) {
        st->error = "the agent's budgets have no room for the classifier";
        cls_end(st, CLS_REFUSED, "");
        return;
    }
    cls_send(st);
}

/*
 * Reserves for the classification on the agent's budgets at the classifier's price. Returns
 * BUDGET_ADMITTED (reserved, or nothing to reserve on), BUDGET_REFUSED (no room, or the
 * ledger or memory cannot take it: st->error says), or BUDGET_PENDING (the store answers
 * later, through st->wait).
 */
static enum budget_rc cls_reserve(struct classify_state *st)
{
    struct gate_req *req = st->req;
    struct gate_server *srv = req->w->srv;

    if (srv->book == NULL || req->agent < 0)
        return BUDGET_ADMITTED; /* an open gate: nothing to reserve on */
    if (ledger_failing(srv->ledger) && !req->conf->ledger_fail_open) {
        st->error = "the ledger cannot record the classifier's spend";
        return BUDGET_REFUSED;
    }
    struct budget_ask ask = {
        .agent = req->agent,
        .input = st->input,
        .approximate = st->approximate,
        .generates = 1,
        .max_output = CLASSIFY_MAX_OUTPUT,
        .choices = 1,
        .min_output = CLASSIFY_MAX_OUTPUT, /* less room than its answer: refused */
        .model_cap = CLASSIFY_MAX_OUTPUT,
        .price = &st->cm->price,
    };
    struct cls_wait *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        st->error = "out of memory";
        return BUDGET_REFUSED;
    }
    t->w = req->w;
    t->st = st;
    t->k = (struct budget_cont){.post = wait_post, .worker = t, .done = wait_done, .arg = t};
    enum budget_rc rc =
        budget_reserve_async(srv->book, &ask, gate_wall_now(), &t->r, &t->why, &t->k);
    if (rc == BUDGET_PENDING) {
        st->wait = t;
        return rc;
    }
    if (rc == BUDGET_ADMITTED)
        st->resv = t->r;
    else
        st->error = "the agent's budgets have no room for the classifier";
    free(t);
    return rc;
}

/* The reservation is made (or none is needed): into the crash journal, then on its way. */
static void cls_send(struct classify_state *st)
{
    struct gate_req *req = st->req;
    struct gate_server *srv = req->w->srv;
    int a = req->agent;

    if (srv->journal != NULL && st->resv.held) {
        struct journal_entry e = {
            .ts = st->wall_start,
            .id = st->id,
            .key_id = req->key_id,
            .agent = a >= 0 ? budget_scope_name(srv->book, a) : NULL,
            .team = a >= 0 ? budget_scope_at_level(srv->book, a, CONF_LEVEL_TEAM) : NULL,
            .department =
                a >= 0 ? budget_scope_at_level(srv->book, a, CONF_LEVEL_DEPARTMENT) : NULL,
            .endpoint = "classifier",
            .model = st->cm->name,
            .served_model = st->cm->upstream_model ? st->cm->upstream_model : st->cm->name,
            .provider = st->cm->provider->name,
            .in_own = st->input,
            .tokens = st->resv.tokens,
            .nusd = st->resv.nusd,
        };
        if ((st->jslot = journal_put(srv->journal, req->w->id, &e)) == 0) {
            st->error = "too many requests in flight to record the classifier's";
            cls_end(st, CLS_REFUSED, ""); /* released whole: nothing was sent */
            return;
        }
    }
    if (cls_request(st) < 0) {
        st->error = "out of memory";
        cls_end(st, CLS_FAILED, "");
        return;
    }
    if ((st->answer = evbuffer_new()) == NULL) {
        st->error = "out of memory";
        cls_end(st, CLS_FAILED, "");
        return;
    }
    st->tries = 1;
    st->ex.h = &cls_handler;
    st->ex.arg = st;
    st->ex.conf = req->conf;
    st->ex.arena = req->arena;
    /* may fail at once: cls_end runs from on_failed */
    upstream_send(poolset_get(req->w->pools, req->conf, st->cm->provider), &st->ex);
}

/* ---- the module's verbs -------------------------------------------------------------------- */

int classify_label(struct gate_req *req, const char *text, size_t len)
{
    const struct conf *c = req->conf;
    struct gate_server *srv = req->w->srv;
    struct classify_state *st;
    char word[CLASSIFY_WORD_MAX];

    if (req->rt.label != NULL)
        return 1;
    if (c->routing.classifier < 0 || c->routing.classifier >= c->nmodels) {
        req->rt.label = "";
        return 1;
    }
    if ((st = arena_alloc(req->arena, sizeof(*st))) == NULL) {
        req->rt.label = "";
        return 1;
    }
    memset(st, 0, sizeof(*st));
    st->req = req;
    st->cm = &c->models[c->routing.classifier];
    st->api =
        st->cm->provider->format == CONF_FMT_ANTHROPIC ? &api_anthropic_messages : &api_openai_chat;
    st->tenant =
        req->agent >= 0 && srv->book != NULL ? budget_scope_name(srv->book, req->agent) : "";
    st->t0 = gate_now_us();
    st->wall_start = gate_wall_now();
    st->outcome = CLS_PENDING;
    req->rt.cls = st;
    if (srv->labels != NULL &&
        labelcache_get(srv->labels, st->tenant, text, len, st->t0, word, sizeof(word))) {
        st->outcome = CLS_CACHED;
        st->label = label_of(word); /* one of the constants: nothing to copy */
        req->rt.label = st->label;
        return 1;
    }
    st->text = arena_strndup(req->arena, text, len);
    st->len = len;
    snprintf(st->id, sizeof(st->id), "%s/classify", req->id);
    if (st->text == NULL || cls_body(st) < 0) {
        st->outcome = CLS_FAILED;
        st->error = "out of memory";
        st->label = req->rt.label = "";
        return 1;
    }
    enum budget_rc rc = cls_reserve(st);
    if (rc == BUDGET_REFUSED) {
        st->outcome = CLS_REFUSED;
        st->label = req->rt.label = "";
        return 1;
    }
    /* from here the answer comes through cls_end, always: the timer sees to it */
    int64_t ms = c->routing.classifier_timeout_ms > 0 ? c->routing.classifier_timeout_ms : 300;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if ((st->timer = evtimer_new(req->w->base, on_timeout, st)) == NULL ||
        evtimer_add(st->timer, &tv) < 0) {
        if (st->timer != NULL)
            event_free(st->timer);
        st->timer = NULL;
        if (st->wait != NULL) {
            st->wait->st = NULL;
            st->wait = NULL;
        } else if (st->resv.held) {
            budget_settle(srv->book, &st->resv, 0, 0, gate_wall_now(), NULL, 0);
        }
        st->outcome = CLS_FAILED;
        st->error = "out of memory";
        st->label = req->rt.label = "";
        return 1;
    }
    req->phase = REQ_WAITING;
    if (rc == BUDGET_ADMITTED)
        cls_send(st);
    return 0;
}

void classify_log(const struct gate_req *req, cJSON *rec)
{
    const struct classify_state *st = req->rt.cls;
    char cost[48];

    if (st == NULL)
        return;
    cJSON *o = cJSON_AddObjectToObject(rec, "classifier");
    if (o == NULL)
        return;
    cJSON_AddStringToObject(o, "model", st->cm->name);
    cJSON_AddStringToObject(o, "label", st->label != NULL ? st->label : "");
    cJSON_AddNumberToObject(o, "ms", (double)st->ms);
    cJSON_AddStringToObject(o, "outcome", outcome_names[st->outcome]);
    cJSON_AddNumberToObject(o, "input_tokens", (double)st->tokens_in);
    cJSON_AddNumberToObject(o, "output_tokens", (double)st->tokens_out);
    int64_t nusd = st->nusd > 0 ? st->nusd : 0;
    snprintf(cost, sizeof(cost), "%lld.%09lld", (long long)(nusd / 1000000000),
             (long long)(nusd % 1000000000));
    cJSON_AddRawToObject(o, "cost_usd", cost);
    if (st->error != NULL && st->outcome != CLS_CACHED)
        cJSON_AddStringToObject(o, "error", st->error);
}
