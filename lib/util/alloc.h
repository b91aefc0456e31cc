/* Allocation through the replaceable allocator (xmppuv_replace_allocator). */
#ifndef XMPPUV_ALLOC_H
#define XMPPUV_ALLOC_H

#include <stddef.h>

void *xmppuv__malloc(size_t size);
void *xmppuv__realloc(void *ptr, size_t size);
void *xmppuv__calloc(size_t count, size_t size);
void xmppuv__free(void *ptr);
/* NUL-terminated copies; NULL on allocation failure. */
/* A copy of an optional string: NULL for NULL. If the copy cannot be made,
 * NULL, and *rc is set to XMPPUV_ENOMEM (it is left alone otherwise, so
 * several copies can share one rc). */
char *xmppuv__strdup_opt(const char *in, int *rc);
/* Zero n bytes in a way the compiler may not remove (a secret's last use).
 * NULL with n == 0 is fine. */
void xmppuv__secure_zero(void *p, size_t n);
/* Wipe a string holding a secret (a token, a password), then free it.
 * NULL is a no-op. */
void xmppuv__free_secret(char *s);
char *xmppuv__strdup(const char *s);
char *xmppuv__strndup(const char *s, size_t len);
void *xmppuv__memdup(const void *p, size_t len);

#endif
