/* The client: the libuv driver that runs the I/O-free cores (session, SM,
 * iq tracker) over a connection, owns the one timer, and turns it all into
 * the app's events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "engine/handlers.h"
#include "engine/iq.h"
#include "util/log.h"
#include "sasl/sasl.h"
#include "session/session.h"
#include "sm/persist.h"
#include "sm/sm.h"
#include "session/stream_error.h"
#include "transport/conn.h"
#include "util/ns.h"
#include "xml/serialize.h"
#include "transport/tls.h"
#include "xml/stanza.h"
#include "xmppuv.h"

#define MAX_REDIRECTS 5

struct xmppuv_client {
  uv_loop_t *loop;
  uv_timer_t timer; /* the one timer: armed at the earliest deadline */
  xmppuv_client_options_t opts; /* strings owned */
  xmppuv_client_callbacks_t cb;
  void *user_data;
  xmppuv__log_t log;

  xmppuv_jid_t *jid;   /* as configured */
  xmppuv_jid_t *bound; /* full JID of the current session */
  xmppuv__tls_ctx_t *tls_ctx;
  xmppuv__session_t *session;
  xmppuv__sm_t *sm;
  xmppuv__conn_t *conn;
  xmppuv__iq_tracker_t iqs;
  uint64_t iq_fence; /* requests with a handle below this were written on a
                        stream now gone (see note_stream_lost) */
  xmppuv__handlers_t handlers;
  xmppuv__handlers_t iq_handlers;

  xmppuv_status_t status;
  int started;   /* the app wants to be connected */
  int stopping;  /* graceful stop in progress */
  int closing;   /* xmppuv_client_close() called */
  int gave_up;   /* a fatal error: no reconnection until start() */
  int gave_up_code; /* that error: the reason every stanza still held fails */
  int reconnect_at_once; /* reconnect_now(): the next attempt has no delay */
  int online;    /* stanzas flow on this connection */
  int dropping;  /* this connection is being dropped: feed nothing more */
  int sm_offered;
  int server_closed; /* the server sent </stream:stream> */
  void (*close_cb)(xmppuv_client_t *c, void *user_data);

  /* Deadlines (uv_now milliseconds; XMPPUV__NO_DEADLINE when unset). */
  uint64_t negotiation_deadline;
  uint64_t close_deadline;
  uint64_t drain_deadline;
  uint64_t reconnect_at;
  uint64_t ping_at;
  uint64_t last_inbound;
  uint64_t ping_handle; /* outstanding keepalive ping, 0 if none */
  uint64_t armed_at;    /* the deadline the timer is set for */

  unsigned reconnect_attempt;
  char *redirect_host; /* see-other-host */
  uint16_t redirect_port;
  unsigned redirects;
  uint64_t rng;
  uint64_t id_counter;
  char id_prefix[12];
  char *password; /* copied from the options; wiped on free */
};

static void rearm(xmppuv_client_t *c);
static void connect_now(xmppuv_client_t *c);
static void drop_connection(xmppuv_client_t *c, int graceful);

/* ---- time ------------------------------------------------------------------ */

static xmppuv__time_t now_of(const xmppuv_client_t *c) {
  xmppuv__time_t t;
  t.mono_ms = uv_now(c->loop);
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) == 0)
    t.wall_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
  else
    t.wall_ms = 0;
  return t;
}

static uint64_t mono(const xmppuv_client_t *c) { return uv_now(c->loop); }

static uint64_t after(const xmppuv_client_t *c, unsigned ms) {
  return ms == 0 ? XMPPUV__NO_DEADLINE : mono(c) + ms;
}

/* ---- events to the app -------------------------------------------------- */

static void set_status(xmppuv_client_t *c, xmppuv_status_t status) {
  if (c->status == status) return;
  c->status = status;
  xmppuv__logf(&c->log, XMPPUV_LOG_DEBUG, "client", "status %s", xmppuv_status_name(status));
  if (!c->closing && c->cb.status != NULL) c->cb.status(c, status, c->user_data);
}

static void emit_error(xmppuv_client_t *c, const xmppuv_error_t *err) {
  if (c->closing) return;
  /* Without reconnection every error ends in offline: fatal, as the
   * header defines it. */
  xmppuv_error_t e = *err;
  if (!c->opts.reconnect) e.fatal = 1;
  /* The first fatal error is the reason what is still held will fail. */
  if (e.fatal && c->gave_up_code == 0) c->gave_up_code = e.code;
  if (c->cb.error != NULL) c->cb.error(c, &e, c->user_data);
}

static void emit_simple_error(xmppuv_client_t *c, int code, int fatal) {
  xmppuv_error_t err = {code, NULL, NULL, NULL, fatal};
  emit_error(c, &err);
}

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

/* ---- stanza ids --------------------------------------------------------- */

/* Ids are unique per client (a counter) and not guessable across clients
 * (a random prefix), so replies cannot be confused or forged by id alone. */
static int ensure_id(xmppuv_client_t *c, xmppuv_stanza_t *s) {
  if (xmppuv_stanza_attr(s, "id") != NULL) return 0;
  /* By hand rather than snprintf: this runs for every stanza sent. */
  static const char hex[] = "0123456789abcdef";
  char id[40];
  size_t n = strlen(c->id_prefix);
  memcpy(id, c->id_prefix, n);
  char digits[16];
  size_t d = 0;
  for (uint64_t v = ++c->id_counter; v != 0; v >>= 4) digits[d++] = hex[v & 15];
  while (d > 0) id[n++] = digits[--d];
  /* Our own characters, and known absent: appended as they are. */
  return xmppuv__stanza_push_own_attr(s, "id", id, n);
}

/* ---- the connection ------------------------------------------------------- */

static int all_done_for_close(const xmppuv_client_t *c) {
  return c->closing && c->conn == NULL;
}

static void on_timer_closed(uv_handle_t *h) {
  xmppuv_client_t *c = h->data;
  /* The last call the app gets; the memory goes right after. */
  if (c->close_cb != NULL) c->close_cb(c, c->user_data);
  xmppuv__sm_free(c->sm);
  xmppuv__session_free(c->session);
  xmppuv__tls_ctx_unref(c->tls_ctx);
  xmppuv__handlers_free(&c->handlers);
  xmppuv__handlers_free(&c->iq_handlers);
  xmppuv_jid_free(c->jid);
  xmppuv_jid_free(c->bound);
  xmppuv__free(c->redirect_host);
  if (c->password != NULL) {
    xmppuv__secure_zero(c->password, strlen(c->password));
    xmppuv__free(c->password);
  }
  const char **strings[] = {&c->opts.jid, &c->opts.resource, &c->opts.lang, &c->opts.host,
                            &c->opts.ca_file, &c->opts.ca_path, &c->opts.pin,
                            &c->opts.dns_servers, &c->opts.sasl_mechanisms};
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
    xmppuv__free((void *)(uintptr_t)*strings[i]);
  xmppuv__free(c);
}

static void finish_close(xmppuv_client_t *c) {
  if (!all_done_for_close(c) || uv_is_closing((uv_handle_t *)&c->timer)) return;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* Everything still owed to the app ends now. */
static void fail_everything(xmppuv_client_t *c, int status) {
  xmppuv__iq_fail_all(&c->iqs, status);
  xmppuv__sm_fail_all(c->sm, status);
}

static void schedule_reconnect(xmppuv_client_t *c) {
  c->reconnect_attempt++;
  uint32_t r = (uint32_t)xmppuv__random_next(&c->rng);
  uint64_t delay = xmppuv__backoff_delay(c->reconnect_attempt, c->opts.reconnect_delay_ms,
                                         c->opts.reconnect_max_delay_ms, r);
  /* see-other-host, or the app said the network changed: go at once. */
  if (c->redirect_host != NULL || c->reconnect_at_once) delay = 0;
  c->reconnect_at_once = 0;
  c->reconnect_at = mono(c) + delay;
  xmppuv__logf(&c->log, XMPPUV_LOG_INFO, "client", "reconnecting in %llu ms (attempt %u)",
               (unsigned long long)delay, c->reconnect_attempt);
  if (c->cb.reconnecting != NULL)
    c->cb.reconnecting(c, c->reconnect_attempt, delay, c->user_data);
}

/* A stream is gone (or going). A pending request's stanza is either held
 * in the SM queue (no stream was ready) or was written; with nothing held,
 * every pending request went out on a stream now gone, and if a new
 * session replaces the one it belonged to, no answer can come
 * (start_new_session fails them). With something held the two cannot be
 * told apart, so the fence stays: held requests go out on whichever session
 * comes next, and a ready stream holds nothing when it is lost. */
static void note_stream_lost(xmppuv_client_t *c) {
  if (xmppuv__sm_queued(c->sm) == xmppuv__sm_unacked(c->sm)) c->iq_fence = c->iqs.next_handle;
}

/* The client stops trying (a fatal error, or any error without
 * reconnection): nothing it holds can be delivered by it any more, so every
 * stanza and request still pending ends now, with the error as the reason
 * (the app saw that error first, and could export the state there). */
static void give_up(xmppuv_client_t *c) {
  c->started = 0;
  int reason = c->gave_up_code != 0 ? c->gave_up_code : XMPPUV_ECANCELED;
  fail_everything(c, reason);
  if (!c->closing) set_status(c, XMPPUV_STATUS_OFFLINE);
}

/* The connection object is gone: decide what comes next. */
static void on_conn_closed(void *ud) {
  xmppuv_client_t *c = ud;
  c->conn = NULL;
  note_stream_lost(c);
  c->online = 0;
  c->negotiation_deadline = c->close_deadline = c->drain_deadline = XMPPUV__NO_DEADLINE;
  c->ping_at = XMPPUV__NO_DEADLINE;
  c->ping_handle = 0;
  if (c->closing) {
    finish_close(c);
    return;
  }
  set_status(c, XMPPUV_STATUS_DISCONNECT);
  if (c->closing) {
    finish_close(c);
    return;
  }
  if (c->stopping || !c->started) {
    c->stopping = 0;
    c->started = 0;
    fail_everything(c, XMPPUV_ECANCELED);
    if (!c->closing) set_status(c, XMPPUV_STATUS_OFFLINE);
  } else if (c->gave_up || !c->opts.reconnect) {
    give_up(c);
  } else {
    schedule_reconnect(c);
  }
  if (c->closing)
    finish_close(c);
  else
    rearm(c);
}

/* Drop the current connection (if any). Not graceful: the server keeps the
 * SM session for resumption. */
static void drop_connection(xmppuv_client_t *c, int graceful) {
  if (c->conn == NULL) return;
  /* The rest of the current read belongs to a stream we gave up: it must
   * reach neither the SM counters nor the app (after a resumption the
   * server resends what we did not count). */
  c->dropping = 1;
  note_stream_lost(c);
  if (c->online || c->status != XMPPUV_STATUS_DISCONNECTING)
    set_status(c, XMPPUV_STATUS_DISCONNECTING);
  c->online = 0;
  xmppuv__sm_disconnected(c->sm, now_of(c));
  xmppuv__conn_close(c->conn, graceful);
}

static void on_conn_connected(void *ud, int tls) {
  xmppuv_client_t *c = ud;
  c->dropping = 0;
  set_status(c, XMPPUV_STATUS_CONNECT);
  c->server_closed = 0;
  c->negotiation_deadline = after(c, c->opts.negotiation_timeout_ms);
  c->last_inbound = mono(c);
  int rc = xmppuv__session_start(c->session, tls);
  if (rc != 0) {
    emit_simple_error(c, rc, 0);
    drop_connection(c, 0);
  }
  rearm(c);
}

static void begin_close_stream(xmppuv_client_t *c);

static void on_conn_data(void *ud, const char *data, size_t len) {
  xmppuv_client_t *c = ud;
  if (c->closing || c->dropping) return;
  c->last_inbound = mono(c);
  xmppuv__sm_inbound_data(c->sm, now_of(c));
  xmppuv__session_feed(c->session, data, len);
  /* A graceful stop waiting for the last acks can go on once they came. */
  if (c->drain_deadline != XMPPUV__NO_DEADLINE && !c->closing &&
      xmppuv__sm_drained(c->sm, now_of(c)))
    begin_close_stream(c);
  rearm(c);
}

static void on_conn_tls_ready(void *ud) {
  xmppuv_client_t *c = ud;
  int rc = xmppuv__session_tls_ready(c->session);
  if (rc != 0) {
    emit_simple_error(c, rc, 0);
    drop_connection(c, 0);
  }
  rearm(c);
}

static int is_certificate_error(int code) {
  return code == XMPPUV_ECERTNAME || code == XMPPUV_ECERTUNTRUSTED ||
         code == XMPPUV_ECERTEXPIRED || code == XMPPUV_ECERTFUTURE ||
         code == XMPPUV_ECERTPIN || code == XMPPUV_ECERTINVALID;
}

static void on_conn_error(void *ud, int status) {
  xmppuv_client_t *c = ud;
  if (c->closing) return;
  /* A certificate that does not verify will not verify next time either:
   * reconnecting would only retry the attack or the misconfiguration. */
  int fatal = is_certificate_error(status) || status == XMPPUV_ENOSERVICE;
  if (fatal) c->gave_up = 1;
  note_stream_lost(c);
  if (c->online || c->status != XMPPUV_STATUS_DISCONNECTING)
    set_status(c, XMPPUV_STATUS_DISCONNECTING);
  c->online = 0;
  xmppuv__sm_disconnected(c->sm, now_of(c));
  /* Losing the connection after our own </stream:stream> is the end we
   * asked for, not an error. */
  if (!c->stopping) emit_simple_error(c, status, fatal);
}

static const xmppuv__conn_events_t conn_events = {on_conn_connected, on_conn_data,
                                                  on_conn_tls_ready, on_conn_error,
                                                  on_conn_closed};

static void connect_now(xmppuv_client_t *c) {
  c->reconnect_at = XMPPUV__NO_DEADLINE;
  xmppuv__conn_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  char location_host[300]; /* copied by xmppuv__conn_open */
  cfg.domain = xmppuv_jid_domain_ascii(c->jid);
  cfg.host = c->opts.host;
  cfg.port = c->opts.port;
  if (c->redirect_host != NULL) {
    cfg.host = c->redirect_host;
    cfg.port = c->redirect_port;
  } else if (xmppuv__sm_can_resume(c->sm, now_of(c))) {
    /* XEP-0198 §5: reconnect to the server's preferred location first. */
    const char *loc = xmppuv__sm_location(c->sm);
    if (loc != NULL && loc[0] != '\0') {
      uint16_t port;
      xmppuv__split_host_port(loc, location_host, sizeof location_host, &port);
      cfg.first_host = location_host;
      cfg.first_port = port;
    }
  }
  cfg.tls_mode = c->opts.tls;
  cfg.tls_ctx = c->tls_ctx;
  cfg.dns_servers = c->opts.dns_servers;
  cfg.connect_timeout_ms = c->opts.connect_timeout_ms;
  cfg.log = &c->log;
  set_status(c, XMPPUV_STATUS_CONNECTING);
  /* The status callback may have closed or stopped the client: a
   * connection opened now would outlive it. */
  if (c->closing || !c->started) return;
  int rc = xmppuv__conn_open(c->loop, &cfg, &conn_events, c, &c->conn);
  xmppuv__free(c->redirect_host);
  c->redirect_host = NULL;
  if (rc != 0) {
    c->conn = NULL;
    emit_simple_error(c, rc, 0);
    if (c->opts.reconnect && c->started && !c->closing) {
      set_status(c, XMPPUV_STATUS_DISCONNECT);
      schedule_reconnect(c);
    } else if (!c->closing) {
      give_up(c);
    }
  }
}

/* ---- session events --------------------------------------------------------- */

static int session_write(void *ud, const char *data, size_t len) {
  xmppuv_client_t *c = ud;
  if (c->conn == NULL) return XMPPUV_ESTATE;
  return xmppuv__conn_write(c->conn, data, len);
}

static int session_starttls(void *ud, const char *rest, size_t rest_len) {
  xmppuv_client_t *c = ud;
  return xmppuv__conn_starttls(c->conn, rest, rest_len);
}

static size_t session_cb_types(void *ud, const char **types, size_t max) {
  xmppuv_client_t *c = ud;
  return c->conn != NULL ? xmppuv__conn_cb_types(c->conn, types, max) : 0;
}

static int session_cb_data(void *ud, const char *type, unsigned char *out, size_t *len) {
  xmppuv_client_t *c = ud;
  return c->conn != NULL ? xmppuv__conn_channel_binding(c->conn, type, out, len)
                         : XMPPUV_ESTATE;
}

static int session_password(void *ud, char *buf, size_t size) {
  xmppuv_client_t *c = ud;
  if (c->opts.password_cb != NULL)
    return c->opts.password_cb(c, buf, size, c->opts.password_user_data);
  if (c->password == NULL) return XMPPUV_EAUTH;
  size_t len = strlen(c->password);
  if (len >= size) return XMPPUV_ETOOBIG;
  memcpy(buf, c->password, len + 1);
  return 0;
}

static void session_status(void *ud, xmppuv_status_t status) {
  xmppuv_client_t *c = ud;
  /* After a resumption the status stays online; stream restarts of one
   * negotiation are not news to the app beyond the first. */
  if (c->status == XMPPUV_STATUS_ONLINE) return;
  set_status(c, status);
}

/* The one place a new session replaces the old one: the old one was not
 * resumed (it could not be: SM off, past the server's max, forgotten after
 * ESMHIGH; or the server answered <failed/>). Requests written on it were
 * addressed back to a session that is gone: they fail now, not at their
 * timeouts. Then a resource is bound. */
static void start_new_session(xmppuv_client_t *c) {
  xmppuv__iq_fail_before(&c->iqs, c->iq_fence, XMPPUV_ESMFAILED);
  /* A callback may have closed, stopped or dropped meanwhile. */
  if (c->closing || c->stopping || c->dropping) return;
  xmppuv__session_bind(c->session);
}

static void session_authenticated(void *ud, int sm_offered) {
  xmppuv_client_t *c = ud;
  c->sm_offered = sm_offered;
  c->redirects = 0;
  xmppuv__sm_set_peer_limit(c->sm, xmppuv__session_peer_max_bytes(c->session));
  xmppuv__time_t now = now_of(c);
  xmppuv__sm_stream_authenticated(c->sm, now);
  if (sm_offered && xmppuv__sm_can_resume(c->sm, now)) {
    int rc = xmppuv__sm_resume(c->sm, now);
    if (rc == 0) return;
    /* Could not ask (out of memory; a failed write already dropped the
     * connection): try again on the next one rather than bind and lose
     * the session. */
    if (c->status != XMPPUV_STATUS_DISCONNECTING) {
      emit_simple_error(c, rc, 0);
      drop_connection(c, 0);
    }
    return;
  }
  start_new_session(c);
}

static void session_bound(void *ud, const char *full_jid) {
  xmppuv_client_t *c = ud;
  xmppuv_jid_t *j = NULL;
  int prc = xmppuv_jid_parse(full_jid, &j);
  if (prc != 0) {
    /* Out of memory is not the server's fault. */
    emit_simple_error(c, prc == XMPPUV_ENOMEM ? prc : XMPPUV_EBIND, 0);
    drop_connection(c, 0);
    return;
  }
  xmppuv_jid_free(c->bound);
  c->bound = j;
  int rc = xmppuv__sm_enable(c->sm, full_jid, c->sm_offered, now_of(c));
  if (rc != 0) {
    emit_simple_error(c, rc, 0);
    drop_connection(c, 0);
  }
}

static int closing_check(xmppuv_client_t *c) { return c->closing; }

static int send_stanza(xmppuv_client_t *c, xmppuv_stanza_t *s, xmppuv__sm_done_cb cb,
                       void *cb_data);

/* RFC 6120 §8.2.3 and §8.4: an iq get/set nobody handles gets
 * service-unavailable; XEP-0199 pings are answered here. */
static void answer_iq_request(xmppuv_client_t *c, xmppuv_stanza_t *iq) {
  const xmppuv_stanza_t *child = xmppuv_stanza_child(iq, NULL, NULL);
  xmppuv_stanza_t *reply = NULL;
  if (child != NULL && strcmp(xmppuv_stanza_name(child), "ping") == 0 &&
      xmppuv_stanza_ns(child) != NULL && strcmp(xmppuv_stanza_ns(child), XMPPUV__NS_PING) == 0 &&
      strcmp(xmppuv_stanza_attr(iq, "type"), "get") == 0) {
    if (xmppuv_iq_result_new(iq, &reply) != 0) return;
  } else {
    if (xmppuv_iq_error_new(iq, "cancel", "service-unavailable", &reply) != 0) return;
  }
  send_stanza(c, reply, NULL, NULL);
  xmppuv_stanza_unref(reply);
}

static int is_stanza(const xmppuv_stanza_t *el) {
  const char *ns = xmppuv_stanza_ns(el);
  const char *name = xmppuv_stanza_name(el);
  return ns != NULL && strcmp(ns, XMPPUV_NS_CLIENT) == 0 &&
         (strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 ||
          strcmp(name, "iq") == 0);
}

static void session_element(void *ud, xmppuv_stanza_t *el) {
  xmppuv_client_t *c = ud;
  if (c->closing || c->dropping) return;
  /* SM first: it counts the stanza (h) before anyone else sees it. */
  int sm_rc = xmppuv__sm_inbound(c->sm, el, now_of(c));
  if (sm_rc < 0) {
    /* The engine could not take the element in (out of memory): the
     * stream's state would be wrong from here on. */
    emit_simple_error(c, sm_rc, 0);
    drop_connection(c, 0);
    return;
  }
  if (sm_rc > 0) return;
  if (c->closing || c->dropping || !is_stanza(el)) return;
  const char *name = xmppuv_stanza_name(el);
  const char *type = xmppuv_stanza_attr(el, "type");
  int handled = 0;
  if (strcmp(name, "iq") == 0 && type != NULL &&
      (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)) {
    handled = xmppuv__iq_match(&c->iqs, el, c->bound);
  }
  if (!handled && !c->closing)
    handled = xmppuv__handlers_dispatch(&c->handlers, c, el, closing_check);
  if (!handled && !c->closing && strcmp(name, "iq") == 0 && type != NULL &&
      (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
    handled = xmppuv__handlers_dispatch(&c->iq_handlers, c, el, closing_check);
    if (!handled && !c->closing) {
      answer_iq_request(c, el);
      handled = 1;
    }
  }
  if (!c->closing && c->cb.stanza != NULL) c->cb.stanza(c, el, handled, c->user_data);
}

static void session_failed(void *ud, const xmppuv_error_t *err, const char *see_other_host) {
  xmppuv_client_t *c = ud;
  /* A stream error that one of our stanzas may have caused: the SM engine
   * keeps count, so a stanza that ends the stream every time fails alone
   * instead of being resent forever (the poison rule, sm.h). */
  if (err->code == XMPPUV_ESTREAM && xmppuv__stream_error_class(err->condition)->stanza_may_cause)
    xmppuv__sm_stream_error(c->sm);
  if (see_other_host != NULL && see_other_host[0] != '\0' && !err->fatal) {
    /* RFC 6120 §4.9.3.19: reconnect to the host named, a few times at most. */
    if (++c->redirects > MAX_REDIRECTS) {
      xmppuv_error_t loop_err = {XMPPUV_ESEEOTHERHOST, "see-other-host", see_other_host,
                                 err->element, 1};
      c->gave_up = 1;
      emit_error(c, &loop_err);
    } else {
      char host[300];
      uint16_t port;
      xmppuv__split_host_port(see_other_host, host, sizeof host, &port);
      xmppuv__free(c->redirect_host);
      c->redirect_host = xmppuv__strdup(host);
      c->redirect_port = port;
      emit_error(c, err);
    }
  } else {
    if (err->fatal) c->gave_up = 1;
    emit_error(c, err);
  }
  /* Flush the stream error or </stream:stream> we may have written. */
  drop_connection(c, 1);
}

static void session_closed(void *ud) {
  xmppuv_client_t *c = ud;
  c->server_closed = 1;
  if (c->stopping) {
    set_status(c, XMPPUV_STATUS_CLOSE);
    drop_connection(c, 1);
    return;
  }
  /* The server ended the stream: answer in kind and reconnect. */
  xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "client", "the server closed the stream");
  xmppuv__session_close(c->session);
  set_status(c, XMPPUV_STATUS_CLOSE);
  drop_connection(c, 1);
}

static const xmppuv__session_events_t session_events = {
    session_write,  session_starttls,      session_cb_types, session_cb_data,
    session_password, session_status,      session_authenticated, session_bound,
    session_element, session_failed,       session_closed};

/* ---- SM events -------------------------------------------------------------- */

/* The wire trace of what the SM engine writes: its nonzas as they are, and
 * stanzas parsed back so the usual redaction applies (a stanza may carry a
 * password, e.g. in-band registration). Only when tracing is on. */
static void trace_sm_write(xmppuv_client_t *c, const char *data, size_t len) {
  static const char *const nonzas[] = {"<r ", "<a ", "<enable ", "<resume ",
                                       "<stream:error", "</stream:stream"};
  for (size_t i = 0; i < sizeof nonzas / sizeof nonzas[0]; i++) {
    size_t n = strlen(nonzas[i]);
    if (len >= n && memcmp(data, nonzas[i], n) == 0) {
      xmppuv__logf(&c->log, XMPPUV_LOG_TRACE, "wire-out", "%.*s", (int)len, data);
      return;
    }
  }
  xmppuv_stanza_t *s;
  if (xmppuv_stanza_parse(data, len, &s) == 0) {
    xmppuv__log_stanza(&c->log, "out", s);
    xmppuv_stanza_unref(s);
  } else {
    /* A stamped stanza whose copy could not be made goes out in pieces. */
    xmppuv__logf(&c->log, XMPPUV_LOG_TRACE, "wire-out", "(%zu bytes of a resent stanza)", len);
  }
}

static int sm_write(void *ud, const char *data, size_t len) {
  xmppuv_client_t *c = ud;
  if (XMPPUV__LOG_ON(&c->log, XMPPUV_LOG_TRACE)) trace_sm_write(c, data, len);
  int rc = session_write(ud, data, len);
  if (rc != 0 && rc != XMPPUV_ESTATE && c->conn != NULL && !c->closing) {
    /* sm.h: after a failed write the engine writes nothing more on this
     * stream; it is up to us to drop it (and resume on the next). */
    emit_simple_error(c, rc, 0);
    drop_connection(c, 0);
  }
  return rc;
}

static void go_online(xmppuv_client_t *c) {
  c->online = 1;
  c->reconnect_attempt = 0;
  c->negotiation_deadline = XMPPUV__NO_DEADLINE;
  c->ping_at = XMPPUV__NO_DEADLINE;
  c->last_inbound = mono(c);
}

static void sm_enable_result(void *ud, int enabled, const char *condition) {
  xmppuv_client_t *c = ud;
  if (!enabled && c->opts.sm && c->sm_offered)
    xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "sm", "stream management refused%s%s",
                 condition ? ": " : "", condition ? condition : "");
  if (c->stopping) return; /* stopped meanwhile: the stream is closing */
  go_online(c);
  set_status(c, XMPPUV_STATUS_ONLINE);
  if (!c->closing && c->cb.online != NULL) c->cb.online(c, c->bound, c->user_data);
}

static void sm_resumed(void *ud) {
  xmppuv_client_t *c = ud;
  if (c->stopping) return; /* stopped meanwhile: the stream is closing */
  go_online(c);
  xmppuv__logf(&c->log, XMPPUV_LOG_INFO, "sm", "session resumed");
  set_status(c, XMPPUV_STATUS_ONLINE);
  if (!c->closing && c->cb.resumed != NULL) c->cb.resumed(c, c->user_data);
}

static void sm_resume_failed(void *ud, const char *condition) {
  xmppuv_client_t *c = ud;
  xmppuv__logf(&c->log, XMPPUV_LOG_INFO, "sm", "resumption failed%s%s; starting a new session",
               condition ? ": " : "", condition ? condition : "");
  start_new_session(c);
}

static void sm_done(void *ud, xmppuv_stanza_t *stanza, int status, xmppuv__sm_done_cb cb,
                    void *cb_data) {
  xmppuv_client_t *c = ud;
  if (cb != NULL) {
    /* send_cb stored the app's callback in the engine's slot. */
    xmppuv_send_cb app_cb = (xmppuv_send_cb)(void (*)(void))cb;
    app_cb(c, stanza, status, cb_data);
  }
  if (status == 0) {
    if (c->cb.ack != NULL) c->cb.ack(c, stanza, c->user_data);
  } else if (status != XMPPUV_ESMOFF) {
    if (c->cb.fail != NULL) c->cb.fail(c, stanza, status, c->user_data);
  }
}

static void sm_abort(void *ud, int reason) {
  xmppuv_client_t *c = ud;
  xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "sm", "dropping the connection: %s",
               xmppuv_strerror(reason));
  emit_simple_error(c, reason, 0);
  /* Not graceful: </stream:stream> would end the server's session. But for
   * h too high the engine wrote its stream error (XEP-0198 §6) and the
   * session is over anyway: flush that error rather than drop it. */
  drop_connection(c, reason == XMPPUV_ESMHIGH);
}

static const xmppuv__sm_events_t sm_events = {sm_write, sm_enable_result, sm_resumed,
                                              sm_resume_failed, sm_done, sm_abort};

/* ---- iq tracker --------------------------------------------------------------- */

static void iq_done(void *owner, xmppuv_iq_cb cb, void *user_data, int status,
                    xmppuv_stanza_t *reply) {
  xmppuv_client_t *c = owner;
  if (cb != NULL) cb(c, status, reply, user_data);
}

static void on_keepalive_reply(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply,
                               void *user_data) {
  (void)reply;
  (void)user_data;
  c->ping_handle = 0;
  if (status == XMPPUV_ETIMEDOUT && c->conn != NULL && c->online) {
    xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "client", "no answer to a keepalive ping");
    emit_simple_error(c, XMPPUV_ETIMEDOUT, 0);
    drop_connection(c, 0);
  }
}

static void send_keepalive(xmppuv_client_t *c) {
  xmppuv_stanza_t *iq;
  if (xmppuv_stanza_new("iq", NULL, &iq) != 0) return;
  if (xmppuv_stanza_set_attr(iq, "type", "get") == 0 &&
      xmppuv_stanza_new_child(iq, "ping", XMPPUV__NS_PING, NULL) == 0) {
    uint64_t handle = 0;
    if (xmppuv_client_iq(c, iq, c->opts.keepalive_timeout_ms, on_keepalive_reply, NULL,
                         &handle) == 0)
      c->ping_handle = handle;
  }
  xmppuv_stanza_unref(iq);
}

/* ---- the timer ------------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static void on_timer(uv_timer_t *t);

static void rearm(xmppuv_client_t *c) {
  if (c->closing) return;
  /* Keepalive without SM: a ping after keepalive_ms of silence. */
  if (c->online && !xmppuv__sm_active(c->sm) && c->opts.keepalive_ms > 0 &&
      c->ping_handle == 0)
    c->ping_at = c->last_inbound + c->opts.keepalive_ms;
  else
    c->ping_at = XMPPUV__NO_DEADLINE;
  uint64_t d = min_u64(c->negotiation_deadline, c->close_deadline);
  d = min_u64(d, c->drain_deadline);
  d = min_u64(d, c->reconnect_at);
  d = min_u64(d, c->ping_at);
  d = min_u64(d, xmppuv__iq_deadline(&c->iqs));
  d = min_u64(d, xmppuv__sm_deadline(c->sm));
  /* Most calls (every send) leave the earliest deadline where it was:
   * then the timer is left alone. */
  if (d == c->armed_at && (d == XMPPUV__NO_DEADLINE || uv_is_active((uv_handle_t *)&c->timer)))
    return;
  c->armed_at = d;
  if (d == XMPPUV__NO_DEADLINE) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t now = mono(c);
  uv_timer_start(&c->timer, on_timer, d > now ? d - now : 0, 0);
}

static void begin_close_stream(xmppuv_client_t *c) {
  c->drain_deadline = XMPPUV__NO_DEADLINE;
  set_status(c, XMPPUV_STATUS_CLOSING);
  xmppuv__session_close(c->session);
  c->close_deadline = after(c, c->opts.close_timeout_ms ? c->opts.close_timeout_ms : 1);
}

static void on_timer(uv_timer_t *t) {
  xmppuv_client_t *c = t->data;
  uint64_t now = mono(c);
  xmppuv__time_t tnow = now_of(c);
  if (c->negotiation_deadline <= now) {
    c->negotiation_deadline = XMPPUV__NO_DEADLINE;
    xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "client", "stream negotiation timed out");
    emit_simple_error(c, XMPPUV_ETIMEDOUT, 0);
    drop_connection(c, 0);
  }
  if (c->drain_deadline <= now ||
      (c->drain_deadline != XMPPUV__NO_DEADLINE && xmppuv__sm_drained(c->sm, tnow)))
    begin_close_stream(c);
  if (c->close_deadline <= now) {
    /* The server did not close its side in time: close ours anyway. */
    c->close_deadline = XMPPUV__NO_DEADLINE;
    drop_connection(c, 0);
  }
  if (c->reconnect_at <= now) {
    c->reconnect_at = XMPPUV__NO_DEADLINE;
    if (c->started && !c->closing) connect_now(c);
  }
  if (c->ping_at <= now && c->online) {
    c->ping_at = XMPPUV__NO_DEADLINE;
    send_keepalive(c);
  }
  xmppuv__iq_expire(&c->iqs, now);
  xmppuv__sm_tick(c->sm, tnow);
  rearm(c);
}

/* ---- API ------------------------------------------------------------------------ */

/* A graceful stop with unacked stanzas asks for a last <a/> and waits this
 * long for it before </stream:stream>: close_timeout_ms by default (a
 * stanza the server has is then reported acked, not failed), or
 * sm_drain_timeout_ms when that is longer. */
static unsigned drain_wait_ms(const xmppuv_client_t *c) {
  unsigned close_ms = c->opts.close_timeout_ms, drain_ms = c->opts.sm_drain_timeout_ms;
  return drain_ms > close_ms ? drain_ms : close_ms;
}

void xmppuv_client_options_init(xmppuv_client_options_t *o) {
  memset(o, 0, sizeof *o);
  o->tls = XMPPUV_TLS_AUTO;
  o->connect_timeout_ms = 10000;
  o->negotiation_timeout_ms = 30000;
  o->close_timeout_ms = 2000;
  o->iq_timeout_ms = 30000;
  o->keepalive_ms = 60000;
  o->keepalive_timeout_ms = 20000;
  o->reconnect = 1;
  o->reconnect_delay_ms = 1000;
  o->reconnect_max_delay_ms = 60000;
  o->sm = 1;
  o->sm_resume = 1;
  o->sm_ack_debounce_ms = 250;
  o->sm_ack_threshold = 256;
  o->sm_idle_request_ms = 30000;
  o->sm_ack_timeout_ms = 60000;
  o->sm_wait_timeout_ms = 30000;
  o->sm_queue_max = 4096;
  o->max_stanza_bytes = XMPPUV__DEFAULT_MAX_STANZA_BYTES;
  o->max_depth = XMPPUV__DEFAULT_MAX_DEPTH;
  o->max_attrs = XMPPUV__DEFAULT_MAX_ATTRS;
  o->log_level = XMPPUV_LOG_INFO;
  o->max_send_bytes = XMPPUV__DEFAULT_MAX_STANZA_BYTES;
}

static int copy_options(xmppuv_client_t *c, const xmppuv_client_options_t *o) {
  c->opts = *o;
  c->opts.password = NULL;
  /* Each field gets its copy, or NULL if it could not be made: nothing of
   * the caller's is freed on the way out. */
  int rc = 0;
  c->opts.jid = xmppuv__strdup_opt(o->jid, &rc);
  c->opts.resource = xmppuv__strdup_opt(o->resource, &rc);
  c->opts.lang = xmppuv__strdup_opt(o->lang, &rc);
  c->opts.host = xmppuv__strdup_opt(o->host, &rc);
  c->opts.ca_file = xmppuv__strdup_opt(o->ca_file, &rc);
  c->opts.ca_path = xmppuv__strdup_opt(o->ca_path, &rc);
  c->opts.pin = xmppuv__strdup_opt(o->pin, &rc);
  c->opts.dns_servers = xmppuv__strdup_opt(o->dns_servers, &rc);
  c->opts.sasl_mechanisms = xmppuv__strdup_opt(o->sasl_mechanisms, &rc);
  c->password = xmppuv__strdup_opt(o->password, &rc);
  return rc;
}

static int bad_option(xmppuv_client_t *c, const char *what) {
  xmppuv__logf(&c->log, XMPPUV_LOG_ERROR, "client", "bad option: %s", what);
  return XMPPUV_EINVAL;
}

static int validate(xmppuv_client_t *c) {
  const xmppuv_client_options_t *o = &c->opts;
  if (o->jid == NULL) return bad_option(c, "jid is required");
  if (o->tls > XMPPUV_TLS_DISABLED_INSECURE) return bad_option(c, "tls mode");
  if (o->tls_insecure && o->pin != NULL) return bad_option(c, "pin together with tls_insecure");
  if (o->port != 0 && o->host == NULL) return bad_option(c, "port without host");
  if (o->reconnect && o->reconnect_delay_ms == 0) return bad_option(c, "reconnect_delay_ms is 0");
  if (o->reconnect_max_delay_ms < o->reconnect_delay_ms)
    return bad_option(c, "reconnect_max_delay_ms below reconnect_delay_ms");
  if (o->sm && o->sm_queue_max == 0) return bad_option(c, "sm_queue_max is 0");
  if (o->keepalive_ms > 0 && o->keepalive_timeout_ms == 0)
    return bad_option(c, "keepalive_timeout_ms is 0");
  return 0;
}

int xmppuv_client_new(uv_loop_t *loop, const xmppuv_client_options_t *opts,
                      const xmppuv_client_callbacks_t *callbacks, void *user_data,
                      xmppuv_client_t **out) {
  if (out != NULL) *out = NULL;
  if (loop == NULL || opts == NULL || out == NULL) return XMPPUV_EINVAL;
  xmppuv_client_t *c = xmppuv__calloc(1, sizeof *c);
  if (c == NULL) return XMPPUV_ENOMEM;
  c->loop = loop;
  c->log.cb = opts->log_cb;
  c->log.user_data = opts->log_user_data;
  c->log.level = opts->log_level;
  if (callbacks != NULL) c->cb = *callbacks;
  c->user_data = user_data;
  c->status = XMPPUV_STATUS_OFFLINE;
  c->negotiation_deadline = c->close_deadline = c->drain_deadline = XMPPUV__NO_DEADLINE;
  c->reconnect_at = c->ping_at = c->armed_at = XMPPUV__NO_DEADLINE;
  c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c;
  snprintf(c->id_prefix, sizeof c->id_prefix, "%08x-",
           (unsigned)(xmppuv__random_next(&c->rng) & 0xffffffffu));
  xmppuv__iq_init(&c->iqs, iq_done, c);
  xmppuv__handlers_init(&c->handlers, 1);
  xmppuv__handlers_init(&c->iq_handlers, (uint64_t)1 << 62);

  int rc = copy_options(c, opts);
  if (rc == 0) rc = validate(c);
  if (rc == 0) {
    rc = xmppuv_jid_parse(c->opts.jid, &c->jid);
    if (rc != 0) xmppuv__logf(&c->log, XMPPUV_LOG_ERROR, "client", "bad jid: %s",
                              xmppuv_strerror(rc));
  }
  if (rc == 0 && c->opts.tls != XMPPUV_TLS_DISABLED_INSECURE) {
    xmppuv__tls_config_t tc;
    memset(&tc, 0, sizeof tc);
    tc.ca_file = c->opts.ca_file;
    tc.ca_path = c->opts.ca_path;
    tc.pin = c->opts.pin;
    tc.insecure = c->opts.tls_insecure;
    tc.log = &c->log;
    /* Shared with the other clients of this thread that trust the same. */
    rc = xmppuv__tls_ctx_shared(&tc, &c->tls_ctx);
  }
  if (rc == 0) {
    const char *resource = c->opts.resource ? c->opts.resource : xmppuv_jid_resource(c->jid);
    xmppuv__session_config_t sc;
    memset(&sc, 0, sizeof sc);
    sc.domain = xmppuv_jid_domain(c->jid);
    sc.bare_jid = xmppuv_jid_bare_string(c->jid);
    sc.username = xmppuv_jid_local(c->jid);
    sc.resource = resource;
    sc.lang = c->opts.lang;
    sc.tls_required = c->opts.tls != XMPPUV_TLS_DISABLED_INSECURE;
    sc.allow_anonymous = c->opts.allow_anonymous;
    sc.allow_plain_insecure = c->opts.tls == XMPPUV_TLS_DISABLED_INSECURE;
    sc.mechanisms = c->opts.sasl_mechanisms;
    sc.limits.max_stanza_bytes = c->opts.max_stanza_bytes;
    sc.limits.max_depth = c->opts.max_depth;
    sc.limits.max_attrs = c->opts.max_attrs;
    sc.log = &c->log;
    rc = xmppuv__session_new(&sc, &session_events, c, &c->session);
  }
  if (rc == 0) {
    xmppuv__sm_config_t smc;
    xmppuv__sm_config_defaults(&smc);
    smc.enabled = c->opts.sm;
    smc.resume = c->opts.sm_resume;
    smc.max_resume_s = c->opts.sm_max_resume_s;
    smc.ack_debounce_ms = c->opts.sm_ack_debounce_ms;
    smc.ack_threshold = c->opts.sm_ack_threshold;
    smc.idle_request_ms = c->opts.sm_idle_request_ms;
    smc.ack_timeout_ms = c->opts.sm_ack_timeout_ms;
    smc.wait_timeout_ms = c->opts.sm_wait_timeout_ms;
    smc.queue_max = c->opts.sm_queue_max ? c->opts.sm_queue_max : 4096;
    smc.resend_on_failed = c->opts.sm_resend_on_failed;
    smc.drain_timeout_ms = drain_wait_ms(c);
    smc.max_send_bytes = c->opts.max_send_bytes;
    smc.log = &c->log;
    rc = xmppuv__sm_new(&smc, &sm_events, c, &c->sm);
  }
  if (rc == 0) rc = uv_timer_init(loop, &c->timer);
  if (rc != 0) {
    /* Nothing was started: free directly (the timer was not initialized
     * unless the last step succeeded). */
    c->closing = 1;
    c->close_cb = NULL;
    c->timer.data = c;
    xmppuv__sm_free(c->sm);
    c->sm = NULL;
    xmppuv__session_free(c->session);
    c->session = NULL;
    xmppuv__tls_ctx_unref(c->tls_ctx);
    c->tls_ctx = NULL;
    xmppuv__handlers_free(&c->handlers);
    xmppuv__handlers_free(&c->iq_handlers);
    xmppuv_jid_free(c->jid);
    if (c->password != NULL) {
      xmppuv__secure_zero(c->password, strlen(c->password));
      xmppuv__free(c->password);
    }
    const char **strings[] = {&c->opts.jid, &c->opts.resource, &c->opts.lang, &c->opts.host,
                              &c->opts.ca_file, &c->opts.ca_path, &c->opts.pin,
                              &c->opts.dns_servers, &c->opts.sasl_mechanisms};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
      xmppuv__free((void *)(uintptr_t)*strings[i]);
    xmppuv__free(c);
    return rc;
  }
  c->timer.data = c;
  *out = c;
  return 0;
}

int xmppuv_client_start(xmppuv_client_t *c) {
  if (c == NULL) return XMPPUV_EINVAL;
  if (c->closing) return XMPPUV_ECLOSED;
  if (c->started || c->conn != NULL) return XMPPUV_ESTATE;
  c->started = 1;
  c->gave_up = 0;
  c->gave_up_code = 0;
  c->stopping = 0;
  c->reconnect_attempt = 0;
  c->redirects = 0;
  connect_now(c);
  rearm(c);
  return 0;
}

int xmppuv_client_stop(xmppuv_client_t *c) {
  if (c == NULL) return XMPPUV_EINVAL;
  if (c->closing) return XMPPUV_ECLOSED;
  if (!c->started && c->conn == NULL) {
    /* Already offline; still settle what was held for a later start. */
    fail_everything(c, XMPPUV_ECANCELED);
    return 0;
  }
  c->started = 0;
  c->reconnect_at = XMPPUV__NO_DEADLINE;
  if (c->conn == NULL) {
    fail_everything(c, XMPPUV_ECANCELED);
    set_status(c, XMPPUV_STATUS_OFFLINE);
    rearm(c);
    return 0;
  }
  if (c->stopping) return 0;
  c->stopping = 1;
  if (c->status == XMPPUV_STATUS_DISCONNECTING) {
    /* Stopped from inside the connection's own end (its error or status
     * event): there is no stream left to close; offline follows. */
  } else if (c->online) {
    /* XEP-0198 §4: tell the server what we handled; optionally wait for
     * its last acks so a clean exit reports acks, not failures. */
    if (xmppuv__sm_stop(c->sm, now_of(c)) == 1)
      c->drain_deadline = after(c, drain_wait_ms(c));
    else
      begin_close_stream(c);
  } else if (xmppuv__session_is_open(c->session)) {
    begin_close_stream(c);
  } else {
    drop_connection(c, 0);
  }
  rearm(c);
  return 0;
}

int xmppuv_client_reconnect_now(xmppuv_client_t *c) {
  if (c == NULL) return XMPPUV_EINVAL;
  if (c->closing) return XMPPUV_ECLOSED;
  if (!c->started || c->stopping || c->gave_up) return XMPPUV_ESTATE;
  xmppuv__logf(&c->log, XMPPUV_LOG_INFO, "client", "reconnecting now, as the app asked");
  c->reconnect_attempt = 0;
  if (c->conn != NULL) {
    /* Not graceful: </stream:stream> would end the server's session. The
     * next attempt goes as soon as the connection is gone. */
    c->reconnect_at_once = 1;
    drop_connection(c, 0);
  } else {
    /* Waiting between attempts: go now. */
    c->reconnect_at = XMPPUV__NO_DEADLINE;
    connect_now(c);
  }
  rearm(c);
  return 0;
}

void xmppuv_client_close(xmppuv_client_t *c,
                         void (*close_cb)(xmppuv_client_t *c, void *user_data)) {
  if (c == NULL || c->closing) return;
  c->close_cb = close_cb;
  /* Settle first, while the app's callbacks may still run. */
  c->started = 0;
  fail_everything(c, XMPPUV_ECANCELED);
  c->closing = 1;
  uv_timer_stop(&c->timer);
  if (c->conn != NULL) {
    xmppuv__sm_disconnected(c->sm, now_of(c));
    xmppuv__conn_close(c->conn, 0);
  }
  finish_close(c);
}

xmppuv_status_t xmppuv_client_status(const xmppuv_client_t *c) { return c->status; }

const xmppuv_jid_t *xmppuv_client_jid(const xmppuv_client_t *c) { return c->bound; }

uv_loop_t *xmppuv_client_loop(const xmppuv_client_t *c) { return c->loop; }

void *xmppuv_client_user_data(const xmppuv_client_t *c) { return c->user_data; }

static int send_stanza(xmppuv_client_t *c, xmppuv_stanza_t *s, xmppuv__sm_done_cb cb,
                       void *cb_data) {
  if (c->closing) return XMPPUV_ECLOSED;
  if (!c->started || c->stopping) return XMPPUV_ESTATE;
  /* Checked before the id is set: a refused stanza is left as it was. */
  const char *name = xmppuv_stanza_name(s), *ns = xmppuv_stanza_ns(s);
  if (name == NULL || (ns != NULL && strcmp(ns, XMPPUV_NS_CLIENT) != 0) ||
      (strcmp(name, "message") != 0 && strcmp(name, "presence") != 0 &&
       strcmp(name, "iq") != 0))
    return XMPPUV_EINVAL;
  int rc = ensure_id(c, s);
  if (rc != 0) return rc;
  rc = xmppuv__sm_send(c->sm, s, now_of(c), cb, cb_data);
  rearm(c);
  return rc;
}

int xmppuv_client_send(xmppuv_client_t *c, xmppuv_stanza_t *stanza) {
  if (c == NULL || stanza == NULL) return XMPPUV_EINVAL;
  return send_stanza(c, stanza, NULL, NULL);
}

int xmppuv_client_send_cb(xmppuv_client_t *c, xmppuv_stanza_t *stanza, xmppuv_send_cb cb,
                          void *user_data) {
  if (c == NULL || stanza == NULL || cb == NULL) return XMPPUV_EINVAL;
  /* The engine carries the app's callback back to sm_done unchanged. */
  return send_stanza(c, stanza, (xmppuv__sm_done_cb)(void (*)(void))cb, user_data);
}

int xmppuv_client_handler_add(xmppuv_client_t *c, const char *name, const char *ns,
                              const char *type, xmppuv_handler_cb cb, void *user_data,
                              uint64_t *id) {
  if (c == NULL || cb == NULL) return XMPPUV_EINVAL;
  return xmppuv__handlers_add(&c->handlers, name, ns, type, 0, cb, user_data, id);
}

int xmppuv_client_handler_remove(xmppuv_client_t *c, uint64_t id) {
  if (c == NULL) return XMPPUV_EINVAL;
  if (xmppuv__handlers_remove(&c->handlers, id) == 0) return 0;
  return xmppuv__handlers_remove(&c->iq_handlers, id);
}

int xmppuv_client_iq_handler_add(xmppuv_client_t *c, const char *type, const char *name,
                                 const char *ns, xmppuv_handler_cb cb, void *user_data,
                                 uint64_t *id) {
  if (c == NULL || cb == NULL) return XMPPUV_EINVAL;
  if (type != NULL && strcmp(type, "get") != 0 && strcmp(type, "set") != 0)
    return XMPPUV_EINVAL;
  return xmppuv__handlers_add(&c->iq_handlers, name, ns, type, 1, cb, user_data, id);
}

int xmppuv_client_iq(xmppuv_client_t *c, xmppuv_stanza_t *iq, unsigned timeout_ms,
                     xmppuv_iq_cb cb, void *user_data, uint64_t *id) {
  if (c == NULL || iq == NULL || cb == NULL) return XMPPUV_EINVAL;
  const char *name = xmppuv_stanza_name(iq);
  const char *type = xmppuv_stanza_attr(iq, "type");
  if (name == NULL || strcmp(name, "iq") != 0 || type == NULL ||
      (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
    return XMPPUV_EINVAL;
  if (c->closing) return XMPPUV_ECLOSED;
  if (!c->started || c->stopping) return XMPPUV_ESTATE;
  int rc = ensure_id(c, iq);
  if (rc != 0) return rc;
  unsigned t = timeout_ms ? timeout_ms : c->opts.iq_timeout_ms;
  uint64_t handle;
  rc = xmppuv__iq_track(&c->iqs, xmppuv_stanza_attr(iq, "id"), xmppuv_stanza_attr(iq, "to"),
                        t ? mono(c) + t : XMPPUV__NO_DEADLINE, cb, user_data, &handle);
  if (rc != 0) return rc;
  rc = send_stanza(c, iq, NULL, NULL);
  if (rc != 0) {
    xmppuv__iq_untrack(&c->iqs, handle);
    return rc;
  }
  if (id != NULL) *id = handle;
  rearm(c);
  return 0;
}

int xmppuv_client_iq_cancel(xmppuv_client_t *c, uint64_t id) {
  if (c == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__iq_cancel(&c->iqs, id);
  if (rc == 0) rearm(c);
  return rc;
}

int xmppuv_client_sm_enabled(const xmppuv_client_t *c) {
  return c != NULL && xmppuv__sm_active(c->sm);
}

size_t xmppuv_client_sm_queued(const xmppuv_client_t *c) {
  return c != NULL ? xmppuv__sm_queued(c->sm) : 0;
}

int xmppuv_client_sm_export(const xmppuv_client_t *c, char **data, size_t *len) {
  if (c == NULL || data == NULL || len == NULL) return XMPPUV_EINVAL;
  *data = NULL;
  *len = 0;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  int rc = xmppuv__sm_export(c->sm, now_of(c), &b);
  if (rc != 0) {
    xmppuv__buf_free(&b);
    return rc;
  }
  *data = xmppuv__buf_detach(&b, len);
  return *data != NULL ? 0 : XMPPUV_ENOMEM;
}

/* The account check of a saved blob, before anything is loaded: *out is
 * the saved full JID parsed (NULL for a blob saved before the client was
 * ever online, which holds stanzas but no session). */
static int saved_jid(xmppuv_client_t *c, const void *data, size_t len, xmppuv_jid_t **out) {
  *out = NULL;
  xmppuv__smp_header_t hdr;
  xmppuv__smp_reader_t rd;
  if (xmppuv__smp_decode(data, len, &hdr, &rd) != 0) {
    xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "sm", "saved state refused: corrupt or unknown format");
    return XMPPUV_ESTATEBLOB;
  }
  if (hdr.full_jid_len == 0) {
    /* The SM-ID comes after binding, so export never writes a session
     * without its JID: one that has no JID cannot be shown to be ours. */
    if (!hdr.resumable) return 0;
    xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "sm", "saved state refused: a session without a JID");
    return XMPPUV_ESTATEBLOB;
  }
  xmppuv_jid_t *j = NULL;
  int rc = XMPPUV_EINVAL;
  if (memchr(hdr.full_jid, '\0', hdr.full_jid_len) == NULL) {
    char *full = xmppuv__strndup(hdr.full_jid, hdr.full_jid_len);
    if (full == NULL) return XMPPUV_ENOMEM;
    rc = xmppuv_jid_parse(full, &j);
    xmppuv__free(full);
    if (rc == XMPPUV_ENOMEM) return rc;
  }
  if (rc != 0 || !xmppuv_jid_bare_equal(j, c->jid)) {
    xmppuv_jid_free(j);
    xmppuv__logf(&c->log, XMPPUV_LOG_WARN, "sm", "saved state refused: %s",
                 rc != 0 ? "its JID is invalid" : "it belongs to another account");
    return XMPPUV_ESTATEBLOB;
  }
  *out = j;
  return 0;
}

int xmppuv_client_sm_import(xmppuv_client_t *c, const void *data, size_t len) {
  if (c == NULL || data == NULL) return XMPPUV_EINVAL;
  if (c->started || c->conn != NULL) return XMPPUV_ESTATE;
  /* Everything is checked before the engine takes the blob: a refused
   * blob leaves the client as it was (and free for another import). */
  xmppuv_jid_t *j;
  int rc = saved_jid(c, data, len, &j);
  if (rc == 0) rc = xmppuv__sm_import(c->sm, data, len, NULL);
  if (rc != 0) {
    xmppuv_jid_free(j);
    return rc;
  }
  if (j != NULL) {
    xmppuv_jid_free(c->bound);
    c->bound = j;
  }
  return 0;
}
