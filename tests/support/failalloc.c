#include "failalloc.h"

#include <check.h>
#include <stdlib.h>

#include "xmppuv.h"

static long count, fail_at, live;
static int failed;

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
  if (p != NULL) live++;
  return p;
}

static void *fa_realloc(void *ptr, size_t size) {
  if (should_fail()) return NULL;
  void *p = realloc(ptr, size);
  if (p != NULL && ptr == NULL) live++;
  return p;
}

static void fa_free(void *ptr) {
  if (ptr != NULL) live--;
  free(ptr);
}

void failalloc_install(void) {
  count = fail_at = live = 0;
  failed = 0;
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
