/*
 * tokengate-mock: an OpenAI- and Anthropic-compatible mock model provider.
 *
 * One libevent loop serves everything (evhttp, keep-alive, optional TLS) and
 * nothing is logged per request. Replies are deterministic: the text is words
 * taken in turn from mock_words, prompt token counts follow prompt_tokens().
 * Request headers steer a reply: x-mock-tokens (reply length), x-mock-fault
 * (see fault_names) and x-mock-status (forced error status). /_mock/stats,
 * /_mock/last and /_mock/reset are hooks for tests. Linux only (see
 * stream_drop and SIOCOUTQ).
 *
 * Bodies are parsed by cJSON once json_valid() has passed them (cJSON alone
 * takes more than JSON). Replies are cJSON nodes built in an arena (struct
 * arena) and printed by json_add(), escaping as jansson did: what the mock
 * accepts and sends stays byte for byte what it was with jansson, but for
 * what jget(), jint() and JSON_DEPTH say.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <linux/sockios.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MOCK_MAX_TOKENS 100000      /* cap on a reply's length */
#define MOCK_MAX_BODY (32 << 20)    /* larger request bodies get 413 from evhttp */
#define MOCK_MAX_PATHS 256          /* distinct paths counted; the rest go to "(other)" */
#define MOCK_TIMEOUT_S 600          /* evhttp's read/write timeout per connection */
#define MOCK_UNSENT_MAX (256 << 10) /* a stream waits while evhttp holds this much */
#define MOCK_SLOW_BYTES 16          /* slow fault: bytes per write, */
#define MOCK_SLOW_MS 200            /* and the pause between writes */
#define MOCK_TOOL_TOKENS 8          /* completion tokens charged for a tool call */
#define MOCK_TOOL_ARGS "{\"query\":\"mock\"}"
#define JSON_DEPTH CJSON_NESTING_LIMIT /* deeper bodies are refused, by cJSON too (jansson: 2048) */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Each word is one token in OpenAI's tokenizers, so C words are C tokens. */
static const char *const mock_words[] = {
    " the", " of",  " and",  " to",  " in",   " is",   " that", " it",   " was",  " for",  " on",
    " are", " as",  " with", " his", " they", " at",   " be",   " this", " have", " from", " or",
    " one", " had", " by",   " but", " not",  " what", " all",  " were", " we",   " when",
};
#define MOCK_WORD_MAX 8 /* no word above is longer */

/* A streamed tool call's arguments, in pieces that concatenate to MOCK_TOOL_ARGS. */
static const char *const tool_args[] = {"{\"query\"", ":\"mo", "ck\"}"};

enum fault { F_NONE, F_500, F_429, F_RESET, F_HANG, F_SLOW, F_MALFORMED, F_NO_USAGE };
static const char *const fault_names[] = {
    [F_500] = "500",           [F_429] = "429",   [F_RESET] = "reset",
    [F_HANG] = "hang",         [F_SLOW] = "slow", [F_MALFORMED] = "malformed",
    [F_NO_USAGE] = "no-usage",
};

enum api { API_CHAT, API_RESPONSES, API_MESSAGES };

/* The invalid event the malformed fault slips into a stream after its first token. */
static const char *const bad_events[] = {
    [API_CHAT] = "data: {\"id\":\"chatcmpl-mock\",\"choices\":[{\"delta\":\n\n",
    [API_RESPONSES] = "event: response.output_text.delta\n"
                      "data: {\"type\":\"response.output_text.delta\",\"delta\":\n\n",
    [API_MESSAGES] = "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":\n\n",
};

/*
 * Where the JSON of replies is built: cJSON nodes and their strings are
 * carved out of blocks, and all go at once in arena_reset(), done as each
 * request comes in and before each step of a stream is built. So nothing is
 * freed on its own, and a value is printed before either. The first block is
 * part of the arena: most replies need no malloc at all. Bigger ones (long
 * replies, embeddings of many inputs) add blocks, as much as the body asks
 * for, which MOCK_MAX_BODY and MOCK_MAX_TOKENS bound.
 */
#define ARENA_FIRST (16 << 10)

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    max_align_t mem[];
};

struct arena {
    struct arena_block *more; /* blocks past first, the newest first */
    size_t used;              /* bytes of first handed out */
    max_align_t first[ARENA_FIRST / sizeof(max_align_t)];
};

/* Server state, passed to every callback; nothing here is global. */
struct mock {
    struct event_base *base;
    int ntokens;                   /* default reply length (--tokens) */
    int delay_ms;                  /* pause before each streamed token (--delay-ms) */
    unsigned long seq;             /* numbers reply ids; zeroed by /_mock/reset */
    long long requests;            /* requests outside /_mock/ */
    cJSON *by_path;                /* path -> count, at most MOCK_MAX_PATHS keys */
    const char *last_method;       /* /_mock/last; NULL before any request */
    struct evbuffer *last_path;    /* the last request's path, */
    struct evbuffer *last_headers; /* its "name\0value\0" pairs */
    struct evbuffer *last_body;    /* and its body */
    struct evbuffer *scratch;      /* empty between uses */
    struct arena arena;            /* the JSON of replies (see arena_reset) */
};

/*
 * What one reply says. Strings point into the request body, which is freed
 * once the request is served; a stream keeps copies (stream.strs).
 */
struct plan {
    enum api api;
    const char *model;
    char id[48];  /* chatcmpl-mock-N, resp_mock_N, msg_mock_N */
    char id2[48]; /* call_mock_N, msg_mock_N (output item), toolu_mock_N */
    long long created;
    long long prompt; /* P, see prompt_tokens() */
    int ntok;         /* C, completion tokens */
    int cut;          /* C was limited by the request's max tokens */
    const char *tool; /* reply with a call to this tool instead of text */
    int steps;        /* paced steps (tokens or tool call pieces) of a stream */
    int usage;        /* 0 under the no-usage fault */
    int stream_usage; /* chat: a usage chunk was asked for and usage is on */
    int malformed;    /* slip bad_events[api] into the stream */
};

#define MOCK_PIECES 8 /* pieces one step may make */

/*
 * The pieces (SSE events, or one raw body) of one step of a reply, stored
 * back to back in buf. A paced piece (a token) waits --delay-ms before it is
 * sent. Pieces past MOCK_PIECES are dropped.
 */
struct pieces {
    struct evbuffer *buf;
    size_t len[MOCK_PIECES];
    unsigned char paced[MOCK_PIECES];
    size_t n;
    const char *bad;     /* raw event to insert after the next paced piece */
    struct arena *arena; /* where the events are built */
};

/*
 * Appends the pieces of step k of a stream: 0 the events before the first
 * token, 1..pl->steps one paced step each, pl->steps + 1 the events after.
 */
typedef void step_fn(const struct plan *pl, struct pieces *p, int k);

enum smode {
    SM_PACED,      /* send pieces, pausing before paced ones */
    SM_SLOW,       /* drip MOCK_SLOW_BYTES every MOCK_SLOW_MS */
    SM_RESET,      /* send about half the paced steps, then reset the connection */
    SM_RESET_WAIT, /* waiting until what was sent is acknowledged */
    SM_HANG,       /* never reply; free all when the peer closes */
};

/* A reply in progress, owned by its event and the connection's close callback. */
struct stream {
    struct mock *m;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *ev; /* SM_HANG: the peer closing; otherwise a timer */
    enum smode mode;
    struct plan pl;  /* its model and tool point into strs */
    char *strs;      /* copies of the plan's model and tool */
    step_fn *build;  /* NULL: the reply is what p holds (or nothing) */
    int step;        /* next step to build */
    struct pieces p; /* the pieces built and not sent yet */
    size_t next;     /* next piece to send */
    int sent_paced;  /* paced pieces sent so far */
    int waited;      /* the pause before piece `next` is over */
    int tries;       /* SM_RESET_WAIT: checks so far */
};

static const char *word(int i)
{
    return mock_words[(size_t)i % NELEM(mock_words)];
}

/* Returns the reply text of ntok words (malloc'd), or NULL when out of memory. */
static char *mock_text(int ntok)
{
    char *s = malloc((size_t)ntok * MOCK_WORD_MAX + 1), *w = s;
    int i;

    for (i = 0; s && i < ntok; i++)
        w = stpcpy(w, word(i));
    if (s)
        *w = '\0';
    return s;
}

/* Parses all of s as a decimal in [lo, hi]. Returns 0, or -1 leaving *out alone. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : lo - 1;

    if (v < lo || v > hi || *end)
        return -1;
    *out = v;
    return 0;
}

/* ---- JSON in ---- */

/*
 * Returns the length of the UTF-8 sequence at s (left bytes at most), or 0
 * when there is none: overlong forms, surrogates and code points past
 * U+10FFFF are not UTF-8.
 */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] < 0xc2 || s[0] > 0xf4)
        return 0;
    n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    lo = s[0] == 0xe0 ? 0xa0 : s[0] == 0xf0 ? 0x90 : lo;
    hi = s[0] == 0xed ? 0x9f : s[0] == 0xf4 ? 0x8f : hi;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Returns 1 when all len bytes of s are UTF-8 (NULs included), else 0. */
static int utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t n;

    for (; p < end; p += n)
        if (!(n = utf8_len(p, (size_t)(end - p))))
            return 0;
    return 1;
}

/* Returns the code unit of the 4 hex digits at s, or -1. */
static long hex4(const unsigned char *s, const unsigned char *end)
{
    long u = 0;
    int i;

    for (i = 0; i < 4; i++) {
        unsigned char c = s + i < end ? s[i] : 0;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;

        if (d < 0)
            return -1;
        u = u * 16 + d;
    }
    return u;
}

/*
 * Returns how many bytes from s on (up to end) stand for themselves in a JSON
 * string: printable ASCII but '"' and '\\'. Most of a body is such bytes.
 */
static size_t json_plain(const unsigned char *s, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = ones << 7;
    const unsigned char *p = s;
    uint64_t w, t;

    /*
     * 8 bytes at a time. For a byte x below 0x80 (else its high bit is set in
     * w), x + 0x60 has its high bit set if and only if x >= 0x20, x + 0x7f if
     * and only if x is not 0, and neither carries into the next byte.
     */
    for (; end - p >= 8; p += 8) {
        memcpy(&w, p, 8);
        t = (w + ones * 0x60) & ((w ^ ones * '"') + ones * 0x7f) &
            ((w ^ ones * '\\') + ones * 0x7f);
        if ((w | ~t) & highs)
            break;
    }
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return (size_t)(p - s);
}

/*
 * Returns the end of the JSON string that opens at s, or NULL when it is not
 * one or holds what jansson refused: raw control characters, a lone
 * surrogate, \u0000, bytes that are not UTF-8.
 */
static const unsigned char *json_scan_string(const unsigned char *s, const unsigned char *end)
{
    long u;
    size_t n;

    for (s++; s < end; s += n) {
        s += json_plain(s, end);
        if (s == end)
            break;
        n = 1;
        if (*s == '"')
            return s + 1;
        if (*s < 0x20 || (*s >= 0x80 && !(n = utf8_len(s, (size_t)(end - s)))))
            return NULL;
        if (*s != '\\')
            continue;
        n = 2;
        if (end - s < 2)
            return NULL;
        if (s[1] && strchr("\"\\/bfnrt", s[1]))
            continue;
        n = 6;
        if (s[1] != 'u' || (u = hex4(s + 2, end)) <= 0 || (u >= 0xdc00 && u <= 0xdfff))
            return NULL;
        if (u < 0xd800 || u > 0xdbff)
            continue;
        n = 12; /* a high surrogate: its low one must follow */
        if (end - s < 12 || s[6] != '\\' || s[7] != 'u' || (u = hex4(s + 8, end)) < 0xdc00 ||
            u > 0xdfff)
            return NULL;
    }
    return NULL;
}

static const unsigned char *json_scan_digits(const unsigned char *s, const unsigned char *end)
{
    const unsigned char *start = s;

    while (s < end && *s >= '0' && *s <= '9')
        s++;
    return s > start ? s : NULL;
}

/* Returns the end of the JSON number at s, or NULL (cJSON takes 01, 1. and .5 too). */
static const unsigned char *json_scan_number(const unsigned char *s, const unsigned char *end)
{
    if (*s == '-')
        s++;
    if (s < end && *s == '0')
        s++;
    else if (!(s = json_scan_digits(s, end)))
        return NULL;
    if (s < end && *s == '.' && !(s = json_scan_digits(s + 1, end)))
        return NULL;
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '+' || *s == '-'))
            s++;
        s = json_scan_digits(s, end);
    }
    return s;
}

/* Returns the end of true, false or null at s, or NULL. */
static const unsigned char *json_scan_word(const unsigned char *s, const unsigned char *end)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t i, n;

    for (i = 0; i < NELEM(words); i++) {
        n = strlen(words[i]);
        if ((size_t)(end - s) >= n && memcmp(s, words[i], n) == 0)
            return s + n;
    }
    return NULL;
}

static const unsigned char *json_skip_space(const unsigned char *s, const unsigned char *end)
{
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    return s;
}

/*
 * Returns 1 when the len bytes at text are one JSON text (RFC 8259) whose
 * strings are UTF-8 without NULs, else 0: what jansson took. cJSON also
 * takes trailing bytes, leading zeros, raw control characters in strings,
 * \u0000 and bytes that are not UTF-8, so a body must pass here first.
 * Nesting deeper than JSON_DEPTH fails.
 */
static int json_valid(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text, *end = s + len;
    char close[JSON_DEPTH]; /* what each open container ends with: '}' or ']' */
    size_t depth = 0;
    int key = 0; /* a member's name comes next */

    if (!s)
        return 0;
    for (;;) {
        s = json_skip_space(s, end);
        if (s == end)
            return 0;
        if (key) {
            if (*s != '"' || !(s = json_scan_string(s, end)))
                return 0;
            s = json_skip_space(s, end);
            if (s == end || *s++ != ':')
                return 0;
            key = 0;
            continue;
        }
        if (*s == '{' || *s == '[') {
            if (depth == JSON_DEPTH)
                return 0;
            close[depth++] = *s == '{' ? '}' : ']';
            key = *s++ == '{';
            s = json_skip_space(s, end);
            if (s == end || *s != close[depth - 1])
                continue;
            s++; /* empty */
            depth--;
            key = 0;
        } else if (*s == '"') {
            s = json_scan_string(s, end);
        } else if (*s == '-' || (*s >= '0' && *s <= '9')) {
            s = json_scan_number(s, end);
        } else {
            s = json_scan_word(s, end);
        }
        if (!s)
            return 0;
        for (;;) { /* after a value: a comma, the end of its container, or the end */
            s = json_skip_space(s, end);
            if (depth == 0)
                return s == end;
            if (s == end)
                return 0;
            if (*s == ',') {
                key = close[depth - 1] == '}';
                s++;
                break;
            }
            if (*s++ != close[depth - 1])
                return 0;
            depth--;
        }
    }
}

/*
 * Returns obj's member key, or NULL (also when obj is not an object). Of a
 * key given twice the first counts; with jansson the last did (the gate
 * refuses such bodies).
 */
static cJSON *jget(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/*
 * Returns 1 and sets *out when j is a number with an integral value, else 0:
 * jansson's integers, with 2.0 among them now, as cJSON keeps only the value.
 * Values past a long long's range (which jansson refused) are clamped to it.
 */
static int jint(const cJSON *j, long long *out)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : 0.5;

    if (d >= 0x1p63 || d < -0x1p63)
        *out = d > 0 ? LLONG_MAX : LLONG_MIN;
    else if (d == (double)(long long)d)
        *out = (long long)d;
    else
        return 0; /* a fraction, or NaN */
    return 1;
}

/* Returns j when it is an array, else NULL: cJSON would walk an object's members as elements. */
static const cJSON *jarr(const cJSON *j)
{
    return cJSON_IsArray(j) ? j : NULL;
}

/* ---- JSON out ---- */

/* Returns n bytes (16-aligned) that last until arena_reset(), or NULL when out of memory. */
static void *arena_alloc(struct arena *a, size_t n)
{
    struct arena_block *b = a->more;
    size_t size;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (!b && n <= sizeof(a->first) - a->used) {
        p = (char *)a->first + a->used;
        a->used += n;
        return p;
    }
    if (!b || n > b->size - b->used) { /* each new block twice the last, or n */
        size = b ? 2 * b->size : 4 * sizeof(a->first);
        size = n > size ? n : size;
        if (!(b = malloc(sizeof(*b) + size)))
            return NULL;
        b->next = a->more;
        b->size = size;
        b->used = 0;
        a->more = b;
    }
    p = (char *)b->mem + b->used;
    b->used += n;
    return p;
}

static void arena_reset(struct arena *a)
{
    struct arena_block *b;

    while ((b = a->more)) {
        a->more = b->next;
        free(b);
    }
    a->used = 0;
}

/* Returns a copy of the len bytes at s, NUL-terminated, or NULL. */
static char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *d = arena_alloc(a, len + 1);

    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* Returns a new node of type (cJSON_Object, cJSON_String...), or NULL; never cJSON_Delete it. */
static cJSON *jnode(struct arena *a, int type, const char *str, double num)
{
    cJSON *j = arena_alloc(a, sizeof(*j));

    if (j) {
        memset(j, 0, sizeof(*j));
        j->type = type;
        j->valuestring = (char *)str; /* never written through */
        j->valuedouble = num;
    }
    return j;
}

/*
 * Appends item to parent (an object or array) as member key (NULL in an
 * array); key must outlive the value. Does nothing when either is NULL. The
 * list is kept as cJSON keeps it: the first child's prev is the last child.
 */
static void jadd(cJSON *parent, const char *key, cJSON *item)
{
    if (!parent || !item)
        return;
    item->string = (char *)key;
    item->next = NULL;
    if (!parent->child) {
        parent->child = item;
        item->prev = item;
    } else {
        parent->child->prev->next = item;
        item->prev = parent->child->prev;
        parent->child->prev = item;
    }
}

/* Moves the members of from to the end of to, names and all. */
static void jadd_all(cJSON *to, cJSON *from)
{
    cJSON *c, *next;

    for (c = to && from ? from->child : NULL; c; c = next) {
        next = c->next;
        jadd(to, c->string, c);
    }
}

/*
 * Builds a value in a from fmt, as json_pack() did: {} an object, [] an
 * array, then per member a key (s) and a value: s a string (s? NULL gives
 * null), i an int, I a long long, n null, b a boolean, o a value built in a.
 * ':' and ',' are for the eye. Strings are not copied: they, and keys, must
 * outlive the value. Returns NULL when out of memory or an o value was NULL.
 */
struct packer {
    struct arena *a;
    const char *f;
    va_list ap;
    int failed;
};

static cJSON *pack_value(struct packer *p)
{
    cJSON *v = NULL;
    const char *key, *str;
    char c, end;
    int nullable;

    while (*p->f == ':' || *p->f == ',' || *p->f == ' ')
        p->f++;
    switch ((c = *p->f++)) {
    case '{':
    case '[':
        v = jnode(p->a, c == '{' ? cJSON_Object : cJSON_Array, NULL, 0);
        for (end = c == '{' ? '}' : ']'; *p->f && *p->f != end;) {
            key = c == '{' && *p->f++ == 's' ? va_arg(p->ap, const char *) : NULL;
            jadd(v, key, pack_value(p));
            while (*p->f == ',' || *p->f == ' ')
                p->f++;
        }
        p->f += *p->f != '\0';
        break;
    case 's':
        str = va_arg(p->ap, const char *);
        nullable = *p->f == '?';
        p->f += nullable;
        if (str || nullable)
            v = jnode(p->a, str ? cJSON_String : cJSON_NULL, str, 0);
        break;
    case 'i':
        v = jnode(p->a, cJSON_Number, NULL, va_arg(p->ap, int));
        break;
    case 'I':
        v = jnode(p->a, cJSON_Number, NULL, (double)va_arg(p->ap, long long));
        break;
    case 'n':
        v = jnode(p->a, cJSON_NULL, NULL, 0);
        break;
    case 'b':
        v = jnode(p->a, va_arg(p->ap, int) ? cJSON_True : cJSON_False, NULL, 0);
        break;
    case 'o':
        v = va_arg(p->ap, cJSON *);
        break;
    }
    p->failed |= v == NULL;
    return v;
}

static cJSON *pack(struct arena *a, const char *fmt, ...)
{
    struct packer p = {.a = a, .f = fmt};
    cJSON *v;

    va_start(p.ap, fmt);
    v = pack_value(&p);
    va_end(p.ap);
    return p.failed ? NULL : v;
}

/*
 * Returns d as a number that prints the way jansson printed a real: %.17g,
 * with ".0" when that looks like an integer (json_add prints numbers with
 * integral values as integers).
 */
static cJSON *json_real(struct arena *a, double d)
{
    char buf[40], *text;
    int n = snprintf(buf, sizeof(buf), "%.17g", d);

    if (n > 0 && (size_t)n < sizeof(buf) - 2 && !strpbrk(buf, ".eEn"))
        memcpy(buf + n, ".0", 3);
    text = arena_strndup(a, buf, strlen(buf));
    return text ? jnode(a, cJSON_Raw, text, 0) : NULL;
}

/* JSON text on its way to an evbuffer, gathered a buffer at a time. */
struct jout {
    struct evbuffer *out;
    size_t n; /* bytes in buf */
    int failed;
    char buf[4096];
};

/* Starts o on out; buf is left as it is (4 KB not worth zeroing per reply). */
static void jout_init(struct jout *o, struct evbuffer *out)
{
    o->out = out;
    o->n = 0;
    o->failed = 0;
}

static void jout_flush(struct jout *o)
{
    if (o->n && evbuffer_add(o->out, o->buf, o->n) < 0)
        o->failed = 1;
    o->n = 0;
}

/* Sends what o holds on to out. Returns 0, or -1 when something could not be added. */
static int jout_end(struct jout *o)
{
    jout_flush(o);
    return o->failed ? -1 : 0;
}

static void jout_put(struct jout *o, const void *s, size_t len)
{
    if (len > sizeof(o->buf) - o->n) {
        jout_flush(o);
        if (len > sizeof(o->buf)) {
            if (evbuffer_add(o->out, s, len) < 0)
                o->failed = 1;
            return;
        }
    }
    if (len)
        memcpy(o->buf + o->n, s, len);
    o->n += len;
}

static void jout_char(struct jout *o, char c)
{
    if (o->n == sizeof(o->buf))
        jout_flush(o);
    o->buf[o->n++] = c;
}

/*
 * Writes the len bytes of s (UTF-8, NULs allowed) as a JSON string, escaped
 * as jansson did; with ascii, every byte past 0x7f becomes '?'.
 */
static void jout_string(struct jout *o, const char *s, size_t len, int ascii)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t n;

    jout_char(o, '"');
    while (p < end) {
        n = json_plain(p, end);
        jout_put(o, p, n);
        if ((p += n) == end)
            break;
        if (*p >= 0x80)
            jout_char(o, ascii ? '?' : (char)*p);
        else if (*p == '"' || *p == '\\')
            jout_put(o, (const char[]){'\\', (char)*p}, 2);
        else if (*p >= '\b' && *p <= '\r' && *p != '\v')
            jout_put(o, (const char[]){'\\', "btn?fr"[*p - '\b']}, 2);
        else
            jout_put(o, (const char[]){'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]}, 6);
        p++;
    }
    jout_char(o, '"');
}

/* Writes v in decimal to buf (21 bytes at least). Returns the length: snprintf is slow. */
static int format_ll(char *buf, long long v)
{
    char tmp[20], *t = tmp + sizeof(tmp);
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    int n = 0;

    do
        *--t = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        buf[n++] = '-';
    memcpy(buf + n, t, (size_t)(tmp + sizeof(tmp) - t));
    return n + (int)(tmp + sizeof(tmp) - t);
}

/* Writes j compactly; a number with an integral value prints as an integer. */
static void jout_value(struct jout *o, const cJSON *j)
{
    char num[40];
    const cJSON *c;
    int n, obj = cJSON_IsObject(j);
    double d = j->valuedouble;

    switch (j->type & 0xff) {
    case cJSON_NULL:
        jout_put(o, "null", 4);
        break;
    case cJSON_False:
        jout_put(o, "false", 5);
        break;
    case cJSON_True:
        jout_put(o, "true", 4);
        break;
    case cJSON_Number:
        if (d >= -0x1p63 && d < 0x1p63 && d == (double)(long long)d)
            n = format_ll(num, (long long)d);
        else if (isfinite(d))
            n = snprintf(num, sizeof(num), "%.17g", d);
        else
            n = snprintf(num, sizeof(num), "null");
        jout_put(o, num, (size_t)n);
        break;
    case cJSON_String:
        jout_string(o, j->valuestring, strlen(j->valuestring), 0);
        break;
    case cJSON_Raw:
        jout_put(o, j->valuestring, strlen(j->valuestring));
        break;
    case cJSON_Array:
    case cJSON_Object:
        jout_char(o, obj ? '{' : '[');
        for (c = j->child; c; c = c->next) {
            if (c != j->child)
                jout_char(o, ',');
            if (obj) {
                jout_string(o, c->string, strlen(c->string), 0);
                jout_char(o, ':');
            }
            jout_value(o, c);
        }
        jout_char(o, obj ? '}' : ']');
        break;
    default:
        o->failed = 1;
    }
}

/* Appends j as compact JSON to out. Returns 0, or -1 (out may then hold part of it). */
static int json_add(struct evbuffer *out, const cJSON *j)
{
    struct jout o;

    if (!j)
        return -1;
    jout_init(&o, out);
    jout_value(&o, j);
    return jout_end(&o);
}

/* Returns s, or a copy in a with every byte past 0x7f replaced by '?' when s is not UTF-8. */
static const char *json_lossy(struct arena *a, const char *s)
{
    size_t i, len = strlen(s);
    char *copy;

    if (utf8_valid(s, len) || !(copy = arena_strndup(a, s, len)))
        return s;
    for (i = 0; i < len; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    return copy;
}

/*
 * Sends what the output buffer holds as a JSON reply with status code, or,
 * when made is 0 (making the body failed), a 500 in its place.
 */
static void reply_send(struct evhttp_request *req, int code, int made)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    const char *phrase = code == 429 ? "Too Many Requests" : code == 529 ? "Overloaded" : NULL;

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (!made) {
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_add_printf(out, "{\"error\":{\"message\":\"mock out of memory\"}}");
        code = 500;
    }
    evhttp_send_reply(req, code, phrase, NULL); /* NULL: evhttp's phrase for the code */
}

/* Sends body as a JSON reply with status code. A NULL body means out of memory. */
static void reply_json(struct evhttp_request *req, int code, const cJSON *body)
{
    reply_send(req, code, json_add(evhttp_request_get_output_buffer(req), body) == 0);
}

/* Sends an error reply, built in a: Anthropic's shape when anth is set, else OpenAI's. */
static void reply_error(struct arena *a, struct evhttp_request *req, int anth, int code,
                        const char *msg)
{
    static const struct {
        int code;
        const char *type;
    } anth_types[] = {{401, "authentication_error"}, {403, "permission_error"},
                      {404, "not_found_error"},      {413, "request_too_large"},
                      {429, "rate_limit_error"},     {529, "overloaded_error"}};
    const char *otype = code >= 500 ? "server_error" : "invalid_request_error";
    const char *atype = code >= 500 ? "api_error" : "invalid_request_error";
    size_t i;

    for (i = 0; i < NELEM(anth_types); i++)
        if (anth_types[i].code == code)
            atype = anth_types[i].type;
    if (code == 429) {
        otype = "requests";
        evhttp_add_header(evhttp_request_get_output_headers(req), "retry-after", "2");
    }
    if (anth)
        reply_json(req, code,
                   pack(a, "{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", atype,
                        "message", msg));
    else
        reply_json(req, code,
                   pack(a, "{s:{s:s,s:s,s:n,s:s?}}", "error", "message", msg, "type", otype,
                        "param", "code", code == 429 ? "rate_limit_exceeded" : NULL));
}

/* ---- token accounting ---- */

/* Returns the bytes of text in v: a string, or arrays/blocks holding "text" or "content". */
static size_t text_bytes(const cJSON *v)
{
    size_t n = 0;
    const cJSON *e;

    if (cJSON_IsString(v))
        return strlen(v->valuestring);
    if (cJSON_IsObject(v))
        return text_bytes(jget(v, "text")) + text_bytes(jget(v, "content"));
    cJSON_ArrayForEach(e, jarr(v)) n += text_bytes(e);
    return n;
}

/*
 * Approximate prompt tokens, deterministic so tests can predict them:
 * (bytes of all message text + 3) / 4 + 4 per message. items is a message
 * array (each message's content counts) or a plain string (one message);
 * extra (system / instructions) adds its text and counts as one more message.
 * A stand-in until the real tokenizer exists.
 */
static long long prompt_tokens(const cJSON *items, const cJSON *extra)
{
    size_t bytes = text_bytes(items) + text_bytes(extra);
    size_t n = (cJSON_IsArray(items) ? (size_t)cJSON_GetArraySize(items) : items != NULL) +
               (extra != NULL);

    return (long long)((bytes + 3) / 4 + 4 * n);
}

/* ---- pieces ---- */

/*
 * Appends one piece: "event: NAME\n" when name is set, then "data: JSON\n\n"
 * from data, or the raw text when data is NULL. A NULL data with no raw text
 * (a failed pack) adds nothing.
 */
static void piece_add(struct pieces *p, const char *name, const cJSON *data, const char *raw,
                      int paced)
{
    size_t before = evbuffer_get_length(p->buf);
    const char *bad = p->bad;

    if (p->n == MOCK_PIECES || (!data && !raw))
        return;
    if (name)
        evbuffer_add_printf(p->buf, "event: %s\n", name);
    if (data) {
        evbuffer_add(p->buf, "data: ", 6);
        json_add(p->buf, data);
        evbuffer_add(p->buf, "\n\n", 2);
    } else {
        evbuffer_add(p->buf, raw, strlen(raw));
    }
    p->len[p->n] = evbuffer_get_length(p->buf) - before;
    p->paced[p->n++] = (unsigned char)paced;
    if (paced && bad) {
        p->bad = NULL;
        piece_add(p, NULL, NULL, bad, 0);
    }
}

/*
 * Appends event TYPE with data {"type":TYPE[,"sequence_number":seq]} plus the
 * members of rest (may be NULL). seq < 0 leaves the number out.
 */
static void piece_typed(struct pieces *p, const char *type, int seq, cJSON *rest, int paced)
{
    cJSON *obj = pack(p->arena, "{s:s}", "type", type);

    if (seq >= 0)
        jadd(obj, "sequence_number", jnode(p->arena, cJSON_Number, NULL, seq));
    jadd_all(obj, rest);
    piece_add(p, type, obj, NULL, paced);
}

/* ---- replies in progress ---- */

static void stream_free(struct stream *s)
{
    if (s->ev)
        event_free(s->ev);
    if (s->p.buf)
        evbuffer_free(s->p.buf);
    free(s->strs);
    free(s);
}

static void stream_arm(struct stream *s, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(s->ev, &tv);
}

/*
 * Builds the next step once all built pieces are sent, in a fresh arena.
 * Returns 0, or -1 when no step is left.
 */
static int stream_fill(struct stream *s)
{
    if (!s->build || s->step > s->pl.steps + 1)
        return -1;
    arena_reset(s->p.arena);
    s->p.n = s->next = 0;
    s->build(&s->pl, &s->p, s->step++);
    return 0;
}

/* Sends the next len bytes of the pieces as one body chunk. */
static void stream_send(struct stream *s, size_t len)
{
    struct evbuffer *chunk = s->m->scratch;

    if (len == 0) /* an empty chunk would end a chunked body */
        return;
    evbuffer_remove_buffer(s->p.buf, chunk, len);
    evhttp_send_reply_chunk(s->req, chunk);
    evbuffer_drain(chunk, evbuffer_get_length(chunk));
}

/* Ends the reply normally and frees s. */
static void stream_finish(struct stream *s)
{
    struct evhttp_request *req = s->req;

    /* cleared first: ending the reply may free the connection, which calls closecb */
    evhttp_connection_set_closecb(s->evcon, NULL, NULL);
    stream_free(s);
    evhttp_send_reply_end(req);
}

/*
 * Frees s and its connection with the unfinished request. With rst the peer
 * sees a TCP RST: SO_LINGER {1,0} alone is not enough, as
 * evhttp_connection_free() calls shutdown(SHUT_WR), which sends a FIN, before
 * close(); connecting the socket to AF_UNSPEC makes Linux send the RST now.
 */
static void stream_drop(struct stream *s, int rst)
{
    struct evhttp_connection *evcon = s->evcon;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct linger lg = {1, 0};
    struct sockaddr sa = {.sa_family = AF_UNSPEC};

    evhttp_connection_set_closecb(evcon, NULL, NULL);
    stream_free(s);
    if (rst && fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        connect(fd, &sa, sizeof(sa));
    }
    evhttp_connection_free(evcon);
}

/* Returns the bytes evhttp holds for the peer, not yet written to the socket. */
static size_t stream_unsent(struct stream *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);

    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/*
 * Sends pieces, building steps as it goes, until a pause, a peer that does
 * not keep up, the reset point or the end (which frees s).
 */
static void stream_pump(struct stream *s)
{
    while (s->next < s->p.n || stream_fill(s) == 0) {
        int paced;

        if (s->next == s->p.n) /* a step without pieces */
            continue;
        paced = s->p.paced[s->next];
        if (s->mode == SM_RESET && paced && s->sent_paced * 2 >= s->pl.steps) {
            s->mode = SM_RESET_WAIT;
            stream_arm(s, 0);
            return;
        }
        if (stream_unsent(s) >= MOCK_UNSENT_MAX) { /* look again when some has gone */
            stream_arm(s, 10);
            return;
        }
        if (paced && s->m->delay_ms > 0 && !s->waited) {
            s->waited = 1;
            stream_arm(s, s->m->delay_ms);
            return;
        }
        s->waited = 0;
        s->sent_paced += paced;
        stream_send(s, s->p.len[s->next++]);
    }
    if (s->mode == SM_RESET) { /* nothing paced: reset at the end */
        s->mode = SM_RESET_WAIT;
        stream_arm(s, 0);
    } else {
        stream_finish(s);
    }
}

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    int unacked = 0, more = 1;
    size_t left;

    switch (s->mode) {
    case SM_SLOW:
        while ((left = evbuffer_get_length(s->p.buf)) < MOCK_SLOW_BYTES && more)
            more = stream_fill(s) == 0;
        stream_send(s, left < MOCK_SLOW_BYTES ? left : MOCK_SLOW_BYTES);
        if (!more && left <= MOCK_SLOW_BYTES)
            stream_finish(s);
        else
            stream_arm(s, MOCK_SLOW_MS);
        break;
    case SM_RESET_WAIT: /* an RST discards unsent data, so wait (up to 1 s) for the acks */
        if (bev && (stream_unsent(s) > 0 || ioctl(bufferevent_getfd(bev), SIOCOUTQ, &unacked) < 0 ||
                    unacked > 0)) {
            if (s->tries++ < 100) {
                stream_arm(s, 10);
                return;
            }
        }
        stream_drop(s, 1);
        break;
    case SM_HANG: /* the peer closed */
        stream_drop(s, 0);
        break;
    default:
        stream_pump(s);
    }
}

/*
 * evhttp frees the connection under an unfinished reply (peer gone, timeout,
 * shutdown). When the peer went away evhttp has detached the request and
 * left it to us; otherwise evhttp frees it with the connection.
 */
static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
    struct stream *s = arg;

    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_request_free(s->req);
    stream_free(s);
}

/*
 * Replies to req in the given mode, from then on out of timers: with build,
 * a 200 text/event-stream of the steps of pl; with raw, a 200 JSON body; with
 * neither, no reply at all (reset, hang).
 */
static void stream_start(struct mock *m, struct evhttp_request *req, enum smode mode,
                         const struct plan *pl, step_fn *build, const char *raw)
{
    struct stream *s = calloc(1, sizeof(*s));
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    size_t mlen = pl ? strlen(pl->model) + 1 : 0, tlen = pl && pl->tool ? strlen(pl->tool) + 1 : 0;
    char num[24];
    int one = 1;

    /* evhttp does not read, so does not see the peer go, until a reply starts */
    if (s)
        s->ev = mode == SM_HANG ? event_new(m->base, fd, EV_CLOSED, stream_tick, s)
                                : evtimer_new(m->base, stream_tick, s);
    if (s && s->ev)
        s->p.buf = evbuffer_new();
    if (s && s->p.buf && pl) /* the body they point into goes when the request is served */
        s->strs = malloc(mlen + tlen);
    if (!s || !s->ev || !s->p.buf || (pl && !s->strs)) {
        if (s)
            stream_free(s);
        reply_error(&m->arena, req, pl && pl->api == API_MESSAGES, 500, "mock out of memory");
        return;
    }
    s->m = m;
    s->p.arena = &m->arena;
    s->req = req;
    s->evcon = evhttp_request_get_connection(req);
    s->mode = mode;
    if (pl) {
        s->pl = *pl;
        s->pl.model = memcpy(s->strs, pl->model, mlen);
        s->pl.tool = pl->tool ? memcpy(s->strs + mlen, pl->tool, tlen) : NULL;
        s->p.bad = pl->malformed ? bad_events[pl->api] : NULL;
    }
    s->build = build;
    evhttp_connection_set_closecb(s->evcon, stream_closed, s);
    if (mode == SM_HANG) {
        event_add(s->ev, NULL);
        return;
    }
    /* send each event when it is made, not when Nagle allows */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (build) {
        evhttp_add_header(oh, "Content-Type", "text/event-stream");
        evhttp_add_header(oh, "Cache-Control", "no-cache");
        evhttp_send_reply_start(req, 200, NULL);
    } else if (raw) {
        piece_add(&s->p, NULL, NULL, raw, 0);
        snprintf(num, sizeof(num), "%zu", strlen(raw));
        evhttp_add_header(oh, "Content-Type", "application/json");
        evhttp_add_header(oh, "Content-Length", num);
        evhttp_send_reply_start(req, 200, NULL);
    }
    if (mode == SM_SLOW)
        stream_arm(s, MOCK_SLOW_MS);
    else
        stream_pump(s);
}

/* Sends a non-stream JSON body as the fault f asks. */
static void deliver_json(struct mock *m, struct evhttp_request *req, const cJSON *body,
                         enum fault f)
{
    struct evbuffer *text;
    const char *s = NULL;

    if (f != F_SLOW && f != F_RESET && f != F_MALFORMED) {
        reply_json(req, 200, body);
        return;
    }
    text = evbuffer_new(); /* not m->scratch: a stream starting here uses that */
    if (text && json_add(text, body) == 0 && evbuffer_add(text, "", 1) == 0)
        s = (const char *)evbuffer_pullup(text, -1);
    if (!s) {
        reply_error(&m->arena, req, 0, 500, "mock out of memory");
    } else if (f == F_MALFORMED) { /* a 200 whose JSON stops halfway */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), s, strlen(s) / 2);
        evhttp_send_reply(req, 200, NULL, NULL);
    } else {
        stream_start(m, req, f == F_SLOW ? SM_SLOW : SM_RESET, NULL, NULL, f == F_SLOW ? s : NULL);
    }
    if (text)
        evbuffer_free(text);
}

/* Streams the steps of pl as the fault f asks. */
static void deliver_stream(struct mock *m, struct evhttp_request *req, const struct plan *pl,
                           step_fn *build, enum fault f)
{
    stream_start(m, req,
                 f == F_SLOW    ? SM_SLOW
                 : f == F_RESET ? SM_RESET
                                : SM_PACED,
                 pl, build, NULL);
}

/* ---- plans ---- */

/*
 * Fills what every reply needs: model, ids (prefix + sequence number), the
 * reply length (ntok, cut to limit when limit >= 0), usage and malformed
 * under fault f, and a call to tool instead of text when tool is set.
 */
static void plan_init(struct plan *pl, struct mock *m, enum api api, const cJSON *body, int ntok,
                      const cJSON *limit, const char *tool, enum fault f)
{
    static const char *const pfx[][2] = {
        [API_CHAT] = {"chatcmpl-mock-", "call_mock_"},
        [API_RESPONSES] = {"resp_mock_", "msg_mock_"},
        [API_MESSAGES] = {"msg_mock_", "toolu_mock_"},
    };
    long long max = -1;

    jint(limit, &max);
    memset(pl, 0, sizeof(*pl));
    pl->api = api;
    pl->model = cJSON_GetStringValue(jget(body, "model"));
    if (!pl->model)
        pl->model = "mock-model";
    m->seq++;
    snprintf(pl->id, sizeof(pl->id), "%s%lu", pfx[api][0], m->seq);
    snprintf(pl->id2, sizeof(pl->id2), "%s%lu", pfx[api][1], m->seq);
    pl->created = (long long)time(NULL);
    pl->cut = max >= 0 && max < ntok;
    pl->ntok = pl->cut ? (int)max : ntok;
    pl->steps = pl->ntok;
    if (tool) { /* OpenAI streams the call's name as a step of its own */
        pl->tool = tool;
        pl->ntok = MOCK_TOOL_TOKENS;
        pl->cut = 0;
        pl->steps = (int)NELEM(tool_args) + (api == API_CHAT);
    }
    pl->usage = f != F_NO_USAGE;
    pl->malformed = f == F_MALFORMED;
}

/* Returns the tool to call, or NULL: tools non-empty, choice not "none", no tool result last. */
static const char *plan_tool_name(const cJSON *body, int anth)
{
    const cJSON *tools = jarr(jget(body, "tools")), *msgs = jarr(jget(body, "messages"));
    const cJSON *choice = jget(body, "tool_choice"), *last = NULL, *block;
    const char *s, *name;

    cJSON_ArrayForEach(block, msgs) last = block;
    s = cJSON_GetStringValue(anth ? jget(choice, "type") : choice);
    if (!tools || !tools->child || (s && strcmp(s, "none") == 0))
        return NULL;
    s = cJSON_GetStringValue(jget(last, "role")); /* OpenAI: answering a tool? */
    if (!anth && s && strcmp(s, "tool") == 0)
        return NULL;
    cJSON_ArrayForEach(block, jarr(jget(last, "content")))
    {
        s = cJSON_GetStringValue(jget(block, "type")); /* Anthropic: answering? */
        if (anth && s && strcmp(s, "tool_result") == 0)
            return NULL;
    }
    block = tools->child;
    name = cJSON_GetStringValue(jget(anth ? block : jget(block, "function"), "name"));
    return name ? name : "mock_tool";
}

/* ---- OpenAI chat completions ---- */

static cJSON *chat_usage(struct arena *a, const struct plan *pl)
{
    return pack(a, "{s:I,s:I,s:I,s:{s:i},s:{s:i}}", "prompt_tokens", pl->prompt,
                "completion_tokens", (long long)pl->ntok, "total_tokens", pl->prompt + pl->ntok,
                "prompt_tokens_details", "cached_tokens", 0, "completion_tokens_details",
                "reasoning_tokens", 0);
}

static const char *chat_finish(const struct plan *pl)
{
    return pl->tool ? "tool_calls" : pl->cut ? "length" : "stop";
}

/* Returns the reply, with text as the message unless the plan calls a tool. */
static cJSON *chat_reply(struct arena *a, const struct plan *pl, const char *text)
{
    cJSON *msg, *r;

    if (pl->tool)
        msg = pack(a, "{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                   "tool_calls", "id", pl->id2, "type", "function", "function", "name", pl->tool,
                   "arguments", MOCK_TOOL_ARGS);
    else
        msg = pack(a, "{s:s,s:s}", "role", "assistant", "content", text);
    r = pack(a, "{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}]}", "id", pl->id, "object",
             "chat.completion", "created", pl->created, "model", pl->model, "choices", "index", 0,
             "message", msg, "finish_reason", chat_finish(pl));
    if (pl->usage)
        jadd(r, "usage", chat_usage(a, pl));
    return r;
}

/* Appends a chunk with delta; a NULL delta makes the usage chunk, without choices. */
static void chat_chunk(const struct plan *pl, struct pieces *p, cJSON *delta, const char *finish,
                       int paced)
{
    struct arena *a = p->arena;
    cJSON *c = pack(a, "{s:s,s:s,s:I,s:s,s:[]}", "id", pl->id, "object", "chat.completion.chunk",
                    "created", pl->created, "model", pl->model, "choices");

    if (delta)
        jadd(jget(c, "choices"), NULL,
             pack(a, "{s:i,s:o,s:s?}", "index", 0, "delta", delta, "finish_reason", finish));
    if (pl->stream_usage)
        jadd(c, "usage", delta ? jnode(a, cJSON_NULL, NULL, 0) : chat_usage(a, pl));
    piece_add(p, NULL, c, NULL, paced);
}

static void chat_step(const struct plan *pl, struct pieces *p, int k)
{
    if (k == 0) {
        chat_chunk(pl, p, pack(p->arena, "{s:s,s:s}", "role", "assistant", "content", ""), NULL,
                   0);
    } else if (k > pl->steps) {
        chat_chunk(pl, p, pack(p->arena, "{}"), chat_finish(pl), 0);
        if (pl->stream_usage)
            chat_chunk(pl, p, NULL, NULL, 0);
        piece_add(p, NULL, NULL, "data: [DONE]\n\n", 0);
    } else if (!pl->tool) {
        chat_chunk(pl, p, pack(p->arena, "{s:s}", "content", word(k - 1)), NULL, 1);
    } else if (k == 1) { /* a tool call: its name first, then its arguments */
        chat_chunk(pl, p,
                   pack(p->arena, "{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", 0,
                        "id", pl->id2, "type", "function", "function", "name", pl->tool,
                        "arguments", ""),
                   NULL, 1);
    } else {
        chat_chunk(pl, p,
                   pack(p->arena, "{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0, "function",
                        "arguments", tool_args[k - 2]),
                   NULL, 1);
    }
}

static void ep_chat(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                    enum fault f)
{
    const cJSON *limit = jget(body, "max_completion_tokens");
    struct plan pl;
    char *text;

    plan_init(&pl, m, API_CHAT, body, ntok, limit ? limit : jget(body, "max_tokens"),
              plan_tool_name(body, 0), f);
    pl.prompt = prompt_tokens(jget(body, "messages"), NULL);
    pl.stream_usage =
        pl.usage && cJSON_IsTrue(jget(jget(body, "stream_options"), "include_usage"));
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, chat_step, f);
        return;
    }
    text = pl.tool ? NULL : mock_text(pl.ntok);
    deliver_json(m, req, pl.tool || text ? chat_reply(&m->arena, &pl, text) : NULL, f);
    free(text);
}

/* ---- OpenAI responses ---- */

/*
 * Returns the response object: in progress without output, or done with the
 * text. A reply cut by max_output_tokens is "incomplete", as OpenAI does.
 */
static cJSON *resp_object(struct arena *a, const struct plan *pl, const char *text, int done)
{
    const char *status = !done ? "in_progress" : pl->cut ? "incomplete" : "completed";
    cJSON *output = !done ? pack(a, "[]")
                          : pack(a, "[{s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:[]}]}]", "type", "message",
                                 "id", pl->id2, "status", "completed", "role", "assistant",
                                 "content", "type", "output_text", "text", text, "annotations");
    cJSON *r = pack(a, "{s:s,s:s,s:I,s:s,s:s,s:n,s:o,s:o}", "id", pl->id, "object", "response",
                    "created_at", pl->created, "model", pl->model, "status", status, "error",
                    "incomplete_details",
                    done && pl->cut ? pack(a, "{s:s}", "reason", "max_output_tokens")
                                    : pack(a, "n"),
                    "output", output);

    if (pl->usage && !done)
        jadd(r, "usage", pack(a, "n"));
    else if (pl->usage)
        jadd(r, "usage",
             pack(a, "{s:I,s:{s:i},s:I,s:{s:i},s:I}", "input_tokens", pl->prompt,
                  "input_tokens_details", "cached_tokens", 0, "output_tokens", (long long)pl->ntok,
                  "output_tokens_details", "reasoning_tokens", 0, "total_tokens",
                  pl->prompt + pl->ntok));
    return r;
}

/* Events carry sequence numbers: created 0, token k k, then steps + 1 and steps + 2. */
static void resp_step(const struct plan *pl, struct pieces *p, int k)
{
    char *text;

    if (k == 0) {
        piece_typed(p, "response.created", 0,
                    pack(p->arena, "{s:o}", "response", resp_object(p->arena, pl, "", 0)), 0);
    } else if (k <= pl->steps) {
        piece_typed(p, "response.output_text.delta", k,
                    pack(p->arena, "{s:s,s:i,s:i,s:s}", "item_id", pl->id2, "output_index", 0,
                         "content_index", 0, "delta", word(k - 1)),
                    1);
    } else if ((text = mock_text(pl->ntok))) {
        piece_typed(p, "response.output_text.done", k,
                    pack(p->arena, "{s:s,s:i,s:i,s:s}", "item_id", pl->id2, "output_index", 0,
                         "content_index", 0, "text", text),
                    0);
        piece_typed(p, pl->cut ? "response.incomplete" : "response.completed", k + 1,
                    pack(p->arena, "{s:o}", "response", resp_object(p->arena, pl, text, 1)), 0);
        free(text);
    }
}

static void ep_responses(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                         enum fault f)
{
    struct plan pl;
    char *text;

    plan_init(&pl, m, API_RESPONSES, body, ntok, jget(body, "max_output_tokens"), NULL, f);
    pl.prompt = prompt_tokens(jget(body, "input"), jget(body, "instructions"));
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, resp_step, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? resp_object(&m->arena, &pl, text, 1) : NULL, f);
    free(text);
}

/* ---- Anthropic messages ---- */

static cJSON *msg_usage(struct arena *a, long long in, long long out)
{
    return pack(a, "{s:I,s:i,s:i,s:I}", "input_tokens", in, "cache_creation_input_tokens", 0,
                "cache_read_input_tokens", 0, "output_tokens", out);
}

static const char *msg_stop(const struct plan *pl)
{
    return pl->tool ? "tool_use" : pl->cut ? "max_tokens" : "end_turn";
}

/* Returns the message, with content when text is set (else [], for message_start). */
static cJSON *msg_object(struct arena *a, const struct plan *pl, const char *text)
{
    cJSON *content = !text      ? pack(a, "[]")
                     : pl->tool ? pack(a, "[{s:s,s:s,s:s,s:{s:s}}]", "type", "tool_use", "id",
                                       pl->id2, "name", pl->tool, "input", "query", "mock")
                                : pack(a, "[{s:s,s:s}]", "type", "text", "text", text);
    cJSON *r = pack(a, "{s:s,s:s,s:s,s:s,s:o,s:s?,s:n}", "id", pl->id, "type", "message", "role",
                    "assistant", "model", pl->model, "content", content, "stop_reason",
                    text ? msg_stop(pl) : NULL, "stop_sequence");

    if (pl->usage)
        jadd(r, "usage", msg_usage(a, pl->prompt, text ? pl->ntok : 1));
    return r;
}

static void msg_step(const struct plan *pl, struct pieces *p, int k)
{
    struct arena *a = p->arena;
    cJSON *delta;

    if (k == 0) {
        piece_typed(p, "message_start", -1, pack(a, "{s:o}", "message", msg_object(a, pl, NULL)),
                    0);
        piece_typed(p, "content_block_start", -1,
                    pack(a, "{s:i,s:o}", "index", 0, "content_block",
                         pl->tool ? pack(a, "{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id",
                                         pl->id2, "name", pl->tool, "input")
                                  : pack(a, "{s:s,s:s}", "type", "text", "text", "")),
                    0);
        piece_typed(p, "ping", -1, NULL, 0);
    } else if (k <= pl->steps) {
        piece_typed(p, "content_block_delta", -1,
                    pack(a, "{s:i,s:{s:s,s:s}}", "index", 0, "delta", "type",
                         pl->tool ? "input_json_delta" : "text_delta",
                         pl->tool ? "partial_json" : "text",
                         pl->tool ? tool_args[k - 1] : word(k - 1)),
                    1);
    } else {
        piece_typed(p, "content_block_stop", -1, pack(a, "{s:i}", "index", 0), 0);
        delta = pack(a, "{s:{s:s,s:n}}", "delta", "stop_reason", msg_stop(pl), "stop_sequence");
        if (pl->usage)
            jadd(delta, "usage", pack(a, "{s:I}", "output_tokens", (long long)pl->ntok));
        piece_typed(p, "message_delta", -1, delta, 0);
        piece_typed(p, "message_stop", -1, NULL, 0);
    }
}

static void ep_messages(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                        enum fault f)
{
    const cJSON *max = jget(body, "max_tokens");
    long long v;
    struct plan pl;
    char *text;

    if (!jint(max, &v) || v < 0) {
        reply_error(&m->arena, req, 1, 400, "max_tokens: Field required");
        return;
    }
    plan_init(&pl, m, API_MESSAGES, body, ntok, max, plan_tool_name(body, 1), f);
    pl.prompt = prompt_tokens(jget(body, "messages"), jget(body, "system"));
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, msg_step, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? msg_object(&m->arena, &pl, text) : NULL, f);
    free(text);
}

/* ---- embeddings and models ---- */

/* Returns 8 floats derived from an FNV-1a hash of in (a string or an array of token ids). */
static cJSON *emb_vector(struct arena *a, const cJSON *in)
{
    const unsigned char *s = (const unsigned char *)cJSON_GetStringValue(in);
    size_t i, len = s ? strlen((const char *)s) : 0;
    uint64_t h = 1469598103934665603ULL;
    const cJSON *e;
    cJSON *v = pack(a, "[]");
    long long id;

    for (i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    cJSON_ArrayForEach(e, jarr(in)) h = (h ^ (uint64_t)(jint(e, &id) ? id : 0)) * 1099511628211ULL;
    for (i = 0; v && i < 8; i++) /* multiples of 1/128 print exactly */
        jadd(v, NULL, json_real(a, ((double)((h >> (8 * i)) & 0xff) - 128.0) / 128.0));
    return v;
}

static void ep_embeddings(struct mock *m, struct evhttp_request *req, const cJSON *body,
                          enum fault f)
{
    struct arena *a = &m->arena;
    const cJSON *in = jget(body, "input"), *e;
    const char *model = cJSON_GetStringValue(jget(body, "model"));
    long long id, prompt = 0; /* a string counts (bytes + 3) / 4, a token array its length */
    int single = cJSON_IsString(in) || (jarr(in) && jint(in->child, &id));
    size_t i, n = single ? 1 : (size_t)cJSON_GetArraySize(jarr(in));
    cJSON *data = pack(a, "[]"), *r;

    e = single ? in : jarr(in) ? in->child : NULL;
    for (i = 0; data && i < n; i++, e = e->next) {
        if (!cJSON_IsString(e) && !cJSON_IsArray(e))
            break;
        prompt += cJSON_IsString(e) ? (long long)(strlen(e->valuestring) + 3) / 4
                                    : (long long)cJSON_GetArraySize(e);
        jadd(data, NULL,
             pack(a, "{s:s,s:I,s:o}", "object", "embedding", "index", (long long)i, "embedding",
                  emb_vector(a, e)));
    }
    if (n == 0 || i < n) {
        reply_error(a, req, 0, 400, "input must be a string or an array of strings or tokens");
        return;
    }
    r = pack(a, "{s:s,s:o,s:s}", "object", "list", "data", data, "model",
             model ? model : "text-embedding-3-small");
    if (f != F_NO_USAGE)
        jadd(r, "usage", pack(a, "{s:I,s:I}", "prompt_tokens", prompt, "total_tokens", prompt));
    deliver_json(m, req, r, f);
}

static cJSON *models_reply(struct arena *a)
{
    static const char *const ids[] = {"mock-model", "gpt-4o-mini", "text-embedding-3-small",
                                      "claude-3-5-haiku-latest"};
    cJSON *data = pack(a, "[]");
    size_t i;

    for (i = 0; i < NELEM(ids); i++)
        jadd(data, NULL,
             pack(a, "{s:s,s:s,s:i,s:s}", "id", ids[i], "object", "model", "created", 1700000000,
                  "owned_by", "tokengate-mock"));
    return pack(a, "{s:s,s:o}", "object", "list", "data", data);
}

/* ---- test hooks ---- */

/*
 * Counts req in the stats and keeps it for /_mock/last: a copy of its method,
 * path and headers, and its body itself, moved to m->last_body.
 */
static void record(struct mock *m, struct evhttp_request *req, const char *path)
{
    static const struct {
        enum evhttp_cmd_type cmd;
        const char *name;
    } methods[] = {{EVHTTP_REQ_GET, "GET"},       {EVHTTP_REQ_POST, "POST"},
                   {EVHTTP_REQ_HEAD, "HEAD"},     {EVHTTP_REQ_PUT, "PUT"},
                   {EVHTTP_REQ_DELETE, "DELETE"}, {EVHTTP_REQ_OPTIONS, "OPTIONS"},
                   {EVHTTP_REQ_PATCH, "PATCH"}};
    int full = cJSON_GetArraySize(m->by_path) >= MOCK_MAX_PATHS;
    const char *key = full ? "(other)" : path;
    struct evkeyval *kv;
    cJSON *n;
    size_t i;

    m->requests++;
    n = jget(m->by_path, path);
    if (!n && full)
        n = jget(m->by_path, key);
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else if (utf8_valid(key, strlen(key)) && (n = cJSON_CreateNumber(1)) && /* as jansson */
             !cJSON_AddItemToObject(m->by_path, key, n))
        cJSON_Delete(n);

    m->last_method = "OTHER";
    for (i = 0; i < NELEM(methods); i++)
        if (methods[i].cmd == evhttp_request_get_command(req))
            m->last_method = methods[i].name;
    evbuffer_drain(m->last_path, evbuffer_get_length(m->last_path));
    evbuffer_add(m->last_path, path, strlen(path));
    evbuffer_drain(m->last_headers, evbuffer_get_length(m->last_headers));
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
    {
        evbuffer_add(m->last_headers, kv->key, strlen(kv->key) + 1);
        evbuffer_add(m->last_headers, kv->value, strlen(kv->value) + 1);
    }
    evbuffer_drain(m->last_body, evbuffer_get_length(m->last_body));
    /* moved, not copied: serve() reads it there */
    evbuffer_add_buffer(m->last_body, evhttp_request_get_input_buffer(req));
}

/*
 * Returns the last request's headers as JSON: names lowercased, repeated
 * headers joined with ", ". As with jansson, a name that is not UTF-8 is
 * left out, and so is a repeat whose value is not; NULL when out of memory.
 */
static cJSON *last_headers(struct mock *m)
{
    struct arena *a = &m->arena;
    size_t n, len = evbuffer_get_length(m->last_headers);
    char *h = (char *)evbuffer_pullup(m->last_headers, -1), *end = h + len, *c, *value, *both;
    cJSON *hdrs = pack(a, "{}"), *old;

    for (; hdrs && h && h < end; h = value + strlen(value) + 1) {
        value = h + strlen(h) + 1;
        for (c = h; *c; c++) /* the copy keeps names as sent: lowercase them once, here */
            *c = *c >= 'A' && *c <= 'Z' ? (char)(*c + 32) : *c;
        if (!utf8_valid(h, strlen(h)))
            continue;
        if (!(old = jget(hdrs, h))) {
            jadd(hdrs, h, jnode(a, cJSON_String, json_lossy(a, value), 0));
        } else if (utf8_valid(value, strlen(value)) &&
                   (both = arena_alloc(a, n = strlen(old->valuestring) + strlen(value) + 3))) {
            snprintf(both, n, "%s, %s", old->valuestring, value);
            old->valuestring = both;
        }
    }
    return hdrs;
}

/*
 * Sends /_mock/last: {method, path, headers, body}, with the path and the raw
 * body as JSON strings (bytes past 0x7f become '?' in one that is not UTF-8).
 */
static void reply_last(struct mock *m, struct evhttp_request *req)
{
    struct jout o;
    size_t plen = evbuffer_get_length(m->last_path), blen = evbuffer_get_length(m->last_body);
    const char *path = (const char *)evbuffer_pullup(m->last_path, -1);
    const char *body = (const char *)evbuffer_pullup(m->last_body, -1);
    cJSON *hdrs = last_headers(m);

    jout_init(&o, evhttp_request_get_output_buffer(req));
    jout_put(&o, "{\"method\":", 10);
    jout_string(&o, m->last_method, strlen(m->last_method), 0);
    jout_put(&o, ",\"path\":", 8);
    jout_string(&o, path, plen, !utf8_valid(path, plen));
    jout_put(&o, ",\"headers\":", 11);
    if (hdrs)
        jout_value(&o, hdrs);
    jout_put(&o, ",\"body\":", 8);
    jout_string(&o, body, blen, !utf8_valid(body, blen));
    jout_put(&o, "}", 1);
    reply_send(req, 200, jout_end(&o) == 0 && hdrs);
}

/* Serves /_mock/stats, /_mock/last and /_mock/reset (counters, last request and ids). */
static void hook(struct mock *m, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    cJSON *paths;

    if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/stats") == 0) {
        if ((paths = jnode(&m->arena, cJSON_Object, NULL, 0)))
            paths->child = m->by_path->child; /* shared, not copied: printed at once */
        reply_json(req, 200,
                   pack(&m->arena, "{s:I,s:o}", "requests", m->requests, "by_path", paths));
    } else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/last") == 0 && m->last_method) {
        reply_last(m, req);
    } else if (cmd == EVHTTP_REQ_POST && strcmp(path, "/_mock/reset") == 0) {
        m->requests = 0;
        m->seq = 0;
        m->last_method = NULL;
        while (m->by_path->child)
            cJSON_Delete(cJSON_DetachItemViaPointer(m->by_path, m->by_path->child));
        reply_json(req, 200, pack(&m->arena, "{s:b}", "ok", 1));
    } else {
        reply_error(&m->arena, req, 0, 404, "no such mock hook, or no request recorded yet");
    }
}

/* ---- dispatch ---- */

enum endpoint { EP_CHAT, EP_RESPONSES, EP_EMBEDDINGS, EP_MODELS, EP_MESSAGES, EP_COUNT };

/*
 * Serves an endpoint once the request is known to be a good one, under fault
 * f. The body is in m->last_body (see record()).
 */
static void serve(struct mock *m, struct evhttp_request *req, enum endpoint ep, int anth,
                  enum fault f, int ntok)
{
    struct evbuffer *in = m->last_body;
    size_t len = evbuffer_get_length(in);
    const char *raw;
    cJSON *body = NULL;

    if (f == F_HANG) {
        stream_start(m, req, SM_HANG, NULL, NULL, NULL);
        return;
    }
    if (ep == EP_MODELS) {
        deliver_json(m, req, models_reply(&m->arena), f);
        return;
    }
    raw = (const char *)evbuffer_pullup(in, -1);
    if (json_valid(raw, len))
        body = cJSON_ParseWithLength(raw, len);
    if (!cJSON_IsObject(body))
        reply_error(&m->arena, req, anth, 400, "mock: request body is not a JSON object");
    else if (ep == EP_CHAT)
        ep_chat(m, req, body, ntok, f);
    else if (ep == EP_RESPONSES)
        ep_responses(m, req, body, ntok, f);
    else if (ep == EP_EMBEDDINGS)
        ep_embeddings(m, req, body, f);
    else if (ep == EP_MESSAGES)
        ep_messages(m, req, body, ntok, f);
    else
        deliver_json(m, req,
                     pack(&m->arena, "{s:I}", "input_tokens",
                          prompt_tokens(jget(body, "messages"), jget(body, "system"))),
                     f);
    cJSON_Delete(body);
}

/* Entry point for every request: hooks, stats, the mock's own headers, then the endpoint. */
static void on_request(struct evhttp_request *req, void *arg)
{
    static const struct {
        enum evhttp_cmd_type method;
        const char *path;
        enum endpoint ep;
    } routes[] = {
        {EVHTTP_REQ_POST, "/v1/chat/completions", EP_CHAT},
        {EVHTTP_REQ_POST, "/v1/responses", EP_RESPONSES},
        {EVHTTP_REQ_POST, "/v1/embeddings", EP_EMBEDDINGS},
        {EVHTTP_REQ_GET, "/v1/models", EP_MODELS},
        {EVHTTP_REQ_POST, "/v1/messages", EP_MESSAGES},
        {EVHTTP_REQ_POST, "/v1/messages/count_tokens", EP_COUNT},
    };
    struct mock *m = arg;
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *fname = evhttp_find_header(ih, "x-mock-fault");
    const char *status = evhttp_find_header(ih, "x-mock-status");
    const char *tokens = evhttp_find_header(ih, "x-mock-tokens");
    long code = 0, ntok = m->ntokens;
    int anth, ep = -1;
    enum fault f = F_NONE;
    size_t i;

    arena_reset(&m->arena);
    if (!path)
        path = "";
    if (strncmp(path, "/_mock/", 7) == 0) {
        hook(m, req, path);
        return;
    }
    record(m, req, path);
    anth = strncmp(path, "/v1/messages", 12) == 0;
    for (i = 0; i < NELEM(routes); i++)
        if (routes[i].method == evhttp_request_get_command(req) && !strcmp(routes[i].path, path))
            ep = (int)routes[i].ep;
    for (i = 1; fname && i < NELEM(fault_names); i++)
        if (strcasecmp(fname, fault_names[i]) == 0)
            f = (enum fault)i;
    if (ep < 0) {
        reply_error(&m->arena, req, anth, 404, "mock: no such endpoint");
    } else if (fname && f == F_NONE) {
        reply_error(&m->arena, req, anth, 400, "mock: unknown x-mock-fault");
    } else if (status && parse_long(status, 200, 599, &code) < 0) {
        reply_error(&m->arena, req, anth, 400, "mock: x-mock-status must be 200..599");
    } else if (tokens && parse_long(tokens, 0, MOCK_MAX_TOKENS, &ntok) < 0) {
        reply_error(&m->arena, req, anth, 400, "mock: bad x-mock-tokens");
    } else if (code || f == F_500 || f == F_429) {
        code = code ? code : f == F_500 ? 500 : 429;
        reply_error(&m->arena, req, anth, (int)code,
                    code == 429 ? "mock rate limit" : "mock error");
    } else {
        serve(m, req, (enum endpoint)ep, anth, f, (int)ntok);
    }
}

/* ---- setup ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(arg, NULL);
}

/* Returns a server SSL_CTX for the PEM files, or NULL after printing why. */
static SSL_CTX *tls_ctx_new(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx && SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 &&
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_check_private_key(ctx) == 1)
        return ctx;
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
}

/* evhttp's bufferevent factory in TLS mode: evhttp sets the fd; NULL when out of memory. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    struct bufferevent *bev = NULL;

    if (ssl)
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    else if (ssl)
        SSL_free(ssl);
    return bev;
}

/*
 * Returns a new event base, or NULL. With epoll it sends the event changes of
 * a loop turn in one go, at its end: evhttp turns a connection's events on
 * and off a few times per request, and most changes then cancel out.
 */
static struct event_base *base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base = NULL;

    if (cfg && event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
        base = event_base_new_with_config(cfg);
    if (cfg)
        event_config_free(cfg);
    return base;
}

/* Parses IPv4:PORT or localhost:PORT (PORT 0..65535) into sin. Returns 0 or -1. */
static int parse_listen(const char *spec, struct sockaddr_in *sin)
{
    const char *colon = strrchr(spec, ':');
    char host[INET_ADDRSTRLEN];
    long port;

    if (!colon || (size_t)(colon - spec) >= sizeof(host) || parse_long(colon + 1, 0, 65535, &port))
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

/* Writes "PORT\n" to path through a temporary file, so readers never see half of it. */
static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(fp = fopen(tmp, "w")))
        return -1;
    fprintf(fp, "%d\n", port);
    return fclose(fp) == 0 && rename(tmp, path) == 0 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tokengate-mock [--listen HOST:PORT] [--tokens N] [--delay-ms D]\n"
            "                      [--tls-cert FILE --tls-key FILE] [--port-file FILE]\n"
            "  --listen     IPv4 address (or localhost) and port; default 127.0.0.1:9099, 0: any\n"
            "  --tokens     default reply length in tokens (default 16, max 100000)\n"
            "  --delay-ms   pause before each streamed token (default 0)\n"
            "  --tls-cert, --tls-key  serve HTTPS with these PEM files\n"
            "  --port-file  also write the bound port to FILE\n");
    exit(2);
}

/*
 * Binds and runs the server until SIGTERM or SIGINT. Returns 0, or 1 after
 * printing why it could not start.
 */
static int mock_run(struct mock *m, struct sockaddr_in *sin, SSL_CTX *ctx, const char *port_file)
{
    struct evhttp *http = evhttp_new(m->base);
    struct evconnlistener *lev = NULL;
    struct event *term = evsignal_new(m->base, SIGTERM, on_signal, m->base);
    struct event *intr = evsignal_new(m->base, SIGINT, on_signal, m->base);
    socklen_t len = sizeof(*sin);
    int rc = 1;

    if (!http || !term || !intr || evsignal_add(term, NULL) || evsignal_add(intr, NULL)) {
        fprintf(stderr, "tokengate-mock: out of memory\n");
        goto out;
    }
    evhttp_set_gencb(http, on_request, m);
    evhttp_set_max_body_size(http, MOCK_MAX_BODY);
    evhttp_set_max_headers_size(http, 64 * 1024);
    evhttp_set_timeout(http, MOCK_TIMEOUT_S);
    if (ctx)
        evhttp_set_bevcb(http, tls_bev, ctx);
    lev = evconnlistener_new_bind(m->base, NULL, NULL,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                  1024, (struct sockaddr *)sin, sizeof(*sin));
    if (!lev || !evhttp_bind_listener(http, lev)) { /* the evhttp owns lev once bound */
        perror("tokengate-mock: cannot listen");
        if (lev)
            evconnlistener_free(lev);
        goto out;
    }
    getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)sin, &len);
    printf("listening on %s:%d\n", inet_ntoa(sin->sin_addr), ntohs(sin->sin_port));
    fflush(stdout);
    if (port_file && write_port_file(port_file, ntohs(sin->sin_port)) < 0) {
        perror("tokengate-mock: cannot write the port file");
        goto out;
    }
    event_base_dispatch(m->base);
    rc = 0;
out:
    if (http)
        evhttp_free(http); /* ends replies in progress through their close callbacks */
    if (term)
        event_free(term);
    if (intr)
        event_free(intr);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"tokens", required_argument, NULL, 't'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"port-file", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_on = "127.0.0.1:9099", *cert = NULL, *key = NULL, *port_file = NULL;
    struct mock m = {.ntokens = 16};
    struct sockaddr_in sin;
    SSL_CTX *ctx = NULL;
    long tokens = 16, delay = 0;
    int opt, rc = 1;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if ((opt == 't' && parse_long(optarg, 0, MOCK_MAX_TOKENS, &tokens) < 0) ||
            (opt == 'd' && parse_long(optarg, 0, 3600000, &delay) < 0) || opt == '?')
            usage();
        listen_on = opt == 'l' ? optarg : listen_on;
        cert = opt == 'c' ? optarg : cert;
        key = opt == 'k' ? optarg : key;
        port_file = opt == 'p' ? optarg : port_file;
    }
    if (optind != argc || !cert != !key || parse_listen(listen_on, &sin) < 0)
        usage();
    m.ntokens = (int)tokens;
    m.delay_ms = (int)delay;

    signal(SIGPIPE, SIG_IGN);
    m.base = base_new();
    m.by_path = cJSON_CreateObject();
    m.last_path = evbuffer_new();
    m.last_headers = evbuffer_new();
    m.last_body = evbuffer_new();
    m.scratch = evbuffer_new();
    if (cert && !(ctx = tls_ctx_new(cert, key)))
        fprintf(stderr, "tokengate-mock: cannot load %s and %s\n", cert, key);
    else if (!m.base || !m.by_path || !m.last_path || !m.last_headers || !m.last_body || !m.scratch)
        fprintf(stderr, "tokengate-mock: out of memory\n");
    else
        rc = mock_run(&m, &sin, ctx, port_file);
    SSL_CTX_free(ctx);
    cJSON_Delete(m.by_path);
    arena_reset(&m.arena);
    if (m.last_path)
        evbuffer_free(m.last_path);
    if (m.last_headers)
        evbuffer_free(m.last_headers);
    if (m.last_body)
        evbuffer_free(m.last_body);
    if (m.scratch)
        evbuffer_free(m.scratch);
    if (m.base)
        event_base_free(m.base);
    return rc;
}
