/* A scripted XMPP server for client-level tests: plaintext TCP on the test's
 * own uv_loop_t (no thread), on 127.0.0.1 and a port the kernel picks. Each
 * accepted connection follows a script (script.h: the language, and what a
 * test can read of a connection).
 *
 * Connection k (0, 1, ...) follows scripts[k], or the last script once k is
 * past the end, so one script can serve every reconnection. A client that
 * closes its side (FIN) is answered by closing ours; a reset or read error
 * closes ours too; both are recorded (see xmppuv_test_script_conn_peer()).
 * Everything recorded is kept until the server is closed. */
#ifndef XMPPUV_TEST_SCRIPT_SERVER_H
#define XMPPUV_TEST_SCRIPT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "script.h"

typedef struct xmppuv_test_script_server xmppuv_test_script_server_t;

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

/* Call fn(conn, arg) each time a connection of srv has received bytes, after
 * its script advanced; NULL removes it. For a server that answers whatever
 * the client sends instead of following a fixed script (give it an empty
 * script: SCRIPT_END only). A negative return resets the connection. */
void xmppuv_test_script_server_on_data(xmppuv_test_script_server_t *srv,
                                       xmppuv_test_script_fn fn, void *arg);

#endif
