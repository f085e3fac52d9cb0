/*
 * tls: TLS contexts built from the config, and client connections from them.
 */
#ifndef TG_TLS_H
#define TG_TLS_H

#include <openssl/ssl.h>

#include "conf/conf.h"

struct bufferevent;
struct event_base;

/*
 * The client-side context for providers: TLS 1.2 at least, peers verified against
 * upstream.ca_file or the system's CAs. Returns NULL with a reason in err.
 */
SSL_CTX *tls_client_ctx(const struct conf *c, char *err, size_t errlen);

/* The listener's context from tls.cert and tls.key. Returns NULL with a reason in err. */
SSL_CTX *tls_server_ctx(const struct conf *c, char *err, size_t errlen);

/*
 * A bufferevent on base for a TLS connection, not yet made, to host (a name or an address
 * literal), from ctx: SNI set for a name, the certificate checked against the name or the
 * address, a peer's close without close_notify taken as the end. Used for providers and the
 * alert webhook. NULL when it cannot be made.
 */
struct bufferevent *tls_bufferevent(SSL_CTX *ctx, struct event_base *base, const char *host);

#endif
