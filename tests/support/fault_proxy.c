/* The loopback fault proxy: see fault_proxy.h for what each fault does. */
#include "fault_proxy.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Stop reading a side while more than this waits to be written to the other
 * side, so a fast sender cannot make the proxy buffer without bound. */
#define HIGH_WATER (256u * 1024u)
#define READ_SIZE (64u * 1024u)

typedef struct pair pair_t;

/* Bytes held back by the delay (xmppuv_test_proxy_delay), oldest first. */
typedef struct delayed {
  struct delayed *next;
  char *base;
  size_t len;
  uint64_t due;
} delayed_t;

typedef struct side {
  uv_tcp_t tcp;
  uv_timer_t timer;     /* the delay: writes to this side when due */
  int timer_open;
  delayed_t *dq_head, *dq_tail;
  int fin_after_queue;  /* the peer's FIN waits behind delayed bytes */
  pair_t *pair;
  struct side *peer;
  int open;     /* uv_tcp_init done, uv_close not yet called */
  int reading;  /* uv_read_start in effect */
  int eof;      /* read EOF from this side */
  int shut;     /* uv_shutdown requested on this side */
  int paused;   /* reading stopped because the peer's write queue is full */
} side_t;

struct pair {
  xmppuv_test_proxy_t *proxy;
  side_t client;
  side_t target;
  uv_connect_t connect;
  uv_shutdown_t shutdown_client;
  uv_shutdown_t shutdown_target;
  int connected;
  int closing;
  int shutdowns_pending;
  int handles;  /* initialised handles whose close callback has not run */
  int stalled;  /* xmppuv_test_proxy_stall_existing(): never read again */
  int target_spoke; /* bytes went to the client since its last chunk */
  unsigned long client_flights;
  pair_t *prev;
  pair_t *next;
};

typedef struct write_req {
  uv_write_t req;
  side_t *from;  /* the side the bytes were read from */
  char *base;
  size_t len;
} write_req_t;

struct xmppuv_test_proxy {
  uv_loop_t *loop;
  uv_tcp_t *listener;  /* NULL while refusing */
  /* While refusing: the port bound, not listening. Connects are refused
   * (RST) as before, and no other process on the machine (a parallel
   * test's server) can be given the port meanwhile: it once was, and a
   * client reconnecting "through the proxy" met that other server. */
  uv_tcp_t *holder;
  int listeners_closing;
  /* Never started; closing it makes the close callback asynchronous even
   * when nothing else is open (refusing, no connections). */
  uv_idle_t anchor;
  int anchor_open;
  struct sockaddr_storage target;
  struct sockaddr_in listen_addr;
  unsigned short port;
  int partitioned;
  uint64_t delay_ms; /* each way */
  int refusing;
  int closing;
  void (*close_cb)(void *user_data);
  void *close_data;
  pair_t *pairs;
  pair_t *latest; /* the connection accepted last, while it lives */
  xmppuv_test_proxy_stats_t stats;
};

static void pair_reset(pair_t *pair);
static void pair_close(pair_t *pair);

static void maybe_finish(xmppuv_test_proxy_t *proxy) {
  if (!proxy->closing || proxy->anchor_open || proxy->listener != NULL ||
      proxy->listeners_closing > 0 || proxy->pairs != NULL)
    return;
  void (*cb)(void *) = proxy->close_cb;
  void *data = proxy->close_data;
  free(proxy);
  if (cb != NULL) cb(data);
}

/* ---- reading and writing ------------------------------------------------ */

static int may_read(const side_t *s) {
  const pair_t *pair = s->pair;
  return s->open && pair->connected && !pair->closing && !s->eof &&
         !s->paused && !pair->stalled && !pair->proxy->partitioned;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  buf->base = malloc(READ_SIZE);
  buf->len = buf->base != NULL ? READ_SIZE : 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void update_reading(side_t *s) {
  if (may_read(s) && !s->reading) {
    if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) == 0)
      s->reading = 1;
  } else if (!may_read(s) && s->reading) {
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = 0;
  }
}

static void maybe_close_after_eofs(pair_t *pair) {
  /* Both directions are finished: every byte and both FINs passed on. */
  if (!pair->closing && pair->client.eof && pair->target.eof &&
      pair->shutdowns_pending == 0)
    pair_close(pair);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  pair_t *pair = req->data;
  pair->shutdowns_pending--;
  if (status < 0 && status != UV_ECANCELED && !pair->closing) {
    pair_reset(pair);
    return;
  }
  maybe_close_after_eofs(pair);
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  side_t *from = w->from;
  pair_t *pair = from->pair;
  if (status == 0) {
    if (from == &pair->client)
      pair->proxy->stats.to_target += w->len;
    else
      pair->proxy->stats.to_client += w->len;
  }
  free(w->base);
  free(w);
  if (status < 0) {
    if (status != UV_ECANCELED && !pair->closing) pair_reset(pair);
    return;
  }
  if (from->paused &&
      uv_stream_get_write_queue_size((uv_stream_t *)&from->peer->tcp) <
          HIGH_WATER / 2) {
    from->paused = 0;
    update_reading(from);
  }
}

static void pass_fin(side_t *to);

static void write_now(side_t *from, char *base, size_t len);

static void on_delay_timer(uv_timer_t *timer) {
  side_t *to = timer->data;
  uint64_t now = uv_now(to->pair->proxy->loop);
  while (to->dq_head != NULL && to->dq_head->due <= now && !to->pair->closing) {
    delayed_t *d = to->dq_head;
    to->dq_head = d->next;
    if (to->dq_head == NULL) to->dq_tail = NULL;
    char *base = d->base;
    size_t len = d->len;
    free(d);
    write_now(to->peer, base, len);
  }
  if (to->pair->closing) return;
  if (to->dq_head != NULL)
    uv_timer_start(&to->timer, on_delay_timer, to->dq_head->due - now, 0);
  else if (to->fin_after_queue)
    pass_fin(to);
}

static void forward(side_t *from, char *base, size_t len) {
  side_t *to = from->peer;
  xmppuv_test_proxy_t *proxy = from->pair->proxy;
  if (proxy->delay_ms > 0 && to->timer_open) {
    delayed_t *d = malloc(sizeof *d);
    if (d == NULL) {
      free(base);
      pair_reset(from->pair);
      return;
    }
    d->next = NULL;
    d->base = base;
    d->len = len;
    d->due = uv_now(proxy->loop) + proxy->delay_ms;
    if (to->dq_tail != NULL)
      to->dq_tail->next = d;
    else
      to->dq_head = d;
    to->dq_tail = d;
    if (!uv_is_active((uv_handle_t *)&to->timer))
      uv_timer_start(&to->timer, on_delay_timer, proxy->delay_ms, 0);
    return;
  }
  write_now(from, base, len);
}

static void write_now(side_t *from, char *base, size_t len) {
  side_t *to = from->peer;
  /* What the client receives from the server: its next bytes are a new
   * flight. */
  if (to == &to->pair->client) to->pair->target_spoke = 1;
  write_req_t *w = malloc(sizeof(*w));
  if (w == NULL) {
    free(base);
    pair_reset(from->pair);
    return;
  }
  w->from = from;
  w->base = base;
  w->len = len;
  uv_buf_t buf = uv_buf_init(base, (unsigned int)len);
  if (uv_write(&w->req, (uv_stream_t *)&to->tcp, &buf, 1, on_write) != 0) {
    free(base);
    free(w);
    pair_reset(from->pair);
    return;
  }
  if (uv_stream_get_write_queue_size((uv_stream_t *)&to->tcp) > HIGH_WATER) {
    from->paused = 1;
    update_reading(from);
  }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  side_t *s = stream->data;
  pair_t *pair = s->pair;
  if (nread > 0) {
    /* A client flight: what the client sends before it hears from the
     * server again. */
    if (s == &pair->client) {
      if (pair->client_flights == 0 || pair->target_spoke) pair->client_flights++;
      pair->target_spoke = 0;
      if (pair == pair->proxy->latest) pair->proxy->stats.latest_client_flights = pair->client_flights;
    }
    forward(s, buf->base, (size_t)nread);
    return;
  }
  free(buf->base);
  if (nread == 0) return;
  if (nread == UV_EOF) {
    /* Pass the FIN on once everything read before it has been written
     * (after the delayed bytes, with a delay). */
    s->eof = 1;
    update_reading(s);
    side_t *to = s->peer;
    if (to->dq_head != NULL)
      to->fin_after_queue = 1;
    else
      pass_fin(to);
    return;
  }
  /* A reset or another error on one leg: reset the other one too. */
  pair_reset(pair);
}

static void pass_fin(side_t *to) {
  pair_t *pair = to->pair;
  to->fin_after_queue = 0;
  if (to->open && !to->shut) {
    uv_shutdown_t *req = to == &pair->client ? &pair->shutdown_client : &pair->shutdown_target;
    req->data = pair;
    if (uv_shutdown(req, (uv_stream_t *)&to->tcp, on_shutdown) == 0) {
      to->shut = 1;
      pair->shutdowns_pending++;
    } else {
      pair_reset(pair);
      return;
    }
  }
  maybe_close_after_eofs(pair);
}

/* ---- connection lifetime ------------------------------------------------ */

static void on_pair_handle_closed(uv_handle_t *handle) {
  side_t *s = handle->data;
  pair_t *pair = s->pair;
  xmppuv_test_proxy_t *proxy = pair->proxy;
  if (--pair->handles > 0) return;
  if (pair->prev != NULL)
    pair->prev->next = pair->next;
  else
    proxy->pairs = pair->next;
  if (pair->next != NULL) pair->next->prev = pair->prev;
  proxy->stats.active--;
  if (proxy->latest == pair) proxy->latest = NULL;
  free(pair);
  maybe_finish(proxy);
}

static void drop_delayed(side_t *s) {
  while (s->dq_head != NULL) {
    delayed_t *d = s->dq_head;
    s->dq_head = d->next;
    free(d->base);
    free(d);
  }
  s->dq_tail = NULL;
  if (s->timer_open) {
    s->timer_open = 0;
    uv_close((uv_handle_t *)&s->timer, on_pair_handle_closed);
  }
}

static void close_side(side_t *s, int reset) {
  drop_delayed(s);
  if (!s->open) return;
  if (reset) {
    /* SO_LINGER 0: close() sends a RST instead of a FIN. Set by hand
     * because uv_tcp_close_reset() refuses a handle with a shutdown
     * pending. */
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
      struct linger l = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
  }
  s->open = 0;
  s->reading = 0;
  uv_close((uv_handle_t *)&s->tcp, on_pair_handle_closed);
}

static void pair_reset(pair_t *pair) {
  if (pair->closing) return;
  pair->closing = 1;
  close_side(&pair->client, 1);
  close_side(&pair->target, 1);
}

static void pair_close(pair_t *pair) {
  if (pair->closing) return;
  pair->closing = 1;
  close_side(&pair->client, 0);
  close_side(&pair->target, 0);
}

static void on_target_connected(uv_connect_t *req, int status) {
  pair_t *pair = req->data;
  if (status < 0) {
    if (status != UV_ECANCELED) {
      pair->proxy->stats.target_failures++;
      pair_reset(pair);
    }
    return;
  }
  pair->connected = 1;
  uv_tcp_nodelay(&pair->target.tcp, 1);
  update_reading(&pair->client);
  update_reading(&pair->target);
}

static void init_side(pair_t *pair, side_t *s, side_t *peer) {
  s->pair = pair;
  s->peer = peer;
  s->tcp.data = s;
  if (uv_timer_init(pair->proxy->loop, &s->timer) == 0) {
    s->timer.data = s;
    s->timer_open = 1;
    pair->handles++;
  }
}

static void on_connection(uv_stream_t *server, int status) {
  xmppuv_test_proxy_t *proxy = server->data;
  if (status < 0 || proxy->closing) return;
  pair_t *pair = calloc(1, sizeof(*pair));
  if (pair == NULL) return;
  pair->proxy = proxy;
  init_side(pair, &pair->client, &pair->target);
  init_side(pair, &pair->target, &pair->client);
  pair->next = proxy->pairs;
  if (proxy->pairs != NULL) proxy->pairs->prev = pair;
  proxy->pairs = pair;
  proxy->stats.active++;
  proxy->latest = pair;
  proxy->stats.latest_client_flights = 0;

  uv_tcp_init(proxy->loop, &pair->client.tcp);
  pair->client.tcp.data = &pair->client;
  pair->client.open = 1;
  pair->handles++;
  if (uv_accept(server, (uv_stream_t *)&pair->client.tcp) != 0) {
    pair_reset(pair);
    return;
  }
  proxy->stats.accepted++;
  uv_tcp_nodelay(&pair->client.tcp, 1);

  uv_tcp_init(proxy->loop, &pair->target.tcp);
  pair->target.tcp.data = &pair->target;
  pair->target.open = 1;
  pair->handles++;
  pair->connect.data = pair;
  if (uv_tcp_connect(&pair->connect, &pair->target.tcp,
                     (const struct sockaddr *)&proxy->target,
                     on_target_connected) != 0) {
    proxy->stats.target_failures++;
    pair_reset(pair);
  }
}

/* ---- listener ----------------------------------------------------------- */

static void on_listener_closed(uv_handle_t *handle) {
  xmppuv_test_proxy_t *proxy = handle->data;
  free(handle);
  proxy->listeners_closing--;
  maybe_finish(proxy);
}

static void close_listener(xmppuv_test_proxy_t *proxy) {
  if (proxy->listener == NULL) return;
  proxy->listeners_closing++;
  uv_close((uv_handle_t *)proxy->listener, on_listener_closed);
  proxy->listener = NULL;
}

static void close_holder(xmppuv_test_proxy_t *proxy) {
  if (proxy->holder == NULL) return;
  proxy->listeners_closing++;
  uv_close((uv_handle_t *)proxy->holder, on_listener_closed);
  proxy->holder = NULL;
}

/* Bind the port without listening (the listener's socket is closed by now:
 * uv_close closes it at once). A bind that fails leaves the port free, as
 * before: the refusal still holds while nobody else takes it. */
static void hold_port(xmppuv_test_proxy_t *proxy) {
  uv_tcp_t *tcp = malloc(sizeof(*tcp));
  if (tcp == NULL) return;
  if (uv_tcp_init(proxy->loop, tcp) != 0) {
    free(tcp);
    return;
  }
  tcp->data = proxy;
  proxy->holder = tcp;
  if (uv_tcp_bind(tcp, (const struct sockaddr *)&proxy->listen_addr, 0) != 0)
    close_holder(proxy);
}

/* Listen on proxy->listen_addr (port 0 the first time). */
static int open_listener(xmppuv_test_proxy_t *proxy) {
  uv_tcp_t *tcp = malloc(sizeof(*tcp));
  if (tcp == NULL) return UV_ENOMEM;
  int rc = uv_tcp_init(proxy->loop, tcp);
  if (rc != 0) {
    free(tcp);
    return rc;
  }
  tcp->data = proxy;
  proxy->listener = tcp;
  rc = uv_tcp_bind(tcp, (const struct sockaddr *)&proxy->listen_addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)tcp, 128, on_connection);
  if (rc == 0) {
    struct sockaddr_in name;
    int len = (int)sizeof(name);
    rc = uv_tcp_getsockname(tcp, (struct sockaddr *)&name, &len);
    if (rc == 0) {
      proxy->port = ntohs(name.sin_port);
      proxy->listen_addr.sin_port = name.sin_port;
    }
  }
  if (rc != 0) close_listener(proxy);
  return rc;
}

static void on_anchor_closed(uv_handle_t *handle) {
  xmppuv_test_proxy_t *proxy = handle->data;
  proxy->anchor_open = 0;
  maybe_finish(proxy);
}

static void on_failed_start_closed(void *user_data) {
  (void)user_data;
}

int xmppuv_test_proxy_start(uv_loop_t *loop, const char *target_host,
                            unsigned short target_port,
                            xmppuv_test_proxy_t **out) {
  *out = NULL;
  if (loop == NULL || target_host == NULL) return UV_EINVAL;
  if (strcmp(target_host, "localhost") == 0) target_host = "127.0.0.1";
  xmppuv_test_proxy_t *proxy = calloc(1, sizeof(*proxy));
  if (proxy == NULL) return UV_ENOMEM;
  proxy->loop = loop;
  if (uv_ip4_addr(target_host, target_port,
                  (struct sockaddr_in *)&proxy->target) != 0 &&
      uv_ip6_addr(target_host, target_port,
                  (struct sockaddr_in6 *)&proxy->target) != 0) {
    free(proxy);
    return UV_EINVAL;
  }
  uv_ip4_addr("127.0.0.1", 0, &proxy->listen_addr);
  uv_idle_init(loop, &proxy->anchor);
  proxy->anchor.data = proxy;
  proxy->anchor_open = 1;
  int rc = open_listener(proxy);
  if (rc != 0) {
    /* The handles made so far still need their close callbacks. */
    xmppuv_test_proxy_close(proxy, on_failed_start_closed, NULL);
    return rc;
  }
  *out = proxy;
  return 0;
}

unsigned short xmppuv_test_proxy_port(const xmppuv_test_proxy_t *proxy) {
  return proxy->port;
}

void xmppuv_test_proxy_reset_all(xmppuv_test_proxy_t *proxy) {
  for (pair_t *pair = proxy->pairs; pair != NULL; pair = pair->next) {
    if (pair->closing) continue;
    proxy->stats.resets++;
    pair_reset(pair);
  }
}

void xmppuv_test_proxy_delay(xmppuv_test_proxy_t *proxy, unsigned one_way_ms) {
  proxy->delay_ms = one_way_ms;
}

void xmppuv_test_proxy_partition(xmppuv_test_proxy_t *proxy, int on) {
  proxy->partitioned = on != 0;
  for (pair_t *pair = proxy->pairs; pair != NULL; pair = pair->next) {
    update_reading(&pair->client);
    update_reading(&pair->target);
  }
}

void xmppuv_test_proxy_stall_existing(xmppuv_test_proxy_t *proxy) {
  for (pair_t *pair = proxy->pairs; pair != NULL; pair = pair->next) {
    pair->stalled = 1;
    update_reading(&pair->client);
    update_reading(&pair->target);
  }
}

int xmppuv_test_proxy_refuse(xmppuv_test_proxy_t *proxy, int on) {
  if (proxy->closing) return UV_EINVAL;
  if (on) {
    if (proxy->refusing) return 0;
    proxy->refusing = 1;
    close_listener(proxy);
    hold_port(proxy);
    return 0;
  }
  if (!proxy->refusing) return 0;
  close_holder(proxy);
  int rc = open_listener(proxy);
  if (rc == 0) proxy->refusing = 0;
  return rc;
}

void xmppuv_test_proxy_stats(const xmppuv_test_proxy_t *proxy,
                             xmppuv_test_proxy_stats_t *out) {
  *out = proxy->stats;
}

void xmppuv_test_proxy_close(xmppuv_test_proxy_t *proxy,
                             void (*cb)(void *user_data), void *user_data) {
  if (proxy == NULL || proxy->closing) return;
  proxy->closing = 1;
  proxy->close_cb = cb;
  proxy->close_data = user_data;
  close_listener(proxy);
  close_holder(proxy);
  for (pair_t *pair = proxy->pairs; pair != NULL; pair = pair->next)
    pair_close(pair);
  uv_close((uv_handle_t *)&proxy->anchor, on_anchor_closed);
}
