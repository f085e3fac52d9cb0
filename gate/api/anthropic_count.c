/*
 * anthropic_count: Anthropic's token counting, POST /v1/messages/count_tokens. See dialect.h.
 *
 * Its body is a Messages request; its answer is {"input_tokens": N}, a count the provider
 * does not bill, so the gate reads no usage from it, reserves no budget for it and counts no
 * output.
 */
#include "gate/api/dialect.h"

#include "tokenizer/chat.h"

static void usage_body(const cJSON *body, struct usage *u)
{
    (void)body; /* its input_tokens is the answer, not usage */
    (void)u;
}

const struct api_dialect api_anthropic_count = {
    .name = "anthropic.count_tokens",
    .ep = EP_COUNT_TOKENS,
    .format = CONF_FMT_ANTHROPIC,
    .tok_api = TOK_API_MESSAGES,
    .upstream_path = "/messages/count_tokens",
    .generates = 0,
    .billed = 0,
    .client_keys = api_keys_any,
    .upstream_key = "x-api-key: ",
    .version_header = "anthropic-version",
    .version_default = "2023-06-01",
    .cap_members = NULL,
    .cap_min = 1,
    .usage_body = usage_body,
    .usage_event = api_no_usage_event,
    .text_body = api_no_text_body,
    .text_event = api_no_text_event,
    .stream_usage = api_no_stream_usage,
    .error_body = apierr_anthropic_body,
    .error_event = apierr_anthropic_event,
    .error_doc = apierr_anthropic_doc,
};
