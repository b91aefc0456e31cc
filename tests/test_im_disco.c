/* The chat layer's discovery module (lib/im/disco.c) against a scripted
 * server: what it answers about this client (XEP-0030), the verification
 * string (XEP-0115's own examples), and what it believes of others: only
 * an answer that matches the announced hash is cached. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"

#define IQ_FROM_BOB(id, query) \
  "<iq type='get' id='" id "' from='bob@localhost/b' to='alice@localhost/r0'>" query "</iq>"

static xmppuv_disco_t *attach(world_t *w) {
  xmppuv_disco_identity_t id = {"client", "pc", "Exodus 0.9.1", NULL};
  xmppuv_disco_t *d = NULL;
  ck_assert_int_eq(xmppuv_disco_new(w->c, &id, "http://code.google.com/p/exodus", &d), 0);
  return d;
}

/* XEP-0115 §5.2's simple example: its identity and features give its
 * verification string. */
START_TEST(the_verification_string_is_xep_0115s_own_example) {
  static const xmppuv_test_step_t s0[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_disco_t *d = attach(&w);
  /* Registered by the module itself: disco#info, caps, ping. */
  ck_assert(xmppuv_disco_has_feature(d, XMPPUV_NS_DISCO_INFO));
  ck_assert(xmppuv_disco_has_feature(d, "urn:xmpp:ping"));
  ck_assert_int_eq(xmppuv_disco_remove_feature(d, "urn:xmpp:ping"), 0);
  ck_assert_int_eq(xmppuv_disco_remove_feature(d, "urn:xmpp:ping"), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_disco_add_feature(d, "http://jabber.org/protocol/muc"), 0);
  ck_assert_int_eq(xmppuv_disco_add_feature(d, XMPPUV_NS_DISCO_ITEMS), 0);
  ck_assert_int_eq(xmppuv_disco_add_feature(d, XMPPUV_NS_DISCO_ITEMS), 0); /* once */
  ck_assert_int_eq(xmppuv_disco_add_feature(d, ""), XMPPUV_EINVAL);
  ck_assert_str_eq(xmppuv_disco_caps_ver(d), "QgayPKawpkPSDYmwT/WM94uAlu0=");
  /* It goes into presence as <c/>, replacing one that is there. */
  xmppuv_stanza_t *p = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &p), 0);
  ck_assert_int_eq(xmppuv_disco_add_caps(d, p), 0);
  ck_assert_int_eq(xmppuv_disco_add_caps(d, p), 0);
  char *xml = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv_stanza_to_string(p, &xml, &len), 0);
  ck_assert_int_eq(world_count(xml, "<c "), 1);
  ck_assert_ptr_nonnull(strstr(xml, "ver='QgayPKawpkPSDYmwT/WM94uAlu0='"));
  ck_assert_ptr_nonnull(strstr(xml, "node='http://code.google.com/p/exodus'"));
  xmppuv_free(xml);
  xmppuv_stanza_unref(p);
  /* A change changes it. */
  ck_assert_int_eq(xmppuv_disco_add_feature(d, "urn:xmpp:receipts"), 0);
  ck_assert_str_ne(xmppuv_disco_caps_ver(d), "QgayPKawpkPSDYmwT/WM94uAlu0=");
  world_finish(&w); /* the module goes with the client (`closed`): no leak */
}
END_TEST

/* A peer's disco#info gets our identity and features; our caps node#ver
 * gets the same, with the node; another node: item-not-found. */
START_TEST(queries_about_us_are_answered_from_the_registry) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_SEND(IQ_FROM_BOB("q1", "<query xmlns='http://jabber.org/protocol/disco#info'/>")),
      SCRIPT_EXPECT("id='q1'"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(IQ_FROM_BOB("q2", "<query xmlns='http://jabber.org/protocol/disco#info' "
                                    "node='http://code.google.com/p/exodus#"
                                    "QgayPKawpkPSDYmwT/WM94uAlu0='/>")),
      SCRIPT_EXPECT("id='q2'"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(IQ_FROM_BOB("q3", "<query xmlns='http://jabber.org/protocol/disco#info' "
                                    "node='http://code.google.com/p/exodus#old'/>")),
      SCRIPT_EXPECT("id='q3'"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(IQ_FROM_BOB("q4", "<query xmlns='http://jabber.org/protocol/disco#items'/>")),
      SCRIPT_EXPECT("id='q4'"), SCRIPT_EXPECT("</iq>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_disco_t *d = attach(&w);
  xmppuv_disco_remove_feature(d, "urn:xmpp:ping");
  xmppuv_disco_add_feature(d, "http://jabber.org/protocol/muc");
  xmppuv_disco_add_feature(d, XMPPUV_NS_DISCO_ITEMS);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  const char *got = world_received(&w, 0, 0);
  const char *q1 = strstr(got, "id='q1'"), *q2 = strstr(got, "id='q2'"),
             *q3 = strstr(got, "id='q3'"), *q4 = strstr(got, "id='q4'");
  ck_assert_msg(q1 && q2 && q3 && q4, "%s", got);
  /* Answers in order; each to bob. */
  ck_assert_ptr_nonnull(strstr(got, "<iq type='result' to='bob@localhost/b' id='q1'"));
  ck_assert_ptr_nonnull(strstr(q1, "<identity category='client' type='pc' name='Exodus 0.9.1'/>"));
  ck_assert_ptr_nonnull(strstr(q1, "<feature var='http://jabber.org/protocol/muc'/>"));
  ck_assert(strstr(q1, "<feature var='http://jabber.org/protocol/caps'/>") < q2);
  ck_assert_ptr_nonnull(
      strstr(q2, "node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>"));
  ck_assert(strstr(q2, "<identity") < q3);
  ck_assert(strstr(q3, "item-not-found") != NULL && strstr(q3, "item-not-found") < q4);
  ck_assert_ptr_nonnull(strstr(q4, "<query xmlns='http://jabber.org/protocol/disco#items'/>"));
  ck_assert_uint_eq(w.app.errors, 0);
  world_finish(&w);
}
END_TEST

/* XEP-0115 §5.3's complex example (two identities in two languages, an
 * extended form) as a peer's answer: verified and cached; asked again, it
 * comes from the cache without a query. The same announcement answered
 * with one feature more is not verified and not cached: the next peer
 * claiming that hash is asked again. */
static const char complex_answer[] =
    "<query xmlns='http://jabber.org/protocol/disco#info' "
    "node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>"
    "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
    "<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>"
    "<feature var='http://jabber.org/protocol/caps'/>"
    "<feature var='http://jabber.org/protocol/disco#info'/>"
    "<feature var='http://jabber.org/protocol/disco#items'/>"
    "<feature var='http://jabber.org/protocol/muc'/>%s"
    "<x xmlns='jabber:x:data' type='result'>"
    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>"
    "<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>"
    "<field var='os'><value>Mac</value></field>"
    "<field var='os_version'><value>10.5.1</value></field>"
    "<field var='software'><value>Psi</value></field>"
    "<field var='software_version'><value>0.11</value></field>"
    "</x></query>";

typedef struct got {
  int calls, status, verified, from_cache;
  size_t nfeatures, nidentities;
} got_t;

static void on_info(xmppuv_disco_t *d, int status, const xmppuv_disco_info_t *info, void *ud) {
  (void)d;
  got_t *g = ud;
  g->calls++;
  g->status = status;
  if (info != NULL) {
    g->verified = info->verified;
    g->from_cache = info->from_cache;
    g->nfeatures = info->nfeatures;
    g->nidentities = info->nidentities;
  }
}

START_TEST(only_an_answer_that_matches_its_hash_is_cached) {
  static char good[2048], bad[2048], good_iq[2300], bad_iq[2300];
  snprintf(good, sizeof good, complex_answer, "");
  snprintf(bad, sizeof bad, complex_answer, "<feature var='urn:xmpp:evil'/>");
  /* The client's first iq after login is ours to answer ({id} is its id). */
  snprintf(good_iq, sizeof good_iq,
           "<iq type='result' id='{id}' from='benvolio@capulet.lit/230193'>%s</iq>", good);
  snprintf(bad_iq, sizeof bad_iq,
           "<iq type='result' id='{id}' from='mallory@capulet.lit/x'>%s</iq>", bad);
  const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT("node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='"),
      SCRIPT_EXPECT("</iq>"), SCRIPT_SEND(bad_iq),
      SCRIPT_EXPECT("node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='"),
      SCRIPT_EXPECT("</iq>"), SCRIPT_SEND(good_iq), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_disco_t *d = attach(&w);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  /* mallory claims Psi's hash and answers with one feature more. */
  got_t g1 = {0, 0, 0, 0, 0, 0};
  ck_assert_int_eq(xmppuv_disco_info_caps(d, "mallory@capulet.lit/x", "http://psi-im.org",
                                          "q07IKJEyjvHSyhy//CH0CxmKi8w=", "sha-1", on_info, &g1),
                   0);
  RUN_UNTIL(&w, g1.calls == 1, 10000);
  ck_assert_int_eq(g1.status, 0);
  ck_assert_int_eq(g1.verified, 0);
  ck_assert_uint_eq(g1.nfeatures, 5);
  ck_assert_uint_eq(xmppuv_disco_cache_size(d), 0);
  /* benvolio's true answer: verified, cached. */
  got_t g2 = {0, 0, 0, 0, 0, 0};
  ck_assert_int_eq(xmppuv_disco_info_caps(d, "benvolio@capulet.lit/230193", "http://psi-im.org",
                                          "q07IKJEyjvHSyhy//CH0CxmKi8w=", "sha-1", on_info, &g2),
                   0);
  RUN_UNTIL(&w, g2.calls == 1, 10000);
  ck_assert_int_eq(g2.status, 0);
  ck_assert_int_eq(g2.verified, 1);
  ck_assert_int_eq(g2.from_cache, 0);
  ck_assert_uint_eq(g2.nidentities, 2);
  ck_assert_uint_eq(g2.nfeatures, 4);
  ck_assert_uint_eq(xmppuv_disco_cache_size(d), 1);
  /* The nurse uses the same client: no query (the script has none left). */
  got_t g3 = {0, 0, 0, 0, 0, 0};
  ck_assert_int_eq(xmppuv_disco_info_caps(d, "nurse@capulet.lit/chamber", "http://psi-im.org",
                                          "q07IKJEyjvHSyhy//CH0CxmKi8w=", "sha-1", on_info, &g3),
                   0);
  ck_assert_int_eq(g3.calls, 1);
  ck_assert_int_eq(g3.verified, 1);
  ck_assert_int_eq(g3.from_cache, 1);
  ck_assert_uint_eq(g3.nfeatures, 4);
  ck_assert(world_script_done(&w, 0, 0));
  world_finish(&w);
}
END_TEST

/* The same answer with two features run together ("a<b" hashes like "a"
 * and "b"): it proves nothing, so it is neither verified nor cached, and
 * the real client's answer, asked for next, is. */
START_TEST(an_answer_that_hashes_alike_by_running_features_together_is_not_trusted) {
#define EXODUS_IDENTITY "<identity category='client' type='pc' name='Exodus 0.9.1'/>"
  static const char forged[] =
      "<iq type='result' id='{id}' from='mallory@capulet.lit/x'>"
      "<query xmlns='http://jabber.org/protocol/disco#info' "
      "node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>" EXODUS_IDENTITY
      "<feature var='http://jabber.org/protocol/caps'/>"
      "<feature var='http://jabber.org/protocol/disco#info&lt;"
      "http://jabber.org/protocol/disco#items'/>"
      "<feature var='http://jabber.org/protocol/muc'/></query></iq>";
  static const char real[] =
      "<iq type='result' id='{id}' from='romeo@montague.lit/orchard'>"
      "<query xmlns='http://jabber.org/protocol/disco#info' "
      "node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>" EXODUS_IDENTITY
      "<feature var='http://jabber.org/protocol/caps'/>"
      "<feature var='http://jabber.org/protocol/disco#info'/>"
      "<feature var='http://jabber.org/protocol/disco#items'/>"
      "<feature var='http://jabber.org/protocol/muc'/></query></iq>";
#undef EXODUS_IDENTITY
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT("QgayPKawpkPSDYmwT/WM94uAlu0='"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(forged), SCRIPT_EXPECT("QgayPKawpkPSDYmwT/WM94uAlu0='"),
      SCRIPT_EXPECT("</iq>"), SCRIPT_SEND(real), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_disco_t *d = attach(&w);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  got_t g1 = {0, 0, 0, 0, 0, 0}, g2 = {0, 0, 0, 0, 0, 0};
  ck_assert_int_eq(xmppuv_disco_info_caps(d, "mallory@capulet.lit/x",
                                          "http://code.google.com/p/exodus",
                                          "QgayPKawpkPSDYmwT/WM94uAlu0=", "sha-1", on_info, &g1),
                   0);
  RUN_UNTIL(&w, g1.calls == 1, 10000);
  ck_assert_int_eq(g1.verified, 0);
  ck_assert_uint_eq(xmppuv_disco_cache_size(d), 0);
  ck_assert_int_eq(xmppuv_disco_info_caps(d, "romeo@montague.lit/orchard",
                                          "http://code.google.com/p/exodus",
                                          "QgayPKawpkPSDYmwT/WM94uAlu0=", "sha-1", on_info, &g2),
                   0);
  RUN_UNTIL(&w, g2.calls == 1, 10000);
  ck_assert_int_eq(g2.verified, 1);
  ck_assert_uint_eq(xmppuv_disco_cache_size(d), 1);
  world_finish(&w);
}
END_TEST

/* The app may free a module after closing the client (or in its own
 * `closed`): it is freed once, and gets no `closed` of its own after. */
START_TEST(a_module_freed_after_the_client_is_closed_is_freed_once) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_disco_t *d = attach(&w);
  xmppuv_mam_t *m = NULL;
  ck_assert_int_eq(xmppuv_mam_new(w.c, d, NULL, NULL, &m), 0);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  xmppuv_client_close(w.c, client_rec_close_cb);
  xmppuv_mam_free(m);
  xmppuv_disco_free(d);
  world_finish(&w); /* under ASan/valgrind: no use after free, no double free, no leak */
  ck_assert(w.app.closed);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_disco");
  TCase *tc = tcase_create("disco");
  tcase_add_test(tc, the_verification_string_is_xep_0115s_own_example);
  tcase_add_test(tc, queries_about_us_are_answered_from_the_registry);
  tcase_add_test(tc, only_an_answer_that_matches_its_hash_is_cached);
  tcase_add_test(tc, an_answer_that_hashes_alike_by_running_features_together_is_not_trusted);
  tcase_add_test(tc, a_module_freed_after_the_client_is_closed_is_freed_once);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
