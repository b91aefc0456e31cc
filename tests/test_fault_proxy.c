/* The loopback fault proxy (tests/support/fault_proxy.h), between a libuv
 * client and a libuv echo server on 127.0.0.1, all on one loop. */
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "fault_proxy.h"

#define MAX_CONNS 8
#define MAX_CLIENTS 4
#define BIG (4u * 1024u * 1024u)

/* ---- echo server: echoes what it reads; greets first if told to ---------- */

typedef struct conn {
  uv_tcp_t tcp;
  int used;
  int open;
  size_t received;
  int end;  /* 0 while open; UV_EOF or an error code once the read ended */
} conn_t;

typedef struct echo_write {
  uv_write_t req;
  char *base;
} echo_write_t;

static struct {
  uv_loop_t loop;
  uv_tcp_t listener;
  int listening;
  unsigned short port;
  const char *greeting;
  conn_t conns[MAX_CONNS];
  xmppuv_test_proxy_t *proxy;
  int proxy_closed;
  uv_timer_t timer;
  int timer_fired;
} t;

static void on_echo_written(uv_write_t *req, int status) {
  (void)status;
  echo_write_t *w = (echo_write_t *)req;
  free(w->base);
  free(w);
}

static void echo_send(conn_t *c, const char *data, size_t len) {
  echo_write_t *w = malloc(sizeof(*w));
  ck_assert_ptr_nonnull(w);
  w->base = malloc(len);
  ck_assert_ptr_nonnull(w->base);
  memcpy(w->base, data, len);
  uv_buf_t buf = uv_buf_init(w->base, (unsigned int)len);
  ck_assert_int_eq(uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_echo_written), 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  buf->base = malloc(suggested);
  buf->len = suggested;
}

static void on_conn_closed(uv_handle_t *handle) {
  conn_t *c = handle->data;
  c->used = 0;
}

static void close_conn(conn_t *c) {
  if (!c->open) return;
  c->open = 0;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_echo_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread > 0) {
    c->received += (size_t)nread;
    echo_send(c, buf->base, (size_t)nread);
  } else if (nread < 0) {
    c->end = (int)nread;
    close_conn(c);  /* after an EOF: a FIN back, once the echoes are out */
  }
  free(buf->base);
}

static void on_echo_connection(uv_stream_t *server, int status) {
  ck_assert_int_eq(status, 0);
  conn_t *c = NULL;
  for (int i = 0; i < MAX_CONNS; i++)
    if (!t.conns[i].used) {
      c = &t.conns[i];
      break;
    }
  ck_assert_ptr_nonnull(c);
  memset(c, 0, sizeof(*c));
  c->used = 1;
  c->open = 1;
  ck_assert_int_eq(uv_tcp_init(&t.loop, &c->tcp), 0);
  c->tcp.data = c;
  ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
  ck_assert_int_eq(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_echo_read), 0);
  if (t.greeting != NULL) echo_send(c, t.greeting, strlen(t.greeting));
}

static conn_t *server_conn(int n) {
  int seen = 0;
  for (int i = 0; i < MAX_CONNS; i++)
    if (t.conns[i].used && seen++ == n) return &t.conns[i];
  return NULL;
}

/* ---- clients ------------------------------------------------------------ */

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_shutdown_t shutdown;
  int open;
  int connect_status;  /* 1 while connecting */
  char *data;
  size_t len;
  size_t cap;
  int end;  /* 0 while open; UV_EOF or the error that ended the read */
  size_t sent;
} client_t;

static client_t clients[MAX_CLIENTS];

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  client_t *c = stream->data;
  if (nread > 0) {
    if (c->len + (size_t)nread > c->cap) {
      c->cap = (c->len + (size_t)nread) * 2;
      c->data = realloc(c->data, c->cap);
      ck_assert_ptr_nonnull(c->data);
    }
    memcpy(c->data + c->len, buf->base, (size_t)nread);
    c->len += (size_t)nread;
  } else if (nread < 0) {
    c->end = (int)nread;
    uv_read_stop(stream);
  }
  free(buf->base);
}

static void on_client_connected(uv_connect_t *req, int status) {
  client_t *c = req->data;
  c->connect_status = status;
  if (status == 0)
    ck_assert_int_eq(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_client_read), 0);
}

static client_t *client_connect(int i, unsigned short port) {
  client_t *c = &clients[i];
  struct sockaddr_in addr;
  memset(c, 0, sizeof(*c));
  ck_assert_int_eq(uv_tcp_init(&t.loop, &c->tcp), 0);
  c->tcp.data = c;
  c->open = 1;
  c->connect_status = 1;
  c->connect.data = c;
  uv_ip4_addr("127.0.0.1", port, &addr);
  ck_assert_int_eq(uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr,
                                  on_client_connected), 0);
  return c;
}

static void on_client_written(uv_write_t *req, int status) {
  ck_assert_int_eq(status, 0);
  free(req);
}

static void client_send(client_t *c, const char *data, size_t len) {
  uv_write_t *req = malloc(sizeof(*req));
  ck_assert_ptr_nonnull(req);
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
  ck_assert_int_eq(uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, on_client_written), 0);
  c->sent += len;
}

static void client_close(client_t *c) {
  if (!c->open) return;
  c->open = 0;
  uv_close((uv_handle_t *)&c->tcp, NULL);
}

/* ---- running the loop --------------------------------------------------- */

static void on_timer(uv_timer_t *timer) {
  (void)timer;
  t.timer_fired = 1;
}

typedef int (*cond_fn)(void *arg);

/* Run the loop until cond(arg) holds; fail after timeout_ms. */
static void run_until(cond_fn cond, void *arg, uint64_t timeout_ms, const char *what) {
  t.timer_fired = 0;
  uv_timer_start(&t.timer, on_timer, timeout_ms, 0);
  while (!cond(arg) && !t.timer_fired) uv_run(&t.loop, UV_RUN_ONCE);
  uv_timer_stop(&t.timer);
  ck_assert_msg(cond(arg), "timed out waiting for %s", what);
}

/* Run the loop for ms milliseconds, whatever happens. */
static void run_for(uint64_t ms) {
  t.timer_fired = 0;
  uv_timer_start(&t.timer, on_timer, ms, 0);
  while (!t.timer_fired) uv_run(&t.loop, UV_RUN_ONCE);
}

static int is_connected(void *arg) { return ((client_t *)arg)->connect_status != 1; }
static int has_ended(void *arg) { return ((client_t *)arg)->end != 0; }
static int conn_ended(void *arg) { return ((conn_t *)arg)->end != 0; }
static int proxy_closed(void *arg) { (void)arg; return t.proxy_closed; }

typedef struct expect {
  client_t *client;
  size_t len;
} expect_t;

static int has_bytes(void *arg) {
  expect_t *e = arg;
  return e->client->len >= e->len;
}

static void wait_bytes(client_t *c, size_t len) {
  expect_t e = {c, len};
  run_until(has_bytes, &e, 5000, "bytes through the proxy");
}

static int no_active(void *arg) {
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats((xmppuv_test_proxy_t *)arg, &st);
  return st.active == 0;
}


/* Connect client i through the proxy and do a round trip. */
static client_t *connected_client(int i) {
  client_t *c = client_connect(i, xmppuv_test_proxy_port(t.proxy));
  run_until(is_connected, c, 5000, "connect");
  ck_assert_int_eq(c->connect_status, 0);
  client_send(c, "hello", 5);
  wait_bytes(c, 5);
  ck_assert_int_eq(memcmp(c->data, "hello", 5), 0);
  return c;
}

/* ---- fixture ------------------------------------------------------------ */

static void start_proxy_to(unsigned short port) {
  ck_assert_int_eq(xmppuv_test_proxy_start(&t.loop, "127.0.0.1", port, &t.proxy), 0);
  ck_assert_uint_ne(xmppuv_test_proxy_port(t.proxy), 0);
  ck_assert_uint_ne(xmppuv_test_proxy_port(t.proxy), port);
}

static void setup(void) {
  struct sockaddr_in addr;
  struct sockaddr_in name;
  int len = (int)sizeof(name);
  memset(&t, 0, sizeof(t));
  memset(clients, 0, sizeof(clients));
  ck_assert_int_eq(uv_loop_init(&t.loop), 0);
  ck_assert_int_eq(uv_timer_init(&t.loop, &t.timer), 0);
  ck_assert_int_eq(uv_tcp_init(&t.loop, &t.listener), 0);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_int_eq(uv_tcp_bind(&t.listener, (const struct sockaddr *)&addr, 0), 0);
  ck_assert_int_eq(uv_listen((uv_stream_t *)&t.listener, 16, on_echo_connection), 0);
  ck_assert_int_eq(uv_tcp_getsockname(&t.listener, (struct sockaddr *)&name, &len), 0);
  t.port = ntohs(name.sin_port);
  t.listening = 1;
}

static void on_proxy_closed(void *arg) {
  (void)arg;
  t.proxy_closed++;
}

static void teardown(void) {
  for (int i = 0; i < MAX_CLIENTS; i++) client_close(&clients[i]);
  for (int i = 0; i < MAX_CONNS; i++)
    if (t.conns[i].used) close_conn(&t.conns[i]);
  if (t.listening) uv_close((uv_handle_t *)&t.listener, NULL);
  if (t.proxy != NULL && !t.proxy_closed) {
    xmppuv_test_proxy_close(t.proxy, on_proxy_closed, NULL);
    t.proxy = NULL;
  }
  uv_close((uv_handle_t *)&t.timer, NULL);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < MAX_CLIENTS; i++) free(clients[i].data);
  ck_assert_int_eq(uv_loop_close(&t.loop), 0);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(data_flows_both_ways_through_the_proxy) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  client_send(c, " world", 6);
  wait_bytes(c, 11);
  ck_assert_int_eq(memcmp(c->data, "hello world", 11), 0);
  ck_assert_int_eq(c->end, 0);
  ck_assert_uint_eq(server_conn(0)->received, 11);
}
END_TEST

START_TEST(counters_count_connections_and_bytes_each_way) {
  t.greeting = "welcome\n";
  start_proxy_to(t.port);
  client_t *c = client_connect(0, xmppuv_test_proxy_port(t.proxy));
  wait_bytes(c, 8);
  client_send(c, "hello", 5);
  wait_bytes(c, 13);
  client_t *c2 = client_connect(1, xmppuv_test_proxy_port(t.proxy));
  wait_bytes(c2, 8);
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.accepted, 2);
  ck_assert_uint_eq(st.active, 2);
  ck_assert_uint_eq(st.to_target, 5);
  ck_assert_uint_eq(st.to_client, 8 + 5 + 8);
  ck_assert_uint_eq(st.resets, 0);
  ck_assert_uint_eq(st.target_failures, 0);
}
END_TEST

START_TEST(reset_all_resets_the_client_and_the_target) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  client_t *c2 = connected_client(1);
  conn_t *s = server_conn(0);
  conn_t *s2 = server_conn(1);
  xmppuv_test_proxy_reset_all(t.proxy);
  run_until(has_ended, c, 5000, "the client's read to end");
  run_until(has_ended, c2, 5000, "the second client's read to end");
  run_until(conn_ended, s, 5000, "the target's read to end");
  run_until(conn_ended, s2, 5000, "the second target's read to end");
  /* A RST, not a FIN, on both legs. */
  ck_assert_str_eq(uv_err_name(c->end), "ECONNRESET");
  ck_assert_str_eq(uv_err_name(c2->end), "ECONNRESET");
  ck_assert_str_eq(uv_err_name(s->end), "ECONNRESET");
  ck_assert_str_eq(uv_err_name(s2->end), "ECONNRESET");
  run_until(no_active, t.proxy, 5000, "no active connection");
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.resets, 2);
}
END_TEST

START_TEST(new_connections_work_after_reset_all) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  xmppuv_test_proxy_reset_all(t.proxy);
  run_until(has_ended, c, 5000, "the reset");
  client_t *c2 = connected_client(1);
  ck_assert_int_eq(c2->end, 0);
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.accepted, 2);
  ck_assert_uint_eq(st.active, 1);
}
END_TEST

START_TEST(partition_holds_bytes_without_closing) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  conn_t *s = server_conn(0);
  xmppuv_test_proxy_stats_t before, after;
  xmppuv_test_proxy_stats(t.proxy, &before);
  xmppuv_test_proxy_partition(t.proxy, 1);
  client_send(c, "held", 4);
  run_for(300);
  /* Silence: nothing forwarded either way, and no EOF or error anywhere. */
  ck_assert_uint_eq(c->len, 5);
  ck_assert_int_eq(c->end, 0);
  ck_assert_uint_eq(s->received, 5);
  ck_assert_int_eq(s->end, 0);
  xmppuv_test_proxy_stats(t.proxy, &after);
  ck_assert_uint_eq(after.to_target, before.to_target);
  ck_assert_uint_eq(after.to_client, before.to_client);
  ck_assert_uint_eq(after.active, 1);
}
END_TEST

START_TEST(healing_the_partition_delivers_the_held_bytes_in_order) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  xmppuv_test_proxy_partition(t.proxy, 1);
  client_send(c, "one,", 4);
  run_for(50);
  client_send(c, "two", 3);
  run_for(100);
  ck_assert_uint_eq(c->len, 5);
  xmppuv_test_proxy_partition(t.proxy, 0);
  wait_bytes(c, 12);
  ck_assert_uint_eq(c->len, 12);
  ck_assert_int_eq(memcmp(c->data, "helloone,two", 12), 0);
  ck_assert_int_eq(c->end, 0);
}
END_TEST

START_TEST(connection_made_during_a_partition_stays_silent_until_healed) {
  t.greeting = "welcome\n";
  start_proxy_to(t.port);
  xmppuv_test_proxy_partition(t.proxy, 1);
  client_t *c = client_connect(0, xmppuv_test_proxy_port(t.proxy));
  run_until(is_connected, c, 5000, "connect");
  /* The TCP connect succeeds (the kernel completes it), then nothing. */
  ck_assert_int_eq(c->connect_status, 0);
  run_for(300);
  ck_assert_uint_eq(c->len, 0);
  ck_assert_int_eq(c->end, 0);
  xmppuv_test_proxy_partition(t.proxy, 0);
  wait_bytes(c, 8);
  ck_assert_int_eq(memcmp(c->data, "welcome\n", 8), 0);
}
END_TEST

START_TEST(a_client_that_gives_up_during_a_partition_is_passed_on_after_healing) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  conn_t *s = server_conn(0);
  xmppuv_test_proxy_partition(t.proxy, 1);
  client_close(c);
  run_for(200);
  ck_assert_int_eq(s->end, 0);  /* the target hears nothing while it lasts */
  xmppuv_test_proxy_partition(t.proxy, 0);
  run_until(conn_ended, s, 5000, "the target to see the client's close");
  ck_assert_str_eq(uv_err_name(s->end), "EOF");
}
END_TEST

START_TEST(stall_existing_silences_old_connections_and_new_ones_flow) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  conn_t *s = server_conn(0);
  xmppuv_test_proxy_stall_existing(t.proxy);
  client_send(c, "lost", 4);
  client_t *c2 = connected_client(1);
  client_send(c2, "fine", 4);
  wait_bytes(c2, 9);
  ck_assert_int_eq(memcmp(c2->data, "hellofine", 9), 0);
  run_for(200);
  /* The old path stays silent: nothing forwarded, nothing closed. */
  ck_assert_uint_eq(c->len, 5);
  ck_assert_int_eq(c->end, 0);
  ck_assert_uint_eq(s->received, 5);
  ck_assert_int_eq(s->end, 0);
  /* Healing a partition does not wake it either. */
  xmppuv_test_proxy_partition(t.proxy, 0);
  run_for(100);
  ck_assert_uint_eq(s->received, 5);
}
END_TEST

START_TEST(refuse_makes_new_connects_fail_with_ECONNREFUSED) {
  start_proxy_to(t.port);
  unsigned short port = xmppuv_test_proxy_port(t.proxy);
  client_t *c = connected_client(0);
  ck_assert_int_eq(xmppuv_test_proxy_refuse(t.proxy, 1), 0);
  client_t *refused = client_connect(1, port);
  run_until(is_connected, refused, 5000, "the refused connect");
  ck_assert_str_eq(uv_err_name(refused->connect_status), "ECONNREFUSED");
  /* The connection made before carries on. */
  client_send(c, "still", 5);
  wait_bytes(c, 10);
  ck_assert_int_eq(memcmp(c->data, "hellostill", 10), 0);
  /* Accepting again, on the same port. */
  ck_assert_int_eq(xmppuv_test_proxy_refuse(t.proxy, 0), 0);
  ck_assert_uint_eq(xmppuv_test_proxy_port(t.proxy), port);
  client_close(refused);
  client_t *again = connected_client(2);
  ck_assert_int_eq(again->end, 0);
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.accepted, 2);
}
END_TEST

/* A port on 127.0.0.1 where nothing listens. */
static unsigned short closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

START_TEST(unreachable_target_resets_the_client) {
  start_proxy_to(closed_port());
  client_t *c = client_connect(0, xmppuv_test_proxy_port(t.proxy));
  run_until(is_connected, c, 5000, "connect");
  ck_assert_int_eq(c->connect_status, 0);  /* the proxy accepted */
  run_until(has_ended, c, 5000, "the reset");
  ck_assert_str_eq(uv_err_name(c->end), "ECONNRESET");
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.accepted, 1);
  ck_assert_uint_eq(st.target_failures, 1);
}
END_TEST

static void on_client_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  ck_assert_int_eq(status, 0);
}

START_TEST(a_fin_is_passed_on_in_both_directions) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  conn_t *s = server_conn(0);
  client_send(c, "bye", 3);
  ck_assert_int_eq(uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_client_shutdown), 0);
  /* The echo server reads everything, then the EOF, then closes. */
  run_until(conn_ended, s, 5000, "the target to see EOF");
  ck_assert_str_eq(uv_err_name(s->end), "EOF");
  ck_assert_uint_eq(s->received, 8);
  run_until(has_ended, c, 5000, "the client to see EOF");
  ck_assert_str_eq(uv_err_name(c->end), "EOF");
  ck_assert_uint_eq(c->len, 8);
  ck_assert_int_eq(memcmp(c->data, "hellobye", 8), 0);
  run_until(no_active, t.proxy, 5000, "the proxied connection to close");
}
END_TEST

START_TEST(large_transfer_arrives_intact) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  char *big = malloc(BIG);
  ck_assert_ptr_nonnull(big);
  for (size_t i = 0; i < BIG; i++) big[i] = (char)('a' + (i * 7 + i / 4096) % 26);
  client_send(c, big, BIG);
  expect_t e = {c, 5 + BIG};
  run_until(has_bytes, &e, 20000, "4 MiB echoed");
  ck_assert_uint_eq(c->len, 5 + BIG);
  ck_assert_int_eq(memcmp(c->data + 5, big, BIG), 0);
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.to_target, 5 + BIG);
  ck_assert_uint_eq(st.to_client, 5 + BIG);
  free(big);
}
END_TEST

START_TEST(delay_holds_each_direction_and_keeps_the_order_and_the_fin_last) {
  /* 60 ms each way: an echo takes at least 120 ms; bytes and the FIN come
   * in the order sent. (A lower bound on a delay the proxy makes itself.) */
  start_proxy_to(t.port);
  xmppuv_test_proxy_delay(t.proxy, 60);
  client_t *c = connected_client(0);
  conn_t *srv = server_conn(0);
  uv_update_time(&t.loop);
  uint64_t start = uv_now(&t.loop);
  client_send(c, "one", 3);
  client_send(c, "two", 3);
  ck_assert_int_eq(uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_client_shutdown), 0);
  wait_bytes(c, 11);
  ck_assert_uint_ge(uv_now(&t.loop) - start, 120);
  ck_assert_int_eq(memcmp(c->data, "helloonetwo", 11), 0);
  run_until(conn_ended, srv, 5000, "the target to see EOF");
  ck_assert_str_eq(uv_err_name(srv->end), "EOF");
  ck_assert_uint_eq(srv->received, 11);
}
END_TEST

START_TEST(client_flights_are_counted_between_answers) {
  /* "hello" and its echo: flight 1; "a" and "b" sent together before the
   * echo comes back: flight 2; "c" after it: flight 3. */
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  xmppuv_test_proxy_stats_t st;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.latest_client_flights, 1);
  client_send(c, "a", 1);
  client_send(c, "b", 1);
  wait_bytes(c, 7);
  client_send(c, "c", 1);
  wait_bytes(c, 8);
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_ge(st.latest_client_flights, 3); /* a and b may cross the echo of a */
  ck_assert_uint_le(st.latest_client_flights, 4);
  client_t *c2 = connected_client(1);
  (void)c2;
  xmppuv_test_proxy_stats(t.proxy, &st);
  ck_assert_uint_eq(st.latest_client_flights, 1); /* the connection accepted last */
}
END_TEST

START_TEST(close_closes_every_connection_and_calls_back_once) {
  start_proxy_to(t.port);
  client_t *c = connected_client(0);
  client_t *c2 = connected_client(1);
  xmppuv_test_proxy_partition(t.proxy, 1);  /* closing works mid-partition */
  xmppuv_test_proxy_close(t.proxy, on_proxy_closed, NULL);
  ck_assert_int_eq(t.proxy_closed, 0);  /* never inside the call */
  run_until(proxy_closed, NULL, 5000, "the close callback");
  run_until(has_ended, c, 5000, "the client to see the close");
  run_until(has_ended, c2, 5000, "the second client to see the close");
  ck_assert_str_eq(uv_err_name(c->end), "EOF");
  ck_assert_str_eq(uv_err_name(c2->end), "EOF");
  run_for(50);
  ck_assert_int_eq(t.proxy_closed, 1);
  t.proxy = NULL;
}
END_TEST

START_TEST(close_while_refusing_still_calls_back) {
  start_proxy_to(t.port);
  ck_assert_int_eq(xmppuv_test_proxy_refuse(t.proxy, 1), 0);
  xmppuv_test_proxy_close(t.proxy, on_proxy_closed, NULL);
  ck_assert_int_eq(t.proxy_closed, 0);
  run_until(proxy_closed, NULL, 5000, "the close callback");
  t.proxy = NULL;
}
END_TEST

START_TEST(bad_target_address_is_EINVAL) {
  xmppuv_test_proxy_t *p = (xmppuv_test_proxy_t *)&p;
  ck_assert_int_eq(xmppuv_test_proxy_start(&t.loop, "not an address", 5222, &p), UV_EINVAL);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(xmppuv_test_proxy_start(&t.loop, "localhost", t.port, &t.proxy), 0);
  client_t *c = connected_client(0);
  ck_assert_int_eq(c->end, 0);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("fault_proxy");
  TCase *tc = tcase_create("fault_proxy");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, data_flows_both_ways_through_the_proxy);
  tcase_add_test(tc, counters_count_connections_and_bytes_each_way);
  tcase_add_test(tc, reset_all_resets_the_client_and_the_target);
  tcase_add_test(tc, new_connections_work_after_reset_all);
  tcase_add_test(tc, partition_holds_bytes_without_closing);
  tcase_add_test(tc, healing_the_partition_delivers_the_held_bytes_in_order);
  tcase_add_test(tc, connection_made_during_a_partition_stays_silent_until_healed);
  tcase_add_test(tc, a_client_that_gives_up_during_a_partition_is_passed_on_after_healing);
  tcase_add_test(tc, stall_existing_silences_old_connections_and_new_ones_flow);
  tcase_add_test(tc, refuse_makes_new_connects_fail_with_ECONNREFUSED);
  tcase_add_test(tc, unreachable_target_resets_the_client);
  tcase_add_test(tc, a_fin_is_passed_on_in_both_directions);
  tcase_add_test(tc, large_transfer_arrives_intact);
  tcase_add_test(tc, delay_holds_each_direction_and_keeps_the_order_and_the_fin_last);
  tcase_add_test(tc, client_flights_are_counted_between_answers);
  tcase_add_test(tc, close_closes_every_connection_and_calls_back_once);
  tcase_add_test(tc, close_while_refusing_still_calls_back);
  tcase_add_test(tc, bad_target_address_is_EINVAL);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
