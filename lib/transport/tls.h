/* The TLS filter: mbedTLS over memory buffers, with no I/O of its own.
 *
 * mbedTLS never sees a socket. The driver (transport/client code on libuv)
 * moves bytes: ciphertext read from the socket goes into xmppuv__tls_feed(),
 * ciphertext to send comes out of xmppuv__tls_out(); plaintext goes in with
 * xmppuv__tls_write() and comes out of xmppuv__tls_read(). The same filter
 * serves both modes:
 *   - STARTTLS (RFC 6120 §5.4): create the filter after <proceed/> and feed
 *     it only the bytes that follow that element;
 *   - direct TLS (XEP-0368): create it right after the TCP connect, with
 *     alpn = 1 so the ClientHello offers "xmpp-client" (XEP-0368
 *     Requirements: SNI MUST be the JID's domain, ALPN SHOULD be set); the
 *     server is not required to select it, and most do not.
 *
 * Verification (on unless insecure mode is asked for):
 *   - the certificate chain must lead to a trusted CA: the configured CA
 *     file/directory, else the system bundle found at the usual paths;
 *   - the certificate must name the XMPP domain given to xmppuv__tls_new()
 *     (the JID's domainpart, never the SRV target and never an IP address:
 *     RFC 6120 §13.7.2, RFC 6125 §6); the same name goes in SNI;
 *   - it must be within its validity dates (mbedTLS reads the system clock
 *     for this, the one place the filter does);
 *   - a chain that a context has verified for a name is not checked again
 *     for that name while its dates hold (transport/cert_cache.h: about a
 *     third of a client handshake's CPU); the name, dates, key usage and
 *     the server's signature over the key exchange are checked every time;
 *   - once the handshake is done the server's certificates are freed, so
 *     tls-server-end-point channel binding could not be offered;
 *   - TLS 1.2 is the minimum version; renegotiation is off; a session is
 *     resumed only as xmppuv__tls_session_offer() below says (tls-unique
 *     on a resumed session needs the extended master secret).
 * A pin (SHA-256 of the server's public key or certificate) replaces all of
 * the above: a certificate matching the pin is accepted whatever its issuer,
 * names or dates (those are logged at INFO level), and one that does not
 * match is refused with XMPPUV_ECERTPIN. Insecure mode accepts anything and
 * logs a WARN line on every handshake.
 *
 * Threads: a context and the connections made from it belong to one thread
 * (the one running their uv_loop_t), like everything else in a client.
 * Memory: xmppuv's own memory comes from xmppuv__malloc; mbedTLS allocates
 * its record buffers, certificates and handshake state with the C library's
 * calloc/free (Debian builds mbedTLS without MBEDTLS_PLATFORM_MEMORY). */
#ifndef XMPPUV_TRANSPORT_TLS_H
#define XMPPUV_TRANSPORT_TLS_H

#include <stddef.h>

#include "util/log.h"

typedef struct xmppuv__tls_config {
  /* PEM or DER CA certificates to trust: a file, a directory of files, or
   * both. Both NULL: the system bundle (Debian, Fedora, openSUSE, Alpine,
   * macOS, FreeBSD, OpenBSD paths). Ignored when pin or insecure is set.
   * Borrowed: read during xmppuv__tls_ctx_new() only. */
  const char *ca_file;
  const char *ca_path;
  /* NULL, or one pin in either form:
   *   "sha256//<base64>"  SHA-256 of the certificate's SubjectPublicKeyInfo
   *                       (curl's --pinnedpubkey form; survives renewals
   *                       that keep the key);
   *   64 hex digits, ':' between bytes allowed (openssl x509 -fingerprint
   *                       -sha256 output): SHA-256 of the certificate DER.
   * Borrowed: parsed during xmppuv__tls_ctx_new(). */
  const char *pin;
  /* Non-zero: no verification at all; every handshake logs a WARN line.
   * Cannot be combined with pin (XMPPUV_EINVAL). */
  int insecure;
  /* Where log lines go (area "tls"); may be NULL. Borrowed: it must outlive
   * the context and every connection made from it. */
  const xmppuv__log_t *log;
  /* A client certificate (PEM or DER, the leaf first, then any
   * intermediates) and its private key (PEM or DER, unencrypted), presented
   * when the server asks for one (SASL EXTERNAL, XEP-0178). Both or
   * neither. Borrowed: read during xmppuv__tls_ctx_new() only. */
  const char *cert_file;
  const char *key_file;
} xmppuv__tls_config_t;

/* Shared, refcounted configuration: trusted CAs, pin, the entropy source and
 * the CTR_DRBG. Make one per client configuration and share it between its
 * connections; parsing the system bundle costs a few hundred KB and some
 * milliseconds, which should not be paid per connection. */
typedef struct xmppuv__tls_ctx xmppuv__tls_ctx_t;

/* One TLS connection (client side). */
typedef struct xmppuv__tls xmppuv__tls_t;

/* The largest channel binding value this filter returns (bytes). */
#define XMPPUV__TLS_CB_MAX 64

/* Create a context with one reference. Errors: XMPPUV_ECAFILE (CA file or
 * directory unreadable or holding no usable certificate, or no system bundle
 * found; the log says which paths were tried), XMPPUV_ECLIENTCERT (the
 * client certificate or key unreadable, or not a pair; the log says
 * which), XMPPUV_EINVAL (malformed pin, pin together with insecure, only
 * one of cert_file and key_file), XMPPUV_ETLS (random generator failed to seed),
 * XMPPUV_ENOMEM. On error *out is untouched. */
int xmppuv__tls_ctx_new(const xmppuv__tls_config_t *cfg,
                        xmppuv__tls_ctx_t **out);
/* The same, but shared: a context with exactly these trust settings
 * (ca_file, ca_path, pin, insecure) made earlier on this thread and still
 * referenced is returned with one more reference; otherwise a new one is
 * made and remembered until its last reference goes. A context with a
 * client certificate is shared by the same certificate and key files. A shared context logs
 * nothing after creation: set each connection's log with
 * xmppuv__tls_set_log(). Same errors as xmppuv__tls_ctx_new(). */
int xmppuv__tls_ctx_shared(const xmppuv__tls_config_t *cfg,
                           xmppuv__tls_ctx_t **out);
void xmppuv__tls_ctx_ref(xmppuv__tls_ctx_t *ctx);
/* Drop a reference; the last one frees it. NULL is a no-op. */
void xmppuv__tls_ctx_unref(xmppuv__tls_ctx_t *ctx);

#define XMPPUV__ALPN_NONE 0
#define XMPPUV__ALPN_XMPP 1 /* "xmpp-client" */
#define XMPPUV__ALPN_HTTP 2 /* "http/1.1" */

/* Start a connection. server_name is the XMPP domain in ASCII (A-label)
 * form, used for SNI and for the certificate name check; it is copied.
 * alpn: what the ClientHello offers (XMPPUV__ALPN_XMPP for direct TLS,
 * XMPPUV__ALPN_HTTP for a WebSocket over TLS). Takes a reference on
 * ctx. Errors: XMPPUV_EINVAL (empty, non-ASCII or over-long name),
 * XMPPUV_ENOMEM, XMPPUV_ETLS. Nothing is sent until the first
 * xmppuv__tls_handshake() call, which queues the ClientHello. */
int xmppuv__tls_new(xmppuv__tls_ctx_t *ctx, const char *server_name, int alpn,
                    xmppuv__tls_t **out);
/* Where this connection's log lines go (by default the context's). */
void xmppuv__tls_set_log(xmppuv__tls_t *t, const xmppuv__log_t *log);

/* Free the connection (no close_notify is produced; call
 * xmppuv__tls_close_notify() first for a graceful close). NULL is a no-op.
 * Secrets are wiped. */
void xmppuv__tls_free(xmppuv__tls_t *t);

/* Ciphertext from the network, copied into the filter. Nothing is decrypted
 * until xmppuv__tls_handshake() or xmppuv__tls_read() runs. 0 or
 * XMPPUV_ENOMEM (or the connection's earlier error). */
int xmppuv__tls_feed(xmppuv__tls_t *t, const char *data, size_t len);
/* The network reported end of stream. Data already fed can still be read;
 * once it is consumed, handshake/read report how the stream ended:
 * XMPPUV_EEOF at a record boundary after the handshake (XMPP servers often
 * close TCP without close_notify; the </stream:stream> exchange is what
 * protects XMPP from truncation), XMPPUV_ETLS in the middle of a record or
 * during the handshake. */
void xmppuv__tls_feed_eof(xmppuv__tls_t *t);

/* Run the handshake as far as the input allows. Returns 0 while more input
 * is needed, 1 once the handshake is complete (and on every later call), or
 * an error:
 *   XMPPUV_ECERTUNTRUSTED  chain does not lead to a trusted CA;
 *   XMPPUV_ECERTEXPIRED    certificate (or an issuer) expired;
 *   XMPPUV_ECERTFUTURE     certificate (or an issuer) not yet valid;
 *   XMPPUV_ECERTNAME       certificate does not name the XMPP domain;
 *   XMPPUV_ECERTPIN        certificate does not match the pin;
 *   XMPPUV_ECERTINVALID    other certificate problems (key usage, weak
 *                          signature hash or key, unparsable certificate);
 *   XMPPUV_ETLS            protocol failure or alert from the server (the
 *                          mbedTLS code and text are logged);
 *   XMPPUV_EEOF/ETLS       the stream ended (see xmppuv__tls_feed_eof);
 *   XMPPUV_ENOMEM.
 * When several certificate problems apply, the first in the order above is
 * returned and the log line (ERROR, naming the domain) lists them all.
 * After an error, xmppuv__tls_out() may still hold the alert telling the
 * server why; sending it is polite, not required. Errors are sticky: every
 * later call returns the same code. Plaintext written during the handshake
 * is encrypted and queued the moment it completes. */
int xmppuv__tls_handshake(xmppuv__tls_t *t);

/* Decrypted plaintext: copies up to size bytes into buf and sets *n; *n == 0
 * with a 0 return means more input is needed. Call it until *n == 0 after
 * every feed once the handshake is complete (a single feed may carry many
 * records). Returns XMPPUV_EEOF once the server's close_notify is read (or
 * the stream ended cleanly, see xmppuv__tls_feed_eof), XMPPUV_ESTATE before
 * the handshake is complete, or a sticky error. */
int xmppuv__tls_read(xmppuv__tls_t *t, char *buf, size_t size, size_t *n);

/* Plaintext to send: all of it is encrypted (or, before the handshake
 * completes, queued and encrypted when it does); never partial, never
 * dropped. Errors: XMPPUV_ESTATE after close_notify, XMPPUV_ENOMEM, or a
 * sticky error. */
int xmppuv__tls_write(xmppuv__tls_t *t, const char *data, size_t len);

/* Ciphertext waiting to be sent, in order: *len bytes at the returned
 * pointer (NULL and 0 when there is nothing). The pointer is valid until the
 * next call of any other xmppuv__tls_* function on t: copy the bytes (or hand
 * them to uv_try_write) before calling anything else, then consume what was
 * taken. */
const char *xmppuv__tls_out(xmppuv__tls_t *t, size_t *len);
void xmppuv__tls_out_consume(xmppuv__tls_t *t, size_t n);

/* Queue a close_notify alert (RFC 5246 §7.2.1); later writes fail with
 * XMPPUV_ESTATE. Returns 0, XMPPUV_ESTATE before the handshake completed,
 * or a sticky error. */
int xmppuv__tls_close_notify(xmppuv__tls_t *t);

/* Channel binding data for SCRAM-*-PLUS (RFC 5802 §6, XEP-0440). *len is
 * the size of out on entry (XMPPUV__TLS_CB_MAX is always enough) and the
 * length written on return. type:
 *   "tls-unique"   RFC 5929 §3.1: the first Finished message of the
 *                  handshake; the client's, since this filter never resumes
 *                  sessions. 12 bytes with TLS 1.2. Not defined for TLS 1.3,
 *                  and not available with mbedTLS 3.x (it keeps the Finished
 *                  message private).
 *   "tls-exporter" RFC 9266 §2: the RFC 5705 exporter with label
 *                  "EXPORTER-Channel-Binding", a zero-length context and 32
 *                  bytes. On TLS 1.2 only when the server agreed to the
 *                  extended master secret (RFC 9266 Security
 *                  Considerations; RFC 7627 §5.4: no key material may be
 *                  exported for authentication without it).
 * Returns XMPPUV_ESTATE before the handshake is complete, XMPPUV_EINVAL for
 * an unknown type or one this connection cannot honestly provide,
 * XMPPUV_ETOOBIG if out is too small. */
int xmppuv__tls_channel_binding(xmppuv__tls_t *t, const char *type,
                                unsigned char *out, size_t *len);

/* RFC 5705 keying material exporter (TLS 1.2 with extended master secret
 * only; XMPPUV_EINVAL otherwise). use_context == 0 means "no context" and
 * differs from a zero-length context (RFC 5705 §4). context_len is limited to
 * 256 bytes. Same errors as xmppuv__tls_channel_binding(). */
int xmppuv__tls_export_keying_material(xmppuv__tls_t *t, const char *label,
                                       const unsigned char *context,
                                       size_t context_len, int use_context,
                                       unsigned char *out, size_t len);

/* After the handshake: "TLSv1.2", the IANA-style suite name mbedTLS uses
 * ("TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"), and the ALPN protocol the
 * server selected (NULL if none). Static strings; NULL before the handshake
 * completes. */
/* TLS session resumption (an abbreviated handshake: one round trip less).
 * After a handshake, the session to offer the next connection to the same
 * server (*out to free with xmppuv__tls_session_free; NULL when the server
 * gave neither a session ID nor a ticket, or in pin mode, whose decision
 * needs the certificate a resumption does not show): 0 or XMPPUV_ENOMEM.
 * Before a handshake, offer one (ignored for another server name, and in
 * pin mode). Non-zero once a handshake resumed the session offered. */
typedef struct xmppuv__tls_session xmppuv__tls_session_t;
int xmppuv__tls_session_save(xmppuv__tls_t *t, xmppuv__tls_session_t **out);
void xmppuv__tls_session_offer(xmppuv__tls_t *t, const xmppuv__tls_session_t *s);
void xmppuv__tls_session_free(xmppuv__tls_session_t *s);
int xmppuv__tls_resumed(const xmppuv__tls_t *t);

const char *xmppuv__tls_version(const xmppuv__tls_t *t);
const char *xmppuv__tls_ciphersuite(const xmppuv__tls_t *t);
const char *xmppuv__tls_alpn(const xmppuv__tls_t *t);

/* What the last failure was, in words (which check failed and why, what
 * the server seemed to speak), or NULL. */
const char *xmppuv__tls_error_text(const xmppuv__tls_t *t);

/* Tests: how many server chains ctx has checked in full (a chain found in
 * its cache of verified chains is not checked again), or -1 where this
 * build of mbedTLS does every check itself (no cache). */
long xmppuv__tls_ctx_chain_checks(const xmppuv__tls_ctx_t *ctx);
/* Tests: moves the clock the cache compares validity dates with by
 * seconds (mbedTLS's own checks still read the real clock). */
void xmppuv__tls_ctx_skew_clock(xmppuv__tls_ctx_t *ctx, long seconds);

#endif
