/* Does the cost of a send or an ack grow with the queue? The Stream
 * Management engine alone (lib/sm, no I/O), held at a steady queue length
 * L: each round sends k messages and applies an <a h/> that acks the k
 * oldest, so the queue stays at L. Prints, for each L, nanoseconds per
 * stanza for the sends and for the acks (the ack figure includes the done
 * event and releasing the stanza). Flat columns mean O(1) per stanza: an
 * ack of k stanzas costs O(k), not O(queue length).
 *
 *   bench-sm-acks [--rounds R] [--k K] [--min-l L] [--max-l L]
 *
 * Timings include cache effects: a queue of 65536 stanzas is about 12 MB.
 * Instruction counts are not timing: under callgrind, (Ir at R2 rounds - Ir
 * at R1 rounds) / ((R2 - R1) * k) for one L (--min-l L --max-l L) gives the
 * instructions per stanza (send + ack) at that queue length.
 *
 * The <a/> elements are parsed before the clock starts; the stanza sent is
 * one tree, serialized by every send as the client's send would. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sm/sm.h"
#include "xmppuv.h"

typedef struct counts {
  uint64_t written, done, failed;
} counts_t;

static int on_write(void *ud, const char *data, size_t len) {
  (void)data;
  ((counts_t *)ud)->written += len;
  return 0;
}
static void on_enable_result(void *ud, int enabled, const char *cond) {
  (void)ud;
  (void)cond;
  if (!enabled) {
    fprintf(stderr, "bench-sm-acks: SM not enabled\n");
    exit(1);
  }
}
static void on_resumed(void *ud) { (void)ud; }
static void on_resume_failed(void *ud, const char *cond) {
  (void)ud;
  (void)cond;
}
static void on_done(void *ud, xmppuv_stanza_t *st, int status, xmppuv__sm_done_cb cb,
                    void *cb_data) {
  (void)cb;
  (void)cb_data;
  counts_t *c = ud;
  if (status == 0)
    c->done++;
  else
    c->failed++;
  xmppuv_stanza_unref(st); /* done events pass their reference */
}
static void on_abort(void *ud, int reason, const char *why) {
  (void)ud;
  fprintf(stderr, "bench-sm-acks: the engine aborted: %s: %s\n", xmppuv_err_name(reason), why);
  exit(1);
}

static xmppuv_stanza_t *parse(const char *xml) {
  xmppuv_stanza_t *el = NULL;
  if (xmppuv_stanza_parse(xml, strlen(xml), &el) != 0) {
    fprintf(stderr, "bench-sm-acks: cannot parse %s\n", xml);
    exit(1);
  }
  return el;
}

static xmppuv__time_t now_at(uint64_t ms) {
  xmppuv__time_t t = {ms, INT64_C(1700000000000) + (int64_t)ms};
  return t;
}

/* One queue length: returns ns per stanza for sends and for acks. */
static void run(size_t qlen, unsigned rounds, unsigned k, double *send_ns, double *ack_ns) {
  counts_t c = {0, 0, 0};
  xmppuv__sm_events_t ev = {on_write, on_enable_result, on_resumed,
                            on_resume_failed, on_done, on_abort};
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.queue_max = qlen + k;
  cfg.ack_threshold = 0; /* no <r/> in the measurement */
  cfg.ack_debounce_ms = 0;
  cfg.idle_request_ms = 0;
  cfg.ack_timeout_ms = 0;
  xmppuv__sm_t *sm;
  if (xmppuv__sm_new(&cfg, &ev, &c, &sm) != 0) exit(1);
  xmppuv__time_t t = now_at(1000);
  xmppuv__sm_stream_authenticated(sm, t);
  if (xmppuv__sm_enable(sm, "bench@localhost/sm", 1, t) != 0) exit(1);
  xmppuv_stanza_t *enabled = parse("<enabled xmlns='urn:xmpp:sm:3' id='s' resume='true'/>");
  xmppuv__sm_inbound(sm, enabled, t);
  xmppuv_stanza_unref(enabled);

  xmppuv_stanza_t *msg = parse(
      "<message xmlns='jabber:client' to='peer@localhost' type='chat' id='m'>"
      "<body>sixty bytes of body text, about what a chat message holds.</body></message>");
  for (size_t i = 0; i < qlen; i++)
    if (xmppuv__sm_send(sm, msg, t, NULL, NULL) != 0) exit(1);

  xmppuv_stanza_t **acks = malloc(rounds * sizeof *acks);
  if (acks == NULL) exit(1);
  for (unsigned r = 0; r < rounds; r++) {
    char xml[96];
    /* h counts modulo 2^32, as the server sends it. */
    uint32_t h = (uint32_t)((uint64_t)(r + 1) * k);
    snprintf(xml, sizeof xml, "<a xmlns='urn:xmpp:sm:3' h='%" PRIu32 "'/>", h);
    acks[r] = parse(xml);
  }

  uint64_t in_send = 0, in_ack = 0;
  for (unsigned r = 0; r < rounds; r++) {
    uint64_t t0 = uv_hrtime();
    for (unsigned i = 0; i < k; i++)
      if (xmppuv__sm_send(sm, msg, t, NULL, NULL) != 0) exit(1);
    uint64_t t1 = uv_hrtime();
    if (xmppuv__sm_inbound(sm, acks[r], t) != 1) exit(1);
    uint64_t t2 = uv_hrtime();
    in_send += t1 - t0;
    in_ack += t2 - t1;
  }
  uint64_t n = (uint64_t)rounds * k;
  if (c.done != n || c.failed != 0 || xmppuv__sm_unacked(sm) != qlen) {
    fprintf(stderr, "bench-sm-acks: L=%zu: %" PRIu64 " acked of %" PRIu64 ", %zu left\n", qlen,
            c.done, n, xmppuv__sm_unacked(sm));
    exit(1);
  }
  *send_ns = (double)in_send / (double)n;
  *ack_ns = (double)in_ack / (double)n;
  for (unsigned r = 0; r < rounds; r++) xmppuv_stanza_unref(acks[r]);
  free(acks);
  xmppuv_stanza_unref(msg);
  xmppuv__sm_free(sm);
}

int main(int argc, char **argv) {
  unsigned rounds = 20000, k = 16;
  size_t min_l = 16, max_l = 65536;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--rounds") == 0)
      rounds = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--k") == 0)
      k = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--min-l") == 0)
      min_l = (size_t)strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--max-l") == 0)
      max_l = (size_t)strtoull(argv[i + 1], NULL, 10);
    else {
      fprintf(stderr, "usage: bench-sm-acks [--rounds R] [--k K] [--min-l L] [--max-l L]\n");
      return 2;
    }
  }
  if (rounds == 0 || k == 0 || min_l == 0 || max_l < min_l) return 2;
  printf("Queue length and per-stanza cost (lib/sm alone: %u rounds of %u sends and one <a/> "
         "acking %u, queue held at L):\n\n",
         rounds, k, k);
  printf("| queue length L | ns / send | ns / acked stanza |\n|---:|---:|---:|\n");
  for (size_t l = min_l; l <= max_l; l *= 16) {
    double s, a;
    run(l, rounds, k, &s, &a);
    printf("| %zu | %.0f | %.0f |\n", l, s, a);
  }
  return 0;
}
