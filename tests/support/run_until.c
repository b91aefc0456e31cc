#include "run_until.h"

#include <check.h>

static void on_guard(uv_timer_t *t) {
  run_guard_t *g = t->data;
  g->fired = 1;
}

void run_guard_init(run_guard_t *g, uv_loop_t *loop) {
  g->fired = 0;
  ck_assert_int_eq(uv_timer_init(loop, &g->timer), 0);
  g->timer.data = g;
}

void run_guard_close(run_guard_t *g) { uv_close((uv_handle_t *)&g->timer, NULL); }

void run_guard_start(run_guard_t *g, uint64_t ms) {
  g->fired = 0;
  uv_timer_start(&g->timer, on_guard, ms, 0);
}

uint64_t run_clock(void *loop) { return uv_now(loop); }
