/*
 * tokengate-mock: an OpenAI- and Anthropic-compatible mock model provider.
 *
 * One libevent loop serves everything (evhttp, keep-alive, optional TLS) and
 * nothing is logged per request. Replies are deterministic: the text is words
 * taken in turn from mock_words, and prompt token counts follow
 * prompt_tokens(). Request headers steer a reply: x-mock-tokens (reply
 * length), x-mock-fault (see fault_names) and x-mock-status (forced status).
 * /_mock/stats, /_mock/last and /_mock/reset are hooks for tests.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MOCK_MAX_TOKENS 100000   /* cap on reply length, per request */
#define MOCK_MAX_BODY (32 << 20) /* larger request bodies get 413 from evhttp */
#define MOCK_MAX_PATHS 256       /* distinct paths in /_mock/stats; then "(other)" */
#define MOCK_PATH_MAX 1024       /* longer paths are truncated in /_mock/last */
#define MOCK_TIMEOUT_S 600       /* evhttp read/write timeout per connection */
#define MOCK_SLOW_BYTES 16       /* slow fault: bytes per write... */
#define MOCK_SLOW_MS 200         /* ...and the pause between writes */
#define MOCK_TOOL_TOKENS 8       /* completion tokens charged for a tool call */
#define MOCK_TOOL_ARGS "{\"query\":\"mock\"}"

/* Each word is one token in OpenAI's tokenizers, so C words are C tokens. */
static const char *const mock_words[] = {
    " the", " of",  " and",  " to",  " in",   " is",   " that", " it",   " was",  " for",  " on",
    " are", " as",  " with", " his", " they", " at",   " be",   " this", " have", " from", " or",
    " one", " had", " by",   " but", " not",  " what", " all",  " were", " we",   " when",
};
#define MOCK_NWORDS (sizeof(mock_words) / sizeof(mock_words[0]))
#define MOCK_WORD_MAX 8 /* no word above is longer */

/* A streamed tool call's arguments, in pieces that concatenate to MOCK_TOOL_ARGS. */
static const char *const tool_arg_pieces[] = {"{\"query\"", ":\"mo", "ck\"}"};

static const char *const model_ids[] = {"mock-model", "gpt-4o-mini", "text-embedding-3-small",
                                        "claude-3-5-haiku-latest"};

enum fault { F_NONE, F_500, F_429, F_RESET, F_HANG, F_SLOW, F_MALFORMED, F_NO_USAGE };

static const struct {
    const char *name;
    enum fault fault;
} fault_names[] = {
    {"500", F_500},           {"429", F_429},   {"reset", F_RESET},
    {"hang", F_HANG},         {"slow", F_SLOW}, {"malformed", F_MALFORMED},
    {"no-usage", F_NO_USAGE},
};

enum api { API_CHAT, API_RESPONSES, API_MESSAGES };

/* The invalid event the malformed fault slips into a stream, per API. */
static const char *const bad_events[] = {
    [API_CHAT] = "data: {\"id\":\"chatcmpl-mock\",\"choices\":[{\"delta\":\n\n",
    [API_RESPONSES] = "event: response.output_text.delta\n"
                      "data: {\"type\":\"response.output_text.delta\",\"delta\":\n\n",
    [API_MESSAGES] = "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":\n\n",
};

enum endpoint { EP_CHAT, EP_RESPONSES, EP_EMBEDDINGS, EP_MODELS, EP_MESSAGES, EP_COUNT };

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

/* Server state, passed to every callback; nothing here is global. */
struct mock {
    struct event_base *base;
    int ntokens;         /* default reply length (--tokens) */
    int delay_ms;        /* pause before each streamed token (--delay-ms) */
    unsigned long seq;   /* numbers reply ids; zeroed by /_mock/reset */
    json_int_t requests; /* requests outside /_mock/ */
    json_t *by_path;     /* path -> count, at most MOCK_MAX_PATHS keys */
    int have_last;       /* the last_* fields hold a request */
    char last_method[16];
    char last_path[MOCK_PATH_MAX];
    struct evbuffer *last_headers; /* lowercased "name\0value\0" pairs */
    struct evbuffer *last_body;
    struct evbuffer *scratch; /* empty between uses */
};

/* What one reply says. Strings are borrowed from the request JSON or the plan. */
struct plan {
    enum api api;
    const char *model;
    char id[48];  /* chatcmpl-mock-N, resp_mock_N, msg_mock_N */
    char id2[48]; /* call_mock_N, msg_mock_N (output item), toolu_mock_N */
    json_int_t created;
    json_int_t prompt; /* P, see prompt_tokens() */
    int ntok;          /* C, completion tokens */
    int cut;           /* C was limited by the request's max tokens */
    const char *tool;  /* reply with a call to this tool instead of text */
    int usage;         /* 0 under the no-usage fault */
    int stream_usage;  /* chat: a usage chunk was asked for (and usage is on) */
    int malformed;     /* slip bad_events[api] into the stream */
};

/*
 * A reply cut into pieces (SSE events, or one raw body) stored back to back in
 * buf. A paced piece waits --delay-ms before it is sent. The arrays are sized
 * once; pieces past cap are dropped.
 */
struct pieces {
    struct evbuffer *buf;
    size_t *len;
    unsigned char *paced;
    size_t n, cap;
    const char *bad; /* raw event to insert after the next paced piece */
};

enum smode {
    SM_PACED,      /* send pieces, pausing before paced ones */
    SM_SLOW,       /* drip MOCK_SLOW_BYTES every MOCK_SLOW_MS */
    SM_RESET,      /* send pieces up to stop_at, then reset the connection */
    SM_RESET_WAIT, /* waiting for the sent pieces to leave our buffers */
    SM_HANG,       /* never reply; free all when the peer closes */
};

/* A reply in progress, owned by the timer/close callbacks until it ends. */
struct stream {
    struct mock *m;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *ev; /* SM_HANG: the peer closing; otherwise a timer */
    struct pieces p;
    size_t next;    /* next piece to send */
    size_t stop_at; /* SM_RESET: pieces sent before the reset */
    enum smode mode;
    int waited; /* the pause before piece `next` is over */
    int tries;  /* SM_RESET_WAIT: flush checks so far */
};

static const char *word(int i)
{
    return mock_words[(size_t)i % MOCK_NWORDS];
}

/* Returns the reply text of ntok words (malloc'd), or NULL when out of memory. */
static char *mock_text(int ntok)
{
    char *s = malloc((size_t)ntok * MOCK_WORD_MAX + 1), *w = s;
    int i;

    if (!s)
        return NULL;
    for (i = 0; i < ntok; i++) {
        size_t l = strlen(word(i));
        memcpy(w, word(i), l);
        w += l;
    }
    *w = '\0';
    return s;
}

/* Parses all of s as a decimal in [lo, hi]. Returns 0, or -1 leaving *out alone. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (!s || !*s)
        return -1;
    v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* Appends j as compact JSON to out. Returns 0, or -1 (out may then hold part of it). */
static int json_add(struct evbuffer *out, json_t *j)
{
    char buf[4096]; /* most replies fit: one copy instead of many small appends */
    size_t n = j ? json_dumpb(j, buf, sizeof(buf), JSON_COMPACT) : 0;

    if (n == 0)
        return -1;
    if (n <= sizeof(buf))
        return evbuffer_add(out, buf, n);
    return json_dump_callback(j, dump_cb, out, JSON_COMPACT);
}

/* Builds a JSON string from len bytes, replacing bytes that are not UTF-8 by '?'. */
static json_t *json_lossy(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    char *copy;
    size_t i;

    if (j || !(copy = malloc(len + 1)))
        return j;
    for (i = 0; i < len; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(copy, len);
    free(copy);
    return j;
}

/* Sends body (stolen) as a JSON reply with status code. A NULL body means out of memory. */
static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (json_add(out, body) < 0) {
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_add_printf(out, "{\"error\":{\"message\":\"mock out of memory\"}}");
        code = 500;
    }
    json_decref(body);
    /* evhttp knows neither phrase */
    evhttp_send_reply(req, code,
                      code == 429   ? "Too Many Requests"
                      : code == 529 ? "Overloaded"
                                    : NULL,
                      NULL);
}

/*
 * Sends an error reply: Anthropic's shape when anth is set, else OpenAI's.
 * A 429 carries retry-after: 2.
 */
static void reply_error(struct evhttp_request *req, int anth, int code, const char *msg)
{
    const char *otype = code == 429   ? "requests"
                        : code >= 500 ? "server_error"
                                      : "invalid_request_error";
    const char *atype = code >= 500 ? "api_error" : "invalid_request_error";

    switch (code) {
    case 401:
        atype = "authentication_error";
        break;
    case 403:
        atype = "permission_error";
        break;
    case 404:
        atype = "not_found_error";
        break;
    case 413:
        atype = "request_too_large";
        break;
    case 429:
        atype = "rate_limit_error";
        break;
    case 529:
        atype = "overloaded_error";
        break;
    }
    if (code == 429)
        evhttp_add_header(evhttp_request_get_output_headers(req), "retry-after", "2");
    if (anth)
        reply_json(req, code,
                   json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", atype,
                             "message", msg));
    else
        reply_json(req, code,
                   json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", msg, "type", otype,
                             "param", "code", code == 429 ? "rate_limit_exceeded" : NULL));
}

/* ---- token accounting ---- */

/* Returns the bytes of text in v: a string, or arrays/blocks holding "text" or "content". */
static size_t text_bytes(json_t *v)
{
    size_t n = 0, i;
    json_t *e;

    if (json_is_string(v))
        return json_string_length(v);
    if (json_is_object(v))
        return text_bytes(json_object_get(v, "text")) + text_bytes(json_object_get(v, "content"));
    json_array_foreach(v, i, e) n += text_bytes(e);
    return n;
}

/*
 * Approximate prompt tokens, deterministic so tests can predict them:
 * (bytes of all message text + 3) / 4 + 4 per message. items is a message
 * array (each message's content counts) or a plain string (one message);
 * extra (system / instructions) adds its text and counts as one more message.
 * A stand-in until the real tokenizer exists.
 */
static json_int_t prompt_tokens(json_t *items, json_t *extra)
{
    size_t bytes = 0, n = 0, i;
    json_t *e;

    if (json_is_string(items)) {
        bytes = json_string_length(items);
        n = 1;
    }
    json_array_foreach(items, i, e)
    {
        bytes += text_bytes(e);
        n++;
    }
    if (extra) {
        bytes += text_bytes(extra);
        n++;
    }
    return (json_int_t)((bytes + 3) / 4 + 4 * n);
}

/* ---- pieces ---- */

/* Makes room for cap pieces. Returns 0, or -1 when out of memory (p then needs no free). */
static int pieces_init(struct pieces *p, size_t cap)
{
    memset(p, 0, sizeof(*p));
    p->buf = evbuffer_new();
    p->len = calloc(cap, sizeof(*p->len));
    p->paced = calloc(cap, 1);
    p->cap = cap;
    if (p->buf && p->len && p->paced)
        return 0;
    if (p->buf)
        evbuffer_free(p->buf);
    free(p->len);
    free(p->paced);
    return -1;
}

static void pieces_free(struct pieces *p)
{
    if (p->buf)
        evbuffer_free(p->buf);
    free(p->len);
    free(p->paced);
    memset(p, 0, sizeof(*p));
}

/*
 * Appends one piece: "event: NAME\n" when name is set, then "data: JSON\n\n"
 * from data (stolen), or the raw text when data is NULL. A NULL data with no
 * raw text (a failed json_pack) adds nothing.
 */
static void piece_add(struct pieces *p, const char *name, json_t *data, const char *raw, int paced)
{
    size_t before = evbuffer_get_length(p->buf);
    const char *bad = p->bad;

    if (p->n == p->cap || (!data && !raw)) {
        json_decref(data);
        return;
    }
    if (name)
        evbuffer_add_printf(p->buf, "event: %s\n", name);
    if (data) {
        evbuffer_add(p->buf, "data: ", 6);
        json_add(p->buf, data);
        evbuffer_add(p->buf, "\n\n", 2);
        json_decref(data);
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
 * members of rest (stolen, may be NULL). seq < 0 leaves the number out.
 */
static void piece_typed(struct pieces *p, const char *type, int seq, json_t *rest, int paced)
{
    json_t *obj = json_pack("{s:s}", "type", type);

    if (obj && seq >= 0)
        json_object_set_new(obj, "sequence_number", json_integer(seq));
    if (obj && rest)
        json_object_update(obj, rest);
    json_decref(rest);
    piece_add(p, type, obj, NULL, paced);
}

/* ---- replies in progress ---- */

static void stream_free(struct stream *s)
{
    if (s->ev)
        event_free(s->ev);
    pieces_free(&s->p);
    free(s);
}

static void stream_arm(struct stream *s, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(s->ev, &tv);
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
 * evhttp_connection_free() calls shutdown(SHUT_WR) before close() and so
 * sends a FIN first; connecting the socket to AF_UNSPEC makes Linux abort the
 * connection with an RST at once.
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

/* Sends pieces until a pause, the reset point or the end (which frees s). */
static void stream_pump(struct stream *s)
{
    while (s->next < s->p.n) {
        if (s->mode == SM_RESET && s->next == s->stop_at)
            break;
        if (s->p.paced[s->next] && s->m->delay_ms > 0 && !s->waited) {
            s->waited = 1;
            stream_arm(s, s->m->delay_ms);
            return;
        }
        s->waited = 0;
        stream_send(s, s->p.len[s->next++]);
    }
    if (s->mode == SM_RESET) {
        s->mode = SM_RESET_WAIT;
        stream_arm(s, 0);
        return;
    }
    stream_finish(s);
}

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;
    struct bufferevent *bev;
    size_t left;
    int unacked;

    switch (s->mode) {
    case SM_SLOW:
        left = evbuffer_get_length(s->p.buf);
        stream_send(s, left < MOCK_SLOW_BYTES ? left : MOCK_SLOW_BYTES);
        if (left <= MOCK_SLOW_BYTES)
            stream_finish(s);
        else
            stream_arm(s, MOCK_SLOW_MS);
        break;
    case SM_RESET_WAIT:
        /* the reset discards unsent data: wait until what was sent is acked */
        bev = evhttp_connection_get_bufferevent(s->evcon);
        if (bev &&
            (evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
             ioctl(bufferevent_getfd(bev), SIOCOUTQ, &unacked) < 0 || unacked > 0) &&
            s->tries++ < 100) {
            stream_arm(s, 10);
            return;
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
 * Called when evhttp frees the connection under an unfinished reply (peer
 * gone, timeout, shutdown). When the peer went away evhttp has detached the
 * request and left it to us; otherwise evhttp frees it with the connection.
 */
static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
    struct stream *s = arg;

    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_request_free(s->req);
    stream_free(s);
}

/*
 * Replies to req from p (taken over, also on failure) in the given mode.
 * ctype set: send a 200 with that Content-Type first (and Content-Length when
 * clen >= 0, else the body is chunked); ctype NULL: no reply at all (reset,
 * hang). The reply then runs from timers and ends by itself.
 */
static void stream_start(struct mock *m, struct evhttp_request *req, struct pieces *p,
                         enum smode mode, const char *ctype, long clen)
{
    struct stream *s = calloc(1, sizeof(*s));
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    size_t i, paced = 0, seen = 0;
    char num[24];
    int one = 1;

    /* evhttp does not read, so does not see the peer go, until we reply */
    if (s)
        s->ev = mode == SM_HANG ? event_new(m->base, fd, EV_CLOSED, stream_tick, s)
                                : evtimer_new(m->base, stream_tick, s);
    if (!s || !s->ev) {
        free(s);
        pieces_free(p);
        reply_error(req, 0, 500, "mock out of memory");
        return;
    }
    s->m = m;
    s->req = req;
    s->evcon = evhttp_request_get_connection(req);
    s->p = *p;
    s->mode = mode;
    evhttp_connection_set_closecb(s->evcon, stream_closed, s);
    if (mode == SM_HANG) {
        event_add(s->ev, NULL);
        return;
    }
    /* send each event when it is made, not when Nagle allows */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (ctype) {
        evhttp_add_header(oh, "Content-Type", ctype);
        if (clen >= 0) {
            snprintf(num, sizeof(num), "%ld", clen);
            evhttp_add_header(oh, "Content-Length", num);
        } else {
            evhttp_add_header(oh, "Cache-Control", "no-cache");
        }
        evhttp_send_reply_start(req, 200, NULL);
    }
    if (mode == SM_SLOW) {
        stream_arm(s, MOCK_SLOW_MS);
        return;
    }
    if (mode == SM_RESET) { /* stop after about half of the paced (token) pieces */
        for (i = 0; i < s->p.n; i++)
            paced += s->p.paced[i];
        s->stop_at = s->p.n / 2;
        for (i = 0; paced && i < s->p.n; i++)
            if (s->p.paced[i] && ++seen > paced / 2) {
                s->stop_at = i;
                break;
            }
    }
    stream_pump(s);
}

/* Sends a non-stream JSON body (stolen) as the fault f asks. */
static void deliver_json(struct mock *m, struct evhttp_request *req, json_t *body, enum fault f)
{
    struct pieces p;
    char *s;
    size_t len;

    if (f != F_SLOW && f != F_RESET && f != F_MALFORMED) {
        reply_json(req, 200, body);
        return;
    }
    s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s || pieces_init(&p, 1) < 0) {
        free(s);
        reply_error(req, 0, 500, "mock out of memory");
        return;
    }
    len = strlen(s);
    if (f == F_MALFORMED) { /* a 200 whose JSON stops halfway */
        pieces_free(&p);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), s, len / 2);
        evhttp_send_reply(req, 200, NULL, NULL);
    } else if (f == F_SLOW) {
        piece_add(&p, NULL, NULL, s, 0);
        stream_start(m, req, &p, SM_SLOW, "application/json", (long)len);
    } else {
        stream_start(m, req, &p, SM_RESET, NULL, -1);
    }
    free(s);
}

/* Streams what build makes of pl as text/event-stream, as the fault f asks. */
static void deliver_stream(struct mock *m, struct evhttp_request *req, const struct plan *pl,
                           void (*build)(const struct plan *, struct pieces *), enum fault f)
{
    struct pieces p;

    if (pieces_init(&p, (size_t)pl->ntok + 16) < 0) {
        reply_error(req, pl->api == API_MESSAGES, 500, "mock out of memory");
        return;
    }
    p.bad = pl->malformed ? bad_events[pl->api] : NULL;
    build(pl, &p);
    stream_start(m, req, &p,
                 f == F_SLOW    ? SM_SLOW
                 : f == F_RESET ? SM_RESET
                                : SM_PACED,
                 "text/event-stream", -1);
}

/* ---- plans ---- */

/* Returns the integer value of the first of names present in body, or -1. */
static json_int_t first_int(json_t *body, const char *a, const char *b)
{
    json_t *v = json_object_get(body, a);

    if (!json_is_integer(v))
        v = json_object_get(body, b);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/*
 * Fills what every reply needs: model, ids (prefix + sequence number), the
 * reply length (ntok, cut to limit when limit >= 0) and usage under fault f.
 */
static void plan_init(struct plan *pl, struct mock *m, enum api api, json_t *body, int ntok,
                      json_int_t limit, enum fault f)
{
    static const char *const pfx[][2] = {
        [API_CHAT] = {"chatcmpl-mock-", "call_mock_"},
        [API_RESPONSES] = {"resp_mock_", "msg_mock_"},
        [API_MESSAGES] = {"msg_mock_", "toolu_mock_"},
    };

    memset(pl, 0, sizeof(*pl));
    pl->api = api;
    pl->model = json_string_value(json_object_get(body, "model"));
    if (!pl->model)
        pl->model = "mock-model";
    m->seq++;
    snprintf(pl->id, sizeof(pl->id), "%s%lu", pfx[api][0], m->seq);
    snprintf(pl->id2, sizeof(pl->id2), "%s%lu", pfx[api][1], m->seq);
    pl->created = (json_int_t)time(NULL);
    pl->ntok = ntok;
    if (limit >= 0 && limit < ntok) {
        pl->ntok = (int)limit;
        pl->cut = 1;
    }
    pl->usage = f != F_NO_USAGE;
    pl->malformed = f == F_MALFORMED;
}

/* Makes pl a tool call to tool (when not NULL): a fixed MOCK_TOOL_TOKENS reply. */
static void plan_tool(struct plan *pl, const char *tool)
{
    if (!tool)
        return;
    pl->tool = tool;
    pl->ntok = MOCK_TOOL_TOKENS;
    pl->cut = 0;
}

/* ---- OpenAI chat completions ---- */

/* Returns the tool to call: tools non-empty, tool_choice not "none", last message not a tool's. */
static const char *chat_tool(json_t *body)
{
    json_t *tools = json_object_get(body, "tools"), *msgs = json_object_get(body, "messages");
    const char *choice = json_string_value(json_object_get(body, "tool_choice"));
    const char *role, *name;

    if (json_array_size(tools) == 0 || (choice && strcmp(choice, "none") == 0))
        return NULL;
    role =
        json_string_value(json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "role"));
    if (role && strcmp(role, "tool") == 0)
        return NULL;
    name = json_string_value(
        json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name"));
    return name ? name : "mock_tool";
}

static json_t *chat_usage(const struct plan *pl)
{
    return json_pack("{s:I,s:I,s:I,s:{s:i},s:{s:i}}", "prompt_tokens", pl->prompt,
                     "completion_tokens", (json_int_t)pl->ntok, "total_tokens",
                     pl->prompt + pl->ntok, "prompt_tokens_details", "cached_tokens", 0,
                     "completion_tokens_details", "reasoning_tokens", 0);
}

static const char *chat_finish(const struct plan *pl)
{
    return pl->tool ? "tool_calls" : pl->cut ? "length" : "stop";
}

static json_t *chat_reply(const struct plan *pl)
{
    char *text = pl->tool ? NULL : mock_text(pl->ntok);
    json_t *msg, *r;

    if (pl->tool)
        msg = json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                        "tool_calls", "id", pl->id2, "type", "function", "function", "name",
                        pl->tool, "arguments", MOCK_TOOL_ARGS);
    else
        msg = text ? json_pack("{s:s,s:s}", "role", "assistant", "content", text) : NULL;
    free(text);
    r = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}]}", "id", pl->id, "object", "chat.completion",
                  "created", pl->created, "model", pl->model, "choices", "index", 0, "message", msg,
                  "finish_reason", chat_finish(pl));
    if (r && pl->usage)
        json_object_set_new(r, "usage", chat_usage(pl));
    return r;
}

/* Returns a chunk with delta (stolen; NULL for the usage chunk, which has no choices). */
static json_t *chat_chunk(const struct plan *pl, json_t *delta, const char *finish)
{
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[]}", "id", pl->id, "object", "chat.completion.chunk",
                          "created", pl->created, "model", pl->model, "choices");

    if (c && delta)
        json_array_append_new(
            json_object_get(c, "choices"),
            json_pack("{s:i,s:o,s:s?}", "index", 0, "delta", delta, "finish_reason", finish));
    else
        json_decref(delta);
    if (c && pl->stream_usage)
        json_object_set_new(c, "usage", delta ? json_null() : chat_usage(pl));
    return c;
}

static void chat_stream(const struct plan *pl, struct pieces *p)
{
    size_t i;
    int t;

    piece_add(p, NULL,
              chat_chunk(pl, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL),
              NULL, 0);
    if (pl->tool) {
        piece_add(p, NULL,
                  chat_chunk(pl,
                             json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", 0,
                                       "id", pl->id2, "type", "function", "function", "name",
                                       pl->tool, "arguments", ""),
                             NULL),
                  NULL, 1);
        for (i = 0; i < sizeof(tool_arg_pieces) / sizeof(tool_arg_pieces[0]); i++)
            piece_add(p, NULL,
                      chat_chunk(pl,
                                 json_pack("{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0,
                                           "function", "arguments", tool_arg_pieces[i]),
                                 NULL),
                      NULL, 1);
    }
    for (t = 0; !pl->tool && t < pl->ntok; t++)
        piece_add(p, NULL, chat_chunk(pl, json_pack("{s:s}", "content", word(t)), NULL), NULL, 1);
    piece_add(p, NULL, chat_chunk(pl, json_object(), chat_finish(pl)), NULL, 0);
    if (pl->stream_usage)
        piece_add(p, NULL, chat_chunk(pl, NULL, NULL), NULL, 0);
    piece_add(p, NULL, NULL, "data: [DONE]\n\n", 0);
}

static void ep_chat(struct mock *m, struct evhttp_request *req, json_t *body, int ntok,
                    enum fault f)
{
    struct plan pl;

    plan_init(&pl, m, API_CHAT, body, ntok, first_int(body, "max_completion_tokens", "max_tokens"),
              f);
    plan_tool(&pl, chat_tool(body));
    pl.prompt = prompt_tokens(json_object_get(body, "messages"), NULL);
    pl.stream_usage =
        pl.usage &&
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    if (json_is_true(json_object_get(body, "stream")))
        deliver_stream(m, req, &pl, chat_stream, f);
    else
        deliver_json(m, req, chat_reply(&pl), f);
}

/* ---- OpenAI responses ---- */

static json_t *resp_part(const char *text)
{
    return json_pack("{s:s,s:s,s:[]}", "type", "output_text", "text", text, "annotations");
}

/* Returns the message output item; done: completed with text, else in progress and empty. */
static json_t *resp_item(const struct plan *pl, const char *text, int done)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "type", "message", "id", pl->id2, "status",
                     done ? "completed" : "in_progress", "role", "assistant", "content",
                     done ? json_pack("[o]", resp_part(text)) : json_array());
}

/*
 * Returns the response object: in progress without output, or done with the
 * text. A reply cut by max_output_tokens is "incomplete", as OpenAI does.
 */
static json_t *resp_object(const struct plan *pl, const char *text, int done)
{
    const char *status = !done ? "in_progress" : pl->cut ? "incomplete" : "completed";
    json_t *r = json_pack(
        "{s:s,s:s,s:I,s:s,s:s,s:n,s:o,s:o}", "id", pl->id, "object", "response", "created_at",
        pl->created, "model", pl->model, "status", status, "error", "incomplete_details",
        done && pl->cut ? json_pack("{s:s}", "reason", "max_output_tokens") : json_null(), "output",
        done ? json_pack("[o]", resp_item(pl, text, 1)) : json_array());

    if (r && pl->usage)
        json_object_set_new(r, "usage",
                            !done ? json_null()
                                  : json_pack("{s:I,s:{s:i},s:I,s:{s:i},s:I}", "input_tokens",
                                              pl->prompt, "input_tokens_details", "cached_tokens",
                                              0, "output_tokens", (json_int_t)pl->ntok,
                                              "output_tokens_details", "reasoning_tokens", 0,
                                              "total_tokens", pl->prompt + pl->ntok));
    return r;
}

static void resp_stream(const struct plan *pl, struct pieces *p)
{
    char *text = mock_text(pl->ntok);
    int sq = 0, t;

    if (!text)
        return;
    piece_typed(p, "response.created", sq++, json_pack("{s:o}", "response", resp_object(pl, "", 0)),
                0);
    piece_typed(p, "response.in_progress", sq++,
                json_pack("{s:o}", "response", resp_object(pl, "", 0)), 0);
    piece_typed(p, "response.output_item.added", sq++,
                json_pack("{s:i,s:o}", "output_index", 0, "item", resp_item(pl, "", 0)), 0);
    piece_typed(p, "response.content_part.added", sq++,
                json_pack("{s:s,s:i,s:i,s:o}", "item_id", pl->id2, "output_index", 0,
                          "content_index", 0, "part", resp_part("")),
                0);
    for (t = 0; t < pl->ntok; t++)
        piece_typed(p, "response.output_text.delta", sq++,
                    json_pack("{s:s,s:i,s:i,s:s}", "item_id", pl->id2, "output_index", 0,
                              "content_index", 0, "delta", word(t)),
                    1);
    piece_typed(p, "response.output_text.done", sq++,
                json_pack("{s:s,s:i,s:i,s:s}", "item_id", pl->id2, "output_index", 0,
                          "content_index", 0, "text", text),
                0);
    piece_typed(p, "response.content_part.done", sq++,
                json_pack("{s:s,s:i,s:i,s:o}", "item_id", pl->id2, "output_index", 0,
                          "content_index", 0, "part", resp_part(text)),
                0);
    piece_typed(p, "response.output_item.done", sq++,
                json_pack("{s:i,s:o}", "output_index", 0, "item", resp_item(pl, text, 1)), 0);
    piece_typed(p, pl->cut ? "response.incomplete" : "response.completed", sq++,
                json_pack("{s:o}", "response", resp_object(pl, text, 1)), 0);
    free(text);
}

static void ep_responses(struct mock *m, struct evhttp_request *req, json_t *body, int ntok,
                         enum fault f)
{
    struct plan pl;
    char *text;

    plan_init(&pl, m, API_RESPONSES, body, ntok,
              first_int(body, "max_output_tokens", "max_output_tokens"), f);
    pl.prompt =
        prompt_tokens(json_object_get(body, "input"), json_object_get(body, "instructions"));
    if (json_is_true(json_object_get(body, "stream"))) {
        deliver_stream(m, req, &pl, resp_stream, f);
        return;
    }
    text = mock_text(pl.ntok);
    deliver_json(m, req, text ? resp_object(&pl, text, 1) : NULL, f);
    free(text);
}

/* ---- Anthropic messages ---- */

/* Returns the tool to use: tools non-empty, tool_choice not none, no tool_result to answer. */
static const char *msg_tool(json_t *body)
{
    json_t *tools = json_object_get(body, "tools"), *msgs = json_object_get(body, "messages");
    json_t *content, *block;
    const char *choice =
        json_string_value(json_object_get(json_object_get(body, "tool_choice"), "type"));
    const char *name, *type;
    size_t i;

    if (json_array_size(tools) == 0 || (choice && strcmp(choice, "none") == 0))
        return NULL;
    content = json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content");
    json_array_foreach(content, i, block)
    {
        type = json_string_value(json_object_get(block, "type"));
        if (type && strcmp(type, "tool_result") == 0)
            return NULL;
    }
    name = json_string_value(json_object_get(json_array_get(tools, 0), "name"));
    return name ? name : "mock_tool";
}

static json_t *msg_usage(json_int_t in, json_int_t out)
{
    return json_pack("{s:I,s:i,s:i,s:I}", "input_tokens", in, "cache_creation_input_tokens", 0,
                     "cache_read_input_tokens", 0, "output_tokens", out);
}

static const char *msg_stop(const struct plan *pl)
{
    return pl->tool ? "tool_use" : pl->cut ? "max_tokens" : "end_turn";
}

static json_t *msg_reply(const struct plan *pl)
{
    char *text = pl->tool ? NULL : mock_text(pl->ntok);
    json_t *content, *r;

    if (pl->tool)
        content = json_pack("[{s:s,s:s,s:s,s:{s:s}}]", "type", "tool_use", "id", pl->id2, "name",
                            pl->tool, "input", "query", "mock");
    else
        content = text ? json_pack("[{s:s,s:s}]", "type", "text", "text", text) : NULL;
    free(text);
    r = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n}", "id", pl->id, "type", "message", "role",
                  "assistant", "model", pl->model, "content", content, "stop_reason", msg_stop(pl),
                  "stop_sequence");
    if (r && pl->usage)
        json_object_set_new(r, "usage", msg_usage(pl->prompt, pl->ntok));
    return r;
}

static void msg_stream(const struct plan *pl, struct pieces *p)
{
    json_t *msg, *delta;
    size_t i;
    int t;

    msg = json_pack("{s:s,s:s,s:s,s:s,s:[],s:n,s:n}", "id", pl->id, "type", "message", "role",
                    "assistant", "model", pl->model, "content", "stop_reason", "stop_sequence");
    if (msg && pl->usage)
        json_object_set_new(msg, "usage", msg_usage(pl->prompt, 1));
    piece_typed(p, "message_start", -1, json_pack("{s:o}", "message", msg), 0);
    piece_typed(p, "content_block_start", -1,
                json_pack("{s:i,s:o}", "index", 0, "content_block",
                          pl->tool ? json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id",
                                               pl->id2, "name", pl->tool, "input")
                                   : json_pack("{s:s,s:s}", "type", "text", "text", "")),
                0);
    piece_typed(p, "ping", -1, NULL, 0);
    for (i = 0; pl->tool && i < sizeof(tool_arg_pieces) / sizeof(tool_arg_pieces[0]); i++)
        piece_typed(p, "content_block_delta", -1,
                    json_pack("{s:i,s:{s:s,s:s}}", "index", 0, "delta", "type", "input_json_delta",
                              "partial_json", tool_arg_pieces[i]),
                    1);
    for (t = 0; !pl->tool && t < pl->ntok; t++)
        piece_typed(p, "content_block_delta", -1,
                    json_pack("{s:i,s:{s:s,s:s}}", "index", 0, "delta", "type", "text_delta",
                              "text", word(t)),
                    1);
    piece_typed(p, "content_block_stop", -1, json_pack("{s:i}", "index", 0), 0);
    delta = json_pack("{s:{s:s,s:n}}", "delta", "stop_reason", msg_stop(pl), "stop_sequence");
    if (delta && pl->usage)
        json_object_set_new(delta, "usage",
                            json_pack("{s:I}", "output_tokens", (json_int_t)pl->ntok));
    piece_typed(p, "message_delta", -1, delta, 0);
    piece_typed(p, "message_stop", -1, NULL, 0);
}

static void ep_messages(struct mock *m, struct evhttp_request *req, json_t *body, int ntok,
                        enum fault f)
{
    json_t *mt = json_object_get(body, "max_tokens");
    struct plan pl;

    if (!json_is_integer(mt) || json_integer_value(mt) < 0) {
        reply_error(req, 1, 400, "max_tokens: Field required");
        return;
    }
    plan_init(&pl, m, API_MESSAGES, body, ntok, json_integer_value(mt), f);
    plan_tool(&pl, msg_tool(body));
    pl.prompt = prompt_tokens(json_object_get(body, "messages"), json_object_get(body, "system"));
    if (json_is_true(json_object_get(body, "stream")))
        deliver_stream(m, req, &pl, msg_stream, f);
    else
        deliver_json(m, req, msg_reply(&pl), f);
}

/* ---- embeddings and models ---- */

/* Returns 8 floats derived from an FNV-1a hash of in (a string or an array of token ids). */
static json_t *emb_vector(json_t *in)
{
    uint64_t h = 1469598103934665603ULL;
    json_t *v = json_array(), *e;
    const unsigned char *s = (const unsigned char *)json_string_value(in);
    size_t i, len = json_string_length(in);
    json_int_t tok;

    for (i = 0; s && i < len; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    json_array_foreach(in, i, e)
    {
        tok = json_integer_value(e);
        h = (h ^ (uint64_t)tok) * 1099511628211ULL;
    }
    for (i = 0; v && i < 8; i++) /* multiples of 1/128 print exactly */
        json_array_append_new(v, json_real(((double)((h >> (8 * i)) & 0xff) - 128.0) / 128.0));
    return v;
}

static void ep_embeddings(struct mock *m, struct evhttp_request *req, json_t *body, enum fault f)
{
    json_t *in = json_object_get(body, "input"), *data = json_array(), *e;
    const char *model = json_string_value(json_object_get(body, "model"));
    int single = json_is_string(in) || json_is_integer(json_array_get(in, 0));
    size_t i, n = single ? 1 : json_array_size(in);
    json_int_t prompt = 0;
    json_t *r;

    for (i = 0; data && i < n; i++) {
        e = single ? in : json_array_get(in, i);
        if (!json_is_string(e) && !json_is_array(e)) {
            json_decref(data);
            reply_error(req, 0, 400, "input must be a string or an array of strings or tokens");
            return;
        }
        prompt += json_is_string(e) ? (json_int_t)(json_string_length(e) + 3) / 4
                                    : (json_int_t)json_array_size(e);
        json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", emb_vector(e)));
    }
    if (n == 0) {
        json_decref(data);
        reply_error(req, 0, 400, "input must not be empty");
        return;
    }
    r = json_pack("{s:s,s:o,s:s}", "object", "list", "data", data, "model",
                  model ? model : "text-embedding-3-small");
    if (r && f != F_NO_USAGE)
        json_object_set_new(
            r, "usage", json_pack("{s:I,s:I}", "prompt_tokens", prompt, "total_tokens", prompt));
    deliver_json(m, req, r, f);
}

static json_t *models_reply(void)
{
    json_t *data = json_array();
    size_t i;

    for (i = 0; data && i < sizeof(model_ids) / sizeof(model_ids[0]); i++)
        json_array_append_new(data,
                              json_pack("{s:s,s:s,s:i,s:s}", "id", model_ids[i], "object", "model",
                                        "created", 1700000000, "owned_by", "tokengate-mock"));
    return json_pack("{s:s,s:o}", "object", "list", "data", data);
}

/* ---- test hooks ---- */

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

/* Counts req in the stats and keeps a copy of it (names as sent) for /_mock/last. */
static void record(struct mock *m, struct evhttp_request *req, const char *path)
{
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct evkeyval *kv;
    json_t *n;

    m->requests++;
    n = json_object_get(m->by_path, path);
    if (!n && json_object_size(m->by_path) >= MOCK_MAX_PATHS)
        n = json_object_get(m->by_path, path = "(other)");
    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else
        json_object_set_new(m->by_path, path, json_integer(1));

    m->have_last = 1;
    snprintf(m->last_method, sizeof(m->last_method), "%s",
             method_name(evhttp_request_get_command(req)));
    snprintf(m->last_path, sizeof(m->last_path), "%s", path);
    evbuffer_drain(m->last_headers, evbuffer_get_length(m->last_headers));
    TAILQ_FOREACH(kv, hdrs, next)
    {
        evbuffer_add(m->last_headers, kv->key, strlen(kv->key) + 1);
        evbuffer_add(m->last_headers, kv->value, strlen(kv->value) + 1);
    }
    evbuffer_drain(m->last_body, evbuffer_get_length(m->last_body));
    evbuffer_add(m->last_body, evbuffer_pullup(in, -1), evbuffer_get_length(in));
}

/* Returns /_mock/last's JSON; repeated headers are joined with ", ". */
static json_t *last_json(struct mock *m)
{
    size_t hlen = evbuffer_get_length(m->last_headers);
    char *h = (char *)evbuffer_pullup(m->last_headers, -1), *end = h + hlen, *c;
    json_t *hdrs = json_object(), *old;

    while (hdrs && h && h < end) {
        char *name = h, *value = h + strlen(h) + 1;
        for (c = h; *c; c++) /* names were kept as sent */
            *c = *c >= 'A' && *c <= 'Z' ? (char)(*c + 32) : *c;
        old = json_object_get(hdrs, name);
        if (old)
            json_object_set_new(hdrs, name, json_sprintf("%s, %s", json_string_value(old), value));
        else
            json_object_set_new(hdrs, name, json_lossy(value, strlen(value)));
        h = value + strlen(value) + 1;
    }
    return json_pack("{s:s,s:s,s:o,s:o}", "method", m->last_method, "path", m->last_path, "headers",
                     hdrs, "body",
                     json_lossy((const char *)evbuffer_pullup(m->last_body, -1),
                                evbuffer_get_length(m->last_body)));
}

/* Serves /_mock/stats, /_mock/last and /_mock/reset (counters, last request, ids). */
static void hook(struct mock *m, struct evhttp_request *req, enum evhttp_cmd_type cmd,
                 const char *path)
{
    if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/stats") == 0) {
        reply_json(req, 200,
                   json_pack("{s:I,s:O}", "requests", m->requests, "by_path", m->by_path));
    } else if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/last") == 0) {
        if (m->have_last)
            reply_json(req, 200, last_json(m));
        else
            reply_error(req, 0, 404, "no request recorded");
    } else if (cmd == EVHTTP_REQ_POST && strcmp(path, "/_mock/reset") == 0) {
        m->requests = 0;
        m->seq = 0;
        m->have_last = 0;
        json_object_clear(m->by_path);
        reply_json(req, 200, json_pack("{s:b}", "ok", 1));
    } else {
        reply_error(req, 0, 404, "unknown mock hook");
    }
}

/* ---- dispatch ---- */

/* Entry point for every request: hooks, stats, forced errors and faults, then the endpoint. */
static void on_request(struct evhttp_request *req, void *arg)
{
    struct mock *m = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *fname = evhttp_find_header(ih, "x-mock-fault");
    const char *status = evhttp_find_header(ih, "x-mock-status");
    const char *tokens = evhttp_find_header(ih, "x-mock-tokens");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    long code = 0, ntok = m->ntokens;
    enum fault f = F_NONE;
    struct pieces p;
    json_t *body;
    size_t i;
    int anth, ep = -1;

    if (!path)
        path = "";
    if (strncmp(path, "/_mock/", 7) == 0) {
        hook(m, req, cmd, path);
        return;
    }
    record(m, req, path);
    anth = strncmp(path, "/v1/messages", 12) == 0;
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (routes[i].method == cmd && strcmp(routes[i].path, path) == 0)
            ep = (int)routes[i].ep;
    for (i = 0; fname && i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
        if (strcasecmp(fname, fault_names[i].name) == 0)
            f = fault_names[i].fault;
    if (ep < 0) {
        reply_error(req, anth, 404, "mock: no such endpoint");
    } else if (fname && f == F_NONE) {
        reply_error(req, anth, 400, "mock: unknown x-mock-fault");
    } else if (status && parse_long(status, 200, 599, &code) < 0) {
        reply_error(req, anth, 400, "mock: x-mock-status must be 200..599");
    } else if (tokens && parse_long(tokens, 0, MOCK_MAX_TOKENS, &ntok) < 0) {
        reply_error(req, anth, 400, "mock: bad x-mock-tokens");
    } else if (code || f == F_500 || f == F_429) {
        code = code ? code : f == F_500 ? 500 : 429;
        reply_error(req, anth, (int)code,
                    code == 429   ? "mock rate limit"
                    : code == 500 ? "mock internal error"
                                  : "mock forced status");
    } else if (f == F_HANG) {
        if (pieces_init(&p, 1) == 0)
            stream_start(m, req, &p, SM_HANG, NULL, -1);
    } else if (ep == EP_MODELS) {
        deliver_json(m, req, models_reply(), f);
    } else if (!(body = json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in),
                                   0, NULL)) ||
               !json_is_object(body)) {
        json_decref(body);
        reply_error(req, anth, 400, "mock: request body is not a JSON object");
    } else {
        if (ep == EP_CHAT)
            ep_chat(m, req, body, (int)ntok, f);
        else if (ep == EP_RESPONSES)
            ep_responses(m, req, body, (int)ntok, f);
        else if (ep == EP_EMBEDDINGS)
            ep_embeddings(m, req, body, f);
        else if (ep == EP_MESSAGES)
            ep_messages(m, req, body, (int)ntok, f);
        else
            deliver_json(m, req,
                         json_pack("{s:I}", "input_tokens",
                                   prompt_tokens(json_object_get(body, "messages"),
                                                 json_object_get(body, "system"))),
                         f);
        json_decref(body);
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

/* evhttp's per-connection bufferevent factory in TLS mode; evhttp sets the fd. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    struct bufferevent *bev;

    if (!ssl)
        return NULL;
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
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
    if (fclose(fp) != 0 || rename(tmp, path) != 0)
        return -1;
    return 0;
}

/*
 * Parses HOST:PORT (HOST numeric IPv4, [IPv6] or "localhost"; PORT 0..65535)
 * into ss. Returns 0, or -1 when it is not one.
 */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, int *len)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    const char *colon = strrchr(spec, ':');
    char host[INET6_ADDRSTRLEN + 2];
    size_t hlen = colon ? (size_t)(colon - spec) : 0;
    long port;

    if (!colon || hlen == 0 || hlen >= sizeof(host) || parse_long(colon + 1, 0, 65535, &port) < 0)
        return -1;
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*sin6);
        return evutil_inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ? 0 : -1;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof(*sin);
    return evutil_inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1",
                            &sin->sin_addr) == 1
               ? 0
               : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: tokengate-mock [--listen HOST:PORT] [--tokens N] [--delay-ms D]\n"
                    "                      [--tls-cert FILE --tls-key FILE] [--port-file FILE]\n"
                    "  --listen     numeric address to bind (default 127.0.0.1:9099; port 0: "
                    "any)\n"
                    "  --tokens     default reply length in tokens (default 16, max 100000)\n"
                    "  --delay-ms   pause before each streamed token (default 0)\n"
                    "  --tls-cert, --tls-key  serve HTTPS with these PEM files\n"
                    "  --port-file  write the bound port to FILE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},   {"tokens", required_argument, NULL, 't'},
        {"delay-ms", required_argument, NULL, 'd'}, {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},  {"port-file", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *listen_on = "127.0.0.1:9099", *cert = NULL, *key = NULL, *port_file = NULL;
    struct mock m = {.ntokens = 16};
    struct sockaddr_storage ss;
    int sslen = sizeof(ss), opt, port, rc = 1;
    socklen_t alen = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    struct evconnlistener *lev;
    struct evhttp *http = NULL;
    struct event *sigs[2] = {NULL, NULL};
    SSL_CTX *ctx = NULL;
    long v;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen_on = optarg;
            break;
        case 't':
            if (parse_long(optarg, 0, MOCK_MAX_TOKENS, &v) < 0)
                usage();
            m.ntokens = (int)v;
            break;
        case 'd':
            if (parse_long(optarg, 0, 3600000, &v) < 0)
                usage();
            m.delay_ms = (int)v;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || !cert != !key)
        usage();
    if (parse_listen(listen_on, &ss, &sslen) < 0)
        usage();

    signal(SIGPIPE, SIG_IGN);
    m.base = event_base_new();
    m.by_path = json_object();
    m.last_headers = evbuffer_new();
    m.last_body = evbuffer_new();
    m.scratch = evbuffer_new();
    if (!m.base || !m.by_path || !m.last_headers || !m.last_body || !m.scratch ||
        !(http = evhttp_new(m.base))) {
        fprintf(stderr, "tokengate-mock: out of memory\n");
        goto out;
    }
    evhttp_set_gencb(http, on_request, &m);
    evhttp_set_max_body_size(http, MOCK_MAX_BODY);
    evhttp_set_max_headers_size(http, 64 * 1024);
    evhttp_set_timeout(http, MOCK_TIMEOUT_S);
    if (cert) {
        if (!(ctx = tls_ctx_new(cert, key))) {
            fprintf(stderr, "tokengate-mock: cannot load %s / %s\n", cert, key);
            goto out;
        }
        evhttp_set_bevcb(http, tls_bev, ctx);
    }
    lev = evconnlistener_new_bind(m.base, NULL, NULL,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                  1024, (struct sockaddr *)&ss, sslen);
    if (!lev || !evhttp_bind_listener(http, lev)) {
        fprintf(stderr, "tokengate-mock: cannot listen on %s: %s\n", listen_on,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        if (lev)
            evconnlistener_free(lev);
        goto out;
    }
    getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss, &alen);
    if (ss.ss_family == AF_INET6) {
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        printf("listening on [%s]:%d\n", host, port);
    } else {
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        printf("listening on %s:%d\n", host, port);
    }
    fflush(stdout);
    if (port_file && write_port_file(port_file, port) < 0) {
        fprintf(stderr, "tokengate-mock: cannot write %s\n", port_file);
        goto out;
    }
    sigs[0] = evsignal_new(m.base, SIGTERM, on_signal, m.base);
    sigs[1] = evsignal_new(m.base, SIGINT, on_signal, m.base);
    if (!sigs[0] || !sigs[1] || evsignal_add(sigs[0], NULL) < 0 ||
        evsignal_add(sigs[1], NULL) < 0) {
        fprintf(stderr, "tokengate-mock: cannot watch signals\n");
        goto out;
    }
    event_base_dispatch(m.base);
    rc = 0;
out:
    if (http)
        evhttp_free(http); /* ends replies in progress through their close callbacks */
    for (opt = 0; opt < 2; opt++)
        if (sigs[opt])
            event_free(sigs[opt]);
    SSL_CTX_free(ctx);
    json_decref(m.by_path);
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
