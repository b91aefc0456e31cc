/* SASL for XMPP (RFC 4422, RFC 6120 §6): mechanism choice and the message
 * builders of the simple mechanisms (PLAIN, ANONYMOUS, EXTERNAL), plus the
 * base64 and string-preparation helpers the session and SCRAM share.
 * SCRAM itself is in scram.h.
 *
 * No I/O and no XML here: the session puts these bytes (base64) into
 * <auth/>, <response/> and reads them out of <challenge/>, <success/>.
 *
 * Secrets: every buffer this module fills with a password, or with a message
 * that contains one, is the caller's to wipe with xmppuv__sasl_buf_wipe()
 * (not xmppuv__buf_free()). xmppuv__sasl_plain() wipes the old block when it
 * must grow the buffer; the base64 functions use xmppuv__buf_reserve(), whose
 * realloc() does not, so encode a secret into an empty buffer. Nothing here
 * logs. */
#ifndef XMPPUV_SASL_H
#define XMPPUV_SASL_H

#include <stddef.h>

#include "util/buf.h"

/* In order of strength within each family; xmppuv__sasl_choose() has the
 * preference order across families. */
typedef enum {
  XMPPUV__MECH_NONE = 0,
  XMPPUV__MECH_ANONYMOUS,
  XMPPUV__MECH_PLAIN,
  XMPPUV__MECH_EXTERNAL,
  XMPPUV__MECH_SCRAM_SHA_1,
  XMPPUV__MECH_SCRAM_SHA_1_PLUS,
  XMPPUV__MECH_SCRAM_SHA_256,
  XMPPUV__MECH_SCRAM_SHA_256_PLUS,
  XMPPUV__MECH_SCRAM_SHA_512,
  XMPPUV__MECH_SCRAM_SHA_512_PLUS
} xmppuv__mech_t;

/* "SCRAM-SHA-256-PLUS"; NULL for XMPPUV__MECH_NONE or an unknown value.
 * Static storage. */
const char *xmppuv__mech_name(xmppuv__mech_t m);
/* The mechanism with exactly this name (RFC 4422 §3.1: names are compared
 * as they are, upper case), or XMPPUV__MECH_NONE for any other. */
xmppuv__mech_t xmppuv__mech_from_name(const char *name);
/* Non-zero for the SCRAM family, and for its channel-binding variants. */
int xmppuv__mech_is_scram(xmppuv__mech_t m);
int xmppuv__mech_is_plus(xmppuv__mech_t m);

/* ---- choosing a mechanism ------------------------------------------------ */

/* A channel-binding type name ("tls-unique", "tls-exporter",
 * "tls-server-end-point"), RFC 5802 §7 cb-name: 1*(ALPHA / DIGIT / "." / "-").
 * Longer names than this are ignored. */
#define XMPPUV__SASL_CB_NAME_MAX 31

/* What the server offered in its stream features. All borrowed, read only
 * during xmppuv__sasl_choose(). */
typedef struct xmppuv__sasl_offer {
  const char *const *mechs; /* <mechanisms/>, as listed */
  size_t n_mechs;
  /* XEP-0440 <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'/>: present
   * (non-zero even when it listed nothing) and the types it listed. */
  int cb_advertised;
  const char *const *cb_types;
  size_t n_cb_types;
} xmppuv__sasl_offer_t;

/* What the app and this connection allow. */
typedef struct xmppuv__sasl_policy {
  int tls_active;           /* the stream is TLS-protected now */
  int allow_plain_insecure; /* PLAIN without TLS (tests on loopback only) */
  int have_password;        /* a password, or a callback that supplies one */
  int allow_anonymous;      /* RFC 4505 */
  int allow_external;       /* XEP-0178: a client certificate was presented in
                               the TLS handshake; needs TLS */
  /* NULL: every mechanism this module knows; else only these names. */
  const char *const *allowed;
  size_t n_allowed;
} xmppuv__sasl_policy_t;

typedef struct xmppuv__sasl_choice {
  xmppuv__mech_t mech;
  /* The binding type for a -PLUS mechanism, else "". */
  char cb_type[XMPPUV__SASL_CB_NAME_MAX + 1];
  /* For SCRAM, the gs2-cbind-flag to pass to xmppuv__scram_new():
   * "p=<cb_type>", "y" or "n" (RFC 5802 §6); "" for other mechanisms. */
  char gs2_cb_flag[XMPPUV__SASL_CB_NAME_MAX + 3];
} xmppuv__sasl_choice_t;

/* Choose the strongest acceptable mechanism the server offered: EXTERNAL
 * first when allowed (the app configured a client certificate: that is
 * the credential it chose), then
 *   SCRAM-SHA-512-PLUS > SCRAM-SHA-256-PLUS > SCRAM-SHA-1-PLUS >
 *   SCRAM-SHA-512 > SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN > ANONYMOUS
 * SCRAM and PLAIN need have_password; PLAIN needs TLS (RFC 4616 §6)
 * unless allow_plain_insecure; EXTERNAL needs allow_external and TLS;
 * ANONYMOUS needs allow_anonymous.
 *
 * our_cb_types: the channel-binding types the TLS layer can provide on this
 * connection, strongest first (empty, or ignored, without TLS). A -PLUS
 * mechanism is chosen only with a type the server accepts: with XEP-0440 the
 * first of ours that the server listed; without it, "tls-unique" (RFC 5802
 * §6.1, what Prosody and ejabberd do on TLS 1.2), else "tls-exporter" (RFC
 * 9266, the TLS 1.3 default). With none, the server's -PLUS offer is
 * passed over and the flag is "n": we do not claim a binding we cannot make.
 *
 * The gs2 flag (RFC 5802 §6): "p=type" for -PLUS; "y" when we could bind
 * but the server offered no -PLUS at all (so a server that does support
 * binding, whose -PLUS offer an attacker stripped, fails us); "n" when we
 * cannot bind or the server offered -PLUS that we cannot use ("y" there
 * would make an honest server fail us).
 *
 * XEP-0440 §3 (business rules) make two offers a downgrade attack, refused
 * with XMPPUV_EDOWNGRADE when we would bind: the server listed binding
 * types and offered -PLUS, but none of its types is ours and it did not list
 * tls-server-end-point (which every server must); or the server listed
 * binding types but offered no -PLUS mechanism.
 *
 * Choose once per stream: after a <failure/>, retrying with a weaker
 * mechanism (-PLUS, then the same without binding) is the very downgrade
 * these flags exist to stop; report the failure instead.
 *
 * Returns 0 and fills *out, XMPPUV_ENOMECH when nothing is acceptable,
 * XMPPUV_EDOWNGRADE as above, XMPPUV_EINVAL for NULL arguments. */
int xmppuv__sasl_choose(const xmppuv__sasl_offer_t *offer,
                        const char *const *our_cb_types, size_t n_our_cb_types,
                        const xmppuv__sasl_policy_t *policy,
                        xmppuv__sasl_choice_t *out);

/* ---- simple mechanisms ----------------------------------------------------
 * Each appends its initial response (raw bytes, not base64) to out; on error
 * out is left as it was. */

/* RFC 4616: [authzid] NUL authcid NUL passwd, with authcid and password
 * prepared as xmppuv__sasl_prep() does. authzid may be NULL (the usual
 * case in XMPP: RFC 6120 §6.3.8). The result holds the password: wipe it
 * with xmppuv__sasl_buf_wipe(). 0, XMPPUV_EINVAL (empty authcid or
 * password, control characters), XMPPUV_EUTF8, XMPPUV_ENOMEM. */
int xmppuv__sasl_plain(const char *authzid, const char *authcid,
                       const char *password, xmppuv__buf_t *out);

/* RFC 4505: optional trace information (NULL or "": none, and the
 * session sends "=" for the empty response, RFC 6120 §6.4.2). At most 255
 * characters of UTF-8. 0, XMPPUV_EINVAL, XMPPUV_EUTF8, XMPPUV_ENOMEM. */
int xmppuv__sasl_anonymous(const char *trace, xmppuv__buf_t *out);

/* XEP-0178 / RFC 4422 Appendix A: the authorization identity, or
 * nothing (NULL or "": the server derives it from the certificate). */
int xmppuv__sasl_external(const char *authzid, xmppuv__buf_t *out);

/* ---- string preparation -----------------------------------------------------
 * RFC 8265 OpaqueString, as far as SASL needs it (RFC 5802 §5.1 and RFC 4616
 * ask for SASLprep, which RFC 7613/8265 replace): valid UTF-8, no control
 * characters (U+0000-U+001F, U+007F-U+009F), for passwords non-ASCII spaces
 * mapped to U+0020 (§4.2.2), then NFC. Unassigned and other PRECIS-disallowed
 * code points are passed through: the server is the judge of those.
 * Stores an allocated, NUL-terminated copy in *out (free it with
 * xmppuv__free after xmppuv__secure_zero when it is a password).
 * 0, XMPPUV_EINVAL (empty, control character), XMPPUV_EUTF8, XMPPUV_ENOMEM. */
int xmppuv__sasl_prep(const char *in, int is_password, char **out,
                      size_t *out_len);

/* ---- base64 (RFC 4648 §4, no line breaks, no whitespace) ------------------ */

/* Appends the encoding of data[0..len) to out. 0 or XMPPUV_ENOMEM. */
int xmppuv__base64_encode(const void *data, size_t len, xmppuv__buf_t *out);
/* Appends the decoding of text[0..len) to out. Strict: only the alphabet,
 * a length that is a multiple of 4, padding only at the end and zero pad
 * bits; anything else is XMPPUV_EPROTO (it comes from the server). "" decodes
 * to nothing. On error out is left as it was. */
int xmppuv__base64_decode(const char *text, size_t len, xmppuv__buf_t *out);
/* The same with RFC 6120 §6.4.2/§6.4.6 convention for SASL element
 * content: empty data is sent as "=", and "=" is received as empty data. */
int xmppuv__sasl_payload_encode(const void *data, size_t len,
                                xmppuv__buf_t *out);
int xmppuv__sasl_payload_decode(const char *text, size_t len,
                                xmppuv__buf_t *out);

/* ---- secrets ------------------------------------------------------------- */

/* Zero the whole allocation of b (len and spare capacity), then free it. */
void xmppuv__sasl_buf_wipe(xmppuv__buf_t *b);

#endif
