/*
 * alert: budget alerts posted to the configured webhook (alerts.webhook), from the admin
 * thread's event loop. Any thread may queue an alert; at most 256 wait and 32 requests are
 * under way at once, past which an alert is dropped (and said so on stderr). Only the
 * webhook's host and port are ever printed, never its path, which often holds a secret.
 */
#ifndef TG_ALERT_H
#define TG_ALERT_H

#include <openssl/ssl.h>
#include <stddef.h>

struct event_base;
struct conf_alerts;
struct alert_sender;

/*
 * A sender on base (run by one thread) for the webhook of c, over TLS checked with tls_ctx for
 * https; c may have no webhook, and then every alert is dropped silently. The webhook's address
 * is copied. Returns NULL with a reason in err.
 */
struct alert_sender *alert_new(struct event_base *base, SSL_CTX *tls_ctx,
                               const struct conf_alerts *c, char *err, size_t errlen);

/* Frees the sender and what it holds; base's loop must not be running. Accepts NULL. */
void alert_free(struct alert_sender *a);

/* Queues an alert (a JSON object, copied) for the webhook. Thread-safe; drops it past the cap
 * or when out of memory. Accepts NULL. */
void alert_post(struct alert_sender *a, const char *json);

#endif
