/* Stream Management (XEP-0198), the engine.
 *
 * No I/O and no clock: the client (the driver) passes in every inbound
 * element and the current time, and the engine answers through the events
 * below (bytes to write, stanza outcomes, enable/resume results, "drop the
 * connection"). It lives across connections: counters, the SM-ID and the
 * unacked queue survive a disconnect so the next stream can resume.
 *
 * Outbound stanzas go through xmppuv__sm_send() always, whether SM is on or
 * not: the engine decides to write now, to write and keep until acked, or to
 * hold until a stream is ready. Every stanza ends in exactly one `done`
 * event: acked (0), sent on a stream without SM (XMPPUV_ESMOFF: delivery not
 * confirmable), or failed (XMPPUV_ESMFAILED: the session could not be
 * resumed; XMPPUV_ECANCELED: the client stopped; ...).
 *
 * Re-entrancy: events may call back into the engine (send from an ack, stop
 * from a fail, ...). The engine raises events only from a consistent state
 * and re-reads its state after each one. xmppuv__sm_free() is the one call
 * not allowed from inside an event.
 *
 * Counters (XEP-0198 §4): ours starts at 0 when <enable/> is written, h at 0
 * when <enabled/> arrives; both carry over on resumption and wrap modulo
 * 2^32. An h from the server (<a/>, <resumed/>, <failed/>) must lie between
 * the last one and what we sent, modulo 2^32; anything else is "too high":
 * the engine writes the stream error undefined-condition +
 * <handled-count-too-high h send-count/> and </stream:stream>, forgets the
 * SM-ID (a corrupt session is never resumed), leaves the queue untouched
 * (settled at the next enable) and raises abort(XMPPUV_ESMHIGH).
 *
 * Delay stamps (XEP-0203): a <message/> written later than its send() call
 * (held while no stream was ready, or resent) carries
 * <delay xmlns='urn:xmpp:delay' from='full JID' stamp='send time'/>, added
 * to the bytes written, never to the app's stanza, and never to a message
 * that already has a <delay/> (XEP-0203 §2: one and only one). */
#ifndef XMPPUV_SM_H
#define XMPPUV_SM_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/ns.h"
#include "xmppuv.h"



typedef struct xmppuv__sm_config {
  int enabled;               /* use SM when the server offers it (1) */
  int resume;                /* ask for resumption (1) */
  uint32_t max_resume_s;     /* 'max' on <enable/>; 0 = leave it to the server */
  uint64_t ack_debounce_ms;  /* <r/> this long after the last send (250), and
                                at most 4 times this long after the first
                                send not yet covered by an <r/>; 0 = off */
  uint32_t ack_threshold;    /* <r/> at once after this many sends since the
                                last <r/> (256); 0 = off */
  uint64_t idle_request_ms;  /* <r/> after this long without one (30000); 0 = off */
  uint64_t ack_timeout_ms;   /* no inbound data this long after an <r/>:
                                drop the connection (60000); 0 = off */
  uint64_t wait_timeout_ms;  /* for <enabled/>, <resumed/>, <failed/> (30000) */
  size_t queue_max;          /* stanzas kept (unacked + held) (4096) */
  int resend_on_failed;      /* session not resumed (failed or expired):
                                resend its unacked stanzas, stamped, on the
                                new session instead of failing them (0) */
  uint64_t drain_timeout_ms; /* graceful stop: wait this long for a final
                                ack of unacked stanzas (0 = do not wait) */
  size_t max_send_bytes;     /* send() refuses a bigger stanza (0 = no limit) */
  const xmppuv__log_t *log;  /* may be NULL */
} xmppuv__sm_config_t;

/* Fills the defaults shown above. */
void xmppuv__sm_config_defaults(xmppuv__sm_config_t *cfg);

/* Per-stanza completion given to xmppuv__sm_send(); passed back in `done`. */
typedef void (*xmppuv__sm_done_cb)(void *cb_data, xmppuv_stanza_t *stanza,
                                   int status);

typedef struct xmppuv__sm_events {
  /* Write these bytes on the current stream, after everything written
   * before (data is borrowed for the call; a stamped stanza comes in
   * several calls). 0, or an error: the engine keeps its state (a counted
   * stanza stays queued, an uncounted one is held), writes nothing more on
   * this stream, and the driver is expected to drop the connection. */
  int (*write)(void *ud, const char *data, size_t len);
  /* The <enable/> round trip is over: enabled (1) or not (0, <failed/> or a
   * server without SM; condition: <failed/>'s error element name or NULL).
   * The driver emits `online` now; stanzas sent from it are counted. */
  void (*enable_result)(void *ud, int enabled, const char *condition);
  /* <resumed/> was handled: acks applied, the rest resent, held stanzas
   * sent. The driver emits `resumed`. */
  void (*resumed)(void *ud);
  /* <failed/> answered <resume/>: acks its h covered were applied and the
   * old session is gone. The driver binds a new resource and then calls
   * xmppuv__sm_enable(). condition: the error element's name, or NULL. */
  void (*resume_failed)(void *ud, const char *condition);
  /* A stanza's outcome (see the top of this file); stanza is the one given
   * to xmppuv__sm_send() (or rebuilt from saved state), with a reference
   * that passes to the callee (it unrefs it when done with it: the engine
   * keeps it for an event without touching it now, which matters in a
   * burst of acks of long-sent stanzas). cb/cb_data as given to send (cb
   * may be NULL). */
  void (*done)(void *ud, xmppuv_stanza_t *stanza, int status,
               xmppuv__sm_done_cb cb, void *cb_data);
  /* Drop the connection now, without </stream:stream> unless the engine
   * already wrote one: ack timeout or a wait timed out (XMPPUV_ETIMEDOUT),
   * h too high (XMPPUV_ESMHIGH, stream error written), a protocol violation
   * (XMPPUV_EPROTO). why: what happened, in words (borrowed for the
   * call). The driver reconnects as its policy says. */
  void (*abort)(void *ud, int reason, const char *why);
} xmppuv__sm_events_t;

typedef struct xmppuv__sm xmppuv__sm_t;

/* cfg and events are copied (cfg->log must outlive the engine). 0,
 * XMPPUV_ENOMEM, or XMPPUV_EINVAL (an event missing, queue_max 0 or over
 * 2^31). */
int xmppuv__sm_new(const xmppuv__sm_config_t *cfg,
                   const xmppuv__sm_events_t *events, void *ud,
                   xmppuv__sm_t **out);
/* Frees everything; stanzas still queued are released without events (call
 * xmppuv__sm_fail_all() first to report them). NULL is a no-op. Never from
 * inside an event. */
void xmppuv__sm_free(xmppuv__sm_t *sm);

/* ---- stream lifecycle (driven by the client) ---------------------------- */

/* A new stream has been authenticated. Per-stream state starts afresh
 * (xmppuv__sm_disconnected() is implied if the driver did not call it). */
void xmppuv__sm_stream_authenticated(xmppuv__sm_t *sm, xmppuv__time_t now);
/* Non-zero if the previous SM session can be resumed now: it was enabled
 * with resumption, has an SM-ID, and the server's max (if it gave one) has
 * not passed since the connection was lost -- or, with resend_on_failed,
 * stanzas are unacked (the <failed h/> of a timed-out session says which
 * of them the server handled, so they are not resent). The driver then
 * calls xmppuv__sm_resume() instead of binding a resource. */
int xmppuv__sm_can_resume(const xmppuv__sm_t *sm, xmppuv__time_t now);
/* The server's preferred reconnection "host:port" from <enabled/>, or NULL. */
const char *xmppuv__sm_location(const xmppuv__sm_t *sm);
/* The elements for someone else to send (XEP-0198 inside Bind2 and SASL2,
 * XEP-0386/0388): <enable/> as configured, and <resume previd h/> for the
 * saved session (XMPPUV_ESTATE if there is none). Appended to out; 0 or
 * XMPPUV_ENOMEM (out as it was). */
int xmppuv__sm_enable_element(const xmppuv__sm_t *sm, xmppuv__buf_t *out);
int xmppuv__sm_resume_element(const xmppuv__sm_t *sm, xmppuv__buf_t *out);
/* Write <resume previd h/>; a wait timer starts. XMPPUV_ESTATE if not
 * resumable. */
int xmppuv__sm_resume(xmppuv__sm_t *sm, xmppuv__time_t now);
/* The same when <resume/> went to the server inside the login (XEP-0198
 * inline resumption in a SASL2 <authenticate/>): nothing is written, no
 * wait timer (the login has its own); the answer (<resumed/> or <failed/>
 * from the server's <success/>) is to be given to xmppuv__sm_inbound() next.
 * XMPPUV_ESTATE without a session (or not right after authentication). */
int xmppuv__sm_resume_inline(xmppuv__sm_t *sm, xmppuv__time_t now);
/* Resource bound (full_jid is copied: it is the 'from' of delay stamps).
 * If SM is configured on and offered (server_offers), writes <enable/> and
 * starts counting; otherwise the stream runs without SM and
 * enable_result(0) is raised at once. A previous SM session that was not
 * resumed ends here: its unacked stanzas fail with XMPPUV_ESMFAILED (or,
 * with the resend policy, are resent first, stamped); held stanzas are
 * sent next, right after <enable/>. At most one <enable/> per stream (a
 * second call, e.g. for <sm/> seen again, writes nothing): XMPPUV_ESTATE.
 * XMPPUV_ENOMEM: nothing changed. XMPPUV_ECANCELED: a fail event's callback
 * stopped or dropped the stream; nothing was written. */
int xmppuv__sm_enable(xmppuv__sm_t *sm, const char *full_jid,
                      int server_offers, xmppuv__time_t now);
/* The same when <enable/> went to the server inside the login (XEP-0386
 * Bind2, built with xmppuv__sm_enable_element()): nothing is written; the
 * answer (<enabled/> or <failed/> from the server's <bound/>) is to be
 * given to xmppuv__sm_inbound() next. */
int xmppuv__sm_enable_inline(xmppuv__sm_t *sm, const char *full_jid, xmppuv__time_t now);
/* An inbound top-level element. SM nonzas (r, a, enabled, failed, resumed)
 * are consumed: returns 1. message/presence/iq in jabber:client are counted
 * (h, XEP-0198 §4: before any handler sees them): returns 0 and the driver
 * dispatches them. Anything else: 0, untouched. XMPPUV_ENOMEM (only for
 * <enabled/>): not handled, state unchanged; the driver drops the
 * connection. After an abort event the driver feeds nothing more from that
 * connection. */
int xmppuv__sm_inbound(xmppuv__sm_t *sm, const xmppuv_stanza_t *el,
                       xmppuv__time_t now);
/* Any inbound bytes at all: the ack timeout is satisfied. */
void xmppuv__sm_inbound_data(xmppuv__sm_t *sm, xmppuv__time_t now);
/* The current stream is ending with a stream error that a stanza we wrote
 * may have caused (see the poison rule above). Call before disconnected(). */
void xmppuv__sm_stream_error(xmppuv__sm_t *sm);
/* The largest stanza the server said it takes (XEP-0478 max-bytes; 0 =
 * unknown): kept across connections, and send() refuses a stanza that would
 * be bigger when written (with a delay stamp, for a message). */
void xmppuv__sm_set_peer_limit(xmppuv__sm_t *sm, size_t max_bytes);
/* The connection is gone, whatever the cause: waits are cancelled, timers
 * stopped, the time is noted; the queue and the SM session are kept. */
void xmppuv__sm_disconnected(xmppuv__sm_t *sm, xmppuv__time_t now);
/* Graceful stop, step 1: writes <a h/>, and with a drain timeout and
 * unacked stanzas, <r/>. Returns 1 if the driver should wait for
 * xmppuv__sm_drained() (check it after each inbound element and tick), 0 if
 * it can close now. From here on sends are held (and fail at fail_all);
 * <a/> from the server is still taken and <r/> answered. */
int xmppuv__sm_stop(xmppuv__sm_t *sm, xmppuv__time_t now);
/* Non-zero once nothing sent is unacked (or the drain deadline passed). */
int xmppuv__sm_drained(const xmppuv__sm_t *sm, xmppuv__time_t now);
/* Every stanza not yet acked (sent or held) ends with done(status), and the
 * SM session is forgotten (no resumption after this). SM is off for the
 * rest of the stream. Only the stanzas queued at the call are reported; one
 * sent from a done callback stays held. */
void xmppuv__sm_fail_all(xmppuv__sm_t *sm, int status);

/* ---- sending -------------------------------------------------------------- */

/* Serialize stanza now (later changes to it are not sent) and: write it if a
 * stream is ready and nothing is held before it; keep it until acked if SM
 * is on (from <enable/> written); hold it if no stream is ready
 * (disconnected, negotiating, resuming, stopping). On a stream without SM
 * it is written and done(XMPPUV_ESMOFF) is raised from inside this call. A
 * missing 'id' is NOT added here (the client does that). Takes a reference
 * while queued. Errors: XMPPUV_ENOBUFS (queued == queue_max:
 * back-pressure), XMPPUV_ENOMEM, XMPPUV_EINVAL (not a message, presence or
 * iq in jabber:client), XMPPUV_ETOOBIG (bigger than max_send_bytes or the
 * server's limit, or over 4 GiB); on error no event will follow for this
 * stanza. */
int xmppuv__sm_send(xmppuv__sm_t *sm, xmppuv_stanza_t *stanza,
                    xmppuv__time_t now, xmppuv__sm_done_cb cb, void *cb_data);

/* ---- timers ---------------------------------------------------------------- */

/* The earliest monotonic time at which xmppuv__sm_tick() has work, or
 * XMPPUV__NO_DEADLINE. */
uint64_t xmppuv__sm_deadline(const xmppuv__sm_t *sm);
/* Run whatever is due: debounced and periodic <r/>, the ack timeout, wait
 * timeouts. */
void xmppuv__sm_tick(xmppuv__sm_t *sm, xmppuv__time_t now);

/* ---- state ------------------------------------------------------------------- */

int xmppuv__sm_active(const xmppuv__sm_t *sm); /* enabled on this stream */
int xmppuv__sm_resumable(const xmppuv__sm_t *sm); /* has a resumable session */
size_t xmppuv__sm_queued(const xmppuv__sm_t *sm); /* unacked + held */
size_t xmppuv__sm_unacked(const xmppuv__sm_t *sm); /* sent, not acked */
uint32_t xmppuv__sm_inbound_count(const xmppuv__sm_t *sm); /* h */
/* Stanzas sent in the SM session, mod 2^32 (the 'send-count'). */
uint32_t xmppuv__sm_outbound_count(const xmppuv__sm_t *sm);
const char *xmppuv__sm_id(const xmppuv__sm_t *sm); /* SM-ID or NULL */

/* ---- persistence -------------------------------------------------------------- */

/* Append the state (SM-ID, both counters, full JID, location, max, when the
 * connection was lost, and every queued stanza with its first-send time) to
 * out, in the versioned format documented in persist.c. */
int xmppuv__sm_export(const xmppuv__sm_t *sm, xmppuv__time_t now,
                      xmppuv__buf_t *out);
/* Load such state into an engine that has not been used yet (before the
 * first stream and the first send). Queued stanzas are rebuilt as stanza
 * trees (for done events; their cb is NULL). The time the connection was
 * lost is a wall time here, so the max check uses wall time. The blob is
 * decoded once, and checked whole before anything is loaded. With account
 * set, a session saved under another account (its full JID's bare JID is
 * not account's) is refused, and so is a session without a JID (it cannot
 * be shown to be ours); a blob without a JID and without a session (saved
 * before the first login: held stanzas only) is accepted. Errors:
 * XMPPUV_ESTATEBLOB (corrupt, truncated, foreign or newer format, invalid
 * text or stanza, another account), XMPPUV_ESTATE (engine already used),
 * XMPPUV_ENOBUFS (more stanzas than queue_max), XMPPUV_ENOMEM; on error
 * nothing changed. The full JID saved is returned in *full_jid (allocated,
 * xmppuv__free; NULL if none) if not NULL. */
int xmppuv__sm_import(xmppuv__sm_t *sm, const void *data, size_t len,
                      const xmppuv_jid_t *account, char **full_jid);

#endif
