#include "transport/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>

#include "util/alloc.h"
#include "transport/tcp.h"

#define DIRECT_TLS_PORT 5223u

typedef enum {
  CONN_RESOLVING, /* finding targets or a target's addresses */
  CONN_CONNECTING,
  CONN_HANDSHAKE, /* direct TLS handshake */
  CONN_OPEN,
  CONN_STARTTLS, /* STARTTLS handshake */
  CONN_CLOSING
} conn_state_t;

struct xmppuv__conn {
  xmppuv__transport_t base; /* first: a conn is a transport */
  uv_loop_t *loop;
  conn_state_t state;
  xmppuv__conn_events_t ev;
  void *ud;
  const xmppuv__log_t *log;

  char *domain;
  char *host;
  uint16_t port;
  char *first_host;
  uint16_t first_port;
  xmppuv_tls_mode_t tls_mode;
  xmppuv__tls_ctx_t *tls_ctx;
  xmppuv__tls_session_t **tls_session; /* the owner's slot (transport.h) */
  int direct_alpn;
  char *dns_servers;
  uint64_t dns_timeout_ms;
  uint64_t connect_timeout_ms;

  xmppuv__target_list_t *targets; /* in order */
  size_t target_at;
  xmppuv__addr_list_t *addrs; /* of the current target */
  size_t addr_at;
  int last_error;
  /* What the failed attempts were, in words, for the error's text (each
   * lookup and address, "; " between them), and how many did not fit. */
  char *attempts; /* ATTEMPTS_MAX bytes once the first attempt failed; freed
                     once connected (an idle client keeps none) */
  unsigned attempts_more;

  xmppuv__dns_query_t *query; /* in flight */
  xmppuv__tcp_t *tcp;         /* current socket */
  int live_tcps;              /* sockets not yet closed (old attempts too) */
  xmppuv__tls_t *tls;
  /* Plaintext written during this loop iteration, encrypted in one go just
   * before the socket is written: one TLS record per burst, not per
   * stanza. */
  xmppuv__buf_t plain;
  int direct_tls; /* the current target wants TLS from the first byte */
  /* Closing this handle last makes `closed` always run from the loop,
   * never inside the call that closes the connection. */
  uv_idle_t own;
  int own_open;
  /* Direct TLS: the handshake must finish within connect_timeout_ms too,
   * or a server that accepts TCP and never answers would hold us forever. */
  uv_timer_t handshake_timer;
  int timer_open;
  int closed_reported;
  int paused; /* the owner takes no input for now (xmppuv__conn_pause) */
  char *peer; /* "host [ip]:port" for messages (peer_name()) */
  /* A handshake step put off to a later loop iteration (drive_tls):
   * linked in its loop's queue of them, oldest first. */
  int deferred;
  xmppuv__conn_t *defer_prev, *defer_next;
};

static _Thread_local char plain_buffer[16 * 1024];

static void try_next_target(xmppuv__conn_t *c);
static void try_next_addr(xmppuv__conn_t *c);
static void undefer(xmppuv__conn_t *c);

/* The peer as messages name it. Kept at its length, not in a fixed
 * 300-byte field: every idle connection holds it. */
static void set_peer(xmppuv__conn_t *c, const char *text) {
  xmppuv__free(c->peer);
  c->peer = xmppuv__strdup(text);
}

static const char *peer_name(const xmppuv__conn_t *c) {
  return c->peer != NULL ? c->peer : c->domain != NULL ? c->domain : "the server";
}

/* ---- teardown ------------------------------------------------------------ */

static void free_conn(xmppuv__conn_t *c) {
  if (c->plain.data != NULL) {
    /* It may have held a SASL exchange. */
    memset(c->plain.data, 0, c->plain.cap);
    xmppuv__buf_free(&c->plain);
  }
  xmppuv__target_list_free(c->targets);
  xmppuv__addr_list_free(c->addrs);
  xmppuv__tls_free(c->tls);
  xmppuv__tls_ctx_unref(c->tls_ctx);
  xmppuv__free(c->peer);
  xmppuv__free(c->domain);
  xmppuv__free(c->host);
  xmppuv__free(c->first_host);
  xmppuv__free(c->dns_servers);
  xmppuv__free(c->attempts);
  xmppuv__free(c);
}

/* Report closed and free once nothing is left running. */
static void maybe_finish(xmppuv__conn_t *c) {
  if (c->state != CONN_CLOSING || c->query != NULL || c->live_tcps > 0 ||
      c->own_open || c->timer_open)
    return;
  if (c->closed_reported) return;
  c->closed_reported = 1;
  void (*closed)(void *) = c->ev.closed;
  void *ud = c->ud;
  free_conn(c);
  if (closed != NULL) closed(ud);
}

static void on_own_closed(uv_handle_t *h) {
  xmppuv__conn_t *c = h->data;
  c->own_open = 0;
  maybe_finish(c);
}

static void on_timer_closed(uv_handle_t *h) {
  xmppuv__conn_t *c = h->data;
  c->timer_open = 0;
  maybe_finish(c);
}

static int pump_tls_out(xmppuv__conn_t *c);

/* Encrypt what was gathered this iteration (one call, so mbedTLS makes as
 * few records as the size allows) and hand it to the socket. */
static int encrypt_gathered(xmppuv__conn_t *c) {
  if (c->plain.len == 0 || c->tls == NULL) return 0;
  int rc = xmppuv__tls_write(c->tls, c->plain.data, c->plain.len);
  memset(c->plain.data, 0, c->plain.len);
  /* Given back every time: once per loop iteration costs nothing next to
   * the encryption, and an idle connection then holds no buffer. */
  xmppuv__buf_free(&c->plain);
  if (rc == 0) rc = pump_tls_out(c);
  return rc;
}

/* Start closing everything; `closed` follows from the loop. */
static void shut(xmppuv__conn_t *c, int graceful) {
  if (c->state == CONN_CLOSING) {
    if (!graceful && c->tcp != NULL) xmppuv__tcp_close(c->tcp, 0);
    return;
  }
  c->state = CONN_CLOSING;
  undefer(c);
  if (c->query != NULL) xmppuv__dns_cancel(c->query); /* callback follows */
  if (c->tcp != NULL) {
    if (graceful && c->tls != NULL) encrypt_gathered(c);
    if (graceful && c->tls != NULL && xmppuv__tls_close_notify(c->tls) == 0) {
      size_t n;
      const char *out = xmppuv__tls_out(c->tls, &n);
      if (n > 0 && xmppuv__tcp_write(c->tcp, out, n) == 0)
        xmppuv__tls_out_consume(c->tls, n);
    }
    xmppuv__tcp_close(c->tcp, graceful);
  }
  uv_close((uv_handle_t *)&c->handshake_timer, on_timer_closed);
  uv_close((uv_handle_t *)&c->own, on_own_closed);
}

/* A failure the owner must hear about, with what happened in words; the
 * connection then closes. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void failf(xmppuv__conn_t *c, int status, const char *fmt, ...);

#define ATTEMPTS_MAX 360

static void note_attempt(xmppuv__conn_t *c, int status, const char *fmt, ...) {
  c->last_error = status;
  if (c->attempts == NULL && (c->attempts = xmppuv__calloc(1, ATTEMPTS_MAX)) == NULL) {
    c->attempts_more++; /* no memory for the words: only the count */
    return;
  }
  char one[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(one, sizeof one, fmt, ap);
  va_end(ap);
  size_t len = strlen(c->attempts);
  if (len + strlen(one) + 2 >= ATTEMPTS_MAX) {
    c->attempts_more++;
    return;
  }
  snprintf(c->attempts + len, ATTEMPTS_MAX - len, "%s%s", len > 0 ? "; " : "", one);
}

static void forget_attempts(xmppuv__conn_t *c) {
  xmppuv__free(c->attempts);
  c->attempts = NULL;
  c->attempts_more = 0;
}

/* A TLS failure: the filter says which check and why. */
static void fail_tls(xmppuv__conn_t *c, int status) {
  const char *why = xmppuv__tls_error_text(c->tls);
  failf(c, status, "TLS with %s: %s", peer_name(c), why != NULL ? why : xmppuv_strerror(status));
}

static void failf(xmppuv__conn_t *c, int status, const char *fmt, ...) {
  if (c->state == CONN_CLOSING) return;
  char detail[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  shut(c, 0);
  if (c->ev.error != NULL) c->ev.error(c->ud, status, detail);
}

/* ---- TLS glue ----------------------------------------------------------- */

/* Move whatever ciphertext the filter produced to the socket. */
static int pump_tls_out(xmppuv__conn_t *c) {
  size_t n;
  const char *out = xmppuv__tls_out(c->tls, &n);
  if (n == 0) return 0;
  int rc = xmppuv__tcp_write(c->tcp, out, n);
  if (rc == 0) xmppuv__tls_out_consume(c->tls, n);
  return rc;
}

/* The handshake is done: its session for the owner's next connection (the
 * one before is replaced; without memory, the old one stays: the server
 * then does a full handshake). */
static void keep_session(xmppuv__conn_t *c) {
  if (c->tls_session == NULL) return;
  xmppuv__tls_session_t *s = NULL;
  if (xmppuv__tls_session_save(c->tls, &s) != 0 || s == NULL) return;
  xmppuv__tls_session_free(*c->tls_session);
  *c->tls_session = s;
}

/* A TLS handshake's public-key work (ECDHE, the certificate chain and the
 * key exchange signatures: milliseconds with mbedTLS) runs on the loop.
 * When many handshakes get their answers in the same poll (a thousand
 * clients reconnecting to a restarted server) the loop would run them all
 * in one iteration, seconds during which no timer fires and no other
 * socket is read. Past this much handshake work in one iteration (per
 * thread: a thread runs one loop at a time), the next handshake step waits
 * for a later iteration, in turn (the queue below). The first step of an
 * iteration always runs, so every handshake progresses. */
#define HANDSHAKE_BUDGET_NS (5u * 1000u * 1000u)
static _Thread_local uint64_t budget_now = UINT64_MAX; /* uv_now() of the iteration */
static _Thread_local uint64_t budget_spent_ns;

/* The steps put off wait in a queue per loop, oldest first, and only the
 * first one's idle handle is active: ten thousand waiting connections cost
 * one callback per iteration, not ten thousand. A thread runs its loops
 * one at a time, but may have several: a few queues per thread. */
#define DEFER_LOOPS 8
typedef struct defer_queue {
  uv_loop_t *loop;
  xmppuv__conn_t *head, *tail;
} defer_queue_t;
static _Thread_local defer_queue_t defer_queues[DEFER_LOOPS];
static _Thread_local uint64_t n_deferred; /* steps put off so far (tests) */

uint64_t xmppuv__conn_steps_deferred(void) { return n_deferred; }

static void on_own_idle(uv_idle_t *h);

static int handshaking(const xmppuv__conn_t *c) {
  return c->state == CONN_HANDSHAKE || c->state == CONN_STARTTLS;
}

static int budget_spent(uv_loop_t *loop) {
  uint64_t now = uv_now(loop);
  if (budget_now != now) {
    budget_now = now;
    budget_spent_ns = 0;
  }
  return budget_spent_ns >= HANDSHAKE_BUDGET_NS;
}

static defer_queue_t *defer_queue_of(uv_loop_t *loop, int add) {
  defer_queue_t *free_slot = NULL;
  for (size_t i = 0; i < DEFER_LOOPS; i++) {
    if (defer_queues[i].loop == loop) return &defer_queues[i];
    if (free_slot == NULL && defer_queues[i].head == NULL) free_slot = &defer_queues[i];
  }
  if (!add || free_slot == NULL) return NULL;
  free_slot->loop = loop;
  return free_slot;
}

/* Queue c's next handshake step; 0 if it cannot wait (no queue free: it
 * runs now, as without the budget). */
static int defer(xmppuv__conn_t *c) {
  if (c->deferred) return 1;
  if (!c->own_open) return 0;
  defer_queue_t *q = defer_queue_of(c->own.loop, 1);
  if (q == NULL) return 0;
  c->deferred = 1;
  n_deferred++;
  c->defer_next = NULL;
  c->defer_prev = q->tail;
  if (q->tail != NULL)
    q->tail->defer_next = c;
  else
    q->head = c;
  q->tail = c;
  if (q->head == c) uv_idle_start(&c->own, on_own_idle);
  return 1;
}

static void undefer(xmppuv__conn_t *c) {
  if (!c->deferred) return;
  defer_queue_t *q = defer_queue_of(c->own.loop, 0);
  c->deferred = 0;
  if (q == NULL) return;
  int was_head = q->head == c;
  if (c->defer_prev != NULL) c->defer_prev->defer_next = c->defer_next;
  else q->head = c->defer_next;
  if (c->defer_next != NULL) c->defer_next->defer_prev = c->defer_prev;
  else q->tail = c->defer_prev;
  c->defer_prev = c->defer_next = NULL;
  if (was_head) {
    uv_idle_stop(&c->own);
    if (q->head != NULL) uv_idle_start(&q->head->own, on_own_idle);
  }
}

static void drive_tls(xmppuv__conn_t *c);

/* The first waiting connection's idle callback: run the queue in order
 * while the iteration's budget lasts. */
static void run_deferred(uv_loop_t *loop) {
  defer_queue_t *q = defer_queue_of(loop, 0);
  while (q != NULL && q->head != NULL) {
    if (budget_spent(loop)) {
      uv_idle_start(&q->head->own, on_own_idle);
      return;
    }
    xmppuv__conn_t *c = q->head;
    undefer(c);
    if (handshaking(c)) drive_tls(c);
  }
}

/* Run the handshake and read plaintext as far as the input allows. */
static void drive_tls(xmppuv__conn_t *c) {
  if (handshaking(c)) {
    if (c->deferred) return; /* its turn comes in order */
    if (budget_spent(c->own.loop) && defer(c)) return;
    uint64_t t0 = uv_hrtime();
    int rc = xmppuv__tls_handshake(c->tls);
    budget_spent_ns += uv_hrtime() - t0;
    int out_rc = pump_tls_out(c);
    if (rc < 0) {
      xmppuv__logf(c->log, XMPPUV_LOG_ERROR, "tls", "TLS with %s failed: %s",
                   peer_name(c), xmppuv_strerror(rc));
      fail_tls(c, rc);
      return;
    }
    if (out_rc != 0) {
      failf(c, out_rc, "writing to %s: %s", peer_name(c), xmppuv_strerror(out_rc));
      return;
    }
    if (rc == 0) return; /* need more input */
    uv_timer_stop(&c->handshake_timer);
    xmppuv__logf(c->log, XMPPUV_LOG_INFO, "tls", "%s %s with %s%s",
                 xmppuv__tls_version(c->tls), xmppuv__tls_ciphersuite(c->tls), peer_name(c),
                 xmppuv__tls_resumed(c->tls) ? " (session resumed)" : "");
    keep_session(c);
    if (c->state == CONN_HANDSHAKE) {
      c->state = CONN_OPEN;
      forget_attempts(c);
      if (c->ev.connected != NULL) c->ev.connected(c->ud, 1);
    } else {
      c->state = CONN_OPEN;
      if (c->ev.tls_ready != NULL) c->ev.tls_ready(c->ud);
    }
    if (c->state != CONN_OPEN) return;
  }
  for (;;) {
    size_t n = 0;
    int rc = xmppuv__tls_read(c->tls, plain_buffer, sizeof plain_buffer, &n);
    if (pump_tls_out(c) != 0) {
      failf(c, XMPPUV_ENOMEM, "out of memory writing to %s", peer_name(c));
      return;
    }
    if (rc < 0) {
      fail_tls(c, rc);
      return;
    }
    if (n == 0) return;
    if (c->ev.data != NULL) c->ev.data(c->ud, plain_buffer, n);
    /* The owner may have closed us, or started something new, or want no
     * more for now: what TLS holds waits in it. */
    if (c->state != CONN_OPEN || c->paused) return;
  }
}

static int start_tls(xmppuv__conn_t *c, int direct) {
  if (c->tls_ctx == NULL) return XMPPUV_ESTATE;
  int rc = xmppuv__tls_new(c->tls_ctx, c->domain, direct ? c->direct_alpn : XMPPUV__ALPN_NONE,
                           &c->tls);
  if (rc != 0) return rc;
  xmppuv__tls_set_log(c->tls, c->log);
  if (c->tls_session != NULL) xmppuv__tls_session_offer(c->tls, *c->tls_session);
  rc = xmppuv__tls_handshake(c->tls); /* queues the ClientHello */
  if (rc < 0) return rc;
  return pump_tls_out(c);
}

/* ---- socket events -------------------------------------------------------- */

static void on_handshake_timeout(uv_timer_t *t) {
  xmppuv__conn_t *c = t->data;
  if (c->state != CONN_HANDSHAKE) return;
  xmppuv__logf(c->log, XMPPUV_LOG_WARN, "tls", "no TLS handshake with %s in %llu ms",
               peer_name(c), (unsigned long long)c->connect_timeout_ms);
  failf(c, XMPPUV_ETIMEDOUT,
        "%s accepted the connection but finished no TLS handshake within %llu ms (a "
        "STARTTLS port? then use XMPPUV_TLS_STARTTLS)",
        peer_name(c), (unsigned long long)c->connect_timeout_ms);
}

static void on_tcp_connected(void *ud, int status) {
  xmppuv__conn_t *c = ud;
  if (c->state != CONN_CONNECTING) return;
  if (status != 0) {
    if (status == XMPPUV_ETIMEDOUT)
      note_attempt(c, status, "connecting to %s timed out after %llu ms", peer_name(c),
                   (unsigned long long)c->connect_timeout_ms);
    else
      note_attempt(c, status, "connecting to %s: %s", peer_name(c), xmppuv_strerror(status));
    c->tcp = NULL; /* it closes itself */
    try_next_addr(c);
    return;
  }
  xmppuv__logf(c->log, XMPPUV_LOG_INFO, "connect", "connected to %s%s", peer_name(c),
               c->direct_tls ? " (direct TLS)" : "");
  if (c->direct_tls) {
    c->state = CONN_HANDSHAKE;
    if (c->connect_timeout_ms != 0)
      uv_timer_start(&c->handshake_timer, on_handshake_timeout, c->connect_timeout_ms, 0);
    int rc = start_tls(c, 1);
    if (rc != 0) failf(c, rc, "starting TLS with %s: %s", peer_name(c), xmppuv_strerror(rc));
    return;
  }
  c->state = CONN_OPEN;
  forget_attempts(c);
  if (c->ev.connected != NULL) c->ev.connected(c->ud, 0);
}

static void on_tcp_data(void *ud, const char *data, size_t len) {
  xmppuv__conn_t *c = ud;
  if (c->state == CONN_CLOSING) return;
  if (c->tls == NULL) {
    if (c->ev.data != NULL) c->ev.data(c->ud, data, len);
    return;
  }
  int rc = xmppuv__tls_feed(c->tls, data, len);
  if (rc != 0) {
    fail_tls(c, rc);
    return;
  }
  drive_tls(c);
}

static void on_tcp_error(void *ud, int status) {
  xmppuv__conn_t *c = ud;
  if (c->state == CONN_CLOSING) return;
  if (c->tls != NULL && status == XMPPUV_EEOF) {
    /* Let the filter say whether the stream ended cleanly, and deliver
     * what was still buffered (a step put off runs now: this is the end). */
    xmppuv__tls_feed_eof(c->tls);
    undefer(c);
    drive_tls(c);
    if (c->state == CONN_CLOSING) return;
  }
  c->tcp = NULL; /* it closes itself */
  if (status == XMPPUV_EEOF)
    failf(c, status, "%s closed the connection", peer_name(c));
  else
    failf(c, status, "the connection to %s broke: %s", peer_name(c), xmppuv_strerror(status));
}

static void on_tcp_before_flush(void *ud) {
  xmppuv__conn_t *c = ud;
  if (c->state != CONN_OPEN) return;
  int rc = encrypt_gathered(c);
  if (rc != 0) fail_tls(c, rc);
}

static void on_tcp_closed(void *ud) {
  xmppuv__conn_t *c = ud;
  c->live_tcps--;
  maybe_finish(c);
}

static const xmppuv__tcp_events_t tcp_events = {on_tcp_connected, on_tcp_data,
                                                on_tcp_error, on_tcp_closed,
                                                on_tcp_before_flush};

/* ---- finding the server ----------------------------------------------------- */

static void describe_peer(xmppuv__conn_t *c, const xmppuv__target_t *t,
                          const struct sockaddr_storage *addr) {
  char ip[64] = "?";
  if (addr->ss_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)(const void *)addr, ip, sizeof ip);
  else
    uv_ip4_name((const struct sockaddr_in *)(const void *)addr, ip, sizeof ip);
  char peer[300];
  snprintf(peer, sizeof peer, "%s [%s]:%u", t->host, ip, (unsigned)t->port);
  set_peer(c, peer);
}

static void try_next_addr(xmppuv__conn_t *c) {
  if (c->state == CONN_CLOSING) return;
  if (c->addrs == NULL || c->addr_at >= c->addrs->count) {
    xmppuv__addr_list_free(c->addrs);
    c->addrs = NULL;
    c->target_at++;
    try_next_target(c);
    return;
  }
  const xmppuv__target_t *t = &c->targets->items[c->target_at];
  const struct sockaddr_storage *addr = &c->addrs->items[c->addr_at++];
  describe_peer(c, t, addr);
  c->direct_tls = t->direct_tls;
  c->state = CONN_CONNECTING;
  xmppuv__logf(c->log, XMPPUV_LOG_DEBUG, "connect", "connecting to %s", peer_name(c));
  int rc = xmppuv__tcp_connect(c->loop, (const struct sockaddr *)addr,
                               c->connect_timeout_ms, &tcp_events, c, c->log, &c->tcp);
  if (rc != 0) {
    note_attempt(c, rc, "connecting to %s: %s", peer_name(c), xmppuv_strerror(rc));
    c->tcp = NULL;
    try_next_addr(c);
    return;
  }
  c->live_tcps++;
}

static void on_addrs(void *ud, int status, xmppuv__addr_list_t *addrs) {
  xmppuv__conn_t *c = ud;
  c->query = NULL;
  if (c->state == CONN_CLOSING) {
    xmppuv__addr_list_free(addrs);
    maybe_finish(c);
    return;
  }
  if (status != 0) {
    const char *host = c->targets->items[c->target_at].host;
    xmppuv__logf(c->log, XMPPUV_LOG_DEBUG, "dns", "%s: %s", host, xmppuv_strerror(status));
    if (status == XMPPUV_ENOTFOUND)
      note_attempt(c, status,
                   "%s has no address in DNS (a domain that does not exist? check the JID's "
                   "domain, or set host)",
                   host);
    else
      note_attempt(c, status, "looking up %s: %s", host, xmppuv_strerror(status));
    c->target_at++;
    try_next_target(c);
    return;
  }
  c->addrs = addrs;
  c->addr_at = 0;
  try_next_addr(c);
}

static xmppuv__dns_options_t dns_options(const xmppuv__conn_t *c) {
  xmppuv__dns_options_t o;
  memset(&o, 0, sizeof o);
  o.servers = c->dns_servers;
  o.timeout_ms = c->dns_timeout_ms;
  o.log = c->log;
  return o;
}

static void try_next_target(xmppuv__conn_t *c) {
  if (c->state == CONN_CLOSING) return;
  if (c->target_at >= c->targets->count) {
    int status = c->last_error != 0 ? c->last_error : XMPPUV_ECONNECT;
    /* The configured host, when the app named one: that is what failed. */
    const char *name = c->host != NULL ? c->host : c->domain;
    xmppuv__logf(c->log, XMPPUV_LOG_WARN, "connect", "could not connect to %s: %s", name,
                 xmppuv_strerror(status));
    char more[40] = "";
    if (c->attempts_more > 0)
      snprintf(more, sizeof more, " (and %u more)", c->attempts_more);
    failf(c, status, "could not connect to %s: %s%s", name,
          c->attempts != NULL && c->attempts[0] != '\0' ? c->attempts : xmppuv_strerror(status),
          more);
    return;
  }
  const xmppuv__target_t *t = &c->targets->items[c->target_at];
  c->state = CONN_RESOLVING;
  xmppuv__dns_options_t o = dns_options(c);
  int rc = xmppuv__dns_resolve(c->loop, t->host, t->port, &o, on_addrs, c, &c->query);
  if (rc != 0) {
    c->query = NULL;
    c->last_error = rc;
    c->target_at++;
    try_next_target(c);
  }
}

static int keep_target(xmppuv_tls_mode_t mode, int direct) {
  switch (mode) {
    case XMPPUV_TLS_DIRECT: return direct;
    case XMPPUV_TLS_STARTTLS:
    case XMPPUV_TLS_DISABLED_INSECURE: return !direct;
    case XMPPUV_TLS_AUTO: return 1;
  }
  return 1;
}

static int push_target(xmppuv__target_list_t *l, const char *host, uint16_t port,
                       int direct) {
  xmppuv__target_t *items = xmppuv__realloc(l->items, (l->count + 1) * sizeof *items);
  if (items == NULL) return XMPPUV_ENOMEM;
  l->items = items;
  char *h = xmppuv__strdup(host);
  if (h == NULL) return XMPPUV_ENOMEM;
  /* "[v6]" literals go to DNS (which resolves literals) without brackets. */
  size_t len = strlen(h);
  if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
    memmove(h, h + 1, len - 2);
    h[len - 2] = '\0';
  }
  items[l->count].host = h;
  items[l->count].port = port;
  items[l->count].direct_tls = direct;
  l->count++;
  return 0;
}

static uint16_t default_port(xmppuv_tls_mode_t mode) {
  return (uint16_t)(mode == XMPPUV_TLS_DIRECT ? DIRECT_TLS_PORT : XMPPUV__XMPP_CLIENT_PORT);
}

/* Build the final list: the preferred location first, then what SRV gave
 * (filtered by the TLS mode), else the RFC 6120 §3.2.2 fallback. */
static void set_targets(xmppuv__conn_t *c, xmppuv__target_list_t *found) {
  xmppuv__target_list_t *l = xmppuv__calloc(1, sizeof *l);
  int rc = l ? 0 : XMPPUV_ENOMEM;
  int direct_default = c->tls_mode == XMPPUV_TLS_DIRECT;
  if (rc == 0 && c->first_host != NULL)
    rc = push_target(l, c->first_host,
                     c->first_port ? c->first_port : default_port(c->tls_mode),
                     direct_default);
  size_t kept = 0;
  for (size_t i = 0; rc == 0 && found != NULL && i < found->count; i++) {
    if (!keep_target(c->tls_mode, found->items[i].direct_tls)) continue;
    rc = push_target(l, found->items[i].host, found->items[i].port,
                     found->items[i].direct_tls);
    kept++;
  }
  if (rc == 0 && kept == 0)
    rc = push_target(l, c->domain, default_port(c->tls_mode), direct_default);
  xmppuv__target_list_free(found);
  if (rc != 0) {
    xmppuv__target_list_free(l);
    failf(c, rc, "out of memory listing where %s is", c->domain);
    return;
  }
  c->targets = l;
  c->target_at = 0;
  try_next_target(c);
}

static void on_targets(void *ud, int status, xmppuv__target_list_t *found) {
  xmppuv__conn_t *c = ud;
  c->query = NULL;
  if (c->state == CONN_CLOSING) {
    xmppuv__target_list_free(found);
    maybe_finish(c);
    return;
  }
  if (status == XMPPUV_ENOSERVICE || (status != 0 && c->first_host == NULL)) {
    /* "." for every service: the domain says it offers no XMPP service.
     * Other failures: nothing to try. */
    xmppuv__logf(c->log, XMPPUV_LOG_WARN, "dns", "SRV lookup for %s: %s", c->domain,
                 xmppuv_strerror(status));
    if (status == XMPPUV_ENOSERVICE)
      failf(c, status, "%s says (SRV \".\") it offers no XMPP client service", c->domain);
    else if (status == XMPPUV_ENOTFOUND)
      failf(c, status,
            "%s does not exist in DNS (check the JID's domain, or set host for a server "
            "DNS does not know)",
            c->domain);
    else
      failf(c, status, "looking up where %s is: %s", c->domain, xmppuv_strerror(status));
    return;
  }
  set_targets(c, status == 0 ? found : NULL);
}

static int is_ip_literal(const char *s) {
  unsigned char buf[16];
  if (s[0] == '[') return 1;
  return uv_inet_pton(AF_INET, s, buf) == 0 || uv_inet_pton(AF_INET6, s, buf) == 0;
}

/* ---- API ------------------------------------------------------------------ */

int xmppuv__conn_open(uv_loop_t *loop, const xmppuv__conn_config_t *cfg,
                      const xmppuv__conn_events_t *ev, void *ud,
                      xmppuv__conn_t **out) {
  *out = NULL;
  if (cfg->domain == NULL) return XMPPUV_EINVAL;
  if (cfg->tls_mode != XMPPUV_TLS_DISABLED_INSECURE && cfg->tls_ctx == NULL)
    return XMPPUV_EINVAL;
  xmppuv__conn_t *c = xmppuv__calloc(1, sizeof *c);
  if (c == NULL) return XMPPUV_ENOMEM;
  c->base.ops = &xmppuv__stream_transport;
  c->loop = loop;
  c->ev = *ev;
  c->ud = ud;
  c->log = cfg->log;
  c->tls_mode = cfg->tls_mode;
  c->port = cfg->port;
  c->first_port = cfg->first_port;
  c->dns_timeout_ms = cfg->dns_timeout_ms;
  c->connect_timeout_ms = cfg->connect_timeout_ms;
  int copied = 0;
  c->domain = xmppuv__strdup_opt(cfg->domain, &copied);
  c->host = xmppuv__strdup_opt(cfg->host, &copied);
  c->first_host = xmppuv__strdup_opt(cfg->first_host, &copied);
  c->dns_servers = xmppuv__strdup_opt(cfg->dns_servers, &copied);
  if (copied != 0) {
    free_conn(c);
    return XMPPUV_ENOMEM;
  }
  if (cfg->tls_ctx != NULL) {
    xmppuv__tls_ctx_ref(cfg->tls_ctx);
    c->tls_ctx = cfg->tls_ctx;
  }
  c->tls_session = cfg->tls_session;
  c->direct_alpn = cfg->direct_alpn != 0 ? cfg->direct_alpn : XMPPUV__ALPN_XMPP;
  c->state = CONN_RESOLVING;
  set_peer(c, c->domain);

  xmppuv__target_list_t *direct = NULL;
  if (c->host != NULL || is_ip_literal(c->domain)) {
    /* An override, or an IP literal domain: no SRV. */
    direct = xmppuv__calloc(1, sizeof *direct);
    const char *host = c->host ? c->host : c->domain;
    uint16_t port = c->port ? c->port : default_port(c->tls_mode);
    int is_direct = c->tls_mode == XMPPUV_TLS_DIRECT;
    uint16_t fp = c->first_port ? c->first_port : default_port(c->tls_mode);
    /* Keep the preferred location in front. */
    if (direct == NULL ||
        (c->first_host != NULL && push_target(direct, c->first_host, fp, is_direct) != 0) ||
        push_target(direct, host, port, is_direct) != 0) {
      xmppuv__target_list_free(direct);
      free_conn(c);
      return XMPPUV_ENOMEM;
    }
  }
  /* From here on, errors close the handle and free in its callback. */
  uv_idle_init(loop, &c->own);
  c->own.data = c;
  c->own_open = 1;
  uv_timer_init(loop, &c->handshake_timer);
  c->handshake_timer.data = c;
  c->timer_open = 1;
  xmppuv__dns_options_t o = dns_options(c);
  int rc;
  if (direct != NULL) {
    c->targets = direct;
    c->target_at = 0;
    const xmppuv__target_t *t = &direct->items[0];
    rc = xmppuv__dns_resolve(loop, t->host, t->port, &o, on_addrs, c, &c->query);
  } else {
    rc = xmppuv__dns_find_targets(loop, c->domain, &o, on_targets, c, &c->query);
  }
  if (rc != 0) {
    c->query = NULL;
    c->ev.closed = NULL; /* the owner never had it */
    shut(c, 0);
    return rc;
  }
  *out = c;
  return 0;
}

int xmppuv__conn_write(xmppuv__conn_t *c, const char *data, size_t len) {
  if (c->state != CONN_OPEN && c->state != CONN_STARTTLS) return XMPPUV_ESTATE;
  if (c->tls == NULL) return xmppuv__tcp_write(c->tcp, data, len);
  if (c->state == CONN_OPEN) {
    /* Gathered, encrypted at the end of the iteration. */
    if (xmppuv__buf_append(&c->plain, data, len) != 0) return XMPPUV_ENOMEM;
    xmppuv__tcp_wake(c->tcp);
    return 0;
  }
  int rc = xmppuv__tls_write(c->tls, data, len);
  if (rc == 0) rc = pump_tls_out(c);
  return rc;
}

int xmppuv__conn_write_buf(xmppuv__conn_t *c, xmppuv__buf_t *b) {
  if (c->state != CONN_OPEN && c->state != CONN_STARTTLS) return XMPPUV_ESTATE;
  if (b->len == 0) return 0;
  if (c->tls == NULL) return xmppuv__tcp_write_buf(c->tcp, b);
  if (c->state == CONN_OPEN) {
    if (xmppuv__buf_take(&c->plain, b) != 0) return XMPPUV_ENOMEM;
    xmppuv__tcp_wake(c->tcp);
    return 0;
  }
  int rc = xmppuv__conn_write(c, b->data, b->len);
  if (rc == 0) xmppuv__buf_clear(b);
  return rc;
}

int xmppuv__conn_starttls(xmppuv__conn_t *c, const char *rest, size_t rest_len) {
  if (c->state != CONN_OPEN || c->tls != NULL) return XMPPUV_ESTATE;
  c->state = CONN_STARTTLS;
  int rc = start_tls(c, 0);
  if (rc == 0 && rest_len > 0) rc = xmppuv__tls_feed(c->tls, rest, rest_len);
  if (rc != 0) return rc;
  if (rest_len > 0) drive_tls(c);
  return 0;
}

int xmppuv__conn_tls_active(const xmppuv__conn_t *c) {
  return c->tls != NULL && c->state == CONN_OPEN;
}

size_t xmppuv__conn_cb_types(const xmppuv__conn_t *c, const char **types,
                             size_t max) {
  if (!xmppuv__conn_tls_active(c)) return 0;
  size_t n = 0;
  static const char *const candidates[] = {"tls-exporter", "tls-unique"};
  for (size_t i = 0; i < 2 && n < max; i++) {
    unsigned char probe[XMPPUV__TLS_CB_MAX];
    size_t len = sizeof probe;
    if (xmppuv__tls_channel_binding(c->tls, candidates[i], probe, &len) == 0)
      types[n++] = candidates[i];
  }
  return n;
}

int xmppuv__conn_channel_binding(xmppuv__conn_t *c, const char *type,
                                 unsigned char *out, size_t *len) {
  if (c->tls == NULL) return XMPPUV_ESTATE;
  return xmppuv__tls_channel_binding(c->tls, type, out, len);
}

/* From the loop: reading again after a pause (plaintext TLS decrypted
 * already and kept is delivered from the loop, never inside the call that
 * resumed), or a handshake step put off to this iteration (drive_tls). */
static void on_own_idle(uv_idle_t *h) {
  xmppuv__conn_t *c = h->data;
  uv_idle_stop(h);
  if (c->deferred) {
    run_deferred(h->loop);
    return;
  }
  if (c->tls == NULL) return;
  if (handshaking(c) || (c->state == CONN_OPEN && !c->paused)) drive_tls(c);
}

void xmppuv__conn_pause(xmppuv__conn_t *c, int paused) {
  if (c->state == CONN_CLOSING || c->paused == paused) return;
  c->paused = paused;
  if (c->tcp != NULL) xmppuv__tcp_pause(c->tcp, paused);
  if (!paused && c->tls != NULL && c->own_open) uv_idle_start(&c->own, on_own_idle);
}

void xmppuv__conn_close(xmppuv__conn_t *c, int graceful) {
  if (c != NULL) shut(c, graceful);
}

size_t xmppuv__conn_pending(const xmppuv__conn_t *c) {
  return c->tcp != NULL ? xmppuv__tcp_pending(c->tcp) : 0;
}

const char *xmppuv__conn_peer(const xmppuv__conn_t *c) { return peer_name(c); }

/* ---- the transport interface ----------------------------------------------- */

static int op_open(uv_loop_t *loop, const xmppuv__transport_config_t *cfg,
                   const xmppuv__transport_events_t *ev, void *ud,
                   xmppuv__transport_t **out) {
  xmppuv__conn_t *c = NULL;
  int rc = xmppuv__conn_open(loop, cfg, ev, ud, &c);
  *out = rc == 0 ? &c->base : NULL;
  return rc;
}

static int op_write(xmppuv__transport_t *t, xmppuv__buf_t *b) {
  return xmppuv__conn_write_buf((xmppuv__conn_t *)t, b);
}

static int op_starttls(xmppuv__transport_t *t, const char *rest, size_t rest_len) {
  return xmppuv__conn_starttls((xmppuv__conn_t *)t, rest, rest_len);
}

static void op_channel_binding(xmppuv__transport_t *t, xmppuv__channel_binding_t *out) {
  xmppuv__conn_t *c = (xmppuv__conn_t *)t;
  memset(out, 0, sizeof *out);
  const char *types[XMPPUV__CB_MAX_TYPES];
  size_t n = xmppuv__conn_cb_types(c, types, XMPPUV__CB_MAX_TYPES);
  for (size_t i = 0; i < n; i++) {
    size_t len = XMPPUV__CB_MAX_DATA;
    if (xmppuv__conn_channel_binding(c, types[i], out->b[out->n].data, &len) != 0) continue;
    snprintf(out->b[out->n].type, sizeof out->b[0].type, "%s", types[i]);
    out->b[out->n].len = len;
    out->n++;
  }
}

static void op_pause(xmppuv__transport_t *t, int paused) {
  xmppuv__conn_pause((xmppuv__conn_t *)t, paused);
}

static void op_close(xmppuv__transport_t *t, int graceful) {
  xmppuv__conn_close((xmppuv__conn_t *)t, graceful);
}

static const char *op_peer(const xmppuv__transport_t *t) {
  return xmppuv__conn_peer((const xmppuv__conn_t *)t);
}

const xmppuv__transport_ops_t xmppuv__stream_transport = {
    "stream", XMPPUV__FRAMING_STREAM, op_open, op_write, op_starttls,
    op_channel_binding, op_pause, op_close, op_peer};
