/* A fake driver for the Stream Management engine (lib/sm): a fake clock, and
 * a transcript of everything the engine does, in order: bytes written
 * verbatim, other events in brackets:
 *
 *   [done ID STATUS]     a stanza's outcome (ID: its id attribute; STATUS:
 *                        OK for acked, else the error name, e.g. ESMFAILED)
 *   [enabled] / [not-enabled COND]   enable_result (COND '-' if none)
 *   [resumed]  [resume-failed COND]  [abort NAME]
 *
 * The harness's own memory comes from libc, not xmppuv's allocator, so a
 * failing-allocator sweep only fails the library. Stanzas sent through
 * smh_send() are tracked so a test can check each got exactly one done. */
#ifndef XMPPUV_TEST_SM_HARNESS_H
#define XMPPUV_TEST_SM_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "sm/sm.h"

#define SMH_JID "juliet@example.com/balcony"
#define SMH_START_MONO 1000000u
/* 2023-11-14T22:13:20.000Z */
#define SMH_START_WALL INT64_C(1700000000000)

typedef struct smh smh_t;

typedef struct smh_sent {
  char id[64];
  int dones;
  int status;
} smh_sent_t;

struct smh {
  xmppuv__sm_t *sm;
  xmppuv__sm_config_t cfg;
  xmppuv__time_t now;
  char *log; /* transcript since the last smh_take() */
  size_t len, cap;
  char *taken;
  int write_rc; /* what write returns (0) */
  int aborts, last_abort;
  int enable_results, resumed_events, resume_failed_events;
  smh_sent_t *sent;
  size_t nsent, sent_cap;
  /* Optional hooks, run after the event is recorded (re-entrancy tests). */
  void (*on_done)(smh_t *h, xmppuv_stanza_t *stanza, int status);
  void (*on_enable_result)(smh_t *h, int enabled);
  void (*on_resumed)(smh_t *h);
  void (*on_resume_failed)(smh_t *h);
  void (*on_abort)(smh_t *h, int reason);
  void (*on_write)(smh_t *h);
  void *user;
};

/* cfg NULL: the defaults. smh_open returns the engine's error (for sweeps);
 * smh_init asserts success. */
int smh_open(smh_t *h, const xmppuv__sm_config_t *cfg);
void smh_init(smh_t *h, const xmppuv__sm_config_t *cfg);
void smh_free(smh_t *h);

/* Parse xml and hand it to xmppuv__sm_send(); the engine's result (or the
 * parser's). The harness keeps no reference. */
int smh_send(smh_t *h, const char *xml);
/* Parse xml and feed it like the driver: inbound_data, then inbound.
 * Returns xmppuv__sm_inbound()'s result (or the parser's error). */
int smh_in(smh_t *h, const char *xml);
/* Move the clock (mono and wall) on by ms, running every deadline due on
 * the way at its own time, as the driver's timer would. */
void smh_advance(smh_t *h, uint64_t ms);

/* The transcript since the last take; valid until the next take. */
const char *smh_take(smh_t *h);

/* Stream steps as the driver takes them. */
void smh_authenticated(smh_t *h);
int smh_enable(smh_t *h, int server_offers);
void smh_disconnect(smh_t *h);
/* authenticated + enable + <enabled id='sm-1' resume='true' [max]/>,
 * asserting the transcript; max_s 0 = no max attribute. Clears the
 * transcript. */
void smh_online(smh_t *h, unsigned max_s);
/* authenticated + resume (asserted OK); the transcript is left. */
void smh_resume(smh_t *h);

/* The i-th stanza sent with smh_send() (in send order, failures skipped). */
const smh_sent_t *smh_sent(const smh_t *h, size_t i);
/* Assert every tracked stanza got exactly one done. */
void smh_assert_each_done_once(const smh_t *h);

#endif
