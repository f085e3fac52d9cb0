/*
 * openai_responses: OpenAI's Responses API, POST /v1/responses. See dialect.h.
 *
 * Usage is in "usage" (input_tokens, output_tokens, input_tokens_details.cached_tokens); a
 * stream always reports it, in the response of its last event (response.completed,
 * .incomplete or .failed). Output text is in the output items: messages' content parts,
 * function calls' arguments; a stream sends it as output_text, refusal and function-call
 * argument deltas.
 */
#include "gate/api/dialect.h"

#include <string.h>

#include "tokenizer/chat.h"

#define GET cJSON_GetObjectItemCaseSensitive

static void usage_body(const cJSON *body, struct usage *u)
{
    usage_read_openai(GET(body, "usage"), "input_tokens", "output_tokens", "input_tokens_details",
                      u);
    usage_body_done(u);
}

static int usage_event(const char *name, const cJSON *data, struct usage *u)
{
    if (strcmp(name, "response.completed") == 0 || strcmp(name, "response.incomplete") == 0 ||
        strcmp(name, "response.failed") == 0) {
        usage_read_openai(GET(GET(data, "response"), "usage"), "input_tokens", "output_tokens",
                          "input_tokens_details", u);
        u->final = u->have;
        usage_check_parts(u);
    }
    return 0;
}

static void text_body(const cJSON *body, api_text_fn *add, void *arg)
{
    const cJSON *c, *p;

    cJSON_ArrayForEach(c, GET(body, "output"))
    {
        cJSON_ArrayForEach(p, GET(c, "content")) api_text_string(GET(p, "text"), add, arg);
        api_text_string(GET(c, "arguments"), add, arg);
    }
}

static void text_event(const char *name, const cJSON *data, api_text_fn *add, void *arg)
{
    if (strcmp(name, "response.output_text.delta") == 0 ||
        strcmp(name, "response.function_call_arguments.delta") == 0 ||
        strcmp(name, "response.refusal.delta") == 0)
        api_text_string(GET(data, "delta"), add, arg);
}

static const char *const caps[] = {"max_output_tokens", NULL};

const struct api_dialect api_openai_responses = {
    .name = "openai.responses",
    .ep = EP_RESPONSES,
    .format = CONF_FMT_OPENAI,
    .tok_api = TOK_API_RESPONSES,
    .upstream_path = "/responses",
    .generates = 1,
    .billed = 1,
    .client_keys = api_keys_any,
    .upstream_key = "authorization: Bearer ",
    .cap_members = caps,
    .cap_min = 16, /* the API refuses less */
    .usage_body = usage_body,
    .usage_event = usage_event,
    .text_body = text_body,
    .text_event = text_event,
    .stream_usage = api_no_stream_usage, /* its streams report usage unasked */
    .error_body = apierr_openai_body,
    .error_event = apierr_openai_event,
    .error_doc = apierr_openai_doc,
};
