/* Hostile and broken servers: the client (lib/client.c) over loopback
 * against the scripted server (tests/support/script_server.h), and over
 * direct TLS against a TLS front on mbedTLS (below) that cuts a record in
 * half. Each test asserts what the app observes: the `error` event (code,
 * condition, fatal), whether the client reconnects (connections counted at
 * the server) and only where that makes sense, the stream error the client
 * sends back where RFC 6120 §4.9 wants one (the recorded client bytes), that
 * memory stays bounded (a counting allocator through
 * xmppuv_replace_allocator(): peak live bytes, not RSS) and nothing leaks,
 * and, with Stream Management, that every stanza the app sent ends in
 * exactly one `ack` or `fail`, acked ones never failed and the rest resent
 * or failed, never dropped. XMPPUV_TEST_LOG=1 prints the client's log. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "check_main.h"
#include "scram_server.h"
#include "session/session.h"
#include "script_server.h"
#include "session/stream_error.h"
#include "tls_peer.h"
#include "xmppuv.h"

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SM "urn:xmpp:sm:3"

/* ---- script pieces --------------------------------------------------------- */

#define HDR                                                                  \
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "               \
  "xmlns:stream='http://etherx.jabber.org/streams' id='s{n}' "                \
  "from='localhost' version='1.0'>"
#define FEATURES_PLAIN                                                       \
  "<stream:features><mechanisms xmlns='" NS_SASL "'>"                        \
  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define FEATURES_SCRAM                                                       \
  "<stream:features><mechanisms xmlns='" NS_SASL "'>"                        \
  "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>"
#define FEATURES_BIND_SM                                                     \
  "<stream:features><bind xmlns='" NS_BIND "'/>"                             \
  "<sm xmlns='" NS_SM "'/></stream:features>"
#define SASL_SUCCESS "<success xmlns='" NS_SASL "'/>"
#define BIND_RESULT                                                          \
  "<iq type='result' id='{id}'><bind xmlns='" NS_BIND "'>"                   \
  "<jid>alice@localhost/r{n}</jid></bind></iq>"
#define ENABLED "<enabled xmlns='" NS_SM "' id='sm-1' resume='true'/>"
#define A(h) "<a xmlns='" NS_SM "' h='" h "'/>"
#define R "<r xmlns='" NS_SM "'/>"
#define RESUMED(h) "<resumed xmlns='" NS_SM "' previd='sm-1' h='" h "'/>"
#define STREAM_ERROR(cond)                                                   \
  "<stream:error><" cond " xmlns='" NS_STREAM_ERRORS "'/></stream:error>"    \
  "</stream:stream>"
/* What the client sends when it ends the stream with this condition. */
#define CLIENT_ERROR(cond) "<" cond " xmlns='" NS_STREAM_ERRORS "'/>"
#define INBOUND_MSG                                                          \
  "<message from='bob@localhost/x' to='alice@localhost/r{n}' type='chat'>"   \
  "<body>hello</body></message>"

#define UNTIL_AUTH                                                           \
  SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_PLAIN),          \
      SCRIPT_EXPECT("</auth>")
/* Login with SM offered, bound and enabled (resumable as sm-1). */
#define LOGIN_SM                                                             \
  UNTIL_AUTH, SCRIPT_SEND(SASL_SUCCESS), SCRIPT_EXPECT("<stream:stream"),    \
      SCRIPT_SEND(HDR FEATURES_BIND_SM), SCRIPT_EXPECT(NS_BIND),             \
      SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "), SCRIPT_SEND(ENABLED)
/* Login up to the client's <resume/>. */
#define UNTIL_RESUME                                                         \
  UNTIL_AUTH, SCRIPT_SEND(SASL_SUCCESS), SCRIPT_EXPECT("<stream:stream"),    \
      SCRIPT_SEND(HDR FEATURES_BIND_SM), SCRIPT_EXPECT("<resume ")
/* After LOGIN_SM with three messages sent: the first acked, and an <r/>
 * answered, so the ack was taken before whatever comes next. */
#define ACK_FIRST_OF_THREE                                                   \
  SCRIPT_EXPECT("third</body>"), SCRIPT_SEND(A("1") R), SCRIPT_EXPECT("<a ")

/* ---- a counting allocator: live and peak bytes of xmppuv's memory ------------ */

static size_t mem_live, mem_peak;
static long blocks_live;

static void mem_add(void *p) {
  mem_live += malloc_usable_size(p);
  if (mem_live > mem_peak) mem_peak = mem_live;
}

static void *cnt_malloc(size_t n) {
  void *p = malloc(n);
  if (p != NULL) {
    blocks_live++;
    mem_add(p);
  }
  return p;
}

static void *cnt_realloc(void *p, size_t n) {
  size_t old = p != NULL ? malloc_usable_size(p) : 0;
  void *q = realloc(p, n);
  if (q == NULL) return NULL;
  mem_live -= old;
  if (p == NULL) blocks_live++;
  mem_add(q);
  return q;
}

static void cnt_free(void *p) {
  if (p == NULL) return;
  mem_live -= malloc_usable_size(p);
  blocks_live--;
  free(p);
}

/* ---- what the app sees ------------------------------------------------------ */

#define MAX_EVENTS 64
#define MAX_SLOTS 8

/* One stanza the app sent with send_cb, and what became of it. */
typedef struct slot {
  xmppuv_stanza_t *s;
  unsigned done, acks, fails;
  int status, reason;
} slot_t;

/* Streams endless data on a connection (never more than 256 KiB queued in
 * the server, at most cap bytes in all) until the client drops it. */
typedef struct pump {
  uv_idle_t idle;
  xmppuv_test_script_conn_t *conn;
  const char *prefix;
  char *chunk;
  size_t chunk_len, sent, cap;
} pump_t;

typedef struct rec {
  uv_loop_t loop;
  uv_timer_t guard;
  int guard_fired;
  xmppuv_client_t *c;
  xmppuv_test_script_server_t *srv[2];
  pump_t pump;

  char statuses[8192];
  size_t st_len;
  unsigned connecting, connects, onlines, resumes, offlines, reconnectings;
  uint64_t delay[MAX_EVENTS];

  unsigned errors;
  int err_code[MAX_EVENTS];
  int err_fatal[MAX_EVENTS];
  char err_cond[MAX_EVENTS][48];
  uint64_t err_at[MAX_EVENTS];
  uint64_t connect_at[MAX_EVENTS];

  slot_t slots[MAX_SLOTS];
  size_t nslots;
  unsigned stray; /* ack/fail for a stanza the app never sent */
  unsigned inbound; /* stanzas the app received */

  /* Memory: live bytes when the hostile part began, the peak after it. */
  size_t base_live;
  const char *reset_peak_on; /* status name at which mem_peak restarts */
  int closed;
} rec_t;

static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud;
  fprintf(stderr, "# [%s] %s: %s\n", xmppuv_log_level_name(level), area, msg);
}

static void reset_peak(rec_t *r) {
  r->base_live = mem_live;
  mem_peak = mem_live;
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t st, void *ud) {
  rec_t *r = ud;
  (void)c;
  const char *name = xmppuv_status_name(st);
  int n = snprintf(r->statuses + r->st_len, sizeof r->statuses - r->st_len, "%s%s",
                   r->st_len ? " " : "", name);
  if (n > 0 && (size_t)n < sizeof r->statuses - r->st_len) r->st_len += (size_t)n;
  if (st == XMPPUV_STATUS_CONNECTING) r->connecting++;
  if (st == XMPPUV_STATUS_CONNECT && r->connects < MAX_EVENTS)
    r->connect_at[r->connects++] = uv_now(&r->loop);
  if (st == XMPPUV_STATUS_OFFLINE) r->offlines++;
  if (r->reset_peak_on != NULL && strcmp(r->reset_peak_on, name) == 0) {
    r->reset_peak_on = NULL;
    reset_peak(r);
  }
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  rec_t *r = ud;
  (void)c;
  (void)jid;
  r->onlines++;
  if (r->reset_peak_on != NULL && strcmp(r->reset_peak_on, "online-event") == 0) {
    r->reset_peak_on = NULL;
    reset_peak(r);
  }
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  rec_t *r = ud;
  (void)c;
  r->resumes++;
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *e, void *ud) {
  rec_t *r = ud;
  (void)c;
  if (r->errors < MAX_EVENTS) {
    r->err_code[r->errors] = e->code;
    r->err_fatal[r->errors] = e->fatal;
    snprintf(r->err_cond[r->errors], sizeof r->err_cond[0], "%s",
             e->condition ? e->condition : "");
    r->err_at[r->errors] = uv_now(&r->loop);
  }
  r->errors++;
}

static void on_reconnecting(xmppuv_client_t *c, unsigned attempt, uint64_t delay_ms,
                            void *ud) {
  rec_t *r = ud;
  (void)c;
  (void)attempt;
  if (r->reconnectings < MAX_EVENTS) r->delay[r->reconnectings] = delay_ms;
  r->reconnectings++;
}

static slot_t *slot_of(rec_t *r, const xmppuv_stanza_t *s) {
  for (size_t i = 0; i < r->nslots; i++)
    if (r->slots[i].s == s) return &r->slots[i];
  return NULL;
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  rec_t *r = ud;
  (void)c;
  slot_t *k = slot_of(r, s);
  if (k != NULL) k->acks++;
  else r->stray++;
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  rec_t *r = ud;
  (void)c;
  slot_t *k = slot_of(r, s);
  if (k != NULL) {
    k->fails++;
    k->reason = reason;
  } else {
    r->stray++;
  }
}

static void on_sent(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  slot_t *k = ud;
  (void)c;
  (void)s;
  k->done++;
  k->status = status;
}

static void on_stanza(xmppuv_client_t *c, xmppuv_stanza_t *s, int handled, void *ud) {
  rec_t *r = ud;
  (void)c;
  (void)s;
  (void)handled;
  r->inbound++;
}

static const xmppuv_client_callbacks_t callbacks = {
    on_status, on_online, on_resumed, on_error, on_ack, on_fail, on_reconnecting, on_stanza};

static void on_guard(uv_timer_t *t) {
  rec_t *r = t->data;
  r->guard_fired = 1;
}

/* Run the loop until cond holds or ms pass (the caller's assertion then
 * fails with a message). Generous deadlines: a loaded machine is slow. */
#define RUN_UNTIL(r, cond, ms)                                   \
  do {                                                           \
    (r)->guard_fired = 0;                                        \
    uv_timer_start(&(r)->guard, on_guard, (ms), 0);              \
    while (!(cond) && !(r)->guard_fired)                         \
      uv_run(&(r)->loop, UV_RUN_ONCE);                           \
    uv_timer_stop(&(r)->guard);                                  \
  } while (0)

/* Let ms pass: only to check that something does NOT happen. */
#define RUN_FOR(r, ms) RUN_UNTIL(r, 0, ms)

/* ---- the pump ------------------------------------------------------------------ */

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

static void rec_init(rec_t *r) {
  /* The servers write to clients that hang up on them. */
  signal(SIGPIPE, SIG_IGN);
  memset(r, 0, sizeof *r);
  mem_live = mem_peak = 0;
  blocks_live = 0;
  ck_assert_int_eq(xmppuv_replace_allocator(cnt_malloc, cnt_realloc, cnt_free), 0);
  ck_assert_int_eq(uv_loop_init(&r->loop), 0);
  ck_assert_int_eq(uv_timer_init(&r->loop, &r->guard), 0);
  r->guard.data = r;
  ck_assert_int_eq(uv_idle_init(&r->loop, &r->pump.idle), 0);
  r->pump.idle.data = &r->pump;
}

static void start_server(rec_t *r, int i, const xmppuv_test_step_t *const *scripts,
                         size_t n) {
  ck_assert_int_eq(xmppuv_test_script_server_start(&r->loop, scripts, n, &r->srv[i]), 0);
}

static unsigned short port_of(const rec_t *r, int i) {
  return xmppuv_test_script_server_port(r->srv[i]);
}

static size_t connections(const rec_t *r, int i) {
  return r->srv[i] != NULL ? xmppuv_test_script_server_connections(r->srv[i]) : 0;
}

static const char *received(const rec_t *r, int i, size_t conn) {
  xmppuv_test_script_conn_t *k = xmppuv_test_script_server_conn(r->srv[i], conn);
  ck_assert_msg(k != NULL, "no connection %zu on server %d", conn, i);
  return xmppuv_test_script_conn_received(k, NULL);
}

static void base_opts(xmppuv_client_options_t *o, unsigned short port) {
  xmppuv_client_options_init(o);
  o->jid = "alice@localhost";
  o->password = "alice-secret";
  o->host = "127.0.0.1";
  o->port = port;
  o->tls = XMPPUV_TLS_DISABLED_INSECURE;
  o->reconnect_delay_ms = 50;
  o->reconnect_max_delay_ms = 200;
  o->close_timeout_ms = 500;
  /* Acks come when the script sends them, not on the client's timers. */
  o->sm_ack_debounce_ms = 0;
  o->sm_idle_request_ms = 0;
  if (getenv("XMPPUV_TEST_LOG") != NULL) {
    o->log_cb = on_log;
    o->log_level = XMPPUV_LOG_TRACE;
  } else {
    o->log_level = XMPPUV_LOG_NONE;
  }
}

static void start(rec_t *r, const xmppuv_client_options_t *o) {
  ck_assert_int_eq(xmppuv_client_new(&r->loop, o, &callbacks, r, &r->c), 0);
  ck_assert_int_eq(xmppuv_client_start(r->c), 0);
}

/* Send a message with this body through send_cb; the app keeps a reference
 * to recognise it in ack/fail. */
static slot_t *send_msg(rec_t *r, const char *body) {
  ck_assert_uint_lt(r->nslots, MAX_SLOTS);
  slot_t *k = &r->slots[r->nslots++];
  memset(k, 0, sizeof *k);
  ck_assert_int_eq(xmppuv_message_new("bob@localhost", "chat", body, &k->s), 0);
  ck_assert_int_eq(xmppuv_client_send_cb(r->c, k->s, on_sent, k), 0);
  return k;
}

/* start, then three messages: held, and sent right after <enable/>. */
static void start_and_send_three(rec_t *r, const xmppuv_client_options_t *o) {
  start(r, o);
  send_msg(r, "first");
  send_msg(r, "second");
  send_msg(r, "third");
}

static void on_client_closed(xmppuv_client_t *c, void *ud) {
  rec_t *r = ud;
  (void)c;
  r->closed = 1;
}

/* Close everything; the loop must end with nothing on it and every block
 * of xmppuv's memory freed. */
static void finish(rec_t *r) {
  if (r->c != NULL) xmppuv_client_close(r->c, on_client_closed);
  for (int i = 0; i < 2; i++) xmppuv_test_script_server_close(r->srv[i], NULL, NULL);
  uv_close((uv_handle_t *)&r->guard, NULL);
  uv_close((uv_handle_t *)&r->pump.idle, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  if (r->c != NULL) ck_assert_msg(r->closed, "close_cb did not run");
  ck_assert_int_eq(uv_loop_close(&r->loop), 0);
  /* Every stanza ended exactly once (ECANCELED at close at the latest). */
  for (size_t i = 0; i < r->nslots; i++) {
    slot_t *k = &r->slots[i];
    ck_assert_msg(k->done == 1, "stanza %zu: %u outcomes", i, k->done);
    ck_assert_msg(k->acks + k->fails == 1, "stanza %zu: %u acks, %u fails", i, k->acks,
                  k->fails);
    xmppuv_stanza_unref(k->s);
  }
  ck_assert_uint_eq(r->stray, 0);
  free(r->pump.chunk);
  ck_assert_msg(blocks_live == 0, "%ld blocks (%zu bytes) of xmppuv memory leaked",
                blocks_live, mem_live);
  ck_assert_int_eq(xmppuv_replace_allocator(NULL, NULL, NULL), 0);
}

static int count(const char *haystack, const char *needle) {
  int n = 0;
  for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  return n;
}

#define ASSERT_ERROR(r, i, code, cond, fatal)                                        \
  do {                                                                               \
    ck_assert_msg((r)->errors > (unsigned)(i), "no error %d; statuses: %s", (int)(i), \
                  (r)->statuses);                                                    \
    ck_assert_msg((r)->err_code[i] == (code), "error %d is %s, not %s", (int)(i),    \
                  xmppuv_err_name((r)->err_code[i]), xmppuv_err_name(code));         \
    ck_assert_str_eq((r)->err_cond[i], (cond));                                      \
    ck_assert_int_eq((r)->err_fatal[i], (fatal));                                    \
  } while (0)

/* The connection was lost (the server reset or closed it). */
#define ASSERT_LOST(r, i)                                                            \
  do {                                                                               \
    ck_assert_msg((r)->errors > (unsigned)(i), "no error %d", (int)(i));             \
    ck_assert_msg((r)->err_code[i] == XMPPUV_EEOF || (r)->err_code[i] == UV_ECONNRESET, \
                  "error %d is %s", (int)(i), xmppuv_err_name((r)->err_code[i]));    \
    ck_assert_int_eq((r)->err_fatal[i], 0);                                          \
  } while (0)

static void assert_acked(const slot_t *k) {
  ck_assert_uint_eq(k->done, 1);
  ck_assert_int_eq(k->status, 0);
  ck_assert_uint_eq(k->acks, 1);
  ck_assert_uint_eq(k->fails, 0);
}

static void assert_failed(const slot_t *k, int reason) {
  ck_assert_uint_eq(k->done, 1);
  ck_assert_msg(k->status == reason, "status %s, not %s", xmppuv_err_name(k->status),
                xmppuv_err_name(reason));
  ck_assert_uint_eq(k->acks, 0);
  ck_assert_uint_eq(k->fails, 1);
  ck_assert_int_eq(k->reason, reason);
}

/* The client gave up: offline, and it stays so. */
static void assert_gave_up(rec_t *r) {
  RUN_UNTIL(r, r->offlines >= 1, 20000);
  ck_assert_msg(r->offlines == 1, "not offline; statuses: %s", r->statuses);
  size_t before = connections(r, 0) + connections(r, 1);
  RUN_FOR(r, 400); /* several reconnect delays */
  ck_assert_int_eq(xmppuv_client_status(r->c), XMPPUV_STATUS_OFFLINE);
  ck_assert_uint_eq(connections(r, 0) + connections(r, 1), before);
}

/* ---- the XML the server sends -------------------------------------------------- */

/* A server whose XML breaks a rule mid-session: the client ends the stream
 * with its own stream error (RFC 6120 §4.9.1), reports the error (not
 * fatal: the next connection may well be fine) and reconnects. */
static void bad_xml_mid_session(const char *bad, int code, const char *cond,
                                const xmppuv_client_options_t *extra, rec_t *r) {
  const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_DELAY(10), SCRIPT_SEND(bad), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(RESUMED("0")), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  start_server(r, 0, scripts, 2);
  xmppuv_client_options_t o;
  if (extra != NULL) o = *extra; else base_opts(&o, 0);
  o.port = port_of(r, 0);
  r->reset_peak_on = "online-event";
  start(r, &o);
  RUN_UNTIL(r, r->resumes >= 1, 20000);
  ck_assert_msg(r->resumes == 1, "not resumed; statuses: %s", r->statuses);
  ck_assert_uint_eq(r->onlines, 1);
  ck_assert_uint_eq(r->errors, 1);
  ASSERT_ERROR(r, 0, code, cond, 0);
  ck_assert_uint_eq(connections(r, 0), 2);
  ck_assert_uint_eq(r->reconnectings, 1);
  /* The client told the server why, once, on the bad stream only. */
  char expect[160];
  snprintf(expect, sizeof expect, "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'/>", cond);
  const char *sent0 = received(r, 0, 0);
  ck_assert_msg(count(sent0, expect) == 1, "no %s from the client: %s", expect, sent0);
  ck_assert_ptr_null(strstr(received(r, 0, 1), "<stream:error"));
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
  rec_t r;
  rec_init(&r);
  xmppuv_client_options_t o;
  base_opts(&o, 0);
  o.max_stanza_bytes = limit;
  bad_xml_mid_session(huge, XMPPUV_ELIMIT, "policy-violation", &o, &r);
  size_t growth = mem_peak - r.base_live;
  fprintf(stderr, "# huge stanza: %zu bytes sent, limit %zu: peak %zu bytes above the "
                  "online baseline of %zu\n",
          strlen(huge), limit, growth, r.base_live);
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
  rec_t r;
  rec_init(&r);
  xmppuv_client_options_t o;
  base_opts(&o, 0);
  o.max_depth = 16;
  bad_xml_mid_session(deep, XMPPUV_ELIMIT, "policy-violation", &o, &r);
  fprintf(stderr, "# deep nesting: peak %zu bytes above the online baseline\n",
          mem_peak - r.base_live);
  ck_assert_uint_lt(mem_peak - r.base_live, 64 * 1024);
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
  rec_t r;
  rec_init(&r);
  xmppuv_client_options_t o;
  base_opts(&o, 0);
  o.max_attrs = 32;
  o.max_stanza_bytes = 40000;
  bad_xml_mid_session(attrs, XMPPUV_ELIMIT, "policy-violation", &o, &r);
  /* expat reads the whole start tag before the attribute count can be
   * checked: its working memory is about ten times the tag (a record per
   * attribute), which the size limit bounds. */
  fprintf(stderr, "# many attributes: %zu bytes of start tag: peak %zu bytes above the "
                  "online baseline\n", n, mem_peak - r.base_live);
  ck_assert_uint_lt(mem_peak - r.base_live, 8 * 40000);
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
  static const xmppuv_test_step_t s1[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  r.reset_peak_on = "connect";
  start(&r, &o);
  RUN_UNTIL(&r, r.onlines >= 1, 20000);
  ck_assert_msg(r.onlines == 1, "not online; statuses: %s", r.statuses);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_ERESTRICTED, "restricted-xml", 0);
  ck_assert_uint_eq(connections(&r, 0), 2);
  const char *sent = received(&r, 0, 0);
  ck_assert_int_eq(count(sent, CLIENT_ERROR("restricted-xml")), 1);
  ck_assert_ptr_null(strstr(sent, "<auth"));
  ck_assert_uint_lt(mem_peak - r.base_live, 64 * 1024);
  finish(&r);
}
END_TEST

START_TEST(comment_is_ERESTRICTED_restricted_xml) {
  rec_t r;
  rec_init(&r);
  bad_xml_mid_session(INBOUND_MSG "<!-- a comment -->" INBOUND_MSG, XMPPUV_ERESTRICTED,
                      "restricted-xml", NULL, &r);
  finish(&r);
}
END_TEST

START_TEST(processing_instruction_is_ERESTRICTED_restricted_xml) {
  rec_t r;
  rec_init(&r);
  bad_xml_mid_session(INBOUND_MSG "<?evil instruction?>", XMPPUV_ERESTRICTED,
                      "restricted-xml", NULL, &r);
  finish(&r);
}
END_TEST

START_TEST(invalid_utf8_is_EXML_not_well_formed) {
  rec_t r;
  rec_init(&r);
  /* 0xC3 0x28: a lead byte followed by no continuation. */
  bad_xml_mid_session("<message from='bob@localhost/x'><body>caf\xc3\x28</body></message>",
                      XMPPUV_EXML, "not-well-formed", NULL, &r);
  finish(&r);
}
END_TEST

START_TEST(never_ending_text_node_is_ELIMIT_with_bounded_memory) {
  const size_t limit = 16384;
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(RESUMED("0")), SCRIPT_END};
  rec_t r;
  rec_init(&r);
  pump_set(&r.pump, "<message from='bob@localhost/x'><body>", "endless text ", 64u << 20);
  const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_CALL(pump_start, &r.pump), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  o.max_stanza_bytes = limit;
  r.reset_peak_on = "online-event";
  start(&r, &o);
  RUN_UNTIL(&r, r.resumes >= 1, 20000);
  ck_assert_msg(r.resumes == 1, "not resumed; statuses: %s", r.statuses);
  ASSERT_ERROR(&r, 0, XMPPUV_ELIMIT, "policy-violation", 0);
  ck_assert_uint_eq(r.errors, 1);
  ck_assert_int_eq(count(received(&r, 0, 0), CLIENT_ERROR("policy-violation")), 1);
  ck_assert_uint_eq(connections(&r, 0), 2);
  size_t growth = mem_peak - r.base_live;
  fprintf(stderr, "# endless text: %zu bytes offered, limit %zu: peak %zu bytes above "
                  "the online baseline\n", r.pump.sent, limit, growth);
  ck_assert_uint_gt(r.pump.sent, 8 * limit);
  ck_assert_msg(growth < 4 * limit, "memory grew by %zu bytes", growth);
  finish(&r);
}
END_TEST

START_TEST(never_ending_stream_header_is_ELIMIT_with_bounded_memory) {
  const size_t limit = 16384;
  static const xmppuv_test_step_t s1[] = {LOGIN_SM, SCRIPT_END};
  rec_t r;
  rec_init(&r);
  /* The header's start tag never ends: one attribute value forever. */
  pump_set(&r.pump,
           "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='",
           "0123456789abcdef", 64u << 20);
  const xmppuv_test_step_t s0[] = {SCRIPT_EXPECT("<stream:stream"),
                                   SCRIPT_CALL(pump_start, &r.pump), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  o.max_stanza_bytes = limit;
  r.reset_peak_on = "connect";
  start(&r, &o);
  RUN_UNTIL(&r, r.onlines >= 1, 20000);
  ck_assert_msg(r.onlines == 1, "not online; statuses: %s", r.statuses);
  ASSERT_ERROR(&r, 0, XMPPUV_ELIMIT, "policy-violation", 0);
  ck_assert_uint_eq(r.errors, 1);
  ck_assert_int_eq(count(received(&r, 0, 0), CLIENT_ERROR("policy-violation")), 1);
  ck_assert_uint_eq(connections(&r, 0), 2);
  size_t growth = mem_peak - r.base_live;
  fprintf(stderr, "# endless header: %zu bytes offered, limit %zu: peak %zu bytes above "
                  "the connect baseline\n", r.pump.sent, limit, growth);
  ck_assert_uint_gt(r.pump.sent, 8 * limit);
  ck_assert_msg(growth < 4 * limit, "memory grew by %zu bytes", growth);
  finish(&r);
}
END_TEST

START_TEST(features_forever_end_in_the_negotiation_timeout_with_bounded_memory) {
  /* After the header, stream features again and again: the first starts
   * SASL, the rest are not answered, and the negotiation deadline ends it. */
  static const xmppuv_test_step_t s1[] = {LOGIN_SM, SCRIPT_END};
  rec_t r;
  rec_init(&r);
  pump_set(&r.pump, HDR, FEATURES_PLAIN, 256u << 20);
  const xmppuv_test_step_t s0[] = {SCRIPT_EXPECT("<stream:stream"),
                                   SCRIPT_CALL(pump_start, &r.pump), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  o.negotiation_timeout_ms = 500;
  r.reset_peak_on = "connect";
  start(&r, &o);
  RUN_UNTIL(&r, r.onlines >= 1, 30000);
  ck_assert_msg(r.onlines == 1, "not online; statuses: %s", r.statuses);
  ASSERT_ERROR(&r, 0, XMPPUV_ETIMEDOUT, "", 0);
  ck_assert_uint_eq(r.errors, 1);
  ck_assert_uint_ge(r.err_at[0] - r.connect_at[0], 500);
  ck_assert_uint_eq(connections(&r, 0), 2);
  /* One authentication attempt, not one per features element. */
  ck_assert_int_eq(count(received(&r, 0, 0), "<auth "), 1);
  size_t growth = mem_peak - r.base_live;
  fprintf(stderr, "# features forever: %zu bytes offered: peak %zu bytes above the "
                  "connect baseline\n", r.pump.sent, growth);
  ck_assert_uint_gt(r.pump.sent, 1024 * 1024);
  ck_assert_uint_lt(growth, 256 * 1024);
  finish(&r);
}
END_TEST

typedef struct scram_script {
  scram_server_t *s;
  pump_t *pump;
  char challenge[512];
} scram_script_t;

/* The base64 payload of the client's <auth/>. */
static int auth_payload(xmppuv_test_script_conn_t *conn, char *out, size_t size) {
  const char *rx = xmppuv_test_script_conn_received(conn, NULL);
  const char *start = strstr(rx, "<auth ");
  if (start == NULL || (start = strchr(start, '>')) == NULL) return -1;
  start++;
  const char *end = strstr(start, "</auth>");
  if (end == NULL || (size_t)(end - start) >= size) return -1;
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = '\0';
  return 0;
}

/* A real SCRAM server-first challenge, then the same challenge forever. */
static int scram_challenges_forever(xmppuv_test_script_conn_t *conn, void *arg) {
  scram_script_t *ss = arg;
  char b64[1024];
  if (auth_payload(conn, b64, sizeof b64) != 0) return -1;
  const char *client_first = scram_unb64(ss->s, b64);
  const char *server_first = client_first ? scram_server_first(ss->s, client_first) : NULL;
  if (server_first == NULL) return -1;
  snprintf(ss->challenge, sizeof ss->challenge, "<challenge xmlns='" NS_SASL "'>%s</challenge>",
           scram_b64(ss->s, server_first, strlen(server_first)));
  pump_set(ss->pump, NULL, ss->challenge, 64u << 20);
  return pump_start(conn, ss->pump);
}

START_TEST(sasl_challenges_forever_end_after_one_answer_with_a_fatal_EPROTO) {
  rec_t r;
  rec_init(&r);
  scram_script_t ss = {scram_server_new("SHA-256", "alice-secret", 4096), &r.pump, ""};
  const xmppuv_test_step_t s0[] = {
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_SCRAM),
      SCRIPT_EXPECT("</auth>"), SCRIPT_CALL(scram_challenges_forever, &ss), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0};
  start_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  o.max_stanza_bytes = 16384;
  r.reset_peak_on = "connect";
  start(&r, &o);
  assert_gave_up(&r);
  /* The second challenge is read as the server's final message, which it
   * is not (no "v="): a server that breaks SCRAM gets no second try, and
   * the rest of the flood is never read. */
  fprintf(stderr, "# challenges forever: %zu bytes offered: peak %zu bytes above the "
                  "connect baseline\n", r.pump.sent, mem_peak - r.base_live);
  ck_assert_uint_lt(mem_peak - r.base_live, 4 * 16384);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_EPROTO, "", 1);
  ck_assert_uint_eq(connections(&r, 0), 1);
  ck_assert_uint_eq(r.onlines, 0);
  ck_assert_int_eq(count(received(&r, 0, 0), "<response"), 1);
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
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start(&r, &o);
  assert_gave_up(&r);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_EPROTO, "", 1);
  ck_assert_uint_eq(connections(&r, 0), 1);
  ck_assert_ptr_null(strstr(received(&r, 0, 0), "<response"));
  finish(&r);
}
END_TEST

/* ---- Stream Management counters from a broken server ------------------------------ */

START_TEST(ack_h_too_high_is_ESMHIGH_and_the_session_is_not_resumed) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, ACK_FIRST_OF_THREE,
                                          SCRIPT_SEND(A("7")), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.onlines >= 2 && r.slots[2].done, 20000);
  ck_assert_msg(r.onlines == 2, "not online again; statuses: %s", r.statuses);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_ESMHIGH, "", 0);
  /* XEP-0198 §6: the client said what was wrong, with both counts. */
  const char *sent0 = received(&r, 0, 0);
  ck_assert_ptr_nonnull(strstr(sent0, CLIENT_ERROR("undefined-condition")));
  ck_assert_ptr_nonnull(strstr(sent0, "<handled-count-too-high xmlns='" NS_SM
                                      "' h='7' send-count='3'/>"));
  /* A corrupt session is never resumed: a new one, and what was not acked
   * failed rather than being sent again behind the server's back. */
  const char *sent1 = received(&r, 0, 1);
  ck_assert_ptr_null(strstr(sent1, "<resume"));
  ck_assert_ptr_nonnull(strstr(sent1, "<enable "));
  ck_assert_ptr_null(strstr(sent1, "second</body>"));
  assert_acked(&r.slots[0]);
  assert_failed(&r.slots[1], XMPPUV_ESMFAILED);
  assert_failed(&r.slots[2], XMPPUV_ESMFAILED);
  ck_assert_uint_eq(connections(&r, 0), 2);
  ck_assert_uint_eq(r.resumes, 0);
  finish(&r);
}
END_TEST

START_TEST(stanzas_after_a_fatal_ack_in_the_same_read_reach_nobody) {
  /* The server's bad <a/> and a message come in one read: the stream is
   * given up at the <a/>, so the message is neither counted nor handed to
   * the app (were it counted on a resumable stream, the server would resend
   * it and the app would see it twice). */
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, ACK_FIRST_OF_THREE,
      SCRIPT_SEND(A("7") "<message from='bob@localhost/b' id='late'><body>late</body></message>"),
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start_and_send_three(&r, &o);
  unsigned before = r.inbound;
  RUN_UNTIL(&r, r.onlines >= 2 && r.slots[2].done, 20000);
  ck_assert_msg(r.onlines == 2, "not online again; statuses: %s", r.statuses);
  ASSERT_ERROR(&r, 0, XMPPUV_ESMHIGH, "", 0);
  ck_assert_uint_eq(r.inbound, before);
  finish(&r);
}
END_TEST

START_TEST(resumed_h_too_high_is_ESMHIGH_and_a_new_session_starts) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, ACK_FIRST_OF_THREE, SCRIPT_RESET,
                                          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(RESUMED("9")),
                                          SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 3);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.onlines >= 2 && r.slots[2].done, 20000);
  ck_assert_msg(r.onlines == 2, "not online again; statuses: %s", r.statuses);
  ck_assert_uint_eq(r.errors, 2);
  ASSERT_LOST(&r, 0);
  ASSERT_ERROR(&r, 1, XMPPUV_ESMHIGH, "", 0);
  ck_assert_ptr_nonnull(strstr(received(&r, 0, 1), "<resume "));
  ck_assert_ptr_nonnull(strstr(received(&r, 0, 1), "<handled-count-too-high xmlns='" NS_SM
                                                   "' h='9' send-count='3'/>"));
  /* Nothing was resent on the refused resumption, nor on the new session. */
  ck_assert_ptr_null(strstr(received(&r, 0, 1), "second</body>"));
  ck_assert_ptr_null(strstr(received(&r, 0, 2), "<resume"));
  ck_assert_ptr_null(strstr(received(&r, 0, 2), "second</body>"));
  assert_acked(&r.slots[0]);
  assert_failed(&r.slots[1], XMPPUV_ESMFAILED);
  assert_failed(&r.slots[2], XMPPUV_ESMFAILED);
  ck_assert_uint_eq(connections(&r, 0), 3);
  ck_assert_uint_eq(r.resumes, 0);
  finish(&r);
}
END_TEST

static const char *const bad_h[] = {"abc", "-1", "", "4294967296", "1e3", "+1", " 1"};

START_TEST(ack_with_malformed_h_is_EPROTO_and_the_session_resumes) {
  char bad[128];
  snprintf(bad, sizeof bad, "<a xmlns='" NS_SM "' h='%s'/>", bad_h[_i]);
  const xmppuv_test_step_t s0[] = {LOGIN_SM, ACK_FIRST_OF_THREE, SCRIPT_SEND(bad),
                                   SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(RESUMED("1")),
                                          SCRIPT_EXPECT("third</body>"),
                                          SCRIPT_SEND(A("3")), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.resumes >= 1 && r.slots[2].done, 20000);
  ck_assert_msg(r.resumes == 1, "not resumed (h='%s'); statuses: %s", bad_h[_i],
                r.statuses);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_EPROTO, "", 0);
  /* Dropped without a stream error, so that the server keeps the session
   * for resumption (XEP-0198 §5). */
  ck_assert_ptr_null(strstr(received(&r, 0, 0), "<stream:error"));
  ck_assert_ptr_null(strstr(received(&r, 0, 0), "</stream:stream>"));
  /* The two unacked ones were resent, once each, and then acked. */
  ck_assert_int_eq(count(received(&r, 0, 1), "second</body>"), 1);
  ck_assert_int_eq(count(received(&r, 0, 1), "third</body>"), 1);
  ck_assert_ptr_null(strstr(received(&r, 0, 1), "first</body>"));
  assert_acked(&r.slots[0]);
  assert_acked(&r.slots[1]);
  assert_acked(&r.slots[2]);
  ck_assert_uint_eq(r.onlines, 1);
  ck_assert_uint_eq(connections(&r, 0), 2);
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
  static const xmppuv_test_step_t s1[] = {LOGIN_SM, SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.onlines >= 1, 20000);
  /* SM works on the stream: acks are counted... */
  ck_assert(xmppuv_client_sm_enabled(r.c));
  RUN_UNTIL(&r, r.onlines >= 2 && r.slots[2].done, 20000);
  ck_assert_msg(r.onlines == 2, "not online again; statuses: %s", r.statuses);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_LOST(&r, 0);
  /* ...but without an id there is nothing to resume. */
  ck_assert_ptr_null(strstr(received(&r, 0, 1), "<resume"));
  assert_acked(&r.slots[0]);
  assert_failed(&r.slots[1], XMPPUV_ESMFAILED);
  assert_failed(&r.slots[2], XMPPUV_ESMFAILED);
  finish(&r);
}
END_TEST

START_TEST(unsolicited_resumed_is_EPROTO_and_the_session_resumes) {
  static const xmppuv_test_step_t s0[] = {LOGIN_SM, ACK_FIRST_OF_THREE,
                                          SCRIPT_SEND(RESUMED("1")), SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(RESUMED("1")),
                                          SCRIPT_EXPECT("third</body>"),
                                          SCRIPT_SEND(A("3")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.resumes >= 1 && r.slots[2].done, 20000);
  ck_assert_msg(r.resumes == 1, "not resumed; statuses: %s", r.statuses);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_EPROTO, "", 0);
  ck_assert_uint_eq(r.onlines, 1);
  ck_assert_int_eq(count(received(&r, 0, 1), "second</body>"), 1);
  assert_acked(&r.slots[0]);
  assert_acked(&r.slots[1]);
  assert_acked(&r.slots[2]);
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
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts_a, 1);
  start_server(&r, 1, scripts_b, 1);
  snprintf(to_b, sizeof to_b,
           HDR "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
               "'>127.0.0.1:%u</see-other-host></stream:error></stream:stream>",
           (unsigned)port_of(&r, 1));
  snprintf(to_a, sizeof to_a,
           HDR "<stream:error><see-other-host xmlns='" NS_STREAM_ERRORS
               "'>127.0.0.1:%u</see-other-host></stream:error></stream:stream>",
           (unsigned)port_of(&r, 0));
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  o.reconnect_delay_ms = 5000; /* redirects do not wait for the backoff */
  o.reconnect_max_delay_ms = 5000;
  start(&r, &o);
  assert_gave_up(&r);
  size_t n = connections(&r, 0) + connections(&r, 1);
  /* A bounded number of hops, alternating, and then a fatal error. */
  ck_assert_msg(n >= 3 && n <= 10, "%zu connections", n);
  ck_assert_uint_ge(connections(&r, 1), connections(&r, 0) - 1);
  ck_assert_uint_le(connections(&r, 1), connections(&r, 0));
  ck_assert_uint_eq(r.errors, n);
  for (unsigned i = 0; i + 1 < r.errors; i++) {
    ASSERT_ERROR(&r, i, XMPPUV_ESTREAM, "see-other-host", 0);
    ck_assert_uint_eq(r.delay[i], 0);
  }
  ASSERT_ERROR(&r, r.errors - 1, XMPPUV_ESEEOTHERHOST, "see-other-host", 1);
  ck_assert_uint_eq(r.reconnectings, n - 1);
  ck_assert_uint_eq(r.onlines, 0);
  for (size_t i = 0; i < connections(&r, 0); i++)
    ck_assert_ptr_null(strstr(received(&r, 0, i), "<auth"));
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
  const xmppuv_test_step_t s0[] = {LOGIN_SM, SCRIPT_EXPECT("second</body>"),
                                   SCRIPT_SEND(A("1") R), SCRIPT_EXPECT("<a "),
                                   SCRIPT_SEND(err), SCRIPT_CLOSE, SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(RESUMED("1")),
                                          SCRIPT_EXPECT("second</body>"),
                                          SCRIPT_SEND(A("2")), SCRIPT_END};
  const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  start(&r, &o);
  send_msg(&r, "first");
  send_msg(&r, "second");
  ck_assert_int_eq(xmppuv__stream_error_class(cond)->action == XMPPUV__SERR_FATAL, fatal);
  if (fatal) {
    assert_gave_up(&r);
    ck_assert_uint_eq(connections(&r, 0), 1);
    ck_assert_uint_eq(r.reconnectings, 0);
    /* Acked stays acked; the client gave up, so the unacked one fails at
     * once, with the stream error as the reason: nothing is left waiting. */
    assert_acked(&r.slots[0]);
    assert_failed(&r.slots[1], XMPPUV_ESTREAM);
    ck_assert_uint_eq(xmppuv_client_sm_queued(r.c), 0);
  } else {
    RUN_UNTIL(&r, r.resumes >= 1 && r.slots[1].done, 20000);
    ck_assert_msg(r.resumes == 1, "not resumed after %s; statuses: %s", cond, r.statuses);
    ck_assert_uint_eq(connections(&r, 0), 2);
    ck_assert_uint_eq(r.reconnectings, 1);
    if (strcmp(cond, "see-other-host") == 0) ck_assert_uint_eq(r.delay[0], 0);
    assert_acked(&r.slots[0]);
    assert_acked(&r.slots[1]);
  }
  ck_assert_uint_ge(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_ESTREAM, cond, fatal);
  ck_assert_uint_eq(r.errors, 1);
  /* RFC 6120 §4.9.1.1: no stream error in answer to one. */
  ck_assert_ptr_null(strstr(received(&r, 0, 0), "<stream:error"));
  finish(&r);
}
END_TEST

/* ---- silence --------------------------------------------------------------------- */

START_TEST(server_that_never_speaks_times_out_the_negotiation_and_reconnects) {
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {silent};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 1);
  xmppuv_client_options_t o;
  base_opts(&o, port_of(&r, 0));
  o.negotiation_timeout_ms = 300;
  start(&r, &o);
  send_msg(&r, "held");
  RUN_UNTIL(&r, connections(&r, 0) >= 3, 20000);
  ck_assert_msg(connections(&r, 0) >= 3, "no reconnection; statuses: %s", r.statuses);
  ck_assert_uint_ge(r.errors, 2);
  for (unsigned i = 0; i < 2; i++) {
    ASSERT_ERROR(&r, i, XMPPUV_ETIMEDOUT, "", 0);
    ck_assert_uint_ge(r.err_at[i] - r.connect_at[i], 300);
    ck_assert_uint_lt(r.err_at[i] - r.connect_at[i], 10000);
  }
  /* The held message was neither sent nor given up on. */
  ck_assert_uint_eq(r.slots[0].done, 0);
  ck_assert_int_eq(xmppuv_client_stop(r.c), 0);
  RUN_UNTIL(&r, r.offlines >= 1, 20000);
  assert_failed(&r.slots[0], XMPPUV_ECANCELED);
  finish(&r);
}
END_TEST

/* ---- TLS: a front on mbedTLS in front of the scripted server ------------------------ */

/* Accepts direct TLS (the test CA's "localhost" certificate), relays the
 * plaintext to and from the scripted server, and when the script sends
 * CUT_MARK, encrypts what follows as one record, sends half of it and
 * closes the connection. */
#define CUT_MARK "#CUT#"

typedef struct front_conn front_conn_t;

typedef struct tls_front {
  uv_tcp_t listener;
  unsigned short port, upstream_port;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt crt;
  mbedtls_pk_context key;
  mbedtls_ssl_config conf;
  front_conn_t *conns[16];
  size_t nconns;
  unsigned cuts;
} tls_front_t;

struct front_conn {
  tls_front_t *f;
  uv_tcp_t down, up;
  uv_connect_t connect_req;
  mbedtls_ssl_context ssl;
  char *in;
  size_t in_len;
  char *early; /* plaintext for the server before it is connected */
  size_t early_len;
  int handshake_done, up_connected, closing, handles;
  int capture;
  char cap[65536];
  size_t cap_len;
};

static void front_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void front_shut(uv_shutdown_t *sd, int status) {
  (void)status;
  free(sd);
}

static void front_write(uv_tcp_t *t, const char *data, size_t len) {
  uv_write_t *w = malloc(sizeof *w + len);
  ck_assert_ptr_nonnull(w);
  memcpy(w + 1, data, len);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)len);
  if (uv_write(w, (uv_stream_t *)t, &b, 1, front_written) != 0) free(w);
}

static int front_send(void *ctx, const unsigned char *buf, size_t len) {
  front_conn_t *k = ctx;
  if (k->capture) {
    if (len > sizeof k->cap - k->cap_len) len = sizeof k->cap - k->cap_len;
    memcpy(k->cap + k->cap_len, buf, len);
    k->cap_len += len;
    return (int)len;
  }
  if (!k->closing) front_write(&k->down, (const char *)buf, len);
  return (int)len;
}

static int front_recv(void *ctx, unsigned char *buf, size_t len) {
  front_conn_t *k = ctx;
  if (k->in_len == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  if (len > k->in_len) len = k->in_len;
  memcpy(buf, k->in, len);
  memmove(k->in, k->in + len, k->in_len - len);
  k->in_len -= len;
  return (int)len;
}

static void front_conn_closed(uv_handle_t *h) {
  front_conn_t *k = h->data;
  if (--k->handles > 0) return;
  mbedtls_ssl_free(&k->ssl);
  free(k->in);
  free(k->early);
  tls_front_t *f = k->f;
  for (size_t i = 0; i < f->nconns; i++)
    if (f->conns[i] == k) f->conns[i] = NULL;
  free(k);
}

static void front_close(front_conn_t *k) {
  if (k->closing) return;
  k->closing = 1;
  uv_close((uv_handle_t *)&k->down, front_conn_closed);
  uv_close((uv_handle_t *)&k->up, front_conn_closed);
}

static void front_encrypt(front_conn_t *k, const char *data, size_t len) {
  while (len > 0) {
    int n = mbedtls_ssl_write(&k->ssl, (const unsigned char *)data, len);
    ck_assert_msg(n > 0, "mbedtls_ssl_write: -0x%04x", (unsigned)-n);
    data += n;
    len -= (size_t)n;
  }
}

static void front_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base != NULL ? suggested : 0;
}

/* Plaintext from the scripted server: encrypt it, or cut it. */
static void front_on_up(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  front_conn_t *k = s->data;
  if (n < 0 || k->closing || !k->handshake_done) {
    if (n < 0) front_close(k);
    free(buf->base);
    return;
  }
  const char *data = buf->base;
  size_t len = (size_t)n;
  const char *mark = memmem(data, len, CUT_MARK, strlen(CUT_MARK));
  if (mark == NULL) {
    front_encrypt(k, data, len);
  } else {
    front_encrypt(k, data, (size_t)(mark - data));
    const char *rest = mark + strlen(CUT_MARK);
    size_t rest_len = len - (size_t)(rest - data);
    ck_assert_uint_gt(rest_len, 0);
    k->capture = 1;
    front_encrypt(k, rest, rest_len);
    k->capture = 0;
    /* Half a record, then FIN. */
    front_write(&k->down, k->cap, k->cap_len / 2);
    k->f->cuts++;
    uv_shutdown_t *sd = malloc(sizeof *sd);
    ck_assert_ptr_nonnull(sd);
    if (uv_shutdown(sd, (uv_stream_t *)&k->down, front_shut) != 0) free(sd);
    uv_read_stop((uv_stream_t *)&k->up);
  }
  free(buf->base);
}

static void front_on_up_connected(uv_connect_t *req, int status) {
  front_conn_t *k = req->data;
  if (k->closing) return;
  if (status != 0) {
    front_close(k);
    return;
  }
  k->up_connected = 1;
  if (k->early_len > 0) front_write(&k->up, k->early, k->early_len);
  k->early_len = 0;
  uv_read_start((uv_stream_t *)&k->up, front_alloc, front_on_up);
}

/* Ciphertext from the client. */
static void front_on_down(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  front_conn_t *k = s->data;
  if (n < 0 || k->closing) {
    if (n < 0) front_close(k);
    free(buf->base);
    return;
  }
  k->in = realloc(k->in, k->in_len + (size_t)n);
  ck_assert_ptr_nonnull(k->in);
  memcpy(k->in + k->in_len, buf->base, (size_t)n);
  k->in_len += (size_t)n;
  free(buf->base);
  if (!k->handshake_done) {
    int rc = mbedtls_ssl_handshake(&k->ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return;
    if (rc != 0) {
      front_close(k);
      return;
    }
    k->handshake_done = 1;
  }
  for (;;) {
    unsigned char plain[16384];
    int rc = mbedtls_ssl_read(&k->ssl, plain, sizeof plain);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return;
    if (rc <= 0) {
      front_close(k);
      return;
    }
    if (k->up_connected) {
      front_write(&k->up, (const char *)plain, (size_t)rc);
    } else {
      k->early = realloc(k->early, k->early_len + (size_t)rc);
      ck_assert_ptr_nonnull(k->early);
      memcpy(k->early + k->early_len, plain, (size_t)rc);
      k->early_len += (size_t)rc;
    }
  }
}

static void front_on_connection(uv_stream_t *listener, int status) {
  tls_front_t *f = listener->data;
  ck_assert_int_eq(status, 0);
  ck_assert_uint_lt(f->nconns, sizeof f->conns / sizeof f->conns[0]);
  front_conn_t *k = calloc(1, sizeof *k);
  ck_assert_ptr_nonnull(k);
  k->f = f;
  f->conns[f->nconns++] = k;
  uv_tcp_init(listener->loop, &k->down);
  uv_tcp_init(listener->loop, &k->up);
  k->down.data = k->up.data = k->connect_req.data = k;
  k->handles = 2;
  mbedtls_ssl_init(&k->ssl);
  ck_assert_int_eq(mbedtls_ssl_setup(&k->ssl, &f->conf), 0);
  mbedtls_ssl_set_bio(&k->ssl, k, front_send, front_recv, NULL);
  ck_assert_int_eq(uv_accept(listener, (uv_stream_t *)&k->down), 0);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", f->upstream_port, &addr);
  ck_assert_int_eq(uv_tcp_connect(&k->connect_req, &k->up, (const struct sockaddr *)&addr,
                                  front_on_up_connected), 0);
  uv_read_start((uv_stream_t *)&k->down, front_alloc, front_on_down);
}

static void tls_front_start(tls_front_t *f, uv_loop_t *loop, unsigned short upstream_port) {
  memset(f, 0, sizeof *f);
  f->upstream_port = upstream_port;
  ck_assert_ptr_nonnull(tls_certs_dir());
  mbedtls_entropy_init(&f->entropy);
  mbedtls_ctr_drbg_init(&f->drbg);
  mbedtls_x509_crt_init(&f->crt);
  mbedtls_pk_init(&f->key);
  mbedtls_ssl_config_init(&f->conf);
  ck_assert_int_eq(mbedtls_ctr_drbg_seed(&f->drbg, mbedtls_entropy_func, &f->entropy,
                                         (const unsigned char *)"hostile", 7), 0);
  ck_assert_int_eq(mbedtls_x509_crt_parse_file(&f->crt, tls_cert_path(0, "localhost.pem")), 0);
#if MBEDTLS_VERSION_MAJOR >= 3
  ck_assert_int_eq(mbedtls_pk_parse_keyfile(&f->key, tls_cert_path(0, "localhost.key"), NULL,
                                            mbedtls_ctr_drbg_random, &f->drbg), 0);
#else
  ck_assert_int_eq(mbedtls_pk_parse_keyfile(&f->key, tls_cert_path(0, "localhost.key"), NULL),
                   0);
#endif
  ck_assert_int_eq(mbedtls_ssl_config_defaults(&f->conf, MBEDTLS_SSL_IS_SERVER,
                                               MBEDTLS_SSL_TRANSPORT_STREAM,
                                               MBEDTLS_SSL_PRESET_DEFAULT), 0);
  mbedtls_ssl_conf_rng(&f->conf, mbedtls_ctr_drbg_random, &f->drbg);
  ck_assert_int_eq(mbedtls_ssl_conf_own_cert(&f->conf, &f->crt, &f->key), 0);
  ck_assert_int_eq(uv_tcp_init(loop, &f->listener), 0);
  f->listener.data = f;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_int_eq(uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0), 0);
  ck_assert_int_eq(uv_listen((uv_stream_t *)&f->listener, 16, front_on_connection), 0);
  struct sockaddr_in bound;
  int len = sizeof bound;
  ck_assert_int_eq(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&bound, &len), 0);
  f->port = ntohs(bound.sin_port);
}

static void tls_front_close(tls_front_t *f) {
  uv_close((uv_handle_t *)&f->listener, NULL);
  for (size_t i = 0; i < f->nconns; i++)
    if (f->conns[i] != NULL) front_close(f->conns[i]);
}

/* After the loop ran dry. */
static void tls_front_free(tls_front_t *f) {
  mbedtls_ssl_config_free(&f->conf);
  mbedtls_pk_free(&f->key);
  mbedtls_x509_crt_free(&f->crt);
  mbedtls_ctr_drbg_free(&f->drbg);
  mbedtls_entropy_free(&f->entropy);
  tls_certs_cleanup();
}

static void tls_opts(xmppuv_client_options_t *o, unsigned short port) {
  base_opts(o, port);
  o->tls = XMPPUV_TLS_DIRECT;
  o->ca_file = tls_cert_path(1, "ca.pem");
}

START_TEST(tls_closed_mid_record_is_ETLS_and_the_session_resumes) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, ACK_FIRST_OF_THREE,
      SCRIPT_SEND(CUT_MARK "<message from='bob@localhost/x'><body>cut short</body></message>"),
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(RESUMED("1")),
                                          SCRIPT_EXPECT("third</body>"),
                                          SCRIPT_SEND(A("3")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 2);
  static tls_front_t front;
  tls_front_start(&front, &r.loop, port_of(&r, 0));
  xmppuv_client_options_t o;
  tls_opts(&o, front.port);
  start_and_send_three(&r, &o);
  RUN_UNTIL(&r, r.resumes >= 1 && r.slots[2].done, 30000);
  ck_assert_msg(r.resumes == 1, "not resumed; statuses: %s", r.statuses);
  ck_assert_uint_eq(front.cuts, 1);
  ck_assert_uint_eq(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_ETLS, "", 0);
  ck_assert_uint_eq(r.reconnectings, 1);
  /* Half a message is no message. */
  ck_assert_uint_eq(r.inbound, 0);
  ck_assert_int_eq(count(received(&r, 0, 1), "second</body>"), 1);
  assert_acked(&r.slots[0]);
  assert_acked(&r.slots[1]);
  assert_acked(&r.slots[2]);
  tls_front_close(&front);
  finish(&r);
  tls_front_free(&front);
}
END_TEST

START_TEST(direct_tls_server_that_never_speaks_times_out_and_reconnects) {
  /* TCP is accepted; the ClientHello is never answered. */
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {silent};
  rec_t r;
  rec_init(&r);
  start_server(&r, 0, scripts, 1);
  ck_assert_ptr_nonnull(tls_certs_dir());
  xmppuv_client_options_t o;
  tls_opts(&o, port_of(&r, 0));
  /* Only the connect timeout can fire within the wait: it covers the
   * direct TLS handshake (the negotiation timeout starts after it). */
  o.connect_timeout_ms = 300;
  o.negotiation_timeout_ms = 600000;
  start(&r, &o);
  RUN_UNTIL(&r, connections(&r, 0) >= 2, 20000);
  ck_assert_msg(connections(&r, 0) >= 2, "no reconnection; statuses: %s", r.statuses);
  ck_assert_uint_ge(r.errors, 1);
  ASSERT_ERROR(&r, 0, XMPPUV_ETIMEDOUT, "", 0);
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
