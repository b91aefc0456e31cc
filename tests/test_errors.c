/* Error codes: the X-macro table, names and texts, libuv pass-through. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "xmppuv.h"

START_TEST(every_code_has_a_name_and_a_text) {
#define CHECK_CODE(name, value, text)                                   \
  ck_assert_str_eq(xmppuv_err_name(XMPPUV_##name), #name);              \
  ck_assert_str_eq(xmppuv_strerror(XMPPUV_##name), text);               \
  ck_assert_int_lt(XMPPUV_##name, 0);
  XMPPUV_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
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
}
END_TEST

START_TEST(codes_do_not_collide_with_libuv) {
  /* Ours live in their own range, below every errno-based libuv code. */
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

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("errors");
  tcase_add_test(tc, every_code_has_a_name_and_a_text);
  tcase_add_test(tc, libuv_codes_pass_through);
  tcase_add_test(tc, unknown_codes_are_named_unknown);
  tcase_add_test(tc, codes_do_not_collide_with_libuv);
  tcase_add_test(tc, version_matches_the_header);
  tcase_add_test(tc, allocator_replacement_refuses_partial_sets);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(errors_suite)
