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

#endif
