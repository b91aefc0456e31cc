/* bench-storm-server: a reconnect storm against a real server. N clients on
 * one loop (public API only, the library's defaults: SM, SCRAM, SASL2,
 * FAST, one flight, reconnect backoff 1 s doubling with ±20 % jitter) log
 * in over TLS (STARTTLS, or direct TLS) to Prosody 13 or ejabberd 24.12
 * started on loopback by the tests' code (tests/support/servers.c), with
 * the test CA. Once all are online:
 *
 *   1. each client sends one message (to its own bare JID), and a thread
 *      kills the server (SIGKILL: it loses every session);
 *   2. when the server is gone, each client sends one more (held: no
 *      stream);
 *   3. the thread starts the server again on the same ports (its users,
 *      certificate and stored FAST tokens kept, its sessions not);
 *   4. the clients reconnect by themselves, find resumption refused and
 *      start new sessions.
 *
 * The server is stopped and started from a thread so that the loop runs
 * meanwhile: a restart takes a second or more, and a stalled loop would
 * fire every reconnect timer due in that second at once afterwards.
 *
 * Measured from the kill (t = 0): time to all online again, and from the
 * moment the server answered again; time until every message ended in
 * `ack` or `fail`; the loop's longest iteration from the kill to all
 * online (as bench/storm.c: the wall time between two uv_check callbacks
 * minus the time spent waiting in poll, uv_metrics_idle_time, and the loop
 * thread's CPU time in it); every reconnection attempt (the status going
 * to `connecting`) and every `reconnecting` event, in 100 ms bins: the
 * largest bin and the standard deviation of the bins from the kill to all
 * online, and the spread (standard deviation) of each client's first
 * attempt; `online` and `resumed` events; acks and fails (by reason);
 * clients that gave up (a fatal error, or `offline`).
 *
 * What happens to the unacknowledged messages when resumption fails is the
 * library's policy: they fail with ESMFAILED unless sm_resend_on_failed is
 * set. This program sets it (--no-resend: the library default), so every
 * message should end in exactly one ack.
 *
 *   bench-storm-server [--server ejabberd|prosody] [--clients N]
 *                      [--users 1-4] [--tls starttls|direct] [--no-resend]
 *                      [--login-parallel K] [--timeout-s T]
 *                      [--plot FILE.png] [--data FILE]
 *
 * ejabberd by default: Prosody holds the thousand sessions too, but its
 * storm measures Prosody. The tests' servers have four accounts, so each
 * account here has 250 clients, and Prosody keeps an account's FAST tokens
 * in one flat file that it reads and rewrites whole on every FAST login
 * (a new token each time): after a restart its one thread is the limit
 * (bench/README.md has the figures).
 *
 * Needs XMPPUV_SOURCE_ROOT (the server scripts); bench/run.py sets it.
 * Prints one RESULT line (key=value); with --data (default with --plot:
 * the plot's name with .dat) writes the number of clients online at every
 * 50 ms from the kill to all online (gnuplot index 0) and the attempts per
 * 100 ms bin (index 1); with --plot draws both with gnuplot into a PNG.
 * The tests' server starter reports through Check, so the benchmark runs
 * as one Check test in this process (CK_NOFORK), as bench-rtt does. */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <uv.h>
#include <xmppuv.h>

#include <check.h>

#include "common.h"
#include "servers.h"

enum { TICK_MS = 50, BIN_MS = 100 };

/* One timestamped event of the storm: an attempt, a `reconnecting`, or a
 * client going up (+1) or down (-1). */
typedef struct stamp {
  double t;
  int delta;
} stamp_t;

typedef struct stamps {
  stamp_t *v;
  size_t n, cap;
} stamps_t;

typedef struct peer {
  xmppuv_client_t *c;
  int up;         /* online now */
  int went_down;  /* lost its connection since the kill */
  int first_done; /* the first attempt after the kill was recorded */
  double first_attempt;
} peer_t;

typedef struct bench {
  uv_loop_t *loop;
  uv_check_t check;
  uv_timer_t timer; /* logins in batches, then the end conditions */
  uv_async_t async;
  uv_sem_t sent2; /* the loop has sent the second messages */
  uv_thread_t thread;
  xmppuv_test_server_t srv;
  peer_t *peers;
  unsigned n, users, parallel, timeout_s;
  int direct, resend;
  const char *kind, *plot, *data;
  char jids[4][128];

  unsigned started, up, downed; /* downed: clients that went down since the kill */
  int phase; /* 0 logins, 1 the storm (from the kill), 2 all online again */
  int done, thread_started;
  atomic_int stage; /* thread: 1 killed, 2 restarted (or failed) */
  int seen_stage;
  int kill_rc, restart_rc;
  double t_start, t_logged_in, t_kill, t_killed, t_ready, t_first_down, t_all_online,
      t_all_reported;
  double max_iter[3], max_iter_cpu[3];
  uint64_t last_hr, last_idle;
  double last_cpu;

  unsigned sent, send_errors, acks, fails, fails_smfailed, acks_before_kill;
  unsigned onlines, resumed, gave_up, fatal, refused, errors_storm, offline_end;
  stamps_t attempts, reconnectings, updown;
  /* errors seen since the kill, by code */
  struct {
    int code;
    unsigned count;
  } errs[16];
  double max_iter_at;    /* when the storm's longest iteration ended */
  double server_cpu_s;   /* the restarted server's CPU time at all online */
} bench_t;

static bench_t B;
static int status;

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double since_kill(void) { return bench_now() - B.t_kill; }

static void stamp(stamps_t *s, double t, int delta) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 1024;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (s->v == NULL) bench_die("out of memory");
  }
  s->v[s->n].t = t;
  s->v[s->n].delta = delta;
  s->n++;
}

/* Busy time of the iteration that just ended (as bench/storm.c): wall time
 * since the last check minus what the loop spent waiting in poll, and the
 * loop thread's CPU time over the same span. */
static void on_check(uv_check_t *h) {
  (void)h;
  uint64_t now = uv_hrtime();
  uint64_t idle = uv_metrics_idle_time(B.loop);
  double cpu = thread_cpu();
  if (B.last_hr != 0) {
    double busy = (double)((now - B.last_hr) - (idle - B.last_idle)) / 1e9;
    if (busy > B.max_iter[B.phase]) {
      B.max_iter[B.phase] = busy;
      if (B.phase == 1) B.max_iter_at = since_kill();
    }
    if (cpu - B.last_cpu > B.max_iter_cpu[B.phase]) B.max_iter_cpu[B.phase] = cpu - B.last_cpu;
  }
  B.last_hr = now;
  B.last_idle = idle;
  B.last_cpu = cpu;
}

/* utime + stime of the server process (its pid file), seconds; -1 if
 * unknown. */
static double server_cpu(void) {
  char path[400], buf[1024];
  snprintf(path, sizeof path, "%s/server.pid", B.srv.dir);
  FILE *f = fopen(path, "r");
  long pid = 0;
  if (f == NULL) return -1;
  if (fscanf(f, "%ld", &pid) != 1) pid = 0;
  fclose(f);
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if (pid <= 0 || (f = fopen(path, "r")) == NULL) return -1;
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = '\0';
  char *p = strrchr(buf, ')'); /* fields 14 and 15 count from after the name */
  unsigned long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void finish(void) {
  if (B.done) return;
  B.done = 1;
  for (unsigned i = 0; i < B.n; i++)
    if (xmppuv_client_status(B.peers[i].c) != XMPPUV_STATUS_ONLINE) B.offline_end++;
  for (unsigned i = 0; i < B.n; i++) xmppuv_client_close(B.peers[i].c, NULL);
  uv_check_stop(&B.check);
  uv_close((uv_handle_t *)&B.check, NULL);
  uv_close((uv_handle_t *)&B.timer, NULL);
  uv_close((uv_handle_t *)&B.async, NULL);
}

static void send_one(peer_t *p) {
  xmppuv_stanza_t *m;
  /* to NULL: the account's own bare JID (stored offline by the server:
   * these clients send no presence). */
  if (xmppuv_message_new(NULL, "chat", BENCH_BODY, &m) != 0) bench_die("message_new");
  int rc = xmppuv_client_send(p->c, m);
  xmppuv_stanza_unref(m);
  if (rc == 0) B.sent++;
  else {
    B.send_errors++;
    fprintf(stderr, "bench-storm-server: send: %s\n", xmppuv_err_name(rc));
  }
}

/* ---- the server, from a thread ---------------------------------------------------------- */

static void restarter(void *arg) {
  (void)arg;
  B.kill_rc = xmppuv_test_server_kill(&B.srv);
  B.t_killed = bench_now();
  atomic_store(&B.stage, 1);
  uv_async_send(&B.async);
  uv_sem_wait(&B.sent2);
  B.restart_rc = B.kill_rc == 0 ? xmppuv_test_server_restart(&B.srv) : B.kill_rc;
  B.t_ready = bench_now();
  atomic_store(&B.stage, 2);
  uv_async_send(&B.async);
}

static void on_async(uv_async_t *h) {
  (void)h;
  int stage = atomic_load(&B.stage);
  if (stage >= 1 && B.seen_stage < 1) {
    B.seen_stage = 1;
    /* The server is gone: one more message each, held until a session. */
    for (unsigned i = 0; i < B.n; i++) send_one(&B.peers[i]);
    uv_sem_post(&B.sent2);
  }
  if (stage >= 2 && B.seen_stage < 2) {
    B.seen_stage = 2;
    if (B.restart_rc != 0) {
      fprintf(stderr, "bench-storm-server: the restart failed: %s\n", uv_strerror(B.restart_rc));
      status = 1;
      finish();
    }
  }
}

static void storm(void) {
  B.phase = 1;
  B.acks_before_kill = B.acks;
  /* One message each, then the kill: what the server had not acked when
   * it died is lost with its session. */
  for (unsigned i = 0; i < B.n; i++) send_one(&B.peers[i]);
  B.t_kill = bench_now();
  B.last_hr = 0; /* the first iteration of the storm starts here */
  if (uv_thread_create(&B.thread, restarter, NULL) != 0) bench_die("uv_thread_create");
  B.thread_started = 1;
}

/* ---- the clients ------------------------------------------------------------------------ */

static void note_up(peer_t *p) {
  if (p->up) return;
  p->up = 1;
  B.up++;
  if (B.phase >= 1) stamp(&B.updown, since_kill(), +1);
  if (B.up < B.n) return;
  if (B.phase == 0) {
    B.t_logged_in = bench_now();
    fprintf(stderr, "bench-storm-server: %u online after %.1f s; killing %s\n", B.n,
            B.t_logged_in - B.t_start, B.kind);
    storm();
  } else if (B.phase == 1 && B.downed == B.n) {
    /* Every connection was lost and every client is back. */
    B.t_all_online = bench_now();
    B.phase = 2;
    B.server_cpu_s = server_cpu();
  }
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t st, void *ud) {
  (void)c;
  peer_t *p = ud;
  if (st == XMPPUV_STATUS_CONNECTING && B.phase >= 1) {
    double t = since_kill();
    stamp(&B.attempts, t, 1);
    if (!p->first_done) {
      p->first_done = 1;
      p->first_attempt = t;
    }
  }
  if (st == XMPPUV_STATUS_OFFLINE && !B.done) {
    B.gave_up++;
    fprintf(stderr, "bench-storm-server: a client went offline\n");
  }
  if (p->up && st != XMPPUV_STATUS_ONLINE) {
    p->up = 0;
    B.up--;
    if (B.phase >= 1) {
      double t = since_kill();
      if (B.t_first_down == 0) B.t_first_down = t;
      if (!p->went_down) {
        p->went_down = 1;
        B.downed++;
      }
      stamp(&B.updown, t, -1);
    }
  }
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c, (void)jid;
  if (B.phase >= 1) B.onlines++;
  note_up(ud);
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  (void)c;
  if (B.phase >= 1) B.resumed++;
  note_up(ud);
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *e, void *ud) {
  (void)c, (void)ud;
  if (B.phase >= 1) {
    B.errors_storm++;
    for (size_t i = 0; i < sizeof B.errs / sizeof B.errs[0]; i++)
      if (B.errs[i].count == 0 || B.errs[i].code == e->code) {
        B.errs[i].code = e->code;
        B.errs[i].count++;
        break;
      }
  }
  if (e->code == UV_ECONNREFUSED) B.refused++;
  if (e->fatal) {
    B.fatal++;
    fprintf(stderr, "bench-storm-server: fatal %s %s\n", xmppuv_err_name(e->code),
            e->text ? e->text : "");
  } else if (B.phase == 0) {
    fprintf(stderr, "bench-storm-server: error during the logins: %s %s\n",
            xmppuv_err_name(e->code), e->text ? e->text : "");
  }
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c, (void)s, (void)ud;
  B.acks++;
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  (void)c, (void)s, (void)ud;
  if (B.done) return; /* our own close at the end (nothing should be left) */
  B.fails++;
  if (reason == XMPPUV_ESMFAILED) B.fails_smfailed++;
  else
    fprintf(stderr, "bench-storm-server: fail %s\n", xmppuv_err_name(reason));
}

static void on_reconnecting(xmppuv_client_t *c, unsigned attempt, uint64_t delay_ms, void *ud) {
  (void)c, (void)attempt, (void)delay_ms, (void)ud;
  if (B.phase >= 1) stamp(&B.reconnectings, since_kill(), 1);
}

/* Logins in batches (a first login is PBKDF2 on both sides: a thousand at
 * once only measures the server's patience); then the end conditions. */
static void on_timer(uv_timer_t *t) {
  (void)t;
  double now = bench_now();
  if (B.phase == 0) {
    while (B.started < B.n && B.started - B.up < B.parallel) {
      if (xmppuv_client_start(B.peers[B.started].c) != 0) bench_die("client_start");
      B.started++;
    }
  }
  if (B.phase == 2 && B.acks + B.fails >= B.sent) {
    B.t_all_reported = now;
    finish();
    return;
  }
  if (now - B.t_start > B.timeout_s) {
    fprintf(stderr,
            "bench-storm-server: timed out in phase %d (%u of %u up, %u acks + %u fails of "
            "%u sent)\n",
            B.phase, B.up, B.n, B.acks, B.fails, B.sent);
    status = 1;
    finish();
  }
}

/* ---- the report ------------------------------------------------------------------------- */

static int cmp_stamp(const void *x, const void *y) {
  double a = ((const stamp_t *)x)->t, b = ((const stamp_t *)y)->t;
  return a < b ? -1 : a > b;
}

/* Counts per BIN_MS bin of s over [0, end). */
static unsigned *bins_of(const stamps_t *s, size_t nbins) {
  unsigned *b = calloc(nbins ? nbins : 1, sizeof *b);
  for (size_t i = 0; i < s->n; i++) {
    if (s->v[i].t < 0) continue;
    size_t k = (size_t)(s->v[i].t * 1000 / BIN_MS);
    if (k < nbins) b[k]++;
  }
  return b;
}

static void mean_sd(const double *v, size_t n, double *mean, double *sd) {
  double m = 0, q = 0;
  for (size_t i = 0; i < n; i++) m += v[i];
  m = n ? m / (double)n : 0;
  for (size_t i = 0; i < n; i++) q += (v[i] - m) * (v[i] - m);
  *mean = m;
  *sd = n > 1 ? sqrt(q / (double)(n - 1)) : 0;
}

static void plot(const char *data, const char *png, double t_ready, double t_end) {
  FILE *g = popen("gnuplot", "w");
  if (g == NULL) {
    fprintf(stderr, "bench-storm-server: gnuplot: %s\n", strerror(errno));
    return;
  }
  fprintf(g,
          "set terminal pngcairo size 900,500 noenhanced font ',10'\n"
          "set output '%s'\n"
          "set title '%u xmppuv clients on one loop, %s %s killed at t = 0 and restarted "
          "(answering at %.2f s)'\n"
          "set xlabel 'seconds since the kill'\n"
          "set ylabel 'clients online'\n"
          "set y2label 'connection attempts per %d ms'\n"
          "set yrange [0:%u]\n"
          "set y2range [0:*]\n"
          "set ytics nomirror\n"
          "set y2tics\n"
          "set xrange [0:%.2f]\n"
          "set key right center opaque box\n"
          "set grid\n"
          "set style fill solid 0.4 noborder\n"
          "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead dashtype 2\n"
          "set label 'server answers again' at %.3f, graph 0.95 offset 0.5, 0\n"
          "plot '%s' index 1 using ($1+%.3f):2 axes x1y2 with boxes title 'attempts', "
          "'' index 0 using 1:2 with steps lw 2 title 'online'\n",
          png, B.n, B.kind, B.direct ? "(direct TLS)" : "(STARTTLS)", t_ready, BIN_MS,
          B.n + B.n / 20, t_end + TICK_MS / 1000.0, t_ready, t_ready, t_ready, data, BIN_MS / 2000.0);
  int rc = pclose(g);
  if (rc != 0) fprintf(stderr, "bench-storm-server: gnuplot exited with %d\n", rc);
}

static void report(void) {
  double t_ready = B.t_ready - B.t_kill;
  double t_online = B.phase == 2 ? B.t_all_online - B.t_kill : -1;
  double end = t_online > 0 ? t_online : since_kill();
  size_t nbins = (size_t)ceil(end * 1000 / BIN_MS);
  unsigned *bins = bins_of(&B.attempts, nbins);
  unsigned bin_max = 0;
  double *bd = calloc(nbins ? nbins : 1, sizeof *bd);
  for (size_t i = 0; i < nbins; i++) {
    bd[i] = bins[i];
    if (bins[i] > bin_max) bin_max = bins[i];
  }
  double bin_mean, bin_sd;
  mean_sd(bd, nbins, &bin_mean, &bin_sd);
  double *first = calloc(B.n, sizeof *first);
  size_t nfirst = 0;
  for (unsigned i = 0; i < B.n; i++)
    if (B.peers[i].first_done) first[nfirst++] = B.peers[i].first_attempt;
  double first_mean, first_sd;
  mean_sd(first, nfirst, &first_mean, &first_sd);
  unsigned *rbins = bins_of(&B.reconnectings, nbins);
  unsigned rbin_max = 0;
  for (size_t i = 0; i < nbins; i++)
    if (rbins[i] > rbin_max) rbin_max = rbins[i];

  const char *data = B.data;
  if (data != NULL) {
    FILE *f = fopen(data, "w");
    if (f == NULL) {
      fprintf(stderr, "bench-storm-server: %s: %s\n", data, strerror(errno));
      data = NULL;
    } else {
      qsort(B.updown.v, B.updown.n, sizeof *B.updown.v, cmp_stamp);
      fprintf(f, "# %u clients, %s, server killed at t = 0, answering again at %.3f s\n", B.n,
              B.kind, t_ready);
      fprintf(f, "# index 0: seconds since the kill, clients online (every %d ms)\n", TICK_MS);
      int online = (int)B.n;
      size_t k = 0;
      for (size_t tick = 0;; tick++) {
        double t = (double)tick * TICK_MS / 1000;
        while (k < B.updown.n && B.updown.v[k].t <= t) online += B.updown.v[k++].delta;
        fprintf(f, "%.3f %d\n", t, online);
        if (t >= end) break;
      }
      fprintf(f, "\n\n# index 1: bin start (s), connection attempts, reconnecting events "
                 "(per %d ms)\n", BIN_MS);
      for (size_t i = 0; i < nbins; i++)
        fprintf(f, "%.3f %u %u\n", (double)i * BIN_MS / 1000, bins[i], rbins[i]);
      fclose(f);
    }
  }
  if (B.plot != NULL && data != NULL) plot(data, B.plot, t_ready, end);

  printf("RESULT server=%s clients=%u users=%u tls=%s resend_on_failed=%d login_s=%.3f "
         "down_s=%.3f first_down_s=%.3f server_ready_s=%.3f online_s=%.3f "
         "online_after_ready_s=%.3f reported_s=%.3f max_iter_ms=%.2f max_iter_cpu_ms=%.2f "
         "login_max_iter_ms=%.2f login_max_iter_cpu_ms=%.2f attempts=%zu refused=%u "
         "reconnecting=%zu bin_ms=%d attempts_bin_max=%u attempts_bin_sd=%.2f "
         "attempts_bin_mean=%.2f reconnecting_bin_max=%u first_attempt_mean_s=%.3f "
         "first_attempt_sd_ms=%.1f onlines=%u resumed=%u sent=%u send_errors=%u acks=%u "
         "acks_before_kill=%u fails=%u fails_esmfailed=%u fatal=%u gave_up=%u "
         "offline_end=%u loop_cpu_s=%.3f server_cpu_s=%.3f max_iter_at_s=%.3f plot=%s "
         "data=%s errors=",
         B.kind, B.n, B.users, B.direct ? "direct" : "starttls", B.resend,
         B.t_logged_in - B.t_start, B.t_killed - B.t_kill, B.t_first_down, t_ready, t_online,
         t_online > 0 ? t_online - t_ready : -1,
         B.t_all_reported > 0 ? B.t_all_reported - B.t_kill : -1, B.max_iter[1] * 1e3,
         B.max_iter_cpu[1] * 1e3, B.max_iter[0] * 1e3, B.max_iter_cpu[0] * 1e3, B.attempts.n,
         B.refused, B.reconnectings.n, BIN_MS, bin_max, bin_sd, bin_mean, rbin_max, first_mean,
         first_sd * 1e3, B.onlines, B.resumed, B.sent, B.send_errors, B.acks,
         B.acks_before_kill, B.fails, B.fails_smfailed, B.fatal, B.gave_up, B.offline_end,
         thread_cpu(), B.server_cpu_s, B.max_iter_at, B.plot && data ? B.plot : "none", data ? data : "none");
  for (size_t i = 0; i < sizeof B.errs / sizeof B.errs[0] && B.errs[i].count; i++)
    printf("%s%s:%u", i ? "," : "", xmppuv_err_name(B.errs[i].code), B.errs[i].count);
  if (B.errs[0].count == 0) printf("none");
  printf(" attempts_hist=");
  for (size_t i = 0; i < nbins; i++) printf("%s%u", i ? "," : "", bins[i]);
  printf("\n");
  fflush(stdout);
  /* Every client back, every message reported exactly once, nobody gave
   * up. Fails are a failure with sm_resend_on_failed; with the library
   * default (--no-resend) what the lost session had not acked fails with
   * ESMFAILED, as documented, and only another reason is a failure. */
  if (t_online < 0 || B.acks + B.fails != B.sent || B.fatal || B.gave_up || B.offline_end ||
      B.send_errors || (B.resend ? B.fails != 0 : B.fails != B.fails_smfailed))
    status = 1;
  free(bins);
  free(rbins);
  free(bd);
  free(first);
}

static void bench(void) {
  if (xmppuv_test_server_start(B.kind, 60, &B.srv) != 0) {
    fprintf(stderr, "bench-storm-server: %s did not start\n", B.kind);
    status = 1;
    return;
  }
  B.loop = uv_default_loop();
  if (uv_loop_configure(B.loop, UV_METRICS_IDLE_TIME) != 0) bench_die("UV_METRICS_IDLE_TIME");
  static const char *const names[] = {"alice", "bob", "carol", "dave"};
  xmppuv_client_callbacks_t cbs;
  xmppuv_client_callbacks_init(&cbs);
  cbs.status = on_status;
  cbs.online = on_online;
  cbs.resumed = on_resumed;
  cbs.error = on_error;
  cbs.ack = on_ack;
  cbs.fail = on_fail;
  cbs.reconnecting = on_reconnecting;
  B.peers = calloc(B.n, sizeof *B.peers);
  for (unsigned i = 0; i < B.n; i++) {
    const char *user = names[i % B.users];
    snprintf(B.jids[i % B.users], sizeof B.jids[0], "%s@%s", user, B.srv.domain);
    xmppuv_client_options_t o;
    xmppuv_client_options_init(&o);
    /* No resource: Bind2 has the server make one per client. */
    o.jid = B.jids[i % B.users];
    o.password = xmppuv_test_password(user);
    o.host = "127.0.0.1";
    o.port = B.direct ? B.srv.direct_tls_port : B.srv.port;
    o.tls = B.direct ? XMPPUV_TLS_DIRECT : XMPPUV_TLS_STARTTLS;
    o.ca_file = B.srv.ca_file;
    o.sm_resend_on_failed = B.resend;
    o.log_level = XMPPUV_LOG_NONE;
    if (xmppuv_client_new(B.loop, &o, &cbs, &B.peers[i], &B.peers[i].c) != 0)
      bench_die("client_new");
  }
  uv_sem_init(&B.sent2, 0);
  uv_async_init(B.loop, &B.async, on_async);
  uv_check_init(B.loop, &B.check);
  uv_check_start(&B.check, on_check);
  uv_timer_init(B.loop, &B.timer);
  B.t_start = bench_now();
  uv_timer_start(&B.timer, on_timer, 0, 10);
  uv_run(B.loop, UV_RUN_DEFAULT);
  if (B.thread_started) {
    if (B.seen_stage < 1) uv_sem_post(&B.sent2); /* never wait on a finished loop */
    uv_thread_join(&B.thread);
  }
  report();
  uv_sem_destroy(&B.sent2);
  for (int i = 0; i < 3; i++)
    if (uv_loop_close(B.loop) == 0) break;
  xmppuv_test_server_stop(&B.srv);
  free(B.peers);
  free(B.attempts.v);
  free(B.reconnectings.v);
  free(B.updown.v);
}

START_TEST(bench_storm_server) { bench(); }
END_TEST

int main(int argc, char **argv) {
  B.kind = "ejabberd";
  B.n = 1000;
  B.users = 4;
  B.parallel = 100;
  B.timeout_s = 300;
  B.resend = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) B.kind = argv[++i];
    else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
      B.n = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--users") == 0 && i + 1 < argc)
      B.users = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc)
      B.direct = strcmp(argv[++i], "direct") == 0;
    else if (strcmp(argv[i], "--no-resend") == 0) B.resend = 0;
    else if (strcmp(argv[i], "--login-parallel") == 0 && i + 1 < argc)
      B.parallel = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--timeout-s") == 0 && i + 1 < argc)
      B.timeout_s = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--plot") == 0 && i + 1 < argc) B.plot = argv[++i];
    else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) B.data = argv[++i];
    else {
      fprintf(stderr,
              "usage: bench-storm-server [--server ejabberd|prosody] [--clients N] "
              "[--users 1-4] [--tls starttls|direct] [--no-resend] [--login-parallel K] "
              "[--timeout-s T] [--plot FILE.png] [--data FILE]\n");
      return 2;
    }
  }
  if (B.n == 0 || B.users < 1 || B.users > 4 || B.parallel == 0) {
    fprintf(stderr, "bench-storm-server: --clients, --users 1-4 and --login-parallel > 0\n");
    return 2;
  }
  static char data[1024];
  if (B.data == NULL && B.plot != NULL) {
    snprintf(data, sizeof data, "%s", B.plot);
    char *dot = strrchr(data, '.');
    char *slash = strrchr(data, '/');
    if (dot != NULL && (slash == NULL || dot > slash)) *dot = '\0';
    if (strlen(data) + 4 < sizeof data) strcat(data, ".dat");
    B.data = data;
  }
  /* Two descriptors a client at most, and the server inherits the limit. */
  bench_raise_nofile((long)B.n * 3 + 256);
  Suite *suite = suite_create("bench-storm-server");
  TCase *tc = tcase_create("storm");
  tcase_set_timeout(tc, 3600);
  tcase_add_test(tc, bench_storm_server);
  suite_add_tcase(suite, tc);
  SRunner *sr = srunner_create(suite);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_SILENT);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 || status != 0;
}
