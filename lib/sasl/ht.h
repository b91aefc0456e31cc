/* The Hashed Token SASL mechanisms (HT-*, draft-schmaus-kitten-sasl-ht),
 * which FAST (XEP-0484) logs in with: one message each way, keyed by a
 * token the server gave out earlier.
 *
 *   client: authcid NUL HMAC(token, "Initiator" || cb-data)
 *   server: HMAC(token, "Responder" || cb-data)   (SASL2 additional data)
 *
 * The name says the hash and the channel binding: HT-SHA-256-NONE (none),
 * -UNIQ (tls-unique), -ENDP (tls-server-end-point), -EXPR (tls-exporter).
 * No I/O, no XML; nothing here logs, and every buffer holding a token or a
 * message made from one is wiped before it is freed or given back. */
#ifndef XMPPUV_SASL_HT_H
#define XMPPUV_SASL_HT_H

#include <stddef.h>

#include "util/buf.h"

typedef struct xmppuv__ht {
  int sha512;          /* SHA-512, else SHA-256 */
  const char *cb_type; /* the binding it needs ("tls-exporter"...), NULL: none */
} xmppuv__ht_t;

/* A mechanism name this module knows: 0 and *out, or XMPPUV_ENOMECH. */
int xmppuv__ht_parse(const char *name, xmppuv__ht_t *out);

/* The strongest HT mechanism of the server's list (borrowed names) this
 * connection can use: SHA-512 before SHA-256; channel-bound by tls-exporter,
 * then tls-unique, then tls-server-end-point where have_cb says the TLS
 * layer has that binding; NONE last. NULL if none. */
const char *xmppuv__ht_choose(const char *const *offered, size_t n,
                              int (*have_cb)(void *ud, const char *type), void *ud);

/* The client's message (appended to out: wipe it). 0, XMPPUV_ENOMEM,
 * XMPPUV_ECRYPTO. */
int xmppuv__ht_initial(const xmppuv__ht_t *ht, const char *authcid, const char *token,
                       const unsigned char *cb, size_t cb_len, xmppuv__buf_t *out);
/* The server's message checks out (constant time): 0, or
 * XMPPUV_EAUTHSERVER; XMPPUV_ECRYPTO. */
int xmppuv__ht_verify(const xmppuv__ht_t *ht, const char *token, const unsigned char *cb,
                      size_t cb_len, const void *data, size_t len);

#endif
