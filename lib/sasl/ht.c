#include "sasl/ht.h"

#include <string.h>

#include <mbedtls/md.h>

#include "sasl/sasl.h"
#include "util/alloc.h"
#include "xmppuv.h"

static const struct {
  const char *suffix;
  const char *cb_type;
} bindings[] = {{"NONE", NULL},
                {"UNIQ", "tls-unique"},
                {"ENDP", "tls-server-end-point"},
                {"EXPR", "tls-exporter"}};

int xmppuv__ht_parse(const char *name, xmppuv__ht_t *out) {
  if (name == NULL) return XMPPUV_ENOMECH;
  int sha512;
  if (strncmp(name, "HT-SHA-256-", 11) == 0)
    sha512 = 0;
  else if (strncmp(name, "HT-SHA-512-", 11) == 0)
    sha512 = 1;
  else
    return XMPPUV_ENOMECH;
  for (size_t i = 0; i < sizeof bindings / sizeof bindings[0]; i++) {
    if (strcmp(name + 11, bindings[i].suffix) == 0) {
      out->sha512 = sha512;
      out->cb_type = bindings[i].cb_type;
      return 0;
    }
  }
  return XMPPUV_ENOMECH;
}

/* Higher is stronger; -1: not usable here. */
static int strength(const char *name, int (*have_cb)(void *, const char *), void *ud) {
  xmppuv__ht_t ht;
  if (xmppuv__ht_parse(name, &ht) != 0) return -1;
  int cb = 0; /* NONE */
  if (ht.cb_type != NULL) {
    if (have_cb == NULL || !have_cb(ud, ht.cb_type)) return -1;
    cb = strcmp(ht.cb_type, "tls-exporter") == 0 ? 3
         : strcmp(ht.cb_type, "tls-unique") == 0 ? 2
                                                  : 1;
  }
  return cb * 2 + ht.sha512;
}

const char *xmppuv__ht_choose(const char *const *offered, size_t n,
                              int (*have_cb)(void *ud, const char *type), void *ud) {
  const char *best = NULL;
  int best_strength = -1;
  for (size_t i = 0; i < n; i++) {
    int st = strength(offered[i], have_cb, ud);
    if (st > best_strength) {
      best = offered[i];
      best_strength = st;
    }
  }
  return best;
}

/* HMAC(token, label || cb) into mac (64 bytes room); *len its length. */
static int mac_of(const xmppuv__ht_t *ht, const char *token, const char *label,
                  const unsigned char *cb, size_t cb_len, unsigned char mac[64], size_t *len) {
  const mbedtls_md_info_t *info =
      mbedtls_md_info_from_type(ht->sha512 ? MBEDTLS_MD_SHA512 : MBEDTLS_MD_SHA256);
  if (info == NULL) return XMPPUV_ECRYPTO;
  mbedtls_md_context_t ctx;
  mbedtls_md_init(&ctx);
  int rc = mbedtls_md_setup(&ctx, info, 1);
  if (rc == 0)
    rc = mbedtls_md_hmac_starts(&ctx, (const unsigned char *)token, strlen(token));
  if (rc == 0) rc = mbedtls_md_hmac_update(&ctx, (const unsigned char *)label, strlen(label));
  if (rc == 0 && cb_len > 0) rc = mbedtls_md_hmac_update(&ctx, cb, cb_len);
  if (rc == 0) rc = mbedtls_md_hmac_finish(&ctx, mac);
  mbedtls_md_free(&ctx);
  *len = mbedtls_md_get_size(info);
  return rc == 0 ? 0 : XMPPUV_ECRYPTO;
}

int xmppuv__ht_initial(const xmppuv__ht_t *ht, const char *authcid, const char *token,
                       const unsigned char *cb, size_t cb_len, xmppuv__buf_t *out) {
  unsigned char mac[64];
  size_t len = 0;
  int rc = mac_of(ht, token, "Initiator", cb, cb_len, mac, &len);
  if (rc == 0) {
    size_t need = strlen(authcid) + 1 + len;
    /* Reserve first: a realloc of a buffer holding the message would leave
     * a copy behind. */
    rc = xmppuv__buf_reserve(out, need);
    if (rc == 0) rc = xmppuv__buf_append(out, authcid, strlen(authcid) + 1);
    if (rc == 0) rc = xmppuv__buf_append(out, mac, len);
  }
  xmppuv__secure_zero(mac, sizeof mac);
  return rc;
}

int xmppuv__ht_verify(const xmppuv__ht_t *ht, const char *token, const unsigned char *cb,
                      size_t cb_len, const void *data, size_t len) {
  unsigned char mac[64];
  size_t mac_len = 0;
  int rc = mac_of(ht, token, "Responder", cb, cb_len, mac, &mac_len);
  if (rc == 0) {
    unsigned diff = len != mac_len;
    const unsigned char *d = data;
    for (size_t i = 0; i < mac_len; i++) diff |= (unsigned)(mac[i] ^ (i < len ? d[i] : 0));
    rc = diff == 0 ? 0 : XMPPUV_EAUTHSERVER;
  }
  xmppuv__secure_zero(mac, sizeof mac);
  return rc;
}
