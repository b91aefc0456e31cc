/* Stream negotiation: framing, the queue of what the server sent, stream
 * features and stream errors (see session.h). The SASL step is in auth.c,
 * resource binding in bind.c. */
#include "session/session.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "session/session_int.h"
#include "session/stream_error.h"
#include "util/alloc.h"
#include "util/ns.h"
#include "util/str.h"
#include "xml/serialize.h"
#include "xml/stanza.h"

/* RFC 7395 §3.3: each WebSocket message is one element; they are parsed as
 * children of this stream header, which declares what a <stream:stream>
 * would have, so the elements need not repeat it. */
#define WS_PRIMER                                                          \
  "<stream:stream xmlns='" XMPPUV_NS_CLIENT "' xmlns:stream='"             \
  XMPPUV__NS_STREAMS "'>"

/* A read at least this big is a busy stream's (see xmppuv__session_idle).
 * Not more than a slice: the slices of a big read must all look busy. */
#define IDLE_BUSY_READ 4096
_Static_assert(IDLE_BUSY_READ <= XMPPUV__FEED_SLICE, "a big read's slices would look idle");

/* ---- small helpers -------------------------------------------------------- */

int xmppuv__session_write(xmppuv__session_t *s, const char *data, size_t len) {
  return xmppuv__buf_append(s->out, data, len);
}

void xmppuv__session_trace_out(xmppuv__session_t *s, const char *what) {
  xmppuv__logf(s->log, XMPPUV_LOG_TRACE, "wire-out", "%s", what);
}

int xmppuv__session_is_in(const xmppuv_stanza_t *el, const char *name, const char *ns) {
  /* The name first: it rules out most elements without the namespace. */
  if (!xmppuv__streq(xmppuv_stanza_name(el), name)) return 0;
  const char *n = xmppuv_stanza_ns(el);
  return n != NULL && xmppuv__streq(n, ns);
}

static char *dup_or_null(const char *s) {
  int rc = 0;
  return xmppuv__strdup_opt(s, &rc);
}

void xmppuv__session_fail(xmppuv__session_t *s, int code, const char *condition,
                          const char *text, const xmppuv_stanza_t *el, int fatal,
                          const char *see_other) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->state == ST_FAILED) return;
  /* Every failure says what happened: a local one (out of memory, a write
   * that failed) in words of ours, naming the step it stopped. */
  char own[160];
  if (text == NULL && condition == NULL) {
    snprintf(own, sizeof own, "the stream negotiation stopped %s: %s",
             c->authenticated ? "after authentication" : "before authentication",
             xmppuv_strerror(code));
    text = own;
  }
  c->state = ST_FAILED;
  /* Nothing after the failure matters. */
  c->hold = HOLD_NONE;
  c->held_off = c->held.len;
  c->fail_pending = 1;
  /* Copies: the strings may live in the item being handled, or in a
   * buffer of the exchange. Out of memory leaves them NULL: the code says
   * enough. */
  c->error_condition = dup_or_null(condition);
  c->error_text = dup_or_null(text);
  c->see_other = dup_or_null(see_other);
  if (el != NULL) {
    c->error_el = (xmppuv_stanza_t *)(uintptr_t)el;
    xmppuv_stanza_ref(c->error_el);
  }
  c->error.code = code;
  c->error.condition = c->error_condition;
  c->error.text = c->error_text;
  c->error.element = c->error_el;
  c->error.fatal = fatal;
  xmppuv__logf(s->log, fatal ? XMPPUV_LOG_ERROR : XMPPUV_LOG_WARN, "session",
               "%s%s%s%s%s", xmppuv_strerror(code), condition ? ": " : "",
               condition ? condition : "", text ? " - " : "", text ? text : "");
}

/* We end the stream with an error of our own (RFC 6120 §4.9). */
static void send_stream_error(xmppuv__session_t *s, const char *condition) {
  xmppuv__buf_t *b = &s->scratch;
  xmppuv__buf_clear(b);
  int rc = xmppuv__buf_append_str(b, "<stream:error><");
  if (rc == 0) rc = xmppuv__buf_append_str(b, condition);
  if (rc == 0) rc = xmppuv__buf_append_str(b, " xmlns='" XMPPUV__NS_STREAM_ERRORS "'/></stream:error>");
  if (rc == 0)
    rc = xmppuv__buf_append_str(b, s->c.framing == XMPPUV__FRAMING_WEBSOCKET
                                       ? "<close xmlns='" XMPPUV__NS_FRAMING "'/>"
                                       : "</stream:stream>");
  if (rc == 0) {
    xmppuv__session_trace_out(s, b->data);
    xmppuv__session_write(s, b->data, b->len);
  }
}

static int append_attr(xmppuv__buf_t *b, const char *name, const char *value) {
  int rc = xmppuv__buf_append_char(b, ' ');
  if (rc == 0) rc = xmppuv__buf_append_str(b, name);
  if (rc == 0) rc = xmppuv__buf_append_str(b, "='");
  if (rc == 0) rc = xmppuv__escape_attr(b, value, strlen(value));
  if (rc == 0) rc = xmppuv__buf_append_char(b, '\'');
  return rc;
}

/* RFC 6120 §4.7 header, or RFC 7395 §3.3.1 <open/>; 'from' only once TLS
 * protects it (RFC 6120 §4.7.1). */
static int send_header(xmppuv__session_t *s) {
  xmppuv__buf_t *b = &s->scratch;
  xmppuv__buf_clear(b);
  int ws = s->c.framing == XMPPUV__FRAMING_WEBSOCKET;
  int rc = xmppuv__buf_append_str(
      b, ws ? "<open xmlns='" XMPPUV__NS_FRAMING "' version='1.0'"
            : "<?xml version='1.0'?><stream:stream xmlns='" XMPPUV_NS_CLIENT
              "' xmlns:stream='" XMPPUV__NS_STREAMS "' version='1.0'");
  if (rc == 0) rc = append_attr(b, "to", s->cfg.domain);
  if (rc == 0 && s->c.tls && s->cfg.bare_jid != NULL)
    rc = append_attr(b, "from", s->cfg.bare_jid);
  if (rc == 0 && s->cfg.lang != NULL) rc = append_attr(b, "xml:lang", s->cfg.lang);
  if (rc == 0) rc = xmppuv__buf_append_str(b, ws ? "/>" : ">");
  if (rc == 0) rc = xmppuv__session_write(s, b->data, b->len);
  if (rc != 0) return rc;
  xmppuv__session_trace_out(s, b->data);
  s->c.state = ST_OPENING;
  s->c.stream_open = 0;
  s->c.no_version = 0;
  return 0;
}

/* A new stream on the same connection (after STARTTLS or SASL): the parser
 * starts over (primed with the framing's stream header for WebSocket). */
static int restart_stream(xmppuv__session_t *s) {
  int rc = xmppuv__parser_reset(s->parser);
  if (rc == 0 && s->c.framing == XMPPUV__FRAMING_WEBSOCKET)
    rc = xmppuv__parser_prime(s->parser, WS_PRIMER, sizeof WS_PRIMER - 1);
  if (rc == 0) rc = send_header(s);
  return rc;
}

/* ---- the queue ---------------------------------------------------------------- */

/* Negotiation is handled as the parser finds it (it only writes to the
 * output buffer and changes the session's state); what the engine must know
 * is queued as events and handed out by xmppuv__session_step(), in order.
 * Elements after negotiation are queued for the engine as they are. */
/* As xmppuv__session_push(), taking the caller's reference to el. */
static void push_taken(xmppuv__session_t *s, xmppuv__session_event_kind_t kind,
                       xmppuv_stanza_t *el);

void xmppuv__session_push(xmppuv__session_t *s, xmppuv__session_event_kind_t kind,
                          xmppuv_stanza_t *el) {
  push_taken(s, kind, xmppuv_stanza_ref(el));
}

static void push_taken(xmppuv__session_t *s, xmppuv__session_event_kind_t kind,
                       xmppuv_stanza_t *el) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->pend_len == c->pend_cap) {
    size_t cap = c->pend_cap ? c->pend_cap * 2 : 8;
    xmppuv__session_pending_t *ring = xmppuv__malloc(cap * sizeof *ring);
    if (ring == NULL) {
      xmppuv_stanza_unref(el);
      xmppuv__session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
      return;
    }
    for (size_t i = 0; i < c->pend_len; i++)
      ring[i] = c->pend[(c->pend_head + i) % c->pend_cap];
    xmppuv__free(c->pend);
    c->pend = ring;
    c->pend_cap = cap;
    c->pend_head = 0;
  }
  xmppuv__session_pending_t *p = &c->pend[(c->pend_head + c->pend_len) % c->pend_cap];
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->sm_offered = c->sm_offered;
  p->csi_offered = c->csi_offered;
  p->features = c->auth_features_seen;
  p->el = el;
  if (kind == XMPPUV__SESS_ELEMENT) c->backlog++;
  c->pend_len++;
}

static int pop_pending(xmppuv__session_t *s, xmppuv__session_pending_t *out) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->pend_len == 0) return 0;
  *out = c->pend[c->pend_head];
  c->pend_head = (c->pend_head + 1) % c->pend_cap;
  c->pend_len--;
  if (out->kind == XMPPUV__SESS_ELEMENT) c->backlog--;
  return 1;
}

/* Elements after which the stream restarts or TLS begins: what follows them
 * in the input is not of this stream (RFC 6120 §5.4.3.3, §6.4.6). */
static xmppuv__session_event_kind_t on_element_item(xmppuv__session_t *s,
                                                    xmppuv_stanza_t *el);
static xmppuv__session_event_kind_t on_open(xmppuv__session_t *s,
                                            const xmppuv_stanza_t *header);

static int on_stream_open(void *ud, const xmppuv_stanza_t *header) {
  xmppuv__session_t *s = ud;
  if (s->c.state == ST_FAILED) return XMPPUV_ECANCELED;
  if (on_open(s, header) == XMPPUV__SESS_OPEN) xmppuv__session_push(s, XMPPUV__SESS_OPEN, NULL);
  return s->c.state == ST_FAILED ? XMPPUV_ECANCELED : 0;
}

static int on_element(void *ud, xmppuv_stanza_t *el) {
  xmppuv__session_t *s = ud;
  xmppuv__session_conn_t *c = &s->c;
  if (c->state != ST_FAILED) {
    xmppuv__session_event_kind_t kind = on_element_item(s, el);
    if (kind == XMPPUV__SESS_STARTTLS || c->restart_sasl)
      xmppuv__parser_pause(s->parser); /* the rest is not of this stream */
    if (kind == XMPPUV__SESS_ELEMENT) {
      push_taken(s, kind, el); /* the parser's reference */
      el = NULL;
    } else if (kind != XMPPUV__SESS_NOTHING) {
      xmppuv__session_push(s, kind, NULL);
    }
  }
  xmppuv_stanza_unref(el);
  /* Stop parsing a stream that has failed. */
  return c->state == ST_FAILED ? XMPPUV_ECANCELED : 0;
}

static int on_stream_close(void *ud) {
  xmppuv__session_t *s = ud;
  if (s->c.state == ST_FAILED) return XMPPUV_ECANCELED;
  xmppuv__logf(s->log, XMPPUV_LOG_TRACE, "wire-in", "</stream:stream>");
  s->c.stream_open = 0;
  xmppuv__session_push(s, XMPPUV__SESS_CLOSED, NULL);
  return 0;
}

static const xmppuv__parser_callbacks_t parser_callbacks = {on_stream_open, on_element,
                                                            on_stream_close};

/* Input is parsed in slices (XMPPUV__FEED_SLICE), and no more once this
 * many elements wait for the engine: a stream of small stanzas is parsed
 * only as fast as it is handled, so memory stays bounded. */
#define QUEUE_HIGH 16u

static int held_left(const xmppuv__session_conn_t *c) { return c->held_off < c->held.len; }

/* Keep data[0..len) to parse later (at most one copy of any byte: what is
 * already in held stays where it is). */
static int hold(xmppuv__session_t *s, const char *data, size_t len, xmppuv__hold_t why) {
  xmppuv__session_conn_t *c = &s->c;
  c->hold = why;
  if (c->held.data != NULL && data >= c->held.data && data <= c->held.data + c->held.len) {
    c->held_off = (size_t)(data - c->held.data);
    return 0;
  }
  xmppuv__buf_clear(&c->held);
  c->held_off = 0;
  return len > 0 ? xmppuv__buf_append(&c->held, data, len) : 0;
}

/* Parse data[0..len) until it is used, the engine has enough waiting, or
 * TLS begins; hold the rest. A SASL restart happens on the way. */
static int parse(xmppuv__session_t *s, const char *data, size_t len) {
  xmppuv__session_conn_t *c = &s->c;
  size_t off = 0;
  while (off < len && c->state != ST_FAILED) {
    if (c->backlog >= QUEUE_HIGH) return hold(s, data + off, len - off, HOLD_FLOW);
    size_t n = len - off < XMPPUV__FEED_SLICE ? len - off : XMPPUV__FEED_SLICE;
    size_t used = 0;
    int rc = xmppuv__parser_feed(s->parser, data + off, n, &used);
    if (c->state == ST_FAILED) break; /* a handler failed the stream */
    if (rc != 0) {
      const char *condition = xmppuv__parser_condition(s->parser);
      if (rc == XMPPUV_ENOMEM && condition == NULL) return rc;
      /* RFC 6120 §4.9.1: tell the server what was wrong with its XML. */
      if (condition != NULL && rc != XMPPUV_ENOMEM) send_stream_error(s, condition);
      xmppuv__session_fail(s, rc, condition, xmppuv__parser_detail(s->parser), NULL, 0, NULL);
      break;
    }
    off += used;
    if (c->restart_sasl) {
      /* RFC 6120 §6.4.6: what follows <success/> is a new stream. */
      c->restart_sasl = 0;
      rc = restart_stream(s);
      if (rc != 0) {
        xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
        break;
      }
      xmppuv__session_push(s, XMPPUV__SESS_RESTART, NULL);
      continue;
    }
    /* <proceed/>: what follows is TLS, for the driver. This stream's
     * parser has nothing more to read: free it now, not after the
     * handshake (a thousand handshakes at once would each keep one). */
    if (c->state == ST_TLS) {
      xmppuv__parser_reset(s->parser);
      return hold(s, data + off, len - off, HOLD_RESTART);
    }
    if (c->yielded) return hold(s, data + off, len - off, HOLD_CREDENTIALS);
  }
  c->hold = HOLD_NONE;
  if (c->held.data != NULL && data >= c->held.data && data <= c->held.data + c->held.len) {
    xmppuv__buf_clear(&c->held);
    c->held_off = 0;
  }
  return 0;
}

static void parse_held(xmppuv__session_t *s);

void xmppuv__session_wait_credentials(xmppuv__session_t *s) {
  xmppuv__session_push(s, XMPPUV__SESS_CREDENTIALS, NULL);
  s->c.yielded = 1;
  xmppuv__parser_yield(s->parser);
}

void xmppuv__session_credentials_given(xmppuv__session_t *s) {
  xmppuv__session_conn_t *c = &s->c;
  c->yielded = 0;
  if (c->hold != HOLD_CREDENTIALS) return;
  c->hold = HOLD_FLOW;
  parse_held(s);
}

/* Go on with held input once the engine caught up (flow control). */
static void parse_held(xmppuv__session_t *s) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->hold != HOLD_FLOW || c->backlog >= QUEUE_HIGH) return;
  if (c->held.data == NULL) {
    c->hold = HOLD_NONE; /* nothing was left over */
    return;
  }
  if (parse(s, c->held.data + c->held_off, c->held.len - c->held_off) != 0)
    xmppuv__session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
}

/* ---- features and stream errors ---------------------------------------------- */

/* XEP-0478: <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>N. Anything
 * that is not a plain positive decimal is no limit we can use. Features
 * without <limits/> leave the connection's last one in force: Prosody
 * lists it before authentication only, and a SASL2 login does not
 * restart the stream. */
static void take_max_bytes(xmppuv__session_conn_t *c, const xmppuv_stanza_t *features) {
  const xmppuv_stanza_t *limits = xmppuv_stanza_child(features, "limits", XMPPUV__NS_STREAM_LIMITS);
  if (limits == NULL) return;
  c->peer_max_bytes = 0;
  const char *text = xmppuv_stanza_child_text(limits, "max-bytes", NULL);
  if (text == NULL || *text == '\0') return;
  size_t v = 0;
  for (; *text != '\0'; text++) {
    if (*text < '0' || *text > '9' || v > (SIZE_MAX - 9) / 10) return;
    v = v * 10 + (size_t)(*text - '0');
  }
  c->peer_max_bytes = v;
}

/* For xmppuv__session_features(). Without memory for the copy the app
 * finds no features: nothing of the stream depends on it. */
static void keep_features(xmppuv__session_t *s, const xmppuv_stanza_t *features) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv_stanza_unref(c->features);
  c->features = NULL;
  xmppuv__free(c->features_text);
  c->features_text = NULL;
  c->features_len = 0;
  if (xmppuv_stanza_to_string(features, &c->features_text, &c->features_len) != 0) {
    xmppuv__logf(s->log, XMPPUV_LOG_WARN, "session", "no memory to keep the stream features");
    return;
  }
  /* Kept for the connection's life: no slack from the buffer's growth. */
  char *fit = xmppuv__realloc(c->features_text, c->features_len + 1);
  if (fit != NULL) c->features_text = fit;
}

/* The sorted names of the children name/ns of parent, with attr (or the
 * text when attr is NULL), joined by spaces into out: a set to compare. */
static void name_set(const xmppuv_stanza_t *parent, const char *name, const char *attr,
                     char *out, size_t size) {
  const char *names[32];
  size_t n = 0;
  for (xmppuv_stanza_t *e = xmppuv_stanza_child(parent, name, NULL); e != NULL && n < 32;
       e = xmppuv_stanza_next(e, name, NULL)) {
    const char *v = attr != NULL ? xmppuv_stanza_attr(e, attr) : xmppuv_stanza_text(e, NULL);
    if (v != NULL) names[n++] = v;
  }
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      const char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && len + 1 < size; i++) {
    int w = snprintf(out + len, size - len, "%s%s", i ? " " : "", names[i]);
    if (w < 0) break;
    len += (size_t)w < size - len ? (size_t)w : size - len - 1;
  }
}

/* What a login offer is, for comparing two: the SASL2 mechanisms, the
 * channel-binding types (XEP-0474's hash covers both), FAST's mechanisms,
 * and whether SM and Bind2 can be inlined. */
static void offer_summary(const xmppuv_stanza_t *features, char *out, size_t size) {
  const xmppuv_stanza_t *auth = xmppuv_stanza_child(features, "authentication", XMPPUV__NS_SASL2);
  const xmppuv_stanza_t *in = xmppuv_stanza_child(auth, "inline", XMPPUV__NS_SASL2);
  char mechs[512], cbs[256], fast[256];
  name_set(auth, "mechanism", NULL, mechs, sizeof mechs);
  name_set(xmppuv_stanza_child(features, "sasl-channel-binding", XMPPUV__NS_SASL_CB),
           "channel-binding", "type", cbs, sizeof cbs);
  name_set(xmppuv_stanza_child(in, "fast", XMPPUV__NS_FAST), "mechanism", NULL, fast,
           sizeof fast);
  snprintf(out, size, "%d|%s|%s|%s|%d|%d", auth != NULL, mechs, cbs, fast,
           xmppuv_stanza_child(in, "sm", XMPPUV__NS_SM) != NULL,
           xmppuv_stanza_child(in, "bind", XMPPUV__NS_BIND2) != NULL);
}

/* The server's features after a one-flight login went out: still what it
 * was started from? Then they are this connection's features and the login
 * goes on; else the session ends for a new connection the long way. */
static void quick_check(xmppuv__session_t *s, xmppuv_stanza_t *features) {
  xmppuv__session_conn_t *c = &s->c;
  c->quick_checked = 1;
  take_max_bytes(c, features);
  char was[1200], now[1200];
  xmppuv_stanza_t *cached = NULL;
  int same = xmppuv_stanza_parse(c->auth_features, c->auth_features_len, &cached) == 0;
  if (same) {
    offer_summary(cached, was, sizeof was);
    offer_summary(features, now, sizeof now);
    same = strcmp(was, now) == 0;
  }
  xmppuv_stanza_unref(cached);
  keep_features(s, features);
  if (same) return;
  c->quick_mismatch = 1;
  xmppuv__session_fail(s, XMPPUV_ESTATE, "quick-start",
                       "the server's login offer changed since the last connection: logging "
                       "in again without the one-flight start",
                       NULL, 0, NULL);
}

/* Returns the event kind for the driver, if any. */
static xmppuv__session_event_kind_t on_features(xmppuv__session_t *s,
                                                xmppuv_stanza_t *features) {
  xmppuv__session_conn_t *c = &s->c;
  take_max_bytes(c, features);
  keep_features(s, features);
  if (!c->tls) {
    const xmppuv_stanza_t *starttls = xmppuv_stanza_child(features, "starttls", XMPPUV__NS_TLS);
    if (starttls != NULL && s->cfg.tls_required) {
      c->state = ST_STARTTLS;
      static const char req[] = "<starttls xmlns='" XMPPUV__NS_TLS "'/>";
      xmppuv__session_trace_out(s, req);
      int rc = xmppuv__session_write(s, req, sizeof req - 1);
      if (rc != 0) xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
      return XMPPUV__SESS_NOTHING;
    }
    if (s->cfg.tls_required) {
      /* No downgrade: a server (or someone in between) that does not offer
       * STARTTLS gets no credentials. */
      xmppuv__session_fail(s, XMPPUV_ETLSREQUIRED, NULL,
                           "the server does not offer STARTTLS and TLS is required", features,
                           1, NULL);
      return XMPPUV__SESS_NOTHING;
    }
  }
  if (!c->authenticated) {
    xmppuv__auth_start(s, features);
    return XMPPUV__SESS_NOTHING;
  }
  /* The authenticated stream: binding must be offered (RFC 6120 §7.2),
   * unless the login bound already (XEP-0386; the features may still list
   * <bind/> and <sm/>: nothing is bound or enabled twice). */
  int resumed_inline = c->resume_answer != NULL &&
                       strcmp(xmppuv_stanza_name(c->resume_answer), "resumed") == 0;
  if (!c->bind2_bound && !resumed_inline && !c->fast_invalidate &&
      xmppuv_stanza_child(features, "bind", XMPPUV__NS_BIND) == NULL) {
    xmppuv__session_fail(s, XMPPUV_EBIND, NULL, "the server offers no resource binding",
                         features, 0, NULL);
    return XMPPUV__SESS_NOTHING;
  }
  /* RFC 6121 §A: the session iq only where it is not marked optional. */
  const xmppuv_stanza_t *sess = xmppuv_stanza_child(features, "session", XMPPUV__NS_SESSION);
  c->session_required = sess != NULL && xmppuv_stanza_child(sess, "optional", NULL) == NULL;
  c->state = ST_AUTHENTICATED;
  c->auth_features_seen = 1;
  c->sm_offered = xmppuv_stanza_child(features, "sm", XMPPUV__NS_SM) != NULL;
  c->csi_offered = xmppuv_stanza_child(features, "csi", XMPPUV__NS_CSI) != NULL;
  return XMPPUV__SESS_AUTHENTICATED;
}

static const char *child_text(const xmppuv_stanza_t *el) {
  const char *t = xmppuv_stanza_text(el, NULL);
  return t ? t : "";
}

static void on_stream_error(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  const char *condition = NULL;
  const char *see_other = NULL;
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(el, NULL, XMPPUV__NS_STREAM_ERRORS); c != NULL;
       c = xmppuv_stanza_next(c, NULL, XMPPUV__NS_STREAM_ERRORS)) {
    if (strcmp(xmppuv_stanza_name(c), "text") == 0) continue;
    condition = xmppuv_stanza_name(c);
    if (strcmp(condition, "see-other-host") == 0) see_other = child_text(c);
    break;
  }
  const char *text = xmppuv_stanza_child_text(el, "text", XMPPUV__NS_STREAM_ERRORS);
  const xmppuv__stream_error_class_t *cls = xmppuv__stream_error_class(condition);
  xmppuv__session_fail(s, XMPPUV_ESTREAM, condition ? condition : "undefined-condition", text,
                       el, cls->action == XMPPUV__SERR_FATAL, see_other);
}

static void refuse_version(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  send_stream_error(s, "unsupported-version");
  xmppuv__session_fail(s, XMPPUV_EPROTO, "unsupported-version",
                       "the server does not speak XMPP 1.0", el, 1, NULL);
}

/* The server's stream header, or RFC 7395 <open/>. */
static xmppuv__session_event_kind_t on_open(xmppuv__session_t *s,
                                            const xmppuv_stanza_t *header) {
  const char *version = xmppuv_stanza_attr(header, "version");
  /* RFC 6120 §4.7.5: no version means a pre-1.0 server, which is refused.
   * But a server that ends the connection before it read our header sends
   * its own without one (it does not know ours yet), then its stream error:
   * Prosody (0.12 and 13) does so to every such connection when it shuts
   * down. That error is the answer (system-shutdown: come back later), so
   * the next element decides. */
  if (version == NULL || strncmp(version, "1.", 2) != 0) {
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "session",
                 "stream header without version 1.x: refused unless a stream error follows");
    s->c.no_version = 1;
    s->c.stream_open = 1;
    return XMPPUV__SESS_NOTHING;
  }
  const char *id = xmppuv_stanza_attr(header, "id");
  s->c.stream_open = 1;
  if (s->c.state == ST_OPENING) s->c.state = ST_FEATURES;
  xmppuv__logf(s->log, XMPPUV_LOG_TRACE, "wire-in", "<%s id='%s' version='%s'>",
               xmppuv_stanza_name(header), id ? id : "", version);
  return XMPPUV__SESS_OPEN;
}

/* RFC 7395 §3.6: <close/>, and §3.6.1 <close see-other-uri='...'/>. */
static xmppuv__session_event_kind_t on_ws_close(xmppuv__session_t *s,
                                                const xmppuv_stanza_t *el) {
  const char *uri = xmppuv_stanza_attr(el, "see-other-uri");
  if (uri != NULL && uri[0] != '\0') {
    /* Its own condition: only this may name a URL to follow (a
     * see-other-host stream error names a host, and may come before TLS). */
    xmppuv__session_fail(s, XMPPUV_ESTREAM, "see-other-uri",
                         "the server sends us to another WebSocket URL", el, 0, uri);
    return XMPPUV__SESS_NOTHING;
  }
  s->c.stream_open = 0;
  return XMPPUV__SESS_CLOSED;
}

/* One element from the server. */
static xmppuv__session_event_kind_t on_element_item(xmppuv__session_t *s,
                                                    xmppuv_stanza_t *el) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv__log_stanza(s->log, "in", el);
  if (c->framing == XMPPUV__FRAMING_WEBSOCKET) {
    if (xmppuv__session_is_in(el, "open", XMPPUV__NS_FRAMING)) return on_open(s, el);
    if (xmppuv__session_is_in(el, "close", XMPPUV__NS_FRAMING)) return on_ws_close(s, el);
  }
  if (xmppuv__session_is_in(el, "error", XMPPUV__NS_STREAMS)) {
    on_stream_error(s, el);
    return XMPPUV__SESS_NOTHING;
  }
  if (c->no_version) {
    refuse_version(s, el);
    return XMPPUV__SESS_NOTHING;
  }
  if (c->closing && c->state != ST_STREAMING) {
    /* RFC 6120 §4.4: nothing more goes out after our close, so a
     * negotiation step (features, SASL, bind) is left unanswered. */
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "session", "ignored <%s/> after closing the stream",
                 xmppuv_stanza_name(el));
    return XMPPUV__SESS_NOTHING;
  }
  switch (c->state) {
    case ST_FEATURES:
      if (xmppuv__session_is_in(el, "features", XMPPUV__NS_STREAMS)) return on_features(s, el);
      xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "session", "ignored <%s/> before features",
                   xmppuv_stanza_name(el));
      return XMPPUV__SESS_NOTHING;
    case ST_STARTTLS:
      if (xmppuv__session_is_in(el, "proceed", XMPPUV__NS_TLS)) {
        c->state = ST_TLS;
        return XMPPUV__SESS_STARTTLS;
      }
      if (xmppuv__session_is_in(el, "failure", XMPPUV__NS_TLS))
        xmppuv__session_fail(s, XMPPUV_ETLS, "failure", "the server refused STARTTLS", el, 0,
                             NULL);
      return XMPPUV__SESS_NOTHING;
    case ST_SASL:
      if (c->quick && !c->quick_checked && xmppuv__session_is_in(el, "features", XMPPUV__NS_STREAMS)) {
        quick_check(s, el);
        return XMPPUV__SESS_NOTHING;
      }
      xmppuv__auth_element(s, el);
      /* Authenticated: a new stream once the parser stops here (RFC 6120);
       * with SASL2 the same stream goes on, and its features come next. */
      if (c->authenticated && c->state != ST_FAILED) {
        if (!c->sasl2) {
          c->restart_sasl = 1;
        } else if (c->resume_answer != NULL &&
                   strcmp(xmppuv_stanza_name(c->resume_answer), "resumed") == 0) {
          /* Resumed inline: the session is ready now. XEP-0388 has the
           * features follow <success/>, but ejabberd 24.12 sends none
           * after a resumption (it goes on with the session: <r/>), so
           * nothing waits for them; Prosody's come later and are kept
           * (late_features). */
          c->state = ST_AUTHENTICATED;
          c->sm_offered = 1;
          c->csi_offered = 0;
          c->auth_features_seen = 0;
          c->late_features = 1;
          return XMPPUV__SESS_AUTHENTICATED;
        } else {
          c->state = ST_FEATURES;
        }
      }
      return XMPPUV__SESS_NOTHING;
    case ST_BINDING:
    case ST_LEGACY_SESSION:
      if (xmppuv__bind_is_reply(s, el)) {
        const char *jid = NULL;
        return xmppuv__bind_reply(s, el, &jid) == 1 ? XMPPUV__SESS_BOUND : XMPPUV__SESS_NOTHING;
      }
      break;
    case ST_AUTHENTICATED:
    case ST_STREAMING:
      break;
    default:
      return XMPPUV__SESS_NOTHING;
  }
  if (xmppuv__session_is_in(el, "features", XMPPUV__NS_STREAMS)) {
    if (c->late_features) {
      /* The features of a stream resumed inline, after the session went
       * on: kept for the app, nothing negotiated. */
      c->late_features = 0;
      take_max_bytes(c, el);
      keep_features(s, el);
      return XMPPUV__SESS_NOTHING;
    }
    /* Features again on a live stream (some servers re-send them): nothing
     * to negotiate twice. */
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "session", "ignored repeated stream features");
    return XMPPUV__SESS_NOTHING;
  }
  return XMPPUV__SESS_ELEMENT;
}

/* ---- API ------------------------------------------------------------------------ */

static void free_cfg(xmppuv__session_config_t *c) {
  xmppuv__free((void *)(uintptr_t)c->domain);
  xmppuv__free((void *)(uintptr_t)c->bare_jid);
  xmppuv__free((void *)(uintptr_t)c->username);
  xmppuv__free((void *)(uintptr_t)c->resource);
  xmppuv__free((void *)(uintptr_t)c->lang);
  xmppuv__free((void *)(uintptr_t)c->mechanisms);
  xmppuv__free((void *)(uintptr_t)c->user_agent_id);
  xmppuv__free((void *)(uintptr_t)c->software);
}

static void drop_binding(xmppuv__session_conn_t *c) {
  if (c->cb == NULL) return;
  xmppuv__secure_zero(c->cb, sizeof *c->cb);
  xmppuv__free(c->cb);
  c->cb = NULL;
}

/* Keep the connection's channel-binding data (a copy) for SASL. */
static int keep_binding(xmppuv__session_conn_t *c, const xmppuv__channel_binding_t *cb) {
  drop_binding(c);
  if (cb == NULL) return 0;
  c->cb = xmppuv__malloc(sizeof *c->cb);
  if (c->cb == NULL) return XMPPUV_ENOMEM;
  *c->cb = *cb;
  return 0;
}

/* The one place per-connection state starts afresh. */
static void reset_connection(xmppuv__session_t *s) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv__session_pending_t p;
  while (pop_pending(s, &p)) xmppuv_stanza_unref(p.el);
  xmppuv__free(c->pend);
  xmppuv__buf_free(&c->held);
  xmppuv__sasl_exchange_free(c->sasl);
  xmppuv__free(c->bound_jid);
  xmppuv__free(c->bind2_sm_enable);
  xmppuv__free(c->inline_resume);
  xmppuv__free_secret(c->fast_token);
  xmppuv__free(c->fast_token_mech);
  xmppuv__free_secret(c->new_token);
  xmppuv__free(c->new_token_expiry);
  xmppuv__free(c->new_token_mech);
  xmppuv__free(c->rejected_condition);
  xmppuv__free(c->rejected_text);
  xmppuv__free(c->auth_features);
  xmppuv_stanza_unref(c->inline_sm);
  xmppuv_stanza_unref(c->resume_answer);
  xmppuv__free(c->error_condition);
  xmppuv__free(c->error_text);
  xmppuv__free(c->see_other);
  xmppuv_stanza_unref(c->error_el);
  xmppuv__stanza_release(c->current);
  xmppuv_stanza_unref(c->features);
  xmppuv__free(c->features_text);
  drop_binding(c);
  memset(c, 0, sizeof *c);
}

int xmppuv__session_new(const xmppuv__session_config_t *cfg, xmppuv__session_t **out) {
  *out = NULL;
  if (cfg->domain == NULL || cfg->out == NULL) return XMPPUV_EINVAL;
  xmppuv__session_t *s = xmppuv__calloc(1, sizeof *s);
  if (s == NULL) return XMPPUV_ENOMEM;
  s->cfg = *cfg;
  /* The copies replace the caller's pointers (a failed one leaves NULL, so
   * nothing of the caller's is freed on the way out). */
  int rc = 0;
  s->cfg.domain = xmppuv__strdup_opt(cfg->domain, &rc);
  s->cfg.bare_jid = xmppuv__strdup_opt(cfg->bare_jid, &rc);
  s->cfg.username = xmppuv__strdup_opt(cfg->username, &rc);
  s->cfg.resource = xmppuv__strdup_opt(cfg->resource, &rc);
  s->cfg.lang = xmppuv__strdup_opt(cfg->lang, &rc);
  s->cfg.mechanisms = xmppuv__strdup_opt(cfg->mechanisms, &rc);
  s->cfg.user_agent_id = xmppuv__strdup_opt(cfg->user_agent_id, &rc);
  s->cfg.software = xmppuv__strdup_opt(cfg->software, &rc);
  if (rc == 0)
    rc = xmppuv__parser_new(XMPPUV__PARSE_STREAM, &cfg->limits, &parser_callbacks, s,
                            &s->parser);
  if (rc != 0) {
    free_cfg(&s->cfg);
    xmppuv__free(s);
    return rc;
  }
  s->log = cfg->log;
  s->out = cfg->out;
  *out = s;
  return 0;
}

void xmppuv__session_free(xmppuv__session_t *s) {
  if (s == NULL) return;
  reset_connection(s);
  xmppuv__parser_free(s->parser);
  xmppuv__buf_free(&s->scratch);
  free_cfg(&s->cfg);
  xmppuv__free(s);
}

int xmppuv__session_start(xmppuv__session_t *s, xmppuv__framing_t framing, int tls,
                          const xmppuv__channel_binding_t *cb) {
  reset_connection(s);
  s->c.framing = framing;
  s->c.tls = tls;
  int rc = keep_binding(&s->c, cb);
  return rc != 0 ? rc : restart_stream(s);
}

int xmppuv__session_tls_ready(xmppuv__session_t *s, const xmppuv__channel_binding_t *cb) {
  if (s->c.state != ST_TLS) return XMPPUV_ESTATE;
  s->c.tls = 1;
  int rc = keep_binding(&s->c, cb);
  return rc != 0 ? rc : restart_stream(s);
}

/* The first bytes of a plaintext stream are XML: '<' (after whitespace or
 * a byte-order mark at most). A server that answers otherwise does not
 * speak XMPP on this port as asked: say what it seems to speak (the
 * configuration is the app's to fix; README, "Errors"). */
static int check_first_bytes(xmppuv__session_t *s, const char *data, size_t len) {
  unsigned char b = (unsigned char)data[0];
  if (b == '<' || b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == 0xEF) return 0;
  const char *what;
  if (b >= 20 && b <= 23)
    what = "answered with TLS, not XML: this is a direct-TLS port (use XMPPUV_TLS_DIRECT, "
           "or the STARTTLS port, usually 5222)";
  else if (len >= 4 && memcmp(data, "HTTP", 4) == 0)
    what = "answered in HTTP: a web server, not an XMPP server (check host and port)";
  else
    what = "answered with something that is not XML: not an XMPP port (check host and port)";
  char text[256];
  snprintf(text, sizeof text, "the server %s", what);
  xmppuv__session_fail(s, XMPPUV_EWRONGSERVER, NULL, text, NULL, 0, NULL);
  return XMPPUV_EWRONGSERVER;
}

int xmppuv__session_feed(xmppuv__session_t *s, const char *data, size_t len) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->state == ST_IDLE) return XMPPUV_ESTATE;
  if (c->state == ST_FAILED || len == 0) return 0; /* nothing more matters */
  c->fed_since_idle += len;
  if (!c->got_bytes) {
    c->got_bytes = 1;
    if (c->framing == XMPPUV__FRAMING_STREAM && check_first_bytes(s, data, len) != 0) return 0;
  }
  if (held_left(c) || c->hold != HOLD_NONE || c->yielded) {
    /* Behind what is held, in order (TLS data after <proceed/>, input
     * waiting for credentials or for the engine to catch up). */
    if (xmppuv__buf_append(&c->held, data, len) != 0) return XMPPUV_ENOMEM;
    if (c->hold == HOLD_NONE) c->hold = c->yielded ? HOLD_CREDENTIALS : HOLD_FLOW;
    parse_held(s);
    return 0;
  }
  return parse(s, data, len);
}

int xmppuv__session_step(xmppuv__session_t *s, xmppuv__session_event_t *ev) {
  xmppuv__session_conn_t *c = &s->c;
  memset(ev, 0, sizeof *ev);
  /* The library's last reference to the element: one the app kept leaves
   * the parser's pool now, so that it is the app's alone. */
  xmppuv__stanza_release(c->current);
  c->current = NULL;
  /* TLS bytes given out with a STARTTLS event are the driver's now. */
  if (c->hold == HOLD_NONE && !held_left(c) && c->held.cap > 0) {
    xmppuv__buf_free(&c->held);
    c->held_off = 0;
  }
  xmppuv__session_pending_t p;
  if (!pop_pending(s, &p)) {
    /* The failure comes after everything queued before it. */
    if (!c->fail_pending) return 0;
    c->fail_pending = 0;
    ev->kind = XMPPUV__SESS_FAILED;
    ev->error = c->error;
    ev->see_other = c->see_other;
    ev->quick_mismatch = c->quick_mismatch;
    return 1;
  }
  ev->kind = p.kind;
  switch (p.kind) {
    case XMPPUV__SESS_ELEMENT:
      c->current = p.el;
      ev->el = p.el;
      parse_held(s); /* room again for what waits */
      break;
    case XMPPUV__SESS_STARTTLS:
      /* What followed <proceed/> is TLS, not XML of this stream. */
      ev->rest = c->held.data != NULL ? c->held.data + c->held_off : NULL;
      ev->rest_len = c->held.len - c->held_off;
      c->held_off = c->held.len;
      c->hold = HOLD_NONE;
      break;
    case XMPPUV__SESS_CREDENTIALS:
      if (c->sasl != NULL) xmppuv__sasl_exchange_need(c->sasl, &ev->need);
      break;
    case XMPPUV__SESS_AUTHENTICATED:
      ev->sm_offered = p.sm_offered;
      ev->csi_offered = p.csi_offered;
      ev->features_read = p.features;
      ev->bound_jid = c->bind2_bound ? c->bound_jid : NULL;
      ev->inline_sm = c->bind2_bound ? c->inline_sm : NULL;
      ev->resume_inline = c->resume_sent;
      ev->resume_answer = c->resume_answer;
      ev->fast_used = c->fast_used;
      ev->sasl2_used = c->sasl2;
      ev->cb_used = c->fast_used ? c->fast_cb : xmppuv__mech_is_plus(c->mech);
      ev->strong_used = c->fast_used || (c->mech != XMPPUV__MECH_PLAIN &&
                                         c->mech != XMPPUV__MECH_ANONYMOUS &&
                                         c->mech != XMPPUV__MECH_NONE);
      ev->token = c->new_token;
      ev->token_mech = c->new_token_mech;
      ev->token_expiry = c->new_token_expiry;
      break;
    case XMPPUV__SESS_BOUND:
      ev->full_jid = c->bound_jid;
      break;
    case XMPPUV__SESS_TOKEN_REJECTED:
      ev->error.code = XMPPUV_ETOKEN;
      ev->error.fatal = 0;
      ev->error.condition = c->rejected_condition;
      ev->error.text = c->rejected_text;
      break;
    default:
      break;
  }
  return 1;
}

int xmppuv__session_password(xmppuv__session_t *s, const char *password) {
  return xmppuv__auth_password(s, password);
}

int xmppuv__session_keys(xmppuv__session_t *s, const xmppuv__scram_keys_t *keys) {
  return xmppuv__auth_keys(s, keys);
}

void xmppuv__session_no_credentials(xmppuv__session_t *s, int status) {
  xmppuv__session_fail(s, status, NULL, "no credentials to authenticate with", NULL,
                       status != XMPPUV_ENOMEM, NULL);
}

void xmppuv__session_offer_keys(xmppuv__session_t *s,
                                const xmppuv__scram_keys_t *const *keys, size_t n) {
  s->n_offered = 0;
  for (size_t i = 0; i < n && s->n_offered < 3; i++)
    if (keys[i] != NULL) s->offered[s->n_offered++] = keys[i];
}

int xmppuv__session_take_keys(xmppuv__session_t *s, xmppuv__scram_keys_t **out) {
  *out = NULL;
  xmppuv__sasl_exchange_t *x = s->c.sasl;
  if (x == NULL || !xmppuv__mech_is_scram(xmppuv__sasl_exchange_mech(x)) ||
      xmppuv__sasl_exchange_used_cached_keys(x))
    return 0;
  int rc = xmppuv__sasl_exchange_export_keys(x, out);
  return rc == XMPPUV_ESTATE ? 0 : rc;
}

int xmppuv__session_bind(xmppuv__session_t *s) {
  if (s->c.state != ST_AUTHENTICATED) return XMPPUV_ESTATE;
  s->c.state = ST_BINDING;
  int rc = xmppuv__bind_send(s);
  if (rc != 0) xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
  return rc;
}

int xmppuv__session_close(xmppuv__session_t *s) {
  if (s->c.closing) return 0;
  s->c.closing = 1;
  static const char end[] = "</stream:stream>";
  static const char ws_close[] = "<close xmlns='" XMPPUV__NS_FRAMING "'/>";
  int ws = s->c.framing == XMPPUV__FRAMING_WEBSOCKET;
  xmppuv__session_trace_out(s, ws ? ws_close : end);
  return ws ? xmppuv__session_write(s, ws_close, sizeof ws_close - 1)
            : xmppuv__session_write(s, end, sizeof end - 1);
}

int xmppuv__session_is_open(const xmppuv__session_t *s) { return s->c.stream_open; }

size_t xmppuv__session_peer_max_bytes(const xmppuv__session_t *s) {
  return s->c.peer_max_bytes;
}

int xmppuv__session_sasl2_inline(xmppuv__session_t *s, const xmppuv__sasl2_inline_t *in) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv__free(c->bind2_sm_enable);
  xmppuv__free(c->inline_resume);
  xmppuv__free_secret(c->fast_token);
  xmppuv__free(c->fast_token_mech);
  c->bind2_sm_enable = c->inline_resume = c->fast_token = c->fast_token_mech = NULL;
  c->fast_request = in->request_token;
  c->fast_invalidate = in->invalidate;
  c->was_sasl2 = in->was_sasl2;
  c->was_cb = in->was_cb;
  c->was_strong = in->was_strong;
  c->downgrade_fatal = in->downgrade_fatal;
  int rc = 0;
  c->inline_resume = xmppuv__strdup_opt(in->resume, &rc);
  c->bind2_sm_enable = xmppuv__strdup_opt(in->enable, &rc);
  if (in->token != NULL && in->token_mech != NULL) {
    c->fast_token = xmppuv__strdup_opt(in->token, &rc);
    c->fast_token_mech = xmppuv__strdup_opt(in->token_mech, &rc);
  }
  return rc;
}

const xmppuv_stanza_t *xmppuv__session_features(xmppuv__session_t *s) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->features == NULL && c->features_text != NULL &&
      xmppuv_stanza_parse(c->features_text, c->features_len, &c->features) != 0)
    c->features = NULL;
  return c->features;
}

int xmppuv__session_quick_start(xmppuv__session_t *s, const char *features, size_t len) {
  xmppuv__session_conn_t *c = &s->c;
  if (!(c->tls || s->cfg.allow_plain_insecure) || !s->cfg.sasl2 || c->state != ST_OPENING ||
      c->stream_open)
    return XMPPUV_ESTATE;
  xmppuv_stanza_t *f = NULL;
  int rc = xmppuv_stanza_parse(features, len, &f);
  if (rc != 0) return rc == XMPPUV_ENOMEM ? rc : XMPPUV_EINVAL;
  if (xmppuv_stanza_child(f, "authentication", XMPPUV__NS_SASL2) == NULL) {
    xmppuv_stanza_unref(f);
    return XMPPUV_EINVAL;
  }
  /* The text the features would have come in, for the app and for the
   * check when the server's arrive. */
  xmppuv__free(c->features_text);
  xmppuv_stanza_unref(c->features);
  c->features = NULL;
  c->features_text = xmppuv__strndup(features, len);
  c->features_len = c->features_text != NULL ? len : 0;
  c->quick = 1;
  xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl",
               "one-flight login: starting from the features of the last connection");
  xmppuv__auth_start(s, f);
  xmppuv_stanza_unref(f);
  if (!c->quick) {
    /* auth_start would not send this early: the features decide. */
    xmppuv__free(c->auth_features);
    c->auth_features = NULL;
    c->auth_features_len = 0;
    return XMPPUV_ESTATE;
  }
  return 0;
}

const char *xmppuv__session_auth_features(const xmppuv__session_t *s, size_t *len) {
  *len = s->c.auth_features_len;
  return s->c.auth_features;
}

const char *xmppuv__session_mechanism(const xmppuv__session_t *s) {
  if (s->c.fast_used) return s->c.fast_token_mech;
  return s->c.mech != XMPPUV__MECH_NONE ? xmppuv__mech_name(s->c.mech) : NULL;
}

void xmppuv__session_read_end(xmppuv__session_t *s) { xmppuv__parser_trim(s->parser); }

int xmppuv__session_idle(xmppuv__session_t *s) {
  /* Idle between stanzas: give back what only negotiation or a busy moment
   * needed (expat's ~12 KB until the next input and the event queue; once
   * streaming, SASL and channel-binding state too): thousands of mostly
   * idle connections per process are the norm. The engine took the SCRAM
   * keys at AUTHENTICATED. */
  xmppuv__session_conn_t *c = &s->c;
  if (c->pend_len > 0 || held_left(c)) return 0;
  /* A read of a busy stream (a firehose, a history fetch) ends between
   * stanzas whenever the transport hands over whole messages (a
   * WebSocket): building expat again for the next read would cost more
   * than it gives back. A small read is the idle case. */
  size_t fed = c->fed_since_idle;
  c->fed_since_idle = 0;
  if (fed >= IDLE_BUSY_READ) return 0;
  /* In every state: while negotiating, a client spends most of its time
   * waiting for the server's next answer, and a thousand clients started
   * at once would otherwise each hold a parser through all of it (the
   * peak that the allocator then keeps as the process's memory). */
  xmppuv__parser_release(s->parser);
  xmppuv__free(c->pend);
  c->pend = NULL;
  c->pend_cap = c->pend_head = 0;
  xmppuv__buf_free(&c->held);
  c->held_off = 0;
  if (c->state != ST_STREAMING) return 1;
  xmppuv__buf_free(&s->scratch); /* negotiation's element builder */
  xmppuv__sasl_exchange_free(c->sasl);
  c->sasl = NULL;
  drop_binding(c);
  return 1;
}

int xmppuv__session_wants_input(const xmppuv__session_t *s) {
  const xmppuv__session_conn_t *c = &s->c;
  return c->hold == HOLD_NONE && !held_left(c) && !c->yielded;
}

int xmppuv__session_pending(const xmppuv__session_t *s) {
  return s->c.pend_len > 0 || s->c.fail_pending;
}
