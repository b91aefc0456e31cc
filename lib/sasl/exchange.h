/* One SASL exchange (RFC 4422), apart from how it is wrapped on the wire:
 * the mechanism choice, the messages of SCRAM (with channel binding), PLAIN,
 * ANONYMOUS and EXTERNAL, and the credentials they wait for. RFC 6120 SASL
 * (<auth/>, <challenge/>, <response/>, <success/>) and XEP-0388 SASL2
 * (<authenticate/>, <initial-response/>, ...) wrap the same exchange; the
 * session does the wrapping and the base64.
 *
 * Credentials: the exchange never asks anyone for them. When it needs the
 * password (PLAIN) or SCRAM keys for the server's salt and iteration count
 * (SCRAM: keys offered beforehand are used when they fit, so a reconnection
 * to the same server needs neither the password nor PBKDF2), a step returns
 * XMPPUV__SASL_WAIT and xmppuv__sasl_exchange_need() says what; the caller
 * gets it (the client derives keys on libuv's thread pool) and goes on with
 * xmppuv__sasl_exchange_password() or xmppuv__sasl_exchange_keys().
 *
 * Every output is raw bytes (not base64) appended to `out`; it may hold the
 * password (PLAIN): wipe it with xmppuv__sasl_buf_wipe(). No I/O, no XML, no
 * clock; nothing here logs a secret. */
#ifndef XMPPUV_SASL_EXCHANGE_H
#define XMPPUV_SASL_EXCHANGE_H

#include <stddef.h>

#include "sasl/sasl.h"
#include "sasl/scram.h"
#include "util/buf.h"

typedef struct xmppuv__sasl_exchange xmppuv__sasl_exchange_t;

/* A step's outcome besides 0 (out holds what to send) and errors. */
#define XMPPUV__SASL_WAIT 1

typedef struct xmppuv__sasl_exchange_config {
  const char *username; /* authcid: the JID's localpart, or NULL (anonymous) */
  int have_credentials; /* a password (or keys) can be had */
  int allow_anonymous;
  int allow_external; /* a client certificate is presented (XEP-0178) */
  int allow_plain_insecure; /* PLAIN without TLS (tests on loopback only) */
  const char *mechanisms;   /* allow-list "A,B", or NULL for every one */
} xmppuv__sasl_exchange_config_t;

/* What the server offers and what the connection can bind to. */
typedef struct xmppuv__sasl_context {
  const char *const *mechs; /* offered, as listed */
  size_t n_mechs;
  int cb_advertised; /* XEP-0440 element present */
  const char *const *server_cb_types;
  size_t n_server_cb_types;
  int tls_active;
  const char *const *our_cb_types; /* strongest first */
  size_t n_our_cb_types;
  /* The binding data of a type, for -PLUS (out holds *len bytes). */
  int (*cb_data)(void *ud, const char *type, unsigned char *out, size_t *len);
  void *cb_ud;
} xmppuv__sasl_context_t;

typedef enum {
  XMPPUV__SASL_NEED_NOTHING = 0,
  XMPPUV__SASL_NEED_PASSWORD, /* PLAIN, for the initial response */
  XMPPUV__SASL_NEED_KEYS      /* SCRAM keys for mech, salt, iterations */
} xmppuv__sasl_need_kind_t;

typedef struct xmppuv__sasl_need {
  xmppuv__sasl_need_kind_t kind;
  xmppuv__mech_t mech;
  const unsigned char *salt; /* borrowed until the next call */
  size_t salt_len;
  unsigned int iterations;
} xmppuv__sasl_need_t;

/* cfg strings are copied. 0, XMPPUV_ENOMEM. */
int xmppuv__sasl_exchange_new(const xmppuv__sasl_exchange_config_t *cfg,
                              xmppuv__sasl_exchange_t **out);
/* Wipes and frees. NULL is a no-op. */
void xmppuv__sasl_exchange_free(xmppuv__sasl_exchange_t *x);

/* Keys from an earlier exchange (a cache), used by SCRAM when the server's
 * salt, count and hash match. Copied; before xmppuv__sasl_exchange_begin(). */
int xmppuv__sasl_exchange_offer_keys(xmppuv__sasl_exchange_t *x,
                                     const xmppuv__scram_keys_t *keys);

/* Choose the mechanism (xmppuv__sasl_choose's rules) and append the initial
 * response to out. 0; XMPPUV__SASL_WAIT (needs the password); errors:
 * XMPPUV_ENOMECH, XMPPUV_EDOWNGRADE, XMPPUV_ENOMEM, XMPPUV_EINVAL (the
 * username cannot be prepared), XMPPUV_ECRYPTO, a cb_data error. One
 * exchange per object. */
int xmppuv__sasl_exchange_begin(xmppuv__sasl_exchange_t *x,
                                const xmppuv__sasl_context_t *ctx,
                                xmppuv__buf_t *out);
/* The mechanism chosen (XMPPUV__MECH_NONE before begin) and, for -PLUS, its
 * binding type ("" otherwise). */
xmppuv__mech_t xmppuv__sasl_exchange_mech(const xmppuv__sasl_exchange_t *x);
const char *xmppuv__sasl_exchange_cb_type(const xmppuv__sasl_exchange_t *x);

/* A challenge from the server: the response goes to out. 0;
 * XMPPUV__SASL_WAIT (needs keys); XMPPUV_EPROTO (a challenge the mechanism
 * does not take, or malformed), XMPPUV_EAUTHITER, XMPPUV_EAUTHSERVER,
 * XMPPUV_EAUTH ("e=" from the server), XMPPUV_ENOMEM, XMPPUV_ECRYPTO. */
int xmppuv__sasl_exchange_challenge(xmppuv__sasl_exchange_t *x, const char *data,
                                    size_t len, xmppuv__buf_t *out);

/* What a step returning XMPPUV__SASL_WAIT waits for. */
void xmppuv__sasl_exchange_need(const xmppuv__sasl_exchange_t *x,
                                xmppuv__sasl_need_t *need);
/* The password it waited for (copied while used, then wiped): the message
 * it held back goes to out. 0, XMPPUV_ESTATE (not waiting for it),
 * XMPPUV_EINVAL, XMPPUV_EUTF8, XMPPUV_ENOMEM. */
int xmppuv__sasl_exchange_password(xmppuv__sasl_exchange_t *x,
                                   const char *password, xmppuv__buf_t *out);
/* The keys it waited for: the message it held back goes to out. 0,
 * XMPPUV__SASL_WAIT (they are for another salt, count or hash),
 * XMPPUV_ESTATE, XMPPUV_ENOMEM, XMPPUV_ECRYPTO. */
int xmppuv__sasl_exchange_keys(xmppuv__sasl_exchange_t *x,
                               const xmppuv__scram_keys_t *keys,
                               xmppuv__buf_t *out);

/* The server said success, with additional data (may be empty). For SCRAM
 * the exchange is complete only if the server's signature in it (or in a
 * challenge before) checks out (RFC 5802 §9): 0, XMPPUV_EAUTHSERVER,
 * XMPPUV_EPROTO, XMPPUV_EAUTH, XMPPUV_ENOMEM. */
int xmppuv__sasl_exchange_success(xmppuv__sasl_exchange_t *x, const char *data,
                                  size_t len);

/* After a successful SCRAM exchange: its keys, for the cache (*out owned by
 * the caller, xmppuv__scram_keys_free). XMPPUV_ESTATE otherwise. */
int xmppuv__sasl_exchange_export_keys(const xmppuv__sasl_exchange_t *x,
                                      xmppuv__scram_keys_t **out);
/* Non-zero if SCRAM used offered keys (no password, no PBKDF2). */
int xmppuv__sasl_exchange_used_cached_keys(const xmppuv__sasl_exchange_t *x);
/* The server's "e=" text after XMPPUV_EAUTH, or NULL. */
const char *xmppuv__sasl_exchange_error_text(const xmppuv__sasl_exchange_t *x);

#endif
