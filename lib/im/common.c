#include "common.h"

#include <stdlib.h>
#include <string.h>

char *xmppuv__im_strdup(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

char *xmppuv__im_strdup_opt(const char *s, int *failed) {
  char *p = xmppuv__im_strdup(s);
  if (s != NULL && p == NULL) *failed = 1;
  return p;
}

int xmppuv__im_from_account(xmppuv_client_t *c, const char *from, int absent_ok) {
  if (from == NULL) return absent_ok;
  const xmppuv_jid_t *me = xmppuv_client_jid(c);
  xmppuv_jid_t *f = NULL;
  if (me == NULL || xmppuv_jid_parse(from, &f) != 0) return 0;
  int ok = xmppuv_jid_is_bare(f) && xmppuv_jid_bare_equal(f, me);
  xmppuv_jid_free(f);
  return ok;
}
