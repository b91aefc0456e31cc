/* The reconnect storm: N clients on one loop log in with SCRAM-SHA-256,
 * then the server resets every connection at once (bench-server --mode
 * storm) and all of them reconnect and resume together. What is measured is
 * what every other client on the loop feels: the loop's longest iteration
 * (time spent in callbacks between two polls, idle time excluded, via
 * uv_metrics_idle_time), during the first logins and during the storm.
 * Key derivation on the loop thread shows up here directly: one PBKDF2 at
 * 4096 iterations is milliseconds, and a read may bring many challenges.
 *
 *   bench-storm --port P [--clients N] [--storms K] [--timeout-s T]
 *
 * Prints one RESULT line: clients, login_s (start to all online),
 * login_max_iter_ms and login_max_iter_cpu_ms (wall and the loop thread's
 * CPU: on a small machine the wall figure includes waiting for a CPU held
 * by the thread pool), storm_s (the first disconnect to all back online,
 * for the last storm), storm_max_iter_ms and storm_max_iter_cpu_ms,
 * resumed, online (new sessions after a storm), fails (fatal errors seen),
 * loop_cpu_s (the loop thread's CPU time in all). Only the public API is used, so the same
 * program measures any version of the library. */
#include <inttypes.h>
#include <uv.h>

#include "common.h"
#include "xmppuv.h"

typedef struct storm {
  uv_loop_t *loop;
  uv_check_t check;
  uv_timer_t timeout;
  xmppuv_client_t **clients;
  unsigned n, storms, storms_seen;
  unsigned up; /* clients online now */
  unsigned resumed, onlines, errors, closed;
  int phase; /* 0: first logins, 1: storm */
  int done;
  double t_start, t_logged_in, t_storm, t_storm_done;
  /* the longest busy iteration per phase, seconds: wall time, and the loop
   * thread's CPU time (wall includes waiting for a CPU the pool's threads
   * hold; CPU is what the loop itself did) */
  double max_iter[2], max_iter_cpu[2];
  uint64_t last_hr, last_idle;
  double last_cpu;
} storm_t;

static storm_t S;

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Busy time of the iteration that just ended: wall time since the last
 * check minus what the loop spent waiting in poll. */
static void on_check(uv_check_t *h) {
  (void)h;
  uint64_t now = uv_hrtime();
  uint64_t idle = uv_metrics_idle_time(S.loop);
  double cpu = thread_cpu();
  if (S.last_hr != 0) {
    double busy = (double)((now - S.last_hr) - (idle - S.last_idle)) / 1e9;
    if (busy > S.max_iter[S.phase]) S.max_iter[S.phase] = busy;
    if (cpu - S.last_cpu > S.max_iter_cpu[S.phase]) S.max_iter_cpu[S.phase] = cpu - S.last_cpu;
  }
  S.last_hr = now;
  S.last_idle = idle;
  S.last_cpu = cpu;
}

static void finish(void) {
  if (S.done) return;
  S.done = 1;
  for (unsigned i = 0; i < S.n; i++) xmppuv_client_close(S.clients[i], NULL);
  uv_check_stop(&S.check);
  uv_close((uv_handle_t *)&S.check, NULL);
  uv_close((uv_handle_t *)&S.timeout, NULL);
}

static void on_up(void) {
  S.up++;
  if (S.up < S.n) return;
  if (S.phase == 0) {
    S.t_logged_in = bench_now();
    return;
  }
  S.t_storm_done = bench_now();
  if (S.storms_seen >= S.storms) finish();
}

/* Nothing but the server's storm takes a client down: the first one down
 * after all were up (or, when the last login and the resets cross, the
 * first one down at all) starts a storm. */
static void on_status(xmppuv_client_t *c, xmppuv_status_t st, void *ud) {
  (void)c;
  int *was_online = ud;
  if (*was_online && st != XMPPUV_STATUS_ONLINE) {
    *was_online = 0;
    if (S.phase == 0 || S.up == S.n) {
      if (S.phase == 0 && S.t_logged_in == 0) S.t_logged_in = bench_now();
      S.phase = 1;
      S.storms_seen++;
      S.t_storm = bench_now();
      S.max_iter[1] = S.max_iter_cpu[1] = 0; /* the last storm is the one reported */
    }
    S.up--;
  }
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c, (void)jid;
  int *was_online = ud;
  *was_online = 1;
  if (S.phase == 1) S.onlines++;
  on_up();
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  (void)c;
  int *was_online = ud;
  *was_online = 1;
  S.resumed++;
  on_up();
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *e, void *ud) {
  (void)c, (void)ud;
  /* The resets are expected (ECONNRESET, EEOF); anything else is counted. */
  if (e->fatal) {
    S.errors++;
    fprintf(stderr, "bench-storm: %s %s\n", xmppuv_err_name(e->code),
            e->text ? e->text : "");
  }
}

static void on_timeout(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "bench-storm: timed out (%u of %u up, %u storms seen)\n", S.up, S.n,
          S.storms_seen);
  S.errors++;
  finish();
}

int main(int argc, char **argv) {
  int port = 0;
  unsigned timeout_s = 120;
  S.n = 1000;
  S.storms = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc) S.n = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--storms") == 0 && i + 1 < argc) S.storms = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--timeout-s") == 0 && i + 1 < argc)
      timeout_s = (unsigned)atoi(argv[++i]);
    else bench_die("usage: bench-storm --port P [--clients N] [--storms K] [--timeout-s T]");
  }
  if (port <= 0 || S.n == 0) bench_die("--port and --clients > 0 are required");
  bench_raise_nofile((long)S.n * 2 + 64);
  S.loop = uv_default_loop();
  if (uv_loop_configure(S.loop, UV_METRICS_IDLE_TIME) != 0) bench_die("UV_METRICS_IDLE_TIME");

  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = BENCH_USER "@" BENCH_DOMAIN;
  o.password = BENCH_PASSWORD;
  o.host = "127.0.0.1";
  o.port = (unsigned short)port;
  o.tls = XMPPUV_TLS_DISABLED_INSECURE;
  o.log_level = XMPPUV_LOG_NONE;
  /* The library's defaults otherwise: a 1 s first reconnect delay with
   * jitter, so the storm spreads over about a second as it would. */
  static const xmppuv_client_callbacks_t cbs = {sizeof(xmppuv_client_callbacks_t), on_status, on_online, on_resumed, on_error,
                                                NULL,      NULL,      NULL,       NULL, NULL, NULL};
  S.clients = calloc(S.n, sizeof *S.clients);
  int *online = calloc(S.n, sizeof *online);
  for (unsigned i = 0; i < S.n; i++)
    if (xmppuv_client_new(S.loop, &o, &cbs, &online[i], &S.clients[i]) != 0)
      bench_die("client_new");

  uv_check_init(S.loop, &S.check);
  uv_check_start(&S.check, on_check);
  uv_timer_init(S.loop, &S.timeout);
  uv_timer_start(&S.timeout, on_timeout, (uint64_t)timeout_s * 1000, 0);
  S.t_start = bench_now();
  for (unsigned i = 0; i < S.n; i++)
    if (xmppuv_client_start(S.clients[i]) != 0) bench_die("client_start");
  uv_run(S.loop, UV_RUN_DEFAULT);

  printf("RESULT clients=%u login_s=%.3f login_max_iter_ms=%.2f login_max_iter_cpu_ms=%.2f "
         "storm_s=%.3f storm_max_iter_ms=%.2f storm_max_iter_cpu_ms=%.2f resumed=%u online=%u "
         "fails=%u loop_cpu_s=%.3f\n",
         S.n, S.t_logged_in - S.t_start, S.max_iter[0] * 1e3, S.max_iter_cpu[0] * 1e3,
         S.t_storm_done - S.t_storm, S.max_iter[1] * 1e3, S.max_iter_cpu[1] * 1e3, S.resumed,
         S.onlines, S.errors, thread_cpu());
  free(S.clients);
  free(online);
  uv_loop_close(S.loop);
  return S.errors == 0 && S.storms_seen >= S.storms ? 0 : 1;
}
