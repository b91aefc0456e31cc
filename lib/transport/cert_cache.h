/* Server certificate chains a TLS context has verified, so that the next
 * handshake with the same server can skip the chain's signature checks.
 *
 * Why: verifying a chain costs a public-key signature check per link (about
 * 2.5 ms of CPU for one P-256 ECDSA signature with Debian's mbedTLS 2.28),
 * a third of a whole client handshake. A gateway or bot farm opens hundreds
 * of connections to one server that sends the same chain every time.
 *
 * What makes a hit as good as a check: the key is a SHA-256 digest of the
 * name the chain was checked against and of every certificate's DER bytes
 * as the server sent them, and an entry is only made after mbedTLS accepted
 * that exact chain against the context's CA set, which never changes.
 * Signature checks are deterministic, so the same bytes give the same
 * answer. What can change, time, is kept with the entry: the latest
 * not-before and earliest not-after of every certificate on the verified
 * path (trust anchor included), and a hit outside that window is no hit.
 * Time also decides which parent mbedTLS picks among candidates (it
 * prefers one valid now), so the entry also ends when any certificate
 * sent or trusted that was not yet valid becomes valid.
 * The handshake still checks the server's signature over its key exchange
 * with the certificate's key on every connection, so a hit proves nothing
 * about who holds the key; that part is never cached.
 *
 * No I/O, no clock of its own: the caller passes the time. */
#ifndef XMPPUV_TRANSPORT_CERT_CACHE_H
#define XMPPUV_TRANSPORT_CERT_CACHE_H

#include <stddef.h>

#define XMPPUV__CERT_CACHE_SIZE 8
#define XMPPUV__CERT_CACHE_KEY 32

/* A UTC time as certificates write it, compared field by field. */
typedef struct xmppuv__cert_time {
  int year, mon, day, hour, min, sec;
} xmppuv__cert_time_t;

typedef struct xmppuv__cert_cache_entry {
  unsigned char key[XMPPUV__CERT_CACHE_KEY];
  xmppuv__cert_time_t not_before, not_after; /* both valid */
  xmppuv__cert_time_t ends;                  /* no longer valid from then */
  int used;
} xmppuv__cert_cache_entry_t;

/* Zeroed is empty. Eight entries: one per server a context talks to at
 * once is the common case; the oldest entry makes room. */
typedef struct xmppuv__cert_cache {
  xmppuv__cert_cache_entry_t entries[XMPPUV__CERT_CACHE_SIZE];
  unsigned next; /* the entry to overwrite */
} xmppuv__cert_cache_t;

/* -1, 0 or 1 as a is before, the same as or after b. */
int xmppuv__cert_time_cmp(const xmppuv__cert_time_t *a,
                          const xmppuv__cert_time_t *b);

/* 1 if key was stored and now is within its window, else 0. */
int xmppuv__cert_cache_hit(const xmppuv__cert_cache_t *c,
                           const unsigned char key[XMPPUV__CERT_CACHE_KEY],
                           const xmppuv__cert_time_t *now);

/* Remembers a verified chain (replacing an entry with the same key), good
 * from not_before to not_after included and until, not including, ends. */
void xmppuv__cert_cache_store(xmppuv__cert_cache_t *c,
                              const unsigned char key[XMPPUV__CERT_CACHE_KEY],
                              const xmppuv__cert_time_t *not_before,
                              const xmppuv__cert_time_t *not_after,
                              const xmppuv__cert_time_t *ends);

#endif
