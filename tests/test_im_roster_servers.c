/* The roster and presence modules end to end through Prosody and ejabberd
 * (tests/support/servers.h): alice adds bob and asks to see his presence,
 * bob approves and asks back, alice approves: both rosters say "both" and
 * each sees the other's presence; a second resource of alice's with a
 * higher priority is bob's best resource for her until it leaves; alice
 * removes bob and their presence is gone both ways. */
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
  xmppuv_client_t *c;
  client_rec_t rec;
  xmppuv_roster_t *r;
  xmppuv_presence_t *p;
  char jid[160];
  unsigned loaded, requests, items;
  int set_status; /* 1 once a roster_set/remove succeeded, else the error */
} peer_t;

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard;
  xmppuv_test_server_t srv;
  peer_t alice, bob, alice2;
} env_t;

static void on_loaded(xmppuv_roster_t *r, int status, int from_cache, xmppuv_stanza_t *reply,
                      void *ud) {
  (void)r;
  (void)from_cache;
  (void)reply;
  peer_t *p = ud;
  ck_assert_msg(status == 0, "%s: roster fetch: %s", p->jid, xmppuv_err_name(status));
  p->loaded++;
}

static void on_item(xmppuv_roster_t *r, const xmppuv_roster_item_t *it, void *ud) {
  (void)r;
  (void)it;
  ((peer_t *)ud)->items++;
}

static void on_request(xmppuv_roster_t *r, const char *from, xmppuv_stanza_t *s, void *ud) {
  (void)r;
  (void)from;
  (void)s;
  ((peer_t *)ud)->requests++;
}

static void on_done(xmppuv_roster_t *r, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)r;
  (void)reply;
  ((peer_t *)ud)->set_status = status == 0 ? 1 : status;
}

static const xmppuv_roster_callbacks_t roster_cbs = {
    .struct_size = sizeof(xmppuv_roster_callbacks_t),
    .loaded = on_loaded,
    .item = on_item,
    .subscription_request = on_request,
};

static void peer_start(env_t *e, peer_t *p, const char *user, const char *resource, int prio) {
  snprintf(p->jid, sizeof p->jid, "%s@%s/%s", user, e->srv.domain, resource);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = p->jid;
  o.password = xmppuv_test_password(user);
  o.host = "127.0.0.1";
  o.port = e->srv.port;
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = e->srv.ca_file;
  o.resource = resource;
  o.connect_timeout_ms = 5000;
  client_rec_init(&p->rec, run_clock, &e->loop);
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, &p->rec, &p->c), 0);
  ck_assert_int_eq(xmppuv_roster_new(p->c, &roster_cbs, p, &p->r), 0);
  xmppuv_presence_options_t po;
  xmppuv_presence_options_init(&po);
  po.priority = prio;
  po.status = resource;
  ck_assert_int_eq(xmppuv_presence_new(p->c, &po, NULL, p, &p->p), 0);
  ck_assert_int_eq(xmppuv_client_start(p->c), 0);
}

static xmppuv_subscription_t sub_of(const peer_t *p, const char *jid) {
  const xmppuv_roster_item_t *it = xmppuv_roster_get(p->r, jid);
  return it != NULL ? it->subscription : XMPPUV_SUB_REMOVE;
}

static void env_finish(env_t *e) {
  peer_t *peers[] = {&e->alice, &e->bob, &e->alice2};
  for (size_t i = 0; i < 3; i++)
    if (peers[i]->c != NULL) xmppuv_client_close(peers[i]->c, client_rec_close_cb);
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  for (size_t i = 0; i < 3; i++)
    if (peers[i]->c != NULL) ck_assert(peers[i]->rec.closed);
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
  xmppuv_test_server_stop(&e->srv);
}

START_TEST(subscriptions_both_ways_make_both_and_presence_flows_until_removed) {
  env_t *e = calloc(1, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  int rc = xmppuv_test_server_start(kinds[_i], 30, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[_i], uv_strerror(rc));
  char alice[80], bob[80];
  snprintf(alice, sizeof alice, "alice@%s", e->srv.domain);
  snprintf(bob, sizeof bob, "bob@%s", e->srv.domain);
  peer_t *a = &e->alice, *b = &e->bob;
  peer_start(e, a, "alice", "main", 1);
  peer_start(e, b, "bob", "main", 0);
  RUN_UNTIL(e, a->loaded == 1 && b->loaded == 1, WAIT_MS);
  ck_assert_msg(a->loaded == 1 && b->loaded == 1, "%s: not online and loaded: %s / %s",
                kinds[_i], a->rec.statuses, b->rec.statuses);
  ck_assert_uint_eq(xmppuv_roster_count(a->r), 0);

  /* alice adds bob: the server pushes the item back. */
  const char *groups[] = {"Friends"};
  ck_assert_int_eq(xmppuv_roster_set(a->r, bob, "Bob", groups, 1, on_done, a), 0);
  RUN_UNTIL(e, a->set_status != 0 && xmppuv_roster_get(a->r, bob) != NULL, WAIT_MS);
  ck_assert_int_eq(a->set_status, 1);
  const xmppuv_roster_item_t *it = xmppuv_roster_get(a->r, bob);
  ck_assert_ptr_nonnull(it);
  ck_assert_str_eq(it->name, "Bob");
  ck_assert_uint_eq(it->ngroups, 1);
  ck_assert_str_eq(it->groups[0], "Friends");
  ck_assert_int_eq(it->subscription, XMPPUV_SUB_NONE);

  /* alice asks; bob approves: alice sees bob (to), bob is seen (from). */
  ck_assert_int_eq(xmppuv_roster_subscribe(a->r, bob), 0);
  RUN_UNTIL(e, xmppuv_roster_has_request(b->r, alice), WAIT_MS);
  ck_assert_msg(xmppuv_roster_has_request(b->r, alice), "%s: bob got no request", kinds[_i]);
  ck_assert_int_eq(xmppuv_roster_approve(b->r, alice), 0);
  RUN_UNTIL(e, sub_of(a, bob) == XMPPUV_SUB_TO && sub_of(b, alice) == XMPPUV_SUB_FROM &&
                   xmppuv_presence_count(a->p, bob) == 1,
            WAIT_MS);
  ck_assert_int_eq(sub_of(a, bob), XMPPUV_SUB_TO);
  ck_assert_int_eq(sub_of(b, alice), XMPPUV_SUB_FROM);
  ck_assert_uint_eq(xmppuv_presence_count(a->p, bob), 1);

  /* bob asks back; alice approves: both. */
  ck_assert_int_eq(xmppuv_roster_subscribe(b->r, alice), 0);
  RUN_UNTIL(e, xmppuv_roster_has_request(a->r, bob), WAIT_MS);
  ck_assert_msg(xmppuv_roster_has_request(a->r, bob), "%s: alice got no request", kinds[_i]);
  ck_assert_int_eq(xmppuv_roster_approve(a->r, bob), 0);
  RUN_UNTIL(e, sub_of(a, bob) == XMPPUV_SUB_BOTH && sub_of(b, alice) == XMPPUV_SUB_BOTH &&
                   xmppuv_presence_count(b->p, alice) == 1,
            WAIT_MS);
  ck_assert_int_eq(sub_of(a, bob), XMPPUV_SUB_BOTH);
  ck_assert_int_eq(sub_of(b, alice), XMPPUV_SUB_BOTH);
  ck_assert_uint_eq(xmppuv_presence_count(b->p, alice), 1);
  const xmppuv_presence_info_t *pi = xmppuv_presence_best(b->p, alice);
  ck_assert_ptr_nonnull(pi);
  ck_assert_str_eq(pi->resource, "main");
  ck_assert_int_eq(pi->priority, 1);
  ck_assert_str_eq(pi->status, "main");

  /* A second resource of alice's, priority 9: bob's best for her. */
  peer_start(e, &e->alice2, "alice", "two", 9);
  RUN_UNTIL(e, xmppuv_presence_count(b->p, alice) == 2, WAIT_MS);
  ck_assert_uint_eq(xmppuv_presence_count(b->p, alice), 2);
  pi = xmppuv_presence_best(b->p, alice);
  ck_assert_str_eq(pi->resource, "two");
  ck_assert_int_eq(pi->priority, 9);
  /* The second resource's roster is the same. */
  RUN_UNTIL(e, e->alice2.loaded == 1, WAIT_MS);
  ck_assert_int_eq(sub_of(&e->alice2, bob), XMPPUV_SUB_BOTH);
  /* It leaves: bob is left with main. */
  ck_assert_int_eq(xmppuv_client_stop(e->alice2.c), 0);
  RUN_UNTIL(e, xmppuv_presence_count(b->p, alice) == 1, WAIT_MS);
  ck_assert_uint_eq(xmppuv_presence_count(b->p, alice), 1);
  ck_assert_str_eq(xmppuv_presence_best(b->p, alice)->resource, "main");

  /* alice removes bob: gone from her roster (both resources' pushes), and
   * the subscriptions end both ways, so does presence. */
  a->set_status = 0;
  ck_assert_int_eq(xmppuv_roster_remove(a->r, bob, on_done, a), 0);
  RUN_UNTIL(e, a->set_status != 0 && xmppuv_roster_get(a->r, bob) == NULL &&
                   xmppuv_presence_count(b->p, alice) == 0 &&
                   xmppuv_presence_count(a->p, bob) == 0 && sub_of(b, alice) == XMPPUV_SUB_NONE,
            WAIT_MS);
  ck_assert_int_eq(a->set_status, 1);
  ck_assert_ptr_null(xmppuv_roster_get(a->r, bob));
  ck_assert_uint_eq(xmppuv_presence_count(b->p, alice), 0);
  ck_assert_uint_eq(xmppuv_presence_count(a->p, bob), 0);
  ck_assert_int_eq(sub_of(b, alice), XMPPUV_SUB_NONE);
  ck_assert_uint_eq(xmppuv_roster_spoofed_count(a->r), 0);
  ck_assert_uint_eq(xmppuv_roster_spoofed_count(b->r), 0);
  env_finish(e);
  free(e);
}
END_TEST

/* Roster versioning where the server offers it: a client that kept the
 * version and the items is told "unchanged" on its next login. */
typedef struct vpeer {
  peer_t p;
  int from_cache, loads;
} vpeer_t;

static void v_loaded(xmppuv_roster_t *r, int status, int from_cache, xmppuv_stanza_t *reply,
                     void *ud) {
  (void)r;
  (void)reply;
  vpeer_t *v = ud;
  ck_assert_int_eq(status, 0);
  v->loads++;
  v->from_cache = from_cache;
}

START_TEST(a_kept_roster_version_is_answered_as_unchanged) {
  env_t *e = calloc(1, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  int rc = xmppuv_test_server_start(kinds[_i], 30, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[_i], uv_strerror(rc));
  char carol[80];
  snprintf(carol, sizeof carol, "carol@%s", e->srv.domain);
  peer_t *a = &e->alice;
  peer_start(e, a, "alice", "v", 0);
  RUN_UNTIL(e, a->loaded == 1, WAIT_MS);
  ck_assert_uint_eq(a->loaded, 1);
  const xmppuv_stanza_t *f = xmppuv_client_stream_features(a->c);
  int versioning = xmppuv_stanza_child(f, "ver", XMPPUV_NS_ROSTERVER) != NULL;
  /* Both test servers offer it (RFC 6121 §2.6.1). */
  ck_assert_msg(versioning, "%s does not offer roster versioning", kinds[_i]);
  ck_assert_int_eq(xmppuv_roster_set(a->r, carol, "Carol", NULL, 0, on_done, a), 0);
  RUN_UNTIL(e, xmppuv_roster_get(a->r, carol) != NULL, WAIT_MS);
  ck_assert_ptr_nonnull(xmppuv_roster_get(a->r, carol));
  ck_assert_int_eq(xmppuv_client_stop(a->c), 0);
  RUN_UNTIL(e, a->rec.offlines >= 1, WAIT_MS);

  /* The next run: a new client given what the app kept. */
  static const xmppuv_roster_callbacks_t vcbs = {
      .struct_size = sizeof(xmppuv_roster_callbacks_t), .loaded = v_loaded};
  vpeer_t v;
  memset(&v, 0, sizeof v);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = a->jid;
  o.password = xmppuv_test_password("alice");
  o.host = "127.0.0.1";
  o.port = e->srv.port;
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = e->srv.ca_file;
  client_rec_init(&v.p.rec, run_clock, &e->loop);
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, &v.p.rec, &v.p.c), 0);
  ck_assert_int_eq(xmppuv_roster_new(v.p.c, &vcbs, &v, &v.p.r), 0);
  /* What alice's first client held: its version and items. */
  ck_assert_int_eq(xmppuv_roster_set_version(v.p.r, xmppuv_roster_version(a->r)), 0);
  for (size_t i = 0; i < xmppuv_roster_count(a->r); i++)
    ck_assert_int_eq(xmppuv_roster_import_item(v.p.r, xmppuv_roster_item_at(a->r, i)), 0);
  ck_assert_int_eq(xmppuv_client_start(v.p.c), 0);
  RUN_UNTIL(e, v.loads == 1, WAIT_MS);
  ck_assert_int_eq(v.loads, 1);
  if (versioning) {
    ck_assert_ptr_nonnull(xmppuv_roster_version(a->r));
    ck_assert_msg(v.from_cache == 1, "%s: the kept version %s was not current", kinds[_i],
                  xmppuv_roster_version(a->r));
  } else {
    ck_assert_int_eq(v.from_cache, 0);
  }
  const xmppuv_roster_item_t *it = xmppuv_roster_get(v.p.r, carol);
  ck_assert_ptr_nonnull(it);
  ck_assert_str_eq(it->name, "Carol");
  xmppuv_client_close(v.p.c, client_rec_close_cb);
  env_finish(e);
  ck_assert(v.p.rec.closed);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_roster_servers");
  TCase *tc = tcase_create("im_roster_servers");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, subscriptions_both_ways_make_both_and_presence_flows_until_removed, 0,
                      2);
  tcase_add_loop_test(tc, a_kept_roster_version_is_answered_as_unchanged, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
