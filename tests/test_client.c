/* The client against real servers (tests/support/servers.h): Prosody and
 * ejabberd on loopback, one per test case, started once per test binary in
 * an unchecked fixture and shared by the tests (each forks). What a user
 * observes: logging in with every SASL mechanism each server offers over
 * STARTTLS and direct TLS, a wrong password, messages and iq round trips
 * between two clients on one loop, iq handlers, graceful stop, reconnection
 * after a server restart, and closing from inside a callback.
 * XMPPUV_TEST_LOG=1 prints the clients' logs (trace) on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "client_rec.h"
#include "run_until.h"
#include "text.h"
#include "servers.h"
#include "xmppuv.h"

#define NS_PING "urn:xmpp:ping"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* The server of the running test case (set by its unchecked fixture). */
static xmppuv_test_server_t server;

/* ---- mechanisms ---------------------------------------------------------- */

/* What each server offers: Prosody with plain-text storage has SCRAM-SHA-1
 * and SCRAM-SHA-256 (and -PLUS on TLS 1.2) and PLAIN; ejabberd adds
 * SCRAM-SHA-512. */
static const char *const prosody_mechs[] = {
    "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"};
static const char *const ejabberd_mechs[] = {
    "SCRAM-SHA-1",   "SCRAM-SHA-1-PLUS",   "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-512", "SCRAM-SHA-512-PLUS", "PLAIN"};
#define N_PROSODY_MECHS (sizeof prosody_mechs / sizeof prosody_mechs[0])
#define N_EJABBERD_MECHS (sizeof ejabberd_mechs / sizeof ejabberd_mechs[0])

/* ---- the loop ------------------------------------------------------------- */

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard; /* RUN_UNTIL's (tests/support/run_until.h) */
} env_t;

static void env_init(env_t *e) {
  memset(e, 0, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
}

/* ---- a client and what it observed ----------------------------------------- */

typedef struct peer peer_t;

struct peer {
  env_t *env;
  xmppuv_client_t *c;
  client_rec_t app; /* what the app saw (tests/support/client_rec.h); user: the peer */
  char user[16];
  char resource[64];
  char full[128]; /* user@localhost/resource, as requested */

  char events[1024]; /* fail, iq results, close: in order */
  size_t ev_len;
  char sasl[64]; /* the mechanism the client chose, from its log */
  int sasl2_seen; /* ... and it was a SASL2 login (XEP-0388) */
  int bind2_seen; /* ... that bound the resource (XEP-0386) */
  unsigned messages;
  char last_body[256], last_from[256];
  unsigned pings_seen, unknown_seen; /* iq requests it answered itself */

  void (*on_online)(peer_t *p);
  int reply_to_messages; /* answer "pong: BODY" */
};

static void event(peer_t *p, const char *what) {
  text_append(p->events, sizeof p->events, &p->ev_len, "%s%s", p->ev_len ? " " : "", what);
}

static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  peer_t *p = ud;
  if (getenv("XMPPUV_TEST_LOG") != NULL)
    fprintf(stderr, "# %s [%s] %s: %s\n", p->user, xmppuv_log_level_name(level), area, msg);
  /* session.c: "using MECH" or "using MECH with CB-TYPE". */
  if (strcmp(area, "sasl") == 0 && strncmp(msg, "authenticated with ", 19) == 0 &&
      strstr(msg, " (SASL2)") != NULL)
    p->sasl2_seen = 1;
  if (strcmp(area, "session") == 0 && strncmp(msg, "bound in the login (Bind2)", 26) == 0)
    p->bind2_seen = 1;
  if (strcmp(area, "sasl") == 0 && strncmp(msg, "using ", 6) == 0) {
    snprintf(p->sasl, sizeof p->sasl, "%s", msg + 6);
    char *space = strchr(p->sasl, ' ');
    if (space != NULL) *space = '\0';
  }
}

/* The recorder's hook: what only these tests look at. */
static void on_event(client_rec_t *r, xmppuv_client_t *c, const char *what) {
  peer_t *p = r->user;
  (void)c;
  if (strcmp(what, "online-event") == 0 && p->on_online != NULL) p->on_online(p);
  if (strcmp(what, "fail") == 0 || strcmp(what, "close") == 0) event(p, what);
}

static int child_is(const xmppuv_stanza_t *s, const char *name, const char *ns) {
  return xmppuv_stanza_child(s, name, ns) != NULL;
}

/* Recorded, and the iq requests the client answered by itself counted. */
static void on_stanza(xmppuv_client_t *c, xmppuv_stanza_t *s, int handled, void *ud) {
  client_rec_t *r = ud;
  peer_t *p = r->user;
  client_rec_callbacks.stanza(c, s, handled, ud);
  const char *type = xmppuv_stanza_attr(s, "type");
  if (strcmp(xmppuv_stanza_name(s), "iq") == 0 && type != NULL && strcmp(type, "get") == 0 &&
      handled) {
    if (child_is(s, "ping", NS_PING)) p->pings_seen++;
    if (child_is(s, "query", "urn:example:unknown")) p->unknown_seen++;
  }
}

static void peer_init(peer_t *p, env_t *e, const char *user) {
  static unsigned seq;
  memset(p, 0, sizeof *p);
  p->env = e;
  snprintf(p->user, sizeof p->user, "%s", user);
  /* Unique per test: no test meets another's (possibly hibernating) session. */
  snprintf(p->resource, sizeof p->resource, "%s-%ld-%u", user, (long)getpid(), ++seq);
  snprintf(p->full, sizeof p->full, "%s@localhost/%s", user, p->resource);
  client_rec_init(&p->app, run_clock, &e->loop);
  p->app.on_event = on_event;
  p->app.user = p;
}

static void peer_opts(peer_t *p, xmppuv_client_options_t *o) {
  static char jid[64];
  snprintf(jid, sizeof jid, "%s@localhost", p->user);
  xmppuv_client_options_init(o);
  o->jid = jid;
  o->password = xmppuv_test_password(p->user);
  o->resource = p->resource;
  o->host = "127.0.0.1";
  o->port = server.port;
  o->tls = XMPPUV_TLS_STARTTLS;
  o->ca_file = server.ca_file;
  o->reconnect_delay_ms = 100;
  o->reconnect_max_delay_ms = 500;
  o->log_cb = on_log;
  o->log_user_data = p;
  o->log_level = getenv("XMPPUV_TEST_LOG") != NULL ? XMPPUV_LOG_TRACE : XMPPUV_LOG_DEBUG;
}

static void peer_start(peer_t *p, const xmppuv_client_options_t *o) {
  xmppuv_client_callbacks_t cbs = client_rec_callbacks;
  cbs.stanza = on_stanza;
  ck_assert_int_eq(xmppuv_client_new(&p->env->loop, o, &cbs, &p->app, &p->c), 0);
  ck_assert_int_eq(xmppuv_client_start(p->c), 0);
}

/* A peer with the default options, started. */
static void peer_go(peer_t *p, env_t *e, const char *user) {
  peer_init(p, e, user);
  xmppuv_client_options_t o;
  peer_opts(p, &o);
  peer_start(p, &o);
}

static void wait_online(peer_t *p) {
  RUN_UNTIL(p->env, p->app.onlines >= 1 || p->app.offlines >= 1, 30000);
  ck_assert_msg(p->app.onlines >= 1, "%s on %s: not online; statuses: %s; first error %s %s",
                p->user, server.kind, p->app.statuses,
                p->app.errors ? xmppuv_err_name(p->app.err_code[0]) : "-",
                p->app.errors ? p->app.err_cond[0] : "");
}

/* Close the peers (may be NULL) and the loop; nothing may be left on it. */
static void finish(env_t *e, peer_t *a, peer_t *b) {
  peer_t *peers[2] = {a, b};
  for (int i = 0; i < 2; i++)
    if (peers[i] != NULL && peers[i]->c != NULL && !peers[i]->app.closed)
      xmppuv_client_close(peers[i]->c, client_rec_close_cb);
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 2; i++) {
    if (peers[i] == NULL || peers[i]->c == NULL) continue;
    ck_assert_msg(peers[i]->app.closed, "%s: close_cb did not run", peers[i]->user);
    ck_assert_msg(!peers[i]->app.after_close, "%s: a callback ran after close_cb",
                  peers[i]->user);
  }
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
}

/* ---- fixtures ----------------------------------------------------------------- */

static void start_kind(const char *kind) {
  int rc = xmppuv_test_server_start(kind, 5, &server);
  ck_assert_msg(rc == 0, "%s did not start: %s", kind, uv_strerror(rc));
  fprintf(stderr, "# %s ready in %ld ms (ports %u, %u)\n", kind, server.ready_ms,
          server.port, server.direct_tls_port);
}

static void start_prosody(void) { start_kind("prosody"); }
static void start_ejabberd(void) { start_kind("ejabberd"); }
static void stop_server(void) { xmppuv_test_server_stop(&server); }

/* ---- logging in ----------------------------------------------------------------- */

/* mech over STARTTLS or direct TLS, in a SASL2 (XEP-0388) login or an
 * RFC 6120 one: with SASL2 the stream does not restart after the login. */
static void login_with(const char *mech, int direct, int sasl2) {
  env_t e;
  env_init(&e);
  peer_t a;
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  o.sasl_mechanisms = mech;
  o.sasl2 = sasl2;
  if (direct) {
    o.tls = XMPPUV_TLS_DIRECT;
    o.port = server.direct_tls_port;
  }
  peer_start(&a, &o);
  RUN_UNTIL(&e, a.app.onlines >= 1 || a.app.offlines >= 1, 30000);
  ck_assert_msg(a.app.onlines == 1, "%s, %s%s over %s: not online; statuses: %s; error %s %s",
                server.kind, mech, sasl2 ? " (SASL2)" : "", direct ? "direct TLS" : "STARTTLS",
                a.app.statuses,
                a.app.errors ? xmppuv_err_name(a.app.err_code[0]) : "-",
                a.app.errors ? a.app.err_cond[0] : "");
  ck_assert_str_eq(a.sasl, mech);
  ck_assert_str_eq(a.app.bound, a.full);
  ck_assert_str_eq(xmppuv_jid_string(xmppuv_client_jid(a.c)), a.full);
  ck_assert_uint_eq(a.app.errors, 0);
  ck_assert_int_eq(a.sasl2_seen, sasl2);
  static const char *const statuses[2][2] = {
      {"connecting connect opening open opening open opening open online",
       "connecting connect opening open opening open online"},
      {"connecting connect opening open opening open online",
       "connecting connect opening open online"}};
  ck_assert_str_eq(a.app.statuses, statuses[sasl2][direct]);
  finish(&e, &a, NULL);
}

START_TEST(logs_in_with_each_prosody_mechanism_over_starttls_and_direct_tls) {
  login_with(prosody_mechs[_i / 4], _i % 2, _i / 2 % 2);
}
END_TEST

START_TEST(logs_in_with_each_ejabberd_mechanism_over_starttls_and_direct_tls) {
  login_with(ejabberd_mechs[_i / 4], _i % 2, _i / 2 % 2);
}
END_TEST

START_TEST(wrong_password_is_not_authorized_without_a_reconnect_loop) {
  env_t e;
  env_init(&e);
  peer_t a;
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  o.password = "not-alices-password";
  peer_start(&a, &o);
  RUN_UNTIL(&e, a.app.offlines >= 1, 30000);
  ck_assert_msg(a.app.offlines == 1, "not offline; statuses: %s", a.app.statuses);
  ck_assert_uint_eq(a.app.errors, 1);
  ck_assert_int_eq(a.app.err_code[0], XMPPUV_EAUTH);
  ck_assert_str_eq(a.app.err_cond[0], "not-authorized");
  ck_assert_int_eq(a.app.err_fatal[0], 1);
  /* Ten reconnect delays later: still one connection, no reconnecting. */
  RUN_FOR(&e, 1000);
  ck_assert_uint_eq(a.app.connecting, 1);
  ck_assert_uint_eq(a.app.reconnectings, 0);
  ck_assert_uint_eq(a.app.onlines, 0);
  ck_assert_int_eq(xmppuv_client_status(a.c), XMPPUV_STATUS_OFFLINE);
  finish(&e, &a, NULL);
}
END_TEST

/* The app supplies the password only when asked (it need not keep it). */
static int password_calls;
static int supply_password(xmppuv_client_t *c, char *buf, size_t size, void *ud) {
  (void)c;
  password_calls++;
  snprintf(buf, size, "%s", xmppuv_test_password((const char *)ud));
  return 0;
}

static int refuse_password(xmppuv_client_t *c, char *buf, size_t size, void *ud) {
  (void)c, (void)buf, (void)size, (void)ud;
  password_calls++;
  return XMPPUV_ECANCELED;
}

START_TEST(logs_in_with_a_password_callback) {
  env_t e;
  env_init(&e);
  peer_t a;
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  o.password = NULL;
  o.password_cb = supply_password;
  o.password_user_data = (void *)"alice";
  password_calls = 0;
  peer_start(&a, &o);
  wait_online(&a);
  ck_assert_int_eq(password_calls, 1);
  finish(&e, &a, NULL);
}
END_TEST

START_TEST(a_password_callback_error_ends_the_login_without_a_retry) {
  env_t e;
  env_init(&e);
  peer_t a;
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  o.password = NULL;
  o.password_cb = refuse_password;
  password_calls = 0;
  peer_start(&a, &o);
  RUN_UNTIL(&e, a.app.offlines >= 1, 30000);
  ck_assert_msg(a.app.offlines == 1, "not offline; statuses: %s", a.app.statuses);
  ck_assert_uint_eq(a.app.errors, 1);
  ck_assert_int_eq(a.app.err_code[0], XMPPUV_ECANCELED);
  ck_assert_int_eq(a.app.err_fatal[0], 1);
  ck_assert_int_eq(password_calls, 1);
  ck_assert_uint_eq(a.app.reconnectings, 0);
  finish(&e, &a, NULL);
}
END_TEST

/* ---- two clients ------------------------------------------------------------------ */

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  peer_t *p = ud;
  const char *body = xmppuv_stanza_child_text(s, "body", NULL);
  const char *from = xmppuv_stanza_attr(s, "from");
  if (body == NULL) return XMPPUV_PASS;
  p->messages++;
  snprintf(p->last_body, sizeof p->last_body, "%s", body);
  snprintf(p->last_from, sizeof p->last_from, "%s", from ? from : "");
  if (p->reply_to_messages && from != NULL) {
    char reply[300];
    snprintf(reply, sizeof reply, "pong: %s", body);
    xmppuv_stanza_t *m;
    ck_assert_int_eq(xmppuv_message_new(from, "chat", reply, &m), 0);
    ck_assert_int_eq(xmppuv_client_send(c, m), 0);
    xmppuv_stanza_unref(m);
  }
  return XMPPUV_HANDLED;
}

typedef struct sent {
  unsigned done;
  int status;
} sent_t;

static void on_sent(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  sent_t *st = ud;
  (void)c;
  (void)s;
  st->done++;
  st->status = status;
}

/* alice and bob online on one loop. */
static void two_online(env_t *e, peer_t *a, peer_t *b) {
  env_init(e);
  peer_go(b, e, "bob");
  peer_go(a, e, "alice");
  wait_online(b);
  wait_online(a);
}

START_TEST(message_from_alice_reaches_bob_and_back_and_is_acked) {
  env_t e;
  peer_t a, b;
  two_online(&e, &a, &b);
  b.reply_to_messages = 1;
  ck_assert_int_eq(xmppuv_client_handler_add(a.c, "message", NULL, "chat", on_message, &a,
                                             NULL), 0);
  ck_assert_int_eq(xmppuv_client_handler_add(b.c, "message", NULL, "chat", on_message, &b,
                                             NULL), 0);
  ck_assert(xmppuv_client_sm_enabled(a.c));
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new(b.full, "chat", "hello bob", &m), 0);
  sent_t st = {0, 1};
  ck_assert_int_eq(xmppuv_client_send_tracked(a.c, m, on_sent, &st), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(&e, a.messages >= 1 && st.done >= 1, 20000);
  ck_assert_msg(b.messages == 1, "bob got %u messages", b.messages);
  ck_assert_str_eq(b.last_body, "hello bob");
  ck_assert_str_eq(b.last_from, a.full);
  ck_assert_msg(a.messages == 1, "alice got %u messages", a.messages);
  ck_assert_str_eq(a.last_body, "pong: hello bob");
  ck_assert_str_eq(a.last_from, b.full);
  /* XEP-0198: the server took responsibility for alice's message. */
  ck_assert_uint_eq(st.done, 1);
  ck_assert_int_eq(st.status, 0);
  /* Reported once: a tracked stanza's outcome goes to its callback, not
   * also to the ack/fail events. */
  ck_assert_uint_eq(a.app.acks, 0);
  ck_assert_uint_eq(a.app.fails, 0);
  finish(&e, &a, &b);
}
END_TEST

typedef struct iq_outcome {
  unsigned done;
  int status;
  char type[16];
  char from[256];
  int service_unavailable;
  int echo;
} iq_outcome_t;

static void on_iq(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  iq_outcome_t *out = ud;
  (void)c;
  out->done++;
  out->status = status;
  if (reply != NULL) {
    const char *type = xmppuv_stanza_attr(reply, "type");
    const char *from = xmppuv_stanza_attr(reply, "from");
    snprintf(out->type, sizeof out->type, "%s", type ? type : "");
    snprintf(out->from, sizeof out->from, "%s", from ? from : "");
    const xmppuv_stanza_t *err = xmppuv_stanza_child(reply, "error", NULL);
    out->service_unavailable =
        err != NULL && xmppuv_stanza_child(err, "service-unavailable", NS_STANZAS) != NULL;
    out->echo = xmppuv_stanza_child(reply, "query", "urn:example:echo") != NULL;
  }
}

/* <iq type='get' to=to><name xmlns=ns/></iq>, sent; the outcome lands in out. */
static void send_iq(peer_t *p, const char *to, const char *name, const char *ns,
                    iq_outcome_t *out) {
  memset(out, 0, sizeof *out);
  xmppuv_stanza_t *iq;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &iq), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "type", "get"), 0);
  if (to != NULL) ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "to", to), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(iq, name, ns, NULL), 0);
  ck_assert_int_eq(xmppuv_client_send_iq(p->c, iq, 15000, on_iq, out, NULL), 0);
  xmppuv_stanza_unref(iq);
}

START_TEST(iq_ping_round_trips_to_the_server_and_to_bob) {
  env_t e;
  peer_t a, b;
  two_online(&e, &a, &b);
  iq_outcome_t to_server, to_bob;
  send_iq(&a, "localhost", "ping", NS_PING, &to_server);
  RUN_UNTIL(&e, to_server.done >= 1, 20000);
  ck_assert_uint_eq(to_server.done, 1);
  ck_assert_msg(to_server.status == 0, "ping to the server: %s",
                xmppuv_err_name(to_server.status));
  ck_assert_str_eq(to_server.type, "result");
  /* bob's client answers pings by itself (XEP-0199). */
  send_iq(&a, b.full, "ping", NS_PING, &to_bob);
  RUN_UNTIL(&e, to_bob.done >= 1, 20000);
  ck_assert_uint_eq(to_bob.done, 1);
  ck_assert_msg(to_bob.status == 0, "ping to bob: %s", xmppuv_err_name(to_bob.status));
  ck_assert_str_eq(to_bob.type, "result");
  ck_assert_str_eq(to_bob.from, b.full);
  ck_assert_uint_eq(b.pings_seen, 1);
  finish(&e, &a, &b);
}
END_TEST

START_TEST(unknown_iq_to_a_client_gets_service_unavailable) {
  env_t e;
  peer_t a, b;
  two_online(&e, &a, &b);
  iq_outcome_t out;
  send_iq(&a, b.full, "query", "urn:example:unknown", &out);
  RUN_UNTIL(&e, out.done >= 1, 20000);
  ck_assert_uint_eq(out.done, 1);
  ck_assert_msg(out.status == XMPPUV_EIQERROR, "got %s", xmppuv_err_name(out.status));
  ck_assert_str_eq(out.type, "error");
  ck_assert(out.service_unavailable);
  ck_assert_str_eq(out.from, b.full);
  /* It was bob's client that answered, not the server for it. */
  ck_assert_uint_eq(b.unknown_seen, 1);
  finish(&e, &a, &b);
}
END_TEST

typedef struct echo_handler {
  uint64_t id;
  unsigned calls;
  int remove_rc;
} echo_handler_t;

/* Answers one echo query, then removes itself (by id, from inside). */
static int echo_once(xmppuv_client_t *c, xmppuv_stanza_t *req, void *ud) {
  echo_handler_t *h = ud;
  h->calls++;
  xmppuv_stanza_t *res;
  ck_assert_int_eq(xmppuv_iq_result_new(req, &res), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(res, "query", "urn:example:echo", NULL), 0);
  ck_assert_int_eq(xmppuv_client_send(c, res), 0);
  xmppuv_stanza_unref(res);
  h->remove_rc = xmppuv_client_iq_handler_remove(c, h->id);
  return XMPPUV_HANDLED;
}

static int never_called(xmppuv_client_t *c, xmppuv_stanza_t *req, void *ud) {
  (void)c;
  (void)req;
  (*(unsigned *)ud)++;
  return XMPPUV_HANDLED;
}

START_TEST(iq_handler_answers_and_is_removed_by_id) {
  env_t e;
  peer_t a, b;
  two_online(&e, &a, &b);
  echo_handler_t h = {0, 0, 1};
  unsigned removed_calls = 0;
  uint64_t removed_id = 0;
  ck_assert_int_eq(xmppuv_client_iq_handler_add(b.c, "query", "urn:example:echo", "get",
                                                never_called, &removed_calls, &removed_id), 0);
  ck_assert_int_eq(xmppuv_client_iq_handler_remove(b.c, removed_id), 0);
  ck_assert_int_eq(xmppuv_client_iq_handler_remove(b.c, removed_id), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_client_iq_handler_add(b.c, "query", "urn:example:echo", "get",
                                                echo_once, &h, &h.id), 0);
  iq_outcome_t first, second;
  send_iq(&a, b.full, "query", "urn:example:echo", &first);
  RUN_UNTIL(&e, first.done >= 1, 20000);
  ck_assert_uint_eq(first.done, 1);
  ck_assert_msg(first.status == 0, "first echo: %s", xmppuv_err_name(first.status));
  ck_assert(first.echo);
  ck_assert_uint_eq(h.calls, 1);
  ck_assert_int_eq(h.remove_rc, 0);
  /* Removed from inside: the next request finds no handler. */
  send_iq(&a, b.full, "query", "urn:example:echo", &second);
  RUN_UNTIL(&e, second.done >= 1, 20000);
  ck_assert_uint_eq(second.done, 1);
  ck_assert_int_eq(second.status, XMPPUV_EIQERROR);
  ck_assert(second.service_unavailable);
  ck_assert_uint_eq(h.calls, 1);
  ck_assert_uint_eq(removed_calls, 0);
  ck_assert_int_eq(xmppuv_client_iq_handler_remove(b.c, h.id), XMPPUV_EINVAL);
  finish(&e, &a, &b);
}
END_TEST

/* ---- stopping, closing, restarting ---------------------------------------------- */

START_TEST(graceful_stop_walks_the_statuses_down_to_offline) {
  env_t e;
  peer_t a, b;
  two_online(&e, &a, &b);
  ck_assert_str_eq(a.app.statuses + a.app.st_len - strlen("online"), "online");
  a.app.st_len = 0;
  a.app.statuses[0] = '\0';
  ck_assert_int_eq(xmppuv_client_stop(a.c), 0);
  RUN_UNTIL(&e, a.app.offlines >= 1, 20000);
  ck_assert_str_eq(a.app.statuses, "closing close disconnecting disconnect offline");
  ck_assert_uint_eq(a.app.errors, 0);
  ck_assert_uint_eq(a.app.reconnectings, 0);
  /* A second stop is a no-op. */
  ck_assert_int_eq(xmppuv_client_stop(a.c), 0);
  RUN_FOR(&e, 300);
  ck_assert_str_eq(a.app.statuses, "closing close disconnecting disconnect offline");
  /* The server ended alice's session (no hibernation after a clean close):
   * it answers for her now. */
  iq_outcome_t out;
  send_iq(&b, a.full, "ping", NS_PING, &out);
  RUN_UNTIL(&e, out.done >= 1, 20000);
  ck_assert_uint_eq(out.done, 1);
  ck_assert_int_eq(out.status, XMPPUV_EIQERROR);
  finish(&e, &a, &b);
}
END_TEST

typedef struct closing_test {
  iq_outcome_t iq;
  sent_t sent[3];
} closing_test_t;

static int count_presence_from_bob(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c;
  const char *from = xmppuv_stanza_attr(s, "from");
  if (from != NULL && strncmp(from, "bob@localhost/", 14) == 0) (*(unsigned *)ud)++;
  return XMPPUV_PASS;
}

/* XEP-0352 on a real server: the features say CSI; while alice is
 * inactive the server holds bob's presence for her, and gives it when she
 * is active again. */
START_TEST(an_inactive_client_gets_presence_when_active_again) {
  env_t e;
  peer_t a, b;
  two_online(&e, &a, &b);
  const xmppuv_stanza_t *f = xmppuv_client_stream_features(a.c);
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_nonnull(xmppuv_stanza_child(f, "csi", "urn:xmpp:csi:0"));
  unsigned presences = 0;
  ck_assert_int_eq(xmppuv_client_handler_add(a.c, "presence", NULL, NULL, count_presence_from_bob,
                                             &presences, NULL), 0);
  ck_assert_int_eq(xmppuv_client_set_active(a.c, 0), 0);
  /* A fence: the server has read <inactive/> once it answers a ping sent
   * after it. Then alice's <r/> for the ping must be answered before bob
   * sends: anything alice sends counts as activity for Prosody, which
   * then gives out what it held. */
  iq_outcome_t fence;
  send_iq(&a, "localhost", "ping", NS_PING, &fence);
  RUN_UNTIL(&e, fence.done >= 1 && xmppuv_client_sm_queued(a.c) == 0, 20000);
  ck_assert_int_eq(fence.status, 0);
  ck_assert_uint_eq(xmppuv_client_sm_queued(a.c), 0);
  xmppuv_stanza_t *pres;
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &pres), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(pres, "to", a.full), 0);
  xmppuv_stanza_t *show;
  ck_assert_int_eq(xmppuv_stanza_new_child(pres, "show", NULL, &show), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(show, "away"), 0);
  sent_t st = {0, 1};
  ck_assert_int_eq(xmppuv_client_send_tracked(b.c, pres, on_sent, &st), 0);
  xmppuv_stanza_unref(pres);
  RUN_UNTIL(&e, st.done >= 1, 20000);
  ck_assert_int_eq(st.status, 0); /* the server has it */
  RUN_FOR(&e, 1000);
  ck_assert_msg(presences == 0, "an inactive client got %u presence(s) at once", presences);
  ck_assert_int_eq(xmppuv_client_set_active(a.c, 1), 0);
  RUN_UNTIL(&e, presences >= 1, 20000);
  ck_assert_uint_eq(presences, 1);
  finish(&e, &a, &b);
}
END_TEST

static closing_test_t closing;

static void on_sent_closing(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  peer_t *p = ((client_rec_t *)xmppuv_client_user_data(c))->user;
  on_sent(c, s, status, ud);
  event(p, status == XMPPUV_ECANCELED ? "sent:ECANCELED" : "sent:other");
}

static void on_iq_closing(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  peer_t *p = ((client_rec_t *)xmppuv_client_user_data(c))->user;
  on_iq(c, status, reply, ud);
  event(p, status == XMPPUV_ECANCELED ? "iq:ECANCELED" : "iq:other");
}

/* In `online`: send three messages and a ping, then close. */
static void send_then_close(peer_t *p) {
  for (int i = 0; i < 3; i++) {
    xmppuv_stanza_t *m;
    ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "never acked", &m), 0);
    ck_assert_int_eq(xmppuv_client_send_tracked(p->c, m, on_sent_closing, &closing.sent[i]), 0);
    xmppuv_stanza_unref(m);
  }
  xmppuv_stanza_t *iq;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &iq), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "type", "get"), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(iq, "ping", NS_PING, NULL), 0);
  ck_assert_int_eq(xmppuv_client_send_iq(p->c, iq, 0, on_iq_closing, &closing.iq, NULL), 0);
  xmppuv_stanza_unref(iq);
  ck_assert_uint_eq(xmppuv_client_sm_queued(p->c), 4);
  xmppuv_client_close(p->c, client_rec_close_cb);
}

START_TEST(close_from_a_callback_fails_what_is_queued_then_calls_close_cb_last) {
  env_t e;
  env_init(&e);
  memset(&closing, 0, sizeof closing);
  peer_t a;
  peer_init(&a, &e, "alice");
  a.on_online = send_then_close;
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  peer_start(&a, &o);
  RUN_UNTIL(&e, a.app.closed, 30000);
  ck_assert_msg(a.app.closed, "not closed; statuses: %s", a.app.statuses);
  ck_assert_uint_eq(a.app.onlines, 1);
  ck_assert_uint_eq(closing.iq.done, 1);
  ck_assert_int_eq(closing.iq.status, XMPPUV_ECANCELED);
  for (int i = 0; i < 3; i++) {
    ck_assert_uint_eq(closing.sent[i].done, 1);
    ck_assert_int_eq(closing.sent[i].status, XMPPUV_ECANCELED);
  }
  /* Three messages and the ping: each ends in exactly one report, its own
   * callback's, and none also reaches the ack/fail events. */
  ck_assert_uint_eq(a.app.fails, 0);
  ck_assert_uint_eq(a.app.acks, 0);
  ck_assert_str_eq(a.events, "iq:ECANCELED sent:ECANCELED sent:ECANCELED sent:ECANCELED close");
  finish(&e, &a, NULL);
}
END_TEST

START_TEST(reconnects_with_a_fresh_session_after_the_server_restarts) {
  /* A server of its own: the restart must not disturb the shared one, and
   * a server restarted from this (forked) process belongs to it. */
  xmppuv_test_server_t shared = server;
  char kind[16];
  snprintf(kind, sizeof kind, "%s", shared.kind);
  int rc = xmppuv_test_server_start(kind, 5, &server);
  ck_assert_msg(rc == 0, "%s did not start: %s", kind, uv_strerror(rc));
  env_t e;
  env_init(&e);
  peer_t a;
  peer_go(&a, &e, "alice");
  wait_online(&a);
  ck_assert(xmppuv_client_sm_enabled(a.c));
  /* The loop does not run meanwhile: the client finds out afterwards. */
  rc = xmppuv_test_server_restart(&server);
  ck_assert_msg(rc == 0, "%s did not restart: %s", kind, uv_strerror(rc));
  RUN_UNTIL(&e, a.app.onlines >= 2 || a.app.offlines >= 1, 60000);
  ck_assert_msg(a.app.onlines == 2, "not online again; statuses: %s", a.app.statuses);
  ck_assert_uint_ge(a.app.reconnectings, 1);
  ck_assert_uint_eq(a.app.resumes, 0); /* the restart lost the SM session */
  ck_assert_uint_eq(a.app.offlines, 0);
  /* The app heard why the connection went (a stream error, or the server
   * closing the connection), and that it was not fatal. */
  ck_assert_msg(a.app.errors >= 1, "no error event; statuses: %s", a.app.statuses);
  fprintf(stderr, "# %s restart: first error %s %s\n", kind, xmppuv_err_name(a.app.err_code[0]),
          a.app.err_cond[0]);
  for (unsigned i = 0; i < a.app.errors && i < CLIENT_REC_MAX; i++)
    ck_assert_msg(!a.app.err_fatal[i], "fatal error %s", xmppuv_err_name(a.app.err_code[i]));
  ck_assert_ptr_nonnull(strstr(a.app.statuses, "online disconnecting disconnect connecting"));
  ck_assert_str_eq(a.app.bound, a.full);
  ck_assert_int_eq(xmppuv_client_status(a.c), XMPPUV_STATUS_ONLINE);
  finish(&e, &a, NULL);
  xmppuv_test_server_stop(&server);
  server = shared;
}
END_TEST

/* SASL EXTERNAL (XEP-0178) on an ejabberd of its own that asks every client
 * for a certificate (XMPPUV_SERVER_CLIENT_CERTS, tests/servers/ejabberd.sh):
 * alice's certificate logs her in with no password configured, over
 * STARTTLS and direct TLS; a certificate from a CA the server does not
 * trust is refused as not-authorized (fatal: no retry loop); a key that is
 * not the certificate's is refused by _new with ECLIENTCERT. */
START_TEST(a_client_certificate_logs_in_with_sasl_external) {
  xmppuv_test_server_t shared = server;
  setenv("XMPPUV_SERVER_CLIENT_CERTS", "1", 1);
  int rc = xmppuv_test_server_start("ejabberd", 5, &server);
  unsetenv("XMPPUV_SERVER_CLIENT_CERTS");
  ck_assert_msg(rc == 0, "ejabberd did not start: %s", uv_strerror(rc));
  char cert[400], key[400], other_cert[400], other_key[400];
  snprintf(cert, sizeof cert, "%s/client/alice.pem", server.dir);
  snprintf(key, sizeof key, "%s/client/alice.key", server.dir);
  snprintf(other_cert, sizeof other_cert, "%s/client/other.pem", server.dir);
  snprintf(other_key, sizeof other_key, "%s/client/other.key", server.dir);
  for (int direct = 0; direct <= 1; direct++) {
    env_t e;
    env_init(&e);
    peer_t a;
    peer_init(&a, &e, "alice");
    xmppuv_client_options_t o;
    peer_opts(&a, &o);
    o.password = NULL;
    o.client_cert_file = cert;
    o.client_key_file = key;
    if (direct) {
      o.tls = XMPPUV_TLS_DIRECT;
      o.port = server.direct_tls_port;
    }
    peer_start(&a, &o);
    wait_online(&a);
    ck_assert_str_eq(a.sasl, "EXTERNAL");
    ck_assert_str_eq(a.app.bound, a.full);
    ck_assert(xmppuv_client_sm_enabled(a.c));
    finish(&e, &a, NULL);
  }
  {
    env_t e;
    env_init(&e);
    peer_t a;
    peer_init(&a, &e, "alice");
    xmppuv_client_options_t o;
    peer_opts(&a, &o);
    o.password = NULL;
    o.client_cert_file = other_cert;
    o.client_key_file = other_key;
    peer_start(&a, &o);
    RUN_UNTIL(&e, a.app.offlines >= 1 || a.app.onlines >= 1, 30000);
    ck_assert_uint_eq(a.app.onlines, 0);
    ck_assert_uint_eq(a.app.offlines, 1);
    ck_assert_uint_ge(a.app.errors, 1);
    unsigned last = (a.app.errors < CLIENT_REC_MAX ? a.app.errors : CLIENT_REC_MAX) - 1;
    ck_assert_msg(a.app.err_fatal[last], "%s not fatal", xmppuv_err_name(a.app.err_code[last]));
    fprintf(stderr, "# an untrusted client certificate: %s %s %s\n",
            xmppuv_err_name(a.app.err_code[last]), a.app.err_cond[last], a.app.err_text[last]);
    finish(&e, &a, NULL);
  }
  {
    xmppuv_client_options_t o;
    xmppuv_client_options_init(&o);
    o.jid = "alice@localhost";
    o.client_cert_file = cert;
    o.client_key_file = other_key;
    o.ca_file = server.ca_file;
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    xmppuv_client_t *c = NULL;
    ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), XMPPUV_ECLIENTCERT);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
  }
  xmppuv_test_server_stop(&server);
  server = shared;
}
END_TEST

/* The server's certificate is not trusted here (no ca_file: the system
 * bundle): the app is told, in words, which certificate and why, once,
 * and the client gives up instead of retrying an attack. */
START_TEST(an_untrusted_certificate_is_fatal_and_says_why) {
  env_t e;
  env_init(&e);
  peer_t a;
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  o.ca_file = NULL;
  peer_start(&a, &o);
  RUN_UNTIL(&e, a.app.offlines >= 1 || a.app.onlines >= 1, 30000);
  ck_assert_uint_eq(a.app.onlines, 0);
  ck_assert_uint_eq(a.app.offlines, 1);
  ck_assert_uint_eq(a.app.errors, 1);
  ck_assert_int_eq(a.app.err_code[0], XMPPUV_ECERTUNTRUSTED);
  ck_assert(a.app.err_fatal[0]);
  ck_assert_msg(strstr(a.app.err_text[0], "certificate of localhost rejected: not issued by a trusted CA") != NULL &&
                    strstr(a.app.err_text[0], "CN=localhost") != NULL,
                "text: %s", a.app.err_text[0]);
  fprintf(stderr, "# %s: %s\n", server.kind, a.app.err_text[0]);
  ck_assert_uint_eq(a.app.reconnectings, 0);
  finish(&e, &a, NULL);
}
END_TEST

static int count_words(const char *text, const char *word) {
  int n = 0;
  size_t len = strlen(word);
  for (const char *p = strstr(text, word); p != NULL; p = strstr(p + len, word)) n++;
  return n;
}

/* alice sends body to bob (tracked), bob answers "pong: body": the
 * message is acked and the answer arrives. */
static void chat_round_trip(env_t *e, peer_t *a, peer_t *b, const char *body) {
  b->reply_to_messages = 1;
  ck_assert_int_eq(xmppuv_client_handler_add(a->c, "message", NULL, "chat", on_message, a,
                                             NULL), 0);
  ck_assert_int_eq(xmppuv_client_handler_add(b->c, "message", NULL, "chat", on_message, b,
                                             NULL), 0);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new(b->full, "chat", body, &m), 0);
  sent_t st = {0, 1};
  ck_assert_int_eq(xmppuv_client_send_tracked(a->c, m, on_sent, &st), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(e, a->messages >= 1 && st.done >= 1, 20000);
  ck_assert_int_eq(st.status, 0);
  char want[300];
  snprintf(want, sizeof want, "pong: %s", body);
  ck_assert_str_eq(a->last_body, want);
}

/* XEP-0388 on both servers: a SCRAM login over SASL2 (the server's
 * signature checked from <additional-data/>), then bind and SM as before,
 * and a message both ways. */
START_TEST(logs_in_with_sasl2_and_works_as_before) {
  env_t e;
  env_init(&e);
  peer_t a, b;
  peer_init(&b, &e, "bob");
  xmppuv_client_options_t bo;
  peer_opts(&b, &bo);
  bo.sasl2 = 0;
  peer_start(&b, &bo);
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  ck_assert_int_eq(o.sasl2, 1); /* the default */
  o.software = "xmppuv test_client";
  peer_start(&a, &o);
  wait_online(&b);
  wait_online(&a);
  ck_assert_msg(a.sasl2_seen, "%s: not a SASL2 login (mechanism %s)", server.kind, a.sasl);
  ck_assert_msg(strncmp(a.sasl, "SCRAM-SHA-", 10) == 0, "mechanism %s", a.sasl);
  ck_assert(!b.sasl2_seen); /* turned off: RFC 6120 SASL */
  ck_assert_str_eq(a.app.bound, a.full);
  ck_assert(xmppuv_client_sm_enabled(a.c));
  /* One stream restart (after STARTTLS), not two: none after SASL2. */
  ck_assert_msg(count_words(a.app.statuses, "opening") == 2, "%s", a.app.statuses);
  ck_assert_msg(count_words(b.app.statuses, "opening") == 3, "%s", b.app.statuses);
  chat_round_trip(&e, &a, &b, "over sasl2");
  fprintf(stderr, "# %s: SASL2 login with %s\n", server.kind, a.sasl);
  finish(&e, &a, &b);
}
END_TEST

/* XEP-0386 on both servers: with no resource asked for, the SASL2 login
 * binds one and enables SM inline; no bind iq, no second <enable/>; a
 * message to the bound JID comes back. */
START_TEST(binds_and_enables_sm_in_the_sasl2_login) {
  env_t e;
  env_init(&e);
  peer_t a, b;
  peer_go(&b, &e, "bob");
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  o.sasl2 = 1;
  o.resource = NULL;
  o.software = "xmppuv-test";
  peer_start(&a, &o);
  wait_online(&b);
  wait_online(&a);
  ck_assert_msg(a.sasl2_seen && a.bind2_seen, "%s: SASL2 %d, Bind2 %d", server.kind,
                a.sasl2_seen, a.bind2_seen);
  ck_assert(xmppuv_client_sm_enabled(a.c));
  ck_assert_ptr_nonnull(strstr(a.app.bound, "alice@localhost/"));
  chat_round_trip(&e, &a, &b, "after bind2");
  ck_assert_str_eq(b.last_from, a.app.bound);
  fprintf(stderr, "# %s: bound in the login as %s\n", server.kind, a.app.bound);
  finish(&e, &a, &b);
}
END_TEST

/* XEP-0484 on both servers. A password login (SASL2, Bind2, inline SM)
 * gets a token; a cut (reconnect_now) comes back with the token alone and
 * resumes inline; a new client given the token and the user-agent id (a
 * restarted app) logs in without a password and logs out, which
 * invalidates the token on the server: given to a third client, it is
 * rejected and the login falls back to the password on the same
 * connection. */
START_TEST(fast_tokens_log_in_resume_inline_log_out_and_fall_back_to_the_password) {
  env_t e;
  env_init(&e);
  peer_t a, b;
  peer_go(&b, &e, "bob");
  peer_init(&a, &e, "alice");
  xmppuv_client_options_t o;
  peer_opts(&a, &o);
  o.resource = NULL; /* Bind2 */
  o.password = NULL;
  o.password_cb = supply_password;
  o.password_user_data = (void *)"alice";
  password_calls = 0;
  peer_start(&a, &o);
  wait_online(&b);
  wait_online(&a);
  ck_assert_int_eq(password_calls, 1);
  ck_assert_msg(a.app.tokens == 1, "%s: no FAST token (mechanism %s)", server.kind, a.sasl);
  ck_assert_msg(strncmp(a.app.token_mech, "HT-SHA-256-", 11) == 0, "%s", a.app.token_mech);
  ck_assert(a.app.token_expiry[0] != '\0');
  char token[256], mech[64];
  snprintf(token, sizeof token, "%s", a.app.token);
  snprintf(mech, sizeof mech, "%s", a.app.token_mech);
  fprintf(stderr, "# %s: FAST token for %s, expiring %s\n", server.kind, mech,
          a.app.token_expiry);

  /* A cut: the token, inline resumption, no password. */
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new(b.full, "chat", "before the cut", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(a.c, m), 0);
  xmppuv_stanza_unref(m);
  ck_assert_int_eq(xmppuv_client_reconnect_now(a.c), 0);
  RUN_UNTIL(&e, a.app.resumes >= 1 || a.app.onlines >= 2, 30000);
  ck_assert_msg(a.app.resumes == 1 && a.app.onlines == 1, "%s: resumed %u, online %u; %s",
                server.kind, a.app.resumes, a.app.onlines, a.app.seq);
  ck_assert_str_eq(a.sasl, mech);
  ck_assert_int_eq(password_calls, 1);
  RUN_UNTIL(&e, a.app.acks >= 1, 20000);
  ck_assert_uint_eq(a.app.acks, 1);
  ck_assert_uint_eq(a.app.fails, 0);
  /* Prosody gives a new token with every FAST resumption (rotation);
   * ejabberd keeps the one it gave until it is old. Either way the app
   * holds the token to use next. */
  if (a.app.tokens > 1) {
    ck_assert_str_ne(a.app.token, token);
    snprintf(token, sizeof token, "%s", a.app.token);
  }
  fprintf(stderr, "# %s: resumed with FAST, %u token(s)\n", server.kind, a.app.tokens);
  char ua[64];
  snprintf(ua, sizeof ua, "%s", xmppuv_client_user_agent_id(a.c));
  xmppuv_client_close(a.c, client_rec_close_cb);
  RUN_UNTIL(&e, a.app.closed, 10000);
  a.c = NULL;

  /* A restarted app: the kept token and user-agent id, no password. */
  peer_t a2;
  peer_init(&a2, &e, "alice");
  peer_opts(&a2, &o);
  o.resource = NULL;
  o.password = NULL;
  o.password_cb = refuse_password;
  o.user_agent_id = ua;
  o.fast_token = token;
  o.fast_mechanism = mech;
  password_calls = 0;
  peer_start(&a2, &o);
  wait_online(&a2);
  ck_assert_int_eq(password_calls, 0);
  ck_assert_str_eq(a2.sasl, mech);
  ck_assert_uint_eq(a2.app.errors, 0);
  chat_round_trip(&e, &a2, &b, "with a kept token");
  /* Logging out invalidates the token the client holds now (the one it
   * logged in with, or the server's rotation of it). */
  if (a2.app.tokens > 0) snprintf(token, sizeof token, "%s", a2.app.token);
  ck_assert_int_eq(xmppuv_client_logout(a2.c), 0);
  RUN_UNTIL(&e, a2.app.offlines >= 1, 20000);
  ck_assert_msg(a2.app.token[0] == '\0' && a2.app.tokens >= 1, "%s: %s", server.kind,
                a2.app.seq);
  ck_assert_uint_eq(a2.app.errors, 0);
  xmppuv_client_close(a2.c, client_rec_close_cb);
  RUN_UNTIL(&e, a2.app.closed, 10000);
  a2.c = NULL;

  /* That token now: rejected, the password follows. */
  peer_t a3;
  peer_init(&a3, &e, "alice");
  peer_opts(&a3, &o);
  o.resource = NULL;
  o.user_agent_id = ua;
  o.fast_token = token;
  o.fast_mechanism = mech;
  peer_start(&a3, &o);
  wait_online(&a3);
  ck_assert_uint_eq(a3.app.connects, 1);
  ck_assert_uint_ge(a3.app.errors, 1);
  ASSERT_ERROR(&a3.app, 0, XMPPUV_ETOKEN, a3.app.err_cond[0], 0);
  ck_assert_msg(strstr(a3.app.seq, "error:ETOKEN token:none") != NULL, "%s", a3.app.seq);
  ck_assert_uint_eq(a3.app.tokens, 2); /* forgotten, then a new one */
  ck_assert(a3.app.token[0] != '\0');
  fprintf(stderr, "# %s: the token after logout: %s\n", server.kind, a3.app.err_cond[0]);
  finish(&e, &a3, &b);
}
END_TEST

static void add_common(TCase *tc) {
  tcase_add_test(tc, wrong_password_is_not_authorized_without_a_reconnect_loop);
  tcase_add_test(tc, logs_in_with_a_password_callback);
  tcase_add_test(tc, a_password_callback_error_ends_the_login_without_a_retry);
  tcase_add_test(tc, message_from_alice_reaches_bob_and_back_and_is_acked);
  tcase_add_test(tc, iq_ping_round_trips_to_the_server_and_to_bob);
  tcase_add_test(tc, unknown_iq_to_a_client_gets_service_unavailable);
  tcase_add_test(tc, iq_handler_answers_and_is_removed_by_id);
  tcase_add_test(tc, an_inactive_client_gets_presence_when_active_again);
  tcase_add_test(tc, an_untrusted_certificate_is_fatal_and_says_why);
  tcase_add_test(tc, logs_in_with_sasl2_and_works_as_before);
  tcase_add_test(tc, binds_and_enables_sm_in_the_sasl2_login);
  tcase_add_test(tc, fast_tokens_log_in_resume_inline_log_out_and_fall_back_to_the_password);
  tcase_add_test(tc, graceful_stop_walks_the_statuses_down_to_offline);
  tcase_add_test(tc, close_from_a_callback_fails_what_is_queued_then_calls_close_cb_last);
  tcase_add_test(tc, reconnects_with_a_fresh_session_after_the_server_restarts);
}

static Suite *make_suite(void) {
  Suite *s = suite_create("client");
  TCase *prosody = tcase_create("prosody");
  tcase_set_timeout(prosody, 120);
  tcase_add_unchecked_fixture(prosody, start_prosody, stop_server);
  tcase_add_loop_test(prosody, logs_in_with_each_prosody_mechanism_over_starttls_and_direct_tls,
                      0, (int)(4 * N_PROSODY_MECHS));
  add_common(prosody);
  suite_add_tcase(s, prosody);

  TCase *ejabberd = tcase_create("ejabberd");
  tcase_set_timeout(ejabberd, 120);
  tcase_add_unchecked_fixture(ejabberd, start_ejabberd, stop_server);
  tcase_add_loop_test(ejabberd,
                      logs_in_with_each_ejabberd_mechanism_over_starttls_and_direct_tls, 0,
                      (int)(4 * N_EJABBERD_MECHS));
  add_common(ejabberd);
  tcase_add_test(ejabberd, a_client_certificate_logs_in_with_sasl_external);
  suite_add_tcase(s, ejabberd);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
