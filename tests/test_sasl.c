/* SASL: mechanism choice (RFC 5802 §6 gs2 flags, XEP-0440 narrowing and
 * downgrade rules), PLAIN/ANONYMOUS/EXTERNAL messages, preparation, base64. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "check_main.h"
#include "secret_alloc.h"
#include "failalloc.h"
#include "sasl/sasl.h"
#include "xmppuv.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const ALL[] = {
    "SCRAM-SHA-1",        "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512",    "SCRAM-SHA-512-PLUS",
    "PLAIN",              "EXTERNAL",         "ANONYMOUS"};
static const char *const TLS12[] = {"tls-unique"};

static xmppuv__sasl_offer_t offer_of(const char *const *mechs, size_t n) {
  xmppuv__sasl_offer_t o = {mechs, n, 0, NULL, 0};
  return o;
}

static xmppuv__sasl_offer_t offer_with_cb(const char *const *mechs, size_t n,
                                          const char *const *types, size_t nt) {
  xmppuv__sasl_offer_t o = {mechs, n, 1, types, nt};
  return o;
}

static xmppuv__sasl_policy_t tls_password(void) {
  xmppuv__sasl_policy_t p = {0};
  p.tls_active = 1;
  p.have_password = 1;
  return p;
}

/* ---- names --------------------------------------------------------------- */

START_TEST(mechanism_names_round_trip) {
  for (int m = XMPPUV__MECH_ANONYMOUS; m <= XMPPUV__MECH_SCRAM_SHA_512_PLUS; m++) {
    const char *name = xmppuv__mech_name((xmppuv__mech_t)m);
    ck_assert_ptr_nonnull(name);
    ck_assert_int_eq(xmppuv__mech_from_name(name), m);
  }
  ck_assert_str_eq(xmppuv__mech_name(XMPPUV__MECH_SCRAM_SHA_256_PLUS),
                   "SCRAM-SHA-256-PLUS");
  ck_assert_ptr_null(xmppuv__mech_name(XMPPUV__MECH_NONE));
  ck_assert_ptr_null(xmppuv__mech_name((xmppuv__mech_t)99));
}
END_TEST

START_TEST(unknown_or_miscased_names_are_no_mechanism) {
  ck_assert_int_eq(xmppuv__mech_from_name("DIGEST-MD5"), XMPPUV__MECH_NONE);
  ck_assert_int_eq(xmppuv__mech_from_name("plain"), XMPPUV__MECH_NONE);
  ck_assert_int_eq(xmppuv__mech_from_name("SCRAM-SHA-256-PLUS "), XMPPUV__MECH_NONE);
  ck_assert_int_eq(xmppuv__mech_from_name(""), XMPPUV__MECH_NONE);
  ck_assert_int_eq(xmppuv__mech_from_name(NULL), XMPPUV__MECH_NONE);
  ck_assert(xmppuv__mech_is_plus(XMPPUV__MECH_SCRAM_SHA_1_PLUS));
  ck_assert(!xmppuv__mech_is_plus(XMPPUV__MECH_SCRAM_SHA_1));
  ck_assert(xmppuv__mech_is_scram(XMPPUV__MECH_SCRAM_SHA_1));
  ck_assert(!xmppuv__mech_is_scram(XMPPUV__MECH_PLAIN));
}
END_TEST

/* ---- choice -------------------------------------------------------------- */

START_TEST(strongest_offered_mechanism_is_chosen) {
  xmppuv__sasl_offer_t o = offer_of(ALL, N(ALL));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512_PLUS);
  ck_assert_str_eq(c.cb_type, "tls-unique");
  ck_assert_str_eq(c.gs2_cb_flag, "p=tls-unique");

  static const char *const scram256[] = {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"};
  o = offer_of(scram256, N(scram256));
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_256);
  ck_assert_str_eq(c.gs2_cb_flag, "n");
  ck_assert_str_eq(c.cb_type, "");
}
END_TEST

START_TEST(plus_is_preferred_to_a_stronger_hash_without_binding) {
  static const char *const offer[] = {"SCRAM-SHA-512", "SCRAM-SHA-1-PLUS"};
  xmppuv__sasl_offer_t o = offer_of(offer, N(offer));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_1_PLUS);
  ck_assert_str_eq(c.gs2_cb_flag, "p=tls-unique");
}
END_TEST

START_TEST(plus_is_not_chosen_without_tls) {
  xmppuv__sasl_offer_t o = offer_of(ALL, N(ALL));
  xmppuv__sasl_policy_t p = tls_password();
  p.tls_active = 0;
  xmppuv__sasl_choice_t c;
  /* Binding types without TLS are a caller's mistake: ignored. */
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512);
  ck_assert_str_eq(c.gs2_cb_flag, "n");
}
END_TEST

START_TEST(plus_is_not_chosen_without_binding_data) {
  xmppuv__sasl_offer_t o = offer_of(ALL, N(ALL));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512);
  /* We cannot bind at all: "n", not a false claim. */
  ck_assert_str_eq(c.gs2_cb_flag, "n");
}
END_TEST

START_TEST(flag_is_y_when_we_can_bind_but_server_offers_no_plus) {
  /* RFC 5802 §6: an attacker who strips -PLUS makes us send "y", and the
   * real server, which does support binding, then fails us. */
  static const char *const offer[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"};
  xmppuv__sasl_offer_t o = offer_of(offer, N(offer));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_256);
  ck_assert_str_eq(c.gs2_cb_flag, "y");
  ck_assert_str_eq(c.cb_type, "");
}
END_TEST

START_TEST(flag_is_n_when_server_offers_plus_with_a_type_we_lack) {
  /* No XEP-0440 list, and our only type is not a default one: an honest
   * server offering -PLUS would fail a "y", so we say "n". */
  static const char *const ours[] = {"tls-server-end-point"};
  xmppuv__sasl_offer_t o = offer_of(ALL, N(ALL));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, ours, N(ours), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512);
  ck_assert_str_eq(c.gs2_cb_flag, "n");
}
END_TEST

START_TEST(without_xep0440_tls_unique_is_assumed_then_tls_exporter) {
  static const char *const both[] = {"tls-exporter", "tls-unique"};
  static const char *const exporter[] = {"tls-exporter"};
  xmppuv__sasl_offer_t o = offer_of(ALL, N(ALL));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, both, N(both), &p, &c), 0);
  ck_assert_str_eq(c.gs2_cb_flag, "p=tls-unique");
  ck_assert_int_eq(xmppuv__sasl_choose(&o, exporter, N(exporter), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512_PLUS);
  ck_assert_str_eq(c.gs2_cb_flag, "p=tls-exporter");
}
END_TEST

START_TEST(xep0440_list_narrows_the_binding_type) {
  static const char *const server[] = {"tls-exporter", "tls-server-end-point"};
  static const char *const ours[] = {"tls-unique", "tls-exporter"};
  xmppuv__sasl_offer_t o = offer_with_cb(ALL, N(ALL), server, N(server));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, ours, N(ours), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512_PLUS);
  ck_assert_str_eq(c.cb_type, "tls-exporter");
  ck_assert_str_eq(c.gs2_cb_flag, "p=tls-exporter");
}
END_TEST

START_TEST(xep0440_our_order_decides_among_common_types) {
  static const char *const server[] = {"tls-unique", "tls-server-end-point",
                                       "tls-exporter"};
  static const char *const ours[] = {"tls-exporter", "tls-unique"};
  xmppuv__sasl_offer_t o = offer_with_cb(ALL, N(ALL), server, N(server));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, ours, N(ours), &p, &c), 0);
  ck_assert_str_eq(c.gs2_cb_flag, "p=tls-exporter");
}
END_TEST

START_TEST(xep0440_types_none_ours_without_server_end_point_is_EDOWNGRADE) {
  static const char *const server[] = {"tls-made-up"};
  xmppuv__sasl_offer_t o = offer_with_cb(ALL, N(ALL), server, N(server));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c),
                   XMPPUV_EDOWNGRADE);
  /* An advertised but empty list is the same tampering. */
  o = offer_with_cb(ALL, N(ALL), NULL, 0);
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c),
                   XMPPUV_EDOWNGRADE);
}
END_TEST

START_TEST(xep0440_types_none_ours_with_server_end_point_sends_n) {
  /* XEP-0440 §3 aborts only when tls-server-end-point is missing; with it
   * listed, a client lacking it honestly cannot bind. */
  static const char *const server[] = {"tls-server-end-point"};
  xmppuv__sasl_offer_t o = offer_with_cb(ALL, N(ALL), server, N(server));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512);
  ck_assert_str_eq(c.gs2_cb_flag, "n");
  /* And with it among ours, it is used. */
  static const char *const ours[] = {"tls-unique", "tls-server-end-point"};
  ck_assert_int_eq(xmppuv__sasl_choose(&o, ours, N(ours), &p, &c), 0);
  ck_assert_str_eq(c.gs2_cb_flag, "p=tls-server-end-point");
}
END_TEST

START_TEST(xep0440_types_without_plus_mechanisms_is_EDOWNGRADE) {
  static const char *const offer[] = {"SCRAM-SHA-256", "SCRAM-SHA-1"};
  static const char *const server[] = {"tls-unique", "tls-server-end-point"};
  xmppuv__sasl_offer_t o = offer_with_cb(offer, N(offer), server, N(server));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c),
                   XMPPUV_EDOWNGRADE);
}
END_TEST

START_TEST(xep0440_rules_do_not_apply_when_we_cannot_bind) {
  static const char *const offer[] = {"SCRAM-SHA-256"};
  static const char *const server[] = {"tls-made-up"};
  xmppuv__sasl_offer_t o = offer_with_cb(offer, N(offer), server, N(server));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_256);
  ck_assert_str_eq(c.gs2_cb_flag, "n");
}
END_TEST

START_TEST(invalid_binding_type_names_are_ignored) {
  static const char *const ours[] = {
      "tls unique", "", "tls-unique-but-far-too-long-for-a-name"};
  xmppuv__sasl_offer_t o = offer_of(ALL, N(ALL));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, ours, N(ours), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_512);
  ck_assert_str_eq(c.gs2_cb_flag, "n");
}
END_TEST

START_TEST(plain_is_refused_without_tls) {
  static const char *const offer[] = {"PLAIN"};
  xmppuv__sasl_offer_t o = offer_of(offer, N(offer));
  xmppuv__sasl_policy_t p = tls_password();
  p.tls_active = 0;
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), XMPPUV_ENOMECH);
  p.allow_plain_insecure = 1;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_PLAIN);
  ck_assert_str_eq(c.gs2_cb_flag, "");
}
END_TEST

START_TEST(plain_is_chosen_over_tls_when_no_scram_is_offered) {
  static const char *const offer[] = {"X-OAUTH2", "PLAIN", "DIGEST-MD5"};
  xmppuv__sasl_offer_t o = offer_of(offer, N(offer));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_PLAIN);
}
END_TEST

START_TEST(nothing_acceptable_is_ENOMECH) {
  static const char *const offer[] = {"X-OAUTH2", "DIGEST-MD5", "CRAM-MD5"};
  xmppuv__sasl_offer_t o = offer_of(offer, N(offer));
  xmppuv__sasl_policy_t p = tls_password();
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c),
                   XMPPUV_ENOMECH);
  o = offer_of(NULL, 0);
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c),
                   XMPPUV_ENOMECH);
  /* Without a password, SCRAM and PLAIN are out. */
  p.have_password = 0;
  o = offer_of(ALL, N(ALL));
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c),
                   XMPPUV_ENOMECH);
  ck_assert_int_eq(xmppuv__sasl_choose(NULL, NULL, 0, &p, &c), XMPPUV_EINVAL);
}
END_TEST

START_TEST(external_only_when_asked_and_over_tls) {
  static const char *const offer[] = {"EXTERNAL", "ANONYMOUS"};
  xmppuv__sasl_offer_t o = offer_of(offer, N(offer));
  xmppuv__sasl_policy_t p = {0};
  xmppuv__sasl_choice_t c;
  p.tls_active = 1;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), XMPPUV_ENOMECH);
  p.allow_external = 1;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_EXTERNAL);
  p.tls_active = 0;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), XMPPUV_ENOMECH);
  /* The certificate comes first even with a password: the app configured
   * it as the credential to use (the allow-list can still exclude it). */
  static const char *const offer2[] = {"EXTERNAL", "SCRAM-SHA-1"};
  o = offer_of(offer2, N(offer2));
  p = tls_password();
  p.allow_external = 1;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_EXTERNAL);
  static const char *const scram_only[] = {"SCRAM-SHA-1"};
  p.allowed = scram_only;
  p.n_allowed = 1;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_1);
  /* Without the certificate, the password. */
  p = tls_password();
  ck_assert_int_eq(xmppuv__sasl_choose(&o, NULL, 0, &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_1);
}
END_TEST

START_TEST(anonymous_only_when_asked) {
  static const char *const offer[] = {"ANONYMOUS", "SCRAM-SHA-1"};
  xmppuv__sasl_offer_t o = offer_of(offer, N(offer));
  xmppuv__sasl_policy_t p = {0};
  xmppuv__sasl_choice_t c;
  p.tls_active = 1;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c),
                   XMPPUV_ENOMECH);
  p.allow_anonymous = 1;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_ANONYMOUS);
  ck_assert_str_eq(c.gs2_cb_flag, "");
}
END_TEST

START_TEST(allow_list_restricts_the_choice) {
  static const char *const only1[] = {"SCRAM-SHA-1"};
  xmppuv__sasl_offer_t o = offer_of(ALL, N(ALL));
  xmppuv__sasl_policy_t p = tls_password();
  p.allowed = only1;
  p.n_allowed = N(only1);
  xmppuv__sasl_choice_t c;
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_SCRAM_SHA_1);
  /* The app ruled out binding: we do not support it, so "n". */
  ck_assert_str_eq(c.gs2_cb_flag, "n");

  static const char *const offer[] = {"SCRAM-SHA-1"};
  o = offer_of(offer, N(offer));
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_str_eq(c.gs2_cb_flag, "n");

  static const char *const plain[] = {"PLAIN"};
  p.allowed = plain;
  p.n_allowed = N(plain);
  o = offer_of(ALL, N(ALL));
  ck_assert_int_eq(xmppuv__sasl_choose(&o, TLS12, N(TLS12), &p, &c), 0);
  ck_assert_int_eq(c.mech, XMPPUV__MECH_PLAIN);
}
END_TEST

/* ---- PLAIN, ANONYMOUS, EXTERNAL ------------------------------------------ */

START_TEST(plain_message_is_nul_user_nul_password) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", "pencil", &b), 0);
  ck_assert_uint_eq(b.len, 12);
  ck_assert_mem_eq(b.data, "\0user\0pencil", 12);
  xmppuv__sasl_buf_wipe(&b);
  ck_assert_ptr_null(b.data);

  ck_assert_int_eq(xmppuv__sasl_plain("admin@example.org", "user", "pencil", &b), 0);
  ck_assert_uint_eq(b.len, 29);
  ck_assert_mem_eq(b.data, "admin@example.org\0user\0pencil", 29);
  xmppuv__sasl_buf_wipe(&b);
}
END_TEST

START_TEST(plain_prepares_user_and_password) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  /* "e" + COMBINING ACUTE becomes U+00E9 (NFC); NO-BREAK SPACE in a
   * password becomes U+0020 (RFC 8265 §4.2.2). */
  ck_assert_int_eq(
      xmppuv__sasl_plain(NULL, "re\xCC\x81my", "p\xC2\xA0w", &b), 0);
  ck_assert_uint_eq(b.len, 10);
  ck_assert_mem_eq(b.data, "\0r\xC3\xA9my\0p w", 10);
  xmppuv__sasl_buf_wipe(&b);
}
END_TEST

START_TEST(plain_refuses_bad_credentials) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__buf_append_str(&b, "kept"), 0);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "", "pencil", &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", "", &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", "pen\ncil", &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "us\x7fr", "pencil", &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", "pen\xC2\x85", &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", "pen\xC3", &b), XMPPUV_EUTF8);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "us\xFFr", "pencil", &b), XMPPUV_EUTF8);
  ck_assert_int_eq(xmppuv__sasl_plain("a\x01", "user", "pencil", &b), XMPPUV_EINVAL);
  ck_assert_uint_eq(b.len, 4);
  ck_assert_str_eq(b.data, "kept");
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(plain_leaves_no_password_in_freed_memory) {
  /* Positive control first: a plain free does leave it behind. */
  secret_alloc_install();
  /* 40 bytes: the second message below makes the buffer outgrow 64. */
  const char *secret = "pencil-sharpener-and-a-long-eraser-too!!";
  secret_alloc_watch_str(secret);
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__buf_append_str(&b, "xx"), 0);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", secret, &b), 0);
  xmppuv__buf_free(&b);
  ck_assert_int_eq(secret_alloc_freed_secret(), 1);

  secret_alloc_reset();
  ck_assert_int_eq(xmppuv__buf_append_str(&b, "xx"), 0);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", secret, &b), 0);
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", secret, &b), 0);
  xmppuv__sasl_buf_wipe(&b);
  /* Non-ASCII: the NFC path has buffers of its own. */
  secret_alloc_unwatch_all();
  secret_alloc_watch_str("pe\xC3\xA9ncil");
  ck_assert_int_eq(xmppuv__sasl_plain(NULL, "user", "pee\xCC\x81ncil", &b), 0);
  xmppuv__sasl_buf_wipe(&b);
  ck_assert_int_eq(secret_alloc_freed_secret(), 0);
  secret_alloc_uninstall();
}
END_TEST

static int plain_scenario(void *user_data) {
  (void)user_data;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  int rc = xmppuv__sasl_plain("authz", "us\xC3\xA9r", "pe\xCC\x81ncil", &b);
  if (rc == 0 && (b.len != 19 || memcmp(b.data, "authz\0us\xC3\xA9r\0p\xC3\xA9ncil", 19) != 0))
    rc = XMPPUV_EINVAL;
  xmppuv__sasl_buf_wipe(&b);
  return rc;
}

START_TEST(plain_survives_every_allocation_failure) {
  ck_assert_int_gt(failalloc_sweep(plain_scenario, NULL), 3);
}
END_TEST

START_TEST(anonymous_message_is_empty_or_trace) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__sasl_anonymous(NULL, &b), 0);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_int_eq(xmppuv__sasl_anonymous("sirhc@example.org", &b), 0);
  ck_assert_str_eq(b.data, "sirhc@example.org");
  xmppuv__buf_clear(&b);
  char longest[256 * 2 + 1];
  for (int i = 0; i < 256; i++) memcpy(longest + 2 * i, "\xC3\xA9", 2);
  longest[510] = '\0'; /* 255 characters, 510 bytes */
  ck_assert_int_eq(xmppuv__sasl_anonymous(longest, &b), 0);
  ck_assert_uint_eq(b.len, 510);
  xmppuv__buf_clear(&b);
  memcpy(longest + 510, "\xC3\xA9", 3); /* 256 characters */
  ck_assert_int_eq(xmppuv__sasl_anonymous(longest, &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_anonymous("a\tb", &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_anonymous("\xC3", &b), XMPPUV_EUTF8);
  ck_assert_uint_eq(b.len, 0);
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(external_message_is_empty_or_authzid) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__sasl_external(NULL, &b), 0);
  ck_assert_int_eq(xmppuv__sasl_external("", &b), 0);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_int_eq(xmppuv__sasl_external("juliet@example.com", &b), 0);
  ck_assert_str_eq(b.data, "juliet@example.com");
  ck_assert_int_eq(xmppuv__sasl_external("a\x01", &b), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sasl_external("\xFF", &b), XMPPUV_EUTF8);
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(prep_maps_spaces_only_in_passwords) {
  char *out = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv__sasl_prep("a\xE3\x80\x80" "b", 1, &out, &len), 0);
  ck_assert_str_eq(out, "a b");
  ck_assert_uint_eq(len, 3);
  xmppuv__free(out);
  ck_assert_int_eq(xmppuv__sasl_prep("a\xE3\x80\x80" "b", 0, &out, &len), 0);
  ck_assert_str_eq(out, "a\xE3\x80\x80" "b");
  xmppuv__free(out);
  /* U+212B ANGSTROM SIGN is U+00C5 in NFC. */
  ck_assert_int_eq(xmppuv__sasl_prep("\xE2\x84\xAB", 0, &out, &len), 0);
  ck_assert_str_eq(out, "\xC3\x85");
  ck_assert_uint_eq(len, 2);
  xmppuv__free(out);
  /* NFC can lengthen: U+0958 is U+0915 U+093C (a composition exclusion). */
  ck_assert_int_eq(xmppuv__sasl_prep("\xE0\xA5\x98", 1, &out, &len), 0);
  ck_assert_str_eq(out, "\xE0\xA4\x95\xE0\xA4\xBC");
  xmppuv__free(out);
  ck_assert_int_eq(xmppuv__sasl_prep("\xED\xA0\x80", 1, &out, &len), XMPPUV_EUTF8);
  ck_assert_ptr_null(out);
}
END_TEST

/* ---- base64 -------------------------------------------------------------- */

static const char *const b64_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const b64_coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                        "Zm9vYmE=", "Zm9vYmFy"};

START_TEST(base64_encodes_rfc4648_vectors) {
  for (size_t i = 0; i < N(b64_plain); i++) {
    xmppuv__buf_t b = XMPPUV__BUF_INIT;
    ck_assert_int_eq(xmppuv__base64_encode(b64_plain[i], strlen(b64_plain[i]), &b), 0);
    ck_assert_str_eq(b.data, b64_coded[i]);
    ck_assert_uint_eq(b.len, strlen(b64_coded[i]));
    xmppuv__buf_free(&b);
  }
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__buf_append_str(&b, "c="), 0);
  ck_assert_int_eq(xmppuv__base64_encode("n,,", 3, &b), 0);
  ck_assert_str_eq(b.data, "c=biws");
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(base64_decodes_rfc4648_vectors) {
  for (size_t i = 0; i < N(b64_plain); i++) {
    xmppuv__buf_t b = XMPPUV__BUF_INIT;
    ck_assert_int_eq(xmppuv__base64_decode(b64_coded[i], strlen(b64_coded[i]), &b), 0);
    ck_assert_uint_eq(b.len, strlen(b64_plain[i]));
    ck_assert_mem_eq(b.data, b64_plain[i], b.len);
    xmppuv__buf_free(&b);
  }
  unsigned char all[256];
  for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
  xmppuv__buf_t enc = XMPPUV__BUF_INIT, dec = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__base64_encode(all, sizeof all, &enc), 0);
  ck_assert_int_eq(xmppuv__base64_decode(enc.data, enc.len, &dec), 0);
  ck_assert_uint_eq(dec.len, 256);
  ck_assert_mem_eq(dec.data, all, 256);
  xmppuv__buf_free(&enc);
  xmppuv__buf_free(&dec);
}
END_TEST

START_TEST(base64_decode_refuses_bad_input_with_EPROTO) {
  static const char *const bad[] = {
      "Zg=",       /* length not a multiple of 4 */
      "Zg",        /* unpadded */
      "Zm9v\r\n",  /* line break */
      "Zm 9v",     /* whitespace */
      "Zm9v ",     /* trailing space */
      "Zm*v",      /* not in the alphabet */
      "Zm9-",      /* base64url is another alphabet */
      "Zh==",      /* pad bits not zero */
      "Zm9=",      /* pad bits not zero */
      "Z===",      /* three pads */
      "====",      /* only pads */
      "=Zg=",      /* pad first */
      "Zg==Zg==",  /* pad in the middle */
      "Zm\0v",     /* NUL */
  };
  for (size_t i = 0; i < N(bad); i++) {
    xmppuv__buf_t b = XMPPUV__BUF_INIT;
    ck_assert_int_eq(xmppuv__buf_append_str(&b, "kept"), 0);
    size_t len = i == N(bad) - 1 ? 4 : strlen(bad[i]);
    ck_assert_msg(xmppuv__base64_decode(bad[i], len, &b) == XMPPUV_EPROTO,
                  "accepted \"%s\"", bad[i]);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_str_eq(b.data, "kept");
    xmppuv__buf_free(&b);
  }
}
END_TEST

START_TEST(sasl_payload_writes_empty_as_equals_sign) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__sasl_payload_encode(NULL, 0, &b), 0);
  ck_assert_str_eq(b.data, "=");
  xmppuv__buf_clear(&b);
  ck_assert_int_eq(xmppuv__sasl_payload_encode("\0user\0pencil", 12, &b), 0);
  ck_assert_str_eq(b.data, "AHVzZXIAcGVuY2ls");
  xmppuv__buf_clear(&b);
  ck_assert_int_eq(xmppuv__sasl_payload_decode("=", 1, &b), 0);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_int_eq(xmppuv__sasl_payload_decode("dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9", 40, &b), 0);
  ck_assert_str_eq(b.data, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
  ck_assert_int_eq(xmppuv__sasl_payload_decode("==", 2, &b), XMPPUV_EPROTO);
  xmppuv__buf_free(&b);
}
END_TEST

static int base64_scenario(void *user_data) {
  (void)user_data;
  xmppuv__buf_t e = XMPPUV__BUF_INIT, d = XMPPUV__BUF_INIT;
  int rc = xmppuv__base64_encode("foobar", 6, &e);
  if (rc == 0) rc = xmppuv__base64_decode(e.data, e.len, &d);
  if (rc == 0 && strcmp(d.data, "foobar") != 0) rc = XMPPUV_EINVAL;
  xmppuv__buf_free(&e);
  xmppuv__buf_free(&d);
  return rc;
}

START_TEST(base64_survives_every_allocation_failure) {
  ck_assert_int_eq(failalloc_sweep(base64_scenario, NULL), 2);
}
END_TEST

static Suite *sasl_suite(void) {
  Suite *s = suite_create("sasl");
  TCase *tc = tcase_create("names");
  tcase_add_test(tc, mechanism_names_round_trip);
  tcase_add_test(tc, unknown_or_miscased_names_are_no_mechanism);
  suite_add_tcase(s, tc);

  tc = tcase_create("choice");
  tcase_add_test(tc, strongest_offered_mechanism_is_chosen);
  tcase_add_test(tc, plus_is_preferred_to_a_stronger_hash_without_binding);
  tcase_add_test(tc, plus_is_not_chosen_without_tls);
  tcase_add_test(tc, plus_is_not_chosen_without_binding_data);
  tcase_add_test(tc, flag_is_y_when_we_can_bind_but_server_offers_no_plus);
  tcase_add_test(tc, flag_is_n_when_server_offers_plus_with_a_type_we_lack);
  tcase_add_test(tc, without_xep0440_tls_unique_is_assumed_then_tls_exporter);
  tcase_add_test(tc, xep0440_list_narrows_the_binding_type);
  tcase_add_test(tc, xep0440_our_order_decides_among_common_types);
  tcase_add_test(tc, xep0440_types_none_ours_without_server_end_point_is_EDOWNGRADE);
  tcase_add_test(tc, xep0440_types_none_ours_with_server_end_point_sends_n);
  tcase_add_test(tc, xep0440_types_without_plus_mechanisms_is_EDOWNGRADE);
  tcase_add_test(tc, xep0440_rules_do_not_apply_when_we_cannot_bind);
  tcase_add_test(tc, invalid_binding_type_names_are_ignored);
  tcase_add_test(tc, plain_is_refused_without_tls);
  tcase_add_test(tc, plain_is_chosen_over_tls_when_no_scram_is_offered);
  tcase_add_test(tc, nothing_acceptable_is_ENOMECH);
  tcase_add_test(tc, external_only_when_asked_and_over_tls);
  tcase_add_test(tc, anonymous_only_when_asked);
  tcase_add_test(tc, allow_list_restricts_the_choice);
  suite_add_tcase(s, tc);

  tc = tcase_create("messages");
  tcase_add_test(tc, plain_message_is_nul_user_nul_password);
  tcase_add_test(tc, plain_prepares_user_and_password);
  tcase_add_test(tc, plain_refuses_bad_credentials);
  tcase_add_test(tc, plain_leaves_no_password_in_freed_memory);
  tcase_add_test(tc, plain_survives_every_allocation_failure);
  tcase_add_test(tc, anonymous_message_is_empty_or_trace);
  tcase_add_test(tc, external_message_is_empty_or_authzid);
  tcase_add_test(tc, prep_maps_spaces_only_in_passwords);
  suite_add_tcase(s, tc);

  tc = tcase_create("base64");
  tcase_add_test(tc, base64_encodes_rfc4648_vectors);
  tcase_add_test(tc, base64_decodes_rfc4648_vectors);
  tcase_add_test(tc, base64_decode_refuses_bad_input_with_EPROTO);
  tcase_add_test(tc, sasl_payload_writes_empty_as_equals_sign);
  tcase_add_test(tc, base64_survives_every_allocation_failure);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(sasl_suite)
