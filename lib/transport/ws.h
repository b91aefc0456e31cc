/* The WebSocket transport (RFC 7395): xmppuv__ws_transport in transport.h,
 * and the same open by name. See ws.c. */
#ifndef XMPPUV_TRANSPORT_WS_H
#define XMPPUV_TRANSPORT_WS_H

#include <stddef.h>
#include <uv.h>

#include "transport/transport.h"

/* Connect to url (ws:// or wss://) and upgrade to a WebSocket; connected
 * follows the server's 101. cfg's domain, host and port are not used: the
 * URL says where, and wss:// is verified against the URL's host. ws:// only
 * with XMPPUV_TLS_DISABLED_INSECURE, wss:// never with it. max_message:
 * the largest message taken (0 = 1 MiB). 0, XMPPUV_EINVAL (not such a URL,
 * or the wrong scheme for the TLS mode), XMPPUV_ENOMEM. */
int xmppuv__ws_open(uv_loop_t *loop, const char *url, size_t max_message,
                    const xmppuv__transport_config_t *cfg, const xmppuv__transport_events_t *ev,
                    void *ud, xmppuv__transport_t **out);

#endif
