/* The client engine (lib/engine/engine.h) on a fake clock and a memory
 * transport (tests/support/engine_harness.h): whole client scenarios, with
 * the engine's real policy, no sockets and no sleeping. Time moves only
 * when the test moves it, so what the app observes can be checked to the
 * millisecond (the reconnect delay it was told is the delay it got). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "client_rec.h"
#include "engine_harness.h"
#include "login_script.h"
#include "scram_server.h"
#include "xmppuv.h"

/* ---- what the app sees (tests/support/client_rec.h) ------------------------ */

typedef struct rec {
  xmppuv_test_engine_t *h;
  client_rec_t app; /* the callbacks' user_data; the fake clock is its clock */
} rec_t;

static uint64_t now_ms(const rec_t *r) { return xmppuv_test_engine_now(r->h).mono_ms; }

static uint64_t engine_clock(void *arg) { return now_ms(arg); }

/* ---- helpers --------------------------------------------------------------------- */

static void base_opts(xmppuv_client_options_t *o) {
  xmppuv_client_options_init(o);
  o->jid = "alice@localhost";
  o->password = "alice-secret";
  o->host = "127.0.0.1";
  o->port = 5222;
  o->log_level = XMPPUV_LOG_NONE;
}

static void start(rec_t *r, const xmppuv_client_options_t *o,
                  const xmppuv_test_step_t *const *scripts, size_t n) {
  memset(r, 0, sizeof *r);
  client_rec_init(&r->app, engine_clock, r);
  r->app.seq_reconnecting = 1;
  xmppuv_test_engine_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.opts = o;
  cfg.callbacks = &client_rec_callbacks;
  cfg.user_data = &r->app;
  cfg.scripts = scripts;
  cfg.n_scripts = n;
  ck_assert_int_eq(xmppuv_test_engine_new(&cfg, &r->h), 0);
  r->app.in_call = 1;
  ck_assert_int_eq(xmppuv_test_engine_start(r->h), 0);
  r->app.in_call = 0;
}

static void finish(rec_t *r) {
  client_rec_assert_no_event_in_call(&r->app);
  xmppuv_test_engine_free(r->h);
}

static int is_online(void *arg) {
  const rec_t *r = arg;
  return r->app.onlines + r->app.resumes > 0 &&
         xmppuv__engine_status(xmppuv_test_engine_get(r->h)) == XMPPUV_STATUS_ONLINE;
}

static int is_resumed(void *arg) { return ((const rec_t *)arg)->app.resumes > 0; }

typedef struct count_arg {
  const unsigned *counter;
  unsigned at_least;
} count_arg_t;

static int counted(void *arg) {
  const count_arg_t *a = arg;
  return *a->counter >= a->at_least;
}

static xmppuv_stanza_t *message(const char *body) {
  char xml[256];
  snprintf(xml, sizeof xml, "<message to='bob@localhost' type='chat'><body>%s</body></message>",
           body);
  xmppuv_stanza_t *s = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &s), 0);
  return s;
}

/* Sent with a callback (tracked: its outcome goes there) or without (its
 * outcome is the ack or fail event). */
static void send_message_as(rec_t *r, const char *body, int tracked) {
  xmppuv_stanza_t *s = message(body);
  r->app.in_call = 1;
  ck_assert_int_eq(xmppuv_test_engine_send(r->h, s, tracked ? client_rec_sent_cb : NULL,
                                           tracked ? &r->app : NULL),
                   0);
  r->app.in_call = 0;
  xmppuv_stanza_unref(s);
}

static void send_message(rec_t *r, const char *body) { send_message_as(r, body, 1); }

static const char *received(const rec_t *r, size_t conn) {
  xmppuv_test_script_conn_t *k = xmppuv_test_engine_conn(r->h, conn);
  ck_assert_msg(k != NULL, "no connection %zu", conn);
  return xmppuv_test_script_conn_received(k, NULL);
}

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(login_cut_and_resumption_on_a_fake_clock) {
  /* The first connection: a login with SM, then the first message acked
   * when the client asks (its <r/> comes 250 ms after the send). */
  const xmppuv_test_step_t s0[] = {LOGIN_SM_ID("sm-0"),
                                   SCRIPT_EXPECT("first</body>"),
                                   SCRIPT_EXPECT("<r "),
                                   SCRIPT_SEND("<a xmlns='" NS_SM "' h='1'/>"),
                                   SCRIPT_END};
  /* The second: the session resumed with the second message unacked; the
   * client resends it and the server acks it. */
  const xmppuv_test_step_t s1[] = {UNTIL_RESUME,
                                   SCRIPT_SEND("<resumed xmlns='" NS_SM "' previd='sm-0' h='1'/>"),
                                   SCRIPT_EXPECT("second</body>"),
                                   SCRIPT_EXPECT("<r "),
                                   SCRIPT_SEND("<a xmlns='" NS_SM "' h='2'/>"),
                                   SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  xmppuv_client_options_t o;
  base_opts(&o);
  rec_t r;
  start(&r, &o, scripts, 2);
  uint64_t t0 = now_ms(&r);

  ck_assert(xmppuv_test_engine_run_until(r.h, is_online, &r, 1000));
  ck_assert_str_eq(r.app.bound, "alice@localhost/r0");
  ck_assert_uint_eq(now_ms(&r), t0); /* nothing waited on anything */

  send_message_as(&r, "first", 0);
  count_arg_t one_ack = {&r.app.acks, 1};
  ck_assert(xmppuv_test_engine_run_until(r.h, counted, &one_ack, 1000));
  ck_assert_uint_eq(now_ms(&r) - t0, 250); /* the ack request's debounce */

  send_message_as(&r, "second", 1);
  xmppuv_test_engine_run(r.h);
  ck_assert_ptr_nonnull(strstr(received(&r, 0), "second</body>"));
  xmppuv_test_engine_advance(r.h, 100); /* before the <r/> for it */
  uint64_t cut_at = now_ms(&r);
  xmppuv_test_engine_cut(r.h);

  ck_assert(xmppuv_test_engine_run_until(r.h, is_resumed, &r, 120000));
  count_arg_t sent = {&r.app.sent_done, 1};
  ck_assert(xmppuv_test_engine_run_until(r.h, counted, &sent, 1000));

  /* What the app saw: one session, resumed once, both messages acked: the
   * first (sent without a callback) by the ack event, the second (sent
   * with one) by its callback only (status 0), each once. */
  ck_assert_str_eq(r.app.seq, "online ack error:ECONNRESET reconnecting resumed sent");
  ck_assert_int_eq(r.app.sent_status, 0);
  ck_assert_uint_eq(r.app.acks, 1);
  ck_assert_uint_eq(r.app.fails, 0);
  ck_assert_uint_eq(xmppuv__engine_status(xmppuv_test_engine_get(r.h)), XMPPUV_STATUS_ONLINE);
  /* It reconnected exactly when it said it would. */
  ck_assert_uint_eq(r.app.reconnecting_at[0], cut_at);
  ck_assert_uint_eq(xmppuv_test_script_conn_accepted_at(xmppuv_test_engine_conn(r.h, 1)),
                    cut_at + r.app.delay[0]);
  /* It asked to resume where the server's h left it (nothing inbound), and
   * resent the second message stamped with its first send, 250 ms in. */
  const char *rx1 = received(&r, 1);
  ck_assert_ptr_nonnull(strstr(rx1, "<resume xmlns='" NS_SM "' h='0' previd='sm-0'/>"));
  ck_assert_ptr_null(strstr(rx1, "first</body>"));
  ck_assert_ptr_nonnull(strstr(rx1, "<delay xmlns='urn:xmpp:delay' from='alice@localhost/r0' "
                                    "stamp='2023-11-14T22:13:20.250Z'/>"));
  ck_assert_uint_eq(xmppuv__engine_sm_queued(xmppuv_test_engine_get(r.h)), 0);
  finish(&r);
}
END_TEST

START_TEST(events_come_from_the_loop_never_inside_the_call) {
  /* No SM: the send callback (XMPPUV_ESMOFF: written, nothing will confirm
   * it) is due as soon as the bytes are written, but still not inside
   * xmppuv_client_send_tracked(). */
  const xmppuv_test_step_t s0[] = {UNTIL_AUTH,
                                   SCRIPT_SEND(SASL_SUCCESS),
                                   SCRIPT_EXPECT("<stream:stream"),
                                   SCRIPT_SEND(HDR FEATURES_BIND),
                                   SCRIPT_EXPECT(NS_BIND),
                                   SCRIPT_SEND(BIND_RESULT),
                                   SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0};
  xmppuv_client_options_t o;
  base_opts(&o);
  rec_t r;
  start(&r, &o, scripts, 1);
  ck_assert(xmppuv_test_engine_run_until(r.h, is_online, &r, 1000));
  send_message(&r, "hello");
  ck_assert_uint_eq(r.app.sent_done, 0);
  xmppuv_test_engine_run(r.h);
  ck_assert_uint_eq(r.app.sent_done, 1);
  ck_assert_str_eq(r.app.seq, "online sent:ESMOFF");
  finish(&r);
}
END_TEST

/* Prosody shutting down (a restart) answers a connection whose header it has
 * not read yet with its own header, without a version since it does not
 * know ours, then system-shutdown (these bytes, 13.0.1). The client used to
 * take the header for a pre-1.0 server and give up (EPROTO
 * unsupported-version, fatal: the soak saw it); the error that follows is
 * the answer, and the client comes back. */
START_TEST(a_server_shutting_down_before_reading_our_header_is_retried) {
  const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"),
      SCRIPT_SEND("<?xml version='1.0'?><stream:stream xml:lang='en' xmlns:stream="
                  "'http://etherx.jabber.org/streams' id='' xmlns='jabber:client'>"),
      SCRIPT_DELAY(20),
      SCRIPT_SEND("<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                  "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Received SIGTERM</text>"
                  "</stream:error></stream:stream>"),
      SCRIPT_CLOSE, SCRIPT_END};
  const xmppuv_test_step_t s1[] = {UNTIL_AUTH,
                                   SCRIPT_SEND(SASL_SUCCESS),
                                   SCRIPT_EXPECT("<stream:stream"),
                                   SCRIPT_SEND(HDR FEATURES_BIND),
                                   SCRIPT_EXPECT(NS_BIND),
                                   SCRIPT_SEND(BIND_RESULT),
                                   SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  xmppuv_client_options_t o;
  base_opts(&o);
  rec_t r;
  start(&r, &o, scripts, 2);
  ck_assert_msg(xmppuv_test_engine_run_until(r.h, is_online, &r, 120000), "events: %s", r.app.seq);
  ck_assert_str_eq(r.app.seq, "error:ESTREAM reconnecting online");
  ck_assert_uint_eq(xmppuv_test_engine_connections(r.h), 2);
  ck_assert_ptr_null(strstr(received(&r, 0), "unsupported-version"));
  finish(&r);
}
END_TEST

static void on_iq_reply(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c, (void)status, (void)reply;
  (*(unsigned *)ud)++;
}

/* Found by the session fuzzer: an engine freed without close() (a driver
 * that dies, or a test) leaked the requests still waiting for answers. The
 * ASan run of this suite is what checks it. */
START_TEST(an_engine_freed_with_requests_in_flight_frees_them) {
  const xmppuv_test_step_t s0[] = {UNTIL_AUTH,
                                   SCRIPT_SEND(SASL_SUCCESS),
                                   SCRIPT_EXPECT("<stream:stream"),
                                   SCRIPT_SEND(HDR FEATURES_BIND),
                                   SCRIPT_EXPECT(NS_BIND),
                                   SCRIPT_SEND(BIND_RESULT),
                                   SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0};
  xmppuv_client_options_t o;
  base_opts(&o);
  rec_t r;
  start(&r, &o, scripts, 1);
  ck_assert(xmppuv_test_engine_run_until(r.h, is_online, &r, 1000));
  static const char ping[] = "<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
  xmppuv_stanza_t *iq = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(ping, sizeof ping - 1, &iq), 0);
  unsigned replies = 0;
  uint64_t id = 0;
  ck_assert_int_eq(xmppuv__engine_iq(xmppuv_test_engine_get(r.h), iq, 0, on_iq_reply, &replies,
                                     &id, xmppuv_test_engine_now(r.h)),
                   0);
  xmppuv_stanza_unref(iq);
  xmppuv_test_engine_run(r.h);
  ck_assert_ptr_nonnull(strstr(received(&r, 0), "urn:xmpp:ping"));
  finish(&r);
  ck_assert_uint_eq(replies, 0); /* freed without a word, and without a leak */
}
END_TEST

/* ---- SCRAM keys: derived once, then cached ---------------------------------------------- */

START_TEST(scram_keys_are_derived_once_for_all_reconnections) {
  scram_script_t ss = {scram_server_new("SHA-256", "alice-secret", 4096), 0};
  const xmppuv_test_step_t s0[] = {LOGIN_SCRAM(&ss), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0};
  xmppuv_client_options_t o;
  base_opts(&o);
  o.sm = 0;
  rec_t r;
  start(&r, &o, scripts, 1);
  for (unsigned i = 1; i <= 3; i++) {
    count_arg_t online = {&r.app.onlines, i};
    ck_assert_msg(xmppuv_test_engine_run_until(r.h, counted, &online, 120000),
                  "login %u did not happen; events: %s", i, r.app.seq);
    xmppuv_test_engine_cut(r.h);
  }
  /* Three logins with proofs the server checked, one PBKDF2. */
  ck_assert_uint_eq(r.app.onlines, 3);
  ck_assert_uint_eq(xmppuv_test_engine_derivations(r.h), 1);
  for (size_t i = 0; i < 3; i++) ck_assert_ptr_nonnull(strstr(received(&r, i), "<response "));
  ck_assert_ptr_null(strstr(received(&r, 0), "alice-secret"));
  finish(&r);
  scram_server_free(ss.s);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("engine");
  TCase *tc = tcase_create("fake_clock");
  tcase_add_test(tc, login_cut_and_resumption_on_a_fake_clock);
  tcase_add_test(tc, events_come_from_the_loop_never_inside_the_call);
  tcase_add_test(tc, scram_keys_are_derived_once_for_all_reconnections);
  tcase_add_test(tc, an_engine_freed_with_requests_in_flight_frees_them);
  tcase_add_test(tc, a_server_shutting_down_before_reading_our_header_is_retried);
  suite_add_tcase(s, tc);
  return s;
}
XMPPUV_TEST_MAIN(make_suite)
