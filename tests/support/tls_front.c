#include "tls_front.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/version.h>

#include "tls_peer.h"

struct tls_front_conn {
  tls_front_t *f;
  uv_tcp_t down, up;
  uv_connect_t connect_req;
  mbedtls_ssl_context ssl;
  char *in;
  size_t in_len;
  char *early; /* plaintext for the server before it is connected */
  size_t early_len;
  int handshake_done, up_connected, closing, handles;
  int capture;
  char cap[65536];
  size_t cap_len;
};

static void front_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void front_shut(uv_shutdown_t *sd, int status) {
  (void)status;
  free(sd);
}

static void front_write(uv_tcp_t *t, const char *data, size_t len) {
  uv_write_t *w = malloc(sizeof *w + len);
  ck_assert_ptr_nonnull(w);
  memcpy(w + 1, data, len);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)len);
  if (uv_write(w, (uv_stream_t *)t, &b, 1, front_written) != 0) free(w);
}

static int front_send(void *ctx, const unsigned char *buf, size_t len) {
  tls_front_conn_t *k = ctx;
  if (k->capture) {
    if (len > sizeof k->cap - k->cap_len) len = sizeof k->cap - k->cap_len;
    memcpy(k->cap + k->cap_len, buf, len);
    k->cap_len += len;
    return (int)len;
  }
  if (!k->closing) front_write(&k->down, (const char *)buf, len);
  return (int)len;
}

static int front_recv(void *ctx, unsigned char *buf, size_t len) {
  tls_front_conn_t *k = ctx;
  if (k->in_len == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  if (len > k->in_len) len = k->in_len;
  memcpy(buf, k->in, len);
  memmove(k->in, k->in + len, k->in_len - len);
  k->in_len -= len;
  return (int)len;
}

static void front_conn_closed(uv_handle_t *h) {
  tls_front_conn_t *k = h->data;
  if (--k->handles > 0) return;
  mbedtls_ssl_free(&k->ssl);
  free(k->in);
  free(k->early);
  tls_front_t *f = k->f;
  for (size_t i = 0; i < f->nconns; i++)
    if (f->conns[i] == k) f->conns[i] = NULL;
  free(k);
}

static void front_close(tls_front_conn_t *k) {
  if (k->closing) return;
  k->closing = 1;
  uv_close((uv_handle_t *)&k->down, front_conn_closed);
  uv_close((uv_handle_t *)&k->up, front_conn_closed);
}

static void front_encrypt(tls_front_conn_t *k, const char *data, size_t len) {
  while (len > 0) {
    int n = mbedtls_ssl_write(&k->ssl, (const unsigned char *)data, len);
    ck_assert_msg(n > 0, "mbedtls_ssl_write: -0x%04x", (unsigned)-n);
    data += n;
    len -= (size_t)n;
  }
}

static void front_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base != NULL ? suggested : 0;
}

/* Plaintext from the scripted server: encrypt it, or cut it. */
static void front_on_up(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tls_front_conn_t *k = s->data;
  if (n < 0 || k->closing || !k->handshake_done) {
    if (n < 0) front_close(k);
    free(buf->base);
    return;
  }
  const char *data = buf->base;
  size_t len = (size_t)n;
  const char *mark = memmem(data, len, CUT_MARK, strlen(CUT_MARK));
  if (mark == NULL) {
    front_encrypt(k, data, len);
  } else {
    front_encrypt(k, data, (size_t)(mark - data));
    const char *rest = mark + strlen(CUT_MARK);
    size_t rest_len = len - (size_t)(rest - data);
    ck_assert_uint_gt(rest_len, 0);
    k->capture = 1;
    front_encrypt(k, rest, rest_len);
    k->capture = 0;
    /* Half a record, then FIN. */
    front_write(&k->down, k->cap, k->cap_len / 2);
    k->f->cuts++;
    uv_shutdown_t *sd = malloc(sizeof *sd);
    ck_assert_ptr_nonnull(sd);
    if (uv_shutdown(sd, (uv_stream_t *)&k->down, front_shut) != 0) free(sd);
    uv_read_stop((uv_stream_t *)&k->up);
  }
  free(buf->base);
}

static void front_on_up_connected(uv_connect_t *req, int status) {
  tls_front_conn_t *k = req->data;
  if (k->closing) return;
  if (status != 0) {
    front_close(k);
    return;
  }
  k->up_connected = 1;
  if (k->early_len > 0) front_write(&k->up, k->early, k->early_len);
  k->early_len = 0;
  uv_read_start((uv_stream_t *)&k->up, front_alloc, front_on_up);
}

/* Ciphertext from the client. */
static void front_on_down(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tls_front_conn_t *k = s->data;
  if (n < 0 || k->closing) {
    if (n < 0) front_close(k);
    free(buf->base);
    return;
  }
  k->in = realloc(k->in, k->in_len + (size_t)n);
  ck_assert_ptr_nonnull(k->in);
  memcpy(k->in + k->in_len, buf->base, (size_t)n);
  k->in_len += (size_t)n;
  free(buf->base);
  if (!k->handshake_done) {
    int rc = mbedtls_ssl_handshake(&k->ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return;
    if (rc != 0) {
      front_close(k);
      return;
    }
    k->handshake_done = 1;
  }
  for (;;) {
    unsigned char plain[16384];
    int rc = mbedtls_ssl_read(&k->ssl, plain, sizeof plain);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return;
    if (rc <= 0) {
      front_close(k);
      return;
    }
    if (k->up_connected) {
      front_write(&k->up, (const char *)plain, (size_t)rc);
    } else {
      k->early = realloc(k->early, k->early_len + (size_t)rc);
      ck_assert_ptr_nonnull(k->early);
      memcpy(k->early + k->early_len, plain, (size_t)rc);
      k->early_len += (size_t)rc;
    }
  }
}

static void front_on_connection(uv_stream_t *listener, int status) {
  tls_front_t *f = listener->data;
  ck_assert_int_eq(status, 0);
  ck_assert_uint_lt(f->nconns, sizeof f->conns / sizeof f->conns[0]);
  tls_front_conn_t *k = calloc(1, sizeof *k);
  ck_assert_ptr_nonnull(k);
  k->f = f;
  f->conns[f->nconns++] = k;
  uv_tcp_init(listener->loop, &k->down);
  uv_tcp_init(listener->loop, &k->up);
  k->down.data = k->up.data = k->connect_req.data = k;
  k->handles = 2;
  mbedtls_ssl_init(&k->ssl);
  ck_assert_int_eq(mbedtls_ssl_setup(&k->ssl, &f->conf), 0);
  mbedtls_ssl_set_bio(&k->ssl, k, front_send, front_recv, NULL);
  ck_assert_int_eq(uv_accept(listener, (uv_stream_t *)&k->down), 0);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", f->upstream_port, &addr);
  ck_assert_int_eq(uv_tcp_connect(&k->connect_req, &k->up, (const struct sockaddr *)&addr,
                                  front_on_up_connected),
                   0);
  uv_read_start((uv_stream_t *)&k->down, front_alloc, front_on_down);
}

void tls_front_start(tls_front_t *f, uv_loop_t *loop, unsigned short upstream_port) {
  memset(f, 0, sizeof *f);
  f->upstream_port = upstream_port;
  ck_assert_ptr_nonnull(tls_certs_dir());
  mbedtls_entropy_init(&f->entropy);
  mbedtls_ctr_drbg_init(&f->drbg);
  mbedtls_x509_crt_init(&f->crt);
  mbedtls_pk_init(&f->key);
  mbedtls_ssl_config_init(&f->conf);
  ck_assert_int_eq(mbedtls_ctr_drbg_seed(&f->drbg, mbedtls_entropy_func, &f->entropy,
                                         (const unsigned char *)"hostile", 7),
                   0);
  ck_assert_int_eq(mbedtls_x509_crt_parse_file(&f->crt, tls_cert_path(0, "localhost.pem")), 0);
#if MBEDTLS_VERSION_MAJOR >= 3
  ck_assert_int_eq(mbedtls_pk_parse_keyfile(&f->key, tls_cert_path(0, "localhost.key"), NULL,
                                            mbedtls_ctr_drbg_random, &f->drbg),
                   0);
#else
  ck_assert_int_eq(mbedtls_pk_parse_keyfile(&f->key, tls_cert_path(0, "localhost.key"), NULL), 0);
#endif
  ck_assert_int_eq(
      mbedtls_ssl_config_defaults(&f->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                  MBEDTLS_SSL_PRESET_DEFAULT),
      0);
  mbedtls_ssl_conf_rng(&f->conf, mbedtls_ctr_drbg_random, &f->drbg);
  ck_assert_int_eq(mbedtls_ssl_conf_own_cert(&f->conf, &f->crt, &f->key), 0);
  mbedtls_ssl_cache_init(&f->cache);
  mbedtls_ssl_conf_session_cache(&f->conf, &f->cache, mbedtls_ssl_cache_get,
                                 mbedtls_ssl_cache_set);
  ck_assert_int_eq(uv_tcp_init(loop, &f->listener), 0);
  f->listener.data = f;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_int_eq(uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0), 0);
  ck_assert_int_eq(uv_listen((uv_stream_t *)&f->listener, 16, front_on_connection), 0);
  struct sockaddr_in bound;
  int len = sizeof bound;
  ck_assert_int_eq(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&bound, &len), 0);
  f->port = ntohs(bound.sin_port);
}

void tls_front_close(tls_front_t *f) {
  uv_close((uv_handle_t *)&f->listener, NULL);
  for (size_t i = 0; i < f->nconns; i++)
    if (f->conns[i] != NULL) front_close(f->conns[i]);
}

/* After the loop ran dry. */
void tls_front_free(tls_front_t *f) {
  mbedtls_ssl_config_free(&f->conf);
  mbedtls_ssl_cache_free(&f->cache);
  mbedtls_pk_free(&f->key);
  mbedtls_x509_crt_free(&f->crt);
  mbedtls_ctr_drbg_free(&f->drbg);
  mbedtls_entropy_free(&f->entropy);
  tls_certs_cleanup();
}
