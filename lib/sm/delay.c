#include "sm/delay.h"

#include <string.h>

#include "util/ns.h"
#include "xml/serialize.h"

/* 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in Unix ms. */
#define WALL_MIN_MS INT64_C(-62167219200000)
#define WALL_MAX_MS INT64_C(253402300799999)

/* Days since 1970-01-01 to a proleptic Gregorian date (the civil calendar
 * algorithm on 400-year eras; valid for the whole clamped range). */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);             /* [0, 146096] */
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  /* [0, 365] */
  unsigned mp = (5 * doy + 2) / 153;                       /* March = 0 */
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (unsigned)((int64_t)yoe + era * 400 + (*m <= 2));
}

static char *digits(char *p, unsigned v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return p + n;
}

void xmppuv__delay_stamp(char out[XMPPUV__DELAY_STAMP_LEN + 1],
                         int64_t wall_ms) {
  if (wall_ms < WALL_MIN_MS) wall_ms = WALL_MIN_MS;
  if (wall_ms > WALL_MAX_MS) wall_ms = WALL_MAX_MS;
  /* Floor division, so times before 1970 land on the right day. */
  int64_t days = wall_ms / 86400000;
  int64_t rem = wall_ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    days--;
  }
  unsigned y, mo, d;
  civil_from_days(days, &y, &mo, &d);
  unsigned ms = (unsigned)rem;
  /* XEP-0082 §3.2: CCYY-MM-DDThh:mm:ss[.sss]TZD, and XEP-0203: in UTC. */
  char *p = out;
  p = digits(p, y, 4);
  *p++ = '-';
  p = digits(p, mo, 2);
  *p++ = '-';
  p = digits(p, d, 2);
  *p++ = 'T';
  p = digits(p, ms / 3600000, 2);
  *p++ = ':';
  p = digits(p, ms / 60000 % 60, 2);
  *p++ = ':';
  p = digits(p, ms / 1000 % 60, 2);
  *p++ = '.';
  p = digits(p, ms % 1000, 3);
  *p++ = 'Z';
  *p = '\0';
}

int xmppuv__delay_prefix(xmppuv__buf_t *out, const char *from) {
  size_t old = out->len;
  if (xmppuv__buf_append_str(out, "<delay xmlns='" XMPPUV__NS_DELAY "'") != 0)
    goto nomem;
  if (from != NULL) {
    if (xmppuv__buf_append_str(out, " from='") != 0 ||
        xmppuv__escape_attr(out, from, strlen(from)) != 0 ||
        xmppuv__buf_append_char(out, '\'') != 0)
      goto nomem;
  }
  if (xmppuv__buf_append_str(out, " stamp='") != 0) goto nomem;
  return 0;
nomem:
  out->len = old;
  if (out->data != NULL) out->data[old] = '\0';
  return XMPPUV_ENOMEM;
}

size_t xmppuv__delay_suffix(char out[XMPPUV__DELAY_SUFFIX_LEN + 1],
                            int64_t wall_ms) {
  xmppuv__delay_stamp(out, wall_ms);
  memcpy(out + XMPPUV__DELAY_STAMP_LEN, "'/>", 4);
  return XMPPUV__DELAY_SUFFIX_LEN;
}

int xmppuv__delay_insert(xmppuv__buf_t *out, const char *bytes, size_t len,
                         size_t end_tag_at, const xmppuv__buf_t *prefix,
                         int64_t wall_ms) {
  if (end_tag_at > len) return XMPPUV_EINVAL;
  size_t old = out->len;
  char suffix[XMPPUV__DELAY_SUFFIX_LEN + 1];
  size_t n = xmppuv__delay_suffix(suffix, wall_ms);
  if (xmppuv__buf_append(out, bytes, end_tag_at) != 0 ||
      xmppuv__buf_append(out, prefix->data, prefix->len) != 0 ||
      xmppuv__buf_append(out, suffix, n) != 0 ||
      xmppuv__buf_append(out, bytes + end_tag_at, len - end_tag_at) != 0) {
    out->len = old;
    if (out->data != NULL) out->data[old] = '\0';
    return XMPPUV_ENOMEM;
  }
  return 0;
}

int xmppuv__delay_present(const xmppuv_stanza_t *s) {
  return xmppuv_stanza_child(s, "delay", XMPPUV__NS_DELAY) != NULL;
}
