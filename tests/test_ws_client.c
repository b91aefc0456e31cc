/* A client with a ws:// url against a hostile WebSocket server on
 * loopback: a few lines of libuv here that read the Upgrade request and
 * answer from a script (a wrong status, a wrong key, frames no XMPP server
 * sends). What the app sees: the error, its words, whether the client
 * gives up or tries again. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include <mbedtls/sha1.h>

#include "check_main.h"
#include "client_rec.h"
#include "run_until.h"
#include "sasl/sasl.h"
#include "util/buf.h"

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard;
  uv_tcp_t listener;
  uv_tcp_t *peer; /* the latest connection (each one its own handle) */
  unsigned accepted;
  char req[8192];
  size_t req_len;
  char first_line[2][128]; /* the request lines of the first two connections */
  unsigned short port;
  int answered;
  int scenario;
  xmppuv_client_t *c;
  client_rec_t rec;
} env_t;

/* What the server answers, after the request's blank line. */
enum { ANSWER_200, ANSWER_503, WRONG_ACCEPT, NO_PROTOCOL, BINARY_FRAME, TOO_BIG, CLOSE_MID,
       SEE_OTHER_URI, SEE_OTHER_WSS };

static void accept_of(const char *key, char out[64]) {
  char in[128];
  snprintf(in, sizeof in, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
  unsigned char d[20];
#if MBEDTLS_VERSION_MAJOR >= 3
  ck_assert_int_eq(mbedtls_sha1((const unsigned char *)in, strlen(in), d), 0);
#else
  ck_assert_int_eq(mbedtls_sha1_ret((const unsigned char *)in, strlen(in), d), 0);
#endif
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__base64_encode(d, sizeof d, &b), 0);
  snprintf(out, 64, "%s", b.data);
  xmppuv__buf_free(&b);
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w->data);
  free(w);
}

static void put(env_t *e, const void *p, size_t n) {
  uv_write_t *w = malloc(sizeof *w);
  char *copy = malloc(n);
  memcpy(copy, p, n);
  w->data = copy;
  uv_buf_t b = uv_buf_init(copy, (unsigned)n);
  ck_assert_int_eq(uv_write(w, (uv_stream_t *)e->peer, &b, 1, on_written), 0);
}

static void frame(env_t *e, int fin, int opcode, const char *p, size_t n) {
  unsigned char h[4] = {(unsigned char)((fin ? 0x80 : 0) | opcode), 0, 0, 0};
  size_t hl = 2;
  if (n < 126) {
    h[1] = (unsigned char)n;
  } else {
    h[1] = 126;
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    hl = 4;
  }
  put(e, h, hl);
  if (n > 0) put(e, p, n);
}

static void answer(env_t *e) {
  e->answered = 1;
  if (e->accepted <= 2) {
    const char *eol = strstr(e->req, "\r\n");
    snprintf(e->first_line[e->accepted - 1], sizeof e->first_line[0], "%.*s",
             (int)(eol - e->req), e->req);
  }
  const char *k = strstr(e->req, "Sec-WebSocket-Key: ");
  ck_assert_ptr_nonnull(k);
  char key[32];
  ck_assert_int_eq(sscanf(k + 19, "%24s", key), 1);
  char acc[64], head[512];
  accept_of(key, acc);
  switch (e->scenario) {
    case ANSWER_200:
      snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      break;
    case ANSWER_503:
      snprintf(head, sizeof head, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
      break;
    case WRONG_ACCEPT:
      acc[3] ^= 1;
      /* fall through */
    default:
      snprintf(head, sizeof head,
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n%s\r\n",
               acc, e->scenario == NO_PROTOCOL ? "" : "Sec-WebSocket-Protocol: xmpp\r\n");
  }
  put(e, head, strlen(head));
  static const char open_el[] =
      "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='x' version='1.0'/>";
  static char big[20000];
  switch (e->scenario) {
    case BINARY_FRAME:
      frame(e, 1, 2, open_el, sizeof open_el - 1);
      break;
    case TOO_BIG:
      memset(big, ' ', sizeof big);
      memcpy(big, open_el, sizeof open_el - 1);
      frame(e, 1, 1, big, sizeof big);
      break;
    case SEE_OTHER_URI:
    case SEE_OTHER_WSS:
      if (e->accepted == 1) {
        char close_el[200];
        snprintf(close_el, sizeof close_el,
                 "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                 "see-other-uri='%s://127.0.0.1:%u/elsewhere'/>",
                 e->scenario == SEE_OTHER_URI ? "ws" : "wss", (unsigned)e->port);
        frame(e, 1, 1, open_el, sizeof open_el - 1);
        frame(e, 1, 1, close_el, strlen(close_el));
      }
      break;
    case CLOSE_MID:
      frame(e, 1, 1, open_el, sizeof open_el - 1);
      frame(e, 0, 1, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>", 65);
      frame(e, 1, 8, "\x03\xe9", 2); /* 1001, going away */
      break;
    default:
      break;
  }
}

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h;
  static char buf[65536];
  (void)n;
  *b = uv_buf_init(buf, sizeof buf);
}

static void on_peer_closed(uv_handle_t *h) { free(h); }

static void close_peer(uv_tcp_t *p) {
  if (p != NULL && !uv_is_closing((uv_handle_t *)p)) uv_close((uv_handle_t *)p, on_peer_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  env_t *e = s->data;
  if (n < 0) {
    if ((uv_tcp_t *)s == e->peer) e->peer = NULL;
    close_peer((uv_tcp_t *)s);
    return;
  }
  if ((uv_tcp_t *)s != e->peer || e->answered) return; /* what the client sends after: not read */
  size_t take = (size_t)n < sizeof e->req - 1 - e->req_len ? (size_t)n : sizeof e->req - 1 - e->req_len;
  memcpy(e->req + e->req_len, b->base, take);
  e->req_len += take;
  e->req[e->req_len] = '\0';
  if (strstr(e->req, "\r\n\r\n") != NULL) answer(e);
}

static void on_connection(uv_stream_t *l, int status) {
  env_t *e = l->data;
  ck_assert_int_eq(status, 0);
  e->accepted++;
  /* A reconnection: the old connection goes. */
  close_peer(e->peer);
  e->peer = malloc(sizeof *e->peer);
  ck_assert_int_eq(uv_tcp_init(&e->loop, e->peer), 0);
  e->peer->data = e;
  e->req_len = 0;
  e->answered = 0;
  ck_assert_int_eq(uv_accept(l, (uv_stream_t *)e->peer), 0);
  ck_assert_int_eq(uv_read_start((uv_stream_t *)e->peer, on_alloc, on_read), 0);
}

static void env_start(env_t *e, int scenario) {
  memset(e, 0, sizeof *e);
  e->scenario = scenario;
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  client_rec_init(&e->rec, run_clock, &e->loop);
  ck_assert_int_eq(uv_tcp_init(&e->loop, &e->listener), 0);
  e->listener.data = e;
  struct sockaddr_in a;
  ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &a), 0);
  ck_assert_int_eq(uv_tcp_bind(&e->listener, (const struct sockaddr *)&a, 0), 0);
  ck_assert_int_eq(uv_listen((uv_stream_t *)&e->listener, 8, on_connection), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  ck_assert_int_eq(uv_tcp_getsockname(&e->listener, (struct sockaddr *)&ss, &len), 0);
  char url[64];
  e->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  snprintf(url, sizeof url, "ws://127.0.0.1:%u/xmpp-websocket", (unsigned)e->port);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = "alice@localhost";
  o.password = "alice-secret";
  o.url = url;
  o.tls = XMPPUV_TLS_DISABLED_INSECURE;
  o.max_stanza_bytes = 10000;
  o.reconnect_delay_ms = 50;
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, &e->rec, &e->c), 0);
  ck_assert_int_eq(xmppuv_client_start(e->c), 0);
}

static void env_finish(env_t *e) {
  xmppuv_client_close(e->c, client_rec_close_cb);
  close_peer(e->peer);
  e->peer = NULL;
  uv_close((uv_handle_t *)&e->listener, NULL);
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ck_assert(e->rec.closed);
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
}

static const struct {
  int scenario;
  int code;
  int fatal;
  const char *words;
} cases[] = {
    {ANSWER_200, XMPPUV_EWRONGSERVER, 1, "refused the WebSocket: \"HTTP/1.1 200 OK\""},
    {ANSWER_503, XMPPUV_ECONNECT, 0, "HTTP/1.1 503 Service Unavailable"},
    {WRONG_ACCEPT, XMPPUV_EWRONGSERVER, 1, "does not answer our key"},
    {NO_PROTOCOL, XMPPUV_EWRONGSERVER, 1, "without the xmpp subprotocol"},
    {BINARY_FRAME, XMPPUV_EPROTO, 0, "binary WebSocket message"},
    {TOO_BIG, XMPPUV_ELIMIT, 0, "over 10000 bytes; closed with 1009"},
    {CLOSE_MID, XMPPUV_EEOF, 0, "closed the WebSocket with 1001 (going away)"},
};

START_TEST(a_hostile_websocket_server_is_reported_in_words) {
  env_t *e = malloc(sizeof *e);
  env_start(e, cases[_i].scenario);
  RUN_UNTIL(e, e->rec.errors >= 1, 10000);
  ck_assert_uint_ge(e->rec.errors, 1);
  ck_assert_msg(e->rec.err_code[0] == cases[_i].code, "case %d: %s (%s)", _i,
                xmppuv_err_name(e->rec.err_code[0]), e->rec.err_text[0]);
  ck_assert_msg(strstr(e->rec.err_text[0], cases[_i].words) != NULL, "case %d: %s", _i,
                e->rec.err_text[0]);
  ck_assert_int_eq(e->rec.err_fatal[0], cases[_i].fatal);
  /* Never online; a fatal refusal ends at offline with one connection, the
   * others are tried again. */
  if (cases[_i].fatal) {
    RUN_UNTIL(e, e->rec.status == XMPPUV_STATUS_OFFLINE, 10000);
    ck_assert_int_eq(e->rec.status, XMPPUV_STATUS_OFFLINE);
    RUN_FOR(e, 300);
    ck_assert_uint_eq(e->accepted, 1);
  } else {
    RUN_UNTIL(e, e->accepted >= 2, 10000);
    ck_assert_uint_ge(e->accepted, 2);
  }
  ck_assert_uint_eq(e->rec.onlines, 0);
  env_finish(e);
  free(e);
}
END_TEST

/* RFC 7395 §3.6.1: <close see-other-uri/> sends the client to that URL at
 * once; one that would lower the security (wss:// to ws://, or here, in
 * the plaintext test mode, ws:// to wss://, which it cannot verify) is
 * refused and the client comes back where it was. */
START_TEST(see_other_uri_is_followed_at_once_but_never_to_another_security) {
  env_t *e = malloc(sizeof *e);
  env_start(e, _i == 0 ? SEE_OTHER_URI : SEE_OTHER_WSS);
  RUN_UNTIL(e, e->accepted >= 2 && e->answered, 10000);
  ck_assert_uint_ge(e->accepted, 2);
  ck_assert_msg(strcmp(e->first_line[0], "GET /xmpp-websocket HTTP/1.1") == 0, "%s",
                e->first_line[0]);
  if (_i == 0) {
    ck_assert_msg(strcmp(e->first_line[1], "GET /elsewhere HTTP/1.1") == 0, "%s",
                  e->first_line[1]);
    ck_assert_int_eq(e->rec.err_code[0], XMPPUV_ESTREAM);
    ck_assert_str_eq(e->rec.err_cond[0], "see-other-uri");
    ck_assert_int_eq(e->rec.err_fatal[0], 0);
  } else {
    ck_assert_msg(strcmp(e->first_line[1], "GET /xmpp-websocket HTTP/1.1") == 0, "%s",
                  e->first_line[1]);
    ck_assert_int_eq(e->rec.err_code[0], XMPPUV_ESEEOTHERHOST);
  }
  env_finish(e);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("ws_client");
  TCase *tc = tcase_create("hostile");
  tcase_add_loop_test(tc, a_hostile_websocket_server_is_reported_in_words, 0,
                      (int)(sizeof cases / sizeof cases[0]));
  tcase_add_loop_test(tc, see_other_uri_is_followed_at_once_but_never_to_another_security, 0,
                      2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
