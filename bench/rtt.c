/* bench-rtt: what the modern login saves, in round trips. A proxy adds a
 * fixed delay each way (tests/support/fault_proxy.c) between the library
 * and a real server (Prosody 13, ejabberd 24.12, started as the tests start
 * them); for each way of logging in it reports the client's flights (runs of
 * bytes it sends before it must hear from the server again, counted at the
 * proxy from TCP connected) and the time:
 *
 *   - first login: start() to `online`, with the password;
 *   - reconnection: reconnect_now() (a cut) to `resumed`;
 *   - for FAST: a new client given the token (a restarted app) to `online`.
 *
 * The wss:// paths go to the server's WebSocket (its HTTPS port) through
 * the same proxy: the HTTP upgrade is one more flight.
 *
 *   bench-rtt [--rtt MS] [--runs N] [--server prosody|ejabberd|both]
 *
 * Needs XMPPUV_SOURCE_ROOT (the server scripts); scripts/bench sets it.
 * Prints one markdown table: medians of the runs. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include <check.h>

#include "fault_proxy.h"
#include "servers.h"

typedef struct path {
  const char *name;
  int direct;     /* XEP-0368 direct TLS, else STARTTLS */
  int sasl2;      /* SASL2, Bind2, inline SM */
  int fast;       /* FAST tokens */
  int one_flight; /* the login with the stream header */
  int wss;        /* over a WebSocket (RFC 7395) at the server's HTTPS port */
} path_t;

static const path_t paths[] = {
    {"STARTTLS, RFC 6120 SCRAM, bind iq, <enable/>/<resume/>", 0, 0, 0, 0, 0},
    {"STARTTLS, SASL2 SCRAM, Bind2, inline SM", 0, 1, 0, 0, 0},
    {"direct TLS, SASL2 SCRAM, Bind2, inline SM", 1, 1, 0, 0, 0},
    {"direct TLS, FAST, Bind2, inline SM", 1, 1, 1, 0, 0},
    {"direct TLS, FAST, Bind2, inline SM, one flight", 1, 1, 1, 1, 0},
    {"wss://, SASL2 SCRAM, Bind2, inline SM", 1, 1, 0, 0, 1},
    {"wss://, FAST, Bind2, inline SM, one flight", 1, 1, 1, 1, 1},
};
#define N_PATHS (sizeof paths / sizeof paths[0])
#define MAX_RUNS 32

typedef struct app {
  uv_loop_t *loop;
  xmppuv_test_proxy_t *proxy;
  unsigned onlines, resumes, tokens, errors;
  int last_error;
  unsigned long flights; /* at the last online or resumed */
  char token[1024], mech[64];
} app_t;

static unsigned long proxy_flights(app_t *a) {
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(a->proxy, &st);
  return st.latest_client_flights;
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c, (void)jid;
  app_t *a = ud;
  a->onlines++;
  a->flights = proxy_flights(a);
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  (void)c;
  app_t *a = ud;
  a->resumes++;
  a->flights = proxy_flights(a);
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *err, void *ud) {
  (void)c;
  app_t *a = ud;
  a->errors++;
  a->last_error = err->code;
  if (err->fatal) fprintf(stderr, "bench-rtt: %s: %s\n", xmppuv_err_name(err->code),
                          err->text ? err->text : "");
}

static void on_token(xmppuv_client_t *c, const xmppuv_fast_token_t *t, void *ud) {
  (void)c;
  app_t *a = ud;
  if (t == NULL) return;
  a->tokens++;
  snprintf(a->token, sizeof a->token, "%s", t->token);
  snprintf(a->mech, sizeof a->mech, "%s", t->mechanism);
}

static int run_until(app_t *a, unsigned *counter, unsigned want) {
  uint64_t deadline = uv_hrtime() + 30000000000ull;
  while (*counter < want) {
    if (uv_hrtime() > deadline) return -1;
    uv_run(a->loop, UV_RUN_ONCE);
  }
  return 0;
}

static void close_client(app_t *a, xmppuv_client_t *c) {
  xmppuv_client_close(c, NULL);
  /* Let the transport go before the next client (one proxied connection
   * at a time keeps the flight count the client's own). */
  for (int i = 0; i < 50; i++) uv_run(a->loop, UV_RUN_NOWAIT);
}

static xmppuv_client_t *client_for(app_t *a, const xmppuv_test_server_t *srv, const path_t *p,
                                   const char *token, const char *mech, const char *ua) {
  static char jid[96];
  snprintf(jid, sizeof jid, "alice@%s", srv->domain);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = jid;
  o.password = xmppuv_test_password("alice");
  static char url[128];
  if (p->wss) {
    snprintf(url, sizeof url, "wss://localhost:%u%s", xmppuv_test_proxy_port(a->proxy),
             strcmp(srv->kind, "prosody") == 0 ? "/xmpp-websocket" : "/ws");
    o.url = url;
  } else {
    o.host = "127.0.0.1";
    o.port = xmppuv_test_proxy_port(a->proxy);
    o.tls = p->direct ? XMPPUV_TLS_DIRECT : XMPPUV_TLS_STARTTLS;
  }
  o.ca_file = srv->ca_file;
  o.sasl2 = p->sasl2;
  o.fast = p->fast;
  o.one_flight = p->one_flight;
  o.fast_token = token;
  o.fast_mechanism = mech;
  o.user_agent_id = ua;
  o.reconnect_delay_ms = 1;
  o.reconnect_max_delay_ms = 10;
  o.log_level = XMPPUV_LOG_NONE;
  xmppuv_client_callbacks_t cbs;
  xmppuv_client_callbacks_init(&cbs);
  cbs.online = on_online;
  cbs.resumed = on_resumed;
  cbs.error = on_error;
  cbs.fast_token = on_token;
  xmppuv_client_t *c = NULL;
  if (xmppuv_client_new(a->loop, &o, &cbs, a, &c) != 0) return NULL;
  return c;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double ms_since(uint64_t t0) { return (double)(uv_hrtime() - t0) / 1e6; }

typedef struct result {
  double login_ms[MAX_RUNS], resume_ms[MAX_RUNS], fast_ms[MAX_RUNS];
  double login_fl[MAX_RUNS], resume_fl[MAX_RUNS], fast_fl[MAX_RUNS];
  int n;
} result_t;

static int one_run(app_t *a, const xmppuv_test_server_t *srv, const path_t *p, result_t *r) {
  int i = r->n;
  memset(&a->onlines, 0, sizeof *a - offsetof(app_t, onlines));
  xmppuv_client_t *c = client_for(a, srv, p, NULL, NULL, NULL);
  if (c == NULL) return -1;
  uint64_t t0 = uv_hrtime();
  xmppuv_client_start(c);
  if (run_until(a, &a->onlines, 1) != 0) return -1;
  r->login_ms[i] = ms_since(t0);
  r->login_fl[i] = (double)a->flights;
  if (p->fast && run_until(a, &a->tokens, 1) != 0) return -1;
  t0 = uv_hrtime();
  xmppuv_client_reconnect_now(c);
  if (run_until(a, &a->resumes, 1) != 0) return -1;
  r->resume_ms[i] = ms_since(t0);
  r->resume_fl[i] = (double)a->flights;
  char ua[130], token[1024], mech[64];
  snprintf(ua, sizeof ua, "%s", xmppuv_client_user_agent_id(c));
  snprintf(token, sizeof token, "%s", a->token);
  snprintf(mech, sizeof mech, "%s", a->mech);
  close_client(a, c);
  if (p->fast) {
    a->onlines = 0;
    xmppuv_client_t *c2 = client_for(a, srv, p, token, mech, ua);
    if (c2 == NULL) return -1;
    t0 = uv_hrtime();
    xmppuv_client_start(c2);
    if (run_until(a, &a->onlines, 1) != 0) return -1;
    r->fast_ms[i] = ms_since(t0);
    r->fast_fl[i] = (double)a->flights;
    close_client(a, c2);
  }
  r->n++;
  return 0;
}

static unsigned rtt = 50;
static int runs = 5;
static const char *which = "both";
static int status;

static void bench(void);

/* The server starter is the tests' (tests/support/servers.c), which reports
 * through Check: the benchmark runs as one Check test, in this process. */
START_TEST(bench_rtt) { bench(); }
END_TEST

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rtt") == 0 && i + 1 < argc)
      rtt = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
      runs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc)
      which = argv[++i];
    else {
      fprintf(stderr, "usage: bench-rtt [--rtt MS] [--runs N] [--server prosody|ejabberd|both]\n");
      return 2;
    }
  }
  if (runs < 1 || runs > MAX_RUNS) runs = 5;
  Suite *suite = suite_create("bench-rtt");
  TCase *tc = tcase_create("rtt");
  tcase_set_timeout(tc, 3600);
  tcase_add_test(tc, bench_rtt);
  suite_add_tcase(suite, tc);
  SRunner *sr = srunner_create(suite);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_SILENT);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 || status != 0;
}

static void bench(void) {
  printf("RTT %u ms through the proxy (%u ms each way); medians of %d runs; flights are "
         "the client's, from TCP connected.\n\n",
         rtt, rtt / 2, runs);
  printf("| server | path | first login: flights, ms | cut to resumed: flights, ms | "
         "restart with the token: flights, ms |\n|---|---|---|---|---|\n");
  const char *kinds[] = {"prosody", "ejabberd"};
  for (int k = 0; k < 2; k++) {
    if (strcmp(which, "both") != 0 && strcmp(which, kinds[k]) != 0) continue;
    xmppuv_test_server_t srv;
    if (xmppuv_test_server_start(kinds[k], 60, &srv) != 0) {
      fprintf(stderr, "bench-rtt: %s did not start\n", kinds[k]);
      status = 1;
      return;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (size_t pi = 0; pi < N_PATHS; pi++) {
      const path_t *p = &paths[pi];
      app_t a;
      memset(&a, 0, sizeof a);
      a.loop = &loop;
      unsigned short port = p->wss ? srv.https_port : p->direct ? srv.direct_tls_port : srv.port;
      if (xmppuv_test_proxy_start(&loop, "127.0.0.1", port, &a.proxy) != 0) {
        status = 1;
        return;
      }
      xmppuv_test_proxy_delay(a.proxy, rtt / 2);
      result_t r;
      memset(&r, 0, sizeof r);
      for (int i = 0; i < runs; i++)
        if (one_run(&a, &srv, p, &r) != 0) {
          fprintf(stderr, "bench-rtt: %s, %s: a run did not finish (last error %s)\n",
                  kinds[k], p->name, xmppuv_err_name(a.last_error));
          status = 1;
          break;
        }
      if (r.n > 0) {
        char fast[64] = "—";
        if (p->fast)
          snprintf(fast, sizeof fast, "%.0f, %.0f", median(r.fast_fl, r.n),
                   median(r.fast_ms, r.n));
        printf("| %s | %s | %.0f, %.0f | %.0f, %.0f | %s |\n", kinds[k], p->name,
               median(r.login_fl, r.n), median(r.login_ms, r.n), median(r.resume_fl, r.n),
               median(r.resume_ms, r.n), fast);
        fflush(stdout);
      }
      xmppuv_test_proxy_close(a.proxy, NULL, NULL);
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    xmppuv_test_server_stop(&srv);
  }
}
