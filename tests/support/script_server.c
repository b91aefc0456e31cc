/* The scripted XMPP server: see script_server.h for the script language. */
#include "script_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_SIZE (64u * 1024u)

/* The TCP side of one scripted connection (the script runs in script.c). */
typedef struct tcp_conn {
  xmppuv_test_script_server_t *srv;
  xmppuv_test_script_conn_t *conn;
  uv_tcp_t tcp;
  uv_timer_t timer; /* DELAY steps */
  uv_shutdown_t shutdown;
  int handles; /* initialised handles whose close callback is pending */
  int closing;
  char rbuf[READ_SIZE];
} tcp_conn_t;

struct xmppuv_test_script_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int listener_open;
  /* Never started; closing it makes the close callback asynchronous even
   * with no connection open. */
  uv_idle_t anchor;
  int anchor_open;
  const xmppuv_test_step_t *const *scripts;
  size_t n_scripts;
  unsigned short port;
  tcp_conn_t **conns;
  size_t n_conns, conns_cap;
  int closing;
  void (*close_cb)(void *user_data);
  void *close_data;
  xmppuv_test_script_fn on_data; /* see xmppuv_test_script_server_on_data() */
  void *on_data_arg;
};

typedef struct write_req {
  uv_write_t req;
  char data[];
} write_req_t;

/* ---- teardown ------------------------------------------------------------- */

static void maybe_finish(xmppuv_test_script_server_t *srv) {
  if (!srv->closing || srv->listener_open || srv->anchor_open) return;
  for (size_t i = 0; i < srv->n_conns; i++)
    if (srv->conns[i]->handles > 0) return;
  for (size_t i = 0; i < srv->n_conns; i++) {
    xmppuv_test_script_conn_free(srv->conns[i]->conn);
    free(srv->conns[i]);
  }
  free(srv->conns);
  void (*cb)(void *) = srv->close_cb;
  void *data = srv->close_data;
  free(srv);
  if (cb != NULL) cb(data);
}

static void on_conn_handle_closed(uv_handle_t *h) {
  tcp_conn_t *tc = h->data;
  if (--tc->handles > 0) return;
  xmppuv_test_script_conn_set_closed(tc->conn);
  maybe_finish(tc->srv);
}

static void tcp_close(tcp_conn_t *tc, int reset) {
  if (tc->closing) return;
  tc->closing = 1;
  uv_close((uv_handle_t *)&tc->timer, on_conn_handle_closed);
  /* A reset is refused while a shutdown is pending: then a plain close. */
  if (reset && uv_tcp_close_reset(&tc->tcp, on_conn_handle_closed) == 0) return;
  uv_close((uv_handle_t *)&tc->tcp, on_conn_handle_closed);
}

/* ---- the io of a scripted connection ----------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a read error or EOF */
  free(req);
}

static int io_send(void *io, const char *data, size_t len) {
  tcp_conn_t *tc = io;
  if (tc->closing) return UV_EPIPE;
  write_req_t *w = malloc(sizeof *w + len + 1);
  if (w == NULL) return UV_ENOMEM;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned int)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&tc->tcp, &b, 1, on_write);
  if (rc != 0) free(w);
  return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

static void io_close(void *io, int how) {
  tcp_conn_t *tc = io;
  if (how == XMPPUV_TEST_IO_SHUTDOWN) {
    if (uv_shutdown(&tc->shutdown, (uv_stream_t *)&tc->tcp, on_shutdown) != 0) tcp_close(tc, 0);
    return;
  }
  tcp_close(tc, how == XMPPUV_TEST_IO_RESET);
}

static void on_delay(uv_timer_t *t) {
  tcp_conn_t *tc = t->data;
  xmppuv_test_script_conn_delay_over(tc->conn);
}

static void io_delay(void *io, unsigned ms) {
  tcp_conn_t *tc = io;
  uv_timer_start(&tc->timer, on_delay, ms, 0);
}

static size_t io_write_queue(const void *io) {
  const tcp_conn_t *tc = io;
  return tc->closing ? 0 : uv_stream_get_write_queue_size((const uv_stream_t *)&tc->tcp);
}

static const xmppuv_test_script_io_t tcp_io = {io_send, io_close, io_delay, io_write_queue};

/* ---- reading ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tcp_conn_t *tc = h->data;
  (void)suggested;
  *buf = uv_buf_init(tc->rbuf, sizeof tc->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  tcp_conn_t *tc = stream->data;
  (void)buf;
  if (n > 0) {
    if (xmppuv_test_script_conn_received_bytes(tc->conn, tc->rbuf, (size_t)n) != 0) {
      tcp_close(tc, 1);
      return;
    }
    xmppuv_test_script_server_t *srv = tc->srv;
    if (srv->on_data != NULL && !tc->closing && srv->on_data(tc->conn, srv->on_data_arg) < 0)
      xmppuv_test_script_conn_close(tc->conn, 1);
  } else if (n < 0) {
    xmppuv_test_script_conn_set_peer(tc->conn, n == UV_EOF ? XMPPUV_TEST_PEER_EOF
                                                             : XMPPUV_TEST_PEER_ERROR);
    xmppuv_test_script_conn_close(tc->conn, 0);
  }
}

static void on_connection(uv_stream_t *listener, int status) {
  xmppuv_test_script_server_t *srv = listener->data;
  if (status < 0 || srv->closing) return;
  if (srv->n_conns == srv->conns_cap) {
    size_t cap = srv->conns_cap * 2 + 8;
    tcp_conn_t **bigger = realloc(srv->conns, cap * sizeof *bigger);
    if (bigger == NULL) return;
    srv->conns = bigger;
    srv->conns_cap = cap;
  }
  tcp_conn_t *tc = calloc(1, sizeof *tc);
  if (tc == NULL) return;
  size_t index = srv->n_conns;
  const xmppuv_test_step_t *script = srv->scripts[index < srv->n_scripts ? index : srv->n_scripts - 1];
  tc->conn = xmppuv_test_script_conn_new(script, index, srv->port, &tcp_io, tc, uv_now(srv->loop));
  if (tc->conn == NULL || uv_tcp_init(srv->loop, &tc->tcp) != 0) {
    xmppuv_test_script_conn_free(tc->conn);
    free(tc);
    return;
  }
  tc->srv = srv;
  tc->tcp.data = tc;
  uv_timer_init(srv->loop, &tc->timer);
  tc->timer.data = tc;
  tc->handles = 2;
  srv->conns[srv->n_conns++] = tc;
  if (uv_accept(listener, (uv_stream_t *)&tc->tcp) != 0) {
    xmppuv_test_script_conn_set_peer(tc->conn, XMPPUV_TEST_PEER_ERROR);
    xmppuv_test_script_conn_close(tc->conn, 0);
    return;
  }
  uv_tcp_nodelay(&tc->tcp, 1);
  if (uv_read_start((uv_stream_t *)&tc->tcp, on_alloc, on_read) != 0) {
    xmppuv_test_script_conn_close(tc->conn, 1);
    return;
  }
  xmppuv_test_script_conn_advance(tc->conn);
}

/* ---- API ------------------------------------------------------------------------ */

static void on_listener_closed(uv_handle_t *h) {
  xmppuv_test_script_server_t *srv = h->data;
  srv->listener_open = 0;
  maybe_finish(srv);
}

static void on_anchor_closed(uv_handle_t *h) {
  xmppuv_test_script_server_t *srv = h->data;
  srv->anchor_open = 0;
  maybe_finish(srv);
}

int xmppuv_test_script_server_start(uv_loop_t *loop,
                                    const xmppuv_test_step_t *const *scripts,
                                    size_t n_scripts,
                                    xmppuv_test_script_server_t **out) {
  *out = NULL;
  if (loop == NULL || scripts == NULL || n_scripts == 0) return UV_EINVAL;
  for (size_t i = 0; i < n_scripts; i++)
    if (scripts[i] == NULL) return UV_EINVAL;
  xmppuv_test_script_server_t *srv = calloc(1, sizeof *srv);
  if (srv == NULL) return UV_ENOMEM;
  srv->loop = loop;
  srv->scripts = scripts;
  srv->n_scripts = n_scripts;
  uv_idle_init(loop, &srv->anchor);
  srv->anchor.data = srv;
  srv->anchor_open = 1;
  uv_tcp_init(loop, &srv->listener);
  srv->listener.data = srv;
  srv->listener_open = 1;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  int rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->listener, 64, on_connection);
  if (rc == 0) {
    struct sockaddr_in bound;
    int len = sizeof bound;
    rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
    if (rc == 0) srv->port = ntohs(bound.sin_port);
  }
  if (rc != 0) {
    /* The handles close from the loop; the memory goes with them. */
    xmppuv_test_script_server_close(srv, NULL, NULL);
    return rc;
  }
  *out = srv;
  return 0;
}

unsigned short xmppuv_test_script_server_port(const xmppuv_test_script_server_t *srv) {
  return srv->port;
}

size_t xmppuv_test_script_server_connections(const xmppuv_test_script_server_t *srv) {
  return srv->n_conns;
}

xmppuv_test_script_conn_t *xmppuv_test_script_server_conn(
    const xmppuv_test_script_server_t *srv, size_t i) {
  return i < srv->n_conns ? srv->conns[i]->conn : NULL;
}

void xmppuv_test_script_server_close(xmppuv_test_script_server_t *srv,
                                     void (*cb)(void *user_data), void *user_data) {
  if (srv == NULL || srv->closing) return;
  srv->closing = 1;
  srv->close_cb = cb;
  srv->close_data = user_data;
  uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
  for (size_t i = 0; i < srv->n_conns; i++) xmppuv_test_script_conn_close(srv->conns[i]->conn, 0);
  uv_close((uv_handle_t *)&srv->anchor, on_anchor_closed);
}

void xmppuv_test_script_server_on_data(xmppuv_test_script_server_t *srv,
                                       xmppuv_test_script_fn fn, void *arg) {
  srv->on_data = fn;
  srv->on_data_arg = arg;
}
