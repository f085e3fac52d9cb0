/*
 * conf: the gate's configuration, loaded from YAML into one immutable snapshot.
 *
 * A snapshot is shared by every worker thread and never changes once loaded; it is
 * refcounted so that a reload can swap in a new one while requests still hold the old.
 */
#ifndef TG_CONF_H
#define TG_CONF_H

#include <stddef.h>
#include <stdint.h>

enum conf_format {
    CONF_FMT_OPENAI = 0,
    CONF_FMT_ANTHROPIC = 1,
};

struct conf_provider {
    char *name;
    char *base_url;      /* as written, e.g. https://api.openai.com/v1 */
    enum conf_format format;
    int tls;             /* 1 for https */
    char *host;          /* host name or address literal, no brackets */
    int port;
    char *host_header;   /* value of Host: host, or host:port for a non-default port */
    char *path_prefix;   /* base URL path without a trailing slash, "" for none */
    char *api_key_env;   /* name of the environment variable, or NULL */
    char *api_key;       /* its value at load time, or NULL: clients' keys pass through */
    int index;           /* position in conf.providers */
};

struct conf_model {
    char *name;          /* exact name, or a prefix when wildcard is set ("gpt-*") */
    int wildcard;
    struct conf_provider *provider;
    char *upstream_model; /* name sent upstream, or NULL to keep the client's */
    char *encoding;       /* tokenizer encoding, or NULL for the default by model family */
    double calibration;   /* factor on approximate counts (Anthropic); 1.0 unless set */
};

struct conf {
    char *path;

    char *listen_host;
    int listen_port;
    int workers;         /* resolved: "auto" becomes the number of cores */
    char *tls_cert;      /* listener TLS, both or neither */
    char *tls_key;

    char *request_log;   /* JSON lines path, or NULL for none */

    size_t max_header_bytes;
    int max_headers;
    size_t max_body_bytes;
    size_t max_response_bytes;

    /* milliseconds */
    int64_t client_header_timeout;
    int64_t client_idle_timeout;
    int64_t upstream_connect_timeout;
    int64_t upstream_first_byte_timeout;
    int64_t stream_idle_timeout;

    char *ca_file;       /* NULL: the system store */
    int pool_max_idle;   /* idle upstream connections kept per provider per worker */

    struct conf_provider *providers;
    int nproviders;
    struct conf_model *models;
    int nmodels;

    int refs;
};

/*
 * Loads and validates the YAML file at path. Returns a snapshot with one reference, or NULL
 * with a message "FILE:LINE: reason" (or "FILE: reason") written into err.
 */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/* Same as conf_load, from a string; name stands for the file in error messages. */
struct conf *conf_load_string(const char *text, size_t len, const char *name, char *err,
                              size_t errlen);

/* Takes and drops a reference; the snapshot is freed when the last one goes. */
struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/*
 * Finds the model entry for a model name: an exact entry first, then the longest wildcard
 * prefix. Returns NULL when no entry matches.
 */
const struct conf_model *conf_find_model(const struct conf *c, const char *name);

/* Parses "10s", "250ms", "2m", "1h" or a bare number of seconds. Returns -1 when malformed. */
int64_t conf_parse_duration_ms(const char *s);

/* Parses "64KiB", "32MiB", "1GiB", "512KB" or a bare number of bytes. Returns -1 when malformed. */
int64_t conf_parse_size(const char *s);

#endif
