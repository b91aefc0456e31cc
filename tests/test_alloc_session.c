/* Out of memory at every allocation of a whole session. A full client
 * session runs against a small reactive XMPP server (the scripted server's
 * on_data hook, answering whatever the client sends): connect, PLAIN,
 * bind, enable SM, messages both ways with acks, the connection reset by
 * the server, resumption, more messages, a graceful stop. It runs once with
 * no failure to count the allocations N, then once for every n in 1..N
 * with the n-th allocation failing (tests/support/failalloc.h), each time
 * with a fresh loop, server and client. Every run must end without a
 * crash, with every block freed after xmppuv_client_close(), the loop
 * empty, every stanza the app handed to send_cb given exactly one outcome
 * (ack, fail or ESMOFF), and in an allowed way: the scenario done, or the
 * client given up; the failure either surfaced (XMPPUV_ENOMEM from a call
 * or in an error event, or a dropped connection) or left no trace at all
 * (then the scenario must have completed with everything acked). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_rec.h"
#include "failalloc.h"
#include "script_server.h"
#include "text.h"
#include "xmppuv.h"

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SM "urn:xmpp:sm:3"
#define HDR                                                                  \
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "               \
  "xmlns:stream='http://etherx.jabber.org/streams' id='s' "                   \
  "from='localhost' version='1.0'>"

/* ---- the reactive server ------------------------------------------------------- */

#define MAX_CONNS 64

typedef struct server {
  xmppuv_test_script_server_t *srv;
  size_t cursor[MAX_CONNS]; /* what was answered of each connection */
  int authed[MAX_CONNS];
  int sm_on[MAX_CONNS];
  unsigned gen;             /* the SM session is "sm-<gen>"; 0: none */
  uint32_t h;               /* stanzas received in it */
  xmppuv_test_script_conn_t *current; /* the last connection with SM on */
  xmppuv_test_script_conn_t *await_a; /* pushed to: reset after its <a/> */
} server_t;

static int say(xmppuv_test_script_conn_t *k, const char *text) {
  return xmppuv_test_script_conn_send(k, text, strlen(text));
}

/* The value of attribute name in the element [el, end), or "". */
static void attr(const char *el, const char *end, const char *name, char *out, size_t size) {
  char pat[32];
  out[0] = '\0';
  snprintf(pat, sizeof pat, " %s='", name);
  const char *p = strstr(el, pat);
  if (p == NULL || p >= end) return;
  p += strlen(pat);
  const char *q = strchr(p, '\'');
  if (q == NULL || q > end || (size_t)(q - p) >= size) return;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = '\0';
}

/* One complete element the client sent, by name. Returns <0 to reset. */
static int answer(server_t *s, xmppuv_test_script_conn_t *k, size_t i, const char *name,
                  const char *el, const char *end) {
  char buf[512], v[128];
  if (strcmp(name, "auth") == 0) {
    s->authed[i] = 1;
    return say(k, "<success xmlns='" NS_SASL "'/>");
  }
  if (strcmp(name, "iq") == 0) {
    const char *b = strstr(el, "<bind");
    if (b == NULL || b > end) return 0;
    attr(el, end, "id", v, sizeof v);
    snprintf(buf, sizeof buf,
             "<iq type='result' id='%s'><bind xmlns='" NS_BIND "'><jid>alice@localhost/r%zu"
             "</jid></bind></iq>", v, i);
    return say(k, buf);
  }
  if (strcmp(name, "enable") == 0) {
    s->gen++;
    s->h = 0;
    s->sm_on[i] = 1;
    s->current = k;
    snprintf(buf, sizeof buf, "<enabled xmlns='" NS_SM "' id='sm-%u' resume='true'/>", s->gen);
    return say(k, buf);
  }
  if (strcmp(name, "resume") == 0) {
    attr(el, end, "previd", v, sizeof v);
    char want[32];
    snprintf(want, sizeof want, "sm-%u", s->gen);
    if (s->gen == 0 || strcmp(v, want) != 0)
      return say(k, "<failed xmlns='" NS_SM "'><item-not-found "
                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    s->sm_on[i] = 1;
    s->current = k;
    snprintf(buf, sizeof buf, "<resumed xmlns='" NS_SM "' previd='%s' h='%u'/>", v,
             (unsigned)s->h);
    return say(k, buf);
  }
  if (strcmp(name, "message") == 0 || strcmp(name, "presence") == 0) {
    if (s->sm_on[i]) s->h++;
    return 0;
  }
  if (strcmp(name, "r") == 0 && s->sm_on[i]) {
    snprintf(buf, sizeof buf, "<a xmlns='" NS_SM "' h='%u'/>", (unsigned)s->h);
    return say(k, buf);
  }
  if (strcmp(name, "a") == 0 && s->await_a == k) {
    s->await_a = NULL;
    return -1; /* the reset of the scenario */
  }
  return 0;
}

/* xmppuv_test_script_server_on_data: answer every complete element. */
static int on_data(xmppuv_test_script_conn_t *k, void *arg) {
  server_t *s = arg;
  size_t i = xmppuv_test_script_conn_index(k);
  if (i >= MAX_CONNS) return -1;
  const char *rx = xmppuv_test_script_conn_received(k, NULL);
  for (;;) {
    const char *p = rx + s->cursor[i];
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    s->cursor[i] = (size_t)(p - rx);
    if (*p != '<') return 0;
    const char *end;
    if (strncmp(p, "<?xml", 5) == 0) {
      if ((end = strstr(p, "?>")) == NULL) return 0;
      s->cursor[i] = (size_t)(end + 2 - rx);
      continue;
    }
    if (strncmp(p, "<stream:stream", 14) == 0) {
      if ((end = strchr(p, '>')) == NULL) return 0;
      s->cursor[i] = (size_t)(end + 1 - rx);
      int rc = say(k, s->authed[i] ? HDR "<stream:features><bind xmlns='" NS_BIND "'/>"
                                         "<sm xmlns='" NS_SM "'/></stream:features>"
                                   : HDR "<stream:features><mechanisms xmlns='" NS_SASL
                                         "'><mechanism>PLAIN</mechanism></mechanisms>"
                                         "</stream:features>");
      if (rc != 0) return -1;
      continue;
    }
    if (strncmp(p, "</stream:stream>", 16) == 0) {
      s->cursor[i] += 16;
      say(k, "</stream:stream>");
      xmppuv_test_script_conn_close(k, 0);
      return 0;
    }
    /* An element: its name, then its end. */
    char name[32];
    size_t n = 0;
    for (const char *q = p + 1; *q != '\0' && *q != ' ' && *q != '>' && *q != '/'; q++)
      if (n + 1 < sizeof name) name[n++] = *q;
    name[n] = '\0';
    const char *gt = strchr(p, '>');
    if (gt == NULL) return 0;
    if (gt[-1] == '/') {
      end = gt + 1;
    } else {
      char close[40];
      snprintf(close, sizeof close, "</%s>", name);
      const char *c = strstr(gt, close);
      if (c == NULL) return 0;
      end = c + strlen(close);
    }
    s->cursor[i] = (size_t)(end - rx);
    if (answer(s, k, i, name, p, end) < 0) return -1;
  }
}

/* Messages to the client and an ack request; after the client's <a/>, the
 * connection is reset (see answer()). */
static int push(server_t *s) {
  xmppuv_test_script_conn_t *k = s->current;
  if (k == NULL || xmppuv_test_script_conn_closed(k)) return -1;
  s->await_a = k;
  say(k, "<message from='bob@localhost/x' type='chat'><body>one</body></message>"
         "<message from='bob@localhost/x' type='chat'><body>two</body></message>"
         "<r xmlns='" NS_SM "'/>");
  return 0;
}

/* ---- the app -------------------------------------------------------------------- */

#define NSLOTS 5

typedef struct run {
  uv_loop_t loop;
  xmppuv_client_t *c;
  server_t server;
  client_rec_t app;  /* what the app saw (tests/support/client_rec.h) */
  client_rec_slot_t *sent[NSLOTS]; /* message i's slot; NULL: never taken */
  int phase;
  uint64_t pushed_at;
  size_t conns_at_push;
  int api_enomem;    /* an API call returned XMPPUV_ENOMEM */
  unsigned enomem_errors;
  int codes[16];     /* distinct error codes seen */
  size_t ncodes;
} run_t;

static void on_log_keep(void *ud, xmppuv_log_level_t level, const char *area,
                        const char *msg);

/* The recorder's hook: errors logged and sorted; an ack or fail is for a
 * message the app sent. */
static void on_event(client_rec_t *a, xmppuv_client_t *c, const char *event) {
  run_t *r = a->user;
  (void)c;
  if (strcmp(event, "ack") == 0 || strcmp(event, "fail") == 0)
    ck_assert_msg(a->stray == 0, "%s for a stanza the app never sent", event);
  if (strcmp(event, "error") != 0) return;
  int code = a->last_err_code;
  on_log_keep(NULL, XMPPUV_LOG_ERROR, "app", xmppuv_err_name(code));
  if (code == XMPPUV_ENOMEM) r->enomem_errors++;
  for (size_t i = 0; i < r->ncodes; i++)
    if (r->codes[i] == code) return;
  if (r->ncodes < 16) r->codes[r->ncodes++] = code;
}

static void send_slot(run_t *r, size_t i) {
  xmppuv_stanza_t *m;
  char body[16];
  snprintf(body, sizeof body, "m%zu", i);
  if (xmppuv_message_new("bob@localhost", "chat", body, &m) != 0) {
    r->api_enomem = 1;
    return;
  }
  int rc = client_rec_send(&r->app, r->c, m, &r->sent[i]);
  xmppuv_stanza_unref(m); /* the slot keeps its own reference */
  if (rc != 0) {
    ck_assert_msg(rc == XMPPUV_ENOMEM, "send: %s", xmppuv_err_name(rc));
    r->api_enomem = 1;
  }
}

static int batch_done(const run_t *r, size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    if (r->sent[i] != NULL && r->sent[i]->done == 0) return 0;
  return 1;
}

/* The scenario, one step at a time; returns 1 when the run is over. */
static int step(run_t *r) {
  xmppuv_status_t st = xmppuv_client_status(r->c);
  if (r->phase < 4 && st == XMPPUV_STATUS_OFFLINE) return 1; /* gave up */
  size_t conns = xmppuv_test_script_server_connections(r->server.srv);
  switch (r->phase) {
    case 0: /* online: three messages */
      if (st != XMPPUV_STATUS_ONLINE) return 0;
      for (size_t i = 0; i < 3; i++) send_slot(r, i);
      r->phase = 1;
      return 0;
    case 1: /* all three settled: messages to the client, then a reset */
      if (!batch_done(r, 0, 3) || st != XMPPUV_STATUS_ONLINE) return 0;
      if (push(&r->server) != 0) return 0;
      r->pushed_at = uv_now(&r->loop);
      r->conns_at_push = conns;
      r->phase = 2;
      return 0;
    case 2: /* back (resumed, or a new session): two more */
      if (conns == r->conns_at_push) {
        /* The client never answered the <r/>: reset anyway. */
        if (uv_now(&r->loop) - r->pushed_at > 300 && r->server.await_a != NULL) {
          xmppuv_test_script_conn_close(r->server.await_a, 1);
          r->server.await_a = NULL;
        }
        return 0;
      }
      if (st != XMPPUV_STATUS_ONLINE) return 0;
      for (size_t i = 3; i < NSLOTS; i++) send_slot(r, i);
      r->phase = 3;
      return 0;
    case 3: /* settled: stop */
      if (!batch_done(r, 3, NSLOTS)) return 0;
      ck_assert_int_eq(xmppuv_client_stop(r->c), 0);
      r->phase = 4;
      return 0;
    default:
      return st == XMPPUV_STATUS_OFFLINE;
  }
}

typedef struct outcome {
  long allocations;
  int failed;        /* the planned failure happened */
  int completed;     /* the scenario ran to the end */
  int surfaced;      /* ENOMEM reported, or a connection lost to it */
  int client_new_failed;
} outcome_t;

static void noop_close(uv_handle_t *h) { (void)h; }

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, noop_close);
}

#define RUN_BUDGET_MS 10000

static void on_tick(uv_timer_t *t) { (void)t; }

static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud;
  fprintf(stderr, "# [%s] %s: %s\n", xmppuv_log_level_name(level), area, msg);
}

/* The run's log, kept to be shown if the run hangs. */
static char run_log[1 << 16];
static size_t run_log_len;

static void on_log_keep(void *ud, xmppuv_log_level_t level, const char *area,
                        const char *msg) {
  (void)ud;
  text_append(run_log, sizeof run_log, &run_log_len, "# [%s] %s: %.200s\n",
              xmppuv_log_level_name(level), area, msg);
}

/* One whole session with the n-th allocation failing (0: none). */
static outcome_t run_once(long n) {
  outcome_t out;
  memset(&out, 0, sizeof out);
  static run_t run;
  run_t *r = &run;
  memset(r, 0, sizeof *r);
  client_rec_init(&r->app, NULL, NULL);
  r->app.on_event = on_event;
  r->app.user = r;
  ck_assert_int_eq(uv_loop_init(&r->loop), 0);
  static const xmppuv_test_step_t silent[] = {SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {silent};
  ck_assert_int_eq(xmppuv_test_script_server_start(&r->loop, scripts, 1, &r->server.srv), 0);
  xmppuv_test_script_server_on_data(r->server.srv, on_data, &r->server);

  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = "alice@localhost";
  o.password = "alice-secret";
  o.host = "127.0.0.1";
  o.port = xmppuv_test_script_server_port(r->server.srv);
  o.tls = XMPPUV_TLS_DISABLED_INSECURE;
  o.log_level = XMPPUV_LOG_DEBUG;
  o.log_cb = on_log_keep;
  run_log_len = 0;
  run_log[0] = '\0';
  const char *trace = getenv("XMPPUV_ALLOC_TRACE");
  if (trace != NULL && atol(trace) == n) {
    o.log_cb = on_log;
    o.log_level = XMPPUV_LOG_TRACE;
  }
  /* Everything that waits, waits briefly: a failure that silently lost an
   * answer still ends the run soon. */
  o.reconnect_delay_ms = 2;
  o.reconnect_max_delay_ms = 10;
  o.negotiation_timeout_ms = 1000;
  o.close_timeout_ms = 100;
  o.sm_ack_debounce_ms = 1;
  o.sm_idle_request_ms = 0;
  o.sm_ack_timeout_ms = 1000;
  o.sm_wait_timeout_ms = 1000;
  o.keepalive_ms = 0;

  long live_before = failalloc_live();
  failalloc_fail_at(n);
  int rc = xmppuv_client_new(&r->loop, &o, &client_rec_callbacks, &r->app, &r->c);
  if (rc != 0) {
    ck_assert_msg(rc == XMPPUV_ENOMEM, "n=%ld: client_new gave %s", n, xmppuv_err_name(rc));
    r->c = NULL;
    out.client_new_failed = 1;
  } else {
    ck_assert_int_eq(xmppuv_client_start(r->c), 0);
    /* Wakes the loop so that a run that hangs is caught, not waited on. */
    uv_timer_t tick;
    ck_assert_int_eq(uv_timer_init(&r->loop, &tick), 0);
    uv_timer_start(&tick, on_tick, 50, 50);
    uint64_t deadline = uv_now(&r->loop) + RUN_BUDGET_MS;
    while (!step(r)) {
      if (uv_now(&r->loop) >= deadline) fputs(run_log, stderr);
      ck_assert_msg(uv_now(&r->loop) < deadline,
                    "n=%ld: the run did not end (phase %d, status %s, %zu connections)", n,
                    r->phase, xmppuv_status_name(xmppuv_client_status(r->c)),
                    xmppuv_test_script_server_connections(r->server.srv));
      uv_run(&r->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    out.completed = r->phase == 4;
    xmppuv_client_close(r->c, client_rec_close_cb);
  }
  size_t conns = xmppuv_test_script_server_connections(r->server.srv);
  xmppuv_test_script_server_close(r->server.srv, NULL, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  if (r->c != NULL) ck_assert_msg(r->app.closed, "n=%ld: close_cb did not run", n);
  if (uv_loop_close(&r->loop) != 0) {
    uv_walk(&r->loop, walk_close, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    ck_abort_msg("n=%ld: handles left on the loop", n);
  }
  out.allocations = failalloc_count();
  out.failed = failalloc_failed();
  int all_acked = 1;
  for (size_t i = 0; i < NSLOTS; i++) {
    const client_rec_slot_t *k = r->sent[i];
    if (k != NULL) {
      ck_assert_msg(k->done == 1, "n=%ld: stanza %zu got %u outcomes", n, i, k->done);
      ck_assert_msg(k->acks + k->fails == 1, "n=%ld: stanza %zu: %u acks, %u fails", n, i,
                    k->acks, k->fails);
      if (k->acks != 1) all_acked = 0;
    } else {
      all_acked = 0;
    }
  }
  client_rec_free(&r->app);
  ck_assert_msg(failalloc_live() == live_before, "n=%ld: %ld blocks leaked", n,
                failalloc_live() - live_before);
  out.surfaced = r->api_enomem || r->enomem_errors > 0 || out.client_new_failed ||
                 conns > 2;
  /* A failure that left no trace must have cost nothing. */
  if (out.failed && !out.surfaced)
    ck_assert_msg(out.completed && all_acked,
                  "n=%ld: the failure was silent but the scenario did not complete", n);
  if (!out.failed)
    ck_assert_msg(out.completed && all_acked && r->app.errors == 1 && r->app.resumes == 1,
                  "n=%ld: without a failure: completed %d, acked %d, %u errors, %u resumes",
                  n, out.completed, all_acked, r->app.errors, r->app.resumes);
  for (size_t i = 0; i < r->ncodes; i++) {
    int code = r->codes[i];
    if (code != XMPPUV_ENOMEM && code != XMPPUV_EEOF && code != UV_ECONNRESET &&
        code != XMPPUV_ETIMEDOUT)
      fputs(run_log, stderr);
    ck_assert_msg(code == XMPPUV_ENOMEM || code == XMPPUV_EEOF || code == UV_ECONNRESET ||
                      code == XMPPUV_ETIMEDOUT,
                  "n=%ld: error %s", n, xmppuv_err_name(code));
  }
  return out;
}

START_TEST(every_allocation_failing_along_a_whole_session_is_survived) {
  signal(SIGPIPE, SIG_IGN);
  failalloc_install();
  outcome_t clean = run_once(0);
  long total = clean.allocations;
  ck_assert_int_gt(total, 100);
  const char *limit_env = getenv("XMPPUV_ALLOC_SWEEP_MAX");
  long last = limit_env != NULL ? atol(limit_env) : total;
  if (last <= 0 || last > total) last = total;
  long completed = 0, surfaced = 0, silent = 0, gave_up = 0, new_failed = 0;
  uint64_t t0 = uv_hrtime();
  for (long n = 1; n <= last; n++) {
    uint64_t r0 = uv_hrtime();
    outcome_t o = run_once(n);
    uint64_t ms = (uv_hrtime() - r0) / 1000000;
    if (ms > 500) fprintf(stderr, "# n=%ld took %llu ms\n", n, (unsigned long long)ms);
    if (!o.failed) continue; /* a shorter path this time */
    if (o.client_new_failed) new_failed++;
    if (o.completed) completed++;
    else if (!o.client_new_failed) gave_up++;
    if (o.surfaced) surfaced++;
    else silent++;
  }
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  fprintf(stderr,
          "# %ld allocations in a clean session; swept %ld failure points in %.1f s: "
          "%ld completed, %ld gave up, %ld client_new ENOMEM; %ld surfaced, %ld silent\n",
          total, last, secs, completed, gave_up, new_failed, surfaced, silent);
  failalloc_uninstall();
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("alloc_session");
  TCase *tc = tcase_create("alloc_session");
  tcase_set_timeout(tc, 580);
  tcase_add_test(tc, every_allocation_failing_along_a_whole_session_is_survived);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
