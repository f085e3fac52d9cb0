/*
 * health: circuit breaker, retry-after and latency estimates per target. See health.h.
 *
 * The table is allocated whole by route_health_new: ROUTE_HEALTH_MAX slots, filled in the
 * order targets are first seen and never emptied (a target keeps its state across reloads),
 * found through an open-addressing index of XXH3 hashes. A target past the cap, or whose name
 * is longer than HEALTH_NAME_MAX - 1 bytes, has no slot: it is always usable and shows nowhere.
 *
 * Decisions, beyond health.h:
 * - The error ratio is counted in HEALTH_BUCKETS buckets of breaker_window_ms / HEALTH_BUCKETS
 *   each; a request counts in the bucket of the time it was reported.
 * - A 429 (ROUTE_FAIL_LIMITED) is neither a request nor a failure of the breaker. With no
 *   retry-after of its own, it holds the target back HEALTH_DEFAULT_RETRY_MS (1 s). Any other
 *   outcome that carries a retry-after (a 503 with one) holds it back too.
 * - Latency is sampled from answers only (ROUTE_OK_ANSWER): a failure's time says nothing of
 *   how fast the target answers.
 * - In the open state reports change nothing but the counters (those are attempts that began
 *   before it opened). Half-open: a success closes the circuit and empties the window, a
 *   failure opens it for another cool-down, a 429 frees the probe's place. A probe that has not
 *   reported within a cool-down (or 60 s when the cool-down is shorter) is taken as lost, and
 *   the next caller becomes the probe.
 */
#include "routing/health.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "routing/rstats.h"

#define HEALTH_NAME_MAX 128
#define HEALTH_BUCKETS 10
#define HEALTH_INDEX (ROUTE_HEALTH_MAX * 2) /* a power of two: at most half full */
#define HEALTH_DEFAULT_RETRY_MS 1000
#define HEALTH_PROBE_LOST_MIN_US (60 * 1000000LL)
#define HEALTH_EWMA_ALPHA 0.2
#define HEALTH_P90_MIN 5

struct hring {
    int64_t us[ROUTE_HEALTH_SAMPLES];
    int n;          /* samples held, at most ROUTE_HEALTH_SAMPLES */
    int next;       /* where the next one goes */
    double ewma_us; /* -1 before the first sample */
    int64_t p90_us; /* cached; -2 when a sample came since */
};

struct hslot {
    char name[HEALTH_NAME_MAX];
    uint64_t hash;
    enum route_circuit state; /* as last stored: OPEN turns HALF_OPEN when read after the
                               * cool-down (slot_state) */
    int failures_in_row;
    int64_t open_until_us; /* OPEN: when the cool-down ends */
    int probing;           /* HALF_OPEN: a probe is out */
    int64_t probe_since_us;
    int64_t retry_until_us; /* a retry-after not over before this; 0 none */
    uint64_t failures_total;
    int64_t bucket_us;                 /* width of a bucket when they were filled */
    int64_t bucket_id[HEALTH_BUCKETS]; /* now / bucket_us of the bucket's time, -1 empty */
    uint32_t bucket_req[HEALTH_BUCKETS], bucket_fail[HEALTH_BUCKETS];
    struct hring ttfb, total;
};

struct route_health {
    pthread_mutex_t mu;
    int n;                       /* slots in use */
    int16_t index[HEALTH_INDEX]; /* slot number + 1, 0 empty */
    struct hslot slots[ROUTE_HEALTH_MAX];
};

/* Returns a new, empty table, or NULL when out of memory. */
struct route_health *route_health_new(void)
{
    struct route_health *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

/* Frees h (NULL is fine). No other thread may be using it. */
void route_health_free(struct route_health *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* The slot of target, made when add is set and there is room; NULL when none. Under h->mu. */
static struct hslot *slot_find(struct route_health *h, const char *target, int add)
{
    size_t len = strlen(target);
    uint64_t hash;
    size_t i;

    if (len >= HEALTH_NAME_MAX)
        return NULL;
    hash = XXH3_64bits(target, len);
    for (i = (size_t)hash & (HEALTH_INDEX - 1);; i = (i + 1) & (HEALTH_INDEX - 1)) {
        int k = h->index[i];
        if (k == 0)
            break;
        struct hslot *s = &h->slots[k - 1];
        if (s->hash == hash && strcmp(s->name, target) == 0)
            return s;
    }
    if (!add || h->n >= ROUTE_HEALTH_MAX)
        return NULL;
    struct hslot *s = &h->slots[h->n];
    memset(s, 0, sizeof(*s));
    memcpy(s->name, target, len + 1);
    s->hash = hash;
    s->state = ROUTE_CLOSED;
    s->ttfb.ewma_us = s->total.ewma_us = -1;
    s->ttfb.p90_us = s->total.p90_us = -2;
    for (int b = 0; b < HEALTH_BUCKETS; b++)
        s->bucket_id[b] = -1;
    h->index[i] = (int16_t)(++h->n);
    return s;
}

/* The state at now: an open circuit whose cool-down is over is half-open. */
static enum route_circuit slot_state(struct hslot *s, int64_t now_us)
{
    if (s->state == ROUTE_OPEN && now_us >= s->open_until_us) {
        s->state = ROUTE_HALF_OPEN;
        s->probing = 0;
    }
    return s->state;
}

static int64_t bucket_width_us(const struct conf_routing *cfg)
{
    int64_t w = cfg != NULL ? cfg->breaker_window_ms * 1000 / HEALTH_BUCKETS : 0;

    return w > 0 ? w : 1000;
}

static void window_clear(struct hslot *s)
{
    for (int b = 0; b < HEALTH_BUCKETS; b++) {
        s->bucket_id[b] = -1;
        s->bucket_req[b] = s->bucket_fail[b] = 0;
    }
}

/* Requests and failures in the window that ends at now. */
static void window_sum(const struct hslot *s, int64_t now_us, uint32_t *req, uint32_t *fail)
{
    int64_t cur = s->bucket_us > 0 ? now_us / s->bucket_us : 0;

    *req = *fail = 0;
    for (int b = 0; b < HEALTH_BUCKETS; b++) {
        if (s->bucket_id[b] < 0 || s->bucket_id[b] > cur || s->bucket_id[b] <= cur - HEALTH_BUCKETS)
            continue;
        *req += s->bucket_req[b];
        *fail += s->bucket_fail[b];
    }
}

static void window_add(struct hslot *s, const struct conf_routing *cfg, int64_t now_us, int failed)
{
    int64_t w = bucket_width_us(cfg);
    int64_t id;
    int b;

    if (w != s->bucket_us) { /* a reload changed the window: start it again */
        window_clear(s);
        s->bucket_us = w;
    }
    id = now_us / w;
    if (id < 0)
        id = 0;
    b = (int)(id % HEALTH_BUCKETS);
    if (s->bucket_id[b] != id) {
        s->bucket_id[b] = id;
        s->bucket_req[b] = s->bucket_fail[b] = 0;
    }
    s->bucket_req[b]++;
    if (failed)
        s->bucket_fail[b]++;
}

static void ring_add(struct hring *r, int64_t us)
{
    if (us < 0)
        return;
    r->us[r->next] = us;
    r->next = (r->next + 1) % ROUTE_HEALTH_SAMPLES;
    if (r->n < ROUTE_HEALTH_SAMPLES)
        r->n++;
    r->p90_us = -2;
    r->ewma_us = r->ewma_us < 0
                     ? (double)us
                     : HEALTH_EWMA_ALPHA * (double)us + (1 - HEALTH_EWMA_ALPHA) * r->ewma_us;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* The p90 of r's samples in us (nearest rank), -1 under HEALTH_P90_MIN samples; sorted once
 * per new sample, when asked (the route stage asks on every request with prefer_cost). */
static int64_t ring_p90_us(struct hring *r)
{
    int64_t v[ROUTE_HEALTH_SAMPLES];
    int rank;

    if (r->p90_us != -2)
        return r->p90_us;
    if (r->n < HEALTH_P90_MIN)
        return r->p90_us = -1;
    memcpy(v, r->us, sizeof(v[0]) * (size_t)r->n);
    qsort(v, (size_t)r->n, sizeof(v[0]), cmp_i64);
    rank = (9 * r->n + 9) / 10; /* ceil(0.9 n) */
    return r->p90_us = v[rank - 1];
}

static int64_t us_to_ms(int64_t us)
{
    return us < 0 ? -1 : (us + 500) / 1000;
}

static int secs_up(int64_t us)
{
    int64_t s = (us + 999999) / 1000000;

    return s < 1 ? 1 : s > 86400 * 365 ? 86400 * 365 : (int)s;
}

static void circuit_open(struct hslot *s, const struct conf_routing *cfg, int64_t now_us)
{
    int64_t cool = cfg != NULL && cfg->breaker_cooldown_ms > 0 ? cfg->breaker_cooldown_ms : 1;

    s->state = ROUTE_OPEN;
    s->open_until_us = now_us + cool * 1000;
    s->probing = 0;
}

/*
 * Whether target may be tried now; see health.h. probe and retry_after_s may be NULL. A target
 * with no slot (past the cap) is always usable.
 */
int route_health_usable(struct route_health *h, const struct conf_routing *cfg, const char *target,
                        int64_t now_us, int *probe, int *retry_after_s)
{
    struct hslot *s;
    int ok = 1, wait = 0;

    if (probe != NULL)
        *probe = 0;
    if (retry_after_s != NULL)
        *retry_after_s = 0;
    if (h == NULL || target == NULL)
        return 1;
    pthread_mutex_lock(&h->mu);
    s = slot_find(h, target, 0);
    if (s == NULL)
        goto out;
    if (s->retry_until_us > now_us) {
        ok = 0;
        wait = secs_up(s->retry_until_us - now_us);
    }
    switch (slot_state(s, now_us)) {
    case ROUTE_CLOSED:
        break;
    case ROUTE_OPEN:
        ok = 0;
        if (secs_up(s->open_until_us - now_us) > wait)
            wait = secs_up(s->open_until_us - now_us);
        break;
    case ROUTE_HALF_OPEN: {
        int64_t cool = cfg != NULL ? cfg->breaker_cooldown_ms * 1000 : 0;
        if (cool < HEALTH_PROBE_LOST_MIN_US)
            cool = HEALTH_PROBE_LOST_MIN_US;
        if (s->probing && now_us - s->probe_since_us >= cool)
            s->probing = 0; /* the probe never reported: lost */
        if (!ok)
            break; /* the retry-after comes first; the probe waits for it */
        if (s->probing) {
            ok = 0;
            if (wait < 1)
                wait = 1;
            break;
        }
        s->probing = 1;
        s->probe_since_us = now_us;
        if (probe != NULL)
            *probe = 1;
        break;
    }
    }
out:
    pthread_mutex_unlock(&h->mu);
    if (!ok && retry_after_s != NULL)
        *retry_after_s = wait < 1 ? 1 : wait;
    return ok;
}

/* Reports an attempt's end; see health.h. The target gets a slot if it has none and there is
 * room. */
void route_health_report(struct route_health *h, const struct conf_routing *cfg, const char *target,
                         enum route_outcome o, int64_t ttfb_us, int64_t total_us,
                         int64_t retry_after_ms, int64_t now_us)
{
    struct hslot *s;
    int failed = o == ROUTE_FAIL_CONNECT || o == ROUTE_FAIL_TIMEOUT || o == ROUTE_FAIL_STATUS;

    if (h == NULL || target == NULL)
        return;
    if (o == ROUTE_FAIL_LIMITED && retry_after_ms <= 0)
        retry_after_ms = HEALTH_DEFAULT_RETRY_MS;
    if (cfg != NULL && cfg->retry_after_max_ms > 0 && retry_after_ms > cfg->retry_after_max_ms)
        retry_after_ms = cfg->retry_after_max_ms;
    pthread_mutex_lock(&h->mu);
    s = slot_find(h, target, 1);
    if (s == NULL)
        goto out;
    if (retry_after_ms > 0 && now_us + retry_after_ms * 1000 > s->retry_until_us)
        s->retry_until_us = now_us + retry_after_ms * 1000;
    if (o == ROUTE_FAIL_LIMITED) {
        if (slot_state(s, now_us) == ROUTE_HALF_OPEN)
            s->probing = 0; /* it answered, but not yet: probe again after the retry-after */
        goto out;
    }
    if (failed)
        s->failures_total++;
    else {
        ring_add(&s->ttfb, ttfb_us);
        ring_add(&s->total, total_us);
    }
    switch (slot_state(s, now_us)) {
    case ROUTE_OPEN:
        break; /* an attempt that began before it opened */
    case ROUTE_HALF_OPEN:
        if (failed) {
            s->failures_in_row++;
            circuit_open(s, cfg, now_us);
        } else {
            s->state = ROUTE_CLOSED;
            s->probing = 0;
            s->failures_in_row = 0;
            window_clear(s);
        }
        break;
    case ROUTE_CLOSED: {
        uint32_t req, fail;
        window_add(s, cfg, now_us, failed);
        if (!failed) {
            s->failures_in_row = 0;
            break;
        }
        s->failures_in_row++;
        if (cfg == NULL)
            break;
        window_sum(s, now_us, &req, &fail);
        if ((cfg->breaker_failures > 0 && s->failures_in_row >= cfg->breaker_failures) ||
            (cfg->breaker_error_pct > 0 &&
             req >= (uint32_t)(cfg->breaker_min_requests > 0 ? cfg->breaker_min_requests : 1) &&
             (uint64_t)fail * 100 >= (uint64_t)cfg->breaker_error_pct * req))
            circuit_open(s, cfg, now_us);
        break;
    }
    }
out:
    pthread_mutex_unlock(&h->mu);
}

/* Gives a probe's place back; see health.h. */
void route_health_unprobe(struct route_health *h, const char *target)
{
    struct hslot *s;

    if (h == NULL || target == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    s = slot_find(h, target, 0);
    if (s != NULL && s->state == ROUTE_HALF_OPEN)
        s->probing = 0;
    pthread_mutex_unlock(&h->mu);
}

/* The p90 of target's recent samples in ms; see health.h. */
int64_t route_health_p90_ms(struct route_health *h, const char *target, int first_byte)
{
    struct hslot *s;
    int64_t v = -1;

    if (h == NULL || target == NULL)
        return -1;
    pthread_mutex_lock(&h->mu);
    s = slot_find(h, target, 0);
    if (s != NULL)
        v = us_to_ms(ring_p90_us(first_byte ? &s->ttfb : &s->total));
    pthread_mutex_unlock(&h->mu);
    return v;
}

static const char *state_name(enum route_circuit st)
{
    return st == ROUTE_OPEN ? "open" : st == ROUTE_HALF_OPEN ? "half_open" : "closed";
}

static void add_ms(cJSON *o, const char *key, double us)
{
    if (us < 0)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, round(us / 100.0) / 10.0); /* ms, one decimal */
}

/* One /status object for s, or for a target never reported when s is NULL. */
static void status_one(cJSON *arr, const char *name, struct hslot *s, int64_t now_us)
{
    cJSON *o = cJSON_CreateObject();
    enum route_circuit st = s != NULL ? slot_state(s, now_us) : ROUTE_CLOSED;
    uint32_t req = 0, fail = 0;

    if (o == NULL)
        return;
    if (s != NULL)
        window_sum(s, now_us, &req, &fail);
    cJSON_AddStringToObject(o, "target", name);
    cJSON_AddStringToObject(o, "state", state_name(st));
    cJSON_AddNumberToObject(o, "failures_in_row", s != NULL ? s->failures_in_row : 0);
    cJSON_AddNumberToObject(o, "failures_total", s != NULL ? (double)s->failures_total : 0);
    cJSON_AddNumberToObject(o, "error_ratio", req > 0 ? round(1000.0 * fail / req) / 1000 : 0);
    cJSON_AddNumberToObject(o, "requests_in_window", req);
    cJSON_AddNumberToObject(o, "open_for_s",
                            st == ROUTE_OPEN ? secs_up(s->open_until_us - now_us) : 0);
    cJSON_AddNumberToObject(
        o, "retry_after_s",
        s != NULL && s->retry_until_us > now_us ? secs_up(s->retry_until_us - now_us) : 0);
    add_ms(o, "ttfb_ms_ewma", s != NULL ? s->ttfb.ewma_us : -1);
    add_ms(o, "total_ms_ewma", s != NULL ? s->total.ewma_us : -1);
    add_ms(o, "ttfb_ms_p90", s != NULL ? (double)ring_p90_us(&s->ttfb) : -1);
    add_ms(o, "total_ms_p90", s != NULL ? (double)ring_p90_us(&s->total) : -1);
    cJSON_AddItemToArray(arr, o);
}

/*
 * Adds to arr one object per target: those reported, in the order first seen, then the
 * targets of c's tiers never reported (closed, no latency). c may be NULL.
 */
/* Calls fn for each target of c's tiers that h has not seen, once each. Under h's mutex. */
static void each_unseen(struct route_health *h, const struct conf *c,
                        void (*fn)(void *arg, const char *name), void *arg)
{
    for (int t = 0; c != NULL && t < c->routing.ntiers; t++) {
        const struct conf_tier *tier = &c->routing.tiers[t];
        for (int k = 0; k < tier->ntargets; k++) {
            int m = tier->targets[k];
            int dup = 0;
            if (m < 0 || m >= c->nmodels || slot_find(h, c->models[m].name, 0) != NULL)
                continue;
            for (int u = 0; u < t && !dup; u++) /* listed by an earlier tier already */
                for (int j = 0; j < c->routing.tiers[u].ntargets && !dup; j++)
                    dup = c->routing.tiers[u].targets[j] == m;
            for (int j = 0; j < k && !dup; j++)
                dup = tier->targets[j] == m;
            if (!dup)
                fn(arg, c->models[m].name);
        }
    }
}

struct unseen_status {
    cJSON *arr;
    int64_t now_us;
};

static void status_unseen(void *arg, const char *name)
{
    struct unseen_status *u = arg;
    status_one(u->arr, name, NULL, u->now_us);
}

void route_health_status(struct route_health *h, const struct conf *c, int64_t now_us, cJSON *arr)
{
    struct unseen_status u = {arr, now_us};

    if (h == NULL || arr == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n; i++)
        status_one(arr, h->slots[i].name, &h->slots[i], now_us);
    each_unseen(h, c, status_unseen, &u);
    pthread_mutex_unlock(&h->mu);
}

static void emit(void (*out)(void *, const char *, size_t), void *arg, const char *line, int n,
                 size_t cap)
{
    if (n > 0)
        out(arg, line, (size_t)n < cap ? (size_t)n : cap - 1);
}

/*
 * Appends through out, under h's mutex (out must not call into h): tokengate_target_state
 * {target} (0 closed, 1 open, 2 half-open), tokengate_target_failures_total{target} and
 * tokengate_target_latency_ms{target,kind="ttfb|total",stat="ewma|p90"} (known ones only).
 */
struct unseen_metric {
    void (*out)(void *arg, const char *line, size_t len);
    void *arg;
    const char *metric; /* its value is 0 */
};

static void metric_unseen(void *arg, const char *name)
{
    struct unseen_metric *u = arg;
    char esc[HEALTH_NAME_MAX * 2 + 4], line[HEALTH_NAME_MAX * 2 + 160];

    rstats_label(name, esc, sizeof(esc));
    emit(u->out, u->arg, line,
         snprintf(line, sizeof(line), "%s{target=\"%s\"} 0\n", u->metric, esc), sizeof(line));
}

void route_health_metrics(struct route_health *h, const struct conf *c, int64_t now_us,
                          void (*out)(void *arg, const char *line, size_t len), void *arg)
{
    struct unseen_metric um = {out, arg, NULL};

    char esc[HEALTH_NAME_MAX * 2 + 4], line[HEALTH_NAME_MAX * 2 + 160];
    static const char *kinds[2] = {"ttfb", "total"};

    if (h == NULL || out == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    emit(out, arg, line,
         snprintf(line, sizeof(line),
                  "# HELP tokengate_target_state Circuit breaker per target: 0 closed, 1 open, "
                  "2 half-open.\n# TYPE tokengate_target_state gauge\n"),
         sizeof(line));
    for (int i = 0; i < h->n; i++) {
        struct hslot *s = &h->slots[i];
        enum route_circuit st = slot_state(s, now_us);
        rstats_label(s->name, esc, sizeof(esc));
        emit(out, arg, line,
             snprintf(line, sizeof(line), "tokengate_target_state{target=\"%s\"} %d\n", esc,
                      st == ROUTE_OPEN        ? 1
                      : st == ROUTE_HALF_OPEN ? 2
                                              : 0),
             sizeof(line));
    }
    um.metric = "tokengate_target_state"; /* not tried yet: closed */
    each_unseen(h, c, metric_unseen, &um);
    emit(out, arg, line,
         snprintf(line, sizeof(line),
                  "# HELP tokengate_target_failures_total Failed attempts per target "
                  "(connect, timeout, 5xx).\n# TYPE tokengate_target_failures_total counter\n"),
         sizeof(line));
    for (int i = 0; i < h->n; i++) {
        rstats_label(h->slots[i].name, esc, sizeof(esc));
        emit(out, arg, line,
             snprintf(line, sizeof(line), "tokengate_target_failures_total{target=\"%s\"} %llu\n",
                      esc, (unsigned long long)h->slots[i].failures_total),
             sizeof(line));
    }
    um.metric = "tokengate_target_failures_total";
    each_unseen(h, c, metric_unseen, &um);
    emit(out, arg, line,
         snprintf(line, sizeof(line),
                  "# HELP tokengate_target_latency_ms Answer latency per target (ms): moving "
                  "average and p90 of recent answers.\n# TYPE tokengate_target_latency_ms "
                  "gauge\n"),
         sizeof(line));
    for (int i = 0; i < h->n; i++) {
        struct hslot *s = &h->slots[i];
        rstats_label(s->name, esc, sizeof(esc));
        for (int k = 0; k < 2; k++) {
            struct hring *r = k == 0 ? &s->ttfb : &s->total;
            int64_t p90 = ring_p90_us(r);
            if (r->ewma_us >= 0)
                emit(out, arg, line,
                     snprintf(line, sizeof(line),
                              "tokengate_target_latency_ms{target=\"%s\",kind=\"%s\","
                              "stat=\"ewma\"} %.3f\n",
                              esc, kinds[k], r->ewma_us / 1000.0),
                     sizeof(line));
            if (p90 >= 0)
                emit(out, arg, line,
                     snprintf(line, sizeof(line),
                              "tokengate_target_latency_ms{target=\"%s\",kind=\"%s\","
                              "stat=\"p90\"} %.3f\n",
                              esc, kinds[k], p90 / 1000.0),
                     sizeof(line));
        }
    }
    pthread_mutex_unlock(&h->mu);
}
