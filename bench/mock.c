/*
 * tokengate-mock: an OpenAI- and Anthropic-compatible mock model provider.
 *
 * One libevent loop serves everything (evhttp, keep-alive, optional TLS) and
 * nothing is logged per request. Replies are deterministic: the text is words
 * taken in turn from mock_words, prompt token counts follow prompt_tokens().
 * x-mock-usage-skew: N adds N to every prompt token count (a provider that
 * counts differently from the gate).
 * Request headers steer a reply: x-mock-tokens (reply length), x-mock-fault
 * (see fault_names) and x-mock-status (forced error status). /_mock/stats,
 * /_mock/last, /_mock/usage and /_mock/reset are hooks for tests. Linux only (see
 * stream_drop and SIOCOUTQ).
 *
 * Bodies are parsed, and replies built and printed, by cJSON. The mock takes
 * what cJSON takes (see json_parse()): the gate in front of it validates
 * bodies itself.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
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
#include "tokenizer/chat.h"
#include "tokenizer/tok.h"
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
#define MOCK_MAX_USAGE 65536        /* /_mock/usage entries kept; later ones are counted only */
#define MOCK_TIMEOUT_S 600          /* evhttp's read/write timeout per connection */
#define MOCK_UNSENT_MAX (256 << 10) /* a stream waits while evhttp holds this much */
#define MOCK_SLOW_BYTES 16          /* slow fault: bytes per write, */
#define MOCK_SLOW_MS 200            /* and the pause between writes */
#define MOCK_TOOL_TOKENS 8          /* completion tokens charged for a tool call */
#define MOCK_TOOL_ARGS "{\"query\":\"mock\"}"
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

/* Server state, passed to every callback; nothing here is global. */
struct mock {
    struct event_base *base;
    int ntokens;                   /* default reply length (--tokens) */
    int delay_ms;                  /* pause before each streamed token (--delay-ms) */
    unsigned long seq;             /* numbers reply ids; zeroed by /_mock/reset */
    long long requests;            /* requests outside /_mock/ */
    cJSON *by_path;                /* path -> count, at most MOCK_MAX_PATHS keys */
    const char *last_method;       /* /_mock/last; NULL before any request */
    struct evbuffer *last_path;    /* the last request's path and a NUL, */
    struct evbuffer *last_headers; /* its "name\0value\0" pairs */
    struct evbuffer *last_body;    /* and its body and a NUL */
    struct evbuffer *scratch;      /* empty between uses */
    long skew;                     /* x-mock-usage-skew of the request being served */
    const char *rid;               /* x-request-id of the request being served, or NULL */
    cJSON *usage;                  /* x-request-id -> usage of a reply: see usage_note() */
    long usage_n, usage_dropped;   /* entries in usage; entries past MOCK_MAX_USAGE */
    unsigned usage_gen;            /* bumped by /_mock/reset, which frees the entries */
    cJSON *cur_usage;              /* the entry of the request being served, or NULL */
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
    const char *bad; /* raw event to insert after the next paced piece */
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
    cJSON *usage;    /* its /_mock/usage entry, marked complete at the end; or NULL */
    unsigned gen;    /* m->usage_gen when usage was taken */
};

/* ---- text ---- */

static const char *word(int i)
{
    return mock_words[(size_t)i % NELEM(mock_words)];
}

/* Returns the reply text of ntok words, for the caller to free(), or NULL when out of memory. */
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
 * Returns the object that the len bytes at text hold, for the caller to
 * cJSON_Delete(), or NULL when they hold something else (another value, not
 * JSON, bytes after the value but whitespace) or out of memory. text[len]
 * must be a NUL.
 */
static cJSON *json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);

    if (cJSON_IsObject(j) && end + strspn(end, " \t\n\r") == text + len)
        return j;
    cJSON_Delete(j);
    return NULL;
}

/*
 * Returns obj's member key, or NULL (also when obj is not an object). Of a
 * key given twice the first counts (the gate refuses such bodies).
 */
static cJSON *jget(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/*
 * Returns 1 and sets *out when j is a number with an integral value (2.0
 * too: cJSON keeps only the value), else 0. Values past a long long's range
 * are clamped to it.
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

#define JSON_STACK (16 << 10) /* replies up to this size print without a malloc */

/*
 * Adds item to parent: as member key when key is set, else as its last
 * element. Returns item, or NULL after freeing item when parent or item is
 * NULL or out of memory, so calls nest without checks.
 */
static cJSON *jadd(cJSON *parent, const char *key, cJSON *item)
{
    if (parent && item &&
        (key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item)))
        return item;
    cJSON_Delete(item);
    return NULL;
}

/* Adds member key to obj (may be NULL): the string s, or null when s is NULL. */
static void jstr(cJSON *obj, const char *key, const char *s)
{
    jadd(obj, key, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

/* Returns a new object {"type": type}, or NULL. */
static cJSON *jtyped(const char *type)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "type", type);
    return o;
}

/* Appends j as compact JSON to out. Returns 0, or -1 when j is NULL or out of memory. */
static int json_print(struct evbuffer *out, cJSON *j)
{
    char buf[JSON_STACK], *big;
    int rc;

    if (!j)
        return -1;
    if (cJSON_PrintPreallocated(j, buf, sizeof(buf), 0))
        return evbuffer_add(out, buf, strlen(buf));
    if (!(big = cJSON_PrintUnformatted(j)))
        return -1;
    rc = evbuffer_add(out, big, strlen(big));
    cJSON_free(big);
    return rc;
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

/* Sends body (freed here) as a JSON reply with status code. A NULL body means out of memory. */
static void reply_json(struct evhttp_request *req, int code, cJSON *body)
{
    reply_send(req, code, json_print(evhttp_request_get_output_buffer(req), body) == 0);
    cJSON_Delete(body);
}

/* Sends an error reply: Anthropic's shape when anth is set, else OpenAI's. */
static void reply_error(struct evhttp_request *req, int anth, int code, const char *msg)
{
    static const struct {
        int code;
        const char *type;
    } anth_types[] = {{401, "authentication_error"}, {403, "permission_error"},
                      {404, "not_found_error"},      {413, "request_too_large"},
                      {429, "rate_limit_error"},     {529, "overloaded_error"}};
    const char *otype = code >= 500 ? "server_error" : "invalid_request_error";
    const char *atype = code >= 500 ? "api_error" : "invalid_request_error";
    cJSON *r = anth ? jtyped("error") : cJSON_CreateObject(),
          *e = cJSON_AddObjectToObject(r, "error");
    size_t i;

    for (i = 0; i < NELEM(anth_types); i++)
        if (anth_types[i].code == code)
            atype = anth_types[i].type;
    if (code == 429) {
        otype = "requests";
        evhttp_add_header(evhttp_request_get_output_headers(req), "retry-after", "2");
    }
    if (anth) {
        cJSON_AddStringToObject(e, "type", atype);
        cJSON_AddStringToObject(e, "message", msg);
    } else {
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "type", otype);
        cJSON_AddNullToObject(e, "param");
        jstr(e, "code", code == 429 ? "rate_limit_exceeded" : NULL);
    }
    reply_json(req, code, r);
}

/* ---- token accounting ---- */

/*
 * Prompt tokens as the provider counts them: the gate's own tokenizer and OpenAI's chat
 * formula (tokenizer/chat.c), the encoding chosen by model family, so the mock agrees with
 * the gate as a real provider should; x-mock-usage-skew (m->skew) adds a known drift.
 */
static long long prompt_tokens(const struct mock *m, const cJSON *body, tok_api api)
{
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "model"));
    const tok_enc *e = tok_encoding(tok_encoding_for_model(model));
    tok_count_result r;

    if (e == NULL || tok_count_request(e, api, body, model, 1.0, &r) != 0)
        r.tokens = 0;
    return (long long)r.tokens + m->skew;
}

/* ---- pieces ---- */

/*
 * Appends one piece: "event: NAME\n" when name is set, then "data: JSON\n\n"
 * from data (freed here), or the raw text when data is NULL. A NULL data
 * with no raw text (out of memory) adds nothing.
 */
static void piece_add(struct pieces *p, const char *name, cJSON *data, const char *raw, int paced)
{
    size_t before = evbuffer_get_length(p->buf);
    const char *bad = p->bad;

    if (p->n == MOCK_PIECES || (!data && !raw)) {
        cJSON_Delete(data);
        return;
    }
    if (name)
        evbuffer_add_printf(p->buf, "event: %s\n", name);
    if (data) {
        evbuffer_add(p->buf, "data: ", 6);
        json_print(p->buf, data);
        evbuffer_add(p->buf, "\n\n", 2);
        cJSON_Delete(data);
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

/* Returns the data of an event: {"type":type[,"sequence_number":seq]}, no number when seq < 0. */
static cJSON *sse_data(const char *type, int seq)
{
    cJSON *e = jtyped(type);

    if (seq >= 0)
        cJSON_AddNumberToObject(e, "sequence_number", seq);
    return e;
}

/* Appends the event with data e (freed here), named after its type. */
static void piece_event(struct pieces *p, cJSON *e, int paced)
{
    piece_add(p, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type")), e, NULL, paced);
}

/* ---- what replies report: /_mock/usage ---- */

/*
 * Notes the usage a reply of the request being served carries (pl->prompt,
 * pl->ntok), under its x-request-id, as not sent completely yet; the entry
 * becomes m->cur_usage until the request is served. Nothing is noted without
 * an id or a usage object. A reply that does not complete may still have sent
 * part of its usage (Anthropic's message_start holds input_tokens), or none
 * (a chat stream sends it last).
 */
static void usage_note(struct mock *m, const struct plan *pl, int has_usage)
{
    cJSON *e;

    m->cur_usage = NULL;
    if (!m->rid || !has_usage)
        return;
    if (m->usage_n >= MOCK_MAX_USAGE) {
        m->usage_dropped++;
        return;
    }
    e = cJSON_CreateObject();
    if (!e)
        return;
    cJSON_AddNumberToObject(e, "input", (double)pl->prompt);
    cJSON_AddNumberToObject(e, "output", pl->ntok);
    cJSON_AddFalseToObject(e, "complete");
    cJSON_AddItemToObject(m->usage, m->rid, e);
    m->usage_n++;
    m->cur_usage = e;
}

/* Marks an entry's reply, usage and all, handed to the connection in full. */
static void usage_complete(cJSON *e)
{
    cJSON_ReplaceItemInObjectCaseSensitive(e, "complete", cJSON_CreateTrue());
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
 * Builds the next step once all built pieces are sent.
 * Returns 0, or -1 when no step is left.
 */
static int stream_fill(struct stream *s)
{
    if (!s->build || s->step > s->pl.steps + 1)
        return -1;
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
    if (s->usage && s->gen == s->m->usage_gen)
        usage_complete(s->usage);
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
        reply_error(req, pl && pl->api == API_MESSAGES, 500, "mock out of memory");
        return;
    }
    s->m = m;
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
    s->usage = m->cur_usage;
    s->gen = m->usage_gen;
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

/* Sends a non-stream JSON body (freed here; NULL: out of memory) as the fault f asks. */
static void deliver_json(struct mock *m, struct evhttp_request *req, cJSON *body, enum fault f)
{
    char *s;

    if (f != F_SLOW && f != F_RESET && f != F_MALFORMED) {
        if (body && m->cur_usage)
            usage_complete(m->cur_usage);
        reply_json(req, 200, body);
        return;
    }
    s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!s) {
        reply_error(req, 0, 500, "mock out of memory");
    } else if (f == F_MALFORMED) { /* a 200 whose JSON stops halfway */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), s, strlen(s) / 2);
        evhttp_send_reply(req, 200, NULL, NULL);
    } else {
        stream_start(m, req, f == F_SLOW ? SM_SLOW : SM_RESET, NULL, NULL, f == F_SLOW ? s : NULL);
    }
    cJSON_free(s);
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

static cJSON *chat_usage(const struct plan *pl)
{
    cJSON *u = cJSON_CreateObject();

    cJSON_AddNumberToObject(u, "prompt_tokens", pl->prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", pl->ntok);
    cJSON_AddNumberToObject(u, "total_tokens", pl->prompt + pl->ntok);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens",
                            0);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "completion_tokens_details"),
                            "reasoning_tokens", 0);
    return u;
}

static const char *chat_finish(const struct plan *pl)
{
    return pl->tool ? "tool_calls" : pl->cut ? "length" : "stop";
}

/* Returns the members every reply and chunk opens with, object naming which it is. */
static cJSON *chat_head(const struct plan *pl, const char *object)
{
    cJSON *r = cJSON_CreateObject();

    cJSON_AddStringToObject(r, "id", pl->id);
    cJSON_AddStringToObject(r, "object", object);
    cJSON_AddNumberToObject(r, "created", pl->created);
    cJSON_AddStringToObject(r, "model", pl->model);
    return r;
}

/*
 * Adds {"tool_calls":[call to pl->tool with args]} to obj and returns obj. In
 * a stream (index >= 0) the call has an index, and after its first piece
 * (named 0) neither id, type nor name.
 */
static cJSON *chat_call(cJSON *obj, const struct plan *pl, int index, int named, const char *args)
{
    cJSON *c = jadd(cJSON_AddArrayToObject(obj, "tool_calls"), NULL, cJSON_CreateObject()), *fn;

    if (index >= 0)
        cJSON_AddNumberToObject(c, "index", index);
    if (named) {
        cJSON_AddStringToObject(c, "id", pl->id2);
        cJSON_AddStringToObject(c, "type", "function");
    }
    fn = cJSON_AddObjectToObject(c, "function");
    if (named)
        cJSON_AddStringToObject(fn, "name", pl->tool);
    cJSON_AddStringToObject(fn, "arguments", args);
    return obj;
}

/* Returns the reply, with text as the message unless the plan calls a tool. */
static cJSON *chat_reply(const struct plan *pl, const char *text)
{
    cJSON *r = chat_head(pl, "chat.completion");
    cJSON *ch = jadd(cJSON_AddArrayToObject(r, "choices"), NULL, cJSON_CreateObject());
    cJSON *msg;

    cJSON_AddNumberToObject(ch, "index", 0);
    msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    jstr(msg, "content", text); /* null with a tool call */
    if (pl->tool)
        chat_call(msg, pl, -1, 1, MOCK_TOOL_ARGS);
    cJSON_AddStringToObject(ch, "finish_reason", chat_finish(pl));
    if (pl->usage)
        jadd(r, "usage", chat_usage(pl));
    return r;
}

/* Appends a chunk with delta (freed here); a NULL delta makes the usage chunk, without choices. */
static void chat_chunk(const struct plan *pl, struct pieces *p, cJSON *delta, const char *finish,
                       int paced)
{
    cJSON *c = chat_head(pl, "chat.completion.chunk"),
          *choices = cJSON_AddArrayToObject(c, "choices");
    cJSON *ch;

    if (delta) {
        ch = jadd(choices, NULL, cJSON_CreateObject());
        cJSON_AddNumberToObject(ch, "index", 0);
        jadd(ch, "delta", delta);
        jstr(ch, "finish_reason", finish);
    }
    if (pl->stream_usage)
        jadd(c, "usage", delta ? cJSON_CreateNull() : chat_usage(pl));
    piece_add(p, NULL, c, NULL, paced);
}

static void chat_step(const struct plan *pl, struct pieces *p, int k)
{
    cJSON *d = cJSON_CreateObject();

    if (!d)
        return;
    if (k == 0) {
        cJSON_AddStringToObject(d, "role", "assistant");
        cJSON_AddStringToObject(d, "content", "");
        chat_chunk(pl, p, d, NULL, 0);
    } else if (k > pl->steps) {
        chat_chunk(pl, p, d, chat_finish(pl), 0);
        if (pl->stream_usage)
            chat_chunk(pl, p, NULL, NULL, 0);
        piece_add(p, NULL, NULL, "data: [DONE]\n\n", 0);
    } else if (!pl->tool) {
        cJSON_AddStringToObject(d, "content", word(k - 1));
        chat_chunk(pl, p, d, NULL, 1);
    } else { /* a tool call: its name first, then its arguments */
        chat_chunk(pl, p, chat_call(d, pl, 0, k == 1, k == 1 ? "" : tool_args[k - 2]), NULL, 1);
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
    pl.prompt = prompt_tokens(m, body, TOK_API_CHAT);
    pl.stream_usage = pl.usage && cJSON_IsTrue(jget(jget(body, "stream_options"), "include_usage"));
    usage_note(m, &pl, cJSON_IsTrue(jget(body, "stream")) ? pl.stream_usage : pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, chat_step, f);
        return;
    }
    text = pl.tool ? NULL : mock_text(pl.ntok);
    deliver_json(m, req, pl.tool || text ? chat_reply(&pl, text) : NULL, f);
    free(text);
}

/* ---- OpenAI responses ---- */

/*
 * Returns the response object: in progress without output, or done with the
 * text. A reply cut by max_output_tokens is "incomplete", as OpenAI does.
 */
static cJSON *resp_object(const struct plan *pl, const char *text, int done)
{
    cJSON *r = cJSON_CreateObject(), *output, *item, *part, *u;

    cJSON_AddStringToObject(r, "id", pl->id);
    cJSON_AddStringToObject(r, "object", "response");
    cJSON_AddNumberToObject(r, "created_at", pl->created);
    cJSON_AddStringToObject(r, "model", pl->model);
    cJSON_AddStringToObject(r, "status",
                            !done     ? "in_progress"
                            : pl->cut ? "incomplete"
                                      : "completed");
    cJSON_AddNullToObject(r, "error");
    if (done && pl->cut)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "incomplete_details"), "reason",
                                "max_output_tokens");
    else
        cJSON_AddNullToObject(r, "incomplete_details");
    output = cJSON_AddArrayToObject(r, "output");
    if (done) {
        item = jadd(output, NULL, jtyped("message"));
        cJSON_AddStringToObject(item, "id", pl->id2);
        cJSON_AddStringToObject(item, "status", "completed");
        cJSON_AddStringToObject(item, "role", "assistant");
        part = jadd(cJSON_AddArrayToObject(item, "content"), NULL, jtyped("output_text"));
        cJSON_AddStringToObject(part, "text", text);
        cJSON_AddArrayToObject(part, "annotations");
    }
    if (pl->usage && !done) {
        cJSON_AddNullToObject(r, "usage");
    } else if (pl->usage) {
        u = cJSON_AddObjectToObject(r, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", pl->prompt);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens",
                                0);
        cJSON_AddNumberToObject(u, "output_tokens", pl->ntok);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"),
                                "reasoning_tokens", 0);
        cJSON_AddNumberToObject(u, "total_tokens", pl->prompt + pl->ntok);
    }
    return r;
}

/* Returns a text event of the output item: delta (a token) or done (with all of the text). */
static cJSON *resp_text_event(const struct plan *pl, const char *type, int seq, const char *key,
                              const char *text)
{
    cJSON *e = sse_data(type, seq);

    cJSON_AddStringToObject(e, "item_id", pl->id2);
    cJSON_AddNumberToObject(e, "output_index", 0);
    cJSON_AddNumberToObject(e, "content_index", 0);
    cJSON_AddStringToObject(e, key, text);
    return e;
}

/* Events carry sequence numbers: created 0, token k k, then steps + 1 and steps + 2. */
static void resp_step(const struct plan *pl, struct pieces *p, int k)
{
    cJSON *e;
    char *text;

    if (k == 0) {
        e = sse_data("response.created", 0);
        jadd(e, "response", resp_object(pl, "", 0));
        piece_event(p, e, 0);
    } else if (k <= pl->steps) {
        piece_event(p, resp_text_event(pl, "response.output_text.delta", k, "delta", word(k - 1)),
                    1);
    } else if ((text = mock_text(pl->ntok))) {
        piece_event(p, resp_text_event(pl, "response.output_text.done", k, "text", text), 0);
        e = sse_data(pl->cut ? "response.incomplete" : "response.completed", k + 1);
        jadd(e, "response", resp_object(pl, text, 1));
        piece_event(p, e, 0);
        free(text);
    }
}

static void ep_responses(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                         enum fault f)
{
    struct plan pl;
    char *text;

    plan_init(&pl, m, API_RESPONSES, body, ntok, jget(body, "max_output_tokens"), NULL, f);
    pl.prompt = prompt_tokens(m, body, TOK_API_RESPONSES);
    usage_note(m, &pl, pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, resp_step, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? resp_object(&pl, text, 1) : NULL, f);
    free(text);
}

/* ---- Anthropic messages ---- */

static const char *msg_stop(const struct plan *pl)
{
    return pl->tool ? "tool_use" : pl->cut ? "max_tokens" : "end_turn";
}

/* Returns the content block: the text, or the call to pl->tool, with its input once done. */
static cJSON *msg_block(const struct plan *pl, const char *text, int done)
{
    cJSON *b = jtyped(pl->tool ? "tool_use" : "text");

    if (!pl->tool) {
        cJSON_AddStringToObject(b, "text", text);
        return b;
    }
    cJSON_AddStringToObject(b, "id", pl->id2);
    cJSON_AddStringToObject(b, "name", pl->tool);
    if (done)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(b, "input"), "query", "mock");
    else
        cJSON_AddObjectToObject(b, "input");
    return b;
}

/* Returns the message, with content when text is set (else [], for message_start). */
static cJSON *msg_object(const struct plan *pl, const char *text)
{
    cJSON *r = cJSON_CreateObject(), *content, *u;

    cJSON_AddStringToObject(r, "id", pl->id);
    cJSON_AddStringToObject(r, "type", "message");
    cJSON_AddStringToObject(r, "role", "assistant");
    cJSON_AddStringToObject(r, "model", pl->model);
    content = cJSON_AddArrayToObject(r, "content");
    if (text)
        jadd(content, NULL, msg_block(pl, text, 1));
    jstr(r, "stop_reason", text ? msg_stop(pl) : NULL);
    cJSON_AddNullToObject(r, "stop_sequence");
    if (pl->usage) {
        u = cJSON_AddObjectToObject(r, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", pl->prompt);
        cJSON_AddNumberToObject(u, "cache_creation_input_tokens", 0);
        cJSON_AddNumberToObject(u, "cache_read_input_tokens", 0);
        cJSON_AddNumberToObject(u, "output_tokens", text ? pl->ntok : 1);
    }
    return r;
}

static void msg_step(const struct plan *pl, struct pieces *p, int k)
{
    cJSON *e, *d;

    if (k == 0) {
        e = sse_data("message_start", -1);
        jadd(e, "message", msg_object(pl, NULL));
        piece_event(p, e, 0);
        e = sse_data("content_block_start", -1);
        cJSON_AddNumberToObject(e, "index", 0);
        jadd(e, "content_block", msg_block(pl, "", 0));
        piece_event(p, e, 0);
        piece_event(p, sse_data("ping", -1), 0);
    } else if (k <= pl->steps) {
        e = sse_data("content_block_delta", -1);
        cJSON_AddNumberToObject(e, "index", 0);
        d = jadd(e, "delta", jtyped(pl->tool ? "input_json_delta" : "text_delta"));
        cJSON_AddStringToObject(d, pl->tool ? "partial_json" : "text",
                                pl->tool ? tool_args[k - 1] : word(k - 1));
        piece_event(p, e, 1);
    } else {
        e = sse_data("content_block_stop", -1);
        cJSON_AddNumberToObject(e, "index", 0);
        piece_event(p, e, 0);
        e = sse_data("message_delta", -1);
        d = cJSON_AddObjectToObject(e, "delta");
        cJSON_AddStringToObject(d, "stop_reason", msg_stop(pl));
        cJSON_AddNullToObject(d, "stop_sequence");
        if (pl->usage)
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(e, "usage"), "output_tokens", pl->ntok);
        piece_event(p, e, 0);
        piece_event(p, sse_data("message_stop", -1), 0);
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
        reply_error(req, 1, 400, "max_tokens: Field required");
        return;
    }
    plan_init(&pl, m, API_MESSAGES, body, ntok, max, plan_tool_name(body, 1), f);
    pl.prompt = prompt_tokens(m, body, TOK_API_MESSAGES);
    usage_note(m, &pl, pl.usage);
    if (cJSON_IsTrue(jget(body, "stream"))) {
        deliver_stream(m, req, &pl, msg_step, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? msg_object(&pl, text) : NULL, f);
    free(text);
}

/* ---- embeddings and models ---- */

/* Returns 8 numbers derived from an FNV-1a hash of in (a string or an array of token ids). */
static cJSON *emb_vector(const cJSON *in)
{
    const unsigned char *s = (const unsigned char *)cJSON_GetStringValue(in);
    size_t i, len = s ? strlen((const char *)s) : 0;
    uint64_t h = 1469598103934665603ULL;
    const cJSON *e;
    double v[8];
    long long id;

    for (i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    cJSON_ArrayForEach(e, jarr(in)) h = (h ^ (uint64_t)(jint(e, &id) ? id : 0)) * 1099511628211ULL;
    for (i = 0; i < NELEM(v); i++) /* multiples of 1/128 print exactly */
        v[i] = ((double)((h >> (8 * i)) & 0xff) - 128.0) / 128.0;
    return cJSON_CreateDoubleArray(v, (int)NELEM(v));
}

static void ep_embeddings(struct mock *m, struct evhttp_request *req, const cJSON *body,
                          enum fault f)
{
    const cJSON *in = jget(body, "input"), *e;
    const char *model = cJSON_GetStringValue(jget(body, "model"));
    long long id, prompt = m->skew; /* a string counts its tokens, a token array its length */
    const tok_enc *enc = tok_encoding(tok_encoding_for_model(model));
    int single = cJSON_IsString(in) || (jarr(in) && jint(in->child, &id));
    size_t i, n = single ? 1 : (size_t)cJSON_GetArraySize(jarr(in));
    cJSON *r = cJSON_CreateObject(), *data, *item, *u;

    cJSON_AddStringToObject(r, "object", "list");
    data = cJSON_AddArrayToObject(r, "data");
    e = single ? in : jarr(in) ? in->child : NULL;
    for (i = 0; i < n; i++, e = e->next) {
        if (!cJSON_IsString(e) && !cJSON_IsArray(e))
            break;
        if (cJSON_IsString(e)) {
            uint64_t k = 0;
            if (enc != NULL)
                tok_count(enc, e->valuestring, strlen(e->valuestring), 0, &k);
            prompt += (long long)k;
        } else
            prompt += (long long)cJSON_GetArraySize(e);
        item = jadd(data, NULL, cJSON_CreateObject());
        cJSON_AddStringToObject(item, "object", "embedding");
        cJSON_AddNumberToObject(item, "index", (double)i);
        jadd(item, "embedding", emb_vector(e));
    }
    if (n == 0 || i < n) {
        cJSON_Delete(r);
        reply_error(req, 0, 400, "input must be a string or an array of strings or tokens");
        return;
    }
    cJSON_AddStringToObject(r, "model", model ? model : "text-embedding-3-small");
    if (f != F_NO_USAGE) {
        u = cJSON_AddObjectToObject(r, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
        cJSON_AddNumberToObject(u, "total_tokens", prompt);
    }
    deliver_json(m, req, r, f);
}

static cJSON *models_reply(void)
{
    static const char *const ids[] = {"mock-model", "gpt-4o-mini", "text-embedding-3-small",
                                      "claude-3-5-haiku-latest"};
    cJSON *r = cJSON_CreateObject(), *data, *mo;
    size_t i;

    cJSON_AddStringToObject(r, "object", "list");
    data = cJSON_AddArrayToObject(r, "data");
    for (i = 0; i < NELEM(ids); i++) {
        mo = jadd(data, NULL, cJSON_CreateObject());
        cJSON_AddStringToObject(mo, "id", ids[i]);
        cJSON_AddStringToObject(mo, "object", "model");
        cJSON_AddNumberToObject(mo, "created", 1700000000);
        cJSON_AddStringToObject(mo, "owned_by", "tokengate-mock");
    }
    return r;
}

/* ---- test hooks ---- */

/*
 * Counts req in the stats and keeps it for /_mock/last: a copy of its method,
 * path and headers, and its body itself, moved to m->last_body. The path and
 * the body are kept with a NUL after them.
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
    struct evkeyval *kv;
    cJSON *n;
    size_t i;

    m->requests++;
    n = jget(m->by_path, path);
    if (!n && full)
        n = jget(m->by_path, "(other)");
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else
        cJSON_AddNumberToObject(m->by_path, full ? "(other)" : path, 1);

    m->last_method = "OTHER";
    for (i = 0; i < NELEM(methods); i++)
        if (methods[i].cmd == evhttp_request_get_command(req))
            m->last_method = methods[i].name;
    evbuffer_drain(m->last_path, evbuffer_get_length(m->last_path));
    evbuffer_add(m->last_path, path, strlen(path) + 1);
    /* then the request target as sent, query included, and a NUL: /_mock/last's "uri" */
    evbuffer_add(m->last_path, evhttp_request_get_uri(req),
                 strlen(evhttp_request_get_uri(req)) + 1);
    evbuffer_drain(m->last_headers, evbuffer_get_length(m->last_headers));
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
    {
        evbuffer_add(m->last_headers, kv->key, strlen(kv->key) + 1);
        evbuffer_add(m->last_headers, kv->value, strlen(kv->value) + 1);
    }
    evbuffer_drain(m->last_body, evbuffer_get_length(m->last_body));
    /* moved, not copied: serve() reads it there */
    evbuffer_add_buffer(m->last_body, evhttp_request_get_input_buffer(req));
    if (evbuffer_add(m->last_body, "", 1) < 0) /* no NUL, no body: serve() refuses it */
        evbuffer_drain(m->last_body, evbuffer_get_length(m->last_body));
}

/*
 * Returns the last request's headers as JSON: names lowercased, repeated
 * headers joined with ", "; NULL when out of memory.
 */
static cJSON *last_headers(struct mock *m)
{
    size_t n, len = evbuffer_get_length(m->last_headers);
    char *h = (char *)evbuffer_pullup(m->last_headers, -1), *end = h + len, *c, *value, *both;
    cJSON *hdrs = cJSON_CreateObject(), *old;

    for (; hdrs && h && h < end; h = value + strlen(value) + 1) {
        value = h + strlen(h) + 1;
        for (c = h; *c; c++) /* the copy keeps names as sent: lowercase them once, here */
            *c = *c >= 'A' && *c <= 'Z' ? (char)(*c + 32) : *c;
        if (!(old = jget(hdrs, h))) {
            cJSON_AddStringToObject(hdrs, h, value);
        } else if ((both = malloc(n = strlen(old->valuestring) + strlen(value) + 3))) {
            snprintf(both, n, "%s, %s", old->valuestring, value);
            cJSON_SetValuestring(old, both);
            free(both);
        }
    }
    return hdrs;
}

/*
 * Serves /_mock/stats, /_mock/last, /_mock/usage and /_mock/reset (counters,
 * last request, usage by x-request-id: {"usage":{ID:{input,output,complete}},
 * "dropped":N}, and ids).
 */
static void hook(struct mock *m, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    cJSON *r = cJSON_CreateObject();

    if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/stats") == 0) {
        cJSON_AddNumberToObject(r, "requests", m->requests);
        jadd(r, "by_path", cJSON_Duplicate(m->by_path, 1));
    } else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/last") == 0 && m->last_method) {
        cJSON_AddStringToObject(r, "method", m->last_method);
        const char *lp = (const char *)evbuffer_pullup(m->last_path, -1);
        cJSON_AddStringToObject(r, "path", lp);
        cJSON_AddStringToObject(r, "uri", lp + strlen(lp) + 1);
        jadd(r, "headers", last_headers(m));
        cJSON_AddStringToObject(r, "body", (const char *)evbuffer_pullup(m->last_body, -1));
    } else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/usage") == 0) {
        jadd(r, "usage", cJSON_Duplicate(m->usage, 1));
        cJSON_AddNumberToObject(r, "dropped", (double)m->usage_dropped);
    } else if (cmd == EVHTTP_REQ_POST && strcmp(path, "/_mock/reset") == 0) {
        m->requests = 0;
        m->seq = 0;
        m->last_method = NULL;
        while (m->by_path->child)
            cJSON_Delete(cJSON_DetachItemViaPointer(m->by_path, m->by_path->child));
        while (m->usage->child)
            cJSON_Delete(cJSON_DetachItemViaPointer(m->usage, m->usage->child));
        m->usage_n = m->usage_dropped = 0;
        m->usage_gen++;
        cJSON_AddTrueToObject(r, "ok");
    } else {
        cJSON_Delete(r);
        reply_error(req, 0, 404, "no such mock hook, or no request recorded yet");
        return;
    }
    reply_json(req, 200, r);
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
    size_t len = evbuffer_get_length(m->last_body); /* the body and a NUL */
    cJSON *body, *r;

    if (f == F_HANG) {
        stream_start(m, req, SM_HANG, NULL, NULL, NULL);
        return;
    }
    if (ep == EP_MODELS) {
        deliver_json(m, req, models_reply(), f);
        return;
    }
    body = len ? json_parse((const char *)evbuffer_pullup(m->last_body, -1), len - 1) : NULL;
    if (!body) {
        reply_error(req, anth, 400, "mock: request body is not a JSON object");
    } else if (ep == EP_CHAT) {
        ep_chat(m, req, body, ntok, f);
    } else if (ep == EP_RESPONSES) {
        ep_responses(m, req, body, ntok, f);
    } else if (ep == EP_EMBEDDINGS) {
        ep_embeddings(m, req, body, f);
    } else if (ep == EP_MESSAGES) {
        ep_messages(m, req, body, ntok, f);
    } else {
        r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "input_tokens",
                                (double)prompt_tokens(m, body, TOK_API_MESSAGES));
        deliver_json(m, req, r, f);
    }
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
    const char *skew = evhttp_find_header(ih, "x-mock-usage-skew");
    long code = 0, ntok = m->ntokens, skewv = 0;
    int anth, ep = -1;
    enum fault f = F_NONE;
    size_t i;

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
        reply_error(req, anth, 404, "mock: no such endpoint");
    } else if (fname && f == F_NONE) {
        reply_error(req, anth, 400, "mock: unknown x-mock-fault");
    } else if (status && parse_long(status, 200, 599, &code) < 0) {
        reply_error(req, anth, 400, "mock: x-mock-status must be 200..599");
    } else if (tokens && parse_long(tokens, 0, MOCK_MAX_TOKENS, &ntok) < 0) {
        reply_error(req, anth, 400, "mock: bad x-mock-tokens");
    } else if (skew && parse_long(skew, -1000000, 1000000, &skewv) < 0) {
        reply_error(req, anth, 400, "mock: bad x-mock-usage-skew");
    } else if (code || f == F_500 || f == F_429) {
        code = code ? code : f == F_500 ? 500 : 429;
        reply_error(req, anth, (int)code, code == 429 ? "mock rate limit" : "mock error");
    } else {
        m->skew = skewv;
        m->rid = evhttp_find_header(ih, "x-request-id");
        serve(m, req, (enum endpoint)ep, anth, f, (int)ntok);
        m->skew = 0;
        m->rid = NULL;
        m->cur_usage = NULL;
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
    m.usage = cJSON_CreateObject();
    m.last_path = evbuffer_new();
    m.last_headers = evbuffer_new();
    m.last_body = evbuffer_new();
    m.scratch = evbuffer_new();
    if (cert && !(ctx = tls_ctx_new(cert, key)))
        fprintf(stderr, "tokengate-mock: cannot load %s and %s\n", cert, key);
    else if (!m.base || !m.by_path || !m.usage || !m.last_path || !m.last_headers || !m.last_body ||
             !m.scratch)
        fprintf(stderr, "tokengate-mock: out of memory\n");
    else
        rc = mock_run(&m, &sin, ctx, port_file);
    SSL_CTX_free(ctx);
    cJSON_Delete(m.by_path);
    cJSON_Delete(m.usage);
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
