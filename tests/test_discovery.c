/* XEP-0156 connection discovery without I/O: the HTTP/1.1 response reader
 * and GET request (lib/transport/http.h), and the WebSocket link in a
 * host-meta document, JRD or XRD (lib/transport/hostmeta.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "failalloc.h"
#include "transport/hostmeta.h"
#include "transport/http.h"
#include "xmppuv.h"

#define BODY_MAX (64 * 1024)

/* Feed the response in pieces of `piece` bytes (0: whole); the result of the
 * last call made (feeding stops at the first non-zero one). */
static int feed(xmppuv__http_response_t *r, const char *data, size_t len, size_t piece, char *why,
                size_t why_size) {
  if (piece == 0) piece = len > 0 ? len : 1;
  int rc = 0;
  for (size_t off = 0; off < len && rc == 0; off += piece) {
    size_t n = len - off < piece ? len - off : piece;
    rc = xmppuv__http_response_feed(r, data + off, n, why, why_size);
  }
  return rc;
}

static int feed_str(xmppuv__http_response_t *r, const char *s, char *why, size_t why_size) {
  return feed(r, s, strlen(s), 0, why, why_size);
}

static const char *body_of(const xmppuv__http_response_t *r) {
  return xmppuv__http_response_body(r, NULL);
}

/* ---- HTTP responses --------------------------------------------------------- */

START_TEST(a_content_length_body_is_read_in_any_pieces) {
  const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/xrd+xml\r\n"
                      "Content-Length: 11\r\n\r\nhello worldTHE NEXT ANSWER";
  size_t total = strlen(resp) - strlen("THE NEXT ANSWER");
  for (size_t piece = 1; piece <= sizeof resp; piece++) {
    xmppuv__http_response_t r;
    xmppuv__http_response_init(&r, BODY_MAX);
    char why[200];
    int rc = 0;
    size_t off = 0;
    for (; off < sizeof resp - 1 && rc == 0; off += piece) {
      size_t n = sizeof resp - 1 - off < piece ? sizeof resp - 1 - off : piece;
      rc = xmppuv__http_response_feed(&r, resp + off, n, why, sizeof why);
      ck_assert_msg(rc == 0 || rc == 1, "piece %zu: %d %s", piece, rc, why);
      if (rc == 0) ck_assert_uint_lt(off + n, total);
    }
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_ge(off, total); /* complete on the body's last byte */
    ck_assert_uint_lt(off, total + piece);
    ck_assert_int_eq(xmppuv__http_response_status(&r), 200);
    ck_assert_str_eq(why, "");
    size_t len;
    ck_assert_str_eq(xmppuv__http_response_body(&r, &len), "hello world");
    ck_assert_uint_eq(len, 11);
    /* What comes after is ignored; the answer stays complete. */
    ck_assert_int_eq(xmppuv__http_response_feed(&r, "junk", 4, why, sizeof why), 1);
    ck_assert_int_eq(xmppuv__http_response_eof(&r, why, sizeof why), 1);
    ck_assert_str_eq(body_of(&r), "hello world");
    xmppuv__http_response_free(&r);
  }
}
END_TEST

#define CHUNKED                                                                     \
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"                           \
  "4;name=value\r\nWiki\r\n5\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n"            \
  "0\r\nExpires: never\r\n\r\n"
#define CHUNKED_BODY "Wikipedia in\r\n\r\nchunks."

static void check_chunked(const char *const *pieces, const size_t *lens, size_t n) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    rc = xmppuv__http_response_feed(&r, pieces[i], lens[i], why, sizeof why);
    ck_assert_int_eq(rc, i + 1 == n ? 1 : 0);
  }
  size_t len;
  ck_assert_str_eq(xmppuv__http_response_body(&r, &len), CHUNKED_BODY);
  ck_assert_uint_eq(len, strlen(CHUNKED_BODY));
  ck_assert_ptr_null(xmppuv__http_response_header(&r, "Expires", NULL)); /* a trailer */
  xmppuv__http_response_free(&r);
}

START_TEST(a_chunked_body_is_read_one_byte_at_a_time) {
  const char resp[] = CHUNKED;
  size_t n = sizeof resp - 1;
  const char **pieces = malloc(n * sizeof *pieces);
  size_t *lens = malloc(n * sizeof *lens);
  ck_assert(pieces != NULL && lens != NULL);
  for (size_t i = 0; i < n; i++) pieces[i] = resp + i, lens[i] = 1;
  check_chunked(pieces, lens, n);
  free(pieces);
  free(lens);
}
END_TEST

/* Every way to cut the answer in two or three pieces (empty pieces left
 * out): the framing does not depend on where reads end. */
START_TEST(a_chunked_body_is_read_in_every_chunking_of_two_and_three_pieces) {
  const char resp[] = CHUNKED;
  size_t n = sizeof resp - 1;
  for (size_t a = 1; a < n; a++) {
    const char *p2[2] = {resp, resp + a};
    size_t l2[2] = {a, n - a};
    check_chunked(p2, l2, 2);
    for (size_t b = a + 1; b < n; b++) {
      const char *p3[3] = {resp, resp + a, resp + b};
      size_t l3[3] = {a, b - a, n - b};
      check_chunked(p3, l3, 3);
    }
  }
}
END_TEST

START_TEST(chunked_wins_over_content_length) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  ck_assert_int_eq(feed_str(&r,
                            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                            "Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                            why, sizeof why),
                   1);
  ck_assert_str_eq(body_of(&r), "abc");
  xmppuv__http_response_free(&r);
}
END_TEST

START_TEST(a_body_without_length_ends_with_the_connection) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  ck_assert_int_eq(feed_str(&r, "HTTP/1.0 200 OK\r\nServer: old\r\n\r\n{\"links\"", why,
                            sizeof why),
                   0);
  ck_assert_int_eq(xmppuv__http_response_status(&r), 200);
  ck_assert_int_eq(feed_str(&r, ":[]}", why, sizeof why), 0);
  ck_assert_int_eq(xmppuv__http_response_eof(&r, why, sizeof why), 1);
  ck_assert_str_eq(body_of(&r), "{\"links\":[]}");
  ck_assert_int_eq(xmppuv__http_response_feed(&r, "x", 1, why, sizeof why), 1);
  xmppuv__http_response_free(&r);

  /* An empty one. */
  xmppuv__http_response_init(&r, BODY_MAX);
  ck_assert_int_eq(feed_str(&r, "HTTP/1.1 200 OK\r\n\r\n", why, sizeof why), 0);
  ck_assert_int_eq(xmppuv__http_response_eof(&r, why, sizeof why), 1);
  size_t len = 1;
  ck_assert_str_eq(xmppuv__http_response_body(&r, &len), "");
  ck_assert_uint_eq(len, 0);
  xmppuv__http_response_free(&r);
}
END_TEST

START_TEST(no_content_and_not_modified_have_no_body) {
  static const char *const answers[] = {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                                        "HTTP/1.1 304 Not Modified\r\n\r\n",
                                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"};
  for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
    xmppuv__http_response_t r;
    xmppuv__http_response_init(&r, BODY_MAX);
    char why[200];
    ck_assert_int_eq(feed_str(&r, answers[i], why, sizeof why), 1);
    ck_assert_str_eq(body_of(&r), "");
    xmppuv__http_response_free(&r);
  }
}
END_TEST

START_TEST(a_huge_content_length_is_refused_before_the_body) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, 1024 * 1024);
  char why[200];
  failalloc_install();
  int rc = feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n", why, sizeof why);
  ck_assert_int_eq(rc, XMPPUV_ETOOBIG);
  ck_assert_msg(strstr(why, "10485760") != NULL, "%s", why);
  ck_assert_int_eq(failalloc_count(), 0); /* nothing allocated for it */
  /* Refused for good, with the same words. */
  char again[200];
  ck_assert_int_eq(xmppuv__http_response_feed(&r, "abc", 3, again, sizeof again),
                   XMPPUV_ETOOBIG);
  ck_assert_str_eq(again, why);
  ck_assert_int_eq(xmppuv__http_response_eof(&r, again, sizeof again), XMPPUV_ETOOBIG);
  xmppuv__http_response_free(&r);
  failalloc_uninstall();

  /* One that overflows 64 bits, and a chunk that announces too much. */
  xmppuv__http_response_init(&r, 1024 * 1024);
  ck_assert_int_eq(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                            why, sizeof why),
                   XMPPUV_ETOOBIG);
  xmppuv__http_response_free(&r);
  xmppuv__http_response_init(&r, 1024 * 1024);
  ck_assert_int_eq(feed_str(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA00000", why,
                            sizeof why),
                   XMPPUV_ETOOBIG);
  ck_assert_str_eq(body_of(&r), "");
  xmppuv__http_response_free(&r);
}
END_TEST

/* 10 MB offered in 64 KB reads: refused soon after body_max, and the
 * memory it costs stays near body_max. */
static void endless_body(int chunked) {
  const size_t body_max = 1024 * 1024, read = 64 * 1024, total = 10 * 1024 * 1024;
  char *stream = malloc(total);
  ck_assert_ptr_nonnull(stream);
  const char *head = chunked ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             : "HTTP/1.1 200 OK\r\n\r\n";
  size_t off = strlen(head);
  memcpy(stream, head, off);
  while (off < total) {
    if (chunked) {
      /* 4000-byte chunks, so each read holds several chunk boundaries. */
      int n = snprintf(stream + off, total - off, "fa0\r\n");
      off += (size_t)n;
      for (size_t i = 0; i < 4000 && off < total; i++) stream[off++] = 'x';
      for (size_t i = 0; i < 2 && off < total; i++) stream[off++] = i == 0 ? '\r' : '\n';
    } else {
      stream[off++] = 'x';
    }
  }
  failalloc_install();
  failalloc_peak_reset();
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, body_max);
  char why[200];
  int rc = 0;
  size_t fed = 0;
  while (fed < total && rc == 0) {
    rc = xmppuv__http_response_feed(&r, stream + fed, read, why, sizeof why);
    fed += read;
  }
  ck_assert_int_eq(rc, XMPPUV_ETOOBIG);
  ck_assert_msg(fed <= body_max + 2 * read, "refused only after %zu bytes", fed);
  ck_assert_msg(failalloc_peak_growth() <= body_max + 4096, "%zu bytes at the peak",
                failalloc_peak_growth());
  ck_assert_ptr_nonnull(strstr(why, "over 1048576 bytes"));
  xmppuv__http_response_free(&r);
  ck_assert_int_eq(failalloc_live(), 0);
  failalloc_uninstall();
  free(stream);
}

START_TEST(a_chunked_body_growing_over_its_bound_is_refused_early) { endless_body(1); }
END_TEST

START_TEST(a_body_until_the_close_growing_over_its_bound_is_refused_early) { endless_body(0); }
END_TEST

START_TEST(an_error_status_is_complete_and_quoted) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  ck_assert_int_eq(
      feed_str(&r, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here!", why, sizeof why),
      1);
  ck_assert_int_eq(xmppuv__http_response_status(&r), 404);
  ck_assert_msg(strstr(why, "\"HTTP/1.1 404 Not Found\"") != NULL, "%s", why);
  ck_assert_str_eq(body_of(&r), "not here!");
  xmppuv__http_response_free(&r);

  /* Bytes that are not printable are made safe, a long reason is cut. */
  xmppuv__http_response_init(&r, BODY_MAX);
  char line[400];
  snprintf(line, sizeof line, "HTTP/1.1 500 Kaputt \xc3\xa4%0300d\r\nContent-Length: 0\r\n\r\n", 0);
  ck_assert_int_eq(feed_str(&r, line, why, sizeof why), 1);
  ck_assert_msg(strstr(why, "Kaputt \\xc3\\xa4000") != NULL, "%s", why);
  ck_assert_msg(strstr(why, "...\"") != NULL, "%s", why);
  ck_assert_uint_lt(strlen(why), sizeof why - 1);
  xmppuv__http_response_free(&r);
}
END_TEST

START_TEST(a_status_line_without_reason_is_taken) {
  static const char *const answers[] = {"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
                                        "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok",
                                        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"};
  for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
    xmppuv__http_response_t r;
    xmppuv__http_response_init(&r, BODY_MAX);
    char why[200];
    ck_assert_int_eq(feed_str(&r, answers[i], why, sizeof why), 1);
    ck_assert_int_eq(xmppuv__http_response_status(&r), 200);
    ck_assert_str_eq(body_of(&r), "ok");
    xmppuv__http_response_free(&r);
  }
}
END_TEST

START_TEST(interim_answers_are_skipped) {
  const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (size_t piece = 0; piece < 3; piece++) {
    xmppuv__http_response_t r;
    xmppuv__http_response_init(&r, BODY_MAX);
    char why[200];
    ck_assert_int_eq(feed(&r, resp, sizeof resp - 1, piece, why, sizeof why), 1);
    ck_assert_int_eq(xmppuv__http_response_status(&r), 200);
    ck_assert_ptr_null(xmppuv__http_response_header(&r, "Link", NULL));
    ck_assert_str_eq(xmppuv__http_response_header(&r, "content-length", NULL), "2");
    ck_assert_str_eq(body_of(&r), "ok");
    xmppuv__http_response_free(&r);
  }
}
END_TEST

START_TEST(endless_interim_answers_are_refused) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  int rc = 0;
  for (int i = 0; i < 1000 && rc == 0; i++)
    rc = feed_str(&r, "HTTP/1.1 100 Continue\r\n\r\n", why, sizeof why);
  ck_assert_int_eq(rc, XMPPUV_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(why, "over 8 KB"));
  xmppuv__http_response_free(&r);
}
END_TEST

/* Answers that are not HTTP/1.x, and words the sentence must hold. */
static const struct {
  const char *answer;
  const char *says;
} malformed[] = {
    {"SSH-2.0-OpenSSH_9.2\r\n", "did not answer in HTTP/1.1 (it said \"SSH-2.0-OpenSSH_9.2\")"},
    {"\x15\x03\x01\x00\x02\x02\x46", "did not answer in HTTP/1.1 (it said \"\\x15\\x03"},
    {"HTTP/2 200\r\n\r\n", "did not answer in HTTP/1.1"},
    {"HTTP/1.1\r\n\r\n", "status line is malformed"},
    {"HTTP/1.1 20 OK\r\n\r\n", "status line is malformed (\"HTTP/1.1 20 OK\")"},
    {"HTTP/1.1 2000 OK\r\n\r\n", "status line is malformed"},
    {"HTTP/1.1  200 OK\r\n\r\n", "status line is malformed"},
    {"HTTP/1.x 200 OK\r\n\r\n", "status line is malformed"},
    {"HTTP/1.1 600 Beyond\r\n\r\n", "status line is malformed"},
    {"HTTP/1.1 099 Below\r\n\r\n", "status line is malformed"},
    {"HTTP/1.1 2x0 OK\r\n\r\n", "status line is malformed"},
    {"HTTP/1.1 200 O\x01K\r\n\r\n", "control character in its status line"},
    {"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "bare LF"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", "bare LF"},
    {"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", "bare CR"},
    {"HTTP/1.1 200 OK\r\nServer: x\r\n folded\r\n\r\n", "folds a header line"},
    {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "no header field (\"no colon here\")"},
    {"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "no header field"},
    {"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "no header field"},
    {"HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", "control character in a header line"},
    {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "Content-Length is malformed (\"abc\")"},
    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length is malformed"},
    {"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", "Content-Length is malformed"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", "Content-Length is malformed"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     "Content-Length is malformed"},
    {"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "Content-Length is malformed"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     "transfer coding we did not ask for (Transfer-Encoding: \"gzip, chunked\")"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     "transfer coding"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "bad chunk size"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\n", "bad chunk size"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\n", "bad chunk size"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd", "not followed by CRLF"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n", "bad trailer line"},
};

START_TEST(malformed_answers_are_refused_saying_why) {
  const char *a = malformed[_i].answer;
  for (size_t piece = 0; piece < 2; piece++) {
    xmppuv__http_response_t r;
    xmppuv__http_response_init(&r, BODY_MAX);
    char why[300];
    int rc = feed(&r, a, strlen(a), piece, why, sizeof why);
    ck_assert_msg(rc == XMPPUV_EPROTO, "answer %d piece %zu: rc %d (%s)", _i, piece, rc, why);
    if (piece == 0)
      ck_assert_msg(strstr(why, malformed[_i].says) != NULL, "answer %d: \"%s\"", _i, why);
    else
      ck_assert_msg(why[0] != '\0', "answer %d: no words", _i);
    ck_assert_int_eq(xmppuv__http_response_eof(&r, why, sizeof why), XMPPUV_EPROTO);
    xmppuv__http_response_free(&r);
  }
}
END_TEST

START_TEST(a_binary_answer_is_refused_at_its_first_byte) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  ck_assert_int_eq(xmppuv__http_response_feed(&r, "\x16", 1, why, sizeof why), XMPPUV_EPROTO);
  ck_assert_ptr_nonnull(strstr(why, "(it said \"\\x16\")"));
  xmppuv__http_response_free(&r);
}
END_TEST

START_TEST(headers_are_found_without_regard_to_case) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  ck_assert_int_eq(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Type:   application/jrd+json \t\r\n",
                            why, sizeof why),
                   0);
  ck_assert_ptr_null(xmppuv__http_response_header(&r, "Content-Type", NULL)); /* not yet */
  ck_assert_int_eq(xmppuv__http_response_status(&r), 0);
  ck_assert_int_eq(feed_str(&r,
                            "X-Empty:\r\nx-twice: first\r\nX-TWICE: second\r\n"
                            "Content-Length: 0\r\n\r\n",
                            why, sizeof why),
                   1);
  size_t len = 0;
  ck_assert_str_eq(xmppuv__http_response_header(&r, "content-type", &len), "application/jrd+json");
  ck_assert_uint_eq(len, strlen("application/jrd+json"));
  ck_assert_str_eq(xmppuv__http_response_header(&r, "CONTENT-TYPE", NULL), "application/jrd+json");
  ck_assert_str_eq(xmppuv__http_response_header(&r, "X-Twice", NULL), "first");
  ck_assert_str_eq(xmppuv__http_response_header(&r, "x-empty", &len), "");
  ck_assert_uint_eq(len, 0);
  ck_assert_ptr_null(xmppuv__http_response_header(&r, "Content", NULL));
  ck_assert_ptr_null(xmppuv__http_response_header(&r, "Location", NULL));
  xmppuv__http_response_free(&r);
}
END_TEST

START_TEST(a_huge_head_is_refused_at_its_bound) {
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200], field[100];
  int rc = feed_str(&r, "HTTP/1.1 200 OK\r\n", why, sizeof why);
  memset(field, 'a', sizeof field);
  size_t fed = 17;
  for (; rc == 0 && fed < 100000; fed += sizeof field)
    rc = xmppuv__http_response_feed(&r, field, sizeof field, why, sizeof why);
  ck_assert_int_eq(rc, XMPPUV_ETOOBIG);
  ck_assert_uint_le(fed, XMPPUV__HTTP_HEAD_MAX + sizeof field);
  ck_assert_ptr_nonnull(strstr(why, "over 8 KB"));
  xmppuv__http_response_free(&r);

  /* Too many fields, each small. */
  xmppuv__http_response_init(&r, BODY_MAX);
  rc = feed_str(&r, "HTTP/1.1 200 OK\r\n", why, sizeof why);
  for (int i = 0; rc == 0 && i < 1000; i++) rc = feed_str(&r, "A: b\r\n", why, sizeof why);
  ck_assert_int_eq(rc, XMPPUV_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(why, "over 100 header fields"));
  xmppuv__http_response_free(&r);
}
END_TEST

START_TEST(a_close_in_the_middle_is_refused) {
  static const char *const partial[] = {
      "",
      "HTTP/1.1 200 OK\r\nContent-Len",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n",
      "HTTP/1.1 100 Continue\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++) {
    xmppuv__http_response_t r;
    xmppuv__http_response_init(&r, BODY_MAX);
    char why[200];
    ck_assert_int_eq(feed_str(&r, partial[i], why, sizeof why), 0);
    ck_assert_int_eq(xmppuv__http_response_eof(&r, why, sizeof why), XMPPUV_EPROTO);
    ck_assert_msg(strstr(why, i == 0 ? "without answering" : "in the middle of its answer") !=
                      NULL,
                  "%zu: %s", i, why);
    xmppuv__http_response_free(&r);
  }
}
END_TEST

START_TEST(the_request_is_exact_and_refuses_injection) {
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__http_get_request(&out, "example.org", "/.well-known/host-meta.json",
                                            "application/jrd+json"),
                   0);
  ck_assert_str_eq(out.data,
                   "GET /.well-known/host-meta.json HTTP/1.1\r\nHost: example.org\r\n"
                   "Accept: application/jrd+json\r\nConnection: close\r\n"
                   "User-Agent: xmppuv\r\n\r\n");
  size_t len = out.len;
  static const char *const bad[][3] = {
      {"example.org\r\nX-Evil: 1", "/", "*/*"},
      {"example.org", "/a\r\nX-Evil: 1", "*/*"},
      {"example.org", "/a b", "*/*"},
      {"example.org", "/", "a\nb"},
      {"example.org", "/", "a\rb"},
      {"exa mple.org", "/", "*/*"},
      {"example.org", "relative", "*/*"},
      {"", "/", "*/*"},
      {"example.org", "", "*/*"},
      {"example.org", "/", ""},
      {"example.org", "/\x7f", "*/*"},
      {"example.org", "/caf\xc3\xa9", "*/*"},
      {"example.org", "/", "a\tb"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(xmppuv__http_get_request(&out, bad[i][0], bad[i][1], bad[i][2]) ==
                      XMPPUV_EINVAL,
                  "%zu", i);
    ck_assert_uint_eq(out.len, len); /* nothing appended */
  }
  /* A port and a list of types are the caller's to give. */
  xmppuv__buf_clear(&out);
  ck_assert_int_eq(xmppuv__http_get_request(&out, "[::1]:5443", "/.well-known/host-meta",
                                            "application/xrd+xml, application/xml;q=0.9"),
                   0);
  ck_assert_ptr_nonnull(strstr(out.data, "Host: [::1]:5443\r\n"));
  ck_assert_ptr_nonnull(strstr(out.data, "Accept: application/xrd+xml, application/xml;q=0.9\r\n"));
  xmppuv__buf_free(&out);
}
END_TEST

/* ---- host-meta ---------------------------------------------------------------- */

#define WSS "urn:xmpp:alt-connections:websocket"
#define BOSH "urn:xmpp:alt-connections:xbosh"
#define XRD_OPEN "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>"

static int websocket(const char *doc, int json, int allow_ws, char *url, size_t url_size,
                     char *why, size_t why_size) {
  return xmppuv__hostmeta_websocket(doc, strlen(doc), json, allow_ws, url, url_size, why,
                                    why_size);
}

static void expect_url(const char *doc, int json, int allow_ws, const char *want) {
  char url[512], why[300];
  int rc = websocket(doc, json, allow_ws, url, sizeof url, why, sizeof why);
  ck_assert_msg(rc == 0, "rc %d: %s\n%s", rc, why, doc);
  ck_assert_str_eq(url, want);
  ck_assert_str_eq(why, "");
}

static void expect_refusal(const char *doc, int json, int allow_ws, int want_rc,
                           const char *says) {
  char url[512], why[300];
  int rc = websocket(doc, json, allow_ws, url, sizeof url, why, sizeof why);
  ck_assert_msg(rc == want_rc, "rc %d, not %d: %s\n%s", rc, want_rc, why, doc);
  ck_assert_msg(strstr(why, says) != NULL, "\"%s\" does not say \"%s\"\n%s", why, says, doc);
  ck_assert_str_eq(url, "");
}

/* XEP-0156 §3.3, Example 1, as printed ("..." is text in XRD). */
START_TEST(the_xep_0156_xrd_example) {
  expect_url("<?xml version='1.0' encoding='utf-8'?>\n"
             "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
             "  ...\n"
             "  <Link rel=\"urn:xmpp:alt-connections:xbosh\"\n"
             "        href=\"https://web.example.com:5280/bosh\" />\n"
             "  <Link rel=\"urn:xmpp:alt-connections:websocket\"\n"
             "        href=\"wss://web.example.com:443/ws\" />\n"
             "  ...\n"
             "</XRD>\n",
             0, 0, "wss://web.example.com:443/ws");
}
END_TEST

/* XEP-0156 §3.3, Example 2 (its "..." left out: they are not JSON). */
START_TEST(the_xep_0156_jrd_example) {
  expect_url("{\n"
             "  \"links\": [\n"
             "    {\n"
             "      \"rel\": \"urn:xmpp:alt-connections:xbosh\",\n"
             "      \"href\": \"https://web.example.com:5280/bosh\"\n"
             "    },\n"
             "    {\n"
             "      \"rel\": \"urn:xmpp:alt-connections:websocket\",\n"
             "      \"href\": \"wss://web.example.com:443/ws\"\n"
             "    }\n"
             "  ]\n"
             "}\n",
             1, 0, "wss://web.example.com:443/ws");
}
END_TEST

/* What ejabberd (mod_host_meta) and Prosody (mod_http_altconnect) serve. */
START_TEST(ejabberd_and_prosody_documents) {
  expect_url("<?xml version='1.0' encoding='utf-8'?><XRD "
             "xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'><Link "
             "rel='urn:xmpp:alt-connections:websocket' href='wss://localhost:5443/ws'/></XRD>",
             0, 0, "wss://localhost:5443/ws");
  expect_url("{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"wss://"
             "localhost:5443/ws\"}]}",
             1, 0, "wss://localhost:5443/ws");
  expect_url("{\"links\":[{\"rel\":\"" BOSH "\",\"href\":\"https://example.com:5281/http-bind\"},"
             "{\"rel\":\"" WSS "\",\"href\":\"wss://example.com:5281/xmpp-websocket\"}]}",
             1, 0, "wss://example.com:5281/xmpp-websocket");
  expect_url("<?xml version='1.0' encoding='utf-8'?>" XRD_OPEN "<Link rel='" BOSH
             "' href='https://example.com:5281/http-bind'/><Link rel='" WSS
             "' href='wss://example.com:5281/xmpp-websocket'/></XRD>",
             0, 0, "wss://example.com:5281/xmpp-websocket");
}
END_TEST

START_TEST(plaintext_links_are_refused_unless_allowed) {
  const char *jrd = "{\"links\":[{\"rel\":\"" WSS "\",\"href\":\"ws://example.com:5280/ws\"}]}";
  const char *xrd = XRD_OPEN "<Link rel='" WSS "' href='ws://example.com:5280/ws'/></XRD>";
  expect_refusal(jrd, 1, 0, XMPPUV_ENOTFOUND,
                 "the host-meta offers only ws:// (plaintext) WebSocket links, refused");
  expect_refusal(xrd, 0, 0, XMPPUV_ENOTFOUND,
                 "the host-meta offers only ws:// (plaintext) WebSocket links, refused");
  expect_url(jrd, 1, 1, "ws://example.com:5280/ws");
  expect_url(xrd, 0, 1, "ws://example.com:5280/ws");
}
END_TEST

START_TEST(wss_is_preferred_wherever_it_comes) {
  expect_url("{\"links\":[{\"rel\":\"" WSS "\",\"href\":\"ws://a.example/ws\"},"
             "{\"rel\":\"" WSS "\",\"href\":\"wss://b.example/ws\"},"
             "{\"rel\":\"" WSS "\",\"href\":\"wss://c.example/ws\"}]}",
             1, 1, "wss://b.example/ws");
  expect_url(XRD_OPEN "<Link rel='" WSS "' href='ws://a.example/ws'/><Link rel='" WSS
                      "' href='wss://b.example/ws'/></XRD>",
             0, 1, "wss://b.example/ws");
  /* The scheme's case does not matter; it comes back in lower case. */
  expect_url(XRD_OPEN "<Link rel='" WSS "' href='WSS://Example.COM/ws'/></XRD>", 0, 0,
             "wss://Example.COM/ws");
}
END_TEST

START_TEST(other_links_are_ignored) {
  /* BOSH only. */
  expect_refusal("{\"links\":[{\"rel\":\"" BOSH "\",\"href\":\"https://example.com/bosh\"}]}", 1, 0,
                 XMPPUV_ENOTFOUND, "no WebSocket link");
  expect_refusal(XRD_OPEN "<Link rel='" BOSH "' href='https://example.com/bosh'/></XRD>", 0, 0,
                 XMPPUV_ENOTFOUND, "no WebSocket link");
  /* A WebSocket rel with an https:// href, or with no URL at all. */
  expect_refusal("{\"links\":[{\"rel\":\"" WSS "\",\"href\":\"https://example.com/ws\"},"
                 "{\"rel\":\"" WSS "\",\"href\":\"wss://exa mple.com/\"}]}",
                 1, 1, XMPPUV_ENOTFOUND, "are not wss:// URLs");
  /* Nothing at all. */
  expect_refusal("{}", 1, 0, XMPPUV_ENOTFOUND, "no WebSocket link");
  expect_refusal(XRD_OPEN "</XRD>", 0, 0, XMPPUV_ENOTFOUND, "no WebSocket link");
  /* Links without rel or href, non-string ones, non-object elements,
   * unknown members, and "links" below the top level. */
  expect_url("{\"subject\":\"acct:x@example.com\",\"properties\":{\"links\":[{\"rel\":\"" WSS
             "\",\"href\":\"wss://nested.example/\"}]},\"links\":[1,null,\"x\",[],"
             "{\"rel\":\"" WSS "\"},{\"href\":\"wss://norel.example/\"},"
             "{\"rel\":\"" WSS "\",\"href\":42},{\"rel\":[\"" WSS "\"],\"href\":\"wss://arr/\"},"
             "{\"titles\":{\"en\":\"x\"},\"rel\":\"" WSS "\",\"type\":null,"
             "\"href\":\"wss://right.example/ws\",\"n\":-1.5e+3}]}",
             1, 0, "wss://right.example/ws");
  /* Link elements in another namespace, deeper, or without the rel. */
  expect_url(XRD_OPEN "<Link xmlns='urn:other' rel='" WSS "' href='wss://other.example/'/>"
                      "<Property><Link rel='" WSS "' href='wss://deep.example/'/></Property>"
                      "<Link href='wss://norel.example/'/>"
                      "<Link xmlns:x='urn:x' x:rel='" WSS "' href='wss://xrel.example/'/>"
                      "<Link rel='" WSS "' href='wss://right.example/ws'/></XRD>",
             0, 0, "wss://right.example/ws");
  /* The namespace is what counts, not the prefix. */
  expect_url("<x:XRD xmlns:x='http://docs.oasis-open.org/ns/xri/xrd-1.0'><x:Link rel='" WSS
             "' href='wss://prefixed.example/'/></x:XRD>",
             0, 0, "wss://prefixed.example/");
}
END_TEST

START_TEST(escaped_strings_are_decoded) {
  expect_url("{\"links\":[{\"r\\u0065l\":\"urn:xmpp:alt-connections:websocke\\u0074\","
             "\"href\":\"wss:\\/\\/example.com\\/ws?q=\\u00e9\\ud83d\\ude00\"}]}",
             1, 0, "wss://example.com/ws?q=\xc3\xa9\xf0\x9f\x98\x80");
  expect_url("{\"x\":\"\\\"\\\\\\b\\f\\n\\r\\t\",\"links\":[{\"rel\":\"" WSS
             "\",\"href\":\"wss://example.com/\xe2\x82\xac\"}]}",
             1, 0, "wss://example.com/\xe2\x82\xac");
  expect_url(XRD_OPEN "<Link rel='urn:xmpp:alt-connections:&#x77;ebsocket' "
                      "href='wss://example.com/a&amp;b'/></XRD>",
             0, 0, "wss://example.com/a&b");
  /* An href with a NUL or a control character in it is no URL. */
  expect_refusal("{\"links\":[{\"rel\":\"" WSS "\",\"href\":\"wss://a\\u0000b/\"}]}", 1, 0,
                 XMPPUV_ENOTFOUND, "not wss:// URLs");
  /* A UTF-8 byte order mark is allowed before the JSON. */
  expect_url("\xef\xbb\xbf{\"links\":[{\"rel\":\"" WSS "\",\"href\":\"wss://bom/\"}]}", 1, 0,
             "wss://bom/");
}
END_TEST

static const char *const bad_json[] = {
    "",
    "   ",
    "[]",
    "\"links\"",
    "{",
    "{\"links\"",
    "{\"links\":",
    "{\"links\":[",
    "{\"links\":[}",
    "{\"links\":[{\"rel\":\"a\",}]}",
    "{\"links\":[1,]}",
    "{'links':[]}",
    "{links:[]}",
    "{\"links\":[]} x",
    "{\"links\":[]}{}",
    "{\"a\":01}",
    "{\"a\":1.}",
    "{\"a\":-}",
    "{\"a\":.5}",
    "{\"a\":1e}",
    "{\"a\":+1}",
    "{\"a\":tru}",
    "{\"a\":nul}",
    "{\"a\":True}",
    "{\"a\":\"line\nbreak\"}",
    "{\"a\":\"tab\there\"}",
    "{\"a\":\"\xff\"}",
    "{\"a\":\"\xc0\xaf\"}",
    "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\\x41\"}",
    "{\"a\":\"\\u12\"}",
    "{\"a\":\"\\ud800\"}",
    "{\"a\":\"\\ud800\\u0041\"}",
    "{\"a\":\"\\udc00\"}",
    "{\"a\":\"open}",
    "{\"a\" 1}",
    "{\"a\":1 \"b\":2}",
    "{\"links\":{}}",
    "{\"links\":\"wss://x/\"}",
    "{\"a\":[1 2]}",
    "\xef\xbb{}",
};

START_TEST(malformed_json_is_refused) {
  char url[100], why[300];
  const char *doc = bad_json[_i];
  int rc = websocket(doc, 1, 1, url, sizeof url, why, sizeof why);
  ck_assert_msg(rc == XMPPUV_EPROTO, "%d: rc %d (%s)", _i, rc, why);
  ck_assert_msg(strstr(why, "the host-meta") != NULL, "%d: %s", _i, why);
  ck_assert_str_eq(url, "");
}
END_TEST

static const char *const bad_xml[] = {
    "",
    "not xml",
    "{\"links\":[]}",
    XRD_OPEN "<Link rel='x' href='y'></XRD>",
    XRD_OPEN "</XRD><more/>",
    XRD_OPEN "&undefined;</XRD>",
    "<XRD><Link rel='" WSS "' href='wss://no-namespace/'/></XRD>",
    "<xrd xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'/>",
    "<JRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'/>",
    "<XRD xmlns='http://example.com/'/>",
    "<x:XRD xmlns:y='http://docs.oasis-open.org/ns/xri/xrd-1.0'/>",
};

START_TEST(malformed_xml_is_refused) {
  char url[100], why[300];
  const char *doc = bad_xml[_i];
  int rc = websocket(doc, 0, 1, url, sizeof url, why, sizeof why);
  ck_assert_msg(rc == XMPPUV_EPROTO, "%d: rc %d (%s)", _i, rc, why);
  ck_assert_msg(strstr(why, "the host-meta") != NULL, "%d: %s", _i, why);
  ck_assert_str_eq(url, "");
}
END_TEST

START_TEST(a_dtd_or_an_entity_is_refused) {
  expect_refusal("<?xml version='1.0'?><!DOCTYPE XRD [<!ENTITY ws 'wss://evil.example/'>]>" XRD_OPEN
                 "<Link rel='" WSS "' href='&ws;'/></XRD>",
                 0, 0, XMPPUV_EPROTO, "DTD (refused)");
  expect_refusal("<!DOCTYPE XRD SYSTEM 'http://evil.example/xrd.dtd'>" XRD_OPEN "</XRD>", 0, 0,
                 XMPPUV_EPROTO, "DTD (refused)");
  /* Billion laughs. */
  expect_refusal("<!DOCTYPE l [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
                 "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'>]>" XRD_OPEN "<Link rel='" WSS
                 "' href='&c;'/></XRD>",
                 0, 0, XMPPUV_EPROTO, "(refused)");
  /* Comments and processing instructions are harmless here. */
  expect_url("<?xml version='1.0'?><!-- host-meta -->" XRD_OPEN "<?pi x?><Link rel='" WSS
             "' href='wss://example.com/ws'/><!-- end --></XRD>",
             0, 0, "wss://example.com/ws");
}
END_TEST

START_TEST(a_too_long_href_is_refused) {
  char doc[1200], url[65], why[300];
  char href[200];
  memset(href, 'a', sizeof href);
  memcpy(href, "wss://", 6);
  /* 64 bytes fit in 65. */
  snprintf(doc, sizeof doc, "{\"links\":[{\"rel\":\"" WSS "\",\"href\":\"%.64s\"}]}", href);
  ck_assert_int_eq(websocket(doc, 1, 0, url, sizeof url, why, sizeof why), 0);
  ck_assert_uint_eq(strlen(url), 64);
  snprintf(doc, sizeof doc, "{\"links\":[{\"rel\":\"" WSS "\",\"href\":\"%.65s\"}]}", href);
  ck_assert_int_eq(websocket(doc, 1, 0, url, sizeof url, why, sizeof why), XMPPUV_ETOOBIG);
  ck_assert_str_eq(url, "");
  ck_assert_ptr_nonnull(strstr(why, "65 bytes long"));
  snprintf(doc, sizeof doc, XRD_OPEN "<Link rel='" WSS "' href='%.200s'/></XRD>", href);
  ck_assert_int_eq(websocket(doc, 0, 0, url, sizeof url, why, sizeof why), XMPPUV_ETOOBIG);
  ck_assert_int_eq(websocket(doc, 0, 0, url, 0, why, sizeof why), XMPPUV_ETOOBIG);
}
END_TEST

static char *nested(const char *open, const char *middle, const char *close, int depth) {
  size_t lo = strlen(open), lm = strlen(middle), lc = strlen(close);
  char *s = malloc((lo + lc) * (size_t)depth + lm + 1), *p = s;
  ck_assert_ptr_nonnull(s);
  for (int i = 0; i < depth; i++, p += lo) memcpy(p, open, lo);
  memcpy(p, middle, lm);
  p += lm;
  for (int i = 0; i < depth; i++, p += lc) memcpy(p, close, lc);
  *p = '\0';
  return s;
}

START_TEST(deep_nesting_is_refused) {
  char url[100], why[300];
  /* The top object is depth 1: 31 arrays in it are the most. */
  char *inner = nested("[", "0", "]", 31);
  char doc[200];
  snprintf(doc, sizeof doc, "{\"x\":%s,\"links\":[]}", inner);
  ck_assert_int_eq(websocket(doc, 1, 0, url, sizeof url, why, sizeof why), XMPPUV_ENOTFOUND);
  free(inner);
  inner = nested("[", "0", "]", 32);
  snprintf(doc, sizeof doc, "{\"x\":%s,\"links\":[]}", inner);
  ck_assert_int_eq(websocket(doc, 1, 0, url, sizeof url, why, sizeof why), XMPPUV_EPROTO);
  ck_assert_ptr_nonnull(strstr(why, "over 32 deep"));
  free(inner);
  /* Far deeper than any stack would take if we recursed blindly. */
  inner = nested("{\"a\":[", "0", "]}", 500000);
  ck_assert_int_eq(websocket(inner, 1, 0, url, sizeof url, why, sizeof why), XMPPUV_EPROTO);
  ck_assert_ptr_nonnull(strstr(why, "over 32 deep"));
  free(inner);
  /* XML too. */
  inner = nested("<a>", "", "</a>", 40);
  char *xml = malloc(strlen(inner) + 200);
  ck_assert_ptr_nonnull(xml);
  sprintf(xml, XRD_OPEN "%s</XRD>", inner);
  ck_assert_int_eq(websocket(xml, 0, 0, url, sizeof url, why, sizeof why), XMPPUV_EPROTO);
  ck_assert_ptr_nonnull(strstr(why, "over 32 deep"));
  free(xml);
  free(inner);
}
END_TEST

/* The two together, as discovery will use them: a chunked JRD answer read a
 * byte at a time. */
START_TEST(a_chunked_jrd_answer_gives_the_websocket_url) {
  const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Access-Control-Allow-Origin: *\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "19\r\n{\"links\":[{\"rel\":\"urn:xmp\r\n"
                      "3d\r\np:alt-connections:websocket\",\"href\":\"wss://example.net/ws\"}]}\r\n"
                      "0\r\n\r\n";
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200], url[100];
  ck_assert_int_eq(feed(&r, resp, sizeof resp - 1, 1, why, sizeof why), 1);
  size_t len;
  const char *body = xmppuv__http_response_body(&r, &len);
  ck_assert_int_eq(xmppuv__hostmeta_websocket(body, len, 1, 0, url, sizeof url, why, sizeof why),
                   0);
  ck_assert_str_eq(url, "wss://example.net/ws");
  xmppuv__http_response_free(&r);
}
END_TEST

/* ---- out of memory ------------------------------------------------------------ */

static int hostmeta_scenario(void *ud) {
  int json = *(int *)ud;
  const char *doc =
      json ? "{\"links\":[{\"rel\":\"" BOSH "\",\"href\":\"https://x/\"},{\"rel\":\"" WSS
             "\",\"href\":\"wss://example.com/ws\"}]}"
           : XRD_OPEN "<Link rel='" BOSH "' href='https://x/'/><Link rel='" WSS
                      "' href='wss://example.com/ws'/></XRD>";
  char url[100], why[200];
  int rc = websocket(doc, json, 0, url, sizeof url, why, sizeof why);
  if (rc == 0) ck_assert_str_eq(url, "wss://example.com/ws");
  else ck_assert_msg(rc == XMPPUV_ENOMEM && strstr(why, "out of memory") != NULL, "%d %s", rc,
                     why);
  return rc;
}

static int http_scenario(void *ud) {
  (void)ud;
  xmppuv__http_response_t r;
  xmppuv__http_response_init(&r, BODY_MAX);
  char why[200];
  int rc = feed(&r, CHUNKED, strlen(CHUNKED), 7, why, sizeof why);
  if (rc == 1) ck_assert_str_eq(body_of(&r), CHUNKED_BODY);
  else ck_assert_int_eq(rc, XMPPUV_ENOMEM);
  xmppuv__http_response_free(&r);
  return rc == 1 ? 0 : rc;
}

START_TEST(out_of_memory_is_reported_and_leaks_nothing) {
  int json = 1;
  ck_assert_int_gt(failalloc_sweep(hostmeta_scenario, &json), 1);
  json = 0;
  ck_assert_int_gt(failalloc_sweep(hostmeta_scenario, &json), 1);
  ck_assert_int_gt(failalloc_sweep(http_scenario, NULL), 0);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("discovery");
  TCase *tc = tcase_create("http");
  tcase_add_test(tc, a_content_length_body_is_read_in_any_pieces);
  tcase_add_test(tc, a_chunked_body_is_read_one_byte_at_a_time);
  tcase_add_test(tc, a_chunked_body_is_read_in_every_chunking_of_two_and_three_pieces);
  tcase_add_test(tc, chunked_wins_over_content_length);
  tcase_add_test(tc, a_body_without_length_ends_with_the_connection);
  tcase_add_test(tc, no_content_and_not_modified_have_no_body);
  tcase_add_test(tc, a_huge_content_length_is_refused_before_the_body);
  tcase_add_test(tc, a_chunked_body_growing_over_its_bound_is_refused_early);
  tcase_add_test(tc, a_body_until_the_close_growing_over_its_bound_is_refused_early);
  tcase_add_test(tc, an_error_status_is_complete_and_quoted);
  tcase_add_test(tc, a_status_line_without_reason_is_taken);
  tcase_add_test(tc, interim_answers_are_skipped);
  tcase_add_test(tc, endless_interim_answers_are_refused);
  tcase_add_loop_test(tc, malformed_answers_are_refused_saying_why, 0,
                      (int)(sizeof malformed / sizeof malformed[0]));
  tcase_add_test(tc, a_binary_answer_is_refused_at_its_first_byte);
  tcase_add_test(tc, headers_are_found_without_regard_to_case);
  tcase_add_test(tc, a_huge_head_is_refused_at_its_bound);
  tcase_add_test(tc, a_close_in_the_middle_is_refused);
  tcase_add_test(tc, the_request_is_exact_and_refuses_injection);
  suite_add_tcase(s, tc);
  tc = tcase_create("hostmeta");
  tcase_add_test(tc, the_xep_0156_xrd_example);
  tcase_add_test(tc, the_xep_0156_jrd_example);
  tcase_add_test(tc, ejabberd_and_prosody_documents);
  tcase_add_test(tc, plaintext_links_are_refused_unless_allowed);
  tcase_add_test(tc, wss_is_preferred_wherever_it_comes);
  tcase_add_test(tc, other_links_are_ignored);
  tcase_add_test(tc, escaped_strings_are_decoded);
  tcase_add_loop_test(tc, malformed_json_is_refused, 0,
                      (int)(sizeof bad_json / sizeof bad_json[0]));
  tcase_add_loop_test(tc, malformed_xml_is_refused, 0, (int)(sizeof bad_xml / sizeof bad_xml[0]));
  tcase_add_test(tc, a_dtd_or_an_entity_is_refused);
  tcase_add_test(tc, a_too_long_href_is_refused);
  tcase_add_test(tc, deep_nesting_is_refused);
  tcase_add_test(tc, a_chunked_jrd_answer_gives_the_websocket_url);
  tcase_add_test(tc, out_of_memory_is_reported_and_leaks_nothing);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
