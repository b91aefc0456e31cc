/* Error codes: the X-macro table, names and texts, libuv pass-through; and
 * the log level check that comes before any formatting. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "util/log.h"
#include "xml/serialize.h"
#include "xmppuv.h"

START_TEST(every_code_has_a_name_and_a_text) {
#define CHECK_CODE(name, value, text)                                   \
  ck_assert_str_eq(xmppuv_err_name(XMPPUV_##name), #name);              \
  ck_assert_str_eq(xmppuv_strerror(XMPPUV_##name), text);               \
  ck_assert_int_lt(XMPPUV_##name, 0);
  XMPPUV_SYS_ERRNO_MAP(CHECK_CODE)
  XMPPUV_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
}
END_TEST

/* One code per meaning: where libuv has the meaning, its code is ours, so
 * an app that tests `rc == UV_ECANCELED` is right, and a log line of
 * "ETIMEDOUT" means one number. */
START_TEST(codes_with_libuvs_meaning_are_libuvs) {
  ck_assert_int_eq(XMPPUV_ENOMEM, UV_ENOMEM);
  ck_assert_int_eq(XMPPUV_EINVAL, UV_EINVAL);
  ck_assert_int_eq(XMPPUV_ECANCELED, UV_ECANCELED);
  ck_assert_int_eq(XMPPUV_ETIMEDOUT, UV_ETIMEDOUT);
  ck_assert_int_eq(XMPPUV_ENOBUFS, UV_ENOBUFS);
  ck_assert_int_eq(XMPPUV_EPROTO, UV_EPROTO);
  /* No two codes share a name. */
  static const int all[] = {
#define CODE(name, value, text) XMPPUV_##name,
      XMPPUV_SYS_ERRNO_MAP(CODE) XMPPUV_ERRNO_MAP(CODE)
#undef CODE
  };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    for (size_t j = i + 1; j < sizeof all / sizeof all[0]; j++) {
      ck_assert_int_ne(all[i], all[j]);
      ck_assert_str_ne(xmppuv_err_name(all[i]), xmppuv_err_name(all[j]));
    }
}
END_TEST

START_TEST(libuv_codes_pass_through) {
  ck_assert_str_eq(xmppuv_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  ck_assert_str_eq(xmppuv_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
  ck_assert_str_eq(xmppuv_err_name(UV_ETIMEDOUT), "ETIMEDOUT");
}
END_TEST

START_TEST(unknown_codes_are_named_unknown) {
  ck_assert_str_eq(xmppuv_err_name(-30999), "UNKNOWN");
  ck_assert_str_eq(xmppuv_strerror(-30999), "unknown error");
  ck_assert_str_eq(xmppuv_err_name(12345), "UNKNOWN");
  ck_assert_str_eq(xmppuv_err_name(0), "OK");
  ck_assert_str_eq(xmppuv_strerror(0), "success");
  /* Negative codes that neither we nor libuv know. */
  ck_assert_str_eq(xmppuv_err_name(-9999), "UNKNOWN");
  ck_assert_str_eq(xmppuv_strerror(-9999), "unknown error");
  ck_assert_str_eq(xmppuv_err_name(INT_MIN), "UNKNOWN");
  ck_assert_str_eq(xmppuv_strerror(INT_MIN), "unknown error");
}
END_TEST

static size_t uv_allocations;
static void *counting_malloc(size_t size) {
  uv_allocations++;
  return malloc(size);
}
static void *counting_realloc(void *ptr, size_t size) {
  uv_allocations++;
  return realloc(ptr, size);
}
static void *counting_calloc(size_t count, size_t size) {
  uv_allocations++;
  return calloc(count, size);
}

START_TEST(naming_a_code_allocates_nothing_in_libuv) {
  /* libuv's uv_strerror()/uv_err_name() malloc a string (never freed) for a
   * code they do not know; ours must not reach that path. */
  ck_assert_int_eq(uv_replace_allocator(counting_malloc, counting_realloc,
                                        counting_calloc, free), 0);
  static const int codes[] = {-9999, INT_MIN, -1, UV_ECONNREFUSED, UV_EAI_NONAME};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    ck_assert_ptr_nonnull(xmppuv_strerror(codes[i]));
    ck_assert_ptr_nonnull(xmppuv_err_name(codes[i]));
  }
  size_t counted = uv_allocations;
  ck_assert_int_eq(uv_replace_allocator(malloc, realloc, calloc, free), 0);
  ck_assert_uint_eq(counted, 0);
}
END_TEST

START_TEST(codes_do_not_collide_with_libuv) {
  /* Our own live in their own range, below every errno-based libuv code. */
#define CHECK_RANGE(name, value, text) \
  ck_assert_int_lt(XMPPUV_##name, -30000); ck_assert_int_gt(XMPPUV_##name, -31000);
  XMPPUV_ERRNO_MAP(CHECK_RANGE)
#undef CHECK_RANGE
}
END_TEST

START_TEST(version_matches_the_header) {
  ck_assert_uint_eq(xmppuv_version(), XMPPUV_VERSION_HEX);
  ck_assert_str_eq(xmppuv_version_string(), XMPPUV_VERSION_STRING);
}
END_TEST

START_TEST(allocator_replacement_refuses_partial_sets) {
  ck_assert_int_eq(xmppuv_replace_allocator(malloc, NULL, free), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_replace_allocator(NULL, NULL, NULL), 0);
}
END_TEST

/* ---- logging ------------------------------------------------------------- */

static int delivered[XMPPUV_LOG_TRACE + 1];
static void count_log(void *user_data, xmppuv_log_level_t level,
                      const char *area, const char *message) {
  ck_assert_ptr_eq(user_data, delivered);
  ck_assert_str_eq(area, "test");
  ck_assert_str_eq(message, "argument 1");
  delivered[level]++;
}

static int evaluated;
static int argument(void) { return ++evaluated; }

/* One message at each level through xmppuv__logf; each one's argument is
 * evaluated (so formatted) only if the message is delivered. */
static void log_every_level(const xmppuv__log_t *log) {
  for (int lvl = XMPPUV_LOG_ERROR; lvl <= XMPPUV_LOG_TRACE; lvl++) {
    evaluated = 0;
    xmppuv__logf(log, (xmppuv_log_level_t)lvl, "test", "argument %d", argument());
  }
}

START_TEST(messages_below_the_level_are_neither_formatted_nor_delivered) {
  memset(delivered, 0, sizeof delivered); /* CK_FORK=no runs share it */
  xmppuv__log_t log = {count_log, delivered, XMPPUV_LOG_WARN};
  int formatted = 0;
  for (int lvl = XMPPUV_LOG_ERROR; lvl <= XMPPUV_LOG_TRACE; lvl++) {
    evaluated = 0;
    xmppuv__logf(&log, (xmppuv_log_level_t)lvl, "test", "argument %d", argument());
    formatted += evaluated;
  }
  ck_assert_int_eq(formatted, 2);
  ck_assert_int_eq(delivered[XMPPUV_LOG_ERROR], 1);
  ck_assert_int_eq(delivered[XMPPUV_LOG_WARN], 1);
  ck_assert_int_eq(delivered[XMPPUV_LOG_INFO], 0);
  ck_assert_int_eq(delivered[XMPPUV_LOG_DEBUG], 0);
  ck_assert_int_eq(delivered[XMPPUV_LOG_TRACE], 0);

  /* Level NONE, and no callback at all: nothing is formatted. */
  log.level = XMPPUV_LOG_NONE;
  log_every_level(&log);
  ck_assert_int_eq(evaluated, 0);
  log = (xmppuv__log_t){NULL, delivered, XMPPUV_LOG_TRACE};
  log_every_level(&log);
  ck_assert_int_eq(evaluated, 0);
  log_every_level(NULL);
  ck_assert_int_eq(evaluated, 0);
  ck_assert_int_eq(delivered[XMPPUV_LOG_ERROR] + delivered[XMPPUV_LOG_WARN], 2);

  /* TRACE: every level is delivered once. */
  log = (xmppuv__log_t){count_log, delivered, XMPPUV_LOG_TRACE};
  log_every_level(&log);
  for (int lvl = XMPPUV_LOG_ERROR; lvl <= XMPPUV_LOG_TRACE; lvl++)
    ck_assert_int_eq(delivered[lvl], lvl <= XMPPUV_LOG_WARN ? 2 : 1);
}
END_TEST

START_TEST(stanzas_are_serialized_only_at_trace) {
  memset(delivered, 0, sizeof delivered);
  xmppuv_stanza_t *s = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &s), 0);
  xmppuv__log_t log = {count_log, delivered, XMPPUV_LOG_DEBUG};
  xmppuv__log_stanza(&log, "in", s);
  xmppuv__log_stanza(&log, "out", s);
  xmppuv_stanza_unref(s);
  for (int lvl = XMPPUV_LOG_NONE; lvl <= XMPPUV_LOG_TRACE; lvl++)
    ck_assert_int_eq(delivered[lvl], 0);
}
END_TEST

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("errors");
  tcase_add_test(tc, every_code_has_a_name_and_a_text);
  tcase_add_test(tc, codes_with_libuvs_meaning_are_libuvs);
  tcase_add_test(tc, libuv_codes_pass_through);
  tcase_add_test(tc, unknown_codes_are_named_unknown);
  tcase_add_test(tc, codes_do_not_collide_with_libuv);
  tcase_add_test(tc, version_matches_the_header);
  tcase_add_test(tc, naming_a_code_allocates_nothing_in_libuv);
  tcase_add_test(tc, allocator_replacement_refuses_partial_sets);
  tcase_add_test(tc, messages_below_the_level_are_neither_formatted_nor_delivered);
  tcase_add_test(tc, stanzas_are_serialized_only_at_trace);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(errors_suite)
