/*
 * route-int: what route.c (the decision, the candidates) and rules.c (the features of a
 * request, the conditions of a rule) share. Not for other modules.
 */
#ifndef TG_ROUTE_INT_H
#define TG_ROUTE_INT_H

#include "routing/route.h"

/* The trace's cap: past it, one line says it was cut and nothing more is written. */
#define ROUTE_TRACE_MAX (64 * 1024)

/* One call of route_decide: its input, the features read so far (on first need), the rules'
 * token count (read once), the regex match block (made on the first regex, freed at the end). */
struct route_ctx {
    const struct route_input *in;
    struct route_trace *trace;
    struct route_features f;
    int have_f;
    int64_t tokens; /* in->input_tokens(NULL); -2 until asked */
    void *md;       /* pcre2_match_data_8 *, or NULL */
    int utf_ok[2];  /* last_user, system: found valid UTF-8 by a first match */
};

enum rule_result { RULE_NO, RULE_YES, RULE_ASK };

/*
 * Whether rule r holds for the request of x. RULE_ASK: every other condition holds, and the
 * rule reads the classifier's label, which in->label does not give yet. With a trace, writes
 * into why (cap bytes) the first condition that failed, or what held.
 */
enum rule_result route_rule_eval(struct route_ctx *x, const struct conf_rule *r, char *why,
                                 size_t cap);

/* The rules' count of input tokens (memoized in x), -1 when unknown. */
int64_t route_ctx_tokens(struct route_ctx *x);

/* Frees what x holds (features, match block). */
void route_ctx_done(struct route_ctx *x);

/* Whether the n bytes at s hold keyword kw: case-insensitive, whole words (ASCII). */
int route_keyword_in(const char *s, size_t n, const char *kw);

#endif
