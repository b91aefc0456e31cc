/* xmppuv chat layer: Message Carbons (XEP-0280).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * With carbons on, the server copies the account's one-to-one messages to
 * every resource of it: what another device of ours received, and what
 * another device of ours sent. Attached to a client, this module turns
 * carbons on for every new session (`online`; after a resumption the
 * server kept them on, so nothing is sent), and hands each copy to the app
 * unwrapped, with its direction.
 *
 * Enabling: the module asks the server to enable carbons straight away,
 * without asking its disco#info first (one round trip per login instead of
 * two); a server without carbons answers with an error, reported through
 * `enabled` as XMPPUV_EIQERROR.
 *
 * Security (XEP-0280 §11): a copy is accepted only from the account's own
 * bare JID (compared as JIDs). Anything else that looks like a carbon (from
 * another JID, from a full JID of ours, or with no from) is not delivered
 * at all: neither as a carbon nor to the app's message handlers (so a
 * forged inner message never reaches the app as if its claimed sender had
 * sent it); it is reported through `spoofed`.
 *
 * Handlers run in the order they were added: create this module before
 * adding the app's own message handlers, so that they never see the
 * wrappers.
 *
 * Released with its client (the `closed` event), or earlier with
 * xmppuv_carbons_free(). Everything runs on the client's loop. */
#ifndef XMPPUV_IM_CARBONS_H
#define XMPPUV_IM_CARBONS_H

#include <stddef.h>

#include "../client.h"
#include "disco.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMPPUV_NS_CARBONS "urn:xmpp:carbons:2"
#define XMPPUV_NS_FORWARD "urn:xmpp:forward:0"
#define XMPPUV_NS_HINTS "urn:xmpp:hints"

typedef struct xmppuv_carbons xmppuv_carbons_t;

typedef enum {
  /* Another resource of ours received this message (XEP-0280 §7). */
  XMPPUV_CARBON_RECEIVED = 1,
  /* Another resource of ours sent this message (XEP-0280 §8). */
  XMPPUV_CARBON_SENT = 2
} xmppuv_carbon_direction_t;

/* A copy, as delivered to the app. Everything borrowed for the callback;
 * message and wrapper are one tree: xmppuv_stanza_ref(message) keeps it,
 * xmppuv_stanza_copy(message) makes the message a stanza of its own. */
typedef struct xmppuv_carbon {
  xmppuv_carbon_direction_t direction;
  xmppuv_stanza_t *message;       /* the original <message/>, as forwarded */
  const xmppuv_stanza_t *wrapper; /* the server's <message/> around it */
  const char *stamp; /* the XEP-0203 stamp inside <forwarded/>, or NULL */
} xmppuv_carbon_t;

/* Every callback may be NULL. Initialize with xmppuv_carbons_callbacks_init(),
 * or statically with .struct_size = sizeof(xmppuv_carbons_callbacks_t). New
 * callbacks are only ever added at the end. */
typedef struct xmppuv_carbons_callbacks {
  size_t struct_size;
  /* The outcome of enabling carbons for a new session: status 0 (on);
   * XMPPUV_EIQERROR (the server refused: it does not support carbons, or
   * does not allow them; reply is its error); or, with reply NULL, an iq
   * outcome (XMPPUV_ETIMEDOUT, XMPPUV_ECANCELED when the client closes).
   * A request lost with its session (XMPPUV_ESMFAILED) is not reported:
   * the next session's `enabled` is. reply is borrowed. */
  void (*enabled)(xmppuv_carbons_t *cb, int status, const xmppuv_stanza_t *reply,
                  void *user_data);
  /* A copy from the account's own bare JID. */
  void (*carbon)(xmppuv_carbons_t *cb, const xmppuv_carbon_t *carbon, void *user_data);
  /* A message claiming to be a carbon from anyone but the account's bare JID
   * (wrapper borrowed). It was dropped: the app's message handlers do not
   * see it. For the app's log or its security counters. */
  void (*spoofed)(xmppuv_carbons_t *cb, const xmppuv_stanza_t *wrapper, void *user_data);
} xmppuv_carbons_callbacks_t;

/* Zero every callback and set struct_size (a macro: the size this app was
 * compiled with). NULL is a no-op. */
#define xmppuv_carbons_callbacks_init(cbs) \
  xmppuv_carbons_callbacks_init_sized((cbs), sizeof(xmppuv_carbons_callbacks_t))
XMPPUV_EXTERN void xmppuv_carbons_callbacks_init_sized(xmppuv_carbons_callbacks_t *cbs,
                                                       size_t struct_size);

/* Attach to c. disco (may be NULL): "urn:xmpp:carbons:2" is added to its
 * features (it stays there if this module is freed before the disco
 * module: remove it with xmppuv_disco_remove_feature() if that matters).
 * callbacks (NULL: none) are copied. If the client is online already,
 * carbons are enabled now for the current session. Errors: XMPPUV_EINVAL
 * (c or out NULL, callbacks not initialised), XMPPUV_ECLOSED (after close),
 * XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_carbons_new(xmppuv_client_t *c, xmppuv_disco_t *disco,
                                     const xmppuv_carbons_callbacks_t *callbacks,
                                     void *user_data, xmppuv_carbons_t **out);
/* Detach and free now (otherwise the client's `closed` does it, and the
 * module must not be used after that). An enable in flight is cancelled
 * without a callback. NULL: no-op. May be called from inside the module's
 * own callbacks. */
XMPPUV_EXTERN void xmppuv_carbons_free(xmppuv_carbons_t *cb);

/* Non-zero once the server confirmed carbons for the current session (also
 * after a resumption of it); 0 before, after a refusal, and for NULL. */
XMPPUV_EXTERN int xmppuv_carbons_enabled(const xmppuv_carbons_t *cb);

/* Keep this outgoing message from being copied to our other resources (and
 * the recipient's): adds <private xmlns='urn:xmpp:carbons:2'/> and
 * <no-copy xmlns='urn:xmpp:hints'/> (XEP-0280 §9), once however often it
 * is called. 0, XMPPUV_EINVAL (NULL, or not a <message/>), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_carbons_mark_private(xmppuv_stanza_t *message);

#ifdef __cplusplus
}
#endif

#endif
