/* Allocation through the replaceable allocator (xmppuv_replace_allocator). */
#ifndef XMPPUV_ALLOC_H
#define XMPPUV_ALLOC_H

#include <stddef.h>

void *xmppuv__malloc(size_t size);
void *xmppuv__realloc(void *ptr, size_t size);
void *xmppuv__calloc(size_t count, size_t size);
void xmppuv__free(void *ptr);
/* NUL-terminated copies; NULL on allocation failure. */
char *xmppuv__strdup(const char *s);
char *xmppuv__strndup(const char *s, size_t len);
void *xmppuv__memdup(const void *p, size_t len);

#endif
