/* A scripted XMPP server connection, whatever carries it: the script
 * language and the connection's state, shared by the TCP scripted server
 * (script_server.h) and the engine harness's memory transport
 * (engine_harness.h). A script is a list of steps run in order:
 *
 *   SCRIPT_EXPECT(text)  wait until the client has sent bytes containing
 *                        text, searching after the previous EXPECT's match
 *   SCRIPT_SEND(text)    write text, with these substitutions:
 *                          {id}   the value of the last id='...' or id="..."
 *                                 attribute the client sent before the end of
 *                                 the previous EXPECT's match (to answer an
 *                                 iq, e.g. the bind request)
 *                          {port} the server's port (0 in memory)
 *                          {n}    the connection's index (0, 1, ...)
 *   SCRIPT_DELAY(ms)     wait ms milliseconds
 *   SCRIPT_CALL(fn, arg) call fn(conn, arg) (to compute an answer from what
 *                        the client sent, e.g. SCRAM); a negative return
 *                        resets the connection and ends the script
 *   SCRIPT_CLOSE         half-close: a FIN after what was written; reading
 *                        goes on until the client closes its side
 *   SCRIPT_RESET         close at once with a TCP RST
 *   SCRIPT_END           the end of every script. A connection whose script
 *                        ended (other than by CLOSE or RESET) stays open and
 *                        silent, and keeps recording what the client sends.
 *
 * Everything a client sends is recorded per connection, for assertions.
 * Steps and their texts are borrowed: they must outlive the connection.
 * Test support code: memory comes from the C library's malloc, never from
 * xmppuv's replaceable allocator. Not thread-safe. */
#ifndef XMPPUV_TEST_SCRIPT_H
#define XMPPUV_TEST_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

typedef struct xmppuv_test_script_conn xmppuv_test_script_conn_t;

typedef enum {
  XMPPUV_TEST_STEP_END = 0,
  XMPPUV_TEST_STEP_EXPECT,
  XMPPUV_TEST_STEP_SEND,
  XMPPUV_TEST_STEP_DELAY,
  XMPPUV_TEST_STEP_CALL,
  XMPPUV_TEST_STEP_CLOSE,
  XMPPUV_TEST_STEP_RESET
} xmppuv_test_step_op_t;

/* A SCRIPT_CALL function: 0 to go on with the script, negative to reset
 * the connection. It may send with xmppuv_test_script_conn_send(). */
typedef int (*xmppuv_test_script_fn)(xmppuv_test_script_conn_t *conn, void *arg);

typedef struct xmppuv_test_step {
  xmppuv_test_step_op_t op;
  const char *text;         /* EXPECT, SEND */
  unsigned ms;              /* DELAY */
  xmppuv_test_script_fn fn; /* CALL */
  void *arg;                /* CALL */
} xmppuv_test_step_t;

#define SCRIPT_EXPECT(t) {XMPPUV_TEST_STEP_EXPECT, (t), 0, NULL, NULL}
#define SCRIPT_SEND(t) {XMPPUV_TEST_STEP_SEND, (t), 0, NULL, NULL}
#define SCRIPT_DELAY(m) {XMPPUV_TEST_STEP_DELAY, NULL, (m), NULL, NULL}
#define SCRIPT_CALL(f, a) {XMPPUV_TEST_STEP_CALL, NULL, 0, (f), (a)}
#define SCRIPT_CLOSE {XMPPUV_TEST_STEP_CLOSE, NULL, 0, NULL, NULL}
#define SCRIPT_RESET {XMPPUV_TEST_STEP_RESET, NULL, 0, NULL, NULL}
#define SCRIPT_END {XMPPUV_TEST_STEP_END, NULL, 0, NULL, NULL}

/* How the client's side of a connection stands. */
typedef enum {
  XMPPUV_TEST_PEER_OPEN = 0, /* connected (or closed by the script only) */
  XMPPUV_TEST_PEER_EOF,      /* the client closed its side (FIN) */
  XMPPUV_TEST_PEER_ERROR     /* a reset or another read error */
} xmppuv_test_peer_t;

/* How io->close ends a connection. */
enum {
  XMPPUV_TEST_IO_SHUTDOWN, /* SCRIPT_CLOSE: a FIN after what was written; reading goes on */
  XMPPUV_TEST_IO_CLOSE,    /* close both ways (a FIN) */
  XMPPUV_TEST_IO_RESET     /* close at once with a RST */
};

/* What carries a connection: the transport side of the runner. */
typedef struct xmppuv_test_script_io {
  /* Write to the client; 0 or an error (the connection is then reset). */
  int (*send)(void *io, const char *data, size_t len);
  /* End the connection, one of XMPPUV_TEST_IO_*. */
  void (*close)(void *io, int how);
  /* SCRIPT_DELAY: call xmppuv_test_script_conn_delay_over() after ms. */
  void (*delay)(void *io, unsigned ms);
  /* Bytes handed over and not taken by the kernel yet (0 if none). */
  size_t (*write_queue)(const void *io);
} xmppuv_test_script_io_t;

/* ---- for transports ---------------------------------------------------- */

/* A connection following script (ending in SCRIPT_END), the index-th of its
 * server; nothing runs until xmppuv_test_script_conn_advance(). NULL if out
 * of memory. */
xmppuv_test_script_conn_t *xmppuv_test_script_conn_new(const xmppuv_test_step_t *script,
                                                       size_t index, unsigned port,
                                                       const xmppuv_test_script_io_t *io,
                                                       void *io_ud, uint64_t accepted_at);
void xmppuv_test_script_conn_free(xmppuv_test_script_conn_t *conn);
/* Run the script as far as it can go now. */
void xmppuv_test_script_conn_advance(xmppuv_test_script_conn_t *conn);
/* The client sent these bytes (recorded, then the script advances). 0 or
 * -1 (out of memory). */
int xmppuv_test_script_conn_received_bytes(xmppuv_test_script_conn_t *conn, const char *data,
                                           size_t len);
/* A SCRIPT_DELAY is over: the script goes on. */
void xmppuv_test_script_conn_delay_over(xmppuv_test_script_conn_t *conn);
/* The transport's view of the connection. */
void xmppuv_test_script_conn_set_peer(xmppuv_test_script_conn_t *conn, xmppuv_test_peer_t peer);
void xmppuv_test_script_conn_set_closed(xmppuv_test_script_conn_t *conn);
/* The connection is closing (by the script or the transport): the script
 * stops. */
int xmppuv_test_script_conn_closing(const xmppuv_test_script_conn_t *conn);
/* A SCRIPT_CLOSE was run: no more sends. */
int xmppuv_test_script_conn_shut(const xmppuv_test_script_conn_t *conn);
void *xmppuv_test_script_conn_io(const xmppuv_test_script_conn_t *conn);

/* ---- for tests ----------------------------------------------------------- */

size_t xmppuv_test_script_conn_index(const xmppuv_test_script_conn_t *conn);

/* Everything the client sent on this connection so far, NUL-terminated (the
 * client's bytes contain no NUL). *len may be NULL. */
const char *xmppuv_test_script_conn_received(const xmppuv_test_script_conn_t *conn,
                                             size_t *len);

/* The bytes after the previous EXPECT's match (what a SCRIPT_CALL function
 * reads its input from), NUL-terminated. */
const char *xmppuv_test_script_conn_unmatched(const xmppuv_test_script_conn_t *conn);

/* Index of the step the script is at (the SCRIPT_END index once done). */
size_t xmppuv_test_script_conn_step(const xmppuv_test_script_conn_t *conn);

/* Non-zero once the script has run its last step. */
int xmppuv_test_script_conn_done(const xmppuv_test_script_conn_t *conn);

xmppuv_test_peer_t xmppuv_test_script_conn_peer(const xmppuv_test_script_conn_t *conn);

/* Non-zero once the connection is closed (by either side). */
int xmppuv_test_script_conn_closed(const xmppuv_test_script_conn_t *conn);

/* When the connection was accepted (uv_now, or the fake clock). */
uint64_t xmppuv_test_script_conn_accepted_at(const xmppuv_test_script_conn_t *conn);

/* Write len bytes (no substitutions) now, outside the script. 0, -ENOMEM,
 * or -EPIPE if the connection is closed or half-closed. */
int xmppuv_test_script_conn_send(xmppuv_test_script_conn_t *conn, const char *data,
                                 size_t len);

/* Close the connection now, outside the script: with a FIN (reset 0) or a
 * TCP RST (reset 1). The script stops. No-op if already closed. */
void xmppuv_test_script_conn_close(xmppuv_test_script_conn_t *conn, int reset);

/* Bytes handed over for this connection that the kernel has not taken yet:
 * lets a test that streams endless data keep its own memory bounded. */
size_t xmppuv_test_script_conn_write_queue(const xmppuv_test_script_conn_t *conn);

#endif
