#include <expat.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/utf8.h"
#include "xml/stanza.h"
#include "xml/stanza_int.h"

/* ---- arena -------------------------------------------------------------- */

struct xmppuv__arena_chunk {
  xmppuv__arena_chunk_t *next;
  size_t size;
};

#define ALIGN XMPPUV__ARENA_ALIGN
#define ALIGN_UP(n) (((n) + (ALIGN - 1)) & ~(size_t)(ALIGN - 1))
#define CHUNK_HEADER ALIGN_UP(sizeof(xmppuv__arena_chunk_t))
#define MIN_CHUNK 512u

#define HEAD (CHUNK_HEADER + ALIGN_UP(sizeof(xmppuv__tree_t)) + ALIGN_UP(sizeof(struct xmppuv_stanza)))

/* A tree in mem[0..size): the first chunk holds the tree header and the
 * root node, then free space, so a small stanza is one allocation. */
static xmppuv_stanza_t *tree_init(char *mem, size_t size, const char *name, const char *ns) {
  size_t head = HEAD;
  size_t space = size - head;
  xmppuv__arena_chunk_t *chunk = (xmppuv__arena_chunk_t *)(void *)mem;
  chunk->next = NULL;
  chunk->size = size;
  xmppuv__tree_t *tree = (xmppuv__tree_t *)(void *)(mem + CHUNK_HEADER);
  tree->refs = 1;
  tree->pool = NULL;
  tree->chunks = chunk;
  tree->cursor = mem + head;
  tree->left = space;
  xmppuv_stanza_t *root =
      (xmppuv_stanza_t *)(void *)(mem + CHUNK_HEADER +
                                  ALIGN_UP(sizeof(xmppuv__tree_t)));
  memset(root, 0, sizeof *root);
  root->tree = tree;
  root->kind = XMPPUV__NODE_ELEMENT;
  root->name = name;
  root->ns = ns;
  return root;
}

xmppuv_stanza_t *xmppuv__tree_new(const char *name, const char *ns,
                                  size_t arena_hint) {
  size_t space = arena_hint < MIN_CHUNK ? MIN_CHUNK : ALIGN_UP(arena_hint);
  if (space > (size_t)-1 - HEAD) return NULL;
  char *mem = xmppuv__malloc(HEAD + space);
  if (mem == NULL) return NULL;
  return tree_init(mem, HEAD + space, name, ns);
}

/* ---- pools of first chunks ---------------------------------------------- */

/* Enough for the trees a busy stream has out at once: the engine's backlog
 * plus one slice of input (session.c). */
#define POOL_MAX 32u

_Static_assert(XMPPUV__POOL_CHUNK % ALIGN == 0 && XMPPUV__POOL_CHUNK >= HEAD + 256,
               "a pooled chunk holds the tree's header and room for a small stanza");

/* Under AddressSanitizer a cached chunk is poisoned, so that a stanza used
 * after its last unref is still caught (valgrind, which sees the chunk as
 * allocated, cannot: the sanitizer builds are where this is checked). */
#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

struct xmppuv__tree_pool {
  uint32_t refs; /* the owner's, plus one per tree out */
  uint32_t count;
  int closed;
  void *cached[POOL_MAX];
};

xmppuv__tree_pool_t *xmppuv__tree_pool_new(void) {
  xmppuv__tree_pool_t *pool = xmppuv__malloc(sizeof *pool);
  if (pool == NULL) return NULL;
  pool->refs = 1;
  pool->count = 0;
  pool->closed = 0;
  return pool;
}

xmppuv_stanza_t *xmppuv__tree_pool_take(xmppuv__tree_pool_t *pool) {
  char *mem;
  if (pool->count > 0) {
    mem = pool->cached[--pool->count];
    ASAN_UNPOISON_MEMORY_REGION(mem, XMPPUV__POOL_CHUNK);
  } else {
    mem = xmppuv__malloc(XMPPUV__POOL_CHUNK);
    if (mem == NULL) return NULL;
  }
  xmppuv_stanza_t *root = tree_init(mem, XMPPUV__POOL_CHUNK, NULL, NULL);
  root->tree->pool = pool;
  pool->refs++;
  return root;
}

static void pool_drain(xmppuv__tree_pool_t *pool) {
  while (pool->count > 0) {
    void *mem = pool->cached[--pool->count];
    ASAN_UNPOISON_MEMORY_REGION(mem, XMPPUV__POOL_CHUNK);
    xmppuv__free(mem);
  }
}

static void pool_unref(xmppuv__tree_pool_t *pool) {
  if (--pool->refs == 0) xmppuv__free(pool);
}

void xmppuv__tree_pool_close(xmppuv__tree_pool_t *pool) {
  if (pool == NULL) return;
  pool_drain(pool);
  pool->closed = 1;
  pool_unref(pool);
}

void *xmppuv__tree_grow(xmppuv__tree_t *tree, size_t size) {
  if (size > (size_t)-1 - CHUNK_HEADER - ALIGN) return NULL; /* overflow */
  size = ALIGN_UP(size);
  size_t last = tree->chunks->size;
  size_t want = last * 2;
  if (want < last) return NULL; /* overflow */
  if (want < size + CHUNK_HEADER) want = size + CHUNK_HEADER;
  xmppuv__arena_chunk_t *chunk = xmppuv__malloc(want);
  if (chunk == NULL) return NULL;
  chunk->next = tree->chunks;
  chunk->size = want;
  tree->chunks = chunk;
  tree->cursor = (char *)chunk + CHUNK_HEADER + size;
  tree->left = want - CHUNK_HEADER - size;
  return (char *)chunk + CHUNK_HEADER;
}

static void tree_free(xmppuv__tree_t *tree) {
  /* The oldest chunk holds the tree header itself: free it last (or give
   * it back to its pool). */
  xmppuv__tree_pool_t *pool = tree->pool;
  xmppuv__arena_chunk_t *chunk = tree->chunks;
  while (chunk != NULL) {
    xmppuv__arena_chunk_t *next = chunk->next;
    if (next == NULL && pool != NULL && !pool->closed && pool->count < POOL_MAX) {
      ASAN_POISON_MEMORY_REGION(chunk, XMPPUV__POOL_CHUNK);
      pool->cached[pool->count++] = chunk;
    } else {
      xmppuv__free(chunk);
    }
    chunk = next;
  }
  if (pool != NULL) pool_unref(pool);
}

/* ---- node building (no validation) -------------------------------------- */

static void link_child(xmppuv_stanza_t *parent, xmppuv_stanza_t *child) {
  child->parent = parent;
  child->next = NULL;
  if (parent->last != NULL)
    parent->last->next = child;
  else
    parent->first = child;
  parent->last = child;
  parent->u.el.joined_text = NULL;
}

xmppuv_stanza_t *xmppuv__node_add_element(xmppuv_stanza_t *parent,
                                          const char *name, const char *ns) {
  xmppuv_stanza_t *child = xmppuv__tree_alloc(parent->tree, sizeof *child);
  if (child == NULL) return NULL;
  memset(child, 0, sizeof *child);
  child->tree = parent->tree;
  child->kind = XMPPUV__NODE_ELEMENT;
  child->name = name;
  child->ns = ns;
  link_child(parent, child);
  return child;
}

int xmppuv__node_add_text(xmppuv_stanza_t *parent, const char *text,
                          size_t len) {
  if (len == 0) return 0;
  xmppuv__tree_t *tree = parent->tree;
  xmppuv_stanza_t *last = parent->last;
  if (last != NULL && last->kind == XMPPUV__NODE_TEXT) {
    /* Grow geometrically so repeated appends stay linear overall. */
    size_t need = last->u.text.len + len + 1;
    if (need > last->u.text.cap) {
      size_t cap = last->u.text.cap * 2;
      if (cap < need) cap = need;
      char *data = xmppuv__tree_alloc(tree, cap);
      if (data == NULL) return XMPPUV_ENOMEM;
      memcpy(data, last->u.text.data, last->u.text.len);
      last->u.text.data = data;
      last->u.text.cap = cap;
    }
    memcpy(last->u.text.data + last->u.text.len, text, len);
    last->u.text.len += len;
    last->u.text.data[last->u.text.len] = '\0';
    parent->u.el.joined_text = NULL;
    return 0;
  }
  xmppuv_stanza_t *node = xmppuv__tree_alloc(tree, sizeof *node);
  if (node == NULL) return XMPPUV_ENOMEM;
  memset(node, 0, sizeof *node);
  node->tree = tree;
  node->kind = XMPPUV__NODE_TEXT;
  node->u.text.data = xmppuv__tree_strndup(tree, text, len);
  if (node->u.text.data == NULL) return XMPPUV_ENOMEM;
  node->u.text.len = len;
  node->u.text.cap = len + 1;
  link_child(parent, node);
  return 0;
}

int xmppuv__node_push_attr_grow(xmppuv_stanza_t *s, const char *name, const char *value) {
  if (s->u.el.nattrs == s->u.el.attr_cap) {
    uint32_t cap = s->u.el.attr_cap ? s->u.el.attr_cap * 2 : 4;
    xmppuv__attr_t *attrs = xmppuv__tree_alloc(s->tree, cap * sizeof *attrs);
    if (attrs == NULL) return XMPPUV_ENOMEM;
    if (s->u.el.nattrs > 0)
      memcpy(attrs, s->u.el.attrs, s->u.el.nattrs * sizeof *attrs);
    s->u.el.attrs = attrs;
    s->u.el.attr_cap = cap;
  }
  s->u.el.attrs[s->u.el.nattrs].name = name;
  s->u.el.attrs[s->u.el.nattrs].value = value;
  s->u.el.nattrs++;
  return 0;
}

int xmppuv__node_reserve_attrs(xmppuv_stanza_t *s, uint32_t n) {
  if (n <= s->u.el.attr_cap) return 0;
  xmppuv__attr_t *attrs = xmppuv__tree_alloc(s->tree, (size_t)n * sizeof *attrs);
  if (attrs == NULL) return XMPPUV_ENOMEM;
  if (s->u.el.nattrs > 0) memcpy(attrs, s->u.el.attrs, s->u.el.nattrs * sizeof *attrs);
  s->u.el.attrs = attrs;
  s->u.el.attr_cap = n;
  return 0;
}

static xmppuv__attr_t *find_attr(const xmppuv_stanza_t *s, const char *name) {
  for (uint32_t i = 0; i < s->u.el.nattrs; i++)
    if (xmppuv__streq(s->u.el.attrs[i].name, name)) return &s->u.el.attrs[i];
  return NULL;
}

int xmppuv__node_set_attr(xmppuv_stanza_t *s, const char *name,
                          const char *value) {
  xmppuv__attr_t *attr = find_attr(s, name);
  if (value == NULL) {
    if (attr != NULL) {
      size_t i = (size_t)(attr - s->u.el.attrs);
      memmove(attr, attr + 1, (s->u.el.nattrs - i - 1) * sizeof *attr);
      s->u.el.nattrs--;
    }
    return 0;
  }
  char *v = xmppuv__tree_strndup(s->tree, value, strlen(value));
  if (v == NULL) return XMPPUV_ENOMEM;
  if (attr != NULL) {
    attr->value = v;
    return 0;
  }
  char *n = xmppuv__tree_strndup(s->tree, name, strlen(name));
  if (n == NULL) return XMPPUV_ENOMEM;
  return xmppuv__node_push_attr(s, n, v);
}

/* ---- public: creating and changing -------------------------------------- */

/* Expat reads what we write (our own parser, and Prosody's and ejabberd's),
 * and it implements the XML 1.0 4th edition name tables (Appendix B), which
 * allow fewer non-ASCII characters than the 5th edition rule that
 * xmppuv__xml_name_check() follows (U+0651 may start a name in the 5th, not
 * in the 4th). A name expat refuses would make the stanza unparseable on
 * the wire, so every non-ASCII name is also put to expat. */
static int expat_accepts_name(const char *name, int is_attr) {
  static const XML_Memory_Handling_Suite mem = {xmppuv__malloc, xmppuv__realloc,
                                                xmppuv__free};
  /* A one-element document using the name, read with namespaces on, as
   * every XMPP parser reads it (a prefixed name gets its prefix bound). */
  xmppuv__buf_t doc = XMPPUV__BUF_INIT;
  const char *colon = strchr(name, ':');
  int rc = xmppuv__buf_append_str(&doc, is_attr ? "<a " : "<");
  if (rc == 0 && is_attr && colon != NULL && strncmp(name, "xml:", 4) != 0 &&
      strncmp(name, "xmlns:", 6) != 0) {
    rc = xmppuv__buf_append_str(&doc, "xmlns:");
    if (rc == 0) rc = xmppuv__buf_append(&doc, name, (size_t)(colon - name));
    if (rc == 0) rc = xmppuv__buf_append_str(&doc, "='u' ");
  }
  if (rc == 0) rc = xmppuv__buf_append_str(&doc, name);
  if (rc == 0) rc = xmppuv__buf_append_str(&doc, is_attr ? "='u'/>" : "/>");
  XML_Parser xp = rc == 0 ? XML_ParserCreate_MM("UTF-8", &mem, "\x01") : NULL;
  if (xp == NULL) {
    xmppuv__buf_free(&doc);
    return XMPPUV_ENOMEM;
  }
  if (XML_Parse(xp, doc.data, (int)doc.len, XML_TRUE) != XML_STATUS_OK)
    rc = XML_GetErrorCode(xp) == XML_ERROR_NO_MEMORY ? XMPPUV_ENOMEM : XMPPUV_EXMLNAME;
  XML_ParserFree(xp);
  xmppuv__buf_free(&doc);
  return rc;
}

static int check_name(const char *name, int is_attr) {
  int rc = xmppuv__xml_name_check(name, is_attr);
  if (rc != 0) return rc;
  size_t len = strlen(name);
  if (len > INT32_MAX / 2) return XMPPUV_ETOOBIG;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)name[i] >= 0x80) return expat_accepts_name(name, is_attr);
  return 0;
}

#define NS_XMLNS "http://www.w3.org/2000/xmlns/"

/* Namespaces in XML 1.0 §3: the xmlns namespace is never declared, the xml
 * one only for the prefix xml, and a prefix cannot be bound to "" (that is
 * XML 1.1). Expat refuses each of these, so the tree must not hold them. */
static int ns_allowed(const char *prefix, size_t prefix_len, const char *uri) {
  int is_xml_prefix = prefix_len == 3 && memcmp(prefix, "xml", 3) == 0;
  if (prefix_len == 5 && memcmp(prefix, "xmlns", 5) == 0) return 0;
  if (strcmp(uri, NS_XMLNS) == 0) return 0;
  if ((strcmp(uri, XMPPUV_NS_XML) == 0) != is_xml_prefix) return 0;
  return prefix == NULL || uri[0] != '\0';
}

static int check_element_args(const char *name, const char *ns) {
  if (name == NULL) return XMPPUV_EINVAL;
  int rc = check_name(name, 0);
  if (rc != 0) return rc;
  if (ns == NULL) return 0;
  rc = xmppuv__xml_text_check(ns, strlen(ns));
  if (rc == 0 && !ns_allowed(NULL, 0, ns)) rc = XMPPUV_EINVAL;
  return rc;
}

int xmppuv_stanza_new(const char *name, const char *ns, xmppuv_stanza_t **out) {
  if (out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  int rc = check_element_args(name, ns);
  if (rc != 0) return rc;
  size_t name_len = strlen(name);
  size_t ns_len = ns ? strlen(ns) : 0;
  xmppuv_stanza_t *s = xmppuv__tree_new(NULL, NULL, name_len + ns_len + 256);
  if (s == NULL) return XMPPUV_ENOMEM;
  s->name = xmppuv__tree_strndup(s->tree, name, name_len);
  s->ns = ns ? xmppuv__tree_strndup(s->tree, ns, ns_len) : NULL;
  if (s->name == NULL || (ns != NULL && s->ns == NULL)) {
    tree_free(s->tree);
    return XMPPUV_ENOMEM;
  }
  *out = s;
  return 0;
}

int xmppuv_stanza_new_child(xmppuv_stanza_t *parent, const char *name,
                            const char *ns, xmppuv_stanza_t **child) {
  if (child != NULL) *child = NULL;
  if (parent == NULL || parent->kind != XMPPUV__NODE_ELEMENT)
    return XMPPUV_EINVAL;
  int rc = check_element_args(name, ns);
  if (rc != 0) return rc;
  const char *n = xmppuv__tree_strndup(parent->tree, name, strlen(name));
  const char *s = ns ? xmppuv__tree_strndup(parent->tree, ns, strlen(ns)) : NULL;
  if (n == NULL || (ns != NULL && s == NULL)) return XMPPUV_ENOMEM;
  xmppuv_stanza_t *c = xmppuv__node_add_element(parent, n, s);
  if (c == NULL) return XMPPUV_ENOMEM;
  if (child != NULL) *child = c;
  return 0;
}

/* Copy src's subtree under dst (an element of another or the same tree),
 * iteratively so that deep trees cannot exhaust the stack. */
static int copy_children(xmppuv_stanza_t *dst, const xmppuv_stanza_t *src) {
  xmppuv__tree_t *tree = dst->tree;
  const xmppuv_stanza_t *from = src->first;
  xmppuv_stanza_t *to_parent = dst;
  while (from != NULL) {
    int descended = 0;
    if (from->kind == XMPPUV__NODE_TEXT) {
      if (xmppuv__node_add_text(to_parent, from->u.text.data,
                                from->u.text.len) != 0)
        return XMPPUV_ENOMEM;
    } else {
      const char *name = xmppuv__tree_strndup(tree, from->name, strlen(from->name));
      const char *ns = from->ns
                           ? xmppuv__tree_strndup(tree, from->ns, strlen(from->ns))
                           : NULL;
      if (name == NULL || (from->ns != NULL && ns == NULL)) return XMPPUV_ENOMEM;
      xmppuv_stanza_t *el = xmppuv__node_add_element(to_parent, name, ns);
      if (el == NULL) return XMPPUV_ENOMEM;
      for (uint32_t i = 0; i < from->u.el.nattrs; i++) {
        const xmppuv__attr_t *a = &from->u.el.attrs[i];
        char *an = xmppuv__tree_strndup(tree, a->name, strlen(a->name));
        char *av = xmppuv__tree_strndup(tree, a->value, strlen(a->value));
        if (an == NULL || av == NULL || xmppuv__node_push_attr(el, an, av) != 0)
          return XMPPUV_ENOMEM;
      }
      if (from->first != NULL) {
        to_parent = el;
        from = from->first;
        descended = 1;
      }
    }
    if (descended) continue;
    /* Next node: a sibling, or climb until one has a sibling. */
    while (from != NULL && from->next == NULL) {
      from = from->parent;
      if (from == src) return 0;
      to_parent = to_parent->parent;
    }
    if (from != NULL) from = from->next;
  }
  return 0;
}

/* "xmlns:p" for a prefixed attribute name, in decl (64 bytes); 0 if the
 * name has no prefix that needs a declaration (none, xml, xmlns) or one
 * too long for set_attr to have bound. */
static int decl_for(const char *name, char *decl) {
  const char *colon = strchr(name, ':');
  if (colon == NULL) return 0;
  size_t plen = (size_t)(colon - name);
  if ((plen == 3 && memcmp(name, "xml", 3) == 0) ||
      (plen == 5 && memcmp(name, "xmlns", 5) == 0) || plen + 7 > 64)
    return 0;
  memcpy(decl, "xmlns:", 6);
  memcpy(decl + 6, name, plen);
  decl[6 + plen] = '\0';
  return 1;
}

/* The next element or text node after n in document order, staying inside
 * top's subtree; NULL at its end. */
static const xmppuv_stanza_t *next_in(const xmppuv_stanza_t *n, const xmppuv_stanza_t *top) {
  if (n->kind == XMPPUV__NODE_ELEMENT && n->first != NULL) return n->first;
  while (n != top && n->next == NULL) n = n->parent;
  return n == top ? NULL : n->next;
}

/* set_attr() lets an attribute's prefix be declared on any ancestor. A copy
 * of src stands alone, so every declaration its attributes need from above
 * src goes onto the copy's root dst (found by fuzzing: the copy serialized
 * with an unbound prefix). */
static int carry_prefix_decls(xmppuv_stanza_t *dst, const xmppuv_stanza_t *src) {
  for (const xmppuv_stanza_t *e = src; e != NULL; e = next_in(e, src)) {
    if (e->kind != XMPPUV__NODE_ELEMENT) continue;
    for (uint32_t i = 0; i < e->u.el.nattrs; i++) {
      char decl[64];
      if (!decl_for(e->u.el.attrs[i].name, decl) || find_attr(dst, decl) != NULL) continue;
      const xmppuv_stanza_t *n = e;
      while (find_attr(n, decl) == NULL && n != src) n = n->parent;
      if (find_attr(n, decl) != NULL) continue; /* declared inside the copy */
      const xmppuv__attr_t *d = NULL;
      for (n = src->parent; n != NULL && d == NULL; n = n->parent) d = find_attr(n, decl);
      if (d == NULL) continue;
      char *dn = xmppuv__tree_strndup(dst->tree, decl, strlen(decl));
      char *dv = xmppuv__tree_strndup(dst->tree, d->value, strlen(d->value));
      if (dn == NULL || dv == NULL || xmppuv__node_push_attr(dst, dn, dv) != 0)
        return XMPPUV_ENOMEM;
    }
  }
  return 0;
}

static int copy_element_into(xmppuv_stanza_t *dst, const xmppuv_stanza_t *src) {
  for (uint32_t i = 0; i < src->u.el.nattrs; i++) {
    const xmppuv__attr_t *a = &src->u.el.attrs[i];
    char *an = xmppuv__tree_strndup(dst->tree, a->name, strlen(a->name));
    char *av = xmppuv__tree_strndup(dst->tree, a->value, strlen(a->value));
    if (an == NULL || av == NULL || xmppuv__node_push_attr(dst, an, av) != 0)
      return XMPPUV_ENOMEM;
  }
  int rc = carry_prefix_decls(dst, src);
  return rc != 0 ? rc : copy_children(dst, src);
}

/* Removing xmlns:p from s while an attribute in s's subtree uses p and no
 * ancestor declares it would leave the prefix unbound. */
static int decl_in_use(const xmppuv_stanza_t *s, const char *decl) {
  for (const xmppuv_stanza_t *n = s->parent; n != NULL; n = n->parent)
    if (find_attr(n, decl) != NULL) return 0;
  for (const xmppuv_stanza_t *e = s; e != NULL; e = next_in(e, s)) {
    if (e->kind != XMPPUV__NODE_ELEMENT) continue;
    for (uint32_t i = 0; i < e->u.el.nattrs; i++) {
      char d[64];
      if (decl_for(e->u.el.attrs[i].name, d) && strcmp(d, decl) == 0) return 1;
    }
  }
  return 0;
}

int xmppuv_stanza_add_child(xmppuv_stanza_t *parent,
                            const xmppuv_stanza_t *child) {
  if (parent == NULL || child == NULL || parent->kind != XMPPUV__NODE_ELEMENT)
    return XMPPUV_EINVAL;
  for (const xmppuv_stanza_t *p = parent; p != NULL; p = p->parent)
    if (p == child) return XMPPUV_EINVAL;
  if (child->kind == XMPPUV__NODE_TEXT)
    return xmppuv__node_add_text(parent, child->u.text.data, child->u.text.len);
  xmppuv__tree_t *tree = parent->tree;
  const char *ns_src = xmppuv_stanza_ns(child);
  const char *name = xmppuv__tree_strndup(tree, child->name, strlen(child->name));
  const char *ns = ns_src ? xmppuv__tree_strndup(tree, ns_src, strlen(ns_src)) : NULL;
  if (name == NULL || (ns_src != NULL && ns == NULL)) return XMPPUV_ENOMEM;
  xmppuv_stanza_t *el = xmppuv__node_add_element(parent, name, ns);
  if (el == NULL) return XMPPUV_ENOMEM;
  int rc = copy_element_into(el, child);
  if (rc != 0) xmppuv_stanza_remove(el); /* leave parent as it was */
  return rc;
}

int xmppuv_stanza_add_text(xmppuv_stanza_t *parent, const char *text,
                           size_t len) {
  if (parent == NULL || parent->kind != XMPPUV__NODE_ELEMENT ||
      (text == NULL && len > 0))
    return XMPPUV_EINVAL;
  if (len > 0x7FFFFFFFu) return XMPPUV_ETOOBIG;
  int rc = xmppuv__xml_text_check(text, len);
  if (rc != 0) return rc;
  return xmppuv__node_add_text(parent, text, len);
}

int xmppuv_stanza_set_text(xmppuv_stanza_t *s, const char *text) {
  if (s == NULL || text == NULL || s->kind != XMPPUV__NODE_ELEMENT)
    return XMPPUV_EINVAL;
  size_t len = strlen(text);
  if (len > 0x7FFFFFFFu) return XMPPUV_ETOOBIG;
  int rc = xmppuv__xml_text_check(text, len);
  if (rc != 0) return rc;
  /* Build the new node first, so a failure leaves s unchanged. */
  xmppuv_stanza_t *node = NULL;
  if (len > 0) {
    node = xmppuv__tree_alloc(s->tree, sizeof *node);
    char *data = node ? xmppuv__tree_strndup(s->tree, text, len) : NULL;
    if (data == NULL) return XMPPUV_ENOMEM;
    memset(node, 0, sizeof *node);
    node->tree = s->tree;
    node->kind = XMPPUV__NODE_TEXT;
    node->u.text.data = data;
    node->u.text.len = len;
    node->u.text.cap = len + 1;
  }
  /* The old children stay valid on their own (see xmppuv_stanza_remove). */
  for (xmppuv_stanza_t *c = s->first; c != NULL; c = c->next)
    if (c->kind == XMPPUV__NODE_ELEMENT && (rc = carry_prefix_decls(c, c)) != 0) return rc;
  for (xmppuv_stanza_t *c = s->first; c != NULL; c = c->next) c->parent = NULL;
  s->first = s->last = NULL;
  s->u.el.joined_text = NULL;
  if (node != NULL) link_child(s, node);
  return 0;
}

/* A prefixed attribute needs its prefix bound: "xml" always is; others by an
 * xmlns:prefix attribute on the element or an ancestor. */
static int prefix_bound(const xmppuv_stanza_t *s, const char *name,
                        const char *colon) {
  size_t plen = (size_t)(colon - name);
  if (plen == 3 && memcmp(name, "xml", 3) == 0) return 1;
  char decl[64];
  if (plen + 7 > sizeof decl) return 0;
  memcpy(decl, "xmlns:", 6);
  memcpy(decl + 6, name, plen);
  decl[6 + plen] = '\0';
  for (; s != NULL; s = s->parent)
    if (find_attr(s, decl) != NULL) return 1;
  return 0;
}

int xmppuv_stanza_set_attr(xmppuv_stanza_t *s, const char *name,
                           const char *value) {
  if (s == NULL || name == NULL || s->kind != XMPPUV__NODE_ELEMENT)
    return XMPPUV_EINVAL;
  int rc = check_name(name, 1);
  if (rc != 0) return rc;
  if (strcmp(name, "xmlns") == 0) return XMPPUV_EXMLNAME;
  const char *colon = strchr(name, ':');
  if (colon != NULL && strchr(colon + 1, ':') != NULL) return XMPPUV_EXMLNAME;
  int is_decl = colon != NULL && colon - name == 5 && memcmp(name, "xmlns", 5) == 0;
  if (colon != NULL && !is_decl && !prefix_bound(s, name, colon))
    return XMPPUV_EXMLNAME;
  if (value != NULL) {
    rc = xmppuv__xml_text_check(value, strlen(value));
    if (rc != 0) return rc;
    if (is_decl && !ns_allowed(colon + 1, strlen(colon + 1), value)) return XMPPUV_EINVAL;
  } else if (is_decl && decl_in_use(s, name)) {
    return XMPPUV_EINVAL;
  }
  return xmppuv__node_set_attr(s, name, value);
}

int xmppuv_stanza_remove(xmppuv_stanza_t *child) {
  if (child == NULL || child->parent == NULL) return XMPPUV_EINVAL;
  /* A detached element may be added elsewhere: it takes along the prefix
   * declarations its attributes had from above. */
  if (child->kind == XMPPUV__NODE_ELEMENT) {
    int rc = carry_prefix_decls(child, child);
    if (rc != 0) return rc;
  }
  xmppuv_stanza_t *parent = child->parent;
  xmppuv_stanza_t *prev = NULL;
  for (xmppuv_stanza_t *c = parent->first; c != child; c = c->next) prev = c;
  if (prev != NULL)
    prev->next = child->next;
  else
    parent->first = child->next;
  if (parent->last == child) parent->last = prev;
  child->parent = NULL;
  child->next = NULL;
  parent->u.el.joined_text = NULL;
  return 0;
}

/* ---- public: reading ---------------------------------------------------- */

const char *xmppuv_stanza_name(const xmppuv_stanza_t *s) {
  return s != NULL && s->kind == XMPPUV__NODE_ELEMENT ? s->name : NULL;
}

const char *xmppuv_stanza_ns(const xmppuv_stanza_t *s) {
  if (s != NULL && s->kind == XMPPUV__NODE_TEXT) s = s->parent;
  for (; s != NULL; s = s->parent)
    if (s->ns != NULL) return s->ns;
  return NULL;
}

const char *xmppuv_stanza_attr(const xmppuv_stanza_t *s, const char *name) {
  if (s == NULL || name == NULL || s->kind != XMPPUV__NODE_ELEMENT) return NULL;
  const xmppuv__attr_t *a = find_attr(s, name);
  return a ? a->value : NULL;
}

size_t xmppuv_stanza_attr_count(const xmppuv_stanza_t *s) {
  return s != NULL && s->kind == XMPPUV__NODE_ELEMENT ? s->u.el.nattrs : 0;
}

int xmppuv_stanza_attr_at(const xmppuv_stanza_t *s, size_t i, const char **name,
                          const char **value) {
  if (s == NULL || s->kind != XMPPUV__NODE_ELEMENT || i >= s->u.el.nattrs)
    return XMPPUV_EINVAL;
  if (name != NULL) *name = s->u.el.attrs[i].name;
  if (value != NULL) *value = s->u.el.attrs[i].value;
  return 0;
}

int xmppuv_stanza_is_text(const xmppuv_stanza_t *s) {
  return s != NULL && s->kind == XMPPUV__NODE_TEXT;
}

const char *xmppuv_stanza_text(const xmppuv_stanza_t *s, size_t *len) {
  if (len != NULL) *len = 0;
  if (s == NULL) return NULL;
  if (s->kind == XMPPUV__NODE_TEXT) {
    if (len != NULL) *len = s->u.text.len;
    return s->u.text.data;
  }
  const xmppuv_stanza_t *only = NULL;
  size_t total = 0, count = 0;
  for (const xmppuv_stanza_t *c = s->first; c != NULL; c = c->next) {
    if (c->kind != XMPPUV__NODE_TEXT) continue;
    only = c;
    total += c->u.text.len;
    count++;
  }
  if (count == 0) return "";
  if (count == 1) {
    if (len != NULL) *len = only->u.text.len;
    return only->u.text.data;
  }
  /* Several text nodes split by elements: join once, cache until changed. */
  xmppuv_stanza_t *mut = (xmppuv_stanza_t *)(uintptr_t)s;
  if (mut->u.el.joined_text == NULL) {
    char *joined = xmppuv__tree_alloc(mut->tree, total + 1);
    if (joined == NULL) return NULL;
    size_t at = 0;
    for (const xmppuv_stanza_t *c = s->first; c != NULL; c = c->next) {
      if (c->kind != XMPPUV__NODE_TEXT) continue;
      memcpy(joined + at, c->u.text.data, c->u.text.len);
      at += c->u.text.len;
    }
    joined[at] = '\0';
    mut->u.el.joined_text = joined;
  }
  if (len != NULL) *len = total;
  return mut->u.el.joined_text;
}

const char *xmppuv_stanza_child_text(const xmppuv_stanza_t *s, const char *name,
                                     const char *ns) {
  const xmppuv_stanza_t *c = xmppuv_stanza_child(s, name, ns);
  return c ? xmppuv_stanza_text(c, NULL) : NULL;
}

static int matches(const xmppuv_stanza_t *c, const char *name, const char *ns) {
  if (c->kind != XMPPUV__NODE_ELEMENT) return 0;
  if (name != NULL && strcmp(c->name, name) != 0) return 0;
  if (ns != NULL) {
    const char *cns = xmppuv_stanza_ns(c);
    if (cns == NULL || strcmp(cns, ns) != 0) return 0;
  }
  return 1;
}

xmppuv_stanza_t *xmppuv_stanza_child(const xmppuv_stanza_t *s, const char *name,
                                     const char *ns) {
  if (s == NULL || s->kind != XMPPUV__NODE_ELEMENT) return NULL;
  for (xmppuv_stanza_t *c = s->first; c != NULL; c = c->next)
    if (matches(c, name, ns)) return c;
  return NULL;
}

xmppuv_stanza_t *xmppuv_stanza_next(const xmppuv_stanza_t *prev,
                                    const char *name, const char *ns) {
  if (prev == NULL) return NULL;
  for (xmppuv_stanza_t *c = prev->next; c != NULL; c = c->next)
    if (matches(c, name, ns)) return c;
  return NULL;
}

xmppuv_stanza_t *xmppuv_stanza_first_node(const xmppuv_stanza_t *s) {
  return s != NULL && s->kind == XMPPUV__NODE_ELEMENT ? s->first : NULL;
}

xmppuv_stanza_t *xmppuv_stanza_next_node(const xmppuv_stanza_t *node) {
  return node != NULL ? node->next : NULL;
}

xmppuv_stanza_t *xmppuv_stanza_parent(const xmppuv_stanza_t *s) {
  return s != NULL ? s->parent : NULL;
}

/* ---- public: lifetime --------------------------------------------------- */

xmppuv_stanza_t *xmppuv_stanza_ref(xmppuv_stanza_t *s) {
  if (s != NULL) s->tree->refs++;
  return s;
}

void xmppuv__stanza_release(xmppuv_stanza_t *s) {
  if (s == NULL) return;
  xmppuv__tree_t *tree = s->tree;
  if (tree->refs > 1 && tree->pool != NULL) {
    /* Kept by the app: the first chunk goes back to malloc, not the pool. */
    pool_unref(tree->pool);
    tree->pool = NULL;
  }
  xmppuv_stanza_unref(s);
}

void xmppuv_stanza_unref(xmppuv_stanza_t *s) {
  if (s == NULL) return;
  if (--s->tree->refs == 0) tree_free(s->tree);
}

int xmppuv_stanza_copy(const xmppuv_stanza_t *s, xmppuv_stanza_t **out) {
  if (s == NULL || out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  xmppuv_stanza_t *copy;
  if (s->kind == XMPPUV__NODE_TEXT) return XMPPUV_EINVAL;
  const char *ns = xmppuv_stanza_ns(s);
  copy = xmppuv__tree_new(NULL, NULL, 512);
  if (copy == NULL) return XMPPUV_ENOMEM;
  copy->name = xmppuv__tree_strndup(copy->tree, s->name, strlen(s->name));
  copy->ns = ns ? xmppuv__tree_strndup(copy->tree, ns, strlen(ns)) : NULL;
  if (copy->name == NULL || (ns != NULL && copy->ns == NULL) ||
      copy_element_into(copy, s) != 0) {
    tree_free(copy->tree);
    return XMPPUV_ENOMEM;
  }
  *out = copy;
  return 0;
}

int xmppuv__stanza_push_own_attr(xmppuv_stanza_t *s, const char *name,
                                 const char *value, size_t len) {
  char *v = xmppuv__tree_strndup(s->tree, value, len);
  if (v == NULL) return XMPPUV_ENOMEM;
  return xmppuv__node_push_attr(s, name, v);
}

void xmppuv__stanza_default_ns(xmppuv_stanza_t *s, const char *ns) {
  if (s->ns == NULL) s->ns = ns;
}
