/*
 * entry: a response-cache entry's value. See entry.h.
 *
 * The value, one flat byte string (kept in memory only, so in the host's byte order):
 *
 *   "TGE1"                  4 bytes, the format
 *   api, from_stream        1 byte each; 2 bytes 0
 *   meta                    struct entry_meta's fields one after another: model (96 bytes,
 *                           NUL-terminated), input, output, cached, cache_write, tokens, nusd
 *                           (int64 each), created (double)
 *   whole_len, events_len   uint64 each
 *   whole                   the whole answer's JSON text, then a NUL
 *   events                  the stream's raw SSE events back to back, then a NUL (events_len
 *                           0 and just the NUL for a whole original)
 *
 * A stream is gathered as it goes: its raw events appended to a buffer (capped at max_bytes)
 * and fed to replay_asm, which makes the whole answer at the end.
 */
#include "cache/entry.h"

#include <stdlib.h>
#include <string.h>

#include "cache/replay.h"

#define ENTRY_MAGIC "TGE1"
#define ENTRY_HEAD (4 + 4 + sizeof(((struct entry_meta *)0)->model) + 7 * 8 + 2 * 8)

struct entry_fill {
    enum conf_format api;
    int stream;
    int failed;
    size_t max_bytes;
    struct replay_asm *asm_; /* a stream's gatherer */
    char *buf;               /* a stream's raw events, or a whole answer's text */
    size_t len, cap;
    int have_body;           /* a whole answer: its body came */
};

struct entry_fill *entry_fill_new(enum conf_format api, int stream, size_t max_bytes)
{
    struct entry_fill *f;

    if (api != CONF_FMT_OPENAI && api != CONF_FMT_ANTHROPIC)
        return NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->api = api;
    f->stream = stream != 0;
    f->max_bytes = max_bytes;
    if (f->stream && (f->asm_ = replay_asm_new(api)) == NULL) {
        free(f);
        return NULL;
    }
    return f;
}

void entry_fill_free(struct entry_fill *f)
{
    if (f == NULL)
        return;
    replay_asm_free(f->asm_);
    free(f->buf);
    free(f);
}

/* Appends n bytes to f->buf, the value staying within max_bytes. Returns 0, or -1 (failed). */
static int fill_add(struct entry_fill *f, const char *s, size_t n)
{
    if (ENTRY_HEAD + 2 > f->max_bytes || n > f->max_bytes - ENTRY_HEAD - 2 - f->len)
        return -1; /* the value would not fit: not cacheable */
    if (f->len + n > f->cap) {
        size_t want = f->cap < 4096 ? 4096 : f->cap;
        char *p;
        while (want < f->len + n)
            want *= 2;
        p = realloc(f->buf, want);
        if (p == NULL)
            return -1;
        f->buf = p;
        f->cap = want;
    }
    memcpy(f->buf + f->len, s, n);
    f->len += n;
    return 0;
}

int entry_fill_event(struct entry_fill *f, const char *raw, size_t rawlen, const char *name,
                     const cJSON *data)
{
    if (f == NULL || f->failed)
        return -1;
    if (!f->stream || raw == NULL || fill_add(f, raw, rawlen) < 0 ||
        replay_asm_event(f->asm_, name != NULL ? name : "", data) < 0) {
        f->failed = 1;
        return -1;
    }
    return 0;
}

int entry_fill_body(struct entry_fill *f, const char *body, size_t len, const cJSON *doc)
{
    if (f == NULL || f->failed)
        return -1;
    if (f->stream) {
        /* what a stream left after its last event: nothing (or white space) in a whole one */
        for (size_t i = 0; i < len; i++)
            if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t') {
                f->failed = 1;
                return -1;
            }
        return 0;
    }
    if (f->have_body || body == NULL || !replay_whole_ok(f->api, doc) ||
        fill_add(f, body, len) < 0) {
        f->failed = 1;
        return -1;
    }
    f->have_body = 1;
    return 0;
}

static char *put(char *p, const void *v, size_t n)
{
    memcpy(p, v, n);
    return p + n;
}

/* The value of whole (wlen bytes) and events (elen bytes), or NULL past max_bytes or out of
 * memory. */
static char *entry_build(const struct entry_fill *f, const struct entry_meta *meta,
                         const char *whole, size_t wlen, const char *events, size_t elen,
                         size_t *len)
{
    uint8_t flags[4] = {(uint8_t)f->api, (uint8_t)f->stream, 0, 0};
    uint64_t wl = wlen, el = elen;
    size_t total;
    char *v, *p;

    if (wlen > f->max_bytes || elen > f->max_bytes ||
        ENTRY_HEAD + 2 + wlen + elen > f->max_bytes)
        return NULL;
    total = ENTRY_HEAD + wlen + 1 + elen + 1;
    v = malloc(total);
    if (v == NULL)
        return NULL;
    p = put(v, ENTRY_MAGIC, 4);
    p = put(p, flags, 4);
    memset(p, 0, sizeof(meta->model));
    if (meta != NULL)
        memcpy(p, meta->model, strnlen(meta->model, sizeof(meta->model) - 1));
    p += sizeof(meta->model);
    {
        const struct entry_meta zero = {0}, *m = meta != NULL ? meta : &zero;
        int64_t ints[6] = {m->input, m->output, m->cached, m->cache_write, m->tokens, m->nusd};
        p = put(p, ints, sizeof(ints));
        p = put(p, &m->created, 8);
    }
    p = put(p, &wl, 8);
    p = put(p, &el, 8);
    p = put(p, whole, wlen);
    *p++ = '\0';
    if (elen > 0)
        p = put(p, events, elen);
    *p = '\0';
    *len = total;
    return v;
}

char *entry_fill_finish(struct entry_fill *f, const struct entry_meta *meta, size_t *len)
{
    cJSON *whole;
    char *text, *v;

    *len = 0;
    if (f == NULL || f->failed)
        return NULL;
    if (!f->stream)
        return f->have_body ? entry_build(f, meta, f->buf, f->len, NULL, 0, len) : NULL;
    whole = replay_asm_finish(f->asm_);
    if (whole == NULL)
        return NULL; /* a stream with no end, or events that did not make an answer */
    text = cJSON_PrintUnformatted(whole);
    cJSON_Delete(whole);
    if (text == NULL)
        return NULL;
    v = entry_build(f, meta, text, strlen(text), f->buf, f->len, len);
    cJSON_free(text);
    return v;
}

int entry_parse(const void *data, size_t len, struct entry_view *out)
{
    const char *p = data, *end;
    uint64_t wl, el;
    int64_t ints[6];

    if (data == NULL || len < ENTRY_HEAD + 2 || memcmp(p, ENTRY_MAGIC, 4) != 0 ||
        (p[4] != CONF_FMT_OPENAI && p[4] != CONF_FMT_ANTHROPIC) || (p[5] != 0 && p[5] != 1))
        return -1;
    memset(out, 0, sizeof(*out));
    out->api = (enum conf_format)p[4];
    out->from_stream = p[5];
    p += 8;
    memcpy(out->meta.model, p, sizeof(out->meta.model));
    out->meta.model[sizeof(out->meta.model) - 1] = '\0';
    p += sizeof(out->meta.model);
    memcpy(ints, p, sizeof(ints));
    p += sizeof(ints);
    out->meta.input = ints[0], out->meta.output = ints[1], out->meta.cached = ints[2];
    out->meta.cache_write = ints[3], out->meta.tokens = ints[4], out->meta.nusd = ints[5];
    memcpy(&out->meta.created, p, 8);
    p += 8;
    memcpy(&wl, p, 8);
    memcpy(&el, p + 8, 8);
    p += 16;
    end = (const char *)data + len;
    if (wl > (uint64_t)(end - p) || el > (uint64_t)(end - p) - wl ||
        (uint64_t)(end - p) != wl + el + 2 || p[wl] != '\0' || p[wl + 1 + el] != '\0' ||
        (!out->from_stream && el != 0))
        return -1;
    out->whole = p;
    out->whole_len = (size_t)wl;
    out->events = out->from_stream ? p + wl + 1 : NULL;
    out->events_len = out->from_stream ? (size_t)el : 0;
    return 0;
}
