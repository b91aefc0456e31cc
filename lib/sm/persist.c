/* Saved Stream Management state, format version 1.
 *
 * What xmppuv__sm_export() writes and xmppuv__sm_import() reads, so that a
 * restarted process can resume the old XEP-0198 session and resend what the
 * server had not acknowledged. All integers are little-endian and unsigned
 * unless noted; strings are UTF-8 without a terminating NUL.
 *
 *   offset  size  field
 *   0       8     magic "XMPPUVSM"
 *   8       2     version = 1 (a reader refuses any other)
 *   10      2     flags: bit 0 = the session can be resumed (SM-ID given);
 *                 other bits 0
 *   12      4     outbound counter: stanzas we sent in the SM session, mod 2^32
 *   16      4     inbound counter 'h': stanzas we handled, mod 2^32
 *   20      4     'max' from <enabled/> in seconds, 0 = none given
 *   24      8     (signed) wall time in Unix ms (UTC) when the connection was
 *                 lost (the export time if it was still up)
 *   32      4     number of queued stanzas N
 *   36            SM-ID:     4-byte length, bytes (length 0 = none)
 *                 location:  4-byte length, bytes ("host:port" or none)
 *                 full JID:  4-byte length, bytes (the delay stamps' 'from')
 *                 N stanzas, oldest first, each:
 *                   1  flags: bit 0 SENT = sent in the SM session and not
 *                      acknowledged (counted in the outbound counter; all
 *                      SENT stanzas come before the others, which were held
 *                      and never sent); bit 1 STAMP = add a XEP-0203 delay
 *                      when next written; other bits 0
 *                   8  (signed) wall time in Unix ms of the app's send call
 *                      (the delay stamp)
 *                   4  length L > 0
 *                   L  the stanza as serialized on a jabber:client stream
 *   end-4   4     CRC-32 (IEEE 802.3, as zlib's crc32) of every byte before
 *
 * A reader checks the magic, the version, the CRC, every length against the
 * blob's size and that the blob ends exactly after the CRC, and refuses
 * anything else as XMPPUV_ESTATEBLOB; sm.c then checks the contents (text
 * is valid UTF-8 without NUL, each stanza parses as one message, presence
 * or iq in jabber:client and is serialized again before it is used) and
 * that N fits the client's queue_max (XMPPUV_ENOBUFS otherwise).
 *
 * A reader of version 1 refuses every other version; a change to the
 * layout gets a new version number and, if it must, a reader for the old. */
#include "sm/persist.h"

#include <string.h>

#define MAGIC "XMPPUVSM"
#define MAGIC_LEN 8u
#define FIXED_LEN 36u
#define ENTRY_FIXED_LEN 13u
#define HDR_RESUMABLE 1u

/* Half-byte table for the reflected polynomial 0xEDB88320: small enough to
 * be a constant (no lazy init, nothing shared to race on). */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
    0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
    0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
    0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
};

uint32_t xmppuv__crc32(uint32_t crc, const void *data, size_t len) {
  const unsigned char *p = data;
  crc = ~crc;
  for (size_t i = 0; i < len; i++) {
    crc ^= p[i];
    crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    crc = (crc >> 4) ^ crc_nibble[crc & 15u];
  }
  return ~crc;
}

/* ---- encoding ----------------------------------------------------------- */

static void le16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static int put_string(xmppuv__buf_t *out, const char *s, size_t len) {
  unsigned char n[4];
  if (len > UINT32_MAX) return XMPPUV_ENOMEM;
  le32(n, (uint32_t)len);
  if (xmppuv__buf_append(out, n, 4) != 0) return XMPPUV_ENOMEM;
  return xmppuv__buf_append(out, s, len);
}

int xmppuv__smp_encode(xmppuv__buf_t *out, const xmppuv__smp_header_t *hdr,
                       const xmppuv__smq_t *q, size_t nsent) {
  size_t old = out->len;
  size_t n = xmppuv__smq_len(q);
  unsigned char fixed[FIXED_LEN];
  if (n > UINT32_MAX) goto nomem;
  memcpy(fixed, MAGIC, MAGIC_LEN);
  le16(fixed + 8, XMPPUV__SMP_VERSION);
  le16(fixed + 10, hdr->resumable && hdr->sm_id_len > 0 ? HDR_RESUMABLE : 0);
  le32(fixed + 12, hdr->out_count);
  le32(fixed + 16, hdr->in_h);
  le32(fixed + 20, hdr->max_s);
  le64(fixed + 24, (uint64_t)hdr->lost_wall_ms);
  le32(fixed + 32, (uint32_t)n);
  if (xmppuv__buf_append(out, fixed, sizeof fixed) != 0 ||
      put_string(out, hdr->sm_id, hdr->sm_id_len) != 0 ||
      put_string(out, hdr->location, hdr->location_len) != 0 ||
      put_string(out, hdr->full_jid, hdr->full_jid_len) != 0)
    goto nomem;
  for (size_t i = 0; i < n; i++) {
    const xmppuv__smq_entry_t *e = xmppuv__smq_at(q, i);
    unsigned char ef[ENTRY_FIXED_LEN];
    ef[0] = (unsigned char)((i < nsent ? XMPPUV__SMP_SENT : 0) |
                            (e->flags & XMPPUV__SMQ_STAMP ? XMPPUV__SMP_STAMP
                                                          : 0));
    le64(ef + 1, (uint64_t)e->sent_wall_ms);
    le32(ef + 9, e->len);
    if (xmppuv__buf_append(out, ef, sizeof ef) != 0 ||
        xmppuv__buf_append(out, e->bytes, e->len) != 0)
      goto nomem;
  }
  unsigned char crc[4];
  le32(crc, xmppuv__crc32(0, out->data + old, out->len - old));
  if (xmppuv__buf_append(out, crc, 4) != 0) goto nomem;
  return 0;
nomem:
  out->len = old;
  if (out->data != NULL) out->data[old] = '\0';
  return XMPPUV_ENOMEM;
}

/* ---- decoding ----------------------------------------------------------- */

static uint16_t rd16(const unsigned char *p) {
  return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int get_string(const unsigned char **p, const unsigned char *end,
                      const char **s, size_t *len) {
  if ((size_t)(end - *p) < 4) return XMPPUV_ESTATEBLOB;
  uint32_t n = rd32(*p);
  *p += 4;
  if ((size_t)(end - *p) < n) return XMPPUV_ESTATEBLOB;
  *s = n > 0 ? (const char *)*p : NULL;
  *len = n;
  *p += n;
  return 0;
}

static const unsigned char *entry_read(const unsigned char *p,
                                       xmppuv__smp_entry_t *e) {
  e->flags = p[0];
  e->sent_wall_ms = (int64_t)rd64(p + 1);
  e->len = rd32(p + 9);
  e->bytes = (const char *)p + ENTRY_FIXED_LEN;
  return p + ENTRY_FIXED_LEN + e->len;
}

int xmppuv__smp_decode(const void *data, size_t len, xmppuv__smp_header_t *hdr,
                       xmppuv__smp_reader_t *rd) {
  const unsigned char *b = data;
  memset(hdr, 0, sizeof *hdr);
  if (b == NULL || len < FIXED_LEN + 3 * 4 + 4) return XMPPUV_ESTATEBLOB;
  if (memcmp(b, MAGIC, MAGIC_LEN) != 0) return XMPPUV_ESTATEBLOB;
  if (rd16(b + 8) != XMPPUV__SMP_VERSION) return XMPPUV_ESTATEBLOB;
  const unsigned char *end = b + len - 4;
  if (xmppuv__crc32(0, b, len - 4) != rd32(end)) return XMPPUV_ESTATEBLOB;
  uint16_t flags = rd16(b + 10);
  if ((flags & ~HDR_RESUMABLE) != 0) return XMPPUV_ESTATEBLOB;
  hdr->out_count = rd32(b + 12);
  hdr->in_h = rd32(b + 16);
  hdr->max_s = rd32(b + 20);
  hdr->lost_wall_ms = (int64_t)rd64(b + 24);
  hdr->nentries = rd32(b + 32);
  const unsigned char *p = b + FIXED_LEN;
  if (get_string(&p, end, &hdr->sm_id, &hdr->sm_id_len) != 0 ||
      get_string(&p, end, &hdr->location, &hdr->location_len) != 0 ||
      get_string(&p, end, &hdr->full_jid, &hdr->full_jid_len) != 0)
    return XMPPUV_ESTATEBLOB;
  hdr->resumable = (flags & HDR_RESUMABLE) != 0;
  if (hdr->resumable && hdr->sm_id_len == 0) return XMPPUV_ESTATEBLOB;
  /* Walk every entry now so that reading them later cannot fail. */
  const unsigned char *entries = p;
  int sent_allowed = 1;
  for (uint32_t i = 0; i < hdr->nentries; i++) {
    if ((size_t)(end - p) < ENTRY_FIXED_LEN) return XMPPUV_ESTATEBLOB;
    unsigned ef = p[0];
    uint32_t n = rd32(p + 9);
    if ((ef & ~(unsigned)(XMPPUV__SMP_SENT | XMPPUV__SMP_STAMP)) != 0)
      return XMPPUV_ESTATEBLOB;
    if (ef & XMPPUV__SMP_SENT) {
      if (!sent_allowed) return XMPPUV_ESTATEBLOB;
    } else {
      sent_allowed = 0;
    }
    if (n == 0 || (size_t)(end - p) - ENTRY_FIXED_LEN < n)
      return XMPPUV_ESTATEBLOB;
    p += ENTRY_FIXED_LEN + n;
  }
  if (p != end) return XMPPUV_ESTATEBLOB;
  rd->p = entries;
  rd->end = end;
  rd->left = hdr->nentries;
  return 0;
}

int xmppuv__smp_next(xmppuv__smp_reader_t *rd, xmppuv__smp_entry_t *e) {
  if (rd->left == 0) return 0;
  rd->p = entry_read(rd->p, e);
  rd->left--;
  return 1;
}
