/* What the rest of the library may do to a stanza beyond the public API
 * (the tree's layout stays private to lib/xml: stanza_int.h). */
#ifndef XMPPUV_XML_STANZA_H
#define XMPPUV_XML_STANZA_H

#include <stddef.h>

#include "xmppuv.h"

/* Append attribute name = value[0..len) to element s, where the caller knows
 * the attribute is absent, name is a valid static string and the value valid
 * XML text (the library's own: ids it generates). The value is copied.
 * 0 or XMPPUV_ENOMEM. */
int xmppuv__stanza_push_own_attr(xmppuv_stanza_t *s, const char *name,
                                 const char *value, size_t len);

/* A parsed document's root has no namespace of its own: give it ns (a
 * static string), as the stream would have (jabber:client). No-op if it
 * has one. */
void xmppuv__stanza_default_ns(xmppuv_stanza_t *s, const char *ns);

/* Drop the library's last reference to a parsed stanza. If the app holds
 * more, the stanza leaves its parser's pool first (stanza_int.h): from
 * then on it touches nothing shared, and may go to another thread as any
 * stanza of the app's. NULL is ignored. */
void xmppuv__stanza_release(xmppuv_stanza_t *s);

#endif
