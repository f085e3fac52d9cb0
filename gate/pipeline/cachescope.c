/*
 * cachescope: the scope of cached entries. See cachescope.h.
 */
#include "gate/pipeline/cachescope.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "gate/budget/budget.h"
#include "gate/core/worker.h"
#include "gate/pipeline/req.h"
#include "gate/pipeline/spend.h"

const char *cache_scope_label(const struct gate_req *req, enum conf_level lv,
                              enum conf_level *level, char *buf, size_t cap)
{
    struct budget_book *b = req->w->srv->book;
    int n;

    *level = CONF_LEVEL_AGENT;
    if (cap < 24)
        return NULL;
    if (b == NULL || req->agent < 0) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        size_t len = 0;
        const char *cred = spend_presented_key(req, &len);

        if (cred == NULL || len == 0)
            return NULL;
        SHA256((const unsigned char *)cred, len, md);
        n = snprintf(buf, cap, "key:");
        for (int i = 0; i < 8; i++)
            n += snprintf(buf + n, cap - (size_t)n, "%02x", md[i]);
        return buf;
    }
    if (lv == CONF_LEVEL_ORG) {
        *level = CONF_LEVEL_ORG;
        snprintf(buf, cap, "org");
        return buf;
    }
    const char *name = budget_scope_at_level(b, req->agent, lv);
    if (name != NULL) {
        *level = lv;
        n = snprintf(buf, cap, "%s:%s", conf_level_name(lv), name);
    } else {
        /* no scope of that level above the agent: the narrowest there is, its own */
        budget_scope_label(b, req->agent, buf, cap);
        n = (int)strlen(buf);
    }
    /* a label that reaches cap - 1 may have been cut (budget_scope_label cuts there) */
    return n >= 0 && (size_t)n < cap - 1 ? buf : NULL;
}
