/* The saved form of Stream Management state (format in persist.c): bytes
 * in, fields out, no I/O. sm.c turns an engine into these fields and back
 * (xmppuv__sm_export / xmppuv__sm_import); this file only encodes, checks
 * and decodes. */
#ifndef XMPPUV_SM_PERSIST_H
#define XMPPUV_SM_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "sm/queue.h"

#define XMPPUV__SMP_VERSION 1

/* Per-entry flags in the blob. */
enum {
  XMPPUV__SMP_SENT = 1u << 0,  /* written on the SM session, not acked */
  XMPPUV__SMP_STAMP = 1u << 1, /* carry a delay stamp when next written */
};

/* Strings point into the blob and are NOT NUL-terminated; NULL when empty. */
typedef struct xmppuv__smp_header {
  const char *sm_id;
  size_t sm_id_len;
  const char *location;
  size_t location_len;
  const char *full_jid;
  size_t full_jid_len;
  uint32_t out_count; /* stanzas we sent in the SM session, mod 2^32 */
  uint32_t in_h;      /* stanzas we handled, mod 2^32 */
  uint32_t max_s;     /* server's max from <enabled/>, 0 = not given */
  int64_t lost_wall_ms;
  uint32_t nentries;
  int resumable; /* the SM-ID may be used for <resume/> */
} xmppuv__smp_header_t;

typedef struct xmppuv__smp_entry {
  const char *bytes; /* points into the blob */
  uint32_t len;
  int64_t sent_wall_ms;
  unsigned flags; /* XMPPUV__SMP_* */
} xmppuv__smp_entry_t;

typedef struct xmppuv__smp_reader {
  const unsigned char *p;
  const unsigned char *end;
  uint32_t left;
} xmppuv__smp_reader_t;

/* Append the blob: hdr's fields (nentries and the strings' lengths are
 * taken from hdr), then every entry of q, the first nsent flagged SENT.
 * 0 or XMPPUV_ENOMEM (out restored to its old length). */
int xmppuv__smp_encode(xmppuv__buf_t *out, const xmppuv__smp_header_t *hdr,
                       const xmppuv__smq_t *q, size_t nsent);

/* Check the whole blob (magic, version, CRC, every length, flags, SENT
 * entries first) and read the header; the entries are then read with
 * xmppuv__smp_next(), which cannot fail after this succeeded.
 * XMPPUV_ESTATEBLOB for anything wrong. */
int xmppuv__smp_decode(const void *data, size_t len, xmppuv__smp_header_t *hdr,
                       xmppuv__smp_reader_t *rd);
/* 1 and the next entry, or 0 at the end. */
int xmppuv__smp_next(xmppuv__smp_reader_t *rd, xmppuv__smp_entry_t *e);

/* CRC-32 (IEEE 802.3 polynomial, reflected, as zlib's crc32()) of data,
 * continuing from crc (0 to start). */
uint32_t xmppuv__crc32(uint32_t crc, const void *data, size_t len);

#endif
