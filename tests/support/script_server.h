/* A scripted XMPP server for client-level tests: plaintext TCP on the test's
 * own uv_loop_t (no thread), on 127.0.0.1 and a port the kernel picks. Each
 * accepted connection follows a script, a list of steps run in order:
 *
 *   SCRIPT_EXPECT(text)  wait until the client has sent bytes containing
 *                        text, searching after the previous EXPECT's match
 *   SCRIPT_SEND(text)    write text, with these substitutions:
 *                          {id}   the value of the last id='...' or id="..."
 *                                 attribute the client sent before the end of
 *                                 the previous EXPECT's match (to answer an
 *                                 iq, e.g. the bind request)
 *                          {port} this server's port
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
 * Connection k (0, 1, ...) follows scripts[k], or the last script once k is
 * past the end, so one script can serve every reconnection.
 *
 * Everything a client sends is recorded per connection and kept until the
 * server is closed, for assertions. A client that closes its side (FIN) is
 * answered by closing ours; a reset or read error closes ours too; both are
 * recorded (see xmppuv_test_script_conn_peer()).
 *
 * Steps and their texts are borrowed: they must outlive the server. Test
 * support code: memory comes from the C library's malloc, never from
 * xmppuv's replaceable allocator. Not thread-safe: everything runs on the
 * loop's thread. */
#ifndef XMPPUV_TEST_SCRIPT_SERVER_H
#define XMPPUV_TEST_SCRIPT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct xmppuv_test_script_server xmppuv_test_script_server_t;
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

/* Listen on 127.0.0.1 (port chosen by the kernel). scripts: n_scripts >= 1
 * pointers to step arrays ending in SCRIPT_END. Returns 0 and *out,
 * UV_EINVAL, UV_ENOMEM, or the libuv error of bind/listen (then handles it
 * made are closing: run the loop before uv_loop_close). The server belongs
 * to loop until xmppuv_test_script_server_close()'s callback has run. */
int xmppuv_test_script_server_start(uv_loop_t *loop,
                                    const xmppuv_test_step_t *const *scripts,
                                    size_t n_scripts,
                                    xmppuv_test_script_server_t **out);

unsigned short xmppuv_test_script_server_port(const xmppuv_test_script_server_t *srv);

/* Connections accepted so far. */
size_t xmppuv_test_script_server_connections(const xmppuv_test_script_server_t *srv);

/* Connection i (in the order accepted), or NULL if there is none. Valid
 * until the server is closed, also after the connection ended. */
xmppuv_test_script_conn_t *xmppuv_test_script_server_conn(
    const xmppuv_test_script_server_t *srv, size_t i);

/* Close the listener and every connection (a FIN), then call cb(user_data)
 * once every handle is closed; everything is freed then. cb may be NULL.
 * Always asynchronous: cb never runs inside this call. */
void xmppuv_test_script_server_close(xmppuv_test_script_server_t *srv,
                                     void (*cb)(void *user_data), void *user_data);

/* ---- one connection ----------------------------------------------------- */

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

/* Non-zero once the socket is closed (by either side). */
int xmppuv_test_script_conn_closed(const xmppuv_test_script_conn_t *conn);

/* uv_now() of the loop when the connection was accepted. */
uint64_t xmppuv_test_script_conn_accepted_at(const xmppuv_test_script_conn_t *conn);

/* Write len bytes (no substitutions) now, outside the script. 0, UV_ENOMEM,
 * UV_EPIPE if the connection is closed or half-closed. */
int xmppuv_test_script_conn_send(xmppuv_test_script_conn_t *conn, const char *data,
                                 size_t len);

/* Close the connection now, outside the script: with a FIN (reset 0) or a
 * TCP RST (reset 1). The script stops. No-op if already closed. */
void xmppuv_test_script_conn_close(xmppuv_test_script_conn_t *conn, int reset);

/* Bytes handed to libuv for this connection (SCRIPT_SEND,
 * xmppuv_test_script_conn_send) that the kernel has not taken yet: lets a
 * test that streams endless data keep its own memory bounded. */
size_t xmppuv_test_script_conn_write_queue(const xmppuv_test_script_conn_t *conn);

/* Call fn(conn, arg) each time a connection of srv has received bytes, after
 * its script advanced; NULL removes it. For a server that answers whatever
 * the client sends instead of following a fixed script (give it an empty
 * script: SCRIPT_END only). A negative return resets the connection. */
void xmppuv_test_script_server_on_data(xmppuv_test_script_server_t *srv,
                                       xmppuv_test_script_fn fn, void *arg);

#endif
