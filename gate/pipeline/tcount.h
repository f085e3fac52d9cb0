/*
 * tcount: the gate's own token count of every request, beside the provider's.
 *
 * The input is counted from the parsed body before the request is forwarded; the output from
 * the text the provider sends back (each streamed delta, or the whole body), so that the
 * request log carries both counts and their difference, and /status the mean difference per
 * model: drift between our count and the provider's shows.
 */
#ifndef TG_TCOUNT_H
#define TG_TCOUNT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tok.h"

struct gate_req;
struct conf_model;

struct tcount {
    const tok_enc *enc;  /* NULL: nothing counted (not a proxied JSON request) */
    int api;             /* tok_api */
    double factor;       /* calibration of approximate counts */
    int approximate;     /* the provider's tokenizer is not public */
    uint32_t estimated;  /* parts counted by an upper bound (images of unknown size, ...) */
    int64_t input;       /* -1 when the body could not be counted */
    int64_t count_us;    /* time spent counting the input */
    uint64_t output;     /* output tokens counted so far */
    int out_failed;
    char *pending;       /* output text not yet counted (malloc'd, capped) */
    size_t pending_len;
    size_t pending_cap;
    uint64_t added;      /* output bytes taken so far */
    uint64_t peek_at;    /* the pending text's tokens are looked at again once added is here */
};

/* Drift by model: what /status shows. One per worker; the mutex is taken once per request. */
#define TCOUNT_MAX_MODELS 256

struct tcount_drift_entry {
    char model[96];
    uint64_t n_in, n_out;
    int64_t sum_in_diff, sum_out_diff; /* provider minus gate */
    uint64_t sum_in_provider, sum_in_gate;
};

struct tcount_drift {
    pthread_mutex_t lock;
    struct tcount_drift_entry *e; /* malloc'd, TCOUNT_MAX_MODELS */
    int n;
    uint64_t overflow;            /* requests of models past the table's cap */
};

/*
 * Counts the input of req (its parsed body; model entry m) and prepares the output count.
 * Counting never fails the request: an uncountable body is logged with input -1.
 */
void tcount_input(struct gate_req *req, const struct conf_model *m);

/* The input tokens of req as model entry m counts them (m NULL: the entry of the model asked
 * for, else o200k_base), -1 when the body cannot be counted; memoized per tokenizer, so that
 * routing and the count stage count a body once. */
int64_t tcount_peek_input(struct gate_req *req, const struct conf_model *m);

/* Adds the output text of one parsed stream event (name is its "event:" field or ""). */
void tcount_event(struct gate_req *req, const char *name, const cJSON *data);

/* Adds the output text of a whole parsed response body. */
void tcount_body(struct gate_req *req, const cJSON *doc);

/* Adds raw bytes as output text: an answer that could not be parsed, counted as it stands
 * (its markup counts too, so this is no less than the text it holds). */
void tcount_text(struct gate_req *req, const char *s, size_t n);

/*
 * Whether the output counted so far, pending text included and approximate counts calibrated,
 * is above limit tokens. Cheap while far below: no token is shorter than a byte, so pending
 * text is only counted once its bytes could pass the limit, and after a count that is short of
 * it by d tokens, again only once d more bytes have come. Exact to the event: it says yes on
 * the first event whose text takes the count past limit.
 */
int tcount_output_above(struct gate_req *req, uint64_t limit);

/*
 * Counts what output text is left and records the request's drift in d (if the provider gave
 * usage). Frees the pending text. Safe to call on a request that counted nothing.
 */
void tcount_finish(struct gate_req *req, struct tcount_drift *d);

/* Adds the request-log fields (an object "count") to rec. */
void tcount_log(const struct gate_req *req, cJSON *rec);

int tcount_drift_init(struct tcount_drift *d);
void tcount_drift_free(struct tcount_drift *d);

/* Adds /status's "token_count_drift" object to doc, merged over the n tables ds[i]. */
void tcount_drift_status(struct tcount_drift *const *ds, int n, cJSON *doc);

#endif
