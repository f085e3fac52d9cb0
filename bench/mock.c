/*
 * tokengate-mock: an OpenAI- and Anthropic-compatible mock model provider.
 *
 * One libevent loop serves everything (evhttp, keep-alive, optional TLS) and
 * nothing is logged per request. Replies are deterministic: the text is words
 * taken in turn from mock_words, prompt token counts follow prompt_tokens().
 * x-mock-usage-skew: N adds N to every prompt token count (a provider that
 * counts differently from the gate).
 * Request headers steer a reply: x-mock-tokens (reply length), x-mock-fault
 * (see fault_names), x-mock-status (forced error status) and those that
 * steer_parse() reads; usage() lists them all. /_mock/stats,
 * /_mock/last, /_mock/usage and /_mock/reset are hooks for tests. Linux only (see
 * stream_drop and SIOCOUTQ).
 *
 * Bodies are parsed, and replies built and printed, by cJSON. The mock takes
 * what cJSON takes (see json_parse()): the gate in front of it validates
 * bodies itself.
 */
#include "mock.h"

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
 * Serves /_mock/stats, /_mock/last, /_mock/usage, /_mock/reset (counters,
 * last request, usage by x-request-id: {"usage":{ID:{input,output,complete}},
 * "dropped":N}, and ids; and the model rules) and /_mock/models (see
 * mock-models.c).
 */
static void hook(struct mock *m, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    cJSON *r = cJSON_CreateObject();

    if (cmd == EVHTTP_REQ_GET && strcmp(path, "/_mock/stats") == 0) {
        cJSON_AddNumberToObject(r, "requests", m->requests);
        cJSON_AddNumberToObject(r, "active", (double)m->active);
        cJSON_AddNumberToObject(r, "peak_active", (double)m->peak);
        jadd(r, "by_path", cJSON_Duplicate(m->by_path, 1));
        jadd(r, "by_model", cJSON_Duplicate(m->by_model, 1));
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
        m->peak = m->active;
        m->seq = 0;
        m->last_method = NULL;
        while (m->by_path->child)
            cJSON_Delete(cJSON_DetachItemViaPointer(m->by_path, m->by_path->child));
        while (m->usage->child)
            cJSON_Delete(cJSON_DetachItemViaPointer(m->usage, m->usage->child));
        m->usage_n = m->usage_dropped = 0;
        m->usage_gen++;
        models_reset(m);
        cJSON_AddTrueToObject(r, "ok");
    } else if ((cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_POST) &&
               strcmp(path, "/_mock/models") == 0) {
        cJSON_Delete(r);
        models_hook(m, req, cmd == EVHTTP_REQ_POST);
        return;
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
 * f. body is the request's, parsed (NULL: none, or not a JSON object).
 */
static void serve(struct mock *m, struct evhttp_request *req, enum endpoint ep, int anth,
                  enum fault f, int ntok, const cJSON *body)
{
    if (f == F_HANG) {
        stream_start(m, req, SM_HANG, NULL, NULL, NULL);
        return;
    }
    if (ep == EP_MODELS) {
        ep_models(m, req, f);
        return;
    }
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
        ep_count_tokens(m, req, body, f);
    }
}

/*
 * Answers a request of endpoint ep (-1: none) after its delay, if any: the
 * mock's own headers, then the endpoint. Frees body (the parsed request body,
 * or NULL).
 */
static void respond(struct mock *m, struct evhttp_request *req, int ep, int anth, cJSON *body)
{
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    const char *fname = evhttp_find_header(ih, "x-mock-fault");
    const char *status = evhttp_find_header(ih, "x-mock-status");
    const char *tokens = evhttp_find_header(ih, "x-mock-tokens");
    const char *retry = evhttp_find_header(ih, "x-mock-retry-after");
    const char *bad;
    long code = 0, ntok = m->ntokens, secs = 0;
    enum fault f = fault_lookup(fname);

    if (ep < 0) {
        reply_error(req, anth, 404, "mock: no such endpoint");
    } else if (fname && f == F_NONE) {
        reply_error(req, anth, 400, "mock: unknown x-mock-fault");
    } else if (status && parse_long(status, 200, 599, &code) < 0) {
        reply_error(req, anth, 400, "mock: x-mock-status must be 200..599");
    } else if (retry && parse_long(retry, 0, 86400, &secs) < 0) {
        reply_error(req, anth, 400, "mock: x-mock-retry-after must be 0..86400");
    } else if (tokens && parse_long(tokens, 0, f == F_RUNAWAY ? MOCK_RUNAWAY_MAX : MOCK_MAX_TOKENS,
                                    &ntok) < 0) {
        reply_error(req, anth, 400, "mock: bad x-mock-tokens");
    } else if ((bad = steer_parse(ih, &m->st))) {
        reply_error(req, anth, 400, bad);
    } else if (code || f == F_500 || f == F_429) {
        code = code ? code : f == F_500 ? 500 : 429;
        if (retry) /* reply_error() adds its own to a 429 only when none is there */
            evhttp_add_header(evhttp_request_get_output_headers(req), "retry-after", retry);
        reply_error(req, anth, (int)code,
                    code == 429   ? "mock rate limit"
                    : code == 529 ? "Overloaded"
                                  : "mock error");
    } else {
        m->rid = evhttp_find_header(ih, "x-request-id");
        serve(m, req, (enum endpoint)ep, anth, f, (int)ntok, body);
        m->rid = NULL;
        m->cur_usage = NULL;
    }
    memset(&m->st, 0, sizeof(m->st)); /* embeddings and count_tokens read its skew */
    cJSON_Delete(body);
}

/*
 * Entry point for every request: hooks, stats, the model's rule, a delay
 * (x-mock-delay-ms), then respond().
 */
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
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)), *delay;
    size_t i, len;
    long ms = 0;
    int anth, ep = -1;
    cJSON *body = NULL;

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
    len = evbuffer_get_length(m->last_body); /* the body and a NUL (see record()) */
    if (ep >= 0 && ep != EP_MODELS && len)
        body = json_parse((const char *)evbuffer_pullup(m->last_body, -1), len - 1);
    models_apply(m, req, body);
    delay = evhttp_find_header(ih, "x-mock-delay-ms");
    if (delay && parse_long(delay, 0, 3600000, &ms) < 0) {
        reply_error(req, anth, 400, "mock: x-mock-delay-ms must be 0..3600000");
        cJSON_Delete(body);
    } else if (ms > 0 && delay_start(m, req, ms, ep, anth, body, respond) < 0) {
        reply_error(req, anth, 503, "mock: too many requests wait out a delay");
        cJSON_Delete(body);
    } else if (ms == 0) {
        respond(m, req, ep, anth, body);
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

/* Prints the usage, to stdout for --help (rc 0), else to stderr, and exits with rc. */
static void usage(int rc)
{
    fprintf(
        rc ? stderr : stdout,
        "usage: tokengate-mock [--listen HOST:PORT] [--tokens N] [--delay-ms D]\n"
        "                      [--tls-cert FILE --tls-key FILE] [--port-file FILE]\n"
        "  --listen     IPv4 address (or localhost) and port; default 127.0.0.1:9099, 0: any\n"
        "  --tokens     default reply length in tokens (default 16, max 100000)\n"
        "  --delay-ms   pause before each streamed token (default 0)\n"
        "  --tls-cert, --tls-key  serve HTTPS with these PEM files\n"
        "  --port-file  also write the bound port to FILE\n"
        "request headers that steer a reply:\n"
        "  x-mock-tokens: N        reply length in tokens (max 100000; 10000000 with runaway)\n"
        "  x-mock-status: CODE     reply with this error status\n"
        "  x-mock-fault: 500|429|reset|hang|slow|malformed|no-usage, or\n"
        "    runaway      ignore max_tokens/max_completion_tokens/max_output_tokens: stream\n"
        "                 x-mock-tokens tokens or until the client goes; non-stream: all of it\n"
        "    gzip|deflate the body (the whole event stream) compressed, Content-Encoding set,\n"
        "                 whatever accept-encoding says\n"
        "    error-event  a stream fails after 3 deltas with the API's own error event\n"
        "                 (chat data: {\"error\"}, response.failed, event: error); non-stream: "
        "500\n"
        "  x-mock-cut-after: N     reset (RST) a stream after N content deltas, before its end\n"
        "  x-mock-usage: negative|huge|fraction|string  the final usage reports input and\n"
        "                          output as -5, 1e13, 10.5 or \"10\"\n"
        "  x-mock-usage-skew: N    add N to every prompt token count\n"
        "  x-mock-output-skew: N   add N to the output tokens billed and reported\n"
        "  x-mock-cached: N        N prompt tokens were cache reads (at most the prompt)\n"
        "  x-mock-reasoning: N     N more output tokens, reported as reasoning\n"
        "  x-mock-split: 1         every third word goes out in two deltas\n"
        "  x-mock-stall-ms: N      the body (stream or not) waits N ms after the head\n"
        "  x-mock-delay-ms: N      nothing is sent for N ms, not even the head\n"
        "  x-mock-retry-after: N   an error reply (x-mock-status, 429 fault) has Retry-After: N\n"
        "  x-mock-cache-write: N   N prompt tokens were written to a cache (Anthropic:\n"
        "                          cache_creation_input_tokens, left out of input_tokens)\n"
        "  x-mock-cache-write-1h: N  N of those writes were for an hour (Anthropic's\n"
        "                          cache_creation: ephemeral_1h_input_tokens, the rest\n"
        "                          ephemeral_5m_input_tokens); with it, a stream's\n"
        "                          message_delta repeats the input counts\n"
        "  x-mock-tools: N         with tools given, N parallel calls (1..16) of the first N\n"
        "                          tools (cycling), each with its own id and ~80 bytes of\n"
        "                          arguments streamed in ~3-byte pieces; one call when the\n"
        "                          request turns parallel calls off\n"
        "  x-mock-interleave: 1    chat streams: the calls' pieces go round-robin\n"
        "  x-mock-tool-text: N     N words of text before the calls\n"
        "stop sequences (chat stop, Anthropic stop_sequences): the text ends before the word\n"
        "  where the first one found starts (Anthropic: stop_reason stop_sequence)\n"
        "prompt tokens: the gate's tokenizer, but each image (image_url part, image block)\n"
        "  costs 85 tokens, whatever its size; a bad image URL or source gets 400\n"
        "hooks: GET /_mock/stats (requests, by_path, by_model, active and peak_active: replies in\n"
        "  progress now and most at once), /_mock/last, /_mock/usage (by x-request-id: input, output,\n"
        "  complete, usage, absurd, cached, cache_write, cache_write_1h, reasoning, sent, bytes,\n"
        "  closed);\n"
        "  POST /_mock/reset (also clears the model rules); GET and POST /_mock/models:\n"
        "  {\"model\": NAME, \"status\": S, \"retry_after\": N, \"fault\": F, \"delay_ms\": N,\n"
        "  \"times\": N} (or an array; at most 64 models; times -1 or absent: always): requests\n"
        "  with that body \"model\" act as if those x-mock- headers came with them\n");
    exit(rc);
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
    delay_free_all(m); /* before the evhttp, which frees their requests */
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
        {"listen", required_argument, NULL, 'l'},   {"tokens", required_argument, NULL, 't'},
        {"delay-ms", required_argument, NULL, 'd'}, {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},  {"port-file", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
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
            usage(2);
        if (opt == 'h')
            usage(0);
        listen_on = opt == 'l' ? optarg : listen_on;
        cert = opt == 'c' ? optarg : cert;
        key = opt == 'k' ? optarg : key;
        port_file = opt == 'p' ? optarg : port_file;
    }
    if (optind != argc || !cert != !key || parse_listen(listen_on, &sin) < 0)
        usage(2);
    m.ntokens = (int)tokens;
    m.delay_ms = (int)delay;

    signal(SIGPIPE, SIG_IGN);
    m.base = base_new();
    m.by_path = cJSON_CreateObject();
    m.by_model = cJSON_CreateObject();
    m.rules = cJSON_CreateObject();
    TAILQ_INIT(&m.delayed);
    m.usage = cJSON_CreateObject();
    m.last_path = evbuffer_new();
    m.last_headers = evbuffer_new();
    m.last_body = evbuffer_new();
    m.scratch = evbuffer_new();
    m.scratch2 = evbuffer_new();
    if (cert && !(ctx = tls_ctx_new(cert, key)))
        fprintf(stderr, "tokengate-mock: cannot load %s and %s\n", cert, key);
    else if (!m.base || !m.by_path || !m.by_model || !m.rules || !m.usage || !m.last_path ||
             !m.last_headers || !m.last_body || !m.scratch || !m.scratch2)
        fprintf(stderr, "tokengate-mock: out of memory\n");
    else
        rc = mock_run(&m, &sin, ctx, port_file);
    SSL_CTX_free(ctx);
    cJSON_Delete(m.by_path);
    cJSON_Delete(m.by_model);
    cJSON_Delete(m.rules);
    cJSON_Delete(m.usage);
    if (m.last_path)
        evbuffer_free(m.last_path);
    if (m.last_headers)
        evbuffer_free(m.last_headers);
    if (m.last_body)
        evbuffer_free(m.last_body);
    if (m.scratch)
        evbuffer_free(m.scratch);
    if (m.scratch2)
        evbuffer_free(m.scratch2);
    if (m.base)
        event_base_free(m.base);
    return rc;
}
