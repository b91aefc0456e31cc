#include "transport/discover.h"

#include <stdio.h>
#include <string.h>

#include "transport/conn.h"
#include "transport/hostmeta.h"
#include "transport/http.h"
#include "util/alloc.h"
#include "util/log.h"

/* The two documents, in order (XEP-0156 §3). */
static const struct {
  const char *path, *accept;
  int json;
} docs[] = {
    {"/.well-known/host-meta.json", "application/json", 1},
    {"/.well-known/host-meta", "application/xrd+xml", 0},
};

struct xmppuv__discover {
  uv_loop_t *loop;
  xmppuv__discover_config_t cfg;
  char *domain;
  char *dns_servers;
  xmppuv__discover_cb cb;
  void *ud;
  uv_timer_t timer;
  int timer_open;
  xmppuv__conn_t *conn; /* the current fetch's; NULL between fetches */
  size_t doc;           /* which of docs */
  xmppuv__http_response_t resp;
  int resp_done;        /* resp is complete (or refused): result set */
  int result;           /* this document's outcome */
  char url[1024];
  char detail[700];     /* what the fetches said, for the error */
  int finished;         /* cb ran, or was cancelled */
};

static void finish(xmppuv__discover_t *d, int status, const char *url) {
  if (d->finished) return;
  d->finished = 1;
  if (d->timer_open) uv_timer_stop(&d->timer);
  d->cb(d->ud, status, url, status == 0 ? NULL : d->detail);
}

/* "PATH: what happened", added to the error's detail. */
static void note(xmppuv__discover_t *d, const char *what) {
  size_t len = strlen(d->detail);
  snprintf(d->detail + len, sizeof d->detail - len, "%shttps://%s%s: %s", len > 0 ? "; " : "",
           d->domain, docs[d->doc].path, what);
}

static void on_timer_closed(uv_handle_t *h) {
  xmppuv__discover_t *d = h->data;
  xmppuv__http_response_free(&d->resp);
  xmppuv__free(d->domain);
  xmppuv__free(d->dns_servers);
  xmppuv__free(d);
}

/* Once nothing is open, the timer goes last and frees. */
static void maybe_free(xmppuv__discover_t *d) {
  if (d->finished && d->conn == NULL && d->timer_open) {
    d->timer_open = 0;
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
  }
}

static int fetch(xmppuv__discover_t *d);

/* The document's answer is in (or refused): take the link, or go on. */
static void judge(xmppuv__discover_t *d, int rc, const char *why) {
  d->resp_done = 1;
  d->result = rc;
  if (rc < 0) {
    note(d, why);
    return;
  }
  int status = xmppuv__http_response_status(&d->resp);
  if (status < 200 || status > 299) {
    note(d, why);
    d->result = XMPPUV_ENOTFOUND;
    return;
  }
  size_t len = 0;
  const char *body = xmppuv__http_response_body(&d->resp, &len);
  char hm_why[200];
  d->result = xmppuv__hostmeta_websocket(body, len, docs[d->doc].json, d->cfg.allow_ws, d->url,
                                         sizeof d->url, hm_why, sizeof hm_why);
  if (d->result != 0) note(d, hm_why);
}

static void on_connected(void *ud, int tls) {
  (void)tls;
  xmppuv__discover_t *d = ud;
  /* RFC 9110 §7.2: Host is the domain, the port only when not 443
   * (ejabberd's mod_host_meta answers for the host the Host field names). */
  char host[300];
  if (d->cfg.port == 443)
    snprintf(host, sizeof host, "%s", d->domain);
  else
    snprintf(host, sizeof host, "%s:%u", d->domain, (unsigned)d->cfg.port);
  xmppuv__buf_t req = XMPPUV__BUF_INIT;
  int rc = xmppuv__http_get_request(&req, host, docs[d->doc].path, docs[d->doc].accept);
  if (rc == 0) rc = xmppuv__conn_write_buf(d->conn, &req);
  xmppuv__buf_free(&req);
  if (rc != 0) {
    judge(d, rc, xmppuv_strerror(rc));
    xmppuv__conn_close(d->conn, 0);
  }
}

static void on_data(void *ud, const char *data, size_t len) {
  xmppuv__discover_t *d = ud;
  if (d->resp_done) return;
  char why[300];
  int rc = xmppuv__http_response_feed(&d->resp, data, len, why, sizeof why);
  if (rc == 0) return;
  judge(d, rc, why);
  xmppuv__conn_close(d->conn, 0);
}

static void on_tls_ready(void *ud) { (void)ud; }

static void on_error(void *ud, int status, const char *detail) {
  xmppuv__discover_t *d = ud;
  if (d->resp_done) return;
  char why[300];
  if (status == XMPPUV_EEOF) {
    int rc = xmppuv__http_response_eof(&d->resp, why, sizeof why);
    judge(d, rc < 0 ? rc : 1, why);
    return;
  }
  judge(d, status, detail != NULL ? detail : xmppuv_strerror(status));
}

static void on_closed(void *ud) {
  xmppuv__discover_t *d = ud;
  d->conn = NULL;
  if (d->finished) {
    maybe_free(d);
    return;
  }
  if (d->result == 0) {
    xmppuv__logf(d->cfg.log, XMPPUV_LOG_INFO, "discover", "%s names the WebSocket %s",
                 docs[d->doc].path, d->url);
    finish(d, 0, d->url);
  } else if (d->doc + 1 < sizeof docs / sizeof docs[0] && d->result != XMPPUV_ETIMEDOUT &&
             (d->result == XMPPUV_ENOTFOUND || d->result == XMPPUV_EPROTO ||
              d->result == XMPPUV_ETOOBIG)) {
    /* The server answered, without a usable link: the other document. A
     * server that cannot be reached or verified is not asked twice. */
    d->doc++;
    int rc = fetch(d);
    if (rc != 0) {
      judge(d, rc, xmppuv_strerror(rc));
      finish(d, rc, NULL);
    }
  } else {
    finish(d, d->result, NULL);
  }
  maybe_free(d);
}

static const xmppuv__transport_events_t events = {on_connected, on_data, on_tls_ready, on_error,
                                                  on_closed};

static int fetch(xmppuv__discover_t *d) {
  xmppuv__http_response_free(&d->resp);
  xmppuv__http_response_init(&d->resp, XMPPUV__DISCOVER_BODY_MAX);
  d->resp_done = 0;
  d->result = XMPPUV_ENOTFOUND;
  xmppuv__logf(d->cfg.log, XMPPUV_LOG_DEBUG, "discover", "fetching https://%s:%u%s", d->domain,
               (unsigned)d->cfg.port, docs[d->doc].path);
  xmppuv__transport_config_t c;
  memset(&c, 0, sizeof c);
  c.domain = d->domain;
  c.host = d->domain;
  c.port = d->cfg.port;
  c.tls_mode = XMPPUV_TLS_DIRECT;
  c.tls_ctx = d->cfg.tls_ctx;
  c.dns_servers = d->dns_servers;
  c.connect_timeout_ms = d->cfg.connect_timeout_ms;
  c.log = d->cfg.log;
  c.direct_alpn = XMPPUV__ALPN_HTTP;
  return xmppuv__conn_open(d->loop, &c, &events, d, &d->conn);
}

static void on_timeout(uv_timer_t *t) {
  xmppuv__discover_t *d = t->data;
  size_t len = strlen(d->detail);
  snprintf(d->detail + len, sizeof d->detail - len, "%sno answer from https://%s%s in %u ms",
           len > 0 ? "; " : "", d->domain, docs[d->doc].path, (unsigned)d->cfg.timeout_ms);
  finish(d, XMPPUV_ETIMEDOUT, NULL);
  if (d->conn != NULL) xmppuv__conn_close(d->conn, 0);
  maybe_free(d);
}

int xmppuv__discover_start(uv_loop_t *loop, const xmppuv__discover_config_t *cfg,
                           xmppuv__discover_cb cb, void *ud, xmppuv__discover_t **out) {
  *out = NULL;
  if (cfg->domain == NULL || cfg->tls_ctx == NULL || cb == NULL) return XMPPUV_EINVAL;
  xmppuv__discover_t *d = xmppuv__calloc(1, sizeof *d);
  if (d == NULL) return XMPPUV_ENOMEM;
  d->loop = loop;
  d->cfg = *cfg;
  if (d->cfg.port == 0) d->cfg.port = 443;
  if (d->cfg.timeout_ms == 0) d->cfg.timeout_ms = XMPPUV__DISCOVER_TIMEOUT_MS;
  d->cb = cb;
  d->ud = ud;
  int rc = 0;
  d->domain = xmppuv__strdup_opt(cfg->domain, &rc);
  d->dns_servers = xmppuv__strdup_opt(cfg->dns_servers, &rc);
  d->cfg.domain = d->cfg.dns_servers = NULL;
  xmppuv__http_response_init(&d->resp, XMPPUV__DISCOVER_BODY_MAX);
  if (rc == 0) rc = fetch(d);
  if (rc != 0) {
    xmppuv__http_response_free(&d->resp);
    xmppuv__free(d->domain);
    xmppuv__free(d->dns_servers);
    xmppuv__free(d);
    return rc;
  }
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  d->timer_open = 1;
  uv_timer_start(&d->timer, on_timeout, d->cfg.timeout_ms, 0);
  *out = d;
  return 0;
}

void xmppuv__discover_cancel(xmppuv__discover_t *d) {
  if (d == NULL) return;
  d->finished = 1;
  if (d->timer_open) uv_timer_stop(&d->timer);
  if (d->conn != NULL) xmppuv__conn_close(d->conn, 0);
  maybe_free(d);
}
