/* The TLS filter: mbedTLS reading and writing memory buffers (see tls.h). */
#include "transport/tls.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/version.h>

#include <mbedtls/base64.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#if MBEDTLS_VERSION_MAJOR >= 3 && \
    (defined(MBEDTLS_USE_PSA_CRYPTO) || defined(MBEDTLS_SSL_PROTO_TLS1_3))
#include <psa/crypto.h>
#define NEED_PSA_INIT 1
#endif

#include "transport/cert_cache.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "xmppuv.h"

/* The chain check with a cache of verified chains (transport/cert_cache.h)
 * steps the handshake itself and needs the parsed peer chain kept, the
 * system clock as mbedTLS reads it, and two of mbedTLS 2.28's internal
 * checks (mbedtls/ssl_internal.h is installed with it and exports them).
 * Elsewhere mbedTLS checks every chain itself, as before. */
#if MBEDTLS_VERSION_MAJOR < 3 && defined(MBEDTLS_SSL_KEEP_PEER_CERTIFICATE) && \
    defined(MBEDTLS_HAVE_TIME_DATE) && defined(MBEDTLS_SSL_CLI_C) &&           \
    defined(MBEDTLS_X509_CRT_PARSE_C)
#include <time.h>
#include <mbedtls/ssl_internal.h>
#define CHAIN_CACHE 1
#endif

#define AREA "tls"

/* A ServerHello larger than this is not inspected for the extended master
 * secret extension (tls-exporter is then refused, never claimed). Real ones
 * are 60 to 200 bytes. */
#define HELLO_MAX 2048
/* RFC 5246 §6.2.1: a record header is type(1) version(2) length(2). */
#define RECORD_HEADER 5
#define RECORD_HANDSHAKE 22
#define HANDSHAKE_SERVER_HELLO 2
/* RFC 7627 §5.1 */
#define EXT_EXTENDED_MASTER_SECRET 23
#define EXPORTER_CONTEXT_MAX 256

/* mbedTLS 3.0 renamed the "bad certificate message" error. */
#if defined(MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE)
#define ERR_BAD_CERTIFICATE MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE
#else
#define ERR_BAD_CERTIFICATE MBEDTLS_ERR_SSL_BAD_CERTIFICATE
#endif
#if MBEDTLS_VERSION_MAJOR >= 3 || defined(MBEDTLS_SSL_EXPORT_KEYS)
#define HAVE_EXPORT_KEYS 1
#endif

enum { PIN_NONE, PIN_SPKI, PIN_CERT };
enum { ST_HANDSHAKE, ST_OPEN, ST_CLOSED };

struct xmppuv__tls_ctx {
  unsigned long refs;
  int shared; /* in the per-thread list of xmppuv__tls_ctx_shared() */
  const xmppuv__log_t *log;
  int insecure;
  int pin_kind;
  unsigned char pin[32];
  int have_ca;
  mbedtls_x509_crt ca;
  int have_own; /* a client certificate and its key */
  mbedtls_x509_crt own_cert;
  mbedtls_pk_context own_key;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
#if defined(CHAIN_CACHE)
  xmppuv__cert_cache_t verified; /* chains checked against ca */
  long chain_checks;             /* chains checked in full (tests) */
  long clock_skew;               /* seconds; tests only */
#endif
};

struct xmppuv__tls {
  xmppuv__tls_ctx_t *ctx;
  const xmppuv__log_t *log; /* the connection's owner's; the ctx may be shared */
  char *server_name;
  /* Per connection: mbedTLS 2.28 hands the export-keys callback only the
   * config's context pointer, so the config must know its connection. */
  mbedtls_ssl_config conf;
  mbedtls_ssl_context ssl;

  char *error_text; /* what went wrong, for the owner (tls_note), or NULL */
  int got_bytes;         /* the server sent something already */
  xmppuv__buf_t in; /* ciphertext fed, from in_off on not yet read by mbedTLS */
  size_t in_off;
  xmppuv__buf_t out; /* ciphertext to send, from out_off on */
  size_t out_off;
  xmppuv__buf_t pending; /* plaintext written before the handshake completed */

  /* Record framing of the incoming stream, to tell a clean end of stream
   * from a truncated record, and to find the ServerHello. */
  unsigned char hdr[RECORD_HEADER];
  size_t hdr_len;
  size_t rec_left;
  unsigned char rec_type;
  int sniffing;
  unsigned char *hello;
  size_t hello_len;
  int ems; /* the server agreed to the extended master secret */

  /* TLS 1.2 key material for RFC 5705 exporters. */
  int have_keys;
  mbedtls_tls_prf_types prf;
  unsigned char master[48];
  unsigned char randoms[64]; /* client_random + server_random */

  int state;
  int handshake_done;
  int err;         /* sticky error, 0 if none */
  int eof;         /* the network reported end of stream */
  int send_failed; /* the out buffer could not grow */
  int pin_ok;
  int pin_mismatch;
  uint32_t ca_flags; /* what CA verification said, in pin mode */
  char *leaf_desc;   /* the server certificate, for log lines */
  int offered_session; /* xmppuv__tls_session_offer() gave one */
  int saw_cert;        /* the server sent a certificate: a full handshake */
  int own_chain_check; /* check_chain() checks the chain, not mbedTLS */
};

/* A TLS session to resume (RFC 5246 §7.3 session ID, or an RFC 5077
 * ticket), for the server it was made with. */
struct xmppuv__tls_session {
  mbedtls_ssl_session s;
  char *server_name;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static const xmppuv__log_t *tlog(const xmppuv__tls_t *t) { return t->log; }

static void mbedtls_text(int ret, char *buf, size_t size) {
#if defined(MBEDTLS_ERROR_C)
  mbedtls_strerror(ret, buf, size);
#else
  snprintf(buf, size, "mbedTLS error");
#endif
}

static int sha256(const unsigned char *data, size_t len, unsigned char out[32]) {
#if MBEDTLS_VERSION_MAJOR >= 3
  return mbedtls_sha256(data, len, out, 0);
#else
  return mbedtls_sha256_ret(data, len, out, 0);
#endif
}

static int is_alloc_error(int ret) {
  return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ||
         ret == MBEDTLS_ERR_X509_ALLOC_FAILED ||
         ret == MBEDTLS_ERR_PK_ALLOC_FAILED ||
         ret == MBEDTLS_ERR_MPI_ALLOC_FAILED;
}


static int fail(xmppuv__tls_t *t, int err) {
  if (t->err == 0) t->err = err;
  return t->err;
}

/* ------------------------------------------------------------------------ */
/* Pins                                                                     */
/* ------------------------------------------------------------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int parse_pin(const char *pin, int *kind, unsigned char out[32]) {
  if (strncmp(pin, "sha256//", 8) == 0) {
    const char *b64 = pin + 8;
    size_t blen = strlen(b64), olen = 0;
    unsigned char tmp[33];
    /* 32 bytes are 44 base64 characters, the last one '='. */
    if (blen != 44 ||
        mbedtls_base64_decode(tmp, sizeof tmp, &olen,
                              (const unsigned char *)b64, blen) != 0 ||
        olen != 32)
      return XMPPUV_EINVAL;
    memcpy(out, tmp, 32);
    *kind = PIN_SPKI;
    return 0;
  }
  /* 64 hex digits, optionally "AB:CD:..." as openssl prints fingerprints. */
  const char *p = pin;
  for (size_t i = 0; i < 32; i++) {
    if (i > 0 && *p == ':') p++;
    int hi = hexval(p[0]);
    int lo = hi < 0 ? -1 : hexval(p[1]);
    if (lo < 0) return XMPPUV_EINVAL;
    out[i] = (unsigned char)(hi << 4 | lo);
    p += 2;
  }
  if (*p != '\0') return XMPPUV_EINVAL;
  *kind = PIN_CERT;
  return 0;
}

static int pin_digest(int kind, const mbedtls_x509_crt *crt,
                      unsigned char digest[32]) {
  /* pk_raw is the certificate's SubjectPublicKeyInfo exactly as encoded,
   * which is what curl and `openssl pkey -pubout -outform DER` hash. */
  if (kind == PIN_SPKI) return sha256(crt->pk_raw.p, crt->pk_raw.len, digest);
  return sha256(crt->raw.p, crt->raw.len, digest);
}

/* ------------------------------------------------------------------------ */
/* Certificate descriptions and verification results                        */
/* ------------------------------------------------------------------------ */

static void append_time(char *buf, size_t size, const char *label,
                        const mbedtls_x509_time *tm) {
  size_t len = strlen(buf);
  if (len < size)
    snprintf(buf + len, size - len, "%s%04d-%02d-%02d", label, tm->year,
             tm->mon, tm->day);
}

/* "subject 'CN=x', names [a, b], issuer 'CN=y', valid 2020-01-01 to
 * 2030-01-01" */
static char *describe_cert(const mbedtls_x509_crt *crt) {
  char subject[256], issuer[256], line[1024];
  if (mbedtls_x509_dn_gets(subject, sizeof subject, &crt->subject) < 0)
    strcpy(subject, "?");
  if (mbedtls_x509_dn_gets(issuer, sizeof issuer, &crt->issuer) < 0)
    strcpy(issuer, "?");
  snprintf(line, sizeof line, "subject '%s', names [", subject);
  const mbedtls_x509_sequence *san = &crt->subject_alt_names;
  int first = 1;
  for (; san != NULL && san->buf.p != NULL; san = san->next) {
    /* RFC 5280 §4.2.1.6: dNSName is [2] IA5String. */
    if (san->buf.tag !=
        (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME))
      continue;
    size_t len = strlen(line);
    if (len + san->buf.len + 3 >= sizeof line) break;
    if (!first) {
      memcpy(line + len, ", ", 2);
      len += 2;
    }
    for (size_t i = 0; i < san->buf.len; i++) {
      unsigned char c = san->buf.p[i];
      line[len++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
    }
    line[len] = '\0';
    first = 0;
  }
  size_t len = strlen(line);
  snprintf(line + len, sizeof line - len, "], issuer '%s'", issuer);
  append_time(line, sizeof line, ", valid ", &crt->valid_from);
  append_time(line, sizeof line, " to ", &crt->valid_to);
  return xmppuv__strdup(line);
}

/* Reasons in a fixed order: the first is the one returned. */
static const struct {
  uint32_t flags;
  int code;
  const char *text;
} verify_reasons[] = {
    {MBEDTLS_X509_BADCERT_NOT_TRUSTED, XMPPUV_ECERTUNTRUSTED,
     "not issued by a trusted CA"},
    {MBEDTLS_X509_BADCERT_EXPIRED, XMPPUV_ECERTEXPIRED, "expired"},
    {MBEDTLS_X509_BADCERT_FUTURE, XMPPUV_ECERTFUTURE, "not valid yet"},
    {MBEDTLS_X509_BADCERT_CN_MISMATCH, XMPPUV_ECERTNAME,
     "does not name the XMPP domain"},
    {MBEDTLS_X509_BADCERT_REVOKED, XMPPUV_ECERTINVALID, "revoked"},
    {MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
         MBEDTLS_X509_BADCERT_NS_CERT_TYPE,
     XMPPUV_ECERTINVALID, "not usable for a TLS server"},
    {MBEDTLS_X509_BADCERT_BAD_MD, XMPPUV_ECERTINVALID,
     "signed with an unacceptable hash"},
    {MBEDTLS_X509_BADCERT_BAD_PK, XMPPUV_ECERTINVALID,
     "signed with an unacceptable algorithm"},
    {MBEDTLS_X509_BADCERT_BAD_KEY, XMPPUV_ECERTINVALID,
     "key too weak or curve not allowed"},
    {MBEDTLS_X509_BADCERT_MISSING, XMPPUV_ECERTINVALID, "missing"},
};

/* Fills text with the reasons and returns the first one's code. */
static int verify_reasons_text(uint32_t flags, char *text, size_t size) {
  int code = 0;
  text[0] = '\0';
  for (size_t i = 0; i < sizeof verify_reasons / sizeof verify_reasons[0];
       i++) {
    if ((flags & verify_reasons[i].flags) == 0) continue;
    if (code == 0) code = verify_reasons[i].code;
    size_t len = strlen(text);
    snprintf(text + len, size - len, "%s%s", len ? ", " : "",
             verify_reasons[i].text);
  }
  if (code == 0) {
    code = XMPPUV_ECERTINVALID;
    snprintf(text, size, "invalid (mbedTLS flags 0x%lx)", (unsigned long)flags);
  }
  return code;
}

static int verify_cb(void *arg, mbedtls_x509_crt *crt, int depth,
                     uint32_t *flags) {
  xmppuv__tls_t *t = arg;
  t->saw_cert = 1;
  if (depth == 0 && t->leaf_desc == NULL) t->leaf_desc = describe_cert(crt);
  if (t->ctx->pin_kind == PIN_NONE) return 0;
  /* Pin mode: the pin is the whole decision. Keep what the CA check said
   * for the log, and clear it. */
  t->ca_flags |= *flags;
  *flags = 0;
  if (depth != 0) return 0;
  unsigned char digest[32];
  if (pin_digest(t->ctx->pin_kind, crt, digest) != 0 ||
      memcmp(digest, t->ctx->pin, sizeof digest) != 0) {
    t->pin_mismatch = 1;
    /* Not VERIFY_FAILED: authmode is OPTIONAL here, which would forgive it.
     * This aborts the handshake with a bad_certificate-class alert. */
    return MBEDTLS_ERR_X509_FATAL_ERROR;
  }
  t->pin_ok = 1;
  return 0;
}

#if defined(CHAIN_CACHE)
/* The time on every certificate of a verified path, trust anchor included
 * (mbedTLS hands each to the verify callback). */
typedef struct chain_window {
  xmppuv__tls_t *t;
  xmppuv__cert_time_t not_before, not_after;
} chain_window_t;

static xmppuv__cert_time_t cert_time(const mbedtls_x509_time *x) {
  xmppuv__cert_time_t c = {x->year, x->mon, x->day, x->hour, x->min, x->sec};
  return c;
}

static int window_cb(void *arg, mbedtls_x509_crt *crt, int depth,
                     uint32_t *flags) {
  chain_window_t *w = arg;
  xmppuv__cert_time_t from = cert_time(&crt->valid_from);
  xmppuv__cert_time_t to = cert_time(&crt->valid_to);
  if (xmppuv__cert_time_cmp(&from, &w->not_before) > 0) w->not_before = from;
  if (xmppuv__cert_time_cmp(&to, &w->not_after) < 0) w->not_after = to;
  return verify_cb(w->t, crt, depth, flags);
}

/* Lowers *ends to the earliest not-before after now among certs: until
 * then, no certificate that could be a parent changes from not yet valid to
 * valid (mbedTLS prefers a parent valid now, so that could change the path
 * it finds). */
static void next_change(const mbedtls_x509_crt *certs,
                        const xmppuv__cert_time_t *now,
                        xmppuv__cert_time_t *ends) {
  for (const mbedtls_x509_crt *c = certs; c != NULL; c = c->next) {
    if (c->version == 0) continue;
    xmppuv__cert_time_t from = cert_time(&c->valid_from);
    if (xmppuv__cert_time_cmp(&from, now) > 0 && xmppuv__cert_time_cmp(&from, ends) < 0)
      *ends = from;
  }
}

/* The time as mbedTLS reads it to check validity dates. */
static int utc_now(const xmppuv__tls_ctx_t *ctx, xmppuv__cert_time_t *now) {
  time_t secs = time(NULL) + (time_t)ctx->clock_skew;
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL) return -1;
  xmppuv__cert_time_t c = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                           tm.tm_hour, tm.tm_min, tm.tm_sec};
  *now = c;
  return 0;
}

/* The cache key: the name checked and each certificate's DER, lengths
 * included so that no two chains hash the same bytes. */
static int chain_key(const xmppuv__tls_t *t, const mbedtls_x509_crt *chain,
                     unsigned char key[XMPPUV__CERT_CACHE_KEY]) {
  mbedtls_sha256_context sha;
  mbedtls_sha256_init(&sha);
  int ret = mbedtls_sha256_starts_ret(&sha, 0);
  if (ret == 0)
    ret = mbedtls_sha256_update_ret(&sha, (const unsigned char *)t->server_name,
                                    strlen(t->server_name) + 1);
  for (const mbedtls_x509_crt *c = chain; ret == 0 && c != NULL; c = c->next) {
    size_t n = c->raw.len;
    unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    ret = mbedtls_sha256_update_ret(&sha, len, sizeof len);
    if (ret == 0) ret = mbedtls_sha256_update_ret(&sha, c->raw.p, n);
  }
  if (ret == 0) ret = mbedtls_sha256_finish_ret(&sha, key);
  mbedtls_sha256_free(&sha);
  return ret;
}

/* The alert mbedTLS itself sends for these verification flags. */
static unsigned char cert_alert(uint32_t flags) {
  if (flags & MBEDTLS_X509_BADCERT_OTHER) return MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED;
  if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) return MBEDTLS_SSL_ALERT_MSG_BAD_CERT;
  if (flags & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
               MBEDTLS_X509_BADCERT_NS_CERT_TYPE | MBEDTLS_X509_BADCERT_BAD_PK |
               MBEDTLS_X509_BADCERT_BAD_KEY))
    return MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT;
  if (flags & MBEDTLS_X509_BADCERT_EXPIRED) return MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED;
  if (flags & MBEDTLS_X509_BADCERT_REVOKED) return MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED;
  if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) return MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA;
  return MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN;
}

/* Runs right after mbedTLS parsed the server's Certificate message with
 * verification off for that one step: what mbedTLS would have checked with
 * VERIFY_REQUIRED (ssl_parse_certificate_verify() of mbedTLS 2.28.3: keep
 * the two in step when Debian's mbedTLS changes), the chain's signatures
 * skipped when the same chain for the same name was verified before
 * (transport/cert_cache.h). The key exchange that follows is still signed
 * with the certificate's key and checked by mbedTLS. */
static int check_chain(xmppuv__tls_t *t) {
  xmppuv__tls_ctx_t *ctx = t->ctx;
  mbedtls_ssl_session *session = t->ssl.session_negotiate;
  const mbedtls_x509_crt *chain = session->peer_cert;
  uint32_t flags = 0;
  int ret = 0;
  if (chain == NULL || chain->raw.len == 0) {
    flags = MBEDTLS_X509_BADCERT_MISSING;
    ret = MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
  } else {
    t->saw_cert = 1;
    unsigned char key[XMPPUV__CERT_CACHE_KEY];
    xmppuv__cert_time_t now;
    int keyed = chain_key(t, chain, key) == 0 && utc_now(ctx, &now) == 0;
    if (!keyed || !xmppuv__cert_cache_hit(&ctx->verified, key, &now)) {
      chain_window_t w = {t, {0, 0, 0, 0, 0, 0}, {9999, 12, 31, 23, 59, 59}};
      ctx->chain_checks++;
      ret = mbedtls_x509_crt_verify_with_profile(
          (mbedtls_x509_crt *)chain, &ctx->ca, NULL, t->conf.cert_profile,
          t->server_name, &flags, window_cb, &w);
      if (ret == 0 && flags == 0 && keyed) {
        xmppuv__cert_time_t ends = {9999, 12, 31, 23, 59, 59};
        next_change(chain, &now, &ends);
        next_change(&ctx->ca, &now, &ends);
        xmppuv__cert_cache_store(&ctx->verified, key, &w.not_before,
                                 &w.not_after, &ends);
      }
    }
    /* mbedTLS's checks after the chain's: they depend on this handshake's
     * cipher suite and curves, so they run on a hit too. */
    if (mbedtls_pk_can_do(&chain->pk, MBEDTLS_PK_ECKEY) &&
        mbedtls_ssl_check_curve(&t->ssl, mbedtls_pk_ec(chain->pk)->grp.id) != 0) {
      flags |= MBEDTLS_X509_BADCERT_BAD_KEY;
      if (ret == 0) ret = ERR_BAD_CERTIFICATE;
    }
    if (mbedtls_ssl_check_cert_usage(chain, t->ssl.handshake->ciphersuite_info,
                                     MBEDTLS_SSL_IS_SERVER, &flags) != 0 &&
        ret == 0)
      ret = ERR_BAD_CERTIFICATE;
    if (ret != 0 && t->leaf_desc == NULL) t->leaf_desc = describe_cert(chain);
  }
  session->verify_result = flags;
  if (ret != 0)
    mbedtls_ssl_send_alert_message(&t->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                   cert_alert(flags));
  return ret;
}
#endif

/* mbedtls_ssl_handshake(), one step at a time so that check_chain() runs
 * in place of mbedTLS's own chain check (authmode is read from the
 * connection's own config at the Certificate step). */
static int handshake_steps(xmppuv__tls_t *t) {
#if defined(CHAIN_CACHE)
  if (t->own_chain_check) {
    while (t->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
      int cert_step = t->ssl.state == MBEDTLS_SSL_SERVER_CERTIFICATE;
      if (cert_step) mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_NONE);
      int ret = mbedtls_ssl_handshake_step(&t->ssl);
      if (cert_step) mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
      if (ret != 0) return ret;
      if (cert_step && t->ssl.state != MBEDTLS_SSL_SERVER_CERTIFICATE) {
        ret = check_chain(t);
        if (ret != 0) return ret;
      }
    }
    return 0;
  }
#endif
  return mbedtls_ssl_handshake(&t->ssl);
}

long xmppuv__tls_ctx_chain_checks(const xmppuv__tls_ctx_t *ctx) {
#if defined(CHAIN_CACHE)
  return ctx->chain_checks;
#else
  (void)ctx;
  return -1;
#endif
}

void xmppuv__tls_ctx_skew_clock(xmppuv__tls_ctx_t *ctx, long seconds) {
#if defined(CHAIN_CACHE)
  ctx->clock_skew = seconds;
#else
  (void)ctx;
  (void)seconds;
#endif
}

/* ------------------------------------------------------------------------ */
/* The context                                                              */
/* ------------------------------------------------------------------------ */

static size_t count_certs(const mbedtls_x509_crt *crt) {
  size_t n = 0;
  for (; crt != NULL; crt = crt->next)
    if (crt->version != 0) n++;
  return n;
}

/* Loads a file (is_dir == 0) or a directory into ctx->ca. quiet: a missing
 * path is not worth a log line (system paths). Returns 0 if at least one
 * certificate was added. */
static int load_ca(xmppuv__tls_ctx_t *ctx, const char *path, int is_dir,
                   int quiet) {
  size_t before = count_certs(&ctx->ca);
  int ret = is_dir ? mbedtls_x509_crt_parse_path(&ctx->ca, path)
                   : mbedtls_x509_crt_parse_file(&ctx->ca, path);
  size_t added = count_certs(&ctx->ca) - before;
  if (is_alloc_error(ret)) return XMPPUV_ENOMEM;
  if (ret < 0 || added == 0) {
    if (!quiet) {
      char text[128];
      if (ret < 0)
        mbedtls_text(ret, text, sizeof text);
      else
        snprintf(text, sizeof text, "no usable certificate");
      xmppuv__logf(ctx->log, XMPPUV_LOG_ERROR, AREA,
                   "cannot load CA certificates from %s: %s", path, text);
    }
    return XMPPUV_ECAFILE;
  }
  if (ret > 0)
    xmppuv__logf(ctx->log, quiet ? XMPPUV_LOG_DEBUG : XMPPUV_LOG_WARN, AREA,
                 "%s: %d certificates could not be parsed and are ignored",
                 path, ret);
  xmppuv__logf(ctx->log, XMPPUV_LOG_DEBUG, AREA,
               "loaded %lu CA certificates from %s", (unsigned long)added,
               path);
  ctx->have_ca = 1;
  return 0;
}

/* Where operating systems keep their CA bundle, most common first. */
static const char *const system_ca_files[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Alpine, Arch, Gentoo */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE */
    "/etc/ssl/cert.pem",                                 /* Alpine, macOS, OpenBSD, FreeBSD */
    "/usr/local/etc/ssl/cert.pem",                       /* FreeBSD */
    "/usr/local/share/certs/ca-root-nss.crt",            /* FreeBSD (older) */
    "/opt/homebrew/etc/ca-certificates/cert.pem",        /* macOS, Homebrew */
    "/usr/local/etc/ca-certificates/cert.pem",           /* macOS, Homebrew (Intel) */
};
static const char *const system_ca_dirs[] = {
    "/etc/ssl/certs",              /* hashed directory, when no bundle */
    "/system/etc/security/cacerts" /* Android */
};

static int load_trust(xmppuv__tls_ctx_t *ctx, const xmppuv__tls_config_t *cfg) {
  int rc;
  if (cfg->ca_file != NULL || cfg->ca_path != NULL) {
    if (cfg->ca_file != NULL && (rc = load_ca(ctx, cfg->ca_file, 0, 0)) != 0)
      return rc;
    if (cfg->ca_path != NULL && (rc = load_ca(ctx, cfg->ca_path, 1, 0)) != 0)
      return rc;
    return 0;
  }
  for (size_t i = 0; i < sizeof system_ca_files / sizeof *system_ca_files; i++)
    if ((rc = load_ca(ctx, system_ca_files[i], 0, 1)) != XMPPUV_ECAFILE)
      return rc;
  for (size_t i = 0; i < sizeof system_ca_dirs / sizeof *system_ca_dirs; i++)
    if ((rc = load_ca(ctx, system_ca_dirs[i], 1, 1)) != XMPPUV_ECAFILE)
      return rc;
  xmppuv__logf(ctx->log, XMPPUV_LOG_ERROR, AREA,
               "no system CA bundle found (tried %s and %lu other paths); "
               "configure a CA file or directory",
               system_ca_files[0],
               (unsigned long)(sizeof system_ca_files / sizeof *system_ca_files +
                               sizeof system_ca_dirs / sizeof *system_ca_dirs -
                               1));
  return XMPPUV_ECAFILE;
}

/* The client certificate and its key (XEP-0178: SASL EXTERNAL). The key
 * must belong to the certificate: a mismatch would only show as a failed
 * handshake, with a vaguer error. */
static int load_own(xmppuv__tls_ctx_t *ctx, const xmppuv__tls_config_t *cfg) {
  char text[128];
  int ret = mbedtls_x509_crt_parse_file(&ctx->own_cert, cfg->cert_file);
  if (ret != 0) {
    mbedtls_text(ret, text, sizeof text);
    xmppuv__logf(ctx->log, XMPPUV_LOG_ERROR, AREA, "cannot load the client certificate %s: %s",
                 cfg->cert_file, text);
    return is_alloc_error(ret) ? XMPPUV_ENOMEM : XMPPUV_ECLIENTCERT;
  }
#if MBEDTLS_VERSION_MAJOR >= 3
  ret = mbedtls_pk_parse_keyfile(&ctx->own_key, cfg->key_file, NULL, mbedtls_ctr_drbg_random,
                                 &ctx->drbg);
#else
  ret = mbedtls_pk_parse_keyfile(&ctx->own_key, cfg->key_file, NULL);
#endif
  if (ret != 0) {
    mbedtls_text(ret, text, sizeof text);
    xmppuv__logf(ctx->log, XMPPUV_LOG_ERROR, AREA,
                 "cannot load the client key %s: %s (an unencrypted PEM or DER key)",
                 cfg->key_file, text);
    return is_alloc_error(ret) ? XMPPUV_ENOMEM : XMPPUV_ECLIENTCERT;
  }
#if MBEDTLS_VERSION_MAJOR >= 3
  ret = mbedtls_pk_check_pair(&ctx->own_cert.pk, &ctx->own_key, mbedtls_ctr_drbg_random,
                              &ctx->drbg);
#else
  ret = mbedtls_pk_check_pair(&ctx->own_cert.pk, &ctx->own_key);
#endif
  if (ret != 0) {
    xmppuv__logf(ctx->log, XMPPUV_LOG_ERROR, AREA,
                 "the client key %s does not belong to the certificate %s", cfg->key_file,
                 cfg->cert_file);
    return is_alloc_error(ret) ? XMPPUV_ENOMEM : XMPPUV_ECLIENTCERT;
  }
  ctx->have_own = 1;
  return 0;
}

static void ctx_free(xmppuv__tls_ctx_t *ctx) {
  mbedtls_ctr_drbg_free(&ctx->drbg);
  mbedtls_entropy_free(&ctx->entropy);
  mbedtls_x509_crt_free(&ctx->ca);
  mbedtls_x509_crt_free(&ctx->own_cert);
  mbedtls_pk_free(&ctx->own_key); /* wipes the key */
  mbedtls_platform_zeroize(ctx->pin, sizeof ctx->pin);
  xmppuv__free(ctx);
}

int xmppuv__tls_ctx_new(const xmppuv__tls_config_t *cfg,
                        xmppuv__tls_ctx_t **out) {
  if (cfg == NULL || out == NULL) return XMPPUV_EINVAL;
  if (cfg->insecure && cfg->pin != NULL) {
    xmppuv__logf(cfg->log, XMPPUV_LOG_ERROR, AREA,
                 "a pin and insecure mode cannot be combined");
    return XMPPUV_EINVAL;
  }
  if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
    xmppuv__logf(cfg->log, XMPPUV_LOG_ERROR, AREA,
                 "a client certificate needs its key, and a key its certificate");
    return XMPPUV_EINVAL;
  }
  xmppuv__tls_ctx_t *ctx = xmppuv__calloc(1, sizeof *ctx);
  if (ctx == NULL) return XMPPUV_ENOMEM;
  ctx->refs = 1;
  ctx->log = cfg->log;
  ctx->insecure = cfg->insecure != 0;
  mbedtls_x509_crt_init(&ctx->ca);
  mbedtls_x509_crt_init(&ctx->own_cert);
  mbedtls_pk_init(&ctx->own_key);
  mbedtls_entropy_init(&ctx->entropy);
  mbedtls_ctr_drbg_init(&ctx->drbg);

  int rc = 0;
  if (cfg->pin != NULL &&
      (rc = parse_pin(cfg->pin, &ctx->pin_kind, ctx->pin)) != 0) {
    xmppuv__logf(ctx->log, XMPPUV_LOG_ERROR, AREA,
                 "invalid pin: expected \"sha256//<base64 of 32 bytes>\" or "
                 "64 hex digits");
    goto fail;
  }
#if defined(NEED_PSA_INIT)
  if (psa_crypto_init() != PSA_SUCCESS) {
    rc = XMPPUV_ETLS;
    goto fail;
  }
#endif
  static const unsigned char personal[] = "xmppuv tls";
  int ret = mbedtls_ctr_drbg_seed(&ctx->drbg, mbedtls_entropy_func,
                                  &ctx->entropy, personal, sizeof personal - 1);
  if (ret != 0) {
    char text[128];
    mbedtls_text(ret, text, sizeof text);
    xmppuv__logf(ctx->log, XMPPUV_LOG_ERROR, AREA,
                 "cannot seed the random generator: %s", text);
    rc = is_alloc_error(ret) ? XMPPUV_ENOMEM : XMPPUV_ETLS;
    goto fail;
  }
  if (!ctx->insecure && ctx->pin_kind == PIN_NONE &&
      (rc = load_trust(ctx, cfg)) != 0)
    goto fail;
  if (cfg->cert_file != NULL && (rc = load_own(ctx, cfg)) != 0) goto fail;
  *out = ctx;
  return 0;

fail:
  ctx_free(ctx);
  return rc;
}

void xmppuv__tls_ctx_ref(xmppuv__tls_ctx_t *ctx) { ctx->refs++; }

/* ---- contexts shared by clients of one thread ----------------------------
 * A context costs about 40 KB (mbedTLS's entropy pool alone is 38 KB) plus
 * the parsed CA certificates (the system bundle: about 0.5 MB and some
 * milliseconds). Clients with the same trust settings share one, per thread
 * (a context and its connections belong to one thread: the refcount is not
 * atomic). Entries leave the list with their last reference. */

typedef struct shared_entry {
  struct shared_entry *next;
  xmppuv__tls_ctx_t *ctx;
  char *ca_file, *ca_path, *pin, *cert_file, *key_file;
  int insecure;
} shared_entry_t;

static _Thread_local shared_entry_t *shared_list;

static int same(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b;
  return strcmp(a, b) == 0;
}

static void free_entry(shared_entry_t *e) {
  xmppuv__free(e->ca_file);
  xmppuv__free(e->ca_path);
  xmppuv__free(e->cert_file);
  xmppuv__free(e->key_file);
  if (e->pin != NULL) {
    mbedtls_platform_zeroize(e->pin, strlen(e->pin));
    xmppuv__free(e->pin);
  }
  xmppuv__free(e);
}

int xmppuv__tls_ctx_shared(const xmppuv__tls_config_t *cfg, xmppuv__tls_ctx_t **out) {
  if (cfg == NULL || out == NULL) return XMPPUV_EINVAL;
  for (shared_entry_t *e = shared_list; e != NULL; e = e->next) {
    if (e->insecure == (cfg->insecure != 0) && same(e->ca_file, cfg->ca_file) &&
        same(e->ca_path, cfg->ca_path) && same(e->pin, cfg->pin) &&
        same(e->cert_file, cfg->cert_file) && same(e->key_file, cfg->key_file)) {
      xmppuv__tls_ctx_ref(e->ctx);
      *out = e->ctx;
      return 0;
    }
  }
  shared_entry_t *e = xmppuv__calloc(1, sizeof *e);
  if (e == NULL) return XMPPUV_ENOMEM;
  int failed = 0;
  e->ca_file = xmppuv__strdup_opt(cfg->ca_file, &failed);
  e->ca_path = xmppuv__strdup_opt(cfg->ca_path, &failed);
  e->pin = xmppuv__strdup_opt(cfg->pin, &failed);
  e->cert_file = xmppuv__strdup_opt(cfg->cert_file, &failed);
  e->key_file = xmppuv__strdup_opt(cfg->key_file, &failed);
  e->insecure = cfg->insecure != 0;
  if (failed) {
    free_entry(e);
    return XMPPUV_ENOMEM;
  }
  int rc = xmppuv__tls_ctx_new(cfg, &e->ctx);
  if (rc != 0) {
    free_entry(e);
    return rc;
  }
  /* Its creator's log may go away before the context does: connections
   * log through their own (xmppuv__tls_set_log). */
  e->ctx->log = NULL;
  e->ctx->shared = 1;
  e->next = shared_list;
  shared_list = e;
  *out = e->ctx;
  return 0;
}

static void forget_shared(xmppuv__tls_ctx_t *ctx) {
  for (shared_entry_t **p = &shared_list; *p != NULL; p = &(*p)->next) {
    if ((*p)->ctx != ctx) continue;
    shared_entry_t *e = *p;
    *p = e->next;
    free_entry(e);
    return;
  }
}

void xmppuv__tls_ctx_unref(xmppuv__tls_ctx_t *ctx) {
  if (ctx == NULL || --ctx->refs > 0) return;
  if (ctx->shared) forget_shared(ctx);
  ctx_free(ctx);
}

void xmppuv__tls_set_log(xmppuv__tls_t *t, const xmppuv__log_t *log) { t->log = log; }

/* ------------------------------------------------------------------------ */
/* Memory BIO                                                               */
/* ------------------------------------------------------------------------ */

static int bio_send(void *arg, const unsigned char *buf, size_t len) {
  xmppuv__tls_t *t = arg;
  if (len > INT_MAX) len = INT_MAX;
  if (xmppuv__buf_append(&t->out, buf, len) != 0) {
    t->send_failed = 1;
    return MBEDTLS_ERR_SSL_ALLOC_FAILED;
  }
  return (int)len;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len) {
  xmppuv__tls_t *t = arg;
  size_t avail = t->in.len - t->in_off;
  if (avail == 0) return t->eof ? 0 : MBEDTLS_ERR_SSL_WANT_READ;
  if (len > avail) len = avail;
  if (len > INT_MAX) len = INT_MAX;
  memcpy(buf, t->in.data + t->in_off, len);
  t->in_off += len;
  if (t->in_off == t->in.len) {
    /* Drained: given back, so an idle connection holds no buffer (a busy
     * one drains once per read, not per record). */
    xmppuv__buf_free(&t->in);
    t->in_off = 0;
  }
  return (int)len;
}

/* ------------------------------------------------------------------------ */
/* Watching the incoming records                                            */
/* ------------------------------------------------------------------------ */

/* RFC 5246 §7.4.1.3 ServerHello body: version(2) random(32)
 * session_id<0..32> cipher_suite(2) compression(1) extensions<0..2^16-1>. */
static int hello_has_ems(const unsigned char *p, size_t len) {
  size_t i = 2 + 32;
  if (i >= len) return 0;
  i += 1 + (size_t)p[i];
  i += 2 + 1;
  if (i + 2 > len) return 0; /* no extensions */
  size_t end = i + 2 + ((size_t)p[i] << 8 | p[i + 1]);
  i += 2;
  if (end > len) return 0;
  while (i + 4 <= end) {
    unsigned type = (unsigned)p[i] << 8 | p[i + 1];
    size_t elen = (size_t)p[i + 2] << 8 | p[i + 3];
    i += 4;
    if (i + elen > end) return 0;
    if (type == EXT_EXTENDED_MASTER_SECRET) return elen == 0;
    i += elen;
  }
  return 0;
}

static void sniff_done(xmppuv__tls_t *t, int ems) {
  t->ems = ems;
  t->sniffing = 0;
  xmppuv__free(t->hello);
  t->hello = NULL;
  t->hello_len = 0;
}

/* Handshake-record bytes from the start of the stream: the first message is
 * the ServerHello (in plaintext, and authenticated later by the Finished
 * exchange, so what is seen here is what mbedTLS agreed to). */
static int sniff(xmppuv__tls_t *t, const unsigned char *p, size_t n) {
  if (t->hello == NULL && (t->hello = xmppuv__malloc(HELLO_MAX)) == NULL)
    return XMPPUV_ENOMEM;
  size_t room = HELLO_MAX - t->hello_len;
  if (n > room) n = room;
  memcpy(t->hello + t->hello_len, p, n);
  t->hello_len += n;
  if (t->hello_len < 4) return 0;
  if (t->hello[0] != HANDSHAKE_SERVER_HELLO) {
    sniff_done(t, 0);
    return 0;
  }
  size_t need = 4 + ((size_t)t->hello[1] << 16 | (size_t)t->hello[2] << 8 |
                     t->hello[3]);
  if (need > HELLO_MAX)
    sniff_done(t, 0);
  else if (t->hello_len >= need)
    sniff_done(t, hello_has_ems(t->hello + 4, need - 4));
  return 0;
}

static int scan_records(xmppuv__tls_t *t, const unsigned char *p, size_t len) {
  while (len > 0) {
    if (t->rec_left == 0) {
      size_t take = RECORD_HEADER - t->hdr_len;
      if (take > len) take = len;
      memcpy(t->hdr + t->hdr_len, p, take);
      t->hdr_len += take;
      p += take;
      len -= take;
      if (t->hdr_len < RECORD_HEADER) break;
      t->hdr_len = 0;
      t->rec_type = t->hdr[0];
      t->rec_left = (size_t)t->hdr[3] << 8 | t->hdr[4];
      if (t->sniffing && t->rec_type != RECORD_HANDSHAKE) sniff_done(t, 0);
      continue;
    }
    size_t take = t->rec_left < len ? t->rec_left : len;
    if (t->sniffing && t->rec_type == RECORD_HANDSHAKE) {
      int rc = sniff(t, p, take);
      if (rc != 0) return rc;
    }
    p += take;
    len -= take;
    t->rec_left -= take;
  }
  return 0;
}

static int mid_record(const xmppuv__tls_t *t) {
  return t->hdr_len > 0 || t->rec_left > 0;
}

/* ------------------------------------------------------------------------ */
/* Key export                                                               */
/* ------------------------------------------------------------------------ */

#if defined(HAVE_EXPORT_KEYS)
static void keep_keys(xmppuv__tls_t *t, const unsigned char *master,
                      const unsigned char client_random[32],
                      const unsigned char server_random[32],
                      mbedtls_tls_prf_types prf) {
  memcpy(t->master, master, sizeof t->master);
  memcpy(t->randoms, client_random, 32);
  memcpy(t->randoms + 32, server_random, 32);
  t->prf = prf;
  t->have_keys = 1;
}

#if MBEDTLS_VERSION_MAJOR >= 3
static void export_keys_cb(void *arg, mbedtls_ssl_key_export_type type,
                           const unsigned char *secret, size_t secret_len,
                           const unsigned char client_random[32],
                           const unsigned char server_random[32],
                           mbedtls_tls_prf_types prf) {
  if (type == MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET && secret_len == 48)
    keep_keys(arg, secret, client_random, server_random, prf);
}
#elif defined(MBEDTLS_SSL_EXPORT_KEYS)
static int export_keys_cb(void *arg, const unsigned char *ms,
                          const unsigned char *kb, size_t maclen,
                          size_t keylen, size_t ivlen,
                          const unsigned char client_random[32],
                          const unsigned char server_random[32],
                          mbedtls_tls_prf_types prf) {
  keep_keys(arg, ms, client_random, server_random, prf);
  return 0;
}
#endif
#endif /* HAVE_EXPORT_KEYS */

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

#if defined(MBEDTLS_SSL_ALPN)
/* XEP-0368 Requirements: ALPN "xmpp-client" for xmpps-client; a WebSocket
 * over TLS is HTTP/1.1 until the upgrade (RFC 6455 §4.1). */
static const char *alpn_xmpp[] = {"xmpp-client", NULL};
static const char *alpn_http[] = {"http/1.1", NULL};
#endif

#if MBEDTLS_VERSION_MAJOR < 3 && defined(MBEDTLS_ECP_C)
/* The key exchange groups offered, in our order of preference. mbedTLS
 * 2.28's default list starts with secp521r1, which a server honouring the
 * client's order (mbedTLS does) then picks: its ECDHE costs the client
 * about twice what X25519 does (bench/README.md, "Round two"). X25519
 * first, then the NIST curves from the cheapest; brainpool is dropped (no
 * XMPP server needs it, and it is the slowest). */
static const mbedtls_ecp_group_id client_curves[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
    MBEDTLS_ECP_DP_CURVE25519,
#endif
#if defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED)
    MBEDTLS_ECP_DP_SECP256R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP384R1_ENABLED)
    MBEDTLS_ECP_DP_SECP384R1,
#endif
#if defined(MBEDTLS_ECP_DP_SECP521R1_ENABLED)
    MBEDTLS_ECP_DP_SECP521R1,
#endif
    MBEDTLS_ECP_DP_NONE};
#endif

static int valid_server_name(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > 253) return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
      return 0;
  return 1;
}

static int setup_error(xmppuv__tls_t *t, const char *what, int ret) {
  char text[128];
  mbedtls_text(ret, text, sizeof text);
  xmppuv__logf(tlog(t), XMPPUV_LOG_ERROR, AREA, "%s failed: %s (-0x%04x)",
               what, text, (unsigned)-ret);
  return is_alloc_error(ret) ? XMPPUV_ENOMEM : XMPPUV_ETLS;
}

static int configure(xmppuv__tls_t *t, int alpn) {
  xmppuv__tls_ctx_t *ctx = t->ctx;
  mbedtls_ssl_config *conf = &t->conf;
  int ret = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT,
                                        MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) return setup_error(t, "mbedtls_ssl_config_defaults", ret);
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
  mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                               MBEDTLS_SSL_MINOR_VERSION_3);
#endif
  mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &ctx->drbg);
  if (ctx->insecure) {
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
  } else if (ctx->pin_kind != PIN_NONE) {
    /* The verify callback decides; OPTIONAL lets it run without a CA. */
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
  } else {
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(conf, &ctx->ca, NULL);
#if defined(CHAIN_CACHE)
    t->own_chain_check = 1;
#endif
  }
  if (ctx->have_own) {
    ret = mbedtls_ssl_conf_own_cert(conf, &ctx->own_cert, &ctx->own_key);
    if (ret != 0) return setup_error(t, "mbedtls_ssl_conf_own_cert", ret);
  }
#if defined(MBEDTLS_SSL_RENEGOTIATION)
  mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
  /* A ticket resumes the next connection where the server keeps no
   * session cache (xmppuv__tls_session_save). */
  mbedtls_ssl_conf_session_tickets(conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
#endif
#if defined(MBEDTLS_DHM_C) && defined(MBEDTLS_SSL_CLI_C)
  mbedtls_ssl_conf_dhm_min_bitlen(conf, 2048);
#endif
#if MBEDTLS_VERSION_MAJOR < 3 && defined(MBEDTLS_ECP_C)
  if (client_curves[0] != MBEDTLS_ECP_DP_NONE) mbedtls_ssl_conf_curves(conf, client_curves);
#endif
#if defined(MBEDTLS_SSL_ALPN)
  if (alpn != XMPPUV__ALPN_NONE) {
    ret = mbedtls_ssl_conf_alpn_protocols(conf, alpn == XMPPUV__ALPN_HTTP ? alpn_http : alpn_xmpp);
    if (ret != 0) return setup_error(t, "mbedtls_ssl_conf_alpn_protocols", ret);
  }
#endif
#if MBEDTLS_VERSION_MAJOR < 3 && defined(MBEDTLS_SSL_EXPORT_KEYS)
  mbedtls_ssl_conf_export_keys_ext_cb(conf, export_keys_cb, t);
#endif

  ret = mbedtls_ssl_setup(&t->ssl, conf);
  if (ret != 0) return setup_error(t, "mbedtls_ssl_setup", ret);
#if MBEDTLS_VERSION_MAJOR >= 3
  mbedtls_ssl_set_export_keys_cb(&t->ssl, export_keys_cb, t);
#endif
  ret = mbedtls_ssl_set_hostname(&t->ssl, t->server_name);
  if (ret != 0) return setup_error(t, "mbedtls_ssl_set_hostname", ret);
  mbedtls_ssl_set_verify(&t->ssl, verify_cb, t);
  mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
  return 0;
}

int xmppuv__tls_new(xmppuv__tls_ctx_t *ctx, const char *server_name, int alpn,
                    xmppuv__tls_t **out) {
  if (ctx == NULL || server_name == NULL || out == NULL ||
      !valid_server_name(server_name))
    return XMPPUV_EINVAL;
  xmppuv__tls_t *t = xmppuv__calloc(1, sizeof *t);
  if (t == NULL) return XMPPUV_ENOMEM;
  t->ctx = ctx;
  t->log = ctx->log;
  xmppuv__tls_ctx_ref(ctx);
  mbedtls_ssl_config_init(&t->conf);
  mbedtls_ssl_init(&t->ssl);
  t->sniffing = 1;
  t->state = ST_HANDSHAKE;
  t->server_name = xmppuv__strdup(server_name);
  int rc = t->server_name == NULL ? XMPPUV_ENOMEM : configure(t, alpn);
  if (rc != 0) {
    xmppuv__tls_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

void xmppuv__tls_free(xmppuv__tls_t *t) {
  if (t == NULL) return;
  mbedtls_ssl_free(&t->ssl);
  mbedtls_ssl_config_free(&t->conf);
  mbedtls_platform_zeroize(t->master, sizeof t->master);
  /* Plaintext may be a password in a SASL exchange. */
  if (t->pending.data != NULL)
    mbedtls_platform_zeroize(t->pending.data, t->pending.cap);
  xmppuv__buf_free(&t->pending);
  xmppuv__buf_free(&t->in);
  xmppuv__buf_free(&t->out);
  xmppuv__free(t->hello);
  xmppuv__free(t->leaf_desc);
  xmppuv__free(t->error_text);
  xmppuv__free(t->server_name);
  xmppuv__tls_ctx_unref(t->ctx);
  xmppuv__free(t);
}

/* Say what went wrong: in the log, and kept for the owner's error text
 * (xmppuv__tls_error_text). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void tls_note(xmppuv__tls_t *t, xmppuv_log_level_t level, const char *fmt, ...) {
  char text[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  xmppuv__logf(tlog(t), level, AREA, "%s", text);
  /* Kept at its length: every connection has the field, few an error. */
  xmppuv__free(t->error_text);
  t->error_text = xmppuv__strdup(text);
}

/* The first byte a TLS server sends starts a record: a content type of 20
 * to 23. A server that answers otherwise does not speak TLS here; say what
 * it seems to speak, for the app to fix its configuration. */
static int check_first_bytes(xmppuv__tls_t *t, const char *data, size_t len) {
  unsigned char b = (unsigned char)data[0];
  if (b >= 20 && b <= 23) return 0;
  if (b == '<')
    tls_note(t, XMPPUV_LOG_ERROR,
             "%s answered in plaintext XML, not TLS: this is a STARTTLS (or plaintext) port, "
             "not a direct-TLS one (use XMPPUV_TLS_STARTTLS, or the direct-TLS port, "
             "usually 5223)",
             t->server_name);
  else if (len >= 4 && memcmp(data, "HTTP", 4) == 0)
    tls_note(t, XMPPUV_LOG_ERROR,
             "%s answered in HTTP, not TLS: a web server, not an XMPP server (check host "
             "and port)",
             t->server_name);
  else
    tls_note(t, XMPPUV_LOG_ERROR,
             "%s answered with something that is not TLS (first byte 0x%02x): not a "
             "direct-TLS XMPP port",
             t->server_name, (unsigned)b);
  return XMPPUV_EWRONGSERVER;
}

int xmppuv__tls_feed(xmppuv__tls_t *t, const char *data, size_t len) {
  if (t->err != 0) return t->err;
  if (len == 0) return 0;
  if (!t->got_bytes) {
    t->got_bytes = 1;
    int rc = check_first_bytes(t, data, len);
    if (rc != 0) return fail(t, rc);
  }
  /* Drop the consumed prefix once it is at least half the buffer, so input
   * is copied a bounded number of times. */
  if (t->in_off > 0 && t->in_off >= t->in.len / 2) {
    xmppuv__buf_consume(&t->in, t->in_off);
    t->in_off = 0;
  }
  if (xmppuv__buf_append(&t->in, data, len) != 0) return fail(t, XMPPUV_ENOMEM);
  int rc = scan_records(t, (const unsigned char *)data, len);
  return rc != 0 ? fail(t, rc) : 0;
}

void xmppuv__tls_feed_eof(xmppuv__tls_t *t) { t->eof = 1; }

/* The stream ended and everything fed has been read. */
static int eof_error(xmppuv__tls_t *t) {
  if (!t->handshake_done) {
    tls_note(t, XMPPUV_LOG_ERROR,
                 "%s closed the connection during the TLS handshake",
                 t->server_name);
    return XMPPUV_ETLS;
  }
  if (mid_record(t)) {
    tls_note(t, XMPPUV_LOG_ERROR,
                 "%s closed the connection in the middle of a TLS record; "
                 "the truncated record is discarded",
                 t->server_name);
    return XMPPUV_ETLS;
  }
  tls_note(t, XMPPUV_LOG_DEBUG,
               "%s closed the connection without close_notify",
               t->server_name);
  return XMPPUV_EEOF;
}

static int protocol_error(xmppuv__tls_t *t, const char *what, int ret) {
  if (t->send_failed || is_alloc_error(ret)) return XMPPUV_ENOMEM;
  char text[160];
  mbedtls_text(ret, text, sizeof text);
  tls_note(t, XMPPUV_LOG_ERROR, "%s with %s failed: %s (-0x%04x)",
               what, t->server_name, text, (unsigned)-ret);
  return XMPPUV_ETLS;
}

static int handshake_error(xmppuv__tls_t *t, int ret) {
  if (ret == MBEDTLS_ERR_SSL_CONN_EOF) return eof_error(t);
  if (t->send_failed || is_alloc_error(ret)) return XMPPUV_ENOMEM;
  const char *cert = t->leaf_desc != NULL ? t->leaf_desc : "not parsed";
  if (t->pin_mismatch) {
    tls_note(t, XMPPUV_LOG_ERROR,
                 "certificate of %s rejected: it does not match the pinned "
                 "%s (server certificate: %s)",
                 t->server_name,
                 t->ctx->pin_kind == PIN_SPKI ? "public key" : "certificate",
                 cert);
    return XMPPUV_ECERTPIN;
  }
  uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
  if ((ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
       ret == ERR_BAD_CERTIFICATE) &&
      flags != 0 && flags != (uint32_t)-1) {
    char reasons[256];
    int code = verify_reasons_text(flags, reasons, sizeof reasons);
    tls_note(t, XMPPUV_LOG_ERROR,
                 "certificate of %s rejected: %s (server certificate: %s)",
                 t->server_name, reasons, cert);
    return code;
  }
  /* X.509 parse errors: high-level codes -0x2080 to -0x3000. */
  unsigned high = (unsigned)-ret & 0xFF80u;
  if (high >= 0x2080u && high <= 0x3000u) {
    char text[160];
    mbedtls_text(ret, text, sizeof text);
    tls_note(t, XMPPUV_LOG_ERROR,
                 "certificate of %s rejected: %s (-0x%04x)", t->server_name,
                 text, (unsigned)-ret);
    return XMPPUV_ECERTINVALID;
  }
  return protocol_error(t, "TLS handshake", ret);
}

static int write_all(xmppuv__tls_t *t, const char *data, size_t len) {
  while (len > 0) {
    int ret = mbedtls_ssl_write(&t->ssl, (const unsigned char *)data, len);
    if (ret > 0) {
      data += ret;
      len -= (size_t)ret;
      continue;
    }
    /* The BIO never blocks, so anything else is fatal; a partly encrypted
     * write cannot be taken back. */
    return fail(t, protocol_error(t, "TLS write", ret));
  }
  return 0;
}

static void handshake_complete(xmppuv__tls_t *t) {
  const char *alpn = xmppuv__tls_alpn(t);
  if (t->ctx->insecure) {
#if defined(MBEDTLS_SSL_KEEP_PEER_CERTIFICATE)
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
    char *desc = peer != NULL ? describe_cert(peer) : NULL;
#else
    char *desc = NULL;
#endif
    xmppuv__logf(tlog(t), XMPPUV_LOG_WARN, AREA,
                 "insecure mode: the certificate of %s was NOT verified; this "
                 "connection can be intercepted (server certificate: %s)",
                 t->server_name, desc != NULL ? desc : "unknown");
    xmppuv__free(desc);
  } else if (t->ctx->pin_kind != PIN_NONE) {
    char reasons[256] = "";
    if (t->ca_flags != 0)
      verify_reasons_text(t->ca_flags, reasons, sizeof reasons);
    xmppuv__logf(tlog(t), XMPPUV_LOG_INFO, AREA,
                 "certificate of %s accepted by its pin%s%s (server "
                 "certificate: %s)",
                 t->server_name,
                 t->ca_flags != 0 ? "; without the pin it would be: " : "",
                 reasons, t->leaf_desc != NULL ? t->leaf_desc : "unknown");
  }
  xmppuv__logf(tlog(t), XMPPUV_LOG_DEBUG, AREA,
               "TLS with %s established: %s, %s, ALPN %s, extended master "
               "secret %s%s",
               t->server_name, mbedtls_ssl_get_version(&t->ssl),
               mbedtls_ssl_get_ciphersuite(&t->ssl),
               alpn != NULL ? alpn : "none", t->ems ? "yes" : "no",
               xmppuv__tls_resumed(t) ? ", session resumed" : "");
  xmppuv__free(t->leaf_desc);
  t->leaf_desc = NULL;
  if (t->sniffing) sniff_done(t, 0);
#if MBEDTLS_VERSION_MAJOR < 3 && defined(MBEDTLS_SSL_KEEP_PEER_CERTIFICATE)
  /* Nothing reads the server's certificates once they are checked (channel
   * binding is tls-unique or tls-exporter, never tls-server-end-point, and
   * a session resumes without them), yet mbedTLS keeps the parsed chain
   * for the connection's life and copies it into every saved session: a
   * few KB per idle connection, twice (bench/README.md, "Round two"). */
  if (t->ssl.session != NULL && t->ssl.session->peer_cert != NULL) {
    mbedtls_x509_crt_free(t->ssl.session->peer_cert);
    mbedtls_free(t->ssl.session->peer_cert);
    t->ssl.session->peer_cert = NULL;
  }
#endif
}

int xmppuv__tls_handshake(xmppuv__tls_t *t) {
  if (t->err != 0) return t->err;
  if (t->handshake_done) return 1;
  int ret = handshake_steps(t);
  if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
    return t->send_failed ? fail(t, XMPPUV_ENOMEM) : 0;
  if (ret != 0) return fail(t, handshake_error(t, ret));
  if (t->ctx->pin_kind != PIN_NONE && !t->pin_ok) {
    /* Defence in depth: pin mode must have seen and matched a certificate. */
    xmppuv__logf(tlog(t), XMPPUV_LOG_ERROR, AREA,
                 "no certificate from %s was checked against the pin",
                 t->server_name);
    return fail(t, XMPPUV_ECERTPIN);
  }
  t->handshake_done = 1;
  t->state = ST_OPEN;
  handshake_complete(t);
  if (t->pending.len > 0) {
    int rc = write_all(t, t->pending.data, t->pending.len);
    mbedtls_platform_zeroize(t->pending.data, t->pending.len);
    xmppuv__buf_free(&t->pending);
    if (rc != 0) return rc;
  } else {
    xmppuv__buf_free(&t->pending);
  }
  return 1;
}

int xmppuv__tls_read(xmppuv__tls_t *t, char *buf, size_t size, size_t *n) {
  *n = 0;
  if (t->err != 0) return t->err;
  if (!t->handshake_done) return XMPPUV_ESTATE;
  if (size == 0) return 0;
  if (size > INT_MAX) size = INT_MAX;
  for (;;) {
    int ret = mbedtls_ssl_read(&t->ssl, (unsigned char *)buf, size);
    if (ret > 0) {
      *n = (size_t)ret;
      return 0;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
      return t->send_failed ? fail(t, XMPPUV_ENOMEM) : 0;
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;
#endif
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      xmppuv__logf(tlog(t), XMPPUV_LOG_DEBUG, AREA,
                   "%s closed the TLS connection (close_notify)",
                   t->server_name);
      return fail(t, XMPPUV_EEOF);
    }
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_CONN_EOF)
      return fail(t, eof_error(t));
    return fail(t, protocol_error(t, "TLS read", ret));
  }
}

int xmppuv__tls_write(xmppuv__tls_t *t, const char *data, size_t len) {
  if (t->err != 0) return t->err;
  if (t->state == ST_CLOSED) return XMPPUV_ESTATE;
  if (len == 0) return 0;
  if (!t->handshake_done)
    return xmppuv__buf_append(&t->pending, data, len);
  return write_all(t, data, len);
}

const char *xmppuv__tls_out(xmppuv__tls_t *t, size_t *len) {
  *len = t->out.len - t->out_off;
  return *len > 0 ? t->out.data + t->out_off : NULL;
}

void xmppuv__tls_out_consume(xmppuv__tls_t *t, size_t n) {
  size_t avail = t->out.len - t->out_off;
  t->out_off += n < avail ? n : avail;
  if (t->out_off == t->out.len) {
    xmppuv__buf_free(&t->out); /* drained: given back, as t->in */
    t->out_off = 0;
  } else if (t->out_off >= t->out.len / 2) {
    xmppuv__buf_consume(&t->out, t->out_off);
    t->out_off = 0;
  }
}

int xmppuv__tls_close_notify(xmppuv__tls_t *t) {
  /* After the server's close_notify, ours is the expected reply
   * (RFC 5246 §7.2.1). */
  if (t->err != 0 && t->err != XMPPUV_EEOF) return t->err;
  if (!t->handshake_done) return XMPPUV_ESTATE;
  if (t->state == ST_CLOSED) return 0;
  t->state = ST_CLOSED;
  int ret = mbedtls_ssl_close_notify(&t->ssl);
  if (ret != 0 && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
    return fail(t, protocol_error(t, "TLS close_notify", ret));
  return t->send_failed ? fail(t, XMPPUV_ENOMEM) : 0;
}

/* ------------------------------------------------------------------------ */
/* Channel binding                                                          */
/* ------------------------------------------------------------------------ */

static int is_tls12(const xmppuv__tls_t *t) {
  return strcmp(mbedtls_ssl_get_version(&t->ssl), "TLSv1.2") == 0;
}

int xmppuv__tls_export_keying_material(xmppuv__tls_t *t, const char *label,
                                       const unsigned char *context,
                                       size_t context_len, int use_context,
                                       unsigned char *out, size_t len) {
  if (!t->handshake_done) return XMPPUV_ESTATE;
  if (label == NULL || out == NULL || context_len > EXPORTER_CONTEXT_MAX ||
      (use_context && context_len > 0 && context == NULL))
    return XMPPUV_EINVAL;
  /* RFC 7627 §5.4: without the extended master secret, no key material
   * may be exported for authentication. */
  if (!t->have_keys || !t->ems || !is_tls12(t)) return XMPPUV_EINVAL;
  /* RFC 5705 §4: seed = client_random + server_random
   *                     [+ context_length(2) + context]. */
  unsigned char seed[64 + 2 + EXPORTER_CONTEXT_MAX];
  size_t seed_len = 64;
  memcpy(seed, t->randoms, 64);
  if (use_context) {
    seed[seed_len++] = (unsigned char)(context_len >> 8);
    seed[seed_len++] = (unsigned char)(context_len & 0xff);
    if (context_len > 0) memcpy(seed + seed_len, context, context_len);
    seed_len += context_len;
  }
  int ret = mbedtls_ssl_tls_prf(t->prf, t->master, sizeof t->master, label,
                                seed, seed_len, out, len);
  return ret == 0 ? 0 : XMPPUV_ETLS;
}

int xmppuv__tls_channel_binding(xmppuv__tls_t *t, const char *type,
                                unsigned char *out, size_t *len) {
  if (!t->handshake_done) return XMPPUV_ESTATE;
  if (type == NULL || out == NULL || len == NULL) return XMPPUV_EINVAL;
  if (strcmp(type, "tls-unique") == 0) {
#if MBEDTLS_VERSION_MAJOR < 3 && defined(MBEDTLS_SSL_RENEGOTIATION)
    /* RFC 5929 §3.1: the first Finished message of the most recent
     * handshake: the client's in a full handshake, the server's in an
     * abbreviated one (a resumed session); mbedTLS 2.28 keeps both (for
     * renegotiation). Only with the extended master secret on a resumed
     * session (RFC 7627 §5.4: without it tls-unique can be made equal on
     * two connections). */
    int resumed = xmppuv__tls_resumed(t);
    size_t n = t->ssl.verify_data_len;
    if (!is_tls12(t) || n == 0 || n > sizeof t->ssl.own_verify_data || (resumed && !t->ems))
      return XMPPUV_EINVAL;
    if (*len < n) return XMPPUV_ETOOBIG;
    memcpy(out, resumed ? t->ssl.peer_verify_data : t->ssl.own_verify_data, n);
    *len = n;
    return 0;
#else
    return XMPPUV_EINVAL;
#endif
  }
  if (strcmp(type, "tls-exporter") == 0) {
    /* RFC 9266 §2: label "EXPORTER-Channel-Binding", a zero-length
     * context, 32 bytes. */
    if (*len < 32) return XMPPUV_ETOOBIG;
    int rc = xmppuv__tls_export_keying_material(
        t, "EXPORTER-Channel-Binding", (const unsigned char *)"", 0, 1, out,
        32);
    if (rc == 0) *len = 32;
    return rc;
  }
  return XMPPUV_EINVAL;
}

int xmppuv__tls_resumed(const xmppuv__tls_t *t) {
  return t->handshake_done && t->offered_session && !t->saw_cert;
}

void xmppuv__tls_session_offer(xmppuv__tls_t *t, const xmppuv__tls_session_t *s) {
  /* Pin mode decides on the certificate it sees, and a resumption shows
   * none: always a full handshake there. */
  if (s == NULL || t->ctx->pin_kind != PIN_NONE || t->ctx->insecure || t->handshake_done ||
      strcmp(s->server_name, t->server_name) != 0)
    return;
  if (mbedtls_ssl_set_session(&t->ssl, &s->s) == 0) t->offered_session = 1;
}

int xmppuv__tls_session_save(xmppuv__tls_t *t, xmppuv__tls_session_t **out) {
  *out = NULL;
  if (!t->handshake_done || t->ctx->pin_kind != PIN_NONE) return 0;
  xmppuv__tls_session_t *s = xmppuv__calloc(1, sizeof *s);
  if (s == NULL) return XMPPUV_ENOMEM;
  mbedtls_ssl_session_init(&s->s);
  int ret = mbedtls_ssl_get_session(&t->ssl, &s->s);
  int resumable = ret == 0 && (s->s.id_len > 0
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
                               || s->s.ticket_len > 0
#endif
                               );
  if (resumable) s->server_name = xmppuv__strdup(t->server_name);
  if (!resumable || s->server_name == NULL) {
    xmppuv__tls_session_free(s);
    return resumable ? XMPPUV_ENOMEM : 0;
  }
  *out = s;
  return 0;
}

void xmppuv__tls_session_free(xmppuv__tls_session_t *s) {
  if (s == NULL) return;
  mbedtls_ssl_session_free(&s->s);
  xmppuv__free(s->server_name);
  xmppuv__free(s);
}

const char *xmppuv__tls_version(const xmppuv__tls_t *t) {
  return t->handshake_done ? mbedtls_ssl_get_version(&t->ssl) : NULL;
}

const char *xmppuv__tls_ciphersuite(const xmppuv__tls_t *t) {
  return t->handshake_done ? mbedtls_ssl_get_ciphersuite(&t->ssl) : NULL;
}

const char *xmppuv__tls_alpn(const xmppuv__tls_t *t) {
#if defined(MBEDTLS_SSL_ALPN)
  return t->handshake_done ? mbedtls_ssl_get_alpn_protocol(&t->ssl) : NULL;
#else
  return NULL;
#endif
}

const char *xmppuv__tls_error_text(const xmppuv__tls_t *t) {
  return t != NULL && t->error_text != NULL && t->error_text[0] != '\0' ? t->error_text : NULL;
}
