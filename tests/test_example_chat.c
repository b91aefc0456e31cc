/* examples/chat as a newcomer uses it, against Prosody and ejabberd: alice
 * is the example (commands written to its standard input as its output
 * asks for them), bob a client of this process with the chat layer's
 * roster, presence, receipts and group chat modules. alice adds bob (he
 * approves and asks back), sees his presence, chats with a receipt coming
 * back, gets his answer, joins a room where he speaks, quits; bob writes to
 * her while she is away, and her next run, with its --state, catches up
 * from the archive. */
#include <check.h>
#include <signal.h>
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
#define ROOM "room1@conference.localhost"

typedef struct env env_t;

/* The example as a child process, its stdout split into lines. */
typedef struct proc {
  env_t *e;
  uv_process_t p;
  uv_pipe_t in, out;
  int running, open;
  int64_t status;
  char buf[65536];
  size_t len;
  char all[65536]; /* every line, for the assertions and the failure text */
  size_t all_len;
} proc_t;

struct env {
  uv_loop_t loop;
  run_guard_t guard;
  xmppuv_test_server_t srv;
  xmppuv_client_t *bob;
  client_rec_t rb;
  xmppuv_roster_t *roster;
  xmppuv_presence_t *presence;
  xmppuv_receipts_t *receipts;
  xmppuv_muc_t *muc;
  xmppuv_muc_room_t *room;
  int bob_joined;
  unsigned bob_got; /* chat messages from alice */
  int away_done, away_status; /* the message sent while alice was away */
  char alice_full[160];
  proc_t chat;
  char state[300];
};

static int seen(const proc_t *p, const char *text) { return strstr(p->all, text) != NULL; }

static void on_line(proc_t *p, const char *line) {
  size_t n = strlen(line);
  if (p->all_len + n + 2 < sizeof p->all) {
    memcpy(p->all + p->all_len, line, n);
    p->all_len += n;
    p->all[p->all_len++] = '\n';
    p->all[p->all_len] = '\0';
  }
  if (strncmp(line, "online ", 7) == 0)
    snprintf(p->e->alice_full, sizeof p->e->alice_full, "%s", line + 7);
  if (getenv("CHAT_LOG") != NULL) fprintf(stderr, "[chat] %s\n", line);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  proc_t *p = h->data;
  b->base = p->buf + p->len;
  b->len = sizeof p->buf - p->len - 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  proc_t *p = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  p->len += (size_t)n;
  p->buf[p->len] = '\0';
  char *start = p->buf, *nl;
  while ((nl = strchr(start, '\n')) != NULL) {
    *nl = '\0';
    on_line(p, start);
    start = nl + 1;
  }
  p->len = strlen(start);
  memmove(p->buf, start, p->len + 1);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig) {
  proc_t *p = h->data;
  p->running = 0;
  p->status = sig != 0 ? 128 + sig : status;
  uv_close((uv_handle_t *)h, NULL);
  uv_close((uv_handle_t *)&p->in, NULL);
}

static void chat_start(env_t *e, int with_state) {
  proc_t *p = &e->chat;
  memset(p, 0, sizeof *p);
  p->e = e;
  const char *exe = getenv("XMPPUV_EXAMPLE_CHAT");
  ck_assert_msg(exe != NULL, "XMPPUV_EXAMPLE_CHAT is not set (meson test sets it)");
  char port[16];
  snprintf(port, sizeof port, "%u", e->srv.port);
  char *argv[] = {(char *)"timeout", (char *)"-s", (char *)"KILL", (char *)"90", (char *)exe,
                  (char *)"--jid", (char *)"alice@localhost", (char *)"--host",
                  (char *)"127.0.0.1", (char *)"--port", port, (char *)"--tls",
                  (char *)"starttls", (char *)"--ca-file", e->srv.ca_file,
                  with_state ? (char *)"--state" : NULL, e->state, NULL};
  static char pw[] = "XMPPUV_PASSWORD=alice-secret";
  char *env[] = {pw, NULL};
  uv_pipe_init(&e->loop, &p->in, 0);
  uv_pipe_init(&e->loop, &p->out, 0);
  p->in.data = p->out.data = p->p.data = p;
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&p->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&p->out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.file = "timeout";
  po.args = argv;
  po.env = env;
  po.exit_cb = on_exit_cb;
  po.stdio = stdio;
  po.stdio_count = 3;
  ck_assert_int_eq(uv_spawn(&e->loop, &p->p, &po), 0);
  p->running = 1;
  ck_assert_int_eq(uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read), 0);
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void type_line(env_t *e, const char *line) {
  uv_write_t *w = malloc(sizeof *w + strlen(line) + 1);
  char *copy = (char *)(w + 1);
  memcpy(copy, line, strlen(line) + 1);
  uv_buf_t b = uv_buf_init(copy, (unsigned)strlen(copy));
  ck_assert_int_eq(uv_write(w, (uv_stream_t *)&e->chat.in, &b, 1, on_written), 0);
}

/* ---- bob --------------------------------------------------------------------- */

static void bob_request(xmppuv_roster_t *r, const char *from, xmppuv_stanza_t *p, void *ud) {
  (void)p, (void)ud;
  xmppuv_roster_approve(r, from);
  xmppuv_roster_subscribe(r, from);
}

static int bob_on_message(xmppuv_client_t *c, xmppuv_stanza_t *m, void *ud) {
  (void)c;
  env_t *e = ud;
  const char *body = xmppuv_stanza_child_text(m, "body", NULL);
  const char *type = xmppuv_stanza_attr(m, "type");
  if (body != NULL && (type == NULL || strcmp(type, "groupchat") != 0)) e->bob_got++;
  return XMPPUV_PASS;
}

static void bob_joined(xmppuv_muc_t *m, xmppuv_muc_room_t *room, const char *nick, void *ud) {
  (void)m, (void)room, (void)nick;
  ((env_t *)ud)->bob_joined = 1;
}

static void bob_start(env_t *e) {
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = "bob@localhost/phone";
  o.password = xmppuv_test_password("bob");
  o.host = "127.0.0.1";
  o.port = e->srv.port;
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = e->srv.ca_file;
  o.resource = "phone";
  client_rec_init(&e->rb, run_clock, &e->loop);
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, &e->rb, &e->bob), 0);
  xmppuv_roster_callbacks_t rc;
  memset(&rc, 0, sizeof rc);
  rc.struct_size = sizeof rc;
  rc.subscription_request = bob_request;
  ck_assert_int_eq(xmppuv_roster_new(e->bob, &rc, e, &e->roster), 0);
  ck_assert_int_eq(xmppuv_presence_new(e->bob, NULL, NULL, e, &e->presence), 0);
  ck_assert_int_eq(xmppuv_receipts_new(e->bob, NULL, NULL, NULL, e, &e->receipts), 0);
  xmppuv_muc_callbacks_t mc;
  xmppuv_muc_callbacks_init(&mc);
  mc.joined = bob_joined;
  ck_assert_int_eq(xmppuv_muc_new(e->bob, NULL, NULL, &mc, e, &e->muc), 0);
  ck_assert_int_eq(xmppuv_client_handler_add(e->bob, "message", NULL, NULL, bob_on_message, e,
                                             NULL),
                   0);
  ck_assert_int_eq(xmppuv_client_start(e->bob), 0);
}

static void bob_says(env_t *e, const char *to, const char *body) {
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new(to, "chat", body, &m), 0);
  ck_assert_int_eq(xmppuv_client_send(e->bob, m), 0);
  xmppuv_stanza_unref(m);
}

static void away_sent(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  (void)c, (void)s;
  env_t *e = ud;
  e->away_done = 1;
  e->away_status = status;
}

#define WAIT_LINE(e, text)                                                            \
  do {                                                                                \
    RUN_UNTIL(e, seen(&(e)->chat, text) || !(e)->chat.running, 30000);                \
    ck_assert_msg(seen(&(e)->chat, text), "%s: no \"%s\" from examples/chat:\n%s",    \
                  kinds[_i], text, (e)->chat.all);                                    \
  } while (0)

START_TEST(a_newcomer_chats_joins_a_room_and_catches_up) {
  env_t *e = calloc(1, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  setenv("XMPPUV_SERVER_MAM", "1", 1); /* archiving is off unless asked */
  int rc = xmppuv_test_server_start(kinds[_i], 30, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[_i], uv_strerror(rc));
  snprintf(e->state, sizeof e->state, "%s/alice-chat.state", e->srv.dir);
  bob_start(e);
  RUN_UNTIL(e, e->rb.onlines == 1, 30000);

  chat_start(e, 1);
  WAIT_LINE(e, "online alice@localhost/");
  type_line(e, "/add bob@localhost Bob\n");
  WAIT_LINE(e, "roster bob@localhost both");
  WAIT_LINE(e, "presence bob@localhost/phone online");
  type_line(e, "/msg bob@localhost hello bob\n");
  WAIT_LINE(e, "receipt bob@localhost/phone ");
  bob_says(e, e->alice_full, "hi alice");
  WAIT_LINE(e, "msg bob@localhost/phone hi alice");
  ck_assert_uint_eq(e->bob_got, 1);

  ck_assert_int_eq(xmppuv_muc_join(e->muc, ROOM, "bob", NULL, NULL, &e->room), 0);
  RUN_UNTIL(e, e->bob_joined, 30000);
  type_line(e, "/join " ROOM " alice\n");
  WAIT_LINE(e, "room " ROOM " joined alice");
  ck_assert_int_eq(xmppuv_muc_send(e->room, "welcome"), 0);
  WAIT_LINE(e, "room " ROOM " bob: welcome");
  type_line(e, "/say " ROOM " thanks\n");
  WAIT_LINE(e, "room " ROOM " alice: thanks");
  /* A room is not a contact. */
  ck_assert_msg(!seen(&e->chat, "presence " ROOM), "%s", e->chat.all);
  type_line(e, "/quit\n");
  RUN_UNTIL(e, !e->chat.running, 30000);
  ck_assert_int_eq(e->chat.running, 0);
  ck_assert_msg(e->chat.status == 0, "exit %lld:\n%s", (long long)e->chat.status, e->chat.all);
  WAIT_LINE(e, "status offline");

  /* While alice is away, bob writes; the archive keeps it. Her next run
   * catches up from the mark the first one left in its state. */
  xmppuv_stanza_t *away = NULL;
  ck_assert_int_eq(xmppuv_message_new("alice@localhost", "chat", "while you were away", &away),
                   0);
  ck_assert_int_eq(xmppuv_client_send_tracked(e->bob, away, away_sent, e), 0);
  xmppuv_stanza_unref(away);
  RUN_UNTIL(e, e->away_done, 20000);
  ck_assert_int_eq(e->away_status, 0);
  chat_start(e, 1);
  WAIT_LINE(e, "caught-up ");
  ck_assert_msg(seen(&e->chat, "history bob@localhost/phone while you were away"), "%s",
                e->chat.all);
  type_line(e, "/quit\n");
  RUN_UNTIL(e, !e->chat.running, 30000);
  ck_assert_int_eq(e->chat.status, 0);

  xmppuv_client_close(e->bob, client_rec_close_cb);
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
  xmppuv_test_server_stop(&e->srv);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("example_chat");
  TCase *tc = tcase_create("chat");
  tcase_set_timeout(tc, 240);
  tcase_add_loop_test(tc, a_newcomer_chats_joins_a_room_and_catches_up, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
