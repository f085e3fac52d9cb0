/*
 * openai_embeddings: OpenAI's embeddings API, POST /v1/embeddings. See dialect.h.
 *
 * Usage is in "usage" as chat's (prompt_tokens; no completion tokens). An answer is vectors:
 * no output text, no output cap, no stream.
 */
#include "gate/api/dialect.h"

#include "tokenizer/chat.h"

static void usage_body(const cJSON *body, struct usage *u)
{
    usage_read_openai(cJSON_GetObjectItemCaseSensitive(body, "usage"), "prompt_tokens",
                      "completion_tokens", "prompt_tokens_details", u);
    usage_body_done(u);
}

const struct api_dialect api_openai_embeddings = {
    .name = "openai.embeddings",
    .ep = EP_EMBEDDINGS,
    .format = CONF_FMT_OPENAI,
    .tok_api = TOK_API_EMBEDDINGS,
    .upstream_path = "/embeddings",
    .generates = 0,
    .billed = 1,
    .client_keys = api_keys_any,
    .upstream_key = "authorization: Bearer ",
    .cap_members = NULL,
    .cap_min = 1,
    .usage_body = usage_body,
    .usage_event = api_no_usage_event,
    .text_body = api_no_text_body,
    .text_event = api_no_text_event,
    .stream_usage = api_no_stream_usage,
    .error_body = apierr_openai_body,
    .error_event = apierr_openai_event,
    .error_doc = apierr_openai_doc,
};
