#include "xmppuv.h"

unsigned int xmppuv_version(void) { return XMPPUV_VERSION_HEX; }

const char *xmppuv_version_string(void) { return XMPPUV_VERSION_STRING; }
