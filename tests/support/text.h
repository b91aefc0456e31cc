/* Text that grows in a fixed buffer: a test's log, a line of event names.
 * Test support code. Not thread-safe. */
#ifndef XMPPUV_TEST_TEXT_H
#define XMPPUV_TEST_TEXT_H

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define XMPPUV_TEST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define XMPPUV_TEST_PRINTF(f, a)
#endif

/* Append the formatted text to buf (size bytes, *len used) if it fits
 * whole, and count it in *len; else *len stays (a longer text is cut at
 * the last piece that fitted). buf stays NUL-terminated. */
void text_append(char *buf, size_t size, size_t *len, const char *fmt, ...)
    XMPPUV_TEST_PRINTF(4, 5);

#endif
