#include "xml/redact.h"

#include <string.h>

#include "util/ns.h"

int xmppuv__redact_element(const char *name, const char *ns) {
  if (name == NULL) return 0;
  if (strcmp(name, "password") == 0 || strcmp(name, "token") == 0) return 1;
  if (ns == NULL) return 0;
  if (strcmp(ns, XMPPUV__NS_SASL) == 0 || strcmp(ns, XMPPUV__NS_SASL2) == 0)
    return strcmp(name, "auth") == 0 || strcmp(name, "initial-response") == 0 ||
           strcmp(name, "response") == 0 || strcmp(name, "challenge") == 0 ||
           strcmp(name, "success") == 0 || strcmp(name, "additional-data") == 0;
  return 0;
}

int xmppuv__redact_attr(const char *name) {
  return strcmp(name, "password") == 0 || strcmp(name, "token") == 0;
}
