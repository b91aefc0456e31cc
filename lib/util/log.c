#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


const char *xmppuv_log_level_name(xmppuv_log_level_t level) {
  switch (level) {
    case XMPPUV_LOG_NONE: return "none";
    case XMPPUV_LOG_ERROR: return "error";
    case XMPPUV_LOG_WARN: return "warn";
    case XMPPUV_LOG_INFO: return "info";
    case XMPPUV_LOG_DEBUG: return "debug";
    case XMPPUV_LOG_TRACE: return "trace";
  }
  return "unknown";
}

void xmppuv__log_emit(const xmppuv__log_t *log, xmppuv_log_level_t level,
                      const char *area, const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) memcpy(line + sizeof line - 4, "...", 4);
  log->cb(log->user_data, level, area, line);
}
