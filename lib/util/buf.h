/* A growable byte buffer with amortized O(1) appends (text accumulates in
 * linear time). Always NUL-terminated after a successful append. */
#ifndef XMPPUV_BUF_H
#define XMPPUV_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct xmppuv__buf {
  char *data; /* NULL until the first append */
  size_t len;
  size_t cap;
} xmppuv__buf_t;

#define XMPPUV__BUF_INIT {NULL, 0, 0}

/* Make room for extra more bytes (+1 for the NUL). 0 or XMPPUV_ENOMEM. */
int xmppuv__buf_reserve(xmppuv__buf_t *b, size_t extra);
/* The slow path of the appends below: grow, then append. */
int xmppuv__buf_append_grow(xmppuv__buf_t *b, const void *data, size_t len);

/* Appends are inline: the serializer makes many small ones per stanza, and
 * the room is almost always there already. */
static inline int xmppuv__buf_append(xmppuv__buf_t *b, const void *data, size_t len) {
  if (b->cap - b->len <= len) return xmppuv__buf_append_grow(b, data, len);
  if (len > 0) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}
static inline int xmppuv__buf_append_str(xmppuv__buf_t *b, const char *s) {
  return xmppuv__buf_append(b, s, strlen(s));
}
static inline int xmppuv__buf_append_char(xmppuv__buf_t *b, char c) {
  if (b->cap - b->len <= 1) return xmppuv__buf_append_grow(b, &c, 1);
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
  return 0;
}
/* Drop the first n bytes (a consumed prefix), keeping the rest. */
void xmppuv__buf_consume(xmppuv__buf_t *b, size_t n);
/* Empty it but keep the memory. */
void xmppuv__buf_clear(xmppuv__buf_t *b);
/* Move src's bytes to the end of dst and leave src empty. When dst is empty
 * the two exchange storage (no copy: src gets dst's, with its capacity). 0,
 * or XMPPUV_ENOMEM (then both are as they were). */
int xmppuv__buf_take(xmppuv__buf_t *dst, xmppuv__buf_t *src);
void xmppuv__buf_free(xmppuv__buf_t *b);
/* Hand the memory to the caller (to free with xmppuv__free); b is emptied.
 * Returns an allocated "" when nothing was appended, NULL if that fails. */
char *xmppuv__buf_detach(xmppuv__buf_t *b, size_t *len);

#endif
