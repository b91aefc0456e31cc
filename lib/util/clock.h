/* Time as the driver passes it to the I/O-free core, which never reads a
 * clock: monotonic milliseconds (uv_now) for deadlines, wall-clock Unix
 * milliseconds (UTC) for delay stamps and saved state. */
#ifndef XMPPUV_CLOCK_H
#define XMPPUV_CLOCK_H

#include <stdint.h>

typedef struct xmppuv__time {
  uint64_t mono_ms;
  int64_t wall_ms;
} xmppuv__time_t;

/* "No deadline": later than any monotonic time. */
#define XMPPUV__NO_DEADLINE UINT64_MAX

#endif
