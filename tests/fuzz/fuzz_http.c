/* Fuzz target: XEP-0156 discovery without I/O: the HTTP/1.1 response reader
 * (lib/transport/http.c) and the WebSocket link in a host-meta document,
 * JRD and XRD (lib/transport/hostmeta.c). Both read what a web server
 * sends.
 *
 * Input: 2 header bytes, then bytes.
 *   byte 0: bits 0-1 the chunking style (fuzz_input.h fz_chunk); bit 2
 *     allow_ws; bit 3 the connection closes after the bytes (eof); bit 4
 *     the bytes are a host-meta document, not an HTTP answer; bits 5-7
 *     body_max = 16 << (2 * k) (16 B .. 256 KB).
 *   byte 1: the seed of the chunk sizes; bit 7 set: a small url buffer
 *     (16 + (byte & 31) bytes), else 256.
 * The HTTP answer is fed in pieces, and again whole to a second reader.
 * Checked: the outcome (result, status, body) does not depend on the
 * pieces; results are only those documented; every refusal has words and
 * stays (the same code and words after it); a complete answer stays
 * complete; the body is within body_max and NUL-terminated; a non-2xx
 * answer's words quote its status line. Then the body (or the document)
 * goes to host-meta as JRD and as XRD: results are only those documented,
 * a URL found is wss:// (or ws:// if allowed), fits, has no control
 * character or space, and an error leaves url "" with words. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "transport/hostmeta.h"
#include "transport/http.h"
#include "xmppuv.h"

static void check_why(const char *why, size_t size) {
  FZ_CHECK(memchr(why, '\0', size) != NULL, "why not terminated");
}

static void hostmeta(const char *doc, size_t len, int json, int allow_ws, size_t url_size) {
  char url[256], why[256];
  memset(url, 'u', sizeof url);
  int rc = xmppuv__hostmeta_websocket(doc, len, json, allow_ws, url, url_size, why, sizeof why);
  check_why(why, sizeof why);
  FZ_CHECK(rc == 0 || rc == XMPPUV_ENOTFOUND || rc == XMPPUV_EPROTO || rc == XMPPUV_ETOOBIG ||
               rc == XMPPUV_ENOMEM,
           "hostmeta rc %d", rc);
  if (rc != 0) {
    FZ_CHECK(url[0] == '\0', "url left after an error");
    FZ_CHECK(why[0] != '\0', "an error without words");
    return;
  }
  size_t n = strnlen(url, url_size);
  FZ_CHECK(n < url_size, "url not terminated");
  FZ_CHECK(strncmp(url, "wss://", 6) == 0 || (allow_ws && strncmp(url, "ws://", 5) == 0),
           "url \"%s\" allow_ws %d", url, allow_ws);
  for (size_t i = 0; i < n; i++)
    FZ_CHECK((unsigned char)url[i] > ' ' && url[i] != 0x7f, "a control character in the url");
  FZ_CHECK(why[0] == '\0', "words with success");
  /* The document is ours to decide on: the same answer twice. */
  char again[256];
  FZ_CHECK(xmppuv__hostmeta_websocket(doc, len, json, allow_ws, again, url_size, why,
                                      sizeof why) == 0 &&
               strcmp(url, again) == 0,
           "not deterministic");
}

/* Feed everything in pieces (or whole); the result at the end, and the
 * byte count taken when the answer ended. */
static int read_answer(xmppuv__http_response_t *r, const uint8_t *data, size_t size,
                       unsigned style, uint32_t seed, int eof) {
  fz_rng_t rng;
  fz_rng_seed(&rng, seed);
  char why[256];
  int rc = 0, ended = 0;
  char first_why[256] = "";
  for (size_t off = 0; off < size;) {
    size_t n = fz_chunk(&rng, style, size - off);
    rc = xmppuv__http_response_feed(r, (const char *)data + off, n, why, sizeof why);
    check_why(why, sizeof why);
    FZ_CHECK(rc == 0 || rc == 1 || rc == XMPPUV_EPROTO || rc == XMPPUV_ETOOBIG ||
                 rc == XMPPUV_ENOMEM,
             "feed rc %d", rc);
    if (ended < 0) FZ_CHECK(rc == ended && strcmp(why, first_why) == 0, "a refusal changed");
    if (ended == 1) FZ_CHECK(rc == 1, "a complete answer changed: %d", rc);
    if (rc < 0) {
      FZ_CHECK(why[0] != '\0', "a refusal without words");
      if (ended == 0) memcpy(first_why, why, sizeof why);
      ended = rc;
    } else if (rc == 1) {
      ended = 1;
    }
    off += n;
  }
  if (eof) {
    int e = xmppuv__http_response_eof(r, why, sizeof why);
    check_why(why, sizeof why);
    FZ_CHECK(e == 1 || e == XMPPUV_EPROTO || e == XMPPUV_ETOOBIG || e == XMPPUV_ENOMEM,
             "eof rc %d", e);
    if (ended < 0) FZ_CHECK(e == ended, "eof changed a refusal");
    if (ended == 1) FZ_CHECK(e == 1, "eof changed a complete answer");
    if (ended == 0 && e < 0) FZ_CHECK(e == XMPPUV_EPROTO && why[0] != '\0', "eof refusal");
    rc = e;
  }
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t mode = data[0], b1 = data[1];
  data += 2, size -= 2;
  unsigned style = mode & 3u;
  int allow_ws = (mode >> 2) & 1, eof = (mode >> 3) & 1, doc_only = (mode >> 4) & 1;
  size_t body_max = (size_t)16 << (2 * (mode >> 5));
  size_t url_size = (b1 & 0x80) ? 16 + (b1 & 31u) : 256;

  if (doc_only) {
    hostmeta((const char *)data, size, 1, allow_ws, url_size);
    hostmeta((const char *)data, size, 0, allow_ws, url_size);
    return 0;
  }

  xmppuv__http_response_t *r = malloc(sizeof *r), *whole = malloc(sizeof *whole);
  if (r == NULL || whole == NULL) {
    free(r);
    free(whole);
    return 0;
  }
  xmppuv__http_response_init(r, body_max);
  xmppuv__http_response_init(whole, body_max);
  int rc = read_answer(r, data, size, style, b1, eof);
  int rc_whole = read_answer(whole, data, size, 0, 1, eof);
  if (rc != XMPPUV_ENOMEM && rc_whole != XMPPUV_ENOMEM) {
    FZ_CHECK(rc == rc_whole, "pieces %d, whole %d", rc, rc_whole);
    FZ_CHECK(xmppuv__http_response_status(r) == xmppuv__http_response_status(whole),
             "status differs");
  }
  size_t len, wlen;
  const char *body = xmppuv__http_response_body(r, &len);
  const char *wbody = xmppuv__http_response_body(whole, &wlen);
  FZ_CHECK(len <= body_max && body[len] == '\0', "body %zu of %zu", len, body_max);
  if (rc == 1 && rc_whole == 1)
    FZ_CHECK(len == wlen && memcmp(body, wbody, len) == 0, "the body depends on the pieces");
  int status = xmppuv__http_response_status(r);
  if (rc == 1) {
    FZ_CHECK(status >= 100 && status <= 599 && (status >= 200 || status == 101),
             "status %d", status);
    char why[256];
    FZ_CHECK(xmppuv__http_response_feed(r, "x", 1, why, sizeof why) == 1, "not complete");
    size_t sl;
    const char *line = xmppuv__http_head_status_line(&r->head, &sl);
    FZ_CHECK(line != NULL && strlen(line) == sl && strncmp(line, "HTTP/1.", 7) == 0,
             "status line");
    if (status >= 200 && status < 300) FZ_CHECK(why[0] == '\0', "words for a 2xx");
    else FZ_CHECK(strstr(why, "the server answered \"HTTP/1.") != NULL, "no quote: %s", why);
    /* Header lookup agrees with the fields. */
    for (size_t i = 0; i < xmppuv__http_head_count(&r->head); i++) {
      const char *name, *value;
      size_t nl, vl;
      FZ_CHECK(xmppuv__http_head_field(&r->head, i, &name, &nl, &value, &vl) == 0, "field");
      FZ_CHECK(strlen(name) == nl && strlen(value) == vl && nl > 0, "field lengths");
      FZ_CHECK(xmppuv__http_response_header(r, name, NULL) != NULL, "lookup");
    }
    hostmeta(body, len, 1, allow_ws, url_size);
    hostmeta(body, len, 0, allow_ws, url_size);
  }
  xmppuv__http_response_free(r);
  xmppuv__http_response_free(whole);
  free(r);
  free(whole);
  return 0;
}
