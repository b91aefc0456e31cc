/* "host:port" as servers give it (XEP-0198 location, see-other-host). */
#ifndef XMPPUV_HOSTPORT_H
#define XMPPUV_HOSTPORT_H

#include <stddef.h>
#include <stdint.h>

/* Split "host:port", "host", "[v6]:port", "[v6]", or a bare IPv6 address
 * (more than one colon, no brackets: no port in it) into host and port.
 * host (of host_size bytes) gets the host as given, brackets included;
 * *port gets the port, or 0 when there is none or it is not 1..65535. */
void xmppuv__split_host_port(const char *in, char *host, size_t host_size, uint16_t *port);

#endif
