/* A loopback TCP proxy that breaks the network on command, for tests of
 * resumption, ack timeouts and reconnection. It runs on the test's own
 * uv_loop_t (no thread): it listens on 127.0.0.1 on a port of its own and
 * forwards every accepted connection to one target host:port, byte for byte,
 * with TCP_NODELAY on both legs. A FIN from one side is passed on as a FIN
 * (half-close); a reset from one side is passed on as a reset.
 *
 * Faults:
 * - reset_all: every proxied connection is closed at once with SO_LINGER 0,
 *   so both the client and the target get a TCP RST (a read there fails with
 *   UV_ECONNRESET). New connections are still accepted.
 * - partition(on): a silent partition. The proxy stops reading both legs of
 *   every connection, including connections accepted while it lasts: nothing
 *   is forwarded, nothing is closed, no error is seen. Bytes are HELD, not
 *   dropped: they wait in the kernel's socket buffers (a sender's writes
 *   still complete until those buffers fill). To the client the server looks
 *   alive at the TCP level and dead at the XMPP level: no <a/>, no pong.
 * - partition(off): reading resumes and the held bytes are delivered in
 *   order, as TCP delivers them after a network heals. If a side gave up
 *   meanwhile (closed or reset its socket), the proxy passes that on then.
 * - stall_existing: every connection proxied now goes silent for good, as
 *   partition does but only for them (the old path of a network that
 *   changed): connections accepted later are forwarded as usual. What the
 *   stalled ones hold is never delivered; a close from either side is not
 *   passed on either (nothing is read from them).
 * - refuse(on): the listening socket is closed, so new connects fail with
 *   UV_ECONNREFUSED, like a server that is down; the port stays bound
 *   meanwhile, so no other process can be given it. Connections already
 *   proxied carry on. refuse(off) listens again on the same port.
 *
 * Test support code: it allocates with the C library's malloc, not
 * xmppuv's replaceable allocator, so it never counts in (or fails through)
 * a test's failing allocator. Not thread-safe: everything runs on the loop's
 * thread. */
#ifndef XMPPUV_TEST_FAULT_PROXY_H
#define XMPPUV_TEST_FAULT_PROXY_H

#include <uv.h>

typedef struct xmppuv_test_proxy xmppuv_test_proxy_t;

typedef struct xmppuv_test_proxy_stats {
  unsigned long accepted;         /* connections accepted from clients */
  unsigned long active;           /* proxied connections not yet closed */
  unsigned long target_failures;  /* connects to the target that failed; the
                                     client got a reset */
  unsigned long resets;           /* connections closed by reset_all */
  unsigned long long to_target;   /* bytes written to the target */
  unsigned long long to_client;   /* bytes written to clients */
  /* Client flights on the connection accepted last: runs of bytes from the
   * client with nothing from the server in between (what a round-trip
   * count is made of: the client waits for the server between two). */
  unsigned long latest_client_flights;
} xmppuv_test_proxy_stats_t;

/* Listen on 127.0.0.1 (a free port chosen by the kernel) and forward to
 * target_host (a numeric IPv4 or IPv6 address, or "localhost" meaning
 * 127.0.0.1) port target_port. Returns 0 and *out, UV_EINVAL for a bad
 * address, UV_ENOMEM, or the libuv error of bind/listen (then handles it
 * made may still be closing: run the loop before uv_loop_close). The proxy
 * belongs to loop until xmppuv_test_proxy_close()'s callback has run. */
int xmppuv_test_proxy_start(uv_loop_t *loop, const char *target_host,
                            unsigned short target_port,
                            xmppuv_test_proxy_t **out);

/* The port clients connect to (stays the same across refuse on/off). */
unsigned short xmppuv_test_proxy_port(const xmppuv_test_proxy_t *proxy);

/* Reset every proxied connection, both legs (TCP RST). */
void xmppuv_test_proxy_reset_all(xmppuv_test_proxy_t *proxy);

/* Delay every byte this long each way (0: none, the default), in order:
 * a fixed round-trip time of twice that, for benchmarks of round trips.
 * FINs wait behind the delayed bytes; resets do not. */
void xmppuv_test_proxy_delay(xmppuv_test_proxy_t *proxy, unsigned one_way_ms);

/* Silent partition on (1) or off (0); see above. */
void xmppuv_test_proxy_partition(xmppuv_test_proxy_t *proxy, int on);

/* Stall the connections proxied now, for good; see above. */
void xmppuv_test_proxy_stall_existing(xmppuv_test_proxy_t *proxy);

/* Refuse new connections (1) or accept them again (0). Returns 0, or the
 * libuv error if the port could not be listened on again (it then stays
 * refused). */
int xmppuv_test_proxy_refuse(xmppuv_test_proxy_t *proxy, int on);

/* Counters since start. */
void xmppuv_test_proxy_stats(const xmppuv_test_proxy_t *proxy,
                             xmppuv_test_proxy_stats_t *out);

/* Close the listener and every proxied connection (gracefully: a FIN, writes
 * still queued are dropped), then call cb(user_data) from a close callback
 * once every handle is closed; the proxy is freed then. cb may be NULL.
 * Always asynchronous: cb never runs inside this call. */
void xmppuv_test_proxy_close(xmppuv_test_proxy_t *proxy,
                             void (*cb)(void *user_data), void *user_data);

#endif
