#include "transport/tcp.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "xmppuv.h"

struct xmppuv__tcp {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_timer_t timer;     /* connect timeout */
  uv_prepare_t prepare; /* flushes pending output before the loop polls */
  uv_write_t write_req;
  /* The connect and shutdown requests are allocated while they run (their
   * callbacks always come, with UV_ECANCELED when the handle closes first,
   * and free them): an idle connection holds neither. */
  xmppuv__buf_t pending;  /* queued, not yet given to uv_write */
  xmppuv__buf_t inflight; /* owned by the uv_write in progress */
  int writing;
  int connected;
  int closing;         /* close requested: no more events but closed */
  int shutdown_wanted; /* graceful close waiting for writes */
  int wake;            /* before_flush wanted at the next prepare */
  int open_handles;
  xmppuv__tcp_events_t ev;
  void *ud;
  const xmppuv__log_t *log;
  char peer[64];
  int paused; /* reading stopped: the reader has enough for now */
};

/* Shared by every connection of the thread: read_cb consumes the bytes
 * before libuv asks for a buffer again. 16 KB, a TLS record's worth: what
 * the reader cannot take at once it holds, and this bounds that. */
static _Thread_local char read_buffer[16 * 1024];

static void close_handles(xmppuv__tcp_t *t, int reset);

static void on_handle_closed(uv_handle_t *h) {
  xmppuv__tcp_t *t = h->data;
  if (--t->open_handles > 0) return;
  void (*closed)(void *) = t->ev.closed;
  void *ud = t->ud;
  xmppuv__buf_free(&t->pending);
  xmppuv__buf_free(&t->inflight);
  xmppuv__free(t);
  if (closed != NULL) closed(ud);
}

static void close_handles(xmppuv__tcp_t *t, int reset) {
  if (uv_is_closing((uv_handle_t *)&t->tcp)) return;
  uv_close((uv_handle_t *)&t->timer, on_handle_closed);
  uv_close((uv_handle_t *)&t->prepare, on_handle_closed);
  /* RST for an abort, so the server sees the connection go at once (and a
   * half-open stream cannot linger); an orderly FIN otherwise. */
  if (reset && t->connected &&
      uv_tcp_close_reset(&t->tcp, on_handle_closed) == 0)
    return;
  uv_close((uv_handle_t *)&t->tcp, on_handle_closed);
}

/* A failure after connecting. During a graceful close it only ends the
 * close early (the owner asked for the close and hears nothing more). */
static void fail(xmppuv__tcp_t *t, int status) {
  int report = !t->closing;
  t->closing = 1;
  t->shutdown_wanted = 0;
  uv_read_stop((uv_stream_t *)&t->tcp);
  if (report && t->ev.error != NULL) t->ev.error(t->ud, status);
  close_handles(t, 1);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  xmppuv__tcp_t *t = req->data;
  xmppuv__free(req);
  close_handles(t, 0);
}

static void start_shutdown(xmppuv__tcp_t *t) {
  t->shutdown_wanted = 0;
  uv_shutdown_t *req = xmppuv__malloc(sizeof *req);
  if (req == NULL) {
    close_handles(t, 0); /* what a failed shutdown does anyway */
    return;
  }
  req->data = t;
  if (uv_shutdown(req, (uv_stream_t *)&t->tcp, on_shutdown) != 0) {
    xmppuv__free(req);
    close_handles(t, 0);
  }
}

static void flush(xmppuv__tcp_t *t);

static void on_write(uv_write_t *req, int status) {
  xmppuv__tcp_t *t = req->data;
  t->writing = 0;
  /* Free rather than keep: an idle connection should hold no buffers. */
  xmppuv__buf_free(&t->inflight);
  if (status == UV_ECANCELED) return; /* closing */
  if (status < 0) {
    fail(t, status);
    return;
  }
  if (t->pending.len > 0) {
    flush(t);
  } else if (t->shutdown_wanted) {
    start_shutdown(t);
  }
}

static void flush(xmppuv__tcp_t *t) {
  if (t->writing || t->pending.len == 0 || !t->connected) return;
  xmppuv__buf_t swap = t->inflight;
  t->inflight = t->pending;
  t->pending = swap;
  xmppuv__buf_clear(&t->pending);
  uv_buf_t b = uv_buf_init(t->inflight.data, (unsigned int)t->inflight.len);
  t->write_req.data = t;
  int rc = uv_write(&t->write_req, (uv_stream_t *)&t->tcp, &b, 1, on_write);
  if (rc != 0) {
    xmppuv__buf_free(&t->inflight);
    fail(t, rc);
    return;
  }
  t->writing = 1;
}

static void on_prepare(uv_prepare_t *p) {
  xmppuv__tcp_t *t = p->data;
  uv_prepare_stop(p);
  if (t->wake) {
    t->wake = 0;
    if (!t->closing && t->ev.before_flush != NULL) t->ev.before_flush(t->ud);
  }
  if (!t->closing || t->shutdown_wanted) flush(t);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  xmppuv__tcp_t *t = s->data;
  (void)buf;
  if (t->closing) return;
  if (n > 0) {
    if (t->ev.data != NULL) t->ev.data(t->ud, read_buffer, (size_t)n);
  } else if (n == UV_EOF) {
    fail(t, XMPPUV_EEOF);
  } else if (n < 0) {
    fail(t, (int)n);
  }
}

static void on_timeout(uv_timer_t *timer) {
  xmppuv__tcp_t *t = timer->data;
  if (t->connected || t->closing) return;
  t->closing = 1;
  xmppuv__logf(t->log, XMPPUV_LOG_DEBUG, "tcp", "connect to %s timed out", t->peer);
  if (t->ev.connected != NULL) t->ev.connected(t->ud, XMPPUV_ETIMEDOUT);
  close_handles(t, 0);
}

static void on_connect(uv_connect_t *req, int status) {
  xmppuv__tcp_t *t = req->data;
  xmppuv__free(req);
  if (t->closing) return; /* timed out or closed: already reported */
  uv_timer_stop(&t->timer);
  if (status < 0) {
    t->closing = 1;
    xmppuv__logf(t->log, XMPPUV_LOG_DEBUG, "tcp", "connect to %s: %s", t->peer,
                 uv_strerror(status));
    if (t->ev.connected != NULL) t->ev.connected(t->ud, status);
    close_handles(t, 0);
    return;
  }
  t->connected = 1;
  /* Two back-to-back small writes cost a delayed-ACK round trip otherwise. */
  uv_tcp_nodelay(&t->tcp, 1);
  uv_tcp_keepalive(&t->tcp, 1, 60);
  int rc = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
  if (rc != 0) {
    t->closing = 1;
    if (t->ev.connected != NULL) t->ev.connected(t->ud, rc);
    close_handles(t, 1);
    return;
  }
  if (t->ev.connected != NULL) t->ev.connected(t->ud, 0);
  if (!t->closing && t->pending.len > 0) flush(t);
}

void xmppuv__tcp_pause(xmppuv__tcp_t *t, int paused) {
  if (!t->connected || t->closing || t->paused == paused) return;
  t->paused = paused;
  if (paused)
    uv_read_stop((uv_stream_t *)&t->tcp);
  else if (uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read) != 0)
    fail(t, XMPPUV_ENOMEM);
}

static void format_peer(char *out, size_t size, const struct sockaddr *addr) {
  char ip[64] = "?";
  int port = 0;
  if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)addr;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    snprintf(out, size, "[%s]:%d", ip, port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)addr;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    snprintf(out, size, "%s:%d", ip, port);
  }
}

int xmppuv__tcp_connect(uv_loop_t *loop, const struct sockaddr *addr,
                        uint64_t timeout_ms, const xmppuv__tcp_events_t *ev,
                        void *ud, const xmppuv__log_t *log,
                        xmppuv__tcp_t **out) {
  *out = NULL;
  xmppuv__tcp_t *t = xmppuv__calloc(1, sizeof *t);
  if (t == NULL) return XMPPUV_ENOMEM;
  t->loop = loop;
  t->ev = *ev;
  t->ud = ud;
  t->log = log;
  format_peer(t->peer, sizeof t->peer, addr);
  int rc = uv_tcp_init(loop, &t->tcp);
  if (rc != 0) {
    xmppuv__free(t);
    return rc;
  }
  uv_timer_init(loop, &t->timer);
  uv_prepare_init(loop, &t->prepare);
  t->tcp.data = t->timer.data = t->prepare.data = t;
  t->open_handles = 3;
  uv_connect_t *req = xmppuv__malloc(sizeof *req);
  rc = req != NULL ? 0 : XMPPUV_ENOMEM;
  if (req != NULL) {
    req->data = t;
    rc = uv_tcp_connect(req, &t->tcp, addr, on_connect);
    if (rc != 0) xmppuv__free(req);
  }
  if (rc != 0) {
    /* The callback must not run: close quietly and free in the close cb. */
    t->ev.closed = NULL;
    t->closing = 1;
    close_handles(t, 0);
    return rc;
  }
  if (timeout_ms > 0) uv_timer_start(&t->timer, on_timeout, timeout_ms, 0);
  *out = t;
  return 0;
}

int xmppuv__tcp_write(xmppuv__tcp_t *t, const char *data, size_t len) {
  if (t->closing) return XMPPUV_ESTATE;
  if (xmppuv__buf_append(&t->pending, data, len) != 0) return XMPPUV_ENOMEM;
  xmppuv__tcp_flush_soon(t);
  return 0;
}

int xmppuv__tcp_write_buf(xmppuv__tcp_t *t, xmppuv__buf_t *b) {
  if (t->closing) return XMPPUV_ESTATE;
  if (b->len == 0) return 0;
  int rc = xmppuv__buf_take(&t->pending, b);
  if (rc == 0) xmppuv__tcp_flush_soon(t);
  return rc;
}

xmppuv__buf_t *xmppuv__tcp_out(xmppuv__tcp_t *t) { return &t->pending; }

void xmppuv__tcp_flush_soon(xmppuv__tcp_t *t) {
  if (t->pending.len > 0 && !t->writing && !uv_is_active((uv_handle_t *)&t->prepare))
    uv_prepare_start(&t->prepare, on_prepare);
}

void xmppuv__tcp_wake(xmppuv__tcp_t *t) {
  if (t->closing) return;
  t->wake = 1;
  if (!uv_is_active((uv_handle_t *)&t->prepare)) uv_prepare_start(&t->prepare, on_prepare);
}

size_t xmppuv__tcp_pending(const xmppuv__tcp_t *t) {
  return t->pending.len + t->inflight.len;
}

void xmppuv__tcp_close(xmppuv__tcp_t *t, int graceful) {
  if (t == NULL) return;
  if (t->closing) {
    /* An abort overrides a graceful close still draining. */
    if (!graceful) {
      t->shutdown_wanted = 0;
      close_handles(t, 1);
    }
    return;
  }
  t->closing = 1;
  uv_read_stop((uv_stream_t *)&t->tcp);
  if (graceful && t->connected) {
    if (t->writing || t->pending.len > 0) {
      t->shutdown_wanted = 1;
      flush(t);
    } else {
      start_shutdown(t);
    }
    return;
  }
  close_handles(t, !graceful);
}

const char *xmppuv__tcp_peer(const xmppuv__tcp_t *t) { return t->peer; }
