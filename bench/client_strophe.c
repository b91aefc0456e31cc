/* The libstrophe peer: the same workloads through libstrophe's API (built
 * only when libstrophe-dev is installed). Our own small program.
 *
 *   bench-strophe --workload firehose|burst|idle|resume --port P [--n N]
 *                 [--m M] [--tls CA_FILE] [--settle-ms T]
 *
 * libstrophe (0.12) enables XEP-0198 by itself when the server offers it,
 * answers <r/>, and requests an ack after every stanza it sends; it has no
 * per-stanza ack event, so burst counts the server's <a/> elements through
 * a handler on urn:xmpp:sm:3 and is done when an <a/>'s h reaches N. Its
 * event loop is select(), so it cannot watch descriptors past FD_SETSIZE
 * (1024): idle with more connections than that is refused here. */
#include <inttypes.h>
#include <strophe.h>
#include <sys/select.h>

#include "common.h"

#define NS_SM "urn:xmpp:sm:3"

static struct {
  const char *workload;
  int port;
  uint64_t n;
  unsigned m, settle_ms, parallel;
  const char *ca_file;
  xmpp_ctx_t *ctx;
  xmpp_conn_t **conns;
  unsigned started, online;
  uint64_t received, sent, acked_h;
  double t0, t1, cpu0, cpu1;
  long rss0, rss1;
  double heap0, heap1, setup_cpu;
  int done, stop;
  double settle_at;
  /* resume */
  uint64_t resumes;
  double lost_at;
  double *resume_ms;
} G;

static void mark_start(void) {
  G.t0 = bench_now();
  G.cpu0 = bench_cpu();
}

static void mark_end(void) {
  G.t1 = bench_now();
  G.cpu1 = bench_cpu();
  G.done = 1;
}

static void send_message(xmpp_conn_t *conn) {
  xmpp_stanza_t *m = xmpp_message_new(G.ctx, "chat", BENCH_PEER, NULL);
  xmpp_message_set_body(m, BENCH_BODY);
  xmpp_send(conn, m);
  xmpp_stanza_release(m);
  G.sent++;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *s, void *ud) {
  (void)s, (void)ud;
  if (++G.received == G.n) {
    mark_end();
    (void)conn;
    G.stop = 1; /* disconnect after this read: the <r/> behind it is answered */
  }
  return 1;
}

static int on_a(xmpp_conn_t *conn, xmpp_stanza_t *s, void *ud) {
  (void)conn, (void)ud;
  const char *h = xmpp_stanza_get_attribute(s, "h");
  if (h != NULL) {
    uint64_t v = strtoull(h, NULL, 10);
    if (v > G.acked_h) G.acked_h = v;
    if (G.acked_h >= G.n && !G.done) {
      mark_end();
      G.stop = 1;
    }
  }
  return 1;
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *ud) {
  (void)error, (void)stream_error, (void)ud;
  int resume = strcmp(G.workload, "resume") == 0;
  if (status == XMPP_CONN_CONNECT) {
    if (resume) {
      if (G.resumes > 0) G.resume_ms[G.resumes - 1] = (bench_now() - G.lost_at) * 1000.0;
      if (G.resumes == G.n) {
        mark_end();
        G.stop = 1;
        return;
      }
      if (G.resumes++ == 0) mark_start();
      send_message(conn);
      return;
    }
    G.online++;
    if (strcmp(G.workload, "idle") == 0) {
      if (G.online == G.m) G.settle_at = bench_now() + G.settle_ms / 1000.0;
      return;
    }
    mark_start();
    if (strcmp(G.workload, "firehose") == 0)
      xmpp_handler_add(conn, on_message, NULL, "message", NULL, NULL);
    if (strcmp(G.workload, "burst") == 0) xmpp_handler_add(conn, on_a, NS_SM, "a", NULL, NULL);
  } else if (status == XMPP_CONN_DISCONNECT || status == XMPP_CONN_FAIL) {
    if (resume && !G.done) {
      /* The reset: connect again with the saved SM state (libstrophe
       * resumes when the connection object keeps its SM state). */
      G.lost_at = bench_now();
      if (xmpp_connect_client(conn, "127.0.0.1", (unsigned short)G.port, conn_handler, NULL) !=
          XMPP_EOK)
        bench_die("reconnect failed");
      return;
    }
    if (!G.done) bench_die("disconnected before the workload finished (error %d)", error);
  }
}

static xmpp_conn_t *new_conn(void) {
  xmpp_conn_t *conn = xmpp_conn_new(G.ctx);
  xmpp_conn_set_jid(conn, BENCH_USER "@" BENCH_DOMAIN "/bench");
  xmpp_conn_set_pass(conn, BENCH_PASSWORD);
  if (G.ca_file != NULL) {
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_MANDATORY_TLS);
    xmpp_conn_set_cafile(conn, G.ca_file);
  } else {
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_DISABLE_TLS);
  }
  if (xmpp_connect_client(conn, "127.0.0.1", (unsigned short)G.port, conn_handler, NULL) !=
      XMPP_EOK)
    bench_die("xmpp_connect_client failed");
  G.conns[G.started++] = conn;
  return conn;
}

int main(int argc, char **argv) {
  G.workload = "firehose";
  G.n = 100000;
  G.m = 1;
  G.settle_ms = 2500;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc) G.workload = argv[++i];
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) G.port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) G.n = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--m") == 0 && i + 1 < argc) G.m = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc) G.ca_file = argv[++i];
    else if (strcmp(argv[i], "--settle-ms") == 0 && i + 1 < argc) G.settle_ms = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--parallel") == 0 && i + 1 < argc) G.parallel = (unsigned)atoi(argv[++i]);
    else bench_die("usage: bench-strophe --workload W --port P [--n N] [--m M] [--tls CA] "
                   "[--parallel P]");
  }
  int idle = strcmp(G.workload, "idle") == 0;
  if (!idle) G.m = 1;
  if (idle && G.m + 16 > FD_SETSIZE) {
    printf("SKIP client=strophe workload=idle m=%u reason=select()_FD_SETSIZE_%d\n", G.m,
           FD_SETSIZE);
    return 0;
  }
  bench_raise_nofile((long)G.m + 64);
  xmpp_initialize();
  G.ctx = xmpp_ctx_new(NULL, NULL);
  G.conns = calloc(G.m, sizeof *G.conns);
  if (strcmp(G.workload, "resume") == 0) G.resume_ms = calloc(G.n + 1, sizeof(double));
  G.rss0 = bench_rss_kb();
  G.heap0 = bench_heap_kb();
  if (idle) mark_start();
  /* Idle: --parallel 0 starts all M at once, else at most P negotiate at a
   * time, as the other clients do. */
  unsigned window = G.parallel == 0 ? G.m : G.parallel;
  if (!idle) new_conn();
  while (!G.stop) {
    if (idle) {
      while (G.started < G.m && G.started - G.online < window) new_conn();
      if (G.online == G.m && G.setup_cpu == 0) G.setup_cpu = bench_cpu() - G.cpu0;
      if (G.settle_at > 0 && bench_now() >= G.settle_at) {
        mark_end();
        G.rss1 = bench_rss_kb();
        G.heap1 = bench_heap_kb();
        break;
      }
    }
    if (strcmp(G.workload, "burst") == 0 && G.online > 0) {
      /* As fast as the library takes them, keeping its send queue short. */
      while (G.sent < G.n && xmpp_conn_send_queue_len(G.conns[0]) < 256)
        send_message(G.conns[0]);
    }
    xmpp_run_once(G.ctx, 1);
  }
  const char *tls = G.ca_file ? "1" : "0";
  double wall = G.t1 - G.t0, cpu = G.cpu1 - G.cpu0;
  if (idle) {
    printf("RESULT client=strophe workload=idle tls=%s m=%u online=%u wall_s=%.4f cpu_s=%.4f "
           "rss_delta_kb=%ld kb_per_conn=%.2f cpu_ms_per_conn=%.3f heap_kb_per_conn=%.2f "
           "setup_cpu_ms_per_conn=%.3f parallel=%u\n",
           tls, G.m, G.online, wall, cpu, G.rss1 - G.rss0, (double)(G.rss1 - G.rss0) / G.m,
           cpu * 1000.0 / G.m, (G.heap1 - G.heap0) / G.m, G.setup_cpu * 1000.0 / G.m,
           G.parallel);
  } else if (strcmp(G.workload, "resume") == 0) {
    double *v = G.resume_ms;
    size_t k = (size_t)G.resumes;
    for (size_t i = 1; i < k; i++)
      for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
        double x = v[j];
        v[j] = v[j - 1];
        v[j - 1] = x;
      }
    printf("RESULT client=strophe workload=resume tls=%s n=%zu wall_s=%.4f cpu_s=%.4f "
           "resume_ms_median=%.3f resume_ms_min=%.3f resume_ms_max=%.3f cpu_ms_per_resume=%.3f\n",
           tls, k, wall, cpu, k ? v[k / 2] : 0.0, k ? v[0] : 0.0, k ? v[k - 1] : 0.0,
           k ? cpu * 1000.0 / (double)k : 0.0);
  } else {
    uint64_t count = strcmp(G.workload, "burst") == 0 ? G.acked_h : G.received;
    printf("RESULT client=strophe workload=%s tls=%s n=%" PRIu64 " wall_s=%.4f cpu_s=%.4f\n",
           G.workload, tls, count, wall, cpu);
  }
  fflush(stdout);
  /* Close: answer what is still buffered (the last <r/>), then a clean
   * disconnect. */
  for (int k = 0; k < 20; k++) xmpp_run_once(G.ctx, 1);
  for (unsigned i = 0; i < G.started; i++) xmpp_disconnect(G.conns[i]);
  for (int k = 0; k < 50; k++) xmpp_run_once(G.ctx, 1);
  for (unsigned i = 0; i < G.started; i++) xmpp_conn_release(G.conns[i]);
  xmpp_ctx_free(G.ctx);
  xmpp_shutdown();
  return 0;
}
