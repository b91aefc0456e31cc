/* Carbons (XEP-0280) and receipts (XEP-0184) end to end against real
 * Prosody and ejabberd (tests/support/servers.h; both load carbons):
 * alice with two resources ("one" and "two") and bob ("phone"), each a
 * client with both modules and an initial presence. What reaches alice's
 * other resource, and which acks come back. SERVERS_LOG=1 prints the
 * clients' logs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include "check_main.h"
#include "client_rec.h"
#include "run_until.h"
#include "servers.h"

static const char *const kinds[] = {"prosody", "ejabberd"};

#define WAIT_MS 20000

typedef struct peer {
  const char *user, *resource;
  char jid[80];
  xmppuv_client_t *c;
  client_rec_t rec;
  xmppuv_carbons_t *cb;
  xmppuv_receipts_t *r;
  unsigned enabled_calls;
  int enabled_status;
  unsigned spoofed;
  /* Copies and plain messages seen, by body (the last of each). */
  unsigned carbons_received, carbons_sent;
  char carbon_body[128], carbon_to[128], carbon_from[128];
  unsigned plain;
  char plain_body[128], plain_from[128];
  unsigned own_presences; /* presence from another resource of the account */
  unsigned receipts;
  char receipt_id[64], receipt_from[128];
} peer_t;

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard;
  xmppuv_test_server_t srv;
  peer_t one, two, bob;
} env_t;

static void copy_str(char *to, size_t size, const char *from) {
  snprintf(to, size, "%s", from != NULL ? from : "(null)");
}

static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  peer_t *p = ud;
  fprintf(stderr, "[%s/%s %s] %s\n", p->user, p->resource, area, msg);
}

static void on_enabled(xmppuv_carbons_t *cb, int status, const xmppuv_stanza_t *reply, void *ud) {
  peer_t *p = ud;
  p->enabled_calls++;
  p->enabled_status = status;
}

static void on_carbon(xmppuv_carbons_t *cb, const xmppuv_carbon_t *carbon, void *ud) {
  peer_t *p = ud;
  const char *body = xmppuv_stanza_child_text(carbon->message, "body", NULL);
  if (body == NULL) return; /* a copy of an ack or a chat state */
  if (carbon->direction == XMPPUV_CARBON_SENT) p->carbons_sent++;
  else p->carbons_received++;
  copy_str(p->carbon_body, sizeof p->carbon_body, body);
  copy_str(p->carbon_to, sizeof p->carbon_to, xmppuv_stanza_attr(carbon->message, "to"));
  copy_str(p->carbon_from, sizeof p->carbon_from, xmppuv_stanza_attr(carbon->message, "from"));
}

static void on_spoofed(xmppuv_carbons_t *cb, const xmppuv_stanza_t *wrapper, void *ud) {
  ((peer_t *)ud)->spoofed++;
}

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  peer_t *p = ud;
  const char *body = xmppuv_stanza_child_text(msg, "body", NULL);
  if (body == NULL) return XMPPUV_PASS;
  p->plain++;
  copy_str(p->plain_body, sizeof p->plain_body, body);
  copy_str(p->plain_from, sizeof p->plain_from, xmppuv_stanza_attr(msg, "from"));
  return XMPPUV_HANDLED;
}

static int on_presence(xmppuv_client_t *c, xmppuv_stanza_t *pres, void *ud) {
  peer_t *p = ud;
  const char *from = xmppuv_stanza_attr(pres, "from");
  const xmppuv_jid_t *me = xmppuv_client_jid(c);
  xmppuv_jid_t *j = NULL;
  if (from != NULL && me != NULL && xmppuv_jid_parse(from, &j) == 0 &&
      xmppuv_jid_bare_equal(j, me) && !xmppuv_jid_equal(j, me) &&
      xmppuv_stanza_attr(pres, "type") == NULL)
    p->own_presences++;
  xmppuv_jid_free(j);
  return XMPPUV_PASS;
}

static void on_receipt(xmppuv_receipts_t *r, const char *from, const char *id,
                       const xmppuv_stanza_t *message, void *ud) {
  peer_t *p = ud;
  p->receipts++;
  copy_str(p->receipt_id, sizeof p->receipt_id, id);
  copy_str(p->receipt_from, sizeof p->receipt_from, from);
}

/* An initial presence on every new session: messages to the bare JID and
 * carbons go to available resources. */
static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  xmppuv_stanza_t *pres;
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &pres), 0);
  ck_assert_int_eq(xmppuv_client_send(c, pres), 0);
  xmppuv_stanza_unref(pres);
}

static void peer_start(env_t *e, peer_t *p, const char *user, const char *resource) {
  p->user = user;
  p->resource = resource;
  client_rec_init(&p->rec, run_clock, &e->loop);
  snprintf(p->jid, sizeof p->jid, "%s@%s", user, e->srv.domain);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = p->jid;
  o.resource = resource;
  o.password = xmppuv_test_password(user);
  o.host = "127.0.0.1";
  o.port = e->srv.port;
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = e->srv.ca_file;
  o.connect_timeout_ms = 5000;
  o.negotiation_timeout_ms = 20000;
  o.sm_ack_debounce_ms = 50;
  if (getenv("SERVERS_LOG") != NULL) {
    o.log_cb = on_log;
    o.log_user_data = p;
    o.log_level = XMPPUV_LOG_TRACE;
  }
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, &p->rec, &p->c), 0);
  xmppuv_client_callbacks_t l;
  xmppuv_client_callbacks_init(&l);
  l.online = on_online;
  ck_assert_int_eq(xmppuv_client_listener_add(p->c, &l, p, NULL), 0);
  xmppuv_carbons_callbacks_t cc;
  xmppuv_carbons_callbacks_init(&cc);
  cc.enabled = on_enabled;
  cc.carbon = on_carbon;
  cc.spoofed = on_spoofed;
  ck_assert_int_eq(xmppuv_carbons_new(p->c, NULL, &cc, p, &p->cb), 0);
  xmppuv_receipts_callbacks_t rc;
  xmppuv_receipts_callbacks_init(&rc);
  rc.receipt = on_receipt;
  ck_assert_int_eq(xmppuv_receipts_new(p->c, NULL, NULL, &rc, p, &p->r), 0);
  ck_assert_int_eq(xmppuv_client_handler_add(p->c, "message", NULL, NULL, on_message, p, NULL),
                   0);
  ck_assert_int_eq(xmppuv_client_handler_add(p->c, "presence", NULL, NULL, on_presence, p, NULL),
                   0);
  ck_assert_int_eq(xmppuv_client_start(p->c), 0);
}

static int all_ready(const env_t *e) {
  return e->one.enabled_calls >= 1 && e->two.enabled_calls >= 1 && e->bob.enabled_calls >= 1 &&
         e->one.own_presences >= 1 && e->two.own_presences >= 1;
}

static void env_start(env_t *e, int kind) {
  memset(e, 0, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  int rc = xmppuv_test_server_start(kinds[kind], 30, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[kind], uv_strerror(rc));
  peer_start(e, &e->bob, "bob", "phone");
  peer_start(e, &e->one, "alice", "one");
  peer_start(e, &e->two, "alice", "two");
  RUN_UNTIL(e, all_ready(e), WAIT_MS);
  ck_assert_msg(all_ready(e), "%s: not ready: alice/one %s, alice/two %s, bob %s", kinds[kind],
                e->one.rec.statuses, e->two.rec.statuses, e->bob.rec.statuses);
  /* Both servers support carbons: every session has them on. */
  ck_assert_int_eq(e->one.enabled_status, 0);
  ck_assert_int_eq(e->two.enabled_status, 0);
  ck_assert_int_eq(e->bob.enabled_status, 0);
  ck_assert(xmppuv_carbons_enabled(e->one.cb));
  ck_assert(xmppuv_carbons_enabled(e->two.cb));
}

static void env_finish(env_t *e) {
  peer_t *peers[] = {&e->one, &e->two, &e->bob};
  for (size_t i = 0; i < 3; i++) {
    ck_assert_uint_eq(peers[i]->spoofed, 0);
    xmppuv_client_close(peers[i]->c, client_rec_close_cb);
  }
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  for (size_t i = 0; i < 3; i++) {
    ck_assert(peers[i]->rec.closed);
    client_rec_free(&peers[i]->rec);
  }
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
  xmppuv_test_server_stop(&e->srv);
}

/* A chat message from `from` to `to`, prepared with a receipt request;
 * its id into id. */
static void send_chat(peer_t *from, const char *to, const char *body, char *id, size_t size) {
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_message_new(to, "chat", body, &m), 0);
  ck_assert_int_eq(xmppuv_receipts_prepare(from->r, m, XMPPUV_RECEIPTS_REQUEST), 0);
  copy_str(id, size, xmppuv_stanza_attr(m, "id"));
  ck_assert_int_eq(xmppuv_client_send(from->c, m), 0);
  xmppuv_stanza_unref(m);
}

/* bob to alice's bare JID: both her resources get it, as the message
 * itself or (where the server routes it to one of them only) as a
 * received carbon; and bob gets an ack for it. */
START_TEST(message_to_the_bare_jid_reaches_both_resources_and_is_acked) {
  env_t *e = malloc(sizeof *e);
  env_start(e, _i);
  char id[64];
  send_chat(&e->bob, "alice@localhost", "to the bare jid", id, sizeof id);
#define GOT(p) ((p).plain + (p).carbons_received >= 1)
  RUN_UNTIL(e, GOT(e->one) && GOT(e->two) && e->bob.receipts >= 1, WAIT_MS);
  ck_assert_msg(GOT(e->one) && GOT(e->two), "%s: one %u+%u, two %u+%u", kinds[_i], e->one.plain,
                e->one.carbons_received, e->two.plain, e->two.carbons_received);
  peer_t *both[] = {&e->one, &e->two};
  for (int i = 0; i < 2; i++)
    ck_assert_str_eq(both[i]->plain ? both[i]->plain_body : both[i]->carbon_body,
                     "to the bare jid");
  ck_assert_msg(e->bob.receipts >= 1, "%s: no ack", kinds[_i]);
  ck_assert_str_eq(e->bob.receipt_id, id);
  ck_assert_ptr_nonnull(strstr(e->bob.receipt_from, "alice@localhost/"));
  env_finish(e);
  free(e);
}
END_TEST

/* bob to alice/one: alice/two gets a received carbon of it; alice/one
 * acks it. */
START_TEST(message_to_one_resource_is_copied_to_the_other_as_received) {
  env_t *e = malloc(sizeof *e);
  env_start(e, _i);
  char id[64];
  send_chat(&e->bob, "alice@localhost/one", "to one", id, sizeof id);
  RUN_UNTIL(e, e->one.plain >= 1 && e->two.carbons_received >= 1 && e->bob.receipts >= 1,
            WAIT_MS);
  ck_assert_msg(e->one.plain == 1, "%s: alice/one got %u", kinds[_i], e->one.plain);
  ck_assert_str_eq(e->one.plain_body, "to one");
  ck_assert_msg(e->two.carbons_received == 1, "%s: alice/two got %u copies, %u messages",
                kinds[_i], e->two.carbons_received, e->two.plain);
  ck_assert_uint_eq(e->two.plain, 0);
  ck_assert_str_eq(e->two.carbon_body, "to one");
  ck_assert_str_eq(e->two.carbon_to, "alice@localhost/one");
  ck_assert_str_eq(e->two.carbon_from, "bob@localhost/phone");
  ck_assert_uint_eq(e->bob.receipts, 1);
  ck_assert_str_eq(e->bob.receipt_id, id);
  ck_assert_str_eq(e->bob.receipt_from, "alice@localhost/one");
  env_finish(e);
  free(e);
}
END_TEST

/* alice/one to bob: alice/two gets a sent carbon; bob gets the message and
 * alice/one his ack. */
START_TEST(message_sent_by_one_resource_is_copied_to_the_other_as_sent) {
  env_t *e = malloc(sizeof *e);
  env_start(e, _i);
  char id[64];
  send_chat(&e->one, "bob@localhost", "from one", id, sizeof id);
  RUN_UNTIL(e, e->bob.plain >= 1 && e->two.carbons_sent >= 1 && e->one.receipts >= 1, WAIT_MS);
  ck_assert_msg(e->bob.plain == 1, "%s: bob got %u", kinds[_i], e->bob.plain);
  ck_assert_str_eq(e->bob.plain_body, "from one");
  ck_assert_str_eq(e->bob.plain_from, "alice@localhost/one");
  ck_assert_msg(e->two.carbons_sent == 1, "%s: alice/two got %u sent copies", kinds[_i],
                e->two.carbons_sent);
  ck_assert_str_eq(e->two.carbon_body, "from one");
  ck_assert_str_eq(e->two.carbon_to, "bob@localhost");
  ck_assert_uint_eq(e->two.plain, 0);
  /* The sender gets no copy of its own message. */
  ck_assert_uint_eq(e->one.carbons_sent, 0);
  ck_assert_msg(e->one.receipts == 1, "%s: no ack from bob", kinds[_i]);
  ck_assert_str_eq(e->one.receipt_id, id);
  ck_assert_str_eq(e->one.receipt_from, "bob@localhost/phone");
  env_finish(e);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_carbons_servers");
  TCase *tc = tcase_create("servers");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, message_to_the_bare_jid_reaches_both_resources_and_is_acked, 0, 2);
  tcase_add_loop_test(tc, message_to_one_resource_is_copied_to_the_other_as_received, 0, 2);
  tcase_add_loop_test(tc, message_sent_by_one_resource_is_copied_to_the_other_as_sent, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
