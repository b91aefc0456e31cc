/* The discovery module end to end through Prosody and ejabberd
 * (tests/support/servers.h): bob attaches it and sends alice a directed
 * presence with his capabilities; alice asks him through the server, checks
 * the answer against the hash, and asks nobody the second time. */
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

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard;
  xmppuv_test_server_t srv;
  xmppuv_client_t *alice, *bob;
  client_rec_t ra, rb;
  xmppuv_disco_t *da, *db;
  char node[128], ver[64], from[128]; /* bob's <c/>, as alice saw it */
  int infos, verified, from_cache;
  size_t nfeatures;
  int has_bob_feature;
} env_t;

static xmppuv_client_t *peer(env_t *e, const char *user, client_rec_t *r) {
  static char jids[2][160];
  char *jid = jids[strcmp(user, "bob") == 0];
  snprintf(jid, sizeof jids[0], "%s@%s/disco", user, e->srv.domain);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = jid;
  o.password = xmppuv_test_password(user);
  o.host = "127.0.0.1";
  o.port = e->srv.port;
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = e->srv.ca_file;
  o.resource = "disco";
  client_rec_init(r, run_clock, &e->loop);
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, r, &c), 0);
  return c;
}

/* alice keeps the <c/> of bob's presence. */
static int on_presence(xmppuv_client_t *c, xmppuv_stanza_t *p, void *ud) {
  (void)c;
  env_t *e = ud;
  const xmppuv_stanza_t *caps = xmppuv_stanza_child(p, "c", XMPPUV_NS_CAPS);
  const char *from = xmppuv_stanza_attr(p, "from");
  if (caps == NULL || from == NULL || strncmp(from, "bob@", 4) != 0) return XMPPUV_PASS;
  snprintf(e->node, sizeof e->node, "%s", xmppuv_stanza_attr(caps, "node"));
  snprintf(e->ver, sizeof e->ver, "%s", xmppuv_stanza_attr(caps, "ver"));
  snprintf(e->from, sizeof e->from, "%s", from);
  return XMPPUV_HANDLED;
}

static void on_info(xmppuv_disco_t *d, int status, const xmppuv_disco_info_t *info, void *ud) {
  (void)d;
  env_t *e = ud;
  e->infos++;
  ck_assert_msg(status == 0, "disco#info: %s", xmppuv_err_name(status));
  e->verified = info->verified;
  e->from_cache = info->from_cache;
  e->nfeatures = info->nfeatures;
  e->has_bob_feature = 0;
  for (size_t i = 0; i < info->nfeatures; i++)
    e->has_bob_feature |= strcmp(info->features[i], "urn:example:bobs-feature") == 0;
}

START_TEST(capabilities_are_announced_asked_verified_and_cached) {
  env_t *e = calloc(1, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  int rc = xmppuv_test_server_start(kinds[_i], 30, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[_i], uv_strerror(rc));
  e->alice = peer(e, "alice", &e->ra);
  e->bob = peer(e, "bob", &e->rb);
  xmppuv_disco_identity_t ia = {"client", "pc", "alice's client", NULL};
  xmppuv_disco_identity_t ib = {"client", "bot", "bob's bot", "en"};
  ck_assert_int_eq(xmppuv_disco_new(e->alice, &ia, NULL, &e->da), 0);
  ck_assert_int_eq(xmppuv_disco_new(e->bob, &ib, "https://example.org/bob", &e->db), 0);
  ck_assert_int_eq(xmppuv_disco_add_feature(e->db, "urn:example:bobs-feature"), 0);
  ck_assert_int_eq(xmppuv_client_handler_add(e->alice, "presence", NULL, NULL, on_presence, e,
                                             NULL),
                   0);
  ck_assert_int_eq(xmppuv_client_start(e->alice), 0);
  ck_assert_int_eq(xmppuv_client_start(e->bob), 0);
  RUN_UNTIL(e, e->ra.onlines == 1 && e->rb.onlines == 1, 30000);
  ck_assert(e->ra.onlines == 1 && e->rb.onlines == 1);

  /* bob: a directed presence with his capabilities (no subscription). */
  xmppuv_stanza_t *p = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &p), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(p, "to", "alice@localhost/disco"), 0);
  ck_assert_int_eq(xmppuv_disco_add_caps(e->db, p), 0);
  ck_assert_int_eq(xmppuv_client_send(e->bob, p), 0);
  xmppuv_stanza_unref(p);
  RUN_UNTIL(e, e->ver[0] != '\0', 20000);
  ck_assert_str_eq(e->ver, xmppuv_disco_caps_ver(e->db));
  ck_assert_str_eq(e->node, "https://example.org/bob");

  /* alice asks him through the server: verified, cached. */
  ck_assert_int_eq(xmppuv_disco_info_caps(e->da, e->from, e->node, e->ver, "sha-1", on_info, e),
                   0);
  RUN_UNTIL(e, e->infos == 1, 20000);
  ck_assert_int_eq(e->infos, 1);
  ck_assert_int_eq(e->verified, 1);
  ck_assert_int_eq(e->from_cache, 0);
  ck_assert_int_eq(e->has_bob_feature, 1);
  ck_assert_uint_eq(xmppuv_disco_cache_size(e->da), 1);
  /* Asked again: from the cache, at once. */
  ck_assert_int_eq(xmppuv_disco_info_caps(e->da, e->from, e->node, e->ver, "sha-1", on_info, e),
                   0);
  ck_assert_int_eq(e->infos, 2);
  ck_assert_int_eq(e->from_cache, 1);
  /* And a plain disco#info of bob (no node): the same features. */
  ck_assert_int_eq(xmppuv_disco_info(e->da, e->from, NULL, on_info, e), 0);
  RUN_UNTIL(e, e->infos == 3, 20000);
  ck_assert_int_eq(e->has_bob_feature, 1);
  ck_assert_int_eq(e->verified, 0); /* nothing to check it against */
  ck_assert_uint_eq(e->ra.errors + e->rb.errors, 0);

  xmppuv_client_close(e->alice, client_rec_close_cb);
  xmppuv_client_close(e->bob, client_rec_close_cb);
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ck_assert(e->ra.closed && e->rb.closed);
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
  xmppuv_test_server_stop(&e->srv);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_disco_servers");
  TCase *tc = tcase_create("disco");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, capabilities_are_announced_asked_verified_and_cached, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
