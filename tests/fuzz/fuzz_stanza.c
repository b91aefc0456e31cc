/* Fuzz target: stanza parsing and the stanza tree API (lib/xml/stanza.c,
 * xmppuv_stanza_parse, the serializer).
 *
 * Input: 1 header byte, then data.
 *   header bit 0 clear: data is one XML document for xmppuv_stanza_parse().
 *     A parsed tree is walked with every accessor, copied, and serialized;
 *     the copy must serialize the same, and the serialization must parse
 *     and be a fixed point.
 *   header bit 0 set: data is a list of NUL-separated fields driving the
 *     public builder API (new child, set attribute, add/set text, remove,
 *     copy, add_child) with fuzzed names, namespaces and text. Whatever the
 *     API accepts must serialize to XML that parses back to the same
 *     serialization: the tree only ever holds checked names and text.
 *     FUZZ_DEBUG set: each builder step and the tree before it on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "fuzz_input.h"
#include "xmppuv.h"

static char *serialize(const xmppuv_stanza_t *s, size_t *len) {
  char *t = NULL;
  int rc = xmppuv_stanza_to_string(s, &t, len);
  FZ_CHECK(rc == 0 && t != NULL, "to_string: %s", xmppuv_err_name(rc));
  FZ_CHECK(strlen(t) == *len, "serialization contains NUL");
  return t;
}

/* Element nesting below s (s itself is 1). */
static unsigned depth_of(const xmppuv_stanza_t *s) {
  unsigned d = 0;
  for (xmppuv_stanza_t *n = xmppuv_stanza_first_node(s); n != NULL; n = xmppuv_stanza_next_node(n)) {
    if (xmppuv_stanza_is_text(n)) continue;
    unsigned c = depth_of(n);
    if (c > d) d = c;
  }
  return d + 1;
}

static void check_roundtrip(const xmppuv_stanza_t *s) {
  size_t l1, l2, l3;
  char *t1 = serialize(s, &l1);
  xmppuv_stanza_t *a = NULL, *b = NULL;
  int rc = xmppuv_stanza_parse(t1, l1, &a);
  /* The builder has no size or depth limit; the parser does. */
  if (rc == XMPPUV_ELIMIT && (l1 > 1024u * 1024u || depth_of(s) > 64u)) {
    xmppuv__free(t1);
    return;
  }
  FZ_CHECK(rc == 0, "serializer output does not parse (%s): %s", xmppuv_err_name(rc), t1);
  char *t2 = serialize(a, &l2);
  rc = xmppuv_stanza_parse(t2, l2, &b);
  FZ_CHECK(rc == 0, "second serialization does not parse (%s): %s", xmppuv_err_name(rc), t2);
  char *t3 = serialize(b, &l3);
  FZ_CHECK(l2 == l3 && memcmp(t2, t3, l2) == 0, "not a fixed point:\n%s\n%s\n%s", t1, t2, t3);
  xmppuv__free(t1);
  xmppuv__free(t2);
  xmppuv__free(t3);
  xmppuv_stanza_unref(a);
  xmppuv_stanza_unref(b);
}

/* Every accessor on every node; the walk must agree with parent links. */
static void walk(const xmppuv_stanza_t *root) {
  size_t nodes = 0;
  for (xmppuv_stanza_t *n = xmppuv_stanza_first_node(root); n != NULL;
       n = xmppuv_stanza_next_node(n)) {
    FZ_CHECK(++nodes < 1u << 24, "walk does not end");
    FZ_CHECK(xmppuv_stanza_parent(n) == root, "child's parent is not the root");
    if (xmppuv_stanza_is_text(n)) {
      size_t len = 0;
      const char *t = xmppuv_stanza_text(n, &len);
      FZ_CHECK(t != NULL && strlen(t) <= len, "text node");
      FZ_CHECK(xmppuv_stanza_name(n) == NULL, "text node with a name");
      continue;
    }
    const char *name = xmppuv_stanza_name(n);
    FZ_CHECK(name != NULL && name[0] != '\0', "element without a name");
    size_t na = xmppuv_stanza_attr_count(n);
    for (size_t i = 0; i < na; i++) {
      const char *an = NULL, *av = NULL;
      FZ_CHECK(xmppuv_stanza_attr_at(n, i, &an, &av) == 0, "attr_at");
      FZ_CHECK(an != NULL && av != NULL, "attr_at gave NULL");
      const char *v = xmppuv_stanza_attr(n, an);
      FZ_CHECK(v != NULL, "attribute %s listed but not found", an);
    }
    const char *an = NULL, *av = NULL;
    FZ_CHECK(xmppuv_stanza_attr_at(n, na, &an, &av) != 0, "attr_at past the end");
    (void)xmppuv_stanza_text(n, NULL);
    (void)xmppuv_stanza_child_text(n, name, NULL);
    (void)xmppuv_stanza_child(n, NULL, xmppuv_stanza_ns(n));
    const xmppuv_stanza_t *first = xmppuv_stanza_child(root, name, NULL);
    FZ_CHECK(first != NULL, "child named %s not found", name);
    for (const xmppuv_stanza_t *c = first; c != NULL; c = xmppuv_stanza_next(c, name, NULL))
      FZ_CHECK(strcmp(xmppuv_stanza_name(c), name) == 0, "next gave another name");
    walk(n);
  }
}

static void parse_mode(const char *xml, size_t len) {
  xmppuv_stanza_t *s = NULL;
  int rc = xmppuv_stanza_parse(xml, len, &s);
  if (rc != 0) {
    FZ_CHECK(s == NULL, "error with a result");
    FZ_CHECK(rc == XMPPUV_EXML || rc == XMPPUV_ERESTRICTED || rc == XMPPUV_ELIMIT ||
                 rc == XMPPUV_ENAMESPACE,
             "unexpected error %s", xmppuv_err_name(rc));
    return;
  }
  walk(s);
  (void)xmppuv_stanza_text(s, NULL);
  check_roundtrip(s);
  xmppuv_stanza_t *copy = NULL;
  FZ_CHECK(xmppuv_stanza_copy(s, &copy) == 0, "copy");
  size_t l1, l2;
  char *t1 = serialize(s, &l1), *t2 = serialize(copy, &l2);
  FZ_CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0, "copy serializes differently");
  xmppuv__free(t1);
  xmppuv__free(t2);
  /* A reference outlives the original's. */
  xmppuv_stanza_t *ref = xmppuv_stanza_ref(copy);
  xmppuv_stanza_unref(copy);
  walk(ref);
  xmppuv_stanza_unref(ref);
  xmppuv_stanza_unref(s);
}

/* ---- the builder API ---------------------------------------------------- */

typedef struct fields {
  const char *p;
  const char *end;
} fields_t;

/* The next NUL-terminated field (the last one ends at the input's end; it
 * is copied so it is terminated). */
static const char *next_field(fields_t *f, char *buf, size_t cap) {
  if (f->p >= f->end) return "";
  const char *nul = memchr(f->p, '\0', (size_t)(f->end - f->p));
  size_t n = nul ? (size_t)(nul - f->p) : (size_t)(f->end - f->p);
  if (n >= cap) n = cap - 1;
  memcpy(buf, f->p, n);
  buf[n] = '\0';
  f->p = nul ? nul + 1 : f->end;
  return buf;
}

static void build_mode(const char *data, size_t len) {
  fields_t f = {data, data + len};
  char a[512], b[512], c[512];
  const char *root_name = next_field(&f, a, sizeof a);
  const char *root_ns = next_field(&f, b, sizeof b);
  xmppuv_stanza_t *root = NULL;
  if (xmppuv_stanza_new(root_name, root_ns[0] ? root_ns : NULL, &root) != 0) return;
  xmppuv_stanza_t *nodes[16] = {root};
  size_t nn = 1;
  int debug = getenv("FUZZ_DEBUG") != NULL; /* the steps on stderr, for triage */
  int copies = 0;
  for (int step = 0; step < 64 && f.p < f.end; step++) {
    const char *op = next_field(&f, c, sizeof c);
    unsigned k = (unsigned char)op[0];
    xmppuv_stanza_t *target = nodes[(k >> 4) % nn];
    if (debug) {
      char *t = NULL;
      size_t tl = 0;
      if (xmppuv_stanza_to_string(root, &t, &tl) == 0) fprintf(stderr, "tree: %s\n", t);
      xmppuv__free(t);
      fprintf(stderr, "op %u on node %zu (%s)\n", k % 8u, (size_t)((k >> 4) % nn),
              xmppuv_stanza_is_text(target) ? "#text" : xmppuv_stanza_name(target));
    }
    switch (k % 8u) {
      case 0: {
        const char *name = next_field(&f, a, sizeof a);
        const char *ns = next_field(&f, b, sizeof b);
        xmppuv_stanza_t *child = NULL;
        if (xmppuv_stanza_is_text(target)) break;
        if (xmppuv_stanza_new_child(target, name, ns[0] ? ns : NULL, &child) == 0) {
          FZ_CHECK(child != NULL && xmppuv_stanza_parent(child) == target, "new_child");
          if (nn < 16) nodes[nn++] = child;
        }
        break;
      }
      case 1: {
        const char *name = next_field(&f, a, sizeof a);
        const char *value = next_field(&f, b, sizeof b);
        if (xmppuv_stanza_set_attr(target, name, op[1] == 'x' ? NULL : value) == 0 &&
            op[1] != 'x') {
          const char *got = xmppuv_stanza_attr(target, name);
          FZ_CHECK(got != NULL && strcmp(got, value) == 0, "set_attr did not stick");
        }
        break;
      }
      case 2: {
        const char *t = next_field(&f, a, sizeof a);
        (void)xmppuv_stanza_add_text(target, t, strlen(t));
        break;
      }
      case 3: {
        const char *t = next_field(&f, a, sizeof a);
        (void)xmppuv_stanza_set_text(target, t);
        break;
      }
      case 4:
        if (target != root && xmppuv_stanza_remove(target) == 0) {
          /* Removed nodes belong to nobody we can reach: forget them and
           * everything after (they may have been its children). */
          size_t i = 0;
          while (i < nn && nodes[i] != target) i++;
          nn = i;
          if (nn == 0) nn = 1;
        }
        break;
      case 5: {
        xmppuv_stanza_t *copy = NULL;
        /* Each copy of the root doubles the tree: a few are enough. */
        if (++copies <= 6 && xmppuv_stanza_copy(target, &copy) == 0) {
          if (!xmppuv_stanza_is_text(root)) (void)xmppuv_stanza_add_child(root, copy);
          xmppuv_stanza_unref(copy);
        }
        break;
      }
      case 6: {
        const char *name = next_field(&f, a, sizeof a);
        const char *ns = next_field(&f, b, sizeof b);
        (void)xmppuv_stanza_child(target, name, ns[0] ? ns : NULL);
        (void)xmppuv_stanza_child_text(target, name, ns[0] ? ns : NULL);
        (void)xmppuv_stanza_attr(target, name);
        break;
      }
      default:
        walk(root);
        break;
    }
  }
  walk(root);
  check_roundtrip(root);
  xmppuv_stanza_unref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1)
    build_mode((const char *)data + 1, size - 1);
  else
    parse_mode((const char *)data + 1, size - 1);
  return 0;
}
