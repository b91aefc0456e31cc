/* The chat layer's carbons (XEP-0280) and receipts (XEP-0184, XEP-0359)
 * modules (lib/im/carbons.c, lib/im/receipts.c) on a real client against
 * the scripted server (tests/support/script_server.h): what the app
 * observes. alice@localhost is bound as alice@localhost/r{n}. Plaintext on
 * loopback; XMPPUV_TEST_LOG=1 prints the client's log on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"
#include "xmppuv.h"

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_RECEIPTS "urn:xmpp:receipts"

/* The carbons enable request, answered. */
#define ENABLE_OK SCRIPT_EXPECT(NS_CARBONS), SCRIPT_SEND("<iq type='result' id='{id}'/>")

/* ---- what the app sees of the modules -------------------------------------------- */

typedef struct app {
  xmppuv_carbons_t *cb;
  xmppuv_receipts_t *rc;
  unsigned enabled_calls;
  int enabled_status;
  int enabled_reply; /* the enabled callback had a reply */
  unsigned carbons;
  xmppuv_carbon_direction_t dir;
  char inner_from[128], inner_to[128], inner_body[128], inner_id[64], stamp[64];
  unsigned spoofed;
  char spoofed_from[128];
  unsigned plain; /* messages the app's own handler got */
  char plain_from[128], plain_body[128];
  unsigned receipts;
  char receipt_from[128], receipt_id[128];
  unsigned filter_calls;
  int filter_answer;
  int free_in_carbon; /* free the carbons module from inside `carbon` */
  const xmppuv_test_step_t *script[1]; /* the server's, for one_script() */
} app_t;

static void copy_str(char *to, size_t size, const char *from) {
  snprintf(to, size, "%s", from != NULL ? from : "(null)");
}

static void on_enabled(xmppuv_carbons_t *cb, int status, const xmppuv_stanza_t *reply, void *ud) {
  app_t *a = ud;
  a->enabled_calls++;
  a->enabled_status = status;
  a->enabled_reply = reply != NULL;
}

static void on_carbon(xmppuv_carbons_t *cb, const xmppuv_carbon_t *carbon, void *ud) {
  app_t *a = ud;
  a->carbons++;
  a->dir = carbon->direction;
  copy_str(a->inner_from, sizeof a->inner_from, xmppuv_stanza_attr(carbon->message, "from"));
  copy_str(a->inner_to, sizeof a->inner_to, xmppuv_stanza_attr(carbon->message, "to"));
  copy_str(a->inner_id, sizeof a->inner_id, xmppuv_stanza_attr(carbon->message, "id"));
  copy_str(a->inner_body, sizeof a->inner_body,
           xmppuv_stanza_child_text(carbon->message, "body", NULL));
  copy_str(a->stamp, sizeof a->stamp, carbon->stamp);
  ck_assert_str_eq(xmppuv_stanza_name(carbon->wrapper), "message");
  if (a->free_in_carbon) {
    xmppuv_carbons_free(cb);
    a->cb = NULL;
  }
}

static void on_spoofed(xmppuv_carbons_t *cb, const xmppuv_stanza_t *wrapper, void *ud) {
  app_t *a = ud;
  a->spoofed++;
  copy_str(a->spoofed_from, sizeof a->spoofed_from, xmppuv_stanza_attr(wrapper, "from"));
}

static int on_plain(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  app_t *a = ud;
  a->plain++;
  copy_str(a->plain_from, sizeof a->plain_from, xmppuv_stanza_attr(msg, "from"));
  copy_str(a->plain_body, sizeof a->plain_body, xmppuv_stanza_child_text(msg, "body", NULL));
  return XMPPUV_HANDLED;
}

static void on_receipt(xmppuv_receipts_t *r, const char *from, const char *id,
                       const xmppuv_stanza_t *message, void *ud) {
  app_t *a = ud;
  a->receipts++;
  copy_str(a->receipt_from, sizeof a->receipt_from, from);
  copy_str(a->receipt_id, sizeof a->receipt_id, id);
}

static int on_filter(xmppuv_receipts_t *r, const char *from, const xmppuv_stanza_t *message,
                     void *ud) {
  app_t *a = ud;
  a->filter_calls++;
  return a->filter_answer;
}

/* The client with both modules attached (before the app's own message
 * handler, as the headers ask), started against server 0. ropts may be
 * NULL; filter: give an answer_filter. */
static void start(world_t *w, app_t *a, const xmppuv_receipts_options_t *ropts, int filter) {
  xmppuv_client_options_t o;
  world_opts(&o, world_port(w, 0));
  world_client_new(w, &o);
  xmppuv_carbons_callbacks_t cc;
  xmppuv_carbons_callbacks_init(&cc);
  cc.enabled = on_enabled;
  cc.carbon = on_carbon;
  cc.spoofed = on_spoofed;
  ck_assert_int_eq(xmppuv_carbons_new(w->c, NULL, &cc, a, &a->cb), 0);
  xmppuv_receipts_callbacks_t rcb;
  xmppuv_receipts_callbacks_init(&rcb);
  rcb.receipt = on_receipt;
  if (filter) rcb.answer_filter = on_filter;
  ck_assert_int_eq(xmppuv_receipts_new(w->c, NULL, ropts, &rcb, a, &a->rc), 0);
  ck_assert_int_eq(xmppuv_client_handler_add(w->c, "message", NULL, NULL, on_plain, a, NULL), 0);
  ck_assert_int_eq(xmppuv_client_start(w->c), 0);
}

static void finish(world_t *w) {
  world_finish(w);
  client_rec_assert_nothing_after_close(&w->app);
  client_rec_assert_transitions(&w->app);
}

/* The server borrows the array of scripts too: it lives in the app. */
static void one_script(world_t *w, app_t *a, const xmppuv_test_step_t *s) {
  a->script[0] = s;
  world_server(w, 0, a->script, 1);
}

/* ---- carbons: enabling ------------------------------------------------------------- */

START_TEST(carbons_are_enabled_when_the_client_comes_online) {
  static const xmppuv_test_step_t s[] = {LOGIN, ENABLE_OK, SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.enabled_calls >= 1, 10000);
  ck_assert_uint_eq(a.enabled_calls, 1);
  ck_assert_int_eq(a.enabled_status, 0);
  ck_assert(xmppuv_carbons_enabled(a.cb));
  const char *sent = world_received(&w, 0, 0);
  ck_assert_ptr_nonnull(strstr(sent, "<enable xmlns='" NS_CARBONS "'/>"));
  ck_assert_ptr_nonnull(strstr(sent, "type='set'"));
  finish(&w);
}
END_TEST

START_TEST(carbons_refused_by_the_server_report_EIQERROR_with_the_error) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, SCRIPT_EXPECT(NS_CARBONS),
      SCRIPT_SEND("<iq type='error' id='{id}'><error type='cancel'><service-unavailable xmlns='" NS_STANZAS
                  "'/></error></iq>"),
      SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.enabled_calls >= 1, 10000);
  ck_assert_uint_eq(a.enabled_calls, 1);
  ck_assert_int_eq(a.enabled_status, XMPPUV_EIQERROR);
  ck_assert(a.enabled_reply);
  ck_assert(!xmppuv_carbons_enabled(a.cb));
  finish(&w);
}
END_TEST

START_TEST(carbons_are_not_enabled_again_after_a_resumption) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, ENABLE_OK, SCRIPT_DELAY(100), SCRIPT_CLOSE,
                                          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "1")),
                                          SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  app_t a = {0};
  world_init(&w);
  world_server(&w, 0, scripts, 2);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, w.app.resumes >= 1, 10000);
  ck_assert_msg(w.app.resumes == 1, "not resumed: %s", w.app.statuses);
  RUN_FOR(&w, 300);
  ck_assert_uint_eq(w.app.onlines, 1);
  ck_assert_uint_eq(a.enabled_calls, 1);
  ck_assert(xmppuv_carbons_enabled(a.cb));
  ck_assert_ptr_null(strstr(world_received(&w, 0, 1), NS_CARBONS));
  finish(&w);
}
END_TEST

START_TEST(carbons_are_enabled_again_on_a_new_session_after_failed_resumption) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, ENABLE_OK, SCRIPT_DELAY(100), SCRIPT_CLOSE,
                                          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_RESUME,
      SCRIPT_SEND("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='" NS_STANZAS
                  "'/></failed>"),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND(SM_ENABLED), ENABLE_OK, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  app_t a = {0};
  world_init(&w);
  world_server(&w, 0, scripts, 2);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.enabled_calls >= 2, 10000);
  ck_assert_uint_eq(w.app.onlines, 2);
  ck_assert_uint_eq(a.enabled_calls, 2);
  ck_assert_int_eq(a.enabled_status, 0);
  ck_assert(xmppuv_carbons_enabled(a.cb));
  finish(&w);
}
END_TEST

/* ---- carbons: copies ------------------------------------------------------------- */

#define INNER_RECEIVED                                                          \
  "<forwarded xmlns='" NS_FORWARD "'><delay xmlns='urn:xmpp:delay' "            \
  "stamp='2026-12-07T08:00:00Z'/><message xmlns='jabber:client' "               \
  "from='bob@localhost/phone' to='alice@localhost/other' type='chat' id='m1'>" \
  "<body>hi alice</body><request xmlns='" NS_RECEIPTS "'/></message></forwarded>"
#define INNER_SENT                                                              \
  "<forwarded xmlns='" NS_FORWARD "'><message xmlns='jabber:client' "          \
  "to='bob@localhost' from='alice@localhost/other' type='chat' id='m2'>"       \
  "<body>hi bob</body></message></forwarded>"
#define CARBON(from, kind, inner)                                                 \
  "<message " from " to='alice@localhost/r0' type='chat'><" kind " xmlns='" NS_CARBONS \
  "'>" inner "</" kind "></message>"
/* An ordinary message after the one under test: once the app has it, the
 * one before was processed. */
#define AFTER "<message from='bob@localhost/phone' type='chat' id='a1'><body>after</body></message>"

START_TEST(received_carbon_is_delivered_as_a_copy_and_not_answered) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK, SCRIPT_SEND(CARBON("from='alice@localhost'", "received", INNER_RECEIVED)),
      SCRIPT_SEND(AFTER), SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.plain >= 1, 10000);
  ck_assert_uint_eq(a.carbons, 1);
  ck_assert_int_eq(a.dir, XMPPUV_CARBON_RECEIVED);
  ck_assert_str_eq(a.inner_from, "bob@localhost/phone");
  ck_assert_str_eq(a.inner_to, "alice@localhost/other");
  ck_assert_str_eq(a.inner_body, "hi alice");
  ck_assert_str_eq(a.inner_id, "m1");
  ck_assert_str_eq(a.stamp, "2026-12-07T08:00:00Z");
  ck_assert_uint_eq(a.spoofed, 0);
  /* The wrapper never reached the app's handler: only the message after. */
  ck_assert_uint_eq(a.plain, 1);
  ck_assert_str_eq(a.plain_body, "after");
  /* A copy is not auto-answered (XEP-0280 §10.4): the receipt request in
   * it is the other resource's to answer. */
  RUN_FOR(&w, 100);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<received"));
  finish(&w);
}
END_TEST

START_TEST(sent_carbon_is_delivered_as_a_copy_of_what_we_sent) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK, SCRIPT_SEND(CARBON("from='alice@localhost'", "sent", INNER_SENT)),
      SCRIPT_SEND(AFTER), SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.plain >= 1, 10000);
  ck_assert_uint_eq(a.carbons, 1);
  ck_assert_int_eq(a.dir, XMPPUV_CARBON_SENT);
  ck_assert_str_eq(a.inner_to, "bob@localhost");
  ck_assert_str_eq(a.inner_from, "alice@localhost/other");
  ck_assert_str_eq(a.inner_body, "hi bob");
  ck_assert_str_eq(a.stamp, "(null)");
  ck_assert_uint_eq(a.plain, 1);
  ck_assert_uint_eq(a.spoofed, 0);
  finish(&w);
}
END_TEST

/* The bare JID compared as a JID, not as text. */
START_TEST(carbon_from_our_bare_jid_in_another_case_is_accepted) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK, SCRIPT_SEND(CARBON("from='Alice@LOCALHOST'", "received", INNER_RECEIVED)),
      SCRIPT_SEND(AFTER), SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.plain >= 1, 10000);
  ck_assert_uint_eq(a.carbons, 1);
  ck_assert_uint_eq(a.spoofed, 0);
  finish(&w);
}
END_TEST

/* XEP-0280 §11: forged carbons, each followed by an ordinary message. */
static const char *const forged[] = {
    CARBON("from='mallory@evil.example'", "received", INNER_RECEIVED) AFTER,
    CARBON("from='mallory@evil.example/x'", "sent", INNER_SENT) AFTER,
    CARBON("from='alice@localhost/r0'", "received", INNER_RECEIVED) AFTER,
    CARBON("from='alice@localhost/other'", "sent", INNER_SENT) AFTER,
    CARBON("from='localhost'", "received", INNER_RECEIVED) AFTER,
    CARBON("id='nofrom'", "received", INNER_RECEIVED) AFTER,
};
static const char *const forged_from[] = {
    "mallory@evil.example", "mallory@evil.example/x", "alice@localhost/r0",
    "alice@localhost/other", "localhost", "(null)",
};

START_TEST(forged_carbon_is_dropped_and_reported_as_spoofed) {
  const xmppuv_test_step_t s[] = {LOGIN, ENABLE_OK, SCRIPT_SEND(forged[_i]), SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.plain >= 1, 10000);
  ck_assert_uint_eq(a.carbons, 0);
  ck_assert_uint_eq(a.spoofed, 1);
  ck_assert_str_eq(a.spoofed_from, forged_from[_i]);
  /* Only the message after it reached the app: the forged inner message
   * did not, as if from bob or as anything else. */
  ck_assert_uint_eq(a.plain, 1);
  ck_assert_str_eq(a.plain_body, "after");
  RUN_FOR(&w, 100);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<received"));
  finish(&w);
}
END_TEST

/* A <private/> hint in an ordinary message is not a copy. */
START_TEST(message_with_only_a_private_element_is_an_ordinary_message) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK,
      SCRIPT_SEND("<message from='bob@localhost/phone' type='chat'><body>psst</body>"
                  "<private xmlns='" NS_CARBONS "'/></message>"),
      SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.plain >= 1, 10000);
  ck_assert_uint_eq(a.plain, 1);
  ck_assert_str_eq(a.plain_body, "psst");
  ck_assert_uint_eq(a.carbons, 0);
  ck_assert_uint_eq(a.spoofed, 0);
  finish(&w);
}
END_TEST

START_TEST(carbons_module_freed_inside_its_callback_and_before_its_enable_completes) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK, SCRIPT_SEND(CARBON("from='alice@localhost'", "received", INNER_RECEIVED)),
      SCRIPT_SEND(CARBON("from='alice@localhost'", "sent", INNER_SENT)), SCRIPT_SEND(AFTER),
      SCRIPT_END};
  world_t w;
  app_t a = {0};
  a.free_in_carbon = 1;
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.plain >= 2, 10000);
  /* The first copy freed the module: the second went to the app's handler
   * as it is, like the message after it. */
  ck_assert_uint_eq(a.carbons, 1);
  ck_assert_ptr_null(a.cb);
  ck_assert_uint_eq(a.plain, 2);
  finish(&w);

  /* Freed with its enable request unanswered: no callback, ever. */
  static const xmppuv_test_step_t s2[] = {LOGIN, SCRIPT_EXPECT(NS_CARBONS), SCRIPT_END};
  world_t w2;
  app_t a2 = {0};
  world_init(&w2);
  one_script(&w2, &a2, s2);
  start(&w2, &a2, NULL, 0);
  RUN_UNTIL(&w2, world_script_done(&w2, 0, 0), 10000);
  ck_assert(world_script_done(&w2, 0, 0));
  xmppuv_carbons_free(a2.cb);
  RUN_FOR(&w2, 100);
  ck_assert_uint_eq(a2.enabled_calls, 0);
  finish(&w2);
  ck_assert_uint_eq(a2.enabled_calls, 0);
}
END_TEST

START_TEST(mark_private_adds_the_private_element_and_no_copy_hint_once) {
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "secret", &m), 0);
  ck_assert_int_eq(xmppuv_carbons_mark_private(m), 0);
  ck_assert_int_eq(xmppuv_carbons_mark_private(m), 0);
  char *xml;
  ck_assert_int_eq(xmppuv_stanza_to_string(m, &xml, NULL), 0);
  ck_assert_int_eq(world_count(xml, "<private xmlns='" NS_CARBONS "'/>"), 1);
  ck_assert_int_eq(world_count(xml, "<no-copy xmlns='urn:xmpp:hints'/>"), 1);
  xmppuv_free(xml);
  xmppuv_stanza_unref(m);
  xmppuv_stanza_t *iq;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &iq), 0);
  ck_assert_int_eq(xmppuv_carbons_mark_private(iq), XMPPUV_EINVAL);
  xmppuv_stanza_unref(iq);
  ck_assert_int_eq(xmppuv_carbons_mark_private(NULL), XMPPUV_EINVAL);
}
END_TEST

START_TEST(carbons_new_refuses_callbacks_not_initialised) {
  /* No client is needed to be refused. */
  xmppuv_carbons_t *cb = (xmppuv_carbons_t *)&cb;
  ck_assert_int_eq(xmppuv_carbons_new(NULL, NULL, NULL, NULL, &cb), XMPPUV_EINVAL);
  ck_assert_ptr_null(cb);
  world_t w;
  world_init(&w);
  xmppuv_client_options_t o;
  world_opts(&o, 1);
  world_client_new(&w, &o);
  xmppuv_carbons_callbacks_t cc;
  memset(&cc, 0, sizeof cc);
  ck_assert_int_eq(xmppuv_carbons_new(w.c, NULL, &cc, NULL, &cb), XMPPUV_EINVAL);
  xmppuv_receipts_options_t ro;
  memset(&ro, 0, sizeof ro);
  xmppuv_receipts_t *r;
  ck_assert_int_eq(xmppuv_receipts_new(w.c, NULL, &ro, NULL, NULL, &r), XMPPUV_EINVAL);
  /* NULL callbacks and options: accepted. */
  ck_assert_int_eq(xmppuv_carbons_new(w.c, NULL, NULL, NULL, &cb), 0);
  ck_assert_int_eq(xmppuv_receipts_new(w.c, NULL, NULL, NULL, NULL, &r), 0);
  xmppuv_receipts_free(r);
  world_finish(&w); /* the carbons module goes with the client */
}
END_TEST

START_TEST(modules_register_their_features_with_the_disco_module) {
  world_t w;
  world_init(&w);
  xmppuv_client_options_t o;
  world_opts(&o, 1);
  world_client_new(&w, &o);
  xmppuv_disco_identity_t me = {"client", "pc", NULL, NULL};
  xmppuv_disco_t *d;
  ck_assert_int_eq(xmppuv_disco_new(w.c, &me, NULL, &d), 0);
  xmppuv_carbons_t *cb;
  xmppuv_receipts_t *r;
  ck_assert_int_eq(xmppuv_carbons_new(w.c, d, NULL, NULL, &cb), 0);
  ck_assert_int_eq(xmppuv_receipts_new(w.c, d, NULL, NULL, NULL, &r), 0);
  ck_assert(xmppuv_disco_has_feature(d, NS_CARBONS));
  ck_assert(xmppuv_disco_has_feature(d, NS_RECEIPTS));
  /* Not a stanza-id assigner: a client does not announce XEP-0359. */
  ck_assert(!xmppuv_disco_has_feature(d, "urn:xmpp:sid:0"));
  world_finish(&w); /* all three go with the client */
}
END_TEST

/* ---- receipts ---------------------------------------------------------------------- */

#define REQUEST(attrs, id)                                                       \
  "<message from='bob@localhost/phone' " attrs " id='" id "'><body>b</body>" \
  "<request xmlns='" NS_RECEIPTS "'/></message>"

START_TEST(receipt_request_is_answered_with_its_id_to_its_sender) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK, SCRIPT_SEND(REQUEST("type='chat'", "m-42")),
      SCRIPT_EXPECT("<received xmlns='" NS_RECEIPTS "' id='m-42'/>"), SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  ck_assert_msg(world_script_done(&w, 0, 0), "no ack: %s", world_received(&w, 0, 0));
  const char *ack = strstr(world_received(&w, 0, 0), "<message");
  ck_assert_ptr_nonnull(ack);
  ck_assert_ptr_nonnull(strstr(ack, "to='bob@localhost/phone'"));
  ck_assert_ptr_nonnull(strstr(ack, "type='chat'"));
  ck_assert_ptr_null(strstr(ack, "<request"));
  ck_assert_ptr_null(strstr(ack, "id='m-42'>")); /* an id of its own */
  /* The app still got the message. */
  ck_assert_uint_eq(a.plain, 1);
  ck_assert_str_eq(a.plain_body, "b");
  /* The ack's outcome was not the app's `ack` or `fail` event. */
  RUN_FOR(&w, 100);
  ck_assert_uint_eq(w.app.fails, 0);
  ck_assert_uint_eq(w.app.acks, 0);
  finish(&w);
}
END_TEST

START_TEST(receipt_arriving_fires_the_receipt_callback) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK,
      SCRIPT_SEND("<message from='bob@localhost/phone' id='x' type='chat'><received xmlns='" NS_RECEIPTS
                  "' id='sent-7'/></message>"),
      SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, a.receipts >= 1 && a.plain >= 1, 10000);
  ck_assert_uint_eq(a.receipts, 1);
  ck_assert_str_eq(a.receipt_from, "bob@localhost/phone");
  ck_assert_str_eq(a.receipt_id, "sent-7");
  ck_assert_uint_eq(a.plain, 1); /* passed on to the app's handlers */
  RUN_FOR(&w, 100);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<received"));
  finish(&w);
}
END_TEST

/* Requests that must not be answered, then one that must (the sync
 * point): the only ack is the last one's. */
START_TEST(receipt_requests_in_groupchat_error_without_id_or_in_an_ack_are_not_answered) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK, SCRIPT_SEND(REQUEST("type='groupchat'", "g1")),
      SCRIPT_SEND(REQUEST("type='error'", "e1")),
      SCRIPT_SEND("<message from='bob@localhost/phone' type='chat'><body>b</body>"
                  "<request xmlns='" NS_RECEIPTS "'/></message>"),
      SCRIPT_SEND("<message from='bob@localhost/phone' type='chat' id='loop'><request xmlns='" NS_RECEIPTS
                  "'/><received xmlns='" NS_RECEIPTS "' id='z'/></message>"),
      SCRIPT_SEND("<message type='chat' id='nofrom'><body>b</body><request xmlns='" NS_RECEIPTS
                  "'/></message>"),
      SCRIPT_SEND(REQUEST("", "n1")), SCRIPT_EXPECT("id='n1'"), SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  start(&w, &a, NULL, 0);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  ck_assert(world_script_done(&w, 0, 0));
  RUN_FOR(&w, 100);
  const char *sent = world_received(&w, 0, 0);
  ck_assert_int_eq(world_count(sent, "<received"), 1);
  ck_assert_ptr_nonnull(strstr(sent, "<received xmlns='" NS_RECEIPTS "' id='n1'/>"));
  /* The ack that also asked: its receipt counted, no answer. */
  ck_assert_uint_eq(a.receipts, 1);
  ck_assert_str_eq(a.receipt_id, "z");
  finish(&w);
}
END_TEST

START_TEST(receipt_requests_are_not_answered_when_the_option_or_the_filter_says_no) {
  static const xmppuv_test_step_t s[] = {LOGIN, ENABLE_OK, SCRIPT_SEND(REQUEST("type='chat'", "q1")),
                                         SCRIPT_SEND(AFTER), SCRIPT_END};
  for (int filter = 0; filter < 2; filter++) {
    world_t w;
    app_t a = {0};
    world_init(&w);
    one_script(&w, &a, s);
    xmppuv_receipts_options_t ro;
    xmppuv_receipts_options_init(&ro);
    ck_assert_int_eq(ro.answer_requests, 1);
    ck_assert_int_eq(ro.request_receipts, 0);
    if (!filter) ro.answer_requests = 0;
    start(&w, &a, &ro, filter);
    RUN_UNTIL(&w, a.plain >= 2, 10000);
    ck_assert_uint_eq(a.plain, 2);
    RUN_FOR(&w, 100);
    ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<received"));
    ck_assert_uint_eq(a.filter_calls, filter ? 1 : 0);
    finish(&w);
  }
  /* The filter saying yes. */
  static const xmppuv_test_step_t s2[] = {LOGIN, ENABLE_OK,
                                          SCRIPT_SEND(REQUEST("type='chat'", "q2")),
                                          SCRIPT_EXPECT("id='q2'"), SCRIPT_END};
  world_t w;
  app_t a = {0};
  a.filter_answer = 1;
  world_init(&w);
  one_script(&w, &a, s2);
  start(&w, &a, NULL, 1);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  ck_assert(world_script_done(&w, 0, 0));
  ck_assert_uint_eq(a.filter_calls, 1);
  finish(&w);
}
END_TEST

START_TEST(prepare_adds_an_origin_id_an_id_and_a_request_as_asked) {
  xmppuv_stanza_t *m;
  /* Without a module: an explicit request. */
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "x", &m), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m, XMPPUV_RECEIPTS_REQUEST), 0);
  const char *id = xmppuv_stanza_attr(m, "id");
  const char *origin = xmppuv_origin_id_of(m);
  ck_assert_ptr_nonnull(id);
  ck_assert_ptr_nonnull(origin);
  ck_assert_uint_eq(strlen(origin), 36);
  ck_assert_str_eq(id, origin);
  ck_assert_ptr_nonnull(xmppuv_stanza_child(m, "request", NS_RECEIPTS));
  /* Again: nothing doubled, nothing changed. */
  char keep[64];
  snprintf(keep, sizeof keep, "%s", id);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m, XMPPUV_RECEIPTS_REQUEST), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(m, "id"), keep);
  char *xml;
  ck_assert_int_eq(xmppuv_stanza_to_string(m, &xml, NULL), 0);
  ck_assert_int_eq(world_count(xml, "<request"), 1);
  ck_assert_int_eq(world_count(xml, "<origin-id"), 1);
  xmppuv_free(xml);
  xmppuv_stanza_unref(m);

  /* An id of the app's is kept; the origin-id is fresh; no request. */
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "x", &m), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(m, "id", "app-1"), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m, XMPPUV_RECEIPTS_NO_REQUEST), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(m, "id"), "app-1");
  ck_assert_ptr_nonnull(xmppuv_origin_id_of(m));
  ck_assert_str_ne(xmppuv_origin_id_of(m), "app-1");
  ck_assert_ptr_null(xmppuv_stanza_child(m, "request", NS_RECEIPTS));
  xmppuv_stanza_unref(m);

  /* Never in a groupchat (XEP-0184 §5.3). */
  ck_assert_int_eq(xmppuv_message_new("room@muc.localhost", "groupchat", "x", &m), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m, XMPPUV_RECEIPTS_REQUEST), 0);
  ck_assert_ptr_null(xmppuv_stanza_child(m, "request", NS_RECEIPTS));
  ck_assert_ptr_nonnull(xmppuv_origin_id_of(m));
  /* As the option says needs the module. */
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m, XMPPUV_RECEIPTS_AS_OPTION), XMPPUV_EINVAL);
  xmppuv_stanza_unref(m);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, NULL, 1), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &m), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m, 1), XMPPUV_EINVAL);
  xmppuv_stanza_unref(m);

  /* Two messages: two ids. */
  xmppuv_stanza_t *m2;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", NULL, "x", &m), 0);
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", NULL, "x", &m2), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m, 0), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(NULL, m2, 0), 0);
  ck_assert_str_ne(xmppuv_origin_id_of(m), xmppuv_origin_id_of(m2));
  xmppuv_stanza_unref(m);
  xmppuv_stanza_unref(m2);
}
END_TEST

/* With the module, XMPPUV_RECEIPTS_AS_OPTION follows request_receipts; the
 * message goes out with its request and the ack comes back. */
START_TEST(prepared_message_goes_out_with_its_request_and_its_ack_is_reported) {
  static const xmppuv_test_step_t s[] = {
      LOGIN, ENABLE_OK, SCRIPT_EXPECT("<request xmlns='" NS_RECEIPTS "'/>"),
      SCRIPT_SEND("<message from='bob@localhost/phone' type='chat'><received xmlns='" NS_RECEIPTS
                  "' id='{id}'/></message>"),
      SCRIPT_END};
  world_t w;
  app_t a = {0};
  world_init(&w);
  one_script(&w, &a, s);
  xmppuv_receipts_options_t ro;
  xmppuv_receipts_options_init(&ro);
  ro.request_receipts = 1;
  start(&w, &a, &ro, 0);
  RUN_UNTIL(&w, a.enabled_calls >= 1, 10000);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "ping", &m), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(a.rc, m, XMPPUV_RECEIPTS_AS_OPTION), 0);
  char id[64];
  snprintf(id, sizeof id, "%s", xmppuv_stanza_attr(m, "id"));
  ck_assert_int_eq(xmppuv_client_send(w.c, m), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(&w, a.receipts >= 1, 10000);
  ck_assert_uint_eq(a.receipts, 1);
  ck_assert_str_eq(a.receipt_id, id);
  ck_assert_ptr_nonnull(strstr(world_received(&w, 0, 0), "<origin-id xmlns='urn:xmpp:sid:0'"));
  finish(&w);
}
END_TEST

/* ---- stanza ids (XEP-0359) ------------------------------------------------------- */

static xmppuv_stanza_t *parse(const char *xml) {
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &s), 0);
  return s;
}

START_TEST(stanza_id_is_taken_only_from_the_expected_archive) {
  xmppuv_stanza_t *m = parse(
      "<message xmlns='jabber:client' from='bob@localhost/phone'>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='bob@localhost'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='room-1' by='room@muc.localhost'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='ours' by='alice@localhost'/>"
      "<origin-id xmlns='urn:xmpp:sid:0' id='o-1'/></message>");
  ck_assert_str_eq(xmppuv_stanza_id_of(m, "alice@localhost"), "ours");
  ck_assert_str_eq(xmppuv_stanza_id_of(m, "Alice@LocalHost"), "ours"); /* as JIDs */
  ck_assert_str_eq(xmppuv_stanza_id_of(m, "room@muc.localhost"), "room-1");
  ck_assert_ptr_null(xmppuv_stanza_id_of(m, "carol@localhost"));
  ck_assert_ptr_null(xmppuv_stanza_id_of(m, "alice@localhost/r0")); /* not the archive */
  ck_assert_ptr_null(xmppuv_stanza_id_of(m, "not a jid@"));
  ck_assert_ptr_null(xmppuv_stanza_id_of(m, NULL));
  ck_assert_ptr_null(xmppuv_stanza_id_of(NULL, "alice@localhost"));
  ck_assert_str_eq(xmppuv_origin_id_of(m), "o-1");
  xmppuv_stanza_unref(m);

  /* Only stanza-ids by someone else: none for us. */
  m = parse("<message xmlns='jabber:client'><stanza-id xmlns='urn:xmpp:sid:0' id='f' "
            "by='mallory@evil.example'/></message>");
  ck_assert_ptr_null(xmppuv_stanza_id_of(m, "alice@localhost"));
  ck_assert_ptr_null(xmppuv_origin_id_of(m));
  xmppuv_stanza_unref(m);

  /* Two by the same entity: one is forged, nothing says which. */
  m = parse("<message xmlns='jabber:client'>"
            "<stanza-id xmlns='urn:xmpp:sid:0' id='a' by='alice@localhost'/>"
            "<stanza-id xmlns='urn:xmpp:sid:0' id='b' by='alice@localhost'/>"
            "<origin-id xmlns='urn:xmpp:sid:0' id='1'/><origin-id xmlns='urn:xmpp:sid:0' id='2'/>"
            "</message>");
  ck_assert_ptr_null(xmppuv_stanza_id_of(m, "alice@localhost"));
  ck_assert_ptr_null(xmppuv_origin_id_of(m));
  xmppuv_stanza_unref(m);

  /* The receipt id helper. */
  m = parse("<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='r-1'/>"
            "</message>");
  ck_assert_str_eq(xmppuv_receipt_id_of(m), "r-1");
  xmppuv_stanza_unref(m);
  ck_assert_ptr_null(xmppuv_receipt_id_of(NULL));
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_carbons");
  TCase *tc = tcase_create("carbons");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, carbons_are_enabled_when_the_client_comes_online);
  tcase_add_test(tc, carbons_refused_by_the_server_report_EIQERROR_with_the_error);
  tcase_add_test(tc, carbons_are_not_enabled_again_after_a_resumption);
  tcase_add_test(tc, carbons_are_enabled_again_on_a_new_session_after_failed_resumption);
  tcase_add_test(tc, received_carbon_is_delivered_as_a_copy_and_not_answered);
  tcase_add_test(tc, sent_carbon_is_delivered_as_a_copy_of_what_we_sent);
  tcase_add_test(tc, carbon_from_our_bare_jid_in_another_case_is_accepted);
  tcase_add_loop_test(tc, forged_carbon_is_dropped_and_reported_as_spoofed, 0,
                      (int)(sizeof forged / sizeof forged[0]));
  tcase_add_test(tc, message_with_only_a_private_element_is_an_ordinary_message);
  tcase_add_test(tc, carbons_module_freed_inside_its_callback_and_before_its_enable_completes);
  tcase_add_test(tc, mark_private_adds_the_private_element_and_no_copy_hint_once);
  tcase_add_test(tc, carbons_new_refuses_callbacks_not_initialised);
  tcase_add_test(tc, modules_register_their_features_with_the_disco_module);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("receipts");
  tcase_set_timeout(tr, 30);
  tcase_add_test(tr, receipt_request_is_answered_with_its_id_to_its_sender);
  tcase_add_test(tr, receipt_arriving_fires_the_receipt_callback);
  tcase_add_test(tr, receipt_requests_in_groupchat_error_without_id_or_in_an_ack_are_not_answered);
  tcase_add_test(tr, receipt_requests_are_not_answered_when_the_option_or_the_filter_says_no);
  tcase_add_test(tr, prepare_adds_an_origin_id_an_id_and_a_request_as_asked);
  tcase_add_test(tr, prepared_message_goes_out_with_its_request_and_its_ack_is_reported);
  tcase_add_test(tr, stanza_id_is_taken_only_from_the_expected_archive);
  suite_add_tcase(s, tr);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
