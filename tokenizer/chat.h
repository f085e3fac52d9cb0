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
 * The counts of a request's parts, for placing prompt-cache breakpoints (cache/prompt.h): the
 * tool definitions, the system prompt (Anthropic's "system"; for OpenAI chat, 0: its system
 * messages are messages) and each message, in the request's order, each with its share of the
 * per-message overheads and the factor applied. Messages past cap are counted in the total
 * only (nmessages says how many were written). A message's part is its 3 tokens of framing,
 * its name's token and its text, tool calls and images; tools holds the tool definitions
 * (for Anthropic with its tool-use system prompt). What no part holds: the 3 tokens priming
 * the reply. So for OpenAI chat, total = sum of parts + 3 exactly; for Messages each part is
 * rounded up after the factor on its own, so the sum of the parts and ceil(3 x factor) may
 * pass the total by up to one token a part.
 */
typedef struct tok_count_parts {
    uint64_t tools, system;
    uint64_t *messages; /* the caller's array of cap counts */
    uint32_t cap, nmessages;
} tok_count_parts;

/*
 * A memo of the counts of message prefixes (cache/prefixcount.c), so that a conversation sent
 * again each turn is tokenized only in its new messages. The key is a 128-bit hash (XXH3-128)
 * chained over the messages, seeded with the encoding's name and the API (and, for Messages,
 * the system prompt): each message is hashed over every step of its count, in order (each text
 * it reads, each overhead, each image's source, each JSON value counted as text), tagged, so
 * that messages that hash alike count alike. The count of messages [0, i] is found by the key
 * of message i (for Messages, the key before message 0 holds the system prompt's count). A
 * value is the count of the prefix as tok_count_result's members (before the factor). Keys
 * are in the machine's byte order: they never leave the process.
 */
typedef struct tok_prefix_val {
    uint64_t tokens, image_tokens;
    uint32_t images, estimated;
} tok_prefix_val;

typedef struct tok_prefix_memo {
    int (*get)(void *arg, const uint8_t key[16], tok_prefix_val *out); /* 1 found, 0 not */
    void (*put)(void *arg, const uint8_t key[16], const tok_prefix_val *v);
    void *arg;
} tok_prefix_memo;

/* A conversation of more messages is counted without the memo (its keys would take 24 bytes a
 * message, and its boundaries would crowd the memo). */
#define TOK_PREFIX_MAX_MESSAGES 100000

typedef struct tok_count_opts {
    const tok_prefix_memo *memo; /* or NULL */
    tok_count_parts *parts;      /* or NULL */
} tok_count_opts;

/*
 * tok_count_request with options (opts NULL: none): the same count, to the token, with or
 * without a memo.
 */
int tok_count_request_ex(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                         double factor, const tok_count_opts *opts, tok_count_result *out);

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
