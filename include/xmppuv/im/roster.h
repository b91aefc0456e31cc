/* xmppuv chat layer: the roster and presence subscriptions (RFC 6121 §2-3).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * Attached to a client, the roster module fetches the account's contact
 * list on every new session (the `online` event; nothing on `resumed`: the
 * session and its pushes went on), with roster versioning (RFC 6121 §2.6)
 * when the server offers it, applies and acknowledges the server's roster
 * pushes, and reports subscription requests and answers. The app persists
 * what the `version` and `item` events give it and restores it before
 * start with xmppuv_roster_set_version() and xmppuv_roster_import_item():
 * a server that finds the version current then answers with nothing and
 * the items restored stand.
 *
 * Create it before the presence module (xmppuv/im/presence.h) so that the
 * roster is asked for before initial presence goes out (RFC 6121 §2.2).
 *
 * Released with its client (the `closed` event), or earlier with
 * xmppuv_roster_free() (not from inside one of its own callbacks). Memory
 * comes from the C library's malloc (the public API has no allocator to
 * borrow). Everything runs on the client's loop. */
#ifndef XMPPUV_IM_ROSTER_H
#define XMPPUV_IM_ROSTER_H

#include <stddef.h>

#include "../client.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMPPUV_NS_ROSTER "jabber:iq:roster"
#define XMPPUV_NS_ROSTERVER "urn:xmpp:features:rosterver"
#define XMPPUV_NS_PREAPPROVAL "urn:xmpp:features:pre-approval"

typedef struct xmppuv_roster xmppuv_roster_t;

/* RFC 6121 §2.1.2.5. REMOVE appears only in `item` events: the contact is
 * gone from the roster. */
typedef enum {
  XMPPUV_SUB_NONE = 0,
  XMPPUV_SUB_TO,   /* we see their presence */
  XMPPUV_SUB_FROM, /* they see ours */
  XMPPUV_SUB_BOTH,
  XMPPUV_SUB_REMOVE
} xmppuv_subscription_t;

/* "none", "to", "from", "both", "remove"; NULL for anything else. Static. */
XMPPUV_EXTERN const char *xmppuv_subscription_name(xmppuv_subscription_t sub);

/* One roster item. Given by the library: borrowed, valid until the roster
 * changes (an event, an import) or the callback returns. Given to
 * xmppuv_roster_import_item(): copied. */
typedef struct xmppuv_roster_item {
  const char *jid;  /* the contact's bare JID (canonical) */
  const char *name; /* NULL: none */
  xmppuv_subscription_t subscription;
  int ask;      /* ask='subscribe': our request is pending (RFC 6121 §2.1.2.2) */
  int approved; /* approved='true': we pre-approved them (RFC 6121 §3.4) */
  size_t ngroups;
  const char *const *groups;
} xmppuv_roster_item_t;

/* Every callback may be NULL; user_data is the one given to _new.
 * struct_size first, as for the client's callbacks:
 *   xmppuv_roster_callbacks_t cbs = {sizeof cbs, .item = on_item};
 * (xmppuv_roster_new() refuses callbacks without it). New callbacks are
 * only ever added at the end. */
typedef struct xmppuv_roster_callbacks {
  size_t struct_size;
  /* A fetch ended. status 0: the roster is current; from_cache 1 when the
   * server said the version given was current (RFC 6121 §2.6.3: an empty
   * result; the items imported or kept stand, and changes follow as
   * pushes), 0 when it sent the whole roster (the `item` events for what
   * differed from what was held came first). status < 0: the fetch failed
   * (XMPPUV_EIQERROR with the error reply, XMPPUV_ETIMEDOUT,
   * XMPPUV_ESMFAILED: the next session fetches again, ...); reply is the
   * server's answer or NULL, borrowed. */
  void (*loaded)(xmppuv_roster_t *r, int status, int from_cache, xmppuv_stanza_t *reply,
                 void *user_data);
  /* An item was added, changed or (subscription XMPPUV_SUB_REMOVE)
   * removed: by a push, or by a fetch that found it different. Persist it. */
  void (*item)(xmppuv_roster_t *r, const xmppuv_roster_item_t *item, void *user_data);
  /* The roster version changed (a fetch or a push carried a new one):
   * persist it together with the items, and give it back with
   * xmppuv_roster_set_version() next run. Borrowed. */
  void (*version)(xmppuv_roster_t *r, const char *ver, void *user_data);
  /* from (a bare JID) asks to see our presence (presence type='subscribe'):
   * answer with xmppuv_roster_approve() or xmppuv_roster_deny(), now or
   * later. The server repeats pending requests on every new session. */
  void (*subscription_request)(xmppuv_roster_t *r, const char *from,
                               xmppuv_stanza_t *presence, void *user_data);
  /* from (a bare JID) answered our request: approved 1 (type='subscribed')
   * or 0 (type='unsubscribed': denied, or a subscription cancelled). The
   * roster push that changes the item comes from the server as well. */
  void (*subscription_answer)(xmppuv_roster_t *r, const char *from, int approved,
                              xmppuv_stanza_t *presence, void *user_data);
  /* A roster push that did not come from our account (RFC 6121 §2.1.6:
   * 'from' must be absent or our bare JID): ignored, the roster untouched,
   * answered with service-unavailable as for a namespace nobody serves.
   * Reported for the app's log or security counters. */
  void (*spoofed)(xmppuv_roster_t *r, xmppuv_stanza_t *push, void *user_data);
} xmppuv_roster_callbacks_t;

/* Attach to c. cbs (NULL: none) are copied. Errors: XMPPUV_EINVAL (c or out
 * NULL, cbs without struct_size), XMPPUV_ECLOSED, XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_roster_new(xmppuv_client_t *c, const xmppuv_roster_callbacks_t *cbs,
                                    void *user_data, xmppuv_roster_t **out);
/* Detach and free now (otherwise the client's `closed` does it): handlers
 * removed; callbacks of calls still waiting are never called. NULL: no-op. */
XMPPUV_EXTERN void xmppuv_roster_free(xmppuv_roster_t *r);

/* ---- what the app persisted ------------------------------------------ */

/* The version to send on the next fetch (copied; NULL: none, so a server
 * with versioning sends the whole roster). No event. 0, XMPPUV_EINVAL,
 * XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_roster_set_version(xmppuv_roster_t *r, const char *ver);
/* The version the roster is at (NULL: none). Borrowed until it changes. */
XMPPUV_EXTERN const char *xmppuv_roster_version(const xmppuv_roster_t *r);
/* Add or replace an item the app kept (copied; subscription REMOVE removes
 * it). No event. 0, XMPPUV_EINVAL (a NULL argument, no jid, or one that is
 * not a JID), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_roster_import_item(xmppuv_roster_t *r, const xmppuv_roster_item_t *item);

/* ---- reading ------------------------------------------------------------ */

/* Items held, and the i-th (NULL when out of range): borrowed until the
 * roster changes. In no particular order. */
XMPPUV_EXTERN size_t xmppuv_roster_count(const xmppuv_roster_t *r);
XMPPUV_EXTERN const xmppuv_roster_item_t *xmppuv_roster_item_at(const xmppuv_roster_t *r,
                                                                size_t i);
/* The item of jid (compared as a bare JID), or NULL. */
XMPPUV_EXTERN const xmppuv_roster_item_t *xmppuv_roster_get(const xmppuv_roster_t *r,
                                                            const char *jid);
/* Non-zero once a fetch of this session succeeded. */
XMPPUV_EXTERN int xmppuv_roster_loaded(const xmppuv_roster_t *r);
/* Roster pushes ignored as spoofed since _new. */
XMPPUV_EXTERN unsigned xmppuv_roster_spoofed_count(const xmppuv_roster_t *r);
/* Non-zero if the server of the current (or last) session offers
 * subscription pre-approval (RFC 6121 §3.4). */
XMPPUV_EXTERN int xmppuv_roster_preapproval_supported(const xmppuv_roster_t *r);

/* ---- changing ----------------------------------------------------------- */

/* status 0 (the server took it; the change itself arrives as a push and
 * an `item` event), XMPPUV_EIQERROR (reply: the error), or an iq outcome
 * (XMPPUV_ETIMEDOUT, XMPPUV_ECANCELED, XMPPUV_ESMFAILED; reply NULL).
 * reply borrowed. */
typedef void (*xmppuv_roster_done_cb)(xmppuv_roster_t *r, int status, xmppuv_stanza_t *reply,
                                      void *user_data);

/* Add or update jid with name (NULL: none) and groups (ngroups strings,
 * copied into the request). cb may be NULL. Errors: XMPPUV_EINVAL (NULL
 * arguments, a jid that is not a JID or has a resource, an empty group),
 * what xmppuv_client_send_iq() returns. */
XMPPUV_EXTERN int xmppuv_roster_set(xmppuv_roster_t *r, const char *jid, const char *name,
                                    const char *const *groups, size_t ngroups,
                                    xmppuv_roster_done_cb cb, void *user_data);
/* Remove jid from the roster (the server cancels the subscriptions both
 * ways, RFC 6121 §2.5). As xmppuv_roster_set(). */
XMPPUV_EXTERN int xmppuv_roster_remove(xmppuv_roster_t *r, const char *jid,
                                       xmppuv_roster_done_cb cb, void *user_data);

/* Presence subscriptions (RFC 6121 §3), sent with xmppuv_client_send() (its
 * errors; XMPPUV_EINVAL for a jid that is not a bare JID):
 *   subscribe    ask to see jid's presence (type='subscribe')
 *   approve      let jid see ours (type='subscribed'). With no request
 *                from jid received, this is a pre-approval (§3.4): sent
 *                when the server offers it, else XMPPUV_ESTATE and nothing
 *                sent (a server without it ignores the stanza)
 *   deny         refuse a request, or revoke a subscription (type='unsubscribed')
 *   unsubscribe  stop seeing jid's presence (type='unsubscribe') */
XMPPUV_EXTERN int xmppuv_roster_subscribe(xmppuv_roster_t *r, const char *jid);
XMPPUV_EXTERN int xmppuv_roster_approve(xmppuv_roster_t *r, const char *jid);
XMPPUV_EXTERN int xmppuv_roster_deny(xmppuv_roster_t *r, const char *jid);
XMPPUV_EXTERN int xmppuv_roster_unsubscribe(xmppuv_roster_t *r, const char *jid);
/* Non-zero if a subscription request from jid came in this session and
 * was not answered yet. */
XMPPUV_EXTERN int xmppuv_roster_has_request(const xmppuv_roster_t *r, const char *jid);

#ifdef __cplusplus
}
#endif

#endif
