/* Fuzz target: loading saved Stream Management state (lib/sm/persist.c and
 * xmppuv__sm_import() in lib/sm/sm.c). The blob comes from the app's
 * storage, which may be corrupt, truncated or written by another version.
 *
 * Input: 1 header byte (bit 0: queue_max 2 instead of 4096; bit 1: no
 * resumption configured; bits 2-3: how the server answers the resume),
 * then the blob. Because a random blob rarely passes the CRC, the harness
 * fixes the CRC up when header bit 4 is set, so the fuzzer reaches the
 * decoder behind it.
 *
 * Checks: a refused blob changes nothing (the engine can still load a good
 * one); a loaded blob exports and loads again to the same bytes; the loaded
 * engine then resumes or binds anew on a stream, and every loaded stanza
 * ends in exactly one done event.
 *
 * FUZZ_SM_STATE_WRITE_SEEDS=DIR: write states exported by a real engine
 * (empty, resumable with unacked and held stanzas, counters about to wrap)
 * as seeds and exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "fuzz_input.h"
#include "sm/persist.h"
#include "sm/sm.h"
#include "xmppuv.h"

typedef struct ctx {
  size_t dones;
  int aborted;
  int resume_failed;
  int down;
} ctx_t;

static int ev_write(void *ud, const char *data, size_t len) {
  ctx_t *c = ud;
  (void)data;
  FZ_CHECK(len > 0 && !c->down, "write while disconnected");
  return 0;
}
static void ev_enable_result(void *ud, int enabled, const char *cond) {
  (void)ud, (void)enabled, (void)cond;
}
static void ev_resumed(void *ud) { (void)ud; }
static void ev_resume_failed(void *ud, const char *cond) {
  ctx_t *c = ud;
  (void)cond;
  c->resume_failed = 1;
}
static void ev_done(void *ud, xmppuv_stanza_t *st, int status, xmppuv__sm_done_cb cb,
                    void *cb_data) {
  ctx_t *c = ud;
  (void)cb_data;
  FZ_CHECK(st != NULL && cb == NULL, "done for a loaded stanza with a callback");
  FZ_CHECK(status == 0 || status == XMPPUV_ESMFAILED || status == XMPPUV_ECANCELED ||
               status == XMPPUV_ESMOFF,
           "done with %s", xmppuv_err_name(status));
  c->dones++;
  xmppuv_stanza_unref(st); /* done events pass their reference */
}
static void ev_abort(void *ud, int reason, const char *why) {
  ctx_t *c = ud;
  (void)reason;
  FZ_CHECK(why != NULL && why[0] != '\0', "an abort without a reason");
  c->aborted = 1;
}

static const xmppuv__sm_events_t events = {ev_write, ev_enable_result, ev_resumed,
                                           ev_resume_failed, ev_done, ev_abort};

static xmppuv__sm_t *engine(const xmppuv__sm_config_t *cfg, ctx_t *c) {
  xmppuv__sm_t *sm = NULL;
  FZ_CHECK(xmppuv__sm_new(cfg, &events, c, &sm) == 0, "sm_new");
  return sm;
}

static const xmppuv__time_t now0 = {5000000, INT64_C(1700000100000)};

/* An SM nonza built with the stanza API (the SM-ID from the blob may hold
 * any text). */
static void feed(xmppuv__sm_t *sm, const char *name, const char *previd, uint32_t h) {
  xmppuv_stanza_t *el = NULL;
  char hs[16];
  snprintf(hs, sizeof hs, "%u", (unsigned)h);
  FZ_CHECK(xmppuv_stanza_new(name, XMPPUV__NS_SM, &el) == 0, "stanza_new");
  if (previd != NULL) FZ_CHECK(xmppuv_stanza_set_attr(el, "previd", previd) == 0, "previd");
  if (strcmp(name, "enabled") == 0) {
    FZ_CHECK(xmppuv_stanza_set_attr(el, "id", "x") == 0 &&
                 xmppuv_stanza_set_attr(el, "resume", "true") == 0,
             "attrs");
  } else {
    FZ_CHECK(xmppuv_stanza_set_attr(el, "h", hs) == 0, "h");
  }
  xmppuv__sm_inbound(sm, el, now0);
  xmppuv_stanza_unref(el);
}

static void send_xml(xmppuv__sm_t *sm, const char *xml, xmppuv__time_t now) {
  xmppuv_stanza_t *st = NULL;
  FZ_CHECK(xmppuv_stanza_parse(xml, strlen(xml), &st) == 0, "parse %s", xml);
  FZ_CHECK(xmppuv__sm_send(sm, st, now, NULL, NULL) == 0, "send");
  xmppuv_stanza_unref(st);
}

static void write_seed(const char *dir, const char *name, uint8_t flags, xmppuv__sm_t *sm,
                       xmppuv__time_t now) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  FZ_CHECK(xmppuv__sm_export(sm, now, &b) == 0, "export");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  FZ_CHECK(f != NULL, "cannot write %s", path);
  fputc(flags, f);
  fwrite(b.data, 1, b.len, f);
  fclose(f);
  xmppuv__buf_free(&b);
}

/* Real states, through the engine's own API. */
static void write_seeds(const char *dir) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  ctx_t c;
  memset(&c, 0, sizeof c);
  xmppuv__time_t now = now0;
  xmppuv__sm_t *sm = engine(&cfg, &c);
  write_seed(dir, "empty", 0, sm, now);
  send_xml(sm, "<message to='a@b' id='held'><body>held while offline</body></message>", now);
  write_seed(dir, "one-held", 0, sm, now);
  xmppuv__sm_stream_authenticated(sm, now);
  xmppuv__sm_enable(sm, "juliet@example.com/balcony", 1, now);
  feed(sm, "enabled", NULL, 0);
  send_xml(sm, "<presence/>", now);
  send_xml(sm, "<iq type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>", now);
  feed(sm, "a", NULL, 1);
  xmppuv__sm_disconnected(sm, now);
  send_xml(sm, "<message id='m2'><body>\xc3\xa9</body></message>", now);
  write_seed(dir, "resumable-unacked-held", 0, sm, now);
  write_seed(dir, "resumable-resumed", 4, sm, now);
  write_seed(dir, "resumable-failed", 8, sm, now);
  write_seed(dir, "resumable-too-high", 12, sm, now);
  write_seed(dir, "small-queue", 1, sm, now);
  xmppuv__sm_fail_all(sm, XMPPUV_ECANCELED);
  xmppuv__sm_free(sm);
  exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *dir = getenv("FUZZ_SM_STATE_WRITE_SEEDS");
  if (dir != NULL) write_seeds(dir);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  uint8_t flags = data[0];
  size_t len = size - 1;
  unsigned char *blob = malloc(len ? len : 1);
  FZ_CHECK(blob != NULL, "oom");
  memcpy(blob, data + 1, len);
  if (((flags >> 4) & 1) && len >= 4) {
    uint32_t crc = xmppuv__crc32(0, blob, len - 4);
    for (int i = 0; i < 4; i++) blob[len - 4 + (size_t)i] = (unsigned char)(crc >> (8 * i));
  }

  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  if (flags & 1) cfg.queue_max = 2;
  if ((flags >> 1) & 1) cfg.resume = 0;
  ctx_t c1;
  memset(&c1, 0, sizeof c1);
  c1.down = 1;
  xmppuv__sm_t *sm = engine(&cfg, &c1);
  char *jid = NULL;
  int rc = xmppuv__sm_import(sm, blob, len, NULL, &jid);
  if (rc != 0) {
    FZ_CHECK(rc == XMPPUV_ESTATEBLOB || rc == XMPPUV_ENOBUFS, "import: %s",
             xmppuv_err_name(rc));
    FZ_CHECK(jid == NULL && xmppuv__sm_queued(sm) == 0 && xmppuv__sm_id(sm) == NULL,
             "a refused blob changed the engine");
    /* Still unused: a good (empty) state loads. */
    xmppuv__buf_t empty = XMPPUV__BUF_INIT;
    xmppuv__sm_t *other = engine(&cfg, &c1);
    FZ_CHECK(xmppuv__sm_export(other, now0, &empty) == 0, "export");
    FZ_CHECK(xmppuv__sm_import(sm, empty.data, empty.len, NULL, NULL) == 0,
             "a refused blob left the engine unable to load");
    xmppuv__sm_free(other);
    xmppuv__buf_free(&empty);
    xmppuv__sm_free(sm);
    free(blob);
    return 0;
  }
  size_t queued = xmppuv__sm_queued(sm);
  FZ_CHECK(queued <= cfg.queue_max, "loaded more than queue_max");
  FZ_CHECK(xmppuv__sm_import(sm, blob, len, NULL, NULL) == XMPPUV_ESTATE, "loaded twice");

  /* Export, load, export: the same bytes. */
  xmppuv__buf_t a = XMPPUV__BUF_INIT, b = XMPPUV__BUF_INIT;
  FZ_CHECK(xmppuv__sm_export(sm, now0, &a) == 0, "export");
  ctx_t c2;
  memset(&c2, 0, sizeof c2);
  c2.down = 1;
  xmppuv__sm_t *sm2 = engine(&cfg, &c2);
  rc = xmppuv__sm_import(sm2, a.data, a.len, NULL, NULL);
  FZ_CHECK(rc == 0, "an exported state does not load: %s", xmppuv_err_name(rc));
  FZ_CHECK(xmppuv__sm_export(sm2, now0, &b) == 0, "export");
  FZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
           "export, load, export changed the state");
  xmppuv__sm_free(sm2);
  xmppuv__buf_free(&a);
  xmppuv__buf_free(&b);

  /* A stream: resume if the state says so, else bind and enable. */
  xmppuv__time_t now = now0;
  c1.down = 0;
  xmppuv__sm_stream_authenticated(sm, now);
  int resuming = xmppuv__sm_can_resume(sm, now) && xmppuv__sm_resume(sm, now) == 0;
  if (resuming) {
    uint32_t out = xmppuv__sm_outbound_count(sm);
    uint32_t acked = out - (uint32_t)xmppuv__sm_unacked(sm);
    unsigned how = (flags >> 2) & 3u;
    if (how == 0 || how == 1)
      feed(sm, "resumed", xmppuv__sm_id(sm), how ? out : acked);
    else if (how == 2)
      feed(sm, "failed", NULL, acked);
    else
      feed(sm, "a", NULL, out + 1u);
    if (c1.resume_failed) xmppuv__sm_enable(sm, jid ? jid : "a@b/c", 1, now);
  } else {
    xmppuv__sm_enable(sm, jid ? jid : "a@b/c", 1, now);
    feed(sm, "enabled", NULL, 0);
  }
  xmppuv__sm_disconnected(sm, now);
  c1.down = 1;
  for (int i = 0; i < 3 && xmppuv__sm_queued(sm) > 0; i++)
    xmppuv__sm_fail_all(sm, XMPPUV_ECANCELED);
  FZ_CHECK(xmppuv__sm_queued(sm) == 0, "stanzas left");
  FZ_CHECK(c1.dones == queued, "%zu loaded stanzas, %zu done events", queued, c1.dones);
  xmppuv__sm_free(sm);
  xmppuv__free(jid);
  free(blob);
  return 0;
}
