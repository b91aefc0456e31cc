#include "xml/serialize.h"

#include <string.h>

#include "util/alloc.h"
#include "util/log.h"
#include "xml/redact.h"
#include "xml/stanza_int.h"

/* Which bytes need escaping: 1 in text, 2 in attribute values. */
static const unsigned char needs_escape[256] = {
    ['&'] = 3, ['<'] = 3, ['>'] = 3, ['"'] = 3, ['\''] = 3,
    ['\r'] = 3, ['\n'] = 2, ['\t'] = 2,
};

static const char *escape_of(unsigned char c) {
  switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&apos;";
    case '\r': return "&#13;";
    case '\n': return "&#10;";
    case '\t': return "&#9;";
    default: return NULL;
  }
}

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* How many bytes at s need no escaping (mask 1: text, 2: attributes).
 * Escapes are rare, so this is where the time goes: 16 bytes per step with
 * SSE2 where the compiler has it, 4 per step otherwise. */
static size_t clean_prefix(const unsigned char *s, size_t len, unsigned char mask) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i amp = _mm_set1_epi8('&'), lt = _mm_set1_epi8('<'), gt = _mm_set1_epi8('>'),
                quot = _mm_set1_epi8('"'), apos = _mm_set1_epi8('\''),
                cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), tab = _mm_set1_epi8('\t');
  for (; i + 16 <= len; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, lt)),
                             _mm_or_si128(_mm_cmpeq_epi8(v, gt), _mm_cmpeq_epi8(v, quot)));
    m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, apos), _mm_cmpeq_epi8(v, cr)));
    if (mask & 2) m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, tab)));
    unsigned bits = (unsigned)_mm_movemask_epi8(m);
    if (bits != 0) return i + (size_t)__builtin_ctz(bits);
  }
#endif
  while (i + 4 <= len && !((needs_escape[s[i]] | needs_escape[s[i + 1]] |
                            needs_escape[s[i + 2]] | needs_escape[s[i + 3]]) & mask))
    i += 4;
  while (i < len && !(needs_escape[s[i]] & mask)) i++;
  return i;
}

static int escape(xmppuv__buf_t *out, const char *s, size_t len,
                  unsigned char mask) {
  const unsigned char *u = (const unsigned char *)s;
  size_t run = 0; /* start of the pending unescaped run */
  size_t i = 0;
  for (;;) {
    i += clean_prefix(u + i, len - i, mask);
    if (i >= len) break;
    if (xmppuv__buf_append(out, s + run, i - run) != 0) return XMPPUV_ENOMEM;
    if (xmppuv__buf_append_str(out, escape_of(u[i])) != 0) return XMPPUV_ENOMEM;
    run = ++i;
  }
  return xmppuv__buf_append(out, s + run, len - run);
}

int xmppuv__escape_text(xmppuv__buf_t *out, const char *s, size_t len) {
  return escape(out, s, len, 1);
}

int xmppuv__escape_attr(xmppuv__buf_t *out, const char *s, size_t len) {
  return escape(out, s, len, 2);
}

static int ns_differs(const char *a, const char *b) {
  if (a == b) return 0;
  if (a == NULL || b == NULL) return 1;
  return strcmp(a, b) != 0;
}

#define TRY(expr)                 \
  do {                            \
    if ((expr) != 0) goto nomem; \
  } while (0)

static int open_tag(xmppuv__buf_t *out, const xmppuv_stanza_t *el,
                    const char *ctx_ns, const char *own_ns, unsigned flags) {
  TRY(xmppuv__buf_append_char(out, '<'));
  TRY(xmppuv__buf_append_str(out, el->name));
  if (own_ns != NULL && ns_differs(own_ns, ctx_ns)) {
    TRY(xmppuv__buf_append(out, " xmlns='", 8));
    TRY(xmppuv__escape_attr(out, own_ns, strlen(own_ns)));
    TRY(xmppuv__buf_append_char(out, '\''));
  }
  for (uint32_t i = 0; i < el->u.el.nattrs; i++) {
    const xmppuv__attr_t *a = &el->u.el.attrs[i];
    TRY(xmppuv__buf_append_char(out, ' '));
    TRY(xmppuv__buf_append_str(out, a->name));
    TRY(xmppuv__buf_append(out, "='", 2));
    if ((flags & XMPPUV__SER_REDACT) && xmppuv__redact_attr(a->name))
      TRY(xmppuv__buf_append_str(out, XMPPUV__REDACTED));
    else
      TRY(xmppuv__escape_attr(out, a->value, strlen(a->value)));
    TRY(xmppuv__buf_append_char(out, '\''));
  }
  return 0;
nomem:
  return XMPPUV_ENOMEM;
}

static int end_tag(xmppuv__buf_t *out, const xmppuv_stanza_t *el) {
  TRY(xmppuv__buf_append(out, "</", 2));
  TRY(xmppuv__buf_append_str(out, el->name));
  TRY(xmppuv__buf_append_char(out, '>'));
  return 0;
nomem:
  return XMPPUV_ENOMEM;
}

/* Walk iteratively (trees built by the API may be arbitrarily deep). The
 * context namespace of a node is its parent's effective namespace, which we
 * keep in a small per-level array only as deep as namespaces change. */
int xmppuv__serialize_ex(xmppuv__buf_t *out, const xmppuv_stanza_t *root,
                         const char *context_ns, unsigned flags,
                         size_t *end_tag_at) {
  size_t old_len = out->len;
  if (root->kind == XMPPUV__NODE_TEXT) {
    if (xmppuv__escape_text(out, root->u.text.data, root->u.text.len) != 0)
      goto nomem;
    return 0;
  }
  const char *root_ns = xmppuv_stanza_ns(root);
  const xmppuv_stanza_t *node = root;
  /* Effective namespace of the current node's parent, and of the node. */
  const char *ctx = context_ns;
  for (;;) {
    const char *own = node->ns ? node->ns : (node == root ? root_ns : ctx);
    int redact_text = 0;
    if (node->kind == XMPPUV__NODE_TEXT) {
      const xmppuv_stanza_t *p = node->parent;
      redact_text = (flags & XMPPUV__SER_REDACT) &&
                    xmppuv__redact_element(p->name, xmppuv_stanza_ns(p));
      if (redact_text)
        TRY(xmppuv__buf_append_str(out, XMPPUV__REDACTED));
      else
        TRY(xmppuv__escape_text(out, node->u.text.data, node->u.text.len));
    } else {
      TRY(open_tag(out, node, ctx, own, flags));
      int force_end = node == root && (flags & XMPPUV__SER_ROOT_END_TAG);
      if (node->first != NULL || force_end) {
        TRY(xmppuv__buf_append_char(out, '>'));
        if (node->first != NULL) {
          ctx = own;
          node = node->first;
          continue;
        }
        if (end_tag_at != NULL) *end_tag_at = out->len;
        TRY(end_tag(out, node));
      } else {
        TRY(xmppuv__buf_append(out, "/>", 2));
      }
    }
    if (node == root) break;
    /* Climb, closing elements, until a node has a next sibling. */
    while (node->next == NULL) {
      node = node->parent;
      if (node == root && end_tag_at != NULL) *end_tag_at = out->len;
      TRY(end_tag(out, node));
      if (node == root) return 0;
    }
    node = node->next;
    ctx = xmppuv_stanza_ns(node->parent);
    if (node->parent == root && root->ns == NULL) ctx = root_ns;
  }
  return 0;
nomem:
  out->len = old_len;
  if (out->data != NULL) out->data[old_len] = '\0';
  return XMPPUV_ENOMEM;
}

int xmppuv_stanza_to_string(const xmppuv_stanza_t *s, char **out, size_t *len) {
  if (out != NULL) *out = NULL;
  if (len != NULL) *len = 0;
  if (s == NULL || out == NULL) return XMPPUV_EINVAL;
  xmppuv__buf_t buf = XMPPUV__BUF_INIT;
  if (xmppuv__serialize(&buf, s, XMPPUV_NS_CLIENT, 0) != 0) {
    xmppuv__buf_free(&buf);
    return XMPPUV_ENOMEM;
  }
  char *text = xmppuv__buf_detach(&buf, len);
  if (text == NULL) return XMPPUV_ENOMEM;
  *out = text;
  return 0;
}

void xmppuv__log_stanza(const xmppuv__log_t *log, const char *direction,
                        const xmppuv_stanza_t *s) {
  if (!XMPPUV__LOG_ON(log, XMPPUV_LOG_TRACE)) return;
  xmppuv__buf_t buf = XMPPUV__BUF_INIT;
  const char *area = strcmp(direction, "in") == 0 ? "wire-in" : "wire-out";
  if (xmppuv__serialize(&buf, s, XMPPUV_NS_CLIENT, XMPPUV__SER_REDACT) == 0)
    log->cb(log->user_data, XMPPUV_LOG_TRACE, area, buf.data);
  else
    log->cb(log->user_data, XMPPUV_LOG_TRACE, area, "(element not logged: out of memory)");
  xmppuv__buf_free(&buf);
}
