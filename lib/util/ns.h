/* The XML namespaces the library speaks, defined once. */
#ifndef XMPPUV_NS_H
#define XMPPUV_NS_H

/* RFC 6120 and RFC 6121 */
#define XMPPUV__NS_STREAMS "http://etherx.jabber.org/streams"
#define XMPPUV__NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define XMPPUV__NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define XMPPUV__NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define XMPPUV__NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define XMPPUV__NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define XMPPUV__NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
/* XEP-0198 Stream Management */
#define XMPPUV__NS_SM "urn:xmpp:sm:3"
/* XEP-0203 Delayed Delivery */
#define XMPPUV__NS_DELAY "urn:xmpp:delay"
/* XEP-0199 XMPP Ping */
#define XMPPUV__NS_PING "urn:xmpp:ping"
/* XEP-0352 Client State Indication */
#define XMPPUV__NS_CSI "urn:xmpp:csi:0"
/* XEP-0388 SASL2 */
#define XMPPUV__NS_SASL2 "urn:xmpp:sasl:2"
/* XEP-0386 Bind 2 */
#define XMPPUV__NS_BIND2 "urn:xmpp:bind:0"
#define XMPPUV__NS_FAST "urn:xmpp:fast:0"
/* XEP-0440 SASL channel-binding type capability */
#define XMPPUV__NS_SASL_CB "urn:xmpp:sasl-cb:0"
/* XEP-0478 Stream Limits Advertisement */
#define XMPPUV__NS_STREAM_LIMITS "urn:xmpp:stream-limits:0"
/* RFC 7395 XMPP over WebSocket */
#define XMPPUV__NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

#endif
