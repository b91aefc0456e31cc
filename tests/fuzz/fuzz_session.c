/* Fuzz target: the whole I/O-free core of a connection, the session
 * (lib/session.c: stream, features, STARTTLS, SASL, bind) and the Stream
 * Management engine (lib/sm/), wired together the way lib/client.c wires
 * them, fed arbitrary server bytes after a scripted handshake, with sends,
 * timers, disconnects, resumption and saved state mixed in.
 *
 * Input: 4 header bytes, then a program.
 *   [0] SM config: bits 0-2 == 7 turns SM off; bit 3 no resumption;
 *       bit 4 ack threshold 2; bit 5 queue_max 3; bit 6 resend on failed;
 *       bit 7 drain timeout 2 s
 *   [1] bit 0 max_resume_s 60; bit 1 no ack debounce; bit 2 no idle <r/>;
 *       bit 3 ack timeout 5 s; bits 4-5 how far the first connection is
 *       scripted (0 none: the fuzz bytes are the server from its first
 *       byte; 1 up to SASL success; 2 and 3 up to <enabled/>);
 *       bits 6-7 chunking style for server bytes (see fuzz_input.h)
 *   [2] session config: bit 0 allow ANONYMOUS; bit 1 allow-list
 *       "SCRAM-SHA-256,PLAIN,ANONYMOUS"; bit 2 small XML limits; bit 3 the
 *       first connection starts without TLS (STARTTLS expected: the
 *       harness "completes" TLS when the session asks); bit 4 the password
 *       callback fails; bit 5 send from inside done events; bit 6 logging
 *       at trace level (and the check that no log line holds the password)
 *   [3] seed for chunk sizes and other harness choices
 *   Then server bytes, interrupted by commands: a NUL byte (never valid in
 *   XML) is followed by one command byte c; c % 16 selects:
 *     0 advance the clock (c >> 4 picks 1 ms ... 10 min) running every
 *       deadline due on the way, as the client's timer would
 *     1 send stanza number c >> 4 of a fixed table; 2 send (c >> 4) + 1
 *       messages
 *     3 drop the connection and reconnect (scripted, resuming when the
 *       engine can); 4 the same after (c >> 4) minutes offline
 *     5 drop, save the SM state, load it into a new engine (a process
 *       restart), reconnect
 *     6 graceful stop (sm_stop, </stream:stream> when drained)
 *     7 the app closes: fail_all(ECANCELED), drop, start again
 *     8 tick now; 9 the next write fails
 *     10 the server acks everything sent (<a h/> with the right h);
 *     11 <r/>; 12 the server answers a pending <resume/> (<resumed/> or
 *       <failed/> by c >> 4, with an h inside the window)
 *     13 reconnect without a script (the fuzz bytes are the new server)
 *     14 change the chunking style to c >> 4; 15 nothing
 *
 * Invariants checked as it runs: every stanza sent gets at most one done
 * event, in send order, with a documented status, and exactly one by the
 * end (after fail_all); sends refused with an error get none; queued never
 * exceeds queue_max and unacked never exceeds queued; the engine writes
 * nothing while disconnected or after it aborted the stream; at most one of
 * enable_result/resumed per stream; a tick leaves no deadline already due;
 * saved state always loads back with the same counters; no log line holds
 * the password or the PLAIN message (in what we write).
 *
 * FUZZ_DEBUG set: what goes in and out and every event, on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "fuzz_input.h"
#include "util/log.h"
#include "sasl/sasl.h"
#include "session/session.h"
#include "sm/sm.h"
#include "xml/serialize.h"
#include "xmppuv.h"

#define DOMAIN "example.com"
#define BARE "juliet@example.com"
#define USERNAME "juliet"
#define RESOURCE "balcony"
#define FULL BARE "/" RESOURCE
#define PASSWORD "pencil-Secret-7q"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"

#define MAX_RECS 512
#define MAX_STEPS 4096

static const char header_xml[] =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='" DOMAIN
    "' version='1.0' xml:lang='en'>";
static const char features_sasl[] =
    "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>PLAIN</mechanism>"
    "</mechanisms></stream:features>";
static const char success_xml[] = "<success xmlns='" NS_SASL "'/>";
static const char features_bind[] =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    "<sm xmlns='urn:xmpp:sm:3'/></stream:features>";

/* What the app sends (command 1). */
static const char *const stanzas[16] = {
    "<message to='romeo@example.net' type='chat' id='m1'><body>hi</body></message>",
    "<presence/>",
    "<iq type='get' id='q1' to='" DOMAIN "'><ping xmlns='urn:xmpp:ping'/></iq>",
    ("<message to='romeo@example.net' id='m2'><body>x</body>"
     "<delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/></message>"),
    "<message to='romeo@example.net'><body>&lt;&amp;&gt;</body></message>",
    "<presence type='unavailable'><status>bye</status></presence>",
    "<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>",
    "<message xmlns='jabber:client' id='m3'><body>ns</body></message>",
    "<message id='m4'><body>\xc3\xa9\xe2\x82\xac</body><x xmlns='a:b' y='1'/></message>",
    "<iq type='result' id='r1'/>",
    "<message id='m5' type='groupchat' to='room@muc.example.com'><body>g</body></message>",
    "<presence to='room@muc.example.com/nick'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    "<message id='m6'/>",
    "<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>",
    "<message id='m7'><body>two</body><body xml:lang='de'>zwei</body></message>",
    "<foo xmlns='urn:not:a:stanza'/>", /* refused: EINVAL, no done */
};

typedef struct rec {
  int dones;
  int status;
  int gone; /* refused, or handed to another engine by save/load */
} rec_t;

typedef struct harness {
  xmppuv__session_t *s;
  xmppuv__sm_t *sm;
  xmppuv__sm_config_t smc;
  xmppuv__session_config_t sc;
  xmppuv__time_t now;
  xmppuv__log_t log;
  fz_rng_t rng;
  unsigned style;
  uint8_t flags2;

  int conn_up;   /* a connection is open and the session started on it */
  int dropping;  /* the driver dropped it from inside a callback */
  int sm_down;   /* the engine was told disconnected, no stream since */
  int aborted;   /* the engine aborted this connection */
  int sm_offered;
  int stream_results; /* enable_result + resumed on this stream */
  int starttls;
  int stopping;
  int fail_next_write;
  int in_cleanup;
  int reentrant_sends;
  int debug; /* FUZZ_DEBUG set: a transcript on stderr, for triage */
  char bind_id[32];

  rec_t recs[MAX_RECS];
  size_t nrecs;
  size_t last_done; /* index + 1 of the last record done */
  char plain_b64[128];
} harness_t;

static harness_t H;

/* ---- the fake connection ---------------------------------------------- */

static void note_bind_id(const char *data, size_t len) {
  static const char pre[] = "<iq type='set' id='";
  if (len < sizeof pre || memcmp(data, pre, sizeof pre - 1) != 0) return;
  const char *id = data + sizeof pre - 1;
  const char *end = memchr(id, '\'', len - (sizeof pre - 1));
  if (end == NULL || (size_t)(end - id) >= sizeof H.bind_id) return;
  memcpy(H.bind_id, id, (size_t)(end - id));
  H.bind_id[end - id] = '\0';
}

static void drop_connection(void);

static int conn_write(const char *data, size_t len) {
  FZ_CHECK(len > 0, "empty write");
  if (!H.conn_up) return XMPPUV_ESTATE; /* client.c: no connection */
  if (H.fail_next_write) {
    /* The socket broke: the client hears it from the connection later. */
    H.fail_next_write = 0;
    H.dropping = 1;
    return UV_EPIPE;
  }
  note_bind_id(data, len);
  if (H.debug) fprintf(stderr, "out: %.*s\n", (int)len, data);
  return 0;
}

#define TRACE(...) \
  do {                                        \
    if (H.debug) fprintf(stderr, __VA_ARGS__); \
  } while (0)

/* ---- session events (as lib/client.c) --------------------------------- */

static int ev_write(void *ud, const char *data, size_t len) {
  (void)ud;
  return conn_write(data, len);
}

static int ev_starttls(void *ud, const char *rest, size_t rest_len) {
  (void)ud, (void)rest, (void)rest_len;
  H.starttls = 1;
  return 0;
}

static size_t ev_cb_types(void *ud, const char **types, size_t max) {
  (void)ud;
  static const char *const ours[] = {"tls-exporter", "tls-server-end-point"};
  size_t n = max < 2 ? max : 2;
  for (size_t i = 0; i < n; i++) types[i] = ours[i];
  return n;
}

static int ev_cb_data(void *ud, const char *type, unsigned char *out, size_t *len) {
  (void)ud, (void)type;
  FZ_CHECK(*len >= 32, "channel-binding buffer of %zu", *len);
  for (size_t i = 0; i < 32; i++) out[i] = (unsigned char)(i * 7u + 1u);
  *len = 32;
  return 0;
}

static int ev_password(void *ud, char *buf, size_t size) {
  (void)ud;
  if ((H.flags2 >> 4) & 1) return XMPPUV_EAUTH;
  FZ_CHECK(size > sizeof PASSWORD, "password buffer of %zu", size);
  memcpy(buf, PASSWORD, sizeof PASSWORD);
  return 0;
}

static void ev_status(void *ud, xmppuv_status_t status) { (void)ud, (void)status; }

static void ev_authenticated(void *ud, int sm_offered) {
  (void)ud;
  FZ_CHECK(H.conn_up, "authenticated without a connection");
  H.sm_offered = sm_offered;
  xmppuv__sm_stream_authenticated(H.sm, H.now);
  H.sm_down = 0;
  H.aborted = 0;
  H.stream_results = 0;
  if (sm_offered && xmppuv__sm_can_resume(H.sm, H.now)) {
    /* Could not ask: try again on the next connection rather than bind. */
    if (xmppuv__sm_resume(H.sm, H.now) != 0) drop_connection();
    return;
  }
  xmppuv__session_bind(H.s);
}

static void ev_bound(void *ud, const char *full_jid) {
  (void)ud;
  xmppuv_jid_t *j = NULL;
  if (xmppuv_jid_parse(full_jid, &j) != 0) {
    drop_connection();
    return;
  }
  xmppuv_jid_free(j);
  int rc = xmppuv__sm_enable(H.sm, full_jid, H.sm_offered, H.now);
  if (rc != 0) drop_connection();
}

static int app_send_stanza(xmppuv_stanza_t *st);
static int app_send(unsigned k);

static void ev_element(void *ud, xmppuv_stanza_t *el) {
  (void)ud;
  int rc = xmppuv__sm_inbound(H.sm, el, H.now);
  if (rc < 0) {
    FZ_CHECK(rc == XMPPUV_ENOMEM, "sm_inbound: %s", xmppuv_err_name(rc));
    drop_connection();
    return;
  }
  if (rc > 0) return;
  /* RFC 6120 §8.2.3: the client answers an iq get/set nobody handles. */
  const char *ns = xmppuv_stanza_ns(el);
  const char *type = xmppuv_stanza_attr(el, "type");
  if (ns != NULL && strcmp(ns, XMPPUV_NS_CLIENT) == 0 &&
      strcmp(xmppuv_stanza_name(el), "iq") == 0 && type != NULL &&
      (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) && !H.stopping) {
    xmppuv_stanza_t *reply = NULL;
    if (xmppuv_iq_error_new(el, "cancel", "service-unavailable", &reply) == 0) {
      app_send_stanza(reply);
      xmppuv_stanza_unref(reply);
    }
  }
}

static void ev_failed(void *ud, const xmppuv_error_t *err, const char *see_other_host) {
  (void)ud, (void)see_other_host;
  FZ_CHECK(err != NULL && err->code < 0, "failed without an error code");
  TRACE("[session failed %s %s]\n", xmppuv_err_name(err->code),
        err->condition ? err->condition : "-");
  drop_connection();
}

static void ev_closed(void *ud) {
  (void)ud;
  xmppuv__session_close(H.s);
  drop_connection();
}

static const xmppuv__session_events_t session_events = {
    ev_write,  ev_starttls, ev_cb_types, ev_cb_data, ev_password, ev_status,
    ev_authenticated, ev_bound, ev_element, ev_failed, ev_closed};

/* ---- SM events ------------------------------------------------------------ */

static int sm_write(void *ud, const char *data, size_t len) {
  (void)ud;
  FZ_CHECK(!H.sm_down, "the SM engine wrote while disconnected: %.*s", (int)len, data);
  FZ_CHECK(!H.aborted, "the SM engine wrote after aborting: %.*s", (int)len, data);
  int rc = conn_write(data, len);
  /* client.c: after a failed write the engine writes nothing more on this
   * stream; the driver drops it at once, from inside the write. */
  if (rc != 0 && rc != XMPPUV_ESTATE) drop_connection();
  return rc;
}

static void sm_enable_result(void *ud, int enabled, const char *condition) {
  (void)ud;
  TRACE("[enable_result %d %s]\n", enabled, condition ? condition : "-");
  FZ_CHECK(++H.stream_results == 1, "a second enable_result/resumed on one stream");
}

static void sm_resumed(void *ud) {
  (void)ud;
  TRACE("[resumed]\n");
  FZ_CHECK(++H.stream_results == 1, "a second enable_result/resumed on one stream");
}

static void sm_resume_failed(void *ud, const char *condition) {
  (void)ud;
  TRACE("[resume_failed %s]\n", condition ? condition : "-");
  if (!H.stopping) xmppuv__session_bind(H.s);
}

static void sm_done(void *ud, xmppuv_stanza_t *stanza, int status, xmppuv__sm_done_cb cb,
                    void *cb_data) {
  (void)ud;
  FZ_CHECK(stanza != NULL, "done without a stanza");
  FZ_CHECK(status == 0 || status == XMPPUV_ESMOFF || status == XMPPUV_ESMFAILED ||
               status == XMPPUV_ECANCELED,
           "done with %s", xmppuv_err_name(status));
  if (cb == NULL) return; /* loaded from saved state */
  size_t i = (size_t)(uintptr_t)cb_data - 1;
  FZ_CHECK(i < H.nrecs, "done for an unknown stanza");
  rec_t *r = &H.recs[i];
  TRACE("[done %zu %s]\n", i, status ? xmppuv_err_name(status) : "OK");
  FZ_CHECK(!r->gone, "done for a stanza that was refused or handed over");
  FZ_CHECK(r->dones == 0, "a second done for stanza %zu (%s, then %s)", i,
           xmppuv_err_name(r->status), xmppuv_err_name(status));
  FZ_CHECK(i + 1 > H.last_done, "done out of send order: %zu after %zu", i, H.last_done - 1);
  H.last_done = i + 1;
  r->dones = 1;
  r->status = status;
  cb(cb_data, stanza, status);
  /* Re-entrancy: the app sends again from its callback. */
  if (((H.flags2 >> 5) & 1) && !H.in_cleanup && H.reentrant_sends < 8) {
    H.reentrant_sends++;
    app_send(fz_rng_next(&H.rng) % 15u);
  }
}

static void sm_abort(void *ud, int reason) {
  (void)ud;
  FZ_CHECK(reason == XMPPUV_ETIMEDOUT || reason == XMPPUV_ESMHIGH || reason == XMPPUV_EPROTO,
           "abort with %s", xmppuv_err_name(reason));
  TRACE("[abort %s]\n", xmppuv_err_name(reason));
  H.aborted = 1;
  drop_connection();
}

static const xmppuv__sm_events_t sm_events = {sm_write, sm_enable_result, sm_resumed,
                                              sm_resume_failed, sm_done, sm_abort};

static void stanza_cb(void *cb_data, xmppuv_stanza_t *stanza, int status) {
  (void)cb_data, (void)stanza, (void)status;
}

/* ---- the log -------------------------------------------------------------- */

static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud, (void)level;
  FZ_CHECK(area != NULL && msg != NULL, "log line without area or text");
  /* Only what we write: the server may echo anything back (and the fuzzer
   * learns the password from this very comparison). */
  if (strcmp(area, "wire-out") != 0 && strcmp(area, "sasl") != 0) return;
  FZ_CHECK(strstr(msg, PASSWORD) == NULL, "the password in a log line: %s", msg);
  FZ_CHECK(strstr(msg, H.plain_b64) == NULL, "the PLAIN message in a log line: %s", msg);
}

/* ---- the driver ----------------------------------------------------------- */

static void check_state(void) {
  size_t q = xmppuv__sm_queued(H.sm);
  FZ_CHECK(q <= H.smc.queue_max, "queued %zu > queue_max %zu", q, H.smc.queue_max);
  FZ_CHECK(xmppuv__sm_unacked(H.sm) <= q, "unacked %zu > queued %zu",
           xmppuv__sm_unacked(H.sm), q);
}

/* The table's stanzas, parsed once (sending takes a reference; the engine
 * serializes at once, so one tree serves every send). */
static xmppuv_stanza_t *parsed[16];

static int app_send_stanza(xmppuv_stanza_t *st);

static int app_send(unsigned k) { return app_send_stanza(parsed[k % 16u]); }

static int app_send_stanza(xmppuv_stanza_t *st) {
  if (H.nrecs == MAX_RECS) return 0;
  size_t i = H.nrecs++;
  memset(&H.recs[i], 0, sizeof H.recs[i]);
  int rc = xmppuv__sm_send(H.sm, st, H.now, stanza_cb, (void *)(uintptr_t)(i + 1));
  if (rc != 0) {
    FZ_CHECK(rc == XMPPUV_ENOBUFS || rc == XMPPUV_EINVAL, "send: %s", xmppuv_err_name(rc));
    FZ_CHECK(H.recs[i].dones == 0, "a refused send got a done");
    H.recs[i].gone = 1;
  }
  check_state();
  return rc;
}

/* Inside a callback, as client.c's drop_connection(): the engine hears of
 * it at once; the connection closes when the current feed returns. */
static void drop_connection(void) {
  if (!H.conn_up || H.sm_down) {
    H.dropping = H.conn_up;
    return;
  }
  xmppuv__sm_disconnected(H.sm, H.now);
  H.sm_down = 1;
  H.dropping = 1;
}

/* After a feed: close a connection the driver dropped. */
static void settle_connection(void) {
  if (H.starttls && H.conn_up && !H.dropping) {
    H.starttls = 0;
    if (xmppuv__session_tls_ready(H.s) != 0) drop_connection();
  }
  if (H.dropping) {
    if (!H.sm_down) {
      xmppuv__sm_disconnected(H.sm, H.now);
      H.sm_down = 1;
    }
    H.conn_up = 0;
    H.dropping = 0;
    H.starttls = 0;
    /* client.c on_conn_closed: a stop ends with everything settled. */
    if (H.stopping) {
      H.stopping = 0;
      xmppuv__sm_fail_all(H.sm, XMPPUV_ECANCELED);
      check_state();
    }
  }
}

static void feed(const char *data, size_t len) {
  size_t off = 0;
  TRACE("in: %.*s\n", (int)len, data);
  while (off < len && H.conn_up && !H.dropping) {
    size_t n = fz_chunk(&H.rng, H.style, len - off);
    xmppuv__sm_inbound_data(H.sm, H.now);
    xmppuv__session_feed(H.s, data + off, n);
    off += n;
    check_state();
    if (H.stopping && H.conn_up && !H.dropping && xmppuv__sm_drained(H.sm, H.now))
      xmppuv__session_close(H.s);
    settle_connection();
  }
}

static void feed_str(const char *xml) { feed(xml, strlen(xml)); }

static void advance(uint64_t ms) {
  uint64_t target = H.now.mono_ms + ms;
  for (int guard = 0;; guard++) {
    FZ_CHECK(guard < 100000, "timers do not settle");
    uint64_t d = xmppuv__sm_deadline(H.sm);
    if (d == XMPPUV__NO_DEADLINE || d > target) break;
    if (d > H.now.mono_ms) {
      H.now.wall_ms += (int64_t)(d - H.now.mono_ms);
      H.now.mono_ms = d;
    }
    xmppuv__sm_tick(H.sm, H.now);
    FZ_CHECK(xmppuv__sm_deadline(H.sm) > H.now.mono_ms,
             "a tick left a deadline due: the driver would spin");
    check_state();
    if (H.stopping && H.conn_up && !H.dropping && xmppuv__sm_drained(H.sm, H.now))
      xmppuv__session_close(H.s);
    settle_connection();
  }
  H.now.wall_ms += (int64_t)(target - H.now.mono_ms);
  H.now.mono_ms = target;
}

static void open_connection(int tls) {
  if (H.conn_up) return;
  H.conn_up = 1;
  H.dropping = 0;
  H.starttls = 0;
  H.bind_id[0] = '\0';
  if (xmppuv__session_start(H.s, tls) != 0) drop_connection();
  settle_connection();
}

/* <resumed previd h/>; the SM-ID came from the fuzzed <enabled/>, so it is
 * escaped (a long one is cut, and the resumption fails as it should). */
static void resumed_xml(char *buf, size_t size, const char *id, uint32_t h) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  FZ_CHECK(xmppuv__escape_attr(&b, id ? id : "none", strlen(id ? id : "none")) == 0, "oom");
  snprintf(buf, size, "<resumed xmlns='urn:xmpp:sm:3' previd='%s' h='%u'/>",
           b.data ? b.data : "", (unsigned)h);
  xmppuv__buf_free(&b);
}

/* The server side of a handshake, as far as `level` says (1: to SASL
 * success, 2: to <enabled/> or <resumed/>). */
static void script(int level) {
  if (level == 0 || !H.conn_up) return;
  feed_str(header_xml);
  feed_str(features_sasl);
  feed_str(success_xml);
  if (level == 1) return;
  feed_str(header_xml);
  feed_str(features_bind);
  if (!H.conn_up) return;
  const char *id = xmppuv__sm_id(H.sm);
  if (H.bind_id[0] == '\0' && id != NULL) {
    /* <resume/> went out: the server takes it. */
    char buf[512];
    resumed_xml(buf, sizeof buf, id, xmppuv__sm_outbound_count(H.sm));
    feed_str(buf);
    return;
  }
  if (H.bind_id[0] != '\0') {
    char buf[256];
    snprintf(buf, sizeof buf,
             "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
             "<jid>" FULL "</jid></bind></iq>",
             H.bind_id);
    feed_str(buf);
    feed_str("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true' max='300'/>");
  }
}

static void reconnect(int scripted) {
  if (H.conn_up) {
    drop_connection();
    settle_connection();
  }
  H.stopping = 0;
  advance(1000); /* the reconnect delay */
  open_connection(1);
  if (scripted) script(2);
}

/* A process restart: the state is saved and loaded into a new engine. */
static void save_and_load(void) {
  if (H.conn_up) {
    drop_connection();
    settle_connection();
  }
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  int rc = xmppuv__sm_export(H.sm, H.now, &blob);
  FZ_CHECK(rc == 0, "export: %s", xmppuv_err_name(rc));
  xmppuv__sm_t *fresh = NULL;
  FZ_CHECK(xmppuv__sm_new(&H.smc, &sm_events, NULL, &fresh) == 0, "sm_new");
  char *jid = NULL;
  rc = xmppuv__sm_import(fresh, blob.data, blob.len, &jid);
  FZ_CHECK(rc == 0, "our own saved state does not load: %s", xmppuv_err_name(rc));
  FZ_CHECK(xmppuv__sm_queued(fresh) == xmppuv__sm_queued(H.sm) &&
               xmppuv__sm_unacked(fresh) == xmppuv__sm_unacked(H.sm) &&
               xmppuv__sm_inbound_count(fresh) == xmppuv__sm_inbound_count(H.sm) &&
               xmppuv__sm_outbound_count(fresh) == xmppuv__sm_outbound_count(H.sm),
           "loaded state differs");
  const char *a = xmppuv__sm_id(H.sm), *b = xmppuv__sm_id(fresh);
  FZ_CHECK((a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0), "SM-ID differs");
  xmppuv__free(jid);
  xmppuv__buf_free(&blob);
  /* Whatever the old engine held now belongs to the new one. */
  for (size_t i = 0; i < H.nrecs; i++)
    if (H.recs[i].dones == 0) H.recs[i].gone = 1;
  xmppuv__sm_free(H.sm);
  H.sm = fresh;
  H.sm_down = 1;
}

static void answer_resume(unsigned how) {
  const char *id = xmppuv__sm_id(H.sm);
  uint32_t out = xmppuv__sm_outbound_count(H.sm);
  uint32_t acked = out - (uint32_t)xmppuv__sm_unacked(H.sm);
  uint32_t h = (how & 1) ? out : acked;
  char buf[512];
  if (how & 2)
    snprintf(buf, sizeof buf,
             "<failed xmlns='urn:xmpp:sm:3' h='%u'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
             (unsigned)h);
  else
    resumed_xml(buf, sizeof buf, id, h);
  feed_str(buf);
}

static void command(uint8_t c) {
  TRACE("[command %u/%u]\n", c % 16u, c >> 4);
  static const uint64_t steps_ms[16] = {1,     10,    100,   249,   250,    1000,
                                        2000,  5000,  29999, 30000, 60000,  61000,
                                        90000, 300000, 301000, 600000};
  unsigned arg = c >> 4;
  switch (c % 16u) {
    case 0: advance(steps_ms[arg]); break;
    case 1: app_send(arg); break;
    case 2:
      for (unsigned i = 0; i <= arg; i++) app_send(0);
      break;
    case 3: reconnect(1); break;
    case 4:
      if (H.conn_up) {
        drop_connection();
        settle_connection();
      }
      advance((uint64_t)arg * 60000u);
      reconnect(1);
      break;
    case 5:
      save_and_load();
      reconnect(1);
      break;
    case 6:
      if (!H.conn_up || H.stopping) break;
      H.stopping = 1;
      if (xmppuv__sm_stop(H.sm, H.now) == 0) xmppuv__session_close(H.s);
      check_state();
      break;
    case 7:
      xmppuv__sm_fail_all(H.sm, XMPPUV_ECANCELED);
      check_state();
      reconnect(1);
      break;
    case 8:
      xmppuv__sm_tick(H.sm, H.now);
      FZ_CHECK(xmppuv__sm_deadline(H.sm) > H.now.mono_ms, "a tick left a deadline due");
      settle_connection();
      break;
    case 9: H.fail_next_write = 1; break;
    case 10: {
      char buf[96];
      snprintf(buf, sizeof buf, "<a xmlns='urn:xmpp:sm:3' h='%u'/>",
               (unsigned)xmppuv__sm_outbound_count(H.sm));
      feed_str(buf);
      break;
    }
    case 11: feed_str("<r xmlns='urn:xmpp:sm:3'/>"); break;
    case 12: answer_resume(arg); break;
    case 13:
      if (H.conn_up) {
        drop_connection();
        settle_connection();
      }
      H.stopping = 0;
      open_connection(1);
      break;
    case 14: H.style = arg & 3u; break;
    default: break;
  }
  check_state();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  for (size_t i = 0; i < 16; i++)
    FZ_CHECK(xmppuv_stanza_parse(stanzas[i], strlen(stanzas[i]), &parsed[i]) == 0,
             "bad table stanza %s", stanzas[i]);
  /* The PLAIN initial response as it goes into <auth/>. */
  static const char plain[] = "\0" USERNAME "\0" PASSWORD;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  FZ_CHECK(xmppuv__base64_encode(plain, sizeof plain - 1, &b) == 0, "base64");
  snprintf(H.plain_b64, sizeof H.plain_b64, "%s", b.data);
  xmppuv__buf_free(&b);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char plain_b64[sizeof H.plain_b64];
  memcpy(plain_b64, H.plain_b64, sizeof plain_b64);
  memset(&H, 0, sizeof H);
  memcpy(H.plain_b64, plain_b64, sizeof plain_b64);

  fz_in_t in = {data, size};
  uint8_t f0 = fz_u8(&in), f1 = fz_u8(&in), f2 = fz_u8(&in), f3 = fz_u8(&in);
  H.flags2 = f2;
  H.debug = getenv("FUZZ_DEBUG") != NULL;
  fz_rng_seed(&H.rng, (uint32_t)f3 * 0x01000193u + 1u);
  H.style = (f1 >> 6) & 3u;
  H.now.mono_ms = 1000000;
  H.now.wall_ms = INT64_C(1700000000000);

  xmppuv__sm_config_defaults(&H.smc);
  H.smc.enabled = (f0 & 7u) != 7u;
  H.smc.resume = !((f0 >> 3) & 1);
  if ((f0 >> 4) & 1) H.smc.ack_threshold = 2;
  if ((f0 >> 5) & 1) H.smc.queue_max = 3;
  H.smc.resend_on_failed = (f0 >> 6) & 1;
  if ((f0 >> 7) & 1) H.smc.drain_timeout_ms = 2000;
  if (f1 & 1) H.smc.max_resume_s = 60;
  if ((f1 >> 1) & 1) H.smc.ack_debounce_ms = 0;
  if ((f1 >> 2) & 1) H.smc.idle_request_ms = 0;
  if ((f1 >> 3) & 1) H.smc.ack_timeout_ms = 5000;
  unsigned level = (f1 >> 4) & 3u;
  if (level == 3) level = 2;

  H.log.cb = on_log;
  H.log.level = XMPPUV_LOG_TRACE;
  if ((f2 >> 6) & 1) H.smc.log = &H.log;

  memset(&H.sc, 0, sizeof H.sc);
  H.sc.domain = DOMAIN;
  H.sc.bare_jid = BARE;
  H.sc.username = USERNAME;
  H.sc.resource = RESOURCE;
  H.sc.lang = "en";
  H.sc.tls_required = 1;
  H.sc.allow_anonymous = f2 & 1;
  H.sc.mechanisms = ((f2 >> 1) & 1) ? "SCRAM-SHA-256,PLAIN,ANONYMOUS" : NULL;
  if ((f2 >> 2) & 1) {
    H.sc.limits.max_stanza_bytes = 2048;
    H.sc.limits.max_depth = 8;
    H.sc.limits.max_attrs = 8;
  }
  H.sc.log = ((f2 >> 6) & 1) ? &H.log : NULL;

  FZ_CHECK(xmppuv__session_new(&H.sc, &session_events, NULL, &H.s) == 0, "session_new");
  FZ_CHECK(xmppuv__sm_new(&H.smc, &sm_events, NULL, &H.sm) == 0, "sm_new");
  H.sm_down = 1;

  /* The first connection: STARTTLS is only reachable unscripted. */
  open_connection(level == 0 ? !((f2 >> 3) & 1) : 1);
  script((int)level);

  /* The program: server bytes up to each NUL, then a command byte. */
  const char *p = (const char *)in.p;
  const char *end = p + in.n;
  for (int steps = 0; p < end && steps < MAX_STEPS; steps++) {
    const char *nul = memchr(p, '\0', (size_t)(end - p));
    const char *stop = nul ? nul : end;
    if (stop > p) feed(p, (size_t)(stop - p));
    if (nul == NULL || nul + 1 >= end) break;
    command((uint8_t)nul[1]);
    p = nul + 2;
  }

  /* The app closes: everything still owed ends now. */
  H.in_cleanup = 1;
  if (H.conn_up) {
    drop_connection();
    settle_connection();
  }
  for (int i = 0; i < 4 && xmppuv__sm_queued(H.sm) > 0; i++)
    xmppuv__sm_fail_all(H.sm, XMPPUV_ECANCELED);
  FZ_CHECK(xmppuv__sm_queued(H.sm) == 0, "stanzas left after fail_all");
  for (size_t i = 0; i < H.nrecs; i++)
    FZ_CHECK(H.recs[i].gone || H.recs[i].dones == 1, "stanza %zu got %d done events", i,
             H.recs[i].dones);
  xmppuv__sm_free(H.sm);
  xmppuv__session_free(H.s);
  return 0;
}
