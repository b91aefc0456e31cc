#include "failalloc.h"

#include <check.h>
#include <malloc.h>
#include <stdlib.h>

#include "xmppuv.h"

static long count, fail_at, live;
static int failed;
static size_t live_bytes, peak_bytes, base_bytes;

static void add_bytes(void *p) {
  live_bytes += malloc_usable_size(p);
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
}

static int should_fail(void) {
  count++;
  if (fail_at != 0 && count == fail_at) {
    failed = 1;
    return 1;
  }
  return 0;
}

static void *fa_malloc(size_t size) {
  if (should_fail()) return NULL;
  void *p = malloc(size);
  if (p != NULL) {
    live++;
    add_bytes(p);
  }
  return p;
}

static void *fa_realloc(void *ptr, size_t size) {
  if (should_fail()) return NULL;
  size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
  void *p = realloc(ptr, size);
  if (p == NULL) return NULL;
  if (ptr == NULL) live++;
  live_bytes -= old;
  add_bytes(p);
  return p;
}

static void fa_free(void *ptr) {
  if (ptr == NULL) return;
  live--;
  live_bytes -= malloc_usable_size(ptr);
  free(ptr);
}

void failalloc_install(void) {
  count = fail_at = live = 0;
  failed = 0;
  live_bytes = peak_bytes = base_bytes = 0;
  ck_assert_int_eq(xmppuv_replace_allocator(fa_malloc, fa_realloc, fa_free), 0);
}

void failalloc_uninstall(void) {
  ck_assert_int_eq(xmppuv_replace_allocator(NULL, NULL, NULL), 0);
}

void failalloc_fail_at(long n) {
  count = 0;
  fail_at = n;
  failed = 0;
}

long failalloc_count(void) { return count; }
int failalloc_failed(void) { return failed; }
long failalloc_live(void) { return live; }

size_t failalloc_live_bytes(void) { return live_bytes; }

void failalloc_peak_reset(void) { base_bytes = peak_bytes = live_bytes; }

size_t failalloc_peak_base(void) { return base_bytes; }

size_t failalloc_peak_growth(void) { return peak_bytes - base_bytes; }

long failalloc_sweep(int (*scenario)(void *user_data), void *user_data) {
  failalloc_install();
  long n;
  for (n = 1;; n++) {
    failalloc_fail_at(n);
    long before = live;
    int rc = scenario(user_data);
    ck_assert_msg(rc == 0 || rc == XMPPUV_ENOMEM,
                  "allocation %ld failing gave %s, not ENOMEM", n,
                  xmppuv_err_name(rc));
    ck_assert_msg(live == before, "allocation %ld failing leaked %ld blocks", n,
                  live - before);
    if (!failed) {
      ck_assert_msg(rc == 0, "scenario failed with no allocation failing: %s",
                    xmppuv_err_name(rc));
      break;
    }
  }
  failalloc_uninstall();
  return n - 1;
}
