/* xmppuv chat layer: Message Delivery Receipts (XEP-0184) and Unique and
 * Stable Stanza IDs (XEP-0359).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * Attached to a client, the receipts module
 *   - answers receipt requests (<request xmlns='urn:xmpp:receipts'/>) in
 *     incoming messages with an ack (<received id/>), unless the message
 *     is of type groupchat or error, has no id or no sender, or is itself
 *     an ack (XEP-0184 §5.4: no loops); with or without a body (the spec asks
 *     for none); never for copies (carbons) and archived messages, which
 *     arrive wrapped, as XEP-0184 §5.5 and XEP-0280 §10.4 ask;
 *   - reports every ack that arrives through `receipt`;
 *   - prepares the app's outgoing messages: an id, an origin-id (XEP-0359)
 *     and, when asked, a receipt request.
 * The app's message handlers still see every message (acks included: the
 * module passes them on).
 *
 * XEP-0184 §8: answering a request tells the sender we are online. Give an
 * `answer_filter` to answer only those allowed to see our presence (the
 * module has no roster of its own).
 *
 * Released with its client (the `closed` event), or earlier with
 * xmppuv_receipts_free(). Everything runs on the client's loop. The
 * stanza-id helpers at the end need no module. */
#ifndef XMPPUV_IM_RECEIPTS_H
#define XMPPUV_IM_RECEIPTS_H

#include <stddef.h>

#include "../client.h"
#include "disco.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMPPUV_NS_RECEIPTS "urn:xmpp:receipts"
#define XMPPUV_NS_SID "urn:xmpp:sid:0"

typedef struct xmppuv_receipts xmppuv_receipts_t;

/* Initialize with xmppuv_receipts_options_init(); defaults in brackets. */
typedef struct xmppuv_receipts_options {
  size_t struct_size;   /* set by the init */
  int answer_requests;  /* answer receipt requests [1] */
  int request_receipts; /* xmppuv_receipts_prepare() with
                           XMPPUV_RECEIPTS_AS_OPTION asks for one [0] */
} xmppuv_receipts_options_t;

#define xmppuv_receipts_options_init(opts) \
  xmppuv_receipts_options_init_sized((opts), sizeof(xmppuv_receipts_options_t))
XMPPUV_EXTERN void xmppuv_receipts_options_init_sized(xmppuv_receipts_options_t *opts,
                                                      size_t struct_size);

/* Every callback may be NULL. Initialize with
 * xmppuv_receipts_callbacks_init(), or statically with .struct_size =
 * sizeof(xmppuv_receipts_callbacks_t). */
typedef struct xmppuv_receipts_callbacks {
  size_t struct_size;
  /* An ack: the message with this id that we sent to `from` arrived there.
   * Anyone can send an ack for any id: compare from with the recipient the
   * message went to (as JIDs: the ack comes from a full JID when the
   * message went to a bare one). All borrowed for the call. */
  void (*receipt)(xmppuv_receipts_t *r, const char *from, const char *id,
                  const xmppuv_stanza_t *message, void *user_data);
  /* Asked before answering a request (XEP-0184 §8): return non-zero to
   * answer it. NULL: answer every request (as answer_requests says). */
  int (*answer_filter)(xmppuv_receipts_t *r, const char *from,
                       const xmppuv_stanza_t *message, void *user_data);
} xmppuv_receipts_callbacks_t;

#define xmppuv_receipts_callbacks_init(cbs) \
  xmppuv_receipts_callbacks_init_sized((cbs), sizeof(xmppuv_receipts_callbacks_t))
XMPPUV_EXTERN void xmppuv_receipts_callbacks_init_sized(xmppuv_receipts_callbacks_t *cbs,
                                                        size_t struct_size);

/* Attach to c. disco (may be NULL): "urn:xmpp:receipts" is added to its
 * features (it stays there if this module is freed before the disco
 * module). Not "urn:xmpp:sid:0": that announces an entity that assigns
 * stanza-ids (XEP-0359 §5), a server or a room, not a client. opts (NULL: the defaults) and
 * callbacks (NULL: none) are copied. Errors: XMPPUV_EINVAL (c or out NULL,
 * opts or callbacks not initialised), XMPPUV_ECLOSED (after close),
 * XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_receipts_new(xmppuv_client_t *c, xmppuv_disco_t *disco,
                                      const xmppuv_receipts_options_t *opts,
                                      const xmppuv_receipts_callbacks_t *callbacks,
                                      void *user_data, xmppuv_receipts_t **out);
/* Detach and free now (otherwise the client's `closed` does it, and the
 * module must not be used after that). NULL: no-op. May be called from
 * inside the module's own callbacks. */
XMPPUV_EXTERN void xmppuv_receipts_free(xmppuv_receipts_t *r);

/* `request` for xmppuv_receipts_prepare(). */
#define XMPPUV_RECEIPTS_AS_OPTION (-1) /* as the request_receipts option says */
#define XMPPUV_RECEIPTS_NO_REQUEST 0
#define XMPPUV_RECEIPTS_REQUEST 1

/* Make an outgoing <message/> ready, before xmppuv_client_send(): a fresh
 * origin-id (<origin-id xmlns='urn:xmpp:sid:0' id/>, a random UUID; one
 * already there is kept), an id attribute when there is none (the same
 * UUID), and a receipt request when `request` says so, except in a
 * groupchat message or an ack (XEP-0184 §5.3, §5.4). The id to wait for an
 * ack of is the message's id attribute afterwards. 0; XMPPUV_EINVAL
 * (message NULL or not a <message/>, or r NULL with
 * XMPPUV_RECEIPTS_AS_OPTION); XMPPUV_ECRYPTO (no randomness);
 * XMPPUV_ENOMEM. r may be NULL with an explicit request. */
XMPPUV_EXTERN int xmppuv_receipts_prepare(xmppuv_receipts_t *r, xmppuv_stanza_t *message,
                                          int request);

/* The id a message acknowledges (<received xmlns='urn:xmpp:receipts' id/>),
 * or NULL: for acks found inside carbons or archives. Borrowed. */
XMPPUV_EXTERN const char *xmppuv_receipt_id_of(const xmppuv_stanza_t *message);

/* XEP-0359: the id of the <stanza-id xmlns='urn:xmpp:sid:0' id by/> that
 * the entity `by` put on message: our own bare JID for our account's
 * archive, a room's bare JID for a MUC's. Compared as JIDs; stanza-ids by
 * anyone else are ignored, and so is a message carrying two from `by`
 * (one of them cannot be its; the server should have removed the other):
 * NULL then. Trust it only if `by` announces "urn:xmpp:sid:0" in its
 * disco#info (XEP-0359 §6: otherwise anyone could have added it).
 * Borrowed from message. NULL for NULL arguments or an invalid `by`. */
XMPPUV_EXTERN const char *xmppuv_stanza_id_of(const xmppuv_stanza_t *message, const char *by);

/* The sender's <origin-id xmlns='urn:xmpp:sid:0' id/>, or NULL (also for
 * more than one). Borrowed. It is only what the sender claims. */
XMPPUV_EXTERN const char *xmppuv_origin_id_of(const xmppuv_stanza_t *message);

#ifdef __cplusplus
}
#endif

#endif
