/* XEP-0156 connection discovery without I/O: the WebSocket endpoint in a
 * host-meta document (RFC 6415), as XRD (XML, /.well-known/host-meta) or
 * JRD (JSON, /.well-known/host-meta.json).
 *
 * XEP-0156 §3.2: "MUST only use connection URLs starting with 'https://' or
 * 'wss://'": a ws:// link is taken only when the caller allows plaintext
 * (allow_ws), and even then a wss:// link is preferred wherever it comes
 * (the order of link entries is not significant, XEP-0156 §3.2 rule 5).
 *
 * The JSON is read by a small strict scanner of our own (RFC 8259: UTF-8,
 * escapes with surrogate pairs, nesting bounded by XMPPUV__HOSTMETA_DEPTH);
 * the XML by expat, namespace-aware, with DTDs and entity declarations
 * refused. The document's size is bounded by the caller (the HTTP body's
 * bound). Nothing is kept between calls; thread-safe. */
#ifndef XMPPUV_HOSTMETA_H
#define XMPPUV_HOSTMETA_H

#include <stddef.h>

#define XMPPUV__HOSTMETA_DEPTH 32
/* XEP-0156 §3.1 */
#define XMPPUV__REL_WEBSOCKET "urn:xmpp:alt-connections:websocket"
#define XMPPUV__XRD_NS "http://docs.oasis-open.org/ns/xri/xrd-1.0"

/* The WebSocket endpoint in the host-meta document doc[0..len): JRD if json
 * != 0 ({"links":[{"rel":..., "href":...}]}, the top-level "links" array's
 * objects), else XRD (<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>
 * <Link rel=... href=.../></XRD>, Link children of the root in the XRD
 * namespace). A link counts if its rel is XMPPUV__REL_WEBSOCKET; its href is
 * taken if it is a wss:// URL (or ws:// when allow_ws != 0), the scheme
 * matched without regard to case and written in lower case. The first wss://
 * link is taken, else the first ws:// one; its href is copied to url
 * (NUL-terminated, at most url_size bytes).
 *   0: found;
 *   XMPPUV_ENOTFOUND: no such link; why says whether there were WebSocket
 *     links refused as ws:// ("the host-meta offers only ws:// (plaintext)
 *     WebSocket links, refused") or none at all;
 *   XMPPUV_EPROTO: not a JRD/XRD document, or malformed (why says where);
 *     a DTD or an entity declaration; nesting over XMPPUV__HOSTMETA_DEPTH;
 *   XMPPUV_ETOOBIG: the href taken is longer than url_size - 1 (url is "");
 *   XMPPUV_ENOMEM.
 * why: NUL-terminated, at most why_size bytes; "" on success. url is "" on
 * every error. */
int xmppuv__hostmeta_websocket(const char *doc, size_t len, int json, int allow_ws, char *url,
                               size_t url_size, char *why, size_t why_size);

#endif
