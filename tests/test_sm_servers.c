/* XEP-0198 Stream Management end to end: the client against real Prosody
 * and real ejabberd (tests/support/servers.h), with a loopback fault proxy
 * (tests/support/fault_proxy.h) between the sender and the server.
 *
 * The shape of most tests: alice sends numbered messages ("smi-N", id
 * "smi-N") to bob's bare JID through the proxy; bob is a second client on
 * the same loop connected straight to the server, available (initial
 * presence), counting what arrives. The proxy breaks alice's connections
 * (resets, a silent partition, refusal) while she sends. At the end:
 * every message handed to send ended in exactly one ack or fail, bob got
 * every message that was acked exactly once and none that failed, and the
 * XEP-0203 delay stamps are where they must be: a message written later
 * than its send call carries exactly one <delay/> from alice's full JID,
 * one written at once and acked on that same connection carries none.
 *
 * "No duplicates" is checked after a fence: once alice has every outcome,
 * bob pings the server and waits for the reply. The server routed every
 * message (and any duplicate) to bob before it acked it, and it writes to
 * bob's stream in order, so anything still on its way arrives before the
 * ping's reply.
 *
 * The new-process tests run tests/sm_restart_helper (a saved session
 * resumed by another process) and examples/send and examples/echo, found
 * through environment variables that tests/meson.build sets, under
 * timeout(1) from coreutils so that none outlives a failed test.
 *
 * Whether alice wrote <resume/> and got <failed/> back is read from her
 * INFO log lines ("resuming: ...", "resumption failed ...; starting a new
 * session"): the API shows only the outcome (`online` or `resumed`).
 * Without the resend policy she does not ask to resume once the server's
 * 'max' has passed (sm.h); with it and stanzas unacked she asks, and the
 * <failed h/> both servers send for a timed-out session keeps what they
 * handled from being resent.
 *
 * SMI_LOG=1 (or =trace) in the environment prints the clients' logs. */
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <xmppuv.h>

#include "check_main.h"
#include "client_rec.h"
#include "run_until.h"
#include "fault_proxy.h"
#include "servers.h"

extern char **environ;

static const char *const kinds[] = {"prosody", "ejabberd"};

#define MAX_MSGS 400
#define MAX_JIDS 8
#define BODY_PREFIX "smi-"
#define NS_DELAY "urn:xmpp:delay"
#define NS_PING "urn:xmpp:ping"

/* Deadlines are generous: a loaded 2-core machine runs several suites at
 * once. They bound a failure; no test waits for them to pass. */
#define LONG_WAIT_MS 60000u

/* ---- what the test world keeps ------------------------------------------ */

typedef struct msg_state {
  int sent;                 /* handed to xmppuv_client_send */
  xmppuv_status_t status_at_send;
  unsigned drops_at_send;   /* alice's disconnects before the send */
  unsigned drops_at_outcome;
  int acks, fails, fail_reason;
  int must_delay;           /* the test knows it is written late (resent) */
  int received;             /* copies at bob */
  int delays;               /* <delay/> elements on the last copy */
  int stamp_ok;             /* its stamps are UTC times during the test */
  char from[160];           /* the last copy's 'from' */
  char delay_from[160];     /* its first <delay/>'s 'from' */
} msg_state_t;

typedef struct world world_t;

typedef struct peer {
  world_t *w;
  const char *user;
  xmppuv_client_t *c;
  client_rec_t app;            /* what the app saw (tests/support/client_rec.h) */
  unsigned timeouts, drops;    /* ETIMEDOUT errors, disconnect statuses */
  unsigned resumed_not_online; /* `resumed` with the status not online */
  unsigned online_without_sm;  /* `online` before SM was enabled */
  unsigned resume_attempts;    /* "resuming:" logged: <resume/> written */
  unsigned resume_failures;    /* "resumption failed" logged: <failed/> */
  unsigned logins, sasl2_logins; /* "authenticated with ..." logged, and of them SASL2 */
  unsigned bind2_binds;          /* "bound in the login (Bind2)" logged */
  char jids[MAX_JIDS][160];    /* every full JID `online` gave */
  unsigned njids;
  unsigned replies;            /* messages received (echo test: alice) */
} peer_t;

/* A child process whose stdout the test reads line by line. */
typedef struct child {
  world_t *w;
  uv_process_t proc;
  uv_pipe_t out;
  int running, out_open, proc_open;
  int64_t exit_status;
  int term_signal;
  char buf[65536];
  size_t len;         /* bytes in buf */
  size_t scanned;     /* bytes already split into lines */
  unsigned acks, fails, resumed, online, recv, lines, tokens, saved, errors;
  char jid[160]; /* the last "online JID" */
  unsigned subscribed; /* "subscribed JID" lines */
  int all_acknowledged;
  void (*on_line)(struct child *ch, const char *line);
} child_t;

struct world {
  uv_loop_t loop;
  const char *kind;
  int classic; /* alice logs in the RFC 6120 way (sasl2 = 0) */
  int ws;      /* alice over a WebSocket through the proxy: 1 ws://, 2 wss:// */
  xmppuv_test_server_t srv;
  xmppuv_test_proxy_t *proxy;
  int proxy_closed;
  peer_t alice, bob;
  msg_state_t msgs[MAX_MSGS];
  size_t nmsgs;        /* messages alice sent */
  size_t target;       /* the steady sender stops here */
  uv_timer_t send_timer, fault_timer, watchdog;
  unsigned fault_min_ms, fault_max_ms;
  unsigned reset_calls;
  unsigned seed;
  int64_t start_wall_s;
  unsigned stray;      /* messages at bob that are not ours */
  int fence_done;
  child_t child;
  int have_child;
  unsigned child_reset_at; /* reset the proxy at this many acks + recvs */
  int child_reset_done;
  int child_acks_are_alices; /* "ack smi-N" from the child settles msgs[N] */
  int outage_over;
};

static const char *log_mode(void) {
  const char *v = getenv("SMI_LOG");
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The peer of a callback's user_data (its recorder). */
static peer_t *peer_of(void *ud) { return ((client_rec_t *)ud)->user; }

static long msg_index(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  if (s == NULL || strncmp(s, prefix, n) != 0) return -1;
  char *end;
  long i = strtol(s + n, &end, 10);
  if (*end != '\0' || i < 0 || i >= MAX_MSGS) return -1;
  return i;
}

/* ---- client callbacks: the recorder's, then what these tests add ---------- */

static void on_log(void *ud, xmppuv_log_level_t level, const char *area,
                   const char *msg) {
  peer_t *p = ud;
  if (strcmp(area, "sasl") == 0 && strncmp(msg, "authenticated with ", 19) == 0) {
    p->logins++;
    if (strstr(msg, " (SASL2)") != NULL) p->sasl2_logins++;
  }
  if (strcmp(area, "session") == 0 && strncmp(msg, "bound in the login (Bind2)", 26) == 0)
    p->bind2_binds++;
  if (strcmp(area, "sm") == 0) {
    if (strncmp(msg, "resuming:", 9) == 0) p->resume_attempts++;
    /* The driver's line, once per <failed/> that answered <resume/>. */
    if (strncmp(msg, "resumption failed", 17) == 0 && strstr(msg, "new session") != NULL)
      p->resume_failures++;
  }
  if (log_mode() != NULL)
    fprintf(stderr, "[%s %s] %s: %s\n", p->user, xmppuv_log_level_name(level),
            area, msg);
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud) {
  client_rec_callbacks.status(c, status, ud);
  peer_t *p = peer_of(ud);
  if (status == XMPPUV_STATUS_DISCONNECT) p->drops++;
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  client_rec_callbacks.online(c, jid, ud);
  peer_t *p = peer_of(ud);
  /* online comes after the <enable/> round trip: SM is on by now. */
  if (!xmppuv_client_sm_enabled(c)) p->online_without_sm++;
  if (p->njids < MAX_JIDS)
    snprintf(p->jids[p->njids++], sizeof p->jids[0], "%s", xmppuv_jid_string(jid));
  if (strcmp(p->user, "bob") == 0) {
    /* Available, so messages to the bare JID reach this resource. */
    xmppuv_stanza_t *pres;
    ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &pres), 0);
    ck_assert_int_eq(xmppuv_client_send(c, pres), 0);
    xmppuv_stanza_unref(pres);
  }
}

/* The proxy whose client flights a test counts, and their number when
 * `resumed` came (what the client sent after it is not part of it). */
static xmppuv_test_proxy_t *flight_proxy;
static unsigned long flights_at_resumed;

static void on_resumed(xmppuv_client_t *c, void *ud) {
  client_rec_callbacks.resumed(c, ud);
  if (flight_proxy != NULL) {
    xmppuv_test_proxy_stats_t st;
    xmppuv_test_proxy_stats(flight_proxy, &st);
    flights_at_resumed = st.latest_client_flights;
  }
  peer_t *p = peer_of(ud);
  if (xmppuv_client_status(c) != XMPPUV_STATUS_ONLINE) p->resumed_not_online++;
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *err, void *ud) {
  client_rec_callbacks.error(c, err, ud);
  peer_t *p = peer_of(ud);
  if (err->code == XMPPUV_ETIMEDOUT) p->timeouts++;
  if (log_mode() != NULL)
    fprintf(stderr, "[%s] error %s%s%s%s\n", p->user, xmppuv_err_name(err->code),
            err->condition ? " " : "", err->condition ? err->condition : "",
            err->fatal ? " (fatal)" : "");
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  client_rec_callbacks.ack(c, s, ud);
  peer_t *p = peer_of(ud);
  long i = msg_index(xmppuv_stanza_attr(s, "id"), BODY_PREFIX);
  if (i < 0 || strcmp(p->user, "alice") != 0) return;
  p->w->msgs[i].acks++;
  p->w->msgs[i].drops_at_outcome = p->drops;
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  (client_rec_callbacks.fail)(c, s, reason, ud); /* not Check's fail() */
  peer_t *p = peer_of(ud);
  long i = msg_index(xmppuv_stanza_attr(s, "id"), BODY_PREFIX);
  if (i < 0 || strcmp(p->user, "alice") != 0) return;
  p->w->msgs[i].fails++;
  p->w->msgs[i].fail_reason = reason;
  p->w->msgs[i].drops_at_outcome = p->drops;
}

static int is_sender_jid(const world_t *w, const char *jid) {
  if (jid == NULL) return 0;
  for (unsigned i = 0; i < w->alice.njids; i++)
    if (strcmp(w->alice.jids[i], jid) == 0) return 1;
  return 0;
}

/* XEP-0082 "CCYY-MM-DDThh:mm:ss[.sss]Z", within the test's run. */
static int stamp_in_test(const world_t *w, const char *stamp) {
  if (stamp == NULL) return 0;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == NULL) return 0;
  if (*rest == '.') {
    rest++;
    while (*rest >= '0' && *rest <= '9') rest++;
  }
  if (strcmp(rest, "Z") != 0) return 0;
  int64_t t = (int64_t)timegm(&tm);
  return t >= w->start_wall_s - 1 && t <= (int64_t)time(NULL) + 1;
}

static void maybe_reset_on_progress(world_t *w);

/* bob: count every numbered body, with its delay stamps. */
static int bob_on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c;
  world_t *w = ud;
  const char *body = xmppuv_stanza_child_text(msg, "body", NULL);
  long i = msg_index(body, BODY_PREFIX);
  if (i < 0) {
    if (body != NULL && strncmp(body, "message ", 8) == 0)
      i = strtol(body + 8, NULL, 10); /* examples/send's bodies */
    if (i <= 0 || i >= MAX_MSGS) {
      if (body != NULL) w->stray++;
      return XMPPUV_PASS;
    }
  }
  msg_state_t *m = &w->msgs[i];
  m->received++;
  m->delays = 0;
  m->stamp_ok = 1;
  m->delay_from[0] = '\0';
  const char *from = xmppuv_stanza_attr(msg, "from");
  snprintf(m->from, sizeof m->from, "%s", from ? from : "");
  /* Any <delay/>, whatever its namespace prefix or position. */
  for (xmppuv_stanza_t *d = xmppuv_stanza_child(msg, "delay", NULL); d != NULL;
       d = xmppuv_stanza_next(d, "delay", NULL)) {
    const char *ns = xmppuv_stanza_ns(d), *df = xmppuv_stanza_attr(d, "from");
    if (ns == NULL || strcmp(ns, NS_DELAY) != 0) m->stamp_ok = 0;
    if (m->delays++ == 0) snprintf(m->delay_from, sizeof m->delay_from, "%s", df ? df : "");
    if (!stamp_in_test(w, xmppuv_stanza_attr(d, "stamp"))) m->stamp_ok = 0;
  }
  maybe_reset_on_progress(w);
  return XMPPUV_HANDLED;
}

/* alice in the echo test: count the echoed bodies. */
static int alice_on_reply(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c;
  world_t *w = ud;
  long i = msg_index(xmppuv_stanza_child_text(msg, "body", NULL), BODY_PREFIX);
  if (i < 0) return XMPPUV_PASS;
  w->msgs[i].received++;
  w->alice.replies++;
  return XMPPUV_HANDLED;
}

static int one_reply(world_t *w);

static void on_fast_token(xmppuv_client_t *c, const xmppuv_fast_token_t *t, void *ud) {
  client_rec_callbacks.fast_token(c, t, ud);
}

static const xmppuv_client_callbacks_t callbacks = {
    sizeof(xmppuv_client_callbacks_t), on_status, on_online, on_resumed, on_error, on_ack, on_fail, NULL, NULL, on_fast_token, NULL};

/* user on the test's loop; its recorder is the client's user_data. */
static void peer_init(world_t *w, peer_t *p, const char *user) {
  p->w = w;
  p->user = user;
  client_rec_init(&p->app, run_clock, &w->loop);
  p->app.user = p;
}

/* ---- the world -------------------------------------------------------------- */

static void world_start(world_t *w, int kind, int resume_seconds) {
  memset(w, 0, sizeof *w);
  /* 0 and 1: the servers, alice on the default (modern) login; 2 and 3:
   * the same servers, alice on RFC 6120 SASL, bind iq and <resume/>; 4 and
   * 5: alice over a WebSocket (RFC 7395), ws://; 6 and 7: wss://. */
  w->kind = kinds[kind % 2];
  w->classic = kind == 2 || kind == 3;
  w->ws = kind >= 6 ? 2 : kind >= 4 ? 1 : 0;
  w->start_wall_s = (int64_t)time(NULL);
  w->seed = (unsigned)getpid() ^ (unsigned)w->start_wall_s;
  ck_assert_int_eq(uv_loop_init(&w->loop), 0);
  int rc = xmppuv_test_server_start(w->kind, resume_seconds, &w->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", w->kind, uv_strerror(rc));
  unsigned short target = w->ws == 2 ? w->srv.https_port : w->ws ? w->srv.http_port : w->srv.port;
  ck_assert_int_eq(xmppuv_test_proxy_start(&w->loop, "127.0.0.1", target, &w->proxy), 0);
  ck_assert_int_eq(uv_timer_init(&w->loop, &w->send_timer), 0);
  ck_assert_int_eq(uv_timer_init(&w->loop, &w->fault_timer), 0);
  ck_assert_int_eq(uv_timer_init(&w->loop, &w->watchdog), 0);
  w->send_timer.data = w->fault_timer.data = w->watchdog.data = w;
  peer_init(w, &w->alice, "alice");
  peer_init(w, &w->bob, "bob");
}

/* Options for user, through the proxy or straight to the server. Small
 * reconnection delays: the faults come every few hundred milliseconds. */
static void peer_options(world_t *w, peer_t *p, int via_proxy, xmppuv_client_options_t *o) {
  static char jid[2][128];
  char *j = jid[p == &w->bob];
  snprintf(j, sizeof jid[0], "%s@%s", p->user, w->srv.domain);
  xmppuv_client_options_init(o);
  o->jid = j;
  o->password = xmppuv_test_password(p->user);
  o->host = "127.0.0.1";
  o->port = via_proxy ? xmppuv_test_proxy_port(w->proxy) : w->srv.port;
  o->tls = XMPPUV_TLS_STARTTLS;
  o->ca_file = w->srv.ca_file;
  o->reconnect_delay_ms = 50;
  o->reconnect_max_delay_ms = 400;
  o->connect_timeout_ms = 5000;
  o->negotiation_timeout_ms = 20000;
  o->sm_ack_debounce_ms = 50;
  o->sasl2 = !(w->classic && p == &w->alice);
  if (via_proxy && w->ws) {
    /* The proxy in front of the server's HTTP(S) port; the certificate
     * names localhost. */
    static char url[160];
    snprintf(url, sizeof url, "%s://localhost:%u%s", w->ws == 2 ? "wss" : "ws",
             xmppuv_test_proxy_port(w->proxy),
             strcmp(w->kind, "prosody") == 0 ? "/xmpp-websocket" : "/ws");
    o->url = url;
    o->host = NULL;
    o->port = 0;
    o->tls = w->ws == 2 ? XMPPUV_TLS_AUTO : XMPPUV_TLS_DISABLED_INSECURE;
    if (w->ws == 1) o->ca_file = NULL;
  }
  o->log_cb = on_log;
  o->log_user_data = p;
  o->log_level = log_mode() != NULL && strcmp(log_mode(), "trace") == 0
                     ? XMPPUV_LOG_TRACE
                     : XMPPUV_LOG_INFO;
}

static void peer_start(world_t *w, peer_t *p, const xmppuv_client_options_t *o) {
  ck_assert_int_eq(xmppuv_client_new(&w->loop, o, &callbacks, &p->app, &p->c), 0);
  if (p == &w->bob)
    ck_assert_int_eq(xmppuv_client_handler_add(p->c, "message", NULL, NULL, bob_on_message,
                                               w, NULL),
                     0);
  ck_assert_int_eq(xmppuv_client_start(p->c), 0);
}

static void on_watchdog(uv_timer_t *t) { (void)t; }

/* Run the loop until pred holds; 0 if timeout_ms passed first. */
static int run_until(world_t *w, int (*pred)(world_t *), unsigned timeout_ms) {
  uint64_t deadline = uv_now(&w->loop) + timeout_ms;
  uv_timer_start(&w->watchdog, on_watchdog, timeout_ms, 0);
  int ok;
  while (!(ok = pred(w)) && uv_now(&w->loop) < deadline) uv_run(&w->loop, UV_RUN_ONCE);
  uv_timer_stop(&w->watchdog);
  return ok;
}

static void summary(const world_t *w, char *out, size_t size) {
  size_t acked = 0, failed = 0, got = 0, delayed = 0;
  for (size_t i = 0; i < w->nmsgs; i++) {
    acked += w->msgs[i].acks > 0;
    failed += w->msgs[i].fails > 0;
    got += w->msgs[i].received > 0;
    delayed += w->msgs[i].received > 0 && w->msgs[i].delays > 0;
  }
  snprintf(out, size,
           "%s: sent %zu, acked %zu, failed %zu, at bob %zu (%zu with a delay); alice online "
           "%u resumed %u (<resume/> %u, <failed/> %u) errors %u (last E%u) drops %u; "
           "resets %u; bob online %u",
           w->kind, w->nmsgs, acked, failed, got, delayed, w->alice.app.onlines,
           w->alice.app.resumes, w->alice.resume_attempts, w->alice.resume_failures,
           w->alice.app.errors, (unsigned)-w->alice.app.last_err_code, w->alice.drops,
           w->reset_calls, w->bob.app.onlines);
}

#define WAIT_FOR(w, pred, ms)                                          \
  do {                                                                 \
    if (!run_until((w), (pred), (ms))) {                               \
      char s_[512];                                                    \
      summary((w), s_, sizeof s_);                                     \
      ck_abort_msg("timed out waiting for %s (%s)", #pred, s_);        \
    }                                                                  \
  } while (0)

static int alice_online(world_t *w) {
  return xmppuv_client_status(w->alice.c) == XMPPUV_STATUS_ONLINE;
}
static int alice_not_online(world_t *w) { return !alice_online(w); }
static int bob_ready(world_t *w) {
  /* online, and the presence acked: the server knows bob is available. */
  return w->bob.app.onlines > 0 && w->bob.app.acks > 0 &&
         xmppuv_client_status(w->bob.c) == XMPPUV_STATUS_ONLINE &&
         xmppuv_client_sm_queued(w->bob.c) == 0;
}
static int both_online(world_t *w) { return alice_online(w) && bob_ready(w); }

/* Every message sent has its outcome. */
static int all_settled(world_t *w) {
  if (w->nmsgs < w->target) return 0;
  for (size_t i = 0; i < w->nmsgs; i++)
    if (w->msgs[i].acks + w->msgs[i].fails == 0) return 0;
  return 1;
}

/* Every acked message is at bob. */
static int acked_delivered(world_t *w) {
  for (size_t i = 0; i < w->nmsgs; i++)
    if (w->msgs[i].acks > 0 && w->msgs[i].received == 0) return 0;
  return 1;
}

static int settled_and_delivered(world_t *w) {
  return all_settled(w) && acked_delivered(w);
}

/* ---- sending ------------------------------------------------------------------ */

static void alice_send_one(world_t *w) {
  ck_assert_uint_lt(w->nmsgs, MAX_MSGS);
  size_t i = w->nmsgs++;
  char text[32], to[128];
  snprintf(text, sizeof text, BODY_PREFIX "%zu", i);
  snprintf(to, sizeof to, "bob@%s", w->srv.domain);
  msg_state_t *m = &w->msgs[i];
  m->sent = 1;
  m->status_at_send = xmppuv_client_status(w->alice.c);
  m->drops_at_send = w->alice.drops;
  xmppuv_stanza_t *msg;
  ck_assert_int_eq(xmppuv_message_new(to, "chat", text, &msg), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(msg, "id", text), 0);
  int rc = xmppuv_client_send(w->alice.c, msg);
  ck_assert_msg(rc == 0, "send %zu: %s", i, xmppuv_err_name(rc));
  xmppuv_stanza_unref(msg);
}

static void alice_send(world_t *w, size_t n) {
  w->target = w->nmsgs + n;
  while (w->nmsgs < w->target) alice_send_one(w);
}

static void on_send_timer(uv_timer_t *t) {
  world_t *w = t->data;
  if (w->nmsgs < w->target) alice_send_one(w);
  if (w->nmsgs >= w->target) {
    uv_timer_stop(&w->send_timer);
    uv_timer_stop(&w->fault_timer); /* the storm ends with the sending */
  }
}

static unsigned next_fault_delay(world_t *w) {
  unsigned span = w->fault_max_ms - w->fault_min_ms + 1;
  return w->fault_min_ms + (unsigned)rand_r(&w->seed) % span;
}

static void on_fault_timer(uv_timer_t *t) {
  world_t *w = t->data;
  xmppuv_test_proxy_reset_all(w->proxy);
  w->reset_calls++;
  uv_timer_start(&w->fault_timer, on_fault_timer, next_fault_delay(w), 0);
}

/* ---- the fence ------------------------------------------------------------------ */

static void on_fence_reply(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply,
                           void *ud) {
  (void)c, (void)reply;
  world_t *w = ud;
  ck_assert_msg(status == 0, "fence ping: %s", xmppuv_err_name(status));
  w->fence_done = 1;
}

static int fence_done(world_t *w) { return w->fence_done; }

/* See the top of the file: after this, nothing more is on its way to
 * peer p. */
static void fence(world_t *w, peer_t *p) {
  xmppuv_stanza_t *iq;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &iq), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "type", "get"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "to", w->srv.domain), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(iq, "ping", NS_PING, NULL), 0);
  w->fence_done = 0;
  ck_assert_int_eq(xmppuv_client_send_iq(p->c, iq, 30000, on_fence_reply, w, NULL), 0);
  xmppuv_stanza_unref(iq);
  WAIT_FOR(w, fence_done, LONG_WAIT_MS);
}

/* ---- the checks ------------------------------------------------------------------- */

/* Every message: exactly one outcome; at bob exactly once if acked, never
 * if failed; delay stamps as the top of the file says. */
static void check_messages(world_t *w) {
  for (size_t i = 0; i < w->nmsgs; i++) {
    const msg_state_t *m = &w->msgs[i];
    ck_assert_msg(m->acks + m->fails == 1, "%s: smi-%zu has %d acks and %d fails", w->kind, i,
                  m->acks, m->fails);
    if (m->fails > 0) {
      ck_assert_msg(m->received == 0, "%s: smi-%zu failed (%s) but bob got it %d times",
                    w->kind, i, xmppuv_err_name(m->fail_reason), m->received);
      continue;
    }
    ck_assert_msg(m->received == 1, "%s: smi-%zu acked, bob got it %d times", w->kind, i,
                  m->received);
    ck_assert_msg(is_sender_jid(w, m->from), "%s: smi-%zu from '%s'", w->kind, i, m->from);
    ck_assert_msg(m->delays <= 1, "%s: smi-%zu has %d delays", w->kind, i, m->delays);
    if (m->delays > 0)
      ck_assert_msg(is_sender_jid(w, m->delay_from),
                    "%s: smi-%zu has a delay from '%s', not from alice's full JID", w->kind,
                    i, m->delay_from);
    if (m->delays > 0)
      ck_assert_msg(m->stamp_ok, "%s: smi-%zu has a bad delay stamp", w->kind, i);
    int written_at_once = m->status_at_send == XMPPUV_STATUS_ONLINE;
    int held = !written_at_once && m->status_at_send != XMPPUV_STATUS_OPEN;
    if (m->must_delay || held)
      ck_assert_msg(m->delays == 1, "%s: smi-%zu was written late but has no delay",
                    w->kind, i);
    if (written_at_once && !m->must_delay && m->drops_at_outcome == m->drops_at_send)
      ck_assert_msg(m->delays == 0, "%s: smi-%zu was never resent but has a delay", w->kind,
                    i);
  }
  ck_assert_uint_eq(w->stray, 0);
}

static void check_alice_events(world_t *w) {
  /* The login the test asked for, every time. */
  ck_assert_uint_ge(w->alice.logins, 1);
  /* ejabberd offers SASL2 only to a stream header with from=, which goes
   * out only under TLS (RFC 6120 §4.7.1): not over ws://. */
  int no_sasl2 = w->classic || (w->ws == 1 && strcmp(w->kind, "ejabberd") == 0);
  ck_assert_uint_eq(w->alice.sasl2_logins, no_sasl2 ? 0 : w->alice.logins);
  ck_assert_uint_eq(w->alice.online_without_sm, 0);
  ck_assert_uint_eq(w->alice.resumed_not_online, 0);
  ck_assert_uint_eq(w->bob.online_without_sm, 0);
}

/* ---- teardown ----------------------------------------------------------------------- */

static void on_proxy_closed(void *ud) { ((world_t *)ud)->proxy_closed = 1; }

static void close_peer(peer_t *p) {
  if (p->c == NULL) {
    p->app.closed = 1;
    return;
  }
  xmppuv_client_close(p->c, client_rec_close_cb);
  p->c = NULL;
}

static int everything_closed(world_t *w) {
  return w->alice.app.closed && w->bob.app.closed && w->proxy_closed;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void world_finish(world_t *w) {
  if (w->have_child && w->child.running) uv_process_kill(&w->child.proc, SIGKILL);
  close_peer(&w->alice);
  close_peer(&w->bob);
  if (w->proxy != NULL) {
    xmppuv_test_proxy_close(w->proxy, on_proxy_closed, w);
    w->proxy = NULL;
  } else {
    w->proxy_closed = 1;
  }
  close_handle((uv_handle_t *)&w->send_timer);
  close_handle((uv_handle_t *)&w->fault_timer);
  close_handle((uv_handle_t *)&w->watchdog);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  ck_assert(everything_closed(w));
  ck_assert_int_eq(uv_loop_close(&w->loop), 0);
  xmppuv_test_server_stop(&w->srv);
}

static void report(const world_t *w, const char *what) {
  char s[512];
  summary(w, s, sizeof s);
  fprintf(stderr, "# %s: %s\n", what, s);
}

/* Start bob (direct) and alice (through the proxy) and wait for both. */
static void start_pair(world_t *w, xmppuv_client_options_t *alice_opts) {
  xmppuv_client_options_t bo;
  peer_options(w, &w->bob, 0, &bo);
  peer_start(w, &w->bob, &bo);
  WAIT_FOR(w, bob_ready, LONG_WAIT_MS);
  peer_start(w, &w->alice, alice_opts);
  WAIT_FOR(w, both_online, LONG_WAIT_MS);
}

/* ---- the tests: faults ----------------------------------------------------------- */

/* alice sends 200 messages at a steady 20 ms while the proxy resets her
 * connection every 200-400 ms. */
START_TEST(messages_sent_through_repeated_resets_arrive_exactly_once_and_are_acked) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  start_pair(w, &ao);

  w->target = 200;
  w->fault_min_ms = 200;
  w->fault_max_ms = 400;
  uv_timer_start(&w->send_timer, on_send_timer, 20, 20);
  uv_timer_start(&w->fault_timer, on_fault_timer, next_fault_delay(w), 0);
  WAIT_FOR(w, settled_and_delivered, 120000);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  fence(w, &w->bob);
  /* An iq both ways over alice's transport, whichever it is. */
  fence(w, &w->alice);

  report(w, "reset storm");
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(w->proxy, &st);
  fprintf(stderr, "# %s: proxy reset %lu connections, accepted %lu\n", w->kind, st.resets,
          st.accepted);
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_eq(w->alice.app.acks, 200);
  ck_assert_uint_eq(w->alice.app.fails, 0);
  ck_assert_uint_eq(w->alice.app.onlines, 1);
  ck_assert_uint_ge(w->alice.app.resumes, 1);
  ck_assert_uint_ge(w->reset_calls, 5);
  ck_assert_uint_ge(st.resets, 3);
  /* And the other way: bob writes to alice's resumed session. */
  ck_assert_int_eq(xmppuv_client_handler_add(w->alice.c, "message", NULL, NULL, alice_on_reply,
                                             w, NULL),
                   0);
  xmppuv_stanza_t *back;
  ck_assert_int_eq(xmppuv_message_new(xmppuv_jid_string(xmppuv_client_jid(w->alice.c)), "chat",
                                      BODY_PREFIX "0", &back),
                   0);
  ck_assert_int_eq(xmppuv_client_send(w->bob.c, back), 0);
  xmppuv_stanza_unref(back);
  WAIT_FOR(w, one_reply, LONG_WAIT_MS);
  world_finish(w);
  free(w);
}
END_TEST

/* The proxy holds every byte (no FIN, no RST) while alice goes on sending
 * every 100 ms. Her debounced <r/> still goes out (steady sends cannot
 * starve it; the periodic one is 30 s away), stays unanswered for the ack
 * timeout, and she drops the connection; once the partition heals she
 * resumes. */
static int sent_target(world_t *w) { return w->nmsgs >= w->target; }

START_TEST(silent_partition_longer_than_the_ack_timeout_leads_to_resumption) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.sm_ack_timeout_ms = 1500;
  ao.sm_ack_debounce_ms = 250; /* longer than the gap between sends */
  start_pair(w, &ao);

  alice_send(w, 5);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  xmppuv_test_proxy_partition(w->proxy, 1);
  w->target = w->nmsgs + 150;
  uv_timer_start(&w->send_timer, on_send_timer, 100, 100);
  WAIT_FOR(w, alice_not_online, LONG_WAIT_MS);
  ck_assert_uint_lt(w->nmsgs, w->target); /* noticed while still sending */
  ck_assert_uint_ge(w->alice.timeouts, 1); /* dropped by the ack timeout */
  ck_assert_uint_eq(w->alice.app.resumes, 0);
  w->target = w->nmsgs + 5; /* a few more while she is away */
  WAIT_FOR(w, sent_target, LONG_WAIT_MS);
  xmppuv_test_proxy_partition(w->proxy, 0);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "partition");
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_eq(w->alice.app.acks, w->nmsgs);
  ck_assert_uint_eq(w->alice.app.fails, 0);
  ck_assert_uint_eq(w->alice.app.onlines, 1);
  ck_assert_uint_ge(w->alice.app.resumes, 1);
  world_finish(w);
  free(w);
}
END_TEST

/* Acks come while alice sends steadily (every 50 ms, faster than the
 * 250 ms debounce), not only once she stops. */
static int some_acked(world_t *w) { return w->alice.app.acks > 0; }

START_TEST(steady_sending_is_acked_before_it_ends) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.sm_ack_debounce_ms = 250;
  start_pair(w, &ao);
  w->target = 60;
  uv_timer_start(&w->send_timer, on_send_timer, 50, 50);
  WAIT_FOR(w, some_acked, LONG_WAIT_MS);
  ck_assert_uint_lt(w->nmsgs, w->target);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  fence(w, &w->bob);
  check_messages(w);
  ck_assert_uint_eq(w->alice.app.acks, 60);
  world_finish(w);
  free(w);
}
END_TEST

/* The outage test's common part: 5 messages acked; 5 written into a
 * partition that is then reset (so the server never sees them); 5 sent
 * while the proxy refuses connections; the outage outlasts the server's
 * resumption window by 2 s. */
#define WINDOW_S 2

static int outage_over(world_t *w) { return w->outage_over; }
static void on_outage_end(uv_timer_t *t) { ((world_t *)t->data)->outage_over = 1; }

static void outage_longer_than_the_window(world_t *w) {
  alice_send(w, 5);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  xmppuv_test_proxy_partition(w->proxy, 1);
  alice_send(w, 5); /* unacked, and lost with the reset below */
  ck_assert_int_eq(xmppuv_test_proxy_refuse(w->proxy, 1), 0);
  xmppuv_test_proxy_reset_all(w->proxy);
  WAIT_FOR(w, alice_not_online, LONG_WAIT_MS);
  alice_send(w, 5); /* held */
  /* The outage itself: a fixed length, longer than the window. */
  uv_timer_start(&w->fault_timer, on_outage_end, (WINDOW_S + 2) * 1000, 0);
  WAIT_FOR(w, outage_over, LONG_WAIT_MS);
  ck_assert_uint_eq(w->alice.app.onlines, 1);
  ck_assert_uint_eq(w->alice.app.resumes, 0);
  xmppuv_test_proxy_partition(w->proxy, 0);
  ck_assert_int_eq(xmppuv_test_proxy_refuse(w->proxy, 0), 0);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  fence(w, &w->bob);
}

START_TEST(outage_longer_than_the_resume_window_fails_the_unacked_and_goes_online) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, WINDOW_S);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  start_pair(w, &ao);
  outage_longer_than_the_window(w);

  report(w, "outage");
  check_messages(w);
  check_alice_events(w);
  for (size_t i = 5; i < 10; i++) {
    ck_assert_int_eq(w->msgs[i].fails, 1);
    ck_assert_int_eq(w->msgs[i].fail_reason, XMPPUV_ESMFAILED);
  }
  ck_assert_uint_eq(w->alice.app.acks, 10);
  ck_assert_uint_eq(w->alice.app.fails, 5);
  ck_assert_uint_eq(w->alice.app.onlines, 2);
  ck_assert_uint_eq(w->alice.app.resumes, 0);
  /* The modern login: the new session came bound (and enabled) in the
   * same <success/> that said <failed/> (inline resumption with its Bind2
   * fallback), the first one too; the RFC 6120 login binds with an iq. */
  ck_assert_uint_eq(w->alice.bind2_binds, w->classic ? 0 : 2);
  world_finish(w);
  free(w);
}
END_TEST

START_TEST(outage_longer_than_the_resume_window_resends_with_the_resend_policy) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, WINDOW_S);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.sm_resend_on_failed = 1;
  start_pair(w, &ao);
  for (size_t i = 5; i < 10; i++) w->msgs[i].must_delay = 1;
  outage_longer_than_the_window(w);

  report(w, "outage with resend");
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_ge(w->alice.resume_failures, 1); /* asked, and <failed h/> came */
  ck_assert_uint_eq(w->alice.app.acks, 15);
  ck_assert_uint_eq(w->alice.app.fails, 0);
  ck_assert_uint_eq(w->alice.app.onlines, 2);
  ck_assert_uint_eq(w->alice.app.resumes, 0);
  world_finish(w);
  free(w);
}
END_TEST

/* The resend policy must not duplicate what the server handled but never
 * acked. alice asks for acks only 3 s after sending; bob gets her 5
 * messages (so the server handled them) at once, and then the outage
 * outlasts the window. Past the
 * window she still asks to resume: the server's <failed h='5'/> (XEP-0198
 * §5, for a session that timed out) acks all 5, and nothing is resent. */
static int bob_got_5(world_t *w) {
  for (size_t i = 0; i < 5; i++)
    if (w->msgs[i].received == 0) return 0;
  return 1;
}

START_TEST(outage_past_the_window_resends_only_what_the_server_had_not_handled) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, WINDOW_S);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.sm_resend_on_failed = 1;
  ao.sm_ack_debounce_ms = 3000; /* no <r/> before the reset below */
  ao.sm_idle_request_ms = 0;
  start_pair(w, &ao);
  alice_send(w, 5);
  WAIT_FOR(w, bob_got_5, LONG_WAIT_MS);
  ck_assert_uint_eq(w->alice.app.acks, 0);
  ck_assert_int_eq(xmppuv_test_proxy_refuse(w->proxy, 1), 0);
  xmppuv_test_proxy_reset_all(w->proxy);
  WAIT_FOR(w, alice_not_online, LONG_WAIT_MS);
  uv_timer_start(&w->fault_timer, on_outage_end, (WINDOW_S + 2) * 1000, 0);
  WAIT_FOR(w, outage_over, LONG_WAIT_MS);
  ck_assert_int_eq(xmppuv_test_proxy_refuse(w->proxy, 0), 0);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "outage past the window, resend policy, server had them");
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_ge(w->alice.resume_failures, 1);
  ck_assert_uint_eq(w->alice.app.acks, 5);
  ck_assert_uint_eq(w->alice.app.fails, 0);
  ck_assert_uint_eq(w->alice.app.onlines, 2);
  ck_assert_uint_eq(w->alice.app.resumes, 0);
  world_finish(w);
  free(w);
}
END_TEST

/* The server restarts: it knows nothing of alice's session. She asks to
 * resume, gets <failed/>, her unacked messages fail, and a new session
 * sends what she held meanwhile. */
START_TEST(server_restart_gets_failed_and_a_fresh_session) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  start_pair(w, &ao);

  alice_send(w, 5);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  xmppuv_test_proxy_partition(w->proxy, 1);
  alice_send(w, 5); /* unacked, lost with the reset */
  ck_assert_int_eq(xmppuv_test_proxy_refuse(w->proxy, 1), 0);
  xmppuv_test_proxy_reset_all(w->proxy);
  WAIT_FOR(w, alice_not_online, LONG_WAIT_MS);
  alice_send(w, 5); /* held */
  unsigned bob_online = w->bob.app.onlines;
  int rc = xmppuv_test_server_restart(&w->srv); /* blocks the loop meanwhile */
  ck_assert_msg(rc == 0, "restart: %s", uv_strerror(rc));
  /* bob lost his session too: wait for his new one and its presence. */
  w->bob.app.acks = 0;
  WAIT_FOR(w, bob_ready, LONG_WAIT_MS);
  ck_assert_uint_gt(w->bob.app.onlines, bob_online);
  xmppuv_test_proxy_partition(w->proxy, 0);
  ck_assert_int_eq(xmppuv_test_proxy_refuse(w->proxy, 0), 0);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "restart");
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_ge(w->alice.resume_attempts, 1);
  ck_assert_uint_ge(w->alice.resume_failures, 1); /* the server's <failed/> */
  for (size_t i = 5; i < 10; i++)
    ck_assert_int_eq(w->msgs[i].fail_reason, XMPPUV_ESMFAILED);
  ck_assert_uint_eq(w->alice.app.acks, 10);
  ck_assert_uint_eq(w->alice.app.fails, 5);
  ck_assert_uint_eq(w->alice.app.onlines, 2);
  ck_assert_uint_eq(w->alice.app.resumes, 0);
  world_finish(w);
  free(w);
}
END_TEST

/* stop() with sm_drain_timeout_ms waits for the last acks: every message
 * sent right before it is acked, none fails. */
static int alice_offline(world_t *w) {
  return xmppuv_client_status(w->alice.c) == XMPPUV_STATUS_OFFLINE;
}

START_TEST(graceful_stop_with_a_drain_timeout_reports_acks_not_failures) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.sm_drain_timeout_ms = 20000;
  ao.sm_ack_debounce_ms = 250;
  start_pair(w, &ao);
  alice_send(w, 30);
  ck_assert_int_eq(xmppuv_client_stop(w->alice.c), 0);
  WAIT_FOR(w, alice_offline, LONG_WAIT_MS);
  WAIT_FOR(w, acked_delivered, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "drain");
  check_messages(w);
  ck_assert_uint_eq(w->alice.app.acks, 30);
  ck_assert_uint_eq(w->alice.app.fails, 0);
  /* The stream ended as asked (</stream:stream>, or <close/> and a Close
   * frame over a WebSocket): nothing the app would call an error. */
  ck_assert_uint_eq(w->alice.app.errors, 0);
  world_finish(w);
  free(w);
}
END_TEST

/* ---- the promise in every fault case (issue "Never stuck") ------------------------ */

/* A graceful stop right after sending asks for a last ack first, so what the
 * server has is reported acked: of everything bob got, nothing was reported
 * failed. 100 runs of "send 3, stop at once", each a new session. */
#define STOP_RUNS 100
#define STOP_BURST 3

START_TEST(stop_at_once_after_sending_reports_nothing_the_peer_got_as_failed) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 0, &ao);
  ao.sm_ack_debounce_ms = 250; /* the default: no <r/> before stop() */
  start_pair(w, &ao);
  for (int run = 0; run < STOP_RUNS; run++) {
    if (run > 0) {
      ck_assert_int_eq(xmppuv_client_start(w->alice.c), 0);
      WAIT_FOR(w, alice_online, LONG_WAIT_MS);
    }
    alice_send(w, STOP_BURST);
    ck_assert_int_eq(xmppuv_client_stop(w->alice.c), 0);
    WAIT_FOR(w, alice_offline, LONG_WAIT_MS);
  }
  WAIT_FOR(w, all_settled, LONG_WAIT_MS);
  fence(w, &w->bob);
  size_t failed_but_delivered = 0, failed = 0, delivered = 0;
  for (size_t i = 0; i < w->nmsgs; i++) {
    failed += w->msgs[i].fails > 0;
    delivered += w->msgs[i].received > 0;
    failed_but_delivered += w->msgs[i].fails > 0 && w->msgs[i].received > 0;
  }
  fprintf(stderr,
          "# %s: stop at once, %d runs of %d: acked %u, failed %zu, at bob %zu, "
          "failed but at bob %zu\n",
          w->kind, STOP_RUNS, STOP_BURST, w->alice.app.acks, failed, delivered,
          failed_but_delivered);
  ck_assert_uint_eq(failed_but_delivered, 0);
  /* check_messages() without its sender check: 100 sessions are more
   * full JIDs than it keeps. */
  for (size_t i = 0; i < w->nmsgs; i++) {
    const msg_state_t *m = &w->msgs[i];
    ck_assert_msg(m->acks + m->fails == 1, "%s: smi-%zu has %d acks and %d fails", w->kind, i,
                  m->acks, m->fails);
    ck_assert_msg(m->received == (m->acks > 0), "%s: smi-%zu (%s) at bob %d times", w->kind,
                  i, m->acks > 0 ? "acked" : "failed", m->received);
  }
  ck_assert_uint_eq(w->stray, 0);
  ck_assert_uint_eq(w->alice.app.acks, STOP_RUNS * STOP_BURST);
  world_finish(w);
  free(w);
}
END_TEST

/* The server takes stanzas of at most 10000 bytes; a message bigger than
 * that among normal ones fails alone, and every other one arrives once.
 * Prosody says its limit in its stream features (XEP-0478): the big one,
 * held before the first login, fails unsent (ETOOBIG), and a later one is
 * refused by send(). ejabberd does not say: it ends the stream on it
 * (policy-violation) and closes the session, and its <failed/> carries no
 * h, so only the resend policy can deliver what was in flight behind the
 * big one: the client resends those one at a time (each with its <r/>),
 * and the poison rule fails the big one when the stream has ended right
 * after it three times (EREJECTED). */
#define LIMIT_BYTES 10000

static void alice_send_big(world_t *w, int expect_rc) {
  size_t i = w->nmsgs++;
  char text[32], to[128];
  snprintf(text, sizeof text, BODY_PREFIX "%zu", i);
  snprintf(to, sizeof to, "bob@%s", w->srv.domain);
  w->msgs[i].sent = 1;
  w->msgs[i].status_at_send = xmppuv_client_status(w->alice.c);
  w->msgs[i].drops_at_send = w->alice.drops;
  xmppuv_stanza_t *msg, *pad;
  ck_assert_int_eq(xmppuv_message_new(to, "chat", text, &msg), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(msg, "id", text), 0);
  char *fill = malloc(2 * LIMIT_BYTES + 1);
  memset(fill, 'x', 2 * LIMIT_BYTES);
  fill[2 * LIMIT_BYTES] = '\0';
  ck_assert_int_eq(xmppuv_stanza_new_child(msg, "pad", "urn:example:pad", &pad), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(pad, fill), 0);
  free(fill);
  int rc = xmppuv_client_send(w->alice.c, msg);
  ck_assert_msg(rc == expect_rc, "send of the big one: %s", xmppuv_err_name(rc));
  if (rc != 0) w->nmsgs--; /* not taken: no outcome will come */
  xmppuv_stanza_unref(msg);
}

START_TEST(message_over_the_servers_limit_fails_alone_and_the_rest_arrive_once) {
  world_t *w = malloc(sizeof *w);
  char limit[16];
  snprintf(limit, sizeof limit, "%d", LIMIT_BYTES);
  setenv("XMPPUV_SERVER_MAX_STANZA", limit, 1);
  world_start(w, _i, 30);
  unsetenv("XMPPUV_SERVER_MAX_STANZA");
  int prosody = strcmp(w->kind, "prosody") == 0;
  xmppuv_client_options_t bo, ao;
  peer_options(w, &w->bob, 0, &bo);
  peer_start(w, &w->bob, &bo);
  WAIT_FOR(w, bob_ready, LONG_WAIT_MS);
  peer_options(w, &w->alice, 1, &ao);
  if (!prosody) ao.sm_resend_on_failed = 1;
  ck_assert_int_eq(xmppuv_client_new(&w->loop, &ao, &callbacks, &w->alice.app, &w->alice.c), 0);
  ck_assert_int_eq(xmppuv_client_start(w->alice.c), 0);
  size_t big_at;
  if (prosody) {
    /* Held before the first login, while the limit is not known yet. */
    alice_send(w, 2);
    big_at = w->nmsgs;
    alice_send_big(w, 0);
    alice_send(w, 2);
    WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
    WAIT_FOR(w, alice_online, LONG_WAIT_MS);
    ck_assert_int_eq(w->msgs[big_at].fail_reason, XMPPUV_ETOOBIG);
    /* Known now: refused by send() itself. */
    alice_send(w, 1);
    alice_send_big(w, XMPPUV_ETOOBIG);
    alice_send(w, 1);
  } else {
    WAIT_FOR(w, alice_online, LONG_WAIT_MS);
    alice_send(w, 2);
    WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
    big_at = w->nmsgs;
    alice_send_big(w, 0);
    alice_send(w, 2);
  }
  w->target = w->nmsgs;
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "stanza over the limit");
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_eq(w->alice.app.fails, 1);
  ck_assert_int_eq(w->msgs[big_at].fails, 1);
  ck_assert_int_eq(w->msgs[big_at].fail_reason, prosody ? XMPPUV_ETOOBIG : XMPPUV_EREJECTED);
  ck_assert_uint_eq(w->alice.app.acks, w->nmsgs - 1);
  if (prosody) ck_assert_uint_eq(w->alice.app.onlines, 1); /* never a stream error */
  world_finish(w);
  free(w);
}
END_TEST

/* The app learns that the network changed: the old path is dead (the proxy
 * stalls it for good, silently) and a new one works. reconnect_now()
 * resumes within a connect time, not after the ack timeout (60 s). */
static int alice_resumed_once(world_t *w) { return w->alice.app.resumes >= 1; }

START_TEST(reconnect_now_after_the_network_changed_resumes_at_once) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.sm_ack_timeout_ms = 60000;
  start_pair(w, &ao);
  alice_send(w, 5);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  xmppuv_test_proxy_stall_existing(w->proxy);
  alice_send(w, 5); /* into the dead path */
  uint64_t asked_at = uv_now(&w->loop);
  ck_assert_int_eq(xmppuv_client_reconnect_now(w->alice.c), 0);
  WAIT_FOR(w, alice_resumed_once, LONG_WAIT_MS);
  uint64_t took = uv_now(&w->loop) - asked_at;
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "reconnect_now after a network change");
  fprintf(stderr, "# %s: resumed %llu ms after reconnect_now\n", w->kind,
          (unsigned long long)took);
  ck_assert_uint_lt(took, 10000);
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_eq(w->alice.app.acks, 10);
  ck_assert_uint_eq(w->alice.app.fails, 0);
  ck_assert_uint_eq(w->alice.app.onlines, 1);
  ck_assert_uint_eq(w->alice.app.resumes, 1);
  ck_assert_uint_eq(w->alice.timeouts, 0);
  world_finish(w);
  free(w);
}
END_TEST

START_TEST(reconnect_now_with_nothing_wrong_resumes_without_loss_or_duplicate) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  start_pair(w, &ao);
  alice_send(w, 5);
  ck_assert_int_eq(xmppuv_client_reconnect_now(w->alice.c), 0);
  alice_send(w, 5);
  WAIT_FOR(w, alice_resumed_once, LONG_WAIT_MS);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "reconnect_now with nothing wrong");
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_eq(w->alice.app.acks, 10);
  ck_assert_uint_eq(w->alice.app.fails, 0);
  ck_assert_uint_eq(w->alice.app.onlines, 1);
  ck_assert_uint_eq(w->alice.app.resumes, 1);
  world_finish(w);
  free(w);
}
END_TEST

/* A fatal stream error from a real server: another client logs in with
 * alice's resource and the server throws the first one out (conflict). She
 * gives up, and every stanza she still held fails with ESTREAM, after the
 * error event: nothing is left waiting for a stop(). Prosody acks what it
 * has as it closes the stream (a last <a/>), so nothing is left to fail
 * there; ejabberd does not, so her five unacked messages fail (they had
 * reached bob: ejabberd never said so, see the README). */
static int alice_gave_up(world_t *w) {
  return alice_offline(w) && xmppuv_client_sm_queued(w->alice.c) == 0;
}

static unsigned fails_before_error;
static void on_fail_count_order(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason,
                                void *ud) {
  if (((client_rec_t *)ud)->errors == 0) fails_before_error++;
  on_fail(c, s, reason, ud);
}

START_TEST(a_conflict_fails_every_stanza_held_after_the_error_event) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.resource = "fixed";
  ao.sm_ack_debounce_ms = 0; /* no <r/>: what she sends stays unacked */
  ao.sm_ack_threshold = 0;
  ao.sm_idle_request_ms = 0;
  xmppuv_client_options_t bo;
  peer_options(w, &w->bob, 0, &bo);
  peer_start(w, &w->bob, &bo);
  WAIT_FOR(w, bob_ready, LONG_WAIT_MS);
  xmppuv_client_callbacks_t cbs = callbacks;
  cbs.fail = on_fail_count_order;
  fails_before_error = 0;
  ck_assert_int_eq(xmppuv_client_new(&w->loop, &ao, &cbs, &w->alice.app, &w->alice.c), 0);
  ck_assert_int_eq(xmppuv_client_start(w->alice.c), 0);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  alice_send(w, 5);
  ck_assert_uint_eq(xmppuv_client_sm_queued(w->alice.c), 5);
  /* The intruder: alice/fixed again, straight to the server. */
  peer_t intruder;
  memset(&intruder, 0, sizeof intruder);
  peer_init(w, &intruder, "alice");
  xmppuv_client_options_t io;
  peer_options(w, &intruder, 0, &io);
  io.resource = "fixed";
  ck_assert_int_eq(xmppuv_client_new(&w->loop, &io, &callbacks, &intruder.app, &intruder.c), 0);
  ck_assert_int_eq(xmppuv_client_start(intruder.c), 0);
  WAIT_FOR(w, alice_gave_up, LONG_WAIT_MS);

  report(w, "conflict");
  ck_assert_uint_eq(w->alice.app.errors, 1);
  ck_assert_uint_eq(fails_before_error, 0);
  for (size_t i = 0; i < 5; i++) {
    ck_assert_int_eq(w->msgs[i].acks + w->msgs[i].fails, 1);
    if (w->msgs[i].fails) ck_assert_int_eq(w->msgs[i].fail_reason, XMPPUV_ESTREAM);
  }
  int prosody = strcmp(w->kind, "prosody") == 0;
  ck_assert_uint_eq(w->alice.app.acks, prosody ? 5 : 0);
  ck_assert_uint_eq(w->alice.app.fails, prosody ? 0 : 5);
  xmppuv_client_close(intruder.c, client_rec_close_cb);
  world_finish(w);
  ck_assert(intruder.app.closed);
  free(w);
}
END_TEST

/* ---- one flight -------------------------------------------------------------------- */

/* The one-flight reconnection over direct TLS (XEP-0368), counted at a
 * proxy in front of the server's direct-TLS port: after a cut
 * (reconnect_now), the client's flights from TCP connected to `resumed`.
 * TLS 1.2 takes two (mbedTLS 2.28, as Debian 12 has it, speaks no 1.3;
 * neither server resumes TLS sessions, which would make it one);
 * then the stream header and the <authenticate/> (FAST token, inline
 * <resume/>, Bind2 fallback) go in one: 3. With one_flight off the
 * client waits for the server's features first: 4. (_i: server, then
 * one_flight off.) */
static int alice_has_token(world_t *w) { return w->alice.app.tokens >= 1; }
static int alice_resumed(world_t *w) { return w->alice.app.resumes >= 1; }

START_TEST(a_one_flight_reconnection_is_three_client_flights_over_direct_tls) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i % 2, 30);
  int one_flight = _i / 2 == 0;
  xmppuv_test_proxy_t *direct = NULL;
  ck_assert_int_eq(
      xmppuv_test_proxy_start(&w->loop, "127.0.0.1", w->srv.direct_tls_port, &direct), 0);
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  ao.port = xmppuv_test_proxy_port(direct);
  ao.tls = XMPPUV_TLS_DIRECT;
  ao.resource = NULL; /* Bind2 */
  ao.one_flight = one_flight;
  start_pair(w, &ao);
  WAIT_FOR(w, alice_has_token, LONG_WAIT_MS);
  alice_send(w, 3);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  alice_send(w, 2); /* in flight at the cut: resent after the resumption */
  flight_proxy = direct;
  ck_assert_int_eq(xmppuv_client_reconnect_now(w->alice.c), 0);
  WAIT_FOR(w, alice_resumed, LONG_WAIT_MS);
  flight_proxy = NULL;
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  fence(w, &w->bob);
  fprintf(stderr, "# %s: %lu client flights from connected to resumed (one_flight %d)\n",
          w->kind, flights_at_resumed, one_flight);
  check_messages(w);
  check_alice_events(w);
  ck_assert_uint_eq(w->alice.app.resumes, 1);
  ck_assert_uint_eq(w->alice.app.onlines, 1);
  ck_assert_uint_eq(w->alice.app.acks, 5);
  ck_assert_uint_eq(flights_at_resumed, one_flight ? 3 : 4);
  xmppuv_test_proxy_close(direct, NULL, NULL);
  world_finish(w);
  free(w);
}
END_TEST

/* ---- child processes ---------------------------------------------------------------- */

static void child_count_line(child_t *ch, const char *line) {
  ch->lines++;
  if (strncmp(line, "ack ", 4) == 0) {
    ch->acks++;
    long i = msg_index(line + 4, BODY_PREFIX);
    if (ch->w->child_acks_are_alices && i >= 0) ch->w->msgs[i].acks++;
  } else if (strncmp(line, "fail ", 5) == 0 && ch->w->child_acks_are_alices) {
    ch->fails++;
    char id[32];
    if (sscanf(line + 5, "%31s", id) == 1 && msg_index(id, BODY_PREFIX) >= 0)
      ch->w->msgs[msg_index(id, BODY_PREFIX)].fails++;
  } else if (strncmp(line, "fail ", 5) == 0) ch->fails++;
  else if (strcmp(line, "resumed") == 0) ch->resumed++;
  else if (strncmp(line, "online ", 7) == 0) {
    ch->online++;
    snprintf(ch->jid, sizeof ch->jid, "%s", line + 7);
  }
  else if (strncmp(line, "recv ", 5) == 0) ch->recv++;
  else if (strncmp(line, "subscribed ", 11) == 0) ch->subscribed++;
  else if (strncmp(line, "token HT-", 9) == 0) ch->tokens++;
  else if (strncmp(line, "saved ", 6) == 0 && strstr(line, " ok") != NULL) ch->saved++;
  else if (strncmp(line, "error ", 6) == 0) ch->errors++;
  else if (strncmp(line, "all ", 4) == 0 && strstr(line, " acknowledged") != NULL)
    ch->all_acknowledged = 1;
  if (log_mode() != NULL) fprintf(stderr, "[child] %s\n", line);
  if (ch->on_line != NULL) ch->on_line(ch, line);
}

static void child_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  child_t *ch = h->data;
  size_t room = sizeof ch->buf - 1 - ch->len;
  ck_assert_msg(room > 0, "the child printed too much");
  *buf = uv_buf_init(ch->buf + ch->len, (unsigned)room);
}

static void child_closed(uv_handle_t *h) {
  child_t *ch = h->data;
  if (h == (uv_handle_t *)&ch->out) ch->out_open = 0;
  else ch->proc_open = 0;
}

static void child_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  child_t *ch = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)&ch->out, child_closed);
    return;
  }
  ch->len += (size_t)n;
  for (;;) {
    char *nl = memchr(ch->buf + ch->scanned, '\n', ch->len - ch->scanned);
    if (nl == NULL) break;
    *nl = '\0';
    child_count_line(ch, ch->buf + ch->scanned);
    *nl = '\n';
    ch->scanned = (size_t)(nl - ch->buf) + 1;
  }
}

static void child_exited(uv_process_t *p, int64_t status, int sig) {
  child_t *ch = p->data;
  ch->running = 0;
  ch->exit_status = status;
  ch->term_signal = sig;
  uv_close((uv_handle_t *)&ch->proc, child_closed);
}

/* Run argv with XMPPUV_PASSWORD=password added to the environment, under
 * timeout(1) (coreutils): if this test process dies first, the child still
 * ends. Its stderr goes to the test's only with SMI_LOG, so a child left
 * behind never holds meson's pipe open. */
static void child_spawn(world_t *w, char **argv, const char *password) {
  child_t *ch = &w->child;
  memset(ch, 0, sizeof *ch);
  ch->w = w;
  w->have_child = 1;
  size_t n = 0;
  while (environ[n] != NULL) n++;
  char **env = calloc(n + 2, sizeof *env);
  ck_assert_ptr_nonnull(env);
  static char pw[128];
  snprintf(pw, sizeof pw, "XMPPUV_PASSWORD=%s", password);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "XMPPUV_PASSWORD=", 16) != 0) env[k++] = environ[i];
  env[k++] = pw;
  env[k] = NULL;
  ck_assert_int_eq(uv_pipe_init(&w->loop, &ch->out, 0), 0);
  ch->out.data = ch->proc.data = ch;
  ch->out_open = 1;
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&ch->out;
  if (log_mode() != NULL) {
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
  } else {
    stdio[2].flags = UV_IGNORE;
  }
  char *args[32];
  size_t na = 0;
  args[na++] = (char *)"timeout";
  args[na++] = (char *)"--foreground"; /* signals reach the child once: see ex_run */
  args[na++] = (char *)"-s";
  args[na++] = (char *)"KILL";
  args[na++] = (char *)"150";
  for (size_t i = 0; argv[i] != NULL && na < 31; i++) args[na++] = argv[i];
  args[na] = NULL;
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.file = args[0];
  po.args = args;
  po.env = env;
  po.exit_cb = child_exited;
  po.stdio = stdio;
  po.stdio_count = 3;
  int rc = uv_spawn(&w->loop, &ch->proc, &po);
  free(env);
  ck_assert_msg(rc == 0, "spawn %s: %s", argv[0], uv_strerror(rc));
  ch->running = ch->proc_open = 1;
  ck_assert_int_eq(uv_read_start((uv_stream_t *)&ch->out, child_alloc, child_read), 0);
}

static int child_done(world_t *w) {
  return !w->child.running && !w->child.out_open && !w->child.proc_open;
}

static const char *env_path(const char *name) {
  const char *v = getenv(name);
  ck_assert_msg(v != NULL && v[0] != '\0', "%s is not set: run with meson test", name);
  ck_assert_msg(access(v, X_OK) == 0, "%s=%s is not an executable", name, v);
  return v;
}

static void child_check_exit(world_t *w, const char *name) {
  if (w->child.term_signal != 0 || w->child.exit_status != 0)
    fprintf(stderr, "# %s printed:\n%.*s\n", name, (int)w->child.len, w->child.buf);
  ck_assert_msg(w->child.term_signal == 0 && w->child.exit_status == 0,
                "%s exited with status %lld, signal %d", name,
                (long long)w->child.exit_status, w->child.term_signal);
}

/* ---- the tests: a new process --------------------------------------------------------- */

static int alice_closed(world_t *w) { return w->alice.app.closed; }

/* Process A (this one) sends 5 messages that are acked, then 5 into a
 * silent partition, saves its session, and goes away without closing the
 * stream; the proxy then resets, so the server keeps the session but never
 * saw the 5. Process B (tests/sm_restart_helper) loads the saved state,
 * resumes, and resends them. */
START_TEST(exported_state_resumes_in_a_new_process_and_delivers_the_unacked) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  const char *helper = env_path("XMPPUV_SM_RESTART_HELPER");
  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 1, &ao);
  start_pair(w, &ao);

  alice_send(w, 5);
  WAIT_FOR(w, settled_and_delivered, LONG_WAIT_MS);
  xmppuv_test_proxy_partition(w->proxy, 1);
  alice_send(w, 5);
  for (size_t i = 5; i < 10; i++) w->msgs[i].must_delay = 1;
  ck_assert_uint_eq(xmppuv_client_sm_queued(w->alice.c), 5);

  char *data;
  size_t len;
  ck_assert_int_eq(xmppuv_client_sm_export(w->alice.c, &data, &len), 0);
  char path[320];
  snprintf(path, sizeof path, "%s/smi-state-%d", w->srv.dir, (int)getpid());
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
  xmppuv_free(data);
  /* Process A ends without a goodbye: its own fail events (ECANCELED) are
   * A's view; B takes over the session. */
  xmppuv_client_close(w->alice.c, client_rec_close_cb);
  w->alice.c = NULL;
  WAIT_FOR(w, alice_closed, LONG_WAIT_MS);
  for (size_t i = 5; i < 10; i++) { /* close() settles A's view of them */
    ck_assert_int_eq(w->msgs[i].fails, 1);
    ck_assert_int_eq(w->msgs[i].fail_reason, XMPPUV_ECANCELED);
  }
  xmppuv_test_proxy_reset_all(w->proxy); /* the 5 in the partition are lost */
  xmppuv_test_proxy_partition(w->proxy, 0);
  for (size_t i = 5; i < 10; i++) w->msgs[i].acks = w->msgs[i].fails = 0;
  w->child_acks_are_alices = 1; /* B reports these now */

  char port[16];
  snprintf(port, sizeof port, "%u", w->srv.port);
  char *argv[] = {(char *)helper, path, (char *)"127.0.0.1", port, w->srv.ca_file,
                  (char *)"alice@localhost", NULL};
  child_spawn(w, argv, xmppuv_test_password("alice"));
  WAIT_FOR(w, child_done, 90000);
  child_check_exit(w, "sm_restart_helper");
  /* B printed "ack smi-N" for each: count them as alice's. */
  ck_assert_uint_eq(w->child.resumed, 1);
  ck_assert_uint_eq(w->child.online, 0);
  ck_assert_uint_eq(w->child.acks, 5);
  ck_assert_uint_eq(w->child.fails, 0);
  WAIT_FOR(w, acked_delivered, LONG_WAIT_MS);
  fence(w, &w->bob);

  report(w, "export/import");
  check_messages(w);
  world_finish(w);
  free(w);
}
END_TEST

/* The examples' tests: one reset once the child has shown enough
 * progress (its acks and receipts, and what bob got). */
static void maybe_reset_on_progress(world_t *w) {
  if (!w->have_child || w->child_reset_done || w->child_reset_at == 0) return;
  unsigned progress = w->child.acks + w->child.recv;
  for (size_t i = 0; i < MAX_MSGS; i++) progress += (unsigned)w->msgs[i].received;
  if (progress >= w->child_reset_at) {
    w->child_reset_done = 1;
    xmppuv_test_proxy_reset_all(w->proxy);
    w->reset_calls++;
  }
}

static void reset_on_progress(child_t *ch, const char *line) {
  (void)line;
  maybe_reset_on_progress(ch->w);
}

/* examples/send through the proxy, reset after its 10th ack. */
START_TEST(example_send_resumes_after_a_reset_and_prints_its_acks) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  const char *send = env_path("XMPPUV_EXAMPLE_SEND");
  xmppuv_client_options_t bo;
  peer_options(w, &w->bob, 0, &bo);
  peer_start(w, &w->bob, &bo);
  WAIT_FOR(w, bob_ready, LONG_WAIT_MS);
  w->alice.app.closed = 1;

  char port[16];
  snprintf(port, sizeof port, "%u", xmppuv_test_proxy_port(w->proxy));
  char *argv[] = {(char *)send, (char *)"--jid", (char *)"alice@localhost",
                  (char *)"--to", (char *)"bob@localhost", (char *)"--host",
                  (char *)"127.0.0.1", (char *)"--port", port, (char *)"--tls",
                  (char *)"starttls", (char *)"--ca-file", w->srv.ca_file,
                  (char *)"--count", (char *)"40", (char *)"--rate", (char *)"20", NULL};
  w->child_reset_at = 15;
  child_spawn(w, argv, xmppuv_test_password("alice"));
  w->child.on_line = reset_on_progress;
  WAIT_FOR(w, child_done, 90000);
  child_check_exit(w, "examples/send");
  fence(w, &w->bob);

  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(w->proxy, &st);
  fprintf(stderr, "# %s: send printed %u acks, %u resumed; proxy accepted %lu, reset %lu\n",
          w->kind, w->child.acks, w->child.resumed, st.accepted, st.resets);
  ck_assert_int_eq(w->child_reset_done, 1);
  ck_assert_uint_ge(w->child.resumed, 1);
  ck_assert_uint_eq(w->child.online, 1);
  ck_assert_uint_eq(w->child.acks, 40);
  ck_assert_uint_eq(w->child.fails, 0);
  ck_assert_int_eq(w->child.all_acknowledged, 1);
  for (int i = 1; i <= 40; i++)
    ck_assert_msg(w->msgs[i].received == 1, "%s: message %d reached bob %d times", w->kind,
                  i, w->msgs[i].received);
  ck_assert_uint_eq(w->stray, 0);
  world_finish(w);
  free(w);
}
END_TEST

static int echo_ready(world_t *w) { return w->child.acks >= 1; } /* its presence */
static int replies_in(world_t *w) {
  return all_settled(w) && w->alice.replies >= w->nmsgs &&
         w->child.acks >= 1 + w->nmsgs;
}

static void on_echo_disco(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c;
  world_t *w = ud;
  w->fence_done = 1;
  ck_assert_msg(status == 0, "disco#info of the echo: %s", xmppuv_err_name(status));
  const xmppuv_stanza_t *q = xmppuv_stanza_child(reply, "query", XMPPUV_NS_DISCO_INFO);
  const xmppuv_stanza_t *id = xmppuv_stanza_child(q, "identity", NULL);
  ck_assert_ptr_nonnull(id);
  ck_assert_str_eq(xmppuv_stanza_attr(id, "type"), "bot");
  ck_assert_str_eq(xmppuv_stanza_attr(id, "name"), "xmppuv echo");
}

static int echo_subscribed(world_t *w) { return w->child.subscribed >= 1; }

static void echo_disco_check(world_t *w) {
  ck_assert(w->child.jid[0] != '\0');
  xmppuv_stanza_t *iq, *q;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &iq), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "type", "get"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(iq, "to", w->child.jid), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(iq, "query", XMPPUV_NS_DISCO_INFO, &q), 0);
  w->fence_done = 0;
  ck_assert_int_eq(xmppuv_client_send_iq(w->alice.c, iq, 30000, on_echo_disco, w, NULL), 0);
  xmppuv_stanza_unref(iq);
  WAIT_FOR(w, fence_done, LONG_WAIT_MS);
}

/* examples/echo as bob through the proxy, reset after its 10th reply;
 * alice (direct) sends 30 messages and gets each back once. */
START_TEST(example_echo_resumes_after_a_reset_and_replies_once) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  const char *echo = env_path("XMPPUV_EXAMPLE_ECHO");
  char port[16], url[160];
  snprintf(port, sizeof port, "%u", xmppuv_test_proxy_port(w->proxy));
  char *argv[] = {(char *)echo, (char *)"--jid", (char *)"bob@localhost", (char *)"--host",
                  (char *)"127.0.0.1", (char *)"--port", port, (char *)"--tls",
                  (char *)"starttls", (char *)"--ca-file", w->srv.ca_file, NULL};
  if (w->ws == 2) {
    /* --url wss://localhost:PROXY/PATH instead of --host, --port, --tls. */
    snprintf(url, sizeof url, "wss://localhost:%s%s", port,
             strcmp(w->kind, "prosody") == 0 ? "/xmpp-websocket" : "/ws");
    argv[3] = (char *)"--url";
    argv[4] = url;
    argv[5] = (char *)"--ca-file";
    argv[6] = w->srv.ca_file;
    argv[7] = NULL;
  }
  child_spawn(w, argv, xmppuv_test_password("bob"));
  w->child.on_line = reset_on_progress;
  WAIT_FOR(w, echo_ready, LONG_WAIT_MS);
  w->bob.app.closed = 1;

  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 0, &ao);
  peer_start(w, &w->alice, &ao);
  ck_assert_int_eq(xmppuv_client_handler_add(w->alice.c, "message", NULL, NULL,
                                             alice_on_reply, w, NULL),
                   0);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  w->child_reset_at = 30; /* about 10 round trips: the echo's acks and recvs, alice's replies */
  w->target = 30;
  uv_timer_start(&w->send_timer, on_send_timer, 50, 50);
  WAIT_FOR(w, replies_in, 90000);
  fence(w, &w->alice);
  /* The echo answers disco#info (the chat layer's discovery module), and
   * takes alice's subscription request (its roster module). */
  echo_disco_check(w);
  xmppuv_stanza_t *sub;
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &sub), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(sub, "to", "bob@localhost"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(sub, "type", "subscribe"), 0);
  ck_assert_int_eq(xmppuv_client_send(w->alice.c, sub), 0);
  xmppuv_stanza_unref(sub);
  WAIT_FOR(w, echo_subscribed, LONG_WAIT_MS);
  ck_assert_int_eq(uv_process_kill(&w->child.proc, SIGTERM), 0);
  WAIT_FOR(w, child_done, LONG_WAIT_MS);
  child_check_exit(w, "examples/echo");

  fprintf(stderr, "# %s: echo printed %u recv, %u acks, %u resumed\n", w->kind,
          w->child.recv, w->child.acks, w->child.resumed);
  ck_assert_int_eq(w->child_reset_done, 1);
  ck_assert_uint_ge(w->child.resumed, 1);
  ck_assert_uint_eq(w->child.online, 1);
  ck_assert_uint_eq(w->child.fails, 0);
  ck_assert_uint_eq(w->child.recv, 30);
  for (size_t i = 0; i < 30; i++) ck_assert_int_eq(w->msgs[i].acks, 1);
  for (size_t i = 0; i < 30; i++)
    ck_assert_msg(w->msgs[i].received == 1, "%s: reply %zu came %d times", w->kind, i,
                  w->msgs[i].received);
  world_finish(w);
  free(w);
}
END_TEST

/* examples/echo --state as bob, straight to the server: the first run
 * logs in with the password and gets a FAST token; SIGTERM saves the SM
 * state and FILE.login (user-agent id and token, owner-only) and leaves the
 * session open; the second run is given a wrong password, so only the
 * token can log it in: it resumes the same session inline and answers. */
static int echo_has_token(world_t *w) { return w->child.tokens >= 1 && w->child.acks >= 1; }
static int echo_back(world_t *w) {
  return w->child.resumed + w->child.online >= 1 || !w->child.running;
}
static int one_reply(world_t *w) { return w->alice.replies >= 1; }

START_TEST(example_echo_restarted_with_its_state_logs_in_with_fast_and_resumes_inline) {
  world_t *w = malloc(sizeof *w);
  world_start(w, _i, 30);
  const char *echo = env_path("XMPPUV_EXAMPLE_ECHO");
  char dir[] = "/tmp/xmppuv-echo-state-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char state[128], login[140], port[16];
  snprintf(state, sizeof state, "%s/echo.state", dir);
  snprintf(login, sizeof login, "%s.login", state);
  snprintf(port, sizeof port, "%u", w->srv.port);
  char *argv[] = {(char *)echo, (char *)"--jid", (char *)"bob@localhost", (char *)"--host",
                  (char *)"127.0.0.1", (char *)"--port", port, (char *)"--tls",
                  (char *)"starttls", (char *)"--ca-file", w->srv.ca_file, (char *)"--state",
                  state, NULL};
  child_spawn(w, argv, xmppuv_test_password("bob"));
  WAIT_FOR(w, echo_has_token, LONG_WAIT_MS);
  ck_assert_int_eq(uv_process_kill(&w->child.proc, SIGTERM), 0);
  WAIT_FOR(w, child_done, LONG_WAIT_MS);
  child_check_exit(w, "examples/echo");
  ck_assert_uint_eq(w->child.saved, 1);
  struct stat st;
  ck_assert_int_eq(stat(login, &st), 0);
  ck_assert_int_eq(st.st_mode & 077, 0);
  FILE *f = fopen(login, "r");
  ck_assert_ptr_nonnull(f);
  char text[2048];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  ck_assert_msg(strstr(text, "user-agent-id ") != NULL && strstr(text, "fast-token ") != NULL,
                "%s", text);

  child_spawn(w, argv, "not-bobs-password");
  WAIT_FOR(w, echo_back, LONG_WAIT_MS);
  if (w->child.resumed != 1) fprintf(stderr, "# echo printed:\n%.*s\n", (int)w->child.len,
                                      w->child.buf);
  ck_assert_uint_eq(w->child.resumed, 1);
  ck_assert_uint_eq(w->child.online, 0);
  ck_assert_uint_eq(w->child.errors, 0);

  xmppuv_client_options_t ao;
  peer_options(w, &w->alice, 0, &ao);
  peer_start(w, &w->alice, &ao);
  ck_assert_int_eq(xmppuv_client_handler_add(w->alice.c, "message", NULL, NULL,
                                             alice_on_reply, w, NULL),
                   0);
  WAIT_FOR(w, alice_online, LONG_WAIT_MS);
  alice_send(w, 1);
  WAIT_FOR(w, one_reply, LONG_WAIT_MS);
  ck_assert_int_eq(uv_process_kill(&w->child.proc, SIGTERM), 0);
  WAIT_FOR(w, child_done, LONG_WAIT_MS);
  child_check_exit(w, "examples/echo");
  fprintf(stderr, "# %s: echo restarted with its state: FAST login, resumed inline\n",
          w->kind);
  w->bob.app.closed = 1;
  unlink(login);
  unlink(state);
  rmdir(dir);
  world_finish(w);
  free(w);
}
END_TEST

/* ---- examples/send as a user runs it ---------------------------------------------------
 *
 * The built binary with its own stdin, stdout and stderr, against Prosody
 * (or no server at all for the usage errors): the exit status, the lines
 * it prints, and what bob (a client in this process) received. */

typedef struct ex_run {
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_write_t wr;
  uv_shutdown_t sh;
  uv_timer_t watchdog;
  int open;  /* handles not yet closed */
  int exited;
  int64_t status;
  int sig;
  char outb[65536], errb[262144];
  size_t out_len, err_len;
  int err_truncated;
  int timed_out;
  int interrupt; /* set before ex_run: at timeout_ms send SIGINT, as a user's ^C */
} ex_run_t;

static void ex_closed(uv_handle_t *h) { ((ex_run_t *)h->data)->open--; }

static void ex_close(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, ex_closed);
}

static void ex_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  ex_run_t *r = h->data;
  static char scratch[4096];
  if (h == (uv_handle_t *)&r->out && r->out_len < sizeof r->outb - 1)
    *buf = uv_buf_init(r->outb + r->out_len, (unsigned)(sizeof r->outb - 1 - r->out_len));
  else if (h == (uv_handle_t *)&r->err && r->err_len < sizeof r->errb - 1)
    *buf = uv_buf_init(r->errb + r->err_len, (unsigned)(sizeof r->errb - 1 - r->err_len));
  else
    *buf = uv_buf_init(scratch, sizeof scratch); /* full: drop the rest */
}

static void ex_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ex_run_t *r = s->data;
  if (n < 0) {
    ex_close((uv_handle_t *)s);
    return;
  }
  if (s == (uv_stream_t *)&r->out) {
    ck_assert_msg(buf->base == r->outb + r->out_len, "examples/send printed too much");
    r->out_len += (size_t)n;
    r->outb[r->out_len] = '\0';
  } else if (buf->base == r->errb + r->err_len) {
    r->err_len += (size_t)n;
    r->errb[r->err_len] = '\0';
  } else {
    r->err_truncated = 1;
  }
}

static void ex_exited(uv_process_t *p, int64_t status, int sig) {
  ex_run_t *r = p->data;
  r->exited = 1;
  r->status = status;
  r->sig = sig;
  ex_close((uv_handle_t *)p);
}

static void ex_shut(uv_shutdown_t *req, int status) {
  (void)status;
  ex_close((uv_handle_t *)req->handle);
}

static void ex_wrote(uv_write_t *req, int status) {
  (void)status;
  ex_run_t *r = req->data;
  ck_assert_int_eq(uv_shutdown(&r->sh, (uv_stream_t *)&r->in, ex_shut), 0);
}

static void ex_on_watchdog(uv_timer_t *t) {
  ex_run_t *r = t->data;
  if (r->interrupt == 1) {
    /* timeout(1) passes SIGINT on to send; it must then end by itself. */
    r->interrupt = 2;
    if (!r->exited) uv_process_kill(&r->proc, SIGINT);
    uv_timer_start(&r->watchdog, ex_on_watchdog, 10000, 0);
    return;
  }
  /* timeout(1) passes SIGTERM on to send, whose output pipes then close. */
  r->timed_out = 1;
  if (!r->exited) uv_process_kill(&r->proc, SIGTERM);
}

/* What send printed, as TAP comments (a failure message is one line). */
static void ex_dump(const ex_run_t *r) {
  for (int which = 0; which < 2; which++) {
    const char *text = which == 0 ? r->outb : r->errb;
    fprintf(stderr, "# examples/send %s:\n", which == 0 ? "stdout" : "stderr");
    for (const char *l = text; *l != '\0';) {
      size_t len = strcspn(l, "\n");
      fprintf(stderr, "#   %.*s\n", (int)(len < 300 ? len : 300), l);
      l += len + (l[len] == '\n');
    }
  }
}

/* Run examples/send with args (after the program name), XMPPUV_PASSWORD
 * set to password (NULL: not set), and input on its stdin (NULL: none, it
 * reads end of file), on loop; returns once it has exited and its output
 * is in, killing it after timeout_ms. The loop keeps serving bob
 * meanwhile. */
static void ex_run(uv_loop_t *loop, ex_run_t *r, const char *const *args,
                   const char *password, const char *input, unsigned timeout_ms) {
  int interrupt = r->interrupt;
  memset(r, 0, sizeof *r);
  r->interrupt = interrupt;
  const char *send = env_path("XMPPUV_EXAMPLE_SEND");
  size_t n = 0;
  while (environ[n] != NULL) n++;
  char **env = calloc(n + 2, sizeof *env);
  ck_assert_ptr_nonnull(env);
  char pw[128];
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "XMPPUV_PASSWORD=", 16) != 0) env[k++] = environ[i];
  if (password != NULL) {
    snprintf(pw, sizeof pw, "XMPPUV_PASSWORD=%s", password);
    env[k++] = pw;
  }
  env[k] = NULL;
  char *argv[40];
  size_t na = 0;
  /* --foreground: a signal sent to timeout(1) reaches send exactly once.
   * Without it timeout passes the signal on to send and then to its whole
   * process group, send included, so send gets it twice, the second time
   * possibly after it has closed its signal handles (and dies of it). */
  argv[na++] = (char *)"timeout";
  argv[na++] = (char *)"--foreground";
  argv[na++] = (char *)"-s";
  argv[na++] = (char *)"KILL";
  argv[na++] = (char *)"60";
  argv[na++] = (char *)send;
  for (size_t i = 0; args[i] != NULL && na < 39; i++) argv[na++] = (char *)args[i];
  argv[na] = NULL;

  r->proc.data = r->in.data = r->out.data = r->err.data = r->watchdog.data = r;
  r->wr.data = r;
  ck_assert_int_eq(uv_pipe_init(loop, &r->out, 0), 0);
  ck_assert_int_eq(uv_pipe_init(loop, &r->err, 0), 0);
  ck_assert_int_eq(uv_timer_init(loop, &r->watchdog), 0);
  r->open = 3;
  uv_stdio_container_t stdio[3];
  if (input != NULL) {
    ck_assert_int_eq(uv_pipe_init(loop, &r->in, 0), 0);
    r->open++;
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&r->in;
  } else {
    stdio[0].flags = UV_IGNORE; /* /dev/null */
  }
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&r->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&r->err;
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.file = argv[0];
  po.args = argv;
  po.env = env;
  po.exit_cb = ex_exited;
  po.stdio = stdio;
  po.stdio_count = 3;
  int rc = uv_spawn(loop, &r->proc, &po);
  free(env);
  ck_assert_msg(rc == 0, "spawn %s: %s", send, uv_strerror(rc));
  r->open++;
  ck_assert_int_eq(uv_read_start((uv_stream_t *)&r->out, ex_alloc, ex_read), 0);
  ck_assert_int_eq(uv_read_start((uv_stream_t *)&r->err, ex_alloc, ex_read), 0);
  if (input != NULL && input[0] != '\0') {
    uv_buf_t b = uv_buf_init((char *)input, (unsigned)strlen(input));
    ck_assert_int_eq(uv_write(&r->wr, (uv_stream_t *)&r->in, &b, 1, ex_wrote), 0);
  } else if (input != NULL) {
    ck_assert_int_eq(uv_shutdown(&r->sh, (uv_stream_t *)&r->in, ex_shut), 0);
  }
  ck_assert_int_eq(uv_timer_start(&r->watchdog, ex_on_watchdog, timeout_ms, 0), 0);
  while (r->open > 1) uv_run(loop, UV_RUN_ONCE);
  uv_timer_stop(&r->watchdog);
  ex_close((uv_handle_t *)&r->watchdog);
  while (r->open > 0) uv_run(loop, UV_RUN_ONCE);
  if (log_mode() != NULL || r->timed_out || r->sig != 0) ex_dump(r);
  ck_assert_msg(!r->timed_out, "examples/send still ran after %u ms", timeout_ms);
  ck_assert_msg(r->sig == 0, "examples/send was killed by signal %d", r->sig);
}

/* The number of stdout lines that start with prefix. */
static unsigned ex_lines(const ex_run_t *r, const char *prefix) {
  unsigned n = 0;
  size_t plen = strlen(prefix);
  for (const char *l = r->outb; *l != '\0';) {
    if (strncmp(l, prefix, plen) == 0) n++;
    const char *nl = strchr(l, '\n');
    if (nl == NULL) break;
    l = nl + 1;
  }
  return n;
}

/* The last line on stdout, without its newline. */
static const char *ex_last_line(ex_run_t *r, char *out, size_t size) {
  size_t end = r->out_len;
  if (end > 0 && r->outb[end - 1] == '\n') end--;
  size_t start = end;
  while (start > 0 && r->outb[start - 1] != '\n') start--;
  snprintf(out, size, "%.*s", (int)(end - start), r->outb + start);
  return out;
}

#define EX_ASSERT_EXIT(r, code)                                                   \
  do {                                                                             \
    if ((r)->status != (code)) {                                                   \
      ex_dump(r);                                                                  \
      ck_abort_msg("examples/send exited %lld, not %d", (long long)(r)->status,    \
                   (code));                                                        \
    }                                                                              \
  } while (0)

/* Everything that reached bob, in order. */
static struct {
  char body[8][256];
  char from[8][160];
  unsigned n;
} inbox;

static int bob_keeps_body(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c, (void)ud;
  const char *body = xmppuv_stanza_child_text(msg, "body", NULL);
  if (body == NULL) return XMPPUV_PASS;
  ck_assert_uint_lt(inbox.n, 8);
  const char *from = xmppuv_stanza_attr(msg, "from");
  snprintf(inbox.body[inbox.n], sizeof inbox.body[0], "%s", body);
  snprintf(inbox.from[inbox.n], sizeof inbox.from[0], "%s", from ? from : "");
  inbox.n++;
  return XMPPUV_HANDLED;
}

/* Prosody and bob (available, keeping what arrives); no alice. */
static void ex_world(world_t *w) {
  world_start(w, 0, 30);
  memset(&inbox, 0, sizeof inbox);
  w->alice.app.closed = 1;
  xmppuv_client_options_t bo;
  peer_options(w, &w->bob, 0, &bo);
  ck_assert_int_eq(xmppuv_client_new(&w->loop, &bo, &callbacks, &w->bob.app, &w->bob.c), 0);
  ck_assert_int_eq(xmppuv_client_handler_add(w->bob.c, "message", NULL, NULL, bob_keeps_body,
                                             w, NULL),
                   0);
  ck_assert_int_eq(xmppuv_client_start(w->bob.c), 0);
  WAIT_FOR(w, bob_ready, LONG_WAIT_MS);
}

/* --help, and each way of getting the command line wrong: no server. */
START_TEST(example_send_help_and_usage_errors) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ex_run_t *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);

  /* --help: usage on stdout, exit 0, no password needed. */
  const char *help[] = {"--help", NULL};
  ex_run(&loop, r, help, NULL, NULL, 20000);
  EX_ASSERT_EXIT(r, 0);
  ck_assert_msg(strncmp(r->outb, "usage: XMPPUV_PASSWORD=... send --jid JID --to JID", 50) == 0,
                "--help printed: %.*s", (int)strcspn(r->outb, "\n"), r->outb);
  ck_assert_ptr_nonnull(strstr(r->outb, "--count N"));
  ck_assert_ptr_nonnull(strstr(r->outb, "WORDS..."));
  ck_assert_uint_eq(r->err_len, 0);
  const char *h[] = {"-h", NULL};
  ex_run(&loop, r, h, NULL, NULL, 20000);
  EX_ASSERT_EXIT(r, 0);
  ck_assert_ptr_nonnull(strstr(r->outb, "usage: "));

  /* Each mistake: exit 2, nothing on stdout, stderr's first line says what
   * was wrong (the usage may follow). */
  static const struct {
    const char *args[12];
    const char *password;
    const char *input;
    const char *first_line;
  } bad[] = {
      {{"--jid", "a@localhost", "--to", "b@localhost", "--bogus", "hi", NULL}, "x", NULL,
       "unknown option --bogus"},
      {{"--jid", "a@localhost", "hi", NULL}, "x", NULL, "--to is required"},
      {{"--to", "b@localhost", "hi", NULL}, "x", NULL, "--jid is required"},
      {{"--jid", "a@localhost", "--to", "b@localhost", "hi", NULL}, NULL, NULL,
       "set XMPPUV_PASSWORD in the environment"},
      {{"--jid", "a@localhost", "--to", "b@localhost", "--count", NULL}, "x", NULL,
       "--count needs a value"},
      {{"--jid", "a@localhost", "--to", "b@localhost", "--tls", "tls13", "hi", NULL}, "x",
       NULL, "bad value for --tls: tls13"},
      {{"--jid", "a@localhost", "--to", "b@localhost", "--port", "70000", "hi", NULL}, "x",
       NULL, "bad value for --port: 70000"},
      {{"--jid", "a@localhost", "--to", "b@localhost", "--count", "0", NULL}, "x", NULL,
       "bad value for --count: 0"},
      /* No words, no --count, and stdin is empty (or only blank lines). */
      {{"--jid", "a@localhost", "--to", "b@localhost", NULL}, "x", "", "nothing to send"},
      {{"--jid", "a@localhost", "--to", "b@localhost", NULL}, "x", "\n\n", "nothing to send"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ex_run(&loop, r, bad[i].args, bad[i].password, bad[i].input, 20000);
    EX_ASSERT_EXIT(r, 2);
    ck_assert_msg(r->out_len == 0, "case %zu printed on stdout: %.*s", i,
                  (int)strcspn(r->outb, "\n"), r->outb);
    size_t len = strlen(bad[i].first_line);
    ck_assert_msg(strncmp(r->errb, bad[i].first_line, len) == 0 && r->errb[len] == '\n',
                  "case %zu: stderr begins '%.*s', not '%s'", i,
                  (int)strcspn(r->errb, "\n"), r->errb, bad[i].first_line);
  }
  free(r);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* The message as words on the command line over direct TLS with -v, then
 * lines from stdin over STARTTLS: bob gets exactly those texts, from the JID
 * send printed, and send says all were acknowledged and exits 0. */
START_TEST(example_send_delivers_words_and_stdin_lines) {
  world_t *w = malloc(sizeof *w);
  ex_world(w);
  ex_run_t *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  char port[16], direct_port[16], last[256];
  snprintf(port, sizeof port, "%u", w->srv.port);
  snprintf(direct_port, sizeof direct_port, "%u", w->srv.direct_tls_port);
  const char *pw = xmppuv_test_password("alice");

  const char *words[] = {"--jid", "alice@localhost", "--to", "bob@localhost", "--host",
                         "127.0.0.1", "--port", direct_port, "--tls", "direct", "--ca-file",
                         w->srv.ca_file, "-v", "hello,", "bob:", "caf\xc3\xa9 <&> 'q'", NULL};
  ex_run(&w->loop, r, words, pw, NULL, 30000);
  EX_ASSERT_EXIT(r, 0);
  ck_assert_str_eq(ex_last_line(r, last, sizeof last), "all 1 acknowledged");
  ck_assert_uint_eq(ex_lines(r, "online alice@localhost/"), 1);
  ck_assert_uint_eq(ex_lines(r, "ack "), 1);
  ck_assert_uint_eq(ex_lines(r, "fail "), 0);
  ck_assert_uint_eq(ex_lines(r, "error "), 0);
  ck_assert_uint_eq(ex_lines(r, "status connecting"), 1);
  ck_assert_uint_eq(ex_lines(r, "status offline"), 1);
  /* -v: the library's log on stderr, wire XML included, no password; the
   * modern login by default (SASL2, Bind2), and the FAST token's line on
   * stdout without the token, which the trace shows redacted. */
  ck_assert_msg(strstr(r->errb, "[trace] wire-out: <") != NULL, "-v: no wire XML on stderr");
  ck_assert_ptr_nonnull(strstr(r->errb, "wire-out: <authenticate xmlns='urn:xmpp:sasl:2'"));
  ck_assert_ptr_nonnull(strstr(r->errb, "<request-token xmlns='urn:xmpp:fast:0'"));
  ck_assert_ptr_nonnull(strstr(r->errb, "token='[redacted]'"));
  ck_assert_uint_eq(ex_lines(r, "token HT-SHA-256-"), 1);
  ck_assert_ptr_nonnull(strstr(r->errb, "caf\xc3\xa9 &lt;&amp;&gt;"));
  ck_assert_ptr_null(strstr(r->errb, pw));
  ck_assert_ptr_null(strstr(r->outb, pw));
  const char *online = strstr(r->outb, "online ") + 7;
  char jid[160];
  snprintf(jid, sizeof jid, "%.*s", (int)strcspn(online, "\n"), online);
  fence(w, &w->bob);
  ck_assert_uint_eq(inbox.n, 1);
  ck_assert_str_eq(inbox.body[0], "hello, bob: caf\xc3\xa9 <&> 'q'");
  ck_assert_str_eq(inbox.from[0], jid);

  /* Lines from stdin: each non-empty line is a message (CRLF and a last
   * line without a newline too); without -v nothing on stderr; here with
   * --no-sasl2 (RFC 6120 SASL). */
  const char *lines[] = {"--jid", "alice@localhost", "--to", "bob@localhost", "--host",
                         "127.0.0.1", "--port", port, "--tls", "starttls", "--ca-file",
                         w->srv.ca_file, "--no-sasl2", NULL};
  ex_run(&w->loop, r, lines, pw, "first line\n\nsecond line\r\nthird, no newline", 30000);
  EX_ASSERT_EXIT(r, 0);
  ck_assert_str_eq(ex_last_line(r, last, sizeof last), "all 3 acknowledged");
  ck_assert_uint_eq(ex_lines(r, "online alice@localhost/"), 1);
  ck_assert_uint_eq(ex_lines(r, "ack "), 3);
  ck_assert_uint_eq(ex_lines(r, "fail "), 0);
  ck_assert_msg(r->err_len == 0, "stderr without -v: %.*s", (int)strcspn(r->errb, "\n"),
                r->errb);
  ck_assert_uint_eq(ex_lines(r, "token "), 0); /* --no-sasl2: no FAST either */
  fence(w, &w->bob);
  ck_assert_uint_eq(inbox.n, 4);
  ck_assert_str_eq(inbox.body[1], "first line");
  ck_assert_str_eq(inbox.body[2], "second line");
  ck_assert_str_eq(inbox.body[3], "third, no newline");
  ck_assert_uint_eq(w->stray, 0);
  free(r);
  world_finish(w);
  free(w);
}
END_TEST

/* What the user sees when a message is not acknowledged: a wrong password
 * (a fatal error, nothing sent), and a line of stdin that cannot be a
 * message body (a control character) after one that can. */
START_TEST(example_send_exits_1_and_lists_what_was_not_acknowledged) {
  world_t *w = malloc(sizeof *w);
  ex_world(w);
  ex_run_t *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  char port[16], last[256];
  snprintf(port, sizeof port, "%u", w->srv.port);
  const char *args[] = {"--jid", "alice@localhost", "--to", "bob@localhost", "--host",
                        "127.0.0.1", "--port", port, "--tls", "starttls", "--ca-file",
                        w->srv.ca_file, NULL};

  const char *words[14];
  memcpy(words, args, 12 * sizeof *words);
  words[12] = "never delivered";
  words[13] = NULL;
  ex_run(&w->loop, r, words, "not-alices-password", NULL, 30000);
  EX_ASSERT_EXIT(r, 1);
  ck_assert_str_eq(ex_last_line(r, last, sizeof last), "not acknowledged: 1 of 1: (1 never sent)");
  ck_assert_uint_eq(ex_lines(r, "online "), 0);
  ck_assert_uint_eq(ex_lines(r, "ack "), 0);
  ck_assert_uint_eq(ex_lines(r, "error "), 1);
  const char *err = strstr(r->outb, "error ");
  ck_assert_msg(strstr(err, "condition=not-authorized") != NULL &&
                    strstr(err, " (fatal)\n") != NULL,
                "the error line: %.*s", (int)strcspn(err, "\n"), err);

  ex_run(&w->loop, r, args, xmppuv_test_password("alice"), "good line\nbad \x01 line\n", 30000);
  EX_ASSERT_EXIT(r, 1);
  ck_assert_str_eq(ex_last_line(r, last, sizeof last), "not acknowledged: 1 of 2: (not sent)");
  ck_assert_uint_eq(ex_lines(r, "ack "), 1);
  ck_assert_uint_eq(ex_lines(r, "error "), 1);
  ck_assert_msg(strstr(r->outb, " could not send message 2\n") != NULL,
                "no 'could not send message 2' line");

  fence(w, &w->bob);
  ck_assert_uint_eq(inbox.n, 1);
  ck_assert_str_eq(inbox.body[0], "good line");
  free(r);
  world_finish(w);
  free(w);
}
END_TEST

/* A user's ^C while send cannot reach its server: it stops, lists what was
 * never sent, and exits 1 (it would otherwise retry forever). */
START_TEST(example_send_interrupted_lists_what_was_not_acknowledged) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  /* A loopback port nothing listens on: bound (without SO_REUSEADDR) but
   * not listening, so a connect there is refused, and it stays bound while
   * send runs, so no other process (another copy of the suite) can start
   * listening on it meanwhile. */
  int held = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(held, 0);
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_int_eq(bind(held, (const struct sockaddr *)&addr, sizeof addr), 0);
  ck_assert_int_eq(getsockname(held, (struct sockaddr *)&addr, &len), 0);
  char port[16], last[256];
  snprintf(port, sizeof port, "%u", (unsigned)ntohs(addr.sin_port));
  const char *args[] = {"--jid", "alice@localhost", "--to", "bob@localhost", "--host",
                        "127.0.0.1", "--port", port, "--insecure", "two", "words", NULL};
  ex_run_t *r = malloc(sizeof *r);
  ck_assert_ptr_nonnull(r);
  r->interrupt = 1;
  ex_run(&loop, r, args, "any-password", NULL, 1500);
  EX_ASSERT_EXIT(r, 1);
  ck_assert_uint_ge(ex_lines(r, "reconnecting "), 1);
  ck_assert_uint_eq(ex_lines(r, "interrupted by signal 2"), 1);
  ck_assert_str_eq(ex_last_line(r, last, sizeof last), "not acknowledged: 1 of 1: (1 never sent)");
  free(r);
  close(held);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sm_servers");
  TCase *faults = tcase_create("faults");
  tcase_set_timeout(faults, 240);
  /* These two also with alice on the RFC 6120 login (_i 2, 3). */
  tcase_add_loop_test(faults,
                      messages_sent_through_repeated_resets_arrive_exactly_once_and_are_acked,
                      0, 4);
  tcase_add_loop_test(faults, silent_partition_longer_than_the_ack_timeout_leads_to_resumption,
                      0, 2);
  /* Over a WebSocket (RFC 7395) through the same proxy: ws:// (_i 4, 5) and
   * wss:// (6, 7). */
  tcase_add_loop_test(faults,
                      messages_sent_through_repeated_resets_arrive_exactly_once_and_are_acked,
                      4, 8);
  tcase_add_loop_test(faults, silent_partition_longer_than_the_ack_timeout_leads_to_resumption,
                      6, 8);
  tcase_add_loop_test(faults, graceful_stop_with_a_drain_timeout_reports_acks_not_failures, 4,
                      8);
  tcase_add_loop_test(faults,
                      outage_longer_than_the_resume_window_fails_the_unacked_and_goes_online,
                      6, 8);
  tcase_add_loop_test(faults,
                      outage_longer_than_the_resume_window_fails_the_unacked_and_goes_online,
                      0, 4);
  tcase_add_loop_test(faults,
                      outage_longer_than_the_resume_window_resends_with_the_resend_policy, 0,
                      2);
  tcase_add_loop_test(faults,
                      outage_past_the_window_resends_only_what_the_server_had_not_handled, 0,
                      2);
  tcase_add_loop_test(faults, server_restart_gets_failed_and_a_fresh_session, 0, 2);
  tcase_add_loop_test(faults, graceful_stop_with_a_drain_timeout_reports_acks_not_failures, 0,
                      2);
  tcase_add_loop_test(faults, steady_sending_is_acked_before_it_ends, 0, 2);
  suite_add_tcase(s, faults);

  TCase *promise = tcase_create("promise");
  tcase_set_timeout(promise, 240);
  tcase_add_loop_test(promise, stop_at_once_after_sending_reports_nothing_the_peer_got_as_failed,
                      0, 2);
  tcase_add_loop_test(promise,
                      message_over_the_servers_limit_fails_alone_and_the_rest_arrive_once, 0, 2);
  tcase_add_loop_test(promise, reconnect_now_after_the_network_changed_resumes_at_once, 0, 2);
  tcase_add_loop_test(promise, reconnect_now_with_nothing_wrong_resumes_without_loss_or_duplicate,
                      0, 2);
  tcase_add_loop_test(promise, a_conflict_fails_every_stanza_held_after_the_error_event, 0, 2);
  tcase_add_loop_test(promise, a_one_flight_reconnection_is_three_client_flights_over_direct_tls,
                      0, 4);
  suite_add_tcase(s, promise);

  TCase *procs = tcase_create("processes");
  tcase_set_timeout(procs, 240);
  tcase_add_loop_test(procs, exported_state_resumes_in_a_new_process_and_delivers_the_unacked,
                      0, 2);
  tcase_add_loop_test(procs, example_send_resumes_after_a_reset_and_prints_its_acks, 0, 2);
  tcase_add_loop_test(procs, example_echo_resumes_after_a_reset_and_replies_once, 0, 2);
  /* examples/echo --url wss://... */
  tcase_add_loop_test(procs, example_echo_resumes_after_a_reset_and_replies_once, 6, 8);
  tcase_add_loop_test(
      procs, example_echo_restarted_with_its_state_logs_in_with_fast_and_resumes_inline, 0, 2);
  suite_add_tcase(s, procs);

  TCase *send = tcase_create("example_send");
  tcase_set_timeout(send, 120);
  tcase_add_test(send, example_send_help_and_usage_errors);
  tcase_add_test(send, example_send_delivers_words_and_stdin_lines);
  tcase_add_test(send, example_send_exits_1_and_lists_what_was_not_acknowledged);
  tcase_add_test(send, example_send_interrupted_lists_what_was_not_acknowledged);
  suite_add_tcase(s, send);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
