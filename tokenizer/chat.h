/*
 * chat: the input tokens of a whole API request, counted as the provider counts them.
 *
 * OpenAI chat requests follow OpenAI's published formula (3 tokens per message, 1 per name,
 * 3 to prime the reply, tool definitions by the cookbook's per-function and per-property
 * constants, images by their 512-pixel tile formula). Anthropic's tokenizer is not public:
 * Messages requests are counted with an OpenAI encoding plus Anthropic's documented image and
 * tool overheads, times a calibration factor the config sets per model (see tokenizer/README.md).
 */
#ifndef TOK_CHAT_H
#define TOK_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tokenizer/tok.h"

typedef enum tok_api {
    TOK_API_CHAT,        /* OpenAI /v1/chat/completions */
    TOK_API_COMPLETIONS, /* OpenAI /v1/completions */
    TOK_API_EMBEDDINGS,  /* OpenAI /v1/embeddings */
    TOK_API_RESPONSES,   /* OpenAI /v1/responses */
    TOK_API_MESSAGES,    /* Anthropic /v1/messages and /v1/messages/count_tokens */
} tok_api;

typedef struct tok_count_result {
    uint64_t tokens;       /* the whole input, overheads and images included */
    uint64_t image_tokens; /* the part of tokens that images account for */
    uint32_t images;
    uint32_t estimated; /* parts counted by an upper bound: images of unknown size, audio, files */
    int approximate;    /* the provider's tokenizer is not public (Anthropic) */
} tok_count_result;

/*
 * Counts the input tokens of the request body of api, for model, with encoding e; factor
 * scales approximate counts (Anthropic), 1.0 for none. Returns 0, or -1 when the body is not
 * the API's request shape (no messages array, say) or memory runs out; *out is then partial.
 */
int tok_count_request(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                      double factor, tok_count_result *out);

/*
 * The encoding tiktoken uses for an OpenAI model name, by family: o200k_base for gpt-4o,
 * gpt-4.1, gpt-4.5, gpt-5, the o-series and gpt-oss; cl100k_base for gpt-4, gpt-3.5 and the
 * embedding models; cl100k_base for Claude models (the approximation's base); o200k_base for
 * any other name.
 */
const char *tok_encoding_for_model(const char *model);

/*
 * The input tokens of an image: width and height in pixels (0 when unknown, which gives the
 * largest count the model can bill), detail "low", "high" or "auto"/NULL.
 */
uint64_t tok_image_tokens_openai(const char *model, int width, int height, const char *detail);
uint64_t tok_image_tokens_anthropic(int width, int height);

/*
 * The size of the image in a data: URL (PNG, GIF, JPEG or WebP), read from its header.
 * Returns 0, or -1 when the URL is no data URL or the format is unknown.
 */
int tok_image_size(const char *url, int *width, int *height);

/* `tokengate count --chat`: counts the request body in n bytes at s and prints it. */
int tok_chat_cli(const char *s, size_t n, const char *encoding, const char *model, int json);

#endif
