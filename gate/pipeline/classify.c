/*
 * classify: to be written (issue 12). See classify.h.
 */
#include "gate/pipeline/classify.h"
#include "gate/pipeline/req.h"

int classify_label(struct gate_req *req, const char *text, size_t len)
{
    (void)text, (void)len;
    req->rt.label = "";
    return 1;
}

void classify_log(const struct gate_req *req, struct cJSON *rec)
{
    (void)req, (void)rec;
}
