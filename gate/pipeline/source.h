/*
 * source: where a request's answer comes from. A source produces the answer into the
 * request's filter chain (filter.h): its head, then its events (a stream) or its body (a whole
 * answer), then its end, after which it resumes the request's pipeline after dispatch; or it
 * fails, and the request ends in req_fail. Today there is one source, the upstream exchange
 * (source_upstream, in proxy.c); a cache replay would be a second, started by the cache stage.
 * The source's own state lives in the request (the upstream's: req->ex).
 */
#ifndef TG_SOURCE_H
#define TG_SOURCE_H

struct gate_req;

struct resp_source {
    const char *name;
    /* Starts producing. May fail before it returns (the request then ends in req_fail). */
    void (*start)(struct gate_req *req);
    /* Stops and restarts producing: backpressure from a slow client. Safe when not running. */
    void (*pause)(struct gate_req *req);
    void (*resume)(struct gate_req *req);
    /* Stops for good: nothing more is delivered, nothing is called back. Safe when not
     * running, and more than once. */
    void (*cancel)(struct gate_req *req);
};

/* The upstream exchange: the request as prepared (req->ex.request) sent to req->prov. */
extern const struct resp_source source_upstream;

/* A response-cache hit: the entry (req->cache.hit) replayed in the form the client asked for,
 * a stream or a whole answer (source_cache.c). */
extern const struct resp_source source_cache;

#endif
