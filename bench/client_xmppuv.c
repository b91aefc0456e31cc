/* The xmppuv benchmark client: one workload against bench-server, through
 * the public API only, and one RESULT line.
 *
 *   bench-xmppuv --workload firehose|burst|idle|resume --port P
 *                [--n N] [--m M] [--tls CA_FILE] [--settle-ms T]
 *   bench-xmppuv --workload W --url ws://127.0.0.1:P/ws [...]
 *
 * --url: over WebSocket (RFC 7395; plain ws://, bench-server --ws), the
 * URL given as the url option, host and port unset.
 *
 * firehose  count N inbound messages in a message handler (the library
 *           answers the server's <r/>), then stop (the final <a/> says N)
 * burst     send N messages with SM on as fast as the queue takes them
 *           (refill from the ack events); done when N acks were seen
 * idle      M clients on one loop, all online with SM; after --settle-ms
 *           (the server's <r/> answered) report per client the RSS delta,
 *           the live heap (every allocation of the process: mallinfo2) and
 *           the CPU time until all were online. --parallel 0 (default)
 *           starts all M at once; --parallel P keeps at most P negotiating
 *           (the next starts as one gets online). --timeouts-ms T sets the
 *           connect, negotiation and SM answer timeouts (default: the
 *           library's)
 * queue     no server: N messages sent while connecting are held in the SM
 *           queue (sm_queue_max = N); report the live heap per stanza,
 *           the library's own allocations (counting allocator) and the
 *           process's (mallinfo2)
 * resume    N times: the server resets the connection, the client resumes;
 *           report the time from the reset to `resumed` minus the
 *           reconnect delay the library announced
 *
 * The phase measured starts at `online` (CPU, wall time, allocator calls
 * through a counting allocator given to xmppuv_replace_allocator). */
#include <inttypes.h>
#include <uv.h>

#include "common.h"
#include "xmppuv.h"

typedef struct bench bench_t;

typedef struct slot {
  bench_t *b;
  xmppuv_client_t *client;
  int online;
  int closed;
} slot_t;

struct bench {
  uv_loop_t *loop;
  const char *workload;
  int port;
  const char *ca_file;
  const char *url;
  uint64_t n;
  unsigned m;
  unsigned settle_ms;
  unsigned parallel;
  unsigned timeouts_ms; /* connect, negotiation, SM answer; 0: the defaults */
  double heap0, heap1, setup_cpu;
  int64_t lib_live1;

  slot_t *slots;
  unsigned started, online, closed;
  uint64_t received, sent, acked, failed;
  double t0, t1, cpu0, cpu1;
  uint64_t allocs0, allocs1;
  long rss0, rss1;
  int done;
  uv_timer_t timer;

  /* resume */
  double lost_at;
  double reconnect_delay_s;
  double *resume_ms;
  uint64_t resumes;
};

static bench_t B;

/* ---- counting allocator -------------------------------------------------- */

static uint64_t n_malloc, n_realloc, n_free;
static int64_t live_bytes; /* the library's, as malloc_usable_size counts them */
static int track_live;      /* idle and queue only: not in the per-stanza figures */

static void *count_malloc(size_t n) {
  n_malloc++;
  void *p = malloc(n);
  if (track_live && p != NULL) live_bytes += (int64_t)malloc_usable_size(p);
  return p;
}
static void *count_realloc(void *p, size_t n) {
  n_realloc++;
  size_t before = track_live && p != NULL ? malloc_usable_size(p) : 0;
  void *q = realloc(p, n);
  if (track_live && q != NULL) live_bytes += (int64_t)malloc_usable_size(q) - (int64_t)before;
  return q;
}
static void count_free(void *p) {
  if (p != NULL) {
    n_free++;
    if (track_live) live_bytes -= (int64_t)malloc_usable_size(p);
  }
  free(p);
}
static uint64_t allocs(void) { return n_malloc + n_realloc; }

/* ---- helpers ------------------------------------------------------------- */

static void mark_start(void) {
  B.t0 = bench_now();
  B.cpu0 = bench_cpu();
  B.allocs0 = allocs();
}

static void mark_end(void) {
  B.t1 = bench_now();
  B.cpu1 = bench_cpu();
  B.allocs1 = allocs();
  B.done = 1;
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  slot_t *s = ud;
  s->closed = 1;
  B.closed++;
  if (B.closed == B.started) uv_timer_stop(&B.timer);
}

static void close_all(void) {
  for (unsigned i = 0; i < B.started; i++)
    if (B.slots[i].client != NULL) {
      xmppuv_client_close(B.slots[i].client, on_closed);
      B.slots[i].client = NULL;
    }
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t st, void *ud) {
  slot_t *s = ud;
  (void)c;
  if (st == XMPPUV_STATUS_DISCONNECTING && B.lost_at == 0) B.lost_at = bench_now();
  if (st == XMPPUV_STATUS_OFFLINE && B.done && s->client != NULL) {
    xmppuv_client_close(s->client, on_closed);
    s->client = NULL;
  }
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *e, void *ud) {
  (void)c, (void)ud;
  if (B.lost_at == 0) B.lost_at = bench_now();
  if (strcmp(B.workload, "resume") != 0 || e->fatal)
    fprintf(stderr, "bench-xmppuv: error %s%s%s\n", xmppuv_err_name(e->code),
            e->condition ? " " : "", e->condition ? e->condition : "");
}

static void on_reconnecting(xmppuv_client_t *c, unsigned attempt, uint64_t delay_ms, void *ud) {
  (void)c, (void)attempt, (void)ud;
  B.reconnect_delay_s += (double)delay_ms / 1000.0;
}

/* ---- firehose -------------------------------------------------------------- */

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)s, (void)ud;
  if (++B.received == B.n) {
    mark_end();
    xmppuv_client_stop(c);
  }
  return XMPPUV_HANDLED;
}

/* ---- burst ---------------------------------------------------------------------- */

static int send_one(xmppuv_client_t *c) {
  xmppuv_stanza_t *m;
  if (xmppuv_message_new(BENCH_PEER, "chat", BENCH_BODY, &m) != 0) bench_die("message_new");
  int rc = xmppuv_client_send(c, m);
  xmppuv_stanza_unref(m);
  if (rc == 0) B.sent++;
  return rc;
}

/* Build a message only when the queue has room for it (sm_queue_max is
 * left at its default, 4096): a stanza refused with ENOBUFS would be built
 * for nothing. */
#define QUEUE_MAX 4096u

static void fill(xmppuv_client_t *c) {
  while (B.sent < B.n && xmppuv_client_sm_queued(c) < QUEUE_MAX) {
    int rc = send_one(c);
    if (rc == XMPPUV_ENOBUFS) return;
    if (rc != 0) bench_die("send: %s", xmppuv_strerror(rc));
  }
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)s, (void)ud;
  if (++B.acked == B.n) {
    mark_end();
    xmppuv_client_stop(c);
    return;
  }
  fill(c);
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  (void)c, (void)s, (void)ud;
  B.failed++;
  if (!B.done) fprintf(stderr, "bench-xmppuv: a stanza failed: %s\n", xmppuv_err_name(reason));
}

/* ---- idle ------------------------------------------------------------------------ */

static void start_next(void);

static void on_settled(uv_timer_t *t) {
  (void)t;
  mark_end();
  B.rss1 = bench_rss_kb();
  B.heap1 = bench_heap_kb();
  B.lib_live1 = live_bytes;
  close_all();
}

/* ---- resume ---------------------------------------------------------------------- */

static void resume_step(xmppuv_client_t *c) {
  if (B.resumes >= B.n) {
    mark_end();
    xmppuv_client_stop(c);
    return;
  }
  B.lost_at = 0;
  B.reconnect_delay_s = 0;
  /* The server resets the connection when this arrives. */
  if (send_one(c) != 0) bench_die("send failed");
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  (void)ud;
  double ms = (bench_now() - B.lost_at - B.reconnect_delay_s) * 1000.0;
  B.resume_ms[B.resumes++] = ms;
  resume_step(c);
}

/* ---- online ---------------------------------------------------------------------- */

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)jid;
  slot_t *s = ud;
  if (s->online) {
    if (strcmp(B.workload, "resume") == 0)
      bench_die("a new session instead of a resumption");
    return;
  }
  s->online = 1;
  B.online++;
  if (strcmp(B.workload, "idle") == 0) {
    if (B.online == B.m) {
      B.setup_cpu = bench_cpu() - B.cpu0;
      /* Everyone is online: let the server's <r/> come and be answered. */
      uv_timer_start(&B.timer, on_settled, B.settle_ms, 0);
    } else if (B.parallel != 0) {
      start_next();
    }
    return;
  }
  mark_start();
  if (strcmp(B.workload, "burst") == 0) fill(c);
  if (strcmp(B.workload, "resume") == 0) resume_step(c);
}

static void start_one(void) {
  slot_t *s = &B.slots[B.started];
  s->b = &B;
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = BENCH_USER "@" BENCH_DOMAIN "/bench";
  o.password = BENCH_PASSWORD;
  if (B.url != NULL) {
    o.url = B.url;
  } else {
    o.host = "127.0.0.1";
    o.port = (unsigned short)B.port;
  }
  o.log_level = XMPPUV_LOG_NONE;
  if (B.ca_file != NULL) {
    o.tls = XMPPUV_TLS_STARTTLS;
    o.ca_file = B.ca_file;
  } else {
    o.tls = XMPPUV_TLS_DISABLED_INSECURE;
  }
  o.reconnect_delay_ms = 1;
  if (B.timeouts_ms != 0) {
    o.connect_timeout_ms = o.negotiation_timeout_ms = o.sm_wait_timeout_ms = B.timeouts_ms;
  }
  xmppuv_client_callbacks_t cb;
  xmppuv_client_callbacks_init(&cb);
  cb.status = on_status;
  cb.online = on_online;
  cb.error = on_error;
  cb.ack = on_ack;
  cb.fail = on_fail;
  cb.resumed = on_resumed;
  cb.reconnecting = on_reconnecting;
  if (strcmp(B.workload, "burst") != 0) cb.ack = NULL;
  int rc = xmppuv_client_new(B.loop, &o, &cb, s, &s->client);
  if (rc != 0) bench_die("client_new: %s", xmppuv_strerror(rc));
  if (strcmp(B.workload, "firehose") == 0)
    xmppuv_client_handler_add(s->client, "message", NULL, NULL, on_message, NULL, NULL);
  B.started++;
  rc = xmppuv_client_start(s->client);
  if (rc != 0) bench_die("client_start: %s", xmppuv_strerror(rc));
}

/* ---- queue ----------------------------------------------------------------------- */

static void queue_workload(void) {
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = BENCH_USER "@" BENCH_DOMAIN "/bench";
  o.password = BENCH_PASSWORD;
  o.host = "127.0.0.1";
  o.port = 9; /* discard: nothing listens */
  o.tls = XMPPUV_TLS_DISABLED_INSECURE;
  o.log_level = XMPPUV_LOG_NONE;
  o.sm_queue_max = (size_t)B.n;
  xmppuv_client_callbacks_t cb;
  xmppuv_client_callbacks_init(&cb);
  cb.fail = on_fail;
  xmppuv_client_t *c;
  if (xmppuv_client_new(B.loop, &o, &cb, NULL, &c) != 0) bench_die("client_new");
  /* Started (sends are refused before) towards a port nothing listens on:
   * the loop does not run until the measurement is over, so every stanza
   * is held. */
  if (xmppuv_client_start(c) != 0) bench_die("client_start");
  int64_t lib0 = live_bytes;
  double heap0 = bench_heap_kb();
  B.done = 1; /* fail events from the close below are expected */
  mark_start();
  for (uint64_t i = 0; i < B.n; i++)
    if (send_one(c) != 0) bench_die("send %" PRIu64 " refused", i);
  mark_end();
  if (xmppuv_client_sm_queued(c) != B.n) bench_die("queued %zu, want %" PRIu64,
                                                   xmppuv_client_sm_queued(c), B.n);
  double per_lib = (double)(live_bytes - lib0) / (double)B.n;
  double per_heap = (bench_heap_kb() - heap0) * 1024.0 / (double)B.n;
  printf("RESULT client=xmppuv workload=queue tls=0 n=%" PRIu64 " wall_s=%.4f cpu_s=%.4f "
         "bytes_per_stanza=%.1f lib_bytes_per_stanza=%.1f allocs_per_stanza=%.3f\n",
         B.n, B.t1 - B.t0, B.cpu1 - B.cpu0, per_heap, per_lib,
         (double)(B.allocs1 - B.allocs0) / (double)B.n);
  xmppuv_client_close(c, NULL);
  uv_run(B.loop, UV_RUN_DEFAULT);
}

static void start_next(void) {
  if (B.started < B.m) start_one();
}

int main(int argc, char **argv) {
  B.workload = "firehose";
  B.n = 100000;
  B.m = 1;
  B.settle_ms = 2500;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc) B.workload = argv[++i];
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) B.port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) B.n = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--m") == 0 && i + 1 < argc) B.m = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc) B.ca_file = argv[++i];
    else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) B.url = argv[++i];
    else if (strcmp(argv[i], "--settle-ms") == 0 && i + 1 < argc) B.settle_ms = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--parallel") == 0 && i + 1 < argc) B.parallel = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--timeouts-ms") == 0 && i + 1 < argc) B.timeouts_ms = (unsigned)atoi(argv[++i]);
    else bench_die("usage: bench-xmppuv --workload W (--port P | --url ws://HOST:P/PATH) [--n N] "
                   "[--m M] [--tls CA] [--settle-ms T] [--parallel P] [--timeouts-ms T]");
  }
  track_live = strcmp(B.workload, "queue") == 0 || strcmp(B.workload, "idle") == 0;
  if (strcmp(B.workload, "queue") == 0) {
    xmppuv_replace_allocator(count_malloc, count_realloc, count_free);
    B.loop = uv_default_loop();
    queue_workload();
    uv_loop_close(B.loop);
    return 0;
  }
  if (B.port == 0 && B.url == NULL) bench_die("--port or --url is required");
  if (B.url != NULL && B.ca_file != NULL) bench_die("--url is plain ws:// only (no --tls)");
  int idle = strcmp(B.workload, "idle") == 0;
  if (!idle) B.m = 1;
  long nofile = bench_raise_nofile((long)B.m + 64);
  if (idle && nofile < (long)B.m + 16)
    bench_die("RLIMIT_NOFILE hard limit %ld is too low for %u connections", nofile, B.m);
  xmppuv_replace_allocator(count_malloc, count_realloc, count_free);
  B.loop = uv_default_loop();
  uv_timer_init(B.loop, &B.timer);
  B.slots = calloc(B.m, sizeof *B.slots);
  if (strcmp(B.workload, "resume") == 0) B.resume_ms = calloc(B.n + 1, sizeof(double));
  B.rss0 = bench_rss_kb();
  B.heap0 = bench_heap_kb();
  if (idle) {
    unsigned first = B.parallel == 0 || B.parallel > B.m ? B.m : B.parallel;
    mark_start();
    for (unsigned i = 0; i < first; i++) start_one();
  } else {
    start_one();
  }
  uv_run(B.loop, UV_RUN_DEFAULT);
  if (!B.done) bench_die("the workload did not finish");

  const char *tls = B.ca_file ? "1" : B.url ? "ws" : "0";
  double wall = B.t1 - B.t0, cpu = B.cpu1 - B.cpu0;
  if (idle) {
    /* RSS measured at the end of the settle time, before closing. */
    printf("RESULT client=xmppuv workload=idle tls=%s m=%u online=%u wall_s=%.4f cpu_s=%.4f "
           "rss_delta_kb=%ld kb_per_conn=%.2f cpu_ms_per_conn=%.3f allocs_per_conn=%.1f "
           "heap_kb_per_conn=%.2f lib_heap_kb_per_conn=%.2f setup_cpu_ms_per_conn=%.3f "
           "parallel=%u\n",
           tls, B.m, B.online, wall, cpu, B.rss1 - B.rss0,
           (double)(B.rss1 - B.rss0) / B.m, cpu * 1000.0 / B.m,
           (double)(n_malloc + n_realloc - n_free) / B.m, (B.heap1 - B.heap0) / B.m,
           (double)B.lib_live1 / 1024.0 / B.m, B.setup_cpu * 1000.0 / B.m, B.parallel);
  } else if (strcmp(B.workload, "resume") == 0) {
    double *v = B.resume_ms;
    size_t k = (size_t)B.resumes;
    for (size_t i = 1; i < k; i++)
      for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
        double x = v[j];
        v[j] = v[j - 1];
        v[j - 1] = x;
      }
    printf("RESULT client=xmppuv workload=resume tls=%s n=%" PRIu64 " wall_s=%.4f cpu_s=%.4f "
           "resume_ms_median=%.3f resume_ms_min=%.3f resume_ms_max=%.3f cpu_ms_per_resume=%.3f\n",
           tls, B.resumes, wall, cpu, k ? v[k / 2] : 0.0, k ? v[0] : 0.0, k ? v[k - 1] : 0.0,
           k ? cpu * 1000.0 / (double)k : 0.0);
  } else {
    uint64_t count = strcmp(B.workload, "burst") == 0 ? B.acked : B.received;
    printf("RESULT client=xmppuv workload=%s tls=%s n=%" PRIu64 " wall_s=%.4f cpu_s=%.4f "
           "allocs_per_stanza=%.3f\n",
           B.workload, tls, count, wall, cpu,
           (double)(B.allocs1 - B.allocs0) / (double)(count ? count : 1));
  }
  free(B.slots);
  free(B.resume_ms);
  uv_loop_close(B.loop);
  return 0;
}
