#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "xmppuv.h"

#define ERR_NAME_CASE(name, value, text) \
  case XMPPUV_##name:                   \
    return #name;
#define ERR_TEXT_CASE(name, value, text) \
  case XMPPUV_##name:                   \
    return text;

/* The shared codes are libuv's, by value (common.h): checked here, where
 * uv.h is in view. */
#define SAME_AS_LIBUV(name, value, text) \
  _Static_assert((int)XMPPUV_##name == (int)UV_##name, "XMPPUV_" #name " is not UV_" #name);
XMPPUV_SYS_ERRNO_MAP(SAME_AS_LIBUV)
#undef SAME_AS_LIBUV

/* Our own codes sit in -30001..-30999, clear of libuv's (negative errno
 * values on Unix, -4000s on Windows, -3000s for getaddrinfo), so one int
 * carries both. */
static int is_ours(int err) { return err < XMPPUV_ERRNO_MAX && err > -31000; }

/* Whether libuv has a name for err, found without allocating: for a code it
 * does not know, uv_err_name() and uv_strerror() return a freshly malloc'd
 * "Unknown system error N" that nobody frees (libuv 1.44), so they may be
 * called only once this says yes. uv_err_name_r() writes that same text into
 * our buffer instead. */
static int uv_knows(int err) {
  char name[64];
  char unknown[64];
  uv_err_name_r(err, name, sizeof name);
  snprintf(unknown, sizeof unknown, "Unknown system error %d", err);
  return strcmp(name, unknown) != 0;
}

const char *xmppuv_strerror(int err) {
  if (err == 0) return "success";
  switch (err) {
    XMPPUV_SYS_ERRNO_MAP(ERR_TEXT_CASE)
    XMPPUV_ERRNO_MAP(ERR_TEXT_CASE)
    default: break;
  }
  if (is_ours(err) || err > 0 || !uv_knows(err)) return "unknown error";
  return uv_strerror(err);
}

const char *xmppuv_err_name(int err) {
  if (err == 0) return "OK";
  switch (err) {
    XMPPUV_SYS_ERRNO_MAP(ERR_NAME_CASE)
    XMPPUV_ERRNO_MAP(ERR_NAME_CASE)
    default: break;
  }
  if (is_ours(err) || err > 0 || !uv_knows(err)) return "UNKNOWN";
  return uv_err_name(err);
}
