/* The WebSocket transport (RFC 7395; transport.h): the stream transport
 * underneath (DNS, TCP and, for wss://, the TLS filter, verified against
 * the URL's host), then the opening handshake (ws_handshake.c), then
 * WebSocket messages (ws_codec.c). The session above speaks RFC 7395's
 * framing (<open/>, <close/>); this file only carries it. */
#include "transport/ws.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h> /* getentropy */

#include "transport/conn.h"
#include "transport/http.h"
#include "transport/ws_codec.h"
#include "transport/ws_handshake.h"
#include "util/alloc.h"
#include "util/log.h"

typedef enum { WS_CONNECTING, WS_HANDSHAKE, WS_OPEN, WS_CLOSING } ws_state_t;

typedef struct ws_transport {
  xmppuv__transport_t base; /* first: it is a transport */
  xmppuv__conn_t *conn;     /* the bytes underneath; NULL once closed */
  xmppuv__transport_events_t ev;
  void *ud;
  const xmppuv__log_t *log;
  ws_state_t state;
  xmppuv__ws_url_t url;
  xmppuv__ws_handshake_t *hs; /* during the handshake only */
  xmppuv__ws_codec_t *codec;
  size_t max_message;
  xmppuv__buf_t frames; /* what goes to conn */
  xmppuv__buf_t msgs;   /* what came from the server, for the session */
  int failed;           /* an error was reported: nothing more goes up */
  char peer[340];
} ws_transport_t;

static void fail(ws_transport_t *w, int status, const char *detail) {
  if (w->failed) return;
  w->failed = 1;
  w->state = WS_CLOSING;
  if (w->ev.error != NULL) w->ev.error(w->ud, status, detail);
}

/* Our frames to the connection; a failure ends it. */
static void send_frames(ws_transport_t *w, int graceful_close) {
  if (w->frames.len > 0 && w->conn != NULL) {
    int rc = xmppuv__conn_write_buf(w->conn, &w->frames);
    xmppuv__buf_clear(&w->frames);
    if (rc != 0 && rc != XMPPUV_ESTATE) {
      char detail[400];
      snprintf(detail, sizeof detail, "writing to %s: %s", w->peer, xmppuv_strerror(rc));
      fail(w, rc, detail);
      xmppuv__conn_close(w->conn, 0);
      return;
    }
  }
  if (graceful_close && w->conn != NULL) xmppuv__conn_close(w->conn, 1);
}

static void on_conn_connected(void *ud, int tls) {
  (void)tls;
  ws_transport_t *w = ud;
  unsigned char nonce[16];
  int rc = getentropy(nonce, sizeof nonce) == 0 ? 0 : XMPPUV_ECRYPTO;
  w->hs = rc == 0 ? xmppuv__calloc(1, sizeof *w->hs) : NULL;
  if (rc == 0 && w->hs == NULL) rc = XMPPUV_ENOMEM;
  if (rc == 0) rc = xmppuv__ws_request(w->hs, &w->url, nonce, &w->frames);
  if (rc != 0) {
    char detail[400];
    snprintf(detail, sizeof detail, "starting the WebSocket with %s: %s", w->peer,
             xmppuv_strerror(rc));
    fail(w, rc, detail);
    xmppuv__conn_close(w->conn, 0);
    return;
  }
  snprintf(w->peer, sizeof w->peer, "%.200s%.130s", xmppuv__conn_peer(w->conn), w->url.path);
  xmppuv__logf(w->log, XMPPUV_LOG_DEBUG, "ws", "upgrading to a WebSocket at %s", w->peer);
  w->state = WS_HANDSHAKE;
  send_frames(w, 0);
}

/* Frames from the server: messages up, our answers (pong, Close) out. */
static void read_frames(ws_transport_t *w, const char *data, size_t len) {
  uint16_t code = 0;
  char why[200];
  int rc = xmppuv__ws_codec_read(w->codec, data, len, &w->msgs, &w->frames, &code, why,
                                 sizeof why);
  if (w->msgs.len > 0 && !w->failed) {
    /* Up before any error: what the server said before it closed counts. */
    if (w->ev.data != NULL) w->ev.data(w->ud, w->msgs.data, w->msgs.len);
    xmppuv__buf_clear(&w->msgs);
    if (w->msgs.cap > 65536) xmppuv__buf_free(&w->msgs);
  }
  if (rc == 0) {
    send_frames(w, 0);
    return;
  }
  char detail[600];
  if (rc == 1) {
    snprintf(detail, sizeof detail, "%s closed the WebSocket with %s", w->peer,
             xmppuv__ws_close_name(code));
    rc = XMPPUV_EEOF;
  } else {
    snprintf(detail, sizeof detail, "%s: %s", w->peer,
             rc == XMPPUV_ENOMEM ? "out of memory reading the WebSocket" : why);
  }
  fail(w, rc, detail);
  /* Our Close (or the answer to theirs) goes out before the connection
   * ends. */
  send_frames(w, 1);
}

static void on_conn_data(void *ud, const char *data, size_t len) {
  ws_transport_t *w = ud;
  if (w->failed || w->state == WS_CLOSING) return;
  if (w->state == WS_OPEN) {
    read_frames(w, data, len);
    return;
  }
  size_t used = 0;
  char why[400];
  int rc = xmppuv__ws_answer(w->hs, data, len, &used, why, sizeof why);
  if (rc == 0) return;
  if (rc < 0) {
    char detail[800];
    snprintf(detail, sizeof detail, "%s: %s", w->peer, why);
    /* A reverse proxy whose XMPP server is away (502, 503, 504) is worth
     * another try later; any other refusal is the URL's fault. */
    int status = xmppuv__http_head_status(&w->hs->answer);
    if (rc == XMPPUV_EWRONGSERVER && status >= 500 && status <= 599) rc = XMPPUV_ECONNECT;
    fail(w, rc, detail);
    xmppuv__conn_close(w->conn, 0);
    return;
  }
  xmppuv__free(w->hs);
  w->hs = NULL;
  rc = xmppuv__ws_codec_new(w->max_message, &w->codec);
  if (rc != 0) {
    fail(w, rc, "out of memory for the WebSocket");
    xmppuv__conn_close(w->conn, 0);
    return;
  }
  w->state = WS_OPEN;
  xmppuv__logf(w->log, XMPPUV_LOG_DEBUG, "ws", "WebSocket open at %s", w->peer);
  if (w->ev.connected != NULL) w->ev.connected(w->ud, w->url.tls);
  /* Frames that came with the answer. The owner may have closed us from
   * connected. */
  if (used < len && w->state == WS_OPEN) read_frames(w, data + used, len - used);
}

static void on_conn_tls_ready(void *ud) { (void)ud; /* no STARTTLS here */ }

static void on_conn_error(void *ud, int status, const char *detail) {
  ws_transport_t *w = ud;
  if (w->failed) return;
  char text[600];
  if (w->state == WS_OPEN && status == XMPPUV_EEOF) {
    /* RFC 6455 §7.1.5: gone without a Close frame. */
    snprintf(text, sizeof text, "%s ended the connection without closing the WebSocket (1006)",
             w->peer);
    detail = text;
  } else if (w->state == WS_HANDSHAKE && status == XMPPUV_EEOF) {
    snprintf(text, sizeof text, "%s closed the connection before answering the WebSocket request",
             w->peer);
    detail = text;
  }
  fail(w, status, detail);
}

static void free_ws(ws_transport_t *w) {
  xmppuv__free(w->hs);
  xmppuv__ws_codec_free(w->codec);
  xmppuv__buf_free(&w->frames);
  xmppuv__buf_free(&w->msgs);
  xmppuv__free(w);
}

static void on_conn_closed(void *ud) {
  ws_transport_t *w = ud;
  w->conn = NULL;
  void (*closed)(void *) = w->ev.closed;
  void *owner = w->ud;
  free_ws(w);
  if (closed != NULL) closed(owner);
}

static const xmppuv__transport_events_t conn_events = {
    on_conn_connected, on_conn_data, on_conn_tls_ready, on_conn_error, on_conn_closed};

int xmppuv__ws_open(uv_loop_t *loop, const char *url, size_t max_message,
                    const xmppuv__transport_config_t *cfg, const xmppuv__transport_events_t *ev,
                    void *ud, xmppuv__transport_t **out) {
  *out = NULL;
  ws_transport_t *w = xmppuv__calloc(1, sizeof *w);
  if (w == NULL) return XMPPUV_ENOMEM;
  const char *why = NULL;
  int rc = xmppuv__ws_url_parse(url, &w->url, &why);
  /* ws:// only where plaintext was asked for (tests), like TCP. */
  if (rc == 0 && !w->url.tls && cfg->tls_mode != XMPPUV_TLS_DISABLED_INSECURE) rc = XMPPUV_EINVAL;
  if (rc == 0 && w->url.tls && cfg->tls_mode == XMPPUV_TLS_DISABLED_INSECURE) rc = XMPPUV_EINVAL;
  if (rc != 0) {
    xmppuv__free(w);
    return rc;
  }
  w->base.ops = &xmppuv__ws_transport;
  w->ev = *ev;
  w->ud = ud;
  w->log = cfg->log;
  w->max_message = max_message != 0 ? max_message : 1024u * 1024u;
  snprintf(w->peer, sizeof w->peer, "%.330s", url);
  /* The connection underneath: to the URL's host, TLS from the first byte
   * for wss:// and verified against that host (RFC 7395 §3.1, §9). */
  xmppuv__transport_config_t c = *cfg;
  c.domain = w->url.host;
  c.host = w->url.host;
  c.port = w->url.port;
  c.first_host = NULL;
  c.first_port = 0;
  c.tls_mode = w->url.tls ? XMPPUV_TLS_DIRECT : XMPPUV_TLS_DISABLED_INSECURE;
  c.direct_alpn = XMPPUV__ALPN_HTTP;
  rc = xmppuv__conn_open(loop, &c, &conn_events, w, &w->conn);
  if (rc != 0) {
    free_ws(w);
    return rc;
  }
  *out = &w->base;
  return 0;
}

/* ---- the transport interface ----------------------------------------------- */

static int op_open(uv_loop_t *loop, const xmppuv__transport_config_t *cfg,
                   const xmppuv__transport_events_t *ev, void *ud, xmppuv__transport_t **out) {
  return xmppuv__ws_open(loop, cfg->url, cfg->max_message, cfg, ev, ud, out);
}

static int op_write(xmppuv__transport_t *t, xmppuv__buf_t *b) {
  ws_transport_t *w = (ws_transport_t *)t;
  if (w->state != WS_OPEN || w->conn == NULL) return XMPPUV_ESTATE;
  /* A failure here is the connection's end (the owner closes it): the
   * frames made before it are dropped with it. */
  int rc = xmppuv__ws_codec_write(w->codec, b->data, b->len, &w->frames);
  if (rc == 0) xmppuv__buf_clear(b);
  if (rc == 0 && w->frames.len > 0) rc = xmppuv__conn_write_buf(w->conn, &w->frames);
  xmppuv__buf_clear(&w->frames);
  return rc;
}

static int op_starttls(xmppuv__transport_t *t, const char *rest, size_t rest_len) {
  (void)t;
  (void)rest;
  (void)rest_len;
  /* RFC 7395 §3.1: TLS is the WebSocket's (wss://); STARTTLS is not used. */
  return XMPPUV_ESTATE;
}

static void op_channel_binding(xmppuv__transport_t *t, xmppuv__channel_binding_t *out) {
  ws_transport_t *w = (ws_transport_t *)t;
  memset(out, 0, sizeof *out);
  if (w->conn != NULL) xmppuv__stream_transport.channel_binding((xmppuv__transport_t *)w->conn, out);
}

static void op_pause(xmppuv__transport_t *t, int paused) {
  ws_transport_t *w = (ws_transport_t *)t;
  if (w->conn != NULL) xmppuv__conn_pause(w->conn, paused);
}

static void op_close(xmppuv__transport_t *t, int graceful) {
  ws_transport_t *w = (ws_transport_t *)t;
  if (w->conn == NULL) return;
  /* The owner's close: from now on only `closed` (transport.h), even if
   * the rest of this read was the server's Close. */
  w->failed = 1;
  if (graceful && w->state == WS_OPEN && w->codec != NULL) {
    /* RFC 6455 §5.5.1: a Close frame, then the connection. */
    w->state = WS_CLOSING;
    if (xmppuv__ws_codec_close(w->codec, XMPPUV__WS_NORMAL, &w->frames) == 0) {
      send_frames(w, 1);
      return;
    }
  }
  w->state = WS_CLOSING;
  xmppuv__conn_close(w->conn, graceful);
}

static const char *op_peer(const xmppuv__transport_t *t) {
  return ((const ws_transport_t *)t)->peer;
}

const xmppuv__transport_ops_t xmppuv__ws_transport = {
    "websocket", XMPPUV__FRAMING_WEBSOCKET, op_open,  op_write, op_starttls,
    op_channel_binding, op_pause, op_close, op_peer};
