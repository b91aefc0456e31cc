/* The XEP-0198 engine. See sm.h for the contract; this file keeps three
 * invariants that everything else leans on:
 *
 * - The queue holds stanzas in send order. Its first `nsent` entries were
 *   written on the SM session and are counted ("unacked"); the rest are
 *   "held" (never written on it). So the outbound counter is always
 *   acked + nsent (mod 2^32) and an <a h/> covers exactly the first
 *   h - acked entries: no sequence numbers are stored, wraparound is free,
 *   and a bad h is caught by one comparison before anything changes.
 * - A stanza is written at once only if nothing is held before it, so the
 *   wire order is the send order across disconnects and resumption.
 * - Every event is raised from a consistent state (the entry popped and the
 *   counters updated first), and after each one the caller re-checks
 *   `epoch` (bumped whenever the stream changes under it: disconnect,
 *   abort, stop, fail_all) or `session` (bumped when the queue's owner
 *   changes), so a callback may call back into the engine. */
#include "sm/sm.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sm/delay.h"
#include "sm/persist.h"
#include "sm/queue.h"
#include "util/alloc.h"
#include "util/defaults.h"
#include "util/str.h"
#include "util/utf8.h"
#include "xml/serialize.h"
#include "xml/stanza.h"

/* The serialization buffer is kept between sends, but not after a stanza
 * bigger than this: an idle client should not hold on to one. */
#define SCRATCH_KEEP 16384u
#define R_ELEMENT "<r xmlns='" XMPPUV__NS_SM "'/>"
#define DEBOUNCE_MAX_WAIT 4u
/* The poison rule (sm.h): strikes before a stanza is failed, not resent. */
#define POISON_STRIKES 3u

typedef enum {
  ST_DOWN,      /* no stream, or not yet authenticated */
  ST_AUTHED,    /* authenticated: resume or bind + enable come next */
  ST_RESUMING,  /* <resume/> written */
  ST_ENABLING,  /* <enable/> written: stanzas are written and counted */
  ST_ACTIVE,    /* SM on this stream */
  ST_NOSM,      /* a ready stream without SM */
  ST_CLOSING,   /* xmppuv__sm_stop() called: stanzas are held */
  ST_DEAD       /* aborted or a write failed: waiting for disconnected() */
} stream_state_t;

struct xmppuv__sm {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_events_t ev;
  void *ud;

  xmppuv__smq_t q;
  size_t nsent;   /* queue prefix written on the SM session, unacked */
  uint32_t acked; /* the server's last h */
  uint32_t h;     /* stanzas we handled */

  char *sm_id; /* a resumable session, or NULL */
  char *location;
  uint32_t max_s;
  char *full_jid;
  xmppuv__buf_t delay_prefix; /* "<delay ... from='full_jid' stamp='" */
  xmppuv__buf_t scratch;      /* the stanza being sent, serialized */

  stream_state_t state;
  int sm_on;    /* count inbound stanzas, answer <r/>, take <a/> */
  int attached; /* this stream took over the server-side session */
  int used;     /* a stream or a send happened: import is refused */

  int lost_valid, lost_mono_valid;
  uint64_t lost_mono;
  int64_t lost_wall;

  uint64_t debounce_at, idle_at, ack_at, wait_at, drain_at;
  uint64_t debounce_cap; /* the latest the pending debounced <r/> may go */
  int drain_expired;
  uint32_t since_r; /* stanzas counted since the last <r/> */

  /* The poison rule: streams are numbered as they authenticate. */
  uint32_t stream_no;
  int stream_errored; /* this stream is ending with a stream error */
  int prev_errored;   /* the previous stream ended with one */
  int poison_checked; /* the head was judged on this stream already */
  size_t probe;       /* held stanzas at the front still to be resent one
                         at a time, each with its own <r/> (see settle) */
  size_t peer_max_bytes; /* XEP-0478 max-bytes, 0 = unknown */

  unsigned epoch;
  unsigned session;
};

#define LOG(sm, lvl, ...) xmppuv__logf((sm)->cfg.log, (lvl), "sm", __VA_ARGS__)

void xmppuv__sm_config_defaults(xmppuv__sm_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->enabled = XMPPUV__DEFAULT_SM;
  cfg->resume = XMPPUV__DEFAULT_SM_RESUME;
  cfg->max_resume_s = 0;
  cfg->ack_debounce_ms = XMPPUV__DEFAULT_SM_ACK_DEBOUNCE_MS;
  cfg->ack_threshold = XMPPUV__DEFAULT_SM_ACK_THRESHOLD;
  cfg->idle_request_ms = XMPPUV__DEFAULT_SM_IDLE_REQUEST_MS;
  cfg->ack_timeout_ms = XMPPUV__DEFAULT_SM_ACK_TIMEOUT_MS;
  cfg->wait_timeout_ms = XMPPUV__DEFAULT_SM_WAIT_TIMEOUT_MS;
  cfg->queue_max = XMPPUV__DEFAULT_SM_QUEUE_MAX;
  cfg->resend_on_failed = 0;
  cfg->drain_timeout_ms = 0;
  cfg->log = NULL;
}

/* ---- small helpers ------------------------------------------------------- */

static uint64_t after(xmppuv__time_t now, uint64_t ms) {
  if (ms == 0) return XMPPUV__NO_DEADLINE;
  if (ms >= XMPPUV__NO_DEADLINE - now.mono_ms) return XMPPUV__NO_DEADLINE - 1;
  return now.mono_ms + ms;
}

static void clear_timers(xmppuv__sm_t *sm) {
  sm->debounce_at = sm->idle_at = sm->ack_at = sm->wait_at = sm->drain_at =
      XMPPUV__NO_DEADLINE;
}

static int is_stanza(const char *name, const char *ns) {
  if (name == NULL) return 0;
  if (ns != NULL && !xmppuv__streq(ns, XMPPUV_NS_CLIENT)) return 0;
  return xmppuv__streq(name, "message") || xmppuv__streq(name, "presence") ||
         xmppuv__streq(name, "iq");
}

/* xs:unsignedInt as servers write it: decimal digits only, at most
 * 2^32-1 (XEP-0198 §4: 'h' wraps, so anything bigger is malformed). */
static int parse_u32(const char *s, uint32_t *out) {
  if (s == NULL || *s == '\0') return -1;
  uint64_t v = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > UINT32_MAX) return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

static int attr_true(const char *v) {
  return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void forget_session(xmppuv__sm_t *sm) {
  xmppuv__free(sm->sm_id);
  xmppuv__free(sm->location);
  sm->sm_id = NULL;
  sm->location = NULL;
  sm->max_s = 0;
  sm->lost_valid = 0;
  sm->lost_mono_valid = 0;
}

static void go_dead(xmppuv__sm_t *sm) {
  sm->state = ST_DEAD;
  clear_timers(sm);
  sm->epoch++;
}

/* Write on the stream. A failed write leaves the stream dead (nothing more
 * is written on it; what was counted stays queued for resumption). Returns
 * non-zero if the caller must stop: the write failed, or the driver changed
 * the stream from inside it. */
static int put(xmppuv__sm_t *sm, const char *data, size_t len) {
  if (sm->state == ST_DEAD || sm->state == ST_DOWN) return XMPPUV_ESTATE;
  unsigned ep = sm->epoch;
  int rc = sm->ev.write(sm->ud, data, len);
  if (sm->epoch != ep) return rc != 0 ? rc : XMPPUV_ECANCELED;
  if (rc != 0) {
    LOG(sm, XMPPUV_LOG_WARN,
        "write failed (%s): nothing more is written on this stream",
        xmppuv_err_name(rc));
    go_dead(sm);
  }
  return rc;
}

static void scratch_trim(xmppuv__sm_t *sm) {
  if (sm->scratch.cap > SCRATCH_KEEP) xmppuv__buf_free(&sm->scratch);
}

/* XEP-0203 stamps go to messages only, and never to one that already has a
 * <delay/> (XEP-0203 §2: one and only one). */
static void mark_stamp(xmppuv__smq_entry_t *e) {
  if ((e->flags & (XMPPUV__SMQ_MESSAGE | XMPPUV__SMQ_HAS_DELAY)) ==
      XMPPUV__SMQ_MESSAGE)
    e->flags |= XMPPUV__SMQ_STAMP;
}

/* Write a queued stanza; a stamped one gets our <delay/> before the root's
 * end tag, in a copy (the stored bytes and the app's stanza never change).
 * One write per stanza, so it goes out in one TLS record and a connection
 * cut mid-way never leaves part of a stanza at the server (Prosody 0.12
 * parses a resumed stream with the old connection's parser: a partial
 * stanza left there breaks the resumed stream with not-well-formed). Only
 * if the copy cannot be made is it written in pieces. */
static int put_entry(xmppuv__sm_t *sm, xmppuv__smq_entry_t *e) {
  e->stream_no = sm->stream_no;
  const char *b = e->bytes;
  size_t len = e->len, end = e->end_tag_at;
  if (!(e->flags & XMPPUV__SMQ_STAMP)) return put(sm, b, len);
  xmppuv__buf_clear(&sm->scratch);
  if (xmppuv__delay_insert(&sm->scratch, b, len, end, &sm->delay_prefix,
                           e->sent_wall_ms) == 0) {
    int whole = put(sm, sm->scratch.data, sm->scratch.len);
    scratch_trim(sm);
    return whole;
  }
  scratch_trim(sm);
  char suffix[XMPPUV__DELAY_SUFFIX_LEN + 1];
  size_t n = xmppuv__delay_suffix(suffix, e->sent_wall_ms);
  int rc = put(sm, b, end);
  if (rc == 0) rc = put(sm, sm->delay_prefix.data, sm->delay_prefix.len);
  if (rc == 0) rc = put(sm, suffix, n);
  if (rc == 0) rc = put(sm, b + end, len - end);
  return rc;
}

/* Pop the oldest entry and report it. */
static void pop_done(xmppuv__sm_t *sm, int status) {
  xmppuv__smq_entry_t e;
  xmppuv__smq_pop(&sm->q, &e);
  if (sm->nsent > 0) sm->nsent--;
  xmppuv_stanza_t *stanza = e.stanza;
  e.stanza = NULL; /* its reference goes with it */
  sm->ev.done(sm->ud, stanza, status, e.cb, e.cb_data);
  xmppuv__smq_release(&sm->q, &e);
}

static int stream_ready_state(const xmppuv__sm_t *sm) {
  return sm->state == ST_ENABLING || sm->state == ST_ACTIVE ||
         sm->state == ST_NOSM;
}

/* ---- acks ------------------------------------------------------------------ */

static void send_a(xmppuv__sm_t *sm) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "<a xmlns='" XMPPUV__NS_SM "' h='%" PRIu32 "'/>",
                   sm->h);
  put(sm, buf, (size_t)n);
}

static void request_ack(xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (put(sm, R_ELEMENT, sizeof R_ELEMENT - 1) != 0) return;
  sm->since_r = 0;
  sm->debounce_at = XMPPUV__NO_DEADLINE;
  sm->idle_at = after(now, sm->cfg.idle_request_ms);
  /* The oldest unanswered <r/> sets the deadline; later ones never move it. */
  if (sm->ack_at == XMPPUV__NO_DEADLINE)
    sm->ack_at = after(now, sm->cfg.ack_timeout_ms);
}

/* After stanzas were counted: <r/> now at the threshold, else debounced. */
static void schedule_request(xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (sm->state != ST_ACTIVE) return;
  if (sm->cfg.ack_threshold != 0 && sm->since_r >= sm->cfg.ack_threshold) {
    request_ack(sm, now);
    return;
  }
  if (sm->cfg.ack_debounce_ms != 0) {
    /* Debounced, but a steady stream of sends must not starve the <r/>
     * (no acks, and no ack timeout to notice a dead link): it goes out at
     * most DEBOUNCE_MAX_WAIT debounce periods after the first send it
     * covers. */
    if (sm->debounce_at == XMPPUV__NO_DEADLINE)
      sm->debounce_cap = after(now, sm->cfg.ack_debounce_ms * DEBOUNCE_MAX_WAIT);
    uint64_t due = after(now, sm->cfg.ack_debounce_ms);
    sm->debounce_at = due < sm->debounce_cap ? due : sm->debounce_cap;
  }
}

static void proto_abort(xmppuv__sm_t *sm, const char *why) {
  if (sm->state == ST_DOWN) return;
  go_dead(sm);
  sm->ev.abort(sm->ud, XMPPUV_EPROTO, why);
}

/* A protocol violation: said in the log and to the driver (its error text). */
#define PROTO_ERROR(sm, ...)                           \
  do {                                                 \
    char why_[256];                                    \
    snprintf(why_, sizeof why_, __VA_ARGS__);          \
    LOG((sm), XMPPUV_LOG_ERROR, "%s", why_);           \
    proto_abort((sm), why_);                           \
  } while (0)

/* XEP-0198 §6: the peer acknowledged more than we sent. The session is
 * corrupt: say so, never resume it, leave the queue untouched (the next
 * enable settles it) and drop the connection. */
static void too_high(xmppuv__sm_t *sm, uint32_t h, const char *where) {
  uint32_t sent = sm->acked + (uint32_t)sm->nsent;
  char why[200];
  snprintf(why, sizeof why,
           "the server acknowledged %" PRIu32 " stanzas in <%s/> but only %" PRIu32
           " were sent; the session will not be resumed",
           h, where, sent);
  LOG(sm, XMPPUV_LOG_ERROR, "%s: dropping the connection", why);
  char buf[320];
  int n = snprintf(buf, sizeof buf,
                   "<stream:error><undefined-condition xmlns='" XMPPUV__NS_STREAM_ERRORS
                   "'/><handled-count-too-high xmlns='" XMPPUV__NS_SM
                   "' h='%" PRIu32 "' send-count='%" PRIu32
                   "'/></stream:error></stream:stream>",
                   h, sent);
  put(sm, buf, (size_t)n);
  forget_session(sm);
  sm->sm_on = 0;
  if (sm->state == ST_DOWN) return;
  go_dead(sm);
  sm->ev.abort(sm->ud, XMPPUV_ESMHIGH, why);
}

/* h must lie in [acked, acked + nsent], modulo 2^32 (XEP-0198 §4). */
static int h_in_window(const xmppuv__sm_t *sm, uint32_t h) {
  return (uint32_t)(h - sm->acked) <= sm->nsent;
}

/* Report the entries h covers, oldest first. O(covered). */
static void ack_upto(xmppuv__sm_t *sm, uint32_t h) {
  uint32_t k = h - sm->acked;
  unsigned session = sm->session;
  while (k-- > 0 && sm->session == session && sm->nsent > 0) {
    sm->acked++;
    pop_done(sm, 0);
  }
}

/* ---- held stanzas and old sessions ------------------------------------------ */

/* A held stanza the server said it will not take (XEP-0478 max-bytes,
 * learnt after it was sent): writing it would only make the server end the
 * stream. It fails here, never counted. Returns 1 if it did. */
static int refuse_held(xmppuv__sm_t *sm, size_t i) {
  xmppuv__smq_entry_t *e = xmppuv__smq_at(&sm->q, i);
  size_t len = e->len;
  if (e->flags & XMPPUV__SMQ_STAMP)
    len += sm->delay_prefix.len + XMPPUV__DELAY_SUFFIX_LEN;
  if (sm->peer_max_bytes == 0 || len <= sm->peer_max_bytes) return 0;
  LOG(sm, XMPPUV_LOG_WARN, "a held stanza of %zu bytes is over the server's "
      "limit of %zu: failing it (%s) instead of sending it", len,
      sm->peer_max_bytes, xmppuv_err_name(XMPPUV_ETOOBIG));
  xmppuv__smq_entry_t out;
  xmppuv__smq_take(&sm->q, i, &out);
  xmppuv_stanza_t *stanza = out.stanza;
  out.stanza = NULL; /* its reference goes with it */
  sm->ev.done(sm->ud, stanza, XMPPUV_ETOOBIG, out.cb, out.cb_data);
  xmppuv__smq_release(&sm->q, &out);
  return 1;
}

/* Write everything held, in order, on a ready stream. */
static void flush_held(xmppuv__sm_t *sm, xmppuv__time_t now) {
  unsigned ep = sm->epoch;
  int counted = 0;
  while (sm->epoch == ep && xmppuv__smq_len(&sm->q) > sm->nsent) {
    if ((sm->state == ST_NOSM || sm->state == ST_ENABLING || sm->state == ST_ACTIVE) &&
        refuse_held(sm, sm->nsent))
      continue;
    if (sm->state == ST_NOSM) {
      /* nsent is 0 on a stream without SM: the held one is the oldest. */
      if (put_entry(sm, xmppuv__smq_at(&sm->q, 0)) != 0) return;
      pop_done(sm, XMPPUV_ESMOFF);
    } else if (sm->state == ST_ENABLING || sm->state == ST_ACTIVE) {
      size_t held = xmppuv__smq_len(&sm->q) - sm->nsent;
      if (sm->probe > held) sm->probe = held;
      /* Probing (see settle): one stanza, acked, before the next. */
      if (sm->probe > 0 && (sm->state != ST_ACTIVE || sm->nsent > 0)) return;
      xmppuv__smq_entry_t *e = xmppuv__smq_at(&sm->q, sm->nsent);
      sm->nsent++;
      sm->since_r++;
      if (put_entry(sm, e) != 0) return;
      if (sm->probe > 0) {
        sm->probe--;
        request_ack(sm, now);
        return;
      }
      counted = 1;
    } else {
      return;
    }
  }
  if (counted && sm->epoch == ep) schedule_request(sm, now);
}

/* The poison rule (sm.h), once per stream: judge the oldest unacked stanza
 * after the server said what it handled (sure: h of <resumed/> or <failed/>)
 * or, with the resend policy, when a new session takes over without an h
 * (then a stanza the server did handle may be blamed: that policy already
 * accepts duplicates). Returns 1 if it failed the stanza. */
static int judge_head(xmppuv__sm_t *sm) {
  if (sm->poison_checked || sm->nsent == 0) return 0;
  sm->poison_checked = 1;
  xmppuv__smq_entry_t *e = xmppuv__smq_at(&sm->q, 0);
  if (e->stream_no + 1u != sm->stream_no) return 0; /* not on the last stream */
  if (!sm->prev_errored) {
    e->strikes = 0;
    return 0;
  }
  if (++e->strikes < POISON_STRIKES) {
    LOG(sm, XMPPUV_LOG_INFO,
        "the last stream ended with an error before the server handled the "
        "oldest unacked stanza (%u of %u times in a row)",
        (unsigned)e->strikes, POISON_STRIKES);
    return 0;
  }
  LOG(sm, XMPPUV_LOG_WARN,
      "the server ended the stream %u times in a row on the same stanza: "
      "failing it (%s) instead of resending it", POISON_STRIKES,
      xmppuv_err_name(XMPPUV_EREJECTED));
  /* The server never counted it: acked stays, so acked + nsent is still
   * what the server will count once the rest is resent. */
  pop_done(sm, XMPPUV_EREJECTED);
  return 1;
}

/* The previous SM session is over without resumption: its unacked stanzas
 * fail, or with the resend policy become held (stamped) and go out on the
 * next stream ahead of everything else. Held stanzas are not touched. */
static void settle(xmppuv__sm_t *sm) {
  forget_session(sm);
  size_t n = sm->nsent;
  if (n == 0) return;
  unsigned session = ++sm->session;
  if (sm->cfg.resend_on_failed) {
    unsigned ep = sm->epoch;
    /* The session ended with a stream error a stanza may cause, and no h
     * says which stanza it was: with one unacked stanza it can only be
     * that one; with several, they are resent one at a time, each with
     * its own <r/>, so that a stream error next time names its stanza (the
     * last one written, everything before it acked). */
    if (sm->prev_errored && n == 1 && judge_head(sm) &&
        (sm->session != session || sm->epoch != ep))
      return;
    n = sm->nsent;
    for (size_t i = 0; i < n; i++) mark_stamp(xmppuv__smq_at(&sm->q, i));
    sm->nsent = 0;
    if (sm->prev_errored) sm->probe += n;
    LOG(sm, XMPPUV_LOG_INFO,
        "previous session not resumed: %zu unacknowledged stanzas will be "
        "resent%s", n, sm->probe > 0 ? ", one at a time" : "");
    return;
  }
  LOG(sm, XMPPUV_LOG_WARN,
      "previous session not resumed: %zu unacknowledged stanzas failed", n);
  while (sm->session == session && sm->nsent > 0)
    pop_done(sm, XMPPUV_ESMFAILED);
}

/* ---- lifecycle ---------------------------------------------------------------- */

int xmppuv__sm_new(const xmppuv__sm_config_t *cfg,
                   const xmppuv__sm_events_t *events, void *ud,
                   xmppuv__sm_t **out) {
  if (out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  if (cfg == NULL || events == NULL || events->write == NULL ||
      events->enable_result == NULL || events->resumed == NULL ||
      events->resume_failed == NULL || events->done == NULL ||
      events->abort == NULL || cfg->queue_max == 0 ||
      cfg->queue_max > UINT32_MAX / 2)
    return XMPPUV_EINVAL;
  xmppuv__sm_t *sm = xmppuv__calloc(1, sizeof *sm);
  if (sm == NULL) return XMPPUV_ENOMEM;
  sm->cfg = *cfg;
  sm->ev = *events;
  sm->ud = ud;
  xmppuv__smq_init(&sm->q, cfg->queue_max);
  sm->state = ST_DOWN;
  clear_timers(sm);
  if (xmppuv__delay_prefix(&sm->delay_prefix, NULL) != 0) {
    xmppuv__buf_free(&sm->delay_prefix);
    xmppuv__free(sm);
    return XMPPUV_ENOMEM;
  }
  *out = sm;
  return 0;
}

void xmppuv__sm_free(xmppuv__sm_t *sm) {
  if (sm == NULL) return;
  xmppuv__smq_free(&sm->q);
  forget_session(sm);
  xmppuv__free(sm->full_jid);
  xmppuv__buf_free(&sm->delay_prefix);
  xmppuv__buf_free(&sm->scratch);
  xmppuv__free(sm);
}

void xmppuv__sm_disconnected(xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (sm->state == ST_DOWN) return;
  /* XEP-0198 §5: the server keeps the session 'max' seconds from here. */
  if (sm->attached && sm->sm_id != NULL) {
    sm->lost_valid = 1;
    sm->lost_mono_valid = 1;
    sm->lost_mono = now.mono_ms;
    sm->lost_wall = now.wall_ms;
  }
  LOG(sm, XMPPUV_LOG_INFO,
      "connection lost: %zu unacked, %zu held, session %s", sm->nsent,
      xmppuv__smq_len(&sm->q) - sm->nsent,
      sm->sm_id != NULL ? "resumable" : "not resumable");
  sm->state = ST_DOWN;
  sm->sm_on = 0;
  sm->attached = 0;
  clear_timers(sm);
  sm->epoch++;
}

void xmppuv__sm_stream_authenticated(xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (sm->state != ST_DOWN) xmppuv__sm_disconnected(sm, now);
  sm->used = 1;
  sm->state = ST_AUTHED;
  sm->since_r = 0;
  sm->drain_expired = 0;
  sm->stream_no++;
  sm->prev_errored = sm->stream_errored;
  sm->stream_errored = 0;
  sm->poison_checked = 0;
  sm->epoch++;
}

void xmppuv__sm_stream_error(xmppuv__sm_t *sm) { sm->stream_errored = 1; }

void xmppuv__sm_set_peer_limit(xmppuv__sm_t *sm, size_t max_bytes) {
  sm->peer_max_bytes = max_bytes;
}

int xmppuv__sm_can_resume(const xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (!sm->cfg.enabled || !sm->cfg.resume || sm->sm_id == NULL ||
      !sm->lost_valid)
    return 0;
  if (sm->max_s == 0) return 1; /* the server did not say: ask it */
  /* Past max the session is gone, but with stanzas unacked, ask anyway:
   * XEP-0198 §5 lets the server answer <failed h/> for a session that timed
   * out (Prosody and ejabberd do), and that h tells exactly what it
   * handled: those are acked, not failed (or, with the resend policy,
   * resent as duplicates). Our clock also starts before the server's. */
  if (sm->nsent > 0) return 1;
  uint64_t elapsed;
  if (sm->lost_mono_valid)
    elapsed = now.mono_ms - sm->lost_mono;
  else
    elapsed = now.wall_ms > sm->lost_wall
                  ? (uint64_t)now.wall_ms - (uint64_t)sm->lost_wall
                  : 0;
  return elapsed < (uint64_t)sm->max_s * 1000u;
}

const char *xmppuv__sm_location(const xmppuv__sm_t *sm) {
  return sm->location;
}

int xmppuv__sm_resume_element(const xmppuv__sm_t *sm, xmppuv__buf_t *out) {
  if (sm->sm_id == NULL) return XMPPUV_ESTATE;
  /* XEP-0198 §5: <resume previd h/>, h = stanzas we handled. */
  char h[16];
  snprintf(h, sizeof h, "%" PRIu32, sm->h);
  size_t old = out->len;
  if (xmppuv__buf_append_str(out, "<resume xmlns='" XMPPUV__NS_SM "' h='") != 0 ||
      xmppuv__buf_append_str(out, h) != 0 ||
      xmppuv__buf_append_str(out, "' previd='") != 0 ||
      xmppuv__escape_attr(out, sm->sm_id, strlen(sm->sm_id)) != 0 ||
      xmppuv__buf_append_str(out, "'/>") != 0) {
    out->len = old;
    return XMPPUV_ENOMEM;
  }
  return 0;
}

/* <enable/> as configured, into a fixed buffer (it cannot fail). */
#define ENABLE_MAX 96
static size_t enable_text(const xmppuv__sm_t *sm, char buf[ENABLE_MAX]) {
  int n = snprintf(buf, ENABLE_MAX, "<enable xmlns='" XMPPUV__NS_SM "'%s",
                   sm->cfg.resume ? " resume='true'" : "");
  if (sm->cfg.resume && sm->cfg.max_resume_s != 0)
    n += snprintf(buf + n, ENABLE_MAX - (size_t)n, " max='%" PRIu32 "'",
                  sm->cfg.max_resume_s);
  n += snprintf(buf + n, ENABLE_MAX - (size_t)n, "/>");
  return (size_t)n;
}

int xmppuv__sm_enable_element(const xmppuv__sm_t *sm, xmppuv__buf_t *out) {
  char buf[ENABLE_MAX];
  size_t n = enable_text(sm, buf);
  return xmppuv__buf_append(out, buf, n);
}

static void begin_resuming(xmppuv__sm_t *sm, xmppuv__time_t now, int inline_) {
  sm->state = ST_RESUMING;
  sm->sm_on = 1; /* h carries over: count and answer <r/> from now on */
  sm->attached = 1;
  sm->wait_at = inline_ ? XMPPUV__NO_DEADLINE : after(now, sm->cfg.wait_timeout_ms);
  LOG(sm, XMPPUV_LOG_INFO, "resuming: h=%" PRIu32 ", %zu unacked%s", sm->h, sm->nsent,
      inline_ ? " (asked inline, in the login)" : "");
}

int xmppuv__sm_resume(xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (sm->state != ST_AUTHED || !xmppuv__sm_can_resume(sm, now))
    return XMPPUV_ESTATE;
  xmppuv__buf_clear(&sm->scratch);
  if (xmppuv__sm_resume_element(sm, &sm->scratch) != 0) return XMPPUV_ENOMEM;
  begin_resuming(sm, now, 0);
  int rc = put(sm, sm->scratch.data, sm->scratch.len);
  scratch_trim(sm);
  return rc == XMPPUV_ECANCELED ? 0 : rc;
}

int xmppuv__sm_resume_inline(xmppuv__sm_t *sm, xmppuv__time_t now) {
  /* Not can_resume(): the server has answered already, and time spent
   * logging in must not turn its <resumed/> into a surprise. */
  if (sm->state != ST_AUTHED || sm->sm_id == NULL) return XMPPUV_ESTATE;
  begin_resuming(sm, now, 1);
  return 0;
}

static int enable(xmppuv__sm_t *sm, const char *full_jid, int server_offers, int write,
                  xmppuv__time_t now) {
  /* XEP-0198 §3: at most one attempt to enable per stream. */
  if (sm->state != ST_AUTHED) return XMPPUV_ESTATE;
  char *jid = NULL;
  xmppuv__buf_t prefix = XMPPUV__BUF_INIT;
  if (full_jid != NULL && (jid = xmppuv__strdup(full_jid)) == NULL)
    return XMPPUV_ENOMEM;
  if (xmppuv__delay_prefix(&prefix, jid) != 0) {
    xmppuv__buf_free(&prefix);
    xmppuv__free(jid);
    return XMPPUV_ENOMEM;
  }
  xmppuv__free(sm->full_jid);
  sm->full_jid = jid;
  xmppuv__buf_free(&sm->delay_prefix);
  sm->delay_prefix = prefix;

  unsigned ep = sm->epoch;
  settle(sm);
  if (sm->epoch != ep || sm->state != ST_AUTHED) return XMPPUV_ECANCELED;
  sm->acked = 0;
  sm->h = 0;
  sm->since_r = 0;

  if (sm->cfg.enabled && server_offers) {
    char buf[ENABLE_MAX];
    size_t n = enable_text(sm, buf);
    /* XEP-0198 §4: our outbound count starts when <enable/> is sent; stanzas
     * from here on are written and counted even before <enabled/>. */
    sm->state = ST_ENABLING;
    sm->wait_at = after(now, sm->cfg.wait_timeout_ms);
    LOG(sm, XMPPUV_LOG_DEBUG, "enabling stream management%s",
        write ? "" : " (asked inline, in the login)");
    if (write && put(sm, buf, n) != 0) return 0;
    flush_held(sm, now);
    return 0;
  }
  LOG(sm, XMPPUV_LOG_INFO, "%s",
      sm->cfg.enabled ? "server does not offer stream management"
                      : "stream management is turned off");
  sm->state = ST_NOSM;
  flush_held(sm, now);
  if (sm->epoch == ep && sm->state == ST_NOSM)
    sm->ev.enable_result(sm->ud, 0, NULL);
  return 0;
}

int xmppuv__sm_enable(xmppuv__sm_t *sm, const char *full_jid,
                      int server_offers, xmppuv__time_t now) {
  return enable(sm, full_jid, server_offers, 1, now);
}

int xmppuv__sm_enable_inline(xmppuv__sm_t *sm, const char *full_jid, xmppuv__time_t now) {
  return enable(sm, full_jid, 1, 0, now);
}

/* ---- inbound ---------------------------------------------------------------------- */

/* <failed/>'s condition: its child, or (Prosody's answer inside a SASL2
 * <success/>) the condition inside an <error/> wrapper, as in a stanza
 * error: <failed h='5'><error type='cancel'><item-not-found/>... */
static const char *failed_condition(const xmppuv_stanza_t *el) {
  const xmppuv_stanza_t *c = xmppuv_stanza_child(el, NULL, NULL);
  if (c != NULL && strcmp(xmppuv_stanza_name(c), "error") == 0) {
    for (const xmppuv_stanza_t *k = xmppuv_stanza_child(c, NULL, NULL); k != NULL;
         k = xmppuv_stanza_next(k, NULL, NULL))
      if (strcmp(xmppuv_stanza_name(k), "text") != 0) return xmppuv_stanza_name(k);
  }
  return c != NULL ? xmppuv_stanza_name(c) : NULL;
}

static int on_enabled(xmppuv__sm_t *sm, const xmppuv_stanza_t *el,
                      xmppuv__time_t now) {
  if (sm->state == ST_CLOSING) return 1;
  if (sm->state != ST_ENABLING) {
    PROTO_ERROR(sm, "unsolicited <enabled/>: no <enable/> is pending");
    return 1;
  }
  const char *id = xmppuv_stanza_attr(el, "id");
  const char *loc = xmppuv_stanza_attr(el, "location");
  const char *max = xmppuv_stanza_attr(el, "max");
  int resumable = sm->cfg.resume && attr_true(xmppuv_stanza_attr(el, "resume")) &&
                  id != NULL && id[0] != '\0';
  char *id_copy = NULL, *loc_copy = NULL;
  if (resumable && (id_copy = xmppuv__strdup(id)) == NULL)
    return XMPPUV_ENOMEM;
  if (resumable && loc != NULL && loc[0] != '\0' &&
      (loc_copy = xmppuv__strdup(loc)) == NULL) {
    xmppuv__free(id_copy);
    return XMPPUV_ENOMEM;
  }
  uint32_t max_s = 0;
  if (max != NULL && parse_u32(max, &max_s) != 0) {
    LOG(sm, XMPPUV_LOG_WARN, "ignoring <enabled/> max='%s': not a number", max);
    max_s = 0;
  }
  forget_session(sm);
  sm->sm_id = id_copy;
  sm->location = loc_copy;
  sm->max_s = resumable ? max_s : 0;
  /* XEP-0198 §4: h starts at zero when <enabled/> is received. */
  sm->h = 0;
  sm->sm_on = 1;
  sm->attached = 1;
  sm->state = ST_ACTIVE;
  sm->wait_at = XMPPUV__NO_DEADLINE;
  sm->idle_at = after(now, sm->cfg.idle_request_ms);
  LOG(sm, XMPPUV_LOG_INFO, "stream management enabled%s%s%s",
      resumable ? " with resumption" : "", loc_copy ? ", location " : "",
      loc_copy ? loc_copy : "");
  unsigned ep = sm->epoch;
  if (sm->probe > 0) flush_held(sm, now);
  if (sm->epoch == ep && sm->nsent > 0) schedule_request(sm, now);
  if (sm->epoch == ep) sm->ev.enable_result(sm->ud, 1, NULL);
  return 1;
}

static void on_failed(xmppuv__sm_t *sm, const xmppuv_stanza_t *el,
                      xmppuv__time_t now) {
  const char *cond = failed_condition(el);
  unsigned ep = sm->epoch;
  if (sm->state == ST_ENABLING) {
    /* The stream goes on without SM; what was written since <enable/> was
     * sent without it. */
    LOG(sm, XMPPUV_LOG_WARN, "server refused to enable stream management (%s)",
        cond ? cond : "no condition");
    sm->state = ST_NOSM;
    sm->wait_at = XMPPUV__NO_DEADLINE;
    unsigned session = ++sm->session;
    while (sm->session == session && sm->nsent > 0)
      pop_done(sm, XMPPUV_ESMOFF);
    if (sm->epoch != ep || sm->state != ST_NOSM) return;
    flush_held(sm, now);
    if (sm->epoch == ep && sm->state == ST_NOSM)
      sm->ev.enable_result(sm->ud, 0, cond);
    return;
  }
  if (sm->state != ST_RESUMING) {
    LOG(sm, XMPPUV_LOG_WARN, "ignoring unsolicited <failed/> (%s)",
        cond ? cond : "no condition");
    return;
  }
  /* XEP-0198 §5: <failed h/> still tells what the old session handled. An
   * h that is not a number says nothing: the answer stands (the session
   * is gone either way; taking it as a protocol error would keep the
   * session to resume and ask again, and fail again, for ever). */
  const char *hs = xmppuv_stanza_attr(el, "h");
  uint32_t h = sm->acked;
  if (hs != NULL && parse_u32(hs, &h) != 0) {
    LOG(sm, XMPPUV_LOG_WARN, "<failed/> with an h that is not a number ('%s'): taken as "
                             "without h", hs);
    hs = NULL;
    h = sm->acked;
  }
  if (hs != NULL) {
    if (!h_in_window(sm, h)) {
      too_high(sm, h, "failed");
      return;
    }
  }
  LOG(sm, XMPPUV_LOG_WARN, "resumption failed (%s)",
      cond ? cond : "no condition");
  sm->state = ST_AUTHED;
  sm->sm_on = 0;
  sm->attached = 0;
  sm->wait_at = XMPPUV__NO_DEADLINE;
  ack_upto(sm, h);
  if (sm->epoch != ep || sm->state != ST_AUTHED) return;
  if (hs != NULL) judge_head(sm);
  if (sm->epoch != ep || sm->state != ST_AUTHED) return;
  settle(sm);
  if (sm->epoch != ep || sm->state != ST_AUTHED) return;
  sm->ev.resume_failed(sm->ud, cond);
}

static void on_resumed(xmppuv__sm_t *sm, const xmppuv_stanza_t *el,
                       xmppuv__time_t now) {
  if (sm->state == ST_CLOSING) return;
  if (sm->state != ST_RESUMING) {
    PROTO_ERROR(sm, "unsolicited <resumed/>: no <resume/> is pending");
    return;
  }
  /* XEP-0198 §5 puts previd on <resumed/>, but it can only answer the one
   * <resume/> we have outstanding: without it, that is the session. One
   * naming another session cannot be ours: that session is not resumed,
   * so it is forgotten (the next connection starts a new one: no loop). */
  const char *previd = xmppuv_stanza_attr(el, "previd");
  if (previd == NULL) {
    LOG(sm, XMPPUV_LOG_DEBUG, "<resumed/> without previd: taken as the answer "
        "to our <resume/>");
  } else if (sm->sm_id == NULL || strcmp(previd, sm->sm_id) != 0) {
    LOG(sm, XMPPUV_LOG_ERROR,
        "<resumed/> names session '%s', not the one asked for: that is not a "
        "resumption; the session is given up and a new one will start", previd);
    forget_session(sm);
    sm->sm_on = 0;
    proto_abort(sm, "<resumed/> names another session than the one asked for; the session "
                    "is given up and a new one will start");
    return;
  }
  const char *hs = xmppuv_stanza_attr(el, "h");
  uint32_t h;
  if (parse_u32(hs, &h) != 0) {
    PROTO_ERROR(sm, "<resumed/> without a valid h (h='%s')", hs ? hs : "");
    return;
  }
  if (!h_in_window(sm, h)) {
    too_high(sm, h, "resumed");
    return;
  }
  unsigned ep = sm->epoch;
  sm->wait_at = XMPPUV__NO_DEADLINE;
  /* XEP-0198 §5: h is handled as on <a/>, then what is left is resent. The
   * stream is not ready yet, so stanzas sent from the ack events are held
   * behind the resent ones. */
  ack_upto(sm, h);
  if (sm->epoch != ep) return;
  judge_head(sm);
  if (sm->epoch != ep) return;
  size_t n = sm->nsent;
  LOG(sm, XMPPUV_LOG_INFO, "session resumed: resending %zu stanzas, %zu held",
      n, xmppuv__smq_len(&sm->q) - n);
  for (size_t i = 0; i < n; i++) {
    xmppuv__smq_entry_t *e = xmppuv__smq_at(&sm->q, i);
    mark_stamp(e);
    if (put_entry(sm, e) != 0) return;
  }
  sm->state = ST_ACTIVE;
  sm->since_r += (uint32_t)n;
  sm->idle_at = after(now, sm->cfg.idle_request_ms);
  flush_held(sm, now);
  if (sm->epoch != ep || sm->state != ST_ACTIVE) return;
  if (sm->nsent > 0) schedule_request(sm, now);
  if (sm->epoch != ep) return;
  sm->ev.resumed(sm->ud);
}

static void on_a(xmppuv__sm_t *sm, const xmppuv_stanza_t *el,
                 xmppuv__time_t now) {
  if (!sm->sm_on) {
    LOG(sm, XMPPUV_LOG_DEBUG, "ignoring <a/>: SM is not on for this stream");
    return;
  }
  const char *hs = xmppuv_stanza_attr(el, "h");
  uint32_t h;
  /* XEP-0198 §4: "An <a/> element MUST possess an 'h' attribute." */
  if (parse_u32(hs, &h) != 0) {
    PROTO_ERROR(sm, "<a/> without a valid h (h='%s')", hs ? hs : "");
    return;
  }
  if (!h_in_window(sm, h)) {
    too_high(sm, h, "a");
    return;
  }
  unsigned ep = sm->epoch;
  ack_upto(sm, h);
  /* Probing held the rest back until the stanza written alone was acked:
   * the next one goes (or, done probing, everything held). */
  if (sm->epoch == ep && sm->state == ST_ACTIVE && xmppuv__smq_len(&sm->q) > sm->nsent)
    flush_held(sm, now);
}

int xmppuv__sm_inbound(xmppuv__sm_t *sm, const xmppuv_stanza_t *el,
                       xmppuv__time_t now) {
  if (sm == NULL || el == NULL || xmppuv_stanza_is_text(el)) return 0;
  const char *name = xmppuv_stanza_name(el);
  const char *ns = xmppuv_stanza_ns(el);
  if (ns != NULL && xmppuv__streq(ns, XMPPUV__NS_SM)) {
    int ours = strcmp(name, "r") == 0 || strcmp(name, "a") == 0 ||
               strcmp(name, "enabled") == 0 || strcmp(name, "failed") == 0 ||
               strcmp(name, "resumed") == 0;
    if (!ours) return 0;
    /* An aborted stream is being dropped: what is still in its buffer
     * changes nothing (a late <resumed/> must not fire). */
    if (sm->state == ST_DEAD) return 1;
    if (strcmp(name, "r") == 0) {
      /* XEP-0198 §4: answer at once, with what we handled. */
      if (sm->sm_on)
        send_a(sm);
      else
        LOG(sm, XMPPUV_LOG_DEBUG, "ignoring <r/>: SM is not on for this stream");
      return 1;
    }
    if (strcmp(name, "a") == 0) {
      on_a(sm, el, now);
      return 1;
    }
    if (strcmp(name, "enabled") == 0) return on_enabled(sm, el, now);
    if (strcmp(name, "failed") == 0) {
      on_failed(sm, el, now);
      return 1;
    }
    on_resumed(sm, el, now);
    return 1;
  }
  /* XEP-0198 §4: every stanza counts (iq results included) before any
   * handler sees it; nonzas never do. h wraps from 2^32-1 to 0. */
  if (sm->sm_on && is_stanza(name, ns)) sm->h++;
  return 0;
}

void xmppuv__sm_inbound_data(xmppuv__sm_t *sm, xmppuv__time_t now) {
  (void)now;
  sm->ack_at = XMPPUV__NO_DEADLINE;
}

/* ---- sending -------------------------------------------------------------------------- */

/* Over our own limit, or over the server's (XEP-0478) once a delay stamp is
 * added, as it may be on a resend: the server would end the stream on it. */
static int too_big(const xmppuv__sm_t *sm, size_t len, const char *name) {
  if (sm->cfg.max_send_bytes != 0 && len > sm->cfg.max_send_bytes) {
    LOG(sm, XMPPUV_LOG_WARN, "send refused: the stanza has %zu bytes, "
        "max_send_bytes is %zu", len, sm->cfg.max_send_bytes);
    return 1;
  }
  size_t stamped = len;
  if (strcmp(name, "message") == 0)
    stamped += sm->delay_prefix.len + XMPPUV__DELAY_SUFFIX_LEN;
  if (sm->peer_max_bytes != 0 && stamped > sm->peer_max_bytes) {
    LOG(sm, XMPPUV_LOG_WARN, "send refused: the stanza has %zu bytes (%zu "
        "with a delay stamp), the server takes at most %zu", len, stamped,
        sm->peer_max_bytes);
    return 1;
  }
  return 0;
}

int xmppuv__sm_send(xmppuv__sm_t *sm, xmppuv_stanza_t *stanza,
                    xmppuv__time_t now, xmppuv__sm_done_cb cb, void *cb_data) {
  if (sm == NULL || stanza == NULL || xmppuv_stanza_is_text(stanza))
    return XMPPUV_EINVAL;
  const char *name = xmppuv_stanza_name(stanza);
  if (!is_stanza(name, xmppuv_stanza_ns(stanza))) return XMPPUV_EINVAL;
  sm->used = 1;
  int ready_state = stream_ready_state(sm);
  /* Written now only if nothing held is waiting ahead of it. */
  int ready = ready_state && xmppuv__smq_len(&sm->q) == sm->nsent;
  int direct = ready && sm->state == ST_NOSM;
  if (!direct && xmppuv__smq_len(&sm->q) >= sm->cfg.queue_max) {
    LOG(sm, XMPPUV_LOG_DEBUG, "queue full (%zu stanzas): send refused",
        xmppuv__smq_len(&sm->q));
    return XMPPUV_ENOBUFS;
  }
  size_t end_tag_at = 0;
  xmppuv__buf_clear(&sm->scratch);
  if (xmppuv__serialize_ex(&sm->scratch, stanza, XMPPUV_NS_CLIENT,
                           XMPPUV__SER_ROOT_END_TAG, &end_tag_at) != 0)
    return XMPPUV_ENOMEM;
  if (sm->scratch.len > UINT32_MAX || too_big(sm, sm->scratch.len, name)) {
    scratch_trim(sm);
    return XMPPUV_ETOOBIG;
  }
  if (direct) {
    int rc = put(sm, sm->scratch.data, sm->scratch.len);
    scratch_trim(sm);
    if (rc == 0 || rc == XMPPUV_ECANCELED) {
      /* Written (ECANCELED: the driver changed the stream from inside the
       * write, after taking the bytes). */
      sm->ev.done(sm->ud, xmppuv_stanza_ref(stanza), XMPPUV_ESMOFF, cb, cb_data);
      return 0;
    }
    /* The stream broke under it: hold it for the next one. */
    ready_state = 0;
    ready = 0;
  }
  xmppuv__smq_entry_t e;
  memset(&e, 0, sizeof e);
  e.stanza = stanza;
  e.cb = cb;
  e.cb_data = cb_data;
  e.sent_wall_ms = now.wall_ms;
  e.end_tag_at = (uint32_t)end_tag_at;
  if (strcmp(name, "message") == 0) {
    e.flags |= XMPPUV__SMQ_MESSAGE;
    if (xmppuv__delay_present(stanza)) e.flags |= XMPPUV__SMQ_HAS_DELAY;
  }
  /* Held while no stream is ready: it goes out later than sent, stamped. */
  if (!ready_state) mark_stamp(&e);
  int rc = xmppuv__smq_push(&sm->q, &e, sm->scratch.data, sm->scratch.len);
  scratch_trim(sm);
  if (rc != 0) return rc;
  if (!ready) return 0;
  sm->nsent++;
  sm->since_r++;
  /* The queue's copy: the same bytes, and scratch may be gone. */
  xmppuv__smq_entry_t *qe = xmppuv__smq_at(&sm->q, sm->nsent - 1);
  qe->stream_no = sm->stream_no;
  e = *qe;
  if (put(sm, e.bytes, e.len) != 0) return 0;
  schedule_request(sm, now);
  return 0;
}

/* ---- stop ------------------------------------------------------------------------------- */

int xmppuv__sm_stop(xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (sm->state == ST_DOWN || sm->state == ST_DEAD) return 0;
  int was_on = sm->sm_on && sm->state == ST_ACTIVE;
  clear_timers(sm);
  sm->state = ST_CLOSING;
  sm->sm_on = was_on;
  sm->drain_expired = 0;
  sm->epoch++;
  if (!was_on) return 0;
  /* XEP-0198 §4: tell the server what we handled before closing. */
  send_a(sm);
  if (sm->state != ST_CLOSING) return 0;
  if (sm->cfg.drain_timeout_ms == 0 || sm->nsent == 0) return 0;
  if (put(sm, R_ELEMENT, sizeof R_ELEMENT - 1) != 0) return 0;
  sm->drain_at = after(now, sm->cfg.drain_timeout_ms);
  LOG(sm, XMPPUV_LOG_DEBUG, "stopping: waiting for %zu acknowledgements",
      sm->nsent);
  return 1;
}

int xmppuv__sm_drained(const xmppuv__sm_t *sm, xmppuv__time_t now) {
  if (!sm->sm_on || sm->nsent == 0 || sm->drain_expired) return 1;
  return sm->drain_at != XMPPUV__NO_DEADLINE && now.mono_ms >= sm->drain_at;
}

void xmppuv__sm_fail_all(xmppuv__sm_t *sm, int status) {
  unsigned session = ++sm->session;
  sm->probe = 0;
  sm->epoch++;
  forget_session(sm);
  sm->sm_on = 0;
  sm->acked = 0;
  sm->h = 0;
  sm->debounce_at = sm->idle_at = sm->ack_at = XMPPUV__NO_DEADLINE;
  if (sm->state == ST_ENABLING || sm->state == ST_ACTIVE ||
      sm->state == ST_RESUMING) {
    sm->state = ST_CLOSING;
    sm->wait_at = XMPPUV__NO_DEADLINE;
  }
  size_t n = xmppuv__smq_len(&sm->q);
  if (n > 0)
    LOG(sm, XMPPUV_LOG_INFO, "%zu stanzas not acknowledged: failing them (%s)",
        n, xmppuv_err_name(status));
  /* Only those queued now: a stanza sent from a callback stays held. */
  for (size_t i = 0; i < n && sm->session == session &&
                     xmppuv__smq_len(&sm->q) > 0;
       i++)
    pop_done(sm, status);
}

/* ---- timers -------------------------------------------------------------------------------- */

uint64_t xmppuv__sm_deadline(const xmppuv__sm_t *sm) {
  uint64_t d = sm->debounce_at;
  if (sm->idle_at < d) d = sm->idle_at;
  if (sm->ack_at < d) d = sm->ack_at;
  if (sm->wait_at < d) d = sm->wait_at;
  if (sm->drain_at < d) d = sm->drain_at;
  return d;
}

void xmppuv__sm_tick(xmppuv__sm_t *sm, xmppuv__time_t now) {
  uint64_t t = now.mono_ms;
  if (sm->wait_at <= t) {
    char why[128];
    snprintf(why, sizeof why, "no answer to <%s/> within %" PRIu64 " ms",
             sm->state == ST_RESUMING ? "resume" : "enable", sm->cfg.wait_timeout_ms);
    LOG(sm, XMPPUV_LOG_WARN, "%s: dropping the connection", why);
    go_dead(sm);
    sm->ev.abort(sm->ud, XMPPUV_ETIMEDOUT, why);
    return;
  }
  if (sm->ack_at <= t) {
    /* Not a graceful close: </stream:stream> would end the server's
     * session, and we want to resume it. */
    char why[128];
    snprintf(why, sizeof why, "nothing received for %" PRIu64 " ms after <r/> (ack timeout)",
             sm->cfg.ack_timeout_ms);
    LOG(sm, XMPPUV_LOG_WARN, "%s: dropping the connection to resume", why);
    go_dead(sm);
    sm->ev.abort(sm->ud, XMPPUV_ETIMEDOUT, why);
    return;
  }
  if (sm->drain_at <= t) {
    sm->drain_at = XMPPUV__NO_DEADLINE;
    sm->drain_expired = 1;
  }
  unsigned ep = sm->epoch;
  if (sm->debounce_at <= t) {
    sm->debounce_at = XMPPUV__NO_DEADLINE;
    if (sm->state == ST_ACTIVE && sm->nsent > 0) request_ack(sm, now);
    if (sm->epoch != ep) return;
  }
  if (sm->idle_at <= t) {
    sm->idle_at = XMPPUV__NO_DEADLINE;
    if (sm->state == ST_ACTIVE && sm->sm_on) request_ack(sm, now);
  }
}

/* ---- state ----------------------------------------------------------------------------------- */

int xmppuv__sm_active(const xmppuv__sm_t *sm) {
  return sm->sm_on && (sm->state == ST_ACTIVE || sm->state == ST_CLOSING);
}

int xmppuv__sm_resumable(const xmppuv__sm_t *sm) {
  return sm->cfg.enabled && sm->cfg.resume && sm->sm_id != NULL;
}

size_t xmppuv__sm_queued(const xmppuv__sm_t *sm) {
  return xmppuv__smq_len(&sm->q);
}

size_t xmppuv__sm_unacked(const xmppuv__sm_t *sm) { return sm->nsent; }

uint32_t xmppuv__sm_inbound_count(const xmppuv__sm_t *sm) { return sm->h; }

uint32_t xmppuv__sm_outbound_count(const xmppuv__sm_t *sm) {
  return sm->acked + (uint32_t)sm->nsent;
}

const char *xmppuv__sm_id(const xmppuv__sm_t *sm) { return sm->sm_id; }

/* ---- persistence ------------------------------------------------------------------------------- */

int xmppuv__sm_export(const xmppuv__sm_t *sm, xmppuv__time_t now,
                      xmppuv__buf_t *out) {
  xmppuv__smp_header_t hdr;
  memset(&hdr, 0, sizeof hdr);
  hdr.sm_id = sm->sm_id;
  hdr.sm_id_len = sm->sm_id ? strlen(sm->sm_id) : 0;
  hdr.resumable = sm->sm_id != NULL;
  hdr.location = sm->location;
  hdr.location_len = sm->location ? strlen(sm->location) : 0;
  hdr.full_jid = sm->full_jid;
  hdr.full_jid_len = sm->full_jid ? strlen(sm->full_jid) : 0;
  hdr.out_count = sm->acked + (uint32_t)sm->nsent;
  hdr.in_h = sm->h;
  hdr.max_s = sm->max_s;
  /* Still connected: the session is as fresh as now. */
  hdr.lost_wall_ms =
      sm->attached || !sm->lost_valid ? now.wall_ms : sm->lost_wall;
  return xmppuv__smp_encode(out, &hdr, &sm->q, sm->nsent);
}

static int text_ok(const char *s, size_t len) {
  return len == 0 || (memchr(s, '\0', len) == NULL &&
                      xmppuv__xml_text_check(s, len) == 0);
}

static int dup_field(const char *s, size_t len, char **out) {
  *out = NULL;
  if (len == 0) return 0;
  *out = xmppuv__strndup(s, len);
  return *out != NULL ? 0 : XMPPUV_ENOMEM;
}

/* One saved stanza back into a queue entry: parsed (it must be one
 * message, presence or iq) and serialized again, so what goes on the wire
 * is always our serializer's output. */
static int import_entry(xmppuv__sm_t *sm, xmppuv__smq_t *q,
                        const xmppuv__smp_entry_t *se) {
  xmppuv_stanza_t *s;
  int rc = xmppuv_stanza_parse(se->bytes, se->len, &s);
  if (rc == XMPPUV_ENOMEM) return rc;
  if (rc != 0) return XMPPUV_ESTATEBLOB;
  const char *name = xmppuv_stanza_name(s);
  if (!is_stanza(name, xmppuv_stanza_ns(s))) {
    xmppuv_stanza_unref(s);
    return XMPPUV_ESTATEBLOB;
  }
  /* A lone document has no namespace; on the stream it was jabber:client. */
  xmppuv__stanza_default_ns(s, XMPPUV_NS_CLIENT);
  size_t end_tag_at = 0;
  xmppuv__buf_clear(&sm->scratch);
  rc = xmppuv__serialize_ex(&sm->scratch, s, XMPPUV_NS_CLIENT,
                            XMPPUV__SER_ROOT_END_TAG, &end_tag_at);
  if (rc == 0 && sm->scratch.len > UINT32_MAX) rc = XMPPUV_ESTATEBLOB;
  if (rc == 0) {
    xmppuv__smq_entry_t e;
    memset(&e, 0, sizeof e);
    e.stanza = s;
    e.sent_wall_ms = se->sent_wall_ms;
    e.end_tag_at = (uint32_t)end_tag_at;
    if (strcmp(name, "message") == 0) {
      e.flags |= XMPPUV__SMQ_MESSAGE;
      if (xmppuv__delay_present(s)) e.flags |= XMPPUV__SMQ_HAS_DELAY;
    }
    if (se->flags & XMPPUV__SMP_STAMP) mark_stamp(&e);
    rc = xmppuv__smq_push(q, &e, sm->scratch.data, sm->scratch.len);
  }
  scratch_trim(sm);
  xmppuv_stanza_unref(s);
  return rc;
}

/* The account rule of xmppuv__sm_import(): before anything is loaded. */
static int check_account(const xmppuv__sm_t *sm, const xmppuv__smp_header_t *hdr,
                         const xmppuv_jid_t *account) {
  if (account == NULL) return 0;
  if (hdr->full_jid_len == 0) {
    /* The SM-ID comes after binding, so export never writes a session
     * without its JID: one that has no JID cannot be shown to be ours. */
    if (!hdr->resumable) return 0;
    LOG(sm, XMPPUV_LOG_WARN, "saved state refused: a session without a JID");
    return XMPPUV_ESTATEBLOB;
  }
  char *full = xmppuv__strndup(hdr->full_jid, hdr->full_jid_len);
  if (full == NULL) return XMPPUV_ENOMEM;
  xmppuv_jid_t *j = NULL;
  int rc = memchr(hdr->full_jid, '\0', hdr->full_jid_len) == NULL
               ? xmppuv_jid_parse(full, &j)
               : XMPPUV_EJID;
  xmppuv__free(full);
  if (rc == XMPPUV_ENOMEM) return rc;
  int ours = rc == 0 && xmppuv_jid_bare_equal(j, account);
  xmppuv_jid_free(j);
  if (ours) return 0;
  LOG(sm, XMPPUV_LOG_WARN, "saved state refused: %s",
      rc != 0 ? "its JID is invalid" : "it belongs to another account");
  return XMPPUV_ESTATEBLOB;
}

int xmppuv__sm_import(xmppuv__sm_t *sm, const void *data, size_t len,
                      const xmppuv_jid_t *account, char **full_jid) {
  if (full_jid != NULL) *full_jid = NULL;
  xmppuv__smp_header_t hdr;
  xmppuv__smp_reader_t rd;
  int rc = xmppuv__smp_decode(data, len, &hdr, &rd);
  if (rc != 0) {
    LOG(sm, XMPPUV_LOG_WARN, "saved state refused: corrupt or unknown format");
    return rc;
  }
  if (!text_ok(hdr.sm_id, hdr.sm_id_len) ||
      !text_ok(hdr.location, hdr.location_len) ||
      !text_ok(hdr.full_jid, hdr.full_jid_len)) {
    LOG(sm, XMPPUV_LOG_WARN, "saved state refused: invalid text");
    return XMPPUV_ESTATEBLOB;
  }
  /* What the blob is comes first: another account's is refused as such
   * even by an engine that has loaded one already. */
  rc = check_account(sm, &hdr, account);
  if (rc != 0) return rc;
  if (sm->used || sm->state != ST_DOWN || xmppuv__smq_len(&sm->q) != 0 ||
      sm->sm_id != NULL)
    return XMPPUV_ESTATE;
  if (hdr.nentries > sm->cfg.queue_max) {
    LOG(sm, XMPPUV_LOG_WARN,
        "saved state holds %" PRIu32 " stanzas, more than queue_max %zu",
        hdr.nentries, sm->cfg.queue_max);
    return XMPPUV_ENOBUFS;
  }
  char *id = NULL, *loc = NULL, *jid = NULL, *jid_out = NULL;
  xmppuv__buf_t prefix = XMPPUV__BUF_INIT;
  xmppuv__smq_t q;
  xmppuv__smq_init(&q, sm->cfg.queue_max);
  size_t nsent = 0;
  if ((hdr.resumable && dup_field(hdr.sm_id, hdr.sm_id_len, &id) != 0) ||
      dup_field(hdr.location, hdr.location_len, &loc) != 0 ||
      dup_field(hdr.full_jid, hdr.full_jid_len, &jid) != 0 ||
      (full_jid != NULL &&
       dup_field(hdr.full_jid, hdr.full_jid_len, &jid_out) != 0) ||
      xmppuv__delay_prefix(&prefix, jid) != 0) {
    rc = XMPPUV_ENOMEM;
    goto fail;
  }
  xmppuv__smp_entry_t se;
  while (xmppuv__smp_next(&rd, &se)) {
    if ((rc = import_entry(sm, &q, &se)) != 0) goto fail;
    if (se.flags & XMPPUV__SMP_SENT) nsent++;
  }
  xmppuv__smq_free(&sm->q);
  sm->q = q;
  sm->nsent = nsent;
  sm->acked = hdr.out_count - (uint32_t)nsent;
  sm->h = hdr.in_h;
  forget_session(sm);
  sm->sm_id = id;
  sm->location = id != NULL ? loc : NULL;
  if (id == NULL) xmppuv__free(loc);
  sm->max_s = id != NULL ? hdr.max_s : 0;
  sm->lost_valid = id != NULL;
  sm->lost_mono_valid = 0;
  sm->lost_wall = hdr.lost_wall_ms;
  xmppuv__free(sm->full_jid);
  sm->full_jid = jid;
  xmppuv__buf_free(&sm->delay_prefix);
  sm->delay_prefix = prefix;
  sm->used = 1;
  if (full_jid != NULL) *full_jid = jid_out;
  LOG(sm, XMPPUV_LOG_INFO,
      "saved state loaded: %zu unacked, %zu held, session %s", nsent,
      xmppuv__smq_len(&sm->q) - nsent, id != NULL ? "resumable" : "not resumable");
  return 0;
fail:
  if (rc != XMPPUV_ENOMEM)
    LOG(sm, XMPPUV_LOG_WARN, "saved state refused: a stanza is invalid");
  xmppuv__smq_free(&q);
  xmppuv__free(id);
  xmppuv__free(loc);
  xmppuv__free(jid);
  xmppuv__free(jid_out);
  xmppuv__buf_free(&prefix);
  return rc;
}
