/* WebSocket messages for XMPP (lib/transport/ws_codec.c): what a server
 * would see of our frames, and what we make of the server's, byte for byte
 * (RFC 6455 §5). The server's frames are built here by hand; ours are
 * unmasked and read back here by hand, so neither side trusts wslay. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "transport/ws_codec.h"
#include "xmppuv.h"

/* ---- the server's side, by hand ---------------------------------------- */

/* A server frame (never masked): FIN as given, opcode, payload. */
static void server_frame(xmppuv__buf_t *b, int fin, int opcode, const char *p, size_t n) {
  unsigned char h[10];
  size_t hl = 2;
  h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
  if (n < 126) {
    h[1] = (unsigned char)n;
  } else if (n < 65536) {
    h[1] = 126;
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    hl = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  ck_assert_int_eq(xmppuv__buf_append(b, h, hl), 0);
  if (n > 0) ck_assert_int_eq(xmppuv__buf_append(b, p, n), 0);
}

typedef struct {
  int fin, opcode, masked;
  char payload[4096];
  size_t len;
} frame_t;

/* Our frames, unmasked: how many were read into f. */
static size_t read_client_frames(const xmppuv__buf_t *b, frame_t *f, size_t max) {
  size_t at = 0, n = 0;
  const unsigned char *d = (const unsigned char *)b->data;
  while (at < b->len && n < max) {
    ck_assert_uint_ge(b->len - at, 2);
    f[n].fin = (d[at] & 0x80) != 0;
    f[n].opcode = d[at] & 0x0f;
    f[n].masked = (d[at + 1] & 0x80) != 0;
    uint64_t len = d[at + 1] & 0x7f;
    at += 2;
    if (len == 126) {
      len = ((uint64_t)d[at] << 8) | d[at + 1];
      at += 2;
    } else if (len == 127) {
      len = 0;
      for (size_t i = 0; i < 8; i++) len = (len << 8) | d[at + i];
      at += 8;
    }
    unsigned char key[4] = {0, 0, 0, 0};
    if (f[n].masked) {
      memcpy(key, d + at, 4);
      at += 4;
    }
    ck_assert_uint_le(len, sizeof f[n].payload);
    ck_assert_uint_ge(b->len - at, len);
    for (size_t i = 0; i < len; i++) f[n].payload[i] = (char)(d[at + i] ^ key[i % 4]);
    f[n].len = (size_t)len;
    at += (size_t)len;
    n++;
  }
  ck_assert_uint_eq(at, b->len);
  return n;
}

static int payload_is(const frame_t *f, const char *s) {
  return f->len == strlen(s) && memcmp(f->payload, s, f->len) == 0;
}

static uint16_t close_code_of(const frame_t *f) {
  ck_assert_int_eq(f->opcode, 8);
  ck_assert_uint_ge(f->len, 2);
  return (uint16_t)(((unsigned char)f->payload[0] << 8) | (unsigned char)f->payload[1]);
}

/* ---- what we send --------------------------------------------------------- */

START_TEST(each_top_level_element_is_one_masked_text_message) {
  xmppuv__ws_codec_t *c;
  ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  /* A '>' in an attribute value and in text, both quote styles, a
   * self-closing root, nested elements, whitespace between. */
  static const char xml[] =
      "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
      "<message to=\"a@b\" id='x>y'><body>1 &lt; 2 > 0</body><x a='/'/></message>\n "
      "<r xmlns='urn:xmpp:sm:3'/>";
  ck_assert_int_eq(xmppuv__ws_codec_write(c, xml, sizeof xml - 1, &out), 0);
  frame_t f[4];
  ck_assert_uint_eq(read_client_frames(&out, f, 4), 3);
  for (int i = 0; i < 3; i++) {
    ck_assert(f[i].fin);
    ck_assert_int_eq(f[i].opcode, 1);
    ck_assert(f[i].masked);
  }
  ck_assert(payload_is(&f[0],
                       "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' "
                       "version='1.0'/>"));
  /* The stanza gets the namespace the stream would have given it. */
  ck_assert(payload_is(&f[1],
                       "<message xmlns='jabber:client' to=\"a@b\" id='x>y'><body>1 &lt; 2 > "
                       "0</body><x a='/'/></message>"));
  ck_assert(payload_is(&f[2], "<r xmlns='urn:xmpp:sm:3'/>"));
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
}
END_TEST

/* The session writes whole elements; should one come in pieces, it still
 * goes out as one message, whatever the cut. */
START_TEST(an_element_cut_anywhere_is_still_one_message) {
  static const char xml[] = "<iq type='get' id='a\"b'><ping xmlns='urn:xmpp:ping'/></iq><a/>";
  size_t n = sizeof xml - 1;
  for (size_t cut = 0; cut <= n; cut++) {
    xmppuv__ws_codec_t *c;
    ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
    xmppuv__buf_t out = XMPPUV__BUF_INIT;
    ck_assert_int_eq(xmppuv__ws_codec_write(c, xml, cut, &out), 0);
    ck_assert_int_eq(xmppuv__ws_codec_write(c, xml + cut, n - cut, &out), 0);
    frame_t f[3];
    ck_assert_uint_eq(read_client_frames(&out, f, 3), 2);
    ck_assert(payload_is(&f[0], "<iq xmlns='jabber:client' type='get' id='a\"b'><ping "
                                "xmlns='urn:xmpp:ping'/></iq>"));
    ck_assert(payload_is(&f[1], "<a xmlns='jabber:client'/>"));
    xmppuv__buf_free(&out);
    xmppuv__ws_codec_free(c);
  }
}
END_TEST

/* Only a missing default namespace is added: a declared one, or a
 * "xmlns" that is only text in a value, is left as it is. */
START_TEST(a_namespace_is_added_only_where_none_is_declared) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"<presence/>", "<presence xmlns='jabber:client'/>"},
      {"<presence>\n</presence>", "<presence xmlns='jabber:client'>\n</presence>"},
      {"<iq xmlns='jabber:client' id='1'/>", "<iq xmlns='jabber:client' id='1'/>"},
      {"<r xmlns = \"urn:xmpp:sm:3\"/>", "<r xmlns = \"urn:xmpp:sm:3\"/>"},
      {"<message id=' xmlns=a'/>", "<message xmlns='jabber:client' id=' xmlns=a'/>"},
      {"<message xmlns:x='urn:x'/>", "<message xmlns='jabber:client' xmlns:x='urn:x'/>"},
      {"<message xmlnsx='1'/>", "<message xmlns='jabber:client' xmlnsx='1'/>"},
      /* The SM engine's own stream error and stream end, RFC 6120 style. */
      {"<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
       "</stream:error>",
       "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><undefined-condition "
       "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"},
      {"</stream:stream>", "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    xmppuv__ws_codec_t *c;
    ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
    xmppuv__buf_t out = XMPPUV__BUF_INIT;
    size_t n = strlen(cases[i].in);
    /* Whole, and cut after its third byte. */
    for (size_t cut = 0; cut < 2; cut++) {
      xmppuv__buf_clear(&out);
      size_t first = cut ? 3 : n;
      ck_assert_int_eq(xmppuv__ws_codec_write(c, cases[i].in, first, &out), 0);
      ck_assert_int_eq(xmppuv__ws_codec_write(c, cases[i].in + first, n - first, &out), 0);
      frame_t f[2];
      ck_assert_uint_eq(read_client_frames(&out, f, 2), 1);
      ck_assert_msg(payload_is(&f[0], cases[i].out), "%s -> %.*s", cases[i].in, (int)f[0].len,
                    f[0].payload);
    }
    xmppuv__buf_free(&out);
    xmppuv__ws_codec_free(c);
  }
}
END_TEST

START_TEST(text_outside_an_element_is_refused_and_whitespace_dropped) {
  xmppuv__ws_codec_t *c;
  ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  /* Whitespace alone (a TCP keepalive) is no message: Prosody closes on a
   * text frame that does not start with '<'. */
  ck_assert_int_eq(xmppuv__ws_codec_write(c, " \n", 2, &out), 0);
  ck_assert_uint_eq(out.len, 0);
  ck_assert_int_eq(xmppuv__ws_codec_write(c, "x<a/>", 5, &out), XMPPUV_EXML);
  xmppuv__ws_codec_free(c);
  ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
  ck_assert_int_eq(xmppuv__ws_codec_write(c, "</a>", 4, &out), XMPPUV_EXML);
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
}
END_TEST

START_TEST(masks_differ_from_frame_to_frame) {
  xmppuv__ws_codec_t *c;
  ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  /* 200 frames: the key pool (64 keys) is refilled on the way. */
  char keys[200][4];
  for (int i = 0; i < 200; i++) {
    xmppuv__buf_clear(&out);
    ck_assert_int_eq(xmppuv__ws_codec_write(c, "<a/>", 4, &out), 0);
    ck_assert_uint_eq(out.len, 2 + 4 + 26);
    memcpy(keys[i], out.data + 2, 4);
  }
  int same = 0;
  for (int i = 1; i < 200; i++) same += memcmp(keys[i], keys[i - 1], 4) == 0;
  ck_assert_int_eq(same, 0);
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
}
END_TEST

/* ---- what we read ------------------------------------------------------------ */

START_TEST(text_messages_come_out_whole_and_fragments_are_joined) {
  xmppuv__ws_codec_t *c;
  ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
  xmppuv__buf_t in = XMPPUV__BUF_INIT, msgs = XMPPUV__BUF_INIT, out = XMPPUV__BUF_INIT;
  server_frame(&in, 1, 1, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>", 51);
  /* A fragmented message with a ping between its fragments (§5.4). */
  server_frame(&in, 0, 1, "<message><bo", 12);
  server_frame(&in, 1, 9, "p", 1);
  server_frame(&in, 1, 0, "dy>é</body></message>", 22);
  /* Byte by byte: frames and their headers cut everywhere. */
  uint16_t code = 0;
  char why[200];
  for (size_t i = 0; i < in.len; i++)
    ck_assert_int_eq(xmppuv__ws_codec_read(c, in.data + i, 1, &msgs, &out, &code, why, sizeof why),
                     0);
  ck_assert_str_eq(msgs.data,
                   "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
                   "<message><body>é</body></message>");
  /* The ping was answered with a masked pong carrying its payload. */
  frame_t f[2];
  ck_assert_uint_eq(read_client_frames(&out, f, 2), 1);
  ck_assert_int_eq(f[0].opcode, 10);
  ck_assert(f[0].masked);
  ck_assert(payload_is(&f[0], "p"));
  xmppuv__buf_free(&in);
  xmppuv__buf_free(&msgs);
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
}
END_TEST

/* What a bad server sends, and the Close code we answer with. */
static const struct {
  const char *name;
  int fin, opcode, masked;
  const char *payload;
  size_t len; /* 0: strlen; (size_t)-1: over the limit */
  int rc;
  uint16_t code;
  const char *why;
} bad[] = {
    {"binary", 1, 2, 0, "<a/>", 0, XMPPUV_EPROTO, 1003, "binary"},
    {"too big", 1, 1, 0, NULL, (size_t)-1, XMPPUV_ELIMIT, 1009, "over 1000 bytes"},
    {"not utf-8", 1, 1, 0, "<a>\xff</a>", 0, XMPPUV_EPROTO, 1007, "not UTF-8"},
    {"masked", 1, 1, 1, "<a/>", 0, XMPPUV_EPROTO, 1002, "framing"},
    {"reserved opcode", 1, 3, 0, "<a/>", 0, XMPPUV_EPROTO, 1002, "framing"},
};

START_TEST(a_bad_frame_is_refused_with_its_close_code) {
  xmppuv__ws_codec_t *c;
  ck_assert_int_eq(xmppuv__ws_codec_new(1000, &c), 0);
  xmppuv__buf_t in = XMPPUV__BUF_INIT, msgs = XMPPUV__BUF_INIT, out = XMPPUV__BUF_INIT;
  server_frame(&in, 1, 1, "<a/>", 4);
  char big[1001];
  memset(big, 'x', sizeof big);
  big[0] = '<';
  const char *p = bad[_i].payload != NULL ? bad[_i].payload : big;
  size_t n = bad[_i].len == (size_t)-1 ? sizeof big : strlen(p);
  if (bad[_i].masked) {
    /* A masked frame with a zero key: the payload reads the same. */
    unsigned char h[6] = {(unsigned char)(0x80 | bad[_i].opcode), (unsigned char)(0x80 | n), 0,
                          0, 0, 0};
    ck_assert_int_eq(xmppuv__buf_append(&in, h, 6), 0);
    ck_assert_int_eq(xmppuv__buf_append(&in, p, n), 0);
  } else {
    server_frame(&in, bad[_i].fin, bad[_i].opcode, p, n);
  }
  server_frame(&in, 1, 1, "<after/>", 8);
  uint16_t code = 0;
  char why[200];
  int rc = xmppuv__ws_codec_read(c, in.data, in.len, &msgs, &out, &code, why, sizeof why);
  ck_assert_msg(rc == bad[_i].rc, "%s: rc %d", bad[_i].name, rc);
  ck_assert_uint_eq(code, bad[_i].code);
  ck_assert_msg(strstr(why, bad[_i].why) != NULL, "%s: %s", bad[_i].name, why);
  /* What came before is kept; nothing after the bad frame is read. */
  ck_assert_str_eq(msgs.data, "<a/>");
  frame_t f[2];
  ck_assert_uint_eq(read_client_frames(&out, f, 2), 1);
  ck_assert_uint_eq(close_code_of(&f[0]), bad[_i].code);
  ck_assert(xmppuv__ws_codec_close_sent(c));
  xmppuv__buf_clear(&out);
  ck_assert_int_eq(xmppuv__ws_codec_write(c, "<b/>", 4, &out), XMPPUV_ESTATE);
  xmppuv__buf_free(&in);
  xmppuv__buf_free(&msgs);
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
}
END_TEST

/* A server that closes in the middle of a stanza: the half never reaches
 * the session as a message, and the Close is answered. */
START_TEST(a_close_in_the_middle_of_a_message_ends_it_unread) {
  xmppuv__ws_codec_t *c;
  ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
  xmppuv__buf_t in = XMPPUV__BUF_INIT, msgs = XMPPUV__BUF_INIT, out = XMPPUV__BUF_INIT;
  server_frame(&in, 0, 1, "<message><body>half", 19);
  server_frame(&in, 1, 8, "\x03\xe9going", 7); /* 1001 going away */
  uint16_t code = 0;
  char why[200];
  int rc = xmppuv__ws_codec_read(c, in.data, in.len, &msgs, &out, &code, why, sizeof why);
  ck_assert_int_eq(rc, 1);
  ck_assert_uint_eq(code, 1001);
  ck_assert_uint_eq(msgs.len, 0);
  frame_t f[2];
  ck_assert_uint_eq(read_client_frames(&out, f, 2), 1);
  ck_assert_uint_eq(close_code_of(&f[0]), 1001);
  ck_assert(f[0].masked);
  ck_assert_str_eq(xmppuv__ws_close_name(code), "1001 (going away)");
  xmppuv__buf_free(&in);
  xmppuv__buf_free(&msgs);
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
}
END_TEST

START_TEST(our_close_goes_once_and_nothing_after_it) {
  xmppuv__ws_codec_t *c;
  ck_assert_int_eq(xmppuv__ws_codec_new(1 << 20, &c), 0);
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__ws_codec_ping(c, &out), 0);
  ck_assert_int_eq(xmppuv__ws_codec_close(c, XMPPUV__WS_NORMAL, &out), 0);
  ck_assert_int_eq(xmppuv__ws_codec_close(c, XMPPUV__WS_GOING_AWAY, &out), 0);
  frame_t f[3];
  ck_assert_uint_eq(read_client_frames(&out, f, 3), 2);
  ck_assert_int_eq(f[0].opcode, 9);
  ck_assert_uint_eq(close_code_of(&f[1]), 1000);
  ck_assert_int_eq(xmppuv__ws_codec_write(c, "<a/>", 4, &out), XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv__ws_codec_ping(c, &out), XMPPUV_ESTATE);
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("ws_codec");
  TCase *tc = tcase_create("send");
  tcase_add_test(tc, each_top_level_element_is_one_masked_text_message);
  tcase_add_test(tc, an_element_cut_anywhere_is_still_one_message);
  tcase_add_test(tc, a_namespace_is_added_only_where_none_is_declared);
  tcase_add_test(tc, text_outside_an_element_is_refused_and_whitespace_dropped);
  tcase_add_test(tc, masks_differ_from_frame_to_frame);
  suite_add_tcase(s, tc);
  tc = tcase_create("receive");
  tcase_add_test(tc, text_messages_come_out_whole_and_fragments_are_joined);
  tcase_add_loop_test(tc, a_bad_frame_is_refused_with_its_close_code, 0,
                      (int)(sizeof bad / sizeof bad[0]));
  tcase_add_test(tc, a_close_in_the_middle_of_a_message_ends_it_unread);
  tcase_add_test(tc, our_close_goes_once_and_nothing_after_it);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
