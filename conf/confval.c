/*
 * confval: parsers of config values that stand alone (no YAML node): durations, sizes, listen
 * addresses and URLs (split from conf.c). Declared in conf.h.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int64_t conf_parse_duration_ms(const char *s)
{
    char *end;
    double v;

    size_t digits = strspn(s ? s : "", "0123456789.");

    if (s == NULL || digits == 0 || strchr(s, '.') != strrchr(s, '.'))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (end != s + digits)
        return -1;
    if (errno != 0 || end == s)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        v *= 1000;
    else if (strcmp(end, "ms") == 0)
        ;
    else if (strcmp(end, "m") == 0)
        v *= 60 * 1000;
    else if (strcmp(end, "h") == 0)
        v *= 3600 * 1000;
    else
        return -1;
    if (v > 1e12)
        return -1;
    return (int64_t)v;
}

int64_t conf_parse_size(const char *s)
{
    static const struct {
        const char *suffix;
        int64_t mult;
    } units[] = {
        {"", 1},           {"B", 1},           {"KiB", 1024},  {"MiB", 1024 * 1024},
        {"GiB", 1 << 30},  {"KB", 1000},       {"MB", 1000000}, {"GB", 1000000000},
        {"k", 1024},       {"K", 1024},        {"M", 1024 * 1024},
    };
    char *end;
    long long v;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > INT64_MAX / units[i].mult)
                return -1;
            return v * units[i].mult;
        }
    }
    return -1;
}

/* Splits "host:port" (or "[v6]:port") into a malloc'd host and a port. */
int conf_split_host_port(const char *s, char **host, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    char *end;
    long p;

    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
        return -1;
    char numeric[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    memcpy(numeric, h, hlen);
    numeric[hlen] = '\0';
    if (inet_pton(AF_INET, numeric, bin) != 1 && inet_pton(AF_INET6, numeric, bin) != 1)
        return -1;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    if ((*host = strndup(h, hlen)) == NULL)
        return -1; /* out of memory: refused as well */
    *port = (int)p;
    return 0;
}

void conf_url_free(struct conf_url *u)
{
    free(u->host);
    free(u->host_header);
    free(u->path);
    memset(u, 0, sizeof(*u));
}

const char *conf_parse_url(const char *u, struct conf_url *out)
{
    const char *hs, *he, *path;
    char hostport[300];
    int defport, v6;
    char *rb, *colon;

    memset(out, 0, sizeof(*out));
    if (strncmp(u, "https://", 8) == 0) {
        out->tls = 1;
        hs = u + 8;
    } else if (strncmp(u, "http://", 7) == 0) {
        hs = u + 7;
    } else {
        return "must start with http:// or https://";
    }
    path = strchr(hs, '/');
    he = path ? path : hs + strlen(hs);
    if (he == hs || (size_t)(he - hs) >= sizeof(hostport))
        return "has no host";
    if (memchr(hs, '?', (size_t)(he - hs)) || memchr(hs, '@', (size_t)(he - hs)))
        return "must not hold credentials or a query";
    if (path != NULL && strchr(path, '?') != NULL)
        return "must not hold a query";
    memcpy(hostport, hs, (size_t)(he - hs));
    hostport[he - hs] = '\0';

    defport = out->tls ? 443 : 80;
    v6 = hostport[0] == '[';
    rb = v6 ? strchr(hostport, ']') : NULL;
    colon = v6 ? (rb && rb[1] == ':' ? rb + 1 : NULL) : strrchr(hostport, ':');
    out->port = defport;
    if (v6 && (rb == NULL || (rb[1] != '\0' && rb[1] != ':')))
        return "has a bad IPv6 address";
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || end == colon + 1 || port <= 0 || port > 65535)
            return "has a bad port";
        out->port = (int)port;
        *colon = '\0';
    }
    if (hostport[0] == '\0' || (v6 && rb == hostport + 1))
        return "has no host";
    out->host = v6 ? strndup(hostport + 1, (size_t)(rb - hostport - 1)) : strdup(hostport);
    if (out->port == defport) {
        out->host_header = strdup(hostport);
    } else {
        char hh[320];
        snprintf(hh, sizeof(hh), "%s:%d", hostport, out->port);
        out->host_header = strdup(hh);
    }
    out->path = strdup(path ? path : "");
    if (out->host == NULL || out->host_header == NULL || out->path == NULL) {
        conf_url_free(out);
        return "cannot be stored: out of memory";
    }
    return NULL;
}
