#include "util/hostport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xmppuv__split_host_port(const char *in, char *host, size_t host_size, uint16_t *port) {
  snprintf(host, host_size, "%s", in);
  *port = 0;
  char *colon = strrchr(host, ':');
  if (colon == NULL || strchr(colon, ']') != NULL) return;
  if (host[0] != '[' && strchr(host, ':') != colon) return; /* bare IPv6 */
  char *end = NULL;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (end == colon + 1 || *end != '\0' || p == 0 || p > 65535) return;
  *port = (uint16_t)p;
  *colon = '\0';
}
