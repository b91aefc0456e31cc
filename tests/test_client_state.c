/* Client State Indication (XEP-0352) and the stream features, as the app
 * sees them, against the scripted server on loopback (client_world.h):
 * what goes on the wire for each xmppuv_client_set_active() across a new
 * session, a resumption and a change while offline, and nothing at all
 * when the server lacks CSI. The real servers' side (an inactive client
 * gets presence late) is in test_client.c. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"
#include "xmppuv.h"

#define NS_CSI "urn:xmpp:csi:0"
#define INACTIVE "<inactive xmlns='" NS_CSI "'/>"
#define ACTIVE "<active xmlns='" NS_CSI "'/>"
#define FEATURES_BIND_SM_CSI                                                 \
  "<stream:features><bind xmlns='" NS_BIND "'/><sm xmlns='" NS_SM "'/>"      \
  "<csi xmlns='" NS_CSI "'/></stream:features>"
#define UNTIL_RESUME_CSI                                                     \
  UNTIL_AUTH, SCRIPT_SEND(SASL_SUCCESS), SCRIPT_EXPECT("<stream:stream"),    \
      SCRIPT_SEND(HDR FEATURES_BIND_SM_CSI), SCRIPT_EXPECT("<resume ")

static void finish(world_t *w) {
  world_finish(w);
  client_rec_assert_nothing_after_close(&w->app);
  client_rec_assert_transitions(&w->app);
}

/* Run until connection conn of server 0 has run its whole script. */
static void run_script(world_t *w, size_t conn) {
  RUN_UNTIL(w, world_connections(w, 0) > conn && world_script_done(w, 0, conn), 10000);
  ck_assert_msg(world_connections(w, 0) > conn && world_script_done(w, 0, conn),
                "connection %zu did not run its script; statuses: %s", conn, w->app.statuses);
}

START_TEST(the_state_is_sent_restored_on_a_new_session_and_kept_across_a_resumption) {
  /* 0: a new session: the state set before start follows <enabled/>; then
   *    active, inactive (a second `active` sends nothing), and a reset;
   * 1: resumed: the server kept "inactive", nothing is sent; a reset;
   * 2: resumed after the app set "active" while offline: sent; a reset;
   * 3: the resumption fails, a new session (active on the server): the
   *    app's "inactive" is restored. */
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND_SM_CSI), SCRIPT_SEND(BIND_RESULT),
      SCRIPT_EXPECT("<enable "), SCRIPT_SEND(SM_ENABLED), SCRIPT_EXPECT(INACTIVE),
      SCRIPT_EXPECT(ACTIVE), SCRIPT_EXPECT(INACTIVE), SCRIPT_RESET, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME_CSI, SCRIPT_SEND(SM_RESUMED("sm-0", "0")),
                                          SCRIPT_DELAY(200), SCRIPT_RESET, SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {UNTIL_RESUME_CSI, SCRIPT_SEND(SM_RESUMED("sm-0", "0")),
                                          SCRIPT_EXPECT(ACTIVE), SCRIPT_RESET, SCRIPT_END};
  static const xmppuv_test_step_t s3[] = {
      UNTIL_RESUME_CSI,          SCRIPT_SEND("<failed xmlns='" NS_SM "'/>"),
      SCRIPT_EXPECT(NS_BIND),    SCRIPT_SEND(BIND_RESULT),
      SCRIPT_EXPECT("<enable "), SCRIPT_SEND(SM_ENABLED),
      SCRIPT_EXPECT(INACTIVE),   SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2, s3};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 4);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  ck_assert_int_eq(xmppuv_client_is_active(w.c), 1); /* the default */
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 0), 0);
  ck_assert_int_eq(xmppuv_client_is_active(w.c), 0);
  ck_assert_ptr_null(xmppuv_client_stream_features(w.c)); /* no stream yet */
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);

  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_uint_eq(w.app.onlines, 1);
  const xmppuv_stanza_t *f = xmppuv_client_stream_features(w.c);
  ck_assert_ptr_nonnull(f);
  ck_assert_str_eq(xmppuv_stanza_name(f), "features");
  ck_assert_ptr_nonnull(xmppuv_stanza_child(f, "csi", NS_CSI));
  ck_assert_ptr_nonnull(xmppuv_stanza_child(f, "sm", NS_SM));
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 1), 0);
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 1), 0); /* no change: nothing sent */
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 0), 0);
  run_script(&w, 0);

  RUN_UNTIL(&w, w.app.resumes >= 1, 10000);
  ck_assert_uint_eq(w.app.resumes, 1);
  RUN_UNTIL(&w, w.app.reconnectings >= 2, 10000);
  ck_assert(world_script_done(&w, 0, 1));
  /* Offline: remembered, sent after the next resumption. */
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 1), 0);
  run_script(&w, 2);
  ck_assert_uint_eq(w.app.resumes, 2);
  RUN_UNTIL(&w, w.app.reconnectings >= 3, 10000);
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 0), 0);
  run_script(&w, 3);
  RUN_UNTIL(&w, w.app.onlines >= 2, 10000);
  ck_assert_uint_eq(w.app.onlines, 2);
  RUN_FOR(&w, 50);

  /* Exactly what the scripts expected, nothing more. */
  ck_assert_int_eq(world_count(world_received(&w, 0, 0), NS_CSI), 3);
  ck_assert_int_eq(world_count(world_received(&w, 0, 0), ACTIVE), 1);
  ck_assert_int_eq(world_count(world_received(&w, 0, 1), NS_CSI), 0);
  ck_assert_int_eq(world_count(world_received(&w, 0, 2), NS_CSI), 1);
  ck_assert_int_eq(world_count(world_received(&w, 0, 3), NS_CSI), 1);
  /* Nonzas: the server counted no stanza (its <resumed h='0'/> was right,
   * or the client would have failed or resent something). */
  ck_assert_uint_eq(w.app.fails, 0);
  ck_assert_int_eq(xmppuv_client_status(w.c), XMPPUV_STATUS_ONLINE);
  finish(&w);
}
END_TEST

START_TEST(without_csi_on_the_server_nothing_is_sent_and_nothing_breaks) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 0), 0);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_uint_eq(w.app.onlines, 1);
  const xmppuv_stanza_t *f = xmppuv_client_stream_features(w.c);
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_null(xmppuv_stanza_child(f, "csi", NS_CSI));
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 1), 0);
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 0), 0);
  ck_assert_int_eq(xmppuv_client_is_active(w.c), 0);
  RUN_FOR(&w, 100);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), NS_CSI));
  ck_assert_int_eq(xmppuv_client_status(w.c), XMPPUV_STATUS_ONLINE);
  ck_assert_uint_eq(world_connections(&w, 0), 1);
  /* After close: refused, and no features. */
  xmppuv_client_close(w.c, client_rec_close_cb);
  ck_assert_int_eq(xmppuv_client_set_active(w.c, 1), XMPPUV_ECLOSED);
  ck_assert_ptr_null(xmppuv_client_stream_features(w.c));
  finish(&w);
}
END_TEST

START_TEST(null_is_neutral) {
  ck_assert_int_eq(xmppuv_client_set_active(NULL, 0), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_is_active(NULL), 1);
  ck_assert_ptr_null(xmppuv_client_stream_features(NULL));
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("client_state");
  TCase *tc = tcase_create("client_state");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, the_state_is_sent_restored_on_a_new_session_and_kept_across_a_resumption);
  tcase_add_test(tc, without_csi_on_the_server_nothing_is_sent_and_nothing_breaks);
  tcase_add_test(tc, null_is_neutral);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
