/* The chat layer: presence (being written). Public API only. */
#include <xmppuv.h>
