/* The stream transport (transport.h): a connection to the XMPP server. Find
 * it (SRV, XEP-0368, or the host the options name), connect to its
 * addresses in order, and carry plaintext in both directions, through the
 * TLS filter once TLS is up (direct TLS from the first byte, or STARTTLS
 * when the session says so). Its operations table is
 * xmppuv__stream_transport; the functions below are the same operations by
 * name.
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
#include "transport/transport.h"
#include "transport/tls.h"
#include "xmppuv.h"

typedef struct xmppuv__conn xmppuv__conn_t;

/* The stream transport's configuration and events are the transport
 * interface's (transport.h). */
typedef xmppuv__transport_config_t xmppuv__conn_config_t;
typedef xmppuv__transport_events_t xmppuv__conn_events_t;

/* Start connecting. The config's strings are copied. On success, closed
 * runs exactly once in the end. Errors: XMPPUV_EINVAL, XMPPUV_ENOMEM. */
int xmppuv__conn_open(uv_loop_t *loop, const xmppuv__conn_config_t *cfg,
                      const xmppuv__conn_events_t *ev, void *ud,
                      xmppuv__conn_t **out);

/* Send plaintext (encrypted if TLS is active); never partial, never
 * dropped. XMPPUV_ESTATE when not connected or closing, XMPPUV_ENOMEM. */
int xmppuv__conn_write(xmppuv__conn_t *c, const char *data, size_t len);
/* The same for b's bytes, leaving b empty; no copy when nothing else is
 * waiting to go out (see xmppuv__buf_take). */
int xmppuv__conn_write_buf(xmppuv__conn_t *c, xmppuv__buf_t *b);

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

/* Take no input for now (paused), or again; see transport.h. */
void xmppuv__conn_pause(xmppuv__conn_t *c, int paused);

/* Bytes queued for the socket and not yet written. */
size_t xmppuv__conn_pending(const xmppuv__conn_t *c);

/* "host [ip]:port" of the current peer, for logs. */
const char *xmppuv__conn_peer(const xmppuv__conn_t *c);

/* TLS handshake steps this thread put off to a later loop iteration so
 * far (conn.c, the handshake budget); for tests. */
uint64_t xmppuv__conn_steps_deferred(void);

#endif
