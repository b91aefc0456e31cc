/* The archive module against Prosody and ejabberd (both archive every
 * message: tests/servers/): alice sends bob 25 messages; a new session of
 * alice's reads them back in pages of 10 (three pages, in order, complete)
 * and catches up from the tenth's id (the other 15). */
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

#define N 25

static const char *const kinds[] = {"prosody", "ejabberd"};

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard;
  xmppuv_test_server_t srv;
  xmppuv_client_t *alice, *bob;
  client_rec_t ra, rb;
  unsigned bob_got;
  char bodies[1024];
  char ids[N][96];
  unsigned nids;
  int done, status, complete;
  unsigned count;
  char last[96];
} env_t;

static xmppuv_client_t *peer(env_t *e, const char *user, client_rec_t *r) {
  static char jids[2][160];
  char *jid = jids[strcmp(user, "bob") == 0];
  snprintf(jid, sizeof jids[0], "%s@%s", user, e->srv.domain);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = jid;
  o.password = xmppuv_test_password(user);
  o.host = "127.0.0.1";
  o.port = e->srv.port;
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = e->srv.ca_file;
  client_rec_init(r, run_clock, &e->loop);
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, r, &c), 0);
  return c;
}

static int bob_on_message(xmppuv_client_t *c, xmppuv_stanza_t *m, void *ud) {
  (void)c;
  env_t *e = ud;
  if (xmppuv_stanza_child_text(m, "body", NULL) != NULL) e->bob_got++;
  return XMPPUV_HANDLED;
}

static void on_msg(xmppuv_mam_t *m, const xmppuv_mam_message_t *r, void *ud) {
  (void)m;
  env_t *e = ud;
  const char *body = xmppuv_stanza_child_text(r->message, "body", NULL);
  size_t n = strlen(e->bodies);
  snprintf(e->bodies + n, sizeof e->bodies - n, "%s ", body != NULL ? body : "?");
  if (e->nids < N) snprintf(e->ids[e->nids++], sizeof e->ids[0], "%s", r->id);
}

static void on_done(xmppuv_mam_t *m, int status, int complete, const char *last, unsigned count,
                    void *ud) {
  (void)m;
  env_t *e = ud;
  e->done++;
  e->status = status;
  e->complete = complete;
  e->count = count;
  snprintf(e->last, sizeof e->last, "%s", last != NULL ? last : "");
}

static void send_presence(xmppuv_client_t *c) {
  xmppuv_stanza_t *p = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &p), 0);
  ck_assert_int_eq(xmppuv_client_send(c, p), 0);
  xmppuv_stanza_unref(p);
}

START_TEST(the_archive_is_read_in_pages_and_caught_up_from_an_id) {
  env_t *e = calloc(1, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  setenv("XMPPUV_SERVER_MAM", "1", 1); /* archiving is off unless asked */
  int rc = xmppuv_test_server_start(kinds[_i], 30, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[_i], uv_strerror(rc));
  e->alice = peer(e, "alice", &e->ra);
  e->bob = peer(e, "bob", &e->rb);
  ck_assert_int_eq(xmppuv_client_handler_add(e->bob, "message", NULL, NULL, bob_on_message, e,
                                             NULL),
                   0);
  ck_assert_int_eq(xmppuv_client_start(e->alice), 0);
  ck_assert_int_eq(xmppuv_client_start(e->bob), 0);
  RUN_UNTIL(e, e->ra.onlines == 1 && e->rb.onlines == 1, 30000);
  ck_assert(e->ra.onlines == 1 && e->rb.onlines == 1);
  send_presence(e->bob);
  send_presence(e->alice);
  RUN_UNTIL(e, e->ra.acks == 1 && e->rb.acks == 1, 20000);

  for (int i = 1; i <= N; i++) {
    char body[16];
    snprintf(body, sizeof body, "m%d", i);
    xmppuv_stanza_t *m = NULL;
    ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", body, &m), 0);
    ck_assert_int_eq(xmppuv_client_send(e->alice, m), 0);
    xmppuv_stanza_unref(m);
  }
  RUN_UNTIL(e, e->ra.acks == 1 + N && e->bob_got == N, 30000);
  ck_assert_uint_eq(e->bob_got, N);

  /* A new session of alice's: the first one closes, a second logs in. */
  xmppuv_client_close(e->alice, client_rec_close_cb);
  RUN_UNTIL(e, e->ra.closed, 20000);
  e->alice = peer(e, "alice", &e->ra);
  xmppuv_mam_t *mam = NULL;
  ck_assert_int_eq(xmppuv_mam_new(e->alice, NULL, NULL, NULL, &mam), 0);
  ck_assert_int_eq(xmppuv_client_start(e->alice), 0);
  RUN_UNTIL(e, e->ra.onlines == 1, 30000);

  xmppuv_mam_filter_t f;
  memset(&f, 0, sizeof f);
  f.with = "bob@localhost";
  f.page_size = 10;
  ck_assert_int_eq(xmppuv_mam_query(mam, &f, on_msg, on_done, e), 0);
  RUN_UNTIL(e, e->done == 1, 30000);
  ck_assert_msg(e->status == 0, "%s", xmppuv_err_name(e->status));
  ck_assert_int_eq(e->complete, 1);
  ck_assert_uint_eq(e->count, N);
  char want[1024] = "";
  for (int i = 1; i <= N; i++) {
    size_t n = strlen(want);
    snprintf(want + n, sizeof want - n, "m%d ", i);
  }
  ck_assert_str_eq(e->bodies, want);
  ck_assert_str_eq(e->last, e->ids[N - 1]);

  /* Catching up from the tenth: the other fifteen, and the same last id. */
  char tenth[96];
  snprintf(tenth, sizeof tenth, "%s", e->ids[9]);
  e->bodies[0] = '\0';
  e->nids = 0;
  ck_assert_int_eq(xmppuv_mam_catch_up(mam, tenth, on_msg, on_done, e), 0);
  RUN_UNTIL(e, e->done == 2, 30000);
  ck_assert_int_eq(e->status, 0);
  ck_assert_int_eq(e->complete, 1);
  ck_assert_uint_eq(e->count, N - 10);
  ck_assert_ptr_nonnull(strstr(e->bodies, "m11 m12"));
  ck_assert_ptr_null(strstr(e->bodies, "m10 "));

  xmppuv_client_close(e->alice, client_rec_close_cb);
  xmppuv_client_close(e->bob, client_rec_close_cb);
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
  xmppuv_test_server_stop(&e->srv);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_mam_servers");
  TCase *tc = tcase_create("mam");
  tcase_set_timeout(tc, 180);
  tcase_add_loop_test(tc, the_archive_is_read_in_pages_and_caught_up_from_an_id, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
