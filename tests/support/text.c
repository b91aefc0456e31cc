#include "text.h"

#include <stdarg.h>
#include <stdio.h>

void text_append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, size - *len, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < size - *len) *len += (size_t)n;
}
