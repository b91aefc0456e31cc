/* Hostile and broken servers: the client (lib/client.c) over loopback
 * against the scripted server (tests/support/script_server.h), and over
 * direct TLS against a TLS front on mbedTLS (tests/support/tls_front.h)
 * that cuts a record in half. Each test asserts what the app observes: the
 * `error` event (code, condition, fatal), whether the client reconnects
 * (connections counted at the server) and only where that makes sense, the
 * stream error the client sends back where RFC 6120 §4.9 wants one (the
 * recorded client bytes), that memory stays bounded (the counting allocator
 * of tests/support/failalloc.h: peak live bytes, not RSS) and nothing
 * leaks, and, with Stream Management, that every stanza the app sent ends
 * in exactly one `ack` or `fail`, acked ones never failed and the rest
 * resent or failed, never dropped. XMPPUV_TEST_LOG=1 prints the client's
 * log. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "failalloc.h"
#include "login_script.h"
#include "scram_server.h"
#include "session/session.h"
#include "session/stream_error.h"
#include "tls_front.h"
#include "tls_peer.h"
#include "xmppuv.h"

/* ---- script pieces (and tests/support/login_script.h) ------------------------ */

/* Every session here is 'sm-1', whatever the connection. */
#define LOGIN_SM1 LOGIN_SM_ID("sm-1")
/* What the client sends when it ends the stream with this condition. */
#define CLIENT_ERROR(cond) "<" cond " xmlns='" NS_STREAM_ERRORS "'/>"
#define INBOUND_MSG                                                          \
  "<message from='bob@localhost/x' to='alice@localhost/r{n}' type='chat'>"   \
  "<body>hello</body></message>"
/* After LOGIN_SM1 with three messages sent: the first acked, and an <r/>
 * answered, so the ack was taken before whatever comes next. */
#define ACK_FIRST_OF_THREE                                                   \
  SCRIPT_EXPECT("third</body>"), SCRIPT_SEND(SM_A("1") SM_R), SCRIPT_EXPECT("<a ")

/* ---- memory: xmppuv's live bytes (failalloc.h), and the peak from an event -- */

/* The peak starts again from the live bytes at the first event of this
 * name (a status name or "online-event"); NULL: never. */
static const char *reset_peak_on;

static void reset_peak_hook(client_rec_t *a, xmppuv_client_t *c, const char *event) {
  (void)a;
  (void)c;
  if (reset_peak_on != NULL && strcmp(reset_peak_on, event) == 0) {
    reset_peak_on = NULL;
    failalloc_peak_reset();
  }
}

/* ---- the pump ------------------------------------------------------------------ */

/* Streams endless data on a connection (never more than 256 KiB queued in
 * the server, at most cap bytes in all) until the client drops it. */
typedef struct pump {
  uv_idle_t idle;
  xmppuv_test_script_conn_t *conn;
  const char *prefix;
  char *chunk;
  size_t chunk_len, sent, cap;
} pump_t;

#define PUMP_QUEUE_MAX (256u * 1024u)

static void on_pump(uv_idle_t *h) {
  pump_t *p = h->data;
  xmppuv_test_script_conn_t *k = p->conn;
  while (p->sent < p->cap && !xmppuv_test_script_conn_closed(k) &&
         xmppuv_test_script_conn_peer(k) == XMPPUV_TEST_PEER_OPEN &&
         xmppuv_test_script_conn_write_queue(k) < PUMP_QUEUE_MAX) {
    if (xmppuv_test_script_conn_send(k, p->chunk, p->chunk_len) != 0) break;
    p->sent += p->chunk_len;
  }
  if (p->sent >= p->cap || xmppuv_test_script_conn_closed(k) ||
      xmppuv_test_script_conn_peer(k) != XMPPUV_TEST_PEER_OPEN ||
      xmppuv_test_script_conn_write_queue(k) >= PUMP_QUEUE_MAX) {
    /* Done, or waiting for the kernel to take what is queued: a timer-free
     * back-off (the idle handle would spin otherwise). */
    uv_idle_stop(h);
    if (p->sent < p->cap && !xmppuv_test_script_conn_closed(k) &&
        xmppuv_test_script_conn_peer(k) == XMPPUV_TEST_PEER_OPEN)
      uv_idle_start(h, on_pump);
  }
}

/* SCRIPT_CALL: send the prefix, then the chunk over and over. */
static int pump_start(xmppuv_test_script_conn_t *conn, void *arg) {
  pump_t *p = arg;
  p->conn = conn;
  if (p->prefix != NULL) {
    size_t n = strlen(p->prefix);
    if (xmppuv_test_script_conn_send(conn, p->prefix, n) != 0) return -1;
    p->sent += n;
  }
  uv_idle_start(&p->idle, on_pump);
  return 0;
}

static void pump_init(pump_t *p, uv_loop_t *loop) {
  memset(p, 0, sizeof *p);
  ck_assert_int_eq(uv_idle_init(loop, &p->idle), 0);
  p->idle.data = p;
}

static void pump_closed(uv_handle_t *h) {
  pump_t *p = h->data;
  free(p->chunk);
}

/* Before finish(): the pump stops and frees its chunk once closed. */
static void pump_close(pump_t *p) { uv_close((uv_handle_t *)&p->idle, pump_closed); }

/* chunk: text repeated to about 16 KiB per write. */
static void pump_set(pump_t *p, const char *prefix, const char *unit, size_t cap) {
  size_t u = strlen(unit), reps = 16384 / u + 1;
  p->prefix = prefix;
  p->chunk = malloc(u * reps);
  ck_assert_ptr_nonnull(p->chunk);
  for (size_t i = 0; i < reps; i++) memcpy(p->chunk + i * u, unit, u);
  p->chunk_len = u * reps;
  p->cap = cap;
}

/* ---- setup and teardown ------------------------------------------------------------ */

static void setup(world_t *r) {
  /* The servers write to clients that hang up on them. */
  signal(SIGPIPE, SIG_IGN);
  failalloc_install();
  reset_peak_on = NULL;
  world_init(r);
  r->app.on_event = reset_peak_hook;
}

static void base_opts(xmppuv_client_options_t *o, unsigned short port) {
  world_opts(o, port);
  o->close_timeout_ms = 500;
  /* Acks come when the script sends them, not on the client's timers. */
  o->sm_ack_debounce_ms = 0;
  o->sm_idle_request_ms = 0;
}

/* Send a message with this body through send_cb, followed in a slot. */
static client_rec_slot_t *send_msg(world_t *r, const char *body) {
  xmppuv_stanza_t *m;
  client_rec_slot_t *k;
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", body, &m), 0);
  ck_assert_int_eq(client_rec_send(&r->app, r->c, m, &k), 0);
  xmppuv_stanza_unref(m);
  return k;
}

/* start, then three messages: held, and sent right after <enable/>. */
static void start_and_send_three(world_t *r, const xmppuv_client_options_t *o) {
  world_start(r, o);
  send_msg(r, "first");
  send_msg(r, "second");
  send_msg(r, "third");
}

/* Close everything; the loop must end with nothing on it, every stanza the
 * app sent must have ended exactly once (ECANCELED at close at the latest),
 * and every block of xmppuv's memory must be freed. */
static void finish(world_t *r) {
  world_finish(r);
  client_rec_assert_slots_settled(&r->app);
  client_rec_free(&r->app);
  ck_assert_msg(failalloc_live() == 0, "%ld blocks (%zu bytes) of xmppuv memory leaked",
                failalloc_live(), failalloc_live_bytes());
  failalloc_uninstall();
}

/* The connection was lost (the server reset or closed it). */
#define ASSERT_LOST(r, i)                                                            \
  do {                                                                               \
    ck_assert_msg((r)->errors > (unsigned)(i), "no error %d", (int)(i));             \
    ck_assert_msg((r)->err_code[i] == XMPPUV_EEOF || (r)->err_code[i] == UV_ECONNRESET, \
                  "error %d is %s", (int)(i), xmppuv_err_name((r)->err_code[i]));    \
    ck_assert_int_eq((r)->err_fatal[i], 0);                                          \
  } while (0)

static void assert_acked(const client_rec_slot_t *k) {
  ck_assert_uint_eq(k->done, 1);
  ck_assert_int_eq(k->status, 0);
  ck_assert_uint_eq(k->acks, 1);
  ck_assert_uint_eq(k->fails, 0);
}

static void assert_failed(const client_rec_slot_t *k, int reason) {
  ck_assert_uint_eq(k->done, 1);
  ck_assert_msg(k->status == reason, "status %s, not %s", xmppuv_err_name(k->status),
                xmppuv_err_name(reason));
  ck_assert_uint_eq(k->acks, 0);
  ck_assert_uint_eq(k->fails, 1);
  ck_assert_int_eq(k->reason, reason);
}

/* The client gave up: offline, and it stays so. */
static void assert_gave_up(world_t *r) {
  RUN_UNTIL(r, r->app.offlines >= 1, 20000);
  ck_assert_msg(r->app.offlines == 1, "not offline; statuses: %s", r->app.statuses);
  size_t before = world_connections(r, 0) + world_connections(r, 1);
  RUN_FOR(r, 400); /* several reconnect delays */
  ck_assert_int_eq(xmppuv_client_status(r->c), XMPPUV_STATUS_OFFLINE);
  ck_assert_uint_eq(world_connections(r, 0) + world_connections(r, 1), before);
}

/* ---- the XML the server sends -------------------------------------------------- */

/* A server whose XML breaks a rule mid-session: the client ends the stream
 * with its own stream error (RFC 6120 §4.9.1), reports the error (not
 * fatal: the next connection may well be fine) and reconnects. */
static void bad_xml_mid_session(const char *bad, int code, const char *cond,
                                const xmppuv_client_options_t *extra, world_t *r) {
  const xmppuv_test_step_t s0[] = {LOGIN_SM1, SCRIPT_DELAY(10), SCRIPT_SEND(bad), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-1", "0")),
                                          SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_server(r, 0, scripts, 2);
  xmppuv_client_options_t o;
  if (extra != NULL) o = *extra; else base_opts(&o, 0);
  o.port = world_port(r, 0);
  reset_peak_on = "online-event";
  world_start(r, &o);
  RUN_UNTIL(r, r->app.resumes >= 1, 20000);
  ck_assert_msg(r->app.resumes == 1, "not resumed; statuses: %s", r->app.statuses);
  ck_assert_uint_eq(r->app.onlines, 1);
  ck_assert_uint_eq(r->app.errors, 1);
  ASSERT_ERROR(&r->app, 0, code, cond, 0);
  ck_assert_uint_eq(world_connections(r, 0), 2);
  ck_assert_uint_eq(r->app.reconnectings, 1);
  /* The client told the server why, once, on the bad stream only. */
  char expect[160];
  snprintf(expect, sizeof expect, "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'/>", cond);
  const char *sent0 = world_received(r, 0, 0);
  ck_assert_msg(world_count(sent0, expect) == 1, "no %s from the client: %s", expect, sent0);
  ck_assert_ptr_null(strstr(world_received(r, 0, 1), "<stream:error"));
  /* The bad XML broke the stream, not the SM session: it is resumed (a
   * server that ended it would answer <failed/>). */
}

START_TEST(huge_stanza_is_ELIMIT_policy_violation_with_bounded_memory) {
  /* An 8 MiB message against a 16 KiB limit, in one write. */
  const size_t limit = 16384, body = 8u << 20;
  static const char head[] = "<message from='bob@localhost/x' type='chat'><body>";
  static const char tail[] = "</body></message>";
  char *huge = malloc(sizeof head + body + sizeof tail);
  ck_assert_ptr_nonnull(huge);
  memcpy(huge, head, sizeof head - 1);
  memset(huge + sizeof head - 1, 'x', body);
  memcpy(huge + sizeof head - 1 + body, tail, sizeof tail);
  world_t r;
  setup(&r);
  xmppuv_client_options_t o;
  base_opts(&o, 0);
  o.max_stanza_bytes = limit;
  bad_xml_mid_session(huge, XMPPUV_ELIMIT, "policy-violation", &o, &r);
  size_t growth = failalloc_peak_growth();
  fprintf(stderr, "# huge stanza: %zu bytes sent, limit %zu: peak %zu bytes above the "
                  "online baseline of %zu\n",
          strlen(huge), limit, growth, failalloc_peak_base());
  ck_assert_msg(growth < 4 * limit, "memory grew by %zu bytes with a %zu byte limit",
                growth, limit);
  finish(&r);
  free(huge);
}
END_TEST

START_TEST(deep_nesting_is_ELIMIT_policy_violation) {
  /* 10000 levels against a depth limit of 16. */
  size_t levels = 10000;
  char *deep = malloc(levels * 3 + 64);
  ck_assert_ptr_nonnull(deep);
  size_t n = (size_t)sprintf(deep, "<message from='bob@localhost/x'>");
  for (size_t i = 0; i < levels; i++) n += (size_t)sprintf(deep + n, "<a>");
  world_t r;
  setup(&r);
  xmppuv_client_options_t o;
  base_opts(&o, 0);
  o.max_depth = 16;
  bad_xml_mid_session(deep, XMPPUV_ELIMIT, "policy-violation", &o, &r);
  fprintf(stderr, "# deep nesting: peak %zu bytes above the online baseline\n",
          failalloc_peak_growth());
  ck_assert_uint_lt(failalloc_peak_growth(), 64 * 1024);
  finish(&r);
  free(deep);
}
END_TEST

START_TEST(many_attributes_are_ELIMIT_policy_violation) {
  /* 2000 attributes against a limit of 32 (well within the size limit). */
  char *attrs = malloc(2000 * 16 + 64);
  ck_assert_ptr_nonnull(attrs);
  size_t n = (size_t)sprintf(attrs, "<message from='bob@localhost/x'");
  for (int i = 0; i < 2000; i++) n += (size_t)sprintf(attrs + n, " a%d='v'", i);
  sprintf(attrs + n, "><body>hi</body></message>");
  world_t r;
  setup(&r);
  xmppuv_client_options_t o;
  base_opts(&o, 0);
  o.max_attrs = 32;
  o.max_stanza_bytes = 40000;
  bad_xml_mid_session(attrs, XMPPUV_ELIMIT, "policy-violation", &o, &r);
  /* expat reads the whole start tag before the attribute count can be
   * checked: its working memory is about ten times the tag (a record per
   * attribute), which the size limit bounds. */
  fprintf(stderr, "# many attributes: %zu bytes of start tag: peak %zu bytes above the "
                  "online baseline\n", n, failalloc_peak_growth());
  ck_assert_uint_lt(failalloc_peak_growth(), 8 * 40000);
  finish(&r);
  free(attrs);
}
END_TEST

START_TEST(doctype_with_entities_is_ERESTRICTED_restricted_xml) {
  /* A "billion laughs" DTD before the stream header: refused at the
   * DOCTYPE, before any entity could be expanded. */
  static const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"),
      SCRIPT_SEND("<?xml version='1.0'?><!DOCTYPE stream:stream ["
                  "<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
                  "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
                  "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>]>"
                  "<stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' id='s0' "
                  "from='localhost' version='1.0'>&d;"),
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN_SM1, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  reset_peak_on = "connect";
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 20000);
  ck_assert_msg(r.app.onlines == 1, "not online; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ERESTRICTED, "restricted-xml", 0);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  const char *sent = world_received(&r, 0, 0);
  ck_assert_int_eq(world_count(sent, CLIENT_ERROR("restricted-xml")), 1);
  ck_assert_ptr_null(strstr(sent, "<auth"));
  ck_assert_uint_lt(failalloc_peak_growth(), 64 * 1024);
  finish(&r);
}
END_TEST

START_TEST(comment_is_ERESTRICTED_restricted_xml) {
  world_t r;
  setup(&r);
  bad_xml_mid_session(INBOUND_MSG "<!-- a comment -->" INBOUND_MSG, XMPPUV_ERESTRICTED,
                      "restricted-xml", NULL, &r);
  finish(&r);
}
END_TEST

START_TEST(processing_instruction_is_ERESTRICTED_restricted_xml) {
  world_t r;
  setup(&r);
  bad_xml_mid_session(INBOUND_MSG "<?evil instruction?>", XMPPUV_ERESTRICTED,
                      "restricted-xml", NULL, &r);
  finish(&r);
}
END_TEST

START_TEST(invalid_utf8_is_EXML_not_well_formed) {
  world_t r;
  setup(&r);
  /* 0xC3 0x28: a lead byte followed by no continuation. */
  bad_xml_mid_session("<message from='bob@localhost/x'><body>caf\xc3\x28</body></message>",
                      XMPPUV_EXML, "not-well-formed", NULL, &r);
  finish(&r);
}
END_TEST

START_TEST(never_ending_text_node_is_ELIMIT_with_bounded_memory) {
  const size_t limit = 16384;
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-1", "0")),
                                          SCRIPT_END};
  world_t r;
  setup(&r);
  pump_t pump;
  pump_init(&pump, &r.loop);
  pump_set(&pump, "<message from='bob@localhost/x'><body>", "endless text ", 64u << 20);
  const xmppuv_test_step_t s0[] = {LOGIN_SM1, SCRIPT_CALL(pump_start, &pump), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  o.max_stanza_bytes = limit;
  reset_peak_on = "online-event";
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.resumes >= 1, 20000);
  ck_assert_msg(r.app.resumes == 1, "not resumed; statuses: %s", r.app.statuses);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ELIMIT, "policy-violation", 0);
  ck_assert_uint_eq(r.app.errors, 1);
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), CLIENT_ERROR("policy-violation")), 1);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  size_t growth = failalloc_peak_growth();
  fprintf(stderr, "# endless text: %zu bytes offered, limit %zu: peak %zu bytes above "
                  "the online baseline\n", pump.sent, limit, growth);
  ck_assert_uint_gt(pump.sent, 8 * limit);
  ck_assert_msg(growth < 4 * limit, "memory grew by %zu bytes", growth);
  pump_close(&pump);
  finish(&r);
}
END_TEST

START_TEST(never_ending_stream_header_is_ELIMIT_with_bounded_memory) {
  const size_t limit = 16384;
  static const xmppuv_test_step_t s1[] = {LOGIN_SM1, SCRIPT_END};
  world_t r;
  setup(&r);
  pump_t pump;
  pump_init(&pump, &r.loop);
  /* The header's start tag never ends: one attribute value forever. */
  pump_set(&pump,
           "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='",
           "0123456789abcdef", 64u << 20);
  const xmppuv_test_step_t s0[] = {SCRIPT_EXPECT("<stream:stream"),
                                   SCRIPT_CALL(pump_start, &pump), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  o.max_stanza_bytes = limit;
  reset_peak_on = "connect";
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 20000);
  ck_assert_msg(r.app.onlines == 1, "not online; statuses: %s", r.app.statuses);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ELIMIT, "policy-violation", 0);
  ck_assert_uint_eq(r.app.errors, 1);
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), CLIENT_ERROR("policy-violation")), 1);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  size_t growth = failalloc_peak_growth();
  fprintf(stderr, "# endless header: %zu bytes offered, limit %zu: peak %zu bytes above "
                  "the connect baseline\n", pump.sent, limit, growth);
  ck_assert_uint_gt(pump.sent, 8 * limit);
  ck_assert_msg(growth < 4 * limit, "memory grew by %zu bytes", growth);
  pump_close(&pump);
  finish(&r);
}
END_TEST

START_TEST(features_forever_end_in_the_negotiation_timeout_with_bounded_memory) {
  /* After the header, stream features again and again: the first starts
   * SASL, the rest are not answered, and the negotiation deadline ends it. */
  static const xmppuv_test_step_t s1[] = {LOGIN_SM1, SCRIPT_END};
  world_t r;
  setup(&r);
  pump_t pump;
  pump_init(&pump, &r.loop);
  pump_set(&pump, HDR, FEATURES_PLAIN, 256u << 20);
  const xmppuv_test_step_t s0[] = {SCRIPT_EXPECT("<stream:stream"),
                                   SCRIPT_CALL(pump_start, &pump), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  o.negotiation_timeout_ms = 500;
  reset_peak_on = "connect";
  world_start(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 30000);
  ck_assert_msg(r.app.onlines == 1, "not online; statuses: %s", r.app.statuses);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ETIMEDOUT, "", 0);
  ck_assert_uint_eq(r.app.errors, 1);
  ck_assert_uint_ge(r.app.err_at[0] - r.app.connect_at[0], 500);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  /* One authentication attempt, not one per features element. */
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), "<auth "), 1);
  size_t growth = failalloc_peak_growth();
  fprintf(stderr, "# features forever: %zu bytes offered: peak %zu bytes above the "
                  "connect baseline\n", pump.sent, growth);
  ck_assert_uint_gt(pump.sent, 1024 * 1024);
  ck_assert_uint_lt(growth, 256 * 1024);
  pump_close(&pump);
  finish(&r);
}
END_TEST

typedef struct scram_flood {
  scram_server_t *s;
  pump_t *pump;
  char challenge[512];
} scram_flood_t;

/* A real SCRAM server-first challenge, then the same challenge forever. */
static int scram_challenges_forever(xmppuv_test_script_conn_t *conn, void *arg) {
  scram_flood_t *ss = arg;
  char b64[1024];
  if (script_last_payload(conn, "auth", b64, sizeof b64) != 0) return -1;
  const char *client_first = scram_unb64(ss->s, b64);
  const char *server_first = client_first ? scram_server_first(ss->s, client_first) : NULL;
  if (server_first == NULL) return -1;
  snprintf(ss->challenge, sizeof ss->challenge, "<challenge xmlns='" NS_SASL "'>%s</challenge>",
           scram_b64(ss->s, server_first, strlen(server_first)));
  pump_set(ss->pump, NULL, ss->challenge, 64u << 20);
  return pump_start(conn, ss->pump);
}

START_TEST(sasl_challenges_forever_end_after_one_answer_with_a_fatal_EPROTO) {
  world_t r;
  setup(&r);
  pump_t pump;
  pump_init(&pump, &r.loop);
  scram_flood_t ss = {scram_server_new("SHA-256", "alice-secret", 4096), &pump, ""};
  const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_SCRAM),
      SCRIPT_EXPECT("</auth>"), SCRIPT_CALL(scram_challenges_forever, &ss), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0};
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  o.max_stanza_bytes = 16384;
  reset_peak_on = "connect";
  world_start(&r, &o);
  assert_gave_up(&r);
  /* The second challenge is read as the server's final message, which it
   * is not (no "v="): a server that breaks SCRAM gets no second try, and
   * the rest of the flood is never read. */
  fprintf(stderr, "# challenges forever: %zu bytes offered: peak %zu bytes above the "
                  "connect baseline\n", pump.sent, failalloc_peak_growth());
  ck_assert_uint_lt(failalloc_peak_growth(), 4 * 16384);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EPROTO, "", 1);
  ck_assert_uint_eq(world_connections(&r, 0), 1);
  ck_assert_uint_eq(r.app.onlines, 0);
  ck_assert_int_eq(world_count(world_received(&r, 0, 0), "<response"), 1);
  pump_close(&pump);
  finish(&r);
  scram_server_free(ss.s);
}
END_TEST

START_TEST(sasl_challenge_to_plain_is_a_fatal_EPROTO) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, SCRIPT_SEND("<challenge xmlns='" NS_SASL "'>AAAA</challenge>"
                              "<challenge xmlns='" NS_SASL "'>AAAA</challenge>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  assert_gave_up(&r);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EPROTO, "", 1);
  ck_assert_uint_eq(world_connections(&r, 0), 1);
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "<response"));
  finish(&r);
}
END_TEST

/* ---- Stream Management counters from a broken server ------------------------------ */

START_TEST(ack_h_too_high_is_ESMHIGH_and_the_session_is_not_resumed) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM1, ACK_FIRST_OF_THREE,
                                          SCRIPT_SEND(SM_A("7")), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN_SM1, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 2 && r.app.slots[2].done, 20000);
  ck_assert_msg(r.app.onlines == 2, "not online again; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESMHIGH, "", 0);
  /* XEP-0198 §6: the client said what was wrong, with both counts. */
  const char *sent0 = world_received(&r, 0, 0);
  ck_assert_ptr_nonnull(strstr(sent0, CLIENT_ERROR("undefined-condition")));
  ck_assert_ptr_nonnull(strstr(sent0, "<handled-count-too-high xmlns='" NS_SM
                                      "' h='7' send-count='3'/>"));
  /* A corrupt session is never resumed: a new one, and what was not acked
   * failed rather than being sent again behind the server's back. */
  const char *sent1 = world_received(&r, 0, 1);
  ck_assert_ptr_null(strstr(sent1, "<resume"));
  ck_assert_ptr_nonnull(strstr(sent1, "<enable "));
  ck_assert_ptr_null(strstr(sent1, "second</body>"));
  assert_acked(&r.app.slots[0]);
  assert_failed(&r.app.slots[1], XMPPUV_ESMFAILED);
  assert_failed(&r.app.slots[2], XMPPUV_ESMFAILED);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  ck_assert_uint_eq(r.app.resumes, 0);
  finish(&r);
}
END_TEST

START_TEST(stanzas_after_a_fatal_ack_in_the_same_read_reach_nobody) {
  /* The server's bad <a/> and a message come in one read: the stream is
   * given up at the <a/>, so the message is neither counted nor handed to
   * the app (were it counted on a resumable stream, the server would resend
   * it and the app would see it twice). */
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM1, ACK_FIRST_OF_THREE,
      SCRIPT_SEND(SM_A("7")
                  "<message from='bob@localhost/b' id='late'><body>late</body></message>"),
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN_SM1, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  start_and_send_three(&r, &o);
  unsigned before = r.app.inbound;
  RUN_UNTIL(&r, r.app.onlines >= 2 && r.app.slots[2].done, 20000);
  ck_assert_msg(r.app.onlines == 2, "not online again; statuses: %s", r.app.statuses);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESMHIGH, "", 0);
  ck_assert_uint_eq(r.app.inbound, before);
  finish(&r);
}
END_TEST

START_TEST(resumed_h_too_high_is_ESMHIGH_and_a_new_session_starts) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM1, ACK_FIRST_OF_THREE, SCRIPT_RESET,
                                          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-1", "9")),
                                          SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {LOGIN_SM1, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 3);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 2 && r.app.slots[2].done, 20000);
  ck_assert_msg(r.app.onlines == 2, "not online again; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 2);
  ASSERT_LOST(&r.app, 0);
  ASSERT_ERROR(&r.app, 1, XMPPUV_ESMHIGH, "", 0);
  ck_assert_ptr_nonnull(strstr(world_received(&r, 0, 1), "<resume "));
  ck_assert_ptr_nonnull(strstr(world_received(&r, 0, 1), "<handled-count-too-high xmlns='" NS_SM
                                                   "' h='9' send-count='3'/>"));
  /* Nothing was resent on the refused resumption, nor on the new session. */
  ck_assert_ptr_null(strstr(world_received(&r, 0, 1), "second</body>"));
  ck_assert_ptr_null(strstr(world_received(&r, 0, 2), "<resume"));
  ck_assert_ptr_null(strstr(world_received(&r, 0, 2), "second</body>"));
  assert_acked(&r.app.slots[0]);
  assert_failed(&r.app.slots[1], XMPPUV_ESMFAILED);
  assert_failed(&r.app.slots[2], XMPPUV_ESMFAILED);
  ck_assert_uint_eq(world_connections(&r, 0), 3);
  ck_assert_uint_eq(r.app.resumes, 0);
  finish(&r);
}
END_TEST

static const char *const bad_h[] = {"abc", "-1", "", "4294967296", "1e3", "+1", " 1"};

START_TEST(ack_with_malformed_h_is_EPROTO_and_the_session_resumes) {
  char bad[128];
  snprintf(bad, sizeof bad, "<a xmlns='" NS_SM "' h='%s'/>", bad_h[_i]);
  const xmppuv_test_step_t s0[] = {LOGIN_SM1, ACK_FIRST_OF_THREE, SCRIPT_SEND(bad),
                                   SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-1", "1")),
                                          SCRIPT_EXPECT("third</body>"),
                                          SCRIPT_SEND(SM_A("3")), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.slots[2].done, 20000);
  ck_assert_msg(r.app.resumes == 1, "not resumed (h='%s'); statuses: %s", bad_h[_i],
                r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EPROTO, "", 0);
  /* Dropped without a stream error, so that the server keeps the session
   * for resumption (XEP-0198 §5). */
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "<stream:error"));
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "</stream:stream>"));
  /* The two unacked ones were resent, once each, and then acked. */
  ck_assert_int_eq(world_count(world_received(&r, 0, 1), "second</body>"), 1);
  ck_assert_int_eq(world_count(world_received(&r, 0, 1), "third</body>"), 1);
  ck_assert_ptr_null(strstr(world_received(&r, 0, 1), "first</body>"));
  assert_acked(&r.app.slots[0]);
  assert_acked(&r.app.slots[1]);
  assert_acked(&r.app.slots[2]);
  ck_assert_uint_eq(r.app.onlines, 1);
  ck_assert_uint_eq(world_connections(&r, 0), 2);
  finish(&r);
}
END_TEST

START_TEST(enabled_without_id_runs_without_resumption) {
  static const xmppuv_test_step_t s0[] = {
      UNTIL_AUTH, SCRIPT_SEND(SASL_SUCCESS), SCRIPT_EXPECT("<stream:stream"),
      SCRIPT_SEND(HDR FEATURES_BIND_SM), SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT),
      SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND("<enabled xmlns='" NS_SM "' resume='true'/>"),
      ACK_FIRST_OF_THREE, SCRIPT_RESET, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN_SM1, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.app.onlines >= 1, 20000);
  /* SM works on the stream: acks are counted... */
  ck_assert(xmppuv_client_sm_enabled(r.c));
  RUN_UNTIL(&r, r.app.onlines >= 2 && r.app.slots[2].done, 20000);
  ck_assert_msg(r.app.onlines == 2, "not online again; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_LOST(&r.app, 0);
  /* ...but without an id there is nothing to resume. */
  ck_assert_ptr_null(strstr(world_received(&r, 0, 1), "<resume"));
  assert_acked(&r.app.slots[0]);
  assert_failed(&r.app.slots[1], XMPPUV_ESMFAILED);
  assert_failed(&r.app.slots[2], XMPPUV_ESMFAILED);
  finish(&r);
}
END_TEST

START_TEST(unsolicited_resumed_is_EPROTO_and_the_session_resumes) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM1, ACK_FIRST_OF_THREE,
                                          SCRIPT_SEND(SM_RESUMED("sm-1", "1")), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-1", "1")),
                                          SCRIPT_EXPECT("third</body>"),
                                          SCRIPT_SEND(SM_A("3")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.slots[2].done, 20000);
  ck_assert_msg(r.app.resumes == 1, "not resumed; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_EPROTO, "", 0);
  ck_assert_uint_eq(r.app.onlines, 1);
  ck_assert_int_eq(world_count(world_received(&r, 0, 1), "second</body>"), 1);
  assert_acked(&r.app.slots[0]);
  assert_acked(&r.app.slots[1]);
  assert_acked(&r.app.slots[2]);
  finish(&r);
}
END_TEST

/* ---- redirects ------------------------------------------------------------------ */

START_TEST(see_other_host_ping_pong_between_two_servers_ends_with_ESEEOTHERHOST) {
  /* A sends the client to B, B back to A, and so on. */
  static char to_b[512], to_a[512];
  const xmppuv_test_step_t sa[] = {SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(to_b),
                                   SCRIPT_CLOSE, SCRIPT_END};
  const xmppuv_test_step_t sb[] = {SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(to_a),
                                   SCRIPT_CLOSE, SCRIPT_END};
  const xmppuv_test_step_t *const scripts_a[] = {sa};
  const xmppuv_test_step_t *const scripts_b[] = {sb};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts_a, 1);
  world_server(&r, 1, scripts_b, 1);
  snprintf(to_b, sizeof to_b,
           HDR "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
               "'>127.0.0.1:%u</see-other-host></stream:error></stream:stream>",
           (unsigned)world_port(&r, 1));
  snprintf(to_a, sizeof to_a,
           HDR "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
               "'>127.0.0.1:%u</see-other-host></stream:error></stream:stream>",
           (unsigned)world_port(&r, 0));
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  o.reconnect_delay_ms = 5000; /* redirects do not wait for the backoff */
  o.reconnect_max_delay_ms = 5000;
  world_start(&r, &o);
  assert_gave_up(&r);
  size_t n = world_connections(&r, 0) + world_connections(&r, 1);
  /* A bounded number of hops, alternating, and then a fatal error. */
  ck_assert_msg(n >= 3 && n <= 10, "%zu connections", n);
  ck_assert_uint_ge(world_connections(&r, 1), world_connections(&r, 0) - 1);
  ck_assert_uint_le(world_connections(&r, 1), world_connections(&r, 0));
  ck_assert_uint_eq(r.app.errors, n);
  for (unsigned i = 0; i + 1 < r.app.errors; i++) {
    ASSERT_ERROR(&r.app, i, XMPPUV_ESTREAM, "see-other-host", 0);
    ck_assert_uint_eq(r.app.delay[i], 0);
  }
  ASSERT_ERROR(&r.app, r.app.errors - 1, XMPPUV_ESEEOTHERHOST, "see-other-host", 1);
  ck_assert_uint_eq(r.app.reconnectings, n - 1);
  ck_assert_uint_eq(r.app.onlines, 0);
  for (size_t i = 0; i < world_connections(&r, 0); i++)
    ck_assert_ptr_null(strstr(world_received(&r, 0, i), "<auth"));
  finish(&r);
}
END_TEST

/* ---- stream errors: every condition of RFC 6120 §4.9.3 ---------------------------- */

/* The README's stream error table, condition by condition. Our own XML is
 * well-formed by construction, so the XML conditions retry (Prosody's
 * resumed-parser fault answers a good stanza with not-well-formed); a
 * stanza that trips the server every time is stopped by the poison rule. */
static const struct {
  const char *condition;
  int fatal; /* the client gives up */
} conditions[] = {
    {"bad-format", 0},          {"bad-namespace-prefix", 0},
    {"conflict", 1},            {"connection-timeout", 0},
    {"host-gone", 1},           {"host-unknown", 1},
    {"improper-addressing", 0}, {"internal-server-error", 0},
    {"invalid-from", 1},        {"invalid-namespace", 1},
    {"invalid-xml", 0},         {"not-authorized", 1},
    {"not-well-formed", 0},     {"policy-violation", 0},
    {"remote-connection-failed", 0}, {"reset", 0},
    {"resource-constraint", 0}, {"restricted-xml", 0},
    {"see-other-host", 0},      {"system-shutdown", 0},
    {"undefined-condition", 0}, {"unsupported-encoding", 1},
    {"unsupported-feature", 1}, {"unsupported-stanza-type", 0},
    {"unsupported-version", 1},
};

START_TEST(stream_error_of_every_rfc6120_condition_is_reported_and_classified) {
  const char *cond = conditions[_i].condition;
  int fatal = conditions[_i].fatal;
  char err[512];
  if (strcmp(cond, "see-other-host") == 0)
    snprintf(err, sizeof err,
             "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
             "'>127.0.0.1:{port}</see-other-host><text xmlns='" NS_STREAM_ERRORS
             "'>go there</text></stream:error></stream:stream>");
  else
    snprintf(err, sizeof err,
             "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'/><text xmlns='"
             NS_STREAM_ERRORS "'>why</text></stream:error></stream:stream>", cond);
  /* Two messages: the first acked, the second not when the error comes. */
  const xmppuv_test_step_t s0[] = {LOGIN_SM1, SCRIPT_EXPECT("second</body>"),
                                   SCRIPT_SEND(SM_A("1") SM_R), SCRIPT_EXPECT("<a "),
                                   SCRIPT_SEND(err), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-1", "1")),
                                          SCRIPT_EXPECT("second</body>"),
                                          SCRIPT_SEND(SM_A("2")), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  world_start(&r, &o);
  send_msg(&r, "first");
  send_msg(&r, "second");
  ck_assert_int_eq(xmppuv__stream_error_class(cond)->action == XMPPUV__SERR_FATAL, fatal);
  if (fatal) {
    assert_gave_up(&r);
    ck_assert_uint_eq(world_connections(&r, 0), 1);
    ck_assert_uint_eq(r.app.reconnectings, 0);
    /* Acked stays acked; the client gave up, so the unacked one fails at
     * once, with the stream error as the reason: nothing is left waiting. */
    assert_acked(&r.app.slots[0]);
    assert_failed(&r.app.slots[1], XMPPUV_ESTREAM);
    ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  } else {
    RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.slots[1].done, 20000);
    ck_assert_msg(r.app.resumes == 1, "not resumed after %s; statuses: %s", cond, r.app.statuses);
    ck_assert_uint_eq(world_connections(&r, 0), 2);
    ck_assert_uint_eq(r.app.reconnectings, 1);
    if (strcmp(cond, "see-other-host") == 0) ck_assert_uint_eq(r.app.delay[0], 0);
    assert_acked(&r.app.slots[0]);
    assert_acked(&r.app.slots[1]);
  }
  ck_assert_uint_ge(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ESTREAM, cond, fatal);
  ck_assert_uint_eq(r.app.errors, 1);
  /* RFC 6120 §4.9.1.1: no stream error in answer to one. */
  ck_assert_ptr_null(strstr(world_received(&r, 0, 0), "<stream:error"));
  finish(&r);
}
END_TEST

/* ---- silence --------------------------------------------------------------------- */

START_TEST(server_that_never_speaks_times_out_the_negotiation_and_reconnects) {
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {silent};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  base_opts(&o, world_port(&r, 0));
  o.negotiation_timeout_ms = 300;
  world_start(&r, &o);
  send_msg(&r, "held");
  RUN_UNTIL(&r, world_connections(&r, 0) >= 3, 20000);
  ck_assert_msg(world_connections(&r, 0) >= 3, "no reconnection; statuses: %s", r.app.statuses);
  ck_assert_uint_ge(r.app.errors, 2);
  for (unsigned i = 0; i < 2; i++) {
    ASSERT_ERROR(&r.app, i, XMPPUV_ETIMEDOUT, "", 0);
    ck_assert_uint_ge(r.app.err_at[i] - r.app.connect_at[i], 300);
    ck_assert_uint_lt(r.app.err_at[i] - r.app.connect_at[i], 10000);
  }
  /* The held message was neither sent nor given up on. */
  ck_assert_uint_eq(r.app.slots[0].done, 0);
  ck_assert_int_eq(xmppuv_client_stop(r.c), 0);
  RUN_UNTIL(&r, r.app.offlines >= 1, 20000);
  assert_failed(&r.app.slots[0], XMPPUV_ECANCELED);
  finish(&r);
}
END_TEST

/* ---- TLS: a front on mbedTLS in front of the scripted server ------------------------ */

static void tls_opts(xmppuv_client_options_t *o, unsigned short port) {
  base_opts(o, port);
  o->tls = XMPPUV_TLS_DIRECT;
  o->ca_file = tls_cert_path(1, "ca.pem");
}

START_TEST(tls_closed_mid_record_is_ETLS_and_the_session_resumes) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM1, ACK_FIRST_OF_THREE,
      SCRIPT_SEND(CUT_MARK "<message from='bob@localhost/x'><body>cut short</body></message>"),
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-1", "1")),
                                          SCRIPT_EXPECT("third</body>"),
                                          SCRIPT_SEND(SM_A("3")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 2);
  static tls_front_t front;
  tls_front_start(&front, &r.loop, world_port(&r, 0));
  xmppuv_client_options_t o;
  tls_opts(&o, front.port);
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.app.resumes >= 1 && r.app.slots[2].done, 30000);
  ck_assert_msg(r.app.resumes == 1, "not resumed; statuses: %s", r.app.statuses);
  ck_assert_uint_eq(front.cuts, 1);
  ck_assert_uint_eq(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ETLS, "", 0);
  ck_assert_uint_eq(r.app.reconnectings, 1);
  /* Half a message is no message. */
  ck_assert_uint_eq(r.app.inbound, 0);
  ck_assert_int_eq(world_count(world_received(&r, 0, 1), "second</body>"), 1);
  assert_acked(&r.app.slots[0]);
  assert_acked(&r.app.slots[1]);
  assert_acked(&r.app.slots[2]);
  tls_front_close(&front);
  finish(&r);
  tls_front_free(&front);
}
END_TEST

START_TEST(direct_tls_server_that_never_speaks_times_out_and_reconnects) {
  /* TCP is accepted; the ClientHello is never answered. */
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {silent};
  world_t r;
  setup(&r);
  world_server(&r, 0, scripts, 1);
  ck_assert_ptr_nonnull(tls_certs_dir());
  xmppuv_client_options_t o;
  tls_opts(&o, world_port(&r, 0));
  /* Only the connect timeout can fire within the wait: it covers the
   * direct TLS handshake (the negotiation timeout starts after it). */
  o.connect_timeout_ms = 300;
  o.negotiation_timeout_ms = 600000;
  world_start(&r, &o);
  RUN_UNTIL(&r, world_connections(&r, 0) >= 2, 20000);
  ck_assert_msg(world_connections(&r, 0) >= 2, "no reconnection; statuses: %s", r.app.statuses);
  ck_assert_uint_ge(r.app.errors, 1);
  ASSERT_ERROR(&r.app, 0, XMPPUV_ETIMEDOUT, "", 0);
  /* The client spoke first (a ClientHello) and was never answered. */
  size_t len = 0;
  xmppuv_test_script_conn_received(xmppuv_test_script_server_conn(r.srv[0], 0), &len);
  ck_assert_uint_gt(len, 0);
  finish(&r);
  tls_certs_cleanup();
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("hostile");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, huge_stanza_is_ELIMIT_policy_violation_with_bounded_memory);
  tcase_add_test(tc, deep_nesting_is_ELIMIT_policy_violation);
  tcase_add_test(tc, many_attributes_are_ELIMIT_policy_violation);
  tcase_add_test(tc, doctype_with_entities_is_ERESTRICTED_restricted_xml);
  tcase_add_test(tc, comment_is_ERESTRICTED_restricted_xml);
  tcase_add_test(tc, processing_instruction_is_ERESTRICTED_restricted_xml);
  tcase_add_test(tc, invalid_utf8_is_EXML_not_well_formed);
  tcase_add_test(tc, never_ending_text_node_is_ELIMIT_with_bounded_memory);
  tcase_add_test(tc, never_ending_stream_header_is_ELIMIT_with_bounded_memory);
  tcase_add_test(tc, features_forever_end_in_the_negotiation_timeout_with_bounded_memory);
  tcase_add_test(tc, sasl_challenges_forever_end_after_one_answer_with_a_fatal_EPROTO);
  tcase_add_test(tc, sasl_challenge_to_plain_is_a_fatal_EPROTO);
  tcase_add_test(tc, ack_h_too_high_is_ESMHIGH_and_the_session_is_not_resumed);
  tcase_add_test(tc, stanzas_after_a_fatal_ack_in_the_same_read_reach_nobody);
  tcase_add_test(tc, resumed_h_too_high_is_ESMHIGH_and_a_new_session_starts);
  tcase_add_loop_test(tc, ack_with_malformed_h_is_EPROTO_and_the_session_resumes, 0,
                      (int)(sizeof bad_h / sizeof bad_h[0]));
  tcase_add_test(tc, enabled_without_id_runs_without_resumption);
  tcase_add_test(tc, unsolicited_resumed_is_EPROTO_and_the_session_resumes);
  tcase_add_test(tc, see_other_host_ping_pong_between_two_servers_ends_with_ESEEOTHERHOST);
  tcase_add_loop_test(tc, stream_error_of_every_rfc6120_condition_is_reported_and_classified,
                      0, (int)(sizeof conditions / sizeof conditions[0]));
  tcase_add_test(tc, server_that_never_speaks_times_out_the_negotiation_and_reconnects);
  tcase_add_test(tc, tls_closed_mid_record_is_ETLS_and_the_session_resumes);
  tcase_add_test(tc, direct_tls_server_that_never_speaks_times_out_and_reconnects);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
