/* The client engine (see engine.h): session + SM + iq + handlers, and all
 * client policy, with no I/O and no clock. Sections: options, the event
 * queue and its delivery, stanza ids, the connection's life (connect, drop,
 * close, reconnect), the session's and SM's events, timers, the app's calls. */
#include "engine/engine.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/handlers.h"
#include "engine/iq.h"
#include "engine/options.h"
#include "sasl/ht.h"
#include "session/stream_error.h"
#include "sm/sm.h"
#include "util/alloc.h"
#include "util/backoff.h"
#include "util/hostport.h"
#include "util/defaults.h"
#include "util/str.h"
#include "util/utf8.h"
#include "util/uuid.h"
#include "util/ns.h"
#include "xml/serialize.h"
#include "xml/stanza.h"

#define MAX_REDIRECTS 5
#define MAX_ACTIONS 4

/* ---- types ---------------------------------------------------------------- */

typedef enum {
  EV_STATUS,
  EV_ONLINE,
  EV_RESUMED,
  EV_ERROR,
  EV_DONE,         /* a stanza's outcome: ack, fail, send_cb */
  EV_RECONNECTING,
  EV_STANZA,       /* an inbound stanza for the handlers */
  EV_IQ,           /* an iq request's outcome */
  EV_TOKEN         /* FAST: a new token (text: the token), or none */
} event_kind_t;

typedef struct event {
  event_kind_t kind;
  int code;                 /* STATUS: the status; ERROR/DONE/IQ: the code */
  int fatal;
  xmppuv_stanza_t *stanza;  /* DONE, STANZA, IQ (reply), ERROR (element); a ref */
  xmppuv_send_done_cb send_cb;   /* DONE */
  xmppuv_iq_cb iq_cb;       /* IQ */
  void *cb_data;
  char *condition;          /* ERROR (copies) */
  char *text;
  const char *static_text;  /* ERROR: when text could not be copied */
  char *token_mech;         /* TOKEN (copies; text is the token, wiped) */
  char *token_expiry;
  unsigned attempt;         /* RECONNECTING */
  uint64_t delay_ms;
} event_t;

typedef struct listener {
  struct listener *next;
  uint64_t id;
  xmppuv_client_callbacks_t cb;
  void *user_data;
  int removed;
} listener_t;

/* What belongs to one connection: reset in one place (link_reset). */
typedef struct link {
  uint64_t id;     /* 0: no connection */
  int up;          /* the transport said connected */
  int closing;     /* CLOSE was asked for: only `closed` is awaited */
  int online;      /* stanzas flow on it (SM enabled or refused) */
  int dropping;    /* being dropped: nothing more of it is handled */
  int quiet;       /* stopped while connecting: offline already, its close unseen */
  int sm_offered;
  int csi_offered; /* the authenticated stream's features had <csi/> */
  /* While the answer to a <resume/> sent inside the login is handled: what
   * the same <success/> bound (XEP-0386), the fallback if it says
   * <failed/> (borrowed from the session's event for that call). */
  int in_login;
  const char *login_bound_jid;
  const xmppuv_stanza_t *login_inline_sm;
  uint64_t negotiation_deadline;
  uint64_t close_deadline;
  uint64_t drain_deadline;
  uint64_t ping_at;
  uint64_t ping_handle; /* outstanding keepalive ping, 0 if none */
  uint64_t last_inbound;
} link_t;

struct xmppuv__engine {
  xmppuv_client_t *owner;
  xmppuv_client_options_t opts; /* strings owned */
  xmppuv_client_callbacks_t cb;
  void *user_data;
  xmppuv__log_t log;
  xmppuv_jid_t *jid;   /* as configured */
  xmppuv_jid_t *bound; /* full JID of the current session */

  xmppuv__session_t *session;
  xmppuv__sm_t *sm;
  xmppuv__iq_tracker_t iqs;
  uint64_t iq_fence; /* requests below this handle went out on a stream now
                        gone (see note_stream_lost) */
  xmppuv__handlers_t handlers;
  xmppuv__handlers_t iq_handlers;
  listener_t *listeners;
  uint64_t next_listener_id;
  xmppuv__scram_keys_t *keys[3]; /* SCRAM keys cache, by hash */
  int csi_seen; /* the last authenticated features had <csi/> */
  /* FAST (XEP-0484): the token the next login uses (wiped when freed),
   * from the options, the app's callback or the last login. */
  char *fast_token;
  char *fast_mech;
  /* What an earlier login of this client used (downgrade protection). */
  int was_sasl2, was_cb, was_strong;
  /* The features the last SASL2 login started from: the next connection's
   * login goes out with its stream header, in one write (one-flight). */
  char *quick_features;
  size_t quick_len;
  /* xmppuv_client_logout(): after the stop, one more connection logs in
   * with the FAST token only to invalidate it (invalidating). */
  int logout, invalidating;

  xmppuv__buf_t out;
  xmppuv__action_t actions[MAX_ACTIONS];
  size_t nactions;
  xmppuv__buf_t action_data; /* STARTTLS rest, DERIVE salt */
  uint64_t action_link;      /* the link the pending credential request is for */

  event_t *events; /* a ring */
  size_t ev_cap, ev_head, ev_len;
  int delivering;
  int enomem_events; /* events lost for want of memory: logged */

  xmppuv_status_t status;
  int started;  /* the app wants to be connected */
  int stopping; /* graceful stop in progress */
  int closing;  /* close() called */
  int gave_up;  /* a fatal error: no reconnection until start() */
  int gave_up_code;
  int reconnect_at_once;
  /* Client State Indication (XEP-0352): what the app wants, and what the
   * server was told for the current session (CSI_UNKNOWN after an import:
   * another process may have told it anything). */
  int inactive;
  int server_inactive;
  uint64_t reconnect_at;
  unsigned reconnect_attempt;
  char *redirect_host; /* see-other-host */
  char *redirect_url;  /* <close see-other-uri/> (RFC 7395) */
  uint16_t redirect_port;
  unsigned redirects;
  uint64_t next_link;
  link_t link;

  uint64_t rng;
  uint64_t id_counter;
  char id_prefix[12];
  xmppuv__time_t now; /* the time of the call being handled */
};

#define LOG(e, lvl, area, ...) xmppuv__logf(&(e)->log, (lvl), (area), __VA_ARGS__)
#define CSI_UNKNOWN (-1)

static uint64_t after(const xmppuv__engine_t *e, unsigned ms) {
  return ms == 0 ? XMPPUV__NO_DEADLINE : e->now.mono_ms + ms;
}

/* ---- options ---------------------------------------------------------------- */

static void free_options(xmppuv_client_options_t *o) {
  const char **strings[] = {&o->jid, &o->resource, &o->lang, &o->host, &o->ca_file,
                            &o->ca_path, &o->pin, &o->dns_servers, &o->sasl_mechanisms,
                            &o->client_cert_file, &o->client_key_file, &o->user_agent_id,
                            &o->software, &o->fast_mechanism, &o->url};
  xmppuv__free_secret((char *)(uintptr_t)o->fast_token);
  o->fast_token = NULL;
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
    xmppuv__free((void *)(uintptr_t)*strings[i]);
    *strings[i] = NULL;
  }
}

static int copy_options(xmppuv__engine_t *e, const xmppuv_client_options_t *o) {
  e->opts = *o;
  /* The engine never holds the password (the driver does). */
  e->opts.password = NULL;
  int rc = 0;
  e->opts.jid = xmppuv__strdup_opt(o->jid, &rc);
  e->opts.resource = xmppuv__strdup_opt(o->resource, &rc);
  e->opts.lang = xmppuv__strdup_opt(o->lang, &rc);
  e->opts.host = xmppuv__strdup_opt(o->host, &rc);
  e->opts.ca_file = xmppuv__strdup_opt(o->ca_file, &rc);
  e->opts.ca_path = xmppuv__strdup_opt(o->ca_path, &rc);
  e->opts.pin = xmppuv__strdup_opt(o->pin, &rc);
  e->opts.dns_servers = xmppuv__strdup_opt(o->dns_servers, &rc);
  e->opts.sasl_mechanisms = xmppuv__strdup_opt(o->sasl_mechanisms, &rc);
  e->opts.client_cert_file = xmppuv__strdup_opt(o->client_cert_file, &rc);
  e->opts.client_key_file = xmppuv__strdup_opt(o->client_key_file, &rc);
  e->opts.software = xmppuv__strdup_opt(o->software, &rc);
  e->opts.fast_token = xmppuv__strdup_opt(o->fast_token, &rc);
  e->opts.fast_mechanism = xmppuv__strdup_opt(o->fast_mechanism, &rc);
  e->opts.url = xmppuv__strdup_opt(o->url, &rc);
  if (o->user_agent_id != NULL) {
    e->opts.user_agent_id = xmppuv__strdup_opt(o->user_agent_id, &rc);
  } else {
    /* One of our own, for the app to read back and keep. */
    char id[XMPPUV__UUID_LEN + 1];
    e->opts.user_agent_id = NULL;
    if (rc == 0 && xmppuv__uuid_v4(id) == 0) e->opts.user_agent_id = xmppuv__strdup_opt(id, &rc);
  }
  return rc;
}

static int bad_option(xmppuv__engine_t *e, const char *what) {
  LOG(e, XMPPUV_LOG_ERROR, "client", "bad option: %s", what);
  return XMPPUV_EINVAL;
}

static int printable_ascii(const char *s, size_t max) {
  size_t n = 0;
  for (; s[n] != '\0'; n++)
    if (s[n] <= ' ' || s[n] > '~' || n >= max) return 0;
  return n > 0;
}

static int validate(xmppuv__engine_t *e, int have_password) {
  const xmppuv_client_options_t *o = &e->opts;
  if (o->jid == NULL) return bad_option(e, "jid is required");
  if (!have_password && !o->allow_anonymous)
    return bad_option(e, "no password, password_cb or client certificate (and allow_anonymous "
                         "is off)");
  if ((o->client_cert_file == NULL) != (o->client_key_file == NULL))
    return bad_option(e, "client_cert_file and client_key_file go together");
  if (o->client_cert_file != NULL && o->tls == XMPPUV_TLS_DISABLED_INSECURE)
    return bad_option(e, "a client certificate with tls = XMPPUV_TLS_DISABLED_INSECURE");
  if (o->host != NULL && o->host[0] == '\0') return bad_option(e, "host is empty (NULL: find it)");
  if (o->user_agent_id != NULL && !printable_ascii(o->user_agent_id, 128))
    return bad_option(e, "user_agent_id is not a UUID (1 to 128 printable ASCII characters; "
                         "NULL: one is made)");
  if (o->software != NULL &&
      (o->software[0] == '\0' || xmppuv__xml_text_check(o->software, strlen(o->software)) != 0))
    return bad_option(e, "software is empty or not UTF-8 text (NULL: none)");
  if (o->resource != NULL && o->resource[0] == '\0')
    return bad_option(e, "resource is empty (NULL: the JID's, or the server's choice)");
  if ((o->fast_token == NULL) != (o->fast_mechanism == NULL))
    return bad_option(e, "fast_token and fast_mechanism go together");
  xmppuv__ht_t ht;
  if (o->fast_mechanism != NULL && xmppuv__ht_parse(o->fast_mechanism, &ht) != 0)
    return bad_option(e, "fast_mechanism is not an HT mechanism this library knows "
                         "(HT-SHA-256-NONE, -UNIQ, -ENDP, -EXPR; HT-SHA-512-...)");
  if (o->fast_token != NULL && !printable_ascii(o->fast_token, 4096))
    return bad_option(e, "fast_token is empty or not printable ASCII");
  if (o->tls > XMPPUV_TLS_DISABLED_INSECURE) return bad_option(e, "tls mode");
  if (o->tls_insecure && o->pin != NULL) return bad_option(e, "pin together with tls_insecure");
  if (o->tls_insecure && (o->ca_file != NULL || o->ca_path != NULL))
    return bad_option(e, "ca_file or ca_path together with tls_insecure (nothing is checked)");
  if (o->tls == XMPPUV_TLS_DISABLED_INSECURE &&
      (o->ca_file != NULL || o->ca_path != NULL || o->pin != NULL || o->tls_insecure))
    return bad_option(e, "TLS settings with tls = XMPPUV_TLS_DISABLED_INSECURE");
  if (o->port != 0 && o->host == NULL) return bad_option(e, "port without host");
  if (o->url != NULL) {
    int ws = strncmp(o->url, "ws://", 5) == 0, wss = strncmp(o->url, "wss://", 6) == 0;
    if (!ws && !wss) return bad_option(e, "url is not a ws:// or wss:// URL");
    if (o->host != NULL) return bad_option(e, "url together with host (the URL says where)");
    if (ws && o->tls != XMPPUV_TLS_DISABLED_INSECURE)
      return bad_option(e, "a ws:// url without tls = XMPPUV_TLS_DISABLED_INSECURE (wss:// is "
                           "the secure one)");
    if (wss && o->tls == XMPPUV_TLS_DISABLED_INSECURE)
      return bad_option(e, "a wss:// url with tls = XMPPUV_TLS_DISABLED_INSECURE");
  }
  if (o->discovery > XMPPUV_DISCOVERY_WEBSOCKET_FIRST) return bad_option(e, "discovery mode");
  if (o->discovery != XMPPUV_DISCOVERY_OFF && (o->host != NULL || o->url != NULL))
    return bad_option(e, "discovery together with host or url (nothing to discover)");
  if (o->discovery != XMPPUV_DISCOVERY_OFF && o->tls == XMPPUV_TLS_DISABLED_INSECURE)
    return bad_option(e, "discovery with tls = XMPPUV_TLS_DISABLED_INSECURE (host-meta is "
                         "fetched over HTTPS only)");
  if (o->reconnect && o->reconnect_delay_ms == 0) return bad_option(e, "reconnect_delay_ms is 0");
  if (o->reconnect_max_delay_ms < o->reconnect_delay_ms)
    return bad_option(e, "reconnect_max_delay_ms below reconnect_delay_ms");
  if (o->sm && o->sm_queue_max == 0) return bad_option(e, "sm_queue_max is 0");
  if (o->keepalive_ms > 0 && o->keepalive_timeout_ms == 0)
    return bad_option(e, "keepalive_timeout_ms is 0");
  return 0;
}

/* A graceful stop with unacked stanzas asks for a last <a/> and waits this
 * long for it before </stream:stream>: close_timeout_ms by default (a
 * stanza the server has is then reported acked, not failed), or
 * sm_drain_timeout_ms when that is longer. */
static unsigned drain_wait_ms(const xmppuv__engine_t *e) {
  unsigned close_ms = e->opts.close_timeout_ms, drain_ms = e->opts.sm_drain_timeout_ms;
  return drain_ms > close_ms ? drain_ms : close_ms;
}

/* ---- events ------------------------------------------------------------------------ */

static void event_clear(event_t *ev) {
  xmppuv_stanza_unref(ev->stanza);
  xmppuv__free(ev->condition);
  if (ev->kind == EV_TOKEN)
    xmppuv__free_secret(ev->text);
  else
    xmppuv__free(ev->text);
  xmppuv__free(ev->token_mech);
  xmppuv__free(ev->token_expiry);
}

/* Make room for n more events. */
static int grow_events(xmppuv__engine_t *e, size_t n) {
  if (e->ev_cap - e->ev_len >= n) return 0;
  size_t cap = e->ev_cap ? e->ev_cap : 2; /* an idle client has one or two */
  while (cap - e->ev_len < n) cap *= 2;
  event_t *ring = xmppuv__malloc(cap * sizeof *ring);
  if (ring == NULL) return XMPPUV_ENOMEM;
  for (size_t i = 0; i < e->ev_len; i++) ring[i] = e->events[(e->ev_head + i) % e->ev_cap];
  xmppuv__free(e->events);
  e->events = ring;
  e->ev_cap = cap;
  e->ev_head = 0;
  return 0;
}

/* Outcomes the engine owes: one event per stanza it holds and per request
 * waiting for an answer. Their room in the queue is taken when they are
 * accepted (a send fails with XMPPUV_ENOMEM instead), so an outcome is
 * never lost for want of memory. */
static size_t owed(const xmppuv__engine_t *e) {
  return xmppuv__sm_queued(e->sm) + xmppuv__iq_count(&e->iqs);
}

static int reserve_outcome(xmppuv__engine_t *e) { return grow_events(e, owed(e) + 1); }

/* Queue an event; what it references is taken (a stanza reference). Out of
 * memory loses the event and says so in the log (never an outcome: its room
 * was reserved); the state stays right. */
static void push_event(xmppuv__engine_t *e, event_t *ev) {
  /* Other events never take the room kept for outcomes. */
  int outcome = ev->kind == EV_DONE || ev->kind == EV_IQ;
  if (grow_events(e, owed(e) + 1) != 0 && (!outcome || e->ev_len == e->ev_cap)) {
    if (e->enomem_events++ == 0)
      LOG(e, XMPPUV_LOG_ERROR, "client", "out of memory: an event for the app is lost");
    event_clear(ev);
    return;
  }
  e->events[(e->ev_head + e->ev_len) % e->ev_cap] = *ev;
  e->ev_len++;
}

static void queue_simple(xmppuv__engine_t *e, event_kind_t kind, int code) {
  event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.code = code;
  push_event(e, &ev);
}

static void set_status(xmppuv__engine_t *e, xmppuv_status_t status) {
  if (e->status == status) return;
  e->status = status;
  LOG(e, XMPPUV_LOG_DEBUG, "client", "status %s", xmppuv_status_name(status));
  if (!e->closing) queue_simple(e, EV_STATUS, (int)status);
}

static void emit_error(xmppuv__engine_t *e, const xmppuv_error_t *err) {
  if (e->closing) return;
  /* Without reconnection every error ends in offline: fatal, as the header
   * defines it. The first fatal error is the reason what is still held
   * will fail. */
  int fatal = err->fatal || !e->opts.reconnect;
  if (fatal && e->gave_up_code == 0) e->gave_up_code = err->code;
  event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = EV_ERROR;
  ev.code = err->code;
  ev.fatal = fatal;
  int rc = 0;
  ev.condition = xmppuv__strdup_opt(err->condition, &rc);
  ev.text = xmppuv__strdup_opt(err->text, &rc);
  /* Without memory for the words, the app still gets some. */
  if (ev.text == NULL && err->text != NULL) ev.static_text = "(no memory for this error's text)";
  if (err->element != NULL) {
    ev.stanza = (xmppuv_stanza_t *)(uintptr_t)err->element;
    xmppuv_stanza_ref(ev.stanza);
  }
  push_event(e, &ev);
}

/* An error the library raises itself: text says what happened (the app
 * sees it in err->text, the log gets the same line). */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void emit_errorf(xmppuv__engine_t *e, int code, int fatal, const char *fmt, ...) {
  char text[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  LOG(e, fatal ? XMPPUV_LOG_ERROR : XMPPUV_LOG_WARN, "client", "%s (%s)", text,
      xmppuv_err_name(code));
  xmppuv_error_t err = {code, NULL, text, NULL, fatal};
  emit_error(e, &err);
}

/* The app's callbacks, then every listener's, in the order added. */
#define FOR_EACH_CONSUMER(e, fn, ...)                                         \
  do {                                                                        \
    if ((e)->cb.fn != NULL) (e)->cb.fn((e)->owner, __VA_ARGS__, (e)->user_data); \
    for (listener_t *l_ = (e)->listeners; l_ != NULL; l_ = l_->next)          \
      if (!l_->removed && l_->cb.fn != NULL)                                  \
        l_->cb.fn((e)->owner, __VA_ARGS__, l_->user_data);                   \
  } while (0)
#define FOR_EACH_CONSUMER0(e, fn)                                             \
  do {                                                                        \
    if ((e)->cb.fn != NULL) (e)->cb.fn((e)->owner, (e)->user_data);           \
    for (listener_t *l_ = (e)->listeners; l_ != NULL; l_ = l_->next)          \
      if (!l_->removed && l_->cb.fn != NULL) l_->cb.fn((e)->owner, l_->user_data); \
  } while (0)

static int closing_check(xmppuv_client_t *owner, void *ud);
static void deliver_stanza(xmppuv__engine_t *e, xmppuv_stanza_t *el);

static void sweep_listeners(xmppuv__engine_t *e) {
  listener_t **pp = &e->listeners;
  while (*pp != NULL) {
    listener_t *l = *pp;
    if (l->removed) {
      *pp = l->next;
      xmppuv__free(l);
    } else {
      pp = &l->next;
    }
  }
}

/* The send callback of an iq request: never called, it marks the stanza
 * whose outcome is the request's (see EV_DONE). */
static void iq_request_sent(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  (void)c, (void)s, (void)status, (void)ud;
}

int xmppuv__engine_deliver(xmppuv__engine_t *e, xmppuv__time_t now) {
  if (e->ev_len == 0) return 0;
  e->now = now;
  event_t ev = e->events[e->ev_head];
  e->ev_head = (e->ev_head + 1) % e->ev_cap;
  e->ev_len--;
  e->delivering++;
  switch (ev.kind) {
    case EV_STATUS:
      if (!e->closing) FOR_EACH_CONSUMER(e, status, (xmppuv_status_t)ev.code);
      break;
    case EV_ONLINE:
      if (!e->closing) FOR_EACH_CONSUMER(e, online, e->bound);
      break;
    case EV_RESUMED:
      if (!e->closing) FOR_EACH_CONSUMER0(e, resumed);
      break;
    case EV_ERROR:
      if (!e->closing) {
        xmppuv_error_t err = {ev.code, ev.condition, ev.text ? ev.text : ev.static_text,
                              ev.stanza, ev.fatal};
        FOR_EACH_CONSUMER(e, error, &err);
      }
      break;
    case EV_DONE:
      /* One report per stanza: to the callback it was sent with, else to
       * the ack/fail events (a request's outcome is its iq callback's). */
      if (ev.send_cb == iq_request_sent) break;
      if (ev.send_cb != NULL)
        ev.send_cb(e->owner, ev.stanza, ev.code, ev.cb_data);
      else if (ev.code == 0)
        FOR_EACH_CONSUMER(e, ack, ev.stanza);
      else if (ev.code != XMPPUV_ESMOFF)
        FOR_EACH_CONSUMER(e, fail, ev.stanza, ev.code);
      break;
    case EV_RECONNECTING:
      if (!e->closing) FOR_EACH_CONSUMER(e, reconnecting, ev.attempt, ev.delay_ms);
      break;
    case EV_STANZA:
      if (!e->closing) deliver_stanza(e, ev.stanza);
      break;
    case EV_IQ:
      if (ev.iq_cb != NULL) ev.iq_cb(e->owner, ev.code, ev.stanza, ev.cb_data);
      break;
    case EV_TOKEN:
      if (!e->closing) {
        xmppuv_fast_token_t t = {ev.token_mech, ev.text, ev.token_expiry};
        FOR_EACH_CONSUMER(e, fast_token, ev.text != NULL ? &t : NULL);
      }
      break;
  }
  event_clear(&ev);
  if (--e->delivering == 0) sweep_listeners(e);
  return 1;
}

int xmppuv__engine_has_events(const xmppuv__engine_t *e) { return e->ev_len > 0; }

int xmppuv__engine_wants_input(const xmppuv__engine_t *e) {
  if (e->link.id == 0 || !e->link.up || e->link.dropping) return 1;
  return xmppuv__session_wants_input(e->session);
}

/* ---- actions ---------------------------------------------------------------------------- */

static xmppuv__action_t *push_action(xmppuv__engine_t *e, xmppuv__action_kind_t kind) {
  if (e->nactions == MAX_ACTIONS) {
    /* Cannot happen: at most a connect, a close and a credential request
     * wait at once. Keep the newest. */
    memmove(e->actions, e->actions + 1, (MAX_ACTIONS - 1) * sizeof e->actions[0]);
    e->nactions--;
  }
  xmppuv__action_t *a = &e->actions[e->nactions++];
  memset(a, 0, sizeof *a);
  a->kind = kind;
  a->link = e->link.id;
  return a;
}

int xmppuv__engine_action(xmppuv__engine_t *e, xmppuv__action_t *out) {
  if (e->nactions == 0) return 0;
  *out = e->actions[0];
  memmove(e->actions, e->actions + 1, (e->nactions - 1) * sizeof e->actions[0]);
  e->nactions--;
  return 1;
}

/* ---- stanza ids ---------------------------------------------------------------------------- */

/* Ids are unique per client (a counter) and not guessable across clients (a
 * random prefix), so replies cannot be confused or forged by id alone. */
static int ensure_id(xmppuv__engine_t *e, xmppuv_stanza_t *s) {
  if (xmppuv_stanza_attr(s, "id") != NULL) return 0;
  /* By hand rather than snprintf: this runs for every stanza sent. */
  static const char hex[] = "0123456789abcdef";
  char id[40];
  size_t n = strlen(e->id_prefix);
  memcpy(id, e->id_prefix, n);
  char digits[16];
  size_t d = 0;
  for (uint64_t v = ++e->id_counter; v != 0; v >>= 4) digits[d++] = hex[v & 15];
  while (d > 0) id[n++] = digits[--d];
  return xmppuv__stanza_push_own_attr(s, "id", id, n);
}

/* ---- the connection's life --------------------------------------------------------------- */

static void link_reset(xmppuv__engine_t *e) {
  memset(&e->link, 0, sizeof e->link);
  e->link.negotiation_deadline = e->link.close_deadline = e->link.drain_deadline =
      e->link.ping_at = XMPPUV__NO_DEADLINE;
}

/* Everything still owed to the app ends now. */
static void fail_everything(xmppuv__engine_t *e, int status) {
  xmppuv__iq_fail_all(&e->iqs, status);
  xmppuv__sm_fail_all(e->sm, status);
}

static void schedule_reconnect(xmppuv__engine_t *e) {
  e->reconnect_attempt++;
  uint32_t r = (uint32_t)xmppuv__random_next(&e->rng);
  uint64_t delay = xmppuv__backoff_delay(e->reconnect_attempt, e->opts.reconnect_delay_ms,
                                         e->opts.reconnect_max_delay_ms, r);
  /* see-other-host, or the app said the network changed: go at once. */
  if (e->redirect_host != NULL || e->redirect_url != NULL || e->reconnect_at_once) delay = 0;
  e->reconnect_at_once = 0;
  e->reconnect_at = e->now.mono_ms + delay;
  LOG(e, XMPPUV_LOG_INFO, "client", "reconnecting in %" PRIu64 " ms (attempt %u)", delay,
      e->reconnect_attempt);
  event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = EV_RECONNECTING;
  ev.attempt = e->reconnect_attempt;
  ev.delay_ms = delay;
  push_event(e, &ev);
}

/* A stream is gone (or going). A pending request's stanza is either held
 * in the SM queue (no stream was ready) or was written; with nothing held,
 * every pending request went out on a stream now gone, and if a new session
 * replaces the one it belonged to, no answer can come (start_new_session
 * fails them). With something held the two cannot be told apart, so the
 * fence stays: held requests go out on whichever session comes next, and a
 * ready stream holds nothing when it is lost. */
static void note_stream_lost(xmppuv__engine_t *e) {
  if (xmppuv__sm_queued(e->sm) == xmppuv__sm_unacked(e->sm))
    e->iq_fence = e->iqs.next_handle;
}

/* The client stops trying (a fatal error, or any error without
 * reconnection): nothing it holds can be delivered by it any more, so every
 * stanza and request still pending ends now, with the error as the reason
 * (the app sees that error first, and can export the state there). */
static void give_up(xmppuv__engine_t *e) {
  e->started = 0;
  int reason = e->gave_up_code != 0 ? e->gave_up_code : XMPPUV_ECANCELED;
  fail_everything(e, reason);
  set_status(e, XMPPUV_STATUS_OFFLINE);
}

/* Leave the connection (if any): not graceful unless asked, so the server
 * keeps the SM session for resumption. */
static void drop_connection(xmppuv__engine_t *e, int graceful) {
  link_t *l = &e->link;
  if (l->id == 0 || l->closing) return;
  /* The rest of the current read belongs to a stream we gave up: it must
   * reach neither the SM counters nor the app (after a resumption the
   * server resends what we did not count). */
  l->dropping = 1;
  l->closing = 1;
  note_stream_lost(e);
  if (l->online || e->status != XMPPUV_STATUS_DISCONNECTING)
    set_status(e, XMPPUV_STATUS_DISCONNECTING);
  l->online = 0;
  xmppuv__sm_disconnected(e->sm, e->now);
  xmppuv__action_t *a = push_action(e, XMPPUV__ACT_CLOSE);
  a->graceful = graceful;
}

static void connect_now(xmppuv__engine_t *e) {
  e->reconnect_at = XMPPUV__NO_DEADLINE;
  link_reset(e);
  e->link.id = ++e->next_link;
  xmppuv__action_t *a = push_action(e, XMPPUV__ACT_CONNECT);
  a->host = e->opts.host;
  a->port = e->opts.port;
  a->url = e->opts.url;
  if (e->redirect_url != NULL) {
    /* see-other-uri: that WebSocket, this once. */
    xmppuv__buf_clear(&e->action_data);
    if (xmppuv__buf_append_str(&e->action_data, e->redirect_url) == 0) {
      a->url = e->action_data.data;
      a->host = NULL;
      a->port = 0;
    }
    xmppuv__free(e->redirect_url);
    e->redirect_url = NULL;
  } else if (e->redirect_host != NULL) {
    /* see-other-host: that host, this once. */
    xmppuv__buf_clear(&e->action_data);
    if (xmppuv__buf_append_str(&e->action_data, e->redirect_host) == 0) {
      a->host = e->action_data.data;
      a->port = e->redirect_port;
    }
    xmppuv__free(e->redirect_host);
    e->redirect_host = NULL;
  } else if (xmppuv__sm_can_resume(e->sm, e->now)) {
    /* XEP-0198 §5: reconnect to the server's preferred location first. */
    const char *loc = xmppuv__sm_location(e->sm);
    if (loc != NULL && loc[0] != '\0') {
      char host[300];
      uint16_t port;
      xmppuv__split_host_port(loc, host, sizeof host, &port);
      xmppuv__buf_clear(&e->action_data);
      if (xmppuv__buf_append_str(&e->action_data, host) == 0) {
        a->first_host = e->action_data.data;
        a->first_port = port;
      }
    }
  }
  set_status(e, XMPPUV_STATUS_CONNECTING);
}

/* The transport is gone: decide what comes next. */
static void set_token(xmppuv__engine_t *e, const char *token, const char *mech,
                      const char *expiry);

/* XEP-0484 §"Invalidation", for xmppuv_client_logout(): one connection
 * whose login uses the token with invalidate='true' and binds nothing, then
 * offline. */
static void start_invalidation(xmppuv__engine_t *e) {
  e->invalidating = 1;
  e->gave_up = 0;
  LOG(e, XMPPUV_LOG_INFO, "client", "logging out: invalidating the FAST token");
  connect_now(e);
}

static void connection_closed(xmppuv__engine_t *e) {
  note_stream_lost(e);
  xmppuv__sm_disconnected(e->sm, e->now);
  if (e->link.quiet) {
    /* Stopped while connecting: offline since then. Started again
     * meanwhile: connect now. */
    link_reset(e);
    if (e->started && !e->closing) connect_now(e);
    return;
  }
  link_reset(e);
  if (e->closing) return;
  set_status(e, XMPPUV_STATUS_DISCONNECT);
  if (e->stopping || !e->started) {
    e->stopping = 0;
    e->started = 0;
    fail_everything(e, XMPPUV_ECANCELED);
    if (e->logout && e->fast_token != NULL && !e->invalidating && e->opts.sasl2) {
      start_invalidation(e);
      return;
    }
    if (e->logout) {
      /* Done (or it could not be done there): gone here either way. */
      set_token(e, NULL, NULL, NULL);
      e->logout = e->invalidating = 0;
    }
    set_status(e, XMPPUV_STATUS_OFFLINE);
  } else if (e->gave_up || !e->opts.reconnect) {
    give_up(e);
  } else {
    schedule_reconnect(e);
  }
}

static int is_certificate_error(int code) {
  return code == XMPPUV_ECERTNAME || code == XMPPUV_ECERTUNTRUSTED ||
         code == XMPPUV_ECERTEXPIRED || code == XMPPUV_ECERTFUTURE ||
         code == XMPPUV_ECERTPIN || code == XMPPUV_ECERTINVALID;
}

static void go_online(xmppuv__engine_t *e) {
  e->link.online = 1;
  e->reconnect_attempt = 0;
  e->link.negotiation_deadline = XMPPUV__NO_DEADLINE;
  e->link.ping_at = XMPPUV__NO_DEADLINE;
  e->link.last_inbound = e->now.mono_ms;
}

/* Tell the server the state the app wants, if it differs from what the
 * server has for this session and the stream offers CSI. A nonza: written
 * straight to the stream, not through the SM queue (it is not counted, and
 * a resumed session keeps the state it had). */
static void csi_sync(xmppuv__engine_t *e) {
  if (!e->link.online || !e->link.csi_offered || e->link.closing || e->link.dropping ||
      e->stopping || e->server_inactive == e->inactive)
    return;
  static const char active[] = "<active xmlns='" XMPPUV__NS_CSI "'/>";
  static const char inactive[] = "<inactive xmlns='" XMPPUV__NS_CSI "'/>";
  const char *nonza = e->inactive ? inactive : active;
  size_t len = e->inactive ? sizeof inactive - 1 : sizeof active - 1;
  LOG(e, XMPPUV_LOG_TRACE, "wire-out", "%s", nonza);
  int rc = xmppuv__buf_append(&e->out, nonza, len);
  if (rc != 0) {
    emit_errorf(e, rc, 0, "could not queue the client state for the server: %s",
                xmppuv_strerror(rc));
    drop_connection(e, 0);
    return;
  }
  e->server_inactive = e->inactive;
  LOG(e, XMPPUV_LOG_DEBUG, "client", "client state: %s", e->inactive ? "inactive" : "active");
}

static void begin_close_stream(xmppuv__engine_t *e) {
  e->link.drain_deadline = XMPPUV__NO_DEADLINE;
  set_status(e, XMPPUV_STATUS_CLOSING);
  xmppuv__session_close(e->session);
  e->link.close_deadline = after(e, e->opts.close_timeout_ms ? e->opts.close_timeout_ms : 1);
}

/* ---- the session's events ------------------------------------------------------------------ */

/* The one place a new session replaces the old one: the old one was not
 * resumed (it could not be: SM off, past the server's max, forgotten after
 * ESMHIGH; or the server answered <failed/>). Requests written on it were
 * addressed back to a session that is gone: they fail now, not at their
 * timeouts. Then a resource is bound. */
static void start_new_session(xmppuv__engine_t *e) {
  xmppuv__iq_fail_before(&e->iqs, e->iq_fence, XMPPUV_ESMFAILED);
  xmppuv__session_bind(e->session);
}

static int keys_slot(const xmppuv__scram_keys_t *k) {
  switch (xmppuv__scram_keys_mech(k)) {
    case XMPPUV__MECH_SCRAM_SHA_1: return 0;
    case XMPPUV__MECH_SCRAM_SHA_256: return 1;
    default: return 2;
  }
}

static void on_bound(xmppuv__engine_t *e, const char *full_jid);
static void on_bound_inline(xmppuv__engine_t *e, const char *full_jid,
                            const xmppuv_stanza_t *inline_sm);

/* The token (and its mechanism) the next login uses: these copies, owned. */
static void replace_token(xmppuv__engine_t *e, char *token, char *mech) {
  xmppuv__free_secret(e->fast_token);
  xmppuv__free(e->fast_mech);
  e->fast_token = token;
  e->fast_mech = mech;
}

/* FAST (XEP-0484): the token the next login uses is this one (token NULL:
 * none), and the app hears of it. */
static void set_token(xmppuv__engine_t *e, const char *token, const char *mech,
                      const char *expiry) {
  if (token == NULL && e->fast_token == NULL) return;
  int rc = 0;
  char *t = xmppuv__strdup_opt(token, &rc);
  char *m = xmppuv__strdup_opt(mech, &rc);
  event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = EV_TOKEN;
  ev.text = xmppuv__strdup_opt(token, &rc);
  ev.token_mech = xmppuv__strdup_opt(mech, &rc);
  ev.token_expiry = xmppuv__strdup_opt(expiry, &rc);
  if (rc != 0) {
    /* Without memory the token cannot be kept: the next login takes the
     * password (or the token before, which the server still takes). */
    xmppuv__free_secret(t);
    xmppuv__free(m);
    event_clear(&ev);
    LOG(e, XMPPUV_LOG_WARN, "client", "no memory to keep the FAST token the server gave");
    return;
  }
  replace_token(e, t, m);
  push_event(e, &ev);
}

/* After a SASL2 login: its features, for the next connection's one-flight
 * login (forgotten after a login that was not SASL2). */
static void remember_quick(xmppuv__engine_t *e) {
  size_t len = 0;
  const char *text = xmppuv__session_auth_features(e->session, &len);
  if (text != NULL && e->quick_features != NULL && len == e->quick_len &&
      memcmp(text, e->quick_features, len) == 0)
    return;
  xmppuv__free(e->quick_features);
  e->quick_features = text != NULL ? xmppuv__strndup(text, len) : NULL;
  e->quick_len = e->quick_features != NULL ? len : 0;
}

/* The stream header is out on a TLS-protected stream: with features from
 * the last SASL2 login, the login goes out now, in the same write. */
static void quick_start(xmppuv__engine_t *e) {
  if (e->quick_features == NULL || !e->opts.sasl2 || !e->opts.one_flight) return;
  int rc = xmppuv__session_quick_start(e->session, e->quick_features, e->quick_len);
  if (rc != 0 && rc != XMPPUV_ESTATE)
    LOG(e, XMPPUV_LOG_DEBUG, "client", "no one-flight login: %s", xmppuv_strerror(rc));
}

static void on_authenticated(xmppuv__engine_t *e, const xmppuv__session_event_t *ev) {
  link_t *l = &e->link;
  int sm_offered = ev->sm_offered;
  const char *bound_jid = ev->bound_jid;
  const xmppuv_stanza_t *inline_sm = ev->inline_sm;
  l->sm_offered = sm_offered;
  if (e->invalidating) {
    /* The server took the token for the last time: close, nothing bound. */
    LOG(e, XMPPUV_LOG_INFO, "client", "the server invalidated the FAST token");
    set_token(e, NULL, NULL, NULL);
    e->logout = e->invalidating = 0;
    begin_close_stream(e);
    return;
  }
  if (ev->token != NULL) set_token(e, ev->token, ev->token_mech, ev->token_expiry);
  e->was_sasl2 |= ev->sasl2_used;
  remember_quick(e);
  e->was_cb |= ev->cb_used;
  e->was_strong |= ev->strong_used;
  /* A session resumed inline did not wait for the features: CSI is as the
   * server said for this session before. */
  if (ev->features_read) e->csi_seen = ev->csi_offered;
  l->csi_offered = e->csi_seen;
  e->redirects = 0;
  /* The keys of this login serve the next ones (same salt: no PBKDF2). */
  xmppuv__scram_keys_t *keys = NULL;
  if (xmppuv__session_take_keys(e->session, &keys) == 0 && keys != NULL) {
    int slot = keys_slot(keys);
    xmppuv__scram_keys_free(e->keys[slot]);
    e->keys[slot] = keys;
  }
  xmppuv__sm_set_peer_limit(e->sm, xmppuv__session_peer_max_bytes(e->session));
  xmppuv__sm_stream_authenticated(e->sm, e->now);
  if (ev->resume_inline && ev->resume_answer != NULL &&
      xmppuv__sm_resume_inline(e->sm, e->now) == 0) {
    /* XEP-0198 inline resumption: <resumed/> ends in sm_resumed(),
     * <failed/> in sm_resume_failed(), which takes the new session this
     * <success/> bound. */
    l->in_login = 1;
    l->login_bound_jid = bound_jid;
    l->login_inline_sm = inline_sm;
    int rc = xmppuv__sm_inbound(e->sm, ev->resume_answer, e->now);
    l->in_login = 0;
    l->login_bound_jid = NULL;
    l->login_inline_sm = NULL;
    if (rc < 0 && !l->dropping) {
      emit_errorf(e, rc, 0, "could not take in the answer to the resumption: %s",
                  xmppuv_strerror(rc));
      drop_connection(e, 0);
    }
    return;
  }
  if (bound_jid != NULL) {
    /* Bound in the login (XEP-0386): a new session, no bind iq. */
    xmppuv__iq_fail_before(&e->iqs, e->iq_fence, XMPPUV_ESMFAILED);
    on_bound_inline(e, bound_jid, inline_sm);
    return;
  }
  if (sm_offered && xmppuv__sm_can_resume(e->sm, e->now)) {
    int rc = xmppuv__sm_resume(e->sm, e->now);
    if (rc == 0) return;
    /* Could not ask (out of memory): try again on the next connection
     * rather than bind and lose the session. */
    if (!l->dropping) {
      emit_errorf(e, rc, 0, "could not ask to resume the session: %s", xmppuv_strerror(rc));
      drop_connection(e, 0);
    }
    return;
  }
  start_new_session(e);
}

/* The session's full JID from now on: 0, or -1 (not valid: the connection
 * is being dropped). */
static int take_bound_jid(xmppuv__engine_t *e, const char *full_jid) {
  xmppuv_jid_t *j = NULL;
  int prc = xmppuv_jid_parse(full_jid, &j);
  if (prc != 0) {
    /* Out of memory is not the server's fault. */
    emit_errorf(e, prc == XMPPUV_ENOMEM ? prc : XMPPUV_EBIND, 0,
                "the server bound a JID that is not valid: %s", xmppuv_strerror(prc));
    drop_connection(e, 0);
    return -1;
  }
  xmppuv_jid_free(e->bound);
  e->bound = j;
  return 0;
}

static void on_bound(xmppuv__engine_t *e, const char *full_jid) {
  if (take_bound_jid(e, full_jid) != 0) return;
  int rc = xmppuv__sm_enable(e->sm, full_jid, e->link.sm_offered, e->now);
  if (rc != 0 && rc != XMPPUV_ECANCELED) {
    emit_errorf(e, rc, 0, "could not enable Stream Management: %s", xmppuv_strerror(rc));
    drop_connection(e, 0);
  }
}

/* XEP-0386: the login bound full_jid; inline_sm is the answer to the
 * <enable/> sent with it (NULL: none, enable as after a bind iq). */
static void on_bound_inline(xmppuv__engine_t *e, const char *full_jid,
                            const xmppuv_stanza_t *inline_sm) {
  if (inline_sm == NULL) {
    on_bound(e, full_jid);
    return;
  }
  if (take_bound_jid(e, full_jid) != 0) return;
  LOG(e, XMPPUV_LOG_INFO, "session", "bound in the login (Bind2) as %s", full_jid);
  int rc = xmppuv__sm_enable_inline(e->sm, full_jid, e->now);
  if (rc == 0) rc = xmppuv__sm_inbound(e->sm, inline_sm, e->now) < 0 ? XMPPUV_ENOMEM : 0;
  if (rc != 0 && rc != XMPPUV_ECANCELED) {
    emit_errorf(e, rc, 0, "could not enable Stream Management: %s", xmppuv_strerror(rc));
    drop_connection(e, 0);
  }
}

static int is_stanza(const xmppuv_stanza_t *el) {
  const char *ns = xmppuv_stanza_ns(el);
  const char *name = xmppuv_stanza_name(el);
  return ns != NULL && xmppuv__streq(ns, XMPPUV_NS_CLIENT) &&
         (xmppuv__streq(name, "message") || xmppuv__streq(name, "presence") ||
          xmppuv__streq(name, "iq"));
}

static void on_element(xmppuv__engine_t *e, xmppuv_stanza_t *el) {
  /* SM first: it counts the stanza (h) before anyone else sees it. */
  int sm_rc = xmppuv__sm_inbound(e->sm, el, e->now);
  if (sm_rc < 0) {
    /* The engine could not take the element in (out of memory): the
     * stream's state would be wrong from here on. */
    emit_errorf(e, sm_rc, 0, "could not take in an element from the server: %s",
                xmppuv_strerror(sm_rc));
    drop_connection(e, 0);
    return;
  }
  if (sm_rc > 0 || e->link.dropping || !is_stanza(el)) return;
  event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = EV_STANZA;
  ev.stanza = el;
  xmppuv_stanza_ref(el);
  push_event(e, &ev);
}

static void on_failed(xmppuv__engine_t *e, const xmppuv_error_t *err, const char *see_other) {
  /* A stream error that one of our stanzas may have caused: the SM engine
   * keeps count, so a stanza that ends the stream every time fails alone
   * instead of being resent forever (the poison rule, sm.h). */
  if (err->code == XMPPUV_ESTREAM && xmppuv__stream_error_class(err->condition)->stanza_may_cause)
    xmppuv__sm_stream_error(e->sm);
  if (see_other != NULL && see_other[0] != '\0' && !err->fatal) {
    /* RFC 6120 §4.9.3.19: reconnect to the host named, a few times at most. */
    if (++e->redirects > MAX_REDIRECTS) {
      xmppuv_error_t loop_err = {XMPPUV_ESEEOTHERHOST, "see-other-host", see_other,
                                 err->element, 1};
      e->gave_up = 1;
      emit_error(e, &loop_err);
    } else if (err->condition != NULL && strcmp(err->condition, "see-other-uri") == 0) {
      /* RFC 7395 §3.6.1: <close see-other-uri/>, never to a lower security
       * (a ws:// only where ws:// was asked for). */
      int plain_ok = e->opts.tls == XMPPUV_TLS_DISABLED_INSECURE;
      int wss = strncmp(see_other, "wss://", 6) == 0, ws = strncmp(see_other, "ws://", 5) == 0;
      if (!(plain_ok ? ws : wss)) {
        xmppuv_error_t refused = {XMPPUV_ESEEOTHERHOST, "see-other-host", see_other,
                                  err->element, 0};
        LOG(e, XMPPUV_LOG_WARN, "client",
            "see-other-uri to %s refused: not the security this client uses; reconnecting as "
            "before", see_other);
        emit_error(e, &refused);
      } else {
        char *copy = xmppuv__strdup(see_other);
        if (copy == NULL) {
          LOG(e, XMPPUV_LOG_WARN, "client",
              "out of memory for the see-other-uri target: reconnecting as before");
        } else {
          xmppuv__free(e->redirect_url);
          e->redirect_url = copy;
        }
        emit_error(e, err);
      }
    } else {
      char host[300];
      uint16_t port;
      xmppuv__split_host_port(see_other, host, sizeof host, &port);
      char *copy = xmppuv__strdup(host);
      if (copy == NULL) {
        LOG(e, XMPPUV_LOG_WARN, "client",
            "out of memory for the see-other-host target: reconnecting as before");
      } else {
        xmppuv__free(e->redirect_host);
        e->redirect_host = copy;
        e->redirect_port = port;
      }
      emit_error(e, err);
    }
  } else if (err->code == XMPPUV_EWRONGSERVER && !err->fatal && e->opts.host != NULL) {
    /* A host the app named that answers in another protocol: a
     * configuration mistake no retry mends (README, "Errors"). The text
     * names that host and port, not the JID's domain. */
    unsigned port = e->opts.port != 0 ? e->opts.port
                    : e->opts.tls == XMPPUV_TLS_DIRECT ? 5223u : 5222u;
    e->gave_up = 1;
    emit_errorf(e, err->code, 1, "%s port %u: %s", e->opts.host, port,
                err->text != NULL ? err->text : xmppuv_strerror(err->code));
  } else if (err->code == XMPPUV_EWRONGSERVER) {
    /* Found through DNS: retried (another address may be right). */
    if (err->fatal) e->gave_up = 1;
    emit_errorf(e, err->code, err->fatal, "a server of %s: %s", xmppuv_jid_domain(e->jid),
                err->text != NULL ? err->text : xmppuv_strerror(err->code));
  } else {
    if (err->fatal) e->gave_up = 1;
    emit_error(e, err);
  }
  /* Flush the stream error or </stream:stream> we may have written. */
  drop_connection(e, 1);
}

static void on_closed(xmppuv__engine_t *e) {
  if (!e->stopping) {
    /* The server ended the stream: answer in kind and reconnect. */
    LOG(e, XMPPUV_LOG_WARN, "client", "the server closed the stream");
    xmppuv__session_close(e->session);
  }
  set_status(e, XMPPUV_STATUS_CLOSE);
  drop_connection(e, 1);
}

static void on_credentials(xmppuv__engine_t *e, const xmppuv__sasl_need_t *need) {
  if (need->kind == XMPPUV__SASL_NEED_PASSWORD) {
    push_action(e, XMPPUV__ACT_PASSWORD);
    return;
  }
  /* Keys for a salt we have not seen (a first login, or the server changed
   * it): derive them from the password, off the loop. */
  xmppuv__buf_clear(&e->action_data);
  if (xmppuv__buf_append(&e->action_data, need->salt, need->salt_len) != 0) {
    xmppuv__session_no_credentials(e->session, XMPPUV_ENOMEM);
    return;
  }
  xmppuv__action_t *a = push_action(e, XMPPUV__ACT_DERIVE);
  a->mech = need->mech;
  a->salt = (const unsigned char *)e->action_data.data;
  a->salt_len = need->salt_len;
  a->iterations = need->iterations;
}

int xmppuv__engine_step(xmppuv__engine_t *e, xmppuv__time_t now) {
  e->now = now;
  link_t *l = &e->link;
  /* The previous step's events first: the app sees one element's effects
   * before the next element is counted. */
  if (e->ev_len > 0 || l->id == 0 || !l->up || l->dropping) return 0;
  xmppuv__session_event_t ev;
  if (!xmppuv__session_step(e->session, &ev)) {
    /* All input handled and its events delivered: between reads, an idle
     * client keeps no queues; a busy one (a big read, taken a slice at a
     * time) keeps them for the next. */
    if (xmppuv__session_idle(e->session) && e->ev_len == 0 && owed(e) == 0 &&
        e->events != NULL) {
      xmppuv__free(e->events);
      e->events = NULL;
      e->ev_cap = e->ev_head = 0;
    }
    return 0;
  }
  switch (ev.kind) {
    case XMPPUV__SESS_NOTHING:
      break;
    case XMPPUV__SESS_OPEN:
      /* After a resumption the status stays online; stream restarts of one
       * negotiation are not news to the app beyond the first. */
      if (e->status != XMPPUV_STATUS_ONLINE) set_status(e, XMPPUV_STATUS_OPEN);
      break;
    case XMPPUV__SESS_RESTART:
      if (e->status != XMPPUV_STATUS_ONLINE) set_status(e, XMPPUV_STATUS_OPENING);
      break;
    case XMPPUV__SESS_STARTTLS: {
      xmppuv__buf_clear(&e->action_data);
      if (ev.rest_len > 0 && xmppuv__buf_append(&e->action_data, ev.rest, ev.rest_len) != 0) {
        emit_errorf(e, XMPPUV_ENOMEM, 0, "out of memory at STARTTLS");
        drop_connection(e, 0);
        break;
      }
      xmppuv__action_t *a = push_action(e, XMPPUV__ACT_STARTTLS);
      a->data = e->action_data.data;
      a->len = ev.rest_len;
      break;
    }
    case XMPPUV__SESS_CREDENTIALS:
      on_credentials(e, &ev.need);
      break;
    case XMPPUV__SESS_AUTHENTICATED:
      on_authenticated(e, &ev);
      break;
    case XMPPUV__SESS_TOKEN_REJECTED:
      /* Why first, then the app forgets the token; the session goes on
       * with the password. */
      LOG(e, XMPPUV_LOG_WARN, "client", "%s (%s)", ev.error.text, xmppuv_err_name(ev.error.code));
      emit_error(e, &ev.error);
      set_token(e, NULL, NULL, NULL);
      break;
    case XMPPUV__SESS_BOUND:
      on_bound(e, ev.full_jid);
      break;
    case XMPPUV__SESS_ELEMENT:
      l->last_inbound = now.mono_ms;
      on_element(e, ev.el);
      break;
    case XMPPUV__SESS_FAILED:
      if (ev.quick_mismatch) {
        /* Not an error: the next connection logs in the long way. */
        LOG(e, XMPPUV_LOG_INFO, "client", "%s", ev.error.text);
        xmppuv__free(e->quick_features);
        e->quick_features = NULL;
        e->quick_len = 0;
        e->reconnect_at_once = 1;
        drop_connection(e, 0);
        break;
      }
      on_failed(e, &ev.error, ev.see_other);
      break;
    case XMPPUV__SESS_CLOSED:
      on_closed(e);
      break;
  }
  /* A graceful stop waiting for the last acks can go on once they came. */
  if (l->drain_deadline != XMPPUV__NO_DEADLINE && xmppuv__sm_drained(e->sm, now))
    begin_close_stream(e);
  return 1;
}

/* ---- SM events ------------------------------------------------------------------------------ */

/* The wire trace of what the SM engine writes: its nonzas as they are, and
 * stanzas parsed back so the usual redaction applies (a stanza may carry a
 * password, e.g. in-band registration). Only when tracing is on. */
static void trace_sm_write(xmppuv__engine_t *e, const char *data, size_t len) {
  static const char *const nonzas[] = {"<r ", "<a ", "<enable ", "<resume ",
                                       "<stream:error", "</stream:stream"};
  for (size_t i = 0; i < sizeof nonzas / sizeof nonzas[0]; i++) {
    size_t n = strlen(nonzas[i]);
    if (len >= n && memcmp(data, nonzas[i], n) == 0) {
      LOG(e, XMPPUV_LOG_TRACE, "wire-out", "%.*s", (int)len, data);
      return;
    }
  }
  xmppuv_stanza_t *s;
  if (xmppuv_stanza_parse(data, len, &s) == 0) {
    xmppuv__log_stanza(&e->log, "out", s);
    xmppuv_stanza_unref(s);
  } else {
    /* A stamped stanza whose copy could not be made goes out in pieces. */
    LOG(e, XMPPUV_LOG_TRACE, "wire-out", "(%zu bytes of a resent stanza)", len);
  }
}

static int sm_write(void *ud, const char *data, size_t len) {
  xmppuv__engine_t *e = ud;
  if (e->link.id == 0 || e->link.closing) return XMPPUV_ESTATE;
  if (XMPPUV__LOG_ON(&e->log, XMPPUV_LOG_TRACE)) trace_sm_write(e, data, len);
  int rc = xmppuv__buf_append(&e->out, data, len);
  if (rc != 0) {
    /* sm.h: after a failed write the engine writes nothing more on this
     * stream; it is up to us to drop it (and resume on the next). */
    emit_errorf(e, rc, 0, "could not queue bytes for the server: %s", xmppuv_strerror(rc));
    drop_connection(e, 0);
  }
  return rc;
}

static void sm_enable_result(void *ud, int enabled, const char *condition) {
  xmppuv__engine_t *e = ud;
  if (!enabled && e->opts.sm && e->link.sm_offered)
    LOG(e, XMPPUV_LOG_WARN, "sm", "stream management refused%s%s", condition ? ": " : "",
        condition ? condition : "");
  if (e->stopping) return; /* stopped meanwhile: the stream is closing */
  go_online(e);
  /* A new session starts active (XEP-0352): restore the app's state. */
  e->server_inactive = 0;
  csi_sync(e);
  set_status(e, XMPPUV_STATUS_ONLINE);
  queue_simple(e, EV_ONLINE, 0);
}

static void sm_resumed(void *ud) {
  xmppuv__engine_t *e = ud;
  if (e->stopping) return; /* stopped meanwhile: the stream is closing */
  go_online(e);
  /* The server kept the session's state: only a change made meanwhile. */
  csi_sync(e);
  LOG(e, XMPPUV_LOG_INFO, "sm", "session resumed");
  set_status(e, XMPPUV_STATUS_ONLINE);
  queue_simple(e, EV_RESUMED, 0);
}

static void sm_resume_failed(void *ud, const char *condition) {
  xmppuv__engine_t *e = ud;
  LOG(e, XMPPUV_LOG_INFO, "sm", "resumption failed%s%s; starting a new session",
      condition ? ": " : "", condition ? condition : "");
  link_t *l = &e->link;
  if (l->in_login && l->login_bound_jid != NULL) {
    /* The same <success/> bound a new session (and enabled SM in it): no
     * round trip more. */
    xmppuv__iq_fail_before(&e->iqs, e->iq_fence, XMPPUV_ESMFAILED);
    on_bound_inline(e, l->login_bound_jid, l->login_inline_sm);
    return;
  }
  start_new_session(e);
}

static void sm_done(void *ud, xmppuv_stanza_t *stanza, int status, xmppuv__sm_done_cb cb,
                    void *cb_data) {
  xmppuv__engine_t *e = ud;
  event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = EV_DONE;
  ev.code = status;
  ev.stanza = stanza; /* the reference is ours now */
  /* send_cb stored the app's callback in the engine's slot. */
  ev.send_cb = (xmppuv_send_done_cb)(void (*)(void))cb;
  ev.cb_data = cb_data;
  push_event(e, &ev);
}

static void sm_abort(void *ud, int reason, const char *why) {
  xmppuv__engine_t *e = ud;
  emit_errorf(e, reason, 0, "Stream Management: %s; dropping the connection to resume", why);
  /* Not graceful: </stream:stream> would end the server's session. But for
   * h too high the engine wrote its stream error (XEP-0198 §6) and the
   * session is over anyway: flush that error rather than drop it. */
  drop_connection(e, reason == XMPPUV_ESMHIGH);
}

static const xmppuv__sm_events_t sm_events = {sm_write, sm_enable_result, sm_resumed,
                                              sm_resume_failed, sm_done, sm_abort};

/* ---- iq -------------------------------------------------------------------------------------- */

/* The tracker's outcomes: straight to the app while delivering (a reply
 * matched in a stanza's delivery comes before the stanza callback), queued
 * otherwise. */
static void iq_done(void *owner, xmppuv_iq_cb cb, void *user_data, int status,
                    xmppuv_stanza_t *reply) {
  xmppuv__engine_t *e = owner;
  if (e->delivering) {
    if (cb != NULL) cb(e->owner, status, reply, user_data);
    return;
  }
  event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = EV_IQ;
  ev.code = status;
  ev.iq_cb = cb;
  ev.cb_data = user_data;
  if (reply != NULL) {
    ev.stanza = reply;
    xmppuv_stanza_ref(reply);
  }
  push_event(e, &ev);
}

static int send_stanza(xmppuv__engine_t *e, xmppuv_stanza_t *s, xmppuv__sm_done_cb cb,
                       void *cb_data);

/* RFC 6120 §8.2.3 and §8.4: an iq get/set nobody handles gets
 * service-unavailable; XEP-0199 pings are answered here. */
static void answer_iq_request(xmppuv__engine_t *e, xmppuv_stanza_t *iq) {
  const xmppuv_stanza_t *child = xmppuv_stanza_child(iq, NULL, NULL);
  xmppuv_stanza_t *reply = NULL;
  int rc;
  if (child != NULL && strcmp(xmppuv_stanza_name(child), "ping") == 0 &&
      xmppuv_stanza_ns(child) != NULL && strcmp(xmppuv_stanza_ns(child), XMPPUV__NS_PING) == 0 &&
      strcmp(xmppuv_stanza_attr(iq, "type"), "get") == 0)
    rc = xmppuv_iq_result_new(iq, &reply);
  else
    rc = xmppuv_iq_error_new(iq, "cancel", "service-unavailable", &reply);
  if (rc == 0) rc = send_stanza(e, reply, NULL, NULL);
  if (rc != 0)
    LOG(e, XMPPUV_LOG_WARN, "client", "could not answer an iq %s request: %s",
        xmppuv_stanza_attr(iq, "type"), xmppuv_strerror(rc));
  xmppuv_stanza_unref(reply);
}

static int closing_check(xmppuv_client_t *owner, void *ud) {
  (void)owner;
  return ((xmppuv__engine_t *)ud)->closing;
}

static void deliver_stanza(xmppuv__engine_t *e, xmppuv_stanza_t *el) {
  int is_iq = xmppuv__streq(xmppuv_stanza_name(el), "iq");
  const char *type = is_iq ? xmppuv_stanza_attr(el, "type") : NULL;
  int handled = 0;
  if (type != NULL && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0))
    handled = xmppuv__iq_match(&e->iqs, el, e->bound);
  if (!handled && !e->closing)
    handled = xmppuv__handlers_dispatch(&e->handlers, e->owner, el, closing_check, e);
  if (!handled && !e->closing && type != NULL &&
      (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
    handled = xmppuv__handlers_dispatch(&e->iq_handlers, e->owner, el, closing_check, e);
    if (!handled && !e->closing) {
      answer_iq_request(e, el);
      handled = 1;
    }
  }
  if (!e->closing) FOR_EACH_CONSUMER(e, stanza, el, handled);
}

static void on_keepalive_reply(xmppuv_client_t *owner, int status, xmppuv_stanza_t *reply,
                               void *user_data) {
  (void)owner;
  (void)reply;
  xmppuv__engine_t *e = user_data;
  e->link.ping_handle = 0;
  if (status == XMPPUV_ETIMEDOUT && e->link.id != 0 && e->link.online) {
    emit_errorf(e, XMPPUV_ETIMEDOUT, 0,
                "no answer to a keepalive ping (XEP-0199) within %u ms; dropping the connection",
                e->opts.keepalive_timeout_ms);
    drop_connection(e, 0);
  }
}

static void send_keepalive(xmppuv__engine_t *e) {
  xmppuv_stanza_t *iq;
  if (xmppuv_stanza_new("iq", NULL, &iq) != 0) return;
  if (xmppuv_stanza_set_attr(iq, "type", "get") == 0 &&
      xmppuv_stanza_new_child(iq, "ping", XMPPUV__NS_PING, NULL) == 0) {
    uint64_t handle = 0;
    if (xmppuv__engine_iq(e, iq, e->opts.keepalive_timeout_ms, on_keepalive_reply, e, &handle,
                          e->now) == 0)
      e->link.ping_handle = handle;
  }
  xmppuv_stanza_unref(iq);
}

/* ---- timers ----------------------------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Keepalive without SM: a ping after keepalive_ms of silence. */
static uint64_t ping_due(const xmppuv__engine_t *e) {
  const link_t *l = &e->link;
  if (l->online && !xmppuv__sm_active(e->sm) && e->opts.keepalive_ms > 0 &&
      l->ping_handle == 0)
    return l->last_inbound + e->opts.keepalive_ms;
  return XMPPUV__NO_DEADLINE;
}

uint64_t xmppuv__engine_deadline(const xmppuv__engine_t *e) {
  if (e->ev_len > 0 || e->nactions > 0) return 0;
  if (e->link.up && !e->link.dropping && xmppuv__session_pending(e->session)) return 0;
  const link_t *l = &e->link;
  uint64_t d = min_u64(l->negotiation_deadline, l->close_deadline);
  d = min_u64(d, l->drain_deadline);
  d = min_u64(d, e->reconnect_at);
  d = min_u64(d, ping_due(e));
  d = min_u64(d, xmppuv__iq_deadline(&e->iqs));
  d = min_u64(d, xmppuv__sm_deadline(e->sm));
  return d;
}

void xmppuv__engine_tick(xmppuv__engine_t *e, xmppuv__time_t now) {
  e->now = now;
  uint64_t t = now.mono_ms;
  link_t *l = &e->link;
  if (l->negotiation_deadline <= t) {
    l->negotiation_deadline = XMPPUV__NO_DEADLINE;
    emit_errorf(e, XMPPUV_ETIMEDOUT, 0,
                "the stream negotiation did not finish within %u ms (status %s)",
                e->opts.negotiation_timeout_ms, xmppuv_status_name(e->status));
    drop_connection(e, 0);
  }
  if (l->drain_deadline <= t ||
      (l->drain_deadline != XMPPUV__NO_DEADLINE && xmppuv__sm_drained(e->sm, now)))
    begin_close_stream(e);
  if (l->close_deadline <= t) {
    /* The server did not close its side in time: close ours anyway. */
    l->close_deadline = XMPPUV__NO_DEADLINE;
    drop_connection(e, 0);
  }
  if (e->reconnect_at <= t) {
    e->reconnect_at = XMPPUV__NO_DEADLINE;
    if (e->started && !e->closing) connect_now(e);
  }
  if (ping_due(e) <= t) send_keepalive(e);
  xmppuv__iq_expire(&e->iqs, t);
  xmppuv__sm_tick(e->sm, now);
}

/* ---- what the driver passes in --------------------------------------------------------------- */

static int current(const xmppuv__engine_t *e, uint64_t link) {
  return link != 0 && link == e->link.id && !e->closing;
}

void xmppuv__engine_connected(xmppuv__engine_t *e, uint64_t link, xmppuv__framing_t framing,
                              int tls, const xmppuv__channel_binding_t *cb,
                              xmppuv__time_t now) {
  e->now = now;
  if (!current(e, link) || e->link.closing) return;
  link_t *l = &e->link;
  l->up = 1;
  set_status(e, XMPPUV_STATUS_CONNECT);
  l->negotiation_deadline = after(e, e->opts.negotiation_timeout_ms);
  l->last_inbound = now.mono_ms;
  const xmppuv__scram_keys_t *keys[3] = {e->keys[0], e->keys[1], e->keys[2]};
  xmppuv__session_offer_keys(e->session, keys, 3);
  int rc = xmppuv__session_start(e->session, framing, tls, cb);
  if (rc == 0) {
    /* What a SASL2 login may carry: <resume/> for the session to resume,
     * <enable/> for Bind2, the FAST token (the session decides what the
     * server takes); and, for any login, what it must not fall below. */
    xmppuv__buf_t enable_el = XMPPUV__BUF_INIT, resume_el = XMPPUV__BUF_INIT;
    xmppuv__sasl2_inline_t in;
    memset(&in, 0, sizeof in);
    if (e->opts.sasl2 && e->opts.sm) {
      rc = xmppuv__sm_enable_element(e->sm, &enable_el);
      if (rc == 0) rc = xmppuv__buf_append_char(&enable_el, '\0');
      if (rc == 0 && xmppuv__sm_can_resume(e->sm, now)) {
        rc = xmppuv__sm_resume_element(e->sm, &resume_el);
        if (rc == 0) rc = xmppuv__buf_append_char(&resume_el, '\0');
        if (rc == 0) in.resume = resume_el.data;
      }
      in.enable = enable_el.data;
    }
    if (e->opts.sasl2 && e->opts.fast) {
      in.token = e->fast_token;
      in.token_mech = e->fast_mech;
      in.request_token = 1;
    }
    if (e->invalidating) {
      memset(&in, 0, sizeof in);
      in.token = e->fast_token;
      in.token_mech = e->fast_mech;
      in.invalidate = 1;
    }
    in.was_sasl2 = e->was_sasl2;
    in.was_cb = e->was_cb;
    in.was_strong = e->was_strong;
    in.downgrade_fatal = e->opts.downgrade_fatal;
    if (rc == 0) rc = xmppuv__session_sasl2_inline(e->session, &in);
    xmppuv__buf_free(&enable_el);
    xmppuv__buf_free(&resume_el);
    if (rc == 0) quick_start(e);
  }
  if (rc != 0) {
    emit_errorf(e, rc, 0, "could not open the stream: %s", xmppuv_strerror(rc));
    drop_connection(e, 0);
    return;
  }
  set_status(e, XMPPUV_STATUS_OPENING);
}

void xmppuv__engine_feed(xmppuv__engine_t *e, uint64_t link, const char *data, size_t len,
                         xmppuv__time_t now) {
  e->now = now;
  if (!current(e, link) || e->link.dropping) return;
  e->link.last_inbound = now.mono_ms;
  xmppuv__sm_inbound_data(e->sm, now);
  int rc = xmppuv__session_feed(e->session, data, len);
  if (rc != 0) {
    emit_errorf(e, rc, 0, "could not take in what the server sent: %s", xmppuv_strerror(rc));
    drop_connection(e, 0);
  }
}

void xmppuv__engine_read_end(xmppuv__engine_t *e) { xmppuv__session_read_end(e->session); }

void xmppuv__engine_tls_ready(xmppuv__engine_t *e, uint64_t link,
                              const xmppuv__channel_binding_t *cb, xmppuv__time_t now) {
  e->now = now;
  if (!current(e, link) || e->link.dropping) return;
  int rc = xmppuv__session_tls_ready(e->session, cb);
  if (rc != 0) {
    emit_errorf(e, rc, 0, "could not restart the stream after STARTTLS: %s",
                xmppuv_strerror(rc));
    drop_connection(e, 0);
    return;
  }
  quick_start(e);
  set_status(e, XMPPUV_STATUS_OPENING);
}

void xmppuv__engine_transport_error(xmppuv__engine_t *e, uint64_t link, int status,
                                    const char *detail, xmppuv__time_t now) {
  e->now = now;
  if (!current(e, link) || e->link.quiet) return;
  link_t *l = &e->link;
  /* A certificate that does not verify will not verify next time either:
   * reconnecting would only retry the attack or the misconfiguration. So
   * for a host and port the app named that do not speak what it asked
   * (TLS on a STARTTLS port, a web server): README, "Errors". */
  int fatal = is_certificate_error(status) || status == XMPPUV_ENOSERVICE ||
              (status == XMPPUV_EWRONGSERVER && (e->opts.host != NULL || e->opts.url != NULL));
  if (fatal) e->gave_up = 1;
  /* The error first, then the status changes it causes. Losing the
   * connection after our own </stream:stream> is the end we asked for,
   * not an error. */
  if (!e->stopping)
    emit_errorf(e, status, fatal, "%s", detail != NULL ? detail : xmppuv_strerror(status));
  note_stream_lost(e);
  if (l->online || e->status != XMPPUV_STATUS_DISCONNECTING)
    set_status(e, XMPPUV_STATUS_DISCONNECTING);
  l->online = 0;
  l->dropping = 1;
  l->closing = 1; /* the transport closes itself: closed follows */
  xmppuv__sm_disconnected(e->sm, now);
}

void xmppuv__engine_transport_closed(xmppuv__engine_t *e, uint64_t link, xmppuv__time_t now) {
  e->now = now;
  if (link == 0 || link != e->link.id) return;
  connection_closed(e);
}

void xmppuv__engine_password(xmppuv__engine_t *e, uint64_t link, int status,
                             const char *password, xmppuv__time_t now) {
  e->now = now;
  if (!current(e, link) || e->link.dropping) return;
  if (status != 0 || password == NULL)
    xmppuv__session_no_credentials(e->session, status != 0 ? status : XMPPUV_EAUTH);
  else
    xmppuv__session_password(e->session, password);
}

void xmppuv__engine_keys(xmppuv__engine_t *e, uint64_t link, int status,
                         const xmppuv__scram_keys_t *keys, xmppuv__time_t now) {
  e->now = now;
  if (!current(e, link) || e->link.dropping) return;
  if (status != 0 || keys == NULL)
    xmppuv__session_no_credentials(e->session, status != 0 ? status : XMPPUV_EAUTH);
  else
    xmppuv__session_keys(e->session, keys);
}

/* ---- lifetime ----------------------------------------------------------------------------------- */

static void free_engine(xmppuv__engine_t *e) {
  xmppuv__iq_free(&e->iqs);
  xmppuv__sm_free(e->sm);
  xmppuv__session_free(e->session);
  xmppuv__handlers_free(&e->handlers);
  xmppuv__handlers_free(&e->iq_handlers);
  while (e->listeners != NULL) {
    listener_t *l = e->listeners;
    e->listeners = l->next;
    xmppuv__free(l);
  }
  while (e->ev_len > 0) {
    event_clear(&e->events[e->ev_head]);
    e->ev_head = (e->ev_head + 1) % e->ev_cap;
    e->ev_len--;
  }
  xmppuv__free(e->events);
  for (int i = 0; i < 3; i++) xmppuv__scram_keys_free(e->keys[i]);
  xmppuv_jid_free(e->jid);
  xmppuv_jid_free(e->bound);
  xmppuv__free(e->redirect_host);
  xmppuv__free(e->redirect_url);
  xmppuv__buf_free(&e->out);
  xmppuv__buf_free(&e->action_data);
  xmppuv__free_secret(e->fast_token);
  xmppuv__free(e->fast_mech);
  xmppuv__free(e->quick_features);
  free_options(&e->opts);
  xmppuv__free(e);
}

int xmppuv__engine_new(const xmppuv_client_options_t *opts,
                       const xmppuv_client_callbacks_t *callbacks, void *user_data,
                       xmppuv_client_t *owner, uint64_t seed, xmppuv__engine_t **out) {
  *out = NULL;
  xmppuv_client_options_t full;
  xmppuv_client_callbacks_t cbs;
  int rc = xmppuv__options_import(opts, &full);
  if (rc == 0) rc = xmppuv__callbacks_import(callbacks, &cbs, &full);
  if (rc != 0) return rc;
  opts = &full;
  xmppuv__engine_t *e = xmppuv__calloc(1, sizeof *e);
  if (e == NULL) return XMPPUV_ENOMEM;
  e->owner = owner;
  e->rng = seed;
  snprintf(e->id_prefix, sizeof e->id_prefix, "%08x-",
           (unsigned)(xmppuv__random_next(&e->rng) & 0xffffffffu));
  e->log.cb = opts->log_cb;
  e->log.user_data = opts->log_user_data;
  e->log.level = opts->log_level;
  e->cb = cbs;
  e->user_data = user_data;
  e->status = XMPPUV_STATUS_OFFLINE;
  e->reconnect_at = XMPPUV__NO_DEADLINE;
  link_reset(e);
  e->next_listener_id = 1;
  xmppuv__iq_init(&e->iqs, iq_done, e);
  xmppuv__handlers_init(&e->handlers, 1);
  xmppuv__handlers_init(&e->iq_handlers, (uint64_t)1 << 62);

  rc = copy_options(e, opts);
  if (rc == 0)
    rc = validate(e, opts->password != NULL || opts->password_cb != NULL ||
                         opts->client_cert_file != NULL || opts->fast_token != NULL ||
                         opts->fast_token_cb != NULL);
  if (rc == 0) {
    rc = xmppuv_jid_parse(e->opts.jid, &e->jid);
    if (rc != 0) LOG(e, XMPPUV_LOG_ERROR, "client", "bad jid: %s", xmppuv_strerror(rc));
  }
  if (rc == 0 && e->opts.fast_token != NULL) {
    e->fast_token = xmppuv__strdup_opt(e->opts.fast_token, &rc);
    e->fast_mech = xmppuv__strdup_opt(e->opts.fast_mechanism, &rc);
  }
  if (rc == 0 && xmppuv_jid_local(e->jid) == NULL && !e->opts.allow_anonymous)
    rc = bad_option(e, "the jid has no localpart (an account is user@domain; allow_anonymous "
                       "for a domain alone)");
  if (rc == 0) {
    const char *resource = e->opts.resource ? e->opts.resource : xmppuv_jid_resource(e->jid);
    xmppuv__session_config_t sc;
    memset(&sc, 0, sizeof sc);
    sc.domain = xmppuv_jid_domain(e->jid);
    sc.bare_jid = xmppuv_jid_bare_string(e->jid);
    sc.username = xmppuv_jid_local(e->jid);
    sc.resource = resource;
    sc.lang = e->opts.lang;
    sc.tls_required = e->opts.tls != XMPPUV_TLS_DISABLED_INSECURE;
    sc.allow_anonymous = e->opts.allow_anonymous;
    sc.allow_external = e->opts.client_cert_file != NULL;
    sc.allow_plain_insecure = e->opts.tls == XMPPUV_TLS_DISABLED_INSECURE;
    sc.have_credentials = opts->password != NULL || opts->password_cb != NULL;
    sc.mechanisms = e->opts.sasl_mechanisms;
    sc.sasl2 = e->opts.sasl2;
    sc.user_agent_id = e->opts.user_agent_id;
    sc.software = e->opts.software;
    sc.limits.max_stanza_bytes = e->opts.max_stanza_bytes;
    sc.limits.max_depth = e->opts.max_depth;
    sc.limits.max_attrs = e->opts.max_attrs;
    sc.log = &e->log;
    sc.out = &e->out;
    rc = xmppuv__session_new(&sc, &e->session);
  }
  if (rc == 0) {
    xmppuv__sm_config_t smc;
    xmppuv__sm_config_defaults(&smc);
    smc.enabled = e->opts.sm;
    smc.resume = e->opts.sm_resume;
    smc.max_resume_s = e->opts.sm_max_resume_s;
    smc.ack_debounce_ms = e->opts.sm_ack_debounce_ms;
    smc.ack_threshold = e->opts.sm_ack_threshold;
    smc.idle_request_ms = e->opts.sm_idle_request_ms;
    smc.ack_timeout_ms = e->opts.sm_ack_timeout_ms;
    smc.wait_timeout_ms = e->opts.sm_wait_timeout_ms;
    smc.queue_max = e->opts.sm_queue_max ? e->opts.sm_queue_max : XMPPUV__DEFAULT_SM_QUEUE_MAX;
    smc.resend_on_failed = e->opts.sm_resend_on_failed;
    smc.drain_timeout_ms = drain_wait_ms(e);
    smc.max_send_bytes = e->opts.max_send_bytes;
    smc.log = &e->log;
    rc = xmppuv__sm_new(&smc, &sm_events, e, &e->sm);
  }
  if (rc != 0) {
    free_engine(e);
    return rc;
  }
  *out = e;
  return 0;
}

void xmppuv__engine_free(xmppuv__engine_t *e) {
  if (e != NULL) free_engine(e);
}

const xmppuv_client_options_t *xmppuv__engine_options(const xmppuv__engine_t *e) {
  return &e->opts;
}

const xmppuv__log_t *xmppuv__engine_log(const xmppuv__engine_t *e) { return &e->log; }

const xmppuv_jid_t *xmppuv__engine_configured_jid(const xmppuv__engine_t *e) {
  return e->jid;
}

xmppuv__buf_t *xmppuv__engine_output(xmppuv__engine_t *e) { return &e->out; }

int xmppuv__engine_closed(const xmppuv__engine_t *e) {
  return e->closing && e->ev_len == 0;
}

int xmppuv__engine_is_closing(const xmppuv__engine_t *e) { return e->closing; }

/* ---- the app's calls ------------------------------------------------------------------------------ */

int xmppuv__engine_has_fast_token(const xmppuv__engine_t *e) { return e->fast_token != NULL; }

int xmppuv__engine_give_fast_token(xmppuv__engine_t *e, const char *token, const char *mech) {
  xmppuv__ht_t ht;
  if (token == NULL || mech == NULL || !printable_ascii(token, 4096) ||
      xmppuv__ht_parse(mech, &ht) != 0) {
    LOG(e, XMPPUV_LOG_ERROR, "client", "fast_token_cb gave a token that cannot be used%s",
        mech != NULL && xmppuv__ht_parse(mech, &ht) != 0 ? " (unknown mechanism)" : "");
    return XMPPUV_EINVAL;
  }
  int rc = 0;
  char *t = xmppuv__strdup_opt(token, &rc);
  char *m = xmppuv__strdup_opt(mech, &rc);
  if (rc != 0) {
    xmppuv__free_secret(t);
    xmppuv__free(m);
    return rc;
  }
  replace_token(e, t, m);
  return 0;
}

int xmppuv__engine_start(xmppuv__engine_t *e, xmppuv__time_t now) {
  e->now = now;
  if (e->closing) return XMPPUV_ECLOSED;
  /* A transport still closing after a stop: only one stopped while
   * connecting may be restarted before it is gone (connection_closed). */
  if (e->started || (e->link.id != 0 && !e->link.quiet)) return XMPPUV_ESTATE;
  int closing_quietly = e->link.id != 0;
  e->started = 1;
  e->gave_up = 0;
  e->gave_up_code = 0;
  e->stopping = 0;
  e->reconnect_attempt = 0;
  e->redirects = 0;
  if (!closing_quietly) connect_now(e);
  return 0;
}

/* Stopped before the transport was up: there is no stream to close, so the
 * status goes offline now (client.h) and the transport's close follows
 * unseen. */
static void stop_unconnected(xmppuv__engine_t *e) {
  link_t *l = &e->link;
  l->dropping = 1;
  l->closing = 1;
  l->quiet = 1;
  note_stream_lost(e);
  xmppuv__sm_disconnected(e->sm, e->now);
  push_action(e, XMPPUV__ACT_CLOSE)->graceful = 0;
  e->stopping = 0;
  fail_everything(e, XMPPUV_ECANCELED);
  set_status(e, XMPPUV_STATUS_OFFLINE);
}

int xmppuv__engine_stop(xmppuv__engine_t *e, xmppuv__time_t now) {
  e->now = now;
  if (e->closing) return XMPPUV_ECLOSED;
  link_t *l = &e->link;
  if (!e->started && (l->id == 0 || l->quiet)) {
    /* Already offline; still settle what was held for a later start. */
    fail_everything(e, XMPPUV_ECANCELED);
    return 0;
  }
  e->started = 0;
  e->reconnect_at = XMPPUV__NO_DEADLINE;
  if (l->id == 0) {
    fail_everything(e, XMPPUV_ECANCELED);
    set_status(e, XMPPUV_STATUS_OFFLINE);
    return 0;
  }
  if (e->stopping) return 0;
  e->stopping = 1;
  if (l->closing) {
    /* The connection is ending already: offline follows. */
  } else if (!l->up) {
    stop_unconnected(e);
  } else if (l->online) {
    /* XEP-0198 §4: tell the server what we handled; wait for its last acks
     * so a clean exit reports acks, not failures. */
    if (xmppuv__sm_stop(e->sm, now) == 1)
      l->drain_deadline = after(e, drain_wait_ms(e));
    else
      begin_close_stream(e);
  } else if (xmppuv__session_is_open(e->session)) {
    begin_close_stream(e);
  } else {
    drop_connection(e, 0);
  }
  return 0;
}

int xmppuv__engine_logout(xmppuv__engine_t *e, xmppuv__time_t now) {
  e->now = now;
  if (e->closing) return XMPPUV_ECLOSED;
  if (e->fast_token == NULL || e->logout) return xmppuv__engine_stop(e, now);
  e->logout = 1;
  link_t *l = &e->link;
  if (!e->started && (l->id == 0 || l->quiet)) {
    /* Offline already: the invalidation is the one connection. */
    fail_everything(e, XMPPUV_ECANCELED);
    if (!e->opts.sasl2) {
      set_token(e, NULL, NULL, NULL);
      e->logout = 0;
      return 0;
    }
    start_invalidation(e);
    return 0;
  }
  return xmppuv__engine_stop(e, now);
}

int xmppuv__engine_reconnect_now(xmppuv__engine_t *e, xmppuv__time_t now) {
  e->now = now;
  if (e->closing) return XMPPUV_ECLOSED;
  if (!e->started || e->stopping || e->gave_up) return XMPPUV_ESTATE;
  LOG(e, XMPPUV_LOG_INFO, "client", "reconnecting now, as the app asked");
  e->reconnect_attempt = 0;
  if (e->link.id != 0) {
    /* Not graceful: </stream:stream> would end the server's session. The
     * next attempt goes as soon as the connection is gone. */
    e->reconnect_at_once = 1;
    drop_connection(e, 0);
  } else {
    /* Waiting between attempts: go now. */
    connect_now(e);
  }
  return 0;
}

void xmppuv__engine_close(xmppuv__engine_t *e, xmppuv__time_t now) {
  e->now = now;
  if (e->closing) return;
  /* Settle first, while the app's callbacks may still run. */
  e->started = 0;
  fail_everything(e, XMPPUV_ECANCELED);
  if (e->link.id != 0 && !e->link.closing) drop_connection(e, 0);
  e->closing = 1;
  e->status = XMPPUV_STATUS_OFFLINE;
  e->reconnect_at = XMPPUV__NO_DEADLINE;
}

xmppuv_status_t xmppuv__engine_status(const xmppuv__engine_t *e) { return e->status; }

const xmppuv_jid_t *xmppuv__engine_jid(const xmppuv__engine_t *e) { return e->bound; }

static int send_stanza(xmppuv__engine_t *e, xmppuv_stanza_t *s, xmppuv__sm_done_cb cb,
                       void *cb_data) {
  if (e->closing) return XMPPUV_ECLOSED;
  if (!e->started || e->stopping) return XMPPUV_ESTATE;
  /* Checked before the id is set: a refused stanza is left as it was. */
  const char *name = xmppuv_stanza_name(s), *ns = xmppuv_stanza_ns(s);
  if (name == NULL || (ns != NULL && strcmp(ns, XMPPUV_NS_CLIENT) != 0) ||
      (strcmp(name, "message") != 0 && strcmp(name, "presence") != 0 &&
       strcmp(name, "iq") != 0))
    return XMPPUV_EINVAL;
  int rc = ensure_id(e, s);
  if (rc == 0) rc = reserve_outcome(e);
  if (rc != 0) return rc;
  return xmppuv__sm_send(e->sm, s, e->now, cb, cb_data);
}

int xmppuv__engine_send(xmppuv__engine_t *e, xmppuv_stanza_t *stanza, xmppuv_send_done_cb cb,
                        void *cb_data, xmppuv__time_t now) {
  e->now = now;
  /* The engine carries the app's callback back to sm_done unchanged. */
  return send_stanza(e, stanza, cb != NULL ? (xmppuv__sm_done_cb)(void (*)(void))cb : NULL,
                     cb_data);
}

int xmppuv__engine_iq(xmppuv__engine_t *e, xmppuv_stanza_t *iq, unsigned timeout_ms,
                      xmppuv_iq_cb cb, void *user_data, uint64_t *id, xmppuv__time_t now) {
  e->now = now;
  const char *name = xmppuv_stanza_name(iq);
  const char *type = xmppuv_stanza_attr(iq, "type");
  if (name == NULL || strcmp(name, "iq") != 0 || type == NULL ||
      (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
    return XMPPUV_EINVAL;
  if (e->closing) return XMPPUV_ECLOSED;
  if (!e->started || e->stopping) return XMPPUV_ESTATE;
  int rc = ensure_id(e, iq);
  if (rc == 0) rc = grow_events(e, owed(e) + 2); /* the iq's outcome and its stanza's */
  if (rc != 0) return rc;
  unsigned t = timeout_ms ? timeout_ms : e->opts.iq_timeout_ms;
  uint64_t handle;
  rc = xmppuv__iq_track(&e->iqs, xmppuv_stanza_attr(iq, "id"), xmppuv_stanza_attr(iq, "to"),
                        t ? now.mono_ms + t : XMPPUV__NO_DEADLINE, cb, user_data, &handle);
  if (rc != 0) return rc;
  rc = send_stanza(e, iq, (xmppuv__sm_done_cb)(void (*)(void))iq_request_sent, NULL);
  if (rc != 0) {
    xmppuv__iq_untrack(&e->iqs, handle);
    return rc;
  }
  if (id != NULL) *id = handle;
  return 0;
}

int xmppuv__engine_iq_cancel(xmppuv__engine_t *e, uint64_t id) {
  if (e->closing) return XMPPUV_ECLOSED;
  return xmppuv__iq_cancel(&e->iqs, id);
}

int xmppuv__engine_handler_add(xmppuv__engine_t *e, int iq_requests, const char *name,
                               const char *ns, const char *type, xmppuv_handler_cb cb,
                               void *user_data, uint64_t *id) {
  if (cb == NULL) return XMPPUV_EINVAL;
  if (e->closing) return XMPPUV_ECLOSED;
  if (iq_requests) {
    if (type != NULL && strcmp(type, "get") != 0 && strcmp(type, "set") != 0)
      return XMPPUV_EINVAL;
    return xmppuv__handlers_add(&e->iq_handlers, name, ns, type, 1, cb, user_data, id);
  }
  return xmppuv__handlers_add(&e->handlers, name, ns, type, 0, cb, user_data, id);
}

int xmppuv__engine_handler_remove(xmppuv__engine_t *e, int iq_requests, uint64_t id) {
  if (e->closing) return XMPPUV_ECLOSED;
  return xmppuv__handlers_remove(iq_requests ? &e->iq_handlers : &e->handlers, id);
}

void xmppuv__engine_notify_closed(xmppuv__engine_t *e) {
  e->delivering++;
  FOR_EACH_CONSUMER0(e, closed);
  if (--e->delivering == 0) sweep_listeners(e);
}

int xmppuv__engine_listener_add(xmppuv__engine_t *e,
                                const xmppuv_client_callbacks_t *callbacks, void *user_data,
                                uint64_t *id) {
  if (callbacks == NULL) return XMPPUV_EINVAL;
  if (e->closing) return XMPPUV_ECLOSED;
  xmppuv_client_callbacks_t cbs;
  int rc = xmppuv__callbacks_import(callbacks, &cbs, &e->opts);
  if (rc != 0) return rc;
  listener_t *l = xmppuv__calloc(1, sizeof *l);
  if (l == NULL) return XMPPUV_ENOMEM;
  l->id = e->next_listener_id++;
  l->cb = cbs;
  l->user_data = user_data;
  listener_t **pp = &e->listeners;
  while (*pp != NULL) pp = &(*pp)->next;
  *pp = l;
  if (id != NULL) *id = l->id;
  return 0;
}

int xmppuv__engine_listener_remove(xmppuv__engine_t *e, uint64_t id) {
  /* Also after close, until the client is freed: a module freed by the app
   * in the meantime must get no `closed` of its own. */
  for (listener_t *l = e->listeners; l != NULL; l = l->next) {
    if (l->id != id || l->removed) continue;
    l->removed = 1;
    if (e->delivering == 0) sweep_listeners(e);
    return 0;
  }
  return XMPPUV_EINVAL;
}

int xmppuv__engine_set_active(xmppuv__engine_t *e, int active) {
  if (e->closing) return XMPPUV_ECLOSED;
  e->inactive = !active;
  csi_sync(e);
  return 0;
}

int xmppuv__engine_is_active(const xmppuv__engine_t *e) { return !e->inactive; }

const xmppuv_stanza_t *xmppuv__engine_stream_features(const xmppuv__engine_t *e) {
  if (e->closing || e->link.id == 0 || e->link.dropping) return NULL;
  return xmppuv__session_features(e->session);
}

int xmppuv__engine_sm_enabled(const xmppuv__engine_t *e) { return xmppuv__sm_active(e->sm); }

const xmppuv__sm_t *xmppuv__engine_sm(const xmppuv__engine_t *e) { return e->sm; }

size_t xmppuv__engine_sm_queued(const xmppuv__engine_t *e) { return xmppuv__sm_queued(e->sm); }

int xmppuv__engine_sm_export(const xmppuv__engine_t *e, xmppuv__time_t now, char **data,
                             size_t *len) {
  *data = NULL;
  *len = 0;
  if (e->closing) return XMPPUV_ECLOSED;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  int rc = xmppuv__sm_export(e->sm, now, &b);
  if (rc != 0) {
    xmppuv__buf_free(&b);
    return rc;
  }
  *data = xmppuv__buf_detach(&b, len);
  return *data != NULL ? 0 : XMPPUV_ENOMEM;
}

int xmppuv__engine_sm_import(xmppuv__engine_t *e, const void *data, size_t len) {
  if (e->closing) return XMPPUV_ECLOSED;
  if (e->started || e->link.id != 0) return XMPPUV_ESTATE;
  char *full = NULL;
  int rc = xmppuv__sm_import(e->sm, data, len, e->jid, &full);
  if (rc != 0) return rc;
  e->server_inactive = CSI_UNKNOWN;
  if (full != NULL) {
    /* Checked by the import: a valid JID of this account. */
    xmppuv_jid_t *j = NULL;
    if (xmppuv_jid_parse(full, &j) == 0) {
      xmppuv_jid_free(e->bound);
      e->bound = j;
    }
    xmppuv__free(full);
  }
  return 0;
}
