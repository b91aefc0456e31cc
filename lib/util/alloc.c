#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "xmppuv.h"

static xmppuv_malloc_func malloc_fn = malloc;
static xmppuv_realloc_func realloc_fn = realloc;
static xmppuv_free_func free_fn = free;

int xmppuv_replace_allocator(xmppuv_malloc_func malloc_func,
                             xmppuv_realloc_func realloc_func,
                             xmppuv_free_func free_func) {
  if (malloc_func == NULL && realloc_func == NULL && free_func == NULL) {
    malloc_fn = malloc;
    realloc_fn = realloc;
    free_fn = free;
    return 0;
  }
  if (malloc_func == NULL || realloc_func == NULL || free_func == NULL)
    return XMPPUV_EINVAL;
  malloc_fn = malloc_func;
  realloc_fn = realloc_func;
  free_fn = free_func;
  return 0;
}

void xmppuv_free(void *ptr) { xmppuv__free(ptr); }

void *xmppuv__malloc(size_t size) { return malloc_fn(size ? size : 1); }

void *xmppuv__realloc(void *ptr, size_t size) {
  return realloc_fn(ptr, size ? size : 1);
}

void *xmppuv__calloc(size_t count, size_t size) {
  if (size != 0 && count > (size_t)-1 / size) return NULL;
  void *p = xmppuv__malloc(count * size);
  if (p != NULL) memset(p, 0, count * size);
  return p;
}

void xmppuv__free(void *ptr) {
  if (ptr != NULL) free_fn(ptr);
}

void *xmppuv__memdup(const void *p, size_t len) {
  void *copy = xmppuv__malloc(len);
  if (copy != NULL && len > 0) memcpy(copy, p, len);
  return copy;
}

char *xmppuv__strndup(const char *s, size_t len) {
  if (len == (size_t)-1) return NULL;
  char *copy = xmppuv__malloc(len + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *xmppuv__strdup(const char *s) { return xmppuv__strndup(s, strlen(s)); }

char *xmppuv__strdup_opt(const char *in, int *rc) {
  if (in == NULL) return NULL;
  char *copy = xmppuv__strdup(in);
  if (copy == NULL) *rc = XMPPUV_ENOMEM;
  return copy;
}

void xmppuv__secure_zero(void *p, size_t n) {
  if (p != NULL && n > 0) mbedtls_platform_zeroize(p, n);
}

void xmppuv__free_secret(char *s) {
  if (s == NULL) return;
  xmppuv__secure_zero(s, strlen(s));
  xmppuv__free(s);
}
