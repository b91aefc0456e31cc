/* String equality for the per-stanza paths. */
#ifndef XMPPUV_STR_H
#define XMPPUV_STR_H

#include <string.h>

/* a and b equal. The parser gives the common names and namespaces as the
 * library's own literals, which the linker merges with the ones compared
 * against here, so a match is often the same pointer; a mismatch is mostly
 * told by the first byte. Either way without a call. */
static inline int xmppuv__streq(const char *a, const char *b) {
  return a == b || (a[0] == b[0] && strcmp(a, b) == 0);
}

#endif /* XMPPUV_STR_H */
