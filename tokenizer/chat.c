/*
 * chat: request-level token counting. The constants are OpenAI's and Anthropic's published
 * figures; where they publish none, the choice is named and made on the side of counting more,
 * since the count reserves budget before the request is forwarded.
 */
#include "tokenizer/chat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* OpenAI's chat format: <|start|>{role/name}\n{content}<|end|>\n costs 3 tokens a message,
 * a name one more, and the reply is primed with <|start|>assistant<|message|>: 3 tokens. */
#define PER_MESSAGE 3
#define PER_NAME 1
#define REPLY_PRIMING 3

/* Anthropic's tool-use system prompt, added when a request has tools (its documentation's
 * figures for tool_choice auto or none, and any or tool). */
#define ANTHROPIC_TOOLS_AUTO 346
#define ANTHROPIC_TOOLS_FORCED 313

/* An image whose size is unknown is billed at the most its detail can cost: a 768 x 2048
 * image in eight 512-pixel tiles; for Anthropic, the 1.15-megapixel cap over 750. */
#define OPENAI_TILE_MAX 8
#define ANTHROPIC_IMAGE_MAX 1600

typedef struct counter {
    const tok_enc *e;
    const char *model;
    tok_count_result *out;
    int failed;
} counter;

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

const char *tok_encoding_for_model(const char *m)
{
    static const char *const o200k[] = {"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5",
                                        "o1",     "o3",         "o4",      "gpt-oss", NULL};
    static const char *const cl100k[] = {"gpt-4",           "gpt-3.5",     "gpt-35",
                                         "text-embedding-", "davinci-002", "babbage-002",
                                         "claude",          NULL};

    if (m == NULL)
        return "o200k_base";
    for (int i = 0; o200k[i]; i++)
        if (has_prefix(m, o200k[i]))
            return "o200k_base";
    for (int i = 0; cl100k[i]; i++)
        if (has_prefix(m, cl100k[i]))
            return "cl100k_base";
    if (has_prefix(m, "text-davinci-") || has_prefix(m, "code-"))
        return "p50k_base";
    return "o200k_base";
}

/* Adds the tokens of a string. */
static void text(counter *c, const char *s)
{
    uint64_t n;

    if (s == NULL)
        return;
    if (tok_count(c->e, s, strlen(s), 0, &n) != 0)
        c->failed = 1;
    c->out->tokens += n;
}

/* Adds the tokens of a JSON value as the provider sees it: strings as text, the rest as the
 * JSON text of it (tool arguments, schemas). */
static void json_value(counter *c, const cJSON *v)
{
    char *s;

    if (cJSON_IsString(v)) {
        text(c, v->valuestring);
        return;
    }
    if (v == NULL || cJSON_IsNull(v))
        return;
    s = cJSON_PrintUnformatted(v);
    if (s == NULL) {
        c->failed = 1;
        return;
    }
    text(c, s);
    cJSON_free(s);
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

uint64_t tok_image_tokens_openai(const char *model, int w, int h, const char *detail)
{
    uint64_t base = 85, per_tile = 170, tiles;

    if (model != NULL && has_prefix(model, "gpt-4o-mini")) {
        base = 2833; /* gpt-4o-mini bills images at 33.3 times the base figures */
        per_tile = 5667;
    }
    if (detail != NULL && strcmp(detail, "low") == 0)
        return base;
    if (w <= 0 || h <= 0) {
        tiles = OPENAI_TILE_MAX;
    } else {
        double fw = w, fh = h, s;
        if (fw > 2048 || fh > 2048) { /* fit in 2048 x 2048 */
            s = 2048 / (fw > fh ? fw : fh);
            fw *= s;
            fh *= s;
        }
        s = fw < fh ? fw : fh; /* then the shortest side to 768 */
        if (s > 768) {
            fw = fw * 768 / s;
            fh = fh * 768 / s;
        }
        tiles = (uint64_t)ceil(fw / 512) * (uint64_t)ceil(fh / 512);
    }
    return base + per_tile * tiles;
}

uint64_t tok_image_tokens_anthropic(int w, int h)
{
    double fw = w, fh = h, s, px;

    if (w <= 0 || h <= 0)
        return ANTHROPIC_IMAGE_MAX;
    if (fw > 1568 || fh > 1568) { /* the long edge is scaled to 1568 */
        s = 1568 / (fw > fh ? fw : fh);
        fw *= s;
        fh *= s;
    }
    px = fw * fh;
    if (px > 1150000) { /* and the area to about 1.15 megapixels */
        s = sqrt(1150000 / px);
        fw *= s;
        fh *= s;
    }
    return (uint64_t)ceil(fw * fh / 750);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The size from an image file's first n bytes; 0, or -1 when unknown. */
static int sniff_size(const unsigned char *b, size_t n, int *w, int *h)
{
    if (n >= 24 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0) {
        *w = (int)be32(b + 16);
        *h = (int)be32(b + 20);
        return 0;
    }
    if (n >= 10 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) {
        *w = b[6] | b[7] << 8;
        *h = b[8] | b[9] << 8;
        return 0;
    }
    if (n >= 30 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) {
        if (memcmp(b + 12, "VP8X", 4) == 0) {
            *w = 1 + (b[24] | b[25] << 8 | b[26] << 16);
            *h = 1 + (b[27] | b[28] << 8 | b[29] << 16);
            return 0;
        }
        if (memcmp(b + 12, "VP8 ", 4) == 0) {
            *w = (b[26] | b[27] << 8) & 0x3fff;
            *h = (b[28] | b[29] << 8) & 0x3fff;
            return 0;
        }
        if (memcmp(b + 12, "VP8L", 4) == 0 && n >= 25) {
            uint32_t v = b[21] | b[22] << 8 | b[23] << 16 | (uint32_t)b[24] << 24;
            *w = (int)(v & 0x3fff) + 1;
            *h = (int)((v >> 14) & 0x3fff) + 1;
            return 0;
        }
        return -1;
    }
    if (n >= 4 && b[0] == 0xff && b[1] == 0xd8) {
        /* JPEG: walk the segments to the first start-of-frame */
        size_t i = 2;
        while (i + 9 < n) {
            unsigned m;
            if (b[i] != 0xff)
                return -1;
            m = b[i + 1];
            if (m == 0xff) {
                i++;
                continue;
            }
            if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
                *h = b[i + 5] << 8 | b[i + 6];
                *w = b[i + 7] << 8 | b[i + 8];
                return 0;
            }
            i += 2 + (size_t)(b[i + 2] << 8 | b[i + 3]);
        }
    }
    return -1;
}

int tok_image_size(const char *url, int *w, int *h)
{
    enum { HEAD = 65536 }; /* a JPEG's frame header follows its EXIF data */
    const char *b64;
    unsigned char *buf;
    size_t n;
    int len, rc;

    if (url == NULL || !has_prefix(url, "data:") || (b64 = strstr(url, ";base64,")) == NULL)
        return -1;
    b64 += 8;
    n = strlen(b64);
    if (n > HEAD / 3 * 4)
        n = HEAD / 3 * 4;
    n -= n % 4;
    if (n == 0 || (buf = malloc(n / 4 * 3 + 1)) == NULL)
        return -1;
    len = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
    rc = len > 0 ? sniff_size(buf, (size_t)len, w, h) : -1;
    free(buf);
    return rc == 0 && *w > 0 && *h > 0 ? 0 : -1;
}

/* Adds an image given by URL (a data: URL's size is read from it). */
static void image(counter *c, const char *url, const char *detail, int anthropic)
{
    int w = 0, h = 0;
    uint64_t t;

    if (tok_image_size(url, &w, &h) != 0) {
        w = h = 0;
        if (anthropic || detail == NULL || strcmp(detail, "low") != 0)
            c->out->estimated++;
    }
    t = anthropic ? tok_image_tokens_anthropic(w, h)
                  : tok_image_tokens_openai(c->model, w, h, detail);
    c->out->images++;
    c->out->image_tokens += t;
    c->out->tokens += t;
}

/* OpenAI message content: a string, or an array of parts. */
static void openai_content(counter *c, const cJSON *content)
{
    const cJSON *part;

    if (!cJSON_IsArray(content)) {
        json_value(c, content);
        return;
    }
    cJSON_ArrayForEach(part, content)
    {
        const char *type = str_of(part, "type");
        const cJSON *img;
        if (type == NULL)
            json_value(c, part);
        else if (strcmp(type, "text") == 0 || strcmp(type, "input_text") == 0 ||
                 strcmp(type, "output_text") == 0 || strcmp(type, "refusal") == 0)
            text(c, str_of(part, "text") ? str_of(part, "text") : str_of(part, "refusal"));
        else if (strcmp(type, "image_url") == 0 && (img = cJSON_GetObjectItem(part, "image_url")))
            image(c, cJSON_IsString(img) ? img->valuestring : str_of(img, "url"),
                  str_of(img, "detail"), 0);
        else if (strcmp(type, "input_image") == 0)
            image(c, str_of(part, "image_url"), str_of(part, "detail"), 0);
        else {
            /* audio, files: billed by the provider's own rules; count their JSON, mark it */
            c->out->estimated++;
            json_value(c, part);
        }
    }
}

/* The cookbook's constants for function definitions, by encoding family. */
static void openai_tools(counter *c, const cJSON *tools)
{
    int o200k = strcmp(tok_name(c->e), "o200k_base") == 0;
    int func_init = o200k ? 7 : 10, prop_init = 3, prop_key = 3, enum_init = -3, enum_item = 3,
        func_end = 12;
    const cJSON *t;
    int64_t n = 0;
    char line[4096];

    if (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) == 0)
        return;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *f = cJSON_GetObjectItem(t, "function"), *props, *p;
        const char *name, *desc;
        size_t dl;

        if (f == NULL)
            f = t;
        name = str_of(f, "name") ? str_of(f, "name") : "";
        desc = str_of(f, "description") ? str_of(f, "description") : "";
        dl = strlen(desc);
        if (dl > 0 && desc[dl - 1] == '.')
            dl--;
        n += func_init;
        if (strlen(name) + dl + 2 <= sizeof(line)) {
            snprintf(line, sizeof(line), "%s:%.*s", name, (int)dl, desc);
            text(c, line);
        } else {
            text(c, name);
            text(c, desc);
        }
        props = cJSON_GetObjectItem(cJSON_GetObjectItem(f, "parameters"), "properties");
        if (cJSON_IsObject(props) && props->child != NULL) {
            n += prop_init;
            cJSON_ArrayForEach(p, props)
            {
                const char *ptype = str_of(p, "type") ? str_of(p, "type") : "";
                const char *pdesc = str_of(p, "description") ? str_of(p, "description") : "";
                const cJSON *en = cJSON_GetObjectItem(p, "enum"), *item;
                size_t pl = strlen(pdesc);
                n += prop_key;
                if (cJSON_IsArray(en)) {
                    n += enum_init;
                    cJSON_ArrayForEach(item, en)
                    {
                        n += enum_item;
                        json_value(c, item);
                    }
                }
                if (pl > 0 && pdesc[pl - 1] == '.')
                    pl--;
                if (strlen(p->string) + strlen(ptype) + pl + 3 <= sizeof(line)) {
                    snprintf(line, sizeof(line), "%s:%s:%.*s", p->string, ptype, (int)pl, pdesc);
                    text(c, line);
                } else {
                    text(c, p->string);
                    text(c, pdesc);
                }
            }
        }
    }
    n += func_end;
    c->out->tokens += (uint64_t)(n < 0 ? 0 : n);
}

static int count_chat(counter *c, const cJSON *body)
{
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages"), *m, *kv;

    if (!cJSON_IsArray(msgs))
        return -1;
    cJSON_ArrayForEach(m, msgs)
    {
        c->out->tokens += PER_MESSAGE;
        cJSON_ArrayForEach(kv, m)
        {
            if (strcmp(kv->string, "content") == 0)
                openai_content(c, kv);
            else if (strcmp(kv->string, "tool_calls") == 0) {
                const cJSON *call;
                cJSON_ArrayForEach(call, kv)
                {
                    const cJSON *fn = cJSON_GetObjectItem(call, "function");
                    text(c, str_of(fn, "name"));
                    text(c, str_of(fn, "arguments"));
                    c->out->tokens += PER_MESSAGE;
                }
            } else if (cJSON_IsString(kv)) {
                text(c, kv->valuestring);
                if (strcmp(kv->string, "name") == 0)
                    c->out->tokens += PER_NAME;
            }
        }
    }
    c->out->tokens += REPLY_PRIMING;
    openai_tools(c, cJSON_GetObjectItem(body, "tools"));
    openai_tools(c, cJSON_GetObjectItem(body, "functions"));
    return 0;
}

/* /v1/completions prompt or /v1/embeddings input: a string, strings, or token arrays. */
static int count_inputs(counter *c, const cJSON *in)
{
    const cJSON *v;

    if (cJSON_IsString(in)) {
        text(c, in->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(in))
        return -1;
    cJSON_ArrayForEach(v, in)
    {
        if (cJSON_IsString(v))
            text(c, v->valuestring);
        else if (cJSON_IsNumber(v))
            c->out->tokens++; /* an array of token ids */
        else if (cJSON_IsArray(v))
            c->out->tokens += (uint64_t)cJSON_GetArraySize(v);
        else
            return -1;
    }
    return 0;
}

/* /v1/responses: instructions, then input as a string or a list of items. */
static int count_responses(counter *c, const cJSON *body)
{
    const cJSON *in = cJSON_GetObjectItem(body, "input"), *item;

    text(c, str_of(body, "instructions"));
    if (cJSON_IsString(in)) {
        c->out->tokens += PER_MESSAGE;
        text(c, in->valuestring);
    } else if (cJSON_IsArray(in)) {
        cJSON_ArrayForEach(item, in)
        {
            const cJSON *content = cJSON_GetObjectItem(item, "content");
            c->out->tokens += PER_MESSAGE;
            text(c, str_of(item, "role"));
            if (content != NULL)
                openai_content(c, content);
            else { /* function calls and their outputs */
                text(c, str_of(item, "name"));
                text(c, str_of(item, "arguments"));
                text(c, str_of(item, "output"));
            }
        }
    } else if (in != NULL)
        return -1;
    c->out->tokens += REPLY_PRIMING;
    openai_tools(c, cJSON_GetObjectItem(body, "tools"));
    return 0;
}

/* Anthropic content: a string or a list of blocks. */
static void anthropic_content(counter *c, const cJSON *content)
{
    const cJSON *b;

    if (!cJSON_IsArray(content)) {
        json_value(c, content);
        return;
    }
    cJSON_ArrayForEach(b, content)
    {
        const char *type = str_of(b, "type");
        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0)
            text(c, str_of(b, "text"));
        else if (strcmp(type, "image") == 0) {
            const cJSON *src = cJSON_GetObjectItem(b, "source");
            const char *data = str_of(src, "data"), *mt = str_of(src, "media_type");
            char *url = NULL;
            if (data != NULL && mt != NULL &&
                (url = malloc(strlen(data) + strlen(mt) + 16)) != NULL)
                sprintf(url, "data:%s;base64,%s", mt, data);
            image(c, url, NULL, 1);
            free(url);
        } else if (strcmp(type, "tool_use") == 0) {
            text(c, str_of(b, "name"));
            json_value(c, cJSON_GetObjectItem(b, "input"));
        } else if (strcmp(type, "tool_result") == 0)
            anthropic_content(c, cJSON_GetObjectItem(b, "content"));
        else if (strcmp(type, "thinking") == 0)
            text(c, str_of(b, "thinking"));
        else {
            c->out->estimated++; /* documents and the like: their JSON text */
            json_value(c, b);
        }
    }
}

static int count_messages(counter *c, const cJSON *body, double factor)
{
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages"), *m, *tools, *t;
    const char *choice;

    if (!cJSON_IsArray(msgs))
        return -1;
    anthropic_content(c, cJSON_GetObjectItem(body, "system"));
    cJSON_ArrayForEach(m, msgs)
    {
        c->out->tokens += PER_MESSAGE;
        anthropic_content(c, cJSON_GetObjectItem(m, "content"));
    }
    c->out->tokens += REPLY_PRIMING;
    tools = cJSON_GetObjectItem(body, "tools");
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        choice = str_of(cJSON_GetObjectItem(body, "tool_choice"), "type");
        c->out->tokens += choice && (strcmp(choice, "any") == 0 || strcmp(choice, "tool") == 0)
                              ? ANTHROPIC_TOOLS_FORCED
                              : ANTHROPIC_TOOLS_AUTO;
        cJSON_ArrayForEach(t, tools)
        {
            text(c, str_of(t, "name"));
            text(c, str_of(t, "description"));
            json_value(c, cJSON_GetObjectItem(t, "input_schema"));
        }
    }
    c->out->approximate = 1;
    if (factor > 0 && factor != 1.0)
        c->out->tokens = (uint64_t)ceil((double)c->out->tokens * factor);
    return 0;
}

int tok_count_request(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                      double factor, tok_count_result *out)
{
    counter c = {e, model, out, 0};
    int rc;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(body))
        return -1;
    switch (api) {
    case TOK_API_CHAT:
        rc = count_chat(&c, body);
        break;
    case TOK_API_COMPLETIONS:
        rc = count_inputs(&c, cJSON_GetObjectItem(body, "prompt"));
        break;
    case TOK_API_EMBEDDINGS:
        rc = count_inputs(&c, cJSON_GetObjectItem(body, "input"));
        break;
    case TOK_API_RESPONSES:
        rc = count_responses(&c, body);
        break;
    case TOK_API_MESSAGES:
        rc = count_messages(&c, body, factor);
        break;
    default:
        rc = -1;
    }
    return rc == 0 && !c.failed ? 0 : -1;
}

int tok_count_request_ex(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                         double factor, const tok_count_opts *opts, tok_count_result *out)
{
    /* STUB until the prefixcount branch lands: no memo, no parts */
    if (opts != NULL && opts->parts != NULL) {
        opts->parts->tools = opts->parts->system = 0;
        opts->parts->nmessages = 0;
    }
    return tok_count_request(e, api, body, model, factor, out);
}

int tok_chat_cli(const char *s, size_t n, const char *encoding, const char *model, int json)
{
    cJSON *body = cJSON_ParseWithLength(s, n);
    const cJSON *mv;
    tok_api api;
    const tok_enc *e;
    tok_count_result r;
    int rc = 0;

    if (body == NULL) {
        fprintf(stderr, "tokengate count --chat: the input is not valid JSON\n");
        return 1;
    }
    mv = cJSON_GetObjectItem(body, "model");
    if (model == NULL && cJSON_IsString(mv))
        model = mv->valuestring;
    /* an Anthropic request has max_tokens and content blocks or a system field; tell by model */
    if (model != NULL && has_prefix(model, "claude"))
        api = TOK_API_MESSAGES;
    else if (cJSON_GetObjectItem(body, "messages") != NULL)
        api = TOK_API_CHAT;
    else if (cJSON_GetObjectItem(body, "prompt") != NULL)
        api = TOK_API_COMPLETIONS;
    else if (cJSON_GetObjectItem(body, "input") != NULL && model != NULL &&
             has_prefix(model, "text-embedding"))
        api = TOK_API_EMBEDDINGS;
    else
        api = TOK_API_RESPONSES;
    if (encoding == NULL)
        encoding = tok_encoding_for_model(model);
    if ((e = tok_encoding(encoding)) == NULL) {
        fprintf(stderr, "tokengate count: unknown encoding '%s'\n", encoding);
        cJSON_Delete(body);
        return 2;
    }
    if (tok_count_request(e, api, body, model, 1.0, &r) != 0) {
        fprintf(stderr, "tokengate count --chat: not a chat, completions, embeddings, responses "
                        "or messages request\n");
        rc = 1;
    } else if (json) {
        printf("{\"tokens\":%llu,\"encoding\":\"%s\",\"images\":%u,\"image_tokens\":%llu,"
               "\"estimated\":%u,\"approximate\":%s}\n",
               (unsigned long long)r.tokens, tok_name(e), r.images,
               (unsigned long long)r.image_tokens, r.estimated, r.approximate ? "true" : "false");
    } else
        printf("%llu\n", (unsigned long long)r.tokens);
    cJSON_Delete(body);
    return rc;
}
