#include "util/buf.h"

#include <string.h>

#include "util/alloc.h"
#include "xmppuv.h"

int xmppuv__buf_reserve(xmppuv__buf_t *b, size_t extra) {
  if (extra > (size_t)-1 - b->len - 1) return XMPPUV_ENOMEM;
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > (size_t)-1 / 2 ? need : cap * 2;
  char *data = xmppuv__realloc(b->data, cap);
  if (data == NULL) return XMPPUV_ENOMEM;
  b->data = data;
  b->cap = cap;
  return 0;
}

int xmppuv__buf_append_grow(xmppuv__buf_t *b, const void *data, size_t len) {
  int rc = xmppuv__buf_reserve(b, len);
  if (rc != 0) return rc;
  if (len > 0) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

void xmppuv__buf_consume(xmppuv__buf_t *b, size_t n) {
  if (n >= b->len) {
    xmppuv__buf_clear(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

void xmppuv__buf_clear(xmppuv__buf_t *b) {
  b->len = 0;
  if (b->data != NULL) b->data[0] = '\0';
}

void xmppuv__buf_free(xmppuv__buf_t *b) {
  xmppuv__free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

char *xmppuv__buf_detach(xmppuv__buf_t *b, size_t *len) {
  char *data = b->data;
  if (data == NULL) {
    data = xmppuv__malloc(1);
    if (data == NULL) return NULL;
    data[0] = '\0';
  }
  if (len != NULL) *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return data;
}

int xmppuv__buf_take(xmppuv__buf_t *dst, xmppuv__buf_t *src) {
  if (dst->len == 0) {
    xmppuv__buf_t empty = *dst;
    *dst = *src;
    *src = empty;
    xmppuv__buf_clear(src);
    return 0;
  }
  if (xmppuv__buf_append(dst, src->data, src->len) != 0) return XMPPUV_ENOMEM;
  xmppuv__buf_clear(src);
  return 0;
}
