/* Element trees to XML text. Output is always well-formed: the tree only
 * holds checked names and text, and every value is escaped here. */
#ifndef XMPPUV_SERIALIZE_H
#define XMPPUV_SERIALIZE_H

#include "util/buf.h"
#include "util/log.h"
#include "xmppuv.h"

enum {
  /* Replace credentials with XMPPUV__REDACTED (for logs). */
  XMPPUV__SER_REDACT = 1u << 0,
  /* Always close the root with an end tag ("<a></a>", never "<a/>"), so a
   * child can be inserted before it later (SM delay stamps). */
  XMPPUV__SER_ROOT_END_TAG = 1u << 1,
};

/* Append s to out. context_ns is the default namespace in effect where the
 * element will stand (XMPPUV_NS_CLIENT on a client stream); xmlns is
 * written only where an element's namespace differs from its context.
 * If end_tag_at is not NULL it gets the offset in out of the root's end tag
 * ("</name>"), given XMPPUV__SER_ROOT_END_TAG. 0 or XMPPUV_ENOMEM; on error
 * out is restored to its old length. */
int xmppuv__serialize_ex(xmppuv__buf_t *out, const xmppuv_stanza_t *s,
                         const char *context_ns, unsigned flags,
                         size_t *end_tag_at);
#define xmppuv__serialize(out, s, ns, flags) \
  xmppuv__serialize_ex((out), (s), (ns), (flags), NULL)

/* Append text escaped for element content / an attribute value in single
 * quotes: & < > " ' always, CR in text, TAB LF CR in attributes (so they
 * survive XML end-of-line and attribute-value normalization). */
int xmppuv__escape_text(xmppuv__buf_t *out, const char *s, size_t len);
int xmppuv__escape_attr(xmppuv__buf_t *out, const char *s, size_t len);

/* Trace an element going "out" or coming "in" (area "wire-out"/"wire-in")
 * at XMPPUV_LOG_TRACE, serialized with credentials redacted
 * (xml/redact.h). */
void xmppuv__log_stanza(const xmppuv__log_t *log, const char *direction,
                        const xmppuv_stanza_t *s);

#endif
