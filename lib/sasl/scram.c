/* SCRAM client: RFC 5802 (SCRAM-SHA-1), RFC 7677 (SCRAM-SHA-256), and
 * SCRAM-SHA-512 by the same construction, with -PLUS channel binding. */
#include "sasl/scram.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* getentropy */

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/version.h>

#include "util/alloc.h"
#include "util/utf8.h"
#include "xmppuv.h"

#define NONCE_BYTES 24
#define KEY_MAX XMPPUV__SCRAM_KEY_MAX

struct xmppuv__scram_keys {
  mbedtls_md_type_t md;
  size_t hlen;
  unsigned char *salt; /* owned */
  size_t salt_len;
  unsigned int iterations;
  unsigned char client_key[KEY_MAX];
  unsigned char server_key[KEY_MAX];
};

enum { ST_NEW, ST_FIRST_SENT, ST_NEED_KEYS, ST_FINAL_SENT, ST_DONE, ST_FAILED };

struct xmppuv__scram {
  xmppuv__mech_t mech;
  mbedtls_md_type_t md;
  size_t hlen;
  int state;
  char *gs2_header; /* "n,,", "y,," or "p=<type>,," (no authzid) */
  unsigned char *cb_data;
  size_t cb_len;
  char *name; /* prepared and escaped saslname */
  char *password; /* prepared; NULL once the keys are derived */
  size_t password_len;
  char *nonce; /* the client's part */
  /* client-first-message-bare "," server-first-message ","
   * client-final-message-without-proof (RFC 5802 §3) */
  xmppuv__buf_t auth_message;
  xmppuv__buf_t final_bare; /* client-final-message-without-proof, from the
                               server-first until the proof is added */
  xmppuv__scram_keys_t keys; /* salt and iterations from the server-first;
                                the keys themselves from ST_FINAL_SENT */
  xmppuv__scram_keys_t *offered; /* from xmppuv__scram_use_keys() */
  int offered_on_request;        /* given after XMPPUV__SCRAM_NEED_KEYS: not a cache */
  int used_cached;
  unsigned char server_signature[KEY_MAX];
  char *error; /* "e=" value */
  char ssdp[96]; /* XEP-0474: the "h=" the server must send if it sends one */
};

/* ---- crypto (mbedTLS) ---------------------------------------------------- */

static int crypto_err(int rc) {
  return rc == MBEDTLS_ERR_MD_ALLOC_FAILED ? XMPPUV_ENOMEM : XMPPUV_ECRYPTO;
}

static int hmac(const xmppuv__scram_t *s, const unsigned char *key,
                size_t key_len, const void *data, size_t len,
                unsigned char *out) {
  const mbedtls_md_info_t *info = mbedtls_md_info_from_type(s->md);
  int rc = mbedtls_md_hmac(info, key, key_len, data, len, out);
  return rc == 0 ? 0 : crypto_err(rc);
}

static int hash(const xmppuv__scram_t *s, const unsigned char *data, size_t len,
                unsigned char *out) {
  int rc = mbedtls_md(mbedtls_md_info_from_type(s->md), data, len, out);
  return rc == 0 ? 0 : crypto_err(rc);
}

/* RFC 5802 §2.2: Hi() is PBKDF2 with HMAC and dkLen = the hash length.
 * Touches only its arguments (mbedTLS allocates its HMAC context with its
 * own calloc, never xmppuv's allocator): safe on another thread. */
static int pbkdf2(mbedtls_md_type_t md, size_t hlen, const char *password,
                  size_t password_len, const unsigned char *salt,
                  size_t salt_len, unsigned int iterations,
                  unsigned char *out) {
  int rc;
#if MBEDTLS_VERSION_NUMBER >= 0x03030000
  rc = mbedtls_pkcs5_pbkdf2_hmac_ext(md, (const unsigned char *)password,
                                     password_len, salt, salt_len, iterations,
                                     (uint32_t)hlen, out);
#else
  mbedtls_md_context_t ctx;
  mbedtls_md_init(&ctx);
  rc = mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(md), 1);
  if (rc == 0)
    rc = mbedtls_pkcs5_pbkdf2_hmac(&ctx, (const unsigned char *)password,
                                   password_len, salt, salt_len, iterations,
                                   (uint32_t)hlen, out);
  mbedtls_md_free(&ctx);
#endif
  return rc == 0 ? 0 : crypto_err(rc);
}

/* The nonce comes from the kernel's CSPRNG (getentropy: one system call).
 * A DRBG seeded per nonce costs about 0.2 ms (the entropy pool's polls,
 * hashing, AES key schedules): with a thousand clients reconnecting on one
 * loop that was 200 ms in one iteration. The DRBG stays as the fallback for
 * a system without getentropy (ENOSYS). */
static int random_nonce(char **out) {
  unsigned char raw[NONCE_BYTES];
  int rc = getentropy(raw, sizeof raw) == 0 ? 0 : -1;
  if (rc != 0) {
    static const char pers[] = "xmppuv scram client nonce";
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                               (const unsigned char *)pers, sizeof pers - 1);
    if (rc == 0) rc = mbedtls_ctr_drbg_random(&drbg, raw, sizeof raw);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
  if (rc != 0) return XMPPUV_ECRYPTO;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  rc = xmppuv__base64_encode(raw, sizeof raw, &b);
  xmppuv__secure_zero(raw, sizeof raw);
  if (rc != 0) return rc;
  *out = xmppuv__buf_detach(&b, NULL);
  return 0; /* detach cannot fail: b holds data */
}

/* Comparison whose time does not depend on where the inputs differ. */
static int ct_equal(const unsigned char *a, const unsigned char *b, size_t n) {
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < n; i++) diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

/* ---- keys ---------------------------------------------------------------- */

static void keys_clear(xmppuv__scram_keys_t *k) {
  xmppuv__free(k->salt);
  xmppuv__secure_zero(k, sizeof *k);
}

void xmppuv__scram_keys_free(xmppuv__scram_keys_t *k) {
  if (k == NULL) return;
  keys_clear(k);
  xmppuv__free(k);
}

int xmppuv__scram_keys_copy(const xmppuv__scram_keys_t *from,
                            xmppuv__scram_keys_t **out) {
  xmppuv__scram_keys_t *k = xmppuv__malloc(sizeof *k);
  if (k == NULL) return XMPPUV_ENOMEM;
  *k = *from;
  k->salt = xmppuv__memdup(from->salt, from->salt_len);
  if (k->salt == NULL) {
    xmppuv__secure_zero(k, sizeof *k);
    xmppuv__free(k);
    return XMPPUV_ENOMEM;
  }
  *out = k;
  return 0;
}

xmppuv__mech_t xmppuv__scram_keys_mech(const xmppuv__scram_keys_t *k) {
  switch (k->md) {
    case MBEDTLS_MD_SHA1: return XMPPUV__MECH_SCRAM_SHA_1;
    case MBEDTLS_MD_SHA256: return XMPPUV__MECH_SCRAM_SHA_256;
    default: return XMPPUV__MECH_SCRAM_SHA_512;
  }
}

int xmppuv__scram_keys_export(const xmppuv__scram_t *s,
                              xmppuv__scram_keys_t **out) {
  if (s == NULL || out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  if (s->state != ST_DONE) return XMPPUV_ESTATE;
  return xmppuv__scram_keys_copy(&s->keys, out);
}

int xmppuv__scram_use_keys(xmppuv__scram_t *s,
                           const xmppuv__scram_keys_t *keys) {
  if (s == NULL || keys == NULL) return XMPPUV_EINVAL;
  if (s->state != ST_NEW && s->state != ST_FIRST_SENT && s->state != ST_NEED_KEYS)
    return XMPPUV_ESTATE;
  xmppuv__scram_keys_t *copy;
  int rc = xmppuv__scram_keys_copy(keys, &copy);
  if (rc != 0) return rc;
  xmppuv__scram_keys_free(s->offered);
  s->offered = copy;
  s->offered_on_request = s->state == ST_NEED_KEYS;
  return 0;
}

int xmppuv__scram_used_cached_keys(const xmppuv__scram_t *s) {
  return s != NULL && s->used_cached;
}

/* ---- object -------------------------------------------------------------- */

static void wipe_password(xmppuv__scram_t *s) {
  if (s->password == NULL) return;
  xmppuv__secure_zero(s->password, s->password_len);
  xmppuv__free(s->password);
  s->password = NULL;
  s->password_len = 0;
}

static int fail(xmppuv__scram_t *s, int rc) {
  s->state = ST_FAILED;
  wipe_password(s);
  keys_clear(&s->keys);
  xmppuv__scram_keys_free(s->offered);
  s->offered = NULL;
  xmppuv__secure_zero(s->server_signature, sizeof s->server_signature);
  return rc;
}

void xmppuv__scram_free(xmppuv__scram_t *s) {
  if (s == NULL) return;
  fail(s, 0);
  xmppuv__free(s->gs2_header);
  if (s->cb_data != NULL) xmppuv__secure_zero(s->cb_data, s->cb_len);
  xmppuv__free(s->cb_data);
  xmppuv__free(s->name);
  xmppuv__free(s->nonce);
  xmppuv__buf_free(&s->auth_message);
  xmppuv__buf_free(&s->final_bare);
  xmppuv__free(s->error);
  xmppuv__free(s);
}

static int md_of(xmppuv__mech_t mech, mbedtls_md_type_t *md) {
  switch (mech) {
  case XMPPUV__MECH_SCRAM_SHA_1:
  case XMPPUV__MECH_SCRAM_SHA_1_PLUS:
    *md = MBEDTLS_MD_SHA1;
    return 0;
  case XMPPUV__MECH_SCRAM_SHA_256:
  case XMPPUV__MECH_SCRAM_SHA_256_PLUS:
    *md = MBEDTLS_MD_SHA256;
    return 0;
  case XMPPUV__MECH_SCRAM_SHA_512:
  case XMPPUV__MECH_SCRAM_SHA_512_PLUS:
    *md = MBEDTLS_MD_SHA512;
    return 0;
  default:
    return XMPPUV_EINVAL;
  }
}

/* RFC 5802 §7 printable: %x21-2B / %x2D-7E. */
static int printable(const char *s, size_t len) {
  if (len == 0) return 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] < 0x21 || s[i] > 0x7E || s[i] == ',') return 0;
  return 1;
}

/* RFC 5802 §7 gs2-cbind-flag: "p=" cb-name / "n" / "y". */
static int valid_flag(const char *flag, int plus) {
  if (plus) {
    if (strncmp(flag, "p=", 2) != 0) return 0;
    const char *name = flag + 2;
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
  return strcmp(flag, "n") == 0 || strcmp(flag, "y") == 0;
}

/* RFC 5802 §5.1: ',' and '=' in a saslname are written "=2C" and "=3D". */
static int escape_name(const char *name, char **out) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  int rc = xmppuv__buf_reserve(&b, strlen(name));
  for (const char *p = name; rc == 0 && *p != '\0'; p++) {
    if (*p == ',')
      rc = xmppuv__buf_append(&b, "=2C", 3);
    else if (*p == '=')
      rc = xmppuv__buf_append(&b, "=3D", 3);
    else
      rc = xmppuv__buf_append_char(&b, *p);
  }
  if (rc != 0) {
    xmppuv__buf_free(&b);
    return rc;
  }
  *out = xmppuv__buf_detach(&b, NULL);
  return 0;
}

int xmppuv__scram_new(xmppuv__mech_t mech, const char *authcid,
                      const char *password, const char *gs2_cb_flag,
                      const unsigned char *cb_data, size_t cb_len,
                      const char *client_nonce, xmppuv__scram_t **out) {
  mbedtls_md_type_t md;
  if (out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  if (authcid == NULL || gs2_cb_flag == NULL || md_of(mech, &md) != 0)
    return XMPPUV_EINVAL;
  int plus = xmppuv__mech_is_plus(mech);
  if (!valid_flag(gs2_cb_flag, plus)) return XMPPUV_EINVAL;
  /* RFC 5802 §6: binding data goes with "p=" and only with it. */
  if (plus ? (cb_data == NULL || cb_len == 0) : cb_len != 0)
    return XMPPUV_EINVAL;
  if (client_nonce != NULL && !printable(client_nonce, strlen(client_nonce)))
    return XMPPUV_EINVAL;

  xmppuv__scram_t *s = xmppuv__calloc(1, sizeof *s);
  if (s == NULL) return XMPPUV_ENOMEM;
  s->mech = mech;
  s->md = md;
  s->hlen = mbedtls_md_get_size(mbedtls_md_info_from_type(md));
  s->state = ST_NEW;
  int rc = 0;
  char *prepared = NULL;
  rc = xmppuv__sasl_prep(authcid, 0, &prepared, NULL);
  if (rc == 0) {
    rc = escape_name(prepared, &s->name);
    xmppuv__free(prepared);
  }
  if (rc == 0 && password != NULL)
    rc = xmppuv__sasl_prep(password, 1, &s->password, &s->password_len);
  if (rc == 0) {
    size_t flen = strlen(gs2_cb_flag);
    s->gs2_header = xmppuv__malloc(flen + 3);
    if (s->gs2_header == NULL) {
      rc = XMPPUV_ENOMEM;
    } else {
      memcpy(s->gs2_header, gs2_cb_flag, flen);
      memcpy(s->gs2_header + flen, ",,", 3);
    }
  }
  if (rc == 0 && plus) {
    s->cb_data = xmppuv__memdup(cb_data, cb_len);
    if (s->cb_data == NULL) rc = XMPPUV_ENOMEM;
    s->cb_len = cb_len;
  }
  if (rc == 0) {
    if (client_nonce != NULL) {
      s->nonce = xmppuv__strdup(client_nonce);
      if (s->nonce == NULL) rc = XMPPUV_ENOMEM;
    } else {
      rc = random_nonce(&s->nonce);
    }
  }
  if (rc != 0) {
    xmppuv__scram_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* ---- messages ------------------------------------------------------------ */

int xmppuv__scram_client_first(xmppuv__scram_t *s, xmppuv__buf_t *out) {
  if (s == NULL || out == NULL) return XMPPUV_EINVAL;
  if (s->state != ST_NEW) return XMPPUV_ESTATE;
  /* RFC 5802 §7: client-first-message-bare = username "," nonce */
  xmppuv__buf_t *am = &s->auth_message;
  xmppuv__buf_clear(am);
  int rc = xmppuv__buf_append_str(am, "n=");
  if (rc == 0) rc = xmppuv__buf_append_str(am, s->name);
  if (rc == 0) rc = xmppuv__buf_append_str(am, ",r=");
  if (rc == 0) rc = xmppuv__buf_append_str(am, s->nonce);
  /* One reservation, then appends that cannot fail: out is untouched on
   * error. */
  if (rc == 0) rc = xmppuv__buf_reserve(out, strlen(s->gs2_header) + am->len);
  if (rc != 0) return fail(s, rc);
  xmppuv__buf_append_str(out, s->gs2_header);
  xmppuv__buf_append(out, am->data, am->len);
  s->state = ST_FIRST_SENT;
  return 0;
}

typedef struct attr {
  char name;
  const char *val;
  size_t len;
} attr_t;

/* RFC 5802 §7: attr-val = ALPHA "=" value; value = 1*value-char. Takes the
 * next one off [*p, end), with the ',' after it. */
static int next_attr(const char **p, const char *end, attr_t *a) {
  const char *q = *p;
  if (end - q < 3) return XMPPUV_EPROTO;
  if (!((q[0] >= 'a' && q[0] <= 'z') || (q[0] >= 'A' && q[0] <= 'Z')) ||
      q[1] != '=')
    return XMPPUV_EPROTO;
  a->name = q[0];
  a->val = q + 2;
  const char *comma = memchr(a->val, ',', (size_t)(end - a->val));
  const char *vend = comma != NULL ? comma : end;
  a->len = (size_t)(vend - a->val);
  if (a->len == 0) return XMPPUV_EPROTO;
  if (comma != NULL && comma + 1 == end) return XMPPUV_EPROTO; /* "...," */
  *p = comma != NULL ? comma + 1 : end;
  return 0;
}

/* Extensions after the mandatory attributes: well-formed; XEP-0474's "h"
 * (the hash of what the server offered) must match what we saw offered,
 * else someone in between changed the offer; the rest are ignored. */
static int check_extensions(const xmppuv__scram_t *s, const char *p, const char *end) {
  attr_t a;
  while (p < end) {
    int rc = next_attr(&p, end, &a);
    if (rc != 0) return rc;
    if (a.name == 'h' && s->ssdp[0] != '\0' &&
        (a.len != strlen(s->ssdp) || memcmp(a.val, s->ssdp, a.len) != 0))
      return XMPPUV_EDOWNGRADE;
  }
  return 0;
}

/* Extensions of the server-final-message: well-formed, ignored. */
static int skip_extensions(const char *p, const char *end) {
  attr_t a;
  while (p < end) {
    int rc = next_attr(&p, end, &a);
    if (rc != 0) return rc;
  }
  return 0;
}

static int by_octets(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* S = sorted mechanisms joined by 0x1E, then (with XEP-0440) 0x1F and the
 * sorted channel-binding types joined by 0x1E; base64(H(S)). */
int xmppuv__scram_expect_ssdp(xmppuv__scram_t *s, const char *const *mechs, size_t n_mechs,
                              int cb_advertised, const char *const *cb_types, size_t n_cb) {
  if (n_mechs > 64 || n_cb > 64) return XMPPUV_EINVAL;
  const char *sorted[64];
  xmppuv__buf_t in = XMPPUV__BUF_INIT, out = XMPPUV__BUF_INIT;
  int rc = 0;
  for (int part = 0; part < (cb_advertised ? 2 : 1) && rc == 0; part++) {
    const char *const *list = part == 0 ? mechs : cb_types;
    size_t n = part == 0 ? n_mechs : n_cb;
    if (n > 0) memcpy(sorted, list, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, by_octets);
    if (part == 1) rc = xmppuv__buf_append_char(&in, '\x1f');
    for (size_t i = 0; i < n && rc == 0; i++) {
      if (i > 0) rc = xmppuv__buf_append_char(&in, '\x1e');
      if (rc == 0) rc = xmppuv__buf_append_str(&in, sorted[i]);
    }
  }
  unsigned char digest[KEY_MAX];
  if (rc == 0) rc = hash(s, (const unsigned char *)(in.data ? in.data : ""), in.len, digest);
  if (rc == 0) rc = xmppuv__base64_encode(digest, s->hlen, &out);
  if (rc == 0 && out.len >= sizeof s->ssdp) rc = XMPPUV_EINVAL;
  if (rc == 0) {
    memcpy(s->ssdp, out.data, out.len);
    s->ssdp[out.len] = '\0';
  }
  xmppuv__buf_free(&in);
  xmppuv__buf_free(&out);
  return rc;
}

/* RFC 5802 §7: posit-number = %x31-39 *DIGIT. Values above the cap are
 * refused before they can overflow. */
static int parse_iterations(const attr_t *a, unsigned long *out) {
  if (a->val[0] < '1' || a->val[0] > '9') return XMPPUV_EPROTO;
  unsigned long v = 0;
  for (size_t i = 0; i < a->len; i++) {
    char c = a->val[i];
    if (c < '0' || c > '9') return XMPPUV_EPROTO;
    v = v * 10 + (unsigned long)(c - '0');
    if (v > XMPPUV__SCRAM_MAX_ITERATIONS) return XMPPUV_EPROTO;
  }
  *out = v;
  return 0;
}

/* RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i)
 *              ClientKey := HMAC(SaltedPassword, "Client Key")
 *              ServerKey := HMAC(SaltedPassword, "Server Key") */
static int derive(mbedtls_md_type_t md, size_t hlen, const char *password,
                  size_t password_len, const unsigned char *salt,
                  size_t salt_len, unsigned int iterations,
                  unsigned char *client_key, unsigned char *server_key) {
  const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
  unsigned char salted[KEY_MAX];
  int rc = pbkdf2(md, hlen, password, password_len, salt, salt_len, iterations, salted);
  if (rc == 0) rc = mbedtls_md_hmac(info, salted, hlen, (const unsigned char *)"Client Key",
                                    10, client_key) == 0 ? 0 : XMPPUV_ECRYPTO;
  if (rc == 0) rc = mbedtls_md_hmac(info, salted, hlen, (const unsigned char *)"Server Key",
                                    10, server_key) == 0 ? 0 : XMPPUV_ECRYPTO;
  xmppuv__secure_zero(salted, sizeof salted);
  return rc;
}

int xmppuv__scram_derive(xmppuv__mech_t mech, const char *prepared_password,
                         size_t password_len, const unsigned char *salt,
                         size_t salt_len, unsigned int iterations,
                         unsigned char client_key[XMPPUV__SCRAM_KEY_MAX],
                         unsigned char server_key[XMPPUV__SCRAM_KEY_MAX],
                         size_t *key_len) {
  mbedtls_md_type_t md;
  if (md_of(mech, &md) != 0 || prepared_password == NULL || salt == NULL ||
      salt_len == 0 || iterations == 0)
    return XMPPUV_EINVAL;
  size_t hlen = mbedtls_md_get_size(mbedtls_md_info_from_type(md));
  *key_len = hlen;
  return derive(md, hlen, prepared_password, password_len, salt, salt_len, iterations,
                client_key, server_key);
}

int xmppuv__scram_keys_new(xmppuv__mech_t mech, const unsigned char *salt,
                           size_t salt_len, unsigned int iterations,
                           const unsigned char *client_key,
                           const unsigned char *server_key, size_t key_len,
                           xmppuv__scram_keys_t **out) {
  mbedtls_md_type_t md;
  *out = NULL;
  if (md_of(mech, &md) != 0 || salt == NULL || salt_len == 0) return XMPPUV_EINVAL;
  xmppuv__scram_keys_t k;
  memset(&k, 0, sizeof k);
  k.md = md;
  k.hlen = mbedtls_md_get_size(mbedtls_md_info_from_type(md));
  if (key_len != k.hlen) return XMPPUV_EINVAL;
  k.salt = (unsigned char *)(uintptr_t)salt;
  k.salt_len = salt_len;
  k.iterations = iterations;
  memcpy(k.client_key, client_key, key_len);
  memcpy(k.server_key, server_key, key_len);
  int rc = xmppuv__scram_keys_copy(&k, out);
  xmppuv__secure_zero(&k, sizeof k);
  return rc;
}

/* The keys for the server's salt and iteration count (in s->keys): the
 * offered ones when they match, else from the password; 1 if there is
 * neither (the caller must supply keys). */
static int derive_keys(xmppuv__scram_t *s) {
  xmppuv__scram_keys_t *k = &s->keys;
  const xmppuv__scram_keys_t *c = s->offered;
  if (c != NULL && c->md == s->md && c->iterations == k->iterations &&
      c->salt_len == k->salt_len && memcmp(c->salt, k->salt, k->salt_len) == 0) {
    memcpy(k->client_key, c->client_key, s->hlen);
    memcpy(k->server_key, c->server_key, s->hlen);
    s->used_cached = !s->offered_on_request;
    return 0;
  }
  if (s->password == NULL) return 1;
  return derive(s->md, s->hlen, s->password, s->password_len, k->salt, k->salt_len,
                k->iterations, k->client_key, k->server_key);
}

/* With the keys: the proof, the expected server signature and the
 * client-final-message. */
static int finish_client_final(xmppuv__scram_t *s, xmppuv__buf_t *client_final) {
  xmppuv__buf_t *am = &s->auth_message;
  /* StoredKey := H(ClientKey)
   * ClientSignature := HMAC(StoredKey, AuthMessage)
   * ClientProof := ClientKey XOR ClientSignature
   * ServerSignature := HMAC(ServerKey, AuthMessage) */
  unsigned char stored[KEY_MAX], proof[KEY_MAX];
  int rc = hash(s, s->keys.client_key, s->hlen, stored);
  if (rc == 0) rc = hmac(s, stored, s->hlen, am->data, am->len, proof);
  if (rc == 0) {
    for (size_t i = 0; i < s->hlen; i++) proof[i] ^= s->keys.client_key[i];
    rc = hmac(s, s->keys.server_key, s->hlen, am->data, am->len, s->server_signature);
  }
  xmppuv__buf_t *final = &s->final_bare;
  if (rc == 0) rc = xmppuv__buf_append_str(final, ",p=");
  if (rc == 0) rc = xmppuv__base64_encode(proof, s->hlen, final);
  xmppuv__secure_zero(stored, sizeof stored);
  xmppuv__secure_zero(proof, sizeof proof);
  if (rc == 0) rc = xmppuv__buf_append(client_final, final->data, final->len);
  xmppuv__buf_free(final);
  if (rc != 0) return fail(s, rc);
  s->state = ST_FINAL_SENT;
  return 0;
}

int xmppuv__scram_server_first(xmppuv__scram_t *s, const char *msg, size_t len,
                               xmppuv__buf_t *client_final) {
  if (s == NULL || client_final == NULL || (msg == NULL && len > 0))
    return XMPPUV_EINVAL;
  if (s->state != ST_FIRST_SENT) return XMPPUV_ESTATE;
  if (len == 0 || xmppuv__xml_text_check(msg, len) != 0)
    return fail(s, XMPPUV_EPROTO);

  /* RFC 5802 §7: server-first-message =
   *   [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions] */
  const char *p = msg, *end = msg + len;
  attr_t r, salt_attr, it;
  int rc = next_attr(&p, end, &r);
  /* RFC 5802 §5.1: "m" is reserved; a client MUST fail if it is present. */
  if (rc == 0 && r.name != 'r') rc = XMPPUV_EPROTO;
  if (rc == 0) rc = next_attr(&p, end, &salt_attr);
  if (rc == 0 && salt_attr.name != 's') rc = XMPPUV_EPROTO;
  if (rc == 0) rc = next_attr(&p, end, &it);
  if (rc == 0 && it.name != 'i') rc = XMPPUV_EPROTO;
  if (rc == 0) rc = check_extensions(s, p, end);
  if (rc != 0) return fail(s, rc);

  /* RFC 5802 §5.1: the server's nonce starts with ours and adds to it. */
  size_t nlen = strlen(s->nonce);
  if (!printable(r.val, r.len) || r.len <= nlen ||
      memcmp(r.val, s->nonce, nlen) != 0)
    return fail(s, XMPPUV_EPROTO);

  if (salt_attr.len > (XMPPUV__SCRAM_MAX_SALT + 2) / 3 * 4)
    return fail(s, XMPPUV_EPROTO);
  xmppuv__buf_t salt = XMPPUV__BUF_INIT;
  rc = xmppuv__base64_decode(salt_attr.val, salt_attr.len, &salt);
  if (rc == 0 && (salt.len == 0 || salt.len > XMPPUV__SCRAM_MAX_SALT))
    rc = XMPPUV_EPROTO;

  unsigned long iterations = 0;
  if (rc == 0) rc = parse_iterations(&it, &iterations);
  if (rc == 0 && iterations < XMPPUV__SCRAM_MIN_ITERATIONS)
    rc = XMPPUV_EAUTHITER;

  /* client-final-message-without-proof = channel-binding "," nonce, where
   * channel-binding = "c=" base64(gs2-header [cbind-data]) (§7). */
  xmppuv__buf_t cb = XMPPUV__BUF_INIT, *final = &s->final_bare;
  xmppuv__buf_clear(final);
  if (rc == 0) rc = xmppuv__buf_append_str(&cb, s->gs2_header);
  if (rc == 0 && s->cb_len > 0)
    rc = xmppuv__buf_append(&cb, s->cb_data, s->cb_len);
  if (rc == 0) rc = xmppuv__buf_append_str(final, "c=");
  if (rc == 0) rc = xmppuv__base64_encode(cb.data, cb.len, final);
  if (rc == 0) rc = xmppuv__buf_append_str(final, ",r=");
  if (rc == 0) rc = xmppuv__buf_append(final, r.val, r.len);
  xmppuv__buf_free(&cb);

  /* AuthMessage := client-first-message-bare + "," +
   *                server-first-message + "," +
   *                client-final-message-without-proof */
  xmppuv__buf_t *am = &s->auth_message;
  if (rc == 0) rc = xmppuv__buf_append_char(am, ',');
  if (rc == 0) rc = xmppuv__buf_append(am, msg, len);
  if (rc == 0) rc = xmppuv__buf_append_char(am, ',');
  if (rc == 0) rc = xmppuv__buf_append(am, final->data, final->len);

  xmppuv__scram_keys_t *k = &s->keys;
  k->md = s->md;
  k->hlen = s->hlen;
  k->iterations = (unsigned int)iterations;
  if (rc == 0) {
    k->salt = (unsigned char *)xmppuv__memdup(salt.data, salt.len);
    if (k->salt == NULL) rc = XMPPUV_ENOMEM;
    k->salt_len = salt.len;
  }
  xmppuv__buf_free(&salt);
  if (rc == 0) rc = derive_keys(s);
  wipe_password(s); /* the keys are all we need from here on */
  if (rc == 1) {
    /* Neither a password nor keys for this salt: the caller derives them
     * (xmppuv__scram_key_request, xmppuv__scram_derive) and goes on with
     * xmppuv__scram_use_keys and xmppuv__scram_client_final. */
    s->state = ST_NEED_KEYS;
    return XMPPUV__SCRAM_NEED_KEYS;
  }
  if (rc != 0) return fail(s, rc);
  return finish_client_final(s, client_final);
}

int xmppuv__scram_key_request(const xmppuv__scram_t *s, xmppuv__mech_t *mech,
                              const unsigned char **salt, size_t *salt_len,
                              unsigned int *iterations) {
  if (s == NULL || s->state != ST_NEED_KEYS) return XMPPUV_ESTATE;
  *mech = s->mech;
  *salt = s->keys.salt;
  *salt_len = s->keys.salt_len;
  *iterations = s->keys.iterations;
  return 0;
}

int xmppuv__scram_client_final(xmppuv__scram_t *s, xmppuv__buf_t *client_final) {
  if (s == NULL || client_final == NULL) return XMPPUV_EINVAL;
  if (s->state != ST_NEED_KEYS) return XMPPUV_ESTATE;
  int rc = derive_keys(s);
  if (rc == 1) return XMPPUV__SCRAM_NEED_KEYS; /* the keys given do not fit */
  if (rc != 0) return fail(s, rc);
  return finish_client_final(s, client_final);
}

int xmppuv__scram_server_final(xmppuv__scram_t *s, const char *msg,
                               size_t len) {
  if (s == NULL || (msg == NULL && len > 0)) return XMPPUV_EINVAL;
  if (s->state != ST_FINAL_SENT) return XMPPUV_ESTATE;
  if (len == 0 || xmppuv__xml_text_check(msg, len) != 0)
    return fail(s, XMPPUV_EPROTO);

  /* RFC 5802 §7: server-final-message = (server-error / verifier)
   *                                     ["," extensions] */
  const char *p = msg, *end = msg + len;
  attr_t a;
  int rc = next_attr(&p, end, &a);
  if (rc == 0) rc = skip_extensions(p, end);
  if (rc == 0 && a.name != 'e' && a.name != 'v') rc = XMPPUV_EPROTO;
  if (rc != 0) return fail(s, rc);

  if (a.name == 'e') {
    s->error = xmppuv__strndup(a.val, a.len);
    return fail(s, s->error != NULL ? XMPPUV_EAUTH : XMPPUV_ENOMEM);
  }
  xmppuv__buf_t v = XMPPUV__BUF_INIT;
  rc = xmppuv__base64_decode(a.val, a.len, &v);
  if (rc == 0 && (v.len != s->hlen ||
                  !ct_equal((unsigned char *)v.data, s->server_signature,
                            s->hlen)))
    rc = XMPPUV_EAUTHSERVER;
  xmppuv__buf_free(&v);
  if (rc != 0) return fail(s, rc);
  s->state = ST_DONE;
  return 0;
}

const char *xmppuv__scram_error_text(const xmppuv__scram_t *s) {
  return s != NULL ? s->error : NULL;
}
