/*
 * tokengate-mock's shared types and functions: mock.c (the server: setup,
 * dispatch, hooks), mock-openai.c and mock-anthropic.c (the two API
 * emulators), mock-api.c (the plan their replies are built from),
 * mock-fault.c (the faults and steering headers, delivery under a fault,
 * compression), mock-stream.c (pieces, /_mock/usage entries, replies in
 * progress) and mock-json.c (text, JSON in and out, errors, prompt counts).
 * See mock.c for what the mock does.
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
#include <zlib.h>

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
#define MOCK_WORD_MAX 8             /* no word of the reply text (mock-json.c) is longer */
#define MOCK_TOOL_ARGS "{\"query\":\"mock\"}"
#define MOCK_TOOL_PIECES 3 /* a streamed tool call's arguments go in this many pieces */
#define MOCK_RUNAWAY_MAX 10000000 /* x-mock-tokens under the runaway fault */
#define MOCK_MAX_N 128            /* chat: most choices (n) a request may ask for */
#define MOCK_ERROR_AFTER 3        /* error-event: content deltas before the error */
#define MOCK_RESP_MIN_OUTPUT 16   /* responses: least max_output_tokens, as OpenAI's */
#define MOCK_CAP_MAX 2147483647   /* caps above this are refused, as the real APIs' int32 */
#define MOCK_MAX_CALLS 16         /* x-mock-tools: most parallel tool calls in one answer */
#define MOCK_CALL_ARGS 128        /* room for one parallel call's arguments (mock-calls.c) */
#define MOCK_CALL_PIECE 3         /* a parallel call's arguments stream in pieces of ~3 bytes */
#define MOCK_IMAGE_TOKENS 85      /* prompt tokens the mock bills per image */
#define MOCK_MAX_MODELS 64        /* /_mock/models: most models with a rule at once */
#define MOCK_MAX_DELAYED 4096     /* requests held by a delay at once; later ones go undelayed */
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

/* x-mock-usage: how the final usage report lies (input and output alike). */
enum absurd { AB_NONE, AB_NEGATIVE, AB_HUGE, AB_FRACTION, AB_STRING, AB_COUNT };
extern const char *const absurd_names[AB_COUNT]; /* x-mock-usage values, by absurd */

/* What the request headers ask of one reply, besides its fault and length. */
struct steer {
    long skew;          /* x-mock-usage-skew: added to every prompt count */
    long cut_after;     /* x-mock-cut-after: reset a stream after N content deltas; -1 never */
    enum absurd absurd; /* x-mock-usage */
    long cached;        /* x-mock-cached: prompt tokens read from a cache */
    long reasoning;     /* x-mock-reasoning: output tokens spent reasoning */
    int split;          /* x-mock-split: every third word goes out in two deltas */
    long stall_ms;      /* x-mock-stall-ms: the body waits this long after the head */
    long oskew;         /* x-mock-output-skew: added to the output tokens billed */
    long cache_write;   /* x-mock-cache-write: prompt tokens written to a cache */
    long cache_write_1h; /* x-mock-cache-write-1h: of those, written for an hour; -1: no header */
    long tools;         /* x-mock-tools: parallel tool calls; 0: the single call of old */
    long interleave;    /* x-mock-interleave: chat streams the calls' pieces round-robin */
    long tool_text;     /* x-mock-tool-text: words of text before the calls */
};

TAILQ_HEAD(delayed_list, delayed);

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
    struct evbuffer *scratch2;     /* empty between uses */
    struct steer st;               /* what the request being served asks */
    const char *rid;               /* x-request-id of the request being served, or NULL */
    cJSON *usage;                  /* x-request-id -> usage of a reply: see usage_note() */
    long usage_n, usage_dropped;   /* entries in usage; entries past MOCK_MAX_USAGE */
    unsigned usage_gen;            /* bumped by /_mock/reset, which frees the entries */
    cJSON *cur_usage;              /* the entry of the request being served, or NULL */
    long long cur_text;            /* its reply's tokens of text (see usage_note()) */
    long active, peak;             /* replies in progress (streams, stalls, hangs); most at once */
    cJSON *by_model;               /* body "model" -> count, at most MOCK_MAX_PATHS keys */
    cJSON *rules;                  /* /_mock/models: model -> rule, at most MOCK_MAX_MODELS */
    struct delayed_list delayed;   /* requests waiting out a delay (mock-models.c) */
    long ndelayed;
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
    long long prompt;    /* P, see prompt_tokens() */
    int ntok;            /* C, completion tokens */
    int cut;             /* C was limited by the request's max tokens */
    const char *tool;    /* reply with a call to this tool instead of text */
    int steps;           /* paced steps (tokens or tool call pieces) of a stream */
    int usage;           /* 0 under the no-usage fault */
    int stream_usage;    /* chat: a usage chunk was asked for and usage is on */
    int malformed;       /* slip bad_events[api] into the stream */
    int n;               /* chat: choices, each of ntok tokens; 1 elsewhere */
    long long cached;    /* of prompt, read from a cache */
    long long reasoning; /* output tokens spent reasoning, counted in the output */
    enum absurd absurd;  /* the final usage reports this instead of the counts */
    int split;           /* every third word goes out in two deltas */
    int error_event;     /* a stream ends with an error event after its steps */
    int cut_after;       /* a stream is reset after this many content deltas; -1: never */
    enum fault enc;      /* F_GZIP or F_DEFLATE: the body is compressed; else F_NONE */
    long long oskew;     /* added to the output billed (a provider counting its own way) */
    long long cache_write; /* of prompt, written to a cache (Anthropic reports it) */
    long long cache_write_1h; /* of cache_write, written for an hour (cache_creation) */
    int delta_input;          /* Anthropic streams: message_delta repeats the input counts */
    int ncalls;            /* parallel tool calls (x-mock-tools); 0: pl->tool's single call */
    int interleave;        /* chat streams: the calls' pieces go round-robin */
    int text_tok;          /* tokens of text before the calls (in ntok) */
    const char *calls[MOCK_MAX_CALLS]; /* the tools the calls call */
    const char *stop_seq;  /* the stop sequence the text stops before, or NULL */
    unsigned char npieces[MOCK_MAX_CALLS]; /* argument pieces of each call, streamed */
};

/* Returns the output tokens a plan bills: its text over all choices, its reasoning and oskew. */
long long plan_output(const struct plan *pl);

#define MOCK_PIECES (2 * MOCK_MAX_N + 4) /* pieces one step may make */

/* What a piece is, for pacing and counting (struct pieces.paced). */
#define PIECE_DELTA 1 /* content: waits --delay-ms, counts for x-mock-cut-after */
#define PIECE_TOKEN 2 /* it starts a token of text: counts in /_mock/usage "sent" */

/*
 * The pieces (SSE events, or one raw body) of one step of a reply, stored
 * back to back in buf, each with its PIECE_ flags in paced. Pieces past
 * MOCK_PIECES are dropped.
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
void reply_error_param(struct evhttp_request *req, int anth, int code, const char *msg,
                       const char *param);
long long prompt_tokens(const struct mock *m, const cJSON *body, tok_api api);

/* mock-fault.c */
enum fault fault_lookup(const char *name);
const char *steer_parse(struct evkeyvalq *ih, struct steer *st);
int z_start(z_stream *z, enum fault enc);
int z_put(z_stream *z, const void *in, size_t len, int flush, struct evbuffer *out);
int z_body(struct evbuffer *buf, enum fault enc);
void deliver_json(struct mock *m, struct evhttp_request *req, cJSON *body, enum fault f);
void deliver_stream(struct mock *m, struct evhttp_request *req, const struct plan *pl,
                    step_fn *build, enum fault f);

/* mock-stream.c */
void piece_add(struct pieces *p, const char *name, cJSON *data, const char *raw, int paced);
cJSON *sse_data(const char *type, int seq);
void piece_event(struct pieces *p, cJSON *e, int paced);
void usage_note(struct mock *m, const struct plan *pl, int has_usage);
void usage_complete(cJSON *e, long long sent, long long bytes);
void stream_start(struct mock *m, struct evhttp_request *req, enum smode mode,
                  const struct plan *pl, step_fn *build, const char *raw);

/* mock-calls.c */
size_t call_args(const struct plan *pl, int i, char *buf);
int call_piece(const struct plan *pl, int i, int j, char *buf);
int call_at(const struct plan *pl, int s, int *i, int *pos);
void call_id(const struct plan *pl, int i, char *buf, size_t size);
void plan_calls(struct plan *pl, const struct mock *m, const cJSON *body, int anth);
size_t plan_strs_size(const struct plan *pl);
void plan_strs_copy(struct plan *dst, const struct plan *src, char *buf);

/* mock-models.c */
typedef void delay_fn(struct mock *m, struct evhttp_request *req, int ep, int anth, cJSON *body);
void models_hook(struct mock *m, struct evhttp_request *req, int post);
void models_apply(struct mock *m, struct evhttp_request *req, const cJSON *body);
void models_reset(struct mock *m);
int delay_start(struct mock *m, struct evhttp_request *req, long ms, int ep, int anth,
                cJSON *body, delay_fn *fire);
void delay_free_all(struct mock *m);

/* mock-api.c */
extern const char *const tool_args[MOCK_TOOL_PIECES]; /* pieces of MOCK_TOOL_ARGS */
void plan_init(struct plan *pl, struct mock *m, enum api api, const cJSON *body, int ntok,
               const cJSON *limit, const char *tool, enum fault f);
void plan_prompt(struct plan *pl, const struct mock *m, const cJSON *body, tok_api api);
int cap_check(struct evhttp_request *req, const cJSON *body, const char *key, long long lo,
              int anth);
int plan_failed(struct evhttp_request *req, const cJSON *body, enum fault f, int anth);
int images_check(struct evhttp_request *req, const cJSON *body, int anth);
void plan_stop(struct plan *pl, const cJSON *body, int anth, enum fault f);
int token_parts(const struct plan *pl, int i, char *a, char *b);
void usage_val(cJSON *u, const char *key, const struct plan *pl, long long v);
const char *plan_tool_name(const cJSON *body, int anth);

/* mock-openai.c */
void ep_chat(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok, enum fault f);
void ep_responses(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                  enum fault f);
void ep_embeddings(struct mock *m, struct evhttp_request *req, const cJSON *body,
                   enum fault f);
void ep_models(struct mock *m, struct evhttp_request *req, enum fault f);

/* mock-anthropic.c */
void ep_messages(struct mock *m, struct evhttp_request *req, const cJSON *body, int ntok,
                 enum fault f);
void ep_count_tokens(struct mock *m, struct evhttp_request *req, const cJSON *body,
                     enum fault f);

/* mock-classify.c: when body is a classification request (its system prompt starts with
 * "Classify the complexity"), makes pl a one-token reply, counts it in /_mock/stats as
 * "(classify)" and returns its word (static); else NULL. */
const char *classify_reply(struct mock *m, struct plan *pl, const cJSON *body);

#endif
