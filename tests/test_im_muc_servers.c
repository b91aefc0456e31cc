/* The group chat module against Prosody and ejabberd (tests/servers/: a
 * MUC service at conference.localhost): alice, bob and carol join
 * room1@conference.localhost; each sees the three occupants; a message of
 * alice's reaches bob and carol once; the subject reaches everyone. Then
 * carol's connection is cut (a fault proxy between her and the server) and
 * resumed: nothing is joined again and nothing arrives twice. Then an
 * outage past the resumption window: carol's new session joins again and
 * gets what she missed from the history, once. Then bob leaves and the
 * others see him go. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>
#include <xmppuv/im/muc.h>

#include "check_main.h"
#include "client_rec.h"
#include "fault_proxy.h"
#include "run_until.h"
#include "servers.h"

#define ROOM "room1@conference.localhost"
#define WAIT_MS 30000
#define RESUME_S 5 /* the servers' resumption window */

static const char *const kinds[] = {"prosody", "ejabberd"};

typedef struct peer {
  const char *user;
  xmppuv_client_t *c;
  client_rec_t app;
  xmppuv_muc_t *muc;
  xmppuv_muc_room_t *room;
  int joins, lefts, fails;
  xmppuv_muc_left_reason_t reason;
  char fail_cond[64];
  int hello, after, outage; /* room messages with these bodies */
  int outage_history;        /* ... "during the outage" marked as history */
  int subjects;
  char subject[64];
  int bob_gone;
} peer_t;

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard;
  xmppuv_test_server_t srv;
  xmppuv_test_proxy_t *proxy;
  int proxy_closed;
  peer_t p[3]; /* alice, bob, carol */
} env_t;

static void on_joined(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const char *nick, void *ud) {
  (void)m, (void)r, (void)nick;
  ((peer_t *)ud)->joins++;
}

static void on_join_failed(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const char *cond,
                           const char *text, void *ud) {
  (void)m, (void)r, (void)text;
  peer_t *p = ud;
  p->fails++;
  snprintf(p->fail_cond, sizeof p->fail_cond, "%s", cond);
}

static void on_occupant(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const xmppuv_muc_occupant_t *o,
                        void *ud) {
  (void)m, (void)r;
  if (!o->available && strcmp(o->nick, "bob") == 0) ((peer_t *)ud)->bob_gone++;
}

static void on_message(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const xmppuv_muc_message_t *msg,
                       void *ud) {
  (void)m, (void)r;
  peer_t *p = ud;
  const char *body = xmppuv_stanza_child_text(msg->message, "body", NULL);
  if (body != NULL && strcmp(body, "hello") == 0) p->hello++;
  if (body != NULL && strcmp(body, "after the cut") == 0) p->after++;
  if (body != NULL && strcmp(body, "during the outage") == 0) {
    p->outage++;
    p->outage_history += msg->is_history;
  }
}

static void on_subject(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const char *nick,
                       const char *subject, void *ud) {
  (void)m, (void)r, (void)nick;
  peer_t *p = ud;
  p->subjects++;
  snprintf(p->subject, sizeof p->subject, "%s", subject);
}

static void on_left(xmppuv_muc_t *m, xmppuv_muc_room_t *r, xmppuv_muc_left_reason_t reason,
                    const char *text, void *ud) {
  (void)m, (void)r, (void)text;
  peer_t *p = ud;
  p->lefts++;
  p->reason = reason;
}

static const xmppuv_muc_callbacks_t cbs = {sizeof(xmppuv_muc_callbacks_t),
                                           on_joined,
                                           on_join_failed,
                                           on_occupant,
                                           on_message,
                                           on_subject,
                                           on_left};

static void peer_new(env_t *e, peer_t *p, const char *user, unsigned short port) {
  char jid[160];
  snprintf(jid, sizeof jid, "%s@%s", user, e->srv.domain);
  p->user = user;
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = jid;
  o.password = xmppuv_test_password(user);
  o.host = "127.0.0.1";
  o.port = port;
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = e->srv.ca_file;
  o.reconnect_delay_ms = 100;
  o.reconnect_max_delay_ms = 500;
  client_rec_init(&p->app, run_clock, &e->loop);
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, &p->app, &p->c), 0);
  ck_assert_int_eq(xmppuv_muc_new(p->c, NULL, NULL, &cbs, p, &p->muc), 0);
  ck_assert_int_eq(xmppuv_client_start(p->c), 0);
}

static int all_online(env_t *e) {
  for (int i = 0; i < 3; i++)
    if (e->p[i].app.onlines < 1) return 0;
  return 1;
}

static int all(env_t *e, int (*pred)(const peer_t *)) {
  for (int i = 0; i < 3; i++)
    if (!pred(&e->p[i])) return 0;
  return 1;
}

static int joined(const peer_t *p) { return p->joins >= 1; }
static int sees_three(const peer_t *p) { return xmppuv_muc_room_occupant_count(p->room) == 3; }
static int got_hello(const peer_t *p) { return p->hello >= 1; }
static int got_subject(const peer_t *p) { return strcmp(p->subject, "new topic") == 0; }

static void on_proxy_closed(void *ud) { ((env_t *)ud)->proxy_closed = 1; }

START_TEST(three_occupants_talk_in_a_room_and_a_resumed_one_stays_in) {
  env_t *e = calloc(1, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  /* Rooms that archive stamp every message with a stanza-id (by the room):
   * what the history replayed on a rejoin is de-duplicated by. */
  setenv("XMPPUV_SERVER_MAM", "1", 1);
  int rc = xmppuv_test_server_start(kinds[_i], RESUME_S, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[_i], uv_strerror(rc));
  ck_assert_int_eq(xmppuv_test_proxy_start(&e->loop, "127.0.0.1", e->srv.port, &e->proxy), 0);
  peer_t *alice = &e->p[0], *bob = &e->p[1], *carol = &e->p[2];
  peer_new(e, alice, "alice", e->srv.port);
  peer_new(e, bob, "bob", e->srv.port);
  peer_new(e, carol, "carol", xmppuv_test_proxy_port(e->proxy));
  RUN_UNTIL(e, all_online(e), WAIT_MS);
  ck_assert(all_online(e));

  /* alice first (the room is made: an instant room), then the others. */
  ck_assert_int_eq(xmppuv_muc_join(alice->muc, ROOM, "alice", NULL, NULL, &alice->room), 0);
  RUN_UNTIL(e, alice->joins == 1 || alice->fails > 0, WAIT_MS);
  ck_assert_msg(alice->joins == 1, "alice: %s", alice->fail_cond);
  ck_assert_int_eq(xmppuv_muc_join(bob->muc, ROOM, "bob", NULL, NULL, &bob->room), 0);
  ck_assert_int_eq(xmppuv_muc_join(carol->muc, ROOM, "carol", NULL, NULL, &carol->room), 0);
  RUN_UNTIL(e, all(e, joined) || bob->fails > 0 || carol->fails > 0, WAIT_MS);
  ck_assert_msg(all(e, joined), "bob: %s carol: %s", bob->fail_cond, carol->fail_cond);
  RUN_UNTIL(e, all(e, sees_three), WAIT_MS);
  for (int i = 0; i < 3; i++)
    ck_assert_msg(sees_three(&e->p[i]), "%s sees %zu occupants", e->p[i].user,
                  xmppuv_muc_room_occupant_count(e->p[i].room));
  ck_assert_str_eq(xmppuv_muc_room_nick(carol->room), "carol");

  /* A message: everyone (alice too: the room reflects it) once. */
  ck_assert_int_eq(xmppuv_muc_send(alice->room, "hello"), 0);
  RUN_UNTIL(e, all(e, got_hello), WAIT_MS);
  RUN_FOR(e, 300);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(e->p[i].hello, 1);

  /* The subject: the owner sets it, everyone sees it. */
  ck_assert_int_eq(xmppuv_muc_set_subject(alice->room, "new topic"), 0);
  RUN_UNTIL(e, all(e, got_subject), WAIT_MS);
  for (int i = 0; i < 3; i++) ck_assert_str_eq(e->p[i].subject, "new topic");

  /* carol's connection is cut; she resumes: nothing joined again, nothing
   * twice, and what was said meanwhile arrives once. */
  xmppuv_test_proxy_reset_all(e->proxy);
  ck_assert_int_eq(xmppuv_muc_send(alice->room, "after the cut"), 0);
  RUN_UNTIL(e, carol->app.resumes >= 1 && carol->after >= 1, WAIT_MS);
  ck_assert_msg(carol->app.resumes == 1, "carol: %s", carol->app.seq);
  RUN_FOR(e, 500);
  ck_assert_uint_eq(carol->app.onlines, 1);
  ck_assert_int_eq(carol->joins, 1);
  ck_assert_int_eq(carol->after, 1);
  ck_assert_int_eq(carol->hello, 1);
  ck_assert_int_eq(xmppuv_muc_room_state(carol->room), XMPPUV_MUC_ROOM_JOINED);

  /* An outage past the resumption window: the server ends carol's session
   * (the room drops her); she comes back with a new session, joins again
   * and gets what was said meanwhile from the history, once, and what she
   * had seen not again (stanza-ids). */
  xmppuv_test_proxy_refuse(e->proxy, 1);
  xmppuv_test_proxy_reset_all(e->proxy);
  RUN_FOR(e, 500);
  ck_assert_int_eq(xmppuv_muc_send(alice->room, "during the outage"), 0);
  RUN_FOR(e, (RESUME_S + 3) * 1000);
  xmppuv_test_proxy_refuse(e->proxy, 0);
  RUN_UNTIL(e, carol->app.onlines >= 2 && carol->joins >= 2 && carol->outage >= 1, WAIT_MS);
  ck_assert_msg(carol->app.onlines == 2, "carol: %s", carol->app.seq);
  ck_assert_int_eq(carol->joins, 2);
  RUN_FOR(e, 500);
  ck_assert_int_eq(carol->outage, 1);
  ck_assert_int_eq(carol->outage_history, 1);
  ck_assert_int_eq(carol->after, 1);
  ck_assert_int_eq(carol->hello, 1);
  ck_assert_int_eq(xmppuv_muc_room_state(carol->room), XMPPUV_MUC_ROOM_JOINED);
  ck_assert_int_eq(alice->outage, 1);

  /* bob leaves; alice and carol see him go. */
  ck_assert_int_eq(xmppuv_muc_leave(bob->room, "bye"), 0);
  RUN_UNTIL(e, bob->lefts == 1 && alice->bob_gone == 1 && carol->bob_gone == 1, WAIT_MS);
  ck_assert_int_eq(bob->lefts, 1);
  ck_assert_int_eq(bob->reason, XMPPUV_MUC_LEFT_SELF);
  ck_assert_int_eq(alice->bob_gone, 1);
  ck_assert_int_eq(carol->bob_gone, 1);
  ck_assert_uint_eq(xmppuv_muc_room_occupant_count(alice->room), 2);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(e->p[i].fails, 0);

  for (int i = 0; i < 3; i++) xmppuv_client_close(e->p[i].c, client_rec_close_cb);
  xmppuv_test_proxy_close(e->proxy, on_proxy_closed, e);
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 3; i++) ck_assert(e->p[i].app.closed);
  ck_assert(e->proxy_closed);
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
  xmppuv_test_server_stop(&e->srv);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_muc_servers");
  TCase *tc = tcase_create("muc");
  tcase_set_timeout(tc, 240);
  tcase_add_loop_test(tc, three_occupants_talk_in_a_room_and_a_resumed_one_stays_in, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
