/* The chat layer: disco (being written). Public API only. */
#include <xmppuv.h>
