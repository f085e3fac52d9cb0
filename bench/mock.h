/*
 * tokengate-mock's shared types and functions: mock.c (setup, dispatch, hooks),
 * mock-json.c (text, JSON in and out, errors, prompt counts), mock-stream.c
 * (pieces, /_mock/usage entries, replies in progress) and mock-api.c (the
 * three APIs' replies). See mock.c for what the mock does.
 */
#ifndef TOKENGATE_MOCK_H
#define TOKENGATE_MOCK_H

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

enum fault {
    F_NONE,
    F_500,
    F_429,
    F_RESET,
    F_HANG,
    F_SLOW,
    F_MALFORMED,
    F_NO_USAGE,
    F_RUNAWAY,
    F_GZIP,
    F_DEFLATE,
    F_ERROR_EVENT,
    F_COUNT
};
extern const char *const fault_names[F_COUNT]; /* x-mock-fault values, by fault */

enum api { API_CHAT, API_RESPONSES, API_MESSAGES };

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

/* How a reply in progress is sent (see mock-stream.c). */
enum smode {
    SM_PACED,      /* send pieces, pausing before paced ones */
    SM_SLOW,       /* drip MOCK_SLOW_BYTES every MOCK_SLOW_MS */
    SM_RESET,      /* send about half the paced steps, then reset the connection */
    SM_RESET_WAIT, /* waiting until what was sent is acknowledged */
    SM_HANG,       /* never reply; free all when the peer closes */
};

/* mock-json.c */
const char *word(int i);
char *mock_text(int ntok);
int parse_long(const char *s, long lo, long hi, long *out);
cJSON *json_parse(const char *text, size_t len);
cJSON *jget(const cJSON *obj, const char *key);
int jint(const cJSON *j, long long *out);
const cJSON *jarr(const cJSON *j);
cJSON *jadd(cJSON *parent, const char *key, cJSON *item);
void jstr(cJSON *obj, const char *key, const char *s);
cJSON *jtyped(const char *type);
int json_print(struct evbuffer *out, cJSON *j);
void reply_send(struct evhttp_request *req, int code, int made);
void reply_json(struct evhttp_request *req, int code, cJSON *body);
void reply_error(struct evhttp_request *req, int anth, int code, const char *msg);
long long prompt_tokens(const struct mock *m, const cJSON *body, tok_api api);

/* mock-stream.c */
void piece_add(struct pieces *p, const char *name, cJSON *data, const char *raw, int paced);
cJSON *sse_data(const char *type, int seq);
void piece_event(struct pieces *p, cJSON *e, int paced);
void usage_note(struct mock *m, const struct plan *pl, int has_usage);
void usage_complete(cJSON *e);
void stream_start(struct mock *m, struct evhttp_request *req, enum smode mode,
                  const struct plan *pl, step_fn *build, const char *raw);
void deliver_json(struct mock *m, struct evhttp_request *req, cJSON *body, enum fault f);
void deliver_stream(struct mock *m, struct evhttp_request *req, const struct plan *pl,
                    step_fn *build, enum fault f);

/* mock-api.c */
void plan_init(struct plan *pl, struct mock *m, enum api api, const cJSON *body, int ntok,
               const cJSON *limit, const char *tool, enum fault f);
const char *plan_tool_name(const cJSON *body, int anth);
void ep_chat(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok, enum fault f);
void ep_responses(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                  enum fault f);
void ep_messages(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                 enum fault f);

#endif
