/*
 * outcap: the members of a request that cap its output. See outcap.h.
 */
#include "gate/api/outcap.h"

#include <stdio.h>
#include <string.h>

#include "gate/api/dialect.h"
#include "gate/util/arena.h"

/* A JSON number that is a whole number from lo to hi. */
static int whole(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
           v->valuedouble == (double)(int64_t)v->valuedouble;
}

int outcap_read(const struct api_dialect *api, const cJSON *body, struct outcap *oc, char *msg,
                size_t cap)
{
    memset(oc, 0, sizeof(*oc));
    oc->value = -1;
    oc->choices = 1;
    oc->min = 1;
    if (api == NULL || api->cap_members == NULL)
        return 0;
    oc->names = api->cap_members;
    oc->min = api->cap_min;
    for (int i = 0; i < OUTCAP_MEMBERS && oc->names[i] != NULL; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, oc->names[i]);
        if (v == NULL)
            continue;
        oc->present[i] = 1;
        if (cJSON_IsNull(v))
            continue;
        if (!whole(v, 0, OUTCAP_MAX)) {
            snprintf(msg, cap, "'%s' must be a whole number from 0 to %d", oc->names[i],
                     OUTCAP_MAX);
            return -1;
        }
        if (oc->value < 0 || (int64_t)v->valuedouble < oc->value)
            oc->value = (int64_t)v->valuedouble;
    }
    if (api->choices_member != NULL) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(body, api->choices_member);
        if (n != NULL && !cJSON_IsNull(n)) {
            if (!whole(n, 1, OUTCAP_CHOICES_MAX)) {
                snprintf(msg, cap, "'%s' must be a whole number from 1 to %d",
                         api->choices_member, OUTCAP_CHOICES_MAX);
                return -1;
            }
            oc->choices = (int)n->valuedouble;
        }
    }
    return 0;
}

int outcap_clamp(const struct outcap *oc, cJSON *body, int64_t allowance, int add,
                 struct arena *a, struct jsonedit_op *ops)
{
    char num[24];
    int nops = 0, any = 0;

    if (oc->names == NULL || allowance < 0)
        return 0;
    snprintf(num, sizeof(num), "%lld", (long long)allowance);
    for (int i = 0; i < OUTCAP_MEMBERS && oc->names[i] != NULL; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, oc->names[i]);
        any |= oc->present[i];
        if (!oc->present[i] || (cJSON_IsNumber(v) && v->valuedouble <= (double)allowance))
            continue;
        ops[nops].key = oc->names[i];
        ops[nops].value = arena_strndup(a, num, strlen(num));
        if (ops[nops++].value == NULL)
            return -1;
        cJSON_DeleteItemFromObjectCaseSensitive(body, oc->names[i]);
        if (cJSON_AddNumberToObject(body, oc->names[i], (double)allowance) == NULL)
            return -1;
    }
    if (!any && add) {
        ops[0].key = oc->names[0];
        ops[0].value = arena_strndup(a, num, strlen(num));
        if (ops[0].value == NULL ||
            cJSON_AddNumberToObject(body, oc->names[0], (double)allowance) == NULL)
            return -1;
        nops = 1;
    }
    return nops;
}
