/* Fuzz target: WebSocket messages (lib/transport/ws_codec.c), both ways.
 *
 * Input: 2 header bytes, then bytes.
 *   byte 0 bit 0 clear: the bytes are frames from a server, fed in pieces
 *     (sizes from a PRNG seeded by byte 1); max message 1 KB.
 *   bit 0 set: the bytes are our own XML, given to the splitter in pieces.
 * Checked, reading: once the codec stops (an error or the server's Close),
 *   it stays stopped and takes no more messages; every error has words and
 *   a Close code; messages handed up never exceed the limit in total per
 *   message boundary we can see (they are the payloads of whole messages).
 * Checked, writing: every frame we make is a masked, final text frame; its
 *   payload is one element that starts with '<' and ends with '>'; a write
 *   that fails leaves the codec refusing or able to go on, never crashing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "transport/ws_codec.h"
#include "xmppuv.h"

/* Our frames, unmasked, checked one by one. */
static void check_frames(const xmppuv__buf_t *b) {
  const unsigned char *d = (const unsigned char *)b->data;
  size_t at = 0;
  while (at < b->len) {
    FZ_CHECK(b->len - at >= 6, "short frame");
    int opcode = d[at] & 0x0f;
    FZ_CHECK((d[at] & 0x80) != 0, "not final");
    FZ_CHECK((d[at + 1] & 0x80) != 0, "not masked");
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
    const unsigned char *key = d + at;
    at += 4;
    FZ_CHECK(b->len - at >= len, "frame past the end");
    if (opcode == 1) {
      FZ_CHECK(len >= 3, "empty element");
      FZ_CHECK((d[at] ^ key[0]) == '<', "element start");
      FZ_CHECK((d[at + len - 1] ^ key[(len - 1) % 4]) == '>', "element end");
    } else {
      FZ_CHECK(opcode == 8 || opcode == 9, "opcode %d", opcode);
    }
    at += (size_t)len;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t mode = data[0];
  uint32_t seed = data[1];
  data += 2, size -= 2;
  xmppuv__ws_codec_t *c;
  if (xmppuv__ws_codec_new(1024, &c) != 0) return 0;
  xmppuv__buf_t msgs = XMPPUV__BUF_INIT, out = XMPPUV__BUF_INIT;
  size_t off = 0;
  int stopped = 0;
  while (off < size) {
    seed = seed * 1103515245u + 12345u;
    size_t piece = (seed >> 16) % 64 + 1;
    if (piece > size - off) piece = size - off;
    if (mode & 1) {
      xmppuv__buf_clear(&out);
      int rc = xmppuv__ws_codec_write(c, (const char *)data + off, piece, &out);
      FZ_CHECK(rc == 0 || rc == XMPPUV_EXML || rc == XMPPUV_ENOMEM, "write rc %d", rc);
      if (rc == 0) check_frames(&out);
      if (rc != 0) break;
    } else {
      uint16_t code = 0;
      char why[200];
      size_t before = msgs.len;
      int rc = xmppuv__ws_codec_read(c, (const char *)data + off, piece, &msgs, &out, &code, why,
                                     sizeof why);
      if (stopped) FZ_CHECK(msgs.len == before && rc != 0, "read after the end");
      if (rc == XMPPUV_ENOMEM) break;
      if (rc < 0) {
        FZ_CHECK(why[0] != '\0' && code >= 1000, "error without words or code");
        FZ_CHECK(xmppuv__ws_codec_close_sent(c), "error without our Close");
        stopped = 1;
      } else if (rc == 1) {
        stopped = 1;
      }
    }
    off += piece;
  }
  xmppuv__buf_free(&msgs);
  xmppuv__buf_free(&out);
  xmppuv__ws_codec_free(c);
  return 0;
}
