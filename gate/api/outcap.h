/*
 * outcap: the members of a request that cap its output, for each API that generates text.
 * Which members those are is the API's dialect's (dialect.h: cap_members, cap_min,
 * choices_member), for instance:
 *
 *   chat completions: max_completion_tokens and max_tokens (a provider honours either), n
 *   responses:        max_output_tokens (at least 16: the API refuses less)
 *   messages:         max_tokens
 *
 * A budget is only as good as the cap the provider obeys, so every cap member the API
 * defines is read and, when the budget leaves less room, every one of them is clamped: a
 * request cannot slip a second, larger cap past the gate. A cap that is not a whole number
 * from 0 to OUTCAP_MAX is refused rather than passed through unread.
 */
#ifndef TG_OUTCAP_H
#define TG_OUTCAP_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "gate/util/jsonedit.h"

struct api_dialect;
struct arena;

#define OUTCAP_MEMBERS 2       /* cap members of one API, at most */
#define OUTCAP_MAX 2147483647  /* the largest cap the APIs take (a 32-bit integer) */
#define OUTCAP_CHOICES_MAX 128 /* chat's n: OpenAI takes 1 to 128 */

struct outcap {
    const char *const *names; /* the API's cap members, NULL-terminated; NULL: no output */
    int present[OUTCAP_MEMBERS]; /* the member is in the body (a number or null) */
    int64_t value;            /* the smallest cap the body sets, -1 for none */
    int choices;              /* chat's n, else 1 */
    int64_t min;              /* the smallest cap the API accepts */
};

/*
 * Reads the output caps (and chat's n) of body, a request of API api, into oc (no caps for a
 * NULL api, or one without output). Returns 0, or -1 with a client-facing reason in msg (the
 * answer is 400): a cap that is not a whole number from 0 to OUTCAP_MAX, or an n that is not
 * a whole number from 1 to OUTCAP_CHOICES_MAX.
 */
int outcap_read(const struct api_dialect *api, const cJSON *body, struct outcap *oc, char *msg,
                size_t cap);

/*
 * Makes the edits that bound the request to allowance output tokens per choice: every cap
 * member present with a larger value or null is set to allowance, and when none is present
 * and add is set the API's first member is added. Edits body (in place, cJSON allocating
 * where it is told to) and writes the splice ops, whose values live in arena a, into ops
 * (room for OUTCAP_MEMBERS). Returns the number of ops, or -1 when memory ran out.
 */
int outcap_clamp(const struct outcap *oc, cJSON *body, int64_t allowance, int add,
                 struct arena *a, struct jsonedit_op *ops);

#endif
