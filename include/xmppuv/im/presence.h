/* xmppuv chat layer: presence (RFC 6121 §4).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * Attached to a client, the presence module sends our presence (initial
 * presence on every new session, the `online` event; nothing on `resumed`,
 * where the server kept it) with the entity capabilities of a disco module
 * (xmppuv/im/disco.h) when given one, and tracks the presence of every
 * contact's resources: available or not, show, status, priority. On a new
 * session what was tracked is dropped (each resource gets a `changed`
 * event saying it is gone): the server sends current presence again after
 * our initial presence (RFC 6121 §4.2.2). After a resumption it stands.
 * Our own resources (the server echoes our broadcast) are tracked like
 * anyone's.
 *
 * Create it after the roster module, so that the roster is asked for
 * before initial presence goes out (RFC 6121 §2.2).
 *
 * Released with its client (the `closed` event), or earlier with
 * xmppuv_presence_free() (not from inside one of its own callbacks). Memory
 * comes from the C library's malloc. Everything runs on the client's loop. */
#ifndef XMPPUV_IM_PRESENCE_H
#define XMPPUV_IM_PRESENCE_H

#include <stddef.h>

#include "../client.h"
#include "disco.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmppuv_presence xmppuv_presence_t;

/* <show/> (RFC 6121 §4.7.2.1); XMPPUV_SHOW_ONLINE is none (plain available). */
typedef enum {
  XMPPUV_SHOW_ONLINE = 0,
  XMPPUV_SHOW_CHAT,
  XMPPUV_SHOW_AWAY,
  XMPPUV_SHOW_XA,
  XMPPUV_SHOW_DND
} xmppuv_show_t;

/* "online", "chat", "away", "xa", "dnd"; NULL for anything else. Static. */
XMPPUV_EXTERN const char *xmppuv_show_name(xmppuv_show_t show);

/* Initialize with xmppuv_presence_options_init() (xmppuv_presence_new()
 * refuses options without struct_size). Strings are copied. New fields are
 * only ever added at the end. Defaults in brackets. */
typedef struct xmppuv_presence_options {
  size_t struct_size;
  int initial;          /* send initial presence on every `online` [1]; 0:
                           the app goes available with xmppuv_presence_set() */
  xmppuv_show_t show;   /* [XMPPUV_SHOW_ONLINE] */
  const char *status;   /* [NULL: none] */
  int priority;         /* -128..127 [0] */
  xmppuv_disco_t *disco; /* its caps (XEP-0115) go in every presence we send
                            [NULL: none]; borrowed: free it after this module */
} xmppuv_presence_options_t;

#define xmppuv_presence_options_init(opts) \
  xmppuv_presence_options_init_sized((opts), sizeof(xmppuv_presence_options_t))
XMPPUV_EXTERN void xmppuv_presence_options_init_sized(xmppuv_presence_options_t *opts,
                                                      size_t struct_size);

/* One resource of a contact as last seen. Borrowed: valid until the
 * callback returns, or (from the getters) until the next presence event. */
typedef struct xmppuv_presence_info {
  const char *jid;      /* full JID (the bare JID when it had no resource) */
  const char *bare;     /* its bare JID */
  const char *resource; /* NULL when it had none */
  int available;        /* 0: gone (unavailable, or dropped on a new session) */
  xmppuv_show_t show;
  const char *status;   /* NULL: none */
  int priority;
  xmppuv_stanza_t *stanza; /* the last presence from it (caps, delay, ...),
                              NULL when dropped on a new session */
} xmppuv_presence_info_t;

/* Every callback may be NULL; struct_size first (as the roster's). */
typedef struct xmppuv_presence_callbacks {
  size_t struct_size;
  /* A resource became available, changed, or is gone (info->available 0). */
  void (*changed)(xmppuv_presence_t *p, const xmppuv_presence_info_t *info, void *user_data);
  /* A presence of type='error' (RFC 6121 §4.7.1): from (as sent, NULL if
   * absent), its condition (e.g. "remote-server-not-found", NULL if none),
   * and the stanza. Tracked state does not change. */
  void (*error)(xmppuv_presence_t *p, const char *from, const char *condition,
                xmppuv_stanza_t *stanza, void *user_data);
} xmppuv_presence_callbacks_t;

/* Attach to c. opts NULL: the defaults. cbs NULL: none. Errors:
 * XMPPUV_EINVAL (c or out NULL, options or callbacks without struct_size,
 * a show or priority out of range), XMPPUV_ECLOSED, XMPPUV_ENOMEM. Attached
 * to a client that is online already, it sends initial presence now (with
 * initial set). */
XMPPUV_EXTERN int xmppuv_presence_new(xmppuv_client_t *c, const xmppuv_presence_options_t *opts,
                                      const xmppuv_presence_callbacks_t *cbs, void *user_data,
                                      xmppuv_presence_t **out);
/* Detach and free now (otherwise the client's `closed` does it); sends
 * nothing. NULL: no-op. */
XMPPUV_EXTERN void xmppuv_presence_free(xmppuv_presence_t *p);

/* Change our presence: sent now when online, else remembered for the next
 * session (or sent after a resumption). status copied (NULL: none).
 * Errors: XMPPUV_EINVAL (show or priority out of range), XMPPUV_ENOMEM,
 * what xmppuv_client_send() returns. */
XMPPUV_EXTERN int xmppuv_presence_set(xmppuv_presence_t *p, xmppuv_show_t show,
                                      const char *status, int priority);
/* Directed presence (RFC 6121 §4.6) to jid: our current presence
 * (available 1) or unavailable (0), with a copy of extra as a child when
 * given (a MUC join's <x/>). Errors: XMPPUV_EINVAL (a jid that is not a
 * JID), what xmppuv_client_send() returns. */
XMPPUV_EXTERN int xmppuv_presence_send_to(xmppuv_presence_t *p, const char *jid, int available,
                                          const xmppuv_stanza_t *extra);

/* ---- what is tracked ------------------------------------------------------ */

/* Contacts with at least one available resource, and the i-th one's bare
 * JID (NULL when out of range; borrowed until the next presence event). */
XMPPUV_EXTERN size_t xmppuv_presence_contact_count(const xmppuv_presence_t *p);
XMPPUV_EXTERN const char *xmppuv_presence_contact_at(const xmppuv_presence_t *p, size_t i);
/* The available resources of jid (compared as a bare JID), and the i-th
 * one (NULL when out of range). */
XMPPUV_EXTERN size_t xmppuv_presence_count(const xmppuv_presence_t *p, const char *jid);
XMPPUV_EXTERN const xmppuv_presence_info_t *xmppuv_presence_get(const xmppuv_presence_t *p,
                                                                const char *jid, size_t i);
/* With a full JID: that resource. With a bare JID: the resource of the
 * highest priority (on a tie, the one heard from last); NULL if none is
 * available. */
XMPPUV_EXTERN const xmppuv_presence_info_t *xmppuv_presence_best(const xmppuv_presence_t *p,
                                                                 const char *jid);

#ifdef __cplusplus
}
#endif

#endif
