/* The client engine (lib/engine/engine.h) on a fake clock and a memory
 * transport: client-level tests and the session fuzzer run the real engine
 * with no sockets, no threads and no sleeping. Time moves only when the
 * test moves it, and then jumps from deadline to deadline.
 *
 * Each connection the engine opens is a scripted server connection
 * (script.h): connection k follows scripts[k], or the last script once k is
 * past the end (xmppuv_test_engine_next_script() overrides this for the
 * next connection). Everything happens in the order a loop would see it:
 * the engine's output goes to the script at once; what the script sends,
 * connection results, TLS handshakes and closes are queued and handed to
 * the engine one by one, each after the engine has handled the previous
 * (its events delivered, its inbound elements stepped).
 *
 * Password and SCRAM keys come from the options' password. Keys are derived
 * when asked (counted: xmppuv_test_engine_derivations()), as the driver's
 * thread pool would, but without a thread.
 *
 * Test support code: memory comes from the C library's malloc. Callbacks
 * get a NULL client (there is no xmppuv_client_t); use the engine's
 * functions from them. Not thread-safe. */
#ifndef XMPPUV_TEST_ENGINE_HARNESS_H
#define XMPPUV_TEST_ENGINE_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "script.h"
#include "xmppuv.h"

typedef struct xmppuv_test_engine xmppuv_test_engine_t;

typedef struct xmppuv_test_engine_config {
  const xmppuv_client_options_t *opts; /* its password is what the harness answers */
  const xmppuv_client_callbacks_t *callbacks;
  void *user_data;
  const xmppuv_test_step_t *const *scripts; /* n_scripts >= 1, or NULL for silent servers */
  size_t n_scripts;
  int starttls;  /* connections start in plaintext (STARTTLS); 0: direct TLS */
  uint64_t seed; /* the engine's seed (0 is a fine fixed one) */
  /* Above this many PBKDF2 iterations the harness answers with made-up keys
   * (a fuzzer cannot afford the real ones; the proof then fails, as it
   * would for a wrong password). 0: always derive. */
  unsigned max_derive_iterations;
} xmppuv_test_engine_config_t;

/* The engine is made (options checked: its error is returned) but not
 * started. 0, the engine's error, or XMPPUV_ENOMEM. The clock starts at
 * mono 1,000,000 ms and wall 2023-11-14T22:13:20Z. */
int xmppuv_test_engine_new(const xmppuv_test_engine_config_t *cfg, xmppuv_test_engine_t **out);
void xmppuv_test_engine_free(xmppuv_test_engine_t *h);

xmppuv__engine_t *xmppuv_test_engine_get(const xmppuv_test_engine_t *h);
xmppuv__time_t xmppuv_test_engine_now(const xmppuv_test_engine_t *h);

/* Everything that can happen without time passing (deadlines due now
 * included). */
void xmppuv_test_engine_run(xmppuv_test_engine_t *h);
/* Let ms pass, running every deadline (the engine's and the scripts'
 * delays) on the way, at its time. */
void xmppuv_test_engine_advance(xmppuv_test_engine_t *h, uint64_t ms);
/* Run, letting time pass deadline by deadline, until done(arg) is non-zero
 * (1) or max_ms passed or nothing is left to happen (0). */
int xmppuv_test_engine_run_until(xmppuv_test_engine_t *h, int (*done)(void *arg), void *arg,
                                 uint64_t max_ms);

/* The app's calls, at the harness's time; events follow at the next run. */
int xmppuv_test_engine_start(xmppuv_test_engine_t *h);
int xmppuv_test_engine_stop(xmppuv_test_engine_t *h);
int xmppuv_test_engine_send(xmppuv_test_engine_t *h, xmppuv_stanza_t *stanza,
                            xmppuv_send_done_cb cb, void *user_data);

/* ---- the server side -------------------------------------------------------- */

/* Connections opened so far, and connection i (valid until free). */
size_t xmppuv_test_engine_connections(const xmppuv_test_engine_t *h);
xmppuv_test_script_conn_t *xmppuv_test_engine_conn(const xmppuv_test_engine_t *h, size_t i);
/* The connection the engine uses now, if it is open; else NULL. */
xmppuv_test_script_conn_t *xmppuv_test_engine_current(const xmppuv_test_engine_t *h);
/* The network cuts the current connection: the engine hears a reset. */
void xmppuv_test_engine_cut(xmppuv_test_engine_t *h);
/* The next n connection attempts are refused. */
void xmppuv_test_engine_refuse(xmppuv_test_engine_t *h, unsigned n);
/* The engine's next write fails with status (the transport broke). */
void xmppuv_test_engine_fail_next_write(xmppuv_test_engine_t *h, int status);
/* The next connection follows steps (then back to the scripts). */
void xmppuv_test_engine_next_script(xmppuv_test_engine_t *h, const xmppuv_test_step_t *steps);
/* fn(conn, arg) after each time a connection received bytes (its script
 * advanced first); a negative return resets the connection. NULL: none. */
void xmppuv_test_engine_on_data(xmppuv_test_engine_t *h, xmppuv_test_script_fn fn, void *arg);
/* Server bytes reach the engine in pieces of chunk(arg, left) bytes (1 ..
 * left); NULL: whole, as sent. */
void xmppuv_test_engine_chunker(xmppuv_test_engine_t *h, size_t (*chunk)(void *arg, size_t left),
                                void *arg);
/* Every byte the engine wrote, to any connection, to fn (e.g. a check). */
void xmppuv_test_engine_on_write(xmppuv_test_engine_t *h,
                                 void (*fn)(void *arg, const char *data, size_t len),
                                 void *arg);

/* SCRAM key derivations the harness ran (the key cache saves them). */
unsigned xmppuv_test_engine_derivations(const xmppuv_test_engine_t *h);

#endif
