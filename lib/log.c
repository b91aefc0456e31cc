#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "xml/serialize.h"

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

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SASL2 "urn:xmpp:sasl:2"

int xmppuv__log_redacts_element(const char *name, const char *ns) {
  if (name == NULL) return 0;
  if (strcmp(name, "password") == 0 || strcmp(name, "token") == 0) return 1;
  if (ns == NULL) return 0;
  if (strcmp(ns, NS_SASL) == 0 || strcmp(ns, NS_SASL2) == 0)
    return strcmp(name, "auth") == 0 || strcmp(name, "initial-response") == 0 ||
           strcmp(name, "response") == 0 || strcmp(name, "challenge") == 0 ||
           strcmp(name, "success") == 0 ||
           strcmp(name, "additional-data") == 0;
  return 0;
}

int xmppuv__log_redacts_attr(const char *name) {
  return strcmp(name, "password") == 0 || strcmp(name, "token") == 0;
}

void xmppuv__log_stanza(const xmppuv__log_t *log, const char *direction,
                        const xmppuv_stanza_t *s) {
  if (!XMPPUV__LOG_ON(log, XMPPUV_LOG_TRACE)) return;
  xmppuv__buf_t buf = XMPPUV__BUF_INIT;
  const char *area = strcmp(direction, "in") == 0 ? "wire-in" : "wire-out";
  if (xmppuv__serialize(&buf, s, XMPPUV_NS_CLIENT, XMPPUV__SER_REDACT) == 0)
    log->cb(log->user_data, XMPPUV_LOG_TRACE, area, buf.data);
  else
    log->cb(log->user_data, XMPPUV_LOG_TRACE, area, "(element not logged: out of memory)");
  xmppuv__buf_free(&buf);
}
