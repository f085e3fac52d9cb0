/*
 * tokengate-mock: SSE pieces, /_mock/usage entries, and replies in progress (the
 * modes the faults choose in mock-fault.c: paced, slow, reset, hang).
 */
#include "mock.h"

/* The invalid event the malformed fault slips into a stream after its first token. */
static const char *const bad_events[] = {
    [API_CHAT] = "data: {\"id\":\"chatcmpl-mock\",\"choices\":[{\"delta\":\n\n",
    [API_RESPONSES] = "event: response.output_text.delta\n"
                      "data: {\"type\":\"response.output_text.delta\",\"delta\":\n\n",
    [API_MESSAGES] = "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":\n\n",
};

/* A reply in progress, owned by its event and the connection's close callback. */
struct stream {
    struct mock *m;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *ev; /* SM_HANG: the peer closing; otherwise a timer */
    enum smode mode;
    struct plan pl;     /* its model and tools point into strs */
    char *strs;         /* copies of the plan's model and tools */
    step_fn *build;     /* NULL: the reply is what p holds (or nothing) */
    int step;           /* next step to build */
    struct pieces p;    /* the pieces built and not sent yet */
    size_t next;        /* next piece to send */
    int sent_paced;     /* content deltas (PIECE_DELTA) sent so far */
    long long sent_tok; /* tokens of text (PIECE_TOKEN) sent so far */
    long long wire;     /* body bytes handed to evhttp: compressed, chunk framing included */
    z_stream *z;        /* compresses the body when pl.enc is set, else NULL */
    long long text;     /* tokens of text the whole reply holds */
    int waited;         /* the pause before piece `next` is over */
    int tries;          /* SM_RESET_WAIT: checks so far */
    cJSON *usage;       /* its /_mock/usage entry, marked complete at the end; or NULL */
    unsigned gen;       /* m->usage_gen when usage was taken */
};

/* ---- pieces ---- */

/*
 * Appends one piece: "event: NAME\n" when name is set, then "data: JSON\n\n"
 * from data (freed here), or the raw text when data is NULL. A NULL data
 * with no raw text (out of memory) adds nothing.
 */
void piece_add(struct pieces *p, const char *name, cJSON *data, const char *raw, int paced)
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
    if ((paced & PIECE_DELTA) && bad) {
        p->bad = NULL;
        piece_add(p, NULL, NULL, bad, 0);
    }
}

/* Returns the data of an event: {"type":type[,"sequence_number":seq]}, no number when seq < 0. */
cJSON *sse_data(const char *type, int seq)
{
    cJSON *e = jtyped(type);

    if (seq >= 0)
        cJSON_AddNumberToObject(e, "sequence_number", seq);
    return e;
}

/* Appends the event with data e (freed here), named after its type. */
void piece_event(struct pieces *p, cJSON *e, int paced)
{
    piece_add(p, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type")), e, NULL, paced);
}

/* ---- what replies report: /_mock/usage ---- */

/*
 * Notes what the provider bills for the reply of the request being served
 * (pl->prompt, plan_output(pl)) under its x-request-id, as not sent
 * completely yet; the entry becomes m->cur_usage until the request is
 * served. Nothing is noted without an id. reported says whether the reply
 * carries a usage object at all; a reply that does not complete may still
 * have sent part of it (Anthropic's message_start holds input_tokens), or
 * none (a chat stream sends it last). The entry:
 * {input, output, complete, usage: reported, absurd: x-mock-usage (when the
 * report lies), cached, cache_write, cache_write_1h, reasoning, sent: tokens of text handed to the
 * connection, bytes: body bytes written to the socket (compressed when it is,
 * chunk framing included; all of them once complete),
 * closed: the connection went (peer gone, timeout) before the reply ended}.
 */
void usage_note(struct mock *m, const struct plan *pl, int reported)
{
    cJSON *e;

    m->cur_usage = NULL;
    m->cur_text = pl->tool ? pl->text_tok : (long long)pl->ntok * pl->n;
    if (!m->rid)
        return;
    if (m->usage_n >= MOCK_MAX_USAGE) {
        m->usage_dropped++;
        return;
    }
    e = cJSON_CreateObject();
    if (!e)
        return;
    cJSON_AddNumberToObject(e, "input", (double)pl->prompt);
    cJSON_AddNumberToObject(e, "output", (double)plan_output(pl));
    cJSON_AddFalseToObject(e, "complete");
    cJSON_AddBoolToObject(e, "usage", reported);
    if (reported && pl->absurd != AB_NONE)
        cJSON_AddStringToObject(e, "absurd", absurd_names[pl->absurd]);
    cJSON_AddNumberToObject(e, "cached", (double)pl->cached);
    cJSON_AddNumberToObject(e, "cache_write", (double)pl->cache_write);
    cJSON_AddNumberToObject(e, "cache_write_1h", (double)pl->cache_write_1h);
    cJSON_AddNumberToObject(e, "reasoning", (double)pl->reasoning);
    cJSON_AddNumberToObject(e, "sent", 0);
    cJSON_AddNumberToObject(e, "bytes", 0);
    cJSON_AddFalseToObject(e, "closed");
    cJSON_AddItemToObject(m->usage, m->rid, e);
    m->usage_n++;
    m->cur_usage = e;
}

/* Sets an entry's count of text tokens handed to the connection and bytes written so far. */
static void usage_sent(cJSON *e, long long sent, long long bytes)
{
    cJSON_SetNumberValue(jget(e, "sent"), (double)sent);
    cJSON_SetNumberValue(jget(e, "bytes"), (double)bytes);
}

/* Marks an entry's reply, usage and all, handed to the connection in full: sent, bytes. */
void usage_complete(cJSON *e, long long sent, long long bytes)
{
    cJSON_ReplaceItemInObjectCaseSensitive(e, "complete", cJSON_CreateTrue());
    usage_sent(e, sent, bytes);
}

/* ---- replies in progress ---- */

static void stream_free(struct stream *s)
{
    if (s->m != NULL)
        s->m->active--;
    if (s->ev)
        event_free(s->ev);
    if (s->p.buf)
        evbuffer_free(s->p.buf);
    if (s->z) {
        deflateEnd(s->z);
        free(s->z);
    }
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

/* Returns the bytes evhttp holds for the peer, not yet written to the socket. */
static size_t stream_unsent(struct stream *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);

    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Notes in the usage entry the text tokens sent and the body bytes written to the socket so far. */
static void stream_note(struct stream *s)
{
    long long unsent = (long long)stream_unsent(s);

    if (s->usage && s->gen == s->m->usage_gen)
        usage_sent(s->usage, s->sent_tok, s->wire > unsent ? s->wire - unsent : 0);
}

/*
 * Sends the next len bytes of the pieces as one body chunk (compressed and
 * flushed, when the body is), and notes what has gone in its usage entry.
 */
static void stream_send(struct stream *s, size_t len)
{
    struct evbuffer *chunk = s->m->scratch, *zout = s->m->scratch2;
    size_t before;

    if (len == 0) /* an empty chunk would end a chunked body */
        return;
    evbuffer_remove_buffer(s->p.buf, chunk, len);
    if (s->z) {
        len = evbuffer_get_length(chunk);
        z_put(s->z, evbuffer_pullup(chunk, -1), len, Z_SYNC_FLUSH, zout);
        evbuffer_drain(chunk, len);
        evbuffer_add_buffer(chunk, zout);
    }
    before = stream_unsent(s);
    if (evbuffer_get_length(chunk) > 0)
        evhttp_send_reply_chunk(s->req, chunk);
    s->wire += (long long)(stream_unsent(s) - before);
    evbuffer_drain(chunk, evbuffer_get_length(chunk));
    stream_note(s);
}

/* Ends the reply normally and frees s. */
static void stream_finish(struct stream *s)
{
    struct evhttp_request *req = s->req;
    struct evbuffer *chunk = s->m->scratch;

    size_t before = stream_unsent(s);

    if (s->z && z_put(s->z, "", 0, Z_FINISH, chunk) == 0 && evbuffer_get_length(chunk) > 0) {
        evhttp_send_reply_chunk(s->req, chunk);
        s->wire += (long long)(stream_unsent(s) - before);
    }
    evbuffer_drain(chunk, evbuffer_get_length(chunk));
    /* cleared first: ending the reply may free the connection, which calls closecb */
    evhttp_connection_set_closecb(s->evcon, NULL, NULL);
    if (s->usage && s->gen == s->m->usage_gen) /* the slow mode does not count tokens */
        usage_complete(s->usage, s->text, s->wire);
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
        if ((s->mode == SM_RESET && paced && s->sent_paced * 2 >= s->pl.steps) ||
            (s->mode == SM_PACED && s->pl.cut_after >= 0 && s->sent_paced >= s->pl.cut_after &&
             (paced || s->step > s->pl.steps + 1))) { /* x-mock-cut-after: before the end too */
            s->mode = SM_RESET_WAIT;
            stream_arm(s, 0);
            return;
        }
        if (stream_unsent(s) >= MOCK_UNSENT_MAX) { /* look again when some has gone */
            stream_note(s);
            stream_arm(s, 10);
            return;
        }
        if ((paced & PIECE_DELTA) && s->m->delay_ms > 0 && !s->waited) {
            s->waited = 1;
            stream_arm(s, s->m->delay_ms);
            return;
        }
        s->waited = 0;
        s->sent_paced += paced & PIECE_DELTA;
        s->sent_tok += (paced & PIECE_TOKEN) != 0;
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

    if (s->usage && s->gen == s->m->usage_gen)
        cJSON_ReplaceItemInObjectCaseSensitive(s->usage, "closed", cJSON_CreateTrue());
    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_request_free(s->req);
    stream_free(s);
}

/*
 * Replies to req in the given mode, from then on out of timers: with build,
 * a 200 text/event-stream of the steps of pl; with raw, a 200 JSON body; with
 * neither, no reply at all (reset, hang).
 */
void stream_start(struct mock *m, struct evhttp_request *req, enum smode mode,
                  const struct plan *pl, step_fn *build, const char *raw)
{
    struct stream *s = calloc(1, sizeof(*s));
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    size_t slen = pl ? plan_strs_size(pl) : 0;
    char num[24];
    int one = 1;

    /* evhttp does not read, so does not see the peer go, until a reply starts */
    if (s)
        s->ev = mode == SM_HANG ? event_new(m->base, fd, EV_CLOSED, stream_tick, s)
                                : evtimer_new(m->base, stream_tick, s);
    if (s && s->ev)
        s->p.buf = evbuffer_new();
    if (s && s->p.buf && pl) /* the body they point into goes when the request is served */
        s->strs = malloc(slen);
    if (s && s->strs && pl->enc != F_NONE &&
        (!(s->z = malloc(sizeof(*s->z))) || z_start(s->z, pl->enc) < 0)) {
        free(s->z);
        s->z = NULL;
        free(s->strs);
        s->strs = NULL;
    }
    if (!s || !s->ev || !s->p.buf || (pl && !s->strs)) {
        if (s)
            stream_free(s);
        reply_error(req, pl && pl->api == API_MESSAGES, 500, "mock out of memory");
        return;
    }
    s->m = m;
    if (++m->active > m->peak)
        m->peak = m->active;
    s->req = req;
    s->evcon = evhttp_request_get_connection(req);
    s->mode = mode;
    if (pl) {
        plan_strs_copy(&s->pl, pl, s->strs);
        s->p.bad = pl->malformed ? bad_events[pl->api] : NULL;
    } else {
        s->pl.cut_after = -1; /* a raw body is never cut by x-mock-cut-after */
    }
    s->build = build;
    s->text = m->cur_text;
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
        if (s->z)
            evhttp_add_header(oh, "Content-Encoding", fault_names[s->pl.enc]);
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
    else if (m->st.stall_ms > 0) /* x-mock-stall-ms: the body waits */
        stream_arm(s, (int)m->st.stall_ms);
    else
        stream_pump(s);
}
