/* xmppuv: the client.
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * A client lives on the caller's libuv loop and runs the whole stack: DNS,
 * TCP, TLS, stream negotiation, SASL, resource binding, Stream Management,
 * reconnection. Every function here must be called on the loop's thread;
 * every callback runs on it. Every function may be called from inside any
 * callback, xmppuv_client_close() included. */
#ifndef XMPPUV_CLIENT_H
#define XMPPUV_CLIENT_H

#include <stdint.h>

#include "common.h"
#include "jid.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* uv_loop_t */

typedef struct xmppuv_client xmppuv_client_t;

/* ---- status ------------------------------------------------------------- */

/* As xmpp.js names them. A connection goes
 *   offline -> connecting -> connect -> opening -> open -> online
 * and back down
 *   online -> closing -> close -> disconnecting -> disconnect -> offline
 * (closing/close only when the stream is closed gracefully). While
 * reconnecting the status stays "disconnect" between attempts; after a
 * resumption it is "online" again with no `online` event. */
typedef enum {
  XMPPUV_STATUS_OFFLINE = 0,   /* not started, stopped, or given up */
  XMPPUV_STATUS_CONNECTING,    /* resolving and connecting the socket */
  XMPPUV_STATUS_CONNECT,       /* socket connected (TLS done if direct) */
  XMPPUV_STATUS_OPENING,       /* stream header sent */
  XMPPUV_STATUS_OPEN,          /* stream open (header received) */
  XMPPUV_STATUS_ONLINE,        /* authenticated, bound, SM negotiated */
  XMPPUV_STATUS_CLOSING,       /* </stream:stream> sent */
  XMPPUV_STATUS_CLOSE,         /* the stream is closed */
  XMPPUV_STATUS_DISCONNECTING, /* closing the socket */
  XMPPUV_STATUS_DISCONNECT     /* socket closed */
} xmppuv_status_t;

/* "offline", "connecting", ... Static. */
XMPPUV_EXTERN const char *xmppuv_status_name(xmppuv_status_t status);

/* ---- options ------------------------------------------------------------ */

typedef enum {
  XMPPUV_TLS_AUTO = 0,  /* STARTTLS, or direct TLS where SRV says so */
  XMPPUV_TLS_STARTTLS,  /* STARTTLS only (port 5222 style) */
  XMPPUV_TLS_DIRECT,    /* direct TLS only (XEP-0368, port 5223 style) */
  XMPPUV_TLS_DISABLED_INSECURE /* plaintext: tests on loopback only */
} xmppuv_tls_mode_t;

/* Finding a WebSocket endpoint (XEP-0156: host-meta over HTTPS) when
 * neither host nor url is set. */
typedef enum {
  XMPPUV_DISCOVERY_OFF = 0, /* SRV (RFC 6120, XEP-0368) and TCP only */
  XMPPUV_DISCOVERY_AUTO,    /* XEP-0156's order: SRV and TCP first; when no
                               TCP connection can be made, the domain's
                               host-meta and its wss:// link */
  XMPPUV_DISCOVERY_WEBSOCKET_FIRST /* the host-meta's wss:// link first; SRV
                                      and TCP when there is none */
} xmppuv_discovery_t;

/* Supplies the password when it is needed, so the app need not keep it in
 * memory. Write at most size-1 bytes and a NUL into buf; return 0, or an
 * error code to stop (the client then ends with that error). */
typedef int (*xmppuv_password_cb)(xmppuv_client_t *client, char *buf,
                                  size_t size, void *user_data);

/* FAST (XEP-0484): supplies a token the app kept, when the client has
 * none, at xmppuv_client_start(). Write the token (at most token_size-1
 * bytes and a NUL) and its mechanism (from the `fast_token` event that gave
 * it) and return 0; leave token empty for none; or return an error code to
 * stop (the start then fails with it). */
typedef int (*xmppuv_fast_token_cb)(xmppuv_client_t *client, char *token, size_t token_size,
                                    char *mechanism, size_t mechanism_size, void *user_data);

/* A FAST token as the server gave it (XEP-0484). A credential: keep it as
 * safely as a password, never log it. */
typedef struct xmppuv_fast_token {
  const char *mechanism; /* the HT mechanism it is bound to: "HT-SHA-256-EXPR" */
  const char *token;     /* the secret */
  const char *expiry;    /* when the server will stop taking it, XEP-0082
                            date-time as it said ("" if it did not) */
} xmppuv_fast_token_t;

/* Initialize with xmppuv_client_options_init() (required: xmppuv_client_new()
 * refuses options that were not), then set what you need. Strings are
 * copied by xmppuv_client_new(). New fields are only ever added at the end,
 * and struct_size (set by the init) tells the library which ones an app
 * knows: an app built against an older header gets the defaults for the
 * rest. Defaults are shown in brackets. */
typedef struct xmppuv_client_options {
  size_t struct_size; /* set by xmppuv_client_options_init(); leave it */
  const char *jid;      /* "user@domain" or "user@domain/resource" (required) */
  const char *password; /* [NULL] or a password_cb */
  xmppuv_password_cb password_cb;
  void *password_user_data;
  const char *resource; /* requested resource; [NULL] = the JID's, else the
                           server assigns one */
  const char *lang;     /* xml:lang of the stream [NULL: none] */

  /* Where and how to connect */
  const char *host;     /* [NULL] = SRV lookup for the JID's domain */
  unsigned short port;  /* with host: [0] = 5222, or 5223 for direct TLS */
  xmppuv_tls_mode_t tls;      /* [XMPPUV_TLS_AUTO] */
  const char *ca_file;        /* [NULL] = the system CA bundle */
  const char *ca_path;        /* a directory of CA certificates [NULL] */
  const char *pin;            /* "sha256//BASE64" (public key) or 64 hex
                                 digits (certificate) [NULL] */
  int tls_insecure;           /* skip certificate checks, warn [0] */
  const char *dns_servers;    /* "ip[:port],..." for c-ares [NULL = system] */
  const char *sasl_mechanisms; /* allow-list "SCRAM-SHA-256,PLAIN" [NULL = all] */
  int allow_anonymous;        /* SASL ANONYMOUS [0] */

  /* Timeouts, in milliseconds (0 = off where it says so) */
  unsigned connect_timeout_ms;     /* per address, direct TLS handshake
                                      included [10000] */
  unsigned negotiation_timeout_ms; /* stream open to online [30000] */
  unsigned close_timeout_ms;       /* graceful stop: wait this long for the
                                      last ack of unacked stanzas, then as
                                      long for the server's
                                      </stream:stream> [2000] */
  unsigned iq_timeout_ms;          /* default for xmppuv_client_send_iq [30000] */
  unsigned keepalive_ms;   /* without SM: XEP-0199 ping this long after the
                              last inbound data [60000]; 0 = off */
  unsigned keepalive_timeout_ms; /* no answer: drop the connection [20000] */

  /* Reconnection after an unexpected disconnect */
  int reconnect;                     /* [1] */
  unsigned reconnect_delay_ms;       /* first delay [1000] */
  unsigned reconnect_max_delay_ms;   /* cap of the exponential backoff [60000] */

  /* Stream Management (XEP-0198) */
  int sm;                     /* use it when offered [1] */
  int sm_resume;              /* ask for resumption [1] */
  unsigned sm_max_resume_s;   /* 'max' asked for [0 = server's choice] */
  unsigned sm_ack_debounce_ms;  /* <r/> this long after the last send, and at
                                   most 4x this after the first one [250]; 0 = off */
  unsigned sm_ack_threshold;    /* <r/> after this many sends [256]; 0 = off */
  unsigned sm_idle_request_ms;  /* <r/> when idle [30000]; 0 = off */
  unsigned sm_ack_timeout_ms;   /* no answer: drop and resume [60000]; 0 = off */
  unsigned sm_wait_timeout_ms;  /* for enabled/resumed/failed [30000] */
  size_t sm_queue_max;          /* unacked + held stanzas [4096] */
  int sm_resend_on_failed;      /* failed resumption: resend, not fail [0] */
  unsigned sm_drain_timeout_ms; /* stop: wait this long for the last acks,
                                   if longer than close_timeout_ms [0] */

  /* Limits on what the server may send */
  size_t max_stanza_bytes; /* [1 MiB] */
  unsigned max_depth;      /* [64] */
  unsigned max_attrs;      /* [64] */

  /* Logging */
  xmppuv_log_cb log_cb;    /* [NULL] */
  void *log_user_data;
  xmppuv_log_level_t log_level; /* [XMPPUV_LOG_INFO] */

  /* Limit on what we send: send() refuses a bigger stanza (serialized) with
   * XMPPUV_ETOOBIG rather than let the server end the stream on it [1 MiB];
   * 0 = no limit of our own. A limit the server advertises (XEP-0478) is
   * applied too. */
  size_t max_send_bytes;

  /* A client certificate (PEM or DER; the leaf first, then any
   * intermediates) and its unencrypted private key, presented when the
   * server asks for one; with them the client logs in with SASL EXTERNAL
   * (XEP-0178) where the server offers it, and needs no password. Both or
   * neither [NULL]. Unreadable, or a key that is not the certificate's:
   * xmppuv_client_new() returns XMPPUV_ECLIENTCERT. */
  const char *client_cert_file;
  const char *client_key_file;

  /* SASL2 (XEP-0388) where the server offers it [1]: one <authenticate/>
   * that also binds (Bind2, when no resource is asked for), enables or
   * resumes Stream Management inline and uses FAST tokens (below); 0 =
   * RFC 6120 SASL, a bind iq and a separate <enable/> or <resume/>.
   * user_agent_id: the <user-agent id> the
   * server remembers this installation by, a UUID the app keeps [NULL: a
   * random one per client, read back with xmppuv_client_user_agent_id() to
   * keep it]; software: the app's name in <user-agent/> [NULL: none]. */
  int sasl2;
  const char *user_agent_id;
  const char *software;

  /* FAST (XEP-0484), in a SASL2 login where the server offers it [1]: a
   * password login asks for a token, and the reconnections of this client
   * log in with it (one message each way, no password, no PBKDF2), inline
   * resumption and Bind2 alongside. The `fast_token` event gives every new
   * token to the app to keep (with the user_agent_id: the token is bound to
   * it). fast_token and fast_mechanism: a token kept from an earlier run
   * [NULL]; fast_token_cb: asked for one at start instead [NULL]. With a
   * token, a password is needed only if the server rejects it: the login
   * then goes on with the password (XMPPUV_ETOKEN, not fatal). */
  int fast;
  const char *fast_token;
  const char *fast_mechanism;
  xmppuv_fast_token_cb fast_token_cb;
  void *fast_token_user_data;
  /* Downgrade protection: a server that offered SASL2 or channel binding on
   * an earlier connection of this client and no longer does is logged at
   * warn level [0]; 1: refused (XMPPUV_EDOWNGRADED, fatal). */
  int downgrade_fatal;
  /* One-flight reconnection: after a SASL2 login, the next connection sends
   * its login (FAST or SCRAM, inline resumption, Bind2) together with the
   * stream header, from the features the server sent last time, instead of
   * waiting for them [1]. If the server's features turn out different, the
   * client connects again at once the long way (no error). */
  int one_flight;

  /* WebSocket (RFC 7395): connect to this ws:// or wss:// URL instead of an
   * XMPP port [NULL]; host and port must then be unset. wss:// is TLS
   * verified against the URL's host (ca_file, pin and the rest apply);
   * ws:// only with tls = XMPPUV_TLS_DISABLED_INSECURE. Everything above
   * the transport (SASL2, Stream Management, resumption, the events) is the
   * same as over TCP. */
  const char *url;
  /* Without host and url: XEP-0156 discovery [XMPPUV_DISCOVERY_OFF]. A
   * WebSocket handshake answered with an HTTP redirect is refused, the
   * Location named in the error: an endpoint moved is a configuration to
   * change, not a hop to take unasked. */
  xmppuv_discovery_t discovery;
} xmppuv_client_options_t;

/* Fill opts with the defaults (everything zero or NULL but those above) and
 * struct_size. A macro: it passes the size of the struct as this app was
 * compiled with it. NULL is a no-op. */
#define xmppuv_client_options_init(opts) \
  xmppuv_client_options_init_sized((opts), sizeof(xmppuv_client_options_t))
XMPPUV_EXTERN void xmppuv_client_options_init_sized(xmppuv_client_options_t *opts,
                                                    size_t struct_size);

/* ---- events ------------------------------------------------------------- */

/* An error as the app sees it. code is an XMPPUV_E* / UV_E* code; condition
 * and text come from the server when it sent them (a stream error, a SASL
 * failure, ...), else NULL; element is the server's element when there was
 * one. All borrowed for the callback. */
typedef struct xmppuv_error {
  int code;
  const char *condition;
  const char *text;
  const xmppuv_stanza_t *element;
  int fatal; /* the client gives up (offline follows); else it reconnects */
} xmppuv_error_t;

/* Every callback may be NULL. user_data is the one given to _new.
 * Initialize with xmppuv_client_callbacks_init(), or statically as
 *   static const xmppuv_client_callbacks_t cbs = {
 *       .struct_size = sizeof(xmppuv_client_callbacks_t), .online = on_online};
 * (xmppuv_client_new() refuses callbacks without struct_size). New
 * callbacks are only ever added at the end. */
typedef struct xmppuv_client_callbacks {
  size_t struct_size; /* sizeof(xmppuv_client_callbacks_t), as the app knows it */
  void (*status)(xmppuv_client_t *c, xmppuv_status_t status, void *user_data);
  /* A new session: resource bound, SM negotiated. Set up session state
   * (presence, roster) here. jid is borrowed for the call. */
  void (*online)(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *user_data);
  /* The previous session continues (XEP-0198 resumption): do NOT redo
   * session state. */
  void (*resumed)(xmppuv_client_t *c, void *user_data);
  void (*error)(xmppuv_client_t *c, const xmppuv_error_t *error,
                void *user_data);
  /* The server has taken responsibility for this stanza (borrowed; take a
   * reference to keep it). Only for stanzas sent with xmppuv_client_send():
   * one sent with xmppuv_client_send_tracked() or as a request with
   * xmppuv_client_send_iq() reports to its own callback instead, so every
   * stanza is reported exactly once. */
  void (*ack)(xmppuv_client_t *c, xmppuv_stanza_t *stanza, void *user_data);
  /* This stanza will not be delivered by the library and will not be
   * retried: reason XMPPUV_ESMFAILED (session lost), XMPPUV_ECANCELED
   * (stopped), ... Only for stanzas sent with xmppuv_client_send(), as
   * `ack`. */
  void (*fail)(xmppuv_client_t *c, xmppuv_stanza_t *stanza, int reason,
               void *user_data);
  /* A reconnection attempt will start after delay_ms (attempt = 1, 2, ...). */
  void (*reconnecting)(xmppuv_client_t *c, unsigned attempt,
                       uint64_t delay_ms, void *user_data);
  /* Every inbound stanza, after the handlers (handled: non-zero if one of
   * them took it). */
  void (*stanza)(xmppuv_client_t *c, xmppuv_stanza_t *stanza, int handled,
                 void *user_data);
  /* FAST (XEP-0484): a new token (keep it, in place of the one before, to
   * give back as the fast_token option next time), or NULL: the token the
   * client had is no longer good (the server rejected it, or
   * xmppuv_client_logout() invalidated it): forget it. Borrowed for the
   * call. */
  void (*fast_token)(xmppuv_client_t *c, const xmppuv_fast_token_t *token, void *user_data);
  /* The client is going away: after xmppuv_client_close(), once its last
   * event was delivered, right before the close callback. The last event;
   * the client may only be read now (status, JID), not used. A module
   * attached to the client (a listener, the chat layer's roster) frees
   * itself here. */
  void (*closed)(xmppuv_client_t *c, void *user_data);
} xmppuv_client_callbacks_t;

/* Zero every callback and set struct_size (a macro, as for the options).
 * NULL is a no-op. */
#define xmppuv_client_callbacks_init(cbs) \
  xmppuv_client_callbacks_init_sized((cbs), sizeof(xmppuv_client_callbacks_t))
XMPPUV_EXTERN void xmppuv_client_callbacks_init_sized(xmppuv_client_callbacks_t *cbs,
                                                      size_t struct_size);

/* ---- listeners ---------------------------------------------------------- */

/* More consumers of the same events: callbacks (copied; any may be NULL)
 * get every event after the callbacks given to xmppuv_client_new(), in the
 * order the listeners were added, each with its own user_data. A layer above
 * the client (a roster module) uses this to see `online` and `resumed`
 * without taking the app's callbacks. *id (may be NULL) identifies it for
 * removal. Errors: XMPPUV_EINVAL (c or callbacks NULL, callbacks not
 * initialised), XMPPUV_ECLOSED (after close), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_client_listener_add(xmppuv_client_t *c,
                                             const xmppuv_client_callbacks_t *callbacks,
                                             void *user_data, uint64_t *id);
/* 0, or XMPPUV_EINVAL if no such listener (or c NULL). Also after
 * xmppuv_client_close(), until the close callback: a module freed by the
 * app then gets no `closed`. Safe inside any callback (it gets no event
 * after the current one). */
XMPPUV_EXTERN int xmppuv_client_listener_remove(xmppuv_client_t *c, uint64_t id);

/* ---- lifetime ----------------------------------------------------------- */

/* Create a client (it does nothing until xmppuv_client_start()). opts and
 * callbacks (NULL: none) are copied. Everything that can be checked before
 * connecting is: XMPPUV_EINVAL for options or callbacks not initialised
 * with their _init(), and for a missing or contradictory option, each with
 * a log line (level error, through opts->log_cb when set) saying which;
 * XMPPUV_EJID* for the JID; XMPPUV_ECAFILE for CA files and
 * XMPPUV_ECLIENTCERT for a client certificate or key that do not load (or
 * do not match); XMPPUV_ENOMEM; libuv's code if its timer cannot be made.
 * On error *out is NULL. */
XMPPUV_EXTERN int xmppuv_client_new(struct uv_loop_s *loop,
                                    const xmppuv_client_options_t *opts,
                                    const xmppuv_client_callbacks_t *callbacks,
                                    void *user_data, xmppuv_client_t **out);

/* Connect and keep connected (reconnecting as the options say) until
 * stopped. A stopped client (or one that gave up) may be started again.
 * XMPPUV_EINVAL (NULL), XMPPUV_ESTATE (already started, or still stopping:
 * wait for `offline`), XMPPUV_ECLOSED (after close). */
XMPPUV_EXTERN int xmppuv_client_start(xmppuv_client_t *c);

/* Graceful stop: with stanzas unacked, ask the server for a last ack (<r/>)
 * and wait for it (close_timeout_ms, or sm_drain_timeout_ms if longer), so
 * what the server has is reported acked; then </stream:stream>, wait for
 * the server's close (close_timeout_ms), close the socket. Stanzas still
 * unacked then get `fail` (XMPPUV_ECANCELED); the status ends at offline. A
 * stopped client can be started again. While waiting to reconnect (or
 * connecting) there is no stream to close: the wait is cancelled and the
 * status goes to offline at once (the events come from the loop), and what
 * is held fails with XMPPUV_ECANCELED. Returns 0 (also when offline
 * already, and when a stop is in progress), XMPPUV_EINVAL (NULL) or
 * XMPPUV_ECLOSED (after close). */
XMPPUV_EXTERN int xmppuv_client_stop(xmppuv_client_t *c);

/* Log out for good: stop() as above, then make the server forget this
 * client's FAST token (XEP-0484): one more connection logs in with the
 * token and invalidate='true', binds nothing and closes. Then the
 * fast_token event with NULL (forget the kept token; also when the server
 * could not be reached or no longer took the token: an error event says
 * so) and offline. Without a token, the same as stop(). Returns 0,
 * XMPPUV_EINVAL (NULL) or XMPPUV_ECLOSED (after close). */
XMPPUV_EXTERN int xmppuv_client_logout(xmppuv_client_t *c);

/* The app knows the network changed (a new interface, waking from sleep):
 * drop the current connection without closing the stream (so the session
 * stays resumable), reset the backoff and reconnect at once, resuming the
 * session. Also cuts short a wait between reconnection attempts. Nothing
 * queued is lost or failed by this. 0; XMPPUV_ESTATE if not started,
 * stopping or given up; XMPPUV_EINVAL for NULL; XMPPUV_ECLOSED after
 * close. */
XMPPUV_EXTERN int xmppuv_client_reconnect_now(xmppuv_client_t *c);

/* Runs last for a client being closed (user_data: the client's). */
typedef void (*xmppuv_close_cb)(xmppuv_client_t *c, void *user_data);

/* Release the client, asynchronously as uv_close() does: the connection is
 * dropped at once (no graceful close: call stop first for that), pending
 * iq callbacks and send callbacks complete with XMPPUV_ECANCELED, unacked
 * stanzas get `fail` (XMPPUV_ECANCELED), then close_cb runs last (may be
 * NULL) and nothing runs after it. From this call on the status is
 * offline, and every other call returns XMPPUV_ECLOSED (a `fail` callback
 * that sends gets that too). A second close, and close(NULL), do nothing. */
XMPPUV_EXTERN void xmppuv_client_close(xmppuv_client_t *c, xmppuv_close_cb close_cb);

/* XMPPUV_STATUS_OFFLINE for NULL. */
XMPPUV_EXTERN xmppuv_status_t xmppuv_client_status(const xmppuv_client_t *c);
/* The bound full JID, or NULL before the first `online` (and for NULL).
 * Borrowed until the next `online`. */
XMPPUV_EXTERN const xmppuv_jid_t *xmppuv_client_jid(const xmppuv_client_t *c);
/* NULL for NULL. */
XMPPUV_EXTERN struct uv_loop_s *xmppuv_client_loop(const xmppuv_client_t *c);
XMPPUV_EXTERN void *xmppuv_client_user_data(const xmppuv_client_t *c);

/* ---- sending ------------------------------------------------------------ */

/* Send a stanza: a message, presence or iq (in jabber:client). The
 * stanza is serialized now; later changes to it are not sent. A missing
 * 'id' is set on the stanza first (a random one). The client keeps a
 * reference until the stanza ends in `ack` or `fail` (with SM), or is
 * written (without). While the client is not online the stanza is held
 * and sent when it is (with a XEP-0203 delay stamp for messages).
 * Its outcome is reported by the `ack` or `fail` event.
 * Errors: XMPPUV_EINVAL (c or stanza NULL, or not a stanza), XMPPUV_ENOBUFS
 * (queue full: wait for acks), XMPPUV_ETOOBIG (larger than max_send_bytes or
 * the server's limit), XMPPUV_ESTATE (not started, or stopping),
 * XMPPUV_ECLOSED (closed), XMPPUV_ENOMEM. Nothing is dropped silently: an
 * error means the stanza was not taken. */
XMPPUV_EXTERN int xmppuv_client_send(xmppuv_client_t *c, xmppuv_stanza_t *stanza);

/* The outcome of a stanza sent with xmppuv_client_send_tracked(): status 0 =
 * acked by the server (SM); XMPPUV_ESMOFF = written on a stream without SM
 * (delivery cannot be confirmed); other negative = failed, as for `fail`. */
typedef void (*xmppuv_send_done_cb)(xmppuv_client_t *c, xmppuv_stanza_t *stanza,
                                    int status, void *user_data);
/* Send as xmppuv_client_send(), with the outcome reported to cb, exactly
 * once (unless this returns an error), and not to the `ack`/`fail` events.
 * Errors as xmppuv_client_send(), and XMPPUV_EINVAL for cb NULL. */
XMPPUV_EXTERN int xmppuv_client_send_tracked(xmppuv_client_t *c, xmppuv_stanza_t *stanza,
                                             xmppuv_send_done_cb cb, void *user_data);

/* ---- receiving: handlers ------------------------------------------------ */

#define XMPPUV_PASS 0
#define XMPPUV_HANDLED 1

/* Return XMPPUV_HANDLED to stop further handlers, XMPPUV_PASS to go on.
 * stanza is borrowed: take a reference to keep it. */
typedef int (*xmppuv_handler_cb)(xmppuv_client_t *c, xmppuv_stanza_t *stanza,
                                 void *user_data);

/* Call cb for inbound top-level elements with this name ("message",
 * "presence", "iq"; NULL = any), that are in namespace ns or have a child
 * element (any one, not only the first) in it (NULL = any), and whose type
 * attribute is type (NULL = any; "normal" matches a message without type).
 * Handlers run in the order they were added. *id (may be NULL) identifies it
 * for removal. Strings are copied. Errors: XMPPUV_EINVAL (c or cb NULL),
 * XMPPUV_ECLOSED (after close), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_client_handler_add(xmppuv_client_t *c,
                                            const char *name, const char *ns,
                                            const char *type,
                                            xmppuv_handler_cb cb,
                                            void *user_data, uint64_t *id);
/* 0; XMPPUV_EINVAL if no such handler (or c NULL; ids of iq handlers are
 * not handlers: xmppuv_client_iq_handler_remove()); XMPPUV_ECLOSED after
 * close. Safe inside a handler (even itself). */
XMPPUV_EXTERN int xmppuv_client_handler_remove(xmppuv_client_t *c, uint64_t id);

/* ---- IQ ------------------------------------------------------------------ */

/* Exactly one call per request: status 0 and the result stanza;
 * XMPPUV_EIQERROR and the error reply; or, with reply NULL,
 * XMPPUV_ETIMEDOUT, XMPPUV_ECANCELED (cancelled, client closed) or
 * XMPPUV_ESMFAILED (the session was lost: the request went out on a
 * session that a new one replaced, not resumed, so no reply can come; it
 * is called as the new session starts, before `online`, with or without
 * Stream Management). A request made while no stream is ready is held and
 * goes out on whichever session comes next, so it is not failed this way.
 * reply is borrowed. */
typedef void (*xmppuv_iq_cb)(xmppuv_client_t *c, int status,
                             xmppuv_stanza_t *reply, void *user_data);

/* Send an iq of type get or set and wait for its reply (matched by id and
 * sender). timeout_ms 0 = the client's iq_timeout_ms. *id (may be NULL) for
 * xmppuv_client_iq_cancel(). The outcome goes to cb only (not to the
 * `ack`/`fail` events). Errors as xmppuv_client_send, and XMPPUV_EINVAL
 * for cb NULL or a stanza that is not an iq get/set. */
XMPPUV_EXTERN int xmppuv_client_send_iq(xmppuv_client_t *c, xmppuv_stanza_t *iq,
                                   unsigned timeout_ms, xmppuv_iq_cb cb,
                                   void *user_data, uint64_t *id);
/* The callback runs, with XMPPUV_ECANCELED (from the loop, not inside this
 * call). 0; XMPPUV_EINVAL if no such request is waiting (or c NULL);
 * XMPPUV_ECLOSED after close (the close cancelled it already). */
XMPPUV_EXTERN int xmppuv_client_iq_cancel(xmppuv_client_t *c, uint64_t id);

/* Serve iq requests whose child is name/ns (NULL = any) and whose type is
 * "get" or "set" (NULL = both): the arguments in the order of
 * xmppuv_client_handler_add(). The handler replies with xmppuv_client_send()
 * (see xmppuv_iq_result_new / xmppuv_iq_error_new) and returns
 * XMPPUV_HANDLED; a request no handler takes is answered with
 * service-unavailable (RFC 6120 §8.2.3). XEP-0199 ping is answered already.
 * Returns 0 and *id (id may be NULL), XMPPUV_EINVAL (c or cb NULL, or type
 * other than "get", "set" or NULL), XMPPUV_ENOMEM or XMPPUV_ECLOSED (after
 * close); remove it with xmppuv_client_iq_handler_remove(). */
XMPPUV_EXTERN int xmppuv_client_iq_handler_add(xmppuv_client_t *c,
                                               const char *name, const char *ns,
                                               const char *type,
                                               xmppuv_handler_cb cb,
                                               void *user_data, uint64_t *id);
/* 0; XMPPUV_EINVAL if no such iq handler (or c NULL); XMPPUV_ECLOSED after
 * close. Safe inside a handler. */
XMPPUV_EXTERN int xmppuv_client_iq_handler_remove(xmppuv_client_t *c, uint64_t id);

/* ---- the stream and the client's state ------------------------------------ */

/* Client State Indication (XEP-0352): tell the server whether the user is
 * looking at the app (active != 0, the default) or not (0: the server may
 * hold back presence updates and other unimportant traffic until the
 * client is active again). The state is remembered: it is sent now if the
 * client is online and the server offers CSI, on every new session (which
 * starts active), and after a resumption only if it changed meanwhile (the
 * server kept it). Without CSI on the server nothing is sent (check
 * xmppuv_client_stream_features() for <csi xmlns='urn:xmpp:csi:0'/>).
 * Returns 0 (also before start and while offline), XMPPUV_EINVAL (c NULL)
 * or XMPPUV_ECLOSED (after close). */
XMPPUV_EXTERN int xmppuv_client_set_active(xmppuv_client_t *c, int active);
/* The state last set with xmppuv_client_set_active() (1 = active, the
 * default); 1 for NULL. */
XMPPUV_EXTERN int xmppuv_client_is_active(const xmppuv_client_t *c);

/* The SASL2 user-agent id this client presents (the option's, or the one
 * it made): keep it and give it back as user_agent_id on the next run, so
 * the server sees the same installation. Borrowed: valid until the client
 * is freed. NULL for NULL. */
XMPPUV_EXTERN const char *xmppuv_client_user_agent_id(const xmppuv_client_t *c);

/* The last <stream:features/> the server sent on the current connection,
 * as the element (borrowed: valid until the next stream's features or the
 * connection ends; xmppuv_stanza_copy() keeps one). Online, these are the
 * authenticated stream's: roster versioning (<ver xmlns='urn:xmpp:features:
 * rosterver'/>), pre-approval, CSI, Stream Management, ... NULL when there
 * is no connection, before its first features, after close, and for NULL. */
XMPPUV_EXTERN const xmppuv_stanza_t *xmppuv_client_stream_features(const xmppuv_client_t *c);

/* ---- Stream Management ---------------------------------------------------- */

/* Non-zero if SM is enabled on the current stream (0 for NULL). */
XMPPUV_EXTERN int xmppuv_client_sm_enabled(const xmppuv_client_t *c);
/* Stanzas sent and not yet acked, plus those held while offline (0 for
 * NULL). */
XMPPUV_EXTERN size_t xmppuv_client_sm_queued(const xmppuv_client_t *c);

/* Save the SM session (id, counters, JID, unacked stanzas with their
 * stamps) so another process can resume it. Take it after the client
 * stopped being connected (e.g. in the `status` callback for disconnect, or
 * on a crash-safe schedule); free *data with xmppuv_free(). Returns 0,
 * XMPPUV_EINVAL (a NULL argument), XMPPUV_ENOMEM or XMPPUV_ECLOSED (after
 * close); on error *data is NULL and *len 0. */
XMPPUV_EXTERN int xmppuv_client_sm_export(const xmppuv_client_t *c,
                                          char **data, size_t *len);
/* Load saved state into a client that has not been started: start() then
 * resumes that session and resends what was unacked. XMPPUV_ESTATEBLOB for
 * corrupt or foreign data: a session saved under another account (its
 * full JID's bare JID is not this client's), or a session without a JID;
 * XMPPUV_ESTATE once started (now or before) or loaded; XMPPUV_ENOBUFS
 * if it holds more stanzas than sm_queue_max. Any error changes nothing
 * (another blob may be imported after a refused one). A blob saved before
 * the client was ever online has no JID and no session, only stanzas held
 * for sending: it is accepted (they are sent on a new session after
 * start()); nothing in it says which account it came from, so keep saved
 * state per account. Also XMPPUV_EINVAL (c or data NULL), XMPPUV_ECLOSED
 * (after close), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_client_sm_import(xmppuv_client_t *c,
                                          const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
