/* The client engine: everything a client does, without I/O and without a
 * clock. It wires the session (negotiation), the Stream Management engine,
 * the iq tracker, the handlers and the listeners together, and holds all
 * client policy: reconnection and backoff, see-other-host, keepalive, the
 * drain on stop, the iq fence, stanza ids, option checks.
 *
 * A driver runs it (lib/client.c on libuv; tests/support/engine_harness.c
 * on a fake clock and a memory transport). The driver passes in what
 * happened (transport events, bytes, the time, credentials it fetched) and
 * takes out what the engine wants:
 *   - bytes to write: xmppuv__engine_output(), in order;
 *   - actions, one at a time: xmppuv__engine_action() (connect, start TLS,
 *     close, fetch the password, derive SCRAM keys);
 *   - the next deadline: xmppuv__engine_deadline(), then
 *     xmppuv__engine_tick() when it comes.
 * App events are queued and delivered only by xmppuv__engine_deliver(),
 * which the driver calls from its loop, never inside the API call that
 * caused them: every event comes from a consistent state, and a callback
 * may call any API function (the engine only queues more).
 *
 * Inbound elements are handled one per xmppuv__engine_step(), and the
 * engine steps only once the events of the previous one were delivered: a
 * stanza is counted (XEP-0198 h) right before the app sees it, and an app
 * that stops or drops the connection from a handler stops the rest of that
 * read from being counted. */
#ifndef XMPPUV_ENGINE_H
#define XMPPUV_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "sasl/sasl.h"
#include "sasl/scram.h"
#include "session/session.h"
#include "sm/sm.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "xmppuv.h"

typedef struct xmppuv__engine xmppuv__engine_t;

typedef enum {
  XMPPUV__ACT_NONE = 0,
  XMPPUV__ACT_CONNECT,  /* open a transport: host/port, first_host/port */
  XMPPUV__ACT_STARTTLS, /* begin TLS on it; data/len came after <proceed/> */
  XMPPUV__ACT_CLOSE,    /* close it: graceful (flush, TLS close_notify) or drop */
  XMPPUV__ACT_PASSWORD, /* answer with xmppuv__engine_password() */
  XMPPUV__ACT_DERIVE    /* derive SCRAM keys for mech/salt/iterations from the
                           password; answer with xmppuv__engine_keys() */
} xmppuv__action_kind_t;

/* Pointers borrowed until the next call on the engine. */
typedef struct xmppuv__action {
  xmppuv__action_kind_t kind;
  uint64_t link; /* the connection it is for: pass it back with the answer */
  /* CONNECT: host NULL = look the domain up (SRV); first_host: try this
   * one first (XEP-0198 location), or NULL. */
  const char *host;
  uint16_t port;
  const char *url; /* a WebSocket (RFC 7395) instead of host/port, or NULL */
  const char *first_host;
  uint16_t first_port;
  /* STARTTLS */
  const char *data;
  size_t len;
  /* CLOSE */
  int graceful;
  /* DERIVE */
  xmppuv__mech_t mech;
  const unsigned char *salt;
  size_t salt_len;
  unsigned int iterations;
} xmppuv__action_t;

/* opts are validated (XMPPUV_EINVAL with a log line naming the option) and
 * copied; callbacks copied (may be NULL). owner is what callbacks receive as
 * their client. seed: for reconnection jitter and stanza id prefixes (the
 * driver gives a random one, tests a fixed one). 0, XMPPUV_EINVAL,
 * XMPPUV_EJID*, XMPPUV_ENOMEM. */
int xmppuv__engine_new(const xmppuv_client_options_t *opts,
                       const xmppuv_client_callbacks_t *callbacks, void *user_data,
                       xmppuv_client_t *owner, uint64_t seed, xmppuv__engine_t **out);
void xmppuv__engine_free(xmppuv__engine_t *e);

/* The options as validated and copied (strings owned by the engine). */
const xmppuv_client_options_t *xmppuv__engine_options(const xmppuv__engine_t *e);
const xmppuv__log_t *xmppuv__engine_log(const xmppuv__engine_t *e);
const xmppuv_jid_t *xmppuv__engine_configured_jid(const xmppuv__engine_t *e);

/* ---- what the driver takes out --------------------------------------------- */

/* Bytes to write, in order; the driver writes them all and clears it. */
xmppuv__buf_t *xmppuv__engine_output(xmppuv__engine_t *e);
/* The next action into *out: 1, or 0 if there is none. */
int xmppuv__engine_action(xmppuv__engine_t *e, xmppuv__action_t *out);
/* The earliest monotonic time xmppuv__engine_tick() has work, or
 * XMPPUV__NO_DEADLINE. Undelivered events or steps make it 0 (now). */
uint64_t xmppuv__engine_deadline(const xmppuv__engine_t *e);
void xmppuv__engine_tick(xmppuv__engine_t *e, xmppuv__time_t now);
/* Handle one inbound element: 1 if one was (then deliver before stepping
 * again), 0 if none is waiting or events are undelivered. */
int xmppuv__engine_step(xmppuv__engine_t *e, xmppuv__time_t now);
/* Deliver one queued event to the app: 1 if one was, 0 if none. */
int xmppuv__engine_deliver(xmppuv__engine_t *e, xmppuv__time_t now);
/* Zero while the engine holds input it cannot handle yet: stop reading
 * the transport until it says 1 again (input backpressure). */
int xmppuv__engine_wants_input(const xmppuv__engine_t *e);
/* Events queued and not yet delivered. */
int xmppuv__engine_has_events(const xmppuv__engine_t *e);
/* close() was called and everything it owed the app was delivered: the
 * driver may release the engine once its transport is gone. */
int xmppuv__engine_closed(const xmppuv__engine_t *e);

/* ---- what the driver passes in ------------------------------------------------ */

/* The transport of `link` is up (tls: TLS active already, direct TLS; cb:
 * its channel-binding data or NULL; framing: what the transport carries). */
void xmppuv__engine_connected(xmppuv__engine_t *e, uint64_t link,
                              xmppuv__framing_t framing, int tls,
                              const xmppuv__channel_binding_t *cb, xmppuv__time_t now);
/* Bytes (plaintext) from the server. */
void xmppuv__engine_feed(xmppuv__engine_t *e, uint64_t link, const char *data, size_t len,
                         xmppuv__time_t now);
/* A read that was no part of a burst (a small one: a burst's last, or
 * ordinary traffic) has been fed: what a busy stream keeps between its
 * reads goes back. */
void xmppuv__engine_read_end(xmppuv__engine_t *e);
/* The STARTTLS handshake finished. */
void xmppuv__engine_tls_ready(xmppuv__engine_t *e, uint64_t link,
                              const xmppuv__channel_binding_t *cb, xmppuv__time_t now);
/* Connecting failed, or the connection broke; closed follows. detail:
 * what happened, for the app's err->text (which address, which check), or
 * NULL. XMPPUV_EWRONGSERVER (the peer does not speak what was asked: TLS
 * on a plaintext port, plaintext on a TLS port, HTTP) is fatal when the
 * app named the host. */
void xmppuv__engine_transport_error(xmppuv__engine_t *e, uint64_t link, int status,
                                    const char *detail, xmppuv__time_t now);
/* The transport is gone. */
void xmppuv__engine_transport_closed(xmppuv__engine_t *e, uint64_t link, xmppuv__time_t now);
/* Answers to PASSWORD and DERIVE: status 0 and the credential, or an
 * error (the app's password callback failed, PBKDF2 failed). Answers for a
 * connection that is gone are ignored. The password is not kept. */
void xmppuv__engine_password(xmppuv__engine_t *e, uint64_t link, int status,
                             const char *password, xmppuv__time_t now);
void xmppuv__engine_keys(xmppuv__engine_t *e, uint64_t link, int status,
                         const xmppuv__scram_keys_t *keys, xmppuv__time_t now);

/* ---- the app's calls (as in client.h) -------------------------------------------- */

int xmppuv__engine_start(xmppuv__engine_t *e, xmppuv__time_t now);
/* stop(), then one more connection that logs in with the FAST token only
 * to invalidate it (XEP-0484), then offline; the fast_token event with
 * NULL in any case. Without a token: stop(). */
int xmppuv__engine_logout(xmppuv__engine_t *e, xmppuv__time_t now);
/* Non-zero if the engine has a FAST token for its next login. */
int xmppuv__engine_has_fast_token(const xmppuv__engine_t *e);
/* A token the app's fast_token_cb gave (copied): 0, XMPPUV_EINVAL (not an
 * HT mechanism this library knows, or not printable ASCII),
 * XMPPUV_ENOMEM. */
int xmppuv__engine_give_fast_token(xmppuv__engine_t *e, const char *token, const char *mech);
int xmppuv__engine_stop(xmppuv__engine_t *e, xmppuv__time_t now);
int xmppuv__engine_reconnect_now(xmppuv__engine_t *e, xmppuv__time_t now);
/* Fail everything owed (ECANCELED), drop the connection; after this only
 * delivery of what was queued, then nothing. */
void xmppuv__engine_close(xmppuv__engine_t *e, xmppuv__time_t now);
int xmppuv__engine_is_closing(const xmppuv__engine_t *e);

xmppuv_status_t xmppuv__engine_status(const xmppuv__engine_t *e);
const xmppuv_jid_t *xmppuv__engine_jid(const xmppuv__engine_t *e);

int xmppuv__engine_send(xmppuv__engine_t *e, xmppuv_stanza_t *stanza, xmppuv_send_done_cb cb,
                        void *cb_data, xmppuv__time_t now);
int xmppuv__engine_iq(xmppuv__engine_t *e, xmppuv_stanza_t *iq, unsigned timeout_ms,
                      xmppuv_iq_cb cb, void *user_data, uint64_t *id, xmppuv__time_t now);
int xmppuv__engine_iq_cancel(xmppuv__engine_t *e, uint64_t id);
int xmppuv__engine_handler_add(xmppuv__engine_t *e, int iq_requests, const char *name,
                               const char *ns, const char *type, xmppuv_handler_cb cb,
                               void *user_data, uint64_t *id);
int xmppuv__engine_handler_remove(xmppuv__engine_t *e, int iq_requests, uint64_t id);
int xmppuv__engine_listener_add(xmppuv__engine_t *e,
                                const xmppuv_client_callbacks_t *callbacks,
                                void *user_data, uint64_t *id);
int xmppuv__engine_listener_remove(xmppuv__engine_t *e, uint64_t id);
/* The client goes away: `closed` to the app's callbacks and every
 * listener (client.c, right before the close callback). */
void xmppuv__engine_notify_closed(xmppuv__engine_t *e);

/* Client State Indication (XEP-0352), as in client.h. */
int xmppuv__engine_set_active(xmppuv__engine_t *e, int active);
int xmppuv__engine_is_active(const xmppuv__engine_t *e);
/* The last stream features of the current connection (borrowed), or NULL. */
const xmppuv_stanza_t *xmppuv__engine_stream_features(const xmppuv__engine_t *e);

int xmppuv__engine_sm_enabled(const xmppuv__engine_t *e);
/* The Stream Management state, to read (tests and the fuzzer check the
 * counters and answer for the server with them). */
const xmppuv__sm_t *xmppuv__engine_sm(const xmppuv__engine_t *e);
size_t xmppuv__engine_sm_queued(const xmppuv__engine_t *e);
int xmppuv__engine_sm_export(const xmppuv__engine_t *e, xmppuv__time_t now, char **data,
                             size_t *len);
int xmppuv__engine_sm_import(xmppuv__engine_t *e, const void *data, size_t len);

#endif
