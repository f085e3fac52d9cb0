/*
 * filter_model: an answer in the client's own API names the model the client asked for
 * rather than the target's, when the routing rule says rewrite_model (a translated answer is
 * named by filter_xlate). The "model" member of a whole answer, of each OpenAI chunk, and of
 * Anthropic's message_start is rewritten; the rest passes as the provider wrote it. See
 * filter.h.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/pipeline/filter.h"
#include "gate/pipeline/req.h"
#include "gate/util/arena.h"

/* The object holding the answer's "model" in doc: doc itself, or an Anthropic
 * message_start's message. NULL when there is none, or it already says name. */
static cJSON *holder(const cJSON *doc, const char *name)
{
    const cJSON *at = doc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(at, "model");

    if (m == NULL) {
        at = cJSON_GetObjectItemCaseSensitive(doc, "message");
        m = cJSON_GetObjectItemCaseSensitive(at, "model");
    }
    if (!cJSON_IsString(m) || strcmp(m->valuestring, name) == 0)
        return NULL;
    return (cJSON *)at;
}

/* doc copied with its model renamed, or NULL (nothing to rename, or out of memory). */
static cJSON *renamed(const cJSON *doc, const char *name)
{
    cJSON *copy, *at;

    if (holder(doc, name) == NULL || (copy = cJSON_Duplicate(doc, 1)) == NULL)
        return NULL;
    at = holder(copy, name);
    if (at == NULL ||
        !cJSON_ReplaceItemInObjectCaseSensitive(at, "model", cJSON_CreateString(name))) {
        cJSON_Delete(copy);
        return NULL;
    }
    return copy;
}

static int model_event(struct resp_filter *f, struct gate_req *req, struct resp_event *ev)
{
    cJSON *copy = ev->data != NULL ? renamed(ev->data, req->model) : NULL;
    char *text = copy != NULL ? cJSON_PrintUnformatted(copy) : NULL;
    int rc;

    if (text == NULL) {
        cJSON_Delete(copy);
        return filter_event(f, req, ev); /* as it came */
    }
    /* the event again, its data the renamed one (malloc'd as the event's own data is) */
    size_t cap = strlen(text) + strlen(ev->name) + 32;
    char *raw = malloc(cap);
    if (raw == NULL) {
        cJSON_free(text);
        cJSON_Delete(copy);
        return filter_event(f, req, ev);
    }
    int n = ev->name[0] ? snprintf(raw, cap, "event: %s\ndata: %s\n\n", ev->name, text)
                        : snprintf(raw, cap, "data: %s\n\n", text);
    struct resp_event nev = *ev;
    nev.data = copy;
    nev.raw = raw;
    nev.raw_len = (size_t)n;
    nev.text = text;
    nev.text_len = strlen(text);
    rc = filter_event(f, req, &nev);
    ev->drop = nev.drop;
    free(raw);
    cJSON_free(text); /* cJSON's memory: the capped scope the event was parsed in */
    cJSON_Delete(copy);
    return rc;
}

static int model_body(struct resp_filter *f, struct gate_req *req, const struct resp_body *b)
{
    if (req->up_sse || b->doc == NULL)
        return filter_body(f, req, b);
    cJSON *copy = renamed(b->doc, req->model); /* in the arena (jsonmem) */
    const char *text = copy != NULL ? cJSON_PrintUnformatted(copy) : NULL;
    if (text == NULL)
        return filter_body(f, req, b);
    evbuffer_drain(req->up_body, evbuffer_get_length(req->up_body));
    if (evbuffer_add(req->up_body, text, strlen(text)) < 0) {
        if (req->stop_why == NULL) {
            req->stop_kind = APIERR_INTERNAL;
            req->stop_why = "out of memory";
        }
        return -1;
    }
    struct resp_body nb = *b;
    nb.data = text;
    nb.len = strlen(text);
    nb.doc = copy;
    return filter_body(f, req, &nb);
}

const struct resp_filter_type filter_model = {
    .name = "model",
    .event = model_event,
    .body = model_body,
};
