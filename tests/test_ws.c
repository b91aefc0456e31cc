/* The WebSocket opening handshake for XMPP (lib/transport/ws_handshake.h):
 * URLs, the Upgrade request, and every way the server's answer is checked.
 * The transport that uses it over TCP and TLS comes with issue 14. */
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "transport/ws_handshake.h"
#include "xmppuv.h"

/* RFC 6455 §1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" is the nonce "the sample
 * nonce", and its accept value is "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
static const unsigned char sample_nonce[16] = "the sample nonce";
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define GOOD_ANSWER                                                          \
  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"              \
  "Connection: Upgrade\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"       \
  "Sec-WebSocket-Protocol: xmpp\r\n\r\n"

static void request(xmppuv__ws_handshake_t *hs, const char *url, xmppuv__buf_t *out) {
  xmppuv__ws_url_t u;
  const char *why = NULL;
  ck_assert_msg(xmppuv__ws_url_parse(url, &u, &why) == 0, "%s: %s", url, why);
  ck_assert_int_eq(xmppuv__ws_request(hs, &u, sample_nonce, out), 0);
}

START_TEST(urls_are_parsed_with_their_defaults) {
  xmppuv__ws_url_t u;
  const char *why;
  ck_assert_int_eq(xmppuv__ws_url_parse("wss://example.org/xmpp-websocket", &u, &why), 0);
  ck_assert(u.tls);
  ck_assert_str_eq(u.host, "example.org");
  ck_assert_uint_eq(u.port, 443);
  ck_assert_str_eq(u.path, "/xmpp-websocket");
  ck_assert_int_eq(xmppuv__ws_url_parse("ws://127.0.0.1:5280", &u, &why), 0);
  ck_assert(!u.tls);
  ck_assert_uint_eq(u.port, 5280);
  ck_assert_str_eq(u.path, "/");
  ck_assert_int_eq(xmppuv__ws_url_parse("wss://[::1]:5443/ws?x=1", &u, &why), 0);
  ck_assert(u.ipv6);
  ck_assert_str_eq(u.host, "::1");
  ck_assert_str_eq(u.path, "/ws?x=1");
}
END_TEST

START_TEST(bad_urls_are_refused_with_a_reason) {
  static const char *const bad[] = {"http://example.org/ws", "wss://", "wss://:443/",
                                    "wss://user@example.org/", "wss://example.org:0/",
                                    "wss://example.org:70000/", "wss://[::1/ws",
                                    "wss://example.org/a b", "wss://example.org/#frag",
                                    "wss://exa mple.org/"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    xmppuv__ws_url_t u;
    const char *why = NULL;
    ck_assert_msg(xmppuv__ws_url_parse(bad[i], &u, &why) == XMPPUV_EINVAL, "%s", bad[i]);
    ck_assert_ptr_nonnull(why);
  }
}
END_TEST

START_TEST(the_request_asks_for_the_xmpp_subprotocol_with_our_key) {
  xmppuv__ws_handshake_t hs;
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  request(&hs, "wss://example.org:5443/ws", &out);
  ck_assert_str_eq(hs.key, "dGhlIHNhbXBsZSBub25jZQ==");
  ck_assert_str_eq(hs.accept, SAMPLE_ACCEPT);
  ck_assert_int_eq(xmppuv__buf_append_char(&out, '\0'), 0);
  ck_assert_str_eq(out.data,
                   "GET /ws HTTP/1.1\r\nHost: example.org:5443\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: xmpp\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
                   "\r\n\r\n");
  xmppuv__buf_clear(&out);
  request(&hs, "ws://[::1]/", &out); /* the default port is not named */
  ck_assert_ptr_nonnull(memmem(out.data, out.len, "Host: [::1]\r\n", 13));
  xmppuv__buf_free(&out);
}
END_TEST

START_TEST(a_right_answer_is_taken_in_any_pieces_and_the_rest_is_left) {
  const char answer[] = GOOD_ANSWER "\x81\x05<open";
  size_t total = strlen(GOOD_ANSWER);
  for (size_t piece = 1; piece <= sizeof answer; piece++) {
    xmppuv__ws_handshake_t hs;
    xmppuv__buf_t out = XMPPUV__BUF_INIT;
    request(&hs, "ws://localhost/ws", &out);
    xmppuv__buf_free(&out);
    size_t off = 0;
    int rc = 0;
    char why[200];
    while (off < sizeof answer - 1) {
      size_t n = sizeof answer - 1 - off < piece ? sizeof answer - 1 - off : piece;
      size_t used = 0;
      rc = xmppuv__ws_answer(&hs, answer + off, n, &used, why, sizeof why);
      ck_assert_msg(rc >= 0, "piece %zu: %s", piece, why);
      off += used;
      if (rc == 1) break;
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_eq(off, total); /* the frame after it is not taken */
  }
}
END_TEST

/* Every refusal: the answer, and words the app's error text must hold. */
static const struct {
  const char *answer;
  const char *says;
} refusals[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "refused the WebSocket: \"HTTP/1.1 200 OK\""},
    {"HTTP/1.1 404 Not Found\r\n\r\n", "\"HTTP/1.1 404 Not Found\""},
    {"HTTP/1.1 301 Moved\r\nLocation: wss://elsewhere.example/ws\r\n\r\n",
     "redirects the WebSocket elsewhere (not followed): wss://elsewhere.example/ws"},
    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
     "Sec-WebSocket-Accept does not answer our key"},
    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n\r\n",
     "without the xmpp subprotocol"},
    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
     "without the xmpp subprotocol"},
    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
     "does not upgrade to websocket"},
    {"SSH-2.0-OpenSSH_9.2\r\n\r\n", "did not answer in HTTP"},
    {"HTTP/1.1 1x1 Bad\r\n\r\n", "status line is malformed"},
    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n continued\r\n\r\n",
     "folds a header line"},
    {"HTTP/1.1 101 Switching Protocols\r\nno colon here\r\n\r\n", "no header"},
};

START_TEST(a_wrong_answer_is_refused_saying_why) {
  xmppuv__ws_handshake_t hs;
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  request(&hs, "ws://localhost/ws", &out);
  xmppuv__buf_free(&out);
  size_t used;
  char why[300];
  const char *a = refusals[_i].answer;
  ck_assert_int_eq(xmppuv__ws_answer(&hs, a, strlen(a), &used, why, sizeof why),
                   XMPPUV_EWRONGSERVER);
  ck_assert_msg(strstr(why, refusals[_i].says) != NULL, "answer %d: \"%s\"", _i, why);
  ck_assert_int_eq(xmppuv__ws_answer(&hs, "x", 1, &used, why, sizeof why), XMPPUV_ESTATE);
}
END_TEST

START_TEST(an_endless_answer_is_refused_at_its_limit) {
  xmppuv__ws_handshake_t hs;
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  request(&hs, "ws://localhost/ws", &out);
  xmppuv__buf_free(&out);
  char header[100];
  memset(header, 'a', sizeof header);
  size_t used;
  char why[200];
  int rc = xmppuv__ws_answer(&hs, "HTTP/1.1 101 x\r\n", 16, &used, why, sizeof why);
  for (int i = 0; rc == 0 && i < 1000; i++)
    rc = xmppuv__ws_answer(&hs, header, sizeof header, &used, why, sizeof why);
  ck_assert_int_eq(rc, XMPPUV_EWRONGSERVER);
  ck_assert_ptr_nonnull(strstr(why, "over 8 KB"));
}
END_TEST

/* The answer is read by http.c's head reader: a wrong first line or a line
 * that does not end in CRLF is refused when it comes, not at a blank line
 * that may never come. */
START_TEST(a_wrong_line_is_refused_when_it_comes) {
  static const struct {
    const char *answer;
    const char *says;
  } early[] = {
      {"SSH-2.0-OpenSSH_9.2\r\n", "did not answer in HTTP"},
      {"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n", "bare LF"},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nbogus\r\n", "no header"},
  };
  for (size_t i = 0; i < sizeof early / sizeof early[0]; i++) {
    xmppuv__ws_handshake_t hs;
    xmppuv__buf_t out = XMPPUV__BUF_INIT;
    request(&hs, "ws://localhost/ws", &out);
    xmppuv__buf_free(&out);
    size_t used;
    char why[300];
    const char *a = early[i].answer;
    ck_assert_int_eq(xmppuv__ws_answer(&hs, a, strlen(a), &used, why, sizeof why),
                     XMPPUV_EWRONGSERVER);
    ck_assert_msg(strstr(why, early[i].says) != NULL, "answer %zu: \"%s\"", i, why);
    ck_assert_uint_le(used, strlen(a));
  }
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("ws");
  TCase *tc = tcase_create("handshake");
  tcase_add_test(tc, urls_are_parsed_with_their_defaults);
  tcase_add_test(tc, bad_urls_are_refused_with_a_reason);
  tcase_add_test(tc, the_request_asks_for_the_xmpp_subprotocol_with_our_key);
  tcase_add_test(tc, a_right_answer_is_taken_in_any_pieces_and_the_rest_is_left);
  tcase_add_loop_test(tc, a_wrong_answer_is_refused_saying_why, 0,
                      (int)(sizeof refusals / sizeof refusals[0]));
  tcase_add_test(tc, an_endless_answer_is_refused_at_its_limit);
  tcase_add_test(tc, a_wrong_line_is_refused_when_it_comes);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
