/* xmppuv chat layer: chat state notifications (XEP-0085), as two helpers.
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * Typing indicators are one element in a message: these put it in and
 * read it out, no state kept. (XEP-0085 asks a client to send states only
 * to a peer that showed it supports them: a state of theirs, or the
 * feature in their disco#info / capabilities; that choice is the app's.) */
#ifndef XMPPUV_IM_CHATSTATES_H
#define XMPPUV_IM_CHATSTATES_H

#include "../stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMPPUV_NS_CHATSTATES "http://jabber.org/protocol/chatstates"

typedef enum {
  XMPPUV_CHATSTATE_NONE = 0, /* the message carries none */
  XMPPUV_CHATSTATE_ACTIVE,
  XMPPUV_CHATSTATE_COMPOSING,
  XMPPUV_CHATSTATE_PAUSED,
  XMPPUV_CHATSTATE_INACTIVE,
  XMPPUV_CHATSTATE_GONE
} xmppuv_chatstate_t;

/* Put state in a message (replacing one there; NONE removes it). 0,
 * XMPPUV_EINVAL (not a message, or no such state), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_chatstate_set(xmppuv_stanza_t *message, xmppuv_chatstate_t state);
/* The state a message carries (the first, if a sender put several). */
XMPPUV_EXTERN xmppuv_chatstate_t xmppuv_chatstate_of(const xmppuv_stanza_t *message);
/* "active", "composing", ...; NULL for NONE or an unknown value. Static. */
XMPPUV_EXTERN const char *xmppuv_chatstate_name(xmppuv_chatstate_t state);

#ifdef __cplusplus
}
#endif

#endif
