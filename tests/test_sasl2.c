/* SASL2 (XEP-0388) as the scripted server sees it (client_world.h): the
 * <authenticate/> with its initial response and user-agent, no stream
 * restart after <success/>, the failure and <continue/> answers, and the
 * option that turns it on. Real servers: test_client.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "fault_proxy.h"
#include "login_script.h"
#include "tls_front.h"
#include "tls_peer.h"
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

START_TEST(with_the_option_off_rfc6120_sasl_is_used) {
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BOTH), SCRIPT_EXPECT("</auth>"),
      UNTIL_BIND(FEATURES_BIND),       SCRIPT_SEND(BIND_RESULT),        SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  ck_assert_int_eq(o.sasl2, 1); /* the default */
  o.sasl2 = 0;
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

/* ---- inline resumption (XEP-0198 in the SASL2 login) ----------------------------- */

#define NS_BIND2 "urn:xmpp:bind:0"
/* A Bind2 login that binds alice@localhost/tag.xN and enables SM as id. */
#define BIND2_SUCCESS(n, id)                                                  \
  "<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/tag.x" n \
  "</authorization-identifier><bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM \
  "' id='" id "' resume='true'/></bound></success>" FEATURES_BIND_SM
#define INLINE_RESUME "<resume xmlns='" NS_SM "' h='0' previd='sm-0'/>"
/* The first connection: Bind2 login, "one" and "two" arrive, "one" is
 * acked, the connection is cut with "two" unacked. */
#define FIRST_CONNECTION                                                      \
  SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2),           \
      SCRIPT_EXPECT("</authenticate>"), SCRIPT_SEND(BIND2_SUCCESS("1", "sm-0")), \
      SCRIPT_EXPECT("two</body>"), SCRIPT_SEND(SM_A("1")), SCRIPT_DELAY(50),   \
      SCRIPT_CLOSE, SCRIPT_END
#define UNTIL_INLINE_RESUME                                                   \
  SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2),           \
      SCRIPT_EXPECT("</authenticate>")

static void send_body(world_t *w, const char *body) {
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", body, &m), 0);
  ck_assert_int_eq(xmppuv_client_send(w->c, m), 0);
  xmppuv_stanza_unref(m);
}

/* The client online on a Bind2 session, "one" and "two" sent. */
static void online_and_two_sent(world_t *w, const xmppuv_test_step_t *const *scripts,
                                size_t n, int resend) {
  world_init(w);
  world_server(w, 0, scripts, n);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(w, 0));
  o.sasl2 = 1;
  o.software = "tag";
  o.sm_resend_on_failed = resend;
  world_start(w, &o);
  RUN_UNTIL(w, w->app.onlines >= 1, 10000);
  send_body(w, "one");
  send_body(w, "two");
}

#define RESUMED_SUCCESS                                                       \
  "<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"  \
  "tag.x1</authorization-identifier><resumed xmlns='" NS_SM                  \
  "' previd='sm-0' h='1'/></success>"

START_TEST(a_cut_session_resumes_inside_the_login) {
  /* <resume/> rides in <authenticate/> with Bind2 as its fallback; the
   * <success/> says <resumed h/>: "one" was acked before the cut, "two" is
   * resent with its delay stamp, `resumed` (not `online`), no bind iq, no
   * <resume/> or <enable/> of their own. The features follow <success/>
   * (_i 0: XEP-0388, Prosody) or do not (_i 1: ejabberd 24.12 goes on with
   * <r/>): nothing waits for them. */
  static const xmppuv_test_step_t s0[] = {FIRST_CONNECTION};
  static const xmppuv_test_step_t s1_features[] = {
      UNTIL_INLINE_RESUME, SCRIPT_SEND(RESUMED_SUCCESS FEATURES_BIND_SM),
      SCRIPT_EXPECT("two</body>"), SCRIPT_SEND(SM_A("2")), SCRIPT_END};
  static const xmppuv_test_step_t s1_none[] = {
      UNTIL_INLINE_RESUME, SCRIPT_SEND(RESUMED_SUCCESS SM_R), SCRIPT_EXPECT("two</body>"),
      SCRIPT_EXPECT("<a xmlns='" NS_SM "' h='0'/>"), SCRIPT_SEND(SM_A("2")), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, _i == 0 ? s1_features : s1_none};
  world_t w;
  online_and_two_sent(&w, scripts, 2, 0);
  RUN_UNTIL(&w, w.app.resumes >= 1 && w.app.acks >= 2, 10000);
  ck_assert_msg(w.app.resumes == 1, "not resumed; seq: %s; statuses: %s", w.app.seq,
                w.app.statuses);
  ck_assert_uint_eq(w.app.onlines, 1);
  ck_assert_uint_eq(w.app.acks, 2);
  ck_assert_uint_eq(w.app.fails, 0);
  ck_assert_int_eq(w.app.status, XMPPUV_STATUS_ONLINE);
  const char *got = world_received(&w, 0, 1);
  const char *auth = strstr(got, "<authenticate ");
  ck_assert_ptr_nonnull(auth);
  const char *end = strstr(auth, "</authenticate>");
  const char *resume = strstr(auth, INLINE_RESUME);
  ck_assert_msg(resume != NULL && resume < end, "sent: %s", got);
  const char *bind = strstr(auth, "<bind xmlns='" NS_BIND2 "'>");
  ck_assert_msg(bind != NULL && bind < end, "no Bind2 fallback: %s", got);
  ck_assert_int_eq(world_count(got, "<resume "), 1);
  ck_assert_int_eq(world_count(got, "<enable "), 1); /* the fallback's, unused */
  ck_assert_ptr_null(strstr(got, NS_BIND));
  ck_assert_int_eq(world_count(got, "one</body>"), 0);
  ck_assert_int_eq(world_count(got, "two</body>"), 1);
  ck_assert_msg(strstr(got, "<delay xmlns='urn:xmpp:delay' from='alice@localhost/tag.x1'") !=
                    NULL,
                "no delay stamp: %s", got);
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(w.c)), "alice@localhost/tag.x1");
  finish(&w);
}
END_TEST

/* <failed/> in the <success/>, bare (ejabberd) or with an <error/> wrapper
 * (Prosody), and the same <success/> binds a new session with SM on. */
static const char *const failed_forms[] = {
    "<failed xmlns='" NS_SM "' h='1'><item-not-found xmlns='" NS_STANZAS "'/></failed>",
    "<failed xmlns='" NS_SM "' h='1'><error type='cancel'><item-not-found xmlns='" NS_STANZAS
    "'/><text xmlns='" NS_STANZAS "'>Session expired</text></error></failed>",
};

static const char *failed_success(int form) {
  static char buf[2][1024];
  snprintf(buf[form], sizeof buf[form],
           "<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/tag.x2"
           "</authorization-identifier>%s<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
           "' id='sm-1' resume='true'/></bound></success>" FEATURES_BIND_SM,
           failed_forms[form]);
  return buf[form];
}

START_TEST(a_failed_inline_resume_is_a_new_session_in_the_same_round_trip) {
  /* h='1' acks "one"; "two" fails (the default policy) or, with the resend
   * policy, goes out again stamped on the new session; `online` once more,
   * never `resumed`; no bind iq, no <enable/> outside the login. */
  int form = _i % 2, resend = _i / 2;
  /* The new session counts from zero: an <r/> is answered h='0'. */
  xmppuv_test_step_t s1[] = {UNTIL_INLINE_RESUME, SCRIPT_SEND(failed_success(form)),
                             SCRIPT_EXPECT(resend ? "two</body>" : "</authenticate>"),
                             SCRIPT_SEND(SM_A("1")), SCRIPT_SEND(SM_R),
                             SCRIPT_EXPECT("<a xmlns='" NS_SM "' h='0'/>"), SCRIPT_END};
  static const xmppuv_test_step_t s0[] = {FIRST_CONNECTION};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  online_and_two_sent(&w, scripts, 2, resend);
  RUN_UNTIL(&w, w.app.onlines >= 2 && w.app.acks + w.app.fails >= 2, 10000);
  ck_assert_msg(w.app.onlines == 2, "no new session; seq: %s; statuses: %s", w.app.seq,
                w.app.statuses);
  if (resend) RUN_UNTIL(&w, world_script_done(&w, 0, 1), 10000);
  ck_assert_uint_eq(w.app.resumes, 0);
  ck_assert_uint_eq(w.app.acks, resend ? 2 : 1);
  ck_assert_uint_eq(w.app.fails, resend ? 0 : 1);
  if (!resend) ck_assert_int_eq(w.app.fail_reason[0], XMPPUV_ESMFAILED);
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(w.c)), "alice@localhost/tag.x2");
  ck_assert(xmppuv_client_sm_enabled(w.c));
  const char *got = world_received(&w, 0, 1);
  ck_assert_int_eq(world_count(got, "<resume "), 1);
  ck_assert_int_eq(world_count(got, "<enable "), 1);
  ck_assert_ptr_null(strstr(got, NS_BIND));
  ck_assert_int_eq(world_count(got, "two</body>"), resend ? 1 : 0);
  finish(&w);
}
END_TEST

START_TEST(an_inline_resumed_with_too_high_an_h_ends_that_session) {
  /* h='5' of 2 sent: the stream error XEP-0198 §6 says, ESMHIGH, and the
   * next connection starts a new session (nothing to resume: it was
   * forgotten), with Bind2 alone. */
  static const xmppuv_test_step_t s0[] = {FIRST_CONNECTION};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_INLINE_RESUME,
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><resumed xmlns='" NS_SM
                  "' previd='sm-0' h='5'/></success>" FEATURES_BIND_SM),
      SCRIPT_EXPECT("handled-count-too-high"), SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {UNTIL_INLINE_RESUME,
                                          SCRIPT_SEND(BIND2_SUCCESS("3", "sm-2")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  world_t w;
  online_and_two_sent(&w, scripts, 3, 0);
  RUN_UNTIL(&w, w.app.onlines >= 2, 10000);
  ck_assert_msg(w.app.onlines == 2, "seq: %s; statuses: %s", w.app.seq, w.app.statuses);
  ck_assert_uint_eq(w.app.resumes, 0);
  int high = 0;
  for (unsigned i = 0; i < w.app.errors && i < CLIENT_REC_MAX; i++)
    if (w.app.err_code[i] == XMPPUV_ESMHIGH) high++;
  ck_assert_int_eq(high, 1);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 2), "<resume "));
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(w.c)), "alice@localhost/tag.x3");
  /* "two" was never acked: it has its outcome all the same. */
  RUN_UNTIL(&w, w.app.acks + w.app.fails >= 2, 10000);
  ck_assert_uint_eq(w.app.acks, 1);
  ck_assert_uint_eq(w.app.fails, 1);
  finish(&w);
}
END_TEST

START_TEST(an_inline_failed_with_a_junk_h_is_still_a_failed_resumption) {
  /* h='junk' tells nothing, but the answer stands: the new session the
   * same <success/> bound is taken (no protocol error, no resumption asked
   * again and again). */
  static const xmppuv_test_step_t s0[] = {FIRST_CONNECTION};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_INLINE_RESUME,
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x2</authorization-identifier><failed xmlns='" NS_SM "' h='junk'/>"
                  "<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-1' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  online_and_two_sent(&w, scripts, 2, 0);
  RUN_UNTIL(&w, w.app.onlines >= 2 && w.app.acks + w.app.fails >= 2, 10000);
  ck_assert_msg(w.app.onlines == 2, "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.errors, 1); /* the cut only */
  ck_assert_uint_eq(w.app.fails, 1);
  ck_assert_int_eq(w.app.fail_reason[0], XMPPUV_ESMFAILED);
  ck_assert_uint_eq(world_connections(&w, 0), 2);
  finish(&w);
}
END_TEST

START_TEST(an_inline_failed_without_a_bound_session_binds_after_the_login) {
  /* The server did not bind (no <bound/>): the new session is bound and
   * enabled the RFC 6120 way, after the login. */
  static const xmppuv_test_step_t s0[] = {FIRST_CONNECTION};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_INLINE_RESUME,
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost"
                  "</authorization-identifier><failed xmlns='" NS_SM "' h='1'><item-not-found "
                  "xmlns='" NS_STANZAS "'/></failed></success>" FEATURES_BIND_SM),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND(SM_ENABLED_ID("sm-1")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  online_and_two_sent(&w, scripts, 2, 0);
  RUN_UNTIL(&w, w.app.onlines >= 2 && w.app.acks + w.app.fails >= 2, 10000);
  ck_assert_msg(w.app.onlines == 2, "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.acks, 1);
  ck_assert_uint_eq(w.app.fails, 1);
  ck_assert(xmppuv_client_sm_enabled(w.c));
  finish(&w);
}
END_TEST

START_TEST(an_inline_enable_the_server_refuses_leaves_sm_off_without_asking_again) {
  /* <bound><failed/></bound>: bound, SM refused: `online` with SM off, no
   * second <enable/> and no bind iq although the features list both. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><bound xmlns='" NS_BIND2 "'><failed xmlns='"
                  NS_SM "'><internal-server-error xmlns='" NS_STANZAS "'/></failed></bound>"
                  "</success>" FEATURES_BIND_SM),
      SCRIPT_EXPECT("one</body>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert(!xmppuv_client_sm_enabled(w.c));
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(w.c)), "alice@localhost/tag.x1");
  send_body(&w, "one");
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  const char *got = world_received(&w, 0, 0);
  ck_assert_int_eq(world_count(got, "<enable "), 1);
  ck_assert_ptr_null(strstr(got, NS_BIND));
  ck_assert_uint_eq(w.app.errors, 0);
  finish(&w);
}
END_TEST

START_TEST(a_sasl2_offer_with_nothing_usable_is_enomech_and_final) {
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"),
      SCRIPT_SEND(HDR "<stream:features><authentication xmlns='" NS_SASL2
                  "'><mechanism>FOO-BAR</mechanism></authentication></stream:features>"),
      SCRIPT_DELAY(300), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.offlines >= 1, 10000);
  ASSERT_ERROR(&w.app, 0, XMPPUV_ENOMECH, "", 1);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<authenticate"));
  ck_assert_uint_eq(world_connections(&w, 0), 1);
  finish(&w);
}
END_TEST

START_TEST(nothing_usable_in_sasl2_but_rfc6120_sasl_offered_logs_in_that_way) {
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"),
      SCRIPT_SEND(HDR "<stream:features><authentication xmlns='" NS_SASL2
                  "'><mechanism>FOO-BAR</mechanism></authentication><mechanisms xmlns='" NS_SASL
                  "'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"),
      SCRIPT_EXPECT("</auth>"), UNTIL_BIND(FEATURES_BIND), SCRIPT_SEND(BIND_RESULT),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1 || w.app.offlines >= 1, 10000);
  ck_assert_msg(w.app.onlines == 1, "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.errors, 0);
  const char *got = world_received(&w, 0, 0);
  ck_assert_ptr_null(strstr(got, "<authenticate"));
  ck_assert_ptr_nonnull(strstr(got, "<auth xmlns='" NS_SASL "' mechanism='PLAIN'>"));
  finish(&w);
}
END_TEST

/* SASL2 and Bind2 offered, but SM not among SASL2's inline features. */
#define FEATURES_BIND2_NO_INLINE_SM                                          \
  "<stream:features><authentication xmlns='" NS_SASL2 "'>"                   \
  "<mechanism>PLAIN</mechanism><inline><bind xmlns='" NS_BIND2 "'><inline>"  \
  "<feature var='" NS_SM "'/></inline></bind></inline>"                      \
  "</authentication></stream:features>"

START_TEST(without_inline_sm_the_session_resumes_after_the_login) {
  /* The server cannot take <resume/> in the login: no Bind2 either (it
   * would start a new session); the classic <resume/> follows <success/>. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2_NO_INLINE_SM),
      SCRIPT_EXPECT("</authenticate>"), SCRIPT_SEND(BIND2_SUCCESS("1", "sm-0")),
      SCRIPT_EXPECT("two</body>"), SCRIPT_SEND(SM_A("1")), SCRIPT_DELAY(50), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2_NO_INLINE_SM),
      SCRIPT_EXPECT("</authenticate>"), SCRIPT_SEND(SASL2_SUCCESS FEATURES_BIND_SM),
      SCRIPT_EXPECT("<resume "), SCRIPT_SEND(SM_RESUMED("sm-0", "1")),
      SCRIPT_EXPECT("two</body>"), SCRIPT_SEND(SM_A("2")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  online_and_two_sent(&w, scripts, 2, 0);
  RUN_UNTIL(&w, w.app.resumes >= 1 && w.app.acks >= 2, 10000);
  ck_assert_msg(w.app.resumes == 1, "seq: %s; statuses: %s", w.app.seq, w.app.statuses);
  const char *got = world_received(&w, 0, 1);
  const char *auth_end = strstr(got, "</authenticate>");
  ck_assert_ptr_nonnull(auth_end);
  ck_assert_msg(strstr(got, "<resume ") > auth_end, "sent: %s", got);
  ck_assert_ptr_null(strstr(got, NS_BIND2));
  finish(&w);
}
END_TEST

START_TEST(sm_listed_twice_is_enabled_once) {
  /* Duplicated <sm/> entries in the features, after a Bind2 login that
   * enabled inline (_i 0) and after an RFC 6120 bind (_i 1). */
#define SM_TWICE                                                             \
  "<stream:features><bind xmlns='" NS_BIND "'/><sm xmlns='" NS_SM "'/>"     \
  "<sm xmlns='" NS_SM "'/><sm xmlns='urn:xmpp:sm:3'><optional/></sm></stream:features>"
  static const xmppuv_test_step_t bind2[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><bound xmlns='" NS_BIND2
                  "'><enabled xmlns='" NS_SM "' id='sm-0' resume='true'/></bound></success>"
                  SM_TWICE),
      SCRIPT_EXPECT("one</body>"), SCRIPT_SEND(SM_A("1")), SCRIPT_END};
  static const xmppuv_test_step_t classic[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_PLAIN),
      SCRIPT_EXPECT("</auth>"), SCRIPT_SEND(SASL_SUCCESS),
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR SM_TWICE),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND(SM_ENABLED), SCRIPT_EXPECT("one</body>"), SCRIPT_SEND(SM_A("1")),
      SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {_i == 0 ? bind2 : classic};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.sasl2 = _i == 0;
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  send_body(&w, "one");
  RUN_UNTIL(&w, w.app.acks >= 1, 10000);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  const char *got = world_received(&w, 0, 0);
  ck_assert_int_eq(world_count(got, "<enable "), 1);
  ck_assert_int_eq(world_count(got, "<bind "), 1);
  ck_assert_uint_eq(w.app.onlines, 1);
  ck_assert_uint_eq(w.app.errors, 0);
  finish(&w);
}
END_TEST

/* ---- FAST (XEP-0484) ------------------------------------------------------------ */

#define NS_FAST "urn:xmpp:fast:0"
/* SASL2 with PLAIN, Bind2 and SM inline, and FAST with two HT mechanisms
 * (on plaintext loopback only -NONE can be used: no channel binding). */
#define FEATURES_FAST                                                        \
  "<stream:features><authentication xmlns='" NS_SASL2 "'>"                   \
  "<mechanism>PLAIN</mechanism><inline><bind xmlns='" NS_BIND2 "'><inline>"  \
  "<feature var='" NS_SM "'/></inline></bind><sm xmlns='" NS_SM "'/>"        \
  "<fast xmlns='" NS_FAST "'><mechanism>HT-SHA-256-EXPR</mechanism>"         \
  "<mechanism>HT-SHA-256-NONE</mechanism></fast></inline>"                   \
  "</authentication></stream:features>"
/* base64("alice" NUL HMAC-SHA-256(token, "Initiator")) and
 * base64(HMAC-SHA-256(token, "Responder")), computed apart (Python's hmac). */
#define TOK1_INITIATOR "YWxpY2UAo39mHwNSLklbhtZ4bUvgmM3EztrP6rJyaJwvUkovZDU="
#define TOK1_RESPONDER "8DPwl36tuB/9gwSUYjpqi3cDxCwubACBqIfRVF80dXg="
#define TOK2_INITIATOR "YWxpY2UAmt9K0eOHnDbCn/9jLVFHlRgPp+3jk0/3IsyKE0+Gjcc="
#define TOK2_RESPONDER "CKoAthuYSJm26XRmwz6SUY8nDj3d9BOjkEwQg1DVu98="
#define TOKEN_EL(t) "<token xmlns='" NS_FAST "' token='" t "' expiry='2026-12-31T00:00:00Z'/>"
#define FAST_AUTH(init)                                                       \
  "<authenticate xmlns='" NS_SASL2 "' mechanism='HT-SHA-256-NONE'><initial-response>" init \
  "</initial-response>"

/* Everything the client logs, to look for secrets in. */
typedef struct logbuf {
  char text[65536];
  size_t len;
  int echo; /* and to stderr (XMPPUV_TEST_LOG) */
} logbuf_t;

static void to_logbuf(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  logbuf_t *b = ud;
  if (b->echo) world_log(NULL, level, area, msg);
  (void)level;
  int n = snprintf(b->text + b->len, sizeof b->text - b->len, "%s: %s\n", area, msg);
  if (n > 0) b->len += (size_t)n < sizeof b->text - b->len ? (size_t)n : sizeof b->text - b->len - 1;
}

static logbuf_t fast_log;

/* The client with FAST on (the default), tracing into fast_log. */
static void start_fast(world_t *w, const xmppuv_test_step_t *const *scripts, size_t n,
                       const char *token) {
  world_init(w);
  world_server(w, 0, scripts, n);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(w, 0));
  ck_assert_int_eq(o.fast, 1); /* the default */
  o.user_agent_id = UA;
  o.fast_token = token;
  o.fast_mechanism = token != NULL ? "HT-SHA-256-NONE" : NULL;
  memset(&fast_log, 0, sizeof fast_log);
  o.log_cb = to_logbuf;
  o.log_user_data = &fast_log;
  o.log_level = XMPPUV_LOG_TRACE;
  fast_log.echo = getenv("XMPPUV_TEST_LOG") != NULL;
  world_start(w, &o);
}

START_TEST(a_password_login_gets_a_token_and_the_reconnection_uses_it) {
  /* The first login asks for a token (the one HT mechanism usable here);
   * the cut session comes back with the token alone (no PLAIN), resumed
   * inline, and the server's rotation replaces the token. The app hears of
   * both tokens; neither reaches a log line or the SM export. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'>" TOKEN_EL("tok-1")
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_EXPECT("two</body>"), SCRIPT_SEND(SM_A("1")), SCRIPT_DELAY(50), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'>" TOKEN_EL("tok-2")
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<additional-data>" TOK1_RESPONDER "</additional-data><resumed xmlns='" NS_SM
                  "' previd='sm-0' h='1'/></success>" FEATURES_BIND_SM),
      SCRIPT_EXPECT("two</body>"), SCRIPT_SEND(SM_A("2")), SCRIPT_DELAY(50), SCRIPT_CLOSE,
      SCRIPT_END};
  /* And the rotated token works for the next one. */
  static const xmppuv_test_step_t s2[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT(FAST_AUTH(TOK2_INITIATOR)), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><additional-data>" TOK2_RESPONDER
                  "</additional-data><resumed xmlns='" NS_SM "' previd='sm-0' h='2'/></success>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  world_t w;
  start_fast(&w, scripts, 3, NULL);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_uint_eq(w.app.tokens, 1);
  ck_assert_str_eq(w.app.token, "tok-1");
  ck_assert_str_eq(w.app.token_mech, "HT-SHA-256-NONE");
  ck_assert_str_eq(w.app.token_expiry, "2026-12-31T00:00:00Z");
  send_body(&w, "one");
  send_body(&w, "two");
  RUN_UNTIL(&w, w.app.resumes >= 2, 10000);
  ck_assert_msg(w.app.resumes == 2, "seq: %s; statuses: %s", w.app.seq, w.app.statuses);
  ck_assert_uint_eq(w.app.onlines, 1);
  ck_assert_uint_eq(w.app.errors, 2); /* the two cuts */
  ck_assert_uint_eq(w.app.acks, 2);
  ck_assert_uint_eq(w.app.tokens, 2);
  ck_assert_str_eq(w.app.token, "tok-2");
  const char *first = world_received(&w, 0, 0);
  ck_assert_msg(strstr(first, "<request-token xmlns='" NS_FAST
                              "' mechanism='HT-SHA-256-NONE'/>") != NULL,
                "sent: %s", first);
  for (size_t i = 1; i < 3; i++) {
    const char *got = world_received(&w, 0, i);
    ck_assert_ptr_null(strstr(got, "PLAIN"));
    ck_assert_ptr_null(strstr(got, "request-token"));
    ck_assert_int_eq(world_count(got, "<fast xmlns='" NS_FAST "'/>"), 1);
    ck_assert_msg(strstr(got, "<user-agent id='" UA "'") != NULL, "sent: %s", got);
  }
  /* Credentials: never in a log line, never in the exported state. */
  ck_assert_ptr_nonnull(strstr(fast_log.text, "wire-in"));
  ck_assert_ptr_null(strstr(fast_log.text, "tok-1"));
  ck_assert_ptr_null(strstr(fast_log.text, "tok-2"));
  ck_assert_ptr_null(strstr(fast_log.text, TOK1_INITIATOR));
  char *blob = NULL;
  size_t blob_len = 0;
  ck_assert_int_eq(xmppuv_client_sm_export(w.c, &blob, &blob_len), 0);
  ck_assert_ptr_null(memmem(blob, blob_len, "tok-", 4));
  xmppuv_free(blob);
  finish(&w);
}
END_TEST

START_TEST(a_rejected_token_falls_back_to_the_password_on_the_same_stream) {
  /* A token from the options (an earlier run), rejected (_i 0: expired;
   * _i 1: the server bound it to another user-agent id): the app hears
   * XMPPUV_ETOKEN (not fatal) and loses the token, and the login goes on
   * with the password on the same connection, asking for a new token. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<failure xmlns='" NS_SASL2 "'><credentials-expired xmlns='" NS_SASL
                  "'/></failure>"),
      SCRIPT_EXPECT("mechanism='PLAIN'"), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'>" TOKEN_EL("tok-2")
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_END};
  static const xmppuv_test_step_t s0_ua[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)), SCRIPT_EXPECT("<user-agent id='" UA "'>"),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<failure xmlns='" NS_SASL2 "'><not-authorized xmlns='" NS_SASL
                  "'/><text xmlns='" NS_SASL2 "'>token of another client</text></failure>"),
      SCRIPT_EXPECT("mechanism='PLAIN'"), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'>" TOKEN_EL("tok-2")
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {_i == 0 ? s0 : s0_ua};
  world_t w;
  start_fast(&w, scripts, 1, "tok-1");
  RUN_UNTIL(&w, w.app.onlines >= 1 || w.app.offlines >= 1, 10000);
  ck_assert_msg(w.app.onlines == 1, "seq: %s; statuses: %s", w.app.seq, w.app.statuses);
  ck_assert_uint_eq(world_connections(&w, 0), 1);
  ck_assert_uint_eq(w.app.errors, 1);
  ASSERT_ERROR(&w.app, 0, XMPPUV_ETOKEN, _i == 0 ? "credentials-expired" : "not-authorized", 0);
  ck_assert_msg(strstr(w.app.err_text[0], "logging in with the password") != NULL, "%s",
                w.app.err_text[0]);
  /* Forgotten first, then the new one. */
  ck_assert_msg(strstr(w.app.seq, "error:ETOKEN token:none") != NULL &&
                    strstr(w.app.seq, "token:none") < strstr(w.app.seq, " token "),
                "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.tokens, 2);
  ck_assert_str_eq(w.app.token, "tok-2");
  const char *got = world_received(&w, 0, 0);
  ck_assert_int_eq(world_count(got, "<authenticate "), 2);
  ck_assert_int_eq(world_count(got, "<request-token "), 1);
  finish(&w);
}
END_TEST

static int give_token(xmppuv_client_t *c, char *token, size_t token_size, char *mech,
                      size_t mech_size, void *ud) {
  (void)c;
  int *calls = ud;
  ++*calls;
  snprintf(token, token_size, "tok-1");
  snprintf(mech, mech_size, "HT-SHA-256-NONE");
  return 0;
}

START_TEST(a_token_whose_mechanism_is_not_offered_waits_and_the_password_logs_in) {
  /* The token is bound to HT-SHA-256-NONE; this server lists only -EXPR
   * (which plaintext cannot bind): the password logs in, no ETOKEN, the
   * token is kept (another connection may offer its mechanism again), and
   * no token is asked for (no usable mechanism). */
#define FEATURES_FAST_EXPR_ONLY                                              \
  "<stream:features><authentication xmlns='" NS_SASL2 "'>"                   \
  "<mechanism>PLAIN</mechanism><inline><fast xmlns='" NS_FAST "'>"           \
  "<mechanism>HT-SHA-256-EXPR</mechanism></fast></inline>"                   \
  "</authentication><bind xmlns='" NS_BIND "'/></stream:features>"
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST_EXPR_ONLY),
      SCRIPT_EXPECT("mechanism='PLAIN'"), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND(SASL2_SUCCESS FEATURES_BIND_SM), SCRIPT_EXPECT(NS_BIND),
      SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "), SCRIPT_SEND(SM_ENABLED),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  start_fast(&w, scripts, 1, "tok-1");
  RUN_UNTIL(&w, w.app.onlines >= 1 || w.app.offlines >= 1, 10000);
  ck_assert_msg(w.app.onlines == 1, "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.errors, 0);
  ck_assert_uint_eq(w.app.tokens, 0);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "request-token"));
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<fast"));
  finish(&w);
}
END_TEST

START_TEST(the_token_callback_is_asked_at_start_when_the_client_has_none) {
  /* No password at all: the token is the only credential. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><additional-data>" TOK1_RESPONDER
                  "</additional-data><bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.password = NULL;
  int calls = 0;
  o.fast_token_cb = give_token;
  o.fast_token_user_data = &calls;
  world_start(&w, &o);
  ck_assert_int_eq(calls, 1);
  RUN_UNTIL(&w, w.app.onlines >= 1 || w.app.offlines >= 1, 10000);
  ck_assert_msg(w.app.onlines == 1, "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.errors, 0);
  ck_assert_uint_eq(w.app.tokens, 0); /* none new */
  ck_assert_int_eq(calls, 1);
  finish(&w);
}
END_TEST

START_TEST(a_server_that_cannot_prove_the_token_is_refused) {
  /* The server's HT answer is wrong (it does not know the token): the
   * login is refused as for a bad SCRAM signature. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><additional-data>" TOK2_RESPONDER
                  "</additional-data></success>" FEATURES_BIND_SM),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  start_fast(&w, scripts, 1, "tok-1");
  RUN_UNTIL(&w, w.app.errors >= 1, 10000);
  ck_assert_int_eq(w.app.err_code[0], XMPPUV_EAUTHSERVER);
  ck_assert_uint_eq(w.app.onlines, 0);
  finish(&w);
}
END_TEST

START_TEST(bad_fast_options_are_refused) {
  world_t w;
  world_init(&w);
  xmppuv_client_options_t o;
  world_opts(&o, 5222);
  xmppuv_client_t *c = NULL;
  o.fast_token = "tok";
  ck_assert_int_eq(xmppuv_client_new(&w.loop, &o, NULL, NULL, &c), XMPPUV_EINVAL);
  o.fast_mechanism = "SCRAM-SHA-1";
  ck_assert_int_eq(xmppuv_client_new(&w.loop, &o, NULL, NULL, &c), XMPPUV_EINVAL);
  o.fast_mechanism = "HT-SHA-256-NONE";
  o.fast_token = "";
  ck_assert_int_eq(xmppuv_client_new(&w.loop, &o, NULL, NULL, &c), XMPPUV_EINVAL);
  o.fast_token = "tok";
  ck_assert_int_eq(xmppuv_client_new(&w.loop, &o, NULL, NULL, &c), 0);
  xmppuv_client_close(c, NULL);
  world_finish(&w);
}
END_TEST

/* ---- one-flight reconnection --------------------------------------------------- */

START_TEST(a_reconnection_sends_header_and_login_in_one_flight) {
  /* After a SASL2 login, the next connection does not wait for the
   * server's features: the server here takes the whole <authenticate/>
   * (FAST token, inline <resume/>, Bind2) before it sends its header. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'>" TOKEN_EL("tok-1")
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_EXPECT("one</body>"), SCRIPT_DELAY(50), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)),
      SCRIPT_EXPECT(INLINE_RESUME), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND(HDR FEATURES_FAST "<success xmlns='" NS_SASL2 "'>"
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<additional-data>" TOK1_RESPONDER "</additional-data><resumed xmlns='" NS_SM
                  "' previd='sm-0' h='0'/></success>"),
      SCRIPT_EXPECT("one</body>"), SCRIPT_SEND(SM_A("1")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  start_fast(&w, scripts, 2, NULL);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  send_body(&w, "one");
  RUN_UNTIL(&w, w.app.resumes >= 1 && w.app.acks >= 1, 10000);
  ck_assert_msg(w.app.resumes == 1, "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.errors, 1); /* the cut */
  ck_assert_ptr_nonnull(strstr(fast_log.text, "one-flight login"));
  finish(&w);
}
END_TEST

/* The proxy whose client flights the next test counts, and their number at
 * `resumed`. */
static xmppuv_test_proxy_t *counted;
static unsigned long flights_at_resumed;

static void note_flights(client_rec_t *r, xmppuv_client_t *c, const char *event) {
  (void)r, (void)c;
  if (strcmp(event, "resumed") != 0 || counted == NULL) return;
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(counted, &st);
  flights_at_resumed = st.latest_client_flights;
}

START_TEST(a_resumed_tls_session_and_one_flight_make_a_reconnection_two_flights) {
  /* Direct TLS through an mbedTLS front that keeps sessions, a proxy in
   * front of it counting the client's flights: the reconnection resumes
   * the TLS session (ClientHello; then its Finished with the stream header
   * and the FAST <authenticate/>) and the XMPP session: 2 flights. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><additional-data>" TOK1_RESPONDER
                  "</additional-data><bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_DELAY(50), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND(HDR FEATURES_FAST "<success xmlns='" NS_SASL2 "'>"
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<additional-data>" TOK1_RESPONDER "</additional-data><resumed xmlns='" NS_SM
                  "' previd='sm-0' h='0'/></success>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 2);
  static tls_front_t front;
  tls_front_start(&front, &w.loop, world_port(&w, 0));
  xmppuv_test_proxy_t *proxy = NULL;
  ck_assert_int_eq(xmppuv_test_proxy_start(&w.loop, "127.0.0.1", front.port, &proxy), 0);
  xmppuv_client_options_t o;
  world_opts(&o, xmppuv_test_proxy_port(proxy));
  o.tls = XMPPUV_TLS_DIRECT;
  o.ca_file = tls_cert_path(1, "ca.pem");
  o.fast_token = "tok-1";
  o.fast_mechanism = "HT-SHA-256-NONE";
  memset(&fast_log, 0, sizeof fast_log);
  fast_log.echo = getenv("XMPPUV_TEST_LOG") != NULL;
  o.log_cb = to_logbuf;
  o.log_user_data = &fast_log;
  o.log_level = XMPPUV_LOG_DEBUG;
  counted = proxy;
  w.app.on_event = note_flights;
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.resumes >= 1 || w.app.offlines >= 1, 10000);
  counted = NULL;
  ck_assert_msg(w.app.resumes == 1, "seq: %s", w.app.seq);
  ck_assert_msg(strstr(fast_log.text, "(session resumed)") != NULL, "%s", fast_log.text);
  ck_assert_uint_eq(flights_at_resumed, 2);
  xmppuv_test_proxy_close(proxy, NULL, NULL);
  tls_front_close(&front);
  finish(&w);
  tls_front_free(&front);
}
END_TEST

/* The HT mechanism asked for binds to the channel only where the server
 * can: ejabberd 24.12 over a WebSocket lists HT-SHA-256-EXPR while its
 * session cannot see the TLS underneath (no -PLUS, no XEP-0440 list), and a
 * token bound to it would never work. _i 0: such an offer: -NONE; 1: the
 * server lists tls-exporter (XEP-0440): -EXPR; 2: no list but SCRAM -PLUS
 * on offer: -EXPR. Over direct TLS through the TLS front (TLS 1.2 and 1.3
 * give tls-exporter). */
START_TEST(a_token_binds_to_the_channel_only_where_the_server_can) {
#define FAST_OFFER(extra_mech, extra)                                             \
  "<stream:features><authentication xmlns='" NS_SASL2 "'>"                         \
  "<mechanism>PLAIN</mechanism>" extra_mech "<inline><bind xmlns='" NS_BIND2 "'/>" \
  "<fast xmlns='" NS_FAST "'><mechanism>HT-SHA-256-EXPR</mechanism>"               \
  "<mechanism>HT-SHA-256-NONE</mechanism></fast></inline></authentication>" extra  \
  "</stream:features>"
  static const char *const offers[] = {
      FAST_OFFER("", ""),
      FAST_OFFER("", "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding "
                     "type='tls-exporter'/></sasl-channel-binding>"),
      FAST_OFFER("<mechanism>SCRAM-SHA-1-PLUS</mechanism>", ""),
  };
#undef FAST_OFFER
  static const char *const want[] = {"HT-SHA-256-NONE", "HT-SHA-256-EXPR", "HT-SHA-256-EXPR"};
  xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(NULL), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<failure xmlns='" NS_SASL2 "'><not-authorized xmlns='"
                  "urn:ietf:params:xml:ns:xmpp-sasl'/></failure>"),
      SCRIPT_END};
  char header_and_offer[2048];
  snprintf(header_and_offer, sizeof header_and_offer, "%s%s", HDR, offers[_i]);
  s0[1] = (xmppuv_test_step_t)SCRIPT_SEND(header_and_offer);
  const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  static tls_front_t front;
  tls_front_start(&front, &w.loop, world_port(&w, 0));
  xmppuv_client_options_t o;
  world_opts(&o, front.port);
  o.tls = XMPPUV_TLS_DIRECT;
  o.ca_file = tls_cert_path(1, "ca.pem");
  o.sasl_mechanisms = "PLAIN";
  o.reconnect = 0;
  world_start(&w, &o);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  char expect[160];
  snprintf(expect, sizeof expect, "<request-token xmlns='" NS_FAST "' mechanism='%s'/>",
           want[_i]);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, expect) != NULL, "case %d sent: %s", _i, got);
  tls_front_close(&front);
  finish(&w);
  tls_front_free(&front);
}
END_TEST

START_TEST(a_changed_offer_after_a_one_flight_login_reconnects_the_long_way) {
  /* The server's features no longer offer FAST (another configuration):
   * the one-flight login cannot stand; the client connects again at once
   * and logs in from the new features, with no error for the app. */
#define FEATURES_NO_FAST                                                     \
  "<stream:features><authentication xmlns='" NS_SASL2 "'>"                   \
  "<mechanism>PLAIN</mechanism><inline><bind xmlns='" NS_BIND2 "'><inline>"  \
  "<feature var='" NS_SM "'/></inline></bind><sm xmlns='" NS_SM "'/></inline>" \
  "</authentication></stream:features>"
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'>" TOKEN_EL("tok-1")
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_DELAY(50), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      SCRIPT_EXPECT("</authenticate>"), SCRIPT_SEND(HDR FEATURES_NO_FAST), SCRIPT_DELAY(500),
      SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_NO_FAST),
      SCRIPT_EXPECT("mechanism='PLAIN'"), SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'><authorization-identifier>alice@localhost/"
                  "tag.x1</authorization-identifier><resumed xmlns='" NS_SM
                  "' previd='sm-0' h='0'/></success>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  world_t w;
  start_fast(&w, scripts, 3, NULL);
  RUN_UNTIL(&w, w.app.resumes >= 1 || w.app.offlines >= 1, 10000);
  ck_assert_msg(w.app.resumes == 1, "seq: %s", w.app.seq);
  ck_assert_uint_eq(world_connections(&w, 0), 3);
  ck_assert_uint_eq(w.app.errors, 1); /* the cut only */
  ck_assert_msg(strstr(fast_log.text, "login offer changed") != NULL, "%s", fast_log.text);
  /* The token is kept: the server may offer FAST again. */
  ck_assert_uint_eq(w.app.tokens, 1);
  finish(&w);
}
END_TEST

/* ---- logging out ------------------------------------------------------------------ */

START_TEST(logout_invalidates_the_token_on_the_server_then_goes_offline) {
  /* After the stop, one more connection logs in with the token and
   * invalidate='true', binds nothing, asks for no token, and closes; the
   * app is told to forget the token. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_FAST),
      SCRIPT_EXPECT("</authenticate>"),
      SCRIPT_SEND("<success xmlns='" NS_SASL2 "'>" TOKEN_EL("tok-1")
                  "<authorization-identifier>alice@localhost/tag.x1</authorization-identifier>"
                  "<bound xmlns='" NS_BIND2 "'><enabled xmlns='" NS_SM
                  "' id='sm-0' resume='true'/></bound></success>" FEATURES_BIND_SM),
      SCRIPT_EXPECT("</stream:stream>"), SCRIPT_SEND("</stream:stream>"), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_EXPECT(FAST_AUTH(TOK1_INITIATOR)),
      SCRIPT_EXPECT("<fast xmlns='" NS_FAST "' invalidate='true'/></authenticate>"),
      SCRIPT_SEND(HDR FEATURES_FAST "<success xmlns='" NS_SASL2 "'>"
                  "<authorization-identifier>alice@localhost</authorization-identifier>"
                  "<additional-data>" TOK1_RESPONDER "</additional-data></success>"
                  "<stream:features/>"),
      SCRIPT_EXPECT("</stream:stream>"), SCRIPT_SEND("</stream:stream>"), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  start_fast(&w, scripts, 2, NULL);
  RUN_UNTIL(&w, w.app.onlines >= 1 && w.app.tokens >= 1, 10000);
  ck_assert_int_eq(xmppuv_client_logout(w.c), 0);
  RUN_UNTIL(&w, w.app.offlines >= 1, 10000);
  ck_assert_msg(w.app.tokens == 2 && w.app.token[0] == '\0', "seq: %s", w.app.seq);
  ck_assert_uint_eq(w.app.errors, 0);
  ck_assert_uint_eq(world_connections(&w, 0), 2);
  RUN_UNTIL(&w, world_script_done(&w, 0, 1), 10000);
  const char *got = world_received(&w, 0, 1);
  ck_assert_ptr_null(strstr(got, NS_BIND2));
  ck_assert_ptr_null(strstr(got, "<resume "));
  ck_assert_ptr_null(strstr(got, "request-token"));
  ck_assert_ptr_null(strstr(got, NS_BIND));
  /* Down once, up for the invalidation without `online`, down to offline
   * at the very end. */
  ck_assert_int_eq(world_count(w.app.statuses, "offline"), 1);
  ck_assert_msg(strcmp(strrchr(w.app.statuses, ' ') + 1, "offline") == 0, "%s",
                w.app.statuses);
  ck_assert_uint_eq(w.app.onlines, 1);
  finish(&w);
}
END_TEST

/* ---- downgrades between connections -------------------------------------------- */

START_TEST(a_server_that_drops_sasl2_is_a_warning_or_refused) {
  /* The features change between connections: SASL2 with Bind2 first, then
   * only RFC 6120 SASL. By default the login goes on the RFC 6120 way (a
   * server may be reconfigured) with a warning in the log; with
   * downgrade_fatal it is refused (XMPPUV_EDOWNGRADED, fatal): someone
   * may be stripping the offer. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND2),
      SCRIPT_EXPECT("</authenticate>"), SCRIPT_SEND(BIND2_SUCCESS("1", "sm-0")),
      SCRIPT_DELAY(50), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1_go_on[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_PLAIN),
      SCRIPT_EXPECT("</auth>"), SCRIPT_SEND(SASL_SUCCESS),
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND_SM),
      SCRIPT_EXPECT("<resume "), SCRIPT_SEND(SM_RESUMED("sm-0", "0")), SCRIPT_END};
  static const xmppuv_test_step_t s1_refuse[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_PLAIN), SCRIPT_DELAY(300),
      SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, _i == 0 ? s1_go_on : s1_refuse};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  ck_assert_int_eq(o.downgrade_fatal, 0); /* the default */
  o.downgrade_fatal = _i;
  memset(&fast_log, 0, sizeof fast_log);
  o.log_cb = to_logbuf;
  o.log_user_data = &fast_log;
  o.log_level = XMPPUV_LOG_WARN;
  world_start(&w, &o);
  if (_i == 0) {
    RUN_UNTIL(&w, w.app.resumes >= 1, 10000);
    ck_assert_msg(w.app.resumes == 1, "seq: %s", w.app.seq);
    ck_assert_msg(strstr(fast_log.text, "possible downgrade: the server offered SASL2 before") !=
                      NULL,
                  "log: %s", fast_log.text);
  } else {
    RUN_UNTIL(&w, w.app.offlines >= 1, 10000);
    ck_assert_uint_eq(w.app.onlines, 1);
    ck_assert_uint_eq(w.app.resumes, 0);
    ASSERT_ERROR(&w.app, w.app.errors - 1, XMPPUV_EDOWNGRADED, "", 1);
    ck_assert_ptr_null(strstr(world_received(&w, 0, 1), "<auth"));
    ck_assert_uint_eq(world_connections(&w, 0), 2); /* no retry */
  }
  finish(&w);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sasl2");
  TCase *tc = tcase_create("sasl2");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, sasl2_authenticates_in_one_element_and_the_stream_goes_on);
  tcase_add_test(tc, with_the_option_off_rfc6120_sasl_is_used);
  tcase_add_test(tc, a_sasl2_failure_is_the_condition_and_text_and_final);
  tcase_add_test(tc, tasks_the_client_cannot_do_end_the_login_and_say_which);
  tcase_add_test(tc, the_user_agent_id_is_made_once_or_taken_and_checked);
  tcase_add_test(tc, bind2_binds_and_enables_sm_in_the_login);
  tcase_add_test(tc, a_requested_resource_is_bound_the_rfc6120_way);
  tcase_add_loop_test(tc, a_cut_session_resumes_inside_the_login, 0, 2);
  tcase_add_loop_test(tc, a_failed_inline_resume_is_a_new_session_in_the_same_round_trip, 0, 4);
  tcase_add_test(tc, an_inline_resumed_with_too_high_an_h_ends_that_session);
  tcase_add_test(tc, without_inline_sm_the_session_resumes_after_the_login);
  tcase_add_test(tc, an_inline_failed_with_a_junk_h_is_still_a_failed_resumption);
  tcase_add_test(tc, an_inline_failed_without_a_bound_session_binds_after_the_login);
  tcase_add_test(tc, an_inline_enable_the_server_refuses_leaves_sm_off_without_asking_again);
  tcase_add_test(tc, a_sasl2_offer_with_nothing_usable_is_enomech_and_final);
  tcase_add_test(tc, nothing_usable_in_sasl2_but_rfc6120_sasl_offered_logs_in_that_way);
  tcase_add_test(tc, a_token_whose_mechanism_is_not_offered_waits_and_the_password_logs_in);
  tcase_add_loop_test(tc, sm_listed_twice_is_enabled_once, 0, 2);
  tcase_add_test(tc, a_password_login_gets_a_token_and_the_reconnection_uses_it);
  tcase_add_loop_test(tc, a_rejected_token_falls_back_to_the_password_on_the_same_stream, 0, 2);
  tcase_add_test(tc, the_token_callback_is_asked_at_start_when_the_client_has_none);
  tcase_add_test(tc, a_server_that_cannot_prove_the_token_is_refused);
  tcase_add_test(tc, bad_fast_options_are_refused);
  tcase_add_loop_test(tc, a_server_that_drops_sasl2_is_a_warning_or_refused, 0, 2);
  tcase_add_test(tc, a_reconnection_sends_header_and_login_in_one_flight);
  tcase_add_test(tc, logout_invalidates_the_token_on_the_server_then_goes_offline);
  tcase_add_loop_test(tc, a_token_binds_to_the_channel_only_where_the_server_can, 0, 3);
  tcase_add_test(tc, a_changed_offer_after_a_one_flight_login_reconnects_the_long_way);
  tcase_add_test(tc, a_resumed_tls_session_and_one_flight_make_a_reconnection_two_flights);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
