/* The chat layer: carbons (being written). Public API only. */
#include <xmppuv.h>
