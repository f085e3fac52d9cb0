/*
 * dialect: what the gate knows of one provider API, as one constant object per API, so that
 * nothing else in the gate switches on the endpoint to read an answer, write an error or
 * build the upstream request.
 *
 *   openai_chat.c        POST /v1/chat/completions
 *   openai_responses.c   POST /v1/responses
 *   openai_embeddings.c  POST /v1/embeddings
 *   anthropic_messages.c POST /v1/messages
 *   anthropic_count.c    POST /v1/messages/count_tokens
 *
 * A request holds two dialects (struct gate_req): the client's, the API it was sent in (the
 * key it presents, the body it sent, the errors the gate writes back to it), and the
 * upstream's, the API the provider answers in (the path and key of the upstream request, the
 * usage it reports, the output text it sends, the stream usage the gate asks it for). Today
 * both are the dialect of the endpoint the client called; no consumer may assume they are the
 * same.
 *
 * Dialects are constant, shared by every thread, and every function pointer is set: an API
 * without the thing (embeddings' output text, count_tokens' usage) does nothing.
 */
#ifndef TG_DIALECT_H
#define TG_DIALECT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "gate/api/apierr.h"
#include "gate/api/endpoint.h"
#include "gate/api/usage.h"
#include "gate/util/jsonedit.h"

/* Where a dialect hands the output text it finds in an answer: s is n bytes of UTF-8 (not
 * NUL-terminated; valid only during the call). */
typedef void api_text_fn(void *arg, const char *s, size_t n);

/* A header a key may come in. */
struct api_key_header {
    const char *name;   /* lower case; NULL ends a list */
    const char *scheme; /* taken off the front of the value when there ("Bearer "), or NULL */
};

struct api_dialect {
    const char *name;          /* "openai.chat", ...: for logs and tests */
    enum endpoint ep;          /* the gate's endpoint that speaks it */
    enum conf_format format;   /* its family: which providers serve it */
    int tok_api;               /* tok_api (tokenizer/chat.h): how its request bodies are counted */
    const char *upstream_path; /* after the provider's path_prefix: "/chat/completions" */
    int generates;             /* its answers hold generated text, which the gate counts */
    int billed;                /* the provider charges for it: budgets reserve for it */

    /* keys: the headers a client's key is read from, in order, the first present wins
     * (ends with {NULL}); the start of the header line the provider's key follows; a version
     * header the provider requires, sent with version_default when the client sent none */
    const struct api_key_header *client_keys;
    const char *upstream_key;
    const char *version_header;
    const char *version_default;

    /* the output cap (outcap.c): the request members that cap it, NULL-terminated, the first
     * the one the gate adds (NULL: the API has no output to cap); the smallest cap the API
     * accepts; the member that asks for several answers ("n"), or NULL. At most
     * OUTCAP_MEMBERS members are read. */
    const char *const *cap_members;
    int64_t cap_min;
    const char *choices_member;

    /* Reads usage from a whole answer: final when present (usage.h). Leaves u alone when the
     * body has none. */
    void (*usage_body)(const cJSON *body, struct usage *u);

    /* Reads usage from one stream event (its "event:" name, "" for none, and parsed data);
     * sets u->final on the event that closes the accounting. Returns 1 when the event is only
     * the usage report that stream_usage asked for (the gate drops it when it asked), else 0. */
    int (*usage_event)(const char *name, const cJSON *data, struct usage *u);

    /* Calls add for each piece of output text in a whole answer: the text, refusals,
     * reasoning the provider shows, tool calls' names and arguments. */
    void (*text_body)(const cJSON *body, api_text_fn *add, void *arg);

    /* The same for one stream event. */
    void (*text_event)(const char *name, const cJSON *data, api_text_fn *add, void *arg);

    /*
     * For a stream request body: asks the provider to report usage at the end of the stream
     * when the body does not already. Edits body and writes the splice op into *op, its value
     * printed by cJSON (allocated where jsonmem says; NULL when memory ran out). Returns 1
     * when it asked, 0 when there was nothing to do.
     */
    int (*stream_usage)(cJSON *body, struct jsonedit_op *op);

    /* Writes the JSON error body of the gate's kind of error (apierr.h), NUL-terminated,
     * truncated to fit cap. message is shown to the client. Returns the length. */
    size_t (*error_body)(enum apierr kind, const char *message, char *buf, size_t cap);

    /* Writes the server-sent event that ends a stream cut short. Returns the length. */
    size_t (*error_event)(enum apierr kind, const char *message, char *buf, size_t cap);

    /* Makes an error document of the given type and code (a code the API has no place for is
     * dropped) and message; *err is its inner error object, for more members. The caller
     * cJSON_Deletes it. NULL when memory ran out. */
    cJSON *(*error_doc)(const char *type, const char *code, const char *message, cJSON **err);
};

extern const struct api_dialect api_openai_chat;
extern const struct api_dialect api_openai_responses;
extern const struct api_dialect api_openai_embeddings;
extern const struct api_dialect api_anthropic_messages;
extern const struct api_dialect api_anthropic_count;

/* The dialect an endpoint speaks, or NULL for one that is no provider API (the gate's own
 * /healthz, /status, /v1/models, and EP_NONE). */
const struct api_dialect *api_dialect_for(enum endpoint ep);

/* The dialect whose error shape answers a client: client when it is set, else (a request of
 * no API: an unknown path, a local endpoint, one not yet parsed) the first dialect of family
 * fmt. Never NULL. */
const struct api_dialect *api_dialect_errors(const struct api_dialect *client,
                                             enum conf_format fmt);

/* Authorization (a bearer token), then x-api-key: the headers every API takes a key from. */
extern const struct api_key_header api_keys_any[];

/* The headers a client's key is read from: client's, else (no API) those every dialect
 * takes. Ends with {NULL}. */
const struct api_key_header *api_client_keys(const struct api_dialect *client);

/* Whether any API reads a client's key from header name (lower case): such a header is never
 * forwarded when the gate sends a key of its own or checks keys of its own. */
int api_is_key_header(const char *name);

/* Helpers for the dialects: a string member's text, and any member's (a string's text, else
 * its JSON text, as tool inputs count). Nothing for NULL, JSON null or a non-string. */
void api_text_string(const cJSON *v, api_text_fn *add, void *arg);
void api_text_json(const cJSON *v, api_text_fn *add, void *arg);

/* Helpers for the dialects: does nothing, the stream_usage and text_event of an API without. */
int api_no_stream_usage(cJSON *body, struct jsonedit_op *op);
void api_no_text_event(const char *name, const cJSON *data, api_text_fn *add, void *arg);
void api_no_text_body(const cJSON *body, api_text_fn *add, void *arg);
int api_no_usage_event(const char *name, const cJSON *data, struct usage *u);

#endif
