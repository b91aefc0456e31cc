/* A real DNS server for the tests: Debian's dnsmasq (package dnsmasq-base),
 * run as a child process on 127.0.0.1 on a free port, serving only the
 * records the test gives. It is authoritative for the zone "test": any name
 * under .test that no record names answers NXDOMAIN, and nothing is forwarded
 * anywhere. A missing dnsmasq fails the test (it is never skipped).
 *
 * Set DNSMASQ to the binary's path to override /usr/sbin/dnsmasq. */
#ifndef XMPPUV_TEST_DNSMASQ_H
#define XMPPUV_TEST_DNSMASQ_H

#include <stdint.h>

typedef struct dnsmasq dnsmasq_t;

/* records: dnsmasq options, NULL-terminated, e.g.
 *   "--srv-host=_xmpp-client._tcp.a.test,x.a.test,5222,10,5"
 *   "--host-record=x.a.test,192.0.2.1,2001:db8::1"
 * Returns once the server answers queries; fails the test (Check assertion)
 * if it cannot be started. The server dies with the calling process if that
 * exits without dnsmasq_stop(). */
dnsmasq_t *dnsmasq_start(const char *const *records);
/* c-ares server list for it: "127.0.0.1:PORT" (valid until dnsmasq_stop). */
const char *dnsmasq_servers(const dnsmasq_t *d);
uint16_t dnsmasq_port(const dnsmasq_t *d);
/* Stops the server, waits for it and frees d. NULL is a no-op. */
void dnsmasq_stop(dnsmasq_t *d);

#endif
