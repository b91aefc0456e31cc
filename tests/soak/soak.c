/* The soak test: xmppuv under faults against real Prosody and ejabberd.
 *
 * One process, one loop, per server: alice and bob each send numbered
 * messages to the other's bare JID ("a-N" from alice, "b-N" from bob: the
 * body and the id) at a steady rate, each through a fault proxy of her or
 * his own (tests/support/fault_proxy.h), so both the send path and the
 * receive path (and h counting across resumptions) of each client run
 * through faults. On a schedule drawn from a seeded PRNG (the seed is
 * printed; --seed repeats a run): each proxy resets its connections every
 * few hundred ms, partitions (some longer than the 2 s SM ack timeout) and
 * refusals come and go, and the server is restarted now and then (stop and
 * start in its directory on the same ports: every SM session is gone).
 *
 * Policy: the default, sm_resend_on_failed = 0. Unacked stanzas of a
 * session that could not be resumed fail (XMPPUV_ESMFAILED) and are not
 * resent, so a resent copy can never be a duplicate; --resend runs the
 * other policy.
 *
 * At the end, with the faults off and the sending stopped, the soak waits
 * (generous deadlines; verdicts never depend on timing) for every send's
 * outcome, for both clients to be online with empty queues, and for a
 * fence on each side (an iq ping to the server: what the server routed
 * before it is written to the client before the reply), then stops both
 * clients gracefully (sm_drain_timeout_ms) and closes everything.
 *
 * Every message ends in one of:
 *   delivered   acked (send_cb 0) and received exactly once
 *   failed      send_cb < 0 and never received
 *   bounced     acked, never received, and returned to the sender by the
 *               server as an error (ejabberd, which keeps no offline
 *               messages here, when the peer's new session after a restart
 *               was not available yet); the app is told, as with `fail`
 * Violations: a duplicate, a lost message (acked, never received, not
 * bounced), a missing or second send_cb, an `ack`/`fail` event for a
 * message sent with send_tracked (its outcome goes to send_cb only), a message with two <delay/> stamps from its sender.
 *
 * A lost session (a server restart, or the server ending one with a
 * stream error) opens a window that closes when each peer that lost its
 * session is available again in a new one. XEP-0198 cannot settle what
 * was in flight across such a loss, so these are counted apart, and are
 * violations only outside such a window:
 *   failed-but-delivered  the server took it, its ack was lost with the
 *                         session (ejabberd's <failed/> after a restart has
 *                         no h; Prosody's keeps one, but only for the first
 *                         <resume/> it answers)
 *   bounced-but-delivered the peer got it, its ack to the server was lost
 *   redelivered           received, not yet acked by the peer when the
 *                         server went down; Prosody's offline storage
 *                         delivers it again to the peer's new session
 *   lost by the server    acked, and held by the server for the peer when
 *                         the server went down: acked in the 30 s before,
 *                         while stopping, or after, by the h of the
 *                         <failed/> (Prosody) answering the resumption of a
 *                         session the restart ended. ejabberd keeps no
 *                         offline messages; Prosody stores what a session
 *                         held only if it was its user's last one
 *                         (mod_smacks, delivery/failure), else bounces it,
 *                         and the bounce dies with the sender's session,
 *                         closed by the same shutdown. A user has another
 *                         session after a connection lost between
 *                         <enable/> and <enabled/>: the server keeps that
 *                         session resumable (60 s) and the client cannot
 *                         know its id (XEP-0198).
 *
 * Server set-up: a resumption window (RESUME_S, 60 s) that outlasts every
 * partition and refusal, and a queue of unacknowledged stanzas per session
 * (XMPPUV_SERVER_SM_QUEUE: Prosody's smacks_max_queue_size, ejabberd's
 * max_ack_queue) that holds all that can pile up for a peer meanwhile, so
 * that a session is lost only when the server restarts or ends it with a
 * stream error. Prosody's default queue, 500, is too small for this
 * traffic: a peer that is away for 12 s at 40 msg/s, or that gets a few
 * hundred offline messages at the start of its session after a restart and
 * loses the connection before it acks them, overflows it. Prosody then
 * overwrites the oldest stanzas (util.smqueue's ring: acked to the sender,
 * never sent, no error) and refuses the resumption (resource-constraint);
 * and Prosody 13.0.1 keeps the refused session bound, available and
 * hibernating for good (mod_smacks do_resume cancels its watchdog before
 * it checks the queue, and nothing closes it; 0.12.3 closed it, and its
 * queue went to offline storage), so what it queued, and what reaches the
 * peer's bare JID until the peer's next session is available, is never
 * delivered (tests/soak/prosody_orphaned_session.py reproduces it). With
 * the default queue, about half the short runs on Prosody 13 failed with
 * hundreds of such messages "lost". A refusal for the queue limit is still
 * counted (the library logs the condition) and shown; what it loses stays
 * "lost" and fails the run. XMPPUV_SERVER_SM_QUEUE=500 in the environment
 * runs the soak with Prosody's default queue.
 *
 * Fatal errors: the library gives up (README) and every one fails the
 * run. Prosody's "not-well-formed" after a resumption, a server bug
 * (tests/soak/prosody_resume_parser.py reproduces it on 0.12.3 and
 * 13.0.1), is not fatal (the stream error table retries it): Prosody parses
 * a resumed stream with the first connection's parser, so part of a stanza
 * left there by a connection that died breaks the resumed stream although
 * every byte the client sent is well-formed, and the server ends the
 * session: the client reconnects, its <resume/> fails, a new session
 * starts. The session is lost with it, so it opens a loss window.
 *
 * Memory and handles: RSS (after malloc_trim) after a warm-up phase (a
 * tenth of the run, at least 5 s), again once the traffic is over and
 * settled (clients still connected), and at the end (clients closed, loop
 * closed); both must be at most 1 MiB above the warm-up figure (the
 * message table is allocated and touched before the warm-up, so it does
 * not count as growth). xmppuv's own allocations are counted
 * through xmppuv_replace_allocator(): back to the starting count at the
 * end. /proc/self/fd is counted before and after; uv_loop_close() must
 * succeed (uv_walk lists any handle left).
 *
 * Output: "# ..." progress and detail lines, then one summary line per
 * server starting "soak <server>:" and ending PASS or FAIL. Exit status 0
 * only if every server passed.
 *
 *   soak [--short] [--server prosody|ejabberd|both] [--seed N]
 *        [--duration S] [--rate N] [--restart-every S] [--resend]
 *        [--log LEVEL] [--verbose]
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <xmppuv.h>

#include "fault_proxy.h"
#include "servers.h"

/* The servers' resumption window, s (see the top). */
#define RESUME_S 60

#define NS_PING "urn:xmpp:ping"
#define NS_DELAY "urn:xmpp:delay"
#define MIB (1024.0 * 1024.0)

/* ---- options ---------------------------------------------------------------- */

typedef struct options {
  int short_run;
  const char *server; /* "prosody", "ejabberd" or "both" */
  uint64_t seed;
  int seed_given;
  unsigned duration_s;      /* traffic, per server */
  unsigned rate;            /* messages per second, each way */
  unsigned warmup_s;        /* RSS baseline after this much traffic */
  unsigned restart_min_s, restart_max_s; /* between server restarts */
  int resend;
  xmppuv_log_level_t log_level;
  int verbose;
} options_t;

static options_t opt;

/* ---- counting allocator --------------------------------------------------------- */

/* Every xmppuv allocation carries its size in front, so realloc and free
 * keep exact live counts. */
typedef union header {
  size_t size;
  max_align_t align;
} header_t;

static struct {
  long long live, live_bytes, peak_bytes, total;
} mem;

static void *count_malloc(size_t size) {
  header_t *h = malloc(sizeof(header_t) + size);
  if (h == NULL) return NULL;
  h->size = size;
  mem.live++;
  mem.total++;
  mem.live_bytes += (long long)size;
  if (mem.live_bytes > mem.peak_bytes) mem.peak_bytes = mem.live_bytes;
  return h + 1;
}

static void count_free(void *p) {
  if (p == NULL) return;
  header_t *h = (header_t *)p - 1;
  mem.live--;
  mem.live_bytes -= (long long)h->size;
  free(h);
}

static void *count_realloc(void *p, size_t size) {
  if (p == NULL) return count_malloc(size);
  header_t *h = (header_t *)p - 1;
  size_t old = h->size;
  header_t *n = realloc(h, sizeof(header_t) + size);
  if (n == NULL) return NULL;
  n->size = size;
  mem.live_bytes += (long long)size - (long long)old;
  mem.total++;
  if (mem.live_bytes > mem.peak_bytes) mem.peak_bytes = mem.live_bytes;
  return n + 1;
}

/* ---- process measurements -------------------------------------------------------- */

static long rss_bytes(void) {
  /* Free heap pages go back first: RSS then shows what is held, not what
   * the C library caches. */
  malloc_trim(0);
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  long size = 0, resident = 0;
  int n = fscanf(f, "%ld %ld", &size, &resident);
  fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

/* Bytes the C library's malloc has handed out and not had back, for every
 * library in the process (mbedTLS, libuv, the proxy, ...). Unlike RSS it
 * does not count freed memory the heap keeps because of fragmentation. */
static long heap_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  return (long)(mi.uordblks + mi.hblkhd);
#else
  return -1;
#endif
}

/* The heap's size (in use and free), for the progress lines. */
static long heap_size(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  return (long)(mi.arena + mi.hblkhd);
#else
  return -1;
#endif
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own fd */
}

static void list_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], target[300];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) continue;
    target[n] = '\0';
    fprintf(stderr, "#   fd %s -> %s\n", e->d_name, target);
  }
  closedir(d);
}

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the seeded PRNG (splitmix64) -------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static unsigned rng_range(unsigned lo, unsigned hi) {
  return lo + (unsigned)(rng_next() % ((uint64_t)hi - lo + 1));
}

/* ---- the world ---------------------------------------------------------------------- */

enum { OUT_NONE = 0, OUT_ACK, OUT_FAIL };

/* One message, by its number. */
typedef struct msg {
  uint8_t outcome;       /* OUT_* from send_cb */
  uint8_t outcomes;      /* send_cb calls (must end at 1) */
  uint8_t bounced;       /* error replies from the server */
  uint8_t delays;        /* the sender's <delay/> stamps on the last copy */
  uint16_t received;     /* copies at the peer */
  uint16_t epoch_at_send;      /* the restart epoch (see soak_t) */
  int16_t status;        /* send_cb status */
  uint16_t epoch_at_outcome;
  uint16_t epoch_at_bounce;
  uint8_t ack_events, fail_events; /* the client's `ack`/`fail` events */
  uint8_t custody;       /* acked and not yet received when a restart began,
                            or acked while the server was going down */
  uint16_t rx_online, rx_resumed; /* the receiver's sessions at receipt */
  uint16_t rx_epoch;     /* the restart epoch at the first receipt */
  uint16_t redelivered;  /* copies again in a new session after a restart */
  uint32_t acked_at_ds;  /* when it was acked, 1/10 s since the start */
} msg_t;

typedef struct soak soak_t;
typedef struct peer peer_t;

/* Messages one way: from `from` to `to`. */
typedef struct direction {
  char prefix;            /* 'a' or 'b': bodies and ids "a-N" */
  peer_t *from, *to;
  msg_t *msgs;
  size_t cap, nsent;
  unsigned long enobufs;  /* back-pressure: send refused, retried later */
  unsigned long held_by_app; /* refused while given up after a fatal error */
  unsigned long stray;    /* bodies that are not ours, or out of range */
  unsigned long extra_events; /* ack/fail events without a matching send_cb */
} direction_t;

struct peer {
  soak_t *s;
  const char *user;
  char jid[160];
  xmppuv_client_t *c;
  xmppuv_test_proxy_t *proxy;
  int proxy_closed, closed;
  direction_t *out, *in;
  unsigned online, resumed, disconnects, errors, acks, fails;
  unsigned available_in; /* the session whose presence the server acked */
  /* The server restarted since this peer's last new session: an ack now
   * can only come from the h of a session the restart ended. */
  int restarted_out;
  /* Fatal errors: the app starts the client again, as the README says. */
  unsigned fatal_errors, parser_faults; /* parser_faults: Prosody's, see the top */
  unsigned queue_refusals; /* resumptions refused for the server's queue limit */
  char last_fatal[96];
  int fatal_pending;
  uv_timer_t app_restart_timer;
  unsigned error_codes[8];
  int error_code_vals[8];
  int fence_done, fence_status;
  int partitioned, refusing; /* a fault in effect on this peer's proxy */
  unsigned long resets, partitions, long_partitions, refusals;
  uv_timer_t reset_timer, chaos_timer, heal_timer;
};

typedef enum { RS_IDLE, RS_STOPPING, RS_STARTING } restart_state_t;

struct soak {
  uv_loop_t loop;
  const char *kind;
  char script[1100];
  xmppuv_test_server_t srv;
  peer_t alice, bob;
  direction_t a2b, b2a;
  uv_timer_t send_timer, restart_timer, watchdog, progress_timer;
  int faults_on, sending;
  uint64_t traffic_start_ms;
  /* Server restarts, run asynchronously so the clients see the server
   * go and come back. */
  uv_process_t proc;
  int proc_open;
  int64_t proc_exit;
  int proc_signal;
  restart_state_t restart_state;
  unsigned restarts_begun, restarts_done, start_retries;
  /* Even while calm; odd from the start of a server restart until both
   * clients are back in new sessions with their presence acked. Only in
   * such a window may a session's loss leave a message failed but
   * delivered (the server took it, its ack was lost with the session) or
   * bounced (the peer had no available resource yet). */
  unsigned epoch;
  unsigned online_at_loss[2]; /* each peer's sessions when the window opened */
  int lost_session[2];        /* whose session the window's event ended */
  int stopping_clients;       /* the end: offline is expected now */
  int restart_failed;
  double restart_total_s, restart_began_at;
  char failure[512]; /* the first fatal problem of the harness */
};

static void fatal(soak_t *s, const char *fmt, ...) {
  if (s->failure[0] != '\0') return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->failure, sizeof s->failure, fmt, ap);
  va_end(ap);
  fprintf(stderr, "# %s: FATAL: %s\n", s->kind, s->failure);
}

static void note(soak_t *s, const char *fmt, ...) {
  if (!opt.verbose) return;
  va_list ap;
  va_start(ap, fmt);
  uint64_t t0 = s->traffic_start_ms ? s->traffic_start_ms : uv_now(&s->loop);
  fprintf(stderr, "# [%7.1f] ", (double)(uv_now(&s->loop) - t0) / 1000.0);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* "a-123" -> its direction's message, or NULL. */
static msg_t *lookup(soak_t *s, const char *text, direction_t **dir_out) {
  if (text == NULL || text[0] == '\0' || text[1] != '-') return NULL;
  direction_t *d = text[0] == 'a' ? &s->a2b : text[0] == 'b' ? &s->b2a : NULL;
  if (d == NULL) return NULL;
  char *end;
  errno = 0;
  unsigned long long i = strtoull(text + 2, &end, 10);
  if (errno != 0 || *end != '\0' || end == text + 2 || i >= d->nsent) return NULL;
  if (dir_out != NULL) *dir_out = d;
  return &d->msgs[i];
}

/* ---- client callbacks ----------------------------------------------------------------- */

/* The API tells the app that a new session started, not why the resumption
 * failed; the library logs the server's condition (sm.c, at warn).
 * resource-constraint is the server's queue limit (see the top). */
static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  peer_t *p = ud;
  if (strcmp(area, "sm") == 0 && strcmp(msg, "resumption failed (resource-constraint)") == 0) {
    p->queue_refusals++;
    fprintf(stderr, "# %s: %s's resumption refused: resource-constraint (the server's queue "
            "limit, see the top of soak.c)\n", p->s->kind, p->user);
  }
  if (level <= opt.log_level)
    fprintf(stderr, "[%s %s] %s: %s\n", p->user, xmppuv_log_level_name(level), area, msg);
}

static void on_app_restart(uv_timer_t *t) {
  peer_t *p = t->data;
  if (p->s->stopping_clients || p->c == NULL) return;
  note(p->s, "%s: started again after a fatal error", p->user);
  int rc = xmppuv_client_start(p->c);
  if (rc != 0) fatal(p->s, "%s: start after a fatal error: %s", p->user, xmppuv_err_name(rc));
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud) {
  (void)c;
  peer_t *p = ud;
  if (status == XMPPUV_STATUS_DISCONNECT) p->disconnects++;
  /* Given up after a fatal error: an app that must stay online starts the
   * client again; what it held failed with the error (README). */
  if (status == XMPPUV_STATUS_OFFLINE && p->fatal_pending && !p->s->stopping_clients) {
    p->fatal_pending = 0;
    uv_timer_start(&p->app_restart_timer, on_app_restart, 500, 0);
  }
}

static void begin_loss_window(soak_t *s, int alice_lost, int bob_lost, int server_down);

/* Prosody (0.12.3 and 13.0.1) parses a resumed stream with the parser of
 * the session's first connection (mod_smacks handle_resume moves the new
 * connection to the old session, whose data handler keeps the old parser).
 * If some connection of the session died with part of a stanza in that
 * parser, the resumed stream is "not-well-formed" although every byte we
 * sent is well-formed (checked: the bytes given to TLS parse). The server
 * ends the session; the library retries (README), its <resume/> fails and
 * a new session starts. */
static int prosody_parser_fault(const soak_t *s, const xmppuv_error_t *err) {
  return strcmp(s->kind, "prosody") == 0 && err->code == XMPPUV_ESTREAM &&
         err->condition != NULL && strcmp(err->condition, "not-well-formed") == 0;
}

static void send_presence(peer_t *p) {
  xmppuv_stanza_t *pres;
  if (xmppuv_stanza_new("presence", NULL, &pres) != 0) {
    fatal(p->s, "out of memory for a presence");
    return;
  }
  int rc = xmppuv_client_send(p->c, pres);
  if (rc != 0) fatal(p->s, "%s: presence: %s", p->user, xmppuv_err_name(rc));
  xmppuv_stanza_unref(pres);
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c;
  (void)jid;
  peer_t *p = ud;
  p->online++;
  /* A session on a server that is going down dies with it: a window waits
   * for the next one. */
  int i = p == &p->s->bob;
  if (p->s->restart_state == RS_STOPPING) {
    if (p->s->lost_session[i]) p->s->online_at_loss[i] = p->online;
  } else {
    p->restarted_out = 0;
  }
  /* A new session: available again, so messages to the bare JID reach it. */
  send_presence(p);
  note(p->s, "%s online (new session %u)", p->user, p->online);
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  (void)c;
  peer_t *p = ud;
  p->resumed++;
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *err, void *ud) {
  (void)c;
  peer_t *p = ud;
  p->errors++;
  for (size_t i = 0; i < 8; i++) {
    if (p->error_codes[i] == 0 || p->error_code_vals[i] == err->code) {
      p->error_code_vals[i] = err->code;
      p->error_codes[i]++;
      break;
    }
  }
  if (prosody_parser_fault(p->s, err)) {
    p->parser_faults++;
    note(p->s, "%s: Prosody's not-well-formed after resumption", p->user);
    /* The server ended the session: like a restart, for this peer. */
    begin_loss_window(p->s, p == &p->s->alice, p == &p->s->bob, 0);
  }
  if (!err->fatal) return;
  p->fatal_errors++;
  snprintf(p->last_fatal, sizeof p->last_fatal, "%s%s%s", xmppuv_err_name(err->code),
           err->condition ? " " : "", err->condition ? err->condition : "");
  note(p->s, "%s: fatal error %s", p->user, p->last_fatal);
  p->fatal_pending = 1;
}

static void check_calm(soak_t *s) {
  if (s->epoch % 2 == 0 || s->restart_state != RS_IDLE) return;
  const peer_t *p[2] = {&s->alice, &s->bob};
  for (int i = 0; i < 2; i++)
    if (s->lost_session[i] &&
        (p[i]->online <= s->online_at_loss[i] || p[i]->available_in != p[i]->online))
      return;
  s->epoch++;
  s->lost_session[0] = s->lost_session[1] = 0;
  note(s, "calm again: the clients are available in new sessions");
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *st, void *ud) {
  (void)c;
  peer_t *p = ud;
  p->acks++;
  if (strcmp(xmppuv_stanza_name(st), "presence") == 0) {
    p->available_in = p->online;
    check_calm(p->s);
    return;
  }
  direction_t *d = NULL;
  msg_t *m = lookup(p->s, xmppuv_stanza_attr(st, "id"), &d);
  if (m != NULL && d == p->out && m->ack_events < UINT8_MAX) m->ack_events++;
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *st, int reason, void *ud) {
  (void)c;
  (void)reason;
  peer_t *p = ud;
  p->fails++;
  direction_t *d = NULL;
  msg_t *m = lookup(p->s, xmppuv_stanza_attr(st, "id"), &d);
  if (m != NULL && d == p->out && m->fail_events < UINT8_MAX) m->fail_events++;
}

static const xmppuv_client_callbacks_t callbacks = {
    sizeof(xmppuv_client_callbacks_t), on_status, on_online, on_resumed, on_error, on_ack, on_fail, NULL, NULL, NULL, NULL};

static void on_sent(xmppuv_client_t *c, xmppuv_stanza_t *st, int status, void *ud) {
  (void)c;
  peer_t *p = ud;
  direction_t *d = NULL;
  msg_t *m = lookup(p->s, xmppuv_stanza_attr(st, "id"), &d);
  if (m == NULL || d != p->out) {
    p->out->extra_events++;
    return;
  }
  if (m->outcomes < UINT8_MAX) m->outcomes++;
  m->outcome = status == 0 ? OUT_ACK : OUT_FAIL;
  m->status = (int16_t)status;
  m->epoch_at_outcome = (uint16_t)p->s->epoch;
  m->acked_at_ds = (uint32_t)((uv_now(&p->s->loop) - p->s->traffic_start_ms) / 100u);
  /* Acked by a server on its way down, or after it by the h of a session
   * the restart ended: it may have died with it (see below). */
  if (status == 0 && (p->s->restart_state != RS_IDLE || p->restarted_out)) m->custody = 1;
}

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *st, void *ud) {
  (void)c;
  peer_t *p = ud;
  const char *type = xmppuv_stanza_attr(st, "type");
  direction_t *d = NULL;
  if (type != NULL && strcmp(type, "error") == 0) {
    /* RFC 6120 §8.3: the server returns our stanza, same id, as an error. */
    msg_t *m = lookup(p->s, xmppuv_stanza_attr(st, "id"), &d);
    if (m != NULL && d == p->out) {
      if (m->bounced < UINT8_MAX) m->bounced++;
      m->epoch_at_bounce = (uint16_t)p->s->epoch;
    } else {
      p->in->stray++;
    }
    return XMPPUV_HANDLED;
  }
  msg_t *m = lookup(p->s, xmppuv_stanza_child_text(st, "body", NULL), &d);
  if (m == NULL || d != p->in) {
    p->in->stray++;
    return XMPPUV_HANDLED;
  }
  if (m->received < UINT16_MAX) m->received++;
  if (m->received == 1) {
    m->rx_online = (uint16_t)p->online;
    m->rx_resumed = (uint16_t)p->resumed;
    m->rx_epoch = (uint16_t)p->s->epoch;
  } else if (p->online > m->rx_online && (p->s->epoch > m->rx_epoch || m->rx_epoch % 2 == 1)) {
    /* Received, not yet acked when the server went down: the server kept
     * it (Prosody's offline storage) and delivers it again to the new
     * session. XEP-0198 cannot prevent that once the session is lost. */
    if (m->redelivered < UINT16_MAX) m->redelivered++;
  } else {
    const char *sd = NULL;
    for (xmppuv_stanza_t *e = xmppuv_stanza_child(st, "delay", NS_DELAY); e != NULL;
         e = xmppuv_stanza_next(e, "delay", NS_DELAY))
      if (sd == NULL) sd = xmppuv_stanza_attr(e, "from");
    fprintf(stderr,
            "# %s: duplicate %s at %s: first in session %u after %u resumptions, now in "
            "session %u after %u (restart epoch %u, first delay from %s)\n",
            p->s->kind, xmppuv_stanza_child_text(st, "body", NULL), p->user, m->rx_online,
            m->rx_resumed, p->online, p->resumed, p->s->epoch, sd ? sd : "-");
  }
  /* XEP-0203: the sender's client stamps a message it wrote late, once;
   * the server may add its own (Prosody does on a resend after
   * resumption), from its own JID. */
  uint8_t delays = 0;
  size_t blen = strlen(d->from->jid);
  for (xmppuv_stanza_t *e = xmppuv_stanza_child(st, "delay", NS_DELAY); e != NULL;
       e = xmppuv_stanza_next(e, "delay", NS_DELAY)) {
    const char *from = xmppuv_stanza_attr(e, "from");
    if (from != NULL && strncmp(from, d->from->jid, blen) == 0 &&
        (from[blen] == '\0' || from[blen] == '/'))
      delays++;
  }
  m->delays = delays;
  return XMPPUV_HANDLED;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* 1 if sent, 0 if refused for now (back-pressure). */
static int send_one(soak_t *s, direction_t *d) {
  if (d->nsent >= d->cap) return 0;
  char text[32];
  snprintf(text, sizeof text, "%c-%zu", d->prefix, d->nsent);
  xmppuv_stanza_t *msg;
  if (xmppuv_message_new(d->to->jid, "chat", text, &msg) != 0 ||
      xmppuv_stanza_set_attr(msg, "id", text) != 0) {
    fatal(s, "out of memory building %s", text);
    return 0;
  }
  msg_t *m = &d->msgs[d->nsent];
  memset(m, 0, sizeof *m);
  m->epoch_at_send = (uint16_t)s->epoch;
  d->nsent++; /* first: send_cb may run inside the call (without SM) */
  int rc = xmppuv_client_send_tracked(d->from->c, msg, on_sent, d->from);
  xmppuv_stanza_unref(msg);
  if (rc == 0) return 1;
  d->nsent--;
  if (rc == XMPPUV_ENOBUFS) {
    d->enobufs++;
    return 0;
  }
  /* Given up after a fatal error, not yet started again: the app holds
   * its messages until it has started the client again. */
  if (rc == XMPPUV_ESTATE && xmppuv_client_status(d->from->c) == XMPPUV_STATUS_OFFLINE &&
      d->from->fatal_errors > 0) {
    d->held_by_app++;
    return 0;
  }
  fatal(s, "%s: send %s: %s", d->from->user, text, xmppuv_err_name(rc));
  return 0;
}

static void send_due(soak_t *s, direction_t *d) {
  uint64_t elapsed = uv_now(&s->loop) - s->traffic_start_ms;
  uint64_t due = elapsed * opt.rate / 1000u;
  /* A stalled loop does not turn into a burst of thousands. */
  for (unsigned burst = 0; d->nsent < due && burst < 100; burst++)
    if (!send_one(s, d)) break;
}

static void on_send_timer(uv_timer_t *t) {
  soak_t *s = t->data;
  if (!s->sending) return;
  send_due(s, &s->a2b);
  send_due(s, &s->b2a);
}

/* ---- faults ------------------------------------------------------------------------------ */

static void on_reset_timer(uv_timer_t *t);
static void on_chaos_timer(uv_timer_t *t);

/* Every few hundred ms: reset every connection through this proxy. */
static void arm_reset(peer_t *p) {
  uv_timer_start(&p->reset_timer, on_reset_timer, rng_range(150, 700), 0);
}

static void on_reset_timer(uv_timer_t *t) {
  peer_t *p = t->data;
  if (!p->s->faults_on) return;
  xmppuv_test_proxy_reset_all(p->proxy);
  p->resets++;
  arm_reset(p);
}

static void arm_chaos(peer_t *p) {
  unsigned lo = opt.short_run ? 2000 : 3000, hi = opt.short_run ? 6000 : 12000;
  uv_timer_start(&p->chaos_timer, on_chaos_timer, rng_range(lo, hi), 0);
}

static void heal(peer_t *p) {
  if (p->partitioned) {
    xmppuv_test_proxy_partition(p->proxy, 0);
    p->partitioned = 0;
  }
  if (p->refusing) {
    int rc = xmppuv_test_proxy_refuse(p->proxy, 0);
    if (rc != 0) fatal(p->s, "%s's proxy cannot listen again: %s", p->user, uv_strerror(rc));
    p->refusing = 0;
  }
}

static void on_heal_timer(uv_timer_t *t) {
  peer_t *p = t->data;
  note(p->s, "%s: heal", p->user);
  heal(p);
  if (p->s->faults_on) arm_chaos(p);
}

/* Now and then: a silent partition (sometimes longer than the SM ack
 * timeout) or a refusal, for a while; then healed. */
static void on_chaos_timer(uv_timer_t *t) {
  peer_t *p = t->data;
  if (!p->s->faults_on) return;
  unsigned ms;
  if (rng_next() % 3 != 0) {
    ms = rng_next() % 3 == 0 ? rng_range(2500, 6000) : rng_range(200, 1800);
    xmppuv_test_proxy_partition(p->proxy, 1);
    p->partitioned = 1;
    p->partitions++;
    if (ms > 2000) p->long_partitions++;
    note(p->s, "%s: partition for %u ms", p->user, ms);
  } else {
    ms = rng_range(300, 3000);
    int rc = xmppuv_test_proxy_refuse(p->proxy, 1);
    if (rc != 0) fatal(p->s, "refuse: %s", uv_strerror(rc));
    p->refusing = 1;
    p->refusals++;
    note(p->s, "%s: refuse for %u ms", p->user, ms);
  }
  uv_timer_start(&p->heal_timer, on_heal_timer, ms, 0);
}

/* ---- server restarts (asynchronous: the scripts run while the loop does) ---------------- */

static void restart_step(soak_t *s, const char *command);
static void arm_restart(soak_t *s);

/* What the server holds for the peer when it goes down may go with it (an
 * acked stanza is the server's responsibility; without offline storage
 * neither server keeps it across a restart). Only those, acked in the
 * CUSTODY_DS before, can be excused as lost by the server. */
#define CUSTODY_DS 300u
static void mark_custody(soak_t *s, direction_t *d) {
  uint64_t now_ds = (uv_now(&s->loop) - s->traffic_start_ms) / 100u;
  for (size_t i = 0; i < d->nsent; i++) {
    msg_t *m = &d->msgs[i];
    if (m->outcome == OUT_ACK && m->received == 0 && m->acked_at_ds + CUSTODY_DS >= now_ds)
      m->custody = 1;
  }
}

/* A session (or both) is lost: a window opens (the epoch goes odd) that
 * closes once each peer that lost its session is available in a new one,
 * opened after the last loss (a second restart in an open window counts).
 * Only a server going down may take what it holds with it. */
static void begin_loss_window(soak_t *s, int alice_lost, int bob_lost, int server_down) {
  if (server_down) {
    mark_custody(s, &s->a2b);
    mark_custody(s, &s->b2a);
  }
  if (s->epoch % 2 == 0) s->epoch++;
  if (alice_lost) {
    s->lost_session[0] = 1;
    s->online_at_loss[0] = s->alice.online;
  }
  if (bob_lost) {
    s->lost_session[1] = 1;
    s->online_at_loss[1] = s->bob.online;
  }
}

static void on_restart_timer(uv_timer_t *t) {
  soak_t *s = t->data;
  if (s->restart_state == RS_IDLE && s->faults_on) {
    s->restarts_begun++;
    begin_loss_window(s, 1, 1, 1);
    s->alice.restarted_out = s->bob.restarted_out = 1;
    s->restart_began_at = wall_s();
    note(s, "server restart %u: stopping", s->restarts_begun);
    restart_step(s, "stop");
  } else if (s->restart_state == RS_STARTING) {
    restart_step(s, "start"); /* a retry after "port in use" */
  }
}

/* The script's process handle is closed before the next step reuses it. */
static void on_proc_closed(uv_handle_t *h) {
  soak_t *s = h->data;
  s->proc_open = 0;
  int ok = s->proc_exit == 0 && s->proc_signal == 0;
  if (s->restart_state == RS_STOPPING) {
    if (!ok) {
      fatal(s, "server stop failed (exit %" PRId64 "): see %s/soak-restart.log", s->proc_exit,
            s->srv.dir);
      s->restart_failed = 1;
      s->restart_state = RS_IDLE;
      return;
    }
    s->start_retries = 0;
    note(s, "server restart %u: starting", s->restarts_begun);
    restart_step(s, "start");
    return;
  }
  if (s->restart_state != RS_STARTING) return; /* spawn failed */
  if (ok) {
    s->restarts_done++;
    s->restart_total_s += wall_s() - s->restart_began_at;
    s->restart_state = RS_IDLE;
    note(s, "server restart %u: up after %.1f s", s->restarts_begun,
         wall_s() - s->restart_began_at);
    check_calm(s);
    if (s->faults_on) arm_restart(s);
    return;
  }
  /* Exit 3: a port was taken meanwhile (the script's code); try again. */
  if (s->proc_exit == 3 && ++s->start_retries < 20) {
    uv_timer_start(&s->restart_timer, on_restart_timer, 500, 0);
    return;
  }
  fatal(s, "server start failed (exit %" PRId64 "): see %s/soak-restart.log", s->proc_exit,
        s->srv.dir);
  s->restart_failed = 1;
  s->restart_state = RS_IDLE;
}

static void on_proc_exit(uv_process_t *proc, int64_t exit_status, int term_signal) {
  soak_t *s = proc->data;
  s->proc_exit = exit_status;
  s->proc_signal = term_signal;
  uv_close((uv_handle_t *)proc, on_proc_closed);
}

static void restart_step(soak_t *s, const char *command) {
  char dir[300], c2s[16], tls[16], resume[16], logpath[400];
  snprintf(dir, sizeof dir, "%s", s->srv.dir);
  snprintf(c2s, sizeof c2s, "%u", s->srv.port);
  snprintf(tls, sizeof tls, "%u", s->srv.direct_tls_port);
  snprintf(resume, sizeof resume, "%d", s->srv.resume_seconds);
  snprintf(logpath, sizeof logpath, "%s/soak-restart.log", s->srv.dir);
  char *args[8] = {"/bin/bash", s->script, (char *)command, dir, NULL, NULL, NULL, NULL};
  if (strcmp(command, "start") == 0) {
    args[4] = c2s;
    args[5] = tls;
    args[6] = resume;
  }
  int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = fd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
  stdio[1].data.fd = fd;
  stdio[2] = stdio[1];
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.file = args[0];
  po.args = args;
  po.exit_cb = on_proc_exit;
  po.stdio = stdio;
  po.stdio_count = 3;
  s->proc.data = s;
  s->restart_state = strcmp(command, "stop") == 0 ? RS_STOPPING : RS_STARTING;
  s->proc_open = 1;
  int rc = uv_spawn(&s->loop, &s->proc, &po);
  if (fd >= 0) close(fd);
  if (rc != 0) {
    fatal(s, "spawn %s %s: %s", s->script, command, uv_strerror(rc));
    s->restart_failed = 1;
    s->restart_state = RS_IDLE;
    /* uv_spawn initialized the handle even on failure. */
    uv_close((uv_handle_t *)&s->proc, on_proc_closed);
  }
}

static void arm_restart(soak_t *s) {
  unsigned ms = rng_range(opt.restart_min_s * 1000u, opt.restart_max_s * 1000u);
  uv_timer_start(&s->restart_timer, on_restart_timer, ms, 0);
}

/* ---- running the loop ------------------------------------------------------------------------ */

static void on_watchdog(uv_timer_t *t) { (void)t; }

/* Run the loop until pred holds, or timeout_ms passed, or a fatal problem. */
static int run_until(soak_t *s, int (*pred)(soak_t *), unsigned timeout_ms) {
  uint64_t deadline = uv_now(&s->loop) + timeout_ms;
  uv_timer_start(&s->watchdog, on_watchdog, timeout_ms, 0);
  int ok;
  while (!(ok = pred(s)) && s->failure[0] == '\0' && uv_now(&s->loop) < deadline)
    uv_run(&s->loop, UV_RUN_ONCE);
  uv_timer_stop(&s->watchdog);
  return ok;
}

static int peer_ready(const peer_t *p) {
  return p->online > 0 && xmppuv_client_status(p->c) == XMPPUV_STATUS_ONLINE &&
         xmppuv_client_sm_enabled(p->c) && xmppuv_client_sm_queued(p->c) == 0;
}
static int both_ready(soak_t *s) { return peer_ready(&s->alice) && peer_ready(&s->bob); }
static int never(soak_t *s) {
  (void)s;
  return 0;
}
static int restart_idle(soak_t *s) { return s->restart_state == RS_IDLE && !s->proc_open; }

static size_t pending_outcomes(const direction_t *d) {
  size_t n = 0;
  for (size_t i = 0; i < d->nsent; i++) n += d->msgs[i].outcomes == 0;
  return n;
}
static int all_outcomes(soak_t *s) {
  return pending_outcomes(&s->a2b) == 0 && pending_outcomes(&s->b2a) == 0;
}

static void on_fence_reply(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c;
  (void)reply;
  peer_t *p = ud;
  p->fence_done = 1;
  p->fence_status = status;
}
static int fences_done(soak_t *s) { return s->alice.fence_done && s->bob.fence_done; }

/* After the reply, nothing the server routed to p before is still on its
 * way (it writes to p's stream in order). */
static void fence(peer_t *p) {
  xmppuv_stanza_t *iq;
  p->fence_done = 0;
  if (xmppuv_stanza_new("iq", NULL, &iq) != 0) return;
  int rc = xmppuv_stanza_set_attr(iq, "type", "get");
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "to", p->s->srv.domain);
  if (rc == 0) rc = xmppuv_stanza_new_child(iq, "ping", NS_PING, NULL);
  if (rc == 0) rc = xmppuv_client_send_iq(p->c, iq, 60000, on_fence_reply, p, NULL);
  xmppuv_stanza_unref(iq);
  if (rc != 0) fatal(p->s, "%s: fence ping: %s", p->user, xmppuv_err_name(rc));
}

static void on_progress(uv_timer_t *t) {
  soak_t *s = t->data;
  size_t pa = pending_outcomes(&s->a2b), pb = pending_outcomes(&s->b2a);
  fprintf(stderr,
          "# %s [%5.0f s] sent a->b %zu b->a %zu, unsettled %zu/%zu; resets %lu/%lu; "
          "restarts %u; alice online %u resumed %u; bob online %u resumed %u; "
          "xmppuv live %.2f MiB; RSS %.2f MiB, heap in use %.2f MiB of %.2f MiB\n",
          s->kind, (double)(uv_now(&s->loop) - s->traffic_start_ms) / 1000.0, s->a2b.nsent,
          s->b2a.nsent, pa, pb, s->alice.resets, s->bob.resets, s->restarts_done,
          s->alice.online, s->alice.resumed, s->bob.online, s->bob.resumed,
          (double)mem.live_bytes / MIB, (double)rss_bytes() / MIB, (double)heap_in_use() / MIB,
          (double)heap_size() / MIB);
}

/* ---- set-up and tear-down --------------------------------------------------------------------- */

static void client_options(soak_t *s, peer_t *p, xmppuv_client_options_t *o) {
  xmppuv_client_options_init(o);
  o->jid = p->jid;
  o->password = xmppuv_test_password(p->user);
  o->host = "127.0.0.1";
  o->port = xmppuv_test_proxy_port(p->proxy);
  o->tls = XMPPUV_TLS_STARTTLS;
  o->ca_file = s->srv.ca_file;
  /* Faults every few hundred ms: come back quickly. */
  o->reconnect_delay_ms = 50;
  o->reconnect_max_delay_ms = 1000;
  o->connect_timeout_ms = 3000;
  o->negotiation_timeout_ms = 10000;
  o->close_timeout_ms = 3000;
  o->sm_ack_debounce_ms = 100;
  o->sm_idle_request_ms = 1000;
  o->sm_ack_timeout_ms = 2000; /* some partitions last longer */
  o->sm_wait_timeout_ms = 10000;
  o->sm_resend_on_failed = opt.resend;
  o->sm_drain_timeout_ms = 10000;
  /* At least warn, for on_log's count; printed at the level asked for. */
  o->log_cb = on_log;
  o->log_user_data = p;
  o->log_level = opt.log_level > XMPPUV_LOG_WARN ? opt.log_level : XMPPUV_LOG_WARN;
}

static void on_client_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  ((peer_t *)ud)->closed = 1;
}

static void on_proxy_closed(void *ud) { ((peer_t *)ud)->proxy_closed = 1; }

static void close_handle(uv_handle_t *h) {
  if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h)) uv_close(h, NULL);
}

static void walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "#   handle left open: %s%s\n", uv_handle_type_name(h->type),
          uv_is_closing(h) ? " (closing)" : "");
}

static int peers_stopped(soak_t *s) {
  return xmppuv_client_status(s->alice.c) == XMPPUV_STATUS_OFFLINE &&
         xmppuv_client_status(s->bob.c) == XMPPUV_STATUS_OFFLINE;
}

static void peer_init(soak_t *s, peer_t *p, const char *user, direction_t *out,
                      direction_t *in) {
  p->s = s;
  p->user = user;
  snprintf(p->jid, sizeof p->jid, "%s@%s", user, s->srv.domain);
  p->out = out;
  p->in = in;
  uv_timer_init(&s->loop, &p->reset_timer);
  uv_timer_init(&s->loop, &p->chaos_timer);
  uv_timer_init(&s->loop, &p->heal_timer);
  uv_timer_init(&s->loop, &p->app_restart_timer);
  p->reset_timer.data = p->chaos_timer.data = p->heal_timer.data = p;
  p->app_restart_timer.data = p;
}

static void peer_start(soak_t *s, peer_t *p) {
  int rc = xmppuv_test_proxy_start(&s->loop, "127.0.0.1", s->srv.port, &p->proxy);
  if (rc != 0) {
    fatal(s, "proxy: %s", uv_strerror(rc));
    p->proxy_closed = 1;
    return;
  }
  xmppuv_client_options_t o;
  client_options(s, p, &o);
  rc = xmppuv_client_new(&s->loop, &o, &callbacks, p, &p->c);
  if (rc == 0) rc = xmppuv_client_handler_add(p->c, "message", NULL, NULL, on_message, p, NULL);
  if (rc == 0) rc = xmppuv_client_start(p->c);
  if (rc != 0) fatal(s, "%s: client: %s", p->user, xmppuv_err_name(rc));
}

static int direction_alloc(direction_t *d, char prefix, peer_t *from, peer_t *to) {
  d->prefix = prefix;
  d->from = from;
  d->to = to;
  /* Room for the whole run, touched now so the RSS baseline includes it. */
  d->cap = (size_t)opt.duration_s * opt.rate + 1000;
  size_t bytes = d->cap * sizeof *d->msgs;
  d->msgs = calloc(d->cap, sizeof *d->msgs);
  if (d->msgs == NULL) return -1;
  /* calloc's fresh pages are not resident until written (a memset of 0
   * may be elided): write every page, or the table's own growth would
   * show as RSS growth during the run. */
  volatile unsigned char *page = (volatile unsigned char *)d->msgs;
  for (size_t i = 0; i < bytes; i += 4096) page[i] = 0;
  return 0;
}

/* ---- the verdict --------------------------------------------------------------------------------- */

typedef struct tally {
  size_t sent, delivered, failed, bounced, failed_delivered, bounced_delivered;
  size_t duplicates, lost, unsettled, multi_outcome, unexplained, multi_delay, delayed;
  size_t acked, event_mismatch, server_lost, redelivered;
} tally_t;

static void tally_direction(const soak_t *s, const direction_t *d, tally_t *t) {
  (void)s;
  unsigned shown = 0;
  memset(t, 0, sizeof *t);
  t->sent = d->nsent;
  for (size_t i = 0; i < d->nsent; i++) {
    const msg_t *m = &d->msgs[i];
    /* A restart between the send and the outcome (or after an ack, for the
     * peer's side) explains a lost session's uncertainty. */
    int restart_involved =
        m->epoch_at_send % 2 == 1 ||
        (m->outcome == OUT_FAIL && m->epoch_at_outcome > m->epoch_at_send) ||
        (m->bounced && m->epoch_at_bounce > m->epoch_at_send);
    const char *problem = NULL;
    if (m->outcomes == 0) {
      t->unsettled++;
      problem = "no outcome";
    } else if (m->outcomes > 1) {
      t->multi_outcome++;
      problem = "more than one outcome";
    } else if (m->ack_events != 0 || m->fail_events != 0) {
      t->event_mismatch++;
      problem = "an ack/fail event for a tracked stanza (reported twice)";
    }
    if (m->outcome == OUT_ACK) t->acked++;
    if (m->received > 1 && m->received - 1 > m->redelivered) {
      t->duplicates++;
      problem = "duplicate";
    } else if (m->received >= 1) {
      if (m->received > 1) t->redelivered++;
      if (m->outcome == OUT_FAIL) {
        t->failed_delivered++;
        if (!restart_involved) {
          t->unexplained++;
          problem = "failed but delivered, no restart involved";
        }
      } else if (m->bounced) {
        t->bounced_delivered++;
        if (!restart_involved) {
          t->unexplained++;
          problem = "bounced but delivered, no restart involved";
        }
      } else if (m->outcome == OUT_ACK) {
        t->delivered++;
      }
      if (m->delays > 1) {
        t->multi_delay++;
        problem = "more than one <delay/>";
      }
      t->delayed += m->delays > 0;
    } else if (m->outcome == OUT_FAIL) {
      t->failed++;
    } else if (m->outcome == OUT_ACK && m->bounced) {
      t->bounced++;
      if (!restart_involved) {
        t->unexplained++;
        problem = "bounced, no restart involved";
      }
    } else if (m->outcome == OUT_ACK && m->custody) {
      t->server_lost++;
    } else if (m->outcome == OUT_ACK) {
      t->lost++;
      problem = "lost (acked, never delivered, not bounced)";
    }
    if (problem != NULL && shown++ < 20)
      fprintf(stderr,
              "#   %s %c-%zu: %s (outcomes %u status %s received %u bounced %u restart "
              "epoch at send %u, outcome %u, bounce %u, end %u)\n",
              s->kind, d->prefix, i, problem, m->outcomes,
              m->outcome == OUT_NONE ? "-" : xmppuv_err_name(m->status), m->received,
              m->bounced, m->epoch_at_send, m->epoch_at_outcome, m->epoch_at_bounce, s->epoch);
  }
}

static int tally_ok(const tally_t *t) {
  return t->duplicates == 0 && t->lost == 0 && t->unsettled == 0 && t->multi_outcome == 0 &&
         t->unexplained == 0 && t->multi_delay == 0 && t->event_mismatch == 0;
}

static void print_errors(const peer_t *p) {
  if (p->errors == 0) return;
  fprintf(stderr, "# %s errors:", p->user);
  for (size_t i = 0; i < 8 && p->error_codes[i] != 0; i++)
    fprintf(stderr, " %s %u", xmppuv_err_name(p->error_code_vals[i]), p->error_codes[i]);
  fputc('\n', stderr);
}

/* ---- one server ----------------------------------------------------------------------------------- */

static int run_server(const char *kind) {
  soak_t *s = calloc(1, sizeof *s);
  if (s == NULL) return 1;
  s->kind = kind;
  double t0 = wall_s();

  /* libuv creates a process-wide signal lock pipe the first time a loop is
   * initialized; that one is not ours to count. */
  {
    uv_loop_t first;
    if (uv_loop_init(&first) == 0) uv_loop_close(&first);
  }
  int fds_start = count_fds();
  long long allocs_start = mem.live;

  const char *root = getenv("XMPPUV_SOURCE_ROOT");
  snprintf(s->script, sizeof s->script, "%s/tests/servers/%s.sh", root, kind);
  /* The resumption window outlasts every partition and refusal, and the
   * queue holds what can pile up for a peer meanwhile (see the top): what
   * arrives in a window, and the offline messages a new session gets after
   * a restart; with room to spare (each is at most rate x window). */
  char queue[32];
  unsigned long queue_max = 4ul * opt.rate * RESUME_S;
  snprintf(queue, sizeof queue, "%lu", queue_max < 10000 ? 10000ul : queue_max);
  /* Restarts inherit it. One set already wins (=500: Prosody's default). */
  setenv("XMPPUV_SERVER_SM_QUEUE", queue, 0);
  int rc = xmppuv_test_server_start(kind, RESUME_S, &s->srv);
  if (rc != 0) {
    fprintf(stderr, "soak %s: the server did not start: %s FAIL\n", kind, uv_strerror(rc));
    free(s);
    return 1;
  }
  fprintf(stderr, "# %s: server up in %ld ms on port %u (%s)\n", kind, s->srv.ready_ms,
          s->srv.port, s->srv.dir);

  uv_loop_init(&s->loop);
  uv_timer_init(&s->loop, &s->send_timer);
  uv_timer_init(&s->loop, &s->restart_timer);
  uv_timer_init(&s->loop, &s->watchdog);
  uv_timer_init(&s->loop, &s->progress_timer);
  s->send_timer.data = s->restart_timer.data = s->watchdog.data = s->progress_timer.data = s;
  peer_init(s, &s->alice, "alice", &s->a2b, &s->b2a);
  peer_init(s, &s->bob, "bob", &s->b2a, &s->a2b);
  if (direction_alloc(&s->a2b, 'a', &s->alice, &s->bob) != 0 ||
      direction_alloc(&s->b2a, 'b', &s->bob, &s->alice) != 0)
    fatal(s, "out of memory for %u messages", opt.duration_s * opt.rate);

  if (s->failure[0] == '\0') peer_start(s, &s->alice);
  if (s->failure[0] == '\0') peer_start(s, &s->bob);
  if (s->failure[0] == '\0' && !run_until(s, both_ready, 60000))
    fatal(s, "the clients did not come online");

  /* Traffic and faults. */
  long rss_warm = -1, rss_settled = -1, rss_end = -1;
  long heap_warm = -1, heap_settled = -1, heap_end = -1;
  long long live_warm = 0, live_settled = 0;
  if (s->failure[0] == '\0') {
    s->traffic_start_ms = uv_now(&s->loop);
    s->sending = 1;
    s->faults_on = 1;
    uv_timer_start(&s->send_timer, on_send_timer, 10, 10);
    uv_timer_start(&s->progress_timer, on_progress, opt.short_run ? 15000 : 60000,
                   opt.short_run ? 15000 : 60000);
    arm_reset(&s->alice);
    arm_reset(&s->bob);
    arm_chaos(&s->alice);
    arm_chaos(&s->bob);
    arm_restart(s);
    run_until(s, never, opt.warmup_s * 1000u);
    rss_warm = rss_bytes();
    heap_warm = heap_in_use();
    live_warm = mem.live_bytes;
    fprintf(stderr,
            "# %s: after %u s of warm-up: RSS %.2f MiB, heap in use %.2f MiB, xmppuv live "
            "%.2f MiB\n",
            kind, opt.warmup_s, (double)rss_warm / MIB, (double)heap_warm / MIB,
            (double)live_warm / MIB);
    run_until(s, never, (opt.duration_s - opt.warmup_s) * 1000u);
  }

  /* The end: faults off, every outcome, both sides settled and fenced. */
  s->faults_on = 0;
  s->sending = 0;
  uv_timer_stop(&s->send_timer);
  uv_timer_stop(&s->restart_timer);
  uv_timer_stop(&s->progress_timer);
  peer_t *peers[2] = {&s->alice, &s->bob};
  for (int i = 0; i < 2; i++) {
    uv_timer_stop(&peers[i]->reset_timer);
    uv_timer_stop(&peers[i]->chaos_timer);
    uv_timer_stop(&peers[i]->heal_timer);
    if (peers[i]->proxy != NULL) heal(peers[i]);
  }
  double settle_t0 = wall_s();
  if (!run_until(s, restart_idle, 120000)) fatal(s, "a server restart did not finish");
  if (s->failure[0] == '\0' && !run_until(s, all_outcomes, 300000))
    fatal(s, "outcomes still missing after 300 s: a->b %zu, b->a %zu",
          pending_outcomes(&s->a2b), pending_outcomes(&s->b2a));
  if (s->failure[0] == '\0' && !run_until(s, both_ready, 120000))
    fatal(s, "the clients did not settle online with empty queues");
  if (s->failure[0] == '\0') {
    fence(&s->alice);
    fence(&s->bob);
    if (!run_until(s, fences_done, 120000)) fatal(s, "the fences did not come back");
    else if (s->alice.fence_status != 0 || s->bob.fence_status != 0)
      fatal(s, "fence: %s / %s", xmppuv_err_name(s->alice.fence_status),
            xmppuv_err_name(s->bob.fence_status));
  }
  /* Anything late (a duplicate on its way) has a moment to show up. */
  run_until(s, never, 2000);
  double settle_s = wall_s() - settle_t0;
  rss_settled = rss_bytes();
  heap_settled = heap_in_use();
  live_settled = mem.live_bytes;

  /* Graceful stop: the last acks arrive (sm_drain_timeout_ms). */
  s->stopping_clients = 1;
  for (int i = 0; i < 2; i++) uv_timer_stop(&peers[i]->app_restart_timer);
  for (int i = 0; i < 2; i++)
    if (peers[i]->c != NULL) xmppuv_client_stop(peers[i]->c);
  if (s->alice.c != NULL && s->bob.c != NULL && !run_until(s, peers_stopped, 60000))
    fatal(s, "the clients did not stop");

  /* Statistics before the proxies go. */
  xmppuv_test_proxy_stats_t ps[2];
  memset(ps, 0, sizeof ps);
  for (int i = 0; i < 2; i++)
    if (peers[i]->proxy != NULL) xmppuv_test_proxy_stats(peers[i]->proxy, &ps[i]);

  for (int i = 0; i < 2; i++) {
    if (peers[i]->c != NULL) xmppuv_client_close(peers[i]->c, on_client_closed);
    else peers[i]->closed = 1;
    peers[i]->c = NULL;
    if (peers[i]->proxy != NULL) xmppuv_test_proxy_close(peers[i]->proxy, on_proxy_closed, peers[i]);
    peers[i]->proxy = NULL;
    close_handle((uv_handle_t *)&peers[i]->reset_timer);
    close_handle((uv_handle_t *)&peers[i]->chaos_timer);
    close_handle((uv_handle_t *)&peers[i]->heal_timer);
    close_handle((uv_handle_t *)&peers[i]->app_restart_timer);
  }
  close_handle((uv_handle_t *)&s->send_timer);
  close_handle((uv_handle_t *)&s->restart_timer);
  close_handle((uv_handle_t *)&s->watchdog);
  close_handle((uv_handle_t *)&s->progress_timer);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  int closed_ok = s->alice.closed && s->bob.closed;
  int loop_rc = uv_loop_close(&s->loop);
  if (loop_rc != 0) {
    fprintf(stderr, "# %s: uv_loop_close: %s\n", kind, uv_strerror(loop_rc));
    uv_walk(&s->loop, walk_cb, NULL);
  }
  xmppuv_test_server_stop(&s->srv);

  /* The verdict. */
  tally_t ta, tb;
  tally_direction(s, &s->a2b, &ta);
  tally_direction(s, &s->b2a, &tb);
  free(s->a2b.msgs);
  free(s->b2a.msgs);
  s->a2b.msgs = s->b2a.msgs = NULL;
  int fds_end = count_fds();
  long long allocs_end = mem.live;
  rss_end = rss_bytes();
  heap_end = heap_in_use();

  /* Memory flat: the warm-up is the baseline. RSS after the traffic
   * (clients still connected) and at the end (clients closed) within 1 MiB
   * of it; the heap in use (every library's malloc) too. */
  long margin = 1024 * 1024;
  int rss_ok = rss_warm > 0 && rss_settled <= rss_warm + margin && rss_end <= rss_warm + margin;
  int heap_ok = heap_warm < 0 || (heap_settled <= heap_warm + margin && heap_end <= heap_warm + margin);
  int fds_ok = fds_end == fds_start;
  int allocs_ok = allocs_end == allocs_start;
  int events_ok = s->a2b.extra_events == 0 && s->b2a.extra_events == 0;
  int fatal_ok = s->alice.fatal_errors == 0 && s->bob.fatal_errors == 0;
  int ok = s->failure[0] == '\0' && tally_ok(&ta) && tally_ok(&tb) && rss_ok && heap_ok && fds_ok &&
           allocs_ok && loop_rc == 0 && closed_ok && events_ok && fatal_ok;
  if (!fds_ok) list_fds();

  print_errors(&s->alice);
  print_errors(&s->bob);
  for (int d = 0; d < 2; d++) {
    const tally_t *t = d == 0 ? &ta : &tb;
    const direction_t *dir = d == 0 ? &s->a2b : &s->b2a;
    fprintf(stderr,
            "# %s %s: sent %zu, acked %zu, delivered %zu, failed %zu, bounced %zu, "
            "failed-but-delivered %zu, bounced-but-delivered %zu, redelivered by the server "
            "after a restart %zu, duplicates %zu, lost %zu, "
            "lost by the server in a restart %zu, unsettled %zu, with a delay %zu, "
            "back-pressure %lu, stray %lu\n",
            kind, d == 0 ? "alice->bob" : "bob->alice", t->sent, t->acked, t->delivered,
            t->failed, t->bounced, t->failed_delivered, t->bounced_delivered, t->redelivered,
            t->duplicates, t->lost, t->server_lost, t->unsettled, t->delayed, dir->enobufs, dir->stray);
  }
  fprintf(stderr,
          "# %s: proxy connections alice %lu (reset %lu) bob %lu (reset %lu); restarts took "
          "%.1f s on average; settling took %.1f s; xmppuv live at warm-up %.2f MiB, settled "
          "%.2f MiB, peak %.2f MiB\n",
          kind, ps[0].accepted, ps[0].resets, ps[1].accepted, ps[1].resets,
          s->restarts_done ? s->restart_total_s / s->restarts_done : 0.0, settle_s,
          (double)live_warm / MIB, (double)live_settled / MIB, (double)mem.peak_bytes / MIB);

  unsigned long resets = s->alice.resets + s->bob.resets;
  unsigned long partitions = s->alice.partitions + s->bob.partitions;
  unsigned long long_parts = s->alice.long_partitions + s->bob.long_partitions;
  unsigned long refusals = s->alice.refusals + s->bob.refusals;
  printf("soak %s: seed %" PRIu64 ", %u s, %u msg/s each way%s; "
         "sent %zu (a->b %zu, b->a %zu), delivered %zu, failed %zu, bounced %zu, "
         "failed-but-delivered %zu, redelivered after a restart %zu, duplicates %zu, "
         "lost %zu (and %zu by the server in a restart), unsettled %zu; "
         "faults %lu (resets %lu, partitions %lu of which %lu > ack timeout, refusals %lu, "
         "server restarts %u); resumes %u, new sessions %u; fatal errors %u; "
         "Prosody's not-well-formed after resumption %u (retried); "
         "resumptions refused for the server's queue limit %u; "
         "RSS warm-up %.1f MiB, settled %.1f MiB, end %.1f MiB; heap in use warm-up %.1f "
         "MiB, settled %.1f MiB, end %.1f MiB; fds %d/%d; "
         "xmppuv allocations %lld/%lld; loop %s; %.0f s: %s\n",
         kind, opt.seed, opt.duration_s, opt.rate, opt.resend ? ", resend policy" : "",
         ta.sent + tb.sent, ta.sent, tb.sent, ta.delivered + tb.delivered,
         ta.failed + tb.failed, ta.bounced + tb.bounced,
         ta.failed_delivered + tb.failed_delivered, ta.redelivered + tb.redelivered,
         ta.duplicates + tb.duplicates,
         ta.lost + tb.lost, ta.server_lost + tb.server_lost, ta.unsettled + tb.unsettled,
         resets + partitions + refusals + s->restarts_done, resets, partitions, long_parts,
         refusals, s->restarts_done, s->alice.resumed + s->bob.resumed,
         s->alice.online + s->bob.online, s->alice.fatal_errors + s->bob.fatal_errors,
         s->alice.parser_faults + s->bob.parser_faults,
         s->alice.queue_refusals + s->bob.queue_refusals, (double)rss_warm / MIB,
         (double)rss_settled / MIB, (double)rss_end / MIB, (double)heap_warm / MIB,
         (double)heap_settled / MIB,
         (double)heap_end / MIB, fds_start, fds_end, allocs_start, allocs_end,
         loop_rc == 0 ? "closed" : "NOT closed", wall_s() - t0, ok ? "PASS" : "FAIL");
  if (!ok) {
    fprintf(stderr, "# %s FAIL:%s%s%s%s%s%s%s%s%s %s\n", kind,
            tally_ok(&ta) && tally_ok(&tb) ? "" : " messages",
            rss_ok ? "" : " rss", heap_ok ? "" : " heap", fds_ok ? "" : " fds",
            allocs_ok ? "" : " allocations",
            loop_rc == 0 ? "" : " loop", closed_ok ? "" : " close_cb",
            events_ok ? "" : " ack/fail events", s->failure[0] ? " harness:" : "", s->failure);
    if (!fatal_ok)
      fprintf(stderr, "# %s FAIL: fatal errors: alice %u (last %s), bob %u (last %s)\n",
              kind, s->alice.fatal_errors, s->alice.last_fatal, s->bob.fatal_errors,
              s->bob.last_fatal);
  }
  fflush(stdout);
  free(s);
  return ok ? 0 : 1;
}

static const char *const kinds[] = {"prosody", "ejabberd"};
static int soak_failures;

START_TEST(soak_server) {
  if (strcmp(opt.server, "both") != 0 && strcmp(opt.server, kinds[_i]) != 0) return;
  rng_state = opt.seed + (uint64_t)_i;
  soak_failures += run_server(kinds[_i]);
}
END_TEST

/* ---- main ---------------------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: soak [--short] [--server prosody|ejabberd|both] [--seed N]\n"
          "            [--duration S] [--rate N] [--restart-every S] [--resend]\n"
          "            [--log error|warn|info|debug|trace] [--verbose]\n");
  exit(2);
}

static unsigned parse_unsigned(const char *s) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s || v > 1000000000ul) usage();
  return (unsigned)v;
}

int main(int argc, char **argv) {
  unsigned duration = 0, rate = 0, restart_every = 0;
  opt.server = "both";
  opt.log_level = XMPPUV_LOG_NONE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--short") == 0) {
      opt.short_run = 1;
    } else if (strcmp(a, "--resend") == 0) {
      opt.resend = 1;
    } else if (strcmp(a, "--verbose") == 0) {
      opt.verbose = 1;
    } else if (v != NULL && strcmp(a, "--server") == 0) {
      opt.server = v;
      i++;
    } else if (v != NULL && strcmp(a, "--seed") == 0) {
      char *end;
      opt.seed = strtoull(v, &end, 0);
      if (*end != '\0') usage();
      opt.seed_given = 1;
      i++;
    } else if (v != NULL && strcmp(a, "--duration") == 0) {
      duration = parse_unsigned(v);
      i++;
    } else if (v != NULL && strcmp(a, "--rate") == 0) {
      rate = parse_unsigned(v);
      i++;
    } else if (v != NULL && strcmp(a, "--restart-every") == 0) {
      restart_every = parse_unsigned(v);
      i++;
    } else if (v != NULL && strcmp(a, "--log") == 0) {
      static const char *const names[] = {"none", "error", "warn", "info", "debug", "trace"};
      opt.log_level = (xmppuv_log_level_t)-1;
      for (int l = 0; l < 6; l++)
        if (strcmp(v, names[l]) == 0) opt.log_level = (xmppuv_log_level_t)l;
      if ((int)opt.log_level < 0) usage();
      i++;
    } else {
      usage();
    }
  }
  if (strcmp(opt.server, "prosody") != 0 && strcmp(opt.server, "ejabberd") != 0 &&
      strcmp(opt.server, "both") != 0)
    usage();
  /* Short (CI): about a minute of traffic per server with every kind of
   * fault and one restart. Long: tens of thousands of messages each way. */
  opt.duration_s = duration ? duration : opt.short_run ? 50 : 1000;
  opt.rate = rate ? rate : opt.short_run ? 40 : 30;
  opt.warmup_s = opt.duration_s / 10 < 5 ? 5 : opt.duration_s / 10;
  if (opt.warmup_s >= opt.duration_s) usage();
  if (restart_every) {
    opt.restart_min_s = restart_every / 2 ? restart_every / 2 : 1;
    opt.restart_max_s = restart_every + restart_every / 2;
  } else if (opt.short_run) {
    opt.restart_min_s = 15;
    opt.restart_max_s = 25;
  } else {
    opt.restart_min_s = 60;
    opt.restart_max_s = 180;
  }
  if (!opt.seed_given) opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

  if (getenv("XMPPUV_SOURCE_ROOT") == NULL) setenv("XMPPUV_SOURCE_ROOT", XMPPUV_SOAK_SOURCE_ROOT, 1);
  /* A write to a connection the peer reset raises SIGPIPE; libuv leaves
   * that to the application. */
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stderr, NULL, _IOLBF, 0);
  if (xmppuv_replace_allocator(count_malloc, count_realloc, count_free) != 0) {
    fprintf(stderr, "soak: cannot replace the allocator\n");
    return 1;
  }
  fprintf(stderr, "# soak: seed %" PRIu64 " (--seed %" PRIu64 " repeats the fault schedule), "
          "%u s of traffic at %u msg/s each way per server, restarts every %u-%u s, "
          "policy %s\n",
          opt.seed, opt.seed, opt.duration_s, opt.rate, opt.restart_min_s, opt.restart_max_s,
          opt.resend ? "resend on failed" : "fail (default)");

  /* servers.c reports through Check (ck_assert even on success), so each
   * server runs as a test case, in this process (no fork, no timeout: the
   * soak has its own deadlines). */
  Suite *suite = suite_create("soak");
  TCase *tc = tcase_create("soak");
  tcase_add_loop_test(tc, soak_server, 0, 2);
  suite_add_tcase(suite, tc);
  SRunner *sr = srunner_create(suite);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_SILENT);
  int failures = srunner_ntests_failed(sr) + soak_failures;
  TestResult **results = srunner_failures(sr);
  for (int i = 0; i < srunner_ntests_failed(sr); i++)
    fprintf(stderr, "# soak: %s:%d: %s\n", tr_lfile(results[i]), tr_lno(results[i]),
            tr_msg(results[i]));
  free(results);
  srunner_free(sr);
  return failures ? 1 : 0;
}
