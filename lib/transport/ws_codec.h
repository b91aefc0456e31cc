/* WebSocket messages for XMPP (RFC 6455 framing, RFC 7395 §3.3), without
 * I/O: the bytes after the opening handshake in, whole text messages out;
 * the session's XML in, one masked text frame per top-level element out.
 *
 * The framing itself is wslay's (libwslay, event API, client mode): it
 * masks what we send, reassembles fragmented messages, answers pings with
 * pongs and a Close with a Close, and refuses what RFC 6455 forbids (a
 * masked server frame, reserved bits, bad UTF-8 in a text message: Close
 * 1002 or 1007). On top of it, what RFC 7395 asks: text messages only (a
 * binary one gets Close 1003), each at most max_message bytes (Close 1009;
 * the same limit as the largest stanza taken), and each one element: the
 * session's output, which may hold several elements, is split here at the
 * top-level element boundaries. Whitespace between elements (a keepalive
 * over TCP) is not a message: Prosody closes on a text frame that does not
 * start with '<'. */
#ifndef XMPPUV_WS_CODEC_H
#define XMPPUV_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct xmppuv__ws_codec xmppuv__ws_codec_t;

/* RFC 6455 §7.4.1 close codes the transport names. */
#define XMPPUV__WS_NORMAL 1000
#define XMPPUV__WS_GOING_AWAY 1001
#define XMPPUV__WS_PROTOCOL_ERROR 1002
#define XMPPUV__WS_UNSUPPORTED_DATA 1003
#define XMPPUV__WS_NO_STATUS 1005
#define XMPPUV__WS_ABNORMAL 1006
#define XMPPUV__WS_INVALID_DATA 1007
#define XMPPUV__WS_TOO_BIG 1009

/* 0, XMPPUV_ENOMEM. */
int xmppuv__ws_codec_new(size_t max_message, xmppuv__ws_codec_t **out);
void xmppuv__ws_codec_free(xmppuv__ws_codec_t *c);

/* Bytes from the server. Each whole text message is appended to msgs as it
 * came; frames we owe (pongs, the answer to a Close, our Close after an
 * error) are appended to out, to be written. Returns 0 (go on), 1 (the
 * server closed the WebSocket: its code in *code, our answering Close in
 * out), or an error after which nothing more is read: XMPPUV_ELIMIT (a
 * message over the limit), XMPPUV_EPROTO (a binary message, bad framing,
 * bad UTF-8), with our Close in out, its code in *code, and a sentence in
 * why. XMPPUV_ENOMEM. */
int xmppuv__ws_codec_read(xmppuv__ws_codec_t *c, const char *data, size_t len,
                          xmppuv__buf_t *msgs, xmppuv__buf_t *out, uint16_t *code, char *why,
                          size_t why_size);

/* The session's XML (whole elements, or the start of one: the rest is kept
 * until it comes): a text frame per top-level element, appended to out.
 * 0, XMPPUV_ENOMEM, XMPPUV_ECRYPTO (no random mask), XMPPUV_EXML (text
 * outside any element: a bug above), XMPPUV_ESTATE (after a Close). */
int xmppuv__ws_codec_write(xmppuv__ws_codec_t *c, const char *xml, size_t len,
                           xmppuv__buf_t *out);

/* A ping frame (empty payload). 0, XMPPUV_ENOMEM, XMPPUV_ECRYPTO, XMPPUV_ESTATE. */
int xmppuv__ws_codec_ping(xmppuv__ws_codec_t *c, xmppuv__buf_t *out);

/* Our Close frame with code (no reason), once; later calls do nothing. 0,
 * XMPPUV_ENOMEM, XMPPUV_ECRYPTO. */
int xmppuv__ws_codec_close(xmppuv__ws_codec_t *c, uint16_t code, xmppuv__buf_t *out);

/* 1 once a Close was sent (nothing more may be). */
int xmppuv__ws_codec_close_sent(const xmppuv__ws_codec_t *c);

/* "1000 (normal closure)", for error texts. Static. */
const char *xmppuv__ws_close_name(uint16_t code);

#endif
