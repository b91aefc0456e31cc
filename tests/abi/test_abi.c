/* The ABI promise for the sized structs, as an app built against an older
 * header meets it: its options and callbacks are shorter than today's, and
 * the library reads no byte past what the app's struct_size says (each
 * struct sits at the end of a page followed by an inaccessible one: a read
 * past it is a crash), fills the rest with the defaults, and the client
 * works. Built against the shared library, like an app (meson.build).
 * A loopback scripted server (client_world.h). */
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "layout_0_1.h"
#include "login_script.h"
#include "xmppuv.h"

/* Today's header only appends: every field of the shorter layout keeps its
 * offset. */
#define SAME_PLACE(old, now, field)                                               \
  _Static_assert(offsetof(old, field) == offsetof(now, field) &&                  \
                     sizeof(((old *)0)->field) == sizeof(((now *)0)->field),      \
                 #field " moved")
#define O(f) SAME_PLACE(options_0_1_t, xmppuv_client_options_t, f)
O(struct_size); O(jid); O(password); O(password_cb); O(password_user_data); O(resource);
O(lang); O(host); O(port); O(tls); O(ca_file); O(ca_path); O(pin); O(tls_insecure);
O(dns_servers); O(sasl_mechanisms); O(allow_anonymous); O(connect_timeout_ms);
O(negotiation_timeout_ms); O(close_timeout_ms); O(iq_timeout_ms); O(keepalive_ms);
O(keepalive_timeout_ms); O(reconnect); O(reconnect_delay_ms); O(reconnect_max_delay_ms);
O(sm); O(sm_resume); O(sm_max_resume_s); O(sm_ack_debounce_ms); O(sm_ack_threshold);
O(sm_idle_request_ms); O(sm_ack_timeout_ms); O(sm_wait_timeout_ms); O(sm_queue_max);
O(sm_resend_on_failed); O(sm_drain_timeout_ms); O(max_stanza_bytes); O(max_depth);
O(max_attrs); O(log_cb); O(log_user_data); O(log_level); O(max_send_bytes);
#define C(f) SAME_PLACE(callbacks_0_1_t, xmppuv_client_callbacks_t, f)
C(struct_size); C(status); C(online); C(resumed); C(error); C(ack); C(fail);
C(reconnecting); C(stanza);

/* ---- a struct at the end of a page, the next one inaccessible ------------------ */

typedef struct guarded {
  unsigned char *pages;
  size_t page;
} guarded_t;

static void *guarded_alloc(guarded_t *g, size_t size) {
  g->page = (size_t)sysconf(_SC_PAGESIZE);
  g->pages = mmap(NULL, 2 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(g->pages, MAP_FAILED);
  ck_assert_int_eq(mprotect(g->pages + g->page, g->page, PROT_NONE), 0);
  ck_assert_uint_eq(size % sizeof(void *), 0);
  memset(g->pages, 0xA5, g->page); /* garbage before the struct, as on a heap */
  return g->pages + g->page - size;
}

static void guarded_free(guarded_t *g) { ck_assert_int_eq(munmap(g->pages, 2 * g->page), 0); }

/* ---- what the old app sees ---------------------------------------------------- */

typedef struct old_app {
  unsigned onlines, acks, fails, errors, closed;
  char jid[64];
} old_app_t;

static void old_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c;
  old_app_t *a = ud;
  a->onlines++;
  snprintf(a->jid, sizeof a->jid, "%s", xmppuv_jid_string(jid));
}
static void old_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c, (void)s;
  ((old_app_t *)ud)->acks++;
}
static void old_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  (void)c, (void)s, (void)reason;
  ((old_app_t *)ud)->fails++;
}
static void old_error(xmppuv_client_t *c, const xmppuv_error_t *e, void *ud) {
  (void)c, (void)e;
  ((old_app_t *)ud)->errors++;
}
static void old_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  ((old_app_t *)ud)->closed++;
}

START_TEST(an_app_built_against_a_shorter_layout_gets_the_defaults_goes_online_and_its_ack) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT("from an old app</body>"),
                                          SCRIPT_EXPECT("<r "), SCRIPT_SEND(SM_A("1")),
                                          SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);

  guarded_t og, cg;
  options_0_1_t *o = guarded_alloc(&og, sizeof *o);
  xmppuv_client_options_init_sized((xmppuv_client_options_t *)o, sizeof *o);
  /* The defaults of the fields it knows, and nothing written past them. */
  ck_assert_uint_eq(o->struct_size, sizeof *o);
  ck_assert_int_eq(o->sm, 1);
  ck_assert_int_eq(o->reconnect, 1);
  ck_assert_uint_eq(o->connect_timeout_ms, 10000);
  ck_assert_uint_eq(o->sm_queue_max, 4096);
  ck_assert_int_eq(o->log_level, XMPPUV_LOG_INFO);
  ck_assert_ptr_null(o->jid);
  o->jid = "alice@localhost";
  o->password = "alice-secret";
  o->host = "127.0.0.1";
  o->port = world_port(&w, 0);
  o->tls = XMPPUV_TLS_DISABLED_INSECURE;
  o->close_timeout_ms = 1000;
  o->sm_ack_debounce_ms = 20;
  o->log_level = XMPPUV_LOG_NONE;

  callbacks_0_1_t *cbs = guarded_alloc(&cg, sizeof *cbs);
  xmppuv_client_callbacks_init_sized((xmppuv_client_callbacks_t *)cbs, sizeof *cbs);
  ck_assert_uint_eq(cbs->struct_size, sizeof *cbs);
  ck_assert(cbs->stanza == NULL && cbs->online == NULL);
  cbs->online = old_online;
  cbs->ack = old_ack;
  cbs->fail = old_fail;
  cbs->error = old_error;

  old_app_t app;
  memset(&app, 0, sizeof app);
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&w.loop, (const xmppuv_client_options_t *)o,
                                     (const xmppuv_client_callbacks_t *)cbs, &app, &c), 0);
  /* The library took copies: the app's structs may go now. */
  guarded_free(&og);
  guarded_free(&cg);
  ck_assert_int_eq(xmppuv_client_start(c), 0);
  RUN_UNTIL(&w, app.onlines >= 1, 10000);
  ck_assert_uint_eq(app.onlines, 1);
  ck_assert_str_eq(app.jid, "alice@localhost/r0");
  ck_assert(xmppuv_client_sm_enabled(c)); /* the default it did not set */

  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", "from an old app", &m), 0);
  ck_assert_int_eq(xmppuv_client_send(c, m), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(&w, app.acks >= 1, 10000);
  ck_assert_uint_eq(app.acks, 1);
  ck_assert_uint_eq(app.fails, 0);
  ck_assert_uint_eq(app.errors, 0);
  ck_assert(world_script_done(&w, 0, 0));

  xmppuv_client_close(c, old_closed);
  world_finish(&w); /* w.c is NULL: only the servers, then the loop */
  ck_assert_uint_eq(app.closed, 1);
}
END_TEST

static char logged[512];

static void capture_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud, (void)level, (void)area;
  snprintf(logged, sizeof logged, "%s", msg);
}

START_TEST(an_app_built_against_a_newer_header_is_refused_with_a_reason) {
  /* Today's struct and 64 bytes the library does not know. */
  struct {
    xmppuv_client_options_t o;
    unsigned char later[64];
  } newer;
  memset(&newer, 0, sizeof newer);
  xmppuv_client_options_init_sized(&newer.o, sizeof newer);
  ck_assert_uint_eq(newer.o.struct_size, sizeof newer);
  ck_assert_uint_eq(newer.o.sm_queue_max, 4096); /* what it knows: defaults */
  newer.o.jid = "alice@localhost";
  newer.o.password = "alice-secret";
  newer.o.log_cb = capture_log;
  logged[0] = '\0';
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&loop, &newer.o, NULL, NULL, &c), XMPPUV_EINVAL);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(logged, "newer xmppuv") != NULL, "log: %s", logged);

  /* Shorter than any layout ever was: not an _init's work. */
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = "alice@localhost";
  o.password = "alice-secret";
  o.struct_size = offsetof(xmppuv_client_options_t, max_send_bytes);
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, NULL, NULL, &c), XMPPUV_EINVAL);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("abi");
  TCase *tc = tcase_create("abi");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, an_app_built_against_a_shorter_layout_gets_the_defaults_goes_online_and_its_ack);
  tcase_add_test(tc, an_app_built_against_a_newer_header_is_refused_with_a_reason);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
