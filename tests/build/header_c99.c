/* The public header alone, as strict C99: it must not need anything else. */
#include <xmppuv.h>

int main(void) {
  return xmppuv_version() == XMPPUV_VERSION_HEX ? 0 : 1;
}
