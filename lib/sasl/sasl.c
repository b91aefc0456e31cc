/* SASL mechanism choice, PLAIN/ANONYMOUS/EXTERNAL, preparation, base64. */
#include "sasl/sasl.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>
#include <uninorm.h>

#include "util/alloc.h"
#include "util/utf8.h"
#include "xmppuv.h"

/* ---- names --------------------------------------------------------------- */

static const char *const mech_names[] = {
    [XMPPUV__MECH_NONE] = NULL,
    [XMPPUV__MECH_ANONYMOUS] = "ANONYMOUS",
    [XMPPUV__MECH_PLAIN] = "PLAIN",
    [XMPPUV__MECH_EXTERNAL] = "EXTERNAL",
    [XMPPUV__MECH_SCRAM_SHA_1] = "SCRAM-SHA-1",
    [XMPPUV__MECH_SCRAM_SHA_1_PLUS] = "SCRAM-SHA-1-PLUS",
    [XMPPUV__MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
    [XMPPUV__MECH_SCRAM_SHA_256_PLUS] = "SCRAM-SHA-256-PLUS",
    [XMPPUV__MECH_SCRAM_SHA_512] = "SCRAM-SHA-512",
    [XMPPUV__MECH_SCRAM_SHA_512_PLUS] = "SCRAM-SHA-512-PLUS",
};

#define N_MECHS (sizeof mech_names / sizeof mech_names[0])

const char *xmppuv__mech_name(xmppuv__mech_t m) {
  if ((unsigned)m >= N_MECHS) return NULL;
  return mech_names[m];
}

xmppuv__mech_t xmppuv__mech_from_name(const char *name) {
  if (name == NULL) return XMPPUV__MECH_NONE;
  for (size_t i = 1; i < N_MECHS; i++)
    if (strcmp(name, mech_names[i]) == 0) return (xmppuv__mech_t)i;
  return XMPPUV__MECH_NONE;
}

int xmppuv__mech_is_scram(xmppuv__mech_t m) {
  return m >= XMPPUV__MECH_SCRAM_SHA_1 && m <= XMPPUV__MECH_SCRAM_SHA_512_PLUS;
}

int xmppuv__mech_is_plus(xmppuv__mech_t m) {
  return m == XMPPUV__MECH_SCRAM_SHA_1_PLUS ||
         m == XMPPUV__MECH_SCRAM_SHA_256_PLUS ||
         m == XMPPUV__MECH_SCRAM_SHA_512_PLUS;
}

/* ---- choice -------------------------------------------------------------- */

static const xmppuv__mech_t preference[] = {
    XMPPUV__MECH_SCRAM_SHA_512_PLUS, XMPPUV__MECH_SCRAM_SHA_256_PLUS,
    XMPPUV__MECH_SCRAM_SHA_1_PLUS,   XMPPUV__MECH_SCRAM_SHA_512,
    XMPPUV__MECH_SCRAM_SHA_256,      XMPPUV__MECH_SCRAM_SHA_1,
    XMPPUV__MECH_PLAIN,              XMPPUV__MECH_EXTERNAL,
    XMPPUV__MECH_ANONYMOUS,
};

static int in_list(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (list[i] != NULL && strcmp(list[i], name) == 0) return 1;
  return 0;
}

static int offered(const xmppuv__sasl_offer_t *offer, xmppuv__mech_t m) {
  return in_list(xmppuv__mech_name(m), offer->mechs, offer->n_mechs);
}

static int allowed(const xmppuv__sasl_policy_t *policy, xmppuv__mech_t m) {
  if (policy->allowed == NULL) return 1;
  return in_list(xmppuv__mech_name(m), policy->allowed, policy->n_allowed);
}

/* RFC 5802 §7 cb-name: 1*(ALPHA / DIGIT / "." / "-"). */
static int valid_cb_name(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > XMPPUV__SASL_CB_NAME_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

static int have_cb_type(const char *name, const char *const *ours, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ours[i] != NULL && valid_cb_name(ours[i]) && strcmp(ours[i], name) == 0)
      return 1;
  return 0;
}

/* The binding type to use with a -PLUS mechanism, or NULL. */
static const char *pick_cb_type(const xmppuv__sasl_offer_t *offer,
                                const char *const *ours, size_t n_ours) {
  if (offer->cb_advertised) {
    /* XEP-0440: the server said what it accepts; ours are strongest first. */
    for (size_t i = 0; i < n_ours; i++)
      if (ours[i] != NULL && valid_cb_name(ours[i]) &&
          in_list(ours[i], offer->cb_types, offer->n_cb_types))
        return ours[i];
    return NULL;
  }
  /* No list: only the types RFC 5802 §6.1 and RFC 9266 make defaults. */
  if (have_cb_type("tls-unique", ours, n_ours)) return "tls-unique";
  if (have_cb_type("tls-exporter", ours, n_ours)) return "tls-exporter";
  return NULL;
}

static int usable(const xmppuv__sasl_policy_t *policy, xmppuv__mech_t m) {
  if (!allowed(policy, m)) return 0;
  switch (m) {
  case XMPPUV__MECH_PLAIN:
    /* RFC 4616 §6: PLAIN only under TLS. */
    return policy->have_password &&
           (policy->tls_active || policy->allow_plain_insecure);
  case XMPPUV__MECH_EXTERNAL:
    return policy->allow_external && policy->tls_active;
  case XMPPUV__MECH_ANONYMOUS:
    return policy->allow_anonymous;
  default:
    return xmppuv__mech_is_scram(m) && policy->have_password;
  }
}

int xmppuv__sasl_choose(const xmppuv__sasl_offer_t *offer,
                        const char *const *our_cb_types, size_t n_our_cb_types,
                        const xmppuv__sasl_policy_t *policy,
                        xmppuv__sasl_choice_t *out) {
  if (offer == NULL || policy == NULL || out == NULL ||
      (offer->mechs == NULL && offer->n_mechs > 0) ||
      (offer->cb_types == NULL && offer->n_cb_types > 0) ||
      (our_cb_types == NULL && n_our_cb_types > 0))
    return XMPPUV_EINVAL;
  memset(out, 0, sizeof *out);
  /* A client certificate is the credential the app chose (XEP-0178): when
   * the server takes it, it comes before any password mechanism. */
  if (offered(offer, XMPPUV__MECH_EXTERNAL) && usable(policy, XMPPUV__MECH_EXTERNAL)) {
    out->mech = XMPPUV__MECH_EXTERNAL;
    return 0;
  }
  if (!policy->tls_active) n_our_cb_types = 0; /* no TLS, nothing to bind to */

  int server_offers_plus = 0, we_would_bind = 0;
  for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++) {
    xmppuv__mech_t m = preference[i];
    if (!xmppuv__mech_is_plus(m)) continue;
    if (offered(offer, m)) server_offers_plus = 1;
    if (usable(policy, m)) we_would_bind = 1;
  }
  int any_ours = 0;
  for (size_t i = 0; i < n_our_cb_types; i++)
    if (our_cb_types[i] != NULL && valid_cb_name(our_cb_types[i])) any_ours = 1;
  we_would_bind = we_would_bind && any_ours;

  const char *cb_type = NULL;
  if (we_would_bind) {
    cb_type = pick_cb_type(offer, our_cb_types, n_our_cb_types);
    if (offer->cb_advertised) {
      /* XEP-0440 §3: types but no -PLUS means the mechanisms were
       * stripped; -PLUS and types none of which we have, without the
       * mandatory tls-server-end-point, means the types were tampered
       * with. Either way an attacker wants us to send "n". */
      if (!server_offers_plus) return XMPPUV_EDOWNGRADE;
      if (cb_type == NULL &&
          !in_list("tls-server-end-point", offer->cb_types, offer->n_cb_types))
        return XMPPUV_EDOWNGRADE;
    }
  }

  for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++) {
    xmppuv__mech_t m = preference[i];
    if (!offered(offer, m) || !usable(policy, m)) continue;
    if (xmppuv__mech_is_plus(m) && cb_type == NULL) continue;
    out->mech = m;
    if (xmppuv__mech_is_plus(m)) {
      strcpy(out->cb_type, cb_type); /* valid_cb_name() bounded its length */
      strcpy(out->gs2_cb_flag, "p=");
      strcat(out->gs2_cb_flag, cb_type);
    } else if (xmppuv__mech_is_scram(m)) {
      /* RFC 5802 §6: "y" = we bind, but the server seems not to. */
      int y = we_would_bind && !server_offers_plus;
      strcpy(out->gs2_cb_flag, y ? "y" : "n");
    }
    return 0;
  }
  return XMPPUV_ENOMECH;
}

/* ---- secrets ------------------------------------------------------------- */

void xmppuv__sasl_buf_wipe(xmppuv__buf_t *b) {
  xmppuv__secure_zero(b->data, b->cap);
  xmppuv__buf_free(b);
}

/* ---- preparation --------------------------------------------------------- */

/* Unicode Zs other than U+0020 (RFC 8265 §4.2.2 maps them to U+0020). */
static int is_non_ascii_space(unsigned int c) {
  return c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

int xmppuv__sasl_prep(const char *in, int is_password, char **out,
                      size_t *out_len) {
  if (in == NULL || out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  size_t len = strlen(in);
  if (len == 0) return XMPPUV_EINVAL;

  /* Mapping only shrinks the text (a multi-byte space becomes one byte). */
  unsigned char *mapped = xmppuv__malloc(len + 1);
  if (mapped == NULL) return XMPPUV_ENOMEM;
  const unsigned char *s = (const unsigned char *)in;
  size_t mlen = 0, i = 0;
  int ascii = 1, rc = 0;
  while (i < len) {
    unsigned int cp;
    size_t n = xmppuv__utf8_decode(s + i, len - i, &cp);
    if (n == 0) {
      rc = XMPPUV_EUTF8;
      goto fail;
    }
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      rc = XMPPUV_EINVAL;
      goto fail;
    }
    if (is_password && is_non_ascii_space(cp)) {
      mapped[mlen++] = ' ';
    } else {
      memcpy(mapped + mlen, s + i, n);
      mlen += n;
      if (cp >= 0x80) ascii = 0;
    }
    i += n;
  }
  mapped[mlen] = '\0';
  if (ascii) { /* ASCII is already in NFC */
    *out = (char *)mapped;
    if (out_len != NULL) *out_len = mlen;
    return 0;
  }

  /* UAX #15: NFC grows UTF-8 text at most threefold. Normalizing into our
   * own buffer keeps a password out of memory we cannot wipe. */
  size_t cap = 3 * mlen + 1;
  unsigned char *norm = xmppuv__malloc(cap);
  if (norm == NULL) {
    rc = XMPPUV_ENOMEM;
    goto fail;
  }
  size_t nlen = cap - 1;
  uint8_t *res = u8_normalize(UNINORM_NFC, mapped, mlen, norm, &nlen);
  if (res == NULL) {
    xmppuv__secure_zero(norm, cap);
    xmppuv__free(norm);
    rc = errno == ENOMEM ? XMPPUV_ENOMEM : XMPPUV_EUTF8;
    goto fail;
  }
  if (res != norm) { /* libunistring needed more room after all */
    xmppuv__secure_zero(norm, cap);
    xmppuv__free(norm);
    norm = xmppuv__malloc(nlen + 1);
    if (norm != NULL) memcpy(norm, res, nlen);
    xmppuv__secure_zero(res, nlen);
    free(res); /* libunistring allocates with the C library */
    if (norm == NULL) {
      rc = XMPPUV_ENOMEM;
      goto fail;
    }
  }
  norm[nlen] = '\0';
  xmppuv__secure_zero(mapped, len + 1);
  xmppuv__free(mapped);
  *out = (char *)norm;
  if (out_len != NULL) *out_len = nlen;
  return 0;

fail:
  xmppuv__secure_zero(mapped, len + 1);
  xmppuv__free(mapped);
  return rc;
}

/* ---- simple mechanisms --------------------------------------------------- */

/* xmppuv__buf_reserve() for buffers that hold or will hold secrets: when it
 * must move the data, it wipes the old block instead of letting realloc()
 * free it with a password inside. */
static int reserve_secret(xmppuv__buf_t *b, size_t extra) {
  if (extra > (size_t)-1 - b->len - 1) return XMPPUV_ENOMEM;
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > (size_t)-1 / 2 ? need : cap * 2;
  char *data = xmppuv__malloc(cap);
  if (data == NULL) return XMPPUV_ENOMEM;
  if (b->data != NULL) memcpy(data, b->data, b->len + 1);
  else data[0] = '\0';
  xmppuv__secure_zero(b->data, b->cap);
  xmppuv__free(b->data);
  b->data = data;
  b->cap = cap;
  return 0;
}

int xmppuv__sasl_plain(const char *authzid, const char *authcid,
                       const char *password, xmppuv__buf_t *out) {
  if (authcid == NULL || password == NULL || out == NULL) return XMPPUV_EINVAL;
  if (authzid != NULL && authzid[0] == '\0') authzid = NULL;
  if (authzid != NULL) {
    int rc = xmppuv__xml_text_check(authzid, strlen(authzid));
    if (rc != 0) return rc == XMPPUV_EUTF8 ? rc : XMPPUV_EINVAL;
  }
  char *user = NULL, *pass = NULL;
  size_t ulen = 0, plen = 0;
  int rc = xmppuv__sasl_prep(authcid, 0, &user, &ulen);
  if (rc == 0) rc = xmppuv__sasl_prep(password, 1, &pass, &plen);
  if (rc == 0) {
    size_t zlen = authzid != NULL ? strlen(authzid) : 0;
    /* One reservation, and the appends after it cannot fail. */
    rc = reserve_secret(out, zlen + 1 + ulen + 1 + plen);
    if (rc == 0) {
      if (zlen > 0) xmppuv__buf_append(out, authzid, zlen);
      xmppuv__buf_append(out, "", 1);
      xmppuv__buf_append(out, user, ulen);
      xmppuv__buf_append(out, "", 1);
      xmppuv__buf_append(out, pass, plen);
    }
  }
  xmppuv__free(user);
  if (pass != NULL) xmppuv__secure_zero(pass, plen);
  xmppuv__free(pass);
  return rc;
}

int xmppuv__sasl_anonymous(const char *trace, xmppuv__buf_t *out) {
  if (out == NULL) return XMPPUV_EINVAL;
  if (trace == NULL || trace[0] == '\0') return 0;
  size_t len = strlen(trace), chars = 0;
  const unsigned char *s = (const unsigned char *)trace;
  for (size_t i = 0; i < len; chars++) {
    unsigned int cp;
    size_t n = xmppuv__utf8_decode(s + i, len - i, &cp);
    if (n == 0) return XMPPUV_EUTF8;
    if (cp < 0x20 || cp == 0x7F) return XMPPUV_EINVAL;
    i += n;
  }
  if (chars > 255) return XMPPUV_EINVAL; /* RFC 4505: 1*255TCHAR */
  return xmppuv__buf_append(out, trace, len);
}

int xmppuv__sasl_external(const char *authzid, xmppuv__buf_t *out) {
  if (out == NULL) return XMPPUV_EINVAL;
  if (authzid == NULL || authzid[0] == '\0') return 0;
  size_t len = strlen(authzid);
  int rc = xmppuv__xml_text_check(authzid, len);
  if (rc != 0) return rc == XMPPUV_EUTF8 ? rc : XMPPUV_EINVAL;
  return xmppuv__buf_append(out, authzid, len);
}

/* ---- base64 -------------------------------------------------------------- */

int xmppuv__base64_encode(const void *data, size_t len, xmppuv__buf_t *out) {
  if (out == NULL || (data == NULL && len > 0)) return XMPPUV_EINVAL;
  if (len > ((size_t)-1 / 4 - 1) * 3) return XMPPUV_ENOMEM;
  size_t enc = (len + 2) / 3 * 4;
  int rc = xmppuv__buf_reserve(out, enc);
  if (rc != 0) return rc;
  if (len == 0) {
    if (out->data != NULL) out->data[out->len] = '\0';
    return 0;
  }
  size_t olen = 0;
  /* mbedTLS writes a NUL after the text: buf_reserve keeps room for it. */
  if (mbedtls_base64_encode((unsigned char *)out->data + out->len, enc + 1,
                            &olen, data, len) != 0 ||
      olen != enc)
    return XMPPUV_EINVAL; /* cannot happen with the room reserved above */
  out->len += enc;
  out->data[out->len] = '\0';
  return 0;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int xmppuv__base64_decode(const char *text, size_t len, xmppuv__buf_t *out) {
  if (out == NULL || (text == NULL && len > 0)) return XMPPUV_EINVAL;
  if (len == 0) return xmppuv__buf_reserve(out, 0);
  /* RFC 6120 §6.4.2 / RFC 4648 §3: no whitespace, no line breaks, padded. */
  if (len % 4 != 0) return XMPPUV_EPROTO;
  size_t pad = 0;
  if (text[len - 1] == '=') pad = text[len - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < len - pad; i++)
    if (b64_value(text[i]) < 0) return XMPPUV_EPROTO;
  /* RFC 4648 §3.5: the bits under the padding must be zero (one spelling
   * per value). */
  int last = b64_value(text[len - pad - 1]);
  if ((pad == 1 && (last & 0x3)) || (pad == 2 && (last & 0xF)))
    return XMPPUV_EPROTO;
  size_t dec = len / 4 * 3 - pad;
  int rc = xmppuv__buf_reserve(out, dec);
  if (rc != 0) return rc;
  size_t olen = 0;
  if (mbedtls_base64_decode((unsigned char *)out->data + out->len, dec + 1,
                            &olen, (const unsigned char *)text, len) != 0 ||
      olen != dec) {
    out->data[out->len] = '\0';
    return XMPPUV_EPROTO;
  }
  out->len += dec;
  out->data[out->len] = '\0';
  return 0;
}

int xmppuv__sasl_payload_encode(const void *data, size_t len,
                                xmppuv__buf_t *out) {
  if (out == NULL) return XMPPUV_EINVAL;
  if (len == 0) return xmppuv__buf_append_char(out, '=');
  return xmppuv__base64_encode(data, len, out);
}

int xmppuv__sasl_payload_decode(const char *text, size_t len,
                                xmppuv__buf_t *out) {
  if (len == 1 && text != NULL && text[0] == '=')
    return out == NULL ? XMPPUV_EINVAL : xmppuv__buf_reserve(out, 0);
  return xmppuv__base64_decode(text, len, out);
}
