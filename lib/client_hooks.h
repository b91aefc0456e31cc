/* What tests may set on a client that no app needs. Not installed. */
#ifndef XMPPUV_CLIENT_HOOKS_H
#define XMPPUV_CLIENT_HOOKS_H

#include <stdint.h>

#include "xmppuv.h"

/* XEP-0156 discovery asks https://DOMAIN:port/ instead of port 443 (a test
 * server cannot take 443). */
void xmppuv__client_set_discovery_port(xmppuv_client_t *c, uint16_t port);

#endif
