/* The client: the libuv driver of the engine (lib/engine/engine.h). It owns
 * the one timer, the transport of the current connection, the clock, the
 * password, and libuv's thread pool for key derivation; everything the
 * client decides is the engine's.
 *
 * The pump: after anything happens (a transport event, the timer, an API
 * call) the driver writes what the engine produced, carries out its actions,
 * and, from loop callbacks only, delivers queued events to the app and lets
 * the engine handle the next inbound element. An API call never delivers:
 * its events go out from the loop (the timer, armed at 0), so a callback
 * never runs inside the call that caused it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine/engine.h"
#include "engine/options.h"
#include "sasl/sasl.h"
#include "sasl/scram.h"
#include "transport/tls.h"
#include "client_hooks.h"
#include "transport/discover.h"
#include "transport/transport.h"
#include "transport/ws_handshake.h"
#include "util/alloc.h"
#include "util/backoff.h"
#include "xmppuv.h"

/* The largest password asked for (PRECIS has no limit; servers do: 1 KiB is
 * far above any of theirs). */
#define PASSWORD_MAX 1024

/* SCRAM keys derived on libuv's thread pool (uv_queue_work): PBKDF2 costs
 * milliseconds to seconds, and one loop may run thousands of clients. */
typedef struct derive_work {
  uv_work_t req;
  xmppuv_client_t *client; /* NULL once the client is closing */
  uint64_t link;
  xmppuv__mech_t mech;
  unsigned char *salt;
  size_t salt_len;
  unsigned int iterations;
  char *password; /* prepared; wiped after */
  size_t password_len;
  unsigned char client_key[XMPPUV__SCRAM_KEY_MAX];
  unsigned char server_key[XMPPUV__SCRAM_KEY_MAX];
  size_t key_len;
  int status;
} derive_work_t;

struct xmppuv_client {
  uv_loop_t *loop;
  uv_timer_t timer; /* the one timer: armed at the engine's deadline */
  xmppuv__time_t clock; /* now_of()'s last reading, at loop time clock_mono */
  uint64_t clock_mono;
  uint64_t armed_at;
  xmppuv__engine_t *engine;
  void *user_data;
  xmppuv__tls_ctx_t *tls_ctx;
  xmppuv__tls_session_t *tls_session; /* the last TLS session, to resume */
  const xmppuv__transport_ops_t *transport_ops;
  xmppuv__transport_t *transport; /* the current connection's, or NULL */
  uint64_t link;                  /* the engine's id for it */
  int link_up;                    /* it connected */
  /* XEP-0156 discovery (the `discovery` option): the search in flight and
   * the connection it is for, the URL it found (kept for reconnections
   * until connecting to it fails), and, in auto mode, the TCP error held
   * back while host-meta is asked. */
  xmppuv__discover_t *discover;
  uint64_t discover_link;
  char *found_url;
  int using_found;
  int fallback_armed;
  int held_status;
  char *held_detail;
  uint16_t discovery_port; /* tests: not 443 */
  char *password; /* copied from the options; wiped on free */
  xmppuv_password_cb password_cb;
  void *password_user_data;
  derive_work_t *derive; /* in flight, or NULL */
  int input_paused;      /* the transport's reading is stopped */
  int pumping;
  int closing;
  void (*close_cb)(xmppuv_client_t *c, void *user_data);
};

static void pump(xmppuv_client_t *c, int deliver);

/* ---- time ------------------------------------------------------------------ */

/* The wall clock is read once per loop iteration (uv_now's tick): a burst
 * of sends in one callback stamps them all with the same millisecond. */
static xmppuv__time_t now_of(xmppuv_client_t *c) {
  uint64_t mono = uv_now(c->loop);
  if (mono != c->clock_mono || c->clock.wall_ms == 0) {
    uv_timeval64_t tv;
    c->clock.mono_ms = mono;
    c->clock.wall_ms = uv_gettimeofday(&tv) == 0 ? tv.tv_sec * 1000 + tv.tv_usec / 1000 : 0;
    c->clock_mono = mono;
  }
  return c->clock;
}

static void on_timer(uv_timer_t *t) {
  xmppuv_client_t *c = t->data;
  c->armed_at = XMPPUV__NO_DEADLINE;
  xmppuv__engine_tick(c->engine, now_of(c));
  pump(c, 1);
}

static void rearm(xmppuv_client_t *c) {
  if (uv_is_closing((uv_handle_t *)&c->timer)) return;
  uint64_t d = xmppuv__engine_deadline(c->engine);
  /* Most calls (every send) leave the earliest deadline where it was: then
   * the timer is left alone. */
  if (d == c->armed_at && (d == XMPPUV__NO_DEADLINE || uv_is_active((uv_handle_t *)&c->timer)))
    return;
  c->armed_at = d;
  if (d == XMPPUV__NO_DEADLINE) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t now = uv_now(c->loop);
  uv_timer_start(&c->timer, on_timer, d > now ? d - now : 0, 0);
}

/* ---- closing ------------------------------------------------------------------ */

static void free_client(xmppuv_client_t *c) {
  xmppuv__discover_cancel(c->discover);
  xmppuv__free(c->found_url);
  xmppuv__free(c->held_detail);
  xmppuv__engine_free(c->engine);
  xmppuv__tls_ctx_unref(c->tls_ctx);
  xmppuv__tls_session_free(c->tls_session);
  if (c->password != NULL) {
    xmppuv__secure_zero(c->password, strlen(c->password));
    xmppuv__free(c->password);
  }
  xmppuv__free(c);
}

static void on_timer_closed(uv_handle_t *h) {
  xmppuv_client_t *c = h->data;
  /* The last calls the app gets: `closed` (modules free themselves), then
   * the close callback; the memory goes right after. */
  xmppuv__engine_notify_closed(c->engine);
  if (c->close_cb != NULL) c->close_cb(c, c->user_data);
  free_client(c);
}

/* After close(): once the engine delivered what it owed, the transport is
 * gone and no derivation runs, the timer closes last. */
static void maybe_finish_close(xmppuv_client_t *c) {
  if (!c->closing || c->transport != NULL || c->derive != NULL || c->discover != NULL ||
      !xmppuv__engine_closed(c->engine) || uv_is_closing((uv_handle_t *)&c->timer))
    return;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* ---- the transport ------------------------------------------------------------ */

static void on_connected(void *ud, int tls) {
  xmppuv_client_t *c = ud;
  c->link_up = 1;
  c->fallback_armed = 0;
  xmppuv__channel_binding_t cb;
  memset(&cb, 0, sizeof cb);
  if (tls) c->transport_ops->channel_binding(c->transport, &cb);
  xmppuv__engine_connected(c->engine, c->link, c->transport_ops->framing, tls, &cb,
                           now_of(c));
  xmppuv__secure_zero(&cb, sizeof cb);
  pump(c, 1);
}

static void on_data(void *ud, const char *data, size_t len) {
  xmppuv_client_t *c = ud;
  /* Online, a slice at a time, each handled before the next: a read of
   * many stanzas is then parsed where it lies instead of being copied to
   * wait (see XMPPUV__FEED_SLICE); what the app does not take in time is
   * still held. The last slice takes what is left below two, so every
   * slice of a big read still looks busy to the session (it keeps its
   * parser between them). Before online, all at once: what follows
   * <proceed/> in a read is for TLS, which the session hands on whole.
   * data stays ours while the handlers run: libuv's loop cannot be run
   * from inside a callback, so no other read can reuse its buffer. */
  uint64_t link = c->link;
  size_t total = len;
  do {
    size_t n = len;
    if (n >= 2 * XMPPUV__FEED_SLICE && xmppuv__engine_status(c->engine) == XMPPUV_STATUS_ONLINE)
      n = XMPPUV__FEED_SLICE;
    xmppuv__engine_feed(c->engine, link, data, n, now_of(c));
    pump(c, 1);
    data += n;
    len -= n;
    /* A handler ended this connection: the rest of the read is of no
     * stream any more. */
  } while (len > 0 && c->link == link && c->transport != NULL);
  /* A read that filled less than two slices is a burst's last (or no
   * burst): what a busy stream keeps between reads goes back. */
  if (total < 2 * XMPPUV__FEED_SLICE) xmppuv__engine_read_end(c->engine);
}

static void on_tls_ready(void *ud) {
  xmppuv_client_t *c = ud;
  xmppuv__channel_binding_t cb;
  c->transport_ops->channel_binding(c->transport, &cb);
  xmppuv__engine_tls_ready(c->engine, c->link, &cb, now_of(c));
  xmppuv__secure_zero(&cb, sizeof cb);
  pump(c, 1);
}

static void on_error(void *ud, int status, const char *detail) {
  xmppuv_client_t *c = ud;
  if (!c->link_up && c->using_found) {
    /* The WebSocket discovery found does not answer: search again next
     * time. */
    xmppuv__free(c->found_url);
    c->found_url = NULL;
  }
  /* A certificate that does not verify is an attack or a mistake, never a
   * reason to try elsewhere (the engine gives up on it). */
  int cert = status <= XMPPUV_ECERTNAME && status >= XMPPUV_ECERTINVALID;
  if (!c->link_up && c->fallback_armed && !c->closing && !cert) {
    /* Auto discovery: no TCP connection could be made; host-meta is asked
     * once this transport is closed, and this error told only if that
     * finds nothing either. */
    xmppuv__free(c->held_detail);
    c->held_detail = detail != NULL ? xmppuv__strdup(detail) : NULL;
    c->held_status = status;
    return;
  }
  c->fallback_armed = 0;
  xmppuv__engine_transport_error(c->engine, c->link, status, detail, now_of(c));
  pump(c, 1);
}

static void start_discovery(xmppuv_client_t *c, uint64_t link);

static void on_closed(void *ud) {
  xmppuv_client_t *c = ud;
  uint64_t link = c->link;
  c->transport = NULL;
  c->link = 0;
  if (c->fallback_armed && c->held_status != 0 && !c->closing) {
    c->fallback_armed = 0;
    start_discovery(c, link);
    return;
  }
  xmppuv__engine_transport_closed(c->engine, link, now_of(c));
  pump(c, 1);
}

static const xmppuv__transport_events_t transport_events = {on_connected, on_data,
                                                            on_tls_ready, on_error, on_closed};

/* Open the connection for link: a WebSocket at url, or the stream
 * transport (host NULL: SRV). */
static void open_transport(xmppuv_client_t *c, uint64_t link, const char *host, uint16_t port,
                           const char *first_host, uint16_t first_port, const char *url) {
  const xmppuv_client_options_t *o = xmppuv__engine_options(c->engine);
  xmppuv__transport_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.domain = xmppuv_jid_domain_ascii(xmppuv__engine_configured_jid(c->engine));
  cfg.host = host;
  cfg.port = port;
  cfg.first_host = first_host;
  cfg.first_port = first_port;
  cfg.tls_mode = o->tls;
  cfg.tls_ctx = c->tls_ctx;
  cfg.dns_servers = o->dns_servers;
  cfg.connect_timeout_ms = o->connect_timeout_ms;
  cfg.log = xmppuv__engine_log(c->engine);
  cfg.tls_session = &c->tls_session;
  cfg.url = url;
  cfg.max_message = o->max_stanza_bytes;
  c->transport_ops = url != NULL ? &xmppuv__ws_transport : &xmppuv__stream_transport;
  c->link_up = 0;
  xmppuv__transport_t *t = NULL;
  int rc = c->transport_ops->open(c->loop, &cfg, &transport_events, c, &t);
  if (rc != 0) {
    /* Nothing was opened: the engine hears the error and the end at once. */
    xmppuv__time_t now = now_of(c);
    char detail[320];
    snprintf(detail, sizeof detail, "could not start connecting to %s: %s",
             cfg.url != NULL ? cfg.url : cfg.host != NULL ? cfg.host : cfg.domain,
             xmppuv_strerror(rc));
    c->fallback_armed = 0;
    xmppuv__engine_transport_error(c->engine, link, rc, detail, now);
    xmppuv__engine_transport_closed(c->engine, link, now);
    return;
  }
  c->transport = t;
  c->link = link;
  c->input_paused = 0;
}

static void on_discovered(void *ud, int status, const char *url, const char *detail) {
  xmppuv_client_t *c = ud;
  uint64_t link = c->discover_link;
  const xmppuv__log_t *log = xmppuv__engine_log(c->engine);
  c->discover = NULL;
  c->discover_link = 0;
  int held = c->held_status;
  c->held_status = 0;
  if (status == 0) {
    xmppuv__free(c->found_url);
    c->found_url = xmppuv__strdup(url);
    c->using_found = c->found_url != NULL;
    open_transport(c, link, NULL, 0, NULL, 0, url);
  } else if (held != 0) {
    /* Auto: TCP failed first; host-meta found nothing either. */
    char text[1100];
    snprintf(text, sizeof text, "%s; no WebSocket found instead (XEP-0156: %s)",
             c->held_detail != NULL ? c->held_detail : xmppuv_strerror(held),
             detail != NULL ? detail : xmppuv_strerror(status));
    xmppuv__time_t now = now_of(c);
    xmppuv__engine_transport_error(c->engine, link, held, text, now);
    xmppuv__engine_transport_closed(c->engine, link, now);
  } else {
    /* WebSocket first: nothing found, so TCP. */
    xmppuv__logf(log, XMPPUV_LOG_INFO, "discover", "no WebSocket for %s (%s): SRV and TCP",
                 xmppuv_jid_domain_ascii(xmppuv__engine_configured_jid(c->engine)),
                 detail != NULL ? detail : xmppuv_strerror(status));
    open_transport(c, link, NULL, 0, NULL, 0, NULL);
  }
  pump(c, 1);
}

static void start_discovery(xmppuv_client_t *c, uint64_t link) {
  const xmppuv_client_options_t *o = xmppuv__engine_options(c->engine);
  xmppuv__discover_config_t dc;
  memset(&dc, 0, sizeof dc);
  dc.domain = xmppuv_jid_domain_ascii(xmppuv__engine_configured_jid(c->engine));
  dc.port = c->discovery_port;
  dc.tls_ctx = c->tls_ctx;
  dc.dns_servers = o->dns_servers;
  dc.connect_timeout_ms = o->connect_timeout_ms;
  dc.log = xmppuv__engine_log(c->engine);
  c->discover_link = link;
  int rc = xmppuv__discover_start(c->loop, &dc, on_discovered, c, &c->discover);
  if (rc != 0) {
    c->discover = NULL;
    on_discovered(c, rc, NULL, xmppuv_strerror(rc));
  }
}

static void do_connect(xmppuv_client_t *c, const xmppuv__action_t *a) {
  const xmppuv_client_options_t *o = xmppuv__engine_options(c->engine);
  c->using_found = 0;
  c->fallback_armed = 0;
  c->held_status = 0;
  if (a->url == NULL && a->host == NULL && o->discovery != XMPPUV_DISCOVERY_OFF) {
    if (c->found_url != NULL) {
      /* What discovery found last time, while it answers. */
      c->using_found = 1;
      open_transport(c, a->link, NULL, 0, NULL, 0, c->found_url);
      return;
    }
    if (o->discovery == XMPPUV_DISCOVERY_WEBSOCKET_FIRST) {
      start_discovery(c, a->link);
      return;
    }
    c->fallback_armed = 1; /* auto: TCP first */
  }
  open_transport(c, a->link, a->host, a->port, a->first_host, a->first_port, a->url);
}

/* ---- credentials ------------------------------------------------------------------- */

/* The password, from the copy or the app's callback, into buf. */
static int get_password(xmppuv_client_t *c, char *buf, size_t size) {
  buf[0] = '\0';
  int rc;
  if (c->password_cb != NULL) {
    rc = c->password_cb(c, buf, size, c->password_user_data);
    buf[size - 1] = '\0';
  } else if (c->password != NULL) {
    size_t len = strlen(c->password);
    rc = len < size ? 0 : XMPPUV_ETOOBIG;
    if (rc == 0) memcpy(buf, c->password, len + 1);
  } else {
    rc = XMPPUV_EAUTH;
  }
  return rc;
}

static void give_password(xmppuv_client_t *c, const xmppuv__action_t *a) {
  char password[PASSWORD_MAX];
  int rc = get_password(c, password, sizeof password);
  xmppuv__engine_password(c->engine, a->link, rc, rc == 0 ? password : NULL, now_of(c));
  xmppuv__secure_zero(password, sizeof password);
}

static void free_work(derive_work_t *w) {
  if (w->password != NULL) {
    xmppuv__secure_zero(w->password, w->password_len);
    xmppuv__free(w->password);
  }
  xmppuv__free(w->salt);
  xmppuv__secure_zero(w->client_key, sizeof w->client_key);
  xmppuv__secure_zero(w->server_key, sizeof w->server_key);
  xmppuv__free(w);
}

/* On a thread of libuv's pool: only the work's own buffers are touched. */
static void derive_run(uv_work_t *req) {
  derive_work_t *w = req->data;
  w->status = xmppuv__scram_derive(w->mech, w->password, w->password_len, w->salt,
                                   w->salt_len, w->iterations, w->client_key, w->server_key,
                                   &w->key_len);
}

static void derive_done(uv_work_t *req, int status) {
  derive_work_t *w = req->data;
  xmppuv_client_t *c = w->client;
  if (c == NULL) {
    free_work(w);
    return;
  }
  c->derive = NULL;
  int rc = status != 0 ? status : w->status;
  xmppuv__scram_keys_t *keys = NULL;
  if (rc == 0)
    rc = xmppuv__scram_keys_new(w->mech, w->salt, w->salt_len, w->iterations, w->client_key,
                                w->server_key, w->key_len, &keys);
  xmppuv__engine_keys(c->engine, w->link, rc, keys, now_of(c));
  xmppuv__scram_keys_free(keys);
  free_work(w);
  pump(c, 1);
  maybe_finish_close(c);
}

/* SCRAM keys for a salt the engine has no keys for: the password is
 * prepared here (xmppuv's allocator is not for other threads), PBKDF2 runs
 * on the pool. */
static void start_derive(xmppuv_client_t *c, const xmppuv__action_t *a) {
  if (c->derive != NULL) c->derive->client = NULL; /* a stale one: let it end */
  c->derive = NULL;
  derive_work_t *w = xmppuv__calloc(1, sizeof *w);
  char password[PASSWORD_MAX];
  int rc = w != NULL ? get_password(c, password, sizeof password) : XMPPUV_ENOMEM;
  if (rc == 0) rc = xmppuv__sasl_prep(password, 1, &w->password, &w->password_len);
  xmppuv__secure_zero(password, sizeof password);
  if (rc == 0) {
    w->salt = xmppuv__memdup(a->salt, a->salt_len);
    if (w->salt == NULL) rc = XMPPUV_ENOMEM;
  }
  if (rc == 0) {
    w->client = c;
    w->link = a->link;
    w->mech = a->mech;
    w->salt_len = a->salt_len;
    w->iterations = a->iterations;
    w->req.data = w;
    rc = uv_queue_work(c->loop, &w->req, derive_run, derive_done);
  }
  if (rc != 0) {
    if (w != NULL) free_work(w);
    xmppuv__engine_keys(c->engine, a->link, rc, NULL, now_of(c));
    return;
  }
  c->derive = w;
}

/* ---- the pump ------------------------------------------------------------------------ */

static void write_output(xmppuv_client_t *c) {
  xmppuv__buf_t *out = xmppuv__engine_output(c->engine);
  if (out->len == 0) return;
  int rc = c->transport != NULL ? c->transport_ops->write(c->transport, out) : XMPPUV_ESTATE;
  /* Bytes for a connection that is gone (it was dropped) mean nothing. */
  if (rc != 0 && rc != XMPPUV_ESTATE && c->transport != NULL) {
    char detail[400];
    snprintf(detail, sizeof detail, "writing to %s: %s", c->transport_ops->peer(c->transport),
             xmppuv_strerror(rc));
    xmppuv__engine_transport_error(c->engine, c->link, rc, detail, now_of(c));
    c->transport_ops->close(c->transport, 0);
  }
  xmppuv__buf_clear(out);
  /* A burst's buffer is not kept by an idle client (the transport's
   * storage, exchanged for ours, is usually none at all). */
  if (out->cap > 16384) xmppuv__buf_free(out);
}

static void do_action(xmppuv_client_t *c, const xmppuv__action_t *a) {
  int ours = a->link != 0 && a->link == c->link && c->transport != NULL;
  switch (a->kind) {
    case XMPPUV__ACT_CONNECT:
      do_connect(c, a);
      break;
    case XMPPUV__ACT_STARTTLS:
      if (ours) {
        int rc = c->transport_ops->starttls(c->transport, a->data, a->len);
        if (rc != 0) {
          char detail[400];
          snprintf(detail, sizeof detail, "starting TLS with %s: %s",
                   c->transport_ops->peer(c->transport), xmppuv_strerror(rc));
          xmppuv__engine_transport_error(c->engine, c->link, rc, detail, now_of(c));
          c->transport_ops->close(c->transport, 0);
        }
      }
      break;
    case XMPPUV__ACT_CLOSE:
      if (ours) {
        /* Closed on purpose: no discovery after it (auto's fallback). */
        c->fallback_armed = 0;
        c->held_status = 0;
        c->transport_ops->close(c->transport, a->graceful);
      } else if (a->link != 0 && c->discover_link == a->link && c->transport == NULL) {
        /* Dropped while discovery searched: nothing is open. */
        xmppuv__discover_cancel(c->discover);
        c->discover = NULL;
        c->discover_link = 0;
        c->held_status = 0;
        c->fallback_armed = 0;
        xmppuv__engine_transport_closed(c->engine, a->link, now_of(c));
      }
      break;
    case XMPPUV__ACT_PASSWORD:
      give_password(c, a);
      break;
    case XMPPUV__ACT_DERIVE:
      start_derive(c, a);
      break;
    case XMPPUV__ACT_NONE:
      break;
  }
}

/* deliver: from a loop callback (events may go to the app); an API call
 * passes 0 and leaves them to the timer. */
static void pump(xmppuv_client_t *c, int deliver) {
  /* An API call from inside a callback: the pump running outside it picks
   * up what the call produced. */
  if (c->pumping) return;
  c->pumping = 1;
  /* The loop's time stands still within a callback (nothing here updates
   * it), so once is enough. */
  xmppuv__time_t now = now_of(c);
  for (;;) {
    write_output(c);
    xmppuv__action_t a;
    if (xmppuv__engine_action(c->engine, &a)) {
      do_action(c, &a);
      continue;
    }
    if (!deliver) break;
    if (xmppuv__engine_deliver(c->engine, now)) continue;
    if (xmppuv__engine_step(c->engine, now)) continue;
    break;
  }
  c->pumping = 0;
  /* Input backpressure: read only what the engine can take. */
  if (c->transport != NULL) {
    int paused = !xmppuv__engine_wants_input(c->engine);
    if (paused != c->input_paused) {
      c->input_paused = paused;
      c->transport_ops->pause(c->transport, paused);
    }
  }
  rearm(c);
  maybe_finish_close(c);
}

/* ---- API ------------------------------------------------------------------------------ */

const char *xmppuv_status_name(xmppuv_status_t status) {
  switch (status) {
    case XMPPUV_STATUS_OFFLINE: return "offline";
    case XMPPUV_STATUS_CONNECTING: return "connecting";
    case XMPPUV_STATUS_CONNECT: return "connect";
    case XMPPUV_STATUS_OPENING: return "opening";
    case XMPPUV_STATUS_OPEN: return "open";
    case XMPPUV_STATUS_ONLINE: return "online";
    case XMPPUV_STATUS_CLOSING: return "closing";
    case XMPPUV_STATUS_CLOSE: return "close";
    case XMPPUV_STATUS_DISCONNECTING: return "disconnecting";
    case XMPPUV_STATUS_DISCONNECT: return "disconnect";
  }
  return "unknown";
}

int xmppuv_client_new(uv_loop_t *loop, const xmppuv_client_options_t *opts,
                      const xmppuv_client_callbacks_t *callbacks, void *user_data,
                      xmppuv_client_t **out) {
  if (out != NULL) *out = NULL;
  if (loop == NULL || opts == NULL || out == NULL) return XMPPUV_EINVAL;
  /* As the app's struct says (an older app: the defaults for the rest). */
  xmppuv_client_options_t full;
  int rc = xmppuv__options_import(opts, &full);
  if (rc != 0) return rc;
  opts = &full;
  xmppuv_client_t *c = xmppuv__calloc(1, sizeof *c);
  if (c == NULL) return XMPPUV_ENOMEM;
  c->loop = loop;
  c->user_data = user_data;
  c->armed_at = XMPPUV__NO_DEADLINE;
  c->transport_ops = &xmppuv__stream_transport;
  c->password_cb = opts->password_cb;
  c->password_user_data = opts->password_user_data;
  c->password = xmppuv__strdup_opt(opts->password, &rc);
  uint64_t seed = uv_hrtime() ^ (uint64_t)(uintptr_t)c;
  if (rc == 0) rc = xmppuv__engine_new(opts, callbacks, user_data, c, seed, &c->engine);
  const xmppuv_client_options_t *o = rc == 0 ? xmppuv__engine_options(c->engine) : NULL;
  if (rc == 0 && o->tls != XMPPUV_TLS_DISABLED_INSECURE) {
    xmppuv__tls_config_t tc;
    memset(&tc, 0, sizeof tc);
    tc.ca_file = o->ca_file;
    tc.ca_path = o->ca_path;
    tc.pin = o->pin;
    tc.insecure = o->tls_insecure;
    tc.cert_file = o->client_cert_file;
    tc.key_file = o->client_key_file;
    tc.log = xmppuv__engine_log(c->engine);
    /* Shared with the other clients of this thread that trust the same. */
    rc = xmppuv__tls_ctx_shared(&tc, &c->tls_ctx);
  }
  if (rc == 0 && o->url != NULL) {
    /* The engine checked the scheme; the rest of the URL is the
     * transport's to read. */
    xmppuv__ws_url_t url;
    const char *why = NULL;
    rc = xmppuv__ws_url_parse(o->url, &url, &why);
    if (rc != 0)
      xmppuv__logf(xmppuv__engine_log(c->engine), XMPPUV_LOG_ERROR, "client",
                   "bad option: url: %s", why);
  }
  if (rc == 0) rc = uv_timer_init(loop, &c->timer);
  if (rc != 0) {
    /* Nothing was started: free directly (the timer was not initialized
     * unless the last step succeeded). */
    free_client(c);
    return rc;
  }
  c->timer.data = c;
  *out = c;
  return 0;
}

/* FAST (XEP-0484): the app's kept token, asked for when the client has
 * none. The buffers held a secret: wiped. */
static int ask_fast_token(xmppuv_client_t *c) {
  const xmppuv_client_options_t *o = xmppuv__engine_options(c->engine);
  if (o->fast_token_cb == NULL || !o->fast || xmppuv__engine_has_fast_token(c->engine) ||
      xmppuv__engine_is_closing(c->engine))
    return 0;
  char token[4096], mech[64];
  token[0] = mech[0] = '\0';
  int rc = o->fast_token_cb(c, token, sizeof token, mech, sizeof mech, o->fast_token_user_data);
  token[sizeof token - 1] = mech[sizeof mech - 1] = '\0';
  if (rc == 0 && token[0] != '\0')
    rc = xmppuv__engine_give_fast_token(c->engine, token, mech);
  xmppuv__secure_zero(token, sizeof token);
  return rc;
}

int xmppuv_client_start(xmppuv_client_t *c) {
  if (c == NULL) return XMPPUV_EINVAL;
  int rc = ask_fast_token(c);
  if (rc != 0) return rc;
  rc = xmppuv__engine_start(c->engine, now_of(c));
  pump(c, 0);
  return rc;
}

int xmppuv_client_stop(xmppuv_client_t *c) {
  if (c == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_stop(c->engine, now_of(c));
  pump(c, 0);
  return rc;
}

int xmppuv_client_logout(xmppuv_client_t *c) {
  if (c == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_logout(c->engine, now_of(c));
  pump(c, 0);
  return rc;
}

int xmppuv_client_reconnect_now(xmppuv_client_t *c) {
  if (c == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_reconnect_now(c->engine, now_of(c));
  pump(c, 0);
  return rc;
}

void xmppuv_client_close(xmppuv_client_t *c, xmppuv_close_cb close_cb) {
  if (c == NULL || c->closing) return;
  c->closing = 1;
  c->close_cb = close_cb;
  xmppuv__engine_close(c->engine, now_of(c));
  if (c->derive != NULL) c->derive->client = NULL; /* it frees itself */
  c->derive = NULL;
  pump(c, 0);
  /* What close() owes the app (fail events) goes out from the loop, and
   * close_cb after it. */
  rearm(c);
}

xmppuv_status_t xmppuv_client_status(const xmppuv_client_t *c) {
  return c != NULL ? xmppuv__engine_status(c->engine) : XMPPUV_STATUS_OFFLINE;
}

const xmppuv_jid_t *xmppuv_client_jid(const xmppuv_client_t *c) {
  return c != NULL ? xmppuv__engine_jid(c->engine) : NULL;
}

uv_loop_t *xmppuv_client_loop(const xmppuv_client_t *c) { return c != NULL ? c->loop : NULL; }

void *xmppuv_client_user_data(const xmppuv_client_t *c) {
  return c != NULL ? c->user_data : NULL;
}

int xmppuv_client_send(xmppuv_client_t *c, xmppuv_stanza_t *stanza) {
  if (c == NULL || stanza == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_send(c->engine, stanza, NULL, NULL, now_of(c));
  pump(c, 0);
  return rc;
}

int xmppuv_client_send_tracked(xmppuv_client_t *c, xmppuv_stanza_t *stanza, xmppuv_send_done_cb cb,
                          void *user_data) {
  if (c == NULL || stanza == NULL || cb == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_send(c->engine, stanza, cb, user_data, now_of(c));
  pump(c, 0);
  return rc;
}

int xmppuv_client_handler_add(xmppuv_client_t *c, const char *name, const char *ns,
                              const char *type, xmppuv_handler_cb cb, void *user_data,
                              uint64_t *id) {
  if (c == NULL || cb == NULL) return XMPPUV_EINVAL;
  return xmppuv__engine_handler_add(c->engine, 0, name, ns, type, cb, user_data, id);
}

int xmppuv_client_handler_remove(xmppuv_client_t *c, uint64_t id) {
  if (c == NULL) return XMPPUV_EINVAL;
  return xmppuv__engine_handler_remove(c->engine, 0, id);
}

int xmppuv_client_iq_handler_remove(xmppuv_client_t *c, uint64_t id) {
  if (c == NULL) return XMPPUV_EINVAL;
  return xmppuv__engine_handler_remove(c->engine, 1, id);
}

int xmppuv_client_iq_handler_add(xmppuv_client_t *c, const char *name, const char *ns,
                                 const char *type, xmppuv_handler_cb cb, void *user_data,
                                 uint64_t *id) {
  if (c == NULL || cb == NULL) return XMPPUV_EINVAL;
  return xmppuv__engine_handler_add(c->engine, 1, name, ns, type, cb, user_data, id);
}

int xmppuv_client_listener_add(xmppuv_client_t *c, const xmppuv_client_callbacks_t *callbacks,
                               void *user_data, uint64_t *id) {
  if (c == NULL || callbacks == NULL) return XMPPUV_EINVAL;
  return xmppuv__engine_listener_add(c->engine, callbacks, user_data, id);
}

int xmppuv_client_listener_remove(xmppuv_client_t *c, uint64_t id) {
  if (c == NULL) return XMPPUV_EINVAL;
  return xmppuv__engine_listener_remove(c->engine, id);
}

int xmppuv_client_send_iq(xmppuv_client_t *c, xmppuv_stanza_t *iq, unsigned timeout_ms,
                     xmppuv_iq_cb cb, void *user_data, uint64_t *id) {
  if (c == NULL || iq == NULL || cb == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_iq(c->engine, iq, timeout_ms, cb, user_data, id, now_of(c));
  pump(c, 0);
  return rc;
}

int xmppuv_client_iq_cancel(xmppuv_client_t *c, uint64_t id) {
  if (c == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_iq_cancel(c->engine, id);
  if (rc == 0) rearm(c);
  return rc;
}

int xmppuv_client_set_active(xmppuv_client_t *c, int active) {
  if (c == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__engine_set_active(c->engine, active);
  pump(c, 0);
  return rc;
}

int xmppuv_client_is_active(const xmppuv_client_t *c) {
  return c == NULL || xmppuv__engine_is_active(c->engine);
}

const char *xmppuv_client_user_agent_id(const xmppuv_client_t *c) {
  return c != NULL ? xmppuv__engine_options(c->engine)->user_agent_id : NULL;
}

const xmppuv_stanza_t *xmppuv_client_stream_features(const xmppuv_client_t *c) {
  return c != NULL ? xmppuv__engine_stream_features(c->engine) : NULL;
}

int xmppuv_client_sm_enabled(const xmppuv_client_t *c) {
  return c != NULL && xmppuv__engine_sm_enabled(c->engine);
}

size_t xmppuv_client_sm_queued(const xmppuv_client_t *c) {
  return c != NULL ? xmppuv__engine_sm_queued(c->engine) : 0;
}

int xmppuv_client_sm_export(const xmppuv_client_t *c, char **data, size_t *len) {
  if (c == NULL || data == NULL || len == NULL) return XMPPUV_EINVAL;
  /* A const client: read the clock without caching the reading. */
  xmppuv__time_t now = c->clock;
  uv_timeval64_t tv;
  now.mono_ms = uv_now(c->loop);
  if (uv_gettimeofday(&tv) == 0) now.wall_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
  return xmppuv__engine_sm_export(c->engine, now, data, len);
}

int xmppuv_client_sm_import(xmppuv_client_t *c, const void *data, size_t len) {
  if (c == NULL || data == NULL) return XMPPUV_EINVAL;
  return xmppuv__engine_sm_import(c->engine, data, len);
}

void xmppuv__client_set_discovery_port(xmppuv_client_t *c, uint16_t port) {
  c->discovery_port = port;
}
