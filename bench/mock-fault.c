/*
 * tokengate-mock: the faults. What the x-mock- request headers ask of a reply
 * (x-mock-fault and the steering headers, see usage() in mock.c), how a reply
 * is delivered under a fault (whole, compressed, broken, slow, reset, hung),
 * and the compression of the gzip and deflate faults. The modes themselves run
 * in mock-stream.c.
 */
#include "mock.h"

const char *const fault_names[F_COUNT] = {
    [F_500] = "500",
    [F_429] = "429",
    [F_RESET] = "reset",
    [F_HANG] = "hang",
    [F_SLOW] = "slow",
    [F_MALFORMED] = "malformed",
    [F_NO_USAGE] = "no-usage",
    [F_RUNAWAY] = "runaway",
    [F_GZIP] = "gzip",
    [F_DEFLATE] = "deflate",
    [F_ERROR_EVENT] = "error-event",
};

const char *const absurd_names[AB_COUNT] = {
    [AB_NEGATIVE] = "negative",
    [AB_HUGE] = "huge",
    [AB_FRACTION] = "fraction",
    [AB_STRING] = "string",
};

/* Returns the fault named name (case-insensitive), or F_NONE for NULL or an unknown name. */
enum fault fault_lookup(const char *name)
{
    size_t i;

    for (i = 1; name && i < NELEM(fault_names); i++)
        if (fault_names[i] && strcasecmp(name, fault_names[i]) == 0)
            return (enum fault)i;
    return F_NONE;
}

/*
 * Reads the x-mock- headers that steer a reply's content into st (see
 * usage()). Returns NULL, or the error message for a header that is not
 * understood (st is then partly filled).
 */
const char *steer_parse(struct evkeyvalq *ih, struct steer *st)
{
    const char *skew = evhttp_find_header(ih, "x-mock-usage-skew");
    const char *cut = evhttp_find_header(ih, "x-mock-cut-after");
    const char *absurd = evhttp_find_header(ih, "x-mock-usage");
    const char *cached = evhttp_find_header(ih, "x-mock-cached");
    const char *reasoning = evhttp_find_header(ih, "x-mock-reasoning");
    const char *split = evhttp_find_header(ih, "x-mock-split");
    const char *stall = evhttp_find_header(ih, "x-mock-stall-ms");
    const char *oskew = evhttp_find_header(ih, "x-mock-output-skew");
    const char *cwrite = evhttp_find_header(ih, "x-mock-cache-write");
    const char *cw1h = evhttp_find_header(ih, "x-mock-cache-write-1h");
    const char *tools = evhttp_find_header(ih, "x-mock-tools");
    const char *inter = evhttp_find_header(ih, "x-mock-interleave");
    const char *ttext = evhttp_find_header(ih, "x-mock-tool-text");
    long on = 0;
    size_t i;

    memset(st, 0, sizeof(*st));
    st->cut_after = -1;
    st->cache_write_1h = -1;
    for (i = 1; absurd && i < AB_COUNT; i++)
        if (strcasecmp(absurd, absurd_names[i]) == 0)
            st->absurd = (enum absurd)i;
    if (skew && parse_long(skew, -1000000, 1000000, &st->skew) < 0)
        return "mock: bad x-mock-usage-skew";
    if (cut && parse_long(cut, 0, MOCK_RUNAWAY_MAX, &st->cut_after) < 0)
        return "mock: bad x-mock-cut-after";
    if (absurd && st->absurd == AB_NONE)
        return "mock: x-mock-usage must be negative, huge, fraction or string";
    if (cached && parse_long(cached, 0, 100000000, &st->cached) < 0)
        return "mock: bad x-mock-cached";
    if (reasoning && parse_long(reasoning, 0, 100000000, &st->reasoning) < 0)
        return "mock: bad x-mock-reasoning";
    if (oskew && parse_long(oskew, -1000000, 1000000, &st->oskew) < 0)
        return "mock: bad x-mock-output-skew";
    if (stall && parse_long(stall, 0, 3600000, &st->stall_ms) < 0)
        return "mock: bad x-mock-stall-ms";
    if (split && parse_long(split, 0, 1, &on) < 0)
        return "mock: x-mock-split must be 0 or 1";
    st->split = (int)on;
    if (cwrite && parse_long(cwrite, 0, 100000000, &st->cache_write) < 0)
        return "mock: bad x-mock-cache-write";
    if (cw1h && parse_long(cw1h, 0, 100000000, &st->cache_write_1h) < 0)
        return "mock: bad x-mock-cache-write-1h";
    if (tools && parse_long(tools, 1, MOCK_MAX_CALLS, &st->tools) < 0)
        return "mock: x-mock-tools must be 1..16";
    if (inter && parse_long(inter, 0, 1, &st->interleave) < 0)
        return "mock: x-mock-interleave must be 0 or 1";
    if (ttext && parse_long(ttext, 0, 1000, &st->tool_text) < 0)
        return "mock: x-mock-tool-text must be 0..1000";
    return NULL;
}

/* ---- the gzip and deflate faults: compression ---- */

/*
 * Starts z for Content-Encoding enc (F_GZIP: a gzip stream; F_DEFLATE: a zlib
 * stream, which is what HTTP's "deflate" is). Returns 0, or -1 when out of memory.
 */
int z_start(z_stream *z, enum fault enc)
{
    memset(z, 0, sizeof(*z));
    return deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, enc == F_GZIP ? 31 : 15, 8,
                        Z_DEFAULT_STRATEGY) == Z_OK
               ? 0
               : -1;
}

/*
 * Compresses len bytes at in onto out, then flushes as flush says (Z_SYNC_FLUSH:
 * all of it decodable now; Z_FINISH: the stream's end). Returns 0, or -1 when
 * out of memory.
 */
int z_put(z_stream *z, const void *in, size_t len, int flush, struct evbuffer *out)
{
    struct evbuffer_iovec v;
    int rc;

    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)len;
    do {
        if (evbuffer_reserve_space(out, 16384, &v, 1) < 1)
            return -1;
        z->next_out = v.iov_base;
        z->avail_out = v.iov_len > 65536 ? 65536 : (uInt)v.iov_len;
        v.iov_len = z->avail_out;
        rc = deflate(z, flush);
        if (rc == Z_STREAM_ERROR)
            return -1;
        v.iov_len -= z->avail_out;
        evbuffer_commit_space(out, &v, 1);
    } while (flush == Z_FINISH ? rc != Z_STREAM_END : z->avail_out == 0 || z->avail_in > 0);
    return 0;
}

/*
 * Replaces what buf holds by its enc-compressed form (a whole body).
 * Returns 0, or -1 when out of memory (buf is then left as it was).
 */
int z_body(struct evbuffer *buf, enum fault enc)
{
    struct evbuffer *out = evbuffer_new();
    size_t len = evbuffer_get_length(buf);
    z_stream z;
    int rc = -1;

    if (out && z_start(&z, enc) == 0) {
        rc = z_put(&z, evbuffer_pullup(buf, -1), len, Z_FINISH, out);
        deflateEnd(&z);
    }
    if (rc == 0) {
        evbuffer_drain(buf, len);
        evbuffer_add_buffer(buf, out);
    }
    if (out)
        evbuffer_free(out);
    return rc;
}

/* ---- delivery under a fault ---- */

/*
 * Sends a non-stream JSON body (freed here; NULL: out of memory) as the fault
 * f asks: gzip and deflate compress it.
 */
void deliver_json(struct mock *m, struct evhttp_request *req, cJSON *body, enum fault f)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    char *s;
    int made;

    if (f != F_SLOW && f != F_RESET && f != F_MALFORMED && !(m->st.stall_ms > 0 && f == F_NONE)) {
        made = json_print(out, body) == 0;
        cJSON_Delete(body);
        if (made && (f == F_GZIP || f == F_DEFLATE) && (made = z_body(out, f) == 0))
            evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Encoding",
                              fault_names[f]);
        if (made && m->cur_usage)
            usage_complete(m->cur_usage, m->cur_text, (long long)evbuffer_get_length(out));
        reply_send(req, 200, made);
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
        /* the answer was made and handed over, broken: billed as any other */
        if (m->cur_usage)
            usage_complete(m->cur_usage, m->cur_text, (long long)(strlen(s) / 2));
        evhttp_send_reply(req, 200, NULL, NULL);
    } else {
        stream_start(m, req,
                     f == F_SLOW    ? SM_SLOW
                     : f == F_RESET ? SM_RESET
                                    : SM_PACED,
                     NULL, NULL, f == F_RESET ? NULL : s);
    }
    cJSON_free(s);
}

/* Streams the steps of pl as the fault f asks. */
void deliver_stream(struct mock *m, struct evhttp_request *req, const struct plan *pl,
                    step_fn *build, enum fault f)
{
    stream_start(m, req,
                 f == F_SLOW    ? SM_SLOW
                 : f == F_RESET ? SM_RESET
                                : SM_PACED,
                 pl, build, NULL);
}
