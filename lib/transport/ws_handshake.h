/* The opening handshake of a WebSocket for XMPP (RFC 6455 §4, RFC 7395
 * §3.3), without I/O: the URL, the HTTP/1.1 Upgrade request, and the
 * server's answer checked byte by byte as it arrives.
 *
 * The answer must be "101" with Upgrade: websocket, Connection: Upgrade,
 * the Sec-WebSocket-Accept that belongs to our key, and the subprotocol
 * "xmpp" (RFC 7395 §3.3: a server without it does not speak XMPP there).
 * Anything else is refused with a sentence for the app that quotes the
 * status line; a redirect names its Location and is not followed here (the
 * transport decides). Bytes after the answer belong to the WebSocket: the
 * caller gets their offset. The answer is bounded (XMPPUV__WS_ANSWER_MAX):
 * a server that sends more headers than that is refused, not buffered.
 * Its form (status line, header lines ending in CRLF, no folding) is
 * checked by http.c's head reader line by line, so a wrong line is refused
 * when it comes; this file judges the fields. */
#ifndef XMPPUV_WS_HANDSHAKE_H
#define XMPPUV_WS_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "transport/http.h"
#include "util/buf.h"

#define XMPPUV__WS_ANSWER_MAX XMPPUV__HTTP_HEAD_MAX

/* ws://host[:port][/path] or wss://... Host names and IPv6 literals in
 * brackets; no user info, no fragment. */
typedef struct xmppuv__ws_url {
  int tls;        /* wss */
  char host[256]; /* without brackets */
  uint16_t port;  /* given, else 80 / 443 */
  char path[1024]; /* "/" if none; the query kept */
  int ipv6;       /* the host was a bracketed IPv6 literal */
} xmppuv__ws_url_t;

/* 0, or XMPPUV_EINVAL (not such a URL: why in *why, static). */
int xmppuv__ws_url_parse(const char *url, xmppuv__ws_url_t *out, const char **why);

typedef struct xmppuv__ws_handshake {
  char key[25];    /* Sec-WebSocket-Key: base64 of 16 random bytes */
  char accept[29]; /* the Sec-WebSocket-Accept that must come back */
  xmppuv__http_head_t answer; /* read by http.c's head reader */
  int done;
} xmppuv__ws_handshake_t;

/* The request for url, with nonce (16 random bytes) as the key, appended
 * to out. 0, XMPPUV_ENOMEM, XMPPUV_ECRYPTO (SHA-1). */
int xmppuv__ws_request(xmppuv__ws_handshake_t *hs, const xmppuv__ws_url_t *url,
                       const unsigned char nonce[16], xmppuv__buf_t *out);

/* Bytes of the answer. 0: more are needed (all of them taken). 1: the
 * answer is complete and right; *used says how many of these bytes were
 * part of it (the rest is WebSocket data). XMPPUV_EWRONGSERVER: refused,
 * why (NUL-terminated, at most why_size) says why in words. XMPPUV_ESTATE
 * after the answer was complete. */
int xmppuv__ws_answer(xmppuv__ws_handshake_t *hs, const char *data, size_t len, size_t *used,
                      char *why, size_t why_size);

#endif
