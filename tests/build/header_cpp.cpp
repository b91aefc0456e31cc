// The public header from C++: extern "C" linkage and no C-only constructs.
#include <xmppuv.h>

int main() {
  xmppuv_stanza_t *s = nullptr;
  if (xmppuv_stanza_new("message", nullptr, &s) != 0) return 1;
  xmppuv_stanza_unref(s);
  return xmppuv_version() == XMPPUV_VERSION_HEX ? 0 : 1;
}
