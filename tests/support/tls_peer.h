/* TLS peers for the TLS tests: real servers that are not our code, started
 * as child processes on 127.0.0.1 with a port the kernel picks (so test
 * binaries running at once never collide):
 *   - `openssl s_server` (direct TLS);
 *   - tests/support/tls_peer.py, Python's ssl module (STARTTLS, channel
 *     binding as the server sees it, truncated records).
 * And the test certificates, made once per test binary by
 * tests/support/make-certs.sh in a temporary directory.
 * POSIX only (fork/exec, pipes); test code, not library code. */
#ifndef XMPPUV_TEST_TLS_PEER_H
#define XMPPUV_TEST_TLS_PEER_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tls_peer {
  pid_t pid;
  int port;
  int stdin_fd;       /* write end of the peer's stdin (s_server), or -1 */
  char out_path[600]; /* the peer's stdout and stderr */
} tls_peer_t;

/* Make the certificates in a fresh temporary directory (once; later calls
 * return the same directory). Returns the directory, or NULL after printing
 * why on stderr. */
const char *tls_certs_dir(void);
/* Remove the directory made by tls_certs_dir(), if any. */
void tls_certs_cleanup(void);
/* dir/name in a static buffer (one at a time per slot 0..3). */
const char *tls_cert_path(int slot, const char *name);
/* The first line of dir/name, without its newline, in a static buffer. */
const char *tls_cert_line(const char *name);

/* Start `openssl s_server -accept 127.0.0.1:0 -cert NAME.pem -key NAME.key`
 * plus extra arguments (NULL-terminated, may be NULL), and wait for it to
 * listen. Returns 0 or -1 (with the reason on stderr). */
int tls_peer_start_s_server(tls_peer_t *p, const char *name,
                            const char *const *extra);
/* Start tls_peer.py with --cert/--key NAME plus extra arguments. */
int tls_peer_start_python(tls_peer_t *p, const char *name,
                          const char *const *extra);
/* Wait up to timeout_ms for the peer's output to contain needle; returns a
 * malloc'd copy of the rest of that line (free() it), or NULL. */
char *tls_peer_wait_output(tls_peer_t *p, const char *needle, int timeout_ms);
/* Kill the peer (SIGTERM, then SIGKILL) and reap it. Safe to call twice. */
void tls_peer_stop(tls_peer_t *p);

#endif
