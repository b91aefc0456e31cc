/* SASL2 (XEP-0388) as the scripted server sees it (client_world.h): the
 * <authenticate/> with its initial response and user-agent, no stream
 * restart after <success/>, the failure and <continue/> answers, and the
 * option that turns it on. Real servers: test_client.c. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"
#include "xmppuv.h"

#define NS_SASL2 "urn:xmpp:sasl:2"
/* SASL2 and RFC 6120 SASL both offered, PLAIN in each. */
#define FEATURES_BOTH                                                        \
  "<stream:features><authentication xmlns='" NS_SASL2 "'>"                   \
  "<mechanism>PLAIN</mechanism></authentication>"                            \
  "<mechanisms xmlns='" NS_SASL "'><mechanism>PLAIN</mechanism></mechanisms>" \
  "</stream:features>"
#define SASL2_SUCCESS                                                        \
  "<success xmlns='" NS_SASL2 "'>"                                           \
  "<authorization-identifier>alice@localhost</authorization-identifier></success>"
#define UNTIL_AUTHENTICATE                                                   \
  SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BOTH),           \
      SCRIPT_EXPECT("</authenticate>")
#define UA "2f5b6c2e-8a4b-4d3a-9c1e-5e2d7f9a0b13"

static void finish(world_t *w) {
  world_finish(w);
  client_rec_assert_nothing_after_close(&w->app);
  client_rec_assert_transitions(&w->app);
}

/* One scripted server, and the client on it with SASL2 allowed. */
static void start_sasl2(world_t *w, const xmppuv_test_step_t *const *scripts) {
  world_init(w);
  world_server(w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(w, 0));
  o.sasl2 = 1;
  world_start(w, &o);
}

START_TEST(sasl2_authenticates_in_one_element_and_the_stream_goes_on) {
  /* No stream restart: the authenticated features follow <success/> on the
   * same stream, then bind and SM as before. */
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTHENTICATE,        SCRIPT_SEND(SASL2_SUCCESS FEATURES_BIND_SM),
      SCRIPT_EXPECT(NS_BIND),    SCRIPT_SEND(BIND_RESULT),
      SCRIPT_EXPECT("<enable "), SCRIPT_SEND(SM_ENABLED),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.sasl2 = 1;
  o.user_agent_id = UA;
  o.software = "xmppuv tests & co";
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_msg(w.app.onlines == 1, "not online; statuses: %s", w.app.statuses);
  ck_assert(xmppuv_client_sm_enabled(w.c));
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<authenticate xmlns='" NS_SASL2 "' mechanism='PLAIN'>"
                            "<initial-response>AGFsaWNlAGFsaWNlLXNlY3JldA==</initial-response>"
                            "<user-agent id='" UA "'><software>xmppuv tests &amp; co</software>"
                            "</user-agent></authenticate>") != NULL,
                "sent: %s", got);
  ck_assert_int_eq(world_count(got, "<stream:stream"), 1); /* no restart */
  ck_assert_ptr_null(strstr(got, "<auth "));
  ck_assert_str_eq(xmppuv_client_user_agent_id(w.c), UA);
  /* No restart, so no second opening/open. */
  ck_assert_str_eq(w.app.statuses, "connecting connect opening open online");
  finish(&w);
}
END_TEST

START_TEST(without_the_option_rfc6120_sasl_is_used) {
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BOTH), SCRIPT_EXPECT("</auth>"),
      UNTIL_BIND(FEATURES_BIND),       SCRIPT_SEND(BIND_RESULT),        SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  ck_assert_int_eq(o.sasl2, 0); /* the default */
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_uint_eq(w.app.onlines, 1);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "authenticate"));
  finish(&w);
}
END_TEST

START_TEST(a_sasl2_failure_is_the_condition_and_text_and_final) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTHENTICATE,
      SCRIPT_SEND("<failure xmlns='" NS_SASL2 "'><not-authorized xmlns='" NS_SASL "'/>"
                  "<text>wrong password, try again</text></failure>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  start_sasl2(&w, scripts);
  RUN_UNTIL(&w, w.app.offlines >= 1, 10000);
  ck_assert_uint_eq(w.app.errors, 1);
  ck_assert_int_eq(w.app.err_code[0], XMPPUV_EAUTH);
  ck_assert_str_eq(w.app.err_cond[0], "not-authorized");
  ck_assert_str_eq(w.app.err_text[0], "wrong password, try again");
  ck_assert(w.app.err_fatal[0]);
  RUN_FOR(&w, 200);
  ck_assert_uint_eq(world_connections(&w, 0), 1);
  finish(&w);
}
END_TEST

START_TEST(tasks_the_client_cannot_do_end_the_login_and_say_which) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTHENTICATE,
      SCRIPT_SEND("<continue xmlns='" NS_SASL2 "'><additional-data>dj1zZXJ2ZXI=</additional-data>"
                  "<tasks><task>HOTP-EXAMPLE</task><task>UPGR-SCRAM-SHA-256</task></tasks>"
                  "</continue>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  start_sasl2(&w, scripts);
  RUN_UNTIL(&w, w.app.offlines >= 1, 10000);
  ck_assert_uint_eq(w.app.errors, 1);
  ck_assert_int_eq(w.app.err_code[0], XMPPUV_EAUTH);
  ck_assert_str_eq(w.app.err_cond[0], "continue");
  ck_assert_msg(strstr(w.app.err_text[0], "(HOTP-EXAMPLE, UPGR-SCRAM-SHA-256)") != NULL,
                "text: %s", w.app.err_text[0]);
  ck_assert(w.app.err_fatal[0]);
  finish(&w);
}
END_TEST

START_TEST(the_user_agent_id_is_made_once_or_taken_and_checked) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = "alice@localhost";
  o.password = "alice-secret";
  o.log_level = XMPPUV_LOG_NONE;
  xmppuv_client_t *a = NULL, *b = NULL;
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &a), 0);
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &b), 0);
  const char *id = xmppuv_client_user_agent_id(a);
  ck_assert_uint_eq(strlen(id), 36); /* a version 4 UUID */
  ck_assert_int_eq(id[8], '-');
  ck_assert_int_eq(id[14], '4');
  ck_assert_ptr_nonnull(strchr("89ab", id[19]));
  ck_assert_str_eq(xmppuv_client_user_agent_id(a), id); /* the same while it lives */
  ck_assert_str_ne(xmppuv_client_user_agent_id(b), id); /* each its own */
  ck_assert_ptr_null(xmppuv_client_user_agent_id(NULL));
  xmppuv_client_close(a, NULL);
  xmppuv_client_close(b, NULL);
  o.user_agent_id = "";
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), XMPPUV_EINVAL);
  o.user_agent_id = "has space";
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), XMPPUV_EINVAL);
  o.user_agent_id = UA;
  o.software = "";
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), XMPPUV_EINVAL);
  ck_assert_ptr_null(c);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

#define FEATURES_BIND2                                                       \
  "<stream:features><authentication xmlns='" NS_SASL2 "'>"                   \
  "<mechanism>PLAIN</mechanism><inline><bind xmlns='urn:xmpp:bind:0'><inline>" \
  "<feature var='" NS_SM "'/></inline></bind><sm xmlns='" NS_SM "'/></inline>" \
  "</authentication></stream:features>"

START_TEST(bind2_binds_and_enables_sm_in_the_login) {
  /* The features after <success/> still list <bind/> and <sm/>: nothing is
   * bound or enabled twice. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><bound xmlns='urn:xmpp:bind:0'>"
                  "<enabled xmlns='" NS_SM "' id='sm-0' resume='true'/></bound></success>"
                  FEATURES_BIND_SM),
      SCRIPT_EXPECT("bound in"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.sasl2 = 1;
  o.software = "tag";
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_msg(w.app.onlines == 1, "not online; statuses: %s", w.app.statuses);
  ck_assert(xmppuv_client_sm_enabled(w.c));
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(w.c)), "alice@localhost/tag.x1");
  /* A message now is counted and acked under the inline-enabled session. */
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "bound in the login", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(w.c, m), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<bind xmlns='urn:xmpp:bind:0'><tag>tag</tag><enable xmlns='" NS_SM
                            "' resume='true'/></bind></authenticate>") != NULL,
                "sent: %s", got);
  ck_assert_int_eq(world_count(got, "<enable "), 1); /* the inline one only */
  ck_assert_ptr_null(strstr(got, NS_BIND)); /* no bind iq */
  finish(&w);
}
END_TEST

START_TEST(a_requested_resource_is_bound_the_rfc6120_way) {
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2),
      SCRIPT_EXPECT("</authenticate>"), SCRIPT_SEND(SASL2_SUCCESS FEATURES_BIND_SM),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND(SM_ENABLED), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.sasl2 = 1;
  o.resource = "r0";
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_uint_eq(w.app.onlines, 1);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "urn:xmpp:bind:0"));
  finish(&w);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sasl2");
  TCase *tc = tcase_create("sasl2");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, sasl2_authenticates_in_one_element_and_the_stream_goes_on);
  tcase_add_test(tc, without_the_option_rfc6120_sasl_is_used);
  tcase_add_test(tc, a_sasl2_failure_is_the_condition_and_text_and_final);
  tcase_add_test(tc, tasks_the_client_cannot_do_end_the_login_and_say_which);
  tcase_add_test(tc, the_user_agent_id_is_made_once_or_taken_and_checked);
  tcase_add_test(tc, bind2_binds_and_enables_sm_in_the_login);
  tcase_add_test(tc, a_requested_resource_is_bound_the_rfc6120_way);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
