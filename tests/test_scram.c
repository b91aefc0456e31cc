/* SCRAM (RFC 5802, RFC 7677): the RFC examples message for message, SHA-512,
 * channel binding, every way a server can be wrong, secrets, allocation
 * failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "check_main.h"
#include "secret_alloc.h"
#include "failalloc.h"
#include "sasl/scram.h"
#include "xmppuv.h"

/* RFC 5802 §5 */
#define SHA1_NONCE "fyko+d2lbbFgONRv9qkxdawL"
#define SHA1_C1 "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
#define SHA1_S1 "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define SHA1_C2 "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define SHA1_S2 "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

/* RFC 7677 §3 */
#define SHA256_NONCE "rOprNGfwEbeRWgbNEkqO"
#define SHA256_C1 "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define SHA256_S1 "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define SHA256_C2 "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SHA256_S2 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* No RFC gives SCRAM-SHA-512 or -PLUS examples. These were computed once,
 * independently of this code, by Python 3.11's hashlib and hmac
 * (hashlib.pbkdf2_hmac, hmac.new) following RFC 5802 §3 step by step, with
 * the inputs of the RFC 7677 example (user "user", password "pencil", the
 * same nonces, salt and 4096 iterations); the same script reproduces the
 * RFC 5802 and RFC 7677 messages above exactly. */
#define SHA512_C2 "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ=="
#define SHA512_S2 "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw=="
/* SCRAM-SHA-256-PLUS, gs2 header "p=tls-unique,,", tls-unique data the 12
 * bytes 01 02 ... 0c. */
#define PLUS_C1 "p=tls-unique,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define PLUS_C2 "c=cD10bHMtdW5pcXVlLCwBAgMEBQYHCAkKCww=,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=zVXz1XnwQ23h6CcyI9BAlKckFr/PGPPtPCjmlqEC9Ck="
#define PLUS_S2 "v=4fG/3YJmHOLKm1mOb2YL/jrKqoQqbu4zGrGY64pnBpY="
/* SCRAM-SHA-256 with gs2 flag "y". */
#define Y_C2 "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY="
#define Y_S2 "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U="
/* The same script's intermediate values for the RFC 7677 example. */
static const unsigned char salted_256[32] = {
    0xc4, 0xa4, 0x95, 0x10, 0x32, 0x3a, 0xb4, 0xf9, 0x52, 0xca, 0xc1,
    0xfa, 0x99, 0x44, 0x19, 0x39, 0xe7, 0x8e, 0xa7, 0x4d, 0x6b, 0xe8,
    0x1d, 0xdf, 0x70, 0x96, 0xe8, 0x75, 0x13, 0xdc, 0x61, 0x5d};
static const unsigned char client_key_256[32] = {
    0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16,
    0xb9, 0x6e, 0xda, 0x5e, 0xf4, 0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48,
    0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b};
static const unsigned char server_key_256[32] = {
    0xc1, 0xf3, 0xcb, 0xc1, 0xc1, 0x3a, 0x9d, 0x35, 0xa1, 0x4c, 0x09,
    0x90, 0xee, 0xd9, 0x76, 0x29, 0xea, 0x22, 0x58, 0x63, 0xe5, 0x66,
    0xa4, 0x31, 0x4a, 0xb9, 0x9f, 0x3f, 0x00, 0xe5, 0xd9, 0xd5};

static const unsigned char TLS_UNIQUE[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

typedef struct exchange {
  xmppuv__buf_t c1, c2;
  xmppuv__scram_t *s;
} exchange_t;

static void exchange_free(exchange_t *x) {
  xmppuv__buf_free(&x->c1);
  xmppuv__buf_free(&x->c2);
  xmppuv__scram_free(x->s);
  memset(x, 0, sizeof *x);
}

/* Runs new, client-first, server-first; returns the first error. */
static int start(exchange_t *x, xmppuv__mech_t mech, const char *user,
                 const char *password, const char *flag,
                 const unsigned char *cb, size_t cb_len, const char *nonce,
                 const char *s1) {
  memset(x, 0, sizeof *x);
  int rc = xmppuv__scram_new(mech, user, password, flag, cb, cb_len, nonce, &x->s);
  if (rc == 0) rc = xmppuv__scram_client_first(x->s, &x->c1);
  if (rc == 0) rc = xmppuv__scram_server_first(x->s, s1, strlen(s1), &x->c2);
  return rc;
}

static int start_256(exchange_t *x, const char *s1) {
  return start(x, XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil", "n", NULL, 0,
               SHA256_NONCE, s1);
}

static int finish(exchange_t *x, const char *s2) {
  return xmppuv__scram_server_final(x->s, s2, strlen(s2));
}

/* ---- the examples -------------------------------------------------------- */

START_TEST(rfc5802_sha1_example_gives_the_exact_messages) {
  exchange_t x;
  ck_assert_int_eq(start(&x, XMPPUV__MECH_SCRAM_SHA_1, "user", "pencil", "n",
                         NULL, 0, SHA1_NONCE, SHA1_S1), 0);
  ck_assert_str_eq(x.c1.data, SHA1_C1);
  ck_assert_str_eq(x.c2.data, SHA1_C2);
  ck_assert_int_eq(finish(&x, SHA1_S2), 0);
  ck_assert_ptr_null(xmppuv__scram_error_text(x.s));
  exchange_free(&x);
}
END_TEST

START_TEST(rfc7677_sha256_example_gives_the_exact_messages) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_str_eq(x.c1.data, SHA256_C1);
  ck_assert_str_eq(x.c2.data, SHA256_C2);
  ck_assert_int_eq(finish(&x, SHA256_S2), 0);
  exchange_free(&x);
}
END_TEST

START_TEST(sha512_gives_the_independently_computed_messages) {
  exchange_t x;
  ck_assert_int_eq(start(&x, XMPPUV__MECH_SCRAM_SHA_512, "user", "pencil", "n",
                         NULL, 0, SHA256_NONCE, SHA256_S1), 0);
  ck_assert_str_eq(x.c1.data, SHA256_C1);
  ck_assert_str_eq(x.c2.data, SHA512_C2);
  ck_assert_int_eq(finish(&x, SHA512_S2), 0);
  exchange_free(&x);
}
END_TEST

START_TEST(plus_puts_the_tls_unique_data_in_c) {
  exchange_t x;
  ck_assert_int_eq(start(&x, XMPPUV__MECH_SCRAM_SHA_256_PLUS, "user", "pencil",
                         "p=tls-unique", TLS_UNIQUE, sizeof TLS_UNIQUE,
                         SHA256_NONCE, SHA256_S1), 0);
  ck_assert_str_eq(x.c1.data, PLUS_C1);
  /* c= is base64("p=tls-unique,," 01 02 ... 0c) */
  ck_assert_str_eq(x.c2.data, PLUS_C2);
  ck_assert_int_eq(finish(&x, PLUS_S2), 0);
  exchange_free(&x);
}
END_TEST

START_TEST(y_flag_goes_into_the_gs2_header_and_c) {
  exchange_t x;
  ck_assert_int_eq(start(&x, XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil", "y",
                         NULL, 0, SHA256_NONCE, SHA256_S1), 0);
  ck_assert_str_eq(x.c1.data, "y,,n=user,r=" SHA256_NONCE);
  ck_assert_str_eq(x.c2.data, Y_C2);
  ck_assert_int_eq(finish(&x, Y_S2), 0);
  exchange_free(&x);
}
END_TEST

START_TEST(messages_are_appended_to_what_the_buffer_holds) {
  exchange_t x;
  memset(&x, 0, sizeof x);
  ck_assert_int_eq(xmppuv__buf_append_str(&x.c1, "<"), 0);
  ck_assert_int_eq(xmppuv__buf_append_str(&x.c2, ">"), 0);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_1, "user", "pencil",
                                     "n", NULL, 0, SHA1_NONCE, &x.s), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(x.s, &x.c1), 0);
  ck_assert_int_eq(xmppuv__scram_server_first(x.s, SHA1_S1, strlen(SHA1_S1), &x.c2), 0);
  ck_assert_str_eq(x.c1.data, "<" SHA1_C1);
  ck_assert_str_eq(x.c2.data, ">" SHA1_C2);
  exchange_free(&x);
}
END_TEST

/* ---- the server proves nothing ------------------------------------------- */

START_TEST(server_signature_mismatch_is_EAUTHSERVER) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  /* A well-formed signature, from the "y" exchange: wrong for this one. */
  ck_assert_int_eq(finish(&x, Y_S2), XMPPUV_EAUTHSERVER);
  ck_assert_int_eq(xmppuv__scram_server_final(x.s, SHA256_S2, strlen(SHA256_S2)),
                   XMPPUV_ESTATE);
  exchange_free(&x);
}
END_TEST

START_TEST(server_signature_of_another_length_is_EAUTHSERVER) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  /* The SHA-1 example's signature: 20 bytes, not 32. */
  ck_assert_int_eq(finish(&x, SHA1_S2), XMPPUV_EAUTHSERVER);
  exchange_free(&x);
}
END_TEST

START_TEST(server_signature_in_bad_base64_is_EPROTO) {
  static const char *const bad[] = {
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",  /* unpadded */
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4==", /* overpadded */
      "v=6rriTRBi23WpRR/wtup mMhUZUn/dB5nLTJRsjl95G4=",  /* space */
      "v=",                                              /* empty */
      "w=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",  /* not v or e */
      SHA256_S2 ",",                                     /* trailing comma */
      "",                                                /* nothing */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    exchange_t x;
    ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
    ck_assert_msg(finish(&x, bad[i]) == XMPPUV_EPROTO, "accepted \"%s\"", bad[i]);
    exchange_free(&x);
  }
}
END_TEST

START_TEST(server_final_extensions_are_ignored) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_int_eq(finish(&x, SHA256_S2 ",x=future"), 0);
  exchange_free(&x);
}
END_TEST

START_TEST(server_error_is_EAUTH_with_its_text) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_int_eq(finish(&x, "e=invalid-proof"), XMPPUV_EAUTH);
  ck_assert_str_eq(xmppuv__scram_error_text(x.s), "invalid-proof");
  exchange_free(&x);

  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_int_eq(finish(&x, "e=channel-bindings-dont-match,x=1"), XMPPUV_EAUTH);
  ck_assert_str_eq(xmppuv__scram_error_text(x.s), "channel-bindings-dont-match");
  exchange_free(&x);
}
END_TEST

START_TEST(iteration_count_4095_is_EAUTHITER) {
  exchange_t x;
  ck_assert_int_eq(
      start_256(&x, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095"),
      XMPPUV_EAUTHITER);
  ck_assert_uint_eq(x.c2.len, 0);
  exchange_free(&x);
  ck_assert_int_eq(start_256(&x, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1"),
                   XMPPUV_EAUTHITER);
  exchange_free(&x);
}
END_TEST

START_TEST(iteration_count_above_the_cap_is_EPROTO) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001"),
                   XMPPUV_EPROTO);
  exchange_free(&x);
  ck_assert_int_eq(start_256(&x, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
                                 "i=99999999999999999999999999999999"),
                   XMPPUV_EPROTO);
  exchange_free(&x);
}
END_TEST

START_TEST(nonce_not_extending_ours_is_EPROTO) {
  exchange_t x;
  /* Another client's nonce: a replayed or misdirected challenge. */
  ck_assert_int_eq(start_256(&x, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                                 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                   XMPPUV_EPROTO);
  ck_assert_uint_eq(x.c2.len, 0);
  exchange_free(&x);
  /* Ours with one character changed. */
  ck_assert_int_eq(start_256(&x, "r=rOprNGfwEbeRWgbNEkqP%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                   XMPPUV_EPROTO);
  exchange_free(&x);
  /* A prefix of ours. */
  ck_assert_int_eq(start_256(&x, "r=rOprNGfw,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                   XMPPUV_EPROTO);
  exchange_free(&x);
}
END_TEST

START_TEST(nonce_equal_to_ours_is_EPROTO) {
  /* The server must add its own part (RFC 5802 §5.1). */
  exchange_t x;
  ck_assert_int_eq(start_256(&x, "r=" SHA256_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                   XMPPUV_EPROTO);
  exchange_free(&x);
}
END_TEST

START_TEST(nonce_with_unprintable_characters_is_EPROTO) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, "r=" SHA256_NONCE "ab cd,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                   XMPPUV_EPROTO);
  exchange_free(&x);
  ck_assert_int_eq(start_256(&x, "r=" SHA256_NONCE "\xC3\xA9,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                   XMPPUV_EPROTO);
  exchange_free(&x);
}
END_TEST

/* ---- malformed server-first messages, one by one ------------------------- */

static void assert_refused(const char *s1, size_t len) {
  exchange_t x;
  memset(&x, 0, sizeof x);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "n", NULL, 0, SHA256_NONCE, &x.s), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(x.s, &x.c1), 0);
  ck_assert_int_eq(xmppuv__scram_server_first(x.s, s1, len, &x.c2), XMPPUV_EPROTO);
  ck_assert_uint_eq(x.c2.len, 0);
  /* The object is done for. */
  ck_assert_int_eq(xmppuv__scram_server_first(x.s, SHA256_S1, strlen(SHA256_S1), &x.c2),
                   XMPPUV_ESTATE);
  exchange_free(&x);
}

#define R "r=" SHA256_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define S "s=W22ZaJ0SNY7soEsUEjb6gQ=="
#define XR "x=" SHA256_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define MR "m=" SHA256_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

START_TEST(empty_server_first_is_refused) { assert_refused("", 0); }
END_TEST

START_TEST(server_first_without_salt_is_refused) {
  assert_refused(R ",i=4096", strlen(R ",i=4096"));
}
END_TEST

START_TEST(server_first_with_empty_salt_is_refused) {
  assert_refused(R ",s=,i=4096", strlen(R ",s=,i=4096"));
}
END_TEST

START_TEST(server_first_with_bad_base64_salt_is_refused) {
  assert_refused(R ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096",
                 strlen(R ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096"));
  assert_refused(R ",s=W22ZaJ0SNY7so*sUEjb6gQ==,i=4096",
                 strlen(R ",s=W22ZaJ0SNY7so*sUEjb6gQ==,i=4096"));
}
END_TEST

START_TEST(server_first_with_oversized_salt_is_refused) {
  /* 1026 bytes of salt: base64 of 0x00 bytes is "A". */
  char msg[sizeof R + 1400 + 16];
  strcpy(msg, R ",s=");
  size_t n = strlen(msg);
  memset(msg + n, 'A', 1368);
  strcpy(msg + n + 1368, ",i=4096");
  assert_refused(msg, strlen(msg));
}
END_TEST

START_TEST(server_first_without_iterations_is_refused) {
  assert_refused(R "," S, strlen(R "," S));
  assert_refused(R "," S ",i=", strlen(R "," S ",i="));
}
END_TEST

START_TEST(server_first_with_non_numeric_iterations_is_refused) {
  static const char *const bad[] = {R "," S ",i=4096x", R "," S ",i=-4096",
                                    R "," S ",i=0x1000", R "," S ",i= 4096",
                                    R "," S ",i=+4096"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_refused(bad[i], strlen(bad[i]));
}
END_TEST

START_TEST(server_first_with_leading_zero_iterations_is_refused) {
  assert_refused(R "," S ",i=04096", strlen(R "," S ",i=04096"));
  assert_refused(R "," S ",i=0", strlen(R "," S ",i=0"));
}
END_TEST

START_TEST(server_first_with_overflowing_iterations_is_refused) {
  /* 2^64 + 4096: would wrap to 4096 in a 64-bit accumulator. */
  assert_refused(R "," S ",i=18446744073709555712",
                 strlen(R "," S ",i=18446744073709555712"));
}
END_TEST

START_TEST(server_first_with_mandatory_extension_is_refused) {
  /* RFC 5802 §5.1: "m" present, the client MUST fail. */
  assert_refused("m=ext," R "," S ",i=4096", strlen("m=ext," R "," S ",i=4096"));
}
END_TEST

START_TEST(server_first_with_fields_out_of_order_is_refused) {
  assert_refused(S "," R ",i=4096", strlen(S "," R ",i=4096"));
  assert_refused(R ",i=4096," S, strlen(R ",i=4096," S));
  /* Right place, wrong name. */
  assert_refused(XR "," S ",i=4096", strlen(XR "," S ",i=4096"));
  assert_refused(MR "," S ",i=4096", strlen(MR "," S ",i=4096"));
}
END_TEST

START_TEST(server_first_with_duplicate_fields_is_refused) {
  assert_refused(R "," R "," S ",i=4096", strlen(R "," R "," S ",i=4096"));
}
END_TEST

START_TEST(server_first_with_bad_separators_is_refused) {
  assert_refused(R "," S ",i=4096,", strlen(R "," S ",i=4096,"));
  assert_refused(R ",," S ",i=4096", strlen(R ",," S ",i=4096"));
  assert_refused(R "," S ",i=4096,x", strlen(R "," S ",i=4096,x"));
  assert_refused(R ";" S ";i=4096", strlen(R ";" S ";i=4096"));
  assert_refused("rr=x," S ",i=4096", strlen("rr=x," S ",i=4096"));
}
END_TEST

START_TEST(server_first_with_nul_byte_is_refused) {
  static const char msg[] = R "," S ",i=4096\0,x=y";
  assert_refused(msg, sizeof msg - 1);
}
END_TEST

START_TEST(server_first_with_invalid_utf8_is_refused) {
  assert_refused(R "," S ",i=4096,x=\xFF", strlen(R "," S ",i=4096,x=\xFF"));
}
END_TEST

START_TEST(server_first_extensions_after_iterations_are_accepted) {
  exchange_t x;
  ck_assert_int_eq(start_256(&x, SHA256_S1 ",x=future,y=more"), 0);
  /* The extension is part of AuthMessage, so the proof differs. */
  ck_assert_str_ne(x.c2.data, SHA256_C2);
  ck_assert_int_eq(strncmp(x.c2.data, "c=biws,r=" SHA256_NONCE, 29), 0);
  exchange_free(&x);
}
END_TEST

/* ---- the object's contract ----------------------------------------------- */

/* XEP-0474: the hash of what the server offered, as the XEP's example
 * computes it (SCRAM-SHA-1 and -PLUS; tls-server-end-point and
 * tls-exporter), checked against the server-first's "h". */
static int ssdp_exchange(const char *h, const char *const *mechs, size_t n, int cb_adv) {
  static const char *const types[] = {"tls-server-end-point", "tls-exporter"};
  exchange_t x;
  memset(&x, 0, sizeof x);
  int rc = xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_1, "user", "pencil", "n", NULL, 0,
                             SHA1_NONCE, &x.s);
  if (rc == 0) rc = xmppuv__scram_expect_ssdp(x.s, mechs, n, cb_adv, types, 2);
  if (rc == 0) rc = xmppuv__scram_client_first(x.s, &x.c1);
  char s1[256];
  snprintf(s1, sizeof s1, "%s%s%s", SHA1_S1, h ? ",h=" : "", h ? h : "");
  if (rc == 0) rc = xmppuv__scram_server_first(x.s, s1, strlen(s1), &x.c2);
  exchange_free(&x);
  return rc;
}

START_TEST(a_downgrade_hash_that_matches_the_offer_passes) {
  static const char *const mechs[] = {"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}; /* any order */
  ck_assert_int_eq(ssdp_exchange("G6k/rBLDqgOhRRaCuuatSDFkJ08=", mechs, 2, 1), 0);
  /* A server that sends none is not checked. */
  ck_assert_int_eq(ssdp_exchange(NULL, mechs, 2, 1), 0);
}
END_TEST

START_TEST(a_downgrade_hash_of_another_offer_is_EDOWNGRADE) {
  /* What the client saw differs from what the server offered: a mechanism
   * taken out, or the channel-binding list hidden. */
  static const char *const fewer[] = {"SCRAM-SHA-1"};
  static const char *const mechs[] = {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"};
  ck_assert_int_eq(ssdp_exchange("G6k/rBLDqgOhRRaCuuatSDFkJ08=", fewer, 1, 1),
                   XMPPUV_EDOWNGRADE);
  ck_assert_int_eq(ssdp_exchange("G6k/rBLDqgOhRRaCuuatSDFkJ08=", mechs, 2, 0),
                   XMPPUV_EDOWNGRADE);
}
END_TEST

START_TEST(calls_out_of_order_are_ESTATE) {
  xmppuv__scram_t *s;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_1, "user", "pencil",
                                     "n", NULL, 0, SHA1_NONCE, &s), 0);
  ck_assert_int_eq(xmppuv__scram_server_first(s, SHA1_S1, strlen(SHA1_S1), &b),
                   XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv__scram_server_final(s, SHA1_S2, strlen(SHA1_S2)),
                   XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv__scram_client_first(s, &b), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(s, &b), XMPPUV_ESTATE);
  ck_assert_str_eq(b.data, SHA1_C1);
  xmppuv__buf_clear(&b);
  ck_assert_int_eq(xmppuv__scram_server_final(s, SHA1_S2, strlen(SHA1_S2)),
                   XMPPUV_ESTATE);
  /* An ESTATE does not spoil the exchange. */
  ck_assert_int_eq(xmppuv__scram_server_first(s, SHA1_S1, strlen(SHA1_S1), &b), 0);
  ck_assert_str_eq(b.data, SHA1_C2);
  ck_assert_int_eq(xmppuv__scram_server_first(s, SHA1_S1, strlen(SHA1_S1), &b),
                   XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv__scram_server_final(s, SHA1_S2, strlen(SHA1_S2)), 0);
  ck_assert_int_eq(xmppuv__scram_server_final(s, SHA1_S2, strlen(SHA1_S2)),
                   XMPPUV_ESTATE);
  xmppuv__scram_free(s);
  xmppuv__scram_free(NULL);
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(new_refuses_bad_arguments) {
  xmppuv__scram_t *s = (xmppuv__scram_t *)&s;
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_PLAIN, "user", "pencil", "n",
                                     NULL, 0, NULL, &s), XMPPUV_EINVAL);
  ck_assert_ptr_null(s);
  /* -PLUS needs "p=" and data; the others must not carry data. */
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256_PLUS, "user", "pencil",
                                     "n", NULL, 0, NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256_PLUS, "user", "pencil",
                                     "p=tls-unique", NULL, 0, NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "p=tls-unique", TLS_UNIQUE, 12, NULL, &s),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "n", TLS_UNIQUE, 12, NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256_PLUS, "user", "pencil",
                                     "p=tls unique", TLS_UNIQUE, 12, NULL, &s),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "Y", NULL, 0, NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "n", NULL, 0, "a,b", &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "n", NULL, 0, "", &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "", "pencil",
                                     "n", NULL, 0, NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "us\xC3", "pencil",
                                     "n", NULL, 0, NULL, &s), XMPPUV_EUTF8);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "",
                                     "n", NULL, 0, NULL, &s), XMPPUV_EINVAL);
  ck_assert_ptr_null(s);
}
END_TEST

START_TEST(username_is_escaped) {
  /* RFC 5802 §5.1: ',' is "=2C" and '=' is "=3D". */
  xmppuv__scram_t *s;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_1, "a,b=c=,", "pencil",
                                     "n", NULL, 0, "abc", &s), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(s, &b), 0);
  ck_assert_str_eq(b.data, "n,,n=a=2Cb=3Dc=3D=2C,r=abc");
  xmppuv__scram_free(s);
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(username_is_normalized_to_nfc) {
  xmppuv__scram_t *s;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_1, "jos\x65\xCC\x81", "pencil",
                                     "n", NULL, 0, "abc", &s), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(s, &b), 0);
  ck_assert_str_eq(b.data, "n,,n=jos\xC3\xA9,r=abc");
  xmppuv__scram_free(s);
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(password_is_normalized_to_nfc) {
  /* "pe" + COMBINING ACUTE + "ncil" and U+00E9 spelled at once prove the same;
   * a different password does not. */
  exchange_t a, b, c;
  ck_assert_int_eq(start(&a, XMPPUV__MECH_SCRAM_SHA_256, "user", "pe\xCC\x81ncil", "n",
                         NULL, 0, SHA256_NONCE, SHA256_S1), 0);
  ck_assert_int_eq(start(&b, XMPPUV__MECH_SCRAM_SHA_256, "user", "p\xC3\xA9ncil", "n",
                         NULL, 0, SHA256_NONCE, SHA256_S1), 0);
  ck_assert_int_eq(start(&c, XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil", "n",
                         NULL, 0, SHA256_NONCE, SHA256_S1), 0);
  ck_assert_str_eq(a.c2.data, b.c2.data);
  ck_assert_str_ne(a.c2.data, c.c2.data);
  exchange_free(&a);
  exchange_free(&b);
  exchange_free(&c);
}
END_TEST

START_TEST(random_nonces_are_fresh_printable_base64) {
  xmppuv__scram_t *s1, *s2;
  xmppuv__buf_t b1 = XMPPUV__BUF_INIT, b2 = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "n", NULL, 0, NULL, &s1), 0);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "n", NULL, 0, NULL, &s2), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(s1, &b1), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(s2, &b2), 0);
  /* 24 random bytes are 32 base64 characters: printable, no ','. */
  ck_assert_uint_eq(b1.len, strlen("n,,n=user,r=") + 32);
  ck_assert_int_eq(strncmp(b1.data, "n,,n=user,r=", 12), 0);
  for (size_t i = 12; i < b1.len; i++)
    ck_assert(b1.data[i] > 0x20 && b1.data[i] < 0x7F && b1.data[i] != ',');
  ck_assert_str_ne(b1.data, b2.data);
  xmppuv__scram_free(s1);
  xmppuv__scram_free(s2);
  xmppuv__buf_free(&b1);
  xmppuv__buf_free(&b2);
}
END_TEST

/* ---- cached keys --------------------------------------------------------- */

START_TEST(cached_keys_stand_in_for_the_password) {
  exchange_t x;
  xmppuv__scram_keys_t *keys;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_int_eq(xmppuv__scram_keys_export(x.s, &keys), XMPPUV_ESTATE);
  ck_assert_int_eq(finish(&x, SHA256_S2), 0);
  ck_assert_int_eq(xmppuv__scram_used_cached_keys(x.s), 0);
  ck_assert_int_eq(xmppuv__scram_keys_export(x.s, &keys), 0);
  exchange_free(&x);

  /* No password at all: the same exact messages. */
  memset(&x, 0, sizeof x);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256_PLUS, "user", NULL,
                                     "p=tls-unique", TLS_UNIQUE, 12, SHA256_NONCE,
                                     &x.s), 0);
  ck_assert_int_eq(xmppuv__scram_use_keys(x.s, keys), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(x.s, &x.c1), 0);
  ck_assert_int_eq(xmppuv__scram_server_first(x.s, SHA256_S1, strlen(SHA256_S1), &x.c2), 0);
  ck_assert_int_eq(xmppuv__scram_used_cached_keys(x.s), 1);
  ck_assert_str_eq(x.c2.data, PLUS_C2);
  ck_assert_int_eq(finish(&x, PLUS_S2), 0);
  ck_assert_int_eq(xmppuv__scram_use_keys(x.s, keys), XMPPUV_ESTATE);
  exchange_free(&x);
  xmppuv__scram_keys_free(keys);
  xmppuv__scram_keys_free(NULL);
}
END_TEST

START_TEST(cached_keys_for_another_salt_need_the_password) {
  exchange_t x;
  xmppuv__scram_keys_t *keys;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_int_eq(finish(&x, SHA256_S2), 0);
  ck_assert_int_eq(xmppuv__scram_keys_export(x.s, &keys), 0);
  exchange_free(&x);

  static const char *const changed[] = {
      R ",s=QSXCR+Q6sek8bf92,i=4096", /* another salt */
      R "," S ",i=4097",              /* another count */
  };
  for (size_t i = 0; i < 2; i++) {
    memset(&x, 0, sizeof x);
    ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", NULL, "n",
                                       NULL, 0, SHA256_NONCE, &x.s), 0);
    ck_assert_int_eq(xmppuv__scram_use_keys(x.s, keys), 0);
    ck_assert_int_eq(xmppuv__scram_client_first(x.s, &x.c1), 0);
    ck_assert_int_eq(xmppuv__scram_server_first(x.s, changed[i], strlen(changed[i]), &x.c2),
                     XMPPUV__SCRAM_NEED_KEYS);
    ck_assert_uint_eq(x.c2.len, 0);
    /* What to derive: this server-first's salt and count. */
    xmppuv__mech_t mech;
    const unsigned char *salt;
    size_t salt_len;
    unsigned int iterations;
    ck_assert_int_eq(xmppuv__scram_key_request(x.s, &mech, &salt, &salt_len, &iterations), 0);
    ck_assert_int_eq(mech, XMPPUV__MECH_SCRAM_SHA_256);
    ck_assert_uint_eq(iterations, i == 0 ? 4096 : 4097);
    ck_assert_uint_eq(salt_len, i == 0 ? 12 : 16);
    /* The stale keys still do not fit. */
    ck_assert_int_eq(xmppuv__scram_client_final(x.s, &x.c2), XMPPUV__SCRAM_NEED_KEYS);
    exchange_free(&x);
  }
  /* Another hash with the same salt and count: not usable either. */
  memset(&x, 0, sizeof x);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_512, "user", "pencil", "n",
                                     NULL, 0, SHA256_NONCE, &x.s), 0);
  ck_assert_int_eq(xmppuv__scram_use_keys(x.s, keys), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(x.s, &x.c1), 0);
  ck_assert_int_eq(xmppuv__scram_server_first(x.s, SHA256_S1, strlen(SHA256_S1), &x.c2), 0);
  ck_assert_int_eq(xmppuv__scram_used_cached_keys(x.s), 0);
  ck_assert_str_eq(x.c2.data, SHA512_C2);
  exchange_free(&x);
  xmppuv__scram_keys_free(keys);
}
END_TEST

/* Without a password the exchange asks for keys; keys derived apart (as the
 * client does on libuv's thread pool) give the RFC 7677 messages. */
START_TEST(keys_derived_apart_from_the_password_complete_the_exchange) {
  exchange_t x;
  memset(&x, 0, sizeof x);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", NULL, "n", NULL, 0,
                                     SHA256_NONCE, &x.s), 0);
  ck_assert_int_eq(xmppuv__scram_client_first(x.s, &x.c1), 0);
  ck_assert_int_eq(xmppuv__scram_server_first(x.s, SHA256_S1, strlen(SHA256_S1), &x.c2),
                   XMPPUV__SCRAM_NEED_KEYS);
  xmppuv__mech_t mech;
  const unsigned char *salt;
  size_t salt_len, key_len;
  unsigned int iterations;
  ck_assert_int_eq(xmppuv__scram_key_request(x.s, &mech, &salt, &salt_len, &iterations), 0);
  unsigned char ck[XMPPUV__SCRAM_KEY_MAX], sk[XMPPUV__SCRAM_KEY_MAX];
  ck_assert_int_eq(xmppuv__scram_derive(mech, "pencil", 6, salt, salt_len, iterations, ck, sk,
                                        &key_len), 0);
  ck_assert_uint_eq(key_len, 32);
  xmppuv__scram_keys_t *keys;
  ck_assert_int_eq(xmppuv__scram_keys_new(mech, salt, salt_len, iterations, ck, sk, key_len,
                                          &keys), 0);
  ck_assert_int_eq(xmppuv__scram_use_keys(x.s, keys), 0);
  xmppuv__scram_keys_free(keys);
  ck_assert_int_eq(xmppuv__scram_client_final(x.s, &x.c2), 0);
  ck_assert_str_eq(x.c2.data, SHA256_C2);
  /* Keys given on request are this login's own, not a cache: the client
   * keeps them for the next one. */
  ck_assert_int_eq(xmppuv__scram_used_cached_keys(x.s), 0);
  ck_assert_int_eq(xmppuv__scram_server_final(x.s, SHA256_S2, strlen(SHA256_S2)), 0);
  /* Asking again is a state error. */
  ck_assert_int_eq(xmppuv__scram_client_final(x.s, &x.c2), XMPPUV_ESTATE);
  exchange_free(&x);
}
END_TEST

/* ---- allocation failures ------------------------------------------------- */

/* RFC 7677 example, to the end, keys exported. */
static int example_scenario(void *user_data) {
  (void)user_data;
  exchange_t x;
  xmppuv__scram_keys_t *keys = NULL;
  int rc = start_256(&x, SHA256_S1);
  if (rc == 0) rc = finish(&x, SHA256_S2);
  if (rc == 0) rc = xmppuv__scram_keys_export(x.s, &keys);
  if (rc == 0 && strcmp(x.c2.data, SHA256_C2) != 0) rc = XMPPUV_EINVAL;
  exchange_free(&x);
  xmppuv__scram_keys_free(keys);
  return rc;
}

/* -PLUS, random nonce, a name to escape and a password to normalize; the
 * server's message is built from our nonce. */
static int plus_scenario(void *user_data) {
  (void)user_data;
  exchange_t x;
  memset(&x, 0, sizeof x);
  int rc = xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_512_PLUS, "us,er",
                             "pe\xCC\x81ncil", "p=tls-unique", TLS_UNIQUE, 12,
                             NULL, &x.s);
  if (rc == 0) rc = xmppuv__scram_client_first(x.s, &x.c1);
  if (rc == 0) {
    /* A stack buffer: the test makes no allocations of its own. */
    char msg[128];
    const char *nonce = strstr(x.c1.data, ",r=") + 3;
    snprintf(msg, sizeof msg, "r=%s3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
             nonce);
    rc = xmppuv__scram_server_first(x.s, msg, strlen(msg), &x.c2);
  }
  if (rc == 0 && strncmp(x.c2.data, "c=cD10bHMtdW5pcXVlLCwBAgMEBQYHCAkKCww=,r=", 41) != 0)
    rc = XMPPUV_EINVAL;
  exchange_free(&x);
  return rc;
}

START_TEST(whole_exchange_survives_every_allocation_failure) {
  ck_assert_int_gt(failalloc_sweep(example_scenario, NULL), 10);
  ck_assert_int_gt(failalloc_sweep(plus_scenario, NULL), 10);
}
END_TEST

/* ---- secrets in freed memory ----------------------------------------------
 * The secret-scanning allocator (tests/support/secret_alloc.h) looks for the
 * password and the derived keys in every block freed. */

static void watch_secrets(void) {
  secret_alloc_install();
  secret_alloc_watch("pencil", 6);
  secret_alloc_watch(salted_256, 32);
  secret_alloc_watch(client_key_256, 32);
  secret_alloc_watch(server_key_256, 32);
}

START_TEST(freed_memory_never_holds_the_password_or_keys) {
  watch_secrets();

  /* A successful exchange, then one that fails after the keys exist, then
   * one whose keys are exported. Each time we check, while the object is
   * alive, that the secret is really there to be found. */
  exchange_t x;
  memset(&x, 0, sizeof x);
  ck_assert_int_eq(xmppuv__scram_new(XMPPUV__MECH_SCRAM_SHA_256, "user", "pencil",
                                     "n", NULL, 0, SHA256_NONCE, &x.s), 0);
  ck_assert(secret_alloc_live_holds("pencil", 6));
  ck_assert_int_eq(xmppuv__scram_client_first(x.s, &x.c1), 0);
  ck_assert_int_eq(xmppuv__scram_server_first(x.s, SHA256_S1, strlen(SHA256_S1), &x.c2), 0);
  ck_assert(secret_alloc_live_holds(client_key_256, 32));
  ck_assert(secret_alloc_live_holds(server_key_256, 32));
  ck_assert(!secret_alloc_live_holds("pencil", 6)); /* gone once the keys exist */
  ck_assert_int_eq(finish(&x, SHA256_S2), 0);
  exchange_free(&x);
  ck_assert_int_eq(secret_alloc_freed_secret(), 0);

  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_int_eq(finish(&x, Y_S2), XMPPUV_EAUTHSERVER);
  ck_assert(!secret_alloc_live_holds(client_key_256, 32)); /* wiped at the failure */
  exchange_free(&x);
  ck_assert_int_eq(secret_alloc_freed_secret(), 0);

  xmppuv__scram_keys_t *keys;
  ck_assert_int_eq(start_256(&x, SHA256_S1), 0);
  ck_assert_int_eq(finish(&x, SHA256_S2), 0);
  ck_assert_int_eq(xmppuv__scram_keys_export(x.s, &keys), 0);
  exchange_free(&x);
  ck_assert(secret_alloc_live_holds(client_key_256, 32));
  xmppuv__scram_keys_free(keys);
  ck_assert(!secret_alloc_live_holds(client_key_256, 32));
  ck_assert_int_eq(secret_alloc_freed_secret(), 0);

  /* Failure before the keys: the password copy alone. */
  ck_assert_int_eq(start_256(&x, R "," S ",i=4095"), XMPPUV_EAUTHITER);
  exchange_free(&x);
  ck_assert_int_eq(secret_alloc_freed_secret(), 0);

  ck_assert_uint_eq(secret_alloc_live_blocks(), 0);
  secret_alloc_uninstall();
}
END_TEST

START_TEST(the_secret_detector_detects) {
  /* The allocator above would see a password freed without wiping. */
  watch_secrets();
  char *copy = xmppuv__strdup("my pencil");
  ck_assert(secret_alloc_live_holds("pencil", 6));
  xmppuv__free(copy);
  ck_assert_int_eq(secret_alloc_freed_secret(), 1);
  secret_alloc_uninstall();
}
END_TEST

static Suite *scram_suite(void) {
  Suite *s = suite_create("scram");
  TCase *tc = tcase_create("examples");
  tcase_add_test(tc, rfc5802_sha1_example_gives_the_exact_messages);
  tcase_add_test(tc, rfc7677_sha256_example_gives_the_exact_messages);
  tcase_add_test(tc, sha512_gives_the_independently_computed_messages);
  tcase_add_test(tc, plus_puts_the_tls_unique_data_in_c);
  tcase_add_test(tc, y_flag_goes_into_the_gs2_header_and_c);
  tcase_add_test(tc, messages_are_appended_to_what_the_buffer_holds);
  suite_add_tcase(s, tc);

  tc = tcase_create("hostile server");
  tcase_add_test(tc, server_signature_mismatch_is_EAUTHSERVER);
  tcase_add_test(tc, server_signature_of_another_length_is_EAUTHSERVER);
  tcase_add_test(tc, server_signature_in_bad_base64_is_EPROTO);
  tcase_add_test(tc, server_final_extensions_are_ignored);
  tcase_add_test(tc, server_error_is_EAUTH_with_its_text);
  tcase_add_test(tc, iteration_count_4095_is_EAUTHITER);
  tcase_add_test(tc, iteration_count_above_the_cap_is_EPROTO);
  tcase_add_test(tc, nonce_not_extending_ours_is_EPROTO);
  tcase_add_test(tc, nonce_equal_to_ours_is_EPROTO);
  tcase_add_test(tc, nonce_with_unprintable_characters_is_EPROTO);
  tcase_add_test(tc, empty_server_first_is_refused);
  tcase_add_test(tc, server_first_without_salt_is_refused);
  tcase_add_test(tc, server_first_with_empty_salt_is_refused);
  tcase_add_test(tc, server_first_with_bad_base64_salt_is_refused);
  tcase_add_test(tc, server_first_with_oversized_salt_is_refused);
  tcase_add_test(tc, server_first_without_iterations_is_refused);
  tcase_add_test(tc, server_first_with_non_numeric_iterations_is_refused);
  tcase_add_test(tc, server_first_with_leading_zero_iterations_is_refused);
  tcase_add_test(tc, server_first_with_overflowing_iterations_is_refused);
  tcase_add_test(tc, server_first_with_mandatory_extension_is_refused);
  tcase_add_test(tc, server_first_with_fields_out_of_order_is_refused);
  tcase_add_test(tc, server_first_with_duplicate_fields_is_refused);
  tcase_add_test(tc, server_first_with_bad_separators_is_refused);
  tcase_add_test(tc, server_first_with_nul_byte_is_refused);
  tcase_add_test(tc, server_first_with_invalid_utf8_is_refused);
  tcase_add_test(tc, server_first_extensions_after_iterations_are_accepted);
  tcase_add_test(tc, a_downgrade_hash_that_matches_the_offer_passes);
  tcase_add_test(tc, a_downgrade_hash_of_another_offer_is_EDOWNGRADE);
  suite_add_tcase(s, tc);

  tc = tcase_create("contract");
  tcase_add_test(tc, calls_out_of_order_are_ESTATE);
  tcase_add_test(tc, new_refuses_bad_arguments);
  tcase_add_test(tc, username_is_escaped);
  tcase_add_test(tc, username_is_normalized_to_nfc);
  tcase_add_test(tc, password_is_normalized_to_nfc);
  tcase_add_test(tc, random_nonces_are_fresh_printable_base64);
  tcase_add_test(tc, cached_keys_stand_in_for_the_password);
  tcase_add_test(tc, cached_keys_for_another_salt_need_the_password);
  tcase_add_test(tc, keys_derived_apart_from_the_password_complete_the_exchange);
  suite_add_tcase(s, tc);

  tc = tcase_create("memory");
  tcase_add_test(tc, whole_exchange_survives_every_allocation_failure);
  tcase_add_test(tc, freed_memory_never_holds_the_password_or_keys);
  tcase_add_test(tc, the_secret_detector_detects);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(scram_suite)
