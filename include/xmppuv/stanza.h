/* xmppuv: XML element trees ("stanzas").
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * A stanza is a tree of element and text nodes. Every node belongs to one
 * tree, and the tree is reference counted as a whole: xmppuv_stanza_ref() and
 * xmppuv_stanza_unref() on any node of a tree keep or release the whole tree,
 * so a child pointer stays valid as long as a reference to its tree is held.
 * Memory of removed or replaced nodes and attributes is reclaimed when the
 * tree is freed.
 *
 * Every string the API accepts must be valid UTF-8 made only of characters
 * XML 1.0 allows (no NUL, no C0 controls except tab, newline and carriage
 * return, no U+FFFE/U+FFFF); element and attribute names must be XML names.
 * Anything else is refused with XMPPUV_EUTF8, XMPPUV_EXMLCHAR or
 * XMPPUV_EXMLNAME, so a stanza always serializes to well-formed XML.
 *
 * Namespaces: every element has a namespace, given when it is created or
 * inherited from its parent (NULL = inherit). A top-level stanza with no
 * namespace is in the stream's content namespace ("jabber:client") when sent.
 * The default namespace is not an attribute: "xmlns" cannot be set (the
 * serializer writes xmlns='...' where the namespace changes). A prefixed
 * attribute ("p:name") needs its prefix declared ("xmlns:p", settable as
 * an attribute) on the element or an ancestor; "xml:" is always bound.
 * Names and namespaces are also refused if expat (which Prosody and
 * ejabberd use too) could not read them back. */
#ifndef XMPPUV_STANZA_H
#define XMPPUV_STANZA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmppuv_stanza xmppuv_stanza_t;

#define XMPPUV_NS_CLIENT "jabber:client"
#define XMPPUV_NS_STREAMS "http://etherx.jabber.org/streams"
#define XMPPUV_NS_XML "http://www.w3.org/XML/1998/namespace"

/* ---- creating and changing ---------------------------------------------- */

/* A new tree with one element, reference count 1. ns may be NULL.
 * Errors: XMPPUV_EINVAL (NULL name or out), XMPPUV_EXMLNAME (name is not an
 * XML name or contains ':'), XMPPUV_EUTF8, XMPPUV_EXMLCHAR, XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_stanza_new(const char *name, const char *ns,
                                    xmppuv_stanza_t **out);

/* Append a new element to parent and return it in *child (borrowed: it lives
 * as long as the tree). ns NULL = inherit. Errors as xmppuv_stanza_new, and
 * XMPPUV_EINVAL if parent is a text node. */
XMPPUV_EXTERN int xmppuv_stanza_new_child(xmppuv_stanza_t *parent,
                                          const char *name, const char *ns,
                                          xmppuv_stanza_t **child);

/* Append a deep copy of child (an element or a text node of any tree) to
 * parent. The caller keeps its reference to child; later changes to child do
 * not affect parent. child's effective namespace is kept. Errors:
 * XMPPUV_EINVAL (parent is a text node, or child is parent or one of its
 * ancestors), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_stanza_add_child(xmppuv_stanza_t *parent,
                                          const xmppuv_stanza_t *child);

/* Append a text node holding len bytes of text (any bytes that pass the UTF-8
 * and XML character checks; need not be NUL-terminated). Adjacent text nodes
 * are merged. Errors: XMPPUV_EINVAL, XMPPUV_EUTF8, XMPPUV_EXMLCHAR,
 * XMPPUV_ETOOBIG (over 2^31 bytes), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_stanza_add_text(xmppuv_stanza_t *parent,
                                         const char *text, size_t len);

/* Replace all children of s with one text node (NUL-terminated text).
 * Removed children keep the prefix declarations they need. Errors:
 * XMPPUV_EINVAL, XMPPUV_EUTF8, XMPPUV_EXMLCHAR, XMPPUV_ETOOBIG,
 * XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_stanza_set_text(xmppuv_stanza_t *s, const char *text);

/* Set (or, with value NULL, remove) an attribute. Prefixed names are
 * allowed when the prefix is bound ("xml:lang"; "p:x" under an
 * "xmlns:p"); "xmlns" is not (XMPPUV_EXMLNAME). Errors: XMPPUV_EINVAL
 * (NULL arguments; a declaration of a reserved prefix or namespace, or an
 * empty one; removing a declaration an attribute still uses),
 * XMPPUV_EXMLNAME, XMPPUV_EUTF8, XMPPUV_EXMLCHAR, XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_stanza_set_attr(xmppuv_stanza_t *s, const char *name,
                                         const char *value);

/* Detach child from its parent. The node stays valid while the tree is
 * referenced, but is no longer part of it, and takes along the prefix
 * declarations its attributes need. XMPPUV_EINVAL if it has no parent,
 * XMPPUV_ENOMEM (the tree is unchanged). */
XMPPUV_EXTERN int xmppuv_stanza_remove(xmppuv_stanza_t *child);

/* ---- reading ------------------------------------------------------------ */
/* Every reader takes a NULL stanza: it returns NULL, 0 or XMPPUV_EINVAL
 * (and sets *len to 0), as for an element without what was asked for. */

/* Local name of an element; NULL for a text node. Borrowed. */
XMPPUV_EXTERN const char *xmppuv_stanza_name(const xmppuv_stanza_t *s);
/* Effective namespace (own, else inherited); NULL if none anywhere. */
XMPPUV_EXTERN const char *xmppuv_stanza_ns(const xmppuv_stanza_t *s);
/* Attribute value, or NULL. Borrowed until the attribute changes. */
XMPPUV_EXTERN const char *xmppuv_stanza_attr(const xmppuv_stanza_t *s,
                                             const char *name);
XMPPUV_EXTERN size_t xmppuv_stanza_attr_count(const xmppuv_stanza_t *s);
/* The i-th attribute in document order; XMPPUV_EINVAL if i is out of range. */
XMPPUV_EXTERN int xmppuv_stanza_attr_at(const xmppuv_stanza_t *s, size_t i,
                                        const char **name, const char **value);

/* Non-zero for a text node. */
XMPPUV_EXTERN int xmppuv_stanza_is_text(const xmppuv_stanza_t *s);
/* The text of a text node, or the concatenated text of an element's direct
 * text children ("" if none). Borrowed until the tree changes. NULL only if
 * memory to join several text nodes could not be had. *len, if not NULL,
 * gets the length in bytes. */
XMPPUV_EXTERN const char *xmppuv_stanza_text(const xmppuv_stanza_t *s,
                                             size_t *len);
/* Text of the first child element matching name/ns, or NULL if none. */
XMPPUV_EXTERN const char *xmppuv_stanza_child_text(const xmppuv_stanza_t *s,
                                                   const char *name,
                                                   const char *ns);

/* First child element with this name and namespace; NULL matches any. */
XMPPUV_EXTERN xmppuv_stanza_t *xmppuv_stanza_child(const xmppuv_stanza_t *s,
                                                   const char *name,
                                                   const char *ns);
/* The next sibling element after prev matching name/ns. Loop:
 *   for (c = xmppuv_stanza_child(s, "item", NS); c;
 *        c = xmppuv_stanza_next(c, "item", NS)) ... */
XMPPUV_EXTERN xmppuv_stanza_t *xmppuv_stanza_next(const xmppuv_stanza_t *prev,
                                                  const char *name,
                                                  const char *ns);
/* All children, text nodes included, in order. */
XMPPUV_EXTERN xmppuv_stanza_t *xmppuv_stanza_first_node(
    const xmppuv_stanza_t *s);
XMPPUV_EXTERN xmppuv_stanza_t *xmppuv_stanza_next_node(
    const xmppuv_stanza_t *node);
XMPPUV_EXTERN xmppuv_stanza_t *xmppuv_stanza_parent(const xmppuv_stanza_t *s);

/* ---- lifetime ----------------------------------------------------------- */

/* Add a reference to s's tree; returns s. NULL is allowed and returned. */
XMPPUV_EXTERN xmppuv_stanza_t *xmppuv_stanza_ref(xmppuv_stanza_t *s);
/* Drop a reference; the tree is freed with the last one. NULL is a no-op. */
XMPPUV_EXTERN void xmppuv_stanza_unref(xmppuv_stanza_t *s);
/* A deep copy of s (and its subtree) as a new tree with reference count 1.
 * The copy keeps s's effective namespace. XMPPUV_EINVAL (s or out NULL, or
 * s a text node), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_stanza_copy(const xmppuv_stanza_t *s,
                                     xmppuv_stanza_t **out);

/* ---- text form ---------------------------------------------------------- */

/* Serialize s as XML. *out is NUL-terminated, to be freed with xmppuv_free();
 * *len (may be NULL) gets its length. The namespace of s is declared if it
 * has one, except "jabber:client", the default of an XMPP client stream.
 * XMPPUV_EINVAL (s or out NULL), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_stanza_to_string(const xmppuv_stanza_t *s,
                                          char **out, size_t *len);

/* Parse one XML element (an optional XML declaration, then exactly one
 * element, then whitespace). The same restrictions as on the stream apply (no
 * DTD, entities, comments or processing instructions: XMPPUV_ERESTRICTED;
 * default limits: XMPPUV_ELIMIT). Malformed input: XMPPUV_EXML; also
 * XMPPUV_EUTF8, XMPPUV_ENOMEM, and XMPPUV_EINVAL (xml or out NULL). *out
 * is NULL on every error. */
XMPPUV_EXTERN int xmppuv_stanza_parse(const char *xml, size_t len,
                                      xmppuv_stanza_t **out);

/* ---- building stanzas ----------------------------------------------------- */

/* <message to type id><body>body</body></message>; type and body may be
 * NULL, to too (a message to the account itself). An id is set when the
 * client sends it. XMPPUV_EJID* when to is not a valid JID (it is checked as
 * one: "bob@@example.com" is refused here, not bounced by the server),
 * XMPPUV_EINVAL (out NULL), XMPPUV_EUTF8 / XMPPUV_EXMLCHAR (body or type
 * not text XML can carry), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_message_new(const char *to, const char *type,
                                     const char *body, xmppuv_stanza_t **out);
/* <iq type='result' to=request's from id=request's id/>. XMPPUV_EINVAL
 * (request or out NULL, or request not an iq get/set with an id),
 * XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_iq_result_new(const xmppuv_stanza_t *request,
                                       xmppuv_stanza_t **out);
/* <iq type='error'> with <error type><condition xmlns=stanzas/></error>
 * (RFC 6120 §8.3), e.g. type "cancel", condition "item-not-found". Errors
 * as xmppuv_iq_result_new(), and XMPPUV_EINVAL for a type or condition
 * RFC 6120 does not define. */
XMPPUV_EXTERN int xmppuv_iq_error_new(const xmppuv_stanza_t *request,
                                      const char *type, const char *condition,
                                      xmppuv_stanza_t **out);

#ifdef __cplusplus
}
#endif
#endif
