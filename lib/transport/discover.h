/* XEP-0156 connection discovery over HTTPS: the domain's host-meta and
 * the WebSocket endpoint it names.
 *
 * https://DOMAIN/.well-known/host-meta.json (JRD) first, then
 * /.well-known/host-meta (XRD) when the first has no usable link (missing,
 * not 2xx, malformed, or without a WebSocket link). HTTPS only, the
 * certificate verified against DOMAIN (XEP-0156 §3: only a document fetched
 * securely can delegate the domain to another host); a redirect is not
 * followed. Each answer is bounded (XMPPUV__DISCOVER_BODY_MAX) and the
 * whole search by a timeout. Only wss:// links are taken, unless allow_ws
 * (plaintext tests). */
#ifndef XMPPUV_TRANSPORT_DISCOVER_H
#define XMPPUV_TRANSPORT_DISCOVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "transport/transport.h"

#define XMPPUV__DISCOVER_BODY_MAX (64u * 1024u)
#define XMPPUV__DISCOVER_TIMEOUT_MS 10000u

typedef struct xmppuv__discover xmppuv__discover_t;

typedef struct xmppuv__discover_config {
  const char *domain; /* the XMPP domain, ASCII */
  uint16_t port;      /* 0 = 443; tests use another */
  xmppuv__tls_ctx_t *tls_ctx;
  const char *dns_servers;
  uint64_t connect_timeout_ms;
  uint64_t timeout_ms; /* the whole search; 0 = XMPPUV__DISCOVER_TIMEOUT_MS */
  int allow_ws;
  const xmppuv__log_t *log;
} xmppuv__discover_config_t;

/* The outcome: status 0 and the URL, or an error (XMPPUV_ENOTFOUND: no
 * usable link; XMPPUV_ETIMEDOUT; a connect, TLS or certificate error;
 * XMPPUV_ETOOBIG, XMPPUV_EPROTO for an answer refused) with detail saying
 * what was tried and what came back. Both borrowed for the call. Runs from
 * the loop, once, unless cancelled first; the search is freed after it. */
typedef void (*xmppuv__discover_cb)(void *ud, int status, const char *url, const char *detail);

/* 0, XMPPUV_EINVAL, XMPPUV_ENOMEM (then cb never runs). */
int xmppuv__discover_start(uv_loop_t *loop, const xmppuv__discover_config_t *cfg,
                           xmppuv__discover_cb cb, void *ud, xmppuv__discover_t **out);

/* Stop: cb will not run; the search frees itself from the loop. */
void xmppuv__discover_cancel(xmppuv__discover_t *d);

#endif
