/* The connection layer (lib/transport/conn.c over tcp.c): finding the
 * server through real DNS (dnsmasq) or the host override, connecting,
 * carrying bytes in order both ways, ending cleanly. A local libuv server
 * on the test's loop plays the XMPP server's socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "client_rec.h"
#include "dnsmasq.h"
#include "run_until.h"
#include "text.h"
#include "tls_front.h"
#include "tls_peer.h"
#include "transport/conn.h"
#include "transport/tls.h"
#include "util/hostport.h"
#include "xmppuv.h"

/* ---- a local server: echoes, or checks a byte pattern --------------------- */

typedef struct server server_t;

typedef struct peer {
  uv_tcp_t tcp;
  server_t *srv;
  uv_write_t wr;
  int closing;
} peer_t;

struct server {
  uv_tcp_t listen;
  unsigned short port;
  int echo;         /* write back what arrives */
  int close_at_once; /* close each connection as soon as it is accepted */
  unsigned accepted;
  uint64_t received;
  uint64_t pattern_errors; /* bytes that broke the 0,1,2..255 cycle */
  uint64_t next_byte;
  int open_peers;
};

static void on_peer_closed(uv_handle_t *h) {
  peer_t *p = h->data;
  p->srv->open_peers--;
  free(p);
}

static void peer_close(peer_t *p) {
  if (p->closing) return;
  p->closing = 1;
  uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(size);
  buf->len = buf->base ? size : 0;
}

typedef struct echo_req {
  uv_write_t req;
  char *data;
} echo_req_t;

static void on_echo_written(uv_write_t *w, int status) {
  (void)status;
  echo_req_t *e = (echo_req_t *)w;
  free(e->data);
  free(e);
}

static void on_peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  peer_t *p = s->data;
  server_t *srv = p->srv;
  if (n > 0) {
    srv->received += (uint64_t)n;
    for (ssize_t i = 0; i < n; i++) {
      if ((unsigned char)buf->base[i] != (unsigned char)(srv->next_byte & 0xff))
        srv->pattern_errors++;
      srv->next_byte++;
    }
    if (srv->echo) {
      echo_req_t *e = malloc(sizeof *e);
      e->data = buf->base;
      uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
      uv_write(&e->req, s, &b, 1, on_echo_written);
      return;
    }
  }
  free(buf->base);
  if (n < 0) peer_close(p);
}

static void on_connection(uv_stream_t *l, int status) {
  server_t *srv = l->data;
  ck_assert_int_eq(status, 0);
  peer_t *p = calloc(1, sizeof *p);
  p->srv = srv;
  uv_tcp_init(l->loop, &p->tcp);
  p->tcp.data = p;
  srv->open_peers++;
  ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&p->tcp), 0);
  srv->accepted++;
  if (srv->close_at_once) {
    peer_close(p);
    return;
  }
  uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_peer_read);
}

/* Listen on ip ("127.0.0.1", "::1") at port (0: the kernel picks). Returns
 * 0 or the libuv error; on an error the handle is closed (run the loop). */
static int server_listen(uv_loop_t *loop, server_t *srv, const char *ip,
                         unsigned short port) {
  struct sockaddr_storage addr;
  if (strchr(ip, ':') != NULL)
    ck_assert_int_eq(uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&addr), 0);
  else
    ck_assert_int_eq(uv_ip4_addr(ip, port, (struct sockaddr_in *)&addr), 0);
  ck_assert_int_eq(uv_tcp_init(loop, &srv->listen), 0);
  srv->listen.data = srv;
  int rc = uv_tcp_bind(&srv->listen, (const struct sockaddr *)&addr, 0);
  /* libuv may report EADDRINUSE from listen rather than bind. */
  if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->listen, 1024, on_connection);
  if (rc != 0) {
    uv_close((uv_handle_t *)&srv->listen, NULL);
    return rc;
  }
  struct sockaddr_storage got;
  int len = sizeof got;
  uv_tcp_getsockname(&srv->listen, (struct sockaddr *)&got, &len);
  srv->port = ntohs(got.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&got)->sin6_port
                        : ((struct sockaddr_in *)&got)->sin_port);
  return 0;
}

static void server_start(uv_loop_t *loop, server_t *srv) {
  ck_assert_int_eq(server_listen(loop, srv, "127.0.0.1", 0), 0);
}

/* ---- a server that never answers a connect ----------------------------------- */

/* A listening socket with backlog 0 whose accept queue holds one connection
 * that is never accepted. Linux drops every further SYN to it (with the
 * default net.ipv4.tcp_abort_on_overflow = 0), so a connect() there neither
 * succeeds nor fails: it hangs, as towards a host behind a firewall that
 * drops packets. Plain sockets: the test's loop must not accept anything. */
typedef struct hanging {
  int listen_fd;
  int filler_fd; /* the queued connection */
  unsigned short port;
} hanging_t;

/* Returns 0, or an errno value (port in use, ...). */
static int hanging_start(hanging_t *h, const char *ip, unsigned short port) {
  h->listen_fd = h->filler_fd = -1;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ck_assert_int_eq(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
  h->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_msg(h->listen_fd >= 0, "socket: %s", strerror(errno));
  socklen_t len = sizeof sa;
  if (bind(h->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(h->listen_fd, 0) != 0 ||
      getsockname(h->listen_fd, (struct sockaddr *)&sa, &len) != 0) {
    int err = errno;
    close(h->listen_fd);
    h->listen_fd = -1;
    return err;
  }
  h->port = ntohs(sa.sin_port);
  /* The queue has room for this one, so the connect completes at once. */
  h->filler_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_msg(h->filler_fd >= 0, "socket: %s", strerror(errno));
  ck_assert_msg(connect(h->filler_fd, (struct sockaddr *)&sa, sizeof sa) == 0,
                "filling the accept queue of %s:%u: %s", ip, (unsigned)h->port,
                strerror(errno));
  return 0;
}

static void hanging_stop(hanging_t *h) {
  if (h->filler_fd >= 0) close(h->filler_fd);
  if (h->listen_fd >= 0) close(h->listen_fd);
  h->listen_fd = h->filler_fd = -1;
}

/* ---- is the loop ever blocked? ------------------------------------------------ */

/* A 10 ms repeating timer that records the longest real time between two of
 * its runs: a call that blocked the loop shows up as a long gap. Time the
 * thread spent runnable but waiting for a CPU (other processes had it: a
 * busy machine, a second copy of the suite) is not the loop being blocked,
 * so it is taken out of each gap: Linux counts it per thread, as the second
 * field of /proc/thread-self/schedstat. */
typedef struct ticker {
  uv_timer_t timer;
  int schedstat_fd; /* -1: not available, gaps are wall-clock time */
  uint64_t last_ns;
  uint64_t last_wait_ns;
  uint64_t longest_gap_ns;
  uint64_t longest_gap_wait_ns; /* waited for a CPU during that gap */
} ticker_t;

/* Nanoseconds this thread has waited for a CPU since it started (0 if
 * unknown). */
static uint64_t cpu_wait_ns(int fd) {
  char buf[128];
  unsigned long long on_cpu, waited;
  if (fd < 0) return 0;
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  if (sscanf(buf, "%llu %llu", &on_cpu, &waited) != 2) return 0;
  return waited;
}

static void on_tick(uv_timer_t *t) {
  ticker_t *k = t->data;
  uint64_t now = uv_hrtime();
  uint64_t wait = cpu_wait_ns(k->schedstat_fd);
  if (wait < k->last_wait_ns) wait = k->last_wait_ns; /* a failed read */
  uint64_t waited = wait - k->last_wait_ns;
  uint64_t gap = now - k->last_ns;
  gap = gap > waited ? gap - waited : 0;
  if (gap > k->longest_gap_ns) {
    k->longest_gap_ns = gap;
    k->longest_gap_wait_ns = waited;
  }
  k->last_ns = now;
  k->last_wait_ns = wait;
}

static void ticker_start(uv_loop_t *loop, ticker_t *k) {
  memset(k, 0, sizeof *k);
  ck_assert_int_eq(uv_timer_init(loop, &k->timer), 0);
  k->timer.data = k;
  k->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  k->last_wait_ns = cpu_wait_ns(k->schedstat_fd);
  k->last_ns = uv_hrtime();
  ck_assert_int_eq(uv_timer_start(&k->timer, on_tick, 10, 10), 0);
}

/* Stops the ticker and returns the longest gap in milliseconds; *waited_ms
 * is how long the thread waited for a CPU besides, during that gap. */
static uint64_t ticker_stop(ticker_t *k, uint64_t *waited_ms) {
  on_tick(&k->timer); /* the gap up to now counts too */
  uv_close((uv_handle_t *)&k->timer, NULL);
  if (k->schedstat_fd >= 0) close(k->schedstat_fd);
  *waited_ms = k->longest_gap_wait_ns / 1000000u;
  return k->longest_gap_ns / 1000000u;
}

/* ---- log capture ----------------------------------------------------------------- */

static char log_lines[1 << 16];
static size_t log_len;

static void capture_log(void *user_data, xmppuv_log_level_t level, const char *area,
                        const char *message) {
  (void)user_data;
  text_append(log_lines, sizeof log_lines, &log_len, "%s %s: %s\n",
              xmppuv_log_level_name(level), area, message);
}

static const xmppuv__log_t test_log = {capture_log, NULL, XMPPUV_LOG_DEBUG};

/* ---- a connection and what it reported ------------------------------------- */

typedef struct rec {
  xmppuv__conn_t *conn;
  int connected, closed, errors, error;
  uint64_t received;
  char first[64];
  char detail[512]; /* the error's words */
} rec_t;

static void ev_connected(void *ud, int tls) {
  rec_t *r = ud;
  ck_assert_int_eq(tls, 0);
  r->connected++;
}

static void ev_data(void *ud, const char *data, size_t len) {
  rec_t *r = ud;
  if (r->received == 0) snprintf(r->first, sizeof r->first, "%.*s", (int)len, data);
  r->received += len;
}

static void ev_tls_ready(void *ud) { (void)ud; }

static void ev_error(void *ud, int status, const char *detail) {
  rec_t *r = ud;
  r->errors++;
  r->error = status;
  snprintf(r->detail, sizeof r->detail, "%s", detail != NULL ? detail : "");
}

static void ev_closed(void *ud) {
  rec_t *r = ud;
  r->closed++;
}

static const xmppuv__conn_events_t events = {ev_connected, ev_data, ev_tls_ready, ev_error,
                                             ev_closed};

static xmppuv__conn_config_t plain_config(const char *domain, const char *host,
                                          unsigned short port) {
  xmppuv__conn_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.domain = domain;
  cfg.host = host;
  cfg.port = port;
  cfg.tls_mode = XMPPUV_TLS_DISABLED_INSECURE;
  cfg.connect_timeout_ms = 5000;
  return cfg;
}

static void run_until(uv_loop_t *loop, const int *flag, int want) {
  for (int i = 0; i < 200000 && *flag < want; i++) uv_run(loop, UV_RUN_ONCE);
}

static void close_loop(uv_loop_t *loop, server_t *srv) {
  uv_close((uv_handle_t *)&srv->listen, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(srv->open_peers, 0);
  ck_assert_int_eq(uv_loop_close(loop), 0);
}

/* ---- tests ----------------------------------------------------------------------- */

/* Where the server sends us (XEP-0198 location, see-other-host). */
START_TEST(host_and_port_from_the_server_are_split_as_written) {
  static const struct {
    const char *in, *host;
    uint16_t port;
  } cases[] = {
      {"xmpp.example.com:5223", "xmpp.example.com", 5223},
      {"xmpp.example.com", "xmpp.example.com", 0},
      {"192.0.2.7:5222", "192.0.2.7", 5222},
      {"[2001:db8::1]:5223", "[2001:db8::1]", 5223},
      {"[::1]", "[::1]", 0},
      /* A bare IPv6 address has no port in it: not "2001:db8:" port 1. */
      {"2001:db8::1", "2001:db8::1", 0},
      {"::1", "::1", 0},
      /* A port that is no port: the host is kept whole, no port. */
      {"example.com:70000", "example.com:70000", 0},
      {"example.com:0", "example.com:0", 0},
      {"example.com:52x", "example.com:52x", 0},
      {"example.com:", "example.com:", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char host[64];
    uint16_t port = 1;
    xmppuv__split_host_port(cases[i].in, host, sizeof host, &port);
    ck_assert_msg(strcmp(host, cases[i].host) == 0 && port == cases[i].port,
                  "%s: got host %s port %u", cases[i].in, host, (unsigned)port);
  }
}
END_TEST

START_TEST(a_thousand_connections_open_and_close_cleanly) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  srv.echo = 1;
  server_start(&loop, &srv);
  xmppuv__conn_config_t cfg = plain_config("localhost", "127.0.0.1", srv.port);
  /* 1000 connections, 50 at a time, each: connect, a round trip, close
   * (gracefully for half of them, dropped for the other half). */
  for (int batch = 0; batch < 20; batch++) {
    rec_t recs[50];
    memset(recs, 0, sizeof recs);
    for (int i = 0; i < 50; i++)
      ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &recs[i], &recs[i].conn), 0);
    int all = 0;
    for (int spins = 0; spins < 100000 && all < 50; spins++) {
      uv_run(&loop, UV_RUN_ONCE);
      all = 0;
      for (int i = 0; i < 50; i++) {
        if (recs[i].connected == 1 && recs[i].received == 0 && recs[i].first[0] == '\0' &&
            recs[i].errors == 0 && recs[i].closed == 0 && recs[i].conn != NULL) {
          ck_assert_int_eq(xmppuv__conn_write(recs[i].conn, "<ping/>", 7), 0);
          recs[i].first[0] = '-'; /* written */
        }
        if (recs[i].received >= 7) all++;
      }
    }
    ck_assert_int_eq(all, 50);
    for (int i = 0; i < 50; i++) {
      ck_assert_int_eq(recs[i].errors, 0);
      xmppuv__conn_close(recs[i].conn, i % 2);
    }
    for (int spins = 0; spins < 100000; spins++) {
      int closed = 0;
      for (int i = 0; i < 50; i++) closed += recs[i].closed;
      if (closed == 50) break;
      uv_run(&loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < 50; i++) ck_assert_int_eq(recs[i].closed, 1);
  }
  ck_assert_uint_eq(srv.accepted, 1000);
  close_loop(&loop, &srv);
}
END_TEST

static void ev_connected_tls(void *ud, int tls) {
  rec_t *r = ud;
  ck_assert_int_ne(tls, 0);
  r->connected++;
}

static const xmppuv__conn_events_t tls_events = {ev_connected_tls, ev_data, ev_tls_ready,
                                                 ev_error, ev_closed};

/* TLS handshakes whose answers arrive together run a few milliseconds' worth
 * per loop iteration and the rest in the next ones, in order (conn.c, the
 * handshake budget): a loop with a thousand reconnecting clients keeps
 * turning. Every connection still gets through, and carries data. */
START_TEST(tls_handshakes_arriving_together_are_spread_and_all_complete) {
  ck_assert_ptr_nonnull(tls_certs_dir());
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  srv.echo = 1;
  server_start(&loop, &srv);
  static tls_front_t front;
  tls_front_start(&front, &loop, srv.port);
  xmppuv__tls_config_t tcfg = {tls_cert_path(0, "ca.pem"), NULL, NULL, 0, NULL, NULL, NULL};
  xmppuv__tls_ctx_t *ctx = NULL;
  ck_assert_int_eq(xmppuv__tls_ctx_new(&tcfg, &ctx), 0);
  xmppuv__conn_config_t cfg = plain_config("localhost", "127.0.0.1", front.port);
  cfg.tls_mode = XMPPUV_TLS_DIRECT;
  cfg.tls_ctx = ctx;
  cfg.connect_timeout_ms = 60000;
  enum { N = 12 };
  rec_t recs[N];
  memset(recs, 0, sizeof recs);
  uint64_t deferred_before = xmppuv__conn_steps_deferred();
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &tls_events, &recs[i], &recs[i].conn), 0);
  int all = 0;
  for (int spins = 0; spins < 200000 && all < N; spins++) {
    uv_run(&loop, UV_RUN_ONCE);
    all = 0;
    for (int i = 0; i < N; i++) {
      ck_assert_msg(recs[i].errors == 0, "connection %d: %s", i, recs[i].detail);
      if (recs[i].connected == 1 && recs[i].first[0] == '\0' && recs[i].received == 0) {
        ck_assert_int_eq(xmppuv__conn_write(recs[i].conn, "<ping/>", 7), 0);
        recs[i].first[0] = '-'; /* written */
      }
      if (recs[i].received >= 7) all++;
    }
  }
  ck_assert_int_eq(all, N);
  uint64_t deferred = xmppuv__conn_steps_deferred() - deferred_before;
  fprintf(stderr, "# %d handshakes at once: %llu steps put off to a later iteration\n", N,
          (unsigned long long)deferred);
  /* The front answers all the ClientHellos in one iteration, so the
   * flights reach the clients in one poll, and one step is milliseconds of
   * public-key work. */
  ck_assert_uint_ge(deferred, 1);
  for (int i = 0; i < N; i++) xmppuv__conn_close(recs[i].conn, 1);
  for (int spins = 0; spins < 100000; spins++) {
    int closed = 0;
    for (int i = 0; i < N; i++) closed += recs[i].closed;
    if (closed == N) break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  for (int i = 0; i < N; i++) ck_assert_int_eq(recs[i].closed, 1);
  tls_front_close(&front);
  uv_run(&loop, UV_RUN_NOWAIT);
  xmppuv__tls_ctx_unref(ctx);
  close_loop(&loop, &srv);
  tls_front_free(&front);
  tls_certs_cleanup();
}
END_TEST

START_TEST(writes_keep_their_order_and_nothing_is_dropped) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  server_start(&loop, &srv);
  xmppuv__conn_config_t cfg = plain_config("localhost", "127.0.0.1", srv.port);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  run_until(&loop, &r.connected, 1);
  ck_assert_int_eq(r.connected, 1);
  /* 8 MB in writes of 1..4096 bytes, all queued at once (far more than the
   * socket takes), continuing a 0..255 byte cycle. */
  static unsigned char chunk[4096];
  uint64_t total = 0;
  for (unsigned i = 0; total < 8u * 1024 * 1024; i++) {
    size_t n = 1 + (i * 7919u) % sizeof chunk;
    for (size_t k = 0; k < n; k++) chunk[k] = (unsigned char)((total + k) & 0xff);
    ck_assert_int_eq(xmppuv__conn_write(r.conn, (const char *)chunk, n), 0);
    total += n;
  }
  ck_assert_uint_gt(xmppuv__conn_pending(r.conn), 0);
  for (int i = 0; i < 1000000 && srv.received < total; i++) uv_run(&loop, UV_RUN_ONCE);
  ck_assert_uint_eq(srv.received, total);
  ck_assert_uint_eq(srv.pattern_errors, 0);
  xmppuv__conn_close(r.conn, 1);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.errors, 0);
  close_loop(&loop, &srv);
}
END_TEST

START_TEST(the_server_closing_is_EEOF_then_closed) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  srv.close_at_once = 1;
  server_start(&loop, &srv);
  xmppuv__conn_config_t cfg = plain_config("localhost", "127.0.0.1", srv.port);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.connected, 1);
  ck_assert_int_eq(r.errors, 1);
  ck_assert_int_eq(r.error, XMPPUV_EEOF);
  ck_assert_int_eq(r.closed, 1);
  close_loop(&loop, &srv);
}
END_TEST

START_TEST(a_refused_connection_is_reported_with_the_libuv_code) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  server_start(&loop, &srv);
  unsigned short dead = srv.port;
  uv_close((uv_handle_t *)&srv.listen, NULL); /* nobody listens there now */
  uv_run(&loop, UV_RUN_DEFAULT);
  xmppuv__conn_config_t cfg = plain_config("localhost", "127.0.0.1", dead);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.connected, 0);
  ck_assert_int_eq(r.errors, 1);
  ck_assert_int_eq(r.error, UV_ECONNREFUSED);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(srv_records_lead_to_the_server) {
  /* The domain's SRV record names a host on our port: the connection goes
   * there, with no host option at all. A second target that refuses is
   * tried first (better priority) and skipped. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  srv.echo = 1;
  server_start(&loop, &srv);
  server_t gone = {0};
  server_start(&loop, &gone);
  unsigned short dead = gone.port;
  uv_close((uv_handle_t *)&gone.listen, NULL);
  char good[128], bad[128];
  snprintf(good, sizeof good, "--srv-host=_xmpp-client._tcp.chat.test,xmpp.chat.test,%u,20,1",
           (unsigned)srv.port);
  snprintf(bad, sizeof bad, "--srv-host=_xmpp-client._tcp.chat.test,down.chat.test,%u,10,1",
           (unsigned)dead);
  const char *records[] = {good, bad, "--host-record=xmpp.chat.test,127.0.0.1",
                           "--host-record=down.chat.test,127.0.0.1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  xmppuv__conn_config_t cfg = plain_config("chat.test", NULL, 0);
  cfg.dns_servers = dnsmasq_servers(dns);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  run_until(&loop, &r.connected, 1);
  ck_assert_int_eq(r.connected, 1);
  ck_assert_int_eq(r.errors, 0);
  ck_assert_uint_eq(srv.accepted, 1);
  ck_assert_ptr_nonnull(strstr(xmppuv__conn_peer(r.conn), "xmpp.chat.test"));
  xmppuv__conn_close(r.conn, 0);
  run_until(&loop, &r.closed, 1);
  dnsmasq_stop(dns);
  close_loop(&loop, &srv);
}
END_TEST

START_TEST(a_domain_without_xmpp_service_is_ENOSERVICE) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *records[] = {"--srv-host=_xmpp-client._tcp.none.test",
                           "--srv-host=_xmpps-client._tcp.none.test",
                           "--host-record=none.test,127.0.0.1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  xmppuv__conn_config_t cfg = plain_config("none.test", NULL, 0);
  cfg.dns_servers = dnsmasq_servers(dns);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.connected, 0);
  ck_assert_int_eq(r.error, XMPPUV_ENOSERVICE);
  dnsmasq_stop(dns);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(a_client_whose_domain_does_not_exist_retries_and_says_why) {
  /* As the app sees it: an error with the hint, not fatal (the network
   * may be what is wrong), and the client tries again. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *records[] = {"--host-record=known.test,127.0.0.1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = "alice@nosuch.test";
  o.password = "alice-secret";
  o.dns_servers = dnsmasq_servers(dns);
  o.reconnect_delay_ms = 50;
  o.reconnect_max_delay_ms = 100;
  o.log_level = XMPPUV_LOG_NONE;
  client_rec_t app;
  client_rec_init(&app, run_clock, &loop);
  xmppuv_client_t *c = NULL;
  ck_assert_int_eq(xmppuv_client_new(&loop, &o, &client_rec_callbacks, &app, &c), 0);
  ck_assert_int_eq(xmppuv_client_start(c), 0);
  for (int i = 0; i < 200000 && app.reconnectings < 2; i++) uv_run(&loop, UV_RUN_ONCE);
  ck_assert_uint_ge(app.reconnectings, 2);
  ck_assert_uint_ge(app.errors, 2);
  ck_assert_int_eq(app.err_code[0], XMPPUV_ENOTFOUND);
  ck_assert_int_eq(app.err_fatal[0], 0);
  ck_assert_msg(strstr(app.err_text[0], "nosuch.test has no address in DNS (a domain that does "
                                        "not exist? check the JID's domain, or set host)") != NULL,
                "text: %s", app.err_text[0]);
  ck_assert_uint_eq(app.offlines, 0);
  xmppuv_client_close(c, client_rec_close_cb);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert(app.closed);
  client_rec_free(&app);
  dnsmasq_stop(dns);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(when_every_address_fails_the_text_names_each_and_why) {
  /* Two SRV targets, one refusing, one that does not exist in DNS. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t gone = {0};
  server_start(&loop, &gone);
  unsigned short dead = gone.port;
  uv_close((uv_handle_t *)&gone.listen, NULL);
  char refusing[128], missing[128];
  snprintf(refusing, sizeof refusing,
           "--srv-host=_xmpp-client._tcp.two.test,down.two.test,%u,10,1", (unsigned)dead);
  snprintf(missing, sizeof missing,
           "--srv-host=_xmpp-client._tcp.two.test,gone.two.test,%u,20,1", (unsigned)dead);
  const char *records[] = {refusing, missing, "--host-record=down.two.test,127.0.0.1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  xmppuv__conn_config_t cfg = plain_config("two.test", NULL, 0);
  cfg.dns_servers = dnsmasq_servers(dns);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.connected, 0);
  char down[64];
  snprintf(down, sizeof down, "connecting to down.two.test [127.0.0.1]:%u: ", (unsigned)dead);
  ck_assert_msg(strstr(r.detail, "could not connect to two.test: ") == r.detail &&
                    strstr(r.detail, down) != NULL &&
                    strstr(r.detail, "connection refused") != NULL &&
                    strstr(r.detail, "; gone.two.test has no address in DNS") != NULL,
                "detail: %s", r.detail);
  dnsmasq_stop(dns);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(a_domain_that_does_not_exist_says_so_and_names_it) {
  /* dnsmasq answers NXDOMAIN for names under .test it does not know. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *records[] = {"--host-record=known.test,127.0.0.1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  xmppuv__conn_config_t cfg = plain_config("nosuch.test", NULL, 0);
  cfg.dns_servers = dnsmasq_servers(dns);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.connected, 0);
  ck_assert_int_eq(r.error, XMPPUV_ENOTFOUND);
  ck_assert_msg(strstr(r.detail, "nosuch.test has no address in DNS") != NULL &&
                    strstr(r.detail, "a domain that does not exist?") != NULL &&
                    strstr(r.detail, "set host") != NULL,
                "detail: %s", r.detail);
  dnsmasq_stop(dns);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(closing_while_resolving_ends_with_closed_only) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *records[] = {"--host-record=x.slow.test,127.0.0.1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  xmppuv__conn_config_t cfg = plain_config("slow.test", NULL, 0);
  cfg.dns_servers = dnsmasq_servers(dns);
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  xmppuv__conn_close(r.conn, 0);
  ck_assert_int_eq(r.closed, 0); /* from the loop, never inside the call */
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.closed, 1);
  ck_assert_int_eq(r.connected, 0);
  ck_assert_int_eq(r.errors, 0);
  dnsmasq_stop(dns);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(a_hanging_connect_is_abandoned_after_the_timeout_and_the_next_address_tried) {
  /* xmpp.chat.test has two addresses: 127.0.0.2 first, where a connect
   * hangs, then 127.0.0.1, where the server answers, both on one port. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  srv.echo = 1;
  hanging_t hang = {-1, -1, 0};
  int rc = -1;
  for (int attempt = 0; attempt < 20 && rc != 0; attempt++) {
    ck_assert_int_eq(hanging_start(&hang, "127.0.0.2", 0), 0);
    rc = server_listen(&loop, &srv, "127.0.0.1", hang.port);
    if (rc != 0) { /* that port is taken on 127.0.0.1: another one */
      hanging_stop(&hang);
      uv_run(&loop, UV_RUN_DEFAULT);
    }
  }
  ck_assert_msg(rc == 0, "no port free on both 127.0.0.2 and 127.0.0.1: %s",
                uv_strerror(rc));
  const char *records[] = {"--host-record=xmpp.chat.test,127.0.0.2",
                           "--host-record=xmpp.chat.test,127.0.0.1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  const uint64_t timeout_ms = 500;
  xmppuv__conn_config_t cfg = plain_config("chat.test", "xmpp.chat.test", srv.port);
  cfg.dns_servers = dnsmasq_servers(dns);
  cfg.connect_timeout_ms = timeout_ms;
  cfg.log = &test_log;
  ticker_t ticker;
  ticker_start(&loop, &ticker);
  rec_t r = {0};
  uv_update_time(&loop);
  uint64_t start = uv_now(&loop);
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  /* The ticker wakes the loop every 10 ms; give up after 10 s. */
  while (r.connected == 0 && r.errors == 0 && uv_now(&loop) - start < 10000)
    uv_run(&loop, UV_RUN_ONCE);
  uv_update_time(&loop);
  uint64_t took = uv_now(&loop) - start;
  ck_assert_msg(r.connected == 1 && r.errors == 0, "connected %d, error %s; log:\n%s",
                r.connected, xmppuv_err_name(r.error), log_lines);
  /* Through the second address, after the first was given up. */
  ck_assert_ptr_nonnull(strstr(xmppuv__conn_peer(r.conn), "[127.0.0.1]"));
  char timed_out[64];
  snprintf(timed_out, sizeof timed_out, "connect to 127.0.0.2:%u timed out",
           (unsigned)srv.port);
  ck_assert_msg(strstr(log_lines, timed_out) != NULL, "no \"%s\" in the log:\n%s",
                timed_out, log_lines);
  ck_assert_msg(took >= timeout_ms && took < timeout_ms + 400,
                "connected after %llu ms with a %llu ms connect timeout",
                (unsigned long long)took, (unsigned long long)timeout_ms);
  /* The connection works. */
  ck_assert_int_eq(xmppuv__conn_write(r.conn, "<ping/>", 7), 0);
  for (int i = 0; i < 200000 && r.received < 7; i++) uv_run(&loop, UV_RUN_ONCE);
  ck_assert_str_eq(r.first, "<ping/>");
  ck_assert_uint_eq(srv.accepted, 1);
  uint64_t waited_ms;
  uint64_t gap = ticker_stop(&ticker, &waited_ms);
  ck_assert_msg(gap < 200,
                "the loop was blocked for %llu ms (not counting %llu ms waiting for a CPU)",
                (unsigned long long)gap, (unsigned long long)waited_ms);
  xmppuv__conn_close(r.conn, 0);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.errors, 0);
  dnsmasq_stop(dns);
  hanging_stop(&hang);
  close_loop(&loop, &srv);
}
END_TEST

START_TEST(a_server_on_ipv6_loopback_is_reached_over_ipv6) {
  /* v6.chat.test has only an AAAA record, ::1, where the server listens. */
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_t srv = {0};
  srv.echo = 1;
  int rc = server_listen(&loop, &srv, "::1", 0);
  ck_assert_msg(rc == 0, "listening on [::1]: %s", uv_strerror(rc));
  const char *records[] = {"--host-record=v6.chat.test,::1", NULL};
  dnsmasq_t *dns = dnsmasq_start(records);
  xmppuv__conn_config_t cfg = plain_config("chat.test", "v6.chat.test", srv.port);
  cfg.dns_servers = dnsmasq_servers(dns);
  cfg.log = &test_log;
  rec_t r = {0};
  ck_assert_int_eq(xmppuv__conn_open(&loop, &cfg, &events, &r, &r.conn), 0);
  for (int i = 0; i < 200000 && r.connected == 0 && r.errors == 0; i++)
    uv_run(&loop, UV_RUN_ONCE);
  ck_assert_msg(r.connected == 1 && r.errors == 0, "connected %d, error %s; log:\n%s",
                r.connected, xmppuv_err_name(r.error), log_lines);
  char want[64];
  snprintf(want, sizeof want, "v6.chat.test [::1]:%u", (unsigned)srv.port);
  ck_assert_str_eq(xmppuv__conn_peer(r.conn), want);
  ck_assert_int_eq(xmppuv__conn_write(r.conn, "<ping/>", 7), 0);
  for (int i = 0; i < 200000 && r.received < 7; i++) uv_run(&loop, UV_RUN_ONCE);
  ck_assert_str_eq(r.first, "<ping/>");
  ck_assert_uint_eq(srv.accepted, 1);
  xmppuv__conn_close(r.conn, 1);
  run_until(&loop, &r.closed, 1);
  ck_assert_int_eq(r.errors, 0);
  dnsmasq_stop(dns);
  close_loop(&loop, &srv);
}
END_TEST

/* Why this machine has no IPv6 loopback (written to why), or NULL if it
 * has one: a TCP socket can be bound to [::1]. Any other failure is not a
 * reason to skip; the test then runs and reports it. */
static const char *no_ipv6_loopback(char *why, size_t size) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    if (err != EAFNOSUPPORT) return NULL;
    snprintf(why, size, "no IPv6 on this machine (socket(AF_INET6): %s)", strerror(err));
    return why;
  }
  struct sockaddr_in6 sa;
  memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  int bound = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  int err = errno;
  close(fd);
  if (bound || err != EADDRNOTAVAIL) return NULL;
  snprintf(why, size, "no IPv6 loopback address ::1 on this machine (bind: %s)",
           strerror(err));
  return why;
}

static void skipped_fn(int i) { (void)i; }

/* Check has no skip: register a test that does nothing under a name that
 * carries the TAP directive, so the line reads "ok N - ...:NAME # SKIP
 * WHY: Passed" and meson counts it as skipped. */
static void add_skipped(TCase *tc, const char *name, const char *why) {
  static char full[512];
  static TTest test;
  snprintf(full, sizeof full, "%s # SKIP %s", name, why);
  test.name = full;
  test.fn = skipped_fn;
  test.file = __FILE__;
  test.line = __LINE__;
  tcase_add_test(tc, &test);
}

static Suite *make_suite(void) {
  Suite *s = suite_create("conn");
  TCase *tc = tcase_create("conn");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, host_and_port_from_the_server_are_split_as_written);
  tcase_add_test(tc, a_thousand_connections_open_and_close_cleanly);
  tcase_add_test(tc, writes_keep_their_order_and_nothing_is_dropped);
  tcase_add_test(tc, tls_handshakes_arriving_together_are_spread_and_all_complete);
  tcase_add_test(tc, the_server_closing_is_EEOF_then_closed);
  tcase_add_test(tc, a_refused_connection_is_reported_with_the_libuv_code);
  tcase_add_test(tc, srv_records_lead_to_the_server);
  tcase_add_test(tc, a_domain_without_xmpp_service_is_ENOSERVICE);
  tcase_add_test(tc, a_domain_that_does_not_exist_says_so_and_names_it);
  tcase_add_test(tc, when_every_address_fails_the_text_names_each_and_why);
  tcase_add_test(tc, a_client_whose_domain_does_not_exist_retries_and_says_why);
  tcase_add_test(tc, closing_while_resolving_ends_with_closed_only);
  tcase_add_test(tc, a_hanging_connect_is_abandoned_after_the_timeout_and_the_next_address_tried);
  char why[200];
  if (no_ipv6_loopback(why, sizeof why) == NULL)
    tcase_add_test(tc, a_server_on_ipv6_loopback_is_reached_over_ipv6);
  else
    add_skipped(tc, "a_server_on_ipv6_loopback_is_reached_over_ipv6", why);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
