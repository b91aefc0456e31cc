/* The scripted XMPP server: see script_server.h for the script language. */
#include "script_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_SIZE (64u * 1024u)

struct xmppuv_test_script_conn {
  xmppuv_test_script_server_t *srv;
  size_t index;
  uv_tcp_t tcp;
  uv_timer_t timer;    /* DELAY steps */
  uv_shutdown_t shutdown;
  int handles;         /* initialised handles whose close callback is pending */
  const xmppuv_test_step_t *script;
  size_t step;
  int waiting;         /* a DELAY is running */
  int closing;         /* our side is closing or closed */
  int shut;            /* SCRIPT_CLOSE: FIN sent (or queued) */
  int closed;          /* both handles closed */
  xmppuv_test_peer_t peer;
  char *rx;            /* everything received, NUL-terminated */
  size_t rx_len, rx_cap;
  size_t cursor;       /* the next EXPECT searches from here */
  uint64_t accepted_at;
};

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
  xmppuv_test_script_conn_t **conns;
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

static void advance(xmppuv_test_script_conn_t *conn);
static void conn_close(xmppuv_test_script_conn_t *conn, int reset);

/* ---- teardown ------------------------------------------------------------- */

static void maybe_finish(xmppuv_test_script_server_t *srv) {
  if (!srv->closing || srv->listener_open || srv->anchor_open) return;
  for (size_t i = 0; i < srv->n_conns; i++)
    if (!srv->conns[i]->closed) return;
  for (size_t i = 0; i < srv->n_conns; i++) {
    free(srv->conns[i]->rx);
    free(srv->conns[i]);
  }
  free(srv->conns);
  void (*cb)(void *) = srv->close_cb;
  void *data = srv->close_data;
  free(srv);
  if (cb != NULL) cb(data);
}

static void on_conn_handle_closed(uv_handle_t *h) {
  xmppuv_test_script_conn_t *conn = h->data;
  if (--conn->handles > 0) return;
  conn->closed = 1;
  maybe_finish(conn->srv);
}

static void conn_close(xmppuv_test_script_conn_t *conn, int reset) {
  if (conn->closing) return;
  conn->closing = 1;
  uv_close((uv_handle_t *)&conn->timer, on_conn_handle_closed);
  /* A reset is refused while a shutdown is pending: then a plain close. */
  if (reset && uv_tcp_close_reset(&conn->tcp, on_conn_handle_closed) == 0) return;
  uv_close((uv_handle_t *)&conn->tcp, on_conn_handle_closed);
}

/* ---- writing ---------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a read error or EOF */
  free(req);
}

int xmppuv_test_script_conn_send(xmppuv_test_script_conn_t *conn, const char *data,
                                 size_t len) {
  if (conn->closing || conn->shut) return UV_EPIPE;
  write_req_t *w = malloc(sizeof *w + len + 1);
  if (w == NULL) return UV_ENOMEM;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned int)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
  if (rc != 0) free(w);
  return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

/* The value of the last id attribute before the end of the last match. */
static size_t last_id(const xmppuv_test_script_conn_t *conn, const char **value) {
  const char *rx = conn->rx;
  for (size_t i = conn->cursor; i-- > 0;) {
    if (strncmp(rx + i, "id=", 3) != 0 || i == 0) continue;
    char before = rx[i - 1];
    char quote = rx[i + 3];
    if ((before != ' ' && before != '\t' && before != '\n' && before != '\r') ||
        (quote != '\'' && quote != '"'))
      continue;
    const char *start = rx + i + 4;
    const char *end = strchr(start, quote);
    if (end == NULL) continue;
    *value = start;
    return (size_t)(end - start);
  }
  *value = "";
  return 0;
}

/* text with {id}, {port} and {n} replaced; malloc'd, NULL if out of memory. */
static char *expand(const xmppuv_test_script_conn_t *conn, const char *text, size_t *out_len) {
  size_t cap = strlen(text) + 64, len = 0;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  for (const char *p = text; *p != '\0';) {
    char num[32];
    const char *piece = p;
    size_t piece_len = 1, skip = 1;
    if (strncmp(p, "{id}", 4) == 0) {
      piece_len = last_id(conn, &piece);
      skip = 4;
    } else if (strncmp(p, "{port}", 6) == 0) {
      piece_len = (size_t)snprintf(num, sizeof num, "%u", (unsigned)conn->srv->port);
      piece = num;
      skip = 6;
    } else if (strncmp(p, "{n}", 3) == 0) {
      piece_len = (size_t)snprintf(num, sizeof num, "%zu", conn->index);
      piece = num;
      skip = 3;
    }
    if (len + piece_len + 1 > cap) {
      cap = (len + piece_len + 1) * 2;
      char *bigger = realloc(out, cap);
      if (bigger == NULL) {
        free(out);
        return NULL;
      }
      out = bigger;
    }
    memcpy(out + len, piece, piece_len);
    len += piece_len;
    p += skip;
  }
  out[len] = '\0';
  *out_len = len;
  return out;
}

/* ---- the script ---------------------------------------------------------------- */

static void on_delay(uv_timer_t *t) {
  xmppuv_test_script_conn_t *conn = t->data;
  conn->waiting = 0;
  advance(conn);
}

static void advance(xmppuv_test_script_conn_t *conn) {
  while (!conn->closing && !conn->waiting) {
    const xmppuv_test_step_t *s = &conn->script[conn->step];
    switch (s->op) {
      case XMPPUV_TEST_STEP_END:
        return;
      case XMPPUV_TEST_STEP_EXPECT: {
        const char *found = strstr(conn->rx + conn->cursor, s->text);
        if (found == NULL) return; /* wait for more */
        conn->cursor = (size_t)(found - conn->rx) + strlen(s->text);
        conn->step++;
        break;
      }
      case XMPPUV_TEST_STEP_SEND: {
        size_t len;
        char *data = expand(conn, s->text, &len);
        conn->step++;
        if (data == NULL || xmppuv_test_script_conn_send(conn, data, len) != 0) {
          free(data);
          conn_close(conn, 1);
          return;
        }
        free(data);
        break;
      }
      case XMPPUV_TEST_STEP_DELAY:
        conn->step++;
        conn->waiting = 1;
        uv_timer_start(&conn->timer, on_delay, s->ms, 0);
        return;
      case XMPPUV_TEST_STEP_CALL:
        conn->step++;
        if (s->fn(conn, s->arg) < 0) conn_close(conn, 1);
        break;
      case XMPPUV_TEST_STEP_CLOSE:
        conn->step++;
        if (!conn->shut) {
          conn->shut = 1;
          if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, on_shutdown) != 0)
            conn_close(conn, 0);
        }
        break;
      case XMPPUV_TEST_STEP_RESET:
        conn->step++;
        conn_close(conn, 1);
        return;
    }
  }
}

/* ---- reading ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  xmppuv_test_script_conn_t *conn = h->data;
  (void)suggested;
  if (conn->rx_cap - conn->rx_len < READ_SIZE + 1) {
    size_t cap = conn->rx_cap * 2 + READ_SIZE + 1;
    char *bigger = realloc(conn->rx, cap);
    if (bigger == NULL) {
      buf->base = NULL;
      buf->len = 0; /* libuv reports UV_ENOBUFS */
      return;
    }
    conn->rx = bigger;
    conn->rx_cap = cap;
  }
  buf->base = conn->rx + conn->rx_len;
  buf->len = conn->rx_cap - conn->rx_len - 1;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  xmppuv_test_script_conn_t *conn = stream->data;
  (void)buf;
  if (n > 0) {
    conn->rx_len += (size_t)n;
    conn->rx[conn->rx_len] = '\0';
    advance(conn);
    xmppuv_test_script_server_t *srv = conn->srv;
    if (srv->on_data != NULL && !conn->closing && srv->on_data(conn, srv->on_data_arg) < 0)
      conn_close(conn, 1);
  } else if (n < 0) {
    conn->peer = n == UV_EOF ? XMPPUV_TEST_PEER_EOF : XMPPUV_TEST_PEER_ERROR;
    conn_close(conn, 0);
  }
}

static void on_connection(uv_stream_t *listener, int status) {
  xmppuv_test_script_server_t *srv = listener->data;
  if (status < 0 || srv->closing) return;
  if (srv->n_conns == srv->conns_cap) {
    size_t cap = srv->conns_cap * 2 + 8;
    xmppuv_test_script_conn_t **bigger = realloc(srv->conns, cap * sizeof *bigger);
    if (bigger == NULL) return;
    srv->conns = bigger;
    srv->conns_cap = cap;
  }
  xmppuv_test_script_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL) return;
  conn->rx = malloc(READ_SIZE + 1);
  if (conn->rx == NULL || uv_tcp_init(srv->loop, &conn->tcp) != 0) {
    free(conn->rx);
    free(conn);
    return;
  }
  conn->rx[0] = '\0';
  conn->rx_cap = READ_SIZE + 1;
  conn->srv = srv;
  conn->index = srv->n_conns;
  conn->script = srv->scripts[conn->index < srv->n_scripts ? conn->index : srv->n_scripts - 1];
  conn->accepted_at = uv_now(srv->loop);
  conn->tcp.data = conn;
  uv_timer_init(srv->loop, &conn->timer);
  conn->timer.data = conn;
  conn->handles = 2;
  srv->conns[srv->n_conns++] = conn;
  if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
    conn->peer = XMPPUV_TEST_PEER_ERROR;
    conn_close(conn, 0);
    return;
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0) {
    conn_close(conn, 1);
    return;
  }
  advance(conn);
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
  return i < srv->n_conns ? srv->conns[i] : NULL;
}

void xmppuv_test_script_server_close(xmppuv_test_script_server_t *srv,
                                     void (*cb)(void *user_data), void *user_data) {
  if (srv == NULL || srv->closing) return;
  srv->closing = 1;
  srv->close_cb = cb;
  srv->close_data = user_data;
  uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
  for (size_t i = 0; i < srv->n_conns; i++) conn_close(srv->conns[i], 0);
  uv_close((uv_handle_t *)&srv->anchor, on_anchor_closed);
}

size_t xmppuv_test_script_conn_index(const xmppuv_test_script_conn_t *conn) {
  return conn->index;
}

const char *xmppuv_test_script_conn_received(const xmppuv_test_script_conn_t *conn,
                                             size_t *len) {
  if (len != NULL) *len = conn->rx_len;
  return conn->rx;
}

const char *xmppuv_test_script_conn_unmatched(const xmppuv_test_script_conn_t *conn) {
  return conn->rx + conn->cursor;
}

size_t xmppuv_test_script_conn_step(const xmppuv_test_script_conn_t *conn) {
  return conn->step;
}

int xmppuv_test_script_conn_done(const xmppuv_test_script_conn_t *conn) {
  return conn->script[conn->step].op == XMPPUV_TEST_STEP_END;
}

xmppuv_test_peer_t xmppuv_test_script_conn_peer(const xmppuv_test_script_conn_t *conn) {
  return conn->peer;
}

int xmppuv_test_script_conn_closed(const xmppuv_test_script_conn_t *conn) {
  return conn->closed;
}

uint64_t xmppuv_test_script_conn_accepted_at(const xmppuv_test_script_conn_t *conn) {
  return conn->accepted_at;
}

void xmppuv_test_script_conn_close(xmppuv_test_script_conn_t *conn, int reset) {
  conn_close(conn, reset);
}

size_t xmppuv_test_script_conn_write_queue(const xmppuv_test_script_conn_t *conn) {
  return conn->closing ? 0 : uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp);
}

void xmppuv_test_script_server_on_data(xmppuv_test_script_server_t *srv,
                                       xmppuv_test_script_fn fn, void *arg) {
  srv->on_data = fn;
  srv->on_data_arg = arg;
}
