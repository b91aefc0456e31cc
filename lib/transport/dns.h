/* Finding the XMPP server without blocking the loop (RFC 6120 §3.2,
 * XEP-0368): SRV lookups, then each target's addresses, through c-ares
 * driven by the caller's libuv loop (its sockets on uv_poll, its timeouts on
 * a uv_timer).
 *
 * Two steps, two calls. xmppuv__dns_find_targets() turns a domain into an
 * ordered list of (host, port, direct TLS) targets; the connection layer then
 * calls xmppuv__dns_resolve() for one target at a time and tries its
 * addresses in the order given (Happy Eyeballs, RFC 8305). With a host/port
 * override the caller skips the first step.
 *
 * Every query owns one c-ares channel, created for it and destroyed before
 * its callback runs, so an idle client holds no DNS state. c-ares allocates
 * through xmppuv's allocator (xmppuv_replace_allocator covers it).
 *
 * Callbacks: each started query calls its callback exactly once, always from
 * the loop (never from inside the call that started it, an IP literal
 * included). By the time it runs, every uv handle the query opened is closed
 * and the query's memory is freed, so the callback may close the loop. If a
 * starting call returns an error, the callback is never called.
 *
 * Threads: a query belongs to the thread running its loop. */
#ifndef XMPPUV_TRANSPORT_DNS_H
#define XMPPUV_TRANSPORT_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/log.h"

/* A source of uniformly distributed 32-bit numbers. */
typedef uint32_t (*xmppuv__dns_random_fn)(void *user_data);

/* Borrowed for the starting call only, except random_user_data and log,
 * which must stay valid until the callback runs. NULL options = defaults. */
typedef struct xmppuv__dns_options {
  /* c-ares server list ("127.0.0.1:5353,[::1]:53"). NULL: the system's
   * resolv.conf, and /etc/hosts is consulted first as the system resolver
   * does. Non-NULL: these servers only, no hosts file. */
  const char *servers;
  uint64_t timeout_ms; /* the whole query; 0 = 10000 */
  /* RFC 2782 weighted selection. NULL: an internal PRNG seeded from
   * uv_hrtime() and the query's address. */
  xmppuv__dns_random_fn random;
  void *random_user_data;
  /* Area "dns", debug level: each lookup's outcome with c-ares's own status.
   * NULL: no logging. */
  const xmppuv__log_t *log;
} xmppuv__dns_options_t;

#define XMPPUV__DNS_DEFAULT_TIMEOUT_MS 10000u
/* RFC 6120 §3.2.2: the fallback port when the domain has no SRV records. */
#define XMPPUV__XMPP_CLIENT_PORT 5222u

typedef struct xmppuv__target {
  char *host; /* ASCII (A-label) host name, no trailing dot */
  uint16_t port;
  int direct_tls; /* 1: XEP-0368 _xmpps-client, TLS from the first byte;
                     0: _xmpp-client or the fallback, STARTTLS */
} xmppuv__target_t;

/* In the order to try them. Owns its items and their hosts. */
typedef struct xmppuv__target_list {
  xmppuv__target_t *items;
  size_t count; /* >= 1 in every list a callback receives */
} xmppuv__target_list_t;

/* AF_INET6 and AF_INET socket addresses with the port set, in the order to
 * start connection attempts (RFC 8305 §4). */
typedef struct xmppuv__addr_list {
  struct sockaddr_storage *items;
  size_t count; /* >= 1 in every list a callback receives */
} xmppuv__addr_list_t;

typedef struct xmppuv__dns_query xmppuv__dns_query_t;

/* status 0: targets is non-NULL and the callback takes ownership (free it with
 * xmppuv__target_list_free). Otherwise targets is NULL and status is
 * XMPPUV_ENOSERVICE (the SRV records say the domain offers no XMPP client
 * service: only "." targets), XMPPUV_ETIMEDOUT, XMPPUV_EDNS (the resolver
 * failed: SERVFAIL, REFUSED, bad reply...), XMPPUV_ECANCELED, XMPPUV_ENOMEM,
 * or a libuv error from polling c-ares's sockets. */
typedef void (*xmppuv__dns_targets_cb)(void *user_data, int status,
                                       xmppuv__target_list_t *targets);

/* status 0: addrs is non-NULL and the callback takes ownership (free it with
 * xmppuv__addr_list_free). Otherwise addrs is NULL and status is
 * XMPPUV_ENOTFOUND (no such name, or no A/AAAA record), XMPPUV_ETIMEDOUT,
 * XMPPUV_EDNS, XMPPUV_ECANCELED, XMPPUV_ENOMEM or a libuv error. */
typedef void (*xmppuv__dns_addrs_cb)(void *user_data, int status,
                                     xmppuv__addr_list_t *addrs);

/* Look up _xmpps-client._tcp.DOMAIN and _xmpp-client._tcp.DOMAIN at once and
 * combine them (XEP-0368 §3: one record set, priorities and weights mixed,
 * direct_tls set from the service). Targets of "." are dropped; if nothing
 * else is left the result is XMPPUV_ENOSERVICE, with no A/AAAA fallback
 * (XEP-0368 §3.1, RFC 2782). If both lookups find no SRV records (NXDOMAIN or
 * no data), the result is the single target {DOMAIN, 5222, STARTTLS}
 * (RFC 6120 §3.2.2). If one service's lookup fails (timeout, SERVFAIL) and
 * the other has usable records, those are used; if none are usable, the
 * failure is reported rather than a fallback guessed.
 *
 * domain_ascii: the JID domainpart as A-labels (IDNA already applied),
 * borrowed for the call. *out (may be NULL) gets the handle for
 * xmppuv__dns_cancel(), valid until the callback starts. Returns 0,
 * XMPPUV_EINVAL (NULL or empty domain, over 254 bytes, bad server list),
 * XMPPUV_ENOMEM or XMPPUV_EDNS (c-ares could not start). */
int xmppuv__dns_find_targets(uv_loop_t *loop, const char *domain_ascii,
                             const xmppuv__dns_options_t *opts,
                             xmppuv__dns_targets_cb cb, void *user_data,
                             xmppuv__dns_query_t **out);

/* All A and AAAA addresses of host (one ares_getaddrinfo), with port set,
 * ordered for Happy Eyeballs: each family keeps c-ares's RFC 6724 order and
 * the families alternate, IPv6 first (RFC 8305 §4). Duplicates are removed.
 * An IPv4 or IPv6 literal host (no brackets; "fe80::1%eth0" allowed) gives
 * that one address without any DNS traffic, still from the loop.
 * Arguments, *out and return values as for xmppuv__dns_find_targets. */
int xmppuv__dns_resolve(uv_loop_t *loop, const char *host, uint16_t port,
                        const xmppuv__dns_options_t *opts,
                        xmppuv__dns_addrs_cb cb, void *user_data,
                        xmppuv__dns_query_t **out);

/* Stop a query whose callback has not started yet: the callback then runs
 * exactly once with XMPPUV_ECANCELED (even if the answer had already
 * arrived), from the loop, after every handle of the query is closed. NULL is
 * a no-op; a second cancel of the same query is a no-op. */
void xmppuv__dns_cancel(xmppuv__dns_query_t *q);

void xmppuv__target_list_free(xmppuv__target_list_t *l); /* NULL: no-op */
void xmppuv__addr_list_free(xmppuv__addr_list_t *l);     /* NULL: no-op */

/* ---- Pure steps, exposed for unit tests (no I/O, no clock) ------------- */

typedef struct xmppuv__srv_record {
  const char *target; /* borrowed; "" or "." is the root: "no service" */
  uint16_t priority;
  uint16_t weight;
  uint16_t port;
  int direct_tls;
} xmppuv__srv_record_t;

/* Reorder records in place: ascending priority; within one priority, the
 * RFC 2782 weighted random selection (weight-0 records first in the running
 * sum, a uniform number in [0, sum] inclusive picks the first record whose
 * running sum reaches it, repeat with the rest). random must not be NULL. */
void xmppuv__dns_order_srv(xmppuv__srv_record_t *records, size_t count,
                           xmppuv__dns_random_fn random, void *user_data);

/* The target list for the SRV records of both services (in any order; they
 * are reordered in place by xmppuv__dns_order_srv). Root targets are
 * dropped. No records at all: the fallback {domain, 5222, STARTTLS}. Only
 * root targets: XMPPUV_ENOSERVICE. Returns 0 with *out set, or
 * XMPPUV_ENOSERVICE, XMPPUV_ENOMEM. */
int xmppuv__dns_targets_from_srv(xmppuv__srv_record_t *records, size_t count,
                                 const char *domain,
                                 xmppuv__dns_random_fn random, void *user_data,
                                 xmppuv__target_list_t **out);

/* Copy count addresses from in to out, IPv6 and IPv4 alternating, IPv6
 * first, each family keeping its order; what is left of the longer family
 * follows (RFC 8305 §4, First Address Family Count 1). Other families are
 * appended last. in and out must not overlap. */
void xmppuv__dns_interleave(const struct sockaddr_storage *in, size_t count,
                            struct sockaddr_storage *out);

#endif
