/* xmppuv: an asynchronous XMPP client library for libuv applications, with
 * XEP-0198 Stream Management built in.
 *
 * This is the one header applications include. It compiles as C99 and C++
 * and does not include <uv.h>; functions that take a loop take a
 * `struct uv_loop_s *`, which is what `uv_loop_t *` is.
 *
 * Conventions: functions return 0 or a negative error code (XMPPUV_E*, or a
 * libuv UV_E* code passed through). If a call that takes a callback returns an
 * error, the callback is never called. Objects belong to the thread running
 * their loop (see xmppuv/common.h). */
#ifndef XMPPUV_H
#define XMPPUV_H

#include "xmppuv/version.h"
#include "xmppuv/common.h"
#include "xmppuv/stanza.h"
#include "xmppuv/jid.h"
#include "xmppuv/client.h"
/* The chat layer (lib/im/): built on the client's public API only. */
#include "xmppuv/im/disco.h"
#include "xmppuv/im/roster.h"
#include "xmppuv/im/presence.h"
#include "xmppuv/im/carbons.h"
#include "xmppuv/im/receipts.h"
#include "xmppuv/im/mam.h"
#include "xmppuv/im/muc.h"
#include "xmppuv/im/chatstates.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library at run time: (major << 16) | (minor << 8) | patch,
 * and as "major.minor.patch". Compare with XMPPUV_VERSION_HEX. */
XMPPUV_EXTERN unsigned int xmppuv_version(void);
XMPPUV_EXTERN const char *xmppuv_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
