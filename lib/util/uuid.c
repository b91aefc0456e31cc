/* Random UUIDs: see uuid.h. */
#include "util/uuid.h"

#include <unistd.h> /* getentropy */

#include "xmppuv.h"

int xmppuv__uuid_v4(char out[XMPPUV__UUID_LEN + 1]) {
  unsigned char b[16];
  if (getentropy(b, sizeof b) != 0) return XMPPUV_ECRYPTO;
  b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* variant 10 */
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < sizeof b; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 0x0F];
  }
  out[o] = '\0';
  return 0;
}
