/* Stream negotiation (RFC 6120), the I/O-free core of one connection:
 * stream header, features, STARTTLS, SASL, resource binding, then the
 * stream of stanzas. Bytes in (plaintext, after TLS), bytes out through the
 * write event, and events for what the driver must do (start TLS, resume or
 * bind, go online). No clock: the driver times the negotiation. */
#ifndef XMPPUV_SESSION_H
#define XMPPUV_SESSION_H

#include <stddef.h>

#include "util/log.h"
#include "xml/parser.h"
#include "xmppuv.h"

typedef struct xmppuv__session xmppuv__session_t;

typedef struct xmppuv__session_config {
  const char *domain;   /* 'to' of the stream header */
  const char *bare_jid; /* 'from' once TLS is up (RFC 6120 §4.7.1) */
  const char *username; /* SASL authcid: the JID's localpart */
  const char *resource; /* requested resource, or NULL */
  const char *lang;     /* xml:lang, or NULL */
  int tls_required;     /* refuse to go on without TLS */
  int allow_anonymous;
  int allow_plain_insecure; /* PLAIN without TLS (TLS disabled explicitly) */
  const char *mechanisms;   /* allow-list "A,B" or NULL for all */
  xmppuv__xml_limits_t limits;
  const xmppuv__log_t *log;
} xmppuv__session_config_t;

typedef struct xmppuv__session_events {
  /* Bytes for the server, in order. 0 or an error (the session fails). */
  int (*write)(void *ud, const char *data, size_t len);
  /* <proceed/>: start TLS; rest = bytes after it in the same input. */
  int (*starttls)(void *ud, const char *rest, size_t rest_len);
  /* Channel-binding types the connection can provide now, strongest first. */
  size_t (*cb_types)(void *ud, const char **types, size_t max);
  int (*cb_data)(void *ud, const char *type, unsigned char *out, size_t *len);
  /* The password, into buf (size bytes, NUL-terminated). 0 or an error. */
  int (*password)(void *ud, char *buf, size_t size);
  /* XMPPUV_STATUS_OPENING (header sent) and _OPEN (header received). */
  void (*status)(void *ud, xmppuv_status_t status);
  /* SASL done and the new stream's features read: resume (SM) or call
   * xmppuv__session_bind(). sm_offered: the features had <sm/>. */
  void (*authenticated)(void *ud, int sm_offered);
  /* Resource bound (and the legacy session established where required). */
  void (*bound)(void *ud, const char *full_jid);
  /* After authentication, every top-level element that is not the
   * session's own (stanzas, SM nonzas). Borrowed for the call. */
  void (*element)(void *ud, xmppuv_stanza_t *el);
  /* The stream failed: a negotiation error, a stream error from the server,
   * bad XML from it. The session is dead; the driver drops the connection.
   * see_other_host: the new "host[:port]" for a see-other-host error. */
  void (*failed)(void *ud, const xmppuv_error_t *err, const char *see_other_host);
  /* The server closed the stream with </stream:stream>. */
  void (*closed)(void *ud);
} xmppuv__session_events_t;

/* cfg strings are copied. 0, XMPPUV_ENOMEM. */
int xmppuv__session_new(const xmppuv__session_config_t *cfg,
                        const xmppuv__session_events_t *ev, void *ud,
                        xmppuv__session_t **out);
void xmppuv__session_free(xmppuv__session_t *s);

/* The connection is up (tls: TLS already active, direct TLS): open the
 * stream. Resets all per-connection state, so one session object serves
 * every connection of a client. */
int xmppuv__session_start(xmppuv__session_t *s, int tls);
/* The STARTTLS handshake finished: restart the stream. */
int xmppuv__session_tls_ready(xmppuv__session_t *s);
/* Bytes from the server. Errors are also reported through `failed`. */
int xmppuv__session_feed(xmppuv__session_t *s, const char *data, size_t len);
/* Bind a resource (after `authenticated`, or after a failed resumption). */
int xmppuv__session_bind(xmppuv__session_t *s);
/* Write </stream:stream> (graceful close). */
int xmppuv__session_close(xmppuv__session_t *s);
/* Non-zero once the server's stream header arrived on this connection. */
int xmppuv__session_is_open(const xmppuv__session_t *s);
/* The largest stanza the server's last stream features said it takes
 * (XEP-0478 max-bytes), or 0 if they did not say. */
size_t xmppuv__session_peer_max_bytes(const xmppuv__session_t *s);
/* The SASL mechanism used on this connection, or NULL. */
const char *xmppuv__session_mechanism(const xmppuv__session_t *s);

#endif
