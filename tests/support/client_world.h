/* One client on a real loop against up to two scripted servers
 * (script_server.h) on loopback, and what its app observed (client_rec.h):
 * the world of the client-level suites that run the whole client, driver
 * included (test_client_scripted.c, test_hostile.c). Real sockets and
 * real timers: their suites are not unit tests (tests/meson.build).
 *
 *   world_t r;
 *   world_init(&r);
 *   world_server(&r, 0, scripts, n);
 *   xmppuv_client_options_t o;
 *   world_opts(&o, world_port(&r, 0));
 *   world_start(&r, &o);
 *   RUN_UNTIL(&r, r.app.onlines >= 1, 10000);
 *   ...
 *   world_finish(&r);
 *
 * XMPPUV_TEST_LOG=1 in the environment prints the client's log (trace) on
 * stderr. Failures are Check assertions. Not thread-safe. */
#ifndef XMPPUV_TEST_CLIENT_WORLD_H
#define XMPPUV_TEST_CLIENT_WORLD_H

#include <stddef.h>
#include <uv.h>

#include "client_rec.h"
#include "run_until.h"
#include "script_server.h"
#include "xmppuv.h"

typedef struct world {
  uv_loop_t loop;                      /* the test's own loop */
  run_guard_t guard;                   /* RUN_UNTIL's deadline */
  xmppuv_client_t *c;                  /* the client, once made */
  xmppuv_test_script_server_t *srv[2]; /* servers 0 and 1, once started */
  client_rec_t app;                    /* the client's user_data: what the app saw */
} world_t;

/* The loop, the guard, and the recorder on the loop's clock. */
void world_init(world_t *w);
/* Start server i (0 or 1) with these scripts (script_server.h). */
void world_server(world_t *w, int i, const xmppuv_test_step_t *const *scripts, size_t n);
unsigned short world_port(const world_t *w, int i);
/* Connections server i accepted (0 if it was never started). */
size_t world_connections(const world_t *w, int i);
/* Everything the client sent on connection conn of server i (asserted to
 * exist). */
const char *world_received(const world_t *w, int i, size_t conn);
/* Connection conn of server i has run its whole script. */
int world_script_done(const world_t *w, int i, size_t conn);

/* alice@localhost, password "alice-secret", at 127.0.0.1:port in plaintext
 * (XMPPUV_TLS_DISABLED_INSECURE), reconnecting after 50 ms (at most 200),
 * close timeout 1 s; logging as XMPPUV_TEST_LOG says. */
void world_opts(xmppuv_client_options_t *o, unsigned short port);
/* The log callback world_opts() sets with XMPPUV_TEST_LOG: one line on
 * stderr. */
void world_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg);

/* The client, with the recorder's callbacks; world_start() also starts it. */
void world_client_new(world_t *w, const xmppuv_client_options_t *o);
void world_start(world_t *w, const xmppuv_client_options_t *o);

/* Close the client (unless the test did, through the recorder), the
 * servers and the guard; run the loop dry; close_cb must have run and the
 * loop must close. The caller's own handles must be closing by now. */
void world_finish(world_t *w);

/* How many times needle occurs in text. */
int world_count(const char *text, const char *needle);

#endif
