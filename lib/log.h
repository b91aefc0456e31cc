/* The per-object log hook. The level is checked before any formatting, so a
 * disabled level costs one comparison. */
#ifndef XMPPUV_LOG_H
#define XMPPUV_LOG_H

#include "xmppuv.h"

typedef struct xmppuv__log {
  xmppuv_log_cb cb; /* NULL: logging off */
  void *user_data;
  xmppuv_log_level_t level; /* the most verbose level delivered */
} xmppuv__log_t;

#define XMPPUV__LOG_ON(log, lvl) \
  ((log) != NULL && (log)->cb != NULL && (lvl) <= (log)->level)

#if defined(__GNUC__)
#define XMPPUV__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define XMPPUV__PRINTF(fmt, args)
#endif

/* Format and deliver; callers go through xmppuv__logf so the level check
 * comes first. Messages longer than 4 KiB are truncated with "...". */
void xmppuv__log_emit(const xmppuv__log_t *log, xmppuv_log_level_t level,
                      const char *area, const char *fmt, ...)
    XMPPUV__PRINTF(4, 5);

#define xmppuv__logf(log, lvl, area, ...)                                      \
  do {                                                                         \
    if (XMPPUV__LOG_ON(log, lvl))                                              \
      xmppuv__log_emit((log), (lvl), (area), __VA_ARGS__);                     \
  } while (0)

/* Trace an element going "out" or coming "in" (area "wire-out"/"wire-in"),
 * serialized with credentials redacted (see xmppuv__log_redacts). */
void xmppuv__log_stanza(const xmppuv__log_t *log, const char *direction,
                        const xmppuv_stanza_t *s);

/* The redaction rule every log line follows. Returns non-zero if the text
 * content of an element with this name and namespace must never be logged:
 * SASL payloads (auth, challenge, response, success in RFC 6120 SASL and
 * XEP-0388 SASL2), and any element named "password" or "token". */
int xmppuv__log_redacts_element(const char *name, const char *ns);
/* Non-zero if an attribute's value must never be logged ("password",
 * "token"). */
int xmppuv__log_redacts_attr(const char *name);

#define XMPPUV__REDACTED "[redacted]"

#endif
