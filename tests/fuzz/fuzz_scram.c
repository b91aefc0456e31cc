/* Fuzz target: the SCRAM client's parsers of what the server sends
 * (lib/sasl/scram.c: server-first-message and server-final-message).
 *
 * Input: 1 header byte, then server-first NUL server-final.
 *   header % 6: SCRAM-SHA-1, -1-PLUS, -256, -256-PLUS, -512, -512-PLUS
 *   header bit 3: gs2 flag "y" instead of "n" (non-PLUS only)
 *   header bit 4: derive keys from the password (PBKDF2); otherwise no
 *     password and the keys cached from a real exchange, so a salt or
 *     iteration count other than the cached one fails fast (XMPPUV_EAUTH)
 *     and the fuzzer spends its time in the parsers, not in PBKDF2.
 *
 * The client always uses the nonce below, the user "user" and the password
 * "pencil"; tests/support/scram_server.c (an independent server side) ran
 * the real exchange at start-up, for the cached keys and for the one
 * server-final-message that may be accepted. Checks: the verifier is never
 * accepted unless the whole exchange was the real one (a forged signature
 * must fail), every error is one the header documents, the client's final
 * message has the RFC 5802 §7 shape, and the state machine refuses calls
 * out of order and after errors.
 *
 * FUZZ_SCRAM_WRITE_SEEDS=DIR: write the real exchanges as seeds and exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "fuzz_input.h"
#include "sasl/sasl.h"
#include "sasl/scram.h"
#include "scram_server.h"
#include "xmppuv.h"

#define NONCE "fyko+d2lbbFgONRv9qkxdawL"
#define USER "user"
#define PASSWORD "pencil"
#define ITERATIONS 4096u

static const unsigned char cb_data[] = "channel-binding!";
#define CB_LEN 16u

typedef struct variant {
  xmppuv__mech_t mech;
  const char *hash;
  char first[512];
  char final[256];
  xmppuv__scram_keys_t *keys;
} variant_t;

static variant_t variants[6] = {
    {XMPPUV__MECH_SCRAM_SHA_1, "SHA-1", "", "", NULL},
    {XMPPUV__MECH_SCRAM_SHA_1_PLUS, "SHA-1", "", "", NULL},
    {XMPPUV__MECH_SCRAM_SHA_256, "SHA-256", "", "", NULL},
    {XMPPUV__MECH_SCRAM_SHA_256_PLUS, "SHA-256", "", "", NULL},
    {XMPPUV__MECH_SCRAM_SHA_512, "SHA-512", "", "", NULL},
    {XMPPUV__MECH_SCRAM_SHA_512_PLUS, "SHA-512", "", "", NULL},
};

static const char *flag_of(const variant_t *v, int y) {
  if (xmppuv__mech_is_plus(v->mech)) return "p=tls-unique";
  return y ? "y" : "n";
}

static xmppuv__scram_t *client(const variant_t *v, int y, const char *password) {
  int plus = xmppuv__mech_is_plus(v->mech);
  xmppuv__scram_t *s = NULL;
  int rc = xmppuv__scram_new(v->mech, USER, password, flag_of(v, y), plus ? cb_data : NULL,
                             plus ? CB_LEN : 0, NONCE, &s);
  FZ_CHECK(rc == 0, "scram_new: %s", xmppuv_err_name(rc));
  return s;
}

/* The real exchange, as a server would run it. */
static void init_variant(variant_t *v) {
  xmppuv__scram_t *s = client(v, 0, PASSWORD);
  xmppuv__buf_t first = XMPPUV__BUF_INIT, final = XMPPUV__BUF_INIT;
  FZ_CHECK(xmppuv__scram_client_first(s, &first) == 0, "client_first");
  scram_server_t *srv = scram_server_new(v->hash, PASSWORD, ITERATIONS);
  const char *sf = scram_server_first(srv, first.data);
  FZ_CHECK(sf != NULL && strlen(sf) < sizeof v->first, "server_first");
  snprintf(v->first, sizeof v->first, "%s", sf);
  FZ_CHECK(xmppuv__scram_server_first(s, sf, strlen(sf), &final) == 0, "server_first");
  int plus = xmppuv__mech_is_plus(v->mech);
  const char *sfin = scram_server_final(srv, final.data, plus ? cb_data : NULL, plus ? CB_LEN : 0);
  FZ_CHECK(sfin != NULL, "the test server refused the client's proof");
  snprintf(v->final, sizeof v->final, "%s", sfin);
  FZ_CHECK(xmppuv__scram_server_final(s, sfin, strlen(sfin)) == 0, "server_final");
  FZ_CHECK(xmppuv__scram_keys_export(s, &v->keys) == 0, "keys_export");
  scram_server_free(srv);
  xmppuv__buf_free(&first);
  xmppuv__buf_free(&final);
  xmppuv__scram_free(s);
}

static void write_seeds(const char *dir) {
  for (size_t i = 0; i < 6; i++) {
    for (int pw = 0; pw < 2; pw++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/exchange-%s%s%s", dir, variants[i].hash,
               xmppuv__mech_is_plus(variants[i].mech) ? "-plus" : "", pw ? "-password" : "");
      FILE *f = fopen(path, "wb");
      FZ_CHECK(f != NULL, "cannot write %s", path);
      fputc((int)(i | (pw ? 16u : 0u)), f);
      fputs(variants[i].first, f);
      fputc(0, f);
      fputs(variants[i].final, f);
      fclose(f);
    }
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  for (size_t i = 0; i < 6; i++) init_variant(&variants[i]);
  const char *dir = getenv("FUZZ_SCRAM_WRITE_SEEDS");
  if (dir != NULL) {
    write_seeds(dir);
    exit(0);
  }
  return 0;
}

/* "i=" of a server-first-message, for skipping inputs that would make the
 * password mode spin in PBKDF2 (the cap is 1e6 iterations: seconds). */
static unsigned long iterations_in(const char *msg, size_t len) {
  unsigned long best = 0;
  for (size_t i = 0; i + 2 < len; i++) {
    if (msg[i] != 'i' || msg[i + 1] != '=' || (i > 0 && msg[i - 1] != ',')) continue;
    unsigned long v = 0;
    for (size_t j = i + 2; j < len && msg[j] >= '0' && msg[j] <= '9' && v < 1u << 30; j++)
      v = v * 10 + (unsigned long)(msg[j] - '0');
    if (v > best) best = v;
  }
  return best;
}

/* RFC 5802 §7: c=<base64>,r=<nonce>,p=<base64 proof>. */
static void check_client_final(const xmppuv__buf_t *b) {
  FZ_CHECK(b->len > 6 && memcmp(b->data, "c=", 2) == 0, "client-final: %s", b->data);
  const char *r = strstr(b->data, ",r=" NONCE);
  const char *p = strstr(b->data, ",p=");
  FZ_CHECK(r != NULL && p != NULL && p > r, "client-final: %s", b->data);
  FZ_CHECK(strlen(b->data) == b->len, "client-final holds a NUL");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  uint8_t flags = data[0];
  const variant_t *v = &variants[flags % 6u];
  int y = (flags >> 3) & 1;
  int with_password = (flags >> 4) & 1;
  const char *msg = (const char *)data + 1;
  size_t len = size - 1;
  const char *nul = memchr(msg, '\0', len);
  size_t first_len = nul ? (size_t)(nul - msg) : len;
  const char *final = nul ? nul + 1 : "";
  size_t final_len = nul ? len - first_len - 1 : 0;
  if (with_password && iterations_in(msg, first_len) > 2 * ITERATIONS) return 0;

  xmppuv__scram_t *s = client(v, y, with_password ? PASSWORD : NULL);
  if (!with_password) FZ_CHECK(xmppuv__scram_use_keys(s, v->keys) == 0, "use_keys");
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  FZ_CHECK(xmppuv__scram_server_first(s, msg, first_len, &out) == XMPPUV_ESTATE,
           "server_first before client_first");
  FZ_CHECK(xmppuv__scram_client_first(s, &out) == 0, "client_first");
  xmppuv__buf_clear(&out);
  int rc = xmppuv__scram_server_first(s, msg, first_len, &out);
  if (rc != 0) {
    /* Without the password, keys that do not fit this salt and count make
     * it ask for keys (the driver derives them). */
    FZ_CHECK(rc == XMPPUV_EPROTO || rc == XMPPUV_EAUTHITER ||
                 (rc == XMPPUV__SCRAM_NEED_KEYS && !with_password),
             "server_first: unexpected %d (%s)", rc, xmppuv_err_name(rc));
    FZ_CHECK(out.len == 0, "client-final written on error");
    FZ_CHECK(xmppuv__scram_server_final(s, final, final_len) == XMPPUV_ESTATE,
             "server_final after a failed server_first");
    FZ_CHECK(xmppuv__scram_error_text(s) == NULL, "error text without e=");
  } else {
    check_client_final(&out);
    FZ_CHECK(with_password || xmppuv__scram_used_cached_keys(s), "cached keys not used");
    xmppuv__buf_t again = XMPPUV__BUF_INIT;
    FZ_CHECK(xmppuv__scram_server_first(s, msg, first_len, &again) == XMPPUV_ESTATE,
             "server_first twice");
    xmppuv__buf_free(&again);
    rc = xmppuv__scram_server_final(s, final, final_len);
    size_t vlen = strlen(v->final);
    int real = first_len == strlen(v->first) && memcmp(msg, v->first, first_len) == 0 &&
               final_len >= vlen && memcmp(final, v->final, vlen) == 0 &&
               (final_len == vlen || final[vlen] == ',') &&
               (!y || xmppuv__mech_is_plus(v->mech)); /* -PLUS ignores y */
    if (rc == 0) {
      FZ_CHECK(real, "a server-final-message that is not the server's was accepted:\n%.*s\n%.*s",
               (int)first_len, msg, (int)final_len, final);
      xmppuv__scram_keys_t *k = NULL;
      FZ_CHECK(xmppuv__scram_keys_export(s, &k) == 0, "keys_export");
      xmppuv__scram_keys_free(k);
    } else {
      FZ_CHECK(rc == XMPPUV_EPROTO || rc == XMPPUV_EAUTH || rc == XMPPUV_EAUTHSERVER,
               "server_final: unexpected %s", xmppuv_err_name(rc));
      FZ_CHECK((rc == XMPPUV_EAUTH) == (xmppuv__scram_error_text(s) != NULL),
               "error text and EAUTH disagree");
      xmppuv__scram_keys_t *k = NULL;
      FZ_CHECK(xmppuv__scram_keys_export(s, &k) == XMPPUV_ESTATE && k == NULL,
               "keys exported after a failure");
    }
    FZ_CHECK(xmppuv__scram_server_final(s, final, final_len) == XMPPUV_ESTATE,
             "server_final twice");
  }
  xmppuv__sasl_buf_wipe(&out);
  xmppuv__scram_free(s);
  return 0;
}
