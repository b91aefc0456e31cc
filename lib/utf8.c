#include "utf8.h"

#include <string.h>

#include "xmppuv.h"

size_t xmppuv__utf8_decode(const unsigned char *s, size_t len, unsigned int *cp) {
  unsigned int c = s[0];
  size_t n;
  unsigned int min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
    c &= 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
    c &= 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
    c &= 0x07;
  } else {
    return 0;
  }
  if (len < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3Fu);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return n;
}

static int is_xml_char(unsigned int c) {
  if (c < 0x20) return c == 0x9 || c == 0xA || c == 0xD;
  if (c <= 0xD7FF) return 1;
  if (c >= 0xE000 && c <= 0xFFFD) return 1;
  return c >= 0x10000 && c <= 0x10FFFF;
}

int xmppuv__xml_text_check(const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0;
  while (i < len) {
    unsigned char b = s[i];
    if (b >= 0x20 && b < 0x80) { /* the common case: printable ASCII */
      i++;
      continue;
    }
    unsigned int cp;
    size_t n = xmppuv__utf8_decode(s + i, len - i, &cp);
    if (n == 0) return XMPPUV_EUTF8;
    if (!is_xml_char(cp)) return XMPPUV_EXMLCHAR;
    i += n;
  }
  return 0;
}

/* XML 1.0 (5th ed.) NameStartChar, without ':' which the caller decides. */
static int is_name_start(unsigned int c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return 1;
  return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) ||
         (c >= 0xF8 && c <= 0x2FF) || (c >= 0x370 && c <= 0x37D) ||
         (c >= 0x37F && c <= 0x1FFF) || (c >= 0x200C && c <= 0x200D) ||
         (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) ||
         (c >= 0x3001 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) ||
         (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);
}

static int is_name_char(unsigned int c) {
  if (is_name_start(c)) return 1;
  return c == '-' || c == '.' || (c >= '0' && c <= '9') || c == 0xB7 ||
         (c >= 0x300 && c <= 0x36F) || (c >= 0x203F && c <= 0x2040);
}

int xmppuv__xml_name_check(const char *name, int allow_colon) {
  const unsigned char *s = (const unsigned char *)name;
  size_t len = strlen(name);
  if (len == 0) return XMPPUV_EXMLNAME;
  size_t i = 0;
  int first = 1;
  while (i < len) {
    unsigned int cp;
    size_t n = xmppuv__utf8_decode(s + i, len - i, &cp);
    if (n == 0) return XMPPUV_EUTF8;
    if (cp == ':') {
      if (!allow_colon || first || i + 1 == len) return XMPPUV_EXMLNAME;
    } else if (first ? !is_name_start(cp) : !is_name_char(cp)) {
      return XMPPUV_EXMLNAME;
    }
    first = cp == ':'; /* a local name after the prefix starts afresh */
    i += n;
  }
  return 0;
}
