/* The chat layer: receipts (being written). Public API only. */
#include <xmppuv.h>
