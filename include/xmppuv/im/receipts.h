/* xmppuv chat layer: receipts (being written).
 * Included by <xmppuv.h>; do not include this file directly. */
#ifndef XMPPUV_IM_RECEIPTS_H
#define XMPPUV_IM_RECEIPTS_H

#include "../client.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
