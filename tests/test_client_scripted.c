/* The client (lib/client.c) over a real loopback socket, against the
 * scripted server (tests/support/script_server.h): what the app observes
 * (events, the status sequence, reconnecting or not) when a server does
 * what real servers will not do on demand: no STARTTLS, stream errors,
 * see-other-host, bind and SASL failures, silence, a wrong SCRAM signature.
 * The session core's side of these is in test_session.c; here it is the
 * driver's policy on top of it. Plaintext throughout: the client runs with
 * XMPPUV_TLS_DISABLED_INSECURE except where TLS being required is the
 * point. XMPPUV_TEST_LOG=1 prints the client's log (trace) on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/buf.h"
#include "check_main.h"
#include "client_world.h"
#include "login_script.h"
#include "scram_server.h"
#include "sm/persist.h"
#include "sm/queue.h"
#include "text.h"
#include "xmppuv.h"

/* ---- the world (tests/support/client_world.h), and what the app sees ------- */

/* Close everything; the loop must end with nothing left on it, and the app
 * must have seen nothing after close_cb and only status changes client.h
 * allows. */
static void finish(world_t *r) {
  world_finish(r);
  client_rec_assert_nothing_after_close(&r->app);
  client_rec_assert_transitions(&r->app);
}

/* The client gave up: offline, and it stays so (no reconnection timer). */
static void assert_gave_up(world_t *r, size_t conns) {
  RUN_UNTIL(r, r->app.offlines >= 1, 10000);
  ck_assert_msg(r->app.offlines == 1, "not offline; statuses: %s", r->app.statuses);
  RUN_FOR(r, 300); /* six reconnect delays */
  ck_assert_int_eq(r->app.status, XMPPUV_STATUS_OFFLINE);
  ck_assert_uint_eq(r->app.reconnectings, 0);
  ck_assert_uint_eq(r->app.connecting, 1);
  ck_assert_uint_eq(world_connections(r, 0), conns);
}

/* ---- TLS required ------------------------------------------------------------ */

START_TEST(starttls_not_offered_fails_with_ETLSREQUIRED_and_sends_no_credentials) {
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_PLAIN), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.tls = XMPPUV_TLS_STARTTLS;
  /* A pin: certificate checks configured without a CA file; TLS is never
   * reached anyway. */
  o.pin = "0000000000000000000000000000000000000000000000000000000000000000";
  world_start(&r, &o);
  assert_gave_up(&r, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ETLSREQUIRED, "", 1);
  ck_assert_uint_eq(r.app.errors, 1);
  ck_assert_uint_eq(r.app.onlines, 0);
  ck_assert_str_eq(r.app.statuses,
                   "connecting connect opening open disconnecting disconnect offline");
  const char *sent = world_received(&r, 0, 0);
  ck_assert_ptr_nonnull(strstr(sent, "<stream:stream"));
  ck_assert_msg(strstr(sent, "<auth") == NULL, "credentials sent without TLS: %s", sent);
  ck_assert_ptr_null(strstr(sent, "<starttls"));
  finish(&r);
}
END_TEST

/* ---- stream errors mid-session ------------------------------------------------- */

START_TEST(stream_error_system_shutdown_mid_session_reconnects) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_DELAY(50), SCRIPT_SEND(STREAM_ERROR("system-shutdown")), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 2, 10000);
  ck_assert_msg(r.app.onlines == 2, "not online twice; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESTREAM, "system-shutdown", 0);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(r.app.attempt[0], 1);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  ck_assert_str_eq(r.app.bound, "alice@localhost/r1");
  ck_assert_str_eq(r.app.statuses,
                   "connecting connect opening open opening open online disconnecting "
                   "disconnect connecting connect opening open opening open online");
  ck_assert_int_eq(xmppuv_client_status(r.c), XMPPUV_STATUS_ONLINE);
  finish(&r);
}
END_TEST

START_TEST(stream_error_conflict_mid_session_is_fatal) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_DELAY(50), SCRIPT_SEND(STREAM_ERROR("conflict")), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  assert_gave_up(&r, 1);
  ck_assert_uint_eq(r.app.onlines, 1);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESTREAM, "conflict", 1);
  finish(&r);
}
END_TEST

START_TEST(server_closing_the_stream_is_answered_and_the_client_reconnects) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_DELAY(50), SCRIPT_SEND("</stream:stream>"),
      SCRIPT_EXPECT("</stream:stream>"), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 2, 10000);
  ck_assert_msg(r.app.onlines == 2, "not online twice; statuses: %s", r.app.statuses);
  /* The client answered </stream:stream> in kind (the script saw it). */
  ck_assert(world_script_done(&r, 0, 0));
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_ptr_nonnull(strstr(r.app.statuses, "online close disconnecting disconnect connecting"));
  finish(&r);
}
END_TEST

/* ---- see-other-host --------------------------------------------------------------- */

START_TEST(see_other_host_moves_the_client_to_the_named_server) {
  static const xmppuv_test_step_t target[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const target_scripts[] = {target};
  world_t r;
  world_init(&r);
  world_server(&r, 1, target_scripts, 1);
  char redirect[512];
  snprintf(redirect, sizeof redirect,
           HDR "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
               "'>127.0.0.1:%u</see-other-host></stream:error></stream:stream>",
           (unsigned)world_port(&r, 1));
  const xmppuv_test_step_t first[] = {SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(redirect),
                                      SCRIPT_CLOSE, SCRIPT_END};
  const xmppuv_test_step_t *const first_scripts[] = {first};
  world_server(&r, 0, first_scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.reconnect_delay_ms = 2000; /* a redirect does not wait for the backoff */
  o.reconnect_max_delay_ms = 2000;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  ck_assert_msg(r.app.onlines == 1, "not online; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(world_connections(&r, 0), 1);
  ck_assert_uint_eq(world_connections(&r, 1), 1);
  ck_assert_str_eq(r.app.bound, "alice@localhost/r0");
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESTREAM, "see-other-host", 0);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(r.app.delay[0], 0);
  /* The second server got the whole login, the first none of it. */
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "<auth"));
  ck_assert_ptr_nonnull(strstr(world_received(&r, 1, 0), "<auth"));
  finish(&r);
}
END_TEST

START_TEST(see_other_host_loop_ends_with_ESEEOTHERHOST) {
  static const xmppuv_test_step_t loop[] = {
      SCRIPT_EXPECT("<stream:stream"),
      SCRIPT_SEND(HDR "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
                      "'>127.0.0.1:{port}</see-other-host></stream:error></stream:stream>"),
      SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {loop};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.offlines >= 1, 10000);
  ck_assert_msg(r.app.offlines == 1, "not offline; statuses: %s", r.app.statuses);
  RUN_FOR(&r, 300);
  size_t n = world_connections(&r, 0);
  ck_assert_msg(n >= 2 && n <= 10, "%zu connections", n);
  ck_assert_uint_eq(r.app.errors, n);
  for (unsigned i = 0; i + 1 < r.app.errors; i++)
    ASSERT_ERROR(&r.app, i, XMPPUV_ESTREAM, "see-other-host", 0);
  ASSERT_ERROR(&r.app, r.app.errors - 1, XMPPUV_ESEEOTHERHOST, "see-other-host", 1);
  ck_assert_uint_eq(r.app.reconnectings, n - 1);
  ck_assert_int_eq(r.app.status, XMPPUV_STATUS_OFFLINE);
  ck_assert_uint_eq(r.app.onlines, 0);
  finish(&r);
}
END_TEST

/* A see-other-host stream error may come before TLS, from anyone on the
 * path: what it names is a host, never a WebSocket URL to follow (only
 * RFC 7395's <close see-other-uri/>, on a WebSocket, is: test_ws_client).
 * Were the URL taken, the certificate would then be checked against the
 * attacker's host instead of the XMPP domain. */
START_TEST(see_other_host_naming_a_url_opens_no_websocket) {
  static const xmppuv_test_step_t target[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const target_scripts[] = {target};
  world_t r;
  world_init(&r);
  world_server(&r, 1, target_scripts, 1);
  char redirect[512];
  snprintf(redirect, sizeof redirect,
           HDR "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
               "'>ws://127.0.0.1:%u/xmpp-websocket</see-other-host></stream:error>"
               "</stream:stream>",
           (unsigned)world_port(&r, 1));
  const xmppuv_test_step_t first[] = {SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(redirect),
                                      SCRIPT_CLOSE, SCRIPT_END};
  const xmppuv_test_step_t *const first_scripts[] = {first};
  world_server(&r, 0, first_scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.reconnect_delay_ms = 5000; /* the redirect goes at once; nothing after it */
  o.reconnect_max_delay_ms = 5000;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.errors >= 2, 10000);
  RUN_FOR(&r, 300);
  ck_assert_uint_ge(r.app.errors, 2); /* the redirect, then the redirected attempt's */
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESTREAM, "see-other-host", 0);
  /* Nothing went to the URL's server, as WebSocket or otherwise. */
  ck_assert_uint_eq(world_connections(&r, 1), 0);
  ck_assert_uint_eq(r.app.onlines, 0);
  finish(&r);
}
END_TEST

/* ---- bind and SASL failures ------------------------------------------------------- */

START_TEST(bind_error_cancel_is_fatal_with_EBIND) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND), SCRIPT_SEND(BIND_ERROR("cancel", "not-allowed")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  assert_gave_up(&r, 1);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EBIND, "not-allowed", 1);
  ck_assert_uint_eq(r.app.onlines, 0);
  ck_assert_ptr_null(xmppuv_client_jid(r.c));
  finish(&r);
}
END_TEST

START_TEST(bind_error_wait_reconnects) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND),
      SCRIPT_SEND(BIND_ERROR("wait", "resource-constraint")), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  ck_assert_msg(r.app.onlines == 1, "not online; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EBIND, "resource-constraint", 0);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  ck_assert_str_eq(r.app.bound, "alice@localhost/r1");
  finish(&r);
}
END_TEST

START_TEST(sasl_not_authorized_is_fatal_without_reconnect) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, SCRIPT_SEND(SASL_FAILURE("not-authorized")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  assert_gave_up(&r, 1);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EAUTH, "not-authorized", 1);
  /* No second attempt with the same password on the same stream either. */
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), "<auth"), 1);
  finish(&r);
}
END_TEST

START_TEST(sasl_temporary_auth_failure_reconnects) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, SCRIPT_SEND(SASL_FAILURE("temporary-auth-failure")), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  ck_assert_msg(r.app.onlines == 1, "not online; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EAUTH, "temporary-auth-failure", 0);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  finish(&r);
}
END_TEST

/* ---- timeouts, backoff ------------------------------------------------------------ */

START_TEST(negotiation_timeout_drops_with_ETIMEDOUT_and_reconnects) {
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {silent};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.negotiation_timeout_ms = 300;
  world_start(&r, &o);
  RUN_UNTIL(&r, world_connections(&r, 0) >= 2, 10000);
  ck_assert_msg(world_connections(&r, 0) == 2, "no reconnection; statuses: %s", r.app.statuses);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ETIMEDOUT, "", 0);
  ck_assert_uint_eq(r.app.errors, 1);
  ck_assert_uint_ge(r.app.err_at[0] - r.app.connect_at[0], 300);
  ck_assert_uint_lt(r.app.err_at[0] - r.app.connect_at[0], 5000);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  /* The client said its stream header and was never answered. */
  ck_assert_ptr_nonnull(strstr(world_received(&r, 0, 0), "<stream:stream"));
  finish(&r);
}
END_TEST

START_TEST(reconnect_delays_grow_exponentially_with_jitter_up_to_the_cap) {
  static const xmppuv_test_step_t hang_up[] = {SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {hang_up};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.reconnect_delay_ms = 100;
  o.reconnect_max_delay_ms = 400;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.reconnectings >= 5, 20000);
  ck_assert_msg(r.app.reconnectings == 5, "%u reconnections; statuses: %s", r.app.reconnectings,
                r.app.statuses);
  /* Stopping while waiting to reconnect cancels the attempt: offline at
   * once, and the status event comes from the loop, not inside stop(). */
  ck_assert_int_eq(xmppuv_client_stop(r.c), 0);
  ck_assert_int_eq(xmppuv_client_status(r.c), XMPPUV_STATUS_OFFLINE);
  RUN_UNTIL(&r, r.app.status == XMPPUV_STATUS_OFFLINE, 1000);
  ck_assert_int_eq(r.app.status, XMPPUV_STATUS_OFFLINE);
  static const uint64_t lo[] = {80, 160, 320, 320, 320};
  static const uint64_t hi[] = {120, 240, 400, 400, 400};
  for (unsigned i = 0; i < 5; i++) {
    ck_assert_uint_eq(r.app.attempt[i], i + 1);
    ck_assert_msg(r.app.delay[i] >= lo[i] && r.app.delay[i] <= hi[i],
                  "attempt %u: delay %llu ms not in [%llu, %llu]", i + 1,
                  (unsigned long long)r.app.delay[i], (unsigned long long)lo[i],
                  (unsigned long long)hi[i]);
  }
  /* The server saw each attempt no sooner than announced. */
  for (size_t i = 0; i < 4; i++) {
    uint64_t at = xmppuv_test_script_conn_accepted_at(
        xmppuv_test_script_server_conn(r.srv[0], i + 1));
    ck_assert_uint_ge(at, r.app.reconnecting_at[i] + r.app.delay[i]);
  }
  RUN_FOR(&r, 600);
  ck_assert_uint_eq(world_connections(&r, 0), 5);
  ck_assert_uint_eq(r.app.reconnectings, 5);
  ck_assert_uint_eq(r.app.offlines, 1);
  finish(&r);
}
END_TEST

START_TEST(reconnect_off_goes_offline_after_the_first_failure) {
  static const xmppuv_test_step_t hang_up[] = {SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {hang_up};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.reconnect = 0;
  world_start(&r, &o);
  assert_gave_up(&r, 1);
  ck_assert_uint_eq(r.app.errors, 1);
  /* fatal: the client gives up, as the header promises for fatal errors. */
  ASSERT_ERROR(&r.app, 0, XMPPUV_EEOF, "", 1);
  /* A client that gave up can be started again. */
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  RUN_UNTIL(&r, r.app.offlines >= 2, 10000);
  ck_assert_uint_eq(r.app.offlines, 2);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  finish(&r);
}
END_TEST

START_TEST(keepalive_without_sm_pings_and_drops_a_silent_server) {
  /* The first ping is answered; the second is not. */
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='result' id='{id}' from='localhost'/>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.keepalive_ms = 200;
  o.keepalive_timeout_ms = 300;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.errors >= 1, 10000);
  ck_assert_uint_eq(r.app.onlines, 1);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ETIMEDOUT, "", 0);
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), "urn:xmpp:ping"), 2);
  /* ping at 200 ms, answered; ping 200 ms after the answer; 300 ms more. */
  ck_assert_uint_ge(r.app.err_at[0] - r.app.online_at, 700);
  RUN_UNTIL(&r, r.app.reconnectings >= 1, 10000);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_ptr_nonnull(strstr(r.app.statuses, "online disconnecting disconnect"));
  finish(&r);
}
END_TEST

/* ---- sending ---------------------------------------------------------------------- */

START_TEST(send_before_online_is_held_and_delivered_after_online) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_EXPECT("</message>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_client_new(&r, &o);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "held while connecting", &m), 0);
  /* Not started: refused, not queued. */
  ck_assert_int_eq(xmppuv_client_send(r.c, m), XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  ck_assert_int_eq(xmppuv_client_send_tracked(r.c, m, client_rec_sent_cb, &r.app), 0);
  xmppuv_stanza_unref(m); /* the client keeps its own reference */
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 1);
  RUN_UNTIL(&r, r.app.sent_done >= 1, 10000);
  ck_assert_uint_eq(r.app.sent_done, 1);
  /* Written on a stream without SM: delivery cannot be confirmed. */
  ck_assert_int_eq(r.app.sent_status, XMPPUV_ESMOFF);
  ck_assert_uint_eq(r.app.onlines, 1);
  RUN_UNTIL(&r, world_script_done(&r, 0, 0), 10000);
  const char *sent = world_received(&r, 0, 0);
  const char *bind = strstr(sent, NS_BIND);
  const char *body = strstr(sent, "<body>held while connecting</body>");
  ck_assert_ptr_nonnull(bind);
  ck_assert_msg(body != NULL && body > bind, "message not sent after binding: %s", sent);
  /* XEP-0203: sent later than the app's call, so it says when. */
  ck_assert_ptr_nonnull(strstr(bind, "urn:xmpp:delay"));
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  finish(&r);
}
END_TEST

START_TEST(send_before_online_with_sm_is_acked_after_online) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND_SM), SCRIPT_SEND(BIND_RESULT),
      SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>"),
      SCRIPT_EXPECT("</message>"), SCRIPT_EXPECT("<r "),
      SCRIPT_SEND("<a xmlns='urn:xmpp:sm:3' h='1'/>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.sm_ack_debounce_ms = 20;
  world_start(&r, &o);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "held for SM", &m), 0);
  ck_assert_int_eq(xmppuv_client_send_tracked(r.c, m, client_rec_sent_cb, &r.app), 0);
  RUN_UNTIL(&r, r.app.sent_done >= 1, 10000);
  ck_assert_msg(r.app.sent_done == 1, "no outcome; statuses: %s", r.app.statuses);
  ck_assert_int_eq(r.app.sent_status, 0);
  /* Reported once, to its callback: no ack event besides. */
  ck_assert_uint_eq(r.app.acks, 0);
  ck_assert_uint_eq(r.app.fails, 0);
  ck_assert(xmppuv_client_sm_enabled(r.c));
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  xmppuv_stanza_unref(m);
  finish(&r);
}
END_TEST

START_TEST(send_of_a_non_stanza_is_EINVAL) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_EXPECT("</message>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  xmppuv_stanza_t *foo, *other_ns, *result, *m;
  ck_assert_int_eq(xmppuv_stanza_new("foo", NULL, &foo), 0);
  ck_assert_int_eq(xmppuv_stanza_new("message", "urn:example:other", &other_ns), 0);
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &result), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(result, "type", "result"), 0);
  ck_assert_int_eq(xmppuv_client_send(r.c, foo), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_send_tracked(r.c, foo, client_rec_sent_cb, &r.app), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_send(r.c, other_ns), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_send(r.c, NULL), XMPPUV_EINVAL);
  /* An iq request must be a get or set. */
  ck_assert_int_eq(xmppuv_client_send_iq(r.c, result, 0, NULL, NULL, NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_send_iq(r.c, foo, 0, NULL, NULL, NULL), XMPPUV_EINVAL);
  /* Refused stanzas are not taken: not changed, not queued. */
  ck_assert_ptr_null(xmppuv_stanza_attr(foo, "id"));
  ck_assert_ptr_null(xmppuv_stanza_attr(other_ns, "id"));
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", NULL, "after the refused ones", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(r.c, m), 0);
  RUN_UNTIL(&r, world_script_done(&r, 0, 0), 10000);
  const char *sent = world_received(&r, 0, 0);
  ck_assert_ptr_nonnull(strstr(sent, "after the refused ones"));
  ck_assert_ptr_null(strstr(sent, "<foo"));
  ck_assert_ptr_null(strstr(sent, "urn:example:other"));
  ck_assert_uint_eq(r.app.sent_done, 0);
  xmppuv_stanza_unref(foo);
  xmppuv_stanza_unref(other_ns);
  xmppuv_stanza_unref(result);
  xmppuv_stanza_unref(m);
  finish(&r);
}
END_TEST

/* ---- options -------------------------------------------------------------------- */

static void expect_bad(uv_loop_t *loop, const xmppuv_client_options_t *o, int code) {
  xmppuv_client_t *c = (xmppuv_client_t *)(uintptr_t)1;
  ck_assert_int_eq(xmppuv_client_new(loop, o, &client_rec_callbacks, NULL, &c), code);
  ck_assert_ptr_null(c);
}

START_TEST(bad_options_are_EINVAL) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  xmppuv_client_options_t o;
  world_opts(&o, 0);
  o.host = NULL;

  xmppuv_client_options_t bad = o;
  bad.jid = NULL;
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.port = 5222; /* a port without a host */
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.tls = (xmppuv_tls_mode_t)42;
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.reconnect_delay_ms = 0;
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.reconnect_delay_ms = 5000;
  bad.reconnect_max_delay_ms = 1000;
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.tls = XMPPUV_TLS_AUTO;
  bad.tls_insecure = 1;
  bad.pin = "0000000000000000000000000000000000000000000000000000000000000000";
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.keepalive_timeout_ms = 0;
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.sm_queue_max = 0;
  expect_bad(&loop, &bad, XMPPUV_EINVAL);
  bad = o;
  bad.jid = "not a jid@";
  xmppuv_client_t *c = NULL;
  int rc = xmppuv_client_new(&loop, &bad, &client_rec_callbacks, NULL, &c);
  ck_assert_msg(rc <= XMPPUV_EJID && rc >= XMPPUV_EJIDRESOURCE, "bad jid gave %s",
                xmppuv_err_name(rc));
  ck_assert_ptr_null(c);

  ck_assert_int_eq(xmppuv_client_new(NULL, &o, &client_rec_callbacks, NULL, &c), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_new(&loop, NULL, &client_rec_callbacks, NULL, &c), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, &client_rec_callbacks, NULL, NULL), XMPPUV_EINVAL);

  /* The good options work, and a client that never started closes cleanly. */
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), 0);
  ck_assert_int_eq(xmppuv_client_status(c), XMPPUV_STATUS_OFFLINE);
  ck_assert_int_eq(xmppuv_client_stop(c), 0); /* no-op when offline */
  xmppuv_client_close(c, NULL);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- SCRAM through the scripted server ------------------------------------------- */

static void scram_login(world_t *r, scram_script_t *ss) {
  const xmppuv_test_step_t s0[] = {LOGIN_SCRAM(ss), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0};
  world_init(r);
  world_server(r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(r, 0));
  world_start(r, &o);
  RUN_UNTIL(r, r->app.onlines >= 1 || r->app.offlines >= 1, 10000);
  if (r->app.offlines >= 1) assert_gave_up(r, 1);
  /* The server never learns the password: only SCRAM's proof went out. */
  ck_assert_ptr_null(strstr(world_received(r, 0, 0), "alice-secret"));
  ck_assert_ptr_nonnull(strstr(world_received(r, 0, 0), "mechanism='SCRAM-SHA-256'"));
}

START_TEST(scram_login_checks_the_server_signature_and_goes_online) {
  scram_script_t ss = {scram_server_new("SHA-256", "alice-secret", 4096), 0};
  world_t r;
  scram_login(&r, &ss);
  ck_assert_msg(r.app.onlines == 1, "not online; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 0);
  ck_assert_str_eq(r.app.bound, "alice@localhost/r0");
  finish(&r);
  scram_server_free(ss.s);
}
END_TEST

START_TEST(scram_wrong_server_signature_is_fatal_EAUTHSERVER) {
  scram_script_t ss = {scram_server_new("SHA-256", "alice-secret", 4096), 1};
  world_t r;
  scram_login(&r, &ss);
  ck_assert_uint_eq(r.app.onlines, 0);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EAUTHSERVER, "", 1);
  /* The client did not go on with a server that could not prove itself. */
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), "<stream:stream"), 1);
  finish(&r);
  scram_server_free(ss.s);
}
END_TEST

START_TEST(scram_low_iteration_count_is_fatal_EAUTHITER) {
  scram_script_t ss = {scram_server_new("SHA-256", "alice-secret", 1000), 0};
  world_t r;
  scram_login(&r, &ss);
  ck_assert_uint_eq(r.app.onlines, 0);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EAUTHITER, "", 1);
  /* No proof computed with a weak count was sent. */
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "<response"));
  finish(&r);
  scram_server_free(ss.s);
}
END_TEST

/* ---- graceful stop against a server that does not answer -------------------------- */

START_TEST(stop_ends_after_close_timeout_when_the_server_keeps_the_stream_open) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.close_timeout_ms = 300;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  ck_assert_uint_eq(r.app.onlines, 1);
  uint64_t stop_at = uv_now(&r.loop);
  ck_assert_int_eq(xmppuv_client_stop(r.c), 0);
  RUN_UNTIL(&r, r.app.offlines >= 1, 10000);
  ck_assert_uint_eq(r.app.offlines, 1);
  ck_assert_uint_ge(uv_now(&r.loop) - stop_at, 300);
  ck_assert_uint_eq(r.app.errors, 0);
  ck_assert_uint_eq(r.app.reconnectings, 0);
  ck_assert_ptr_nonnull(strstr(r.app.statuses, "online closing disconnecting disconnect offline"));
  ck_assert_ptr_nonnull(strstr(world_received(&r, 0, 0), "</stream:stream>"));
  finish(&r);
}
END_TEST

/* ---- closing from inside callbacks -------------------------------------------------- */

static const char *const close_events[] = {
    "connecting", "connect", "opening", "open", "online", "online-event", "disconnecting",
    "disconnect", "error", "reconnecting"};

START_TEST(close_from_inside_any_event_ends_cleanly) {
  /* Online, then the server hangs up: every event comes at least once. */
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_DELAY(20), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  r.app.close_on = close_events[_i];
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_client_new(&r, &o);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", NULL, "pending", &m), 0);
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  if (!r.app.close_called)
    ck_assert_int_eq(xmppuv_client_send_tracked(r.c, m, client_rec_sent_cb, &r.app), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(&r, r.app.closed, 10000);
  ck_assert_msg(r.app.closed, "close_cb did not run (close on %s); statuses: %s", r.app.close_on,
                r.app.statuses);
  ck_assert_msg(r.app.close_called, "never saw %s", r.app.close_on);
  /* The message ended exactly once (written, or cancelled). */
  if (strcmp(r.app.close_on, "connecting") != 0) ck_assert_uint_eq(r.app.sent_done, 1);
  RUN_FOR(&r, 200);
  if (strcmp(r.app.close_on, "connecting") == 0) {
    /* Closed before connecting: no connection may be made after all. */
    for (size_t i = 0; i < world_connections(&r, 0); i++)
      ck_assert_str_eq(world_received(&r, 0, i), "");
  }
  finish(&r);
}
END_TEST

START_TEST(stop_from_inside_any_event_goes_offline) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_DELAY(20), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  r.app.stop_on = close_events[_i];
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.close_timeout_ms = 300;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.stop_called && r.app.offlines >= 1, 10000);
  ck_assert_msg(r.app.stop_called, "never saw %s", r.app.stop_on);
  ck_assert_int_eq(r.app.stop_rc, 0);
  ck_assert_msg(r.app.offlines == 1, "not offline (stop on %s); statuses: %s", r.app.stop_on,
                r.app.statuses);
  /* Stopped means stopped: no connection is made or kept afterwards. */
  size_t conns = world_connections(&r, 0);
  RUN_FOR(&r, 300);
  ck_assert_uint_eq(world_connections(&r, 0), conns);
  ck_assert_int_eq(r.app.status, XMPPUV_STATUS_OFFLINE);
  ck_assert_uint_eq(r.app.offlines, 1);
  if (strcmp(r.app.stop_on, "connecting") == 0) {
    for (size_t i = 0; i < world_connections(&r, 0); i++)
      ck_assert_str_eq(world_received(&r, 0, i), "");
  }
  finish(&r);
}
END_TEST

START_TEST(stop_while_sm_is_being_enabled_does_not_go_online) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND_SM), SCRIPT_SEND(BIND_RESULT),
      SCRIPT_EXPECT("<enable "), SCRIPT_EXPECT("</stream:stream>"),
      /* The answer to <enable/> was on its way when the client closed. */
      SCRIPT_SEND("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>"
                  "</stream:stream>"),
      SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", NULL, "held", &m), 0);
  ck_assert_int_eq(xmppuv_client_send_tracked(r.c, m, client_rec_sent_cb, &r.app), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(&r,
            world_connections(&r, 0) == 1 &&
                strstr(world_received(&r, 0, 0), "<enable ") != NULL,
            10000);
  ck_assert_ptr_nonnull(strstr(world_received(&r, 0, 0), "<enable "));
  ck_assert_int_eq(xmppuv_client_stop(r.c), 0);
  RUN_UNTIL(&r, r.app.offlines >= 1, 10000);
  ck_assert_msg(r.app.offlines == 1, "not offline; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.onlines, 0);
  ck_assert_ptr_null(strstr(r.app.statuses, "online"));
  ck_assert_ptr_nonnull(
      strstr(r.app.statuses, "open closing close disconnecting disconnect offline"));
  ck_assert_uint_eq(r.app.sent_done, 1);
  ck_assert_int_eq(r.app.sent_status, XMPPUV_ECANCELED);
  ck_assert_uint_eq(r.app.errors, 0);
  finish(&r);
}
END_TEST

/* ---- iq requests ---------------------------------------------------------- */

typedef struct iq_rec {
  unsigned calls;
  int status;
  uint64_t at; /* uv_now() of the last call */
  char reply_type[16];
  char reply_child[48];
} iq_rec_t;

static void on_iq(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  iq_rec_t *q = ud;
  q->calls++;
  q->status = status;
  q->at = uv_now(xmppuv_client_loop(c));
  q->reply_type[0] = q->reply_child[0] = '\0';
  if (reply != NULL) {
    const char *type = xmppuv_stanza_attr(reply, "type");
    snprintf(q->reply_type, sizeof q->reply_type, "%s", type ? type : "");
    const xmppuv_stanza_t *err = xmppuv_stanza_child(reply, "error", NULL);
    const xmppuv_stanza_t *cond = xmppuv_stanza_child(err, NULL, NS_STANZAS);
    if (cond != NULL) snprintf(q->reply_child, sizeof q->reply_child, "%s", xmppuv_stanza_name(cond));
  }
}

static void send_query(world_t *r, const char *to, unsigned timeout_ms, iq_rec_t *q, uint64_t *id) {
  xmppuv_stanza_t *iq;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &iq), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "type", "get"), 0);
  if (to != NULL) ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "to", to), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(iq, "query", "urn:example:q", NULL), 0);
  ck_assert_int_eq(xmppuv_client_send_iq(r->c, iq, timeout_ms, on_iq, q, id), 0);
  xmppuv_stanza_unref(iq);
}

/* Login, then wait for the query; the caller's steps follow. */
#define UNTIL_QUERY LOGIN, SCRIPT_EXPECT("urn:example:q")

START_TEST(iq_timeout_calls_back_once_and_a_late_reply_is_ignored) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_QUERY, SCRIPT_DELAY(600),
      SCRIPT_SEND("<iq type='result' id='{id}' from='bob@localhost/x'/>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  iq_rec_t q = {0};
  send_query(&r, "bob@localhost/x", 200, &q, NULL);
  RUN_UNTIL(&r, q.calls >= 1, 10000);
  ck_assert_uint_eq(q.calls, 1);
  ck_assert_int_eq(q.status, XMPPUV_ETIMEDOUT);
  RUN_UNTIL(&r, world_script_done(&r, 0, 0), 10000);
  RUN_FOR(&r, 200);
  ck_assert_uint_eq(q.calls, 1); /* the late reply changes nothing */
  finish(&r);
}
END_TEST

START_TEST(iq_cancel_calls_back_once_with_ECANCELED) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_QUERY, SCRIPT_DELAY(300),
      SCRIPT_SEND("<iq type='result' id='{id}' from='bob@localhost/x'/>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  iq_rec_t q = {0};
  uint64_t id = 0;
  send_query(&r, "bob@localhost/x", 0, &q, &id);
  ck_assert_int_eq(xmppuv_client_iq_cancel(r.c, id), 0);
  ck_assert_uint_eq(q.calls, 0); /* from the loop, not from inside the call */
  ck_assert_int_eq(xmppuv_client_iq_cancel(r.c, id), XMPPUV_EINVAL);
  RUN_UNTIL(&r, q.calls >= 1, 10000);
  ck_assert_int_eq(q.status, XMPPUV_ECANCELED);
  RUN_UNTIL(&r, world_script_done(&r, 0, 0), 10000);
  RUN_FOR(&r, 200);
  ck_assert_uint_eq(q.calls, 1);
  finish(&r);
}
END_TEST

START_TEST(iq_reply_from_another_entity_is_not_taken_for_the_answer) {
  /* RFC 6120 §8.1.2.1: the reply comes from the entity asked; one that
   * guessed the id from elsewhere is not the answer. */
  static const xmppuv_test_step_t s0[] = {
      UNTIL_QUERY,
      SCRIPT_SEND("<iq type='result' id='{id}' from='mallory@localhost/m'/>"),
      SCRIPT_DELAY(200),
      SCRIPT_SEND("<iq type='error' id='{id}' from='bob@localhost/x'><error type='cancel'>"
                  "<item-not-found xmlns='" NS_STANZAS "'/></error></iq>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  iq_rec_t q = {0};
  send_query(&r, "bob@localhost/x", 5000, &q, NULL);
  RUN_UNTIL(&r, q.calls >= 1, 10000);
  ck_assert_uint_eq(q.calls, 1);
  ck_assert_int_eq(q.status, XMPPUV_EIQERROR);
  ck_assert_str_eq(q.reply_type, "error");
  ck_assert_str_eq(q.reply_child, "item-not-found");
  finish(&r);
}
END_TEST

START_TEST(iq_to_the_own_account_accepts_a_reply_without_from) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_QUERY, SCRIPT_SEND("<iq type='result' id='{id}'/>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  iq_rec_t q = {0};
  send_query(&r, NULL, 5000, &q, NULL);
  RUN_UNTIL(&r, q.calls >= 1, 10000);
  ck_assert_uint_eq(q.calls, 1);
  ck_assert_int_eq(q.status, 0);
  ck_assert_str_eq(q.reply_type, "result");
  finish(&r);
}
END_TEST

START_TEST(iq_result_taken_by_the_tracker_is_counted_in_h) {
  /* XEP-0198 §4: every inbound stanza counts, the replies that
   * xmppuv_client_send_iq consumes (and no handler sees) included. */
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, SCRIPT_EXPECT("urn:example:q"),
      SCRIPT_SEND("<iq type='result' id='{id}'/>" SM_R), SCRIPT_EXPECT(SM_A("1")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  ck_assert_int_eq(xmppuv_client_sm_enabled(r.c), 1);
  iq_rec_t q = {0};
  send_query(&r, NULL, 5000, &q, NULL);
  RUN_UNTIL(&r, q.calls >= 1 && world_script_done(&r, 0, 0), 10000);
  ck_assert_uint_eq(q.calls, 1);
  ck_assert_int_eq(q.status, 0);
  ck_assert_msg(world_script_done(&r, 0, 0), "no <a h='1'/> for the iq result: %s",
                world_received(&r, 0, 0));
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), SM_A("0")));
  finish(&r);
}
END_TEST

/* ---- iq requests of a session that is replaced ------------------------------ */

START_TEST(iq_pending_when_resumption_fails_gets_ESMFAILED_at_once) {
  /* q1 went out on session sm-0; the connection drops; the server has
   * forgotten the session (<failed/>): q1's answer can never come. q2,
   * made while reconnecting, was held and goes out on the new session. */
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT("urn:example:q"),
                                          SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_RESUME,
      SCRIPT_SEND("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='" NS_STANZAS
                  "'/></failed>"),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_EXPECT("urn:example:q"), SCRIPT_SEND(SM_ENABLED),
      SCRIPT_SEND("<iq type='result' id='{id}'/>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.iq_timeout_ms = 30000;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  iq_rec_t q1 = {0}, q2 = {0};
  uint64_t sent_at = uv_now(&r.loop);
  send_query(&r, NULL, 0, &q1, NULL);
  RUN_UNTIL(&r, r.app.reconnectings >= 1, 10000);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(q1.calls, 0); /* the session may still be resumed */
  send_query(&r, NULL, 0, &q2, NULL);
  RUN_UNTIL(&r, q1.calls >= 1 && q2.calls >= 1 && r.app.onlines >= 2, 10000);
  ck_assert_ptr_nonnull(strstr(world_received(&r, 0, 1), "previd='sm-0'"));
  ck_assert_uint_eq(q1.calls, 1);
  ck_assert_int_eq(q1.status, XMPPUV_ESMFAILED);
  ck_assert_msg(q1.at - sent_at < 5000, "q1 failed after %llu ms",
                (unsigned long long)(q1.at - sent_at));
  ck_assert_uint_le(q1.at, r.app.online_at); /* as the new session started */
  ck_assert_uint_eq(q2.calls, 1);
  ck_assert_int_eq(q2.status, 0);
  ck_assert_uint_eq(r.app.onlines, 2);
  RUN_FOR(&r, 100);
  ck_assert_uint_eq(q1.calls, 1);
  finish(&r);
}
END_TEST

/* The client does not try to resume, so no <failed/> comes: the new
 * session alone tells that q1's answer is lost. */
static const char *const no_resume_cases[] = {"past-max", "h-too-high", "no-sm"};

START_TEST(iq_pending_when_a_new_session_replaces_the_old_gets_ESMFAILED_at_once) {
  /* past-max: everything acked and the server's max (1 s) over before the
   * reconnection; h-too-high: the session was forgotten (ESMHIGH); no-sm:
   * a stream without SM is never resumed. */
  static const xmppuv_test_step_t past_max[] = {
      UNTIL_ENABLE,
      SCRIPT_SEND("<enabled xmlns='urn:xmpp:sm:3' id='sm-0' resume='true' max='1'/>"),
      SCRIPT_EXPECT("urn:example:q"), SCRIPT_SEND(SM_A("1")), SCRIPT_DELAY(100),
      SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t too_high[] = {
      LOGIN_SM, SCRIPT_EXPECT("urn:example:q"), SCRIPT_SEND(SM_A("5")),
      SCRIPT_EXPECT("handled-count-too-high"), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t no_sm[] = {LOGIN, SCRIPT_EXPECT("urn:example:q"),
                                             SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t new_sm[] = {
      UNTIL_ENABLE, SCRIPT_EXPECT("urn:example:q"), SCRIPT_SEND(SM_ENABLED),
      SCRIPT_SEND("<iq type='result' id='{id}'/>"), SCRIPT_END};
  static const xmppuv_test_step_t new_plain[] = {
      LOGIN, SCRIPT_EXPECT("urn:example:q"), SCRIPT_SEND("<iq type='result' id='{id}'/>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[][2] = {
      {past_max, new_sm}, {too_high, new_sm}, {no_sm, new_plain}};
  const char *what = no_resume_cases[_i];
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts[_i], 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.iq_timeout_ms = 30000;
  if (_i == 0) {
    /* Reconnect only once the server's max has passed. */
    o.reconnect_delay_ms = 1500;
    o.reconnect_max_delay_ms = 1500;
  }
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  iq_rec_t q1 = {0}, q2 = {0};
  uint64_t sent_at = uv_now(&r.loop);
  send_query(&r, NULL, 0, &q1, NULL);
  RUN_UNTIL(&r, r.app.reconnectings >= 1, 10000);
  ck_assert_msg(r.app.reconnectings == 1, "%s: no reconnection; statuses: %s", what,
                r.app.statuses);
  send_query(&r, NULL, 0, &q2, NULL);
  RUN_UNTIL(&r, q1.calls >= 1 && q2.calls >= 1 && r.app.onlines >= 2, 10000);
  ck_assert_msg(strstr(world_received(&r, 0, 1), "<resume") == NULL, "%s: resumption asked", what);
  ck_assert_msg(q1.calls == 1 && q1.status == XMPPUV_ESMFAILED, "%s: q1 %u calls, %s", what,
                q1.calls, xmppuv_err_name(q1.status));
  ck_assert_msg(q1.at - sent_at < 5000, "%s: q1 failed after %llu ms", what,
                (unsigned long long)(q1.at - sent_at));
  ck_assert_uint_le(q1.at, r.app.online_at);
  ck_assert_msg(q2.calls == 1 && q2.status == 0, "%s: q2 %u calls, %s", what, q2.calls,
                xmppuv_err_name(q2.status));
  ck_assert_uint_eq(r.app.onlines, 2);
  finish(&r);
}
END_TEST

/* ---- XEP-0198 location -------------------------------------------------------- */

/* Keep the transport's "connect" log lines (which address each attempt
 * went to), still printing everything with XMPPUV_TEST_LOG=1. */
typedef struct connect_log {
  char text[2048];
  size_t len;
} connect_log_t;

static void on_capture_log(void *ud, xmppuv_log_level_t level, const char *area,
                           const char *msg) {
  connect_log_t *l = ud;
  if (getenv("XMPPUV_TEST_LOG") != NULL) world_log(NULL, level, area, msg);
  if (strcmp(area, "connect") != 0) return;
  text_append(l->text, sizeof l->text, &l->len, "%s\n", msg);
}

static void capture_log(connect_log_t *l, xmppuv_client_options_t *o) {
  memset(l, 0, sizeof *l);
  o->log_cb = on_capture_log;
  o->log_user_data = l;
  o->log_level = getenv("XMPPUV_TEST_LOG") != NULL ? XMPPUV_LOG_TRACE : XMPPUV_LOG_DEBUG;
}

/* A loopback port nothing listens on: bound by the kernel, then closed. */
static unsigned short closed_port(uv_loop_t *loop) {
  uv_tcp_t t;
  struct sockaddr_in addr;
  struct sockaddr_storage got;
  int len = sizeof got;
  ck_assert_int_eq(uv_tcp_init(loop, &t), 0);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_int_eq(uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0), 0);
  ck_assert_int_eq(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
  unsigned short port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return port;
}

/* The session's <enabled/> names a location; the message went out on the
 * first connection and was never acked. */
#define ENABLED_AT "<enabled xmlns='urn:xmpp:sm:3' id='sm-0' resume='true' location='%s'/>"
#define RESENT "resend me"
#define RESUME_AND_ACK                                                              \
  UNTIL_RESUME, SCRIPT_SEND("<resumed xmlns='urn:xmpp:sm:3' previd='sm-0' h='0'/>"), \
      SCRIPT_EXPECT(RESENT), SCRIPT_SEND(SM_A("1"))

static void send_unacked(world_t *r) {
  RUN_UNTIL(r, r->app.onlines >= 1, 10000);
  ck_assert_msg(r->app.onlines == 1, "not online; statuses: %s", r->app.statuses);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", NULL, RESENT, &m), 0);
  ck_assert_int_eq(xmppuv_client_send(r->c, m), 0);
  xmppuv_stanza_unref(m);
}

START_TEST(resume_goes_to_the_location_the_server_gave) {
  static const xmppuv_test_step_t there[] = {RESUME_AND_ACK, SCRIPT_END};
  static const xmppuv_test_step_t *const there_scripts[] = {there};
  world_t r;
  world_init(&r);
  world_server(&r, 1, there_scripts, 1);
  char loc[64], enabled[256], where[64];
  snprintf(loc, sizeof loc, "127.0.0.1:%u", (unsigned)world_port(&r, 1));
  snprintf(enabled, sizeof enabled, ENABLED_AT, loc);
  /* A second connection here would not be a resumption: it would hang at
   * "<enable " and the assertions below say so. */
  const xmppuv_test_step_t here[] = {UNTIL_ENABLE, SCRIPT_SEND(enabled), SCRIPT_EXPECT(RESENT),
                                     SCRIPT_CLOSE, SCRIPT_END};
  const xmppuv_test_step_t *const here_scripts[] = {here};
  world_server(&r, 0, here_scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  connect_log_t log;
  capture_log(&log, &o);
  world_start(&r, &o);
  send_unacked(&r);
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.acks >= 1, 10000);
  ck_assert_msg(r.app.resumes == 1, "not resumed; statuses: %s; connect log:\n%s", r.app.statuses,
                log.text);
  ck_assert_uint_eq(r.app.acks, 1);
  ck_assert_uint_eq(r.app.fails, 0);
  ck_assert_uint_eq(r.app.onlines, 1); /* the same session, not a new one */
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(world_connections(&r, 0), 1);
  ck_assert_uint_eq(world_connections(&r, 1), 1);
  ck_assert(world_script_done(&r, 0, 0));
  ck_assert(world_script_done(&r, 1, 0));
  /* The location got the <resume/> and the resent message, with no new
   * login; the configured server got neither. */
  const char *there_got = world_received(&r, 1, 0);
  ck_assert_ptr_nonnull(strstr(there_got, "<resume "));
  ck_assert_ptr_nonnull(strstr(there_got, "previd='sm-0'"));
  ck_assert_ptr_nonnull(strstr(strstr(there_got, "<resume "), RESENT));
  ck_assert_ptr_null(strstr(there_got, NS_BIND));
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "<resume"));
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(r.c)), "alice@localhost/r0");
  ck_assert_int_eq(xmppuv_client_status(r.c), XMPPUV_STATUS_ONLINE);
  snprintf(where, sizeof where, "[127.0.0.1]:%u", (unsigned)world_port(&r, 1));
  ck_assert_msg(strstr(log.text, where) != NULL, "no attempt at %s:\n%s", where,
                log.text);
  finish(&r);
}
END_TEST

START_TEST(an_unreachable_location_falls_back_to_the_configured_server) {
  static const xmppuv_test_step_t again[] = {RESUME_AND_ACK, SCRIPT_END};
  world_t r;
  world_init(&r);
  unsigned short dead = closed_port(&r.loop);
  char loc[64], enabled[256], dead_at[64], live_at[64];
  snprintf(loc, sizeof loc, "127.0.0.1:%u", (unsigned)dead);
  snprintf(enabled, sizeof enabled, ENABLED_AT, loc);
  const xmppuv_test_step_t first[] = {UNTIL_ENABLE, SCRIPT_SEND(enabled), SCRIPT_EXPECT(RESENT),
                                      SCRIPT_CLOSE, SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {first, again};
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  connect_log_t log;
  capture_log(&log, &o);
  world_start(&r, &o);
  send_unacked(&r);
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.acks >= 1, 10000);
  ck_assert_msg(r.app.resumes == 1, "not resumed; statuses: %s; connect log:\n%s", r.app.statuses,
                log.text);
  ck_assert_uint_eq(r.app.acks, 1);
  ck_assert_uint_eq(r.app.fails, 0);
  ck_assert_uint_eq(r.app.onlines, 1);
  /* One reconnection: the refused location and the configured server are
   * the same attempt, not two. */
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(r.app.errors, 1); /* the drop; the refused location is not one */
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  const char *got = world_received(&r, 0, 1);
  ck_assert_ptr_nonnull(strstr(got, "previd='sm-0'"));
  ck_assert_ptr_nonnull(strstr(strstr(got, "<resume "), RESENT));
  ck_assert_ptr_null(strstr(got, NS_BIND));
  ck_assert_int_eq(xmppuv_client_status(r.c), XMPPUV_STATUS_ONLINE);
  /* The location was tried, and before the configured server. */
  snprintf(dead_at, sizeof dead_at, "[127.0.0.1]:%u", (unsigned)dead);
  snprintf(live_at, sizeof live_at, "[127.0.0.1]:%u", (unsigned)world_port(&r, 0));
  const char *tried = strstr(log.text, dead_at);
  ck_assert_msg(tried != NULL, "no attempt at %s:\n%s", dead_at, log.text);
  ck_assert_msg(strstr(tried, live_at) != NULL, "no attempt at %s after %s:\n%s", live_at,
                dead_at, log.text);
  finish(&r);
}
END_TEST

/* ---- saved SM state ---------------------------------------------------------- */

/* A saved-state blob made with the real encoder: session sm_id (NULL: none)
 * of full_jid (NULL: none), lost now, holding the stanzas given, the first
 * nsent of them sent and unacked. Free with xmppuv__buf_free(). */
static void saved_blob(xmppuv__buf_t *out, const char *sm_id, const char *full_jid,
                       const char *const *stanzas, size_t n, size_t nsent) {
  uv_timeval64_t tv;
  ck_assert_int_eq(uv_gettimeofday(&tv), 0);
  int64_t now_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
  xmppuv__smp_header_t hdr;
  memset(&hdr, 0, sizeof hdr);
  hdr.sm_id = sm_id;
  hdr.sm_id_len = sm_id ? strlen(sm_id) : 0;
  hdr.resumable = sm_id != NULL;
  hdr.full_jid = full_jid;
  hdr.full_jid_len = full_jid ? strlen(full_jid) : 0;
  hdr.out_count = (uint32_t)nsent;
  hdr.lost_wall_ms = now_ms;
  xmppuv__smq_t q;
  xmppuv__smq_init(&q, 16);
  for (size_t i = 0; i < n; i++) {
    xmppuv__smq_entry_t e;
    memset(&e, 0, sizeof e);
    e.sent_wall_ms = now_ms;
    ck_assert_int_eq(xmppuv__smq_push(&q, &e, stanzas[i], strlen(stanzas[i])), 0);
  }
  *out = (xmppuv__buf_t)XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__smp_encode(out, &hdr, &q, nsent), 0);
  xmppuv__smq_free(&q);
}

static const char *const bob_stanzas[] = {
    "<message to='carol@localhost' id='b1'><body>from bob</body></message>"};
static const char *const alice_stanzas[] = {
    "<message to='carol@localhost' id='a1'><body>from alice</body></message>"};

START_TEST(sm_import_of_another_accounts_session_is_refused_and_changes_nothing) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_client_new(&r, &o);
  xmppuv__buf_t bob, bad;
  saved_blob(&bob, "sm-bob", "bob@localhost/r7", bob_stanzas, 1, 1);
  saved_blob(&bad, "sm-bad", "not a jid@", bob_stanzas, 1, 1);
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, bob.data, bob.len), XMPPUV_ESTATEBLOB);
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, bad.data, bad.len), XMPPUV_ESTATEBLOB);
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  ck_assert_ptr_null(xmppuv_client_jid(r.c));
  /* A fresh session: nothing of bob's is resumed, resent or failed. */
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  ck_assert_uint_eq(r.app.onlines, 1);
  ck_assert_str_eq(r.app.bound, "alice@localhost/r0");
  const char *sent = world_received(&r, 0, 0);
  ck_assert_ptr_null(strstr(sent, "<resume"));
  ck_assert_ptr_null(strstr(sent, "sm-bob"));
  ck_assert_ptr_null(strstr(sent, "from bob"));
  ck_assert_uint_eq(r.app.acks, 0);
  ck_assert_uint_eq(r.app.fails, 0);
  xmppuv__buf_free(&bob);
  xmppuv__buf_free(&bad);
  finish(&r);
}
END_TEST

START_TEST(sm_import_after_a_refused_blob_loads_the_right_one_and_resumes) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_RESUME, SCRIPT_SEND("<resumed xmlns='urn:xmpp:sm:3' previd='sm-alice' h='1'/>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_client_new(&r, &o);
  xmppuv__buf_t bob, alice;
  saved_blob(&bob, "sm-bob", "bob@localhost/r7", bob_stanzas, 1, 1);
  saved_blob(&alice, "sm-alice", "alice@localhost/r7", alice_stanzas, 1, 1);
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, bob.data, bob.len), XMPPUV_ESTATEBLOB);
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, alice.data, alice.len), 0);
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 1);
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(r.c)), "alice@localhost/r7");
  /* Loaded once: nothing more is taken, and nothing changes. */
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, bob.data, bob.len), XMPPUV_ESTATEBLOB);
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, alice.data, alice.len), XMPPUV_ESTATE);
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 1);
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(r.c)), "alice@localhost/r7");
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  RUN_UNTIL(&r, r.app.acks >= 1, 10000);
  ck_assert_uint_eq(r.app.acks, 1); /* <resumed h='1'/> acked alice's message */
  ck_assert_uint_eq(r.app.fails, 0);
  ck_assert_uint_eq(r.app.onlines, 0); /* resumed, not a new session */
  const char *sent = world_received(&r, 0, 0);
  ck_assert_ptr_nonnull(strstr(sent, "previd='sm-alice'"));
  ck_assert_ptr_null(strstr(sent, "sm-bob"));
  xmppuv__buf_free(&bob);
  xmppuv__buf_free(&alice);
  finish(&r);
}
END_TEST

START_TEST(sm_import_without_jid_takes_held_stanzas_but_no_session) {
  /* Taken from a client that was never online: no JID, no session, a
   * message held for sending. It is taken and sent on a new session. A
   * session without a JID (export never writes one) cannot be shown to be
   * ours: refused. */
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const silent_scripts[] = {silent};
  static const xmppuv_test_step_t s0[] = {
      UNTIL_ENABLE, SCRIPT_EXPECT("held before online"), SCRIPT_SEND(SM_ENABLED),
      SCRIPT_SEND(SM_A("1")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  world_server(&r, 1, silent_scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 1));
  xmppuv_client_t *x;
  ck_assert_int_eq(xmppuv_client_new(&r.loop, &o, NULL, NULL, &x), 0);
  ck_assert_int_eq(xmppuv_client_start(x), 0);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("carol@localhost", NULL, "held before online", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(x, m), 0);
  xmppuv_stanza_unref(m);
  char *data = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv_client_sm_export(x, &data, &len), 0);
  xmppuv_client_close(x, NULL);

  world_opts(&o, world_port(&r, 0));
  world_client_new(&r, &o);
  xmppuv__buf_t jidless;
  saved_blob(&jidless, "sm-who", NULL, bob_stanzas, 1, 1);
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, jidless.data, jidless.len),
                   XMPPUV_ESTATEBLOB);
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  ck_assert_int_eq(xmppuv_client_sm_import(r.c, data, len), 0);
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 1);
  ck_assert_ptr_null(xmppuv_client_jid(r.c));
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  RUN_UNTIL(&r, r.app.acks >= 1, 10000);
  ck_assert_uint_eq(r.app.acks, 1);
  ck_assert_uint_eq(r.app.onlines, 1);
  ck_assert_str_eq(r.app.bound, "alice@localhost/r0");
  const char *sent = world_received(&r, 0, 0);
  ck_assert_ptr_null(strstr(sent, "<resume"));
  ck_assert_ptr_null(strstr(sent, "from bob"));
  xmppuv_free(data);
  xmppuv__buf_free(&jidless);
  finish(&r);
}
END_TEST

/* ---- the promise: every stanza ends in ack or fail (issue "Never stuck") ---------- */

static void send_body(world_t *r, const char *body) {
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", body, &m), 0);
  ck_assert_int_eq(xmppuv_client_send(r->c, m), 0);
  xmppuv_stanza_unref(m);
}

/* The SM state, exported from inside the error event (the recorder's hook). */
typedef struct exported {
  char *data;
  size_t len;
} exported_t;

static void export_on_error(client_rec_t *a, xmppuv_client_t *c, const char *event) {
  exported_t *ex = a->user;
  if (strcmp(event, "error") == 0 && ex->data == NULL)
    ck_assert_int_eq(xmppuv_client_sm_export(c, &ex->data, &ex->len), 0);
}

/* A fatal stream error: the client gives up, and what it held does not wait
 * for a stop() that may never come: the unacked and the held stanzas fail
 * with the error as the reason, after the error event (where the app can
 * still export them) and before offline. */
START_TEST(fatal_error_fails_every_stanza_held_with_that_error_after_the_error_event) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, SCRIPT_EXPECT("two</body>"), SCRIPT_SEND(SM_A("1")),
      SCRIPT_EXPECT("<r "), SCRIPT_SEND(STREAM_ERROR("not-authorized")), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  exported_t ex = {NULL, 0};
  r.app.on_event = export_on_error;
  r.app.user = &ex;
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  send_body(&r, "one");
  send_body(&r, "two");
  assert_gave_up(&r, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESTREAM, "not-authorized", 1);
  ck_assert_uint_eq(r.app.acks, 1);
  ck_assert_uint_eq(r.app.fails, 1);
  ck_assert_int_eq(r.app.fail_reason[0], XMPPUV_ESTREAM);
  ck_assert_str_eq(r.app.seq, "online ack error:ESTREAM fail:ESTREAM offline");
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  /* The export inside the error event still had the unacked one. */
  ck_assert_ptr_nonnull(ex.data);
  ck_assert_ptr_nonnull(memmem(ex.data, ex.len, "two</body>", 10));
  ck_assert_ptr_null(memmem(ex.data, ex.len, "one</body>", 10));
  finish(&r);
  xmppuv_free(ex.data);
}
END_TEST

/* Without reconnection every error is fatal: held stanzas fail with it
 * too (here the connection refused: nothing was ever written). */
START_TEST(giving_up_without_reconnection_fails_what_was_held_with_the_error) {
  world_t r;
  world_init(&r);
  unsigned short dead = closed_port(&r.loop);
  xmppuv_client_options_t o;
  world_opts(&o, dead);
  o.reconnect = 0;
  world_client_new(&r, &o);
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  send_body(&r, "held");
  RUN_UNTIL(&r, r.app.offlines >= 1, 10000);
  ck_assert_uint_eq(r.app.errors, 1);
  ck_assert_int_eq(r.app.err_fatal[0], 1);
  ck_assert_uint_eq(r.app.fails, 1);
  ck_assert_int_eq(r.app.fail_reason[0], r.app.err_code[0]);
  ck_assert_str_eq(r.app.seq, "error:ECONNREFUSED fail:ECONNREFUSED offline");
  finish(&r);
}
END_TEST

/* Prosody's resumed-parser fault: the resumed stream's first stanza is
 * answered with not-well-formed and the session ends. Retryable: the client
 * reconnects, the server has forgotten the session (<failed/>), a new one
 * starts, and every stanza has its outcome: nothing is left stranded. */
START_TEST(not_well_formed_after_resumption_reconnects_and_strands_nothing) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT("one</body>"),
                                          SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "0")), SCRIPT_EXPECT("one</body>"),
      SCRIPT_SEND(STREAM_ERROR("not-well-formed")), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {
      UNTIL_RESUME,
      SCRIPT_SEND("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='" NS_STANZAS
                  "'/></failed>"),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND(SM_ENABLED), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 3);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  send_body(&r, "one");
  RUN_UNTIL(&r, r.app.onlines >= 2, 10000);
  ck_assert_msg(r.app.onlines == 2, "no new session; seq: %s; statuses: %s", r.app.seq,
                r.app.statuses);
  ck_assert_uint_eq(world_connections(&r, 0), 3);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EEOF, "", 0);
  ASSERT_ERROR(&r.app, 1, XMPPUV_ESTREAM, "not-well-formed", 0);
  ck_assert_uint_eq(r.app.fails, 1);
  ck_assert_int_eq(r.app.fail_reason[0], XMPPUV_ESMFAILED);
  ck_assert_int_eq(xmppuv_client_status(r.c), XMPPUV_STATUS_ONLINE);
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  finish(&r);
}
END_TEST

/* The poison rule, through the client: the server ends the stream on "bad"
 * every time it arrives (policy-violation, as Prosody does for a stanza too
 * big). After three times it fails alone with XMPPUV_EREJECTED; the others
 * are delivered once and acked. */
#define POLICY STREAM_ERROR("policy-violation")
START_TEST(stanza_the_server_ends_the_stream_on_three_times_fails_alone) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, SCRIPT_EXPECT("ok1</body>"), SCRIPT_SEND(SM_A("1")),
      SCRIPT_EXPECT("bad</body>"), SCRIPT_SEND(POLICY), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t again[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "1")),
                                             SCRIPT_EXPECT("bad</body>"), SCRIPT_SEND(POLICY),
                                             SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t last[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "1")),
                                            SCRIPT_EXPECT("ok2</body>"), SCRIPT_SEND(SM_A("2")),
                                            SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, again, again, last};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 4);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  send_body(&r, "ok1");
  send_body(&r, "bad");
  send_body(&r, "ok2");
  RUN_UNTIL(&r, r.app.acks >= 2 && r.app.fails >= 1, 20000);
  ck_assert_msg(r.app.fails == 1 && r.app.acks == 2, "seq: %s", r.app.seq);
  ck_assert_int_eq(r.app.fail_reason[0], XMPPUV_EREJECTED);
  ck_assert_uint_eq(world_connections(&r, 0), 4);
  ck_assert_uint_eq(r.app.onlines, 1);
  ck_assert_uint_eq(r.app.resumes, 3);
  /* Sent three times, never a fourth; ok2 reached the server each time
   * after bad, and once more, alone, on the last connection. */
  for (size_t i = 0; i < 3; i++)
    ck_assert_int_eq(world_count(world_received(&r, 0, i), "bad</body>"), 1);
  ck_assert_ptr_null(strstr(world_received(&r, 0, 3), "bad</body>"));
  ck_assert_int_eq(world_count(world_received(&r, 0, 3), "ok2</body>"), 1);
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), "ok1</body>"), 1);
  for (size_t i = 1; i < 4; i++) ck_assert_ptr_null(strstr(world_received(&r, 0, i), "ok1</body>"));
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  ck_assert_int_eq(xmppuv_client_status(r.c), XMPPUV_STATUS_ONLINE);
  finish(&r);
}
END_TEST

START_TEST(send_refuses_a_stanza_over_max_send_bytes) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.max_send_bytes = 200;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  char body[256];
  memset(body, 'x', 200);
  body[200] = '\0';
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", body, &m), 0);
  ck_assert_int_eq(xmppuv_client_send(r.c, m), XMPPUV_ETOOBIG);
  xmppuv_stanza_unref(m);
  ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  send_body(&r, "small");
  RUN_FOR(&r, 50);
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "xxxxxxxx"));
  ck_assert_ptr_nonnull(strstr(world_received(&r, 0, 0), "small</body>"));
  finish(&r);
}
END_TEST

/* XEP-0478: the server says how big a stanza it takes. */
#define FEATURES_BIND_SM_LIMIT                                              \
  "<stream:features><bind xmlns='" NS_BIND "'/><sm xmlns='urn:xmpp:sm:3'/>"  \
  "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>400</max-bytes>"      \
  "</limits></stream:features>"

START_TEST(a_stanza_over_the_servers_advertised_limit_is_refused_or_failed_unsent) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND_SM_LIMIT), SCRIPT_SEND(BIND_RESULT),
      SCRIPT_EXPECT("<enable "), SCRIPT_SEND(SM_ENABLED), SCRIPT_EXPECT("after</body>"),
      SCRIPT_SEND(SM_A("2")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_client_new(&r, &o);
  ck_assert_int_eq(xmppuv_client_start(r.c), 0);
  char body[512];
  memset(body, 'x', 450);
  body[450] = '\0';
  /* Held before the limit is known: failed unsent once it is. */
  send_body(&r, "before");
  send_body(&r, body);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  ck_assert_uint_eq(r.app.fails, 1);
  ck_assert_int_eq(r.app.fail_reason[0], XMPPUV_ETOOBIG);
  /* Known now: refused at send. */
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", body, &m), 0);
  ck_assert_int_eq(xmppuv_client_send(r.c, m), XMPPUV_ETOOBIG);
  xmppuv_stanza_unref(m);
  send_body(&r, "after");
  RUN_UNTIL(&r, r.app.acks >= 2, 10000);
  ck_assert_uint_eq(r.app.acks, 2);
  ck_assert_uint_eq(r.app.fails, 1);
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "xxxxxxxx"));
  finish(&r);
}
END_TEST

/* ---- a graceful stop reports what was delivered as delivered -------------------- */

START_TEST(stop_asks_for_a_last_ack_and_reports_what_the_server_has_as_acked) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, SCRIPT_EXPECT("two</body>"), SCRIPT_EXPECT("<r "), SCRIPT_SEND(SM_A("2")),
      SCRIPT_EXPECT("</stream:stream>"), SCRIPT_SEND("</stream:stream>"), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.sm_ack_debounce_ms = 0; /* no <r/> but the one stop() asks */
  o.close_timeout_ms = 5000;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  send_body(&r, "one");
  send_body(&r, "two");
  ck_assert_int_eq(xmppuv_client_stop(r.c), 0);
  RUN_UNTIL(&r, r.app.offlines >= 1, 10000);
  ck_assert_str_eq(r.app.seq, "online ack ack offline");
  const char *got = world_received(&r, 0, 0);
  const char *req = strstr(got, "<r ");
  ck_assert_ptr_nonnull(req);
  ck_assert_ptr_nonnull(strstr(req, "</stream:stream>"));
  finish(&r);
}
END_TEST

START_TEST(stop_fails_only_what_is_still_unacked_after_close_timeout) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, SCRIPT_EXPECT("two</body>"), SCRIPT_EXPECT("<r "),
      SCRIPT_EXPECT("</stream:stream>"), SCRIPT_SEND("</stream:stream>"), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.sm_ack_debounce_ms = 0;
  o.close_timeout_ms = 300;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
  send_body(&r, "one");
  send_body(&r, "two");
  uint64_t stop_at = uv_now(&r.loop);
  ck_assert_int_eq(xmppuv_client_stop(r.c), 0);
  RUN_UNTIL(&r, r.app.offlines >= 1, 10000);
  ck_assert_uint_ge(uv_now(&r.loop) - stop_at, 300);
  ck_assert_str_eq(r.app.seq, "online fail:ECANCELED fail:ECANCELED offline");
  finish(&r);
}
END_TEST

/* ---- input in bulk ---------------------------------------------------------------- */

/* Three thousand messages of every length written at once, with <r/> in the
 * middle and at the end: reads of many stanzas, ending anywhere in one. */
#define BULK_N 3000
static char bulk[BULK_N * 420 + 256];

typedef struct bulk_rec {
  unsigned got;
  unsigned out_of_order;
} bulk_rec_t;

static int on_bulk_message(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c;
  bulk_rec_t *b = ud;
  char want[16];
  snprintf(want, sizeof want, "m%u", b->got);
  const char *id = xmppuv_stanza_attr(s, "id");
  if (id == NULL || strcmp(id, want) != 0) b->out_of_order++;
  b->got++;
  return XMPPUV_HANDLED;
}

START_TEST(a_burst_of_stanzas_arrives_whole_in_order_and_counted) {
  size_t len = 0;
  for (unsigned i = 0; i < BULK_N; i++) {
    unsigned body = (i * 37u) % 300u;
    len += (size_t)snprintf(bulk + len, sizeof bulk - len,
                            "<message from='peer@example.com/x' type='chat' id='m%u'>"
                            "<body>%.*s</body></message>%s",
                            i, (int)body,
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
                            i + 1 == BULK_N / 2 || i + 1 == BULK_N ? "<r xmlns='" NS_SM "'/>" : "");
    ck_assert_uint_lt(len, sizeof bulk - 1);
  }
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_SEND(bulk),
                                          SCRIPT_EXPECT("h='1500'"), SCRIPT_EXPECT("h='3000'"),
                                          SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  bulk_rec_t b = {0, 0};
  ck_assert_int_eq(xmppuv_client_handler_add(r.c, "message", NULL, NULL, on_bulk_message, &b, NULL),
                   0);
  RUN_UNTIL(&r, b.got >= BULK_N && strstr(world_received(&r, 0, 0), "h='3000'") != NULL, 20000);
  ck_assert_uint_eq(b.got, BULK_N);
  ck_assert_uint_eq(b.out_of_order, 0);
  /* Each <r/> answered with the count at its place in the stream. */
  const char *got = world_received(&r, 0, 0);
  const char *mid = strstr(got, "h='1500'");
  ck_assert_ptr_nonnull(mid);
  ck_assert_ptr_nonnull(strstr(mid, "h='3000'"));
  ck_assert_str_eq(r.app.seq, "online");
  finish(&r);
}
END_TEST

/* ---- resumption is lenient where it is safe ------------------------------------- */

START_TEST(resumed_without_previd_resumes) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT(RESENT), SCRIPT_CLOSE,
                                          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_RESUME, SCRIPT_SEND("<resumed xmlns='urn:xmpp:sm:3' h='0'/>"),
      SCRIPT_EXPECT(RESENT), SCRIPT_SEND(SM_A("1")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  send_unacked(&r);
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.acks >= 1, 10000);
  ck_assert_str_eq(r.app.seq, "online error:EEOF resumed ack");
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  ck_assert_int_eq(xmppuv_client_status(r.c), XMPPUV_STATUS_ONLINE);
  finish(&r);
}
END_TEST

START_TEST(resumed_naming_another_session_starts_a_new_one_without_a_loop) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT(RESENT), SCRIPT_CLOSE,
                                          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_RESUME, SCRIPT_SEND("<resumed xmlns='urn:xmpp:sm:3' previd='sm-other' h='0'/>"),
      SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 3);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  send_unacked(&r);
  RUN_UNTIL(&r, r.app.onlines >= 2, 10000);
  RUN_FOR(&r, 300);
  ck_assert_str_eq(r.app.seq, "online error:EEOF error:EPROTO fail:ESMFAILED online");
  ck_assert_uint_eq(world_connections(&r, 0), 3);
  ck_assert_ptr_null(strstr(world_received(&r, 0, 2), "<resume "));
  ck_assert_uint_eq(r.app.resumes, 0);
  finish(&r);
}
END_TEST

/* ---- reconnect when the app knows the network changed ---------------------------- */

START_TEST(reconnect_now_resumes_at_once_when_the_connection_went_silent) {
  /* The first connection swallows the message and never answers: the ack
   * timeout (60 s) would notice only much later. */
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT(RESENT), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {RESUME_AND_ACK, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.reconnect_delay_ms = 5000; /* reconnect_now does not wait for it */
  o.reconnect_max_delay_ms = 10000;
  world_start(&r, &o);
  send_unacked(&r);
  RUN_UNTIL(&r, world_script_done(&r, 0, 0), 10000);
  uint64_t asked_at = uv_now(&r.loop);
  ck_assert_int_eq(xmppuv_client_reconnect_now(r.c), 0);
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.acks >= 1, 10000);
  ck_assert_str_eq(r.app.seq, "online resumed ack");
  ck_assert_uint_lt(uv_now(&r.loop) - asked_at, 2000);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  ck_assert_uint_eq(r.app.delay[0], 0);
  ck_assert_uint_eq(r.app.errors, 0);
  /* The old connection was dropped, not closed: no </stream:stream>. */
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "</stream:stream>"));
  finish(&r);
}
END_TEST

START_TEST(reconnect_now_with_nothing_wrong_resumes_without_loss_or_duplicate) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT(RESENT),
                                          SCRIPT_SEND(SM_A("1")), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "1")),
                                          SCRIPT_EXPECT("after</body>"), SCRIPT_SEND(SM_A("2")),
                                          SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  send_unacked(&r);
  RUN_UNTIL(&r, r.app.acks >= 1, 10000);
  ck_assert_int_eq(xmppuv_client_reconnect_now(r.c), 0);
  send_body(&r, "after"); /* held while reconnecting */
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.acks >= 2, 10000);
  ck_assert_str_eq(r.app.seq, "online ack resumed ack");
  ck_assert_ptr_null(strstr(world_received(&r, 0, 1), RESENT));
  ck_assert_int_eq(world_count(world_received(&r, 0, 1), "after</body>"), 1);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  finish(&r);
}
END_TEST

START_TEST(reconnect_now_cuts_short_the_wait_between_attempts) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "0")),
                                          SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  world_init(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&r, 0));
  o.reconnect_delay_ms = 20000;
  o.reconnect_max_delay_ms = 40000;
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.reconnectings >= 1, 10000);
  ck_assert_uint_ge(r.app.delay[0], 10000);
  uint64_t asked_at = uv_now(&r.loop);
  ck_assert_int_eq(xmppuv_client_reconnect_now(r.c), 0);
  RUN_UNTIL(&r, r.app.resumes >= 1, 10000);
  ck_assert_uint_eq(r.app.resumes, 1);
  ck_assert_uint_lt(uv_now(&r.loop) - asked_at, 2000);
  finish(&r);
}
END_TEST

START_TEST(reconnect_now_when_not_started_is_ESTATE) {
  world_t r;
  world_init(&r);
  xmppuv_client_options_t o;
  world_opts(&o, 5222);
  world_client_new(&r, &o);
  ck_assert_int_eq(xmppuv_client_reconnect_now(r.c), XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv_client_reconnect_now(NULL), XMPPUV_EINVAL);
  ck_assert_uint_eq(r.app.connecting, 0);
  finish(&r);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("client_scripted");
  TCase *tc = tcase_create("client_scripted");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, starttls_not_offered_fails_with_ETLSREQUIRED_and_sends_no_credentials);
  tcase_add_test(tc, stream_error_system_shutdown_mid_session_reconnects);
  tcase_add_test(tc, stream_error_conflict_mid_session_is_fatal);
  tcase_add_test(tc, server_closing_the_stream_is_answered_and_the_client_reconnects);
  tcase_add_test(tc, see_other_host_moves_the_client_to_the_named_server);
  tcase_add_test(tc, see_other_host_loop_ends_with_ESEEOTHERHOST);
  tcase_add_test(tc, see_other_host_naming_a_url_opens_no_websocket);
  tcase_add_test(tc, bind_error_cancel_is_fatal_with_EBIND);
  tcase_add_test(tc, bind_error_wait_reconnects);
  tcase_add_test(tc, sasl_not_authorized_is_fatal_without_reconnect);
  tcase_add_test(tc, sasl_temporary_auth_failure_reconnects);
  tcase_add_test(tc, negotiation_timeout_drops_with_ETIMEDOUT_and_reconnects);
  tcase_add_test(tc, reconnect_delays_grow_exponentially_with_jitter_up_to_the_cap);
  tcase_add_test(tc, reconnect_off_goes_offline_after_the_first_failure);
  tcase_add_test(tc, keepalive_without_sm_pings_and_drops_a_silent_server);
  tcase_add_test(tc, send_before_online_is_held_and_delivered_after_online);
  tcase_add_test(tc, send_before_online_with_sm_is_acked_after_online);
  tcase_add_test(tc, send_of_a_non_stanza_is_EINVAL);
  tcase_add_test(tc, bad_options_are_EINVAL);
  tcase_add_test(tc, scram_login_checks_the_server_signature_and_goes_online);
  tcase_add_test(tc, scram_wrong_server_signature_is_fatal_EAUTHSERVER);
  tcase_add_test(tc, scram_low_iteration_count_is_fatal_EAUTHITER);
  tcase_add_test(tc, stop_ends_after_close_timeout_when_the_server_keeps_the_stream_open);
  tcase_add_loop_test(tc, close_from_inside_any_event_ends_cleanly, 0,
                      (int)(sizeof close_events / sizeof close_events[0]));
  tcase_add_test(tc, stop_while_sm_is_being_enabled_does_not_go_online);
  tcase_add_test(tc, iq_timeout_calls_back_once_and_a_late_reply_is_ignored);
  tcase_add_test(tc, iq_cancel_calls_back_once_with_ECANCELED);
  tcase_add_test(tc, iq_reply_from_another_entity_is_not_taken_for_the_answer);
  tcase_add_test(tc, iq_to_the_own_account_accepts_a_reply_without_from);
  tcase_add_test(tc, iq_result_taken_by_the_tracker_is_counted_in_h);
  tcase_add_test(tc, iq_pending_when_resumption_fails_gets_ESMFAILED_at_once);
  tcase_add_test(tc, resume_goes_to_the_location_the_server_gave);
  tcase_add_test(tc, an_unreachable_location_falls_back_to_the_configured_server);
  tcase_add_loop_test(tc, iq_pending_when_a_new_session_replaces_the_old_gets_ESMFAILED_at_once,
                      0, (int)(sizeof no_resume_cases / sizeof no_resume_cases[0]));
  tcase_add_test(tc, sm_import_of_another_accounts_session_is_refused_and_changes_nothing);
  tcase_add_test(tc, sm_import_after_a_refused_blob_loads_the_right_one_and_resumes);
  tcase_add_test(tc, sm_import_without_jid_takes_held_stanzas_but_no_session);
  tcase_add_loop_test(tc, stop_from_inside_any_event_goes_offline, 0,
                      (int)(sizeof close_events / sizeof close_events[0]));
  tcase_add_test(tc, fatal_error_fails_every_stanza_held_with_that_error_after_the_error_event);
  tcase_add_test(tc, giving_up_without_reconnection_fails_what_was_held_with_the_error);
  tcase_add_test(tc, not_well_formed_after_resumption_reconnects_and_strands_nothing);
  tcase_add_test(tc, stanza_the_server_ends_the_stream_on_three_times_fails_alone);
  tcase_add_test(tc, send_refuses_a_stanza_over_max_send_bytes);
  tcase_add_test(tc, a_stanza_over_the_servers_advertised_limit_is_refused_or_failed_unsent);
  tcase_add_test(tc, stop_asks_for_a_last_ack_and_reports_what_the_server_has_as_acked);
  tcase_add_test(tc, stop_fails_only_what_is_still_unacked_after_close_timeout);
  tcase_add_test(tc, a_burst_of_stanzas_arrives_whole_in_order_and_counted);
  tcase_add_test(tc, resumed_without_previd_resumes);
  tcase_add_test(tc, resumed_naming_another_session_starts_a_new_one_without_a_loop);
  tcase_add_test(tc, reconnect_now_resumes_at_once_when_the_connection_went_silent);
  tcase_add_test(tc, reconnect_now_with_nothing_wrong_resumes_without_loss_or_duplicate);
  tcase_add_test(tc, reconnect_now_cuts_short_the_wait_between_attempts);
  tcase_add_test(tc, reconnect_now_when_not_started_is_ESTATE);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
