/* Fuzz target: the whole client engine (lib/engine/engine.c: session,
 * Stream Management, iq tracking, handlers, every client policy) on the
 * engine harness's fake clock and memory transport
 * (tests/support/engine_harness.h), fed arbitrary server bytes after a
 * scripted handshake, with sends, time, cuts, resumption, stops and saved
 * state mixed in. The same engine the libuv driver runs: nothing here
 * re-implements its wiring.
 *
 * Input: 4 header bytes, then a program.
 *   [0] bits 0-2 == 7 turns SM off; bit 3 no resumption; bit 4 ack
 *       threshold 2; bit 5 queue_max 3; bit 6 resend on failed; bit 7
 *       close (and drain) timeout 2 s, not 200 ms
 *   [1] bit 0 max_resume_s 60; bit 1 no ack debounce; bit 2 no idle <r/>;
 *       bit 3 ack timeout 5 s; bits 4-5 how far each connection is
 *       scripted (0 none: the fuzz bytes are the server from its first
 *       byte; 1 up to SASL success; 2 and 3 up to <enabled/> or
 *       <resumed/>); bits 6-7 chunking style for server bytes
 *       (fuzz_input.h)
 *   [2] bit 0 allow ANONYMOUS; bit 1 allow-list
 *       "SCRAM-SHA-256,PLAIN,ANONYMOUS"; bit 2 small XML limits; bit 3
 *       connections start in plaintext (STARTTLS); bit 4 the password
 *       cannot be had; bit 5 send again from inside send callbacks; bit 6
 *       logging at trace level (and the check that no log line holds the
 *       password); bit 7 no reconnection
 *   [3] seed for chunk sizes and the engine's jitter
 *   Then server bytes, interrupted by commands: a NUL byte (never valid in
 *   XML) is followed by one command byte c; c % 16 selects:
 *     0 let time pass (c >> 4 picks 1 ms ... 10 min), every deadline run
 *       on the way
 *     1 send stanza number c >> 4 of a fixed table; 2 send (c >> 4) + 1
 *       messages
 *     3 the network cuts the connection, time for a reconnection passes;
 *       4 the same and (c >> 4) minutes more
 *     5 a process restart: the state is exported, the engine freed, a new
 *       one imports it and starts
 *     6 graceful stop, then start again once offline
 *     7 the app closes the client (everything owed fails), a new one starts
 *     8 run what is due now; 9 the next write fails
 *     10 the server acks everything sent (<a h/> with the right h);
 *     11 <r/>; 12 the server answers a pending <resume/> (<resumed/> or
 *       <failed/> by c >> 4, with an h inside the window)
 *     13 the next connection is not scripted (the fuzz bytes are the server)
 *     14 change the chunking style to c >> 4; 15 reconnect_now
 *
 * Invariants checked as it runs: every stanza sent gets at most one send
 * callback, with a status that has a name, in send order except for
 * stanzas refused alone (ETOOBIG, EREJECTED); at most one ack or fail
 * event, agreeing with it; sends refused with an error get none; queued
 * never exceeds queue_max; no event comes inside an API call; the harness
 * settles (no deadline left due after its tick); saved state always loads
 * back with the same counters; no log line holds the password or the PLAIN
 * message (in what we write); and at the end, after close, every stanza
 * had exactly one send callback and the engine says it is closed.
 *
 * FUZZ_DEBUG set: what goes in and out and every event, on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine_harness.h"
#include "fuzz_input.h"
#include "sasl/sasl.h"
#include "sm/sm.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "xml/serialize.h"
#include "xmppuv.h"

#define DOMAIN "example.com"
#define BARE "juliet@example.com"
#define USERNAME "juliet"
#define FULL BARE "/balcony"
#define PASSWORD "pencil-Secret-7q"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SM "urn:xmpp:sm:3"

#define MAX_RECS 512
#define MAX_STEPS 4096
#define MAX_CONNS 64

#define HEADER                                                                 \
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                 \
  "xmlns:stream='http://etherx.jabber.org/streams' id='s{n}' from='" DOMAIN  \
  "' version='1.0' xml:lang='en'>"
#define FEATURES_SASL                                                          \
  "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>PLAIN</mechanism>" \
  "</mechanisms></stream:features>"
#define FEATURES_BIND                                                          \
  "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"          \
  "<sm xmlns='" NS_SM "'/></stream:features>"

/* Level 1: the server up to SASL success. */
static const xmppuv_test_step_t script_auth[] = {
    SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HEADER FEATURES_SASL),
    SCRIPT_EXPECT("</auth>"), SCRIPT_SEND("<success xmlns='" NS_SASL "'/>"), SCRIPT_END};
/* Level 2: and the restarted stream's features; on_server_data() answers
 * the bind, <enable/> and <resume/>. */
static const xmppuv_test_step_t script_login[] = {
    SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HEADER FEATURES_SASL),
    SCRIPT_EXPECT("</auth>"), SCRIPT_SEND("<success xmlns='" NS_SASL "'/>"),
    SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HEADER FEATURES_BIND), SCRIPT_END};
static const xmppuv_test_step_t script_none[] = {SCRIPT_END};

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
    "<foo xmlns='urn:not:a:stanza'/>", /* refused: EINVAL, no callback */
};

typedef struct rec {
  xmppuv_stanza_t *st; /* the stanza sent (a copy of its own: events name it) */
  int dones, acks, fails;
  int status, reason;
  int gone; /* refused, or handed to another engine by a restart */
} rec_t;

typedef struct harness {
  xmppuv_test_engine_t *h;
  xmppuv_client_options_t opts;
  fz_rng_t rng;
  unsigned style;
  unsigned level;
  uint8_t flags2;
  int debug;
  int in_call;     /* an engine API call is running */
  int in_cleanup;  /* the app is closing: no more sends from callbacks */
  int reentrant_sends;
  int unscripted_next;
  size_t last_done; /* index + 1 of the last record done in order */
  unsigned sessions; /* online + resumed events */
  /* Per connection: how far on_server_data() read, what it answered. */
  size_t scanned[MAX_CONNS];
  int answered_bind[MAX_CONNS], answered_enable[MAX_CONNS], answered_resume[MAX_CONNS];
  rec_t recs[MAX_RECS];
  size_t nrecs;
  char plain_b64[128];
} harness_t;

static harness_t H;

#define TRACE(...)                              \
  do {                                          \
    if (H.debug) fprintf(stderr, __VA_ARGS__); \
  } while (0)

static xmppuv__engine_t *E(void) { return xmppuv_test_engine_get(H.h); }

/* ---- what the app sees -------------------------------------------------------- */

static void no_event_in_call(const char *what) {
  FZ_CHECK(!H.in_call, "the %s event came inside an API call", what);
}

static rec_t *rec_of(const xmppuv_stanza_t *s) {
  for (size_t i = 0; i < H.nrecs; i++)
    if (H.recs[i].st == s && !H.recs[i].gone) return &H.recs[i];
  return NULL;
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t st, void *ud) {
  (void)c, (void)ud;
  no_event_in_call("status");
  TRACE("[status %s]\n", xmppuv_status_name(st));
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c, (void)ud;
  no_event_in_call("online");
  FZ_CHECK(jid != NULL, "online without a JID");
  H.sessions++;
  TRACE("[online %s]\n", xmppuv_jid_string(jid));
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  (void)c, (void)ud;
  no_event_in_call("resumed");
  H.sessions++;
  TRACE("[resumed]\n");
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *e, void *ud) {
  (void)c, (void)ud;
  no_event_in_call("error");
  FZ_CHECK(strcmp(xmppuv_err_name(e->code), "UNKNOWN") != 0, "error with code %d", e->code);
  TRACE("[error %s %s]\n", xmppuv_err_name(e->code), e->condition ? e->condition : "");
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c, (void)ud;
  no_event_in_call("ack");
  rec_t *r = rec_of(s);
  if (r == NULL) return; /* loaded from saved state */
  FZ_CHECK(r->acks + r->fails == 0, "a second ack/fail for one stanza");
  FZ_CHECK(!r->dones || r->status == 0, "acked after a send callback with %s",
           xmppuv_err_name(r->status));
  r->acks++;
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  (void)c, (void)ud;
  no_event_in_call("fail");
  FZ_CHECK(reason < 0 && strcmp(xmppuv_err_name(reason), "UNKNOWN") != 0, "fail with %d",
           reason);
  rec_t *r = rec_of(s);
  if (r == NULL) return;
  FZ_CHECK(r->acks + r->fails == 0, "a second ack/fail for one stanza");
  FZ_CHECK(!r->dones || r->status == reason, "failed with %s after a send callback with %s",
           xmppuv_err_name(reason), xmppuv_err_name(r->status));
  r->fails++;
  r->reason = reason;
}

static void app_send(unsigned k);

static void on_sent(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  (void)c;
  no_event_in_call("send callback");
  size_t i = (size_t)(uintptr_t)ud - 1;
  FZ_CHECK(i < H.nrecs, "a send callback for an unknown stanza");
  rec_t *r = &H.recs[i];
  TRACE("[sent %zu %s]\n", i, status ? xmppuv_err_name(status) : "OK");
  FZ_CHECK(!r->gone, "a send callback for a stanza refused or handed over");
  FZ_CHECK(r->st == s, "a send callback with another stanza");
  FZ_CHECK(r->dones == 0, "a second send callback for stanza %zu (%s, then %s)", i,
           xmppuv_err_name(r->status), xmppuv_err_name(status));
  FZ_CHECK(status <= 0 && strcmp(xmppuv_err_name(status), "UNKNOWN") != 0,
           "send callback with %d", status);
  /* In send order, except what fails alone while older stanzas wait. */
  if (status != XMPPUV_ETOOBIG && status != XMPPUV_EREJECTED) {
    FZ_CHECK(i + 1 > H.last_done, "send callback out of order: %zu after %zu", i,
             H.last_done - 1);
    H.last_done = i + 1;
  }
  /* The ack or fail event agrees, whichever comes first. */
  if (r->acks) FZ_CHECK(status == 0, "acked, then %s", xmppuv_err_name(status));
  if (r->fails) FZ_CHECK(status == r->reason, "failed with %s, then %s",
                         xmppuv_err_name(r->reason), xmppuv_err_name(status));
  r->dones = 1;
  r->status = status;
  if (((H.flags2 >> 5) & 1) && !H.in_cleanup && H.reentrant_sends < 8) {
    H.reentrant_sends++;
    app_send(fz_rng_next(&H.rng) % 15u);
  }
}

static const xmppuv_client_callbacks_t callbacks = {
    sizeof(xmppuv_client_callbacks_t), on_status, on_online, on_resumed, on_error, on_ack, on_fail, NULL, NULL};

/* ---- the log -------------------------------------------------------------------- */

static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud, (void)level;
  FZ_CHECK(area != NULL && msg != NULL, "log line without area or text");
  if (H.debug) fprintf(stderr, "log %s: %s\n", area, msg);
  /* Only what we write: the server may echo anything back (and the fuzzer
   * learns the password from this very comparison). */
  if (strcmp(area, "wire-out") != 0 && strcmp(area, "sasl") != 0) return;
  FZ_CHECK(strstr(msg, PASSWORD) == NULL, "the password in a log line: %s", msg);
  FZ_CHECK(strstr(msg, H.plain_b64) == NULL, "the PLAIN message in a log line: %s", msg);
}

static int no_password(xmppuv_client_t *c, char *buf, size_t size, void *ud) {
  (void)c, (void)buf, (void)size, (void)ud;
  return XMPPUV_EAUTH;
}

/* ---- the server's side ------------------------------------------------------------ */

/* The value of the id attribute of the last <iq ...> in text, into out. */
static int last_iq_id(const char *text, char *out, size_t size) {
  const char *iq = NULL;
  for (const char *p = strstr(text, "<iq "); p != NULL; p = strstr(p + 1, "<iq ")) iq = p;
  if (iq == NULL) return -1;
  const char *end = strchr(iq, '>');
  const char *id = strstr(iq, " id='");
  if (id == NULL || end == NULL || id > end) return -1;
  id += 5;
  const char *q = strchr(id, '\'');
  if (q == NULL || (size_t)(q - id) >= size) return -1;
  memcpy(out, id, (size_t)(q - id));
  out[q - id] = '\0';
  return 0;
}

static int send_str(xmppuv_test_script_conn_t *k, const char *text) {
  TRACE("in: %s\n", text);
  return xmppuv_test_script_conn_send(k, text, strlen(text));
}

/* <resumed previd h/>: the SM-ID came from the fuzzed <enabled/> (or the
 * script's), so it is escaped. */
static void resumed_xml(char *buf, size_t size, const char *id, uint32_t h) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  const char *v = id ? id : "none";
  FZ_CHECK(xmppuv__escape_attr(&b, v, strlen(v)) == 0, "oom");
  snprintf(buf, size, "<resumed xmlns='" NS_SM "' previd='%s' h='%u'/>", b.data ? b.data : "",
           (unsigned)h);
  xmppuv__buf_free(&b);
}

/* Level 2: the scripted server answers the bind, <enable/> and <resume/>
 * once its script is done, the way a server would. */
static int on_server_data(xmppuv_test_script_conn_t *k, void *arg) {
  (void)arg;
  size_t i = xmppuv_test_script_conn_index(k);
  if (H.level < 2 || i >= MAX_CONNS || !xmppuv_test_script_conn_done(k)) return 0;
  const char *rx = xmppuv_test_script_conn_received(k, NULL);
  const char *fresh = rx + H.scanned[i];
  const xmppuv__sm_t *sm = xmppuv__engine_sm(E());
  char buf[512];
  if (!H.answered_resume[i] && strstr(fresh, "<resume ") != NULL) {
    H.answered_resume[i] = 1;
    resumed_xml(buf, sizeof buf, xmppuv__sm_id(sm), xmppuv__sm_outbound_count(sm));
    send_str(k, buf);
  }
  char id[64];
  if (!H.answered_bind[i] && strstr(fresh, "urn:ietf:params:xml:ns:xmpp-bind") != NULL &&
      last_iq_id(fresh, id, sizeof id) == 0) {
    H.answered_bind[i] = 1;
    snprintf(buf, sizeof buf,
             "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
             "<jid>" FULL "</jid></bind></iq>",
             id);
    send_str(k, buf);
  }
  if (!H.answered_enable[i] && strstr(fresh, "<enable ") != NULL) {
    H.answered_enable[i] = 1;
    send_str(k, "<enabled xmlns='" NS_SM "' id='sm-1' resume='true' max='300'/>");
  }
  /* Keep the tail: an element may be cut between two reads. */
  size_t len = strlen(rx);
  H.scanned[i] = len > 256 ? len - 256 : 0;
  return 0;
}

static size_t chunker(void *arg, size_t left) {
  (void)arg;
  return fz_chunk(&H.rng, H.style, left);
}

static void on_write(void *arg, const char *data, size_t len) {
  (void)arg;
  FZ_CHECK(len > 0, "an empty write");
  TRACE("out: %.*s\n", (int)len, data);
}

/* ---- the driver -------------------------------------------------------------------- */

static void check_state(void) {
  size_t q = xmppuv__engine_sm_queued(E());
  FZ_CHECK(q <= H.opts.sm_queue_max, "queued %zu > queue_max %zu", q, H.opts.sm_queue_max);
  const xmppuv__sm_t *sm = xmppuv__engine_sm(E());
  FZ_CHECK(xmppuv__sm_unacked(sm) <= q, "unacked %zu > queued %zu", xmppuv__sm_unacked(sm),
           q);
  /* Settled: nothing due now is left undone. */
  FZ_CHECK(xmppuv__engine_deadline(E()) > xmppuv_test_engine_now(H.h).mono_ms,
           "a deadline left due: the driver would spin");
}

static xmppuv_stanza_t *parsed[16];

static void app_send(unsigned k) {
  if (H.nrecs == MAX_RECS) return;
  size_t i = H.nrecs++;
  rec_t *r = &H.recs[i];
  memset(r, 0, sizeof *r);
  FZ_CHECK(xmppuv_stanza_copy(parsed[k % 16u], &r->st) == 0, "copy");
  int was = H.in_call;
  H.in_call = 1;
  int rc = xmppuv_test_engine_send(H.h, r->st, on_sent, (void *)(uintptr_t)(i + 1));
  H.in_call = was;
  if (rc != 0) {
    FZ_CHECK(strcmp(xmppuv_err_name(rc), "UNKNOWN") != 0, "send: %d", rc);
    FZ_CHECK(r->dones == 0, "a refused send got a callback");
    r->gone = 1;
  }
}

static void run(void) {
  xmppuv_test_engine_run(H.h);
  check_state();
}

static void advance(uint64_t ms) {
  xmppuv_test_engine_advance(H.h, ms);
  check_state();
}

/* The next connection's script. */
static void choose_script(void) {
  const xmppuv_test_step_t *s = H.level == 0 || H.unscripted_next ? script_none
                                : H.level == 1                    ? script_auth
                                                                  : script_login;
  H.unscripted_next = 0;
  xmppuv_test_engine_next_script(H.h, s);
}

/* What a restart must carry over. */
typedef struct sm_counts {
  size_t queued, unacked;
  uint32_t in, out;
  char id[256];
} sm_counts_t;

static void counts_of(const xmppuv__sm_t *sm, sm_counts_t *c) {
  c->queued = xmppuv__sm_queued(sm);
  c->unacked = xmppuv__sm_unacked(sm);
  c->in = xmppuv__sm_inbound_count(sm);
  c->out = xmppuv__sm_outbound_count(sm);
  snprintf(c->id, sizeof c->id, "%s", xmppuv__sm_id(sm) ? xmppuv__sm_id(sm) : "");
}

static void make_engine(const char *state, size_t state_len, const sm_counts_t *expect) {
  xmppuv_test_engine_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.opts = &H.opts;
  cfg.callbacks = &callbacks;
  cfg.starttls = (H.flags2 >> 3) & 1;
  cfg.seed = fz_rng_next(&H.rng);
  /* PBKDF2 at the server's count is beyond a fuzzer's budget. */
  cfg.max_derive_iterations = 1;
  FZ_CHECK(xmppuv_test_engine_new(&cfg, &H.h) == 0, "engine_new");
  xmppuv_test_engine_on_data(H.h, on_server_data, NULL);
  xmppuv_test_engine_chunker(H.h, chunker, NULL);
  xmppuv_test_engine_on_write(H.h, on_write, NULL);
  memset(H.scanned, 0, sizeof H.scanned);
  memset(H.answered_bind, 0, sizeof H.answered_bind);
  memset(H.answered_enable, 0, sizeof H.answered_enable);
  memset(H.answered_resume, 0, sizeof H.answered_resume);
  if (state != NULL) {
    int rc = xmppuv__engine_sm_import(E(), state, state_len);
    FZ_CHECK(rc == 0, "our own saved state does not load: %s", xmppuv_err_name(rc));
    sm_counts_t got;
    counts_of(xmppuv__engine_sm(E()), &got);
    FZ_CHECK(got.queued == expect->queued && got.unacked == expect->unacked &&
                 got.in == expect->in && got.out == expect->out &&
                 strcmp(got.id, expect->id) == 0,
             "loaded state differs");
  }
  choose_script();
  H.in_call = 1;
  FZ_CHECK(xmppuv_test_engine_start(H.h) == 0, "start");
  H.in_call = 0;
  run();
}

/* The app closes: everything still owed ends with a send callback, then the
 * engine is done. */
static void close_engine(void) {
  H.in_cleanup = 1;
  H.in_call = 1;
  xmppuv__engine_close(E(), xmppuv_test_engine_now(H.h));
  H.in_call = 0;
  xmppuv_test_engine_run(H.h);
  FZ_CHECK(xmppuv__engine_closed(E()), "closed but not done");
  FZ_CHECK(xmppuv__engine_sm_queued(E()) == 0, "stanzas left after close");
  for (size_t i = 0; i < H.nrecs; i++)
    FZ_CHECK(H.recs[i].gone || H.recs[i].dones == 1, "stanza %zu got %d send callbacks", i,
             H.recs[i].dones);
  xmppuv_test_engine_free(H.h);
  H.h = NULL;
  H.in_cleanup = 0;
}

/* A process restart: the state is saved and loaded into a new engine. */
static void restart(void) {
  char *data = NULL;
  size_t len = 0;
  int rc = xmppuv__engine_sm_export(E(), xmppuv_test_engine_now(H.h), &data, &len);
  FZ_CHECK(rc == 0, "export: %s", xmppuv_err_name(rc));
  sm_counts_t before;
  counts_of(xmppuv__engine_sm(E()), &before);
  /* Whatever the old engine held now belongs to the new one; the old one
   * is gone without a word (a crash). */
  for (size_t i = 0; i < H.nrecs; i++)
    if (H.recs[i].dones == 0) H.recs[i].gone = 1;
  xmppuv_test_engine_free(H.h);
  make_engine(data, len, &before);
  xmppuv_free(data);
}

static void answer_resume(unsigned how) {
  xmppuv_test_script_conn_t *k = xmppuv_test_engine_current(H.h);
  if (k == NULL) return;
  const xmppuv__sm_t *sm = xmppuv__engine_sm(E());
  uint32_t out = xmppuv__sm_outbound_count(sm);
  uint32_t acked = out - (uint32_t)xmppuv__sm_unacked(sm);
  uint32_t h = (how & 1) ? out : acked;
  char buf[512];
  if (how & 2)
    snprintf(buf, sizeof buf,
             "<failed xmlns='" NS_SM "' h='%u'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
             (unsigned)h);
  else
    resumed_xml(buf, sizeof buf, xmppuv__sm_id(sm), h);
  send_str(k, buf);
}

static void server_bytes(const char *data, size_t len) {
  xmppuv_test_script_conn_t *k = xmppuv_test_engine_current(H.h);
  if (k == NULL) return; /* nobody is connected: the bytes go nowhere */
  TRACE("in: %.*s\n", (int)len, data);
  xmppuv_test_script_conn_send(k, data, len);
  run();
}

static void command(uint8_t c) {
  TRACE("[command %u/%u]\n", c % 16u, c >> 4);
  static const uint64_t steps_ms[16] = {1,     10,    100,   249,   250,    1000,
                                        2000,  5000,  29999, 30000, 60000,  61000,
                                        90000, 300000, 301000, 600000};
  unsigned arg = c >> 4;
  switch (c % 16u) {
    case 0: advance(steps_ms[arg]); break;
    case 1:
      app_send(arg);
      run();
      break;
    case 2:
      for (unsigned i = 0; i <= arg; i++) app_send(0);
      run();
      break;
    case 3:
    case 4:
      choose_script();
      xmppuv_test_engine_cut(H.h);
      run();
      advance((c % 16u == 4 ? (uint64_t)arg * 60000u : 0) + H.opts.reconnect_delay_ms * 2);
      break;
    case 5: restart(); break;
    case 6:
      H.in_call = 1;
      xmppuv_test_engine_stop(H.h);
      H.in_call = 0;
      advance(10000); /* the drain, the close, the end of the connection */
      if (xmppuv__engine_status(E()) == XMPPUV_STATUS_OFFLINE) {
        choose_script();
        H.in_call = 1;
        xmppuv_test_engine_start(H.h);
        H.in_call = 0;
        run();
      }
      break;
    case 7:
      close_engine();
      make_engine(NULL, 0, NULL);
      break;
    case 8: run(); break;
    case 9: xmppuv_test_engine_fail_next_write(H.h, XMPPUV_ECONNECT); break;
    case 10: {
      xmppuv_test_script_conn_t *k = xmppuv_test_engine_current(H.h);
      if (k == NULL) break;
      char buf[96];
      snprintf(buf, sizeof buf, "<a xmlns='" NS_SM "' h='%u'/>",
               (unsigned)xmppuv__sm_outbound_count(xmppuv__engine_sm(E())));
      send_str(k, buf);
      run();
      break;
    }
    case 11:
      server_bytes("<r xmlns='" NS_SM "'/>", strlen("<r xmlns='" NS_SM "'/>"));
      break;
    case 12:
      answer_resume(arg);
      run();
      break;
    case 13:
      H.unscripted_next = 1;
      choose_script();
      break;
    case 14: H.style = arg & 3u; break;
    default:
      H.in_call = 1;
      xmppuv__engine_reconnect_now(E(), xmppuv_test_engine_now(H.h));
      H.in_call = 0;
      run();
      break;
  }
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
  H.level = (f1 >> 4) & 3u;
  if (H.level == 3) H.level = 2;

  xmppuv_client_options_t *o = &H.opts;
  xmppuv_client_options_init(o);
  o->jid = BARE;
  o->resource = "balcony";
  o->lang = "en";
  o->host = "server.example.com";
  o->port = 5222;
  o->tls = ((f2 >> 3) & 1) ? XMPPUV_TLS_STARTTLS : XMPPUV_TLS_DIRECT;
  if ((f2 >> 4) & 1)
    o->password_cb = no_password;
  else
    o->password = PASSWORD;
  o->allow_anonymous = f2 & 1;
  o->sasl_mechanisms = ((f2 >> 1) & 1) ? "SCRAM-SHA-256,PLAIN,ANONYMOUS" : NULL;
  if ((f2 >> 2) & 1) {
    o->max_stanza_bytes = 2048;
    o->max_depth = 8;
    o->max_attrs = 8;
  }
  o->reconnect = !((f2 >> 7) & 1);
  o->reconnect_delay_ms = 1000;
  o->sm = (f0 & 7u) != 7u;
  o->sm_resume = !((f0 >> 3) & 1);
  if ((f0 >> 4) & 1) o->sm_ack_threshold = 2;
  if ((f0 >> 5) & 1) o->sm_queue_max = 3;
  o->sm_resend_on_failed = (f0 >> 6) & 1;
  o->close_timeout_ms = ((f0 >> 7) & 1) ? 2000 : 200;
  if (f1 & 1) o->sm_max_resume_s = 60;
  if ((f1 >> 1) & 1) o->sm_ack_debounce_ms = 0;
  if ((f1 >> 2) & 1) o->sm_idle_request_ms = 0;
  if ((f1 >> 3) & 1) o->sm_ack_timeout_ms = 5000;
  if ((f2 >> 6) & 1) {
    o->log_cb = on_log;
    o->log_level = XMPPUV_LOG_TRACE;
  } else {
    o->log_level = XMPPUV_LOG_NONE;
  }

  make_engine(NULL, 0, NULL);

  /* The program: server bytes up to each NUL, then a command byte. */
  const char *p = (const char *)in.p;
  const char *end = p + in.n;
  for (int steps = 0; p < end && steps < MAX_STEPS; steps++) {
    const char *nul = memchr(p, '\0', (size_t)(end - p));
    const char *stop = nul ? nul : end;
    if (stop > p) server_bytes(p, (size_t)(stop - p));
    if (nul == NULL || nul + 1 >= end) break;
    command((uint8_t)nul[1]);
    p = nul + 2;
  }

  close_engine();
  for (size_t i = 0; i < H.nrecs; i++) xmppuv_stanza_unref(H.recs[i].st);
  return 0;
}
