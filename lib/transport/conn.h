/* A connection to the XMPP server: find it (SRV, XEP-0368, or the host the
 * options name), connect to its addresses in order, and carry plaintext in
 * both directions, through the TLS filter once TLS is up (direct TLS from
 * the first byte, or STARTTLS when the session says so).
 *
 * TLS is always verified against the XMPP domain given in the config, never
 * against the SRV target, the host override or an IP address. */
#ifndef XMPPUV_TRANSPORT_CONN_H
#define XMPPUV_TRANSPORT_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/log.h"
#include "transport/dns.h"
#include "transport/tls.h"
#include "xmppuv.h"

typedef struct xmppuv__conn xmppuv__conn_t;

typedef struct xmppuv__conn_config {
  const char *domain;  /* the XMPP domain, ASCII: SRV, SNI, certificate */
  const char *host;    /* NULL, or connect here instead (no SRV) */
  uint16_t port;       /* with host; 0 = 5222, or 5223 for direct TLS */
  const char *first_host; /* NULL, or try this "host" first (XEP-0198 location) */
  uint16_t first_port;
  xmppuv_tls_mode_t tls_mode;
  xmppuv__tls_ctx_t *tls_ctx; /* borrowed; may be NULL only without TLS */
  const char *dns_servers;    /* NULL = system */
  uint64_t dns_timeout_ms;    /* 0 = default */
  uint64_t connect_timeout_ms; /* per address; 0 = none */
  const xmppuv__log_t *log;
} xmppuv__conn_config_t;

typedef struct xmppuv__conn_events {
  /* Connected: the socket is up and, with direct TLS, the handshake done.
   * tls: non-zero if TLS is active already. */
  void (*connected)(void *ud, int tls);
  /* Plaintext from the server; valid for the call only. */
  void (*data)(void *ud, const char *data, size_t len);
  /* The STARTTLS handshake completed. */
  void (*tls_ready)(void *ud);
  /* Connecting failed (every target and address tried; status is the last
   * error: a DNS, connect, or certificate error), or the connection was
   * lost (XMPPUV_EEOF, a libuv code, a TLS error). The connection closes
   * itself: closed follows. */
  void (*error)(void *ud, int status);
  /* Everything is closed and freed. */
  void (*closed)(void *ud);
} xmppuv__conn_events_t;

/* Start connecting. The config's strings are copied. On success, closed
 * runs exactly once in the end. Errors: XMPPUV_EINVAL, XMPPUV_ENOMEM. */
/* Split a "host:port" the server gave (XEP-0198 location, see-other-host)
 * into host and port: "host:port", "host", "[v6]:port", "[v6]", or a bare
 * IPv6 address (more than one colon, no brackets: no port in it). host
 * (of host_size bytes) gets the host as given, brackets included; *port
 * gets the port, or 0 when there is none or it is not 1..65535. */
void xmppuv__split_host_port(const char *in, char *host, size_t host_size, uint16_t *port);

int xmppuv__conn_open(uv_loop_t *loop, const xmppuv__conn_config_t *cfg,
                      const xmppuv__conn_events_t *ev, void *ud,
                      xmppuv__conn_t **out);

/* Send plaintext (encrypted if TLS is active); never partial, never
 * dropped. XMPPUV_ESTATE when not connected or closing, XMPPUV_ENOMEM. */
int xmppuv__conn_write(xmppuv__conn_t *c, const char *data, size_t len);

/* After <proceed/>: the TLS handshake starts now. rest/rest_len are bytes
 * that followed <proceed/> in the same read (normally none): they are the
 * start of the server's TLS data. tls_ready or error follows. */
int xmppuv__conn_starttls(xmppuv__conn_t *c, const char *rest, size_t rest_len);

int xmppuv__conn_tls_active(const xmppuv__conn_t *c);
/* The channel-binding types this connection can provide now, strongest
 * first; returns how many were stored in types (at most max). */
size_t xmppuv__conn_cb_types(const xmppuv__conn_t *c, const char **types,
                             size_t max);
/* See xmppuv__tls_channel_binding(). */
int xmppuv__conn_channel_binding(xmppuv__conn_t *c, const char *type,
                                 unsigned char *out, size_t *len);

/* Close. graceful: write what is queued (and a TLS close_notify) first.
 * Otherwise drop at once. Only closed follows. Idempotent; an abort
 * overrides a graceful close in progress. */
void xmppuv__conn_close(xmppuv__conn_t *c, int graceful);

/* Bytes queued for the socket and not yet written. */
size_t xmppuv__conn_pending(const xmppuv__conn_t *c);

/* "host [ip]:port" of the current peer, for logs. */
const char *xmppuv__conn_peer(const xmppuv__conn_t *c);

#endif
