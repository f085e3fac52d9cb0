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

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h> /* the library's XXH3, on AVX2 or AVX-512 where the CPU has them */
#endif

#include "tokenizer/chatrole.h"

/* OpenAI's chat format: <|start|>{role/name}\n{content}<|end|>\n costs 3 tokens a message,
 * a name one more, and the reply is primed with <|start|>assistant<|message|>: 3 tokens. */
#define PER_MESSAGE 3
#define PER_NAME 1
#define REPLY_PRIMING 3

/* Anthropic's tool-use system prompt, added when a request has tools (its documentation's
 * figures for tool_choice auto or none, and any or tool). */
#define ANTHROPIC_TOOLS_AUTO 346
#define ANTHROPIC_TOOLS_FORCED 313

/*
 * A counter walks a request in one of two modes. Counting adds tokens to out. Hashing (h set)
 * counts nothing: each step records what it would add in h instead (a text, a constant, an
 * image's source, a JSON value's tree), tagged, a string by its length and XXH3-128 hash, so
 * that no two different sequences of steps run together. Two messages that hash alike
 * therefore count alike, by construction: the prefix memo keys a message by the hash of its
 * walk. The records gather in a small buffer; a full buffer is folded into its own hash.
 */
typedef struct hbuf {
    unsigned char b[512];
    size_t n;
} hbuf;

typedef struct counter {
    const tok_enc *e;
    const char *model;
    tok_count_result *out;
    hbuf *h; /* NULL: counting */
    int failed;
} counter;

/* The buffer's hash, as 16 bytes (in the machine's order: the keys never leave the process). */
static void h_digest(const hbuf *h, uint8_t out[16])
{
    XXH128_hash_t d = XXH3_128bits(h->b, h->n);

    memcpy(out, &d, 16);
}

static void h_bytes(counter *c, const void *p, size_t n)
{
    hbuf *h = c->h;

    if (h->n + n > sizeof(h->b)) { /* n is at most 16 */
        h_digest(h, h->b);
        h->n = 16;
    }
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void h_u64(counter *c, int tag, uint64_t v)
{
    unsigned char b[9];

    b[0] = (unsigned char)tag;
    memcpy(b + 1, &v, sizeof(v));
    h_bytes(c, b, sizeof(b));
}

/* A tag, then a string's length and its bytes (up to 16) or hash; NULL is told apart from "". */
static void h_str(counter *c, int tag, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    h_u64(c, tag, s != NULL ? (uint64_t)n : UINT64_MAX);
    if (n > 16) {
        XXH128_hash_t d = XXH3_128bits(s, n);
        h_bytes(c, &d, 16);
    } else if (n > 0)
        h_bytes(c, s, n);
}

/* Feeds the JSON tree at v: what cJSON prints for it is a function of what this feeds. */
static void h_tree(counter *c, const cJSON *v)
{
    const cJSON *k;

    if (cJSON_IsNumber(v)) {
        uint64_t bits;
        memcpy(&bits, &v->valuedouble, sizeof(bits));
        h_u64(c, 'n', bits);
    } else if (cJSON_IsString(v) || cJSON_IsRaw(v))
        h_str(c, v->type & 0xff, v->valuestring);
    else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        h_u64(c, v->type & 0xff, 0);
        for (k = v->child; k != NULL; k = k->next) {
            if (cJSON_IsObject(v))
                h_str(c, 'k', k->string);
            h_tree(c, k);
        }
        h_u64(c, ']', 0);
    } else
        h_u64(c, 'v', (uint64_t)(v->type & 0xff)); /* true, false, null, invalid */
}

/* Adds n tokens of overhead. */
static void add(counter *c, uint64_t n)
{
    if (c->h != NULL)
        h_u64(c, 'N', n);
    else
        c->out->tokens += n;
}

/* Marks a part counted by an upper bound. */
static void estimated(counter *c)
{
    if (c->h != NULL)
        h_u64(c, 'E', 0);
    else
        c->out->estimated++;
}

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
    uint64_t n = 0;
    int r;

    if (s == NULL)
        return;
    if (c->h != NULL) {
        h_str(c, 'T', s);
        return;
    }
    if ((r = tok_role_count(c->e, s, &n)) == 0 && tok_count(c->e, s, strlen(s), 0, &n) != 0)
        r = -1;
    if (r < 0)
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
    if (c->h != NULL) {
        h_u64(c, 'J', 0);
        h_tree(c, v);
        return;
    }
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

/* Adds an image given by URL (a data: URL's size is read from it). */
static void image(counter *c, const char *url, const char *detail, int anthropic)
{
    int w = 0, h = 0;
    uint64_t t;

    if (c->h != NULL) {
        h_str(c, anthropic ? 'a' : 'I', url);
        h_str(c, 'd', detail);
        if (!anthropic)
            h_str(c, 'm', c->model); /* OpenAI's price of an image depends on the model */
        return;
    }
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
            estimated(c);
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

static void count_conv(counter *c, tok_api api, const cJSON *system, const cJSON *msgs,
                       double factor, const tok_count_opts *opts);
static uint64_t scaled(uint64_t n, double factor);

/* One chat message: its overhead and every string member (role, name, tool_call_id...). */
static void chat_message(counter *c, const cJSON *m)
{
    const cJSON *kv;

    add(c, PER_MESSAGE);
    cJSON_ArrayForEach(kv, m)
    {
        if (kv->string == NULL) /* a message that is an array, not an object */
            continue;
        if (strcmp(kv->string, "content") == 0)
            openai_content(c, kv);
        else if (strcmp(kv->string, "tool_calls") == 0) {
            const cJSON *call;
            cJSON_ArrayForEach(call, kv)
            {
                const cJSON *fn = cJSON_GetObjectItem(call, "function");
                text(c, str_of(fn, "name"));
                text(c, str_of(fn, "arguments"));
                add(c, PER_MESSAGE);
            }
        } else if (cJSON_IsString(kv)) {
            text(c, kv->valuestring);
            if (strcmp(kv->string, "name") == 0)
                add(c, PER_NAME);
        }
    }
}

static int count_chat(counter *c, const cJSON *body, const tok_count_opts *opts)
{
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages");
    uint64_t before;

    if (!cJSON_IsArray(msgs))
        return -1;
    count_conv(c, TOK_API_CHAT, NULL, msgs, 1.0, opts);
    c->out->tokens += REPLY_PRIMING;
    before = c->out->tokens;
    openai_tools(c, cJSON_GetObjectItem(body, "tools"));
    openai_tools(c, cJSON_GetObjectItem(body, "functions"));
    if (opts != NULL && opts->parts != NULL)
        opts->parts->tools = c->out->tokens - before;
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

/* An Anthropic image block's source: base64 data and its media type. */
static void anthropic_image(counter *c, const cJSON *src)
{
    const char *data = str_of(src, "data"), *mt = str_of(src, "media_type");
    char *url = NULL;

    if (c->h != NULL) { /* the URL is made of these two, and of nothing else */
        h_str(c, 'A', mt);
        h_str(c, 'D', data);
        return;
    }
    if (data != NULL && mt != NULL && (url = malloc(strlen(data) + strlen(mt) + 16)) != NULL)
        sprintf(url, "data:%s;base64,%s", mt, data);
    image(c, url, NULL, 1);
    free(url);
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
        else if (strcmp(type, "image") == 0)
            anthropic_image(c, cJSON_GetObjectItem(b, "source"));
        else if (strcmp(type, "tool_use") == 0) {
            text(c, str_of(b, "name"));
            json_value(c, cJSON_GetObjectItem(b, "input"));
        } else if (strcmp(type, "tool_result") == 0)
            anthropic_content(c, cJSON_GetObjectItem(b, "content"));
        else if (strcmp(type, "thinking") == 0)
            text(c, str_of(b, "thinking"));
        else {
            estimated(c); /* documents and the like: their JSON text */
            json_value(c, b);
        }
    }
}

/* One Anthropic message: its overhead and its content (the role adds nothing). */
static void anthropic_message(counter *c, const cJSON *m)
{
    add(c, PER_MESSAGE);
    anthropic_content(c, cJSON_GetObjectItem(m, "content"));
}

/* n times the calibration factor, rounded up, as the total is (no factor: n). */
static uint64_t scaled(uint64_t n, double factor)
{
    return factor > 0 && factor != 1.0 ? (uint64_t)ceil((double)n * factor) : n;
}

/* Conversations of up to this many messages keep their prefix keys on the stack (784 bytes). */
#define STACK_MESSAGES 32

/* A conversation: its system prompt (Anthropic's; NULL for OpenAI chat) and messages. */
typedef struct conv {
    tok_api api;
    const cJSON *system, *msgs;
    void (*message)(counter *c, const cJSON *m);
    uint8_t (*keys)[16]; /* keys[0]: the seed and the system prompt; keys[i + 1]: message i */
    const cJSON **items; /* items[i]: message i (with the keys) */
} conv;

/*
 * Fills v->keys, n + 1 of them, a chain: keys[0] is the hash of the seed (a version, the
 * encoding's name, the API) and the system prompt's steps; keys[i + 1] the hash of keys[i]
 * and message i's steps.
 */
static int chain_keys(const counter *c, conv *v)
{
    static const char seed[] = "tokengate prefix counts 1";
    hbuf b = {.n = 0};
    counter h = {c->e, c->model, NULL, &b, 0};
    const cJSON *m;
    size_t i = 0;

    h_str(&h, 's', seed);
    h_str(&h, 's', tok_name(c->e));
    h_u64(&h, 'p', (uint64_t)v->api);
    if (v->system != NULL)
        anthropic_content(&h, v->system);
    h_digest(&b, v->keys[0]);
    cJSON_ArrayForEach(m, v->msgs)
    {
        v->items[i] = m;
        memcpy(b.b, v->keys[i], 16);
        b.n = 16;
        v->message(&h, m);
        i++;
        h_digest(&b, v->keys[i]);
    }
    return h.failed ? -1 : 0;
}

static void val_of(const tok_count_result *r, tok_prefix_val *v)
{
    v->tokens = r->tokens;
    v->image_tokens = r->image_tokens;
    v->images = r->images;
    v->estimated = r->estimated;
}

/* The tokens of message m (or of the system prompt) counted alone. */
static uint64_t alone(counter *c, const conv *v, const cJSON *m, int system)
{
    tok_count_result r = {0};
    counter a = {c->e, c->model, &r, NULL, 0};

    if (system)
        anthropic_content(&a, m);
    else
        v->message(&a, m);
    if (a.failed)
        c->failed = 1;
    return r.tokens;
}

/*
 * The parts of the messages before boundary base, whose count the memo gave (at): a
 * message's share is the difference of the counts of the two boundaries around it when the
 * memo still holds both, else the message is counted alone.
 */
static void earlier_parts(counter *c, const conv *v, const tok_prefix_memo *memo, int base,
                          const tok_prefix_val *at, double factor, tok_count_parts *parts)
{
    uint64_t next = at->tokens; /* the count at boundary j + 1, when known */
    int known = 1;

    for (int j = base - 1; j >= 0; j--) {
        tok_prefix_val pv = {0};
        int have = j == 0 && v->system == NULL ? 1 : memo->get(memo->arg, v->keys[j], &pv);
        uint64_t t;
        if (have && known && pv.tokens <= next)
            t = next - pv.tokens;
        else
            t = alone(c, v, v->items[j], 0);
        if ((uint32_t)j < parts->cap)
            parts->messages[j] = scaled(t, factor);
        next = pv.tokens;
        known = have;
    }
    if (v->system != NULL)
        parts->system = scaled(known ? next : alone(c, v, v->system, 1), factor);
}

/*
 * Counts the system prompt and the messages into c->out (before the factor), and their parts
 * (times factor) when asked. With a memo: the keys of every boundary are hashed first, the
 * longest prefix the memo holds is taken from it, only the messages after it are counted, and
 * the count of every boundary after it is stored. The count is the same to the token either
 * way: a message's key covers every step of its count (see counter), the keys are chained,
 * and the seed names the encoding and the API. Out of memory for the keys: no memo.
 */
static void count_conv(counter *c, tok_api api, const cJSON *system, const cJSON *msgs,
                       double factor, const tok_count_opts *opts)
{
    conv v = {api,  system, msgs, api == TOK_API_CHAT ? chat_message : anthropic_message,
              NULL, NULL};
    const tok_prefix_memo *memo = opts != NULL ? opts->memo : NULL;
    tok_count_parts *parts = opts != NULL ? opts->parts : NULL;
    int n = cJSON_GetArraySize(msgs), base = -1;
    tok_prefix_val pv;
    const cJSON *m;
    uint64_t before;
    /* the keys and items of a conversation of STACK_MESSAGES or fewer, without a malloc */
    _Alignas(16) uint8_t stack_keys[STACK_MESSAGES + 1][16];
    const cJSON *stack_items[STACK_MESSAGES];

    if (memo != NULL && (memo->get == NULL || memo->put == NULL || n > TOK_PREFIX_MAX_MESSAGES))
        memo = NULL;
    if (memo != NULL) {
        v.keys = n <= STACK_MESSAGES ? stack_keys
                                     : malloc(((size_t)n + 1) * 16 + (size_t)n * sizeof(*v.items));
        if (v.keys == NULL)
            memo = NULL;
        else {
            v.items = v.keys == stack_keys ? stack_items : (const cJSON **)(v.keys + n + 1);
            if (chain_keys(c, &v) != 0)
                memo = NULL;
        }
    }
    for (int j = n; memo != NULL && j >= (system == NULL); j--)
        if (memo->get(memo->arg, v.keys[j], &pv) == 1) {
            base = j;
            c->out->tokens = pv.tokens;
            c->out->image_tokens = pv.image_tokens;
            c->out->images = pv.images;
            c->out->estimated = pv.estimated;
            break;
        }
    if (parts != NULL)
        parts->nmessages = (uint32_t)n < parts->cap ? (uint32_t)n : parts->cap;
    if (base >= 0 && parts != NULL)
        earlier_parts(c, &v, memo, base, &pv, factor, parts);
    if (base < 0) { /* nothing known: from the system prompt on */
        if (system != NULL)
            anthropic_content(c, system);
        if (parts != NULL)
            parts->system = scaled(c->out->tokens, factor);
        if (memo != NULL && system != NULL && !c->failed) {
            val_of(c->out, &pv);
            memo->put(memo->arg, v.keys[0], &pv);
        }
        base = 0;
    }
    m = base == 0 ? msgs->child : memo != NULL && base < n ? v.items[base] : NULL;
    for (int i = base; i < n && m != NULL; i++, m = m->next) {
        before = c->out->tokens;
        v.message(c, m);
        if (parts != NULL && (uint32_t)i < parts->cap)
            parts->messages[i] = scaled(c->out->tokens - before, factor);
        if (memo != NULL && !c->failed) {
            val_of(c->out, &pv);
            memo->put(memo->arg, v.keys[i + 1], &pv);
        }
    }
    if (v.keys != stack_keys)
        free(v.keys);
}

static int count_messages(counter *c, const cJSON *body, double factor, const tok_count_opts *opts)
{
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages"), *tools, *t;
    const char *choice;
    uint64_t before;

    if (!cJSON_IsArray(msgs))
        return -1;
    count_conv(c, TOK_API_MESSAGES, cJSON_GetObjectItem(body, "system"), msgs, factor, opts);
    c->out->tokens += REPLY_PRIMING;
    before = c->out->tokens;
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
    if (opts != NULL && opts->parts != NULL)
        opts->parts->tools = scaled(c->out->tokens - before, factor);
    c->out->approximate = 1;
    c->out->tokens = scaled(c->out->tokens, factor);
    return 0;
}

int tok_count_request(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                      double factor, tok_count_result *out)
{
    return tok_count_request_ex(e, api, body, model, factor, NULL, out);
}

int tok_count_request_ex(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                         double factor, const tok_count_opts *opts, tok_count_result *out)
{
    counter c = {e, model, out, NULL, 0};
    int rc;

    memset(out, 0, sizeof(*out));
    if (opts != NULL && opts->parts != NULL) {
        opts->parts->tools = opts->parts->system = 0;
        opts->parts->nmessages = 0;
    }
    if (!cJSON_IsObject(body))
        return -1;
    switch (api) {
    case TOK_API_CHAT:
        rc = count_chat(&c, body, opts);
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
        rc = count_messages(&c, body, factor, opts);
        break;
    default:
        rc = -1;
    }
    return rc == 0 && !c.failed ? 0 : -1;
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
