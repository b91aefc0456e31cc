#include "check_main.h"

#include <signal.h>
#include <stdlib.h>

int xmppuv_test_run(Suite *suite) {
  /* As the README asks of every app: a write to a connection the peer
   * closed is an error code, not SIGPIPE (libuv writes with writev and
   * leaves the signal to the process; the library touches no signal). */
  signal(SIGPIPE, SIG_IGN);
  SRunner *runner = srunner_create(suite);
  /* TAP to stdout for meson; the failure messages are in the TAP lines. */
  srunner_set_tap(runner, "-");
  srunner_run_all(runner, CK_SILENT);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
