/* xmppuv chat layer: carbons (being written).
 * Included by <xmppuv.h>; do not include this file directly. */
#ifndef XMPPUV_IM_CARBONS_H
#define XMPPUV_IM_CARBONS_H

#include "../client.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
