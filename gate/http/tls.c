/*
 * tls: the gate's TLS contexts (client side to providers and the alert webhook, server side for
 * its listener) and client connections made from them.
 */
#include "gate/http/tls.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>

SSL_CTX *tls_client_ctx(const struct conf *c, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (c->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
            snprintf(err, errlen, "%s: upstream.ca_file %s cannot be loaded", c->path, c->ca_file);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        goto fail;
    }
    return ctx;
fail:
    snprintf(err, errlen, "cannot set up TLS to providers");
    SSL_CTX_free(ctx);
    return NULL;
}

struct bufferevent *tls_bufferevent(SSL_CTX *ctx, struct event_base *base, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    struct bufferevent *bev;
    struct in6_addr a6;
    struct in_addr a4;
    int ok;

    if (ssl == NULL)
        return NULL;
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    else
        ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
    bev = ok ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                              BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
             : NULL;
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

SSL_CTX *tls_server_ctx(const struct conf *c, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        snprintf(err, errlen, "cannot set up listener TLS");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
        snprintf(err, errlen, "%s: tls.cert %s cannot be loaded", c->path, c->tls_cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: tls.key %s cannot be loaded or does not match tls.cert",
                 c->path, c->tls_key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

