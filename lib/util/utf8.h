/* UTF-8 and XML 1.0 character checks for everything the API accepts. */
#ifndef XMPPUV_UTF8_H
#define XMPPUV_UTF8_H

#include <stddef.h>

/* 0 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, at most
 * U+10FFFF) made only of XML 1.0 Chars: #x9 #xA #xD [#x20-#xD7FF]
 * [#xE000-#xFFFD] [#x10000-#x10FFFF]. Else XMPPUV_EUTF8 or XMPPUV_EXMLCHAR. */
int xmppuv__xml_text_check(const char *s, size_t len);

/* 0 if s is a valid XML 1.0 Name (a colon allowed only if allow_colon, and
 * then not first or last), else XMPPUV_EXMLNAME / XMPPUV_EUTF8. */
int xmppuv__xml_name_check(const char *s, int allow_colon);

/* Decode one code point at s (len bytes available). Returns its length in
 * bytes and stores it in *cp, or 0 if the sequence is not valid UTF-8. */
size_t xmppuv__utf8_decode(const unsigned char *s, size_t len, unsigned int *cp);

#endif
