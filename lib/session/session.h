/* Stream negotiation (RFC 6120), the I/O-free core of one connection:
 * stream header (or RFC 7395 framing), features, STARTTLS, SASL, resource
 * binding, then the stream of stanzas.
 *
 * Pull, not push: bytes from the server go in with xmppuv__session_feed(),
 * which only parses and queues what arrived (nothing runs on expat's
 * stack); xmppuv__session_step() then handles one queued item at a time
 * and says what the driver must know or do (an event). Bytes for the server
 * are appended to the config's `out` buffer, the engine's one output. No
 * clock, no callbacks: the engine times the negotiation and decides.
 *
 * Credentials: the session never asks the app. When the SASL exchange needs
 * the password (PLAIN) or SCRAM keys, a step says so (SESS_CREDENTIALS) and
 * the engine answers with xmppuv__session_password() or
 * xmppuv__session_keys(); keys learned from a successful login come back
 * through xmppuv__session_take_keys() for the next connection. */
#ifndef XMPPUV_SESSION_H
#define XMPPUV_SESSION_H

#include <stddef.h>

#include "sasl/exchange.h"
#include "util/buf.h"
#include "util/log.h"
#include "xml/parser.h"
#include "xmppuv.h"

typedef struct xmppuv__session xmppuv__session_t;

/* How the stream is framed on the transport: one XML stream with a
 * <stream:stream> header (TCP, RFC 6120), or one element per message with
 * <open/> and <close/> (WebSocket, RFC 7395). The transport decides. */
typedef enum {
  XMPPUV__FRAMING_STREAM = 0,
  XMPPUV__FRAMING_WEBSOCKET
} xmppuv__framing_t;

/* The channel-binding data the TLS layer can give for this connection,
 * strongest first (read when TLS is up: tls-unique and tls-exporter are
 * fixed once the handshake is done). */
#define XMPPUV__CB_MAX_TYPES 3
#define XMPPUV__CB_MAX_DATA 64
typedef struct xmppuv__channel_binding {
  size_t n;
  struct {
    char type[24];
    unsigned char data[XMPPUV__CB_MAX_DATA];
    size_t len;
  } b[XMPPUV__CB_MAX_TYPES];
} xmppuv__channel_binding_t;

typedef struct xmppuv__session_config {
  const char *domain;   /* 'to' of the stream header */
  const char *bare_jid; /* 'from' once TLS is up (RFC 6120 §4.7.1) */
  const char *username; /* SASL authcid: the JID's localpart */
  const char *resource; /* requested resource, or NULL */
  const char *lang;     /* xml:lang, or NULL */
  int tls_required;     /* refuse to go on without TLS */
  int allow_anonymous;
  int allow_external;       /* a client certificate is configured (XEP-0178) */
  int allow_plain_insecure; /* PLAIN without TLS (TLS disabled explicitly) */
  int have_credentials;     /* a password or a way to get one */
  const char *mechanisms;   /* allow-list "A,B" or NULL for all */
  int sasl2;                 /* XEP-0388 when the server offers it */
  const char *user_agent_id; /* SASL2 <user-agent id='...'>: a UUID */
  const char *software;      /* SASL2 <software>, or NULL; Bind2's <tag> */
  xmppuv__xml_limits_t limits;
  const xmppuv__log_t *log;
  xmppuv__buf_t *out; /* where bytes for the server go (borrowed) */
} xmppuv__session_config_t;

typedef enum {
  XMPPUV__SESS_NOTHING = 0,   /* handled inside (or nothing queued) */
  XMPPUV__SESS_OPEN,          /* the server's stream header (status open) */
  XMPPUV__SESS_RESTART,       /* SASL done: a new stream header went out
                                 (status opening) */
  XMPPUV__SESS_STARTTLS,      /* <proceed/>: start TLS now; rest = TLS bytes
                                 that came after it */
  XMPPUV__SESS_CREDENTIALS,   /* SASL waits for need */
  XMPPUV__SESS_AUTHENTICATED, /* the authenticated stream's features are
                                 read: resume (SM) or xmppuv__session_bind() */
  XMPPUV__SESS_TOKEN_REJECTED, /* the server refused the FAST token: error
                                  (condition, text); the login goes on with
                                  the password on the same stream */
  XMPPUV__SESS_BOUND,         /* resource bound: full_jid */
  XMPPUV__SESS_ELEMENT,       /* an element after negotiation (stanzas, SM
                                 nonzas): el */
  XMPPUV__SESS_FAILED,        /* the stream failed (a negotiation error, a
                                 stream error, bad XML): error; the session is
                                 dead, drop the connection */
  XMPPUV__SESS_CLOSED         /* the server ended the stream */
} xmppuv__session_event_kind_t;

/* Everything borrowed until the next call on the session. */
typedef struct xmppuv__session_event {
  xmppuv__session_event_kind_t kind;
  int sm_offered;          /* AUTHENTICATED: the features had <sm/> */
  int csi_offered;         /* AUTHENTICATED: ... and <csi/> (XEP-0352) */
  /* AUTHENTICATED: the two above come from the authenticated stream's
   * features; 0 when a SASL2 login resumed inline, which does not wait for
   * them (sm_offered is 1 then, csi_offered 0: unknown). */
  int features_read;
  /* AUTHENTICATED after a SASL2 login that bound a resource (XEP-0386):
   * the full JID, and the answer to the <enable/> sent inline (<enabled/>
   * or <failed/>, borrowed), or NULL if none was asked for. */
  const char *bound_jid;
  const xmppuv_stanza_t *inline_sm;
  /* AUTHENTICATED after a SASL2 login that carried <resume/> (XEP-0198
   * inline resumption): resume_inline is 1, and resume_answer is the
   * <resumed/> or <failed/> of the server's <success/> (borrowed), or NULL
   * if it gave none. */
  int resume_inline;
  const xmppuv_stanza_t *resume_answer;
  /* AUTHENTICATED: the login used the FAST token (fast_used), and the
   * server gave a (new) token in <success/>: token, its mechanism and
   * expiry (XEP-0082 text, "" if none given), or token NULL. */
  int fast_used;
  const char *token, *token_mech, *token_expiry;
  /* AUTHENTICATED: what this login was, for downgrade protection. */
  int sasl2_used, cb_used, strong_used;
  const char *full_jid;    /* BOUND */
  xmppuv_stanza_t *el;     /* ELEMENT */
  xmppuv_error_t error;    /* FAILED, TOKEN_REJECTED */
  const char *see_other;   /* FAILED: see-other-host "host[:port]", or (condition
                              "see-other-uri", RFC 7395 <close/>) a URL; or NULL */
  /* FAILED: a one-flight login (xmppuv__session_quick_start) went out
   * from features the server no longer sends: not an error for the app;
   * connect again at once, the long way. */
  int quick_mismatch;
  const char *rest;        /* STARTTLS */
  size_t rest_len;
  xmppuv__sasl_need_t need; /* CREDENTIALS */
} xmppuv__session_event_t;

/* cfg strings are copied; cfg->out and cfg->log are borrowed. 0,
 * XMPPUV_EINVAL, XMPPUV_ENOMEM. */
int xmppuv__session_new(const xmppuv__session_config_t *cfg, xmppuv__session_t **out);
void xmppuv__session_free(xmppuv__session_t *s);

/* A connection is up (tls: TLS already active, direct TLS; cb: its binding
 * data, or NULL): open the stream. Resets all per-connection state (one
 * place), so one session object serves every connection of a client. */
int xmppuv__session_start(xmppuv__session_t *s, xmppuv__framing_t framing, int tls,
                          const xmppuv__channel_binding_t *cb);
/* The STARTTLS handshake finished: restart the stream. */
int xmppuv__session_tls_ready(xmppuv__session_t *s, const xmppuv__channel_binding_t *cb);

/* Input is parsed this many bytes at a time, and no more once enough
 * elements wait for xmppuv__session_step(); what is left is copied and held
 * until they are taken. A caller that feeds less than two slices at once
 * and takes the elements in between has at most a slice copied, and none
 * when the elements are few. A feed this big also counts as a busy
 * stream's (xmppuv__session_idle keeps its parser). */
#define XMPPUV__FEED_SLICE 4096u

/* Bytes from the server: parsed and queued for xmppuv__session_step() (a
 * parse error is queued too, after what came before it). 0, or
 * XMPPUV_ENOMEM (input lost: drop the connection), XMPPUV_ESTATE. */
int xmppuv__session_feed(xmppuv__session_t *s, const char *data, size_t len);
/* Handle the next queued item: 1 and *ev (kind NOTHING when it was handled
 * inside), or 0 when nothing is queued. */
int xmppuv__session_step(xmppuv__session_t *s, xmppuv__session_event_t *ev);

/* Answers to SESS_CREDENTIALS. The password is used at once and not kept;
 * keys are copied. Errors are also the session's failure (a FAILED event
 * follows at the next step): XMPPUV_ESTATE, XMPPUV_ENOMEM, ... */
int xmppuv__session_password(xmppuv__session_t *s, const char *password);
int xmppuv__session_keys(xmppuv__session_t *s, const xmppuv__scram_keys_t *keys);
/* The app has no credentials to give (status: why): the session fails. */
void xmppuv__session_no_credentials(xmppuv__session_t *s, int status);
/* Keys a new SCRAM exchange may use when they fit the server's salt (the
 * engine's cache, borrowed: it must outlive their use, up to the next
 * xmppuv__session_start()). Up to 3. */
void xmppuv__session_offer_keys(xmppuv__session_t *s,
                                const xmppuv__scram_keys_t *const *keys, size_t n);
/* After SESS_AUTHENTICATED: the SCRAM keys of that login, for the cache
 * (*out owned by the caller; NULL when it was not SCRAM or used cached
 * keys). 0 or XMPPUV_ENOMEM. */
int xmppuv__session_take_keys(xmppuv__session_t *s, xmppuv__scram_keys_t **out);

/* What the next login of this connection carries besides a password
 * exchange (XEP-0388 inline features) and what it must not fall below;
 * copied, call after
 * xmppuv__session_start(). 0 or XMPPUV_ENOMEM.
 *
 * resume: the <resume previd h/> of the session the engine would resume,
 * or NULL; it goes in where the server lists SM among SASL2's inline
 * features. enable: the <enable/> to put inside Bind2, or NULL. Bind2
 * (XEP-0386) is used where offered, when the app asked for no resource and
 * either there is nothing to resume or the resumption is inline too: the
 * bind is then its fallback (a server that resumes ignores it); binding
 * beside a classic <resume/> would start a new session instead.
 *
 * FAST (XEP-0484): token/token_mech log in with that token where the server
 * offers FAST with that mechanism and the connection has its channel
 * binding; otherwise, with request_token, a login with another mechanism
 * asks for a token (the strongest HT mechanism both sides can use). */
typedef struct xmppuv__sasl2_inline {
  const char *resume;
  const char *enable;
  const char *token;
  const char *token_mech;
  int request_token;
  /* Downgrade protection across connections: an earlier login on this
   * client used SASL2 (was_sasl2), channel binding (was_cb), or a mechanism
   * stronger than PLAIN (was_strong). A server that no longer offers what
   * was used is logged at warn level, or with downgrade_fatal the login is
   * refused (XMPPUV_EDOWNGRADED, fatal). */
  int was_sasl2, was_cb, was_strong;
  int downgrade_fatal;
  /* Log in with the token only to invalidate it (XEP-0484 <fast
   * invalidate='true'/>): nothing else inline, and no other mechanism if
   * the token cannot be used (the session fails with XMPPUV_ETOKEN). */
  int invalidate;
} xmppuv__sasl2_inline_t;
int xmppuv__session_sasl2_inline(xmppuv__session_t *s, const xmppuv__sasl2_inline_t *in);
/* One-flight login (Conversations' "quick start"): on a TLS-protected
 * stream right after our header, start the SASL2 login from the features an
 * earlier connection to this server sent (text, as
 * xmppuv__session_auth_features() gave it) instead of waiting for the
 * server's: header and <authenticate/> go out in one write. Call after
 * xmppuv__session_sasl2_inline(). When the server's features come they are
 * checked: the same SASL2 mechanisms and channel-binding types, and what
 * the login used inline still offered; otherwise the session fails with
 * quick_mismatch set. 0 (sent), XMPPUV_ESTATE (not now: no TLS, SASL2 off,
 * or not right after the header), XMPPUV_EINVAL (text that is not features
 * offering SASL2), XMPPUV_ENOMEM. */
int xmppuv__session_quick_start(xmppuv__session_t *s, const char *features, size_t len);
/* After SESS_AUTHENTICATED: the features the SASL2 login of this
 * connection started from (text, borrowed until the next
 * xmppuv__session_start()), or NULL (not a SASL2 login). */
const char *xmppuv__session_auth_features(const xmppuv__session_t *s, size_t *len);
/* Bind a resource (after SESS_AUTHENTICATED, or after a failed resumption). */
int xmppuv__session_bind(xmppuv__session_t *s);
/* Write </stream:stream> or <close/> (graceful close). */
int xmppuv__session_close(xmppuv__session_t *s);
/* Non-zero once the server's stream header arrived on this connection. */
int xmppuv__session_is_open(const xmppuv__session_t *s);
/* The largest stanza the server said it takes (XEP-0478 max-bytes, in the
 * last features of this connection that listed <limits/>), or 0 if none
 * said. */
size_t xmppuv__session_peer_max_bytes(const xmppuv__session_t *s);
/* The last stream features element of this connection (borrowed: valid
 * until the next features or the next xmppuv__session_start()), or NULL
 * before the first (and when there was no memory for it). Kept as text,
 * parsed on the first call. */
const xmppuv_stanza_t *xmppuv__session_features(xmppuv__session_t *s);
/* The SASL mechanism used on this connection, or NULL. */
const char *xmppuv__session_mechanism(const xmppuv__session_t *s);
/* Zero while the session holds input it cannot handle yet (waiting for
 * credentials, or for the engine to catch up): the driver stops reading
 * until it says 1 again. */
int xmppuv__session_wants_input(const xmppuv__session_t *s);
/* Events wait for xmppuv__session_step(). */
int xmppuv__session_pending(const xmppuv__session_t *s);
/* Give the idle parser's memory back (nothing queued, between stanzas).
 * 1 if the stream looks idle (the memory went back), 0 if it is busy: a
 * big read's slices keep what the next one needs. */
int xmppuv__session_idle(xmppuv__session_t *s);
/* A small read (no burst, or a burst's last) has been fed: what a busy
 * stream keeps between its reads (the stanzas' pool) goes back. */
void xmppuv__session_read_end(xmppuv__session_t *s);

#endif
