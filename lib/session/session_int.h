/* The session's state, shared by its steps (session.c: framing, the queue,
 * features and stream errors; auth.c: RFC 6120 SASL; bind.c: resource
 * binding). Nothing outside lib/session includes this. */
#ifndef XMPPUV_SESSION_INT_H
#define XMPPUV_SESSION_INT_H

#include "sasl/exchange.h"
#include "session/session.h"

typedef enum {
  ST_IDLE,
  ST_OPENING,        /* header sent, waiting for the server's */
  ST_FEATURES,       /* header received, waiting for features */
  ST_STARTTLS,       /* <starttls/> sent */
  ST_TLS,            /* the driver runs the TLS handshake */
  ST_SASL,           /* <auth/> sent (or waiting for credentials to send it) */
  ST_AUTHENTICATED,  /* features of the authenticated stream read */
  ST_BINDING,        /* bind iq sent */
  ST_LEGACY_SESSION, /* RFC 3921 session iq sent */
  ST_STREAMING,
  ST_FAILED
} xmppuv__session_state_t;

/* What a step will say: made while parsing, handed out in order. */
typedef struct xmppuv__session_pending {
  xmppuv__session_event_kind_t kind;
  xmppuv_stanza_t *el; /* ELEMENT: one reference */
  int sm_offered;      /* AUTHENTICATED */
  int csi_offered;     /* AUTHENTICATED */
  int features;        /* AUTHENTICATED: ... read from the features */
  int bound;           /* AUTHENTICATED: Bind2 bound (bound_jid, inline_sm) */
} xmppuv__session_pending_t;

/* Everything that belongs to one connection, reset in one place
 * (reset_connection in session.c). */
/* Why input is held (see the held buffer below). */
typedef enum { HOLD_NONE, HOLD_FLOW, HOLD_RESTART, HOLD_CREDENTIALS } xmppuv__hold_t;

typedef struct xmppuv__session_conn {
  xmppuv__session_state_t state;
  xmppuv__framing_t framing;
  int tls;
  int authenticated;
  int closing;     /* our </stream:stream> or <close/> is out */
  int stream_open; /* the server's header arrived */
  int no_version;  /* its header had no version 1.x: see on_open() */
  int got_bytes;   /* the server sent something on this connection */
  /* The connection's channel-binding data while SASL may need it (NULL
   * without TLS, and given back once streaming: xmppuv__session_idle). */
  xmppuv__channel_binding_t *cb;
  xmppuv__mech_t mech; /* the SASL mechanism used, once chosen */

  /* Events made while parsing and not yet stepped, oldest first (a ring);
   * backlog counts the ELEMENT ones (flow control). */
  xmppuv__session_pending_t *pend;
  size_t pend_cap, pend_head, pend_len;
  size_t backlog;
  int restart_sasl; /* <success/> was handled: restart once the parser stops */
  /* Input not parsed yet (held[held_off..]): after a restart point
   * (<proceed/>, <success/>) until that item is handled, since it belongs to
   * TLS or to the next stream; or while the queue is full (flow control:
   * what a server sends is parsed only as fast as it is handled, so memory
   * stays bounded however many small elements come in one read). */
  xmppuv__buf_t held;
  size_t held_off;
  /* Bytes fed since the last xmppuv__session_idle(): a busy stream keeps
   * its parser between reads. */
  size_t fed_since_idle;
  xmppuv__hold_t hold;
  int yielded; /* the parser stopped after an element that waits for credentials */

  /* SASL */
  xmppuv__sasl_exchange_t *sasl;
  /* A failure not yet given out as an event. */
  int fail_pending;

  /* what the authenticated stream's features said */
  int session_required;
  int sm_offered;
  int csi_offered; /* XEP-0352 */
  int auth_features_seen; /* ... read from the authenticated stream's features */
  int late_features; /* resumed inline (SASL2): features may follow */
  int sasl2;       /* this login is XEP-0388's (no stream restart after it) */
  int sasl2_unusable; /* SASL2 offered nothing usable: RFC 6120 SASL instead */
  char *inline_resume;   /* xmppuv__session_sasl2_inline() */
  char *bind2_sm_enable;
  int resume_sent;       /* the login carries <resume/> */
  /* FAST (XEP-0484): what the engine gave (xmppuv__session_sasl2_inline),
   * what this login does with it, and what <success/> gave back. */
  char *fast_token; /* wiped when freed */
  char *fast_token_mech;
  int fast_request;
  int fast_invalidate;
  int fast_used;               /* logging in with the token */
  int fast_cb;                 /* ... with channel binding */
  int fast_rejected;           /* ... and the server said no */
  const char *fast_requested;  /* the HT mechanism <request-token/> named
                                  (static: xmppuv__ht name list), or NULL */
  char fast_requested_buf[32];
  char *new_token;             /* <success/>'s <token token/>, wiped */
  char *new_token_expiry;
  char *new_token_mech;
  char *rejected_condition, *rejected_text;
  int was_sasl2, was_cb, was_strong, downgrade_fatal; /* xmppuv__sasl2_inline_t */
  /* One-flight login: the features the SASL2 login started from (text),
   * and whether it went out before the server's (quick), checked once
   * they came (quick_checked), or no longer fit them (quick_mismatch). */
  char *auth_features;
  size_t auth_features_len;
  int quick, quick_checked, quick_mismatch;
  xmppuv_stanza_t *resume_answer; /* <success/>'s <resumed/>/<failed/> (a ref) */
  int bind2;        /* the login asked to bind (XEP-0386) */
  int bind2_bound;  /* ... and the server bound: no bind iq */
  xmppuv_stanza_t *inline_sm; /* the answer to the inline <enable/> (a ref) */
  size_t peer_max_bytes; /* XEP-0478 max-bytes last listed, 0 = none */
  /* The last stream features of this connection, kept as text (a tree of
   * Prosody's costs 3.5 KB per idle client, its text 0.6 KB) and parsed
   * again only when asked for (xmppuv__session_features). */
  char *features_text;
  size_t features_len;
  xmppuv_stanza_t *features; /* the parsed copy, once asked for */
  unsigned bind_seq;
  char bind_id[24];
  char *bound_jid;

  /* The last failure, for its event. */
  xmppuv_error_t error;
  char *error_condition;
  char *error_text;
  char *see_other;
  xmppuv_stanza_t *error_el;
  /* The element an event gave out (kept until the next step). */
  xmppuv_stanza_t *current;
} xmppuv__session_conn_t;

struct xmppuv__session {
  xmppuv__session_config_t cfg; /* strings owned */
  const xmppuv__log_t *log;
  xmppuv__buf_t *out;
  xmppuv__parser_t *parser;
  const xmppuv__scram_keys_t *offered[3];
  size_t n_offered;
  xmppuv__buf_t scratch; /* for building elements */
  xmppuv__session_conn_t c;
};

/* session.c */
/* Queue an event for the next steps (el: a reference is taken). */
void xmppuv__session_push(xmppuv__session_t *s, xmppuv__session_event_kind_t kind,
                          xmppuv_stanza_t *el);
/* The exchange waits for credentials: say so, and parse nothing more until
 * they come (what the server sends after must be handled after them). */
void xmppuv__session_wait_credentials(xmppuv__session_t *s);
/* They came (or not): go on with what was held. */
void xmppuv__session_credentials_given(xmppuv__session_t *s);
int xmppuv__session_write(xmppuv__session_t *s, const char *data, size_t len);
void xmppuv__session_trace_out(xmppuv__session_t *s, const char *what);
/* Fail once: the event goes out at the next step (or the current one). */
void xmppuv__session_fail(xmppuv__session_t *s, int code, const char *condition,
                          const char *text, const xmppuv_stanza_t *el, int fatal,
                          const char *see_other);
int xmppuv__session_is_in(const xmppuv_stanza_t *el, const char *name, const char *ns);

/* auth.c: RFC 6120 SASL around the exchange. */
void xmppuv__auth_start(xmppuv__session_t *s, const xmppuv_stanza_t *features);
/* A SASL element while in ST_SASL: 1 if it was one. */
int xmppuv__auth_element(xmppuv__session_t *s, const xmppuv_stanza_t *el);
/* The credentials the exchange waited for: send what it held back. */
int xmppuv__auth_password(xmppuv__session_t *s, const char *password);
int xmppuv__auth_keys(xmppuv__session_t *s, const xmppuv__scram_keys_t *keys);

/* bind.c: RFC 6120 §7 resource binding and the RFC 3921 session. */
int xmppuv__bind_send(xmppuv__session_t *s);
int xmppuv__bind_is_reply(const xmppuv__session_t *s, const xmppuv_stanza_t *el);
/* Handle the reply: 1 and *full_jid when bound, 0 when waiting for more. */
int xmppuv__bind_reply(xmppuv__session_t *s, const xmppuv_stanza_t *el,
                       const char **full_jid);

#endif
