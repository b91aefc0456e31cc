/* The mistakes a new user makes, and what they see: each is refused at once
 * or reported with an error whose code and text say what happened (and,
 * for a configuration that cannot work, the client gives up instead of
 * retrying forever). Also the API's uniform edges: NULL, calls after
 * close, one report per stanza, the order of an error and the status it
 * causes. Loopback scripted servers (client_world.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"
#include "xmppuv.h"

/* ---- a log that keeps what it was told ---------------------------------------- */

static char logged[4096];

static void capture_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud, (void)level, (void)area;
  size_t len = strlen(logged);
  snprintf(logged + len, sizeof logged - len, "%s\n", msg);
}

/* A client_new() that must fail with code and a log line containing words. */
static void assert_refused(const xmppuv_client_options_t *o,
                           const xmppuv_client_callbacks_t *cbs, int code, const char *words) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  xmppuv_client_t *c = (xmppuv_client_t *)&loop; /* must be reset to NULL */
  int rc = xmppuv_client_new(&loop, o, cbs, NULL, &c);
  ck_assert_msg(rc == code, "client_new: %s, not %s (log: %s)", xmppuv_err_name(rc),
                xmppuv_err_name(code), logged);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(logged, words) != NULL, "the log does not say \"%s\": %s", words, logged);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void good_opts(xmppuv_client_options_t *o) {
  xmppuv_client_options_init(o);
  o->jid = "alice@localhost";
  o->password = "alice-secret";
  o->log_cb = capture_log;
  o->log_level = XMPPUV_LOG_ERROR;
  logged[0] = '\0';
}

/* ---- options ----------------------------------------------------------------------- */

START_TEST(options_never_initialised_are_refused_and_the_log_says_so) {
  /* The easy slip: = {0}, as one does for callbacks in other libraries. */
  xmppuv_client_options_t o = {0};
  o.jid = "alice@localhost";
  o.password = "alice-secret";
  o.log_cb = capture_log;
  logged[0] = '\0';
  assert_refused(&o, NULL, XMPPUV_EINVAL, "call xmppuv_client_options_init()");
  /* Garbage where struct_size should be: refused without reading on. */
  memset(&o, 0x5a, sizeof o);
  assert_refused(&o, NULL, XMPPUV_EINVAL, "");
}
END_TEST

START_TEST(callbacks_never_initialised_are_refused_and_the_log_says_so) {
  xmppuv_client_options_t o;
  good_opts(&o);
  xmppuv_client_callbacks_t cbs;
  memset(&cbs, 0, sizeof cbs);
  assert_refused(&o, &cbs, XMPPUV_EINVAL, "xmppuv_client_callbacks_init()");
  /* Initialised, and NULL (no callbacks): both fine. */
  xmppuv_client_callbacks_init(&cbs);
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, &cbs, NULL, &c), 0);
  xmppuv_client_close(c, NULL);
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), 0);
  xmppuv_client_close(c, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

typedef struct bad_option {
  void (*spoil)(xmppuv_client_options_t *o);
  int code;
  const char *words;
} bad_option_t;

static void no_password(xmppuv_client_options_t *o) { o->password = NULL; }
static void empty_host(xmppuv_client_options_t *o) { o->host = ""; }
static void no_localpart(xmppuv_client_options_t *o) { o->jid = "localhost"; }
static void empty_resource(xmppuv_client_options_t *o) { o->resource = ""; }
static void pin_and_insecure(xmppuv_client_options_t *o) {
  o->pin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  o->tls_insecure = 1;
}
static void ca_and_insecure(xmppuv_client_options_t *o) {
  o->ca_file = "/etc/ssl/certs/ca-certificates.crt";
  o->tls_insecure = 1;
}
static void tls_settings_without_tls(xmppuv_client_options_t *o) {
  o->tls = XMPPUV_TLS_DISABLED_INSECURE;
  o->ca_file = "/etc/ssl/certs/ca-certificates.crt";
}
static void port_without_host(xmppuv_client_options_t *o) { o->port = 5222; }
static void cert_without_key(xmppuv_client_options_t *o) { o->client_cert_file = "c.pem"; }
static void bad_jid(xmppuv_client_options_t *o) { o->jid = "alice@@localhost"; }
static void backoff_upside_down(xmppuv_client_options_t *o) {
  o->reconnect_delay_ms = 5000;
  o->reconnect_max_delay_ms = 1000;
}

START_TEST(each_bad_option_is_refused_and_the_log_names_it) {
  static const bad_option_t bad[] = {
      {no_password, XMPPUV_EINVAL, "no password, password_cb or client certificate"},
      {empty_host, XMPPUV_EINVAL, "host is empty"},
      {no_localpart, XMPPUV_EINVAL, "the jid has no localpart"},
      {empty_resource, XMPPUV_EINVAL, "resource is empty"},
      {pin_and_insecure, XMPPUV_EINVAL, "pin together with tls_insecure"},
      {ca_and_insecure, XMPPUV_EINVAL, "ca_file or ca_path together with tls_insecure"},
      {tls_settings_without_tls, XMPPUV_EINVAL, "TLS settings with tls = "},
      {port_without_host, XMPPUV_EINVAL, "port without host"},
      {cert_without_key, XMPPUV_EINVAL, "client_cert_file and client_key_file go together"},
      {bad_jid, XMPPUV_EJIDDOMAIN, "bad jid"},
      {backoff_upside_down, XMPPUV_EINVAL, "reconnect_max_delay_ms below reconnect_delay_ms"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    xmppuv_client_options_t o;
    good_opts(&o);
    bad[i].spoil(&o);
    assert_refused(&o, NULL, bad[i].code, bad[i].words);
  }
  /* Anonymous: a domain alone and no password are right. */
  xmppuv_client_options_t o;
  good_opts(&o);
  o.jid = "localhost";
  o.password = NULL;
  o.allow_anonymous = 1;
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), 0);
  xmppuv_client_close(c, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- configurations that cannot work ------------------------------------------------ */

/* The client gave up after one connection, with this code and words. */
static void assert_gave_up_saying(world_t *w, int code, const char *words) {
  RUN_UNTIL(w, w->app.offlines >= 1, 10000);
  ck_assert_msg(w->app.offlines == 1, "not offline; statuses: %s", w->app.statuses);
  ck_assert_uint_ge(w->app.errors, 1);
  ck_assert_msg(w->app.err_code[0] == code, "error %s, not %s: %s",
                xmppuv_err_name(w->app.err_code[0]), xmppuv_err_name(code), w->app.err_text[0]);
  ck_assert_msg(strstr(w->app.err_text[0], words) != NULL, "the text does not say \"%s\": %s",
                words, w->app.err_text[0]);
  ck_assert_int_eq(w->app.err_fatal[0], 1);
  RUN_FOR(w, 300); /* several reconnect delays: none */
  ck_assert_uint_eq(w->app.reconnectings, 0);
  ck_assert_uint_eq(world_connections(w, 0), 1);
}

START_TEST(direct_tls_to_a_starttls_port_says_so_and_gives_up) {
  /* The server speaks plaintext XMPP at once (as on 5222 with a header
   * waiting); the client sends a ClientHello. */
  static const xmppuv_test_step_t s0[] = {SCRIPT_SEND(HDR FEATURES_PLAIN), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.tls = XMPPUV_TLS_DIRECT;
  world_start(&w, &o);
  assert_gave_up_saying(&w, XMPPUV_EWRONGSERVER, "not a direct-TLS one");
  world_finish(&w);
}
END_TEST

START_TEST(starttls_to_a_direct_tls_port_says_so_and_gives_up) {
  /* A direct-TLS server answers our stream header with a TLS record (an
   * alert's header is enough to tell). */
  static const xmppuv_test_step_t s0[] = {SCRIPT_EXPECT("<stream:stream"),
                                          SCRIPT_SEND("\x15\x03\x03\x01\x02"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_start(&w, &o);
  assert_gave_up_saying(&w, XMPPUV_EWRONGSERVER, "this is a direct-TLS port");
  char where[64]; /* the host and port the app named, not the JID's domain */
  snprintf(where, sizeof where, "127.0.0.1 port %u: the server answered with TLS",
           (unsigned)world_port(&w, 0));
  ck_assert_msg(strstr(w.app.err_text[0], where) == w.app.err_text[0], "text: %s",
                w.app.err_text[0]);
  world_finish(&w);
}
END_TEST

START_TEST(a_web_server_says_so_and_gives_up) {
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"),
      SCRIPT_SEND("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), SCRIPT_CLOSE,
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_start(&w, &o);
  assert_gave_up_saying(&w, XMPPUV_EWRONGSERVER, "a web server, not an XMPP server");
  char where[64];
  snprintf(where, sizeof where, "127.0.0.1 port %u: ", (unsigned)world_port(&w, 0));
  ck_assert_msg(strstr(w.app.err_text[0], where) == w.app.err_text[0], "text: %s",
                w.app.err_text[0]);
  world_finish(&w);
}
END_TEST

/* ---- errors say what happened ---------------------------------------------------------- */

START_TEST(a_refused_connection_names_the_address_and_is_retried) {
  world_t w;
  world_init(&w);
  /* A port nothing listens on: bound, never listening. */
  uv_tcp_t holder;
  ck_assert_int_eq(uv_tcp_init(&w.loop, &holder), 0);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_int_eq(uv_tcp_bind(&holder, (const struct sockaddr *)&addr, 0), 0);
  struct sockaddr_storage name;
  int len = sizeof name;
  ck_assert_int_eq(uv_tcp_getsockname(&holder, (struct sockaddr *)&name, &len), 0);
  unsigned short port = ntohs(((struct sockaddr_in *)&name)->sin_port);
  xmppuv_client_options_t o;
  world_opts(&o, port);
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.reconnectings >= 1, 10000);
  ck_assert_uint_ge(w.app.errors, 1);
  ck_assert_int_eq(w.app.err_code[0], UV_ECONNREFUSED);
  ck_assert_int_eq(w.app.err_fatal[0], 0);
  char where[64];
  snprintf(where, sizeof where, "127.0.0.1]:%u", (unsigned)port);
  ck_assert_msg(strstr(w.app.err_text[0], where) != NULL, "the text does not name %s: %s",
                where, w.app.err_text[0]);
  uv_close((uv_handle_t *)&holder, NULL);
  world_finish(&w);
}
END_TEST

START_TEST(an_unanswered_ack_request_says_which_timeout_and_resumes) {
  /* The server goes silent after the login: the <r/> that follows a send
   * gets no answer. */
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT("<r "), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "1")),
                                          SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 2);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.sm_ack_debounce_ms = 20;
  o.sm_ack_timeout_ms = 300;
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "unanswered", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(w.c, m), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(&w, w.app.resumes >= 1, 10000);
  ck_assert_uint_eq(w.app.errors, 1);
  ck_assert_int_eq(w.app.err_code[0], XMPPUV_ETIMEDOUT);
  ck_assert_int_eq(w.app.err_fatal[0], 0);
  ck_assert_str_eq(w.app.err_text[0],
                   "Stream Management: nothing received for 300 ms after <r/> (ack timeout); "
                   "dropping the connection to resume");
  ck_assert_uint_eq(w.app.resumes, 1);
  ck_assert_uint_eq(w.app.acks, 1);
  world_finish(&w);
}
END_TEST

START_TEST(a_negotiation_timeout_says_which_timeout) {
  static const xmppuv_test_step_t s0[] = {SCRIPT_END}; /* accepts, never speaks */
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.negotiation_timeout_ms = 200;
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.errors >= 1, 10000);
  ck_assert_int_eq(w.app.err_code[0], XMPPUV_ETIMEDOUT);
  ck_assert_msg(strstr(w.app.err_text[0], "negotiation did not finish within 200 ms") != NULL,
                "%s", w.app.err_text[0]);
  world_finish(&w);
}
END_TEST

/* The order of what happened, status changes included. */
static char order[2048];

static void note_order(client_rec_t *r, xmppuv_client_t *c, const char *event) {
  (void)r, (void)c;
  size_t len = strlen(order);
  snprintf(order + len, sizeof order - len, "%s%s", len ? " " : "", event);
}

START_TEST(an_error_comes_before_the_status_changes_it_causes) {
  /* Every way a connection ends, one per connection: a reset, a
   * negotiation timeout, an SM ack timeout, a retryable stream error, and
   * a fatal SASL failure. */
  static const xmppuv_test_step_t reset[] = {LOGIN, SCRIPT_DELAY(20), SCRIPT_RESET, SCRIPT_END};
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t no_ack[] = {LOGIN_SM, SCRIPT_EXPECT("<r "), SCRIPT_END};
  static const xmppuv_test_step_t stream_error[] = {
      UNTIL_RESUME, SCRIPT_SEND(STREAM_ERROR("internal-server-error")), SCRIPT_END};
  static const xmppuv_test_step_t not_authorized[] = {UNTIL_AUTH,
                                               SCRIPT_SEND(SASL_FAILURE("not-authorized")),
                                               SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {reset, silent, no_ack, stream_error,
                                                      not_authorized};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 5);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.negotiation_timeout_ms = 200;
  o.sm_idle_request_ms = 50; /* an <r/> soon after online */
  o.sm_ack_timeout_ms = 200;
  order[0] = '\0';
  w.app.on_event = note_order;
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.offlines >= 1, 20000);
  ck_assert_msg(w.app.offlines == 1, "not offline: %s", order);
  ck_assert_msg(w.app.errors == 5, "%u errors: %s", w.app.errors, order);
  ck_assert_msg(strstr(order, "online-event error disconnecting disconnect reconnecting") != NULL,
                "after the reset: %s", order);
  ck_assert_msg(strstr(order, "opening error disconnecting disconnect") != NULL,
                "after the timeout: %s", order);
  ck_assert_int_eq(w.app.err_code[2], XMPPUV_ETIMEDOUT);
  ck_assert_int_eq(w.app.err_code[3], XMPPUV_ESTREAM);
  ck_assert_int_eq(w.app.err_code[4], XMPPUV_EAUTH);
  ck_assert(w.app.err_fatal[4]);
  /* In every path: nothing the error causes comes before it. */
  ck_assert_int_eq(world_count(order, "error disconnecting"), 5);
  ck_assert_msg(strstr(order, "disconnecting error") == NULL &&
                    strstr(order, "disconnect error") == NULL &&
                    strstr(order, "offline error") == NULL,
                "a status before its error: %s", order);
  ck_assert_ptr_nonnull(strstr(order, "error disconnecting disconnect offline"));
  world_finish(&w);
}
END_TEST

static int never(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c, (void)s, (void)ud;
  return XMPPUV_PASS;
}

/* ---- after close ------------------------------------------------------------------------- */

typedef struct after_close {
  world_t *w;
  int send_rc; /* a send from the fail callback during close */
  int fails;
  int closed;       /* the listener's `closed` events */
  int fails_before; /* fails seen when `closed` came */
} after_close_t;

static void listener_closed(xmppuv_client_t *c, void *ud) {
  after_close_t *a = ud;
  ck_assert_int_eq(xmppuv_client_status(c), XMPPUV_STATUS_OFFLINE);
  a->closed++;
  a->fails_before = a->fails;
}

static void fail_then_send(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  after_close_t *a = ud;
  (void)s, (void)reason;
  a->fails++;
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "again", &m), 0);
  a->send_rc = xmppuv_client_send(c, m);
  xmppuv_stanza_unref(m);
}

START_TEST(after_close_the_status_is_offline_and_every_call_says_closed) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  after_close_t a = {&w, 0, 0, 0, 0};
  xmppuv_client_callbacks_t cbs;
  xmppuv_client_callbacks_init(&cbs);
  cbs.fail = fail_then_send;
  cbs.closed = listener_closed;
  ck_assert_int_eq(xmppuv_client_listener_add(w.c, &cbs, &a, NULL), 0);
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "unacked", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(w.c, m), 0);
  xmppuv_stanza_unref(m);

  xmppuv_client_close(w.c, client_rec_close_cb);
  w.app.close_called = 1;
  ck_assert_int_eq(xmppuv_client_status(w.c), XMPPUV_STATUS_OFFLINE);
  ck_assert_int_eq(xmppuv_client_start(w.c), XMPPUV_ECLOSED);
  ck_assert_int_eq(xmppuv_client_stop(w.c), XMPPUV_ECLOSED);
  ck_assert_int_eq(xmppuv_client_reconnect_now(w.c), XMPPUV_ECLOSED);
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", NULL, "x", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(w.c, m), XMPPUV_ECLOSED);
  xmppuv_stanza_unref(m);
  ck_assert_int_eq(xmppuv_client_handler_add(w.c, "message", NULL, NULL, never, NULL, NULL),
                   XMPPUV_ECLOSED);
  ck_assert_int_eq(xmppuv_client_listener_add(w.c, &cbs, &a, NULL), XMPPUV_ECLOSED);
  xmppuv_client_close(w.c, client_rec_close_cb); /* twice: nothing */
  xmppuv_client_close(NULL, NULL);
  world_finish(&w);
  /* The unacked stanza failed (ECANCELED), and the send from inside that
   * callback got what every call after close gets. */
  ck_assert_int_eq(a.fails, 1);
  ck_assert_int_eq(a.send_rc, XMPPUV_ECLOSED);
  /* `closed`: once, to the app and to the listener, after every other
   * event and before the close callback. */
  ck_assert_int_eq(a.closed, 1);
  ck_assert_int_eq(a.fails_before, 1);
  ck_assert_uint_eq(w.app.closed_events, 1);
  ck_assert_int_eq(w.app.after_close, 0);
}
END_TEST

/* ---- NULL -------------------------------------------------------------------------------- */

START_TEST(null_is_refused_or_neutral_everywhere) {
  ck_assert_int_eq(xmppuv_client_status(NULL), XMPPUV_STATUS_OFFLINE);
  ck_assert_ptr_null(xmppuv_client_jid(NULL));
  ck_assert_ptr_null(xmppuv_client_loop(NULL));
  ck_assert_ptr_null(xmppuv_client_user_data(NULL));
  ck_assert_int_eq(xmppuv_client_start(NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_stop(NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_reconnect_now(NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_send(NULL, NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_send_tracked(NULL, NULL, NULL, NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_send_iq(NULL, NULL, 0, NULL, NULL, NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_iq_cancel(NULL, 1), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_handler_add(NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_handler_remove(NULL, 1), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_iq_handler_add(NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_iq_handler_remove(NULL, 1), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_listener_add(NULL, NULL, NULL, NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_listener_remove(NULL, 1), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_sm_enabled(NULL), 0);
  ck_assert_uint_eq(xmppuv_client_sm_queued(NULL), 0);
  char *data = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv_client_sm_export(NULL, &data, &len), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_sm_import(NULL, "x", 1), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_new(NULL, NULL, NULL, NULL, NULL), XMPPUV_EINVAL);
  xmppuv_client_options_init(NULL);   /* no-op */
  xmppuv_client_callbacks_init(NULL); /* no-op */
  xmppuv_client_close(NULL, NULL);    /* no-op */
  xmppuv_stanza_t *s = NULL;
  ck_assert_int_eq(xmppuv_message_new(NULL, NULL, NULL, NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_iq_result_new(NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_iq_error_new(NULL, "cancel", "item-not-found", &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_copy(NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_to_string(NULL, &data, &len), XMPPUV_EINVAL);
  xmppuv_jid_t *j = NULL;
  ck_assert_int_eq(xmppuv_jid_copy(NULL, &j), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_jid_bare(NULL, &j), XMPPUV_EINVAL);
  ck_assert_ptr_null(xmppuv_jid_string(NULL));
  ck_assert_ptr_null(xmppuv_jid_bare_string(NULL));
  ck_assert_ptr_null(xmppuv_jid_local(NULL));
  ck_assert_ptr_null(xmppuv_jid_domain(NULL));
  ck_assert_ptr_null(xmppuv_jid_resource(NULL));
  ck_assert_int_eq(xmppuv_jid_equal(NULL, NULL), 0);
  /* The stanza readers: as for an element without what was asked for. */
  size_t text_len = 7;
  const char *name = "x", *value = "x";
  ck_assert_ptr_null(xmppuv_stanza_name(NULL));
  ck_assert_ptr_null(xmppuv_stanza_ns(NULL));
  ck_assert_ptr_null(xmppuv_stanza_attr(NULL, "id"));
  ck_assert_uint_eq(xmppuv_stanza_attr_count(NULL), 0);
  ck_assert_int_eq(xmppuv_stanza_attr_at(NULL, 0, &name, &value), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_is_text(NULL), 0);
  ck_assert_ptr_null(xmppuv_stanza_text(NULL, &text_len));
  ck_assert_uint_eq(text_len, 0);
  ck_assert_ptr_null(xmppuv_stanza_child_text(NULL, "body", NULL));
  ck_assert_ptr_null(xmppuv_stanza_child(NULL, NULL, NULL));
  ck_assert_ptr_null(xmppuv_stanza_next(NULL, NULL, NULL));
  ck_assert_ptr_null(xmppuv_stanza_first_node(NULL));
  ck_assert_ptr_null(xmppuv_stanza_next_node(NULL));
  ck_assert_ptr_null(xmppuv_stanza_parent(NULL));
  s = (xmppuv_stanza_t *)&text_len; /* must be reset */
  ck_assert_int_eq(xmppuv_stanza_parse(NULL, 0, &s), XMPPUV_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(xmppuv_client_sm_enabled(NULL), 0);
  ck_assert_uint_eq(xmppuv_client_sm_queued(NULL), 0);
}
END_TEST

/* ---- builders ------------------------------------------------------------------------------ */

START_TEST(builders_refuse_what_the_server_would_bounce) {
  xmppuv_stanza_t *s = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@@localhost", "chat", "hi", &s), XMPPUV_EJIDDOMAIN);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(xmppuv_message_new("bob@", "chat", "hi", &s), XMPPUV_EJID);
  ck_assert_int_eq(xmppuv_message_new("bob@localhost/", "chat", "hi", &s), XMPPUV_EJID);
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "hi", &s), 0);
  xmppuv_stanza_unref(s);
  static const char result[] = "<iq type='result' id='r1' from='localhost'/>";
  static const char get[] = "<iq type='get' id='g1' from='localhost'><x xmlns='y'/></iq>";
  static const char no_id[] = "<iq type='get' from='localhost'><x xmlns='y'/></iq>";
  xmppuv_stanza_t *req = NULL, *reply = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(result, sizeof result - 1, &req), 0);
  ck_assert_int_eq(xmppuv_iq_result_new(req, &reply), XMPPUV_EINVAL); /* no reply to a reply */
  xmppuv_stanza_unref(req);
  ck_assert_int_eq(xmppuv_stanza_parse(no_id, sizeof no_id - 1, &req), 0);
  ck_assert_int_eq(xmppuv_iq_result_new(req, &reply), XMPPUV_EINVAL);
  xmppuv_stanza_unref(req);
  ck_assert_int_eq(xmppuv_stanza_parse(get, sizeof get - 1, &req), 0);
  ck_assert_int_eq(xmppuv_iq_error_new(req, "cancel", "no-such-condition", &reply), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_iq_error_new(req, "later", "item-not-found", &reply), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_iq_error_new(req, "cancel", "item-not-found", &reply), 0);
  xmppuv_stanza_unref(reply);
  ck_assert_int_eq(xmppuv_iq_result_new(req, &reply), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(reply, "id"), "g1");
  xmppuv_stanza_unref(reply);
  xmppuv_stanza_unref(req);
}
END_TEST

/* ---- one report per stanza; handler ids ------------------------------------------------------ */


static void iq_reply(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c, (void)reply;
  *(int *)ud = status == 0 ? 1 : -1;
}

START_TEST(every_stanza_is_reported_once) {
  /* Three stanzas: plain (the ack event), tracked (its callback only), an
   * iq request (its iq callback only); the server acks all three. */
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM,           SCRIPT_EXPECT("tracked</body>"), SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='result' id='{id}' from='localhost'/>"), SCRIPT_EXPECT("<r "),
      SCRIPT_SEND(SM_A("3")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.sm_ack_debounce_ms = 20;
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "plain", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(w.c, m), 0);
  xmppuv_stanza_unref(m);
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "tracked", &m), 0);
  ck_assert_int_eq(xmppuv_client_send_tracked(w.c, m, client_rec_sent_cb, &w.app), 0);
  xmppuv_stanza_unref(m);
  static const char ping[] = "<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
  xmppuv_stanza_t *iq = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(ping, sizeof ping - 1, &iq), 0);
  int answered = 0;
  ck_assert_int_eq(xmppuv_client_send_iq(w.c, iq, 0, iq_reply, &answered, NULL), 0);
  xmppuv_stanza_unref(iq);
  RUN_UNTIL(&w, xmppuv_client_sm_queued(w.c) == 0 && w.app.sent_done >= 1 && answered != 0,
            10000);
  RUN_FOR(&w, 50);
  ck_assert_uint_eq(w.app.acks, 1); /* the plain one */
  ck_assert_uint_eq(w.app.sent_done, 1);
  ck_assert_int_eq(w.app.sent_status, 0);
  ck_assert_int_eq(answered, 1);
  ck_assert_uint_eq(w.app.fails, 0);
  /* Handler ids do not cross kinds. */
  uint64_t id = 0, iq_id = 0;
  ck_assert_int_eq(xmppuv_client_handler_add(w.c, "message", NULL, NULL, never, NULL, &id), 0);
  ck_assert_int_eq(
      xmppuv_client_iq_handler_add(w.c, "query", "urn:example", NULL, never, NULL, &iq_id), 0);
  ck_assert_int_eq(xmppuv_client_handler_remove(w.c, iq_id), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_iq_handler_remove(w.c, id), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_iq_handler_remove(w.c, iq_id), 0);
  ck_assert_int_eq(xmppuv_client_handler_remove(w.c, id), 0);
  world_finish(&w);
}
END_TEST

START_TEST(stop_while_waiting_to_reconnect_goes_offline) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_DELAY(20), SCRIPT_RESET, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  o.reconnect_delay_ms = 5000; /* a long wait */
  o.reconnect_max_delay_ms = 5000;
  world_start(&w, &o);
  RUN_UNTIL(&w, w.app.reconnectings >= 1, 10000);
  ck_assert_int_eq(xmppuv_client_stop(w.c), 0);
  RUN_UNTIL(&w, w.app.offlines >= 1, 1000);
  ck_assert_int_eq(xmppuv_client_status(w.c), XMPPUV_STATUS_OFFLINE);
  ck_assert_int_eq(xmppuv_client_stop(w.c), 0); /* again: nothing */
  RUN_FOR(&w, 100);
  ck_assert_uint_eq(world_connections(&w, 0), 1);
  world_finish(&w);
}
END_TEST

START_TEST(stop_while_connecting_goes_offline_at_once_and_start_works_again) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_start(&w, &o);
  ck_assert_int_eq(xmppuv_client_status(w.c), XMPPUV_STATUS_CONNECTING);
  ck_assert_int_eq(xmppuv_client_stop(w.c), 0);
  /* No stream to close: offline now, not after the transport is gone. */
  ck_assert_int_eq(xmppuv_client_status(w.c), XMPPUV_STATUS_OFFLINE);
  RUN_UNTIL(&w, w.app.offlines >= 1, 1000);
  ck_assert_str_eq(w.app.statuses, "connecting offline");
  ck_assert_uint_eq(w.app.errors, 0);
  /* Started again at once, while the first transport may still be closing. */
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  ck_assert_msg(w.app.onlines == 1, "not online; statuses: %s", w.app.statuses);
  ck_assert_ptr_nonnull(strstr(w.app.statuses, "connecting offline connecting "));
  ck_assert_uint_eq(w.app.errors, 0);
  world_finish(&w);
  client_rec_assert_transitions(&w.app);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("mistakes");
  TCase *tc = tcase_create("mistakes");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, options_never_initialised_are_refused_and_the_log_says_so);
  tcase_add_test(tc, callbacks_never_initialised_are_refused_and_the_log_says_so);
  tcase_add_test(tc, each_bad_option_is_refused_and_the_log_names_it);
  tcase_add_test(tc, direct_tls_to_a_starttls_port_says_so_and_gives_up);
  tcase_add_test(tc, starttls_to_a_direct_tls_port_says_so_and_gives_up);
  tcase_add_test(tc, a_web_server_says_so_and_gives_up);
  tcase_add_test(tc, a_refused_connection_names_the_address_and_is_retried);
  tcase_add_test(tc, a_negotiation_timeout_says_which_timeout);
  tcase_add_test(tc, an_unanswered_ack_request_says_which_timeout_and_resumes);
  tcase_add_test(tc, an_error_comes_before_the_status_changes_it_causes);
  tcase_add_test(tc, after_close_the_status_is_offline_and_every_call_says_closed);
  tcase_add_test(tc, null_is_refused_or_neutral_everywhere);
  tcase_add_test(tc, builders_refuse_what_the_server_would_bounce);
  tcase_add_test(tc, every_stanza_is_reported_once);
  tcase_add_test(tc, stop_while_waiting_to_reconnect_goes_offline);
  tcase_add_test(tc, stop_while_connecting_goes_offline_at_once_and_start_works_again);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
