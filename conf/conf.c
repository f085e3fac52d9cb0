/*
 * conf: YAML configuration loader. The file is read with libyaml's document API so that
 * every node keeps its line number, and every error names the file, the line and the key.
 */
#include "conf/conf.h"
#include "tokenizer/tok.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "conf/conf-int.h"

/* Writes "name:line: message" into the loader's error buffer and returns -1. */
int conf_fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n != NULL)
        snprintf(l->err, l->errlen, "%s:%zu: %s", l->name, n->start_mark.line + 1, msg);
    else
        snprintf(l->err, l->errlen, "%s: %s", l->name, msg);
    return -1;
}

yaml_node_t *conf_node(struct loader *l, int id)
{
    return yaml_document_get_node(&l->doc, id);
}

const char *conf_scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int conf_want_scalar(struct loader *l, const yaml_node_t *n, const char *key, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return conf_fail(l, n, "'%s' must be a single value", key);
    *out = conf_scalar(n);
    return 0;
}

int conf_want_string(struct loader *l, const yaml_node_t *n, const char *key, char **out)
{
    const char *s = NULL;

    if (conf_want_scalar(l, n, key, &s) < 0)
        return -1;
    if (*s == '\0')
        return conf_fail(l, n, "'%s' must not be empty", key);
    free(*out);
    if ((*out = strdup(s)) == NULL)
        return conf_fail(l, n, "'%s': out of memory", key);
    return 0;
}

int conf_want_int(struct loader *l, const yaml_node_t *n, const char *key, long lo, long hi,
                    long *out)
{
    const char *s = NULL;
    char *end;
    long v;

    if (conf_want_scalar(l, n, key, &s) < 0)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return conf_fail(l, n, "'%s' must be a whole number from %ld to %ld, not '%s'", key, lo, hi, s);
    *out = v;
    return 0;
}

int conf_want_duration(struct loader *l, const yaml_node_t *n, const char *key, int64_t *out)
{
    const char *s = NULL;
    int64_t v;

    if (conf_want_scalar(l, n, key, &s) < 0)
        return -1;
    v = conf_parse_duration_ms(s);
    if (v <= 0)
        return conf_fail(l, n, "'%s' must be a positive duration such as 10s, 500ms or 2m, not '%s'",
                    key, s);
    *out = v;
    return 0;
}

int conf_want_size(struct loader *l, const yaml_node_t *n, const char *key, size_t *out)
{
    const char *s = NULL;
    int64_t v;

    if (conf_want_scalar(l, n, key, &s) < 0)
        return -1;
    v = conf_parse_size(s);
    if (v <= 0)
        return conf_fail(l, n, "'%s' must be a positive size such as 64KiB or 32MiB, not '%s'", key, s);
    *out = (size_t)v;
    return 0;
}

int conf_want_mapping(struct loader *l, const yaml_node_t *n, const char *key)
{
    if (n->type != YAML_MAPPING_NODE)
        return conf_fail(l, n, "'%s' must be a mapping of keys to values", key);
    return 0;
}

/* Parses a provider's base URL into scheme, host, port and path prefix (its path without
 * trailing slashes). */
static int parse_base_url(struct loader *l, const yaml_node_t *n, struct conf_provider *p)
{
    struct conf_url url;
    const char *why = conf_parse_url(p->base_url, &url);
    size_t plen;

    if (why != NULL)
        return conf_fail(l, n, "provider '%s': base_url %s", p->name, why);
    p->tls = url.tls;
    p->host = url.host;
    p->port = url.port;
    p->host_header = url.host_header;
    plen = strlen(url.path);
    while (plen > 0 && url.path[plen - 1] == '/')
        plen--;
    url.path[plen] = '\0';
    p->path_prefix = url.path;
    return 0;
}

static int load_provider(struct loader *l, const char *name, const yaml_node_t *map,
                         struct conf_provider *p)
{
    const yaml_node_t *url_node = map;

    p->name = strdup(name);
    if (p->name == NULL)
        return conf_fail(l, map, "provider '%s': out of memory", name);
    if (conf_want_mapping(l, map, name) < 0)
        return -1;
    p->format = CONF_FMT_OPENAI;
    FOR_PAIRS(l, map, pair) {
        const char *k = conf_scalar(conf_node(l, pair->key));
        yaml_node_t *v = conf_node(l, pair->value);
        if (k == NULL)
            return conf_fail(l, v, "provider '%s': keys must be plain names", name);
        if (strcmp(k, "base_url") == 0) {
            if (conf_want_string(l, v, k, &p->base_url) < 0)
                return -1;
            url_node = v;
        } else if (strcmp(k, "format") == 0) {
            const char *f = NULL;
            if (conf_want_scalar(l, v, k, &f) < 0)
                return -1;
            if (strcmp(f, "openai") == 0)
                p->format = CONF_FMT_OPENAI;
            else if (strcmp(f, "anthropic") == 0)
                p->format = CONF_FMT_ANTHROPIC;
            else
                return conf_fail(l, v, "provider '%s': format must be openai or anthropic, not '%s'",
                            name, f);
        } else if (strcmp(k, "api_key_env") == 0) {
            if (conf_want_string(l, v, k, &p->api_key_env) < 0)
                return -1;
        } else {
            return conf_fail(l, conf_node(l, pair->key), "provider '%s': unknown key '%s'", name, k);
        }
    }
    if (p->base_url == NULL)
        return conf_fail(l, map, "provider '%s' has no base_url", name);
    if (parse_base_url(l, url_node, p) < 0)
        return -1;
    if (p->api_key_env != NULL) {
        const char *key = getenv(p->api_key_env);
        if (key != NULL && *key != '\0' && (p->api_key = strdup(key)) == NULL)
            return conf_fail(l, map, "provider '%s': out of memory", name);
    }
    return 0;
}

static struct conf_provider *find_provider(struct conf *c, const char *name)
{
    for (int i = 0; i < c->nproviders; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

static int load_model(struct loader *l, const char *name, const yaml_node_t *v,
                      struct conf_model *m)
{
    const char *pname = NULL;
    const yaml_node_t *pnode = v;
    size_t nlen = strlen(name);

    if (nlen == 0)
        return conf_fail(l, v, "a model name must not be empty");
    m->calibration = 1.0;
    m->wildcard = name[nlen - 1] == '*';
    m->name = strndup(name, m->wildcard ? nlen - 1 : nlen);
    if (m->name == NULL)
        return conf_fail(l, v, "model '%s': out of memory", name);
    if (strchr(m->name, '*') != NULL)
        return conf_fail(l, v, "model '%s': '*' may only end a name", name);
    if (v->type == YAML_SCALAR_NODE) {
        pname = conf_scalar(v);
    } else if (v->type == YAML_MAPPING_NODE) {
        FOR_PAIRS(l, v, pair) {
            const char *k = conf_scalar(conf_node(l, pair->key));
            yaml_node_t *val = conf_node(l, pair->value);
            if (k != NULL && strcmp(k, "provider") == 0) {
                if (conf_want_scalar(l, val, k, &pname) < 0)
                    return -1;
                pnode = val;
            } else if (k != NULL && strcmp(k, "upstream_model") == 0) {
                if (conf_want_string(l, val, k, &m->upstream_model) < 0)
                    return -1;
            } else if (k != NULL && strcmp(k, "encoding") == 0) {
                if (conf_want_string(l, val, k, &m->encoding) < 0)
                    return -1;
                if (tok_encoding(m->encoding) == NULL)
                    return conf_fail(l, val,
                                "model '%s': unknown encoding '%s' (known: cl100k_base, "
                                "o200k_base, p50k_base, r50k_base)",
                                name, m->encoding);
            } else if (k != NULL && strcmp(k, "token_calibration") == 0) {
                const char *sv = NULL;
                char *end;
                if (conf_want_scalar(l, val, k, &sv) < 0)
                    return -1;
                m->calibration = strtod(sv, &end);
                if (end == sv || *end != '\0' || !(m->calibration >= 0.1 && m->calibration <= 10))
                    return conf_fail(l, val,
                                "model '%s': token_calibration must be a number from 0.1 to 10",
                                name);
            } else {
                int r = k != NULL ? confid_model_key(l, name, k, val, m) : 1;
                if (r < 0)
                    return -1;
                if (r > 0)
                    return conf_fail(l, conf_node(l, pair->key),
                                     "model '%s': unknown key '%s' (provider, upstream_model, "
                                     "encoding, token_calibration, price, max_output_tokens, "
                                     "context_window, cache_min_tokens)",
                                     name, k ? k : "?");
            }
        }
    } else {
        return conf_fail(l, v, "model '%s' must name a provider", name);
    }
    if (pname == NULL)
        return conf_fail(l, v, "model '%s' has no provider", name);
    m->provider = find_provider(l->c, pname);
    if (m->provider == NULL)
        return conf_fail(l, pnode, "model '%s': no provider named '%s' is configured", name, pname);
    return 0;
}

static int load_section(struct loader *l, const char *section, const yaml_node_t *map)
{
    struct conf *c = l->c;

    if (conf_want_mapping(l, map, section) < 0)
        return -1;
    FOR_PAIRS(l, map, pair) {
        const char *k = conf_scalar(conf_node(l, pair->key));
        yaml_node_t *v = conf_node(l, pair->value);
        long iv;
        int r = 0;

        if (k == NULL)
            return conf_fail(l, v, "%s: keys must be plain names", section);
        if (strcmp(section, "limits") == 0) {
            if (strcmp(k, "max_header_bytes") == 0)
                r = conf_want_size(l, v, k, &c->max_header_bytes);
            else if (strcmp(k, "max_headers") == 0) {
                r = conf_want_int(l, v, k, 1, 10000, &iv);
                c->max_headers = (int)iv;
            } else if (strcmp(k, "max_body_bytes") == 0)
                r = conf_want_size(l, v, k, &c->max_body_bytes);
            else if (strcmp(k, "max_response_bytes") == 0)
                r = conf_want_size(l, v, k, &c->max_response_bytes);
            else if (strcmp(k, "max_request_memory") == 0)
                r = conf_want_size(l, v, k, &c->max_request_memory);
            else if (strcmp(k, "max_memory_in_flight") == 0)
                r = conf_want_size(l, v, k, &c->max_memory_in_flight);
            else
                return conf_fail(l, conf_node(l, pair->key), "limits: unknown key '%s'", k);
        } else if (strcmp(section, "timeouts") == 0) {
            if (strcmp(k, "client_header") == 0)
                r = conf_want_duration(l, v, k, &c->client_header_timeout);
            else if (strcmp(k, "client_idle") == 0)
                r = conf_want_duration(l, v, k, &c->client_idle_timeout);
            else if (strcmp(k, "client_body") == 0)
                r = conf_want_duration(l, v, k, &c->client_body_timeout);
            else if (strcmp(k, "upstream_connect") == 0)
                r = conf_want_duration(l, v, k, &c->upstream_connect_timeout);
            else if (strcmp(k, "upstream_first_byte") == 0)
                r = conf_want_duration(l, v, k, &c->upstream_first_byte_timeout);
            else if (strcmp(k, "stream_idle") == 0)
                r = conf_want_duration(l, v, k, &c->stream_idle_timeout);
            else if (strcmp(k, "client_write") == 0)
                r = conf_want_duration(l, v, k, &c->client_write_timeout);
            else
                return conf_fail(l, conf_node(l, pair->key), "timeouts: unknown key '%s'", k);
        } else if (strcmp(section, "upstream") == 0) {
            if (strcmp(k, "ca_file") == 0)
                r = conf_want_string(l, v, k, &c->ca_file);
            else if (strcmp(k, "pool_max_idle") == 0) {
                r = conf_want_int(l, v, k, 0, 100000, &iv);
                c->pool_max_idle = (int)iv;
            } else if (strcmp(k, "max_connections") == 0) {
                r = conf_want_int(l, v, k, 1, 100000, &iv);
                c->upstream_max_connections = (int)iv;
            } else if (strcmp(k, "max_waiting") == 0) {
                r = conf_want_int(l, v, k, 0, 1000000, &iv);
                c->upstream_max_waiting = (int)iv;
            } else
                return conf_fail(l, conf_node(l, pair->key), "upstream: unknown key '%s'", k);
        } else if (strcmp(section, "tls") == 0) {
            if (strcmp(k, "cert") == 0)
                r = conf_want_string(l, v, k, &c->tls_cert);
            else if (strcmp(k, "key") == 0)
                r = conf_want_string(l, v, k, &c->tls_key);
            else
                return conf_fail(l, conf_node(l, pair->key), "tls: unknown key '%s'", k);
        }
        if (r < 0)
            return -1;
    }
    return 0;
}

static int load_root(struct loader *l, const yaml_node_t *root)
{
    struct conf *c = l->c;
    const yaml_node_t *models = NULL, *providers = NULL, *tls = NULL;

    if (root == NULL)
        return conf_fail(l, NULL, "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return conf_fail(l, root, "the top level must be a mapping of settings");

    FOR_PAIRS(l, root, pair) {
        const yaml_node_t *kn = conf_node(l, pair->key);
        const char *k = conf_scalar(kn);
        yaml_node_t *v = conf_node(l, pair->value);

        if (k == NULL)
            return conf_fail(l, kn, "top-level keys must be plain names");
        if (strcmp(k, "listen") == 0) {
            const char *s = NULL;
            free(c->listen_host);
            c->listen_host = NULL;
            if (conf_want_scalar(l, v, k, &s) < 0)
                return -1;
            if (conf_split_host_port(s, &c->listen_host, &c->listen_port) < 0)
                return conf_fail(l, v,
                                 "'listen' must be HOST:PORT with a numeric address, such as "
                                 "127.0.0.1:8080 or [::1]:8080, not '%s' (names are not resolved)",
                                 s);
        } else if (strcmp(k, "workers") == 0) {
            const char *s = NULL;
            long iv;
            if (conf_want_scalar(l, v, k, &s) < 0)
                return -1;
            if (strcmp(s, "auto") == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                c->workers = n > 0 ? (int)n : 1;
            } else {
                if (conf_want_int(l, v, "workers", 1, 256, &iv) < 0)
                    return -1;
                c->workers = (int)iv;
            }
        } else if (strcmp(k, "request_log") == 0) {
            if (conf_want_string(l, v, k, &c->request_log) < 0)
                return -1;
        } else if (strcmp(k, "limits") == 0 || strcmp(k, "timeouts") == 0 ||
                   strcmp(k, "upstream") == 0) {
            if (load_section(l, k, v) < 0)
                return -1;
        } else if (strcmp(k, "tls") == 0) {
            tls = v;
            if (load_section(l, k, v) < 0)
                return -1;
        } else if (strcmp(k, "providers") == 0) {
            providers = v;
        } else if (strcmp(k, "models") == 0) {
            models = v;
        } else if (strcmp(k, "cache") == 0) {
            if (confcache_load(l, v) < 0)
                return -1;
        } else {
            int r = confid_load_key(l, k, v);
            if (r > 0)
                r = confroute_load_key(l, k, v);
            if (r > 0)
                r = confmcp_load_key(l, k, v);
            if (r < 0)
                return -1;
            if (r > 0)
                return conf_fail(l, kn, "unknown setting '%s'", k);
        }
    }

    if (c->max_memory_in_flight / 2 < c->max_body_bytes)
        return conf_fail(l, root,
                         "limits: max_memory_in_flight (%zu bytes) is less than twice "
                         "max_body_bytes (%zu bytes), which a body of the largest size holds "
                         "(itself and its copy upstream)",
                         c->max_memory_in_flight, c->max_body_bytes);
    if (tls != NULL && (c->tls_cert == NULL) != (c->tls_key == NULL))
        return conf_fail(l, tls, "tls needs both 'cert' and 'key'");

    if (providers == NULL)
        return conf_fail(l, root, "no 'providers' are configured");
    if (conf_want_mapping(l, providers, "providers") < 0)
        return -1;
    c->nproviders = (int)(providers->data.mapping.pairs.top - providers->data.mapping.pairs.start);
    if (c->nproviders == 0)
        return conf_fail(l, providers, "no 'providers' are configured");
    c->providers = calloc((size_t)c->nproviders, sizeof(*c->providers));
    if (c->providers == NULL) {
        c->nproviders = 0; /* conf_unref walks none */
        return conf_fail(l, providers, "providers: out of memory");
    }
    int i = 0;
    FOR_PAIRS(l, providers, pair) {
        const char *name = conf_scalar(conf_node(l, pair->key));
        if (name == NULL || *name == '\0')
            return conf_fail(l, conf_node(l, pair->key), "a provider needs a plain name");
        for (int j = 0; j < i; j++)
            if (strcmp(c->providers[j].name, name) == 0)
                return conf_fail(l, conf_node(l, pair->key), "provider '%s' is defined twice", name);
        c->providers[i].index = i;
        if (load_provider(l, name, conf_node(l, pair->value), &c->providers[i]) < 0)
            return -1;
        i++;
    }

    if (models == NULL)
        return conf_fail(l, root, "no 'models' are configured");
    if (conf_want_mapping(l, models, "models") < 0)
        return -1;
    c->nmodels = (int)(models->data.mapping.pairs.top - models->data.mapping.pairs.start);
    if (c->nmodels == 0)
        return conf_fail(l, models, "no 'models' are configured");
    c->models = calloc((size_t)c->nmodels > 0 ? (size_t)c->nmodels : 1, sizeof(*c->models));
    if (c->models == NULL) {
        c->nmodels = 0;
        return conf_fail(l, models, "models: out of memory");
    }
    i = 0;
    FOR_PAIRS(l, models, pair) {
        const char *name = conf_scalar(conf_node(l, pair->key));
        if (name == NULL)
            return conf_fail(l, conf_node(l, pair->key), "a model needs a plain name");
        for (int j = 0; j < i; j++)
            if (strcmp(c->models[j].name, name) == 0 && !c->models[j].wildcard)
                return conf_fail(l, conf_node(l, pair->key), "model '%s' is defined twice", name);
        c->models[i].index = i;
        if (load_model(l, name, conf_node(l, pair->value), &c->models[i]) < 0)
            return -1;
        i++;
    }
    if (confid_finish(l, root) < 0)
        return -1;
    if (confroute_finish(l) < 0)
        return -1;
    return confmcp_finish(l);
}

static struct conf *conf_defaults(const char *name)
{
    struct conf *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->path = strdup(name);
    c->listen_host = strdup("127.0.0.1");
    c->listen_port = 8080;
    c->workers = 1;
    c->max_header_bytes = 64 * 1024;
    c->max_headers = 100;
    c->max_body_bytes = 32 * 1024 * 1024;
    c->max_response_bytes = 64 * 1024 * 1024;
    c->max_request_memory = 64 * 1024 * 1024;
    c->max_memory_in_flight = (size_t)1024 * 1024 * 1024;
    c->client_header_timeout = 10 * 1000;
    c->client_idle_timeout = 75 * 1000;
    c->client_body_timeout = 60 * 1000;
    c->upstream_connect_timeout = 5 * 1000;
    c->upstream_first_byte_timeout = 300 * 1000;
    c->stream_idle_timeout = 120 * 1000;
    c->client_write_timeout = 60 * 1000;
    c->pool_max_idle = 64;
    c->upstream_max_connections = 256;
    c->upstream_max_waiting = 1024;
    c->refs = 1;
    confcache_defaults(c);
    if (c->path == NULL || c->listen_host == NULL) {
        conf_unref(c);
        return NULL;
    }
    return c;
}

struct conf *conf_load_string(const char *text, size_t len, const char *name, char *err,
                              size_t errlen)
{
    yaml_parser_t parser;
    struct loader l = {.name = name, .err = err, .errlen = errlen};
    int loaded = 0;

    l.c = conf_defaults(name);
    if (l.c == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &l.doc)) {
        snprintf(err, errlen, "%s:%zu: %s%s%s", name, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML syntax error",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        goto fail;
    }
    loaded = 1;
    if (conf_unique_keys(&l) < 0 || load_root(&l, yaml_document_get_root_node(&l.doc)) < 0)
        goto fail;
    yaml_document_delete(&l.doc);
    yaml_parser_delete(&parser);
    return l.c;

fail:
    if (loaded)
        yaml_document_delete(&l.doc);
    yaml_parser_delete(&parser);
    conf_unref(l.c);
    return NULL;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    struct conf *c;

    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 16 * 1024 * 1024) {
                snprintf(err, errlen, "%s: larger than 16 MiB", path);
                goto fail;
            }
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            buf = grown;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    c = conf_load_string(buf, len, path, err, errlen);
    free(buf);
    return c;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

struct conf *conf_ref(struct conf *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void conf_unref(struct conf *c)
{
    if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (int i = 0; i < c->nproviders; i++) {
        struct conf_provider *p = &c->providers[i];
        free(p->name);
        free(p->base_url);
        free(p->host);
        free(p->host_header);
        free(p->path_prefix);
        free(p->api_key_env);
        if (p->api_key != NULL) {
            /* keys do not linger in freed memory */
            memset(p->api_key, 0, strlen(p->api_key));
            free(p->api_key);
        }
    }
    for (int i = 0; i < c->nmodels; i++) {
        free(c->models[i].name);
        free(c->models[i].upstream_model);
        free(c->models[i].encoding);
    }
    confid_free(c);
    confroute_free(c);
    confmcp_free(c);
    confcache_free(c);
    free(c->providers);
    free(c->models);
    free(c->path);
    free(c->listen_host);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->request_log);
    free(c->ca_file);
    free(c);
}

const struct conf_model *conf_find_model(const struct conf *c, const char *name)
{
    const struct conf_model *best = NULL;
    size_t best_len = 0;

    for (int i = 0; i < c->nmodels; i++) {
        const struct conf_model *m = &c->models[i];
        if (!m->wildcard) {
            if (strcmp(m->name, name) == 0)
                return m;
            continue;
        }
        size_t n = strlen(m->name);
        if (strncmp(m->name, name, n) == 0 && (best == NULL || n > best_len)) {
            best = m;
            best_len = n;
        }
    }
    return best;
}
