/* One interface for every way of carrying a client's XML stream: an
 * operations table and the events a transport raises. The stream transport
 * (conn.c: DNS, TCP, the TLS filter; RFC 6120 framing) is one; a WebSocket
 * transport (RFC 7395 framing) is another. The driver (client.c) opens one
 * per connection; the engine only hears what it carries and which framing
 * it uses. */
#ifndef XMPPUV_TRANSPORT_H
#define XMPPUV_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "session/session.h"
#include "transport/tls.h"
#include "util/log.h"
#include "xmppuv.h"

typedef struct xmppuv__transport xmppuv__transport_t;
typedef struct xmppuv__transport_ops xmppuv__transport_ops_t;

typedef struct xmppuv__transport_config {
  const char *domain;  /* the XMPP domain, ASCII: SRV, SNI, certificate */
  const char *host;    /* NULL, or connect here instead (no SRV) */
  uint16_t port;       /* with host; 0 = the transport's default */
  const char *first_host; /* NULL, or try this "host" first (XEP-0198 location) */
  uint16_t first_port;
  xmppuv_tls_mode_t tls_mode;
  xmppuv__tls_ctx_t *tls_ctx; /* borrowed; may be NULL only without TLS */
  const char *dns_servers;    /* NULL = system */
  uint64_t dns_timeout_ms;    /* 0 = default */
  uint64_t connect_timeout_ms; /* per address; 0 = none */
  const xmppuv__log_t *log;
  /* The owner's slot for a TLS session to resume (borrowed, outlives the
   * transport; NULL: none): offered to the next handshake, replaced after
   * each one. */
  xmppuv__tls_session_t **tls_session;
  /* Direct TLS: the ALPN protocol offered (XMPPUV__ALPN_*); 0 = "xmpp-client"
   * (XEP-0368). */
  int direct_alpn;
  /* The WebSocket transport: the ws:// or wss:// URL, and the largest
   * message taken (0 = 1 MiB). */
  const char *url;
  size_t max_message;
} xmppuv__transport_config_t;

typedef struct xmppuv__transport_events {
  /* Connected: the socket is up and, with direct TLS, the handshake done.
   * tls: non-zero if TLS is active already. */
  void (*connected)(void *ud, int tls);
  /* Plaintext from the server; valid for the call only. */
  void (*data)(void *ud, const char *data, size_t len);
  /* The STARTTLS handshake completed. */
  void (*tls_ready)(void *ud);
  /* Connecting failed (every target and address tried; status is the last
   * error: a DNS, connect, or certificate error), or the connection was
   * lost (XMPPUV_EEOF, a libuv code, a TLS error). detail says what
   * happened in words (which address, which check, what the server seemed
   * to speak), or is NULL; borrowed for the call. The transport closes
   * itself: closed follows. */
  void (*error)(void *ud, int status, const char *detail);
  /* Everything is closed and freed. Always from the loop, never inside a
   * call on the transport. */
  void (*closed)(void *ud);
} xmppuv__transport_events_t;

struct xmppuv__transport_ops {
  const char *name;
  xmppuv__framing_t framing;
  /* Start connecting. The config's strings are copied. On success, closed
   * runs exactly once in the end. Errors: XMPPUV_EINVAL, XMPPUV_ENOMEM. */
  int (*open)(uv_loop_t *loop, const xmppuv__transport_config_t *cfg,
              const xmppuv__transport_events_t *ev, void *ud,
              xmppuv__transport_t **out);
  /* Send b's bytes (plaintext; encrypted if TLS is active) and leave b
   * empty: the transport may take b's storage and give its own back (no
   * copy). Never partial, never dropped. XMPPUV_ESTATE when not connected
   * or closing, XMPPUV_ENOMEM (b is then left as it was). */
  int (*write)(xmppuv__transport_t *t, xmppuv__buf_t *b);
  /* Begin TLS on an open transport (STARTTLS); rest: TLS bytes that came
   * with the last plaintext. tls_ready or error follows. */
  int (*starttls)(xmppuv__transport_t *t, const char *rest, size_t rest_len);
  /* The channel-binding data TLS can give now, strongest first. */
  void (*channel_binding)(xmppuv__transport_t *t, xmppuv__channel_binding_t *out);
  /* The owner takes no more input for now (paused), or takes it again:
   * reading stops (the kernel and TCP hold the rest back), and what was
   * read already but not handed over waits. Data resumes from the loop. */
  void (*pause)(xmppuv__transport_t *t, int paused);
  /* Close: graceful writes what is queued (and a TLS close_notify) first;
   * otherwise drop at once. Only closed follows. Idempotent. */
  void (*close)(xmppuv__transport_t *t, int graceful);
  /* "host [ip]:port" of the current peer, for logs. */
  const char *(*peer)(const xmppuv__transport_t *t);
};

/* Every transport object starts with this. */
struct xmppuv__transport {
  const xmppuv__transport_ops_t *ops;
};

/* DNS (SRV, XEP-0368), TCP and the TLS filter; RFC 6120 framing. */
extern const xmppuv__transport_ops_t xmppuv__stream_transport;
/* A WebSocket at the config's url over the same; RFC 7395 framing. */
extern const xmppuv__transport_ops_t xmppuv__ws_transport;

#endif
