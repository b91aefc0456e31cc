/* Verified server certificate chains (see cert_cache.h). */
#include "transport/cert_cache.h"

#include <string.h>

int xmppuv__cert_time_cmp(const xmppuv__cert_time_t *a,
                          const xmppuv__cert_time_t *b) {
  const int x[6] = {a->year, a->mon, a->day, a->hour, a->min, a->sec};
  const int y[6] = {b->year, b->mon, b->day, b->hour, b->min, b->sec};
  for (int i = 0; i < 6; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

static xmppuv__cert_cache_entry_t *find(const xmppuv__cert_cache_t *c,
                                        const unsigned char *key) {
  for (size_t i = 0; i < XMPPUV__CERT_CACHE_SIZE; i++) {
    const xmppuv__cert_cache_entry_t *e = &c->entries[i];
    if (e->used && memcmp(e->key, key, XMPPUV__CERT_CACHE_KEY) == 0)
      return (xmppuv__cert_cache_entry_t *)e;
  }
  return NULL;
}

int xmppuv__cert_cache_hit(const xmppuv__cert_cache_t *c,
                           const unsigned char key[XMPPUV__CERT_CACHE_KEY],
                           const xmppuv__cert_time_t *now) {
  const xmppuv__cert_cache_entry_t *e = find(c, key);
  /* Both ends count as valid, as mbedtls_x509_time_is_past() and
   * mbedtls_x509_time_is_future() have it. */
  return e != NULL && xmppuv__cert_time_cmp(now, &e->not_before) >= 0 &&
         xmppuv__cert_time_cmp(now, &e->not_after) <= 0 &&
         xmppuv__cert_time_cmp(now, &e->ends) < 0;
}

void xmppuv__cert_cache_store(xmppuv__cert_cache_t *c,
                              const unsigned char key[XMPPUV__CERT_CACHE_KEY],
                              const xmppuv__cert_time_t *not_before,
                              const xmppuv__cert_time_t *not_after,
                              const xmppuv__cert_time_t *ends) {
  xmppuv__cert_cache_entry_t *e = find(c, key);
  if (e == NULL) {
    e = &c->entries[c->next];
    c->next = (c->next + 1) % XMPPUV__CERT_CACHE_SIZE;
  }
  memcpy(e->key, key, XMPPUV__CERT_CACHE_KEY);
  e->not_before = *not_before;
  e->not_after = *not_after;
  e->ends = *ends;
  e->used = 1;
}
