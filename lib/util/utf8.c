#include "util/utf8.h"

#include <stdint.h>
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

/* Non-zero if any of the 8 bytes is >= 0x80 or < 0x20: the cases the
 * byte loop must look at (SWAR: bytes minus 0x20 borrow into the high bit). */
static int word_needs_look(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  return ((w | (w - ones * 0x20)) & highs) != 0;
}

int xmppuv__xml_text_check(const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0;
  /* Printable ASCII, the common case, 8 bytes at a time. */
  while (i + 8 <= len) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    if (word_needs_look(w)) break;
    i += 8;
  }
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

/* ASCII name characters: 1 may start a name, 2 may follow. */
static const unsigned char ascii_name[128] = {
    ['A'] = 3, ['B'] = 3, ['C'] = 3, ['D'] = 3, ['E'] = 3, ['F'] = 3, ['G'] = 3,
    ['H'] = 3, ['I'] = 3, ['J'] = 3, ['K'] = 3, ['L'] = 3, ['M'] = 3, ['N'] = 3,
    ['O'] = 3, ['P'] = 3, ['Q'] = 3, ['R'] = 3, ['S'] = 3, ['T'] = 3, ['U'] = 3,
    ['V'] = 3, ['W'] = 3, ['X'] = 3, ['Y'] = 3, ['Z'] = 3, ['a'] = 3, ['b'] = 3,
    ['c'] = 3, ['d'] = 3, ['e'] = 3, ['f'] = 3, ['g'] = 3, ['h'] = 3, ['i'] = 3,
    ['j'] = 3, ['k'] = 3, ['l'] = 3, ['m'] = 3, ['n'] = 3, ['o'] = 3, ['p'] = 3,
    ['q'] = 3, ['r'] = 3, ['s'] = 3, ['t'] = 3, ['u'] = 3, ['v'] = 3, ['w'] = 3,
    ['x'] = 3, ['y'] = 3, ['z'] = 3, ['_'] = 3, ['-'] = 2, ['.'] = 2, ['0'] = 2,
    ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2,
    ['8'] = 2, ['9'] = 2,
};

int xmppuv__xml_name_check(const char *name, int allow_colon) {
  const unsigned char *s = (const unsigned char *)name;
  /* The common case: a plain ASCII name without a colon, checked by table. */
  if (s[0] < 128 && (ascii_name[s[0]] & 1)) {
    size_t i = 1;
    while (s[i] != 0 && s[i] < 128 && ascii_name[s[i]]) i++;
    if (s[i] == 0) return 0;
  }
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
