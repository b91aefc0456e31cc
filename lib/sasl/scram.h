/* SCRAM client (RFC 5802; SCRAM-SHA-256 RFC 7677; SHA-512 by the same
 * construction), with the -PLUS channel-binding variants. No I/O and no
 * XML: the session base64-encodes what this gives (xmppuv__sasl_payload_*)
 * into <auth/> and <response/>, and hands over the decoded <challenge/> and
 * <success/> data.
 *
 *   xmppuv__scram_new()          mechanism, credentials, gs2 flag from
 *                                xmppuv__sasl_choose(), binding data
 *   xmppuv__scram_client_first() -> client-first-message    (in <auth/>)
 *   xmppuv__scram_server_first() <- server-first-message    (<challenge/>)
 *                                -> client-final-message    (<response/>)
 *   xmppuv__scram_server_final() <- server-final-message    (<success/>)
 *   xmppuv__scram_free()
 *
 * Authentication has succeeded only when xmppuv__scram_server_final()
 * returns 0: a <success/> without a verifier that matches proves nothing
 * about the server (RFC 5802 §9). Each call runs once and in this order
 * (else XMPPUV_ESTATE); after any error the object only answers
 * xmppuv__scram_error_text() and xmppuv__scram_free().
 *
 * Hostile servers: every server message is parsed strictly. Syntax errors,
 * a nonce that does not extend ours, the reserved "m=" extension, an empty
 * or oversized salt and an iteration count above XMPPUV__SCRAM_MAX_ITERATIONS
 * (a server asking us to spin for minutes) are XMPPUV_EPROTO; fewer than
 * XMPPUV__SCRAM_MIN_ITERATIONS is XMPPUV_EAUTHITER; a wrong server signature
 * is XMPPUV_EAUTHSERVER; "e=" is XMPPUV_EAUTH with its text kept.
 *
 * Costs: PBKDF2 is the costly step. Measured with mbedTLS 2.28 on the
 * project's build machine, per 1000 iterations: SHA-1 0.5 ms, SHA-256
 * 1.3 ms, SHA-512 2 ms (so 4096 iterations of SHA-512 take about 10 ms, and
 * the cap below about 2 s). Given a password, xmppuv__scram_server_first()
 * runs it on the calling thread; without one (the client's way), it asks
 * for keys instead (XMPPUV__SCRAM_NEED_KEYS), which cached keys answer at
 * once and xmppuv__scram_derive() computes anywhere, the client on libuv's
 * thread pool.
 *
 * Secrets: the password is copied (prepared, RFC 8265 OpaqueString + NFC)
 * and wiped as soon as the keys are derived; keys are wiped by _free. None
 * of it is ever logged. Crypto comes from mbedTLS 2.28 (the 3.x spelling of
 * PBKDF2 is chosen by version, not compiled here). */
#ifndef XMPPUV_SCRAM_H
#define XMPPUV_SCRAM_H

#include <stddef.h>

#include "util/buf.h"
#include "sasl/sasl.h"

/* RFC 7677 §4: "SHOULD be at least 4096"; fewer are refused. */
#define XMPPUV__SCRAM_MIN_ITERATIONS 4096u
/* Our cap, far above what servers use (typically 4096 to 10000), so that a
 * hostile server cannot make us spin for minutes; more is XMPPUV_EPROTO. */
#define XMPPUV__SCRAM_MAX_ITERATIONS 1000000u
/* The longest salt accepted, decoded (servers use 12 to 32 bytes). */
#define XMPPUV__SCRAM_MAX_SALT 1024u
/* The longest key: SHA-512's 64 bytes. */
#define XMPPUV__SCRAM_KEY_MAX 64u
/* xmppuv__scram_server_first() and xmppuv__scram_client_final(): the
 * message was fine, but there are neither a password nor keys for the
 * server's salt and iteration count; supply keys. */
#define XMPPUV__SCRAM_NEED_KEYS 1

typedef struct xmppuv__scram xmppuv__scram_t;

/* mech: one of the SCRAM mechanisms.
 * authcid: the username (the JID localpart, already PRECIS-prepared by the
 *   JID code); prepared again (NFC) and escaped ("=2C", "=3D", RFC 5802
 *   §5.1) here. Copied.
 * password: copied (prepared) and wiped after use; may be NULL when keys
 *   will be supplied with xmppuv__scram_use_keys().
 * gs2_cb_flag: "n", "y" or "p=<type>", as xmppuv__sasl_choose() gives it.
 *   -PLUS mechanisms need "p=..." and cb_data; the others "n" or "y" and no
 *   cb_data.
 * cb_data, cb_len: the channel-binding data of that type for this TLS
 *   connection (RFC 5929 / RFC 9266). Copied.
 * client_nonce: NULL for 24 random bytes (mbedTLS CTR_DRBG), base64; tests
 *   pass the RFC examples' nonces. Printable ASCII without ','.
 * 0, XMPPUV_EINVAL (bad argument), XMPPUV_EUTF8, XMPPUV_ENOMEM,
 * XMPPUV_ECRYPTO (the random generator failed). */
int xmppuv__scram_new(xmppuv__mech_t mech, const char *authcid,
                      const char *password, const char *gs2_cb_flag,
                      const unsigned char *cb_data, size_t cb_len,
                      const char *client_nonce, xmppuv__scram_t **out);

/* XEP-0474 (SCRAM downgrade protection): what the server offered (the
 * mechanisms of the SASL profile in use, and the XEP-0440 channel-binding
 * types if it listed them), for checking the "h" attribute of its
 * server-first-message: a different hash fails the exchange with
 * XMPPUV_EDOWNGRADE (someone changed the offer on the way). A server that
 * sends no "h" is not checked. 0, XMPPUV_ENOMEM, XMPPUV_ECRYPTO,
 * XMPPUV_EINVAL (more than 64 of either). */
int xmppuv__scram_expect_ssdp(xmppuv__scram_t *s, const char *const *mechs, size_t n_mechs,
                              int cb_advertised, const char *const *cb_types, size_t n_cb);

/* Appends the client-first-message (gs2-header + client-first-message-bare)
 * to out. 0, XMPPUV_ESTATE, XMPPUV_ENOMEM. On error out is as it was. */
int xmppuv__scram_client_first(xmppuv__scram_t *s, xmppuv__buf_t *out);

/* Takes the server-first-message (msg[0..len), not NUL-terminated) and
 * appends the client-final-message to client_final. 0, XMPPUV_EPROTO,
 * XMPPUV_EAUTHITER, XMPPUV_ESTATE, XMPPUV_ENOMEM, XMPPUV_ECRYPTO, or
 * XMPPUV__SCRAM_NEED_KEYS: no password was given and no keys were offered
 * for the server's salt and iteration count. Then the caller derives them
 * (xmppuv__scram_key_request(), xmppuv__scram_derive(), on another thread
 * if it likes: PBKDF2 is the costly part), offers them with
 * xmppuv__scram_use_keys() and gets the message from
 * xmppuv__scram_client_final(). */
int xmppuv__scram_server_first(xmppuv__scram_t *s, const char *msg, size_t len,
                               xmppuv__buf_t *client_final);

/* After XMPPUV__SCRAM_NEED_KEYS: what to derive keys for. The salt is
 * borrowed until the next call on s. 0 or XMPPUV_ESTATE. */
int xmppuv__scram_key_request(const xmppuv__scram_t *s, xmppuv__mech_t *mech,
                              const unsigned char **salt, size_t *salt_len,
                              unsigned int *iterations);
/* After XMPPUV__SCRAM_NEED_KEYS and xmppuv__scram_use_keys(): appends the
 * client-final-message. 0, XMPPUV__SCRAM_NEED_KEYS (the keys offered are
 * for another salt, count or hash), XMPPUV_ESTATE, XMPPUV_ENOMEM,
 * XMPPUV_ECRYPTO. */
int xmppuv__scram_client_final(xmppuv__scram_t *s, xmppuv__buf_t *client_final);

/* Takes the server-final-message. 0: the server proved it knows the
 * password, authentication is complete. XMPPUV_EAUTHSERVER: it did not
 * (abort: this is not the server the password belongs to).
 * XMPPUV_EAUTH: "e=" (text in xmppuv__scram_error_text()). XMPPUV_EPROTO,
 * XMPPUV_ESTATE, XMPPUV_ENOMEM. */
int xmppuv__scram_server_final(xmppuv__scram_t *s, const char *msg, size_t len);

/* The server-error-value of an "e=" message ("invalid-proof", ...), or
 * NULL. Valid until xmppuv__scram_free(). */
const char *xmppuv__scram_error_text(const xmppuv__scram_t *s);

/* Wipes every secret and frees. NULL is a no-op. */
void xmppuv__scram_free(xmppuv__scram_t *s);

/* ---- cached keys (RFC 5802 §3: "the client can cache ClientKey/ServerKey")
 * After a verified exchange, the derived keys for the server's salt and
 * iteration count can be exported, so a reconnect skips PBKDF2 and the app
 * need not keep the password. They are password-equivalent for this
 * account on this server: keep them as carefully. */
typedef struct xmppuv__scram_keys xmppuv__scram_keys_t;

/* Derive ClientKey and ServerKey (RFC 5802 §3) for mech from a password
 * already prepared (xmppuv__sasl_prep), into client_key and server_key
 * (*key_len bytes each). The cost is PBKDF2 with `iterations` rounds. It
 * touches only its arguments and allocates nothing through xmppuv's
 * allocator, so it may run on a thread pool. 0, XMPPUV_EINVAL,
 * XMPPUV_ECRYPTO, XMPPUV_ENOMEM (mbedTLS could not allocate). */
int xmppuv__scram_derive(xmppuv__mech_t mech, const char *prepared_password,
                         size_t password_len, const unsigned char *salt,
                         size_t salt_len, unsigned int iterations,
                         unsigned char client_key[XMPPUV__SCRAM_KEY_MAX],
                         unsigned char server_key[XMPPUV__SCRAM_KEY_MAX],
                         size_t *key_len);
/* A keys object from derived keys (all copied). 0, XMPPUV_EINVAL,
 * XMPPUV_ENOMEM. */
int xmppuv__scram_keys_new(xmppuv__mech_t mech, const unsigned char *salt,
                           size_t salt_len, unsigned int iterations,
                           const unsigned char *client_key,
                           const unsigned char *server_key, size_t key_len,
                           xmppuv__scram_keys_t **out);

/* Only after xmppuv__scram_server_final() returned 0 (else XMPPUV_ESTATE).
 * *out is freed with xmppuv__scram_keys_free(). 0, XMPPUV_ENOMEM. */
int xmppuv__scram_keys_export(const xmppuv__scram_t *s,
                              xmppuv__scram_keys_t **out);
/* Offer keys to use if the server's salt and iteration count (and the hash)
 * match; copied. Before xmppuv__scram_server_first(), or after it returned
 * XMPPUV__SCRAM_NEED_KEYS. 0, XMPPUV_ESTATE, XMPPUV_ENOMEM. */
int xmppuv__scram_use_keys(xmppuv__scram_t *s,
                           const xmppuv__scram_keys_t *keys);
/* Non-zero if the last xmppuv__scram_server_first() used keys offered
 * before it (a cache) rather than the password or keys derived on its
 * request. */
int xmppuv__scram_used_cached_keys(const xmppuv__scram_t *s);
/* The SCRAM mechanism (without -PLUS) whose hash the keys are for. */
xmppuv__mech_t xmppuv__scram_keys_mech(const xmppuv__scram_keys_t *k);
/* A copy of keys. 0, XMPPUV_ENOMEM. */
int xmppuv__scram_keys_copy(const xmppuv__scram_keys_t *from,
                            xmppuv__scram_keys_t **out);
/* Wipes and frees. NULL is a no-op. */
void xmppuv__scram_keys_free(xmppuv__scram_keys_t *k);

#endif
