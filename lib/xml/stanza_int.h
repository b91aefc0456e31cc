/* Stanza internals: nodes live in a per-tree arena; the tree is refcounted.
 *
 * Each tree is one reference count plus a chain of arena chunks. Nodes,
 * names, attribute arrays and text are bump-allocated from the chunks and
 * freed all at once with the tree, so a parsed stanza usually costs one
 * malloc and one free. Space given up by a change (a replaced attribute, a
 * grown text node) is reclaimed only with the tree. */
#ifndef XMPPUV_STANZA_INT_H
#define XMPPUV_STANZA_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xmppuv.h"

typedef struct xmppuv__arena_chunk xmppuv__arena_chunk_t;

typedef struct xmppuv__tree_pool xmppuv__tree_pool_t;

typedef struct xmppuv__tree {
  uint32_t refs;
  xmppuv__tree_pool_t *pool;     /* where the first chunk goes back, or NULL */
  xmppuv__arena_chunk_t *chunks; /* newest first */
  char *cursor;                  /* free space in the newest chunk */
  size_t left;
} xmppuv__tree_t;

typedef struct xmppuv__attr {
  const char *name;
  const char *value;
} xmppuv__attr_t;

enum { XMPPUV__NODE_ELEMENT = 0, XMPPUV__NODE_TEXT = 1 };

struct xmppuv_stanza {
  xmppuv__tree_t *tree;
  struct xmppuv_stanza *parent;
  struct xmppuv_stanza *next;
  struct xmppuv_stanza *first; /* children */
  struct xmppuv_stanza *last;
  const char *name; /* element: local name; text: NULL */
  const char *ns;   /* element: own namespace, NULL = inherited */
  union {
    struct {
      xmppuv__attr_t *attrs;
      uint32_t nattrs;
      uint32_t attr_cap;
      const char *joined_text; /* cache for xmppuv_stanza_text(), or NULL */
    } el;
    struct {
      char *data; /* NUL-terminated */
      size_t len;
      size_t cap; /* bytes available at data, NUL included */
    } text;
  } u;
  uint8_t kind;
};

/* A new tree whose root element is name/ns, used as given (static, or put
 * into the arena by the caller afterwards: both may be NULL for now).
 * arena_hint is the expected size of the whole tree. NULL on allocation
 * failure. */
xmppuv_stanza_t *xmppuv__tree_new(const char *name, const char *ns,
                                  size_t arena_hint);

/* A pool of first chunks for trees made one after another (a busy
 * stream's): a freed tree's first chunk waits there for the next, instead
 * of going back to malloc and out again. Trees made from a pool may outlive
 * its owner. A pool and its trees stay on the client's thread: a tree the
 * app keeps past the library's last reference leaves its pool then
 * (xmppuv__stanza_release in stanza.h). */
xmppuv__tree_pool_t *xmppuv__tree_pool_new(void);
/* A new tree from the pool (a cached chunk, else a new one of
 * XMPPUV__POOL_CHUNK bytes), root unnamed. NULL when out of memory. */
xmppuv_stanza_t *xmppuv__tree_pool_take(xmppuv__tree_pool_t *pool);
/* The owner lets go (an idle stream keeps none; its next stanza makes a
 * new pool): the cache is freed, trees still out free their own chunks, and
 * the last of them frees the pool. NULL is ignored. */
void xmppuv__tree_pool_close(xmppuv__tree_pool_t *pool);

/* A pooled tree's first allocation, header and root included: an ordinary
 * message (its nodes, names, values and text) fits, in under 1 KB. Bigger
 * stanzas take more chunks, which go back to malloc. */
#define XMPPUV__POOL_CHUNK 992u

/* Room for size more bytes, in a new chunk when the current one is full. */
void *xmppuv__tree_grow(xmppuv__tree_t *tree, size_t size);

#define XMPPUV__ARENA_ALIGN 8u

/* size bytes (aligned) from the tree's arena; NULL when out of memory.
 * Inline: the parser takes a dozen pieces per stanza. */
static inline void *xmppuv__tree_alloc(xmppuv__tree_t *tree, size_t size) {
  /* left is a multiple of the alignment: what fits still fits once rounded
   * up. */
  if (size > tree->left) return xmppuv__tree_grow(tree, size);
  size = (size + (XMPPUV__ARENA_ALIGN - 1)) & ~(size_t)(XMPPUV__ARENA_ALIGN - 1);
  void *p = tree->cursor;
  tree->cursor += size;
  tree->left -= size;
  return p;
}

/* A NUL-terminated copy of s[0..len) in the arena; NULL when out of memory. */
static inline char *xmppuv__tree_strndup(xmppuv__tree_t *tree, const char *s, size_t len) {
  if (len == (size_t)-1) return NULL;
  char *copy = xmppuv__tree_alloc(tree, len + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

/* Append a child element; name and ns are used as given (already in the
 * arena, or static). No validation: for the parser and internal builders. */
xmppuv_stanza_t *xmppuv__node_add_element(xmppuv_stanza_t *parent,
                                          const char *name, const char *ns);
/* Append text, merging with a preceding text node. No validation. */
int xmppuv__node_add_text(xmppuv_stanza_t *parent, const char *text,
                          size_t len);
/* Set an attribute (replace or add); name and value copied. No validation.
 * With value NULL, remove. 0 or XMPPUV_ENOMEM. */
int xmppuv__node_set_attr(xmppuv_stanza_t *s, const char *name,
                          const char *value);
/* Append an attribute known not to be present yet (parser fast path); name
 * and value must already live in the tree's arena or be static. */
int xmppuv__node_push_attr_grow(xmppuv_stanza_t *s, const char *name, const char *value);
static inline int xmppuv__node_push_attr(xmppuv_stanza_t *s, const char *name,
                                         const char *value) {
  if (s->u.el.nattrs == s->u.el.attr_cap) return xmppuv__node_push_attr_grow(s, name, value);
  s->u.el.attrs[s->u.el.nattrs].name = name;
  s->u.el.attrs[s->u.el.nattrs].value = value;
  s->u.el.nattrs++;
  return 0;
}
/* Room for n attributes in all, so that pushing them allocates nothing more
 * (the parser knows the count from the start tag). 0 or XMPPUV_ENOMEM. */
int xmppuv__node_reserve_attrs(xmppuv_stanza_t *s, uint32_t n);

#endif
