/* A TLS front on mbedTLS for client-level tests: it accepts direct TLS on
 * 127.0.0.1 (a port the kernel picks) with the test CA's "localhost"
 * certificate (tls_peer.h makes them), keeps sessions in a cache (a client
 * may resume one: an abbreviated handshake), relays the plaintext to and from a
 * plaintext server on 127.0.0.1 (the scripted server), and when that
 * server sends CUT_MARK, encrypts what follows as one record, sends half
 * of it and closes the connection: a TLS record cut short.
 *
 * Test support code on the test's own loop: its memory comes from the C
 * library's malloc, failures are Check assertions. Not thread-safe. */
#ifndef XMPPUV_TEST_TLS_FRONT_H
#define XMPPUV_TEST_TLS_FRONT_H

#include <stddef.h>
#include <uv.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/x509_crt.h>

/* In the plaintext server's output: cut the record that carries the rest. */
#define CUT_MARK "#CUT#"

typedef struct tls_front_conn tls_front_conn_t;

typedef struct tls_front {
  unsigned short port;          /* where the front listens */
  unsigned short upstream_port; /* the plaintext server it relays to */
  unsigned cuts;                /* records cut so far */
  /* Internal. */
  uv_tcp_t listener;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt crt;
  mbedtls_pk_context key;
  mbedtls_ssl_config conf;
  mbedtls_ssl_cache_context cache; /* sessions, so clients can resume them */
  tls_front_conn_t *conns[16];
  size_t nconns;
} tls_front_t;

/* Listen on loop, relaying to 127.0.0.1:upstream_port (asserted). */
void tls_front_start(tls_front_t *f, uv_loop_t *loop, unsigned short upstream_port);
/* Close the listener and every connection (run the loop afterwards). */
void tls_front_close(tls_front_t *f);
/* After the loop ran dry: free the rest, and the certificates. */
void tls_front_free(tls_front_t *f);

#endif
