/* Real XMPP servers for integration tests: Prosody and ejabberd from Debian,
 * started by tests/servers/<kind>.sh on 127.0.0.1 in a temporary directory,
 * on free ports picked here, with domain "localhost" and the users alice,
 * bob, carol and dave (passwords from xmppuv_test_password()).
 *
 * Each server: STARTTLS required on `port`, XEP-0368 direct TLS on
 * `direct_tls_port`, XEP-0198 on with a resumption window of resume_seconds,
 * a self-signed certificate for localhost in `ca_file` (trust it as the CA
 * file; the name verifies as "localhost"). RFC 7395 WebSocket (subprotocol
 * "xmpp") and XEP-0156 host-meta on `http_port` (plain) and `https_port`
 * (TLS, same certificate); the four ports are consecutive.
 *
 * The scripts are found through $XMPPUV_SOURCE_ROOT (meson test sets it). A
 * missing server package fails the test (ck_abort naming the package): it is
 * never a skip. If the test process dies without stopping a server, a
 * watcher started by the script kills that server and removes its directory
 * within about a second. XMPPUV_KEEP_SERVER_DIRS=1 keeps the directories
 * (logs, configs) after stop, for debugging; XMPPUV_SERVER_MAX_STANZA=N
 * (set before start) lowers the largest stanza the server takes to N bytes
 * (Prosody: at least 10000); XMPPUV_SERVER_DEBUG=1 makes the
 * servers log at debug level.
 *
 * These functions block (they run the scripts and wait); call them outside
 * the loop's callbacks or accept that the loop stalls meanwhile. Not
 * thread-safe. */
#ifndef XMPPUV_TEST_SERVERS_H
#define XMPPUV_TEST_SERVERS_H

typedef struct xmppuv_test_server {
  char kind[16];              /* "prosody" or "ejabberd" */
  char dir[256];              /* temporary directory, removed by stop */
  char domain[64];            /* "localhost" */
  unsigned short port;        /* STARTTLS c2s */
  unsigned short direct_tls_port;
  /* direct_tls_port + 1, plain HTTP: ws://127.0.0.1:http_port/PATH with
   * PATH "/xmpp-websocket" (Prosody) or "/ws" (ejabberd). Prosody counts a
   * plain WebSocket as secure (consider_websocket_secure) and ejabberd
   * offers SASL2 on it (allow_unencrypted_sasl2): loopback tests only. */
  unsigned short http_port;
  /* direct_tls_port + 2, HTTPS: wss://localhost:https_port/PATH, and
   * https://localhost:https_port/.well-known/host-meta and host-meta.json
   * (also served on http_port) naming that wss:// URL. ejabberd answers
   * host-meta only to "Host: localhost[:port]". */
  unsigned short https_port;
  char ca_file[300];          /* the server's certificate: trust it */
  int resume_seconds;         /* XEP-0198 resumption window */
  long ready_ms;              /* the last start (or restart) took this long */
} xmppuv_test_server_t;

/* Start a server of `kind` ("prosody" or "ejabberd") with a resumption
 * window of resume_seconds (<= 0: 5). Picks free ports (retrying when
 * another process takes them first), runs the script, and returns once the
 * server answers a stream header with its features. Returns 0 and fills
 * *out; UV_EINVAL for an unknown kind; UV_EADDRINUSE if no free ports were
 * found; UV_EIO if the server did not become ready (its log is printed on
 * stderr). Aborts the test if the package is not installed. */
int xmppuv_test_server_start(const char *kind, int resume_seconds,
                             xmppuv_test_server_t *out);

/* Stop the server and start it again in the same directory on the same
 * ports; users, data and certificate are kept. Returns 0 when it answers
 * again, UV_EADDRINUSE if a port was taken meanwhile, UV_EIO otherwise. */
int xmppuv_test_server_restart(xmppuv_test_server_t *s);

/* Kill the server with SIGKILL (no goodbye to its clients: they see their
 * connections reset or go silent) and wait until its ports are free. The
 * directory stays: restart or stop it afterwards. 0 or UV_EIO. */
int xmppuv_test_server_kill(xmppuv_test_server_t *s);

/* Stop the server gracefully (clients get </stream:stream> or a FIN), wait
 * until its ports are free, remove its directory and clear *s. Safe on a
 * killed server and on a zeroed struct. */
void xmppuv_test_server_stop(xmppuv_test_server_t *s);

/* The password of a registered user ("alice" -> "alice-secret"); NULL for
 * anyone else. Static storage. */
const char *xmppuv_test_password(const char *user);

#endif
