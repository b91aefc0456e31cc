#include <uv.h>

#include "xmppuv.h"

#define ERR_NAME_CASE(name, value, text) \
  case XMPPUV_##name:                   \
    return #name;
#define ERR_TEXT_CASE(name, value, text) \
  case XMPPUV_##name:                   \
    return text;

/* Our codes sit in -30001..-30999, clear of libuv's (negative errno values on
 * Unix, -4000s on Windows, -3000s for getaddrinfo), so one int carries both. */
static int is_ours(int err) { return err < XMPPUV_ERRNO_MAX && err > -31000; }

const char *xmppuv_strerror(int err) {
  if (err == 0) return "success";
  switch (err) { XMPPUV_ERRNO_MAP(ERR_TEXT_CASE) default: break; }
  if (is_ours(err) || err > 0) return "unknown error";
  return uv_strerror(err);
}

const char *xmppuv_err_name(int err) {
  if (err == 0) return "OK";
  switch (err) { XMPPUV_ERRNO_MAP(ERR_NAME_CASE) default: break; }
  if (is_ours(err) || err > 0) return "UNKNOWN";
  const char *name = uv_err_name(err);
  /* libuv answers "Unknown system error -N" (a static buffer) for codes it
   * does not know; keep our promise of a static, thread-safe string. */
  if (name == NULL || name[0] == 'U') return "UNKNOWN";
  return name;
}
