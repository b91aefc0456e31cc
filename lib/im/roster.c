/* The chat layer: roster (being written). Public API only. */
#include <xmppuv.h>
