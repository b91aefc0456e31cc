#include "transport/hostmeta.h"

#include <expat.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/utf8.h"
#include "xmppuv.h"

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int say(int rc, char *why, size_t why_size, const char *fmt, ...) {
  if (why_size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* ---- the links found, whichever the format -------------------------------- */

typedef struct links {
  int allow_ws;
  int websocket; /* links with the WebSocket rel */
  int plaintext; /* of them, ws:// ones */
  int have_wss, have_ws;
  xmppuv__buf_t wss, ws; /* the first of each */
  int rc;                /* XMPPUV_ENOMEM */
} links_t;

static int starts_with_ci(const char *s, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && strncasecmp(s, prefix, n) == 0;
}

/* A link from the document (not NUL-terminated: JSON strings may hold
 * "\u0000"). */
static void offer(links_t *l, const char *rel, size_t rel_len, const char *href, size_t href_len) {
  if (rel_len != sizeof XMPPUV__REL_WEBSOCKET - 1 ||
      memcmp(rel, XMPPUV__REL_WEBSOCKET, rel_len) != 0)
    return;
  l->websocket++;
  /* A URL has no spaces or control characters (RFC 3986): such an href is
   * no URL, and would not survive being a C string. */
  for (size_t i = 0; i < href_len; i++) {
    unsigned char c = (unsigned char)href[i];
    if (c <= ' ' || c == 0x7f) return;
  }
  xmppuv__buf_t *keep;
  if (starts_with_ci(href, href_len, "wss://")) {
    if (l->have_wss) return;
    l->have_wss = 1;
    keep = &l->wss;
  } else if (starts_with_ci(href, href_len, "ws://")) {
    l->plaintext++;
    if (!l->allow_ws || l->have_ws) return;
    l->have_ws = 1;
    keep = &l->ws;
  } else {
    return;
  }
  if (xmppuv__buf_append(keep, href, href_len) != 0) l->rc = XMPPUV_ENOMEM;
}

static int choose(links_t *l, char *url, size_t url_size, char *why, size_t why_size) {
  if (l->rc != 0) return say(l->rc, why, why_size, "out of memory reading the host-meta");
  const xmppuv__buf_t *b = l->have_wss ? &l->wss : l->have_ws ? &l->ws : NULL;
  if (b == NULL) {
    if (l->plaintext > 0 && !l->allow_ws)
      return say(XMPPUV_ENOTFOUND, why, why_size,
                 "the host-meta offers only ws:// (plaintext) WebSocket links, refused");
    if (l->websocket > 0)
      return say(XMPPUV_ENOTFOUND, why, why_size,
                 "the host-meta's WebSocket links (%s) are not wss:// URLs",
                 XMPPUV__REL_WEBSOCKET);
    return say(XMPPUV_ENOTFOUND, why, why_size, "the host-meta offers no WebSocket link (%s)",
               XMPPUV__REL_WEBSOCKET);
  }
  if (url_size == 0 || b->len > url_size - 1)
    return say(XMPPUV_ETOOBIG, why, why_size,
               "the host-meta's WebSocket URL is %zu bytes long, over our limit of %zu", b->len,
               url_size > 0 ? url_size - 1 : 0);
  memcpy(url, b->data, b->len);
  url[b->len] = '\0';
  /* RFC 3986 §3.1: the scheme is case-insensitive; ours is written in
   * lower case. */
  for (size_t i = 0; url[i] != ':'; i++)
    if (url[i] >= 'A' && url[i] <= 'Z') url[i] = (char)(url[i] + 32);
  return 0;
}

/* ---- JRD: a strict JSON scanner (RFC 8259) --------------------------------- */

typedef struct json {
  const unsigned char *s;
  size_t len, pos;
  xmppuv__buf_t name; /* the member name just read */
  links_t *links;
  char *why;
  size_t why_size;
} json_t;

static int jfail(json_t *j, const char *what) {
  return say(XMPPUV_EPROTO, j->why, j->why_size,
             "the host-meta is not valid JSON (%s at byte %zu)", what, j->pos);
}

static void jws(json_t *j) {
  while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                             j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
    j->pos++;
}

static int jpeek(const json_t *j) { return j->pos < j->len ? j->s[j->pos] : -1; }

static int hex4(json_t *j, unsigned *v) {
  if (j->len - j->pos < 4) return -1;
  *v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = j->s[j->pos++];
    unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                        : 16u;
    if (d == 16) return -1;
    *v = *v * 16 + d;
  }
  return 0;
}

static int put_utf8(xmppuv__buf_t *out, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return xmppuv__buf_append(out, b, n);
}

/* A string at '"', decoded into out (if not NULL). */
static int jstring(json_t *j, xmppuv__buf_t *out) {
  j->pos++;
  for (;;) {
    if (j->pos >= j->len) return jfail(j, "an unterminated string");
    unsigned char c = j->s[j->pos];
    if (c == '"') {
      j->pos++;
      return 0;
    }
    if (c < 0x20) return jfail(j, "a control character in a string");
    if (c == '\\') {
      j->pos++;
      if (j->pos >= j->len) return jfail(j, "an unterminated string");
      unsigned cp;
      switch (j->s[j->pos++]) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
          if (hex4(j, &cp) != 0) return jfail(j, "a bad \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return jfail(j, "a lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* RFC 8259 §7: a character outside the BMP is a surrogate pair. */
            unsigned lo;
            if (j->len - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u')
              return jfail(j, "a lone high surrogate");
            j->pos += 2;
            if (hex4(j, &lo) != 0) return jfail(j, "a bad \\u escape");
            if (lo < 0xDC00 || lo > 0xDFFF) return jfail(j, "a lone high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          break;
        default:
          j->pos--;
          return jfail(j, "a bad escape");
      }
      if (out != NULL && put_utf8(out, cp) != 0) return XMPPUV_ENOMEM;
      continue;
    }
    size_t n = 1;
    if (c >= 0x80) {
      unsigned cp;
      n = xmppuv__utf8_decode(j->s + j->pos, j->len - j->pos, &cp);
      if (n == 0) return jfail(j, "invalid UTF-8");
    }
    if (out != NULL && xmppuv__buf_append(out, j->s + j->pos, n) != 0) return XMPPUV_ENOMEM;
    j->pos += n;
  }
}

static int digits(json_t *j) {
  size_t from = j->pos;
  while (j->pos < j->len && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
  return j->pos > from ? 0 : -1;
}

/* RFC 8259 §6: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? */
static int jnumber(json_t *j) {
  if (jpeek(j) == '-') j->pos++;
  if (jpeek(j) == '0') j->pos++;
  else if (digits(j) != 0) return jfail(j, "a bad number");
  if (jpeek(j) == '.') {
    j->pos++;
    if (digits(j) != 0) return jfail(j, "a bad number");
  }
  if (jpeek(j) == 'e' || jpeek(j) == 'E') {
    j->pos++;
    if (jpeek(j) == '+' || jpeek(j) == '-') j->pos++;
    if (digits(j) != 0) return jfail(j, "a bad number");
  }
  return 0;
}

static int jliteral(json_t *j, const char *word) {
  size_t n = strlen(word);
  if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n) != 0)
    return jfail(j, "an unknown word");
  j->pos += n;
  return 0;
}

/* Called for each member of an object with j->name set and j->pos at its
 * value (spaces skipped), or for each element of an array. */
typedef int (*jvalue_fn)(json_t *j, unsigned depth, void *ud);

static int jvalue(json_t *j, unsigned depth);

static int jdeeper(json_t *j, unsigned depth) {
  if (depth > XMPPUV__HOSTMETA_DEPTH)
    return say(XMPPUV_EPROTO, j->why, j->why_size,
               "the host-meta nests JSON over %u deep (at byte %zu)",
               (unsigned)XMPPUV__HOSTMETA_DEPTH, j->pos);
  return 0;
}

/* An object at '{', at the given depth (1 for the top level). */
static int jobject(json_t *j, unsigned depth, jvalue_fn member, void *ud) {
  int rc = jdeeper(j, depth);
  if (rc != 0) return rc;
  j->pos++;
  jws(j);
  if (jpeek(j) == '}') {
    j->pos++;
    return 0;
  }
  for (;;) {
    if (jpeek(j) != '"') return jfail(j, "a member name expected");
    xmppuv__buf_clear(&j->name);
    rc = jstring(j, &j->name);
    if (rc != 0) return rc;
    jws(j);
    if (jpeek(j) != ':') return jfail(j, "':' expected");
    j->pos++;
    jws(j);
    rc = member != NULL ? member(j, depth, ud) : jvalue(j, depth);
    if (rc != 0) return rc;
    jws(j);
    int c = jpeek(j);
    j->pos++;
    if (c == '}') return 0;
    if (c != ',') {
      j->pos--;
      return jfail(j, "',' or '}' expected");
    }
    jws(j);
  }
}

static int jarray(json_t *j, unsigned depth, jvalue_fn element, void *ud) {
  int rc = jdeeper(j, depth);
  if (rc != 0) return rc;
  j->pos++;
  jws(j);
  if (jpeek(j) == ']') {
    j->pos++;
    return 0;
  }
  for (;;) {
    rc = element != NULL ? element(j, depth, ud) : jvalue(j, depth);
    if (rc != 0) return rc;
    jws(j);
    int c = jpeek(j);
    j->pos++;
    if (c == ']') return 0;
    if (c != ',') {
      j->pos--;
      return jfail(j, "',' or ']' expected");
    }
    jws(j);
  }
}

/* Any value, skipped; depth is that of what holds it. */
static int jvalue(json_t *j, unsigned depth) {
  switch (jpeek(j)) {
    case '{': return jobject(j, depth + 1, NULL, NULL);
    case '[': return jarray(j, depth + 1, NULL, NULL);
    case '"': return jstring(j, NULL);
    case 't': return jliteral(j, "true");
    case 'f': return jliteral(j, "false");
    case 'n': return jliteral(j, "null");
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return jnumber(j);
    default: return jfail(j, "a value expected");
  }
}

static int name_is(const json_t *j, const char *name) {
  size_t n = strlen(name);
  return j->name.len == n && memcmp(j->name.data, name, n) == 0;
}

typedef struct jlink {
  xmppuv__buf_t rel, href;
  int has_rel, has_href;
} jlink_t;

/* A member of a link object: "rel" and "href" strings matter (the first of
 * each: RFC 8259 §4 leaves duplicates to us); the rest is skipped. */
static int link_member(json_t *j, unsigned depth, void *ud) {
  jlink_t *k = ud;
  if (jpeek(j) == '"' && name_is(j, "rel") && !k->has_rel) {
    k->has_rel = 1;
    return jstring(j, &k->rel);
  }
  if (jpeek(j) == '"' && name_is(j, "href") && !k->has_href) {
    k->has_href = 1;
    return jstring(j, &k->href);
  }
  return jvalue(j, depth);
}

/* An element of "links": objects are links (RFC 6415 Appendix A); anything
 * else is skipped. */
static int link_element(json_t *j, unsigned depth, void *ud) {
  (void)ud;
  if (jpeek(j) != '{') return jvalue(j, depth);
  jlink_t k = {XMPPUV__BUF_INIT, XMPPUV__BUF_INIT, 0, 0};
  int rc = jobject(j, depth + 1, link_member, &k);
  if (rc == 0 && k.has_rel && k.has_href)
    offer(j->links, k.rel.data != NULL ? k.rel.data : "", k.rel.len,
          k.href.data != NULL ? k.href.data : "", k.href.len);
  xmppuv__buf_free(&k.rel);
  xmppuv__buf_free(&k.href);
  return rc;
}

static int top_member(json_t *j, unsigned depth, void *ud) {
  int *seen_links = ud;
  if (!name_is(j, "links") || *seen_links) return jvalue(j, depth);
  *seen_links = 1;
  if (jpeek(j) != '[')
    return say(XMPPUV_EPROTO, j->why, j->why_size,
               "the host-meta is not a JRD document (its \"links\" is not an array)");
  return jarray(j, depth + 1, link_element, NULL);
}

static int jrd(const char *doc, size_t len, links_t *l, char *why, size_t why_size) {
  json_t j = {(const unsigned char *)doc, len, 0, XMPPUV__BUF_INIT, l, why, why_size};
  /* RFC 8259 §8.1: a parser may ignore a byte order mark. */
  if (len >= 3 && memcmp(doc, "\xEF\xBB\xBF", 3) == 0) j.pos = 3;
  jws(&j);
  int seen_links = 0, rc;
  if (jpeek(&j) != '{') {
    rc = say(XMPPUV_EPROTO, why, why_size,
             "the host-meta is not a JRD document (not a JSON object)");
  } else {
    rc = jobject(&j, 1, top_member, &seen_links);
    if (rc == 0) {
      jws(&j);
      if (j.pos != j.len) rc = jfail(&j, "more after the document");
    }
  }
  xmppuv__buf_free(&j.name);
  if (rc == XMPPUV_ENOMEM) say(rc, why, why_size, "out of memory reading the host-meta");
  return rc;
}

/* ---- XRD: expat ------------------------------------------------------------ */

/* Separates namespace and local name in expat's names (not an XML Char). */
#define NS_SEP '\x01'

typedef struct xrd {
  XML_Parser xp;
  links_t *links;
  unsigned depth;
  int rc;
  char *why;
  size_t why_size;
} xrd_t;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void xfail(xrd_t *x, int rc, const char *fmt, ...) {
  if (x->rc != 0) return;
  x->rc = rc;
  if (x->why_size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, x->why_size, fmt, ap);
    va_end(ap);
  }
  XML_StopParser(x->xp, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
  xrd_t *x = ud;
  if (x->rc != 0) return;
  if (++x->depth > XMPPUV__HOSTMETA_DEPTH) {
    xfail(x, XMPPUV_EPROTO, "the host-meta nests XML over %u deep",
          (unsigned)XMPPUV__HOSTMETA_DEPTH);
    return;
  }
  static const char root[] = XMPPUV__XRD_NS "\x01" "XRD";
  static const char link[] = XMPPUV__XRD_NS "\x01" "Link";
  if (x->depth == 1) {
    if (strcmp(name, root) != 0) {
      const char *local = strchr(name, NS_SEP);
      xfail(x, XMPPUV_EPROTO, "the host-meta is not an XRD document (its root is <%.40s>%s)",
            local != NULL ? local + 1 : name,
            local != NULL ? " in another namespace" : " in no namespace");
    }
    return;
  }
  /* RFC 6415 §3: Link elements are children of XRD. */
  if (x->depth != 2 || strcmp(name, link) != 0) return;
  const char *rel = NULL, *href = NULL;
  for (size_t i = 0; atts[i] != NULL; i += 2) {
    if (strcmp(atts[i], "rel") == 0) rel = atts[i + 1];
    else if (strcmp(atts[i], "href") == 0) href = atts[i + 1];
  }
  if (rel != NULL && href != NULL) offer(x->links, rel, strlen(rel), href, strlen(href));
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  (void)name;
  xrd_t *x = ud;
  if (x->depth > 0) x->depth--;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset) {
  (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
  xfail(ud, XMPPUV_EPROTO, "the host-meta has a DTD (refused)");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
                              const XML_Char *value, int value_len, const XML_Char *base,
                              const XML_Char *sysid, const XML_Char *pubid,
                              const XML_Char *notation) {
  (void)name, (void)is_param, (void)value, (void)value_len, (void)base;
  (void)sysid, (void)pubid, (void)notation;
  xfail(ud, XMPPUV_EPROTO, "the host-meta declares an entity (refused)");
}

/* Expat reports some allocation failures as other errors (a failed
 * namespace binding as "unbound prefix"): they are noted here, as
 * lib/xml/parser.c does (the memory suite has no user pointer). */
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

static const XML_Memory_Handling_Suite expat_memory = {expat_malloc, expat_realloc, expat_free};

static int xrd(const char *doc, size_t len, links_t *l, char *why, size_t why_size) {
  const XML_Char sep[2] = {NS_SEP, '\0'};
  expat_alloc_failed = 0;
  /* No encoding forced: the document's declaration (or its BOM) says. */
  xrd_t x = {XML_ParserCreate_MM(NULL, &expat_memory, sep), l, 0, 0, why, why_size};
  if (x.xp == NULL) return say(XMPPUV_ENOMEM, why, why_size, "out of memory reading the host-meta");
  XML_SetUserData(x.xp, &x);
  XML_SetElementHandler(x.xp, on_start, on_end);
  XML_SetStartDoctypeDeclHandler(x.xp, on_doctype);
  XML_SetEntityDeclHandler(x.xp, on_entity);
  XML_SetParamEntityParsing(x.xp, XML_PARAM_ENTITY_PARSING_NEVER);
  enum XML_Status st = XML_STATUS_OK;
  size_t off = 0;
  do {
    size_t n = len - off < (size_t)INT_MAX ? len - off : (size_t)INT_MAX;
    st = XML_Parse(x.xp, doc + off, (int)n, off + n == len);
    off += n;
  } while (st == XML_STATUS_OK && off < len);
  int rc = x.rc;
  if (expat_alloc_failed || rc == XMPPUV_ENOMEM) {
    rc = say(XMPPUV_ENOMEM, why, why_size, "out of memory reading the host-meta");
  } else if (rc == 0 && st != XML_STATUS_OK) {
    enum XML_Error e = XML_GetErrorCode(x.xp);
    if (e == XML_ERROR_NO_MEMORY)
      rc = say(XMPPUV_ENOMEM, why, why_size, "out of memory reading the host-meta");
    else
      rc = say(XMPPUV_EPROTO, why, why_size,
               "the host-meta is not well-formed XML (%s at line %lu)", XML_ErrorString(e),
               (unsigned long)XML_GetCurrentLineNumber(x.xp));
  }
  XML_ParserFree(x.xp);
  return rc;
}

int xmppuv__hostmeta_websocket(const char *doc, size_t len, int json, int allow_ws, char *url,
                               size_t url_size, char *why, size_t why_size) {
  if (url_size > 0) url[0] = '\0';
  if (why_size > 0) why[0] = '\0';
  links_t l = {allow_ws != 0, 0, 0, 0, 0, XMPPUV__BUF_INIT, XMPPUV__BUF_INIT, 0};
  int rc = json ? jrd(doc, len, &l, why, why_size) : xrd(doc, len, &l, why, why_size);
  if (rc == 0) rc = choose(&l, url, url_size, why, why_size);
  xmppuv__buf_free(&l.wss);
  xmppuv__buf_free(&l.ws);
  if (rc != 0 && url_size > 0) url[0] = '\0';
  return rc;
}
