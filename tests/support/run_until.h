/* Running a test's uv loop until something holds, with a deadline, for
 * tests on real sockets and timers. The deadline is a guard timer on the
 * loop; it only bounds a failure (the caller's assertion then fails with
 * a message), so deadlines are generous: a loaded machine is slow.
 *
 * RUN_UNTIL(w, cond, ms) and RUN_FOR(w, ms) take any w with a uv_loop_t
 * `loop` and a run_guard_t `guard` initialized on it (client_world.h's
 * world_t, test_client.c's env_t). Not thread-safe. */
#ifndef XMPPUV_TEST_RUN_UNTIL_H
#define XMPPUV_TEST_RUN_UNTIL_H

#include <stdint.h>
#include <uv.h>

typedef struct run_guard {
  uv_timer_t timer;
  int fired; /* the deadline passed */
} run_guard_t;

/* The guard's timer on loop (asserted). */
void run_guard_init(run_guard_t *g, uv_loop_t *loop);
/* uv_close its timer (run the loop afterwards). */
void run_guard_close(run_guard_t *g);
/* Arm the deadline ms from now. */
void run_guard_start(run_guard_t *g, uint64_t ms);

/* uv_now() of the loop: the clock of a recorder (client_rec.h) on a real
 * loop. */
uint64_t run_clock(void *loop);

/* Run the loop until cond holds or ms pass. */
#define RUN_UNTIL(w, cond, ms)                                            \
  do {                                                                    \
    run_guard_start(&(w)->guard, (ms));                                   \
    while (!(cond) && !(w)->guard.fired) uv_run(&(w)->loop, UV_RUN_ONCE); \
    uv_timer_stop(&(w)->guard.timer);                                     \
  } while (0)

/* Let ms pass with the loop running: only to check that something does
 * NOT happen meanwhile (no reconnection after giving up). */
#define RUN_FOR(w, ms) RUN_UNTIL(w, 0, ms)

#endif
