/* XEP-0203 delay stamps on serialized stanzas, with XEP-0082 timestamps.
 * No I/O, no clock: the time is passed in. Used by the SM engine (sm.c)
 * when it writes a <message/> later than the app sent it. */
#ifndef XMPPUV_SM_DELAY_H
#define XMPPUV_SM_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "xmppuv.h"

/* "YYYY-MM-DDThh:mm:ss.sssZ" */
#define XMPPUV__DELAY_STAMP_LEN 24

/* XEP-0082 DateTime, UTC with milliseconds, for wall_ms (Unix time in ms);
 * out gets XMPPUV__DELAY_STAMP_LEN characters and a NUL. Times outside the
 * years 0000..9999 are clamped to them (XEP-0082 uses four-digit years). */
void xmppuv__delay_stamp(char out[XMPPUV__DELAY_STAMP_LEN + 1],
                         int64_t wall_ms);

/* Append the part of our <delay/> that does not change with the stamp:
 * "<delay xmlns='urn:xmpp:delay' from='FROM' stamp='" (no from attribute
 * when from is NULL). 0 or XMPPUV_ENOMEM (out restored). */
int xmppuv__delay_prefix(xmppuv__buf_t *out, const char *from);

/* The rest after the prefix: "STAMP'/>", NUL-terminated; returns its
 * length (XMPPUV__DELAY_STAMP_LEN + 3). */
#define XMPPUV__DELAY_SUFFIX_LEN (XMPPUV__DELAY_STAMP_LEN + 3)
size_t xmppuv__delay_suffix(char out[XMPPUV__DELAY_SUFFIX_LEN + 1],
                            int64_t wall_ms);

/* Append bytes[0..len) with a <delay/> inserted at end_tag_at, the offset
 * of the root's end tag (from xmppuv__serialize_ex with
 * XMPPUV__SER_ROOT_END_TAG): prefix (from xmppuv__delay_prefix, kept by the
 * caller across stanzas) and the stamp for wall_ms. The bytes are copied;
 * nothing else changes. Errors: XMPPUV_EINVAL (end_tag_at > len),
 * XMPPUV_ENOMEM (out restored). */
int xmppuv__delay_insert(xmppuv__buf_t *out, const char *bytes, size_t len,
                         size_t end_tag_at, const xmppuv__buf_t *prefix,
                         int64_t wall_ms);

/* Non-zero if s has a <delay xmlns='urn:xmpp:delay'/> child. XEP-0203 §2
 * allows "one and only one", so such a stanza is never stamped again. */
int xmppuv__delay_present(const xmppuv_stanza_t *s);

#endif
