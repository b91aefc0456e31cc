/* JIDs (RFC 7622): split, prepare each part, keep the canonical forms in one
 * allocation.
 *
 * localpart    PRECIS UsernameCaseMapped (RFC 8265 §3.3) over the
 *              IdentifierClass (RFC 8264 §4.2), plus RFC 7622 §3.3.1.
 * domainpart   IDNA2008 through libidn2, or an IP literal through libuv.
 * resourcepart PRECIS OpaqueString (RFC 8265 §4.2) over the FreeformClass.
 *
 * libunistring and libidn2 allocate with the C library's malloc; what they
 * hand back is released here with free()/idn2_free() and never escapes. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "jid_int.h"
#include "util/alloc.h"
#include "util/utf8.h"
#include "xmppuv.h"

/* RFC 7622 §3.1: each part is at most 1023 octets once prepared. */
#define PART_MAX 1023u
/* RFC 1035 §2.3.4 / RFC 1123 §2.1: a DNS name is at most 255 octets on the
 * wire, 253 characters as text without the final dot; a label 63. */
#define DNS_NAME_MAX 253u
#define DNS_LABEL_MAX 63u
#define NONE ((size_t)-1)

struct xmppuv_jid {
  size_t size; /* bytes in text[] */
  /* Offsets into text[] of NUL-terminated strings; NONE when absent. The
   * full form is at 0; the others share its bytes where they can. */
  size_t bare, local, domain, ascii, resource;
  char text[];
};

/* ---- code point tables -------------------------------------------------- */

typedef enum { DISALLOWED, PVALID, CONTEXTJ, CONTEXTO } cp_status;

static int in_range(ucs4_t cp, ucs4_t lo, ucs4_t hi) {
  return cp >= lo && cp <= hi;
}

/* RFC 5892 §2.6 Exceptions, which RFC 8264 §9 reuses. */
static int exception_status(ucs4_t cp, cp_status *status) {
  switch (cp) {
    case 0x00DF:
    case 0x03C2:
    case 0x06FD:
    case 0x06FE:
    case 0x0F0B:
    case 0x3007:
      *status = PVALID;
      return 1;
    case 0x00B7:
    case 0x0375:
    case 0x05F3:
    case 0x05F4:
    case 0x30FB:
      *status = CONTEXTO;
      return 1;
    case 0x0640:
    case 0x07FA:
    case 0x302E:
    case 0x302F:
    case 0x303B:
      *status = DISALLOWED;
      return 1;
    default:
      break;
  }
  if (in_range(cp, 0x0660, 0x0669) || in_range(cp, 0x06F0, 0x06F9)) {
    *status = CONTEXTO;
    return 1;
  }
  if (in_range(cp, 0x3031, 0x3035)) {
    *status = DISALLOWED;
    return 1;
  }
  return 0;
}

/* OldHangulJamo (RFC 5892 §2): Hangul_Syllable_Type L, V or T. */
static int is_old_hangul_jamo(ucs4_t cp) {
  return in_range(cp, 0x1100, 0x11FF) || in_range(cp, 0xA960, 0xA97C) ||
         in_range(cp, 0xD7B0, 0xD7C6) || in_range(cp, 0xD7CB, 0xD7FB);
}

/* HasCompat (RFC 8264 §9): toNFKC(cp) != cp. Returns 1, 0, or ENOMEM. */
static int has_compat(ucs4_t cp) {
  int tag;
  ucs4_t decomposition[UC_DECOMPOSITION_MAX_LENGTH];
  if (uc_decomposition(cp, &tag, decomposition) < 0) return 0;
  if (tag != UC_DECOMP_CANONICAL) return 1;
  /* A canonical decomposition may still hide a compatibility one deeper
   * down (U+1E9B); 32 units hold any single code point's NFKC form. */
  uint32_t buf[32];
  size_t len = sizeof buf / sizeof buf[0];
  uint32_t *nfkc = u32_normalize(UNINORM_NFKC, &cp, 1, buf, &len);
  if (nfkc == NULL) return errno == ENOMEM ? XMPPUV_ENOMEM : 1;
  int changed = len != 1 || nfkc[0] != cp;
  if (nfkc != buf) free(nfkc);
  return changed;
}

/* RFC 8264 §8: the derived property of cp in the IdentifierClass
 * (freeform == 0) or the FreeformClass. Negative on ENOMEM. */
static int precis_status(ucs4_t cp, int freeform) {
  cp_status status;
  if (exception_status(cp, &status)) return (int)status;
  /* BackwardCompatible is empty. */
  uint32_t gc = uc_general_category(cp).bitmask;
  if (gc & UC_CATEGORY_MASK_Cn) return DISALLOWED;   /* Unassigned */
  if (cp >= 0x21 && cp <= 0x7E) return PVALID;       /* ASCII7 */
  if (cp == 0x200C || cp == 0x200D) return CONTEXTJ; /* JoinControl */
  if (is_old_hangul_jamo(cp)) return DISALLOWED;
  /* PrecisIgnorableProperties */
  if (uc_is_property_default_ignorable_code_point(cp) ||
      uc_is_property_not_a_character(cp))
    return DISALLOWED;
  if (gc & UC_CATEGORY_MASK_Cc) return DISALLOWED; /* Controls */
  int compat = has_compat(cp);
  if (compat < 0) return compat;
  if (compat) return freeform ? PVALID : DISALLOWED;
  /* LetterDigits */
  if (gc & (UC_CATEGORY_MASK_Ll | UC_CATEGORY_MASK_Lu | UC_CATEGORY_MASK_Lo |
            UC_CATEGORY_MASK_Nd | UC_CATEGORY_MASK_Lm | UC_CATEGORY_MASK_Mn |
            UC_CATEGORY_MASK_Mc))
    return PVALID;
  /* OtherLetterDigits, Spaces, Symbols, Punctuation */
  if (gc & (UC_CATEGORY_MASK_Lt | UC_CATEGORY_MASK_Nl | UC_CATEGORY_MASK_No |
            UC_CATEGORY_MASK_Me | UC_CATEGORY_MASK_Zs | UC_CATEGORY_MASK_S |
            UC_CATEGORY_MASK_P))
    return freeform ? PVALID : DISALLOWED;
  return DISALLOWED; /* Zl, Zp, Cf, Co, Cs */
}

static int script_is(ucs4_t cp, const char *name) {
  const uc_script_t *script = uc_script(cp);
  return script != NULL && strcmp(script->name, name) == 0;
}

static int joining_is(ucs4_t cp, int a, int b) {
  int type = uc_joining_type(cp);
  return type == a || type == b;
}

/* RFC 5892 Appendix A: the rule for the CONTEXTJ/CONTEXTO code point at
 * cps[i]. */
static int context_ok(const ucs4_t *cps, size_t n, size_t i) {
  ucs4_t cp = cps[i];
  ucs4_t before = i > 0 ? cps[i - 1] : 0;
  ucs4_t after = i + 1 < n ? cps[i + 1] : 0;
  switch (cp) {
    case 0x200C: { /* A.1 ZERO WIDTH NON-JOINER */
      if (i > 0 && uc_combining_class(before) == UC_CCC_VR) return 1;
      size_t j = i;
      while (j > 0 && uc_joining_type(cps[j - 1]) == UC_JOINING_TYPE_T) j--;
      if (j == 0 ||
          !joining_is(cps[j - 1], UC_JOINING_TYPE_L, UC_JOINING_TYPE_D))
        return 0;
      j = i + 1;
      while (j < n && uc_joining_type(cps[j]) == UC_JOINING_TYPE_T) j++;
      return j < n && joining_is(cps[j], UC_JOINING_TYPE_R, UC_JOINING_TYPE_D);
    }
    case 0x200D: /* A.2 ZERO WIDTH JOINER */
      return i > 0 && uc_combining_class(before) == UC_CCC_VR;
    case 0x00B7: /* A.3 MIDDLE DOT, only in "l·l" (Catalan) */
      return before == 0x006C && after == 0x006C;
    case 0x0375: /* A.4 GREEK LOWER NUMERAL SIGN */
      return i + 1 < n && script_is(after, "Greek");
    case 0x05F3: /* A.5, A.6 HEBREW PUNCTUATION GERESH, GERSHAYIM */
    case 0x05F4:
      return i > 0 && script_is(before, "Hebrew");
    case 0x30FB: /* A.7 KATAKANA MIDDLE DOT */
      for (size_t j = 0; j < n; j++) {
        if (j != i &&
            (script_is(cps[j], "Hiragana") || script_is(cps[j], "Katakana") ||
             script_is(cps[j], "Han")))
          return 1;
      }
      return 0;
    default:
      break;
  }
  /* A.8, A.9: Arabic-Indic and Extended Arabic-Indic digits do not mix. */
  int arabic = in_range(cp, 0x0660, 0x0669);
  for (size_t j = 0; j < n; j++) {
    if (arabic ? in_range(cps[j], 0x06F0, 0x06F9)
               : in_range(cps[j], 0x0660, 0x0669))
      return 0;
  }
  return 1;
}

/* RFC 5893 §2, the Bidi Rule, for a string that holds right-to-left
 * characters (the directionality rule of RFC 8265 §3.3). */
static int bidi_ok(const ucs4_t *cps, size_t n) {
  int rtl = 0;
  for (size_t i = 0; i < n && !rtl; i++) {
    int c = uc_bidi_class(cps[i]);
    rtl = c == UC_BIDI_R || c == UC_BIDI_AL || c == UC_BIDI_AN;
  }
  if (!rtl) return 1;
  int first = uc_bidi_class(cps[0]);
  if (first != UC_BIDI_L && first != UC_BIDI_R && first != UC_BIDI_AL)
    return 0; /* rule 1 */
  int ltr = first == UC_BIDI_L;
  int en = 0, an = 0;
  for (size_t i = 0; i < n; i++) {
    int c = uc_bidi_class(cps[i]);
    int common = c == UC_BIDI_EN || c == UC_BIDI_ES || c == UC_BIDI_CS ||
                 c == UC_BIDI_ET || c == UC_BIDI_ON || c == UC_BIDI_BN ||
                 c == UC_BIDI_NSM;
    if (ltr) {
      if (!common && c != UC_BIDI_L) return 0; /* rule 5 */
    } else if (!common && c != UC_BIDI_R && c != UC_BIDI_AL &&
               c != UC_BIDI_AN) {
      return 0; /* rule 2 */
    }
    en |= c == UC_BIDI_EN;
    an |= c == UC_BIDI_AN;
  }
  if (!ltr && en && an) return 0; /* rule 4 */
  size_t last = n;
  while (last > 0 && uc_bidi_class(cps[last - 1]) == UC_BIDI_NSM) last--;
  if (last == 0) return 0;
  int end = uc_bidi_class(cps[last - 1]);
  if (ltr) return end == UC_BIDI_L || end == UC_BIDI_EN; /* rule 6 */
  return end == UC_BIDI_R || end == UC_BIDI_AL || end == UC_BIDI_EN ||
         end == UC_BIDI_AN; /* rule 3 */
}

/* 0 if the prepared string s (valid UTF-8, at most PART_MAX bytes) is made
 * only of code points its class allows, else fail (or ENOMEM). */
static int precis_check(const uint8_t *s, size_t len, int freeform, int fail) {
  ucs4_t cps[PART_MAX];
  size_t n = 0;
  for (size_t i = 0; i < len; n++) {
    unsigned int cp;
    size_t step = xmppuv__utf8_decode(s + i, len - i, &cp);
    if (step == 0) return fail;
    cps[n] = cp;
    i += step;
  }
  for (size_t i = 0; i < n; i++) {
    int status = precis_status(cps[i], freeform);
    if (status < 0) return status;
    if (status == DISALLOWED) return fail;
    if (status != PVALID && !context_ok(cps, n, i)) return fail;
  }
  if (!freeform && !bidi_ok(cps, n)) return fail;
  return 0;
}

static int utf8_valid(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    unsigned int cp;
    size_t step =
        xmppuv__utf8_decode((const unsigned char *)s + i, len - i, &cp);
    if (step == 0) return 0;
    i += step;
  }
  return 1;
}

/* The result of a libunistring call with out (PART_MAX bytes) as its result
 * buffer: anything that did not fit there is too long for a JID part. */
static int unistring_result(uint8_t *result, const char *out, int fail) {
  if (result == NULL) return errno == ENOMEM ? XMPPUV_ENOMEM : fail;
  if ((const char *)result != out) {
    free(result);
    return fail;
  }
  return 0;
}

/* ---- localpart ---------------------------------------------------------- */

/* RFC 7622 §3.3.1: not allowed in a localpart even though PRECIS allows
 * them. */
static int local_forbidden(unsigned int c) {
  return c == '"' || c == '&' || c == '\'' || c == '/' || c == ':' ||
         c == '<' || c == '>' || c == '@';
}

/* Prepare into out (PART_MAX + 1 bytes); the length goes to *out_len. */
static int prep_local(const char *in, size_t len, char *out, size_t *out_len) {
  const unsigned char *s = (const unsigned char *)in;
  int ascii = 1;
  for (size_t i = 0; i < len && ascii; i++)
    ascii = s[i] >= 0x21 && s[i] <= 0x7E;
  if (ascii) { /* ASCII7 is all PVALID, and NFC leaves it alone */
    if (len > PART_MAX) return XMPPUV_EJIDLOCAL;
    for (size_t i = 0; i < len; i++) {
      if (local_forbidden(s[i])) return XMPPUV_EJIDLOCAL;
      out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
    }
    *out_len = len;
    return 0;
  }
  if (!utf8_valid(in, len)) return XMPPUV_EJIDLOCAL;

  /* RFC 8265 §3.3, width mapping rule: fullwidth and halfwidth forms become
   * their decomposition, which is never longer in UTF-8. */
  uint8_t *mapped = xmppuv__malloc(len);
  if (mapped == NULL) return XMPPUV_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    unsigned int cp;
    i += xmppuv__utf8_decode(s + i, len - i, &cp);
    int tag;
    ucs4_t d[UC_DECOMPOSITION_MAX_LENGTH];
    if (uc_decomposition(cp, &tag, d) == 1 &&
        (tag == UC_DECOMP_WIDE || tag == UC_DECOMP_NARROW))
      cp = d[0];
    int w = u8_uctomb(mapped + n, cp, (ptrdiff_t)(len - n));
    if (w < 0) { /* a mapping that grew: none in Unicode 14 does */
      xmppuv__free(mapped);
      return XMPPUV_EJIDLOCAL;
    }
    n += (size_t)w;
  }
  /* Rules 3 and 4: toLowerCase, then NFC. */
  size_t out_n = PART_MAX;
  uint8_t *lower =
      u8_tolower(mapped, n, NULL, UNINORM_NFC, (uint8_t *)out, &out_n);
  xmppuv__free(mapped);
  int rc = unistring_result(lower, out, XMPPUV_EJIDLOCAL);
  if (rc != 0) return rc;
  for (size_t i = 0; i < out_n; i++) {
    if (local_forbidden((unsigned char)out[i])) return XMPPUV_EJIDLOCAL;
  }
  rc = precis_check((const uint8_t *)out, out_n, 0, XMPPUV_EJIDLOCAL);
  if (rc != 0) return rc;
  *out_len = out_n;
  return 0;
}

/* ---- resourcepart ------------------------------------------------------- */

static int prep_resource(const char *in, size_t len, char *out,
                         size_t *out_len) {
  const unsigned char *s = (const unsigned char *)in;
  int ascii = 1;
  for (size_t i = 0; i < len && ascii; i++)
    ascii = s[i] >= 0x20 && s[i] <= 0x7E;
  if (ascii) {
    if (len > PART_MAX) return XMPPUV_EJIDRESOURCE;
    memcpy(out, in, len);
    *out_len = len;
    return 0;
  }
  if (!utf8_valid(in, len)) return XMPPUV_EJIDRESOURCE;

  /* RFC 8265 §4.2, additional mapping rule: non-ASCII spaces become U+0020. */
  uint8_t *mapped = xmppuv__malloc(len);
  if (mapped == NULL) return XMPPUV_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    unsigned int cp;
    size_t step = xmppuv__utf8_decode(s + i, len - i, &cp);
    if (uc_general_category(cp).bitmask & UC_CATEGORY_MASK_Zs) {
      mapped[n++] = ' ';
    } else {
      memcpy(mapped + n, s + i, step);
      n += step;
    }
    i += step;
  }
  /* Rule 4: NFC. No width or case mapping, no directionality rule. */
  size_t out_n = PART_MAX;
  uint8_t *nfc = u8_normalize(UNINORM_NFC, mapped, n, (uint8_t *)out, &out_n);
  xmppuv__free(mapped);
  int rc = unistring_result(nfc, out, XMPPUV_EJIDRESOURCE);
  if (rc != 0) return rc;
  rc = precis_check((const uint8_t *)out, out_n, 1, XMPPUV_EJIDRESOURCE);
  if (rc != 0) return rc;
  *out_len = out_n;
  return 0;
}

/* ---- domainpart --------------------------------------------------------- */

/* RFC 1123 §2.1 host names, on the ASCII form: labels of 1 to 63 letters,
 * digits and hyphens, not starting or ending with a hyphen, 253 characters
 * in all; the last label is not all digits, so that a malformed IPv4
 * address is not taken for a name. */
static int ldh_ok(const char *s, size_t len) {
  if (len == 0 || len > DNS_NAME_MAX) return 0;
  size_t start = 0;
  int all_digits = 1;
  for (size_t i = 0; i <= len; i++) {
    char c = i < len ? s[i] : '.';
    if (c == '.') {
      size_t label = i - start;
      if (label == 0 || label > DNS_LABEL_MAX) return 0;
      if (s[start] == '-' || s[i - 1] == '-') return 0;
      if (i == len && all_digits) return 0;
      start = i + 1;
      all_digits = 1;
    } else if ((c >= 'a' && c <= 'z') || c == '-') {
      all_digits = 0;
    } else if (!(c >= '0' && c <= '9')) {
      return 0;
    }
  }
  return 1;
}

static int idn2_error(int rc) {
  return rc == IDN2_MALLOC ? XMPPUV_ENOMEM : XMPPUV_EJIDDOMAIN;
}

/* RFC 7622 §3.2 IP literals: a dotted quad, or an IPv6 address in
 * brackets (RFC 3986 IP-literal, without zone or IPvFuture). */
static int prep_ip(char *name, size_t len, char *out, size_t *out_len) {
  unsigned char addr[16];
  char text[64]; /* INET6_ADDRSTRLEN is 46 */
  if (name[0] == '[') {
    if (len < 4 || name[len - 1] != ']' || memchr(name, '%', len) != NULL)
      return XMPPUV_EJIDDOMAIN;
    name[len - 1] = '\0';
    if (inet_pton(AF_INET6, name + 1, addr) != 1 ||
        inet_ntop(AF_INET6, addr, text, sizeof text) == NULL)
      return XMPPUV_EJIDDOMAIN;
    size_t n = strlen(text);
    out[0] = '[';
    memcpy(out + 1, text, n);
    out[n + 1] = ']';
    *out_len = n + 2;
    return 0;
  }
  if (inet_pton(AF_INET, name, addr) != 1 ||
      inet_ntop(AF_INET, addr, text, sizeof text) == NULL)
    return XMPPUV_EJIDDOMAIN;
  *out_len = strlen(text);
  memcpy(out, text, *out_len);
  return 0;
}

static int is_dotted_digits(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '.' && !(s[i] >= '0' && s[i] <= '9')) return 0;
  }
  return 1;
}

/* A label that starts "xn--" in any case asks for IDNA processing. */
static int has_xn_label(const char *s, size_t len) {
  for (size_t i = 0; i + 4 <= len; i++) {
    if ((i == 0 || s[i - 1] == '.') && (s[i] | 0x20) == 'x' &&
        (s[i + 1] | 0x20) == 'n' && s[i + 2] == '-' && s[i + 3] == '-')
      return 1;
  }
  return 0;
}

/* Prepare into uni (PART_MAX + 1 bytes: the U-label form) and ascii
 * (DNS_NAME_MAX + 2 bytes: the A-label form). */
static int prep_domain(const char *in, size_t len, char *uni, size_t *uni_len,
                       char *ascii, size_t *ascii_len) {
  char name[PART_MAX + 1];
  if (len > PART_MAX || !utf8_valid(in, len)) return XMPPUV_EJIDDOMAIN;
  memcpy(name, in, len);
  name[len] = '\0';

  if (name[0] == '[' || is_dotted_digits(name, len)) {
    int rc = prep_ip(name, len, ascii, ascii_len);
    if (rc != 0) return rc;
    memcpy(uni, ascii, *ascii_len);
    *uni_len = *ascii_len;
    return 0;
  }

  int plain = !has_xn_label(name, len);
  for (size_t i = 0; i < len && plain; i++)
    plain = (unsigned char)name[i] < 0x80;
  size_t n;
  if (plain) {
    /* A plain host name skips libidn2, which refuses the reserved "ab--"
     * labels (RFC 5891 §4.2.3.1) that DNS has long allowed: lowercase it
     * and hold it to the LDH rule below. */
    if (len > DNS_NAME_MAX + 1) return XMPPUV_EJIDDOMAIN;
    for (size_t i = 0; i < len; i++)
      ascii[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + ('a' - 'A')
                                                         : name[i]);
    n = len;
  } else {
    uint8_t *lookup = NULL;
    /* Not IDN2_USE_STD3_ASCII_RULES: libidn2 2.3 drops the characters it
     * disallows ("a_b" becomes "ab") instead of refusing them. */
    int rc = idn2_lookup_u8((const uint8_t *)name, &lookup,
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) return idn2_error(rc);
    n = strlen((const char *)lookup);
    if (n > DNS_NAME_MAX + 1) {
      idn2_free(lookup);
      return XMPPUV_EJIDDOMAIN;
    }
    memcpy(ascii, lookup, n);
    idn2_free(lookup);
  }
  /* RFC 7622 §3.2: a final dot (after mapping, so "。" too) is removed. */
  if (n > 0 && ascii[n - 1] == '.') n--;
  if (!ldh_ok(ascii, n)) return XMPPUV_EJIDDOMAIN;
  ascii[n] = '\0';
  *ascii_len = n;

  if (plain) {
    memcpy(uni, ascii, n);
    *uni_len = n;
    return 0;
  }
  char *unicode = NULL;
  int rc = idn2_to_unicode_8z8z(ascii, &unicode, 0);
  if (rc != IDN2_OK) return idn2_error(rc);
  /* RFC 5891 §5.4: an A-label is valid only if its U-label is, and
   * converts back to it. libidn2 passes "xn--" labels through unchecked
   * (found by fuzzing: "xn--cbhr-eva-cbhr-eva.es" decodes to a label with
   * U+00B4, which IDNA2008 disallows, so the canonical form did not parse). */
  uint8_t *back = NULL;
  rc = idn2_lookup_u8((const uint8_t *)unicode, &back,
                      IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  int same = rc == IDN2_OK && strlen((const char *)back) == n &&
             memcmp(back, ascii, n) == 0;
  idn2_free(back);
  if (!same) {
    idn2_free(unicode);
    return rc == IDN2_MALLOC ? XMPPUV_ENOMEM : XMPPUV_EJIDDOMAIN;
  }
  size_t u = strlen(unicode);
  if (u > PART_MAX) {
    idn2_free(unicode);
    return XMPPUV_EJIDDOMAIN;
  }
  memcpy(uni, unicode, u);
  idn2_free(unicode);
  *uni_len = u;
  return 0;
}

/* ---- the object --------------------------------------------------------- */

/* One block: "local@domain/resource", then "local@domain" if there is a
 * resource, then "local" if any, then the ASCII domain if it differs. The
 * domain and resource are read in place at the ends of those strings. */
static int assemble(const char *local, size_t llen, const char *domain,
                    size_t dlen, const char *ascii, size_t alen,
                    const char *resource, size_t rlen, xmppuv_jid_t **out) {
  size_t head = local != NULL ? llen + 1 : 0;
  size_t bare_len = head + dlen;
  size_t full_len = bare_len + (resource != NULL ? rlen + 1 : 0);
  int own_ascii = alen != dlen || memcmp(ascii, domain, dlen) != 0;
  size_t size = full_len + 1;
  if (resource != NULL) size += bare_len + 1;
  if (local != NULL) size += llen + 1;
  if (own_ascii) size += alen + 1;

  xmppuv_jid_t *jid = xmppuv__malloc(sizeof *jid + size);
  if (jid == NULL) return XMPPUV_ENOMEM;
  jid->size = size;
  char *t = jid->text;
  size_t pos = 0;
  if (local != NULL) {
    memcpy(t, local, llen);
    t[llen] = '@';
  }
  memcpy(t + head, domain, dlen);
  if (resource != NULL) {
    t[bare_len] = '/';
    memcpy(t + bare_len + 1, resource, rlen);
    jid->resource = bare_len + 1;
  } else {
    jid->resource = NONE;
  }
  t[full_len] = '\0';
  pos = full_len + 1;
  jid->bare = 0;
  if (resource != NULL) {
    jid->bare = pos;
    memcpy(t + pos, t, bare_len);
    t[pos + bare_len] = '\0';
    pos += bare_len + 1;
  }
  jid->domain = jid->bare + head;
  jid->local = NONE;
  if (local != NULL) {
    jid->local = pos;
    memcpy(t + pos, local, llen);
    t[pos + llen] = '\0';
    pos += llen + 1;
  }
  jid->ascii = jid->domain;
  if (own_ascii) {
    jid->ascii = pos;
    memcpy(t + pos, ascii, alen);
    t[pos + alen] = '\0';
  }
  *out = jid;
  return 0;
}

static int build(const char *local, size_t llen, const char *domain,
                 size_t dlen, const char *resource, size_t rlen,
                 xmppuv_jid_t **out) {
  /* RFC 7622 §3.1: no part may be empty when its separator is present. */
  if ((local != NULL && llen == 0) || dlen == 0 ||
      (resource != NULL && rlen == 0))
    return XMPPUV_EJID;
  char lbuf[PART_MAX + 1], ubuf[PART_MAX + 1], abuf[DNS_NAME_MAX + 2];
  char rbuf[PART_MAX + 1];
  size_t lprep = 0, uprep = 0, aprep = 0, rprep = 0;
  int rc;
  if (local != NULL && (rc = prep_local(local, llen, lbuf, &lprep)) != 0)
    return rc;
  if ((rc = prep_domain(domain, dlen, ubuf, &uprep, abuf, &aprep)) != 0)
    return rc;
  if (resource != NULL &&
      (rc = prep_resource(resource, rlen, rbuf, &rprep)) != 0)
    return rc;
  return assemble(local != NULL ? lbuf : NULL, lprep, ubuf, uprep, abuf, aprep,
                  resource != NULL ? rbuf : NULL, rprep, out);
}

int xmppuv_jid_parse(const char *text, xmppuv_jid_t **out) {
  if (out != NULL) *out = NULL;
  if (text == NULL || out == NULL) return XMPPUV_EINVAL;
  size_t len = strlen(text);
  if (len == 0) return XMPPUV_EJID;
  /* RFC 7622 §3.1: the first '/' starts the resource (which may hold '@'
   * and '/'); the first '@' before it ends the localpart. */
  const char *slash = memchr(text, '/', len);
  size_t head = slash != NULL ? (size_t)(slash - text) : len;
  const char *at = memchr(text, '@', head);
  const char *domain = at != NULL ? at + 1 : text;
  return build(at != NULL ? text : NULL, at != NULL ? (size_t)(at - text) : 0,
               domain, head - (size_t)(domain - text),
               slash != NULL ? slash + 1 : NULL,
               slash != NULL ? len - head - 1 : 0, out);
}

/* RFC 7622 §3.3.1: not in a localpart, beyond what PRECIS refuses. */
static int ascii_local_ok(const char *s, size_t len) {
  if (len == 0 || len > PART_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x21 || ch > 0x7E) return 0;
    switch (ch) {
      case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@': return 0;
      default: break;
    }
  }
  return 1;
}

/* The domain in one pass: 0 (a valid plain host name), XMPPUV_EJIDDOMAIN,
 * or 1: not a plain ASCII host name (an IP literal, an A-label, non-ASCII),
 * for prep_domain. The same rules as prep_domain's plain path. */
static int quick_domain(const char *s, size_t len) {
  if (s[0] == '[') return 1;
  if (len > DNS_NAME_MAX + 1) {
    for (size_t i = 0; i < len; i++)
      if ((unsigned char)s[i] >= 0x80) return 1;
    return is_dotted_digits(s, len) ? 1 : XMPPUV_EJIDDOMAIN;
  }
  size_t n = s[len - 1] == '.' ? len - 1 : len;
  int only_digits = 1, bad = n == 0 || n > DNS_NAME_MAX;
  size_t start = 0;
  int label_digits = 1;
  for (size_t i = 0; i <= n; i++) {
    unsigned char c = i < n ? (unsigned char)s[i] : '.';
    if (c >= 0x80) return 1;
    if (c == '.') {
      size_t label = i - start;
      if (label == 0 || label > DNS_LABEL_MAX || s[start] == '-' || s[i - 1] == '-' ||
          (i == n && label_digits))
        bad = 1;
      if (label >= 4 && (s[start] | 0x20) == 'x' && (s[start + 1] | 0x20) == 'n' &&
          s[start + 2] == '-' && s[start + 3] == '-')
        return 1; /* an A-label: IDNA rules */
      start = i + 1;
      label_digits = 1;
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
      label_digits = only_digits = 0;
    } else if (c == '-') {
      label_digits = only_digits = 0;
    } else if (!(c >= '0' && c <= '9')) {
      bad = 1;
      only_digits = 0;
    }
  }
  if (only_digits) return 1; /* dotted digits: an IPv4 address, or not */
  return bad ? XMPPUV_EJIDDOMAIN : 0;
}

static int ascii_resource_ok(const char *s, size_t len) {
  if (len == 0 || len > PART_MAX) return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E) return 0;
  return 1;
}

int xmppuv__jid_check(const char *text) {
  if (text == NULL) return XMPPUV_EINVAL;
  size_t len = strlen(text);
  if (len == 0) return XMPPUV_EJID;
  const char *slash = memchr(text, '/', len);
  size_t head = slash != NULL ? (size_t)(slash - text) : len;
  const char *at = memchr(text, '@', head);
  const char *domain = at != NULL ? at + 1 : text;
  size_t dlen = head - (size_t)(domain - text);
  /* Printable ASCII local and resource parts are valid as they are (PRECIS
   * only lowercases such a localpart): only the domain needs its rules,
   * and those need no allocation for an ASCII name. Anything else goes
   * the whole way (fuzz_jid checks that both agree). */
  if ((at == NULL || ascii_local_ok(text, (size_t)(at - text))) &&
      (slash == NULL || ascii_resource_ok(slash + 1, len - head - 1)) && dlen > 0 &&
      dlen <= PART_MAX) {
    int rc = quick_domain(domain, dlen);
    if (rc != 1) return rc;
  }
  xmppuv_jid_t *j = NULL;
  int rc = xmppuv_jid_parse(text, &j);
  xmppuv_jid_free(j);
  return rc;
}

int xmppuv_jid_new(const char *local, const char *domain, const char *resource,
                   xmppuv_jid_t **out) {
  if (out != NULL) *out = NULL;
  if (domain == NULL || out == NULL) return XMPPUV_EINVAL;
  return build(local, local != NULL ? strlen(local) : 0, domain, strlen(domain),
               resource, resource != NULL ? strlen(resource) : 0, out);
}

int xmppuv_jid_copy(const xmppuv_jid_t *jid, xmppuv_jid_t **out) {
  if (out != NULL) *out = NULL;
  if (jid == NULL || out == NULL) return XMPPUV_EINVAL;
  xmppuv_jid_t *copy = xmppuv__memdup(jid, sizeof *jid + jid->size);
  if (copy == NULL) return XMPPUV_ENOMEM;
  *out = copy;
  return 0;
}

int xmppuv_jid_bare(const xmppuv_jid_t *jid, xmppuv_jid_t **out) {
  if (out != NULL) *out = NULL;
  if (jid == NULL || out == NULL) return XMPPUV_EINVAL;
  if (jid->resource == NONE) return xmppuv_jid_copy(jid, out);
  const char *t = jid->text;
  const char *local = jid->local != NONE ? t + jid->local : NULL;
  return assemble(local, local != NULL ? strlen(local) : 0, t + jid->domain,
                  strlen(t + jid->domain), t + jid->ascii,
                  strlen(t + jid->ascii), NULL, 0, out);
}

void xmppuv_jid_free(xmppuv_jid_t *jid) { xmppuv__free(jid); }

static const char *part(const xmppuv_jid_t *jid, size_t offset) {
  return offset != NONE ? jid->text + offset : NULL;
}

const char *xmppuv_jid_local(const xmppuv_jid_t *jid) {
  return jid != NULL ? part(jid, jid->local) : NULL;
}

const char *xmppuv_jid_domain(const xmppuv_jid_t *jid) {
  return jid != NULL ? part(jid, jid->domain) : NULL;
}

const char *xmppuv_jid_resource(const xmppuv_jid_t *jid) {
  return jid != NULL ? part(jid, jid->resource) : NULL;
}

const char *xmppuv_jid_domain_ascii(const xmppuv_jid_t *jid) {
  return jid != NULL ? part(jid, jid->ascii) : NULL;
}

const char *xmppuv_jid_string(const xmppuv_jid_t *jid) {
  return jid != NULL ? jid->text : NULL;
}

const char *xmppuv_jid_bare_string(const xmppuv_jid_t *jid) {
  return jid != NULL ? part(jid, jid->bare) : NULL;
}

int xmppuv_jid_is_bare(const xmppuv_jid_t *jid) {
  return jid != NULL && jid->resource == NONE;
}

/* The canonical forms are unique and '@' and '/' cannot occur inside the
 * local and domain parts, so comparing the joined strings is exact. */
int xmppuv_jid_equal(const xmppuv_jid_t *a, const xmppuv_jid_t *b) {
  return a != NULL && b != NULL && strcmp(a->text, b->text) == 0;
}

int xmppuv_jid_bare_equal(const xmppuv_jid_t *a, const xmppuv_jid_t *b) {
  return a != NULL && b != NULL &&
         strcmp(a->text + a->bare, b->text + b->bare) == 0;
}
