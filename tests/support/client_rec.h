/* What the app observes of one client, recorded by its callbacks: the
 * status sequence, every event with the details the client-level suites
 * assert, the order of the outcomes, and what became of each stanza the
 * test sent through a slot. The same recorder serves a client on a real
 * loop (client_world.h, test_client.c) and the engine on the fake clock
 * (engine_harness.h, whose callbacks get a NULL client): it never reads
 * time itself, it asks the clock it was given.
 *
 * Use: client_rec_init(), then give client_rec_callbacks and the recorder
 * as the client's (or the engine harness's) callbacks and user_data, and
 * client_rec_close_cb to xmppuv_client_close(). Events past
 * CLIENT_REC_MAX are counted but their details are not kept. A suite that
 * needs more than the event's name (the on_event hook) wraps a callback:
 * its own calls the recorder's first, then looks at the details (write
 * (client_rec_callbacks.fail)(...): Check defines a fail() macro).
 *
 * Used by test_client_scripted and test_hostile (through client_world.h),
 * test_engine, test_client, test_alloc_session and test_sm_servers.
 *
 * Test support code: it allocates nothing (fixed buffers; the slots hold
 * a reference to their stanza until client_rec_free()), so it may run
 * under a failing or counting allocator. Not thread-safe. */
#ifndef XMPPUV_TEST_CLIENT_REC_H
#define XMPPUV_TEST_CLIENT_REC_H

#include <stddef.h>
#include <stdint.h>

#include "xmppuv.h"

/* Details kept for this many events of each kind (errors, connects,
 * reconnections, fails). */
#define CLIENT_REC_MAX 64
/* Stanzas a test can follow through slots. */
#define CLIENT_REC_SLOTS 8

typedef struct client_rec client_rec_t;

/* Milliseconds on the test's clock (uv_now of its loop, or the fake clock). */
typedef uint64_t (*client_rec_clock_fn)(void *clock_arg);

/* Called after an event was recorded, with its name: a status name
 * ("connecting", ..., "offline"), "online-event" (the online callback, as
 * opposed to the status), "resumed", "error", "ack", "fail",
 * "reconnecting", "stanza", "sent" (client_rec_sent_cb or a slot's send
 * callback) or "close" (client_rec_close_cb). c is NULL on the engine
 * harness. */
typedef void (*client_rec_hook_fn)(client_rec_t *r, xmppuv_client_t *c, const char *event);

/* One stanza the test sent with client_rec_send(), and what became of it. */
typedef struct client_rec_slot {
  client_rec_t *rec;    /* the recorder it belongs to */
  xmppuv_stanza_t *s;   /* the stanza; the slot holds a reference until client_rec_free() */
  unsigned done;        /* send callbacks (exactly one in the end) */
  int status;           /* the last send callback's status */
  unsigned acks, fails; /* its outcomes: the send callback's (status 0 an ack,
                           an error but XMPPUV_ESMOFF a fail; a stanza sent
                           with a callback gets no ack or fail event) */
  int reason;           /* the last fail's reason */
} client_rec_slot_t;

struct client_rec {
  /* ---- set by client_rec_init() ----------------------------------------- */
  client_rec_clock_fn clock; /* times below; NULL: they stay 0 */
  void *clock_arg;

  /* ---- the test's hooks and options (all optional) ---------------------- */
  const char *close_on; /* close the client (client_rec_close_cb) from inside the
                           first event of this name; needs a client */
  int close_called;     /* ... and it did */
  const char *stop_on;  /* stop the client from inside the first event of this name */
  int stop_called;      /* ... and it did, */
  int stop_rc;          /* ... with this result */
  client_rec_hook_fn on_event; /* after every event (before close_on/stop_on) */
  void *user;           /* the test's own, for its hook and callbacks */
  int seq_reconnecting; /* reconnecting events go into seq too */
  int in_call;          /* the test is inside an API call: no event may come now */

  /* ---- statuses ------------------------------------------------------------ */
  char statuses[8192];  /* every status change: "connecting connect opening ..." */
  size_t st_len;        /* its length */
  xmppuv_status_t status; /* the last one (offline before any) */
  unsigned connecting, connects, offlines; /* changes to these three */
  uint64_t connect_at[CLIENT_REC_MAX]; /* clock at each connect */
  char bad_transition[64]; /* the first change client.h does not allow ("a -> b") */

  /* ---- events -------------------------------------------------------------- */
  unsigned onlines;     /* online events (new sessions) */
  uint64_t online_at;   /* clock at the last one */
  char bound[256];      /* the JID the last one gave */
  unsigned resumes;     /* resumed events */

  unsigned errors;      /* error events, and of the first CLIENT_REC_MAX: */
  int err_code[CLIENT_REC_MAX];
  int err_fatal[CLIENT_REC_MAX];
  char err_cond[CLIENT_REC_MAX][48]; /* condition, "" if none */
  char err_text[CLIENT_REC_MAX][320]; /* text, "" if none */
  unsigned wordless_errors; /* errors with neither text nor condition: the
                               library says what happened, always (world_finish
                               asserts none) */
  uint64_t err_at[CLIENT_REC_MAX];   /* clock */
  int last_err_code;    /* the last error's code, however many came */

  unsigned reconnectings; /* reconnecting events, and of the first CLIENT_REC_MAX: */
  unsigned attempt[CLIENT_REC_MAX];
  uint64_t delay[CLIENT_REC_MAX];           /* the delay announced */
  uint64_t reconnecting_at[CLIENT_REC_MAX]; /* clock */

  unsigned acks;        /* ack events */
  xmppuv_stanza_t *acked; /* the last stanza acked (borrowed: compare only) */
  unsigned fails;       /* fail events, and the first CLIENT_REC_MAX reasons: */
  int fail_reason[CLIENT_REC_MAX];
  unsigned inbound;     /* stanza events (everything inbound) */
  unsigned tokens;      /* fast_token events; the last one's token ("" for none): */
  char token[256], token_mech[64], token_expiry[64];
  unsigned sent_done;   /* client_rec_sent_cb calls, */
  int sent_status;      /* the last one's status */

  /* The order of what the app saw: "online ack error:ESTREAM fail:ESTREAM
   * offline". Online, resumed, error, ack, fail, sent and offline, with the
   * code (error name) where there is one; reconnecting with seq_reconnecting.
   * client_rec_note() adds the test's own. */
  char seq[2048];
  size_t seq_len;

  /* ---- slots (client_rec_send) ----------------------------------------- */
  client_rec_slot_t slots[CLIENT_REC_SLOTS];
  size_t nslots;
  unsigned stray;       /* acks and fails of stanzas in no slot */

  /* ---- close and the rules ------------------------------------------------- */
  unsigned closed_events; /* the `closed` event (once, before the close callback) */
  int closed;           /* client_rec_close_cb ran */
  int after_close;      /* an event came after it: a bug */
  int event_in_call;    /* an event came while in_call was set: a bug */
};

/* Zero everything, then use this clock (may be NULL). */
void client_rec_init(client_rec_t *r, client_rec_clock_fn clock, void *clock_arg);
/* Drop the slots' references. */
void client_rec_free(client_rec_t *r);

/* The client's callbacks; user_data is the recorder. */
extern const xmppuv_client_callbacks_t client_rec_callbacks;
/* For xmppuv_client_close(): sets closed (user_data is the recorder). */
void client_rec_close_cb(xmppuv_client_t *c, void *user_data);
/* A send callback whose user_data is the recorder: sent_done, sent_status. */
void client_rec_sent_cb(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *user_data);

/* Add "what[:ERRNAME]" to seq (code 0: no name). */
void client_rec_note(client_rec_t *r, const char *what, int code);

/* Follow stanza in the next free slot (the slot takes a reference): send
 * it with client_rec_slot_sent_cb and the slot as user_data. */
client_rec_slot_t *client_rec_slot_add(client_rec_t *r, xmppuv_stanza_t *stanza);
void client_rec_slot_sent_cb(xmppuv_client_t *c, xmppuv_stanza_t *s, int status,
                             void *user_data);
/* Both: stanza followed in a slot and sent with xmppuv_client_send_tracked().
 * Returns the call's result; the slot is kept (and *out set, if out is not
 * NULL) only on 0. */
int client_rec_send(client_rec_t *r, xmppuv_client_t *c, xmppuv_stanza_t *stanza,
                    client_rec_slot_t **out);
/* The slot of stanza, or NULL. */
client_rec_slot_t *client_rec_slot_of(client_rec_t *r, const xmppuv_stanza_t *stanza);

/* Non-zero if client.h allows the status change from -> to: up offline ->
 * connecting -> connect -> opening <-> open -> online, down online ->
 * closing -> close -> disconnecting -> disconnect -> offline, or straight
 * to disconnecting from any step up or to closing from an open stream;
 * disconnect -> connecting to reconnect; offline at once when stopped
 * before the socket exists. */
int client_rec_valid_transition(xmppuv_status_t from, xmppuv_status_t to);

/* Check assertions on the rules of client.h, each on its own:
 * nothing after close_cb, every status change allowed, no event inside
 * an API call. */
void client_rec_assert_nothing_after_close(const client_rec_t *r);
void client_rec_assert_transitions(const client_rec_t *r);
void client_rec_assert_no_event_in_call(const client_rec_t *r);
/* Every slot got exactly one send callback and exactly one ack or fail;
 * no ack or fail for a stanza in no slot. */
void client_rec_assert_slots_settled(const client_rec_t *r);

/* Error i of r (a client_rec_t *) was code with condition cond ("" for
 * none) and fatal (0 or 1). */
#define ASSERT_ERROR(r, i, code, cond, fatal)                                        \
  do {                                                                               \
    ck_assert_msg((r)->errors > (unsigned)(i), "no error %d; statuses: %s", (int)(i), \
                  (r)->statuses);                                                    \
    ck_assert_msg((r)->err_code[i] == (code), "error %d is %s, not %s", (int)(i),    \
                  xmppuv_err_name((r)->err_code[i]), xmppuv_err_name(code));         \
    ck_assert_str_eq((r)->err_cond[i], (cond));                                      \
    ck_assert_int_eq((r)->err_fatal[i], (fatal));                                    \
  } while (0)

#endif
