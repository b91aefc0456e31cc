#include "xml/parser.h"

#include <expat.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/str.h"
#include "xml/stanza_int.h"

/* Separates namespace URI, local name and prefix in expat's names. U+0001 is
 * not an XML 1.0 character, so it can never occur in a URI or a name. */
#define NS_SEP '\x01'

struct xmppuv__parser {
  XML_Parser xp;
  xmppuv__parse_mode_t mode;
  xmppuv__xml_limits_t limits;
  xmppuv__parser_callbacks_t cb;
  void *user_data;

  unsigned depth;      /* open elements, the stream header included */
  unsigned top;        /* depth of a top-level element: 2 (stream) or 1 */
  xmppuv_stanza_t *root; /* the top-level element being built */
  xmppuv_stanza_t *cur;  /* the innermost open element of root */
  xmppuv__buf_t text;    /* text not yet attached to cur */

  uint64_t fed;  /* bytes handed to expat since the last reset */
  uint64_t mark; /* input before this is fully processed and not held */

  int error; /* sticky until reset */
  const char *condition;
  char *detail; /* the error's text, allocated only on error (or NULL) */

  int pause_requested;
  int yield_requested; /* xmppuv__parser_yield(): stop here, go on later */
  int suspended;
  uint64_t pause_at;

  xmppuv_stanza_t *result; /* document mode */
  xmppuv__tree_pool_t *pool; /* a busy stream's stanzas' first chunks, or NULL */
  unsigned feed_stanzas;      /* top-level elements begun in this feed */

  /* Between stanzas an idle stream needs no expat parser (about 12 KB):
   * xmppuv__parser_release() frees it, and the next feed makes a new one
   * primed with a copy of the stream header's namespace declarations.
   * LAZY: a stream not begun yet (or begun again) makes its parser at its
   * first byte, so a client waiting for the server's header holds none. */
  int released;
  /* expat keeps every element and attribute name it has seen for the life
   * of its parser (its DTD tables), so a server that sends new names in
   * every stanza would grow it without bound. The start tags parsed since
   * the parser was made are counted; past a budget it is replaced, as in a
   * release, at the end of the next stanza (even mid-read). */
  size_t name_bytes;
  int recycling;      /* suspended at recycle_at to replace the parser */
  uint64_t recycle_at;
  int replaying;         /* feeding that synthetic header: no events */
  int priming;           /* xmppuv__parser_prime(): a header without its event */
  xmppuv__buf_t header;  /* the declarations: " xmlns='..' xmlns:stream='..'" */
  char header_prefix[32]; /* the stream element's prefix ("stream"), or "" */
  int header_ok;          /* header and prefix recorded in full */
};

/* Start-tag bytes (each counted 8 times: a name's entry in expat's tables
 * costs several times its text) after which expat's parser is replaced at
 * the next stanza end: about every 400 ordinary stanzas, and expat's name
 * tables stay within a few hundred KB whatever names the server sends. */
#ifdef XMPPUV__PARSER_NAME_BUDGET /* the fuzz build sets it small */
#define NAME_BUDGET ((size_t)XMPPUV__PARSER_NAME_BUDGET)
#else
#define NAME_BUDGET (512u * 1024u)
#endif

static void install_handlers(xmppuv__parser_t *p);

/* ---- errors ------------------------------------------------------------- */

static void fail(xmppuv__parser_t *p, int error, const char *condition,
                 const char *detail) {
  if (p->error != 0) return;
  p->error = error;
  p->condition = condition;
  xmppuv__free(p->detail);
  p->detail = xmppuv__strdup(detail); /* NULL when out of memory */
  if (p->xp != NULL) XML_StopParser(p->xp, XML_FALSE);
}

static uint64_t event_end(const xmppuv__parser_t *p) {
  return (uint64_t)XML_GetCurrentByteIndex(p->xp) +
         (uint64_t)XML_GetCurrentByteCount(p->xp);
}

/* ---- names -------------------------------------------------------------- */

typedef struct {
  const char *uri; /* NULL: no namespace */
  size_t uri_len;
  const char *local;
  size_t local_len;
  const char *prefix; /* NULL: none */
  size_t prefix_len;
  const char *known_ns; /* uri as the library's own literal, or NULL */
} qname_t;

/* Where a name's part ends: at NS_SEP or NUL (the only bytes below 2). Most
 * local names are short, where a byte loop beats a call; a namespace URI is
 * long, where strchr's wide compares win. */
static const char *name_end(const char *s) {
  for (int i = 0; i < 8; i++, s++)
    if ((unsigned char)*s <= 1) return s;
  const char *sep = strchr(s, NS_SEP);
  return sep != NULL ? sep : s + strlen(s);
}

static void split_name(const char *s, qname_t *q) {
  /* Nearly every element of a client stream is in jabber:client. */
  q->known_ns = NULL;
  const char *a;
  if (s[0] == 'j' && strncmp(s, XMPPUV_NS_CLIENT "\x01", 14) == 0) {
    a = s + 13;
    q->known_ns = XMPPUV_NS_CLIENT;
  } else {
    a = name_end(s);
  }
  if (*a == '\0') {
    q->uri = NULL;
    q->uri_len = 0;
    q->local = s;
    q->local_len = (size_t)(a - s);
    q->prefix = NULL;
    q->prefix_len = 0;
    return;
  }
  q->uri = s;
  q->uri_len = (size_t)(a - s);
  q->local = a + 1;
  const char *b = q->local;
  while ((unsigned char)*b > 1) b++; /* local names are short */
  q->local_len = (size_t)(b - q->local);
  if (*b == '\0') {
    q->prefix = NULL;
    q->prefix_len = 0;
  } else {
    q->prefix = b + 1;
    q->prefix_len = strlen(q->prefix);
  }
}

static int eq(const char *s, size_t len, const char *lit) {
  return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* The namespace for an element: static strings for the common ones, else a
 * copy in the tree. "" stands for "no namespace". */
static const char *intern_ns(xmppuv__tree_t *tree, const qname_t *q) {
  if (q->uri == NULL) return "";
  if (q->known_ns != NULL) return q->known_ns; /* jabber:client */
  if (eq(q->uri, q->uri_len, XMPPUV_NS_STREAMS)) return XMPPUV_NS_STREAMS;
  return xmppuv__tree_strndup(tree, q->uri, q->uri_len);
}

/* The attribute names nearly every stanza has, recognised as expat gives
 * them (xml:lang as its namespace, local name and prefix) and shared instead
 * of copied: a tree's names are never written to or freed one by one. The
 * compares stop at the first difference, so never read past a name's end. */
static const char *common_attr(const char *s) {
  switch (s[0]) {
    case 'f':
      if (s[1] == 'r' && s[2] == 'o' && s[3] == 'm' && s[4] == '\0') return "from";
      break;
    case 'i':
      if (s[1] == 'd' && s[2] == '\0') return "id";
      break;
    case 't':
      if (s[1] == 'o' && s[2] == '\0') return "to";
      if (s[1] == 'y' && s[2] == 'p' && s[3] == 'e' && s[4] == '\0') return "type";
      break;
    case 'h':
      if (strcmp(s, XMPPUV_NS_XML "\x01lang\x01xml") == 0) return "xml:lang";
      break;
    default:
      break;
  }
  return NULL;
}

/* The same for element names: the stanzas, and a message's body. */
static const char *common_element(const char *s, size_t len) {
  switch (len) {
    case 2:
      if (s[0] == 'i' && s[1] == 'q') return "iq";
      break;
    case 4:
      if (memcmp(s, "body", 4) == 0) return "body";
      break;
    case 7:
      if (memcmp(s, "message", 7) == 0) return "message";
      break;
    case 8:
      if (memcmp(s, "presence", 8) == 0) return "presence";
      break;
    default:
      break;
  }
  return NULL;
}

static const char *element_name(xmppuv__tree_t *tree, const qname_t *q) {
  const char *name = common_element(q->local, q->local_len);
  return name != NULL ? name : xmppuv__tree_strndup(tree, q->local, q->local_len);
}

/* A prefixed attribute: "xml:local", or "prefix:local" with its
 * xmlns:prefix declaration on the same element, so the element stands
 * alone. NULL when out of memory. */
static const char *prefixed_attr(xmppuv_stanza_t *el, const qname_t *q) {
  xmppuv__tree_t *tree = el->tree;
  int is_xml = eq(q->uri, q->uri_len, XMPPUV_NS_XML);
  if (is_xml && eq(q->local, q->local_len, "lang")) return "xml:lang";
  const char *prefix = is_xml ? "xml" : q->prefix;
  size_t prefix_len = is_xml ? 3 : q->prefix_len;
  char *joined = xmppuv__tree_alloc(tree, prefix_len + 1 + q->local_len + 1);
  if (joined == NULL) return NULL;
  memcpy(joined, prefix, prefix_len);
  joined[prefix_len] = ':';
  memcpy(joined + prefix_len + 1, q->local, q->local_len);
  joined[prefix_len + 1 + q->local_len] = '\0';
  if (is_xml) return joined;
  char *decl = xmppuv__tree_alloc(tree, 6 + prefix_len + 1);
  if (decl == NULL) return NULL;
  memcpy(decl, "xmlns:", 6);
  memcpy(decl + 6, prefix, prefix_len);
  decl[6 + prefix_len] = '\0';
  if (xmppuv_stanza_attr(el, decl) == NULL) {
    const char *uri = xmppuv__tree_strndup(tree, q->uri, q->uri_len);
    if (uri == NULL || xmppuv__node_push_attr(el, decl, uri) != 0) return NULL;
  }
  return joined;
}

/* Attributes: unprefixed ones keep their name, xml:* become "xml:local",
 * other prefixed ones "prefix:local" (see prefixed_attr). nattrs is their
 * number: room for all is taken at once. */
static int add_attrs(xmppuv_stanza_t *el, const XML_Char **atts, size_t nattrs) {
  xmppuv__tree_t *tree = el->tree;
  if (nattrs > 0 && xmppuv__node_reserve_attrs(el, (uint32_t)nattrs) != 0)
    return XMPPUV_ENOMEM;
  for (size_t i = 0; atts[i] != NULL; i += 2) {
    const char *value = xmppuv__tree_strndup(tree, atts[i + 1], strlen(atts[i + 1]));
    if (value == NULL) return XMPPUV_ENOMEM;
    const char *name = common_attr(atts[i]);
    if (name == NULL) {
      const char *end = name_end(atts[i]);
      if (*end == '\0') {
        name = xmppuv__tree_strndup(tree, atts[i], (size_t)(end - atts[i]));
      } else {
        qname_t q;
        split_name(atts[i], &q);
        if (q.prefix == NULL && !eq(q.uri, q.uri_len, XMPPUV_NS_XML))
          return XMPPUV_EXML; /* expat always gives one */
        name = prefixed_attr(el, &q);
      }
      if (name == NULL) return XMPPUV_ENOMEM;
    }
    if (xmppuv__node_push_attr(el, name, value) != 0) return XMPPUV_ENOMEM;
  }
  return 0;
}

static int flush_text(xmppuv__parser_t *p) {
  if (p->text.len == 0) return 0;
  int rc = xmppuv__node_add_text(p->cur, p->text.data, p->text.len);
  xmppuv__buf_clear(&p->text);
  return rc;
}

/* ---- expat handlers ----------------------------------------------------- */

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **atts) {
  xmppuv__parser_t *p = ud;
  if (p->error != 0) return;
  qname_t q;
  split_name(name, &q);
  size_t nattrs = 0;
  while (atts[nattrs] != NULL) nattrs += 2;
  nattrs /= 2;
  p->name_bytes += 8u * (size_t)XML_GetCurrentByteCount(p->xp);
  if (nattrs > p->limits.max_attrs) {
    fail(p, XMPPUV_ELIMIT, "policy-violation", "too many attributes");
    return;
  }
  /* <xml:x/> is well-formed (the prefix is always bound) but names no
   * element anyone defines, and no serializer can write it back without
   * the prefix (xmlns='...XML/1998/namespace' is forbidden). */
  if (q.uri != NULL && eq(q.uri, q.uri_len, XMPPUV_NS_XML)) {
    fail(p, XMPPUV_EXML, "bad-namespace-prefix", "element in the xml namespace");
    return;
  }

  if (p->mode == XMPPUV__PARSE_STREAM && p->depth == 0) {
    /* RFC 6120 §4.8.1: the stream element is "stream" in the streams ns. */
    if (!eq(q.local, q.local_len, "stream") || q.uri == NULL ||
        !eq(q.uri, q.uri_len, XMPPUV_NS_STREAMS)) {
      fail(p, XMPPUV_ENAMESPACE, "invalid-namespace",
           "the root element is not <stream:stream>");
      return;
    }
    p->depth = 1;
    if (p->replaying) {
      p->mark = event_end(p);
      return;
    }
    if (p->header_ok == 0 && q.prefix_len < sizeof p->header_prefix) {
      memcpy(p->header_prefix, q.prefix ? q.prefix : "", q.prefix_len);
      p->header_prefix[q.prefix_len] = '\0';
      p->header_ok = 1;
    }
    xmppuv_stanza_t *header = xmppuv__tree_new("stream", XMPPUV_NS_STREAMS, 512);
    if (header == NULL || add_attrs(header, atts, nattrs) != 0) {
      xmppuv_stanza_unref(header);
      fail(p, XMPPUV_ENOMEM, "resource-constraint", "out of memory");
      return;
    }
    p->mark = event_end(p);
    int rc = p->cb.stream_open && !p->priming ? p->cb.stream_open(p->user_data, header) : 0;
    xmppuv_stanza_unref(header);
    if (rc != 0) fail(p, rc, "undefined-condition", "stopped by the stream_open handler");
    return;
  }

  if (p->depth + 1 == p->top) {
    /* A new top-level element: hold only from its first byte on. */
    p->mark = (uint64_t)XML_GetCurrentByteIndex(p->xp);
    /* A busy stream's stanzas (a second one in the same input, or a pool
     * already made) come one after another: their memory goes round
     * through the pool. A negotiation step or a lone document is one
     * tree, and makes no pool to free again. */
    xmppuv_stanza_t *root;
    if (p->pool == NULL && p->mode == XMPPUV__PARSE_STREAM && ++p->feed_stanzas >= 2)
      p->pool = xmppuv__tree_pool_new();
    if (p->pool != NULL)
      root = xmppuv__tree_pool_take(p->pool);
    else
      root = xmppuv__tree_new(NULL, NULL, 1024);
    const char *ns = NULL;
    if (root != NULL) {
      root->name = element_name(root->tree, &q);
      ns = intern_ns(root->tree, &q);
      /* A lone document without xmlns: leave the namespace to be inherited
       * where the element is used (on a client stream, jabber:client). */
      root->ns = ns != NULL && ns[0] == '\0' && p->mode == XMPPUV__PARSE_DOCUMENT
                     ? NULL
                     : ns;
    }
    if (root == NULL || root->name == NULL || ns == NULL ||
        add_attrs(root, atts, nattrs) != 0) {
      xmppuv_stanza_unref(root);
      fail(p, XMPPUV_ENOMEM, "resource-constraint", "out of memory");
      return;
    }
    p->root = p->cur = root;
    p->depth++;
    return;
  }

  if (p->depth + 1 - p->top >= p->limits.max_depth) {
    fail(p, XMPPUV_ELIMIT, "policy-violation", "elements nested too deeply");
    return;
  }
  if (flush_text(p) != 0) goto nomem;
  xmppuv__tree_t *tree = p->root->tree;
  const char *ns = intern_ns(tree, &q);
  const char *local = element_name(tree, &q);
  if (ns == NULL || local == NULL) goto nomem;
  /* Store the namespace only where it changes, as a document would. */
  const char *parent_ns = xmppuv_stanza_ns(p->cur);
  if (parent_ns != NULL ? xmppuv__streq(parent_ns, ns) : ns[0] == '\0') ns = NULL;
  xmppuv_stanza_t *el = xmppuv__node_add_element(p->cur, local, ns);
  if (el == NULL || add_attrs(el, atts, nattrs) != 0) goto nomem;
  p->cur = el;
  p->depth++;
  return;
nomem:
  fail(p, XMPPUV_ENOMEM, "resource-constraint", "out of memory");
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  xmppuv__parser_t *p = ud;
  (void)name;
  if (p->error != 0) return;
  if (p->mode == XMPPUV__PARSE_STREAM && p->depth == 1) {
    p->depth = 0;
    p->mark = event_end(p);
    int rc = p->cb.stream_close ? p->cb.stream_close(p->user_data) : 0;
    if (rc != 0) fail(p, rc, "undefined-condition", "stopped by the stream_close handler");
    return;
  }
  if (flush_text(p) != 0) {
    fail(p, XMPPUV_ENOMEM, "resource-constraint", "out of memory");
    return;
  }
  p->depth--;
  if (p->depth + 1 > p->top) {
    p->cur = p->cur->parent;
    return;
  }
  /* A complete top-level element. */
  xmppuv_stanza_t *el = p->root;
  p->root = p->cur = NULL;
  p->mark = event_end(p);
  if (p->mode == XMPPUV__PARSE_DOCUMENT) {
    p->result = el;
    return;
  }
  int rc = p->cb.element ? p->cb.element(p->user_data, el)
                         : (xmppuv_stanza_unref(el), 0);
  if (rc != 0) {
    fail(p, rc, "undefined-condition", "stopped by the element handler");
    return;
  }
  if (p->pause_requested && p->error == 0) {
    p->pause_requested = 0;
    p->suspended = 1;
    p->pause_at = p->mark;
    XML_StopParser(p->xp, XML_TRUE);
  } else if (p->yield_requested && p->error == 0 && p->header_ok == 1 &&
             p->header.len <= 65536) {
    /* Stop here; the rest comes in the next feed, to a new parser primed
     * with the stream header (as when recycling), since expat cannot be
     * handed the rest again. */
    p->yield_requested = 0;
    p->recycling = 2;
    p->recycle_at = p->mark;
    XML_StopParser(p->xp, XML_TRUE);
  } else if (p->name_bytes >= NAME_BUDGET && p->error == 0 && p->header_ok == 1 &&
             p->header.len <= 65536) {
    p->recycling = 1;
    p->recycle_at = p->mark;
    XML_StopParser(p->xp, XML_TRUE);
  }
}

static int all_space(const char *s, int len) {
  for (int i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
  return 1;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  xmppuv__parser_t *p = ud;
  if (p->error != 0) return;
  if (p->root == NULL) {
    /* Between stanzas: whitespace keepalives are fine, anything else is
     * text where RFC 6120 allows none. */
    if (!all_space(s, len)) {
      fail(p, XMPPUV_EXML, "bad-format", "text outside of any stanza");
      return;
    }
    p->mark = event_end(p);
    return;
  }
  if (xmppuv__buf_append(&p->text, s, (size_t)len) != 0)
    fail(p, XMPPUV_ENOMEM, "resource-constraint", "out of memory");
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name,
                               const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset) {
  (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
  fail(ud, XMPPUV_ERESTRICTED, "restricted-xml", "DOCTYPE declaration");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
                              const XML_Char *value, int value_len,
                              const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation) {
  (void)name, (void)is_param, (void)value, (void)value_len, (void)base;
  (void)sysid, (void)pubid, (void)notation;
  fail(ud, XMPPUV_ERESTRICTED, "restricted-xml", "entity declaration");
}

static void XMLCALL on_comment(void *ud, const XML_Char *data) {
  (void)data;
  fail(ud, XMPPUV_ERESTRICTED, "restricted-xml", "comment");
}

static void XMLCALL on_pi(void *ud, const XML_Char *target,
                          const XML_Char *data) {
  (void)target, (void)data;
  fail(ud, XMPPUV_ERESTRICTED, "restricted-xml", "processing instruction");
}

static void XMLCALL on_xmldecl(void *ud, const XML_Char *version,
                               const XML_Char *encoding, int standalone) {
  (void)standalone;
  if (version != NULL && strcmp(version, "1.0") != 0)
    fail(ud, XMPPUV_EXML, "unsupported-version", "XML version other than 1.0");
  /* RFC 6120 §11.6: UTF-8 only. */
  if (encoding != NULL && strcmp(encoding, "UTF-8") != 0 &&
      strcmp(encoding, "utf-8") != 0 && strcmp(encoding, "utf8") != 0 &&
      strcmp(encoding, "UTF8") != 0)
    fail(ud, XMPPUV_EXML, "unsupported-encoding", "encoding other than UTF-8");
}

/* The stream header's namespace declarations, kept as the opening tag a
 * new parser is primed with after a release (xmppuv__parser_release). */
static void XMLCALL on_ns_decl(void *ud, const XML_Char *prefix, const XML_Char *uri) {
  xmppuv__parser_t *p = ud;
  if (p->depth != 0 || p->replaying || p->error != 0) return;
  xmppuv__buf_t *h = &p->header;
  int rc = xmppuv__buf_append_str(h, prefix ? " xmlns:" : " xmlns");
  if (rc == 0 && prefix) rc = xmppuv__buf_append_str(h, prefix);
  if (rc == 0) rc = xmppuv__buf_append_str(h, "='");
  /* A namespace name has no ' (expat refuses none, but the copy must
   * parse): &apos; is what the serializer would write. */
  for (const char *c = uri ? uri : ""; rc == 0 && *c; c++)
    rc = *c == '\'' ? xmppuv__buf_append_str(h, "&apos;")
         : *c == '&' ? xmppuv__buf_append_str(h, "&amp;")
         : *c == '<' ? xmppuv__buf_append_str(h, "&lt;")
                     : xmppuv__buf_append_char(h, *c);
  if (rc == 0) rc = xmppuv__buf_append_char(h, '\'');
  if (rc != 0) {
    xmppuv__buf_free(h); /* no copy: this parser is never released */
    p->header_ok = -1;
  }
}

static void install_handlers(xmppuv__parser_t *p) {
  XML_SetUserData(p->xp, p);
  XML_SetStartNamespaceDeclHandler(p->xp, on_ns_decl);
  XML_SetReturnNSTriplet(p->xp, 1);
  XML_SetElementHandler(p->xp, on_start, on_end);
  XML_SetCharacterDataHandler(p->xp, on_text);
  XML_SetStartDoctypeDeclHandler(p->xp, on_doctype);
  XML_SetEntityDeclHandler(p->xp, on_entity);
  XML_SetCommentHandler(p->xp, on_comment);
  XML_SetProcessingInstructionHandler(p->xp, on_pi);
  XML_SetXmlDeclHandler(p->xp, on_xmldecl);
  XML_SetParamEntityParsing(p->xp, XML_PARAM_ENTITY_PARSING_NEVER);
#ifdef XMPPUV_HAVE_REPARSE_DEFERRAL
  /* Expat may hold back input to batch large tokens (reparse deferral, expat
   * 2.6 and security backports); a stanza must be delivered as soon as its
   * last byte arrives, or a client waiting on <proceed/> would hang. */
  XML_SetReparseDeferralEnabled(p->xp, XML_FALSE);
#endif
}

/* ---- public (internal) API ---------------------------------------------- */

enum { RELEASED = 1, LAZY = 2 }; /* values of p->released */

/* Expat reports some allocation failures as other errors (a failed
 * namespace binding comes back as "unbound prefix"), so note them here: the
 * memory suite has no user pointer, hence a per-thread flag. */
static _Thread_local int expat_alloc_failed;

static void *XMLCALL expat_malloc(size_t size) {
  void *p = xmppuv__malloc(size);
  if (p == NULL) expat_alloc_failed = 1;
  return p;
}
static void *XMLCALL expat_realloc(void *ptr, size_t size) {
  void *p = xmppuv__realloc(ptr, size);
  if (p == NULL) expat_alloc_failed = 1;
  return p;
}
static void XMLCALL expat_free(void *ptr) { xmppuv__free(ptr); }

static const XML_Memory_Handling_Suite expat_memory = {
    expat_malloc, expat_realloc, expat_free};

static XML_Parser create_expat(void) {
  const XML_Char sep[2] = {NS_SEP, '\0'};
  return XML_ParserCreate_MM("UTF-8", &expat_memory, sep);
}

int xmppuv__parser_new(xmppuv__parse_mode_t mode,
                       const xmppuv__xml_limits_t *limits,
                       const xmppuv__parser_callbacks_t *callbacks,
                       void *user_data, xmppuv__parser_t **out) {
  *out = NULL;
  xmppuv__parser_t *p = xmppuv__calloc(1, sizeof *p);
  if (p == NULL) return XMPPUV_ENOMEM;
  p->mode = mode;
  if (mode == XMPPUV__PARSE_STREAM) {
    p->released = LAZY;
  } else {
    p->xp = create_expat();
    if (p->xp == NULL) {
      xmppuv__free(p);
      return XMPPUV_ENOMEM;
    }
  }
  p->top = mode == XMPPUV__PARSE_STREAM ? 2 : 1;
  p->limits.max_stanza_bytes = XMPPUV__DEFAULT_MAX_STANZA_BYTES;
  p->limits.max_depth = XMPPUV__DEFAULT_MAX_DEPTH;
  p->limits.max_attrs = XMPPUV__DEFAULT_MAX_ATTRS;
  if (limits != NULL) {
    if (limits->max_stanza_bytes) p->limits.max_stanza_bytes = limits->max_stanza_bytes;
    if (limits->max_depth) p->limits.max_depth = limits->max_depth;
    if (limits->max_attrs) p->limits.max_attrs = limits->max_attrs;
  }
  if (callbacks != NULL) p->cb = *callbacks;
  p->user_data = user_data;
  if (p->xp != NULL) install_handlers(p);
  *out = p;
  return 0;
}

static void drop_partial(xmppuv__parser_t *p) {
  xmppuv_stanza_unref(p->root);
  p->root = p->cur = NULL;
  xmppuv_stanza_unref(p->result);
  p->result = NULL;
  xmppuv__buf_clear(&p->text);
}

void xmppuv__parser_free(xmppuv__parser_t *p) {
  if (p == NULL) return;
  drop_partial(p);
  xmppuv__buf_free(&p->text);
  xmppuv__buf_free(&p->header);
  xmppuv__free(p->detail);
  if (p->xp != NULL) XML_ParserFree(p->xp);
  xmppuv__tree_pool_close(p->pool);
  xmppuv__free(p);
}

void xmppuv__parser_trim(xmppuv__parser_t *p) {
  xmppuv__tree_pool_close(p->pool);
  p->pool = NULL;
}

int xmppuv__parser_reset(xmppuv__parser_t *p) {
  drop_partial(p);
  xmppuv__parser_trim(p);
  xmppuv__buf_free(&p->header);
  p->header_ok = 0;
  if (p->mode == XMPPUV__PARSE_STREAM) {
    /* The next stream's parser is made by its first byte (LAZY). */
    if (p->xp != NULL) XML_ParserFree(p->xp);
    p->xp = NULL;
    p->released = LAZY;
  } else {
    if (p->xp == NULL) {
      p->xp = create_expat();
      if (p->xp == NULL) return XMPPUV_ENOMEM;
    } else if (!XML_ParserReset(p->xp, "UTF-8")) {
      return XMPPUV_ENOMEM;
    }
    p->released = 0;
    install_handlers(p);
  }
  p->depth = 0;
  p->fed = p->mark = 0;
  p->error = 0;
  p->condition = NULL;
  xmppuv__free(p->detail);
  p->detail = NULL;
  p->pause_requested = p->suspended = 0;
  p->pause_at = 0;
  p->name_bytes = 0;
  p->recycling = 0;
  return 0;
}

void xmppuv__parser_pause(xmppuv__parser_t *p) { p->pause_requested = 1; }

void xmppuv__parser_yield(xmppuv__parser_t *p) { p->yield_requested = 1; }

int xmppuv__parser_prime(xmppuv__parser_t *p, const char *header, size_t len) {
  p->priming = 1;
  int rc = xmppuv__parser_feed(p, header, len, NULL);
  p->priming = 0;
  return rc;
}

static void expat_failed(xmppuv__parser_t *p) {
  enum XML_Error code = XML_GetErrorCode(p->xp);
  if (expat_alloc_failed) code = XML_ERROR_NO_MEMORY;
  int err = XMPPUV_EXML;
  const char *condition = "not-well-formed";
  switch (code) {
    case XML_ERROR_NO_MEMORY:
      err = XMPPUV_ENOMEM;
      condition = "resource-constraint";
      break;
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
      condition = "unsupported-encoding";
      break;
    case XML_ERROR_UNBOUND_PREFIX:
      condition = "bad-namespace-prefix";
      break;
    default:
      break;
  }
  char detail[160];
  snprintf(detail, sizeof detail, "%s (line %lu, column %lu)",
           XML_ErrorString(code), (unsigned long)XML_GetCurrentLineNumber(p->xp),
           (unsigned long)XML_GetCurrentColumnNumber(p->xp));
  fail(p, err, condition, detail);
}

/* A new expat parser after a release, primed with the stream header it
 * would have seen (only its namespace declarations matter to the rest). */
static int revive(xmppuv__parser_t *p) {
  p->xp = create_expat();
  if (p->xp == NULL) return XMPPUV_ENOMEM;
  install_handlers(p);
  p->released = 0;
  p->depth = 0;
  xmppuv__buf_t tag = XMPPUV__BUF_INIT;
  int rc = xmppuv__buf_append_char(&tag, '<');
  if (rc == 0 && p->header_prefix[0] != '\0') {
    rc = xmppuv__buf_append_str(&tag, p->header_prefix);
    if (rc == 0) rc = xmppuv__buf_append_char(&tag, ':');
  }
  if (rc == 0) rc = xmppuv__buf_append_str(&tag, "stream");
  if (rc == 0) rc = xmppuv__buf_append(&tag, p->header.data, p->header.len);
  if (rc == 0) rc = xmppuv__buf_append_char(&tag, '>');
  enum XML_Status st = XML_STATUS_ERROR;
  if (rc == 0) {
    p->replaying = 1;
    expat_alloc_failed = 0;
    st = XML_Parse(p->xp, tag.data, (int)tag.len, XML_FALSE);
    p->replaying = 0;
  }
  size_t tag_len = tag.len;
  xmppuv__buf_free(&tag);
  if (st != XML_STATUS_OK || p->depth != 1) {
    /* Only memory can fail here: the header is our own text. */
    XML_ParserFree(p->xp);
    p->xp = NULL;
    p->released = RELEASED;
    return XMPPUV_ENOMEM;
  }
  p->fed = p->mark = tag_len;
  p->name_bytes = 0; /* the header's names are few and never new */
  return 0;
}

int xmppuv__parser_release(xmppuv__parser_t *p) {
  /* Only between stanzas of a stream, with nothing buffered in expat. */
  if (p->xp == NULL || p->released || p->mode != XMPPUV__PARSE_STREAM || p->error != 0 ||
      p->suspended || p->depth != 1 || p->root != NULL || p->fed != p->mark ||
      p->header_ok != 1 || p->header.len > 65536)
    return 0;
  XML_ParserFree(p->xp);
  p->xp = NULL;
  p->released = RELEASED;
  xmppuv__buf_free(&p->text);
  xmppuv__parser_trim(p); /* an idle stream keeps nothing for the next stanza */
  return 1;
}

int xmppuv__parser_feed(xmppuv__parser_t *p, const char *data, size_t len,
                        size_t *consumed) {
  if (consumed != NULL) *consumed = 0;
  if (p->error != 0) return p->error;
  if (p->suspended) return XMPPUV_ESTATE; /* reset first */
  if (p->released == LAZY && len > 0) {
    p->xp = create_expat();
    if (p->xp == NULL) {
      fail(p, XMPPUV_ENOMEM, "resource-constraint", "out of memory");
      return XMPPUV_ENOMEM;
    }
    install_handlers(p);
    p->released = 0;
  } else if (p->released && len > 0) {
    int rc = revive(p);
    if (rc != 0) {
      fail(p, rc, "resource-constraint", "out of memory");
      return rc;
    }
  }
  uint64_t start = p->fed;
  size_t done = 0;
  p->feed_stanzas = 0;
  while (done < len) {
    /* Never let expat hold more than the limit past the mark: it buffers
     * incomplete tokens (an endless attribute value, a header that never
     * ends) without calling any handler. This is the one place the size
     * limit is enforced: no slice takes the bytes since the mark past it,
     * so every element that ends within a slice is within the limit, and
     * one still open at the limit fails at the next slice, before any of
     * it is delivered (the handlers need not check each event). */
    uint64_t held = p->fed - p->mark;
    if (held >= p->limits.max_stanza_bytes) {
      fail(p, XMPPUV_ELIMIT, "policy-violation", "element larger than the size limit");
      break;
    }
    uint64_t room = p->limits.max_stanza_bytes - held;
    size_t slice = len - done;
    if (slice > room) slice = (size_t)room;
    if (slice > INT32_MAX) slice = INT32_MAX;
    /* NUL is no XML character, but expat takes a document starting with one
     * byte and a NUL for UTF-16 and waits (until the size limit) when both
     * come in one call, while it refuses them at once byte by byte: refuse
     * it here, the same in any chunking. */
    const char *nul = memchr(data + done, '\0', slice);
    if (nul != NULL) slice = (size_t)(nul - (data + done));
    expat_alloc_failed = 0;
    uint64_t fed_before = p->fed;
    enum XML_Status st = XML_Parse(p->xp, data + done, (int)slice, XML_FALSE);
    p->fed += slice;
    done += slice;
    if (st == XML_STATUS_SUSPENDED && p->recycling) {
      /* A stanza ended at recycle_at, in this slice: a new parser takes
       * the rest of the input from there. */
      size_t used = (size_t)(p->recycle_at - fed_before);
      done = done - slice + used;
      int yielded = p->recycling == 2;
      p->recycling = 0;
      XML_ParserFree(p->xp);
      p->xp = NULL;
      p->released = RELEASED;
      if (yielded) {
        /* The caller feeds the rest later: the next feed revives. */
        if (consumed != NULL) *consumed = done;
        return 0;
      }
      int rc = revive(p);
      if (rc != 0) {
        fail(p, rc, "resource-constraint", "out of memory");
        break;
      }
      /* Offsets of the new parser: data[done] is at p->fed. */
      start = p->fed - done;
      continue;
    }
    if (st == XML_STATUS_SUSPENDED) {
      if (consumed != NULL) *consumed = (size_t)(p->pause_at - start);
      return 0;
    }
    if (st == XML_STATUS_ERROR) {
      if (p->error == 0) expat_failed(p);
      break;
    }
    if (nul != NULL) {
      fail(p, XMPPUV_EXML, "not-well-formed", "NUL byte in the stream");
      break;
    }
  }
  if (p->error != 0) {
    drop_partial(p);
    return p->error;
  }
  if (consumed != NULL) *consumed = len;
  return 0;
}

int xmppuv__parser_finish(xmppuv__parser_t *p, xmppuv_stanza_t **out) {
  *out = NULL;
  expat_alloc_failed = 0;
  if (p->error == 0 && XML_Parse(p->xp, NULL, 0, XML_TRUE) == XML_STATUS_ERROR &&
      p->error == 0)
    expat_failed(p);
  if (p->error != 0) {
    drop_partial(p);
    return p->error;
  }
  if (p->result == NULL) return XMPPUV_EXML;
  *out = p->result;
  p->result = NULL;
  return 0;
}

const char *xmppuv__parser_condition(const xmppuv__parser_t *p) {
  return p->error != 0 ? p->condition : NULL;
}

const char *xmppuv__parser_detail(const xmppuv__parser_t *p) {
  if (p->error == 0) return NULL;
  return p->detail != NULL ? p->detail : "";
}

/* ---- xmppuv_stanza_parse ------------------------------------------------ */

int xmppuv_stanza_parse(const char *xml, size_t len, xmppuv_stanza_t **out) {
  if (out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  if (xml == NULL) return XMPPUV_EINVAL;
  xmppuv__parser_t *p;
  int rc = xmppuv__parser_new(XMPPUV__PARSE_DOCUMENT, NULL, NULL, NULL, &p);
  if (rc != 0) return rc;
  rc = xmppuv__parser_feed(p, xml, len, NULL);
  if (rc == 0) rc = xmppuv__parser_finish(p, out);
  xmppuv__parser_free(p);
  return rc;
}
