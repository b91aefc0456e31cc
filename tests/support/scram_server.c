#include "scram_server.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scram_server {
  mbedtls_md_type_t md;
  size_t hlen;
  char password[256];
  unsigned iterations;
  unsigned char salt[16];
  char client_first_bare[512];
  char gs2_header[128];
  char server_first[512];
  char server_final[256];
  char nonce[256];
  char b64[4096];
  char raw[4096];
};

scram_server_t *scram_server_new(const char *hash, const char *password,
                                 unsigned iterations) {
  scram_server_t *s = calloc(1, sizeof *s);
  if (strcmp(hash, "SHA-1") == 0) {
    s->md = MBEDTLS_MD_SHA1;
    s->hlen = 20;
  } else if (strcmp(hash, "SHA-256") == 0) {
    s->md = MBEDTLS_MD_SHA256;
    s->hlen = 32;
  } else {
    s->md = MBEDTLS_MD_SHA512;
    s->hlen = 64;
  }
  snprintf(s->password, sizeof s->password, "%s", password);
  s->iterations = iterations;
  memcpy(s->salt, "saltsaltsaltsalt", 16);
  return s;
}

void scram_server_free(scram_server_t *s) { free(s); }

const char *scram_b64(scram_server_t *s, const void *data, size_t len) {
  size_t out;
  mbedtls_base64_encode((unsigned char *)s->b64, sizeof s->b64, &out, data, len);
  s->b64[out] = '\0';
  return s->b64;
}

const char *scram_unb64(scram_server_t *s, const char *text) {
  size_t out = 0;
  if (mbedtls_base64_decode((unsigned char *)s->raw, sizeof s->raw - 1, &out,
                            (const unsigned char *)text, strlen(text)) != 0)
    return NULL;
  s->raw[out] = '\0';
  return s->raw;
}

const char *scram_server_gs2_header(const scram_server_t *s) { return s->gs2_header; }

const char *scram_server_first(scram_server_t *s, const char *client_first) {
  /* gs2-header is everything up to the second comma. */
  const char *p = strchr(client_first, ',');
  p = p ? strchr(p + 1, ',') : NULL;
  if (p == NULL) return NULL;
  size_t gs2_len = (size_t)(p + 1 - client_first);
  memcpy(s->gs2_header, client_first, gs2_len);
  s->gs2_header[gs2_len] = '\0';
  snprintf(s->client_first_bare, sizeof s->client_first_bare, "%s", p + 1);
  const char *r = strstr(s->client_first_bare, ",r=");
  if (r == NULL) return NULL;
  snprintf(s->nonce, sizeof s->nonce, "%sSERVERNONCE", r + 3);
  char salt_b64[64];
  size_t n;
  mbedtls_base64_encode((unsigned char *)salt_b64, sizeof salt_b64, &n, s->salt, 16);
  salt_b64[n] = '\0';
  snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%u", s->nonce, salt_b64,
           s->iterations);
  return s->server_first;
}

static void hmac(const scram_server_t *s, const unsigned char *key, size_t klen,
                 const void *data, size_t len, unsigned char *out) {
  mbedtls_md_hmac(mbedtls_md_info_from_type(s->md), key, klen, data, len, out);
}

const char *scram_server_final(scram_server_t *s, const char *client_final,
                               const unsigned char *cb_data, size_t cb_len) {
  const char *proof = strstr(client_final, ",p=");
  if (proof == NULL) return NULL;
  char without_proof[1024];
  size_t wlen = (size_t)(proof - client_final);
  memcpy(without_proof, client_final, wlen);
  without_proof[wlen] = '\0';
  /* c= must be base64(gs2-header + cb data). */
  unsigned char cbind[512];
  size_t cbind_len = strlen(s->gs2_header);
  memcpy(cbind, s->gs2_header, cbind_len);
  if (cb_data != NULL) {
    memcpy(cbind + cbind_len, cb_data, cb_len);
    cbind_len += cb_len;
  }
  char expect_c[1024];
  size_t n;
  mbedtls_base64_encode((unsigned char *)expect_c + 2, sizeof expect_c - 2, &n, cbind,
                        cbind_len);
  expect_c[0] = 'c';
  expect_c[1] = '=';
  expect_c[2 + n] = '\0';
  if (strncmp(without_proof, expect_c, strlen(expect_c)) != 0) return NULL;

  char auth_message[2048];
  snprintf(auth_message, sizeof auth_message, "%s,%s,%s", s->client_first_bare,
           s->server_first, without_proof);
  unsigned char salted[64], client_key[64], stored_key[64], client_sig[64], server_key[64],
      server_sig[64], expect_proof[64];
  mbedtls_md_context_t ctx;
  mbedtls_md_init(&ctx);
  mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(s->md), 1);
  mbedtls_pkcs5_pbkdf2_hmac(&ctx, (const unsigned char *)s->password, strlen(s->password),
                            s->salt, 16, s->iterations, (uint32_t)s->hlen, salted);
  mbedtls_md_free(&ctx);
  hmac(s, salted, s->hlen, "Client Key", 10, client_key);
  mbedtls_md(mbedtls_md_info_from_type(s->md), client_key, s->hlen, stored_key);
  hmac(s, stored_key, s->hlen, auth_message, strlen(auth_message), client_sig);
  for (size_t i = 0; i < s->hlen; i++) expect_proof[i] = client_key[i] ^ client_sig[i];
  char proof_b64[128];
  mbedtls_base64_encode((unsigned char *)proof_b64, sizeof proof_b64, &n, expect_proof,
                        s->hlen);
  proof_b64[n] = '\0';
  if (strcmp(proof + 3, proof_b64) != 0) return NULL;
  hmac(s, salted, s->hlen, "Server Key", 10, server_key);
  hmac(s, server_key, s->hlen, auth_message, strlen(auth_message), server_sig);
  char sig_b64[128];
  mbedtls_base64_encode((unsigned char *)sig_b64, sizeof sig_b64, &n, server_sig, s->hlen);
  sig_b64[n] = '\0';
  snprintf(s->server_final, sizeof s->server_final, "v=%s", sig_b64);
  return s->server_final;
}
