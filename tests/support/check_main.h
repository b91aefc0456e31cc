/* Shared main() for the Check suites: TAP on stdout (meson counts every test
 * case), one fork per test unless CK_FORK=no (valgrind runs). */
#ifndef XMPPUV_TEST_CHECK_MAIN_H
#define XMPPUV_TEST_CHECK_MAIN_H

#include <check.h>

/* Runs the suite; returns the process exit code (0 = all passed). */
int xmppuv_test_run(Suite *suite);

/* Defines main() for a file whose suite is built by make_suite(). */
#define XMPPUV_TEST_MAIN(make_suite) \
  int main(void) { return xmppuv_test_run(make_suite()); }

#endif
