/* Fuzz target: the WebSocket opening handshake (lib/transport/ws_handshake.c):
 * URL parsing and the server's HTTP answer, which comes from the network.
 *
 * Input: 1 header byte, then bytes.
 *   bit 0 set: the bytes up to the first NUL are a URL for
 *     xmppuv__ws_url_parse(); an accepted one must make a request.
 *   Otherwise the bytes are the server's answer to a request for
 *   ws://localhost/ws, fed in pieces of (header >> 1) + 1 bytes.
 * Checked: no more taken than given; an answer ends once (1 or a refusal
 * with words), and nothing is taken after it; the request is well formed
 * (one line per header, ends with a blank line, holds the host). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "transport/ws_handshake.h"
#include "xmppuv.h"

static const unsigned char nonce[16] = "0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t h = data[0];
  data++, size--;
  if (h & 1) {
    char url[2048];
    size_t n = size < sizeof url - 1 ? size : sizeof url - 1;
    memcpy(url, data, n);
    url[n] = '\0';
    xmppuv__ws_url_t u;
    const char *why = NULL;
    int rc = xmppuv__ws_url_parse(url, &u, &why);
    FZ_CHECK(rc == 0 || (rc == XMPPUV_EINVAL && why != NULL), "url rc %d", rc);
    if (rc != 0) return 0;
    FZ_CHECK(u.host[0] != '\0' && u.port != 0 && u.path[0] == '/', "url parts");
    xmppuv__ws_handshake_t hs;
    xmppuv__buf_t out = XMPPUV__BUF_INIT;
    if (xmppuv__ws_request(&hs, &u, nonce, &out) == 0) {
      FZ_CHECK(out.len >= 4 && memcmp(out.data + out.len - 4, "\r\n\r\n", 4) == 0,
               "request end");
      FZ_CHECK(memmem(out.data, out.len, u.host, strlen(u.host)) != NULL, "host");
      /* No line break but the header ends. */
      for (size_t i = 0; i < out.len; i++)
        if (out.data[i] == '\n') FZ_CHECK(i > 0 && out.data[i - 1] == '\r', "bare LF");
    }
    xmppuv__buf_free(&out);
    return 0;
  }
  xmppuv__ws_url_t u;
  const char *why = NULL;
  if (xmppuv__ws_url_parse("ws://localhost/ws", &u, &why) != 0) abort();
  xmppuv__ws_handshake_t *hs = malloc(sizeof *hs);
  if (hs == NULL) return 0;
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  if (xmppuv__ws_request(hs, &u, nonce, &out) != 0) abort();
  xmppuv__buf_free(&out);
  size_t piece = (size_t)(h >> 1) + 1, off = 0;
  int ended = 0;
  while (off < size) {
    size_t n = size - off < piece ? size - off : piece;
    size_t used = 0;
    char text[256];
    int rc = xmppuv__ws_answer(hs, (const char *)data + off, n, &used, text, sizeof text);
    FZ_CHECK(used <= n, "took %zu of %zu", used, n);
    if (ended) {
      FZ_CHECK(rc == XMPPUV_ESTATE && used == 0, "after the end: %d", rc);
      break;
    }
    FZ_CHECK(rc == 0 || rc == 1 || rc == XMPPUV_EWRONGSERVER, "rc %d", rc);
    FZ_CHECK(memchr(text, '\0', sizeof text) != NULL, "why not terminated");
    if (rc == XMPPUV_EWRONGSERVER) FZ_CHECK(text[0] != '\0', "a refusal without words");
    if (rc == 0) FZ_CHECK(used == n, "more needed but not all taken");
    off += used;
    if (rc != 0) ended = 1;
    if (rc != 0 && off == size) break;
  }
  free(hs);
  return 0;
}
